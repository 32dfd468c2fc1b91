/*
 * maildir.c: Maildir layout and delivery. Creation walks the path one component at a time
 * with O_NOFOLLOW|O_DIRECTORY so no symlink planted in a home can redirect a mailbox, and
 * Maildir++ folders are created the same way. Delivery writes Dovecot-compatible files:
 * tmp/ with O_EXCL, CRLF stored as LF (Dovecot's mail_save_crlf=no), S= the size on disk and
 * W= the size with CRLF, fsync, rename into new/, fsync of new/.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"
#include "util.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define PATH_FLAGS (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

static const char *const maildir_subdirs[] = { "cur", "new", "tmp" };

/* close() that keeps errno, for cleanup paths. */
static void close_keep_errno(int fd)
{
	int saved = errno;

	if (fd >= 0)
		(void)close(fd);
	errno = saved;
}

/* ---- layout -------------------------------------------------------------------------- */

/* Open directory `name` below dirfd (never through a symlink), creating it first if asked.
 * A directory this call creates gets exactly `mode` and, unless uid is -1, owner uid:gid. */
static int dir_open_create(int dirfd, const char *name, int create, uid_t uid, gid_t gid,
			   mode_t mode)
{
	int created = 0, fd;

	if (create) {
		if (mkdirat(dirfd, name, 0700) == 0)
			created = 1;
		else if (errno != EEXIST)
			return -1;
	}
	fd = openat(dirfd, name, DIR_FLAGS);
	if (fd < 0 || !created)
		return fd;
	if ((uid != (uid_t)-1 && fchown(fd, uid, gid) < 0) || fchmod(fd, mode) < 0) {
		close_keep_errno(fd);
		return -1;
	}
	return fd;
}

/* Create cur/ new/ tmp/ inside the Maildir (or folder) open as fd. */
static int make_subdirs(int fd, uid_t uid, gid_t gid, mode_t mode)
{
	size_t i;
	int sub;

	for (i = 0; i < ARRAY_LEN(maildir_subdirs); i++) {
		sub = dir_open_create(fd, maildir_subdirs[i], 1, uid, gid, mode);
		if (sub < 0)
			return -1;
		(void)close(sub);
	}
	return 0;
}

/* Split a path into its components, dropping empty ones and "."; ".." is refused. */
static int split_path(char *copy, char **comps, size_t max, size_t *n)
{
	char *save = NULL, *comp;

	*n = 0;
	for (comp = strtok_r(copy, "/", &save); comp != NULL; comp = strtok_r(NULL, "/", &save)) {
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0 || *n == max) {
			errno = *n == max ? ENAMETOOLONG : EINVAL;
			return -1;
		}
		comps[(*n)++] = comp;
	}
	return 0;
}

/* Walk `path` from / (or the working directory) with O_NOFOLLOW on every component and
 * return a readable descriptor of its last component, created there if `create`. */
