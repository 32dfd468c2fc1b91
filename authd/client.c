/*
 * client.c: authd's requests. The connections are lib/ipcserver.c's; every request is
 * checked against its type's allow-list, validated strictly (known keys only, bounded
 * values), answered from the cache or turned into a job for the workers. Each job and each
 * delayed reply holds its peer, so a client that disconnects meanwhile stays allocated until
 * they finish and a late answer never reaches a reused descriptor.
 */
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "log.h"
#include "util.h"

/* A failed login's answer waits in a timer, so brute force costs the attacker time. */
struct delayed {
	struct ipc_peer *client;
	uint16_t type;
	uint32_t id;
};

static struct ipc_msg reply;	/* the main thread handles one frame at a time */

static void reply_status(struct ipc_peer *c, const struct ipc_msg *r, int status,
			 const char *reason)
{
	(void)ipc_peer_reply(c, r, (enum ipc_status)status, reason);
}

/* Fill a reply with a lookup result's attributes for this request type. */
static void put_lookup(struct ipc_msg *m, int type, const struct lookup *res)
{
	if (res->status != IPC_OK) {
		if (res->reason[0])
			ipc_put_str(m, "reason", res->reason);
		return;
	}
	switch (type) {
	case AUTH_REQ_RCPT:
		ipc_put_str(m, "kind", res->kind);
		if (strcmp(res->kind, "alias") == 0)
			ipc_put_bytes(m, "targets", res->targets.data ? res->targets.data : "",
				      res->targets.len);
		else if (res->user[0])
			ipc_put_str(m, "user", res->user);
		break;
	case AUTH_REQ_USER:
	case AUTH_REQ_TICKET:
		ipc_put_str(m, "user", res->user);
		ipc_put_str(m, "home", res->home);
		ipc_put_str(m, "mail", res->mail);
		ipc_put_int(m, "uid", res->uid);
		ipc_put_int(m, "gid", res->gid);
		ipc_put_int(m, "quota", res->quota);
		break;
	default:
		break;
	}
}

static void reply_lookup(struct ipc_peer *c, int type, uint32_t id, const struct lookup *res)
{
	ipc_msg_init(&reply, (uint16_t)type, id);
	reply.status = (uint16_t)res->status;
	put_lookup(&reply, type, res);
	ipc_peer_send(c, &reply);
}

/* Copy a string attribute into dst; false if absent, empty or too long. */
static bool take_str(const struct ipc_msg *m, const char *key, char *dst, size_t dstlen)
{
	const char *v = ipc_get_str(m, key);

	return v && *v && str_copy(dst, dstlen, v) == 0;
}

static struct job *job_new(struct ipc_peer *c, const struct ipc_msg *m)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->type = m->type;
	j->req_id = m->id;
	j->client = c;
	j->arrived = ev_now(A.loop);
	buf_init(&j->res.targets, 1 << 16);
	ipc_peer_hold(c);
	return j;
}

static void job_free(struct job *j)
{
	explicit_bzero(j->pass, sizeof(j->pass));
	lookup_free(&j->res);
	free(j);
}

static const char *cache_key(int type, const char *user, const char *address, char *out,
			     size_t outlen)
{
	if (type == AUTH_REQ_SENDER)
		str_fmt(out, outlen, "%s\n%s", user, address);
	else
		str_copy(out, outlen, address);
	return out;
}

static void on_delayed(struct ev_loop *loop, void *arg)
{
	struct delayed *d = arg;

	(void)loop;
	ipc_msg_init(&reply, d->type, d->id);
	reply.status = IPC_PERMFAIL;
	ipc_put_str(&reply, "reason", "authentication failed");
	(void)ipc_peer_send(d->client, &reply);
	ipc_peer_release(d->client);
	free(d);
}

/* A log line in the shape of Dovecot's auth process, which fail2ban's stock dovecot filter
 * reads: program name "auth", text "sql(USER,RIP): unknown user" / "Password mismatch". */
