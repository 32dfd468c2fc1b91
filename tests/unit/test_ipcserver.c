/*
 * test_ipcserver.c: unit tests for lib/ipcserver.c: requests dispatched with the peer's
 * credentials and per-peer data, replies and allow-list refusals, peers sending descriptors
 * or garbage closed, the client limit and its overflow, a held peer outliving its socket,
 * and ipc_server_free closing what is open.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipcserver.h"
#include "util.h"
#include "t.h"

/* What the callbacks saw. */
struct seen {
	int requests, opened, closed;
	uint16_t last_type;
	uint32_t last_id;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	struct ipc_peer *hold;		/* hold this peer on its first request */
	const struct ipc_allow *allow;	/* check requests against this list */
	int data_was_zero;
};

struct pdata {
	int requests;			/* per peer */
	char pad[40];
};

static struct ipc_msg msg, rmsg;

static void on_request(struct ipc_peer *p, struct ipc_msg *m)
{
	struct seen *s = ipc_server_arg(p->srv);
	struct pdata *d = p->data;

	s->requests++;
	d->requests++;
	s->last_type = m->type;
	s->last_id = m->id;
	s->pid = p->pid;
	s->uid = p->uid;
	s->gid = p->gid;
	if (s->hold == NULL && m->type == 9) {
		s->hold = p;
		ipc_peer_hold(p);
	}
	if (s->allow && !ipc_peer_allowed(p, m, s->allow))
		return;
	if (m->type == 8) {
		ipc_peer_close(p);	/* the server keeps p alive until we return */
		T_EQ_INT(p->fd, -1);
		T_EQ_INT(ipc_peer_reply(p, m, IPC_OK, NULL), -1);
		return;
	}
	ipc_reply_init(&rmsg, m, IPC_OK);
	ipc_put_int(&rmsg, "n", d->requests);
	(void)ipc_peer_send(p, &rmsg);
}

static int on_opened(struct ipc_peer *p)
{
	struct seen *s = ipc_server_arg(p->srv);
	const unsigned char *d = p->data;

	s->opened++;
	s->data_was_zero = 1;
	for (size_t i = 0; i < sizeof(struct pdata); i++)
		if (d[i] != 0)
			s->data_was_zero = 0;
	return 0;
}

static void on_closed(struct ipc_peer *p)
{
	struct seen *s = ipc_server_arg(p->srv);

	T_EQ_INT(p->fd, -1);
	s->closed++;
}

static const struct ipc_server_ops ops = {
	.data_size = sizeof(struct pdata),
	.opened = on_opened,
	.request = on_request,
	.closed = on_closed,
};

static void stop_loop(struct ev_loop *loop, void *arg)
{
	(void)arg;
	ev_stop(loop);
}

/* Run the loop for about ms milliseconds. */
static void pump(struct ev_loop *loop, int ms)
{
	T_CHECK(ev_timer_add(loop, ms, stop_loop, NULL) > 0);
	T_EQ_INT(ev_run(loop), 0);
}

/* A served socket pair: the server's end goes to srv, the client's (blocking) is returned. */
static int served_pair(struct ipc_server *srv, struct ipc_peer **peer)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		exit(2);
	}
	T_EQ_INT(fd_set_nonblock(sv[0], 1), 0);
	*peer = ipc_server_add(srv, sv[0]);
	T_CHECK(*peer != NULL);
	return sv[1];
}

static int send_req(int fd, uint16_t type, uint32_t id)
{
	ipc_msg_init(&msg, type, id);
	return ipc_send(fd, &msg);
}

/* The next frame on a blocking client socket: 1, 0 on EOF, -1 on error. */
static int recv_reply(int fd)
{
	return ipc_recv(fd, &msg);
}

