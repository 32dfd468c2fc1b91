/*
 * postern-authd: authentication and lookups for every other Postern process (issue 3).
 *
 * Start-up (as root, in server_main's pre_drop): read sql.conf, refusing a file anyone but
 * its owner can read; resolve the peer allow-lists and the vmail user while /etc/passwd is
 * at hand. After the drop to auth_owner: start the database workers, then serve requests on
 * the private socket master handed over until SIGTERM.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authd.h"
#include "log.h"
#include "privsep.h"
#include "server.h"
#include "sqlconf.h"
#include "sqldb.h"

struct authd A;

static void sql_error(const char *msg, void *arg)
{
	(void)arg;
	msg_error("%s", msg);
}

/* The peers allowed per request type (DESIGN.md §3). */
static void resolve_allow_lists(const struct config *cfg)
{
	const char *mail = conf_str(cfg, "mail_owner"), *queue = conf_str(cfg, "queue_owner"),
		   *vmail = conf_str(cfg, "vmail_owner");
	const char *const auth[] = { "root", mail, NULL };
	const char *const ticket[] = { "root", NULL };
	const char *const user[] = { "root", vmail, queue, NULL };
	const char *const rcpt[] = { "root", mail, queue, NULL };
	const char *const sender[] = { "root", mail, NULL };
	const char *const *lists[] = { auth, ticket, user, rcpt, sender };

	for (int i = 0; i < 5; i++)
		if (ipc_allow_init(&A.allow[i], lists[i]) < 0)
			msg_warn("an allowed peer of request type %d is not a known user",
				 AUTH_REQ_AUTH + i);
}

static void pre_drop(struct server *srv)
{
	A.cfg = srv->cfg;
	A.sql = sqlconf_load(conf_str(A.cfg, "sql_config"), !srv->dev_mode, sql_error, NULL);
	if (A.sql == NULL)
		msg_fatal("cannot use %s", conf_str(A.cfg, "sql_config"));
	resolve_allow_lists(A.cfg);
	if (privsep_lookup_user(conf_str(A.cfg, "vmail_owner"), &A.vmail_uid, &A.vmail_gid) < 0)
		msg_fatal("vmail_owner: unknown user %s", conf_str(A.cfg, "vmail_owner"));
}

static void post_drop(struct server *srv)
{
	(void)srv;
	sqldb_global_init();
	lookup_init();
	cache_init((size_t)conf_int(A.cfg, "authd_cache_size"));
	workers_start((int)conf_int(A.cfg, "authd_workers"));
}

static void on_hup(void)
{
	msg_info("SIGHUP: cached lookups dropped");
	cache_init((size_t)conf_int(A.cfg, "authd_cache_size"));
}

static int run(struct server *srv)
{
	A.loop = ev_new();
	workers_attach(A.loop);
	A.srv = ipc_server_new(A.loop, AUTHD_MAX_CLIENTS, &client_ops, NULL);
	if (ipc_server_listen(A.srv, srv->listen_fd, srv->nlisten) < 0)
		msg_fatal("cannot watch listener: %m");
	ipc_server_signals(A.loop, on_hup);
	server_report_ready(srv);
	msg_info("ready: %d database workers", (int)conf_int(A.cfg, "authd_workers"));
	ev_run(A.loop);
	workers_stop();
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
