/*
 * imapcmd.c: the incremental IMAP command reader (see imapcmd.h for the contract).
 *
 * Structure. Bytes are queued in `in`; step() takes whole lines from it (a line is only
 * parsed once its LF is there, so feeding byte by byte and feeding everything at once give
 * the same answers) and literal data after a line that announces {n} / {n+}. The argument
 * tree is built as tokens are read, with an explicit stack of open lists / the open section,
 * so that parsing resumes after a literal in the middle of a list. Everything the tree holds
 * is copied into a per-command arena, freed by imapcmd_reset.
 *
 * Errors. A syntax error is found on a complete line, which is consumed before IMAPCMD_BAD
 * is returned; a line or literal over the limits gives IMAPCMD_TOOBIG as soon as it is seen.
 * Either way, what the client will still send for that command (the rest of an overlong
 * line, non-synchronizing literal data it announced and the lines after it) is dropped by
 * the "skip" state before the next command is read. A refused synchronizing literal is never
 * sent (no "+"), so the command ends there.
 *
 * Raw lines (IDLE's DONE, AUTHENTICATE responses). Once imapcmd_read_line has said MORE (or
 * TOOBIG), imapcmd_feed only queues bytes and says MORE until read_line has returned a line,
 * so a caller may reset first and feed as usual while it waits. Before imapcmd_reset, feed
 * only queues anyway (and repeats the finished result).
 *
 * The grammar of each line (tag, name, the argument tree) is in lib/imapcmd_args.c.
 */
#include <stdlib.h>
#include <string.h>

#include "imapcmd_priv.h"
#include "log.h"
#include "util.h"

#define LITERAL_MINUS_MAX 4096	/* RFC 7888 LITERAL-: largest non-synchronizing literal */
#define FEED_PIECE	65536	/* bytes queued per parsing round, so `in` stays small */

/* ---- input queue ---------------------------------------------------------------------- */

static size_t in_avail(const struct imapcmd_state *st)
{
	return st->in_len - st->in_off;
}

static const char *in_ptr(const struct imapcmd_state *st)
{
	return st->in + st->in_off;
}

static void in_consume(struct imapcmd_state *st, size_t n)
{
	st->in_off += n;
	st->scanned = st->scanned > n ? st->scanned - n : 0;
	if (st->in_off == st->in_len)
		st->in_off = st->in_len = 0;
}

/* Queue n bytes. Consumed bytes are dropped only once they outweigh the live ones, so that
 * pipelined commands and byte-at-a-time feeding both cost amortized O(1) per byte. */
static void in_append(struct imapcmd_state *st, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (st->in_off > 0 && st->in_off >= in_avail(st)) {
		memmove(st->in, st->in + st->in_off, in_avail(st));
		st->in_len -= st->in_off;
		st->in_off = 0;
	}
	if (st->in_cap - st->in_len < n) {
		size_t cap = st->in_cap;

		if (n > SIZE_MAX / 2 - st->in_len)
			msg_fatal("imapcmd: input queue overflow");
		while (cap - st->in_len < n)
			cap *= 2;
		st->in = xreallocarray(st->in, cap, 1);
		st->in_cap = cap;
	}
	memcpy(st->in + st->in_len, p, n);
	st->in_len += n;
}

/* ---- skipping what remains of a refused command ---------------------------------------- */

static void tail_add(struct skip *sk, const char *p, size_t n)
{
	if (n >= TAIL_MAX) {
		memcpy(sk->tail, p + n - TAIL_MAX, TAIL_MAX);
		sk->tail_len = TAIL_MAX;
		return;
	}
	if (sk->tail_len + n > TAIL_MAX) {
		size_t drop = sk->tail_len + n - TAIL_MAX;

		memmove(sk->tail, sk->tail + drop, sk->tail_len - drop);
		sk->tail_len -= drop;
	}
	memcpy(sk->tail + sk->tail_len, p, n);
	sk->tail_len += n;
}

