/*
 * lock.c: one POP3 session per mailbox at a time (RFC 1939 §8: the server acquires an
 * exclusive-access lock on the maildrop; issue 7's [IN-USE], RFC 2449 §8.1.1).
 *
 * The lock is the very file Dovecot's pop3 takes with pop3_lock_session = yes:
 * "dovecot-pop3-session.lock" in the mailbox root (the Maildir, where Dovecot keeps its
 * index by default), a dot-lock created with O_EXCL holding "PID:HOSTNAME". So a Dovecot
 * pop3 running on the same Maildirs during a migration and Postern exclude each other. Its
 * rules for a lock left behind are Dovecot's too: a lock is stale when its PID, on this host,
 * no longer exists, or, when it names no PID of this host, when it has not been touched for
 * 5 minutes (a holder touches it more often than that: pop3_lock_touch).
 *
 * On top of that, a Postern session holds an fcntl (open file description) write lock on the
 * file for its whole life. The kernel drops it when the process dies however it dies, so a
 * held fcntl lock means a live holder, whatever the file says; and the session that removes
 * a stale lock file takes that fcntl lock first and checks that the name still points to the
 * same file, so two sessions that both find a stale lock cannot remove each other's fresh
 * one. A session that ends removes its lock file (only if it is still its own).
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

#include "log.h"
#include "session.h"
#include "util.h"

#define LOCK_NAME		"dovecot-pop3-session.lock"
#define LOCK_STALE_S		(5 * 60)	/* Dovecot's POP3 session lock stale timeout */
#define LOCK_TOUCH_MS		(60 * 1000)
#define LOCK_RETRY_MS		100

static void my_host(char *out, size_t len)
{
	if (gethostname(out, len) < 0)
		(void)str_copy(out, len, "localhost");
	out[len - 1] = '\0';
}

static struct flock whole_file(short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	return fl;
}

/* Create the lock file: 1 created (and ours), 0 it exists, -1 error. */
static int try_create(struct pop3_lock *lk)
{
	struct flock fl = whole_file(F_WRLCK);
	char host[256], text[320];
	struct stat st;
	int fd = open(lk->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	my_host(host, sizeof(host));
	(void)str_fmt(text, sizeof(text), "%d:%s", (int)getpid(), host);
	/* SETLKW: a session checking this file may hold its lock for a moment */
	if (fcntl(fd, F_OFD_SETLKW, &fl) < 0 || write_all(fd, text, strlen(text)) < 0 ||
	    fstat(fd, &st) < 0) {
		int saved = errno;

		(void)unlink(lk->path);
		close(fd);
		errno = saved;
		return -1;
	}
	lk->fd = fd;
	lk->dev = st.st_dev;
	lk->ino = st.st_ino;
	lk->touched = mono_ms();
	return 1;
}

/* Is a lock file with this text and time stamp stale (Dovecot's rules)? */
static bool stale(const char *text, time_t mtime)
{
	char host[256], *colon, *end;
	long pid;

	my_host(host, sizeof(host));
	colon = strchr(text, ':');
	if (colon != NULL && strcmp(colon + 1, host) == 0) {
		errno = 0;
		pid = strtol(text, &end, 10);
		if (end == colon && pid > 0 && errno == 0) {
			if (pid == (long)getpid())
				return true;	/* a leftover with our own pid */
			return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
		}
	}
	return time(NULL) - mtime > LOCK_STALE_S;
}

/* Look at an existing lock file: 0 it is held, 1 it is gone now (removed as stale, or
 * removed by its holder meanwhile), -1 error. */
static int check_existing(struct pop3_lock *lk)
{
	struct flock fl = whole_file(F_WRLCK);
	struct stat st, now;
	char text[320];
	ssize_t n;
	int fd = open(lk->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	if (fl.l_type != F_UNLCK) {		/* a live Postern session holds it */
		close(fd);
		return 0;
	}
	n = pread(fd, text, sizeof(text) - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	fl = whole_file(F_WRLCK);
	if (!stale(text, st.st_mtime) || fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		close(fd);
		return 0;
	}
	if (stat(lk->path, &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
		msg_tagged("pop3", "Info: removing a stale POP3 session lock (%s)", text);
		(void)unlink(lk->path);
	}
	close(fd);
	return 1;
}

int pop3_lock_take(struct pop3_lock *lk, const char *dir, int wait_ms, char *err,
		   size_t errlen)
{
	int64_t deadline = mono_ms() + wait_ms;
	int r, gone = 0;

	lk->fd = -1;
	if (str_fmt(lk->path, sizeof(lk->path), "%s/%s", dir, LOCK_NAME) < 0)
		return str_copy(err, errlen, "path too long"), -1;
	for (;;) {
		r = try_create(lk);
		if (r != 0)
			break;
		r = check_existing(lk);
		if (r < 0)
			break;
		if (r == 1 && ++gone < 10)
			continue;		/* it went away: try again at once */
		if (mono_ms() >= deadline)
			return 0;
		(void)usleep(LOCK_RETRY_MS * 1000);
	}
	if (r > 0)
		return 1;
	(void)str_fmt(err, errlen, "%s: %s", lk->path, strerror(errno));
	return -1;
}

void pop3_lock_touch(struct pop3_lock *lk)
{
	int64_t now = mono_ms();

	if (lk->fd < 0 || now - lk->touched < LOCK_TOUCH_MS)
		return;
	lk->touched = now;
	if (futimens(lk->fd, NULL) < 0)
		msg_tagged("pop3", "Warning: %s: cannot refresh: %s", lk->path, strerror(errno));
}

void pop3_lock_release(struct pop3_lock *lk)
{
	struct stat st;

	if (lk->fd < 0)
		return;
	if (stat(lk->path, &st) == 0 && st.st_dev == lk->dev && st.st_ino == lk->ino)
		(void)unlink(lk->path);
	close(lk->fd);
	lk->fd = -1;
}
