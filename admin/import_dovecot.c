/*
 * import_dovecot.c: the Dovecot side of `postern import` (import.h): dovecot.conf with its
 * `!include`/`!include_try` files (globs relative to the including file, at most
 * IMP_DEPTH_MAX deep and IMP_FILES_MAX files), nested `name [arg] { }` sections and
 * backslash-continued lines; then what Postern takes from it: the SQL passdb (through
 * dovecot-sql.conf.ext), the userdb fields (uid, gid, home), mail_location, the IMAP and
 * POP3 listeners, TLS files, plaintext-auth policy and the POP3 UIDL format.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "util.h"

#define SECT_DEPTH_MAX 16

/* One setting, in the section path it appeared in ("" top level, "passdb#1",
 * "service imap-login/inet_listener imaps"). */
struct dv_entry {
	char *sect, *key, *value;
	struct imp_where at;
	bool used;
};

struct dv {
	struct import *im;
	struct dv_entry *e;
	size_t n, cap;
	char *stack[SECT_DEPTH_MAX];	/* open section paths */
	int depth;
	int unnamed;			/* counter that names unnamed sections */
};

static void dv_add(struct dv *dv, const char *key, const char *value, struct imp_where at)
{
	struct dv_entry *e;

	if (dv->n == dv->cap) {
		dv->cap = dv->cap ? dv->cap * 2 : 64;
		dv->e = xreallocarray(dv->e, dv->cap, sizeof(*dv->e));
	}
	e = &dv->e[dv->n++];
	e->sect = xstrdup(dv->depth ? dv->stack[dv->depth - 1] : "");
	e->key = xstrdup(key);
	e->value = xstrdup(value);
	e->at = at;
	e->used = false;
}

/* Remove surrounding double quotes, in place. */
static char *unquote(char *s)
{
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s[len - 1] = '\0';
		return s + 1;
	}
	return s;
}

static int dv_file(struct dv *dv, const char *path, int depth, bool try_only,
		   struct imp_where from);

/* !include / !include_try: a path or glob relative to the including file's directory. */
static int dv_include(struct dv *dv, const char *arg, const char *including, int depth,
		      bool try_only, struct imp_where at)
{
	char pattern[4096], dir[4096], *slash;
	glob_t g;
	int rc = 0, grc;

	if (depth >= IMP_DEPTH_MAX)
		return imp_error(dv->im, at, "!include nested more than %d deep (does a file "
				 "include itself?)", IMP_DEPTH_MAX);
	(void)str_copy(dir, sizeof(dir), including);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		(void)str_copy(dir, sizeof(dir), ".");
	if (arg[0] == '/')
		imp_source_path(dv->im, arg, pattern, sizeof(pattern));
	else if (str_fmt(pattern, sizeof(pattern), "%s/%s", dir, arg) < 0)
		return imp_error(dv->im, at, "include path too long");
	grc = glob(pattern, 0, NULL, &g);
	if (grc == GLOB_NOMATCH) {
		if (try_only || strpbrk(arg, "*?[") != NULL)
			return 0;
		return imp_error(dv->im, at, "!include %s: no such file", arg);
	}
	if (grc != 0)
		return imp_error(dv->im, at, "!include %s: cannot expand", arg);
	for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
		rc = dv_file(dv, g.gl_pathv[i], depth + 1, try_only, at);
	globfree(&g);
	return rc;
}

static int dv_open_section(struct dv *dv, char *head, struct imp_where at)
{
	char path[1024], *name, *arg;
	const char *parent = dv->depth ? dv->stack[dv->depth - 1] : "";

	if (dv->depth >= SECT_DEPTH_MAX)
		return imp_error(dv->im, at, "sections nested more than %d deep", SECT_DEPTH_MAX);
	name = imp_trim(head);
	arg = strpbrk(name, " \t");
	if (arg) {
		*arg++ = '\0';
		arg = unquote(imp_trim(arg));
	}
	if (*name == '\0')
		return imp_error(dv->im, at, "'{' without a section name");
	if (str_fmt(path, sizeof(path), "%s%s%s%s%s", parent, *parent ? "/" : "", name,
		    arg && *arg ? " " : "#", arg && *arg ? arg : "") < 0)
		return imp_error(dv->im, at, "section path too long");
	if (!(arg && *arg)) {	/* unnamed (passdb, userdb): number them */
		size_t len = strlen(path);

		(void)str_fmt(path + len, sizeof(path) - len, "%d", ++dv->unnamed);
	}
	dv->stack[dv->depth++] = xstrdup(path);
	return 0;
}