/* Does the line p[0..n) (LF excluded) end with a LITERAL+ announcement "{n+}"? */
static bool ends_with_literal_plus(const char *p, size_t n, uint64_t *size)
{
	size_t end, b;
	uint64_t v = 0;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n < 4 || p[n - 1] != '}' || p[n - 2] != '+')
		return false;
	end = b = n - 2;
	while (b > 0 && p[b - 1] >= '0' && p[b - 1] <= '9' && end - b < 20)
		b--;
	if (b == end || b == 0 || p[b - 1] != '{')
		return false;
	for (size_t i = b; i < end; i++)
		v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (uint64_t)(p[i] - '0');
	*size = v;
	return true;
}

static void skip_start(struct imapcmd_state *st, uint64_t literal, bool line, bool follow)
{
	st->skip = (struct skip){ .active = true, .literal = literal, .line = line,
				  .follow = follow };
}

/* After a refused line p[0..n): if it announced a LITERAL+, its data and the lines after
 * it are still coming. */
static void skip_after_line(struct imapcmd_state *st, const char *p, size_t n)
{
	uint64_t size;

	if (ends_with_literal_plus(p, n, &size))
		skip_start(st, size, true, true);
}

/* Drop what the skip state says; true once it is over. */
static bool skip_run(struct imapcmd_state *st)
{
	struct skip *sk = &st->skip;

	while (sk->active) {
		size_t avail = in_avail(st), k;
		const char *lf;
		uint64_t size;

		if (sk->literal > 0) {
			k = avail < sk->literal ? avail : (size_t)sk->literal;
			in_consume(st, k);
			sk->literal -= k;
			if (sk->literal > 0)
				return false;
			avail = in_avail(st);
		}
		if (!sk->line) {
			sk->active = false;
			break;
		}
		lf = memchr(in_ptr(st), '\n', avail);
		k = lf ? (size_t)(lf - in_ptr(st)) : avail;
		tail_add(sk, in_ptr(st), k);
		in_consume(st, lf ? k + 1 : k);
		if (lf == NULL)
			return false;
		if (sk->follow && ends_with_literal_plus(sk->tail, sk->tail_len, &size))
			skip_start(st, size, true, true);
		else
			sk->active = false;
	}
	return true;
}

/* ---- results -------------------------------------------------------------------------- */

static enum imapcmd_status finish(struct imapcmd *c, enum imapcmd_status s, const char *why)
{
	c->st->finished = true;
	c->st->result = s;
	c->error = s == IMAPCMD_DONE ? NULL : why;
	if (c->tag[0] == '\0')
		(void)str_copy(c->tag, sizeof(c->tag), "*");
	return s;
}

/* The line being read passes line_max: p[0..n) is what is queued of it (has_lf: the whole
 * line with its LF, else more is coming). */
static enum imapcmd_status line_too_long(struct imapcmd *c, const char *p, size_t n, bool has_lf)
{
	struct imapcmd_state *st = c->st;
	size_t window = st->lim.line_max - st->line_used + 1;

	/* Look for the tag in exactly the bytes byte-at-a-time feeding would have seen. */
	if (!st->started)
		imapcmd_tag_from(c, p, n < window ? n : window);
	c->literal_size = 0;
	if (has_lf) {
		skip_after_line(st, p, n);
		in_consume(st, n + 1);
	} else {
		skip_start(st, 0, true, true);
		tail_add(&st->skip, p, n);
		in_consume(st, n);
	}
	return finish(c, IMAPCMD_TOOBIG, "Line too long");
}

/* ---- the reader ------------------------------------------------------------------------ */

/* A literal announced at the end of the line just consumed. */
static enum imapcmd_status start_literal(struct imapcmd *c, const struct lex *L)
{
	struct imapcmd_state *st = c->st;
	uint64_t n = L->lit_size;
	const char *why = NULL;
	struct imaparg *a;
	char *text;

