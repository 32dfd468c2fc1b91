/*
 * imapcmd_args.c: the grammar half of the IMAP command reader (lib/imapcmd.c reads lines and
 * literals and calls in here for each line): tag and command name (RFC 3501 §9, "UID" joined
 * to the command it prefixes), then arguments as a tree of atoms, quoted strings, literals,
 * (lists), [sections] and <partials>, built with an explicit stack so that a literal may
 * interrupt a list. Also the per-command arena and the imaparg_* helpers for handlers.
 *
 * Choices beyond RFC 3501: only BODY, BODY.PEEK, BINARY, BINARY.PEEK and BINARY.SIZE take a
 * [section] (elsewhere '[' is an ordinary atom character, so unquoted mailbox names such as
 * Archive[2020] stay one atom); sections hold no literals; atoms are 7-bit; quoted strings
 * may hold UTF-8 (RFC 6855).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapcmd_priv.h"
#include "util.h"

#define BLOCK_SIZE	4096
#define ALIGN		16
#define BLOCK_HDR	((sizeof(struct block) + ALIGN - 1) & ~(size_t)(ALIGN - 1))
#define PARTIAL_MAX	24	/* "<4294967295.4294967295>" inside */

/* ---- arena ---------------------------------------------------------------------------- */

void *imapcmd_arena_alloc(struct imapcmd_state *st, size_t n)
{
	struct block *b = st->blocks;
	void *p;

	n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > BLOCK_SIZE / 4 ? n : BLOCK_SIZE;

		b = xmalloc(BLOCK_HDR + cap);
		b->used = 0;
		b->cap = cap;
		b->next = st->blocks;
		st->blocks = b;
	}
	p = (char *)b + BLOCK_HDR + b->used;
	b->used += n;
	return p;
}

void imapcmd_arena_free(struct imapcmd_state *st)
{
	while (st->blocks) {
		struct block *next = st->blocks->next;

		free(st->blocks);
		st->blocks = next;
	}
}

