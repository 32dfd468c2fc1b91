/*
 * import_sql.c: the database side of `postern import` (import.h): Postfix mysql_table(5)
 * files, Dovecot's dovecot-sql.conf.ext, and the translation of their queries into sql.conf
 * templates.
 *
 * Postfix and Dovecot paste placeholders into the SQL text ('%s'); Postern binds them as
 * prepared-statement parameters (lib/sqldb.h), so a placeholder must stand alone: the
 * quotes around it are dropped, and a query that uses one inside a longer literal, or a
 * placeholder Postern does not have (Postfix's %1..%9, Dovecot's %L modifiers, %w, %r...),
 * is not carried over. The meanings differ too: in Postfix %u is the local part (Postern's
 * %n), and in a domain lookup %s is the domain (Postern's %d).
 */
#include <ctype.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "sqldb.h"
#include "util.h"

/* ---- placeholders ------------------------------------------------------------------------ */

/* Drop trailing white space and semicolons (a prepared statement is one statement). */
static void strip_end(struct buf *b)
{
	while (b->len > 0 && (b->data[b->len - 1] == ';' || isspace((unsigned char)
								     b->data[b->len - 1])))
		b->data[--b->len] = '\0';
}

/* Postern's name for Postfix's %c in a lookup of kind; 0 if it has none. */
static char postfix_var(char c, enum imp_lookup kind)
{
	c = (char)tolower((unsigned char)c);	/* %S %U %D act as %s %u %d in a query */
	if (c == 's')
		return kind == IMP_DOMAIN ? 'd' : 's';
	if (c == 'u')
		return kind == IMP_DOMAIN ? 0 : 'n';
	if (c == 'd')
		return 'd';
	return 0;
}

/* Postern's name for Dovecot's %c or %{name}; 0 if it has none. */
static char dovecot_var(const char *p, size_t *used)
{
	static const struct { const char *name; char var; } longs[] = {
		{ "{user}", 'u' }, { "{username}", 'n' }, { "{domain}", 'd' },
	};

	*used = 1;
	if (*p == 'u' || *p == 'n' || *p == 'd')
		return *p;
	for (size_t i = 0; i < ARRAY_LEN(longs); i++) {
		size_t len = strlen(longs[i].name);

		if (strncmp(p, longs[i].name, len) == 0) {
			*used = len;
			return longs[i].var;
		}
	}
	return 0;
}

/* Translate query q; dovecot selects the variable syntax. NULL with why on failure. */
static char *translate(const char *q, bool dovecot, enum imp_lookup kind, char *why,
		       size_t whylen)
{
	struct buf b;
	char var, order[SQL_MAX_PARAMS], *sql;
	size_t used;

	buf_init(&b, IMP_LOGICAL_MAX);
	for (const char *p = q; *p; ) {
		char quote = (*p == '\'' || *p == '"') ? *p : 0;
		const char *pct = quote ? p + 1 : p;

		if (*pct != '%') {
			(void)buf_append_char(&b, *p++);
			continue;
		}
		if (pct[1] == '%') {
			if (quote)
				(void)buf_append_char(&b, *p);
			(void)buf_append_str(&b, "%%");
			p = pct + 2;
			continue;
		}
		if (pct[1] == '\0') {
			buf_free(&b);
			(void)str_copy(why, whylen, "a '%' at the end of the query");
			return NULL;
		}
		var = dovecot ? dovecot_var(pct + 1, &used) : postfix_var(pct[1], kind);
		if (!dovecot)
			used = 1;
		if (var == 0) {
			buf_free(&b);
			(void)str_fmt(why, whylen, "placeholder %%%.*s has no Postern equivalent "
				      "(Postern has %%s %%u %%n %%d, bound as parameters)",
				      pct[1] == '{' ? (int)strcspn(pct + 1, "}") + 1 : 1, pct + 1);
			return NULL;
		}
		if (quote && pct[1 + used] == quote) {	/* '%s' -> %s */
			(void)buf_printf(&b, "%%%c", var);
			p = pct + 2 + used;
		} else {
			if (quote)
				(void)buf_append_char(&b, quote);
			(void)buf_printf(&b, "%%%c", var);
			p = pct + 1 + used;
		}
	}
	strip_end(&b);
	sql = xmalloc(b.len + 1);
	if (b.len == 0 || sql_template_compile(buf_cstr(&b), sql, b.len + 1, order, sizeof(order),
					       why, whylen) < 0) {
		if (b.len == 0)
			(void)str_copy(why, whylen, "the query is empty");
		free(sql);
		buf_free(&b);
		return NULL;
	}
	free(sql);
	sql = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return sql;
}