	c->literal_size = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
	if (!L->lit_sync && !st->lim.literal_plus && n > LITERAL_MINUS_MAX)
		why = "Non-synchronizing literal over 4096 bytes (LITERAL-)";
	else if (n > UINT32_MAX || n > st->lim.literal_max)
		why = "Literal too big";
	else if (n > st->lim.total_max || st->total_used > st->lim.total_max - n)
		why = "Command too big";
	else if (st->nodes >= IMAPCMD_MAX_ARGS)
		why = "Too many arguments";
	if (why != NULL) {
		if (!L->lit_sync)	/* the data comes anyway */
			skip_start(st, n, true, true);
		return finish(c, IMAPCMD_TOOBIG, why);
	}
	text = imapcmd_arena_alloc(st, (size_t)n + 1);
	text[n] = '\0';
	a = imapcmd_node(st, IMAPARG_STRING, text, (size_t)n);
	a->literal = true;
	st->total_used += n;
	st->lit = a;
	st->lit_buf = text;
	st->lit_have = 0;
	st->in_literal = true;
	return L->lit_sync ? IMAPCMD_CONTINUE : IMAPCMD_MORE;
}

static enum imapcmd_status read_literal(struct imapcmd *c)
{
	struct imapcmd_state *st = c->st;
	size_t want = st->lit->len - st->lit_have, k = in_avail(st) < want ? in_avail(st) : want;
	char *dst = st->lit_buf + st->lit_have;

	memcpy(dst, in_ptr(st), k);
	in_consume(st, k);
	st->lit_have += k;
	if (memchr(dst, '\0', k) != NULL) {
		skip_start(st, st->lit->len - st->lit_have, true, true);
		st->in_literal = false;
		return finish(c, IMAPCMD_BAD, "NUL in a literal");
	}
	if (st->lit_have == st->lit->len) {
		st->in_literal = false;
		st->pos = POS_ELEM;
		st->adj = ADJ_NONE;
	}
	return IMAPCMD_MORE;
}

/* Parse the queued line p[0..len) (len excludes the LF; clen also a CR before it). */
static enum imapcmd_status parse_line(struct imapcmd *c, const char *p, size_t len, size_t clen)
{
	struct imapcmd_state *st = c->st;
	struct lex L = { .c = c, .st = st, .p = p, .n = clen };
	enum pr r;

	st->line_used += clen;
	st->total_used += clen;
	if (st->total_used > st->lim.total_max) {
		if (!st->started)
			imapcmd_tag_from(c, p, clen);
		L.why = "Command too big";
		r = PR_TOOBIG;
	} else {
		r = st->started ? PR_OK : imapcmd_parse_first_line(&L);
		if (r == PR_OK)
			r = imapcmd_parse_args(&L);
	}
	if (r == PR_BAD || r == PR_TOOBIG) {
		skip_after_line(st, p, len);
		in_consume(st, len + 1);
		c->literal_size = 0;
		return finish(c, r == PR_BAD ? IMAPCMD_BAD : IMAPCMD_TOOBIG, L.why);
	}
	in_consume(st, len + 1);
	if (r == PR_DONE)
		return finish(c, IMAPCMD_DONE, NULL);
	return start_literal(c, &L);
}

/* Take the next line if it is all there. */
static enum imapcmd_status next_line(struct imapcmd *c)
{
	struct imapcmd_state *st = c->st;
	size_t avail = in_avail(st), len, clen;
	const char *p = in_ptr(st);
	const char *lf = memchr(p + st->scanned, '\n', avail - st->scanned);

	if (lf == NULL) {
		clen = avail > 0 && p[avail - 1] == '\r' ? avail - 1 : avail;
		if (clen > st->lim.line_max - st->line_used)
			return line_too_long(c, p, avail, false);
		st->scanned = avail;
		return IMAPCMD_MORE;
	}
	len = (size_t)(lf - p);
	clen = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
	if (clen > st->lim.line_max - st->line_used)
		return line_too_long(c, p, len, true);
	return parse_line(c, p, len, clen);
}

static enum imapcmd_status step(struct imapcmd *c)
{
	struct imapcmd_state *st = c->st;
	enum imapcmd_status s;

	for (;;) {
		if (st->skip.active && !skip_run(st))
			return IMAPCMD_MORE;
		if (st->in_literal) {
			s = read_literal(c);
			if (s != IMAPCMD_MORE || st->in_literal)
				return s;
			continue;
		}
		s = next_line(c);
		if (s != IMAPCMD_MORE || !st->in_literal)
			return s;
	}
}

