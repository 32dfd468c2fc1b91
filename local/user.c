/*
 * user.c: a system user's mailbox, written by a child that already is that user (spawn.c),
 * so the kernel's own permission checks apply to every path it touches. Where:
 *   - home_mailbox empty: the mbox mail_spool_directory/USER (created 0600 on first
 *     delivery; the child has the group "mail" for that), dotlock required;
 *   - home_mailbox "PATH/" (ending in '/'): a Maildir at ~/PATH, created on first delivery,
 *     written by lib/maildir.c (tmp/ -> fsync -> new/);
 *   - home_mailbox "PATH": an mbox at ~/PATH.
 * The home must be an absolute path without "." or ".." components. Each copy starts with
 * Return-Path: and Delivered-To:.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "maildir.h"
#include "util.h"

/* Absolute, no "." or ".." component. */
static bool path_clean(const char *path)
{
	const char *p = path;

	if (*p != '/')
		return false;
	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
	}
	return true;
}

static void deliver_maildir(const struct user_job *u, const char *path, struct lresult *res)
{
	char prepend[2 * DELIVER_TEXT_MAX];
	struct maildir_delivery out;
	int fd, len;

	len = str_fmt(prepend, sizeof(prepend), "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
		      u->src.sender, u->src.delivered_to);
	if (len < 0) {
		lresult_set(res, 451, "4.3.0", "internal error: header too long; deferred");
		return;
	}
	fd = maildir_create(path, (uid_t)-1, (gid_t)-1, 0700);
	if (fd < 0) {
		msg_warn("%s: cannot create or open the Maildir %s: %m", u->name, path);
		lresult_errno(res, errno, "create the maildir");
		return;
	}
	if (maildir_deliver(fd, u->src.fd, u->src.off, u->src.len, prepend, strlen(prepend),
			    NULL, &out) < 0) {
		msg_warn("%s: maildir delivery to %s failed: %m", u->name, path);
		lresult_errno(res, errno, "write the maildir");
	} else {
		lresult_set(res, 250, "2.0.0", "delivered to maildir");
	}
	(void)close(fd);
}

static void deliver_mbox(const struct user_job *u, const char *path, struct lresult *res)
{
	const struct mbox_opts o = { .create = true, .need_dotlock = true, .check_owner = true,
				     .owner = u->uid };

	if (mbox_append(path, &o, &u->src, res) == 0)
		lresult_set(res, 250, "2.0.0", "delivered to mailbox");
}

void user_deliver(void *arg, struct lresult *res)
{
	const struct user_job *u = arg;
	char path[LOCAL_PATH_MAX];
	size_t len;

	if (*L.home_mailbox == '\0') {
		if (str_fmt(path, sizeof(path), "%s/%s", L.spool, u->name) < 0)
			lresult_set(res, 451, "4.3.0", "mailbox path too long; deferred");
		else
			deliver_mbox(u, path, res);
		return;
	}
	if (!path_clean(u->home) ||
	    str_fmt(path, sizeof(path), "%s/%s", u->home, L.home_mailbox) < 0) {
		msg_warn("%s: home directory \"%s\" is not a clean absolute path", u->name,
			 u->home);
		lresult_set(res, 451, "4.3.0", "unusable home directory; deferred");
		return;
	}
	len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	if (L.home_maildir)
		deliver_maildir(u, path, res);
	else
		deliver_mbox(u, path, res);
}
