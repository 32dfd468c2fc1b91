/*
 * login.h: what the login processes (imap-login, pop3-login; DESIGN.md §1 login/session
 * split, issues 6 and 7) share, so each protocol's directory holds only its own grammar:
 *
 *   - start-up (login_init, in server.h's pre_drop, as root): the TLS keys, and the two
 *     private connections a login process needs, to authd (private/auth) and to master
 *     (private/session). The process is chrooted into the empty directory, where no socket
 *     can be reached, so both are connected before the drop and kept for the life of the
 *     process; they are made with mail_owner's effective ids so that authd and master see
 *     the login user in SO_PEERCRED, not root. They cannot be reconnected from inside the
 *     chroot: when one closes (authd restarted), a watcher thread makes the process exit
 *     once its current client is done (an idle one at once), so master starts a fresh one;
 *     a client already being served when it happens gets "temporarily unavailable".
 *   - per client: addresses, the Dovecot session id, TLS (implicit or STARTTLS), the rule
 *     that passwords travel only inside TLS unless the protocol's *_allow_plaintext_auth;
 *   - the SASL exchange (PLAIN, LOGIN; RFC 4422 with initial response, RFC 4959/5034 "="
 *     and "*"): challenges "+ base64", responses read through the protocol's line reader,
 *     the answer from authd (AUTH_REQ_AUTH with ticket=1, lib/authproto.h);
 *   - the hand-off (lib/sessionproto.h): a socketpair, SESSION_REQ_START to master with the
 *     ticket, then bytes proxied both ways (lib/proxy.h) until either side closes;
 *   - Dovecot's log lines under "imap-login" / "pop3-login", which fail2ban's stock dovecot
 *     filter reads:
 *       Info: Login: user=<U>, method=PLAIN, rip=R, lip=L, mpid=N, TLS, session=<S>
 *       Info: Disconnected: REASON (auth failed, 2 attempts in 5 secs): user=<U>,
 *             method=PLAIN, rip=R, lip=L, TLS, session=<S>
 *     with "(no auth attempts in N secs)", "(tried to use disallowed plaintext auth)" or
 *     "(client didn't finish SASL auth, waited N secs)" as Dovecot writes them. User names
 *     are logged with '<', '>', ',', '(', ')', white space and control characters replaced
 *     by '?', so a crafted name cannot forge a field (a fake rip= for fail2ban to ban).
 */
#ifndef POSTERN_LOGIN_H
#define POSTERN_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "authproto.h"
#include "server.h"
#include "stream.h"
#include "tls.h"

#define LOGIN_READ_CHUNK	16384		/* one client read (stream_read's direct path) */
#define LOGIN_SASL_LINE_MAX	8192		/* one SASL response line, base64 */
#define LOGIN_TICKET_MAX	64
#define LOGIN_START_TIMEOUT_MS	30000		/* from SESSION_REQ_START to the first byte */

/* Per process. */
struct login_conf {
	const char *protocol;		/* "imap" | "pop3": authd's service, the session kind */
	const char *log_tag;		/* "imap-login" | "pop3-login" */
	bool implicit_tls;		/* TLS from the first byte (993, 995) */
	bool allow_plaintext;		/* passwords before STARTTLS */
	int idle_ms;			/* login_idle_timeout */
	struct tls_server *tls;		/* NULL: no TLS available */
	int auth_fd, master_fd;		/* -1 if they could not be connected */
	bool broken;			/* one of them died: exit after the current client */
	uint32_t ipc_id;
};

/* Per client. */
struct login_client {
	struct login_conf *cf;
	struct stream *s;
	char rip[64], lip[64];
	int rport, lport;
	bool tls;
	char session_id[24];		/* Dovecot's: 16 base64 characters */
	int64_t started;		/* mono ms of the connection */
	int auth_failures;		/* attempts authd refused */
	bool sasl_waiting;		/* a SASL exchange waits for the client */
	int64_t sasl_started;
	bool plaintext_refused;		/* asked to log in in the clear and was refused */
	char user[AUTH_MAX_ADDRESS + 1];	/* last attempted user, sanitised for logs */
	char method[16];		/* its mechanism */
	bool logged;			/* the Login: or Disconnected: line is written */
};

/* What a successful authentication gives. */
struct login_result {
	char user[AUTH_MAX_ADDRESS + 1];	/* authd's canonical name */
	char ticket[LOGIN_TICKET_MAX + 1];
	char method[16];
};

