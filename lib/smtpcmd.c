/*
 * smtpcmd.c: the RFC 5321 command-line parser (see smtpcmd.h for the policy choices).
 * Structure: smtp_parse_command checks the whole line (length, NUL, controls, 8-bit), finds
 * the verb, then hands the rest to one small function per command. Paths and ESMTP
 * parameters have their own parsers below. All text copied out is bounded and validated.
 */
#include "smtpcmd.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* A byte range of the line: p[0..n). */
struct span {
	const char *p;
	size_t n;
};

/* Everything a command parser needs: the output and the log reason. */
struct ctx {
	struct smtp_cmd *out;
	char *err;
	size_t errlen;
};

/* ---- replies -------------------------------------------------------------------------- */

static int fail(struct ctx *c, int code, const char *enh, const char *text, const char *why)
{
	struct smtp_reply *r = &c->out->reply;

	r->code = code;
	/* The texts are ours and short; a truncated log reason is harmless. */
	if (str_copy(r->enh, sizeof(r->enh), enh) < 0 || str_copy(r->text, sizeof(r->text), text) < 0)
		r->text[sizeof(r->text) - 1] = '\0';
	if (c->err != NULL && c->errlen > 0 && str_copy(c->err, c->errlen, why) < 0)
		c->err[c->errlen - 1] = '\0';
	return code;
}

static int unrecognized(struct ctx *c, const char *why)
{
	return fail(c, 500, "5.5.2", "Syntax error, command unrecognized", why);
}

static int bad_args(struct ctx *c, const char *text, const char *why)
{
	return fail(c, 501, "5.5.4", text, why);
}

/* Bad path syntax: 5.1.7 for the sender, 5.1.3 for a recipient. */
static int bad_path(struct ctx *c, bool mail, const char *why)
{
	if (mail)
		return fail(c, 501, "5.1.7", "Bad sender address syntax", why);
	return fail(c, 501, "5.1.3", "Bad recipient address syntax", why);
}

/* Relay and smuggling tricks: refused outright. */
static int refused_path(struct ctx *c, bool mail, const char *text, const char *why)
{
	return fail(c, 553, mail ? "5.1.7" : "5.1.3", text, why);
}

/* A parameter-specific reply naming the keyword (validated: letters, digits, '-'). */
static int param_fail(struct ctx *c, int code, const char *fmt, struct span kw)
{
	char text[sizeof(c->out->reply.text)];
	int klen = kw.n > 40 ? 40 : (int)kw.n;

	if (str_fmt(text, sizeof(text), fmt, klen, kw.p) < 0)
		text[sizeof(text) - 1] = '\0';
	return fail(c, code, "5.5.4", text, text);
}

void smtp_reply_utf8(struct smtp_reply *r, bool rcpt)
{
	r->code = 553;
	memcpy(r->enh, "5.6.7", sizeof("5.6.7"));
	if (str_copy(r->text, sizeof(r->text), rcpt ?
		     "Non-ASCII recipient address requires SMTPUTF8" :
		     "Non-ASCII sender address requires SMTPUTF8") < 0)
		r->text[0] = '\0';
}

int smtp_reply_format(const struct smtp_reply *r, char *buf, size_t size)
{
	return str_fmt(buf, size, "%03d %s %s", r->code, r->enh, r->text);
}

/* ---- characters ----------------------------------------------------------------------- */

