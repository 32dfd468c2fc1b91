/*
 * queuefile.h: the queue file, one per message, shared by the queue daemon, smtpd (which
 * writes the message into an fd the queue daemon gives it) and qmgr (which reads it and
 * records each recipient's fate in place). Also queue ids and their hashed subdirectories.
 *
 * FORMAT (version 1). A file is a sequence of records, each
 *
 *	type (1 byte) | length (4 bytes, big-endian, payload bytes) | payload
 *
 * in exactly this order (the encoding is canonical: the reader refuses anything else):
 *
 *	'V' magic        "POSTERN-QUEUE 1" (15 bytes), always the first record
 *	'I' queue id     QF_QID_LEN characters, see qid_valid()
 *	'T' arrival      8 bytes: milliseconds since the epoch, >= 0
 *	'S' sender       0..QF_MAX_ADDR bytes; empty is the null sender <>
 *	'A' client addr  0..QF_MAX_CLIENT_ADDR bytes (empty for local submission)
 *	'N' client name  0..QF_MAX_HOSTNAME bytes
 *	'H' helo         0..QF_MAX_HOSTNAME bytes
 *	'U' auth user    1..QF_MAX_ADDR bytes, optional
 *	'L' size         8 bytes: the size the client announced (SIZE=), 0 if none
 *	'B' body type    1 byte: enum qf_body
 *	'F' flags        4 bytes: QF_F_* bits (QF_F_SMTPUTF8); unknown bits are refused
 *	'W' DSN RET      1 byte: enum qf_ret (FULL or HDRS), optional
 *	'E' DSN ENVID    1..QF_MAX_ENVID bytes, optional
 *	'R' recipient    one per recipient, 1..QF_MAX_RCPTS of them:
 *	                   status block (QF_STATUS_LEN bytes, first, so it can be overwritten
 *	                     in place with one pwrite):
 *	                     +0  state (enum qf_state)      +1  0 (reserved)
 *	                     +2  SMTP reply code, 2 bytes big-endian, 0 or 200..599
 *	                     +4  enhanced status "5.1.1", QF_DSN_LEN bytes, NUL-padded
 *	                     +14 attempts, 2 bytes big-endian
 *	                     +16 last attempt, 8 bytes big-endian, milliseconds, >= 0
 *	                   DSN NOTIFY (1 byte: QF_NOTIFY_* bits, 0 = not given)
 *	                   ORCPT length (2 bytes big-endian, 0 = none) and ORCPT bytes
 *	                   the address (the rest of the payload, 1..QF_MAX_ADDR bytes)
 *	'X' end of envelope, empty
 *	'M' message      the message bytes themselves (RFC 5322, CRLF line ends as received)
 *	'Z' END          8 bytes: the file offset of this record (the length of all the above)
 *
 * and the file ends right after END. Every string is free of NUL and other control
 * characters (C0 and DEL); 8-bit bytes are allowed (SMTPUTF8). A file that is truncated,
 * torn (END not written or not matching) or foreign never validates. Only the status blocks
 * ever change after the file is committed; qmgr decides by the state byte alone.
 *
 * QUEUE IDS: 13 upper-case hex digits of the creation time in microseconds (monotonic
 * within a process, so never repeated there) followed by 6 hex digits of the creating
 * process id (Linux pids fit in 22 bits), e.g. "63A1F0C2D4E5B00012F". Two live processes
 * never share a pid and one process never repeats a time, so ids are unique across
 * processes and restarts (as long as the clock does not step back over a pid reuse). They
 * sort by arrival. The subdirectory is the last two time digits, lowest first: "B/5".
 */
#ifndef POSTERN_QUEUEFILE_H
#define POSTERN_QUEUEFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QF_MAGIC		"POSTERN-QUEUE 1"
#define QF_QID_LEN		19
#define QF_QID_SIZE		(QF_QID_LEN + 1)
#define QF_SUBDIR_SIZE		4		/* "B/5" and its NUL */

#define QF_MAX_ADDR		320		/* sender, recipient, auth user */
#define QF_MAX_ORCPT		500		/* RFC 3461 §4.2 */
#define QF_MAX_ENVID		100		/* RFC 3461 §4.4 */
#define QF_MAX_HOSTNAME		255		/* client name, helo */
#define QF_MAX_CLIENT_ADDR	64
#define QF_MAX_RCPTS		10000
#define QF_MAX_MESSAGE		UINT32_MAX	/* the message record's length field */

#define QF_STATUS_LEN		24
#define QF_DSN_LEN		10		/* "5.123.456" plus padding */
#define QF_HDR_LEN		5		/* type + length */
#define QF_END_LEN		(QF_HDR_LEN + 8)

