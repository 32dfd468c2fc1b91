/*
 * smtp.c: sendmail -bs, SMTP on standard input and output for programs that prefer to
 * talk SMTP to a local command. Commands go through lib/smtpcmd.c, smtpd's own parser, so
 * the syntax accepted is smtpd's; lines may end in LF or CRLF. Each DATA becomes one
 * queue file in maildrop/ (maildrop.c) with the same header additions as -bm, and the
 * reply says "queued as" its maildrop name only after it is there. MAIL FROM sets the
 * envelope sender as given (the uid that wrote the file is what pickup records).
 *
 * Supported: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP, with SIZE, 8BITMIME, SMTPUTF8,
 * DSN (RET, ENVID, NOTIFY, ORCPT) and PIPELINING. Not: VRFY, BDAT, STARTTLS, AUTH.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail.h"
#include "address.h"
#include "smtpcmd.h"
#include "util.h"

struct txn {
	bool active;
	char *sender;
	struct smtp_mail_params mail;
	struct sm_rcpts rcpts;
	char **orcpt;		/* parallel to rcpts.addr, NULL entries for none */
	unsigned *notify;
	size_t cap;
};

__attribute__((format(printf, 3, 4)))
static void reply(int code, const char *enh, const char *fmt, ...)
{
	char text[512], line[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	va_end(ap);
	n = enh[0] ? snprintf(line, sizeof(line), "%d %s %s\r\n", code, enh, text)
		   : snprintf(line, sizeof(line), "%d %s\r\n", code, text);
	if (n < 0 || write_all(1, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		exit(EX_IOERR);		/* the client is gone */
}

static void reply_raw(const char *text)
{
	if (write_all(1, text, strlen(text)) < 0)
		exit(EX_IOERR);
}

static void txn_reset(struct txn *t)
{
	for (size_t i = 0; i < t->rcpts.n; i++)
		free(t->orcpt[i]);
	rcpts_free(&t->rcpts);
	free(t->orcpt);
	free(t->notify);
	free(t->sender);
	memset(t, 0, sizeof(*t));
}

static unsigned qf_notify(unsigned n)
{
	return (n & SMTP_NOTIFY_NEVER ? QF_NOTIFY_NEVER : 0) |
	       (n & SMTP_NOTIFY_SUCCESS ? QF_NOTIFY_SUCCESS : 0) |
	       (n & SMTP_NOTIFY_FAILURE ? QF_NOTIFY_FAILURE : 0) |
	       (n & SMTP_NOTIFY_DELAY ? QF_NOTIFY_DELAY : 0);
}

static void cmd_ehlo(const struct sendmail *sm, bool esmtp)
{
	char text[512];

	if (!esmtp) {
		reply(250, "2.0.0", "%s", sm->myhostname);
		return;
	}
	if (str_fmt(text, sizeof(text), "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n"
		    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n",
		    sm->myhostname, (unsigned long long)sm->size_limit) < 0)
		exit(EX_SOFTWARE);
	reply_raw(text);
}

static void cmd_mail(const struct sendmail *sm, struct txn *t, const struct smtp_cmd *c)
{
	char addr[ADDR_MAX + 1] = "";

	if (t->active)
		reply(503, "5.5.1", "Error: nested MAIL command");
	else if (c->mail.has_size && c->mail.size > sm->size_limit)
		reply(552, "5.3.4", "Message size exceeds fixed limit");
	else if (c->mail.body == SMTP_BODY_BINARYMIME)
		reply(555, "5.5.4", "Unsupported option: BODY=BINARYMIME");
	else if (!c->path.null_path && addr_canon(sm, c->path.addr, addr, sizeof(addr)) < 0)
		reply(553, "5.1.7", "Error: bad sender address syntax");
	else {
		t->active = true;
		t->sender = xstrdup(addr);
		t->mail = c->mail;
		reply(250, "2.1.0", "Ok");
	}
}

static void cmd_rcpt(const struct sendmail *sm, struct txn *t, const struct smtp_cmd *c)
{
	char addr[ADDR_MAX + 1], orcpt[QF_MAX_ORCPT + 1];
	struct smtp_reply r;
	size_t before = t->rcpts.n;

	if (!t->active) {
		reply(503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (c->path.utf8 && !t->mail.smtputf8) {
		smtp_reply_utf8(&r, true);
		reply(r.code, r.enh, "%s", r.text);
		return;
	}
	if (addr_canon(sm, c->path.postmaster ? "postmaster" : c->path.addr, addr,
		       sizeof(addr)) < 0) {
		reply(553, "5.1.3", "Error: bad recipient address syntax");
		return;
	}
	if (rcpts_add(&t->rcpts, addr) < 0) {
		reply(452, "4.5.3", "Error: too many recipients");
		return;
	}
	if (t->rcpts.n > before) {
		if (t->rcpts.n > t->cap) {
			t->cap = t->rcpts.cap;
			t->orcpt = xreallocarray(t->orcpt, t->cap, sizeof(*t->orcpt));
			t->notify = xreallocarray(t->notify, t->cap, sizeof(*t->notify));
		}
		t->orcpt[before] = c->rcpt.has_orcpt &&
			str_fmt(orcpt, sizeof(orcpt), "%s;%s", c->rcpt.orcpt_type,
				c->rcpt.orcpt) == 0 ? xstrdup(orcpt) : NULL;
		t->notify[before] = qf_notify(c->rcpt.notify);
	}
	reply(250, "2.1.5", "Ok");
}

/* The message after DATA's 354, dot-unstuffed, up to the lone "."; -1 if input ends first.
 * A message over the limit is read to its end and dropped (*too_big). */
static int read_data(struct sm_message *m, bool *too_big)
{
	struct buf *in = &m->input;

	for (;;) {
		size_t start = in->len, n;
		int r = input_line(in);

		if (r < 0 && errno == EMSGSIZE) {
			*too_big = true;
			buf_reset(in);
			input_skip_line();
			continue;
		}
		if (r <= 0 || r == 2)
			return -1;
		n = in->len - start;
		if (n > 0 && in->data[in->len - 1] == '\r')
			in->len--, n--;
		if (n == 1 && in->data[start] == '.') {
			in->len = start;
			return 0;
		}
		if (n > 0 && in->data[start] == '.') {
			memmove(in->data + start, in->data + start + 1, n - 1);
			in->len--;
		}
		if (buf_append(in, "\r\n", 2) < 0) {
			*too_big = true;
			buf_reset(in);
		}
	}
}

static void queue_message(struct sendmail *sm, struct txn *t, struct sm_message *m)
{
	struct sm_envelope env;
	char name[QF_QID_SIZE], err[512];

	(void)message_prepare(sm, m, t->sender, false, NULL, NULL, 0);
	if (m->size > sm->size_limit) {
		reply(552, "5.3.4", "Error: message too large (the limit is %llu bytes)",
		      (unsigned long long)sm->size_limit);
		return;
	}
	env = (struct sm_envelope){
		.sender = t->sender, .rcpts = &t->rcpts, .orcpt = t->orcpt,
		.rcpt_notify = t->notify,
		.ret = t->mail.ret == SMTP_RET_FULL ? QF_RET_FULL :
		       t->mail.ret == SMTP_RET_HDRS ? QF_RET_HDRS : QF_RET_NONE,
		.envid = t->mail.has_envid ? t->mail.envid : NULL,
		.eightbit = m->eightbit || t->mail.body == SMTP_BODY_8BITMIME,
		.smtputf8 = t->mail.smtputf8,
	};
	if (maildrop_write(sm, &env, m, name, sizeof(name), err, sizeof(err)) < 0) {
		sm_warn(sm, "cannot queue the message: %s", err);
		reply(451, "4.3.0", "Error: cannot queue the message: %s", err);
		return;
	}
	if (sm->verbose)
		sm_warn(sm, "queued as maildrop/%s: from=<%s>, nrcpt=%zu", name, t->sender,
			t->rcpts.n);
	reply(250, "2.0.0", "Ok: queued as %s", name);
}

/* DATA; false when the input ended inside it. */
static bool cmd_data(struct sendmail *sm, struct txn *t)
{
	struct sm_message m;
	bool too_big = false;

	if (!t->active) {
		reply(503, "5.5.1", "Error: need RCPT command");
		return true;
	}
	if (t->rcpts.n == 0) {
		reply(554, "5.5.1", "Error: no valid recipients");
		return true;
	}
	reply(354, "", "End data with <CR><LF>.<CR><LF>");
	message_init(&m, sm->size_limit);
	if (read_data(&m, &too_big) < 0) {
		message_free(&m);
		return false;
	}
	if (too_big)
		reply(552, "5.3.4", "Error: message too large (the limit is %llu bytes)",
		      (unsigned long long)sm->size_limit);
	else
		queue_message(sm, t, &m);
	message_free(&m);
	txn_reset(t);
	return true;
}

/* One command line; false to end the session. */
static bool command(struct sendmail *sm, struct txn *t, struct smtp_cmd *c, struct buf *line)
{
	char text[600];

	if (smtp_parse_command(line->data, line->len, c, NULL, 0) != 0) {
		if (smtp_reply_format(&c->reply, text, sizeof(text)) < 0)
			str_copy(text, sizeof(text), "500 5.5.2 Error: bad syntax");
		reply_raw(text);
		reply_raw("\r\n");
		return true;
	}
	switch (c->verb) {
	case SMTP_EHLO: cmd_ehlo(sm, true); break;
	case SMTP_HELO: cmd_ehlo(sm, false); break;
	case SMTP_MAIL: cmd_mail(sm, t, c); break;
	case SMTP_RCPT: cmd_rcpt(sm, t, c); break;
	case SMTP_DATA: return cmd_data(sm, t);
	case SMTP_RSET: txn_reset(t); reply(250, "2.0.0", "Ok"); break;
	case SMTP_NOOP: reply(250, "2.0.0", "Ok"); break;
	case SMTP_HELP:
		reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT");
		break;
	case SMTP_QUIT: reply(221, "2.0.0", "Bye"); return false;
	default: reply(502, "5.5.1", "Error: command not implemented"); break;
	}
	return true;
}

int smtp_session(struct sendmail *sm)
{
	struct smtp_cmd *c = xmalloc(sizeof(*c));
	struct txn t = { 0 };
	struct buf line;
	int rc = EX_OK;

	buf_init(&line, SMTP_LINE_MAX);
	reply(220, "", "%s ESMTP Postern (sendmail -bs)", sm->myhostname);
	for (;;) {
		int r;

		buf_reset(&line);
		r = input_line(&line);
		if (r < 0 && errno == EMSGSIZE) {
			input_skip_line();
			reply(500, "5.5.2", "Error: line too long");
			continue;
		}
		if (r <= 0)
			break;		/* end of input: like QUIT without the reply */
		if (line.len > 0 && line.data[line.len - 1] == '\r')
			line.len--;
		if (line.len == 0) {
			reply(500, "5.5.2", "Error: bad syntax");
			continue;
		}
		if (memchr(line.data, '\r', line.len) || memchr(line.data, '\0', line.len)) {
			reply(500, "5.5.2", "Error: bare <CR> or NUL in a command");
			continue;
		}
		line.data[line.len] = '\0';
		if (!command(sm, &t, c, &line)) {
			if (c->verb == SMTP_DATA) {
				sm_warn(sm, "input ended inside DATA: the message was not queued");
				rc = EX_TEMPFAIL;
			}
			break;
		}
	}
	txn_reset(&t);
	buf_free(&line);
	free(c);
	return rc;
}
