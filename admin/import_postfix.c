/*
 * import_postfix.c: the Postfix side of `postern import` (import.h): main.cf (with $name,
 * ${name} and $(name) expanded from main.cf and a few built-in defaults), master.cf (the
 * smtpd services on inet sockets: which is port 25, which submission, which smtps, with
 * their -o overrides, and whether submission/smtps are commented out), the lookup tables
 * (mysql: files become sql.conf's queries), and the mailbox templates both sides agree on.
 */
#include <ctype.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import.h"
#include "params.h"
#include "util.h"

struct pf {
	struct import *im;
	struct imp_list main;	/* main.cf */
	const char *main_name;	/* interned path of main.cf */
};

/* ---- $name expansion --------------------------------------------------------------------- */

static const char *builtin_value(const char *name, char *tmp, size_t tmplen)
{
	static const struct { const char *name, *value; } defs[] = {
		{ "config_directory", "/etc/postfix" }, { "mail_name", "Postfix" },
		{ "queue_directory", "/var/spool/postfix" }, { "myorigin", "$myhostname" },
		{ "mydestination", "$myhostname, localhost.$mydomain, localhost" },
		{ "command_directory", "/usr/sbin" }, { "daemon_directory", "/usr/lib/postfix/sbin" },
		{ "data_directory", "/var/lib/postfix" }, { "virtual_mailbox_base", "" },
	};

	for (size_t i = 0; i < ARRAY_LEN(defs); i++)
		if (strcmp(name, defs[i].name) == 0)
			return defs[i].value;
	if (params_computed_default(name, tmp, tmplen) == 0)
		return tmp;
	return NULL;
}

static int expand(struct pf *pf, const char *in, struct buf *out, int depth, char *bad,
		  size_t badlen);

/* One reference; p points after the '$'. Returns the bytes consumed, or -1. */
static int expand_ref(struct pf *pf, const char *p, struct buf *out, int depth, char *bad,
		      size_t badlen)
{
	char name[128], tmp[256];
	const char *v, *close = NULL, *alt = NULL;
	size_t len, used;
	struct imp_item *it;
	char op = 0;

	if (*p == '{' || *p == '(') {
		close = strchr(p, *p == '{' ? '}' : ')');
		if (close == NULL)
			return str_fmt(bad, badlen, "unclosed %c", *p), -1;
		len = strcspn(p + 1, "?:}) ");
		if (p[1 + len] == '?' || p[1 + len] == ':') {
			op = p[1 + len];
			alt = p + 2 + len;
		}
		p++;
		used = (size_t)(close - p) + 2;
	} else {
		for (len = 0; isalnum((unsigned char)p[len]) || p[len] == '_'; len++)
			;
		used = len;
	}
	if (len == 0 || len >= sizeof(name))
		return str_copy(bad, badlen, "bad $ reference"), -1;
	memcpy(name, p, len);
	name[len] = '\0';
	it = imp_list_get(&pf->main, name);
	if (it)
		it->used = true;	/* referenced: a helper setting, not an unknown one */
	v = it ? it->value : builtin_value(name, tmp, sizeof(tmp));
	if (op) {	/* ${name?text}: text if name is non-empty; ${name:text}: if empty */
		bool nonempty = v && *v;
		char *text = xstrndup(alt, (size_t)(close - alt));
		int rc = 0;

		if ((op == '?') == nonempty)
			rc = expand(pf, text, out, depth + 1, bad, badlen);
		free(text);
		return rc < 0 ? -1 : (int)used;
	}
	if (v == NULL)
		return str_fmt(bad, badlen, "$%s is not set", name), -1;
	return expand(pf, v, out, depth + 1, bad, badlen) < 0 ? -1 : (int)used;
}

static int expand(struct pf *pf, const char *in, struct buf *out, int depth, char *bad,
		  size_t badlen)
{
	int n;

	if (depth > IMP_EXPAND_MAX)
		return str_copy(bad, badlen, "$ references nested too deep (a loop?)"), -1;
	for (const char *p = in; *p; ) {
		if (*p != '$') {
			if (buf_append_char(out, *p++) < 0)
				return str_copy(bad, badlen, "expansion too long"), -1;
			continue;
		}
		n = expand_ref(pf, p + 1, out, depth, bad, badlen);
		if (n < 0)
			return -1;
		p += 1 + n;
	}
	return 0;
}

/* The expanded value of a main.cf item (malloc'd), or NULL after recording the loss. */
static char *value_of(struct pf *pf, struct imp_item *it)
{
	struct buf b;
	char bad[256], *v = NULL;

	it->used = true;
	buf_init(&b, IMP_LOGICAL_MAX);
	if (expand(pf, it->value, &b, 0, bad, sizeof(bad)) == 0)
		v = xstrdup(buf_cstr(&b));
	else
		imp_lose(pf->im, it->at, it->key, it->value, "cannot expand: %s", bad);
	buf_free(&b);
	return v;
}

