/*
 * test_event.c: unit tests for lib/event.c: descriptors, timers (order, cancel, added from
 * callbacks, no starvation), removal during dispatch, signals through the self-pipe, ev_stop
 * and EINTR.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event.h"
#include "util.h"
#include "t.h"

static void make_pipe(int p[2])
{
	if (pipe(p) < 0) {
		perror("pipe");
		exit(2);
	}
}

/* ---- descriptors ------------------------------------------------------------------------- */

struct fd_state {
	int calls;
	int last_revents;
	char got;
};

static void read_and_del(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct fd_state *st = arg;

	st->calls++;
	st->last_revents = revents;
	if (read(fd, &st->got, 1) != 1)
		st->got = '?';
	ev_fd_del(loop, fd);
}

static void test_fd_fires(void)
{
	struct ev_loop *loop = ev_new();
	struct fd_state st = { 0, 0, 0 };
	int p[2];

	make_pipe(p);
	T_EQ_INT(ev_fd_add(loop, p[0], POLLIN, read_and_del, &st), 0);
	T_EQ_INT(ev_fd_add(loop, p[0], POLLIN, read_and_del, &st), -1);
	T_EQ_INT(errno, EEXIST);
	T_EQ_INT(write(p[1], "x", 1), 1);
	T_EQ_INT(ev_run(loop), 0);	/* returns once the only fd is gone */
	T_EQ_INT(st.calls, 1);
	T_CHECK(st.last_revents & POLLIN);
	T_EQ_INT(st.got, 'x');
	T_EQ_INT(ev_fd_set_events(loop, p[0], POLLIN), -1);	/* no longer registered */
	close(p[0]);
	close(p[1]);
	ev_free(loop);
}

struct toggle_state {
	int out_calls, in_calls;
};

/* First sees POLLOUT, switches to POLLIN, then sees the peer's byte. */
static void toggle_cb(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct toggle_state *st = arg;
	char c;

	if (revents & POLLOUT) {
		st->out_calls++;
		(void)ev_fd_set_events(loop, fd, POLLIN);
	}
	if (revents & POLLIN) {
		st->in_calls++;
		if (read(fd, &c, 1) != 1)
			st->in_calls = -100;
		ev_fd_del(loop, fd);
	}
}

static void test_fd_set_events(void)
{
	struct ev_loop *loop = ev_new();
	struct toggle_state st = { 0, 0 };
	int sv[2];

	T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	T_EQ_INT(ev_fd_add(loop, sv[0], POLLOUT, toggle_cb, &st), 0);
	T_EQ_INT(write(sv[1], "y", 1), 1);
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_INT(st.out_calls, 1);	/* POLLOUT stopped once it was switched off */
	T_EQ_INT(st.in_calls, 1);
	close(sv[0]);
	close(sv[1]);
	ev_free(loop);
}

/* Two readable pipes whose callbacks each delete (and close) the other one. */
struct pair_state {
	int fd[2];
	int calls[2];
	int deleted_fd;
	int replacement[2];
	int replacement_calls;
};

static void replacement_cb(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct pair_state *st = arg;

	st->replacement_calls++;
	ev_fd_del(loop, fd);
}

static void drop_replacement(struct ev_loop *loop, void *arg)
{
	struct pair_state *st = arg;

	ev_fd_del(loop, st->replacement[0]);
}

static void pair_cb(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct pair_state *st = arg;
	int me = fd == st->fd[0] ? 0 : 1, other = 1 - me;

	st->calls[me]++;
	ev_fd_del(loop, st->fd[other]);
	close(st->fd[other]);
	st->deleted_fd = st->fd[other];
	/* Reuse the deleted fd number at once: the new registration must not inherit the old
	 * one's readiness from this pass (it is a pipe nobody writes to, so it never fires). */
	make_pipe(st->replacement);
	(void)ev_fd_add(loop, st->replacement[0], POLLIN, replacement_cb, st);
	ev_timer_add(loop, 20, drop_replacement, st);
	ev_fd_del(loop, fd);
}

static void test_fd_del_in_other_callback(void)
{
	struct ev_loop *loop = ev_new();
	struct pair_state st;
	int a[2], b[2];

	memset(&st, 0, sizeof(st));
	make_pipe(a);
	make_pipe(b);
	st.fd[0] = a[0];
	st.fd[1] = b[0];
	T_EQ_INT(write(a[1], "a", 1), 1);
	T_EQ_INT(write(b[1], "b", 1), 1);
	T_EQ_INT(ev_fd_add(loop, a[0], POLLIN, pair_cb, &st), 0);
	T_EQ_INT(ev_fd_add(loop, b[0], POLLIN, pair_cb, &st), 0);
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_INT(st.calls[0] + st.calls[1], 1);
	T_EQ_INT(st.replacement[0], st.deleted_fd);	/* the fd number really was reused */
	T_EQ_INT(st.replacement_calls, 0);
	close(st.calls[0] ? a[0] : b[0]);
	close(st.replacement[0]);
	close(st.replacement[1]);
	close(a[1]);
	close(b[1]);
	ev_free(loop);
}

