/*
 * sqldb.c: the database connection of authd's workers and `postern admin` (see sqldb.h),
 * on MariaDB Connector/C's blocking API: each worker thread owns one struct sqldb, so a slow
 * query stalls only its own thread.
 *
 * Query templates are compiled into SQL with '?' markers and run as prepared statements, kept
 * in a small per-connection cache keyed by the template text. A dead server must cost
 * callers nothing: after a failed connect, calls fail at once until a back-off time passes;
 * a connection that broke under a query is replaced and the query retried once, because the
 * usual cause is a restarted server that is already back.
 */
#include "sqldb.h"

#include <ctype.h>
#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "sqlconf.h"
#include "util.h"

#define STMT_CACHE	16	/* prepared statements kept per connection */
#define BACKOFF_MIN_MS	250
#define BACKOFF_MAX_MS	5000
#define VALUE_BUF	(SQL_MAX_VALUE + 1)

struct cached_stmt {
	char *tmpl;		/* the key; NULL for a free slot */
	MYSQL_STMT *stmt;
	char order[SQL_MAX_PARAMS];
	unsigned nparams;
	uint64_t used;		/* db->tick at the last use, for LRU eviction */
};

struct sqldb {
	char **hosts;		/* the `hosts` items, tried in order */
	size_t nhosts;
	char *user, *password, *dbname;
	unsigned connect_timeout, query_timeout;	/* seconds, as the library takes them */
	MYSQL *conn;		/* NULL when not connected */
	struct cached_stmt cache[STMT_CACHE];
	uint64_t tick;
	int64_t retry_at;	/* mono_ms before which no connect is tried; 0: not down */
	int64_t backoff_ms;
	char *values;		/* SQL_MAX_COLS result buffers of VALUE_BUF bytes */
	char error[512];
};

/* What one attempt at a query came to. */
enum outcome {
	R_OK,
	R_FAIL,		/* the server or the result said no; the connection is fine */
	R_LOST,		/* the connection broke: reconnect */
	R_BAD,		/* the template or an argument is unusable */
};

static void __attribute__((format(printf, 2, 3)))
set_error(struct sqldb *db, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(db->error, sizeof(db->error), fmt, ap);
	va_end(ap);
}

/* ---- templates --------------------------------------------------------------------------- */

static bool is_placeholder(char ch)
{
	return ch != '\0' && strchr("sundp", ch) != NULL;
}

static bool is_quote(char ch)
{
	return ch == '\'' || ch == '"' || ch == '`';
}

struct compiler {
	char *sql;
	size_t sqllen, used;
	char *order;
	size_t maxmarkers;
	int markers;
	char *err;
	size_t errlen;
};

static int emit(struct compiler *k, const char *s, size_t n)
{
	if (k->used + n >= k->sqllen) {
		(void)str_copy(k->err, k->errlen, "template too long for the SQL buffer");
		return -1;
	}
	memcpy(k->sql + k->used, s, n);
	k->used += n;
	return 0;
}

static int marker(struct compiler *k, char which)
{
	if ((size_t)k->markers >= k->maxmarkers) {
		(void)str_fmt(k->err, k->errlen, "more than %zu placeholders", k->maxmarkers);
		return -1;
	}
	k->order[k->markers++] = which;
	return emit(k, "?", 1);
}

/* The '%' at p: a placeholder (outside a quoted string), "%%", or an error. Returns the
 * number of template bytes used, or -1. */
static int percent(struct compiler *k, const char *p, char quote)
{
	if (p[1] == '%')
		return emit(k, "%", 1) < 0 ? -1 : 2;
	if (is_placeholder(p[1]) && quote == 0)
		return marker(k, p[1]) < 0 ? -1 : 2;
	if (is_placeholder(p[1]))
		(void)str_fmt(k->err, k->errlen, "placeholder %%%c inside a quoted string (a "
			      "parameter is a whole value: '%%%c' alone, or CONCAT)", p[1], p[1]);
	else if (p[1] == '\0')
		(void)str_copy(k->err, k->errlen, "'%' at the end (write %% for a literal '%')");
	else if (isprint((unsigned char)p[1]))
		(void)str_fmt(k->err, k->errlen, "unknown placeholder '%%%c' (expected %%s %%u "
			      "%%n %%d %%p, or %%%% for '%%')", p[1]);
	else
		(void)str_fmt(k->err, k->errlen, "unknown placeholder '%%\\x%02x'",
			      (unsigned char)p[1]);
	return -1;
}