/* The same for a string from elsewhere (master.cf -o values). */
static char *expand_str(struct pf *pf, const char *s, char *bad, size_t badlen)
{
	struct buf b;
	char *v = NULL;

	buf_init(&b, IMP_LOGICAL_MAX);
	if (expand(pf, s, &b, 0, bad, badlen) == 0)
		v = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return v;
}

static struct imp_item *get(struct pf *pf, const char *name)
{
	return imp_list_get(&pf->main, name);
}

/* ---- lists of words ---------------------------------------------------------------------- */

/* Split s on commas and white space into at most max words (s is modified). */
static size_t words(char *s, char **w, size_t max)
{
	char *save = NULL;
	size_t n = 0;

	for (char *t = strtok_r(s, ", \t", &save); t && n < max; t = strtok_r(NULL, ", \t", &save))
		w[n++] = t;
	return n;
}

static bool in_set(const char *w, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(w, set[i]) == 0)
			return true;
	return false;
}

/* ---- lookup tables ----------------------------------------------------------------------- */

/* Is q "SELECT col FROM t WHERE col = %s" (a map of every address to itself)? */
static bool identity_query(const char *q)
{
	char col[64], tab[64], col2[64], *lower = xstrdup(q), *o = lower;
	int end = 0;
	bool same;

	for (const char *p = q; *p; p++)
		if (*p != '`')
			*o++ = (char)tolower((unsigned char)*p);
	*o = '\0';
	same = sscanf(lower, " select %63s from %63s where %63[^= ] = %%s %n", col, tab, col2,
		      &end) == 3 && end > 0 && lower[end] == '\0' && strcmp(col, col2) == 0;
	free(lower);
	return same;
}

static bool domain_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-')
			return false;
	return true;
}

/* Postfix's table types whose source is a text file Postern could read as is. */
static const char *indexed_type(const char *spec)
{
	static const char *const types[] = { "hash:", "btree:", "lmdb:", "cdb:", "dbm:",
					     "texthash:" };

	for (size_t i = 0; i < ARRAY_LEN(types); i++)
		if (strncmp(spec, types[i], strlen(types[i])) == 0)
			return spec + strlen(types[i]);
	return NULL;
}

static const char *const sql_param[] = {
	[IMP_DOMAIN] = "domain_query", [IMP_MAILBOX] = "user_query",
	[IMP_ALIAS] = "alias_query", [IMP_SENDER] = "sender_query",
};

/* A lookup parameter (virtual_mailbox_domains ...) into one sql.conf query: every mysql:
 * map becomes a query, several are joined with UNION, literal domains become an IN list. */
static void maps(struct pf *pf, const char *param, enum imp_lookup kind)
{
	struct imp_item *it = get(pf, param);
	char *v, *w[64], *q;
	size_t n;
	struct buf query, literals;
	int rc;

	if (it == NULL || (v = value_of(pf, it)) == NULL)
		return;
	buf_init(&query, IMP_LOGICAL_MAX);
	buf_init(&literals, IMP_LOGICAL_MAX);
	n = words(v, w, ARRAY_LEN(w));
	for (size_t i = 0; i < n; i++) {
		const char *spec = strncmp(w[i], "proxy:", 6) == 0 ? w[i] + 6 : w[i];

		if (strncmp(spec, "mysql:", 6) == 0) {
			rc = imp_mysql_map(pf->im, spec + 6, it->at, kind, &q);
			if (rc < 0)
				break;
			if (rc > 0)
				continue;
			if (kind == IMP_ALIAS && identity_query(q))
				imp_note(pf->im, it->at, "%s: %s maps every mailbox to itself; "
					 "Postern finds mailboxes before the @domain catch-all, so "
					 "it is not needed", param, spec);
			else
				(void)buf_printf(&query, "%s%s", query.len ? " UNION " : "", q);
			free(q);
		} else if (kind == IMP_DOMAIN && domain_name(spec)) {
			(void)buf_printf(&literals, "%s'%s'", literals.len ? ", " : "", spec);
		} else {
			imp_lose(pf->im, it->at, param, w[i], "%s: Postern looks this up in MySQL "
				 "only (sql.conf's %s); move these entries into the database",
				 indexed_type(spec) ? "an indexed file" : "a table type Postern "
				 "does not read", sql_param[kind]);
		}
	}
	if (literals.len)
		(void)buf_printf(&query, "%sSELECT 1 FROM DUAL WHERE %%d IN (%s)",
				 query.len ? " UNION " : "", buf_cstr(&literals));
	if (query.len)
		imp_sql(pf->im, sql_param[kind], buf_cstr(&query), it->at, param);
	buf_free(&query);
	buf_free(&literals);
	free(v);
}

/* ---- main.cf: settings with the same name and meaning in postern.conf ---------------------- */

static const char *const same_params[] = {
	"myhostname", "mydomain", "mydestination", "relayhost", "recipient_delimiter",
	"smtpd_recipient_limit", "smtpd_timeout", "smtpd_hard_error_limit",
	"smtpd_soft_error_limit", "smtpd_error_sleep_time", "smtpd_client_connection_count_limit",
	"disable_vrfy_command", "smtpd_tls_auth_only", "smtpd_sasl_authenticated_header",
	"smtputf8_enable", "queue_minfree", "minimal_backoff_time", "maximal_backoff_time",
	"queue_run_delay", "maximal_queue_lifetime", "bounce_queue_lifetime",
	"default_process_limit", "max_use", "max_idle", "smtp_connect_timeout",
	"default_destination_concurrency_limit", "home_mailbox", "mail_spool_directory",
	"default_privs", "bounce_notice_recipient", "virtual_mailbox_base",
};

