/*
 * admin_query.c: `postern admin lookup ADDRESS` and `postern admin auth test USER`: ask
 * the running authd (lib/authproto.h) exactly what smtpd, the delivery agents and the login
 * processes would ask, and print the answer, like `postmap -q` and `doveadm auth test`.
 * So they test the whole path (sql.conf's queries, the cache, the allow-lists), not a copy
 * of it. They need no database credentials, only root (on authd's allow-lists).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "authproto.h"
#include "ipc.h"
#include "util.h"

#define CONNECT_TIMEOUT_MS 5000

static int authd_unreachable(const char *what, const char *path)
{
	fprintf(stderr, "postern admin: authd unreachable: %s %s: %s\n", what, path,
		strerror(errno));
	return ADMIN_TEMPFAIL;
}

static int connect_authd(const struct admin_ctx *ctx, char *path, size_t pathlen, int *fd)
{
	if (str_fmt(path, pathlen, "%s/%s", conf_str(ctx->cfg, "spool_directory"),
		    AUTH_SOCKET) < 0)
		return admin_fail("spool_directory is too long");
	*fd = ipc_connect(path, CONNECT_TIMEOUT_MS);
	return *fd < 0 ? authd_unreachable("cannot connect to", path) : ADMIN_OK;
}

/* Send req and wait for the reply; a reply with TEMPFAIL ends the command (75). */
static int call_authd(int fd, const char *path, const struct ipc_msg *req,
		      struct ipc_msg *reply)
{
	char safe[256];
	const char *reason;

	if (ipc_call(fd, req, reply, AUTH_TIMEOUT_MS) < 0)
		return authd_unreachable("no answer from", path);
	if (reply->status == IPC_TEMPFAIL) {
		reason = ipc_get_str(reply, "reason");
		fprintf(stderr, "postern admin: temporary failure: %s\n",
			admin_printable(reason ? reason : "(no reason given)", safe, sizeof(safe)));
		return ADMIN_TEMPFAIL;
	}
	return ADMIN_OK;
}

/* A string attribute ready to print ("" if absent). */
static const char *attr(const struct ipc_msg *m, const char *key, char *out, size_t outlen)
{
	const char *v = ipc_get_str(m, key);

	return admin_printable(v ? v : "", out, outlen);
}

/* "a@x, b@y" from the NUL-separated targets of an alias answer. */
static void print_targets(const struct ipc_msg *m)
{
	const struct ipc_attr *t = ipc_get(m, "targets");
	char one[ADDR_MAX + 1];
	size_t at = 0, len;

	printf("rcpt: alias ->");
	while (t && t->kind == IPC_BYTES && at < t->len) {
		len = strnlen((const char *)t->val + at, t->len - at);
		if (len > 0 && len < sizeof(one)) {
			memcpy(one, t->val + at, len);
			one[len] = '\0';
			printf("%s %s", at ? "," : "", admin_printable(one, one, sizeof(one)));
		}
		at += len + 1;
	}
	putchar('\n');
}

/* Print the rcpt answer; ADMIN_OK if the address is known or not ours, else ADMIN_FAIL. */
static int print_rcpt(const struct ipc_msg *m)
{
	char kind[32], user[ADDR_MAX + 1];

	if (m->status != IPC_OK) {
		printf("rcpt: %s\n", attr(m, "reason", user, sizeof(user)));
		return ADMIN_FAIL;
	}
	attr(m, "kind", kind, sizeof(kind));
	attr(m, "user", user, sizeof(user));
	if (strcmp(kind, "alias") == 0)
		print_targets(m);
	else if (strcmp(kind, "remote") == 0)
		printf("rcpt: remote (not a local domain)\n");
	else
		printf("rcpt: %s user=%s\n", kind, user);
	return ADMIN_OK;
}

static void print_user(const struct ipc_msg *m)
{
	char home[1024], mail[1024];
	int64_t uid = -1, gid = -1, quota = 0;

	if (m->status != IPC_OK) {
		printf("user: %s\n", attr(m, "reason", home, sizeof(home)));
		return;
	}
	(void)ipc_get_int(m, "uid", &uid);
	(void)ipc_get_int(m, "gid", &gid);
	(void)ipc_get_int(m, "quota", &quota);
	printf("user: home=%s mail=%s uid=%lld gid=%lld quota=%lld\n",
	       attr(m, "home", home, sizeof(home)), attr(m, "mail", mail, sizeof(mail)),
	       (long long)uid, (long long)gid, (long long)quota);
}