static void log_auth_failure(const struct job *j)
{
	char user[ADDR_MAX + 1];

	str_copy(user, sizeof(user), j->user);
	for (char *p = user; *p; p++)
		if (*p == ' ' || *p == ',' || *p == '(' || *p == ')')
			*p = '?';
	msg_tagged("auth", "sql(%s,%s): %s", user, j->rip,
		   j->res.reason[0] ? j->res.reason : "failed");
}

static void auth_done(struct ipc_peer *c, struct job *j)
{
	char ticket[80];

	if (j->res.status == IPC_OK) {
		throttle_success(j->rip, j->user);
		ipc_msg_init(&reply, AUTH_REQ_AUTH, j->req_id);
		ipc_put_str(&reply, "user", j->res.user);
		if (j->want_ticket) {
			ticket_issue(&j->res, ticket, sizeof(ticket));
			ipc_put_str(&reply, "ticket", ticket);
		}
		msg_debug("auth ok: user=<%s>, service=%s, rip=%s", j->res.user, j->service, j->rip);
		ipc_peer_send(c, &reply);
	} else if (j->res.status == IPC_PERMFAIL) {
		struct delayed *d = xcalloc(1, sizeof(*d));
		/* Counted from the request's arrival, so the answer's timing does not tell how
		 * expensive the hash was, or whether there was one. */
		int64_t delay = j->arrived + throttle_failure(j->rip, j->user) - ev_now(A.loop);

		log_auth_failure(j);
		d->client = c;
		d->type = AUTH_REQ_AUTH;
		d->id = j->req_id;
		ipc_peer_hold(c);
		ev_timer_add(A.loop, delay > 0 ? delay : 0, on_delayed, d);
	} else {
		ipc_msg_init(&reply, AUTH_REQ_AUTH, j->req_id);
		reply.status = IPC_TEMPFAIL;
		ipc_put_str(&reply, "reason", j->res.reason[0] ? j->res.reason : "temporary failure");
		ipc_peer_send(c, &reply);
	}
}

void client_job_done(struct job *j)
{
	struct ipc_peer *c = j->client;
	char key[2 * ADDR_MAX + 4];

	if (j->type == AUTH_REQ_AUTH) {
		auth_done(c, j);
	} else {
		if (j->res.status != IPC_TEMPFAIL)
			cache_put(j->type, cache_key(j->type, j->user, j->address, key, sizeof(key)), &j->res);
		reply_lookup(c, j->type, j->req_id, &j->res);
	}
	job_free(j);
	ipc_peer_release(c);
}

/* SASL PLAIN: authzid NUL authcid NUL passwd; an authzid other than authcid is refused. */
static bool parse_plain(const struct ipc_attr *a, struct job *j)
{
	const char *p = (const char *)a->val, *end = p + a->len;
	const char *n1 = memchr(p, '\0', a->len), *n2;
	size_t zlen, clen, plen;

	if (n1 == NULL || (n2 = memchr(n1 + 1, '\0', (size_t)(end - n1 - 1))) == NULL)
		return false;
	zlen = (size_t)(n1 - p);
	clen = (size_t)(n2 - n1 - 1);
	plen = (size_t)(end - n2 - 1);
	if (memchr(n2 + 1, '\0', plen) || clen == 0 || clen > ADDR_MAX || plen == 0 ||
	    plen > AUTH_MAX_PASSWORD)
		return false;
	if (zlen && (zlen != clen || memcmp(p, n1 + 1, clen) != 0))
		return false;
	memcpy(j->user, n1 + 1, clen);
	j->user[clen] = '\0';
	memcpy(j->pass, n2 + 1, plen);
	j->pass[plen] = '\0';
	return true;
}

static const char *const auth_keys[] = {
	"service", "mech", "rip", "resp", "user", "pass", "ticket", "challenge", "response", NULL,
};

