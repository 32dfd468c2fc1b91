/*
 * smtpcmd.h: the RFC 5321 command-line parser smtpd puts in front of everything a client
 * says outside DATA/BDAT. One call turns one command line (without its CRLF) into a verb,
 * its arguments, a parsed path and ESMTP parameters, or into a ready 5xx reply with an
 * enhanced status code (RFC 3463). It never allocates and never keeps pointers into the
 * line: everything it returns is copied into bounded buffers in struct smtp_cmd.
 *
 * Policy choices (stricter than RFC 5321 where the RFC invites relay tricks):
 *  - Source routes (<@a,@b:user@c>) are REFUSED with 553, although RFC 5321 4.1.2 says to
 *    accept and ignore them: nothing legitimate has sent one in decades and they are the
 *    classic relay probe.
 *  - MAIL FROM / RCPT TO need angle brackets (like Postfix's strict_rfc821_envelopes=yes);
 *    one space after the colon is tolerated ("MAIL FROM: <a@b>"), for RCPT TO as well.
 *    Otherwise separators are exactly one SP; no trailing spaces, no tabs.
 *  - A '%' or '!' in the local part (%-hack, bang path) is syntactically valid and accepted,
 *    but path.has_percent / path.has_bang are set: the caller's relay check must treat such
 *    a recipient as NOT local (never route it by the part after '%' or '!').
 *  - A quoted local part is accepted and normalized: quotes dropped when the content is a
 *    dot-string ("abc"@d -> abc@d), otherwise re-quoted with only '"' and '\' escaped.
 *    An '@' inside quotes ("u@theirs"@ours) and an empty local part ("") are refused.
 *  - user@ours@theirs, general address literals ([tag:x]), 8-bit bytes outside MAIL/RCPT
 *    paths, control characters (incl. TAB) and NUL anywhere are refused.
 *  - 8-bit (UTF-8) in a path: MAIL requires its own SMTPUTF8 parameter (else 553 5.6.7);
 *    RCPT sets path.utf8 and the caller refuses it (smtp_reply_utf8) unless the
 *    transaction's MAIL had SMTPUTF8.
 *  - Line length (RFC 5321 4.5.3.1.4): 512 octets INCLUDING CRLF, i.e. len <= 510 here. The
 *    extensions raise it for their commands: MAIL by 26 (SIZE, RFC 1870) + 100 (RET/ENVID,
 *    RFC 3461) + 500 (AUTH=, RFC 4954) + 10 (SMTPUTF8, RFC 6531) + 20 (our margin for BODY=,
 *    for which no RFC gives a figure); RCPT by 500
 *    (NOTIFY/ORCPT, RFC 3461); AUTH lines may be 12288 octets (RFC 4954 4). So smtpd's line
 *    reader must buffer SMTP_LINE_MAX octets and this parser applies the per-verb limit.
 *  - SIZE=n with more digits than fit in 64 bits but at most 20 (RFC 1870 size-value) is
 *    valid and saturates to UINT64_MAX, so smtpd answers 552 as for any too-large size.
 *  - xtext hex digits must be upper case (RFC 3461 4); "+00" (NUL) never decodes.
 *  - EHLO/HELO take a domain (underscores tolerated: Windows hosts send them) or an address
 *    literal; HELO/EHLO content checks beyond syntax are policy, not parsing.
 *  - NOOP/HELP/VRFY strings are any printable ASCII (VRFY needs one).
 */
#ifndef POSTERN_SMTPCMD_H
#define POSTERN_SMTPCMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SMTP_CMD_LINE_MAX	512	/* incl. CRLF, RFC 5321 4.5.3.1.4 */
#define SMTP_MAIL_LINE_MAX	(SMTP_CMD_LINE_MAX + 26 + 100 + 500 + 10 + 20)
#define SMTP_RCPT_LINE_MAX	(SMTP_CMD_LINE_MAX + 500)
#define SMTP_AUTH_LINE_MAX	12288	/* incl. CRLF, RFC 4954 4 */
#define SMTP_LINE_MAX		SMTP_AUTH_LINE_MAX	/* what smtpd's reader must accept */

#define SMTP_LOCAL_MAX		64	/* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX		255	/* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX		256	/* RFC 5321 4.5.3.1.3, with the angle brackets */
#define SMTP_ENVID_MAX		100	/* RFC 3461 4.4, encoded length */
#define SMTP_ORCPT_MAX		500	/* RFC 3461 4.2, whole encoded value */
#define SMTP_AUTHPARAM_MAX	500	/* RFC 4954 5, AUTH= encoded value */
#define SMTP_MECH_MAX		20	/* RFC 4422 SASL mechanism name */

