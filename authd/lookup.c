/*
 * lookup.c: what authd's worker threads do with a job: the SQL side of every request type,
 * run with the worker's own database connection. Every database failure, and every answer
 * the configuration makes impossible, is TEMPFAIL: only a definite "no such user" or a wrong
 * password is PERMFAIL (DESIGN.md §3, §6).
 *
 * Recipient resolution follows Postfix's order: a local domain (mydestination) goes to
 * system users; a domain not in domain_query is "remote" (relaying is smtpd's decision);
 * in a virtual domain an alias wins over a mailbox (as virtual_alias_maps do), then the
 * mailbox, then both again without the address extension (user+tag), then the domain's
 * catch-all alias (@domain), then the required local parts (postmaster, abuse).
 */
#include <openssl/hmac.h>
#include <ctype.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authd.h"
#include "log.h"
#include "passwd.h"
#include "sqldb.h"
#include "util.h"

static char dummy_hash[256];	/* verified against when the user is unknown: same cost */

/* The stand-in hash uses the scheme new hashes get, the likeliest one in the table. */
void lookup_init(void)
{
	enum passwd_scheme scheme = PASSWD_SHA512_CRYPT;

	(void)passwd_scheme_parse(conf_str(A.sql, "default_pass_scheme"), &scheme);
	if (passwd_hash("postern-timing-equalizer", scheme, dummy_hash, sizeof(dummy_hash)) < 0)
		msg_fatal("cannot make the timing-equalizer hash");
}

void lookup_free(struct lookup *res)
{
	buf_free(&res->targets);
}

void lookup_copy(struct lookup *dst, const struct lookup *src)
{
	*dst = *src;
	buf_init(&dst->targets, src->targets.limit);
	if (src->targets.len)
		buf_append(&dst->targets, src->targets.data, src->targets.len);
}

static void set_status(struct lookup *res, int status, const char *reason)
{
	res->status = status;
	str_copy(res->reason, sizeof(res->reason), reason);
}

static void sql_failed(struct sqldb *db, struct lookup *res, const char *what,
		       enum sql_status st)
{
	if (st == SQL_BADQUERY)
		msg_error("sql.conf: %s is not a valid query template", what);
	else
		msg_warn("%s failed: %s", what, sqldb_error(db));
	set_status(res, IPC_TEMPFAIL, "database unavailable");
}

static void args_for(const struct addr *a, struct sql_args *args)
{
	args->s = a->full;
	args->u = a->full;
	args->n = a->local;
	args->d = a->domain;
	args->p = NULL;
}

/* Run one of sql.conf's queries for an address; rows in out. */
static enum sql_status query(struct sqldb *db, const char *param, const struct addr *a,
			     struct sql_rows *out)
{
	struct sql_args args;

	args_for(a, &args);
	return sqldb_select(db, conf_str(A.sql, param), &args, out);
}

/* Expand %d %n %u %% in a home template; the parts were validated by addr_parse. */
static int expand_home(const char *tmpl, const struct addr *a, char *out, size_t outlen)
{
	struct buf b;
	int rc = 0;

	buf_init(&b, outlen - 1);
	for (const char *p = tmpl; *p && rc == 0; p++) {
		if (*p != '%' || p[1] == '\0') {
			rc = buf_append_char(&b, *p);
			continue;
		}
		p++;
		switch (*p) {
		case 'd': rc = buf_append_str(&b, a->domain); break;
		case 'n': rc = buf_append_str(&b, a->local); break;
		case 'u': rc = buf_append_str(&b, a->full); break;
		case '%': rc = buf_append_char(&b, '%'); break;
		default: rc = -1;
		}
	}
	if (rc == 0)
		rc = str_copy(out, outlen, buf_cstr(&b));
	buf_free(&b);
	return rc;
}

static int64_t column_int(const struct sql_rows *rows, const char *col, int64_t def)
{
	const char *v = sql_rows_get(rows, 0, col);
	long long n;

	if (v == NULL || *v == '\0' || str_to_ll(v, 0, 0x7fffffffffffffffLL, &n) < 0)
		return def;
	return n;
}

