/*
 * test_maildir.c: unit tests for lib/maildir*.c: Maildir and Maildir++ folder creation
 * (modes, owners, EEXIST, symlink traps at every level refused), folder name validation,
 * Dovecot-style delivery (CRLF stored as LF, S= and W= right, prepended lines, CR at a read
 * boundary, escaped host names, unique names for 1000 quick deliveries, nothing left behind
 * on failure: short message, unwritable new/, a write error), Maildir++ quota (a Dovecot-
 * written maildirsize, limits, deltas, recalculation from a scan, the missing-file, 5120-byte,
 * stale-over-quota, changed-limit and corruption rules) and file-name flags.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "maildir.h"
#include "t.h"
#include "util.h"

static char tmpdir[] = "/tmp/test_maildir.XXXXXX";

/* ---- helpers ------------------------------------------------------------------------- */

static const char *path_of(const char *rel)
{
	static char bufs[4][512];
	static int next;
	char *p = bufs[next++ % 4];

	if (str_fmt(p, sizeof(bufs[0]), "%s/%s", tmpdir, rel) < 0)
		abort();
	return p;
}

static int is_dir(const char *rel)
{
	struct stat st;

	return lstat(path_of(rel), &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *rel)
{
	struct stat st;

	return lstat(path_of(rel), &st) == 0;
}

/* Entries in a directory, "." and ".." excluded; -1 if it cannot be opened. */
static int count_entries(const char *rel)
{
	DIR *d = opendir(path_of(rel));
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void write_text(const char *rel, const char *text)
{
	int fd = open(path_of(rel), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || close(fd) < 0) {
		perror(rel);
		exit(2);
	}
}

static char *slurp(const char *rel, size_t *len)
{
	char *data = NULL;

	if (read_file(path_of(rel), 1 << 24, &data, len) < 0)
		return NULL;
	return data;
}

/* An unlinked temporary file holding `n` bytes of `data` after `pad` bytes of padding. */
static int message_fd(const char *data, size_t n, size_t pad)
{
	char path[128];
	char *padding = xcalloc(1, pad + 1);
	int fd;

	str_fmt(path, sizeof(path), "%s/msg.XXXXXX", tmpdir);
	fd = mkstemp(path);
	if (fd < 0 || unlink(path) < 0 || write_all(fd, padding, pad) < 0 ||
	    write_all(fd, data, n) < 0) {
		perror("message_fd");
		exit(2);
	}
	free(padding);
	return fd;
}

static void run(const char *cmd)
{
	if (system(cmd) != 0) {
		fprintf(stderr, "command failed: %s\n", cmd);
		exit(2);
	}
}

/* ---- layout -------------------------------------------------------------------------- */

static void test_create(void)
{
	struct stat st;
	mode_t old = umask(077);
	int fd;

	T_CHECK(mkdir(path_of("home"), 0755) == 0);
	fd = maildir_create(path_of("home/Maildir"), (uid_t)-1, (gid_t)-1, 0750);
	T_CHECK(fd >= 0);
	T_CHECK(is_dir("home/Maildir/cur") && is_dir("home/Maildir/new") &&
		is_dir("home/Maildir/tmp"));
	/* The mode is exact, not masked by the umask. */
	T_CHECK(stat(path_of("home/Maildir/new"), &st) == 0 && (st.st_mode & 07777) == 0750);
	T_CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0750);
	close(fd);
	umask(old);

	/* Again: everything exists already, fine. Also through "./" and doubled slashes. */
	fd = maildir_create(path_of("home//./Maildir/"), (uid_t)-1, (gid_t)-1, 0700);
	T_CHECK(fd >= 0);
	close(fd);
	/* A half-made Maildir is completed. */
	T_CHECK(rmdir(path_of("home/Maildir/tmp")) == 0);
	fd = maildir_create(path_of("home/Maildir"), (uid_t)-1, (gid_t)-1, 0700);
	T_CHECK(fd >= 0 && is_dir("home/Maildir/tmp"));
	close(fd);

	/* Missing parents are the caller's business; ".." is refused. */
	errno = 0;
	T_EQ_INT(maildir_create(path_of("nohome/x/Maildir"), (uid_t)-1, (gid_t)-1, 0700), -1);
	T_EQ_INT(errno, ENOENT);
	errno = 0;
	T_EQ_INT(maildir_create(path_of("home/../home/M2"), (uid_t)-1, (gid_t)-1, 0700), -1);
	T_EQ_INT(errno, EINVAL);
	T_CHECK(!exists("home/M2"));
	T_EQ_INT(maildir_create("", (uid_t)-1, (gid_t)-1, 0700), -1);

	fd = maildir_open(path_of("home/Maildir"));
	T_CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode));
	close(fd);
	T_EQ_INT(maildir_open(path_of("home/nothing")), -1);
}