/* One logical line. */
static int dv_line(struct dv *dv, char *s, const char *file, int depth, struct imp_where at)
{
	size_t len = strlen(s);
	char *eq;

	if (strncmp(s, "!include_try ", 13) == 0 || strncmp(s, "!include ", 9) == 0) {
		bool try_only = s[8] == '_';

		return dv_include(dv, unquote(imp_trim(s + (try_only ? 13 : 9))), file, depth,
				  try_only, at);
	}
	if (strcmp(s, "}") == 0) {
		if (dv->depth == 0)
			return imp_error(dv->im, at, "'}' without an open section");
		free(dv->stack[--dv->depth]);
		return 0;
	}
	eq = strchr(s, '=');
	if (len > 0 && s[len - 1] == '{' && (eq == NULL || eq > strchr(s, '{'))) {
		s[len - 1] = '\0';
		return dv_open_section(dv, s, at);
	}
	if (eq == NULL || eq == s)
		return imp_error(dv->im, at, "expected 'key = value', 'section {', '}' or "
				 "'!include'");
	*eq = '\0';
	dv_add(dv, imp_trim(s), unquote(imp_trim(eq + 1)), at);
	return 0;
}

static int dv_file(struct dv *dv, const char *path, int depth, bool try_only,
		   struct imp_where from)
{
	struct imp_text t;
	struct buf logical;
	int start_depth = dv->depth, rc, first = 0;

	rc = imp_text_read(dv->im, path, try_only, &t);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	buf_init(&logical, IMP_LOGICAL_MAX);
	for (size_t i = 0; i < t.nlines && rc == 0; i++) {
		char *line = imp_trim(t.line[i]);
		size_t len = strlen(line);
		bool more = len > 0 && line[len - 1] == '\\';

		if (logical.len == 0 && (*line == '#' || *line == '\0'))
			continue;
		if (logical.len == 0)
			first = (int)i + 1;
		if (buf_append(&logical, line, more ? len - 1 : len) < 0) {
			rc = imp_error(dv->im, (struct imp_where){ t.name, first },
				       "logical line longer than %d bytes", IMP_LOGICAL_MAX);
			break;
		}
		if (more && i + 1 < t.nlines) {
			(void)buf_append_char(&logical, ' ');
			continue;
		}
		char *copy = xstrdup(buf_cstr(&logical));

		buf_reset(&logical);
		rc = dv_line(dv, imp_trim(copy), t.name, depth,
			     (struct imp_where){ t.name, first });
		free(copy);
	}
	if (rc == 0 && dv->depth > start_depth)
		rc = imp_error(dv->im, (struct imp_where){ t.name, (int)t.nlines },
			       "section '%s' not closed with '}'", dv->stack[dv->depth - 1]);
	buf_free(&logical);
	imp_text_free(&t);
	(void)from;
	return rc;
}

/* ---- what Postern takes ------------------------------------------------------------------ */

static struct dv_entry *dv_get(struct dv *dv, const char *sect, const char *key)
{
	struct dv_entry *found = NULL;

	for (size_t i = 0; i < dv->n; i++)	/* the last one wins, as in Dovecot */
		if (strcmp(dv->e[i].sect, sect) == 0 && strcmp(dv->e[i].key, key) == 0)
			found = &dv->e[i];
	if (found)
		found->used = true;
	return found;
}

