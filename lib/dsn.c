/*
 * dsn.c: composes delivery status notifications (RFC 3464 / RFC 6522, RFC 6533 for
 * SMTPUTF8 mail) for qmgr, plus the policy helpers deciding whether one is owed. The
 * report is built in three part buffers first, so a boundary can be chosen that none of
 * them contains, then assembled into the caller's buffer. See dsn.h for the format rules.
 */
#include "dsn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define FOLD_WIDTH	78		/* header and report fields */
#define TEXT_WIDTH	76		/* the human-readable part */
#define DATE_SIZE	64
#define BOUNDARY_TRIES	8
#define VALUE_MAX	(DSN_DIAG_MAX + QF_MAX_ORCPT + 64)	/* one field's value */

/* ---- output with a sticky error -------------------------------------------------------- */

/* Appends to a buffer and remembers the first failure, so composing code can append
 * freely and check once. */
struct out {
	struct buf *b;
	int err;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->err == 0 && buf_append(o->b, p, n) < 0)
		o->err = errno != 0 ? errno : EMSGSIZE;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* For short, bounded things only (numbers, dates, names checked elsewhere). */
static void put_fmt(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(struct out *o, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		if (o->err == 0)
			o->err = EINVAL;
		return;
	}
	put(o, tmp, (size_t)n);
}

/* ---- cleaning untrusted text ------------------------------------------------------------ */

