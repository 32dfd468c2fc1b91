/*
 * commands.c: the IMAP commands a client may give before it has logged in (RFC 3501 §6.1,
 * §6.2; RFC 2971 ID): CAPABILITY, NOOP, LOGOUT, STARTTLS, ID, LOGIN and AUTHENTICATE
 * (auth.c). ENABLE is advertised but belongs to the authenticated state (RFC 5161): BAD.
 * Anything else is BAD too and counts towards IMAP_LOGIN_MAX_BAD.
 *
 * Capabilities: "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE", then STARTTLS while TLS is
 * available and not yet active, then AUTH=PLAIN AUTH=LOGIN where a password may be sent
 * (TLS, or imap_allow_plaintext_auth = yes), LOGINDISABLED where it may not (RFC 3501
 * §6.2.3). The texts follow Dovecot's, which clients and scripts know.
 */
#include <string.h>

#include "imap_login.h"
#include "log.h"
#include "util.h"

#define ID_MAX_PAIRS	30	/* RFC 2971 §3.3 */
#define ID_FIELD_MAX	30
#define ID_VALUE_MAX	1024

const char *imap_login_capabilities(const struct imap_login *il)
{
	static char caps[256];

	(void)str_fmt(caps, sizeof(caps), "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE%s%s",
		      !il->lc.tls && login_tls_available(&il->lc) ? " STARTTLS" : "",
		      login_plaintext_allowed(&il->lc) ? " AUTH=PLAIN AUTH=LOGIN" :
							 " LOGINDISABLED");
	return caps;
}

/* Commands without arguments: false (and BAD) if some came. */
static bool no_args(struct imap_login *il)
{
	if (il->cmd->args == NULL)
		return true;
	imap_login_reply(il, "%s BAD Error in IMAP command %s: Unexpected arguments.",
			 il->cmd->tag, il->cmd->name);
	il->bad_commands++;
	return false;
}

static void cmd_capability(struct imap_login *il)
{
	if (!no_args(il))
		return;
	imap_login_reply(il, "* CAPABILITY %s", imap_login_capabilities(il));
	imap_login_reply(il, "%s OK Pre-login capabilities listed, post-login capabilities have "
			 "more.", il->cmd->tag);
}

static void cmd_noop(struct imap_login *il)
{
	if (no_args(il))
		imap_login_reply(il, "%s OK NOOP completed.", il->cmd->tag);
}

static void cmd_logout(struct imap_login *il)
{
	if (!no_args(il))
		return;
	imap_login_reply(il, "* BYE Logging out");
	imap_login_reply(il, "%s OK Logout completed.", il->cmd->tag);
	il->reason = "Aborted login by logging out";
	il->done = true;
}

/* RFC 3501 §6.2.1. What the client sent after the command was sent in the clear: it is
 * dropped with the reader's queue, never read as if it came through TLS. */
static void cmd_starttls(struct imap_login *il)
{
	if (!no_args(il))
		return;
	if (il->lc.tls) {
		imap_login_reply(il, "%s BAD TLS is already active.", il->cmd->tag);
		return;
	}
	if (!login_tls_available(&il->lc)) {
		imap_login_reply(il, "%s BAD TLS support isn't enabled.", il->cmd->tag);
		return;
	}
	imap_login_reply(il, "%s OK Begin TLS negotiation now.", il->cmd->tag);
	imapcmd_reset(il->cmd);
	imapcmd_discard(il->cmd);
	buf_reset(&il->in);
	if (login_starttls(&il->lc) < 0)
		il->done = true;
}

/* ID: NIL or a list of field/value string pairs, within RFC 2971's limits. */
static bool id_args_ok(const struct imaparg *a)
{
	int n = 0;

	if (a == NULL || a->next != NULL)
		return false;
	if (imaparg_is_atom(a, "NIL"))
		return true;
	if (a->kind != IMAPARG_LIST)
		return false;
	for (const struct imaparg *e = a->child; e; e = e->next, n++) {
		bool field = n % 2 == 0;

		if (n >= 2 * ID_MAX_PAIRS)
			return false;
		if (e->kind == IMAPARG_STRING && e->len <= (field ? ID_FIELD_MAX : ID_VALUE_MAX))
			continue;
		if (!field && imaparg_is_atom(e, "NIL"))
			continue;
		return false;
	}
	return n % 2 == 0;
}

static void cmd_id(struct imap_login *il)
{
	if (!id_args_ok(il->cmd->args)) {
		imap_login_reply(il, "%s BAD Error in IMAP command ID: Invalid parameters.",
				 il->cmd->tag);
		il->bad_commands++;
		return;
	}
	imap_login_reply(il, "* ID (\"name\" \"Postern\")");
	imap_login_reply(il, "%s OK ID completed.", il->cmd->tag);
}

static void cmd_enable(struct imap_login *il)
{
	imap_login_reply(il, "%s BAD ENABLE is not allowed before authentication.", il->cmd->tag);
	il->bad_commands++;
}

static const struct {
	const char *name;
	void (*run)(struct imap_login *il);
} commands[] = {
	{ "CAPABILITY", cmd_capability }, { "NOOP", cmd_noop }, { "LOGOUT", cmd_logout },
	{ "STARTTLS", cmd_starttls }, { "ID", cmd_id }, { "LOGIN", cmd_login },
	{ "AUTHENTICATE", cmd_authenticate }, { "ENABLE", cmd_enable },
};

void imap_login_dispatch(struct imap_login *il)
{
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		if (strcmp(il->cmd->name, commands[i].name) == 0) {
			commands[i].run(il);
			break;
		}
		if (i + 1 == ARRAY_LEN(commands)) {
			imap_login_reply(il, "%s BAD Error in IMAP command received by server.",
					 il->cmd->tag);
			il->bad_commands++;
		}
	}
	if (il->bad_commands >= IMAP_LOGIN_MAX_BAD && !il->done) {
		imap_login_reply(il, "* BYE Too many invalid IMAP commands.");
		il->reason = "Too many invalid commands";
		il->done = true;
	}
}
