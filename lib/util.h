/*
 * util.h: small helpers every Postern program uses: allocation that cannot return NULL,
 * bounded string copies, whole-buffer reads and writes that survive EINTR and short
 * transfers, descriptor flags and a monotonic clock.
 */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation: on failure these log a fatal error and exit; callers never see NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Copy src into dst[dstsize] always NUL-terminated; returns -1 if src did not fit. */
int str_copy(char *dst, size_t dstsize, const char *src);
/* v in decimal, without printf (hot loops write many numbers): the digits are placed at the
 * end of out; returns where they start, *len their count. */
#define DEC_U64_SIZE 20
const char *dec_u64(char out[DEC_U64_SIZE], unsigned long long v, size_t *len);
/* snprintf that returns -1 on truncation or error instead of a length. */
int str_fmt(char *dst, size_t dstsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parse a whole decimal string into [min,max]; -1 on junk, overflow or range. */
int str_to_ll(const char *s, long long min, long long max, long long *out);

/* Write all n bytes, retrying on EINTR and short writes; -1 on error. */
int write_all(int fd, const void *p, size_t n);
/* Read exactly n bytes unless EOF comes first; returns bytes read or -1. */
ssize_t read_full(int fd, void *p, size_t n);
/* Read a whole (small) file into a NUL-terminated heap buffer; -1 if larger than max. */
int read_file(const char *path, size_t max, char **out, size_t *outlen);

int fd_set_nonblock(int fd, int on);
int fd_set_cloexec(int fd, int on);

/* Milliseconds on CLOCK_MONOTONIC (for timeouts) and on the wall clock. */
int64_t mono_ms(void);
int64_t wall_ms(void);

#endif
