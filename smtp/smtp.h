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
#include "stream.h"

#define SMTP_REPLY_MAX		1024		/* one reply, continuation lines joined */
#define SMTP_LINE_MAX		4096		/* one reply line as read */
#define SMTP_CMD_TIMEOUT_MS	300000		/* per command (RFC 5321 4.5.3.2, roughly) */
#define SMTP_DATA_TIMEOUT_MS	600000		/* the final reply after the dot */
#define SMTP_RSET_TIMEOUT_MS	20000		/* RSET on a cached connection (Postfix: 20s) */
#define SMTP_CLOSE_TIMEOUT_MS	2000		/* QUIT when a cached connection is let go */
#define SMTP_DEST_MAX		(DELIVER_NEXTHOP_MAX + MX_NAME_MAX + 8)
#define SMTP_MECHS_MAX		256		/* the AUTH mechanisms a server offers, as text */

enum smtp_tls_level { SMTP_TLS_NONE, SMTP_TLS_MAY, SMTP_TLS_ENCRYPT, SMTP_TLS_VERIFY };

struct smtp_agent {
	struct ev_loop *loop;		/* the pool's loop while a qmgr connection is served */
	struct ipc_allow allow;		/* root and queue_owner */
	const char *myhostname;
	const char *relayhost;		/* "" = deliver by MX */
	int connect_timeout_ms;		/* smtp_connect_timeout */
	int64_t cache_time_ms;		/* smtp_connection_cache_time; 0 = no reuse */
	enum smtp_tls_level tls_level;	/* smtp_tls_security_level */
	SSL_CTX *tls_ctx;		/* NULL when tls_level is none */
	bool sasl_tls_only;		/* smtp_sasl_tls_only */
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

/* One relayhost credential (sasl.c). */
struct sasl_cred {
	char *name;	/* "[host]:port" or "host", as in the file */
	char *user;
	char *pass;	/* never logged */
};

/* Where a request goes: what the connection cache matches and which credential applies. */
struct smtp_dest {
	char key[SMTP_DEST_MAX];	/* "via:<relayhost or nexthop>" or "mx:<domain>" */
	const char *via;		/* relayhost or nexthop as configured; "" = MX of domain */
	const struct sasl_cred *cred;	/* NULL: no AUTH */
};

/*
 * One SMTP connection. The session part (stream, host, extensions) outlives a transaction
 * when the connection is cached; the transaction part (r, fail, accepted) is per request.
 */
struct smtp_conn {
	struct stream *st;
	char host[MX_NAME_MAX];			/* for TLS SNI */
	char hostaddr[MX_NAME_MAX + 64];	/* "host[addr]" */
	char relay[DELIVER_RELAY_MAX];		/* "host[addr]:port" */
	char dest[SMTP_DEST_MAX];		/* smtp_dest.key this connection serves */
	bool tls;
	bool broken;		/* lost, timed out or cut mid-command: no QUIT, no reuse */
	bool ext_8bit, ext_size, ext_starttls, ext_utf8, ext_pipelining;
	bool ext_auth_plain, ext_auth_login;
	char auth_mechs[SMTP_MECHS_MAX];	/* "" when the server offers no AUTH */
	uint64_t max_size;			/* SIZE n; 0 = no limit given */
	int code;				/* the last reply */
	char reply[SMTP_REPLY_MAX];		/* "550 5.1.1 no such user" */
	/* the transaction in progress */
	struct deliver_request *r;
	struct smtp_failure *fail;
	bool accepted[DELIVER_MAX_RCPT];
	bool reusable;		/* the last transaction ended with 2xx after the dot */
};

/* client.c: one conversation with host (its name) at addr for destination d; recipients
 * get results. A connection left in a clean state may be kept for the next request. */
enum smtp_outcome client_deliver(struct deliver_request *r, const struct smtp_dest *d,
				 const char *host, const struct inet_addr *addr,
				 struct smtp_failure *fail);
/* The connection cached for d, if there is one and it still answers RSET: the transaction
 * on it. SMTP_NEXT when there was none (or it failed): go on with a fresh connection. */
enum smtp_outcome client_reuse(struct deliver_request *r, const struct smtp_dest *d,
			       struct smtp_failure *fail);
/* Let the cached connection go (QUIT), if there is one. */
void client_cache_close(void);

/* client.c: the wire, shared with mail.c and sasl.c. */
int conn_read_reply(struct smtp_conn *c, bool ehlo);	/* the code, or -1 (lost) */
int conn_command(struct smtp_conn *c, bool ehlo, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));		/* send, flush, read the reply */
int conn_queue(struct smtp_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));		/* write one line unflushed: 0/-1 */
void conn_quit(struct smtp_conn *c);
enum smtp_outcome conn_next_host(struct smtp_conn *c, int code, const char *dsn,
				 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
enum smtp_outcome conn_lost(struct smtp_conn *c, const char *while_);
void conn_reply_dsn(const struct smtp_conn *c, char *out, size_t outsize);
void conn_settle(struct smtp_conn *c, struct deliver_rcpt *rc, int code, const char *dsn,
		 const char *text);
void conn_settle_open(struct smtp_conn *c, bool only_accepted, int code, const char *dsn,
		      const char *text);
void conn_settle_said(struct smtp_conn *c, bool only_accepted, const char *cmd);

/* mail.c: one mail transaction (MAIL, RCPT..., DATA, the message), pipelined when the
 * server offers PIPELINING. Sets c->reusable when it ended cleanly. */
enum smtp_outcome mail_transaction(struct smtp_conn *c);

/* sasl.c: the password file (read as root, before the chroot) and AUTH (RFC 4954). */
void sasl_load(const char *path, bool dev_mode);
enum sasl_found { SASL_NONE, SASL_FOUND, SASL_UNUSABLE };
enum sasl_found sasl_lookup(const char *name, const struct sasl_cred **out);
const char *sasl_path(void);
/* After EHLO (and STARTTLS): authenticate with cred if the server offers AUTH. 0, or -1
 * with the outcome (a deferral 4.7.0) in *out. */
int sasl_authenticate(struct smtp_conn *c, const struct sasl_cred *cred,
		      enum smtp_outcome *out);

/* deliver.c: a whole request: destination, hosts in turn, results for everyone. */
void deliver_request(struct deliver_request *r);

/* log.c: smtp-specific log lines. */
void log_tls(const char *relay, SSL *ssl, bool verified);
void log_host_failed(const char *qid, const char *relay, const char *why);

#endif
