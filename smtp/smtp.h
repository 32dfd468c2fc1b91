/*
 * smtp.h: the state shared by the files of postern-smtp, the outbound SMTP delivery agent
 * (issue 5, lib/deliverproto.h, lib/deliverreq.h).
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "deliverreq.h"
#include "event.h"
#include "inet.h"
#include "ipc.h"
#include "ipcserver.h"
#include "mxlookup.h"

#define SMTP_MAX_CLIENTS	64		/* qmgr connections (and root's) at once */
#define SMTP_REPLY_MAX		1024		/* one reply, continuation lines joined */
#define SMTP_LINE_MAX		4096		/* one reply line as read */
#define SMTP_CMD_TIMEOUT_MS	300000		/* per command (RFC 5321 4.5.3.2, roughly) */
#define SMTP_DATA_TIMEOUT_MS	600000		/* the final reply after the dot */

enum smtp_tls_level { SMTP_TLS_NONE, SMTP_TLS_MAY, SMTP_TLS_ENCRYPT, SMTP_TLS_VERIFY };

struct smtp_agent {
	struct ev_loop *loop;
	struct ipc_server *srv;
	struct ipc_allow allow;		/* root and queue_owner */
	const char *myhostname;
	const char *relayhost;		/* "" = deliver by MX */
	int connect_timeout_ms;		/* smtp_connect_timeout */
	enum smtp_tls_level tls_level;	/* smtp_tls_security_level */
	SSL_CTX *tls_ctx;		/* NULL when tls_level is none */
};

extern struct smtp_agent S;

/* How one conversation with one address ended. */
enum smtp_outcome {
	SMTP_DONE,	/* every recipient has its result */
	SMTP_NEXT,	/* this host could not take the message now: try the next one; the
			 * failure (code, dsn, text) says what to report if none can */
};

/* The failure that applies when no host is left to try. */
struct smtp_failure {
	int code;
	char dsn[16];
	char text[DELIVER_TEXT_MAX];
	char relay[DELIVER_RELAY_MAX];	/* the host that failed last; "none" before any */
};

/* client.c: one conversation with host (its name) at addr; recipients get results. */
enum smtp_outcome client_deliver(struct deliver_request *r, const char *host,
				 const struct inet_addr *addr, struct smtp_failure *fail);

/* deliver.c: a whole request: destination, hosts in turn, results for everyone. */
void deliver_request(struct deliver_request *r);

/* log.c: smtp-specific log lines. */
void log_tls(const char *relay, SSL *ssl, bool verified);
void log_host_failed(const char *qid, const char *relay, const char *why);

#endif
