/*
 * session.c: one SMTP session from greeting to disconnect: the command loop, the commands
 * that do not belong to a transaction (EHLO, HELO, STARTTLS, RSET, NOOP, VRFY, HELP, QUIT),
 * and the session limits:
 *  - every command line goes through smtp_parse_command (lib/smtpcmd.h), read with a hard
 *    limit of SMTP_LINE_MAX octets; a longer line is answered 500 5.5.2 and skipped;
 *  - a line ending in a bare LF is refused (500 5.5.2), never guessed at;
 *  - smtpd_timeout per read (421 4.4.2 then disconnect), smtpd_hard_error_limit errors
 *    (421 4.7.0 then disconnect); smtpd_soft_error_limit delays replies (reply.c);
 *  - replies are flushed only when the client's pipelined input is used up (RFC 2920).
 * The connection count per client address (smtpd_client_connection_count_limit) is kept by
 * postern-anvil (anvil_client.c): the session registers before the greeting (before the TLS
 * handshake on 465, so a stalled handshake counts too) and holds the registration until it
 * ends. A client over the limit and not in mynetworks gets Postfix's
 * "421 4.7.0 HOST Error: too many connections from ADDR" instead of the greeting (on 465
 * after the handshake, so the client can read it).
 * The client name is always "unknown" as Postfix shows it without reverse DNS: there is no
 * resolver worth trusting inside the chroot and a lookup would cost every session.
 */
#include <string.h>
#include <unistd.h>

#include "smtpd.h"
#include "inet.h"
#include "log.h"
#include "util.h"

static void cmd_ehlo(struct session *ss, const struct smtp_cmd *c, bool esmtp)
{
	const struct smtpd_conf *cf = ss->cf;

	txn_reset(ss);
	(void)str_copy(ss->helo, sizeof(ss->helo), c->arg);
	ss->helo_seen = true;
	ss->esmtp = esmtp;
	count_cmd(ss, esmtp ? CNT_EHLO : CNT_HELO, true);
	if (!esmtp) {
		(void)stream_printf(ss->s, "250 %s\r\n", cf->myhostname);
		return;
	}
	(void)stream_printf(ss->s, "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n",
			    cf->myhostname, (unsigned long long)cf->size_limit);
	if (cf->vrfy)
		reply_raw(ss, "250-VRFY");
	if (!ss->tls && cf->tls)
		reply_raw(ss, "250-STARTTLS");
	if (auth_offered(ss))
		reply_raw(ss, "250-AUTH PLAIN LOGIN");
	reply_raw(ss, "250-ENHANCEDSTATUSCODES");
	reply_raw(ss, "250-8BITMIME");
	reply_raw(ss, "250-DSN");
	if (cf->smtputf8)
		reply_raw(ss, "250-SMTPUTF8");
	reply_raw(ss, "250 CHUNKING");
}

/* RFC 3207 4.2: after the handshake, forget everything the client said before. */
static void forget_client(struct session *ss)
{
	txn_reset(ss);
	ss->helo_seen = false;
	ss->esmtp = false;
	ss->helo[0] = '\0';
	ss->auth_user[0] = '\0';
	ss->auth_method[0] = '\0';
}

static bool start_tls(struct session *ss)
{
	if (stream_starttls_server(ss->s, tls_server_ctx(ss->cf->tls)) < 0) {
		msg_info("SSL_accept error from %s", ss->namaddr);
		ss->lost = true;
		return false;
	}
	ss->tls = true;
	tls_describe(stream_ssl(ss->s), ss->tls_desc, sizeof(ss->tls_desc));
	msg_info("Anonymous TLS connection established from %s: %s", ss->namaddr, ss->tls_desc);
	return true;
}

static void cmd_starttls(struct session *ss)
{
	bool ok = false;

	if (ss->tls) {
		reply(ss, 554, "5.5.1", "Error: TLS already active");
	} else if (ss->cf->tls == NULL) {
		reply(ss, 454, "4.7.0", "TLS not available due to local problem");
	} else {
		reply(ss, 220, "2.0.0", "Ready to start TLS");
		/* The handshake discards whatever the client pipelined after STARTTLS. */
		if (reply_flush(ss) < 0) {
			ss->lost = true;
		} else if (start_tls(ss)) {
			forget_client(ss);
			ok = true;
		}
		ss->quit = !ok;
	}
	count_cmd(ss, CNT_STARTTLS, ok);
}