/* ---- timers ------------------------------------------------------------------------------ */

struct order_state {
	char seen[16];
	int n;
};

struct tagged {
	struct order_state *st;
	char tag;
};

static void record_cb(struct ev_loop *loop, void *arg)
{
	struct tagged *t = arg;

	if (t->st->n < (int)sizeof(t->st->seen) - 1)
		t->st->seen[t->st->n++] = t->tag;
}

static void test_timers_in_order(void)
{
	struct ev_loop *loop = ev_new();
	struct order_state st;
	struct tagged a = { &st, 'a' }, b = { &st, 'b' }, c = { &st, 'c' }, d = { &st, 'd' };
	int64_t start = mono_ms();
	uint64_t ida, idb;

	memset(&st, 0, sizeof(st));
	ida = ev_timer_add(loop, 30, record_cb, &a);
	idb = ev_timer_add(loop, 10, record_cb, &b);
	T_CHECK(ida > 0 && idb > 0 && ida != idb);
	ev_timer_add(loop, 20, record_cb, &c);
	ev_timer_add(loop, 10, record_cb, &d);	/* same deadline as b: fires after b */
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_STR(st.seen, "bdca");
	T_CHECK(mono_ms() - start >= 30);
	T_CHECK(ev_now(loop) >= start + 30);
	ev_free(loop);
}

static void test_timer_cancel(void)
{
	struct ev_loop *loop = ev_new();
	struct order_state st;
	struct tagged a = { &st, 'a' }, b = { &st, 'b' }, c = { &st, 'c' };
	uint64_t ida;

	memset(&st, 0, sizeof(st));
	ida = ev_timer_add(loop, 5, record_cb, &a);
	ev_timer_add(loop, 10, record_cb, &b);
	ev_timer_cancel(loop, ev_timer_add(loop, 1, record_cb, &c));
	ev_timer_cancel(loop, ida);
	ev_timer_cancel(loop, ida);	/* twice, and unknown ids, are harmless */
	ev_timer_cancel(loop, 999999);
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_STR(st.seen, "b");

	/* Cancelling the only timer leaves nothing to wait for: ev_run returns at once. */
	memset(&st, 0, sizeof(st));
	ev_timer_cancel(loop, ev_timer_add(loop, 5000, record_cb, &a));
	int64_t start = mono_ms();
	T_EQ_INT(ev_run(loop), 0);
	T_CHECK(mono_ms() - start < 1000);
	T_EQ_INT(st.n, 0);
	ev_free(loop);
}

struct chain_state {
	int fired;
	uint64_t cancel_me;
	int cancelled_fired;
};

static void cancelled_cb(struct ev_loop *loop, void *arg)
{
	struct chain_state *st = arg;

	st->cancelled_fired++;
}

static void chain_cb(struct ev_loop *loop, void *arg)
{
	struct chain_state *st = arg;

	if (++st->fired == 1) {
		ev_timer_cancel(loop, st->cancel_me);
		ev_timer_add(loop, 5, chain_cb, st);
	}
}

static void test_timer_added_from_callback(void)
{
	struct ev_loop *loop = ev_new();
	struct chain_state st = { 0, 0, 0 };

	ev_timer_add(loop, 1, chain_cb, &st);
	st.cancel_me = ev_timer_add(loop, 3, cancelled_cb, &st);
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_INT(st.fired, 2);
	T_EQ_INT(st.cancelled_fired, 0);
	ev_free(loop);
}

/* A zero-delay timer that re-arms itself must not starve a ready descriptor. */
struct starve_state {
	int timer_runs;
	int fd_runs;
	int wfd;
};

static void rearm_cb(struct ev_loop *loop, void *arg)
{
	struct starve_state *st = arg;

	/* The descriptor becomes ready only now, after the timer pass has begun. */
	if (st->timer_runs == 0 && write(st->wfd, "z", 1) != 1)
		st->timer_runs = 1000;
	if (++st->timer_runs < 1000 && st->fd_runs == 0)
		ev_timer_add(loop, 0, rearm_cb, st);
}

static void starve_fd_cb(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct starve_state *st = arg;

	st->fd_runs++;
	ev_fd_del(loop, fd);
}

static void test_timer_no_starvation(void)
{
	struct ev_loop *loop = ev_new();
	struct starve_state st = { 0, 0, -1 };
	int p[2];

	make_pipe(p);
	st.wfd = p[1];
	ev_timer_add(loop, 0, rearm_cb, &st);
	T_EQ_INT(ev_fd_add(loop, p[0], POLLIN, starve_fd_cb, &st), 0);
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_INT(st.fd_runs, 1);
	T_CHECK(st.timer_runs < 5);
	close(p[0]);
	close(p[1]);
	ev_free(loop);
}

