/*
 * smtpd.h: what the files of postern-smtpd share: the per-process configuration (role,
 * limits, TLS), the per-connection session and the mail transaction in progress.
 *
 * One binary, three roles (issue 4): "mx" (port 25), "submission" (587: STARTTLS, then
 * AUTH, then mail) and "smtps" (465: implicit TLS from the first byte, then as submission).
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "queuefile.h"
#include "server.h"
#include "smtpcmd.h"
#include "stream.h"
#include "tls.h"

enum smtpd_role { ROLE_MX, ROLE_SUBMISSION, ROLE_SMTPS };

#define SMTPD_MAX_NETS		64
#define SMTPD_ADDR_SIZE		(SMTP_LOCAL_MAX + 1 + SMTP_DOMAIN_MAX + 1)

/* One mynetworks entry: address family, network bytes and prefix length. */
struct smtpd_net {
	int family;
	unsigned char addr[16];
	int prefix;
};

struct smtpd_conf {
	enum smtpd_role role;
	struct tls_server *tls;		/* NULL: no STARTTLS (smtps cannot start without it) */
	const char *myhostname, *banner;
	uint64_t size_limit;
	size_t rcpt_limit;
	int timeout_ms;
	int hard_errors, soft_errors, error_sleep_ms;
	bool vrfy, tls_auth_only, auth_header, sender_check, smtputf8;
	size_t nnets;
	struct smtpd_net nets[SMTPD_MAX_NETS];
	long long conn_limit;		/* smtpd_client_connection_count_limit, 0 = none */
	/* private sockets, chroot-relative or not */
	char auth_path[512], queue_path[512], anvil_path[512];
	const char *log_name;		/* "smtpd", "submission/smtpd", "smtps/smtpd" */
};

/* Command counters for the "disconnect from" line, in Postfix's order. */
enum smtpd_counter {
	CNT_HELO, CNT_EHLO, CNT_STARTTLS, CNT_AUTH, CNT_MAIL, CNT_RCPT, CNT_DATA, CNT_BDAT,
	CNT_RSET, CNT_NOOP, CNT_VRFY, CNT_HELP, CNT_QUIT, CNT_UNKNOWN, CNT_MAX
};

struct smtpd_rcpt {
	char addr[SMTPD_ADDR_SIZE];
	char orcpt[QF_MAX_ORCPT + 1];
	unsigned notify;		/* QF_NOTIFY_* */
};

struct smtpd_txn {
	bool active;			/* MAIL accepted */
	char sender[SMTPD_ADDR_SIZE];	/* "" = null sender */
	struct smtp_mail_params mail;
	struct smtpd_rcpt *rcpt;
	size_t nrcpt, cap;
	bool bdat;			/* BDAT seen in this transaction */
	bool failed;			/* BDAT: a chunk was refused; the rest is discarded */
	char qid[QF_QID_SIZE];		/* "" until the queue gave us a file */
	int qfd;
	struct qf_writer *w;		/* open from the first data byte until the commit */
	struct smtpd_sink *sink;
};

struct session {
	const struct smtpd_conf *cf;
	struct server *srv;
	struct stream *s;
	char addr[64];			/* "127.0.0.1" */
	char name[64];			/* "unknown": no DNS inside the chroot */
	char namaddr[160];		/* "unknown[127.0.0.1]" */
	bool mynetworks;
	bool tls;
	char tls_desc[160];
	bool helo_seen, esmtp;
	char helo[SMTP_CMD_LINE_MAX];
	char auth_user[SMTPD_ADDR_SIZE];	/* "" = not authenticated */
	char auth_method[SMTP_MECH_MAX + 1];
	int errors;
	bool quit;			/* end the session after this reply */
	bool timed_out;			/* ... because the client was too slow */
	bool lost;			/* ... because the client went away */
	const char *where;		/* last command, for "lost connection after X" */
	uint64_t where_bytes;		/* DATA/BDAT bytes so far, for the same line */
	unsigned cnt_ok[CNT_MAX], cnt_all[CNT_MAX];
	int auth_sock, queue_sock;	/* -1 until first used */
	int anvil_sock;			/* open for the whole session once registered */
	uint32_t ipc_id;
	struct smtpd_txn txn;
};

