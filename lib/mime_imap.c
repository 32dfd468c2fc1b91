/*
 * mime_imap.c: the IMAP views of a parsed message, RFC 3501 §7.4.2: ENVELOPE (with the
 * address lists of RFC 5322 §3.4, groups included) and BODY / BODYSTRUCTURE.
 *
 * Strings follow Dovecot's choices, so that clients see what they are used to:
 *  - a string is sent quoted unless it holds CR, LF or 8-bit bytes or more than four
 *    characters that need a backslash; then it is a literal {n};
 *  - text meant for people (Subject, display names) is tidied first: line breaks removed,
 *    tabs and runs of blanks made one space, blanks trimmed; when that changed anything, or
 *    it holds '"', '\' or 8-bit bytes, it goes as a literal.
 * Both renderings include their outer parentheses: the caller writes "ENVELOPE " or
 * "BODYSTRUCTURE " and then this.
 */
#include "mime.h"

#include <stdlib.h>
#include <string.h>

#include "mime_priv.h"
#include "util.h"

#define QUOTED_MAX_SPECIALS	4
#define ADDR_MAX		5000	/* addresses shown per header field */

/* ---- strings --------------------------------------------------------------------------- */

static int put_literal(struct buf *out, const char *s, size_t n)
{
	if (buf_printf(out, "{%zu}\r\n", n) < 0)
		return -1;
	return buf_append(out, s, n);
}

static int put_string(struct buf *out, const char *s, size_t n)
{
	size_t specials = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n' || c >= 0x80 || c == 0)
			return put_literal(out, s, n);
		if ((c == '"' || c == '\\') && ++specials > QUOTED_MAX_SPECIALS)
			return put_literal(out, s, n);
	}
	if (buf_append_char(out, '"') < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (((s[i] == '"' || s[i] == '\\') && buf_append_char(out, '\\') < 0) ||
		    buf_append_char(out, s[i]) < 0)
			return -1;
	return buf_append_char(out, '"');
}

static int put_nstring(struct buf *out, const char *s)
{
	return s ? put_string(out, s, strlen(s)) : buf_append_str(out, "NIL");
}

/* Text for people, tidied as described at the top. */
static int put_human(struct buf *out, const char *s, size_t n)
{
	struct buf t;
	bool plain = true, blank = true;	/* blank: the last byte kept was a blank */
	int rc;

	buf_init(&t, 3 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n') {
			plain = false;
		} else if (c == 0) {
			(void)buf_append_str(&t, "\xef\xbf\xbd");	/* U+FFFD, as Dovecot does */
			plain = blank = false;
		} else if (c == ' ' || c == '\t') {
			if (blank || c == '\t')
				plain = false;
			if (!blank)
				(void)buf_append_char(&t, ' ');
			blank = true;
		} else {
			if (c == '"' || c == '\\' || c >= 0x80)
				plain = false;
			(void)buf_append_char(&t, (char)c);
			blank = false;
		}
	}
	if (blank && t.len > 0) {
		t.len--;	/* a trailing blank */
		plain = false;
	}
	if (plain)
		rc = put_string(out, buf_cstr(&t), t.len);
	else if (t.len == 0)
		rc = buf_append_str(out, "\"\"");
	else
		rc = put_literal(out, t.data, t.len);
	buf_free(&t);
	return rc;
}

/* ---- addresses ------------------------------------------------------------------------- */

struct addr {
	char *name, *route, *mailbox, *domain;	/* NULL: NIL */
};

struct addr_list {
	struct addr *a;
	size_t n, cap;
};

static void add_addr(struct addr_list *l, char *name, char *route, char *mailbox, char *domain)
{
	if (l->n == ADDR_MAX) {
		free(name);
		free(route);
		free(mailbox);
		free(domain);
		return;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->a = xreallocarray(l->a, l->cap, sizeof(*l->a));
	}
	l->a[l->n++] = (struct addr){ name, route, mailbox, domain };
}

static void free_addrs(struct addr_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->a[i].name);
		free(l->a[i].route);
		free(l->a[i].mailbox);
		free(l->a[i].domain);
	}
	free(l->a);
}

