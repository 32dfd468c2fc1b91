/*
 * fuzz_queuefile.c: libFuzzer target for the queue-file reader (lib/queuefile_read.c). The
 * input is put in a memory file and validated. A refused input must leave an empty struct
 * and a reason. An accepted one must describe itself consistently (message and status
 * blocks inside the file, END at the end, envelope passing qf_envelope_check) and, written
 * again with the writer, give exactly the input bytes: the format is canonical. Anything
 * else aborts. Build and run: `make fuzz-run` (or `make fuzz-queuefile`).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "queuefile.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int in_fd = -1, out_fd = -1;
static unsigned char *again;

static int fresh(int *fd)
{
	if (*fd < 0 && (*fd = memfd_create("qf", 0)) < 0)
		abort();
	return ftruncate(*fd, 0);
}

static void check_accepted(const struct qf *q, const uint8_t *data, size_t size)
{
	char err[512];
	struct qf_writer *w;

	if (q->file_size != size || q->msg_off < 0 ||
	    (uint64_t)q->msg_off + q->msg_len + QF_END_LEN != size || q->env.nrcpt == 0 ||
	    q->env.nrcpt > QF_MAX_RCPTS || qf_envelope_check(&q->env, err, sizeof(err)) != 0)
		abort();
	for (size_t i = 0; i < q->env.nrcpt; i++)
		if (q->env.rcpt[i].status_off <= 0 ||
		    (uint64_t)q->env.rcpt[i].status_off + QF_STATUS_LEN > (uint64_t)q->msg_off ||
		    data[q->env.rcpt[i].status_off] != q->env.rcpt[i].status.state)
			abort();
	if (fresh(&out_fd) != 0 || (w = qf_writer_begin(out_fd, &q->env, err, sizeof(err))) == NULL ||
	    qf_writer_body(w, data + q->msg_off, q->msg_len) != 0 || qf_writer_end(w) != 0)
		abort();
	again = realloc(again, size ? size : 1);
	if (again == NULL || pread(out_fd, again, size, 0) != (ssize_t)size ||
	    pread(out_fd, again, 1, (off_t)size) != 0 || memcmp(again, data, size) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qf q;
	char err[512] = "";

	if (fresh(&in_fd) != 0 || (size > 0 && pwrite(in_fd, data, size, 0) != (ssize_t)size))
		abort();
	if (qf_open_fd(in_fd, &q, err, sizeof(err)) != 0) {
		if (err[0] == '\0' || q.env.rcpt != NULL || q.env.sender != NULL || q.env.nrcpt != 0)
			abort();
		return 0;
	}
	check_accepted(&q, data, size);
	qf_free(&q);
	return 0;
}
