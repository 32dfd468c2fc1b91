/*
 * conn.c: the queue daemon's IPC clients (lib/queueproto.h). Each connection's peer uid is
 * read once with SO_PEERCRED and checked against the allow-list on every request. A
 * connection owns the uncommitted files it created, at most QUEUE_MAX_PER_CONN of them;
 * only it can commit or abort them, and when it closes they are removed. A connection that
 * closes while its commits are with the committer stays as a husk until they come back, so
 * a late answer never reaches a reused descriptor.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "queueproto.h"
#include "util.h"

struct conn {
	int fd;			/* -1 once closed */
	uid_t uid;
	pid_t pid;
	int pending;		/* commits with the committer */
	struct tmpfile files[QUEUE_MAX_PER_CONN];	/* fd -1: free slot */
};

static struct ipc_msg req, reply;	/* the main thread handles one frame at a time */

static void conn_release(struct conn *c)
{
	if (c->fd < 0 && c->pending == 0)
		free(c);
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		for (int i = 0; i < QUEUE_MAX_PER_CONN; i++)
			if (c->files[i].fd >= 0) {
				msg_debug("%s: removed: client pid %d went away", c->files[i].qid,
					  (int)c->pid);
				tmp_discard(&c->files[i]);
			}
		ev_fd_del(Q.loop, c->fd);
		close(c->fd);
		c->fd = -1;
		Q.nclients--;
	}
	conn_release(c);
}

static void send_reply(struct conn *c, const struct ipc_msg *m)
{
	if (c->fd < 0)
		return;
	/* Replies are small and the socket buffer large: a peer that lets it fill up is
	 * broken or hostile, and loses its connection rather than stalling the queue. */
	if (ipc_send(c->fd, m) < 0) {
		msg_warn("reply to pid %d failed: %m; closing", (int)c->pid);
		conn_close(c);
	}
}

