/*
 * maildir_quota.c: Maildir++ quota (Courier's README.maildirquota, as Dovecot's "maildir"
 * quota backend implements it). `maildirsize` holds a header line of limits ("<bytes>S,
 * <count>C", 0 or absent meaning none) and then "<bytes> <count>" lines whose sum is the
 * usage; deliveries and expunges append lines, and the file is rebuilt from a scan of the
 * Maildir when it cannot be trusted (missing, too long, malformed, or stale while over quota).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#define FILE_FLAGS (O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* What a scan of the Maildir found. */
struct quota_scan {
	uint64_t bytes, count;
	struct timespec newest;	/* latest mtime of a cur/ or new/ directory */
};

void maildir_quota_init(struct maildir_quota *q)
{
	memset(q, 0, sizeof(*q));
}

void maildir_quota_set_limit(struct maildir_quota *q, uint64_t bytes, uint64_t count)
{
	q->bytes_limit = bytes;
	q->count_limit = count;
	q->caller_limit = bytes != 0 || count != 0;
	q->enforced = q->caller_limit;
}

int maildir_quota_check(const struct maildir_quota *q, uint64_t add_bytes, uint64_t add_count)
{
	if (q->bytes_limit != 0 &&
	    (q->bytes_used > q->bytes_limit || add_bytes > q->bytes_limit - q->bytes_used))
		return 0;
	if (q->count_limit != 0 &&
	    (q->count_used > q->count_limit || add_count > q->count_limit - q->count_used))
		return 0;
	return 1;
}

/* ---- scanning ------------------------------------------------------------------------ */

/* Add the messages of one cur/ or new/ directory: S= from the name, else lstat. */
static int sum_dir(int dirfd, struct quota_scan *s)
{
	struct maildir_name n;
	struct dirent *de;
	struct stat st;
	int fd = dup(dirfd);
	DIR *dir;

	if (fd < 0)
		return -1;
	dir = fdopendir(fd);
	if (dir == NULL) {
		(void)close(fd);
		return -1;
	}
	while ((errno = 0, de = readdir(dir)) != NULL) {
		/* Only files count (a symlink named ",S=..." does not); DT_UNKNOWN is stat'ed. */
		if (de->d_name[0] == '.' || (de->d_type != DT_REG && de->d_type != DT_UNKNOWN) ||
		    maildir_parse_name(de->d_name, &n) < 0)
			continue;
		if (de->d_type == DT_UNKNOWN)
			n.has_size = 0;
		if (n.has_size) {
			s->bytes += n.size;
			s->count++;
		} else if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISREG(st.st_mode)) {
				s->bytes += (uint64_t)st.st_size;
				s->count++;
			}
		} else if (errno != ENOENT) {
			break;	/* errno set: reported below */
		}
	}
	fd = errno;
	(void)closedir(dir);
	errno = fd;
	return errno == 0 ? 0 : -1;
}

static int dir_missing(int err)
{
	return err == ENOENT || err == ENOTDIR || err == ELOOP;
}

/* new/ and cur/ of one Maildir or folder: note their mtimes, and sum them if `sum`. */
static int scan_msgdirs(int fd, struct quota_scan *s, int sum)
{
	static const char *const subs[] = { "new", "cur" };
	struct stat st;
	size_t i;
	int sub, rc = 0;

	for (i = 0; i < ARRAY_LEN(subs) && rc == 0; i++) {
		sub = openat(fd, subs[i], DIR_FLAGS);
		if (sub < 0) {
			if (!dir_missing(errno))
				rc = -1;
			continue;
		}
		if (fstat(sub, &st) < 0)
			rc = -1;
		else if (st.st_mtim.tv_sec > s->newest.tv_sec ||
			 (st.st_mtim.tv_sec == s->newest.tv_sec &&
			  st.st_mtim.tv_nsec > s->newest.tv_nsec))
			s->newest = st.st_mtim;
		if (rc == 0 && sum)
			rc = sum_dir(sub, s);
		(void)close(sub);
	}
	return rc;
}

/* The Maildir root and every Maildir++ folder (entries starting with '.') in it. */
static int scan_maildir(int maildir_fd, struct quota_scan *s, int sum)
{
	struct dirent *de;
	DIR *dir;
	int fd, rc;

	memset(s, 0, sizeof(*s));
	if (scan_msgdirs(maildir_fd, s, sum) < 0)
		return -1;
	fd = openat(maildir_fd, ".", DIR_FLAGS);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			(void)close(fd);
		return -1;
	}
	rc = 0;
	while (rc == 0 && (errno = 0, de = readdir(dir)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		fd = openat(maildir_fd, de->d_name, DIR_FLAGS);
		if (fd < 0) {
			rc = dir_missing(errno) ? 0 : -1;
			continue;
		}
		rc = scan_msgdirs(fd, s, sum);
		(void)close(fd);
	}
	if (rc == 0 && errno != 0)
		rc = -1;
	fd = errno;
	(void)closedir(dir);
	errno = fd;
	return rc;
}

