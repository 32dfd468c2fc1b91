/*
 * sqlconf.c: sql.conf, the database settings and queries of authd and `postern admin`
 * (see sqlconf.h). The file uses the postern.conf syntax with its own parameter table, so it
 * gets the same parser, $name expansion and file:line messages; on top of that this file
 * refuses a file others could read (it holds the database password) and checks what the
 * generic parser cannot: the hosts list and the query templates.
 */
#include "sqlconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_priv.h"
#include "sqldb.h"
#include "util.h"

#define SEC(n)	((n) * 1000LL)

const struct conf_param sql_params[] = {
	{ "hosts", CONF_LIST, "", 0, 0,
	  "database servers tried in order: unix:/path, host[:port] or [ipv6]:port" },
	{ "user", CONF_STR, "", 0, 0, "database user" },
	{ "password", CONF_STR, "", 0, 0, "database password (write $$ for a '$')" },
	{ "dbname", CONF_STR, "mailserver", 0, 0, "database name" },
	{ "admin_user", CONF_STR, "", 0, 0,
	  "database user of `postern admin` (empty: the same as user)" },
	{ "admin_password", CONF_STR, "", 0, 0, "password of admin_user" },
	{ "connect_timeout", CONF_TIME, "2s", SEC(1), SEC(60),
	  "how long to wait for a database server to accept a connection" },
	{ "query_timeout", CONF_TIME, "5s", SEC(1), SEC(600),
	  "how long to wait for the database to answer a query" },
	{ "domain_query", CONF_STR, "SELECT 1 FROM virtual_domains WHERE name='%d'", 0, 0,
	  "returns a row if %d is a virtual domain" },
	{ "password_query", CONF_STR,
	  "SELECT email AS user, password FROM virtual_users WHERE email='%u'", 0, 0,
	  "returns the user and the password hash of login %u" },
	{ "user_query", CONF_STR, "SELECT email AS user FROM virtual_users WHERE email='%s'", 0,
	  0, "returns a row if %s is a virtual mailbox" },
	{ "alias_query", CONF_STR, "SELECT destination FROM virtual_aliases WHERE source='%s'",
	  0, 0, "returns the destinations of alias %s" },
	{ "sender_query", CONF_STR,
	  "SELECT email FROM virtual_users WHERE email='%s' "
	  "UNION SELECT destination FROM virtual_aliases WHERE source='%s'", 0, 0,
	  "returns the users that may send as %s" },
	{ "password_update_query", CONF_STR, "", 0, 0,
	  "stores new hash %p for login %u (empty: never rehash)" },
	{ "default_pass_scheme", CONF_STR, "SHA512-CRYPT", 0, 0,
	  "scheme of stored hashes that have no {SCHEME} prefix" },
	{ NULL, CONF_STR, NULL, 0, 0, NULL },
};

/* The parameters that hold query templates. */
static const char *const query_params[] = {
	"domain_query", "password_query", "user_query", "alias_query", "sender_query",
	"password_update_query",
};

static int parse_port(const char *s, unsigned *port, char *err, size_t errlen)
{
	long long v;

	if (str_to_ll(s, 1, 65535, &v) < 0) {
		(void)str_fmt(err, errlen, "bad port '%.20s' (expected 1 to 65535)", s);
		return -1;
	}
	*port = (unsigned)v;
	return 0;
}

static int parse_socket(const char *path, struct sql_host *out, char *err, size_t errlen)
{
	if (path[0] != '/') {
		(void)str_copy(err, errlen, "the socket path must be absolute (unix:/path)");
		return -1;
	}
	if (str_copy(out->socket, sizeof(out->socket), path) < 0) {
		(void)str_fmt(err, errlen, "the socket path is longer than %zu bytes",
			      sizeof(out->socket) - 1);
		return -1;
	}
	return 0;
}

/* "[addr]" or "[addr]:port". */
static int parse_bracketed(const char *item, struct sql_host *out, char *err, size_t errlen)
{
	const char *close = strchr(item, ']');
	struct in6_addr addr;
	size_t len;

	if (close == NULL) {
		(void)str_copy(err, errlen, "missing ']' after an IPv6 address");
		return -1;
	}
	len = (size_t)(close - item - 1);
	if (len == 0 || len >= INET6_ADDRSTRLEN || len >= sizeof(out->host)) {
		(void)str_copy(err, errlen, "bad IPv6 address between [ and ]");
		return -1;
	}
	memcpy(out->host, item + 1, len);
	out->host[len] = '\0';
	if (inet_pton(AF_INET6, out->host, &addr) != 1) {
		(void)str_copy(err, errlen, "bad IPv6 address between [ and ]");
		return -1;
	}
	out->port = 3306;
	if (close[1] == '\0')
		return 0;
	if (close[1] != ':') {
		(void)str_copy(err, errlen, "expected ':port' after ']'");
		return -1;
	}
	return parse_port(close + 2, &out->port, err, errlen);
}