#define C_UTF8		0x1u	/* keep valid UTF-8 (else every 8-bit byte becomes '?') */
#define C_COLLAPSE	0x2u	/* white space runs become one space, ends trimmed */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if there is none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0], cp, min;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2, cp = c & 0x1Fu, min = 0x80;
	} else if ((c & 0xF0u) == 0xE0) {
		len = 3, cp = c & 0x0Fu, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4, cp = c & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xC0u) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static bool is_ascii(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static bool empty(const char *s)
{
	return s == NULL || *s == '\0';
}

/* Append at most max bytes of s to o, cleaned: control characters become spaces, 8-bit
 * bytes '?' unless they form valid UTF-8 and C_UTF8 is given. Truncation marks "...". */
static void put_clean(struct out *o, const char *s, size_t max, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, kept = 0, len, before = o->b->len;
	bool space = (flags & C_COLLAPSE) != 0;	/* trims leading white space */

	while (i < n && kept < max) {
		unsigned c = p[i];
		if (c < 0x20 || c == 0x7F || c == ' ') {
			i++;
			if (!space || !(flags & C_COLLAPSE))
				put(o, " ", 1), kept++;
			space = true;
			continue;
		}
		space = false;
		len = c < 0x80 ? 1 : (flags & C_UTF8) ? utf8_seq(p + i, n - i) : 0;
		if (len == 0 || kept + len > max) {
			put(o, "?", 1), kept++, i++;
			continue;
		}
		put(o, p + i, len), kept += len, i += len;
	}
	if (i < n)
		put_str(o, "...");
	/* C_COLLAPSE: drop one trailing space (there can be at most one). */
	if ((flags & C_COLLAPSE) && o->err == 0 && o->b->len > before &&
	    o->b->data[o->b->len - 1] == ' ')
		o->b->data[--o->b->len] = '\0';
}

/* ---- folding ----------------------------------------------------------------------------- */

/* Append head then value, folded before white space so lines stay within width where the
 * words allow; a word that would pass DSN_LINE_MAX is split. Header style (indent NULL)
 * keeps the white space at the start of the continuation line, as RFC 5322 folding does;
 * text style replaces it by indent. The line is ended with CRLF. */
static void put_folded(struct out *o, const char *head, const char *value, size_t width,
		       const char *indent)
{
	size_t col = strlen(head), start = col, ilen = indent ? strlen(indent) : 0;
	const char *p = value;

	put_str(o, head);
	while (*p != '\0') {
		size_t ws = strspn(p, " \t"), wl = strcspn(p + ws, " \t");
		if (ws + wl == 0)
			break;
		if (col > start && ws > 0 && col + ws + wl > width) {
			put_str(o, "\r\n");
			col = 0;
			if (indent != NULL) {	/* text: the indent replaces the blanks */
				put_str(o, indent);
				col = ilen;
				p += ws;
				ws = 0;
			}
		}
		put(o, p, ws), col += ws;
		p += ws;
		while (col + wl > DSN_LINE_MAX) {
			size_t chunk = col < DSN_LINE_MAX ? DSN_LINE_MAX - col : 0;
			put(o, p, chunk), p += chunk, wl -= chunk;
			put_str(o, "\r\n");
			put_str(o, indent != NULL ? indent : " ");
			col = indent != NULL ? ilen : 1;
		}
		put(o, p, wl), col += wl;
		p += wl;
	}
	put_str(o, "\r\n");
}

/* A report or header field "Name: value" from a value built in val. */
static void put_field(struct out *o, const char *name, struct out *val)
{
	char head[64];

	if (val->err != 0 && o->err == 0)
		o->err = val->err;
	if (str_fmt(head, sizeof(head), "%s: ", name) < 0) {
		if (o->err == 0)
			o->err = EINVAL;
		return;
	}
	put_folded(o, head, buf_cstr(val->b), FOLD_WIDTH, NULL);
	buf_reset(val->b);
	val->err = 0;
}

/* ---- dates, random tokens ---------------------------------------------------------------- */

/* RFC 5322 date-time in local time, without the locale's help. */
static void fmt_date(int64_t ms, char *out, size_t size)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	long off;

	if (localtime_r(&t, &tm) == NULL) {
		t = 0;
		if (gmtime_r(&t, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		tm.tm_gmtoff = 0;
	}
	off = tm.tm_gmtoff / 60;
	if (str_fmt(out, size, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
		    days[(unsigned)tm.tm_wday % 7], tm.tm_mday, months[(unsigned)tm.tm_mon % 12],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
		    (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60) < 0)
		(void)str_copy(out, size, "Thu, 1 Jan 1970 00:00:00 +0000");
}

static void random_getrandom(void *p, size_t n);
static void (*random_fill)(void *p, size_t n) = random_getrandom;

void dsn_set_random(void (*fill)(void *p, size_t n))
{
	random_fill = fill != NULL ? fill : random_getrandom;
}

/* getrandom, or (never expected) a mix of clock and pid: uniqueness is still checked. */
static void random_getrandom(void *p, size_t n)
{
	unsigned char *b = p;
	uint64_t x;
	size_t i;

	if (getrandom(p, n, GRND_NONBLOCK) == (ssize_t)n)
		return;
	x = (uint64_t)mono_ms() * 6364136223846793005u ^ (uint64_t)wall_ms() ^ (uint64_t)getpid();
	for (i = 0; i < n; i++) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		b[i] = (unsigned char)(x >> 56);
	}
}

static void random_hex(char *out, size_t nbytes)
{
	unsigned char raw[32];
	size_t i;

	if (nbytes > sizeof(raw))
		nbytes = sizeof(raw);
	random_fill(raw, nbytes);
	for (i = 0; i < nbytes; i++) {
		out[2 * i] = "0123456789ABCDEF"[raw[i] >> 4];
		out[2 * i + 1] = "0123456789ABCDEF"[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
}

/* ---- names and checks -------------------------------------------------------------------- */

const char *dsn_action_name(enum dsn_action action)
{
	switch (action) {
	case DSN_ACTION_FAILED: return "failed";
	case DSN_ACTION_DELAYED: return "delayed";
	case DSN_ACTION_DELIVERED: return "delivered";
	case DSN_ACTION_RELAYED: return "relayed";
	case DSN_ACTION_EXPANDED: return "expanded";
	}
	return "failed";
}

/* "c.s.d": class 2, 4 or 5, subject and detail 1 to 3 digits (RFC 3463). */
static bool status_valid(const char *s)
{
	size_t a, b;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	a = strspn(s + 2, "0123456789");
	if (a < 1 || a > 3 || s[2 + a] != '.')
		return false;
	b = strspn(s + 3 + a, "0123456789");
	return b >= 1 && b <= 3 && s[3 + a + b] == '\0';
}

static const char *status_of(const struct dsn_rcpt *r)
{
	if (status_valid(r->status))
		return r->status;
	switch (r->action) {
	case DSN_ACTION_FAILED: return "5.0.0";
	case DSN_ACTION_DELAYED: return "4.0.0";
	default: return "2.0.0";
	}
}

/* Letters, digits, '-', '.', '_' only (host names, queue ids, diagnostic types). */
static bool token_valid(const char *s, size_t max)
{
	size_t n = s != NULL ? strnlen(s, max + 1) : 0;

	return n > 0 && n <= max &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == n;
}

static bool addr_valid(const char *s, size_t max)
{
	size_t n = s != NULL ? strnlen(s, max + 1) : 0;
	size_t i;

	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
			return false;
	return true;
}

static int fail(char *err, size_t errlen, int e, const char *why)
{
	(void)str_copy(err, errlen, why);
	errno = e;
	return -1;
}

static int check_input(const struct dsn_msg *m, const struct dsn_rcpt *r, size_t n,
		       char *err, size_t errlen)
{
	size_t i;

	if (m->kind > DSN_KIND_SUCCESS || !token_valid(m->myhostname, QF_MAX_HOSTNAME))
		return fail(err, errlen, EINVAL, "bad report kind or myhostname");
	if (!token_valid(m->qid, 64))
		return fail(err, errlen, EINVAL, "bad queue id");
	if (dsn_is_bounce(m->sender))
		return fail(err, errlen, EINVAL, "null sender: never bounce a bounce");
	if (!addr_valid(m->sender, QF_MAX_ADDR))
		return fail(err, errlen, EINVAL, "bad sender address");
	if (n == 0 || n > QF_MAX_RCPTS)
		return fail(err, errlen, EINVAL, "no recipients or too many");
	for (i = 0; i < n; i++) {
		if (!addr_valid(r[i].addr, QF_MAX_ADDR) || r[i].action > DSN_ACTION_EXPANDED)
			return fail(err, errlen, EINVAL, "bad recipient address or action");
		if (!empty(r[i].orcpt) && !addr_valid(r[i].orcpt, QF_MAX_ORCPT))
			return fail(err, errlen, EINVAL, "bad original recipient");
		if (r[i].diag_type != NULL && !token_valid(r[i].diag_type, 32))
			return fail(err, errlen, EINVAL, "bad diagnostic type");
	}
	return 0;
}

/* ---- policy ---------------------------------------------------------------------------- */

bool dsn_should_report(unsigned notify, enum dsn_action action, bool delay_by_default)
{
	if (notify & QF_NOTIFY_NEVER)
		return false;
	switch (action) {
	case DSN_ACTION_FAILED:
		return notify == 0 || (notify & QF_NOTIFY_FAILURE) != 0;
	case DSN_ACTION_DELAYED:
		return (notify & QF_NOTIFY_DELAY) != 0 || (notify == 0 && delay_by_default);
	case DSN_ACTION_DELIVERED:
	case DSN_ACTION_RELAYED:
	case DSN_ACTION_EXPANDED:
		return (notify & QF_NOTIFY_SUCCESS) != 0;
	}
	return false;
}

bool dsn_is_bounce(const char *sender)
{
	return sender == NULL || sender[0] == '\0' || strcmp(sender, "<>") == 0;
}

/* ---- filling from a queue file ------------------------------------------------------------ */

void dsn_msg_from_qf(struct dsn_msg *msg, const struct qf *q, int fd, const char *myhostname,
		     enum dsn_kind kind)
{
	*msg = (struct dsn_msg){
		.kind = kind, .myhostname = myhostname, .qid = q->env.qid,
		.sender = q->env.sender, .envid = q->env.envid, .ret = q->env.ret,
		.smtputf8 = (q->env.flags & QF_F_SMTPUTF8) != 0,
		.arrival_ms = q->env.arrival_ms, .client_name = q->env.client_name,
		.client_addr = q->env.client_addr, .msg_fd = fd, .msg_off = q->msg_off,
		.msg_len = q->msg_len, .return_limit = DSN_RETURN_LIMIT_DEFAULT,
	};
}

void dsn_rcpt_from_qf(struct dsn_rcpt *r, const struct qf_rcpt *q)
{
	enum dsn_action action = DSN_ACTION_DELAYED;

	if (q->status.state == QF_BOUNCED)
		action = DSN_ACTION_FAILED;
	else if (q->status.state == QF_DELIVERED)
		action = DSN_ACTION_DELIVERED;
	*r = (struct dsn_rcpt){
		.addr = q->addr, .orcpt = q->orcpt, .action = action,
		.status = q->status.dsn[0] != '\0' ? q->status.dsn : NULL,
		.last_attempt_ms = q->status.last_ms,
	};
}

/* ---- addresses in report fields ---------------------------------------------------------- */

/* "rfc822; addr", or "utf-8; addr" for a non-ASCII address (RFC 6533; only in a global
 * report, which every non-ASCII address makes this one). */
static void put_typed_addr(struct out *v, const char *type, const char *addr, size_t max)
{
	if (!is_ascii(addr)) {
		put_str(v, "utf-8; ");
		put_clean(v, addr, max, C_UTF8);
		return;
	}
	put_str(v, type);
	put_str(v, "; ");
	put_clean(v, addr, max, 0);
}

/* Split an ORCPT as stored ("rfc822;addr") into its type and address. A value without a
 * type is taken as an rfc822 address. False if there is no address. */
static bool orcpt_split(const char *orcpt, char *type, size_t typesize, const char **addr)
{
	const char *semi;
	size_t tl;

	if (empty(orcpt))
		return false;
	semi = strchr(orcpt, ';');
	tl = semi != NULL ? (size_t)(semi - orcpt) : 0;
	if (semi == NULL || tl == 0 || tl >= typesize ||
	    strspn(orcpt, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != tl) {
		(void)str_copy(type, typesize, "rfc822");
		*addr = orcpt;
	} else {
		memcpy(type, orcpt, tl);
		type[tl] = '\0';
		*addr = semi + 1 + strspn(semi + 1, " \t");
	}
	return **addr != '\0';
}

/* ---- part 1: the human-readable explanation ------------------------------------------------ */

static void put_para(struct out *o, const char *text)
{
	put_folded(o, "", text, TEXT_WIDTH, "");
	put_str(o, "\r\n");
}

static const char *action_text(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED: return "delivery failed";
	case DSN_ACTION_DELAYED: return "delivery temporarily deferred";
	case DSN_ACTION_DELIVERED: return "delivered";
	case DSN_ACTION_RELAYED: return "passed on to a system that does not report delivery";
	case DSN_ACTION_EXPANDED: return "delivered to an alias or mailing list";
	}
	return "";
}

/* "<addr> (expanded from <orcpt>): host mx said: 550 ...", wrapped. */
static void put_rcpt_text(struct out *o, struct out *v, const struct dsn_rcpt *r, unsigned cf)
{
	char type[32];
	const char *orig;

	put_str(v, "<");
	put_clean(v, r->addr, QF_MAX_ADDR, cf);
	put_str(v, ">");
	if (orcpt_split(r->orcpt, type, sizeof(type), &orig) && strcmp(orig, r->addr) != 0) {
		put_str(v, " (expanded from <");
		put_clean(v, orig, QF_MAX_ORCPT, cf);
		put_str(v, ">)");
	}
	put_str(v, ": ");
	if (!empty(r->remote_mta) && !empty(r->diag)) {
		put_str(v, "host ");
		put_clean(v, r->remote_mta, QF_MAX_HOSTNAME, C_COLLAPSE);
		put_str(v, " said: ");
	}
	if (!empty(r->diag))
		put_clean(v, r->diag, DSN_DIAG_MAX, C_COLLAPSE);
	else
		put_fmt(v, "%s (%s)", action_text(r->action), status_of(r));
	if (v->err != 0 && o->err == 0)
		o->err = v->err;
	put_folded(o, "", buf_cstr(v->b), TEXT_WIDTH, "    ");
	put_str(o, "\r\n");
	buf_reset(v->b);
}

static void put_intro(struct out *o, struct out *v, const struct dsn_msg *m,
		      const struct dsn_rcpt *r, size_t n)
{
	char date[DATE_SIZE];
	int64_t until = 0;
	size_t i;

	put_fmt(v, "This is the mail system at host %s.", m->myhostname);
	put_para(o, buf_cstr(v->b));
	buf_reset(v->b);
	switch (m->kind) {
	case DSN_KIND_FAILURE:
		put_para(o, "Your message could not be delivered to one or more of its "
			    "recipients. The reason for each is given below, and the message "
			    "(or its header) is attached.");
		put_para(o, "If you need help, write to the postmaster and include this "
			    "report; you may remove your own text from the attached copy.");
		break;
	case DSN_KIND_DELAY:
		for (i = 0; i < n; i++)
			if (r[i].retry_until_ms > until)
				until = r[i].retry_until_ms;
		put_para(o, "THIS IS ONLY A WARNING: there is no need to send your message again.");
		put_str(v, "Delivery to the recipients below has been delayed. The mail system "
			   "keeps trying");
		if (until > 0) {
			fmt_date(until, date, sizeof(date));
			put_fmt(v, " until %s", date);
		}
		put_str(v, " and will tell you if it finally gives up.");
		put_para(o, buf_cstr(v->b));
		buf_reset(v->b);
		break;
	case DSN_KIND_SUCCESS:
		put_para(o, "Your message was delivered to the recipients listed below. Where a "
			    "recipient was relayed or expanded, it was passed on and no further "
			    "report may follow.");
		break;
	}
	put_para(o, "                   The mail system");
}

static void compose_text(struct out *o, struct out *v, const struct dsn_msg *m,
			 const struct dsn_rcpt *r, size_t n, bool global)
{
	size_t i;

	put_intro(o, v, m, r, n);
	for (i = 0; i < n; i++)
		put_rcpt_text(o, v, &r[i], global ? C_UTF8 : 0);
}

/* ---- part 2: message/delivery-status ------------------------------------------------------- */

static void put_date_field(struct out *o, struct out *v, const char *name, int64_t ms)
{
	char date[DATE_SIZE];

	fmt_date(ms, date, sizeof(date));
	put_str(v, date);
	put_field(o, name, v);
}

static void put_message_fields(struct out *o, struct out *v, const struct dsn_msg *m)
{
	put_fmt(v, "dns; %s", m->myhostname);
	put_field(o, "Reporting-MTA", v);
	put_str(v, m->qid);
	put_field(o, "X-Postern-Queue-ID", v);
	put_typed_addr(v, "rfc822", m->sender, QF_MAX_ADDR);
	put_field(o, "X-Postern-Sender", v);
	if (!empty(m->client_name)) {
		put_str(v, "dns; ");
		put_clean(v, m->client_name, QF_MAX_HOSTNAME, C_COLLAPSE);
		if (!empty(m->client_addr)) {
			put_str(v, " ([");
			put_clean(v, m->client_addr, QF_MAX_CLIENT_ADDR, C_COLLAPSE);
			put_str(v, "])");
		}
		put_field(o, "Received-From-MTA", v);
	}
	if (!empty(m->envid)) {
		put_clean(v, m->envid, QF_MAX_ENVID, 0);
		put_field(o, "Original-Envelope-Id", v);
	}
	if (m->arrival_ms > 0)
		put_date_field(o, v, "Arrival-Date", m->arrival_ms);
}

static void put_rcpt_fields(struct out *o, struct out *v, const struct dsn_rcpt *r)
{
	char type[32];
	const char *orig;

	put_str(o, "\r\n");
	put_typed_addr(v, "rfc822", r->addr, QF_MAX_ADDR);
	put_field(o, "Final-Recipient", v);
	if (orcpt_split(r->orcpt, type, sizeof(type), &orig)) {
		put_typed_addr(v, type, orig, QF_MAX_ORCPT);
		put_field(o, "Original-Recipient", v);
	}
	put_str(v, dsn_action_name(r->action));
	put_field(o, "Action", v);
	put_str(v, status_of(r));
	put_field(o, "Status", v);
	if (!empty(r->remote_mta)) {
		put_str(v, "dns; ");
		put_clean(v, r->remote_mta, QF_MAX_HOSTNAME, C_COLLAPSE);
		put_field(o, "Remote-MTA", v);
	}
	if (!empty(r->diag)) {
		put_str(v, r->diag_type != NULL ? r->diag_type : "smtp");
		put_str(v, "; ");
		put_clean(v, r->diag, DSN_DIAG_MAX, C_COLLAPSE);
		put_field(o, "Diagnostic-Code", v);
	}
	if (r->last_attempt_ms > 0)
		put_date_field(o, v, "Last-Attempt-Date", r->last_attempt_ms);
	if (r->action == DSN_ACTION_DELAYED && r->retry_until_ms > 0)
		put_date_field(o, v, "Will-Retry-Until", r->retry_until_ms);
}

static void compose_status(struct out *o, struct out *v, const struct dsn_msg *m,
			   const struct dsn_rcpt *r, size_t n)
{
	size_t i;

	put_message_fields(o, v, m);
	for (i = 0; i < n; i++)
		put_rcpt_fields(o, v, &r[i]);
}

/* ---- part 3: the original ------------------------------------------------------------------ */

enum returned { RETURN_NONE, RETURN_HEADERS, RETURN_FULL };

static int read_exact(int fd, off_t off, char *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* Fit to be sent as 8bit MIME content: CRLF lines of at most 998 octets, no NUL. */
static bool full_ok(const char *d, size_t len)
{
	size_t i, col = 0;

	for (i = 0; i < len; i++) {
		if (d[i] == '\0')
			return false;
		if (d[i] == '\r') {
			if (i + 1 >= len || d[i + 1] != '\n')
				return false;
			i++, col = 0;
			continue;
		}
		if (d[i] == '\n' || ++col > DSN_LINE_MAX)
			return false;
	}
	return true;
}

/* Length of the header section of d[0..len) (without the empty line). complete: d is the
 * whole message, so a last line without a line end still counts. */
static size_t header_len(const char *d, size_t len, bool complete)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(d + pos, '\n', len - pos);
		size_t end;
		if (nl == NULL)
			return complete ? len : pos;
		end = (size_t)(nl - d) + 1;
		if (end - pos == 1 || (end - pos == 2 && d[pos] == '\r'))
			return pos;
		pos = end;
	}
	return pos;
}

/* One line, NUL and stray CR made spaces, folded at DSN_LINE_MAX, ended with CRLF. */
static void put_line(struct out *o, const char *p, size_t n)
{
	size_t i = 0, col = 0;

	while (i < n) {
		size_t run = 0;
		while (i + run < n && p[i + run] != '\0' && p[i + run] != '\r' &&
		       col + run < DSN_LINE_MAX)
			run++;
		put(o, p + i, run), i += run, col += run;
		if (i < n && col >= DSN_LINE_MAX) {
			put_str(o, "\r\n ");
			col = 1;
		} else if (i < n) {
			put(o, " ", 1), i++, col++;
		}
	}
	put_str(o, "\r\n");
}

static void put_original(struct out *o, const char *d, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(d + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - d) : len, stop = end;
		if (stop > pos && d[stop - 1] == '\r')
			stop--;
		put_line(o, d + pos, stop - pos);
		pos = nl != NULL ? end + 1 : len;
	}
}

/* Read what is returned of the original into o; *what says what it is. */
static int compose_original(struct out *o, const struct dsn_msg *m, enum returned *what,
			    char *err, size_t errlen)
{
	bool want_full = m->kind == DSN_KIND_FAILURE && m->ret != QF_RET_HDRS &&
			 m->return_limit > 0 && m->msg_len <= m->return_limit;
	size_t n = (size_t)(m->msg_len < DSN_HEADERS_MAX ? m->msg_len : DSN_HEADERS_MAX);
	char *d;

	*what = RETURN_NONE;
	if (m->msg_fd < 0)
		return 0;
	if (want_full)
		n = (size_t)m->msg_len;
	d = xmalloc(n + 1);
	if (read_exact(m->msg_fd, m->msg_off, d, n) < 0) {
		int e = errno;
		free(d);
		return fail(err, errlen, e, "cannot read the original message");
	}
	if (want_full && full_ok(d, n)) {
		put(o, d, n);
		if (n > 0 && d[n - 1] != '\n')
			put_str(o, "\r\n");
		*what = RETURN_FULL;
	} else {
		put_original(o, d, header_len(d, n, n == m->msg_len));
		*what = RETURN_HEADERS;
	}
	free(d);
	return 0;
}

/* ---- assembly ------------------------------------------------------------------------------ */

static bool has_8bit(const struct buf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] >= 0x80)
			return true;
	return false;
}

