/*
 * mime.c: parsing a message into its MIME structure (see mime.h): the header fields, the
 * Content-* fields and their parameters (RFC 2045, with RFC 2231 continuations and
 * charsets), multipart bodies (RFC 2046), embedded message/rfc822 and the message/rfc822
 * default inside multipart/digest. Also finding a part by its IMAP section number.
 *
 * One pass over the lines with a stack of the boundaries of the open multiparts. A line
 * starting with "--" and a boundary ends the current part; the innermost boundary is tried
 * first (so an outer boundary that is a prefix of an inner one does no harm) and, as in
 * Dovecot and most clients, a boundary matches as a prefix of the line. A part ends before
 * the line end that precedes its boundary line (RFC 2046 §5.1.1: that CRLF belongs to the
 * boundary).
 */
#include "mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_priv.h"
#include "util.h"

struct parser {
	const char *data;
	size_t len;
	size_t pos;			/* the start of the line being looked at */
	const char *bound[MIME_MAX_DEPTH];
	size_t bound_len[MIME_MAX_DEPTH];
	size_t nbound;
	bool close;			/* the boundary line found last is a close delimiter */
	bool keep_eol;			/* ...and it follows a close delimiter line directly */
	size_t nparts;
};

/* ---- lines and boundaries ------------------------------------------------------------ */

/* The position after the line end of the line at pos (or the end of the data). */
static size_t line_next(const struct parser *ps, size_t pos)
{
	const char *lf = memchr(ps->data + pos, '\n', ps->len - pos);

	return lf ? (size_t)(lf - ps->data) + 1 : ps->len;
}

static bool blank_line(const char *l, size_t n)
{
	return (n == 1 && l[0] == '\n') || (n == 2 && l[0] == '\r' && l[1] == '\n');
}

/* pos moved back over one line end, but not below floor. */
static size_t before_eol(const struct parser *ps, size_t pos, size_t floor)
{
	if (pos > floor && ps->data[pos - 1] == '\n')
		pos--;
	if (pos > floor && ps->data[pos - 1] == '\r')
		pos--;
	return pos;
}

/* Is the line at pos a boundary line of an open multipart? Its index in the stack, or -1. */
static int boundary_at(struct parser *ps, size_t pos)
{
	const char *l = ps->data + pos;
	size_t avail = ps->len - pos;

	if (avail < 3 || l[0] != '-' || l[1] != '-')
		return -1;
	for (size_t i = ps->nbound; i-- > 0;) {
		size_t bl = ps->bound_len[i];

		if (avail - 2 >= bl && memcmp(l + 2, ps->bound[i], bl) == 0) {
			ps->close = avail - 2 - bl >= 2 && l[2 + bl] == '-' && l[3 + bl] == '-';
			return (int)i;
		}
	}
	return -1;
}

/* Skip lines up to a boundary line or the end; ps->pos is left at that line. Returns the
 * boundary's index, -1 at the end. */
static int scan_body(struct parser *ps)
{
	size_t pos = ps->pos;

	if (ps->nbound == 0) {
		ps->pos = ps->len;
		return -1;
	}
	while (pos < ps->len) {
		int hit = boundary_at(ps, pos);

		if (hit >= 0) {
			ps->pos = pos;
			ps->keep_eol = false;
			return hit;
		}
		pos = line_next(ps, pos);
	}
	ps->pos = ps->len;
	return -1;
}

/* The header section at ps->pos ends after its blank line, at a boundary line (then the
 * part has no body and its header no final line end) or at the end of the data. */
static int scan_header(struct parser *ps, struct mime_part *p)
{
	size_t pos = ps->pos;

	while (pos < ps->len) {
		size_t next = line_next(ps, pos);
		int hit;

		if (blank_line(ps->data + pos, next - pos)) {
			p->header_len = next - p->start;
			p->body_start = ps->pos = next;
			return -1;
		}
		hit = boundary_at(ps, pos);
		if (hit >= 0) {
			ps->keep_eol = true;	/* see finish_body() */
			p->body_start = before_eol(ps, pos, p->start);
			p->header_len = p->body_start - p->start;
			ps->pos = pos;
			return hit;
		}
		pos = next;
	}
	p->header_len = ps->len - p->start;
	p->body_start = ps->pos = ps->len;
	return -1;
}

