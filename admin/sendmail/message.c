/*
 * message.c: the message as sendmail passes it on. Reading (-bm): line ends become CRLF
 * (the queue holds what SMTP would carry), a leading mbox "From " line is dropped, and
 * without -i a line holding only "." ends the message. Then the header section is looked
 * at: with -t its To:, Cc: and Bcc: (or, when the message has any, only its Resent-To:,
 * Resent-Cc: and Resent-Bcc:) add recipients; Bcc: and Resent-Bcc: fields are removed (so a
 * blind copy stays blind, as with Sendmail); Received:, and From:, Date: and Message-ID:
 * when missing, are added, as Postfix's cleanup does for local submissions.
 *
 * The message is never copied again: what goes into the queue file is a list of pieces,
 * ranges of the input (minus the removed fields) and of the added headers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sendmail.h"
#include "base64.h"
#include "util.h"

#define ADDED_MAX	(16 * 1024)	/* the headers we add */
#define NAME_MAX_BYTES	200		/* of a full name in From: */

enum field_kind {
	F_OTHER, F_TO, F_CC, F_BCC, F_RESENT_TO, F_RESENT_CC, F_RESENT_BCC, F_FROM, F_DATE,
	F_MSGID,
};

static const struct {
	const char *name;
	enum field_kind kind;
} known_fields[] = {
	{ "to", F_TO }, { "cc", F_CC }, { "bcc", F_BCC }, { "resent-to", F_RESENT_TO },
	{ "resent-cc", F_RESENT_CC }, { "resent-bcc", F_RESENT_BCC }, { "from", F_FROM },
	{ "date", F_DATE }, { "message-id", F_MSGID },
};

struct field {
	size_t start, end;	/* the field with its continuation lines and CRLF */
	size_t value;		/* just after the colon */
	enum field_kind kind;
};

struct headers {
	struct field *f;
	size_t n, cap;
	size_t body;		/* where the body starts */
	bool blank;		/* a blank line separates them (it ends at body) */
	bool seen[F_MSGID + 1];
};

void message_init(struct sm_message *m, uint64_t limit)
{
	memset(m, 0, sizeof(*m));
	buf_init(&m->input, (size_t)limit);
	buf_init(&m->added, ADDED_MAX);
}

void message_free(struct sm_message *m)
{
	buf_free(&m->input);
	buf_free(&m->added);
	free(m->piece);
	memset(m, 0, sizeof(*m));
}

/* ---- reading (-bm) ------------------------------------------------------------------- */

int message_read(const struct sendmail *sm, struct sm_message *m)
{
	struct buf *in = &m->input;
	bool first = true;

	for (;;) {
		size_t start = in->len, n;
		int r = input_line(in);

		if (r <= 0)
			return r;
		n = in->len - start;
		if (n > 0 && in->data[in->len - 1] == '\r')
			in->len--, n--;		/* CRLF in, CRLF out */
		if (first && n >= 5 && memcmp(in->data + start, "From ", 5) == 0)
			in->len = start;	/* an mbox separator is not a header */
		else if (sm->dot_ends && n == 1 && in->data[start] == '.') {
			in->len = start;
			in->data[in->len] = '\0';
			return 0;
		} else if (buf_append(in, "\r\n", 2) < 0)
			return -1;
		first = false;
		if (r == 2)
			return 0;
	}
}

/* ---- the header section -------------------------------------------------------------- */

/* "Name:" or "Name :" (RFC 5322 field name: printable ASCII but ':'). */
static size_t header_name_len(const char *p, size_t len, size_t *colon)
{
	size_t i = 0, n;

	while (i < len && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	n = i;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (n == 0 || i >= len || p[i] != ':')
		return 0;
	*colon = i;
	return n;
}

static enum field_kind classify(const char *name, size_t n)
{
	for (size_t i = 0; i < ARRAY_LEN(known_fields); i++)
		if (strlen(known_fields[i].name) == n &&
		    strncasecmp(known_fields[i].name, name, n) == 0)
			return known_fields[i].kind;
	return F_OTHER;
}

static void add_field(struct headers *h, size_t start, size_t colon, enum field_kind kind)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 32;
		h->f = xreallocarray(h->f, h->cap, sizeof(*h->f));
	}
	h->f[h->n++] = (struct field){ .start = start, .value = colon + 1, .kind = kind };
	h->seen[kind] = true;
}