static void dispatch(struct session *ss, const struct smtp_cmd *c)
{
	switch (c->verb) {
	case SMTP_EHLO: cmd_ehlo(ss, c, true); break;
	case SMTP_HELO: cmd_ehlo(ss, c, false); break;
	case SMTP_STARTTLS: cmd_starttls(ss); break;
	case SMTP_AUTH: cmd_auth(ss, c); break;
	case SMTP_MAIL: cmd_mail(ss, c); break;
	case SMTP_RCPT: cmd_rcpt(ss, c); break;
	case SMTP_DATA: cmd_data(ss); break;
	case SMTP_BDAT: cmd_bdat(ss, c); break;
	case SMTP_RSET:
		txn_reset(ss);
		reply(ss, 250, "2.0.0", "Ok");
		count_cmd(ss, CNT_RSET, true);
		break;
	case SMTP_NOOP:
		reply(ss, 250, "2.0.0", "Ok");
		count_cmd(ss, CNT_NOOP, true);
		break;
	case SMTP_VRFY:
		if (ss->cf->vrfy)
			reply(ss, 252, "2.0.0", "Send mail to find out");
		else
			reply(ss, 502, "5.5.1", "VRFY command is disabled");
		count_cmd(ss, CNT_VRFY, ss->cf->vrfy);
		break;
	case SMTP_HELP:
		reply(ss, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
		      "VRFY HELP STARTTLS AUTH");
		count_cmd(ss, CNT_HELP, true);
		break;
	case SMTP_QUIT:
		reply(ss, 221, "2.0.0", "Bye");
		count_cmd(ss, CNT_QUIT, true);
		ss->quit = true;
		break;
	case SMTP_NONE:
		break;
	}
}

static const enum smtpd_counter verb_counter[] = {
	[SMTP_NONE] = CNT_UNKNOWN, [SMTP_EHLO] = CNT_EHLO, [SMTP_HELO] = CNT_HELO,
	[SMTP_MAIL] = CNT_MAIL, [SMTP_RCPT] = CNT_RCPT, [SMTP_DATA] = CNT_DATA,
	[SMTP_BDAT] = CNT_BDAT, [SMTP_RSET] = CNT_RSET, [SMTP_NOOP] = CNT_NOOP,
	[SMTP_QUIT] = CNT_QUIT, [SMTP_VRFY] = CNT_VRFY, [SMTP_HELP] = CNT_HELP,
	[SMTP_STARTTLS] = CNT_STARTTLS, [SMTP_AUTH] = CNT_AUTH,
};

static const char *const verb_name[] = {
	[SMTP_NONE] = "UNKNOWN", [SMTP_EHLO] = "EHLO", [SMTP_HELO] = "HELO", [SMTP_MAIL] = "MAIL",
	[SMTP_RCPT] = "RCPT", [SMTP_DATA] = "DATA", [SMTP_BDAT] = "BDAT", [SMTP_RSET] = "RSET",
	[SMTP_NOOP] = "NOOP", [SMTP_QUIT] = "QUIT", [SMTP_VRFY] = "VRFY", [SMTP_HELP] = "HELP",
	[SMTP_STARTTLS] = "STARTTLS", [SMTP_AUTH] = "AUTH",
};

/* One command line (terminator included). */
static void command_line(struct session *ss, struct buf *line)
{
	static struct smtp_cmd cmd;
	size_t len = line->len;

	if (len < 2 || line->data[len - 2] != '\r') {
		count_cmd(ss, CNT_UNKNOWN, false);
		reply(ss, 500, "5.5.2", "Error: bare <LF> received");
		return;
	}
	if (smtp_parse_command(line->data, len - 2, &cmd, NULL, 0) != 0) {
		count_cmd(ss, verb_counter[cmd.verb], false);
		if (cmd.verb != SMTP_NONE)
			ss->where = verb_name[cmd.verb];
		reply_parse_error(ss, &cmd.reply);
		if (cmd.verb == SMTP_BDAT)	/* the chunk follows anyway: no way to skip it */
			ss->quit = true;
		return;
	}
	ss->where = verb_name[cmd.verb];
	ss->where_bytes = 0;
	dispatch(ss, &cmd);
}

