/*
 * event.c: the poll(2) event loop behind event.h.
 *
 * Descriptors live in an array of registrations plus an fd -> slot index, so add, delete and
 * lookup are O(1). A registration deleted while callbacks are being dispatched is only marked
 * dead and the array is compacted after the pass, so a callback may delete any descriptor
 * (its own or another's) and a deleted descriptor's callback is never called again, even if
 * the same fd number is registered anew within the pass.
 *
 * Timers are a binary min-heap ordered by (deadline, id); ids grow monotonically, so timers
 * with the same deadline fire in the order they were added. A pass fires only timers that
 * existed when it began: a callback re-adding a zero-delay timer cannot starve descriptors.
 * Cancelling finds the timer by a linear scan of the heap array and removes it at once, which
 * keeps the count of pending timers exact (so ev_run knows when nothing is left) and is cheap
 * at the few thousand timers a daemon holds.
 *
 * Signals go through one self-pipe per process: the handler writes the signal number as one
 * byte and the loop that owns the pipe reads it and runs the callback in normal context.
 * Only one loop at a time may own signals; ev_free gives them back (restoring the previous
 * dispositions). In a forked child that has not set up its own handling, the handler falls
 * back to the default action instead of feeding the parent's pipe; such a child must ev_free
 * the inherited loop before it adds signal handlers of its own.
 */
#include "event.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct ev_reg {
	int fd;
	short events;
	bool dead;
	ev_fd_cb *cb;
	void *arg;
};

struct ev_timer {
	int64_t deadline;
	uint64_t id;
	ev_timer_cb *cb;
	void *arg;
};

struct ev_sig {
	ev_signal_cb *cb;
	void *arg;
	bool installed;
	struct sigaction old;	/* restored by ev_free */
};

struct ev_loop {
	struct ev_reg *regs;	/* registrations, dead ones included until compaction */
	size_t nregs, capregs;
	size_t nlive;		/* registrations not marked dead */
	bool have_dead;
	int *slot_of;		/* fd -> index into regs, -1 if not registered */
	size_t capslots;
	struct pollfd *pfds;	/* scratch for poll(), parallel to regs */
	size_t cappfds;

	struct ev_timer *heap;
	size_t ntimers, captimers;
	uint64_t next_timer_id;

	struct ev_sig sigs[NSIG];

	int64_t now;
	bool stop;
};

/* The process's self-pipe and the loop that owns it. */
static int sig_pipe[2] = { -1, -1 };
static pid_t sig_pid;
static struct ev_loop *sig_owner;

struct ev_loop *ev_new(void)
{
	struct ev_loop *loop = xcalloc(1, sizeof(*loop));

	loop->next_timer_id = 1;
	loop->now = mono_ms();
	return loop;
}

/* ---- descriptors ------------------------------------------------------------------------- */

static int reg_slot(const struct ev_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->capslots)
		return -1;
	return loop->slot_of[fd];
}

static void grow_slots(struct ev_loop *loop, int fd)
{
	size_t ncap = loop->capslots ? loop->capslots : 64;

	while (ncap <= (size_t)fd)
		ncap *= 2;
	loop->slot_of = xreallocarray(loop->slot_of, ncap, sizeof(*loop->slot_of));
	for (size_t i = loop->capslots; i < ncap; i++)
		loop->slot_of[i] = -1;
	loop->capslots = ncap;
}

int ev_fd_add(struct ev_loop *loop, int fd, short events, ev_fd_cb *cb, void *arg)
{
	struct ev_reg *r;

	if (fd < 0 || cb == NULL) {
		errno = fd < 0 ? EBADF : EINVAL;
		return -1;
	}
	if (reg_slot(loop, fd) >= 0) {
		errno = EEXIST;
		return -1;
	}
	if ((size_t)fd >= loop->capslots)
		grow_slots(loop, fd);
	if (loop->nregs == loop->capregs) {
		loop->capregs = loop->capregs ? loop->capregs * 2 : 16;
		loop->regs = xreallocarray(loop->regs, loop->capregs, sizeof(*loop->regs));
	}
	r = &loop->regs[loop->nregs];
	r->fd = fd;
	r->events = events;
	r->dead = false;
	r->cb = cb;
	r->arg = arg;
	loop->slot_of[fd] = (int)loop->nregs++;
	loop->nlive++;
	return 0;
}

int ev_fd_set_events(struct ev_loop *loop, int fd, short events)
{
	int slot = reg_slot(loop, fd);

	if (slot < 0) {
		errno = ENOENT;
		return -1;
	}
	loop->regs[slot].events = events;
	return 0;
}