/* Settings that describe Postfix itself or what Postern does anyway. */
static const char *const silent_params[] = {
	"compatibility_level", "biff", "append_dot_mydomain", "readme_directory",
	"html_directory", "manpage_directory", "sample_directory", "queue_directory",
	"command_directory", "daemon_directory", "data_directory", "meta_directory",
	"shlib_directory", "mail_owner", "setgid_group", "sendmail_path", "newaliases_path",
	"mailq_path", "alias_database", "smtpd_use_tls", "smtpd_sasl_type", "smtpd_sasl_path",
	"smtpd_sasl_auth_enable", "smtpd_sasl_security_options", "smtpd_sasl_local_domain",
	"broken_sasl_auth_clients", "smtpd_tls_session_cache_database",
	"smtp_tls_session_cache_database", "smtp_use_tls", "smtp_tls_CApath", "smtp_tls_CAfile",
	"smtpd_tls_received_header", "smtpd_tls_loglevel", "smtp_tls_loglevel",
	"smtp_tls_note_starttls_offer", "smtp_sasl_security_options",
	"smtp_sasl_tls_security_options", "inet_protocols", "virtual_minimum_uid",
	"smtp_sasl_auth_enable", "config_directory", "mail_name", "smtpd_tls_mandatory_protocols",
	"smtpd_tls_protocols", "smtp_tls_mandatory_protocols", "smtp_tls_protocols",
	"tls_random_source", "smtpd_tls_CApath", "smtpd_tls_CAfile",
};

/* Restrictions Postern applies by construction (mynetworks or AUTH may relay; unknown
 * recipients of our domains are refused). */
static const char *const builtin_restrictions[] = {
	"permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination",
	"defer_unauth_destination", "reject_unlisted_recipient", "reject_unauth_pipelining",
	"reject_non_fqdn_recipient", "reject_unknown_recipient_domain", "reject",
	"reject_sender_login_mismatch", "reject_authenticated_sender_login_mismatch",
	"reject_known_sender_login_mismatch", "reject_unlisted_sender",
};

/* Does value hold only built-in restrictions? If not, `extra` names the others. */
static bool builtin_policy(const char *value, char *extra, size_t extralen)
{
	char *copy = xstrdup(value), *w[64];
	size_t n = words(copy, w, ARRAY_LEN(w));
	bool ok = true;

	extra[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (in_set(w[i], builtin_restrictions, ARRAY_LEN(builtin_restrictions)))
			continue;
		ok = false;
		if (strlen(extra) + strlen(w[i]) + 2 < extralen) {
			if (*extra)
				strcat(extra, " ");
			strcat(extra, w[i]);
		}
	}
	free(copy);
	return ok;
}

static void restrictions(struct pf *pf, struct imp_item *it)
{
	char extra[512], *v = value_of(pf, it);

	if (v && !builtin_policy(v, extra, sizeof(extra)))
		imp_lose(pf->im, it->at, it->key, v, "Postern's policy is built in (mynetworks or "
			 "AUTH may relay, unknown recipients are refused); no equivalent for: %s",
			 extra);
	free(v);
}

/* A setting copied under name (or its own name) after expansion. */
static void copy_param(struct pf *pf, struct imp_item *it, const char *name)
{
	char *v = value_of(pf, it);

	if (v)
		imp_conf(pf->im, name ? name : it->key, v, it->at, it->key);
	free(v);
}

static void tls_file(struct pf *pf, const char *key, const char *param)
{
	struct imp_item *it = get(pf, key), *prev;
	char *v;

	if (it == NULL || (v = value_of(pf, it)) == NULL)
		return;
	prev = imp_list_get(&pf->im->conf, param);
	if (*v == '\0') {
		free(v);
		return;
	}
	if (prev && strcmp(prev->value, v) != 0)
		imp_lose(pf->im, prev->at, prev->from, prev->value, "Postern has one certificate "
			 "for all services: %s from %s:%d is used", key, it->at.file, it->at.line);
	imp_conf(pf->im, param, v, it->at, key);
	free(v);
}

/* inet_interfaces with inet_protocols: Postern binds both families for "all". */
static void interfaces(struct pf *pf)
{
	struct imp_item *it = get(pf, "inet_interfaces"), *pr = get(pf, "inet_protocols");
	char *v, *p = pr ? value_of(pf, pr) : NULL;
	bool v4only = p && strcmp(p, "ipv4") == 0, v6only = p && strcmp(p, "ipv6") == 0;
	const char *out;

	if (it == NULL || (v = value_of(pf, it)) == NULL) {
		free(p);
		return;
	}
	out = v;
	if (strcmp(v, "all") == 0)
		out = v4only ? "0.0.0.0" : v6only ? "::" : "all";
	else if (strcmp(v, "loopback-only") == 0 || strcmp(v, "localhost") == 0)
		out = v4only ? "127.0.0.1" : v6only ? "::1" : "loopback-only";
	imp_conf(pf->im, "inet_interfaces", out, it->at, pr && out != v ?
		 "inet_interfaces, inet_protocols" : "inet_interfaces");
	free(v);
	free(p);
}

