/*
 * expand.c: one recipient, from its address to one result. The recipient's local part is
 * folded to lower case and looked up in aliases_file (with its address extension, then
 * without: user+tag -> user); an alias expands recursively into targets, each of which is
 *   - another local name or address in mydestination: expanded again (the chain of aliases
 *     being expanded stops loops: a name met again is delivered to the system user of that
 *     name if there is one, the sendmail idiom "root: \root, admin", else it is a loop);
 *   - |command or /file: honoured only from a root-owned aliases file that group and others
 *     cannot write, and never from an address;
 *   - :include:/path: its targets, same rules (and only from such a file);
 *   - a remote address: forwarded through a new queue file.
 * A name with no alias is a system user (getpwnam) or unknown (5.1.1). Every local address
 * on the way is checked against the message's Delivered-To: fields (5.4.6). Targets are
 * de-duplicated within the recipient and across the request's recipients; nesting and the
 * number of targets are bounded (alias_recursion_limit, alias_expansion_limit).
 *
 * Each target is delivered in its own child (spawn.c), logged with its own Postfix line
 * (to=<target>, orig_to=<recipient>), and the recipient's result is the worst of them: one
 * deferred target defers the recipient (the next try may duplicate the delivered ones, as
 * with Postfix's local), else one bounced target bounces it.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "local.h"
#include "log.h"
#include "msgheaders.h"
#include "util.h"

/* ---- results ---------------------------------------------------------------------------- */

void lresult_set(struct lresult *r, int code, const char *dsn, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	(void)str_copy(r->dsn, sizeof(r->dsn), dsn);
	va_start(ap, fmt);
	(void)vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

void lresult_errno(struct lresult *r, int err, const char *what)
{
	if (err == EDQUOT || err == EFBIG)
		lresult_set(r, 452, "4.2.2", "cannot %s: mailbox full (%s); deferred", what,
			    strerror(err));
	else if (err == ENOSPC)
		lresult_set(r, 452, "4.3.1", "cannot %s: no space left on the file system; "
			    "deferred", what);
	else
		lresult_set(r, 451, "4.3.0", "cannot %s: %s; deferred", what, strerror(err));
}

/* ---- the plan: what one recipient expands to -------------------------------------------- */

enum tkind {
	T_MAILBOX,	/* a system user's mailbox */
	T_COMMAND,	/* |command */
	T_FILE,		/* /file */
	T_FORWARD,	/* a remote address */
	T_DONE,		/* the result is known already: a failure, or a duplicate */
};

struct target {
	enum tkind kind;
	char *addr;		/* to=<> in the log */
	char *value;		/* the command, the path or the remote address */
	char *owner;		/* the alias address that named it (its Delivered-To:) */
	char *key;		/* de-duplication key, NULL for failures */
	struct user_job *user;	/* T_MAILBOX */
	bool log;		/* false for a duplicate of an earlier recipient's target */
	struct lresult res;
};

struct link {
	bool include;		/* an :include: path rather than an alias name */
	const char *name;
};

struct plan {
	struct lreq *r;
	struct deliver_rcpt *rc;
	struct target *t;
	size_t n, cap;
	struct link *chain;	/* the aliases being expanded, outermost first */
	size_t depth;
	bool over_limit;	/* alias_expansion_limit reported */
};

static struct target *new_target(struct plan *p, enum tkind kind, const char *addr)
{
	struct target *t;

	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 8;
		p->t = xreallocarray(p->t, p->cap, sizeof(*p->t));
	}
	t = &p->t[p->n++];
	*t = (struct target){ .kind = kind, .addr = xstrdup(addr), .log = true };
	return t;
}

static void fail(struct plan *p, const char *addr, int code, const char *dsn,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct plan *p, const char *addr, int code, const char *dsn,
		 const char *fmt, ...)
{
	struct target *t = new_target(p, T_DONE, addr);
	va_list ap;

	t->res.code = code;
	(void)str_copy(t->res.dsn, sizeof(t->res.dsn), dsn);
	va_start(ap, fmt);
	(void)vsnprintf(t->res.text, sizeof(t->res.text), fmt, ap);
	va_end(ap);
}

static const struct seen *seen_find(const struct lreq *r, const char *key)
{
	for (size_t i = 0; i < r->nseen; i++)
		if (strcmp(r->seen[i].key, key) == 0)
			return &r->seen[i];
	return NULL;
}