/* One step at p (inside a string quoted by *quote, or outside if 0). Returns the number
 * of template bytes used, or -1. */
static int step(struct compiler *k, const char *p, char *quote)
{
	if (*quote == 0 && (p[0] == '\'' || p[0] == '"') && p[1] == '%' && is_placeholder(p[2]) &&
	    p[3] == p[0])
		return marker(k, p[2]) < 0 ? -1 : 4;	/* '%s': the quotes go */
	if (p[0] == '%')
		return percent(k, p, *quote);
	if (*quote != 0 && ((p[0] == '\\' && *quote != '`' && (p[1] == '\\' || p[1] == *quote)) ||
			    (p[0] == *quote && p[1] == *quote)))
		return emit(k, p, 2) < 0 ? -1 : 2;	/* an escaped quote or backslash */
	if (*quote != 0 && p[0] == *quote)
		*quote = 0;
	else if (*quote == 0 && is_quote(p[0]))
		*quote = p[0];
	return emit(k, p, 1) < 0 ? -1 : 1;
}

int sql_template_compile(const char *tmpl, char *sql, size_t sqllen, char *order,
			 size_t maxorder, char *err, size_t errlen)
{
	struct compiler k = { sql, sqllen, 0, order, maxorder, 0, err, errlen };
	char quote = 0;
	int n;

	if (k.maxmarkers > SQL_MAX_PARAMS)
		k.maxmarkers = SQL_MAX_PARAMS;
	if (sqllen == 0) {
		(void)str_copy(err, errlen, "no room for the SQL");
		return -1;
	}
	while (*tmpl) {
		n = step(&k, tmpl, &quote);
		if (n < 0) {
			sql[0] = '\0';
			return -1;
		}
		tmpl += n;
	}
	sql[k.used] = '\0';
	if ((size_t)k.markers < maxorder)
		order[k.markers] = '\0';
	return k.markers;
}

/* ---- set-up ------------------------------------------------------------------------------ */

void sqldb_global_init(void)
{
	if (mysql_library_init(0, NULL, NULL) != 0)
		msg_fatal("cannot initialize the MariaDB client library");
}

void sqldb_global_end(void)
{
	mysql_library_end();
}

void sqldb_thread_init(void)
{
	if (mysql_thread_init() != 0)
		msg_fatal("cannot initialize the MariaDB client library for a thread");
}

void sqldb_thread_end(void)
{
	mysql_thread_end();
}

/* Milliseconds as whole seconds, rounded up, at least 1 (the library's unit). */
static unsigned seconds(long long ms)
{
	long long s = (ms + 999) / 1000;

	return s < 1 ? 1 : s > 86400 ? 86400 : (unsigned)s;
}

struct sqldb *sqldb_new(const struct config *cfg, bool admin)
{
	struct sqldb *db = xcalloc(1, sizeof(*db));
	const char *const *items = conf_list(cfg, "hosts", &db->nhosts);
	const char *admin_user = conf_str(cfg, "admin_user");
	size_t i;

	db->hosts = xcalloc(db->nhosts + 1, sizeof(*db->hosts));
	for (i = 0; i < db->nhosts; i++)
		db->hosts[i] = xstrdup(items[i]);
	if (admin && admin_user[0] != '\0') {
		db->user = xstrdup(admin_user);
		db->password = xstrdup(conf_str(cfg, "admin_password"));
	} else {
		db->user = xstrdup(conf_str(cfg, "user"));
		db->password = xstrdup(conf_str(cfg, "password"));
	}
	db->dbname = xstrdup(conf_str(cfg, "dbname"));
	db->connect_timeout = seconds(conf_time_ms(cfg, "connect_timeout"));
	db->query_timeout = seconds(conf_time_ms(cfg, "query_timeout"));
	db->values = xmalloc((size_t)SQL_MAX_COLS * VALUE_BUF);
	return db;
}

/* ---- connections ------------------------------------------------------------------------- */

static void cache_evict(struct cached_stmt *cs)
{
	if (cs->stmt)
		(void)mysql_stmt_close(cs->stmt);
	free(cs->tmpl);
	memset(cs, 0, sizeof(*cs));
}

