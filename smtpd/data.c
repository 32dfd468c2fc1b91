/*
 * data.c: reading a message after DATA (RFC 5321 4.1.4, 4.5.2) or in BDAT chunks (RFC 3030),
 * into a sink that streams it into the queue file.
 *
 * DATA is read byte by byte through a small state machine, never line by line, so no line
 * buffer bounds the message and no terminator is guessed:
 *  - The message ends only at <CR><LF>.<CR><LF> (the first line "." right after DATA counts,
 *    the CRLF of the DATA command being the first one). <LF>.<LF>, <CR>.<CR>, <LF>.<CR><LF>
 *    and every other variant are not an end.
 *  - A bare CR or a bare LF anywhere is SMTP smuggling or a broken client: as Postfix with
 *    smtpd_forbid_bare_newline = yes, the reader stops at once and the caller answers
 *    "521 5.5.2 ... Error: bare <LF> received" and disconnects. Nothing after it is ever read
 *    as a command, so whatever an upstream server thought the end was cannot matter.
 *  - A leading dot is removed (dot-unstuffing); the rest is passed as received, CRLF kept.
 *  - Lines are read with the stream's bounded line reader (SMTP_LINE_MAX), which leaves
 *    pipelined commands after the end in the stream. A line longer than that is skipped
 *    by the reader without its terminator being seen, so it is handled like a bare
 *    newline: "521 5.5.2 ... Error: line too long" and disconnect.
 *  - Size (message_size_limit) and line length (998 octets + CRLF, RFC 5321 4.5.3.1.6) are
 *    checked on the unstuffed bytes; past either limit the rest is read and discarded and
 *    the caller answers 552 5.3.4 or 500 5.5.2 at the end. Refusing long lines is stricter
 *    than Postfix (which splits them): Postern never has to rewrap a message it relays.
 * BDAT chunks are exact byte counts without dot-stuffing; bare CR/LF in them is refused as
 * well (the transaction fails, the session goes on: the framing is unambiguous).
 *
 * The sink also remembers the Message-ID header (Postfix's cleanup logs it).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "smtpd.h"
#include "buf.h"
#include "util.h"

#define DATA_LINE_MAX	1000	/* 998 octets + CRLF */
#define DATA_CHUNK	16384

void sink_init(struct smtpd_sink *k, struct qf_writer *w, uint64_t limit)
{
	memset(k, 0, sizeof(*k));
	k->w = w;
	k->limit = limit;
	k->in_headers = true;
}

/* A complete header line (without CRLF, possibly cut at sizeof(hline)). */
static void sniff_header(struct smtpd_sink *k)
{
	static const char name[] = "message-id:";
	const char *v;
	size_t n;

	if (k->msgid[0] || k->hlen < sizeof(name) - 1 ||
	    strncasecmp(k->hline, name, sizeof(name) - 1) != 0)
		return;
	v = k->hline + sizeof(name) - 1;
	n = k->hlen - (sizeof(name) - 1);
	while (n && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= sizeof(k->msgid))
		n = sizeof(k->msgid) - 1;
	memcpy(k->msgid, v, n);
	k->msgid[n] = '\0';
}

/* Line bookkeeping on the unstuffed stream: length limit and header sniffing. */
static void track(struct smtpd_sink *k, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == '\n') {
			if (k->in_headers) {
				if (k->hlen && k->hline[k->hlen - 1] == '\r')
					k->hlen--;
				if (k->hlen == 0)
					k->in_headers = false;
				else
					sniff_header(k);
			}
			k->linelen = 0;
			k->hlen = 0;
			continue;
		}
		if (++k->linelen > DATA_LINE_MAX - 1)	/* counting the CR too */
			k->long_line = true;
		if (k->in_headers && k->hlen < sizeof(k->hline) - 1)
			k->hline[k->hlen++] = c;
	}
}

/* Message bytes, already unstuffed. Stops writing (not counting) past a limit. */
static void sink_put(struct smtpd_sink *k, const char *p, size_t n)
{
	if (n == 0)
		return;
	k->bytes += n;
	if (k->bytes > k->limit)
		k->too_big = true;
	if (k->in_headers || !k->long_line)
		track(k, p, n);
	if (k->w == NULL || k->too_big || k->long_line || k->write_failed)
		return;
	if (qf_writer_body(k->w, p, n) < 0) {
		k->write_failed = true;
		k->write_errno = errno;
	}
}

