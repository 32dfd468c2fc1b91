/*
 * ctl.c: postern start|stop|reload|status [-c FILE], for hosts without systemd (the Debian
 * init script calls them; systemd's unit runs postern-master itself).
 *
 * postern-master holds an flock(2) on $spool_directory/pid/master.pid for as long as it
 * runs and writes its pid there (master/daemon.c). The lock, not the file, says whether
 * master runs, so a stale pid file is never mistaken for a running master; and a pid is
 * only signalled while the lock is held and /proc says that pid is postern-master (the
 * file still holds the previous pid for a moment while a new master starts). Probing takes
 * a shared lock for an instant: a master starting in that very instant would refuse to
 * run ("another master is running"); a start racing a status is harmless otherwise.
 *
 *   start   run postern-master: the one beside this program (both live in /usr/sbin, or in
 *           build/), else daemon_directory's. master returns once its listeners are bound,
 *           or fails with the reason on stderr; then the pid is reported.
 *   stop    SIGTERM, then wait until master let go of its lock (at most STOP_WAIT_MS;
 *           master itself kills children left after master_stop_timeout)
 *   reload  check postern.conf, then SIGHUP
 *   status  "running (pid N)" or "not running"
 *
 * Exit statuses follow the LSB init-script conventions: 0 done (start when running and
 * stop when stopped included), 1 failure, 2 usage, 3 not running (status), 4 no
 * permission or status unknown, 7 not running (reload).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "util.h"

#define DEFAULT_CONF	"/etc/postern/postern.conf"
#define STOP_WAIT_MS	10000
#define START_WAIT_MS	5000
#define PID_WAIT_MS	2000
#define POLL_MS		50

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2, CTL_NOT_RUNNING = 3, CTL_NO_PERM = 4,
       CTL_RELOAD_NOT_RUNNING = 7 };

enum master_state { MASTER_STOPPED, MASTER_RUNNING, MASTER_UNKNOWN };

struct ctl {
	const char *verb;	/* "start", ... */
	const char *conf_path;
	struct config *cfg;	/* postern.conf, or the defaults if it cannot be read */
	char pid_path[4096];
};

static void conf_message(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "postern: %s\n", msg);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Is pid a postern-master? (Its name in /proc, so a recycled pid is never signalled.) */
static bool is_master(pid_t pid)
{
	char path[64], comm[32] = "";
	ssize_t n;
	int fd;

	if (pid <= 0 || str_fmt(path, sizeof(path), "/proc/%d/comm", (int)pid) < 0)
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return false;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, "postern-master") == 0;
}

/* Parse the pid in an open pid file; 0 if there is none (yet). */
static pid_t read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long long v;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (str_to_ll(buf, 1, 0x7fffffff, &v) < 0)
		return 0;
	return (pid_t)v;
}

/* Does a master hold the lock? *pid gets the pid in the file when it names that master,
 * else 0 (a master in the middle of starting). */
static enum master_state master_probe(const struct ctl *c, pid_t *pid)
{
	int fd = open(c->pid_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	pid_t p;

	*pid = 0;
	if (fd < 0)
		return errno == ENOENT ? MASTER_STOPPED : MASTER_UNKNOWN;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);	/* releases the lock at once */
		return MASTER_STOPPED;
	}
	if (errno != EWOULDBLOCK) {
		close(fd);
		return MASTER_UNKNOWN;
	}
	p = read_pid(fd);
	close(fd);
	*pid = is_master(p) ? p : 0;
	return MASTER_RUNNING;
}

/* The state, waiting up to PID_WAIT_MS for a starting master to write its pid. */
static enum master_state master_find(const struct ctl *c, pid_t *pid)
{
	int64_t deadline = mono_ms() + PID_WAIT_MS;
	enum master_state st;

	while ((st = master_probe(c, pid)) == MASTER_RUNNING && *pid == 0 &&
	       mono_ms() < deadline)
		sleep_ms(POLL_MS);
	return st;
}

static int report_unknown(const struct ctl *c)
{
	fprintf(stderr, "postern: %s: cannot read %s: %s\n", c->verb, c->pid_path,
		strerror(errno));
	return CTL_NO_PERM;
}

