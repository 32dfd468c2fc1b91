/*
 * resolve.c: what qmgr asks authd (AUTH_REQ_RCPT, lib/authproto.h) and what it makes of
 * the answers: alias expansion when a message leaves incoming/, and the transport of every
 * final recipient.
 *
 * Expansion (Postfix's virtual_alias_maps semantics): an alias is replaced by its targets,
 * recursively up to alias_recursion_limit deep and alias_expansion_limit addresses per
 * recipient; a target equal to the alias itself means the alias's own mailbox; a target
 * that is one of its ancestors is a mail forwarding loop (the recipient bounces, 5.4.6,
 * once); duplicates are dropped. Every address an alias produced keeps the original
 * recipient as its ORCPT ("rfc822;alias@domain", unless the client gave one), so the
 * delivery log says orig_to= and a bounce names what the sender wrote.
 *
 * A lookup that fails temporarily stops the whole expansion: the message stays in
 * incoming/ and is tried again later. Only authd's definite "unknown user" bounces.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "authproto.h"
#include "log.h"
#include "qmgr.h"
#include "util.h"

enum kind { K_VIRTUAL, K_ALIAS, K_LOCAL, K_REMOTE, K_UNKNOWN, K_TEMPFAIL };

struct answer {
	enum kind kind;
	struct ipc_msg rep;	/* targets point into it */
	const unsigned char *targets;
	size_t tlen;
};

/* One authd call, reconnecting once on a broken connection. 0, or -1 (temporary). */
static int authd_call(const struct ipc_msg *req, struct ipc_msg *rep)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (G.auth_sock < 0)
			G.auth_sock = ipc_connect(G.auth_path, AUTH_TIMEOUT_MS);
		if (G.auth_sock < 0) {
			msg_warn("connect to authd %s: %m", G.auth_path);
			return -1;
		}
		if (ipc_call(G.auth_sock, req, rep, AUTH_TIMEOUT_MS) == 0)
			return 0;
		msg_warn("authd request: %m");
		(void)close(G.auth_sock);
		G.auth_sock = -1;
		if (errno == ETIMEDOUT)
			return -1;
	}
	return -1;
}

static void lookup(const char *addr, struct answer *a)
{
	static struct ipc_msg req;
	static uint32_t id;
	const struct ipc_attr *t;
	const char *kind;

	a->kind = K_TEMPFAIL;
	ipc_msg_init(&req, AUTH_REQ_RCPT, ++id);
	if (ipc_put_str(&req, "address", addr) < 0 || authd_call(&req, &a->rep) < 0)
		return;
	if (a->rep.status == IPC_PERMFAIL) {
		a->kind = K_UNKNOWN;
		return;
	}
	if (a->rep.status != IPC_OK || (kind = ipc_get_str(&a->rep, "kind")) == NULL)
		return;
	if (strcmp(kind, "virtual") == 0)
		a->kind = K_VIRTUAL;
	else if (strcmp(kind, "local") == 0)
		a->kind = K_LOCAL;
	else if (strcmp(kind, "remote") == 0)
		a->kind = K_REMOTE;
	else if (strcmp(kind, "alias") == 0 && (t = ipc_get(&a->rep, "targets")) != NULL &&
		 t->kind == IPC_BYTES) {
		a->kind = K_ALIAS;
		a->targets = t->val;
		a->tlen = t->len;
	}
}

/* ---- expansion -------------------------------------------------------------------------- */

struct expand_ctx {
	const struct qf_rcpt *orig;	/* the recipient being expanded */
	int kind;			/* transport of the final being added, -1 unknown */
	struct expansion *out;
	size_t produced;
	const char *chain[64];		/* ancestors, for loop detection */
	int depth;
};