static void test_create_owner(void)
{
	struct stat st;
	int fd;

	if (geteuid() != 0)
		return;
	T_CHECK(mkdir(path_of("owned"), 0755) == 0);
	fd = maildir_create(path_of("owned/Maildir"), 65534, 65534, 0700);
	T_CHECK(fd >= 0);
	T_CHECK(stat(path_of("owned/Maildir/cur"), &st) == 0 && st.st_uid == 65534 &&
		st.st_gid == 65534);
	T_CHECK(stat(path_of("owned/Maildir"), &st) == 0 && st.st_uid == 65534);
	/* Folders take the owner and mode of the Maildir root when created by root. */
	T_EQ_INT(maildir_create_folder(fd, ".Sent"), 0);
	T_CHECK(stat(path_of("owned/Maildir/.Sent/new"), &st) == 0 && st.st_uid == 65534 &&
		(st.st_mode & 0777) == 0700);
	T_CHECK(stat(path_of("owned/Maildir/.Sent/maildirfolder"), &st) == 0 &&
		st.st_uid == 65534 && S_ISREG(st.st_mode));
	close(fd);
}

static void test_symlink_traps(void)
{
	int fd;

	T_CHECK(mkdir(path_of("elsewhere"), 0755) == 0);
	T_CHECK(mkdir(path_of("trap1"), 0755) == 0);
	/* A symlink at tmp/ inside an otherwise fine Maildir. */
	T_CHECK(mkdir(path_of("trap1/Maildir"), 0700) == 0);
	T_CHECK(mkdir(path_of("trap1/Maildir/cur"), 0700) == 0);
	T_CHECK(mkdir(path_of("trap1/Maildir/new"), 0700) == 0);
	T_CHECK(symlink(path_of("elsewhere"), path_of("trap1/Maildir/tmp")) == 0);
	T_EQ_INT(maildir_create(path_of("trap1/Maildir"), (uid_t)-1, (gid_t)-1, 0700), -1);
	/* ... and delivery refuses it too. */
	fd = open(path_of("trap1/Maildir"), O_RDONLY | O_DIRECTORY);
	T_CHECK(fd >= 0);
	{
		struct maildir_delivery out;
		int msg = message_fd("x\r\n", 3, 0);

		T_EQ_INT(maildir_deliver(fd, msg, 0, 3, NULL, 0, "h", &out), -1);
		close(msg);
	}
	close(fd);
	T_EQ_INT(count_entries("elsewhere"), 0);

	/* The Maildir itself a symlink, and a symlink in the middle of the path. */
	T_CHECK(symlink(path_of("elsewhere"), path_of("trap2")) == 0);
	T_EQ_INT(maildir_create(path_of("trap2"), (uid_t)-1, (gid_t)-1, 0700), -1);
	T_EQ_INT(maildir_create(path_of("trap2/Maildir"), (uid_t)-1, (gid_t)-1, 0700), -1);
	T_EQ_INT(maildir_open(path_of("trap2")), -1);
	T_EQ_INT(count_entries("elsewhere"), 0);

	/* A symlink at a folder name. */
	fd = maildir_open(path_of("home/Maildir"));
	T_CHECK(fd >= 0);
	T_CHECK(symlink(path_of("elsewhere"), path_of("home/Maildir/.Trash")) == 0);
	T_EQ_INT(maildir_create_folder(fd, ".Trash"), -1);
	T_EQ_INT(maildir_open_folder(fd, ".Trash"), -1);
	T_EQ_INT(count_entries("elsewhere"), 0);
	/* A symlink at cur/ inside a folder. */
	T_CHECK(mkdir(path_of("home/Maildir/.Junk"), 0700) == 0);
	T_CHECK(symlink(path_of("elsewhere"), path_of("home/Maildir/.Junk/cur")) == 0);
	T_EQ_INT(maildir_create_folder(fd, ".Junk"), -1);
	/* A symlink at the marker file is not followed either. */
	T_CHECK(mkdir(path_of("home/Maildir/.Spam"), 0700) == 0);
	T_CHECK(symlink(path_of("elsewhere/marker"), path_of("home/Maildir/.Spam/maildirfolder")) == 0);
	T_EQ_INT(maildir_create_folder(fd, ".Spam"), -1);
	T_CHECK(!exists("elsewhere/marker"));
	T_EQ_INT(count_entries("elsewhere"), 0);
	close(fd);
	T_CHECK(unlink(path_of("home/Maildir/.Trash")) == 0);
	run("rm -rf -- \"$T/home/Maildir/.Junk\" \"$T/home/Maildir/.Spam\"");
}

