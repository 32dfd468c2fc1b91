/*
 * mailbox.c: a virtual user's Maildir path and its creation below virtual_mailbox_base (see
 * mailbox.h), for `postern admin user add` and the virtual delivery agent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "mailbox.h"
#include "util.h"

#define PATH_LEN 4096

static const char *const folders[] = { "Drafts", "Sent", "Trash", "Junk", "Archive" };
static const char *const maildir_subdirs[] = { "cur", "new", "tmp" };

/* ---- paths ------------------------------------------------------------------------------- */

int mailbox_expand(const char *tmpl, const struct addr *a, char *out, size_t outlen)
{
	struct buf b;
	int rc = 0;

	buf_init(&b, outlen - 1);
	for (const char *p = tmpl; *p && rc == 0; p++) {
		if (*p != '%') {
			rc = buf_append_char(&b, *p);
			continue;
		}
		switch (*++p) {
		case 'd': rc = buf_append_str(&b, a->domain); break;
		case 'n': rc = buf_append_str(&b, a->local); break;
		case 'u': rc = buf_append_str(&b, a->full); break;
		case '%': rc = buf_append_char(&b, '%'); break;
		default: rc = -1; p--; break;	/* p-- keeps a trailing '%' from overrunning */
		}
	}
	if (rc == 0)
		rc = str_copy(out, outlen, buf_cstr(&b));
	buf_free(&b);
	return rc;
}

int mailbox_maildir_path(const char *home, const char *mail, const struct addr *a, char *out,
			 size_t outlen)
{
	char tmp[PATH_LEN];

	if (strncmp(mail, "maildir:", 8) == 0)	/* Dovecot's mail_location style */
		mail += 8;
	if (strcmp(mail, "~") == 0)
		return str_copy(out, outlen, home);
	if (strncmp(mail, "~/", 2) == 0)
		return str_fmt(out, outlen, "%s/%s", home, mail + 2) < 0 ? -1 : 0;
	if (mail[0] != '/' || mailbox_expand(mail, a, tmp, sizeof(tmp)) < 0)
		return -1;
	return str_copy(out, outlen, tmp);
}

bool mailbox_below_base(const char *base, const char *path)
{
	size_t len = strlen(base);
	const char *p;

	while (len > 0 && base[len - 1] == '/')
		len--;
	if (base[0] != '/' || len == 0 || strncmp(path, base, len) != 0 || path[len] != '/')
		return false;
	for (p = path + len; *p; ) {
		size_t n;

		p += strspn(p, "/");
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
	}
	return path[len + strspn(path + len, "/")] != '\0';
}

/* ---- the walk ---------------------------------------------------------------------------- */

struct walk {
	uid_t uid;			/* the mailbox owner (vmail_owner) */
	gid_t gid;
	bool create;
	char path[PATH_LEN];		/* where we are, for messages */
	char err[PATH_LEN + 200];	/* what went wrong */
	int error;			/* errno of the failure */
};

static int walk_fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int walk_fail(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* Hand a new file or directory to the owner with the given mode. */
static int give_to_owner(struct walk *w, int fd, const char *name, mode_t mode)
{
	if (fchown(fd, w->uid, w->gid) < 0 || fchmod(fd, mode) < 0) {
		w->error = errno;
		return walk_fail(w, "cannot give %s/%s to uid %u: %s", w->path, name,
				 (unsigned)w->uid, strerror(errno));
	}
	return 0;
}

/* An existing directory must belong to root or the owner: anyone else could move things
 * around in it under us. */
static int check_owner(struct walk *w, int fd, const char *name)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		w->error = errno;
		return walk_fail(w, "cannot stat %s/%s: %s", w->path, name, strerror(errno));
	}
	if (st.st_uid != 0 && st.st_uid != w->uid) {
		w->error = EPERM;
		return walk_fail(w, "%s/%s belongs to uid %u, not to vmail_owner or root; refusing "
				 "to use it", w->path, name, (unsigned)st.st_uid);
	}
	return 0;
}

/* Open (creating it first if w->create) directory name below dirfd, never through a
 * symbolic link; w->path is extended by name. The new descriptor, or -1 (w->err). */
static int enter_dir(struct walk *w, int dirfd, const char *name)
{
	bool created = w->create && mkdirat(dirfd, name, 0700) == 0;
	int fd, rc;

	if (w->create && !created && errno != EEXIST) {
		w->error = errno;
		walk_fail(w, "cannot create %s/%s: %s", w->path, name, strerror(errno));
		return -1;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		w->error = errno;
		if (errno == ELOOP || errno == ENOTDIR)
			walk_fail(w, "%s/%s is a symbolic link or not a directory; refusing to "
				  "use it", w->path, name);
		else
			walk_fail(w, "cannot open %s/%s: %s", w->path, name, strerror(errno));
		return -1;
	}
	rc = created ? give_to_owner(w, fd, name, 0700) : check_owner(w, fd, name);
	if (rc == 0) {
		size_t len = strlen(w->path);

		if (str_fmt(w->path + len, sizeof(w->path) - len, "/%s", name) < 0) {
			w->error = ENAMETOOLONG;
			rc = walk_fail(w, "path too long");
		}
	}
	if (rc != 0) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

/* Leave directory w->path (drop its last component) and close fd. */
static void leave_dir(struct walk *w, int fd)
{
	char *slash = strrchr(w->path, '/');

	if (slash)
		*slash = '\0';
	(void)close(fd);
}

/* Create file name below dirfd with content, unless it exists. */
static int make_file(struct walk *w, int dirfd, const char *name, const char *content)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc;

	if (fd < 0 && errno == EEXIST)
		return 0;
	if (fd < 0) {
		w->error = errno;
		return walk_fail(w, "cannot create %s/%s: %s", w->path, name, strerror(errno));
	}
	rc = give_to_owner(w, fd, name, 0600);
	if (rc == 0 && write_all(fd, content, strlen(content)) < 0) {
		w->error = errno;
		rc = walk_fail(w, "cannot write %s/%s: %s", w->path, name, strerror(errno));
	}
	if (close(fd) < 0 && rc == 0) {
		w->error = errno;
		rc = walk_fail(w, "cannot write %s/%s: %s", w->path, name, strerror(errno));
	}
	return rc;
}