/* Mark every earlier duplicate of a used entry as used too. */
static void dv_mark_duplicates(struct dv *dv)
{
	for (size_t i = 0; i < dv->n; i++)
		for (size_t j = i + 1; j < dv->n && !dv->e[i].used; j++)
			if (dv->e[j].used && strcmp(dv->e[i].sect, dv->e[j].sect) == 0 &&
			    strcmp(dv->e[i].key, dv->e[j].key) == 0)
				dv->e[i].used = true;
}

static bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += len)
		if ((p == list || p[-1] == ' ' || p[-1] == ',' || p[-1] == '\t') &&
		    (p[len] == '\0' || p[len] == ' ' || p[len] == ',' || p[len] == '\t'))
			return true;
	return false;
}

/* The ports of one login service's inet_listener sections into NAME_listen. */
static void dv_listener(struct dv *dv, const char *service, const char *listener,
			const char *param, const char *listen, bool enabled)
{
	char sect[256], item[300];
	struct dv_entry *port, *addr;
	const char *host = listen;

	(void)str_fmt(sect, sizeof(sect), "service %s/inet_listener %s", service, listener);
	port = dv_get(dv, sect, "port");
	addr = dv_get(dv, sect, "address");
	(void)dv_get(dv, sect, "ssl");
	if (!enabled) {
		imp_conf(dv->im, param, "", port ? port->at : (struct imp_where){ NULL, 0 },
			 "protocols (not enabled)");
		return;
	}
	if (port == NULL)
		return;		/* Dovecot's default port, which is Postern's too */
	if (addr)
		host = addr->value;
	if (strcmp(port->value, "0") == 0)
		item[0] = '\0';
	else if (host == NULL || *host == '\0' || strcmp(host, "*") == 0 ||
		 strcmp(host, "*, ::") == 0 || strcmp(host, "*,::") == 0)
		(void)str_copy(item, sizeof(item), port->value);
	else if (strchr(host, ',') || strchr(host, ' '))
		(void)str_copy(item, sizeof(item), "(several addresses)");
	else if (strchr(host, ':'))
		(void)str_fmt(item, sizeof(item), "[%s]:%s", host, port->value);
	else
		(void)str_fmt(item, sizeof(item), "%s:%s", host, port->value);
	if (strcmp(item, "(several addresses)") == 0) {
		imp_lose(dv->im, port->at, "listen", host, "one address per listener here: "
			 "write %s = ADDR:PORT, ... by hand", param);
		return;
	}
	imp_conf(dv->im, param, item, port->at, sect);
}

static void dv_listeners(struct dv *dv)
{
	struct dv_entry *protocols = dv_get(dv, "", "protocols");
	struct dv_entry *listen = dv_get(dv, "", "listen");
	const char *l = listen ? listen->value : NULL;
	bool imap = !protocols || has_word(protocols->value, "imap");
	bool pop3 = !protocols || has_word(protocols->value, "pop3");

	dv_listener(dv, "imap-login", "imap", "imap_listen", l, imap);
	dv_listener(dv, "imap-login", "imaps", "imaps_listen", l, imap);
	dv_listener(dv, "pop3-login", "pop3", "pop3_listen", l, pop3);
	dv_listener(dv, "pop3-login", "pop3s", "pop3s_listen", l, pop3);
	if (protocols && !pop3 && !imp_conf_has(dv->im, "pop3_listen")) {
		imp_conf(dv->im, "pop3_listen", "", protocols->at, "protocols (no pop3)");
		imp_conf(dv->im, "pop3s_listen", "", protocols->at, "protocols (no pop3)");
	}
	if (protocols && !imap && !imp_conf_has(dv->im, "imap_listen")) {
		imp_conf(dv->im, "imap_listen", "", protocols->at, "protocols (no imap)");
		imp_conf(dv->im, "imaps_listen", "", protocols->at, "protocols (no imap)");
	}
}