/* Room for one more target? Reports the limit once. */
static bool below_limit(struct plan *p)
{
	if (p->n < L.expansion_limit)
		return true;
	if (!p->over_limit) {
		p->over_limit = true;
		msg_warn("%s: %s expands to more than alias_expansion_limit (%zu) targets",
			 p->r->req.qid, p->rc->rcpt, L.expansion_limit);
		fail(p, p->rc->rcpt, 554, "5.3.0", "alias expansion exceeds %zu targets",
		     L.expansion_limit);
	}
	return false;
}

/* A target to deliver, unless it is one already: NULL then. key is "k:value". */
static struct target *add(struct plan *p, enum tkind kind, const char *addr, const char *value,
			  const char *owner, const char *key)
{
	const struct seen *s;
	struct target *t;

	for (size_t i = 0; i < p->n; i++)
		if (p->t[i].key && strcmp(p->t[i].key, key) == 0)
			return NULL;
	if (!below_limit(p))
		return NULL;
	s = seen_find(p->r, key);
	t = new_target(p, s ? T_DONE : kind, addr);
	t->key = xstrdup(key);
	if (s) {		/* delivered for an earlier recipient of this request */
		t->res = s->res;
		t->log = false;
		return NULL;
	}
	t->value = xstrdup(value);
	t->owner = xstrdup(owner);
	return t;
}

static void free_plan(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->t[i].addr);
		free(p->t[i].value);
		free(p->t[i].owner);
		free(p->t[i].key);
		free(p->t[i].user);
	}
	free(p->t);
	free(p->chain);
}

/* ---- expansion -------------------------------------------------------------------------- */

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static bool domain_is_local(const char *domain)
{
	for (size_t i = 0; i < L.nmydestination; i++)
		if (strcasecmp(L.mydestination[i], domain) == 0)
			return true;
	return false;
}

static bool in_chain(const struct plan *p, bool include, const char *name)
{
	for (size_t i = 0; i < p->depth; i++)
		if (p->chain[i].include == include && strcmp(p->chain[i].name, name) == 0)
			return true;
	return false;
}

/* A system user: its mailbox, or why not. full is the address (lower case) for the log and
 * Delivered-To:, loop says the name came back through the alias chain. */
static void add_user(struct plan *p, const char *name, const char *full, bool loop)
{
	struct passwd pw, *res = NULL;
	char buf[16384], key[LOCAL_NAME_MAX + 2];
	struct target *t;
	int err = getpwnam_r(name, &pw, buf, sizeof(buf), &res);

	if (err != 0 && err != ENOENT && err != ESRCH) {
		fail(p, full, 451, "4.3.0", "cannot look up user \"%s\": %s; deferred", name,
		     strerror(err));
	} else if (res == NULL) {
		if (loop)
			fail(p, full, 554, "5.4.6", "mail forwarding loop for %s", full);
		else
			fail(p, full, 550, "5.1.1", "unknown user: \"%s\"", name);
	} else if (pw.pw_uid != 0 && (long long)pw.pw_uid < L.minimum_uid) {
		msg_warn("refusing delivery to system account %s (uid %d is below minimum_uid "
			 "%lld); give it an alias", name, (int)pw.pw_uid, L.minimum_uid);
		fail(p, full, 550, "5.7.1", "delivery to system account \"%s\" refused", name);
	} else if (strlen(pw.pw_name) >= LOCAL_NAME_MAX || strlen(pw.pw_dir) >= LOCAL_PATH_MAX) {
		fail(p, full, 451, "4.3.0", "user \"%s\": name or home too long; deferred", name);
	} else if (str_fmt(key, sizeof(key), "m:%s", pw.pw_name) >= 0 &&
		   (t = add(p, T_MAILBOX, full, pw.pw_name, full, key)) != NULL) {
		t->user = xcalloc(1, sizeof(*t->user));
		(void)str_copy(t->user->name, sizeof(t->user->name), pw.pw_name);
		(void)str_copy(t->user->home, sizeof(t->user->home), pw.pw_dir);
		t->user->uid = pw.pw_uid;
		t->user->gid = pw.pw_gid;
	}
}

static void expand_target(struct plan *p, const char *target, const char *domain,
			  const char *owner, bool trusted);

static void expand_alias(struct plan *p, const struct alias *e, const char *domain,
			 const char *full)
{
	p->chain[p->depth++] = (struct link){ false, e->name };
	for (size_t i = 0; i < e->ntarget && below_limit(p); i++)
		expand_target(p, e->target[i], domain, full, L.aliases.trusted);
	p->depth--;
}

