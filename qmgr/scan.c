/*
 * scan.c: how qmgr finds work. The queue daemon renames committed files into
 * incoming/X/Y/; inotify on those 256 directories tells qmgr at once, and a scan every
 * queue_run_delay (and at start-up) catches anything an event missed (an overflowed
 * inotify queue, a file left while qmgr was down), so nothing is ever stranded. deferred/
 * files carry their next attempt time as their mtime (as Postfix's do) and are taken when
 * it has passed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "util.h"

static const char hex[] = "0123456789ABCDEF";

int qdir_path(const char *qid, char *out, size_t outlen)
{
	char sub[QF_SUBDIR_SIZE];

	if (qid_subdir(qid, sub, sizeof(sub)) < 0 || str_fmt(out, outlen, "%s/%s", sub, qid) < 0)
		return -1;
	return 0;
}

bool qdir_exists(enum qdir d, const char *qid)
{
	char path[64];

	return qdir_path(qid, path, sizeof(path)) == 0 && faccessat(G.dfd[d], path, F_OK, 0) == 0;
}

int qdir_move(enum qdir from, enum qdir to, const char *qid)
{
	char path[64];

	if (qdir_path(qid, path, sizeof(path)) < 0) {
		errno = EINVAL;
		return -1;
	}
	return renameat(G.dfd[from], path, G.dfd[to], path);
}

int qdir_sync_subdir(enum qdir d, const char *qid)
{
	char sub[QF_SUBDIR_SIZE];
	int fd, rc;

	if (qid_subdir(qid, sub, sizeof(sub)) < 0)
		return -1;
	fd = openat(G.dfd[d], sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* X/ and X/Y/ below each directory that is organised by queue id. */
void qdir_subdirs(void)
{
	static const enum qdir dirs[] = { D_ACTIVE, D_DEFERRED, D_HOLD, D_DEFER };
	char path[4];

	for (size_t k = 0; k < ARRAY_LEN(dirs); k++)
		for (int i = 0; i < 16; i++) {
			path[0] = hex[i];
			path[1] = '\0';
			if (mkdirat(G.dfd[dirs[k]], path, 0700) < 0 && errno != EEXIST)
				msg_fatal("mkdir %s: %m", path);
			for (int j = 0; j < 16; j++) {
				path[1] = '/';
				path[2] = hex[j];
				path[3] = '\0';
				if (mkdirat(G.dfd[dirs[k]], path, 0700) < 0 && errno != EEXIST)
					msg_fatal("mkdir %s: %m", path);
			}
		}
}

void qdir_each(enum qdir d, void (*fn)(enum qdir d, const char *qid, int sub, void *arg),
	       void *arg)
{
	char path[4] = { 0 };

	for (int i = 0; i < 256; i++) {
		int fd;
		DIR *dir;
		struct dirent *e;

		path[0] = hex[i >> 4];
		path[1] = '/';
		path[2] = hex[i & 15];
		fd = openat(G.dfd[d], path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		dir = fdopendir(fd);
		if (dir == NULL) {
			close(fd);
			continue;
		}
		while ((e = readdir(dir)) != NULL)
			if (qid_valid(e->d_name))
				fn(d, e->d_name, dirfd(dir), arg);
		closedir(dir);
	}
}

static void take_incoming(enum qdir d, const char *qid, int sub, void *arg)
{
	(void)d, (void)sub, (void)arg;
	if (G.nactive >= G.active_limit) {
		G.incoming_backlog = true;
		return;
	}
	if (msg_find(qid) == NULL)
		msg_take_incoming(qid);
}

void scan_incoming(void)
{
	G.incoming_backlog = false;
	qdir_each(D_INCOMING, take_incoming, NULL);
}

static bool scan_scheduled;

static void scan_timer(struct ev_loop *loop, void *arg)
{
	(void)loop, (void)arg;
	scan_scheduled = false;
	scan_incoming();
	dispatch_run();
}

void scan_incoming_soon(void)
{
	scan_incoming_later(0);
}

void scan_incoming_later(int64_t ms)
{
	if (!scan_scheduled) {
		scan_scheduled = true;
		(void)ev_timer_add(G.loop, ms, scan_timer, NULL);
	}
}

static bool deferred_all;

static void take_deferred(enum qdir d, const char *qid, int sub, void *arg)
{
	struct stat st;
	int *count = arg;

	if (G.nactive >= G.active_limit)
		return;
	if (!deferred_all && (fstatat(sub, qid, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			      (int64_t)st.st_mtime * 1000 > wall_ms()))
		return;
	msg_take(d, qid);
	(*count)++;
}

int scan_deferred(bool all)
{
	int count = 0;

	deferred_all = all;
	qdir_each(D_DEFERRED, take_deferred, &count);
	return count;
}

static void load_active(enum qdir d, const char *qid, int sub, void *arg)
{
	(void)d, (void)sub, (void)arg;
	msg_load_active(qid);
}

/* An incoming/ file whose id is also in active/, deferred/ or hold/ is the unexpanded
 * original a crash left behind (qmgr.h): only a previous run can have left one, so this
 * check runs once, at start-up, not for every new message. */
static void drop_twin(enum qdir d, const char *qid, int sub, void *arg)
{
	(void)d, (void)arg;
	if (qdir_exists(D_ACTIVE, qid) || qdir_exists(D_DEFERRED, qid) ||
	    qdir_exists(D_HOLD, qid)) {
		msg_info("%s: removing the incoming/ leftover of an interrupted move", qid);
		(void)unlinkat(sub, qid, 0);
	}
}

void scan_startup(void)
{
	qdir_each(D_INCOMING, drop_twin, NULL);
	qdir_each(D_ACTIVE, load_active, NULL);
	scan_incoming();
	scan_deferred(false);
}

/* ---- inotify ---------------------------------------------------------------------------- */

static void on_inotify(struct ev_loop *loop, int fd, int revents, void *arg)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	(void)loop, (void)revents, (void)arg;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & IN_Q_OVERFLOW)
				G.incoming_backlog = true;
			else if (ev->len > 0 && qid_valid(ev->name))
				take_incoming(D_INCOMING, ev->name, -1, NULL);
			p += sizeof(*ev) + ev->len;
		}
	}
	if (G.incoming_backlog && G.nactive < G.active_limit)
		scan_incoming();
	dispatch_run();
}

void scan_init(const char *spool)
{
	char path[4096];

	G.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (G.inotify_fd < 0)
		msg_fatal("inotify_init: %m");
	for (int i = 0; i < 256; i++) {
		/* master made them (with their owner) before starting anyone */
		if (str_fmt(path, sizeof(path), "%s/queue/incoming/%c/%c", spool, hex[i >> 4],
			    hex[i & 15]) < 0)
			msg_fatal("spool_directory is too long");
		if (inotify_add_watch(G.inotify_fd, path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
			msg_fatal("inotify watch on %s: %m", path);
	}
}

void scan_watch(void)
{
	if (ev_fd_add(G.loop, G.inotify_fd, POLLIN, on_inotify, NULL) < 0)
		msg_fatal("cannot watch inotify: %m");
}
