/*
 * admin_db.c: the database side `postern admin`'s subcommands share: running query
 * templates through sqldb with a one-line message and the right exit status when that
 * fails, the "is this a virtual domain" check, and listings of any length in pages (sqldb
 * refuses results of more than SQL_MAX_ROWS rows).
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "util.h"

int admin_db_failed(const struct admin_ctx *ctx, enum sql_status st)
{
	if (st == SQL_BADQUERY)
		return admin_fail("internal error: bad query: %s", sqldb_error(ctx->db));
	if (sqldb_down(ctx->db)) {
		fprintf(stderr, "postern admin: database unreachable: %s\n", sqldb_error(ctx->db));
		return ADMIN_TEMPFAIL;
	}
	return admin_fail("database error: %s", sqldb_error(ctx->db));
}

int admin_select(struct admin_ctx *ctx, const char *tmpl, const struct sql_args *args,
		 struct sql_rows *rows)
{
	enum sql_status st = sqldb_select(ctx->db, tmpl, args, rows);

	return st == SQL_OK ? ADMIN_OK : admin_db_failed(ctx, st);
}

int admin_exec(struct admin_ctx *ctx, const char *tmpl, const struct sql_args *args,
	       unsigned long long *affected)
{
	enum sql_status st = sqldb_exec(ctx->db, tmpl, args, affected);

	return st == SQL_OK ? ADMIN_OK : admin_db_failed(ctx, st);
}

int admin_exists(struct admin_ctx *ctx, const char *tmpl, const struct sql_args *args,
		 bool *found)
{
	struct sql_rows rows;
	int rc = admin_select(ctx, tmpl, args, &rows);

	*found = rc == ADMIN_OK && rows.nrows > 0;
	sql_rows_free(&rows);
	return rc;
}

int admin_require_domain(struct admin_ctx *ctx, const char *domain)
{
	const struct sql_args args = { .d = domain };
	bool found;
	int rc = admin_exists(ctx, "SELECT 1 FROM virtual_domains WHERE name = %d LIMIT 1", &args,
			      &found);

	if (rc != ADMIN_OK)
		return rc;
	if (!found)
		return admin_fail("domain %s is not a virtual domain; add it with postern admin "
				  "domain add %s", domain, domain);
	return ADMIN_OK;
}

int admin_list(struct admin_ctx *ctx, const char *tmpl, struct sql_args *args,
	       admin_print_fn *print)
{
	char last_key[SQL_MAX_VALUE + 1] = "", last_tie[SQL_MAX_VALUE + 1] = "0";
	struct sql_rows rows;
	bool more;
	int rc;

	do {
		args->s = last_key;
		args->u = last_tie;
		rc = admin_select(ctx, tmpl, args, &rows);
		if (rc != ADMIN_OK)
			return rc;
		for (size_t r = 0; r < rows.nrows; r++)
			print(&rows, r);
		more = rows.nrows >= ADMIN_PAGE && rows.ncols >= 2;
		if (more) {
			char **last = rows.cell + (rows.nrows - 1) * rows.ncols;

			str_copy(last_key, sizeof(last_key), last[0]);
			str_copy(last_tie, sizeof(last_tie), last[1]);
		}
		sql_rows_free(&rows);
	} while (more);
	return ADMIN_OK;
}

void admin_print_first(const struct sql_rows *rows, size_t r)
{
	static char safe[SQL_MAX_VALUE + 1];

	printf("%s\n", admin_printable(rows->cell[r * rows->ncols], safe, sizeof(safe)));
}
