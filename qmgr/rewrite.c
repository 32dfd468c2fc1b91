/*
 * rewrite.c: when alias expansion changed a message's recipients, qmgr writes the expanded
 * copy under the same queue id: into tmp/, with the lib/queuefile.h writer and the message
 * copied from the original, fsync'ed, renamed into active/ and that directory fsync'ed.
 * Only then is the incoming/ original removed; a crash in between leaves both, and the
 * next start sees the active/ copy and removes the incoming/ one (qmgr.h's rules).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "util.h"

#define COPY_CHUNK	65536

static int copy_message(int infd, const struct qf *q, struct qf_writer *w)
{
	static char buf[COPY_CHUNK];
	uint64_t done = 0;

	while (done < q->msg_len) {
		size_t want = q->msg_len - done < sizeof(buf) ? (size_t)(q->msg_len - done)
							      : sizeof(buf);
		ssize_t n = pread(infd, buf, want, q->msg_off + (off_t)done);

		if (n <= 0) {
			if (n == 0)
				errno = EIO;	/* the file shrank under us */
			return -1;
		}
		if (qf_writer_body(w, buf, (size_t)n) < 0)
			return -1;
		done += (uint64_t)n;
	}
	return 0;
}

int rewrite_expanded(const char *qid, int infd, const struct qf *q, const struct expansion *e)
{
	struct qf_envelope env = q->env;
	struct qf_writer *w;
	char tmpname[64], path[64], err[256];
	int fd;

	env.rcpt = e->r;
	env.nrcpt = e->n;
	if (str_fmt(tmpname, sizeof(tmpname), "qmgr.%s", qid) < 0 ||
	    qdir_path(qid, path, sizeof(path)) < 0)
		return -1;
	fd = openat(G.dfd[D_TMP], tmpname, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0600);
	if (fd < 0) {
		msg_warn("%s: create tmp/%s: %m", qid, tmpname);
		return -1;
	}
	w = qf_writer_begin(fd, &env, err, sizeof(err));
	if (w != NULL && copy_message(infd, q, w) < 0) {
		(void)str_fmt(err, sizeof(err), "copying the message: %s", strerror(errno));
		qf_writer_abort(w);
		w = NULL;
	} else if (w != NULL) {
		int rc = qf_writer_end(w);

		w = NULL;
		if (rc < 0 || fsync(fd) < 0 ||
		    renameat(G.dfd[D_TMP], tmpname, G.dfd[D_ACTIVE], path) < 0 ||
		    qdir_sync_subdir(D_ACTIVE, qid) < 0)
			(void)str_fmt(err, sizeof(err), "%s", strerror(errno));
		else
			err[0] = '\0';
	}
	close(fd);
	if (err[0] != '\0') {
		msg_warn("%s: cannot write the expanded queue file: %s", qid, err);
		(void)unlinkat(G.dfd[D_TMP], tmpname, 0);
		return -1;
	}
	return 0;
}
