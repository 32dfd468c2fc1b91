/*
 * test_sqldb.c: the parts of the database layer that need no database: query templates
 * (lib/sqldb.c sql_template_compile), hosts items and sql.conf loading (lib/sqlconf.c),
 * including the refusal of a file others could read. test_sqldb_live.c covers the rest
 * against a real MariaDB.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "sqlconf.h"
#include "sqldb.h"
#include "t.h"
#include "t_errs.h"
#include "util.h"


static char dir[64], path[128];


/* ---- templates --------------------------------------------------------------------------- */

/* Compile tmpl; check the SQL and the placeholder order. */
static void compiles(const char *tmpl, const char *want_sql, const char *want_order)
{
	char sql[512], order[SQL_MAX_PARAMS + 1], err[200] = "";
	int n = sql_template_compile(tmpl, sql, sizeof(sql), order, sizeof(order), err,
				     sizeof(err));

	T_EQ_INT(n, (long long)strlen(want_order));
	if (n < 0) {
		fprintf(stderr, "  %s: %s\n", tmpl, err);
		return;
	}
	T_EQ_STR(sql, want_sql);
	order[n < (int)sizeof(order) ? n : 0] = '\0';
	T_EQ_STR(order, want_order);
}

/* Compile tmpl, which must fail with an error containing want. */
static void fails(const char *tmpl, const char *want)
{
	char sql[512], order[SQL_MAX_PARAMS], err[200] = "";
	int n = sql_template_compile(tmpl, sql, sizeof(sql), order, sizeof(order), err,
				     sizeof(err));

	T_EQ_INT(n, -1);
	T_CHECK(strstr(err, want) != NULL);
	if (strstr(err, want) == NULL)
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", tmpl, err, want);
}

static void test_template_quotes(void)
{
	compiles("SELECT 1 FROM virtual_domains WHERE name='%d'",
		 "SELECT 1 FROM virtual_domains WHERE name=?", "d");
	compiles("SELECT a FROM t WHERE x=\"%s\" AND y = %u", "SELECT a FROM t WHERE x=? AND y = ?",
		 "su");
	compiles("SELECT email FROM virtual_users WHERE email='%s' UNION SELECT destination FROM "
		 "virtual_aliases WHERE source='%s'",
		 "SELECT email FROM virtual_users WHERE email=? UNION SELECT destination FROM "
		 "virtual_aliases WHERE source=?", "ss");
	compiles("UPDATE u SET password='%p' WHERE email='%u'",
		 "UPDATE u SET password=? WHERE email=?", "pu");
	compiles("SELECT '%n','%d','%s','%u','%p'", "SELECT ?,?,?,?,?", "ndsup");
	/* Quotes not directly around a placeholder stay, and so do literals. */
	compiles("SELECT 'it''s', \"x\" FROM t WHERE a = 'b' AND c = '%s'",
		 "SELECT 'it''s', \"x\" FROM t WHERE a = 'b' AND c = ?", "s");
	compiles("SELECT 'a\\'b' WHERE x=%d", "SELECT 'a\\'b' WHERE x=?", "d");
	compiles("SELECT `col` FROM `t` WHERE e = CONCAT(%n, '@', %d)",
		 "SELECT `col` FROM `t` WHERE e = CONCAT(?, '@', ?)", "nd");
	compiles("SELECT ' x", "SELECT ' x", "");	/* unbalanced: kept for the server */
	compiles("", "", "");
	compiles("'%s'", "?", "s");
}

static void test_template_percent(void)
{
	compiles("SELECT a FROM t WHERE b LIKE 'x%%' AND c='%s'",
		 "SELECT a FROM t WHERE b LIKE 'x%' AND c=?", "s");
	compiles("SELECT 100%%", "SELECT 100%", "");
	compiles("%%s", "%s", "");
	compiles("%%%s", "%?", "s");
}

