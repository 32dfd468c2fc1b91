/*
 * pop3_login.h: what the files of postern-pop3-login share (issue 7; DESIGN.md §1). One
 * process serves one client at a time, chrooted into the empty directory as mail_owner:
 * the POP3 AUTHORIZATION state (RFC 1939 §4, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH),
 * then the hand-off to the user's session (postern-pop3), whose bytes it proxies.
 * Everything that is not POP3 grammar (TLS, SASL, authd, master, the proxy, the log lines)
 * is lib/login.h, shared with imap-login.
 *
 * Limits before login (DESIGN.md §9): RFC 2449 allows a command 255 octets with its CRLF; we
 * take up to POP3_LOGIN_LINE_MAX, and an AUTH or PASS line (SASL initial responses, long
 * passwords) up to POP3_LOGIN_LONG_LINE_MAX. A longer line gets "-ERR Input line too long."
 * and the connection is closed. login_idle_timeout per read; POP3_LOGIN_MAX_BAD unknown or
 * malformed commands and POP3_LOGIN_MAX_AUTH_FAILURES refused logins end the connection.
 */
#ifndef POSTERN_POP3_LOGIN_H
#define POSTERN_POP3_LOGIN_H

#include <stdbool.h>
#include <sys/socket.h>

#include "buf.h"
#include "login.h"

#define POP3_LOGIN_LINE_MAX		1024
#define POP3_LOGIN_LONG_LINE_MAX	(LOGIN_SASL_LINE_MAX + 64)
#define POP3_LOGIN_MAX_BAD		10
#define POP3_LOGIN_MAX_AUTH_FAILURES	3
#define POP3_LOGIN_UNAVAILABLE \
	"-ERR [SYS/TEMP] Internal error occurred. Refer to server log for more information."

struct pop3_login {
	struct login_client lc;
	/* Client bytes read and not yet used: the rest of the current line, the commands the
	 * client pipelined behind it (a successful login forwards them to the session), the
	 * lines of a SASL exchange. */
	struct buf in;
	char line[POP3_LOGIN_LONG_LINE_MAX + 1];	/* the current command, NUL-terminated */
	size_t line_len;
	char user[POP3_LOGIN_LINE_MAX + 1];		/* from USER, for PASS */
	bool have_user;
	int bad_commands;
	bool done;			/* close the connection after this command */
	const char *reason;		/* for the disconnect line */
};

/* client.c */
void pop3_login_serve(struct login_conf *cf, int fd, const struct sockaddr *peer);
/* Queue one response line (CRLF added). */
void pop3_login_reply(struct pop3_login *pl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The next line of input without its CRLF into buf[size]: 1, 0 when the client is gone
 * (pl->reason set), -1 when it is longer than limit (or size - 1). */
int pop3_login_read_line(struct pop3_login *pl, char *buf, size_t size, size_t limit,
			 size_t *len);
/* Wipe and forget everything read so far (STLS: bytes sent in the clear are dropped). */
void pop3_login_discard_input(struct pop3_login *pl);

/* commands.c: the AUTHORIZATION-state commands. */
void pop3_login_dispatch(struct pop3_login *pl);

/* auth.c */
void cmd_user(struct pop3_login *pl, const char *args);
void cmd_pass(struct pop3_login *pl, const char *args);
void cmd_auth(struct pop3_login *pl, const char *args);

#endif