/* A boundary found in none of the parts ("=_" cannot occur in base64 or quoted-printable
 * text either). -1 if every try collided, which random bytes make practically impossible. */
static int pick_boundary(char *out, size_t size, const struct buf *parts, size_t nparts)
{
	char hex[33];
	int t;
	size_t i;

	for (t = 0; t < BOUNDARY_TRIES; t++) {
		bool clash = false;
		random_hex(hex, 16);
		if (str_fmt(out, size, "=_Postern-%s", hex) < 0)
			return -1;
		for (i = 0; i < nparts && !clash; i++)
			clash = parts[i].len > 0 && memmem(parts[i].data, parts[i].len, out,
							   strlen(out)) != NULL;
		if (!clash)
			return 0;
	}
	return -1;
}

static const char *subject_of(enum dsn_kind kind)
{
	switch (kind) {
	case DSN_KIND_FAILURE: return "Undelivered Mail Returned to Sender";
	case DSN_KIND_DELAY: return "Delayed Mail (still being retried)";
	case DSN_KIND_SUCCESS: return "Successful Mail Delivery Report";
	}
	return "";
}

static void put_top_headers(struct out *o, struct out *v, const struct dsn_msg *m,
			    const char *boundary, bool global, bool eight)
{
	int64_t now = m->now_ms > 0 ? m->now_ms : wall_ms();
	time_t t = (time_t)(now / 1000);
	struct tm tm;
	char rnd[9];

	put_date_field(o, v, "Date", now);
	put_fmt(v, "MAILER-DAEMON@%s (Mail Delivery System)", m->myhostname);
	put_field(o, "From", v);
	put_str(v, subject_of(m->kind));
	put_field(o, "Subject", v);
	put_str(v, "<");
	put_clean(v, m->sender, QF_MAX_ADDR, global ? C_UTF8 : 0);
	put_str(v, ">");
	put_field(o, "To", v);
	put_str(v, "auto-replied");
	put_field(o, "Auto-Submitted", v);
	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	random_hex(rnd, 4);
	put_fmt(v, "<%04d%02d%02d%02d%02d%02d.%s.%s@%s>", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, m->qid, rnd, m->myhostname);
	put_field(o, "Message-ID", v);
	put_str(v, "1.0");
	put_field(o, "MIME-Version", v);
	put_fmt(v, "multipart/report; report-type=%s; boundary=\"%s\"",
		global ? "global-delivery-status" : "delivery-status", boundary);
	put_field(o, "Content-Type", v);
	if (eight) {
		put_str(v, "8bit");
		put_field(o, "Content-Transfer-Encoding", v);
	}
	put_str(o, "\r\nThis is a MIME-encapsulated message.\r\n");
}

