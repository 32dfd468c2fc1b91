/*
 * test_privsep.c: unit tests for lib/privsep.c. Each drop happens in a forked child, which
 * checks its own credentials (/proc/self/status, opened before the drop because the chroot
 * hides /proc, plus the system calls themselves) and reports failed checks through a pipe;
 * the parent asserts on that report, the exit status and the child's stderr.
 *
 * Covered: a chrooted drop to nobody (ids, groups, every capability set, no new privileges,
 * root not regainable, the chroot, not dumpable, no cores), uid 0 keeping only
 * CAP_SETUID+CAP_SETGID (NOROOT securebits, powerless otherwise, can still switch user and
 * then has nothing), a non-root user keeping a capability, supplementary groups surviving a
 * chroot, the fatal errors, privsep_harden, privsep_drop_dev and the lookups. The drops need
 * root; run as another user those parts are skipped with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/securebits.h>

#include "privsep.h"
#include "t.h"
#include "util.h"

#define NOBODY		65534
#define CAPS_SETID	((1ULL << CAP_SETGID) | (1ULL << CAP_SETUID))	/* 0xc0 */
#define REPORT_END	"END\n"

static char dir[64];		/* scratch directory */
static char jail[128];		/* chroot directory (0755) holding /marker and /secret */
static char secret[128];	/* outside the jail: owned by nobody, mode 0600 */
static struct stat jail_st;

/* ---- running a check in a child ------------------------------------------------------- */

static int report_fd = -1;

static void child_fail(int line, const char *what)
{
	dprintf(report_fd, "%s:%d: in child: check failed: %s\n", __FILE__, line, what);
}

