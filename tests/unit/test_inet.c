/*
 * test_inet.c: unit tests for lib/inet.c: expanding listener specifications ("PORT",
 * "ADDR:PORT", "[V6ADDR]:PORT") against inet_interfaces (all, loopback-only, literal lists),
 * rejecting bad specifications and overflowing outputs, formatting addresses for logs
 * (including IPv4-mapped IPv6), and inet_listen's socket (bound, listening, non-blocking,
 * close-on-exec, IPv6-only, errno and no descriptor leak on failure).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inet.h"
#include "t.h"
#include "util.h"

static const char *const all[] = { "all" };
static const char *const loopback[] = { "loopback-only" };

/* Expand spec and join the formatted results with spaces ("-1: <error>" on failure). */
static void expand(const char *spec, const char *const *ifaces, size_t nifaces, size_t maxout,
		   char *out, size_t outlen)
{
	struct inet_addr a[INET_MAX_ADDRS + 1];
	char err[256] = "", one[64];
	int n;

	if (maxout > ARRAY_LEN(a))
		maxout = ARRAY_LEN(a);
	n = inet_listen_expand(spec, ifaces, nifaces, a, maxout, err, sizeof(err));
	if (n < 0) {
		str_fmt(out, outlen, "-1: %s", err);
		return;
	}
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		size_t used = strlen(out);

		inet_format((struct sockaddr *)&a[i].ss, one, sizeof(one));
		str_fmt(out + used, outlen - used, "%s%s", i ? " " : "", one);
		/* The length must match the family. */
		if (a[i].ss.ss_family == AF_INET)
			T_EQ_INT(a[i].len, sizeof(struct sockaddr_in));
		else
			T_EQ_INT(a[i].len, sizeof(struct sockaddr_in6));
	}
}

static void expect(const char *spec, const char *const *ifaces, size_t nifaces, const char *want)
{
	char got[1024];

	expand(spec, ifaces, nifaces, INET_MAX_ADDRS, got, sizeof(got));
	T_EQ_STR(got, want);
}

/* spec must be rejected with an error mentioning `needle`. */
static void expect_error(const char *spec, const char *const *ifaces, size_t nifaces,
			 const char *needle)
{
	char got[1024];

	expand(spec, ifaces, nifaces, INET_MAX_ADDRS, got, sizeof(got));
	if (strncmp(got, "-1: ", 4) != 0 || strstr(got, needle) == NULL)
		fprintf(stderr, "spec '%s': got '%s', expected an error with '%s'\n", spec, got,
			needle);
	T_CHECK(strncmp(got, "-1: ", 4) == 0);
	T_CHECK(strstr(got, needle) != NULL);
}

static void test_bare_port(void)
{
	static const char *const list[] = { "192.0.2.1", "[2001:db8::1]", "2001:db8::2",
					    "::ffff:192.0.2.3" };
	static const char *const mixed[] = { "loopback-only", "192.0.2.1", "all" };

	expect("25", all, 1, "[::]:25 0.0.0.0:25");
	expect("25", loopback, 1, "127.0.0.1:25 [::1]:25");
	expect("587", list, ARRAY_LEN(list),
	       "192.0.2.1:587 [2001:db8::1]:587 [2001:db8::2]:587 192.0.2.3:587");
	expect("1", mixed, ARRAY_LEN(mixed), "127.0.0.1:1 [::1]:1 192.0.2.1:1 [::]:1 0.0.0.0:1");
	expect("65535", loopback, 1, "127.0.0.1:65535 [::1]:65535");
}

static void test_explicit_address(void)
{
	/* An explicit address ignores inet_interfaces, even an empty or broken one. */
	static const char *const broken[] = { "eth0" };

	expect("127.0.0.1:25", all, 1, "127.0.0.1:25");
	expect("127.0.0.1:25", NULL, 0, "127.0.0.1:25");
	expect("192.0.2.1:2525", broken, 1, "192.0.2.1:2525");
	expect("0.0.0.0:465", loopback, 1, "0.0.0.0:465");
	expect("[::1]:587", all, 1, "[::1]:587");
	expect("[::]:993", all, 1, "[::]:993");
	expect("[2001:db8::25]:25", all, 1, "[2001:db8::25]:25");
	expect("[::ffff:127.0.0.1]:143", all, 1, "127.0.0.1:143");
}

