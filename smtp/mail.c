/*
 * mail.c: one mail transaction on an established SMTP connection (RFC 5321 3.3): MAIL FROM
 * with SIZE=, BODY=8BITMIME and SMTPUTF8 as the message needs and the server offers, RCPT
 * TO per open recipient, DATA with the message dot-stuffed straight from the queue file.
 * Content the server cannot take is refused without downgrade: 8-bit to a server without
 * 8BITMIME bounces 5.6.3, SMTPUTF8 to one without it 5.6.7.
 *
 * When the server offers PIPELINING (RFC 2920) MAIL FROM, every RCPT TO and DATA go out in
 * one write and the replies are read in order; the results are the same as one command at a
 * time: per recipient for RCPT, for all accepted ones after DATA. A server that accepts
 * DATA although it refused every recipient (or MAIL FROM) gets an empty message ended at
 * once, as RFC 2920 3.1 asks.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queuefile.h"
#include "smtp.h"
#include "util.h"

#define BODY_CHUNK	65536
#define MAIL_LINE_MAX	(QF_MAX_ADDR + 128)	/* MAIL FROM:<...> and its parameters */

/* What the message needs that the server lacks: true with everybody settled. */
static bool content_refused(struct smtp_conn *c)
{
	const struct deliver_request *r = c->r;
	char text[DELIVER_TEXT_MAX];

	if (r->body == DELIVER_BODY_BINARYMIME || (r->body == DELIVER_BODY_8BITMIME &&
						   !c->ext_8bit)) {
		(void)str_fmt(text, sizeof(text), "host %s does not support %s and the message "
			       "content is 8-bit (no downgrade)", c->hostaddr,
			       r->body == DELIVER_BODY_BINARYMIME ? "BINARYMIME over BDAT" :
			       "8BITMIME");
		conn_settle_open(c, false, 554, "5.6.3", text);
	} else if (r->smtputf8 && !c->ext_utf8) {
		(void)str_fmt(text, sizeof(text), "host %s does not support SMTPUTF8, which the "
			       "message requires", c->hostaddr);
		conn_settle_open(c, false, 554, "5.6.7", text);
	} else if (c->ext_size && c->max_size > 0 && r->msg_len > c->max_size) {
		(void)str_fmt(text, sizeof(text), "message size %llu exceeds size limit %llu of "
			       "server %s", (unsigned long long)r->msg_len,
			       (unsigned long long)c->max_size, c->hostaddr);
		conn_settle_open(c, false, 552, "5.3.4", text);
	} else {
		return false;
	}
	return true;
}

/* "MAIL FROM:<sender> SIZE=n BODY=8BITMIME SMTPUTF8", as the message and server need. */
static void mail_from_line(const struct smtp_conn *c, char *out, size_t outsize)
{
	const struct deliver_request *r = c->r;
	char size[40] = "";

	if (c->ext_size)
		(void)str_fmt(size, sizeof(size), " SIZE=%llu", (unsigned long long)r->msg_len);
	(void)str_fmt(out, outsize, "MAIL FROM:<%s>%s%s%s", r->sender, size,
		      r->body == DELIVER_BODY_8BITMIME ? " BODY=8BITMIME" : "",
		      r->smtputf8 && c->ext_utf8 ? " SMTPUTF8" : "");
}

/* The reply to recipient i's RCPT TO: accepted (counted), or its result. */
static void rcpt_result(struct smtp_conn *c, size_t i, int *accepted)
{
	char text[DELIVER_TEXT_MAX], dsn[16];

	if (c->code / 100 == 2) {
		c->accepted[i] = true;
		(*accepted)++;
		return;
	}
	conn_reply_dsn(c, dsn, sizeof(dsn));
	(void)str_fmt(text, sizeof(text), "host %s said: %s (in reply to RCPT TO command)",
		       c->hostaddr, c->reply);
	conn_settle(c, &c->r->rcpt[i], c->code, dsn, text);
}

/* The message from the queue file, dot-stuffed, then the final dot. 0, -1 on a write
 * error (connection lost), -2 on a read error (the queue file). */
static int send_body(struct smtp_conn *c)
{
	static char chunk[BODY_CHUNK];
	const struct deliver_request *r = c->r;
	bool line_start = true;
	char last = '\n';

	for (uint64_t done = 0; done < r->msg_len;) {
		size_t want = r->msg_len - done < BODY_CHUNK ? (size_t)(r->msg_len - done) :
			      BODY_CHUNK;
		ssize_t n = pread(r->fd, chunk, want, r->msg_off + (off_t)done);
		size_t from = 0;

		if (n <= 0)
			return -2;
		for (size_t i = 0; i < (size_t)n; i++) {
			if (line_start && chunk[i] == '.') {
				if (stream_write(c->st, chunk + from, i - from) < 0 ||
				    stream_write(c->st, ".", 1) < 0)
					return -1;
				from = i;
			}
			line_start = chunk[i] == '\n';
		}
		if (stream_write(c->st, chunk + from, (size_t)n - from) < 0)
			return -1;
		last = chunk[n - 1];
		done += (uint64_t)n;
	}
	if (last != '\n' && stream_write(c->st, "\r\n", 2) < 0)
		return -1;
	return stream_puts(c->st, ".\r\n") < 0 || stream_flush(c->st) < 0 ? -1 : 0;
}