static int report_no_pid(const struct ctl *c)
{
	fprintf(stderr, "postern: %s: %s is locked but names no running postern-master\n",
		c->verb, c->pid_path);
	return CTL_FAIL;
}

/* postern-master beside this program, else in daemon_directory. */
static int master_program(const struct ctl *c, char *out, size_t outlen)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if (str_fmt(out, outlen, "%s/postern-master", self) >= 0 &&
			    access(out, X_OK) == 0)
				return 0;
		}
	}
	if (str_fmt(out, outlen, "%s/postern-master", conf_str(c->cfg, "daemon_directory")) < 0
	    || access(out, X_OK) < 0) {
		fprintf(stderr, "postern: start: postern-master not found beside %s or in "
			"daemon_directory\n", n > 0 ? self : "this program");
		return -1;
	}
	return 0;
}

/* The environment master starts with: what systemd would give it, plus the time zone
 * and sanitizer settings (for `make asan` runs). */
static void master_env(char **env, size_t max)
{
	static const char *const keep[] = {
		"TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
	};
	static char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	size_t n = 0;

	env[n++] = path;
	for (size_t i = 0; i < ARRAY_LEN(keep) && n + 1 < max; i++) {
		const char *v = getenv(keep[i]);

		if (v) {
			size_t len = strlen(keep[i]) + strlen(v) + 2;
			char *kv = xmalloc(len);

			(void)str_fmt(kv, len, "%s=%s", keep[i], v);
			env[n++] = kv;
		}
	}
	env[n] = NULL;
}

/* Run postern-master and wait for it: it exits 0 once the detached master is ready. */
static int run_master(const struct ctl *c, const char *prog)
{
	char *argv[] = { xstrdup(prog), xstrdup("-c"), xstrdup(c->conf_path), NULL };
	char *env[8];
	int status;
	pid_t pid;

	master_env(env, ARRAY_LEN(env));
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "postern: start: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY);

		if (fd >= 0 && fd != 0) {
			dup2(fd, 0);
			close(fd);
		}
		umask(022);
		if (chdir("/") == 0)
			execve(prog, argv, env);
		fprintf(stderr, "postern: start: cannot run %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	fprintf(stderr, "postern: start: %s failed (%s %d)\n", prog,
		WIFEXITED(status) ? "exit status" : "signal",
		WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return -1;
}

static int ctl_start(struct ctl *c)
{
	char prog[4200];
	int64_t deadline;
	pid_t pid;

	switch (master_find(c, &pid)) {
	case MASTER_RUNNING:
		printf("postern: already running (pid %d)\n", (int)pid);
		return CTL_OK;
	case MASTER_UNKNOWN:
		return report_unknown(c);
	case MASTER_STOPPED:
		break;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "postern: start: must be run as root\n");
		return CTL_NO_PERM;
	}
	if (master_program(c, prog, sizeof(prog)) < 0 || run_master(c, prog) < 0)
		return CTL_FAIL;
	deadline = mono_ms() + START_WAIT_MS;
	while (master_probe(c, &pid) != MASTER_RUNNING || pid == 0) {
		if (mono_ms() >= deadline) {
			fprintf(stderr, "postern: start: postern-master returned but does not "
				"hold %s\n", c->pid_path);
			return CTL_FAIL;
		}
		sleep_ms(POLL_MS);
	}
	printf("postern: started (pid %d)\n", (int)pid);
	return CTL_OK;
}

/* Send sig to the running master; CTL_OK with *pid set, or an exit status (reported). */
static int signal_master(const struct ctl *c, int sig, pid_t *pid, int not_running)
{
	switch (master_find(c, pid)) {
	case MASTER_STOPPED:
		if (not_running != CTL_OK)
			fprintf(stderr, "postern: %s: not running\n", c->verb);
		else
			printf("postern: not running\n");
		return not_running;
	case MASTER_UNKNOWN:
		return report_unknown(c);
	case MASTER_RUNNING:
		break;
	}
	if (*pid == 0)
		return report_no_pid(c);
	if (kill(*pid, sig) < 0) {
		fprintf(stderr, "postern: %s: pid %d: %s\n", c->verb, (int)*pid, strerror(errno));
		return errno == EPERM ? CTL_NO_PERM : CTL_FAIL;
	}
	return -1;
}

