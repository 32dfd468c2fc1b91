/*
 * mime_decode.c: turning message text into UTF-8 for SEARCH: RFC 2047 encoded words in
 * header values, the base64 and quoted-printable transfer encodings (RFC 2045 §6) of bodies,
 * and charset conversion through glibc's iconv.
 *
 * iconv loads a shared object (a gconv module) per charset on first use, which fails once
 * the session has chroot()ed into the user's home. mime_init(), called before the chroot,
 * opens converters for the charsets real mail uses and keeps them open for the life of the
 * process, so their modules stay loaded; other names for the same charsets ("latin1",
 * "cp1252") then still open after the chroot. A charset that cannot be converted is taken
 * as UTF-8, with invalid bytes shown as U+FFFD.
 */
#include "mime.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "mime_priv.h"
#include "util.h"

#define CHARSET_NAME_MAX	40
#define CHARSET_CACHE		64

static const char *const preload[] = {
	"ISO-8859-1", "ISO-8859-2", "ISO-8859-3", "ISO-8859-4", "ISO-8859-5", "ISO-8859-6",
	"ISO-8859-7", "ISO-8859-8", "ISO-8859-9", "ISO-8859-10", "ISO-8859-11", "ISO-8859-13",
	"ISO-8859-14", "ISO-8859-15", "ISO-8859-16",
	"WINDOWS-1250", "WINDOWS-1251", "WINDOWS-1252", "WINDOWS-1253", "WINDOWS-1254",
	"WINDOWS-1255", "WINDOWS-1256", "WINDOWS-1257", "WINDOWS-1258",
	"KOI8-R", "KOI8-U", "CP850", "CP866", "MACINTOSH", "TIS-620",
	"ISO-2022-JP", "SHIFT_JIS", "EUC-JP", "EUC-KR", "ISO-2022-KR",
	"GB2312", "GBK", "GB18030", "BIG5", "BIG5-HKSCS", "UTF-16", "UTF-7",
};

/* Open converters by the (lower-cased) name a message used. Never closed: see above. */
static struct {
	char name[CHARSET_NAME_MAX + 1];
	iconv_t cd;
} cache[CHARSET_CACHE];
static size_t ncache;

/* ---- charsets ------------------------------------------------------------------------ */

/* charset lower-cased into name, without an RFC 2231 "*language" suffix; false if it is
 * not a plausible charset name. */
static bool charset_name(const char *charset, char *name)
{
	size_t n = 0;

	for (const char *c = charset; *c && *c != '*'; c++) {
		char ch = *c;

		if (n == CHARSET_NAME_MAX)
			return false;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr("-_.:", ch)))
			return false;
		name[n++] = ch;
	}
	name[n] = '\0';
	return n > 0;
}

static bool is_utf8_name(const char *name)
{
	return strcmp(name, "utf-8") == 0 || strcmp(name, "utf8") == 0 ||
	       strcmp(name, "us-ascii") == 0 || strcmp(name, "ascii") == 0;
}

/* A converter from name to UTF-8, or (iconv_t)-1. *temp: the caller must close it. */
static iconv_t converter(const char *name, bool *temp)
{
	iconv_t cd;

	*temp = false;
	for (size_t i = 0; i < ncache; i++)
		if (strcmp(cache[i].name, name) == 0)
			return cache[i].cd;
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return cd;
	if (ncache < CHARSET_CACHE) {
		(void)str_copy(cache[ncache].name, sizeof(cache[ncache].name), name);
		cache[ncache++].cd = cd;
	} else {
		*temp = true;
	}
	return cd;
}

void mime_init(void)
{
	mime_init_charsets(preload, ARRAY_LEN(preload));
}

void mime_init_charsets(const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char name[CHARSET_NAME_MAX + 1];
		bool temp;
		iconv_t cd;

		if (!charset_name(names[i], name))
			continue;
		cd = converter(name, &temp);
		if (cd != (iconv_t)-1 && temp)
			(void)iconv_close(cd);
	}
}

static const char replacement[] = "\xef\xbf\xbd";	/* U+FFFD */

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int mime_utf8_sanitize(const char *in, size_t n, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, run = 0;

	while (i < n) {
		size_t l = utf8_seq(s + i, n - i);

		if (l > 0) {
			i += l;
			continue;
		}
		if (buf_append(out, in + run, i - run) < 0 || buf_append_str(out, replacement) < 0)
			return -1;
		run = ++i;
	}
	return buf_append(out, in + run, n - run);
}

