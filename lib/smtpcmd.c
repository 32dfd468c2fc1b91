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

/* A parameter-specific reply "<pre><keyword><post>"; the keyword is validated (letters,
 * digits, '-') before any reply names it, and cut at 40 octets. */
static int param_fail(struct ctx *c, int code, const char *pre, struct span kw, const char *post)
{
	char text[sizeof(c->out->reply.text)];
	int klen = kw.n > 40 ? 40 : (int)kw.n;

	if (str_fmt(text, sizeof(text), "%s%.*s%s", pre, klen, kw.p, post) < 0)
		text[sizeof(text) - 1] = '\0';
	return fail(c, code, "5.5.4", text, text);
}

static int bad_param(struct ctx *c, struct span kw)
{
	return param_fail(c, 501, "Bad ", kw, " parameter syntax");
}

static int unsupported_param(struct ctx *c, struct span kw)
{
	return param_fail(c, 555, "Unsupported option: ", kw, "");
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

/* ---- xtext (RFC 3461 4) ---------------------------------------------------------------- */

static unsigned hex_value(unsigned char ch)
{
	return is_digit(ch) ? (unsigned)(ch - '0') : (unsigned)(ch - 'A' + 10);
}

ssize_t smtp_xtext_decode(const char *in, size_t inlen, char *out, size_t outsize)
{
	size_t o = 0;

	if (outsize == 0)
		return -1;
	out[0] = '\0';
	for (size_t i = 0; i < inlen; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '+') {
			if (inlen - i < 3 || !is_hexup((unsigned char)in[i + 1]) ||
			    !is_hexup((unsigned char)in[i + 2]))
				return -1;
			ch = (unsigned char)(hex_value((unsigned char)in[i + 1]) << 4 |
					     hex_value((unsigned char)in[i + 2]));
			if (ch == 0)
				return -1;
			i += 2;
		} else if (ch < '!' || ch > '~' || ch == '=') {
			return -1;
		}
		if (o + 1 >= outsize) {
			out[0] = '\0';
			return -1;
		}
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return (ssize_t)o;
}

ssize_t smtp_xtext_encode(const char *in, size_t inlen, char *out, size_t outsize)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (outsize == 0)
		return -1;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char ch = (unsigned char)in[i];
		bool plain = ch >= '!' && ch <= '~' && ch != '+' && ch != '=';
		size_t need = plain ? 1 : 3;

		if (o + need >= outsize) {
			out[o] = '\0';
			return -1;
		}
		if (plain) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '+';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return (ssize_t)o;
}