static void size_limit(struct pf *pf)
{
	struct imp_item *it = get(pf, "message_size_limit");
	char *v;

	if (it == NULL || (v = value_of(pf, it)) == NULL)
		return;
	if (strcmp(v, "0") == 0)
		imp_lose(pf->im, it->at, it->key, v, "Postern needs a limit (SIZE); its default "
			 "10240000 is used");
	else
		imp_conf(pf->im, "message_size_limit", v, it->at, it->key);
	free(v);
}

static void banner(struct pf *pf)
{
	struct imp_item *it = get(pf, "smtpd_banner");

	if (it == NULL)
		return;
	if (strstr(it->value, "$mail_name") || strstr(it->value, "${mail_name}")) {
		it->used = true;
		imp_lose(pf->im, it->at, it->key, it->value, "names the program ($mail_name): "
			 "Postern's own banner is used");
		return;
	}
	copy_param(pf, it, NULL);
}

/* myorigin = /etc/mailname: the file's first line. */
static void origin(struct pf *pf)
{
	struct imp_item *it = get(pf, "myorigin");
	struct imp_text t;
	char path[4096], *v;

	if (it == NULL || (v = value_of(pf, it)) == NULL)
		return;
	if (v[0] == '/') {
		bool failed = pf->im->failed;

		imp_source_path(pf->im, v, path, sizeof(path));
		if (imp_text_read(pf->im, path, true, &t) == 0 && t.nlines > 0 &&
		    *imp_trim(t.line[0]))
			imp_conf(pf->im, "myorigin", imp_trim(t.line[0]), it->at, it->key);
		else
			imp_lose(pf->im, it->at, it->key, v, "cannot read the name from the file");
		if (t.data)
			imp_text_free(&t);
		pf->im->failed = failed;	/* an unreadable /etc/mailname is no bad input */
	} else {
		imp_conf(pf->im, "myorigin", v, it->at, it->key);
	}
	free(v);
}

static void networks(struct pf *pf)
{
	struct imp_item *it = get(pf, "mynetworks");
	char *v;

	if (it == NULL || (v = value_of(pf, it)) == NULL)
		return;
	if (strchr(v, '/') && (strstr(v, ":/") || v[0] == '/') && strchr(v, '[') == NULL &&
	    strspn(v, "0123456789./, \t") != strlen(v))
		imp_lose(pf->im, it->at, it->key, v, "Postern's mynetworks is a list of networks, "
			 "not a file or table: list them here");
	else
		imp_conf(pf->im, "mynetworks", v, it->at, it->key);
	free(v);
}

/* smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd: Postern reads the text file
 * that postmap indexed, whose lines have the same format. */
static void relay_password(struct pf *pf)
{
	struct imp_item *it = get(pf, "smtp_sasl_password_maps");
	struct imp_item *en = get(pf, "smtp_sasl_auth_enable");
	char *v, path[4096];
	const char *file;
	struct stat st;

	if (it == NULL || (v = value_of(pf, it)) == NULL)
		return;
	file = indexed_type(v);
	if (en == NULL || strcmp(en->value, "yes") != 0)
		imp_lose(pf->im, it->at, it->key, v, "smtp_sasl_auth_enable is not yes: Postfix "
			 "did not use it");
	else if (file == NULL || strchr(file, ',') || strchr(file, ' '))
		imp_lose(pf->im, it->at, it->key, v, "Postern reads one text file of \"[host]:port "
			 "user:password\" lines (smtp_sasl_password_file)");
	else {
		imp_source_path(pf->im, file, path, sizeof(path));
		if (stat(path, &st) < 0)
			imp_lose(pf->im, it->at, it->key, v, "its source text file %s is missing "
				 "(only the indexed .db exists?)", file);
		else
			imp_conf(pf->im, "smtp_sasl_password_file", file, it->at, it->key);
	}
	free(v);
}

static void aliases(struct pf *pf)
{
	struct imp_item *it = get(pf, "alias_maps");
	char *v, *w[16];
	const char *file;
	size_t n;

	if (it == NULL || (v = value_of(pf, it)) == NULL)
		return;
	n = words(v, w, ARRAY_LEN(w));
	for (size_t i = 0; i < n; i++) {
		file = indexed_type(w[i]);
		if (file && !imp_conf_has(pf->im, "aliases_file"))
			imp_conf(pf->im, "aliases_file", file, it->at, it->key);
		else
			imp_lose(pf->im, it->at, it->key, w[i], "Postern reads one aliases(5) text "
				 "file (aliases_file)");
	}
	free(v);
}

