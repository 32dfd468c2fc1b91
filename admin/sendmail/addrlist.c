/*
 * addrlist.c: addresses as people and programs hand them to sendmail: command-line
 * arguments ("a@b, Someone <c@d>"), -f, and with -t the To:/Cc:/Bcc: header fields, which
 * are RFC 5322 address lists with display names, comments, quoted strings and groups
 * ("undisclosed-recipients:;"). Only the addr-spec of each mailbox is kept; a bare name
 * without '@' gets @myorigin, as Postfix's sendmail does. Validation is lib/address.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "sendmail.h"
#include "address.h"
#include "util.h"

#define ITEM_MAX	4096	/* bytes of one mailbox while it is taken apart */

struct lexer {
	const char *s;
	size_t len, i;
	struct buf item;	/* outside angle brackets: display name or bare addr-spec */
	struct buf angle;	/* inside the last <...> */
	bool in_angle, had_angle;
	bool space;		/* white space since the last byte put */
	void (*fn)(void *arg, const char *addr);
	void *arg;
};

static bool atext_or_dot(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (unsigned char)c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

/* "john.smith"@example.org -> john.smith@example.org when the quotes are not needed. */
static void unquote_local(char *a)
{
	size_t n = strlen(a), close;

	if (n < 3 || a[0] != '"')
		return;
	for (close = 1; close < n && a[close] != '"'; close++)
		if (!atext_or_dot(a[close]))
			return;
	if (close >= n || close == 1 || (a[close + 1] != '@' && a[close + 1] != '\0'))
		return;
	memmove(a, a + 1, close - 1);
	memmove(a + close - 1, a + close + 1, n - close);	/* with the NUL */
}

static void emit(struct lexer *lx)
{
	struct buf *b = lx->had_angle ? &lx->angle : &lx->item;
	char *addr;

	if (lx->had_angle || b->len > 0) {
		addr = xstrdup(buf_cstr(b));
		if (addr[0] == '@' && strchr(addr, ':'))	/* <@route,@route:user@dom> */
			memmove(addr, strchr(addr, ':') + 1, strlen(strchr(addr, ':') + 1) + 1);
		unquote_local(addr);
		lx->fn(lx->arg, addr);
		free(addr);
	}
	buf_reset(&lx->item);
	buf_reset(&lx->angle);
	lx->in_angle = lx->had_angle = lx->space = false;
}

/* Add bytes to the current part; an over-long part becomes something no address
 * validation accepts, so it is reported rather than cut. White space between two words
 * stays (so "john smith@x" is refused, not read as johnsmith@x); around '@' and '.' it
 * goes (obsolete "john . smith @ x" syntax). */
static void put(struct lexer *lx, const char *p, size_t n)
{
	struct buf *b = lx->in_angle ? &lx->angle : &lx->item;
	char last = b->len ? b->data[b->len - 1] : '@';
	int rc = 0;

	if (lx->space && last != '@' && last != '.' && p[0] != '@' && p[0] != '.')
		rc = buf_append_char(b, ' ');
	lx->space = false;
	if (rc < 0 || buf_append(b, p, n) < 0) {
		buf_reset(b);
		(void)buf_append_str(b, "(address too long)");
	}
}

static void skip_comment(struct lexer *lx)
{
	int depth = 0;

	for (; lx->i < lx->len; lx->i++) {
		char c = lx->s[lx->i];

		if (c == '\\')
			lx->i++;
		else if (c == '(')
			depth++;
		else if (c == ')' && --depth == 0) {
			lx->i++;
			return;
		}
	}
}

static void copy_quoted(struct lexer *lx)
{
	size_t start = lx->i++;

	while (lx->i < lx->len && lx->s[lx->i] != '"')
		lx->i += lx->s[lx->i] == '\\' ? 2 : 1;
	if (lx->i > lx->len)
		lx->i = lx->len;
	if (lx->i < lx->len)
		lx->i++;	/* the closing quote */
	put(lx, lx->s + start, lx->i - start);
}

static void step(struct lexer *lx)
{
	char c = lx->s[lx->i];

	if (c == '(') {
		skip_comment(lx);
		lx->space = true;
	} else if (c == '"') {
		copy_quoted(lx);
	} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
		lx->space = true;
		lx->i++;
	} else if (lx->in_angle) {
		if (c == '>') {
			lx->in_angle = false;
			lx->space = false;
		} else
			put(lx, &c, 1);
		lx->i++;
	} else if (c == '<') {
		buf_reset(&lx->angle);
		lx->in_angle = lx->had_angle = true;
		lx->space = false;
		lx->i++;
	} else if (c == ',' || c == ';') {
		emit(lx);
		lx->i++;
	} else if (c == ':' && !lx->had_angle) {
		buf_reset(&lx->item);	/* "group name:" starts a group */
		lx->space = false;
		lx->i++;
	} else {
		put(lx, &c, 1);
		lx->i++;
	}
}

void addrlist_each(const char *text, size_t len, void (*fn)(void *arg, const char *addr),
		   void *arg)
{
	struct lexer lx = { .s = text, .len = len, .fn = fn, .arg = arg };

	buf_init(&lx.item, ITEM_MAX);
	buf_init(&lx.angle, ITEM_MAX);
	while (lx.i < lx.len)
		step(&lx);
	emit(&lx);
	buf_free(&lx.item);
	buf_free(&lx.angle);
}

int addr_canon(const struct sendmail *sm, const char *addr, char *out, size_t outlen)
{
	struct addr a;

	if (addr_parse(addr, sm->myorigin, &a) < 0 || strlen(a.full) > QF_MAX_ADDR)
		return -1;
	return str_copy(out, outlen, a.full);
}

int rcpts_add(struct sm_rcpts *r, const char *addr)
{
	for (size_t i = 0; i < r->n; i++)
		if (addr_equal(r->addr[i], addr))
			return 0;
	if (r->n >= SM_MAX_RCPTS)
		return -1;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->addr = xreallocarray(r->addr, r->cap, sizeof(*r->addr));
	}
	r->addr[r->n++] = xstrdup(addr);
	return 0;
}

void rcpts_free(struct sm_rcpts *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->addr[i]);
	free(r->addr);
	memset(r, 0, sizeof(*r));
}

struct collect {
	const struct sendmail *sm;
	struct sm_rcpts *r;
	char *bad;
	size_t badlen;
	bool failed;
};

static void collect_one(void *arg, const char *addr)
{
	struct collect *c = arg;
	char canon[ADDR_MAX + 1];

	if (c->failed || addr[0] == '\0')	/* "<>" is nobody */
		return;
	if (addr_canon(c->sm, addr, canon, sizeof(canon)) < 0) {
		(void)str_copy(c->bad, c->badlen, addr);
		c->failed = true;
	} else if (rcpts_add(c->r, canon) < 0) {
		(void)str_fmt(c->bad, c->badlen, "%s (more than %d recipients)", addr,
			      SM_MAX_RCPTS);
		c->failed = true;
	}
}

int rcpts_add_list(const struct sendmail *sm, struct sm_rcpts *r, const char *text,
		   size_t len, char *bad, size_t badlen)
{
	struct collect c = { .sm = sm, .r = r, .bad = bad, .badlen = badlen };

	/* The lexer hands out C strings: a NUL would silently cut an address short. */
	if (memchr(text, '\0', len) != NULL) {
		(void)str_copy(bad, badlen, "(a NUL byte in an address field)");
		return -1;
	}
	addrlist_each(text, len, collect_one, &c);
	return c.failed ? -1 : 0;
}
