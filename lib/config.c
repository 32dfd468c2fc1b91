/*
 * config.c: reading postern.conf (Postfix main.cf syntax, see config.h) and the typed
 * getters. This file splits the text into logical lines and records each assignment;
 * config_expand.c then expands and validates every parameter, and config_value.c parses
 * the typed values.
 *
 * The file is bounded (1 MiB, 64 KiB per physical line, no NUL bytes), and a bad line does
 * not stop the parse: every problem is reported before conf_load gives up.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config_priv.h"
#include "log.h"
#include "util.h"

struct parser {
	struct config *c;
	conf_error_fn *err;
	void *arg;
	struct buf logical;	/* the logical line being collected */
	int start;		/* its first physical line; 0 when none is open */
	bool broken;		/* it already had an error: drop it and its continuations */
	int errors;
};

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Length of s[0..len) without its trailing white space. */
static size_t trim_end(const char *s, size_t len)
{
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	return len;
}

void conf_report(conf_error_fn *err, void *arg, const char *fmt, ...)
{
	char *msg = NULL, *p;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg_fatal("out of memory formatting a configuration error");
	/* One line, whatever bytes the file held: a value may contain CR or escapes. */
	for (p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (err)
		err(msg, arg);
	else
		msg_error("%s", msg);
	free(msg);
}

const char *conf_excerpt(const char *s, char *out, size_t outlen)
{
	const int keep = 60;

	if (strlen(s) <= (size_t)keep)
		(void)str_copy(out, outlen, s);
	else
		(void)str_fmt(out, outlen, "%.*s...", keep, s);
	return out;
}

long conf_param_index(const struct conf_param *table, const char *name, size_t len)
{
	long i;

	for (i = 0; table[i].name; i++)
		if (strncmp(table[i].name, name, len) == 0 && table[i].name[len] == '\0')
			return i;
	return -1;
}

const struct conf_param *conf_param_find(const char *name)
{
	long i = name ? conf_param_index(conf_params, name, strlen(name)) : -1;

	return i < 0 ? NULL : &conf_params[i];
}

/* A problem on line `line` of the file being parsed. */
static void __attribute__((format(printf, 3, 4)))
parse_error(struct parser *ps, int line, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		msg_fatal("out of memory formatting a configuration error");
	conf_report(ps->err, ps->arg, "%s:%d: %s", ps->c->path, line, text);
	free(text);
	ps->errors++;
}

/* Record the complete logical line "name = value" that started on line ps->start. */
static void assign(struct parser *ps)
{
	const char *text = buf_cstr(&ps->logical), *eq = strchr(text, '='), *value;
	struct conf_slot *slot;
	char shown[96], *name;
	size_t len;
	long i;

	if (eq == NULL) {
		parse_error(ps, ps->start, "missing '=' (expected name = value)");
		return;
	}
	len = trim_end(text, (size_t)(eq - text));
	name = xstrndup(text, len);
	conf_excerpt(name, shown, sizeof(shown));
	if (len == 0)
		parse_error(ps, ps->start, "missing parameter name before '='");
	else if (strspn(name, CONF_NAME_CHARS) != len)
		parse_error(ps, ps->start, "bad parameter name '%s' (expected a-z, 0-9 and _)", shown);
	else if ((i = conf_param_index(ps->c->table, name, len)) < 0)
		parse_error(ps, ps->start, "unknown parameter '%s'", shown);
	else {
		value = eq + 1;
		while (is_blank(*value))
			value++;
		slot = &ps->c->slot[i];
		free(slot->raw);
		slot->raw = xstrdup(value);
		slot->line = ps->start;
	}
	free(name);
}

/* The logical line is complete: record it unless it already failed. */
static void finish(struct parser *ps)
{
	if (ps->start && !ps->broken)
		assign(ps);
	buf_reset(&ps->logical);
	ps->start = 0;
	ps->broken = false;
}

static void collect(struct parser *ps, int line, const char *s, size_t n)
{
	if (buf_append(&ps->logical, s, n) == 0)
		return;
	parse_error(ps, line, "logical line longer than %d bytes", CONF_FILE_MAX);
	ps->broken = true;
}

/* A physical line that cannot be used. Later continuation lines belong to it and are
 * dropped with it, rather than glued onto whatever came before. */
static void bad_line(struct parser *ps, int line, const char *s, const char *why)
{
	if (!(is_blank(s[0]) && ps->start)) {
		finish(ps);
		ps->start = line;
	}
	ps->broken = true;
	parse_error(ps, line, "%s", why);
}

static void physical_line(struct parser *ps, int line, const char *s, size_t n)
{
	size_t lead = 0;
	char why[64];

	if (n > CONF_LINE_MAX) {
		(void)str_fmt(why, sizeof(why), "line longer than %d bytes", CONF_LINE_MAX);
		bad_line(ps, line, s, why);
		return;
	}
	if (memchr(s, '\0', n)) {
		bad_line(ps, line, s, "NUL byte in line");
		return;
	}
	while (lead < n && is_blank(s[lead]))
		lead++;
	n = trim_end(s, n);
	if (lead >= n || s[lead] == '#')
		return;		/* blank or comment: does not end a logical line */
	if (lead == 0) {
		finish(ps);
		ps->start = line;
		collect(ps, line, s, n);
	} else if (ps->start == 0) {
		ps->start = line;
		ps->broken = true;
		parse_error(ps, line, "continuation line without a parameter line before it");
	} else if (!ps->broken) {
		collect(ps, line, " ", 1);
		collect(ps, line, s + lead, n - lead);
	}
}

static void parse_text(struct parser *ps, const char *data, size_t len)
{
	const char *s, *nl;
	size_t off = 0, n;
	int line = 0;

	while (off < len) {
		s = data + off;
		nl = memchr(s, '\n', len - off);
		n = nl ? (size_t)(nl - s) : len - off;
		off += n + (nl ? 1 : 0);
		physical_line(ps, ++line, s, n);
	}
	finish(ps);
}

static struct config *config_new(const char *path, const struct conf_param *table)
{
	struct config *c = xcalloc(1, sizeof(*c));

	c->path = xstrdup(path);
	c->table = table;
	while (table[c->nparams].name)
		c->nparams++;
	c->slot = xcalloc(c->nparams, sizeof(*c->slot));
	return c;
}

/* Parse and expand the text of a file that has been read into data (which is freed). */
static struct config *load_text(const char *path, const struct conf_param *table, char *data,
				size_t len, conf_error_fn *err, void *arg)
{
	struct parser ps = { .err = err, .arg = arg };

	ps.c = config_new(path, table);
	buf_init(&ps.logical, CONF_FILE_MAX);
	parse_text(&ps, data, len);
	buf_free(&ps.logical);
	free(data);
	/* Expand even after syntax errors, so bad values are reported in the same run. */
	if (conf_expand_all(ps.c, err, arg) < 0 || ps.errors > 0) {
		conf_free(ps.c);
		return NULL;
	}
	return ps.c;
}

static void report_read_error(const char *path, int saved, conf_error_fn *err, void *arg)
{
	if (saved == EFBIG)
		conf_report(err, arg, "%s: file is larger than %d bytes", path, CONF_FILE_MAX);
	else
		conf_report(err, arg, "%s: cannot open: %s", path, strerror(saved));
}

struct config *conf_load_table(const char *path, const struct conf_param *table,
			       conf_error_fn *err, void *arg)
{
	size_t len;
	char *data;

	if (read_file(path, CONF_FILE_MAX, &data, &len) < 0) {
		report_read_error(path, errno, err, arg);
		return NULL;
	}
	return load_text(path, table, data, len, err, arg);
}

struct config *conf_load(const char *path, conf_error_fn *err, void *arg)
{
	return conf_load_table(path, conf_params, err, arg);
}

struct config *conf_load_fd(int fd, const char *path, const struct conf_param *table,
			    conf_error_fn *err, void *arg)
{
	char *data = xmalloc(CONF_FILE_MAX + 1);
	ssize_t n = read_full(fd, data, CONF_FILE_MAX + 1);
	int saved = n < 0 ? errno : EFBIG;

	if (n < 0 || n > CONF_FILE_MAX) {
		free(data);
		if (saved == EFBIG)
			report_read_error(path, saved, err, arg);
		else
			conf_report(err, arg, "%s: cannot read: %s", path, strerror(saved));
		return NULL;
	}
	data[n] = '\0';
	return load_text(path, table, data, (size_t)n, err, arg);
}

struct config *conf_defaults(void)
{
	struct config *c = config_new("(defaults)", conf_params);

	if (conf_expand_all(c, NULL, NULL) < 0)
		msg_panic("conf: the built-in defaults in params.c are invalid");
	return c;
}

int conf_set(struct config *c, const char *name, const char *value, conf_error_fn *err,
	     void *arg)
{
	struct conf_slot *slot, saved;
	char shown[96];
	size_t len;
	long i;

	if (name == NULL || value == NULL)
		msg_panic("conf_set: null name or value");
	i = conf_param_index(c->table, name, strlen(name));
	if (i < 0) {
		conf_report(err, arg, "command line: unknown parameter '%s'",
			    conf_excerpt(name, shown, sizeof(shown)));
		return -1;
	}
	if (strchr(value, '\n')) {
		conf_report(err, arg, "command line: bad value for '%s': it contains a line break",
			    c->table[i].name);
		return -1;
	}
	/* As if it were a line of the file: surrounding white space does not count. */
	while (is_blank(*value))
		value++;
	len = trim_end(value, strlen(value));
	slot = &c->slot[i];
	saved = *slot;
	slot->raw = xstrndup(value, len);
	slot->line = CONF_FROM_OVERRIDE;
	if (conf_expand_all(c, err, arg) < 0) {
		free(slot->raw);
		slot->raw = saved.raw;
		slot->line = saved.line;
		return -1;
	}
	free(saved.raw);
	return 0;
}

void conf_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nparams; i++) {
		free(c->slot[i].raw);
		free(c->slot[i].computed);
	}
	conf_vals_free_all(c);
	free(c->slot);
	free(c->path);
	free(c);
}