static void test_folders(void)
{
	static const char *const good[] = { ".Sent", ".Sent.Sub", ".a", ".Entw&APw-rfe", ".x y" };
	static const char *const bad[] = { "", ".", "..", "Sent", ".Sent.", ".a..b", "..a",
					   ".a/b", ".a\nb", ".a\x7f", "/etc", ".a.", ".a.." };
	char longname[MAILDIR_FOLDER_MAX + 2];
	size_t i;
	int fd, sub;

	for (i = 0; i < ARRAY_LEN(good); i++)
		T_CHECK(maildir_folder_valid(good[i]));
	for (i = 0; i < ARRAY_LEN(bad); i++)
		T_CHECK(!maildir_folder_valid(bad[i]));
	T_CHECK(!maildir_folder_valid(NULL));
	memset(longname, 'x', sizeof(longname));
	longname[0] = '.';
	longname[MAILDIR_FOLDER_MAX] = '\0';
	T_CHECK(maildir_folder_valid(longname));
	longname[MAILDIR_FOLDER_MAX] = 'x';
	longname[MAILDIR_FOLDER_MAX + 1] = '\0';
	T_CHECK(!maildir_folder_valid(longname));

	fd = maildir_open(path_of("home/Maildir"));
	T_CHECK(fd >= 0);
	T_EQ_INT(maildir_create_folder(fd, ".Sent"), 0);
	T_EQ_INT(maildir_create_folder(fd, ".Sent.Sub"), 0);
	T_EQ_INT(maildir_create_folder(fd, ".Sent"), 0);	/* exists: fine */
	T_CHECK(is_dir("home/Maildir/.Sent/cur") && is_dir("home/Maildir/.Sent/new") &&
		is_dir("home/Maildir/.Sent/tmp") && exists("home/Maildir/.Sent/maildirfolder"));
	T_CHECK(is_dir("home/Maildir/.Sent.Sub/tmp") &&
		exists("home/Maildir/.Sent.Sub/maildirfolder"));
	/* Half-created folder completed. */
	T_CHECK(mkdir(path_of("home/Maildir/.Drafts"), 0700) == 0);
	T_EQ_INT(maildir_create_folder(fd, ".Drafts"), 0);
	T_CHECK(is_dir("home/Maildir/.Drafts/new") && exists("home/Maildir/.Drafts/maildirfolder"));
	errno = 0;
	T_EQ_INT(maildir_create_folder(fd, "../evil"), -1);
	T_EQ_INT(errno, EINVAL);
	T_EQ_INT(maildir_create_folder(fd, ".a/b"), -1);
	T_CHECK(!exists("evil") && !exists("home/evil"));

	sub = maildir_open_folder(fd, ".Sent");
	T_CHECK(sub >= 0);
	close(sub);
	errno = 0;
	T_EQ_INT(maildir_open_folder(fd, ".Nope"), -1);
	T_EQ_INT(errno, ENOENT);
	close(fd);
}

/* ---- delivery ------------------------------------------------------------------------ */

/* Deliver `data` (CRLF or not) and check the stored bytes and the sizes in the name. */
static void deliver_and_check(int mdfd, const char *data, size_t n, const char *prepend,
			      const char *expect, uint64_t expect_vsize)
{
	struct maildir_delivery out;
	struct maildir_name parsed;
	char rel[512], *stored;
	size_t len = 0;
	int msg = message_fd(data, n, 100);

	T_EQ_INT(maildir_deliver(mdfd, msg, 100, n, prepend, prepend ? strlen(prepend) : 0,
				 "mx.example.org", &out), 0);
	close(msg);
	T_EQ_INT(out.size, strlen(expect));
	T_EQ_INT(out.vsize, expect_vsize);
	str_fmt(rel, sizeof(rel), "dl/Maildir/new/%s", out.name);
	stored = slurp(rel, &len);
	T_CHECK(stored != NULL && len == strlen(expect) && memcmp(stored, expect, len) == 0);
	free(stored);
	T_EQ_INT(maildir_parse_name(out.name, &parsed), 0);
	T_CHECK(parsed.has_size && parsed.size == out.size);
	T_CHECK(parsed.has_vsize && parsed.vsize == out.vsize);
	T_CHECK(!parsed.has_info);
	T_EQ_INT(count_entries("dl/Maildir/tmp"), 0);
	T_CHECK(unlink(path_of(rel)) == 0);
}

static void test_deliver_content(void)
{
	static const char crlf[] = "Subject: hi\r\n\r\nline one\r\nline two\r\n";
	static const char lf[] = "Subject: hi\n\nline one\nline two\n";
	static const char pre[] = "Return-Path: <a@b.example>\r\nDelivered-To: c@d.example\r\n";
	static const char pre_lf[] = "Return-Path: <a@b.example>\nDelivered-To: c@d.example\n";
	char expect[256];
	int mdfd;

	T_CHECK(mkdir(path_of("dl"), 0755) == 0);
	mdfd = maildir_create(path_of("dl/Maildir"), (uid_t)-1, (gid_t)-1, 0700);
	T_CHECK(mdfd >= 0);
	/* CRLF in, LF on disk; W= is the CRLF size. */
	deliver_and_check(mdfd, crlf, strlen(crlf), NULL, lf, strlen(crlf));
	/* Bare LF input is stored as is and W= still counts CRLF. */
	deliver_and_check(mdfd, lf, strlen(lf), NULL, lf, strlen(crlf));
	/* Prepended lines come first, converted the same way. */
	str_fmt(expect, sizeof(expect), "%s%s", pre_lf, lf);
	deliver_and_check(mdfd, crlf, strlen(crlf), pre, expect, strlen(pre) + strlen(crlf));
	/* Lone CRs stay; "\r\r\n" becomes "\r\n", whose LF needs no extra byte in W=. */
	deliver_and_check(mdfd, "a\rb\r\nc\r\r\nd\r", 11, NULL, "a\rb\nc\r\nd\r", 9 + 1);
	/* Empty message with only prepended lines; and nothing at all. */
	deliver_and_check(mdfd, "", 0, pre, pre_lf, strlen(pre));
	deliver_and_check(mdfd, "", 0, NULL, "", 0);
	close(mdfd);
}