static int iconv_run(iconv_t cd, const char *in, size_t n, struct buf *out)
{
	char tmp[4096], *ip, *op;
	size_t il = n, ol;

	memcpy(&ip, &in, sizeof(ip));	/* iconv's prototype wants char ** */
	(void)iconv(cd, NULL, NULL, NULL, NULL);
	while (il > 0) {
		size_t r;
		int err;

		op = tmp;
		ol = sizeof(tmp);
		r = iconv(cd, &ip, &il, &op, &ol);
		err = errno;
		if (buf_append(out, tmp, (size_t)(op - tmp)) < 0)
			return -1;
		if (r != (size_t)-1 || err == E2BIG)
			continue;
		if (buf_append_str(out, replacement) < 0)
			return -1;
		if (err == EILSEQ) {
			ip++;
			il--;
		} else {
			il = 0;		/* EINVAL: the input ends inside a character */
		}
	}
	op = tmp;
	ol = sizeof(tmp);
	(void)iconv(cd, NULL, NULL, &op, &ol);	/* back to the initial shift state */
	return buf_append(out, tmp, (size_t)(op - tmp));
}

int mime_to_utf8(const char *charset, const char *in, size_t n, struct buf *out)
{
	char name[CHARSET_NAME_MAX + 1];
	bool temp;
	iconv_t cd;
	int rc;

	if (charset == NULL || !charset_name(charset, name) || is_utf8_name(name))
		return mime_utf8_sanitize(in, n, out);
	cd = converter(name, &temp);
	if (cd == (iconv_t)-1)
		return mime_utf8_sanitize(in, n, out);
	rc = iconv_run(cd, in, n, out);
	if (temp)
		(void)iconv_close(cd);
	return rc;
}

/* ---- transfer encodings ------------------------------------------------------------------ */

/* Append what fits of p[0..n); -1 if not all of it did. */
static int emit(struct buf *out, const char *p, size_t n)
{
	size_t room = out->limit - out->len;

	if (n <= room)
		return buf_append(out, p, n);
	(void)buf_append(out, p, room);
	return -1;
}

static int b64val(unsigned char c)
{
	return base64_value(c, '+', '/');
}

/* Base64, skipping what is not in the alphabet; '=' ends a quantum (so that concatenated
 * encodings decode). -1 when out is full. */
static int decode_base64(const char *in, size_t n, struct buf *out)
{
	char tmp[3072];
	size_t t = 0;
	unsigned long acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)in[i]);

		if (in[i] == '=') {
			acc = 0;
			bits = 0;
			continue;
		}
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned long)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			tmp[t++] = (char)((acc >> bits) & 0xff);
			acc &= (1UL << bits) - 1;
		}
		if (t == sizeof(tmp)) {
			if (emit(out, tmp, t) < 0)
				return -1;
			t = 0;
		}
	}
	return emit(out, tmp, t);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Quoted-printable (RFC 2045 §6.7), or RFC 2047's Q encoding when q_words ('_' is a space,
 * no soft line breaks). A '=' that starts nothing valid stays as it is. */
static int decode_qp(const char *in, size_t n, bool q_words, struct buf *out)
{
	char tmp[4096];
	size_t t = 0;

	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		int hi, lo;

		if (c == '=' && i + 2 < n && (hi = hexval(in[i + 1])) >= 0 &&
		    (lo = hexval(in[i + 2])) >= 0) {
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '=' && !q_words) {
			size_t j = i + 1;

			while (j < n && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j < n && in[j] == '\r' && j + 1 < n && in[j + 1] == '\n')
				j++;
			if (j == n || in[j] == '\n') {
				i = j;	/* a soft line break */
				continue;
			}
		} else if (c == '_' && q_words) {
			c = ' ';
		}
		tmp[t++] = c;
		if (t == sizeof(tmp)) {
			if (emit(out, tmp, t) < 0)
				return -1;
			t = 0;
		}
	}
	return emit(out, tmp, t);
}

/* ---- RFC 2047 encoded words ------------------------------------------------------------ */

struct eword {
	char charset[CHARSET_NAME_MAX + 1];
	char enc;		/* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	const char *end;	/* after "?=" */
};

/* An encoded word "=?charset?B|Q?text?=" at s (the text holds no blank and no '?'). */
static bool parse_eword(const char *s, struct eword *w)
{
	const char *cs = s + 2, *q = cs, *t;

	if (s[0] != '=' || s[1] != '?')
		return false;
	while (*q && *q != '?' && *q != ' ' && *q != '\t' && *q != '\r' && *q != '\n' &&
	       q - cs <= CHARSET_NAME_MAX)
		q++;
	if (*q != '?' || q == cs || (size_t)(q - cs) > CHARSET_NAME_MAX)
		return false;
	memcpy(w->charset, cs, (size_t)(q - cs));
	w->charset[q - cs] = '\0';
	w->enc = q[1];
	if (w->enc == 'b' || w->enc == 'q')
		w->enc = (char)(w->enc - 'a' + 'A');
	if ((w->enc != 'B' && w->enc != 'Q') || q[2] != '?')
		return false;
	w->text = t = q + 3;
	while (*t && *t != '?' && *t != ' ' && *t != '\t' && *t != '\r' && *t != '\n')
		t++;
	if (t[0] != '?' || t[1] != '=')
		return false;
	w->text_len = (size_t)(t - w->text);
	w->end = t + 2;
	return true;
}

