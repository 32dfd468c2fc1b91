/*
 * imap_login.h: what the files of postern-imap-login share (issue 6; DESIGN.md §1). One
 * process serves one client at a time, chrooted into the empty directory as mail_owner:
 * the pre-authentication IMAP commands, then the hand-off to the user's session, whose
 * bytes it proxies. Everything that is not IMAP grammar (TLS, SASL, authd, master, the
 * proxy, the log lines) is lib/login.h, shared with pop3-login.
 *
 * Limits before login (DESIGN.md §9): a command line of IMAP_LOGIN_LINE_MAX octets, a
 * literal of IMAP_LOGIN_LITERAL_MAX (a password needs far less); a longer one is answered
 * BAD [TOOBIG] and the connection closed. login_idle_timeout (60 s by default, like
 * Dovecot's pre-login timeout) per read; IMAP_LOGIN_MAX_BAD invalid commands and
 * IMAP_LOGIN_MAX_AUTH_FAILURES refused logins end the connection with BYE.
 */
#ifndef POSTERN_IMAP_LOGIN_H
#define POSTERN_IMAP_LOGIN_H

#include <stdbool.h>
#include <sys/socket.h>

#include "buf.h"
#include "imapcmd.h"
#include "login.h"

#define IMAP_LOGIN_LINE_MAX		8192
#define IMAP_LOGIN_LITERAL_MAX		8192
#define IMAP_LOGIN_TOTAL_MAX		(IMAP_LOGIN_LINE_MAX + 2 * IMAP_LOGIN_LITERAL_MAX)
#define IMAP_LOGIN_MAX_BAD		10
#define IMAP_LOGIN_MAX_AUTH_FAILURES	3
#define IMAP_LOGIN_UNAVAILABLE \
	"NO [UNAVAILABLE] Internal error occurred. Refer to server log for more information."

struct imap_login {
	struct login_client lc;
	struct imapcmd *cmd;
	/* The client bytes the command reader holds, mirrored: after a command, the bytes the
	 * client pipelined behind it (for the session, or for a SASL exchange, which reads
	 * them here while the reader is emptied; refeed gives them back afterwards). */
	struct buf in;
	bool refeed;
	int bad_commands;
	bool done;			/* close the connection after this command */
	const char *reason;		/* for the disconnect line */
};

/* client.c */
void imap_login_serve(struct login_conf *cf, int fd, const struct sockaddr *peer);
/* Read more client bytes into il->in (flushing our output first): count, or 0 when the
 * client is gone (il->reason set, "* BYE" sent on a timeout). */
ssize_t imap_login_read(struct imap_login *il, char *chunk, size_t size);
void imap_login_reply(struct imap_login *il, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* commands.c: the pre-authentication commands. */
void imap_login_dispatch(struct imap_login *il);
const char *imap_login_capabilities(const struct imap_login *il);

/* auth.c */
void cmd_login(struct imap_login *il);
void cmd_authenticate(struct imap_login *il);

#endif