/* A big message whose CRLFs straddle every 64 KiB read boundary. */
static void test_deliver_big(void)
{
	const size_t lines = 40000;
	struct buf in, want;
	struct maildir_delivery out;
	char rel[512], *stored;
	size_t i, len = 0;
	int mdfd = maildir_open(path_of("dl/Maildir")), msg;

	buf_init(&in, 1 << 24);
	buf_init(&want, 1 << 24);
	for (i = 0; i < lines; i++) {
		/* Line lengths vary so CR lands at the end of a read chunk somewhere. */
		T_CHECK(buf_printf(&in, "%0*zu\r\n", (int)(i % 7) + 1, i) == 0);
		T_CHECK(buf_printf(&want, "%0*zu\n", (int)(i % 7) + 1, i) == 0);
	}
	T_CHECK(buf_append(&in, "\r", 1) == 0);	/* a final lone CR */
	T_CHECK(buf_append(&want, "\r", 1) == 0);
	msg = message_fd(in.data, in.len, 65535);
	T_EQ_INT(maildir_deliver(mdfd, msg, 65535, in.len, NULL, 0, NULL, &out), 0);
	close(msg);
	T_EQ_INT(out.size, want.len);
	T_EQ_INT(out.vsize, in.len);
	str_fmt(rel, sizeof(rel), "dl/Maildir/new/%s", out.name);
	stored = slurp(rel, &len);
	T_CHECK(stored != NULL && len == want.len && memcmp(stored, want.data, len) == 0);
	free(stored);
	T_CHECK(unlink(path_of(rel)) == 0);
	buf_free(&in);
	buf_free(&want);
	close(mdfd);
}

/* time.M<usec>P<pid>Q<n>.<host>,S=<s>,W=<w> */
static void test_deliver_name(void)
{
	struct maildir_delivery out;
	struct maildir_name parsed;
	long long t, usec, pid, q;
	char host[128], tail[128], expect[160];
	int mdfd = maildir_open(path_of("dl/Maildir")), msg = message_fd("x\r\n", 3, 0), n = 0;
	time_t now = time(NULL);

	T_EQ_INT(maildir_deliver(mdfd, msg, 0, 3, NULL, 0, "a/b:c.example", &out), 0);
	T_CHECK(sscanf(out.name, "%lld.M%lldP%lldQ%lld.%127[^,]%127s%n", &t, &usec, &pid, &q,
		       host, tail, &n) == 6);
	T_CHECK(n > 0 && (size_t)n == strlen(out.name));
	T_CHECK(t >= now - 2 && t <= now + 2);
	T_CHECK(usec >= 0 && usec < 1000000);
	T_EQ_INT(pid, getpid());
	T_CHECK(q >= 1);
	T_EQ_STR(host, "a\\057b\\072c.example");
	T_EQ_STR(tail, ",S=2,W=3");
	T_EQ_INT(maildir_parse_name(out.name, &parsed), 0);
	str_fmt(expect, sizeof(expect), "%lld.M%lldP%lldQ%lld.%s", t, usec, pid, q, host);
	T_EQ_INT(parsed.uniq_len, strlen(expect));
	T_EQ_INT(parsed.base_len, strlen(out.name));
	T_CHECK(exists("dl/Maildir/new") && count_entries("dl/Maildir/new") == 1);
	run("rm -f -- \"$T\"/dl/Maildir/new/*");
	/* A host name too long for a file name is refused, nothing left behind. */
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	T_EQ_INT(maildir_deliver(mdfd, msg, 0, 3, NULL, 0, host, &out), 0);	/* 127: fits */
	run("rm -f -- \"$T\"/dl/Maildir/new/*");
	{
		char huge[300];

		memset(huge, '/', sizeof(huge) - 1);
		huge[sizeof(huge) - 1] = '\0';
		T_EQ_INT(maildir_deliver(mdfd, msg, 0, 3, NULL, 0, huge, &out), -1);
		T_EQ_INT(maildir_deliver(mdfd, msg, 0, 3, NULL, 0, "", &out), -1);
	}
	T_EQ_INT(count_entries("dl/Maildir/tmp"), 0);
	T_EQ_INT(count_entries("dl/Maildir/new"), 0);
	close(msg);
	close(mdfd);
}

