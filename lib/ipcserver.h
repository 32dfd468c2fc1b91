/*
 * ipcserver.h: the IPC server the single daemons (authd, queue, anvil) share, on top of
 * lib/event.h and lib/ipc.h. It accepts clients on the listeners master hands over, reads
 * each peer's credentials once with SO_PEERCRED, reads a few frames per wake-up (fair to
 * the other clients, cheap for pipelining ones) and hands each request to the daemon.
 * A peer that sends more descriptors than the daemon takes (none, unless ops->max_fds says
 * so), a malformed frame, or lets its socket buffer fill up is closed; nothing a client does
 * can stall the loop.
 *
 * Lifetime: a peer whose daemon still owes it answers (jobs with worker threads, delayed
 * replies) is held; when its socket closes meanwhile it stays allocated, closed (fd -1), until
 * the last hold is released, so a late answer is dropped instead of reaching a reused
 * descriptor. The server also holds the peer while a request callback runs, so the callback
 * may close it and still use it.
 */
#ifndef POSTERN_IPCSERVER_H
#define POSTERN_IPCSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "event.h"
#include "ipc.h"

struct ipc_server;

struct ipc_peer {
	int fd;			/* -1 once closed */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool over_limit;	/* accepted beyond max_clients, only to be told why (overflow) */
	int holds;		/* ipc_peer_hold()s not yet released */
	void *data;		/* the daemon's state: ops->data_size zeroed bytes, freed with
				 * the peer */
	struct ipc_server *srv;
};

struct ipc_server_ops {
	size_t data_size;
	/* A new peer, before its first request; -1 refuses it (it is closed without
	 * ops->closed). Optional. */
	int (*opened)(struct ipc_peer *p);
	/* One request. The frame belongs to the server: copy what must outlive the call. Its
	 * descriptors (at most max_fds) belong to the callback, which closes or keeps them. */
	void (*request)(struct ipc_peer *p, struct ipc_msg *m);
	/* The socket was closed (by the peer, an error, or ipc_peer_close); release what the
	 * connection owned. Called once. Optional. */
	void (*closed)(struct ipc_peer *p);
	/* Descriptors one request may carry (delivery agents take the queue file); 0 (the
	 * default) closes a peer that sends any. */
	int max_fds;
};

/* A server of at most max_clients peers; arg is for the daemon (ipc_server_arg). */
struct ipc_server *ipc_server_new(struct ev_loop *loop, int max_clients,
				  const struct ipc_server_ops *ops, void *arg);
/* Close every peer and free the server; held peers are freed when released. */
void ipc_server_free(struct ipc_server *srv);
/* Accept up to `extra` connections beyond max_clients, marked over_limit, so the daemon can
 * answer them TEMPFAIL; beyond those, connections are closed at once. Default 0. */
void ipc_server_set_overflow(struct ipc_server *srv, int extra);
void *ipc_server_arg(const struct ipc_server *srv);
struct ev_loop *ipc_server_loop(const struct ipc_server *srv);
/* Peers counted against max_clients, and those over the limit. */
int ipc_server_clients(const struct ipc_server *srv);
int ipc_server_overflow(const struct ipc_server *srv);

/* Accept clients on the n non-blocking listeners lfd[]. 0, or -1 if one cannot be
 * watched. */
int ipc_server_listen(struct ipc_server *srv, const int *lfd, int n);
/* Serve an already-connected non-blocking socket (taken over, closed on failure). The new
 * peer, or NULL when refused (limits, credentials, ops->opened). */
struct ipc_peer *ipc_server_add(struct ipc_server *srv, int fd);

/* Send one frame; 0, or -1 if the peer is (now) closed: a failed send closes it. */
int ipc_peer_send(struct ipc_peer *p, const struct ipc_msg *m);
/* Answer req with status and, if not NULL, a "reason"; as ipc_peer_send. */
int ipc_peer_reply(struct ipc_peer *p, const struct ipc_msg *req, enum ipc_status st,
		   const char *reason);
/* True if the peer's uid is on the list; otherwise log the refusal, answer PERMFAIL
 * "not allowed", and return false. */
bool ipc_peer_allowed(struct ipc_peer *p, const struct ipc_msg *req, const struct ipc_allow *a);
/* Close the socket (ops->closed runs); the peer is freed now unless held. Idempotent. */
void ipc_peer_close(struct ipc_peer *p);
void ipc_peer_hold(struct ipc_peer *p);
/* Drop a hold; frees a closed peer with no holds left. */
void ipc_peer_release(struct ipc_peer *p);

/* A single daemon's signals: SIGTERM stops the loop (logged); SIGHUP calls on_hup, or is
 * ignored if it is NULL. One loop per process. */
void ipc_server_signals(struct ev_loop *loop, void (*on_hup)(void));
/* For daemons with many clients: raise the soft descriptor limit to the hard one. */
void ipc_server_raise_fd_limit(void);

#endif