/* The body ends where ps->pos is: before the line end ahead of a boundary line (hit >= 0)
 * or at the end of the data. That line end stays in the body (keep_eol) when it ends a close
 * delimiter line ("--inner--" CRLF "--outer": RFC 2046's grammar allows either reading) or
 * a header that the boundary line cut short; Dovecot counts it so. */
static void finish_body(const struct parser *ps, struct mime_part *p, int hit)
{
	size_t end = ps->len;
	const char *s, *e;

	if (hit >= 0)
		end = ps->keep_eol ? ps->pos : before_eol(ps, ps->pos, p->body_start);
	/* a last part whose header ends at that line end keeps it; so does its parent */
	for (const struct mime_part *c = p->child; c != NULL; c = c->next)
		if (c->next == NULL && c->body_start + c->body_len > end)
			end = c->body_start + c->body_len;
	s = ps->data + p->body_start;
	e = ps->data + end;
	p->body_len = end - p->body_start;
	p->body_lines = 0;
	while (s < e && (s = memchr(s, '\n', (size_t)(e - s))) != NULL) {
		p->body_lines++;
		s++;
	}
}

/* ---- header fields --------------------------------------------------------------------- */

bool mime_field_next(const char *hdr, size_t len, size_t *pos, struct mime_field *f)
{
	size_t start = *pos, end, first_end, colon;
	const char *lf;

	if (start >= len)
		return false;
	lf = memchr(hdr + start, '\n', len - start);
	end = lf ? (size_t)(lf - hdr) + 1 : len;
	if (blank_line(hdr + start, end - start))
		return false;
	first_end = end;
	while (end < len && (hdr[end] == ' ' || hdr[end] == '\t')) {
		lf = memchr(hdr + end, '\n', len - end);
		end = lf ? (size_t)(lf - hdr) + 1 : len;
	}
	*pos = end;
	f->raw = hdr + start;
	f->raw_len = end - start;
	while (first_end > start && (hdr[first_end - 1] == '\n' || hdr[first_end - 1] == '\r'))
		first_end--;
	for (colon = start; colon < first_end && hdr[colon] != ':'; colon++)
		;
	f->name = hdr + start;
	f->name_len = colon - start;
	while (f->name_len > 0 && (f->name[f->name_len - 1] == ' ' || f->name[f->name_len - 1] == '\t'))
		f->name_len--;
	if (colon == first_end) {
		f->value = hdr + first_end;
		f->value_len = 0;
		return true;
	}
	colon++;
	while (colon < end && (hdr[colon] == ' ' || hdr[colon] == '\t'))
		colon++;
	while (end > colon && (hdr[end - 1] == '\n' || hdr[end - 1] == '\r'))
		end--;
	f->value = hdr + colon;
	f->value_len = end - colon;
	return true;
}

static bool field_is(const struct mime_field *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

bool mime_part_field(const struct mime_msg *m, const struct mime_part *p, const char *name,
		     struct mime_field *f)
{
	const char *hdr = m->data + p->start;
	size_t pos = 0;

	while (mime_field_next(hdr, p->header_len, &pos, f))
		if (field_is(f, name))
			return true;
	return false;
}

char *mime_unfold(const char *v, size_t n)
{
	char *out, *o;

	if (n > MIME_FIELD_MAX)
		n = MIME_FIELD_MAX;
	out = o = xmalloc(3 * n + 1);
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\0') {
			memcpy(o, "\xef\xbf\xbd", 3);	/* U+FFFD, as Dovecot shows a NUL */
			o += 3;
		} else if (v[i] != '\r' && v[i] != '\n') {
			*o++ = v[i];
		}
	}
	while (o > out && (o[-1] == ' ' || o[-1] == '\t'))
		o--;
	*o = '\0';
	n = strspn(out, " \t");
	memmove(out, out + n, (size_t)(o - out) - n + 1);
	return out;
}