/* A local address: its alias, or the system user. noexpand: "\user", no alias lookup. */
static void expand_local(struct plan *p, const struct addr *a, bool noexpand)
{
	char lp[ADDR_MAX_LOCAL + 1], base[ADDR_MAX_LOCAL + 1], full[ADDR_MAX + 1];
	const struct alias *e = NULL;
	struct addr bare;

	(void)str_copy(lp, sizeof(lp), a->local);
	lower(lp);
	(void)str_copy(base, sizeof(base), lp);
	if (addr_strip_extension(a, L.delimiter, &bare)) {
		(void)str_copy(base, sizeof(base), bare.local);
		lower(base);
	}
	(void)str_fmt(full, sizeof(full), "%s@%s", lp, a->domain);
	if (msgheaders_delivered_to(p->r->headers, p->r->headers_len, full)) {
		fail(p, full, 554, "5.4.6", "mail forwarding loop for %s", full);
		return;
	}
	if (!noexpand) {
		e = aliases_find(&L.aliases.tab, lp);
		if (e == NULL && strcmp(base, lp) != 0)
			e = aliases_find(&L.aliases.tab, base);
	}
	if (e != NULL && !in_chain(p, false, e->name)) {
		if (p->depth >= L.recursion_limit)
			fail(p, full, 554, "5.4.6", "mail forwarding loop for %s (aliases nested "
			     "deeper than %zu)", full, L.recursion_limit);
		else
			expand_alias(p, e, a->domain, full);
		return;
	}
	add_user(p, base, full, e != NULL);
}

/* An :include: file's targets. */
static void expand_include(struct plan *p, const char *path, const char *domain,
			   const char *owner, bool trusted)
{
	struct stat st;
	char *text, **list;
	size_t len, n;

	if (path[0] != '/') {
		fail(p, owner, 550, "5.3.0", ":include: needs an absolute path: %s", path);
		return;
	}
	if (in_chain(p, true, path) || p->depth >= L.recursion_limit) {
		fail(p, owner, 554, "5.4.6", "mail forwarding loop through :include:%s", path);
		return;
	}
	if (aliases_read_file(path, ALIASES_MAX_FILE, &text, &len, &st) < 0) {
		msg_warn("cannot read :include: file %s (named for %s): %m", path, owner);
		fail(p, owner, 451, "4.3.0", "cannot read :include: file %s; deferred", path);
		return;
	}
	aliases_parse_list(text, len, &list, &n, NULL, NULL);
	free(text);
	p->chain[p->depth++] = (struct link){ true, path };
	for (size_t i = 0; i < n && below_limit(p); i++)
		expand_target(p, list[i], domain, owner, trusted && aliases_stat_trusted(&st));
	p->depth--;
	aliases_list_free(list, n);
}

static void refuse_unsafe(struct plan *p, const char *owner, const char *what, const char *v)
{
	msg_warn("%s: refusing %s \"%s\" for %s: %s is not owned by root or is writable by "
		 "group or others", p->r->req.qid, what, v, owner, L.aliases.path);
	fail(p, owner, 550, "5.7.1", "delivery to %s refused: the aliases file is not safe",
	     what);
}

/* A command or a file: only from a trusted source. */
static void add_program(struct plan *p, enum tkind kind, const char *owner, const char *v,
			bool trusted)
{
	char *key;

	if (!trusted) {
		refuse_unsafe(p, owner, kind == T_COMMAND ? "command" : "file", v);
		return;
	}
	if (*v == '\0') {
		fail(p, owner, 550, "5.3.0", "empty command in the aliases file");
		return;
	}
	key = xmalloc(strlen(v) + 3);
	(void)str_fmt(key, strlen(v) + 3, "%c:%s", kind == T_COMMAND ? 'c' : 'f', v);
	(void)add(p, kind, owner, v, owner, key);
	free(key);
}

/* One target of an alias (or :include: file) that belongs to owner in domain. */
static void expand_target(struct plan *p, const char *target, const char *domain,
			  const char *owner, bool trusted)
{
	const char *v;
	enum alias_kind kind = alias_target_kind(target, &v);
	struct addr a;
	char key[ADDR_MAX + 3];

	if (kind == ALIAS_COMMAND || kind == ALIAS_FILE) {
		add_program(p, kind == ALIAS_COMMAND ? T_COMMAND : T_FILE, owner, v, trusted);
	} else if (kind == ALIAS_INCLUDE) {
		if (trusted)
			expand_include(p, v, domain, owner, trusted);
		else
			refuse_unsafe(p, owner, ":include: file", v);
	} else if (addr_parse(v, domain, &a) < 0) {
		fail(p, owner, 550, "5.1.3", "bad address syntax in the aliases file: %.100s", v);
	} else if (domain_is_local(a.domain)) {
		expand_local(p, &a, kind == ALIAS_NOEXPAND);
	} else {
		lower(a.full);
		(void)str_fmt(key, sizeof(key), "r:%s", a.full);
		(void)add(p, T_FORWARD, a.full, a.full, owner, key);
	}
}