static void add_final(struct expand_ctx *c, const char *addr, const struct qf_status *st)
{
	struct expansion *e = c->out;
	struct qf_rcpt *r;

	for (size_t i = 0; i < e->n; i++)
		if (strcasecmp(e->r[i].addr, addr) == 0) {
			if (strcmp(addr, c->orig->addr) != 0)
				e->changed = true;	/* a duplicate is dropped */
			return;
		}
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->r = xreallocarray(e->r, e->cap, sizeof(*e->r));
		e->tr = xreallocarray(e->tr, e->cap, sizeof(*e->tr));
	}
	e->tr[e->n] = c->kind;
	r = &e->r[e->n++];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(addr);
	r->notify = c->orig->notify;
	if (c->orig->orcpt && c->orig->orcpt[0])
		r->orcpt = xstrdup(c->orig->orcpt);
	else if (strcmp(addr, c->orig->addr) != 0) {
		size_t len = strlen(c->orig->addr) + sizeof("rfc822;");

		r->orcpt = xmalloc(len);
		(void)str_fmt(r->orcpt, len, "rfc822;%s", c->orig->addr);
	}
	if (st)
		r->status = *st;
	if (strcmp(addr, c->orig->addr) != 0 || st == NULL ||
	    st->state != c->orig->status.state)
		e->changed = true;
}

static void add_failed(struct expand_ctx *c, unsigned code, const char *dsn)
{
	struct qf_status st = { .state = QF_BOUNCED, .code = (uint16_t)code,
				.last_ms = wall_ms() };

	(void)str_copy(st.dsn, sizeof(st.dsn), dsn);
	add_final(c, c->orig->addr, &st);
	c->out->changed = true;
}

static bool in_chain(const struct expand_ctx *c, const char *addr)
{
	for (int i = 0; i < c->depth; i++)
		if (strcasecmp(c->chain[i], addr) == 0)
			return true;
	return false;
}

/* Expand addr (depth bounded by alias_recursion_limit, at most 64). 0, or -1 on a
 * temporary lookup failure. */
static int expand(struct expand_ctx *c, const char *addr)
{
	struct answer *a = xmalloc(sizeof(*a));
	int rc = 0;

	lookup(addr, a);
	switch (a->kind) {
	case K_TEMPFAIL:
		rc = -1;
		break;
	case K_UNKNOWN: {
		struct qf_status st = { .state = QF_BOUNCED, .code = 550, .dsn = "5.1.1",
					.last_ms = wall_ms() };

		if (c->depth > 0)
			msg_warn("%s: alias target %s: unknown user", c->orig->addr, addr);
		add_final(c, addr, &st);	/* the bounce names the address that failed */
		c->out->changed = true;
		break;
	}
	case K_ALIAS:
		if (c->depth >= G.recursion_limit || c->depth >= (int)ARRAY_LEN(c->chain)) {
			add_failed(c, 554, "5.4.6");
			break;
		}
		c->chain[c->depth++] = addr;
		for (size_t off = 0; off < a->tlen && rc == 0;) {
			const char *t = (const char *)a->targets + off;
			size_t len = strnlen(t, a->tlen - off);

			off += len + 1;
			if (len == 0 || len > QF_MAX_ADDR || memchr(t, '\0', len) != NULL)
				continue;
			if (++c->produced > (size_t)G.expansion_limit) {
				add_failed(c, 554, "5.3.0");
				break;
			}
			if (strcasecmp(t, addr) == 0) {
				c->kind = T_VIRTUAL;		/* the alias's own mailbox */
				add_final(c, t, NULL);
				c->kind = -1;
			}
			else if (in_chain(c, t)) {
				msg_warn("%s: mail forwarding loop through %s", c->orig->addr, t);
				add_failed(c, 554, "5.4.6");
			} else
				rc = expand(c, t);
		}
		c->depth--;
		break;
	default:
		c->kind = a->kind == K_VIRTUAL ? T_VIRTUAL : a->kind == K_LOCAL ? T_LOCAL : T_SMTP;
		add_final(c, addr, c->depth == 0 ? &c->orig->status : NULL);
		break;
	}
	c->kind = -1;
	free(a);
	return rc;
}

