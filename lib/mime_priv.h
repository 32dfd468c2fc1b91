/*
 * mime_priv.h: what the lib/mime*.c files share and nobody else needs: walking the fields of
 * a header section, unfolding a value, a small RFC 5322 lexer (comments, quoted strings,
 * atoms) and charset conversion to UTF-8. The public API is mime.h.
 */
#ifndef POSTERN_MIME_PRIV_H
#define POSTERN_MIME_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "mime.h"

/* Header values longer than this are cut before they are parsed (the raw bytes that
 * BODY[HEADER] returns are never cut). */
#define MIME_FIELD_MAX		(64 * 1024)
/* Content-Type / Content-Disposition parameters kept per field. */
#define MIME_MAX_PARAMS		64

/* One header field: name, the raw value after the colon (leading blanks skipped; folds and
 * all, without the final line end) and the raw bytes of the whole field with its line ends.
 * A line without a colon is a field whose name is the whole line and whose value is empty. */
struct mime_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	const char *raw;
	size_t raw_len;
};

/* The next field of the header section hdr[0..len) at *pos; false at the end (the blank
 * line, or len). */
bool mime_field_next(const char *hdr, size_t len, size_t *pos, struct mime_field *f);
/* The first field of part p named name (any case); false if there is none. */
bool mime_part_field(const struct mime_msg *m, const struct mime_part *p, const char *name,
		     struct mime_field *f);
/* A value with its folds removed (CR and LF dropped), NUL bytes dropped, blanks trimmed at
 * both ends, cut at MIME_FIELD_MAX bytes; heap. */
char *mime_unfold(const char *v, size_t n);

/* The value of parameter name of p's Content-Type, or NULL. */
const char *mime_param(const struct mime_part *p, const char *name);

/* A cursor over an unfolded header value. */
struct mime_lex {
	const char *p, *end;
};

/* Skip blanks and (nested) comments; the text of the last comment skipped goes to comment
 * (replacing what was there) when comment is not NULL. False at the end of the input. */
bool mime_lex_cfws(struct mime_lex *lx, struct buf *comment);
/* At a '"': append the string's contents unescaped; false if it is not closed (what was
 * read is appended all the same and the cursor is at the end). */
bool mime_lex_quoted(struct mime_lex *lx, struct buf *out);
/* Is c an RFC 5322 atext character (any 8-bit byte counts as one: real mail has them). */
bool mime_is_atext(unsigned char c);

/* Append in[0..n) in charset (any case; NULL or unknown: taken as UTF-8) converted to UTF-8;
 * invalid input becomes U+FFFD. -1 only when out's limit is reached. */
int mime_to_utf8(const char *charset, const char *in, size_t n, struct buf *out);
/* Append UTF-8 input with invalid sequences replaced by U+FFFD. */
int mime_utf8_sanitize(const char *in, size_t n, struct buf *out);

#endif