/* cur/ new/ tmp/ in the open directory dirfd (created, or only checked). */
static int make_maildir_subdirs(struct walk *w, int dirfd)
{
	for (size_t i = 0; i < ARRAY_LEN(maildir_subdirs); i++) {
		int fd = enter_dir(w, dirfd, maildir_subdirs[i]);

		if (fd < 0)
			return -1;
		leave_dir(w, fd);
	}
	return 0;
}

/* The Maildir++ folders (".Sent", ...) and the subscriptions file listing them. */
static int make_folders(struct walk *w, int mfd)
{
	char name[64];
	struct buf subscriptions;
	int fd, rc = 0;

	buf_init(&subscriptions, 1024);
	for (size_t i = 0; i < ARRAY_LEN(folders) && rc == 0; i++) {
		(void)str_fmt(name, sizeof(name), ".%s", folders[i]);
		fd = enter_dir(w, mfd, name);
		if (fd < 0) {
			rc = -1;
			break;
		}
		rc = make_maildir_subdirs(w, fd);
		if (rc == 0)
			rc = make_file(w, fd, "maildirfolder", "");
		leave_dir(w, fd);
		(void)buf_printf(&subscriptions, "%s\n", folders[i]);	/* a few short names */
	}
	if (rc == 0)
		rc = make_file(w, mfd, "subscriptions", buf_cstr(&subscriptions));
	buf_free(&subscriptions);
	return rc;
}

/* Walk from the open base directory down the relative path rel. Returns the descriptor of
 * the last directory, or -1 with the reason in w->err. */
static int walk_down(struct walk *w, int basefd, const char *rel)
{
	char *copy = xstrdup(rel), *save = NULL, *comp;
	int fd = basefd, next;

	for (comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
			w->error = EINVAL;
			walk_fail(w, "the mailbox path %s/%s has a '.' or '..' component",
				  w->path, rel);
			next = -1;
		} else {
			next = enter_dir(w, fd, comp);
		}
		if (fd != basefd)
			(void)close(fd);
		fd = next;
		if (fd < 0)
			break;
	}
	free(copy);
	return fd;
}

/* The base without trailing slashes into w->path, and the maildir's path below it into
 * *rel. */
static int split_base(struct walk *w, const char *base, const char *maildir, const char **rel)
{
	size_t len;

	w->error = EINVAL;
	if (base[0] != '/' || str_copy(w->path, sizeof(w->path), base) < 0)
		return walk_fail(w, "virtual_mailbox_base = %s is not an absolute path", base);
	len = strlen(w->path);
	while (len > 0 && w->path[len - 1] == '/')
		w->path[--len] = '\0';
	if (len == 0)
		return walk_fail(w, "virtual_mailbox_base must not be /");
	if (!mailbox_below_base(w->path, maildir))
		return walk_fail(w, "%s is not below virtual_mailbox_base = %s (or has a '.' or "
				 "'..' component); refusing to use it", maildir, base);
	*rel = maildir + len + 1;
	w->error = 0;
	return 0;
}

static int open_mailbox(struct walk *w, const char *base, const char *maildir)
{
	const char *rel = NULL;
	int basefd, mfd;

	if (split_base(w, base, maildir, &rel) < 0)
		return -1;
	basefd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (basefd < 0) {
		w->error = errno;
		walk_fail(w, "cannot open virtual_mailbox_base %s: %s", w->path, strerror(errno));
		return -1;
	}
	mfd = walk_down(w, basefd, rel);
	(void)close(basefd);
	if (mfd >= 0 && (make_maildir_subdirs(w, mfd) < 0 ||
			 (w->create && make_folders(w, mfd) < 0))) {
		(void)close(mfd);
		return -1;
	}
	return mfd;
}

int mailbox_open(const char *base, const char *maildir, uid_t uid, gid_t gid, bool create,
		 char *err, size_t errlen)
{
	struct walk *w = xcalloc(1, sizeof(*w));
	int fd, error = 0;

	w->uid = uid;
	w->gid = gid;
	w->create = create;
	fd = open_mailbox(w, base, maildir);
	if (fd < 0) {
		(void)str_copy(err, errlen, w->err[0] ? w->err : "unknown error");
		error = w->error ? w->error : EIO;
	}
	free(w);
	if (fd < 0)
		errno = error;
	return fd;
}