static void handle_auth(struct ipc_peer *c, const struct ipc_msg *m)
{
	struct job *j = job_new(c, m);
	const struct ipc_attr *resp = ipc_get(m, "resp");
	int64_t want = 0;
	bool ok;

	ok = ipc_check_keys(m, auth_keys) == 0 && take_str(m, "mech", j->mech, sizeof(j->mech)) &&
	     take_str(m, "service", j->service, sizeof(j->service)) &&
	     take_str(m, "rip", j->rip, sizeof(j->rip));
	if (ok && strcmp(j->mech, "PLAIN") == 0)
		ok = resp && resp->kind == IPC_BYTES && parse_plain(resp, j);
	else if (ok && strcmp(j->mech, "LOGIN") == 0)
		ok = take_str(m, "user", j->user, sizeof(j->user)) &&
		     take_str(m, "pass", j->pass, sizeof(j->pass));
	else if (ok && strcmp(j->mech, "CRAM-MD5") == 0)
		ok = take_str(m, "user", j->user, sizeof(j->user)) &&
		     take_str(m, "challenge", j->challenge, sizeof(j->challenge)) &&
		     take_str(m, "response", j->pass, sizeof(j->pass));
	else
		ok = false;
	if (ok && ipc_get_int(m, "ticket", &want) == 0)
		j->want_ticket = want != 0;
	if (!ok) {
		reply_status(c, m, IPC_PERMFAIL, "malformed request");
	} else if (throttle_check(j->rip, j->user) < 0) {
		msg_tagged("auth", "sql(%s,%s): login refused: too many failures", j->user, j->rip);
		reply_status(c, m, IPC_TEMPFAIL, "too many failed logins; try again later");
	} else {
		workers_submit(j);
		return;
	}
	ipc_peer_release(c);
	job_free(j);
}

static void handle_ticket(struct ipc_peer *c, const struct ipc_msg *m)
{
	static const char *const keys[] = { "ticket", NULL };
	struct lookup res;
	const char *t = ipc_get_str(m, "ticket");

	if (ipc_check_keys(m, keys) < 0 || t == NULL) {
		reply_status(c, m, IPC_PERMFAIL, "malformed request");
		return;
	}
	memset(&res, 0, sizeof(res));
	buf_init(&res.targets, 1);
	if (!ticket_redeem(t, &res)) {
		reply_status(c, m, IPC_PERMFAIL, "unknown or expired ticket");
		return;
	}
	reply_lookup(c, AUTH_REQ_TICKET, m->id, &res);
	lookup_free(&res);
}

/* rcpt, user, sender: answered from the cache when possible (no job is made for a hit:
 * this is the hot path). */
static void handle_lookup(struct ipc_peer *c, const struct ipc_msg *m)
{
	static const char *const addr_keys[] = { "address", NULL };
	static const char *const sender_keys[] = { "user", "address", NULL };
	bool sender = m->type == AUTH_REQ_SENDER;
	char address[ADDR_MAX + 1], user[ADDR_MAX + 1] = "", key[2 * ADDR_MAX + 4];
	const struct lookup *hit;
	struct job *j;

	if (ipc_check_keys(m, sender ? sender_keys : addr_keys) < 0 ||
	    !take_str(m, "address", address, sizeof(address)) ||
	    (sender && !take_str(m, "user", user, sizeof(user)))) {
		reply_status(c, m, IPC_PERMFAIL, "malformed request");
		return;
	}
	hit = cache_get(m->type, cache_key(m->type, user, address, key, sizeof(key)));
	if (hit) {
		reply_lookup(c, m->type, m->id, hit);
		return;
	}
	j = job_new(c, m);
	memcpy(j->address, address, sizeof(address));
	memcpy(j->user, user, sizeof(user));
	workers_submit(j);
}

static void handle_request(struct ipc_peer *c, struct ipc_msg *m)
{
	int idx = (int)m->type - AUTH_REQ_AUTH;

	if (idx < 0 || idx > AUTH_REQ_SENDER - AUTH_REQ_AUTH) {
		reply_status(c, m, IPC_PERMFAIL, "unknown request type");
		return;
	}
	if (!ipc_peer_allowed(c, m, &A.allow[idx]))
		return;
	switch (m->type) {
	case AUTH_REQ_AUTH: handle_auth(c, m); break;
	case AUTH_REQ_TICKET: handle_ticket(c, m); break;
	default: handle_lookup(c, m); break;
	}
}

const struct ipc_server_ops client_ops = { .request = handle_request };