/* Close the connection and forget its statements. mysql_close detaches the statements
 * first, so closing them afterwards frees memory without talking to a dead server. */
static void drop_connection(struct sqldb *db)
{
	size_t i;

	if (db->conn)
		mysql_close(db->conn);
	db->conn = NULL;
	for (i = 0; i < STMT_CACHE; i++)
		cache_evict(&db->cache[i]);
}

static int set_options(struct sqldb *db, MYSQL *m, bool unix_socket)
{
	unsigned proto = unix_socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
	unsigned no_local_infile = 0;
	my_bool report_truncation = 1;

	return mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &db->connect_timeout) != 0 ||
	       mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &db->query_timeout) != 0 ||
	       mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &db->query_timeout) != 0 ||
	       mysql_options(m, MYSQL_OPT_PROTOCOL, &proto) != 0 ||
	       mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0 ||
	       mysql_options(m, MYSQL_REPORT_DATA_TRUNCATION, &report_truncation) != 0 ||
	       mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &no_local_infile) != 0 ? -1 : 0;
}

/* A connection to one hosts item, or NULL with the reason in why. */
static MYSQL *connect_host(struct sqldb *db, const char *item, char *why, size_t whylen)
{
	struct sql_host h;
	bool unix_socket;
	MYSQL *m;

	if (sqlconf_parse_host(item, &h, why, whylen) < 0)
		return NULL;
	unix_socket = h.socket[0] != '\0';
	m = mysql_init(NULL);
	if (m == NULL) {
		(void)str_copy(why, whylen, "out of memory");
		return NULL;
	}
	if (set_options(db, m, unix_socket) < 0) {
		(void)str_fmt(why, whylen, "cannot set connection options: %s", mysql_error(m));
	} else if (mysql_real_connect(m, unix_socket ? NULL : h.host, db->user, db->password,
				      db->dbname, h.port, unix_socket ? h.socket : NULL, 0)) {
		return m;
	} else {
		(void)str_copy(why, whylen, mysql_error(m));
	}
	mysql_close(m);
	return NULL;
}

/* Try every host in order; the error lists why each one failed. */
static int connect_any(struct sqldb *db)
{
	char why[300];
	size_t i, len;

	db->error[0] = '\0';
	for (i = 0; i < db->nhosts; i++) {
		db->conn = connect_host(db, db->hosts[i], why, sizeof(why));
		if (db->conn)
			return 0;
		len = strlen(db->error);
		(void)snprintf(db->error + len, sizeof(db->error) - len, "%s%.100s: %s",
			       len ? "; " : "", db->hosts[i], why);
	}
	if (db->nhosts == 0)
		set_error(db, "no database hosts configured");
	return -1;
}

static void start_backoff(struct sqldb *db)
{
	if (db->retry_at == 0)
		msg_warn("database unavailable: %s", db->error);
	db->backoff_ms = db->backoff_ms ? db->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (db->backoff_ms > BACKOFF_MAX_MS)
		db->backoff_ms = BACKOFF_MAX_MS;
	db->retry_at = mono_ms() + db->backoff_ms;
}

static enum sql_status ensure_connected(struct sqldb *db)
{
	if (db->conn)
		return SQL_OK;
	if (db->retry_at != 0 && mono_ms() < db->retry_at)
		return SQL_TEMPFAIL;	/* db->error still says why */
	if (connect_any(db) < 0) {
		start_backoff(db);
		return SQL_TEMPFAIL;
	}
	if (db->retry_at != 0)
		msg_info("database connection restored");
	db->retry_at = 0;
	db->backoff_ms = 0;
	return SQL_OK;
}

bool sqldb_down(const struct sqldb *db)
{
	return db->retry_at != 0;
}

const char *sqldb_error(const struct sqldb *db)
{
	return db->error;
}

void sqldb_free(struct sqldb *db)
{
	size_t i;

	if (db == NULL)
		return;
	drop_connection(db);
	for (i = 0; i < db->nhosts; i++)
		free(db->hosts[i]);
	free(db->hosts);
	explicit_bzero(db->password, strlen(db->password));
	free(db->password);
	free(db->user);
	free(db->dbname);
	free(db->values);
	free(db);
}

/* ---- statements -------------------------------------------------------------------------- */