#define C_CHECK(cond)                                   \
	do {                                            \
		if (!(cond))                            \
			child_fail(__LINE__, #cond);    \
	} while (0)

struct child {
	int status;		/* from waitpid */
	char report[8192];	/* failed checks, then REPORT_END if fn returned */
	char err[8192];		/* the child's stderr */
};

static void read_all(int fd, char *buf, size_t size)
{
	ssize_t n = read_full(fd, buf, size - 1);

	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

/* Run fn in a child with stderr captured; the child ends with _exit(0) if fn returns. */
static void run_child(void (*fn)(void), struct child *c)
{
	int rep[2], err[2];
	pid_t pid;

	memset(c, 0, sizeof(*c));
	c->status = -1;
	if (pipe(rep) < 0 || pipe(err) < 0) {
		perror("pipe");
		return;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return;
	}
	if (pid == 0) {
		close(rep[0]);
		close(err[0]);
		dup2(err[1], 2);
		report_fd = rep[1];
		alarm(20);	/* a hang is a failure, not a stuck test run */
		fn();
		dprintf(report_fd, REPORT_END);
		_exit(0);
	}
	close(rep[1]);
	close(err[1]);
	read_all(rep[0], c->report, sizeof(c->report));
	read_all(err[0], c->err, sizeof(c->err));
	if (waitpid(pid, &c->status, 0) != pid)
		c->status = -1;
}

/* The child ran to the end, every check passed and it exited 0. */
static void expect_passed(void (*fn)(void))
{
	struct child c;

	run_child(fn, &c);
	T_EQ_STR(c.report, REPORT_END);
	T_CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
	if (strcmp(c.report, REPORT_END) != 0 || !WIFEXITED(c.status) || WEXITSTATUS(c.status))
		fprintf(stderr, "child status %#x, stderr:\n%s", c.status, c.err);
}

/* The child died through msg_fatal (exit 1) with `fatal: <want>` on stderr. */
static void expect_fatal(void (*fn)(void), const char *want)
{
	struct child c;
	char line[512];

	run_child(fn, &c);
	str_fmt(line, sizeof(line), "fatal: %s", want);
	T_CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 1);
	T_CHECK(strstr(c.err, line) != NULL);
	T_CHECK(strstr(c.report, REPORT_END) == NULL);
	if (strstr(c.err, line) == NULL)
		fprintf(stderr, "expected '%s' on stderr, got:\n%s", line, c.err);
}

static bool skip_unless_root(const char *what)
{
	if (geteuid() == 0)
		return false;
	fprintf(stderr, "%s: skipped (needs root)\n", what);
	return true;
}

/* ---- reading credentials ---------------------------------------------------------------- */

/* Re-read an already open /proc/<pid>/status. */
static int read_status(int fd, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;

	while (len < size - 1 && (n = pread(fd, buf + len, size - 1 - len, (off_t)len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return len > 0 ? 0 : -1;
}

static const char *status_field(const char *status, const char *key)
{
	size_t klen = strlen(key);

	const char *p = status;

	while (*p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':')
			return p + klen + 1;
		p = strchr(p, '\n');
		if (p == NULL)
			break;
		p++;
	}
	return NULL;
}

/* A hexadecimal set ("CapEff"), or ~0 if missing. */
static unsigned long long status_hex(const char *status, const char *key)
{
	const char *v = status_field(status, key);

	return v ? strtoull(v, NULL, 16) : ~0ULL;
}

/* A decimal value ("NoNewPrivs"), or -1 if missing. */
static long status_long(const char *status, const char *key)
{
	const char *v = status_field(status, key);

	return v ? strtol(v, NULL, 10) : -1;
}

/* All four ids of "Uid"/"Gid" (real, effective, saved, filesystem) equal want. */
static bool status_ids_are(const char *status, const char *key, long want)
{
	const char *v = status_field(status, key);
	char *end;

	for (int i = 0; v && i < 4; i++, v = end) {
		long id = strtol(v, &end, 10);

		if (end == v || id != want)
			return false;
	}
	return v != NULL;
}

static bool core_limit_zero(void)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0;
}

/* The supplementary groups are exactly want[0..n) in any order. */
static bool groups_are(const gid_t *want, int n)
{
	gid_t have[256];
	int m = getgroups(ARRAY_LEN(have), have);

	if (m != n)
		return false;
	for (int i = 0; i < n; i++) {
		bool found = false;

		for (int j = 0; j < m; j++)
			if (have[j] == want[i])
				found = true;
		if (!found)
			return false;
	}
	return true;
}

static int open_status(void)
{
	return open("/proc/self/status", O_RDONLY | O_CLOEXEC);
}

/* ---- drop to nobody in a chroot ---------------------------------------------------------- */

static gid_t nobody_groups[64];
static int nobody_ngroups;

static void child_nobody_chroot(void)
{
	int sfd = open_status();
	char st[8192], cwd[64];
	struct stat root, dotdot;
	struct rlimit rl = { 1, 1 };
	uid_t r, e, s;

	privsep_drop("nobody", jail, NULL);
	C_CHECK(sfd >= 0 && read_status(sfd, st, sizeof(st)) == 0);
	C_CHECK(status_ids_are(st, "Uid", NOBODY));
	C_CHECK(status_ids_are(st, "Gid", NOBODY));
	C_CHECK(status_hex(st, "CapEff") == 0);
	C_CHECK(status_hex(st, "CapPrm") == 0);
	C_CHECK(status_hex(st, "CapBnd") == 0);
	C_CHECK(status_hex(st, "CapInh") == 0);
	C_CHECK(status_hex(st, "CapAmb") == 0);
	C_CHECK(status_long(st, "NoNewPrivs") == 1);
	C_CHECK(getresuid(&r, &e, &s) == 0 && r == NOBODY && e == NOBODY && s == NOBODY);
	C_CHECK(groups_are(nobody_groups, nobody_ngroups));
	C_CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
	C_CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) == 0);

	/* Root cannot be regained by any route. */
	C_CHECK(setuid(0) == -1 && errno == EPERM);
	C_CHECK(seteuid(0) == -1);
	C_CHECK(setresuid((uid_t)-1, (uid_t)-1, 0) == -1);
	C_CHECK(setgid(0) == -1);
	C_CHECK(setgroups(0, NULL) == -1);

	/* "/" is the jail. */
	C_CHECK(access("/marker", R_OK) == 0);
	C_CHECK(getcwd(cwd, sizeof(cwd)) != NULL && strcmp(cwd, "/") == 0);
	C_CHECK(stat("/", &root) == 0 && root.st_ino == jail_st.st_ino &&
		root.st_dev == jail_st.st_dev);
	C_CHECK(stat("/..", &dotdot) == 0 && dotdot.st_ino == root.st_ino);
	C_CHECK(access("/proc/self/status", F_OK) == -1);
	C_CHECK(open("/secret", O_RDONLY) == -1 && errno == EACCES);
	C_CHECK(chroot("/") == -1 && errno == EPERM);

	/* No core dumps, not dumpable, and the limit cannot be raised again. */
	C_CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
	C_CHECK(core_limit_zero());
	C_CHECK(setrlimit(RLIMIT_CORE, &rl) == -1);
}

