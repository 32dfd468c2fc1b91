/*
 * spawn.c: start one child of a service. The child gets the descriptor layout of server.h
 * (status pipe on 3, listeners from 4), default signal dispositions, an empty signal mask,
 * a minimal environment and no other descriptors, then execs the service's program, which
 * drops its own privileges after reading its secrets.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "master.h"
#include "log.h"
#include "util.h"

/* Variables a child may inherit: sanitizer settings for `make asan` runs, and the time zone. */
static const char *const env_keep[] = {
	"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ", NULL,
};

void spawn_build_env(char **env)
{
	int n = 0;

	static char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

	env[n++] = path;
	for (int i = 0; env_keep[i] && n < SPAWN_ENV_MAX - 1; i++) {
		const char *v = getenv(env_keep[i]);
		size_t len;

		if (v == NULL)
			continue;
		len = strlen(env_keep[i]) + strlen(v) + 2;
		env[n] = xmalloc(len);
		str_fmt(env[n], len, "%s=%s", env_keep[i], v);
		n++;
	}
	env[n] = NULL;
}

/* Move fd to target without clobbering a descriptor still to be moved. */
static void place_fd(int fd, int target)
{
	if (fd == target) {
		fd_set_cloexec(fd, 0);
		return;
	}
	if (dup2(fd, target) < 0)
		_exit(126);
}

static __attribute__((noreturn)) void exec_child(struct service *svc)
{
	char *env[SPAWN_ENV_MAX];
	sigset_t none;
	int high, tmp[SERVER_MAX_LISTEN + 1], n = 0;

	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	spawn_build_env(env);

	/* First lift every descriptor we pass above the target range, then place them. */
	high = SERVER_LISTEN_FD + SERVER_MAX_LISTEN + 8;
	if (svc->status_wr >= 0)
		tmp[n++] = fcntl(svc->status_wr, F_DUPFD, high);
	for (int i = 0; i < svc->nlisten; i++)
		tmp[n++] = fcntl(svc->listen_fd[i], F_DUPFD, high);
	for (int i = 0; i < n; i++)
		if (tmp[i] < 0)
			_exit(126);
	n = 0;
	if (svc->status_wr >= 0)
		place_fd(tmp[n++], SERVER_STATUS_FD);
	for (int i = 0; i < svc->nlisten; i++)
		place_fd(tmp[n++], SERVER_LISTEN_FD + i);
	/* stdin/stdout to /dev/null; stderr too unless master runs in the foreground: a
	 * detaching master must not leave children holding the starter's terminal or pipe. */
	int devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		if (!M.foreground)
			dup2(devnull, 2);
		if (devnull > 2 && devnull < SERVER_STATUS_FD)
			close(devnull);
	}
	syscall(SYS_close_range, SERVER_LISTEN_FD + svc->nlisten, ~0U, 0);
	execve(svc->argv[0], svc->argv, env);
	_exit(127);
}

void spawn_child(struct service *svc)
{
	struct child *c;
	pid_t pid = fork();

	if (pid < 0) {
		msg_warn("fork for service %s: %m", svc->def->name);
		return;
	}
	if (pid == 0)
		exec_child(svc);
	c = xcalloc(1, sizeof(*c));
	c->pid = pid;
	c->svc = svc;
	c->def = svc->def;
	c->avail = true;	/* counted available until it reports otherwise */
	c->started = mono_ms();
	c->next = M.children;
	M.children = c;
	svc->nproc++;
	svc->navail++;
	msg_debug("service %s: started pid %d", svc->def->name, (int)pid);
}