/* "host" or "host:port" with a DNS name or an IPv4 address. */
static int parse_named(const char *item, struct sql_host *out, char *err, size_t errlen)
{
	static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					 "0123456789.-_";
	const char *colon = strchr(item, ':');
	size_t len = colon ? (size_t)(colon - item) : strlen(item);

	if (colon && strchr(colon + 1, ':')) {
		(void)str_copy(err, errlen, "an IPv6 address needs brackets: [addr]:port");
		return -1;
	}
	if (len == 0 || len > 253 || strspn(item, name_chars) != len) {
		(void)str_copy(err, errlen, "bad host name (expected unix:/path, host[:port] "
			       "or [ipv6]:port)");
		return -1;
	}
	memcpy(out->host, item, len);
	out->host[len] = '\0';
	out->port = 3306;
	return colon ? parse_port(colon + 1, &out->port, err, errlen) : 0;
}

int sqlconf_parse_host(const char *item, struct sql_host *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(item, "unix:", 5) == 0)
		return parse_socket(item + 5, out, err, errlen);
	if (item[0] == '[')
		return parse_bracketed(item, out, err, errlen);
	return parse_named(item, out, err, errlen);
}

/* "FILE:LINE", "command line" or "FILE (default value)" for a message about name. */
static void where(const struct config *c, const char *name, char *out, size_t outlen)
{
	int line = conf_line(c, name);

	if (line > 0)
		(void)str_fmt(out, outlen, "%s:%d", conf_path(c), line);
	else if (line < 0)
		(void)str_copy(out, outlen, "command line");
	else
		(void)str_fmt(out, outlen, "%s (default value)", conf_path(c));
}

static int check_hosts(const struct config *c, conf_error_fn *err, void *arg)
{
	const char *const *items;
	struct sql_host h;
	char loc[1200], why[160];
	size_t n, i;
	int bad = 0;

	items = conf_list(c, "hosts", &n);
	where(c, "hosts", loc, sizeof(loc));
	if (n == 0) {
		conf_report(err, arg, "%s: 'hosts' is empty: name the database servers, e.g. "
			    "hosts = unix:/run/mysqld/mysqld.sock",
			    conf_is_set(c, "hosts") ? loc : conf_path(c));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (sqlconf_parse_host(items[i], &h, why, sizeof(why)) == 0)
			continue;
		conf_report(err, arg, "%s: bad item in 'hosts': '%.100s': %s", loc, items[i], why);
		bad = -1;
	}
	return bad;
}

static int check_queries(const struct config *c, conf_error_fn *err, void *arg)
{
	char loc[1200], why[160], order[SQL_MAX_PARAMS], *sql;
	const char *tmpl;
	size_t i;
	int bad = 0;

	for (i = 0; i < ARRAY_LEN(query_params); i++) {
		tmpl = conf_str(c, query_params[i]);
		sql = xmalloc(strlen(tmpl) + 1);
		if (sql_template_compile(tmpl, sql, strlen(tmpl) + 1, order, sizeof(order), why,
					 sizeof(why)) < 0) {
			where(c, query_params[i], loc, sizeof(loc));
			conf_report(err, arg, "%s: bad value for '%s': %s", loc, query_params[i],
				    why);
			bad = -1;
		}
		free(sql);
	}
	return bad;
}

/* Open path for reading only if it is a regular file that only its owner can access. */
static int open_private(const char *path, conf_error_fn *err, void *arg)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;

	if (fd < 0) {
		if (errno == ELOOP)
			conf_report(err, arg, "%s: is a symbolic link (refusing to follow it)",
				    path);
		else
			conf_report(err, arg, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		conf_report(err, arg, "%s: cannot stat: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		conf_report(err, arg, "%s: not a regular file", path);
	} else if ((st.st_mode & 077) != 0) {
		conf_report(err, arg, "%s: mode %04o: must not be accessible by group or others "
			    "(chmod 600)", path, (unsigned)(st.st_mode & 07777));
	} else {
		return fd;
	}
	(void)close(fd);
	return -1;
}

struct config *sqlconf_load(const char *path, bool require_private, conf_error_fn *err,
			    void *arg)
{
	struct config *c;
	int fd, bad;

	if (require_private) {
		fd = open_private(path, err, arg);
		if (fd < 0)
			return NULL;
		c = conf_load_fd(fd, path, sql_params, err, arg);
		(void)close(fd);
	} else {
		c = conf_load_table(path, sql_params, err, arg);
	}
	if (c == NULL)
		return NULL;
	bad = check_hosts(c, err, arg);
	if (check_queries(c, err, arg) < 0)
		bad = -1;
	if (bad < 0) {
		conf_free(c);
		return NULL;
	}
	return c;
}
