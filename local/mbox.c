/*
 * mbox.c: appending one message to an mbox file the way mail readers (mutt, mailx, Dovecot's
 * mbox, procmail) expect, in a child that already is the file's user:
 *   1. PATH.lock, created with O_EXCL (a dotlock); one older than LOCAL_STALE_LOCK_SECS is
 *      stale and removed; a busy one is retried until the lock timeout (then 4.2.0);
 *   2. the file opened with O_APPEND|O_NOFOLLOW (created 0600 when missing), and refused
 *      unless it is a regular file with one link (and the recipient's, for a mailbox);
 *   3. an fcntl write lock on the whole file, waited for with F_SETLKW under a timer;
 *   4. the message (format.c) appended, fsync'ed; on any error the file is truncated back
 *      to its size before we started, so a mailbox never keeps half a message.
 * /dev/null (an alias to "/dev/null" is a common way to discard) is written without locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "util.h"

#define MBOX_BUF	65536
#define DOTLOCK_RETRY_MS 250

/* ---- locks ------------------------------------------------------------------------------ */

static volatile sig_atomic_t lock_timer_fired;

static void on_lock_timer(int sig)
{
	(void)sig;
	lock_timer_fired = 1;
}

/* A timer that sends SIGUSR1 after ms and then every 50 ms (so a signal that lands just
 * before F_SETLKW blocks is followed by another). 0, or -1. */
static int start_timer(timer_t *timer, int64_t ms)
{
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	struct itimerspec its = {
		.it_value = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 },
		.it_interval = { .tv_sec = 0, .tv_nsec = 50 * 1000000 },
	};

	if (timer_create(CLOCK_MONOTONIC, &sev, timer) < 0)
		return -1;
	if (timer_settime(*timer, 0, &its, NULL) < 0) {
		(void)timer_delete(*timer);
		return -1;
	}
	return 0;
}

/* An fcntl write lock on the whole file within ms: 0, or -1 (errno; ETIMEDOUT). */
static int fcntl_lock(int fd, int64_t ms)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct sigaction sa = { .sa_handler = on_lock_timer }, old;
	timer_t timer;
	int rc, saved;

	if (fcntl(fd, F_SETLK, &fl) == 0)
		return 0;
	if ((errno != EAGAIN && errno != EACCES) || ms <= 0) {
		if (errno == EAGAIN || errno == EACCES)
			errno = ETIMEDOUT;
		return -1;
	}
	sigemptyset(&sa.sa_mask);	/* no SA_RESTART: the signal interrupts F_SETLKW */
	lock_timer_fired = 0;
	if (sigaction(SIGUSR1, &sa, &old) < 0)
		return -1;
	if (start_timer(&timer, ms) < 0) {
		saved = errno;
		(void)sigaction(SIGUSR1, &old, NULL);
		errno = saved;
		return -1;
	}
	do
		rc = fcntl(fd, F_SETLKW, &fl);
	while (rc < 0 && errno == EINTR && !lock_timer_fired);
	saved = rc < 0 && lock_timer_fired ? ETIMEDOUT : errno;
	(void)timer_delete(timer);
	(void)sigaction(SIGUSR1, &old, NULL);
	errno = saved;
	return rc;
}

/* Remove lock if it is older than LOCAL_STALE_LOCK_SECS: true if it is gone. */
static bool remove_stale(const char *lock)
{
	struct stat st;

	if (lstat(lock, &st) < 0)
		return errno == ENOENT;
	if (time(NULL) - st.st_mtime <= LOCAL_STALE_LOCK_SECS)
		return false;
	msg_warn("removing stale lock file %s (%lld s old)", lock,
		 (long long)(time(NULL) - st.st_mtime));
	return unlink(lock) == 0 || errno == ENOENT;
}

/* Create the dotlock: 1 taken, 0 not taken but not required (the directory does not let
 * us), -1 with errno (ETIMEDOUT: somebody else holds it past the deadline). */
static int dotlock(const char *lock, bool required, int64_t deadline)
{
	char pid[32];

	for (;;) {
		int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd >= 0) {
			(void)str_fmt(pid, sizeof(pid), "%d\n", (int)getpid());
			(void)write_all(fd, pid, strlen(pid));
			(void)close(fd);
			return 1;
		}
		if (errno != EEXIST) {
			if (!required && (errno == EACCES || errno == EPERM || errno == EROFS))
				return 0;
			return -1;
		}
		if (remove_stale(lock))
			continue;
		if (mono_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		(void)usleep(DOTLOCK_RETRY_MS * 1000);
	}
}

/* ---- the file --------------------------------------------------------------------------- */

static bool is_devnull(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(1, 3);
}

/* Open (or create) the mbox and check what it is: the fd, or -1 with res set. */
static int open_mbox(const char *path, const struct mbox_opts *o, struct stat *st,
		     struct lresult *res)
{
	int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK;
	int fd = open(path, flags);

