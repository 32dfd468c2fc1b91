/*
 * deliverreq.h: the agent side of lib/deliverproto.h, shared by the delivery agents that
 * serve qmgr: parsing and checking a DELIVER request (a malformed one is qmgr's bug), the
 * one reply that carries every recipient's result, Postfix's delivery log line, and the
 * start-up both agents share (who may ask, the socket). postern-smtp and postern-virtual
 * use it.
 */
#ifndef POSTERN_DELIVERREQ_H
#define POSTERN_DELIVERREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "deliverproto.h"
#include "ipc.h"
#include "ipcserver.h"
#include "server.h"

#define DELIVER_TEXT_MAX	512	/* one recipient's diagnostic */
#define DELIVER_RELAY_MAX	300	/* "host[addr]:port" */
#define DELIVER_NEXTHOP_MAX	300	/* "[host]:port", "host:port" or a domain */

enum deliver_body { DELIVER_BODY_7BIT, DELIVER_BODY_8BITMIME, DELIVER_BODY_BINARYMIME };

/* One recipient and, once tried, its result. */
struct deliver_rcpt {
	const char *rcpt;		/* point into the request frame */
	const char *orig;		/* "" when the same as rcpt */
	int code;			/* SMTP reply code; 0 = not decided yet */
	char dsn[16];			/* "2.0.0", ... */
	char text[DELIVER_TEXT_MAX];
	char relay[DELIVER_RELAY_MAX];	/* for the reply and the log */
};

/* One DELIVER request, valid while its frame is. */
struct deliver_request {
	const char *qid;
	const char *sender;		/* "" for the null sender */
	const char *nexthop;		/* "" = the agent's default (MX of the domain, relayhost) */
	int fd;				/* the queue file, read-only */
	off_t msg_off;
	uint64_t msg_len;
	int64_t arrival, active, received;	/* wall-clock ms */
	int64_t conn_ms;		/* connection set-up time (delays=a/b/c/d's c) */
	enum deliver_body body;
	bool smtputf8;
	size_t nrcpt;
	struct deliver_rcpt rcpt[DELIVER_MAX_RCPT];
};

/* Fill r from the frame: NULL, or why the request is malformed (answer PERMFAIL). Checks
 * every key, every string (no control characters), and the descriptor: one read-only
 * regular file holding msg_off + msg_len bytes. r->received is set to now. */
const char *deliver_request_parse(const struct ipc_msg *m, struct deliver_request *r);

/* Set a recipient's result (text printf-style, cut to fit). */
void deliver_result(struct deliver_rcpt *rc, int code, const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The OK reply with code<i>, dsn<i>, text<i>, relay<i> for every recipient. */
void deliver_reply(struct ipc_peer *p, const struct ipc_msg *req,
		   const struct deliver_request *r);

/* QID: to=<rcpt>, orig_to=<orig>, relay=..., delay=..., delays=a/b/c/d, dsn=...,
 * status=sent|deferred|bounced (text) */
void deliver_log(const struct deliver_request *r, const struct deliver_rcpt *rc);

/* The peers an agent answers: root, queue_owner and, in developer mode, the invoking user
 * (every daemon runs as that user then). Call before the privilege drop: it reads the user
 * database. */
void deliver_allow_init(struct server *srv, struct ipc_allow *allow);

/* A server of ops on master's listeners in loop (SIGTERM stops the loop; SIGHUP does
 * nothing: an agent caches nothing), with master told we are ready. The caller logs its
 * ready line and runs the loop. */
struct ipc_server *deliver_serve(struct server *srv, struct ev_loop *loop, int max_clients,
				 const struct ipc_server_ops *ops);

/* Pool agents (one qmgr connection per process, SERVICE_POOL on a private socket): serve
 * the accepted connection fd with ops until the peer closes it or master asks the process
 * to stop (then after the request in progress). Call from the server skeleton's serve hook;
 * ops->closed, if set, runs once the connection is gone. */
void deliver_pool_serve(int fd, const struct ipc_server_ops *ops);

/* Postfix's seconds: "0", "0.04", "1.5", "12.3", "345". */
void deliver_fmt_secs(char *out, size_t outsize, int64_t ms);

#endif
