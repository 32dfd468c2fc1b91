/*
 * pop3.c: Dovecot-compatible UIDL strings and the RETR/TOP transfer encoding (see pop3.h).
 */
#include "pop3.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define WIDTH_MAX	1000		/* a template's width or offset; anything near is silly */
#define VALUE_MAX	512		/* one expanded variable */

/* ---- UIDL ----------------------------------------------------------------------------------- */

/* One "%..." directive, parsed. */
struct directive {
	int offset, width;
	bool zero;
	char mods[8];			/* X L U, in order */
	char key;			/* 'u' 'v' 'f' '%' */
};

struct uidl_vars {
	uint32_t uid, uidvalidity;
	const char *filename;
};

static int fail(char *err, size_t errlen, const char *what)
{
	if (err != NULL)
		(void)str_copy(err, errlen, what);
	return -1;
}

/* Digits into *n (bounded); returns the new position. */
static const char *digits(const char *p, int *n)
{
	*n = 0;
	while (*p >= '0' && *p <= '9') {
		if (*n < WIDTH_MAX * 10)
			*n = *n * 10 + (*p - '0');
		p++;
	}
	return p;
}

static char long_key(const char *name, size_t len)
{
	static const struct { const char *name; char key; } keys[] = {
		{ "uid", 'u' }, { "uidvalidity", 'v' }, { "filename", 'f' },
	};

	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
			return keys[i].key;
	return '\0';
}

/* The width part: [-][0]N[.[0][-]N] (Dovecot: a leading '-' only counts before a '.'). */
static const char *parse_width(const char *p, struct directive *d)
{
	int sign = 1, n;

	if (*p == '-') {
		sign = -1;
		p++;
	}
	if (*p == '0') {
		d->zero = true;
		p++;
	}
	p = digits(p, &n);
	d->width = n;
	if (*p == '.') {
		d->offset = sign * n;
		d->zero = false;
		sign = 1;
		p++;
		if (*p == '0') {
			d->zero = true;
			p++;
		}
		if (*p == '-') {
			sign = -1;
			p++;
		}
		p = digits(p, &n);
		d->width = sign * n;
	}
	return p;
}

/* Parse the directive after a '%'; the position after it, or NULL (err set). */
static const char *parse_directive(const char *p, struct directive *d, char *err, size_t errlen)
{
	size_t nmods = 0;

	memset(d, 0, sizeof(*d));
	p = parse_width(p, d);
	if (d->width > WIDTH_MAX || d->width < -WIDTH_MAX || d->offset > WIDTH_MAX ||
	    d->offset < -WIDTH_MAX)
		return fail(err, errlen, "width or offset too large"), NULL;
	while (*p && strchr("XLUERHNMDT", *p)) {
		if (!strchr("XLU", *p) || nmods + 1 >= sizeof(d->mods))
			return fail(err, errlen, "unsupported modifier (only X, L and U)"), NULL;
		d->mods[nmods++] = *p++;
	}
	if (*p == '{') {
		const char *close = strchr(p, '}');

		if (close == NULL || (d->key = long_key(p + 1, (size_t)(close - p - 1))) == '\0')
			return fail(err, errlen, "unknown variable (want %{uid}, %{uidvalidity}, "
				    "%{filename})"), NULL;
		return close + 1;
	}
	if (*p == '\0' || !strchr("uvf%", *p))
		return fail(err, errlen, *p == 'm' || *p == 'g' ?
			    "%m and %g are not supported (use %u, %v, %f)" :
			    "unknown variable (want %u, %v, %f or %%)"), NULL;
	d->key = *p;
	return p + 1;
}

static int value_of(const struct directive *d, const struct uidl_vars *v, char *out,
		    size_t outlen)
{
	switch (d->key) {
	case 'u': return str_fmt(out, outlen, "%u", v->uid);
	case 'v': return str_fmt(out, outlen, "%u", v->uidvalidity);
	case '%': return str_copy(out, outlen, "%");
	default:
		if (v->filename == NULL)
			return -1;
		/* the base name: up to the ":2," of the flags */
		if (strcspn(v->filename, ":") >= outlen)
			return -1;
		(void)str_fmt(out, outlen, "%.*s", (int)strcspn(v->filename, ":"), v->filename);
		return 0;
	}
}

/* X: the decimal value as lower-case hexadecimal (0 if it is not a number). */
static void to_hex(char *s, size_t size)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || *s == '-')
		n = 0;
	(void)str_fmt(s, size, "%llx", n);
}

