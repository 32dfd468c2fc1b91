/*
 * admin.c: `postern admin [-c FILE] NOUN VERB ...`: finds the subcommand, loads postern.conf
 * (and sql.conf with the admin database credentials for the commands that write the
 * database), and runs it. Also the helpers every subcommand shares: option parsing,
 * one-line error messages and address checks. Changes are logged to the mail log like any
 * other Postern program's (log_file, or syslog facility mail), as an audit trail; stdout
 * and stderr carry only the command's own answer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"
#include "sqlconf.h"
#include "util.h"

struct admin_cmd {
	const char *noun, *verb;	/* verb NULL: the noun alone is the command */
	int (*run)(struct admin_ctx *ctx, const struct admin_opts *o);
	unsigned options;		/* OPT_* allowed */
	int minpos, maxpos;		/* positional arguments */
	bool needs_db;
	const char *usage;
};

static const struct admin_cmd admin_cmds[] = {
	{ "domain", "add", admin_domain_add, 0, 1, 1, true, "domain add DOMAIN" },
	{ "domain", "del", admin_domain_del, OPT_FORCE, 1, 1, true,
	  "domain del DOMAIN [--force]" },
	{ "domain", "list", admin_domain_list, 0, 0, 0, true, "domain list" },
	{ "user", "add", admin_user_add, OPT_PASSWORD_STDIN | OPT_SCHEME, 1, 1, true,
	  "user add ADDRESS [--password-stdin] [--scheme yescrypt|sha512-crypt]" },
	{ "user", "del", admin_user_del, 0, 1, 1, true, "user del ADDRESS" },
	{ "user", "list", admin_user_list, 0, 0, 1, true, "user list [DOMAIN]" },
	{ "user", "passwd", admin_user_passwd, OPT_PASSWORD_STDIN | OPT_SCHEME, 1, 1, true,
	  "user passwd ADDRESS [--password-stdin] [--scheme yescrypt|sha512-crypt]" },
	{ "alias", "add", admin_alias_add, 0, 2, 2, true, "alias add SOURCE DESTINATION" },
	{ "alias", "del", admin_alias_del, 0, 1, 2, true, "alias del SOURCE [DESTINATION]" },
	{ "alias", "list", admin_alias_list, 0, 0, 1, true, "alias list [DOMAIN]" },
	{ "lookup", NULL, admin_lookup, 0, 1, 1, false, "lookup ADDRESS" },
	{ "auth", "test", admin_auth_test, OPT_PASSWORD_STDIN, 1, 1, false,
	  "auth test USER [--password-stdin]" },
};

/* The usage line of the running subcommand, for parse_opts' messages. */
static const char *current_usage = "";

static int usage(FILE *out)
{
	fprintf(out, "usage: postern admin [-c FILE] COMMAND\ncommands:\n");
	for (size_t i = 0; i < ARRAY_LEN(admin_cmds); i++)
		fprintf(out, "  %s\n", admin_cmds[i].usage);
	return out == stdout ? ADMIN_OK : ADMIN_USAGE;
}

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "postern admin: %s", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int admin_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
	return ADMIN_FAIL;
}

void admin_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("warning: ", fmt, ap);
	va_end(ap);
}

/* "postern admin: WHAT 'ARG'" and the usage line of the subcommand; -1. */
static int usage_error(const char *what, const char *arg)
{
	char safe[128];

	if (arg)
		fprintf(stderr, "postern admin: %s '%s'\n", what,
			admin_printable(arg, safe, sizeof(safe)));
	else
		fprintf(stderr, "postern admin: %s\n", what);
	fprintf(stderr, "usage: postern admin [-c FILE] %s\n", current_usage);
	return -1;
}

/* "--scheme" takes a value, as the next argument or after '='. */
static int take_option(char **argv, int argc, int *i, unsigned allowed, struct admin_opts *o)
{
	const char *arg = argv[*i];

	if ((allowed & OPT_FORCE) && strcmp(arg, "--force") == 0) {
		o->force = true;
	} else if ((allowed & OPT_PASSWORD_STDIN) && strcmp(arg, "--password-stdin") == 0) {
		o->password_stdin = true;
	} else if ((allowed & OPT_SCHEME) && strncmp(arg, "--scheme=", 9) == 0) {
		o->scheme = arg + 9;
	} else if ((allowed & OPT_SCHEME) && strcmp(arg, "--scheme") == 0) {
		if (*i + 1 >= argc)
			return usage_error("a value is missing after option", arg);
		o->scheme = argv[++*i];
	} else {
		return usage_error("unknown option", arg);
	}
	return 0;
}

/* Parse argv[0..argc) allowing the options in `allowed` and minpos..maxpos positional
 * arguments; -1 after a usage message. */
static int parse_opts(int argc, char **argv, unsigned allowed, int minpos, int maxpos,
		      struct admin_opts *o)
{
	bool options_done = false;

