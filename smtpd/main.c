/*
 * postern-smtpd: the SMTP server (issue 4; DESIGN.md §1-§4, §9). A pool service: master
 * hands each process one client at a time. Table of contents:
 *
 *   main.c          role (-r mx|submission|smtps), configuration, TLS keys as root
 *   session.c       the command loop: greeting, EHLO/HELO, STARTTLS, RSET, NOOP, VRFY,
 *                   HELP, QUIT, limits and timeouts
 *   transaction.c   MAIL, RCPT, DATA, BDAT: the envelope, the queue file, the 250
 *   data.c          DATA and BDAT readers: dot-unstuffing, bare CR/LF (smuggling), size
 *   auth.c          AUTH PLAIN and LOGIN through authd
 *   policy.c        mynetworks, relay decision, RCPT and sender lookups through authd
 *   queue_client.c  CREATE / COMMIT / ABORT with the queue daemon
 *   anvil_client.c  the connection count per client address, through postern-anvil
 *   received.c      the Received: header
 *   reply.c         replies, error counting
 *   log.c           Postfix-format log lines
 *
 * Deliberate choices are documented where they are made; the main ones: the client name is
 * always "unknown" (no DNS inside the chroot), the per-address connection limit is counted
 * by postern-anvil and fails open when anvil is away, message lines longer than 998
 * octets are refused (data.c), and a bare CR or LF in DATA ends the session with 521 as
 * Postfix does with smtpd_forbid_bare_newline = yes.
 */
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"
#include "log.h"
#include "util.h"

static struct smtpd_conf CF;

static enum smtpd_role parse_role(struct server *srv)
{
	for (int i = 0; i + 1 < srv->argc; i++) {
		if (strcmp(srv->argv[i], "-r") != 0)
			continue;
		if (strcmp(srv->argv[i + 1], "mx") == 0)
			return ROLE_MX;
		if (strcmp(srv->argv[i + 1], "submission") == 0)
			return ROLE_SUBMISSION;
		if (strcmp(srv->argv[i + 1], "smtps") == 0)
			return ROLE_SMTPS;
		msg_fatal("unknown role: %s (want mx, submission or smtps)", srv->argv[i + 1]);
	}
	return ROLE_MX;
}

static void socket_paths(struct server *srv)
{
	/* Chrooted into the spool, the sockets are /private/...; in developer mode (-u, no
	 * chroot) they are under spool_directory. */
	const char *spool = srv->dev_mode ? conf_str(srv->cfg, "spool_directory") : "";

	if (str_fmt(CF.auth_path, sizeof(CF.auth_path), "%s/private/auth", spool) < 0 ||
	    str_fmt(CF.queue_path, sizeof(CF.queue_path), "%s/private/queue", spool) < 0 ||
	    str_fmt(CF.anvil_path, sizeof(CF.anvil_path), "%s/private/anvil", spool) < 0)
		msg_fatal("spool_directory too long");
}

static void load_conf(struct server *srv)
{
	const struct config *c = srv->cfg;
	const char *const *nets;
	size_t n;

	CF.role = parse_role(srv);
	CF.log_name = CF.role == ROLE_MX ? "smtpd" :
		      CF.role == ROLE_SUBMISSION ? "submission/smtpd" : "smtps/smtpd";
	CF.myhostname = conf_str(c, "myhostname");
	CF.banner = conf_str(c, "smtpd_banner");
	CF.size_limit = (uint64_t)conf_size(c, "message_size_limit");
	CF.rcpt_limit = (size_t)conf_int(c, "smtpd_recipient_limit");
	CF.timeout_ms = (int)conf_time_ms(c, "smtpd_timeout");
	CF.hard_errors = (int)conf_int(c, "smtpd_hard_error_limit");
	CF.soft_errors = (int)conf_int(c, "smtpd_soft_error_limit");
	CF.error_sleep_ms = (int)conf_time_ms(c, "smtpd_error_sleep_time");
	CF.vrfy = !conf_bool(c, "disable_vrfy_command");
	CF.tls_auth_only = conf_bool(c, "smtpd_tls_auth_only");
	CF.auth_header = conf_bool(c, "smtpd_sasl_authenticated_header");
	CF.sender_check = conf_bool(c, "smtpd_sender_login_check");
	CF.smtputf8 = conf_bool(c, "smtputf8_enable");
	CF.conn_limit = conf_int(c, "smtpd_client_connection_count_limit");
	nets = conf_list(c, "mynetworks", &n);
	if (policy_parse_networks(&CF, nets, n) < 0)
		msg_fatal("mynetworks: bad entry (want ADDR/PREFIX, [IPv6]/PREFIX or ADDR)");
	socket_paths(srv);
}

/* As root: the TLS key is readable only now. */
static void pre_drop(struct server *srv)
{
	char err[512];

	load_conf(srv);
	log_set_service(CF.log_name);
	CF.tls = tls_server_new(conf_str(srv->cfg, "tls_cert_file"),
				conf_str(srv->cfg, "tls_key_file"), err, sizeof(err));
	if (CF.tls == NULL && CF.role == ROLE_SMTPS)
		msg_fatal("%s", err);
	if (CF.tls == NULL)
		msg_warn("STARTTLS unavailable: %s", err);
	srv->ctx = &CF;
}

static void serve(struct server *srv, int fd, int listener, const struct sockaddr *peer,
		  socklen_t peerlen)
{
	(void)listener, (void)peerlen;
	session_serve(srv, srv->ctx, fd, peer);
}

int main(int argc, char **argv)
{
	static const struct server_hooks hooks = {
		.pre_drop = pre_drop,
		.serve = serve,
	};

	server_main(argc, argv, SERVER_POOL_MODE, &hooks);
}