static bool connection_broke(unsigned err)
{
	switch (err) {
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case CR_COMMANDS_OUT_OF_SYNC:
	case CR_ERR_NET_READ:
	case CR_ERR_NET_WRITE:
	case ER_SERVER_SHUTDOWN:
	case ER_CONNECTION_KILLED:
	case ER_NET_READ_INTERRUPTED:
		return true;
	default:
		return false;
	}
}

/* Record a failed statement call and classify it. */
static enum outcome stmt_failed(struct sqldb *db, MYSQL_STMT *stmt, const char *what)
{
	unsigned err = mysql_stmt_errno(stmt);

	set_error(db, "%s: %s (%u)", what, mysql_stmt_error(stmt), err);
	return connection_broke(err) ? R_LOST : R_FAIL;
}

static struct cached_stmt *cache_find(struct sqldb *db, const char *tmpl)
{
	size_t i;

	for (i = 0; i < STMT_CACHE; i++)
		if (db->cache[i].tmpl && strcmp(db->cache[i].tmpl, tmpl) == 0)
			return &db->cache[i];
	return NULL;
}

/* A free slot, or the least recently used one emptied. */
static struct cached_stmt *cache_slot(struct sqldb *db)
{
	struct cached_stmt *lru = &db->cache[0];
	size_t i;

	for (i = 0; i < STMT_CACHE; i++) {
		if (db->cache[i].tmpl == NULL)
			return &db->cache[i];
		if (db->cache[i].used < lru->used)
			lru = &db->cache[i];
	}
	cache_evict(lru);
	return lru;
}

/* Compile and prepare tmpl into a new cache entry. */
static enum outcome prepare(struct sqldb *db, const char *tmpl, struct cached_stmt **out)
{
	size_t len = strlen(tmpl) + 1;
	char *sql = xmalloc(len), order[SQL_MAX_PARAMS], why[200];
	int n = sql_template_compile(tmpl, sql, len, order, sizeof(order), why, sizeof(why));
	enum outcome r = R_OK;
	struct cached_stmt *cs;
	MYSQL_STMT *stmt = NULL;

	if (n < 0) {
		set_error(db, "bad query template: %s", why);
		r = R_BAD;
	} else if ((stmt = mysql_stmt_init(db->conn)) == NULL) {
		set_error(db, "cannot create a statement: %s", mysql_error(db->conn));
		r = connection_broke(mysql_errno(db->conn)) ? R_LOST : R_FAIL;
	} else if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0) {
		r = stmt_failed(db, stmt, "prepare");
	} else if (mysql_stmt_param_count(stmt) != (unsigned long)n) {
		set_error(db, "bad query template: the server sees %lu parameters, the template "
			  "has %d placeholders", mysql_stmt_param_count(stmt), n);
		r = R_BAD;
	}
	free(sql);
	if (r != R_OK) {
		if (stmt)
			(void)mysql_stmt_close(stmt);
		return r;
	}
	cs = cache_slot(db);
	cs->tmpl = xstrdup(tmpl);
	cs->stmt = stmt;
	memcpy(cs->order, order, sizeof(order));
	cs->nparams = (unsigned)n;
	*out = cs;
	return R_OK;
}

static const char *arg_value(const struct sql_args *args, char which)
{
	const char *v = NULL;

	if (args == NULL)
		return "";
	switch (which) {
	case 's': v = args->s; break;
	case 'u': v = args->u; break;
	case 'n': v = args->n; break;
	case 'd': v = args->d; break;
	case 'p': v = args->p; break;
	default: break;
	}
	return v ? v : "";
}

static enum outcome execute(struct sqldb *db, struct cached_stmt *cs,
			    const struct sql_args *args)
{
	MYSQL_BIND bind[SQL_MAX_PARAMS];
	unsigned long len[SQL_MAX_PARAMS];
	const char *v;
	unsigned i;

	memset(bind, 0, sizeof(bind));
	for (i = 0; i < cs->nparams; i++) {
		v = arg_value(args, cs->order[i]);
		len[i] = strlen(v);
		if (len[i] > SQL_MAX_VALUE) {
			set_error(db, "value for %%%c longer than %d bytes", cs->order[i],
				  SQL_MAX_VALUE);
			return R_BAD;
		}
		bind[i].buffer_type = MYSQL_TYPE_STRING;
		bind[i].buffer = (void *)(uintptr_t)v;	/* only read by the library */
		bind[i].buffer_length = len[i];
		bind[i].length = &len[i];
	}
	if (cs->nparams > 0 && mysql_stmt_bind_param(cs->stmt, bind) != 0)
		return stmt_failed(db, cs->stmt, "bind");
	if (mysql_stmt_execute(cs->stmt) != 0)
		return stmt_failed(db, cs->stmt, "execute");
	return R_OK;
}