static void test_deliver_unique(void)
{
	struct maildir_delivery out;
	int mdfd = maildir_open(path_of("dl/Maildir")), msg = message_fd("m\r\n", 3, 0), i, ok = 1;
	int64_t start = mono_ms();

	for (i = 0; i < 1000 && ok; i++)
		ok = maildir_deliver(mdfd, msg, 0, 3, NULL, 0, "h", &out) == 0;
	T_CHECK(ok);
	T_EQ_INT(count_entries("dl/Maildir/new"), 1000);
	T_EQ_INT(count_entries("dl/Maildir/tmp"), 0);
	if (mono_ms() - start > 1000)
		fprintf(stderr, "note: 1000 deliveries took %lld ms\n",
			(long long)(mono_ms() - start));
	run("rm -f -- \"$T\"/dl/Maildir/new/*");

	/* Four processes delivering at once: still one file per delivery. */
	{
		pid_t pids[4];
		int status, k, all_ok = 1;

		for (k = 0; k < 4; k++) {
			pids[k] = fork();
			if (pids[k] == 0) {
				for (i = 0; i < 100; i++)
					if (maildir_deliver(mdfd, msg, 0, 3, NULL, 0, "h", &out) < 0)
						_exit(1);
				_exit(0);
			}
		}
		for (k = 0; k < 4; k++)
			if (pids[k] < 0 || waitpid(pids[k], &status, 0) != pids[k] ||
			    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
				all_ok = 0;
		T_CHECK(all_ok);
		T_EQ_INT(count_entries("dl/Maildir/new"), 400);
	}
	close(msg);
	close(mdfd);
	run("rm -f -- \"$T\"/dl/Maildir/new/*");
}

/* Failures leave nothing in tmp/ or new/. */
static void test_deliver_failures(void)
{
	struct maildir_delivery out;
	int mdfd = maildir_open(path_of("dl/Maildir")), msg = message_fd("abc\r\n", 5, 0);

	/* The message region runs past the end of the queue file. */
	errno = 0;
	T_EQ_INT(maildir_deliver(mdfd, msg, 0, 50, NULL, 0, "h", &out), -1);
	T_EQ_INT(errno, EIO);
	T_EQ_STR(out.name, "");
	/* An unreadable message descriptor. */
	T_EQ_INT(maildir_deliver(mdfd, -1, 0, 5, NULL, 0, "h", &out), -1);
	T_EQ_INT(errno, EBADF);
	T_EQ_INT(maildir_deliver(mdfd, msg, -1, 5, NULL, 0, "h", &out), -1);
	T_EQ_INT(count_entries("dl/Maildir/tmp"), 0);
	T_EQ_INT(count_entries("dl/Maildir/new"), 0);
	close(msg);
	close(mdfd);
}

/* In a child: drop to nobody when root (so permissions apply), make new/ read-only and try a
 * delivery. Exit status 0 when it failed cleanly. */
static int child_readonly_new(void)
{
	struct maildir_delivery out;
	int mdfd, msg = message_fd("abc\r\n", 5, 0);

	if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
			       setresuid(65534, 65534, 65534) < 0))
		return 10;
	mdfd = maildir_open(path_of("ro/Maildir"));
	if (mdfd < 0)
		return 11;
	if (maildir_deliver(mdfd, msg, 0, 5, NULL, 0, "h", &out) != -1 || errno != EACCES)
		return 12;
	if (count_entries("ro/Maildir/tmp") != 0 || count_entries("ro/Maildir/new") != 0)
		return 13;
	/* Read-only tmp/ as well: fails before writing anything. */
	if (chmod(path_of("ro/Maildir/tmp"), 0500) < 0)
		return 14;
	if (maildir_deliver(mdfd, msg, 0, 5, NULL, 0, "h", &out) != -1 || errno != EACCES)
		return 15;
	return count_entries("ro/Maildir/tmp") == 0 ? 0 : 16;
}

/* In a child: a file size limit makes the write fail with EFBIG half way. */
static int child_write_error(void)
{
	struct maildir_delivery out;
	struct rlimit rl = { 4096, 4096 };
	char *big = xmalloc(100000);
	int mdfd = maildir_open(path_of("dl/Maildir")), msg;

	memset(big, 'x', 100000);
	msg = message_fd(big, 100000, 0);
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		return 20;
	if (maildir_deliver(mdfd, msg, 0, 100000, NULL, 0, "h", &out) != -1 || errno != EFBIG)
		return 21;
	free(big);
	return count_entries("dl/Maildir/tmp") == 0 && count_entries("dl/Maildir/new") == 0 ? 0
												: 22;
}

static int in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void test_deliver_permissions(void)
{
	int fd;

	T_CHECK(mkdir(path_of("ro"), 0755) == 0);
	fd = maildir_create(path_of("ro/Maildir"), geteuid() == 0 ? 65534 : (uid_t)-1,
			    geteuid() == 0 ? 65534 : (gid_t)-1, 0700);
	T_CHECK(fd >= 0);
	close(fd);
	T_CHECK(chmod(path_of("ro/Maildir/new"), 0500) == 0);
	T_EQ_INT(in_child(child_readonly_new), 0);
	T_EQ_INT(in_child(child_write_error), 0);
}

/* ---- quota --------------------------------------------------------------------------- */

static int md_quota;

/* A fresh Maildir "q/Maildir" holding: 3 messages with S= in new/, one in .Sent/cur, one
 * in cur/ without S= (10 bytes, sized by stat), and a symlink that must not count. */
static void quota_setup(void)
{
	static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	struct maildir_delivery out;
	int fd, sent, i;

	T_CHECK(mkdir(path_of("q"), 0755) == 0);
	md_quota = maildir_create(path_of("q/Maildir"), (uid_t)-1, (gid_t)-1, 0700);
	T_CHECK(md_quota >= 0);
	T_EQ_INT(maildir_create_folder(md_quota, ".Sent"), 0);
	fd = message_fd(msg, strlen(msg), 0);
	for (i = 0; i < 3; i++)
		T_EQ_INT(maildir_deliver(md_quota, fd, 0, strlen(msg), NULL, 0, "h", &out), 0);
	sent = maildir_open_folder(md_quota, ".Sent");
	T_EQ_INT(maildir_deliver(sent, fd, 0, strlen(msg), NULL, 0, "h", &out), 0);
	close(sent);
	close(fd);
	T_EQ_INT(out.size, 17);
	write_text("q/Maildir/cur/1.nosize.h:2,S", "0123456789");
	T_CHECK(symlink("/etc/passwd", path_of("q/Maildir/cur/2.link.h,S=1000:2,")) == 0);
}

