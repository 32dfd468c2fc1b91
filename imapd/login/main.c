/*
 * postern-imap-login: the IMAP login process (issue 6; DESIGN.md §1 login/session split).
 * A pool service on the imap (143, STARTTLS) and imaps (993, implicit TLS: argument -t)
 * listeners; it runs as mail_owner, chrooted into $spool_directory/empty, without any
 * capability, and never sees a mailbox. Table of contents:
 *
 *   main.c       arguments, TLS keys and the private connections as root (lib/login.h)
 *   client.c     one client: greeting, reading commands (lib/imapcmd.h), limits, the
 *                disconnect line
 *   commands.c   CAPABILITY NOOP LOGOUT STARTTLS ID ENABLE, unknown commands
 *   auth.c       LOGIN and AUTHENTICATE through authd, then the hand-off to the session
 *
 * After a successful login master starts the user's session (postern-imap) on one end of a
 * socketpair, and this process proxies the client to it until either side closes.
 */
#include <string.h>

#include "imap_login.h"
#include "log.h"
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
	login_init(&LC, srv, "imap", "imap-login", implicit_tls,
		   conf_bool(srv->cfg, "imap_allow_plaintext_auth"));
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
	imap_login_serve(srv->ctx, fd, peer);
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