/* ---- ev_stop ----------------------------------------------------------------------------- */

static void stop_cb(struct ev_loop *loop, void *arg)
{
	struct tagged *t = arg;

	record_cb(loop, t);
	ev_stop(loop);
}

static void test_stop(void)
{
	struct ev_loop *loop = ev_new();
	struct order_state st;
	struct tagged s = { &st, 's' }, later = { &st, 'l' };

	memset(&st, 0, sizeof(st));
	ev_timer_add(loop, 1, stop_cb, &s);
	ev_timer_add(loop, 50, record_cb, &later);
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_STR(st.seen, "s");
	T_EQ_INT(ev_run(loop), 0);	/* the stop was consumed; the rest still runs */
	T_EQ_STR(st.seen, "sl");
	ev_free(loop);
}

/* ---- signals and EINTR ------------------------------------------------------------------- */

struct sig_state {
	int signo;
	int calls;
	int timed_out;
};

static void on_signal(struct ev_loop *loop, int signo, void *arg)
{
	struct sig_state *st = arg;

	st->signo = signo;
	st->calls++;
	ev_stop(loop);
}

static void raise_cb(struct ev_loop *loop, void *arg)
{
	(void)raise(SIGUSR1);
}

static void give_up_cb(struct ev_loop *loop, void *arg)
{
	struct sig_state *st = arg;

	st->timed_out = 1;
	ev_stop(loop);
}

static void test_signal_delivery(void)
{
	struct ev_loop *loop = ev_new();
	struct sig_state st = { 0, 0, 0 };
	struct sigaction now;

	T_EQ_INT(ev_signal_add(loop, SIGUSR1, on_signal, &st), 0);
	T_EQ_INT(ev_signal_add(loop, SIGKILL, on_signal, &st), -1);
	ev_timer_add(loop, 10, raise_cb, NULL);
	ev_timer_add(loop, 3000, give_up_cb, &st);
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_INT(st.calls, 1);
	T_EQ_INT(st.signo, SIGUSR1);
	T_EQ_INT(st.timed_out, 0);
	ev_free(loop);
	/* ev_free put the previous (default) disposition back. */
	T_EQ_INT(sigaction(SIGUSR1, NULL, &now), 0);
	T_CHECK(now.sa_handler == SIG_DFL);
}

/* A loop with nothing but a signal handler keeps waiting for the signal. */
static void test_signal_only_loop(void)
{
	struct ev_loop *loop = ev_new();
	struct ev_loop *other = ev_new();
	struct sig_state st = { 0, 0, 0 };
	pid_t child;
	int status;

	T_EQ_INT(ev_signal_add(loop, SIGUSR1, on_signal, &st), 0);
	T_EQ_INT(ev_signal_add(other, SIGUSR2, on_signal, &st), -1);	/* one owner */
	T_EQ_INT(errno, EBUSY);
	child = fork();
	if (child == 0) {
		usleep(50000);
		kill(getppid(), SIGUSR1);
		_exit(0);
	}
	T_CHECK(child > 0);
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_INT(st.calls, 1);
	T_EQ_INT(waitpid(child, &status, 0), child);
	ev_free(loop);
	/* Now that the first loop is gone, another may own signals. */
	T_EQ_INT(ev_signal_add(other, SIGUSR2, on_signal, &st), 0);
	ev_free(other);
}

static void plain_handler(int signo)
{
}

/* poll() interrupted by a signal that is not the loop's: EINTR is not an error. */
static void test_eintr(void)
{
	struct ev_loop *loop = ev_new();
	struct order_state st;
	struct tagged t = { &st, 't' };
	struct sigaction sa, old;
	struct itimerval it;

	memset(&st, 0, sizeof(st));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = plain_handler;	/* no SA_RESTART: poll fails with EINTR */
	sigemptyset(&sa.sa_mask);
	T_EQ_INT(sigaction(SIGALRM, &sa, &old), 0);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_usec = 20000;
	T_EQ_INT(setitimer(ITIMER_REAL, &it, NULL), 0);
	ev_timer_add(loop, 100, record_cb, &t);
	T_EQ_INT(ev_run(loop), 0);
	T_EQ_STR(st.seen, "t");
	T_EQ_INT(sigaction(SIGALRM, &old, NULL), 0);
	alarm(30);	/* setitimer replaced main's watchdog */
	ev_free(loop);
}

int main(void)
{
	alarm(30);	/* a hang is a failure, not a stuck build */
	T_RUN(test_fd_fires);
	T_RUN(test_fd_set_events);
	T_RUN(test_fd_del_in_other_callback);
	T_RUN(test_timers_in_order);
	T_RUN(test_timer_cancel);
	T_RUN(test_timer_added_from_callback);
	T_RUN(test_timer_no_starvation);
	T_RUN(test_stop);
	T_RUN(test_signal_delivery);
	T_RUN(test_signal_only_loop);
	T_RUN(test_eintr);
	return T_DONE();
}
