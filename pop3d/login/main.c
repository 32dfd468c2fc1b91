/*
 * postern-pop3-login: the POP3 login process (issue 7; DESIGN.md §1 login/session split).
 * A pool service on the pop3 (110, STLS) and pop3s (995, implicit TLS: argument -t)
 * listeners; it runs as mail_owner, chrooted into $spool_directory/empty, without any
 * capability, and never sees a mailbox. Table of contents:
 *
 *   main.c       arguments, TLS keys and the private connections as root (lib/login.h)
 *   client.c     one client: greeting, reading command lines and their limits, the
 *                disconnect line
 *   commands.c   CAPA STLS QUIT, unknown commands
 *   auth.c       USER/PASS and AUTH through authd, then the hand-off to the session
 *
 * After a successful login master starts the user's session (postern-pop3) on one end of a
 * socketpair, and this process proxies the client to it until either side closes.
 */
#include <string.h>

#include "log.h"
#include "pop3_login.h"
#include "util.h"

static struct login_conf LC;

static void pre_drop(struct server *srv)
{
	bool implicit_tls = false;

	for (int i = 0; i < srv->argc; i++) {
		if (strcmp(srv->argv[i], "-t") == 0)
			implicit_tls = true;
		else
			msg_fatal("unknown argument: %s (want -t for implicit TLS)", srv->argv[i]);
	}
	login_init(&LC, srv, "pop3", "pop3-login", implicit_tls,
		   conf_bool(srv->cfg, "pop3_allow_plaintext_auth"));
	srv->ctx = &LC;
}

static void post_drop(struct server *srv)
{
	login_post_drop(srv->ctx);
}

static void serve(struct server *srv, int fd, int listener, const struct sockaddr *peer,
		  socklen_t peerlen)
{
	(void)listener, (void)peerlen;
	pop3_login_serve(srv->ctx, fd, peer);
}

int main(int argc, char **argv)
{
	static const struct server_hooks hooks = {
		.pre_drop = pre_drop,
		.post_drop = post_drop,
		.serve = serve,
	};

	server_main(argc, argv, SERVER_POOL_MODE, &hooks);
}
