/*
 * mailstore.c: the store as a whole (see mailstore.h): opening the Maildir root, folder
 * names (validation, INBOX, their Maildir++ directories), listing, creating, deleting
 * and renaming folders, and the quota. Every path is opened relative to the root's
 * descriptor with O_NOFOLLOW, so no symbolic link planted in the Maildir leads outside it.
 * Deleting renames the folder to ".DOVECOT-TRASHED" first (Dovecot's name, so neither
 * lists a half-deleted folder); renaming INBOX moves its messages, with their UIDs, into a
 * new folder and leaves INBOX empty with its UIDVALIDITY and UIDNEXT (RFC 3501 §6.3.5).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mailstore_priv.h"
#include "maildir.h"
#include "mutf7.h"
#include "util.h"

/* A Maildir holds only cur/ new/ tmp/ and files: deeper trees are not ours to remove. */
#define RM_MAX_DEPTH 3

/* ---- helpers shared by the mailstore files ----------------------------------------- */

int ms_fail(struct mstore *s, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(s->err, sizeof(s->err), fmt, ap) < 0)
		s->err[0] = '\0';
	va_end(ap);
	errno = e;
	return -1;
}

int ms_fail_errno(struct mstore *s, const char *what, const char *name)
{
	int e = errno;

	return ms_fail(s, e, "%s %s: %s", what, name, strerror(e));
}

void ms_close(int fd)
{
	int saved = errno;

	if (fd >= 0)
		(void)close(fd);
	errno = saved;
}

bool ms_ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

int ms_read_file(int dirfd, const char *name, size_t max, struct buf *b, struct stat *st)
{
	char chunk[65536];
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY | MS_FILE_FLAGS | O_NONBLOCK);

	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0) {
		ms_close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size > max) {
		(void)close(fd);
		errno = S_ISREG(st->st_mode) ? EFBIG : EINVAL;
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(b, chunk, (size_t)n) < 0) {
			ms_close(fd);
			return -1;
		}
	}
	return close(fd);
}

int ms_write_replace(int dirfd, const char *tmpname, const char *name, const void *data,
		     size_t len)
{
	return ms_write_replace2(dirfd, tmpname, name, "", 0, data, len);
}

int ms_write_replace2(int dirfd, const char *tmpname, const char *name, const void *head,
		      size_t headlen, const void *data, size_t len)
{
	int fd, rc = -1;

	/* The caller holds the lock that makes tmpname ours: a leftover is overwritten. */
	(void)unlinkat(dirfd, tmpname, 0);
	fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | MS_FILE_FLAGS, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, head, headlen) == 0 && write_all(fd, data, len) == 0 && fsync(fd) == 0) {
		rc = close(fd);
		fd = -1;
		if (rc == 0)
			rc = renameat(dirfd, tmpname, dirfd, name);
	}
	ms_close(fd);
	if (rc < 0) {
		int saved = errno;

		(void)unlinkat(dirfd, tmpname, 0);
		errno = saved;
	}
	return rc;
}

/* ---- names ------------------------------------------------------------------------- */

bool ms_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

bool mstore_name_valid(const char *name)
{
	size_t len;

	if (name == NULL)
		return false;
	len = strnlen(name, MS_NAME_MAX + 1);
	/* The directory ".NAME" must fit where maildir_create_folder() can make it. */
	if (len == 0 || len > MS_NAME_MAX || len + 1 > MAILDIR_FOLDER_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c >= 0x7f || c == '/')
			return false;
		/* No empty component: no leading, trailing or doubled separator. */
		if (c == '.' && (i == 0 || i + 1 == len || name[i + 1] == '.'))
			return false;
	}
	if (strcmp(name, MS_TRASH_DIR + 1) == 0)
		return false;
	return mutf7_valid(name, len);
}

