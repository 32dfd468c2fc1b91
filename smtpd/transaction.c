/*
 * transaction.c: the mail transaction: MAIL (sender, SIZE, DSN, the submission rules), RCPT
 * (recipient restrictions: permit_mynetworks, permit_sasl_authenticated,
 * reject_unauth_destination, with unknown local recipients refused at RCPT time so Postern
 * never sends backscatter), DATA and BDAT (the queue file is written through the descriptor
 * the queue daemon gave us, and "250 ... queued as" is said only after its durable COMMIT).
 *
 * The queue file is created at the first accepted recipient, as Postfix opens its queue
 * file then (the "QID: client=..." log line comes from that moment).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

#define RECEIVED_MAX 2048

void txn_reset(struct session *ss)
{
	struct smtpd_txn *t = &ss->txn;

	if (t->w)
		qf_writer_abort(t->w);
	if (t->qid[0])
		queue_abort(ss, t->qid);
	if (t->qfd >= 0)
		(void)close(t->qfd);
	free(t->rcpt);
	free(t->sink);
	memset(t, 0, sizeof(*t));
	t->qfd = -1;
}

/* ---- MAIL ------------------------------------------------------------------------------- */

static bool submission(const struct session *ss)
{
	return ss->cf->role != ROLE_MX;
}

/* The sender restrictions; false after replying. */
static bool sender_allowed(struct session *ss, const struct smtp_cmd *c)
{
	char reason[256], text[600];
	int st;

	if (!submission(ss) || !ss->cf->sender_check || c->path.null_path)
		return true;
	st = policy_sender_check(ss, c->path.addr, reason, sizeof(reason));
	if (st == IPC_OK)
		return true;
	if (st == IPC_PERMFAIL)
		(void)str_fmt(text, sizeof(text), "553 5.7.1 <%s>: Sender address rejected: "
			      "not owned by user %s", c->path.addr, ss->auth_user);
	else
		(void)str_fmt(text, sizeof(text), "451 4.3.0 <%s>: Temporary lookup failure",
			      c->path.addr);
	log_reject(ss, "MAIL", text, NULL);
	reply(ss, st == IPC_PERMFAIL ? 553 : 451, st == IPC_PERMFAIL ? "5.7.1" : "4.3.0", "%s",
	      text + 10);
	return false;
}

static bool mail_allowed(struct session *ss, const struct smtp_cmd *c)
{
	if (!ss->helo_seen) {
		reply(ss, 503, "5.5.1", "Error: send HELO/EHLO first");
	} else if (submission(ss) && !ss->tls) {
		reply(ss, 530, "5.7.0", "Must issue a STARTTLS command first");
	} else if (submission(ss) && !ss->auth_user[0]) {
		reply(ss, 530, "5.7.0", "Authentication required");
	} else if (ss->txn.active) {
		reply(ss, 503, "5.5.1", "Error: nested MAIL command");
	} else if (c->mail.smtputf8 && !ss->cf->smtputf8) {
		reply(ss, 555, "5.5.4", "Unsupported option: SMTPUTF8");
	} else if (c->mail.body == SMTP_BODY_BINARYMIME) {
		reply(ss, 555, "5.5.4", "Unsupported option: BODY=BINARYMIME");
	} else if (c->mail.has_size && c->mail.size > ss->cf->size_limit) {
		log_reject(ss, "MAIL", "552 5.3.4 Message size exceeds fixed limit", NULL);
		reply(ss, 552, "5.3.4", "Message size exceeds fixed limit");
	} else {
		return sender_allowed(ss, c);
	}
	return false;
}

void cmd_mail(struct session *ss, const struct smtp_cmd *c)
{
	bool ok;

	(void)str_copy(ss->txn.sender, sizeof(ss->txn.sender), c->path.addr);
	ok = mail_allowed(ss, c);
	count_cmd(ss, CNT_MAIL, ok);
	if (!ok) {
		ss->txn.sender[0] = '\0';
		return;
	}
	ss->txn.active = true;
	ss->txn.mail = c->mail;		/* AUTH= is kept but never trusted */
	reply(ss, 250, "2.1.0", "Ok");
}

/* ---- RCPT ------------------------------------------------------------------------------- */

static void rcpt_reject(struct session *ss, const char *addr, int code, const char *enh,
			const char *what)
{
	char text[700];

	(void)str_fmt(text, sizeof(text), "%d %s <%s>: %s", code, enh, addr, what);
	log_reject(ss, "RCPT", text, addr);
	reply(ss, code, enh, "<%s>: %s", addr, what);
}

