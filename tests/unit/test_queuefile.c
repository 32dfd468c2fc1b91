/*
 * test_queuefile.c: unit tests for lib/queuefile*.c: write/validate round trips (all
 * fields, many recipients, an empty and a 9 MB message), in-place status updates, a set of
 * corruptions that must each be refused with a useful reason (every truncation, flipped
 * types, bad lengths, missing or wrong END, duplicates, unknown types, NUL bytes, garbage),
 * and queue ids (unique, valid file names, no collisions between processes).
 * `test_queuefile --seeds DIR` writes the fuzzer's seed files instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "queuefile.h"
#include "t.h"
#include "util.h"

static char tmpdir[] = "/tmp/test_queuefile.XXXXXX";
static unsigned char pattern_seed;

/* ---- helpers ------------------------------------------------------------------------- */

static int new_file(void)
{
	char path[128];
	int fd;

	str_fmt(path, sizeof(path), "%s/qf.XXXXXX", tmpdir);
	fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		exit(2);
	}
	unlink(path);
	return fd;
}

static struct qf_rcpt *make_rcpts(size_t n)
{
	struct qf_rcpt *r = xcalloc(n, sizeof(*r));
	char addr[64];

	for (size_t i = 0; i < n; i++) {
		str_fmt(addr, sizeof(addr), "user%zu@example.org", i);
		r[i].addr = xstrdup(addr);
		r[i].orcpt = xstrdup(i % 2 ? "rfc822;alias@example.org" : "");
		r[i].notify = i % 3 == 0 ? QF_NOTIFY_NEVER : QF_NOTIFY_FAILURE | QF_NOTIFY_DELAY;
	}
	return r;
}

static void free_rcpts(struct qf_rcpt *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].addr);
		free(r[i].orcpt);
	}
	free(r);
}

/* A full envelope: every optional field present. */
static void make_env(struct qf_envelope *e, size_t nrcpt)
{
	memset(e, 0, sizeof(*e));
	T_EQ_INT(qid_new(e->qid, sizeof(e->qid)), 0);
	e->arrival_ms = 1700000000123;
	e->sender = (char *)(uintptr_t)"sender@example.com";
	e->client_addr = (char *)(uintptr_t)"2001:db8::1";
	e->client_name = (char *)(uintptr_t)"mail.example.com";
	e->helo = (char *)(uintptr_t)"mail.example.com";
	e->auth_user = (char *)(uintptr_t)"sender@example.com";
	e->size = 12345;
	e->body = QF_BODY_8BITMIME;
	e->flags = QF_F_SMTPUTF8;
	e->ret = QF_RET_HDRS;
	e->envid = (char *)(uintptr_t)"QQ314159";
	e->rcpt = make_rcpts(nrcpt);
	e->nrcpt = nrcpt;
}

static unsigned char pattern(uint64_t i)
{
	return (unsigned char)((i * 131 + (i >> 9) + pattern_seed) & 0xff);
}

/* Write env and a message of len pattern bytes, fed in chunks of the sizes in steps[]. */
static int write_qf(int fd, const struct qf_envelope *env, uint64_t len, const size_t *steps,
		    size_t nsteps)
{
	char err[256];
	struct qf_writer *w = qf_writer_begin(fd, env, err, sizeof(err));
	unsigned char *chunk = xmalloc(300000);
	uint64_t done = 0;
	size_t k = 0;

	if (w == NULL) {
		fprintf(stderr, "writer: %s\n", err);
		free(chunk);
		return -1;
	}
	while (done < len) {
		size_t n = steps[k++ % nsteps];

		if (n > len - done)
			n = (size_t)(len - done);
		for (size_t i = 0; i < n; i++)
			chunk[i] = pattern(done + i);
		if (qf_writer_body(w, chunk, n) < 0) {
			qf_writer_abort(w);
			free(chunk);
			return -1;
		}
		done += n;
	}
	free(chunk);
	T_EQ_INT(qf_writer_msg_len(w), len);
	return qf_writer_end(w);
}