char *mime_header(const struct mime_msg *m, const struct mime_part *p, const char *name)
{
	struct mime_field f;

	if (p == NULL || !mime_part_field(m, p, name, &f))
		return NULL;
	return mime_unfold(f.value, f.value_len);
}

/* ---- the lexer --------------------------------------------------------------------------- */

bool mime_is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80 || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* At a '(': skip the comment, nested ones included; its text (without the outer parentheses)
 * goes to comment. */
static void lex_comment(struct mime_lex *lx, struct buf *comment)
{
	size_t depth = 0;

	if (comment)
		buf_reset(comment);
	while (lx->p < lx->end) {
		char c = *lx->p++;

		if (c == '\\' && lx->p < lx->end)
			c = *lx->p++;
		else if (c == '(' && depth++ == 0)
			continue;
		else if (c == ')' && --depth == 0)
			return;
		if (comment)
			(void)buf_append_char(comment, c);
	}
}

bool mime_lex_cfws(struct mime_lex *lx, struct buf *comment)
{
	while (lx->p < lx->end) {
		char c = *lx->p;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			lx->p++;
		else if (c == '(')
			lex_comment(lx, comment);
		else
			return true;
	}
	return false;
}

bool mime_lex_quoted(struct mime_lex *lx, struct buf *out)
{
	lx->p++;
	while (lx->p < lx->end) {
		char c = *lx->p++;

		if (c == '"')
			return true;
		if (c == '\\' && lx->p < lx->end)
			c = *lx->p++;
		if (c != '\r' && c != '\n')
			(void)buf_append_char(out, c);
	}
	return false;
}

