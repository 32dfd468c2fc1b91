/*
 * test_log.c: unit tests for lib/log.c: the syslog-style file layout
 * ("Mon DD HH:MM:SS host postern/SERVICE[PID]: text"), the level prefixes, msg_debug and the
 * verbose level, replacement of control characters (no forged second line), msg_tagged
 * lines, log_set_service, the stderr copy, the stderr fallback when the file cannot be
 * opened, long messages, errno preservation and msg_fatal in a forked child.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "t.h"
#include "util.h"

static char dir[64], logpath[128], errpath[128];
static char host[64];	/* the short host name the log is expected to show */

/* The host name as log.c shows it: up to the first dot, at most 63 bytes. */
static void expected_host(void)
{
	char h[256];

	if (gethostname(h, sizeof(h)) < 0)
		str_copy(h, sizeof(h), "localhost");
	h[sizeof(h) - 1] = '\0';
	h[strcspn(h, ".")] = '\0';
	str_copy(host, sizeof(host), h);
}

/* The whole log file (empty string if it does not exist); caller frees. */
static char *slurp(const char *path)
{
	char *s = NULL;
	size_t len;

	if (read_file(path, 1 << 20, &s, &len) < 0)
		return xstrdup("");
	return s;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* Copy line number idx (0-based, without its newline) of s into out; -1 if absent. */
static int nth_line(const char *s, int idx, char *out, size_t outlen)
{
	for (int i = 0; i < idx; i++) {
		s = strchr(s, '\n');
		if (s == NULL)
			return -1;
		s++;
	}
	if (*s == '\0')
		return -1;
	size_t len = strcspn(s, "\n");

	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* The log file's last line. */
static void last_line(char *out, size_t outlen)
{
	char *s = slurp(logpath);
	int n = count_lines(s);

	if (n == 0 || nth_line(s, n - 1, out, outlen) < 0)
		str_copy(out, outlen, "(no line)");
	free(s);
}

/* A syslog time stamp of t: "Nov  1 09:05:03" (15 bytes, day padded with a space). */
static void stamp_of(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(out, outlen, "%b %e %H:%M:%S", &tm) == 0)
		str_copy(out, outlen, "?");
}

/*
 * Check that line is "<stamp> <rest>" with a stamp taken between before and after (inclusive),
 * and that rest is exactly want.
 */
static void check_line(const char *line, time_t before, const char *want)
{
	char stamp[32], body[8192];
	int stamp_ok = 0;

	T_CHECK(strlen(line) > 16 && line[15] == ' ');
	for (time_t t = before; t <= time(NULL); t++) {
		stamp_of(t, stamp, sizeof(stamp));
		if (strncmp(line, stamp, 15) == 0)
			stamp_ok = 1;
	}
	if (!stamp_ok)
		fprintf(stderr, "bad time stamp in log line: %s\n", line);
	T_CHECK(stamp_ok);
	str_copy(body, sizeof(body), strlen(line) > 16 ? line + 16 : "");
	T_EQ_STR(body, want);
}

/* The expected body of a postern line: "host postern/SVC[PID]: text". */
static void body_of(char *out, size_t outlen, const char *service, pid_t pid, const char *text)
{
	str_fmt(out, outlen, "%s postern/%s[%d]: %s", host, service, (int)pid, text);
}

static void open_fresh(const char *service)
{
	unlink(logpath);
	T_EQ_INT(log_open(service, LOG_TARGET_FILE, logpath), 0);
}

static void test_file_format(void)
{
	time_t before = time(NULL);
	char line[8192], want[8192];
	char *s;

	open_fresh("smtpd");
	T_CHECK(log_file_fd() >= 0);
	msg_info("connect from example.com[192.0.2.1]");
	last_line(line, sizeof(line));
	body_of(want, sizeof(want), "smtpd", getpid(), "connect from example.com[192.0.2.1]");
	check_line(line, before, want);

	msg_warn("disk %d%% full", 93);
	last_line(line, sizeof(line));
	body_of(want, sizeof(want), "smtpd", getpid(), "warning: disk 93% full");
	check_line(line, before, want);

	msg_error("cannot open %s", "queue");
	last_line(line, sizeof(line));
	body_of(want, sizeof(want), "smtpd", getpid(), "error: cannot open queue");
	check_line(line, before, want);

	s = slurp(logpath);
	T_EQ_INT(count_lines(s), 3);
	T_CHECK(s[strlen(s) - 1] == '\n');
	free(s);
}

static void test_file_mode_and_append(void)
{
	struct stat st;
	int fd;
	char *s;

	unlink(logpath);
	/* An existing file is appended to, never truncated. */
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	T_CHECK(fd >= 0);
	T_EQ_INT(write_all(fd, "old line\n", 9), 0);
	close(fd);
	T_EQ_INT(log_open("smtpd", LOG_TARGET_FILE, logpath), 0);
	msg_info("new line");
	s = slurp(logpath);
	T_EQ_INT(count_lines(s), 2);
	T_CHECK(strncmp(s, "old line\n", 9) == 0);
	free(s);

	/* A new file is created 0640 (modulo umask) and its descriptor is close-on-exec. */
	unlink(logpath);
	T_EQ_INT(log_open("smtpd", LOG_TARGET_FILE, logpath), 0);
	T_EQ_INT(stat(logpath, &st), 0);
	T_EQ_INT(st.st_mode & 0777 & ~0640, 0);
	T_CHECK((fcntl(log_file_fd(), F_GETFD) & FD_CLOEXEC) != 0);
	T_CHECK((fcntl(log_file_fd(), F_GETFL) & O_APPEND) != 0);
}

static void test_debug_only_when_verbose(void)
{
	time_t before = time(NULL);
	char line[8192], want[8192];
	char *s;

	open_fresh("qmgr");
	log_set_verbose(0);
	T_EQ_INT(log_verbose(), 0);
	msg_debug("invisible %d", 1);
	s = slurp(logpath);
	T_EQ_INT(count_lines(s), 0);
	free(s);

	log_set_verbose(1);
	T_EQ_INT(log_verbose(), 1);
	msg_debug("visible %d", 2);
	s = slurp(logpath);
	T_EQ_INT(count_lines(s), 1);
	free(s);
	last_line(line, sizeof(line));
	body_of(want, sizeof(want), "qmgr", getpid(), "visible 2");
	check_line(line, before, want);
	log_set_verbose(0);
}

static void test_control_characters(void)
{
	time_t before = time(NULL);
	char line[8192], want[8192];
	char *s;

	open_fresh("smtpd");
	/* A peer's HELO trying to forge a second line, a carriage return and a terminal escape. */
	msg_info("helo=<%s>", "x\nJan  1 00:00:00 vm postern/smtpd[1]: fake\rok\x1b[31mred\x7f\t.");
	s = slurp(logpath);
	T_EQ_INT(count_lines(s), 1);
	T_CHECK(strstr(s, "\x1b") == NULL);
	T_CHECK(strchr(s, '\r') == NULL);
	T_CHECK(strchr(s, '\t') == NULL);
	T_CHECK(strchr(s, 0x7f) == NULL);
	free(s);
	last_line(line, sizeof(line));
	body_of(want, sizeof(want), "smtpd", getpid(),
		"helo=<x?Jan  1 00:00:00 vm postern/smtpd[1]: fake?ok?[31mred??.>");
	check_line(line, before, want);

	/* Bytes >= 0x80 (UTF-8) are not control characters and pass unchanged. */
	msg_info("user=<j\xc3\xb6rg>");
	last_line(line, sizeof(line));
	body_of(want, sizeof(want), "smtpd", getpid(), "user=<j\xc3\xb6rg>");
	check_line(line, before, want);
}

static void test_tagged(void)
{
	time_t before = time(NULL);
	char line[8192], want[8192];

	open_fresh("imap-login");
	msg_tagged("imap-login", "Info: Login: user=<%s>, method=PLAIN, rip=%s", "a@example.com",
		   "192.0.2.9");
	last_line(line, sizeof(line));
	str_fmt(want, sizeof(want), "%s imap-login: Info: Login: user=<a@example.com>, "
		"method=PLAIN, rip=192.0.2.9", host);
	check_line(line, before, want);
	T_CHECK(strstr(line, "postern/") == NULL);
	T_CHECK(strchr(line, '[') == NULL);

	/* Tagged lines are sanitised too. */
	msg_tagged("pop3-login", "Info: user=<%s>", "a\nb");
	last_line(line, sizeof(line));
	str_fmt(want, sizeof(want), "%s pop3-login: Info: user=<a?b>", host);
	check_line(line, before, want);
}

static void test_set_service(void)
{
	time_t before = time(NULL);
	char line[8192], want[8192];

	open_fresh("master");
	msg_info("one");
	last_line(line, sizeof(line));
	body_of(want, sizeof(want), "master", getpid(), "one");
	check_line(line, before, want);

	log_set_service("smtp");
	msg_info("two");
	last_line(line, sizeof(line));
	body_of(want, sizeof(want), "smtp", getpid(), "two");
	check_line(line, before, want);

	/* A name too long for the ident buffer falls back to plain "postern". */
	log_set_service("a-service-name-that-is-much-too-long-to-fit-in-the-ident-buffer-xx");
	msg_info("three");
	last_line(line, sizeof(line));
	str_fmt(want, sizeof(want), "%s postern[%d]: three", host, (int)getpid());
	check_line(line, before, want);
	log_set_service("smtpd");
}

/* Point fd 2 at a file for the duration of fn; returns what was written to it. */
static char *capture_stderr(void (*fn)(void))
{
	int saved = dup(2), fd;

	unlink(errpath);
	fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (saved < 0 || fd < 0) {
		perror("capture_stderr");
		return xstrdup("");
	}
	dup2(fd, 2);
	close(fd);
	fn();
	dup2(saved, 2);
	close(saved);
	return slurp(errpath);
}

static void copy_some_lines(void)
{
	log_copy_to_stderr(1);
	msg_warn("starting %s", "up");
	msg_tagged("imap-login", "Info: copied");
	log_copy_to_stderr(0);
	msg_info("not copied");
}

static void test_copy_to_stderr(void)
{
	time_t before = time(NULL);
	char *err, *s, line[8192], want[8192];

	open_fresh("master");
	err = capture_stderr(copy_some_lines);
	T_EQ_STR(err, "postern/master: warning: starting up\nimap-login: Info: copied\n");
	free(err);

	/* The file still gets every line. */
	s = slurp(logpath);
	T_EQ_INT(count_lines(s), 3);
	T_CHECK(nth_line(s, 0, line, sizeof(line)) == 0);
	body_of(want, sizeof(want), "master", getpid(), "warning: starting up");
	check_line(line, before, want);
	T_CHECK(nth_line(s, 2, line, sizeof(line)) == 0);
	body_of(want, sizeof(want), "master", getpid(), "not copied");
	check_line(line, before, want);
	free(s);
}

static void log_to_missing_dir(void)
{
	char bad[200];

	str_fmt(bad, sizeof(bad), "%s/no/such/dir/log", dir);
	T_EQ_INT(log_open("smtpd", LOG_TARGET_FILE, bad), -1);
	T_EQ_INT(log_file_fd(), -1);
	msg_info("to stderr");
	msg_tagged("pop3-login", "Info: to stderr");
}

/* A file that cannot be opened: logging falls back to stderr, in the foreground layout. */
static void test_fallback_to_stderr(void)
{
	char *err = capture_stderr(log_to_missing_dir), want[256];

	str_fmt(want, sizeof(want), "postern/smtpd[%d]: to stderr\npop3-login: Info: to stderr\n",
		(int)getpid());
	T_EQ_STR(err, want);
	free(err);

	T_EQ_INT(log_open("smtpd", LOG_TARGET_STDERR, NULL), 0);
	T_EQ_INT(log_file_fd(), -1);
}

static void test_long_message(void)
{
	char *big = xmalloc(10001), *s, line[16384];

	memset(big, 'x', 10000);
	big[10000] = '\0';
	big[5000] = '\n';	/* past the truncation point: must not matter */
	open_fresh("smtpd");
	msg_info("%s", big);
	msg_info("after");
	s = slurp(logpath);
	T_EQ_INT(count_lines(s), 2);
	T_CHECK(nth_line(s, 0, line, sizeof(line)) == 0);
	T_CHECK(strlen(line) > 4000 && strlen(line) < 4096 + 256);
	T_CHECK(strstr(line, "]: xxxx") != NULL);
	T_CHECK(nth_line(s, 1, line, sizeof(line)) == 0);
	T_CHECK(strstr(line, "]: after") != NULL);
	free(s);
	free(big);
}

static void test_errno_preserved(void)
{
	char line[8192];

	open_fresh("smtpd");
	errno = EACCES;
	msg_info("open: %m");
	T_EQ_INT(errno, EACCES);
	last_line(line, sizeof(line));
	T_CHECK(strstr(line, "]: open: Permission denied") != NULL);
	errno = ENOENT;
	msg_warn("x");
	msg_error("y");
	msg_tagged("t", "z");
	T_EQ_INT(errno, ENOENT);
}

/* msg_fatal in a child: "fatal: " line with the child's own pid, exit status 1. */
static void test_fatal(void)
{
	time_t before = time(NULL);
	char line[8192], want[8192];
	int status = -1;
	pid_t pid;

	open_fresh("queue");
	pid = fork();
	T_CHECK(pid >= 0);
	if (pid == 0) {
		log_reset_pid();
		msg_fatal("queue directory %s: %s", "/x", "gone");
	}
	T_EQ_INT(waitpid(pid, &status, 0), pid);
	T_CHECK(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 1);
	last_line(line, sizeof(line));
	body_of(want, sizeof(want), "queue", pid, "fatal: queue directory /x: gone");
	check_line(line, before, want);
}

/* Without log_reset_pid a child keeps logging the pid it inherited. */
static void test_reset_pid(void)
{
	char line[8192], want[64];
	int status = -1;
	pid_t pid;

	open_fresh("queue");
	pid = fork();
	T_CHECK(pid >= 0);
	if (pid == 0) {
		msg_info("stale");
		log_reset_pid();
		msg_info("fresh");
		_exit(0);
	}
	T_EQ_INT(waitpid(pid, &status, 0), pid);
	T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	{
		char *s = slurp(logpath);

		T_EQ_INT(count_lines(s), 2);
		T_CHECK(nth_line(s, 0, line, sizeof(line)) == 0);
		str_fmt(want, sizeof(want), "[%d]: stale", (int)getpid());
		T_CHECK(strstr(line, want) != NULL);
		T_CHECK(nth_line(s, 1, line, sizeof(line)) == 0);
		str_fmt(want, sizeof(want), "[%d]: fresh", (int)pid);
		T_CHECK(strstr(line, want) != NULL);
		free(s);
	}
}

int main(void)
{
	str_copy(dir, sizeof(dir), "/tmp/test_log.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	str_fmt(logpath, sizeof(logpath), "%s/maillog", dir);
	str_fmt(errpath, sizeof(errpath), "%s/stderr", dir);
	expected_host();

	T_RUN(test_file_format);
	T_RUN(test_file_mode_and_append);
	T_RUN(test_debug_only_when_verbose);
	T_RUN(test_control_characters);
	T_RUN(test_tagged);
	T_RUN(test_set_service);
	T_RUN(test_copy_to_stderr);
	T_RUN(test_fallback_to_stderr);
	T_RUN(test_long_message);
	T_RUN(test_errno_preserved);
	T_RUN(test_fatal);
	T_RUN(test_reset_pid);

	log_open("test_log", LOG_TARGET_STDERR, NULL);
	unlink(logpath);
	unlink(errpath);
	rmdir(dir);
	return T_DONE();
}
