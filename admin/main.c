/*
 * postern: the administration command (admin/). Subcommands:
 *
 *   postern check [-c FILE]      validate configuration and environment (check.c)
 *   postern admin [-c FILE] ...  domains, users, aliases, lookups (admin*.c)
 *   postern mailq [-c FILE]      list the queue (admin_mailq.c); also run as `mailq`
 *   postern queue [-c FILE] ...  list, flush, delete, hold, release, requeue (admin_queue.c)
 *   postern flush [-c FILE]      short for `postern queue flush`
 *   postern import [--postfix DIR] [--dovecot DIR] [-o DIR] [-n] [--force]   (import*.c)
 *   postern start|stop|reload|status [-c FILE]   run and control postern-master (ctl.c)
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "version.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "check", cmd_check, "check [-c FILE]   validate configuration and environment" },
	{ "admin", cmd_admin, "admin [-c FILE] domain|user|alias|lookup|auth ...   manage "
	  "virtual domains, users and aliases (postern admin -h)" },
	{ "mailq", cmd_mailq, "mailq [-c FILE]   list the mail queue (also run as mailq)" },
	{ "queue", cmd_queue, "queue [-c FILE] list|flush|delete|hold|release|requeue ...   "
	  "control the mail queue (postern queue -h)" },
	{ "flush", cmd_flush, "flush [-c FILE]   try all deferred mail now" },
	{ "import", cmd_import, "import [--postfix DIR] [--dovecot DIR] [-o DIR] [-n] [--force]"
	  "   write postern.conf and sql.conf from a Postfix + Dovecot set-up" },
	{ "start", cmd_start, "start [-c FILE]   start postern-master (hosts without systemd)" },
	{ "stop", cmd_stop, "stop [-c FILE]    stop postern-master and its daemons" },
	{ "reload", cmd_reload, "reload [-c FILE]  re-read postern.conf (SIGHUP to master)" },
	{ "status", cmd_status, "status [-c FILE]  is postern-master running? (exit 0 or 3)" },
};

static int usage(void)
{
	fprintf(stderr, "usage: postern COMMAND [options]\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(stderr, "  %s\n", commands[i].help);
	return 2;
}

int main(int argc, char **argv)
{
	log_open("postern", LOG_TARGET_STDERR, NULL);
	/* Installed as mailq too (a link), like Sendmail's and Postfix's. */
	if (argc >= 1) {
		const char *slash = strrchr(argv[0], '/');

		if (strcmp(slash ? slash + 1 : argv[0], "mailq") == 0)
			return cmd_mailq(argc, argv);
	}
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("postern %s\n", POSTERN_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return usage();
}
