/*
 * search.c: SEARCH and UID SEARCH (RFC 3501 §6.4.4) with every search key, CHARSET UTF-8
 * and US-ASCII, nested OR / NOT / parenthesised lists (depth bounded), CONDSTORE's MODSEQ
 * key, and ESEARCH's RETURN (MIN MAX COUNT ALL) (RFC 4731). The key list is compiled into
 * a tree once, then every message is tested; keys about flags, sizes, dates and UIDs never
 * open the message, the others read it (headers decoded per RFC 2047, bodies decoded and
 * converted to UTF-8) and compare case-insensitively.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mime.h"
#include "session.h"
#include "util.h"

#define SEARCH_MAX_DEPTH	32
#define SEARCH_MAX_NODES	1000
#define SEARCH_BODY_LIMIT	(8u << 20)

enum skind {
	K_ALL, K_AND, K_OR, K_NOT, K_FLAG, K_NOFLAG, K_KEYWORD, K_UNKEYWORD, K_NEW, K_OLD,
	K_LARGER, K_SMALLER, K_BEFORE, K_ON, K_SINCE, K_SENTBEFORE, K_SENTON, K_SENTSINCE,
	K_HEADER, K_BODY, K_TEXT, K_SEQ, K_UID, K_MODSEQ,
};

struct snode {
	enum skind kind;
	unsigned flag;
	int keyword;			/* index, -1 unknown (matches nothing) */
	uint64_t num;
	time_t day;
	const char *field, *value;	/* HEADER field (FROM, TO, ...) and string */
	struct seqset *set;
	struct snode *a, *b;		/* children (AND: a then b chain via next) */
	struct snode *next;
};

struct compiler {
	struct snode nodes[SEARCH_MAX_NODES];
	size_t n;
	const char *error;
};

static struct snode *node(struct compiler *c, enum skind k)
{
	struct snode *s;

	if (c->n == SEARCH_MAX_NODES) {
		c->error = "Too many search keys";
		return NULL;
	}
	s = &c->nodes[c->n++];
	memset(s, 0, sizeof(*s));
	s->kind = k;
	return s;
}

/* "1-Feb-1994" -> midnight UTC of that day; (time_t)-1 if malformed. */
static time_t parse_day(const char *s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4];
	int d, y, n = 0;
	const char *m;
	struct tm tm = { 0 };

	if (s == NULL || sscanf(s, "%2d-%3s-%4d%n", &d, mon, &y, &n) != 3 || s[n] != '\0')
		return (time_t)-1;
	m = strcasestr(months, mon);
	if (m == NULL || (m - months) % 3 || d < 1 || d > 31 || y < 1900)
		return (time_t)-1;
	tm.tm_mday = d;
	tm.tm_mon = (int)((m - months) / 3);
	tm.tm_year = y - 1900;
	return timegm(&tm);
}

static const struct { const char *name; enum skind kind; unsigned flag; } flag_keys[] = {
	{ "ANSWERED", K_FLAG, MSF_ANSWERED }, { "DELETED", K_FLAG, MSF_DELETED },
	{ "DRAFT", K_FLAG, MSF_DRAFT }, { "FLAGGED", K_FLAG, MSF_FLAGGED },
	{ "RECENT", K_FLAG, MSF_RECENT }, { "SEEN", K_FLAG, MSF_SEEN },
	{ "UNANSWERED", K_NOFLAG, MSF_ANSWERED }, { "UNDELETED", K_NOFLAG, MSF_DELETED },
	{ "UNDRAFT", K_NOFLAG, MSF_DRAFT }, { "UNFLAGGED", K_NOFLAG, MSF_FLAGGED },
	{ "UNSEEN", K_NOFLAG, MSF_SEEN }, { "NEW", K_NEW, 0 }, { "OLD", K_OLD, 0 },
	{ "ALL", K_ALL, 0 },
};

static const struct { const char *name; enum skind kind; const char *field; } string_keys[] = {
	{ "BCC", K_HEADER, "Bcc" }, { "CC", K_HEADER, "Cc" }, { "FROM", K_HEADER, "From" },
	{ "SUBJECT", K_HEADER, "Subject" }, { "TO", K_HEADER, "To" },
	{ "BODY", K_BODY, NULL }, { "TEXT", K_TEXT, NULL },
};

