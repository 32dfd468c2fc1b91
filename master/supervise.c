/*
 * supervise.c: keep every service running as its kind demands.
 *
 * Pools start processes on demand, as Postfix's master does: while no process of the pool is
 * available, master watches the pool's listeners; a connection arriving then starts one more
 * process (up to the limit). Processes report available/busy over the pool's status pipe, so
 * master stops watching as soon as somebody can accept. Single daemons are restarted when
 * they die. A child that fails before it ever reported ready, or a single daemon that keeps
 * crashing, throttles its service for service_throttle_time, with a log line saying why.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "master.h"
#include "log.h"
#include "util.h"

#define CRASH_WINDOW_MS	60000
#define CRASH_LIMIT	5

static void on_listen_ready(struct ev_loop *loop, int fd, int revents, void *arg);

static struct child *child_find(pid_t pid)
{
	for (struct child *c = M.children; c; c = c->next)
		if (c->pid == pid)
			return c;
	return NULL;
}

static void child_unlink(struct child *dead)
{
	for (struct child **pp = &M.children; *pp; pp = &(*pp)->next) {
		if (*pp == dead) {
			*pp = dead->next;
			return;
		}
	}
}

static bool throttled(const struct service *svc)
{
	return svc->throttled_until > mono_ms();
}

static void set_watching(struct service *svc, bool on)
{
	if (svc->watching == on)
		return;
	for (int i = 0; i < svc->nlisten; i++) {
		if (!on)
			ev_fd_del(M.loop, svc->listen_fd[i]);
		else if (ev_fd_add(M.loop, svc->listen_fd[i], POLLIN, on_listen_ready, svc) < 0)
			msg_panic("service %s: cannot watch %s: %m", svc->def->name,
				  svc->listen_desc[i]);
	}
	svc->watching = on;
}

/* Re-decide whether this pool needs master's attention for new connections. */
void supervise_update(struct service *svc)
{
	bool want;

	if (svc->def->kind != SERVICE_POOL)
		return;
	want = !M.stopping && !svc->stopped && svc->navail == 0 && svc->nproc < svc->limit && !throttled(svc);
	set_watching(svc, want);
	if (svc->navail == 0 && svc->nproc >= svc->limit && !svc->busy_warned) {
		msg_warn("service \"%s\" (%s) has reached its process limit \"%d\": new clients "
			 "may experience noticeable delays", svc->def->name,
			 svc->nlisten ? svc->listen_desc[0] : "-", svc->limit);
		svc->busy_warned = true;
	} else if (svc->nproc < svc->limit) {
		svc->busy_warned = false;
	}
}

static void on_listen_ready(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct service *svc = arg;

	(void)loop, (void)fd, (void)revents;
	if (svc->navail == 0 && svc->nproc < svc->limit && !throttled(svc) && !M.stopping &&
	    !svc->stopped)
		spawn_child(svc);
	supervise_update(svc);
}

static void on_status(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct service *svc = arg;
	struct server_status st;
	ssize_t n;

	(void)loop, (void)revents;
	while ((n = read(fd, &st, sizeof(st))) == (ssize_t)sizeof(st)) {
		struct child *c = child_find((pid_t)st.pid);

		if (c == NULL || c->svc != svc || c->retired)
			continue;	/* stale: already reaped or retired */
		c->ready = true;
		if (st.avail && !c->avail)
			svc->navail++;
		else if (!st.avail && c->avail)
			svc->navail--;
		c->avail = st.avail != 0;
	}
	if (n > 0)
		msg_warn("service %s: short status record", svc->def->name);
	supervise_update(svc);
}

static void on_restart(struct ev_loop *loop, void *arg)
{
	struct service *svc = arg;

	(void)loop;
	svc->restart_timer = 0;
	if (M.stopping || throttled(svc))
		return;
	if (svc->def->kind == SERVICE_SINGLE && svc->nproc == 0)
		spawn_child(svc);
	supervise_update(svc);
}

