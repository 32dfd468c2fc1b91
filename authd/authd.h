/*
 * authd.h: shared declarations of postern-authd (issue 3, DESIGN.md §6). authd is a single
 * daemon, user auth_owner, not chrooted, the only process that holds the database
 * credentials. The main thread runs the event loop: it reads requests (lib/authproto.h),
 * checks each peer against the allow-list of the request type, answers from the cache when
 * it can, and otherwise hands a job to a small pool of worker threads, each with its own
 * database connection, so a slow query or an expensive password hash never stalls the loop.
 */
#ifndef POSTERN_AUTHD_H
#define POSTERN_AUTHD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "address.h"
#include "authproto.h"
#include "buf.h"
#include "config.h"
#include "event.h"
#include "ipc.h"
#include "ipcserver.h"

#define AUTHD_MAX_TARGETS	1000	/* alias targets per lookup */
#define AUTHD_MAX_CLIENTS	1024

/* What a lookup found; shared by the cache, the workers and the replies. */
struct lookup {
	int status;			/* IPC_OK, IPC_PERMFAIL, IPC_TEMPFAIL */
	char reason[128];
	char kind[16];			/* rcpt: virtual | alias | local | remote */
	char user[ADDR_MAX + 1];	/* canonical user / mailbox */
	char home[1024];
	char mail[1024];
	int64_t uid, gid, quota;
	struct buf targets;		/* alias targets, NUL-separated */
};

/* A unit of work for a worker thread. */
struct job {
	int type;			/* enum auth_req */
	uint32_t req_id;
	struct ipc_peer *client;	/* held until the job is done */
	/* input */
	char address[ADDR_MAX + 1];
	char user[ADDR_MAX + 1];
	char pass[AUTH_MAX_PASSWORD + 1];
	char mech[16], service[32], rip[64];
	char challenge[AUTH_MAX_CHALLENGE + 1];	/* CRAM-MD5; pass holds the response */
	bool want_ticket;
	int64_t arrived;		/* ev_now() when the request came in */
	/* output */
	struct lookup res;
	struct job *next;
};

struct authd {
	struct config *cfg;		/* postern.conf */
	struct config *sql;		/* sql.conf */
	struct ev_loop *loop;
	struct ipc_allow allow[5];	/* per request type, index type - AUTH_REQ_AUTH */
	uid_t vmail_uid;
	gid_t vmail_gid;
	struct ipc_server *srv;
};

extern struct authd A;

/* client.c: request dispatch */
extern const struct ipc_server_ops client_ops;
void client_job_done(struct job *job);

/* workers.c: the thread pool */
void workers_start(int n);
void workers_attach(struct ev_loop *loop);
void workers_submit(struct job *job);
void workers_stop(void);

/* lookup.c: what a worker does with a job (runs in a worker thread) */
struct sqldb;
void lookup_run(struct sqldb *db, struct job *job);
void lookup_init(void);

/* cache.c: TTL cache of rcpt/user/sender answers (main thread only) */
void cache_init(size_t max);
const struct lookup *cache_get(int type, const char *key);
void cache_put(int type, const char *key, const struct lookup *res);

/* throttle.c: failed-login accounting (main thread only) */
int64_t throttle_check(const char *rip, const char *user);	/* -1 refused, else 0 */
int64_t throttle_failure(const char *rip, const char *user);	/* delay in ms */
void throttle_success(const char *rip, const char *user);

/* ticket.c: one-time login tickets (main thread only) */
void ticket_issue(const struct lookup *user, char *out, size_t outlen);
bool ticket_redeem(const char *ticket, struct lookup *out);

void lookup_free(struct lookup *res);
void lookup_copy(struct lookup *dst, const struct lookup *src);

#endif
