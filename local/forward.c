/*
 * forward.c: the remote targets of an alias (other domains, our virtual domains included)
 * leave as a new message, as Postfix's local forwards: a new queue file with the same
 * sender and body type, the forwarded addresses as its recipients (pending, with the
 * original recipient's DSN NOTIFY), and the message bytes copied from the queue file we
 * were handed, after one added "Delivered-To: ALIAS" line, so a copy that comes back is
 * recognised as a loop (expand.c).
 *
 * The file is made the only way anyone makes one: QUEUE_REQ_CREATE to the queue daemon,
 * the lib/queuefile.h writer into the descriptor it returns, QUEUE_REQ_COMMIT (durable when
 * answered OK). This runs in a child that is mail_owner (spawn.c): the queue daemon answers
 * root and mail_owner, and its socket (mode 0660, group mail_owner's) would refuse uid 0
 * without CAP_DAC_OVERRIDE anyway. Every failure is a 4xx: the original stays queued.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "queuefile.h"
#include "queueproto.h"
#include "util.h"

#define COPY_BUF	65536

static struct ipc_msg req, rep;
static uint32_t req_id;

/* One call to the queue daemon: its status (IPC_TEMPFAIL when it cannot be asked), reason
 * in why. */
static int call(int sock, char *why, size_t whylen)
{
	const char *r;

	if (ipc_call(sock, &req, &rep, QUEUE_TIMEOUT_MS) < 0) {
		(void)str_fmt(why, whylen, "queue daemon: %s", strerror(errno));
		return IPC_TEMPFAIL;
	}
	r = ipc_get_str(&rep, "reason");
	(void)str_copy(why, whylen, r ? r : "");
	return rep.status == IPC_OK || rep.status == IPC_PERMFAIL ? rep.status : IPC_TEMPFAIL;
}

/* A new empty queue file: 0 with qid and *fd, or -1 with why. */
static int create(int sock, char *qid, int *fd, char *why, size_t whylen)
{
	const char *id;

	ipc_msg_init(&req, QUEUE_REQ_CREATE, ++req_id);
	(void)ipc_put_str(&req, "client", "local");
	if (call(sock, why, whylen) != IPC_OK) {
		ipc_close_fds(&rep);
		return -1;
	}
	id = ipc_get_str(&rep, "id");
	if (id == NULL || !qid_valid(id) || rep.nfds != 1) {
		ipc_close_fds(&rep);
		(void)str_copy(why, whylen, "malformed CREATE reply");
		return -1;
	}
	(void)str_copy(qid, QF_QID_SIZE, id);
	*fd = rep.fds[0];
	return 0;
}

static int commit(int sock, const char *qid, char *why, size_t whylen)
{
	int st;

	ipc_msg_init(&req, QUEUE_REQ_COMMIT, ++req_id);
	(void)ipc_put_str(&req, "id", qid);
	st = call(sock, why, whylen);
	ipc_close_fds(&rep);
	return st == IPC_OK ? 0 : -1;
}

static unsigned valid_notify(unsigned n)
{
	if ((n & ~(QF_NOTIFY_SUCCESS | QF_NOTIFY_FAILURE | QF_NOTIFY_DELAY | QF_NOTIFY_NEVER)) ||
	    ((n & QF_NOTIFY_NEVER) && n != QF_NOTIFY_NEVER))
		return 0;
	return n;
}

static void make_envelope(const struct forward_job *j, const char *qid, struct qf_envelope *e)
{
	static const enum qf_body body[] = {
		[DELIVER_BODY_7BIT] = QF_BODY_7BIT,
		[DELIVER_BODY_8BITMIME] = QF_BODY_8BITMIME,
		[DELIVER_BODY_BINARYMIME] = QF_BODY_BINARYMIME,
	};

	*e = (struct qf_envelope){ .arrival_ms = wall_ms(), .sender = xstrdup(j->src.sender),
				   .client_addr = xstrdup(""), .client_name = xstrdup("localhost"),
				   .helo = xstrdup(""), .body = body[j->r->req.body],
				   .flags = j->r->req.smtputf8 ? QF_F_SMTPUTF8 : 0,
				   .nrcpt = j->naddrs };
	(void)str_copy(e->qid, sizeof(e->qid), qid);
	e->rcpt = xcalloc(j->naddrs, sizeof(*e->rcpt));
	for (size_t i = 0; i < j->naddrs; i++) {
		e->rcpt[i].addr = xstrdup(j->addrs[i]);
		e->rcpt[i].notify = valid_notify(j->notify);
	}
}

static void free_envelope(struct qf_envelope *e)
{
	for (size_t i = 0; i < e->nrcpt; i++)
		free(e->rcpt[i].addr);
	free(e->rcpt);
	free(e->sender);
	free(e->client_addr);
	free(e->client_name);
	free(e->helo);
}

/* Delivered-To: and the message bytes into the writer: 0, or -1 with errno. */
static int copy_message(const struct forward_job *j, struct qf_writer *w)
{
	char *buf = xmalloc(COPY_BUF);
	uint64_t done = 0;
	int rc = 0;

	if (str_fmt(buf, COPY_BUF, "Delivered-To: %s\r\n", j->src.delivered_to) < 0 ||
	    qf_writer_body(w, buf, strlen(buf)) < 0)
		rc = -1;
	while (rc == 0 && done < j->src.len) {
		uint64_t left = j->src.len - done;
		ssize_t n = pread(j->src.fd, buf, left < COPY_BUF ? (size_t)left : COPY_BUF,
				  j->src.off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			rc = -1;
		} else if (qf_writer_body(w, buf, (size_t)n) < 0) {
			rc = -1;
		} else {
			done += (uint64_t)n;
		}
	}
	free(buf);
	return rc;
}

/* The whole queue file into fd: 0, or -1 with why. */
static int write_file(const struct forward_job *j, const char *qid, int fd, char *why,
		      size_t whylen)
{
	struct qf_envelope env;
	struct qf_writer *w;
	int rc = -1;

	make_envelope(j, qid, &env);
	w = qf_writer_begin(fd, &env, why, whylen);
	if (w != NULL) {
		if (copy_message(j, w) < 0) {
			(void)str_fmt(why, whylen, "copying the message: %s", strerror(errno));
			qf_writer_abort(w);
		} else if (qf_writer_end(w) < 0) {
			(void)str_fmt(why, whylen, "writing the queue file: %s", strerror(errno));
		} else {
			rc = 0;
		}
	}
	free_envelope(&env);
	return rc;
}

void forward_deliver(void *arg, struct lresult *res)
{
	const struct forward_job *j = arg;
	char qid[QF_QID_SIZE], why[256] = "";
	int sock = ipc_connect(L.queue_path, QUEUE_TIMEOUT_MS), fd = -1;

	if (sock < 0)
		(void)str_fmt(why, sizeof(why), "connect to %s: %s", L.queue_path,
			      strerror(errno));
	else if (create(sock, qid, &fd, why, sizeof(why)) == 0 &&
		 write_file(j, qid, fd, why, sizeof(why)) == 0 &&
		 commit(sock, qid, why, sizeof(why)) == 0) {
		lresult_set(res, 250, "2.0.0", "forwarded as %s", qid);
	}
	if (res->code == 0) {
		msg_warn("%s: cannot forward to %zu address(es) for %s: %s", j->r->req.qid,
			 j->naddrs, j->src.delivered_to, why);
		lresult_set(res, 451, "4.3.0", "cannot forward the message: %.200s; deferred",
			    why);
	}
	if (fd >= 0)
		(void)close(fd);
	if (sock >= 0)
		(void)close(sock);	/* an uncommitted file dies with the connection */
}