static bool only_blanks(const char *s, const char *e)
{
	for (; s < e; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

/* The decoded bytes of adjacent words in one charset are converted together: a character
 * may be split between two words (which RFC 2047 forbids, and mailers do). */
struct pending {
	struct buf bytes;
	char charset[CHARSET_NAME_MAX + 1];
};

static int flush_pending(struct pending *pd, struct buf *out)
{
	int rc = 0;

	if (pd->bytes.len > 0)
		rc = mime_to_utf8(pd->charset, pd->bytes.data, pd->bytes.len, out);
	buf_reset(&pd->bytes);
	return rc;
}

char *mime_decode_words(const char *value)
{
	size_t len = strlen(value);
	struct buf out;
	struct pending pd = { .charset = "" };
	const char *raw = value, *s = value, *last_word_end = NULL;

	buf_init(&out, 4 * len + 16);
	buf_init(&pd.bytes, len + 1);
	while ((s = strstr(s, "=?")) != NULL) {
		struct eword w;

		if (!parse_eword(s, &w)) {
			s += 2;
			continue;
		}
		if (last_word_end == NULL || !only_blanks(raw, s)) {
			(void)flush_pending(&pd, &out);
			(void)mime_utf8_sanitize(raw, (size_t)(s - raw), &out);
		}
		if (strcasecmp(pd.charset, w.charset) != 0) {
			(void)flush_pending(&pd, &out);
			(void)str_copy(pd.charset, sizeof(pd.charset), w.charset);
		}
		if (w.enc == 'B')
			(void)decode_base64(w.text, w.text_len, &pd.bytes);
		else
			(void)decode_qp(w.text, w.text_len, true, &pd.bytes);
		raw = s = last_word_end = w.end;
	}
	(void)flush_pending(&pd, &out);
	(void)mime_utf8_sanitize(raw, len - (size_t)(raw - value), &out);
	buf_free(&pd.bytes);
	return out.data ? out.data : xstrdup("");
}

/* ---- body text for SEARCH ------------------------------------------------------------- */

/* Append as much of in[0..n) as fits in out, cut at a character boundary; false when full. */
static bool append_bounded(struct buf *out, const char *in, size_t n)
{
	size_t room = out->limit - out->len;

	if (n <= room)
		return buf_append(out, in, n) == 0;
	n = room;
	while (n > 0 && ((unsigned char)in[n] & 0xc0) == 0x80)
		n--;
	(void)buf_append(out, in, n);
	return false;
}

/* The decoded, converted text of leaf p (a text part), appended to out. */
static bool leaf_text(const struct mime_msg *m, const struct mime_part *p, struct buf *out)
{
	size_t room = out->limit - out->len;
	/* room for charsets whose UTF-8 is shorter (UTF-16, UTF-32) */
	size_t cap = room < (size_t)-1 / 8 ? room * 4 + 64 : (size_t)-1 / 2;
	const char *body = m->data + p->body_start;
	struct buf dec, utf;
	bool more;

	buf_init(&dec, cap);
	if (strcmp(p->encoding, "BASE64") == 0)
		(void)decode_base64(body, p->body_len, &dec);
	else if (strcmp(p->encoding, "QUOTED-PRINTABLE") == 0)
		(void)decode_qp(body, p->body_len, false, &dec);
	else
		(void)emit(&dec, body, p->body_len);
	buf_init(&utf, 3 * dec.len + 16);	/* a byte becomes at most U+FFFD */
	(void)mime_to_utf8(mime_param(p, "charset"), buf_cstr(&dec), dec.len, &utf);
	more = append_bounded(out, buf_cstr(&utf), utf.len);
	buf_free(&dec);
	buf_free(&utf);
	return more;
}

/* Text of p and everything below it; false once out is full. */
static bool part_text(const struct mime_msg *m, const struct mime_part *p, struct buf *out)
{
	if (strcmp(p->type, "multipart") == 0) {
		for (const struct mime_part *c = p->child; c != NULL; c = c->next)
			if (!part_text(m, c, out) || !append_bounded(out, "\n", 1))
				return false;
		return true;
	}
	if (strcmp(p->type, "message") == 0 && strcmp(p->subtype, "rfc822") == 0) {
		const struct mime_part *e = p->child;
		char *hdr, *dec;
		bool more;

		if (e == NULL)
			return true;
		hdr = xstrndup(m->data + e->start, e->header_len);
		dec = mime_decode_words(hdr);
		more = append_bounded(out, dec, strlen(dec)) && part_text(m, e, out);
		free(hdr);
		free(dec);
		return more;
	}
	if (strcmp(p->type, "text") == 0)
		return leaf_text(m, p, out);
	return true;
}

char *mime_body_text(const struct mime_msg *m, const struct mime_part *p, size_t limit)
{
	struct buf out;

	buf_init(&out, limit);
	if (p != NULL)
		(void)part_text(m, p, &out);
	for (size_t i = 0; i < out.len; i++)
		if (out.data[i] == '\0')
			out.data[i] = ' ';	/* callers get a C string */
	return out.data ? out.data : xstrdup("");
}
