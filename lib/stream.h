/*
 * stream.h: buffered, bounded, timed I/O on a socket, in the clear or over TLS. Protocol
 * daemons read commands with stream_readline, which enforces a hard line limit and hands back
 * the line with its raw terminator so the caller can tell CRLF from a bare LF (SMTP
 * smuggling). Every operation has a deadline: a peer that stops talking is a timeout, never a
 * hang. Starting TLS discards whatever the peer pipelined after the STARTTLS command.
 */
#ifndef POSTERN_STREAM_H
#define POSTERN_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <openssl/ssl.h>

#include "buf.h"

enum {
	STREAM_EOF = 0,
	STREAM_ERR = -1,	/* I/O or TLS error; errno may tell more */
	STREAM_TIMEOUT = -2,
	STREAM_TOOLONG = -3,	/* line over the limit: rest of the line was skipped */
};

struct stream;

/* Wrap fd (the stream owns it and closes it in stream_free). */
struct stream *stream_new(int fd, size_t max_line, int timeout_ms);
void stream_free(struct stream *s);
void stream_set_timeout(struct stream *s, int timeout_ms);
int stream_fd(const struct stream *s);
SSL *stream_ssl(const struct stream *s);

/* Read one line into `line` (reset first), terminator included ("\r\n" or "\n"; a final line
 * without terminator at EOF is returned as is). Returns its length > 0, STREAM_EOF, STREAM_ERR,
 * STREAM_TIMEOUT or STREAM_TOOLONG. */
ssize_t stream_readline(struct stream *s, struct buf *line);
/* Read up to n bytes (at least 1 unless EOF/error); same return codes. */
ssize_t stream_read(struct stream *s, void *p, size_t n);
/* Bytes already buffered and readable without blocking. */
size_t stream_pending(const struct stream *s);

/* Writes are buffered until stream_flush (or the buffer fills). 0 or STREAM_ERR/TIMEOUT. */
int stream_write(struct stream *s, const void *p, size_t n);
int stream_puts(struct stream *s, const char *str);
int stream_printf(struct stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int stream_flush(struct stream *s);

/* TLS handshake as server/client. Any buffered unread input is discarded first. 0 or
 * STREAM_ERR / STREAM_TIMEOUT. */
int stream_starttls_server(struct stream *s, SSL_CTX *ctx);
int stream_starttls_client(struct stream *s, SSL_CTX *ctx, const char *sni);

#endif