static int ctl_stop(struct ctl *c)
{
	int64_t deadline;
	pid_t pid, p;
	int rc = signal_master(c, SIGTERM, &pid, CTL_OK);

	if (rc >= 0)
		return rc;
	deadline = mono_ms() + STOP_WAIT_MS;
	while (master_probe(c, &p) == MASTER_RUNNING) {
		if (mono_ms() >= deadline) {
			fprintf(stderr, "postern: stop: postern-master (pid %d) still runs after "
				"%d s\n", (int)pid, STOP_WAIT_MS / 1000);
			return CTL_FAIL;
		}
		sleep_ms(POLL_MS);
	}
	printf("postern: stopped (pid %d)\n", (int)pid);
	return CTL_OK;
}

static int ctl_reload(struct ctl *c)
{
	pid_t pid;
	int rc = signal_master(c, SIGHUP, &pid, CTL_RELOAD_NOT_RUNNING);

	if (rc >= 0)
		return rc;
	printf("postern: reloading (pid %d)\n", (int)pid);
	return CTL_OK;
}

static int ctl_status(struct ctl *c)
{
	pid_t pid;

	switch (master_find(c, &pid)) {
	case MASTER_RUNNING:
		if (pid == 0)
			return report_no_pid(c);
		printf("postern: running (pid %d)\n", (int)pid);
		return CTL_OK;
	case MASTER_STOPPED:
		printf("postern: not running\n");
		return CTL_NOT_RUNNING;
	case MASTER_UNKNOWN:
		break;
	}
	return report_unknown(c);
}

/* Options and configuration. start and reload need a valid postern.conf (master would
 * refuse it anyway); stop and status fall back to the default spool_directory. */
static int ctl_setup(struct ctl *c, int argc, char **argv)
{
	bool strict = strcmp(c->verb, "start") == 0 || strcmp(c->verb, "reload") == 0;
	int opt;

	c->conf_path = DEFAULT_CONF;
	while ((opt = getopt(argc, argv, "+c:h")) != -1) {
		if (opt != 'c') {
			fprintf(opt == 'h' ? stdout : stderr, "usage: postern %s [-c FILE]\n",
				c->verb);
			return opt == 'h' ? CTL_OK : CTL_USAGE;
		}
		c->conf_path = optarg;
	}
	if (optind < argc) {
		fprintf(stderr, "usage: postern %s [-c FILE]\n", c->verb);
		return CTL_USAGE;
	}
	c->cfg = conf_load(c->conf_path, conf_message, NULL);
	if (c->cfg == NULL) {
		if (strict)
			return CTL_FAIL;
		fprintf(stderr, "postern: %s: using the default spool_directory\n", c->verb);
		c->cfg = conf_defaults();
	}
	if (str_fmt(c->pid_path, sizeof(c->pid_path), "%s/pid/master.pid",
		    conf_str(c->cfg, "spool_directory")) < 0) {
		fprintf(stderr, "postern: spool_directory too long\n");
		return CTL_FAIL;
	}
	return -1;
}

static int ctl_run(const char *verb, int (*fn)(struct ctl *), int argc, char **argv)
{
	struct ctl c = { .verb = verb };
	int rc = ctl_setup(&c, argc, argv);

	if (rc < 0)
		rc = fn(&c);
	if (c.cfg)
		conf_free(c.cfg);
	if (fflush(stdout) != 0 && rc == CTL_OK)
		rc = CTL_FAIL;
	return rc;
}

int cmd_start(int argc, char **argv)
{
	return ctl_run("start", ctl_start, argc, argv);
}

int cmd_stop(int argc, char **argv)
{
	return ctl_run("stop", ctl_stop, argc, argv);
}

int cmd_reload(int argc, char **argv)
{
	return ctl_run("reload", ctl_reload, argc, argv);
}

int cmd_status(int argc, char **argv)
{
	return ctl_run("status", ctl_status, argc, argv);
}