/* Decode an xtext value that must come out as printable ASCII (ENVID, ORCPT, AUTH=). */
static bool xtext_printable(struct span v, char *out, size_t outsize)
{
	ssize_t n = smtp_xtext_decode(v.p, v.n, out, outsize);

	if (n <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
			return false;
	return true;
}

/* ---- ESMTP parameters ------------------------------------------------------------------ */

enum {
	P_SIZE = 1 << 0, P_BODY = 1 << 1, P_SMTPUTF8 = 1 << 2, P_RET = 1 << 3,
	P_ENVID = 1 << 4, P_AUTH = 1 << 5, P_NOTIFY = 1 << 6, P_ORCPT = 1 << 7,
};

struct param {
	struct span kw, val;
	bool has_val;
};

/* esmtp-param = esmtp-keyword ["=" esmtp-value]; s starts at the separating SP. */
static int next_param(struct ctx *c, struct span *s, struct param *pm)
{
	size_t i = 1, end;

	if (s->p[0] != ' ' || s->n < 2 || s->p[1] == ' ')
		return bad_args(c, "Syntax error in parameters or arguments", "bad separator");
	for (end = 1; end < s->n && s->p[end] != ' '; end++)
		;
	pm->kw.p = s->p + 1;
	while (i < end && s->p[i] != '=')
		i++;
	pm->kw.n = i - 1;
	pm->has_val = i < end;
	pm->val.p = s->p + i + 1;
	pm->val.n = pm->has_val ? end - i - 1 : 0;
	if (pm->kw.n == 0 || (pm->has_val && pm->val.n == 0))
		return bad_args(c, "Syntax error in parameters or arguments", "empty keyword/value");
	for (size_t k = 0; k < pm->kw.n; k++) {
		unsigned char ch = (unsigned char)pm->kw.p[k];

		if (!(is_alpha(ch) || is_digit(ch) || (k > 0 && ch == '-')))
			return bad_args(c, "Syntax error in parameters or arguments",
					"bad parameter keyword");
	}
	for (size_t k = 0; k < pm->val.n; k++) {
		unsigned char ch = (unsigned char)pm->val.p[k];

		if (ch < 33 || ch > 126 || ch == '=')
			return bad_args(c, "Syntax error in parameters or arguments",
					"bad parameter value");
	}
	s->p += end;
	s->n -= end;
	return 0;
}

/* Marks the keyword seen; a second occurrence is an error. */
static int once(struct ctx *c, unsigned *seen, unsigned bit, const struct param *pm)
{
	if (*seen & bit)
		return param_fail(c, 501, "Duplicate ", pm->kw, " parameter");
	*seen |= bit;
	if (bit != P_SMTPUTF8 && !pm->has_val)
		return bad_param(c, pm->kw);
	if (bit == P_SMTPUTF8 && pm->has_val)
		return bad_param(c, pm->kw);
	return 0;
}

/* SIZE: 1*20DIGIT (RFC 1870), saturating at UINT64_MAX. */
static bool parse_size(struct span v, uint64_t *out)
{
	uint64_t n = 0;

	if (v.n == 0 || v.n > 20)
		return false;
	for (size_t i = 0; i < v.n; i++) {
		unsigned d;

		if (!is_digit((unsigned char)v.p[i]))
			return false;
		d = (unsigned)(v.p[i] - '0');
		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	*out = n;
	return true;
}

static int mail_param(struct ctx *c, const struct param *pm, unsigned *seen)
{
	struct smtp_mail_params *m = &c->out->mail;
	int rc;

	if (span_eq(pm->kw, "SIZE")) {
		if ((rc = once(c, seen, P_SIZE, pm)) != 0)
			return rc;
		m->has_size = parse_size(pm->val, &m->size);
		return m->has_size ? 0 : bad_param(c, pm->kw);
	}
	if (span_eq(pm->kw, "BODY")) {
		if ((rc = once(c, seen, P_BODY, pm)) != 0)
			return rc;
		m->body = span_eq(pm->val, "7BIT") ? SMTP_BODY_7BIT :
			  span_eq(pm->val, "8BITMIME") ? SMTP_BODY_8BITMIME :
			  span_eq(pm->val, "BINARYMIME") ? SMTP_BODY_BINARYMIME : SMTP_BODY_NONE;
		return m->body ? 0 : bad_param(c, pm->kw);
	}
	if (span_eq(pm->kw, "SMTPUTF8")) {
		m->smtputf8 = true;
		return once(c, seen, P_SMTPUTF8, pm);
	}
	if (span_eq(pm->kw, "RET")) {
		if ((rc = once(c, seen, P_RET, pm)) != 0)
			return rc;
		m->ret = span_eq(pm->val, "FULL") ? SMTP_RET_FULL :
			 span_eq(pm->val, "HDRS") ? SMTP_RET_HDRS : SMTP_RET_NONE;
		return m->ret ? 0 : bad_param(c, pm->kw);
	}
	if (span_eq(pm->kw, "ENVID")) {
		if ((rc = once(c, seen, P_ENVID, pm)) != 0)
			return rc;
		m->has_envid = pm->val.n <= SMTP_ENVID_MAX &&
			       xtext_printable(pm->val, m->envid, sizeof(m->envid));
		return m->has_envid ? 0 : bad_param(c, pm->kw);
	}
	if (span_eq(pm->kw, "AUTH")) {
		if ((rc = once(c, seen, P_AUTH, pm)) != 0)
			return rc;
		m->auth_null = span_eq(pm->val, "<>");
		m->has_auth = m->auth_null || (pm->val.n <= SMTP_AUTHPARAM_MAX &&
					       xtext_printable(pm->val, m->auth, sizeof(m->auth)));
		return m->has_auth ? 0 : bad_param(c, pm->kw);
	}
	return unsupported_param(c, pm->kw);
}

/* NOTIFY = "NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY"), no repeats. */
static unsigned parse_notify(struct span v)
{
	unsigned bits = 0;

	if (span_eq(v, "NEVER"))
		return SMTP_NOTIFY_NEVER;
	while (v.n > 0) {
		struct span item = { v.p, 0 };
		unsigned bit;

		while (item.n < v.n && v.p[item.n] != ',')
			item.n++;
		bit = span_eq(item, "SUCCESS") ? SMTP_NOTIFY_SUCCESS :
		      span_eq(item, "FAILURE") ? SMTP_NOTIFY_FAILURE :
		      span_eq(item, "DELAY") ? SMTP_NOTIFY_DELAY : 0;
		if (bit == 0 || (bits & bit))
			return 0;
		bits |= bit;
		if (item.n == v.n)
			break;
		if (item.n + 1 == v.n)	/* trailing comma */
			return 0;
		v.p += item.n + 1;
		v.n -= item.n + 1;
	}
	return bits;
}

/* ORCPT = addr-type ";" xtext; only addr-type rfc822 (case-insensitive). */
static bool parse_orcpt(struct span v, struct smtp_rcpt_params *r)
{
	const char *semi = memchr(v.p, ';', v.n);
	struct span type, addr;

	if (semi == NULL || v.n > SMTP_ORCPT_MAX)
		return false;
	type = (struct span){ v.p, (size_t)(semi - v.p) };
	addr = (struct span){ semi + 1, v.n - type.n - 1 };
	if (!span_eq(type, "rfc822") || !xtext_printable(addr, r->orcpt, sizeof(r->orcpt)))
		return false;
	memcpy(r->orcpt_type, "rfc822", sizeof("rfc822"));
	return true;
}

static int rcpt_param(struct ctx *c, const struct param *pm, unsigned *seen)
{
	struct smtp_rcpt_params *r = &c->out->rcpt;
	int rc;

	if (span_eq(pm->kw, "NOTIFY")) {
		if ((rc = once(c, seen, P_NOTIFY, pm)) != 0)
			return rc;
		r->notify = parse_notify(pm->val);
		return r->notify ? 0 : bad_param(c, pm->kw);
	}
	if (span_eq(pm->kw, "ORCPT")) {
		if ((rc = once(c, seen, P_ORCPT, pm)) != 0)
			return rc;
		r->has_orcpt = parse_orcpt(pm->val, r);
		return r->has_orcpt ? 0 : bad_param(c, pm->kw);
	}
	return unsupported_param(c, pm->kw);
}

/* ---- commands -------------------------------------------------------------------------- */

/* arg is what follows the verb: empty, or " " and the argument. */
static bool one_arg(struct span arg, struct span *out)
{
	if (arg.n < 2 || arg.p[0] != ' ')
		return false;
	*out = (struct span){ arg.p + 1, arg.n - 1 };
	return true;
}

/* MAIL FROM:<path> [params] and RCPT TO:<path> [params]. */
static int parse_mail_rcpt(struct ctx *c, struct span arg)
{
	bool mail = c->out->verb == SMTP_MAIL;
	const char *prefix = mail ? " FROM:" : " TO:";
	unsigned seen = 0;
	struct param pm = { .has_val = false };
	int rc;

	if (!has_prefix(arg, prefix))
		return bad_args(c, mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>",
				"missing FROM:/TO:");
	arg.p += strlen(prefix);
	arg.n -= strlen(prefix);
	if (arg.n > 0 && arg.p[0] == ' ')	/* "MAIL FROM: <a@b>": tolerated */
		arg.p++, arg.n--;
	if ((rc = parse_path(c, mail, &arg, &c->out->path)) != 0)
		return rc;
	for (size_t i = 0; i < arg.n; i++)
		if ((unsigned char)arg.p[i] >= 0x80)
			return bad_args(c, "Syntax error in parameters or arguments",
					"8-bit parameter");
	while (arg.n > 0) {
		if ((rc = next_param(c, &arg, &pm)) != 0 ||
		    (rc = mail ? mail_param(c, &pm, &seen) : rcpt_param(c, &pm, &seen)) != 0)
			return rc;
	}
	if (mail && c->out->path.utf8 && !c->out->mail.smtputf8) {
		smtp_reply_utf8(&c->out->reply, false);
		if (c->err != NULL && c->errlen > 0 &&
		    str_copy(c->err, c->errlen, "8-bit sender without SMTPUTF8") < 0)
			c->err[c->errlen - 1] = '\0';
		return c->out->reply.code;
	}
	return 0;
}

static int parse_helo(struct ctx *c, struct span arg)
{
	struct span d;
	bool ehlo = c->out->verb == SMTP_EHLO;

	if (!one_arg(arg, &d))
		return bad_args(c, ehlo ? "Syntax: EHLO hostname" : "Syntax: HELO hostname",
				"missing hostname");
	c->out->helo_literal = d.p[0] == '[';
	if (c->out->helo_literal ? !valid_literal(d) : !valid_domain(d, true))
		return bad_args(c, "Invalid hostname", "bad HELO/EHLO hostname");
	copy_span(c->out->arg, sizeof(c->out->arg), d);
	return 0;
}

static int parse_no_arg(struct ctx *c, struct span arg)
{
	return arg.n == 0 ? 0 : bad_args(c, "Syntax error, no parameters allowed",
					 "unexpected argument");
}

/* NOOP [SP String], HELP [SP String], VRFY SP String: printable ASCII (checked already). */
static int parse_string(struct ctx *c, struct span arg)
{
	struct span s;

	if (arg.n == 0 && c->out->verb != SMTP_VRFY)
		return 0;
	if (!one_arg(arg, &s))
		return bad_args(c, "Syntax error in parameters or arguments", "missing string");
	copy_span(c->out->arg, sizeof(c->out->arg), s);
	return 0;
}

/* BDAT SP chunk-size [SP "LAST"]; chunk-size = 1*DIGIT, must fit in 64 bits. */
static int parse_bdat(struct ctx *c, struct span arg)
{
	struct span s, num;

	if (!one_arg(arg, &s))
		return bad_args(c, "Syntax: BDAT size [LAST]", "missing chunk size");
	num = s;
	for (num.n = 0; num.n < s.n && s.p[num.n] != ' '; num.n++)
		;
	if (num.n > 19 || !parse_size(num, &c->out->bdat_size) || c->out->bdat_size > INT64_MAX)
		return bad_args(c, "Syntax: BDAT size [LAST]", "bad chunk size");
	s.p += num.n;
	s.n -= num.n;
	if (s.n == 0)
		return 0;
	if (!span_eq(s, " LAST"))
		return bad_args(c, "Syntax: BDAT size [LAST]", "junk after chunk size");
	c->out->bdat_last = true;
	return 0;
}

/* A base64 initial response, or "=" for an empty one (RFC 4954 4). */
static bool valid_base64(struct span s)
{
	size_t pad = 0;

	if (s.n == 1 && s.p[0] == '=')
		return true;
	if (s.n == 0 || s.n % 4 != 0)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		unsigned char ch = (unsigned char)s.p[i];

		if (ch == '=')
			pad++;
		else if (pad > 0 || !(is_alpha(ch) || is_digit(ch) || ch == '+' || ch == '/'))
			return false;
	}
	return pad <= 2;
}

/* AUTH SP mechanism [SP initial-response] */
static int parse_auth(struct ctx *c, struct span arg)
{
	struct span s, mech, resp;

	if (!one_arg(arg, &s))
		return bad_args(c, "Syntax: AUTH mechanism", "missing mechanism");
	mech = s;
	for (mech.n = 0; mech.n < s.n && s.p[mech.n] != ' '; mech.n++) {
		unsigned char ch = (unsigned char)s.p[mech.n];

		if (!(is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '_'))
			return bad_args(c, "Syntax: AUTH mechanism", "bad mechanism name");
	}
	if (mech.n == 0 || mech.n > SMTP_MECH_MAX)
		return bad_args(c, "Syntax: AUTH mechanism", "bad mechanism name");
	for (size_t i = 0; i < mech.n; i++) {
		char ch = mech.p[i];

		c->out->arg[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
	}
	c->out->arg[mech.n] = '\0';
	resp = (struct span){ s.p + mech.n, s.n - mech.n };
	if (resp.n == 0)
		return 0;
	if (!one_arg(resp, &resp) || !valid_base64(resp))
		return bad_args(c, "Invalid initial response", "bad AUTH initial response");
	copy_span(c->out->auth_resp, sizeof(c->out->auth_resp), resp);
	c->out->has_auth_resp = true;
	return 0;
}

struct verb_def {
	const char *name;
	enum smtp_verb verb;
	size_t max_line;	/* incl. CRLF */
	int (*parse)(struct ctx *c, struct span arg);
};

static const struct verb_def verbs[] = {
	{ "EHLO", SMTP_EHLO, SMTP_CMD_LINE_MAX, parse_helo },
	{ "HELO", SMTP_HELO, SMTP_CMD_LINE_MAX, parse_helo },
	{ "MAIL", SMTP_MAIL, SMTP_MAIL_LINE_MAX, parse_mail_rcpt },
	{ "RCPT", SMTP_RCPT, SMTP_RCPT_LINE_MAX, parse_mail_rcpt },
	{ "DATA", SMTP_DATA, SMTP_CMD_LINE_MAX, parse_no_arg },
	{ "BDAT", SMTP_BDAT, SMTP_CMD_LINE_MAX, parse_bdat },
	{ "RSET", SMTP_RSET, SMTP_CMD_LINE_MAX, parse_no_arg },
	{ "NOOP", SMTP_NOOP, SMTP_CMD_LINE_MAX, parse_string },
	{ "QUIT", SMTP_QUIT, SMTP_CMD_LINE_MAX, parse_no_arg },
	{ "VRFY", SMTP_VRFY, SMTP_CMD_LINE_MAX, parse_string },
	{ "HELP", SMTP_HELP, SMTP_CMD_LINE_MAX, parse_string },
	{ "STARTTLS", SMTP_STARTTLS, SMTP_CMD_LINE_MAX, parse_no_arg },
	{ "AUTH", SMTP_AUTH, SMTP_AUTH_LINE_MAX, parse_auth },
};

/* NUL and control characters anywhere are refused; reports whether 8-bit bytes occur. */
static int check_bytes(struct ctx *c, const char *line, size_t len, bool *eight_bit)
{
	*eight_bit = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch == 0)
			return fail(c, 500, "5.5.2", "Syntax error, NUL byte in command", "NUL byte");
		if (ch < 0x20 || ch == 0x7f)
			return fail(c, 500, "5.5.2", "Syntax error, control character in command",
				    "control character");
		if (ch >= 0x80)
			*eight_bit = true;
	}
	return 0;
}