/* mail_location = maildir:PATH[:KEY=VALUE...] */
static void dv_mail_location(struct dv *dv)
{
	struct dv_entry *e = dv_get(dv, "", "mail_location");
	char *copy, *opts, *save = NULL;

	if (e == NULL || *e->value == '\0')
		return;
	if (strncmp(e->value, "maildir:", 8) != 0) {
		imp_lose(dv->im, e->at, e->key, e->value, "Postern stores mail in Maildir only: "
			 "convert the mailboxes first (doveadm sync -u USER maildir:...)");
		return;
	}
	copy = xstrdup(e->value + 8);
	opts = strchr(copy, ':');
	if (opts)
		*opts++ = '\0';
	{
		char field[4200];

		(void)str_fmt(field, sizeof(field), "mail=%s", copy);
		imp_userdb_fields(dv->im, field, e->at);
	}
	for (char *o = opts ? strtok_r(opts, ":", &save) : NULL; o; o = strtok_r(NULL, ":",
										     &save)) {
		if (strncmp(o, "INDEX=", 6) == 0 || strncmp(o, "CONTROL=", 8) == 0 ||
		    strncmp(o, "VOLATILEDIR=", 12) == 0)
			imp_note(dv->im, e->at, "%s: Postern keeps its own index files in the "
				 "Maildir; Dovecot's are not read", o);
		else
			imp_lose(dv->im, e->at, e->key, o, "Postern uses the Maildir++ layout "
				 "(folders as .Name directories)");
	}
	free(copy);
}

static void dv_passdb(struct dv *dv, const char *sect)
{
	struct dv_entry *driver = dv_get(dv, sect, "driver");
	struct dv_entry *args = dv_get(dv, sect, "args");
	struct imp_where uq_at;
	char *uq = NULL;

	if (driver && strcmp(driver->value, "sql") == 0 && args) {
		if (imp_dovecot_sql(dv->im, args->value, args->at, &uq, &uq_at) < 0)
			return;
		free(uq);	/* the userdb decides whether the user_query matters */
	} else if (driver) {
		imp_lose(dv->im, driver->at, "passdb driver", driver->value, "Postern checks "
			 "passwords with sql.conf's password_query only");
	}
}

static void dv_userdb(struct dv *dv, const char *sect)
{
	struct dv_entry *driver = dv_get(dv, sect, "driver");
	struct dv_entry *args = dv_get(dv, sect, "args");
	struct imp_where uq_at;
	char *uq = NULL;

	if (driver == NULL)
		return;
	if (strcmp(driver->value, "static") == 0 && args) {
		imp_userdb_fields(dv->im, args->value, args->at);
	} else if (strcmp(driver->value, "sql") == 0 && args) {
		if (imp_dovecot_sql(dv->im, args->value, args->at, &uq, &uq_at) == 0 && uq) {
			imp_user_query_fields(dv->im, uq, uq_at);
		}
		free(uq);
	} else if (strcmp(driver->value, "prefetch") != 0) {
		imp_lose(dv->im, driver->at, "userdb driver", driver->value, "Postern's user "
			 "database is sql.conf's user_query with the templates of postern.conf");
	}
}

static void dv_auth(struct dv *dv)
{
	struct dv_entry *e;

	for (size_t i = 0; i < dv->n; i++) {
		const char *sect = dv->e[i].sect;
		bool first = true;

		for (size_t j = 0; j < i && first; j++)
			first = strcmp(dv->e[j].sect, sect) != 0;
		if (!first || strchr(sect, '/') != NULL)
			continue;
		if (strncmp(sect, "passdb#", 7) == 0)
			dv_passdb(dv, sect);
		else if (strncmp(sect, "userdb#", 7) == 0)
			dv_userdb(dv, sect);
	}
	if ((e = dv_get(dv, "", "disable_plaintext_auth")) && strcmp(e->value, "no") == 0) {
		imp_conf(dv->im, "imap_allow_plaintext_auth", "yes", e->at, e->key);
		imp_conf(dv->im, "pop3_allow_plaintext_auth", "yes", e->at, e->key);
	}
	if ((e = dv_get(dv, "", "auth_mechanisms")) != NULL) {
		char *copy = xstrdup(e->value), *save = NULL;

		for (char *m = strtok_r(copy, " \t,", &save); m; m = strtok_r(NULL, " \t,", &save))
			if (strcasecmp(m, "cram-md5") == 0)
				imp_conf(dv->im, "auth_cram_md5", "yes", e->at, e->key);
			else if (strcasecmp(m, "plain") && strcasecmp(m, "login"))
				imp_lose(dv->im, e->at, e->key, m, "Postern offers PLAIN, LOGIN "
					 "and CRAM-MD5");
		free(copy);
	}
}