/* ---- writing ------------------------------------------------------------------------- */

/* The file's text: limits header ("0S" when there are none, as Dovecot writes) + usage. */
static int format_quota_file(const struct maildir_quota *q, char *out, size_t outsize)
{
	char limits[64] = "";
	int n = 0;

	if (q->bytes_limit != 0 || q->count_limit == 0)
		n = str_fmt(limits, sizeof(limits), "%" PRIu64 "S", q->bytes_limit);
	if (n >= 0 && q->count_limit != 0)
		n = str_fmt(limits + n, sizeof(limits) - (size_t)n, "%s%" PRIu64 "C",
			    n > 0 ? "," : "", q->count_limit);
	if (n < 0)
		return -1;
	return str_fmt(out, outsize, "%s\n%" PRIu64 " %" PRIu64 "\n", limits, q->bytes_used,
		       q->count_used);
}

/* Replace maildirsize atomically: write tmp/maildirsize.<pid>.<time>, fsync, rename. */
static int write_quota_file(int maildir_fd, const struct maildir_quota *q)
{
	char text[192], name[96];
	struct timespec ts;
	int tmp_fd, fd = -1, len, rc = -1, saved;

	len = format_quota_file(q, text, sizeof(text));
	if (len < 0 || clock_gettime(CLOCK_REALTIME, &ts) < 0 ||
	    str_fmt(name, sizeof(name), "maildirsize.%ld.%lld.%09ld", (long)getpid(),
		    (long long)ts.tv_sec, ts.tv_nsec) < 0)
		return -1;
	tmp_fd = openat(maildir_fd, "tmp", DIR_FLAGS);
	if (tmp_fd < 0)
		return -1;
	fd = openat(tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL | FILE_FLAGS, 0600);
	if (fd >= 0) {
		if (write_all(fd, text, (size_t)len) == 0 && fsync(fd) == 0) {
			rc = close(fd);
			if (rc == 0)
				rc = renameat(tmp_fd, name, maildir_fd, MAILDIR_QUOTA_FILE);
		} else {
			saved = errno;
			(void)close(fd);
			errno = saved;
		}
		saved = errno;
		if (rc < 0)
			(void)unlinkat(tmp_fd, name, 0);
		errno = saved;
	}
	saved = errno;
	(void)close(tmp_fd);
	errno = saved;
	return rc;
}

int maildir_quota_recalc(int maildir_fd, struct maildir_quota *q)
{
	struct quota_scan scan, again;

	if (scan_maildir(maildir_fd, &scan, 1) < 0)
		return -1;
	q->bytes_used = scan.bytes;
	q->count_used = scan.count;
	q->enforced = q->bytes_limit != 0 || q->count_limit != 0;
	q->recalculated = 1;
	/* A delivery or expunge during the scan would be lost by replacing the file now. */
	if (scan_maildir(maildir_fd, &again, 0) < 0)
		return -1;
	if (again.newest.tv_sec != scan.newest.tv_sec || again.newest.tv_nsec != scan.newest.tv_nsec)
		return 0;
	return write_quota_file(maildir_fd, q);
}

/* ---- reading ------------------------------------------------------------------------- */

/* The header: comma-separated "<n>S" / "<n>C" (unknown items ignored, as Dovecot does). */
static void parse_limits(const char *line, uint64_t *bytes, uint64_t *count)
{
	const char *p = line;

	*bytes = *count = 0;
	while (*p != '\0') {
		const char *end = strchr(p, ',');
		uint64_t v = 0;
		int ok = 1;

		if (end == NULL)
			end = p + strlen(p);
		if (end - p < 2)
			ok = 0;
		for (const char *d = p; ok && d < end - 1; d++) {
			if (*d < '0' || *d > '9' || v > (UINT64_MAX - (uint64_t)(*d - '0')) / 10)
				ok = 0;
			else
				v = v * 10 + (uint64_t)(*d - '0');
		}
		if (ok && end[-1] == 'S')
			*bytes = v;
		else if (ok && end[-1] == 'C')
			*count = v;
		p = *end == ',' ? end + 1 : end;
	}
}

/* One usage line "<bytes> <count>" (signed, blank-separated); -1 if malformed. */
static int parse_usage_line(const char *line, int64_t *bytes, int64_t *count)
{
	long long v[2];
	const char *p = line;
	char *end;
	int i;

	for (i = 0; i < 2; i++) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!(*p == '-' || (*p >= '0' && *p <= '9')))
			return -1;
		errno = 0;
		v[i] = strtoll(p, &end, 10);
		if (errno != 0 || end == p)
			return -1;
		p = end;
	}
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	if (*p != '\0')
		return -1;
	*bytes = v[0];
	*count = v[1];
	return 0;
}

