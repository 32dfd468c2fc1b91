/*
 * test_imapcmd.c: unit tests for the IMAP command reader (lib/imapcmd.c) and sequence sets
 * (lib/seqset.c): the RFC 3501 grammar in good and bad forms, literals (synchronizing,
 * LITERAL+, the LITERAL- 4096-byte limit, NUL), sections and partials, UID commands, limits
 * and recovery after TOOBIG / BAD, pipelining, raw lines, discard, and that feeding byte by
 * byte or in odd chunks gives exactly the answers of feeding everything at once.
 */
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "imapcmd.h"
#include "t.h"
#include "util.h"

static const struct imapcmd_limits big = { 65536, 1 << 20, 2 << 20, false };
static struct seqset ss;	/* large: keep it off the stack */

/* ---- helpers ---------------------------------------------------------------------------- */

static enum imapcmd_status feed_s(struct imapcmd *c, const char *s)
{
	return imapcmd_feed(c, s, strlen(s));
}

static void dump_bytes(struct buf *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch < 0x20 || ch >= 0x7f || ch == '\\')
			(void)buf_printf(b, "\\x%02x", ch);
		else
			(void)buf_append_char(b, (char)ch);
	}
}

/* The argument tree as text: atoms bare, "quoted", {n}literal, (lists), [raw|children], <p>. */
static void dump_args(struct buf *b, const struct imaparg *a)
{
	for (bool first = true; a != NULL; a = a->next, first = false) {
		if (!first && a->kind != IMAPARG_SECTION && a->kind != IMAPARG_PARTIAL)
			(void)buf_append_char(b, ' ');
		T_CHECK(a->text != NULL && a->text[a->len] == '\0');
		switch (a->kind) {
		case IMAPARG_ATOM:
			dump_bytes(b, a->text, a->len);
			break;
		case IMAPARG_STRING:
			if (a->literal)
				(void)buf_printf(b, "{%zu}", a->len);
			(void)buf_append_char(b, '"');
			dump_bytes(b, a->text, a->len);
			(void)buf_append_char(b, '"');
			break;
		case IMAPARG_LIST:
			(void)buf_append_char(b, '(');
			dump_args(b, a->child);
			(void)buf_append_char(b, ')');
			break;
		case IMAPARG_SECTION:
			(void)buf_append_char(b, '[');
			dump_bytes(b, a->text, a->len);
			(void)buf_append_char(b, '|');
			dump_args(b, a->child);
			(void)buf_append_char(b, ']');
			break;
		case IMAPARG_PARTIAL:
			(void)buf_printf(b, "<%s>", a->text);
			break;
		}
	}
}

/* Record one answer and move on the way a server would: reset after a result. */
static enum imapcmd_status handle(struct imapcmd *c, enum imapcmd_status s, struct buf *out)
{
	while (s != IMAPCMD_MORE) {
		switch (s) {
		case IMAPCMD_DONE:
			(void)buf_printf(out, "DONE %s %s", c->tag, c->name);
			if (c->args) {
				(void)buf_append_char(out, ' ');
				dump_args(out, c->args);
			}
			(void)buf_append_char(out, '\n');
			break;
		case IMAPCMD_BAD:
			(void)buf_printf(out, "BAD %s\n", c->tag);
			T_CHECK(c->error != NULL);
			break;
		case IMAPCMD_TOOBIG:
			(void)buf_printf(out, "TOOBIG %s %zu\n", c->tag, c->literal_size);
			T_CHECK(c->error != NULL);
			break;
		case IMAPCMD_CONTINUE:
			(void)buf_printf(out, "CONT %zu\n", c->literal_size);
			break;
		case IMAPCMD_MORE:
			break;
		}
		if (s != IMAPCMD_CONTINUE)
			imapcmd_reset(c);
		s = imapcmd_feed(c, NULL, 0);
	}
	return s;
}

/* Feed in[0..n) in pieces of `chunk` bytes (0: all at once); the transcript of answers. */
static char *transcript_n(const struct imapcmd_limits *lim, const char *in, size_t n,
			  size_t chunk)
{
	struct imapcmd *c = imapcmd_new(lim);
	struct buf out;

	buf_init(&out, 1 << 24);
	if (chunk == 0)
		chunk = n ? n : 1;
	for (size_t off = 0; off < n; off += chunk) {
		size_t k = n - off < chunk ? n - off : chunk;

		handle(c, imapcmd_feed(c, in + off, k), &out);
	}
	(void)buf_printf(&out, "pending %zu", imapcmd_pending(c));
	imapcmd_free(c);
	return out.data;
}

static char *transcript(const struct imapcmd_limits *lim, const char *in)
{
	return transcript_n(lim, in, strlen(in), 0);
}

/* The input gives this transcript, whole and in 1, 2, 3 and 7-byte pieces. */
#define EXPECT_N(lim, in, n, want)                                                      \
	do {                                                                            \
		static const size_t t_chunks[] = { 0, 1, 2, 3, 7 };                     \
		for (size_t t_k = 0; t_k < ARRAY_LEN(t_chunks); t_k++) {                \
			char *t_got = transcript_n(lim, in, n, t_chunks[t_k]);          \
			T_EQ_STR(t_got, want);                                          \
			free(t_got);                                                    \
		}                                                                       \
	} while (0)
#define EXPECT(in, want) EXPECT_N(&big, in, strlen(in), want)
#define EXPECT_LIM(lim, in, want) EXPECT_N(lim, in, strlen(in), want)

