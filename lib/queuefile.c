/*
 * queuefile.c: queue ids, the envelope and status checks the writer and the reader share,
 * the queue-file writer (smtpd and the queue daemon) and the in-place recipient status
 * update (qmgr). The format is described in queuefile.h; the reader is queuefile_read.c.
 */
#include "queuefile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queuefile_priv.h"
#include "util.h"

/* ---- queue ids ------------------------------------------------------------------------ */

#define QID_TIME_DIGITS	13
#define QID_TIME_MASK	((UINT64_C(1) << (4 * QID_TIME_DIGITS)) - 1)

/* The last time (microseconds) handed out by this process: ids take max(now, last + 1), so
 * one process never repeats a time even within a microsecond or when the clock steps back. */
static uint64_t qid_last_us;

int qid_new(char *buf, size_t size)
{
	struct timespec ts;
	uint64_t now, last, next;

	if (buf == NULL || size < QF_QID_SIZE || clock_gettime(CLOCK_REALTIME, &ts) != 0) {
		errno = EINVAL;
		return -1;
	}
	now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	last = __atomic_load_n(&qid_last_us, __ATOMIC_RELAXED);
	do
		next = now > last ? now : last + 1;
	while (!__atomic_compare_exchange_n(&qid_last_us, &last, next, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED));
	return str_fmt(buf, size, "%013" PRIX64 "%06X", next & QID_TIME_MASK,
		       (unsigned)getpid() & 0xffffffu) < 0 ? -1 : 0;
}

int qid_valid(const char *id)
{
	size_t i;

	if (id == NULL || strnlen(id, QF_QID_SIZE) != QF_QID_LEN)
		return 0;
	for (i = 0; i < QF_QID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
			return 0;
	return 1;
}

int qid_subdir(const char *id, char *buf, size_t size)
{
	if (!qid_valid(id) || buf == NULL || size < QF_SUBDIR_SIZE) {
		errno = EINVAL;
		return -1;
	}
	/* The fastest-changing time digits, so consecutive messages spread out. */
	buf[0] = id[QID_TIME_DIGITS - 1];
	buf[1] = '/';
	buf[2] = id[QID_TIME_DIGITS - 2];
	buf[3] = '\0';
	return 0;
}

/* ---- shared checks -------------------------------------------------------------------- */

const char *qf_text_problem(const char *s, size_t len, size_t max, int empty_ok)
{
	if (len > max)
		return "too long";
	if (len == 0 && !empty_ok)
		return "empty";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == 0)
			return "contains a NUL byte";
		if (c < 0x20 || c == 0x7f)
			return "contains a control character";
	}
	return NULL;
}

const char *qf_notify_problem(unsigned notify)
{
	if (notify & ~(QF_NOTIFY_SUCCESS | QF_NOTIFY_FAILURE | QF_NOTIFY_DELAY | QF_NOTIFY_NEVER))
		return "unknown DSN NOTIFY bits";
	if ((notify & QF_NOTIFY_NEVER) && notify != QF_NOTIFY_NEVER)
		return "DSN NOTIFY=NEVER combined with other values";
	return NULL;
}

/* 1*3 digits at *p, advancing it; 0 if there are none or more than three. */
static int dsn_digits(const char **p)
{
	int n = 0;

	while (**p >= '0' && **p <= '9' && n < 4) {
		(*p)++;
		n++;
	}
	return n >= 1 && n <= 3;
}

/* "" or class.subject.detail (RFC 3463) with class 2, 4 or 5. */
static int dsn_valid(const char *dsn)
{
	const char *p = dsn + 1;

	if (dsn[0] == '\0')
		return 1;
	if (dsn[0] != '2' && dsn[0] != '4' && dsn[0] != '5')
		return 0;
	if (*p++ != '.' || !dsn_digits(&p) || *p++ != '.' || !dsn_digits(&p))
		return 0;
	return *p == '\0';
}

const char *qf_status_problem(const struct qf_status *st)
{
	if (st->state > QF_STATE_MAX)
		return "unknown recipient state";
	if (st->code != 0 && (st->code < 200 || st->code > 599))
		return "bad SMTP reply code in status";
	if (memchr(st->dsn, '\0', sizeof(st->dsn)) == NULL || !dsn_valid(st->dsn))
		return "bad enhanced status code in status";
	if (st->code != 0 && st->dsn[0] != '\0' && st->dsn[0] - '0' != st->code / 100)
		return "reply code and enhanced status code disagree";
	if (st->last_ms < 0)
		return "negative last-attempt time";
	return NULL;
}