static void test_template_errors(void)
{
	char sql[512], order[SQL_MAX_PARAMS], err[200];
	struct buf b;
	int i;

	fails("SELECT 1 WHERE a='%x'", "unknown placeholder '%x'");
	fails("SELECT 1 WHERE a=%1", "unknown placeholder '%1'");
	fails("SELECT 1 WHERE a=%\001", "unknown placeholder '%\\x01'");
	fails("SELECT 100%", "'%' at the end");
	fails("SELECT 1 WHERE a='%u@%d'", "placeholder %u inside a quoted string");
	fails("SELECT 1 WHERE a=`%s`", "placeholder %s inside a quoted string");
	fails("SELECT 1 WHERE a='x%s'", "placeholder %s inside a quoted string");
	fails("SELECT 1 WHERE a='%s\"", "placeholder %s inside a quoted string"); /* no pair */
	/* The first bad '%' wins; the '%s' before it is fine. */
	fails("SELECT '%s', %q", "unknown placeholder '%q'");

	/* Sixteen placeholders are fine, seventeen are not. */
	buf_init(&b, 4096);
	buf_append_str(&b, "SELECT 1 WHERE a IN (");
	for (i = 0; i < SQL_MAX_PARAMS; i++)
		buf_append_str(&b, i ? ",'%s'" : "'%s'");
	T_EQ_INT(sql_template_compile(buf_cstr(&b), sql, sizeof(sql), order, sizeof(order), err,
				      sizeof(err)), SQL_MAX_PARAMS);
	buf_append_str(&b, ",%u)");
	fails(buf_cstr(&b), "more than 16 placeholders");
	buf_free(&b);

	/* A smaller order array lowers the limit; a short SQL buffer is an error, not a
	 * truncation. */
	T_EQ_INT(sql_template_compile("%s %u %d", sql, sizeof(sql), order, 2, err, sizeof(err)),
		 -1);
	T_CHECK(strstr(err, "more than 2 placeholders") != NULL);
	T_EQ_INT(sql_template_compile("SELECT 1", sql, 8, order, sizeof(order), err, sizeof(err)),
		 -1);
	T_EQ_INT(sql_template_compile("SELECT 1", sql, 9, order, sizeof(order), err, sizeof(err)),
		 0);
	T_EQ_STR(sql, "SELECT 1");
}

/* ---- hosts items ------------------------------------------------------------------------- */

static void test_hosts_items(void)
{
	struct sql_host h;
	char err[200];

	T_EQ_INT(sqlconf_parse_host("unix:/run/mysqld/mysqld.sock", &h, err, sizeof(err)), 0);
	T_EQ_STR(h.socket, "/run/mysqld/mysqld.sock");
	T_EQ_STR(h.host, "");
	T_EQ_INT(sqlconf_parse_host("db.example.com", &h, err, sizeof(err)), 0);
	T_EQ_STR(h.host, "db.example.com");
	T_EQ_INT(h.port, 3306);
	T_EQ_STR(h.socket, "");
	T_EQ_INT(sqlconf_parse_host("127.0.0.1:3307", &h, err, sizeof(err)), 0);
	T_EQ_STR(h.host, "127.0.0.1");
	T_EQ_INT(h.port, 3307);
	T_EQ_INT(sqlconf_parse_host("[::1]:3308", &h, err, sizeof(err)), 0);
	T_EQ_STR(h.host, "::1");
	T_EQ_INT(h.port, 3308);
	T_EQ_INT(sqlconf_parse_host("[2001:db8::5]", &h, err, sizeof(err)), 0);
	T_EQ_STR(h.host, "2001:db8::5");
	T_EQ_INT(h.port, 3306);

	T_EQ_INT(sqlconf_parse_host("unix:relative.sock", &h, err, sizeof(err)), -1);
	T_CHECK(strstr(err, "absolute") != NULL);
	T_EQ_INT(sqlconf_parse_host("::1", &h, err, sizeof(err)), -1);
	T_CHECK(strstr(err, "brackets") != NULL);
	T_EQ_INT(sqlconf_parse_host("db:0", &h, err, sizeof(err)), -1);
	T_EQ_INT(sqlconf_parse_host("db:65536", &h, err, sizeof(err)), -1);
	T_EQ_INT(sqlconf_parse_host("db:", &h, err, sizeof(err)), -1);
	T_EQ_INT(sqlconf_parse_host("db:x", &h, err, sizeof(err)), -1);
	T_EQ_INT(sqlconf_parse_host(":3306", &h, err, sizeof(err)), -1);
	T_EQ_INT(sqlconf_parse_host("db/x", &h, err, sizeof(err)), -1);
	T_EQ_INT(sqlconf_parse_host("[::1", &h, err, sizeof(err)), -1);
	T_EQ_INT(sqlconf_parse_host("[::1]x", &h, err, sizeof(err)), -1);
	T_EQ_INT(sqlconf_parse_host("[nothost]:1", &h, err, sizeof(err)), -1);
	T_EQ_INT(sqlconf_parse_host("[]:1", &h, err, sizeof(err)), -1);
}