/* Split data (CRLF lines) into header fields and the body. A line that is neither a field
 * nor a continuation ends the header section without a blank line (it is body text). */
static void scan_headers(const char *data, size_t len, struct headers *h)
{
	size_t pos = 0;

	h->body = len;
	while (pos < len) {
		const char *crlf = memmem(data + pos, len - pos, "\r\n", 2);
		size_t end = crlf ? (size_t)(crlf - data) : len, next = crlf ? end + 2 : len;
		size_t colon, n;

		if (end == pos) {
			h->blank = true;
			h->body = next;
			return;
		}
		if ((data[pos] == ' ' || data[pos] == '\t') && h->n > 0) {
			h->f[h->n - 1].end = next;
		} else if ((n = header_name_len(data + pos, end - pos, &colon)) > 0) {
			add_field(h, pos, pos + colon, classify(data + pos, n));
			h->f[h->n - 1].end = next;
		} else {
			h->body = pos;
			return;
		}
		pos = next;
	}
}

/* -t: recipients from the address fields (Resent- ones only, when there are any). */
static int extract_rcpts(const struct sendmail *sm, const char *data, const struct headers *h,
			 struct sm_rcpts *r, char *bad, size_t badlen)
{
	bool resent = h->seen[F_RESENT_TO] || h->seen[F_RESENT_CC] || h->seen[F_RESENT_BCC];

	for (size_t i = 0; i < h->n; i++) {
		enum field_kind k = h->f[i].kind;
		bool want = resent ? (k == F_RESENT_TO || k == F_RESENT_CC || k == F_RESENT_BCC)
				   : (k == F_TO || k == F_CC || k == F_BCC);

		if (want && rcpts_add_list(sm, r, data + h->f[i].value,
					   h->f[i].end - h->f[i].value, bad, badlen) < 0)
			return -1;
	}
	return 0;
}

/* ---- headers we add ------------------------------------------------------------------- */

/* RFC 5322 date-time "Sat, 22 Nov 2025 19:21:19 +0100" and a compact stamp for ids. */
static void date_now(char *date, size_t datelen, char *stamp, size_t stamplen)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	if (strftime(date, datelen, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		(void)str_copy(date, datelen, "Thu, 01 Jan 1970 00:00:00 +0000");
	if (strftime(stamp, stamplen, "%Y%m%d%H%M%S", &tm) == 0)
		(void)str_copy(stamp, stamplen, "0");
}

static bool plain_phrase(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(" !#$%&'*+-/=?^_`{|}~", *s)))
			return false;
	return true;
}

/* The full name as a display name: atoms as they are, other ASCII as a quoted string,
 * anything with 8-bit bytes as RFC 2047 encoded words (UTF-8, base64), each at most 75
 * characters and never cutting a UTF-8 sequence. */
static void put_phrase(struct buf *b, const char *name)
{
	size_t n = strlen(name), i = 0;
	bool eight = false;

	for (size_t k = 0; k < n; k++)
		eight |= (unsigned char)name[k] >= 0x80;
	if (!eight && plain_phrase(name)) {
		(void)buf_append_str(b, name);
		return;
	}
	if (!eight) {
		(void)buf_append_char(b, '"');
		for (; *name; name++) {
			if (*name == '"' || *name == '\\')
				(void)buf_append_char(b, '\\');
			(void)buf_append_char(b, *name);
		}
		(void)buf_append_char(b, '"');
		return;
	}
	while (i < n) {
		size_t take = n - i < 45 ? n - i : 45;
		char enc[BASE64_ENCODED_LEN(45) + 1];

		while (take < n - i && take > 1 && ((unsigned char)name[i + take] & 0xc0) == 0x80)
			take--;		/* do not split a UTF-8 character */
		if (base64_encode(name + i, take, enc, sizeof(enc)) < 0)
			return;
		(void)buf_printf(b, "%s=?UTF-8?B?%s?=", i ? " " : "", enc);
		i += take;
	}
}

/* The full name from -F or the passwd entry: control characters dropped, bounded, and
 * '&' in a gecos field standing for the capitalised login name (the BSD convention). */
