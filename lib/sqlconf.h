/*
 * sqlconf.h: sql.conf, the only file that holds the database credentials (DESIGN.md §6, §7).
 * Same syntax as postern.conf (lib/config.h) with its own parameter table (sqlconf.c):
 *
 *   hosts = unix:/run/mysqld/mysqld.sock, 127.0.0.1:3306   # tried in order (fail-over)
 *   user = mailuser
 *   password = secret
 *   dbname = mailserver
 *   domain_query   = SELECT 1 FROM virtual_domains WHERE name='%d'
 *   password_query = SELECT email AS user, password FROM virtual_users WHERE email='%u'
 *   user_query     = SELECT email AS user FROM virtual_users WHERE email='%s'
 *   alias_query    = SELECT destination FROM virtual_aliases WHERE source='%s'
 *   sender_query   = ... (who may send as %s)
 *   password_update_query = UPDATE virtual_users SET password='%p' WHERE email='%u'
 *   admin_user / admin_password  (optional; `postern admin` writes with these)
 *
 * Placeholders: %s the whole address, %u the login name (for virtual users the whole address,
 * as in Dovecot), %n the local part, %d the domain, %p a new password hash; they are bound as
 * prepared-statement parameters, never pasted into SQL. Quotes around a placeholder ('%s') are
 * accepted for compatibility with Postfix/Dovecot query files and removed.
 */
#ifndef POSTERN_SQLCONF_H
#define POSTERN_SQLCONF_H

#include "config.h"

extern const struct conf_param sql_params[];

/* Load sql.conf. With require_private, refuse (report and return NULL) a file that group or
 * others can read, or that is not a regular file. Besides the types and ranges every
 * configuration gets checked, hosts must be a non-empty list of valid items and every query
 * must be a valid template (sql_template_compile), each reported as FILE:LINE. */
struct config *sqlconf_load(const char *path, bool require_private, conf_error_fn *err,
			    void *arg);

/* One item of `hosts`: `unix:/path/to/socket`, `host`, `host:port`, `[ipv6]` or
 * `[ipv6]:port` (port 3306 when omitted). */
struct sql_host {
	char socket[108];	/* socket path (sun_path size) for unix:, else "" */
	char host[256];		/* name or address (without brackets), "" for a socket */
	unsigned port;		/* 0 for a socket */
};

/* Parse one hosts item; -1 with a reason in err on a bad one. */
int sqlconf_parse_host(const char *item, struct sql_host *out, char *err, size_t errlen);

#endif