static int walk_path(const char *path, int create, uid_t uid, gid_t gid, mode_t mode)
{
	char copy[PATH_MAX], *comps[PATH_MAX / 2];
	size_t n, i;
	int fd, nextfd;

	if (path == NULL || path[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if (str_copy(copy, sizeof(copy), path) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (split_path(copy, comps, ARRAY_LEN(comps), &n) < 0)
		return -1;
	fd = open(path[0] == '/' ? "/" : ".", n == 0 ? DIR_FLAGS : PATH_FLAGS);
	for (i = 0; i < n && fd >= 0; i++) {
		if (i + 1 == n)
			nextfd = dir_open_create(fd, comps[i], create, uid, gid, mode);
		else
			nextfd = openat(fd, comps[i], PATH_FLAGS);
		close_keep_errno(fd);
		fd = nextfd;
	}
	return fd;
}

int maildir_create(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	int fd = walk_path(path, 1, uid, gid, mode & 07777);

	if (fd < 0)
		return -1;
	if (make_subdirs(fd, uid, gid, mode & 07777) < 0) {
		close_keep_errno(fd);
		return -1;
	}
	return fd;
}

int maildir_open(const char *path)
{
	return walk_path(path, 0, (uid_t)-1, (gid_t)-1, 0);
}

int maildir_folder_valid(const char *folder)
{
	size_t len, i;

	if (folder == NULL || folder[0] != '.')
		return 0;
	len = strnlen(folder, MAILDIR_FOLDER_MAX + 1);
	if (len < 2 || len > MAILDIR_FOLDER_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)folder[i];

		if (c < 0x20 || c == 0x7f || c == '/')
			return 0;
		/* Every '.' starts a component that must be non-empty and not "." or "..". */
		if (c == '.' && (i + 1 == len || folder[i + 1] == '.'))
			return 0;
	}
	return 1;
}

int maildir_open_folder(int maildir_fd, const char *folder)
{
	if (!maildir_folder_valid(folder)) {
		errno = EINVAL;
		return -1;
	}
	return openat(maildir_fd, folder, DIR_FLAGS);
}

/* Create the empty `maildirfolder` marker Maildir++ puts in every folder. */
static int make_marker(int folder_fd, uid_t uid, gid_t gid, mode_t mode)
{
	int fd = openat(folder_fd, "maildirfolder",
			O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0)
		return -1;
	if ((uid != (uid_t)-1 && fchown(fd, uid, gid) < 0) || fchmod(fd, mode) < 0) {
		close_keep_errno(fd);
		return -1;
	}
	return close(fd);
}

int maildir_create_folder(int maildir_fd, const char *folder)
{
	struct stat st;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	mode_t mode;
	int fd, rc;

	if (!maildir_folder_valid(folder)) {
		errno = EINVAL;
		return -1;
	}
	if (fstat(maildir_fd, &st) < 0)
		return -1;
	mode = st.st_mode & 07777;
	if (geteuid() == 0) {
		uid = st.st_uid;
		gid = st.st_gid;
	}
	fd = dir_open_create(maildir_fd, folder, 1, uid, gid, mode);
	if (fd < 0)
		return -1;
	rc = make_subdirs(fd, uid, gid, mode);
	if (rc == 0)
		rc = make_marker(fd, uid, gid, mode & 0666);
	close_keep_errno(fd);
	return rc;
}

/* ---- delivery: CRLF -> LF writer ----------------------------------------------------- */

struct lf_writer {
	int fd;
	int pending_cr;		/* a CR ended the last input chunk: LF may follow */
	char last;		/* last byte written (for W=) */
	uint64_t size;		/* bytes written */
	uint64_t bare_lf;	/* LFs written without a CR before them */
	size_t outlen;
	char out[65536];
};

static int lfw_flush(struct lf_writer *w)
{
	if (w->outlen > 0 && write_all(w->fd, w->out, w->outlen) < 0)
		return -1;
	w->outlen = 0;
	return 0;
}

static int lfw_emit(struct lf_writer *w, char c)
{
	if (c == '\n' && w->last != '\r')
		w->bare_lf++;
	w->last = c;
	w->size++;
	w->out[w->outlen++] = c;
	return w->outlen == sizeof(w->out) ? lfw_flush(w) : 0;
}

/* Feed input bytes: CRLF becomes LF, every other byte (a lone CR too) passes through. */
static int lfw_feed(struct lf_writer *w, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = p[i];

		if (w->pending_cr) {
			w->pending_cr = 0;
			if (c != '\n' && lfw_emit(w, '\r') < 0)
				return -1;
		}
		if (c == '\r')
			w->pending_cr = 1;
		else if (lfw_emit(w, c) < 0)
			return -1;
	}
	return 0;
}

static int lfw_finish(struct lf_writer *w)
{
	if (w->pending_cr) {
		w->pending_cr = 0;
		if (lfw_emit(w, '\r') < 0)
			return -1;
	}
	return lfw_flush(w);
}

/* Copy len bytes of msg_fd from offset off through the writer. EIO if the file is short. */
static int copy_message(struct lf_writer *w, int msg_fd, off_t off, uint64_t len)
{
	char in[65536];
	ssize_t n;

	while (len > 0) {
		size_t want = len < sizeof(in) ? (size_t)len : sizeof(in);

		n = pread(msg_fd, in, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		if (lfw_feed(w, in, (size_t)n) < 0)
			return -1;
		off += n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* ---- delivery: names ----------------------------------------------------------------- */

/* Escape a host name as Dovecot does in Maildir names: '/' -> "\057", ':' -> "\072". */
static int escape_hostname(const char *host, char *out, size_t outsize)
{
	size_t o = 0;

	if (host == NULL || host[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	for (; *host != '\0'; host++) {
		const char *rep = *host == '/' ? "\\057" : *host == ':' ? "\\072" : NULL;
		size_t n = rep != NULL ? 4 : 1;

		if (o + n >= outsize) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (rep != NULL)
			memcpy(out + o, rep, n);
		else
			out[o] = *host;
		o += n;
	}
	out[o] = '\0';
	return 0;
}

/* The unique part of a new name: time.M<usec>P<pid>Q<n>.host. Q counts deliveries in
 * this process, so names stay unique however many land in one microsecond. */
static int make_base_name(char *out, size_t outsize, const char *host)
{
	static unsigned int deliveries;
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return -1;
	deliveries++;
	if (str_fmt(out, outsize, "%lld.M%ldP%ldQ%u.%s", (long long)ts.tv_sec,
		    ts.tv_nsec / 1000, (long)getpid(), deliveries, host) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Create tmp/NAME exclusively, retrying with a fresh name if one is somehow taken. */
static int create_tmp_file(int tmp_fd, const char *host, char *base, size_t basesize)
{
	int tries, fd;

	for (tries = 0; tries < 10; tries++) {
		if (make_base_name(base, basesize, host) < 0)
			return -1;
		fd = openat(tmp_fd, base,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

/* ---- delivery ------------------------------------------------------------------------ */

struct delivery_ctx {
	int tmp_fd, new_fd, file_fd;
	char base[MAILDIR_NAME_MAX + 1];
	char host[161];
};

/* Write the prepended lines and the message into the open tmp file, then fsync it. */
static int write_tmp_file(struct delivery_ctx *d, int msg_fd, off_t off, uint64_t len,
			  const char *prepend, size_t prepend_len, struct maildir_delivery *out)
{
	struct lf_writer *w = xcalloc(1, sizeof(*w));
	int rc = -1;

	w->fd = d->file_fd;
	if ((prepend_len == 0 || lfw_feed(w, prepend, prepend_len) == 0) &&
	    copy_message(w, msg_fd, off, len) == 0 && lfw_finish(w) == 0 &&
	    fsync(d->file_fd) == 0) {
		out->size = w->size;
		out->vsize = w->size + w->bare_lf;
		rc = 0;
	}
	free(w);
	return rc;
}

/* Rename tmp/BASE to new/BASE,S=..,W=.. and make the rename durable unless the caller
 * moves the file on and makes that durable itself. */
static int move_to_new(struct delivery_ctx *d, struct maildir_delivery *out, bool sync_new)
{
	if (str_fmt(out->name, sizeof(out->name), "%s,S=%llu,W=%llu", d->base,
		    (unsigned long long)out->size, (unsigned long long)out->vsize) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (renameat(d->tmp_fd, d->base, d->new_fd, out->name) < 0)
		return -1;
	if (sync_new && fsync(d->new_fd) < 0) {
		/* Not durable: take it back so the caller can retry without a duplicate. */
		int saved = errno;

		(void)unlinkat(d->new_fd, out->name, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

static int deliver_open_dirs(struct delivery_ctx *d, int maildir_fd, const char *hostname)
{
	char sysname[256];

	if (hostname == NULL) {
		if (gethostname(sysname, sizeof(sysname)) < 0)
			return -1;
		sysname[sizeof(sysname) - 1] = '\0';
		hostname = sysname;
	}
	if (escape_hostname(hostname, d->host, sizeof(d->host)) < 0)
		return -1;
	d->tmp_fd = openat(maildir_fd, "tmp", DIR_FLAGS);
	if (d->tmp_fd < 0)
		return -1;
	d->new_fd = openat(maildir_fd, "new", DIR_FLAGS);
	return d->new_fd < 0 ? -1 : 0;
}

static int deliver(int maildir_fd, int msg_fd, off_t off, uint64_t len, const char *prepend,
		   size_t prepend_len, const char *hostname, struct maildir_delivery *out,
		   bool sync_new)
{
	struct delivery_ctx d = { .tmp_fd = -1, .new_fd = -1, .file_fd = -1 };
	int rc = -1, written = 0;

	memset(out, 0, sizeof(*out));
	if (off < 0 || (prepend == NULL && prepend_len > 0)) {
		errno = EINVAL;
		return -1;
	}
	if (deliver_open_dirs(&d, maildir_fd, hostname) < 0)
		goto done;
	d.file_fd = create_tmp_file(d.tmp_fd, d.host, d.base, sizeof(d.base));
	if (d.file_fd < 0)
		goto done;
	written = write_tmp_file(&d, msg_fd, off, len, prepend, prepend_len, out) == 0;
	if (!written)
		close_keep_errno(d.file_fd);
	else if (close(d.file_fd) < 0)
		written = 0;
	d.file_fd = -1;
	if (written && move_to_new(&d, out, sync_new) == 0)
		rc = 0;
	else {
		int saved = errno;

		(void)unlinkat(d.tmp_fd, d.base, 0);
		errno = saved;
	}
done:
	close_keep_errno(d.file_fd);
	close_keep_errno(d.tmp_fd);
	close_keep_errno(d.new_fd);
	if (rc < 0) {
		int saved = errno;

		memset(out, 0, sizeof(*out));
		errno = saved;
	}
	return rc;
}

int maildir_deliver(int maildir_fd, int msg_fd, off_t off, uint64_t len, const char *prepend,
		    size_t prepend_len, const char *hostname, struct maildir_delivery *out)
{
	return deliver(maildir_fd, msg_fd, off, len, prepend, prepend_len, hostname, out, true);
}

int maildir_deliver_staged(int maildir_fd, int msg_fd, off_t off, uint64_t len,
			   const char *hostname, struct maildir_delivery *out)
{
	return deliver(maildir_fd, msg_fd, off, len, NULL, 0, hostname, out, false);
}