static void reply_status(struct conn *c, const struct ipc_msg *r, enum ipc_status st,
			 const char *reason, const char *qid)
{
	ipc_reply_init(&reply, r, st);
	if (qid)
		ipc_put_str(&reply, "id", qid);
	if (reason)
		ipc_put_str(&reply, "reason", reason);
	send_reply(c, &reply);
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

static void handle_create(struct conn *c, const struct ipc_msg *m)
{
	static const char *const keys[] = { "client", NULL };
	struct tmpfile *tf = free_slot(c);
	char reason[QUEUE_REASON_LEN];

	if (ipc_check_keys(m, keys) < 0) {
		reply_status(c, m, IPC_PERMFAIL, "malformed request", NULL);
		return;
	}
	if (tf == NULL || Q.ntmp >= QUEUE_MAX_TMP) {
		msg_warn("refusing a new queue file for pid %d: too many uncommitted files",
			 (int)c->pid);
		reply_status(c, m, IPC_TEMPFAIL, "too many uncommitted queue files", NULL);
		return;
	}
	if (tmp_space_ok(reason, sizeof(reason)) < 0 ||
	    tmp_create(tf, reason, sizeof(reason)) < 0) {
		tf->fd = -1;
		reply_status(c, m, IPC_TEMPFAIL, reason, NULL);
		return;
	}
	ipc_reply_init(&reply, m, IPC_OK);
	if (ipc_put_str(&reply, "id", tf->qid) < 0 || ipc_put_fd(&reply, tf->fd) < 0)
		msg_panic("cannot build a CREATE reply");
	msg_debug("%s: created for pid %d (%s)", tf->qid, (int)c->pid,
		  ipc_get_str(m, "client") ? ipc_get_str(m, "client") : "no client");
	send_reply(c, &reply);
}

static void commit_done(struct commit_job *job)
{
	struct conn *c = job->arg;
	char why[QUEUE_REASON_LEN];

	c->pending--;
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
	send_reply(c, &reply);
	free(job);
	conn_release(c);
}

static void handle_commit(struct conn *c, const struct ipc_msg *m)
{
	static const char *const keys[] = { "id", NULL };
	const char *qid = ipc_get_str(m, "id");
	struct tmpfile *tf = ipc_check_keys(m, keys) == 0 ? find_file(c, qid) : NULL;
	char reason[QUEUE_REASON_LEN];
	struct commit_job *job;
	int status;

	if (tf == NULL) {
		reply_status(c, m, IPC_PERMFAIL, "no such queue file on this connection", NULL);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->tf = *tf;
	tf->fd = -1;		/* the job owns it now */
	if (commit_validate(&job->tf, &job->nrcpt, &job->size, &status, reason,
			    sizeof(reason)) < 0) {
		msg_warn("%s: refused from pid %d: %s", job->tf.qid, (int)c->pid, reason);
		tmp_discard(&job->tf);
		reply_status(c, m, (enum ipc_status)status, reason, qid);
		free(job);
		return;
	}
	job->done = commit_done;
	job->arg = c;
	job->req_id = m->id;
	c->pending++;
	committer_submit(job);
}

static void handle_abort(struct conn *c, const struct ipc_msg *m)
{
	static const char *const keys[] = { "id", NULL };
	const char *qid = ipc_get_str(m, "id");
	struct tmpfile *tf = ipc_check_keys(m, keys) == 0 ? find_file(c, qid) : NULL;

	if (tf == NULL) {
		reply_status(c, m, IPC_PERMFAIL, "no such queue file on this connection", NULL);
		return;
	}
	msg_debug("%s: aborted by pid %d", tf->qid, (int)c->pid);
	tmp_discard(tf);
	reply_status(c, m, IPC_OK, NULL, qid);	/* qid points into m, not into tf */
}

static void handle_request(struct conn *c, const struct ipc_msg *m)
{
	if (m->type < QUEUE_REQ_CREATE || m->type > QUEUE_REQ_ABORT) {
		reply_status(c, m, IPC_PERMFAIL, "unknown request type", NULL);
		return;
	}
	if (!ipc_allow_check(&Q.allow, c->uid)) {
		msg_warn("refused request type %d from pid %d uid %d: not allowed", m->type,
			 (int)c->pid, (int)c->uid);
		reply_status(c, m, IPC_PERMFAIL, "not allowed", NULL);
		return;
	}
	switch (m->type) {
	case QUEUE_REQ_CREATE: handle_create(c, m); break;
	case QUEUE_REQ_COMMIT: handle_commit(c, m); break;
	default: handle_abort(c, m); break;
	}
}

static void on_readable(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct conn *c = arg;
	int r;

	(void)loop, (void)fd, (void)revents;
	/* A few frames per wake-up: fair to other clients, cheap for pipelining ones. */
	for (int i = 0; i < 16 && c->fd >= 0; i++) {
		r = ipc_recv(c->fd, &req);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			if (r < 0)
				msg_warn("client pid %d: %m; closing", (int)c->pid);
			conn_close(c);
			return;
		}
		if (req.nfds > 0) {
			ipc_close_fds(&req);
			msg_warn("client pid %d sent descriptors; closing", (int)c->pid);
			conn_close(c);
			return;
		}
		handle_request(c, &req);
	}
}

void conn_accept(struct ev_loop *loop, int lfd, int revents, void *arg)
{
	struct conn *c;
	gid_t gid;
	int fd;

	(void)revents, (void)arg;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		if (Q.nclients >= QUEUE_MAX_CLIENTS) {
			msg_warn("too many clients (%d); refusing one", Q.nclients);
			close(fd);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		for (int i = 0; i < QUEUE_MAX_PER_CONN; i++)
			c->files[i].fd = -1;
		if (ipc_peercred(fd, &c->pid, &c->uid, &gid) < 0 ||
		    ev_fd_add(loop, fd, POLLIN, on_readable, c) < 0) {
			msg_warn("client: %m; closing");
			close(fd);
			free(c);
			continue;
		}
		Q.nclients++;
	}
}
