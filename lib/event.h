/*
 * event.h: a small poll(2)-based event loop with millisecond timers and signals, for the
 * daemons that serve many clients in one process (master, authd, queue, qmgr). Callbacks
 * may add or remove descriptors and timers, including their own, at any time.
 */
#ifndef POSTERN_EVENT_H
#define POSTERN_EVENT_H

#include <poll.h>
#include <stdint.h>

struct ev_loop;

typedef void ev_fd_cb(struct ev_loop *loop, int fd, int revents, void *arg);
typedef void ev_timer_cb(struct ev_loop *loop, void *arg);
typedef void ev_signal_cb(struct ev_loop *loop, int signo, void *arg);

struct ev_loop *ev_new(void);
void ev_free(struct ev_loop *loop);

/* Watch fd for events (POLLIN and/or POLLOUT); revents may also hold POLLHUP/POLLERR.
 * One registration per fd; adding an fd twice fails with EEXIST. */
int ev_fd_add(struct ev_loop *loop, int fd, short events, ev_fd_cb *cb, void *arg);
int ev_fd_set_events(struct ev_loop *loop, int fd, short events);
void ev_fd_del(struct ev_loop *loop, int fd);

/* One-shot timer after `after_ms`; returns an id > 0 to cancel it with. */
uint64_t ev_timer_add(struct ev_loop *loop, int64_t after_ms, ev_timer_cb *cb, void *arg);
void ev_timer_cancel(struct ev_loop *loop, uint64_t id);

/* Deliver a signal through the loop (self-pipe); the callback runs in normal context. */
int ev_signal_add(struct ev_loop *loop, int signo, ev_signal_cb *cb, void *arg);

/* Run until ev_stop() or nothing is left to wait for. 0, or -1 on a poll error. */
int ev_run(struct ev_loop *loop);
void ev_stop(struct ev_loop *loop);
/* The loop's monotonic clock, refreshed once per iteration. */
int64_t ev_now(struct ev_loop *loop);

#endif