static void put_part(struct out *o, const char *boundary, const char *desc, const char *type,
		     const struct buf *body)
{
	bool eight = has_8bit(body);

	put_fmt(o, "\r\n--%s\r\n", boundary);
	put_fmt(o, "Content-Description: %s\r\n", desc);
	put_fmt(o, "Content-Type: %s\r\n", type);
	if (eight)
		put_str(o, "Content-Transfer-Encoding: 8bit\r\n");
	put_str(o, "\r\n");
	put(o, body->data != NULL ? body->data : "", body->len);
}

/* Part 3's description and type. */
static void original_type(const struct dsn_msg *m, enum returned what, bool global,
			  const char **desc, const char **type)
{
	static const char *const descs[3][2] = {
		{ "Undelivered Message Headers", "Undelivered Message" },
		{ "Delayed Message Headers", "Delayed Message" },
		{ "Delivered Message Headers", "Delivered Message" },
	};

	*desc = descs[m->kind][what == RETURN_FULL];
	if (what == RETURN_FULL)
		*type = global ? "message/global" : "message/rfc822";
	else
		*type = global ? "message/global-headers" : "text/rfc822-headers";
}

static bool report_is_global(const struct dsn_msg *m, const struct dsn_rcpt *r, size_t n)
{
	size_t i;

	if (m->smtputf8 || !is_ascii(m->sender))
		return true;
	for (i = 0; i < n; i++)
		if (!is_ascii(r[i].addr) || !is_ascii(r[i].orcpt))
			return true;
	return false;
}

