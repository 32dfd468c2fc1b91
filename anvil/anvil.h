/*
 * anvil.h: shared declarations of postern-anvil, the connection counter (lib/anvilproto.h).
 * One single daemon, mail_owner, chrooted in the spool, with no files and no secrets: all it
 * holds is a table of (service, client address) -> number of open client sockets that
 * registered that pair (table.c), and those client sockets (conn.c).
 */
#ifndef POSTERN_ANVIL_H
#define POSTERN_ANVIL_H

#include <stdbool.h>

#include "anvilproto.h"
#include "event.h"
#include "ipc.h"
#include "ipcserver.h"

/* Connections beyond ANVIL_MAX_CLIENTS are still accepted, up to this many more, only to be
 * told TEMPFAIL (so their smtpd logs why); beyond that they are closed at once. */
#define ANVIL_MAX_REFUSING	64

/* One (service, address) pair with at least one registered connection. */
struct anvil_entry {
	struct anvil_entry *next;	/* hash chain */
	unsigned hash;
	int count;
	char service[ANVIL_SERVICE_MAX + 1];
	char rip[ANVIL_RIP_MAX + 1];
};

struct anvild {
	struct ev_loop *loop;
	struct ipc_allow allow;		/* CONNECT */
	struct ipc_server *srv;		/* at most ANVIL_MAX_CLIENTS counted connections,
					 * ANVIL_MAX_REFUSING more only to be refused */
	size_t nentries;		/* pairs in the table */
};

extern struct anvild AV;

/* table.c: the counts. add returns the pair's entry with its count raised by one (never
 * NULL: the table holds at most one entry per counted connection); drop lowers it and frees
 * the entry at zero. Both strings must have passed anvil_valid_*. */
struct anvil_entry *table_add(const char *service, const char *rip);
void table_drop(struct anvil_entry *e);
bool anvil_valid_service(const char *s);
bool anvil_valid_rip(const char *s);

/* conn.c: the requests on the client sockets. */
extern const struct ipc_server_ops conn_ops;

#endif
