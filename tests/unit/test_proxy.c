/*
 * test_proxy.c: unit tests for lib/proxy.c, in the clear over socketpairs. The pump runs in
 * a forked child between a "client" pair and a "session" pair; the test plays both outer
 * ends. Covered: bytes both ways and the end reason; a session that writes its last words
 * and closes at once (they still reach the client); a client that sends and closes (the
 * session gets the bytes, then EOF); bytes the stream had already buffered go first; and a
 * client that stops reading while it keeps writing a megabyte, which must not stop the other
 * direction (a blocking pump would deadlock here), with the byte counts checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy.h"
#include "buf.h"
#include "t.h"
#include "util.h"

struct rig {
	int client;		/* the test's end of the client connection */
	int session;		/* the test's end of the session socket */
	int stats;		/* read end: the child's proxy_stats */
	pid_t pid;
};

/* Start the pump; prefix is written into the client side first and read into the stream's
 * buffer (one line) before the pump starts, as a login process would have left it. */
static void rig_start(struct rig *r, const char *prefix)
{
	int c[2], s[2], p[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, c) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) < 0 ||
	    pipe(p) < 0)
		abort();
	if (prefix && write_all(c[0], prefix, strlen(prefix)) < 0)
		abort();
	r->pid = fork();
	if (r->pid == 0) {
		struct stream *st;
		struct proxy_stats ps;
		struct buf line;

		close(c[0]);
		close(s[0]);
		close(p[0]);
		signal(SIGPIPE, SIG_IGN);
		st = stream_new(c[1], 0, 5000);
		if (prefix) {	/* consume the first line: the rest stays in the stream's buffer */
			buf_init(&line, 1024);
			if (stream_readline(st, &line) <= 0)
				_exit(3);
			buf_free(&line);
		}
		proxy_run(st, s[1], &ps);
		(void)write_all(p[1], &ps, sizeof(ps));
		_exit(0);
	}
	close(c[1]);
	close(s[1]);
	close(p[1]);
	r->client = c[0];
	r->session = s[0];
	r->stats = p[0];
}

static struct proxy_stats rig_end(struct rig *r)
{
	struct proxy_stats ps;
	int status = 0;

	memset(&ps, 0xff, sizeof(ps));
	if (read_full(r->stats, &ps, sizeof(ps)) != (ssize_t)sizeof(ps))
		fprintf(stderr, "no stats from the pump\n");
	waitpid(r->pid, &status, 0);
	T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(r->stats);
	if (r->client >= 0)
		close(r->client);
	if (r->session >= 0)
		close(r->session);
	return ps;
}