/* A string of n copies of ch, in a heap buffer. */
static char *rep(char ch, size_t n)
{
	char *s = xmalloc(n + 1);

	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_simple_commands(void)
{
	struct imapcmd *c = imapcmd_new(&big);

	T_EQ_INT(feed_s(c, "A1 NOOP"), IMAPCMD_MORE);
	T_EQ_INT(feed_s(c, "\r"), IMAPCMD_MORE);
	T_EQ_INT(feed_s(c, "\n"), IMAPCMD_DONE);
	T_EQ_STR(c->tag, "A1");
	T_EQ_STR(c->name, "NOOP");
	T_CHECK(c->args == NULL);
	T_CHECK(c->error == NULL);
	T_EQ_INT(imapcmd_pending(c), 0);
	imapcmd_reset(c);
	T_EQ_INT(feed_s(c, "a.b]c logout\n"), IMAPCMD_DONE);	/* bare LF, ']' in a tag */
	T_EQ_STR(c->tag, "a.b]c");
	T_EQ_STR(c->name, "LOGOUT");
	imapcmd_reset(c);
	T_EQ_INT(feed_s(c, "x1 LOGIN alice \"pass word\"\r\n"), IMAPCMD_DONE);
	T_EQ_INT(imaparg_count(c->args), 2);
	T_EQ_STR(imaparg_astring(c->args), "alice");
	T_EQ_STR(imaparg_astring(c->args->next), "pass word");
	T_EQ_INT(c->args->next->len, 9);
	T_CHECK(!c->args->next->literal);
	imapcmd_free(c);

	EXPECT("A1 CAPABILITY\r\n", "DONE A1 CAPABILITY\npending 0");
	EXPECT("A1 x-Foo.bar_1\r\n", "DONE A1 X-FOO.BAR_1\npending 0");
	EXPECT("A1 LIST \"\" *\r\n", "DONE A1 LIST \"\" *\npending 0");
	EXPECT("A1 LIST \"\" %/a*\r\n", "DONE A1 LIST \"\" %/a*\npending 0");
	EXPECT("A1 STORE 1:* +FLAGS.SILENT (\\Seen \\Answered $Junk)\r\n",
	       "DONE A1 STORE 1:* +FLAGS.SILENT (\\x5cSeen \\x5cAnswered $Junk)\npending 0");
	EXPECT("A1 SELECT [Gmail]/Sent\r\n", "DONE A1 SELECT [Gmail]/Sent\npending 0");
	EXPECT("A1 SELECT Archive[2020]\r\n", "DONE A1 SELECT Archive[2020]\npending 0");
	EXPECT("A1 SELECT foo]bar\r\n", "DONE A1 SELECT foo]bar\npending 0");
	EXPECT("A1 SEARCH 1:*,5 NOT SEEN\r\n", "DONE A1 SEARCH 1:*,5 NOT SEEN\npending 0");
	EXPECT("A1 APPEND INBOX (\\Seen) \"01-Jan-2024 10:00:00 +0000\" {3+}\r\nabc\r\n",
	       "DONE A1 APPEND INBOX (\\x5cSeen) \"01-Jan-2024 10:00:00 +0000\" {3}\"abc\"\n"
	       "pending 0");
}

static void test_bad_lines(void)
{
	EXPECT("\r\n", "BAD *\npending 0");			/* empty line */
	EXPECT("A1\r\n", "BAD *\npending 0");			/* no command */
	EXPECT("A1 \r\n", "BAD A1\npending 0");
	EXPECT(" A1 NOOP\r\n", "BAD *\npending 0");
	EXPECT("A1  NOOP\r\n", "BAD A1\npending 0");
	EXPECT("A1 NOOP \r\n", "BAD A1\npending 0");		/* trailing space */
	EXPECT("A1 LOGIN a  b\r\n", "BAD A1\npending 0");	/* empty argument */
	EXPECT("A1 LOGIN a b \r\n", "BAD A1\npending 0");
	EXPECT("A+1 NOOP\r\n", "BAD *\npending 0");		/* '+' not in tags */
	EXPECT("A*1 NOOP\r\n", "BAD *\npending 0");
	EXPECT("A(1 NOOP\r\n", "BAD *\npending 0");
	EXPECT("A1 NO(OP\r\n", "BAD A1\npending 0");
	EXPECT("A1 NO*OP\r\n", "BAD A1\npending 0");
	EXPECT("A1 \"NOOP\"\r\n", "BAD A1\npending 0");
	EXPECT("A1\tNOOP\r\n", "BAD *\npending 0");
	EXPECT("A1 NOOP\tx\r\n", "BAD A1\npending 0");
	EXPECT("A1 NOOP\rx\r\n", "BAD A1\npending 0");		/* bare CR */
	EXPECT("A1 NOOP\r\r\n", "BAD A1\npending 0");
	EXPECT("A1 SELECT a\"b\r\n", "BAD A1\npending 0");
	EXPECT("A1 SELECT a{b\r\n", "BAD A1\npending 0");
	EXPECT("A1 SELECT a\\b\r\n", "BAD A1\npending 0");	/* '\' only starts flags */
	EXPECT("A1 STORE 1 FLAGS \\\r\n", "BAD A1\npending 0");
	EXPECT("A1 SELECT caf\xc3\xa9\r\n", "BAD A1\npending 0");	/* 8-bit atom */
	EXPECT("A1 SELECT a\x7f\r\n", "BAD A1\npending 0");
	EXPECT_N(&big, "A1 NO\0OP\r\n", 10, "BAD A1\npending 0");
	EXPECT_N(&big, "A1\0 NOOP\r\n", 10, "BAD *\npending 0");

	/* the next command is read normally after each */
	EXPECT("A1 NOOP \r\nA2 NOOP\r\n", "BAD A1\nDONE A2 NOOP\npending 0");
	EXPECT("\nA2 NOOP\n", "BAD *\nDONE A2 NOOP\npending 0");

	/* tags and names at their limits */
	{
		char *t64 = rep('t', IMAPCMD_TAG_MAX), *t65 = rep('t', IMAPCMD_TAG_MAX + 1);
		char *n32 = rep('N', IMAPCMD_NAME_MAX), *n33 = rep('N', IMAPCMD_NAME_MAX + 1);
		char in[256], want[256];

		(void)str_fmt(in, sizeof(in), "%s NOOP\r\n", t64);
		(void)str_fmt(want, sizeof(want), "DONE %s NOOP\npending 0", t64);
		EXPECT(in, want);
		(void)str_fmt(in, sizeof(in), "%s NOOP\r\n", t65);
		EXPECT(in, "BAD *\npending 0");
		(void)str_fmt(in, sizeof(in), "A1 %s\r\n", n32);
		(void)str_fmt(want, sizeof(want), "DONE A1 %s\npending 0", n32);
		EXPECT(in, want);
		(void)str_fmt(in, sizeof(in), "A1 %s\r\n", n33);
		EXPECT(in, "BAD A1\npending 0");
		free(t64);
		free(t65);
		free(n32);
		free(n33);
	}
}

static void test_quoted(void)
{
	EXPECT("A1 LOGIN \"a\\\"b\" \"c\\\\d\"\r\n",
	       "DONE A1 LOGIN \"a\"b\" \"c\\x5cd\"\npending 0");
	EXPECT("A1 LOGIN \"\" \"\"\r\n", "DONE A1 LOGIN \"\" \"\"\npending 0");
	EXPECT("A1 SELECT \"caf\xc3\xa9 (x) {3} ]\"\r\n",
	       "DONE A1 SELECT \"caf\\xc3\\xa9 (x) {3} ]\"\npending 0");
	EXPECT("A1 LOGIN \"a\\nb\" c\r\n", "BAD A1\npending 0");	/* unknown escape */
	EXPECT("A1 LOGIN \"a\\", "pending 12");			/* line not complete yet */
	EXPECT("A1 LOGIN \"ab\\\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN \"ab\r\n", "BAD A1\npending 0");		/* unterminated */
	EXPECT("A1 LOGIN \"a\rb\" c\r\n", "BAD A1\npending 0");	/* CR inside */
	EXPECT_N(&big, "A1 LOGIN \"a\0b\" c\r\n", 18, "BAD A1\npending 0");
	EXPECT("A1 LOGIN \"a\"\"b\"\r\n", "BAD A1\npending 0");	/* no space */
	EXPECT("A1 LOGIN \"a\"b\r\n", "BAD A1\npending 0");
}

static void test_lists(void)
{
	char in[256], want[256];
	size_t k = 0;

	EXPECT("A1 X ()\r\n", "DONE A1 X ()\npending 0");
	EXPECT("A1 X (a (b \"c\") ()) d\r\n", "DONE A1 X (a (b \"c\") ()) d\npending 0");
	EXPECT("A1 X ( a)\r\n", "BAD A1\npending 0");
	EXPECT("A1 X (a )\r\n", "BAD A1\npending 0");
	EXPECT("A1 X (a  b)\r\n", "BAD A1\npending 0");
	EXPECT("A1 X (a)(b)\r\n", "BAD A1\npending 0");
	EXPECT("A1 X a(b)\r\n", "BAD A1\npending 0");
	EXPECT("A1 X (a\r\n", "BAD A1\npending 0");
	EXPECT("A1 X a)\r\n", "BAD A1\npending 0");
	EXPECT("A1 X (a))\r\n", "BAD A1\npending 0");
	EXPECT("A1 X )\r\n", "BAD A1\npending 0");
	EXPECT("A1 X (a]\r\n", "BAD A1\npending 0");

	/* IMAPCMD_MAX_DEPTH nested lists are fine, one more is not */
	k = (size_t)str_fmt(in, sizeof(in), "A1 X ");
	for (int i = 0; i < IMAPCMD_MAX_DEPTH; i++)
		in[k++] = '(';
	in[k++] = 'z';
	for (int i = 0; i < IMAPCMD_MAX_DEPTH; i++)
		in[k++] = ')';
	(void)str_copy(in + k, sizeof(in) - k, "\r\n");
	(void)str_fmt(want, sizeof(want), "DONE A1 X %.*s\npending 0", (int)(k - 5), in + 5);
	EXPECT(in, want);
	(void)str_fmt(want, sizeof(want), "A1 X (%s", in + 5);
	k = strlen(want);
	(void)str_copy(want + k - 2, sizeof(want) - k + 2, ")\r\n");
	EXPECT(want, "BAD A1\npending 0");
}

static void test_literals(void)
{
	struct imapcmd *c = imapcmd_new(&big);

	/* synchronizing: CONTINUE, and nothing of the literal is taken before it */
	T_EQ_INT(feed_s(c, "A1 LOGIN {5}\r\n"), IMAPCMD_CONTINUE);
	T_EQ_INT(c->literal_size, 5);
	T_EQ_INT(feed_s(c, "ali"), IMAPCMD_MORE);
	T_EQ_INT(feed_s(c, "ce {6}\r\n"), IMAPCMD_CONTINUE);
	T_EQ_INT(c->literal_size, 6);
	T_EQ_INT(feed_s(c, "se\0ret"), IMAPCMD_MORE);		/* strlen: "se" */
	T_EQ_INT(feed_s(c, "cret\r\n"), IMAPCMD_DONE);
	T_EQ_STR(c->name, "LOGIN");
	T_EQ_INT(imaparg_count(c->args), 2);
	T_CHECK(c->args->kind == IMAPARG_STRING && c->args->literal);
	T_EQ_STR(imaparg_astring(c->args), "alice");
	T_EQ_STR(imaparg_astring(c->args->next), "secret");
	T_EQ_INT(c->args->next->len, 6);
	imapcmd_reset(c);

	/* a client that sends the data without waiting: CONTINUE is still given once */
	T_EQ_INT(feed_s(c, "A2 LOGIN {1}\r\na b\r\nA3 NOOP\r\n"), IMAPCMD_CONTINUE);
	T_EQ_INT(imapcmd_pending(c), 14);
	T_EQ_INT(imapcmd_feed(c, NULL, 0), IMAPCMD_DONE);
	T_EQ_STR(c->tag, "A2");
	imapcmd_reset(c);
	T_EQ_INT(imapcmd_feed(c, NULL, 0), IMAPCMD_DONE);
	T_EQ_STR(c->tag, "A3");
	imapcmd_free(c);

	EXPECT("A1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n",
	       "CONT 5\nCONT 6\nDONE A1 LOGIN {5}\"alice\" {6}\"secret\"\npending 0");
	EXPECT("A1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n",
	       "DONE A1 LOGIN {5}\"alice\" {6}\"secret\"\npending 0");
	EXPECT("A1 LOGIN {0}\r\n {0+}\r\n\r\n", "CONT 0\nDONE A1 LOGIN {0}\"\" {0}\"\"\npending 0");
	EXPECT("A1 LOGIN {00005+}\r\nalice x\r\n", "DONE A1 LOGIN {5}\"alice\" x\npending 0");
	/* literal data is anything but NUL: CRLF, brackets, quotes, 8-bit */
	EXPECT("A1 APPEND Box {11+}\r\n(a\r\n\"]{1}\r\xff\r\n",
	       "DONE A1 APPEND Box {11}\"(a\\x0d\\x0a\"]{1}\\x0d\\xff\"\npending 0");
	/* in lists, and followed by a list */
	EXPECT("A1 X (a {3+}\r\nb c d) {1+}\r\n) (e)\r\n",
	       "DONE A1 X (a {3}\"b c\" d) {1}\")\" (e)\npending 0");
	EXPECT("A1 X ({1+}\r\na)\r\n", "DONE A1 X ({1}\"a\")\npending 0");

	/* bad announcements */
	EXPECT("A1 LOGIN {5} x\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN {5}x\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN {}\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN {+}\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN {x}\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN {5\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN {-5}\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN a{5}\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN ~{5}\r\n", "BAD A1\npending 0");		/* literal8: not accepted */
	/* after the literal data comes SP, ')' or the end of the line */
	EXPECT("A1 LOGIN {1+}\r\nab\r\n", "BAD A1\npending 0");
	EXPECT("A1 LOGIN {1+}\r\na \r\n", "BAD A1\npending 0");
	/* an error on the line announcing a LITERAL+: its data does not become a command */
	EXPECT("A1 X \"\\q\" {9+}\r\nA9 NOOP\r\n\r\nA2 NOOP\r\n", "BAD A1\nDONE A2 NOOP\npending 0");
	EXPECT("A1 X \"\\q\" {3+}\r\nabc {2+}\r\nxy\r\nA2 NOOP\r\n",
	       "BAD A1\nDONE A2 NOOP\npending 0");
	/* ... but a synchronizing one is never sent after the BAD */
	EXPECT("A1 X \"\\q\" {9}\r\nA2 NOOP\r\n", "BAD A1\nDONE A2 NOOP\npending 0");
}

static void test_literal_nul(void)
{
	static const char in[] = "A1 APPEND Box {5+}\r\nab\0de more {2+}\r\nxy\r\nA2 NOOP\r\n";

	EXPECT_N(&big, in, sizeof(in) - 1, "BAD A1\nDONE A2 NOOP\npending 0");
	EXPECT_N(&big, "A1 X {1}\r\n\0\r\nA2 NOOP\r\n", 22, "CONT 1\nBAD A1\nDONE A2 NOOP\npending 0");
	EXPECT_N(&big, "A1 X {3+}\r\nab\0\r\nA2 NOOP\r\n", 25, "BAD A1\nDONE A2 NOOP\npending 0");
}

static void test_literal_limits(void)
{
	static const struct imapcmd_limits lim = { 100, 6000, 7000, false };
	char *data = rep('x', 5000), *in = xmalloc(6000);
	int n;

	/* LITERAL-: a non-synchronizing literal up to 4096 bytes, not one byte more */
	n = str_fmt(in, 6000, "A1 APPEND Box {4096+}\r\n%.4096s\r\nA2 NOOP\r\n", data);
	{
		char *got = transcript_n(&lim, in, (size_t)n, 0);

		T_CHECK(strncmp(got, "DONE A1 APPEND Box {4096}\"xxx", 29) == 0);
		T_CHECK(strstr(got, "\"\nDONE A2 NOOP\npending 0") != NULL);
		free(got);
	}
	/* the refused data and the rest of that command are skipped */
	n = str_fmt(in, 6000, "A1 APPEND Box {4097+}\r\n%.4097s {1+}\r\nA\r\nA2 NOOP\r\n", data);
	EXPECT_N(&lim, in, (size_t)n, "TOOBIG A1 4097\nDONE A2 NOOP\npending 0");
	/* LITERAL+: the same literal is fine up to literal_max */
	{
		static const struct imapcmd_limits plus = { 100, 6000, 7000, true };
		char *got;

		n = str_fmt(in, 6000, "A1 APPEND Box {4097+}\r\n%.4097s\r\nA2 NOOP\r\n", data);
		got = transcript_n(&plus, in, (size_t)n, 0);
		T_CHECK(strncmp(got, "DONE A1 APPEND Box {4097}\"xxx", 29) == 0);
		free(got);
	}

	/* synchronizing: refused before the "+", so nothing follows but the next command */
	EXPECT_LIM(&lim, "A1 APPEND Box {6000}\r\n", "CONT 6000\npending 0");
	EXPECT_LIM(&lim, "A1 APPEND Box {6001}\r\nA2 NOOP\r\n", "TOOBIG A1 6001\nDONE A2 NOOP\npending 0");
	EXPECT_LIM(&lim, "A1 X {99999999999999999999999}\r\nA2 NOOP\r\n",
		   "TOOBIG A1 18446744073709551615\nDONE A2 NOOP\npending 0");
	EXPECT_LIM(&lim, "A1 X {4294967296}\r\nA2 NOOP\r\n",
		   "TOOBIG A1 4294967296\nDONE A2 NOOP\npending 0");
	/* total_max counts every literal and line of the command */
	EXPECT_LIM(&lim, "A1 X {4000+}\r\n", "pending 0");
	n = str_fmt(in, 6000, "A1 X {4000+}\r\n%.4000s {3000}\r\nA2 NOOP\r\n", data);
	EXPECT_N(&lim, in, (size_t)n, "TOOBIG A1 3000\nDONE A2 NOOP\npending 0");
	free(data);
	free(in);
}

static void test_line_limits(void)
{
	static const struct imapcmd_limits lim = { 20, 100, 200, false };
	static const struct imapcmd_limits tight = { 100, 100, 30, false };

	/* 20 bytes without the CRLF are fine, 21 are not */
	EXPECT_LIM(&lim, "A1 LOGIN aaaa bbbbbb\r\n", "DONE A1 LOGIN aaaa bbbbbb\npending 0");
	EXPECT_LIM(&lim, "A1 LOGIN aaaa bbbbbbb\r\nA2 NOOP\r\n", "TOOBIG A1 0\nDONE A2 NOOP\npending 0");
	EXPECT_LIM(&lim, "A1 LOGIN aaaa bbbbbbbbbbbbbbbbbbbbbbbbbbb\nA2 NOOP\n",
		   "TOOBIG A1 0\nDONE A2 NOOP\npending 0");
	/* the tag is reported when it is in the first line_max + 1 bytes */
	EXPECT_LIM(&lim, "AAAAAAAAAAAAAAAAAAAA NOOP\r\nA2 NOOP\r\n", "TOOBIG AAAAAAAAAAAAAAAAAAAA 0\n"
		   "DONE A2 NOOP\npending 0");
	EXPECT_LIM(&lim, "AAAAAAAAAAAAAAAAAAAAA NOOP\r\nA2 NOOP\r\n", "TOOBIG * 0\nDONE A2 NOOP\npending 0");
	/* an endless line is refused early, and skipped until its end */
	EXPECT_LIM(&lim, "A1 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "TOOBIG A1 0\npending 0");
	/* the LITERAL+ it announced is skipped as well (a synchronizing one never comes) */
	EXPECT_LIM(&lim, "A1 APPEND MyFolderName {5+}\r\nA9 NO\r\nA2 NOOP\r\n",
		   "TOOBIG A1 0\nDONE A2 NOOP\npending 0");
	EXPECT_LIM(&lim, "A1 APPEND MyFolderName {5}\r\nA2 NOOP\r\n",
		   "TOOBIG A1 0\nDONE A2 NOOP\npending 0");
	/* line_max counts the lines of one command together */
	EXPECT_LIM(&lim, "A1 X {1+}\r\na bbbbbbb\r\n", "DONE A1 X {1}\"a\" bbbbbbb\npending 0");
	EXPECT_LIM(&lim, "A1 X {1+}\r\na bbbbbbbb {2+}\r\nxy\r\nA2 NOOP\r\n",
		   "TOOBIG A1 0\nDONE A2 NOOP\npending 0");
	/* total_max with lines alone */
	EXPECT_LIM(&tight, "A1 X aaaaaaaaaaaaaaaaaaaaaaaaaa\r\nA2 NOOP\r\n",
		   "TOOBIG A1 0\nDONE A2 NOOP\npending 0");
	EXPECT_LIM(&tight, "A1 X aaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
		   "DONE A1 X aaaaaaaaaaaaaaaaaaaaaaaaa\npending 0");
}

static void test_too_many_args(void)
{
	static const struct imapcmd_limits lim = { 100000, 100, 200000, false };
	struct buf in;
	char *got;

	buf_init(&in, 1 << 20);
	(void)buf_append_str(&in, "A1 X");
	for (int i = 0; i < IMAPCMD_MAX_ARGS; i++)
		(void)buf_append_str(&in, " a");
	(void)buf_append_str(&in, "\r\n");
	got = transcript(&lim, in.data);
	T_CHECK(strncmp(got, "DONE A1 X a a a", 15) == 0);
	free(got);
	buf_reset(&in);
	(void)buf_append_str(&in, "A1 X");
	for (int i = 0; i < IMAPCMD_MAX_ARGS; i++)
		(void)buf_append_str(&in, " a");
	(void)buf_append_str(&in, " {3+}\r\nabc\r\nA2 NOOP\r\n");
	EXPECT_LIM(&lim, in.data, "TOOBIG A1 3\nDONE A2 NOOP\npending 0");
	buf_reset(&in);
	(void)buf_append_str(&in, "A1 X (");
	for (int i = 0; i < IMAPCMD_MAX_ARGS; i++)
		(void)buf_append_str(&in, " a" + (i == 0));
	(void)buf_append_str(&in, ")\r\nA2 NOOP\r\n");
	got = transcript(&lim, in.data);		/* the list node is one more */
	T_EQ_STR(got, "TOOBIG A1 0\nDONE A2 NOOP\npending 0");
	free(got);
	buf_free(&in);
}

static void test_uid(void)
{
	EXPECT("A1 UID FETCH 1:* (FLAGS)\r\n", "DONE A1 UID FETCH 1:* (FLAGS)\npending 0");
	EXPECT("A1 uid search all\r\n", "DONE A1 UID SEARCH all\npending 0");
	EXPECT("A1 Uid Expunge 3\r\n", "DONE A1 UID EXPUNGE 3\npending 0");
	EXPECT("A1 UID\r\n", "BAD A1\npending 0");
	EXPECT("A1 UID \r\n", "BAD A1\npending 0");
	EXPECT("A1 UID  FETCH 1 FLAGS\r\n", "BAD A1\npending 0");
	EXPECT("A1 UID (FETCH)\r\n", "BAD A1\npending 0");
	EXPECT("A1 UIDS FETCH\r\n", "DONE A1 UIDS FETCH\npending 0");
	EXPECT("A1 UID ABCDEFGHIJKLMNOPQRSTUVWXYZAB\r\n",
	       "DONE A1 UID ABCDEFGHIJKLMNOPQRSTUVWXYZAB\npending 0");
	EXPECT("A1 UID ABCDEFGHIJKLMNOPQRSTUVWXYZABC\r\n", "BAD A1\npending 0");
}

static void test_sections(void)
{
	struct imapcmd *c = imapcmd_new(&big);
	const struct imaparg *a, *s;

	T_EQ_INT(feed_s(c, "A1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> FLAGS)\r\n"),
		 IMAPCMD_DONE);
	a = c->args->next;
	T_CHECK(a->kind == IMAPARG_LIST && a->next == NULL);
	a = a->child;
	T_CHECK(imaparg_is_atom(a, "body.peek"));
	s = a->next;
	T_CHECK(s->kind == IMAPARG_SECTION);
	T_EQ_STR(s->text, "HEADER.FIELDS (From To)");
	T_EQ_INT(s->len, 23);
	T_CHECK(imaparg_is_atom(s->child, "HEADER.FIELDS"));
	T_CHECK(s->child->next->kind == IMAPARG_LIST);
	T_EQ_INT(imaparg_count(s->child->next->child), 2);
	T_CHECK(s->next->kind == IMAPARG_PARTIAL);
	T_EQ_STR(s->next->text, "0.100");
	T_CHECK(imaparg_is_atom(s->next->next, "FLAGS"));
	T_EQ_INT(imaparg_count(c->args), 2);
	imapcmd_free(c);

	EXPECT("A1 FETCH 1 BODY[]\r\n", "DONE A1 FETCH 1 BODY[|]\npending 0");
	EXPECT("A1 FETCH 1 body[]<5>\r\n", "DONE A1 FETCH 1 body[|]<5>\npending 0");
	EXPECT("A1 FETCH 1 BINARY[1]\r\n", "DONE A1 FETCH 1 BINARY[1|1]\npending 0");
	EXPECT("A1 FETCH 1 (BINARY.PEEK[1.2] BINARY.SIZE[3])\r\n",
	       "DONE A1 FETCH 1 (BINARY.PEEK[1.2|1.2] BINARY.SIZE[3|3])\npending 0");
	EXPECT("A1 FETCH 1 BODY[1.2.MIME]<0.4294967295>\r\n",
	       "DONE A1 FETCH 1 BODY[1.2.MIME|1.2.MIME]<0.4294967295>\npending 0");
	EXPECT("A1 FETCH 1 BODY[HEADER.FIELDS.NOT (\"X-A\" b)]\r\n",
	       "DONE A1 FETCH 1 BODY[HEADER.FIELDS.NOT (\"X-A\" b)|HEADER.FIELDS.NOT (\"X-A\" b)]\n"
	       "pending 0");
	/* '[' after another atom is an atom character; ']' ends atoms only in sections */
	EXPECT("A1 FETCH 1 FLAGS[1]\r\n", "DONE A1 FETCH 1 FLAGS[1]\npending 0");
	EXPECT("A1 FETCH 1 BODY[a[b]\r\n", "DONE A1 FETCH 1 BODY[a[b|a[b]\npending 0");

	EXPECT("A1 FETCH 1 BODY[\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[TEXT\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[ ]\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[TEXT ]\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[(a]\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[a)]\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]]\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]x\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[][1]\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[] [1]\r\n", "DONE A1 FETCH 1 BODY[|] [1]\npending 0");
	EXPECT("A1 FETCH 1 BODY[HEADER.FIELDS {4+}\r\nFrom]\r\n", "BAD A1\npending 0");
	/* partials */
	EXPECT("A1 FETCH 1 BODY[]<>\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]<0.>\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]<.5>\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]<1..5>\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]<1.2.3>\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]<a>\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]<0.1\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]<0.1><2>\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]<0.1>x\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 BODY[]<1234567890123.1234567890123>\r\n", "BAD A1\npending 0");
	EXPECT("A1 FETCH 1 \"x\"<0.1>\r\n", "BAD A1\npending 0");
	/* '<' after an atom is part of it */
	EXPECT("A1 FETCH 1 BODY<0.1>\r\n", "DONE A1 FETCH 1 BODY<0.1>\npending 0");
}

static void test_pipelining(void)
{
	struct imapcmd *c = imapcmd_new(&big);
	const char *line;
	size_t len;

	T_EQ_INT(feed_s(c, "A1 NOOP\r\nA2 SELECT INBOX\r\nA3 IDLE\r\nDONE\r\nA4 NO"), IMAPCMD_DONE);
	T_EQ_STR(c->tag, "A1");
	T_EQ_INT(imapcmd_pending(c), 37);
	T_EQ_INT(feed_s(c, "OP\r\n"), IMAPCMD_DONE);	/* kept, not parsed before reset */
	T_EQ_STR(c->tag, "A1");
	imapcmd_reset(c);
	T_EQ_INT(imapcmd_feed(c, NULL, 0), IMAPCMD_DONE);
	T_EQ_STR(c->tag, "A2");
	T_EQ_STR(imaparg_astring(c->args), "INBOX");
	imapcmd_reset(c);
	T_EQ_INT(imapcmd_feed(c, NULL, 0), IMAPCMD_DONE);
	T_EQ_STR(c->name, "IDLE");
	imapcmd_reset(c);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_DONE);
	T_EQ_STR(line, "DONE");
	T_EQ_INT(len, 4);
	T_EQ_INT(imapcmd_feed(c, NULL, 0), IMAPCMD_DONE);
	T_EQ_STR(c->tag, "A4");
	T_EQ_STR(c->name, "NOOP");
	T_EQ_INT(imapcmd_pending(c), 0);
	imapcmd_free(c);

	EXPECT("A1 NOOP\r\nA2 NOOP \r\nA3 LOGIN {2+}\r\nab\r\nA4 CHECK\nA5 X",
	       "DONE A1 NOOP\nBAD A2\nDONE A3 LOGIN {2}\"ab\"\nDONE A4 CHECK\npending 4");
}

static void test_read_line(void)
{
	static const struct imapcmd_limits lim = { 10, 100, 200, false };
	struct imapcmd *c = imapcmd_new(&lim);
	const char *line;
	size_t len;

	/* AUTHENTICATE continuation lines: raw, CRLF or LF, any length up to line_max */
	T_EQ_INT(feed_s(c, "A1 AUTHENTICATE PLAIN\r\n"), IMAPCMD_TOOBIG);	/* 21 > 10 */
	imapcmd_reset(c);
	imapcmd_free(c);
	c = imapcmd_new(&big);
	T_EQ_INT(feed_s(c, "A1 AUTHENTICATE PLAIN\r\nAGFsaWNl"), IMAPCMD_DONE);
	imapcmd_reset(c);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_MORE);
	T_EQ_INT(imapcmd_feed(c, "AHB3\r", 5), IMAPCMD_MORE);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_MORE);
	T_EQ_INT(imapcmd_feed(c, "\n*\n\r\n", 5), IMAPCMD_MORE);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_DONE);
	T_EQ_STR(line, "AGFsaWNlAHB3");
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_DONE);
	T_EQ_STR(line, "*");
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_DONE);
	T_EQ_STR(line, "");
	T_EQ_INT(len, 0);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_MORE);
	imapcmd_free(c);

	/* a raw line over line_max: TOOBIG, and the rest of it is dropped */
	c = imapcmd_new(&lim);
	T_EQ_INT(feed_s(c, "0123456789"), IMAPCMD_MORE);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_MORE);
	T_EQ_INT(feed_s(c, "\r"), IMAPCMD_MORE);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_MORE);
	T_EQ_INT(feed_s(c, "\n0123456789A"), IMAPCMD_MORE);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_DONE);
	T_EQ_STR(line, "0123456789");
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_TOOBIG);
	T_EQ_INT(feed_s(c, "BCD {3+}\r\nDONE\r\n"), IMAPCMD_MORE);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_DONE);	/* no literal in raw lines */
	T_EQ_STR(line, "DONE");
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_MORE);	/* waits for a raw line */
	T_EQ_INT(feed_s(c, "0123456789ABC\r\nDONE\n"), IMAPCMD_MORE);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_TOOBIG);
	T_EQ_INT(imapcmd_read_line(c, &line, &len), IMAPCMD_DONE);
	T_EQ_STR(line, "DONE");
	imapcmd_free(c);
}

