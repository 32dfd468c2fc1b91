/*
 * sessionargs.h: the argument vector master gives a mail session program (postern-imap,
 * postern-pop3; lib/sessionproto.h) and the one derived fact every session needs from it:
 * where the user's Maildir is once the session has chrooted into the home.
 *
 *     -c CONF -s SERVICE -U USER -u UID -g GID -H HOME -M MAIL -q QUOTA -r RIP -l LIP
 *     -t TAG -T (when TLS) -m METHOD [-P FD]
 * -P comes when fd 0 is the client's own connection (no TLS: the login process handed it
 * over and left) and the client had already sent more: those bytes wait in pipe FD.
 *
 * The mail location (authd's "mail" column, Dovecot's mail_location syntax) is "~/Maildir"
 * when empty, may carry a "maildir:" prefix, and is either "~/PATH" or an absolute path
 * inside HOME; inside the chroot it becomes "/PATH". Anything else, or a ".." component,
 * is refused (master checked it too: this is the session's own guard).
 */
#ifndef POSTERN_SESSIONARGS_H
#define POSTERN_SESSIONARGS_H

#include <stdbool.h>
#include <stddef.h>

struct session_args {
	const char *conf, *service, *user, *home, *mail, *tag, *rip, *lip, *method;
	long long uid, gid, quota;	/* -1 when missing or malformed (quota: 0) */
	int prefix_fd;			/* -P: a pipe holding client input to read first, or -1 */
	bool tls;
};

/* Parse argv; fatal (with a usage line naming prog) when -c, -U, -u, -g or -H is missing or
 * malformed, or HOME is not absolute. Missing strings are "" (tag, rip, lip, method, mail). */
void session_args_parse(int argc, char **argv, struct session_args *a, const char *prog);

/* The Maildir's path inside the chroot ("/Maildir"): 0, or -1 with a reason in err. */
int session_maildir(const struct session_args *a, char *out, size_t outlen, char *err,
		    size_t errlen);

/* The client's bytes the login process had already read (-P), appended to out (whose
 * limit bounds them); the pipe is closed. 0, or -1 if they do not fit or cannot be read. */
struct buf;
int session_read_prefix(struct session_args *a, struct buf *out);

#endif
