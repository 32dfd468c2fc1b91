/*
 * deliverreq.c: the agent side of the DELIVER protocol (see deliverreq.h): request parsing
 * and checks, the per-recipient reply, the Postfix delivery log line, the agents' shared
 * start-up.
 */
#include "deliverreq.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "queuefile.h"
#include "util.h"

static const char *const fixed_keys[] = {
	"qid", "msg_off", "msg_len", "sender", "arrival", "active", "body", "smtputf8", "nrcpt",
	"nexthop",
};

/* Is key one of the request's attributes: a fixed one, or rcpt/orig/notify<i>, i < n. */
static bool key_known(const char *key, int64_t n)
{
	static const char *const indexed[] = { "rcpt", "orig", "notify" };
	long long i;

	for (size_t k = 0; k < ARRAY_LEN(fixed_keys); k++)
		if (strcmp(key, fixed_keys[k]) == 0)
			return true;
	for (size_t k = 0; k < ARRAY_LEN(indexed); k++) {
		size_t len = strlen(indexed[k]);

		if (strncmp(key, indexed[k], len) == 0 && key[len] >= '0' && key[len] <= '9' &&
		    (key[len] != '0' || key[len + 1] == '\0') &&
		    str_to_ll(key + len, 0, n - 1, &i) == 0)
			return true;
	}
	return false;
}

