/*
 * config_expand.c: $name expansion of postern.conf values. Every parameter is expanded and
 * validated at load time, so all mistakes surface at once, and each result is cached: a
 * value referenced many times is expanded once, which also keeps "a = $b$b, b = $c$c, ..."
 * from taking exponential time.
 *
 * A parameter being expanded is marked busy, so a reference cycle is caught the moment it
 * closes and reported once, at the parameter where it was found. Chains without a cycle are
 * limited by height (levels of expansion below a value) rather than by recursion depth, so
 * the verdict does not depend on the order in which parameters happen to be expanded. A
 * value whose reference failed fails silently: its cause has been reported already.
 */
#include "config_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "params.h"
#include "util.h"

enum { V_TODO, V_BUSY, V_DONE, V_FAILED };

struct expander {
	struct config *c;
	struct conf_val *val;	/* the set being built */
	size_t *stack;		/* busy parameters, outermost first */
	size_t depth;
	conf_error_fn *err;
	void *arg;
};

/* A set of values replaced by conf_set, kept for pointers callers still hold. */
struct conf_gen {
	struct conf_val *val;
	struct conf_gen *older;
};

static int resolve(struct expander *x, size_t i);

/* "FILE:LINE" (heap) for a message about parameter i. */
static char *where(const struct config *c, size_t i)
{
	const struct conf_slot *s = &c->slot[i];
	char *loc = NULL;
	int n;

	if (s->raw && s->line > 0)
		n = asprintf(&loc, "%s:%d", c->path, s->line);
	else if (s->raw)
		n = asprintf(&loc, "command line");
	else
		n = asprintf(&loc, "%s (default value)", c->path);
	if (n < 0)
		msg_fatal("out of memory formatting a configuration error");
	return loc;
}

/* Report a problem with the value of parameter i, prefixed by where it was set. */
static void __attribute__((format(printf, 3, 4)))
complain(struct expander *x, size_t i, const char *fmt, ...)
{
	char *loc = where(x->c, i), *text = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg_fatal("out of memory formatting a configuration error");
	conf_report(x->err, x->arg, "%s: %s", loc, text);
	free(text);
	free(loc);
}

static int append(struct expander *x, size_t i, struct buf *out, const char *s, size_t n)
{
	if (buf_append(out, s, n) == 0)
		return 0;
	complain(x, i, "value of '%s' is longer than %d bytes after expansion",
		 x->c->table[i].name, CONF_VALUE_MAX);
	return -1;
}

/* Report the cycle that closes on parameter j (busy somewhere on the stack). */
static void report_cycle(struct expander *x, size_t j)
{
	struct buf chain;
	size_t k = 0;

	while (k < x->depth && x->stack[k] != j)
		k++;
	buf_init(&chain, 16384);
	for (; k < x->depth; k++)
		if (buf_printf(&chain, "%s -> ", x->c->table[x->stack[k]].name) < 0)
			break;
	(void)buf_append_str(&chain, x->c->table[j].name);
	complain(x, j, "recursive expansion of '%s' (%s)", x->c->table[j].name,
		 buf_cstr(&chain));
	buf_free(&chain);
}

/* One reference at *s (just after its '$'): `name` or `{name}`. Advances *s past it. */
static int expand_ref(struct expander *x, size_t i, const char **s, struct buf *out,
		      int *height)
{
	const struct conf_param *table = x->c->table;
	const char *name = **s == '{' ? *s + 1 : *s;
	size_t len = strspn(name, CONF_NAME_CHARS);
	char shown[96], *copy;
	long j;

	if (name != *s && (len == 0 || name[len] != '}')) {
		complain(x, i, "bad '${' in value of '%s' (expected ${name})", table[i].name);
		*s = name;
		return -1;
	}
	if (len == 0) {
		complain(x, i, "'$' without a parameter name in value of '%s' "
			 "(write $$ for a literal '$')", table[i].name);
		return -1;
	}
	*s = name + len + (name != *s ? 1 : 0);
	j = conf_param_index(table, name, len);
	if (j < 0) {
		copy = xstrndup(name, len);
		complain(x, i, "value of '%s' refers to unknown parameter '%s'",
			 table[i].name, conf_excerpt(copy, shown, sizeof(shown)));
		free(copy);
		return -1;
	}
	if (resolve(x, (size_t)j) < 0)
		return -1;
	if (x->val[j].height + 1 > *height)
		*height = x->val[j].height + 1;
	return append(x, i, out, x->val[j].str, strlen(x->val[j].str));
}

/* Expand text s (the value of parameter i) into out. Keeps going after a bad reference so
 * that every bad reference in the value is reported. */
static int expand_text(struct expander *x, size_t i, const char *s, struct buf *out,
		       int *height)
{
	int rc = 0;
	size_t n;

	while (*s) {
		n = strcspn(s, "$");
		if (append(x, i, out, s, n) < 0)
			return -1;
		s += n;
		if (*s == '\0')
			break;
		s++;
		if (*s == '$') {
			if (append(x, i, out, "$", 1) < 0)
				return -1;
			s++;
		} else if (expand_ref(x, i, &s, out, height) < 0) {
			rc = -1;
		}
	}
	return rc;
}

