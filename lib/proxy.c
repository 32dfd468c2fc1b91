/*
 * proxy.c: the login process's byte pump (see proxy.h).
 *
 * One poll(2) loop over the client and the session socket, both non-blocking. Client reads
 * go through the stream with a zero timeout, so whatever the stream had already buffered
 * comes first and TLS records are decrypted by the same SSL object; client writes go to
 * SSL_write or send directly (the stream's output was flushed first). OpenSSL may need the
 * other direction to make progress (WANT_WRITE while reading, WANT_READ while writing): the
 * poll events follow what it asked for. A failed SSL_write is retried with the same length,
 * as OpenSSL requires; the stream set SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER.
 */
#include "proxy.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "util.h"

/* One direction's bytes: data[off..len) waits to be written. */
struct pipe_buf {
	char data[PROXY_BUF_SIZE];
	size_t off, len;
};

struct pump {
	struct stream *s;
	SSL *ssl;
	int cfd, sfd;
	struct pipe_buf up;		/* client -> session */
	struct pipe_buf down;		/* session -> client */
	short client_read_ev;		/* what the last client read waits for */
	short client_write_ev;		/* what the last client write waits for */
	size_t ssl_retry_len;		/* length of an SSL_write to repeat, or 0 */
	bool client_done, session_done;	/* closed or failed: no more reading from it */
	bool client_write_failed, session_write_failed;
	bool ended;			/* st->end is set */
	int64_t drain_deadline;
	struct proxy_stats *st;
};

static void finish(struct pump *p, enum proxy_end why)
{
	if (p->ended)
		return;
	p->ended = true;
	p->st->end = why;
	p->drain_deadline = mono_ms() + PROXY_DRAIN_MS;
}

static size_t room(const struct pipe_buf *b)
{
	return b->off == b->len ? sizeof(b->data) : sizeof(b->data) - b->len;
}

static size_t waiting(const struct pipe_buf *b)
{
	return b->len - b->off;
}

static char *tail(struct pipe_buf *b)
{
	if (b->off == b->len)
		b->off = b->len = 0;
	return b->data + b->len;
}

/* ---- the client side ---------------------------------------------------------------------- */

/* true if something was read or the side ended. */
static bool client_read(struct pump *p)
{
	size_t n = room(&p->up);
	ssize_t r;

	if (p->client_done || n == 0)
		return false;
	r = stream_read(p->s, tail(&p->up), n);
	if (r > 0) {
		p->up.len += (size_t)r;
		return true;
	}
	if (r == STREAM_TIMEOUT) {
		p->client_read_ev = p->ssl && SSL_want_write(p->ssl) ? POLLOUT : POLLIN;
		return false;
	}
	p->client_done = true;
	finish(p, r == STREAM_EOF || errno == ECONNRESET ? PROXY_CLIENT_CLOSED : PROXY_CLIENT_ERROR);
	return true;
}

/* Write some of `down` to the client: bytes written, 0 if it would block, -1 on error. */
static ssize_t client_send(struct pump *p, const char *data, size_t n)
{
	ssize_t r;

	if (p->ssl) {
		int len = (int)(p->ssl_retry_len ? p->ssl_retry_len : (n > INT_MAX ? INT_MAX : n));

		ERR_clear_error();
		r = SSL_write(p->ssl, data, len);
		if (r > 0) {
			p->ssl_retry_len = 0;
			return r;
		}
		p->ssl_retry_len = (size_t)len;
		switch (SSL_get_error(p->ssl, (int)r)) {
		case SSL_ERROR_WANT_WRITE: p->client_write_ev = POLLOUT; return 0;
		case SSL_ERROR_WANT_READ: p->client_write_ev = POLLIN; return 0;
		default: return -1;
		}
	}
	r = send(p->cfd, data, n, MSG_NOSIGNAL);
	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		p->client_write_ev = POLLOUT;
		return 0;
	}
	return -1;
}

static bool client_write(struct pump *p)
{
	ssize_t r;

	if (p->client_write_failed || waiting(&p->down) == 0)
		return false;
	r = client_send(p, p->down.data + p->down.off, waiting(&p->down));
	if (r > 0) {
		p->down.off += (size_t)r;
		p->st->session_bytes += (uint64_t)r;
		return true;
	}
	if (r == 0)
		return false;
	p->client_write_failed = true;
	p->client_done = true;
	finish(p, PROXY_CLIENT_ERROR);
	return true;
}