static void smtp_tls_level(struct pf *pf)
{
	static const char *const ok[] = { "none", "may", "encrypt", "verify" };
	struct imp_item *it = get(pf, "smtp_tls_security_level");
	char *v;

	if (it == NULL || (v = value_of(pf, it)) == NULL)
		return;
	if (in_set(v, ok, ARRAY_LEN(ok)))
		imp_conf(pf->im, "smtp_tls_security_level", v, it->at, it->key);
	else
		imp_lose(pf->im, it->at, it->key, v, "Postern has none, may, encrypt and verify");
	free(v);
}

/* virtual_uid_maps = static:5000 */
static void virtual_ids(struct pf *pf)
{
	static const char *const keys[] = { "virtual_uid_maps", "virtual_gid_maps" };

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		struct imp_item *it = get(pf, keys[i]);
		char *v, field[300];

		if (it == NULL || (v = value_of(pf, it)) == NULL)
			continue;
		if (strncmp(v, "static:", 7) == 0) {
			(void)str_fmt(field, sizeof(field), "%s=%s", i ? "gid" : "uid", v + 7);
			if (i == 0 || pf->im->vmail_user)
				imp_userdb_fields(pf->im, field, it->at);
		} else {
			imp_lose(pf->im, it->at, it->key, v, "Postern's mailboxes all belong to "
				 "vmail_owner");
		}
		free(v);
	}
}

static void misc_main(struct pf *pf)
{
	struct imp_item *it;

	if ((it = get(pf, "maillog_file")) != NULL)
		copy_param(pf, it, "log_file");
	if ((it = get(pf, "smtpd_relay_restrictions")) != NULL)
		restrictions(pf, it);
	if ((it = get(pf, "smtpd_recipient_restrictions")) != NULL)
		restrictions(pf, it);
	if ((it = get(pf, "virtual_transport")) != NULL) {
		it->used = true;
		if (strncmp(it->value, "lmtp:", 5) && strcmp(it->value, "virtual") &&
		    strncmp(it->value, "dovecot", 7))
			imp_lose(pf->im, it->at, it->key, it->value, "Postern delivers virtual "
				 "mailboxes itself (postern-virtual)");
	}
	if ((it = get(pf, "smtpd_tls_security_level")) != NULL) {
		it->used = true;
		if (strcmp(it->value, "may") && strcmp(it->value, "none"))
			imp_lose(pf->im, it->at, it->key, it->value, "Postern offers STARTTLS on "
				 "port 25 and does not require it (RFC 3207)");
	}
	if ((it = get(pf, "mailbox_size_limit")) != NULL && strcmp(it->value, "0") == 0)
		it->used = true;
	if ((it = get(pf, "smtpd_sender_login_maps")) != NULL)
		maps(pf, "smtpd_sender_login_maps", IMP_SENDER);
}

static void main_cf(struct pf *pf)
{
	struct imp_item *it;

	for (size_t i = 0; i < ARRAY_LEN(same_params); i++)
		if ((it = get(pf, same_params[i])) != NULL)
			copy_param(pf, it, NULL);
	for (size_t i = 0; i < ARRAY_LEN(silent_params); i++)
		if ((it = get(pf, silent_params[i])) != NULL)
			it->used = true;
	interfaces(pf);
	size_limit(pf);
	banner(pf);
	origin(pf);
	networks(pf);
	relay_password(pf);
	aliases(pf);
	smtp_tls_level(pf);
	virtual_ids(pf);
	tls_file(pf, "smtpd_tls_cert_file", "tls_cert_file");
	tls_file(pf, "smtpd_tls_key_file", "tls_key_file");
	maps(pf, "virtual_mailbox_domains", IMP_DOMAIN);
	maps(pf, "virtual_mailbox_maps", IMP_MAILBOX);
	maps(pf, "virtual_alias_maps", IMP_ALIAS);
	misc_main(pf);
}

/* ---- master.cf --------------------------------------------------------------------------- */

enum role { ROLE_SMTP, ROLE_SUBMISSION, ROLE_SMTPS, NROLES };

static const char *const role_param[NROLES] = {
	"smtp_listen", "submission_listen", "smtps_listen",
};

struct master {
	struct buf items[NROLES];
	struct imp_where first[NROLES];		/* first active service of each role */
	struct imp_where commented[NROLES];	/* a commented-out service line */
	bool seen;
};

/* A -o override: name=value (from "-o name=value" or "-o { name = value }"). */
struct override {
	char *name, *value;
};

/* Port of a master.cf service name: "smtp", "submission", "587", "127.0.0.1:10587". */
static int service_port(const char *name, char *host, size_t hostlen)
{
	const char *colon = strrchr(name, ':'), *svc = colon ? colon + 1 : name;
	struct servent *se;
	long long port;

	host[0] = '\0';
	if (colon) {
		size_t len = (size_t)(colon - name);

		if (len >= hostlen)
			return -1;
		memcpy(host, name, len);
		host[len] = '\0';
		if (strcmp(host, "localhost") == 0)
			(void)str_copy(host, hostlen, "127.0.0.1");
	}
	if (str_to_ll(svc, 1, 65535, &port) == 0)
		return (int)port;
	if (strcmp(svc, "submissions") == 0 || strcmp(svc, "smtps") == 0)
		return 465;
	se = getservbyname(svc, "tcp");
	return se ? ntohs((uint16_t)se->s_port) : -1;
}

