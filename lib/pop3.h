/*
 * pop3.h: the two pieces of POP3 (issue 7) that are pure functions and so live here, where
 * the unit tests reach them: Dovecot-compatible UIDL strings, and the transfer encoding of a
 * message for RETR and TOP (RFC 1939 §3: CRLF line ends, byte-stuffing of lines that begin
 * with '.').
 *
 * UIDL: pop3_uidl_format holds a Dovecot variable template, `%08Xu%08Xv` in the common
 * guides and Dovecot's default, so a mailbox moved from Dovecot keeps its UIDLs and clients
 * do not download everything again. The syntax is Dovecot's:
 *     %[-][0]WIDTH[.[0][-]WIDTH][MODIFIERS]KEY      or  %[...]{LONG-KEY}
 * keys u / {uid} (the message UID), v / {uidvalidity} (the folder's UIDVALIDITY), f /
 * {filename} (the Maildir base name, without ":2,flags"), and %% for a '%'. Modifiers X
 * (the decimal value as hexadecimal: lower-case digits, as Dovecot 2.3's %X writes them),
 * L and U (lower / upper case). A width with a leading 0 pads with zeros on the left and
 * never truncates; a width without one truncates (Dovecot's %Nk), a negative one drops
 * that many characters from the end; "OFFSET." skips characters first (negative: from the
 * end). Dovecot's %m (header MD5) and %g (GUID) are not supported: the format is refused.
 *
 * RFC 1939 §7: a unique-id is 1 to 70 characters in 0x21..0x7E; a result outside that is an
 * error too.
 */
#ifndef POSTERN_POP3_H
#define POSTERN_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define POP3_UIDL_MAX		70	/* RFC 1939 §7 */
#define POP3_DEFAULT_UIDL_FORMAT "%08Xu%08Xv"

/* Check a format once (at session start): 0, or -1 with a reason in err. */
int pop3_uidl_check(const char *format, char *err, size_t errlen);

/* The UIDL of one message into out[POP3_UIDL_MAX + 1]: 0, or -1 (bad format, or a result
 * that is empty, too long or has characters RFC 1939 does not allow). filename may be NULL
 * when the format has no %f. */
int pop3_uidl(const char *format, uint32_t uid, uint32_t uidvalidity, const char *filename,
	      char *out, size_t outlen);

/*
 * The transfer encoder: fed a message file's bytes in chunks of any size, it appends to out
 * the bytes to send: a CR before every LF that lacks one, a '.' before every line that starts
 * with '.'. For TOP it stops after the header, the empty line and max_body_lines lines of the
 * body. pop3_encode_end appends the CRLF a last line without line end needs; the caller then
 * writes the terminating ".\r\n" itself.
 */
struct pop3_encoder {
	bool top;			/* TOP: stop after the lines wanted */
	uint64_t body_lines_left;	/* TOP: body lines still to send */
	bool in_body;			/* past the empty line that ends the header */
	int line_state;			/* current line: 0 nothing yet, 1 only a CR, 2 more */
	bool done;			/* TOP has sent everything it wants */
	char last;			/* last byte appended, '\n' at the start */
};

void pop3_encoder_init(struct pop3_encoder *e, bool top, uint64_t max_body_lines);
/* Encode in[0..n) onto out (at most 2 * n + 1 bytes: give out the room); bytes after the
 * end of a TOP are ignored. 0, or -1 if out's limit was reached. */
int pop3_encode(struct pop3_encoder *e, const char *in, size_t n, struct buf *out);
int pop3_encode_end(struct pop3_encoder *e, struct buf *out);

#endif