static char *arena_strndup(struct imapcmd_state *st, const char *s, size_t n)
{
	char *p = imapcmd_arena_alloc(st, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- tag ------------------------------------------------------------------------------ */

static bool is_tag_char(unsigned char ch)
{
	/* ASTRING-CHAR except '+': 7-bit graphic, not ( ) { % * " \ + */
	return ch > 0x20 && ch < 0x7f && strchr("(){%*\"\\+", ch) == NULL;
}

void imapcmd_tag_from(struct imapcmd *c, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && i <= IMAPCMD_TAG_MAX && is_tag_char((unsigned char)p[i]))
		i++;
	if (i > 0 && i <= IMAPCMD_TAG_MAX && i < n && p[i] == ' ') {
		memcpy(c->tag, p, i);
		c->tag[i] = '\0';
	}
}

/* ---- building the argument tree -------------------------------------------------------- */

struct imaparg *imapcmd_node(struct imapcmd_state *st, enum imaparg_kind kind, const char *text,
			     size_t len)
{
	struct frame *f = &st->stack[st->depth];
	struct imaparg *a;

	if (st->nodes >= IMAPCMD_MAX_ARGS)
		return NULL;
	st->nodes++;
	a = imapcmd_arena_alloc(st, sizeof(*a));
	*a = (struct imaparg){ .kind = kind, .text = text, .len = len };
	*f->tail = a;
	f->tail = &a->next;
	return a;
}

static enum pr bad(struct lex *L, const char *why)
{
	L->why = why;
	return PR_BAD;
}

static enum pr too_many(struct lex *L)
{
	L->why = "Too many arguments";
	return PR_TOOBIG;
}

/* The element just ended: what may follow it. */
static enum pr element_done(struct lex *L, enum adj adj)
{
	L->st->pos = POS_ELEM;
	L->st->adj = adj;
	return PR_OK;
}

static enum pr open_container(struct lex *L, enum imaparg_kind kind)
{
	struct imapcmd_state *st = L->st;
	struct imaparg *a;

	if (kind == IMAPARG_LIST && st->lists >= IMAPCMD_MAX_DEPTH)
		return bad(L, "Lists nested too deeply");
	if ((a = imapcmd_node(L->st, kind, "", 0)) == NULL)
		return too_many(L);
	st->depth++;
	st->stack[st->depth] = (struct frame){ .node = a, .tail = &a->child, .raw_start = L->i + 1 };
	if (kind == IMAPARG_LIST)
		st->lists++;
	else
		st->in_section = true;
	st->pos = POS_OPEN;
	L->i++;
	return PR_OK;
}

static enum pr close_container(struct lex *L, enum imaparg_kind kind)
{
	struct imapcmd_state *st = L->st;
	struct frame *f = &st->stack[st->depth];

	if (st->depth == 0 || f->node->kind != kind)
		return bad(L, kind == IMAPARG_LIST ? "Unexpected ')'" : "Unexpected ']'");
	if (st->pos == POS_SP)
		return bad(L, "Space before a closing bracket");
	st->depth--;
	L->i++;
	if (kind == IMAPARG_LIST) {
		st->lists--;
		return element_done(L, ADJ_NONE);
	}
	f->node->len = L->i - 1 - f->raw_start;
	f->node->text = arena_strndup(st, L->p + f->raw_start, f->node->len);
	st->in_section = false;
	return element_done(L, ADJ_SECTION);
}

static bool is_fetch_name(const char *p, size_t n)
{
	static const char *const names[] = {
		"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
	};

	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		if (strlen(names[i]) == n && strncasecmp(p, names[i], n) == 0)
			return true;
	return false;
}

/* ATOM-CHAR plus the list wildcards % and *, and ']' outside sections (astrings). */
static bool is_atom_char(unsigned char ch, bool in_section)
{
	if (ch <= 0x20 || ch >= 0x7f || strchr("(){\"\\", ch) != NULL)
		return false;
	return ch != ']' || !in_section;
}

static enum pr atom(struct lex *L)
{
	struct imapcmd_state *st = L->st;
	size_t start = L->i;
	enum adj adj = ADJ_NONE;

	if (L->p[L->i] == '\\')		/* a flag: \Seen */
		L->i++;
	while (L->i < L->n && is_atom_char((unsigned char)L->p[L->i], st->in_section)) {
		if (L->p[L->i] == '[' && !st->in_section &&
		    is_fetch_name(L->p + start, L->i - start)) {
			adj = ADJ_FETCH_ATOM;
			break;
		}
		L->i++;
	}
	if (L->i == start || (L->i == start + 1 && L->p[start] == '\\'))
		return bad(L, "Invalid atom");
	if (imapcmd_node(L->st, IMAPARG_ATOM, arena_strndup(st, L->p + start, L->i - start),
		     L->i - start) == NULL)
		return too_many(L);
	return element_done(L, adj);
}

static enum pr quoted(struct lex *L)
{
	size_t j = L->i + 1, len = 0;
	char *out;

	for (;; j++, len++) {
		if (j >= L->n)
			return bad(L, "Unterminated quoted string");
		if (L->p[j] == '"')
			break;
		if (L->p[j] == '\0' || L->p[j] == '\r')
			return bad(L, "NUL or CR in a quoted string");
		if (L->p[j] == '\\' && (++j >= L->n || (L->p[j] != '"' && L->p[j] != '\\')))
			return bad(L, "Invalid escape in a quoted string");
	}
	out = imapcmd_arena_alloc(L->st, len + 1);
	for (size_t k = L->i + 1, o = 0; k < j; k++) {
		if (L->p[k] == '\\')
			k++;
		out[o++] = L->p[k];
	}
	out[len] = '\0';
	if (imapcmd_node(L->st, IMAPARG_STRING, out, len) == NULL)
		return too_many(L);
	L->i = j + 1;
	return element_done(L, ADJ_NONE);
}

/* "{" number ["+"] "}" at the end of the line. */
static enum pr literal(struct lex *L)
{
	size_t j = L->i + 1, digits = 0;
	uint64_t v = 0;

	if (L->st->in_section)
		return bad(L, "Literal inside a section");
	for (; j < L->n && L->p[j] >= '0' && L->p[j] <= '9'; j++, digits++)
		v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (uint64_t)(L->p[j] - '0');
	L->lit_sync = true;
	if (j < L->n && L->p[j] == '+') {
		L->lit_sync = false;
		j++;
	}
	if (digits == 0 || j >= L->n || L->p[j] != '}')
		return bad(L, "Invalid literal");
	if (j + 1 != L->n)
		return bad(L, "Literal not at the end of the line");
	L->lit_size = v;
	L->i = L->n;
	return PR_LITERAL;
}

/* "<" number ["." number] ">" after a section. */
static enum pr partial(struct lex *L)
{
	size_t start = L->i + 1, j = start, dots = 0;

	for (; j < L->n && L->p[j] != '>'; j++) {
		if (L->p[j] == '.' && j > start && L->p[j - 1] != '.')
			dots++;
		else if (L->p[j] < '0' || L->p[j] > '9')
			return bad(L, "Invalid partial");
	}
	if (j >= L->n || j == start || j - start > PARTIAL_MAX || dots > 1 || L->p[j - 1] == '.')
		return bad(L, "Invalid partial");
	if (imapcmd_node(L->st, IMAPARG_PARTIAL, arena_strndup(L->st, L->p + start, j - start),
		     j - start) == NULL)
		return too_many(L);
	L->i = j + 1;
	return element_done(L, ADJ_NONE);
}

/* At POS_OPEN or POS_SP: an element, or the end of an empty list / section. */
static enum pr element(struct lex *L)
{
	unsigned char ch = (unsigned char)L->p[L->i];

	switch (ch) {
	case '(':
		return open_container(L, IMAPARG_LIST);
	case ')':
		return close_container(L, IMAPARG_LIST);
	case '"':
		return quoted(L);
	case '{':
		return literal(L);
	case ']':
		if (L->st->in_section)
			return close_container(L, IMAPARG_SECTION);
		return atom(L);
	case '\\':
		return atom(L);
	default:
		if (is_atom_char(ch, L->st->in_section))
			return atom(L);
		if (ch == ' ')
			return bad(L, "Empty argument");
		return bad(L, "Invalid character");
	}
}

/* At POS_ELEM: a separator, a closing bracket, or a section / partial. */
static enum pr after_element(struct lex *L)
{
	switch (L->p[L->i]) {
	case ' ':
		L->i++;
		L->st->pos = POS_SP;
		L->st->adj = ADJ_NONE;
		return PR_OK;
	case ')':
		return close_container(L, IMAPARG_LIST);
	case ']':
		return close_container(L, IMAPARG_SECTION);
	case '[':
		if (L->st->adj == ADJ_FETCH_ATOM)
			return open_container(L, IMAPARG_SECTION);
		break;
	case '<':
		if (L->st->adj == ADJ_SECTION)
			return partial(L);
		break;
	default:
		break;
	}
	return bad(L, "Missing space between arguments");
}

static enum pr end_of_line(struct lex *L)
{
	struct imapcmd_state *st = L->st;

	if (st->pos == POS_SP)
		return bad(L, "Trailing space");
	if (st->depth > 0)
		return bad(L, st->in_section ? "Unterminated section" : "Unterminated list");
	return PR_DONE;
}

enum pr imapcmd_parse_args(struct lex *L)
{
	enum pr r;

	do {
		if (L->i == L->n)
			return end_of_line(L);
		r = L->st->pos == POS_ELEM ? after_element(L) : element(L);
	} while (r == PR_OK);
	return r;
}

/* ---- the first line: tag and command name ---------------------------------------------- */

static bool is_name_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.';
}