static bool is_alpha(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_hexup(unsigned char ch)
{
	return is_digit(ch) || (ch >= 'A' && ch <= 'F');
}

/* RFC 5322 atext; 8-bit bytes count when utf8 (their UTF-8 validity is checked apart). */
static bool is_atext(unsigned char ch)
{
	return is_alpha(ch) || is_digit(ch) || ch >= 0x80 ||
	       (ch != 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* RFC 5321 qtextSMTP (plus UTF-8 bytes). */
static bool is_qtext(unsigned char ch)
{
	return (ch >= 32 && ch <= 126 && ch != '"' && ch != '\\') || ch >= 0x80;
}

/* Well-formed UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char b = s[i];
		size_t k;
		unsigned lo = 0x80, hi = 0xbf;

		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			k = 1;
		else if (b >= 0xe0 && b <= 0xef)
			k = 2;
		else if (b >= 0xf0 && b <= 0xf4)
			k = 3;
		else
			return false;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
		else if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
		if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t j = 2; j <= k; j++)
			if (s[i + j] < 0x80 || s[i + j] > 0xbf)
				return false;
		i += k + 1;
	}
	return true;
}

static bool span_eq(struct span s, const char *word)
{
	return s.n == strlen(word) && strncasecmp(s.p, word, s.n) == 0;
}

static bool has_prefix(struct span s, const char *prefix)
{
	size_t n = strlen(prefix);

	return s.n >= n && strncasecmp(s.p, prefix, n) == 0;
}

static void copy_span(char *dst, size_t dstsize, struct span s)
{
	size_t n = s.n < dstsize ? s.n : dstsize - 1;

	memcpy(dst, s.p, n);
	dst[n] = '\0';
}

/* ---- domains and address literals ------------------------------------------------------ */

/* Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]. */
static bool valid_domain(struct span d, bool allow_underscore)
{
	size_t label = 0;

	if (d.n == 0 || d.n > SMTP_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < d.n; i++) {
		unsigned char ch = (unsigned char)d.p[i];
		bool end = i + 1 == d.n || d.p[i + 1] == '.';

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!(is_alpha(ch) || is_digit(ch) || ch >= 0x80 || ch == '-' ||
		      (allow_underscore && ch == '_')))
			return false;
		if (ch == '-' && (label == 0 || end))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* IPv4-address-literal: Snum 3("." Snum), Snum = 1*3DIGIT with value 0-255. */
static bool valid_ipv4(struct span s)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t digits = 0;

		if (part > 0) {
			if (i >= s.n || s.p[i] != '.')
				return false;
			i++;
		}
		while (i < s.n && is_digit((unsigned char)s.p[i]) && digits < 3) {
			v = v * 10 + (unsigned)(s.p[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == s.n;
}

/* "[1.2.3.4]" or "[IPv6:...]", brackets included in s. General literals are refused. */
static bool valid_literal(struct span s)
{
	struct span in = { s.p + 1, s.n >= 2 ? s.n - 2 : 0 };
	char buf[INET6_ADDRSTRLEN];
	unsigned char bin[16];

	if (s.n < 2 || s.p[0] != '[' || s.p[s.n - 1] != ']')
		return false;
	if (!has_prefix(in, "IPv6:"))
		return valid_ipv4(in);
	in.p += 5;
	in.n -= 5;
	if (in.n == 0 || in.n >= sizeof(buf))
		return false;
	for (size_t i = 0; i < in.n; i++) {
		unsigned char ch = (unsigned char)in.p[i];

		if (!(is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
		      ch == ':' || ch == '.'))
			return false;
	}
	copy_span(buf, sizeof(buf), in);
	return inet_pton(AF_INET6, buf, bin) == 1;
}

/* ---- paths ----------------------------------------------------------------------------- */

/* Quoted-string local part: decode into dec (cap bytes), refusing bad qtext. */
static int decode_quoted(struct ctx *c, bool mail, struct span *rest, char *dec, size_t cap,
			 size_t *declen)
{
	size_t i = 1, n = 0;

	for (;; i++) {
		unsigned char ch;

		if (i >= rest->n)
			return bad_path(c, mail, "unterminated quoted local part");
		ch = (unsigned char)rest->p[i];
		if (ch == '"')
			break;
		if (ch == '\\') {
			if (++i >= rest->n || (unsigned char)rest->p[i] < 32 ||
			    (unsigned char)rest->p[i] > 126)
				return bad_path(c, mail, "bad quoted pair");
			ch = (unsigned char)rest->p[i];
		} else if (!is_qtext(ch)) {
			return bad_path(c, mail, "bad character in quoted local part");
		}
		if (n + 1 >= cap)
			return bad_path(c, mail, "local part too long");
		dec[n++] = (char)ch;
	}
	dec[n] = '\0';
	*declen = n;
	rest->p += i + 1;
	rest->n -= i + 1;
	return 0;
}

/* Dot-string = Atom *("." Atom) */
static bool is_dot_string(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' : !is_atext((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* The local part, normalized into p->local; leaves rest at the '@'. */
static int parse_local(struct ctx *c, bool mail, struct span *rest, struct smtp_path *p)
{
	char dec[SMTP_PATH_MAX + 1];
	size_t n = 0, o = 0;
	int rc;

	if (rest->n > 0 && rest->p[0] == '"') {
		if ((rc = decode_quoted(c, mail, rest, dec, sizeof(dec), &n)) != 0)
			return rc;
		if (n == 0)
			return bad_path(c, mail, "empty quoted local part");
		if (memchr(dec, '@', n) != NULL)
			return refused_path(c, mail, "Quoted local parts with @ are not accepted",
					    "quoted local part contains @");
	} else {
		while (n < rest->n && rest->p[n] != '@')
			n++;
		if (!is_dot_string(rest->p, n))
			return bad_path(c, mail, "bad local part");
		memcpy(dec, rest->p, n);
		dec[n] = '\0';
		rest->p += n;
		rest->n -= n;
	}
	p->quoted = !is_dot_string(dec, n);
	if (p->quoted) {	/* re-quote minimally: escape only '"' and '\' */
		char q[2 * SMTP_PATH_MAX + 3];

		q[o++] = '"';
		for (size_t i = 0; i < n; i++) {
			if (dec[i] == '"' || dec[i] == '\\')
				q[o++] = '\\';
			q[o++] = dec[i];
		}
		q[o++] = '"';
		if (o > SMTP_LOCAL_MAX)
			return bad_path(c, mail, "local part longer than 64 octets");
		memcpy(p->local, q, o);
		p->local[o] = '\0';
	} else {
		if (n > SMTP_LOCAL_MAX)
			return bad_path(c, mail, "local part longer than 64 octets");
		memcpy(p->local, dec, n + 1);
	}
	p->has_percent = strchr(p->local, '%') != NULL;
	p->has_bang = strchr(p->local, '!') != NULL;
	return 0;
}

/* The inside of <...>: empty, Postmaster, or Mailbox = Local-part "@" (Domain / literal). */
static int parse_mailbox(struct ctx *c, bool mail, struct span in, struct smtp_path *p)
{
	struct span rest = in;
	int rc;

	if (in.n == 0) {
		if (!mail)
			return bad_path(c, mail, "null recipient");
		p->null_path = true;
		return 0;
	}
	if (in.p[0] == '@')	/* A-d-l ":" Mailbox: refused, see smtpcmd.h */
		return refused_path(c, mail, "Source routes are not accepted", "source route");
	if (!mail && span_eq(in, "postmaster")) {
		p->postmaster = true;
		memcpy(p->local, "postmaster", sizeof("postmaster"));
		memcpy(p->addr, "postmaster", sizeof("postmaster"));
		return 0;
	}
	for (size_t i = 0; i < in.n; i++)
		if ((unsigned char)in.p[i] >= 0x80)
			p->utf8 = true;
	if (p->utf8 && !utf8_valid((const unsigned char *)in.p, in.n))
		return bad_path(c, mail, "invalid UTF-8 in address");
	if ((rc = parse_local(c, mail, &rest, p)) != 0)
		return rc;
	if (rest.n == 0 || rest.p[0] != '@')
		return bad_path(c, mail, "address without @domain");
	rest.p++;
	rest.n--;
	if (memchr(rest.p, '@', rest.n) != NULL)
		return refused_path(c, mail, "Addresses with more than one @ are not accepted",
				    "more than one @");
	if (rest.n > 0 && rest.p[0] == '[') {
		if (!valid_literal(rest))
			return bad_path(c, mail, "bad address literal");
		p->domain_literal = true;
	} else if (!valid_domain(rest, false)) {
		return bad_path(c, mail, "bad domain");
	}
	copy_span(p->domain, sizeof(p->domain), rest);
	if (str_fmt(p->addr, sizeof(p->addr), "%s@%s", p->local, p->domain) < 0)
		return bad_path(c, mail, "address too long");
	return 0;
}

/* "<...>" at the start of s; on success s is left after the '>'. Quotes may hide '>'. */
static int parse_path(struct ctx *c, bool mail, struct span *s, struct smtp_path *p)
{
	bool quoted = false;
	size_t i;

	if (s->n == 0 || s->p[0] != '<')
		return bad_path(c, mail, "path without angle brackets");
	for (i = 1; i < s->n; i++) {
		char ch = s->p[i];

		if (quoted && ch == '\\') {
			i++;
			continue;
		}
		if (ch == '"')
			quoted = !quoted;
		else if (!quoted && ch == '<')
			return bad_path(c, mail, "unbalanced angle brackets");
		else if (!quoted && ch == '>')
			break;
	}
	if (i >= s->n)
		return bad_path(c, mail, "unbalanced angle brackets");
	if (i + 1 > SMTP_PATH_MAX)
		return bad_path(c, mail, "path longer than 256 octets");
	struct span in = { s->p + 1, i - 1 };
	s->p += i + 1;
	s->n -= i + 1;
	return parse_mailbox(c, mail, in, p);
}
