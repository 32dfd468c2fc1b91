/*
 * test_server.c: unit tests for lib/server.c's pool mode, run for real. A forked child sets
 * up the descriptors of server.h's contract (status pipe on fd 3, a TCP listener on
 * 127.0.0.1 on fd 4) and calls server_main with "-c CONF -n test -l 1 -u -f"; the parent
 * plays master and client. Covered: the avail/busy status records, exit after max_use
 * clients, after max_idle without one, promptly on SIGHUP when idle, and after the current
 * client on SIGHUP when busy (server_stopping); the hooks see the contract (fds, flags,
 * peer, no new privileges) and the client socket is blocking and close-on-exec.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inet.h"
#include "log.h"
#include "server.h"
#include "t.h"
#include "util.h"

static char dir[64], conf[128];

/* ---- the daemon side (runs in the child) ------------------------------------------------- */

static bool fd_has(int fd, int getcmd, int flag)
{
	int f = fcntl(fd, getcmd);

	return f >= 0 && (f & flag) != 0;
}

/* The skeleton kept its side of the contract; anything else is fatal (exit 1). */
static void post_drop(struct server *srv)
{
	if (strcmp(srv->service, "test") != 0 || strcmp(srv->conf_path, conf) != 0)
		msg_fatal("post_drop: wrong service or configuration");
	if (!srv->dev_mode || !srv->foreground)
		msg_fatal("post_drop: -u or -f not seen");
	if (srv->nlisten != 1 || srv->listen_fd[0] != SERVER_LISTEN_FD ||
	    srv->status_fd != SERVER_STATUS_FD)
		msg_fatal("post_drop: wrong descriptors");
	if (!fd_has(SERVER_STATUS_FD, F_GETFD, FD_CLOEXEC) ||
	    !fd_has(SERVER_LISTEN_FD, F_GETFD, FD_CLOEXEC))
		msg_fatal("post_drop: inherited descriptors are not close-on-exec");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		msg_fatal("post_drop: developer mode did not harden the process");
	if (conf_int(srv->cfg, "max_use") != 2)
		msg_fatal("post_drop: configuration not loaded");
}

/* Wait mode (service argument "wait"): read one byte from the client before answering. */
static bool wait_for_byte(int fd)
{
	char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);	/* SIGHUP interrupts: no SA_RESTART */
	return n == 1;
}

static void serve(struct server *srv, int fd, int listener, const struct sockaddr *peer,
		  socklen_t peerlen)
{
	char host[64];
	const char *reply = "hello\n";

	inet_format_host(peer, host, sizeof(host));
	if (listener != 0 || peerlen == 0 || strcmp(host, "127.0.0.1") != 0 ||
	    fd_has(fd, F_GETFL, O_NONBLOCK) || !fd_has(fd, F_GETFD, FD_CLOEXEC))
		reply = "wrong\n";
	else if (srv->argc == 1 && strcmp(srv->argv[0], "wait") == 0 &&
		 (!wait_for_byte(fd) || server_stopping()))
		reply = "stopping\n";
	(void)write_all(fd, reply, strlen(reply));
}

static const struct server_hooks hooks = { .post_drop = post_drop, .serve = serve };

/* Move the status pipe to fd 3 and the listener to fd 4, close the rest, run the skeleton. */
static __attribute__((noreturn)) void child_main(int status_wr, int lfd, const char *extra,
						 int errfd)
{
	const char *args[] = { "test_server", "-c", conf, "-n", "test", "-l", "1", "-u", "-f",
			       extra ? "--" : NULL, extra, NULL };
	char *argv[ARRAY_LEN(args)];
	int argc = 0, a, b;

	/* stderr first: errfd may be 3 or 4, about to be replaced */
	if (errfd >= 0)
		dup2(errfd, 2);
	a = fcntl(status_wr, F_DUPFD, 10);
	b = fcntl(lfd, F_DUPFD, 10);
	if (a < 0 || b < 0 || dup2(a, SERVER_STATUS_FD) < 0 || dup2(b, SERVER_LISTEN_FD) < 0) {
		perror("child_main");
		_exit(99);
	}
	close_range(SERVER_LISTEN_FD + 1, ~0U, 0);
	while (args[argc]) {
		argv[argc] = xstrdup(args[argc]);
		argc++;
	}
	argv[argc] = NULL;
	server_main(argc, argv, SERVER_POOL_MODE, &hooks);
}

/* ---- the master and client side ---------------------------------------------------------- */

struct pool {
	pid_t pid;
	int status_rd;
	struct sockaddr_in addr;	/* where the pool listens */
	int64_t started;		/* mono_ms() at fork */
};

