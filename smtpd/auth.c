/*
 * auth.c: SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, verified by
 * authd (lib/authproto.h); smtpd never sees a password hash. Offered only over TLS unless
 * smtpd_tls_auth_only = no (port 25); submission and smtps always need TLS first.
 *
 * Replies: 235 2.7.0 success; 535 5.7.8 failure (and the warning line fail2ban reads);
 * 454 4.7.0 when authd cannot answer; 501 5.7.0 when the client cancels with "*";
 * 501 5.5.2 for a response that is not base64.
 */
#include <string.h>

#include "smtpd.h"
#include "authproto.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

#define AUTH_DECODED_MAX	(SMTP_AUTH_LINE_MAX / 4 * 3 + 3)

bool auth_offered(const struct session *ss)
{
	if (ss->cf->role != ROLE_MX || ss->cf->tls_auth_only)
		return ss->tls;
	return true;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64 (RFC 4648 4): length a multiple of 4, padding only at the end. -1 if bad. */
static ssize_t b64_decode(const char *in, size_t len, unsigned char *out, size_t outsize)
{
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int j = 0; j < 4; j++) {
			v[j] = b64_value((unsigned char)in[i + j]);
			if (in[i + j] == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
			} else if (v[j] < 0 || pad) {
				return -1;
			}
		}
		if (o + 3 > outsize)
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
	}
	return (ssize_t)o;
}

enum { RESP_OK, RESP_CANCEL, RESP_BAD, RESP_GONE };

/* Send a 334 challenge and read the client's base64 answer, decoded into out. */
static int challenge(struct session *ss, const char *b64prompt, unsigned char *out,
		     size_t outsize, size_t *outlen)
{
	struct buf line;
	ssize_t r, d;
	int result = RESP_GONE;

	(void)stream_printf(ss->s, "334 %s\r\n", b64prompt);
	if (reply_flush(ss) < 0)
		return RESP_GONE;
	buf_init(&line, SMTP_LINE_MAX + 1);
	r = stream_readline(ss->s, &line);
	if (r == STREAM_TOOLONG)
		result = RESP_BAD;
	if (r > 0) {
		while (line.len && (line.data[line.len - 1] == '\n' || line.data[line.len - 1] == '\r'))
			line.len--;
		if (line.len == 1 && line.data[0] == '*') {
			result = RESP_CANCEL;
		} else {
			d = b64_decode(line.data, line.len, out, outsize);
			result = d < 0 ? RESP_BAD : RESP_OK;
			*outlen = d < 0 ? 0 : (size_t)d;
		}
	}
	buf_free(&line);
	return result;
}

/* The initial response of "AUTH MECH resp", or a challenge. */
static int first_response(struct session *ss, const struct smtp_cmd *c, const char *prompt,
			  unsigned char *out, size_t outsize, size_t *outlen)
{
	ssize_t d;

	if (!c->has_auth_resp)
		return challenge(ss, prompt, out, outsize, outlen);
	if (strcmp(c->auth_resp, "=") == 0) {
		*outlen = 0;
		return RESP_OK;
	}
	d = b64_decode(c->auth_resp, strlen(c->auth_resp), out, outsize);
	if (d < 0)
		return RESP_BAD;
	*outlen = (size_t)d;
	return RESP_OK;
}

static bool resp_failed(struct session *ss, int r)
{
	if (r == RESP_CANCEL)
		reply(ss, 501, "5.7.0", "Authentication aborted");
	else if (r == RESP_BAD)
		reply(ss, 501, "5.5.2", "Cannot decode response");
	else if (r == RESP_GONE)
		ss->quit = true;
	return r != RESP_OK;
}

/* Ask authd; reply and log. user is for the failure line only. */
static bool verify(struct session *ss, struct ipc_msg *req, const char *mech, const char *user)
{
	static struct ipc_msg rep;
	const char *canon;

	if (ipc_put_str(req, "service", ss->cf->role == ROLE_MX ? "smtp" : "submission") < 0 ||
	    ipc_put_str(req, "mech", mech) < 0 || ipc_put_str(req, "rip", ss->addr) < 0 ||
	    authd_call(ss, req, &rep) < 0 || rep.status == IPC_TEMPFAIL) {
		reply(ss, 454, "4.7.0", "Temporary authentication failure");
		return false;
	}
	canon = ipc_get_str(&rep, "user");
	if (rep.status != IPC_OK || canon == NULL || str_copy(ss->auth_user,
							       sizeof(ss->auth_user), canon) < 0) {
		ss->auth_user[0] = '\0';
		log_sasl_failure(ss, mech, user);
		reply(ss, 535, "5.7.8", "Error: authentication failed: (reason unavailable)");
		return false;
	}
	(void)str_copy(ss->auth_method, sizeof(ss->auth_method), mech);
	reply(ss, 235, "2.7.0", "Authentication successful");
	return true;
}

