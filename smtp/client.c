/*
 * client.c: one SMTP conversation with one address of one host (RFC 5321). Greeting, EHLO
 * (HELO when EHLO is refused with 5xx), opportunistic or required STARTTLS and EHLO again,
 * MAIL FROM with SIZE=, BODY=8BITMIME and SMTPUTF8 as the message needs and the server
 * offers, RCPT TO per recipient, DATA with the message dot-stuffed straight from the queue
 * file, QUIT. Content the server cannot take is refused without downgrade: 8-bit to a server
 * without 8BITMIME bounces 5.6.3, SMTPUTF8 to one without it 5.6.7.
 *
 * A host that cannot take the message now (no connection, 4xx greeting or EHLO, TLS
 * required but missing, the connection lost before the recipients were given) is left for
 * the next one (SMTP_NEXT, with the reason in *fail). Once MAIL FROM is answered the
 * server's replies decide: per recipient for RCPT, for all accepted ones after DATA.
 * Diagnostics read as Postfix's: "host mx.example.com[192.0.2.1] said: 550 5.1.1 no such
 * user (in reply to RCPT TO command)".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "smtp.h"
#include "stream.h"
#include "tls.h"
#include "util.h"

#define BODY_CHUNK	65536
#define CMD_MAX		4096	/* one command line: addresses are at most QF_MAX_ADDR */

struct conv {
	struct deliver_request *r;
	struct smtp_failure *fail;
	struct stream *st;
	const char *host;
	char hostaddr[MX_NAME_MAX + 64];	/* "host[addr]" */
	char relay[DELIVER_RELAY_MAX];		/* "host[addr]:port" */
	bool tls;
	bool ext_8bit, ext_size, ext_starttls, ext_utf8;
	uint64_t max_size;			/* SIZE n; 0 = no limit given */
	int code;				/* the last reply */
	char reply[SMTP_REPLY_MAX];		/* "550 5.1.1 no such user" */
	bool accepted[DELIVER_MAX_RCPT];
};

/* ---- results ---------------------------------------------------------------------------- */

static enum smtp_outcome next_host(struct conv *c, int code, const char *dsn, const char *fmt,
				   ...) __attribute__((format(printf, 4, 5)));
static enum smtp_outcome next_host(struct conv *c, int code, const char *dsn, const char *fmt,
				   ...)
{
	va_list ap;

	c->fail->code = code;
	(void)str_copy(c->fail->dsn, sizeof(c->fail->dsn), dsn);
	va_start(ap, fmt);
	(void)vsnprintf(c->fail->text, sizeof(c->fail->text), fmt, ap);
	va_end(ap);
	(void)str_copy(c->fail->relay, sizeof(c->fail->relay), c->relay);
	log_host_failed(c->r->qid, c->relay, c->fail->text);
	return SMTP_NEXT;
}

/* The enhanced status code that starts the reply text, if it matches the reply's class;
 * else "N.0.0". */
static void reply_dsn(const struct conv *c, char *out, size_t outsize)
{
	const char *t = c->reply + 4;
	size_t i = 0, dots = 0;

	if (strlen(c->reply) > 4 && t[0] == c->reply[0] && t[1] == '.') {
		for (i = 2; t[i] != '\0' && t[i] != ' ' && i < 12; i++) {
			if (t[i] == '.')
				dots++;
			else if (t[i] < '0' || t[i] > '9')
				break;
		}
		if (dots == 1 && (t[i] == ' ' || t[i] == '\0') && t[i - 1] != '.' &&
		    (size_t)i < outsize) {
			memcpy(out, t, i);
			out[i] = '\0';
			return;
		}
	}
	(void)str_fmt(out, outsize, "%d.0.0", c->code / 100);
}

static void settle(struct conv *c, struct deliver_rcpt *rc, int code, const char *dsn,
		   const char *text)
{
	deliver_result(rc, code, dsn, "%s", text);
	(void)str_copy(rc->relay, sizeof(rc->relay), c->relay);
}

/* Every recipient still open (accepted ones only, if only_accepted) gets this result. */
static void settle_open(struct conv *c, bool only_accepted, int code, const char *dsn,
			const char *text)
{
	for (size_t i = 0; i < c->r->nrcpt; i++)
		if (c->r->rcpt[i].code == 0 && (!only_accepted || c->accepted[i]))
			settle(c, &c->r->rcpt[i], code, dsn, text);
}

