/*
 * admin_mailbox.c: where a virtual user's mail lives (virtual_home, virtual_mail) and the
 * creation of that Maildir at `postern admin user add` (DESIGN.md §5): cur/ new/ tmp/, the
 * Maildir++ folders Dovecot clients expect (.Drafts .Sent .Trash .Junk .Archive, each with
 * a maildirfolder file) and a Dovecot subscriptions file naming them.
 *
 * We run as root inside a tree that vmail (and so anything that compromises a delivery
 * agent) can write. So the path is walked one component at a time from
 * virtual_mailbox_base with openat(O_NOFOLLOW | O_DIRECTORY): a symbolic link anywhere
 * below the base stops us instead of leading us elsewhere, and nothing is created outside
 * the base. Whatever we create is handed to vmail_owner with mode 0700 (files 0600) through
 * its descriptor; whatever exists already is kept as it is, provided root or vmail owns it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "buf.h"
#include "privsep.h"
#include "util.h"

#define PATH_LEN 4096

static const char *const folders[] = { "Drafts", "Sent", "Trash", "Junk", "Archive" };
static const char *const maildir_subdirs[] = { "cur", "new", "tmp" };

/* ---- paths ------------------------------------------------------------------------------- */

/* Expand %d %n %u %% as authd does for virtual_home (authd/lookup.c). */
static int expand(const char *tmpl, const struct addr *a, char *out, size_t outlen)
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

int admin_user_paths(const struct admin_ctx *ctx, const struct addr *a, char *home,
		     size_t homelen, char *maildir, size_t maildirlen)
{
	const char *home_tmpl = conf_str(ctx->cfg, "virtual_home");
	const char *mail = conf_str(ctx->cfg, "virtual_mail");
	char tmp[PATH_LEN];

	if (expand(home_tmpl, a, home, homelen) < 0 || home[0] != '/')
		return admin_fail("virtual_home = %s does not give an absolute path (use %%d, %%n, "
				  "%%u, %%%%)", home_tmpl);
	if (strncmp(mail, "maildir:", 8) == 0)	/* Dovecot's mail_location style */
		mail += 8;
	if (strcmp(mail, "~") == 0)
		return str_copy(maildir, maildirlen, home) == 0 ? ADMIN_OK :
		       admin_fail("the mailbox path is too long");
	if (strncmp(mail, "~/", 2) == 0) {
		if (str_fmt(maildir, maildirlen, "%s/%s", home, mail + 2) < 0)
			return admin_fail("the mailbox path is too long");
		return ADMIN_OK;
	}
	if (mail[0] != '/' || expand(mail, a, tmp, sizeof(tmp)) < 0 ||
	    str_copy(maildir, maildirlen, tmp) < 0)
		return admin_fail("virtual_mail = %s is neither ~/PATH nor an absolute path", mail);
	return ADMIN_OK;
}

/* ---- creation ---------------------------------------------------------------------------- */

struct walk {
	uid_t uid;			/* vmail_owner */
	gid_t gid;
	char path[PATH_LEN];		/* where we are, for messages */
	char err[PATH_LEN + 200];	/* what went wrong */
};

static int walk_fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int walk_fail(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	return ADMIN_FAIL;
}

/* Hand a new file or directory to vmail with the given mode. */
static int give_to_vmail(struct walk *w, int fd, const char *name, mode_t mode)
{
	if (fchown(fd, w->uid, w->gid) < 0 || fchmod(fd, mode) < 0)
		return walk_fail(w, "cannot give %s/%s to vmail_owner: %s", w->path, name,
				 strerror(errno));
	return ADMIN_OK;
}

/* An existing directory must belong to root or vmail: anyone else could move things
 * around in it under us. */
static int check_owner(struct walk *w, int fd, const char *name)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return walk_fail(w, "cannot stat %s/%s: %s", w->path, name, strerror(errno));
	if (st.st_uid != 0 && st.st_uid != w->uid)
		return walk_fail(w, "%s/%s belongs to uid %u, not to vmail_owner or root; refusing "
				 "to create the mailbox there", w->path, name,
				 (unsigned)st.st_uid);
	return ADMIN_OK;
}

/* Create (if missing) and open directory name below dirfd, never through a symbolic link;
 * w->path is extended by name. The new descriptor, or -1 with the reason in w->err. */
