/*
 * dispatch.c: from recipients to DELIVER requests (lib/deliverproto.h).
 *
 * A job is up to DELIVER_MAX_RCPT recipients of one message for one destination of one
 * transport (virtual and local have a single destination; smtp's is the nexthop, the
 * relayhost or the recipient's domain). Destinations with waiting jobs are served round
 * robin, smtp's at most default_destination_concurrency_limit at once. Each transport has
 * up to its pool's process limit of connections to the agent's socket; master starts a
 * pool process per connection, so the connections are the concurrency. An idle connection
 * that last served the same destination is preferred (the smtp agent keeps the SMTP
 * session open for it).
 *
 * The agent gets the queue file opened read-only for this request, never a path. A
 * connection that breaks, times out or answers nonsense fails its job's recipients with
 * 4.3.0: they are tried again later. An agent that cannot be reached at all is not tried
 * again for a few seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "deliverreq.h"
#include "log.h"
#include "qmgr.h"
#include "util.h"

#define DEST_HASH	1024
#define AGENT_RETRY_MS	5000
#define CONNECT_MS	5000

static struct dest *dests[DEST_HASH];
static uint32_t next_reqid;

static unsigned dest_hash(enum transport t, const char *key)
{
	unsigned h = 5381 + (unsigned)t;

	for (; *key; key++)
		h = h * 33 + (unsigned char)(*key | 0x20);
	return h % DEST_HASH;
}

static struct dest *dest_get(enum transport t, const char *key)
{
	unsigned h = dest_hash(t, key);
	struct dest *d;

	for (d = dests[h]; d; d = d->hnext)
		if (d->t == t && strcasecmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->t = t;
	(void)str_copy(d->key, sizeof(d->key), key);
	d->hnext = dests[h];
	dests[h] = d;
	return d;
}

static void ready_push(struct dest *d)
{
	if (d->listed)
		return;
	d->listed = true;
	d->rnext = NULL;
	if (G.tr[d->t].ready_tail)
		G.tr[d->t].ready_tail->rnext = d;
	else
		G.tr[d->t].ready_head = d;
	G.tr[d->t].ready_tail = d;
}

static void ready_remove(struct dest *d, struct dest *prev)
{
	if (prev)
		prev->rnext = d->rnext;
	else
		G.tr[d->t].ready_head = d->rnext;
	if (G.tr[d->t].ready_tail == d)
		G.tr[d->t].ready_tail = prev;
	d->listed = false;
	d->rnext = NULL;
}

static const char *dest_key(const struct mrcpt *r)
{
	const char *at;

	if (r->transport != T_SMTP)
		return "";
	if (r->nexthop)
		return r->nexthop;
	if (G.relayhost[0])
		return G.relayhost;
	at = strrchr(r->qr->addr, '@');
	return at ? at + 1 : "";
}

void dispatch_msg(struct msg *m)
{
	for (size_t i = 0; i < m->q.env.nrcpt; i++) {
		struct mrcpt *r = &m->rcpt[i];
		unsigned st = r->qr->status.state;
		struct dest *d;
		struct job *j;

		if (r->busy || r->decided || (st != QF_PENDING && st != QF_DEFERRED))
			continue;
		d = dest_get(r->transport, dest_key(r));
		j = d->tail;
		if (j == NULL || j->m != m || j->n == DELIVER_MAX_RCPT) {
			j = xcalloc(1, sizeof(*j));
			j->m = m;
			j->d = d;
			if (d->tail)
				d->tail->next = j;
			else
				d->head = j;
			d->tail = j;
			m->jobs++;
		}
		j->idx[j->n++] = i;
		r->busy = true;
		ready_push(d);
	}
}

/* ---- the request ------------------------------------------------------------------------ */

static const char *body_name(enum qf_body b)
{
	return b == QF_BODY_8BITMIME ? "8BITMIME" : b == QF_BODY_BINARYMIME ? "BINARYMIME" : "7BIT";
}

/* The original recipient for the agent: ORCPT's address when it is an rfc822 one that
 * differs from the recipient (xtext is not decoded: aliases write it plain). */
static const char *orig_of(const struct qf_rcpt *qr)
{
	const char *o = qr->orcpt;

	if (o == NULL || strncasecmp(o, "rfc822;", 7) != 0)
		return "";
	o += 7;
	return strcasecmp(o, qr->addr) == 0 || strchr(o, '+') != NULL ? "" : o;
}