/* extra: a service argument (after "--") or NULL; errfd: the child's stderr, or -1. */
static int start_pool(struct pool *p, const char *extra, int errfd)
{
	struct inet_addr a[1];
	socklen_t len = sizeof(p->addr);
	char err[128];
	int sp[2], lfd;

	memset(p, 0, sizeof(*p));
	p->status_rd = -1;
	if (inet_listen_expand("127.0.0.1:1", NULL, 0, a, 1, err, sizeof(err)) != 1)
		return -1;
	((struct sockaddr_in *)&a[0].ss)->sin_port = 0;
	lfd = inet_listen(&a[0], 16);
	if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&p->addr, &len) < 0 ||
	    pipe2(sp, O_CLOEXEC) < 0) {
		perror("start_pool");
		return -1;
	}
	p->started = mono_ms();
	p->pid = fork();
	if (p->pid < 0) {
		perror("fork");
		return -1;
	}
	if (p->pid == 0)
		child_main(sp[1], lfd, extra, errfd);
	close(sp[1]);
	close(lfd);	/* once the child is gone, connecting is refused */
	p->status_rd = sp[0];
	return 0;
}

/* The next status record: 1 got one, 0 end of file (the child exited), -1 timeout. */
static int next_status(struct pool *p, int timeout_ms, struct server_status *st)
{
	struct pollfd pfd = { .fd = p->status_rd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	n = read_full(p->status_rd, st, sizeof(*st));
	if (n == 0)
		return 0;
	return n == (ssize_t)sizeof(*st) ? 1 : -1;
}

/* Expect a record {child pid, avail}. */
static void expect_status(struct pool *p, int avail)
{
	struct server_status st = { -1, -1 };

	T_EQ_INT(next_status(p, 5000, &st), 1);
	T_EQ_INT(st.pid, p->pid);
	T_EQ_INT(st.avail, avail);
}

static void expect_status_eof(struct pool *p)
{
	struct server_status st;

	T_EQ_INT(next_status(p, 5000, &st), 0);
}

/* Wait for the child to exit; returns its wait status, or -1 (child killed) on timeout. */
static int wait_exit(struct pool *p, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	int status;

	while (mono_ms() < deadline) {
		pid_t r = waitpid(p->pid, &status, WNOHANG);

		if (r == p->pid)
			return status;
		if (r < 0)
			return -1;
		usleep(5000);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
	return -1;
}

static void expect_exit_0(struct pool *p, int timeout_ms)
{
	int status = wait_exit(p, timeout_ms);

	T_CHECK(status != -1 && WIFEXITED(status));
	T_EQ_INT(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
}

static void stop_pool(struct pool *p)
{
	if (p->pid > 0 && waitpid(p->pid, NULL, WNOHANG) == 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	if (p->status_rd >= 0)
		close(p->status_rd);
}

static int connect_to(struct pool *p)
{
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&p->addr, sizeof(p->addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Everything the server sends until it closes. */
static void read_reply(int fd, char *out, size_t outlen)
{
	ssize_t n = read_full(fd, out, outlen - 1);

	out[n > 0 ? n : 0] = '\0';
}

static void client(struct pool *p, char *out, size_t outlen)
{
	int fd = connect_to(p);

	str_copy(out, outlen, "(connect failed)");
	T_CHECK(fd >= 0);
	if (fd < 0)
		return;
	read_reply(fd, out, outlen);
	close(fd);
}

/* ---- the cases -------------------------------------------------------------------------- */

static void write_conf(const char *text)
{
	int fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	T_CHECK(fd >= 0 && write_all(fd, text, strlen(text)) == 0);
	if (fd >= 0)
		close(fd);
}

/* Two clients, then the process has served max_use and exits. */
static void test_max_use(void)
{
	struct pool p;
	char reply[64];
	int fd;

	T_EQ_INT(start_pool(&p, NULL, -1), 0);
	expect_status(&p, 1);
	client(&p, reply, sizeof(reply));
	T_EQ_STR(reply, "hello\n");
	expect_status(&p, 0);
	expect_status(&p, 1);
	client(&p, reply, sizeof(reply));
	T_EQ_STR(reply, "hello\n");
	expect_status(&p, 0);
	expect_status_eof(&p);
	expect_exit_0(&p, 5000);
	/* Gone for good: nobody accepts a third client. */
	fd = connect_to(&p);
	T_EQ_INT(fd, -1);
	T_EQ_INT(errno, ECONNREFUSED);
	if (fd >= 0)
		close(fd);
	stop_pool(&p);
}

/* No client at all: the process exits after max_idle (2 s). */
static void test_max_idle(void)
{
	struct pool p;
	int64_t elapsed;

	T_EQ_INT(start_pool(&p, NULL, -1), 0);
	expect_status(&p, 1);
	expect_status_eof(&p);
	expect_exit_0(&p, 6000);
	elapsed = mono_ms() - p.started;
	if (elapsed < 1500 || elapsed > 4000)
		fprintf(stderr, "idle exit after %lld ms\n", (long long)elapsed);
	T_CHECK(elapsed >= 1500 && elapsed <= 4000);
	stop_pool(&p);
}

/* SIGHUP to an idle process (right after it said it is available): it exits at once. */
static void test_sighup_idle(void)
{
	for (int round = 0; round < 5; round++) {
		struct pool p;
		int64_t sent;

		T_EQ_INT(start_pool(&p, NULL, -1), 0);
		expect_status(&p, 1);
		sent = mono_ms();
		T_EQ_INT(kill(p.pid, SIGHUP), 0);
		expect_status_eof(&p);
		expect_exit_0(&p, 3000);
		if (mono_ms() - sent >= 1000)
			fprintf(stderr, "round %d: exit %lld ms after SIGHUP\n", round,
				(long long)(mono_ms() - sent));
		T_CHECK(mono_ms() - sent < 1000);
		stop_pool(&p);
	}
}

/* SIGHUP while serving: the client is finished (and can see server_stopping()), then the
 * process exits without announcing itself available again. */
static void test_sighup_busy(void)
{
	struct pool p;
	char reply[64];
	int fd;

	T_EQ_INT(start_pool(&p, "wait", -1), 0);
	expect_status(&p, 1);
	fd = connect_to(&p);
	T_CHECK(fd >= 0);
	expect_status(&p, 0);
	T_EQ_INT(kill(p.pid, SIGHUP), 0);
	usleep(100000);		/* let it land while serve() is blocked in read */
	T_EQ_INT(write_all(fd, "x", 1), 0);
	read_reply(fd, reply, sizeof(reply));
	T_EQ_STR(reply, "stopping\n");
	close(fd);
	expect_status_eof(&p);
	expect_exit_0(&p, 3000);
	stop_pool(&p);
}

/* The same wait mode without a signal answers normally, so the case above can fail. */
static void test_wait_mode_without_sighup(void)
{
	struct pool p;
	char reply[64];
	int fd;

	T_EQ_INT(start_pool(&p, "wait", -1), 0);
	expect_status(&p, 1);
	fd = connect_to(&p);
	T_CHECK(fd >= 0);
	expect_status(&p, 0);
	T_EQ_INT(write_all(fd, "x", 1), 0);
	read_reply(fd, reply, sizeof(reply));
	T_EQ_STR(reply, "hello\n");
	close(fd);
	expect_status(&p, 1);
	T_EQ_INT(kill(p.pid, SIGHUP), 0);
	expect_status_eof(&p);
	expect_exit_0(&p, 3000);
	stop_pool(&p);
}

/* A configuration that does not load: the process says why and exits 1 before reporting
 * anything on the status pipe. */
static void test_bad_config(void)
{
	struct pool p;
	char errpath[128], *err = NULL;
	size_t errlen;
	int status, errfd;

	write_conf("max_use = 0\n");
	str_fmt(errpath, sizeof(errpath), "%s/stderr", dir);
	errfd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	T_CHECK(errfd >= 0);
	T_EQ_INT(start_pool(&p, NULL, errfd), 0);
	close(errfd);
	expect_status_eof(&p);
	status = wait_exit(&p, 3000);
	T_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1);
	T_EQ_INT(read_file(errpath, 65536, &err, &errlen), 0);
	T_CHECK(err != NULL && strstr(err, "postern.conf:1: value of 'max_use' is out of range"));
	free(err);
	unlink(errpath);
	stop_pool(&p);
	write_conf("max_use = 2\nmax_idle = 2s\n");
}

int main(void)
{
	str_copy(dir, sizeof(dir), "/tmp/test_server.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	str_fmt(conf, sizeof(conf), "%s/postern.conf", dir);
	signal(SIGPIPE, SIG_IGN);
	log_open("test_server", LOG_TARGET_STDERR, NULL);
	write_conf("max_use = 2\nmax_idle = 2s\n");

	T_RUN(test_max_use);
	T_RUN(test_max_idle);
	T_RUN(test_sighup_idle);
	T_RUN(test_sighup_busy);
	T_RUN(test_wait_mode_without_sighup);
	T_RUN(test_bad_config);

	unlink(conf);
	rmdir(dir);
	return T_DONE();
}
