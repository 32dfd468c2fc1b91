/*
 * check.c: `postern check`: validate postern.conf and the environment it describes, one
 * line per problem ("FILE:LINE: ..." when a line of a file is at fault), exit status 1 if
 * there is any problem. Silent when all is well, like `postfix check`.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "inet.h"
#include "privsep.h"
#include "services.h"
#include "sqlconf.h"
#include "tls.h"
#include "util.h"

static int problems;

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	problems++;
}

static void conf_problem(const char *msg, void *arg)
{
	(void)arg;
	problem("%s", msg);
}

static void check_users(const struct config *cfg)
{
	static const char *const user_params[] = {
		"mail_owner", "queue_owner", "auth_owner", "vmail_owner",
	};
	uid_t uid;
	gid_t gid;

	for (size_t i = 0; i < ARRAY_LEN(user_params); i++) {
		const char *name = conf_str(cfg, user_params[i]);

		if (privsep_lookup_user(name, &uid, &gid) < 0)
			problem("%s: user '%s' does not exist", user_params[i], name);
		else if (uid == 0)
			problem("%s: '%s' is root; daemons must not run as root", user_params[i],
				name);
	}
	if (privsep_lookup_group(conf_str(cfg, "setgid_group"), &gid) < 0)
		problem("setgid_group: group '%s' does not exist", conf_str(cfg, "setgid_group"));
}

static void check_dir(const char *param, const char *path, bool must_exist)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (must_exist || errno != ENOENT)
			problem("%s: %s: %s", param, path, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode))
		problem("%s: %s is not a directory", param, path);
	else if (st.st_mode & S_IWOTH)
		problem("%s: %s is world-writable", param, path);
}

static void check_spool(const struct config *cfg)
{
	const char *spool = conf_str(cfg, "spool_directory");
	char parent[4096];
	char *slash;

	if (spool[0] != '/') {
		problem("spool_directory: '%s' is not an absolute path", spool);
		return;
	}
	check_dir("spool_directory", spool, false);
	str_copy(parent, sizeof(parent), spool);
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		check_dir("spool_directory", parent, true);
	}
	check_dir("virtual_mailbox_base", conf_str(cfg, "virtual_mailbox_base"), true);
	check_dir("daemon_directory", conf_str(cfg, "daemon_directory"), true);
}

/* Two services (or one twice) on one address cannot both bind. */
static void check_listeners(const struct config *cfg, const struct service_def *def,
			    char seen[][64], size_t *nseen, size_t maxseen)
{
	size_t nspec, nif;
	const char *const *spec = conf_list(cfg, def->listen_param, &nspec);
	const char *const *ifs = conf_list(cfg, "inet_interfaces", &nif);
	struct inet_addr addrs[INET_MAX_ADDRS];
	char err[256], desc[64];

	for (size_t i = 0; i < nspec; i++) {
		int n = inet_listen_expand(spec[i], ifs, nif, addrs, INET_MAX_ADDRS, err,
					   sizeof(err));

		if (n < 0) {
			problem("%s: %s", def->listen_param, err);
			continue;
		}
		for (int j = 0; j < n; j++) {
			inet_format((struct sockaddr *)&addrs[j].ss, desc, sizeof(desc));
			for (size_t k = 0; k < *nseen; k++)
				if (strcmp(seen[k], desc) == 0)
					problem("%s: %s is used by another listener", def->listen_param,
						desc);
			if (*nseen < maxseen)
				str_copy(seen[(*nseen)++], 64, desc);
		}
	}
}

static void check_services(const struct config *cfg)
{
	char seen[256][64], path[4096];
	size_t nseen = 0;

	for (size_t i = 0; i < service_table_len; i++) {
		const struct service_def *def = &service_table[i];

		if (def->enable_param && !conf_bool(cfg, def->enable_param))
			continue;
		if (def->listen_param)
			check_listeners(cfg, def, seen, &nseen, ARRAY_LEN(seen));
		if (str_fmt(path, sizeof(path), "%s/%s", conf_str(cfg, "daemon_directory"),
			    def->command) >= 0 && access(path, X_OK) < 0)
			problem("service %s: %s: %s", def->name, path, strerror(errno));
	}
}

static void check_tls(const struct config *cfg)
{
	char err[512];
	struct tls_server *t;

	t = tls_server_new(conf_str(cfg, "tls_cert_file"), conf_str(cfg, "tls_key_file"), err,
			   sizeof(err));
	if (t == NULL)
		problem("tls_cert_file/tls_key_file: %s", err);
	else
		tls_server_free(t);
}

/* sql.conf holds the database password: nobody but its owner may read it, and its queries
 * must be valid templates. Problems come back as FILE:LINE lines. */
static void check_sql_conf(const struct config *cfg)
{
	const char *path = conf_str(cfg, "sql_config");
	struct config *sql;
	struct stat st;

	if (stat(path, &st) < 0) {
		problem("sql_config: %s: %s", path, strerror(errno));
		return;
	}
	sql = sqlconf_load(path, true, conf_problem, NULL);
	if (sql)
		conf_free(sql);
}

static void check_log(const struct config *cfg)
{
	const char *file = conf_str(cfg, "log_file");
	char dir[4096], *slash;

	if (*file == '\0')
		return;
	str_copy(dir, sizeof(dir), file);
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		problem("log_file: '%s' is not an absolute path", file);
		return;
	}
	*slash = '\0';
	check_dir("log_file", *dir ? dir : "/", true);
}

int cmd_check(int argc, char **argv)
{
	const char *conf_path = "/etc/postern/postern.conf";
	struct config *cfg;
	int c;

	while ((c = getopt(argc, argv, "c:")) != -1) {
		if (c != 'c') {
			fprintf(stderr, "usage: postern check [-c FILE]\n");
			return 2;
		}
		conf_path = optarg;
	}
	cfg = conf_load(conf_path, conf_problem, NULL);
	if (cfg == NULL)
		return 1;
	check_users(cfg);
	check_spool(cfg);
	check_services(cfg);
	check_tls(cfg);
	check_sql_conf(cfg);
	check_log(cfg);
	conf_free(cfg);
	return problems ? 1 : 0;
}
