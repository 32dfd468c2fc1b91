/*
 * client.c: one SMTP connection to one address of one host (RFC 5321) and the cache that
 * keeps it for the next request. Greeting, EHLO (HELO when EHLO is refused with 5xx),
 * opportunistic or required STARTTLS and EHLO again, AUTH to a relayhost (sasl.c), then the
 * mail transaction (mail.c), and QUIT, or the connection is parked.
 *
 * A host that cannot take the message now (no connection, 4xx greeting or EHLO, TLS
 * required but missing, authentication failed, the connection lost before the recipients
 * were given) is left for the next one (SMTP_NEXT, with the reason in *fail). Diagnostics
 * read as Postfix's: "host mx.example.com[192.0.2.1] said: 550 5.1.1 no such user (in reply
 * to RCPT TO command)".
 *
 * Connection reuse: after a transaction that ended with 2xx after the dot, the connection
 * is parked for smtp_connection_cache_time in the pool's event loop (between requests of
 * the same qmgr connection), with a timer and a watch on the socket: the timer sends QUIT,
 * anything the server says meanwhile (a 421, a close) ends it. The next request for the
 * same destination (smtp_dest.key) sends RSET and goes on with MAIL FROM; any other
 * request, or the qmgr connection closing, lets it go first.
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
#include "server.h"
#include "smtp.h"
#include "stream.h"
#include "tls.h"
#include "util.h"

#define CMD_MAX		4096	/* one command line: addresses are at most QF_MAX_ADDR */

/* ---- results ---------------------------------------------------------------------------- */

enum smtp_outcome conn_next_host(struct smtp_conn *c, int code, const char *dsn,
				 const char *fmt, ...)
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
void conn_reply_dsn(const struct smtp_conn *c, char *out, size_t outsize)
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

void conn_settle(struct smtp_conn *c, struct deliver_rcpt *rc, int code, const char *dsn,
		 const char *text)
{
	deliver_result(rc, code, dsn, "%s", text);
	(void)str_copy(rc->relay, sizeof(rc->relay), c->relay);
}

/* Every recipient still open (accepted ones only, if only_accepted) gets this result. */
void conn_settle_open(struct smtp_conn *c, bool only_accepted, int code, const char *dsn,
		      const char *text)
{
	for (size_t i = 0; i < c->r->nrcpt; i++)
		if (c->r->rcpt[i].code == 0 && (!only_accepted || c->accepted[i]))
			conn_settle(c, &c->r->rcpt[i], code, dsn, text);
}

/* The server's last reply, said in reply to cmd, for the open recipients. */
void conn_settle_said(struct smtp_conn *c, bool only_accepted, const char *cmd)
{
	char text[DELIVER_TEXT_MAX], dsn[16];

	conn_reply_dsn(c, dsn, sizeof(dsn));
	(void)str_fmt(text, sizeof(text), "host %s said: %s (in reply to %s)", c->hostaddr,
		       c->reply, cmd);
	conn_settle_open(c, only_accepted, c->code, dsn, text);
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

/* "AUTH PLAIN LOGIN" or the old "AUTH=PLAIN LOGIN": note the mechanisms. */
static void note_auth(struct smtp_conn *c, const char *mechs)
{
	char word[64];

	while (*mechs != '\0') {
		size_t len = strcspn(mechs, " ");

		if (len > 0 && len < sizeof(word)) {
			memcpy(word, mechs, len);
			word[len] = '\0';
			if (strcasecmp(word, "PLAIN") == 0)
				c->ext_auth_plain = true;
			else if (strcasecmp(word, "LOGIN") == 0)
				c->ext_auth_login = true;
			if (strstr(c->auth_mechs, word) == NULL) {
				size_t used = strlen(c->auth_mechs);

				(void)snprintf(c->auth_mechs + used, sizeof(c->auth_mechs) - used,
					       "%s%s", used ? " " : "", word);
			}
		}
		mechs += len;
		mechs += strspn(mechs, " ");
	}
}

/* One EHLO keyword line (after "250-"/"250 "). */
static void note_extension(struct smtp_conn *c, const char *kw)
{
	long long v;

	if (strcasecmp(kw, "8BITMIME") == 0)
		c->ext_8bit = true;
	else if (strcasecmp(kw, "STARTTLS") == 0)
		c->ext_starttls = true;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		c->ext_utf8 = true;
	else if (strcasecmp(kw, "PIPELINING") == 0)
		c->ext_pipelining = true;
	else if (strncasecmp(kw, "AUTH", 4) == 0 && (kw[4] == ' ' || kw[4] == '='))
		note_auth(c, kw + 5);
	else if (strncasecmp(kw, "SIZE", 4) == 0 && (kw[4] == '\0' || kw[4] == ' ')) {
		c->ext_size = true;
		if (kw[4] == ' ' && str_to_ll(kw + 5, 0, INT64_MAX, &v) == 0)
			c->max_size = (uint64_t)v;
	}
}

/* Read one reply, continuation lines joined with spaces into c->reply. The code, or -1
 * (connection lost, timeout, garbage: the connection is then unusable). With ehlo, the
 * extensions are noted. */
int conn_read_reply(struct smtp_conn *c, bool ehlo)
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
		if (ehlo && line.len > 4)
			note_extension(c, s + 4);
		if (line.len <= 3 || s[3] == ' ')
			break;
	}
	buf_free(&line);
	c->code = code;
	if (code < 0)
		c->broken = true;
	return code;
}