/* ssl_cert = </etc/ssl/x.pem (a value without '<' is the PEM text itself). */
static void dv_tls_file(struct dv *dv, const char *key, const char *param)
{
	struct dv_entry *e = dv_get(dv, "", key);
	const char *v;

	if (e == NULL)
		return;
	v = e->value;
	if (*v != '<') {
		imp_lose(dv->im, e->at, e->key, "(inline PEM)", "write the PEM into a file and "
			 "set %s", param);
		return;
	}
	v++;
	while (*v == ' ')
		v++;
	imp_conf(dv->im, param, v, e->at, e->key);
}

static void dv_misc(struct dv *dv)
{
	struct dv_entry *e;
	long long uid;

	dv_tls_file(dv, "ssl_cert", "tls_cert_file");
	dv_tls_file(dv, "ssl_key", "tls_key_file");
	if ((e = dv_get(dv, "", "ssl")) && strcmp(e->value, "no") == 0)
		imp_note(dv->im, e->at, "ssl = no: Postern always offers TLS (STARTTLS on 143 "
			 "and 110, implicit on 993 and 995)");
	if ((e = dv_get(dv, "protocol pop3", "pop3_uidl_format")) != NULL ||
	    (e = dv_get(dv, "", "pop3_uidl_format")) != NULL)
		imp_conf(dv->im, "pop3_uidl_format", e->value, e->at, e->key);
	if ((e = dv_get(dv, "", "first_valid_uid")) != NULL &&
	    str_to_ll(e->value, 0, 0x7fffffff, &uid) == 0) {
		if (uid <= 1000)
			imp_conf(dv->im, "minimum_uid", e->value, e->at, e->key);
		else
			imp_lose(dv->im, e->at, e->key, e->value, "Postern's minimum_uid also "
				 "limits local deliveries to system users; vmail_owner is always "
				 "allowed, so the default 1000 is kept");
	}
	if ((e = dv_get(dv, "", "mail_uid")) != NULL) {
		char f[600];

		(void)str_fmt(f, sizeof(f), "uid=%s", e->value);
		imp_userdb_fields(dv->im, f, e->at);
	}
	if ((e = dv_get(dv, "", "mail_home")) != NULL) {
		char f[4200];

		(void)str_fmt(f, sizeof(f), "home=%s", e->value);
		imp_userdb_fields(dv->im, f, e->at);
	}
	if ((e = dv_get(dv, "", "mail_gid")) != NULL) {
		char f[600];

		(void)str_fmt(f, sizeof(f), "gid=%s", e->value);
		imp_userdb_fields(dv->im, f, e->at);
	}
}

/* Settings with no behaviour Postern must reproduce (tuning, logging detail, plumbing
 * between Dovecot's own processes). */