char *imp_dovecot_query(const char *q, char *why, size_t whylen)
{
	return translate(q, true, IMP_MAILBOX, why, whylen);
}

/* ---- the connection ---------------------------------------------------------------------- */

static void append_host(struct buf *b, const char *item)
{
	if (b->len)
		(void)buf_append_str(b, ", ");
	(void)buf_append_str(b, item);
}

static bool same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The first connection found becomes sql.conf's; a different one is reported. */
static void use_db(struct import *im, const char *hosts, const char *user, const char *password,
		   const char *dbname, struct imp_where at, const char *what)
{
	struct imp_db *db = &im->db;

	if (db->set) {
		if (!same(db->hosts, hosts) || !same(db->user, user) || !same(db->dbname, dbname))
			imp_lose(im, at, what, hosts, "this connection (user %s, dbname %s) differs "
				 "from the one taken from %s:%d; Postern has one database "
				 "connection", user, dbname, db->at.file, db->at.line);
		else if (!same(db->password, password))
			imp_lose(im, at, "password", "", "differs from the password at %s:%d; "
				 "Postern has one database connection", db->at.file, db->at.line);
		return;
	}
	db->set = true;
	db->at = at;
	db->hosts = xstrdup(hosts);
	db->user = xstrdup(user);
	db->password = xstrdup(password);
	db->dbname = xstrdup(dbname);
	imp_sql(im, "hosts", hosts, at, what);
	imp_sql(im, "user", user, at, what);
	imp_sql(im, "password", password, at, what);
	imp_sql(im, "dbname", dbname, at, what);
}

/* ---- Postfix mysql_table(5) -------------------------------------------------------------- */

/* hosts = unix:/path inet:host:port host[:port] ... into sql.conf's list. */
static void postfix_hosts(const char *in, struct buf *out)
{
	char *copy = xstrdup(in), *save = NULL;

	for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save))
		append_host(out, strncmp(t, "inet:", 5) == 0 ? t + 5 : t);
	free(copy);
}

/* Settings of a mysql_table file that only tune the client or the cache. */
static bool harmless_mysql_key(const char *k)
{
	static const char *const keys[] = {
		"expansion_limit", "idle_interval", "retry_interval", "sleep", "require_result",
	};

	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (strcmp(k, keys[i]) == 0)
			return true;
	return false;
}

/* The query of the file: `query`, or the legacy select_field/table/where_field form. */
static char *legacy_query(const struct imp_list *kv)
{
	struct imp_item *sel = imp_list_get(kv, "select_field");
	struct imp_item *tab = imp_list_get(kv, "table");
	struct imp_item *whr = imp_list_get(kv, "where_field");
	struct imp_item *add = imp_list_get(kv, "additional_conditions");
	char *q = NULL;

	if (!sel || !tab || !whr)
		return NULL;
	if (asprintf(&q, "SELECT %s FROM %s WHERE %s = '%%s' %s", sel->value, tab->value,
		     whr->value, add ? add->value : "") < 0)
		return NULL;
	sel->used = tab->used = whr->used = true;
	if (add)
		add->used = true;
	return q;
}

static void mysql_connection(struct import *im, struct imp_list *kv, const char *path)
{
	static const char *const keys[] = { "hosts", "user", "password", "dbname" };
	struct imp_item *it[4];
	struct buf hosts;
	struct imp_where at = { imp_intern(im, path), 0 };

	for (size_t i = 0; i < 4; i++) {
		it[i] = imp_list_get(kv, keys[i]);
		if (it[i]) {
			it[i]->used = true;
			if (at.line == 0 || it[i]->at.line < at.line)
				at = it[i]->at;
		}
	}
	buf_init(&hosts, IMP_LOGICAL_MAX);
	postfix_hosts(it[0] ? it[0]->value : "localhost", &hosts);
	use_db(im, buf_cstr(&hosts), it[1] ? it[1]->value : "", it[2] ? it[2]->value : "",
	       it[3] ? it[3]->value : "", at, "mysql_table connection");
	buf_free(&hosts);
}

int imp_mysql_map(struct import *im, const char *path, struct imp_where at,
		  enum imp_lookup kind, char **query)
{
	char file[4096], why[256], *q;
	struct imp_text t;
	struct imp_list kv = { 0 };
	struct imp_item *qi, *rf;
	int rc;

