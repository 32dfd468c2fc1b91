/*
 * message.c: a message's life in active/ (qmgr.h has the directory rules).
 *
 *   incoming/ --expand--> active/ --jobs--> results in the status blocks --> then one of
 *     removed (every recipient done), deferred/ (mtime = next attempt, exponential back-off
 *     from minimal_backoff_time to maximal_backoff_time), hold/ or incoming/ (admin).
 *
 * Bounces are owed for recipients in QF_BOUNCED; once the report is queued they become
 * QF_RETURNED, so a crash never sends one twice for the same recipient... except between
 * the report's commit and that status write, where a duplicate report is possible (never a
 * lost one). A message still deferred after maximal_queue_lifetime (bounce_queue_lifetime
 * for a bounce) is returned with its last reasons.
 *
 * Status writes are fdatasync'ed before a message is set aside (deferred/, hold/); a file
 * about to be removed is not synced first: after a power loss its recipients would be
 * tried again (a duplicate), never forgotten.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliverreq.h"
#include "log.h"
#include "qmgr.h"
#include "util.h"

#define HASH_SIZE 4096

static struct msg *table[HASH_SIZE];

static unsigned qid_hash(const char *qid)
{
	unsigned h = 5381;

	while (*qid)
		h = h * 33 + (unsigned char)*qid++;
	return h % HASH_SIZE;
}

struct msg *msg_find(const char *qid)
{
	for (struct msg *m = table[qid_hash(qid)]; m; m = m->hnext)
		if (strcmp(m->qid, qid) == 0)
			return m;
	return NULL;
}

static bool rcpt_done(const struct qf_rcpt *r)
{
	return r->status.state == QF_DELIVERED || r->status.state == QF_RETURNED;
}

/* Open a queue file read-write and validate it; a file that does not validate goes to
 * corrupt/ (kept, logged). -1 if there is nothing to work on. */
static int open_validated(enum qdir d, const char *qid, struct qf *q)
{
	char path[64], err[256];
	int fd;

	if (qdir_path(qid, path, sizeof(path)) < 0)
		return -1;
	fd = openat(G.dfd[d], path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			msg_warn("%s: open: %m", qid);
		return -1;
	}
	if (qf_open_fd(fd, q, err, sizeof(err)) < 0 || strcmp(q->env.qid, qid) != 0) {
		msg_warn("%s: queue file does not validate (%s): moved to corrupt/", qid,
			 strcmp(err, "") ? err : "queue id mismatch");
		if (renameat(G.dfd[d], path, G.dfd[D_CORRUPT], qid) < 0)
			msg_warn("%s: move to corrupt/: %m", qid);
		close(fd);
		return -1;
	}
	return fd;
}

static void log_active(const struct msg *m)
{
	msg_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", m->qid,
		 m->q.env.sender, (unsigned long long)m->q.msg_len, m->q.env.nrcpt);
}

/* The reason for a bounce decided before any agent saw the recipient. */
static const char *expansion_text(const char *dsn)
{
	if (strcmp(dsn, "5.1.1") == 0)
		return "unknown user";
	if (strcmp(dsn, "5.4.6") == 0)
		return "mail forwarding loop";
	if (strcmp(dsn, "5.3.0") == 0)
		return "alias expansion too large";
	return "delivery failed";
}

/* Postfix's line for a recipient qmgr itself bounced. */
static void log_bounced(const struct msg *m, const struct mrcpt *r)
{
	char total[16], a[16];
	const char *orig = r->qr->orcpt && strncasecmp(r->qr->orcpt, "rfc822;", 7) == 0
			   ? r->qr->orcpt + 7 : NULL;

	deliver_fmt_secs(total, sizeof(total), wall_ms() - m->q.env.arrival_ms);
	deliver_fmt_secs(a, sizeof(a), m->active_ms - m->q.env.arrival_ms);
	msg_info("%s: to=<%s>,%s%s%s relay=none, delay=%s, delays=%s/0/0/0, dsn=%s, "
		 "status=bounced (%s)", m->qid, r->qr->addr, orig ? " orig_to=<" : "",
		 orig ? orig : "", orig ? ">," : "", total, a, r->qr->status.dsn, r->text);
}

static bool has_override(struct mrcpt *r)
{
	const char *at = strrchr(r->qr->addr, '@');

	return at && transport_override(at + 1, &r->transport, &r->nexthop);
}

/* Each recipient not yet done gets a transport (known: what alias expansion just learnt
 * from authd, or NULL); those authd knows nothing of bounce. */