enum smtp_verb {
	SMTP_NONE = 0, SMTP_EHLO, SMTP_HELO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_BDAT,
	SMTP_RSET, SMTP_NOOP, SMTP_QUIT, SMTP_VRFY, SMTP_HELP, SMTP_STARTTLS, SMTP_AUTH,
};

enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

/* NOTIFY= bits (RFC 3461 4.1); 0 means the parameter was absent. */
#define SMTP_NOTIFY_NEVER	0x1
#define SMTP_NOTIFY_SUCCESS	0x2
#define SMTP_NOTIFY_FAILURE	0x4
#define SMTP_NOTIFY_DELAY	0x8

/* A reply ready to print as "<code> <enh> <text>\r\n". */
struct smtp_reply {
	int code;		/* 500, 501, 553, 555 */
	char enh[12];		/* "5.5.4" */
	char text[160];
};

struct smtp_path {
	bool null_path;		/* <> (MAIL only) */
	bool postmaster;	/* <Postmaster> without domain (RCPT only); addr = "postmaster" */
	bool quoted;		/* the normalized local part is a quoted string */
	bool domain_literal;	/* [1.2.3.4] or [IPv6:...] */
	bool utf8;		/* non-ASCII (valid UTF-8) in the local part or domain */
	bool has_percent;	/* '%' in the local part: %-hack, treat as not local */
	bool has_bang;		/* '!' in the local part: bang path, treat as not local */
	char local[SMTP_LOCAL_MAX + 1];		/* normalized local part */
	char domain[SMTP_DOMAIN_MAX + 1];	/* as sent (case kept); literal with brackets */
	char addr[SMTP_LOCAL_MAX + 1 + SMTP_DOMAIN_MAX + 1];	/* local@domain, "" for <> */
};

struct smtp_mail_params {
	bool has_size;
	uint64_t size;		/* saturates at UINT64_MAX */
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	bool has_envid;
	char envid[SMTP_ENVID_MAX + 1];		/* decoded */
	bool has_auth;		/* AUTH= given; auth[] empty for AUTH=<> */
	bool auth_null;
	char auth[SMTP_AUTHPARAM_MAX + 1];	/* decoded */
};

struct smtp_rcpt_params {
	unsigned notify;	/* SMTP_NOTIFY_* bits */
	bool has_orcpt;
	char orcpt_type[16];	/* lower-cased addr-type: "rfc822" */
	char orcpt[SMTP_ORCPT_MAX + 1];		/* decoded address */
};

struct smtp_cmd {
	enum smtp_verb verb;	/* set as soon as the verb is known, even on error */
	struct smtp_reply reply;	/* filled when parsing fails */
	/* EHLO/HELO domain or literal, NOOP/HELP/VRFY string, AUTH mechanism (upper-cased) */
	char arg[SMTP_CMD_LINE_MAX];
	bool helo_literal;	/* EHLO/HELO argument is an address literal */
	struct smtp_path path;	/* MAIL, RCPT */
	struct smtp_mail_params mail;
	struct smtp_rcpt_params rcpt;
	uint64_t bdat_size;	/* BDAT */
	bool bdat_last;
	bool has_auth_resp;	/* AUTH initial response (base64, or "=" for empty) */
	char auth_resp[SMTP_AUTH_LINE_MAX];
};

/*
 * Parse one command line of len octets, without CRLF (the caller has rejected bare CR and
 * bare LF already). Returns 0, or the SMTP reply code (500, 501, 553, 555) with out->reply
 * set for the client and a short reason for the log in err[errlen] (err may be NULL).
 * On a BDAT syntax error the caller should disconnect: the client will send the chunk anyway.
 */
int smtp_parse_command(const char *line, size_t len, struct smtp_cmd *out, char *err,
		       size_t errlen);

/* The reply for an RCPT whose path.utf8 is set in a transaction without SMTPUTF8:
 * 553 5.6.7 (RFC 6531 3.5). */
void smtp_reply_utf8(struct smtp_reply *r, bool rcpt);

/* "501 5.5.4 text" (no CRLF) into buf[size]; -1 if it did not fit. */
int smtp_reply_format(const struct smtp_reply *r, char *buf, size_t size);

/*
 * xtext (RFC 3461 4). decode: in[inlen] into out[outsize] NUL-terminated; returns the
 * decoded length, or -1 on bad syntax (chars outside '!'..'~', '=', '+' not followed by two
 * upper-case hex digits, "+00") or if it does not fit. encode: returns the encoded length,
 * or -1 if out[outsize] is too small (a NUL terminator is always written when outsize > 0).
 */
ssize_t smtp_xtext_decode(const char *in, size_t inlen, char *out, size_t outsize);
ssize_t smtp_xtext_encode(const char *in, size_t inlen, char *out, size_t outsize);

#endif