	*query = NULL;
	imp_source_path(im, path, file, sizeof(file));
	rc = imp_text_read(im, file, true, &t);
	if (rc == 1) {
		imp_lose(im, at, "mysql map", path, "the file does not exist");
		return 1;
	}
	if (rc < 0)
		return -1;
	rc = imp_parse_kv(im, &t, IMP_JOIN_INDENT, &kv);
	imp_text_free(&t);
	if (rc < 0) {
		imp_list_free(&kv);
		return -1;
	}
	mysql_connection(im, &kv, file);
	qi = imp_list_get(&kv, "query");
	q = qi ? xstrdup(qi->value) : legacy_query(&kv);
	if (qi)
		qi->used = true;
	rf = imp_list_get(&kv, "result_format");
	if (rf) {
		rf->used = true;
		if (strcmp(rf->value, "%s") != 0 && strcmp(rf->value, "%S") != 0)
			imp_lose(im, rf->at, rf->key, rf->value, "Postern uses the query's result "
				 "as it is: put the formatting into the query (CONCAT)");
	}
	if (q == NULL) {
		imp_lose(im, at, "mysql map", path, "no query (query, or select_field, table and "
			 "where_field)");
		rc = 1;
	} else if ((*query = translate(q, false, kind, why, sizeof(why))) == NULL) {
		imp_lose(im, qi ? qi->at : at, "query", q, "%s", why);
		rc = 1;
	}
	free(q);
	for (size_t i = 0; i < kv.n; i++)
		if (!kv.v[i].used && !harmless_mysql_key(kv.v[i].key))
			imp_lose(im, kv.v[i].at, kv.v[i].key, kv.v[i].value,
				 "no Postern equivalent in sql.conf");
	imp_list_free(&kv);
	return rc;
}

/* ---- Dovecot's dovecot-sql.conf.ext ------------------------------------------------------ */

/* "host=/run/mysqld/mysqld.sock dbname=mail user=u password=p port=3306" */
static void dovecot_connect(struct import *im, struct imp_item *c)
{
	char *copy = xstrdup(c->value), *save = NULL, *v;
	char *user = NULL, *password = NULL, *dbname = NULL, *port = NULL;
	struct buf hosts;
	const char *hostv[16];
	size_t nhosts = 0;

	c->used = true;
	buf_init(&hosts, IMP_LOGICAL_MAX);
	if (copy[0] == '"' && strlen(copy) >= 2 && copy[strlen(copy) - 1] == '"') {
		copy[strlen(copy) - 1] = '\0';
		memmove(copy, copy + 1, strlen(copy));
	}
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		v = strchr(t, '=');
		if (v == NULL) {
			imp_lose(im, c->at, "connect", t, "expected key=value");
			continue;
		}
		*v++ = '\0';
		if (strcmp(t, "host") == 0 && nhosts < ARRAY_LEN(hostv))
			hostv[nhosts++] = v;
		else if (strcmp(t, "user") == 0)
			user = v;
		else if (strcmp(t, "password") == 0)
			password = v;
		else if (strcmp(t, "dbname") == 0)
			dbname = v;
		else if (strcmp(t, "port") == 0)
			port = v;
		else
			imp_lose(im, c->at, "connect", t, "connection option Postern does not have");
	}
	if (nhosts == 0)
		hostv[nhosts++] = "localhost";
	for (size_t i = 0; i < nhosts; i++) {
		char item[600];

		if (hostv[i][0] == '/')
			(void)str_fmt(item, sizeof(item), "unix:%s", hostv[i]);
		else if (port && strchr(hostv[i], ':'))
			(void)str_fmt(item, sizeof(item), "[%s]:%s", hostv[i], port);
		else if (port)
			(void)str_fmt(item, sizeof(item), "%s:%s", hostv[i], port);
		else
			(void)str_copy(item, sizeof(item), hostv[i]);
		append_host(&hosts, item);
	}
	use_db(im, buf_cstr(&hosts), user ? user : "", password ? password : "",
	       dbname ? dbname : "", c->at, "connect");
	buf_free(&hosts);
	free(copy);
}

/* Schemes whose hashes crypt(3) verifies without a {SCHEME} prefix. */
static bool crypt_scheme(const char *s)
{
	static const char *const ok[] = {
		"CRYPT", "DES-CRYPT", "MD5-CRYPT", "SHA256-CRYPT", "SHA512-CRYPT", "BLF-CRYPT",
	};

	for (size_t i = 0; i < ARRAY_LEN(ok); i++)
		if (strcasecmp(s, ok[i]) == 0)
			return true;
	return false;
}