enum login_auth {
	LOGIN_AUTH_OK,
	LOGIN_AUTH_FAILED,		/* wrong user or password (authd already delayed it) */
	LOGIN_AUTH_TEMPFAIL,		/* authd unreachable, database down, rate-limited */
	LOGIN_AUTH_CANCELLED,		/* the client answered "*" */
	LOGIN_AUTH_BAD_BASE64,		/* a response that is not base64 */
	LOGIN_AUTH_UNSUPPORTED,		/* unknown mechanism */
	LOGIN_AUTH_TOOLONG,		/* a response line over LOGIN_SASL_LINE_MAX */
	LOGIN_AUTH_GONE,		/* the client closed or timed out mid-exchange */
};

/* ---- process ---------------------------------------------------------------------------- */

/* In pre_drop, as root (or anyone with -u): TLS (fatal if implicit_tls and it cannot be
 * loaded), the private connections, the fields of cf. protocol and log_tag are static. */
void login_init(struct login_conf *cf, struct server *srv, const char *protocol,
		const char *log_tag, bool implicit_tls, bool allow_plaintext);
/* In post_drop: a thread that watches the two connections and, when one closes (authd
 * restarted), makes the process exit as soon as it is idle. */
void login_post_drop(struct login_conf *cf);
/* After a client: if a private connection died, ask the pool skeleton to stop (SIGHUP to
 * ourselves: the process finishes and master starts a fresh one). */
void login_after_client(struct login_conf *cf);

/* A login program's whole main(): the pool skeleton with the start-up above (argument -t:
 * implicit TLS; plaintext_param names the "allow passwords without TLS" parameter) and
 * serve for each client. Never returns. */
typedef void login_serve_fn(struct login_conf *cf, int fd, const struct sockaddr *peer);
__attribute__((noreturn))
void login_main(int argc, char **argv, const char *protocol, const char *log_tag,
		const char *plaintext_param, login_serve_fn *serve);

/* ---- client ----------------------------------------------------------------------------- */

/* Take over fd: addresses, session id, the stream with the idle timeout, and for implicit
 * TLS the handshake. 0, or -1 when the client is gone (logged; call login_client_end). */
int login_client_start(struct login_client *c, struct login_conf *cf, int fd,
		       const struct sockaddr *peer);
void login_client_end(struct login_client *c);
/* After the protocol's go-ahead was queued: flush it, drop any buffered input (STARTTLS
 * injection), handshake. 0, or -1 (logged; the connection is unusable). */
int login_starttls(struct login_client *c);
bool login_tls_available(const struct login_client *c);
/* May a password be sent now? (TLS, or *_allow_plaintext_auth.) */
bool login_plaintext_allowed(const struct login_client *c);
/* Call when refusing a password because of login_plaintext_allowed (for the log line). */
void login_note_plaintext_refused(struct login_client *c);

/* ---- authentication --------------------------------------------------------------------- */

/* The protocol's way to read one SASL response line (without CRLF) into buf: 1, 0 when the
 * client is gone, -1 when the line is longer than size - 1. */
typedef int login_line_fn(struct login_client *c, void *arg, char *buf, size_t size,
			  size_t *len);

/* A whole SASL exchange for mech (case-insensitive; PLAIN or LOGIN). initial is the initial
 * response (RFC 4959 / RFC 5034: base64, "=" for empty) or NULL. Challenges go out as
 * "+ base64\r\n" (the same in IMAP and POP3). Failures are counted and remembered for the
 * disconnect line; the password is wiped from memory afterwards. */
enum login_auth login_sasl(struct login_client *c, const char *mech, const char *initial,
			   login_line_fn *read_line, void *arg, struct login_result *res);
/* A plain user name and password (IMAP LOGIN, POP3 USER/PASS); method names it in logs
 * (Dovecot logs IMAP LOGIN as PLAIN). */
enum login_auth login_auth_userpass(struct login_client *c, const char *user,
				    const char *pass, const char *method,
				    struct login_result *res);

/* ---- the session ------------------------------------------------------------------------ */

/* Start the user's session (SESSION_REQ_START with tag: the IMAP command's tag, "" for POP3)
 * and proxy the client to it until either side closes. pending/npending: client bytes
 * already read after the login command, forwarded first. If the session ends before its
 * first byte (master or its child refused, the ticket did not redeem), fail_reply (a whole
 * protocol line with CRLF) goes to the client. Logs the Login: line once the session
 * answered. 0 when a session ran, -1 otherwise. */
int login_session(struct login_client *c, const struct login_result *res, const char *tag,
		  const void *pending, size_t npending, const char *fail_reply);

/* ---- log lines -------------------------------------------------------------------------- */

/* "Info: Disconnected: REASON (DETAIL): user=<..>, ..." (reason: "Connection closed",
 * "Inactivity", "Aborted login by logging out", ...). Once per client: nothing if a line
 * was already written (a failed TLS handshake, or the session's Login: line). */
void login_log_disconnect(struct login_client *c, const char *reason);
/* Copy a user name for a log field (see above). */
void login_log_user(char *dst, size_t dstlen, const char *src, size_t srclen);

#endif
