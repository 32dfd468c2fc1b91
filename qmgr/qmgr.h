/*
 * qmgr.h: the state shared by the files of postern-qmgr, the queue manager (issue 5;
 * DESIGN.md §2, §4). It owns active/, deferred/, hold/ and defer/ of the queue; the queue
 * daemon owns tmp/ and writes incoming/.
 *
 * Directory rules every file here relies on (they make restarts and kill -9 safe):
 *   - incoming/ holds files as smtpd and pickup committed them: aliases NOT expanded.
 *   - active/, deferred/, hold/ hold expanded files: every recipient is final (a mailbox,
 *     a local user, a remote address); an alias answer from authd for one of them means
 *     the alias's own mailbox (an alias that lists itself).
 *   - a file is in exactly one of those places, except for a moment while the expanded copy
 *     of an incoming/ file is renamed into active/: an incoming/ file whose id also exists
 *     in active/, deferred/ or hold/ is a leftover and is removed at start-up.
 *   - a recipient's result is written into its status block (lib/queuefile.h) as soon as
 *     the agent answers; QF_DELIVERED and QF_RETURNED are never tried again.
 */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "deliverproto.h"
#include "event.h"
#include "ipc.h"
#include "ipcserver.h"
#include "queuefile.h"

#define QMGR_TEXT_MAX		512	/* a recipient's last diagnostic */
#define QMGR_DEST_MAX		300	/* a destination key: domain or nexthop */
#define QMGR_MAX_CONTROL	8	/* control clients at once (root's CLI) */

enum transport { T_VIRTUAL, T_LOCAL, T_SMTP, T_COUNT };

/* queue/ subdirectories qmgr works in. */
enum qdir { D_INCOMING, D_ACTIVE, D_DEFERRED, D_HOLD, D_DEFER, D_TMP, D_CORRUPT, D_COUNT };

struct job;
struct dest;

/* One recipient of an active message: what the file says plus where it goes. */
struct mrcpt {
	struct qf_rcpt *qr;		/* in msg->q.env.rcpt */
	enum transport transport;
	char *nexthop;			/* transport_map's nexthop, or NULL */
	char *text;			/* last diagnostic (heap), or NULL */
	char *relay;			/* last relay (heap), or NULL */
	bool busy;			/* in a job that has not answered yet */
	bool decided;			/* has its result for this stay in active/ */
};

/* A message in active/. */
struct msg {
	char qid[QF_QID_SIZE];
	char subdir[QF_SUBDIR_SIZE];
	int fd;				/* O_RDWR: status blocks are written here */
	struct qf q;
	struct mrcpt *rcpt;		/* q.env.nrcpt of them */
	int64_t active_ms;		/* when it came into active/ */
	int jobs;			/* jobs queued or in flight */
	bool dirty;			/* status written since the last fdatasync */
	enum { M_NONE, M_DELETE, M_HOLD, M_REQUEUE } pending_op;	/* once jobs end */
	struct msg *hnext;		/* hash chain */
	struct msg *prev, *next;	/* all active messages */
};

/* One DELIVER request: up to DELIVER_MAX_RCPT recipients of one message, one destination. */
struct job {
	struct msg *m;
	struct dest *d;
	size_t n;
	size_t idx[DELIVER_MAX_RCPT];	/* into m->rcpt */
	struct job *next;
};

/* Where jobs wait: one transport's destination (a domain, a nexthop, or "" for virtual
 * and local). Destinations with waiting jobs are served round robin. */
struct dest {
	enum transport t;
	char key[QMGR_DEST_MAX];
	struct job *head, *tail;
	int inflight;
	bool listed;			/* on the transport's ready list */
	struct dest *hnext;		/* hash chain */
	struct dest *rnext;		/* ready list */
};

/* A connection to an agent pool process. */
struct agent_conn {
	int fd;				/* -1: not connected */
	struct job *job;		/* in flight, or NULL when idle */
	uint32_t reqid;
	uint64_t timer;
	struct dest *last;		/* destination of the last job (connection reuse) */
};

struct transport_state {
	const char *name;		/* "virtual", "local", "smtp" */
	char sock_path[4096];
	int limit;			/* connections (the pool's process limit) */
	struct agent_conn *conn;	/* limit of them */
	struct dest *ready_head, *ready_tail;	/* destinations with waiting jobs, served
						 * round robin (dispatch.c) */
	int64_t down_until;		/* agent unreachable: do not try before (mono ms) */
};

