/*
 * sqldb.h: one MySQL/MariaDB connection (MariaDB Connector/C), used by authd's worker
 * threads and by `postern admin`. It owns fail-over across the configured hosts, reconnects
 * with back-off after the server goes away, turns query templates into prepared statements
 * (placeholders become bound parameters: never string pasting), caches the prepared
 * statements, and bounds everything it reads (rows, columns, value sizes).
 *
 * Not thread-safe: one struct sqldb per thread. A program calls sqldb_global_init once before
 * it starts threads, and every thread that uses a struct sqldb calls sqldb_thread_init
 * first and sqldb_thread_end before it exits.
 *
 * After a failed connection attempt no further attempt is made for a back-off period
 * (250 ms, doubling up to 5 s, reset by a success): meanwhile every call returns
 * SQL_TEMPFAIL at once, without I/O. A query that fails because the connection broke (the
 * server restarted, or went away) is retried once on a fresh connection.
 */
#ifndef POSTERN_SQLDB_H
#define POSTERN_SQLDB_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define SQL_MAX_ROWS	1000	/* rows read per query; more is an error (TEMPFAIL) */
#define SQL_MAX_COLS	16
#define SQL_MAX_VALUE	4096	/* bytes per value; longer values are an error */
#define SQL_MAX_PARAMS	16	/* placeholders per template */

enum sql_status {
	SQL_OK = 0,		/* the query ran; rows may be 0 */
	SQL_TEMPFAIL = -1,	/* no connection, timeout, server error: try again later */
	SQL_BADQUERY = -2,	/* the template is invalid (bad placeholder, too many, ...) or an
				 * argument is longer than SQL_MAX_VALUE */
};

/* Values for the placeholders of a template. NULL members bind as empty strings. Values are
 * sent as bound parameters, so they may contain any byte except NUL (a C string cannot carry
 * one: callers must reject such input themselves). */
struct sql_args {
	const char *s;	/* %s whole address */
	const char *u;	/* %u login name */
	const char *n;	/* %n local part */
	const char *d;	/* %d domain */
	const char *p;	/* %p new password hash */
};

/* A result; cell[r * ncols + c] is column c of row r. A value containing a NUL byte is an
 * error (SQL_TEMPFAIL), so every cell is a whole value. */
struct sql_rows {
	size_t nrows, ncols;
	char *colname[SQL_MAX_COLS];	/* lower-cased column labels (AS names) */
	char **cell;			/* nrows * ncols NUL-terminated strings; SQL NULL = "" */
	bool *isnull;			/* nrows * ncols */
};

/* Once per process, before any thread starts (mysql_library_init); exits on failure. */
void sqldb_global_init(void);
/* At the end of the process, after every thread has ended (mysql_library_end). */
void sqldb_global_end(void);
/* In every thread that uses the database, before its first use; exits on failure. */
void sqldb_thread_init(void);
/* In every such thread before it exits. */
void sqldb_thread_end(void);

struct sqldb;

/* cfg is a loaded sql.conf. admin selects admin_user/admin_password when they are set.
 * Does not connect yet. */
struct sqldb *sqldb_new(const struct config *cfg, bool admin);
void sqldb_free(struct sqldb *db);

/* Run a SELECT template; rows are stored in out (free with sql_rows_free; out is always
 * initialized, empty unless SQL_OK). More than SQL_MAX_ROWS rows, SQL_MAX_COLS columns, or a
 * value longer than SQL_MAX_VALUE bytes: SQL_TEMPFAIL with the error "result too large...". */
enum sql_status sqldb_select(struct sqldb *db, const char *tmpl, const struct sql_args *args,
			     struct sql_rows *out);
/* Run an INSERT/UPDATE/DELETE template; *affected gets the affected row count (may be NULL). */
enum sql_status sqldb_exec(struct sqldb *db, const char *tmpl, const struct sql_args *args,
			   unsigned long long *affected);
/* A value by column label in row r (NULL if no such column or row; labels compare without
 * regard to case). */
const char *sql_rows_get(const struct sql_rows *rows, size_t r, const char *col);
void sql_rows_free(struct sql_rows *rows);

/* The last error as text (for logs; never contains the password). */
const char *sqldb_error(const struct sqldb *db);
/* Is the database believed to be down: the last attempt to connect failed and none has
 * succeeded since (calls inside the back-off period fail at once)? Cheap, no I/O. */
bool sqldb_down(const struct sqldb *db);

/* Convert a template into SQL with '?' markers and the placeholder order; exposed for the
 * unit tests and sql.conf checks. Returns the number of markers, or -1 with a reason in err.
 * order[i] is one of 's','u','n','d','p' (NUL-terminated if there is room). %s %u %n %d %p
 * become markers, and so does a placeholder with quotes around it ('%s' or "%s"); %% is a
 * '%'. Errors: any other %x, a placeholder inside a longer quoted string ('%u@%d': no
 * parameter can be part of a literal; use CONCAT(%u, '@', %d)), more than SQL_MAX_PARAMS or
 * maxorder markers, or an sql buffer shorter than strlen(tmpl) + 1. */
int sql_template_compile(const char *tmpl, char *sql, size_t sqllen, char *order,
			 size_t maxorder, char *err, size_t errlen);

#endif
