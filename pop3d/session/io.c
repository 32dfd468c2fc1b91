/*
 * io.c: the session's connection to its client (through the login process, which holds the
 * TLS). Input is read in chunks and cut into command lines, so commands the client pipelines
 * (RFC 2449 PIPELINING) are answered in one burst: the output buffer is flushed only when
 * no whole command is waiting, or when it is full (a RETR streams through it).
 *
 * While waiting for a command the session wakes up now and then to touch its lock file
 * (lock.c), and gives up after POP3_IDLE_TIMEOUT_MS (RFC 1939's autologout timer: nothing
 * is deleted) or when master asks it to stop. The socket is non-blocking, so a client that
 * stops reading our output is given up after the same time rather than holding the session
 * (and the mailbox's lock) for ever.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "session.h"
#include "util.h"

#define WAKE_MS		(30 * 1000)	/* lock refresh while idle */

static uint64_t written;

/* Write all of p (the socket is non-blocking): 0, or -1 with S.end set when the client is
 * gone or has not read anything for POP3_IDLE_TIMEOUT_MS. */
static int write_out(const char *p, size_t n)
{
	struct pollfd pfd = { .fd = S.fd, .events = POLLOUT };

	while (n > 0) {
		ssize_t w = write(S.fd, p, n);
		int r;

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0 || errno != EAGAIN) {
			S.end = "Disconnected: Connection closed";
			return -1;
		}
		do
			r = poll(&pfd, 1, POP3_IDLE_TIMEOUT_MS);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			S.end = "Disconnected for inactivity in reading our output";
			return -1;
		}
	}
	return 0;
}

void out_flush(void)
{
	if (S.out.len == 0)
		return;
	if (write_out(S.out.data, S.out.len) < 0) {
		/* the client is gone: UPDATE never happens, nothing changes */
		S.quit = S.gone = true;
		buf_reset(&S.out);
		return;
	}
	written += S.out.len;
	buf_reset(&S.out);
}

uint64_t out_offset(void)
{
	return written + S.out.len;
}

void out_raw(const void *p, size_t n)
{
	struct buf *b = out_room(n);

	if (b != NULL && buf_append(b, p, n) < 0)
		msg_panic("output buffer overflow");
}

struct buf *out_room(size_t more)
{
	if (S.out.len > 0 && S.out.len + more > POP3_OUT_FLUSH)
		out_flush();
	if (S.gone)
		return NULL;		/* writing failed before: drop the rest */
	if (more > POP3_OUT_MAX - S.out.len)
		msg_panic("output of %zu bytes at once", more);
	return &S.out;
}

void out_line(const char *fmt, ...)
{
	char line[POP3_LINE_MAX + 256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	out_raw(line, (size_t)n + 2);
}

/* Wait for input: 1 readable, 0 idle timeout or stop requested. */
static int wait_input(void)
{
	int64_t deadline = mono_ms() + POP3_IDLE_TIMEOUT_MS;
	struct pollfd p = { .fd = S.fd, .events = POLLIN };

	for (;;) {
		int64_t left = deadline - mono_ms();
		int r;

		if (stop_requested) {
			out_line("-ERR [SYS/TEMP] Server shutting down.");
			S.end = "Disconnected: Server shutting down.";
			return 0;
		}
		if (left <= 0) {
			out_line("-ERR Disconnected for inactivity.");
			S.end = "Disconnected for inactivity";
			return 0;
		}
		r = poll(&p, 1, (int)(left < WAKE_MS ? left : WAKE_MS));
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			msg_fatal("poll: %m");
		pop3_lock_touch(&S.lock);
	}
}

/* Read what the client sent: 1, or 0 at the end (S.end set). */
static int read_more(void)
{
	char chunk[POP3_IN_MAX - POP3_LINE_MAX - 2];
	ssize_t n;

	out_flush();
	if (S.quit || !wait_input())
		return 0;
	do
		n = read(S.fd, chunk, sizeof(chunk));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 1;			/* woken for nothing: wait again */
	if (n <= 0) {
		S.end = "Disconnected: Connection closed";
		return 0;
	}
	if (buf_append(&S.in, chunk, (size_t)n) < 0)
		msg_panic("input buffer overflow");	/* we never read with a full line queued */
	return 1;
}

int io_read_line(void)
{
	for (;;) {
		const char *p = buf_cstr(&S.in), *lf = memchr(p, '\n', S.in.len);
		size_t n;

		if (lf != NULL) {
			n = (size_t)(lf - p);
			if (n > 0 && p[n - 1] == '\r')
				n--;
			if (n > POP3_LINE_MAX)
				return -1;
			memcpy(S.line, p, n);
			S.line[n] = '\0';
			S.line_len = n;
			buf_consume(&S.in, (size_t)(lf - p) + 1);
			pop3_lock_touch(&S.lock);
			return 1;
		}
		if (S.in.len > POP3_LINE_MAX + 1)
			return -1;
		if (!read_more())
			return 0;
	}
}