static const struct { const char *name; enum skind kind; } date_keys[] = {
	{ "BEFORE", K_BEFORE }, { "ON", K_ON }, { "SINCE", K_SINCE },
	{ "SENTBEFORE", K_SENTBEFORE }, { "SENTON", K_SENTON }, { "SENTSINCE", K_SENTSINCE },
};

static struct snode *compile_list(struct compiler *c, const struct imaparg **ap, int depth,
				  bool one);

/* One search key starting at *ap; *ap moves past it. */
static struct snode *compile_key(struct compiler *c, const struct imaparg **ap, int depth)
{
	const struct imaparg *a = *ap, *v = a->next;
	struct snode *s;

	if (depth > SEARCH_MAX_DEPTH) {
		c->error = "Search keys nested too deeply";
		return NULL;
	}
	*ap = a->next;
	if (a->kind == IMAPARG_LIST) {
		const struct imaparg *inner = a->child;

		if (inner == NULL) {
			c->error = "Empty search list";
			return NULL;
		}
		return compile_list(c, &inner, depth + 1, false);
	}
	if (a->kind != IMAPARG_ATOM) {
		c->error = "Invalid search key";
		return NULL;
	}
	for (size_t i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++)
		if (imaparg_is_atom(a, flag_keys[i].name)) {
			if ((s = node(c, flag_keys[i].kind)) != NULL)
				s->flag = flag_keys[i].flag;
			return s;
		}
	for (size_t i = 0; i < sizeof(string_keys) / sizeof(string_keys[0]); i++)
		if (imaparg_is_atom(a, string_keys[i].name)) {
			if (v == NULL || (s = node(c, string_keys[i].kind)) == NULL) {
				c->error = c->error ? c->error : "Missing search string";
				return NULL;
			}
			s->field = string_keys[i].field;
			s->value = imaparg_astring(v);
			*ap = v->next;
			return s->value ? s : NULL;
		}
	for (size_t i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++)
		if (imaparg_is_atom(a, date_keys[i].name)) {
			time_t d = v ? parse_day(imaparg_astring(v)) : (time_t)-1;

			if (d == (time_t)-1 || (s = node(c, date_keys[i].kind)) == NULL) {
				c->error = c->error ? c->error : "Invalid search date";
				return NULL;
			}
			s->day = d;
			*ap = v->next;
			return s;
		}
	if (imaparg_is_atom(a, "HEADER")) {
		if (v == NULL || v->next == NULL || (s = node(c, K_HEADER)) == NULL) {
			c->error = c->error ? c->error : "HEADER wants a field and a string";
			return NULL;
		}
		s->field = imaparg_astring(v);
		s->value = imaparg_astring(v->next);
		*ap = v->next->next;
		return s->field && s->value ? s : NULL;
	}
	if (imaparg_is_atom(a, "KEYWORD") || imaparg_is_atom(a, "UNKEYWORD")) {
		if (v == NULL || v->kind != IMAPARG_ATOM ||
		    (s = node(c, imaparg_is_atom(a, "KEYWORD") ? K_KEYWORD : K_UNKEYWORD)) == NULL) {
			c->error = c->error ? c->error : "KEYWORD wants a flag";
			return NULL;
		}
		s->keyword = mfolder_keyword_index(S.folder, v->text, false);
		*ap = v->next;
		return s;
	}
	if (imaparg_is_atom(a, "LARGER") || imaparg_is_atom(a, "SMALLER") ||
	    imaparg_is_atom(a, "MODSEQ")) {
		unsigned long long n;
		const struct imaparg *num = v;
		enum skind k = imaparg_is_atom(a, "LARGER") ? K_LARGER :
			       imaparg_is_atom(a, "SMALLER") ? K_SMALLER : K_MODSEQ;

		if (k == K_MODSEQ && num && num->kind == IMAPARG_STRING && num->next &&
		    num->next->next)		/* MODSEQ "/flags/\\seen" all 12 */
			num = num->next->next;
		if (num == NULL || sscanf(num->text, "%llu", &n) != 1 || (s = node(c, k)) == NULL) {
			c->error = c->error ? c->error : "Invalid number";
			return NULL;
		}
		if (k == K_MODSEQ)
			S.condstore = true;
		s->num = n;
		*ap = num->next;
		return s;
	}
	if (imaparg_is_atom(a, "NOT")) {
		if (v == NULL || (s = node(c, K_NOT)) == NULL) {
			c->error = c->error ? c->error : "NOT wants a key";
			return NULL;
		}
		*ap = v;
		s->a = compile_key(c, ap, depth + 1);
		return s->a ? s : NULL;
	}
	if (imaparg_is_atom(a, "OR")) {
		if (v == NULL || (s = node(c, K_OR)) == NULL) {
			c->error = c->error ? c->error : "OR wants two keys";
			return NULL;
		}
		*ap = v;
		s->a = compile_key(c, ap, depth + 1);
		if (s->a == NULL || *ap == NULL) {
			c->error = c->error ? c->error : "OR wants two keys";
			return NULL;
		}
		s->b = compile_key(c, ap, depth + 1);
		return s->b ? s : NULL;
	}
	if (imaparg_is_atom(a, "UID") || (a->text[0] >= '0' && a->text[0] <= '9') ||
	    a->text[0] == '*') {
		bool uid = imaparg_is_atom(a, "UID");
		const struct imaparg *set = uid ? v : a;
		const struct mmsg *last = mfolder_count(S.folder) ?
			mfolder_msg(S.folder, mfolder_count(S.folder)) : NULL;
		uint32_t star = uid ? (last ? last->uid : 1) : (last ? mfolder_count(S.folder) : 1);

		if (set == NULL || (s = node(c, uid ? K_UID : K_SEQ)) == NULL) {
			c->error = c->error ? c->error : "UID wants a set";
			return NULL;
		}
		s->set = xmalloc(sizeof(*s->set));
		if (seqset_parse(set->text, star, s->set) < 0) {
			free(s->set);
			s->set = NULL;
			c->error = "Invalid message set";
			return NULL;
		}
		*ap = set->next;
		return s;
	}
	c->error = "Unknown search key";
	return NULL;
}