/* A command name word at L->i, appended upper-cased to c->name. */
static enum pr name_word(struct lex *L)
{
	size_t start = L->i, have = strlen(L->c->name);

	while (L->i < L->n && is_name_char((unsigned char)L->p[L->i]))
		L->i++;
	if (L->i == start)
		return bad(L, "Missing command name");
	if (L->i < L->n && L->p[L->i] != ' ')
		return bad(L, "Invalid command name");
	if (have + L->i - start > IMAPCMD_NAME_MAX)
		return bad(L, "Command name too long");
	for (size_t k = start; k < L->i; k++) {
		char ch = L->p[k];

		L->c->name[have++] = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
	}
	L->c->name[have] = '\0';
	return PR_OK;
}

enum pr imapcmd_parse_first_line(struct lex *L)
{
	struct imapcmd *c = L->c;
	enum pr r;

	if (L->n == 0)
		return bad(L, "Empty command line");
	while (L->i < L->n && L->i <= IMAPCMD_TAG_MAX && is_tag_char((unsigned char)L->p[L->i]))
		L->i++;
	if (L->i > IMAPCMD_TAG_MAX)
		return bad(L, "Tag too long");
	if (L->i == 0 || L->i == L->n || L->p[L->i] != ' ')
		return bad(L, L->i == L->n ? "Missing command name" : "Invalid tag");
	memcpy(c->tag, L->p, L->i);
	c->tag[L->i] = '\0';
	L->i++;
	if ((r = name_word(L)) != PR_OK)
		return r;
	if (strcmp(c->name, "UID") == 0) {
		if (L->i == L->n)
			return bad(L, "UID without a command");
		c->name[3] = ' ';
		c->name[4] = '\0';
		L->i++;
		if ((r = name_word(L)) != PR_OK)
			return r;
	}
	L->st->started = true;
	L->st->pos = POS_ELEM;
	L->st->adj = ADJ_NONE;
	return PR_OK;
}

/* ---- helpers for command handlers ------------------------------------------------------ */

bool imaparg_is_atom(const struct imaparg *a, const char *upper)
{
	return a != NULL && a->kind == IMAPARG_ATOM && strcasecmp(a->text, upper) == 0;
}

const char *imaparg_astring(const struct imaparg *a)
{
	if (a == NULL)
		return NULL;
	if (a->kind == IMAPARG_STRING)
		return a->text;
	if (a->kind == IMAPARG_ATOM && strcasecmp(a->text, "NIL") != 0)
		return a->text;
	return NULL;
}

int imaparg_count(const struct imaparg *a)
{
	int n = 0;

	for (; a != NULL; a = a->next)
		n++;
	return n;
}
