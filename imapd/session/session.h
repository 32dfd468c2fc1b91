/*
 * session.h: the state shared by the files of postern-imap, the IMAP session (issue 6).
 * One process serves one logged-in client: master started it for the user, it chrooted
 * into the user's home and dropped to the user's uid (lib/sessionproto.h), and its fd 0 is
 * the connection to the login process, which proxies the client (and its TLS).
 */
#ifndef POSTERN_IMAP_SESSION_H
#define POSTERN_IMAP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "config.h"
#include "imapcmd.h"
#include "mailstore.h"

#define IMAP_IDLE_TIMEOUT_MS	(30 * 60 * 1000)	/* RFC 3501 §5.4: at least 30 min */
#define IMAP_OUT_FLUSH		65536
#define IMAP_MSG_MAX		(64u << 20)		/* largest message read for FETCH */

enum sstate { S_AUTH, S_SELECTED, S_LOGOUT };

struct session {
	struct config *cfg;
	const char *user;		/* the login name, for logs */
	const char *tag0;		/* the LOGIN command's tag: our first response */
	bool tls;
	int fd;				/* the client, through the login process */
	struct imapcmd *cmd;
	struct buf out;
	uint64_t bytes_in, bytes_out;
	enum sstate state;
	struct mstore *store;
	struct mfolder *folder;		/* when selected */
	char folder_name[MS_NAME_MAX + 1];
	bool readonly;
	bool condstore;			/* ENABLEd or implied by a CONDSTORE command */
	bool qresync;			/* ENABLE QRESYNC: VANISHED instead of EXPUNGE */
	bool utf8;			/* ENABLE UTF8=ACCEPT */
	uint32_t reported_exists;	/* what the client has been told */
	uint64_t append_limit;		/* largest APPEND */
	unsigned expunged_count, deleted_count;
};

extern struct session S;

/* io.c: the client connection. */
/* 1: S.cmd holds a command, 2: a syntax error, 3: too big; 0: EOF or idle timeout */
int io_read_command(void);
/* A bare line (IDLE's DONE, SASL continuations): 1, 0 on EOF, -1 too long. */
int io_read_line(const char **line, size_t *len);
void out_str(const char *s);
void out_raw(const void *p, size_t n);
/* A number in decimal (FETCH of a large folder writes several per message: no printf). */
void out_uint(unsigned long long v);
void out_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void out_astring(const char *s);	/* atom, quoted or literal as needed */
void out_nstring(const char *s, size_t len);	/* NIL for NULL */
void out_flush(void);
void reply_tagged(const char *status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void reply_untagged(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wait for input or a change in the selected folder (IDLE): 1 input, 0 folder event,
 * -1 timeout. */
int io_wait(int watch_fd, int timeout_ms);

/* dispatch.c */
void dispatch(void);
const char *capability_string(void);

/* folder helpers (mailbox.c) */
void folder_close(void);
/* Sync the selected folder and tell the client what changed; expunges only when allowed. */
void folder_report_changes(bool allow_expunge);
/* The UIDs of the view, ascending (heap), to find what an operation expunged. */
uint32_t *folder_uids(size_t *n);
/* Report expunges: "* N EXPUNGE" lines, or with QRESYNC one "* VANISHED" of the UIDs in
 * before[] that the view no longer has. */
void report_expunged(const struct mfolder_changes *ch, const uint32_t *before, size_t nbefore);
/* "* VANISHED (EARLIER) set" for the UIDs of set (NULL: 1:uidnext-1) that do not exist. */
void report_vanished_earlier(const struct seqset *set);
/* A message's flags and keywords, space-separated, written to the client. */
void out_flag_list(const struct mmsg *m);
/* Parse a flag list / single flag into system flags and keyword indexes of the folder. */
int parse_flags(const struct imaparg *a, unsigned *flags, uint32_t *keywords, bool create);

/* Command handlers: cmd_*.c. Each gets the first argument (NULL if none). */
void cmd_capability(const struct imaparg *a);
void cmd_noop(const struct imaparg *a);
void cmd_logout(const struct imaparg *a);
void cmd_id(const struct imaparg *a);
void cmd_enable(const struct imaparg *a);
void cmd_namespace(const struct imaparg *a);
void cmd_select(const struct imaparg *a);
void cmd_examine(const struct imaparg *a);
void cmd_create(const struct imaparg *a);
void cmd_delete(const struct imaparg *a);
void cmd_rename(const struct imaparg *a);
void cmd_subscribe(const struct imaparg *a);
void cmd_unsubscribe(const struct imaparg *a);
void cmd_list(const struct imaparg *a);
void cmd_lsub(const struct imaparg *a);
void cmd_status(const struct imaparg *a);
void cmd_append(const struct imaparg *a);
void cmd_check(const struct imaparg *a);
void cmd_close(const struct imaparg *a);
void cmd_unselect(const struct imaparg *a);
void cmd_expunge(const struct imaparg *a);
void cmd_uid_expunge(const struct imaparg *a);
void cmd_search(const struct imaparg *a);
void cmd_uid_search(const struct imaparg *a);
void cmd_fetch(const struct imaparg *a);
void cmd_uid_fetch(const struct imaparg *a);
void cmd_store(const struct imaparg *a);
void cmd_uid_store(const struct imaparg *a);
void cmd_copy(const struct imaparg *a);
void cmd_uid_copy(const struct imaparg *a);
void cmd_move(const struct imaparg *a);
void cmd_uid_move(const struct imaparg *a);
void cmd_idle(const struct imaparg *a);
void cmd_getquota(const struct imaparg *a);
void cmd_getquotaroot(const struct imaparg *a);

/* Sequence sets of the selected folder: uid=true takes UIDs. The result is the list of
 * sequence numbers, ascending (heap). */
uint32_t *resolve_set(const char *set, bool uid, size_t *n);

#endif
