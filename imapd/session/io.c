/*
 * io.c: the session's connection to its client (through the login process, which holds
 * the TLS). Reading feeds lib/imapcmd.c and answers its literal continuations; writing
 * goes through one output buffer flushed at the end of every response burst. IMAP strings
 * are written as atoms, quoted strings or literals, whichever represents the bytes exactly.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "session.h"
#include "util.h"

static char rbuf[16384];

/* Read what is there (waiting up to the idle timeout); bytes, 0 on EOF/timeout, -1 error. */
static ssize_t read_some(void)
{
	struct pollfd p = { .fd = S.fd, .events = POLLIN };
	ssize_t n;
	int r;

	out_flush();
	do
		r = poll(&p, 1, IMAP_IDLE_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		out_str("* BYE Disconnected for inactivity.\r\n");
		out_flush();
		return 0;
	}
	do
		n = read(S.fd, rbuf, sizeof(rbuf));
	while (n < 0 && errno == EINTR);
	if (n > 0)
		S.bytes_in += (uint64_t)n;
	return n;
}

int io_read_command(void)
{
	enum imapcmd_status st = imapcmd_feed(S.cmd, NULL, 0);
	ssize_t n;

	for (;;) {
		switch (st) {
		case IMAPCMD_DONE:
		case IMAPCMD_BAD:
		case IMAPCMD_TOOBIG:
			return (int)st == IMAPCMD_DONE ? 1 : st == IMAPCMD_BAD ? 2 : 3;
		case IMAPCMD_CONTINUE:
			out_str("+ Ready for literal data\r\n");
			__attribute__((fallthrough));	/* the literal follows */
		case IMAPCMD_MORE:
			n = read_some();
			if (n <= 0)
				return 0;
			st = imapcmd_feed(S.cmd, rbuf, (size_t)n);
			break;
		}
	}
}

int io_read_line(const char **line, size_t *len)
{
	enum imapcmd_status st = imapcmd_read_line(S.cmd, line, len);
	ssize_t n;

	while (st == IMAPCMD_MORE) {
		n = read_some();
		if (n <= 0)
			return 0;
		(void)imapcmd_feed(S.cmd, rbuf, (size_t)n);
		st = imapcmd_read_line(S.cmd, line, len);
	}
	return st == IMAPCMD_DONE ? 1 : -1;
}

int io_wait(int watch_fd, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = S.fd, .events = POLLIN }, { .fd = watch_fd, .events = POLLIN } };
	int r;

	out_flush();
	if (imapcmd_pending(S.cmd) > 0)
		return 1;
	do
		r = poll(p, watch_fd >= 0 ? 2 : 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	return (p[0].revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
}

void out_flush(void)
{
	if (S.out.len == 0)
		return;
	if (write_all(S.fd, S.out.data, S.out.len) < 0) {
		/* the client is gone: nothing more to say to anyone */
		msg_tagged("imap", "Info: Disconnected: Connection closed (write failed)");
		_exit(0);
	}
	S.bytes_out += S.out.len;
	buf_reset(&S.out);
}

void out_raw(const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		size_t room = IMAP_OUT_FLUSH * 2 - S.out.len, take = n < room ? n : room;

		if (buf_append(&S.out, c, take) < 0)
			msg_fatal("output buffer: %m");
		c += take;
		n -= take;
		if (S.out.len >= IMAP_OUT_FLUSH)
			out_flush();
	}
}

void out_uint(unsigned long long v)
{
	char digits[DEC_U64_SIZE];
	size_t len;
	const char *p = dec_u64(digits, v, &len);

	out_raw(p, len);
}

void out_str(const char *s)
{
	out_raw(s, strlen(s));
}

void out_printf(const char *fmt, ...)
{
	char small[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		out_raw(small, (size_t)n);
		return;
	}
	{
		char *p = xmalloc((size_t)n + 1);

		va_start(ap, fmt);
		(void)vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
		out_raw(p, (size_t)n);
		free(p);
	}
}

static bool atom_safe(const char *s, size_t len)
{
	if (len == 0 || (len == 3 && strncasecmp(s, "NIL", 3) == 0))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
			return false;
	}
	return true;
}

static bool quote_safe(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n' || c == 0 || c >= 0x80)
			return false;
	}
	return len < 1024;
}

static void out_string_len(const char *s, size_t len, bool allow_atom)
{
	if (allow_atom && atom_safe(s, len)) {
		out_raw(s, len);
	} else if (quote_safe(s, len)) {
		out_raw("\"", 1);
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '"' || s[i] == '\\')
				out_raw("\\", 1);
			out_raw(&s[i], 1);
		}
		out_raw("\"", 1);
	} else {
		out_printf("{%zu}\r\n", len);
		out_raw(s, len);
	}
}

void out_astring(const char *s)
{
	out_string_len(s, strlen(s), true);
}

void out_nstring(const char *s, size_t len)
{
	if (s == NULL)
		out_str("NIL");
	else
		out_string_len(s, len, false);
}

void reply_tagged(const char *status, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	out_printf("%s %s %s\r\n", S.cmd->tag[0] ? S.cmd->tag : "*", status, text);
}

void reply_untagged(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	out_printf("* %s\r\n", text);
}
