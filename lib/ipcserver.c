/*
 * ipcserver.c: the IPC server shared by the single daemons (see ipcserver.h): accepting,
 * peer credentials, client limits, the read loop, replies, allow-list refusals, and the
 * lifetime of peers that are held while their socket is gone.
 */
#include "ipcserver.h"

#include <errno.h>
#include <signal.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define FRAMES_PER_WAKEUP	16
#define ACCEPT_PAUSE_MS		100

/* A peer with its links and the daemon's data behind it. */
struct peer_box {
	struct ipc_peer p;
	struct peer_box *prev, *next;		/* open peers only */
	alignas(max_align_t) unsigned char data[];
};

struct listener {
	struct ipc_server *srv;
	int fd;
	uint64_t pause_timer;			/* 0 unless paused */
	struct listener *next;
};

struct ipc_server {
	struct ev_loop *loop;
	const struct ipc_server_ops *ops;
	void *arg;
	int max_clients, max_overflow;
	int nclients, noverflow;
	struct peer_box *open;			/* open peers */
	struct listener *listeners;
	struct ipc_msg *req, *reply;		/* one frame at a time */
};

struct ipc_server *ipc_server_new(struct ev_loop *loop, int max_clients,
				  const struct ipc_server_ops *ops, void *arg)
{
	struct ipc_server *srv = xcalloc(1, sizeof(*srv));

	srv->loop = loop;
	srv->ops = ops;
	srv->arg = arg;
	srv->max_clients = max_clients;
	srv->req = xmalloc(sizeof(*srv->req));
	srv->reply = xmalloc(sizeof(*srv->reply));
	return srv;
}

void ipc_server_free(struct ipc_server *srv)
{
	struct listener *l, *next;

	if (srv == NULL)
		return;
	while (srv->open)
		ipc_peer_close(&srv->open->p);
	for (l = srv->listeners; l; l = next) {
		next = l->next;
		if (l->pause_timer)
			ev_timer_cancel(srv->loop, l->pause_timer);
		else
			ev_fd_del(srv->loop, l->fd);
		free(l);
	}
	free(srv->req);
	free(srv->reply);
	free(srv);
}

void ipc_server_set_overflow(struct ipc_server *srv, int extra)
{
	srv->max_overflow = extra;
}

void *ipc_server_arg(const struct ipc_server *srv)
{
	return srv->arg;
}

struct ev_loop *ipc_server_loop(const struct ipc_server *srv)
{
	return srv->loop;
}

int ipc_server_clients(const struct ipc_server *srv)
{
	return srv->nclients;
}

int ipc_server_overflow(const struct ipc_server *srv)
{
	return srv->noverflow;
}

/* ---- peers --------------------------------------------------------------------------- */

static struct peer_box *box_of(struct ipc_peer *p)
{
	return (struct peer_box *)((char *)p - offsetof(struct peer_box, p));
}

static void unlink_open(struct ipc_server *srv, struct peer_box *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		srv->open = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->prev = b->next = NULL;
}

void ipc_peer_close(struct ipc_peer *p)
{
	struct ipc_server *srv = p->srv;

	if (p->fd < 0)
		return;
	ev_fd_del(srv->loop, p->fd);
	(void)close(p->fd);
	p->fd = -1;
	unlink_open(srv, box_of(p));
	if (p->over_limit)
		srv->noverflow--;
	else
		srv->nclients--;
	if (srv->ops->closed)
		srv->ops->closed(p);
	if (p->holds == 0)
		free(box_of(p));
}

void ipc_peer_hold(struct ipc_peer *p)
{
	p->holds++;
}

void ipc_peer_release(struct ipc_peer *p)
{
	if (p->holds <= 0)
		msg_panic("ipc_peer_release without a hold");
	if (--p->holds == 0 && p->fd < 0)
		free(box_of(p));
}

int ipc_peer_send(struct ipc_peer *p, const struct ipc_msg *m)
{
	if (p->fd < 0)
		return -1;
	/* Replies are small and the socket buffer large: a peer that lets it fill up is
	 * broken or hostile, and loses its connection rather than stalling the daemon. */
	if (ipc_send(p->fd, m) < 0) {
		/* EPIPE: the client gave up waiting (its timeout) and closed; nothing to say. */
		if (errno == EPIPE || errno == ECONNRESET)
			msg_debug("reply to pid %d: %m; closing", (int)p->pid);
		else
			msg_warn("reply to pid %d failed: %m; closing", (int)p->pid);
		ipc_peer_close(p);
		return -1;
	}
	return 0;
}

int ipc_peer_reply(struct ipc_peer *p, const struct ipc_msg *req, enum ipc_status st,
		   const char *reason)
{
	struct ipc_msg *reply = p->srv->reply;

	if (p->fd < 0)
		return -1;
	ipc_reply_init(reply, req, st);
	if (reason && ipc_put_str(reply, "reason", reason) < 0)
		msg_panic("cannot build a reply");
	return ipc_peer_send(p, reply);
}

bool ipc_peer_allowed(struct ipc_peer *p, const struct ipc_msg *req, const struct ipc_allow *a)
{
	if (ipc_allow_check(a, p->uid))
		return true;
	msg_warn("refused request type %d from pid %d uid %d: not allowed", req->type,
		 (int)p->pid, (int)p->uid);
	(void)ipc_peer_reply(p, req, IPC_PERMFAIL, "not allowed");
	return false;
}

/* ---- reading ------------------------------------------------------------------------- */

