/*
 * mailstore_append.c: adding messages to a folder: APPEND (mstore_append) and COPY
 * (mfolder_copy). An appended message is delivered by maildir_deliver() (tmp/, CRLF stored
 * as LF, fsync, rename into new/, S= and W= in the name), then, under the target's uidlist
 * lock, given its flags and keywords and moved into cur/ with its internal date as mtime,
 * and numbered at once so UIDPLUS can answer. A copy is a hard link into the target's cur/
 * under a new name (a real copy through tmp/ when the link is refused), with the source's
 * flags and its keywords by name. Both respect the Maildir++ quota and count what they add.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maildir.h"
#include "mailstore_priv.h"
#include "util.h"

#define STORED_FLAGS (MSF_SEEN | MSF_ANSWERED | MSF_FLAGGED | MSF_DELETED | MSF_DRAFT)

/* The folder a message goes to: its directories and, under its lock, uidlist and keywords. */
struct ms_target {
	struct mstore *s;
	const char *folder;
	bool done;		/* the message was added: the uidlist may be kept for the next */
	int dir_fd, cur_fd, new_fd, tmp_fd;
	struct ms_lock lock;
	struct ms_uidlist ul;
	struct ms_keywords kw;
};

static void target_close(struct ms_target *t)
{
	ms_lock_release(&t->lock);
	if (t->done && t->ul.exists) {
		free(t->s->append_folder);
		t->s->append_folder = xstrdup(t->folder);
		if (t->s->append_ul == NULL)
			t->s->append_ul = xcalloc(1, sizeof(*t->s->append_ul));
		ms_uidlist_free(t->s->append_ul);
		*t->s->append_ul = t->ul;
		memset(&t->ul, 0, sizeof(t->ul));
	}
	ms_uidlist_free(&t->ul);
	ms_keywords_free(&t->kw);
	ms_close(t->cur_fd);
	ms_close(t->new_fd);
	ms_close(t->tmp_fd);
	ms_close(t->dir_fd);
}

static int target_subdir(struct ms_target *t, const char *sub)
{
	int fd = openat(t->dir_fd, sub, MS_DIR_FLAGS);

	if (fd < 0 && errno == ENOENT && mkdirat(t->dir_fd, sub, 0700) == 0)
		fd = openat(t->dir_fd, sub, MS_DIR_FLAGS);
	return fd;
}

static int target_open(struct mstore *s, const char *folder, struct ms_target *t)
{
	memset(t, 0, sizeof(*t));
	t->s = s;
	t->folder = folder;
	t->cur_fd = t->new_fd = t->tmp_fd = t->lock.fd = -1;
	t->dir_fd = ms_open_folder_dir(s, folder);
	if (t->dir_fd < 0)
		return -1;
	t->cur_fd = target_subdir(t, "cur");
	t->new_fd = target_subdir(t, "new");
	t->tmp_fd = target_subdir(t, "tmp");
	if (t->cur_fd < 0 || t->new_fd < 0 || t->tmp_fd < 0)
		return ms_fail_errno(s, "open", folder);
	return 0;
}

/* The target's lock, uidlist (a new one if it has none) and keywords. */
static int target_lock(struct ms_target *t)
{
	if (ms_lock_take(&t->lock, t->dir_fd, MS_UIDLIST, t->s->host, MS_UIDLIST_STALE_SECS,
			 MS_UIDLIST_WAIT_SECS) < 0)
		return ms_fail_errno(t->s, "lock", MS_UIDLIST);
	if (t->s->append_folder != NULL && strcmp(t->s->append_folder, t->folder) == 0) {
		t->ul = *t->s->append_ul;	/* (a different file is noticed by its identity) */
		memset(t->s->append_ul, 0, sizeof(*t->s->append_ul));
		free(t->s->append_folder);
		t->s->append_folder = NULL;
	}
	if (ms_uidlist_refresh(t->dir_fd, &t->ul) < 0)
		return ms_fail_errno(t->s, "read", MS_UIDLIST);
	if (!t->ul.exists)
		(void)ms_uidlist_init_new(t->s, &t->ul);
	if (ms_keywords_refresh(t->dir_fd, &t->kw) < 0)
		return ms_fail_errno(t->s, "read", MS_KEYWORDS);
	return 0;
}