/* One lookup of type for address; the answer printed by the caller from reply. */
static int ask(int fd, const char *path, int type, uint32_t id, const char *address,
	       struct ipc_msg *req, struct ipc_msg *reply)
{
	ipc_msg_init(req, (uint16_t)type, id);
	if (ipc_put_str(req, "address", address) < 0)
		return admin_fail("cannot build the request: %s", strerror(errno));
	return call_authd(fd, path, req, reply);
}

int admin_lookup(struct admin_ctx *ctx, const struct admin_opts *o)
{
	struct ipc_msg *req = xmalloc(sizeof(*req)), *reply = xmalloc(sizeof(*reply));
	char path[4096];
	int fd = -1, rc, found = ADMIN_OK;

	if (strlen(o->pos[0]) > AUTH_MAX_ADDRESS)
		rc = admin_fail("the address is longer than %d bytes", AUTH_MAX_ADDRESS);
	else
		rc = connect_authd(ctx, path, sizeof(path), &fd);
	if (rc == ADMIN_OK && (rc = ask(fd, path, AUTH_REQ_RCPT, 1, o->pos[0], req, reply)) ==
	    ADMIN_OK)
		found = print_rcpt(reply);
	if (rc == ADMIN_OK && (rc = ask(fd, path, AUTH_REQ_USER, 2, o->pos[0], req, reply)) ==
	    ADMIN_OK)
		print_user(reply);
	if (fd >= 0)
		(void)close(fd);
	free(req);
	free(reply);
	return rc != ADMIN_OK ? rc : found;
}

/* SASL PLAIN's response: authzid (empty) NUL authcid NUL password. */
static int put_plain(struct ipc_msg *req, const char *user, const char *pw)
{
	size_t ulen = strlen(user), plen = strlen(pw), n = 1 + ulen + 1 + plen;
	char resp[1 + ADDR_MAX + 1 + AUTH_MAX_PASSWORD];
	int r;

	if (n > sizeof(resp))
		return -1;
	resp[0] = '\0';
	memcpy(resp + 1, user, ulen);
	resp[1 + ulen] = '\0';
	memcpy(resp + 2 + ulen, pw, plen);
	r = ipc_put_bytes(req, "resp", resp, n);
	explicit_bzero(resp, sizeof(resp));
	return r;
}

static int build_auth(struct ipc_msg *req, const char *user, const char *pw)
{
	ipc_msg_init(req, AUTH_REQ_AUTH, 1);
	if (ipc_put_str(req, "service", "admin") < 0 || ipc_put_str(req, "mech", "PLAIN") < 0 ||
	    ipc_put_str(req, "rip", "127.0.0.1") < 0 || put_plain(req, user, pw) < 0)
		return admin_fail("cannot build the request");
	return ADMIN_OK;
}

static int print_auth(const char *user, const struct ipc_msg *reply)
{
	char safe[ADDR_MAX + 1], canon[ADDR_MAX + 1], reason[128];

	admin_printable(user, safe, sizeof(safe));
	if (reply->status == IPC_OK) {
		printf("passdb: %s auth succeeded\n", safe);
		printf("extra fields:\n  user=%s\n", attr(reply, "user", canon, sizeof(canon)));
		return ADMIN_OK;
	}
	attr(reply, "reason", reason, sizeof(reason));
	if (*reason && strcmp(reason, "authentication failed") != 0)
		printf("passdb: %s auth failed (%s)\n", safe, reason);
	else
		printf("passdb: %s auth failed\n", safe);
	return ADMIN_FAIL;
}

int admin_auth_test(struct admin_ctx *ctx, const struct admin_opts *o)
{
	struct ipc_msg *req = xmalloc(sizeof(*req)), *reply = xmalloc(sizeof(*reply));
	char pw[AUTH_MAX_PASSWORD + 2], path[4096];
	int fd = -1, rc;

	if (strlen(o->pos[0]) > ADDR_MAX)
		rc = admin_fail("the user name is longer than %d bytes", ADDR_MAX);
	else
		rc = admin_read_password(o->password_stdin, "Password: ", NULL, AUTH_MAX_PASSWORD,
					 pw, sizeof(pw));
	if (rc == ADMIN_OK)
		rc = build_auth(req, o->pos[0], pw);
	explicit_bzero(pw, sizeof(pw));
	if (rc == ADMIN_OK)
		rc = connect_authd(ctx, path, sizeof(path), &fd);
	if (rc == ADMIN_OK)
		rc = call_authd(fd, path, req, reply);
	if (rc == ADMIN_OK)
		rc = print_auth(o->pos[0], reply);
	if (fd >= 0)
		(void)close(fd);
	explicit_bzero(req, sizeof(*req));
	free(req);
	free(reply);
	return rc;
}
