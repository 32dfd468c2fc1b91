/*
 * test_session_enter.c: unit tests for session_enter() (lib/privsep.h), the drop every mail
 * session makes before it reads a byte. Each call happens in a forked child, which reports
 * what it became through a pipe: ids in all three slots, no supplementary groups, no
 * capability in any set (bounding and ambient included), no new privileges, not dumpable,
 * chrooted in the home with "/" as cwd (a marker file is the proof), root not regainable.
 * The refusals (uid 0, gid 0, a relative or missing home) must be fatal. Needs root; run as
 * another user, it says so and passes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privsep.h"
#include "t.h"
#include "util.h"

#define NOBODY 65534

static char home[64];

/* Run session_enter in a child; its report (or stderr) into out; the exit status back. */
static int run(const char *dir, uid_t uid, gid_t gid, char *out, size_t outlen)
{
	int p[2], status = -1;
	pid_t pid;
	ssize_t n;

	if (pipe(p) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		cap_t caps;
		char *text;
		uid_t r, e, s;
		gid_t rg, eg, sg;
		char cwd[64] = "?";

		close(p[0]);
		dup2(p[1], 2);		/* a fatal message lands in the report */
		session_enter(dir, uid, gid);
		caps = cap_get_proc();
		text = caps ? cap_to_text(caps, NULL) : NULL;
		if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
		    getcwd(cwd, sizeof(cwd)) == NULL)
			_exit(3);
		dprintf(p[1], "uid=%d/%d/%d gid=%d/%d/%d groups=%d caps=%s bound=%d nnp=%d "
			"dumpable=%d cwd=%s marker=%d setuid0=%d setgid0=%d\n", (int)r, (int)e,
			(int)s, (int)rg, (int)eg, (int)sg, getgroups(0, NULL), text ? text : "?",
			CAP_IS_SUPPORTED(CAP_SETUID) ? cap_get_bound(CAP_SETUID) : -1,
			prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), prctl(PR_GET_DUMPABLE, 0, 0, 0, 0),
			cwd, access("/marker", F_OK) == 0, setuid(0) == 0, setgid(0) == 0);
		_exit(0);
	}
	close(p[1]);
	n = read_full(p[0], out, outlen - 1);
	out[n > 0 ? n : 0] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	return status;
}

static void test_drop_into_home(void)
{
	char out[1024];
	int status = run(home, NOBODY, NOBODY, out, sizeof(out));

	T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	T_EQ_STR(out, "uid=65534/65534/65534 gid=65534/65534/65534 groups=0 caps== bound=0 "
		      "nnp=1 dumpable=0 cwd=/ marker=1 setuid0=0 setgid0=0\n");
}

static void expect_fatal(const char *dir, uid_t uid, gid_t gid, const char *msg)
{
	char out[1024];
	int status = run(dir, uid, gid, out, sizeof(out));

	T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	if (strstr(out, msg) == NULL)
		fprintf(stderr, "want \"%s\" in: %s", msg, out);
	T_CHECK(strstr(out, msg) != NULL);
}

static void test_refusals(void)
{
	expect_fatal(home, 0, NOBODY, "refusing to run a session as uid 0");
	expect_fatal(home, NOBODY, 0, "refusing to run a session as uid 65534 gid 0");
	expect_fatal("relative/dir", NOBODY, NOBODY, "not an absolute path");
	expect_fatal("/nonexistent-postern-home", NOBODY, NOBODY, "chroot /nonexistent-postern-home");
}

int main(void)
{
	char marker[128];
	int fd;

	if (geteuid() != 0) {
		fprintf(stderr, "test_session_enter: not root, nothing to test\n");
		return 0;
	}
	str_copy(home, sizeof(home), "/tmp/postern-session-XXXXXX");
	if (mkdtemp(home) == NULL || chmod(home, 0755) < 0)
		abort();
	str_fmt(marker, sizeof(marker), "%s/marker", home);
	fd = open(marker, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		abort();
	close(fd);
	T_RUN(test_drop_into_home);
	T_RUN(test_refusals);
	unlink(marker);
	rmdir(home);
	return T_DONE();
}
