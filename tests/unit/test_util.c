/*
 * test_util.c: unit tests for lib/util.c: allocation wrappers, bounded string copies and
 * formatting, strict decimal parsing, whole-buffer I/O over pipes, read_file and its size
 * limit, descriptor flags and the clocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t.h"
#include "util.h"

static char dir[64];

static void test_alloc(void)
{
	char *p = xmalloc(0), *s;
	int *z = xcalloc(16, sizeof(int)), *r;
	int i, zero = 1;

	T_CHECK(p != NULL);
	free(p);
	for (i = 0; i < 16; i++)
		if (z[i] != 0)
			zero = 0;
	T_CHECK(zero);
	r = xreallocarray(z, 1000, sizeof(int));
	T_CHECK(r != NULL && r[15] == 0);
	r[999] = 7;
	free(r);
	p = xcalloc(0, 0);
	T_CHECK(p != NULL);
	free(p);

	s = xstrdup("hello");
	T_EQ_STR(s, "hello");
	free(s);
	s = xstrndup("hello", 3);
	T_EQ_STR(s, "hel");
	free(s);
	s = xstrndup("hi", 100);	/* n past the end: reads only up to the NUL */
	T_EQ_STR(s, "hi");
	free(s);
	s = xstrndup("", 0);
	T_EQ_STR(s, "");
	free(s);
}

static void test_str_copy(void)
{
	char out[6];

	T_EQ_INT(str_copy(out, sizeof(out), "abc"), 0);
	T_EQ_STR(out, "abc");
	T_EQ_INT(str_copy(out, sizeof(out), "abcde"), 0);	/* exactly fits */
	T_EQ_STR(out, "abcde");
	T_EQ_INT(str_copy(out, sizeof(out), "abcdef"), -1);
	T_EQ_STR(out, "abcde");					/* truncated, terminated */
	T_EQ_INT(str_copy(out, 1, "x"), -1);
	T_EQ_STR(out, "");
	out[0] = 'q';
	T_EQ_INT(str_copy(out, 0, "x"), -1);
	T_EQ_INT(out[0], 'q');					/* untouched */
	T_EQ_INT(str_copy(out, sizeof(out), ""), 0);
	T_EQ_STR(out, "");
}

static void test_str_fmt(void)
{
	char out[8];

	T_EQ_INT(str_fmt(out, sizeof(out), "%d-%s", 12, "ab"), 5);
	T_EQ_STR(out, "12-ab");
	T_EQ_INT(str_fmt(out, sizeof(out), "%s", "1234567"), 7);
	T_EQ_INT(str_fmt(out, sizeof(out), "%s", "12345678"), -1);
	T_EQ_STR(out, "1234567");				/* truncated, terminated */
	T_EQ_INT(str_fmt(out, sizeof(out), "%s", ""), 0);
	T_EQ_STR(out, "");
}