/* Heap copy of b's contents, or NULL when it is empty. */
static char *take(struct buf *b)
{
	char *s = b->len ? xstrndup(b->data, b->len) : NULL;

	buf_reset(b);
	return s;
}

static bool at(const struct mime_lex *lx, char c)
{
	return lx->p < lx->end && *lx->p == c;
}

/* A run of atext and dots (a dot-atom, or an obsolete phrase word like "Q."). */
static bool lex_atoms(struct mime_lex *lx, struct buf *out)
{
	const char *s = lx->p;

	while (lx->p < lx->end && (mime_is_atext((unsigned char)*lx->p) || *lx->p == '.'))
		lx->p++;
	(void)buf_append(out, s, (size_t)(lx->p - s));
	return lx->p > s;
}

/* phrase = 1*word: the words joined by one space, quoted strings unquoted. */
static void lex_phrase(struct mime_lex *lx, struct buf *out)
{
	bool first = true;

	while (mime_lex_cfws(lx, NULL)) {
		size_t before = out->len;

		if (!first)
			(void)buf_append_char(out, ' ');
		if (*lx->p == '"') {
			(void)mime_lex_quoted(lx, out);
		} else if (!lex_atoms(lx, out)) {
			out->len = before;
			if (out->data)
				out->data[before] = '\0';
			return;
		}
		first = false;
	}
}

/* local-part: dot-atom or quoted string pieces, unquoted; false (and out emptied) if a
 * quoted string is not closed. */
static bool lex_local(struct mime_lex *lx, struct buf *out)
{
	for (;;) {
		if (at(lx, '"') && !mime_lex_quoted(lx, out)) {
			buf_reset(out);
			return false;
		}
		if (!at(lx, '"') && !lex_atoms(lx, out))
			return true;
	}
}

/* domain: dot-atom or a domain literal "[...]" kept with its brackets. */
static void lex_domain(struct mime_lex *lx, struct buf *out)
{
	if (!at(lx, '[')) {
		(void)lex_atoms(lx, out);
		return;
	}
	while (lx->p < lx->end) {
		char c = *lx->p++;

		if (c == '\\' && lx->p < lx->end)
			c = *lx->p++;
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			(void)buf_append_char(out, c);
		if (c == ']')
			return;
	}
}

/* The obsolete source route "@a,@b:" of an angle address; false if it does not end in ':'. */
static bool lex_route(struct mime_lex *lx, struct buf *out)
{
	while (mime_lex_cfws(lx, NULL)) {
		if (*lx->p == ':') {
			lx->p++;
			return true;
		}
		if (*lx->p == ',') {
			lx->p++;
			continue;
		}
		if (*lx->p != '@')
			return false;
		if (out->len > 0)
			(void)buf_append_char(out, ',');
		(void)buf_append_char(out, '@');
		lx->p++;
		(void)mime_lex_cfws(lx, NULL);
		lex_domain(lx, out);
	}
	return false;
}

/* Skip to the end of a broken angle address. */
static void skip_angle(struct mime_lex *lx)
{
	while (lx->p < lx->end && *lx->p != '>' && *lx->p != ',')
		lx->p++;
	if (at(lx, '>'))
		lx->p++;
}

/* angle-addr after its phrase: "<" [route ":"] local-part "@" domain ">". A broken one gets
 * Dovecot's marks: route INVALID_ROUTE, domain SYNTAX_ERROR. */
static void lex_angle_addr(struct mime_lex *lx, struct buf *tmp, struct addr *a)
{
	bool broken = false;

	lx->p++;
	(void)mime_lex_cfws(lx, NULL);
	if (at(lx, '@') && !lex_route(lx, tmp)) {
		buf_reset(tmp);
		(void)buf_append_str(tmp, "INVALID_ROUTE");
		broken = true;
	}
	a->route = take(tmp);
	(void)mime_lex_cfws(lx, NULL);
	(void)lex_local(lx, tmp);
	a->mailbox = take(tmp);
	if (mime_lex_cfws(lx, NULL) && *lx->p == '@') {
		lx->p++;
		(void)mime_lex_cfws(lx, NULL);
		lex_domain(lx, tmp);
		a->domain = take(tmp);
	}
	if (!mime_lex_cfws(lx, NULL) || *lx->p != '>' || broken) {
		free(a->domain);
		a->domain = xstrdup("SYNTAX_ERROR");
	}
	skip_angle(lx);
}