enum resolve_status resolve_expand(const struct qf *q, struct expansion *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < q->env.nrcpt; i++) {
		const struct qf_rcpt *r = &q->env.rcpt[i];
		struct expand_ctx c = { .orig = r, .out = out, .kind = -1 };

		if (r->status.state != QF_PENDING && r->status.state != QF_DEFERRED) {
			add_final(&c, r->addr, &r->status);	/* done: kept as it is */
			continue;
		}
		if (expand(&c, r->addr) < 0) {
			expansion_free(out);
			return RES_TEMPFAIL;
		}
	}
	if (out->n > QF_MAX_RCPTS) {
		msg_warn("%s: %zu recipients after alias expansion; the first %d are kept",
			 q->env.qid, out->n, QF_MAX_RCPTS);
		while (out->n > QF_MAX_RCPTS) {
			out->n--;
			free(out->r[out->n].addr);
			free(out->r[out->n].orcpt);
		}
	}
	return RES_OK;
}

void expansion_free(struct expansion *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->r[i].addr);
		free(e->r[i].orcpt);
	}
	free(e->r);
	free(e->tr);
	memset(e, 0, sizeof(*e));
}

/* ---- transports ------------------------------------------------------------------------- */

/* transport_map: "domain=transport[:nexthop]" items; ".domain" matches subdomains. */
bool transport_override(const char *domain, enum transport *t, char **nexthop)
{
	size_t n, dlen = strlen(domain);
	const char *const *items = conf_list(G.cfg, "transport_map", &n);

	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(items[i], '='), *key = items[i], *colon;
		size_t klen = eq ? (size_t)(eq - key) : 0;
		bool match;

		if (eq == NULL)
			continue;
		if (key[0] == '.')
			match = dlen > klen && strncasecmp(domain + dlen - klen, key, klen) == 0;
		else
			match = dlen == klen && strncasecmp(domain, key, klen) == 0;
		if (!match)
			continue;
		colon = strchr(eq + 1, ':');
		{
			size_t tlen = colon ? (size_t)(colon - eq - 1) : strlen(eq + 1);

			*t = tlen == 7 && strncmp(eq + 1, "virtual", 7) == 0 ? T_VIRTUAL :
			     tlen == 5 && strncmp(eq + 1, "local", 5) == 0 ? T_LOCAL : T_SMTP;
		}
		*nexthop = colon && colon[1] ? xstrdup(colon + 1) : NULL;
		return true;
	}
	return false;
}

enum resolve_status resolve_transport(const char *addr, enum transport *t, char **nexthop,
				      int *code, char *dsn, char *text, size_t textlen)
{
	static struct answer answer;	/* one per lookup: not recursive, unlike expand() */
	struct answer *a = &answer;
	const char *at = strrchr(addr, '@');
	enum resolve_status rs = RES_OK;

	*nexthop = NULL;
	*code = 0;
	if (at && transport_override(at + 1, t, nexthop))
		return RES_OK;
	lookup(addr, a);
	switch (a->kind) {
	case K_VIRTUAL:
	case K_ALIAS:		/* past incoming/, an alias answer is the alias's mailbox */
		*t = T_VIRTUAL;
		break;
	case K_LOCAL:
		*t = T_LOCAL;
		break;
	case K_REMOTE:
		*t = T_SMTP;
		break;
	case K_UNKNOWN:
		*code = 550;
		(void)str_copy(dsn, 16, "5.1.1");
		(void)str_fmt(text, textlen, "unknown user: \"%s\"", addr);
		break;
	case K_TEMPFAIL:
		rs = RES_TEMPFAIL;
		*code = 451;
		(void)str_copy(dsn, 16, "4.3.0");
		(void)str_copy(text, textlen, "temporary lookup failure");
		break;
	}
	return rs;
}
