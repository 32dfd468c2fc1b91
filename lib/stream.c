/*
 * stream.c: buffered, bounded, timed socket I/O in the clear or over TLS (see stream.h).
 *
 * The descriptor is made non-blocking and every wait is a poll() bounded by a deadline
 * computed once per public call, so a call never takes longer than the stream's timeout no
 * matter how the peer dribbles its bytes. A negative timeout means no limit (for local pipes
 * whose peer is trusted), 0 means "only what is ready now". Over TLS, OpenSSL says which
 * direction it is waiting for (WANT_READ / WANT_WRITE) and we poll for exactly that.
 *
 * Clear-text writes use send(MSG_NOSIGNAL) so a vanished peer is EPIPE, never SIGPIPE; OpenSSL
 * writes with write(2), so TLS processes must ignore SIGPIPE (the daemons do).
 *
 * After STREAM_TIMEOUT or STREAM_ERR the position within the input is unspecified (a partly
 * read line is lost); callers end the session. Unflushed output is dropped by stream_free.
 */
#include "stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "util.h"

#define STREAM_RBUF_SIZE 16384
#define STREAM_WBUF_SIZE 16384

/* Internal result of a wait: try the I/O again. Distinct from every STREAM_* code. */
#define IO_RETRY 1

struct stream {
	int fd;
	SSL *ssl;		/* NULL while in the clear */
	size_t max_line;	/* terminator included; 0: only the line buffer's own limit */
	int timeout_ms;
	bool eof;		/* the peer has finished sending */
	bool skipping;		/* discarding the rest of an overlong line */
	bool not_socket;	/* send() said ENOTSOCK: plain write() it is */
	bool tls_failed;	/* fatal TLS error: SSL_shutdown must not be attempted */
	size_t rpos, rlen;	/* unread input is rbuf[rpos..rlen) */
	size_t wlen;		/* pending output is wbuf[0..wlen) */
	char rbuf[STREAM_RBUF_SIZE];
	char wbuf[STREAM_WBUF_SIZE];
};

struct stream *stream_new(int fd, size_t max_line, int timeout_ms)
{
	struct stream *s;

	if (fd_set_nonblock(fd, 1) < 0)
		return NULL;	/* not a usable descriptor; it stays the caller's */
	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->max_line = max_line;
	s->timeout_ms = timeout_ms;
	return s;
}

void stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	if (s->ssl != NULL) {
		/* Best effort close_notify: one non-blocking attempt, no waiting for the peer. */
		if (!s->tls_failed && SSL_is_init_finished(s->ssl))
			(void)SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		ERR_clear_error();
	}
	(void)close(s->fd);
	free(s);
}

void stream_set_timeout(struct stream *s, int timeout_ms)
{
	s->timeout_ms = timeout_ms;
}

int stream_fd(const struct stream *s)
{
	return s->fd;
}

SSL *stream_ssl(const struct stream *s)
{
	return s->ssl;
}

/* ---- waiting and raw I/O ----------------------------------------------------------------- */

static int64_t deadline_of(const struct stream *s)
{
	return s->timeout_ms < 0 ? INT64_MAX : mono_ms() + s->timeout_ms;
}

/* Wait until fd is ready for `events` or the deadline passes: IO_RETRY or STREAM_TIMEOUT /
 * STREAM_ERR. Error and hang-up conditions count as ready: the I/O call then reports them. */
static int wait_io(const struct stream *s, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = s->fd, .events = events, .revents = 0 };
		int wait = -1, r;

		if (deadline != INT64_MAX) {
			int64_t left = deadline - mono_ms();

			if (left <= 0)
				return STREAM_TIMEOUT;
			wait = left > INT_MAX ? INT_MAX : (int)left;
		}
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno != EINTR)
			return STREAM_ERR;
		if (r <= 0)
			continue;	/* EINTR, or the time is up: the top of the loop decides */
		if (pfd.revents & POLLNVAL) {
			errno = EBADF;
			return STREAM_ERR;
		}
		return IO_RETRY;
	}
}

/* After an SSL call returned r <= 0: wait for what OpenSSL needs and return IO_RETRY, or
 * STREAM_EOF for a clean close, or STREAM_ERR / STREAM_TIMEOUT. */
static int ssl_wait(struct stream *s, int r, int64_t deadline)
{
	int saved = errno;

	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return wait_io(s, POLLIN, deadline);
	case SSL_ERROR_WANT_WRITE:
		return wait_io(s, POLLOUT, deadline);
	case SSL_ERROR_ZERO_RETURN:
		return STREAM_EOF;
	case SSL_ERROR_SYSCALL:
		s->tls_failed = true;
		errno = saved ? saved : ECONNRESET;
		return STREAM_ERR;
	default:
		s->tls_failed = true;
		errno = EPROTO;
		return STREAM_ERR;
	}
}