/* addr-spec; a comment after it is the name ("addr (Real Name)"). */
static void lex_addr_spec(struct mime_lex *lx, struct buf *tmp, struct addr *a)
{
	struct buf comment;

	buf_init(&comment, MIME_FIELD_MAX);
	(void)mime_lex_cfws(lx, NULL);
	(void)lex_local(lx, tmp);
	a->mailbox = take(tmp);
	if (mime_lex_cfws(lx, &comment) && *lx->p == '@') {
		lx->p++;
		(void)mime_lex_cfws(lx, &comment);
		lex_domain(lx, tmp);
		a->domain = take(tmp);
		(void)mime_lex_cfws(lx, &comment);
	}
	a->name = take(&comment);
	buf_free(&comment);
}

/* mailbox = name-addr / addr-spec; what is missing is filled in as Dovecot does. */
static void lex_mailbox(struct mime_lex *lx, struct addr_list *l)
{
	const char *start = lx->p, *phrase_end;
	struct addr a = { NULL, NULL, NULL, NULL };
	struct buf tmp;
	char *phrase;

	buf_init(&tmp, MIME_FIELD_MAX);
	lex_phrase(lx, &tmp);
	phrase = take(&tmp);
	phrase_end = lx->p;
	if (mime_lex_cfws(lx, NULL) && *lx->p == '<') {
		a.name = phrase;
		lex_angle_addr(lx, &tmp, &a);
	} else {
		lx->p = start;
		lex_addr_spec(lx, &tmp, &a);
		if (a.domain == NULL && phrase != NULL && lx->p < phrase_end) {
			/* words that are no address: a name without one, as Dovecot shows it */
			free(a.mailbox);
			free(a.name);
			a.mailbox = NULL;
			a.name = phrase;
			lx->p = phrase_end;
		} else {
			free(phrase);
		}
	}
	add_addr(l, a.name, a.route, a.mailbox ? a.mailbox : xstrdup("MISSING_MAILBOX"),
		 a.domain ? a.domain : xstrdup("MISSING_DOMAIN"));
	buf_free(&tmp);
}

/* Skip what is left of a broken address, up to the next ',' at the top level. */
static void skip_address(struct mime_lex *lx, bool in_group)
{
	while (mime_lex_cfws(lx, NULL) && *lx->p != ',' && !(in_group && *lx->p == ';')) {
		if (*lx->p == '"') {
			struct buf junk;

			buf_init(&junk, 0);
			(void)mime_lex_quoted(lx, &junk);
		} else {
			lx->p++;
		}
	}
}

/* group = display-name ":" [mailbox-list] ";": RFC 3501's start marker (NIL NIL name NIL),
 * the members, and the end marker (NIL NIL NIL NIL). */
static void lex_group(struct mime_lex *lx, struct addr_list *l, char *name)
{
	add_addr(l, NULL, NULL, name, NULL);
	while (mime_lex_cfws(lx, NULL)) {
		const char *before = lx->p;

		if (*lx->p == ';') {
			lx->p++;
			break;
		}
		if (*lx->p == ',') {
			lx->p++;
			continue;
		}
		lex_mailbox(lx, l);
		skip_address(lx, true);
		if (lx->p == before)
			lx->p++;
	}
	add_addr(l, NULL, NULL, NULL, NULL);
}

static void parse_addresses(const char *v, struct addr_list *l)
{
	struct mime_lex lx = { v, v + strlen(v) };
	struct buf phrase;

	buf_init(&phrase, MIME_FIELD_MAX);
	while (mime_lex_cfws(&lx, NULL)) {
		const char *start = lx.p;

		if (*lx.p == ',') {
			lx.p++;
			continue;
		}
		lex_phrase(&lx, &phrase);
		if (phrase.len > 0 && mime_lex_cfws(&lx, NULL) && *lx.p == ':') {
			lx.p++;
			lex_group(&lx, l, take(&phrase));
		} else {
			buf_reset(&phrase);
			lx.p = start;
			lex_mailbox(&lx, l);
		}
		skip_address(&lx, false);
		if (lx.p == start)
			lx.p++;		/* never stuck on a byte nothing above takes */
	}
	buf_free(&phrase);
}