void qf_status_encode(const struct qf_status *st, unsigned char out[QF_STATUS_LEN])
{
	memset(out, 0, QF_STATUS_LEN);
	out[0] = st->state;
	qf_put16(out + 2, st->code);
	memcpy(out + 4, st->dsn, strnlen(st->dsn, QF_DSN_LEN));
	qf_put16(out + 14, st->attempts);
	qf_put64(out + 16, (uint64_t)st->last_ms);
}

const char *qf_status_decode(const unsigned char in[QF_STATUS_LEN], struct qf_status *st)
{
	size_t n;

	memset(st, 0, sizeof(*st));
	if (in[1] != 0)
		return "reserved status byte is not zero";
	n = strnlen((const char *)in + 4, QF_DSN_LEN);
	for (size_t i = n; i < QF_DSN_LEN; i++)
		if (in[4 + i] != 0)
			return "enhanced status code not NUL-padded";
	st->state = in[0];
	st->code = qf_get16(in + 2);
	memcpy(st->dsn, in + 4, n);
	st->attempts = qf_get16(in + 14);
	st->last_ms = (int64_t)qf_get64(in + 16);
	return qf_status_problem(st);
}

/* Check one required (or, when optional is set, possibly NULL) string field. */
static int check_field(const char *what, const char *s, size_t max, int empty_ok,
		       int optional, char *err, size_t errlen)
{
	const char *why;

	if (s == NULL) {
		if (optional)
			return 0;
		str_fmt(err, errlen, "%s: missing", what);
		return -1;
	}
	why = qf_text_problem(s, strnlen(s, max + 1), max, empty_ok);
	if (why == NULL)
		return 0;
	str_fmt(err, errlen, "%s: %s", what, why);
	return -1;
}

static int check_rcpt(const struct qf_rcpt *r, size_t i, char *err, size_t errlen)
{
	const char *why = NULL, *what = "address";

	if (r->addr == NULL)
		why = "missing";
	else if ((why = qf_text_problem(r->addr, strnlen(r->addr, QF_MAX_ADDR + 1),
					QF_MAX_ADDR, 0)) != NULL)
		;
	else if (r->orcpt != NULL &&
		 (why = qf_text_problem(r->orcpt, strnlen(r->orcpt, QF_MAX_ORCPT + 1),
					QF_MAX_ORCPT, 1)) != NULL)
		what = "ORCPT";
	else if ((why = qf_notify_problem(r->notify)) != NULL ||
		 (why = qf_status_problem(&r->status)) != NULL)
		what = "status";
	if (why == NULL)
		return 0;
	str_fmt(err, errlen, "recipient %zu: %s %s", i + 1, what, why);
	return -1;
}

int qf_envelope_check(const struct qf_envelope *env, char *err, size_t errlen)
{
	if (!qid_valid(env->qid)) {
		str_fmt(err, errlen, "queue id: invalid");
		return -1;
	}
	if (env->arrival_ms < 0 || env->body > QF_BODY_BINARYMIME || env->ret > QF_RET_HDRS ||
	    (env->flags & ~QF_F_KNOWN)) {
		str_fmt(err, errlen, "arrival time, body type, RET or flags out of range");
		return -1;
	}
	if (check_field("sender", env->sender, QF_MAX_ADDR, 1, 0, err, errlen) ||
	    check_field("client address", env->client_addr, QF_MAX_CLIENT_ADDR, 1, 0, err,
			errlen) ||
	    check_field("client name", env->client_name, QF_MAX_HOSTNAME, 1, 0, err, errlen) ||
	    check_field("helo", env->helo, QF_MAX_HOSTNAME, 1, 0, err, errlen) ||
	    check_field("auth user", env->auth_user, QF_MAX_ADDR, 0, 1, err, errlen) ||
	    check_field("ENVID", env->envid, QF_MAX_ENVID, 0, 1, err, errlen))
		return -1;
	if (env->nrcpt == 0 || env->nrcpt > QF_MAX_RCPTS || env->rcpt == NULL) {
		str_fmt(err, errlen, "recipients: need 1 to %d, have %zu", QF_MAX_RCPTS,
			env->nrcpt);
		return -1;
	}
	for (size_t i = 0; i < env->nrcpt; i++)
		if (check_rcpt(&env->rcpt[i], i, err, errlen) < 0)
			return -1;
	return 0;
}