/* 1 if the frame in srv->req is a request to dispatch, else 0 (the peer may be closed). */
static int read_frame(struct ipc_server *srv, struct ipc_peer *p)
{
	int r = ipc_recv(p->fd, srv->req);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		if (r < 0 && errno != ECONNRESET)
			msg_warn("client pid %d: %m; closing", (int)p->pid);
		ipc_peer_close(p);
		return 0;
	}
	if (srv->req->nfds > srv->ops->max_fds) {
		ipc_close_fds(srv->req);
		msg_warn("client pid %d sent %d descriptors; closing", (int)p->pid,
			 srv->req->nfds);
		ipc_peer_close(p);
		return 0;
	}
	return 1;
}

static void on_readable(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct ipc_peer *p = arg;
	struct ipc_server *srv = p->srv;

	(void)loop, (void)fd, (void)revents;
	ipc_peer_hold(p);	/* the request callback may close it */
	/* A few frames per wake-up: fair to other clients, cheap for pipelining ones. */
	for (int i = 0; i < FRAMES_PER_WAKEUP && p->fd >= 0; i++) {
		if (!read_frame(srv, p))
			break;
		srv->ops->request(p, srv->req);
	}
	ipc_peer_release(p);
}

/* ---- accepting ----------------------------------------------------------------------- */

/* Counted, over the limit (true in *over), or refused (-1). */
static int admit(struct ipc_server *srv, bool *over)
{
	*over = srv->nclients >= srv->max_clients;
	if (*over && srv->noverflow >= srv->max_overflow) {
		/* With an overflow allowance, its refusals say why; past it, stay quiet. */
		if (srv->max_overflow == 0)
			msg_warn("too many clients (%d); refusing one", srv->nclients);
		return -1;
	}
	if (*over)
		msg_warn("too many clients (%d); refusing one", srv->nclients);
	return 0;
}

static struct peer_box *peer_new(struct ipc_server *srv, int fd, bool over)
{
	struct peer_box *b = xcalloc(1, sizeof(*b) + srv->ops->data_size);

	b->p.fd = fd;
	b->p.over_limit = over;
	b->p.data = b->data;
	b->p.srv = srv;
	return b;
}

struct ipc_peer *ipc_server_add(struct ipc_server *srv, int fd)
{
	struct peer_box *b;
	bool over;

	if (admit(srv, &over) < 0) {
		(void)close(fd);
		return NULL;
	}
	b = peer_new(srv, fd, over);
	if (ipc_peercred(fd, &b->p.pid, &b->p.uid, &b->p.gid) < 0 ||
	    ev_fd_add(srv->loop, fd, POLLIN, on_readable, &b->p) < 0) {
		msg_warn("client: %m; closing");
		(void)close(fd);
		free(b);
		return NULL;
	}
	if (srv->ops->opened && srv->ops->opened(&b->p) < 0) {
		ev_fd_del(srv->loop, fd);
		(void)close(fd);
		free(b);
		return NULL;
	}
	b->next = srv->open;
	if (b->next)
		b->next->prev = b;
	srv->open = b;
	if (over)
		srv->noverflow++;
	else
		srv->nclients++;
	return &b->p;
}

static void on_acceptable(struct ev_loop *loop, int lfd, int revents, void *arg);

static void resume_accept(struct ev_loop *loop, void *arg)
{
	struct listener *l = arg;

	l->pause_timer = 0;
	if (ev_fd_add(loop, l->fd, POLLIN, on_acceptable, l) < 0)
		msg_fatal("cannot watch the listener again: %m");
}

/* Out of descriptors: stop watching the listener for a moment (it would stay readable). */
static void pause_accept(struct listener *l)
{
	msg_warn("accept: %m; pausing for %d ms", ACCEPT_PAUSE_MS);
	ev_fd_del(l->srv->loop, l->fd);
	l->pause_timer = ev_timer_add(l->srv->loop, ACCEPT_PAUSE_MS, resume_accept, l);
	if (l->pause_timer == 0)
		msg_fatal("cannot add a timer");
}

static void on_acceptable(struct ev_loop *loop, int lfd, int revents, void *arg)
{
	struct listener *l = arg;
	int fd;

	(void)loop, (void)revents;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
		(void)ipc_server_add(l->srv, fd);
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
		pause_accept(l);
}

int ipc_server_listen(struct ipc_server *srv, const int *lfd, int n)
{
	for (int i = 0; i < n; i++) {
		struct listener *l = xcalloc(1, sizeof(*l));

		l->srv = srv;
		l->fd = lfd[i];
		if (ev_fd_add(srv->loop, l->fd, POLLIN, on_acceptable, l) < 0) {
			free(l);
			return -1;
		}
		l->next = srv->listeners;
		srv->listeners = l;
	}
	return 0;
}

/* ---- the daemon around it ------------------------------------------------------------ */

static void (*hup_handler)(void);

static void on_signal(struct ev_loop *loop, int sig, void *arg)
{
	(void)arg;
	if (sig == SIGHUP) {
		if (hup_handler)
			hup_handler();
		return;
	}
	msg_info("stopping on signal %d", sig);
	ev_stop(loop);
}

void ipc_server_signals(struct ev_loop *loop, void (*on_hup)(void))
{
	hup_handler = on_hup;
	if (ev_signal_add(loop, SIGTERM, on_signal, NULL) < 0 ||
	    ev_signal_add(loop, SIGHUP, on_signal, NULL) < 0)
		msg_fatal("cannot watch signals: %m");
}

void ipc_server_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			msg_warn("setrlimit(RLIMIT_NOFILE): %m");
	}
}
