/*
 * mailstore_lock.c: Dovecot's dot-lock protocol (src/lib/file-dotlock.c), which guards
 * dovecot-uidlist, dovecot-keywords and subscriptions: TARGET.lock is created with O_EXCL
 * (Dovecot's default dotlock_use_excl) and holds "pid:hostname". A waiter overrides it when
 * its owner is a dead process on this host (checked once the lock is a couple of seconds
 * old), or when neither the lock nor the target has changed for the stale timeout. Every
 * path is relative to the directory descriptor and opened with O_NOFOLLOW.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mailstore_priv.h"
#include "util.h"

/* Dovecot waits 0.1-0.2 s at first, growing by half each round, up to 3 s. */
#define WAIT_FIRST_US	100000
#define WAIT_MAX_US	1000000

/* What a waiter knows about the lock and the target, to tell when they last changed. */
struct lock_watch {
	bool seen, target_seen;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	dev_t tdev;
	ino_t tino;
	struct timespec tmtime, tctime;
	time_t last_change;
};

static void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The pid in a lock file written by a process on this host, else -1. */
static pid_t lock_owner_pid(int dirfd, const char *path, const char *host)
{
	char text[512], *colon, *end;
	ssize_t n;
	long pid;
	int fd = openat(dirfd, path, O_RDONLY | MS_FILE_FLAGS);

	if (fd < 0)
		return -1;
	n = read_full(fd, text, sizeof(text) - 1);
	(void)close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	if (text[n - 1] == '\n')
		text[n - 1] = '\0';
	colon = strchr(text, ':');
	if (colon == NULL || strcmp(colon + 1, host) != 0)
		return -1;
	*colon = '\0';
	errno = 0;
	pid = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || pid <= 0 || pid > 0x7fffffff)
		return -1;
	return (pid_t)pid;
}

/* Note a change of the lock file; the first sighting dates it from its own times. */
static void watch_lock(struct lock_watch *w, const struct stat *st, time_t now)
{
	if (w->seen && w->dev == st->st_dev && w->ino == st->st_ino && w->size == st->st_size &&
	    ms_ts_eq(w->mtime, st->st_mtim) && ms_ts_eq(w->ctime, st->st_ctim))
		return;
	if (!w->seen)
		w->last_change = st->st_mtime <= now && st->st_mtime > st->st_ctime ?
				 st->st_mtime : st->st_ctime;
	else
		w->last_change = now;
	w->seen = true;
	w->dev = st->st_dev;
	w->ino = st->st_ino;
	w->size = st->st_size;
	w->mtime = st->st_mtim;
	w->ctime = st->st_ctim;
}

