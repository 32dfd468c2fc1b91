/*
 * session.h: the state shared by the files of postern-pop3, the POP3 session (issue 7).
 * One process serves one logged-in client: master started it for the user, it chrooted into
 * the user's home and dropped to the user's uid (lib/sessionproto.h), and its fd 0 is the
 * connection to pop3-login, which proxies the client (and its TLS).
 *
 * The maildrop (RFC 1939 §5) is the INBOX as it was when the session began: message n is the
 * n-th message of the folder view opened then, which is never synced again until QUIT, so
 * numbers, sizes and UIDLs stay fixed for the whole session. DELE and RETR only mark
 * (msgs[]); the UPDATE state (QUIT) writes \Seen and removes the deleted messages. A
 * session that ends any other way changes nothing.
 */
#ifndef POSTERN_POP3_SESSION_H
#define POSTERN_POP3_SESSION_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "config.h"
#include "mailstore.h"

#define POP3_LINE_MAX		1024		/* RFC 2449 says 255 with CRLF; we are lenient */
#define POP3_IDLE_TIMEOUT_MS	(10 * 60 * 1000)	/* RFC 1939 §3: at least 10 minutes */
#define POP3_OUT_FLUSH		65536
#define POP3_FILE_CHUNK		65536
#define POP3_MAX_BAD		20		/* bad commands in a row (Dovecot's) */
#define POP3_LOCK_WAIT_MS	3000		/* for a session that is just ending */
#define POP3_IN_MAX		(POP3_LINE_MAX + 2 + 16384)
#define POP3_OUT_MAX		(POP3_OUT_FLUSH + 2 * POP3_FILE_CHUNK + 64)

/* The session lock (lock.c): Dovecot's pop3_lock_session file, see there. */
struct pop3_lock {
	int fd;
	char path[4096];
	dev_t dev;
	ino_t ino;
	int64_t touched;		/* mono ms of the last refresh */
};

struct pop3_msg {
	uint64_t size;			/* RFC 1939 size: CRLF line ends */
	bool deleted;			/* DELE */
	bool retrieved;			/* RETR: \Seen at QUIT (Dovecot does the same) */
};

struct session {
	struct config *cfg;
	const char *user;		/* the login name, for logs */
	bool password_ok;		/* USER and SASL were offered before login (for CAPA) */
	const char *uidl_format;
	int fd;				/* the client, through the login process */
	struct buf in, out;
	char line[POP3_LINE_MAX + 1];
	size_t line_len;
	struct mstore *store;
	struct mfolder *inbox;
	struct pop3_lock lock;
	struct pop3_msg *msgs;		/* msgs[n - 1] is message n */
	uint32_t count, deleted_count;
	uint64_t total_size, deleted_size;
	uint32_t top_count, retr_count;
	uint64_t top_bytes, retr_bytes;
	int bad_in_a_row;
	bool quit;			/* leave the command loop */
	bool gone;			/* writing to the client failed */
	bool delete_success;		/* QUIT's UPDATE went through (for the log line) */
	const char *end;		/* what ended the session, for the log line */
};

extern struct session S;
extern volatile sig_atomic_t stop_requested;	/* SIGTERM from master */

/* io.c: the client connection. */
/* The next command line into S.line: 1, 0 on EOF, timeout or stop (S.end set), -1 when
 * longer than POP3_LINE_MAX. */
int io_read_line(void);
void out_raw(const void *p, size_t n);
/* The output buffer with room for `more` bytes appended directly (flushed first if need
 * be); NULL when the client is gone. */
struct buf *out_room(size_t more);
void out_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void out_flush(void);
/* Bytes written so far (what Dovecot's retr= and top= byte counts measure). */
uint64_t out_offset(void);

/* commands.c */
void dispatch(void);
/* The current command answered -ERR (counts towards POP3_MAX_BAD). */
void command_failed(void);
/* Parse a message number at args (RFC 1939 "msg"): its index, and *rest after it (and
 * after the spaces that follow); -1 after answering -ERR. then_space: more must follow. */
int64_t msgnum_arg(const char *args, bool then_space, const char **rest);

/* retr.c */
void cmd_retr(const char *args);
void cmd_top(const char *args);

/* update.c: QUIT, the UPDATE state. */
void cmd_quit(const char *args);

/* lock.c */
/* Take the lock in dir, waiting up to wait_ms for a session that is ending: 1 taken,
 * 0 held by a live session, -1 error (err). */
int pop3_lock_take(struct pop3_lock *lk, const char *dir, int wait_ms, char *err,
		   size_t errlen);
/* Refresh its time stamp if due (Dovecot deems an untouched lock stale after 5 minutes). */
void pop3_lock_touch(struct pop3_lock *lk);
void pop3_lock_release(struct pop3_lock *lk);

#endif
