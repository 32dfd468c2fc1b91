/*
 * admin_alias.c: `postern admin alias add|del|list`: the virtual_aliases table of the
 * default schema. A source is an address or `@domain` (the domain's catch-all, which authd
 * tries after the exact address and the mailbox); its domain must be a virtual domain. A
 * destination is one address, anywhere; an alias with several destinations is several rows,
 * as in the common guides. In the templates %s is the source and %u the destination.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "util.h"

struct alias_source {
	char text[ADDR_MAX + 1];		/* "local@domain" or "@domain" */
	char domain[ADDR_MAX_DOMAIN + 1];
};

static int parse_source(const char *in, struct alias_source *out)
{
	struct addr a;
	int rc;

	if (in[0] == '@') {
		if ((rc = admin_parse_domain(in + 1, out->domain)) != ADMIN_OK)
			return rc;
		(void)str_fmt(out->text, sizeof(out->text), "@%s", out->domain);
		return ADMIN_OK;
	}
	if ((rc = admin_parse_address(in, &a)) != ADMIN_OK)
		return rc;
	str_copy(out->text, sizeof(out->text), a.full);
	str_copy(out->domain, sizeof(out->domain), a.domain);
	return ADMIN_OK;
}

static const char alias_exists[] =
	"SELECT 1 FROM virtual_aliases WHERE source = %s AND destination = %u LIMIT 1";
static const char alias_insert[] =
	"INSERT INTO virtual_aliases (domain_id, source, destination) "
	"SELECT id, %s, %u FROM virtual_domains WHERE name = %d ORDER BY id LIMIT 1";

int admin_alias_add(struct admin_ctx *ctx, const struct admin_opts *o)
{
	struct alias_source src;
	struct sql_args args = { 0 };
	unsigned long long added;
	struct addr dst;
	bool found;
	int rc;

	if ((rc = parse_source(o->pos[0], &src)) != ADMIN_OK ||
	    (rc = admin_parse_address(o->pos[1], &dst)) != ADMIN_OK)
		return rc;
	if ((rc = admin_require_domain(ctx, src.domain)) != ADMIN_OK)
		return rc;
	args.s = src.text;
	args.u = dst.full;
	args.d = src.domain;
	if ((rc = admin_exists(ctx, alias_exists, &args, &found)) != ADMIN_OK)
		return rc;
	if (found)
		return admin_fail("alias %s -> %s exists", src.text, dst.full);
	if ((rc = admin_exec(ctx, alias_insert, &args, &added)) != ADMIN_OK)
		return rc;
	if (added == 0) {	/* the domain went away since the check */
		rc = admin_require_domain(ctx, src.domain);
		return rc != ADMIN_OK ? rc : admin_fail("alias %s not added", src.text);
	}
	msg_info("added alias %s -> %s", src.text, dst.full);
	printf("added alias %s -> %s\n", src.text, dst.full);
	return ADMIN_OK;
}

int admin_alias_del(struct admin_ctx *ctx, const struct admin_opts *o)
{
	struct alias_source src;
	struct sql_args args = { 0 };
	unsigned long long deleted;
	struct addr dst;
	int rc;

	if ((rc = parse_source(o->pos[0], &src)) != ADMIN_OK)
		return rc;
	args.s = src.text;
	if (o->npos == 2) {
		if ((rc = admin_parse_address(o->pos[1], &dst)) != ADMIN_OK)
			return rc;
		args.u = dst.full;
		rc = admin_exec(ctx, "DELETE FROM virtual_aliases WHERE source = %s AND "
				"destination = %u", &args, &deleted);
	} else {
		rc = admin_exec(ctx, "DELETE FROM virtual_aliases WHERE source = %s", &args,
				&deleted);
	}
	if (rc != ADMIN_OK)
		return rc;
	if (deleted == 0)
		return admin_fail("no such alias: %s%s%s", src.text, args.u ? " -> " : "",
				  args.u ? args.u : "");
	msg_info("deleted %llu alias rows of %s%s%s", deleted, src.text, args.u ? " -> " : "",
		 args.u ? args.u : "");
	printf("deleted %llu alias%s of %s\n", deleted, deleted == 1 ? "" : "es", src.text);
	return ADMIN_OK;
}

/* Columns: source, id (the tie-breaker of the pages), destination. */
static void print_alias(const struct sql_rows *rows, size_t r)
{
	static char src[SQL_MAX_VALUE + 1], dst[SQL_MAX_VALUE + 1];
	char *const *row = rows->cell + r * rows->ncols;

	printf("%s -> %s\n", admin_printable(row[0], src, sizeof(src)),
	       admin_printable(row[2], dst, sizeof(dst)));
}

int admin_alias_list(struct admin_ctx *ctx, const struct admin_opts *o)
{
	char domain[ADDR_MAX_DOMAIN + 1];
	struct sql_args args = { 0 };
	int rc;

	if (o->npos == 0)
		return admin_list(ctx, "SELECT source, id, destination FROM virtual_aliases "
				  "WHERE source > %s OR (source = %s AND id > %u) "
				  "ORDER BY source, id" ADMIN_PAGE_LIMIT, &args, print_alias);
	if ((rc = admin_parse_domain(o->pos[0], domain)) != ADMIN_OK ||
	    (rc = admin_require_domain(ctx, domain)) != ADMIN_OK)
		return rc;
	args.d = domain;
	return admin_list(ctx, "SELECT a.source, a.id, a.destination FROM virtual_aliases a "
			  "JOIN virtual_domains d ON a.domain_id = d.id WHERE d.name = %d AND "
			  "(a.source > %s OR (a.source = %s AND a.id > %u)) "
			  "ORDER BY a.source, a.id" ADMIN_PAGE_LIMIT, &args, print_alias);
}