static int build_request(struct ipc_msg *req, const struct job *j, int fd, uint32_t id)
{
	const struct msg *m = j->m;
	char key[16];
	int rc = 0;

	ipc_msg_init(req, DELIVER_REQ_DELIVER, id);
	rc |= ipc_put_str(req, "qid", m->qid);
	rc |= ipc_put_int(req, "msg_off", (int64_t)m->q.msg_off);
	rc |= ipc_put_int(req, "msg_len", (int64_t)m->q.msg_len);
	rc |= ipc_put_str(req, "sender", m->q.env.sender);
	rc |= ipc_put_int(req, "arrival", m->q.env.arrival_ms);
	rc |= ipc_put_int(req, "active", m->active_ms);
	rc |= ipc_put_str(req, "body", body_name(m->q.env.body));
	rc |= ipc_put_int(req, "smtputf8", (m->q.env.flags & QF_F_SMTPUTF8) != 0);
	rc |= ipc_put_int(req, "nrcpt", (int64_t)j->n);
	if (m->rcpt[j->idx[0]].nexthop)
		rc |= ipc_put_str(req, "nexthop", m->rcpt[j->idx[0]].nexthop);
	for (size_t k = 0; k < j->n && rc == 0; k++) {
		const struct qf_rcpt *qr = m->rcpt[j->idx[k]].qr;

		(void)str_fmt(key, sizeof(key), "rcpt%zu", k);
		rc |= ipc_put_str(req, key, qr->addr);
		(void)str_fmt(key, sizeof(key), "orig%zu", k);
		rc |= ipc_put_str(req, key, orig_of(qr));
		(void)str_fmt(key, sizeof(key), "notify%zu", k);
		rc |= ipc_put_int(req, key, qr->notify);
	}
	rc |= ipc_put_fd(req, fd);
	return rc;
}

/* qmgr's own delivery line, for recipients no agent answered for. */
static void log_deferred(const struct msg *m, const struct qf_rcpt *qr, const char *why)
{
	char total[16], a[16], b[16];
	int64_t now = wall_ms();

	deliver_fmt_secs(total, sizeof(total), now - m->q.env.arrival_ms);
	deliver_fmt_secs(a, sizeof(a), m->active_ms - m->q.env.arrival_ms);
	deliver_fmt_secs(b, sizeof(b), now - m->active_ms);
	msg_info("%s: to=<%s>, relay=none, delay=%s, delays=%s/%s/0/0, dsn=4.3.0, "
		 "status=deferred (%s)", m->qid, qr->addr, total, a, b, why);
}

/* The job is over: each recipient either has its result or gets 4.3.0 why. */
static void job_end(struct job *j, const char *why)
{
	struct msg *m = j->m;

	for (size_t k = 0; k < j->n; k++) {
		struct mrcpt *r = &m->rcpt[j->idx[k]];

		if (!r->decided) {
			msg_set_result(m, j->idx[k], 451, "4.3.0", why, "none");
			log_deferred(m, r->qr, why);
		}
		r->busy = false;
	}
	j->d->inflight--;
	free(j);
	msg_job_done(m);
}

static void conn_close(struct agent_conn *c)
{
	if (c->fd >= 0) {
		ev_fd_del(G.loop, c->fd);
		close(c->fd);
	}
	c->fd = -1;
	c->last = NULL;
	if (c->timer) {
		ev_timer_cancel(G.loop, c->timer);
		c->timer = 0;
	}
}

static void apply_reply(struct job *j, const struct ipc_msg *rep)
{
	char key[16];

	for (size_t k = 0; k < j->n; k++) {
		const char *dsn, *text, *relay;
		int64_t code;

		(void)str_fmt(key, sizeof(key), "code%zu", k);
		if (ipc_get_int(rep, key, &code) < 0 || code < 200 || code > 599)
			continue;	/* job_end defers it */
		(void)str_fmt(key, sizeof(key), "dsn%zu", k);
		dsn = ipc_get_str(rep, key);
		(void)str_fmt(key, sizeof(key), "text%zu", k);
		text = ipc_get_str(rep, key);
		(void)str_fmt(key, sizeof(key), "relay%zu", k);
		relay = ipc_get_str(rep, key);
		msg_set_result(j->m, j->idx[k], (int)code, dsn ? dsn : "", text, relay);
	}
}

static void on_reply(struct ev_loop *loop, int fd, int revents, void *arg)
{
	static struct ipc_msg rep;
	struct agent_conn *c = arg;
	struct job *j = c->job;
	struct transport_state *ts;
	char why[QMGR_TEXT_MAX];
	int r;

	(void)loop, (void)revents;
	if (j == NULL) {	/* an idle agent went away (max_idle, max_use, restart) */
		conn_close(c);
		return;
	}
	ts = &G.tr[j->d->t];
	r = ipc_recv(fd, &rep);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	c->job = NULL;
	ev_timer_cancel(G.loop, c->timer);
	c->timer = 0;
	if (r <= 0 || rep.id != c->reqid) {
		(void)str_fmt(why, sizeof(why), "lost connection with the %s delivery agent",
			      ts->name);
		conn_close(c);
	} else {
		ipc_close_fds(&rep);
		if (rep.status == IPC_OK) {
			apply_reply(j, &rep);
			(void)str_fmt(why, sizeof(why), "the %s delivery agent gave no result",
				      ts->name);
		} else {
			const char *reason = ipc_get_str(&rep, "reason");

			(void)str_fmt(why, sizeof(why), "%s delivery agent: %s", ts->name,
				      reason ? reason : "temporary failure");
		}
	}
	job_end(j, why);
	dispatch_run();
}