void ev_fd_del(struct ev_loop *loop, int fd)
{
	int slot = reg_slot(loop, fd);

	if (slot < 0)
		return;
	loop->regs[slot].dead = true;
	loop->slot_of[fd] = -1;
	loop->nlive--;
	loop->have_dead = true;
}

/* Drop dead registrations; only ever called between dispatch passes. */
static void compact_regs(struct ev_loop *loop)
{
	size_t out = 0;

	if (!loop->have_dead)
		return;
	for (size_t i = 0; i < loop->nregs; i++) {
		if (loop->regs[i].dead)
			continue;
		loop->regs[out] = loop->regs[i];
		loop->slot_of[loop->regs[out].fd] = (int)out;
		out++;
	}
	loop->nregs = out;
	loop->have_dead = false;
}

/* ---- timers: a min-heap on (deadline, id) ------------------------------------------------ */

static bool timer_before(const struct ev_timer *a, const struct ev_timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

static void heap_swap(struct ev_loop *loop, size_t i, size_t j)
{
	struct ev_timer t = loop->heap[i];

	loop->heap[i] = loop->heap[j];
	loop->heap[j] = t;
}

static void heap_up(struct ev_loop *loop, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(&loop->heap[i], &loop->heap[parent]))
			break;
		heap_swap(loop, i, parent);
		i = parent;
	}
}

static void heap_down(struct ev_loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < loop->ntimers && timer_before(&loop->heap[l], &loop->heap[min]))
			min = l;
		if (r < loop->ntimers && timer_before(&loop->heap[r], &loop->heap[min]))
			min = r;
		if (min == i)
			return;
		heap_swap(loop, i, min);
		i = min;
	}
}

static void heap_remove(struct ev_loop *loop, size_t i)
{
	loop->ntimers--;
	if (i == loop->ntimers)
		return;
	loop->heap[i] = loop->heap[loop->ntimers];
	heap_up(loop, i);
	heap_down(loop, i);
}

uint64_t ev_timer_add(struct ev_loop *loop, int64_t after_ms, ev_timer_cb *cb, void *arg)
{
	struct ev_timer *t;
	uint64_t id = loop->next_timer_id++;

	if (after_ms < 0)
		after_ms = 0;
	if (after_ms > INT64_MAX / 2)
		after_ms = INT64_MAX / 2;
	if (loop->ntimers == loop->captimers) {
		loop->captimers = loop->captimers ? loop->captimers * 2 : 16;
		loop->heap = xreallocarray(loop->heap, loop->captimers, sizeof(*loop->heap));
	}
	t = &loop->heap[loop->ntimers];
	t->deadline = mono_ms() + after_ms;
	t->id = id;
	t->cb = cb;
	t->arg = arg;
	heap_up(loop, loop->ntimers++);
	return id;
}

void ev_timer_cancel(struct ev_loop *loop, uint64_t id)
{
	for (size_t i = 0; i < loop->ntimers; i++) {
		if (loop->heap[i].id == id) {
			heap_remove(loop, i);
			return;
		}
	}
}

/* Fire the timers due at loop->now that existed before this pass began. */
static void run_timers(struct ev_loop *loop)
{
	uint64_t first_new_id = loop->next_timer_id;

	while (!loop->stop && loop->ntimers > 0) {
		struct ev_timer t = loop->heap[0];

		if (t.deadline > loop->now || t.id >= first_new_id)
			return;
		heap_remove(loop, 0);
		t.cb(loop, t.arg);
	}
}

/* poll() timeout in ms: until the earliest timer, -1 without timers. */
static int poll_timeout(const struct ev_loop *loop)
{
	int64_t wait;

	if (loop->ntimers == 0)
		return -1;
	wait = loop->heap[0].deadline - mono_ms();
	if (wait < 0)
		return 0;
	return wait > INT_MAX ? INT_MAX : (int)wait;
}

/* ---- signals ----------------------------------------------------------------------------- */

static void sig_handler(int signo)
{
	int saved = errno;
	unsigned char byte = (unsigned char)signo;

	if (getpid() != sig_pid) {
		/* A forked child still running the parent's handler: act as if we were never
		 * installed rather than wake the parent's loop. The signal is blocked while we
		 * run, so raise() delivers it with the default action once we return. */
		struct sigaction dfl;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigemptyset(&dfl.sa_mask);
		(void)sigaction(signo, &dfl, NULL);
		(void)raise(signo);
	} else if (write(sig_pipe[1], &byte, 1) < 0) {
		/* Pipe full: that many pending signals coalesce, as signals do anyway. */
	}
	errno = saved;
}

