/*
 * commands.c: the POP3 commands of the AUTHORIZATION state (RFC 1939 §4, §7): CAPA (RFC
 * 2449), STLS (RFC 2595), QUIT, and USER, PASS and AUTH (auth.c). Anything else, NOOP and
 * the TRANSACTION commands included, is "-ERR Unknown command." and counts towards
 * POP3_LOGIN_MAX_BAD.
 *
 * CAPA lists STLS while TLS is available and not yet active, and USER and "SASL PLAIN
 * LOGIN" only where a password may be sent (TLS, or pop3_allow_plaintext_auth = yes), so a
 * client that follows CAPA never offers one in the clear. The texts follow Dovecot's.
 */
#include <string.h>
#include <strings.h>

#include "log.h"
#include "pop3_login.h"
#include "util.h"

static void cmd_capa(struct pop3_login *pl, const char *args)
{
	(void)args;
	pop3_login_reply(pl, "+OK");
	pop3_login_reply(pl, "TOP");
	pop3_login_reply(pl, "UIDL");
	pop3_login_reply(pl, "RESP-CODES");
	pop3_login_reply(pl, "PIPELINING");
	pop3_login_reply(pl, "AUTH-RESP-CODE");
	if (!pl->lc.tls && login_tls_available(&pl->lc))
		pop3_login_reply(pl, "STLS");
	if (login_plaintext_allowed(&pl->lc)) {
		pop3_login_reply(pl, "USER");
		pop3_login_reply(pl, "SASL PLAIN LOGIN");
	}
	pop3_login_reply(pl, "IMPLEMENTATION Postern");
	pop3_login_reply(pl, ".");
}

static void cmd_quit(struct pop3_login *pl, const char *args)
{
	(void)args;
	pop3_login_reply(pl, "+OK Logging out");
	pl->reason = "Aborted login by logging out";
	pl->done = true;
}

/* RFC 2595 §4: whatever the client sent after STLS in the clear is dropped, never read as if
 * it had come through TLS (lib/login.c's handshake drops the stream's buffer too). */
static void cmd_stls(struct pop3_login *pl, const char *args)
{
	(void)args;
	if (pl->lc.tls) {
		pop3_login_reply(pl, "-ERR TLS is already active.");
		return;
	}
	if (!login_tls_available(&pl->lc)) {
		pop3_login_reply(pl, "-ERR TLS support isn't enabled.");
		return;
	}
	pop3_login_reply(pl, "+OK Begin TLS negotiation now.");
	pop3_login_discard_input(pl);
	pl->have_user = false;
	if (login_starttls(&pl->lc) < 0) {
		pl->reason = "TLS handshaking failed";
		pl->done = true;
	}
}

static const struct {
	const char *name;
	void (*run)(struct pop3_login *pl, const char *args);
} commands[] = {
	{ "CAPA", cmd_capa }, { "QUIT", cmd_quit }, { "STLS", cmd_stls },
	{ "USER", cmd_user }, { "PASS", cmd_pass }, { "AUTH", cmd_auth },
};

void pop3_login_dispatch(struct pop3_login *pl)
{
	char *args = strchr(pl->line, ' ');
	size_t namelen = args ? (size_t)(args - pl->line) : pl->line_len, i;

	args = args ? args + 1 : pl->line + pl->line_len;
	for (i = 0; i < ARRAY_LEN(commands); i++)
		if (strlen(commands[i].name) == namelen &&
		    strncasecmp(pl->line, commands[i].name, namelen) == 0)
			break;
	if (i < ARRAY_LEN(commands)) {
		commands[i].run(pl, args);
	} else {
		pop3_login_reply(pl, "-ERR Unknown command.");
		pl->bad_commands++;
	}
	if (pl->bad_commands >= POP3_LOGIN_MAX_BAD && !pl->done) {
		pop3_login_reply(pl, "-ERR Too many invalid commands.");
		pl->reason = "Too many invalid commands";
		pl->done = true;
	}
}
