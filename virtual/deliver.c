/*
 * deliver.c: one recipient, from authd's answer to a file in new/. Nothing authd says is
 * trusted blindly (DESIGN.md §4): the mailbox must belong to the uid we run as (we cannot
 * switch users, and a foreign uid means a misconfigured or tampered database), and home and
 * Maildir must lie below virtual_mailbox_base with no ".." and no symbolic link on the way
 * (lib/mailbox.c walks them with O_NOFOLLOW). A doubt about the lookup or the system is a
 * 4xx (the message waits in the queue); only a definite answer bounces: unknown user
 * (5.1.1), a mail loop (5.4.6), and over quota unless virtual_overquota_temporary.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "queuefile.h"
#include "authproto.h"
#include "log.h"
#include "mailbox.h"
#include "maildir.h"
#include "util.h"
#include "virtual.h"

#define PATH_LEN 4096

/* What authd's AUTH_REQ_USER said. */
struct vuser {
	char user[ADDR_MAX + 1];	/* canonical address */
	char home[PATH_LEN];
	char mail[PATH_LEN];
	int64_t uid, gid, quota;
};

/* ---- authd ------------------------------------------------------------------------------ */

/* One call, reconnecting once on a broken connection. 0, or -1 (a temporary failure). */
static int authd_call(const struct ipc_msg *req, struct ipc_msg *rep)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (V.auth_sock < 0)
			V.auth_sock = ipc_connect(V.auth_path, AUTH_TIMEOUT_MS);
		if (V.auth_sock < 0) {
			msg_warn("connect to authd %s: %m", V.auth_path);
			return -1;
		}
		if (ipc_call(V.auth_sock, req, rep, AUTH_TIMEOUT_MS) == 0)
			return 0;
		msg_warn("authd request: %m");
		(void)close(V.auth_sock);
		V.auth_sock = -1;
		if (errno == ETIMEDOUT)
			return -1;
	}
	return -1;
}

static int copy_attr(const struct ipc_msg *m, const char *key, char *out, size_t outsize)
{
	const char *s = ipc_get_str(m, key);

	return s != NULL && str_copy(out, outsize, s) == 0 ? 0 : -1;
}

/* 0 found (u filled in), -1 with the result set. */
static int lookup_user(const char *rcpt, struct vuser *u, struct deliver_rcpt *rc)
{
	static struct ipc_msg req, rep;

	ipc_msg_init(&req, AUTH_REQ_USER, ++V.auth_id);
	if (ipc_put_str(&req, "address", rcpt) < 0 || authd_call(&req, &rep) < 0) {
		deliver_result(rc, 451, "4.3.0", "temporary failure: cannot look up the recipient");
		return -1;
	}
	if (rep.status == IPC_PERMFAIL) {
		deliver_result(rc, 550, "5.1.1", "user unknown");
		return -1;
	}
	if (rep.status != IPC_OK || copy_attr(&rep, "home", u->home, sizeof(u->home)) < 0 ||
	    copy_attr(&rep, "mail", u->mail, sizeof(u->mail)) < 0 ||
	    ipc_get_int(&rep, "uid", &u->uid) < 0 || ipc_get_int(&rep, "gid", &u->gid) < 0) {
		const char *why = ipc_get_str(&rep, "reason");

		deliver_result(rc, 451, "4.3.0", "temporary failure: user lookup: %s",
			       rep.status == IPC_OK ? "incomplete answer" :
			       why ? why : "unavailable");
		return -1;
	}
	if (ipc_get_int(&rep, "quota", &u->quota) < 0 || u->quota < 0)
		u->quota = 0;
	if (copy_attr(&rep, "user", u->user, sizeof(u->user)) < 0)
		(void)str_copy(u->user, sizeof(u->user), rcpt);
	return 0;
}

/* ---- the re-check and the Maildir ------------------------------------------------------ */

/* The Maildir's path, if authd's answer passes our own checks; -1 with the result set. */
static int checked_maildir(const char *rcpt, const struct vuser *u, char *out, size_t outsize,
			   struct deliver_rcpt *rc)
{
	struct addr a;

	if (u->uid != (int64_t)getuid() || u->gid != (int64_t)getgid()) {
		msg_warn("%s: authd gives uid %lld gid %lld, but this agent runs as uid %d gid %d "
			 "(vmail_owner) and cannot deliver as anyone else", rcpt,
			 (long long)u->uid, (long long)u->gid, (int)getuid(), (int)getgid());
		deliver_result(rc, 451, "4.3.0", "mailbox owner is not vmail_owner; deferred");
		return -1;
	}
	if (!mailbox_below_base(V.base, u->home)) {
		msg_warn("%s: home %s is not below virtual_mailbox_base %s or has a '..'; "
			 "refusing it", rcpt, u->home, V.base);
		deliver_result(rc, 451, "4.3.0", "mailbox location refused; deferred");
		return -1;
	}
	if (addr_parse(u->user, NULL, &a) < 0 ||
	    mailbox_maildir_path(u->home, u->mail, &a, out, outsize) < 0 ||
	    !mailbox_below_base(V.base, out)) {
		msg_warn("%s: mail location %s (home %s) does not give a Maildir below %s; "
			 "refusing it", rcpt, u->mail, u->home, V.base);
		deliver_result(rc, 451, "4.3.0", "mailbox location refused; deferred");
		return -1;
	}
	return 0;
}