/* Fill the userdb fields from the user_query row (columns override the templates). */
static void fill_user(const struct sql_rows *rows, const struct addr *a, struct lookup *res)
{
	const char *v;

	struct addr canon;

	/* The home follows the stored (canonical) address, not the spelling that was looked
	 * up: mail to Alice@x and alice@x must land in one Maildir. */
	v = sql_rows_get(rows, 0, "user");
	if (v && *v && addr_parse(v, NULL, &canon) == 0)
		a = &canon;
	str_copy(res->user, sizeof(res->user), a->full);
	v = sql_rows_get(rows, 0, "home");
	if (v && *v)
		str_copy(res->home, sizeof(res->home), v);
	else if (expand_home(conf_str(A.cfg, "virtual_home"), a, res->home, sizeof(res->home)) < 0)
		set_status(res, IPC_TEMPFAIL, "bad virtual_home template");
	v = sql_rows_get(rows, 0, "mail");
	str_copy(res->mail, sizeof(res->mail), v && *v ? v : conf_str(A.cfg, "virtual_mail"));
	res->uid = column_int(rows, "uid", A.vmail_uid);
	res->gid = column_int(rows, "gid", A.vmail_gid);
	res->quota = column_int(rows, "quota", conf_size(A.cfg, "virtual_quota"));
}

/* userdb lookup of one exact address: 1 found, 0 not found, -1 tempfail (res set). */
static int user_exact(struct sqldb *db, const struct addr *a, struct lookup *res)
{
	struct sql_rows rows = { 0 };
	enum sql_status st = query(db, "user_query", a, &rows);
	int found;

	if (st != SQL_OK) {
		sql_failed(db, res, "user_query", st);
		return -1;
	}
	found = rows.nrows > 0;
	if (found) {
		set_status(res, IPC_OK, "");
		fill_user(&rows, a, res);
		if (res->status == IPC_TEMPFAIL)
			found = -1;
	}
	sql_rows_free(&rows);
	return found;
}

static void do_user(struct sqldb *db, const char *address, struct lookup *res)
{
	struct addr a, bare;
	int r;

	if (addr_parse(address, NULL, &a) < 0) {
		set_status(res, IPC_PERMFAIL, "bad address syntax");
		return;
	}
	r = user_exact(db, &a, res);
	if (r == 0 && addr_strip_extension(&a, conf_str(A.cfg, "recipient_delimiter"), &bare))
		r = user_exact(db, &bare, res);
	if (r == 0)
		set_status(res, IPC_PERMFAIL, "unknown user");
}

/* Append alias destinations (comma or white-space separated) as NUL-separated targets. */
static void add_targets(const struct sql_rows *rows, struct lookup *res)
{
	size_t n = 0;

	for (size_t r = 0; r < rows->nrows; r++) {
		char *copy = xstrdup(rows->cell[r * rows->ncols]), *save = NULL, *t;

		for (t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
			if (++n > AUTHD_MAX_TARGETS || buf_append(&res->targets, t, strlen(t) + 1) < 0) {
				set_status(res, IPC_TEMPFAIL, "alias has too many targets");
				break;
			}
		}
		free(copy);
	}
}

/* alias then mailbox for one exact address: 1 found, 0 not, -1 tempfail. */
static int rcpt_exact(struct sqldb *db, const struct addr *a, struct lookup *res)
{
	struct sql_rows rows = { 0 };
	enum sql_status st = query(db, "alias_query", a, &rows);
	int r;

	if (st != SQL_OK) {
		sql_failed(db, res, "alias_query", st);
		return -1;
	}
	if (rows.nrows > 0 && rows.ncols > 0) {
		set_status(res, IPC_OK, "");
		str_copy(res->kind, sizeof(res->kind), "alias");
		add_targets(&rows, res);
		sql_rows_free(&rows);
		return res->status == IPC_OK ? 1 : -1;
	}
	sql_rows_free(&rows);
	r = user_exact(db, a, res);
	if (r == 1)
		str_copy(res->kind, sizeof(res->kind), "virtual");
	return r;
}

static bool in_list(const char *param, const char *value)
{
	size_t n;
	const char *const *items = conf_list(A.cfg, param, &n);

	for (size_t i = 0; i < n; i++)
		if (strcasecmp(items[i], value) == 0)
			return true;
	return false;
}

/* Does `name:` start a line of the aliases file? (Its targets are local's business.) */
static bool in_aliases_file(const char *name)
{
	char *data, *line, *save = NULL;
	size_t len = strlen(name);
	bool found = false;

	if (read_file(conf_str(A.cfg, "aliases_file"), 1 << 20, &data, NULL) < 0)
		return false;
	for (line = strtok_r(data, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save))
		found = strncasecmp(line, name, len) == 0 && line[len] == ':';
	free(data);
	return found;
}