static int message_matches(int fd, const struct qf *q)
{
	unsigned char b[65536];
	uint64_t done = 0;

	while (done < q->msg_len) {
		size_t n = q->msg_len - done < sizeof(b) ? (size_t)(q->msg_len - done) : sizeof(b);

		if (pread(fd, b, n, q->msg_off + (off_t)done) != (ssize_t)n)
			return 0;
		for (size_t i = 0; i < n; i++)
			if (b[i] != pattern(done + i))
				return 0;
		done += n;
	}
	return 1;
}

static const size_t one_step[] = { 4096 };

static void same_env(const struct qf_envelope *a, const struct qf_envelope *b)
{
	T_EQ_STR(a->qid, b->qid);
	T_EQ_INT(a->arrival_ms, b->arrival_ms);
	T_EQ_STR(a->sender, b->sender);
	T_EQ_STR(a->client_addr, b->client_addr);
	T_EQ_STR(a->client_name, b->client_name);
	T_EQ_STR(a->helo, b->helo);
	T_CHECK((a->auth_user == NULL) == (b->auth_user == NULL));
	if (a->auth_user && b->auth_user)
		T_EQ_STR(a->auth_user, b->auth_user);
	T_CHECK((a->envid == NULL) == (b->envid == NULL));
	if (a->envid && b->envid)
		T_EQ_STR(a->envid, b->envid);
	T_EQ_INT(a->size, b->size);
	T_EQ_INT(a->body, b->body);
	T_EQ_INT(a->flags, b->flags);
	T_EQ_INT(a->ret, b->ret);
	T_EQ_INT(a->nrcpt, b->nrcpt);
	for (size_t i = 0; i < a->nrcpt && i < b->nrcpt; i++) {
		T_EQ_STR(a->rcpt[i].addr, b->rcpt[i].addr);
		T_EQ_STR(a->rcpt[i].orcpt ? a->rcpt[i].orcpt : "", b->rcpt[i].orcpt);
		T_EQ_INT(a->rcpt[i].notify, b->rcpt[i].notify);
		T_EQ_INT(b->rcpt[i].status.state, a->rcpt[i].status.state);
		T_EQ_STR(b->rcpt[i].status.dsn, a->rcpt[i].status.dsn);
	}
}

/* Whole file into a heap buffer. */
static unsigned char *slurp(int fd, size_t *len)
{
	struct stat st;
	unsigned char *p;

	if (fstat(fd, &st) < 0)
		exit(2);
	p = xmalloc((size_t)st.st_size + 1);
	*len = (size_t)pread(fd, p, (size_t)st.st_size, 0);
	return p;
}

/* Validate len bytes of data; returns 0 or -1 with the reason in err. */
static int check_bytes(const void *data, size_t len, char *err, size_t errlen)
{
	int fd = new_file(), rc;
	struct qf q;

	if (write_all(fd, data, len) < 0)
		exit(2);
	rc = qf_open_fd(fd, &q, err, errlen);
	if (rc == 0)
		qf_free(&q);
	close(fd);
	return rc;
}

/* Refused, and the reason mentions want. */
static void expect_refused(const void *data, size_t len, const char *want)
{
	char err[512] = "";

	T_EQ_INT(check_bytes(data, len, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "  error \"%s\" does not mention \"%s\"\n", err, want);
		T_CHECK(strstr(err, want) != NULL);
	}
}

/* A small valid file (two recipients, short message) in memory. */
static unsigned char *small_file(size_t *len)
{
	struct qf_envelope e;
	int fd = new_file();
	unsigned char *p;

	make_env(&e, 2);
	T_EQ_INT(write_qf(fd, &e, 40, one_step, 1), 0);
	free_rcpts(e.rcpt, e.nrcpt);
	p = slurp(fd, len);
	close(fd);
	return p;
}

/* Offsets of the records of a file, up to max of them; returns how many. */
static size_t record_offsets(const unsigned char *p, size_t len, size_t *offs, size_t max)
{
	size_t n = 0, off = 0;

	while (off + 5 <= len && n < max) {
		offs[n++] = off;
		off += 5 + ((size_t)p[off + 1] << 24 | (size_t)p[off + 2] << 16 |
			    (size_t)p[off + 3] << 8 | p[off + 4]);
	}
	return n;
}