/* The server's last reply, said in reply to cmd, for the open recipients. */
static void settle_said(struct conv *c, bool only_accepted, const char *cmd)
{
	char text[DELIVER_TEXT_MAX], dsn[16];

	reply_dsn(c, dsn, sizeof(dsn));
	(void)str_fmt(text, sizeof(text), "host %s said: %s (in reply to %s)", c->hostaddr,
		       c->reply, cmd);
	settle_open(c, only_accepted, c->code, dsn, text);
}

/* ---- the wire --------------------------------------------------------------------------- */

static int connect_to(const struct inet_addr *a, int timeout_ms)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct pollfd pfd = { .fd = fd, .events = POLLOUT, .revents = 0 };
	int err = 0, n;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	do
		n = poll(&pfd, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		errno = ETIMEDOUT;
	if (n <= 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		goto fail;
	if (err == 0)
		return fd;
	errno = err;
fail:
	err = errno;
	(void)close(fd);
	errno = err;
	return -1;
}

/* Read one reply, continuation lines joined with spaces into c->reply. The code, or -1
 * (connection lost, timeout, garbage). With ehlo, the extensions are noted. */
static int read_reply(struct conv *c, bool ehlo)
{
	struct buf line;
	size_t used = 0;
	int code = -1;
	ssize_t n;

	buf_init(&line, SMTP_LINE_MAX);
	c->reply[0] = '\0';
	for (;;) {
		n = stream_readline(c->st, &line);
		if (n <= 0)
			break;
		while (line.len > 0 && (line.data[line.len - 1] == '\n' ||
					line.data[line.len - 1] == '\r'))
			line.data[--line.len] = '\0';	/* buf keeps its NUL after len */
		const char *s = buf_cstr(&line);
		long long v;
		char digits[4] = { s[0], s[0] ? s[1] : 0, s[0] && s[1] ? s[2] : 0, 0 };

		if (line.len < 3 || str_to_ll(digits, 200, 599, &v) < 0 ||
		    (line.len > 3 && s[3] != ' ' && s[3] != '-') || (code >= 0 && v != code)) {
			code = -1;
			break;
		}
		code = (int)v;
		(void)snprintf(c->reply + used, sizeof(c->reply) - used, "%s%s",
			       used ? " " : "", used ? s + (line.len > 3 ? 4 : 3) : s);
		used = strlen(c->reply);
		if (ehlo && line.len > 4) {
			const char *kw = s + 4;

			if (strcasecmp(kw, "8BITMIME") == 0)
				c->ext_8bit = true;
			else if (strcasecmp(kw, "STARTTLS") == 0)
				c->ext_starttls = true;
			else if (strcasecmp(kw, "SMTPUTF8") == 0)
				c->ext_utf8 = true;
			else if (strncasecmp(kw, "SIZE", 4) == 0 && (kw[4] == '\0' || kw[4] == ' ')) {
				c->ext_size = true;
				if (kw[4] == ' ' && str_to_ll(kw + 5, 0, INT64_MAX, &v) == 0)
					c->max_size = (uint64_t)v;
			}
		}
		if (line.len <= 3 || s[3] == ' ')
			break;
	}
	buf_free(&line);
	c->code = code;
	return code;
}

/* Send one command line and read its reply: the code, or -1 (lost). */
static int command(struct conv *c, bool ehlo, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int command(struct conv *c, bool ehlo, const char *fmt, ...)
{
	char line[CMD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return -1;
	if (stream_printf(c->st, "%s\r\n", line) < 0 || stream_flush(c->st) < 0)
		return -1;
	return read_reply(c, ehlo);
}

static enum smtp_outcome lost(struct conv *c, const char *while_)
{
	return next_host(c, 451, "4.4.2", "lost connection with %s while %s", c->hostaddr,
			 while_);
}

static void quit(struct conv *c)
{
	(void)command(c, false, "QUIT");
}

/* ---- the conversation ------------------------------------------------------------------ */

/* EHLO, or HELO when EHLO is refused outright. 0, or -1 with the outcome in *out. */
static int hello(struct conv *c, enum smtp_outcome *out)
{
	int code;

	c->ext_8bit = c->ext_size = c->ext_starttls = c->ext_utf8 = false;
	c->max_size = 0;
	code = command(c, true, "EHLO %s", S.myhostname);
	if (code >= 500)
		code = command(c, false, "HELO %s", S.myhostname);
	if (code < 0) {
		*out = lost(c, "performing the EHLO handshake");
		return -1;
	}
	if (code / 100 != 2) {
		char dsn[16];

		reply_dsn(c, dsn, sizeof(dsn));
		*out = next_host(c, code, dsn, "host %s refused to talk to me: %s", c->hostaddr,
				 c->reply);
		quit(c);
		return -1;
	}
	return 0;
}

/* STARTTLS when offered (or required). 0, or -1 with the outcome in *out. */
static int start_tls(struct conv *c, enum smtp_outcome *out)
{
	char err[256];
	bool required = S.tls_level >= SMTP_TLS_ENCRYPT;

	if (S.tls_level == SMTP_TLS_NONE || S.tls_ctx == NULL)
		return 0;
	if (!c->ext_starttls) {
		if (!required)
			return 0;
		*out = next_host(c, 451, "4.7.4", "TLS is required, but was not offered by host "
				 "%s", c->hostaddr);
		quit(c);
		return -1;
	}
	int code = command(c, false, "STARTTLS");

	if (code < 0) {
		*out = lost(c, "sending STARTTLS");
		return -1;
	}
	if (code != 220) {
		if (!required)
			return 0;
		*out = next_host(c, 451, "4.7.4", "TLS is required, but host %s refused to start "
				 "TLS: %s", c->hostaddr, c->reply);
		quit(c);
		return -1;
	}
	if (stream_starttls_client(c->st, S.tls_ctx, c->host) < 0) {
		tls_error_string(err, sizeof(err));
		*out = next_host(c, 451, "4.7.5", "TLS handshake with %s failed: %s", c->hostaddr,
				 err[0] ? err : "connection lost");
		return -1;
	}
	c->tls = true;
	log_tls(c->relay, stream_ssl(c->st), S.tls_level == SMTP_TLS_VERIFY);
	return hello(c, out);
}

/* What the message needs that the server lacks: true with everybody settled. */
static bool content_refused(struct conv *c)
{
	const struct deliver_request *r = c->r;
	char text[DELIVER_TEXT_MAX];

	if (r->body == DELIVER_BODY_BINARYMIME || (r->body == DELIVER_BODY_8BITMIME &&
						   !c->ext_8bit)) {
		(void)str_fmt(text, sizeof(text), "host %s does not support %s and the message "
			       "content is 8-bit (no downgrade)", c->hostaddr,
			       r->body == DELIVER_BODY_BINARYMIME ? "BINARYMIME over BDAT" :
			       "8BITMIME");
		settle_open(c, false, 554, "5.6.3", text);
	} else if (r->smtputf8 && !c->ext_utf8) {
		(void)str_fmt(text, sizeof(text), "host %s does not support SMTPUTF8, which the "
			       "message requires", c->hostaddr);
		settle_open(c, false, 554, "5.6.7", text);
	} else if (c->ext_size && c->max_size > 0 && r->msg_len > c->max_size) {
		(void)str_fmt(text, sizeof(text), "message size %llu exceeds size limit %llu of "
			       "server %s", (unsigned long long)r->msg_len,
			       (unsigned long long)c->max_size, c->hostaddr);
		settle_open(c, false, 552, "5.3.4", text);
	} else {
		return false;
	}
	return true;
}

static int mail_from(struct conv *c)
{
	const struct deliver_request *r = c->r;
	char size[40] = "";

	if (c->ext_size)
		(void)str_fmt(size, sizeof(size), " SIZE=%llu", (unsigned long long)r->msg_len);
	return command(c, false, "MAIL FROM:<%s>%s%s%s", r->sender, size,
		       r->body == DELIVER_BODY_8BITMIME ? " BODY=8BITMIME" : "",
		       r->smtputf8 && c->ext_utf8 ? " SMTPUTF8" : "");
}

/* RCPT TO for each open recipient; the number accepted, or -1 (lost). */
static int rcpt_to(struct conv *c)
{
	int accepted = 0;

	for (size_t i = 0; i < c->r->nrcpt; i++) {
		struct deliver_rcpt *rc = &c->r->rcpt[i];
		int code;

		if (rc->code != 0)
			continue;
		code = command(c, false, "RCPT TO:<%s>", rc->rcpt);
		if (code < 0)
			return -1;
		if (code / 100 == 2) {
			c->accepted[i] = true;
			accepted++;
		} else {
			char text[DELIVER_TEXT_MAX], dsn[16];

			reply_dsn(c, dsn, sizeof(dsn));
			(void)str_fmt(text, sizeof(text), "host %s said: %s (in reply to RCPT TO "
				       "command)", c->hostaddr, c->reply);
			settle(c, rc, code, dsn, text);
		}
	}
	return accepted;
}

/* The message from the queue file, dot-stuffed, then the final dot. 0, -1 on a write
 * error (connection lost), -2 on a read error (the queue file). */
static int send_body(struct conv *c)
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

/* DATA and the message, for the accepted recipients. */
static enum smtp_outcome data(struct conv *c)
{
	int code = command(c, false, "DATA"), rc;

	if (code < 0)
		return lost(c, "sending DATA command");
	if (code != 354) {
		settle_said(c, true, "DATA command");
		quit(c);
		return SMTP_DONE;
	}
	rc = send_body(c);
	if (rc == -2) {
		msg_warn("%s: cannot read the queue file: %m", c->r->qid);
		settle_open(c, true, 451, "4.3.0", "cannot read the queue file; deferred");
		return SMTP_DONE;	/* no final dot sent: the server discards the message */
	}
	stream_set_timeout(c->st, SMTP_DATA_TIMEOUT_MS);
	if (rc < 0 || read_reply(c, false) < 0) {
		char text[DELIVER_TEXT_MAX];

		(void)str_fmt(text, sizeof(text), "lost connection with %s while sending "
			       "end of data -- message may be sent more than once", c->hostaddr);
		settle_open(c, true, 451, "4.4.2", text);
		return SMTP_DONE;
	}
	stream_set_timeout(c->st, SMTP_CMD_TIMEOUT_MS);
	if (c->code / 100 == 2) {
		char dsn[16];

		reply_dsn(c, dsn, sizeof(dsn));
		settle_open(c, true, c->code, dsn, c->reply);
	} else {
		settle_said(c, true, "end of DATA command");
	}
	quit(c);
	return SMTP_DONE;
}

/* From the greeting to QUIT. */
static enum smtp_outcome converse(struct conv *c)
{
	enum smtp_outcome out;
	int code = read_reply(c, false), accepted;

	if (code < 0)
		return lost(c, "receiving the initial server greeting");
	if (code != 220) {
		char dsn[16];

		reply_dsn(c, dsn, sizeof(dsn));
		out = next_host(c, code >= 400 ? code : 421, dsn, "host %s refused to talk "
				"to me: %s", c->hostaddr, c->reply);
		quit(c);
		return out;
	}
	if (hello(c, &out) < 0 || start_tls(c, &out) < 0)
		return out;
	c->r->conn_ms = wall_ms() - c->r->received;
	if (content_refused(c)) {
		quit(c);
		return SMTP_DONE;
	}
	code = mail_from(c);
	if (code < 0)
		return lost(c, "sending MAIL FROM");
	if (code / 100 != 2) {
		settle_said(c, false, "MAIL FROM command");
		quit(c);
		return SMTP_DONE;
	}
	accepted = rcpt_to(c);
	if (accepted < 0)
		return lost(c, "sending RCPT TO");
	if (accepted == 0) {
		quit(c);
		return SMTP_DONE;
	}
	return data(c);
}

enum smtp_outcome client_deliver(struct deliver_request *r, const char *host,
				 const struct inet_addr *addr, struct smtp_failure *fail)
{
	struct conv *c = xcalloc(1, sizeof(*c));
	char ip[64], port[80];
	enum smtp_outcome out;
	int fd;

	c->r = r;
	c->fail = fail;
	c->host = host;
	inet_format_host((const struct sockaddr *)&addr->ss, ip, sizeof(ip));
	inet_format((const struct sockaddr *)&addr->ss, port, sizeof(port));
	(void)str_fmt(c->hostaddr, sizeof(c->hostaddr), "%s[%s]", host, ip);
	(void)str_fmt(c->relay, sizeof(c->relay), "%s[%s]:%s", host, ip,
		      strrchr(port, ':') ? strrchr(port, ':') + 1 : "25");
	fd = connect_to(addr, S.connect_timeout_ms);
	if (fd < 0) {
		int err = errno;

		out = next_host(c, 451, err == ETIMEDOUT ? "4.4.2" : "4.4.1", "connect to %s: %s",
				c->relay, err == ETIMEDOUT ? "Connection timed out" : strerror(err));
	} else {
		c->st = stream_new(fd, SMTP_LINE_MAX, SMTP_CMD_TIMEOUT_MS);
		out = converse(c);
		stream_free(c->st);
	}
	free(c);
	return out;
}