static void test_drop_nobody_chroot(void)
{
	if (skip_unless_root(__func__))
		return;
	nobody_ngroups = (int)ARRAY_LEN(nobody_groups);
	T_CHECK(getgrouplist("nobody", NOBODY, nobody_groups, &nobody_ngroups) >= 1);
	expect_passed(child_nobody_chroot);
}

/* ---- uid 0 with CAP_SETUID + CAP_SETGID only (the shape of `local`) ---------------------- */

static void child_root_keep_caps(void)
{
	int sfd = open_status();
	char st[8192];
	int bits;

	privsep_drop("root", NULL, "cap_setuid,cap_setgid");
	C_CHECK(sfd >= 0 && read_status(sfd, st, sizeof(st)) == 0);
	C_CHECK(status_ids_are(st, "Uid", 0));
	C_CHECK(status_ids_are(st, "Gid", 0));
	C_CHECK(status_hex(st, "CapEff") == CAPS_SETID);
	C_CHECK(status_hex(st, "CapPrm") == CAPS_SETID);
	C_CHECK(status_hex(st, "CapBnd") == CAPS_SETID);
	C_CHECK(status_hex(st, "CapInh") == 0);
	C_CHECK(status_hex(st, "CapAmb") == 0);
	C_CHECK(status_long(st, "NoNewPrivs") == 1);
	bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	C_CHECK(bits >= 0 && (bits & SECBIT_NOROOT) && (bits & SECBIT_NOROOT_LOCKED));
	C_CHECK(!(bits & SECBIT_NO_SETUID_FIXUP));
	C_CHECK(getgroups(0, NULL) == 0);
	C_CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
	C_CHECK(core_limit_zero());

	/* uid 0 without its other capabilities is an ordinary user. */
	C_CHECK(open(secret, O_RDONLY) == -1 && errno == EACCES);
	C_CHECK(chroot("/") == -1 && errno == EPERM);
	C_CHECK(prctl(PR_SET_SECUREBITS, 0, 0, 0, 0) == -1);

	/* What it kept works: become a user for good, and then nothing is left. */
	C_CHECK(setresgid(NOBODY, NOBODY, NOBODY) == 0);
	C_CHECK(setresuid(NOBODY, NOBODY, NOBODY) == 0);
	C_CHECK(read_status(sfd, st, sizeof(st)) == 0);
	C_CHECK(status_ids_are(st, "Uid", NOBODY));
	C_CHECK(status_hex(st, "CapEff") == 0);
	C_CHECK(status_hex(st, "CapPrm") == 0);
	C_CHECK(setuid(0) == -1);
}

static void test_drop_root_keep_caps(void)
{
	if (skip_unless_root(__func__))
		return;
	expect_passed(child_root_keep_caps);
}

/* ---- a non-root user keeping a capability --------------------------------------------- */