	memset(o, 0, sizeof(*o));
	for (int i = 0; i < argc; i++) {
		if (!options_done && strcmp(argv[i], "--") == 0) {
			options_done = true;
		} else if (!options_done && argv[i][0] == '-' && argv[i][1] != '\0') {
			if (take_option(argv, argc, &i, allowed, o) < 0)
				return -1;
		} else if (o->npos >= maxpos || o->npos >= ADMIN_MAX_POS) {
			return usage_error("unexpected argument", argv[i]);
		} else {
			o->pos[o->npos++] = argv[i];
		}
	}
	if (o->npos < minpos)
		return usage_error("missing argument", NULL);
	return 0;
}

const char *admin_printable(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
	return out;
}

int admin_parse_address(const char *in, struct addr *out)
{
	char safe[ADDR_MAX + 1];

	if (addr_parse(in, NULL, out) == 0)
		return ADMIN_OK;
	return admin_fail("bad address syntax: '%s' (expected local-part@domain, at most %d + "
			  "%d characters, no spaces, control characters, '/' or '\\')",
			  admin_printable(in, safe, sizeof(safe)), ADDR_MAX_LOCAL,
			  ADDR_MAX_DOMAIN);
}

int admin_parse_domain(const char *in, char *out)
{
	char safe[ADDR_MAX_DOMAIN + 1], probe[ADDR_MAX + 2];
	struct addr a;

	if (strchr(in, '@') == NULL && str_fmt(probe, sizeof(probe), "x@%s", in) >= 0 &&
	    addr_parse(probe, NULL, &a) == 0) {
		str_copy(out, ADDR_MAX_DOMAIN + 1, a.domain);
		return ADMIN_OK;
	}
	return admin_fail("bad domain name: '%s' (letters, digits, '-' and '.', at most %d "
			  "characters)", admin_printable(in, safe, sizeof(safe)),
			  ADDR_MAX_DOMAIN);
}

static void conf_message(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "postern admin: %s\n", msg);
}

static const struct admin_cmd *find_cmd(int argc, char **argv)
{
	for (size_t i = 0; i < ARRAY_LEN(admin_cmds); i++) {
		const struct admin_cmd *c = &admin_cmds[i];

		if (argc < 1 || strcmp(argv[0], c->noun) != 0)
			continue;
		if (c->verb == NULL || (argc >= 2 && strcmp(argv[1], c->verb) == 0))
			return c;
	}
	return NULL;
}

/* Log where the other Postern programs log, so sqldb's warnings and the audit lines do not
 * clutter the terminal. */
static void open_log(const struct config *cfg)
{
	const char *file = conf_str(cfg, "log_file");

	if (*file)
		(void)log_open("admin", LOG_TARGET_FILE, file);
	else
		(void)log_open("admin", LOG_TARGET_SYSLOG, NULL);
}

static int open_db(struct admin_ctx *ctx)
{
	ctx->sql = sqlconf_load(conf_str(ctx->cfg, "sql_config"), true, conf_message, NULL);
	if (ctx->sql == NULL)
		return ADMIN_FAIL;
	sqldb_global_init();
	sqldb_thread_init();
	ctx->db = sqldb_new(ctx->sql, true);
	return ADMIN_OK;
}

static void close_ctx(struct admin_ctx *ctx)
{
	if (ctx->db) {
		sqldb_free(ctx->db);
		sqldb_thread_end();
		sqldb_global_end();
	}
	if (ctx->sql)
		conf_free(ctx->sql);
	conf_free(ctx->cfg);
}

int cmd_admin(int argc, char **argv)
{
	const char *conf_path = "/etc/postern/postern.conf";
	struct admin_ctx ctx = { 0 };
	const struct admin_cmd *cmd;
	struct admin_opts opts;
	int c, rc, words;

	while ((c = getopt(argc, argv, "+c:h")) != -1) {
		if (c == 'h')
			return usage(stdout);
		if (c != 'c')
			return usage(stderr);
		conf_path = optarg;
	}
	argc -= optind;
	argv += optind;
	cmd = find_cmd(argc, argv);
	if (cmd == NULL)
		return usage(stderr);
	current_usage = cmd->usage;
	words = cmd->verb ? 2 : 1;
	if (parse_opts(argc - words, argv + words, cmd->options, cmd->minpos, cmd->maxpos,
			     &opts) < 0)
		return ADMIN_USAGE;
	ctx.cfg = conf_load(conf_path, conf_message, NULL);
	if (ctx.cfg == NULL)
		return ADMIN_FAIL;
	open_log(ctx.cfg);
	rc = cmd->needs_db ? open_db(&ctx) : ADMIN_OK;
	if (rc == ADMIN_OK)
		rc = cmd->run(&ctx, &opts);
	close_ctx(&ctx);
	if (fflush(stdout) != 0 || ferror(stdout))
		rc = rc ? rc : admin_fail("cannot write the output");
	return rc;
}
