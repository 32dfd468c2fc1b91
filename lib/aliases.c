/*
 * aliases.c: aliases(5) text parsing, lookup, and a file that is re-read when it changes
 * (see aliases.h). The parser works on lengths, never on NUL-terminated input, so a stray
 * NUL byte is a reported problem, not a truncated line.
 */
#include "aliases.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "util.h"

/* ---- small helpers ---------------------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* A byte that may not appear in a name or target: C0 controls other than TAB, DEL, NUL. */
static bool is_control(char c)
{
	unsigned char u = (unsigned char)c;

	return (u < 0x20 && c != '\t') || u == 0x7f;
}

static void warnf(aliases_warn_fn *warn, void *arg, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void warnf(aliases_warn_fn *warn, void *arg, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (warn == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	warn(arg, line, msg);
}

/* One physical line of text: [*start, *start + *len) without its LF and a CR before it. */
static bool next_line(const char *text, size_t textlen, size_t *pos, const char **start,
		      size_t *len)
{
	const char *p, *lf;

	if (*pos >= textlen)
		return false;
	p = text + *pos;
	lf = memchr(p, '\n', textlen - *pos);
	*len = lf ? (size_t)(lf - p) : textlen - *pos;
	*pos += *len + (lf ? 1 : 0);
	if (*len > 0 && p[*len - 1] == '\r')
		(*len)--;
	*start = p;
	return true;
}

/* Blank, or a comment: its first non-blank character is '#'. */
static bool skippable(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && is_blank(p[i]))
		i++;
	return i == n || p[i] == '#';
}

/* ---- target lists ----------------------------------------------------------------------- */

struct tlist {
	char **v;
	size_t n, cap;
};

static void tlist_free(struct tlist *t)
{
	aliases_list_free(t->v, t->n);
	*t = (struct tlist){ 0 };
}

/* The token being built: bytes so far, and how many of them to keep (trailing blanks outside
 * quotes are dropped). */
struct token {
	char s[ALIASES_MAX_TARGET + 1];
	size_t len, keep;
	bool quoted;
};

static const char *token_add(struct token *t, char c, bool quoted)
{
	if (!quoted && t->len == 0 && is_blank(c))
		return NULL;			/* leading white space */
	if (is_control(c))
		return "control character in a target";
	if (t->len == ALIASES_MAX_TARGET)
		return "target too long";
	t->s[t->len++] = c;
	if (quoted || !is_blank(c))
		t->keep = t->len;
	return NULL;
}

static const char *token_emit(struct token *t, struct tlist *out)
{
	const char *why = NULL;

	if (t->keep > 0) {
		if (out->n == ALIASES_MAX_TARGETS)
			why = "too many targets";
		else {
			if (out->n == out->cap) {
				out->cap = out->cap ? 2 * out->cap : 4;
				out->v = xreallocarray(out->v, out->cap, sizeof(*out->v));
			}
			out->v[out->n++] = xstrndup(t->s, t->keep);
		}
	} else if (t->quoted) {
		why = "empty quoted target";
	}
	t->len = t->keep = 0;
	t->quoted = false;
	return why;
}

/* Split [p, end) at commas outside double quotes into out. NULL, or why it is malformed. */
static const char *split_targets(const char *p, const char *end, struct tlist *out)
{
	struct token *t = xcalloc(1, sizeof(*t));
	const char *why = NULL;
	bool inq = false;

	for (; p < end && why == NULL; p++) {
		if (inq && *p == '\\' && p + 1 < end)
			why = token_add(t, *++p, true);
		else if (*p == '"') {
			inq = !inq;
			t->quoted = true;
		} else if (!inq && *p == ',')
			why = token_emit(t, out);
		else
			why = token_add(t, *p, inq);
	}
	if (why == NULL && inq)
		why = "unterminated quote";
	if (why == NULL)
		why = token_emit(t, out);
	free(t);
	return why;
}

/* ---- entries ---------------------------------------------------------------------------- */

/* The name before ':' into name (lower-case); *rest points after the colon. */
static const char *parse_name(const char *p, const char *end, char *name, const char **rest)
{
	size_t n = 0;
	bool quoted = *p == '"', blank;

	if (quoted)
		p++;
	for (; p < end; p++) {
		if (quoted && *p == '\\' && p + 1 < end)
			p++;
		else if (quoted && *p == '"') {
			quoted = false;
			continue;
		} else if (!quoted && (*p == ':' || is_blank(*p)))
			break;
		if (is_control(*p) || *p == '\t')
			return "control character in the name";
		if (n == ALIASES_MAX_NAME)
			return "name too long";
		name[n++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
	}
	if (quoted)
		return "unterminated quote in the name";
	for (blank = false; p < end && is_blank(*p); p++)
		blank = true;
	if (p == end || *p != ':')
		return blank && p < end ? "white space in the name" : "missing ':'";
	if (n == 0)
		return "empty name";
	name[n] = '\0';
	*rest = p + 1;
	return NULL;
}

struct parser {
	struct aliases *out;
	size_t cap;
	aliases_warn_fn *warn;
	void *arg;
};

static void add_entry(struct parser *ps, const char *text, size_t len, unsigned line)
{
	char name[ALIASES_MAX_NAME + 1];
	struct tlist targets = { 0 };
	const char *rest = NULL, *why;
	struct alias *a;

	if (memchr(text, '\0', len) != NULL)
		why = "NUL byte";
	else if ((why = parse_name(text, text + len, name, &rest)) == NULL &&
		 (why = split_targets(rest, text + len, &targets)) == NULL && targets.n == 0)
		why = "no targets";
	if (why != NULL) {
		warnf(ps->warn, ps->arg, line, "%s; entry ignored", why);
		tlist_free(&targets);
		return;
	}
	if (ps->out->n == ps->cap) {
		ps->cap = ps->cap ? 2 * ps->cap : 64;
		ps->out->entry = xreallocarray(ps->out->entry, ps->cap, sizeof(*ps->out->entry));
	}
	a = &ps->out->entry[ps->out->n++];
	a->name = xstrdup(name);
	a->target = targets.v;
	a->ntarget = targets.n;
	a->line = line;
}

static int by_name_then_line(const void *x, const void *y)
{
	const struct alias *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c != 0 ? c : (a->line > b->line) - (a->line < b->line);
}

static void free_entry(struct alias *a)
{
	free(a->name);
	aliases_list_free(a->target, a->ntarget);
}

/* Sort, then keep the first of each name. */
static void sort_unique(struct parser *ps)
{
	struct aliases *t = ps->out;
	size_t w = 0;

	if (t->n == 0)
		return;
	qsort(t->entry, t->n, sizeof(*t->entry), by_name_then_line);
	for (size_t i = 1; i < t->n; i++) {
		if (strcmp(t->entry[i].name, t->entry[w].name) == 0) {
			warnf(ps->warn, ps->arg, t->entry[i].line,
			      "duplicate entry \"%s\" (first at line %u); ignored", t->entry[i].name,
			      t->entry[w].line);
			free_entry(&t->entry[i]);
		} else {
			t->entry[++w] = t->entry[i];
		}
	}
	t->n = w + 1;
}

void aliases_parse(const char *text, size_t len, struct aliases *out, aliases_warn_fn *warn,
		   void *arg)
{
	struct parser ps = { .out = out, .warn = warn, .arg = arg };
	struct buf entry;
	size_t pos = 0, n;
	const char *p;
	unsigned line = 0, first = 0;
	bool overflow = false;

	*out = (struct aliases){ 0 };
	buf_init(&entry, ALIASES_MAX_ENTRY);
	while (next_line(text, len, &pos, &p, &n)) {
		line++;
		if (skippable(p, n))
			continue;
		if (is_blank(p[0])) {
			if (first == 0)
				warnf(warn, arg, line, "continuation line without an entry; ignored");
			else if (!overflow && (buf_append_char(&entry, ' ') < 0 ||
					       buf_append(&entry, p, n) < 0))
				overflow = true;
			continue;
		}
		if (first != 0 && overflow)
			warnf(warn, arg, first, "entry longer than %u bytes; ignored",
			      ALIASES_MAX_ENTRY);
		else if (first != 0)
			add_entry(&ps, entry.data, entry.len, first);
		buf_reset(&entry);
		first = line;
		overflow = buf_append(&entry, p, n) < 0;
	}
	if (first != 0 && overflow)
		warnf(warn, arg, first, "entry longer than %u bytes; ignored", ALIASES_MAX_ENTRY);
	else if (first != 0)
		add_entry(&ps, entry.data, entry.len, first);
	buf_free(&entry);
	sort_unique(&ps);
}

static int find_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct alias *)elem)->name);
}

