/*
 * headers.c: what postern-virtual needs from the message's header section, and the lines it
 * adds in front of it. Mail loops are caught as Postfix does: a message whose header already
 * says "Delivered-To: rcpt" has been here before. Only the first VIRTUAL_HEADER_MAX bytes
 * are searched (a loop adds its Delivered-To at the top, so it is always within them).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"
#include "virtual.h"

int headers_read(struct vreq *r)
{
	const struct deliver_request *q = &r->req;
	size_t want = q->msg_len < VIRTUAL_HEADER_MAX ? (size_t)q->msg_len : VIRTUAL_HEADER_MAX;
	size_t got = 0;

	r->headers = xmalloc(want + 1);
	while (got < want) {
		ssize_t n = pread(q->fd, r->headers + got, want - got, q->msg_off + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			free(r->headers);
			r->headers = NULL;
			return -1;
		}
		got += (size_t)n;
	}
	r->headers[got] = '\0';
	r->headers_len = got;
	return 0;
}

/* Length of the line at p (without its LF or CRLF) within end. */
static size_t line_len(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	size_t n = lf ? (size_t)(lf - p) : (size_t)(end - p);

	return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

/* Does one Delivered-To value (after the colon, possibly folded) name addr. */
static bool value_names(const char *v, size_t n, const char *addr)
{
	size_t alen = strlen(addr);

	while (n > 0 && strchr(" \t\r\n", *v)) {
		v++;
		n--;
	}
	while (n > 0 && strchr(" \t\r\n", v[n - 1]))
		n--;
	if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
		v++;
		n -= 2;
	}
	return n == alen && strncasecmp(v, addr, n) == 0;
}

bool headers_delivered_to(const struct vreq *r, const char *addr)
{
	static const char name[] = "Delivered-To:";
	const char *p = r->headers, *end = r->headers + r->headers_len;

	while (p < end) {
		size_t n = line_len(p, end);
		const char *next = p + n;

		/* One address per field, on one line, as Postfix and Dovecot write it. */
		if (n >= sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0 &&
		    value_names(p + sizeof(name) - 1, n - (sizeof(name) - 1), addr))
			return true;
		if (n == 0)
			return false;		/* the blank line ending the header section */
		p = next;
		if (p < end && *p == '\r')
			p++;
		if (p < end && *p == '\n')
			p++;
	}
	return false;
}

int headers_prepend(const char *sender, const char *rcpt, char *out, size_t outsize)
{
	if (str_fmt(out, outsize, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", sender, rcpt) < 0)
		return -1;
	return (int)strlen(out);
}