#define QUOTA_TRUE_BYTES (4 * 17 + 10)
#define QUOTA_TRUE_COUNT 5

static void test_quota_dovecot_file(void)
{
	struct maildir_quota q;

	/* As Dovecot writes it: header, a recalculated line, then deltas. */
	write_text("q/Maildir/maildirsize", "1073741824S,1000C\n123456 10\n2345 1\n-2345 -1\n");
	maildir_quota_init(&q);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_EQ_INT(q.bytes_limit, 1073741824);
	T_EQ_INT(q.count_limit, 1000);
	T_EQ_INT(q.bytes_used, 123456);
	T_EQ_INT(q.count_used, 10);
	T_CHECK(q.enforced && !q.recalculated);

	/* Only a count limit; "0S" meaning none; unknown items ignored. */
	write_text("q/Maildir/maildirsize", "50C\n1 1\n");
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.bytes_limit == 0 && q.count_limit == 50 && q.enforced && !q.recalculated);
	write_text("q/Maildir/maildirsize", "0S\n100 2\n");
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.bytes_limit == 0 && q.count_limit == 0 && !q.enforced);
	T_CHECK(q.bytes_used == 100 && q.count_used == 2);
	write_text("q/Maildir/maildirsize", "200S,7X,3C\n100 2\n");
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.bytes_limit == 200 && q.count_limit == 3);

	/* A line being appended right now (no LF yet) is ignored. */
	write_text("q/Maildir/maildirsize", "1000000S\n10 1\n5 ");
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.bytes_used == 10 && q.count_used == 1 && !q.recalculated);
}

static void test_quota_check(void)
{
	struct maildir_quota q;

	maildir_quota_init(&q);
	T_CHECK(maildir_quota_check(&q, UINT64_MAX, UINT64_MAX));	/* no limits */
	q.bytes_limit = 1000;
	q.bytes_used = 900;
	T_CHECK(maildir_quota_check(&q, 100, 1));
	T_CHECK(!maildir_quota_check(&q, 101, 1));
	T_CHECK(!maildir_quota_check(&q, UINT64_MAX, 1));
	q.bytes_used = 1200;	/* already over */
	T_CHECK(!maildir_quota_check(&q, 0, 0));
	q.bytes_used = 0;
	q.count_limit = 10;
	q.count_used = 9;
	T_CHECK(maildir_quota_check(&q, 1, 1));
	T_CHECK(!maildir_quota_check(&q, 1, 2));
}

static void test_quota_add(void)
{
	struct maildir_quota q;
	char *text;
	size_t len;

	write_text("q/Maildir/maildirsize", "100000S\n1000 10\n");
	T_EQ_INT(maildir_quota_add(md_quota, 500, 1), 0);
	T_EQ_INT(maildir_quota_add(md_quota, -100, -1), 0);
	text = slurp("q/Maildir/maildirsize", &len);
	T_EQ_STR(text, "100000S\n1000 10\n500 1\n-100 -1\n");
	free(text);
	maildir_quota_init(&q);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.bytes_used == 1400 && q.count_used == 10 && !q.recalculated);

	/* No file: nothing is tracked, nothing created. */
	T_CHECK(unlink(path_of("q/Maildir/maildirsize")) == 0);
	T_EQ_INT(maildir_quota_add(md_quota, 5, 1), 0);
	T_CHECK(!exists("q/Maildir/maildirsize"));
}

static void test_quota_recalc(void)
{
	struct maildir_quota q;
	char *text, expect[64];
	size_t len;

	maildir_quota_init(&q);
	maildir_quota_set_limit(&q, 5000, 0);
	T_EQ_INT(maildir_quota_recalc(md_quota, &q), 0);
	T_EQ_INT(q.bytes_used, QUOTA_TRUE_BYTES);
	T_EQ_INT(q.count_used, QUOTA_TRUE_COUNT);
	text = slurp("q/Maildir/maildirsize", &len);
	str_fmt(expect, sizeof(expect), "5000S\n%d %d\n", QUOTA_TRUE_BYTES, QUOTA_TRUE_COUNT);
	T_EQ_STR(text, expect);
	free(text);
	T_EQ_INT(count_entries("q/Maildir/tmp"), 0);

	/* Both limits, and neither ("0S", as Dovecot writes). */
	maildir_quota_set_limit(&q, 5000, 40);
	T_EQ_INT(maildir_quota_recalc(md_quota, &q), 0);
	text = slurp("q/Maildir/maildirsize", &len);
	T_CHECK(text != NULL && strncmp(text, "5000S,40C\n", 10) == 0);
	free(text);
	maildir_quota_init(&q);
	T_EQ_INT(maildir_quota_recalc(md_quota, &q), 0);
	text = slurp("q/Maildir/maildirsize", &len);
	T_CHECK(text != NULL && strncmp(text, "0S\n", 3) == 0);
	free(text);
}

