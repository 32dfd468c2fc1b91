/*
 * postern-smtp: the outbound SMTP delivery agent (issue 5; Postfix's smtp(8)). qmgr hands it
 * a queue file open read-only, where the message lies in it, and up to DELIVER_MAX_RCPT
 * recipients of one domain (lib/deliverproto.h); it finds the domain's mail exchangers (or
 * the relayhost), speaks ESMTP to them in turn and answers one result per recipient.
 * Table of contents:
 *
 *   main.c     start-up, the socket (peer check, the request, the reply), the event loop
 *   deliver.c  one request: same-domain check, MX or relayhost lookup, hosts and addresses
 *              in order, what to report when none could take the message
 *   client.c   one SMTP conversation: greeting, EHLO/HELO, STARTTLS, MAIL (SIZE, BODY,
 *              SMTPUTF8), RCPT per recipient, DATA with dot-stuffing from the queue file
 *   log.c      smtp-specific log lines (lib/deliverreq.c writes the delivery lines)
 *
 * Start-up (as root, pre_drop): resolve the allow-list (root and queue_owner) and build the
 * TLS client context while the system CA store is still reachable. Then master's skeleton
 * chroots into the spool (the resolver reads its etc/resolv.conf) and drops to mail_owner.
 * Requests are served one at a time in the loop: master runs this as a single daemon for
 * now, and qmgr's concurrency limit decides how many requests it sends.
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

static const struct ipc_server_ops conn_ops = {
	.request = handle_request,
	.max_fds = 1,
};

static int run(struct server *srv)
{
	load_settings(srv);
	S.loop = ev_new();
	S.srv = deliver_serve(srv, S.loop, SMTP_MAX_CLIENTS, &conn_ops);
	msg_info("ready: relayhost=%s, tls=%s", S.relayhost[0] ? S.relayhost : "(none)",
		 conf_str(srv->cfg, "smtp_tls_security_level"));
	ev_run(S.loop);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct server_hooks hooks = {
		.pre_drop = pre_drop,
		.run = run,
	};

	server_main(argc, argv, SERVER_SINGLE_MODE, &hooks);
}
