/*
 * postern: the administration command (admin/). Subcommands:
 *
 *   postern check [-c FILE]      validate configuration and environment (check.c)
 *   postern admin [-c FILE] ...  domains, users, aliases, lookups (admin*.c)
 *
 * Later issues add queue control and start/stop.
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
