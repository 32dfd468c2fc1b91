/*
 * spawn.c: the fork per delivery (DESIGN.md §4). The parent (uid 0 with CAP_SETUID and
 * CAP_SETGID only) never opens a user's file: each delivery runs in a child that
 *   - closes every descriptor but the result pipe, the queue file and the log,
 *   - restores default signal handling (SIGPIPE and SIGXFSZ ignored: a write error is
 *     reported, not a silent death),
 *   - switches permanently to the target's user: setgroups (its primary group, plus "mail"
 *     for mailbox deliveries so a missing /var/mail/USER can be created in Debian's
 *     root:mail 2775 spool), setresgid, setresuid; then drops every capability and proves
 *     it: all three uids and gids are the target's, setuid(0) fails, no capability is
 *     left. Mail for uid 0 keeps uid 0 without any capability (its files are root's own);
 *   - arms alarm(2) as a safety net (a stuck child dies; the parent cannot kill a process
 *     of another user without CAP_KILL, so the child must end itself),
 *   - writes one struct lresult into the pipe and _exits.
 * The parent reads the result (bounded by the timeout plus a grace period) and reaps the
 * child; a child that dies without a result is a 4xx.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "util.h"

#define SPAWN_GRACE_MS	15000	/* beyond the child's alarm, before the parent stops waiting */
#define SPAWN_REAP_MS	5000	/* how long to wait for a child that sent no result */

/* ---- the child -------------------------------------------------------------------------- */