/* Read exactly n bytes within 5 s. */
static bool read_exact(int fd, char *buf, size_t n)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	while (got < n) {
		ssize_t r;

		if (poll(&p, 1, 5000) <= 0)
			return false;
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static bool at_eof(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b;

	return poll(&p, 1, 5000) == 1 && read(fd, &b, 1) == 0;
}

static void test_both_ways_then_session_closes(void)
{
	struct rig r;
	struct proxy_stats ps;
	char buf[16];

	rig_start(&r, NULL);
	T_EQ_INT(write_all(r.client, "a NOOP\r\n", 8), 0);
	T_CHECK(read_exact(r.session, buf, 8) && memcmp(buf, "a NOOP\r\n", 8) == 0);
	T_EQ_INT(write_all(r.session, "a OK\r\n", 6), 0);
	T_CHECK(read_exact(r.client, buf, 6) && memcmp(buf, "a OK\r\n", 6) == 0);
	T_EQ_INT(write_all(r.session, "* BYE\r\n", 7), 0);
	close(r.session);
	r.session = -1;
	T_CHECK(read_exact(r.client, buf, 7) && memcmp(buf, "* BYE\r\n", 7) == 0);
	T_CHECK(at_eof(r.client));
	ps = rig_end(&r);
	T_EQ_INT(ps.end, PROXY_SESSION_CLOSED);
	T_EQ_INT(ps.client_bytes, 8);
	T_EQ_INT(ps.session_bytes, 13);
}

static void test_client_closes_after_sending(void)
{
	struct rig r;
	struct proxy_stats ps;
	char buf[32];

	rig_start(&r, NULL);
	T_EQ_INT(write_all(r.client, "b LOGOUT\r\n", 10), 0);
	close(r.client);
	r.client = -1;
	T_CHECK(read_exact(r.session, buf, 10) && memcmp(buf, "b LOGOUT\r\n", 10) == 0);
	T_CHECK(at_eof(r.session));
	ps = rig_end(&r);
	T_EQ_INT(ps.end, PROXY_CLIENT_CLOSED);
	T_EQ_INT(ps.client_bytes, 10);
}

static void test_buffered_input_goes_first(void)
{
	struct rig r;
	char buf[32];

	/* "x LOGIN" is taken by the "login"; "y NOOP" sits in the stream's buffer. */
	rig_start(&r, "x LOGIN u p\r\ny NOOP\r\n");
	T_CHECK(read_exact(r.session, buf, 8) && memcmp(buf, "y NOOP\r\n", 8) == 0);
	T_EQ_INT(write_all(r.client, "z NOOP\r\n", 8), 0);
	T_CHECK(read_exact(r.session, buf, 8) && memcmp(buf, "z NOOP\r\n", 8) == 0);
	close(r.session);
	r.session = -1;
	T_CHECK(at_eof(r.client));
	(void)rig_end(&r);
}

#define BIG (1 << 20)

/* Keep writing `out` to fd while reading from rfd (if >= 0) into `in`; within 10 s. */
static bool pump_test(int wfd, const char *out, size_t n, int rfd, char *in, size_t *got)
{
	size_t sent = 0;
	int64_t deadline = mono_ms() + 10000;

	fd_set_nonblock(wfd, 1);
	if (rfd >= 0)
		fd_set_nonblock(rfd, 1);
	while (sent < n || (rfd >= 0 && *got < BIG)) {
		struct pollfd p[2] = { { .fd = wfd, .events = sent < n ? POLLOUT : 0 },
				       { .fd = rfd, .events = POLLIN } };
		ssize_t r;

		if (mono_ms() > deadline || poll(p, rfd >= 0 ? 2 : 1, 1000) < 0)
			return false;
		if (sent < n && (r = write(wfd, out + sent, n - sent)) > 0)
			sent += (size_t)r;
		if (rfd >= 0 && (r = read(rfd, in + *got, BIG - *got)) > 0)
			*got += (size_t)r;
		else if (rfd >= 0 && r == 0)
			return false;
	}
	return true;
}

static void test_stalled_client_reader_does_not_block_the_other_way(void)
{
	char *up = xmalloc(BIG), *down = xmalloc(BIG), *in = xmalloc(BIG);
	size_t got_session = 0, got_client = 0;
	struct rig r;
	struct proxy_stats ps;
	pid_t writer;

	for (size_t i = 0; i < BIG; i++) {
		up[i] = (char)('a' + i % 26);
		down[i] = (char)('A' + i % 23);
	}
	rig_start(&r, NULL);
	/* The session side: write a megabyte towards the client, which does not read yet. */
	writer = fork();
	if (writer == 0) {
		size_t none = 0;

		_exit(pump_test(r.session, down, BIG, -1, NULL, &none) ? 0 : 1);
	}
	/* The client writes a megabyte and the session side reads it meanwhile. */
	T_CHECK(pump_test(r.client, up, BIG, r.session, in, &got_session));
	T_EQ_INT(got_session, BIG);
	T_CHECK(memcmp(in, up, BIG) == 0);
	/* Now the client reads what the session sent. */
	fd_set_nonblock(r.client, 0);
	T_CHECK(read_exact(r.client, in, BIG) && memcmp(in, down, BIG) == 0);
	got_client = BIG;
	waitpid(writer, NULL, 0);
	close(r.session);
	r.session = -1;
	T_CHECK(at_eof(r.client));
	ps = rig_end(&r);
	T_EQ_INT(ps.client_bytes, BIG);
	T_EQ_INT(ps.session_bytes, got_client);
	free(up);
	free(down);
	free(in);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	T_RUN(test_both_ways_then_session_closes);
	T_RUN(test_client_closes_after_sending);
	T_RUN(test_buffered_input_goes_first);
	T_RUN(test_stalled_client_reader_does_not_block_the_other_way);
	return T_DONE();
}
