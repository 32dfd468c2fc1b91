/*
 * test_stream.c: unit tests for lib/stream.c in the clear: line framing (CRLF, bare LF,
 * overlong lines, partial last line), timeouts that hold against a dribbling peer, buffered
 * reads, buffered writes, and writes to a vanished peer (EPIPE, not SIGPIPE: this program
 * deliberately keeps SIGPIPE's default action). TLS is covered by test_tls.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "stream.h"
#include "util.h"
#include "t.h"

/* A socketpair: sv[0] for the stream under test, sv[1] for the test's peer. */
static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		exit(2);
	}
}

static void put(int fd, const char *s)
{
	if (write_all(fd, s, strlen(s)) < 0) {
		perror("write");
		exit(2);
	}
}

/* Run fn(fd) in a child process; the child exits 0 unless fn says otherwise. */
static pid_t spawn(int (*fn)(int fd), int fd, int close_in_child)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		close(close_in_child);
		_exit(fn(fd));
	}
	return pid;
}

static int child_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_readline_terminators(void)
{
	struct buf line;
	struct stream *s;
	int sv[2];

	pair(sv);
	s = stream_new(sv[0], 512, 2000);
	T_CHECK(s != NULL);
	buf_init(&line, 1024);
	put(sv[1], "HELO a\r\nNOOP\n\nQUIT\r\nbare\rCR\r\n");
	shutdown(sv[1], SHUT_WR);
	T_EQ_INT(stream_readline(s, &line), 8);
	T_EQ_STR(buf_cstr(&line), "HELO a\r\n");
	T_EQ_INT(stream_readline(s, &line), 5);
	T_EQ_STR(buf_cstr(&line), "NOOP\n");
	T_EQ_INT(stream_readline(s, &line), 1);
	T_EQ_STR(buf_cstr(&line), "\n");
	T_EQ_INT(stream_readline(s, &line), 6);
	T_EQ_STR(buf_cstr(&line), "QUIT\r\n");
	T_EQ_INT(stream_readline(s, &line), 9);	/* a bare CR is not a terminator */
	T_EQ_STR(buf_cstr(&line), "bare\rCR\r\n");
	T_EQ_INT(stream_readline(s, &line), STREAM_EOF);
	T_EQ_INT(line.len, 0);
	T_EQ_INT(stream_readline(s, &line), STREAM_EOF);
	buf_free(&line);
	stream_free(s);
	close(sv[1]);
}

static void test_readline_too_long(void)
{
	struct buf line;
	struct stream *s;
	int sv[2];

	pair(sv);
	s = stream_new(sv[0], 16, 2000);
	buf_init(&line, 1024);
	/* max_line counts the terminator: 16 bytes pass, 17 do not. */
	put(sv[1], "0123456789abcd\r\n" "0123456789abcde\r\n" "OK\r\n"
		   "0123456789abcdef0123456789\n" "next\n");
	T_EQ_INT(stream_readline(s, &line), 16);
	T_EQ_INT(stream_readline(s, &line), STREAM_TOOLONG);
	T_EQ_INT(line.len, 0);
	T_EQ_INT(stream_readline(s, &line), 4);
	T_EQ_STR(buf_cstr(&line), "OK\r\n");
	T_EQ_INT(stream_readline(s, &line), STREAM_TOOLONG);
	T_EQ_INT(stream_readline(s, &line), 5);
	T_EQ_STR(buf_cstr(&line), "next\n");
	/* An overlong line cut off by EOF is still TOOLONG, then EOF. */
	put(sv[1], "0123456789abcdef0123456789");
	shutdown(sv[1], SHUT_WR);
	T_EQ_INT(stream_readline(s, &line), STREAM_TOOLONG);
	T_EQ_INT(stream_readline(s, &line), STREAM_EOF);
	buf_free(&line);
	stream_free(s);
	close(sv[1]);
}

/* The line buffer's own limit is enforced the same way as max_line. */
static void test_readline_buf_limit(void)
{
	struct buf line;
	struct stream *s;
	int sv[2];

	pair(sv);
	s = stream_new(sv[0], 1000, 2000);
	buf_init(&line, 8);
	put(sv[1], "0123456789\r\nabc\r\n");
	T_EQ_INT(stream_readline(s, &line), STREAM_TOOLONG);
	T_EQ_INT(stream_readline(s, &line), 5);
	T_EQ_STR(buf_cstr(&line), "abc\r\n");
	buf_free(&line);
	stream_free(s);
	close(sv[1]);
}

/* 100 KB without a newline, spanning many buffer fills, then a good line. */
static int send_huge_line(int fd)
{
	char chunk[4096];

	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 25; i++)
		if (write_all(fd, chunk, sizeof(chunk)) < 0)
			return 1;
	return write_all(fd, "\r\nRSET\r\n", 8) < 0 ? 1 : 0;
}