/* Re-assemble a file from the bytes before the END record plus a correct END. */
static void append_end(struct buf *b)
{
	unsigned char end[13] = { 'Z', 0, 0, 0, 8 };
	uint64_t total = b->len;

	for (int i = 12; i >= 5; i--, total >>= 8)
		end[i] = (unsigned char)total;
	T_EQ_INT(buf_append(b, end, sizeof(end)), 0);
}

static void put_record(struct buf *b, int type, const void *p, uint32_t len)
{
	unsigned char h[5] = { (unsigned char)type, (unsigned char)(len >> 24),
			       (unsigned char)(len >> 16), (unsigned char)(len >> 8),
			       (unsigned char)len };

	T_EQ_INT(buf_append(b, h, 5), 0);
	T_EQ_INT(buf_append(b, p, len), 0);
}

/* ---- round trips --------------------------------------------------------------------- */

static void test_roundtrip(void)
{
	struct qf_envelope e;
	struct qf q;
	char err[256] = "";
	int fd = new_file();

	make_env(&e, 3);
	T_EQ_INT(write_qf(fd, &e, 1000, one_step, 1), 0);
	T_EQ_INT(qf_open_fd(fd, &q, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "  %s\n", err);
	same_env(&e, &q.env);
	T_EQ_INT(q.msg_len, 1000);
	T_CHECK(message_matches(fd, &q));
	T_EQ_INT(q.file_size, (uint64_t)q.msg_off + 1000 + QF_END_LEN);
	T_EQ_INT(q.env.rcpt[0].status.state, QF_PENDING);
	T_EQ_INT(q.env.rcpt[0].status.attempts, 0);
	T_CHECK(q.env.rcpt[0].status_off > 0 && q.env.rcpt[1].status_off > q.env.rcpt[0].status_off);
	qf_free(&q);
	close(fd);

	/* Minimal: null sender, no optional records, empty client fields. */
	free_rcpts(e.rcpt, e.nrcpt);
	make_env(&e, 1);
	e.sender = e.client_addr = e.client_name = e.helo = (char *)(uintptr_t)"";
	e.auth_user = e.envid = NULL;
	e.ret = QF_RET_NONE;
	e.body = QF_BODY_BINARYMIME;
	e.flags = 0;
	e.size = 0;
	free(e.rcpt[0].orcpt);
	e.rcpt[0].orcpt = NULL;
	e.rcpt[0].notify = 0;
	fd = new_file();
	T_EQ_INT(write_qf(fd, &e, 10, one_step, 1), 0);
	T_EQ_INT(qf_open_fd(fd, &q, err, sizeof(err)), 0);
	same_env(&e, &q.env);
	T_EQ_STR(q.env.sender, "");
	T_CHECK(q.env.auth_user == NULL && q.env.envid == NULL);
	qf_free(&q);
	close(fd);
	free_rcpts(e.rcpt, e.nrcpt);
}

static void test_many_recipients(void)
{
	struct qf_envelope e;
	struct qf q;
	char err[256] = "";
	int fd = new_file();

	make_env(&e, QF_MAX_RCPTS);
	T_EQ_INT(write_qf(fd, &e, 100, one_step, 1), 0);
	T_EQ_INT(qf_open_fd(fd, &q, err, sizeof(err)), 0);
	same_env(&e, &q.env);
	T_EQ_STR(q.env.rcpt[QF_MAX_RCPTS - 1].addr, "user9999@example.org");
	qf_free(&q);
	close(fd);
	free_rcpts(e.rcpt, e.nrcpt);

	/* One more is refused by the writer... */
	make_env(&e, QF_MAX_RCPTS + 1);
	fd = new_file();
	T_CHECK(qf_writer_begin(fd, &e, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, "recipients") != NULL);
	close(fd);
	free_rcpts(e.rcpt, e.nrcpt);
}

static void test_too_many_recipients_read(void)
{
	size_t len, offs[16], n;
	unsigned char *p = small_file(&len);
	struct buf b;

	/* ...and by the reader: splice in 10001 copies of the first recipient record. */
	n = record_offsets(p, len, offs, 16);
	T_CHECK(n > 14 && p[offs[13]] == 'R');
	buf_init(&b, 64 * 1024 * 1024);
	T_EQ_INT(buf_append(&b, p, offs[13]), 0);
	for (int i = 0; i <= QF_MAX_RCPTS; i++)
		T_EQ_INT(buf_append(&b, p + offs[13], offs[14] - offs[13]), 0);
	T_EQ_INT(buf_append(&b, p + offs[15], offs[n - 1] - offs[15]), 0);
	append_end(&b);
	expect_refused(b.data, b.len, "more than 10000 recipients");
	buf_free(&b);
	free(p);
}

static void test_empty_message(void)
{
	struct qf_envelope e;
	struct qf q;
	char err[256] = "";
	int fd = new_file();

	make_env(&e, 1);
	T_EQ_INT(write_qf(fd, &e, 0, one_step, 1), 0);
	T_EQ_INT(qf_open_fd(fd, &q, err, sizeof(err)), 0);
	T_EQ_INT(q.msg_len, 0);
	T_EQ_INT(q.file_size, (uint64_t)q.msg_off + QF_END_LEN);
	qf_free(&q);
	close(fd);
	free_rcpts(e.rcpt, e.nrcpt);
}

static void test_big_message(void)
{
	static const size_t steps[] = { 1, 7, 4093, 65537, 200001, 131075, 3, 131072 };
	uint64_t len = 9u * 1024 * 1024 + 17;
	struct qf_envelope e;
	struct qf q;
	char err[256] = "";
	int fd = new_file();

	pattern_seed = 77;
	make_env(&e, 2);
	T_EQ_INT(write_qf(fd, &e, len, steps, ARRAY_LEN(steps)), 0);
	T_EQ_INT(qf_open_fd(fd, &q, err, sizeof(err)), 0);
	T_EQ_INT(q.msg_len, len);
	T_CHECK(message_matches(fd, &q));
	qf_free(&q);
	close(fd);
	free_rcpts(e.rcpt, e.nrcpt);
	pattern_seed = 0;
}

/* ---- status updates ------------------------------------------------------------------ */

static void test_status_update(void)
{
	struct qf_envelope e;
	struct qf q, q2;
	char err[256] = "";
	int fd = new_file();

	make_env(&e, 3);
	T_EQ_INT(write_qf(fd, &e, 500, one_step, 1), 0);
	T_EQ_INT(qf_open_fd(fd, &q, err, sizeof(err)), 0);
	T_EQ_INT(qf_rcpt_set_status(fd, &q.env.rcpt[1], QF_DEFERRED, 451, "4.4.1", 1700000001000), 0);
	T_EQ_INT(qf_rcpt_set_status(fd, &q.env.rcpt[1], QF_BOUNCED, 550, "5.1.1", 1700000002000), 0);
	T_EQ_INT(qf_rcpt_set_status(fd, &q.env.rcpt[2], QF_DELIVERED, 250, "2.0.0", 1700000003000), 0);
	T_EQ_INT(q.env.rcpt[1].status.attempts, 2);
	/* Invalid statuses are refused and change nothing. */
	T_EQ_INT(qf_rcpt_set_status(fd, &q.env.rcpt[0], QF_DELIVERED, 250, "5.1.1", 1), -1);
	T_EQ_INT(qf_rcpt_set_status(fd, &q.env.rcpt[0], (enum qf_state)9, 0, "", 1), -1);
	T_EQ_INT(qf_rcpt_set_status(fd, &q.env.rcpt[0], QF_BOUNCED, 550, "5.1.1.1", 1), -1);
	T_EQ_INT(qf_rcpt_set_status(fd, &q.env.rcpt[0], QF_BOUNCED, 1000, "", 1), -1);
	T_EQ_INT(q.env.rcpt[0].status.attempts, 0);

	T_EQ_INT(qf_open_fd(fd, &q2, err, sizeof(err)), 0);
	T_EQ_INT(q2.env.rcpt[0].status.state, QF_PENDING);
	T_EQ_INT(q2.env.rcpt[1].status.state, QF_BOUNCED);
	T_EQ_INT(q2.env.rcpt[1].status.code, 550);
	T_EQ_STR(q2.env.rcpt[1].status.dsn, "5.1.1");
	T_EQ_INT(q2.env.rcpt[1].status.attempts, 2);
	T_EQ_INT(q2.env.rcpt[1].status.last_ms, 1700000002000);
	T_EQ_INT(q2.env.rcpt[2].status.state, QF_DELIVERED);
	T_EQ_STR(q2.env.rcpt[2].status.dsn, "2.0.0");
	T_EQ_STR(q2.env.rcpt[2].addr, e.rcpt[2].addr);
	T_CHECK(message_matches(fd, &q2));
	T_EQ_STR(qf_state_name(QF_BOUNCED), "bounced");
	qf_free(&q);
	qf_free(&q2);
	close(fd);
	free_rcpts(e.rcpt, e.nrcpt);
}

/* ---- the writer refuses bad envelopes and reports write errors ----------------------- */

static void test_writer_errors(void)
{
	struct qf_envelope e;
	char err[256] = "", path[128], longaddr[400];
	int fd = new_file();

	make_env(&e, 2);
	memset(longaddr, 'a', 321);
	longaddr[321] = '\0';
	free(e.rcpt[1].addr);
	e.rcpt[1].addr = xstrdup(longaddr);
	T_CHECK(qf_writer_begin(fd, &e, err, sizeof(err)) == NULL);
	T_EQ_STR(err, "recipient 2: address too long");
	e.rcpt[1].addr[5] = '\n';
	e.rcpt[1].addr[6] = '\0';
	T_CHECK(qf_writer_begin(fd, &e, err, sizeof(err)) == NULL);
	T_EQ_STR(err, "recipient 2: address contains a control character");
	e.rcpt[1].addr[5] = '\0';
	e.sender = NULL;
	T_CHECK(qf_writer_begin(fd, &e, err, sizeof(err)) == NULL);
	T_EQ_STR(err, "sender: missing");
	e.sender = (char *)(uintptr_t)"";
	str_copy(e.qid, sizeof(e.qid), "../../etc");
	T_CHECK(qf_writer_begin(fd, &e, err, sizeof(err)) == NULL);
	qid_new(e.qid, sizeof(e.qid));

	/* Not empty: refused. */
	T_EQ_INT(write_all(fd, "x", 1), 0);
	T_CHECK(qf_writer_begin(fd, &e, err, sizeof(err)) == NULL);
	close(fd);

	/* A descriptor that cannot be written: the error surfaces at the latest at end. */
	str_fmt(path, sizeof(path), "%s/readonly", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	close(fd);
	fd = open(path, O_RDONLY);
	T_EQ_INT(write_qf(fd, &e, 1000, one_step, 1), -1);
	T_EQ_INT(errno, EBADF);
	close(fd);
	unlink(path);
	free_rcpts(e.rcpt, e.nrcpt);
}

/* ---- corruptions --------------------------------------------------------------------- */

static void test_truncations(void)
{
	size_t len, bad = 0;
	unsigned char *p = small_file(&len);
	char err[512];

	T_EQ_INT(check_bytes(p, len, err, sizeof(err)), 0);
	for (size_t n = 0; n < len; n++)
		if (check_bytes(p, n, err, sizeof(err)) == 0) {
			fprintf(stderr, "  truncated to %zu of %zu bytes validates\n", n, len);
			bad++;
		}
	T_EQ_INT(bad, 0);
	expect_refused(p, len - QF_END_LEN, "END record missing");
	expect_refused(p, len - 1, "END record has the wrong length");
	expect_refused(p, 0, "empty file");
	expect_refused(p, 3, "truncated record header");
	expect_refused(p, 30, "runs past the end of the file");
	free(p);
}

static void test_flipped_types(void)
{
	size_t len, offs[32], n;
	unsigned char *p = small_file(&len);

	n = record_offsets(p, len, offs, 32);
	T_EQ_INT(n, 18);	/* V I T S A N H U L B F W E R R X M Z */
	for (size_t i = 0; i < n; i++) {
		p[offs[i]] ^= 0x20;
		expect_refused(p, len, i == 0 ? "not a Postern queue file"
				: i >= n - 2 ? "expected the" : "unknown record type");
		p[offs[i]] ^= 0x20;
		/* Every other byte value is refused too: the order is fixed, so even an
		 * optional record retyped as another one that would fit is out of place. */
		for (int t = 0; t < 256; t++) {
			unsigned char saved = p[offs[i]];
			char err[512];

			if (t == saved)
				continue;
			p[offs[i]] = (unsigned char)t;
			if (check_bytes(p, len, err, sizeof(err)) == 0) {
				fprintf(stderr, "  record %zu retyped %c -> 0x%02x validates\n", i,
					saved, t);
				T_CHECK(0);
			}
			p[offs[i]] = saved;
		}
	}
	free(p);
}

static void test_bad_lengths(void)
{
	size_t len, offs[32], n;
	unsigned char *p = small_file(&len);

	n = record_offsets(p, len, offs, 32);
	/* The message length pointing past EOF. */
	p[offs[n - 2] + 1] = 0x7f;
	expect_refused(p, len, "message record runs past the end of the file");
	p[offs[n - 2] + 1] = 0;
	/* A sender length past EOF, and one merely too long. */
	p[offs[3] + 1] = 0x7f;
	expect_refused(p, len, "record 4 at offset");
	expect_refused(p, len, "sender too long");
	p[offs[3] + 1] = 0;
	p[offs[3] + 4] += 1;
	expect_refused(p, len, "");
	p[offs[3] + 4] -= 1;
	/* END with a wrong total. */
	p[len - 1] ^= 1;
	expect_refused(p, len, "END record says");
	p[len - 1] ^= 1;
	/* Trailing garbage after END. */
	{
		unsigned char *q = xmalloc(len + 1);

		memcpy(q, p, len);
		q[len] = 'Z';
		expect_refused(q, len + 1, "not at the end of the file");
		free(q);
	}
	T_EQ_INT(check_bytes(p, len, (char[64]){ 0 }, 64), 0);
	free(p);
}

static void test_bad_records(void)
{
	size_t len, offs[32], n;
	unsigned char *p = small_file(&len);
	struct buf b;

	n = record_offsets(p, len, offs, 32);
	/* Duplicate sender: S twice. */
	buf_init(&b, 1 << 20);
	buf_append(&b, p, offs[4]);
	buf_append(&b, p + offs[3], offs[4] - offs[3]);
	buf_append(&b, p + offs[4], offs[n - 1] - offs[4]);
	append_end(&b);
	expect_refused(b.data, b.len, "record 5 at offset");
	expect_refused(b.data, b.len, "duplicate sender record");
	/* Out of order: helo before sender. */
	buf_reset(&b);
	buf_append(&b, p, offs[3]);
	buf_append(&b, p + offs[6], offs[7] - offs[6]);
	buf_append(&b, p + offs[3], offs[6] - offs[3]);
	buf_append(&b, p + offs[7], offs[n - 1] - offs[7]);
	append_end(&b);
	expect_refused(b.data, b.len, "out of order");
	/* Unknown record type inside the envelope. */
	buf_reset(&b);
	buf_append(&b, p, offs[5]);
	put_record(&b, 'Q', "x", 1);
	buf_append(&b, p + offs[5], offs[n - 1] - offs[5]);
	append_end(&b);
	expect_refused(b.data, b.len, "unknown record type 0x51");
	/* Missing required record: no helo. */
	buf_reset(&b);
	buf_append(&b, p, offs[6]);
	buf_append(&b, p + offs[7], offs[n - 1] - offs[7]);
	append_end(&b);
	expect_refused(b.data, b.len, "envelope has no helo record");
	/* No recipients. */
	buf_reset(&b);
	buf_append(&b, p, offs[13]);
	buf_append(&b, p + offs[15], offs[n - 1] - offs[15]);
	append_end(&b);
	expect_refused(b.data, b.len, "envelope has no recipient");
	/* Message before end of envelope. */
	buf_reset(&b);
	buf_append(&b, p, offs[15]);
	buf_append(&b, p + offs[16], offs[n - 1] - offs[16]);
	append_end(&b);
	expect_refused(b.data, b.len, "message record before the end of the envelope");
	buf_free(&b);

	/* NUL inside an address (the last byte of the first recipient's address). */
	p[offs[14] - 3] = '\0';
	expect_refused(p, len, "recipient address contains a NUL byte");
	p[offs[14] - 3] = 'o';
	/* Bad status block, bad notify, ORCPT length past the record. */
	p[offs[13] + 5] = 7;
	expect_refused(p, len, "recipient status: unknown recipient state");
	p[offs[13] + 5] = 0;
	p[offs[13] + 5 + QF_STATUS_LEN] = QF_NOTIFY_NEVER | QF_NOTIFY_DELAY;
	expect_refused(p, len, "NEVER combined");
	p[offs[13] + 5 + QF_STATUS_LEN] = QF_NOTIFY_NEVER;
	p[offs[13] + 5 + QF_STATUS_LEN + 2] = 200;
	expect_refused(p, len, "leaves no room for the address");
	p[offs[13] + 5 + QF_STATUS_LEN + 2] = 0;
	p[offs[9] + 5] = 9;
	expect_refused(p, len, "unknown body type 9");
	p[offs[9] + 5] = 1;
	p[offs[1] + 5] = '/';
	expect_refused(p, len, "invalid queue id");
	T_EQ_INT(check_bytes(p, len, (char[64]){ 0 }, 64), -1);	/* still the '/' */
	free(p);
}

static void test_foreign_files(void)
{
	static const char text[] = "From: someone\r\nSubject: hi\r\n\r\nbody\r\n";
	static const unsigned char v2[] = { 'V', 0, 0, 0, 15, 'P', 'O', 'S', 'T', 'E', 'R', 'N',
					    '-', 'Q', 'U', 'E', 'U', 'E', ' ', '2' };
	unsigned char garbage[4096];

	expect_refused(text, sizeof(text) - 1, "not a Postern queue file");
	expect_refused(v2, sizeof(v2), "unsupported queue file version");
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (unsigned char)(i * 7919 >> 3);
	expect_refused(garbage, sizeof(garbage), "record 1 at offset 0");
	garbage[0] = 'V';
	expect_refused(garbage, sizeof(garbage), "not a Postern queue file");
}

/* ---- queue ids ----------------------------------------------------------------------- */

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_qid(void)
{
	enum { N = 100000 };
	char (*ids)[QF_QID_SIZE] = xcalloc(N, QF_QID_SIZE), sub[QF_SUBDIR_SIZE], small[8];
	size_t dups = 0, invalid = 0;

	for (size_t i = 0; i < N; i++) {
		T_EQ_INT(qid_new(ids[i], QF_QID_SIZE), 0);
		if (!qid_valid(ids[i]) || strchr(ids[i], '/') != NULL)
			invalid++;
		if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
			dups++;		/* one process: strictly increasing */
	}
	qsort(ids, N, QF_QID_SIZE, cmp_ids);
	for (size_t i = 1; i < N; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			dups++;
	T_EQ_INT(dups, 0);
	T_EQ_INT(invalid, 0);
	T_EQ_INT(qid_subdir(ids[0], sub, sizeof(sub)), 0);
	T_CHECK(strlen(sub) == 3 && sub[1] == '/' && sub[0] == ids[0][12] && sub[2] == ids[0][11]);
	T_EQ_INT(qid_subdir("../x", sub, sizeof(sub)), -1);
	T_EQ_INT(qid_subdir(ids[0], sub, 3), -1);
	T_EQ_INT(qid_new(small, sizeof(small)), -1);
	free(ids);

	T_CHECK(!qid_valid(""));
	T_CHECK(!qid_valid(NULL));
	T_CHECK(!qid_valid(".."));
	T_CHECK(!qid_valid("../../etc/passwd"));
	T_CHECK(!qid_valid("0123456789ABCDEF01/"));
	T_CHECK(!qid_valid("0123456789ABCDEF0/2"));
	T_CHECK(!qid_valid("0123456789ABCDEF012A"));	/* overlong */
	T_CHECK(!qid_valid("0123456789ABCDEF01"));	/* short */
	T_CHECK(!qid_valid("0123456789abcdef012"));	/* lower case */
	T_CHECK(qid_valid("0123456789ABCDEF012"));
}

/* Two processes started together write ids to a file each; none may collide. */
static void test_qid_processes(void)
{
	enum { N = 50000 };
	int go[2], fds[2];
	pid_t pids[2];
	char (*ids)[QF_QID_SIZE] = xcalloc(2 * N, QF_QID_SIZE);
	size_t dups = 0;

	T_EQ_INT(pipe(go), 0);
	for (int k = 0; k < 2; k++) {
		fds[k] = new_file();
		pids[k] = fork();
		if (pids[k] == 0) {
			char c, id[QF_QID_SIZE];

			close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(3);
			for (int i = 0; i < N; i++)
				if (qid_new(id, sizeof(id)) < 0 || write_all(fds[k], id, QF_QID_SIZE) < 0)
					_exit(4);
			_exit(0);
		}
	}
	close(go[1]);		/* both start now */
	close(go[0]);
	for (int k = 0; k < 2; k++) {
		int status = -1;

		waitpid(pids[k], &status, 0);
		T_EQ_INT(status, 0);
		T_EQ_INT(pread(fds[k], ids[k * N], (size_t)N * QF_QID_SIZE, 0),
			 (ssize_t)N * QF_QID_SIZE);
		close(fds[k]);
	}
	qsort(ids, 2 * N, QF_QID_SIZE, cmp_ids);
	for (size_t i = 1; i < 2 * N; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0 || !qid_valid(ids[i]))
			dups++;
	T_EQ_INT(dups, 0);
	free(ids);
}

/* ---- fuzzer seeds -------------------------------------------------------------------- */

static int write_seed(const char *dir, const char *name, struct qf_envelope *e, uint64_t len)
{
	char path[512];
	int fd, rc;

	str_fmt(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	rc = write_qf(fd, e, len, one_step, 1);
	close(fd);
	return rc;
}

static int write_seeds(const char *dir)
{
	struct qf_envelope e;
	int rc = 0;

	make_env(&e, 3);
	str_copy(e.qid, sizeof(e.qid), "63A1F0C2D4E5B00012F");
	rc |= write_seed(dir, "full", &e, 200);
	e.rcpt[1].status = (struct qf_status){ QF_BOUNCED, 550, "5.1.1", 3, 1700000009000 };
	e.rcpt[2].status = (struct qf_status){ QF_DEFERRED, 451, "4.4.1", 1, 1700000008000 };
	rc |= write_seed(dir, "statuses", &e, 64);
	free_rcpts(e.rcpt, e.nrcpt);
	make_env(&e, 1);
	str_copy(e.qid, sizeof(e.qid), "63A1F0C2D4E5B000130");
	e.sender = e.client_addr = e.client_name = e.helo = (char *)(uintptr_t)"";
	e.auth_user = e.envid = NULL;
	e.ret = QF_RET_NONE;
	rc |= write_seed(dir, "minimal_empty_message", &e, 0);
	free_rcpts(e.rcpt, e.nrcpt);
	return rc;
}

int main(int argc, char **argv)
{
	int rc;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	if (argc == 3 && strcmp(argv[1], "--seeds") == 0) {
		rc = write_seeds(argv[2]);
		rmdir(tmpdir);
		return rc ? 1 : 0;
	}
	T_RUN(test_roundtrip);
	T_RUN(test_many_recipients);
	T_RUN(test_too_many_recipients_read);
	T_RUN(test_empty_message);
	T_RUN(test_big_message);
	T_RUN(test_status_update);
	T_RUN(test_writer_errors);
	T_RUN(test_truncations);
	T_RUN(test_flipped_types);
	T_RUN(test_bad_lengths);
	T_RUN(test_bad_records);
	T_RUN(test_foreign_files);
	T_RUN(test_qid);
	T_RUN(test_qid_processes);
	rmdir(tmpdir);
	return T_DONE();
}
