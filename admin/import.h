/*
 * import.h: what the files of `postern import` share (import.c: command, output and checks;
 * import_read.c: bounded reading of source files; import_postfix.c: main.cf, master.cf;
 * import_dovecot.c: dovecot.conf and its includes; import_sql.c: mysql_table files,
 * dovecot-sql.conf.ext and the translation of their queries).
 *
 * The importer reads an existing Postfix + Dovecot + MySQL set-up and collects two lists of
 * Postern settings (postern.conf and sql.conf), each value with the file and line it came
 * from, plus the settings it found but could not carry over, each with a reason.
 */
#ifndef POSTERN_ADMIN_IMPORT_H
#define POSTERN_ADMIN_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define IMP_LINE_MAX	8192		/* bytes per physical line of a source file */
#define IMP_LOGICAL_MAX	65536		/* bytes per logical (joined) line */
#define IMP_FILE_MAX	(1024 * 1024)	/* bytes per source file */
#define IMP_FILES_MAX	64		/* source files read in all */
#define IMP_DEPTH_MAX	8		/* !include nesting of Dovecot files */
#define IMP_ITEMS_MAX	4096		/* settings per list (read or written) */
#define IMP_EXPAND_MAX	20		/* nesting of Postfix $name references */

/* A source line: which file (interned by imp_intern, lives as long as the import) and
 * which line (1-based; 0 when the item is not tied to one line). */
struct imp_where {
	const char *file;
	int line;
};

/* One setting read from a source file, or one to write. */
struct imp_item {
	char *key;
	char *value;
	struct imp_where at;
	char *from;	/* for output: the source setting's name, for the comment */
	bool used;	/* for input: looked at by a translation */
};

struct imp_list {
	struct imp_item *v;
	size_t n, cap;
};

/* A setting that was found but not carried over. */
struct imp_lost {
	struct imp_where at;
	char *key, *value, *reason;
};

/* What Dovecot's and Postfix's database files say about the connection. */
struct imp_db {
	char *hosts;		/* sql.conf syntax, comma-separated */
	char *user, *password, *dbname;
	struct imp_where at;	/* where the connection was set */
	bool set;
};

struct import {
	const char *postfix_dir, *dovecot_dir;	/* as given on the command line, or NULL */
	struct imp_list conf, sql;		/* postern.conf and sql.conf to write */
	struct imp_lost *lost;
	size_t nlost, caplost;
	struct imp_list notes;			/* key = "", value = text: comments */
	char **files;				/* interned file names */
	size_t nfiles;
	int files_read;
	bool failed;				/* a source file was malformed: exit 1 */
	struct imp_db db;
	/* Dovecot knowledge that the Postfix side does not have, and vice versa */
	char *home_tmpl, *mail_tmpl;		/* virtual_home / virtual_mail */
	struct imp_where home_at, mail_at;
	char *vmail_user;			/* vmail_owner */
	struct imp_where vmail_at;
};

/* ---- import.c ---------------------------------------------------------------------------- */

/* Add (or replace) a setting of postern.conf / sql.conf, with where it came from and the
 * source setting's name for the comment. */
void imp_conf(struct import *im, const char *name, const char *value, struct imp_where at,
	      const char *from);
void imp_sql(struct import *im, const char *name, const char *value, struct imp_where at,
	     const char *from);
/* Is name already set in postern.conf's list? */
bool imp_conf_has(const struct import *im, const char *name);
/* Record a setting that is not carried over. */
void imp_lose(struct import *im, struct imp_where at, const char *key, const char *value,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A comment for the end of postern.conf (a difference worth knowing, not a loss). */
void imp_note(struct import *im, struct imp_where at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A malformed source: "postern import: FILE:LINE: message" on stderr; marks the import as
 * failed. Returns -1. */
int imp_error(struct import *im, struct imp_where at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A file name that lives as long as the import. */
const char *imp_intern(struct import *im, const char *name);

/* ---- lists ------------------------------------------------------------------------------- */

/* Append a copy of key/value (or replace the value of an existing key when replace). */
struct imp_item *imp_list_set(struct imp_list *l, const char *key, const char *value,
			      struct imp_where at, bool replace);
struct imp_item *imp_list_get(const struct imp_list *l, const char *key);
void imp_list_free(struct imp_list *l);

/* ---- import_read.c ----------------------------------------------------------------------- */

/* A source file split into physical lines (CR LF or LF; no NUL bytes), bounded by
 * IMP_FILE_MAX and IMP_LINE_MAX and counted against IMP_FILES_MAX. */
struct imp_text {
	char *data;
	char **line;		/* line[i] is line i + 1, NUL-terminated */
	size_t nlines;
	const char *name;	/* interned */
};

/* Read path; missing_ok makes a missing file return 1 (nothing read, no message). 0 on
 * success; -1 after imp_error. */
int imp_text_read(struct import *im, const char *path, bool missing_ok, struct imp_text *t);
void imp_text_free(struct imp_text *t);

/* The file a source setting names, as the importer can read it: a path below /etc/postfix
 * or /etc/dovecot is looked for in the directory given on the command line first (the
 * configuration may have been copied elsewhere). Writes into out. */
void imp_source_path(const struct import *im, const char *path, char *out, size_t outlen);

/* Strip white space at both ends in place; returns s. */
char *imp_trim(char *s);

/* Split a `name = value` file into settings (a later one replaces an earlier one of the
 * same name). Lines whose first non-blank character is '#' and blank lines are skipped; a
 * logical line continues on lines that start with white space (Postfix) or after a line
 * that ends with a backslash (Dovecot). A line without '=' or with a bad name is an error
 * naming file:line. */
enum imp_join { IMP_JOIN_INDENT, IMP_JOIN_BACKSLASH };
int imp_parse_kv(struct import *im, const struct imp_text *t, enum imp_join join,
		 struct imp_list *out);

/* ---- import_postfix.c / import_dovecot.c ------------------------------------------------- */

int imp_postfix(struct import *im, const char *dir);
int imp_dovecot(struct import *im, const char *dir);

/* ---- import_sql.c ------------------------------------------------------------------------ */

/* Which Postfix lookup a query serves: it decides what %s and %u mean. */
enum imp_lookup { IMP_DOMAIN, IMP_MAILBOX, IMP_ALIAS, IMP_SENDER };

/* Read a mysql_table(5) file and translate its query for the lookup into a Postern
 * template (malloc'd in *query). The connection goes to im->db (or a loss if it
 * differs from one already set). 0 with *query set; 1 if the map cannot be carried over
 * (recorded); -1 on a malformed file. */
int imp_mysql_map(struct import *im, const char *path, struct imp_where at,
		  enum imp_lookup kind, char **query);
/* Read dovecot-sql.conf.ext: connection, default_pass_scheme, password_query; the
 * user_query is returned in *user_query (malloc'd, translated, or NULL) with where. */
int imp_dovecot_sql(struct import *im, const char *path, struct imp_where at,
		    char **user_query, struct imp_where *uq_at);
/* Translate a Dovecot query (%u %n %d %{user} ...) into a Postern template: malloc'd, or
 * NULL with the reason in why. */
char *imp_dovecot_query(const char *q, char *why, size_t whylen);
/* Analyse a Dovecot user_query's constant columns (home, mail, uid, gid). */
void imp_user_query_fields(struct import *im, const char *q, struct imp_where at);
/* Apply Dovecot's userdb static/user_query fields: "uid=vmail gid=vmail home=/x/%d/%n". */
void imp_userdb_fields(struct import *im, const char *args, struct imp_where at);

#endif
