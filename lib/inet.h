/*
 * inet.h: Internet addresses for listeners: parsing `[address:]port` specifications the way
 * master and `postern check` both need them, and formatting addresses for logs.
 */
#ifndef POSTERN_INET_H
#define POSTERN_INET_H

#include <stddef.h>
#include <sys/socket.h>

#define INET_MAX_ADDRS 16

struct inet_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/*
 * Expand one listener spec into socket addresses. spec is "PORT", "ADDR:PORT" or
 * "[V6ADDR]:PORT"; a bare port is bound on each of `interfaces` ("all" = the IPv6 and
 * IPv4 wildcards, "loopback-only" = 127.0.0.1 and ::1, or literal addresses). Returns the
 * number of addresses (>0) or -1 with a reason in err.
 */
int inet_listen_expand(const char *spec, const char *const *interfaces, size_t nifaces,
		       struct inet_addr *out, size_t maxout, char *err, size_t errlen);

/* "127.0.0.1:25" / "[::1]:25" */
void inet_format(const struct sockaddr *sa, char *out, size_t outlen);
/* "127.0.0.1" / "::1" (IPv4-mapped IPv6 shown as IPv4) */
void inet_format_host(const struct sockaddr *sa, char *out, size_t outlen);

/* Create, bind and listen; returns a non-blocking CLOEXEC socket or -1 (errno set). */
int inet_listen(const struct inet_addr *a, int backlog);

#endif
