/*
 * fuzz_mime.c: libFuzzer target for the MIME parser and its IMAP views (lib/mime*.c). Any
 * input must parse into a tree whose ranges lie inside the message and inside their parents,
 * within MIME_MAX_DEPTH and MIME_MAX_PARTS; BODY, BODYSTRUCTURE and ENVELOPE must be
 * well-formed IMAP (balanced lists, valid quoted strings, literals of the length they
 * announce); every part must be found again by its section number; BODY[section] must answer
 * (without NUL bytes) or refuse with EINVAL; decoded text must be valid UTF-8 within its
 * limit. Anything else aborts. Build and run: `make fuzz-mime`, `make fuzz-mime-run`.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TEXT_LIMIT 4096

/* ---- IMAP syntax --------------------------------------------------------------------- */

static const char *imap_value(const char *p, const char *end, int depth);

static const char *imap_quoted(const char *p, const char *end)
{
	for (p++; p < end && *p != '"'; p++) {
		if (*p == '\\') {
			if (p + 1 >= end || (p[1] != '"' && p[1] != '\\'))
				return NULL;
			p++;
		} else if (*p == '\r' || *p == '\n' || (unsigned char)*p >= 0x80 || *p == 0) {
			return NULL;
		}
	}
	return p < end ? p + 1 : NULL;
}

static const char *imap_literal(const char *p, const char *end)
{
	size_t n = 0;

	for (p++; p < end && *p >= '0' && *p <= '9'; p++)
		n = n * 10 + (size_t)(*p - '0');
	if (end - p < 3 || p[0] != '}' || p[1] != '\r' || p[2] != '\n')
		return NULL;
	p += 3;
	if ((size_t)(end - p) < n || memchr(p, '\0', n) != NULL)
		return NULL;
	return p + n;
}

static const char *imap_list(const char *p, const char *end, int depth)
{
	bool first = true;

	if (depth > 4 * MIME_MAX_DEPTH + 8)
		return NULL;
	for (p++; p < end && *p != ')'; first = false) {
		if (!first && *p == ' ')
			p++;
		else if (!first && *p != '(')	/* "(...)(...)" in a multipart */
			return NULL;
		if ((p = imap_value(p, end, depth + 1)) == NULL)
			return NULL;
	}
	return p < end ? p + 1 : NULL;
}