/* The target changing counts as the lock's owner being alive. */
static void watch_target(struct lock_watch *w, int dirfd, const char *target, time_t now)
{
	struct stat st;
	time_t t;

	if (fstatat(dirfd, target, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;		/* a missing target has not changed */
	if (w->target_seen && w->tdev == st.st_dev && w->tino == st.st_ino &&
	    ms_ts_eq(w->tmtime, st.st_mtim) && ms_ts_eq(w->tctime, st.st_ctim))
		return;
	t = w->target_seen ? now : (st.st_mtime > st.st_ctime ? st.st_mtime : st.st_ctime);
	if (t > now)
		t = now;
	if (t > w->last_change)
		w->last_change = t;
	w->target_seen = true;
	w->tdev = st.st_dev;
	w->tino = st.st_ino;
	w->tmtime = st.st_mtim;
	w->tctime = st.st_ctim;
}

/* Remove the stale lock if it is still the file we judged. */
static int override_lock(struct ms_lock *l, const struct stat *judged)
{
	struct stat st;

	if (fstatat(l->dirfd, l->path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_ino == judged->st_ino && st.st_dev == judged->st_dev &&
	    unlinkat(l->dirfd, l->path, 0) < 0 && errno != ENOENT)
		return -1;
	/* Let another overrider finish before we create ours (as Dovecot does). */
	sleep_us(random() % 20000);
	return 1;
}

/* 1: the lock is gone or was overridden (try again), 0: wait, -1: error. */
static int check_lock(struct ms_lock *l, struct lock_watch *w, const char *host, int stale)
{
	time_t now = time(NULL);
	struct stat st;
	pid_t pid;

	if (fstatat(l->dirfd, l->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 1 : -1;
	watch_lock(w, &st, now);
	if (st.st_mtime < now - MS_LOCK_PID_CHECK_SECS) {
		pid = lock_owner_pid(l->dirfd, l->path, host);
		/* Our own pid can only be a leftover: locks never outlive a call here. */
		if (pid > 0 && (pid == getpid() || (kill(pid, 0) < 0 && errno == ESRCH)))
			return override_lock(l, &st);
	}
	if (stale <= 0 || now <= w->last_change + stale)
		return 0;
	watch_target(w, l->dirfd, l->target, now);
	return now > w->last_change + stale ? override_lock(l, &st) : 0;
}

/* Create the lock file; 1 created, 0 exists, -1 error. */
static int try_create(struct ms_lock *l, const char *host)
{
	char text[300];
	struct stat st;
	int fd, len;

	fd = openat(l->dirfd, l->path, O_WRONLY | O_CREAT | O_EXCL | MS_FILE_FLAGS, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	len = str_fmt(text, sizeof(text), "%ld:%s", (long)getpid(), host);
	/* Like Dovecot, an unwritable pid only leaves the lock empty (or truncated). */
	if ((len < 0 || write_all(fd, text, (size_t)len) < 0) && ftruncate(fd, 0) < 0)
		errno = 0;
	if (fstat(fd, &st) < 0) {
		ms_close(fd);
		(void)unlinkat(l->dirfd, l->path, 0);
		return -1;
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return 1;
}

int ms_lock_take(struct ms_lock *l, int dirfd, const char *target, const char *host,
		 int stale_secs, int wait_secs)
{
	struct lock_watch w = { 0 };
	int64_t deadline = mono_ms() + (int64_t)wait_secs * 1000;
	long wait_us = WAIT_FIRST_US + random() % WAIT_FIRST_US;
	int rc;

	memset(l, 0, sizeof(*l));
	l->dirfd = dirfd;
	l->fd = -1;
	if (str_copy(l->target, sizeof(l->target), target) < 0 ||
	    str_fmt(l->path, sizeof(l->path), "%s.lock", target) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (;;) {
		rc = try_create(l, host);
		if (rc != 0)
			return rc > 0 ? 0 : -1;
		rc = check_lock(l, &w, host, stale_secs);
		if (rc < 0)
			return -1;
		if (rc > 0)
			continue;
		int64_t left = deadline - mono_ms();

		if (left <= 0) {
			errno = EAGAIN;
			return -1;
		}
		sleep_us(wait_us < left * 1000 ? wait_us : (long)(left * 1000));
		wait_us = wait_us + wait_us / 2 > WAIT_MAX_US ? WAIT_MAX_US : wait_us + wait_us / 2;
	}
}

bool ms_lock_held(const struct ms_lock *l)
{
	struct stat st;

	return l->fd >= 0 && fstatat(l->dirfd, l->path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       st.st_ino == l->ino && st.st_dev == l->dev;
}

void ms_lock_touch(struct ms_lock *l)
{
	if (l->fd >= 0)
		(void)futimens(l->fd, NULL);
}

void ms_lock_release(struct ms_lock *l)
{
	int saved = errno;

	if (l->fd < 0)
		return;
	if (ms_lock_held(l))
		(void)unlinkat(l->dirfd, l->path, 0);
	(void)close(l->fd);
	l->fd = -1;
	errno = saved;
}

int ms_lock_replace(struct ms_lock *l, const void *data, size_t len,
		    const struct timespec *mtime)
{
	int rc = -1;

	if (l->fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (ftruncate(l->fd, 0) == 0 && lseek(l->fd, 0, SEEK_SET) == 0 &&
	    write_all(l->fd, data, len) == 0 &&
	    (mtime == NULL || futimens(l->fd, (const struct timespec[2]){ *mtime, *mtime }) == 0) &&
	    fsync(l->fd) == 0) {
		if (!ms_lock_held(l))
			errno = ESTALE;	/* someone took it for stale: don't clobber their work */
		else
			rc = renameat(l->dirfd, l->path, l->dirfd, l->target);
	}
	if (rc == 0) {
		(void)close(l->fd);
		l->fd = -1;
		return 0;
	}
	ms_lock_release(l);
	return -1;
}
