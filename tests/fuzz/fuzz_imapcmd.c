/*
 * fuzz_imapcmd.c: libFuzzer target for the IMAP command reader (lib/imapcmd.c) and sequence
 * sets (lib/seqset.c). Input: byte 0 picks the limits, byte 1 a chunk size, the rest is what
 * a client sends. The bytes are played against the reader the way a server does (answering
 * continuations, resetting after each result, reading raw lines after IDLE / AUTHENTICATE)
 * three times: all at once, byte by byte and in chunks; the three transcripts must be
 * identical. Every parsed command must keep the reader's promises: a valid tag, an upper-case
 * name, a bounded tree of NUL-terminated NUL-free nodes whose atoms hold only atom characters,
 * sections only after an atom and partials only after a section, literals within the limits.
 * The payload is also parsed as a sequence set: sorted, disjoint, non-adjacent ranges that
 * survive seqset_format and parse again unchanged. Anything else aborts.
 * Build and run: `make fuzz-imapcmd`, `make fuzz-run`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imapcmd.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct seqset set1, set2;	/* large: keep them off the stack */

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_text(const struct imaparg *a)
{
	check(a->text != NULL && a->text[a->len] == '\0' && strlen(a->text) == a->len);
}

static void check_atom(const struct imaparg *a, bool in_section)
{
	check(a->len > 0 && !a->literal);
	for (size_t i = 0; i < a->len; i++) {
		unsigned char ch = (unsigned char)a->text[i];

		check(ch > 0x20 && ch < 0x7f && strchr("(){\"", ch) == NULL);
		check(ch != '\\' || i == 0);
		check(ch != ']' || !in_section);
	}
	check(a->text[0] != '\\' || a->len > 1);
}

/* Walk the tree: its shape rules, and write it to the transcript. */
static size_t walk(const struct imaparg *a, int depth, bool in_section, struct buf *t)
{
	const struct imaparg *prev = NULL;
	size_t nodes = 0;

	check(depth <= IMAPCMD_MAX_DEPTH + 1);
	for (; a != NULL; prev = a, a = a->next) {
		nodes++;
		check_text(a);
		(void)buf_printf(t, " %d:%zu:", (int)a->kind, a->len);
		(void)buf_append(t, a->text, a->len);
		switch (a->kind) {
		case IMAPARG_ATOM:
			check_atom(a, in_section);
			break;
		case IMAPARG_STRING:
			(void)buf_append_char(t, a->literal ? 'L' : 'Q');
			break;
		case IMAPARG_LIST:
			check(a->len == 0 && !a->literal);
			(void)buf_append_char(t, '(');
			nodes += walk(a->child, depth + 1, in_section, t);
			(void)buf_append_char(t, ')');
			break;
		case IMAPARG_SECTION:
			check(!in_section && prev != NULL && prev->kind == IMAPARG_ATOM);
			(void)buf_append_char(t, '[');
			nodes += walk(a->child, depth, true, t);
			(void)buf_append_char(t, ']');
			break;
		case IMAPARG_PARTIAL:
			check(prev != NULL && prev->kind == IMAPARG_SECTION && a->len > 0);
			check(strspn(a->text, "0123456789.") == a->len);
			break;
		default:
			abort();
		}
		if (a->kind != IMAPARG_STRING)
			check(!a->literal);
	}
	return nodes;
}

static void check_command(const struct imapcmd *c, enum imapcmd_status s,
			  const struct imapcmd_limits *lim, struct buf *t)
{
	size_t tl = strlen(c->tag);

	check(tl > 0 && tl <= IMAPCMD_TAG_MAX);
	check(strcmp(c->tag, "*") == 0 || strcspn(c->tag, "(){%*\"\\+ ") == tl);
	for (size_t i = 0; i < tl; i++)
		check(c->tag[i] > 0x20 && c->tag[i] < 0x7f);
	(void)buf_printf(t, "%d %s", (int)s, c->tag);
	if (s != IMAPCMD_DONE) {
		check(c->error != NULL && c->error[0] != '\0');
		(void)buf_printf(t, " %zu %s\n", c->literal_size, c->error);
		return;
	}
	check(c->error == NULL);
	check(c->name[0] != '\0' && strlen(c->name) <= IMAPCMD_NAME_MAX);
	for (const char *p = c->name; *p; p++)
		check(!(*p >= 'a' && *p <= 'z'));
	(void)buf_printf(t, " %s", c->name);
	check(walk(c->args, 0, false, t) <= IMAPCMD_MAX_ARGS);
	for (const struct imaparg *a = c->args; a; a = a->next)
		if (a->kind == IMAPARG_STRING && a->literal)
			check(a->len <= lim->literal_max);
	(void)buf_append_char(t, '\n');
}