static void rcpt_local(const struct addr *a, struct lookup *res)
{
	struct addr bare;
	const struct addr *use = a;
	struct passwd pw, *pwres = NULL;
	char buf[4096];

	if (addr_strip_extension(a, conf_str(A.cfg, "recipient_delimiter"), &bare))
		use = &bare;
	if ((getpwnam_r(use->local, &pw, buf, sizeof(buf), &pwres) == 0 && pwres) ||
	    in_aliases_file(use->local) || in_list("required_aliases", use->local) ||
	    strcasecmp(use->local, "root") == 0) {
		set_status(res, IPC_OK, "");
		str_copy(res->kind, sizeof(res->kind), "local");
		str_copy(res->user, sizeof(res->user), use->local);
		return;
	}
	set_status(res, IPC_PERMFAIL, "unknown user");
}

static void do_rcpt(struct sqldb *db, const char *address, struct lookup *res)
{
	struct sql_rows rows = { 0 };
	struct addr a, bare, catchall;
	enum sql_status st;
	int r;

	if (addr_parse(address, NULL, &a) < 0) {
		set_status(res, IPC_PERMFAIL, "bad address syntax");
		return;
	}
	if (in_list("mydestination", a.domain)) {
		rcpt_local(&a, res);
		return;
	}
	st = query(db, "domain_query", &a, &rows);
	if (st != SQL_OK) {
		sql_failed(db, res, "domain_query", st);
		return;
	}
	r = rows.nrows > 0;
	sql_rows_free(&rows);
	if (!r) {
		set_status(res, IPC_OK, "");
		str_copy(res->kind, sizeof(res->kind), "remote");
		return;
	}
	r = rcpt_exact(db, &a, res);
	if (r == 0 && addr_strip_extension(&a, conf_str(A.cfg, "recipient_delimiter"), &bare))
		r = rcpt_exact(db, &bare, res);
	if (r == 0) {
		catchall = a;
		str_fmt(catchall.full, sizeof(catchall.full), "@%s", a.domain);
		r = rcpt_exact(db, &catchall, res);
		if (r == 1 && strcmp(res->kind, "alias") != 0)
			r = 0;	/* "@domain" is only meaningful as an alias */
	}
	if (r == 0 && in_list("required_aliases", (addr_strip_extension(&a,
			conf_str(A.cfg, "recipient_delimiter"), &bare) ? &bare : &a)->local)) {
		const char *t = conf_str(A.cfg, "required_aliases_target");

		set_status(res, IPC_OK, "");
		str_copy(res->kind, sizeof(res->kind), "alias");
		buf_reset(&res->targets);
		buf_append(&res->targets, t, strlen(t) + 1);
		r = 1;
	}
	if (r == 0)
		set_status(res, IPC_PERMFAIL, "unknown user");
}

/* Is address one of the comma/space separated items of a destination column? */
static bool list_has(const char *list, const char *address)
{
	char *copy = xstrdup(list), *save = NULL, *t;
	bool found = false;

	for (t = strtok_r(copy, ", \t", &save); t && !found; t = strtok_r(NULL, ", \t", &save))
		found = addr_equal(t, address);
	free(copy);
	return found;
}

static void do_sender(struct sqldb *db, const char *user, const char *address,
		      struct lookup *res)
{
	struct sql_rows rows = { 0 };
	struct sql_args args;
	struct addr a;
	enum sql_status st;

	if (addr_parse(address, NULL, &a) < 0) {
		set_status(res, IPC_PERMFAIL, "bad address syntax");
		return;
	}
	if (addr_equal(a.full, user)) {
		set_status(res, IPC_OK, "");
		return;
	}
	args_for(&a, &args);
	args.u = user;
	st = sqldb_select(db, conf_str(A.sql, "sender_query"), &args, &rows);
	if (st != SQL_OK) {
		sql_failed(db, res, "sender_query", st);
		return;
	}
	set_status(res, IPC_PERMFAIL, "sender address not owned by user");
	for (size_t i = 0; i < rows.nrows * rows.ncols; i++)
		if (list_has(rows.cell[i], user))
			set_status(res, IPC_OK, "");
	sql_rows_free(&rows);
}