static const char *override_of(const struct override *o, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(o[i].name, name) == 0)
			return o[i].value;
	return NULL;
}

static enum role role_of(const char *name, int port, const struct override *o, size_t n)
{
	const char *wrap = override_of(o, n, "smtpd_tls_wrappermode");
	const char *sasl = override_of(o, n, "smtpd_sasl_auth_enable");
	const char *level = override_of(o, n, "smtpd_tls_security_level");

	if (wrap && strcmp(wrap, "yes") == 0)
		return ROLE_SMTPS;
	if (port == 587 || strcmp(name, "submission") == 0)
		return ROLE_SUBMISSION;
	if (port == 465)
		return ROLE_SMTPS;
	if (sasl && strcmp(sasl, "yes") == 0 && level && strcmp(level, "encrypt") == 0)
		return ROLE_SUBMISSION;
	return ROLE_SMTP;
}

/* Is this -o override what Postern's listener of role does anyway? */
static bool override_builtin(enum role r, const char *name, const char *value)
{
	static const char *const any_role[] = {
		"syslog_name", "smtpd_sasl_type", "smtpd_sasl_path", "milter_macro_daemon_name",
		"smtpd_tls_wrappermode",
	};
	char extra[256];

	if (in_set(name, any_role, ARRAY_LEN(any_role)))
		return strcmp(name, "smtpd_tls_wrappermode") != 0 || r == ROLE_SMTPS;
	if (r == ROLE_SMTP)
		return false;
	if (strcmp(name, "smtpd_sasl_auth_enable") == 0 || strcmp(name, "smtpd_tls_auth_only")
	    == 0)
		return strcmp(value, "yes") == 0;
	if (strcmp(name, "smtpd_tls_security_level") == 0)
		return strcmp(value, "encrypt") == 0 || r == ROLE_SMTPS;
	if (strcmp(name, "smtpd_reject_unlisted_recipient") == 0)
		return true;
	if (strstr(name, "_restrictions") != NULL)
		return builtin_policy(value, extra, sizeof(extra));
	return false;
}

/* Collect the -o overrides of a service's arguments (tokens after the command). */
static size_t overrides(char **tok, size_t ntok, struct override *o, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ntok && n < max; i++) {
		char *eq;

		if (strcmp(tok[i], "-o") != 0 || i + 1 >= ntok)
			continue;
		i++;
		if (strcmp(tok[i], "{") == 0 && i + 3 < ntok && strcmp(tok[i + 2], "=") == 0) {
			/* -o { name = value ... } */
			o[n].name = tok[i + 1];
			o[n].value = tok[i + 3];
			n++;
			while (i < ntok && strcmp(tok[i], "}") != 0)
				i++;
			continue;
		}
		eq = strchr(tok[i], '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		o[n].name = tok[i];
		o[n].value = eq + 1;
		n++;
	}
	return n;
}

static void one_service(struct pf *pf, struct master *m, char **tok, size_t ntok,
			struct imp_where at)
{
	struct override o[64];
	size_t no = overrides(tok + 8, ntok - 8, o, ARRAY_LEN(o));
	char host[256], item[300], bad[256], *v;
	int port = service_port(tok[0], host, sizeof(host));
	enum role r;

	if (strcmp(tok[7], "smtpd") != 0 && strcmp(tok[7], "postscreen") != 0) {
		imp_lose(pf->im, at, tok[0], tok[7], "an inet service Postern does not have");
		return;
	}
	if (port < 0) {
		imp_lose(pf->im, at, tok[0], "inet smtpd", "unknown service name or port");
		return;
	}
	if (strcmp(tok[7], "postscreen") == 0)
		imp_note(pf->im, at, "postscreen: Postern's smtpd answers port %d itself", port);
	r = strcmp(tok[7], "postscreen") == 0 ? ROLE_SMTP : role_of(tok[0], port, o, no);
	for (size_t i = 0; i < no; i++) {
		v = expand_str(pf, o[i].value, bad, sizeof(bad));
		if (v == NULL)
			imp_lose(pf->im, at, o[i].name, o[i].value, "cannot expand: %s", bad);
		else if (!override_builtin(r, o[i].name, v))
			imp_lose(pf->im, at, o[i].name, v, "per-listener override of %s; Postern's "
				 "%s listener has fixed rules (%s)", tok[0], role_param[r] + 0,
				 r == ROLE_SMTP ? "STARTTLS offered, AUTH after TLS" :
				 "TLS and AUTH required");
		free(v);
	}
	if (host[0] && strchr(host, ':') && host[0] != '[')
		(void)str_fmt(item, sizeof(item), "[%s]:%d", host, port);
	else if (host[0])
		(void)str_fmt(item, sizeof(item), "%s:%d", host, port);
	else
		(void)str_fmt(item, sizeof(item), "%d", port);
	(void)buf_printf(&m->items[r], "%s%s", m->items[r].len ? ", " : "", item);
	if (m->first[r].file == NULL)
		m->first[r] = at;
}

