/*
 * control.c: private/qmgr, queue control for `postern queue` (lib/qmgrproto.h). Only root
 * may ask. A message in active/ has agents working on it: it is marked, and the operation
 * happens when its jobs have answered (message.c). Files elsewhere are moved or removed at
 * once. Released and requeued messages go back through incoming/, so their aliases are
 * expanded again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "qmgrproto.h"
#include "util.h"

enum op { OP_DELETE, OP_HOLD, OP_RELEASE, OP_REQUEUE };

struct op_ctx {
	enum op op;
	int count;
};

/* One message in directory d (D_ACTIVE: a message in memory). */
static void apply(enum qdir d, const char *qid, struct op_ctx *c)
{
	char path[64];
	struct msg *m;

	if (qdir_path(qid, path, sizeof(path)) < 0)
		return;
	if ((m = msg_find(qid)) != NULL) {
		if (c->op == OP_RELEASE)
			return;
		msg_control(m, c->op == OP_DELETE ? M_DELETE : c->op == OP_HOLD ? M_HOLD : M_REQUEUE);
		c->count++;
		return;
	}
	switch (c->op) {
	case OP_DELETE:
		if (unlinkat(G.dfd[d], path, 0) < 0)
			return;
		deferlog_remove(qid);
		msg_info("%s: removed", qid);
		break;
	case OP_HOLD:
		if (d == D_HOLD || qdir_move(d, D_HOLD, qid) < 0)
			return;
		msg_info("%s: placed on hold", qid);
		break;
	case OP_RELEASE:
		if (d != D_HOLD || qdir_move(D_HOLD, D_INCOMING, qid) < 0)
			return;
		msg_info("%s: released from hold", qid);
		break;
	case OP_REQUEUE:
		if (d == D_INCOMING || qdir_move(d, D_INCOMING, qid) < 0)
			return;
		deferlog_remove(qid);
		msg_info("%s: requeued", qid);
		break;
	}
	c->count++;
}

static void apply_each(enum qdir d, const char *qid, int sub, void *arg)
{
	(void)sub;
	apply(d, qid, arg);
}

static void apply_all(struct op_ctx *c)
{
	static const enum qdir dirs[] = { D_INCOMING, D_DEFERRED, D_HOLD };

	for (struct msg *m = G.active; m; m = m->next)
		apply(D_ACTIVE, m->qid, c);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		qdir_each(dirs[i], apply_each, c);
}

static void apply_one(struct op_ctx *c, const char *qid)
{
	static const enum qdir dirs[] = { D_ACTIVE, D_DEFERRED, D_HOLD, D_INCOMING };

	if (msg_find(qid)) {
		apply(D_ACTIVE, qid, c);
		return;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (dirs[i] != D_ACTIVE && qdir_exists(dirs[i], qid)) {
			apply(dirs[i], qid, c);
			return;
		}
}

static void handle_control(struct ipc_peer *p, struct ipc_msg *m)
{
	static const char *const keys[] = { "op", "id", NULL };
	static const char *const names[] = { "delete", "hold", "release", "requeue" };
	const char *op = ipc_get_str(m, "op"), *id = ipc_get_str(m, "id");
	struct op_ctx c = { 0 };
	struct ipc_msg *rep = xmalloc(sizeof(*rep));
	size_t i;

	if (op == NULL || ipc_check_keys(m, keys) < 0) {
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "bad request");
		free(rep);
		return;
	}
	if (strcmp(op, "flush") == 0) {
		c.count = scan_deferred(true);
		scan_incoming();
		dispatch_run();
	} else {
		for (i = 0; i < ARRAY_LEN(names) && strcmp(op, names[i]) != 0; i++)
			;
		if (i == ARRAY_LEN(names) || id == NULL ||
		    (strcmp(id, "ALL") != 0 && !qid_valid(id))) {
			(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "bad op or id");
			free(rep);
			return;
		}
		c.op = (enum op)i;
		if (strcmp(id, "ALL") == 0)
			apply_all(&c);
		else
			apply_one(&c, id);
		if (c.count == 0 && strcmp(id, "ALL") != 0) {
			(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "no such message");
			free(rep);
			return;
		}
		if (c.op == OP_RELEASE || c.op == OP_REQUEUE)
			scan_incoming_soon();
	}
	ipc_reply_init(rep, m, IPC_OK);
	(void)ipc_put_int(rep, "count", c.count);
	(void)ipc_peer_send(p, rep);
	free(rep);
}

static void handle_request(struct ipc_peer *p, struct ipc_msg *m)
{
	if (!ipc_peer_allowed(p, m, &G.control_allow))
		return;
	if (m->type == QMGR_REQ_CONTROL)
		handle_control(p, m);
	else
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "unknown request type");
}

const struct ipc_server_ops control_ops = {
	.request = handle_request,
};