/* Keyword names to the target's letters, adding the missing ones. */
static int target_keywords(struct ms_target *t, const char *const *names, size_t n,
			   uint32_t *bits)
{
	*bits = 0;
	for (size_t i = 0; i < n; i++) {
		int idx = ms_keywords_add(t->dir_fd, &t->kw, names[i], 0, t->s->host);

		if (idx < 0)
			return ms_fail(t->s, errno, "keyword %.100s: %s", names[i], strerror(errno));
		*bits |= 1u << idx;
	}
	return 0;
}

/* The UID of the file with this base name, a new one unless it has one already. */
static int target_number(struct ms_target *t, const char *name, uint32_t *uid)
{
	size_t base_len = strcspn(name, ":");

	*uid = ms_uidlist_uid(&t->ul, name, base_len);
	if (*uid != 0)
		return 0;
	*uid = t->ul.uidnext;
	ms_uidlist_add(&t->ul, *uid, name, base_len);
	if (!ms_lock_held(&t->lock))
		return ms_fail(t->s, ESTALE, "uidlist lock lost");
	if (ms_uidlist_append(t->dir_fd, &t->ul, t->ul.n - 1) < 0)
		return ms_fail_errno(t->s, "write", MS_UIDLIST);
	return 0;
}

static int quota_check(struct mstore *s, uint64_t bytes)
{
	struct maildir_quota q;

	maildir_quota_init(&q);
	maildir_quota_set_limit(&q, s->quota_bytes, s->quota_msgs);
	if (maildir_quota_read(s->root_fd, &q) < 0)
		return ms_fail_errno(s, "quota", MAILDIR_QUOTA_FILE);
	if (q.enforced && !maildir_quota_check(&q, bytes, 1))
		return ms_fail(s, EDQUOT, "over quota");
	return 0;
}

static void quota_count(struct mstore *s, uint64_t bytes)
{
	if (maildir_quota_add(s->root_fd, (int64_t)bytes, 1) < 0)
		msg_warn("mailstore: %s: %s", MAILDIR_QUOTA_FILE, strerror(errno));
}

/* Find a file of dirfd by its base name (someone moved ours); 0 and its name, or -1. */
static int find_base(int dirfd, const char *base, char *out, size_t outlen)
{
	size_t len = strlen(base);
	struct dirent *de;
	DIR *d;
	int fd = openat(dirfd, ".", MS_DIR_FLAGS), rc = -1;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		ms_close(fd);
		return -1;
	}
	while (rc < 0 && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, base, len) == 0 &&
		    (de->d_name[len] == '\0' || de->d_name[len] == ':'))
			rc = str_copy(out, outlen, de->d_name);
	(void)closedir(d);
	if (rc < 0)
		errno = ENOENT;
	return rc;
}

/* ---- APPEND ------------------------------------------------------------------------ */