const char *qf_state_name(enum qf_state state)
{
	static const char *const names[] = { "pending", "delivered", "bounced", "deferred",
					       "returned" };

	return (unsigned)state <= QF_STATE_MAX ? names[state] : "unknown";
}

/* ---- writing -------------------------------------------------------------------------- */

#define QF_WBUF	(128 * 1024)

struct qf_writer {
	int fd;
	int failed;		/* errno of the first failure, 0 while all is well */
	uint64_t off;		/* file offset of buf[0] */
	size_t len;		/* bytes waiting in buf */
	uint64_t msg_hdr_off;	/* where the message record's header starts */
	uint64_t msg_len;
	unsigned char buf[QF_WBUF];
};

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const unsigned char *c = p;

	while (n > 0) {
		ssize_t w = pwrite(fd, c, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int w_fail(struct qf_writer *w, int err)
{
	if (!w->failed)
		w->failed = err ? err : EIO;
	errno = w->failed;
	return -1;
}

static int w_flush(struct qf_writer *w)
{
	if (w->failed)
		return w_fail(w, 0);
	if (w->len > 0 && pwrite_all(w->fd, w->buf, w->len, w->off) < 0)
		return w_fail(w, errno);
	w->off += w->len;
	w->len = 0;
	return 0;
}

static int w_put(struct qf_writer *w, const void *p, size_t n)
{
	if (w->failed)
		return w_fail(w, 0);
	if (n > QF_WBUF - w->len && w_flush(w) < 0)
		return -1;
	if (n >= QF_WBUF) {		/* large: straight to the file */
		if (pwrite_all(w->fd, p, n, w->off) < 0)
			return w_fail(w, errno);
		w->off += n;
		return 0;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

static int w_record(struct qf_writer *w, int type, const void *payload, size_t len)
{
	unsigned char hdr[QF_HDR_LEN];

	hdr[0] = (unsigned char)type;
	qf_put32(hdr + 1, (uint32_t)len);
	return w_put(w, hdr, sizeof(hdr)) < 0 || w_put(w, payload, len) < 0 ? -1 : 0;
}

static int w_str(struct qf_writer *w, int type, const char *s)
{
	return w_record(w, type, s, strlen(s));
}

static int w_u64(struct qf_writer *w, int type, uint64_t v)
{
	unsigned char p[8];

	qf_put64(p, v);
	return w_record(w, type, p, sizeof(p));
}

static int w_rcpt(struct qf_writer *w, const struct qf_rcpt *r)
{
	unsigned char p[QF_RCPT_FIXED + QF_MAX_ORCPT + QF_MAX_ADDR];
	size_t olen = r->orcpt ? strlen(r->orcpt) : 0, alen = strlen(r->addr);

	qf_status_encode(&r->status, p);
	p[QF_STATUS_LEN] = (unsigned char)r->notify;
	qf_put16(p + QF_STATUS_LEN + 1, (uint16_t)olen);
	memcpy(p + QF_RCPT_FIXED, r->orcpt ? r->orcpt : "", olen);
	memcpy(p + QF_RCPT_FIXED + olen, r->addr, alen);
	return w_record(w, QF_REC_RCPT, p, QF_RCPT_FIXED + olen + alen);
}

/* Everything from the magic to the end-of-envelope record, in the canonical order. */
static int w_envelope(struct qf_writer *w, const struct qf_envelope *e)
{
	unsigned char b = (unsigned char)e->body, r = (unsigned char)e->ret, f[4];
	int rc = 0;

	qf_put32(f, e->flags);
	rc |= w_str(w, QF_REC_MAGIC, QF_MAGIC);
	rc |= w_str(w, QF_REC_QID, e->qid);
	rc |= w_u64(w, QF_REC_TIME, (uint64_t)e->arrival_ms);
	rc |= w_str(w, QF_REC_SENDER, e->sender);
	rc |= w_str(w, QF_REC_CLIENT_ADDR, e->client_addr);
	rc |= w_str(w, QF_REC_CLIENT_NAME, e->client_name);
	rc |= w_str(w, QF_REC_HELO, e->helo);
	if (e->auth_user)
		rc |= w_str(w, QF_REC_AUTH, e->auth_user);
	rc |= w_u64(w, QF_REC_SIZE, e->size);
	rc |= w_record(w, QF_REC_BODY, &b, 1);
	rc |= w_record(w, QF_REC_FLAGS, f, sizeof(f));
	if (e->ret != QF_RET_NONE)
		rc |= w_record(w, QF_REC_RET, &r, 1);
	if (e->envid)
		rc |= w_str(w, QF_REC_ENVID, e->envid);
	for (size_t i = 0; i < e->nrcpt; i++)
		rc |= w_rcpt(w, &e->rcpt[i]);
	rc |= w_record(w, QF_REC_EOE, "", 0);
	return rc ? -1 : 0;
}

struct qf_writer *qf_writer_begin(int fd, const struct qf_envelope *env, char *err,
				  size_t errlen)
{
	struct qf_writer *w;
	struct stat st;

	if (qf_envelope_check(env, err, errlen) < 0) {
		errno = EINVAL;
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != 0) {
		if (fcntl(fd, F_GETFD) >= 0)
			errno = EINVAL;
		str_fmt(err, errlen, "queue file is not an empty regular file");
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	if (w_envelope(w, env) < 0)
		goto fail;
	w->msg_hdr_off = w->off + w->len;
	if (w_record(w, QF_REC_MSG, "", 0) < 0)	/* length patched in by qf_writer_end */
		goto fail;
	return w;
fail:
	str_fmt(err, errlen, "write queue file: %s", strerror(w->failed));
	errno = w->failed;
	free(w);
	return NULL;
}

int qf_writer_body(struct qf_writer *w, const void *data, size_t len)
{
	if (w->failed)
		return w_fail(w, 0);
	if (len > QF_MAX_MESSAGE - w->msg_len)
		return w_fail(w, EFBIG);
	if (w_put(w, data, len) < 0)
		return -1;
	w->msg_len += len;
	return 0;
}

uint64_t qf_writer_msg_len(const struct qf_writer *w)
{
	return w->msg_len;
}

int qf_writer_end(struct qf_writer *w)
{
	unsigned char len[4];
	int rc = -1, saved;

	if (w_flush(w) < 0)
		goto out;
	qf_put32(len, (uint32_t)w->msg_len);
	if (pwrite_all(w->fd, len, sizeof(len), w->msg_hdr_off + 1) < 0) {
		w_fail(w, errno);
		goto out;
	}
	if (w_u64(w, QF_REC_END, w->off + w->len) < 0 || w_flush(w) < 0)
		goto out;
	rc = 0;
out:
	saved = w->failed;
	free(w);
	if (rc < 0)
		errno = saved;
	return rc;
}

void qf_writer_abort(struct qf_writer *w)
{
	free(w);
}

/* ---- status updates ------------------------------------------------------------------- */

int qf_status_write(int fd, off_t off, const struct qf_status *st)
{
	unsigned char block[QF_STATUS_LEN];

	if (off < 0 || qf_status_problem(st) != NULL) {
		errno = EINVAL;
		return -1;
	}
	qf_status_encode(st, block);
	return pwrite_all(fd, block, sizeof(block), (uint64_t)off);
}

int qf_rcpt_set_status(int fd, struct qf_rcpt *r, enum qf_state state, unsigned code,
		       const char *dsn, int64_t when_ms)
{
	struct qf_status st = r->status;

	if ((unsigned)state > QF_STATE_MAX || code > UINT16_MAX || str_copy(st.dsn, sizeof(st.dsn), dsn ? dsn : "") < 0) {
		errno = EINVAL;
		return -1;
	}
	st.state = (uint8_t)state;
	st.code = (uint16_t)code;
	if (st.attempts < UINT16_MAX)
		st.attempts++;
	st.last_ms = when_ms;
	if (qf_status_write(fd, r->status_off, &st) < 0)
		return -1;
	r->status = st;
	return 0;
}