static void sig_pipe_readable(struct ev_loop *loop, int fd, int revents, void *arg)
{
	unsigned char bytes[64];
	ssize_t n;

	while ((n = read(fd, bytes, sizeof(bytes))) > 0 || (n < 0 && errno == EINTR)) {
		/* Every signal read is delivered, even after ev_stop: it cannot be read twice. */
		for (ssize_t i = 0; i < n; i++) {
			struct ev_sig *s = &loop->sigs[bytes[i] % NSIG];

			if (s->cb)
				s->cb(loop, bytes[i], s->arg);
		}
	}
}

static int sig_pipe_open(struct ev_loop *loop)
{
	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	if (ev_fd_add(loop, sig_pipe[0], POLLIN, sig_pipe_readable, NULL) < 0) {
		int saved = errno;

		close(sig_pipe[0]);
		close(sig_pipe[1]);
		sig_pipe[0] = sig_pipe[1] = -1;
		errno = saved;
		return -1;
	}
	sig_pid = getpid();
	sig_owner = loop;
	return 0;
}

int ev_signal_add(struct ev_loop *loop, int signo, ev_signal_cb *cb, void *arg)
{
	struct sigaction sa;
	struct ev_sig *s;

	if (signo <= 0 || signo >= NSIG || signo > UCHAR_MAX || cb == NULL) {
		errno = EINVAL;
		return -1;
	}
	/* Another loop owns the pipe, or we are a forked child sharing the parent's pipe
	 * (the child must ev_free the inherited loop first). */
	if (sig_owner != NULL && (sig_owner != loop || sig_pid != getpid())) {
		errno = EBUSY;
		return -1;
	}
	if (sig_owner == NULL && sig_pipe_open(loop) < 0)
		return -1;
	s = &loop->sigs[signo];
	s->cb = cb;
	s->arg = arg;
	if (s->installed)
		return 0;	/* only the callback changed */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(signo, &sa, &s->old) < 0) {
		s->cb = NULL;
		return -1;
	}
	s->installed = true;
	return 0;
}

/* Give the process's signals and self-pipe back (ev_free of the owning loop). */
static void sig_release(struct ev_loop *loop)
{
	if (sig_owner != loop)
		return;
	for (int signo = 1; signo < NSIG; signo++) {
		if (loop->sigs[signo].installed)
			(void)sigaction(signo, &loop->sigs[signo].old, NULL);
	}
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
	sig_owner = NULL;
}

/* ---- the loop ---------------------------------------------------------------------------- */

/* Poll once and run the callbacks of the descriptors that are ready. */
static int poll_and_dispatch(struct ev_loop *loop)
{
	size_t n;
	int ready;

	compact_regs(loop);
	n = loop->nregs;
	if (n > loop->cappfds) {
		loop->pfds = xreallocarray(loop->pfds, n, sizeof(*loop->pfds));
		loop->cappfds = n;
	}
	for (size_t i = 0; i < n; i++) {
		loop->pfds[i].fd = loop->regs[i].fd;
		loop->pfds[i].events = loop->regs[i].events;
		loop->pfds[i].revents = 0;
	}
	ready = poll(loop->pfds, n, poll_timeout(loop));
	loop->now = mono_ms();
	if (ready < 0)
		return errno == EINTR ? 0 : -1;
	/* Registrations added by callbacks land past n and wait for the next pass; regs may be
	 * reallocated by them, so it is indexed afresh every time. */
	for (size_t i = 0; i < n && ready > 0 && !loop->stop; i++) {
		struct ev_reg *r = &loop->regs[i];
		int revents = loop->pfds[i].revents;

		if (revents == 0)
			continue;
		ready--;
		revents &= r->events | POLLERR | POLLHUP | POLLNVAL;
		if (r->dead || revents == 0)
			continue;
		r->cb(loop, r->fd, revents, r->arg);
	}
	return 0;
}

int ev_run(struct ev_loop *loop)
{
	int rc = 0;

	while (!loop->stop && (loop->nlive > 0 || loop->ntimers > 0)) {
		if (poll_and_dispatch(loop) < 0) {
			rc = -1;
			break;
		}
		run_timers(loop);
	}
	compact_regs(loop);
	loop->stop = false;
	return rc;
}

void ev_stop(struct ev_loop *loop)
{
	loop->stop = true;
}

int64_t ev_now(struct ev_loop *loop)
{
	return loop->now;
}

void ev_free(struct ev_loop *loop)
{
	if (loop == NULL)
		return;
	sig_release(loop);
	free(loop->regs);
	free(loop->slot_of);
	free(loop->pfds);
	free(loop->heap);
	free(loop);
}