static void test_bad_specs(void)
{
	static const char *const none[] = { "" };
	static const char *const name[] = { "localhost" };
	static const char *const halfbracket[] = { "[::1" };
	static const char *const emptybracket[] = { "[]" };

	expect_error("0", all, 1, "bad port");
	expect_error("65536", all, 1, "bad port");
	expect_error("99999999999999999999999", all, 1, "bad port");
	expect_error("-25", all, 1, "bad port");
	expect_error("+25", all, 1, "bad port");
	expect_error(" 25", all, 1, "bad port");
	expect_error("25 ", all, 1, "bad port");
	expect_error("", all, 1, "bad port");
	expect_error("junk", all, 1, "bad port");
	expect_error("smtp", all, 1, "bad port");
	expect_error("25x", all, 1, "bad port");
	expect_error("1.2.3.4:", all, 1, "bad port");
	expect_error("1.2.3.4:0", all, 1, "bad port");
	expect_error("1.2.3.4:x", all, 1, "bad port");
	expect_error("[::1]:", all, 1, "bad port");
	expect_error("[::1]:65536", all, 1, "bad port");
	expect_error("[::1]25", all, 1, "[ADDR]:PORT");
	expect_error("[::1", all, 1, "[ADDR]:PORT");
	expect_error("[::1]", all, 1, "[ADDR]:PORT");
	expect_error("::1:25", all, 1, "[ADDR]:PORT");
	expect_error("::1", all, 1, "[ADDR]:PORT");
	expect_error("localhost:25", all, 1, "bad address 'localhost'");
	expect_error("mail.example.com:25", all, 1, "bad address 'mail.example.com'");
	expect_error("[localhost]:25", all, 1, "bad address 'localhost'");
	expect_error("[127.0.0.1]x:25", all, 1, "[ADDR]:PORT");
	expect_error("1.2.3.4.5:25", all, 1, "bad address");
	expect_error("256.1.1.1:25", all, 1, "bad address");
	expect_error("[fe80::1%lo]:25", all, 1, "bad address");
	/* An empty address is not "all interfaces": a templating slip must not open port 25
	 * to the world. */
	expect_error(":25", all, 1, "bad address");
	expect_error("[]:25", all, 1, "bad address");

	/* Bad inet_interfaces, seen through a bare port. */
	expect_error("25", NULL, 0, "inet_interfaces is empty");
	expect_error("25", none, 1, "bad address ''");
	expect_error("25", name, 1, "bad address 'localhost'");
	expect_error("25", halfbracket, 1, "bad address '[::1'");
	expect_error("25", emptybracket, 1, "bad address '[]'");
}

