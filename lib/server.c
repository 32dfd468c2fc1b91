/*
 * server.c: the daemon skeleton (see server.h).
 */
#include "server.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "privsep.h"
#include "util.h"

static volatile sig_atomic_t graceful_stop;

static void on_sighup(int sig)
{
	(void)sig;
	graceful_stop = 1;
}

bool server_stopping(void)
{
	return graceful_stop != 0;
}

struct drop_args {
	const char *user, *root, *caps;
};

static __attribute__((noreturn)) void usage(const char *prog)
{
	fprintf(stderr, "usage: %s -c CONF -n SERVICE [-l N] [-U USER] [-R DIR] [-K CAPS] "
		"[-u] [-f] [-v] [-S] [-- args]\n", prog);
	exit(2);
}

static void parse_args(struct server *srv, struct drop_args *d, int argc, char **argv)
{
	long long n;
	int c;
	bool no_status = false;

	while ((c = getopt(argc, argv, "c:n:l:U:R:K:ufvS")) != -1) {
		switch (c) {
		case 'c': srv->conf_path = optarg; break;
		case 'n': srv->service = optarg; break;
		case 'l':
			if (str_to_ll(optarg, 0, SERVER_MAX_LISTEN, &n) < 0)
				usage(argv[0]);
			srv->nlisten = (int)n;
			break;
		case 'U': d->user = optarg; break;
		case 'R': d->root = optarg; break;
		case 'K': d->caps = optarg; break;
		case 'u': srv->dev_mode = true; break;
		case 'f': srv->foreground = true; break;
		case 'v': log_set_verbose(log_verbose() + 1); break;
		case 'S': no_status = true; break;
		default: usage(argv[0]);
		}
	}
	if (srv->service == NULL)
		usage(argv[0]);
	srv->argc = argc - optind;
	srv->argv = argv + optind;
	srv->status_fd = no_status ? -1 : SERVER_STATUS_FD;
	for (int i = 0; i < srv->nlisten; i++)
		srv->listen_fd[i] = SERVER_LISTEN_FD + i;
}

static void open_log(struct server *srv)
{
	const char *file = conf_str(srv->cfg, "log_file");

	if (*file && log_open(srv->service, LOG_TARGET_FILE, file) == 0)
		return;
	log_open(srv->service, srv->foreground ? LOG_TARGET_STDERR : LOG_TARGET_SYSLOG, NULL);
	if (*file)
		msg_warn("cannot open log file %s: %m", file);
}

/* Die with master: a parent-death signal, set after the credential change that clears it. */
static void follow_parent(pid_t master)
{
	if (master <= 1)
		return;
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0)
		msg_fatal("prctl(PR_SET_PDEATHSIG): %m");
	if (getppid() != master)
		msg_fatal("master went away during start-up");
}

static void setup(struct server *srv, struct drop_args *d, const struct server_hooks *h)
{
	struct sigaction sa = { .sa_handler = on_sighup };
	pid_t master = getppid();

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);	/* no SA_RESTART: an idle poll() returns at once */

	srv->cfg = srv->conf_path ? conf_load(srv->conf_path, NULL, NULL) : conf_defaults();
	if (srv->cfg == NULL)
		exit(1);
	open_log(srv);
	for (int i = 0; i < srv->nlisten; i++)
		fd_set_cloexec(srv->listen_fd[i], 1);
	if (srv->status_fd >= 0)
		fd_set_cloexec(srv->status_fd, 1);
	if (h->pre_drop)
		h->pre_drop(srv);
	if (srv->dev_mode || d->user == NULL)
		privsep_drop_dev();
	else
		privsep_drop(d->user, d->root, d->caps);
	follow_parent(master);
	if (h->post_drop)
		h->post_drop(srv);
}

static void report(struct server *srv, int avail)
{
	struct server_status st = { .pid = (int)getpid(), .avail = avail };

	if (srv->status_fd >= 0 && write_all(srv->status_fd, &st, sizeof(st)) < 0)
		msg_fatal("master status pipe: %m");	/* master is gone */
}

void server_report_ready(struct server *srv)
{
	report(srv, 1);
}

/* Wait for a connection on any listener; -1 on idle timeout or graceful stop. */
static int pool_accept(struct server *srv, int64_t idle_ms, int *which,
		       struct sockaddr_storage *peer, socklen_t *plen)
{
	struct pollfd pfd[SERVER_MAX_LISTEN];
	int64_t deadline = mono_ms() + idle_ms;
	sigset_t hup, unblocked;
	int fd = -1;

	/* SIGHUP stays blocked except inside ppoll, so one arriving after the graceful_stop
	 * test is not slept through until max_idle: it interrupts the ppoll instead. */
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &hup, &unblocked) < 0)
		msg_fatal("sigprocmask: %m");
	for (int i = 0; i < srv->nlisten; i++)
		pfd[i] = (struct pollfd){ .fd = srv->listen_fd[i], .events = POLLIN };
	while (fd < 0 && !graceful_stop) {
		int64_t left = deadline - mono_ms();
		struct timespec ts;
		int r;

		if (left <= 0)
			break;
		if (left > 60000)
			left = 60000;
		ts = (struct timespec){ .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000 };
		r = ppoll(pfd, (nfds_t)srv->nlisten, &ts, &unblocked);
		if (r < 0 && errno != EINTR)
			msg_fatal("poll: %m");
		for (int i = 0; r > 0 && fd < 0 && i < srv->nlisten; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			*plen = sizeof(*peer);
			fd = accept4(pfd[i].fd, (struct sockaddr *)peer, plen, SOCK_CLOEXEC);
			if (fd >= 0)
				*which = i;
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED &&
				 errno != EINTR)
				msg_warn("accept: %m");
		}
	}
	if (sigprocmask(SIG_SETMASK, &unblocked, NULL) < 0)
		msg_fatal("sigprocmask: %m");
	return fd;
}

static __attribute__((noreturn)) void pool_loop(struct server *srv, const struct server_hooks *h)
{
	long long max_use = conf_int(srv->cfg, "max_use");
	int64_t max_idle = conf_time_ms(srv->cfg, "max_idle");
	struct sockaddr_storage peer;
	socklen_t plen;
	int which = 0, fd;

	if (srv->nlisten == 0)
		msg_fatal("pool service %s has no listeners", srv->service);
	for (long long used = 0; used < max_use && !graceful_stop; used++) {
		report(srv, 1);
		fd = pool_accept(srv, max_idle, &which, &peer, &plen);
		if (fd < 0)
			break;
		report(srv, 0);
		fd_set_nonblock(fd, 0);
		h->serve(srv, fd, which, (struct sockaddr *)&peer, plen);
		close(fd);
	}
	exit(0);
}

void server_main(int argc, char **argv, enum server_mode mode, const struct server_hooks *h)
{
	static struct server srv;
	struct drop_args d = { NULL, NULL, NULL };

	parse_args(&srv, &d, argc, argv);
	setup(&srv, &d, h);
	if (mode == SERVER_POOL_MODE)
		pool_loop(&srv, h);
	exit(h->run(&srv));
}
