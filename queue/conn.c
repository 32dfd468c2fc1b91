/*
 * conn.c: the queue daemon's requests (lib/queueproto.h) on lib/ipcserver.c's connections.
 * The peer is checked against the allow-list on every request. A connection owns the
 * uncommitted files it created, at most QUEUE_MAX_PER_CONN of them; only it can commit or
 * abort them, and when it closes they are removed. Each commit with the committer holds its
 * peer, so a connection that closes meanwhile stays allocated until it comes back and a late
 * answer never reaches a reused descriptor.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "queueproto.h"
#include "util.h"

/* The per-connection state (ipc_peer.data). */
struct conn {
	struct tmpfile files[QUEUE_MAX_PER_CONN];	/* fd -1: free slot */
};

static struct ipc_msg reply;	/* the main thread handles one frame at a time */

static int conn_opened(struct ipc_peer *p)
{
	struct conn *c = p->data;

	for (int i = 0; i < QUEUE_MAX_PER_CONN; i++)
		c->files[i].fd = -1;
	return 0;
}

static void conn_closed(struct ipc_peer *p)
{
	struct conn *c = p->data;

	for (int i = 0; i < QUEUE_MAX_PER_CONN; i++)
		if (c->files[i].fd >= 0) {
			msg_debug("%s: removed: client pid %d went away", c->files[i].qid,
				  (int)p->pid);
			tmp_discard(&c->files[i]);
		}
}

static void reply_status(struct ipc_peer *p, const struct ipc_msg *r, enum ipc_status st,
			 const char *reason, const char *qid)
{
	ipc_reply_init(&reply, r, st);
	if (qid)
		ipc_put_str(&reply, "id", qid);
	if (reason)
		ipc_put_str(&reply, "reason", reason);
	(void)ipc_peer_send(p, &reply);
}

static struct tmpfile *find_file(struct conn *c, const char *qid)
{
	if (qid == NULL || !qid_valid(qid))
		return NULL;
	for (int i = 0; i < QUEUE_MAX_PER_CONN; i++)
		if (c->files[i].fd >= 0 && strcmp(c->files[i].qid, qid) == 0)
			return &c->files[i];
	return NULL;
}

static struct tmpfile *free_slot(struct conn *c)
{
	for (int i = 0; i < QUEUE_MAX_PER_CONN; i++)
		if (c->files[i].fd < 0)
			return &c->files[i];
	return NULL;
}

static void handle_create(struct ipc_peer *p, const struct ipc_msg *m)
{
	static const char *const keys[] = { "client", NULL };
	struct tmpfile *tf = free_slot(p->data);
	char reason[QUEUE_REASON_LEN];

	if (ipc_check_keys(m, keys) < 0) {
		reply_status(p, m, IPC_PERMFAIL, "malformed request", NULL);
		return;
	}
	if (tf == NULL || Q.ntmp >= QUEUE_MAX_TMP) {
		msg_warn("refusing a new queue file for pid %d: too many uncommitted files",
			 (int)p->pid);
		reply_status(p, m, IPC_TEMPFAIL, "too many uncommitted queue files", NULL);
		return;
	}
	if (tmp_space_ok(reason, sizeof(reason)) < 0 ||
	    tmp_create(tf, reason, sizeof(reason)) < 0) {
		tf->fd = -1;
		reply_status(p, m, IPC_TEMPFAIL, reason, NULL);
		return;
	}
	ipc_reply_init(&reply, m, IPC_OK);
	if (ipc_put_str(&reply, "id", tf->qid) < 0 || ipc_put_fd(&reply, tf->fd) < 0)
		msg_panic("cannot build a CREATE reply");
	msg_debug("%s: created for pid %d (%s)", tf->qid, (int)p->pid,
		  ipc_get_str(m, "client") ? ipc_get_str(m, "client") : "no client");
	(void)ipc_peer_send(p, &reply);
}

static void commit_done(struct commit_job *job)
{
	struct ipc_peer *p = job->arg;
	char why[QUEUE_REASON_LEN];

	if (job->err == 0) {
		close(job->tf.fd);
		Q.ntmp--;
		msg_info("%s: committed, size=%llu, nrcpt=%zu", job->tf.qid,
			 (unsigned long long)job->size, job->nrcpt);
		ipc_msg_init(&reply, QUEUE_REQ_COMMIT, job->req_id);
		ipc_put_str(&reply, "id", job->tf.qid);
	} else {
		commit_error(job, why, sizeof(why));
		msg_warn("%s: commit failed: %s", job->tf.qid, why);
		tmp_discard(&job->tf);
		ipc_msg_init(&reply, QUEUE_REQ_COMMIT, job->req_id);
		reply.status = IPC_TEMPFAIL;
		ipc_put_str(&reply, "id", job->tf.qid);
		ipc_put_str(&reply, "reason", why);
	}
	(void)ipc_peer_send(p, &reply);
	free(job);
	ipc_peer_release(p);
}

static void handle_commit(struct ipc_peer *p, const struct ipc_msg *m)
{
	static const char *const keys[] = { "id", NULL };
	const char *qid = ipc_get_str(m, "id");
	struct tmpfile *tf = ipc_check_keys(m, keys) == 0 ? find_file(p->data, qid) : NULL;
	char reason[QUEUE_REASON_LEN];
	struct commit_job *job;
	int status;

	if (tf == NULL) {
		reply_status(p, m, IPC_PERMFAIL, "no such queue file on this connection", NULL);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->tf = *tf;
	tf->fd = -1;		/* the job owns it now */
	if (commit_validate(&job->tf, &job->nrcpt, &job->size, &status, reason,
			    sizeof(reason)) < 0) {
		msg_warn("%s: refused from pid %d: %s", job->tf.qid, (int)p->pid, reason);
		tmp_discard(&job->tf);
		reply_status(p, m, (enum ipc_status)status, reason, qid);
		free(job);
		return;
	}
	job->done = commit_done;
	job->arg = p;
	job->req_id = m->id;
	ipc_peer_hold(p);
	committer_submit(job);
}

static void handle_abort(struct ipc_peer *p, const struct ipc_msg *m)
{
	static const char *const keys[] = { "id", NULL };
	const char *qid = ipc_get_str(m, "id");
	struct tmpfile *tf = ipc_check_keys(m, keys) == 0 ? find_file(p->data, qid) : NULL;

	if (tf == NULL) {
		reply_status(p, m, IPC_PERMFAIL, "no such queue file on this connection", NULL);
		return;
	}
	msg_debug("%s: aborted by pid %d", tf->qid, (int)p->pid);
	tmp_discard(tf);
	reply_status(p, m, IPC_OK, NULL, qid);	/* qid points into m, not into tf */
}

static void handle_request(struct ipc_peer *p, struct ipc_msg *m)
{
	if (m->type < QUEUE_REQ_CREATE || m->type > QUEUE_REQ_ABORT) {
		reply_status(p, m, IPC_PERMFAIL, "unknown request type", NULL);
		return;
	}
	if (!ipc_peer_allowed(p, m, &Q.allow))
		return;
	switch (m->type) {
	case QUEUE_REQ_CREATE: handle_create(p, m); break;
	case QUEUE_REQ_COMMIT: handle_commit(p, m); break;
	default: handle_abort(p, m); break;
	}
}

const struct ipc_server_ops conn_ops = {
	.data_size = sizeof(struct conn),
	.opened = conn_opened,
	.request = handle_request,
	.closed = conn_closed,
};