/* The Maildir root, created with its parents and folders on first delivery. */
static int open_maildir(const char *rcpt, const char *path, struct deliver_rcpt *rc)
{
	char err[PATH_LEN + 200];
	int fd = mailbox_open(V.base, path, getuid(), getgid(), false, err, sizeof(err));

	if (fd < 0 && errno == ENOENT)
		fd = mailbox_open(V.base, path, getuid(), getgid(), true, err, sizeof(err));
	if (fd < 0) {
		msg_warn("%s: %s", rcpt, err);
		deliver_result(rc, 451, "4.3.0", "cannot open the mailbox; deferred");
	}
	return fd;
}

/* ---- plus-addressing ------------------------------------------------------------------- */

/* A directory below dirfd named name (no symlink)? */
static bool has_dir(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* The folder ".tag" for rcpt user+tag@dom when it exists and the lookup found the user
 * without the extension; else -1 (INBOX). */
static int plus_folder(int mfd, const char *rcpt, const struct vuser *u)
{
	struct addr a, bare;
	char folder[MAILDIR_FOLDER_MAX + 1];
	int fd;

	if (!V.plus_folders || addr_parse(rcpt, NULL, &a) < 0 ||
	    strcasecmp(a.full, u->user) == 0 || !addr_strip_extension(&a, V.delimiter, &bare))
		return -1;
	if (str_fmt(folder, sizeof(folder), ".%s", a.local + strlen(bare.local) + 1) < 0 ||
	    !maildir_folder_valid(folder))
		return -1;
	fd = maildir_open_folder(mfd, folder);
	if (fd >= 0 && (!has_dir(fd, "new") || !has_dir(fd, "tmp"))) {
		(void)close(fd);
		fd = -1;
	}
	return fd;
}

/* ---- delivery -------------------------------------------------------------------------- */

/* Over quota? 0 fits, -1 with the result set (over, or the quota cannot be read). */
static int check_quota(int mfd, const struct vuser *u, uint64_t size, struct maildir_quota *q,
		       struct deliver_rcpt *rc)
{
	maildir_quota_init(q);
	maildir_quota_set_limit(q, (uint64_t)u->quota, 0);
	if (maildir_quota_read(mfd, q) < 0) {
		msg_warn("%s: cannot read maildirsize: %m", u->user);
		deliver_result(rc, 451, "4.3.0", "cannot read the mailbox quota; deferred");
		return -1;
	}
	if (maildir_quota_check(q, size, 1))
		return 0;
	if (V.overquota_temporary)
		deliver_result(rc, 452, "4.2.2", "mailbox full");
	else
		deliver_result(rc, 552, "5.2.2", "mailbox full");
	return -1;
}

static void write_failed(struct deliver_rcpt *rc, const char *user, int error)
{
	if (error == EDQUOT)
		deliver_result(rc, 452, "4.2.2", "mailbox full (disk quota exceeded); deferred");
	else if (error == ENOSPC)
		deliver_result(rc, 451, "4.3.0",
			       "no space left on the mailbox file system; deferred");
	else if (error == EIO)
		deliver_result(rc, 451, "4.3.0", "cannot read the queue file or write the "
			       "mailbox (I/O error); deferred");
	else
		deliver_result(rc, 451, "4.3.0", "cannot write the mailbox: %s; deferred",
			       strerror(error));
	msg_warn("%s: maildir delivery failed: %s", user, strerror(error));
}

static void deliver_into(const struct deliver_request *r, struct deliver_rcpt *rc, int mfd,
			 const struct vuser *u)
{
	char prepend[2 * QF_MAX_ADDR + 64];
	struct maildir_quota q;
	struct maildir_delivery out;
	int len = headers_prepend(r->sender, rc->rcpt, prepend, sizeof(prepend));
	int target;

	if (len < 0) {
		deliver_result(rc, 451, "4.3.0", "internal error: header too long");
		return;
	}
	if (check_quota(mfd, u, r->msg_len + (uint64_t)len, &q, rc) < 0)
		return;
	target = plus_folder(mfd, rc->rcpt, u);
	if (maildir_deliver(target >= 0 ? target : mfd, r->fd, r->msg_off, r->msg_len, prepend,
			    (size_t)len, NULL, &out) < 0) {
		write_failed(rc, u->user, errno);
	} else {
		if (q.enforced && maildir_quota_add(mfd, (int64_t)out.size, 1) < 0)
			msg_warn("%s: cannot update maildirsize: %m", u->user);
		deliver_result(rc, 250, "2.0.0", "delivered to maildir");
	}
	if (target >= 0)
		(void)close(target);
}

void deliver_rcpt(const struct vreq *r, struct deliver_rcpt *rc)
{
	struct vuser *u = xcalloc(1, sizeof(*u));
	char maildir[PATH_LEN];
	int mfd;

	if (headers_delivered_to(r, rc->rcpt)) {
		deliver_result(rc, 554, "5.4.6", "mail forwarding loop for %s", rc->rcpt);
	} else if (lookup_user(rc->rcpt, u, rc) == 0 &&
		   checked_maildir(rc->rcpt, u, maildir, sizeof(maildir), rc) == 0 &&
		   (mfd = open_maildir(rc->rcpt, maildir, rc)) >= 0) {
		deliver_into(&r->req, rc, mfd, u);
		(void)close(mfd);
	}
	free(u);
}