/* ---- sql.conf ---------------------------------------------------------------------------- */

static void write_file(const char *text, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || fchmod(fd, mode) < 0 ||
	    close(fd) < 0) {
		perror(path);
		exit(2);
	}
}

static struct config *load(const char *text, mode_t mode, bool private, struct errs *e)
{
	memset(e, 0, sizeof(*e));
	write_file(text, mode);
	return sqlconf_load(path, private, collect, e);
}

static void test_sqlconf_defaults(void)
{
	struct errs e;
	struct config *c = load("hosts = unix:/run/mysqld/mysqld.sock, db2:3307\n"
				"user = mail\npassword = s3cr$$t'\"#x\n", 0600, true, &e);
	const char *const *hosts;
	size_t n = 0;

	T_CHECK(c != NULL);
	T_EQ_INT(e.n, 0);
	if (c == NULL) {
		fprintf(stderr, "  %s\n", e.msg[0]);
		return;
	}
	hosts = conf_list(c, "hosts", &n);
	T_EQ_INT(n, 2);
	T_EQ_STR(hosts[0], "unix:/run/mysqld/mysqld.sock");
	T_EQ_STR(hosts[1], "db2:3307");
	T_EQ_STR(conf_str(c, "user"), "mail");
	T_EQ_STR(conf_str(c, "password"), "s3cr$t'\"#x");
	T_EQ_STR(conf_str(c, "dbname"), "mailserver");
	T_EQ_STR(conf_str(c, "admin_user"), "");
	T_EQ_STR(conf_str(c, "admin_password"), "");
	T_EQ_INT(conf_time_ms(c, "connect_timeout"), 2000);
	T_EQ_INT(conf_time_ms(c, "query_timeout"), 5000);
	T_EQ_STR(conf_str(c, "domain_query"), "SELECT 1 FROM virtual_domains WHERE name='%d'");
	T_EQ_STR(conf_str(c, "password_query"),
		 "SELECT email AS user, password FROM virtual_users WHERE email='%u'");
	T_EQ_STR(conf_str(c, "user_query"),
		 "SELECT email AS user FROM virtual_users WHERE email='%s'");
	T_EQ_STR(conf_str(c, "alias_query"),
		 "SELECT destination FROM virtual_aliases WHERE source='%s'");
	T_EQ_STR(conf_str(c, "sender_query"),
		 "SELECT email FROM virtual_users WHERE email='%s' UNION SELECT destination "
		 "FROM virtual_aliases WHERE source='%s'");
	T_EQ_STR(conf_str(c, "password_update_query"), "");
	T_EQ_STR(conf_str(c, "default_pass_scheme"), "SHA512-CRYPT");
	conf_free(c);
}

static void test_sqlconf_settings(void)
{
	struct errs e;
	struct config *c = load("hosts = [::1]:3306\ndbname = mail\nconnect_timeout = 1500ms\n"
				"query_timeout = 1m\nalias_query = SELECT goto FROM alias\n"
				"  WHERE address='%s' AND active = '1'\n"
				"password_update_query = UPDATE users SET password='%p' "
				"WHERE username='%u'\n", 0600, true, &e);

	T_CHECK(c != NULL);
	T_EQ_INT(e.n, 0);
	if (c == NULL)
		return;
	T_EQ_STR(conf_str(c, "dbname"), "mail");
	T_EQ_INT(conf_time_ms(c, "connect_timeout"), 1500);
	T_EQ_INT(conf_time_ms(c, "query_timeout"), 60000);
	T_EQ_STR(conf_str(c, "alias_query"),
		 "SELECT goto FROM alias WHERE address='%s' AND active = '1'");
	conf_free(c);
}

