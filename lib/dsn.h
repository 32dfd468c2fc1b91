/*
 * dsn.h: delivery status notifications (RFC 3464 bounces, delay warnings and success
 * reports) composed by qmgr for a message it could not (yet) deliver. This module only
 * builds the report as a complete RFC 5322 message in memory; qmgr queues it with the null
 * sender and decides whether one is owed at all (dsn_should_report, dsn_is_bounce).
 *
 * THE REPORT is multipart/report; report-type=delivery-status (RFC 6522) with three parts:
 *   1. text/plain: a human-readable explanation listing every recipient and why;
 *   2. message/delivery-status (RFC 3464): Reporting-MTA, X-Postern-Queue-ID,
 *      X-Postern-Sender, Received-From-MTA, Original-Envelope-Id, Arrival-Date, then one
 *      block per recipient: Final-Recipient, Original-Recipient, Action, Status,
 *      Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until;
 *   3. the original: message/rfc822 (the whole message) or text/rfc822-headers.
 * The whole message is returned only in a failure report, when RET is not HDRS and the
 * message is at most return_limit bytes (Postfix's bounce_size_limit, 50000 by default)
 * and is valid as 8bit MIME content (no NUL, no bare CR or LF, no line over 998 octets);
 * otherwise only its header section (at most DSN_HEADERS_MAX bytes, overlong lines folded).
 * Delay and success reports always return headers only.
 *
 * Every line ends in CRLF and is at most 998 octets: header and report fields are folded
 * at white space near 78 columns, and a run of more than 998 octets without white space is
 * split by inserting a fold (unfolding then shows one extra space there). Diagnostics and
 * remote MTA names are reduced to printable ASCII (control and 8-bit bytes become '?') and
 * cut at DSN_DIAG_MAX bytes. The MIME boundary is random and checked not to occur in any
 * part.
 *
 * 8-BIT AND SMTPUTF8: when the returned original contains 8-bit bytes, part 3 and the
 * top level say Content-Transfer-Encoding: 8bit and the result's needs_8bit is set: qmgr
 * must then send the report with BODY=8BITMIME. When the original arrived with SMTPUTF8,
 * or any recipient, original recipient or the sender is not ASCII, the report follows
 * RFC 6533: part 2 is message/global-delivery-status (8bit, "utf-8" address type for
 * non-ASCII addresses), part 3 message/global or message/global-headers, and the text
 * part is UTF-8. Invalid UTF-8 in addresses is replaced by '?'. needs_smtputf8 is set when
 * the report's own header (To:) carries UTF-8, i.e. for a non-ASCII sender.
 */
#ifndef POSTERN_DSN_H
#define POSTERN_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "queuefile.h"

#define DSN_RETURN_LIMIT_DEFAULT 50000	/* Postfix's bounce_size_limit */
#define DSN_HEADERS_MAX		102400	/* most header bytes returned (header_size_limit) */
#define DSN_DIAG_MAX		2000	/* longest Diagnostic-Code text kept */
#define DSN_LINE_MAX		998	/* RFC 5322 2.1.1, without the CRLF */

enum dsn_action {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,	/* passed on to a system that does not report (RFC 3461) */
	DSN_ACTION_EXPANDED,	/* delivered to an alias or list, which may report later */
};

/* Which report: decides the Subject, the explanation and what part 3 holds. */
enum dsn_kind {
	DSN_KIND_FAILURE,	/* "Undelivered Mail Returned to Sender" */
	DSN_KIND_DELAY,		/* "Delayed Mail (still being retried)" */
	DSN_KIND_SUCCESS,	/* "Successful Mail Delivery Report" */
};

/* The reported message. Strings are borrowed; NULL and "" mean "none" for the optional
 * ones. Use dsn_msg_from_qf to fill it from a queue file. */
