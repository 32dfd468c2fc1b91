/*
 * postern-virtual: the virtual delivery agent (issue 5; Postfix's virtual(8) with Dovecot's
 * Maildir conventions). qmgr hands it a queue file open read-only, where the message lies
 * in it, and up to DELIVER_MAX_RCPT recipients (lib/deliverproto.h); it delivers a copy into
 * each recipient's Maildir and answers one result per recipient. Table of contents:
 *
 *   main.c     start-up, the event loop
 *   conn.c     the socket: peer check, the DELIVER request and the per-recipient reply
 *              (parsed, answered and logged by lib/deliverreq.c, shared with postern-smtp)
 *   deliver.c  one recipient: authd's user lookup and its re-check (uid, home inside
 *              virtual_mailbox_base), Maildir creation, loop and quota checks,
 *              plus-addressing into a folder, the Maildir write (lib/maildir.h)
 *   headers.c  the message's header section: Delivered-To loop detection, the lines we add
 *
 * Start-up (as root, pre_drop): resolve the allow-list (root and queue_owner). Then master's
 * skeleton drops to vmail_owner without a chroot (we write below virtual_mailbox_base).
 * virtual is a pool on its private socket (virtual_process_limit processes): each process
 * serves one qmgr connection at a time, one request after another, so qmgr's number of
 * connections is the delivery concurrency.
 */
#include <unistd.h>

#include "authproto.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "virtual.h"

struct virtuald V = { .auth_sock = -1 };

static void pre_drop(struct server *srv)
{
	deliver_allow_init(srv, &V.allow);
}

static void load_settings(struct server *srv)
{
	V.base = conf_str(srv->cfg, "virtual_mailbox_base");
	V.delimiter = conf_str(srv->cfg, "recipient_delimiter");
	V.plus_folders = conf_bool(srv->cfg, "virtual_plus_folders");
	V.overquota_temporary = conf_bool(srv->cfg, "virtual_overquota_temporary");
	if (str_fmt(V.auth_path, sizeof(V.auth_path), "%s/%s",
		    conf_str(srv->cfg, "spool_directory"), AUTH_SOCKET) < 0)
		msg_fatal("spool_directory is too long");
	if (V.base[0] != '/')
		msg_fatal("virtual_mailbox_base = %s is not an absolute path", V.base);
}

static void post_drop(struct server *srv)
{
	load_settings(srv);
	msg_info("ready: delivering below %s as uid %d", V.base, (int)getuid());
}

static void serve(struct server *srv, int fd, int listener, const struct sockaddr *peer,
		  socklen_t peerlen)
{
	(void)srv, (void)listener, (void)peer, (void)peerlen;
	deliver_pool_serve(fd, &conn_ops);
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
