/*
 * config_priv.h: what config.c (reading the file, the public API) and config_expand.c
 * ($name expansion and typed validation) share. Not for use outside the config*.c files,
 * except that sqlconf.c reports its checks of sql.conf through conf_report.
 *
 * A configuration keeps its inputs (one slot per entry of its parameter table: the text
 * assigned and where) apart from its outputs (one conf_val per entry: expanded and parsed).
 * Expansion always builds a complete new set of outputs, so conf_set can fail without changing
 * anything; replaced sets are kept until conf_free because getters promised their strings
 * stay valid that long.
 */
#ifndef POSTERN_CONFIG_PRIV_H
#define POSTERN_CONFIG_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define CONF_FILE_MAX	(1024 * 1024)	/* bytes in a configuration file */
#define CONF_LINE_MAX	(64 * 1024)	/* bytes in one physical line */
#define CONF_VALUE_MAX	(1024 * 1024)	/* bytes in one value after expansion */
#define CONF_DEPTH_MAX	20		/* nested $name expansions in one value */
#define CONF_NAME_CHARS	"abcdefghijklmnopqrstuvwxyz0123456789_"

/* Where a slot's text came from (slot.line is otherwise a line number in the file). */
#define CONF_FROM_DEFAULT	0
#define CONF_FROM_OVERRIDE	(-1)

struct conf_slot {
	char *raw;		/* text as assigned; NULL when the default applies */
	int line;		/* file line of the last assignment, or CONF_FROM_* */
	char *computed;		/* cached computed default (declared default NULL) */
};

struct conf_val {
	char *str;		/* fully expanded text */
	long long num;		/* INT, BOOL (0/1), TIME (ms), SIZE (bytes) */
	char **items;		/* LIST: NULL-terminated, pointing into itembuf */
	size_t nitems;
	char *itembuf;
	int height;		/* levels of $name expansion below this value */
	unsigned char state;	/* private to config_expand.c */
};

struct conf_gen;

struct config {
	char *path;
	const struct conf_param *table;	/* conf_params or the table given to conf_load_table */
	size_t nparams;
	struct conf_slot *slot;	/* nparams inputs */
	struct conf_val *val;	/* nparams outputs of the last successful expansion */
	struct conf_gen *retired; /* older outputs, freed by conf_free */
};

/* Index of the parameter called name[0..len) in table, -1 if unknown. */
long conf_param_index(const struct conf_param *table, const char *name, size_t len);

/* Format one problem, make it a single printable line and hand it to err (or msg_error). */
void conf_report(conf_error_fn *err, void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* At most ~60 bytes of s for quoting in a message ("..." marks a cut). */
const char *conf_excerpt(const char *s, char *out, size_t outlen);

/* Parse v->str as p's type into v->num or v->items. A bad value is reported, prefixed by
 * where ("FILE:LINE"), and gives -1. */
int conf_value_parse(const struct conf_param *p, struct conf_val *v, const char *where,
		     conf_error_fn *err, void *arg);

/* Expand and validate every parameter from c->slot. On success the new values replace
 * c->val (the old ones are retired) and 0 is returned; otherwise every problem has been
 * reported, c is unchanged and -1 is returned. */
int conf_expand_all(struct config *c, conf_error_fn *err, void *arg);
/* Free c->val and every retired set. */
void conf_vals_free_all(struct config *c);

#endif