const struct alias *aliases_find(const struct aliases *a, const char *name)
{
	char key[ALIASES_MAX_NAME + 1];
	size_t n = strlen(name);

	if (n == 0 || n > ALIASES_MAX_NAME || a->n == 0)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		key[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
	return bsearch(key, a->entry, a->n, sizeof(*a->entry), find_cmp);
}

void aliases_free(struct aliases *a)
{
	for (size_t i = 0; i < a->n; i++)
		free_entry(&a->entry[i]);
	free(a->entry);
	*a = (struct aliases){ 0 };
}

/* ---- :include: lists -------------------------------------------------------------------- */

void aliases_parse_list(const char *text, size_t len, char ***out, size_t *n,
			aliases_warn_fn *warn, void *arg)
{
	struct tlist all = { 0 };
	size_t pos = 0, ln;
	unsigned line = 0;
	const char *p, *why;

	while (next_line(text, len, &pos, &p, &ln)) {
		struct tlist one = { 0 };

		line++;
		if (skippable(p, ln))
			continue;
		why = memchr(p, '\0', ln) ? "NUL byte" : split_targets(p, p + ln, &one);
		if (why == NULL && all.n + one.n > ALIASES_MAX_TARGETS)
			why = "too many targets";
		if (why != NULL) {
			warnf(warn, arg, line, "%s; line ignored", why);
			tlist_free(&one);
			continue;
		}
		for (size_t i = 0; i < one.n; i++) {
			if (all.n == all.cap) {
				all.cap = all.cap ? 2 * all.cap : 8;
				all.v = xreallocarray(all.v, all.cap, sizeof(*all.v));
			}
			all.v[all.n++] = one.v[i];
		}
		free(one.v);
	}
	*out = all.v;
	*n = all.n;
}

void aliases_list_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

enum alias_kind alias_target_kind(const char *target, const char **value)
{
	static const char include[] = ":include:";

	*value = target;
	if (target[0] == '|') {
		*value = target + 1;
		return ALIAS_COMMAND;
	}
	if (target[0] == '/')
		return ALIAS_FILE;
	if (strncasecmp(target, include, sizeof(include) - 1) == 0) {
		*value = target + sizeof(include) - 1;
		while (is_blank(**value))
			(*value)++;
		return ALIAS_INCLUDE;
	}
	if (target[0] == '\\') {
		*value = target + 1;
		return ALIAS_NOEXPAND;
	}
	return ALIAS_ADDRESS;
}

/* ---- files ------------------------------------------------------------------------------ */

static void close_keep_errno(int fd)
{
	int saved = errno;

	(void)close(fd);
	errno = saved;
}

int aliases_read_file(const char *path, size_t max, char **text, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	size_t cap, got = 0;
	char *data;
	ssize_t r;

	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0) {
		close_keep_errno(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size > max) {
		(void)close(fd);
		errno = S_ISREG(st->st_mode) ? EFBIG : EINVAL;
		return -1;
	}
	cap = (size_t)st->st_size + 1;
	data = xmalloc(cap + 1);
	for (;;) {
		r = read(fd, data + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == cap) {	/* the file grew while we read it */
			if (cap > max) {
				r = -1;
				errno = EFBIG;
				break;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			data = xreallocarray(data, cap + 1, 1);
		}
	}
	if (r < 0) {
		free(data);
		close_keep_errno(fd);
		return -1;
	}
	(void)close(fd);
	data[got] = '\0';
	*text = data;
	*len = got;
	return 0;
}

bool aliases_stat_trusted(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

void aliases_file_init(struct aliases_file *f, const char *path)
{
	*f = (struct aliases_file){ .path = xstrdup(path) };
}

static bool same_file(const struct aliases_file *f, const struct stat *st)
{
	return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
	       f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void forget(struct aliases_file *f)
{
	aliases_free(&f->tab);
	f->loaded = f->present = f->trusted = false;
}

int aliases_file_refresh(struct aliases_file *f, aliases_warn_fn *warn, void *arg)
{
	struct stat st;
	char *text;
	size_t len;

	if (stat(f->path, &st) < 0) {
		if (errno != ENOENT) {
			forget(f);
			return -1;
		}
		if (f->loaded && !f->present)
			return 0;
		forget(f);
		f->loaded = true;
		return 1;
	}
	if (f->loaded && f->present && same_file(f, &st))
		return 0;
	forget(f);
	if (aliases_read_file(f->path, ALIASES_MAX_FILE, &text, &len, &st) < 0)
		return -1;
	aliases_parse(text, len, &f->tab, warn, arg);
	free(text);
	f->loaded = f->present = true;
	f->trusted = aliases_stat_trusted(&st);
	f->uid = st.st_uid;
	f->mode = st.st_mode;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = st.st_size;
	f->mtime = st.st_mtim;
	f->ctime = st.st_ctim;
	return 1;
}

void aliases_file_free(struct aliases_file *f)
{
	aliases_free(&f->tab);
	free(f->path);
	*f = (struct aliases_file){ 0 };
}