static void test_quota_missing(void)
{
	struct maildir_quota q;

	/* No file and no limit from the user database: no quota, no file made. */
	unlink(path_of("q/Maildir/maildirsize"));
	maildir_quota_init(&q);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(!q.enforced && !q.recalculated && maildir_quota_check(&q, 1 << 30, 1000));
	T_CHECK(!exists("q/Maildir/maildirsize"));

	/* With a limit: rebuilt from a scan. */
	maildir_quota_set_limit(&q, 80, 0);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.recalculated && q.enforced);
	T_EQ_INT(q.bytes_used, QUOTA_TRUE_BYTES);
	T_CHECK(exists("q/Maildir/maildirsize"));
	T_CHECK(maildir_quota_check(&q, 2, 1));
	T_CHECK(!maildir_quota_check(&q, 3, 1));

	/* The limit changed in the user database: the header is rewritten. */
	maildir_quota_set_limit(&q, 1000, 0);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.recalculated && q.bytes_limit == 1000);
	{
		size_t len;
		char *text = slurp("q/Maildir/maildirsize", &len);

		T_CHECK(text != NULL && strncmp(text, "1000S\n", 6) == 0);
		free(text);
	}

	/* A symlink in place of maildirsize is replaced, not followed. */
	unlink(path_of("q/Maildir/maildirsize"));
	write_text("outside-size", "1S\n0 0\n");
	T_CHECK(symlink(path_of("outside-size"), path_of("q/Maildir/maildirsize")) == 0);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.recalculated && q.bytes_used == QUOTA_TRUE_BYTES);
	{
		struct stat st;
		size_t len;
		char *text = slurp("outside-size", &len);

		T_CHECK(lstat(path_of("q/Maildir/maildirsize"), &st) == 0 && S_ISREG(st.st_mode));
		T_EQ_STR(text, "1S\n0 0\n");
		free(text);
	}
}

static void test_quota_5120(void)
{
	struct maildir_quota q;
	struct buf b;
	char *text;
	size_t len;

	/* Just under 5120 bytes and under quota: trusted as is. */
	buf_init(&b, 1 << 16);
	buf_append_str(&b, "100000000S\n");
	while (b.len + 4 < MAILDIR_QUOTA_MAX_FILE)
		buf_append_str(&b, "1 0\n");
	T_CHECK(b.len < MAILDIR_QUOTA_MAX_FILE);
	write_text("q/Maildir/maildirsize", b.data);
	maildir_quota_init(&q);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(!q.recalculated);
	T_EQ_INT(q.bytes_used, (b.len - 11) / 4);

	/* 5120 bytes or more: rebuilt, keeping the header's limit. */
	while (b.len < MAILDIR_QUOTA_MAX_FILE)
		buf_append_str(&b, "1 0\n");
	write_text("q/Maildir/maildirsize", b.data);
	maildir_quota_init(&q);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.recalculated);
	T_EQ_INT(q.bytes_used, QUOTA_TRUE_BYTES);
	T_EQ_INT(q.bytes_limit, 100000000);
	text = slurp("q/Maildir/maildirsize", &len);
	T_CHECK(text != NULL && len < 100 && strncmp(text, "100000000S\n", 11) == 0);
	free(text);
	buf_free(&b);
}

static void test_quota_stale_and_corrupt(void)
{
	struct maildir_quota q;
	struct timespec old[2];

	/* Over quota on one fresh line: trusted (the delivery is refused). */
	write_text("q/Maildir/maildirsize", "1000S\n2000 1\n");
	maildir_quota_init(&q);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(!q.recalculated && q.bytes_used == 2000 && !maildir_quota_check(&q, 1, 1));
	/* The same, 16 minutes old: rescanned. */
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 16 * 60;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	T_CHECK(utimensat(AT_FDCWD, path_of("q/Maildir/maildirsize"), old, 0) == 0);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.recalculated && q.bytes_used == QUOTA_TRUE_BYTES && q.bytes_limit == 1000);
	T_CHECK(maildir_quota_check(&q, 1, 1));
	/* Over quota on more than one line: rescanned even when fresh. */
	write_text("q/Maildir/maildirsize", "1000S\n900 1\n200 1\n");
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(q.recalculated && q.bytes_used == QUOTA_TRUE_BYTES);
	/* Under quota and old: trusted. */
	write_text("q/Maildir/maildirsize", "1000S\n900 1\n50 1\n");
	T_CHECK(utimensat(AT_FDCWD, path_of("q/Maildir/maildirsize"), old, 0) == 0);
	T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
	T_CHECK(!q.recalculated && q.bytes_used == 950 && q.count_used == 2);

	/* Corrupt: junk, negative sums, NUL bytes, no usage line, overflow. */
	{
		static const char *const bad[] = { "1000S\nabc def\n", "1000S\n10 1\n-20 -1\n",
						   "1000S\n", "1000S\n1 1 1\n", "",
						   "1000S\n9223372036854775807 1\n1 0\n" };
		size_t i;

		for (i = 0; i < ARRAY_LEN(bad); i++) {
			write_text("q/Maildir/maildirsize", bad[i]);
			T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
			T_CHECK(q.recalculated && q.bytes_used == QUOTA_TRUE_BYTES);
		}
		T_CHECK(q.bytes_limit == 1000);
	}
	{
		static const char nul[] = "1000S\n1\0 1\n";
		int fd = open(path_of("q/Maildir/maildirsize"), O_WRONLY | O_TRUNC);

		T_CHECK(fd >= 0 && write_all(fd, nul, sizeof(nul) - 1) == 0);
		close(fd);
		T_EQ_INT(maildir_quota_read(md_quota, &q), 0);
		T_CHECK(q.recalculated && q.bytes_used == QUOTA_TRUE_BYTES);
	}
	close(md_quota);
}

