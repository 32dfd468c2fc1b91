/*
 * postern-master: the root supervisor (DESIGN.md §1, issue 2).
 *
 *   postern-master [-c FILE] [-f] [-u] [-v] [-o name=value]...
 *
 * Start-up, in order: read and validate postern.conf; create the spool tree; take the pid
 * lock; detach (unless -f); bind every listener and private socket (private/session, where
 * login processes ask for mail sessions: session.c); start the services. Then supervise
 * until SIGTERM/SIGINT (stop every service and session within master_stop_timeout, then
 * kill what is left) while SIGHUP reloads and SIGCHLD reaps.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master.h"
#include "log.h"
#include "privsep.h"
#include "util.h"
#include "version.h"

struct master M;

static int pid_fd = -1;
static uint64_t kill_timer;

static __attribute__((noreturn)) void usage(void)
{
	fprintf(stderr, "usage: postern-master [-c config] [-f] [-u] [-v] [-o name=value]\n");
	exit(2);
}

static void print_conf_error(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "postern-master: %s\n", msg);
}

static void parse_args(int argc, char **argv, const char **overrides, int *noverrides)
{
	int c;

	M.conf_path = "/etc/postern/postern.conf";
	while ((c = getopt(argc, argv, "c:fuvo:V")) != -1) {
		switch (c) {
		case 'c': M.conf_path = optarg; break;
		case 'f': M.foreground = true; break;
		case 'u': M.dev_mode = true; break;
		case 'v': M.verbose++; break;
		case 'o':
			if (*noverrides >= 32)
				usage();
			overrides[(*noverrides)++] = optarg;
			break;
		case 'V': printf("postern-master %s\n", POSTERN_VERSION); exit(0);
		default: usage();
		}
	}
	if (optind != argc)
		usage();
}

/* Load postern.conf plus -o overrides; every problem goes to stderr as FILE:LINE: text. */
static void load_config(const char **overrides, int n)
{
	M.cfg = conf_load(M.conf_path, print_conf_error, NULL);
	if (M.cfg == NULL)
		exit(1);
	for (int i = 0; i < n; i++) {
		char name[128];
		const char *eq = strchr(overrides[i], '=');

		if (eq == NULL || (size_t)(eq - overrides[i]) >= sizeof(name))
			usage();
		memcpy(name, overrides[i], (size_t)(eq - overrides[i]));
		name[eq - overrides[i]] = '\0';
		if (conf_set(M.cfg, name, eq + 1, print_conf_error, NULL) < 0)
			exit(1);
	}
	if (n > 0)
		msg_warn("-o overrides are not kept across a reload");
}

static void open_log(void)
{
	const char *file = conf_str(M.cfg, "log_file");

	log_set_verbose(M.verbose);
	if (*file) {
		if (log_open("master", LOG_TARGET_FILE, file) < 0)
			msg_fatal("cannot open log file %s: %m", file);
	} else {
		log_open("master", M.foreground ? LOG_TARGET_STDERR : LOG_TARGET_SYSLOG, NULL);
	}
	log_copy_to_stderr(!M.foreground || *file);
}

static void lock_pidfile(void)
{
	char path[4096];

	if (str_fmt(path, sizeof(path), "%s/pid/master.pid", conf_str(M.cfg, "spool_directory")) < 0)
		msg_fatal("spool_directory too long");
	M.pid_path = xstrdup(path);
	pid_fd = pidfile_lock(path);
}

static void start_services(void)
{
	M.services = services_build_all(M.cfg, M.conf_path);
	for (struct service *s = M.services; s; s = s->next)
		if (service_bind(s, M.cfg) < 0)
			msg_fatal("cannot start service %s", s->def->name);
	for (struct service *s = M.services; s; s = s->next)
		supervise_start(s);
}

static void finish_stop(void)
{
	msg_info("terminating");
	if (M.pid_path)
		unlink(M.pid_path);
	exit(0);
}

/* Service children and mail sessions: master exits when none is left. */
static int live_processes(void)
{
	return supervise_live_children() + session_count();
}

static void on_kill_timer(struct ev_loop *loop, void *arg)
{
	(void)loop, (void)arg;
	kill_timer = 0;
	if (live_processes() > 0) {
		msg_warn("%d processes did not stop in time; killing them", live_processes());
		supervise_signal_all(SIGKILL);
		session_signal_all(SIGKILL);
	}
}

static void on_signal(struct ev_loop *loop, int sig, void *arg)
{
	(void)arg;
	switch (sig) {
	case SIGCHLD:
		supervise_reap();
		if (M.stopping && live_processes() == 0)
			finish_stop();
		break;
	case SIGHUP:
		if (!M.stopping) {
			master_reload();
			session_configure(M.cfg);
		}
		break;
	case SIGTERM:
	case SIGINT:
		if (M.stopping)
			break;
		M.stopping = true;
		msg_info("stopping: signal %d", sig);
		for (struct service *s = M.services; s; s = s->next)
			supervise_update(s);
		supervise_signal_all(SIGTERM);
		session_signal_all(SIGTERM);
		kill_timer = ev_timer_add(loop, conf_time_ms(M.cfg, "master_stop_timeout"),
					  on_kill_timer, NULL);
		if (live_processes() == 0)
			finish_stop();
		break;
	}
}

int main(int argc, char **argv)
{
	const char *overrides[32];
	int noverrides = 0;

	log_open("master", LOG_TARGET_STDERR, NULL);
	parse_args(argc, argv, overrides, &noverrides);
	if (geteuid() != 0 && !M.dev_mode)
		msg_fatal("must run as root (use -u for unprivileged developer mode)");
	privsep_harden();
	load_config(overrides, noverrides);
	open_log();
	signal(SIGPIPE, SIG_IGN);
	spool_prepare(M.cfg, M.dev_mode);
	lock_pidfile();
	if (!M.foreground)
		daemon_begin();
	pidfile_write(pid_fd);
	M.loop = ev_new();
	ev_signal_add(M.loop, SIGCHLD, on_signal, NULL);
	ev_signal_add(M.loop, SIGHUP, on_signal, NULL);
	ev_signal_add(M.loop, SIGTERM, on_signal, NULL);
	ev_signal_add(M.loop, SIGINT, on_signal, NULL);
	session_init();
	start_services();
	log_copy_to_stderr(0);
	msg_info("daemon started -- version %s, configuration %s", POSTERN_VERSION, M.conf_path);
	daemon_ready();
	ev_run(M.loop);
	msg_fatal("event loop ended unexpectedly");
}
