/*
 * sendmail.h: what the parts of postern-sendmail (admin/sendmail/) share. The program is
 * sendmail(1), mailq(1) and newaliases(1) for Postern, modelled on Postfix's sendmail: it
 * runs as the invoking user, setgid setgid_group, and its only privileged act is writing one
 * complete queue file into maildrop/ per message (maildrop.c). Everything else runs with the
 * extra group suspended (privs.c).
 */
#ifndef POSTERN_SENDMAIL_H
#define POSTERN_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "config.h"
#include "queuefile.h"

/* Exit statuses are sysexits.h's, as with Sendmail and Postfix. */
#include <sysexits.h>

#define SM_MAX_RCPTS	QF_MAX_RCPTS

enum sm_mode {
	SM_DELIVER,	/* -bm: read a message, queue it */
	SM_SMTP,	/* -bs: SMTP on stdin/stdout */
	SM_MAILQ,	/* -bp, or run as mailq: exec postern mailq */
	SM_NEWALIASES,	/* -bi, -I, or run as newaliases */
	SM_FLUSH,	/* -q: exec postern flush */
	SM_NOTHING,	/* -qINTERVAL: accepted and ignored */
};

/* A list of validated envelope addresses, duplicates (ignoring case) dropped. */
struct sm_rcpts {
	char **addr;
	size_t n, cap;
};

/* One piece of the message to write: a range of the input or of added text. */
struct sm_piece {
	const char *p;
	size_t len;
};

struct sm_message {
	struct buf input;	/* what was read, CRLF line ends */
	struct buf added;	/* headers postern-sendmail adds; pieces point into it */
	struct sm_piece *piece;
	size_t npiece, cap;
	uint64_t size;		/* sum of the pieces */
	bool eightbit;		/* a byte >= 0x80 occurs */
};

struct sendmail {
	const char *prog;	/* "sendmail", "mailq" or "newaliases", for messages */
	enum sm_mode mode;
	/* options */
	bool extract;		/* -t */
	bool dot_ends;		/* no -i: a lone "." line ends the message */
	int verbose;		/* -v */
	const char *sender_arg;	/* -f/-r as given */
	char *sender;		/* -f/-r, validated; "" = null sender; NULL = default */
	const char *fullname;	/* -F */
	unsigned notify;	/* -N, QF_NOTIFY_* */
	enum qf_ret ret;	/* -R */
	const char *envid;	/* -V */
	bool body_8bit;		/* -B 8BITMIME */
	const char *conf_path;	/* -C, POSTERN_CONFIG, or the default */
	bool conf_given;
	char **args;		/* recipient arguments, parsed once the configuration is read */
	int nargs;
	/* configuration */
	struct config *cfg;
	const char *myhostname, *myorigin;
	uint64_t size_limit;
	/* the invoking user */
	uid_t uid;
	char *login;		/* NULL if the uid has no passwd entry */
	char *gecos_name;	/* full name from the passwd entry, "" if none */
};

/* main.c */
__attribute__((noreturn, format(printf, 3, 4)))
void sm_die(const struct sendmail *sm, int status, const char *fmt, ...);
void sm_warn(const struct sendmail *sm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* options.c: the command line into sm (exits EX_USAGE on a bad option); options_finish
 * validates what needs the configuration (-f). */
void options_parse(struct sendmail *sm, int argc, char **argv);
void options_finish(struct sendmail *sm);

/* privs.c */
void privs_init(void);		/* first thing in main: fds 0-2, environment, signals */
bool privs_setgid(void);	/* running with an extra effective group */
void privs_suspend(void);	/* effective gid = real gid (can be resumed) */
void privs_resume(void);	/* effective gid = the set-group-ID again */
void privs_drop(const struct sendmail *sm);	/* for good, verified; exits on failure */
void config_load(struct sendmail *sm);	/* trusted configuration or exit */
__attribute__((noreturn))
void exec_postern(struct sendmail *sm, const char *command);

/* addrlist.c */
/* Call fn for each address (addr-spec, display names, comments and groups removed) in an
 * RFC 5322 address list; quotes around a plain local part are dropped. An empty angle
 * address "<>" is passed as "". */
void addrlist_each(const char *text, size_t len, void (*fn)(void *arg, const char *addr),
		   void *arg);
/* Validate addr (bare names get @myorigin) into out[outlen]; -1 if malformed. */
int addr_canon(const struct sendmail *sm, const char *addr, char *out, size_t outlen);
/* Add every address of text to r; -1 with the bad address in bad[badlen]. */
int rcpts_add_list(const struct sendmail *sm, struct sm_rcpts *r, const char *text,
		   size_t len, char *bad, size_t badlen);
/* Add one validated address (duplicates ignored); -1 if the list is full. */
int rcpts_add(struct sm_rcpts *r, const char *addr);
void rcpts_free(struct sm_rcpts *r);

/* message.c */
void message_init(struct sm_message *m, uint64_t limit);
void message_free(struct sm_message *m);
/* -bm: read the message from stdin into m->input; -1 with errno EMSGSIZE when too large. */
int message_read(const struct sendmail *sm, struct sm_message *m);
/* Look at the headers of m->input: with extract, add the To/Cc/Bcc recipients to r (-1 with
 * the bad address in bad); then lay out the pieces: Received:, the headers without Bcc:,
 * missing From:/Date:/Message-ID:, the body. sender is the envelope sender. */
int message_prepare(const struct sendmail *sm, struct sm_message *m, const char *sender,
		    bool extract, struct sm_rcpts *r, char *bad, size_t badlen);

/* maildrop.c */
struct sm_envelope {
	const char *sender;
	const struct sm_rcpts *rcpts;
	unsigned notify;	/* for every recipient */
	char **orcpt;		/* per recipient or NULL */
	unsigned *rcpt_notify;	/* per recipient or NULL (overrides notify) */
	enum qf_ret ret;
	const char *envid;
	bool eightbit, smtputf8;
};
/* Write the message as a queue file in maildrop/ (".QID", fsync, rename to "QID"); the
 * name into name[namelen]. 0, or -1 with a one-line reason in err: nothing is left
 * behind then. Resumes the extra group for the write and suspends it again. */
int maildrop_write(const struct sendmail *sm, const struct sm_envelope *env,
		   const struct sm_message *m, char *name, size_t namelen, char *err,
		   size_t errlen);

/* input.c: lines from stdin. */
/* Append the next line (without its LF; a CR before it is kept) to line: 1 line ended by
 * LF, 2 last line without LF, 0 end of input, -1 error (errno EMSGSIZE: line's limit). */
int input_line(struct buf *line);
/* Skip to the end of the current line (after an EMSGSIZE). */
void input_skip_line(void);

/* smtp.c: -bs */
int smtp_session(struct sendmail *sm);

/* newaliases.c: -bi */
int newaliases(struct sendmail *sm);

/* The envelope sender for a message: -f, else login@myorigin (exits if there is none). */
const char *default_sender(struct sendmail *sm);

#endif