/* Forget the command being read or just read; queued input and skipping stay. */
static void forget_command(struct imapcmd *c)
{
	struct imapcmd_state *st = c->st;

	imapcmd_arena_free(st);
	c->args = NULL;
	c->tag[0] = c->name[0] = '\0';
	c->error = NULL;
	c->literal_size = 0;
	st->finished = st->started = st->in_section = st->in_literal = false;
	st->line_used = st->nodes = 0;
	st->total_used = 0;
	st->depth = st->lists = 0;
	st->stack[0] = (struct frame){ .node = NULL, .tail = &c->args };
	st->pos = POS_ELEM;
	st->adj = ADJ_NONE;
	st->lit = NULL;
	st->lit_buf = NULL;
}

struct imapcmd *imapcmd_new(const struct imapcmd_limits *lim)
{
	struct imapcmd *c = xcalloc(1, sizeof(*c));

	c->st = xcalloc(1, sizeof(*c->st));
	c->st->lim = *lim;
	c->st->in_cap = 1024;		/* never NULL: in_ptr() does arithmetic on it */
	c->st->in = xmalloc(c->st->in_cap);
	buf_init(&c->st->line, lim->line_max);
	forget_command(c);
	return c;
}

void imapcmd_free(struct imapcmd *c)
{
	if (c == NULL)
		return;
	imapcmd_arena_free(c->st);
	buf_free(&c->st->line);
	free(c->st->in);
	free(c->st);
	free(c);
}

enum imapcmd_status imapcmd_feed(struct imapcmd *c, const void *data, size_t n)
{
	struct imapcmd_state *st = c->st;
	const char *p = data;
	enum imapcmd_status s;

	if (st->finished || st->want_raw) {	/* keep the bytes for later */
		in_append(st, p, n);
		return st->finished ? st->result : IMAPCMD_MORE;
	}
	for (;;) {
		s = step(c);
		if (s != IMAPCMD_MORE || n == 0) {
			in_append(st, p, n);
			return s;
		}
		in_append(st, p, n < FEED_PIECE ? n : FEED_PIECE);
		p += n < FEED_PIECE ? n : FEED_PIECE;
		n -= n < FEED_PIECE ? n : FEED_PIECE;
	}
}

void imapcmd_reset(struct imapcmd *c)
{
	forget_command(c);
	c->st->want_raw = false;
}

size_t imapcmd_pending(const struct imapcmd *c)
{
	return in_avail(c->st);
}

void imapcmd_discard(struct imapcmd *c)
{
	struct imapcmd_state *st = c->st;

	st->in_off = st->in_len = st->scanned = 0;
	st->skip.active = false;
	st->want_raw = false;
	if (!st->finished)
		forget_command(c);	/* a half-read command lost its remaining bytes */
}

enum imapcmd_status imapcmd_read_line(struct imapcmd *c, const char **line, size_t *len)
{
	struct imapcmd_state *st = c->st;
	size_t avail, n;
	const char *p, *lf;

	*line = "";
	*len = 0;
	if (!st->finished && (st->started || st->in_literal))
		forget_command(c);	/* misuse: a raw line replaces a half-read command */
	st->want_raw = true;		/* until a line is returned, bytes fed are not commands */
	if (st->skip.active && !skip_run(st))
		return IMAPCMD_MORE;
	avail = in_avail(st);
	p = in_ptr(st);
	lf = memchr(p + st->scanned, '\n', avail - st->scanned);
	n = lf ? (size_t)(lf - p) : avail;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n > st->lim.line_max) {
		if (lf != NULL) {
			in_consume(st, (size_t)(lf - p) + 1);
		} else {
			skip_start(st, 0, true, false);
			in_consume(st, avail);
		}
		c->error = "Line too long";
		return IMAPCMD_TOOBIG;
	}
	if (lf == NULL) {
		st->scanned = avail;
		return IMAPCMD_MORE;
	}
	buf_reset(&st->line);
	if (buf_append(&st->line, p, n) < 0)
		msg_panic("imapcmd_read_line: line buffer");
	in_consume(st, (size_t)(lf - p) + 1);
	st->want_raw = false;
	*line = buf_cstr(&st->line);
	*len = n;
	return IMAPCMD_DONE;
}
