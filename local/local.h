/*
 * local.h: the state and interfaces shared by the files of postern-local, the local delivery
 * agent (issue 5; Postfix's local(8)): system users' mailboxes, aliases_file with its
 * |commands, /files and forwarding (lib/deliverproto.h, lib/deliverreq.h).
 */
#ifndef POSTERN_LOCAL_H
#define POSTERN_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aliases.h"
#include "deliverreq.h"
#include "ipc.h"
#include "ipcserver.h"

#define LOCAL_WRITE_TIMEOUT_MS	(300 * 1000)	/* one mailbox, file or forwarding copy */
#define LOCAL_LOCK_TIMEOUT_MS	(30 * 1000)	/* waiting for a mailbox lock */
#define LOCAL_STALE_LOCK_SECS	500		/* an older dotlock is stale (Postfix's value) */
#define LOCAL_REQUEST_MARGIN_MS	(30 * 1000)	/* finish this long before qmgr gives up */
#define LOCAL_NAME_MAX		256		/* user names, with their NUL */
#define LOCAL_PATH_MAX		4096

struct locald {
	struct ipc_allow allow;			/* root and queue_owner */
	struct aliases_file aliases;		/* aliases_file, re-read when it changes */
	const char *spool;			/* mail_spool_directory */
	const char *home_mailbox;		/* "" (mbox in spool), "Mailbox", "Maildir/" */
	bool home_maildir;			/* home_mailbox ends in '/' */
	const char *default_privs;		/* the user of |command and /file */
	const char *delimiter;			/* recipient_delimiter */
	const char *const *mydestination;
	size_t nmydestination;
	int64_t command_timeout_ms;		/* local_command_timeout */
	long long minimum_uid;
	size_t recursion_limit;			/* alias_recursion_limit */
	size_t expansion_limit;			/* alias_expansion_limit */
	char queue_path[LOCAL_PATH_MAX];	/* $spool_directory/private/queue */
	uid_t forward_uid;			/* mail_owner: who talks to the queue daemon */
	gid_t forward_gid;
	bool have_mail_gid;			/* the group "mail" exists */
	gid_t mail_gid;
	bool dev_mode;				/* -u: no user switches */
};

extern struct locald L;

/* The outcome of one delivery attempt (one target). */
struct lresult {
	int code;			/* SMTP reply code, 0 = none yet */
	char dsn[16];
	char text[DELIVER_TEXT_MAX];
};

void lresult_set(struct lresult *r, int code, const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* 4xx for a failed write, open or lock with errno err: "cannot WHAT: reason". */
void lresult_errno(struct lresult *r, int err, const char *what);

/* A target already delivered in this request (de-duplication across its recipients). */
struct seen {
	char *key;
	struct lresult res;
};

/* One DELIVER request (valid while its frame is) and what the recipients share. */
struct lreq {
	struct deliver_request req;
	const struct ipc_msg *msg;	/* for notify<i> */
	char *headers;			/* the first MSGHEADERS_MAX bytes of the message */
	size_t headers_len;
	int64_t deadline;		/* mono_ms: answer qmgr before this */
	struct seen *seen;
	size_t nseen, seencap;
};

/* The message as a delivery writes it. */
struct msgsrc {
	int fd;				/* the queue file, read with pread */
	off_t off;
	uint64_t len;
	const char *sender;		/* "" = the null sender */
	const char *delivered_to;	/* the Delivered-To: value */
	int64_t deadline;		/* mono_ms: writing it must be over by then */
};

/* conn.c */
extern const struct ipc_server_ops conn_ops;

/* expand.c: one recipient, from alias expansion to its result (logged per target). */
void local_deliver_rcpt(struct lreq *r, struct deliver_rcpt *rc, unsigned notify);

/* format.c: the message rendered for a mailbox or a command, produced piecewise. */
#define FMT_FROM_LINE	0x1u	/* "From sender date" first */
#define FMT_QUOTE_FROM	0x2u	/* ">From " for lines starting "From " */
#define FMT_BLANK_END	0x4u	/* an empty line after the message */
#define FMT_MBOX	(FMT_FROM_LINE | FMT_QUOTE_FROM | FMT_BLANK_END)
#define FMT_MIN_OUT	16	/* the smallest buffer fmt_read fills */

struct fmt;
struct fmt *fmt_new(const struct msgsrc *src, unsigned flags);
/* Up to size (>= FMT_MIN_OUT) bytes: Return-Path:, Delivered-To:, then the message with
 * CRLF as LF, always ending in a line end. 0 at the end, -1 on a read error (errno). */
ssize_t fmt_read(struct fmt *f, char *out, size_t size);
void fmt_free(struct fmt *f);

/* mbox.c: append one message to an mbox file under its locks. */
struct mbox_opts {
	bool create;		/* create it (0600) when missing */
	bool need_dotlock;	/* a PATH.lock that cannot be created is a failure */
	bool allow_devnull;	/* /dev/null is accepted (and written without locks) */
	bool check_owner;	/* it must belong to owner */
	uid_t owner;
};
/* 0 done, or -1 with a 4xx result in res. */
int mbox_append(const char *path, const struct mbox_opts *o, const struct msgsrc *src,
		struct lresult *res);

/* user.c: a system user's mailbox (mbox in the spool, or home_mailbox), in a child that
 * is already that user. */
struct user_job {
	char name[LOCAL_NAME_MAX];
	uid_t uid;
	gid_t gid;
	char home[LOCAL_PATH_MAX];
	struct msgsrc src;
};
void user_deliver(void *arg, struct lresult *res);

/* command.c: |command and /file from aliases, in a child that is already default_privs. */
struct command_job {
	const char *command;		/* or the file's path */
	const char *home;		/* default_privs' home, for $HOME */
	const char *user;		/* default_privs' name */
	const char *rcpt;		/* the alias address: $RECIPIENT, $LOCAL, ... */
	const char *orig;		/* $ORIGINAL_RECIPIENT */
	int64_t timeout_ms;
	struct msgsrc src;
};
void command_deliver(void *arg, struct lresult *res);
void file_deliver(void *arg, struct lresult *res);

/* forward.c: a new queue file for remote targets, in a child that is mail_owner. */
struct forward_job {
	const struct lreq *r;
	const char *const *addrs;
	size_t naddrs;
	unsigned notify;		/* QF_NOTIFY_* of the original recipient */
	struct msgsrc src;		/* delivered_to: the alias that forwards */
};
void forward_deliver(void *arg, struct lresult *res);

/* spawn.c: run fn in a child process that is permanently `who` (no capabilities, root
 * cannot be regained; uid 0 keeps uid 0 with no capability at all), with alarm(2) as a
 * safety net, and collect its result through a pipe. The parent touches no user file. */
struct identity {
	const char *name;
	uid_t uid;
	gid_t gid;
	bool mail_group;	/* also the group "mail" (to create files in /var/mail) */
};
typedef void child_fn(void *arg, struct lresult *res);
void spawn_as(const struct identity *who, int64_t timeout_ms, int keep_fd, child_fn *fn,
	      void *arg, struct lresult *res);

#endif