/* ---- delivery --------------------------------------------------------------------------- */

/* Time left for one child: at most `want`, leaving room to answer qmgr. */
static int64_t time_left(const struct plan *p, int64_t want)
{
	int64_t left = p->r->deadline - mono_ms();

	return left < want ? left : want;
}

/* The message for a child that has timeout_ms: its writing must end a little earlier, so
 * it can clean up (truncate an mbox) before its alarm. */
static struct msgsrc source(const struct plan *p, const char *delivered_to, int64_t timeout_ms)
{
	const struct deliver_request *q = &p->r->req;

	return (struct msgsrc){ .fd = q->fd, .off = q->msg_off, .len = q->msg_len,
				.sender = q->sender, .delivered_to = delivered_to,
				.deadline = mono_ms() + timeout_ms - timeout_ms / 10 };
}

/* default_privs as an identity; -1 with the result set when it is unusable. */
static int privs(struct identity *who, char *name, char *home, struct lresult *res)
{
	struct passwd pw, *found = NULL;
	char buf[16384];

	if (getpwnam_r(L.default_privs, &pw, buf, sizeof(buf), &found) != 0 || found == NULL ||
	    pw.pw_uid == 0 || str_copy(name, LOCAL_NAME_MAX, pw.pw_name) < 0 ||
	    str_copy(home, LOCAL_PATH_MAX, pw.pw_dir) < 0) {
		msg_warn("default_privs %s is not a usable user (unknown, or root)",
			 L.default_privs);
		lresult_set(res, 451, "4.3.0", "default_privs is not a usable user; deferred");
		return -1;
	}
	*who = (struct identity){ name, pw.pw_uid, pw.pw_gid, false };
	return 0;
}

static void run_program(struct plan *p, struct target *t)
{
	char name[LOCAL_NAME_MAX], home[LOCAL_PATH_MAX];
	struct identity who;
	struct command_job job = { .command = t->value, .home = home, .user = name,
				   .rcpt = t->owner, .orig = p->rc->orig[0] ? p->rc->orig :
				   p->rc->rcpt };
	int64_t grace = 10000, left;

	if (privs(&who, name, home, &t->res) < 0)
		return;
	if (t->kind == T_FILE) {
		left = time_left(p, LOCAL_WRITE_TIMEOUT_MS);
		job.src = source(p, t->owner, left);
		spawn_as(&who, left, p->r->req.fd, file_deliver, &job, &t->res);
		return;
	}
	left = time_left(p, L.command_timeout_ms + grace);
	job.src = source(p, t->owner, left);
	job.timeout_ms = left - grace;
	if (job.timeout_ms < 1000) {
		lresult_set(&t->res, 451, "4.3.0", "no time left in this delivery request; "
			    "deferred");
		return;
	}
	spawn_as(&who, left, p->r->req.fd, command_deliver, &job, &t->res);
}

static void run_mailbox(struct plan *p, struct target *t)
{
	struct identity who = { t->user->name, t->user->uid, t->user->gid, true };
	int64_t left = time_left(p, LOCAL_WRITE_TIMEOUT_MS);

	t->user->src = source(p, t->addr, left);
	spawn_as(&who, left, p->r->req.fd, user_deliver, t->user, &t->res);
}

/* Every remote target named by the same alias goes into one new queue file. */
static void run_forward(struct plan *p, size_t first, unsigned notify)
{
	struct target *t0 = &p->t[first];
	const char **addrs = xcalloc(p->n, sizeof(*addrs));
	struct identity who = { "mail_owner", L.forward_uid, L.forward_gid, false };
	int64_t left = time_left(p, LOCAL_WRITE_TIMEOUT_MS);
	struct forward_job job = { .r = p->r, .addrs = addrs, .notify = notify,
				   .src = source(p, t0->owner, left) };
	struct lresult res;

	for (size_t i = first; i < p->n; i++)
		if (p->t[i].kind == T_FORWARD && strcmp(p->t[i].owner, t0->owner) == 0)
			addrs[job.naddrs++] = p->t[i].value;
	spawn_as(&who, left, p->r->req.fd, forward_deliver, &job, &res);
	for (size_t i = first; i < p->n; i++)
		if (p->t[i].kind == T_FORWARD && strcmp(p->t[i].owner, t0->owner) == 0) {
			p->t[i].res = res;
			p->t[i].kind = T_DONE;
		}
	free(addrs);
}