static void test_discard(void)
{
	struct imapcmd *c = imapcmd_new(&big);

	T_EQ_INT(feed_s(c, "A1 STARTTLS\r\nA2 LOGIN evil injected\r\n"), IMAPCMD_DONE);
	T_EQ_STR(c->name, "STARTTLS");
	imapcmd_discard(c);
	T_EQ_STR(c->name, "STARTTLS");			/* still valid until reset */
	T_EQ_INT(imapcmd_pending(c), 0);
	imapcmd_reset(c);
	T_EQ_INT(imapcmd_feed(c, NULL, 0), IMAPCMD_MORE);
	T_EQ_INT(feed_s(c, "A2 CAPABILITY\r\n"), IMAPCMD_DONE);
	T_EQ_STR(c->tag, "A2");
	imapcmd_reset(c);
	/* a skip in progress (refused LITERAL+) does not survive either */
	T_EQ_INT(feed_s(c, "A3 X {5000+}\r\n"), IMAPCMD_TOOBIG);
	imapcmd_reset(c);
	imapcmd_discard(c);
	T_EQ_INT(feed_s(c, "A4 NOOP\r\n"), IMAPCMD_DONE);
	T_EQ_STR(c->tag, "A4");
	imapcmd_free(c);
}

/* Every script above and some more, whole vs byte by byte vs odd chunks. */
static void test_chunking_equivalence(void)
{
	static const char *const scripts[] = {
		"A1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\nA2 SELECT \"a\\\\b\"\r\nA3 X (a (b) [c]) \r\n",
		"A1 FETCH 1:3 (BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.2048> UID)\r\nA2 NOOP\n",
		"A1 APPEND x {3+}\r\n\r\n\r\r\nA2 X {2}\r\n\r\n\r\n",
		"A1 X \"unterminated\r\nA2 Y\r\nA3 Z {4097+}\r\n",
		"\r\n\n\r\r\nA1 NOOP\r\n",
	};

	for (size_t i = 0; i < ARRAY_LEN(scripts); i++) {
		char *want = transcript(&big, scripts[i]);

		T_CHECK(strncmp(want, "pending", 7) != 0);	/* something happened */
		EXPECT(scripts[i], want);
		free(want);
	}
}