/* The built-in rule for mydomain when only myhostname is configured: drop the first label. */
static int derive_domain(struct expander *x, size_t i, size_t host, struct buf *out,
			 int *height)
{
	const char *dot, *domain;

	if (resolve(x, host) < 0)
		return -1;
	*height = x->val[host].height + 1;
	dot = strchr(x->val[host].str, '.');
	domain = dot && dot[1] ? dot + 1 : "localdomain";
	return append(x, i, out, domain, strlen(domain));
}

/* A default computed from the host (declared default NULL), looked up once per config. */
static int computed_default(struct expander *x, size_t i, struct buf *out)
{
	struct conf_slot *slot = &x->c->slot[i];
	char computed[1025];

	if (slot->computed == NULL) {
		if (params_computed_default(conf_params[i].name, computed, sizeof(computed)) < 0)
			msg_panic("conf: parameter '%s' has no default", conf_params[i].name);
		slot->computed = xstrdup(computed);
	}
	return append(x, i, out, slot->computed, strlen(slot->computed));
}

/* The text of parameter i, expanded into out. */
static int produce(struct expander *x, size_t i, struct buf *out, int *height)
{
	const struct conf_slot *slot = &x->c->slot[i];
	const struct conf_param *table = x->c->table;
	long host;

	if (slot->raw)
		return expand_text(x, i, slot->raw, out, height);
	if (table[i].def)
		return expand_text(x, i, table[i].def, out, height);
	if (table != conf_params)
		return 0;	/* other tables have no host-derived defaults: empty */
	host = conf_param_index(table, "myhostname", strlen("myhostname"));
	if (host >= 0 && x->c->slot[host].raw && strcmp(table[i].name, "mydomain") == 0)
		return derive_domain(x, i, (size_t)host, out, height);
	return computed_default(x, i, out);
}

/* Validate the expanded value of parameter i (kept out of resolve's recursive frame). */
static int check(struct expander *x, size_t i, int height)
{
	char *loc;
	int rc;

	if (height > CONF_DEPTH_MAX) {
		complain(x, i, "recursive expansion of '%s' (nested more than %d levels deep)",
			 x->c->table[i].name, CONF_DEPTH_MAX);
		return -1;
	}
	loc = where(x->c, i);
	rc = conf_value_parse(&x->c->table[i], &x->val[i], loc, x->err, x->arg);
	free(loc);
	return rc;
}

/* Expand and validate parameter i once; later calls return the cached verdict. */
static int resolve(struct expander *x, size_t i)
{
	struct conf_val *v = &x->val[i];
	struct buf out;
	int height = 0, rc;

	if (v->state == V_DONE || v->state == V_FAILED)
		return v->state == V_DONE ? 0 : -1;
	if (v->state == V_BUSY) {
		report_cycle(x, i);
		return -1;
	}
	v->state = V_BUSY;
	x->stack[x->depth++] = i;
	buf_init(&out, CONF_VALUE_MAX);
	rc = produce(x, i, &out, &height);
	x->depth--;
	if (rc == 0) {
		v->str = out.data ? out.data : xstrdup("");	/* takes over the buffer */
		out.data = NULL;
		v->height = height;
		rc = check(x, i, height);
	}
	buf_free(&out);
	v->state = rc == 0 ? V_DONE : V_FAILED;
	return rc;
}

static void vals_free(struct conf_val *val, size_t n)
{
	size_t i;

	if (val == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(val[i].str);
		free(val[i].items);
		free(val[i].itembuf);
	}
	free(val);
}

void conf_vals_free_all(struct config *c)
{
	struct conf_gen *g;

	vals_free(c->val, c->nparams);
	c->val = NULL;
	while ((g = c->retired) != NULL) {
		c->retired = g->older;
		vals_free(g->val, c->nparams);
		free(g);
	}
}

/* Parameters assigned in the file come first, in line order, then overrides, then defaults:
 * a cycle always includes an assigned parameter, so it is reported where someone wrote it. */
static long long rank(const struct conf_slot *slot)
{
	if (slot->raw == NULL)
		return 2LL << 32;
	return slot->line > 0 ? slot->line : 1LL << 32;
}

static int by_line(const void *a, const void *b, void *arg)
{
	const struct conf_slot *slot = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	long long ri = rank(&slot[i]), rj = rank(&slot[j]);

	if (ri != rj)
		return ri < rj ? -1 : 1;
	return i < j ? -1 : i > j;
}

int conf_expand_all(struct config *c, conf_error_fn *err, void *arg)
{
	struct expander x = { c, xcalloc(c->nparams, sizeof(struct conf_val)),
			      xcalloc(c->nparams, sizeof(size_t)), 0, err, arg };
	size_t *order = xcalloc(c->nparams, sizeof(size_t)), i;
	struct conf_gen *g;
	int rc = 0;

	for (i = 0; i < c->nparams; i++)
		order[i] = i;
	qsort_r(order, c->nparams, sizeof(size_t), by_line, c->slot);
	for (i = 0; i < c->nparams; i++)
		if (resolve(&x, order[i]) < 0)
			rc = -1;
	free(order);
	free(x.stack);
	if (rc < 0) {
		vals_free(x.val, c->nparams);
		return -1;
	}
	if (c->val) {
		g = xmalloc(sizeof(*g));
		g->val = c->val;
		g->older = c->retired;
		c->retired = g;
	}
	c->val = x.val;
	return 0;
}