/* Decide about one recipient: true if accepted (nothing replied yet). */
static bool rcpt_allowed(struct session *ss, const struct smtp_cmd *c, const char *addr)
{
	const struct smtp_path *p = &c->path;
	char kind[32] = "remote";
	int st = IPC_OK;

	if (p->postmaster)
		return true;	/* RFC 5321 4.5.1: <Postmaster> is always accepted */
	/* %-hack, bang paths and address literals are never routed as ours: they count as
	 * remote, so only mynetworks or an authenticated client may send to them. */
	if (!p->has_percent && !p->has_bang && !p->domain_literal)
		st = policy_rcpt_lookup(ss, addr, kind, sizeof(kind));
	if (st == IPC_PERMFAIL) {
		rcpt_reject(ss, addr, 550, "5.1.1", "Recipient address rejected: "
			    "User unknown in virtual mailbox table");
		return false;
	}
	if (st != IPC_OK) {
		rcpt_reject(ss, addr, 451, "4.3.0", "Temporary lookup failure");
		return false;
	}
	if (strcmp(kind, "remote") == 0 && !ss->mynetworks && !ss->auth_user[0]) {
		rcpt_reject(ss, addr, 554, "5.7.1", "Relay access denied");
		return false;
	}
	return true;
}

static bool queue_file_ready(struct session *ss)
{
	char reason[256];
	int st;

	if (ss->txn.qid[0])
		return true;
	st = queue_create(ss, ss->txn.qid, &ss->txn.qfd, reason, sizeof(reason));
	if (st != IPC_OK) {
		ss->txn.qid[0] = '\0';
		msg_warn("queue file create: %s", reason);
		reply(ss, 451, "4.3.0", "Error: queue file write error");
		return false;
	}
	if (ss->auth_user[0])
		msg_info("%s: client=%s, sasl_method=%s, sasl_username=%s", ss->txn.qid,
			 ss->namaddr, ss->auth_method, ss->auth_user);
	else
		msg_info("%s: client=%s", ss->txn.qid, ss->namaddr);
	return true;
}

static unsigned qf_notify(unsigned n)
{
	return (n & SMTP_NOTIFY_NEVER ? QF_NOTIFY_NEVER : 0) |
	       (n & SMTP_NOTIFY_SUCCESS ? QF_NOTIFY_SUCCESS : 0) |
	       (n & SMTP_NOTIFY_FAILURE ? QF_NOTIFY_FAILURE : 0) |
	       (n & SMTP_NOTIFY_DELAY ? QF_NOTIFY_DELAY : 0);
}

static void rcpt_add(struct smtpd_txn *t, const struct smtp_cmd *c, const char *addr)
{
	struct smtpd_rcpt *r;

	if (t->nrcpt == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 8;
		t->rcpt = xreallocarray(t->rcpt, t->cap, sizeof(*t->rcpt));
	}
	r = &t->rcpt[t->nrcpt++];
	memset(r, 0, sizeof(*r));
	(void)str_copy(r->addr, sizeof(r->addr), addr);
	r->notify = qf_notify(c->rcpt.notify);
	/* ORCPT as RFC 3461 writes it ("rfc822;addr"); dropped if it does not fit. */
	if (c->rcpt.has_orcpt && str_fmt(r->orcpt, sizeof(r->orcpt), "%s;%s", c->rcpt.orcpt_type,
					 c->rcpt.orcpt) < 0)
		r->orcpt[0] = '\0';
}

void cmd_rcpt(struct session *ss, const struct smtp_cmd *c)
{
	char addr[SMTPD_ADDR_SIZE];
	struct smtp_reply r;
	bool ok = false;

	if (c->path.postmaster)
		(void)str_fmt(addr, sizeof(addr), "postmaster@%s", ss->cf->myhostname);
	else
		(void)str_copy(addr, sizeof(addr), c->path.addr);
	if (!ss->txn.active) {
		reply(ss, 503, "5.5.1", "Error: need MAIL command");
	} else if (ss->txn.nrcpt >= ss->cf->rcpt_limit || ss->txn.nrcpt >= QF_MAX_RCPTS) {
		reply(ss, 452, "4.5.3", "Error: too many recipients");
	} else if (c->path.utf8 && !ss->txn.mail.smtputf8) {
		smtp_reply_utf8(&r, true);
		reply_parse_error(ss, &r);
	} else if (rcpt_allowed(ss, c, addr) && queue_file_ready(ss)) {
		rcpt_add(&ss->txn, c, addr);
		reply(ss, 250, "2.1.5", "Ok");
		ok = true;
	}
	count_cmd(ss, CNT_RCPT, ok);
}