static void test_readline_huge_line(void)
{
	struct buf line;
	struct stream *s;
	int sv[2];
	pid_t child;

	pair(sv);
	child = spawn(send_huge_line, sv[1], sv[0]);
	close(sv[1]);
	s = stream_new(sv[0], 1000, 5000);
	buf_init(&line, 4096);
	T_EQ_INT(stream_readline(s, &line), STREAM_TOOLONG);
	T_EQ_INT(stream_readline(s, &line), 6);
	T_EQ_STR(buf_cstr(&line), "RSET\r\n");
	T_EQ_INT(stream_readline(s, &line), STREAM_EOF);
	T_CHECK(line.cap <= 4096);	/* the skipped bytes were never buffered */
	T_EQ_INT(child_status(child), 0);
	buf_free(&line);
	stream_free(s);
}

static void test_partial_line_at_eof(void)
{
	struct buf line;
	struct stream *s;
	int sv[2];

	pair(sv);
	s = stream_new(sv[0], 512, 2000);
	buf_init(&line, 1024);
	put(sv[1], "one\r\npartial");
	close(sv[1]);
	T_EQ_INT(stream_readline(s, &line), 5);
	T_EQ_INT(stream_readline(s, &line), 7);
	T_EQ_STR(buf_cstr(&line), "partial");
	T_EQ_INT(stream_readline(s, &line), STREAM_EOF);
	buf_free(&line);
	stream_free(s);
}

static void test_timeout_silent_peer(void)
{
	struct buf line;
	struct stream *s;
	char c;
	int sv[2];
	int64_t start, took;

	pair(sv);
	s = stream_new(sv[0], 512, 200);
	buf_init(&line, 1024);
	start = mono_ms();
	T_EQ_INT(stream_readline(s, &line), STREAM_TIMEOUT);
	took = mono_ms() - start;
	T_CHECK(took >= 195 && took < 700);
	start = mono_ms();
	T_EQ_INT(stream_read(s, &c, 1), STREAM_TIMEOUT);
	took = mono_ms() - start;
	T_CHECK(took >= 195 && took < 700);
	/* Still usable once the peer talks. */
	put(sv[1], "late\r\n");
	T_EQ_INT(stream_readline(s, &line), 6);
	buf_free(&line);
	stream_free(s);
	close(sv[1]);
}

/* One byte every 50 ms, never a newline: the deadline covers the whole line. */
static int dribble(int fd)
{
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < 40; i++) {
		if (write(fd, "x", 1) != 1)
			return 0;	/* the reader gave up: expected */
		usleep(50000);
	}
	return 0;
}

static void test_timeout_dribbling_peer(void)
{
	struct buf line;
	struct stream *s;
	int sv[2];
	int64_t start, took;
	pid_t child;

	pair(sv);
	child = spawn(dribble, sv[1], sv[0]);
	close(sv[1]);
	s = stream_new(sv[0], 512, 300);
	buf_init(&line, 1024);
	start = mono_ms();
	T_EQ_INT(stream_readline(s, &line), STREAM_TIMEOUT);
	took = mono_ms() - start;
	T_CHECK(took >= 295 && took < 800);
	buf_free(&line);
	stream_free(s);
	T_EQ_INT(child_status(child), 0);
}

static void test_read_buffered_first(void)
{
	struct buf line;
	struct stream *s;
	char data[64];
	int sv[2];

	pair(sv);
	s = stream_new(sv[0], 512, 2000);
	buf_init(&line, 1024);
	put(sv[1], "BDAT 7\r\nrawdata");
	T_EQ_INT(stream_readline(s, &line), 8);
	T_EQ_INT(stream_pending(s), 7);
	T_EQ_INT(stream_read(s, data, 3), 3);
	T_CHECK(memcmp(data, "raw", 3) == 0);
	T_EQ_INT(stream_pending(s), 4);
	T_EQ_INT(stream_read(s, data, sizeof(data)), 4);	/* only what is buffered */
	T_CHECK(memcmp(data, "data", 4) == 0);
	T_EQ_INT(stream_pending(s), 0);
	close(sv[1]);
	T_EQ_INT(stream_read(s, data, sizeof(data)), STREAM_EOF);
	buf_free(&line);
	stream_free(s);
}

struct tally {
	unsigned long total, sum;
};

static void tally_add(struct tally *t, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		t->sum = t->sum * 31 + (unsigned char)p[i];
	t->total += n;
}

/* The child reads everything and answers with the byte count and a checksum. */
static int count_bytes(int fd)
{
	char chunk[8192], reply[64];
	struct tally t = { 0, 0 };
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		tally_add(&t, chunk, (size_t)n);
	if (str_fmt(reply, sizeof(reply), "%lu %lu\n", t.total, t.sum) < 0)
		return 1;
	return write_all(fd, reply, strlen(reply)) < 0 ? 1 : 0;
}

