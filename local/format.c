/*
 * format.c: the message as local writes it into an mbox, a file or a command's input:
 *
 *   From sender Thu Nov 21 19:21:19 2026      (FMT_FROM_LINE; MAILER-DAEMON for <>)
 *   Return-Path: <sender>
 *   Delivered-To: rcpt
 *   the message, CRLF stored as LF, a line starting "From " written ">From "
 *   (FMT_QUOTE_FROM), always ending in a line end, then an empty line (FMT_BLANK_END)
 *
 * It is produced piecewise (fmt_read) from the queue file with pread, so a message of any
 * size needs no more memory than one read buffer, and a pipe can be fed as it drains. The
 * quoting and line-end state carries across reads: a "From " or a CRLF split between two
 * buffers is handled like any other.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "util.h"

#define FMT_INBUF	65536
#define FMT_HEAD_MAX	(3 * DELIVER_TEXT_MAX + 128)

static const char from_[] = "From ";

struct fmt {
	const struct msgsrc *src;
	unsigned flags;
	char head[FMT_HEAD_MAX];
	size_t head_len, head_off;
	char in[FMT_INBUF];
	size_t in_len, in_off;
	uint64_t consumed;	/* message bytes read from the file */
	bool bol;		/* at the start of a line */
	size_t match;		/* bytes of "From " matched at the start of this line */
	bool cr;		/* a CR waits for its LF */
	char last;		/* the last byte produced */
	bool body_done, end_done;
};

/* The From_ line's sender: no white space (it would end the field), <> as MAILER-DAEMON. */
static void from_sender(const char *sender, char *out, size_t outsize)
{
	size_t i = 0;

	if (*sender == '\0')
		sender = "MAILER-DAEMON";
	for (; sender[i] && i + 1 < outsize; i++)
		out[i] = sender[i] == ' ' || sender[i] == '\t' ? '_' : sender[i];
	out[i] = '\0';
}

static void make_head(struct fmt *f)
{
	char sender[DELIVER_TEXT_MAX], date[64] = "";
	time_t now = time(NULL);
	struct tm tm;
	int rc = 0;

	f->head[0] = '\0';
	if (f->flags & FMT_FROM_LINE) {
		from_sender(f->src->sender, sender, sizeof(sender));
		if (localtime_r(&now, &tm) != NULL)
			(void)strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
		rc = str_fmt(f->head, sizeof(f->head), "From %s %s\n", sender, date);
	}
	if (rc >= 0)
		rc = str_fmt(f->head + strlen(f->head), sizeof(f->head) - strlen(f->head),
			     "Return-Path: <%s>\n", f->src->sender);
	if (rc >= 0 && f->src->delivered_to)
		(void)str_fmt(f->head + strlen(f->head), sizeof(f->head) - strlen(f->head),
			      "Delivered-To: %s\n", f->src->delivered_to);
	f->head_len = strlen(f->head);	/* the parts are bounded well below the buffer */
}

struct fmt *fmt_new(const struct msgsrc *src, unsigned flags)
{
	struct fmt *f = xcalloc(1, sizeof(*f));

	f->src = src;
	f->flags = flags;
	f->bol = true;
	f->last = '\n';
	make_head(f);
	return f;
}

void fmt_free(struct fmt *f)
{
	free(f);
}

/* The next input buffer: 1, 0 at the end of the message, -1 on error (EIO: file too short). */
static int refill(struct fmt *f)
{
	uint64_t left = f->src->len - f->consumed;
	size_t want = left < FMT_INBUF ? (size_t)left : FMT_INBUF;
	ssize_t n;

	if (want == 0)
		return 0;
	do
		n = pread(f->src->fd, f->in, want, f->src->off + (off_t)f->consumed);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n == 0)
			errno = EIO;
		return -1;
	}
	f->in_len = (size_t)n;
	f->in_off = 0;
	f->consumed += (uint64_t)n;
	return 1;
}

/* Append one byte to out at n (c is evaluated once). */
#define PUT(c)					\
	do {					\
		char put_c_ = (c);		\
		out[n++] = put_c_;		\
		f->last = put_c_;		\
	} while (0)

/* One input byte into out at n (room for at least 8 bytes); the new n. */
static size_t put_byte(struct fmt *f, char c, char *out, size_t n)
{
	if (f->cr) {
		f->cr = false;
		if (c == '\n') {
			PUT('\n');
			f->bol = true;
			return n;
		}
		PUT('\r');	/* a bare CR stays */
	}
	if (f->bol && (f->flags & FMT_QUOTE_FROM)) {
		if (c == from_[f->match]) {
			if (++f->match == sizeof(from_) - 1) {
				PUT('>');
				for (size_t i = 0; i < f->match; i++)
					PUT(from_[i]);
				f->match = 0;
				f->bol = false;
			}
			return n;
		}
		for (size_t i = 0; i < f->match; i++)
			PUT(from_[i]);
		f->match = 0;
	}
	f->bol = false;
	if (c == '\r')
		f->cr = true;
	else if (c == '\n') {
		PUT('\n');
		f->bol = true;
	} else {
		PUT(c);
	}
	return n;
}

/* What is pending at the end of the message: a partial "From", a CR. */
static size_t put_pending(struct fmt *f, char *out, size_t n)
{
	for (size_t i = 0; i < f->match; i++)
		PUT(from_[i]);
	f->match = 0;
	if (f->cr)
		PUT('\r');
	f->cr = false;
	return n;
}

ssize_t fmt_read(struct fmt *f, char *out, size_t size)
{
	size_t n = 0;
	int r;

	while (n < size && f->head_off < f->head_len)
		PUT(f->head[f->head_off++]);
	while (!f->body_done && n + 8 <= size) {
		if (f->in_off == f->in_len && (r = refill(f)) <= 0) {
			if (r < 0)
				return -1;
			n = put_pending(f, out, n);
			f->body_done = true;
			break;
		}
		n = put_byte(f, f->in[f->in_off++], out, n);
	}
	if (f->body_done && !f->end_done && n + 2 <= size) {
		if (f->last != '\n')
			PUT('\n');
		if (f->flags & FMT_BLANK_END)
			PUT('\n');
		f->end_done = true;
	}
	return (ssize_t)n;
}