/* Keys in sequence are ANDed: a chain through next under one K_AND node. */
static struct snode *compile_list(struct compiler *c, const struct imaparg **ap, int depth,
				  bool one)
{
	struct snode *and = node(c, K_AND), **tail;

	if (and == NULL)
		return NULL;
	tail = &and->a;
	while (*ap) {
		struct snode *k = compile_key(c, ap, depth);

		if (k == NULL)
			return NULL;
		*tail = k;
		tail = &k->next;
		if (one)
			break;
	}
	return and;
}

static void free_sets(struct compiler *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->nodes[i].set);
}

/* ---- evaluation ------------------------------------------------------------------------- */

static struct {
	uint32_t uid;
	char *data;
	size_t len;
	struct mime_msg mime;
	bool ok;
} msg;

static void msg_drop(void)
{
	if (msg.uid && msg.ok) {
		mime_free(&msg.mime);
		free(msg.data);
	}
	memset(&msg, 0, sizeof(msg));
}

static bool msg_load(uint32_t seq, const struct mmsg *m)
{
	struct buf b;
	char chunk[65536];
	ssize_t n;
	int fd;

	if (msg.uid == m->uid)
		return msg.ok;
	msg_drop();
	msg.uid = m->uid;
	fd = mfolder_msg_open(S.folder, seq);
	if (fd < 0)
		return false;
	buf_init(&b, IMAP_MSG_MAX * 2);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n' && (b.len == 0 || b.data[b.len - 1] != '\r'))
				(void)buf_append(&b, "\r", 1);
			(void)buf_append(&b, &chunk[i], 1);
		}
	}
	close(fd);
	msg.data = b.data ? b.data : xstrdup("");
	msg.len = b.len;
	msg.ok = mime_parse(msg.data, msg.len, &msg.mime) == 0;
	if (!msg.ok)
		free(msg.data);
	return msg.ok;
}

static bool contains(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle) != NULL;
}

