/*
 * client.c: one client of pop3-login from greeting to hand-off or disconnect: reading
 * command lines within their limits, the inactivity timeout and the disconnect log line.
 *
 * Bytes are read in chunks into pl->in and lines are taken from its front, so whatever the
 * client pipelined behind a command (RFC 2449 PIPELINING) stays there: behind USER/PASS or
 * AUTH it goes to the session after a successful login, behind STLS it is dropped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "pop3_login.h"
#include "util.h"

#define IN_MAX	(POP3_LOGIN_LONG_LINE_MAX + 2 * LOGIN_READ_CHUNK)

void pop3_login_reply(struct pop3_login *pl, const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		line[0] = '\0';
	va_end(ap);
	(void)stream_printf(pl->lc.s, "%s\r\n", line);
}

void pop3_login_discard_input(struct pop3_login *pl)
{
	if (pl->in.data)
		explicit_bzero(pl->in.data, pl->in.cap);
	buf_reset(&pl->in);
}

/* More client bytes into pl->in (our output flushed first): 1, or 0 when the client is gone
 * (reason set; on a timeout it is told why). */
static int read_more(struct pop3_login *pl)
{
	static char chunk[LOGIN_READ_CHUNK];
	ssize_t n;

	if (stream_flush(pl->lc.s) < 0) {
		pl->reason = "Connection closed";
		return 0;
	}
	n = stream_read(pl->lc.s, chunk, sizeof(chunk));
	if (n > 0 && buf_append(&pl->in, chunk, (size_t)n) == 0) {
		explicit_bzero(chunk, (size_t)n);
		return 1;
	}
	if (n == STREAM_TIMEOUT) {
		pop3_login_reply(pl, "-ERR Disconnected for inactivity.");
		(void)stream_flush(pl->lc.s);
		pl->reason = "Inactivity";
	} else {
		pl->reason = n > 0 ? "Too much input" : "Connection closed";
	}
	return 0;
}

/* A command line may be POP3_LOGIN_LINE_MAX long, AUTH and PASS lines more. */
static size_t command_limit(const struct pop3_login *pl)
{
	const char *p = buf_cstr(&pl->in);

	if (pl->in.len >= 5 && (strncasecmp(p, "AUTH ", 5) == 0 || strncasecmp(p, "PASS ", 5) == 0))
		return POP3_LOGIN_LONG_LINE_MAX;
	return POP3_LOGIN_LINE_MAX;
}

/* The next line; limit 0 means the command rule above. */
static int read_line(struct pop3_login *pl, char *buf, size_t size, size_t limit, size_t *len)
{
	for (;;) {
		const char *p = buf_cstr(&pl->in), *lf = memchr(p, '\n', pl->in.len);
		size_t max = limit ? limit : command_limit(pl), n;

		if (max > size - 1)
			max = size - 1;
		if (lf != NULL) {
			n = (size_t)(lf - p);
			if (n > 0 && p[n - 1] == '\r')
				n--;
			if (n > max)
				return -1;
			memcpy(buf, p, n);
			buf[n] = '\0';
			*len = n;
			buf_consume(&pl->in, (size_t)(lf - p) + 1);
			return 1;
		}
		if (pl->in.len > max + 1)	/* + 1: a CR whose LF is still on its way */
			return -1;
		if (!read_more(pl))
			return 0;
	}
}

int pop3_login_read_line(struct pop3_login *pl, char *buf, size_t size, size_t limit,
			 size_t *len)
{
	return read_line(pl, buf, size, limit ? limit : size - 1, len);
}

static void command_loop(struct pop3_login *pl)
{
	while (!pl->done) {
		int r = read_line(pl, pl->line, sizeof(pl->line), 0, &pl->line_len);

		if (r == 0)
			break;
		if (r < 0) {
			pop3_login_reply(pl, "-ERR Input line too long.");
			pl->reason = "Input line too long";
			break;
		}
		pop3_login_dispatch(pl);
		explicit_bzero(pl->line, sizeof(pl->line));	/* PASS, AUTH: secrets */
	}
}

void pop3_login_serve(struct login_conf *cf, int fd, const struct sockaddr *peer)
{
	static struct pop3_login pl;

	memset(&pl, 0, sizeof(pl));
	if (login_client_start(&pl.lc, cf, fd, peer) == 0) {
		buf_init(&pl.in, IN_MAX);
		pl.reason = "Connection closed";
		pop3_login_reply(&pl, "+OK Postern ready.");
		command_loop(&pl);
		(void)stream_flush(pl.lc.s);
		login_log_disconnect(&pl.lc, pl.reason);
		pop3_login_discard_input(&pl);
		buf_free(&pl.in);
		explicit_bzero(pl.user, sizeof(pl.user));
	}
	login_client_end(&pl.lc);
	login_after_client(cf);
}