/* RFC 2045 token characters. */
static bool is_token(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* A token at the cursor, lower-cased; NULL if there is none. */
static char *lex_token(struct mime_lex *lx)
{
	const char *s = lx->p;
	char *t;

	while (lx->p < lx->end && is_token((unsigned char)*lx->p))
		lx->p++;
	if (lx->p == s)
		return NULL;
	t = xstrndup(s, (size_t)(lx->p - s));
	for (char *c = t; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return t;
}

/* Skip to the next ';' that is not inside a quoted string. */
static void lex_skip_param(struct mime_lex *lx)
{
	while (lx->p < lx->end && *lx->p != ';') {
		if (*lx->p == '"') {
			struct buf junk;

			buf_init(&junk, 0);
			(void)mime_lex_quoted(lx, &junk);
		} else {
			lx->p++;
		}
	}
}

/* ---- parameters, RFC 2045 and RFC 2231 ------------------------------------------------- */

/* One name=value as written: name*2*=... is base "name", section 2, extended. */
struct raw_param {
	char *base;
	char *value;
	long section;		/* -1: not a continuation */
	bool ext;
};

/* A parameter value: a quoted string, or (leniently, as mailers write boundaries like
 * ----=_Part_1 unquoted) any run of printable bytes up to ';', a blank or a comment. NULL
 * for a quoted string that is not closed. */
static char *lex_param_value(struct mime_lex *lx)
{
	struct buf v;
	const char *s = lx->p;

	if (lx->p < lx->end && *lx->p == '"') {
		buf_init(&v, MIME_FIELD_MAX);
		if (!mime_lex_quoted(lx, &v)) {
			buf_free(&v);
			return NULL;
		}
		return v.data ? v.data : xstrdup("");
	}
	while (lx->p < lx->end && (unsigned char)*lx->p > 0x20 && *lx->p != 0x7f &&
	       *lx->p != ';' && *lx->p != '(' && *lx->p != '"')
		lx->p++;
	return xstrndup(s, (size_t)(lx->p - s));
}

/* Split name*N* into base, section and the extended flag. */
static void split_param_name(struct raw_param *rp, char *name)
{
	char *star = strchr(name, '*');

	rp->section = -1;
	rp->ext = false;
	if (star == NULL) {
		rp->base = name;
		return;
	}
	*star++ = '\0';
	rp->base = name;
	if (*star == '\0') {
		rp->ext = true;
		return;
	}
	if (*star >= '0' && *star <= '9' && strspn(star, "0123456789") <= 3) {
		char *end;

		rp->section = strtol(star, &end, 10);
		if (*end == '*' && end[1] == '\0')
			rp->ext = true;
		else if (*end != '\0' || (star[0] == '0' && star[1] != '\0' && star[1] != '*'))
			rp->section = -2;	/* junk after the number, or a leading zero */
	} else {
		rp->section = -2;
	}
}

static size_t parse_raw_params(struct mime_lex *lx, struct raw_param *rp, size_t max)
{
	size_t n = 0;

	while (mime_lex_cfws(lx, NULL) && n < max) {
		char *name;

		if (*lx->p == ';') {
			lx->p++;
			continue;
		}
		name = lex_token(lx);
		if (name == NULL || !mime_lex_cfws(lx, NULL) || *lx->p != '=') {
			free(name);
			lex_skip_param(lx);
			continue;
		}
		lx->p++;
		(void)mime_lex_cfws(lx, NULL);
		split_param_name(&rp[n], name);
		rp[n].value = lex_param_value(lx);
		if (rp[n].section == -2 || rp[n].value == NULL) {
			free(rp[n].base);
			free(rp[n].value);
		} else {
			n++;
		}
		if (mime_lex_cfws(lx, NULL) && *lx->p != ';')
			lex_skip_param(lx);
	}
	return n;
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

static void append_pct_decoded(struct buf *b, const char *s)
{
	for (; *s; s++) {
		int hi, lo;

		if (*s == '%' && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
			(void)buf_append_char(b, (char)(hi * 16 + lo));
			s += 2;
		} else {
			(void)buf_append_char(b, *s);
		}
	}
}

/* The text of an extended value after its charset'language' prefix; the charset is
 * copied to cs. */
static const char *split_charset(const char *v, char *cs, size_t cs_size)
{
	const char *q1 = strchr(v, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;

	cs[0] = '\0';
	if (q2 == NULL)
		return v;
	if ((size_t)(q1 - v) < cs_size) {
		memcpy(cs, v, (size_t)(q1 - v));
		cs[q1 - v] = '\0';
	}
	return q2 + 1;
}

/* The RFC 2231 value of base: "base*" or the sections base*0, base*1... joined, decoded
 * and converted to UTF-8. NULL if there is none. */
static char *joined_value(struct raw_param *rp, size_t n, const char *base)
{
	struct buf raw, out;
	char cs[64] = "";
	bool any = false;

	buf_init(&raw, MIME_FIELD_MAX);
	for (size_t i = 0; i < n && !any; i++)
		if (rp[i].section == -1 && rp[i].ext && strcmp(rp[i].base, base) == 0) {
			append_pct_decoded(&raw, split_charset(rp[i].value, cs, sizeof(cs)));
			any = true;
		}
	/* the sections base*0, base*1...; skipped when base* was found */
	for (long sec = 0; !any || sec > 0; sec++) {
		size_t i = 0;

		while (i < n && (rp[i].section != sec || strcmp(rp[i].base, base) != 0))
			i++;
		if (i == n)
			break;
		any = true;
		if (!rp[i].ext)
			(void)buf_append_str(&raw, rp[i].value);
		else if (sec == 0)
			append_pct_decoded(&raw, split_charset(rp[i].value, cs, sizeof(cs)));
		else
			append_pct_decoded(&raw, rp[i].value);
	}
	if (!any)
		return NULL;
	buf_init(&out, MIME_FIELD_MAX * 3);
	(void)mime_to_utf8(cs[0] ? cs : NULL, raw.data ? raw.data : "", raw.len, &out);
	buf_free(&raw);
	return out.data ? out.data : xstrdup("");
}

static bool seen_base(const struct mime_param *ps, size_t n, const char *base)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ps[i].name, base) == 0)
			return true;
	return false;
}

/* Parameters after the cursor, in the order their names first appear; an RFC 2231 value
 * wins over a plain one of the same name. */
static void parse_params(struct mime_lex *lx, struct mime_param **out, size_t *nout)
{
	struct raw_param rp[MIME_MAX_PARAMS];
	size_t n = parse_raw_params(lx, rp, MIME_MAX_PARAMS), np = 0;
	struct mime_param *ps = n ? xcalloc(n, sizeof(*ps)) : NULL;

	for (size_t i = 0; i < n; i++) {
		char *v;

		if (seen_base(ps, np, rp[i].base))
			continue;
		v = joined_value(rp, n, rp[i].base);
		if (v == NULL) {
			if (rp[i].section != -1 || rp[i].ext)
				continue;
			v = xstrdup(rp[i].value);
		}
		ps[np].name = xstrdup(rp[i].base);
		ps[np++].value = v;
	}
	for (size_t i = 0; i < n; i++) {
		free(rp[i].base);
		free(rp[i].value);
	}
	if (np == 0) {
		free(ps);
		ps = NULL;
	}
	*out = ps;
	*nout = np;
}

const char *mime_param(const struct mime_part *p, const char *name)
{
	for (size_t i = 0; i < p->nparams; i++)
		if (strcmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

/* ---- the Content-* fields -------------------------------------------------------------- */

static void parse_content_type(struct mime_part *p, const char *v)
{
	struct mime_lex lx = { v, v + strlen(v) };
	char *type, *subtype = NULL;

	(void)mime_lex_cfws(&lx, NULL);
	type = lex_token(&lx);
	if (type != NULL && mime_lex_cfws(&lx, NULL) && *lx.p == '/') {
		lx.p++;
		(void)mime_lex_cfws(&lx, NULL);
		subtype = lex_token(&lx);
	}
	/* not a valid type: the default applies (RFC 2045 §5.2) */
	if (subtype == NULL || (mime_lex_cfws(&lx, NULL) && *lx.p != ';')) {
		free(type);
		free(subtype);
		return;
	}
	p->type = type;
	p->subtype = subtype;
	parse_params(&lx, &p->params, &p->nparams);
}

static void parse_disposition(struct mime_part *p, const char *v)
{
	struct mime_lex lx = { v, v + strlen(v) };
	const char *s;

	(void)mime_lex_cfws(&lx, NULL);
	s = lx.p;
	while (lx.p < lx.end && is_token((unsigned char)*lx.p))
		lx.p++;
	if (lx.p == s)
		return;
	/* case kept and junk after the type skipped with the parameters, as Dovecot does */
	p->disposition = xstrndup(s, (size_t)(lx.p - s));
	parse_params(&lx, &p->disp_params, &p->ndisp_params);
}

/* Content-Language: a list of tags, kept as "en, de" (mime_imap.c splits it again), up to
 * anything that is not one; NULL when there is none. */
static char *parse_language(const char *v)
{
	struct mime_lex lx = { v, v + strlen(v) };
	struct buf b;

	buf_init(&b, MIME_FIELD_MAX);
	while (mime_lex_cfws(&lx, NULL)) {
		const char *s = lx.p;

		while (lx.p < lx.end && is_token((unsigned char)*lx.p))
			lx.p++;
		if (lx.p > s) {
			if (b.len > 0)
				(void)buf_append_str(&b, ", ");
			(void)buf_append(&b, s, (size_t)(lx.p - s));
		}
		if (mime_lex_cfws(&lx, NULL) && *lx.p++ != ',')
			break;
	}
	return b.data;
}

static char *parse_encoding(const char *v)
{
	struct mime_lex lx = { v, v + strlen(v) };
	char *t;

	(void)mime_lex_cfws(&lx, NULL);
	t = lex_token(&lx);
	if (t == NULL || mime_lex_cfws(&lx, NULL)) {	/* none, or junk after it */
		free(t);
		return xstrdup("7BIT");
	}
	for (char *c = t; *c; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	return t;
}

/* Content-Location may be folded anywhere; RFC 2557 §4.4.2: the blanks are not part of it. */
static char *strip_blanks(char *s)
{
	char *o = s;

	for (char *i = s; *i; i++)
		if (*i != ' ' && *i != '\t')
			*o++ = *i;
	*o = '\0';
	return s;
}

static void set_once(char **slot, char *value)
{
	if (*slot == NULL)
		*slot = value;
	else
		free(value);
}

/* The Content-* fields of p's header; the first of each counts. */
static void parse_content_fields(const struct parser *ps, struct mime_part *p, bool digest)
{
	const char *hdr = ps->data + p->start;
	struct mime_field f;
	size_t pos = 0;
	bool seen_type = false, seen_disp = false;

	while (mime_field_next(hdr, p->header_len, &pos, &f)) {
		char *v;

		if (f.name_len < 8 || strncasecmp(f.name, "Content-", 8) != 0)
			continue;
		v = mime_unfold(f.value, f.value_len);
		if (field_is(&f, "Content-Type") && !seen_type) {
			seen_type = true;
			parse_content_type(p, v);
		} else if (field_is(&f, "Content-Disposition") && !seen_disp) {
			seen_disp = true;
			parse_disposition(p, v);
		} else if (field_is(&f, "Content-Transfer-Encoding")) {
			set_once(&p->encoding, parse_encoding(v));
		} else if (field_is(&f, "Content-Language")) {
			set_once(&p->language, parse_language(v));
		} else if (field_is(&f, "Content-ID")) {
			set_once(&p->id, v);
			continue;
		} else if (field_is(&f, "Content-Description")) {
			set_once(&p->description, v);
			continue;
		} else if (field_is(&f, "Content-MD5")) {
			set_once(&p->md5, v);
			continue;
		} else if (field_is(&f, "Content-Location")) {
			set_once(&p->location, strip_blanks(v));
			continue;
		}
		free(v);
	}
	if (p->type == NULL) {
		p->type = xstrdup(digest ? "message" : "text");
		p->subtype = xstrdup(digest ? "rfc822" : "plain");
	}
	if (p->encoding == NULL)
		p->encoding = xstrdup("7BIT");
}

/* ---- the parts ------------------------------------------------------------------------- */

static bool part_is(const struct mime_part *p, const char *type, const char *subtype)
{
	return strcmp(p->type, type) == 0 && (subtype == NULL || strcmp(p->subtype, subtype) == 0);
}

/* message/rfc822 is parsed only when it is not encoded (RFC 2046 §5.2.1 allows no other
 * encoding; Dovecot shows an encoded one with an empty envelope and body, and so do we). */
static bool identity_encoding(const struct mime_part *p)
{
	return strcmp(p->encoding, "7BIT") == 0 || strcmp(p->encoding, "8BIT") == 0 ||
	       strcmp(p->encoding, "BINARY") == 0;
}

/* A container too deep or past MIME_MAX_PARTS: an opaque body, shown as Dovecot does. */
static void make_opaque(struct mime_part *p)
{
	free(p->type);
	free(p->subtype);
	p->type = xstrdup("application");
	p->subtype = xstrdup("octet-stream");
}

static struct mime_part *new_part(struct parser *ps)
{
	ps->nparts++;
	return xcalloc(1, sizeof(struct mime_part));
}

static int parse_entity(struct parser *ps, struct mime_part *p, int depth, bool digest);

/* The body of multipart p from ps->pos: preamble, parts, epilogue. A multipart without a
 * boundary parameter or without any delimiter line has no parts. */
static int parse_multipart(struct parser *ps, struct mime_part *p, int depth)
{
	const char *b = mime_param(p, "boundary");
	size_t me = ps->nbound;
	struct mime_part **tail = &p->child;
	bool digest = strcmp(p->subtype, "digest") == 0;
	int hit;

	if (b == NULL || *b == '\0' || me >= MIME_MAX_DEPTH)
		return scan_body(ps);
	ps->bound[me] = b;
	ps->bound_len[me] = strlen(b);
	ps->nbound++;
	hit = scan_body(ps);
	while (hit == (int)me && !ps->close && ps->nparts < MIME_MAX_PARTS) {
		struct mime_part *c = new_part(ps);

		ps->pos = line_next(ps, ps->pos);
		*tail = c;
		tail = &c->next;
		p->nchildren++;
		hit = parse_entity(ps, c, depth + 1, digest);
	}
	ps->nbound = me;
	if (hit == (int)me) {	/* the close delimiter (or the parts limit): the rest is epilogue */
		bool closed = ps->close;
		size_t epilogue = ps->pos = line_next(ps, ps->pos);

		hit = scan_body(ps);
		ps->keep_eol = closed && hit >= 0 && ps->pos == epilogue;
	}
	return hit;
}

/* Parse the entity (header and body) at ps->pos into p. Returns how it ended: the index of
 * the boundary line it stopped at (ps->pos is at that line) or -1 at the end of the data. */
static int parse_entity(struct parser *ps, struct mime_part *p, int depth, bool digest)
{
	bool room = depth + 1 < MIME_MAX_DEPTH && ps->nparts < MIME_MAX_PARTS;
	int hit;

	p->start = ps->pos;
	hit = scan_header(ps, p);
	parse_content_fields(ps, p, digest);
	if (hit >= 0) {
		p->body_len = p->body_lines = 0;
		return hit;
	}
	if ((part_is(p, "multipart", NULL) || part_is(p, "message", "rfc822")) && !room)
		make_opaque(p);
	if (part_is(p, "multipart", NULL)) {
		hit = parse_multipart(ps, p, depth);
	} else if (part_is(p, "message", "rfc822") && identity_encoding(p)) {
		p->child = new_part(ps);
		p->nchildren = 1;
		hit = parse_entity(ps, p->child, depth + 1, false);
	} else {
		hit = scan_body(ps);
	}
	finish_body(ps, p, hit);
	return hit;
}

int mime_parse(const char *data, size_t len, struct mime_msg *out)
{
	struct parser *ps = xcalloc(1, sizeof(*ps));

	ps->data = data;
	ps->len = len;
	out->data = data;
	out->len = len;
	out->root = new_part(ps);
	(void)parse_entity(ps, out->root, 0, false);
	out->nparts = ps->nparts;
	free(ps);
	return 0;
}

static void free_params(struct mime_param *ps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ps[i].name);
		free(ps[i].value);
	}
	free(ps);
}

static void free_part(struct mime_part *p)
{
	while (p != NULL) {
		struct mime_part *next = p->next;

		free_part(p->child);
		free(p->type);
		free(p->subtype);
		free_params(p->params, p->nparams);
		free(p->id);
		free(p->description);
		free(p->encoding);
		free(p->disposition);
		free_params(p->disp_params, p->ndisp_params);
		free(p->language);
		free(p->location);
		free(p->md5);
		free(p);
		p = next;
	}
}

void mime_free(struct mime_msg *m)
{
	free_part(m->root);
	m->root = NULL;
	m->nparts = 0;
}

/* ---- section numbers --------------------------------------------------------------------- */

/* RFC 3501 §6.4.5 numbering, as Dovecot reads it: the parts of a multipart are 1..n; a part
 * that is not multipart has only part 1, itself, and nothing below it unless it is a
 * message/rfc822, whose numbers go on inside the embedded message. */
const struct mime_part *mime_find(const struct mime_msg *m, const char *path)
{
	const struct mime_part *p = m->root;
	const char *s = path;

	if (*s == '\0')
		return p;
	while (p != NULL) {
		unsigned long num = 0;
		const char *start = s;
		bool more;

		while (*s >= '0' && *s <= '9' && s - start < 9)
			num = num * 10 + (unsigned long)(*s++ - '0');
		if (s == start || num == 0 || *start == '0' || (*s != '\0' && *s != '.'))
			return NULL;
		more = *s == '.';
		if (more && *++s == '\0')
			return NULL;
		if (part_is(p, "multipart", NULL)) {
			for (p = p->child; p != NULL && num > 1; num--)
				p = p->next;
		} else if (num != 1 || (more && !part_is(p, "message", "rfc822"))) {
			return NULL;
		}
		if (!more)
			return p;
		if (p != NULL && part_is(p, "message", "rfc822"))
			p = p->child;
	}
	return NULL;
}