static int enter_dir(struct walk *w, int dirfd, const char *name)
{
	bool created = mkdirat(dirfd, name, 0700) == 0;
	int fd, rc;

	if (!created && errno != EEXIST) {
		walk_fail(w, "cannot create %s/%s: %s", w->path, name, strerror(errno));
		return -1;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			walk_fail(w, "%s/%s is a symbolic link or not a directory; refusing to "
				  "use it", w->path, name);
		else
			walk_fail(w, "cannot open %s/%s: %s", w->path, name, strerror(errno));
		return -1;
	}
	rc = created ? give_to_vmail(w, fd, name, 0700) : check_owner(w, fd, name);
	if (rc == ADMIN_OK) {
		size_t len = strlen(w->path);

		rc = str_fmt(w->path + len, sizeof(w->path) - len, "/%s", name) >= 0 ? ADMIN_OK :
		     walk_fail(w, "path too long");
	}
	if (rc != ADMIN_OK) {
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
		return ADMIN_OK;
	if (fd < 0)
		return walk_fail(w, "cannot create %s/%s: %s", w->path, name, strerror(errno));
	rc = give_to_vmail(w, fd, name, 0600);
	if (rc == ADMIN_OK && write_all(fd, content, strlen(content)) < 0)
		rc = walk_fail(w, "cannot write %s/%s: %s", w->path, name, strerror(errno));
	if (close(fd) < 0 && rc == ADMIN_OK)
		rc = walk_fail(w, "cannot write %s/%s: %s", w->path, name, strerror(errno));
	return rc;
}

/* cur/ new/ tmp/ in the open directory dirfd. */
static int make_maildir_subdirs(struct walk *w, int dirfd)
{
	for (size_t i = 0; i < ARRAY_LEN(maildir_subdirs); i++) {
		int fd = enter_dir(w, dirfd, maildir_subdirs[i]);

		if (fd < 0)
			return ADMIN_FAIL;
		leave_dir(w, fd);
	}
	return ADMIN_OK;
}

/* The Maildir++ folders (".Sent", ...) and the subscriptions file listing them. */
static int make_folders(struct walk *w, int mfd)
{
	char name[64];
	struct buf subscriptions;
	int fd, rc = ADMIN_OK;

	buf_init(&subscriptions, 1024);

	for (size_t i = 0; i < ARRAY_LEN(folders) && rc == ADMIN_OK; i++) {
		(void)str_fmt(name, sizeof(name), ".%s", folders[i]);
		fd = enter_dir(w, mfd, name);
		if (fd < 0) {
			rc = ADMIN_FAIL;
			break;
		}
		rc = make_maildir_subdirs(w, fd);
		if (rc == ADMIN_OK)
			rc = make_file(w, fd, "maildirfolder", "");
		leave_dir(w, fd);
		(void)buf_printf(&subscriptions, "%s\n", folders[i]);	/* a few short names */
	}
	if (rc == ADMIN_OK)
		rc = make_file(w, mfd, "subscriptions", buf_cstr(&subscriptions));
	buf_free(&subscriptions);
	return rc;
}

/* Walk from the open base directory down the relative path rel, creating what is missing.
 * Returns the descriptor of the last directory, or -1 with the reason in w->err. */
static int walk_down(struct walk *w, int basefd, const char *rel)
{
	char *copy = xstrdup(rel), *save = NULL, *comp;
	int fd = basefd, next;

	for (comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
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

	if (base[0] != '/' || str_copy(w->path, sizeof(w->path), base) < 0)
		return walk_fail(w, "virtual_mailbox_base = %s is not an absolute path", base);
	len = strlen(w->path);
	while (len > 0 && w->path[len - 1] == '/')
		w->path[--len] = '\0';
	if (len == 0)
		return walk_fail(w, "virtual_mailbox_base must not be /");
	if (strncmp(maildir, w->path, len) != 0 || maildir[len] != '/' ||
	    maildir[len + strspn(maildir + len, "/")] == '\0')
		return walk_fail(w, "%s is not below virtual_mailbox_base = %s; refusing to "
				 "create it", maildir, base);
	*rel = maildir + len + 1;
	return ADMIN_OK;
}

/* Everything admin_make_mailbox does, with the reason of a failure in w->err. */
static int make_mailbox(struct walk *w, const struct admin_ctx *ctx, const char *maildir)
{
	const char *owner = conf_str(ctx->cfg, "vmail_owner"), *rel = NULL;
	int basefd, mfd, rc;

	rc = split_base(w, conf_str(ctx->cfg, "virtual_mailbox_base"), maildir, &rel);
	if (rc != ADMIN_OK)
		return rc;
	if (privsep_lookup_user(owner, &w->uid, &w->gid) < 0)
		return walk_fail(w, "vmail_owner: user '%s' does not exist", owner);
	basefd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (basefd < 0)
		return walk_fail(w, "cannot open virtual_mailbox_base %s: %s", w->path,
				 strerror(errno));
	mfd = walk_down(w, basefd, rel);
	(void)close(basefd);
	if (mfd < 0)
		return ADMIN_FAIL;
	rc = make_maildir_subdirs(w, mfd);
	if (rc == ADMIN_OK)
		rc = make_folders(w, mfd);
	(void)close(mfd);
	return rc;
}

int admin_make_mailbox(const struct admin_ctx *ctx, const char *maildir, char *err,
		       size_t errlen)
{
	struct walk *w = xcalloc(1, sizeof(*w));
	int rc = make_mailbox(w, ctx, maildir);

	if (rc != ADMIN_OK)
		str_copy(err, errlen, w->err[0] ? w->err : "unknown error");
	free(w);
	return rc;
}