struct dsn_msg {
	enum dsn_kind kind;
	const char *myhostname;		/* required: Reporting-MTA, From:, Message-ID */
	const char *qid;		/* required: X-Postern-Queue-ID */
	const char *sender;		/* required, not null: the report goes To: it */
	const char *envid;		/* DSN ENVID, decoded, optional */
	enum qf_ret ret;		/* QF_RET_NONE behaves as FULL (size limited) */
	bool smtputf8;			/* the original came with SMTPUTF8 */
	int64_t arrival_ms;		/* Arrival-Date */
	const char *client_name;	/* Received-From-MTA, optional */
	const char *client_addr;	/* optional */
	int64_t now_ms;			/* Date: of the report; 0 = the wall clock */
	int msg_fd;			/* the original, read with pread; -1: no part 3 */
	off_t msg_off;
	uint64_t msg_len;
	size_t return_limit;		/* bounce_size_limit; 0: headers only, always */
};

/* One reported recipient. Strings borrowed as above. */
struct dsn_rcpt {
	const char *addr;		/* required: Final-Recipient */
	const char *orcpt;		/* ORCPT as queuefile stores it: "rfc822;addr"
					   (decoded; a value without ';' is taken as rfc822) */
	enum dsn_action action;
	const char *status;		/* "5.1.1"; NULL or malformed: 5.0.0, 4.0.0 or 2.0.0
					   by action */
	const char *remote_mta;		/* host name: "Remote-MTA: dns; NAME", optional */
	const char *diag_type;		/* Diagnostic-Code type; NULL = "smtp" */
	const char *diag;		/* "550 5.1.1 no such user", optional */
	int64_t last_attempt_ms;	/* 0 = never tried: field left out */
	int64_t retry_until_ms;		/* Will-Retry-Until for delayed; 0 = left out */
};

struct dsn_result {
	bool needs_8bit;		/* send with BODY=8BITMIME */
	bool needs_smtputf8;		/* send with SMTPUTF8 */
	bool returned_full;		/* part 3 is the whole original */
	bool returned_headers;		/* part 3 is the original's header section */
};

/*
 * Append the report for rcpt[0..nrcpt-1] to out. Its limit bounds the report and should
 * leave room for return_limit + DSN_HEADERS_MAX plus about 3 KiB per recipient; a report
 * that does not fit fails with EMSGSIZE. 0 on success, -1 with errno (EINVAL for a missing
 * or malformed required field, including a null sender: never bounce a bounce; EMSGSIZE;
 * EIO or the pread error for the original) and a reason in err; out is then unchanged.
 */
int dsn_compose(const struct dsn_msg *msg, const struct dsn_rcpt *rcpt, size_t nrcpt,
		struct buf *out, struct dsn_result *res, char *err, size_t errlen);

/* Fill msg from a validated queue file (borrowing its strings) for a report of this kind;
 * msg_fd is fd, return_limit DSN_RETURN_LIMIT_DEFAULT, now_ms 0. */
void dsn_msg_from_qf(struct dsn_msg *msg, const struct qf *q, int fd, const char *myhostname,
		     enum dsn_kind kind);
/* Fill r from a queue file recipient: addr, orcpt, status, last attempt, and the action
 * its state implies (bounced: failed, deferred or pending: delayed, delivered: delivered).
 * Remote MTA, diagnostic and retry-until are left empty for the caller. */
void dsn_rcpt_from_qf(struct dsn_rcpt *r, const struct qf_rcpt *q);

/* Whether a report of action is owed for a recipient with these QF_NOTIFY_* bits:
 * NEVER: no; failed: unless NOTIFY was given without FAILURE; delayed: if DELAY was asked
 * for, or NOTIFY was absent and delay_by_default (a policy setting); delivered, relayed,
 * expanded: only with SUCCESS. */
bool dsn_should_report(unsigned notify, enum dsn_action action, bool delay_by_default);

/* True for the null sender ("", NULL or "<>"): a report about such a message is never
 * sent to its sender (qmgr sends a failed report to postmaster instead, or drops it). */
bool dsn_is_bounce(const char *sender);

const char *dsn_action_name(enum dsn_action action);	/* "failed", ... */

/* For tests: the source of random bytes for boundaries and Message-IDs (NULL restores
 * getrandom(2)). */
void dsn_set_random(void (*fill)(void *p, size_t n));

#endif