static void child_nobody_keep_cap(void)
{
	int sfd = open_status();
	char st[8192];

	privsep_drop("nobody", NULL, "cap_net_bind_service");
	C_CHECK(sfd >= 0 && read_status(sfd, st, sizeof(st)) == 0);
	C_CHECK(status_ids_are(st, "Uid", NOBODY));
	C_CHECK(status_hex(st, "CapEff") == 1ULL << CAP_NET_BIND_SERVICE);
	C_CHECK(status_hex(st, "CapPrm") == 1ULL << CAP_NET_BIND_SERVICE);
	C_CHECK(status_hex(st, "CapBnd") == 1ULL << CAP_NET_BIND_SERVICE);
	C_CHECK(status_hex(st, "CapInh") == 0);
	C_CHECK(status_hex(st, "CapAmb") == 0);
	C_CHECK(status_long(st, "NoNewPrivs") == 1);
	C_CHECK(setuid(0) == -1);
}

static void test_drop_user_keep_cap(void)
{
	if (skip_unless_root(__func__))
		return;
	expect_passed(child_nobody_keep_cap);
}

/* ---- supplementary groups survive the chroot ---------------------------------------------- */

static char member[64];		/* a user in at least one group besides its own */
static gid_t member_groups[64];
static int member_ngroups;

static bool find_member(void)
{
	struct passwd *pw;
	bool found = false;

	setpwent();
	while (!found && (pw = getpwent()) != NULL) {
		member_ngroups = (int)ARRAY_LEN(member_groups);
		if (pw->pw_uid != 0 &&
		    getgrouplist(pw->pw_name, pw->pw_gid, member_groups, &member_ngroups) > 1 &&
		    str_copy(member, sizeof(member), pw->pw_name) == 0)
			found = true;
	}
	endpwent();
	return found;
}

static void child_member_chroot(void)
{
	privsep_drop(member, jail, NULL);
	C_CHECK(groups_are(member_groups, member_ngroups));
}

static void test_groups_survive_chroot(void)
{
	if (skip_unless_root(__func__))
		return;
	if (!find_member()) {
		fprintf(stderr, "%s: skipped (no user with supplementary groups)\n", __func__);
		return;
	}
	expect_passed(child_member_chroot);
}

/* ---- fatal errors ------------------------------------------------------------------------- */

static void drop_unknown_user(void)
{
	privsep_drop("postern-no-such-user", NULL, NULL);
}

static void drop_unknown_cap(void)
{
	privsep_drop("nobody", NULL, "cap_setuid,cap_bogus");
}

static void drop_too_many_caps(void)
{
	privsep_drop("nobody", NULL, "cap_chown,cap_kill,cap_fowner,cap_fsetid,cap_setgid,"
		     "cap_setuid,cap_setpcap,cap_net_raw,cap_sys_chroot");
}

static void drop_missing_jail(void)
{
	char missing[200];

	str_fmt(missing, sizeof(missing), "%s/no-such-dir", dir);
	privsep_drop("nobody", missing, NULL);
}

static void drop_as_non_root(void)
{
	if (geteuid() == 0 && setresuid(NOBODY, NOBODY, NOBODY) < 0)
		return;
	privsep_drop("nobody", NULL, NULL);
}

static void test_fatal_errors(void)
{
	/* Capability names are checked before anything else, so these need no root. */
	expect_fatal(drop_unknown_cap, "unknown capability: cap_bogus");
	expect_fatal(drop_too_many_caps, "too many capabilities to keep");
	expect_fatal(drop_as_non_root, "privsep_drop: not running as root");
	if (skip_unless_root("test_fatal_errors (unknown user, missing chroot)"))
		return;
	expect_fatal(drop_unknown_user, "unknown user: postern-no-such-user");
	expect_fatal(drop_missing_jail, "chdir ");
}

/* ---- privsep_harden and privsep_drop_dev (any user) -------------------------------------- */

static void child_harden(void)
{
	privsep_harden();
	C_CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
	C_CHECK(core_limit_zero());
}

static unsigned long long parent_capeff;

static void child_drop_dev(void)
{
	int sfd = open_status();
	uid_t uid = getuid();
	char st[8192];

	privsep_drop_dev();
	C_CHECK(sfd >= 0 && read_status(sfd, st, sizeof(st)) == 0);
	C_CHECK(getuid() == uid && geteuid() == uid);
	C_CHECK(status_long(st, "NoNewPrivs") == 1);
	C_CHECK(status_hex(st, "CapEff") == parent_capeff);	/* no switch, no drop */
	C_CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
	C_CHECK(core_limit_zero());
}