/* Apply the modifiers, offset and width to val; append to out. */
static int emit(const struct directive *d, char *val, struct buf *out)
{
	const char *s = val;
	size_t len;

	for (const char *m = d->mods; *m; m++) {
		if (*m == 'X')
			to_hex(val, VALUE_MAX);
		for (char *c = val; *c && *m != 'X'; c++)
			*c = (char)(*m == 'L' ? tolower((unsigned char)*c) : toupper((unsigned char)*c));
	}
	len = strlen(s);
	if (d->offset < 0)
		s += len > (size_t)-d->offset ? len - (size_t)-d->offset : 0;
	else
		s += (size_t)d->offset < len ? (size_t)d->offset : len;
	len = strlen(s);
	if (d->width == 0)
		return buf_append(out, s, len);
	if (d->zero) {		/* pad, never truncate */
		for (size_t n = len; n < (size_t)d->width; n++)
			if (buf_append_char(out, '0') < 0)
				return -1;
		return buf_append(out, s, len);
	}
	if (d->width < 0)
		return buf_append(out, s, len > (size_t)-d->width ? len - (size_t)-d->width : 0);
	return buf_append(out, s, len < (size_t)d->width ? len : (size_t)d->width);
}

static int expand(const char *format, const struct uidl_vars *v, struct buf *out, char *err,
		  size_t errlen)
{
	char val[VALUE_MAX];
	struct directive d;

	for (const char *p = format; *p; ) {
		if (*p != '%') {
			if (buf_append_char(out, *p++) < 0)
				return fail(err, errlen, "result too long");
			continue;
		}
		p = parse_directive(p + 1, &d, err, errlen);
		if (p == NULL)
			return -1;
		if (value_of(&d, v, val, sizeof(val)) < 0)
			return fail(err, errlen, "no value for %f");
		if (emit(&d, val, out) < 0)
			return fail(err, errlen, "result too long");
	}
	return 0;
}

static bool valid_uidl(const struct buf *b)
{
	if (b->len == 0 || b->len > POP3_UIDL_MAX)
		return false;
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] < 0x21 || (unsigned char)b->data[i] > 0x7e)
			return false;
	return true;
}

int pop3_uidl_check(const char *format, char *err, size_t errlen)
{
	struct uidl_vars v = { 4294967295u, 4294967295u, "1700000000.M1P1Q1.host,S=1,W=1:2,S" };
	struct buf out;
	int rc;

	buf_init(&out, 4 * WIDTH_MAX);
	rc = expand(format, &v, &out, err, errlen);
	if (rc == 0 && !valid_uidl(&out))
		rc = fail(err, errlen, "the result is not 1 to 70 printable characters "
			  "without spaces (RFC 1939)");
	buf_free(&out);
	return rc;
}

int pop3_uidl(const char *format, uint32_t uid, uint32_t uidvalidity, const char *filename,
	      char *out, size_t outlen)
{
	struct uidl_vars v = { uid, uidvalidity, filename };
	struct buf b;
	int rc;

	buf_init(&b, 4 * WIDTH_MAX);
	rc = expand(format, &v, &b, NULL, 0);
	if (rc == 0 && (!valid_uidl(&b) || str_copy(out, outlen, buf_cstr(&b)) < 0))
		rc = -1;
	buf_free(&b);
	return rc;
}

/* ---- the transfer encoding ------------------------------------------------------------------ */

void pop3_encoder_init(struct pop3_encoder *e, bool top, uint64_t max_body_lines)
{
	memset(e, 0, sizeof(*e));
	e->top = top;
	e->body_lines_left = max_body_lines;
	e->last = '\n';
}

/* A line ended: the header's end, or one more body line for TOP. */
static void line_done(struct pop3_encoder *e)
{
	if (!e->in_body) {
		if (e->line_state <= 1) {	/* "" or "\r": the empty line */
			e->in_body = true;
			e->done = e->top && e->body_lines_left == 0;
		}
	} else if (e->top && --e->body_lines_left == 0) {
		e->done = true;
	}
	e->line_state = 0;
}

int pop3_encode(struct pop3_encoder *e, const char *in, size_t n, struct buf *out)
{
	size_t i = 0;

	while (i < n && !e->done) {
		const char *lf = memchr(in + i, '\n', n - i);
		size_t end = lf ? (size_t)(lf - in) : n, span = end - i;

		if (e->last == '\n' && in[i] == '.' && buf_append_char(out, '.') < 0)
			return -1;
		if (span > 0) {
			if (buf_append(out, in + i, span) < 0)
				return -1;
			e->line_state = e->line_state == 0 && span == 1 && in[i] == '\r' ? 1 : 2;
			e->last = in[end - 1];
		}
		if (lf == NULL)
			break;
		if ((e->last != '\r' && buf_append_char(out, '\r') < 0) ||
		    buf_append_char(out, '\n') < 0)
			return -1;
		e->last = '\n';
		line_done(e);
		i = end + 1;
	}
	return 0;
}

int pop3_encode_end(struct pop3_encoder *e, struct buf *out)
{
	if (e->last != '\n') {
		e->last = '\n';
		return buf_append(out, "\r\n", 2);
	}
	return 0;
}