/* ---- the message ------------------------------------------------------------------------ */

static void fill_envelope(struct session *ss, struct qf_envelope *env, struct qf_rcpt *rc)
{
	struct smtpd_txn *t = &ss->txn;

	memset(env, 0, sizeof(*env));
	(void)str_copy(env->qid, sizeof(env->qid), t->qid);
	env->arrival_ms = wall_ms();
	env->sender = t->sender;
	env->client_addr = ss->addr;
	env->client_name = ss->name;
	env->helo = ss->helo;
	env->auth_user = ss->auth_user[0] ? ss->auth_user : NULL;
	env->size = t->mail.has_size ? t->mail.size : 0;
	env->body = t->mail.body == SMTP_BODY_8BITMIME ? QF_BODY_8BITMIME : QF_BODY_7BIT;
	env->flags = t->mail.smtputf8 ? QF_F_SMTPUTF8 : 0;
	env->ret = t->mail.ret == SMTP_RET_FULL ? QF_RET_FULL :
		   t->mail.ret == SMTP_RET_HDRS ? QF_RET_HDRS : QF_RET_NONE;
	env->envid = t->mail.has_envid ? t->mail.envid : NULL;
	for (size_t i = 0; i < t->nrcpt; i++) {
		rc[i] = (struct qf_rcpt){ .addr = t->rcpt[i].addr, .orcpt = t->rcpt[i].orcpt,
					  .notify = t->rcpt[i].notify };
	}
	env->rcpt = rc;
	env->nrcpt = t->nrcpt;
}

/* Envelope and Received: header into the queue file; a sink ready for the message. */
static bool message_begin(struct session *ss)
{
	struct smtpd_txn *t = &ss->txn;
	struct qf_envelope env;
	struct qf_rcpt *rc = xcalloc(t->nrcpt, sizeof(*rc));
	char err[256], received[RECEIVED_MAX];

	fill_envelope(ss, &env, rc);
	t->w = qf_writer_begin(t->qfd, &env, err, sizeof(err));
	free(rc);
	if (t->w == NULL || received_header(ss, received, sizeof(received)) < 0 ||
	    qf_writer_body(t->w, received, strlen(received)) < 0) {
		msg_warn("%s: queue file write: %s", t->qid, t->w ? strerror(errno) : err);
		reply(ss, 451, "4.3.0", "Error: queue file write error");
		txn_reset(ss);
		return false;
	}
	t->sink = xmalloc(sizeof(*t->sink));
	sink_init(t->sink, t->w, ss->cf->size_limit);
	return true;
}

static void write_error_reply(struct session *ss, int err)
{
	if (err == ENOSPC || err == EDQUOT)
		reply(ss, 452, "4.3.1", "Insufficient system storage");
	else
		reply(ss, 451, "4.3.0", "Error: queue file write error");
}

/* The end of the message: refuse, or end the file, commit and say 250. */
static bool message_finish(struct session *ss)
{
	struct smtpd_txn *t = &ss->txn;
	struct smtpd_sink *k = t->sink;
	char reason[256];
	int st;

	if (k->bare_nl) {
		log_reject(ss, "END-OF-MESSAGE", "550 5.5.2 Error: bare <CR> or <LF> received", NULL);
		reply(ss, 550, "5.5.2", "Error: bare <CR> or <LF> received");
	} else if (k->too_big) {
		log_reject(ss, "END-OF-MESSAGE", "552 5.3.4 Message size exceeds fixed limit", NULL);
		reply(ss, 552, "5.3.4", "Message size exceeds fixed limit");
	} else if (k->long_line) {
		log_reject(ss, "END-OF-MESSAGE", "500 5.5.2 Error: message line too long", NULL);
		reply(ss, 500, "5.5.2", "Error: message line longer than 998 characters");
	} else if (k->write_failed) {
		msg_warn("%s: queue file write: %s", t->qid, strerror(k->write_errno));
		write_error_reply(ss, k->write_errno);
	} else if (qf_writer_end(t->w) < 0) {
		t->w = NULL;	/* end freed it */
		msg_warn("%s: queue file write: %m", t->qid);
		write_error_reply(ss, errno);
	} else {
		t->w = NULL;
		st = queue_commit(ss, t->qid, reason, sizeof(reason));
		if (st == IPC_OK) {
			if (k->msgid[0])
				msg_info("%s: message-id=%s", t->qid, k->msgid);
			reply(ss, 250, "2.0.0", "Ok: queued as %s", t->qid);
			t->qid[0] = '\0';	/* committed: nothing to abort */
			txn_reset(ss);
			return true;
		}
		msg_warn("%s: queue commit failed: %s", t->qid, reason);
		if (strstr(reason, "space") || strstr(reason, "full") || strstr(reason, "minfree"))
			reply(ss, 452, "4.3.1", "Insufficient system storage");
		else
			reply(ss, 451, "4.3.0", "Error: queue file write error");
	}
	txn_reset(ss);
	return false;
}

