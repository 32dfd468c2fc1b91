/*
 * tmpfiles.c: the queue daemon's files in queue/tmp and its housekeeping: free-space checks
 * before a file is created, creation under a fresh queue id, removal of uncommitted files,
 * the stale-file sweep at start-up, the 256 incoming/ subdirectories, and moves into
 * corrupt/ (kept, never silently deleted).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "util.h"

/* Free space must stay above queue_minfree and leave room for one maximal queue file. */
int tmp_space_ok(char *reason, size_t reasonlen)
{
	struct statvfs sv;
	uint64_t avail, floor = Q.minfree > Q.file_limit ? Q.minfree : Q.file_limit;

	if (fstatvfs(Q.queue_dfd, &sv) < 0) {
		str_fmt(reason, reasonlen, "cannot check free space: %s", strerror(errno));
		msg_warn("fstatvfs queue: %m");
		return -1;
	}
	avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	if (avail < floor) {
		str_fmt(reason, reasonlen, "insufficient queue space");
		msg_warn("not enough free space in the queue file system: %llu bytes available, "
			 "%llu needed (queue_minfree, queue file size limit)",
			 (unsigned long long)avail, (unsigned long long)floor);
		return -1;
	}
	return 0;
}

int tmp_create(struct tmpfile *tf, char *reason, size_t reasonlen)
{
	if (qid_new(tf->qid, sizeof(tf->qid)) < 0) {
		str_fmt(reason, reasonlen, "cannot make a queue id");
		return -1;
	}
	tf->fd = openat(Q.tmp_dfd, tf->qid,
			O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (tf->fd < 0) {
		int saved = errno;

		msg_warn("create queue/tmp/%s: %m", tf->qid);
		str_fmt(reason, reasonlen, "cannot create queue file: %s", strerror(saved));
		errno = saved;
		return -1;
	}
	Q.ntmp++;
	return 0;
}

void tmp_discard(struct tmpfile *tf)
{
	if (tf->fd < 0)
		return;
	if (unlinkat(Q.tmp_dfd, tf->qid, 0) < 0 && errno != ENOENT)
		msg_warn("remove queue/tmp/%s: %m", tf->qid);
	close(tf->fd);
	tf->fd = -1;
	Q.ntmp--;
}

/* Nothing in tmp/ survives a restart: no client was ever told its file was queued. */
void tmp_clean_stale(void)
{
	int fd = dup(Q.tmp_dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		msg_fatal("read queue/tmp: %m");
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(Q.tmp_dfd, de->d_name, 0) < 0)
			msg_warn("remove stale queue/tmp/%s: %m", de->d_name);
		else
			n++;
	}
	closedir(d);
	if (n > 0)
		msg_info("removed %d uncommitted file%s from queue/tmp", n, n == 1 ? "" : "s");
}

static void sync_dir(const char *path)
{
	int fd = openat(Q.incoming_dfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0 || fsync(fd) < 0)
		msg_warn("fsync queue/incoming/%s: %m", path);
	if (fd >= 0)
		close(fd);
}

/* incoming/0/0 .. incoming/F/F, matching qid_subdir(); the new entries made durable. */
void incoming_make_subdirs(void)
{
	static const char hex[] = "0123456789ABCDEF";
	char path[8];

	for (int i = 0; i < 16; i++) {
		path[0] = hex[i];
		path[1] = '\0';
		if (mkdirat(Q.incoming_dfd, path, 0700) < 0 && errno != EEXIST)
			msg_fatal("mkdir queue/incoming/%s: %m", path);
		for (int j = 0; j < 16; j++) {
			path[1] = '/';
			path[2] = hex[j];
			path[3] = '\0';
			if (mkdirat(Q.incoming_dfd, path, 0700) < 0 && errno != EEXIST)
				msg_fatal("mkdir queue/incoming/%s: %m", path);
		}
		path[1] = '\0';
		sync_dir(path);
	}
	if (fsync(Q.incoming_dfd) < 0)
		msg_warn("fsync queue/incoming: %m");
}

int corrupt_move(int dfd, const char *name, char *newname, size_t newlen)
{
	if (qid_new(newname, newlen) < 0)
		return -1;
	if (renameat(dfd, name, Q.corrupt_dfd, newname) < 0)
		return -1;
	if (fsync(Q.corrupt_dfd) < 0)
		msg_warn("fsync queue/corrupt: %m");
	return 0;
}
