/*
 * mutf7.c: modified UTF-7 <-> UTF-8 for IMAP mailbox names (see mutf7.h). The decoder and
 * the validator are one function (the validator passes no output buffer), so what
 * mailstore accepts as a name is exactly what decodes.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "base64.h"
#include "mutf7.h"

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
	return base64_value(c, '+', ',');
}

static int is_direct(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Append code point cp as UTF-8 (out may be NULL: validation only). */
static int put_utf8(struct buf *out, uint32_t cp)
{
	char u[4];
	size_t n;

	if (out == NULL)
		return 0;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, u, n);
}

/* Decode one BASE64 run starting after '&' at *pos; *pos ends after its '-'. */
static int decode_run(const char *in, size_t len, size_t *pos, struct buf *out)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	size_t i = *pos, start = *pos;
	int v;

	for (; i < len && in[i] != '-'; i++) {
		v = b64_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = (bits >> nbits) & 0xffff;

		bits &= (1u << nbits) - 1;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return -1;
			if (put_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00)) < 0)
				return -1;
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return -1;
		} else if (unit == 0 || is_direct(unit) || put_utf8(out, unit) < 0) {
			return -1;
		}
	}
	/* Terminated, not empty, whole units only, padding bits zero, no dangling surrogate. */
	if (i == len || i == start || nbits >= 6 || bits != 0 || high != 0)
		return -1;
	*pos = i + 1;
	return 0;
}

static int decode(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;
	int after_run = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (!is_direct(c))
			return -1;
		if (c != '&') {
			if ((out != NULL && buf_append_char(out, (char)c) < 0))
				return -1;
			i++;
			after_run = 0;
			continue;
		}
		if (i + 1 < len && in[i + 1] == '-') {
			if (out != NULL && buf_append_char(out, '&') < 0)
				return -1;
			i += 2;
			after_run = 0;
			continue;
		}
		if (after_run)
			return -1;	/* "&..-&..-" must have been one run */
		i++;
		if (decode_run(in, len, &i, out) < 0)
			return -1;
		after_run = 1;
	}
	return 0;
}

int mutf7_to_utf8(const char *in, size_t len, struct buf *out)
{
	if (decode(in, len, out) < 0) {
		if (errno != EMSGSIZE)
			errno = EINVAL;
		return -1;
	}
	return 0;
}

bool mutf7_valid(const char *in, size_t len)
{
	return in != NULL && decode(in, len, NULL) == 0;
}

/* ---- encoding ---------------------------------------------------------------------- */

/* The next code point of UTF-8 in[len] at *pos, strictly; -1 if malformed. */
static int next_utf8(const unsigned char *in, size_t len, size_t *pos, uint32_t *cp)
{
	static const uint32_t min_cp[] = { 0, 0, 0x80, 0x800, 0x10000 };
	unsigned char c = in[*pos];
	size_t n, k;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		(*pos)++;
		return 0;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 2;
		v = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		v = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		v = c & 0x07;
	} else {
		return -1;
	}
	if (*pos + n > len)
		return -1;
	for (k = 1; k < n; k++) {
		if ((in[*pos + k] & 0xc0) != 0x80)
			return -1;
		v = (v << 6) | (in[*pos + k] & 0x3f);
	}
	if (v < min_cp[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return -1;
	*cp = v;
	*pos += n;
	return 0;
}

struct b64_writer {
	struct buf *out;
	uint32_t bits;
	unsigned nbits;
};

static int b64_put_unit(struct b64_writer *w, uint32_t unit)
{
	w->bits = (w->bits << 16) | unit;
	w->nbits += 16;
	while (w->nbits >= 6) {
		w->nbits -= 6;
		if (buf_append_char(w->out, b64chars[(w->bits >> w->nbits) & 0x3f]) < 0)
			return -1;
	}
	w->bits &= (1u << w->nbits) - 1;
	return 0;
}

static int b64_finish(struct b64_writer *w)
{
	if (w->nbits > 0 &&
	    buf_append_char(w->out, b64chars[(w->bits << (6 - w->nbits)) & 0x3f]) < 0)
		return -1;
	w->bits = 0;
	w->nbits = 0;
	return buf_append_char(w->out, '-');
}

static int encode_cp(struct b64_writer *w, uint32_t cp)
{
	if (cp < 0x10000)
		return b64_put_unit(w, cp);
	cp -= 0x10000;
	if (b64_put_unit(w, 0xd800 + (cp >> 10)) < 0)
		return -1;
	return b64_put_unit(w, 0xdc00 + (cp & 0x3ff));
}

int utf8_to_mutf7(const char *in, size_t len, struct buf *out)
{
	const unsigned char *u = (const unsigned char *)in;
	struct b64_writer w = { .out = out };
	int in_run = 0, rc = 0;
	size_t i = 0;
	uint32_t cp;

	while (i < len && rc == 0) {
		if (next_utf8(u, len, &i, &cp) < 0 || cp == 0) {
			errno = EINVAL;
			return -1;
		}
		if (is_direct(cp)) {
			if (in_run)
				rc = b64_finish(&w);
			in_run = 0;
			if (rc == 0)
				rc = cp == '&' ? buf_append(out, "&-", 2) : buf_append_char(out, (char)cp);
		} else {
			if (!in_run)
				rc = buf_append_char(out, '&');
			in_run = 1;
			if (rc == 0)
				rc = encode_cp(&w, cp);
		}
	}
	if (rc == 0 && in_run)
		rc = b64_finish(&w);
	return rc;
}