static void child_signals(void)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL }, ign = { .sa_handler = SIG_IGN };
	sigset_t none;

	sigemptyset(&dfl.sa_mask);
	sigemptyset(&ign.sa_mask);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void)sigaction(s, &dfl, NULL);	/* EINVAL for libc's own: fine */
	(void)sigaction(SIGPIPE, &ign, NULL);
	(void)sigaction(SIGXFSZ, &ign, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

static int cmp_int(const void *a, const void *b)
{
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Close every descriptor from 3 up except the n in keep (-1 entries are ignored). */
static void close_other_fds(int *keep, size_t n)
{
	unsigned from = 3;

	qsort(keep, n, sizeof(*keep), cmp_int);
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < (int)from)
			continue;
		if ((unsigned)keep[i] > from)
			(void)close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	(void)close_range(from, ~0u, 0);
}

static bool no_capabilities(void)
{
	cap_t now = cap_get_proc(), none = cap_init();
	bool empty = now != NULL && none != NULL && cap_compare(now, none) == 0;

	cap_free(now);
	cap_free(none);
	return empty;
}

static int failf(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Write why and return -1. */
static int failf(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Prove the switch stuck: -1 with why. */
static int verify(const struct identity *who, char *why, size_t whylen)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || r != who->uid || e != who->uid || s != who->uid ||
	    getresgid(&rg, &eg, &sg) < 0 || rg != who->gid || eg != who->gid || sg != who->gid)
		return failf(why, whylen, "switch to uid %d gid %d did not take", (int)who->uid,
			     (int)who->gid);
	if (who->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return failf(why, whylen, "root could be regained as uid %d", (int)who->uid);
	if (!no_capabilities())
		return failf(why, whylen, "capabilities left as uid %d", (int)who->uid);
	return 0;
}

/* Become who for good: 0, or -1 with why. */
static int become(const struct identity *who, char *why, size_t whylen)
{
	gid_t groups[2] = { who->gid, 0 };
	size_t ngroups = 1;
	cap_t none;
	int rc;

	if (L.dev_mode)
		return 0;	/* developer mode: every daemon is the invoking user */
	if (who->mail_group && L.have_mail_gid && L.mail_gid != who->gid)
		groups[ngroups++] = L.mail_gid;
	if (setgroups(ngroups, groups) < 0 || setresgid(who->gid, who->gid, who->gid) < 0 ||
	    (who->uid != 0 && setresuid(who->uid, who->uid, who->uid) < 0))
		return failf(why, whylen, "cannot switch to %s (uid %d gid %d): %s", who->name,
			     (int)who->uid, (int)who->gid, strerror(errno));
	none = cap_init();
	rc = none != NULL ? cap_set_proc(none) : -1;
	cap_free(none);
	if (rc < 0)
		return failf(why, whylen, "cannot drop capabilities: %s", strerror(errno));
	return verify(who, why, whylen);
}

static __attribute__((noreturn)) void child_main(const struct identity *who, int64_t timeout_ms,
						  int keep_fd, int wfd, child_fn *fn, void *arg)
{
	static struct lresult res;
	int keep[3] = { wfd, keep_fd, log_file_fd() };
	char why[300];

	log_reset_pid();
	child_signals();
	close_other_fds(keep, ARRAY_LEN(keep));
	if (become(who, why, sizeof(why)) < 0) {
		msg_warn("%s", why);
		lresult_set(&res, 451, "4.3.0", "cannot switch to the recipient's user; deferred");
	} else {
		(void)alarm((unsigned)((timeout_ms + 999) / 1000));
		fn(arg, &res);
		if (res.code == 0)
			lresult_set(&res, 451, "4.3.0", "internal error: no delivery result; "
				    "deferred");
	}
	(void)write_all(wfd, &res, sizeof(res));
	_exit(0);
}

/* ---- the parent ------------------------------------------------------------------------- */

/* The whole result within timeout_ms: true, else false (the child died or hangs). */
static bool read_result(int fd, struct lresult *res, int64_t timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	size_t got = 0;

	while (got < sizeof(*res)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0)
			return false;
		if (poll(&pfd, 1, left > 60000 ? 60000 : (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (pfd.revents == 0)
			continue;
		n = read(fd, (char *)res + got, sizeof(*res) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* The child's word is checked like any other input: a code, short printable strings. */
static void sanitize(struct lresult *res)
{
	res->dsn[sizeof(res->dsn) - 1] = '\0';
	res->text[sizeof(res->text) - 1] = '\0';
	for (char *c = res->text; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	if (res->code < 200 || res->code > 599 || res->dsn[0] != '0' + res->code / 100 ||
	    res->dsn[1] != '.')
		lresult_set(res, 451, "4.3.0", "malformed result from the delivery process; "
			    "deferred");
}

/* Wait for the child; -1 if it did not end within SPAWN_REAP_MS (left as a zombie, reaped
 * by a later call). */
static int reap(pid_t pid, int *status)
{
	int64_t deadline = mono_ms() + SPAWN_REAP_MS;
	pid_t r;

	while ((r = waitpid(pid, status, WNOHANG)) == 0 && mono_ms() < deadline)
		(void)usleep(20000);
	return r == pid ? 0 : -1;
}

static void no_result(const struct identity *who, pid_t pid, bool ended, int status,
		      struct lresult *res)
{
	if (!ended) {
		msg_warn("delivery process %d (%s) neither answers nor ends", (int)pid, who->name);
		lresult_set(res, 451, "4.3.0", "delivery process did not answer; deferred");
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		msg_warn("delivery process %d (%s) timed out", (int)pid, who->name);
		lresult_set(res, 451, "4.3.0", "delivery timed out; deferred");
	} else if (WIFSIGNALED(status)) {
		msg_warn("delivery process %d (%s) killed by signal %d", (int)pid, who->name,
			 WTERMSIG(status));
		lresult_set(res, 451, "4.3.0", "delivery process killed by signal %d; deferred",
			    WTERMSIG(status));
	} else {
		msg_warn("delivery process %d (%s) exited with status %d and no result",
			 (int)pid, who->name, WEXITSTATUS(status));
		lresult_set(res, 451, "4.3.0", "delivery process failed; deferred");
	}
}

void spawn_as(const struct identity *who, int64_t timeout_ms, int keep_fd, child_fn *fn,
	      void *arg, struct lresult *res)
{
	int fds[2], status = 0;
	bool got, ended;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;		/* children given up on earlier */
	if (timeout_ms < 1000)
		timeout_ms = 1000;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		msg_warn("pipe: %m");
		lresult_errno(res, errno, "create a pipe");
		return;
	}
	pid = fork();
	if (pid < 0) {
		msg_warn("fork: %m");
		lresult_errno(res, errno, "fork a delivery process");
		(void)close(fds[0]);
		(void)close(fds[1]);
		return;
	}
	if (pid == 0) {
		(void)close(fds[0]);
		child_main(who, timeout_ms, keep_fd, fds[1], fn, arg);
	}
	(void)close(fds[1]);
	got = read_result(fds[0], res, timeout_ms + SPAWN_GRACE_MS);
	(void)close(fds[0]);
	if (!got)
		(void)kill(pid, SIGKILL);	/* EPERM once it is another user: alarm() ends it */
	ended = reap(pid, &status) == 0;
	if (got)
		sanitize(res);
	else
		no_result(who, pid, ended, status, res);
}