static const char *where(const struct session *ss, char *buf, size_t len)
{
	if (strcmp(ss->where, "DATA") == 0 || strcmp(ss->where, "BDAT") == 0)
		(void)str_fmt(buf, len, "%s (%llu bytes)", ss->where,
			      (unsigned long long)ss->where_bytes);
	else
		(void)str_copy(buf, len, ss->where);
	return buf;
}

static void timeout(struct session *ss)
{
	char w[64];

	reply(ss, 421, "4.4.2", "%s Error: timeout exceeded", ss->cf->myhostname);
	(void)reply_flush(ss);
	msg_info("timeout after %s from %s", where(ss, w, sizeof(w)), ss->namaddr);
}

static void command_loop(struct session *ss)
{
	struct buf line;
	char w[64];

	buf_init(&line, SMTP_LINE_MAX + 1);
	while (!ss->quit) {
		ssize_t r;

		if (ss->errors >= ss->cf->hard_errors) {
			reply(ss, 421, "4.7.0", "%s Error: too many errors", ss->cf->myhostname);
			msg_info("too many errors after %s from %s", ss->where, ss->namaddr);
			break;
		}
		if (stream_pending(ss->s) == 0 && reply_flush(ss) < 0) {
			ss->lost = true;
			break;
		}
		r = stream_readline(ss->s, &line);
		if (r == STREAM_TIMEOUT) {
			ss->timed_out = true;
			break;
		}
		if (r == STREAM_TOOLONG) {
			count_cmd(ss, CNT_UNKNOWN, false);
			reply(ss, 500, "5.5.2", "Error: line too long");
			continue;
		}
		if (r <= 0 || line.data[line.len - 1] != '\n') {
			ss->lost = true;
			break;
		}
		command_line(ss, &line);
	}
	buf_free(&line);
	if (ss->timed_out)
		timeout(ss);
	else if (ss->lost)
		msg_info("lost connection after %s from %s", where(ss, w, sizeof(w)), ss->namaddr);
}

static void session_init(struct session *ss, struct server *srv, const struct smtpd_conf *cf,
			 const struct sockaddr *peer)
{
	memset(ss, 0, sizeof(*ss));
	ss->cf = cf;
	ss->srv = srv;
	ss->auth_sock = ss->queue_sock = ss->anvil_sock = -1;
	ss->txn.qfd = -1;
	ss->where = "CONNECT";
	inet_format_host(peer, ss->addr, sizeof(ss->addr));
	(void)str_copy(ss->name, sizeof(ss->name), "unknown");
	(void)str_fmt(ss->namaddr, sizeof(ss->namaddr), "%s[%s]", ss->name, ss->addr);
	ss->mynetworks = policy_in_networks(cf, peer);
}

void session_serve(struct server *srv, const struct smtpd_conf *cf, int fd,
		   const struct sockaddr *peer)
{
	static struct session ss;
	int cfd = dup(fd);	/* the skeleton closes fd; the stream owns its own copy */
	bool too_many;

	session_init(&ss, srv, cf, peer);
	msg_info("connect from %s", ss.namaddr);
	if (cfd < 0 || (ss.s = stream_new(cfd, SMTP_LINE_MAX + 1, cf->timeout_ms)) == NULL) {
		msg_warn("cannot set up the connection: %m");
		if (cfd >= 0)
			(void)close(cfd);
		return;
	}
	too_many = anvil_over_limit(&ss);
	if (cf->role != ROLE_SMTPS || start_tls(&ss)) {
		if (too_many) {
			reply(&ss, 421, "4.7.0", "%s Error: too many connections from %s",
			      cf->myhostname, ss.addr);
		} else {
			(void)stream_printf(ss.s, "220 %s\r\n", cf->banner);
			command_loop(&ss);
		}
	} else {
		msg_info("lost connection after CONNECT from %s", ss.namaddr);
	}
	(void)reply_flush(&ss);
	txn_reset(&ss);
	log_disconnect(&ss);
	if (ss.auth_sock >= 0)
		(void)close(ss.auth_sock);
	if (ss.queue_sock >= 0)
		(void)close(ss.queue_sock);
	anvil_disconnect(&ss);
	stream_free(ss.s);
}
