/*
 * mime_section.c: the contents of BODY[section] (RFC 3501 §6.4.5): the whole message, a
 * header, a header subset (HEADER.FIELDS / HEADER.FIELDS.NOT), a body (TEXT) or a part by
 * number with its MIME header. A part that does not exist gives nothing, as does HEADER or
 * TEXT of a part that is not a message/rfc822; a section that breaks the grammar is EINVAL.
 * NUL bytes are sent as 0x80.
 */
#include "mime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_priv.h"
#include "util.h"

#define FIELD_NAMES_MAX	256	/* names in one HEADER.FIELDS list */

enum what { W_ALL, W_BODY, W_HEADER, W_TEXT, W_MIME, W_FIELDS, W_FIELDS_NOT };

struct names {
	char *store;		/* the names, each NUL-terminated */
	const char *name[FIELD_NAMES_MAX];
	size_t n;
};

/* Length of the part number prefix "1.2.3" of s (each number non-zero, no leading zero);
 * -1 if the prefix breaks that grammar. */
static long part_prefix(const char *s)
{
	const char *p = s;

	while (*p >= '0' && *p <= '9') {
		const char *start = p;

		while (*p >= '0' && *p <= '9')
			p++;
		if (*start == '0' || p - start > 9)
			return -1;
		if (*p != '.' || p[1] < '0' || p[1] > '9')
			break;
		p++;
	}
	return p - s;
}

/* An astring in a header list: an atom or a quoted string (no literals in a section). */
static bool list_name(const char **sp, struct buf *store)
{
	const char *s = *sp;

	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
				s++;
			(void)buf_append_char(store, *s);
		}
		if (*s != '"')
			return false;
		s++;
	} else {
		const char *start = s;

		while (*s > ' ' && *s < 0x7f && strchr("(){%*\"\\", *s) == NULL)
			s++;
		if (s == start)
			return false;
		(void)buf_append(store, start, (size_t)(s - start));
	}
	*sp = s;
	return buf_append_char(store, '\0') == 0;
}

/* " (A B ...)" after HEADER.FIELDS[.NOT]; names are kept in nm. */
static bool parse_names(const char *s, struct names *nm)
{
	struct buf store;
	size_t off[FIELD_NAMES_MAX];
	bool ok = false;

	buf_init(&store, strlen(s) + 1);
	nm->n = 0;
	if (s[0] != ' ' || s[1] != '(')
		goto out;
	s += 2;
	while (*s != ')') {
		if (nm->n == FIELD_NAMES_MAX || (nm->n > 0 && *s++ != ' '))
			goto out;
		off[nm->n++] = store.len;
		if (!list_name(&s, &store))
			goto out;
	}
	ok = nm->n > 0 && s[1] == '\0';
out:
	nm->store = store.data;
	for (size_t i = 0; ok && i < nm->n; i++)
		nm->name[i] = store.data + off[i];
	if (!ok) {
		buf_free(&store);
		nm->store = NULL;
	}
	return ok;
}

/* What follows the part number: "", HEADER, TEXT, MIME (after a number only) or the field
 * lists. */
static bool parse_what(const char *s, bool numbered, enum what *w, struct names *nm)
{
	static const char fields[] = "HEADER.FIELDS", not[] = ".NOT";
	const char *rest = s + sizeof(fields) - 1;

	if (*s == '\0')
		*w = numbered ? W_BODY : W_ALL;
	else if (strcasecmp(s, "HEADER") == 0)
		*w = W_HEADER;
	else if (strcasecmp(s, "TEXT") == 0)
		*w = W_TEXT;
	else if (strcasecmp(s, "MIME") == 0 && numbered)
		*w = W_MIME;
	else if (strncasecmp(s, fields, sizeof(fields) - 1) != 0)
		return false;
	else if (strncasecmp(rest, not, sizeof(not) - 1) == 0) {
		*w = W_FIELDS_NOT;
		return parse_names(rest + sizeof(not) - 1, nm);
	} else {
		*w = W_FIELDS;
		return parse_names(rest, nm);
	}
	return true;
}

static bool listed(const struct names *nm, const struct mime_field *f)
{
	for (size_t i = 0; i < nm->n; i++)
		if (strlen(nm->name[i]) == f->name_len &&
		    strncasecmp(nm->name[i], f->name, f->name_len) == 0)
			return true;
	return false;
}

/* Append p[0..n) with each NUL byte as 0x80: an IMAP literal cannot carry NUL (RFC 3501
 * CHAR8), and Dovecot sends 0x80 too. */
static int put_bytes(struct buf *out, const char *p, size_t n)
{
	const char *end = p + n, *nul;

	while ((nul = memchr(p, '\0', (size_t)(end - p))) != NULL) {
		if (buf_append(out, p, (size_t)(nul - p)) < 0 || buf_append_char(out, '\x80') < 0)
			return -1;
		p = nul + 1;
	}
	return buf_append(out, p, (size_t)(end - p));
}

/* The fields of p's header that are (or are not) listed, then the blank line. */
static int put_fields(const struct mime_msg *m, const struct mime_part *p,
		      const struct names *nm, bool want, struct buf *out)
{
	const char *hdr = m->data + p->start;
	struct mime_field f;
	size_t pos = 0;

	while (mime_field_next(hdr, p->header_len, &pos, &f)) {
		if (listed(nm, &f) != want)
			continue;
		if (put_bytes(out, f.raw, f.raw_len) < 0)
			return -1;
		if (f.raw[f.raw_len - 1] != '\n' && buf_append_str(out, "\r\n") < 0)
			return -1;	/* the header's last line had no line end */
	}
	return buf_append_str(out, "\r\n");
}

static int put_range(const struct mime_msg *m, size_t start, size_t len, struct buf *out)
{
	return put_bytes(out, m->data + start, len);
}

int mime_section(const struct mime_msg *m, const char *section, struct buf *out)
{
	long plen = part_prefix(section);
	struct names nm = { NULL, { NULL }, 0 };
	const struct mime_part *p = m->root;
	enum what w;
	int rc = 0;

	if (plen < 0 || (plen > 0 && section[plen] != '\0' && section[plen] != '.') ||
	    (plen > 0 && section[plen] == '.' && section[plen + 1] == '\0') ||
	    !parse_what(section + plen + (section[plen] == '.'), plen > 0, &w, &nm)) {
		errno = EINVAL;
		return -1;
	}
	if (plen > 0) {
		char *path = xstrndup(section, (size_t)plen);

		p = mime_find(m, path);
		free(path);
	}
	/* HEADER, TEXT and the field lists of a numbered part are those of its message */
	if (p != NULL && plen > 0 && w != W_BODY && w != W_MIME)
		p = strcmp(p->type, "message") == 0 && strcmp(p->subtype, "rfc822") == 0 ? p->child
											  : NULL;
	if (p == NULL)
		goto out;
	switch (w) {
	case W_ALL:
		rc = put_range(m, 0, m->len, out);
		break;
	case W_BODY:
	case W_TEXT:
		rc = put_range(m, p->body_start, p->body_len, out);
		break;
	case W_HEADER:
	case W_MIME:
		rc = put_range(m, p->start, p->header_len, out);
		break;
	case W_FIELDS:
	case W_FIELDS_NOT:
		rc = put_fields(m, p, &nm, w == W_FIELDS, out);
		break;
	}
out:
	free(nm.store);
	return rc;
}