/* A string free of control characters (it goes into SMTP commands and the log). */
static bool clean(const char *s, size_t max)
{
	size_t len = strnlen(s, max + 1);

	if (len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static const char *check_fd(const struct ipc_msg *m, struct deliver_request *r)
{
	struct stat st;
	int fl;

	if (m->nfds != 1)
		return "one descriptor (the queue file) expected";
	r->fd = m->fds[0];
	fl = fcntl(r->fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY)
		return "the queue file must be open read-only";
	if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return "the descriptor is not a regular file";
	if ((uint64_t)r->msg_off > (uint64_t)st.st_size ||
	    r->msg_len > (uint64_t)st.st_size - (uint64_t)r->msg_off)
		return "msg_off/msg_len lie beyond the end of the queue file";
	return NULL;
}

static const char *parse_rcpts(const struct ipc_msg *m, struct deliver_request *r, int64_t n)
{
	char key[16];
	const char *s;

	if (n < 1 || n > DELIVER_MAX_RCPT)
		return "nrcpt out of range";
	r->nrcpt = (size_t)n;
	for (size_t i = 0; i < r->nrcpt; i++) {
		(void)str_fmt(key, sizeof(key), "rcpt%zu", i);
		s = ipc_get_str(m, key);
		if (s == NULL || *s == '\0' || !clean(s, QF_MAX_ADDR) || strchr(s, '>'))
			return "missing or bad rcpt<i>";
		r->rcpt[i].rcpt = s;
		(void)str_fmt(key, sizeof(key), "orig%zu", i);
		s = ipc_get_str(m, key);
		if (s != NULL && !clean(s, QF_MAX_ORCPT))
			return "bad orig<i>";
		r->rcpt[i].orig = s ? s : "";
	}
	return NULL;
}

static const char *parse_body(const struct ipc_msg *m, struct deliver_request *r)
{
	const char *body = ipc_get_str(m, "body");
	int64_t utf8 = 0;

	if (body == NULL || strcmp(body, "7BIT") == 0)
		r->body = DELIVER_BODY_7BIT;
	else if (strcmp(body, "8BITMIME") == 0)
		r->body = DELIVER_BODY_8BITMIME;
	else if (strcmp(body, "BINARYMIME") == 0)
		r->body = DELIVER_BODY_BINARYMIME;
	else
		return "bad body";
	if (ipc_get(m, "smtputf8") != NULL &&
	    (ipc_get_int(m, "smtputf8", &utf8) < 0 || utf8 < 0 || utf8 > 1))
		return "bad smtputf8";
	r->smtputf8 = utf8 == 1;
	return NULL;
}

const char *deliver_request_parse(const struct ipc_msg *m, struct deliver_request *r)
{
	int64_t off, len, n;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->received = wall_ms();
	if (ipc_get_int(m, "nrcpt", &n) < 0)
		return "nrcpt missing";
	for (size_t i = 0; i < m->nattr; i++)
		if (!key_known(m->attr[i].key, n))
			return "unknown attribute";
	r->qid = ipc_get_str(m, "qid");
	r->sender = ipc_get_str(m, "sender");
	if (r->qid == NULL || !qid_valid(r->qid))
		return "bad qid";
	if (r->sender == NULL || !clean(r->sender, QF_MAX_ADDR) || strchr(r->sender, '>'))
		return "bad sender";
	if (ipc_get_int(m, "msg_off", &off) < 0 || ipc_get_int(m, "msg_len", &len) < 0 ||
	    off < 0 || len < 0)
		return "bad msg_off/msg_len";
	r->msg_off = (off_t)off;
	r->msg_len = (uint64_t)len;
	r->nexthop = ipc_get_str(m, "nexthop");
	if (r->nexthop == NULL)
		r->nexthop = "";
	else if (!clean(r->nexthop, DELIVER_NEXTHOP_MAX))
		return "bad nexthop";
	if (ipc_get_int(m, "arrival", &r->arrival) < 0)
		r->arrival = r->received;
	if (ipc_get_int(m, "active", &r->active) < 0)
		r->active = r->received;
	return parse_body(m, r) ?: parse_rcpts(m, r, n) ?: check_fd(m, r);
}

void deliver_result(struct deliver_rcpt *rc, int code, const char *dsn, const char *fmt, ...)
{
	va_list ap;

	rc->code = code;
	(void)str_copy(rc->dsn, sizeof(rc->dsn), dsn);
	va_start(ap, fmt);
	(void)vsnprintf(rc->text, sizeof(rc->text), fmt, ap);
	va_end(ap);
}

/* key<i> = value, as a string (s) or, when s is NULL, an int (v). 0 or -1. */
static int put_indexed(struct ipc_msg *reply, const char *key, size_t i, const char *s,
		       int64_t v)
{
	char k[IPC_MAX_KEY + 1];

	if (str_fmt(k, sizeof(k), "%s%zu", key, i) < 0)
		return -1;
	return s ? ipc_put_str(reply, k, s) : ipc_put_int(reply, k, v);
}

void deliver_reply(struct ipc_peer *p, const struct ipc_msg *req,
		   const struct deliver_request *r)
{
	static struct ipc_msg reply;
	int rc = 0;

	ipc_reply_init(&reply, req, IPC_OK);
	for (size_t i = 0; i < r->nrcpt && rc == 0; i++) {
		const struct deliver_rcpt *d = &r->rcpt[i];

		rc = put_indexed(&reply, "code", i, NULL, d->code) |
		     put_indexed(&reply, "dsn", i, d->dsn, 0) |
		     put_indexed(&reply, "text", i, d->text, 0) |
		     put_indexed(&reply, "relay", i, d->relay, 0);
	}
	if (rc != 0)	/* 50 results of at most ~850 bytes each fit a frame */
		msg_panic("cannot build a reply of %zu results", r->nrcpt);
	(void)ipc_peer_send(p, &reply);
}

void deliver_fmt_secs(char *out, size_t outsize, int64_t ms)
{
	double s = ms > 0 ? (double)ms / 1000.0 : 0.0;
	size_t len;

	(void)snprintf(out, outsize, s < 10 ? "%.2f" : s < 100 ? "%.1f" : "%.0f", s);
	len = strlen(out);
	if (strchr(out, '.') != NULL) {
		while (len > 0 && out[len - 1] == '0')
			out[--len] = '\0';
		if (len > 0 && out[len - 1] == '.')
			out[--len] = '\0';
	}
}

static const char *status_of(int code)
{
	return code < 400 ? "sent" : code < 500 ? "deferred" : "bounced";
}

void deliver_log(const struct deliver_request *r, const struct deliver_rcpt *rc)
{
	char total[16], a[16], b[16], c[16], d[16], orig[600];
	int64_t now = wall_ms();

	deliver_fmt_secs(total, sizeof(total), now - r->arrival);
	deliver_fmt_secs(a, sizeof(a), r->active - r->arrival);
	deliver_fmt_secs(b, sizeof(b), r->received - r->active);
	deliver_fmt_secs(c, sizeof(c), r->conn_ms);
	deliver_fmt_secs(d, sizeof(d), now - r->received - r->conn_ms);
	orig[0] = '\0';
	if (rc->orig[0] != '\0')
		(void)str_fmt(orig, sizeof(orig), " orig_to=<%s>,", rc->orig);
	msg_info("%s: to=<%s>,%s relay=%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, "
		 "status=%s (%s)", r->qid, rc->rcpt, orig, rc->relay, total, a, b, c, d, rc->dsn,
		 status_of(rc->code), rc->text);
}

void deliver_allow_init(struct server *srv, struct ipc_allow *allow)
{
	const char *queue = conf_str(srv->cfg, "queue_owner");
	const char *const allowed[] = { "root", queue, NULL };

	if (ipc_allow_init(allow, allowed) < 0)
		msg_warn("queue_owner %s is not a known user", queue);
	if (srv->dev_mode && !ipc_allow_check(allow, geteuid()) && allow->n < IPC_MAX_ALLOW)
		allow->uid[allow->n++] = geteuid();
}

struct ipc_server *deliver_serve(struct server *srv, struct ev_loop *loop, int max_clients,
				 const struct ipc_server_ops *ops)
{
	struct ipc_server *s = ipc_server_new(loop, max_clients, ops, NULL);

	if (ipc_server_listen(s, srv->listen_fd, srv->nlisten) < 0)
		msg_fatal("cannot watch listener: %m");
	ipc_server_signals(loop, NULL);
	server_report_ready(srv);
	return s;
}

/* ---- pool agents ------------------------------------------------------------------------ */

static struct ev_loop *pool_loop;
static const struct ipc_server_ops *pool_ops;
static bool pool_conn_closed;

static void pool_closed(struct ipc_peer *p)
{
	if (pool_ops->closed)
		pool_ops->closed(p);
	pool_conn_closed = true;
	ev_stop(pool_loop);
}

static uint64_t pool_tick_id;

/* A graceful stop (SIGHUP from master) ends the connection between requests. */
static void pool_tick(struct ev_loop *loop, void *arg)
{
	pool_tick_id = 0;
	if (server_stopping())
		ev_stop(loop);
	else
		pool_tick_id = ev_timer_add(loop, 500, pool_tick, arg);
}

void deliver_pool_serve(int fd, const struct ipc_server_ops *ops)
{
	static struct ipc_server_ops wrapped;
	static struct ipc_server *srv;
	struct ipc_peer *p;

	if (pool_loop == NULL) {
		pool_loop = ev_new();
		pool_ops = ops;
		wrapped = *ops;
		wrapped.closed = pool_closed;
		srv = ipc_server_new(pool_loop, 1, &wrapped, NULL);
	}
	fd = dup(fd);	/* the skeleton closes its own copy after we return */
	if (fd < 0 || fd_set_nonblock(fd, 1) < 0) {
		msg_warn("cannot take the connection: %m");
		if (fd >= 0)
			(void)close(fd);
		return;
	}
	pool_conn_closed = false;
	p = ipc_server_add(srv, fd);
	if (p == NULL)
		return;
	pool_tick_id = ev_timer_add(pool_loop, 500, pool_tick, NULL);
	while (!pool_conn_closed && !server_stopping())
		(void)ev_run(pool_loop);
	if (pool_tick_id != 0)
		ev_timer_cancel(pool_loop, pool_tick_id);
	pool_tick_id = 0;
	if (!pool_conn_closed)
		ipc_peer_close(p);	/* stopping: the request in progress was answered */
}
