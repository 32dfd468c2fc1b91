/*
 * policy.c: who may do what. mynetworks matching (CIDR, IPv4 and IPv6, IPv4-mapped IPv6
 * peers compared as IPv4), and the authd questions smtpd asks: RCPT (is this address ours,
 * and what is it) and SENDER (does the login own this envelope sender). The relay decision
 * itself (permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination) is made
 * in transaction.c from the answer.
 *
 * authd is reached over its socket, connected on first use per session and reconnected
 * once if the connection broke; no answer in time is a TEMPFAIL (DESIGN.md §3).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"
#include "authproto.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

static int parse_net(const char *item, struct smtpd_net *n)
{
	char host[128];
	const char *slash = strchr(item, '/');
	size_t hlen = slash ? (size_t)(slash - item) : strlen(item);
	long long prefix = -1;

	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, item, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && host[hlen - 1] == ']') {	/* Postfix writes [::1]/128 */
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, host, n->addr) == 1)
		n->family = AF_INET;
	else if (inet_pton(AF_INET6, host, n->addr) == 1)
		n->family = AF_INET6;
	else
		return -1;
	if (slash && str_to_ll(slash + 1, 0, n->family == AF_INET ? 32 : 128, &prefix) < 0)
		return -1;
	n->prefix = slash ? (int)prefix : (n->family == AF_INET ? 32 : 128);
	return 0;
}

int policy_parse_networks(struct smtpd_conf *cf, const char *const *items, size_t n)
{
	cf->nnets = 0;
	for (size_t i = 0; i < n; i++) {
		if (cf->nnets == SMTPD_MAX_NETS || parse_net(items[i], &cf->nets[cf->nnets]) < 0)
			return -1;
		cf->nnets++;
	}
	return 0;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[bytes] ^ b[bytes]) & (0xff << (8 - rest))) == 0;
}

bool policy_in_networks(const struct smtpd_conf *cf, const struct sockaddr *sa)
{
	unsigned char a[16];
	int family = sa->sa_family;

	if (family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			family = AF_INET;
			memcpy(a, in6->s6_addr + 12, 4);
		} else {
			memcpy(a, in6->s6_addr, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < cf->nnets; i++)
		if (cf->nets[i].family == family && prefix_match(a, cf->nets[i].addr, cf->nets[i].prefix))
			return true;
	return false;
}

/* ---- authd ------------------------------------------------------------------------------ */

/* One call; on a broken connection, reconnect once and retry. -1 means TEMPFAIL. */
int authd_call(struct session *ss, const struct ipc_msg *req, struct ipc_msg *rep)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (ss->auth_sock < 0)
			ss->auth_sock = ipc_connect(ss->cf->auth_path, AUTH_TIMEOUT_MS);
		if (ss->auth_sock < 0) {
			msg_warn("connect to authd %s: %m", ss->cf->auth_path);
			return -1;
		}
		if (ipc_call(ss->auth_sock, req, rep, AUTH_TIMEOUT_MS) == 0)
			return 0;
		msg_warn("authd request: %m");
		(void)close(ss->auth_sock);
		ss->auth_sock = -1;
		if (errno == ETIMEDOUT)
			return -1;
	}
	return -1;
}

int policy_rcpt_lookup(struct session *ss, const char *addr, char *kind, size_t kindlen)
{
	static struct ipc_msg req, rep;
	const char *k;

	ipc_msg_init(&req, AUTH_REQ_RCPT, ++ss->ipc_id);
	if (ipc_put_str(&req, "address", addr) < 0)
		return IPC_PERMFAIL;
	if (authd_call(ss, &req, &rep) < 0)
		return IPC_TEMPFAIL;
	if (rep.status == IPC_OK) {
		k = ipc_get_str(&rep, "kind");
		if (k == NULL || str_copy(kind, kindlen, k) < 0)
			return IPC_TEMPFAIL;
		return IPC_OK;
	}
	return rep.status == IPC_PERMFAIL ? IPC_PERMFAIL : IPC_TEMPFAIL;
}

int policy_sender_check(struct session *ss, const char *addr, char *reason, size_t rlen)
{
	static struct ipc_msg req, rep;
	const char *r;

	ipc_msg_init(&req, AUTH_REQ_SENDER, ++ss->ipc_id);
	if (ipc_put_str(&req, "user", ss->auth_user) < 0 || ipc_put_str(&req, "address", addr) < 0)
		return IPC_PERMFAIL;
	if (authd_call(ss, &req, &rep) < 0)
		return IPC_TEMPFAIL;
	r = ipc_get_str(&rep, "reason");
	(void)str_copy(reason, rlen, r ? r : "");
	return rep.status == IPC_OK ? IPC_OK :
	       rep.status == IPC_PERMFAIL ? IPC_PERMFAIL : IPC_TEMPFAIL;
}