static void dovecot_scheme(struct import *im, struct imp_item *s)
{
	s->used = true;
	if (crypt_scheme(s->value))
		imp_sql(im, "default_pass_scheme", s->value, s->at, s->key);
	else
		imp_lose(im, s->at, s->key, s->value, "Postern reads a hash without a {SCHEME} "
			 "prefix as a crypt(3) hash: prefix the stored passwords with {%s} in the "
			 "database", s->value);
}

static void dovecot_password_query(struct import *im, struct imp_item *q)
{
	char why[256], *t = imp_dovecot_query(q->value, why, sizeof(why));

	q->used = true;
	if (t == NULL) {
		imp_lose(im, q->at, q->key, q->value, "%s", why);
		return;
	}
	imp_sql(im, "password_query", t, q->at, q->key);
	free(t);
}

int imp_dovecot_sql(struct import *im, const char *path, struct imp_where at,
		    char **user_query, struct imp_where *uq_at)
{
	static const char *const ignored[] = { "iterate_query", "update_query" };
	char file[4096];
	struct imp_text t;
	struct imp_list kv = { 0 };
	struct imp_item *it;
	int rc;

	*user_query = NULL;
	imp_source_path(im, path, file, sizeof(file));
	rc = imp_text_read(im, file, true, &t);
	if (rc == 1) {
		imp_lose(im, at, "args", path, "the SQL configuration file does not exist");
		return 1;
	}
	if (rc < 0)
		return -1;
	rc = imp_parse_kv(im, &t, IMP_JOIN_BACKSLASH, &kv);
	imp_text_free(&t);
	if (rc == 0) {
		if ((it = imp_list_get(&kv, "driver")) != NULL) {
			it->used = true;
			if (strcmp(it->value, "mysql") != 0)
				imp_lose(im, it->at, it->key, it->value, "Postern speaks only to "
					 "MySQL/MariaDB");
		}
		if ((it = imp_list_get(&kv, "connect")) != NULL)
			dovecot_connect(im, it);
		if ((it = imp_list_get(&kv, "default_pass_scheme")) != NULL)
			dovecot_scheme(im, it);
		if ((it = imp_list_get(&kv, "password_query")) != NULL)
			dovecot_password_query(im, it);
		if ((it = imp_list_get(&kv, "user_query")) != NULL) {
			it->used = true;
			*user_query = xstrdup(it->value);
			*uq_at = it->at;
		}
		for (size_t i = 0; i < ARRAY_LEN(ignored); i++)
			if ((it = imp_list_get(&kv, ignored[i])) != NULL)
				it->used = true;	/* doveadm's listing; quota updates */
		for (size_t i = 0; i < kv.n; i++)
			if (!kv.v[i].used)
				imp_lose(im, kv.v[i].at, kv.v[i].key, kv.v[i].value,
					 "no Postern equivalent in sql.conf");
	}
	imp_list_free(&kv);
	return rc;
}

/* ---- userdb fields ----------------------------------------------------------------------- */

/* A path template with only the variables Postern expands (%d %n %u %%). */
static bool template_ok(const char *t)
{
	for (const char *p = strchr(t, '%'); p; p = strchr(p + 2, '%'))
		if (!strchr("dnu%", p[1]) || p[1] == '\0')
			return false;
	return true;
}

static void field_uid(struct import *im, const char *v, struct imp_where at)
{
	struct passwd *pw = NULL;
	long long n;

	if (str_to_ll(v, 0, 0x7fffffff, &n) == 0) {
		pw = getpwuid((uid_t)n);
		if (pw == NULL) {
			imp_lose(im, at, "uid", v, "no user has this uid here: Postern names the "
				 "mailbox owner (vmail_owner)");
			return;
		}
		v = pw->pw_name;
	}
	free(im->vmail_user);
	im->vmail_user = xstrdup(v);
	im->vmail_at = at;
}

static void field_gid(struct import *im, const char *v, struct imp_where at)
{
	struct passwd *pw = im->vmail_user ? getpwnam(im->vmail_user) : NULL;
	struct group *gr;
	long long n;

	if (str_to_ll(v, 0, 0x7fffffff, &n) == 0)
		gr = getgrgid((gid_t)n);
	else
		gr = getgrnam(v);
	if (pw && gr && gr->gr_gid == pw->pw_gid)
		return;		/* vmail_owner's own group: what Postern uses */
	if (pw == NULL && im->vmail_user == NULL && strcmp(v, "vmail") == 0)
		return;
	imp_lose(im, at, "gid", v, "Postern runs deliveries and sessions with vmail_owner's "
		 "primary group");
}

