/*
 * client.c: one client of imap-login from greeting to hand-off or disconnect: reading
 * commands with lib/imapcmd.c (literals get "+ OK"; LITERAL+ needs nothing), the limits,
 * and the disconnect log line.
 *
 * The reader queues what it is fed beyond the current command; imapcmd_pending() says how
 * much. il->in keeps a copy of exactly those bytes (trimmed to the pending count after
 * every command), because two moments need them as bytes: an AUTHENTICATE exchange reads
 * its response lines from them, and a successful login forwards them to the session, so a
 * client that pipelined commands behind LOGIN loses none.
 */
#include <stdarg.h>
#include <string.h>

#include "imap_login.h"
#include "log.h"
#include "util.h"

#define IN_MAX		(IMAP_LOGIN_TOTAL_MAX + 2 * LOGIN_READ_CHUNK)
#define CLIENT_GONE	(-1)

void imap_login_reply(struct imap_login *il, const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		line[0] = '\0';
	va_end(ap);
	(void)stream_printf(il->lc.s, "%s\r\n", line);
}

ssize_t imap_login_read(struct imap_login *il, char *chunk, size_t size)
{
	ssize_t n;

	if (stream_flush(il->lc.s) < 0) {
		il->reason = "Connection closed";
		return 0;
	}
	n = stream_read(il->lc.s, chunk, size);
	if (n > 0 && buf_append(&il->in, chunk, (size_t)n) == 0)
		return n;
	if (n > 0) {
		imap_login_reply(il, "* BYE Too much input.");
		(void)stream_flush(il->lc.s);
		il->reason = "Too much input";
	} else if (n == STREAM_TIMEOUT) {
		imap_login_reply(il, "* BYE Disconnected for inactivity.");
		(void)stream_flush(il->lc.s);
		il->reason = "Inactivity";
	} else {
		il->reason = "Connection closed";
	}
	return 0;
}

/* After a command: il->in keeps only what the reader still holds. */
static bool sync_input(struct imap_login *il)
{
	size_t pending = imapcmd_pending(il->cmd);

	if (pending > il->in.len) {
		msg_warn("imap-login: the command reader holds %zu bytes, we saw %zu", pending,
			 il->in.len);
		return false;
	}
	buf_consume(&il->in, il->in.len - pending);
	return true;
}

/* The next command: an imapcmd status, or CLIENT_GONE. */
static int next_command(struct imap_login *il)
{
	static char chunk[LOGIN_READ_CHUNK];
	enum imapcmd_status st;
	ssize_t n;

	if (il->refeed) {
		il->refeed = false;
		st = imapcmd_feed(il->cmd, buf_cstr(&il->in), il->in.len);
	} else {
		st = imapcmd_feed(il->cmd, NULL, 0);
	}
	for (;;) {
		switch (st) {
		case IMAPCMD_DONE:
		case IMAPCMD_BAD:
			if (!sync_input(il)) {
				il->reason = "Internal error";
				return CLIENT_GONE;
			}
			return (int)st;
		case IMAPCMD_TOOBIG:
			return (int)st;
		case IMAPCMD_CONTINUE:
			imap_login_reply(il, "+ OK");	/* the literal follows */
			__attribute__((fallthrough));
		case IMAPCMD_MORE:
			n = imap_login_read(il, chunk, sizeof(chunk));
			if (n <= 0)
				return CLIENT_GONE;
			st = imapcmd_feed(il->cmd, chunk, (size_t)n);
			break;
		}
	}
}

static void too_big(struct imap_login *il)
{
	imap_login_reply(il, "%s BAD [TOOBIG] %s", il->cmd->tag[0] ? il->cmd->tag : "*",
			 il->cmd->error ? il->cmd->error : "Command too long");
	imap_login_reply(il, "* BYE Command too long.");
	il->reason = "Command too long";
	il->done = true;
}

static void bad_command(struct imap_login *il)
{
	imap_login_reply(il, "%s BAD Error in IMAP command: %s", il->cmd->tag,
			 il->cmd->error ? il->cmd->error : "syntax error");
	if (++il->bad_commands >= IMAP_LOGIN_MAX_BAD) {
		imap_login_reply(il, "* BYE Too many invalid IMAP commands.");
		il->reason = "Too many invalid commands";
		il->done = true;
	}
}

static void command_loop(struct imap_login *il)
{
	while (!il->done) {
		int st = next_command(il);

		if (st == CLIENT_GONE)
			break;
		if (st == IMAPCMD_TOOBIG)
			too_big(il);
		else if (st == IMAPCMD_BAD)
			bad_command(il);
		else
			imap_login_dispatch(il);
		imapcmd_reset(il->cmd);
	}
}

void imap_login_serve(struct login_conf *cf, int fd, const struct sockaddr *peer)
{
	static struct imap_login il;
	static const struct imapcmd_limits limits = {
		.line_max = IMAP_LOGIN_LINE_MAX,
		.literal_max = IMAP_LOGIN_LITERAL_MAX,
		.total_max = IMAP_LOGIN_TOTAL_MAX,
		.literal_plus = true,		/* we advertise LITERAL+ */
	};

	memset(&il, 0, sizeof(il));
	if (login_client_start(&il.lc, cf, fd, peer) == 0) {
		il.cmd = imapcmd_new(&limits);
		buf_init(&il.in, IN_MAX);
		il.reason = "Connection closed";
		imap_login_reply(&il, "* OK [CAPABILITY %s] Postern ready.",
				 imap_login_capabilities(&il));
		command_loop(&il);
		(void)stream_flush(il.lc.s);
		login_log_disconnect(&il.lc, il.reason);
		if (il.in.data)
			explicit_bzero(il.in.data, il.in.cap);	/* a password may be in there */
		buf_free(&il.in);
		imapcmd_free(il.cmd);
	}
	login_client_end(&il.lc);
	login_after_client(cf);
}