/* Split a logical master.cf line into tokens (modifies s). */
static size_t tokens(char *s, char **tok, size_t max)
{
	char *save = NULL;
	size_t n = 0;

	for (char *t = strtok_r(s, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
		tok[n++] = t;
	return n;
}

/* "#submission inet n - y - - smtpd": remember where a disabled service was. */
static void commented_service(struct master *m, const char *line, struct imp_where at)
{
	char copy[512], *tok[8], host[256];
	size_t n;
	int port;

	line += strspn(line, "# \t");
	if (str_copy(copy, sizeof(copy), line) < 0)
		return;
	n = tokens(copy, tok, ARRAY_LEN(tok));
	if (n < 8 || strcmp(tok[1], "inet") != 0 || strcmp(tok[7], "smtpd") != 0)
		return;
	port = service_port(tok[0], host, sizeof(host));
	if (port == 587 && m->commented[ROLE_SUBMISSION].file == NULL)
		m->commented[ROLE_SUBMISSION] = at;
	else if (port == 465 && m->commented[ROLE_SMTPS].file == NULL)
		m->commented[ROLE_SMTPS] = at;
}

static int master_line(struct pf *pf, struct master *m, char *s, struct imp_where at)
{
	char *tok[256];
	size_t n = tokens(s, tok, ARRAY_LEN(tok));

	if (n < 8)
		return imp_error(pf->im, at, "expected 8 fields (service type private unpriv "
				 "chroot wakeup maxproc command)");
	if (strcmp(tok[1], "inet") == 0)
		one_service(pf, m, tok, n, at);
	return 0;
}

static void master_results(struct pf *pf, struct master *m, const char *file)
{
	for (int r = 0; r < NROLES; r++) {
		if (m->items[r].len)
			imp_conf(pf->im, role_param[r], buf_cstr(&m->items[r]), m->first[r],
				 "master.cf inet smtpd service");
		else if (m->commented[r].file)
			imp_conf(pf->im, role_param[r], "", m->commented[r],
				 "master.cf: commented out");
		else
			imp_conf(pf->im, role_param[r], "", (struct imp_where){ file, 0 },
				 "master.cf: no such service");
	}
}

static int master_cf(struct pf *pf, const char *dir)
{
	struct master m = { 0 };
	struct imp_text t;
	struct buf logical;
	char path[4096];
	struct imp_where at = { NULL, 0 };
	int rc;

	if (str_fmt(path, sizeof(path), "%s/master.cf", dir) < 0)
		return imp_error(pf->im, (struct imp_where){ dir, 0 }, "path too long");
	for (int r = 0; r < NROLES; r++)
		buf_init(&m.items[r], IMP_LOGICAL_MAX);
	rc = imp_text_read(pf->im, path, true, &t);
	if (rc == 1) {
		imp_note(pf->im, (struct imp_where){ imp_intern(pf->im, path), 0 },
			 "no master.cf: Postern's default listeners are used");
	}
	if (rc != 0) {
		for (int r = 0; r < NROLES; r++)
			buf_free(&m.items[r]);
		return rc < 0 ? -1 : 0;
	}
	buf_init(&logical, IMP_LOGICAL_MAX);
	for (size_t i = 0; i <= t.nlines && rc == 0; i++) {
		const char *line = i < t.nlines ? t.line[i] : "";
		const char *first = line + strspn(line, " \t");

		if (*first == '#') {
			commented_service(&m, first, (struct imp_where){ t.name, (int)i + 1 });
			continue;
		}
		if (*first != '\0' && first != line && logical.len) {
			if (buf_append_char(&logical, ' ') < 0 || buf_append_str(&logical, first) < 0)
				rc = imp_error(pf->im, at, "logical line too long");
			continue;
		}
		if (*first != '\0' && first != line)
			rc = imp_error(pf->im, (struct imp_where){ t.name, (int)i + 1 },
				       "continuation line without a service before it");
		if (rc == 0 && logical.len) {
			char *copy = xstrdup(buf_cstr(&logical));

			rc = master_line(pf, &m, copy, at);
			free(copy);
			buf_reset(&logical);
		}
		if (rc == 0 && *first != '\0') {
			at = (struct imp_where){ t.name, (int)i + 1 };
			if (buf_append_str(&logical, first) < 0)
				rc = imp_error(pf->im, at, "logical line too long");
		}
	}
	if (rc == 0)
		master_results(pf, &m, t.name);
	for (int r = 0; r < NROLES; r++)
		buf_free(&m.items[r]);
	buf_free(&logical);
	imp_text_free(&t);
	return rc;
}

/* ---- the mailbox templates and the queries both sides need ------------------------------- */

/* virtual_mailbox_base: the fixed part of the home template before the first variable. */
static void mailbox_base(struct import *im, const char *home)
{
	struct imp_item *base = imp_list_get(&im->conf, "virtual_mailbox_base");
	char prefix[4096], *pct, *slash;
	size_t blen;

	if (base && *base->value) {
		blen = strlen(base->value);
		if (strncmp(home, base->value, blen) == 0 && home[blen] == '/' && home[blen + 1])
			return;		/* Postfix's base holds the homes: keep it */
	}
	(void)str_copy(prefix, sizeof(prefix), home);
	pct = strchr(prefix, '%');
	if (pct)
		*pct = '\0';
	slash = strrchr(prefix, '/');
	if (slash)
		*slash = '\0';
	if (prefix[0] != '/' || prefix[1] == '\0') {
		imp_lose(im, im->home_at, "home", home, "Postern needs the homes below one "
			 "directory (virtual_mailbox_base) other than /");
		return;
	}
	imp_conf(im, "virtual_mailbox_base", prefix, im->home_at, "home (its fixed part)");
}

static void mail_templates(struct import *im)
{
	const char *home = im->home_tmpl, *mail = im->mail_tmpl;
	size_t hlen = home ? strlen(home) : 0;
	char rel[4200];

	if (mail && mail[0] == '~') {
		if (home == NULL) {
			imp_lose(im, im->mail_at, "mail_location", mail, "relative to a home, but "
				 "the userdb gives no home");
			return;
		}
		(void)str_copy(rel, sizeof(rel), strcmp(mail, "~") == 0 ? "~/" : mail);
	} else if (mail && home && strncmp(mail, home, hlen) == 0 &&
		   (mail[hlen] == '\0' || mail[hlen] == '/')) {
		(void)str_fmt(rel, sizeof(rel), "~/%s", mail[hlen] ? mail + hlen + 1 : "");
	} else if (mail) {
		if (home)
			imp_note(im, im->home_at, "the Maildir %s is outside the home %s: the "
				 "Maildir becomes the home (a session is confined to its home)",
				 mail, home);
		home = mail;
		(void)str_copy(rel, sizeof(rel), "~/");
		im->home_at = im->mail_at;
	} else if (home) {
		imp_note(im, im->home_at, "no mail_location: Postern uses ~/Maildir below the home");
		(void)str_copy(rel, sizeof(rel), "~/Maildir");
	} else {
		return;
	}
	mailbox_base(im, home);
	imp_conf(im, "virtual_home", home, im->home_at, "home");
	imp_conf(im, "virtual_mail", rel, im->mail_tmpl ? im->mail_at : im->home_at,
		 "mail_location");
}

/* Who may send as an address: Postfix's smtpd_sender_login_maps, or else the mailbox
 * itself and whoever its aliases lead to (Postern's default rule on the imported tables). */
static void sender_rule(struct import *im, struct pf *pf)
{
	struct imp_item *user = imp_list_get(&im->sql, "user_query");
	struct imp_item *alias = imp_list_get(&im->sql, "alias_query");
	char *q = NULL;

	if (imp_list_get(&im->sql, "sender_query") || user == NULL || alias == NULL)
		return;
	if (asprintf(&q, "SELECT %%s FROM (%s) AS postern_mailbox UNION %s", user->value,
		     alias->value) < 0)
		return;
	imp_sql(im, "sender_query", q, user->at, "virtual_mailbox_maps + virtual_alias_maps");
	free(q);
	imp_note(im, user->at, "Postfix had no smtpd_sender_login_maps: Postern checks that "
		 "the envelope sender belongs to the login (a mailbox, or an alias leading to "
		 "it); set smtpd_sender_login_check = no to allow any sender");
	(void)pf;
}

static void vmail_owner(struct import *im)
{
	if (im->vmail_user == NULL)
		return;
	if (getpwnam(im->vmail_user) == NULL)
		imp_note(im, im->vmail_at, "user %s does not exist on this host", im->vmail_user);
	imp_conf(im, "vmail_owner", im->vmail_user, im->vmail_at, "uid");
}

static void leftovers(struct pf *pf)
{
	for (size_t i = 0; i < pf->main.n; i++)
		if (!pf->main.v[i].used)
			imp_lose(pf->im, pf->main.v[i].at, pf->main.v[i].key, pf->main.v[i].value,
				 "no Postern equivalent");
}

int imp_postfix(struct import *im, const char *dir)
{
	struct pf pf = { .im = im };
	struct imp_text t;
	char path[4096];
	int rc;

	if (str_fmt(path, sizeof(path), "%s/main.cf", dir) < 0)
		return imp_error(im, (struct imp_where){ dir, 0 }, "path too long");
	if (imp_text_read(im, path, false, &t) < 0)
		return -1;
	pf.main_name = t.name;
	rc = imp_parse_kv(im, &t, IMP_JOIN_INDENT, &pf.main);
	imp_text_free(&t);
	if (rc == 0)
		rc = master_cf(&pf, dir);	/* first: -o values mark $name helpers used */
	if (rc == 0) {
		main_cf(&pf);
		rc = im->failed ? -1 : 0;
	}
	if (rc == 0) {
		mail_templates(im);
		vmail_owner(im);
		sender_rule(im, &pf);
		leftovers(&pf);
	}
	imp_list_free(&pf.main);
	return rc;
}