static void field_path(struct import *im, const char *name, const char *v, struct imp_where at)
{
	char **dst = strcmp(name, "home") == 0 ? &im->home_tmpl : &im->mail_tmpl;

	if (!template_ok(v)) {
		imp_lose(im, at, name, v, "uses variables Postern does not expand (it has %%d %%n "
			 "%%u)");
		return;
	}
	free(*dst);
	*dst = xstrdup(v);
	if (*name == 'h')
		im->home_at = at;
	else
		im->mail_at = at;
}

static void apply_field(struct import *im, const char *name, const char *v,
			struct imp_where at)
{
	if (strcmp(name, "uid") == 0)
		field_uid(im, v, at);
	else if (strcmp(name, "gid") == 0)
		field_gid(im, v, at);
	else if (strcmp(name, "home") == 0 || strcmp(name, "mail") == 0)
		field_path(im, name, v, at);
	else
		imp_lose(im, at, name, v, "userdb field Postern does not have");
}

void imp_userdb_fields(struct import *im, const char *args, struct imp_where at)
{
	char *copy = xstrdup(args), *save = NULL, *v;

	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		v = strchr(t, '=');
		if (v == NULL) {
			imp_lose(im, at, "userdb args", t, "expected field=value");
			continue;
		}
		*v++ = '\0';
		if (strcmp(t, "allow_all_users") == 0)
			continue;	/* Postern checks recipients in the database anyway */
		apply_field(im, t, v, at);
	}
	free(copy);
}

/* ---- a user_query's constant columns ----------------------------------------------------- */

/* Length of the select list: up to the first FROM outside quotes and parentheses. */
static size_t select_list_len(const char *s)
{
	char quote = 0;
	int depth = 0;

	for (size_t i = 0; s[i]; i++) {
		if (quote) {
			quote = s[i] == quote ? 0 : quote;
		} else if (s[i] == '\'' || s[i] == '"') {
			quote = s[i];
		} else if (s[i] == '(') {
			depth++;
		} else if (s[i] == ')') {
			depth--;
		} else if (depth == 0 && strncasecmp(s + i, "from", 4) == 0 && i > 0 &&
			   isspace((unsigned char)s[i - 1]) && !isalnum((unsigned char)s[i + 4]) &&
			   s[i + 4] != '_') {
			return i;
		}
	}
	return strlen(s);
}

/* One select item "EXPR [AS] alias": the alias and, if EXPR is a constant, its value. */
static void select_item(struct import *im, char *item, struct imp_where at,
			const char *query)
{
	char *alias, *expr = imp_trim(item), *end;
	size_t len;

	alias = strrchr(expr, ' ');
	alias = alias ? alias + 1 : expr;
	if (strcmp(alias, "home") && strcmp(alias, "mail") && strcmp(alias, "uid") &&
	    strcmp(alias, "gid"))
		return;		/* user, quota_rule...: nothing Postern takes from here */
	if (alias == expr) {
		imp_lose(im, at, "user_query", query, "reads %s from a column: Postern computes "
			 "it from postern.conf (virtual_home, virtual_mail, vmail_owner) or reads "
			 "it from a '%s' column of sql.conf's user_query", alias, alias);
		return;
	}
	alias[-1] = '\0';
	expr = imp_trim(expr);
	len = strlen(expr);
	if (len > 3 && strcasecmp(expr + len - 3, " as") == 0) {
		expr[len - 3] = '\0';
		expr = imp_trim(expr);
		len = strlen(expr);
	}
	if (len >= 2 && (expr[0] == '\'' || expr[0] == '"') && expr[len - 1] == expr[0]) {
		expr[len - 1] = '\0';
		apply_field(im, alias, expr + 1, at);
	} else if (strtol(expr, &end, 10) >= 0 && *end == '\0' && end != expr) {
		apply_field(im, alias, expr, at);
	} else {
		imp_lose(im, at, "user_query", query, "computes %s in SQL (%s): Postern takes it "
			 "from postern.conf", alias, expr);
	}
}

void imp_user_query_fields(struct import *im, const char *q, struct imp_where at)
{
	const char *p = q + strspn(q, " \t");
	char *list, *save = NULL;

	if (strncasecmp(p, "select", 6) != 0 || !isspace((unsigned char)p[6])) {
		imp_lose(im, at, "user_query", q, "not a SELECT");
		return;
	}
	p += 7;
	list = xstrndup(p, select_list_len(p));
	/* Commas inside quotes or parentheses are rare in these lists; items with them are
	 * reported as computed. */
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
		select_item(im, t, at, q);
	free(list);
}
