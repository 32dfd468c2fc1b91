/*
 * auth.c: LOGIN (RFC 3501 §6.2.3) and AUTHENTICATE (§6.2.2) with SASL-IR (RFC 4959), PLAIN
 * and LOGIN, verified by authd through lib/login.h. Passwords are accepted only where
 * login_plaintext_allowed says so; elsewhere NO [PRIVACYREQUIRED] (and Dovecot's "tried to
 * use disallowed plaintext auth" on the disconnect line, which fail2ban counts).
 *
 * Answers: success hands the client to its session, whose first line is the tagged OK;
 * NO [AUTHENTICATIONFAILED] for a wrong user or password (after authd's growing delay),
 * and after IMAP_LOGIN_MAX_AUTH_FAILURES of them BYE; NO [UNAVAILABLE] when authd or the
 * session cannot be reached; BAD for "*" (cancel) and for a response that is not base64.
 */
#include <stdint.h>
#include <string.h>

#include "imap_login.h"
#include "log.h"
#include "util.h"

static bool refuse_plaintext(struct imap_login *il)
{
	if (login_plaintext_allowed(&il->lc))
		return false;
	login_note_plaintext_refused(&il->lc);
	imap_login_reply(il, "%s NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
			 "non-secure (SSL/TLS) connections.", il->cmd->tag);
	return true;
}

/* A password argument is wiped from the reader's memory once it has been used. */
static void wipe(const struct imaparg *a)
{
	if (a && a->len)
		explicit_bzero((void *)(uintptr_t)a->text, a->len);
}

static void start_session(struct imap_login *il, const char *tag, const struct login_result *res)
{
	char fail[IMAPCMD_TAG_MAX + sizeof(IMAP_LOGIN_UNAVAILABLE) + 4];

	(void)str_fmt(fail, sizeof(fail), "%s %s\r\n", tag, IMAP_LOGIN_UNAVAILABLE);
	(void)login_session(&il->lc, res, tag, buf_cstr(&il->in), il->in.len, fail);
	il->done = true;
}

static void answer(struct imap_login *il, const char *tag, enum login_auth r,
		   const struct login_result *res)
{
	switch (r) {
	case LOGIN_AUTH_OK:
		start_session(il, tag, res);
		return;
	case LOGIN_AUTH_FAILED:
		imap_login_reply(il, "%s NO [AUTHENTICATIONFAILED] Authentication failed.", tag);
		if (il->lc.auth_failures >= IMAP_LOGIN_MAX_AUTH_FAILURES) {
			imap_login_reply(il, "* BYE Too many invalid authentication attempts.");
			il->reason = "Too many invalid authentication attempts";
			il->done = true;
		}
		return;
	case LOGIN_AUTH_TEMPFAIL:
		imap_login_reply(il, "%s NO [UNAVAILABLE] Temporary authentication failure. "
				 "Try again later.", tag);
		return;
	case LOGIN_AUTH_CANCELLED:
		imap_login_reply(il, "%s BAD Authentication aborted by client.", tag);
		return;
	case LOGIN_AUTH_BAD_BASE64:
		imap_login_reply(il, "%s BAD Invalid base64 data in SASL response.", tag);
		return;
	case LOGIN_AUTH_UNSUPPORTED:
		imap_login_reply(il, "%s NO Unsupported authentication mechanism.", tag);
		return;
	case LOGIN_AUTH_TOOLONG:
		imap_login_reply(il, "%s BAD SASL response too long.", tag);
		imap_login_reply(il, "* BYE Command too long.");
		il->reason = "Command too long";
		il->done = true;
		return;
	case LOGIN_AUTH_GONE:
		il->done = true;
		return;
	}
}

static bool is_astring(const struct imaparg *a)
{
	return a && (a->kind == IMAPARG_ATOM || a->kind == IMAPARG_STRING);
}

void cmd_login(struct imap_login *il)
{
	static struct login_result res;
	const struct imaparg *user = il->cmd->args, *pass = user ? user->next : NULL;
	enum login_auth r;

	if (!is_astring(user) || !is_astring(pass) || pass->next) {
		imap_login_reply(il, "%s BAD Error in IMAP command LOGIN: Invalid arguments.",
				 il->cmd->tag);
		il->bad_commands++;
		wipe(pass);
		return;
	}
	if (refuse_plaintext(il)) {
		wipe(pass);
		return;
	}
	memset(&res, 0, sizeof(res));
	r = login_auth_userpass(&il->lc, user->text, pass->text, "PLAIN", &res);
	wipe(pass);
	answer(il, il->cmd->tag, r, &res);
}

/* login_line_fn for SASL responses: lines from il->in, read from the client as needed. */
static int sasl_line(struct login_client *c, void *arg, char *buf, size_t size, size_t *len)
{
	static char chunk[LOGIN_READ_CHUNK];
	struct imap_login *il = arg;

	(void)c;
	for (;;) {
		const char *p = buf_cstr(&il->in), *lf = memchr(p, '\n', il->in.len);
		size_t n;

		if (lf != NULL) {
			n = (size_t)(lf - p);
			if (n > 0 && p[n - 1] == '\r')
				n--;
			if (n >= size)
				return -1;
			memcpy(buf, p, n);
			buf[n] = '\0';
			*len = n;
			buf_consume(&il->in, (size_t)(lf - p) + 1);
			return 1;
		}
		if (il->in.len >= size)
			return -1;
		if (imap_login_read(il, chunk, sizeof(chunk)) <= 0)
			return 0;
	}
}

void cmd_authenticate(struct imap_login *il)
{
	static char tag[IMAPCMD_TAG_MAX + 1], mech[IMAPCMD_NAME_MAX + 1], initial[IMAP_LOGIN_LINE_MAX];
	static struct login_result res;
	const struct imaparg *m = il->cmd->args, *ir = m ? m->next : NULL;
	enum login_auth r;

	if (m == NULL || m->kind != IMAPARG_ATOM || (ir && (ir->kind != IMAPARG_ATOM || ir->next)) ||
	    str_copy(mech, sizeof(mech), m->text) < 0 ||
	    str_copy(initial, sizeof(initial), ir ? ir->text : "") < 0) {
		imap_login_reply(il, "%s BAD Error in IMAP command AUTHENTICATE: Invalid arguments.",
				 il->cmd->tag);
		il->bad_commands++;
		return;
	}
	if (refuse_plaintext(il))
		return;
	(void)str_copy(tag, sizeof(tag), il->cmd->tag);
	/* The exchange reads its lines from il->in; the reader gets them back afterwards. */
	imapcmd_discard(il->cmd);
	il->refeed = true;
	r = login_sasl(&il->lc, mech, ir ? initial : NULL, sasl_line, il, &res);
	explicit_bzero(initial, sizeof(initial));
	answer(il, tag, r, &res);
}
