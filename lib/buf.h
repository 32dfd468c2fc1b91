/*
 * buf.h: a growable byte buffer with a hard size limit. Every buffer that holds network or
 * file input is a struct buf with an explicit limit, so no input can make a daemon grow
 * without bound. The data is always NUL-terminated for convenience but carries its length,
 * so embedded NUL bytes are preserved.
 */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H

#include <stddef.h>

struct buf {
	char *data;	/* NULL until the first append */
	size_t len;	/* bytes in use, not counting the trailing NUL */
	size_t cap;	/* bytes allocated */
	size_t limit;	/* len may never exceed this */
};

void buf_init(struct buf *b, size_t limit);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Append n bytes; -1 with errno EMSGSIZE if that would pass the limit (nothing appended). */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_char(struct buf *b, char c);
/* Append v in decimal (what "%llu" would give, without printf's cost in hot loops). */
int buf_append_u64(struct buf *b, unsigned long long v);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (n > len drops everything). */
void buf_consume(struct buf *b, size_t n);
/* Never NULL: "" for an empty buffer. */
const char *buf_cstr(const struct buf *b);

#endif