/* A read that ended without a proper end of data: refuse and/or end the session. */
static void data_broken(struct session *ss, int r)
{
	if (r == DATA_BARE_NL || r == DATA_TOOLONG) {
		const char *what = r == DATA_BARE_NL ? "bare <LF> received" : "line too long";
		char text[300];

		(void)str_fmt(text, sizeof(text), "521 5.5.2 %s Error: %s", ss->cf->myhostname, what);
		log_reject(ss, "DATA", text, NULL);
		reply(ss, 521, "5.5.2", "%s Error: %s", ss->cf->myhostname, what);
	}
	if (r == DATA_TIMEOUT)
		ss->timed_out = true;
	if (r == DATA_EOF || r == DATA_ERR)
		ss->lost = true;
	txn_reset(ss);
	ss->quit = true;
}

void cmd_data(struct session *ss)
{
	int r;

	if (!ss->txn.active) {
		reply(ss, 503, "5.5.1", "Error: need RCPT command");
	} else if (ss->txn.nrcpt == 0) {
		reply(ss, 554, "5.5.1", "Error: no valid recipients");
	} else if (ss->txn.bdat) {
		reply(ss, 503, "5.5.1", "Error: DATA after BDAT");
	} else if (message_begin(ss)) {
		/* No enhanced code on 3xx (RFC 3463 applies to 2xx, 4xx and 5xx). */
		reply_raw(ss, "354 End data with <CR><LF>.<CR><LF>");
		if (reply_flush(ss) < 0) {
			data_broken(ss, DATA_ERR);
		} else {
			ss->where = "DATA";
			ss->where_bytes = 0;
			r = data_read(ss, ss->txn.sink);
			if (r == DATA_OK) {
				count_cmd(ss, CNT_DATA, message_finish(ss));
				return;
			}
			data_broken(ss, r);
		}
	}
	count_cmd(ss, CNT_DATA, false);
}

/* Read and throw away a chunk nobody wants; false if the session is over. */
static bool bdat_discard(struct session *ss, uint64_t size)
{
	struct smtpd_sink k;
	int r;

	sink_init(&k, NULL, UINT64_MAX);
	r = bdat_read(ss, &k, size);
	if (r != DATA_OK)
		data_broken(ss, r);
	return r == DATA_OK;
}

static bool bdat_chunk(struct session *ss, const struct smtp_cmd *c)
{
	struct smtpd_sink *k;
	int r;

	if (!ss->txn.bdat) {
		ss->txn.bdat = true;
		if (!message_begin(ss)) {	/* replied; the chunk is still on its way */
			(void)bdat_discard(ss, c->bdat_size);
			return false;
		}
	}
	k = ss->txn.sink;
	ss->where = "BDAT";
	r = bdat_read(ss, k, c->bdat_size);
	if (r != DATA_OK) {
		data_broken(ss, r);
		return false;
	}
	if (c->bdat_last || k->bare_nl || k->too_big || k->long_line || k->write_failed)
		return message_finish(ss);	/* a refused chunk ends the transaction */
	reply(ss, 250, "2.0.0", "Ok: %llu bytes", (unsigned long long)c->bdat_size);
	return true;
}

void cmd_bdat(struct session *ss, const struct smtp_cmd *c)
{
	bool ok = false;

	if (!ss->txn.active || ss->txn.nrcpt == 0) {
		if (bdat_discard(ss, c->bdat_size)) {
			if (!ss->txn.active)
				reply(ss, 503, "5.5.1", "Error: need MAIL command");
			else
				reply(ss, 554, "5.5.1", "Error: no valid recipients");
		}
	} else {
		ok = bdat_chunk(ss, c);
	}
	count_cmd(ss, CNT_BDAT, ok);
}
