/*
 * loadgen.c: the helpers the bench/ load generators share (see loadgen.h).
 */
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

double loadgen_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double loadgen_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long loadgen_num(const char *prog, const char *s, long min, long max, const char *what)
{
	long long v;

	if (str_to_ll(s, min, max, &v) < 0) {
		fprintf(stderr, "%s: %s must be %ld..%ld\n", prog, what, min, max);
		exit(2);
	}
	return (long)v;
}

void loadgen_user(const char *users, long n, char *out, size_t outlen)
{
	const char *hash = strchr(users, '#');

	if (hash == NULL) {
		if (str_copy(out, outlen, users) < 0)
			abort();	/* bounded by the argument parsers */
		return;
	}
	if (str_fmt(out, outlen, "%.*s%ld%s", (int)(hash - users), users, n, hash + 1) < 0)
		abort();
}

int loadgen_connect(const char *host, int port, int timeout_s, char *err, size_t errlen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = timeout_s };
	int one = 1, fd;

	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		(void)str_fmt(err, errlen, "bad address %s", host);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		(void)str_fmt(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		(void)str_fmt(err, errlen, "setsockopt: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		(void)str_fmt(err, errlen, "connect %s:%d: %s", host, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