/* Replace a weak stored hash after a successful login (password_update_query). */
static void upgrade_hash(struct sqldb *db, const struct addr *a, const char *pass)
{
	const char *tmpl = conf_str(A.sql, "password_update_query");
	enum passwd_scheme scheme = PASSWD_SHA512_CRYPT;
	struct sql_args args;
	char hash[256];

	if (*tmpl == '\0')
		return;
	if (passwd_scheme_parse(conf_str(A.sql, "default_pass_scheme"), &scheme) < 0 ||
	    passwd_hash(pass, scheme, hash, sizeof(hash)) < 0) {
		msg_warn("cannot rehash the password of %s", a->full);
		return;
	}
	args_for(a, &args);
	args.p = hash;
	if (sqldb_exec(db, tmpl, &args, NULL) == SQL_OK)
		msg_info("password hash of %s upgraded to %s", a->full,
			 conf_str(A.sql, "default_pass_scheme"));
	else
		msg_warn("password_update_query failed for %s: %s", a->full, sqldb_error(db));
}

/* CRAM-MD5 (RFC 2195): the response is HMAC-MD5(password, challenge) in lower-case hex.
 * Only a clear-text stored password can answer it. */
static enum passwd_result verify_cram(const char *stored, const struct job *j)
{
	const char *plain = passwd_cleartext(stored);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], resp[2 * EVP_MAX_MD_SIZE + 1];
	static const char digits[] = "0123456789abcdef";
	size_t rlen = strlen(j->pass);

	if (plain == NULL || rlen >= sizeof(resp))
		return PASSWD_MISMATCH;
	if (HMAC(EVP_md5(), plain, (int)strlen(plain), (const unsigned char *)j->challenge,
		 strlen(j->challenge), mac, &maclen) == NULL)
		return PASSWD_BADHASH;
	for (unsigned int i = 0; i < maclen; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	for (size_t i = 0; i <= rlen; i++)
		resp[i] = (char)tolower((unsigned char)j->pass[i]);
	return passwd_ct_equal(hex, 2 * maclen, resp, rlen) ? PASSWD_MATCH : PASSWD_MISMATCH;
}

static void do_auth(struct sqldb *db, struct job *j)
{
	struct lookup *res = &j->res;
	struct sql_rows rows = { 0 };
	const char *stored, *canon;
	enum sql_status st;
	struct addr a;

	if (addr_parse(j->user, NULL, &a) < 0) {
		(void)passwd_verify(j->pass, dummy_hash);
		set_status(res, IPC_PERMFAIL, "unknown user");
		return;
	}
	st = query(db, "password_query", &a, &rows);
	if (st != SQL_OK) {
		sql_failed(db, res, "password_query", st);
		return;
	}
	stored = rows.nrows ? sql_rows_get(&rows, 0, "password") : NULL;
	if (stored == NULL) {
		(void)passwd_verify(j->pass, dummy_hash);
		set_status(res, IPC_PERMFAIL, "unknown user");
	} else {
		bool cram = strcmp(j->mech, "CRAM-MD5") == 0;

		switch (cram ? verify_cram(stored, j) : passwd_verify(j->pass, stored)) {
		case PASSWD_MATCH:
			set_status(res, IPC_OK, "");
			canon = sql_rows_get(&rows, 0, "user");
			str_copy(res->user, sizeof(res->user), canon && *canon ? canon : a.full);
			if (!cram && passwd_is_weak(stored))
				upgrade_hash(db, &a, j->pass);
			break;
		case PASSWD_BADHASH:
			msg_warn("unusable password hash for %s", a.full);
			/* fall through */
		case PASSWD_MISMATCH:
			set_status(res, IPC_PERMFAIL, "Password mismatch");
			break;
		}
	}
	sql_rows_free(&rows);
	if (res->status == IPC_OK && j->want_ticket) {
		char user[ADDR_MAX + 1];

		str_copy(user, sizeof(user), res->user);
		do_user(db, user, res);
		if (res->status == IPC_PERMFAIL)
			set_status(res, IPC_TEMPFAIL, "no mailbox for this login");
	}
}

void lookup_run(struct sqldb *db, struct job *j)
{
	set_status(&j->res, IPC_TEMPFAIL, "internal error");
	switch (j->type) {
	case AUTH_REQ_AUTH: do_auth(db, j); break;
	case AUTH_REQ_USER: do_user(db, j->address, &j->res); break;
	case AUTH_REQ_RCPT: do_rcpt(db, j->address, &j->res); break;
	case AUTH_REQ_SENDER: do_sender(db, j->user, j->address, &j->res); break;
	default: break;
	}
	explicit_bzero(j->pass, sizeof(j->pass));
}
