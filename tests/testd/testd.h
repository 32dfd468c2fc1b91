/*
 * testd.h: state and entry points of postern-testd (see main.c).
 */
#ifndef POSTERN_TESTD_H
#define POSTERN_TESTD_H

#include <stdbool.h>
#include <sys/socket.h>

#include "server.h"

#define TESTD_MAX_LINE		1000
#define TESTD_TIMEOUT_MS	30000
#define TESTD_PING		1

struct testd {
	bool implicit_tls;
	bool single;
	struct tls_server *tls;
};

/* client.c */
void testd_serve_client(struct server *srv, int fd, int listener, const struct sockaddr *peer,
			socklen_t peerlen);
/* single.c */
void testd_single_pre_drop(struct server *srv);
int testd_run_single(struct server *srv);

#endif