static bool auth_plain(struct session *ss, const struct smtp_cmd *c)
{
	static unsigned char resp[AUTH_DECODED_MAX];
	static struct ipc_msg req;
	char user[AUTH_MAX_ADDRESS + 1] = "";
	const unsigned char *nul1, *nul2;
	size_t len = 0;
	bool ok;

	if (resp_failed(ss, first_response(ss, c, "", resp, sizeof(resp), &len)))
		return false;
	nul1 = memchr(resp, '\0', len);
	nul2 = nul1 ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - resp)) : NULL;
	if (nul2) {
		size_t ulen = (size_t)(nul2 - nul1 - 1);

		if (ulen < sizeof(user)) {
			memcpy(user, nul1 + 1, ulen);
			user[ulen] = '\0';
		}
	}
	ipc_msg_init(&req, AUTH_REQ_AUTH, ++ss->ipc_id);
	if (nul2 == NULL || ipc_put_bytes(&req, "resp", resp, len) < 0) {
		log_sasl_failure(ss, "PLAIN", user);
		reply(ss, 535, "5.7.8", "Error: authentication failed: (reason unavailable)");
		return false;
	}
	ok = verify(ss, &req, "PLAIN", user);
	explicit_bzero(resp, sizeof(resp));
	explicit_bzero(req.payload, req.plen);	/* the password is in there */
	return ok;
}

static bool auth_login(struct session *ss, const struct smtp_cmd *c)
{
	static unsigned char user[AUTH_DECODED_MAX], pass[AUTH_DECODED_MAX];
	static struct ipc_msg req;
	size_t ulen = 0, plen = 0;
	bool ok;

	/* "Username:" and "Password:" in base64, as every LOGIN client expects. */
	if (resp_failed(ss, first_response(ss, c, "VXNlcm5hbWU6", user, sizeof(user) - 1, &ulen)))
		return false;
	user[ulen] = '\0';
	if (resp_failed(ss, challenge(ss, "UGFzc3dvcmQ6", pass, sizeof(pass) - 1, &plen)))
		return false;
	pass[plen] = '\0';
	ipc_msg_init(&req, AUTH_REQ_AUTH, ++ss->ipc_id);
	if (memchr(user, '\0', ulen) || memchr(pass, '\0', plen) || ulen > AUTH_MAX_ADDRESS ||
	    plen > AUTH_MAX_PASSWORD || ipc_put_str(&req, "user", (char *)user) < 0 ||
	    ipc_put_str(&req, "pass", (char *)pass) < 0) {
		log_sasl_failure(ss, "LOGIN", memchr(user, '\0', ulen) ? "" : (char *)user);
		reply(ss, 535, "5.7.8", "Error: authentication failed: (reason unavailable)");
		return false;
	}
	explicit_bzero(pass, sizeof(pass));
	ok = verify(ss, &req, "LOGIN", (char *)user);
	explicit_bzero(req.payload, req.plen);	/* the password is in there */
	return ok;
}

void cmd_auth(struct session *ss, const struct smtp_cmd *c)
{
	bool ok = false;

	if (!auth_offered(ss)) {
		if (ss->cf->role != ROLE_MX)
			reply(ss, 530, "5.7.0", "Must issue a STARTTLS command first");
		else
			reply(ss, 503, "5.5.1", "Error: authentication not enabled");
	} else if (!ss->helo_seen) {
		reply(ss, 503, "5.5.1", "Error: send HELO/EHLO first");
	} else if (ss->auth_user[0]) {
		reply(ss, 503, "5.5.1", "Error: already authenticated");
	} else if (ss->txn.active) {
		reply(ss, 503, "5.5.1", "Error: MAIL transaction in progress");
	} else if (strcmp(c->arg, "PLAIN") == 0) {
		ok = auth_plain(ss, c);
	} else if (strcmp(c->arg, "LOGIN") == 0) {
		ok = auth_login(ss, c);
	} else {
		reply(ss, 504, "5.5.4", "Unsupported authentication mechanism");
	}
	count_cmd(ss, CNT_AUTH, ok);
}
