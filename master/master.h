/*
 * master.h: the master supervisor's shared state. master is the only process that stays
 * root; it never parses network input. It binds every listener and private socket, starts
 * each service of the service table (lib/services.c) as an unprivileged child, keeps pools
 * sized to demand, restarts what dies, throttles what keeps failing, reloads on SIGHUP and
 * stops everything on SIGTERM.
 */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "event.h"
#include "server.h"
#include "services.h"

struct service;

struct child {
	pid_t pid;
	struct service *svc;	/* NULL once the service was removed by a reload */
	const struct service_def *def;	/* for log messages; static, outlives svc */
	bool avail;		/* counted in svc->navail */
	bool ready;		/* reported at least once: start-up succeeded */
	bool retired;		/* told to finish and exit (reload or stop) */
	int64_t started;	/* mono ms */
	struct child *next;
};

struct service {
	const struct service_def *def;
	char *signature;	/* everything that requires new processes when it changes */
	char *listen_sig;	/* the listener addresses, to keep sockets across a reload */
	char **argv;		/* full argument vector, NULL-terminated */
	int limit;		/* process limit (1 for single daemons) */
	int nlisten;
	int listen_fd[SERVER_MAX_LISTEN];
	char *listen_desc[SERVER_MAX_LISTEN];
	int status_rd, status_wr;	/* the pool's status pipe */
	int nproc, navail;
	bool watching;		/* listeners registered with the event loop */
	bool busy_warned;
	bool stopped;		/* removed or replaced: never watch or spawn again */
	int64_t throttled_until;
	uint64_t throttle_timer;
	uint64_t restart_timer;
	int crashes;		/* abnormal exits in the current window */
	int64_t crash_window;
	struct service *next;
};

struct master {
	const char *conf_path;
	struct config *cfg;
	struct ev_loop *loop;
	struct service *services;
	struct child *children;
	bool foreground;
	bool dev_mode;		/* -u */
	int verbose;
	bool stopping;
	char *pid_path;
};

extern struct master M;

/* spool.c */
void spool_prepare(const struct config *cfg, bool dev_mode);

/* service.c */
struct service *service_build(const struct service_def *def, const struct config *cfg,
			      const char *conf_path);
int service_bind(struct service *svc, const struct config *cfg);
void service_take_listeners(struct service *to, struct service *from);
void service_free(struct service *svc);
struct service *services_build_all(const struct config *cfg, const char *conf_path);

/* spawn.c */
#define SPAWN_ENV_MAX 16
void spawn_child(struct service *svc);
/* The environment children get: PATH, sanitizer settings, TZ (env[SPAWN_ENV_MAX]). */
void spawn_build_env(char **env);

/* session.c: private/session, mail sessions for the login processes (sessionproto.h) */
void session_init(void);
void session_configure(const struct config *cfg);
/* supervise_reap hands over pids that are not service children: true if it was a session. */
bool session_reaped(pid_t pid, int status);
void session_signal_all(int sig);
int session_count(void);

/* supervise.c */
void supervise_start(struct service *svc);
void supervise_stop(struct service *svc);
void supervise_retire_children(struct service *svc, bool detach);
void supervise_update(struct service *svc);
void supervise_reap(void);
void supervise_signal_all(int sig);
int supervise_live_children(void);

/* reload.c */
void master_reload(void);

/* daemon.c */
int pidfile_lock(const char *path);
void pidfile_write(int fd);
void daemon_begin(void);
void daemon_ready(void);

#endif
