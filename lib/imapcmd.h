/*
 * imapcmd.h: the IMAP command reader (RFC 3501 §9 grammar, RFC 7888 LITERAL+/LITERAL-),
 * shared by imap-login (pre-auth commands) and the imap session. Input is untrusted: every
 * size is bounded, NUL is refused in quoted strings and atoms (allowed only in literal8,
 * which we do not accept), nesting of parenthesised lists is bounded.
 *
 * USE. A command line arrives in pieces: the reader is fed bytes (imapcmd_feed) and says
 * what it needs next:
 *   IMAPCMD_MORE      feed more bytes (nothing complete yet);
 *   IMAPCMD_CONTINUE  a synchronizing literal {n} was announced: the server must send
 *                     "+ Ready for literal data" (cmd->literal_size is its size; one over
 *                     the limits comes as IMAPCMD_TOOBIG instead) and feed on;
 *   IMAPCMD_DONE      a whole command is parsed: cmd->tag, cmd->name (upper-cased) and the
 *                     argument tree cmd->args are valid until imapcmd_reset;
 *   IMAPCMD_BAD       a syntax error (cmd->error says why, cmd->tag is set when it could be
 *                     read, "*" otherwise); the rest of the line has been consumed, so the
 *                     next command can be read after imapcmd_reset;
 *   IMAPCMD_TOOBIG    the line or a literal passes the limits: answer BAD / NO [TOOBIG]
 *                     (RFC 7889) and, for a synchronizing literal, do not send "+";
 *                     the reader then skips to the end of the command.
 * Bytes fed beyond the end of a command stay buffered for the next one (pipelining, and
 * "DONE\r\nNEXT COMMAND" in one packet). imapcmd_pending() says how many.
 *
 * ARGUMENTS are a tree of nodes: atoms (including NIL as an atom; the command decides),
 * strings (quoted or literal, with their length: literals may hold any byte but NUL),
 * NIL unquoted is an atom (imaparg_astring gives NULL for it); a '[' starts a section only
 * after BODY, BODY.PEEK and BINARY*, elsewhere it is an atom character ("[Gmail]/Sent");
 * and lists "( ... )". Section specs like BODY[HEADER.FIELDS (A B)]<0.100> are parsed into
 * one atom node of kind IMAPARG_ATOM holding the text "BODY", followed by a node of kind
 * IMAPARG_SECTION whose children are the section's parts and whose text is the raw section
 * string ("HEADER.FIELDS (A B)"), then an optional IMAPARG_PARTIAL ("0.100").
 */
#ifndef POSTERN_IMAPCMD_H
#define POSTERN_IMAPCMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAPCMD_TAG_MAX		64
#define IMAPCMD_NAME_MAX	32
#define IMAPCMD_MAX_DEPTH	16	/* nested lists */
#define IMAPCMD_MAX_ARGS	10000	/* nodes in one command */

enum imapcmd_status {
	IMAPCMD_MORE, IMAPCMD_CONTINUE, IMAPCMD_DONE, IMAPCMD_BAD, IMAPCMD_TOOBIG,
};

enum imaparg_kind {
	IMAPARG_ATOM,		/* also NIL, numbers, sequence sets, flags like \Seen */
	IMAPARG_STRING,		/* quoted or literal */
	IMAPARG_LIST,		/* ( ... ) */
	IMAPARG_SECTION,	/* [ ... ] directly after an atom */
	IMAPARG_PARTIAL,	/* < ... > directly after a section */
};

struct imaparg {
	enum imaparg_kind kind;
	const char *text;	/* NUL-terminated; for strings may contain no NUL */
	size_t len;
	bool literal;		/* a string that came as a literal */
	struct imaparg *child;	/* first child of a list or section */
	struct imaparg *next;	/* next sibling */
};

struct imapcmd_limits {
	size_t line_max;	/* bytes of one command outside literals (e.g. 64 KiB) */
	size_t literal_max;	/* one literal (e.g. APPEND: message_size_limit) */
	size_t total_max;	/* a whole command with its literals */
	bool literal_plus;	/* LITERAL+: {n+} up to literal_max; else LITERAL- (4096) */
};

struct imapcmd {
	char tag[IMAPCMD_TAG_MAX + 1];
	char name[IMAPCMD_NAME_MAX + 1];	/* upper-cased; "UID FETCH" for UID commands */
	struct imaparg *args;			/* first argument, or NULL */
	const char *error;			/* for IMAPCMD_BAD / IMAPCMD_TOOBIG */
	size_t literal_size;			/* for IMAPCMD_CONTINUE / TOOBIG */
	/* private */
	struct imapcmd_state *st;
};

/* A reader with these limits (copied). */
struct imapcmd *imapcmd_new(const struct imapcmd_limits *lim);
void imapcmd_free(struct imapcmd *c);

/* Feed n bytes (may be 0 to re-examine what is buffered). */
enum imapcmd_status imapcmd_feed(struct imapcmd *c, const void *data, size_t n);
/* Forget the parsed command (keeping bytes that follow it) before reading the next. */
void imapcmd_reset(struct imapcmd *c);
size_t imapcmd_pending(const struct imapcmd *c);
/* Drop every buffered byte (after STARTTLS: pipelined plaintext must not survive). */
void imapcmd_discard(struct imapcmd *c);

/* Read a bare line (for AUTHENTICATE continuations and IDLE's DONE): IMAPCMD_DONE with
 * the line (without CRLF) in *line, valid until the next call, or MORE / TOOBIG. */
enum imapcmd_status imapcmd_read_line(struct imapcmd *c, const char **line, size_t *len);

/* Helpers for command handlers. */
bool imaparg_is_atom(const struct imaparg *a, const char *upper);	/* case-insensitive */
/* astring / nstring: atom or string; NIL for nstring gives NULL. */
const char *imaparg_astring(const struct imaparg *a);
int imaparg_count(const struct imaparg *a);	/* siblings from a */

/* Sequence sets (RFC 3501 sequence-set, "*" = max, RFC 5182 "$" refused here). A set is a
 * sorted list of disjoint ranges. parse: 0, or -1 if malformed or > IMAPCMD_MAX_RANGES. */
#define IMAPCMD_MAX_RANGES	4096
struct seqset {
	size_t n;
	struct { uint32_t lo, hi; } r[IMAPCMD_MAX_RANGES];
};
int seqset_parse(const char *s, uint32_t star, struct seqset *out);
bool seqset_has(const struct seqset *s, uint32_t v);
/* Print a set compactly ("1:3,7") into out; -1 if it does not fit. */
int seqset_format(const uint32_t *sorted, size_t n, char *out, size_t outlen);

#endif
