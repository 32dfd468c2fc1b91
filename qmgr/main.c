/*
 * postern-qmgr: the queue manager (issue 5; Postfix's qmgr(8)). It takes committed
 * messages from incoming/, expands their aliases through authd, hands their recipients to
 * the delivery agents (virtual, local, smtp) with the queue file open read-only, records
 * each result in the file, retries what failed temporarily with back-off, and returns what
 * failed for good to the sender. Table of contents:
 *
 *   main.c      start-up, settings, the periodic queue run
 *   scan.c      finding work: inotify on incoming/, scans of incoming/ and deferred/
 *   message.c   a message's life in active/: results, removal, deferral, hold, expiry
 *   resolve.c   authd lookups: alias expansion, the transport of each recipient
 *   rewrite.c   the expanded copy of a message whose aliases changed its recipients
 *   dispatch.c  jobs per destination, concurrency limits, agent connections, replies
 *   bounce.c    RFC 3464 reports queued as new messages
 *   deferlog.c  why deferred recipients wait (for mailq and the final bounce)
 *   control.c   private/qmgr: flush, delete, hold, release, requeue for `postern queue`
 *
 * Start-up (as root, pre_drop): open the queue directories and set up inotify on the 256
 * incoming/ directories while their paths are reachable; master's skeleton then chroots
 * into the spool and drops to queue_owner. The event loop does everything; nothing blocks
 * but authd lookups (answered from authd's cache in microseconds, bounded by a timeout).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "authproto.h"
#include "log.h"
#include "qmgr.h"
#include "server.h"
#include "util.h"

struct qmgr G = { .auth_sock = -1, .inotify_fd = -1 };

static const char *const dir_names[D_COUNT] = {
	[D_INCOMING] = "incoming", [D_ACTIVE] = "active", [D_DEFERRED] = "deferred",
	[D_HOLD] = "hold", [D_DEFER] = "defer", [D_TMP] = "tmp", [D_CORRUPT] = "corrupt",
};

static void open_directories(const char *spool)
{
	char path[4096];

	for (int d = 0; d < D_COUNT; d++) {
		if (str_fmt(path, sizeof(path), "%s/queue/%s", spool, dir_names[d]) < 0)
			msg_fatal("spool_directory is too long");
		G.dfd[d] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (G.dfd[d] < 0)
			msg_fatal("open directory %s: %m", path);
	}
}

static void pre_drop(struct server *srv)
{
	const char *spool = conf_str(srv->cfg, "spool_directory");
	const char *const root[] = { "root", NULL };

	G.cfg = srv->cfg;
	if (ipc_allow_init(&G.control_allow, root) < 0)
		msg_fatal("cannot resolve root");
	if (srv->dev_mode && G.control_allow.n < IPC_MAX_ALLOW)
		G.control_allow.uid[G.control_allow.n++] = geteuid();
	open_directories(spool);
	scan_init(spool);
}

static void load_settings(struct server *srv)
{
	static const char *const sock[T_COUNT] = { "virtual", "local", "smtp" };
	const char *spool = srv->dev_mode ? conf_str(srv->cfg, "spool_directory") : "";

	G.myhostname = conf_str(srv->cfg, "myhostname");
	G.relayhost = conf_str(srv->cfg, "relayhost");
	G.bounce_notice_recipient = conf_str(srv->cfg, "bounce_notice_recipient");
	G.dest_limit = (int)conf_int(srv->cfg, "default_destination_concurrency_limit");
	G.min_backoff = conf_time_ms(srv->cfg, "minimal_backoff_time");
	G.max_backoff = conf_time_ms(srv->cfg, "maximal_backoff_time");
	G.run_delay = conf_time_ms(srv->cfg, "queue_run_delay");
	G.lifetime = conf_time_ms(srv->cfg, "maximal_queue_lifetime");
	G.bounce_lifetime = conf_time_ms(srv->cfg, "bounce_queue_lifetime");
	G.active_limit = (int)conf_int(srv->cfg, "qmgr_message_active_limit");
	G.expansion_limit = (int)conf_int(srv->cfg, "alias_expansion_limit");
	G.recursion_limit = (int)conf_int(srv->cfg, "alias_recursion_limit");
	if (str_fmt(G.auth_path, sizeof(G.auth_path), "%s/%s", spool, AUTH_SOCKET) < 0)
		msg_fatal("spool_directory is too long");
	dispatch_init();
	for (int t = 0; t < T_COUNT; t++)
		if (str_fmt(G.tr[t].sock_path, sizeof(G.tr[t].sock_path), "%s/private/%s", spool,
			    sock[t]) < 0)
			msg_fatal("spool_directory is too long");
}

static void post_drop(struct server *srv)
{
	load_settings(srv);
	ipc_server_raise_fd_limit();	/* one descriptor per active message */
	qdir_subdirs();
}

/* The queue run: deferred mail that is due, and anything incoming/ still holds. */
static void on_queue_run(struct ev_loop *loop, void *arg)
{
	(void)arg;
	scan_incoming();
	(void)scan_deferred(false);
	dispatch_run();
	(void)ev_timer_add(loop, G.run_delay, on_queue_run, NULL);
}

static int run(struct server *srv)
{
	G.loop = ev_new();
	G.control = ipc_server_new(G.loop, QMGR_MAX_CONTROL, &control_ops, NULL);
	if (ipc_server_listen(G.control, srv->listen_fd, srv->nlisten) < 0)
		msg_fatal("cannot watch listener: %m");
	ipc_server_signals(G.loop, NULL);
	scan_watch();
	server_report_ready(srv);
	msg_info("ready: %d messages at most in active/, queue run every %llds", G.active_limit,
		 (long long)(G.run_delay / 1000));
	scan_startup();
	dispatch_run();
	(void)ev_timer_add(G.loop, G.run_delay, on_queue_run, NULL);
	ev_run(G.loop);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct server_hooks hooks = {
		.pre_drop = pre_drop,
		.post_drop = post_drop,
		.run = run,
	};

	server_main(argc, argv, SERVER_SINGLE_MODE, &hooks);
}