static void full_name(const struct sendmail *sm, char *out, size_t outlen)
{
	const char *src = sm->fullname ? sm->fullname : sm->gecos_name;
	struct buf b;

	buf_init(&b, outlen - 1 < NAME_MAX_BYTES ? outlen - 1 : NAME_MAX_BYTES);
	for (; *src; src++) {
		if (*src == '&' && !sm->fullname && sm->login) {
			(void)buf_printf(&b, "%c%s", sm->login[0] >= 'a' && sm->login[0] <= 'z' ?
					 sm->login[0] - 'a' + 'A' : sm->login[0], sm->login + 1);
		} else if ((unsigned char)*src >= 0x20 && *src != 0x7f) {
			(void)buf_append_char(&b, *src);
		}
	}
	(void)str_copy(out, outlen, buf_cstr(&b));
	/* no leading or trailing blanks */
	while (out[0] == ' ')
		memmove(out, out + 1, strlen(out));
	for (size_t n = strlen(out); n > 0 && out[n - 1] == ' '; n--)
		out[n - 1] = '\0';
	buf_free(&b);
}

static void add_from(const struct sendmail *sm, struct buf *b, const char *sender)
{
	char name[NAME_MAX_BYTES + 1];

	if (sender[0] == '\0') {
		(void)buf_printf(b, "From: MAILER-DAEMON@%s\r\n", sm->myhostname);
		return;
	}
	full_name(sm, name, sizeof(name));
	if (name[0] == '\0') {
		(void)buf_printf(b, "From: %s\r\n", sender);
		return;
	}
	(void)buf_append_str(b, "From: ");
	put_phrase(b, name);
	(void)buf_printf(b, " <%s>\r\n", sender);
}

/* Received: first; From:, Date:, Message-ID: if the message has none. */
static void make_added(const struct sendmail *sm, const struct headers *h, const char *sender,
		       struct buf *b, size_t *top_len)
{
	char date[80], stamp[32], id[QF_QID_SIZE];

	date_now(date, sizeof(date), stamp, sizeof(stamp));
	(void)buf_printf(b, "Received: by %s (Postern, from userid %u);\r\n\t%s\r\n",
			 sm->myhostname, (unsigned)sm->uid, date);
	*top_len = b->len;
	if (!h->seen[F_FROM])
		add_from(sm, b, sender);
	if (!h->seen[F_DATE])
		(void)buf_printf(b, "Date: %s\r\n", date);
	if (!h->seen[F_MSGID] && qid_new(id, sizeof(id)) == 0)
		(void)buf_printf(b, "Message-ID: <%s.%s@%s>\r\n", stamp, id, sm->myhostname);
}

/* ---- laying out the pieces ------------------------------------------------------------ */

static void add_piece(struct sm_message *m, const char *p, size_t len)
{
	struct sm_piece *last = m->npiece ? &m->piece[m->npiece - 1] : NULL;

	if (len == 0)
		return;
	m->size += len;
	if (last && last->p + last->len == p) {
		last->len += len;
		return;
	}
	if (m->npiece == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->piece = xreallocarray(m->piece, m->cap, sizeof(*m->piece));
	}
	m->piece[m->npiece++] = (struct sm_piece){ p, len };
}

static bool has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

int message_prepare(const struct sendmail *sm, struct sm_message *m, const char *sender,
		    bool extract, struct sm_rcpts *r, char *bad, size_t badlen)
{
	const char *data = m->input.len ? m->input.data : "";
	struct headers h = { 0 };
	size_t top;

	scan_headers(data, m->input.len, &h);
	if (extract && extract_rcpts(sm, data, &h, r, bad, badlen) < 0) {
		free(h.f);
		return -1;
	}
	make_added(sm, &h, sender, &m->added, &top);
	m->npiece = 0;
	m->size = 0;
	add_piece(m, m->added.data, top);
	for (size_t i = 0; i < h.n; i++)
		if (h.f[i].kind != F_BCC && h.f[i].kind != F_RESENT_BCC)
			add_piece(m, data + h.f[i].start, h.f[i].end - h.f[i].start);
	add_piece(m, m->added.data + top, m->added.len - top);
	add_piece(m, "\r\n", 2);
	add_piece(m, data + h.body, m->input.len - h.body);
	m->eightbit = has_8bit(data, m->input.len) || has_8bit(m->added.data, m->added.len);
	free(h.f);
	return 0;
}
