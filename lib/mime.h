/*
 * mime.h: the structure of an RFC 5322 / MIME message (RFC 2045-2047, 2231) and the IMAP
 * views of it (RFC 3501 §7.4.2: ENVELOPE, BODY, BODYSTRUCTURE, BODY[section]). Used by the
 * imap session for FETCH and SEARCH.
 *
 * The message is one buffer with CRLF line ends (the session converts what Maildir stores
 * with LF, so every offset and size here is what the client sees). Parsing never copies
 * the message; parts are ranges into it. Input is untrusted: nesting is bounded
 * (MIME_MAX_DEPTH; deeper parts are treated as opaque bodies), the number of parts is
 * bounded (MIME_MAX_PARTS), header lines and parameter lists are bounded, malformed input
 * degrades to text/plain or application/octet-stream as a real client would expect,
 * never to an error.
 */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MIME_MAX_DEPTH	32
#define MIME_MAX_PARTS	10000

struct mime_param {
	char *name;		/* lower-case */
	char *value;		/* RFC 2231 continuations joined; charset'lang' prefix kept
				 * out: value is decoded to UTF-8 when the charset is known */
};

struct mime_part {
	size_t start;		/* the part's first header byte */
	size_t header_len;	/* header including the blank line */
	size_t body_start, body_len;
	size_t body_lines;	/* lines in the body (text parts, message/rfc822) */
	char *type, *subtype;	/* lower-case; defaults text/plain (or message/rfc822 in a
				 * multipart/digest) */
	struct mime_param *params;	/* Content-Type parameters */
	size_t nparams;
	char *id, *description, *encoding;	/* NULL when absent; encoding upper-cased
						 * for the IMAP view, default "7BIT" */
	char *disposition;	/* NULL when absent */
	struct mime_param *disp_params;
	size_t ndisp_params;
	char *language, *location, *md5;
	struct mime_part *child;	/* multipart: first child; message/rfc822: the
					 * embedded message (one part) */
	struct mime_part *next;		/* next sibling */
	size_t nchildren;
};

struct mime_msg {
	const char *data;	/* the whole message, CRLF */
	size_t len;
	struct mime_part *root;	/* the message itself */
	size_t nparts;
};

/* Parse; 0, or -1 only on allocation limits (ENOMEM). The tree borrows data. */
int mime_parse(const char *data, size_t len, struct mime_msg *out);
void mime_free(struct mime_msg *m);

/* The part at a section path "1.2.3" (numbers only; "" = the root message); NULL if it
 * does not exist. For a message/rfc822 part, "N" is the part and its children are those
 * of the embedded message, as RFC 3501 defines. */
const struct mime_part *mime_find(const struct mime_msg *m, const char *path);

/* IMAP renderings appended to out (-1 if out's limit is reached). */
int mime_envelope(const struct mime_msg *m, const struct mime_part *p, struct buf *out);
int mime_bodystructure(const struct mime_msg *m, const struct mime_part *p, bool extended,
		       struct buf *out);

/* BODY[section] contents: section is the text inside the brackets, upper-case or not:
 * "", "HEADER", "TEXT", "MIME", "1.2", "1.2.HEADER", "HEADER.FIELDS (A B)",
 * "HEADER.FIELDS.NOT (A B)", "1.TEXT". Appends the bytes to out; -1 with errno EINVAL for
 * a malformed section (the caller answers BAD). A part that does not exist gives "".
 * NUL bytes come out as 0x80 (as in Dovecot: an IMAP literal cannot carry NUL). */
int mime_section(const struct mime_msg *m, const char *section, struct buf *out);

/* The unfolded value of the first header field `name` of part p (NULL if absent), heap. */
char *mime_header(const struct mime_msg *m, const struct mime_part *p, const char *name);
/* RFC 2047 decoding of a header value into UTF-8 (charsets: UTF-8, US-ASCII, ISO-8859-x,
 * Windows-125x through iconv), heap. */
char *mime_decode_words(const char *value);
/* The decoded text of a part's body (base64, quoted-printable) converted to UTF-8 when its
 * charset is known, for SEARCH BODY/TEXT; heap, at most limit bytes. */
char *mime_body_text(const struct mime_msg *m, const struct mime_part *p, size_t limit);

/* Load the charset converters (glibc gconv modules) for the charsets mail commonly uses and
 * keep them open, so that decoding still works after the session chroot()s into a home
 * without /usr/lib/.../gconv. Call once, before chroot; calling it again does no harm. */
void mime_init(void);
/* The same for just these charsets (each loaded converter costs its module's memory in
 * every process that loads it: a mail session preloads what imap_search_charsets names). */
void mime_init_charsets(const char *const *names, size_t n);

#endif
