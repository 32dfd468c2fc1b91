/*
 * anvil_client.c: smtpd's side of lib/anvilproto.h, the per-address connection limit
 * (smtpd_client_connection_count_limit). A pool process sees one client, so the count lives
 * in postern-anvil: the session registers its service and client address at start and keeps
 * the socket open until it ends (session.c closes it); anvil forgets the connection when the
 * socket closes, however this process ends.
 *
 * Fail open: if anvil is unreachable, slow (ANVIL_TIMEOUT_MS) or refuses, the client is let
 * in: a missing anvil must not stop mail. That is logged once, and again only after anvil
 * has answered in between, so an outage does not flood the log.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"
#include "anvilproto.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

static bool warned;	/* an anvil failure was logged and anvil has not answered since */

static void close_anvil(struct session *ss)
{
	if (ss->anvil_sock >= 0)
		(void)close(ss->anvil_sock);
	ss->anvil_sock = -1;
}

static void fail_open(struct session *ss, const char *why)
{
	close_anvil(ss);
	if (warned)
		return;
	msg_warn("anvil %s: %s; connection count limit not enforced", ss->cf->anvil_path, why);
	warned = true;
}

/* The number of connections from this client to this service, this one included; -1 if
 * anvil cannot tell (already logged). */
static long long anvil_connect(struct session *ss)
{
	static struct ipc_msg req, rep;
	int64_t count;
	const char *reason;

	ss->anvil_sock = ipc_connect(ss->cf->anvil_path, ANVIL_TIMEOUT_MS);
	if (ss->anvil_sock < 0) {
		fail_open(ss, strerror(errno));
		return -1;
	}
	ipc_msg_init(&req, ANVIL_REQ_CONNECT, ++ss->ipc_id);
	if (ipc_put_str(&req, "service", ss->srv->service) < 0 ||
	    ipc_put_str(&req, "rip", ss->addr) < 0) {
		fail_open(ss, "cannot build the request");
		return -1;
	}
	if (ipc_call(ss->anvil_sock, &req, &rep, ANVIL_TIMEOUT_MS) < 0) {
		fail_open(ss, strerror(errno));
		return -1;
	}
	ipc_close_fds(&rep);
	if (rep.status != IPC_OK) {
		reason = ipc_get_str(&rep, "reason");
		fail_open(ss, reason ? reason : "request failed");
		return -1;
	}
	if (ipc_get_int(&rep, "count", &count) < 0 || count < 1) {
		fail_open(ss, "malformed reply");
		return -1;
	}
	warned = false;
	return (long long)count;
}

bool anvil_over_limit(struct session *ss)
{
	long long limit = ss->cf->conn_limit, count;

	if (limit == 0 || ss->mynetworks)
		return false;
	count = anvil_connect(ss);
	if (count <= limit)
		return false;
	/* Postfix's wording, which fail2ban filters and pflogsumm know. */
	msg_warn("Connection concurrency limit exceeded: %lld from %s for service %s", count,
		 ss->namaddr, ss->srv->service);
	return true;
}

void anvil_disconnect(struct session *ss)
{
	close_anvil(ss);
}
