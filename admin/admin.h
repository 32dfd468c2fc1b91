/*
 * admin.h: subcommands of the postern administration command, and what the files of
 * `postern admin` (admin*.c) share: the loaded configuration, the database connection,
 * option parsing, error reporting with the exit statuses below, and address checks.
 */
#ifndef POSTERN_ADMIN_H
#define POSTERN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"
#include "config.h"
#include "passwd.h"
#include "sqldb.h"

int cmd_check(int argc, char **argv);
int cmd_admin(int argc, char **argv);
/* Postfix + Dovecot + MySQL configuration into postern.conf and sql.conf (import*.c). */
int cmd_import(int argc, char **argv);
/* Queue administration (admin_queue.c): mailq, queue list|flush|delete|hold|release|requeue,
 * flush. Same exit statuses as admin (75: qmgr unreachable). */
int cmd_mailq(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_flush(int argc, char **argv);
/* Run and control postern-master without systemd (ctl.c); LSB init-script exit statuses:
 * 0 done, 1 failed, 2 usage, 3 not running (status), 4 no permission, 7 not running
 * (reload). */
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_status(int argc, char **argv);
/* Print the queue of spool_directory spool as `postqueue -p` does (admin_mailq.c). */
int mailq_list(const char *spool);

/* Exit statuses of `postern admin`. */
enum {
	ADMIN_OK = 0,
	ADMIN_FAIL = 1,		/* the request failed; one line on stderr says why */
	ADMIN_USAGE = 2,
	ADMIN_TEMPFAIL = 75,	/* EX_TEMPFAIL: database or authd unreachable, try again */
};

struct admin_ctx {
	struct config *cfg;	/* postern.conf */
	struct config *sql;	/* sql.conf (NULL for the commands that only ask authd) */
	struct sqldb *db;	/* admin credentials; connects on first use */
};

/* A subcommand's options (--force, --password-stdin, --scheme NAME) and positional
 * arguments, parsed by cmd_admin against what its table allows ("--" ends options). */
enum { OPT_FORCE = 1, OPT_PASSWORD_STDIN = 2, OPT_SCHEME = 4 };
#define ADMIN_MAX_POS 4
struct admin_opts {
	bool force, password_stdin;
	const char *scheme;
	int npos;
	const char *pos[ADMIN_MAX_POS];
};

/* Print "postern admin: MESSAGE" on stderr; returns ADMIN_FAIL. */
int admin_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "postern admin: warning: MESSAGE" on stderr. */
void admin_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a failed sqldb call: ADMIN_TEMPFAIL ("database unreachable: ...") if the
 * database could not be reached, else ADMIN_FAIL ("database error: ..."). */
int admin_db_failed(const struct admin_ctx *ctx, enum sql_status st);
/* A user-supplied string made safe to print in a message: control characters become '?',
 * at most outlen - 1 bytes. Returns out. */
const char *admin_printable(const char *in, char *out, size_t outlen);

/* Address checks with a message on failure (ADMIN_FAIL), ADMIN_OK otherwise. */
int admin_parse_address(const char *in, struct addr *out);
/* A domain name, lower-cased into out[ADDR_MAX_DOMAIN + 1]. */
int admin_parse_domain(const char *in, char *out);

/* Run a SELECT/exec; ADMIN_OK or the status admin_db_failed chose (message printed). */
int admin_select(struct admin_ctx *ctx, const char *tmpl, const struct sql_args *args,
		 struct sql_rows *rows);
int admin_exec(struct admin_ctx *ctx, const char *tmpl, const struct sql_args *args,
	       unsigned long long *affected);
/* Does a SELECT return at least one row? ADMIN_OK with *found set, or an exit status. */
int admin_exists(struct admin_ctx *ctx, const char *tmpl, const struct sql_args *args,
		 bool *found);
/* ADMIN_OK if domain is a virtual domain; otherwise a message saying how to add it. */
int admin_require_domain(struct admin_ctx *ctx, const char *domain);
/* Print every row of a keyset-paginated listing with print(rows, r). tmpl selects the
 * sort key first and a unique tie-breaker (or the key again) second, and returns the rows
 * after (%s, %u) in that order, at most ADMIN_PAGE of them; args->s and args->u are set to
 * the last row's first two columns for each next page ("" and "0" for the first). Pages
 * keep every query under sqldb's row limit however many rows there are. */
#define ADMIN_PAGE 500
#define ADMIN_PAGE_LIMIT " LIMIT 500"	/* the end of every listing template */
typedef void admin_print_fn(const struct sql_rows *rows, size_t r);
int admin_list(struct admin_ctx *ctx, const char *tmpl, struct sql_args *args,
	       admin_print_fn *print);
/* A print function for admin_list: the first column, control characters shown as '?'. */
void admin_print_first(const struct sql_rows *rows, size_t r);

/* The hashing scheme for new passwords: --scheme, else sql.conf's default_pass_scheme
 * when it is one passwd_hash can write, else SHA512-CRYPT. ADMIN_OK or a usage error. */
int admin_pick_scheme(const struct admin_ctx *ctx, const char *opt,
		      enum passwd_scheme *out);
/* Read a password into out[outlen] (outlen > maxlen + 1): from stdin (one line, the
 * trailing newline stripped) or from /dev/tty without echo after prompt; with a
 * confirm_prompt it is asked twice and both must match. Empty, NUL-holding or longer than
 * maxlen bytes is an error. ADMIN_OK or ADMIN_FAIL (message printed). */
int admin_read_password(bool from_stdin, const char *prompt, const char *confirm_prompt,
			size_t maxlen, char *out, size_t outlen);
/* Read a new password for user (asked twice on the terminal) and hash it with scheme into
 * hash[hashlen]; the clear text is wiped. ADMIN_OK or ADMIN_FAIL. */
int admin_new_hash(bool from_stdin, const char *user, enum passwd_scheme scheme, char *hash,
		   size_t hashlen);

/* Home directory and mail directory of a virtual user, from virtual_home and virtual_mail
 * (%d %n %u %% expanded as authd does). ADMIN_OK or ADMIN_FAIL. */
int admin_user_paths(const struct admin_ctx *ctx, const struct addr *a, char *home,
		     size_t homelen, char *maildir, size_t maildirlen);
/* Create the Maildir (with the standard folders) of a virtual user, owned by vmail_owner,
 * without following symbolic links and never outside virtual_mailbox_base. Existing
 * directories and files are kept. ADMIN_OK, or ADMIN_FAIL with the reason in err (nothing
 * printed). */
int admin_make_mailbox(const struct admin_ctx *ctx, const char *maildir, char *err,
		       size_t errlen);

/* The subcommands, with their options and positional arguments parsed by cmd_admin. */
int admin_domain_add(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_domain_del(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_domain_list(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_user_add(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_user_del(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_user_list(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_user_passwd(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_alias_add(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_alias_del(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_alias_list(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_lookup(struct admin_ctx *ctx, const struct admin_opts *o);
int admin_auth_test(struct admin_ctx *ctx, const struct admin_opts *o);

#endif
