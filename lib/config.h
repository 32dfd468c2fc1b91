/*
 * config.h: the postern.conf parser. The format is Postfix's main.cf: `name = value`, lines
 * starting with `#` are comments, a line starting with white space continues the previous
 * one, `$name` and `${name}` expand to another parameter's value (`$$` is a literal `$`).
 * Every parameter any Postern program reads is declared once in params.c with its type,
 * default and range, so all programs accept the same file; an unknown name or a value of the
 * wrong type or range is an error naming file:line. Values are validated at load time, so
 * the typed getters below cannot fail at run time.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum conf_type {
	CONF_STR,	/* any string */
	CONF_INT,	/* decimal integer in [min,max] */
	CONF_BOOL,	/* yes/no, true/false, on/off, 1/0 */
	CONF_TIME,	/* integer with unit ms, s (default), m, h, d, w; min/max in ms */
	CONF_SIZE,	/* integer with unit (none), k, m, g (powers of 1024); min/max in bytes */
	CONF_LIST,	/* items separated by commas and/or white space */
};

struct conf_param {
	const char *name;
	enum conf_type type;
	const char *def;	/* default, before expansion; may use $name */
	long long min, max;	/* for INT, TIME (ms) and SIZE (bytes) */
	const char *doc;	/* one line for `postern check -v` and the man page */
};

/* The table of every known parameter, ended by an entry with name NULL (params.c). */
extern const struct conf_param conf_params[];

struct config;

/* Called once per problem with a complete message such as
 * "/etc/postern/postern.conf:12: unknown parameter 'smptd_banner'". */
typedef void conf_error_fn(const char *msg, void *arg);

/* Load a file. Returns NULL after reporting every problem through err (which may be NULL,
 * then problems go to msg_error). Reads at most 1 MiB. */
struct config *conf_load(const char *path, conf_error_fn *err, void *arg);
/* The same against another parameter table (ended by a NULL name), for files with their own
 * set of names such as sql.conf. The configuration remembers the table: its getters,
 * conf_set and conf_is_set accept that table's names. A NULL default means "" there (only
 * conf_params has defaults computed from the host). */
struct config *conf_load_table(const char *path, const struct conf_param *table,
			       conf_error_fn *err, void *arg);
/* conf_load_table on a descriptor the caller opened and still owns (read from its current
 * offset); path only names the file in messages. For callers that check the file first. */
struct config *conf_load_fd(int fd, const char *path, const struct conf_param *table,
			    conf_error_fn *err, void *arg);
/* A configuration holding only the defaults. */
struct config *conf_defaults(void);
/* Override one parameter as if it were the last line of the file (command-line -o name=value).
 * Returns -1 and reports through err on unknown name or bad value. */
int conf_set(struct config *c, const char *name, const char *value, conf_error_fn *err,
	     void *arg);
void conf_free(struct config *c);

/* The file name given to conf_load ("(defaults)" otherwise). */
const char *conf_path(const struct config *c);
/* True if the parameter was set in the file or by conf_set (not a default). */
bool conf_is_set(const struct config *c, const char *name);
/* Where the parameter got its value, for messages about it: the line in the file, 0 for the
 * default, -1 for conf_set. */
int conf_line(const struct config *c, const char *name);

/* Typed getters. The name must be declared in the configuration's table (conf_params unless
 * loaded by conf_load_table) with the matching type; anything else is a programming error
 * and panics. Strings are returned fully expanded and stay valid until conf_free. */
const char *conf_str(const struct config *c, const char *name);
long long conf_int(const struct config *c, const char *name);
bool conf_bool(const struct config *c, const char *name);
long long conf_time_ms(const struct config *c, const char *name);
long long conf_size(const struct config *c, const char *name);
/* Items of a list parameter; *n gets the count. The array and strings stay valid until
 * conf_free. */
const char *const *conf_list(const struct config *c, const char *name, size_t *n);

/* Look up a declaration in conf_params (NULL if unknown). */
const struct conf_param *conf_param_find(const char *name);

#endif