static void test_arg_helpers(void)
{
	struct imapcmd *c = imapcmd_new(&big);
	const struct imaparg *a;

	T_EQ_INT(feed_s(c, "A1 X nil \"NIL\" NiL2 (a) {3+}\r\nNIL\r\n"), IMAPCMD_DONE);
	a = c->args;
	T_EQ_INT(imaparg_count(a), 5);
	T_EQ_INT(imaparg_count(NULL), 0);
	T_CHECK(imaparg_is_atom(a, "NIL"));
	T_CHECK(imaparg_astring(a) == NULL);			/* NIL atom */
	T_EQ_STR(imaparg_astring(a->next), "NIL");		/* "NIL" is a string */
	T_CHECK(!imaparg_is_atom(a->next, "NIL"));
	T_EQ_STR(imaparg_astring(a->next->next), "NiL2");
	T_CHECK(!imaparg_is_atom(a->next->next, "NIL"));
	T_CHECK(imaparg_astring(a->next->next->next) == NULL);	/* a list */
	T_EQ_STR(a->next->next->next->text, "");
	T_EQ_STR(imaparg_astring(a->next->next->next->next), "NIL");
	T_CHECK(imaparg_astring(NULL) == NULL);
	T_CHECK(!imaparg_is_atom(NULL, "NIL"));
	imapcmd_free(c);
}

