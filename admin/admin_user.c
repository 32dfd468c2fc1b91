/*
 * admin_user.c: `postern admin user add|del|list|passwd`: the virtual_users table of the
 * default schema, and the user's Maildir. Adding checks everything it can before asking
 * for the password (address syntax, the domain, a duplicate), and if the mailbox cannot be
 * created the new row is removed again, so a failed add leaves no half-made user behind.
 * Deleting keeps the Maildir: mail is not destroyed by a typo.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "util.h"

#define PATH_LEN 4096

static const char user_exists[] = "SELECT 1 FROM virtual_users WHERE email = %s LIMIT 1";
/* ORDER BY id LIMIT 1: virtual_domains has no unique key on name, one row is enough. */
static const char user_insert[] =
	"INSERT INTO virtual_users (domain_id, password, email) "
	"SELECT id, %p, %s FROM virtual_domains WHERE name = %d ORDER BY id LIMIT 1";

/* An alias for the same address wins over the mailbox in lookups (authd/lookup.c). */
static void warn_if_alias(struct admin_ctx *ctx, const struct addr *a)
{
	const struct sql_args args = { .s = a->full };
	bool found;

	if (admin_exists(ctx, "SELECT 1 FROM virtual_aliases WHERE source = %s LIMIT 1", &args,
			 &found) == ADMIN_OK && found)
		admin_warn("an alias %s exists; mail to this address follows the alias, not the "
			   "mailbox", a->full);
}

/* Address, domain and duplicate checks of `user add`. */
static int check_new_user(struct admin_ctx *ctx, const char *arg, struct addr *a)
{
	struct sql_args args = { 0 };
	bool found;
	int rc;

	if ((rc = admin_parse_address(arg, a)) != ADMIN_OK ||
	    (rc = admin_require_domain(ctx, a->domain)) != ADMIN_OK)
		return rc;
	args.s = a->full;
	if ((rc = admin_exists(ctx, user_exists, &args, &found)) != ADMIN_OK)
		return rc;
	if (found)
		return admin_fail("user %s exists", a->full);
	warn_if_alias(ctx, a);
	return ADMIN_OK;
}

/* Create the mailbox of a user just inserted; if that fails, take the row back so the add
 * either happens whole or not at all. */
static int make_mailbox_or_undo(struct admin_ctx *ctx, const struct addr *a,
				const char *maildir)
{
	const struct sql_args args = { .s = a->full };
	char why[PATH_LEN + 300];
	enum sql_status st;

	if (admin_make_mailbox(ctx, maildir, why, sizeof(why)) == ADMIN_OK)
		return ADMIN_OK;
	st = sqldb_exec(ctx->db, "DELETE FROM virtual_users WHERE email = %s", &args, NULL);
	if (st == SQL_OK)
		return admin_fail("cannot create the mailbox: %s; user %s not added", why, a->full);
	return admin_fail("cannot create the mailbox: %s; user %s is in the database but has no "
			  "mailbox (removing it failed: %s)", why, a->full, sqldb_error(ctx->db));
}

int admin_user_add(struct admin_ctx *ctx, const struct admin_opts *o)
{
	char hash[256], home[PATH_LEN], maildir[PATH_LEN];
	struct sql_args args = { 0 };
	enum passwd_scheme scheme;
	unsigned long long added;
	struct addr a;
	int rc;

	if ((rc = admin_pick_scheme(ctx, o->scheme, &scheme)) != ADMIN_OK ||
	    (rc = check_new_user(ctx, o->pos[0], &a)) != ADMIN_OK ||
	    (rc = admin_user_paths(ctx, &a, home, sizeof(home), maildir, sizeof(maildir))) !=
	    ADMIN_OK ||
	    (rc = admin_new_hash(o->password_stdin, a.full, scheme, hash, sizeof(hash))) !=
	    ADMIN_OK)
		return rc;
	args.s = a.full;
	args.d = a.domain;
	args.p = hash;
	rc = admin_exec(ctx, user_insert, &args, &added);
	explicit_bzero(hash, sizeof(hash));
	if (rc != ADMIN_OK)
		return rc;
	if (added == 0) {	/* the domain went away since the check */
		rc = admin_require_domain(ctx, a.domain);
		return rc != ADMIN_OK ? rc : admin_fail("user %s not added", a.full);
	}
	if ((rc = make_mailbox_or_undo(ctx, &a, maildir)) != ADMIN_OK)
		return rc;
	msg_info("added user %s, mailbox %s", a.full, maildir);
	printf("added user %s; mailbox %s\n", a.full, maildir);
	return ADMIN_OK;
}

