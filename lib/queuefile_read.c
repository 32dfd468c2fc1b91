/*
 * queuefile_read.c: the strict queue-file reader. It reads the envelope through a bounded
 * window (every length is checked against its record type's limit and the file size before
 * anything is read), checks each record as it comes, then checks the message record's
 * length and the END record against the file size, so a truncated, torn or foreign file
 * never validates. The message bytes are not read. Format: queuefile.h.
 */
#include "queuefile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queuefile_priv.h"
#include "util.h"

#define RD_WINDOW	(64 * 1024)	/* > any envelope record, so one refill serves one */
#define RD_MAX_MAGIC	64

/* One entry per record type, in the order the records must appear. */
struct rule {
	int type;
	const char *name;
	uint32_t min, max;
	int required;
};

static const struct rule rules[] = {
	{ QF_REC_MAGIC, "magic", sizeof(QF_MAGIC) - 1, sizeof(QF_MAGIC) - 1, 1 },
	{ QF_REC_QID, "queue id", QF_QID_LEN, QF_QID_LEN, 1 },
	{ QF_REC_TIME, "arrival time", 8, 8, 1 },
	{ QF_REC_SENDER, "sender", 0, QF_MAX_ADDR, 1 },
	{ QF_REC_CLIENT_ADDR, "client address", 0, QF_MAX_CLIENT_ADDR, 1 },
	{ QF_REC_CLIENT_NAME, "client name", 0, QF_MAX_HOSTNAME, 1 },
	{ QF_REC_HELO, "helo", 0, QF_MAX_HOSTNAME, 1 },
	{ QF_REC_AUTH, "auth user", 1, QF_MAX_ADDR, 0 },
	{ QF_REC_SIZE, "size", 8, 8, 1 },
	{ QF_REC_BODY, "body type", 1, 1, 1 },
	{ QF_REC_FLAGS, "flags", 4, 4, 1 },
	{ QF_REC_RET, "DSN RET", 1, 1, 0 },
	{ QF_REC_ENVID, "ENVID", 1, QF_MAX_ENVID, 0 },
	{ QF_REC_RCPT, "recipient", QF_RCPT_FIXED + 1, QF_RCPT_FIXED + QF_MAX_ORCPT + QF_MAX_ADDR, 1 },
	{ QF_REC_EOE, "end-of-envelope", 0, 0, 1 },
	{ QF_REC_MSG, "message", 0, UINT32_MAX, 1 },
	{ QF_REC_END, "END", 8, 8, 1 },
};

struct rd {
	int fd;
	uint64_t fsize;
	unsigned char *win;	/* RD_WINDOW bytes of the file from win_off */
	uint64_t win_off;
	size_t win_len;
	unsigned recno;		/* 1-based number of the record being read */
	uint64_t off;		/* its offset */
	unsigned seen;		/* bit per rules[] index */
	int last;		/* rules[] index of the previous record */
	size_t rcap;		/* recipients allocated */
	char *err;
	size_t errlen;
};

static int fail(struct rd *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct rd *rd, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	str_fmt(rd->err, rd->errlen, "record %u at offset %" PRIu64 ": %s", rd->recno, rd->off,
		why);
	return -1;
}

static int rule_index(int type)
{
	for (size_t i = 0; i < ARRAY_LEN(rules); i++)
		if (rules[i].type == type)
			return (int)i;
	return -1;
}