static bool dv_silent(const struct dv_entry *e)
{
	static const char *const top[] = {
		"mail_privileged_group", "mail_access_groups", "ssl_dh", "ssl_prefer_server_ciphers",
		"log_timestamp", "verbose_proctitle", "auth_verbose", "auth_debug", "mail_debug",
		"auth_verbose_passwords", "auth_debug_passwords", "base_dir", "state_dir",
		"instance_name", "shutdown_clients", "import_environment", "default_vsz_limit",
		"default_process_limit", "default_client_limit", "mail_fsync", "mmap_disable",
		"mail_nfs_storage", "mail_nfs_index", "maildir_very_dirty_syncs",
		"mailbox_list_index", "recipient_delimiter", "lda_mailbox_autocreate",
		"lda_mailbox_autosubscribe", "ssl_client_ca_dir", "ssl_client_ca_file",
		"mail_max_userip_connections", "imap_client_workarounds", "pop3_client_workarounds",
		"postmaster_address", "hostname", "auth_username_format", "ssl_ca",
	};
	const char *sect = e->sect;

	if (strncmp(sect, "service ", 8) == 0 || strncmp(sect, "protocol lmtp", 13) == 0 ||
	    strncmp(sect, "protocol lda", 12) == 0 || strncmp(sect, "dict", 4) == 0)
		return true;
	if (strncmp(sect, "protocol ", 9) == 0)
		sect = "";
	if (*sect != '\0')
		return false;
	for (size_t i = 0; i < ARRAY_LEN(top); i++)
		if (strcmp(e->key, top[i]) == 0)
			return true;
	return false;
}

/* namespace inbox { separator, prefix, mailbox X { special_use, auto } } */
static bool dv_namespace(struct import *im, const struct dv_entry *e)
{
	static const char *const standard[] = {
		"Drafts", "Sent", "Trash", "Junk", "Archive", "Sent Messages",
	};
	const char *mb;

	if (strncmp(e->sect, "namespace ", 10) != 0)
		return false;
	mb = strstr(e->sect, "/mailbox ");
	if (mb == NULL) {
		if (strcmp(e->key, "separator") == 0 && strcmp(e->value, ".") != 0)
			imp_lose(im, e->at, e->key, e->value, "Postern's hierarchy separator is '.'");
		else if (strcmp(e->key, "prefix") == 0 && *e->value)
			imp_lose(im, e->at, e->key, e->value, "Postern's namespace has no prefix");
		return true;	/* inbox, type, list, subscriptions: as Postern does */
	}
	mb += 9;
	for (size_t i = 0; i < ARRAY_LEN(standard); i++)
		if (strcmp(mb, standard[i]) == 0)
			return true;
	if (strcmp(e->key, "auto") == 0 && strcmp(e->value, "no") != 0)
		imp_lose(im, e->at, e->key, e->value, "Postern creates .Drafts .Sent .Trash .Junk "
			 "and .Archive; mailbox %s is not created automatically", mb);
	return true;
}

static void dv_leftovers(struct dv *dv)
{
	dv_mark_duplicates(dv);
	for (size_t i = 0; i < dv->n; i++) {
		struct dv_entry *e = &dv->e[i];

		if (e->used || dv_silent(e) || dv_namespace(dv->im, e))
			continue;
		if (strcmp(e->key, "mail_plugins") == 0 || strncmp(e->sect, "plugin", 6) == 0)
			imp_lose(dv->im, e->at, e->key, e->value, "Postern has no Dovecot plugins "
				 "(quota, sieve, ...): its quota is maildirsize with virtual_quota");
		else if (strcmp(e->key, "protocols") == 0 || strcmp(e->key, "listen") == 0)
			continue;
		else
			imp_lose(dv->im, e->at, e->key, e->value, "no Postern equivalent");
	}
}

int imp_dovecot(struct import *im, const char *dir)
{
	struct dv dv = { .im = im };
	char path[4096];
	int rc;

	if (str_fmt(path, sizeof(path), "%s/dovecot.conf", dir) < 0)
		return imp_error(im, (struct imp_where){ dir, 0 }, "path too long");
	rc = dv_file(&dv, path, 0, false, (struct imp_where){ NULL, 0 });
	if (rc == 0) {
		dv_mail_location(&dv);
		dv_auth(&dv);
		dv_listeners(&dv);
		dv_misc(&dv);
		dv_leftovers(&dv);
	}
	for (size_t i = 0; i < dv.n; i++) {
		free(dv.e[i].sect);
		free(dv.e[i].key);
		free(dv.e[i].value);
	}
	free(dv.e);
	for (int i = 0; i < dv.depth; i++)
		free(dv.stack[i]);
	return rc < 0 || im->failed ? -1 : 0;
}