/* ---- the session side --------------------------------------------------------------------- */

static bool session_read(struct pump *p)
{
	size_t n = room(&p->down);
	ssize_t r;

	if (p->session_done || n == 0)
		return false;
	r = read(p->sfd, tail(&p->down), n);
	if (r > 0) {
		p->down.len += (size_t)r;
		return true;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false;
	p->session_done = true;
	finish(p, r == 0 || errno == ECONNRESET ? PROXY_SESSION_CLOSED : PROXY_SESSION_ERROR);
	return true;
}

static bool session_write(struct pump *p)
{
	ssize_t r;

	if (p->session_write_failed || waiting(&p->up) == 0)
		return false;
	r = send(p->sfd, p->up.data + p->up.off, waiting(&p->up), MSG_NOSIGNAL);
	if (r > 0) {
		p->up.off += (size_t)r;
		p->st->client_bytes += (uint64_t)r;
		return true;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false;
	p->session_write_failed = true;
	p->session_done = true;
	finish(p, PROXY_SESSION_CLOSED);
	return true;
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* Once a side has ended, the pump only delivers what is already buffered for the other. */
static bool done(const struct pump *p)
{
	if (!p->ended)
		return false;
	if (mono_ms() >= p->drain_deadline)
		return true;
	if (p->st->end == PROXY_CLIENT_CLOSED || p->st->end == PROXY_CLIENT_ERROR)
		return waiting(&p->up) == 0 || p->session_write_failed;
	return waiting(&p->down) == 0 || p->client_write_failed;
}

static void move_all(struct pump *p)
{
	bool moved;

	do {
		moved = false;
		if (!p->ended || p->session_done)
			moved |= client_write(p);
		if (!p->ended || p->client_done)
			moved |= session_write(p);
		if (!p->ended) {
			moved |= client_read(p);
			moved |= session_read(p);
		}
	} while (moved && !done(p));
}

static int poll_timeout(const struct pump *p)
{
	int64_t left;

	if (!p->ended && !p->client_done && room(&p->up) > 0 && stream_pending(p->s) > 0)
		return 0;
	if (!p->ended)
		return -1;
	left = p->drain_deadline - mono_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

void proxy_run(struct stream *client, int session_fd, struct proxy_stats *st)
{
	static struct pump p;

	memset(&p, 0, sizeof(p));
	memset(st, 0, sizeof(*st));
	p.s = client;
	p.ssl = stream_ssl(client);
	p.cfd = stream_fd(client);
	p.sfd = session_fd;
	p.st = st;
	if (stream_flush(client) < 0)
		finish(&p, PROXY_CLIENT_ERROR);
	stream_set_timeout(client, 0);
	(void)fd_set_nonblock(session_fd, 1);
	while (!done(&p)) {
		struct pollfd fds[2] = { { .fd = p.cfd }, { .fd = p.sfd } };

		/* What the next attempts wait for unless OpenSSL asks for the other direction. */
		p.client_read_ev = POLLIN;
		p.client_write_ev = POLLOUT;
		move_all(&p);
		if (done(&p))
			break;
		if (!p.ended && !p.client_done && room(&p.up) > 0)
			fds[0].events |= p.client_read_ev;
		if (waiting(&p.down) > 0 && !p.client_write_failed)
			fds[0].events |= p.client_write_ev;
		if (!p.ended && !p.session_done && room(&p.down) > 0)
			fds[1].events |= POLLIN;
		if (waiting(&p.up) > 0 && !p.session_write_failed)
			fds[1].events |= POLLOUT;
		/* POLLHUP/POLLERR come anyway and the next read or write reports them; a side
		 * nothing is wanted from is left out, or its hang-up would spin the loop. */
		for (int i = 0; i < 2; i++)
			if (fds[i].events == 0)
				fds[i].fd = -1;
		if (poll(fds, 2, poll_timeout(&p)) < 0 && errno != EINTR)
			finish(&p, PROXY_CLIENT_ERROR);
	}
}
