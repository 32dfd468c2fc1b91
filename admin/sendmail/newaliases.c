/*
 * newaliases.c: sendmail -bi, newaliases. postern-local reads aliases_file itself whenever
 * it changes (lib/aliases.c), so there is no database to build: newaliases checks the file
 * as local will read it and says what is wrong, one line per problem with file:line, then
 * "FILE: N aliases" on standard output. Exit 0 when clean, EX_DATAERR when there were
 * problems (the rest of the file is still used by local), EX_NOINPUT when it cannot be read.
 * It runs with the set-group-ID dropped: it reads only what the caller may read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sendmail.h"
#include "address.h"
#include "aliases.h"

struct check {
	const struct sendmail *sm;
	const char *path;	/* the file being parsed, for warnings */
	unsigned problems;
	bool needs_trust;	/* a |command, /file or :include: target was seen */
};

static void parse_warning(void *arg, unsigned line, const char *msg)
{
	struct check *c = arg;

	c->problems++;
	sm_warn(c->sm, "%s:%u: %s", c->path, line, msg);
}

__attribute__((format(printf, 4, 5)))
static void problem(struct check *c, const char *path, unsigned line, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	va_end(ap);
	c->problems++;
	sm_warn(c->sm, "%s:%u: %s", path, line, text);
}

static void check_target(struct check *c, const char *path, const struct alias *a,
			 const char *target, bool nested);

/* An :include: file: readable, and its targets sound (no deeper than one level here). */
static void check_include(struct check *c, const char *path, const struct alias *a,
			  const char *inc)
{
	char *text, **list;
	size_t len, n;
	struct stat st;
	const char *saved = c->path;

	if (inc[0] != '/') {
		problem(c, path, a->line, "alias %s: :include: needs an absolute path: %s",
			a->name, inc);
		return;
	}
	if (aliases_read_file(inc, ALIASES_MAX_FILE, &text, &len, &st) < 0) {
		problem(c, path, a->line, "alias %s: cannot read :include: file %s: %s", a->name,
			inc, strerror(errno));
		return;
	}
	if (!aliases_stat_trusted(&st))
		problem(c, path, a->line, "alias %s: :include: file %s is not owned by root or "
			"is writable by group or others: local will refuse it", a->name, inc);
	c->path = inc;
	aliases_parse_list(text, len, &list, &n, parse_warning, c);
	c->path = saved;
	for (size_t i = 0; i < n; i++)
		check_target(c, inc, a, list[i], true);
	aliases_list_free(list, n);
	free(text);
}

static void check_target(struct check *c, const char *path, const struct alias *a,
			 const char *target, bool nested)
{
	const char *v;
	struct addr addr;

	switch (alias_target_kind(target, &v)) {
	case ALIAS_ADDRESS:
	case ALIAS_NOEXPAND:
		if (addr_parse(v, "localhost", &addr) < 0)
			problem(c, path, a->line, "alias %s: bad address: %s", a->name, v);
		break;
	case ALIAS_COMMAND:
		c->needs_trust = true;
		if (*v == '\0')
			problem(c, path, a->line, "alias %s: empty command", a->name);
		break;
	case ALIAS_FILE:
		c->needs_trust = true;
		break;
	case ALIAS_INCLUDE:
		c->needs_trust = true;
		if (!nested)
			check_include(c, path, a, v);
		break;
	}
}

int newaliases(struct sendmail *sm)
{
	const char *path = conf_str(sm->cfg, "aliases_file");
	struct check c = { .sm = sm, .path = path };
	struct aliases tab;
	struct stat st;
	char *text;
	size_t len;

	if (aliases_read_file(path, ALIASES_MAX_FILE, &text, &len, &st) < 0) {
		sm_warn(sm, "cannot read the aliases file %s: %s", path,
			errno == EFBIG ? "too large" : strerror(errno));
		return EX_NOINPUT;
	}
	aliases_parse(text, len, &tab, parse_warning, &c);
	for (size_t i = 0; i < tab.n; i++)
		for (size_t k = 0; k < tab.entry[i].ntarget; k++)
			check_target(&c, path, &tab.entry[i], tab.entry[i].target[k], false);
	if (c.needs_trust && !aliases_stat_trusted(&st)) {
		c.problems++;
		sm_warn(sm, "%s is not owned by root or is writable by group or others: local will "
			"refuse its |command, /file and :include: targets", path);
	}
	printf("%s: %zu alias%s", path, tab.n, tab.n == 1 ? "" : "es");
	if (c.problems)
		printf(", %u problem%s", c.problems, c.problems == 1 ? "" : "s");
	printf("\n");
	aliases_free(&tab);
	free(text);
	return c.problems ? EX_DATAERR : EX_OK;
}
