/*
 * ipc_sock.c: the socket side of the IPC library (DESIGN.md §3): creating a listening
 * SOCK_SEQPACKET socket with the right owner and mode, connecting with a timeout, and
 * checking who is on the other end (SO_PEERCRED against a list of user names).
 */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "util.h"

#define PW_BUF_MAX	(1024 * 1024)	/* give up on passwd entries larger than this */
#define CONNECT_RETRY_MS 10		/* pause while the listener's backlog is full */

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (path[0] == '\0') {		/* would mean the abstract namespace or autobind */
		errno = EINVAL;
		return -1;
	}
	if (str_copy(sa->sun_path, sizeof(sa->sun_path), path) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Remove a socket left by an earlier run; refuse to remove anything that is not one. */
static int remove_stale(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* The socket is bound under umask 0177, so nobody but us can connect before the owner
 * and mode are final. */
int ipc_listen(const char *path, uid_t uid, gid_t gid, mode_t mode, int backlog)
{
	struct sockaddr_un sa;
	mode_t old_mask;
	int fd, r, saved;

	if (fill_addr(&sa, path) < 0 || remove_stale(path) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	old_mask = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	saved = errno;
	umask(old_mask);
	if (r < 0) {
		(void)close(fd);
		errno = saved;
		return -1;
	}
	if (((uid != (uid_t)-1 || gid != (gid_t)-1) && lchown(path, uid, gid) < 0) ||
	    chmod(path, mode) < 0 || listen(fd, backlog) < 0) {
		saved = errno;
		(void)unlink(path);
		(void)close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Wait for a non-blocking connect in progress and return its result. */
static int finish_connect(int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int64_t left = deadline < 0 ? -1 : deadline - mono_ms();
		int r, err = 0;
		socklen_t len = sizeof(err);

		if (deadline >= 0 && left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			continue;	/* the deadline check above decides */
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -1;
		if (err != 0) {
			errno = err;
			return -1;
		}
		return 0;
	}
}

/* timeout_ms < 0 waits without limit. A full backlog (EAGAIN on AF_UNIX) is retried until
 * the deadline, so a busy server is a delay and a stuck one a timeout, never a hang. */
int ipc_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sa;
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	int fd, saved;

	if (fill_addr(&sa, path) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EISCONN)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS || errno == EALREADY) {
			if (finish_connect(fd, deadline) < 0)
				goto fail;
			break;
		}
		if (errno != EAGAIN)
			goto fail;
		if (deadline >= 0 && mono_ms() >= deadline) {
			errno = ETIMEDOUT;
			goto fail;
		}
		(void)poll(NULL, 0, CONNECT_RETRY_MS);
	}
	if (fd_set_nonblock(fd, 0) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return -1;
}

int ipc_peercred(int sock, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -1;
	if (len != sizeof(cr)) {
		errno = EPROTO;
		return -1;
	}
	if (pid != NULL)
		*pid = cr.pid;
	if (uid != NULL)
		*uid = cr.uid;
	if (gid != NULL)
		*gid = cr.gid;
	return 0;
}

/* Resolve one user name to its uid; -1 if unknown or the lookup failed. */
static int lookup_uid(const char *name, uid_t *uid)
{
	long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t size = hint > 0 ? (size_t)hint : 1024;

	if (strcmp(name, "root") == 0) {
		*uid = 0;
		return 0;
	}
	for (;;) {
		struct passwd pw, *res = NULL;
		char *buf = xmalloc(size);
		int err = getpwnam_r(name, &pw, buf, size, &res);

		if (err == 0 && res != NULL)
			*uid = res->pw_uid;
		free(buf);
		if (err == ERANGE && size < PW_BUF_MAX) {
			size *= 2;
			continue;
		}
		if (err != 0)
			msg_warn("cannot look up user %s: %s", name, strerror(err));
		return err == 0 && res != NULL ? 0 : -1;
	}
}

int ipc_allow_init(struct ipc_allow *a, const char *const *users)
{
	int missing = 0;

	a->n = 0;
	for (size_t i = 0; users[i] != NULL; i++) {
		uid_t uid = 0;

		if (a->n == IPC_MAX_ALLOW || lookup_uid(users[i], &uid) < 0) {
			missing++;
			continue;
		}
		a->uid[a->n++] = uid;
	}
	return missing ? -1 : 0;
}

bool ipc_allow_check(const struct ipc_allow *a, uid_t uid)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->uid[i] == uid)
			return true;
	return false;
}