static int put_address(struct buf *out, const struct addr *a)
{
	if (buf_append_char(out, '(') < 0)
		return -1;
	if ((a->name ? put_human(out, a->name, strlen(a->name)) : buf_append_str(out, "NIL")) < 0)
		return -1;
	if (buf_append_char(out, ' ') < 0 || put_nstring(out, a->route) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_nstring(out, a->mailbox) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_nstring(out, a->domain) < 0)
		return -1;
	return buf_append_char(out, ')');
}

/* The address list of field name, NIL when it is absent or names nobody; fallback (for
 * Sender and Reply-To, RFC 3501) is used instead then when given. */
static int put_addresses(const struct mime_msg *m, const struct mime_part *p, const char *name,
			 const char *fallback, struct buf *out)
{
	char *v = mime_header(m, p, name);
	struct addr_list l = { NULL, 0, 0 };
	int rc = 0;

	if (v)
		parse_addresses(v, &l);
	free(v);
	if (l.n == 0 && fallback)
		return put_addresses(m, p, fallback, NULL, out);
	if (l.n == 0)
		return buf_append_str(out, "NIL");
	rc = buf_append_char(out, '(');
	for (size_t i = 0; i < l.n && rc == 0; i++)
		rc = put_address(out, &l.a[i]);
	if (rc == 0)
		rc = buf_append_char(out, ')');
	free_addrs(&l);
	return rc;
}

/* ---- ENVELOPE ------------------------------------------------------------------------ */

static int put_field(const struct mime_msg *m, const struct mime_part *p, const char *name,
		     struct buf *out)
{
	char *v = mime_header(m, p, name);
	int rc = put_nstring(out, v);

	free(v);
	return rc;
}

static int put_subject(const struct mime_msg *m, const struct mime_part *p, struct buf *out)
{
	struct mime_field f;

	if (!mime_part_field(m, p, "Subject", &f))
		return buf_append_str(out, "NIL");
	return put_human(out, f.value, f.value_len < MIME_FIELD_MAX ? f.value_len : MIME_FIELD_MAX);
}

int mime_envelope(const struct mime_msg *m, const struct mime_part *p, struct buf *out)
{
	if (p == NULL)
		return buf_append_str(out, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	if (buf_append_char(out, '(') < 0 || put_field(m, p, "Date", out) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_subject(m, p, out) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_addresses(m, p, "From", NULL, out) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_addresses(m, p, "Sender", "From", out) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_addresses(m, p, "Reply-To", "From", out) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_addresses(m, p, "To", NULL, out) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_addresses(m, p, "Cc", NULL, out) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_addresses(m, p, "Bcc", NULL, out) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_field(m, p, "In-Reply-To", out) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_field(m, p, "Message-ID", out) < 0)
		return -1;
	return buf_append_char(out, ')');
}

/* ---- BODY and BODYSTRUCTURE ------------------------------------------------------------ */

/* What Dovecot shows for a multipart without parts and for an encoded message/rfc822. */
#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0"

static int put_params(struct buf *out, const struct mime_param *ps, size_t n, bool text)
{
	bool charset = false;

	if (n == 0 && !text)
		return buf_append_str(out, "NIL");
	if (buf_append_char(out, '(') < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ps[i].name, "charset") == 0)
			charset = true;
		if ((i > 0 && buf_append_char(out, ' ') < 0) ||
		    put_nstring(out, ps[i].name) < 0 || buf_append_char(out, ' ') < 0 ||
		    put_nstring(out, ps[i].value) < 0)
			return -1;
	}
	/* RFC 2045 §5.2: text without a charset is US-ASCII */
	if (text && !charset && buf_append_str(out, n ? " \"charset\" \"us-ascii\"" :
							  "\"charset\" \"us-ascii\"") < 0)
		return -1;
	return buf_append_char(out, ')');
}