static const char *imap_value(const char *p, const char *end, int depth)
{
	if (p >= end)
		return NULL;
	if (*p == '(')
		return imap_list(p, end, depth);
	if (*p == '"')
		return imap_quoted(p, end);
	if (*p == '{')
		return imap_literal(p, end);
	if (end - p >= 3 && memcmp(p, "NIL", 3) == 0)
		return p + 3;
	if (*p < '0' || *p > '9')
		return NULL;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

static void check_imap(const struct buf *b)
{
	const char *end = b->data + b->len;

	if (b->len == 0 || b->data[0] != '(' || imap_value(b->data, end, 0) != end)
		abort();
}

/* ---- the tree ------------------------------------------------------------------------ */

static bool lower_token(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if ((*s >= 'A' && *s <= 'Z') || (unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static void check_part(const struct mime_msg *m, const struct mime_part *p, size_t lo,
		       size_t hi, int depth, size_t *count)
{
	size_t lines = 0, n = 0;

	if (depth >= MIME_MAX_DEPTH || ++*count > MIME_MAX_PARTS)
		abort();
	if (p->start < lo || p->start + p->header_len != p->body_start ||
	    p->body_start + p->body_len > hi || p->body_start + p->body_len > m->len)
		abort();
	for (size_t i = 0; i < p->body_len; i++)
		lines += m->data[p->body_start + i] == '\n';
	if (lines != p->body_lines)
		abort();
	if (!lower_token(p->type) || !lower_token(p->subtype) || p->encoding == NULL)
		abort();
	for (const char *e = p->encoding; *e; e++)
		if (*e >= 'a' && *e <= 'z')
			abort();
	for (size_t i = 0; i < p->nparams; i++)
		if (p->params[i].name == NULL || p->params[i].value == NULL)
			abort();
	for (const struct mime_part *c = p->child; c != NULL; c = c->next, n++)
		check_part(m, c, p->body_start, p->body_start + p->body_len, depth + 1, count);
	if (n != p->nchildren)
		abort();
	if (p->child && strcmp(p->type, "multipart") != 0 &&
	    !(strcmp(p->type, "message") == 0 && strcmp(p->subtype, "rfc822") == 0 && n == 1))
		abort();
}

static void check_numbers(const struct mime_msg *m, const struct mime_part *p, char *path,
			  size_t len);

static void check_number(const struct mime_msg *m, const struct mime_part *want, char *path,
			 size_t len, size_t i)
{
	int n = snprintf(path + len, 256 - len, "%s%zu", len ? "." : "", i);

	if (n < 0 || (size_t)n >= 256 - len)
		return;
	if (mime_find(m, path) != want)
		abort();
	check_numbers(m, want, path, len + (size_t)n);
	path[len] = '\0';
}

/* Every part is found again by its section number (RFC 3501 6.4.5). */
static void check_numbers(const struct mime_msg *m, const struct mime_part *p, char *path,
			  size_t len)
{
	size_t i = 1;

	if (strcmp(p->type, "multipart") != 0 && len == 0) {
		check_number(m, p, path, 0, 1);	/* a message that is not multipart is part 1 */
		return;
	}
	if (strcmp(p->type, "message") == 0 && p->child != NULL) {
		p = p->child;
		if (strcmp(p->type, "multipart") != 0) {
			check_number(m, p, path, len, 1);
			return;
		}
	}
	if (strcmp(p->type, "multipart") != 0)
		return;
	for (const struct mime_part *c = p->child; c != NULL && i <= 3; c = c->next, i++)
		check_number(m, c, path, len, i);
}

/* ---- text ------------------------------------------------------------------------------ */

static bool valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t len = s[i] < 0x80 ? 1 : s[i] >= 0xc2 && s[i] <= 0xdf ? 2 :
			     s[i] >= 0xe0 && s[i] <= 0xef ? 3 : s[i] >= 0xf0 && s[i] <= 0xf4 ? 4 : 0;

		if (len == 0 || n - i < len)
			return false;
		for (size_t k = 1; k < len; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += len;
	}
	return true;
}

static void check_text(char *s, size_t limit)
{
	size_t n = strlen(s);

	if (n > limit || !valid_utf8((const unsigned char *)s, n))
		abort();
	free(s);
}

static void check_sections(const struct mime_msg *m, const uint8_t *data, size_t size)
{
	static const char *const fixed[] = {
		"", "HEADER", "TEXT", "1", "1.MIME", "2", "2.HEADER", "2.TEXT", "1.1", "2.1.MIME",
		"HEADER.FIELDS (Subject From)", "1.HEADER.FIELDS.NOT (Content-Type)", "MIME",
	};
	char sec[65];
	struct buf b;
	size_t n = 0;

	buf_init(&b, 8 * size + 1024);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		buf_reset(&b);
		errno = 0;
		if (mime_section(m, fixed[i], &b) < 0 && errno != EINVAL)
			abort();
		if (b.len > 0 && memchr(b.data, '\0', b.len) != NULL)
			abort();	/* NUL cannot go in a literal */
	}
	/* the first line of the input as a section */
	while (n < size && n < 64 && data[n] != '\n' && data[n] != '\0')
		n++;
	memcpy(sec, data, n);
	sec[n] = '\0';
	buf_reset(&b);
	errno = 0;
	if (mime_section(m, sec, &b) < 0 && errno != EINVAL)
		abort();
	buf_free(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mime_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_msg m;
	struct buf b;
	size_t count = 0;
	char path[256] = "";
	char *copy, *s;

	if (mime_parse((const char *)data, size, &m) != 0)
		abort();
	if (m.nparts > MIME_MAX_PARTS || m.root == NULL)
		abort();
	check_part(&m, m.root, 0, size, 0, &count);
	if (count != m.nparts)
		abort();
	check_numbers(&m, m.root, path, 0);

	buf_init(&b, 64 * size + 4096);
	if (mime_bodystructure(&m, m.root, true, &b) != 0)
		abort();
	check_imap(&b);
	buf_reset(&b);
	if (mime_bodystructure(&m, m.root, false, &b) != 0)
		abort();
	check_imap(&b);
	buf_reset(&b);
	if (mime_envelope(&m, m.root, &b) != 0)
		abort();
	check_imap(&b);
	buf_free(&b);

	check_sections(&m, data, size);
	check_text(mime_body_text(&m, m.root, TEXT_LIMIT), TEXT_LIMIT);
	if ((s = mime_header(&m, m.root, "Subject")) != NULL)
		check_text(mime_decode_words(s), 4 * strlen(s) + 16);
	free(s);

	copy = strndup((const char *)data, size < 2048 ? size : 2048);
	if (copy == NULL)
		abort();
	check_text(mime_decode_words(copy), 4 * strlen(copy) + 16);
	free(copy);
	mime_free(&m);
	return 0;
}