static void test_sqlconf_private(void)
{
	struct errs e;
	struct config *c;
	char want[300], link[160];

	c = load("hosts = unix:/x\n", 0644, true, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	str_fmt(want, sizeof(want), "%s: mode 0644: must not be accessible by group or others "
		"(chmod 600)", path);
	T_EQ_STR(e.msg[0], want);

	c = load("hosts = unix:/x\n", 0640, true, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	c = load("hosts = unix:/x\n", 0604, true, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	c = load("hosts = unix:/x\n", 0601, true, &e);	/* even execute-only for others */
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);

	/* 0600 and 0400 are fine; without require_private so is 0644. */
	c = load("hosts = unix:/x\n", 0400, true, &e);
	T_CHECK(c != NULL);
	conf_free(c);
	c = load("hosts = unix:/x\n", 0644, false, &e);
	T_CHECK(c != NULL);
	T_EQ_INT(e.n, 0);
	conf_free(c);

	/* A symbolic link is not followed, and a directory is not a regular file. */
	c = load("hosts = unix:/x\n", 0600, true, &e);
	T_CHECK(c != NULL);
	conf_free(c);
	str_fmt(link, sizeof(link), "%s/link.conf", dir);
	T_EQ_INT(symlink(path, link), 0);
	memset(&e, 0, sizeof(e));
	T_CHECK(sqlconf_load(link, true, collect, &e) == NULL);
	T_EQ_INT(e.n, 1);
	T_CHECK(strstr(e.msg[0], "symbolic link") != NULL);
	unlink(link);
	memset(&e, 0, sizeof(e));
	T_CHECK(sqlconf_load(dir, true, collect, &e) == NULL);
	T_EQ_INT(e.n, 1);
	T_CHECK(strstr(e.msg[0], "not a regular file") != NULL);
	memset(&e, 0, sizeof(e));
	str_fmt(link, sizeof(link), "%s/missing.conf", dir);
	T_CHECK(sqlconf_load(link, true, collect, &e) == NULL);
	T_EQ_INT(e.n, 1);
	T_CHECK(strstr(e.msg[0], "cannot open: No such file") != NULL);
}

static void test_sqlconf_errors(void)
{
	struct errs e;
	struct config *c;
	char want[300];

	c = load("hosts = unix:/x\nusr = mail\n", 0600, true, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	str_fmt(want, sizeof(want), "%s:2: unknown parameter 'usr'", path);
	T_EQ_STR(e.msg[0], want);

	/* hosts is required. */
	c = load("user = mail\n", 0600, true, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	str_fmt(want, sizeof(want), "%s: 'hosts' is empty: name the database servers, e.g. "
		"hosts = unix:/run/mysqld/mysqld.sock", path);
	T_EQ_STR(e.msg[0], want);
	c = load("user = mail\nhosts = ,\n", 0600, true, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	T_CHECK(strncmp(e.msg[0], path, strlen(path)) == 0 &&
		strncmp(e.msg[0] + strlen(path), ":2: 'hosts' is empty", 20) == 0);

	/* Bad hosts items and bad templates, each at its line; all reported in one run. */
	c = load("hosts = unix:/ok, ::1,\n  db:99999\nuser_query = SELECT 1 WHERE a='%u@%d'\n"
		 "connect_timeout = 0\n", 0600, true, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);	/* a bad value stops the load before the sql.conf checks */
	str_fmt(want, sizeof(want), "%s:4: value of 'connect_timeout' is out of range "
		"[1s..1m]: '0'", path);
	T_EQ_STR(e.msg[0], want);

	c = load("hosts = unix:/ok, ::1,\n  db:99999\nuser_query = SELECT 1 WHERE a='%u@%d'\n",
		 0600, true, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 3);
	str_fmt(want, sizeof(want), "%s:1: bad item in 'hosts': '::1': an IPv6 address needs "
		"brackets: [addr]:port", path);
	T_EQ_STR(e.msg[0], want);
	str_fmt(want, sizeof(want), "%s:1: bad item in 'hosts': 'db:99999': bad port '99999' "
		"(expected 1 to 65535)", path);
	T_EQ_STR(e.msg[1], want);
	str_fmt(want, sizeof(want), "%s:3: bad value for 'user_query': placeholder %%u inside a "
		"quoted string", path);
	T_CHECK(strncmp(e.msg[2], want, strlen(want)) == 0);
}

int main(void)
{
	str_copy(dir, sizeof(dir), "/tmp/test_sqldb.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	str_fmt(path, sizeof(path), "%s/sql.conf", dir);

	T_RUN(test_template_quotes);
	T_RUN(test_template_percent);
	T_RUN(test_template_errors);
	T_RUN(test_hosts_items);
	T_RUN(test_sqlconf_defaults);
	T_RUN(test_sqlconf_settings);
	T_RUN(test_sqlconf_private);
	T_RUN(test_sqlconf_errors);

	unlink(path);
	rmdir(dir);
	return T_DONE();
}
