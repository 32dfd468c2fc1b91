/*
 * conn.c: postern-local's socket. Only root and queue_owner may ask; a request is checked
 * strictly by lib/deliverreq.c (a malformed one is qmgr's bug and answered PERMFAIL, the
 * queue file descriptor is refused unless it is a read-only regular file holding the
 * message range). aliases_file is re-read here when it changed on disk, so an edit takes
 * effect with the next request and no restart; a file that cannot be read defers every
 * recipient (never bounces them). Then every recipient is tried in turn and one reply
 * carries all the results.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"
#include "log.h"
#include "msgheaders.h"
#include "util.h"

static void aliases_warning(void *arg, unsigned line, const char *msg)
{
	(void)arg;
	msg_warn("%s, line %u: %s", L.aliases.path, line, msg);
}

/* 0, or -1 when aliases_file cannot be read (logged). */
static int refresh_aliases(void)
{
	int rc = aliases_file_refresh(&L.aliases, aliases_warning, NULL);

	if (rc < 0) {
		msg_warn("cannot read aliases_file %s: %m; deferring its recipients",
			 L.aliases.path);
		return -1;
	}
	if (rc > 0 && L.aliases.present)
		msg_info("read %s: %zu aliases%s", L.aliases.path, L.aliases.tab.n,
			 L.aliases.trusted ? "" : "; |command and /file targets refused: not owned "
			 "by root or writable by group or others");
	return 0;
}

static unsigned notify_of(const struct ipc_msg *m, size_t i)
{
	char key[16];
	int64_t v = 0;

	(void)str_fmt(key, sizeof(key), "notify%zu", i);
	return ipc_get_int(m, key, &v) == 0 && v >= 0 && v <= 15 ? (unsigned)v : 0;
}

static void free_seen(struct lreq *r)
{
	for (size_t i = 0; i < r->nseen; i++)
		free(r->seen[i].key);
	free(r->seen);
	r->seen = NULL;
	r->nseen = r->seencap = 0;
}

static void deliver_all(struct lreq *r)
{
	bool aliases_ok = refresh_aliases() == 0;

	r->deadline = mono_ms() + DELIVER_TIMEOUT_MS - LOCAL_REQUEST_MARGIN_MS;
	for (size_t i = 0; i < r->req.nrcpt; i++) {
		struct deliver_rcpt *rc = &r->req.rcpt[i];

		(void)str_copy(rc->relay, sizeof(rc->relay), "local");
		if (aliases_ok) {
			local_deliver_rcpt(r, rc, notify_of(r->msg, i));
		} else {
			deliver_result(rc, 451, "4.3.0", "cannot read the aliases file; deferred");
			deliver_log(&r->req, rc);
		}
	}
}

static void handle_deliver(struct ipc_peer *p, struct ipc_msg *m)
{
	static struct lreq r;
	const char *bad = deliver_request_parse(m, &r.req);

	if (bad != NULL) {
		msg_warn("malformed request from pid %d: %s", (int)p->pid, bad);
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, bad);
		return;
	}
	r.msg = m;
	if (msgheaders_read(r.req.fd, r.req.msg_off, r.req.msg_len, MSGHEADERS_MAX, &r.headers,
			    &r.headers_len) < 0) {
		msg_warn("%s: cannot read the queue file: %m", r.req.qid);
		(void)ipc_peer_reply(p, m, IPC_TEMPFAIL, "cannot read the queue file");
		return;
	}
	deliver_all(&r);
	free(r.headers);
	r.headers = NULL;
	free_seen(&r);
	deliver_reply(p, m, &r.req);
}

static void handle_request(struct ipc_peer *p, struct ipc_msg *m)
{
	if (ipc_peer_allowed(p, m, &L.allow)) {
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
