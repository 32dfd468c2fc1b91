/*
 * conn.c: postern-anvil's requests, on lib/ipcserver.c's client sockets. Each peer is
 * checked against the allow-list on every request. A connection holds at most one
 * registration; when the socket closes (the session ended, or its process exited or died)
 * the registration goes with it, so a crashed smtpd never leaks a count.
 *
 * At most ANVIL_MAX_CLIENTS connections are counted. A few more are accepted only to answer
 * TEMPFAIL and be closed (their smtpd then fails open and says why); beyond those, new
 * connections are closed at once (ipc_server_set_overflow).
 */
#include "anvil.h"
#include "log.h"

/* The per-connection state (ipc_peer.data). */
struct conn {
	struct anvil_entry *reg;	/* NULL until CONNECT */
};

static struct ipc_msg reply;	/* one frame at a time */

static void conn_closed(struct ipc_peer *p)
{
	struct conn *c = p->data;

	if (c->reg)
		table_drop(c->reg);
}

static void handle_connect(struct ipc_peer *p, const struct ipc_msg *m)
{
	static const char *const keys[] = { "service", "rip", NULL };
	const char *service = ipc_get_str(m, "service"), *rip = ipc_get_str(m, "rip");
	struct conn *c = p->data;
	struct anvil_entry *old = c->reg;

	if (ipc_check_keys(m, keys) < 0 || service == NULL || rip == NULL ||
	    !anvil_valid_service(service) || !anvil_valid_rip(rip)) {
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "malformed request");
		return;
	}
	if (p->over_limit) {
		if (ipc_peer_reply(p, m, IPC_TEMPFAIL, "too many clients") == 0)
			ipc_peer_close(p);
		return;
	}
	/* Add before dropping: re-registering the same pair must not free its entry. */
	c->reg = table_add(service, rip);
	if (old)
		table_drop(old);
	msg_debug("connect: %s:%s count %d (pid %d)", service, rip, c->reg->count, (int)p->pid);
	ipc_reply_init(&reply, m, IPC_OK);
	if (ipc_put_int(&reply, "count", c->reg->count) < 0)
		msg_panic("cannot build a CONNECT reply");
	(void)ipc_peer_send(p, &reply);
}

static void handle_request(struct ipc_peer *p, struct ipc_msg *m)
{
	if (m->type != ANVIL_REQ_CONNECT)
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "unknown request type");
	else if (ipc_peer_allowed(p, m, &AV.allow))
		handle_connect(p, m);
}

const struct ipc_server_ops conn_ops = {
	.data_size = sizeof(struct conn),
	.request = handle_request,
	.closed = conn_closed,
};