/* ---- results ----------------------------------------------------------------------------- */

struct fetch {
	MYSQL_BIND bind[SQL_MAX_COLS];
	unsigned long len[SQL_MAX_COLS];
	my_bool isnull[SQL_MAX_COLS], error[SQL_MAX_COLS];
};

static void bind_results(struct sqldb *db, struct fetch *f, size_t ncols)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < ncols; i++) {
		f->bind[i].buffer_type = MYSQL_TYPE_STRING;
		f->bind[i].buffer = db->values + i * VALUE_BUF;
		f->bind[i].buffer_length = VALUE_BUF;
		f->bind[i].length = &f->len[i];
		f->bind[i].is_null = &f->isnull[i];
		f->bind[i].error = &f->error[i];
	}
}

/* Check the fetched row, then copy it into rows as row number rows->nrows. */
static enum outcome store_row(struct sqldb *db, const struct fetch *f, struct sql_rows *rows)
{
	size_t i, at = rows->nrows * rows->ncols;
	const char *v;

	for (i = 0; i < rows->ncols; i++) {
		if (f->isnull[i])
			continue;
		if (f->error[i] || f->len[i] > SQL_MAX_VALUE) {
			set_error(db, "result too large: a value is longer than %d bytes",
				  SQL_MAX_VALUE);
			return R_FAIL;
		}
		if (memchr(db->values + i * VALUE_BUF, '\0', f->len[i])) {
			set_error(db, "result value contains a NUL byte");
			return R_FAIL;
		}
	}
	for (i = 0; i < rows->ncols; i++) {
		v = db->values + i * VALUE_BUF;
		rows->isnull[at + i] = f->isnull[i] != 0;
		rows->cell[at + i] = f->isnull[i] ? xstrdup("") : xstrndup(v, f->len[i]);
	}
	rows->nrows++;
	return R_OK;
}

