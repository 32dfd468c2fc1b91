/*
 * msgheaders.c: reading a queued message's header section and finding Delivered-To: in it
 * (see msgheaders.h). Shared by postern-virtual and postern-local.
 */
#include "msgheaders.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

int msgheaders_read(int fd, off_t off, uint64_t len, size_t max, char **out, size_t *outlen)
{
	size_t want = len < max ? (size_t)len : max;
	size_t got = 0;
	char *data = xmalloc(want + 1);

	while (got < want) {
		ssize_t n = pread(fd, data + got, want - got, off + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			free(data);
			return -1;
		}
		got += (size_t)n;
	}
	data[got] = '\0';
	*out = data;
	*outlen = got;
	return 0;
}

/* Length of the line at p (without its LF or CRLF) within end. */
static size_t line_len(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	size_t n = lf ? (size_t)(lf - p) : (size_t)(end - p);

	return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Does one Delivered-To value (after the colon) name addr. */
static bool value_names(const char *v, size_t n, const char *addr)
{
	size_t alen = strlen(addr);

	while (n > 0 && is_space(*v)) {
		v++;
		n--;
	}
	while (n > 0 && is_space(v[n - 1]))
		n--;
	if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
		v++;
		n -= 2;
	}
	return n == alen && strncasecmp(v, addr, n) == 0;
}

bool msgheaders_delivered_to(const char *hdr, size_t len, const char *addr)
{
	static const char name[] = "Delivered-To:";
	const char *p = hdr, *end = hdr + len;

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
