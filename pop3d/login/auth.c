/*
 * auth.c: USER and PASS (RFC 1939 §7) and AUTH (RFC 5034, with an initial response; a bare
 * "AUTH" lists the mechanisms, the old discovery Outlook still uses), PLAIN and LOGIN,
 * verified by authd through lib/login.h. Passwords are accepted only where
 * login_plaintext_allowed says so; elsewhere "-ERR [AUTH] Plaintext authentication
 * disallowed ..." (and Dovecot's "tried to use disallowed plaintext auth" on the disconnect
 * line, which fail2ban counts).
 *
 * Answers (RFC 2449 RESP-CODES, RFC 3206 AUTH-RESP-CODE): success hands the client to its
 * session, whose first line is "+OK Logged in."; "-ERR [AUTH] Authentication failed." for a
 * wrong user or password (after authd's growing delay), and after
 * POP3_LOGIN_MAX_AUTH_FAILURES of them the connection is closed; "-ERR [SYS/TEMP]" when
 * authd or the session cannot be reached.
 */
#include <string.h>
#include <strings.h>

#include "log.h"
#include "pop3_login.h"
#include "util.h"

static bool refuse_plaintext(struct pop3_login *pl)
{
	if (login_plaintext_allowed(&pl->lc))
		return false;
	login_note_plaintext_refused(&pl->lc);
	pop3_login_reply(pl, "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
			 "(SSL/TLS) connections.");
	pl->bad_commands++;
	return true;
}

static void start_session(struct pop3_login *pl, const struct login_result *res)
{
	(void)login_session(&pl->lc, res, "", buf_cstr(&pl->in), pl->in.len,
			    POP3_LOGIN_UNAVAILABLE "\r\n");
	pl->done = true;
}

static void answer(struct pop3_login *pl, enum login_auth r, const struct login_result *res)
{
	switch (r) {
	case LOGIN_AUTH_OK:
		start_session(pl, res);
		return;
	case LOGIN_AUTH_FAILED:
		pop3_login_reply(pl, "-ERR [AUTH] Authentication failed.");
		if (pl->lc.auth_failures >= POP3_LOGIN_MAX_AUTH_FAILURES) {
			pl->reason = "Too many invalid authentication attempts";
			pl->done = true;
		}
		return;
	case LOGIN_AUTH_TEMPFAIL:
		pop3_login_reply(pl, "-ERR [SYS/TEMP] Temporary authentication failure. "
				 "Try again later.");
		return;
	case LOGIN_AUTH_CANCELLED:
		pop3_login_reply(pl, "-ERR Authentication aborted by client.");
		return;
	case LOGIN_AUTH_BAD_BASE64:
		pop3_login_reply(pl, "-ERR Invalid base64 data in SASL response.");
		return;
	case LOGIN_AUTH_UNSUPPORTED:
		pop3_login_reply(pl, "-ERR Unsupported authentication mechanism.");
		pl->bad_commands++;
		return;
	case LOGIN_AUTH_TOOLONG:
		pop3_login_reply(pl, "-ERR Input line too long.");
		pl->reason = "Input line too long";
		pl->done = true;
		return;
	case LOGIN_AUTH_GONE:
		pl->done = true;
		return;
	}
}

void cmd_user(struct pop3_login *pl, const char *args)
{
	if (refuse_plaintext(pl))
		return;
	if (*args == '\0' || str_copy(pl->user, sizeof(pl->user), args) < 0) {
		pop3_login_reply(pl, "-ERR Invalid user name.");
		pl->bad_commands++;
		return;
	}
	pl->have_user = true;
	pop3_login_reply(pl, "+OK");
}

/* RFC 1939: the password is the rest of the line, spaces and all. */
void cmd_pass(struct pop3_login *pl, const char *args)
{
	static struct login_result res;
	enum login_auth r;

	if (refuse_plaintext(pl))
		return;
	if (!pl->have_user) {
		pop3_login_reply(pl, "-ERR No username given.");
		pl->bad_commands++;
		return;
	}
	pl->have_user = false;
	memset(&res, 0, sizeof(res));
	r = login_auth_userpass(&pl->lc, pl->user, args, "PLAIN", &res);
	answer(pl, r, &res);
}

/* login_line_fn for SASL responses: lines from pl->in, read from the client as needed. */
static int sasl_line(struct login_client *c, void *arg, char *buf, size_t size, size_t *len)
{
	(void)c;
	return pop3_login_read_line(arg, buf, size, 0, len);
}

/* "AUTH" alone: the mechanisms a password may be sent with now, one a line. */
static void list_mechanisms(struct pop3_login *pl)
{
	pop3_login_reply(pl, "+OK");
	if (login_plaintext_allowed(&pl->lc)) {
		pop3_login_reply(pl, "PLAIN");
		pop3_login_reply(pl, "LOGIN");
	}
	pop3_login_reply(pl, ".");
}

void cmd_auth(struct pop3_login *pl, const char *args)
{
	static struct login_result res;
	const char *sp = strchr(args, ' ');
	char mech[32];
	enum login_auth r;

	if (*args == '\0') {
		list_mechanisms(pl);
		return;
	}
	if ((sp && (strchr(sp + 1, ' ') || sp[1] == '\0')) ||
	    str_fmt(mech, sizeof(mech), "%.*s", (int)(sp ? (size_t)(sp - args) : strlen(args)),
		    args) < 0) {
		pop3_login_reply(pl, "-ERR Invalid arguments.");
		pl->bad_commands++;
		return;
	}
	if (strcasecmp(mech, "PLAIN") != 0 && strcasecmp(mech, "LOGIN") != 0) {
		pop3_login_reply(pl, "-ERR Unsupported authentication mechanism.");
		pl->bad_commands++;
		return;
	}
	if (refuse_plaintext(pl))
		return;
	/* The initial response stays in pl->line; the exchange reads further lines from
	 * pl->in, and the command loop wipes pl->line afterwards. */
	r = login_sasl(&pl->lc, mech, sp ? sp + 1 : NULL, sasl_line, pl, &res);
	answer(pl, r, &res);
}