static void throttle(struct service *svc)
{
	int64_t t = conf_time_ms(M.cfg, "service_throttle_time");

	msg_warn("%s: bad command startup -- throttling", svc->argv[0]);
	svc->throttled_until = mono_ms() + t;
	if (svc->restart_timer)
		ev_timer_cancel(M.loop, svc->restart_timer);
	svc->restart_timer = ev_timer_add(M.loop, t, on_restart, svc);
	supervise_update(svc);
}

void supervise_start(struct service *svc)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		msg_fatal("pipe: %m");
	fd_set_nonblock(p[0], 1);
	svc->status_rd = p[0];
	svc->status_wr = p[1];
	ev_fd_add(M.loop, svc->status_rd, POLLIN, on_status, svc);
	if (svc->def->kind == SERVICE_SINGLE)
		spawn_child(svc);
	supervise_update(svc);
}

/* Take children out of the service's accounting. A pool child is asked to finish its
 * client and exit (SIGHUP); a single daemon is terminated. With detach, they also forget
 * the service, which is about to be freed. */
void supervise_retire_children(struct service *svc, bool detach)
{
	for (struct child *c = M.children; c; c = c->next) {
		if (c->svc != svc)
			continue;
		if (!c->retired) {
			c->retired = true;
			if (c->avail)
				svc->navail--;
			c->avail = false;
			svc->nproc--;
			kill(c->pid, svc->def->kind == SERVICE_POOL ? SIGHUP : SIGTERM);
		}
		if (detach)
			c->svc = NULL;
	}
	supervise_update(svc);
}

void supervise_stop(struct service *svc)
{
	svc->stopped = true;
	set_watching(svc, false);
	if (svc->restart_timer)
		ev_timer_cancel(M.loop, svc->restart_timer);
	svc->restart_timer = 0;
	supervise_retire_children(svc, true);
	if (svc->status_rd >= 0) {
		ev_fd_del(M.loop, svc->status_rd);
		close(svc->status_rd);
		svc->status_rd = -1;
	}
}

static void log_exit(const struct child *c, int status)
{
	const char *prog = c->svc ? c->svc->argv[0] : c->def->command;

	if (WIFSIGNALED(status))
		msg_warn("process %s pid %d killed by signal %d (service %s)", prog, (int)c->pid,
			 WTERMSIG(status), c->def->name);
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		msg_warn("process %s pid %d exit status %d (service %s)", prog, (int)c->pid,
			 WEXITSTATUS(status), c->def->name);
}

/* A child of a live service died: account for it and decide what comes next. */
static void child_died(struct child *c, int status)
{
	struct service *svc = c->svc;
	bool abnormal = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	int64_t now = mono_ms();

	if (c->avail)
		svc->navail--;
	svc->nproc--;
	if (M.stopping)
		return;		/* we killed it: neither a crash nor a reason to restart */
	if (abnormal && !c->ready) {
		throttle(svc);
		return;
	}
	if (abnormal) {
		if (now - svc->crash_window > CRASH_WINDOW_MS) {
			svc->crash_window = now;
			svc->crashes = 0;
		}
		if (++svc->crashes > CRASH_LIMIT) {
			msg_warn("service %s: %d crashes in %d s", svc->def->name, svc->crashes,
				 CRASH_WINDOW_MS / 1000);
			throttle(svc);
			return;
		}
	}
	if (svc->def->kind == SERVICE_SINGLE && !M.stopping && !throttled(svc))
		spawn_child(svc);
	supervise_update(svc);
}

void supervise_reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = child_find(pid);

		if (c == NULL) {
			(void)session_reaped(pid, status);	/* a mail session, or a stray */
			continue;
		}
		child_unlink(c);
		if (!c->retired && !M.stopping)
			log_exit(c, status);
		if (c->svc && !c->retired)
			child_died(c, status);
		free(c);
	}
}

void supervise_signal_all(int sig)
{
	for (struct child *c = M.children; c; c = c->next)
		kill(c->pid, sig);
}

int supervise_live_children(void)
{
	int n = 0;

	for (struct child *c = M.children; c; c = c->next)
		n++;
	return n;
}