static void test_request_dispatched_with_creds(void)
{
	struct ev_loop *loop = ev_new();
	struct seen s = { 0 };
	struct ipc_server *srv = ipc_server_new(loop, 4, &ops, &s);
	struct ipc_peer *p;
	int c = served_pair(srv, &p);
	int64_t n = 0;

	T_EQ_INT(s.opened, 1);
	T_EQ_INT(s.data_was_zero, 1);
	T_EQ_INT(ipc_server_clients(srv), 1);
	T_EQ_INT(p->pid, getpid());
	T_EQ_INT(p->uid, getuid());
	T_EQ_INT(p->gid, getgid());
	T_EQ_INT(send_req(c, 7, 42), 0);
	T_EQ_INT(send_req(c, 7, 43), 0);
	pump(loop, 30);
	T_EQ_INT(s.requests, 2);
	T_EQ_INT(s.last_type, 7);
	T_EQ_INT(s.last_id, 43);
	T_EQ_INT(s.pid, getpid());
	T_EQ_INT(s.uid, getuid());
	T_EQ_INT(recv_reply(c), 1);
	T_EQ_INT(msg.id, 42);
	T_EQ_INT(msg.status, IPC_OK);
	T_EQ_INT(recv_reply(c), 1);
	T_EQ_INT(msg.id, 43);
	T_EQ_INT(ipc_get_int(&msg, "n", &n), 0);
	T_EQ_INT(n, 2);			/* per-peer data kept between requests */
	/* More frames than one wake-up reads: all of them are served, none lost. */
	for (uint32_t i = 0; i < 40; i++)
		T_EQ_INT(send_req(c, 7, 100 + i), 0);
	pump(loop, 50);
	T_EQ_INT(s.requests, 42);
	T_EQ_INT(s.closed, 0);
	/* EOF closes the peer. */
	close(c);
	pump(loop, 20);
	T_EQ_INT(s.closed, 1);
	T_EQ_INT(ipc_server_clients(srv), 0);
	ipc_server_free(srv);
	ev_free(loop);
}

static void test_allow_list(void)
{
	struct ev_loop *loop = ev_new();
	struct ipc_allow none = { 0 }, me = { 1, { getuid() } };
	struct seen s = { .allow = &none };
	struct ipc_server *srv = ipc_server_new(loop, 4, &ops, &s);
	struct ipc_peer *p;
	int c = served_pair(srv, &p);

	T_EQ_INT(send_req(c, 5, 1), 0);
	pump(loop, 20);
	T_EQ_INT(recv_reply(c), 1);
	T_EQ_INT(msg.status, IPC_PERMFAIL);
	T_EQ_STR(ipc_get_str(&msg, "reason"), "not allowed");
	T_EQ_INT(msg.type, 5);
	T_EQ_INT(msg.id, 1);
	s.allow = &me;
	T_EQ_INT(send_req(c, 5, 2), 0);
	pump(loop, 20);
	T_EQ_INT(recv_reply(c), 1);
	T_EQ_INT(msg.status, IPC_OK);
	T_EQ_INT(s.closed, 0);
	close(c);
	ipc_server_free(srv);
	T_EQ_INT(s.closed, 1);		/* free closed the open peer */
	ev_free(loop);
}

static void test_descriptors_close_the_peer(void)
{
	struct ev_loop *loop = ev_new();
	struct seen s = { 0 };
	struct ipc_server *srv = ipc_server_new(loop, 4, &ops, &s);
	struct ipc_peer *p;
	int c = served_pair(srv, &p), pp[2];

	if (pipe(pp) < 0)
		exit(2);
	ipc_msg_init(&msg, 7, 1);
	T_EQ_INT(ipc_put_fd(&msg, pp[0]), 0);
	T_EQ_INT(ipc_send(c, &msg), 0);
	pump(loop, 20);
	T_EQ_INT(s.requests, 0);
	T_EQ_INT(s.closed, 1);
	T_EQ_INT(recv_reply(c), 0);	/* EOF */
	/* The received copy was closed: the pipe's read end is ours alone. */
	close(pp[0]);
	T_CHECK(write(pp[1], "x", 1) == -1 && errno == EPIPE);
	close(pp[1]);
	close(c);

	/* A malformed frame closes the peer too. */
	c = served_pair(srv, &p);
	T_EQ_INT(write(c, "garbage-garbage-garbage", 23), 23);
	pump(loop, 20);
	T_EQ_INT(s.requests, 0);
	T_EQ_INT(s.closed, 2);
	T_EQ_INT(ipc_server_clients(srv), 0);
	close(c);
	ipc_server_free(srv);
	ev_free(loop);
}

