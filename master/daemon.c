/*
 * daemon.c: the pid lock and detaching from the terminal.
 *
 * The lock is flock(2) on $spool_directory/pid/master.pid, taken before detaching so a second
 * master fails at once with a clear message. flock locks belong to the open file, so the
 * detached child keeps the lock its parent took. The starting process waits until the
 * detached master reports that its listeners are bound, so `postern-master` exits non-zero
 * (with the reason on stderr) whenever start-up fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "master.h"
#include "log.h"
#include "util.h"

static int ready_fd = -1;

int pidfile_lock(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	char buf[32] = "";

	if (fd < 0)
		msg_fatal("open %s: %m", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			msg_fatal("lock %s: %m", path);
		if (read(fd, buf, sizeof(buf) - 1) > 0)
			buf[strcspn(buf, "\n")] = '\0';
		msg_fatal("another master is running (pid %s)", *buf ? buf : "unknown");
	}
	return fd;
}

void pidfile_write(int fd)
{
	char buf[32];
	int n = str_fmt(buf, sizeof(buf), "%d\n", (int)getpid());

	if (n < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		msg_fatal("write pid file: %m");
}

/* Fork; the parent waits for the child's verdict and exits with it. */
void daemon_begin(void)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		msg_fatal("pipe: %m");
	pid = fork();
	if (pid < 0)
		msg_fatal("fork: %m");
	if (pid > 0) {
		close(p[1]);
		if (read_full(p[0], &c, 1) == 1 && c == '0')
			_exit(0);
		/* The child failed: it already printed why (stderr is shared until ready). */
		waitpid(pid, NULL, 0);
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	if (setsid() < 0)
		msg_fatal("setsid: %m");
	log_reset_pid();
}

/* Start-up is complete: release the waiting parent and let go of the terminal. */
void daemon_ready(void)
{
	int fd;

	if (ready_fd < 0)
		return;
	if (write_all(ready_fd, "0", 1) < 0)
		msg_warn("cannot report readiness: %m");
	close(ready_fd);
	ready_fd = -1;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (chdir("/") < 0)
		msg_warn("chdir /: %m");
}