static void on_timeout(struct ev_loop *loop, void *arg)
{
	struct agent_conn *c = arg;
	struct job *j = c->job;
	struct transport_state *ts = &G.tr[j->d->t];
	char why[QMGR_TEXT_MAX];

	(void)loop;
	c->timer = 0;
	c->job = NULL;
	(void)str_fmt(why, sizeof(why), "the %s delivery agent did not answer in time", ts->name);
	msg_warn("%s: %s", j->m->qid, why);
	conn_close(c);
	job_end(j, why);
	dispatch_run();
}

/* Send j on c (connecting first if needed). 0, or -1 with the job ended. */
static int job_send(struct transport_state *ts, struct agent_conn *c, struct job *j)
{
	static struct ipc_msg req;
	char path[64], why[QMGR_TEXT_MAX];
	int fd;

	j->d->inflight++;
	if (c->fd < 0) {
		c->fd = ipc_connect(ts->sock_path, CONNECT_MS);
		if (c->fd < 0) {
			(void)str_fmt(why, sizeof(why), "mail transport unavailable: %s: %s",
				      ts->name, strerror(errno));
			msg_warn("connect to %s: %m", ts->sock_path);
			ts->down_until = mono_ms() + AGENT_RETRY_MS;
			job_end(j, why);
			return -1;
		}
		if (ev_fd_add(G.loop, c->fd, POLLIN, on_reply, c) < 0)
			msg_fatal("cannot watch an agent connection: %m");
	}
	(void)qdir_path(j->m->qid, path, sizeof(path));
	fd = openat(G.dfd[D_ACTIVE], path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	c->reqid = ++next_reqid;
	if (fd < 0 || build_request(&req, j, fd, c->reqid) < 0 || ipc_send(c->fd, &req) < 0) {
		(void)str_fmt(why, sizeof(why), "cannot hand the message to %s: %s", ts->name,
			      strerror(errno));
		if (fd >= 0)
			close(fd);
		conn_close(c);
		job_end(j, why);
		return -1;
	}
	close(fd);
	c->job = j;
	c->last = j->d;
	c->timer = ev_timer_add(G.loop, DELIVER_TIMEOUT_MS, on_timeout, c);
	return 0;
}

/* An idle connection for d: the one that last served d, else any open, else a new slot. */
static struct agent_conn *conn_pick(struct transport_state *ts, const struct dest *d)
{
	struct agent_conn *open = NULL, *fresh = NULL;

	for (int i = 0; i < ts->limit; i++) {
		struct agent_conn *c = &ts->conn[i];

		if (c->job)
			continue;
		if (c->fd >= 0 && c->last == d)
			return c;
		if (c->fd >= 0 && open == NULL)
			open = c;
		if (c->fd < 0 && fresh == NULL)
			fresh = c;
	}
	return open ? open : fresh;
}

/* The first ready destination under its concurrency limit; it moves to the list's end. */
static struct job *next_job(enum transport t)
{
	struct dest *prev = NULL;

	for (struct dest *d = G.tr[t].ready_head; d; prev = d, d = d->rnext) {
		struct job *j;

		if (t == T_SMTP && d->inflight >= G.dest_limit)
			continue;
		j = d->head;
		d->head = j->next;
		if (d->head == NULL)
			d->tail = NULL;
		j->next = NULL;
		ready_remove(d, prev);
		if (d->head)
			ready_push(d);	/* round robin */
		return j;
	}
	return NULL;
}

static bool retry_pending;

static void on_retry(struct ev_loop *loop, void *arg)
{
	(void)loop, (void)arg;
	retry_pending = false;
	dispatch_run();
}

static void retry_later(int64_t ms)
{
	if (!retry_pending) {
		retry_pending = true;
		(void)ev_timer_add(G.loop, ms, on_retry, NULL);
	}
}

void dispatch_run(void)
{
	for (int t = 0; t < T_COUNT; t++) {
		struct transport_state *ts = &G.tr[t];

		while (G.tr[t].ready_head != NULL) {
			struct agent_conn *c;
			struct job *j;

			if (ts->down_until > mono_ms()) {
				retry_later(ts->down_until - mono_ms() + 10);
				break;
			}
			c = conn_pick(ts, G.tr[t].ready_head);
			if (c == NULL || (j = next_job((enum transport)t)) == NULL)
				break;
			if (c->fd >= 0 && c->last != j->d) {
				struct agent_conn *better = conn_pick(ts, j->d);

				if (better)
					c = better;
			}
			(void)job_send(ts, c, j);
		}
	}
}

void dispatch_init(void)
{
	static const char *const names[T_COUNT] = { "virtual", "local", "smtp" };
	static const char *const limits[T_COUNT] = {
		"virtual_process_limit", "local_process_limit", "smtp_agent_process_limit",
	};
	for (int t = 0; t < T_COUNT; t++) {
		struct transport_state *ts = &G.tr[t];

		ts->name = names[t];
		ts->limit = (int)conf_int(G.cfg, limits[t]);
		ts->conn = xcalloc((size_t)ts->limit, sizeof(*ts->conn));
		for (int i = 0; i < ts->limit; i++)
			ts->conn[i].fd = -1;
	}
}
