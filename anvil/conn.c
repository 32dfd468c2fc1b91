/*
 * conn.c: postern-anvil's client sockets. Each connection's peer uid is read once with
 * SO_PEERCRED and checked against the allow-list on every request. A connection holds at
 * most one registration; when the socket closes (the session ended, or its process exited
 * or died) the registration goes with it, so a crashed smtpd never leaks a count.
 *
 * At most ANVIL_MAX_CLIENTS connections are counted. A few more are accepted only to answer
 * TEMPFAIL and be closed (their smtpd then fails open and says why); beyond those, new
 * connections are closed at once. Running out of descriptors pauses accepting briefly
 * instead of spinning on a listener that stays readable.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "anvil.h"
#include "log.h"
#include "util.h"

#define ACCEPT_PAUSE_MS	100

struct conn {
	int fd;
	uid_t uid;
	pid_t pid;
	bool refusing;			/* over ANVIL_MAX_CLIENTS: answer TEMPFAIL, then close */
	struct anvil_entry *reg;	/* NULL until CONNECT */
};

static struct ipc_msg req, reply;	/* one frame at a time */

static void conn_close(struct conn *c)
{
	if (c->reg)
		table_drop(c->reg);
	ev_fd_del(AV.loop, c->fd);
	(void)close(c->fd);
	if (c->refusing)
		AV.nrefusing--;
	else
		AV.nclients--;
	free(c);
}

/* 0, or -1 when the connection had to be closed. */
static int send_reply(struct conn *c, const struct ipc_msg *m)
{
	/* Replies are tiny and the client waits for each: a full socket buffer means a broken
	 * or hostile peer, which loses its connection rather than stalling everyone. */
	if (ipc_send(c->fd, m) < 0) {
		/* EPIPE: the client gave up waiting (its timeout) and closed; nothing to say. */
		if (errno == EPIPE || errno == ECONNRESET)
			msg_debug("reply to pid %d: %m; closing", (int)c->pid);
		else
			msg_warn("reply to pid %d failed: %m; closing", (int)c->pid);
		conn_close(c);
		return -1;
	}
	return 0;
}

static int reply_fail(struct conn *c, const struct ipc_msg *m, enum ipc_status st,
		      const char *reason)
{
	ipc_reply_init(&reply, m, st);
	(void)ipc_put_str(&reply, "reason", reason);
	return send_reply(c, &reply);
}

static int handle_connect(struct conn *c, const struct ipc_msg *m)
{
	static const char *const keys[] = { "service", "rip", NULL };
	const char *service = ipc_get_str(m, "service"), *rip = ipc_get_str(m, "rip");
	struct anvil_entry *old = c->reg;

	if (ipc_check_keys(m, keys) < 0 || service == NULL || rip == NULL ||
	    !anvil_valid_service(service) || !anvil_valid_rip(rip))
		return reply_fail(c, m, IPC_PERMFAIL, "malformed request");
	if (c->refusing) {
		if (reply_fail(c, m, IPC_TEMPFAIL, "too many clients") == 0)
			conn_close(c);
		return -1;
	}
	/* Add before dropping: re-registering the same pair must not free its entry. */
	c->reg = table_add(service, rip);
	if (old)
		table_drop(old);
	msg_debug("connect: %s:%s count %d (pid %d)", service, rip, c->reg->count, (int)c->pid);
	ipc_reply_init(&reply, m, IPC_OK);
	if (ipc_put_int(&reply, "count", c->reg->count) < 0)
		msg_panic("cannot build a CONNECT reply");
	return send_reply(c, &reply);
}

/* 0, or -1 when the connection was closed. */
static int handle_request(struct conn *c, const struct ipc_msg *m)
{
	if (m->type != ANVIL_REQ_CONNECT)
		return reply_fail(c, m, IPC_PERMFAIL, "unknown request type");
	if (!ipc_allow_check(&AV.allow, c->uid)) {
		msg_warn("refused request type %d from pid %d uid %d: not allowed", m->type,
			 (int)c->pid, (int)c->uid);
		return reply_fail(c, m, IPC_PERMFAIL, "not allowed");
	}
	return handle_connect(c, m);
}

static void on_readable(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct conn *c = arg;
	int r;

	(void)loop, (void)fd, (void)revents;
	/* A few frames per wake-up, fair to the other clients. */
	for (int i = 0; i < 16; i++) {
		r = ipc_recv(c->fd, &req);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			if (r < 0 && errno != ECONNRESET)
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
		if (handle_request(c, &req) < 0)
			return;
	}
}

static void resume_accept(struct ev_loop *loop, void *arg)
{
	int lfd = (int)(intptr_t)arg;

	if (ev_fd_add(loop, lfd, POLLIN, conn_accept, NULL) < 0)
		msg_fatal("cannot watch the listener again: %m");
}

/* Out of descriptors: stop watching the listener for a moment (it would stay readable). */
static void pause_accept(struct ev_loop *loop, int lfd)
{
	msg_warn("accept: %m; pausing for %d ms", ACCEPT_PAUSE_MS);
	ev_fd_del(loop, lfd);
	if (ev_timer_add(loop, ACCEPT_PAUSE_MS, resume_accept, (void *)(intptr_t)lfd) == 0)
		msg_fatal("cannot add a timer");
}

static void add_conn(struct ev_loop *loop, int fd, bool refusing)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	gid_t gid;

	c->fd = fd;
	c->refusing = refusing;
	if (ipc_peercred(fd, &c->pid, &c->uid, &gid) < 0 ||
	    ev_fd_add(loop, fd, POLLIN, on_readable, c) < 0) {
		msg_warn("client: %m; closing");
		(void)close(fd);
		free(c);
		return;
	}
	if (refusing)
		AV.nrefusing++;
	else
		AV.nclients++;
}

void conn_accept(struct ev_loop *loop, int lfd, int revents, void *arg)
{
	int fd;

	(void)revents, (void)arg;
	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_accept(loop, lfd);
			return;
		}
		if (AV.nclients < ANVIL_MAX_CLIENTS) {
			add_conn(loop, fd, false);
		} else if (AV.nrefusing < ANVIL_MAX_REFUSING) {
			msg_warn("too many clients (%d); refusing one", AV.nclients);
			add_conn(loop, fd, true);
		} else {
			(void)close(fd);
		}
	}
}
