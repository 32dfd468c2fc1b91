/*
 * conn.c: postern-virtual's socket. Only root and queue_owner may ask; a request is checked
 * strictly by lib/deliverreq.c (a malformed one is qmgr's bug and answered PERMFAIL, the
 * queue file descriptor is refused unless it is a read-only regular file holding the
 * message range), then every recipient is tried in turn and one reply carries all the
 * results.
 */
#include <stdlib.h>

#include "log.h"
#include "util.h"
#include "virtual.h"

static void handle_deliver(struct ipc_peer *p, struct ipc_msg *m)
{
	static struct vreq r;
	const char *bad = deliver_request_parse(m, &r.req);

	if (bad != NULL) {
		msg_warn("malformed request from pid %d: %s", (int)p->pid, bad);
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, bad);
		return;
	}
	if (headers_read(&r) < 0) {
		msg_warn("%s: cannot read the queue file: %m", r.req.qid);
		(void)ipc_peer_reply(p, m, IPC_TEMPFAIL, "cannot read the queue file");
		return;
	}
	for (size_t i = 0; i < r.req.nrcpt; i++) {
		struct deliver_rcpt *rc = &r.req.rcpt[i];

		(void)str_copy(rc->relay, sizeof(rc->relay), "virtual");
		deliver_rcpt(&r, rc);
		deliver_log(&r.req, rc);
	}
	free(r.headers);
	r.headers = NULL;
	deliver_reply(p, m, &r.req);
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