static void resolve_rcpts(struct msg *m, const int *known)
{
	char dsn[16], text[QMGR_TEXT_MAX];
	int code;

	for (size_t i = 0; i < m->q.env.nrcpt; i++) {
		struct mrcpt *r = &m->rcpt[i];

		r->qr = &m->q.env.rcpt[i];
		if (r->qr->status.state == QF_BOUNCED) {	/* alias expansion said so */
			r->text = xstrdup(expansion_text(r->qr->status.dsn));
			if (r->qr->status.attempts == 0)
				log_bounced(m, r);
			continue;
		}
		if (rcpt_done(r->qr))
			continue;
		if (known && known[i] >= 0 && !has_override(r)) {
			r->transport = (enum transport)known[i];
			continue;
		}
		(void)resolve_transport(r->qr->addr, &r->transport, &r->nexthop, &code, dsn, text,
					sizeof(text));
		if (code != 0)
			msg_set_result(m, i, code, dsn, text, "none");
	}
}

/* A message now in active/ with its file open: track it and queue its jobs. */
static void msg_start(const char *qid, int fd, struct qf *q, const int *known)
{
	struct msg *m = xcalloc(1, sizeof(*m));
	unsigned h = qid_hash(qid);

	(void)str_copy(m->qid, sizeof(m->qid), qid);
	(void)qid_subdir(qid, m->subdir, sizeof(m->subdir));
	m->fd = fd;
	m->q = *q;
	m->rcpt = xcalloc(q->env.nrcpt ? q->env.nrcpt : 1, sizeof(*m->rcpt));
	m->active_ms = wall_ms();
	m->hnext = table[h];
	table[h] = m;
	m->next = G.active;
	if (G.active)
		G.active->prev = m;
	G.active = m;
	G.nactive++;
	log_active(m);
	resolve_rcpts(m, known);
	m->jobs++;		/* held while jobs are queued, so none can finish m early */
	dispatch_msg(m);
	msg_job_done(m);
}

void msg_load_active(const char *qid)
{
	struct qf q;
	int fd;

	if (msg_find(qid) != NULL)
		return;
	fd = open_validated(D_ACTIVE, qid, &q);
	if (fd >= 0)
		msg_start(qid, fd, &q, NULL);
}

void msg_take(enum qdir from, const char *qid)
{
	if (msg_find(qid) != NULL)
		return;
	if (qdir_move(from, D_ACTIVE, qid) < 0) {
		if (errno != ENOENT)
			msg_warn("%s: move into active/: %m", qid);
		return;
	}
	msg_load_active(qid);
}

void msg_take_incoming(const char *qid)
{
	struct expansion e;
	struct qf q;
	char path[64];
	int fd;

	if (qdir_path(qid, path, sizeof(path)) < 0)
		return;
	fd = open_validated(D_INCOMING, qid, &q);
	if (fd < 0)
		return;
	if (resolve_expand(&q, &e) == RES_TEMPFAIL) {
		msg_warn("%s: alias expansion failed temporarily; will retry", qid);
		scan_incoming_later(10000);
		qf_free(&q);
		close(fd);
		return;
	}
	if (e.changed) {
		int rc = rewrite_expanded(qid, fd, &q, &e);

		expansion_free(&e);
		qf_free(&q);
		close(fd);
		if (rc == 0) {
			(void)unlinkat(G.dfd[D_INCOMING], path, 0);
			msg_load_active(qid);
		}
		return;
	}
	if (qdir_move(D_INCOMING, D_ACTIVE, qid) < 0) {
		msg_warn("%s: move into active/: %m", qid);
		expansion_free(&e);
		qf_free(&q);
		close(fd);
		return;
	}
	msg_start(qid, fd, &q, e.n == q.env.nrcpt ? e.tr : NULL);
	expansion_free(&e);
}

void msg_set_result(struct msg *m, size_t i, int code, const char *dsn, const char *text,
		    const char *relay)
{
	struct mrcpt *r = &m->rcpt[i];
	enum qf_state st = code < 300 ? QF_DELIVERED : code < 500 ? QF_DEFERRED : QF_BOUNCED;

	if (qf_rcpt_set_status(m->fd, r->qr, st, (unsigned)code, dsn, wall_ms()) < 0)
		msg_warn("%s: cannot record the result for %s: %m", m->qid, r->qr->addr);
	m->dirty = true;
	r->decided = true;
	free(r->text);
	free(r->relay);
	r->text = xstrdup(text ? text : "");
	r->relay = xstrdup(relay ? relay : "none");
}

/* ---- the end of an attempt -------------------------------------------------------------- */