static void test_long_specs(void)
{
	char spec[300], iface[300];
	const char *ifaces[] = { iface };

	/* Longer than any address: rejected, never overflowing the parser's buffer. */
	memset(spec, '1', 200);
	str_copy(spec + 200, sizeof(spec) - 200, ":25");
	expect_error(spec, all, 1, "bad listener");
	spec[0] = '[';
	str_copy(spec + 199, sizeof(spec) - 199, "]:25");
	expect_error(spec, all, 1, "[ADDR]:PORT");
	iface[0] = '[';
	memset(iface + 1, 'a', 150);
	str_copy(iface + 151, sizeof(iface) - 151, "]");
	expect_error("25", ifaces, 1, "bad address");
	/* The longest IPv6 literal fits. */
	expect("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", all, 1,
	       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

static void test_maxout(void)
{
	static const char *const many[] = { "all", "loopback-only", "192.0.2.1" };
	const char *sixteen[INET_MAX_ADDRS + 1];
	char got[2048];

	expand("25", all, 1, 1, got, sizeof(got));
	T_EQ_STR(got, "-1: too many listen addresses");
	expand("25", all, 1, 2, got, sizeof(got));
	T_EQ_STR(got, "[::]:25 0.0.0.0:25");
	expand("25", many, ARRAY_LEN(many), 4, got, sizeof(got));
	T_EQ_STR(got, "-1: too many listen addresses");
	expand("127.0.0.1:25", all, 1, 0, got, sizeof(got));
	T_EQ_STR(got, "-1: too many listen addresses");
	expand("[::1]:25", all, 1, 1, got, sizeof(got));
	T_EQ_STR(got, "[::1]:25");

	for (size_t i = 0; i < ARRAY_LEN(sixteen); i++)
		sixteen[i] = "127.0.0.1";
	expand("25", sixteen, INET_MAX_ADDRS, INET_MAX_ADDRS, got, sizeof(got));
	T_CHECK(strncmp(got, "127.0.0.1:25 ", 13) == 0);
	expand("25", sixteen, INET_MAX_ADDRS + 1, INET_MAX_ADDRS, got, sizeof(got));
	T_EQ_STR(got, "-1: too many listen addresses");
}

static void test_error_buffer_bounded(void)
{
	struct inet_addr a[2];
	char err[8];

	memset(err, 'z', sizeof(err));
	T_EQ_INT(inet_listen_expand("junk", all, 1, a, 2, err, sizeof(err)), -1);
	T_EQ_INT(err[sizeof(err) - 1], '\0');
	T_EQ_STR(err, "bad por");
}

static void v4(struct sockaddr_in *s, const char *addr, int port)
{
	memset(s, 0, sizeof(*s));
	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	T_EQ_INT(inet_pton(AF_INET, addr, &s->sin_addr), 1);
}

static void v6(struct sockaddr_in6 *s, const char *addr, int port)
{
	memset(s, 0, sizeof(*s));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons((uint16_t)port);
	T_EQ_INT(inet_pton(AF_INET6, addr, &s->sin6_addr), 1);
}

static void test_format(void)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct sockaddr_storage other;
	char out[128], small[8];

	v4(&s4, "192.0.2.7", 25);
	inet_format((struct sockaddr *)&s4, out, sizeof(out));
	T_EQ_STR(out, "192.0.2.7:25");
	inet_format_host((struct sockaddr *)&s4, out, sizeof(out));
	T_EQ_STR(out, "192.0.2.7");

	v6(&s6, "::1", 587);
	inet_format((struct sockaddr *)&s6, out, sizeof(out));
	T_EQ_STR(out, "[::1]:587");
	inet_format_host((struct sockaddr *)&s6, out, sizeof(out));
	T_EQ_STR(out, "::1");

	v6(&s6, "2001:DB8:0:0:0:0:0:1", 65535);
	inet_format((struct sockaddr *)&s6, out, sizeof(out));
	T_EQ_STR(out, "[2001:db8::1]:65535");

	/* IPv4-mapped IPv6 (a dual-stack socket's IPv4 peer) is shown as plain IPv4, so logs
	 * and fail2ban see one form per client. */
	v6(&s6, "::ffff:198.51.100.4", 110);
	inet_format((struct sockaddr *)&s6, out, sizeof(out));
	T_EQ_STR(out, "198.51.100.4:110");
	inet_format_host((struct sockaddr *)&s6, out, sizeof(out));
	T_EQ_STR(out, "198.51.100.4");
	/* IPv4-compatible (deprecated, not mapped) stays IPv6, in the dotted form of inet_ntop. */
	v6(&s6, "::198.51.100.4", 110);
	inet_format_host((struct sockaddr *)&s6, out, sizeof(out));
	T_EQ_STR(out, "::198.51.100.4");

	memset(&other, 0, sizeof(other));
	other.ss_family = AF_UNIX;
	inet_format_host((struct sockaddr *)&other, out, sizeof(out));
	T_EQ_STR(out, "unknown");
	inet_format((struct sockaddr *)&other, out, sizeof(out));
	T_EQ_STR(out, "unknown:0");

	/* Truncated, never overflowing, always terminated. */
	memset(small, 'z', sizeof(small));
	v4(&s4, "192.0.2.77", 2525);
	inet_format((struct sockaddr *)&s4, small, sizeof(small));
	T_EQ_STR(small, "192.0.2");
	memset(small, 'z', sizeof(small));
	inet_format_host((struct sockaddr *)&s4, small, sizeof(small));
	T_EQ_STR(small, "192.0.2");
}

static int lowest_free_fd(void)
{
	int fd = dup(0);

	if (fd >= 0)
		close(fd);
	return fd;
}

static void test_listen_v4(void)
{
	struct inet_addr a[1];
	struct sockaddr_in got;
	socklen_t len = sizeof(got);
	char err[128];
	int fd, cli, conn, flags;

	T_EQ_INT(inet_listen_expand("127.0.0.1:1", all, 1, a, 1, err, sizeof(err)), 1);
	((struct sockaddr_in *)&a[0].ss)->sin_port = 0;	/* any free port */
	fd = inet_listen(&a[0], 16);
	T_CHECK(fd >= 0);
	if (fd < 0) {
		perror("inet_listen");
		return;
	}
	T_EQ_INT(getsockname(fd, (struct sockaddr *)&got, &len), 0);
	T_EQ_INT(got.sin_family, AF_INET);
	T_CHECK(ntohs(got.sin_port) != 0);
	T_EQ_INT(ntohl(got.sin_addr.s_addr), INADDR_LOOPBACK);
	flags = fcntl(fd, F_GETFL);
	T_CHECK(flags >= 0 && (flags & O_NONBLOCK));
	flags = fcntl(fd, F_GETFD);
	T_CHECK(flags >= 0 && (flags & FD_CLOEXEC));
	{
		int v = 0;
		socklen_t vl = sizeof(v);

		T_EQ_INT(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl), 0);
		T_EQ_INT(v, 1);
		vl = sizeof(v);
		T_EQ_INT(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl), 0);
		T_EQ_INT(v, SOCK_STREAM);
	}

	/* Non-blocking: accept with nobody waiting fails at once. */
	T_EQ_INT(accept(fd, NULL, NULL), -1);
	T_CHECK(errno == EAGAIN || errno == EWOULDBLOCK);

	/* A client can connect and be accepted. */
	cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	T_CHECK(cli >= 0);
	T_EQ_INT(connect(cli, (struct sockaddr *)&got, sizeof(got)), 0);
	conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	T_CHECK(conn >= 0);
	T_EQ_INT(write_all(cli, "hi", 2), 0);
	{
		char buf[2];

		T_EQ_INT(read_full(conn, buf, 2), 2);
		T_CHECK(memcmp(buf, "hi", 2) == 0);
	}
	close(conn);
	close(cli);

	/* The port is taken now: a second listener fails with errno set and leaks nothing. */
	{
		struct inet_addr b = a[0];
		int before = lowest_free_fd();

		((struct sockaddr_in *)&b.ss)->sin_port = got.sin_port;
		errno = 0;
		T_EQ_INT(inet_listen(&b, 16), -1);
		T_EQ_INT(errno, EADDRINUSE);
		T_EQ_INT(lowest_free_fd(), before);
	}
	close(fd);
}