static bool header_match(const struct snode *s, uint32_t seq, const struct mmsg *m)
{
	char *raw, *dec;
	bool r;

	if (!msg_load(seq, m))
		return false;
	raw = mime_header(&msg.mime, msg.mime.root, s->field);
	if (raw == NULL)
		return false;
	if (s->value[0] == '\0') {
		free(raw);
		return true;		/* HEADER f "" matches every message having f */
	}
	dec = mime_decode_words(raw);
	r = contains(dec ? dec : raw, s->value);
	free(dec);
	free(raw);
	return r;
}

static bool body_match(const struct snode *s, uint32_t seq, const struct mmsg *m, bool text)
{
	bool r = false;

	if (!msg_load(seq, m))
		return false;
	if (text && msg.mime.root) {
		char *h = xstrndup(msg.data, msg.mime.root->header_len);
		char *dec = mime_decode_words(h);

		r = contains(dec ? dec : h, s->value);
		free(dec);
		free(h);
		if (r)
			return true;
	}
	if (msg.mime.root) {	/* every leaf part's decoded text, depth first */
		const struct mime_part *stack[MIME_MAX_DEPTH + 1];
		int sp = 0;

		stack[sp++] = msg.mime.root;
		while (sp > 0 && !r) {
			const struct mime_part *q = stack[--sp];

			if (q->child) {
				for (const struct mime_part *ch = q->child; ch && sp <= MIME_MAX_DEPTH; ch = ch->next)
					stack[sp++] = ch;
			} else {
				char *t = mime_body_text(&msg.mime, q, SEARCH_BODY_LIMIT);

				r = contains(t, s->value);
				free(t);
			}
		}
	}
	return r;
}

static time_t sent_day(uint32_t seq, const struct mmsg *m)
{
	char *date;
	struct tm tm = { 0 };
	const char *p;
	time_t t = (time_t)-1;

	if (!msg_load(seq, m) || (date = mime_header(&msg.mime, msg.mime.root, "Date")) == NULL)
		return (time_t)-1;
	p = strchr(date, ',') ? strchr(date, ',') + 1 : date;
	while (*p == ' ')
		p++;
	if (strptime(p, "%d %b %Y", &tm) != NULL)
		t = timegm(&tm);
	free(date);
	return t;
}

static time_t day_of(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	{
		struct tm u = { .tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = tm.tm_mday };

		return timegm(&u);
	}
}

/* m is the view's own record, so it shows the date once it has been read. */
static time_t internal_date(uint32_t seq, const struct mmsg *m)
{
	mfolder_load_date(S.folder, seq);
	return m->internal_date;
}

static bool eval(const struct snode *s, uint32_t seq, const struct mmsg *m)
{
	time_t d;

	switch (s->kind) {
	case K_ALL: return true;
	case K_AND:
		for (const struct snode *k = s->a; k; k = k->next)
			if (!eval(k, seq, m))
				return false;
		return true;
	case K_OR: return eval(s->a, seq, m) || eval(s->b, seq, m);
	case K_NOT: return !eval(s->a, seq, m);
	case K_FLAG: return (m->flags & s->flag) != 0;
	case K_NOFLAG: return (m->flags & s->flag) == 0;
	case K_NEW: return (m->flags & MSF_RECENT) && !(m->flags & MSF_SEEN);
	case K_OLD: return !(m->flags & MSF_RECENT);
	case K_KEYWORD: return s->keyword >= 0 && (m->keywords & (1u << s->keyword));
	case K_UNKEYWORD: return s->keyword < 0 || !(m->keywords & (1u << s->keyword));
	case K_LARGER: return m->size > s->num;
	case K_SMALLER: return m->size < s->num;
	case K_MODSEQ: return m->modseq >= s->num;
	case K_BEFORE: return day_of(internal_date(seq, m)) < s->day;
	case K_ON: return day_of(internal_date(seq, m)) == s->day;
	case K_SINCE: return day_of(internal_date(seq, m)) >= s->day;
	case K_SENTBEFORE: d = sent_day(seq, m); return d != (time_t)-1 && d < s->day;
	case K_SENTON: d = sent_day(seq, m); return d != (time_t)-1 && d == s->day;
	case K_SENTSINCE: d = sent_day(seq, m); return d != (time_t)-1 && d >= s->day;
	case K_HEADER: return header_match(s, seq, m);
	case K_BODY: return body_match(s, seq, m, false);
	case K_TEXT: return body_match(s, seq, m, true);
	case K_SEQ: return seqset_has(s->set, seq);
	case K_UID: return seqset_has(s->set, m->uid);
	}
	return false;
}

