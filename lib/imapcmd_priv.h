/*
 * imapcmd_priv.h: what the two halves of the IMAP command reader share: lib/imapcmd.c (the
 * reader: input queue, lines, literals, skipping, the public API) and lib/imapcmd_args.c
 * (the grammar: tag, command name and the argument tree, with its arena). Not for callers.
 */
#ifndef POSTERN_IMAPCMD_PRIV_H
#define POSTERN_IMAPCMD_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "imapcmd.h"

#define TAIL_MAX	24	/* end of a skipped line kept to spot "{n+}": '{' 20 digits "+}\r" */

enum pos { POS_OPEN, POS_SP, POS_ELEM };	/* just opened / after SP / after an element */
enum adj { ADJ_NONE, ADJ_FETCH_ATOM, ADJ_SECTION };	/* what may directly follow */
enum pr { PR_OK, PR_DONE, PR_LITERAL, PR_BAD, PR_TOOBIG };	/* line parser results */

struct frame {
	struct imaparg *node;		/* the open list or section; NULL at the top level */
	struct imaparg **tail;		/* where its next child goes */
	size_t raw_start;		/* a section: offset of its text in the line */
};

struct block {
	struct block *next;
	size_t used, cap;
};

struct skip {
	bool active;
	bool line;			/* drop up to and including the next LF */
	bool follow;			/* a dropped line ending in {n+} announces n more bytes */
	uint64_t literal;		/* literal bytes to drop before the line */
	char tail[TAIL_MAX];
	size_t tail_len;
};

struct imapcmd_state {
	struct imapcmd_limits lim;
	char *in;			/* queued input: in[in_off .. in_len) */
	size_t in_off, in_len, in_cap;
	size_t scanned;			/* queued bytes known to hold no LF */
	bool finished;			/* DONE/BAD/TOOBIG returned, waiting for reset */
	bool want_raw;			/* imapcmd_read_line is waiting: feed only queues */
	enum imapcmd_status result;
	bool started;			/* the first line (tag, name) has been parsed */
	size_t line_used;		/* non-literal bytes of this command, CRLFs not counted */
	uint64_t total_used;		/* the same plus literal sizes */
	size_t nodes;
	struct frame stack[IMAPCMD_MAX_DEPTH + 2];	/* top level, lists, one section */
	int depth, lists;
	bool in_section;
	enum pos pos;
	enum adj adj;
	bool in_literal;		/* reading the data of `lit` */
	struct imaparg *lit;
	char *lit_buf;			/* lit->text, writable */
	size_t lit_have;
	struct skip skip;
	struct block *blocks;		/* the arena of the current command */
	struct buf line;		/* imapcmd_read_line's result */
};

/* One line being parsed: p[0..n), position i; results and the reason for errors. */
struct lex {
	struct imapcmd *c;
	struct imapcmd_state *st;
	const char *p;
	size_t n, i;
	const char *why;
	uint64_t lit_size;
	bool lit_sync;
};

/* imapcmd_args.c: the per-command arena, freed all at once by imapcmd_reset. */
void *imapcmd_arena_alloc(struct imapcmd_state *st, size_t n);
void imapcmd_arena_free(struct imapcmd_state *st);
/* A node appended to the open list / section / top level; NULL past IMAPCMD_MAX_ARGS. */
struct imaparg *imapcmd_node(struct imapcmd_state *st, enum imaparg_kind kind, const char *text,
			     size_t len);
/* Set c->tag from the start of a line if a valid tag and SP are there. */
void imapcmd_tag_from(struct imapcmd *c, const char *p, size_t n);
/* The tag and command name at the start of a command's first line; then, on that line or
 * one after a literal, the arguments up to the end of the line. */
enum pr imapcmd_parse_first_line(struct lex *L);
enum pr imapcmd_parse_args(struct lex *L);

#endif