static void test_listen_v6(void)
{
	struct inet_addr a[1];
	struct sockaddr_in6 got;
	socklen_t len = sizeof(got);
	char err[128];
	int fd, v = 0;
	socklen_t vl = sizeof(v);

	T_EQ_INT(inet_listen_expand("[::1]:1", all, 1, a, 1, err, sizeof(err)), 1);
	((struct sockaddr_in6 *)&a[0].ss)->sin6_port = 0;
	fd = inet_listen(&a[0], 16);
	if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
		fprintf(stderr, "test_listen_v6: no IPv6 loopback here (%s), skipped\n",
			strerror(errno));
		return;
	}
	T_CHECK(fd >= 0);
	if (fd < 0)
		return;
	T_EQ_INT(getsockname(fd, (struct sockaddr *)&got, &len), 0);
	T_EQ_INT(got.sin6_family, AF_INET6);
	T_CHECK(ntohs(got.sin6_port) != 0);
	/* "all" binds :: and 0.0.0.0 on the same port, which only works if :: is IPv6-only. */
	T_EQ_INT(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl), 0);
	T_EQ_INT(v, 1);
	T_CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
	T_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

/* An address this host does not have cannot be bound. */
static void test_listen_foreign_address(void)
{
	struct inet_addr a[1];
	char err[128];
	int before = lowest_free_fd();

	T_EQ_INT(inet_listen_expand("192.0.2.1:2525", all, 1, a, 1, err, sizeof(err)), 1);
	errno = 0;
	T_EQ_INT(inet_listen(&a[0], 16), -1);
	T_EQ_INT(errno, EADDRNOTAVAIL);
	T_EQ_INT(lowest_free_fd(), before);
}

int main(void)
{
	T_RUN(test_bare_port);
	T_RUN(test_explicit_address);
	T_RUN(test_bad_specs);
	T_RUN(test_long_specs);
	T_RUN(test_maxout);
	T_RUN(test_error_buffer_bounded);
	T_RUN(test_format);
	T_RUN(test_listen_v4);
	T_RUN(test_listen_v6);
	T_RUN(test_listen_foreign_address);
	return T_DONE();
}