static int vqueue(struct smtp_conn *c, const char *fmt, va_list ap)
{
	char line[CMD_MAX];
	int n = vsnprintf(line, sizeof(line), fmt, ap), rc = -1;

	if (n >= 0 && (size_t)n < sizeof(line) - 2)
		rc = stream_printf(c->st, "%s\r\n", line) < 0 ? -1 : 0;
	explicit_bzero(line, sizeof(line));	/* it may have held AUTH credentials */
	if (rc < 0)
		c->broken = true;	/* a command cut short would leave the server confused */
	return rc;
}

int conn_queue(struct smtp_conn *c, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vqueue(c, fmt, ap);
	va_end(ap);
	return rc;
}

/* Send one command line and read its reply: the code, or -1 (lost). */
int conn_command(struct smtp_conn *c, bool ehlo, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vqueue(c, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	if (stream_flush(c->st) < 0) {
		c->broken = true;
		return -1;
	}
	return conn_read_reply(c, ehlo);
}

enum smtp_outcome conn_lost(struct smtp_conn *c, const char *while_)
{
	return conn_next_host(c, 451, "4.4.2", "lost connection with %s while %s", c->hostaddr,
			      while_);
}

void conn_quit(struct smtp_conn *c)
{
	if (!c->broken)
		(void)conn_command(c, false, "QUIT");
}

/* ---- the session ------------------------------------------------------------------------ */

/* EHLO, or HELO when EHLO is refused outright. 0, or -1 with the outcome in *out. */
static int hello(struct smtp_conn *c, enum smtp_outcome *out)
{
	int code;

	c->ext_8bit = c->ext_size = c->ext_starttls = c->ext_utf8 = false;
	c->ext_pipelining = c->ext_auth_plain = c->ext_auth_login = false;
	c->auth_mechs[0] = '\0';
	c->max_size = 0;
	code = conn_command(c, true, "EHLO %s", S.myhostname);
	if (code >= 500)
		code = conn_command(c, false, "HELO %s", S.myhostname);
	if (code < 0) {
		*out = conn_lost(c, "performing the EHLO handshake");
		return -1;
	}
	if (code / 100 != 2) {
		char dsn[16];

		conn_reply_dsn(c, dsn, sizeof(dsn));
		*out = conn_next_host(c, code, dsn, "host %s refused to talk to me: %s",
				      c->hostaddr, c->reply);
		return -1;
	}
	return 0;
}

/* STARTTLS when offered (or required). 0, or -1 with the outcome in *out. */
static int start_tls(struct smtp_conn *c, enum smtp_outcome *out)
{
	char err[256];
	bool required = S.tls_level >= SMTP_TLS_ENCRYPT;

	if (S.tls_level == SMTP_TLS_NONE || S.tls_ctx == NULL)
		return 0;
	if (!c->ext_starttls) {
		if (!required)
			return 0;
		*out = conn_next_host(c, 451, "4.7.4", "TLS is required, but was not offered by "
				      "host %s", c->hostaddr);
		return -1;
	}
	int code = conn_command(c, false, "STARTTLS");

	if (code < 0) {
		*out = conn_lost(c, "sending STARTTLS");
		return -1;
	}
	if (code != 220) {
		if (!required)
			return 0;
		*out = conn_next_host(c, 451, "4.7.4", "TLS is required, but host %s refused to "
				      "start TLS: %s", c->hostaddr, c->reply);
		return -1;
	}
	if (stream_starttls_client(c->st, S.tls_ctx, c->host) < 0) {
		c->broken = true;
		tls_error_string(err, sizeof(err));
		*out = conn_next_host(c, 451, "4.7.5", "TLS handshake with %s failed: %s",
				      c->hostaddr, err[0] ? err : "connection lost");
		return -1;
	}
	c->tls = true;
	log_tls(c->relay, stream_ssl(c->st), S.tls_level == SMTP_TLS_VERIFY);
	return hello(c, out);
}

/* From the greeting to the end of the transaction. */
static enum smtp_outcome converse(struct smtp_conn *c, const struct smtp_dest *d)
{
	enum smtp_outcome out;
	int code = conn_read_reply(c, false);

	if (code < 0)
		return conn_lost(c, "receiving the initial server greeting");
	if (code != 220) {
		char dsn[16];

		conn_reply_dsn(c, dsn, sizeof(dsn));
		return conn_next_host(c, code >= 400 ? code : 421, dsn, "host %s refused to talk "
				      "to me: %s", c->hostaddr, c->reply);
	}
	if (hello(c, &out) < 0 || start_tls(c, &out) < 0)
		return out;
	if (d->cred != NULL && sasl_authenticate(c, d->cred, &out) < 0)
		return out;
	c->r->conn_ms = wall_ms() - c->r->received;
	return mail_transaction(c);
}

/* ---- the cache -------------------------------------------------------------------------- */

static struct smtp_conn *cached;	/* at most one: a pool process serves one qmgr link */
static uint64_t cache_timer;

static void conn_free(struct smtp_conn *c)
{
	stream_free(c->st);
	free(c);
}

/* Take the cached connection out of the loop; NULL if there is none. */
static struct smtp_conn *cache_take(void)
{
	struct smtp_conn *c = cached;

	if (c == NULL)
		return NULL;
	cached = NULL;
	if (cache_timer != 0)
		ev_timer_cancel(S.loop, cache_timer);
	cache_timer = 0;
	ev_fd_del(S.loop, stream_fd(c->st));
	return c;
}

void client_cache_close(void)
{
	struct smtp_conn *c = cache_take();

	if (c == NULL)
		return;
	stream_set_timeout(c->st, SMTP_CLOSE_TIMEOUT_MS);
	conn_quit(c);
	conn_free(c);
}

static void cache_expired(struct ev_loop *loop, void *arg)
{
	(void)loop, (void)arg;
	cache_timer = 0;
	client_cache_close();
}

/* The server spoke (a 421 before it times us out) or closed: the connection is done. */
static void cache_readable(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct smtp_conn *c = cache_take();

	(void)loop, (void)fd, (void)revents, (void)arg;
	if (c != NULL)
		conn_free(c);
}

/* After a conversation: park a clean connection for the next request, else end it. */
static void conn_finish(struct smtp_conn *c)
{
	if (c->reusable && !c->broken && S.cache_time_ms > 0 && S.loop != NULL &&
	    !server_stopping() && stream_pending(c->st) == 0) {
		client_cache_close();	/* there is none: deliver_request let it go already */
		if (ev_fd_add(S.loop, stream_fd(c->st), POLLIN, cache_readable, NULL) == 0) {
			cached = c;
			cache_timer = ev_timer_add(S.loop, S.cache_time_ms, cache_expired, NULL);
			return;
		}
	}
	conn_quit(c);
	conn_free(c);
}

enum smtp_outcome client_reuse(struct deliver_request *r, const struct smtp_dest *d,
			       struct smtp_failure *fail)
{
	struct smtp_conn *c;
	enum smtp_outcome out;
	int code;

	if (cached == NULL)
		return SMTP_NEXT;
	if (strcmp(cached->dest, d->key) != 0) {
		client_cache_close();
		return SMTP_NEXT;
	}
	c = cache_take();
	c->r = r;
	c->fail = fail;
	c->reusable = false;
	stream_set_timeout(c->st, SMTP_RSET_TIMEOUT_MS);
	code = conn_command(c, false, "RSET");
	stream_set_timeout(c->st, SMTP_CMD_TIMEOUT_MS);
	if (code / 100 != 2) {	/* gone or confused: quietly take a new connection */
		if (code >= 0)
			conn_quit(c);
		conn_free(c);
		return SMTP_NEXT;
	}
	r->conn_ms = wall_ms() - r->received;
	out = mail_transaction(c);
	conn_finish(c);
	return out;
}

enum smtp_outcome client_deliver(struct deliver_request *r, const struct smtp_dest *d,
				 const char *host, const struct inet_addr *addr,
				 struct smtp_failure *fail)
{
	struct smtp_conn *c = xcalloc(1, sizeof(*c));
	char ip[64], port[80];
	enum smtp_outcome out;
	int fd;

	c->r = r;
	c->fail = fail;
	(void)str_copy(c->host, sizeof(c->host), host);
	(void)str_copy(c->dest, sizeof(c->dest), d->key);
	inet_format_host((const struct sockaddr *)&addr->ss, ip, sizeof(ip));
	inet_format((const struct sockaddr *)&addr->ss, port, sizeof(port));
	(void)str_fmt(c->hostaddr, sizeof(c->hostaddr), "%s[%s]", host, ip);
	(void)str_fmt(c->relay, sizeof(c->relay), "%s[%s]:%s", host, ip,
		      strrchr(port, ':') ? strrchr(port, ':') + 1 : "25");
	fd = connect_to(addr, S.connect_timeout_ms);
	if (fd < 0) {
		int err = errno;

		out = conn_next_host(c, 451, err == ETIMEDOUT ? "4.4.2" : "4.4.1",
				     "connect to %s: %s", c->relay,
				     err == ETIMEDOUT ? "Connection timed out" : strerror(err));
		/* as Postfix: no session, so the delivery line says relay=none */
		(void)str_copy(c->fail->relay, sizeof(c->fail->relay), "none");
		free(c);
		return out;
	}
	c->st = stream_new(fd, SMTP_LINE_MAX, SMTP_CMD_TIMEOUT_MS);
	out = converse(c, d);
	conn_finish(c);
	return out;
}