int smtp_parse_command(const char *line, size_t len, struct smtp_cmd *out, char *err,
		       size_t errlen)
{
	struct ctx c = { out, err, errlen };
	struct span verb = { line, 0 };
	const struct verb_def *def = NULL;
	bool eight_bit;
	int rc;

	memset(out, 0, offsetof(struct smtp_cmd, auth_resp));
	out->auth_resp[0] = '\0';
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > SMTP_LINE_MAX - 2)
		return fail(&c, 500, "5.5.2", "Line too long", "line too long");
	if ((rc = check_bytes(&c, line, len, &eight_bit)) != 0)
		return rc;
	while (verb.n < len && line[verb.n] != ' ')
		verb.n++;
	for (size_t i = 0; i < ARRAY_LEN(verbs) && def == NULL; i++)
		if (span_eq(verb, verbs[i].name))
			def = &verbs[i];
	if (def == NULL)
		return unrecognized(&c, "unknown command");
	out->verb = def->verb;
	if (len > def->max_line - 2)
		return fail(&c, 500, "5.5.2", "Line too long", "line too long");
	if (eight_bit && def->verb != SMTP_MAIL && def->verb != SMTP_RCPT)
		return bad_args(&c, "8-bit characters are not allowed in this command", "8-bit");
	return def->parse(&c, (struct span){ line + verb.n, len - verb.n });
}
