/*
 * admin_domain.c: `postern admin domain add|del|list`: the virtual_domains table of the
 * default schema (packaging/schema.sql). Deleting a domain deletes its users and aliases
 * through the schema's ON DELETE CASCADE, so it needs --force when users exist; their
 * Maildirs stay on disk.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "util.h"

/* virtual_domains has no unique key on name, so the insert itself checks for the name:
 * one statement, no window between a check and the insert for a second admin. */
static const char domain_insert[] =
	"INSERT INTO virtual_domains (name) SELECT %d FROM DUAL "
	"WHERE NOT EXISTS (SELECT 1 FROM virtual_domains WHERE name = %d)";

int admin_domain_add(struct admin_ctx *ctx, const struct admin_opts *o)
{
	char domain[ADDR_MAX_DOMAIN + 1];
	struct sql_args args = { 0 };
	unsigned long long added;
	int rc;

	if ((rc = admin_parse_domain(o->pos[0], domain)) != ADMIN_OK)
		return rc;
	args.d = domain;
	if ((rc = admin_exec(ctx, domain_insert, &args, &added)) != ADMIN_OK)
		return rc;
	if (added == 0)
		return admin_fail("domain %s exists", domain);
	msg_info("added domain %s", domain);
	printf("added domain %s\n", domain);
	return ADMIN_OK;
}

/* How many rows of a table belong to a domain, into *count. */
static int count_in_domain(struct admin_ctx *ctx, const char *tmpl, const char *domain,
			   long long *count)
{
	const struct sql_args args = { .d = domain };
	struct sql_rows rows;
	const char *v;
	int rc = admin_select(ctx, tmpl, &args, &rows);

	if (rc != ADMIN_OK)
		return rc;
	v = rows.nrows > 0 && rows.ncols > 0 ? rows.cell[0] : "0";
	if (str_to_ll(v, 0, 0x7fffffffffffffffLL, count) < 0)
		*count = 0;
	sql_rows_free(&rows);
	return ADMIN_OK;
}

static const char users_of_domain[] =
	"SELECT COUNT(*) FROM virtual_users u JOIN virtual_domains d ON u.domain_id = d.id "
	"WHERE d.name = %d";
static const char aliases_of_domain[] =
	"SELECT COUNT(*) FROM virtual_aliases a JOIN virtual_domains d ON a.domain_id = d.id "
	"WHERE d.name = %d";

int admin_domain_del(struct admin_ctx *ctx, const struct admin_opts *o)
{
	char domain[ADDR_MAX_DOMAIN + 1];
	struct sql_args args = { 0 };
	unsigned long long deleted;
	long long users, aliases;
	bool found;
	int rc;

	if ((rc = admin_parse_domain(o->pos[0], domain)) != ADMIN_OK)
		return rc;
	args.d = domain;
	if ((rc = admin_exists(ctx, "SELECT 1 FROM virtual_domains WHERE name = %d LIMIT 1",
			       &args, &found)) != ADMIN_OK)
		return rc;
	if (!found)
		return admin_fail("no such domain: %s", domain);
	if ((rc = count_in_domain(ctx, users_of_domain, domain, &users)) != ADMIN_OK ||
	    (rc = count_in_domain(ctx, aliases_of_domain, domain, &aliases)) != ADMIN_OK)
		return rc;
	if (users > 0 && !o->force)
		return admin_fail("domain %s has %lld user%s; delete them first, or use --force to "
				  "delete the domain with its users and aliases", domain, users,
				  users == 1 ? "" : "s");
	rc = admin_exec(ctx, "DELETE FROM virtual_domains WHERE name = %d", &args, &deleted);
	if (rc != ADMIN_OK)
		return rc;
	msg_info("deleted domain %s with %lld users and %lld aliases", domain, users, aliases);
	printf("deleted domain %s with %lld user%s and %lld alias%s\n", domain, users,
	       users == 1 ? "" : "s", aliases, aliases == 1 ? "" : "es");
	if (users > 0)
		printf("their mailboxes are kept on disk (under %s); remove them by hand if they "
		       "are no longer wanted\n", conf_str(ctx->cfg, "virtual_mailbox_base"));
	return ADMIN_OK;
}

int admin_domain_list(struct admin_ctx *ctx, const struct admin_opts *o)
{
	struct sql_args args = { 0 };

	return admin_list(ctx, "SELECT DISTINCT name, name FROM virtual_domains WHERE name > %s "
			  "ORDER BY name" ADMIN_PAGE_LIMIT, &args, admin_print_first);
}
