/*
 * single.c: postern-testd's single-daemon mode: an event loop serving IPC PING requests on
 * the private sockets master handed over, with an SO_PEERCRED allow-list, as every real
 * Postern IPC server will.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testd.h"
#include "event.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

static struct ipc_allow allowed;
static const char *const ping_keys[] = { "text", NULL };

static void answer(int fd, const struct ipc_msg *req, uid_t uid)
{
	static struct ipc_msg reply;
	const char *text;

	if (!ipc_allow_check(&allowed, uid)) {
		ipc_reply_init(&reply, req, IPC_PERMFAIL);
		ipc_put_str(&reply, "reason", "peer not allowed");
		msg_warn("refused IPC request from uid %d", (int)uid);
	} else if (req->type != TESTD_PING || ipc_check_keys(req, ping_keys) < 0 ||
		   (text = ipc_get_str(req, "text")) == NULL) {
		ipc_reply_init(&reply, req, IPC_PERMFAIL);
		ipc_put_str(&reply, "reason", "bad request");
	} else {
		ipc_reply_init(&reply, req, IPC_OK);
		ipc_put_str(&reply, "text", text);
		ipc_put_int(&reply, "pid", getpid());
		ipc_put_int(&reply, "uid", (int64_t)getuid());
	}
	if (ipc_send(fd, &reply) < 0 && errno != EAGAIN)
		msg_warn("IPC send: %m");
}

static void on_client(struct ev_loop *loop, int fd, int revents, void *arg)
{
	static struct ipc_msg req;
	uid_t uid = (uid_t)-1;
	gid_t gid;
	pid_t pid;
	int r;

	(void)arg, (void)revents;
	r = ipc_recv(fd, &req);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		if (r < 0)
			msg_warn("IPC client: %m; closing");
		ev_fd_del(loop, fd);
		close(fd);
		return;
	}
	ipc_close_fds(&req);
	if (ipc_peercred(fd, &pid, &uid, &gid) < 0)
		uid = (uid_t)-1;
	answer(fd, &req, uid);
}

static void on_accept(struct ev_loop *loop, int lfd, int revents, void *arg)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	(void)revents, (void)arg;
	if (fd < 0)
		return;
	if (ev_fd_add(loop, fd, POLLIN, on_client, NULL) < 0)
		close(fd);
}

static void on_signal(struct ev_loop *loop, int sig, void *arg)
{
	(void)arg;
	if (sig == SIGHUP) {
		msg_info("reload requested; nothing to reload");
		return;
	}
	msg_info("stopping on signal %d", sig);
	ev_stop(loop);
}

/* Before the chroot: user names resolve only where /etc/passwd is. */
void testd_single_pre_drop(struct server *srv)
{
	const char *users[] = { "root", conf_str(srv->cfg, "mail_owner"), NULL };

	if (ipc_allow_init(&allowed, users) < 0)
		msg_warn("some allowed IPC peers are unknown users");
}

int testd_run_single(struct server *srv)
{
	struct ev_loop *loop = ev_new();

	for (int i = 0; i < srv->nlisten; i++)
		ev_fd_add(loop, srv->listen_fd[i], POLLIN, on_accept, NULL);
	ev_signal_add(loop, SIGTERM, on_signal, NULL);
	ev_signal_add(loop, SIGHUP, on_signal, NULL);
	server_report_ready(srv);
	msg_info("ready");
	ev_run(loop);
	ev_free(loop);
	return 0;
}