/* Play data[0..n) in pieces of `chunk` bytes; the transcript goes to t. */
static void play(const struct imapcmd_limits *lim, const char *data, size_t n, size_t chunk,
		 struct buf *t)
{
	struct imapcmd *c = imapcmd_new(lim);
	enum imapcmd_status s = IMAPCMD_MORE;
	bool raw = false;
	size_t pos = 0;
	const char *line;
	size_t len;

	for (;;) {
		if (raw) {
			s = imapcmd_read_line(c, &line, &len);
			if (s == IMAPCMD_DONE) {
				check(len <= lim->line_max && line[len] == '\0');
				(void)buf_printf(t, "RAW %zu\n", len);
				raw = false;
				s = imapcmd_feed(c, NULL, 0);
				continue;
			}
			if (s == IMAPCMD_TOOBIG) {
				(void)buf_append_str(t, "RAW TOOBIG\n");
				continue;
			}
		} else if (s == IMAPCMD_CONTINUE) {
			(void)buf_printf(t, "+ %zu\n", c->literal_size);
			check(c->literal_size <= lim->literal_max);
			s = imapcmd_feed(c, NULL, 0);
			continue;
		} else if (s != IMAPCMD_MORE) {
			check_command(c, s, lim, t);
			raw = s == IMAPCMD_DONE && (strcmp(c->name, "IDLE") == 0 ||
						    strcmp(c->name, "AUTHENTICATE") == 0);
			imapcmd_reset(c);
			if (!raw)
				s = imapcmd_feed(c, NULL, 0);
			continue;
		}
		if (pos == n)
			break;
		{
			size_t k = n - pos < chunk ? n - pos : chunk;

			s = imapcmd_feed(c, data + pos, k);
			pos += k;
			if (raw)
				check(s == IMAPCMD_MORE);
		}
	}
	check(imapcmd_pending(c) <= n);
	(void)buf_printf(t, "pending %zu\n", imapcmd_pending(c));
	imapcmd_free(c);
}

static void check_seqset(const char *data, size_t n, uint32_t star)
{
	char s[256], out[4096];
	uint32_t nums[512];
	size_t k = 0;

	if (n >= sizeof(s) || memchr(data, '\0', n) != NULL)
		return;
	memcpy(s, data, n);
	s[n] = '\0';
	if (seqset_parse(s, star, &set1) < 0) {
		check(set1.n == 0);
		return;
	}
	for (size_t i = 0; i < set1.n; i++) {
		check(set1.r[i].lo >= 1 && set1.r[i].lo <= set1.r[i].hi);
		if (i > 0)
			check(set1.r[i].lo > set1.r[i - 1].hi + 1ull);
		check(seqset_has(&set1, set1.r[i].lo) && seqset_has(&set1, set1.r[i].hi));
		if (set1.r[i].lo > 1)
			check(!seqset_has(&set1, set1.r[i].lo - 1));
		for (uint64_t v = set1.r[i].lo; v <= set1.r[i].hi && k < ARRAY_LEN(nums); v++)
			nums[k++] = (uint32_t)v;
	}
	if (k == ARRAY_LEN(nums) || k == 0)
		return;
	check(seqset_format(nums, k, out, sizeof(out)) == 0);
	check(seqset_parse(out, star, &set2) == 0 && set2.n == set1.n);
	check(memcmp(set1.r, set2.r, set1.n * sizeof(set1.r[0])) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t line_max[] = { 16, 64, 1024, 65536 };
	static const size_t literal_max[] = { 0, 10, 5000, 1 << 20 };
	static const size_t total_max[] = { 20, 300, 10000, 1 << 21 };
	struct imapcmd_limits lim;
	struct buf whole, bytes, chunks;
	const char *p = (const char *)data + 2;
	size_t n = size - 2;

	if (size < 2)
		return 0;
	lim.line_max = line_max[data[0] & 3];
	lim.literal_max = literal_max[(data[0] >> 2) & 3];
	lim.total_max = total_max[(data[0] >> 4) & 3];
	lim.literal_plus = (data[0] & 0x40) != 0;
	buf_init(&whole, 1 << 26);
	buf_init(&bytes, 1 << 26);
	buf_init(&chunks, 1 << 26);
	play(&lim, p, n, n ? n : 1, &whole);
	play(&lim, p, n, 1, &bytes);
	play(&lim, p, n, (size_t)data[1] % 64 + 1, &chunks);
	check(whole.len == bytes.len && memcmp(whole.data, bytes.data, whole.len) == 0);
	check(whole.len == chunks.len && memcmp(whole.data, chunks.data, whole.len) == 0);
	buf_free(&whole);
	buf_free(&bytes);
	buf_free(&chunks);
	check_seqset(p, n, (uint32_t)data[1] * 1000u);
	return 0;
}