/* After 354: the message and the final reply, for the accepted recipients. */
static enum smtp_outcome message(struct smtp_conn *c)
{
	int rc = send_body(c);
	char dsn[16];

	if (rc == -2) {
		msg_warn("%s: cannot read the queue file: %m", c->r->qid);
		conn_settle_open(c, true, 451, "4.3.0", "cannot read the queue file; deferred");
		c->broken = true;	/* no final dot sent: the server discards the message */
		return SMTP_DONE;
	}
	stream_set_timeout(c->st, SMTP_DATA_TIMEOUT_MS);
	if (rc < 0 || conn_read_reply(c, false) < 0) {
		char text[DELIVER_TEXT_MAX];

		c->broken = true;
		(void)str_fmt(text, sizeof(text), "lost connection with %s while sending "
			       "end of data -- message may be sent more than once", c->hostaddr);
		conn_settle_open(c, true, 451, "4.4.2", text);
		return SMTP_DONE;
	}
	stream_set_timeout(c->st, SMTP_CMD_TIMEOUT_MS);
	if (c->code / 100 == 2) {
		conn_reply_dsn(c, dsn, sizeof(dsn));
		conn_settle_open(c, true, c->code, dsn, c->reply);
		c->reusable = true;
	} else {
		conn_settle_said(c, true, "end of DATA command");
	}
	return SMTP_DONE;
}

/* The reply to DATA has been read; accepted recipients are waiting for it. */
static enum smtp_outcome data_reply(struct smtp_conn *c, int accepted)
{
	if (c->code != 354) {
		if (accepted > 0)
			conn_settle_said(c, true, "DATA command");
		return SMTP_DONE;
	}
	if (accepted == 0) {	/* DATA taken without recipients: end the empty message */
		(void)conn_command(c, false, ".");
		return SMTP_DONE;
	}
	return message(c);
}

/* Without PIPELINING: each command waits for its reply. */
static enum smtp_outcome one_by_one(struct smtp_conn *c)
{
	char mail[MAIL_LINE_MAX];
	int accepted = 0;

	mail_from_line(c, mail, sizeof(mail));
	if (conn_command(c, false, "%s", mail) < 0)
		return conn_lost(c, "sending MAIL FROM");
	if (c->code / 100 != 2) {
		conn_settle_said(c, false, "MAIL FROM command");
		return SMTP_DONE;
	}
	for (size_t i = 0; i < c->r->nrcpt; i++) {
		if (c->r->rcpt[i].code != 0)
			continue;
		if (conn_command(c, false, "RCPT TO:<%s>", c->r->rcpt[i].rcpt) < 0)
			return conn_lost(c, "sending RCPT TO");
		rcpt_result(c, i, &accepted);
	}
	if (accepted == 0)
		return SMTP_DONE;
	if (conn_command(c, false, "DATA") < 0)
		return conn_lost(c, "sending DATA command");
	return data_reply(c, accepted);
}

/* With PIPELINING: MAIL, RCPT..., DATA in one write, then the replies in order. */
static enum smtp_outcome pipelined(struct smtp_conn *c)
{
	size_t sent[DELIVER_MAX_RCPT], n = 0;
	char mail[MAIL_LINE_MAX];
	int accepted = 0;
	bool mail_ok;

	mail_from_line(c, mail, sizeof(mail));
	if (conn_queue(c, "%s", mail) < 0)
		return conn_lost(c, "sending MAIL FROM");
	for (size_t i = 0; i < c->r->nrcpt; i++) {
		if (c->r->rcpt[i].code != 0)
			continue;
		if (conn_queue(c, "RCPT TO:<%s>", c->r->rcpt[i].rcpt) < 0)
			return conn_lost(c, "sending RCPT TO");
		sent[n++] = i;
	}
	if (conn_queue(c, "DATA") < 0 || stream_flush(c->st) < 0) {
		c->broken = true;
		return conn_lost(c, "sending MAIL FROM");
	}
	if (conn_read_reply(c, false) < 0)
		return conn_lost(c, "sending MAIL FROM");
	mail_ok = c->code / 100 == 2;
	if (!mail_ok)
		conn_settle_said(c, false, "MAIL FROM command");
	for (size_t k = 0; k < n; k++) {
		if (conn_read_reply(c, false) < 0)
			return mail_ok ? conn_lost(c, "sending RCPT TO") : SMTP_DONE;
		if (mail_ok)
			rcpt_result(c, sent[k], &accepted);
	}
	if (conn_read_reply(c, false) < 0)
		return accepted > 0 ? conn_lost(c, "sending DATA command") : SMTP_DONE;
	return data_reply(c, accepted);
}

enum smtp_outcome mail_transaction(struct smtp_conn *c)
{
	memset(c->accepted, 0, sizeof(c->accepted));
	c->reusable = false;
	if (content_refused(c))
		return SMTP_DONE;
	return c->ext_pipelining ? pipelined(c) : one_by_one(c);
}