const char *conf_path(const struct config *c)
{
	return c->path;
}

static long index_or_panic(const struct config *c, const char *name)
{
	long i = name ? conf_param_index(c->table, name, strlen(name)) : -1;

	if (i < 0)
		msg_panic("conf: unknown parameter '%s'", name ? name : "(null)");
	return i;
}

bool conf_is_set(const struct config *c, const char *name)
{
	return c->slot[index_or_panic(c, name)].raw != NULL;
}

int conf_line(const struct config *c, const char *name)
{
	const struct conf_slot *slot = &c->slot[index_or_panic(c, name)];

	return slot->raw ? slot->line : CONF_FROM_DEFAULT;
}

/* The value of a parameter that must be declared with the given type. */
static const struct conf_val *typed(const struct config *c, const char *name,
				    enum conf_type type)
{
	static const char *const type_names[] = {
		[CONF_STR] = "string", [CONF_INT] = "integer", [CONF_BOOL] = "boolean",
		[CONF_TIME] = "time", [CONF_SIZE] = "size", [CONF_LIST] = "list",
	};
	long i = index_or_panic(c, name);

	if (c->table[i].type != type)
		msg_panic("conf: parameter '%s' is not a %s", name, type_names[type]);
	return &c->val[i];
}

const char *conf_str(const struct config *c, const char *name)
{
	return typed(c, name, CONF_STR)->str;
}

long long conf_int(const struct config *c, const char *name)
{
	return typed(c, name, CONF_INT)->num;
}

bool conf_bool(const struct config *c, const char *name)
{
	return typed(c, name, CONF_BOOL)->num != 0;
}

long long conf_time_ms(const struct config *c, const char *name)
{
	return typed(c, name, CONF_TIME)->num;
}

long long conf_size(const struct config *c, const char *name)
{
	return typed(c, name, CONF_SIZE)->num;
}

const char *const *conf_list(const struct config *c, const char *name, size_t *n)
{
	const struct conf_val *v = typed(c, name, CONF_LIST);

	if (n)
		*n = v->nitems;
	return (const char *const *)v->items;
}