static void test_writes(void)
{
	struct stream *s;
	char *big = xmalloc(1 << 20), peek[8], reply[64], expect[64];
	struct tally t = { 0, 0 };
	int sv[2];
	pid_t child;
	ssize_t n;

	pair(sv);
	s = stream_new(sv[0], 512, 5000);
	/* Nothing leaves before the flush. */
	T_EQ_INT(stream_puts(s, "250-hello\r\n"), 0);
	T_EQ_INT(recv(sv[1], peek, sizeof(peek), MSG_DONTWAIT), -1);
	T_EQ_INT(errno, EAGAIN);
	T_EQ_INT(stream_flush(s), 0);
	T_EQ_INT(read(sv[1], peek, 4), 4);
	T_CHECK(memcmp(peek, "250-", 4) == 0);
	T_EQ_INT(read(sv[1], reply, sizeof(reply)), 7);

	/* 1 MiB in assorted pieces, more than the socket holds, into a child that counts. */
	child = spawn(count_bytes, sv[1], sv[0]);
	close(sv[1]);
	for (size_t i = 0; i < (1 << 20); i++)
		big[i] = (char)('a' + i % 23);
	T_EQ_INT(stream_printf(s, "%d %s\r\n", 250, "ok"), 0);
	T_EQ_INT(stream_write(s, big, 100), 0);
	T_EQ_INT(stream_write(s, big, 1 << 20), 0);
	big[20000] = '\0';
	T_EQ_INT(stream_printf(s, "<%s>", big), 0);	/* longer than the buffer */
	T_EQ_INT(stream_flush(s), 0);
	shutdown(sv[0], SHUT_WR);
	n = read(sv[0], reply, sizeof(reply) - 1);	/* the stream made the fd non-blocking */
	while (n < 0 && errno == EAGAIN) {
		usleep(10000);
		n = read(sv[0], reply, sizeof(reply) - 1);
	}
	T_CHECK(n > 0);
	reply[n > 0 ? n : 0] = '\0';
	/* The same tally over what we sent. */
	tally_add(&t, "250 ok\r\n", 8);
	tally_add(&t, big, 100);
	big[20000] = (char)('a' + 20000 % 23);
	tally_add(&t, big, 1 << 20);
	tally_add(&t, "<", 1);
	tally_add(&t, big, 20000);
	tally_add(&t, ">", 1);
	T_CHECK(str_fmt(expect, sizeof(expect), "%lu %lu\n", t.total, t.sum) > 0);
	T_EQ_STR(reply, expect);
	T_EQ_INT(child_status(child), 0);
	free(big);
	stream_free(s);
}

/* A peer that never reads: the write times out instead of blocking. */
static void test_write_timeout(void)
{
	struct stream *s;
	char *junk = xcalloc(1, 1 << 20);
	int sv[2], rc = 0;
	int64_t start, took;

	pair(sv);
	s = stream_new(sv[0], 512, 200);
	start = mono_ms();
	for (int i = 0; i < 64 && rc == 0; i++)
		rc = stream_write(s, junk, 1 << 20);
	took = mono_ms() - start;
	T_EQ_INT(rc, STREAM_TIMEOUT);
	T_CHECK(took >= 195 && took < 700);
	free(junk);
	stream_free(s);
	close(sv[1]);
}

/* The peer is gone: EPIPE, and the process survives (SIGPIPE is at its default here). */
static void test_write_to_closed_peer(void)
{
	struct stream *s;
	int sv[2];

	pair(sv);
	s = stream_new(sv[0], 512, 1000);
	close(sv[1]);
	T_EQ_INT(stream_puts(s, "221 bye\r\n"), 0);
	errno = 0;
	T_EQ_INT(stream_flush(s), STREAM_ERR);
	T_EQ_INT(errno, EPIPE);
	stream_free(s);
}

/* Pipes are not sockets: send() fails with ENOTSOCK and the stream falls back to write(). */
static void test_pipe(void)
{
	struct stream *w, *r;
	struct buf line;
	int p[2];

	T_EQ_INT(pipe(p), 0);
	w = stream_new(p[1], 512, 1000);
	r = stream_new(p[0], 512, 1000);
	buf_init(&line, 512);
	T_EQ_INT(stream_puts(w, "through a pipe\n"), 0);
	T_EQ_INT(stream_flush(w), 0);
	stream_free(w);
	T_EQ_INT(stream_readline(r, &line), 15);
	T_EQ_INT(stream_readline(r, &line), STREAM_EOF);
	T_CHECK(stream_ssl(r) == NULL);
	T_EQ_INT(stream_fd(r), p[0]);
	buf_free(&line);
	stream_free(r);
	T_CHECK(stream_new(-1, 512, 1000) == NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_DFL);	/* a stray SIGPIPE must kill the test, not hide */
	alarm(60);
	T_RUN(test_readline_terminators);
	T_RUN(test_readline_too_long);
	T_RUN(test_readline_buf_limit);
	T_RUN(test_readline_huge_line);
	T_RUN(test_partial_line_at_eof);
	T_RUN(test_timeout_silent_peer);
	T_RUN(test_timeout_dribbling_peer);
	T_RUN(test_read_buffered_first);
	T_RUN(test_writes);
	T_RUN(test_write_timeout);
	T_RUN(test_write_to_closed_peer);
	T_RUN(test_pipe);
	return T_DONE();
}
