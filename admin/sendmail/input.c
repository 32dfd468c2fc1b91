/*
 * input.c: standard input as lines, for the message (-bm) and the SMTP dialogue (-bs). Its
 * own buffer rather than stdio, so a line's length is bounded by the caller's struct buf
 * limit and nothing is read ahead beyond what one read(2) returns.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "sendmail.h"

static struct {
	char buf[64 * 1024];
	size_t off, len;
} IN;

/* More input: > 0 bytes, 0 end of input, -1 error. */
static ssize_t fill(void)
{
	ssize_t r;

	do
		r = read(0, IN.buf, sizeof(IN.buf));
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		IN.off = 0;
		IN.len = (size_t)r;
	}
	return r;
}

int input_line(struct buf *line)
{
	bool any = false;

	for (;;) {
		const char *start, *nl;
		size_t avail, take;

		if (IN.off == IN.len) {
			ssize_t r = fill();

			if (r < 0)
				return -1;
			if (r == 0)
				return any ? 2 : 0;
		}
		start = IN.buf + IN.off;
		avail = IN.len - IN.off;
		nl = memchr(start, '\n', avail);
		take = nl ? (size_t)(nl - start) : avail;
		if (buf_append(line, start, take) < 0)
			return -1;	/* EMSGSIZE; the bytes stay unread */
		any = true;
		IN.off += take + (nl ? 1 : 0);
		if (nl)
			return 1;
	}
}

void input_skip_line(void)
{
	for (;;) {
		const char *nl;

		if (IN.off == IN.len && fill() <= 0)
			return;
		nl = memchr(IN.buf + IN.off, '\n', IN.len - IN.off);
		if (nl) {
			IN.off = (size_t)(nl - IN.buf) + 1;
			return;
		}
		IN.off = IN.len;
	}
}
