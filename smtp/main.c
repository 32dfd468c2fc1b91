/*
 * postern-smtp: the outbound SMTP delivery agent (issue 5; Postfix's smtp(8)). qmgr hands it
 * a queue file open read-only, where the message lies in it, and up to DELIVER_MAX_RCPT
 * recipients of one destination (lib/deliverproto.h); it finds the destination's mail
 * exchangers (or the relayhost, or the request's nexthop), speaks ESMTP to them in turn and
 * answers one result per recipient. Table of contents:
 *
 *   main.c     start-up, the socket (peer check, the request, the reply)
 *   deliver.c  one request: destination (nexthop, relayhost or the recipients' domain), MX
 *              or relayhost lookup, the cached connection, hosts and addresses in order,
 *              what to report when none could take the message
 *   client.c   one SMTP connection: greeting, EHLO/HELO, STARTTLS, AUTH, QUIT; the
 *              connection cache (RSET and reuse for the next request to the destination)
 *   mail.c     one mail transaction: MAIL (SIZE, BODY, SMTPUTF8), RCPT per recipient, DATA
 *              with dot-stuffing from the queue file; pipelined when the server offers it
 *   sasl.c     smtp_sasl_password_file and AUTH PLAIN/LOGIN to relayhosts and nexthops
 *   log.c      smtp-specific log lines (lib/deliverreq.c writes the delivery lines)
 *
 * Start-up (as root, pre_drop): resolve the allow-list (root and queue_owner), build the TLS
 * client context while the system CA store is still reachable and read the SASL password
 * file. Then master's skeleton chroots into the spool (the resolver reads its
 * etc/resolv.conf) and drops to mail_owner; the settings are loaded (post_drop).
 * postern-smtp is a pool on its private socket (smtp_agent_process_limit processes): each
 * process serves one qmgr connection, requests one after another, so qmgr's number of
 * connections is the delivery concurrency. Between two requests the last SMTP connection
 * may stay open for smtp_connection_cache_time (client.c).
 */
#include <string.h>

#include "buf.h"
#include "log.h"
#include "server.h"
#include "smtp.h"
#include "tls.h"
#include "util.h"

struct smtp_agent S;

static enum smtp_tls_level tls_level(const char *s)
{
	if (strcmp(s, "none") == 0)
		return SMTP_TLS_NONE;
	if (strcmp(s, "may") == 0)
		return SMTP_TLS_MAY;
	if (strcmp(s, "encrypt") == 0)
		return SMTP_TLS_ENCRYPT;
	if (strcmp(s, "verify") == 0 || strcmp(s, "secure") == 0)
		return SMTP_TLS_VERIFY;
	msg_fatal("smtp_tls_security_level = %s: expected none, may, encrypt or verify", s);
}

static void pre_drop(struct server *srv)
{
	char err[512];

	deliver_allow_init(srv, &S.allow);
	sasl_load(conf_str(srv->cfg, "smtp_sasl_password_file"), srv->dev_mode);
	S.tls_level = tls_level(conf_str(srv->cfg, "smtp_tls_security_level"));
	if (S.tls_level == SMTP_TLS_NONE)
		return;
	S.tls_ctx = tls_client_ctx_new(S.tls_level == SMTP_TLS_VERIFY ? TLS_VERIFY_PEER :
				       TLS_VERIFY_NONE, NULL, err, sizeof(err));
	if (S.tls_ctx == NULL)
		msg_fatal("TLS client context: %s", err);
}

/* smtp_host_override is a list parameter; mx_set_override takes its items as one string. */
static void set_override(struct server *srv)
{
	size_t n;
	const char *const *items = conf_list(srv->cfg, "smtp_host_override", &n);
	struct buf spec;
	char err[512];

	buf_init(&spec, 64 * 1024);
	for (size_t i = 0; i < n; i++)
		if (buf_printf(&spec, "%s%s", i ? " " : "", items[i]) < 0)
			msg_fatal("smtp_host_override is too long");
	if (mx_set_override(buf_cstr(&spec), err, sizeof(err)) < 0)
		msg_fatal("smtp_host_override: %s", err);
	if (n > 0)
		msg_warn("smtp_host_override is set: %zu domain(s) do not use DNS", n);
	buf_free(&spec);
}

static void load_settings(struct server *srv)
{
	char err[512];

	S.myhostname = conf_str(srv->cfg, "myhostname");
	S.relayhost = conf_str(srv->cfg, "relayhost");
	S.connect_timeout_ms = (int)conf_time_ms(srv->cfg, "smtp_connect_timeout");
	S.cache_time_ms = conf_time_ms(srv->cfg, "smtp_connection_cache_time");
	S.sasl_tls_only = conf_bool(srv->cfg, "smtp_sasl_tls_only");
	set_override(srv);
	if (S.relayhost[0] != '\0') {
		struct mx_relayhost rh;

		if (mx_parse_relayhost(S.relayhost, &rh, err, sizeof(err)) < 0)
			msg_fatal("relayhost = %s: %s", S.relayhost, err);
	}
}

/* ---- the socket ------------------------------------------------------------------------- */

static void handle_deliver(struct ipc_peer *p, struct ipc_msg *m)
{
	static struct deliver_request r;
	const char *bad = deliver_request_parse(m, &r);

	if (bad != NULL) {
		msg_warn("malformed request from pid %d: %s", (int)p->pid, bad);
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, bad);
		return;
	}
	S.loop = ipc_server_loop(p->srv);	/* where a kept connection waits */
	deliver_request(&r);
	if (r.nrcpt == 0) {	/* deliver_request refused it: recipients of several domains */
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "recipients of more than one domain");
		return;
	}
	for (size_t i = 0; i < r.nrcpt; i++)
		deliver_log(&r, &r.rcpt[i]);
	deliver_reply(p, m, &r);
}

static void handle_request(struct ipc_peer *p, struct ipc_msg *m)
{
	if (ipc_peer_allowed(p, m, &S.allow)) {
		if (m->type == DELIVER_REQ_DELIVER)
			handle_deliver(p, m);
		else
			(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "unknown request type");
	}
	ipc_close_fds(m);	/* the queue file is only read during the request */
}

/* qmgr went away (or master asked us to stop): no request can reuse the connection. */
static void handle_closed(struct ipc_peer *p)
{
	(void)p;
	client_cache_close();
}

static const struct ipc_server_ops conn_ops = {
	.request = handle_request,
	.closed = handle_closed,
	.max_fds = 1,
};

static void post_drop(struct server *srv)
{
	load_settings(srv);
	msg_info("ready: relayhost=%s, tls=%s", S.relayhost[0] ? S.relayhost : "(none)",
		 conf_str(srv->cfg, "smtp_tls_security_level"));
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