static void test_seqset_parse(void)
{
	T_EQ_INT(seqset_parse("1,3:5,7:*", 10, &ss), 0);
	T_EQ_INT(ss.n, 3);
	T_CHECK(ss.r[0].lo == 1 && ss.r[0].hi == 1);
	T_CHECK(ss.r[1].lo == 3 && ss.r[1].hi == 5);
	T_CHECK(ss.r[2].lo == 7 && ss.r[2].hi == 10);
	T_CHECK(seqset_has(&ss, 1) && !seqset_has(&ss, 2) && seqset_has(&ss, 4));
	T_CHECK(!seqset_has(&ss, 6) && seqset_has(&ss, 10) && !seqset_has(&ss, 11));
	T_CHECK(!seqset_has(&ss, 0));

	T_EQ_INT(seqset_parse("5:3", 10, &ss), 0);		/* reversed */
	T_CHECK(ss.n == 1 && ss.r[0].lo == 3 && ss.r[0].hi == 5);
	T_EQ_INT(seqset_parse("*:4", 2, &ss), 0);		/* star below the number */
	T_CHECK(ss.n == 1 && ss.r[0].lo == 2 && ss.r[0].hi == 4);
	T_EQ_INT(seqset_parse("*", 7, &ss), 0);
	T_CHECK(ss.n == 1 && ss.r[0].lo == 7 && ss.r[0].hi == 7);
	T_EQ_INT(seqset_parse("7,3,1:2,4,9:8,5", 100, &ss), 0);	/* sorted and merged */
	T_CHECK(ss.n == 2 && ss.r[0].lo == 1 && ss.r[0].hi == 5 && ss.r[1].lo == 7 &&
		ss.r[1].hi == 9);
	T_EQ_INT(seqset_parse("1:10,2:3,10", 100, &ss), 0);
	T_CHECK(ss.n == 1 && ss.r[0].lo == 1 && ss.r[0].hi == 10);
	T_EQ_INT(seqset_parse("4294967295", 1, &ss), 0);
	T_CHECK(ss.n == 1 && ss.r[0].lo == 4294967295u && ss.r[0].hi == 4294967295u);
	T_EQ_INT(seqset_parse("4294967295:1,4294967295,7", 1, &ss), 0);
	T_CHECK(ss.n == 1 && ss.r[0].lo == 1 && ss.r[0].hi == 4294967295u);
	T_CHECK(seqset_has(&ss, 4294967295u) && seqset_has(&ss, 1));
	T_EQ_INT(seqset_parse("007", 1, &ss), 0);
	T_CHECK(ss.n == 1 && ss.r[0].lo == 7);
	/* an empty mailbox: "*" names nothing */
	T_EQ_INT(seqset_parse("*", 0, &ss), 0);
	T_EQ_INT(ss.n, 0);
	T_EQ_INT(seqset_parse("3:*", 0, &ss), 0);
	T_CHECK(ss.n == 1 && ss.r[0].lo == 1 && ss.r[0].hi == 3);

	static const char *const bad[] = {
		"", "0", "00", "0:5", "5:0", "4294967296", "99999999999999999999", "1,", ",1",
		"1,,2", "1::2", "1:", ":1", "a", "1a", "$", "1:$", " 1", "1 ", "-1", "+1", "1.5",
		"**", "*:*:*", "1:2:3",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		ss.n = 99;
		T_EQ_INT(seqset_parse(bad[i], 10, &ss), -1);
		T_EQ_INT(ss.n, 0);
	}
	T_EQ_INT(seqset_parse(NULL, 10, &ss), -1);
}