/* The bytes the message takes on disk: CRLF is stored as LF. */
static uint64_t stored_size(const char *p, size_t len)
{
	uint64_t n = len;

	for (size_t i = 0; i + 1 < len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n')
			n--;
	return n;
}

/* Deliver data into new/ through a memory file (maildir_deliver reads a descriptor). */
static int deliver(struct ms_target *t, const void *data, size_t len,
		   struct maildir_delivery *d)
{
	int fd = memfd_create("mstore-append", MFD_CLOEXEC), rc;

	if (fd < 0)
		return ms_fail_errno(t->s, "append", "memfd");
	if (write_all(fd, data, len) < 0) {
		ms_close(fd);
		return ms_fail_errno(t->s, "append", "memfd");
	}
	rc = maildir_deliver_staged(t->dir_fd, fd, 0, len, t->s->host, d);
	ms_close(fd);
	if (rc < 0)
		return ms_fail(t->s, errno, "append: %s", strerror(errno));
	return 0;
}

/* new/NAME -> cur/NAME:2,<letters> with the internal date (under the lock). */
static int place_in_cur(struct ms_target *t, const char *name, const char *letters,
			time_t internal_date, char *final, size_t finallen)
{
	struct timespec times[2] = { { .tv_sec = internal_date }, { .tv_sec = internal_date } };
	char found[MAILDIR_NAME_MAX + 1];
	int from = t->new_fd;

	if (maildir_flags_set(name, letters, final, finallen) < 0)
		return ms_fail_errno(t->s, "append", name);
	if (internal_date > 0 && utimensat(t->new_fd, name, times, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno != ENOENT)
		return ms_fail_errno(t->s, "append", name);
	if (renameat2(t->new_fd, name, t->cur_fd, final, RENAME_NOREPLACE) == 0)
		return fsync(t->cur_fd) < 0 ? ms_fail_errno(t->s, "fsync", "cur") : 0;
	if (errno != ENOENT)
		return ms_fail_errno(t->s, "append", name);
	/* Another program (Dovecot) moved it to cur/ already: set our flags there. */
	if (find_base(t->cur_fd, name, found, sizeof(found)) < 0)
		return ms_fail_errno(t->s, "append", name);
	from = t->cur_fd;
	if ((internal_date > 0 && utimensat(from, found, times, AT_SYMLINK_NOFOLLOW) < 0) ||
	    renameat(from, found, t->cur_fd, final) < 0 || fsync(t->cur_fd) < 0)
		return ms_fail_errno(t->s, "append", found);
	return 0;
}

int mstore_append(struct mstore *s, const char *folder, const void *data, size_t len,
		  unsigned flags, const char *const *keywords, size_t nkeywords,
		  time_t internal_date, uint32_t *uidvalidity, uint32_t *uid)
{
	char letters[53], final[MAILDIR_NAME_MAX + 1] = "";
	struct maildir_delivery d;
	struct ms_flags fl = { .flags = flags & STORED_FLAGS };
	struct ms_target t;
	int rc = -1;

	for (size_t i = 0; i < nkeywords; i++)
		if (!ms_keyword_valid(keywords[i]))
			return ms_fail(s, EINVAL, "invalid keyword");
	if (nkeywords > MS_MAX_KEYWORDS || (data == NULL && len > 0))
		return ms_fail(s, EINVAL, "invalid append");
	if (target_open(s, folder, &t) < 0 || quota_check(s, stored_size(data, len)) < 0 ||
	    deliver(&t, data, len, &d) < 0) {
		target_close(&t);
		return -1;
	}
	if (target_lock(&t) == 0 && target_keywords(&t, keywords, nkeywords, &fl.keywords) == 0) {
		ms_flags_letters(&fl, letters);
		if (place_in_cur(&t, d.name, letters, internal_date, final, sizeof(final)) == 0)
			rc = target_number(&t, d.name, uid);
	}
	if (rc == 0) {
		*uidvalidity = t.ul.uidvalidity;
		quota_count(s, d.size);
		t.done = true;
	} else {
		/* No UID, no message: the client will try again. */
		int saved = errno;

		if (final[0] == '\0' || unlinkat(t.cur_fd, final, 0) < 0)
			(void)unlinkat(t.new_fd, d.name, 0);
		errno = saved;
	}
	target_close(&t);
	return rc;
}

/* ---- COPY -------------------------------------------------------------------------- */

/* A new unique base name, "<secs>.M<usecs>P<pid>Q<n>.<host>", as Dovecot makes them. */
static int new_base(const char *host, char *out, size_t outlen)
{
	static unsigned counter;
	char esc[200];
	size_t o = 0;
	struct timespec ts;

	for (const char *h = host; *h != '\0' && o + 5 < sizeof(esc); h++) {
		if (*h == '/' || *h == ':') {
			memcpy(esc + o, *h == '/' ? "\\057" : "\\072", 4);
			o += 4;
		} else {
			esc[o++] = *h;
		}
	}
	esc[o] = '\0';
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return -1;
	return str_fmt(out, outlen, "%lld.M%ldP%ldQ%u.%s", (long long)ts.tv_sec,
		       ts.tv_nsec / 1000, (long)getpid(), ++counter, esc);
}

/* Copy the bytes when a link is impossible: tmp/BASE, fsync, mtime, rename to cur/. */
static int copy_bytes(struct mfolder *f, uint32_t seq, struct ms_target *t, const char *base,
		      const char *final, time_t mtime)
{
	struct timespec times[2] = { { .tv_sec = mtime }, { .tv_sec = mtime } };
	char chunk[65536];
	ssize_t n;
	int in = mfolder_msg_open(f, seq), out, rc = 0;

	if (in < 0)
		return -1;
	out = openat(t->tmp_fd, base, O_WRONLY | O_CREAT | O_EXCL | MS_FILE_FLAGS, 0600);
	if (out < 0) {
		ms_close(in);
		return -1;
	}
	while (rc == 0 && (n = read(in, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		rc = n < 0 ? -1 : write_all(out, chunk, (size_t)n);
	}
	ms_close(in);
	if (rc == 0 && (fsync(out) < 0 || futimens(out, times) < 0))
		rc = -1;
	if (close(out) < 0)
		rc = -1;
	if (rc == 0)
		rc = renameat2(t->tmp_fd, base, t->cur_fd, final, RENAME_NOREPLACE);
	if (rc < 0) {
		int saved = errno;

		(void)unlinkat(t->tmp_fd, base, 0);
		errno = saved;
	}
	return rc;
}

/* Link (or copy) message seq into the target's cur/ under a fresh name with letters. */
static int link_copy(struct mfolder *f, uint32_t seq, struct ms_target *t, const char *letters,
		     char *final, size_t finallen)
{
	struct ms_msg *m = &f->msgs[seq - 1];
	char base[MAILDIR_NAME_MAX + 1], full[MAILDIR_NAME_MAX + 1];

	for (int tries = 0; tries < 10; tries++) {
		if (new_base(t->s->host, base, sizeof(base)) < 0 ||
		    str_fmt(full, sizeof(full), "%s,S=%llu,W=%llu", base,
			    (unsigned long long)m->m.file_size, (unsigned long long)m->m.size) < 0 ||
		    maildir_flags_set(full, letters, final, finallen) < 0)
			return ms_fail(t->s, ENAMETOOLONG, "copy: name too long");
		if (linkat(m->dir == 'c' ? f->cur_fd : f->new_fd, m->file, t->cur_fd, final, 0) == 0)
			return 0;
		if (errno == EEXIST)
			continue;
		if (errno == ENOENT) {
			if (ms_msg_find(f, m) <= 0)
				return ms_fail(t->s, ENOENT, "copy: message expunged");
			continue;
		}
		if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != EOPNOTSUPP)
			return ms_fail_errno(t->s, "copy", m->file);
		mfolder_load_date(f, seq);
		if (copy_bytes(f, seq, t, base, final, m->m.internal_date) == 0)
			return 0;
		if (errno != EEXIST)
			return ms_fail_errno(t->s, "copy", m->file);
	}
	return ms_fail(t->s, EEXIST, "copy: no unique name");
}

int mfolder_copy(struct mfolder *f, uint32_t seq, const char *folder, uint32_t *uidvalidity,
		 uint32_t *uid)
{
	char letters[53], final[MAILDIR_NAME_MAX + 1];
	const char *names[MS_MAX_KEYWORDS];
	struct ms_flags fl = { 0 };
	struct ms_target t;
	const struct ms_msg *m;
	size_t n = 0;
	int rc = -1;

	if (seq < 1 || seq > f->count)
		return ms_fail(f->s, EINVAL, "no message %u", seq);
	m = &f->msgs[seq - 1];
	for (size_t i = 0; i < MS_MAX_KEYWORDS; i++)
		if ((m->fl.keywords & (1u << i)) && f->kw.names[i] != NULL)
			names[n++] = f->kw.names[i];
	fl.flags = m->fl.flags;
	fl.other = m->fl.other;
	if (target_open(f->s, folder, &t) < 0 || quota_check(f->s, m->m.file_size) < 0) {
		target_close(&t);
		return -1;
	}
	if (target_lock(&t) == 0 && target_keywords(&t, names, n, &fl.keywords) == 0) {
		ms_flags_letters(&fl, letters);
		if (link_copy(f, seq, &t, letters, final, sizeof(final)) == 0) {
			rc = fsync(t.cur_fd) < 0 ? ms_fail_errno(f->s, "fsync", "cur") :
			     target_number(&t, final, uid);
			if (rc < 0)
				(void)unlinkat(t.cur_fd, final, 0);
		}
	}
	if (rc == 0) {
		*uidvalidity = t.ul.uidvalidity;
		quota_count(f->s, f->msgs[seq - 1].m.file_size);
		t.done = true;
	}
	target_close(&t);
	return rc;
}