static void msg_free(struct msg *m)
{
	struct msg **pp = &table[qid_hash(m->qid)];

	while (*pp && *pp != m)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = m->hnext;
	if (m->prev)
		m->prev->next = m->next;
	else
		G.active = m->next;
	if (m->next)
		m->next->prev = m->prev;
	for (size_t i = 0; i < m->q.env.nrcpt; i++) {
		free(m->rcpt[i].nexthop);
		free(m->rcpt[i].text);
		free(m->rcpt[i].relay);
	}
	free(m->rcpt);
	qf_free(&m->q);
	close(m->fd);
	free(m);
	G.nactive--;
}

static void msg_remove(struct msg *m)
{
	char path[64];

	(void)qdir_path(m->qid, path, sizeof(path));
	if (unlinkat(G.dfd[D_ACTIVE], path, 0) < 0 && errno != ENOENT)
		msg_warn("%s: remove: %m", m->qid);
	deferlog_remove(m->qid);
	msg_info("%s: removed", m->qid);
}

/* Recipients still deferred past the lifetime become bounces. */
static void expire(struct msg *m)
{
	bool bounce = m->q.env.sender[0] == '\0';
	int64_t life = bounce ? G.bounce_lifetime : G.lifetime;
	bool any = false;

	if (wall_ms() - m->q.env.arrival_ms < life)
		return;
	for (size_t i = 0; i < m->q.env.nrcpt; i++) {
		struct qf_rcpt *qr = m->rcpt[i].qr;

		if (qr->status.state != QF_DEFERRED && qr->status.state != QF_PENDING)
			continue;
		if (qf_rcpt_set_status(m->fd, qr, QF_BOUNCED, qr->status.code ? qr->status.code : 450,
				       qr->status.dsn[0] ? qr->status.dsn : "4.4.7", wall_ms()) < 0)
			msg_warn("%s: cannot record expiry for %s: %m", m->qid, qr->addr);
		any = true;
	}
	if (any)
		msg_info("%s: from=<%s>, status=expired, returned to sender", m->qid,
			 m->q.env.sender);
}

static int64_t next_attempt(const struct msg *m)
{
	unsigned attempts = 1;
	int64_t delay = G.min_backoff;

	for (size_t i = 0; i < m->q.env.nrcpt; i++)
		if (m->rcpt[i].qr->status.attempts > attempts)
			attempts = m->rcpt[i].qr->status.attempts;
	for (unsigned i = 1; i < attempts && delay < G.max_backoff; i++)
		delay *= 2;
	if (delay > G.max_backoff)
		delay = G.max_backoff;
	return wall_ms() + delay;
}

/* Put m aside in dir (deferred/, hold/ or incoming/) with its results on disk. */
static void set_aside(struct msg *m, enum qdir dir)
{
	if (m->dirty && fdatasync(m->fd) < 0)
		msg_warn("%s: fdatasync: %m", m->qid);
	if (dir == D_DEFERRED) {
		int64_t when = next_attempt(m);
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
					  { .tv_sec = when / 1000, .tv_nsec = (when % 1000) * 1000000 } };

		if (futimens(m->fd, ts) < 0)
			msg_warn("%s: set the next attempt time: %m", m->qid);
		deferlog_write(m);
	}
	if (qdir_move(D_ACTIVE, dir, m->qid) < 0)
		msg_warn("%s: move out of active/: %m", m->qid);
}

static void msg_finish(struct msg *m)
{
	size_t open = 0, owed = 0;

	if (m->pending_op == M_DELETE) {
		msg_remove(m);
		msg_free(m);
		return;
	}
	expire(m);
	for (size_t i = 0; i < m->q.env.nrcpt; i++) {
		unsigned st = m->rcpt[i].qr->status.state;

		owed += st == QF_BOUNCED;
		open += st == QF_PENDING || st == QF_DEFERRED;
	}
	if (owed > 0 && m->dirty && fdatasync(m->fd) == 0)
		m->dirty = false;	/* the failures are on disk before the report exists */
	if (owed > 0 && bounce_send(m) < 0)
		open++;		/* the report could not be queued: keep the message */
	if (open == 0)
		msg_remove(m);
	else
		set_aside(m, m->pending_op == M_HOLD ? D_HOLD :
			     m->pending_op == M_REQUEUE ? D_INCOMING : D_DEFERRED);
	msg_free(m);
	if (G.incoming_backlog && G.nactive < G.active_limit)
		scan_incoming_soon();
}

void msg_job_done(struct msg *m)
{
	if (--m->jobs == 0)
		msg_finish(m);
}

void msg_control(struct msg *m, int op)
{
	m->pending_op = op;
}
