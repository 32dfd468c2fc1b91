/*
 * services.h: the service table, Postern's master.cf. Each entry says which program runs a
 * service, as whom, where it is chrooted, which capabilities it keeps, how it is started
 * (a pool competing for connections on inherited sockets, or one long-lived daemon) and
 * which sockets it serves. master runs it; `postern check` validates it. Tunables live in
 * postern.conf (listen addresses, process limits) and are named here by parameter.
 */
#ifndef POSTERN_SERVICES_H
#define POSTERN_SERVICES_H

#include <stdbool.h>
#include <stddef.h>

enum service_kind {
	SERVICE_POOL,	/* on demand, up to a process limit; one client per process at a time */
	SERVICE_SINGLE,	/* exactly one long-lived process, restarted if it dies */
};

enum service_root {
	ROOT_NONE,	/* not chrooted */
	ROOT_SPOOL,	/* chroot into $spool_directory */
	ROOT_EMPTY,	/* chroot into $spool_directory/empty (login processes) */
};

struct service_def {
	const char *name;		/* also the -n argument and the log name */
	enum service_kind kind;
	const char *command;		/* program in $daemon_directory */
	const char *args;		/* extra arguments, space separated, or "" */
	const char *user_param;		/* parameter naming the user, or "root" */
	enum service_root root;
	const char *keep_caps;		/* capabilities kept (DESIGN.md §1), or NULL */
	const char *listen_param;	/* list of inet listeners, or NULL */
	const char *limit_param;	/* process limit parameter (pools), or NULL */
	const char *private_socket;	/* name under private/, or NULL */
	const char *socket_group_param;	/* group allowed to connect to it (mode 0660) */
	const char *enable_param;	/* boolean parameter that enables it, or NULL = always */
};

extern const struct service_def service_table[];
extern const size_t service_table_len;

#endif