static void run_targets(struct plan *p, unsigned notify)
{
	for (size_t i = 0; i < p->n; i++) {
		struct target *t = &p->t[i];

		if (t->kind != T_DONE && p->r->deadline - mono_ms() < 2000) {
			lresult_set(&t->res, 451, "4.3.0", "no time left in this delivery request; "
				    "deferred");
			t->kind = T_DONE;
		}
		if (t->kind == T_MAILBOX)
			run_mailbox(p, t);
		else if (t->kind == T_COMMAND || t->kind == T_FILE)
			run_program(p, t);
		else if (t->kind == T_FORWARD)
			run_forward(p, i, notify);
	}
}

/* ---- the outcome ------------------------------------------------------------------------ */

static void log_targets(const struct plan *p)
{
	const struct deliver_rcpt *rc = p->rc;

	for (size_t i = 0; i < p->n; i++) {
		const struct target *t = &p->t[i];
		struct deliver_rcpt line = { .code = t->res.code };
		bool direct = addr_equal(t->addr, rc->rcpt);

		if (!t->log)
			continue;
		line.rcpt = direct ? rc->rcpt : t->addr;
		line.orig = direct ? rc->orig : rc->orig[0] ? rc->orig : rc->rcpt;
		(void)str_copy(line.dsn, sizeof(line.dsn), t->res.dsn);
		(void)str_copy(line.text, sizeof(line.text), t->res.text);
		(void)str_copy(line.relay, sizeof(line.relay), "local");
		deliver_log(&p->r->req, &line);
	}
}

static int rank(int code)
{
	return code >= 400 && code < 500 ? 3 : code >= 500 ? 2 : 1;
}

static void combine(const struct plan *p, struct deliver_rcpt *rc)
{
	const struct target *worst = NULL;
	bool same_text = true;

	if (p->n == 0) {
		deliver_result(rc, 550, "5.1.1", "alias expands to no destinations");
		return;
	}
	for (size_t i = 0; i < p->n; i++) {
		if (worst == NULL || rank(p->t[i].res.code) > rank(worst->res.code))
			worst = &p->t[i];
		same_text = same_text && strcmp(p->t[i].res.text, p->t[0].res.text) == 0;
	}
	if (p->n == 1 || (rank(worst->res.code) == 1 && same_text))
		deliver_result(rc, worst->res.code, worst->res.dsn, "%s", worst->res.text);
	else if (rank(worst->res.code) == 1)
		deliver_result(rc, 250, "2.0.0", "delivered to %zu destinations", p->n);
	else
		deliver_result(rc, worst->res.code, worst->res.dsn, "%s: %s", worst->addr,
			       worst->res.text);
}

/* Remember what was delivered, for the request's later recipients. */
static void remember(struct plan *p)
{
	struct lreq *r = p->r;

	for (size_t i = 0; i < p->n; i++) {
		if (p->t[i].key == NULL || !p->t[i].log)
			continue;
		if (r->nseen == r->seencap) {
			r->seencap = r->seencap ? 2 * r->seencap : 16;
			r->seen = xreallocarray(r->seen, r->seencap, sizeof(*r->seen));
		}
		r->seen[r->nseen].key = xstrdup(p->t[i].key);
		r->seen[r->nseen++].res = p->t[i].res;
	}
}

void local_deliver_rcpt(struct lreq *r, struct deliver_rcpt *rc, unsigned notify)
{
	struct plan p = { .r = r, .rc = rc };
	struct addr a;

	p.chain = xcalloc(L.recursion_limit + 1, sizeof(*p.chain));
	if (addr_parse(rc->rcpt, NULL, &a) < 0)
		fail(&p, rc->rcpt, 550, "5.1.3", "bad address syntax");
	else
		expand_local(&p, &a, false);	/* qmgr chose local: whatever the domain */
	run_targets(&p, notify);
	log_targets(&p);
	combine(&p, rc);
	remember(&p);
	free_plan(&p);
}