/* n bytes at file offset off (the caller checked they lie inside the file), or NULL. */
static const unsigned char *rd_get(struct rd *rd, uint64_t off, size_t n)
{
	size_t want, got = 0;

	if (off >= rd->win_off && off - rd->win_off <= rd->win_len &&
	    n <= rd->win_len - (off - rd->win_off))
		return rd->win + (off - rd->win_off);
	want = rd->fsize - off < RD_WINDOW ? (size_t)(rd->fsize - off) : RD_WINDOW;
	while (got < want) {
		ssize_t r = pread(rd->fd, rd->win + got, want - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	rd->win_off = off;
	rd->win_len = got;
	return n <= got ? rd->win : NULL;
}

/* Read the header of the record at rd->off: type and length, checked against the file. */
static int rd_header(struct rd *rd, int *type, uint32_t *len)
{
	const unsigned char *h;

	if (rd->fsize - rd->off < QF_HDR_LEN)
		return fail(rd, "truncated record header");
	if ((h = rd_get(rd, rd->off, QF_HDR_LEN)) == NULL)
		return fail(rd, "read error: %s", strerror(errno ? errno : EIO));
	*type = h[0];
	*len = qf_get32(h + 1);
	return 0;
}

static int check_magic(struct rd *rd, int type, uint32_t len)
{
	const unsigned char *p;
	static const char prefix[] = "POSTERN-QUEUE ";

	if (type != QF_REC_MAGIC || len > RD_MAX_MAGIC || len > rd->fsize - QF_HDR_LEN ||
	    (p = rd_get(rd, QF_HDR_LEN, len)) == NULL ||
	    len < sizeof(prefix) - 1 || memcmp(p, prefix, sizeof(prefix) - 1) != 0)
		return fail(rd, "not a Postern queue file");
	if (len != sizeof(QF_MAGIC) - 1 || memcmp(p, QF_MAGIC, len) != 0)
		return fail(rd, "unsupported queue file version");
	return 0;
}

static int take_str(struct rd *rd, const struct rule *r, const unsigned char *p, uint32_t len,
		    char **dst)
{
	const char *why = qf_text_problem((const char *)p, len, r->max, r->min == 0);

	if (why)
		return fail(rd, "%s %s", r->name, why);
	*dst = xstrndup((const char *)p, len);
	return 0;
}

static int take_rcpt(struct rd *rd, struct qf_envelope *env, const unsigned char *p,
		     uint32_t len)
{
	struct qf_rcpt r = { 0 };
	const char *why;
	uint32_t olen, alen;

	if (env->nrcpt >= QF_MAX_RCPTS)
		return fail(rd, "more than %d recipients", QF_MAX_RCPTS);
	if ((why = qf_status_decode(p, &r.status)) != NULL)
		return fail(rd, "recipient status: %s", why);
	r.notify = p[QF_STATUS_LEN];
	if ((why = qf_notify_problem(r.notify)) != NULL)
		return fail(rd, "recipient %s", why);
	olen = qf_get16(p + QF_STATUS_LEN + 1);
	if (olen > QF_MAX_ORCPT)
		return fail(rd, "recipient ORCPT too long");
	if (olen >= len - QF_RCPT_FIXED)
		return fail(rd, "recipient ORCPT length leaves no room for the address");
	alen = len - QF_RCPT_FIXED - olen;
	p += QF_RCPT_FIXED;
	if ((why = qf_text_problem((const char *)p, olen, QF_MAX_ORCPT, 1)) != NULL)
		return fail(rd, "recipient ORCPT %s", why);
	if ((why = qf_text_problem((const char *)p + olen, alen, QF_MAX_ADDR, 0)) != NULL)
		return fail(rd, "recipient address %s", why);
	if (env->nrcpt == rd->rcap) {
		rd->rcap = rd->rcap ? rd->rcap * 2 : 8;
		if (rd->rcap > QF_MAX_RCPTS)
			rd->rcap = QF_MAX_RCPTS;
		env->rcpt = xreallocarray(env->rcpt, rd->rcap, sizeof(*env->rcpt));
	}
	r.orcpt = xstrndup((const char *)p, olen);
	r.addr = xstrndup((const char *)p + olen, alen);
	r.status_off = (off_t)(rd->off + QF_HDR_LEN);
	env->rcpt[env->nrcpt++] = r;
	return 0;
}

/* One envelope record's payload (its length already checked against its rule). */
static int take(struct rd *rd, struct qf_envelope *env, const struct rule *r,
		const unsigned char *p, uint32_t len)
{
	switch (r->type) {
	case QF_REC_MAGIC:
	case QF_REC_EOE:
		return 0;
	case QF_REC_QID:
		memcpy(env->qid, p, QF_QID_LEN);
		env->qid[QF_QID_LEN] = '\0';
		return qid_valid(env->qid) ? 0 : fail(rd, "invalid queue id");
	case QF_REC_TIME:
		env->arrival_ms = (int64_t)qf_get64(p);
		return env->arrival_ms >= 0 ? 0 : fail(rd, "negative arrival time");
	case QF_REC_SENDER: return take_str(rd, r, p, len, &env->sender);
	case QF_REC_CLIENT_ADDR: return take_str(rd, r, p, len, &env->client_addr);
	case QF_REC_CLIENT_NAME: return take_str(rd, r, p, len, &env->client_name);
	case QF_REC_HELO: return take_str(rd, r, p, len, &env->helo);
	case QF_REC_AUTH: return take_str(rd, r, p, len, &env->auth_user);
	case QF_REC_ENVID: return take_str(rd, r, p, len, &env->envid);
	case QF_REC_SIZE:
		env->size = qf_get64(p);
		return 0;
	case QF_REC_BODY:
		env->body = (enum qf_body)p[0];
		return p[0] <= QF_BODY_BINARYMIME ? 0 : fail(rd, "unknown body type %u", p[0]);
	case QF_REC_FLAGS:
		env->flags = qf_get32(p);
		return env->flags & ~QF_F_KNOWN ? fail(rd, "unknown flags 0x%x", env->flags) : 0;
	case QF_REC_RET:
		env->ret = (enum qf_ret)p[0];
		return p[0] == QF_RET_FULL || p[0] == QF_RET_HDRS ? 0
			: fail(rd, "unknown DSN RET value %u", p[0]);
	case QF_REC_RCPT: return take_rcpt(rd, env, p, len);
	}
	return fail(rd, "%s record inside the envelope", r->name);
}

/* Type, order, duplicate and length checks of the record at rd->off; its rules[] index. */
static int check_record(struct rd *rd, int type, uint32_t len)
{
	int i = rule_index(type);
	const struct rule *r;

	if (i < 0)
		return fail(rd, "unknown record type 0x%02x", (unsigned)type);
	r = &rules[i];
	if ((rd->seen & (1u << i)) && type != QF_REC_RCPT)
		return fail(rd, "duplicate %s record", r->name);
	if (i < rd->last)
		return fail(rd, "%s record out of order", r->name);
	if (type == QF_REC_MSG || type == QF_REC_END)
		return fail(rd, "%s record before the end of the envelope", r->name);
	if (len > r->max)
		return fail(rd, "%s too long (%" PRIu32 " bytes)", r->name, len);
	if (len < r->min)
		return fail(rd, "%s record too short (%" PRIu32 " bytes)", r->name, len);
	if (len > rd->fsize - rd->off - QF_HDR_LEN)
		return fail(rd, "%s record runs past the end of the file", r->name);
	return i;
}

static int missing_required(struct rd *rd, const struct qf_envelope *env)
{
	for (size_t i = 0; i < ARRAY_LEN(rules); i++)
		if (rules[i].required && rules[i].type != QF_REC_MSG &&
		    rules[i].type != QF_REC_END && !(rd->seen & (1u << i)))
			return fail(rd, "envelope has no %s record", rules[i].name);
	return env->nrcpt ? 0 : fail(rd, "envelope has no recipient");
}

/* Everything from the magic record through the end-of-envelope record. */
static int read_envelope(struct rd *rd, struct qf_envelope *env)
{
	for (;;) {
		const unsigned char *p;
		uint32_t len;
		int type, i;

		rd->recno++;
		if (rd_header(rd, &type, &len) < 0)
			return -1;
		if (rd->recno == 1 && check_magic(rd, type, len) < 0)
			return -1;
		if ((i = check_record(rd, type, len)) < 0)
			return -1;
		if ((p = rd_get(rd, rd->off + QF_HDR_LEN, len)) == NULL)
			return fail(rd, "read error: %s", strerror(errno ? errno : EIO));
		if (take(rd, env, &rules[i], p, len) < 0)
			return -1;
		rd->seen |= 1u << i;
		rd->last = i;
		if (type == QF_REC_EOE)
			return missing_required(rd, env);
		rd->off += QF_HDR_LEN + (uint64_t)len;
	}
}

/* The message record (length only) and the END record, which must end the file. */
static int read_tail(struct rd *rd, struct qf *q)
{
	const unsigned char *p;
	uint64_t end_off, total;
	uint32_t len;
	int type;

	rd->off += QF_HDR_LEN;		/* past end-of-envelope (empty) */
	rd->recno++;
	if (rd->off == rd->fsize)
		return fail(rd, "message record missing (file truncated?)");
	if (rd_header(rd, &type, &len) < 0)
		return -1;
	if (type != QF_REC_MSG)
		return fail(rd, "expected the message record, found type 0x%02x", (unsigned)type);
	if (len > rd->fsize - rd->off - QF_HDR_LEN)
		return fail(rd, "message record runs past the end of the file (truncated?)");
	q->msg_off = (off_t)(rd->off + QF_HDR_LEN);
	q->msg_len = len;
	end_off = rd->off + QF_HDR_LEN + len;
	rd->off = end_off;
	rd->recno++;
	if (end_off == rd->fsize)
		return fail(rd, "END record missing (file truncated?)");
	if (rd_header(rd, &type, &len) < 0)
		return -1;
	if (type != QF_REC_END)
		return fail(rd, "expected the END record, found type 0x%02x", (unsigned)type);
	if (len != 8 || rd->fsize - end_off != QF_END_LEN)
		return fail(rd, "END record has the wrong length or is not at the end of the file");
	if ((p = rd_get(rd, end_off + QF_HDR_LEN, 8)) == NULL)
		return fail(rd, "read error: %s", strerror(errno ? errno : EIO));
	total = qf_get64(p);
	if (total != end_off)
		return fail(rd, "END record says %" PRIu64 " bytes precede it, but %" PRIu64 " do",
			    total, end_off);
	return 0;
}

int qf_open_fd(int fd, struct qf *out, char *err, size_t errlen)
{
	struct rd rd = { .fd = fd, .err = err, .errlen = errlen };
	struct stat st;
	int rc;

	memset(out, 0, sizeof(*out));
	if (fstat(fd, &st) < 0) {
		str_fmt(err, errlen, "fstat: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		str_fmt(err, errlen, st.st_size == 0 ? "empty file" : "not a regular file");
		return -1;
	}
	rd.fsize = (uint64_t)st.st_size;
	rd.win = xmalloc(RD_WINDOW);
	rc = read_envelope(&rd, &out->env);
	if (rc == 0)
		rc = read_tail(&rd, out);
	free(rd.win);
	if (rc < 0) {
		qf_free(out);
		return -1;
	}
	out->file_size = rd.fsize;
	return 0;
}

void qf_free(struct qf *q)
{
	struct qf_envelope *e = &q->env;

	for (size_t i = 0; i < e->nrcpt; i++) {
		free(e->rcpt[i].addr);
		free(e->rcpt[i].orcpt);
	}
	free(e->rcpt);
	free(e->sender);
	free(e->client_addr);
	free(e->client_name);
	free(e->helo);
	free(e->auth_user);
	free(e->envid);
	memset(q, 0, sizeof(*q));
}