enum qf_body { QF_BODY_7BIT = 0, QF_BODY_8BITMIME = 1, QF_BODY_BINARYMIME = 2 };
enum qf_ret { QF_RET_NONE = 0, QF_RET_FULL = 1, QF_RET_HDRS = 2 };
enum qf_state {
	QF_PENDING = 0,		/* not tried yet */
	QF_DELIVERED = 1,	/* done: 2xx */
	QF_BOUNCED = 2,		/* done: 5xx or expired; a bounce is owed */
	QF_DEFERRED = 3,	/* tried, 4xx: try again later */
	QF_RETURNED = 4,	/* done: bounced and the bounce is queued (or not owed) */
};
#define QF_STATE_MAX	QF_RETURNED

#define QF_F_SMTPUTF8	0x1u
#define QF_F_KNOWN	QF_F_SMTPUTF8

#define QF_NOTIFY_SUCCESS	0x1u
#define QF_NOTIFY_FAILURE	0x2u
#define QF_NOTIFY_DELAY		0x4u
#define QF_NOTIFY_NEVER		0x8u	/* alone, never with the others */

struct qf_status {
	uint8_t state;			/* enum qf_state */
	uint16_t code;			/* 0 or 200..599 */
	char dsn[QF_DSN_LEN + 1];	/* "" or "x.y.z" with x in 2,4,5 */
	uint16_t attempts;
	int64_t last_ms;		/* 0 = never tried */
};

struct qf_rcpt {
	char *addr;			/* never empty */
	char *orcpt;			/* "" or NULL when none */
	unsigned notify;		/* QF_NOTIFY_* */
	struct qf_status status;	/* the writer writes it as is: zero = pending */
	off_t status_off;		/* set by the reader: file offset of the status block */
};

struct qf_envelope {
	char qid[QF_QID_SIZE];
	int64_t arrival_ms;
	char *sender;			/* "" = null sender */
	char *client_addr, *client_name, *helo;
	char *auth_user;		/* NULL if not authenticated */
	uint64_t size;			/* announced, 0 if none */
	enum qf_body body;
	unsigned flags;			/* QF_F_* */
	enum qf_ret ret;
	char *envid;			/* NULL if none */
	struct qf_rcpt *rcpt;
	size_t nrcpt;
};

/* A validated queue file: its envelope (heap strings, freed by qf_free) and where the
 * message lies, so qmgr can hand an agent the fd with msg_off and msg_len. */
struct qf {
	struct qf_envelope env;
	off_t msg_off;
	uint64_t msg_len;
	uint64_t file_size;
};

/* Queue ids. qid_new writes a fresh id into buf (size >= QF_QID_SIZE; -1 if smaller).
 * qid_valid: 1 if id has exactly the shape qid_new makes (so it is a safe file name).
 * qid_subdir writes "B/5" for a valid id; -1 for an invalid id or a too-small buffer. */
int qid_new(char *buf, size_t size);
int qid_valid(const char *id);
int qid_subdir(const char *id, char *buf, size_t size);

/* Check an envelope against every rule the reader enforces; -1 with a reason in err. */
int qf_envelope_check(const struct qf_envelope *env, char *err, size_t errlen);

/* Writing. begin checks env, then writes everything up to the message record's header on
 * fd, which must be an empty regular file (NULL on error, errno set, reason in err).
 * body appends message bytes (buffered). end patches the message length in, appends END,
 * and frees the writer. After any failure every later call returns -1 and the file is
 * garbage: the caller discards it. abort frees a writer without finishing. The caller
 * fsyncs; the writer does not. errno is kept from the failing call. */
struct qf_writer;
struct qf_writer *qf_writer_begin(int fd, const struct qf_envelope *env, char *err,
				  size_t errlen);
int qf_writer_body(struct qf_writer *w, const void *data, size_t len);
int qf_writer_end(struct qf_writer *w);
void qf_writer_abort(struct qf_writer *w);
/* Message bytes accepted so far (to enforce a size limit while streaming). */
uint64_t qf_writer_msg_len(const struct qf_writer *w);

/* Read and strictly validate a whole queue file (envelope, message length, END against
 * the file size); the message itself is not read. 0 and *out filled, or -1 with *out
 * empty and a reason in err ("record 7 at offset 312: recipient address too long"). */
int qf_open_fd(int fd, struct qf *out, char *err, size_t errlen);
void qf_free(struct qf *q);

/* Overwrite recipient r's status block in place (one pwrite; the caller fsyncs when it
 * wants the result durable): state, reply code, enhanced status ("" for none), time of the
 * attempt; the attempts counter goes up by one. On success r->status is updated too. */
int qf_rcpt_set_status(int fd, struct qf_rcpt *r, enum qf_state state, unsigned code,
		       const char *dsn, int64_t when_ms);
/* Lower level: write a whole status block at off (checked first; -1 EINVAL if bad). */
int qf_status_write(int fd, off_t off, const struct qf_status *st);

const char *qf_state_name(enum qf_state state);	/* "pending", "delivered", ... */

#endif