/* ---- names and flags ----------------------------------------------------------------- */

static void test_names(void)
{
	struct maildir_name n;
	char out[300], longname[300];

	T_EQ_INT(maildir_parse_name("1700000000.M123P45Q6.host,S=100,W=102:2,SRa", &n), 0);
	T_EQ_INT(n.uniq_len, strlen("1700000000.M123P45Q6.host"));
	T_EQ_INT(n.base_len, strlen("1700000000.M123P45Q6.host,S=100,W=102"));
	T_CHECK(n.has_size && n.size == 100 && n.has_vsize && n.vsize == 102 && n.has_info);
	T_EQ_STR(n.flags, "RSa");
	T_CHECK(maildir_name_has_flag(&n, 'S') && maildir_name_has_flag(&n, 'a'));
	T_CHECK(!maildir_name_has_flag(&n, 'T') && !maildir_name_has_flag(&n, ','));

	/* Plain qmail-style names, other fields, malformed sizes (fall back to stat). */
	T_EQ_INT(maildir_parse_name("12345.6789.host", &n), 0);
	T_CHECK(!n.has_size && !n.has_vsize && !n.has_info && n.flags[0] == '\0');
	T_EQ_INT(maildir_parse_name("1.2.h,X=7,W=9:2,", &n), 0);
	T_CHECK(!n.has_size && n.has_vsize && n.vsize == 9 && n.has_info);
	T_EQ_INT(maildir_parse_name("1.2.h,S=12x:2,S", &n), 0);
	T_CHECK(!n.has_size && n.flags[0] == 'S');
	T_EQ_INT(maildir_parse_name("1.2.h,S=99999999999999999999999", &n), 0);
	T_CHECK(!n.has_size);
	T_EQ_INT(maildir_parse_name("1.2.h:1,xyz", &n), 0);
	T_CHECK(!n.has_info && n.base_len == 5);
	T_EQ_INT(maildir_parse_name("", &n), -1);
	T_EQ_INT(maildir_parse_name(".hidden", &n), -1);
	T_EQ_INT(maildir_parse_name("a/b", &n), -1);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	T_EQ_INT(maildir_parse_name(longname, &n), -1);

	/* Flags: sorted, de-duplicated, info replaced or added. */
	T_EQ_INT(maildir_flags_set("1.M2P3Q4.h,S=5,W=6:2,S", "TaSDcR", out, sizeof(out)), 0);
	T_EQ_STR(out, "1.M2P3Q4.h,S=5,W=6:2,DRSTac");
	T_EQ_INT(maildir_flags_set("1.M2P3Q4.h,S=5,W=6", "SS", out, sizeof(out)), 0);
	T_EQ_STR(out, "1.M2P3Q4.h,S=5,W=6:2,S");
	T_EQ_INT(maildir_flags_set("1.M2P3Q4.h:2,FS", "", out, sizeof(out)), 0);
	T_EQ_STR(out, "1.M2P3Q4.h:2,");
	T_EQ_INT(maildir_flags_set("1.2.h:1,old", "F", out, sizeof(out)), 0);
	T_EQ_STR(out, "1.2.h:2,F");
	/* In place. */
	str_copy(out, sizeof(out), "1.2.h:2,S");
	T_EQ_INT(maildir_flags_set(out, "SF", out, sizeof(out)), 0);
	T_EQ_STR(out, "1.2.h:2,FS");
	/* Round trip. */
	T_EQ_INT(maildir_parse_name(out, &n), 0);
	T_EQ_STR(n.flags, "FS");
	/* Errors. */
	errno = 0;
	T_EQ_INT(maildir_flags_set("1.2.h", "S1", out, sizeof(out)), -1);
	T_EQ_INT(errno, EINVAL);
	T_EQ_INT(maildir_flags_set("1.2.h", "S", out, 8), -1);
	T_EQ_INT(errno, ENAMETOOLONG);
	longname[MAILDIR_NAME_MAX - 2] = '\0';	/* 253 + ":2," is too long */
	T_EQ_INT(maildir_flags_set(longname, "", out, sizeof(out)), -1);
	T_EQ_INT(errno, ENAMETOOLONG);
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0711) < 0 || setenv("T", tmpdir, 1) < 0) {
		perror("mkdtemp");
		return 2;
	}
	T_RUN(test_create);
	T_RUN(test_create_owner);
	T_RUN(test_folders);
	T_RUN(test_symlink_traps);
	T_RUN(test_deliver_content);
	T_RUN(test_deliver_big);
	T_RUN(test_deliver_name);
	T_RUN(test_deliver_unique);
	T_RUN(test_deliver_failures);
	T_RUN(test_deliver_permissions);
	T_RUN(test_quota_check);
	quota_setup();
	T_RUN(test_quota_dovecot_file);
	T_RUN(test_quota_add);
	T_RUN(test_quota_recalc);
	T_RUN(test_quota_missing);
	T_RUN(test_quota_5120);
	T_RUN(test_quota_stale_and_corrupt);
	T_RUN(test_names);
	run("rm -rf -- \"$T\"");
	return T_DONE();
}