static int put_language(struct buf *out, const char *lang)
{
	const char *s = lang;

	if (lang == NULL)
		return buf_append_str(out, "NIL");
	if (buf_append_char(out, '(') < 0)
		return -1;
	while (*s) {
		size_t n = strcspn(s, ",");

		if ((s != lang && buf_append_char(out, ' ') < 0) || put_string(out, s, n) < 0)
			return -1;
		s += n;
		s += strspn(s, ", ");
	}
	return buf_append_char(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc, each after a space. */
static int put_ext_common(struct buf *out, const struct mime_part *p)
{
	if (buf_append_char(out, ' ') < 0)
		return -1;
	if (p->disposition == NULL) {
		if (buf_append_str(out, "NIL") < 0)
			return -1;
	} else if (buf_append_char(out, '(') < 0 || put_nstring(out, p->disposition) < 0 ||
		   buf_append_char(out, ' ') < 0 ||
		   put_params(out, p->disp_params, p->ndisp_params, false) < 0 ||
		   buf_append_char(out, ')') < 0) {
		return -1;
	}
	if (buf_append_char(out, ' ') < 0 || put_language(out, p->language) < 0 ||
	    buf_append_char(out, ' ') < 0)
		return -1;
	return put_nstring(out, p->location);
}

static int put_body(const struct mime_msg *m, const struct mime_part *p, bool ext,
		    struct buf *out);

static int put_multipart(const struct mime_msg *m, const struct mime_part *p, bool ext,
			 struct buf *out)
{
	if (buf_append_char(out, '(') < 0)
		return -1;
	if (p->child == NULL &&
	    buf_append_str(out, ext ? EMPTY_BODY " NIL NIL NIL NIL)" : EMPTY_BODY ")") < 0)
		return -1;
	for (const struct mime_part *c = p->child; c != NULL; c = c->next)
		if (put_body(m, c, ext, out) < 0)
			return -1;
	if (buf_append_char(out, ' ') < 0 || put_nstring(out, p->subtype) < 0)
		return -1;
	if (ext && (buf_append_char(out, ' ') < 0 ||
		    put_params(out, p->params, p->nparams, false) < 0 || put_ext_common(out, p) < 0))
		return -1;
	return buf_append_char(out, ')');
}

/* message/rfc822: SP envelope SP body SP lines, for the embedded message. */
static int put_embedded(const struct mime_msg *m, const struct mime_part *p, bool ext,
			struct buf *out)
{
	if (buf_append_char(out, ' ') < 0 || mime_envelope(m, p->child, out) < 0 ||
	    buf_append_char(out, ' ') < 0)
		return -1;
	if (p->child == NULL) {
		if (buf_append_str(out, ext ? EMPTY_BODY " NIL NIL NIL NIL)" : EMPTY_BODY ")") < 0)
			return -1;
	} else if (put_body(m, p->child, ext, out) < 0) {
		return -1;
	}
	return buf_printf(out, " %zu", p->body_lines);
}

static int put_leaf(const struct mime_msg *m, const struct mime_part *p, bool ext,
		    struct buf *out)
{
	bool text = strcmp(p->type, "text") == 0;

	if (buf_append_char(out, '(') < 0 || put_nstring(out, p->type) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_nstring(out, p->subtype) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_params(out, p->params, p->nparams, text) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_nstring(out, p->id) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_nstring(out, p->description) < 0 ||
	    buf_append_char(out, ' ') < 0 || put_nstring(out, p->encoding) < 0 ||
	    buf_printf(out, " %zu", p->body_len) < 0)
		return -1;
	if (text && buf_printf(out, " %zu", p->body_lines) < 0)
		return -1;
	if (strcmp(p->type, "message") == 0 && strcmp(p->subtype, "rfc822") == 0 &&
	    put_embedded(m, p, ext, out) < 0)
		return -1;
	if (ext && (buf_append_char(out, ' ') < 0 || put_nstring(out, p->md5) < 0 ||
		    put_ext_common(out, p) < 0))
		return -1;
	return buf_append_char(out, ')');
}

static int put_body(const struct mime_msg *m, const struct mime_part *p, bool ext,
		    struct buf *out)
{
	if (strcmp(p->type, "multipart") == 0)
		return put_multipart(m, p, ext, out);
	return put_leaf(m, p, ext, out);
}

int mime_bodystructure(const struct mime_msg *m, const struct mime_part *p, bool extended,
		       struct buf *out)
{
	return put_body(m, p ? p : m->root, extended, out);
}
