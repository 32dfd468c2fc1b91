/*
 * inet.c: listener specifications and socket addresses (see inet.h).
 */
#include "inet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Parse a literal IPv4 or IPv6 address (no brackets) with a port. */
static int addr_from_literal(const char *host, int port, struct inet_addr *out)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		out->len = sizeof(*in4);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*in6);
		return 0;
	}
	return -1;
}

static int add_addr(const char *host, int port, struct inet_addr *out, size_t *n, size_t max,
		    char *err, size_t errlen)
{
	if (*n >= max) {
		str_fmt(err, errlen, "too many listen addresses");
		return -1;
	}
	if (addr_from_literal(host, port, &out[*n]) < 0) {
		str_fmt(err, errlen, "bad address '%s' (a numeric IPv4 or IPv6 address)", host);
		return -1;
	}
	(*n)++;
	return 0;
}

static int expand_interfaces(int port, const char *const *ifaces, size_t nifaces,
			     struct inet_addr *out, size_t max, char *err, size_t errlen)
{
	size_t n = 0;

	for (size_t i = 0; i < nifaces; i++) {
		const char *h = ifaces[i];
		char tmp[64];
		size_t l = strlen(h);

		if (strcmp(h, "all") == 0) {
			if (add_addr("::", port, out, &n, max, err, errlen) < 0 ||
			    add_addr("0.0.0.0", port, out, &n, max, err, errlen) < 0)
				return -1;
		} else if (strcmp(h, "loopback-only") == 0) {
			if (add_addr("127.0.0.1", port, out, &n, max, err, errlen) < 0 ||
			    add_addr("::1", port, out, &n, max, err, errlen) < 0)
				return -1;
		} else if (h[0] == '[' && l > 2 && h[l - 1] == ']' && l - 2 < sizeof(tmp)) {
			memcpy(tmp, h + 1, l - 2);
			tmp[l - 2] = '\0';
			if (add_addr(tmp, port, out, &n, max, err, errlen) < 0)
				return -1;
		} else if (add_addr(h, port, out, &n, max, err, errlen) < 0) {
			return -1;
		}
	}
	if (n == 0) {
		str_fmt(err, errlen, "inet_interfaces is empty");
		return -1;
	}
	return (int)n;
}

int inet_listen_expand(const char *spec, const char *const *interfaces, size_t nifaces,
		       struct inet_addr *out, size_t maxout, char *err, size_t errlen)
{
	char host[64];
	const char *colon, *portstr = spec;
	long long port;
	size_t n = 0;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host)) {
			str_fmt(err, errlen, "bad listener '%s' (expected [ADDR]:PORT)", spec);
			return -1;
		}
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		portstr = close + 2;
	} else if ((colon = strrchr(spec, ':')) != NULL) {
		if (strchr(spec, ':') != colon || (size_t)(colon - spec) >= sizeof(host)) {
			str_fmt(err, errlen, "bad listener '%s' (write IPv6 as [ADDR]:PORT)", spec);
			return -1;
		}
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		portstr = colon + 1;
	} else {
		host[0] = '\0';
	}
	if (str_to_ll(portstr, 1, 65535, &port) < 0) {
		str_fmt(err, errlen, "bad port in listener '%s'", spec);
		return -1;
	}
	/* Only a bare port means "each of inet_interfaces"; an empty ADDR (":25", "[]:25") is
	 * an error, not a quiet way to listen on every interface. */
	if (portstr == spec)
		return expand_interfaces((int)port, interfaces, nifaces, out, maxout, err, errlen);
	if (add_addr(host, (int)port, out, &n, maxout, err, errlen) < 0)
		return -1;
	return (int)n;
}

void inet_format_host(const struct sockaddr *sa, char *out, size_t outlen)
{
	char tmp[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, tmp, sizeof(tmp));
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], tmp, sizeof(tmp));
		else
			inet_ntop(AF_INET6, a, tmp, sizeof(tmp));
	} else {
		str_copy(tmp, sizeof(tmp), "unknown");
	}
	str_copy(out, outlen, tmp);
}

void inet_format(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];
	int port = 0;

	inet_format_host(sa, host, sizeof(host));
	if (sa->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	if (sa->sa_family == AF_INET6 && strchr(host, ':'))
		str_fmt(out, outlen, "[%s]:%d", host, port);
	else
		str_fmt(out, outlen, "%s:%d", host, port);
}

int inet_listen(const struct inet_addr *a, int backlog)
{
	int one = 1, fd;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* "::" serves IPv4 too unless an explicit 0.0.0.0 listener is also configured; we
	 * bind both wildcards for "all", so make the IPv6 one IPv6-only. */
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, backlog) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