/* reply.c: every reply goes through here (error counting, soft-limit delay). */
void reply(struct session *ss, int code, const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void reply_raw(struct session *ss, const char *line);	/* no CRLF in line */
int reply_flush(struct session *ss);
void reply_parse_error(struct session *ss, const struct smtp_reply *r);

/* session.c */
void session_serve(struct server *srv, const struct smtpd_conf *cf, int fd,
		   const struct sockaddr *peer);
void txn_reset(struct session *ss);

/* transaction.c: MAIL, RCPT, DATA, BDAT. */
void cmd_mail(struct session *ss, const struct smtp_cmd *c);
void cmd_rcpt(struct session *ss, const struct smtp_cmd *c);
void cmd_data(struct session *ss);
void cmd_bdat(struct session *ss, const struct smtp_cmd *c);

/* auth.c */
void cmd_auth(struct session *ss, const struct smtp_cmd *c);
bool auth_offered(const struct session *ss);

/* policy.c */
int policy_parse_networks(struct smtpd_conf *cf, const char *const *items, size_t n);
bool policy_in_networks(const struct smtpd_conf *cf, const struct sockaddr *sa);
/* authd calls: IPC_OK / IPC_PERMFAIL / IPC_TEMPFAIL; kind gets "virtual", "remote", ... */
int policy_rcpt_lookup(struct session *ss, const char *addr, char *kind, size_t kindlen);
int policy_sender_check(struct session *ss, const char *addr, char *reason, size_t rlen);
struct ipc_msg;
int authd_call(struct session *ss, const struct ipc_msg *req, struct ipc_msg *rep);

/* queue_client.c */
int queue_create(struct session *ss, char *qid, int *fd, char *reason, size_t rlen);
int queue_commit(struct session *ss, const char *qid, char *reason, size_t rlen);
void queue_abort(struct session *ss, const char *qid);

/* anvil_client.c: register the connection with postern-anvil; true if the client is over
 * smtpd_client_connection_count_limit (the warning is logged). Fails open. */
bool anvil_over_limit(struct session *ss);
void anvil_disconnect(struct session *ss);

/* received.c: the Received: header for the transaction in ss. */
int received_header(const struct session *ss, char *out, size_t outlen);

/* data.c: the message readers. Return values of data_read/bdat_read: */
enum data_result {
	DATA_OK,		/* ended properly; see sink for limits */
	DATA_BARE_NL,		/* bare CR or LF: refuse and disconnect (smuggling) */
	DATA_TOOLONG,		/* a line over SMTP_LINE_MAX: refuse and disconnect */
	DATA_EOF, DATA_TIMEOUT, DATA_ERR,
};
struct smtpd_sink {
	struct qf_writer *w;		/* NULL: discard */
	uint64_t bytes;			/* message bytes after dot-unstuffing */
	uint64_t limit;
	bool too_big, long_line, write_failed, bare_nl;
	int write_errno;
	/* line tracking on the unstuffed stream (header sniffing, line length) */
	bool in_headers;
	size_t linelen;
	char hline[160];		/* first bytes of the current header line */
	size_t hlen;
	char msgid[128];
	bool cr;			/* BDAT: previous byte was CR (across chunks) */
};
void sink_init(struct smtpd_sink *k, struct qf_writer *w, uint64_t limit);
int data_read(struct session *ss, struct smtpd_sink *k);
int bdat_read(struct session *ss, struct smtpd_sink *k, uint64_t size);

/* log.c: Postfix-format lines. */
void log_reject(const struct session *ss, const char *cmd, const char *replytext,
		const char *rcpt);
void log_disconnect(const struct session *ss);
void log_sasl_failure(const struct session *ss, const char *mech, const char *user);
void count_cmd(struct session *ss, enum smtpd_counter c, bool ok);

#endif