static void assemble(struct out *o, struct out *v, const struct dsn_msg *m,
		     const struct buf parts[3], enum returned what, const char *boundary,
		     bool global)
{
	bool text8 = has_8bit(&parts[0]);
	const char *desc, *type;

	put_top_headers(o, v, m, boundary, global,
			text8 || has_8bit(&parts[1]) || has_8bit(&parts[2]));
	put_part(o, boundary, "Notification",
		 text8 ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii", &parts[0]);
	put_part(o, boundary, "Delivery report",
		 global ? "message/global-delivery-status" : "message/delivery-status", &parts[1]);
	if (what != RETURN_NONE) {
		original_type(m, what, global, &desc, &type);
		put_part(o, boundary, desc, type, &parts[2]);
	}
	put_fmt(o, "\r\n--%s--\r\n", boundary);
}

static int compose_parts(const struct dsn_msg *m, const struct dsn_rcpt *r, size_t n,
			 bool global, struct buf parts[3], struct out *v, enum returned *what,
			 char *err, size_t errlen)
{
	struct out text = { &parts[0], 0 }, status = { &parts[1], 0 }, orig = { &parts[2], 0 };

	compose_text(&text, v, m, r, n, global);
	compose_status(&status, v, m, r, n);
	if (compose_original(&orig, m, what, err, errlen) < 0)
		return -1;
	if (text.err != 0 || status.err != 0 || orig.err != 0) {
		int e = text.err != 0 ? text.err : status.err != 0 ? status.err : orig.err;
		return fail(err, errlen, e, e == EMSGSIZE ? "report too large" : "report field too long");
	}
	return 0;
}

int dsn_compose(const struct dsn_msg *msg, const struct dsn_rcpt *rcpt, size_t nrcpt,
		struct buf *out, struct dsn_result *res, char *err, size_t errlen)
{
	struct buf parts[3], vb;
	struct out o = { out, 0 }, v = { &vb, 0 };
	size_t start = out->len, i;
	char boundary[64];
	enum returned what = RETURN_NONE;
	bool global;
	int rc = -1;

	*res = (struct dsn_result){ 0 };
	if (check_input(msg, rcpt, nrcpt, err, errlen) < 0)
		return -1;
	global = report_is_global(msg, rcpt, nrcpt);
	for (i = 0; i < 3; i++)
		buf_init(&parts[i], out->limit);
	buf_init(&vb, 2 * VALUE_MAX);
	if (compose_parts(msg, rcpt, nrcpt, global, parts, &v, &what, err, errlen) < 0)
		goto done;
	if (pick_boundary(boundary, sizeof(boundary), parts, 3) < 0) {
		(void)fail(err, errlen, EAGAIN, "no usable MIME boundary");
		goto done;
	}
	assemble(&o, &v, msg, parts, what, boundary, global);
	if (o.err != 0 || v.err != 0) {
		int e = o.err != 0 ? o.err : v.err;
		(void)fail(err, errlen, e, e == EMSGSIZE ? "report too large" : "report field too long");
		goto done;
	}
	res->needs_8bit = has_8bit(&parts[0]) || has_8bit(&parts[1]) || has_8bit(&parts[2]);
	res->needs_smtputf8 = !is_ascii(msg->sender);
	res->returned_full = what == RETURN_FULL;
	res->returned_headers = what == RETURN_HEADERS;
	rc = 0;
done:
	for (i = 0; i < 3; i++)
		buf_free(&parts[i]);
	buf_free(&vb);
	if (rc < 0 && out->data != NULL) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}