static void test_harden_and_dev(void)
{
	int sfd = open_status();
	char st[8192];

	T_CHECK(sfd >= 0 && read_status(sfd, st, sizeof(st)) == 0);
	parent_capeff = status_hex(st, "CapEff");
	close(sfd);
	expect_passed(child_harden);
	expect_passed(child_drop_dev);
	/* The parent itself is untouched. */
	T_EQ_INT(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
}

/* ---- lookups ------------------------------------------------------------------------------ */

static void test_lookup(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr;
	char longname[300];
	uid_t uid = 99;
	gid_t gid = 99;

	T_EQ_INT(privsep_lookup_user("root", &uid, &gid), 0);
	T_EQ_INT(uid, 0);
	T_EQ_INT(gid, 0);
	T_CHECK(pw != NULL);
	if (pw) {
		uid_t want_uid = pw->pw_uid;
		gid_t want_gid = pw->pw_gid;

		T_EQ_INT(privsep_lookup_user("nobody", &uid, &gid), 0);
		T_EQ_INT(uid, want_uid);
		T_EQ_INT(gid, want_gid);
		gr = getgrgid(want_gid);
		T_CHECK(gr != NULL);
		if (gr) {
			char name[64];

			str_copy(name, sizeof(name), gr->gr_name);
			gid = 99;
			T_EQ_INT(privsep_lookup_group(name, &gid), 0);
			T_EQ_INT(gid, want_gid);
		}
	}
	T_EQ_INT(privsep_lookup_user("postern-no-such-user", &uid, &gid), -1);
	T_EQ_INT(privsep_lookup_user("", &uid, &gid), -1);
	T_EQ_INT(privsep_lookup_group("root", &gid), 0);
	T_EQ_INT(gid, 0);
	T_EQ_INT(privsep_lookup_group("postern-no-such-group", &gid), -1);
	T_EQ_INT(privsep_lookup_group("", &gid), -1);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	T_EQ_INT(privsep_lookup_user(longname, &uid, &gid), -1);
	T_EQ_INT(privsep_lookup_group(longname, &gid), -1);
}

/* ---- set-up --------------------------------------------------------------------------------- */

static int make_file(const char *path, mode_t mode, uid_t owner)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write_all(fd, "x\n", 2) < 0 || fchmod(fd, mode) < 0 ||
	    (geteuid() == 0 && fchown(fd, owner, owner) < 0)) {
		perror(path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int setup(void)
{
	char path[200];

	str_copy(dir, sizeof(dir), "/tmp/test_privsep.XXXXXX");
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) < 0)
		return -1;
	str_fmt(jail, sizeof(jail), "%s/jail", dir);
	str_fmt(secret, sizeof(secret), "%s/secret", dir);
	if (mkdir(jail, 0755) < 0 || chmod(jail, 0755) < 0 || stat(jail, &jail_st) < 0)
		return -1;
	str_fmt(path, sizeof(path), "%s/marker", jail);
	if (make_file(path, 0644, 0) < 0)
		return -1;
	str_fmt(path, sizeof(path), "%s/secret", jail);
	if (make_file(path, 0600, 0) < 0)
		return -1;
	return make_file(secret, 0600, NOBODY);
}

static void cleanup(void)
{
	char path[200];

	str_fmt(path, sizeof(path), "%s/marker", jail);
	unlink(path);
	str_fmt(path, sizeof(path), "%s/secret", jail);
	unlink(path);
	rmdir(jail);
	unlink(secret);
	rmdir(dir);
}

int main(void)
{
	if (setup() < 0) {
		perror("setup");
		return 2;
	}
	T_RUN(test_drop_nobody_chroot);
	T_RUN(test_drop_root_keep_caps);
	T_RUN(test_drop_user_keep_cap);
	T_RUN(test_groups_survive_chroot);
	T_RUN(test_fatal_errors);
	T_RUN(test_harden_and_dev);
	T_RUN(test_lookup);
	cleanup();
	return T_DONE();
}