int admin_user_del(struct admin_ctx *ctx, const struct admin_opts *o)
{
	char home[PATH_LEN], maildir[PATH_LEN];
	struct sql_args args = { 0 };
	unsigned long long deleted;
	struct addr a;
	int rc;

	if ((rc = admin_parse_address(o->pos[0], &a)) != ADMIN_OK)
		return rc;
	args.s = a.full;
	rc = admin_exec(ctx, "DELETE FROM virtual_users WHERE email = %s", &args, &deleted);
	if (rc != ADMIN_OK)
		return rc;
	if (deleted == 0)
		return admin_fail("no such user: %s", a.full);
	msg_info("deleted user %s", a.full);
	printf("deleted user %s\n", a.full);
	if (admin_user_paths(ctx, &a, home, sizeof(home), maildir, sizeof(maildir)) == ADMIN_OK)
		printf("the mailbox %s is kept; remove it by hand if it is no longer wanted\n",
		       maildir);
	return ADMIN_OK;
}

int admin_user_list(struct admin_ctx *ctx, const struct admin_opts *o)
{
	char domain[ADDR_MAX_DOMAIN + 1];
	struct sql_args args = { 0 };
	int rc;

	if (o->npos == 0)
		return admin_list(ctx, "SELECT email, email FROM virtual_users WHERE email > %s "
				  "ORDER BY email" ADMIN_PAGE_LIMIT, &args, admin_print_first);
	if ((rc = admin_parse_domain(o->pos[0], domain)) != ADMIN_OK ||
	    (rc = admin_require_domain(ctx, domain)) != ADMIN_OK)
		return rc;
	args.d = domain;
	return admin_list(ctx, "SELECT u.email, u.email FROM virtual_users u "
			  "JOIN virtual_domains d ON u.domain_id = d.id "
			  "WHERE d.name = %d AND u.email > %s ORDER BY u.email" ADMIN_PAGE_LIMIT,
			  &args, admin_print_first);
}

int admin_user_passwd(struct admin_ctx *ctx, const struct admin_opts *o)
{
	char hash[256];
	struct sql_args args = { 0 };
	enum passwd_scheme scheme;
	unsigned long long changed;
	struct addr a;
	bool found;
	int rc;

	if ((rc = admin_pick_scheme(ctx, o->scheme, &scheme)) != ADMIN_OK ||
	    (rc = admin_parse_address(o->pos[0], &a)) != ADMIN_OK)
		return rc;
	args.s = a.full;
	if ((rc = admin_exists(ctx, user_exists, &args, &found)) != ADMIN_OK)
		return rc;
	if (!found)
		return admin_fail("no such user: %s", a.full);
	if ((rc = admin_new_hash(o->password_stdin, a.full, scheme, hash, sizeof(hash))) !=
	    ADMIN_OK)
		return rc;
	args.p = hash;
	rc = admin_exec(ctx, "UPDATE virtual_users SET password = %p WHERE email = %s", &args,
			&changed);
	explicit_bzero(hash, sizeof(hash));
	if (rc != ADMIN_OK)
		return rc;
	if (changed == 0)
		return admin_fail("no such user: %s", a.full);
	msg_info("changed the password of %s", a.full);
	printf("changed the password of %s\n", a.full);
	return ADMIN_OK;
}