enum dstate { D_BOL, D_LINE, D_CR, D_DOT, D_DOT_CR };

struct dreader {
	enum dstate st;
	char out[DATA_CHUNK + 2];
	size_t olen;
};

static void out_byte(struct dreader *d, struct smtpd_sink *k, char c)
{
	d->out[d->olen++] = c;
	if (d->olen >= DATA_CHUNK) {
		sink_put(k, d->out, d->olen);
		d->olen = 0;
	}
}

/* Feed bytes; returns 1 at the end of data (*used = bytes consumed), -1 on a bare CR/LF,
 * 0 to continue. */
static int feed(struct dreader *d, struct smtpd_sink *k, const char *p, size_t n, size_t *used)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		switch (d->st) {
		case D_BOL:
			if (c == '.') {
				d->st = D_DOT;
				continue;
			}
			d->st = D_LINE;
			/* FALLTHROUGH */
		case D_LINE:
		line:
			if (c == '\r') {
				d->st = D_CR;
			} else if (c == '\n') {
				return -1;
			} else {
				out_byte(d, k, c);
			}
			break;
		case D_CR:
			if (c != '\n')
				return -1;
			out_byte(d, k, '\r');
			out_byte(d, k, '\n');
			d->st = D_BOL;
			break;
		case D_DOT:
			if (c == '\r') {
				d->st = D_DOT_CR;
				break;
			}
			d->st = D_LINE;	/* the stuffed dot is dropped */
			goto line;
		case D_DOT_CR:
			if (c != '\n')
				return -1;
			*used = i + 1;
			return 1;
		}
	}
	*used = n;
	return 0;
}

static int stream_result(ssize_t r)
{
	return r == STREAM_TIMEOUT ? DATA_TIMEOUT : r == STREAM_EOF ? DATA_EOF : DATA_ERR;
}

int data_read(struct session *ss, struct smtpd_sink *k)
{
	static struct dreader d;
	struct buf line;
	int result = DATA_ERR;

	d.st = D_BOL;
	d.olen = 0;
	buf_init(&line, SMTP_LINE_MAX + 1);
	for (;;) {
		ssize_t r = stream_readline(ss->s, &line);
		size_t used = 0;
		int f;

		if (r == STREAM_TOOLONG) {
			/* Its terminator was skipped unseen, so where the data ends could be
			 * ambiguous: treated like a bare newline (refuse, disconnect). */
			k->long_line = true;
			result = DATA_TOOLONG;
			break;
		}
		if (r <= 0 || line.data[line.len - 1] != '\n') {
			result = r <= 0 ? stream_result(r) : DATA_EOF;
			break;
		}
		ss->where_bytes += (uint64_t)r;
		f = feed(&d, k, line.data, line.len, &used);
		if (f < 0) {
			k->bare_nl = true;
			result = DATA_BARE_NL;
			break;
		}
		if (f > 0) {	/* ".\r\n" ends a line, so nothing of it is left over */
			sink_put(k, d.out, d.olen);
			result = DATA_OK;
			break;
		}
	}
	buf_free(&line);
	return result;
}

/* BDAT content: exact count, no dots; bare CR/LF flagged (across chunk boundaries too). */
static void bdat_scan(struct smtpd_sink *k, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (k->cr && p[i] != '\n')
			k->bare_nl = true;
		else if (!k->cr && p[i] == '\n')
			k->bare_nl = true;
		k->cr = p[i] == '\r';
	}
}

int bdat_read(struct session *ss, struct smtpd_sink *k, uint64_t size)
{
	char in[DATA_CHUNK];

	while (size > 0) {
		size_t want = size < sizeof(in) ? (size_t)size : sizeof(in);
		ssize_t r = stream_read(ss->s, in, want);

		if (r <= 0)
			return stream_result(r);
		size -= (uint64_t)r;
		ss->where_bytes += (uint64_t)r;
		bdat_scan(k, in, (size_t)r);
		if (k->bare_nl)
			k->w = NULL;	/* the transaction fails: keep reading, stop writing */
		sink_put(k, in, (size_t)r);
	}
	return DATA_OK;
}
