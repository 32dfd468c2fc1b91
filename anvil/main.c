/*
 * postern-anvil: the connection counter (issue 4; Postfix's anvil). smtpd is a pool with one
 * client per process, so no smtpd can count the connections from one address; each session
 * registers its (service, client address) here at start and keeps the socket open until it
 * ends, and gets back how many such connections are open now (lib/anvilproto.h). Table of
 * contents:
 *
 *   main.c    start-up, signals, the event loop
 *   conn.c    client sockets: peer check, CONNECT, forgetting a connection when it closes
 *   table.c   the counts: a seeded hash table keyed by service and address
 *
 * Start-up (as root, pre_drop): resolve the allow-list (root and mail_owner) while
 * /etc/passwd is at hand. After the drop to mail_owner (chrooted in the spool) serve the
 * private socket master handed over until SIGTERM. Counts live only in memory: when anvil
 * restarts it starts from zero, which errs on the side of letting clients in, and smtpd fails
 * open while anvil is away.
 */
#include <unistd.h>

#include "anvil.h"
#include "log.h"
#include "server.h"

struct anvild AV;

static void pre_drop(struct server *srv)
{
	const char *mail = conf_str(srv->cfg, "mail_owner");
	const char *const allowed[] = { "root", mail, NULL };

	if (ipc_allow_init(&AV.allow, allowed) < 0)
		msg_warn("mail_owner %s is not a known user", mail);
	/* Developer mode runs every daemon as the invoking user: let that user in too. */
	if (srv->dev_mode && !ipc_allow_check(&AV.allow, geteuid()) && AV.allow.n < IPC_MAX_ALLOW)
		AV.allow.uid[AV.allow.n++] = geteuid();
}

static void post_drop(struct server *srv)
{
	(void)srv;
	/* ANVIL_MAX_CLIENTS sockets need more descriptors than the usual soft limit. */
	ipc_server_raise_fd_limit();
}

static int run(struct server *srv)
{
	AV.loop = ev_new();
	AV.srv = ipc_server_new(AV.loop, ANVIL_MAX_CLIENTS, &conn_ops, NULL);
	ipc_server_set_overflow(AV.srv, ANVIL_MAX_REFUSING);
	if (ipc_server_listen(AV.srv, srv->listen_fd, srv->nlisten) < 0)
		msg_fatal("cannot watch listener: %m");
	/* SIGHUP: no configuration to reload; the counts must survive. */
	ipc_server_signals(AV.loop, NULL);
	server_report_ready(srv);
	msg_info("ready: at most %d clients", ANVIL_MAX_CLIENTS);
	ev_run(AV.loop);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct server_hooks hooks = {
		.pre_drop = pre_drop,
		.post_drop = post_drop,
		.run = run,
	};

	server_main(argc, argv, SERVER_SINGLE_MODE, &hooks);
}