static void test_seqset_ranges_limit(void)
{
	struct buf s;

	buf_init(&s, 1 << 20);
	for (int i = 0; i < IMAPCMD_MAX_RANGES; i++)
		(void)buf_printf(&s, "%s%d", i ? "," : "", 2 * i + 1);
	T_EQ_INT(seqset_parse(s.data, 1, &ss), 0);
	T_EQ_INT(ss.n, IMAPCMD_MAX_RANGES);
	T_CHECK(seqset_has(&ss, 2 * IMAPCMD_MAX_RANGES - 1) && !seqset_has(&ss, 2));
	(void)buf_printf(&s, ",%d", 2 * IMAPCMD_MAX_RANGES + 1);
	T_EQ_INT(seqset_parse(s.data, 1, &ss), -1);
	/* what counts is the result: 5000 adjacent numbers are one range */
	buf_reset(&s);
	for (int i = 5000; i >= 1; i--)
		(void)buf_printf(&s, "%d%s", i, i > 1 ? "," : "");
	T_EQ_INT(seqset_parse(s.data, 1, &ss), 0);
	T_CHECK(ss.n == 1 && ss.r[0].lo == 1 && ss.r[0].hi == 5000);
	buf_free(&s);
}

static void test_seqset_format(void)
{
	static const uint32_t a[] = { 1, 2, 3, 7, 9, 10, 10, 12 };
	static const uint32_t top[] = { 4294967294u, 4294967295u };
	static const uint32_t wrap[] = { 4294967295u, 0 };
	char out[64];

	T_EQ_INT(seqset_format(a, ARRAY_LEN(a), out, sizeof(out)), 0);
	T_EQ_STR(out, "1:3,7,9:10,12");
	T_EQ_INT(seqset_format(a, 1, out, sizeof(out)), 0);
	T_EQ_STR(out, "1");
	T_EQ_INT(seqset_format(a, 0, out, sizeof(out)), 0);
	T_EQ_STR(out, "");
	T_EQ_INT(seqset_format(top, 2, out, sizeof(out)), 0);
	T_EQ_STR(out, "4294967294:4294967295");
	T_EQ_INT(seqset_format(a, ARRAY_LEN(a), out, 14), 0);	/* exactly fits */
	T_EQ_STR(out, "1:3,7,9:10,12");
	T_EQ_INT(seqset_format(a, ARRAY_LEN(a), out, 13), -1);
	T_EQ_STR(out, "");
	T_EQ_INT(seqset_format(a, 0, out, 0), -1);
	T_EQ_INT(seqset_format(wrap, 2, out, sizeof(out)), 0);	/* unsorted: still right */
	T_EQ_STR(out, "4294967295,0");
	/* parse(format(x)) == x */
	T_EQ_INT(seqset_format(a, ARRAY_LEN(a), out, sizeof(out)), 0);
	T_EQ_INT(seqset_parse(out, 1, &ss), 0);
	T_EQ_INT(ss.n, 4);
	for (uint32_t v = 0; v < 14; v++) {
		bool in = false;

		for (size_t i = 0; i < ARRAY_LEN(a); i++)
			in |= a[i] == v;
		T_EQ_INT(seqset_has(&ss, v), in);
	}
}

int main(void)
{
	T_RUN(test_simple_commands);
	T_RUN(test_bad_lines);
	T_RUN(test_quoted);
	T_RUN(test_lists);
	T_RUN(test_literals);
	T_RUN(test_literal_nul);
	T_RUN(test_literal_limits);
	T_RUN(test_line_limits);
	T_RUN(test_too_many_args);
	T_RUN(test_uid);
	T_RUN(test_sections);
	T_RUN(test_pipelining);
	T_RUN(test_read_line);
	T_RUN(test_discard);
	T_RUN(test_chunking_equivalence);
	T_RUN(test_arg_helpers);
	T_RUN(test_seqset_parse);
	T_RUN(test_seqset_ranges_limit);
	T_RUN(test_seqset_format);
	return T_DONE();
}