static void test_max_clients_and_overflow(void)
{
	struct ev_loop *loop = ev_new();
	struct seen s = { 0 };
	struct ipc_server *srv = ipc_server_new(loop, 2, &ops, &s);
	char dir[] = "/tmp/t_ipcserver.XXXXXX", path[128];
	int l, c[5];

	T_CHECK(mkdtemp(dir) != NULL);
	str_fmt(path, sizeof(path), "%s/sock", dir);
	l = ipc_listen(path, (uid_t)-1, (gid_t)-1, 0600, 16);
	T_CHECK(l >= 0);
	T_EQ_INT(fd_set_nonblock(l, 1), 0);
	T_EQ_INT(ipc_server_listen(srv, &l, 1), 0);
	for (int i = 0; i < 3; i++)
		c[i] = ipc_connect(path, 1000);
	pump(loop, 30);
	T_EQ_INT(ipc_server_clients(srv), 2);
	T_EQ_INT(s.opened, 2);
	T_EQ_INT(recv_reply(c[2]), 0);		/* the third was closed at once */
	T_EQ_INT(send_req(c[0], 7, 1), 0);
	pump(loop, 20);
	T_EQ_INT(recv_reply(c[0]), 1);
	/* With an overflow of one, the next is accepted over the limit, the one after not. */
	ipc_server_set_overflow(srv, 1);
	c[3] = ipc_connect(path, 1000);
	c[4] = ipc_connect(path, 1000);
	pump(loop, 30);
	T_EQ_INT(ipc_server_clients(srv), 2);
	T_EQ_INT(ipc_server_overflow(srv), 1);
	T_EQ_INT(recv_reply(c[4]), 0);
	T_EQ_INT(send_req(c[3], 7, 9), 0);
	pump(loop, 20);
	T_EQ_INT(recv_reply(c[3]), 1);		/* the over-limit peer is served */
	/* A slot freed is a slot taken again. */
	close(c[0]);
	pump(loop, 20);
	T_EQ_INT(ipc_server_clients(srv), 1);
	c[0] = ipc_connect(path, 1000);
	pump(loop, 20);
	T_EQ_INT(ipc_server_clients(srv), 2);
	ipc_server_free(srv);
	T_EQ_INT(s.closed, s.opened);
	for (int i = 0; i < 5; i++)
		close(c[i]);
	close(l);
	unlink(path);
	rmdir(dir);
	ev_free(loop);
}

static void test_hold_keeps_closed_peer(void)
{
	struct ev_loop *loop = ev_new();
	struct seen s = { 0 };
	struct ipc_server *srv = ipc_server_new(loop, 4, &ops, &s);
	struct ipc_peer *p;
	int c = served_pair(srv, &p);

	T_EQ_INT(send_req(c, 9, 1), 0);		/* type 9: the callback holds the peer */
	pump(loop, 20);
	T_CHECK(s.hold == p);
	T_EQ_INT(recv_reply(c), 1);
	close(c);
	pump(loop, 20);
	T_EQ_INT(s.closed, 1);
	/* Closed but allocated (ASan would see a use after free): a late answer is dropped. */
	T_EQ_INT(p->fd, -1);
	T_EQ_INT(((struct pdata *)p->data)->requests, 1);
	ipc_msg_init(&rmsg, 9, 1);
	T_EQ_INT(ipc_peer_send(p, &rmsg), -1);
	ipc_peer_close(p);			/* idempotent */
	T_EQ_INT(s.closed, 1);
	ipc_peer_release(p);			/* frees it (LeakSanitizer checks) */

	/* A request callback may close its own peer and still use it. */
	c = served_pair(srv, &p);
	T_EQ_INT(send_req(c, 8, 2), 0);
	T_EQ_INT(send_req(c, 7, 3), 0);
	pump(loop, 20);
	T_EQ_INT(s.closed, 2);
	T_EQ_INT(s.requests, 2);		/* nothing read after the close */
	T_CHECK(recv_reply(c) <= 0);		/* EOF, or a reset for the unread frame */
	close(c);
	ipc_server_free(srv);
	ev_free(loop);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);	/* the descriptor test writes to a closed pipe */
	T_RUN(test_request_dispatched_with_creds);
	T_RUN(test_allow_list);
	T_RUN(test_descriptors_close_the_peer);
	T_RUN(test_max_clients_and_overflow);
	T_RUN(test_hold_keeps_closed_peer);
	return T_DONE();
}
