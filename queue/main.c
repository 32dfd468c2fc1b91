/*
 * postern-queue: the queue daemon (issue 4, DESIGN.md §4). It alone creates queue files:
 * smtpd asks it for a new file (CREATE), writes the message into the descriptor it gets,
 * and asks for the commit (COMMIT), which is answered only once the file is validated and
 * durable in incoming/ (lib/queueproto.h). It also picks up maildrop/ files written by
 * sendmail, validating them as untrusted input.
 *
 * Start-up (as root, pre_drop): open the queue directories and maildrop/ (every later file
 * operation is relative to these descriptors), resolve the allow-list and the pickup's
 * inotify watch and user names while /etc/passwd is at hand. After the drop to queue_owner
 * (chrooted in the spool): make the 256 incoming/ subdirectories, remove what a previous
 * instance left in tmp/ (nobody was told 250 for it), start the committer thread, then
 * serve the private socket and scan maildrop/ until SIGTERM.
 */
#include <fcntl.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "server.h"
#include "util.h"

struct queued Q = { .queue_dfd = -1, .tmp_dfd = -1, .incoming_dfd = -1, .corrupt_dfd = -1,
		    .maildrop_dfd = -1, .inotify_fd = -1 };

static int open_dir(int at, const char *path)
{
	int fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		msg_fatal("open directory %s: %m", path);
	return fd;
}

static void open_directories(const struct config *cfg)
{
	int spool = open_dir(AT_FDCWD, conf_str(cfg, "spool_directory"));

	Q.queue_dfd = open_dir(spool, "queue");
	Q.tmp_dfd = open_dir(Q.queue_dfd, "tmp");
	Q.incoming_dfd = open_dir(Q.queue_dfd, "incoming");
	Q.corrupt_dfd = open_dir(Q.queue_dfd, "corrupt");
	Q.maildrop_dfd = open_dir(spool, "maildrop");
	close(spool);
}

/* The size limits: a queue file holds the message plus an envelope of at most ~1 MiB. */
static void read_limits(const struct config *cfg)
{
	uint64_t limit = (uint64_t)conf_size(cfg, "queue_file_size_limit");

	if (limit == 0)
		limit = (uint64_t)conf_size(cfg, "message_size_limit") + (1u << 20);
	Q.file_limit = limit;
	Q.minfree = (uint64_t)conf_size(cfg, "queue_minfree");
}

static void pre_drop(struct server *srv)
{
	const char *const allowed[] = { "root", conf_str(srv->cfg, "mail_owner"), NULL };

	Q.cfg = srv->cfg;
	if (ipc_allow_init(&Q.allow, allowed) < 0)
		msg_warn("mail_owner %s is not a known user", conf_str(srv->cfg, "mail_owner"));
	read_limits(srv->cfg);
	open_directories(srv->cfg);
	pickup_init(srv->cfg);
}

static void post_drop(struct server *srv)
{
	(void)srv;
	/* Each client may hold a few uncommitted files: descriptors must not run out. */
	ipc_server_raise_fd_limit();
	incoming_make_subdirs();
	tmp_clean_stale();
	committer_start();
}

static int run(struct server *srv)
{
	Q.loop = ev_new();
	committer_attach(Q.loop);
	Q.srv = ipc_server_new(Q.loop, QUEUE_MAX_CLIENTS, &conn_ops, NULL);
	if (ipc_server_listen(Q.srv, srv->listen_fd, srv->nlisten) < 0)
		msg_fatal("cannot watch listener: %m");
	ipc_server_signals(Q.loop, NULL);	/* SIGHUP: nothing cached to drop */
	pickup_start(Q.loop);
	server_report_ready(srv);
	msg_info("ready: queue file size limit %llu, queue_minfree %llu",
		 (unsigned long long)Q.file_limit, (unsigned long long)Q.minfree);
	ev_run(Q.loop);
	committer_stop();
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