/* Read what is available (at least 1 byte) into p: the count, STREAM_EOF or an error. */
static ssize_t io_read(struct stream *s, void *p, size_t n, int64_t deadline)
{
	for (;;) {
		ssize_t r;
		int w;

		if (s->ssl != NULL) {
			ERR_clear_error();
			r = SSL_read(s->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
			if (r > 0)
				return r;
			w = ssl_wait(s, (int)r, deadline);
		} else {
			r = read(s->fd, p, n);
			if (r >= 0)
				return r;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return STREAM_ERR;
			w = wait_io(s, POLLIN, deadline);
		}
		if (w != IO_RETRY)
			return w;
	}
}

/* Write some of p (at least 1 byte): the count, or STREAM_ERR / STREAM_TIMEOUT. */
static ssize_t io_write(struct stream *s, const void *p, size_t n, int64_t deadline)
{
	for (;;) {
		ssize_t r;
		int w;

		if (s->ssl != NULL) {
			ERR_clear_error();
			r = SSL_write(s->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
			if (r > 0)
				return r;
			w = ssl_wait(s, (int)r, deadline);
			if (w == STREAM_EOF) {
				errno = EPIPE;
				return STREAM_ERR;
			}
		} else {
			r = s->not_socket ? write(s->fd, p, n) : send(s->fd, p, n, MSG_NOSIGNAL);
			if (r > 0)
				return r;
			if (r < 0 && errno == ENOTSOCK && !s->not_socket) {
				s->not_socket = true;
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				return STREAM_ERR;
			w = wait_io(s, POLLOUT, deadline);
		}
		if (w != IO_RETRY)
			return w;
	}
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Refill the (empty) read buffer: bytes read, STREAM_EOF or an error. */
static ssize_t fill(struct stream *s, int64_t deadline)
{
	ssize_t r;

	if (s->eof)
		return STREAM_EOF;
	r = io_read(s, s->rbuf, sizeof(s->rbuf), deadline);
	if (r == 0)
		s->eof = true;
	if (r > 0) {
		s->rpos = 0;
		s->rlen = (size_t)r;
	}
	return r;
}

/* Add n bytes of the current line; false if that would make it too long. */
static bool line_append(const struct stream *s, struct buf *line, const char *p, size_t n)
{
	if (s->max_line > 0 && (line->len > s->max_line || n > s->max_line - line->len))
		return false;
	return buf_append(line, p, n) == 0;
}

ssize_t stream_readline(struct stream *s, struct buf *line)
{
	int64_t deadline = deadline_of(s);

	buf_reset(line);
	for (;;) {
		const char *start, *nl;
		size_t n;

		if (s->rpos == s->rlen) {
			ssize_t r = fill(s, deadline);

			if (r == STREAM_EOF && s->skipping) {
				s->skipping = false;
				return STREAM_TOOLONG;
			}
			if (r == STREAM_EOF)
				return line->len > 0 ? (ssize_t)line->len : STREAM_EOF;
			if (r < 0)
				return r;
		}
		start = s->rbuf + s->rpos;
		nl = memchr(start, '\n', s->rlen - s->rpos);
		n = nl ? (size_t)(nl - start) + 1 : s->rlen - s->rpos;
		if (!s->skipping && !line_append(s, line, start, n)) {
			s->skipping = true;
			buf_reset(line);
		}
		s->rpos += n;
		if (nl != NULL && s->skipping) {
			s->skipping = false;
			return STREAM_TOOLONG;
		}
		if (nl != NULL)
			return (ssize_t)line->len;
	}
}

ssize_t stream_read(struct stream *s, void *p, size_t n)
{
	size_t avail;

	if (n == 0)
		return 0;
	if (s->rpos == s->rlen) {
		int64_t deadline = deadline_of(s);
		ssize_t r;

		if (n >= sizeof(s->rbuf)) {	/* big reads skip the copy */
			if (s->eof)
				return STREAM_EOF;
			r = io_read(s, p, n > SSIZE_MAX ? SSIZE_MAX : n, deadline);
			if (r == 0)
				s->eof = true;
			return r;
		}
		r = fill(s, deadline);
		if (r <= 0)
			return r;
	}
	avail = s->rlen - s->rpos;
	if (n > avail)
		n = avail;
	memcpy(p, s->rbuf + s->rpos, n);
	s->rpos += n;
	return (ssize_t)n;
}

size_t stream_pending(const struct stream *s)
{
	size_t n = s->rlen - s->rpos;

	if (s->ssl != NULL) {
		int tls = SSL_pending(s->ssl);

		if (tls > 0)
			n += (size_t)tls;
	}
	return n;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Write out the buffer, keeping whatever could not be sent. */
static int flush_by(struct stream *s, int64_t deadline)
{
	size_t done = 0;
	int rc = 0;

	while (done < s->wlen) {
		ssize_t r = io_write(s, s->wbuf + done, s->wlen - done, deadline);

		if (r < 0) {
			rc = (int)r;
			break;
		}
		done += (size_t)r;
	}
	if (done > 0) {
		memmove(s->wbuf, s->wbuf + done, s->wlen - done);
		s->wlen -= done;
	}
	return rc;
}

int stream_flush(struct stream *s)
{
	return flush_by(s, deadline_of(s));
}

int stream_write(struct stream *s, const void *p, size_t n)
{
	const char *src = p;
	int64_t deadline = deadline_of(s);

	while (n > 0) {
		size_t chunk;

		if (s->wlen == 0 && n >= sizeof(s->wbuf)) {	/* big writes skip the copy */
			ssize_t r = io_write(s, src, n, deadline);

			if (r < 0)
				return (int)r;
			src += r;
			n -= (size_t)r;
			continue;
		}
		chunk = sizeof(s->wbuf) - s->wlen;
		if (chunk > n)
			chunk = n;
		memcpy(s->wbuf + s->wlen, src, chunk);
		s->wlen += chunk;
		src += chunk;
		n -= chunk;
		if (s->wlen == sizeof(s->wbuf)) {
			int rc = flush_by(s, deadline);

			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int stream_puts(struct stream *s, const char *str)
{
	return stream_write(s, str, strlen(str));
}

int stream_printf(struct stream *s, const char *fmt, ...)
{
	size_t room = sizeof(s->wbuf) - s->wlen;
	va_list ap, again;
	char *tmp;
	int n, rc;

	/* Format straight into the write buffer when it fits; otherwise into the heap. */
	va_start(ap, fmt);
	va_copy(again, ap);
	n = vsnprintf(s->wbuf + s->wlen, room, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < room) {
		va_end(again);
		s->wlen += (size_t)n;
		return 0;
	}
	if (n < 0) {
		va_end(again);
		return STREAM_ERR;
	}
	tmp = xmalloc((size_t)n + 1);
	(void)vsnprintf(tmp, (size_t)n + 1, fmt, again);
	va_end(again);
	rc = stream_write(s, tmp, (size_t)n);
	free(tmp);
	return rc;
}

/* ---- STARTTLS ---------------------------------------------------------------------------- */

/* Client side: SNI and, when the context verifies, the name the certificate must carry. An IP
 * literal gets no SNI (RFC 6066) and is checked against the certificate's IP addresses. */
static int client_names(SSL *ssl, SSL_CTX *ctx, const char *name)
{
	unsigned char addr[sizeof(struct in6_addr)];
	bool is_ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
	bool verify = (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) != 0;

	if (!is_ip && SSL_set_tlsext_host_name(ssl, name) != 1)
		return -1;
	if (verify && !is_ip && SSL_set1_host(ssl, name) != 1)
		return -1;
	if (verify && is_ip && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
		return -1;
	return 0;
}

static int start_tls(struct stream *s, SSL_CTX *ctx, bool server, const char *sni)
{
	int64_t deadline = deadline_of(s);
	SSL *ssl;
	int rc;

	if (s->ssl != NULL) {
		errno = EINVAL;
		return STREAM_ERR;
	}
	/* Our clear-text go-ahead must reach the peer before the handshake. */
	rc = flush_by(s, deadline);
	if (rc < 0)
		return rc;
	/* STARTTLS injection defence: whatever the peer pipelined after the command was sent in
	 * the clear and must never be taken as if it had arrived inside TLS. */
	s->rpos = s->rlen = 0;
	s->skipping = false;

	ERR_clear_error();
	ssl = SSL_new(ctx);
	if (ssl == NULL)
		return STREAM_ERR;
	SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (SSL_set_fd(ssl, s->fd) != 1 || (!server && sni && client_names(ssl, ctx, sni) < 0)) {
		SSL_free(ssl);
		errno = EPROTO;
		return STREAM_ERR;
	}
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	s->ssl = ssl;
	s->tls_failed = false;
	for (;;) {
		int r;

		ERR_clear_error();
		r = SSL_do_handshake(ssl);
		if (r == 1)
			return 0;
		rc = ssl_wait(s, r, deadline);
		if (rc == IO_RETRY)
			continue;
		if (rc == STREAM_EOF) {
			errno = ECONNRESET;
			rc = STREAM_ERR;
		}
		break;
	}
	/* Leave the OpenSSL error queue for the caller's tls_error_string(). */
	s->ssl = NULL;
	SSL_free(ssl);
	return rc;
}

int stream_starttls_server(struct stream *s, SSL_CTX *ctx)
{
	return start_tls(s, ctx, true, NULL);
}

int stream_starttls_client(struct stream *s, SSL_CTX *ctx, const char *sni)
{
	return start_tls(s, ctx, false, sni);
}