static void test_str_to_ll(void)
{
	long long v = 99;

	T_EQ_INT(str_to_ll("0", 0, 10, &v), 0);
	T_EQ_INT(v, 0);
	T_EQ_INT(str_to_ll("10", 0, 10, &v), 0);
	T_EQ_INT(v, 10);
	T_EQ_INT(str_to_ll("-10", -10, 10, &v), 0);
	T_EQ_INT(v, -10);
	T_EQ_INT(str_to_ll("007", 0, 10, &v), 0);
	T_EQ_INT(v, 7);
	T_EQ_INT(str_to_ll("9223372036854775807", LLONG_MIN, LLONG_MAX, &v), 0);
	T_EQ_INT(v, LLONG_MAX);
	T_EQ_INT(str_to_ll("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v), 0);
	T_EQ_INT(v, LLONG_MIN);

	v = 99;
	T_EQ_INT(str_to_ll("11", 0, 10, &v), -1);		/* range */
	T_EQ_INT(str_to_ll("-11", -10, 10, &v), -1);
	T_EQ_INT(str_to_ll("9223372036854775808", LLONG_MIN, LLONG_MAX, &v), -1);
	T_EQ_INT(str_to_ll("-9223372036854775809", LLONG_MIN, LLONG_MAX, &v), -1);
	T_EQ_INT(str_to_ll("", 0, 10, &v), -1);		/* junk */
	T_EQ_INT(str_to_ll(NULL, 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("5x", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("5 ", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll(" 5", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("\t5", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("+5", 0, 10, &v), -1);
	T_EQ_INT(str_to_ll("-", -10, 10, &v), -1);
	T_EQ_INT(str_to_ll("- 5", -10, 10, &v), -1);
	T_EQ_INT(str_to_ll("0x5", 0, 10, &v), -1);
	T_EQ_INT(v, 99);					/* untouched on failure */
}

static void test_pipe_io(void)
{
	int fds[2];
	char big[200000], got[200001];
	size_t i;
	ssize_t n;
	pid_t pid;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	T_EQ_INT(pipe(fds), 0);
	/* More than a pipe holds: a writer child and short reads in the parent. */
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		_exit(write_all(fds[1], big, sizeof(big)) == 0 ? 0 : 1);
	}
	close(fds[1]);
	n = read_full(fds[0], got, sizeof(got));	/* asks for one byte more: EOF first */
	T_EQ_INT(n, sizeof(big));
	T_CHECK(memcmp(got, big, sizeof(big)) == 0);
	T_EQ_INT(read_full(fds[0], got, 10), 0);
	close(fds[0]);
	T_CHECK(pid > 0 && waitpid(pid, NULL, 0) == pid);

	T_EQ_INT(read_full(-1, got, 1), -1);
	T_EQ_INT(write_all(-1, "x", 1), -1);
	T_EQ_INT(write_all(-1, "x", 0), 0);
}

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	T_CHECK(fd >= 0 && write_all(fd, data, len) == 0);
	close(fd);
}

static void test_read_file(void)
{
	char path[128], *out = NULL;
	size_t len = 0;

	str_fmt(path, sizeof(path), "%s/f", dir);
	write_file(path, "a\0bc", 4);
	T_EQ_INT(read_file(path, 4, &out, &len), 0);		/* exactly max */
	T_EQ_INT(len, 4);
	T_CHECK(out && memcmp(out, "a\0bc", 5) == 0);		/* NUL-terminated too */
	free(out);
	out = NULL;
	T_EQ_INT(read_file(path, 100, &out, NULL), 0);
	free(out);

	out = NULL;
	errno = 0;
	T_EQ_INT(read_file(path, 3, &out, &len), -1);
	T_EQ_INT(errno, EFBIG);
	T_CHECK(out == NULL);

	write_file(path, "", 0);
	T_EQ_INT(read_file(path, 0, &out, &len), 0);
	T_EQ_INT(len, 0);
	T_EQ_STR(out, "");
	free(out);

	str_fmt(path, sizeof(path), "%s/missing", dir);
	errno = 0;
	T_EQ_INT(read_file(path, 10, &out, &len), -1);
	T_EQ_INT(errno, ENOENT);
	errno = 0;
	T_EQ_INT(read_file(dir, 10000, &out, &len), -1);
	T_EQ_INT(errno, EISDIR);
	/* st_size is 0 for /proc files: the limit must still hold while reading. */
	errno = 0;
	T_EQ_INT(read_file("/proc/self/status", 10, &out, &len), -1);
	T_EQ_INT(errno, EFBIG);
	str_fmt(path, sizeof(path), "%s/f", dir);
	unlink(path);
}

static void test_fd_flags(void)
{
	int fds[2];

	T_EQ_INT(pipe(fds), 0);
	T_EQ_INT(fd_set_nonblock(fds[0], 1), 0);
	T_CHECK(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
	T_EQ_INT(fd_set_nonblock(fds[0], 0), 0);
	T_CHECK(!(fcntl(fds[0], F_GETFL) & O_NONBLOCK));
	T_EQ_INT(fd_set_cloexec(fds[1], 1), 0);
	T_CHECK(fcntl(fds[1], F_GETFD) & FD_CLOEXEC);
	T_EQ_INT(fd_set_cloexec(fds[1], 0), 0);
	T_CHECK(!(fcntl(fds[1], F_GETFD) & FD_CLOEXEC));
	close(fds[0]);
	close(fds[1]);
	T_EQ_INT(fd_set_nonblock(fds[0], 1), -1);
	T_EQ_INT(fd_set_cloexec(fds[0], 1), -1);
}

static void test_clocks(void)
{
	int64_t a = mono_ms(), b, w = wall_ms();

	usleep(20000);
	b = mono_ms();
	T_CHECK(b - a >= 19 && b - a < 5000);
	T_CHECK(w > 1600000000000LL);		/* after 2020 */
	T_CHECK(w < 4102444800000LL);		/* before 2100 */
}

int main(void)
{
	str_copy(dir, sizeof(dir), "/tmp/test_util.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	T_RUN(test_alloc);
	T_RUN(test_str_copy);
	T_RUN(test_str_fmt);
	T_RUN(test_str_to_ll);
	T_RUN(test_pipe_io);
	T_RUN(test_read_file);
	T_RUN(test_fd_flags);
	T_RUN(test_clocks);
	rmdir(dir);
	return T_DONE();
}