struct qmgr {
	struct config *cfg;
	struct ev_loop *loop;
	int dfd[D_COUNT];
	struct ipc_allow control_allow;	/* root */
	struct ipc_server *control;
	char auth_path[4096];
	int auth_sock;
	const char *myhostname;
	const char *relayhost;
	const char *bounce_notice_recipient;
	int dest_limit;			/* default_destination_concurrency_limit */
	int64_t min_backoff, max_backoff, run_delay, lifetime, bounce_lifetime;	/* ms */
	int active_limit, expansion_limit, recursion_limit;
	int nactive;
	struct msg *active;		/* list of all active messages */
	bool incoming_backlog;		/* incoming/ has more than we took */
	int inotify_fd;
	struct transport_state tr[T_COUNT];
};

extern struct qmgr G;

/* scan.c: finding work in the queue directories. */
void scan_init(const char *spool);	/* inotify on incoming/ (as root, before chroot) */
void scan_watch(void);			/* ... then in the event loop */
void scan_startup(void);		/* active/ left by a previous run, then incoming/ */
void scan_incoming(void);
void scan_incoming_soon(void);		/* from a zero timer: no recursion from callers */
void scan_incoming_later(int64_t ms);
int scan_deferred(bool all);		/* due files (all: flush) into active/; how many */
void qdir_subdirs(void);		/* make the X/Y subdirectories qmgr uses */
int qdir_path(const char *qid, char *out, size_t outlen);	/* "X/Y/QID" */
int qdir_move(enum qdir from, enum qdir to, const char *qid);
bool qdir_exists(enum qdir d, const char *qid);
/* fsync the X/Y directory of qid in d (after a rename into it). 0 or -1. */
int qdir_sync_subdir(enum qdir d, const char *qid);
/* fn for every queue id in d (sub: the descriptor of its X/Y directory). */
void qdir_each(enum qdir d, void (*fn)(enum qdir d, const char *qid, int sub, void *arg),
	       void *arg);

/* message.c: a message's life in active/. */
void msg_take_incoming(const char *qid);	/* expand, move into active/, schedule */
void msg_take(enum qdir from, const char *qid);	/* deferred/ or hold/ into active/ */
void msg_load_active(const char *qid);		/* already in active/ (restart) */
struct msg *msg_find(const char *qid);
void msg_job_done(struct msg *m);		/* a job of m answered (or failed) */
void msg_set_result(struct msg *m, size_t i, int code, const char *dsn, const char *text,
		    const char *relay);
void msg_control(struct msg *m, int op);	/* delete/hold/requeue once idle */

/* resolve.c: authd lookups, alias expansion, transport choice. */
enum resolve_status { RES_OK, RES_TEMPFAIL };
struct expansion {
	size_t n, cap;
	struct qf_rcpt *r;		/* heap addr/orcpt strings */
	int *tr;			/* r[i]'s transport as authd answered, -1 unknown */
	bool changed;			/* differs from the file's list */
};
enum resolve_status resolve_expand(const struct qf *q, struct expansion *out);
void expansion_free(struct expansion *e);
bool transport_override(const char *domain, enum transport *t, char **nexthop);
enum resolve_status resolve_transport(const char *addr, enum transport *t, char **nexthop,
				      int *code, char *dsn, char *text, size_t textlen);

/* rewrite.c: the expanded copy of an incoming/ file, written into active/. */
int rewrite_expanded(const char *qid, int infd, const struct qf *q, const struct expansion *e);

/* dispatch.c: jobs, destinations, agent connections. */
void dispatch_init(void);
void dispatch_msg(struct msg *m);		/* queue jobs for its recipients not done */
void dispatch_run(void);			/* start what the limits allow */

/* bounce.c: RFC 3464 reports, queued as new messages. 0, or -1 (try again later). */
int bounce_send(struct msg *m);

/* deferlog.c: queue/defer/X/Y/QID. */
void deferlog_write(struct msg *m);
void deferlog_remove(const char *qid);

/* control.c: the private/qmgr socket. */
extern const struct ipc_server_ops control_ops;

#endif