/* The name with a leading "inbox" component spelled "INBOX" (IMAP: case-insensitive). */
static void normalize(const char *name, char *out, size_t outlen)
{
	(void)str_copy(out, outlen, name);
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '.'))
		memcpy(out, "INBOX", 5);
}

/* ".Name" for a folder, "." for INBOX (any case). -1 EINVAL for an invalid name. */
static int folder_dir(const char *name, char *out, size_t outlen)
{
	char norm[MS_NAME_MAX + 1];

	if (!mstore_name_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	normalize(name, norm, sizeof(norm));
	if (strcmp(norm, "INBOX") == 0)
		return str_copy(out, outlen, ".");
	if (str_fmt(out, outlen, ".%s", norm) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int ms_open_folder_dir(struct mstore *s, const char *name)
{
	char dir[MAILDIR_FOLDER_MAX + 2];
	int fd;

	if (folder_dir(name, dir, sizeof(dir)) < 0)
		return ms_fail(s, EINVAL, "invalid folder name");
	fd = openat(s->root_fd, dir, MS_DIR_FLAGS);
	if (fd < 0) {
		if (errno == ENOTDIR || errno == ELOOP)
			errno = ENOENT;
		return ms_fail_errno(s, "folder", name);
	}
	return fd;
}

/* ---- the store --------------------------------------------------------------------- */

struct mstore *mstore_open(const char *root, char *err, size_t errlen)
{
	struct mstore *s;
	int fd, e;

	fd = maildir_create(root, (uid_t)-1, (gid_t)-1, 0700);
	if (fd < 0) {
		e = errno;
		if (err != NULL)
			(void)str_fmt(err, errlen, "Maildir %s: %s", root, strerror(e));
		errno = e;
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->root_fd = fd;
	s->root = xstrdup(root);
	if (gethostname(s->host, sizeof(s->host) - 1) < 0 || s->host[0] == '\0')
		(void)str_copy(s->host, sizeof(s->host), "localhost");
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	return s;
}

void mstore_close(struct mstore *s)
{
	if (s == NULL)
		return;
	ms_close(s->root_fd);
	free(s->root);
	free(s->append_folder);
	if (s->append_ul != NULL)
		ms_uidlist_free(s->append_ul);
	free(s->append_ul);
	free(s);
}

const char *mstore_error(const struct mstore *s)
{
	return s->err;
}

void mstore_set_quota(struct mstore *s, uint64_t bytes, uint64_t msgs)
{
	s->quota_bytes = bytes;
	s->quota_msgs = msgs;
}

int mstore_quota(struct mstore *s, uint64_t *bytes, uint64_t *bytes_limit, uint64_t *msgs,
		 uint64_t *msgs_limit)
{
	struct maildir_quota q;

	maildir_quota_init(&q);
	maildir_quota_set_limit(&q, s->quota_bytes, s->quota_msgs);
	if (maildir_quota_read(s->root_fd, &q) < 0)
		return ms_fail_errno(s, "quota", MAILDIR_QUOTA_FILE);
	*bytes = q.bytes_used;
	*bytes_limit = q.bytes_limit;
	*msgs = q.count_used;
	*msgs_limit = q.count_limit;
	return 0;
}

/* ---- listing ----------------------------------------------------------------------- */

static bool is_dir_entry(int dirfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type == DT_DIR)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_names(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;

	return strcmp(x, y);
}

/* Every folder directory's name (INBOX not included), unsorted. */
static int list_dirs(struct mstore *s, char ***names, size_t *n)
{
	size_t cap = 16;
	struct dirent *de;
	DIR *dir;
	int fd = openat(s->root_fd, ".", MS_DIR_FLAGS);

	*names = NULL;
	*n = 0;
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		ms_close(fd);
		return ms_fail_errno(s, "list", s->root);
	}
	*names = xreallocarray(NULL, cap, sizeof(char *));
	while ((errno = 0, de = readdir(dir)) != NULL) {
		const char *name = de->d_name + 1;

		if (de->d_name[0] != '.' || !mstore_name_valid(name) ||
		    strcasecmp(name, "INBOX") == 0 || !is_dir_entry(fd, de))
			continue;
		if (*n == cap) {
			cap *= 2;
			*names = xreallocarray(*names, cap, sizeof(char *));
		}
		(*names)[(*n)++] = xstrdup(name);
	}
	if (errno != 0) {
		int e = errno;

		(void)closedir(dir);
		mstore_names_free(*names, *n);
		*names = NULL;
		*n = 0;
		return ms_fail(s, e, "list %s: %s", s->root, strerror(e));
	}
	(void)closedir(dir);
	return 0;
}

int mstore_list(struct mstore *s, char ***names, size_t *n)
{
	char **dirs;
	size_t ndirs;

	if (list_dirs(s, &dirs, &ndirs) < 0)
		return -1;
	qsort(dirs, ndirs, sizeof(char *), cmp_names);
	*names = xreallocarray(NULL, ndirs + 1, sizeof(char *));
	(*names)[0] = xstrdup("INBOX");
	memcpy(*names + 1, dirs, ndirs * sizeof(char *));
	*n = ndirs + 1;
	free(dirs);
	return 0;
}

void mstore_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* ---- creating ---------------------------------------------------------------------- */

static bool folder_exists(struct mstore *s, const char *dir)
{
	struct stat st;

	return fstatat(s->root_fd, dir, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Give a folder its dovecot-uidlist now, so its UIDVALIDITY dates from its creation. */
static int init_uidlist(struct mstore *s, const char *dir)
{
	struct ms_uidlist ul = { 0 };
	struct ms_lock l;
	int fd, rc;

	fd = openat(s->root_fd, dir, MS_DIR_FLAGS);
	if (fd < 0)
		return -1;
	rc = ms_lock_take(&l, fd, MS_UIDLIST, s->host, MS_UIDLIST_STALE_SECS,
			  MS_UIDLIST_WAIT_SECS);
	if (rc == 0) {
		rc = ms_uidlist_read(fd, &ul);
		if (rc == 0 && !ul.exists) {
			(void)ms_uidlist_init_new(s, &ul);
			rc = ms_uidlist_write(fd, &ul);
		}
		ms_lock_release(&l);
	}
	ms_uidlist_free(&ul);
	ms_close(fd);
	return rc;
}

/* Create the folder directory dir (".Name"), its parents first when missing. */
static int create_with_parents(struct mstore *s, const char *dir)
{
	char part[MAILDIR_FOLDER_MAX + 2];
	const char *p = dir + 1;

	while ((p = strchr(p, '.')) != NULL) {
		(void)str_copy(part, sizeof(part), dir);
		part[p - dir] = '\0';
		p++;
		if (strcmp(part, ".INBOX") == 0 || folder_exists(s, part))
			continue;
		if (maildir_create_folder(s->root_fd, part) < 0 || init_uidlist(s, part) < 0)
			return ms_fail_errno(s, "create", part + 1);
	}
	if (maildir_create_folder(s->root_fd, dir) < 0 || init_uidlist(s, dir) < 0)
		return ms_fail_errno(s, "create", dir + 1);
	return 0;
}

int mstore_create(struct mstore *s, const char *name)
{
	char dir[MAILDIR_FOLDER_MAX + 2];

	if (folder_dir(name, dir, sizeof(dir)) < 0)
		return ms_fail(s, EINVAL, "invalid folder name");
	if (strcmp(dir, ".") == 0 || folder_exists(s, dir))
		return ms_fail(s, EEXIST, "folder %s exists", name);
	return create_with_parents(s, dir);
}

/* ---- deleting ---------------------------------------------------------------------- */

struct rm_count {
	uint64_t bytes, msgs;
};

/* Count a message file of cur/ or new/ for the quota (S= or its size). */
static void count_message(int dirfd, const char *name, struct rm_count *c)
{
	struct maildir_name mn;
	struct stat st;

	if (maildir_parse_name(name, &mn) < 0)
		return;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return;
	c->bytes += mn.has_size ? mn.size : (uint64_t)st.st_size;
	c->msgs++;
}

/* Remove everything below dirfd/name (never following a link), then name itself. */
static int rm_tree(int dirfd, const char *name, int depth, struct rm_count *c)
{
	bool msgdir = depth == 1 && (strcmp(name, "cur") == 0 || strcmp(name, "new") == 0);
	struct dirent *de;
	DIR *dir;
	int fd, rc = 0;

	if (depth > RM_MAX_DEPTH) {
		errno = ENOTEMPTY;
		return -1;
	}
	fd = openat(dirfd, name, MS_DIR_FLAGS);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		ms_close(fd);
		return -1;
	}
	while (rc == 0 && (errno = 0, de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (is_dir_entry(fd, de)) {
			rc = rm_tree(fd, de->d_name, depth + 1, c);
			continue;
		}
		if (msgdir)
			count_message(fd, de->d_name, c);
		if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
			rc = -1;
	}
	if (rc == 0 && errno != 0)
		rc = -1;
	(void)closedir(dir);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

int mstore_delete(struct mstore *s, const char *name)
{
	char dir[MAILDIR_FOLDER_MAX + 2];
	struct rm_count c = { 0 };
	int tries;

	if (folder_dir(name, dir, sizeof(dir)) < 0 || strcmp(dir, ".") == 0)
		return ms_fail(s, EINVAL, "cannot delete %s", name);
	if (!folder_exists(s, dir))
		return ms_fail(s, ENOENT, "no folder %s", name);
	for (tries = 0; tries < 3; tries++) {
		if (renameat(s->root_fd, dir, s->root_fd, MS_TRASH_DIR) == 0)
			break;
		if (errno == ENOENT)
			return ms_fail(s, ENOENT, "no folder %s", name);
		if (errno != EEXIST && errno != ENOTEMPTY)
			return ms_fail_errno(s, "delete", name);
		/* A deletion that did not finish: finish it first. */
		if (rm_tree(s->root_fd, MS_TRASH_DIR, 0, &c) < 0 && errno != ENOENT)
			return ms_fail_errno(s, "delete", MS_TRASH_DIR);
	}
	if (tries == 3)
		return ms_fail(s, EAGAIN, "delete %s: busy", name);
	if (rm_tree(s->root_fd, MS_TRASH_DIR, 0, &c) < 0)
		return ms_fail_errno(s, "delete", name);
	if (c.msgs > 0)
		(void)maildir_quota_add(s->root_fd, -(int64_t)c.bytes, -(int64_t)c.msgs);
	return 0;
}

/* ---- renaming ---------------------------------------------------------------------- */

/* Is name the folder prefix itself or one of its children. */
static bool in_subtree(const char *name, const char *prefix)
{
	size_t len = strlen(prefix);

	return strncmp(name, prefix, len) == 0 && (name[len] == '\0' || name[len] == '.');
}

/* The new name of a folder in from's subtree. */
static int renamed(const char *name, const char *from, const char *to, char *out, size_t outlen)
{
	if (str_fmt(out, outlen, ".%s%s", to, name + strlen(from)) < 0 ||
	    !mstore_name_valid(out + 1)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int by_length(const void *a, const void *b)
{
	size_t x = strlen(*(const char *const *)a), y = strlen(*(const char *const *)b);

	return x < y ? -1 : x > y;
}

/* Check that every folder of the subtree can move; the subtree is sorted parents first. */
static int check_moves(struct mstore *s, char **names, size_t n, const char *from,
		       const char *to)
{
	char dst[MAILDIR_FOLDER_MAX + 2];

	if (n == 0)
		return ms_fail(s, ENOENT, "no folder %s", from);
	for (size_t i = 0; i < n; i++) {
		if (renamed(names[i], from, to, dst, sizeof(dst)) < 0)
			return ms_fail(s, ENAMETOOLONG, "name too long: %s", names[i]);
		if (folder_exists(s, dst))
			return ms_fail(s, EEXIST, "folder %s exists", dst + 1);
	}
	return 0;
}

static int move_subtree(struct mstore *s, char **names, size_t n, const char *from,
			const char *to)
{
	char src[MAILDIR_FOLDER_MAX + 2], dst[MAILDIR_FOLDER_MAX + 2];
	size_t i;

	for (i = 0; i < n; i++) {
		(void)str_fmt(src, sizeof(src), ".%s", names[i]);
		(void)renamed(names[i], from, to, dst, sizeof(dst));
		if (renameat2(s->root_fd, src, s->root_fd, dst, RENAME_NOREPLACE) < 0)
			break;
	}
	if (i == n)
		return 0;
	(void)ms_fail_errno(s, "rename", names[i]);
	while (i-- > 0) {	/* put back what moved, best effort */
		(void)str_fmt(src, sizeof(src), ".%s", names[i]);
		(void)renamed(names[i], from, to, dst, sizeof(dst));
		(void)renameat2(s->root_fd, dst, s->root_fd, src, RENAME_NOREPLACE);
	}
	return -1;
}

static int rename_folder(struct mstore *s, const char *from, const char *to)
{
	char **names, **moves;
	size_t n, nmoves = 0;
	int rc;

	if (list_dirs(s, &names, &n) < 0)
		return -1;
	moves = xreallocarray(NULL, n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		if (in_subtree(names[i], from))
			moves[nmoves++] = names[i];
	qsort(moves, nmoves, sizeof(char *), by_length);
	rc = check_moves(s, moves, nmoves, from, to);
	if (rc == 0)
		rc = move_subtree(s, moves, nmoves, from, to);
	if (rc == 0 && ms_subs_rename(s, from, to) < 0)
		msg_warn("mailstore: subscriptions not renamed: %s", s->err);
	free(moves);
	mstore_names_free(names, n);
	return rc;
}

/* Move every file of from_dir/sub into to_dir/sub (same names). */
static int move_files(int from_dir, int to_dir, const char *sub, struct ms_lock *l)
{
	struct dirent *de;
	DIR *dir;
	int from = openat(from_dir, sub, MS_DIR_FLAGS), to = openat(to_dir, sub, MS_DIR_FLAGS);
	int rc = 0;
	unsigned long moved = 0;

	if (from < 0 || to < 0 || (dir = fdopendir(from)) == NULL) {
		ms_close(from);
		ms_close(to);
		return -1;
	}
	while (rc == 0 && (errno = 0, de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (renameat(from, de->d_name, to, de->d_name) < 0 && errno != ENOENT)
			rc = -1;
		if (++moved % 1000 == 0)
			ms_lock_touch(l);
	}
	if (rc == 0 && errno != 0)
		rc = -1;
	(void)closedir(dir);
	if (rc == 0)
		rc = fsync(to);
	ms_close(to);
	return rc;
}

static bool keep_none(void *ctx, const struct ms_uidrec *r)
{
	(void)ctx;
	(void)r;
	return false;
}

/* The new folder gets INBOX's messages, UIDs, UIDVALIDITY and keywords; INBOX keeps its
 * UIDVALIDITY and UIDNEXT with no messages, so no UID is ever used twice in it. */
static int move_inbox(struct mstore *s, int tfd, struct ms_lock *inbox_lock,
		      struct ms_lock *tlock)
{
	struct ms_uidlist in = { 0 }, out = { 0 };
	struct ms_keywords kw = { 0 };
	int rc;

	rc = ms_uidlist_read(s->root_fd, &in);
	if (rc == 0 && !in.exists)
		rc = ms_uidlist_init_new(s, &in);
	if (rc == 0)
		rc = move_files(s->root_fd, tfd, "new", inbox_lock);
	if (rc == 0)
		rc = move_files(s->root_fd, tfd, "cur", inbox_lock);
	if (rc == 0) {
		(void)ms_uidlist_init_new(s, &out);
		out.uidvalidity = in.uidvalidity;
		for (size_t i = 0; i < in.n; i++)
			ms_uidlist_add(&out, in.recs[i].uid, in.recs[i].base, strlen(in.recs[i].base));
		out.uidnext = in.uidnext;
		ms_lock_touch(tlock);
		rc = ms_uidlist_write(tfd, &out);
	}
	if (rc == 0 && ms_keywords_refresh(s->root_fd, &kw) >= 0 && kw.count > 0)
		rc = ms_keywords_write(tfd, &kw, s->host);
	if (rc == 0) {
		ms_uidlist_filter(&in, keep_none, NULL);
		rc = ms_uidlist_write(s->root_fd, &in);
	}
	ms_keywords_free(&kw);
	ms_uidlist_free(&in);
	ms_uidlist_free(&out);
	return rc;
}

static int rename_inbox(struct mstore *s, const char *to)
{
	char dir[MAILDIR_FOLDER_MAX + 2];
	struct ms_lock inbox_lock, tlock;
	const char *last;
	int tfd, rc;

	(void)folder_dir(to, dir, sizeof(dir));
	if (strcmp(dir, ".") == 0 || folder_exists(s, dir))
		return ms_fail(s, EEXIST, "folder %s exists", to);
	last = strrchr(dir, '.');
	if (last != dir) {	/* parents as CREATE makes them */
		char parent[MAILDIR_FOLDER_MAX + 2];

		(void)str_copy(parent, sizeof(parent), dir);
		parent[last - dir] = '\0';
		if (!folder_exists(s, parent) && strcmp(parent, ".INBOX") != 0 &&
		    create_with_parents(s, parent) < 0)
			return -1;
	}
	if (maildir_create_folder(s->root_fd, dir) < 0)
		return ms_fail_errno(s, "create", to);
	tfd = openat(s->root_fd, dir, MS_DIR_FLAGS);
	if (tfd < 0)
		return ms_fail_errno(s, "open", to);
	rc = ms_lock_take(&inbox_lock, s->root_fd, MS_UIDLIST, s->host, MS_UIDLIST_STALE_SECS,
			  MS_UIDLIST_WAIT_SECS);
	if (rc < 0) {
		ms_close(tfd);
		return ms_fail_errno(s, "lock", "INBOX");
	}
	rc = ms_lock_take(&tlock, tfd, MS_UIDLIST, s->host, MS_UIDLIST_STALE_SECS,
			  MS_UIDLIST_WAIT_SECS);
	if (rc == 0) {
		rc = move_inbox(s, tfd, &inbox_lock, &tlock);
		if (rc < 0)
			(void)ms_fail_errno(s, "rename INBOX to", to);
		ms_lock_release(&tlock);
	} else {
		(void)ms_fail_errno(s, "lock", to);
	}
	ms_lock_release(&inbox_lock);
	ms_close(tfd);
	return rc;
}

int mstore_rename(struct mstore *s, const char *from, const char *to)
{
	char f[MS_NAME_MAX + 1], t[MS_NAME_MAX + 1];

	if (!mstore_name_valid(from) || !mstore_name_valid(to))
		return ms_fail(s, EINVAL, "invalid folder name");
	normalize(from, f, sizeof(f));
	normalize(to, t, sizeof(t));
	if (strcmp(t, "INBOX") == 0 || strcmp(f, t) == 0)
		return ms_fail(s, EEXIST, "folder %s exists", to);
	if (strcmp(f, "INBOX") == 0)
		return rename_inbox(s, t);
	if (in_subtree(t, f))
		return ms_fail(s, EINVAL, "cannot rename %s into itself", from);
	return rename_folder(s, f, t);
}