/* Sum the usage lines; -1 if one is malformed or a sum overflows or goes negative. */
static int sum_usage(char *lines, int64_t *bytes, int64_t *count, size_t *nlines)
{
	char *save = NULL, *line;
	int64_t b, c;

	*bytes = *count = 0;
	*nlines = 0;
	for (line = strtok_r(lines, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (parse_usage_line(line, &b, &c) < 0 ||
		    __builtin_add_overflow(*bytes, b, bytes) ||
		    __builtin_add_overflow(*count, c, count))
			return -1;
		(*nlines)++;
	}
	return *nlines > 0 && *bytes >= 0 && *count >= 0 ? 0 : -1;
}

/* Parse the file's text into q: 1 if it can be trusted, 0 if a recalculation is due. The
 * header's limits are taken even then, so a rebuild keeps them. */
static int parse_quota_text(char *text, time_t mtime, int too_long, struct maildir_quota *q)
{
	char *nl = strchr(text, '\n');
	uint64_t fbytes, fcount;
	int64_t bytes, count;
	size_t nlines;
	int over;

	if (nl == NULL)
		return 0;
	*nl = '\0';
	parse_limits(text, &fbytes, &fcount);
	if (q->caller_limit && (fbytes != q->bytes_limit || fcount != q->count_limit))
		return 0;	/* the user's quota changed: rewrite the header */
	q->bytes_limit = fbytes;
	q->count_limit = fcount;
	q->enforced = fbytes != 0 || fcount != 0;
	if (too_long || sum_usage(nl + 1, &bytes, &count, &nlines) < 0)
		return 0;
	q->bytes_used = (uint64_t)bytes;
	q->count_used = (uint64_t)count;
	over = (fbytes != 0 && q->bytes_used > fbytes) || (fcount != 0 && q->count_used > fcount);
	if (over && (nlines > 1 || mtime < time(NULL) - MAILDIR_QUOTA_STALE_SECS))
		return 0;	/* don't refuse mail on numbers that may be stale */
	return 1;
}

/* Read the open file: 1 trusted, 0 recalculate, -1 I/O error. */
static int read_quota_fd(int fd, struct maildir_quota *q)
{
	char text[MAILDIR_QUOTA_MAX_FILE + 1], *lastnl;
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode))
		return 0;
	n = read_full(fd, text, MAILDIR_QUOTA_MAX_FILE);
	if (n < 0)
		return -1;
	if (memchr(text, '\0', (size_t)n) != NULL)
		return 0;
	/* Only whole lines count: a line still being appended is ignored. */
	text[n] = '\0';
	lastnl = strrchr(text, '\n');
	if (lastnl == NULL)
		return 0;
	lastnl[1] = '\0';
	return parse_quota_text(text, st.st_mtime,
				n >= MAILDIR_QUOTA_MAX_FILE || st.st_size >= MAILDIR_QUOTA_MAX_FILE, q);
}

int maildir_quota_read(int maildir_fd, struct maildir_quota *q)
{
	int fd, rc;

	q->recalculated = 0;
	q->bytes_used = q->count_used = 0;
	if (!q->caller_limit)
		q->bytes_limit = q->count_limit = 0;
	q->enforced = q->caller_limit;
	fd = openat(maildir_fd, MAILDIR_QUOTA_FILE, O_RDONLY | FILE_FLAGS);
	if (fd < 0) {
		if (errno == ENOENT && !q->caller_limit)
			return 0;	/* no file and no limit from the user database: no quota */
		/* Missing, or a symlink (ELOOP): the rename in recalc replaces it. */
		return errno == ENOENT || errno == ELOOP ? maildir_quota_recalc(maildir_fd, q) : -1;
	}
	rc = read_quota_fd(fd, q);
	(void)close(fd);
	if (rc < 0)
		return -1;
	/* q holds the file's limits here unless the caller gave its own: the rebuild keeps them. */
	return rc == 0 ? maildir_quota_recalc(maildir_fd, q) : 0;
}

int maildir_quota_add(int maildir_fd, int64_t bytes, int64_t count)
{
	char line[64];
	struct stat st;
	ssize_t w;
	int len, fd;

	len = str_fmt(line, sizeof(line), "%" PRId64 " %" PRId64 "\n", bytes, count);
	if (len < 0)
		return -1;
	fd = openat(maildir_fd, MAILDIR_QUOTA_FILE, O_WRONLY | O_APPEND | FILE_FLAGS);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		(void)close(fd);
		errno = EINVAL;
		return -1;
	}
	/* One write, so concurrent appenders never interleave inside a line. */
	do
		w = write(fd, line, (size_t)len);
	while (w < 0 && errno == EINTR);
	if (w != len) {
		if (w >= 0)
			errno = EIO;
		len = errno;
		(void)close(fd);
		errno = len;
		return -1;
	}
	return close(fd);
}
