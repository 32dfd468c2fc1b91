/*
 * conn.c: postern-virtual's socket. Only root and queue_owner may ask; a request is checked
 * strictly (a malformed one is qmgr's bug and answered PERMFAIL, the queue file descriptor
 * is refused unless it is a read-only regular file holding the message range), then every
 * recipient is tried in turn and one reply carries all the results.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "queuefile.h"
#include "util.h"
#include "virtual.h"

static const char *const fixed_keys[] = {
	"qid", "msg_off", "msg_len", "sender", "arrival", "active", "body", "smtputf8", "nrcpt",
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

/* A string free of control characters (it goes into a header and the log). */
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

/* The queue file: exactly one descriptor, opened read-only, a regular file that holds
 * msg_off + msg_len bytes. NULL or what is wrong. */
static const char *check_fd(const struct ipc_msg *m, struct vreq *r)
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

static const char *parse_rcpts(const struct ipc_msg *m, struct vreq *r, int64_t n)
{
	char key[16];
	const char *s;

	if (n < 1 || n > DELIVER_MAX_RCPT)
		return "nrcpt out of range";
	r->nrcpt = (size_t)n;
	for (size_t i = 0; i < r->nrcpt; i++) {
		(void)str_fmt(key, sizeof(key), "rcpt%zu", i);
		s = ipc_get_str(m, key);
		if (s == NULL || *s == '\0' || !clean(s, QF_MAX_ADDR))
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

/* Fill r from the request; NULL, or why it is malformed. */
static const char *parse_request(const struct ipc_msg *m, struct vreq *r)
{
	int64_t off, len, n;

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
	if (ipc_get_int(m, "arrival", &r->arrival) < 0)
		r->arrival = r->received;
	if (ipc_get_int(m, "active", &r->active) < 0)
		r->active = r->received;
	return parse_rcpts(m, r, n) ?: check_fd(m, r);
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

static void reply_results(struct ipc_peer *p, const struct ipc_msg *req, const struct vreq *r)
{
	static struct ipc_msg reply;
	int rc = 0;

	ipc_reply_init(&reply, req, IPC_OK);
	for (size_t i = 0; i < r->nrcpt && rc == 0; i++) {
		const struct vrcpt *rc_i = &r->rcpt[i];

		rc = put_indexed(&reply, "code", i, NULL, rc_i->code) |
		     put_indexed(&reply, "dsn", i, rc_i->dsn, 0) |
		     put_indexed(&reply, "text", i, rc_i->text, 0) |
		     put_indexed(&reply, "relay", i, "virtual", 0);
	}
	if (rc != 0)	/* 50 results of at most ~400 bytes each always fit a frame */
		msg_panic("cannot build a reply of %zu results", r->nrcpt);
	(void)ipc_peer_send(p, &reply);
}

static void handle_deliver(struct ipc_peer *p, struct ipc_msg *m)
{
	static struct vreq r;
	const char *bad;

	memset(&r, 0, sizeof(r));
	r.fd = -1;
	r.received = wall_ms();
	bad = parse_request(m, &r);
	if (bad != NULL) {
		msg_warn("malformed request from pid %d: %s", (int)p->pid, bad);
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, bad);
		return;
	}
	if (headers_read(&r) < 0) {
		msg_warn("%s: cannot read the queue file: %m", r.qid);
		(void)ipc_peer_reply(p, m, IPC_TEMPFAIL, "cannot read the queue file");
		return;
	}
	for (size_t i = 0; i < r.nrcpt; i++) {
		deliver_rcpt(&r, &r.rcpt[i]);
		log_delivery(&r, &r.rcpt[i]);
	}
	free(r.headers);
	reply_results(p, m, &r);
}

static void handle_request(struct ipc_peer *p, struct ipc_msg *m)
{
	if (ipc_peer_allowed(p, m, &V.allow)) {
		if (m->type == DELIVER_REQ_DELIVER)
			handle_deliver(p, m);
		else
			(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "unknown request type");
	}
	ipc_close_fds(m);	/* the queue file is only read during the request */
}

const struct ipc_server_ops conn_ops = {
	.request = handle_request,
	.max_fds = 1,
};
