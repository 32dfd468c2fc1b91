/*
 * queue_client.c: smtpd's side of lib/queueproto.h. The queue daemon alone creates queue
 * files; smtpd gets an open descriptor (CREATE), writes the whole file into it, and asks for
 * the durable commit (COMMIT). Only an OK to COMMIT allows "250 ... queued as". One
 * connection per session, opened on first use; closing it aborts uncommitted files.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"
#include "ipc.h"
#include "log.h"
#include "queueproto.h"
#include "util.h"

static struct ipc_msg req, rep;

static int call(struct session *ss, char *reason, size_t rlen)
{
	const char *r;

	if (ss->queue_sock < 0)
		ss->queue_sock = ipc_connect(ss->cf->queue_path, QUEUE_TIMEOUT_MS);
	if (ss->queue_sock < 0) {
		(void)str_fmt(reason, rlen, "connect to %s: %s", ss->cf->queue_path, strerror(errno));
		return IPC_TEMPFAIL;
	}
	if (ipc_call(ss->queue_sock, &req, &rep, QUEUE_TIMEOUT_MS) < 0) {
		(void)str_fmt(reason, rlen, "queue daemon: %s", strerror(errno));
		(void)close(ss->queue_sock);
		ss->queue_sock = -1;
		return IPC_TEMPFAIL;
	}
	r = ipc_get_str(&rep, "reason");
	(void)str_copy(reason, rlen, r ? r : "");
	if (rep.status != IPC_OK && rep.status != IPC_PERMFAIL)
		return IPC_TEMPFAIL;
	return rep.status;
}

int queue_create(struct session *ss, char *qid, int *fd, char *reason, size_t rlen)
{
	const char *id;
	int st;

	ipc_msg_init(&req, QUEUE_REQ_CREATE, ++ss->ipc_id);
	(void)ipc_put_str(&req, "client", ss->namaddr);
	st = call(ss, reason, rlen);
	if (st != IPC_OK) {
		ipc_close_fds(&rep);
		return st;
	}
	id = ipc_get_str(&rep, "id");
	if (id == NULL || !qid_valid(id) || rep.nfds != 1) {
		ipc_close_fds(&rep);
		(void)str_copy(reason, rlen, "malformed CREATE reply");
		return IPC_TEMPFAIL;
	}
	(void)str_copy(qid, QF_QID_SIZE, id);
	*fd = rep.fds[0];
	return IPC_OK;
}

int queue_commit(struct session *ss, const char *qid, char *reason, size_t rlen)
{
	int st;

	ipc_msg_init(&req, QUEUE_REQ_COMMIT, ++ss->ipc_id);
	(void)ipc_put_str(&req, "id", qid);
	st = call(ss, reason, rlen);
	ipc_close_fds(&rep);
	return st;
}

void queue_abort(struct session *ss, const char *qid)
{
	char reason[256];

	if (ss->queue_sock < 0)
		return;
	ipc_msg_init(&req, QUEUE_REQ_ABORT, ++ss->ipc_id);
	(void)ipc_put_str(&req, "id", qid);
	if (call(ss, reason, sizeof(reason)) != IPC_OK)
		msg_warn("%s: abort: %s", qid, reason);
	ipc_close_fds(&rep);
}