	if (fd < 0 && errno == ENOENT && o->create) {
		fd = open(path, flags | O_CREAT | O_EXCL, 0600);
		if (fd < 0 && errno == EEXIST)
			fd = open(path, flags);
	}
	if (fd < 0) {
		int err = errno;

		msg_warn("cannot open %s: %s", path, strerror(err));
		if (err == ELOOP)
			lresult_set(res, 451, "4.3.0", "mailbox %s is a symbolic link; deferred", path);
		else
			lresult_errno(res, err, "open the mailbox");
		return -1;
	}
	if (fstat(fd, st) < 0 || fd_set_nonblock(fd, 0) < 0) {
		lresult_errno(res, errno, "open the mailbox");
	} else if (o->allow_devnull && is_devnull(st)) {
		return fd;
	} else if (!S_ISREG(st->st_mode)) {
		lresult_set(res, 451, "4.3.0", "%s is not a regular file; deferred", path);
	} else if (st->st_nlink != 1) {
		lresult_set(res, 451, "4.3.0", "%s has %lu hard links; deferred", path,
			    (unsigned long)st->st_nlink);
	} else if (o->check_owner && st->st_uid != o->owner) {
		lresult_set(res, 451, "4.3.0", "%s is owned by uid %d, not the recipient; deferred",
			    path, (int)st->st_uid);
	} else {
		return fd;
	}
	msg_warn("%s", res->text);
	(void)close(fd);
	return -1;
}

/* The whole formatted message into fd, then fsync: 0, or -1 with errno. */
static int write_message(int fd, const struct msgsrc *src, bool sync, int64_t deadline)
{
	struct fmt *f = fmt_new(src, FMT_MBOX);
	char *buf = xmalloc(MBOX_BUF);
	ssize_t n;
	int rc = 0;

	while ((n = fmt_read(f, buf, MBOX_BUF)) > 0) {
		if (mono_ms() > deadline) {
			errno = ETIMEDOUT;
			rc = -1;
			break;
		}
		if (write_all(fd, buf, (size_t)n) < 0) {
			rc = -1;
			break;
		}
	}
	if (n < 0)
		rc = -1;
	if (rc == 0 && sync && fsync(fd) < 0)
		rc = -1;
	free(buf);
	fmt_free(f);
	return rc;
}

/* Locked, written, and truncated back on failure. */
static int append_locked(int fd, const char *path, const struct stat *st,
			 const struct msgsrc *src, int64_t lock_deadline, int64_t deadline,
			 struct lresult *res)
{
	struct stat now;
	int err;

	if (is_devnull(st)) {
		if (write_message(fd, src, false, deadline) == 0)
			return 0;
		lresult_errno(res, errno, "write to /dev/null");
		return -1;
	}
	if (fcntl_lock(fd, lock_deadline - mono_ms()) < 0) {
		if (errno == ETIMEDOUT)
			lresult_set(res, 450, "4.2.0", "mailbox %s is locked by another process; "
				    "deferred", path);
		else
			lresult_errno(res, errno, "lock the mailbox");
		return -1;
	}
	if (fstat(fd, &now) < 0) {
		lresult_errno(res, errno, "stat the mailbox");
		return -1;
	}
	if (write_message(fd, src, true, deadline) == 0)
		return 0;
	err = errno;
	msg_warn("cannot write %s: %s; truncating it back to %lld bytes", path, strerror(err),
		 (long long)now.st_size);
	if (ftruncate(fd, now.st_size) < 0 || fsync(fd) < 0)
		msg_warn("cannot truncate %s back to %lld bytes: %m", path,
			 (long long)now.st_size);
	lresult_errno(res, err, "write the mailbox");
	return -1;
}

int mbox_append(const char *path, const struct mbox_opts *o, const struct msgsrc *src,
		struct lresult *res)
{
	int64_t deadline = src->deadline;
	int64_t lock_deadline = mono_ms() + LOCAL_LOCK_TIMEOUT_MS;
	char lock[LOCAL_PATH_MAX + 8];
	struct stat st;
	int locked, fd, rc;

	if (lock_deadline > deadline)
		lock_deadline = deadline;
	if (str_fmt(lock, sizeof(lock), "%s.lock", path) < 0) {
		lresult_set(res, 451, "4.3.0", "mailbox path too long; deferred");
		return -1;
	}
	locked = dotlock(lock, o->need_dotlock, lock_deadline);
	if (locked < 0) {
		if (errno == ETIMEDOUT)
			lresult_set(res, 450, "4.2.0", "mailbox %s is locked (%s exists); deferred",
				    path, lock);
		else
			lresult_errno(res, errno, "create the mailbox lock file");
		msg_warn("%s: %s", lock, res->text);
		return -1;
	}
	fd = open_mbox(path, o, &st, res);
	rc = fd < 0 ? -1 : append_locked(fd, path, &st, src, lock_deadline, deadline, res);
	if (fd >= 0)
		(void)close(fd);	/* releases the fcntl lock */
	if (locked == 1 && unlink(lock) < 0)
		msg_warn("cannot remove %s: %m", lock);
	return rc;
}
