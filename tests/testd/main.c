/*
 * postern-testd: the built-in test service of issue 2. It is not a mail daemon and does not
 * pretend to be one: it exists so the master, the daemon skeleton, privilege dropping, TLS
 * and the IPC library can be tested end to end before the real daemons exist.
 *
 *   pool mode (default; -t = implicit TLS): greets "postern-testd SERVICE PID ready", then
 *     answers line commands PING, ECHO text, TLS, STARTTLS, QUIT (see tests/e2e).
 *   single mode (-s): serves IPC PING requests (type 1) on its private socket, answering
 *     only peers running as root or mail_owner.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testd.h"
#include "log.h"
#include "server.h"
#include "tls.h"

static struct testd T;

static void parse_service_args(struct server *srv)
{
	for (int i = 0; i < srv->argc; i++) {
		if (strcmp(srv->argv[i], "-t") == 0)
			T.implicit_tls = true;
		else if (strcmp(srv->argv[i], "-s") == 0)
			T.single = true;
		else
			msg_fatal("unknown service argument: %s", srv->argv[i]);
	}
}

/* As root: the TLS key is readable only now. Implicit-TLS services cannot work without it. */
static void pre_drop(struct server *srv)
{
	char err[512];

	parse_service_args(srv);
	srv->ctx = &T;
	if (T.single) {
		testd_single_pre_drop(srv);
		return;
	}
	T.tls = tls_server_new(conf_str(srv->cfg, "tls_cert_file"),
			       conf_str(srv->cfg, "tls_key_file"), err, sizeof(err));
	if (T.tls == NULL && T.implicit_tls)
		msg_fatal("%s", err);
	if (T.tls == NULL)
		msg_warn("STARTTLS unavailable: %s", err);
}

static bool wants_single(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-s") == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const struct server_hooks hooks = {
		.pre_drop = pre_drop,
		.serve = testd_serve_client,
		.run = testd_run_single,
	};

	server_main(argc, argv, wants_single(argc, argv) ? SERVER_SINGLE_MODE : SERVER_POOL_MODE,
		    &hooks);
}
