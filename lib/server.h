/*
 * server.h: the skeleton every daemon started by master runs in (Postfix's single_server /
 * multi_server, in one file). It parses the arguments master passes, loads the
 * configuration, opens the log, lets the daemon read its secrets as root, drops privileges
 * (DESIGN.md §1), and then either
 *   - pool: waits for connections on the inherited listeners, serves one client at a time,
 *     tells master over the status pipe whether it is available or busy, and exits after
 *     max_use clients, after max_idle seconds without one, or after a graceful SIGHUP; or
 *   - single: hands control to the daemon's run() with the listeners.
 *
 * Descriptor contract with master: fd 3 is the write end of the service's status pipe
 * (absent with -S), fds 4 .. 4+N-1 are the N listeners (-l N).
 * Arguments: -c CONF -n SERVICE [-l N] [-U USER] [-R ROOTDIR] [-K CAPS] [-u] [-f] [-v] [-S]
 *            [-- service arguments]
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "config.h"

#define SERVER_STATUS_FD	3
#define SERVER_LISTEN_FD	4
#define SERVER_MAX_LISTEN	32

/* One record on the status pipe; small enough to be written atomically. */
struct server_status {
	int pid;
	int avail;	/* 1 available, 0 busy */
};

struct server {
	const char *service;
	const char *conf_path;
	struct config *cfg;
	bool dev_mode;		/* -u: no user switch, no chroot */
	bool foreground;	/* -f: log to stderr */
	int nlisten;
	int listen_fd[SERVER_MAX_LISTEN];
	int status_fd;		/* -1 when not started by master */
	int argc;		/* service arguments after "--" */
	char **argv;
	void *ctx;		/* the daemon's own state */
};

struct server_hooks {
	/* As root, before the drop: read secrets (TLS keys, DB password). Optional. */
	void (*pre_drop)(struct server *srv);
	/* After the drop. Optional. */
	void (*post_drop)(struct server *srv);
	/* Pool: serve one client; the skeleton closes fd afterwards. SIGHUP (graceful stop)
	 * interrupts blocking calls with EINTR: retry them, then check server_stopping(). */
	void (*serve)(struct server *srv, int fd, int listener, const struct sockaddr *peer,
		      socklen_t peerlen);
	/* Single: run until told to stop; return value is the exit status. */
	int (*run)(struct server *srv);
};

enum server_mode { SERVER_POOL_MODE, SERVER_SINGLE_MODE };

/* Entry point of a daemon's main(); never returns. */
__attribute__((noreturn)) void server_main(int argc, char **argv, enum server_mode mode,
					   const struct server_hooks *hooks);

/* For single daemons: tell master start-up is complete (pools do this themselves). */
void server_report_ready(struct server *srv);
/* Set by SIGHUP in a pool process: finish the current client, then exit. */
bool server_stopping(void);

#endif