static void set_labels(MYSQL_RES *meta, struct sql_rows *rows)
{
	MYSQL_FIELD *fields = mysql_fetch_fields(meta);
	size_t i;
	char *p;

	for (i = 0; i < rows->ncols; i++) {
		rows->colname[i] = xstrdup(fields[i].name ? fields[i].name : "");
		for (p = rows->colname[i]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
}

/* Read the stored result of an executed statement into rows (empty on failure). */
static enum outcome read_rows(struct sqldb *db, MYSQL_STMT *stmt, MYSQL_RES *meta,
			      struct sql_rows *rows)
{
	unsigned long long total;
	struct fetch f;
	int rc;

	/* Read the whole result first, whatever its size, so the connection is ready for the
	 * next command even when this result is refused. */
	if (mysql_stmt_store_result(stmt) != 0)
		return stmt_failed(db, stmt, "store result");
	if (mysql_num_fields(meta) > SQL_MAX_COLS) {
		set_error(db, "result too large: %u columns (at most %d)", mysql_num_fields(meta),
			  SQL_MAX_COLS);
		return R_FAIL;
	}
	total = mysql_stmt_num_rows(stmt);
	if (total > SQL_MAX_ROWS) {
		set_error(db, "result too large: %llu rows (at most %d)", total, SQL_MAX_ROWS);
		return R_FAIL;
	}
	rows->ncols = mysql_num_fields(meta);
	set_labels(meta, rows);
	rows->cell = xcalloc(total * rows->ncols + 1, sizeof(*rows->cell));
	rows->isnull = xcalloc(total * rows->ncols + 1, sizeof(*rows->isnull));
	bind_results(db, &f, rows->ncols);
	if (rows->ncols > 0 && mysql_stmt_bind_result(stmt, f.bind) != 0)
		return stmt_failed(db, stmt, "bind result");
	while ((rc = mysql_stmt_fetch(stmt)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
		if (rows->nrows >= total) {
			set_error(db, "more rows than the server announced");
			return R_FAIL;
		}
		if (store_row(db, &f, rows) != R_OK)
			return R_FAIL;
	}
	if (rc != MYSQL_NO_DATA)
		return stmt_failed(db, stmt, "fetch");
	return R_OK;
}

static enum outcome fetch_rows(struct sqldb *db, MYSQL_STMT *stmt, struct sql_rows *rows)
{
	MYSQL_RES *meta = mysql_stmt_result_metadata(stmt);
	enum outcome r;

	if (meta == NULL)	/* not a query with a result: no rows */
		return mysql_stmt_errno(stmt) ? stmt_failed(db, stmt, "metadata") : R_OK;
	r = read_rows(db, stmt, meta, rows);
	mysql_free_result(meta);
	if (r != R_OK)
		sql_rows_free(rows);
	return r;
}

/* The affected rows of an executed statement (whose result, if any, is discarded). */
static enum outcome finish_exec(struct sqldb *db, MYSQL_STMT *stmt,
				unsigned long long *affected)
{
	if (mysql_stmt_field_count(stmt) > 0 && mysql_stmt_store_result(stmt) != 0)
		return stmt_failed(db, stmt, "store result");
	if (affected)
		*affected = mysql_stmt_affected_rows(stmt);
	return R_OK;
}

/* One attempt on the current connection. */
static enum outcome attempt(struct sqldb *db, const char *tmpl, const struct sql_args *args,
			    struct sql_rows *rows, unsigned long long *affected)
{
	struct cached_stmt *cs = cache_find(db, tmpl);
	enum outcome r = R_OK;

	if (cs == NULL)
		r = prepare(db, tmpl, &cs);
	if (r != R_OK)
		return r;
	cs->used = ++db->tick;
	r = execute(db, cs, args);
	if (r == R_OK)
		r = rows ? fetch_rows(db, cs->stmt, rows) : finish_exec(db, cs->stmt, affected);
	(void)mysql_stmt_free_result(cs->stmt);
	if (r == R_FAIL)
		cache_evict(cs);	/* its state after an error is not worth trusting */
	return r;
}

/* Run a template: connect if needed, and retry once on a new connection if the old one
 * broke quickly (a restarted server). A query that hit the timeout is not repeated. */
static enum sql_status run(struct sqldb *db, const char *tmpl, const struct sql_args *args,
			   struct sql_rows *rows, unsigned long long *affected)
{
	enum sql_status st;
	enum outcome r;
	int64_t start;
	int tries;

	for (tries = 0; tries < 2; tries++) {
		st = ensure_connected(db);
		if (st != SQL_OK)
			return st;
		start = mono_ms();
		r = attempt(db, tmpl, args, rows, affected);
		if (r != R_LOST)
			return r == R_OK ? SQL_OK : r == R_BAD ? SQL_BADQUERY : SQL_TEMPFAIL;
		drop_connection(db);
		if (mono_ms() - start >= (int64_t)db->query_timeout * 1000)
			break;
	}
	start_backoff(db);
	return SQL_TEMPFAIL;
}

enum sql_status sqldb_select(struct sqldb *db, const char *tmpl, const struct sql_args *args,
			     struct sql_rows *out)
{
	memset(out, 0, sizeof(*out));
	return run(db, tmpl, args, out, NULL);
}

enum sql_status sqldb_exec(struct sqldb *db, const char *tmpl, const struct sql_args *args,
			   unsigned long long *affected)
{
	if (affected)
		*affected = 0;
	return run(db, tmpl, args, NULL, affected);
}

const char *sql_rows_get(const struct sql_rows *rows, size_t r, const char *col)
{
	size_t i;

	if (r >= rows->nrows)
		return NULL;
	for (i = 0; i < rows->ncols; i++)
		if (strcasecmp(rows->colname[i], col) == 0)
			return rows->cell[r * rows->ncols + i];
	return NULL;
}

void sql_rows_free(struct sql_rows *rows)
{
	size_t i;

	for (i = 0; i < rows->ncols && i < SQL_MAX_COLS; i++)
		free(rows->colname[i]);
	for (i = 0; rows->cell && i < rows->nrows * rows->ncols; i++)
		free(rows->cell[i]);
	free(rows->cell);
	free(rows->isnull);
	memset(rows, 0, sizeof(*rows));
}