/* ---- the command -------------------------------------------------------------------------- */

enum { R_MIN = 1, R_MAX = 2, R_COUNT = 4, R_ALL = 8 };

static void reply_esearch(const uint32_t *hits, size_t n, unsigned ret, bool uid)
{
	out_printf("* ESEARCH (TAG \"%s\")%s", S.cmd->tag, uid ? " UID" : "");
	if ((ret & R_MIN) && n)
		out_printf(" MIN %u", hits[0]);
	if ((ret & R_MAX) && n)
		out_printf(" MAX %u", hits[n - 1]);
	if (ret & R_COUNT)
		out_printf(" COUNT %zu", n);
	if ((ret & R_ALL) && n) {
		char *set = xmalloc(n * 22 + 1);

		if (seqset_format(hits, n, set, n * 22 + 1) == 0)
			out_printf(" ALL %s", set);
		free(set);
	}
	out_str("\r\n");
}

static void search(const struct imaparg *a, bool uid)
{
	static struct compiler c;
	struct snode *root;
	uint32_t count = mfolder_count(S.folder), *hits;
	unsigned ret = 0;
	bool esearch = false;
	uint64_t maxmodseq = 0;
	size_t n = 0;

	if (a && imaparg_is_atom(a, "RETURN") && a->next && a->next->kind == IMAPARG_LIST) {
		esearch = true;
		for (const struct imaparg *r = a->next->child; r; r = r->next)
			ret |= imaparg_is_atom(r, "MIN") ? R_MIN : imaparg_is_atom(r, "MAX") ? R_MAX :
			       imaparg_is_atom(r, "COUNT") ? R_COUNT : imaparg_is_atom(r, "ALL") ? R_ALL : 0;
		if (ret == 0)
			ret = R_ALL;
		a = a->next->next;
	}
	if (a && imaparg_is_atom(a, "CHARSET")) {
		const char *cs = a->next ? imaparg_astring(a->next) : NULL;

		if (cs == NULL || (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0)) {
			reply_tagged("NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
			return;
		}
		a = a->next->next;
	}
	if (a == NULL) {
		reply_tagged("BAD", "Missing search keys.");
		return;
	}
	c.n = 0;
	c.error = NULL;
	root = compile_list(&c, &a, 0, false);
	if (root == NULL) {
		free_sets(&c);
		reply_tagged("BAD", "Error in IMAP command SEARCH: %s", c.error ? c.error : "Invalid");
		return;
	}
	hits = xmalloc(sizeof(*hits) * (count ? count : 1));
	for (uint32_t seq = 1; seq <= count; seq++) {
		const struct mmsg *m = mfolder_msg(S.folder, seq);

		if (eval(root, seq, m)) {
			hits[n++] = uid ? m->uid : seq;
			if (m->modseq > maxmodseq)
				maxmodseq = m->modseq;
		}
	}
	msg_drop();
	free_sets(&c);
	if (esearch) {
		reply_esearch(hits, n, ret, uid);
	} else {
		out_str("* SEARCH");
		for (size_t i = 0; i < n; i++)
			out_printf(" %u", hits[i]);
		if (S.condstore && n && strstr(S.cmd->name, "SEARCH"))
			for (size_t i = 0; i < c.n; i++)
				if (c.nodes[i].kind == K_MODSEQ) {
					out_printf(" (MODSEQ %llu)", (unsigned long long)maxmodseq);
					break;
				}
		out_str("\r\n");
	}
	free(hits);
	reply_tagged("OK", "Search completed.");
}

void cmd_search(const struct imaparg *a)
{
	search(a, false);
}

void cmd_uid_search(const struct imaparg *a)
{
	search(a, true);
}
