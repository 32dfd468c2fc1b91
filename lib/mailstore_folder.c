/*
 * mailstore_folder.c: a folder view (mailstore.h): opening it (straight from postern-index
 * when the index vouches for cur/ new/ and the uidlist as they are, else by a full sync),
 * the accessors, flag changes (a rename of the message file and a new mod-sequence),
 * expunges, opening a message file, keywords and STATUS. Changes to the disk that other
 * sessions must agree on (flags, mod-sequences, keywords) are made holding the folder's
 * uidlist lock, so the index records one mod-sequence per change.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "maildir.h"
#include "mailstore_priv.h"
#include "util.h"

#define STORED_FLAGS (MSF_SEEN | MSF_ANSWERED | MSF_FLAGGED | MSF_DELETED | MSF_DRAFT)

/* ---- helpers shared with mailstore_sync.c ------------------------------------------- */

void ms_msg_parse_flags(struct mfolder *f, struct ms_msg *m)
{
	struct maildir_name mn;

	if (maildir_parse_name(m->file, &mn) < 0) {
		memset(&m->fl, 0, sizeof(m->fl));
		m->base_len = (uint32_t)strlen(m->file);
		return;
	}
	m->base_len = (uint32_t)mn.base_len;
	ms_flags_parse(mn.flags, &f->kw, &m->fl);
}

int ms_folder_lock(struct mfolder *f, struct ms_lock *l)
{
	if (ms_lock_take(l, f->dir_fd, MS_UIDLIST, f->s->host, MS_UIDLIST_STALE_SECS,
			 MS_UIDLIST_WAIT_SECS) < 0)
		return ms_fail_errno(f->s, "lock uidlist of", f->name);
	return 0;
}

static bool same_letters(const char *a, const char *b)
{
	struct maildir_name x, y;

	return maildir_parse_name(a, &x) == 0 && maildir_parse_name(b, &y) == 0 &&
	       x.base_len == y.base_len && memcmp(a, b, x.base_len) == 0 &&
	       strcmp(x.flags, y.flags) == 0;
}

uint64_t ms_index_modseq(const struct mfolder *f, const struct ms_msg *m)
{
	const struct ms_idxrec *r = ms_index_get(&f->ix, m->m.uid);

	return r != NULL && same_letters(r->file, m->file) ? r->modseq : 0;
}

uint64_t ms_pick_modseq(struct mfolder *f, const struct ms_msg *m, bool *fresh)
{
	uint64_t known = ms_index_modseq(f, m);

	if (f->ix.highestmodseq > f->highestmodseq)
		f->highestmodseq = f->ix.highestmodseq;
	*fresh = known == 0;
	return known != 0 ? known : ++f->highestmodseq;
}

int ms_msg_index_line(struct buf *b, const struct ms_msg *m)
{
	struct ms_idxrec r = {
		.uid = m->m.uid, .dir = m->dir, .modseq = m->m.modseq, .size = m->m.size,
		.file_size = m->m.file_size, .mtime = (int64_t)m->m.internal_date, .file = m->file,
	};

	return ms_index_fmt_rec(b, &r);
}

/* Is name m's file (same base name) with whatever flags. */
static bool same_base(const struct ms_msg *m, const char *name)
{
	return strncmp(name, m->file, m->base_len) == 0 &&
	       (name[m->base_len] == ':' || name[m->base_len] == '\0');
}

static int find_in(struct mfolder *f, struct ms_msg *m, int dirfd, char dir)
{
	struct dirent *de;
	struct ms_flags old = m->fl;
	DIR *d;
	int fd = openat(dirfd, ".", MS_DIR_FLAGS), found = 0;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		ms_close(fd);
		return -1;
	}
	while (!found && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !same_base(m, de->d_name))
			continue;
		free(m->file);
		m->file = xstrdup(de->d_name);
		m->m.file = m->file;
		m->dir = dir;
		ms_msg_parse_flags(f, m);
		if (!ms_flags_eq(&old, &m->fl))
			m->dirty = true;	/* reported by the next sync */
		f->bases_dirty = true;
		found = 1;
	}
	(void)closedir(d);
	return found;
}

int ms_msg_find(struct mfolder *f, struct ms_msg *m)
{
	int rc = find_in(f, m, f->cur_fd, 'c');

	if (rc == 0)
		rc = find_in(f, m, f->new_fd, 'n');
	return rc;
}

int ms_msg_rename(struct mfolder *f, struct ms_msg *m, const struct ms_flags *fl, bool to_cur)
{
	char letters[53], name[MAILDIR_NAME_MAX + 1];

	ms_flags_letters(fl, letters);
	for (int tries = 0; tries < 2; tries++) {
		int from = m->dir == 'c' ? f->cur_fd : f->new_fd;
		char dir = to_cur ? 'c' : m->dir;

		if (maildir_flags_set(m->file, letters, name, sizeof(name)) < 0)
			return -1;
		if (dir == m->dir && strcmp(name, m->file) == 0)
			return 0;
		if (renameat(from, m->file, dir == 'c' ? f->cur_fd : f->new_fd, name) == 0) {
			free(m->file);
			m->file = xstrdup(name);
			m->m.file = m->file;
			m->dir = dir;
			m->fl = *fl;
			f->bases_dirty = true;
			return 0;
		}
		if (errno != ENOENT || ms_msg_find(f, m) <= 0)
			break;
	}
	if (errno == 0)
		errno = ENOENT;
	return -1;
}

/* What an index nobody has named is called in the list callers get (never NULL there;
 * the name Dovecot gives a letter it finds without one). No message has such a keyword:
 * an unnamed letter on a file is kept but not reported. */
static const char *const unnamed[MS_MAX_KEYWORDS] = {
	"unknown-0", "unknown-1", "unknown-2", "unknown-3", "unknown-4", "unknown-5",
	"unknown-6", "unknown-7", "unknown-8", "unknown-9", "unknown-10", "unknown-11",
	"unknown-12", "unknown-13", "unknown-14", "unknown-15", "unknown-16", "unknown-17",
	"unknown-18", "unknown-19", "unknown-20", "unknown-21", "unknown-22", "unknown-23",
	"unknown-24", "unknown-25",
};

void ms_folder_keywords_changed(struct mfolder *f)
{
	for (size_t i = 0; i < MS_MAX_KEYWORDS; i++)
		f->kw_list[i] = f->kw.names[i] != NULL ? f->kw.names[i] : unnamed[i];
}

/* ---- opening ----------------------------------------------------------------------- */

static int open_subdir(struct mfolder *f, const char *sub)
{
	int fd = openat(f->dir_fd, sub, MS_DIR_FLAGS);

	if (fd < 0 && errno == ENOENT && !f->readonly) {
		if (mkdirat(f->dir_fd, sub, 0700) < 0 && errno != EEXIST)
			return -1;
		fd = openat(f->dir_fd, sub, MS_DIR_FLAGS);
	}
	return fd;
}

static void add_trusted(struct mfolder *f, const struct ms_idxrec *r)
{
	struct ms_msg *m;

	if (f->count == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		f->msgs = xreallocarray(f->msgs, f->cap, sizeof(*f->msgs));
	}
	m = &f->msgs[f->count++];
	memset(m, 0, sizeof(*m));
	m->file = xstrdup(r->file);
	m->m.file = m->file;
	m->dir = r->dir;
	m->m.uid = r->uid;
	m->m.modseq = r->modseq;
	m->m.size = r->size;
	m->m.file_size = r->file_size;
	m->m.internal_date = (time_t)r->mtime;
	ms_msg_parse_flags(f, m);
	m->m.flags = m->fl.flags | (f->readonly && m->dir == 'n' ? MSF_RECENT : 0);
	m->m.keywords = m->fl.keywords;
	f->last_uid = r->uid;
}

/* When postern-index vouches for the uidlist, cur/ and new/ as they are now, it is the
 * view: no directory is read and no message file touched. */
static void open_from_index(struct mfolder *f)
{
	const struct ms_idxstate *st = &f->ix.state;
	struct stat u, c, n;

	if (ms_index_refresh(f->dir_fd, &f->ix, 0) < 0 || !f->ix.exists || !st->valid ||
	    fstatat(f->dir_fd, MS_UIDLIST, &u, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fstat(f->cur_fd, &c) < 0 || fstat(f->new_fd, &n) < 0 || u.st_ino != st->ul_ino ||
	    u.st_size != st->ul_size || !ms_ts_eq(u.st_mtim, st->ul_mtime) ||
	    !ms_ts_eq(c.st_mtim, st->cur_mtime) || !ms_ts_eq(n.st_mtim, st->new_mtime))
		return;
	for (size_t i = 0; i < f->ix.n; i++)
		if (f->ix.recs[i].file != NULL)
			add_trusted(f, &f->ix.recs[i]);
	f->uidvalidity = f->ix.uidvalidity;
	f->uidnext = st->uidnext;
	f->highestmodseq = f->ix.highestmodseq;
	/* The uidlist is known by identity only; its lines are read when needed. */
	f->ul.exists = true;
	f->ul.uidvalidity = f->ix.uidvalidity;
	f->ul.uidnext = st->uidnext;
	f->ul.dev = u.st_dev;
	f->ul.ino = u.st_ino;
	f->ul.size = u.st_size;
	f->ul.mtime = u.st_mtim;
	f->dirs_known = true;
	f->cur_mtime = st->cur_mtime;
	f->new_mtime = st->new_mtime;
	f->bases_dirty = true;
}

struct mfolder *mfolder_open(struct mstore *s, const char *name, bool readonly)
{
	struct mfolder *f;

	if (!mstore_name_valid(name)) {
		(void)ms_fail(s, EINVAL, "invalid folder name");
		return NULL;
	}
	f = xcalloc(1, sizeof(*f));
	f->s = s;
	f->name = xstrdup(ms_is_inbox(name) ? "INBOX" : name);
	f->readonly = readonly;
	f->cur_fd = f->new_fd = -1;
	f->dir_fd = ms_open_folder_dir(s, name);
	if (f->dir_fd < 0)
		goto fail;
	f->cur_fd = open_subdir(f, "cur");
	f->new_fd = f->cur_fd >= 0 ? open_subdir(f, "new") : -1;
	if (f->new_fd < 0) {
		(void)ms_fail_errno(s, "open", name);
		goto fail;
	}
	if (!readonly)
		ms_close(open_subdir(f, "tmp"));	/* for Dovecot and our appends */
	if (ms_keywords_refresh(f->dir_fd, &f->kw) < 0) {
		(void)ms_fail_errno(s, "read keywords of", name);
		goto fail;
	}
	ms_folder_keywords_changed(f);
	open_from_index(f);
	if (ms_sync(f, NULL, NULL, 0) < 0)
		goto fail;
	return f;
fail:
	mfolder_close(f);
	return NULL;
}

void mfolder_close(struct mfolder *f)
{
	if (f == NULL)
		return;
	for (uint32_t i = 0; i < f->count; i++)
		free(f->msgs[i].file);
	free(f->msgs);
	ms_uidlist_free(&f->ul);
	ms_index_free(&f->ix);
	ms_keywords_free(&f->kw);
	ms_strmap_free(&f->bases);
	ms_close(f->cur_fd);
	ms_close(f->new_fd);
	ms_close(f->dir_fd);
	free(f->name);
	free(f);
}

/* ---- accessors --------------------------------------------------------------------- */

uint32_t mfolder_uidvalidity(const struct mfolder *f)
{
	return f->uidvalidity;
}

uint32_t mfolder_uidnext(const struct mfolder *f)
{
	return f->uidnext;
}

uint64_t mfolder_highestmodseq(const struct mfolder *f)
{
	return f->highestmodseq;
}

uint32_t mfolder_count(const struct mfolder *f)
{
	return f->count;
}

const struct mmsg *mfolder_msg(const struct mfolder *f, uint32_t seq)
{
	return seq >= 1 && seq <= f->count ? &f->msgs[seq - 1].m : NULL;
}

void mfolder_load_date(struct mfolder *f, uint32_t seq)
{
	struct ms_msg *m;
	struct stat st;

	if (seq < 1 || seq > f->count || f->msgs[seq - 1].m.internal_date != 0)
		return;
	m = &f->msgs[seq - 1];
	mstore_msg_file_ops++;
	if (fstatat(m->dir == 'c' ? f->cur_fd : f->new_fd, m->file, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	    (errno != ENOENT || ms_msg_find(f, m) <= 0 ||
	     fstatat(m->dir == 'c' ? f->cur_fd : f->new_fd, m->file, &st, AT_SYMLINK_NOFOLLOW) < 0)) {
		uint64_t secs, usecs;

		ms_name_time(m->file, &secs, &usecs);
		m->m.internal_date = secs < ((uint64_t)1 << 40) ? (time_t)secs : 0;
		return;
	}
	m->m.internal_date = st.st_mtime;
	if (m->m.internal_date != 0 && !m->date_learnt) {
		m->date_learnt = true;
		f->dates_learnt++;
	}
}

uint32_t mfolder_seq_of_uid(const struct mfolder *f, uint32_t uid)
{
	return ms_seq_of_uid(f, uid);
}

size_t mfolder_keywords(const struct mfolder *f, const char *const **names)
{
	*names = f->kw_list;
	return f->kw.count;
}

int mfolder_sync(struct mfolder *f, struct mfolder_changes *ch)
{
	return ms_sync(f, ch, NULL, 0);
}

void mfolder_changes_free(struct mfolder_changes *ch)
{
	if (ch == NULL)
		return;
	free(ch->expunged_seqs);
	free(ch->flag_changed_seqs);
	memset(ch, 0, sizeof(*ch));
}

/* ---- keywords ---------------------------------------------------------------------- */

/* After the table changed: letters may have gained names (reported by the next sync). */
static void reparse_all(struct mfolder *f)
{
	ms_folder_keywords_changed(f);
	for (uint32_t i = 0; i < f->count; i++) {
		struct ms_msg *m = &f->msgs[i];
		struct ms_flags old = m->fl;

		ms_msg_parse_flags(f, m);
		if (!ms_flags_eq(&old, &m->fl))
			m->dirty = true;
	}
}

int mfolder_keyword_index(struct mfolder *f, const char *name, bool create)
{
	struct ms_lock l;
	uint32_t avoid = 0;
	int idx, rc;

	if (name == NULL || !ms_keyword_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	rc = ms_keywords_refresh(f->dir_fd, &f->kw);
	if (rc > 0)
		reparse_all(f);
	idx = ms_keywords_find(&f->kw, name);
	if (idx >= 0 || !create || rc < 0) {
		if (idx < 0 && rc == 0)
			errno = ENOENT;
		return idx;
	}
	if (f->readonly) {
		errno = EROFS;
		return -1;
	}
	if (ms_folder_lock(f, &l) < 0)
		return -1;
	/* A letter some file carries without a name must not get this name by accident. */
	for (uint32_t i = 0; i < f->count; i++)
		avoid |= f->msgs[i].fl.unknown_kw;
	idx = ms_keywords_add(f->dir_fd, &f->kw, name, avoid, f->s->host);
	ms_lock_release(&l);
	reparse_all(f);
	return idx;
}

/* ---- flags, expunges, message files ------------------------------------------------- */

/* The flags a set asks for, or an errno when it cannot be applied. */
static int wanted_flags(const struct mfolder *f, const struct mfolder_flag_set *set,
			struct ms_flags *fl)
{
	const struct ms_msg *m = set->seq >= 1 && set->seq <= f->count ? &f->msgs[set->seq - 1] :
				 NULL;

	if (m == NULL || (set->keywords >> MS_MAX_KEYWORDS) != 0)
		return EINVAL;
	for (size_t i = 0; i < MS_MAX_KEYWORDS; i++)
		if ((set->keywords & (1u << i)) && f->kw.names[i] == NULL)
			return EINVAL;
	*fl = m->fl;
	fl->flags = set->flags & STORED_FLAGS;
	fl->keywords = set->keywords;
	return 0;
}

/* Under the lock: rename message m to fl, give it the next mod-sequence, note its line. */
static int apply_flags(struct mfolder *f, struct ms_msg *m, const struct ms_flags *fl,
		       struct buf *lines)
{
	if (ms_msg_rename(f, m, fl, true) < 0)
		return errno != 0 ? errno : EIO;
	m->m.modseq = ++f->highestmodseq;
	m->m.flags = fl->flags | (m->m.flags & MSF_RECENT);
	m->m.keywords = fl->keywords;
	m->dirty = false;
	(void)ms_msg_index_line(lines, m);
	return 0;
}

int mfolder_set_flags_many(struct mfolder *f, struct mfolder_flag_set *sets, size_t n)
{
	struct ms_flags *want = xreallocarray(NULL, n ? n : 1, sizeof(*want));
	bool *change = xcalloc(n ? n : 1, sizeof(*change));
	struct ms_lock l;
	struct buf lines;
	size_t todo = 0, first_err = n;

	for (size_t i = 0; i < n; i++) {
		sets[i].err = f->readonly ? EROFS : wanted_flags(f, &sets[i], &want[i]);
		change[i] = sets[i].err == 0 && !ms_flags_eq(&want[i], &f->msgs[sets[i].seq - 1].fl);
		todo += change[i];
	}
	if (todo > 0 && ms_folder_lock(f, &l) < 0) {
		int e = errno;

		for (size_t i = 0; i < n; i++)
			if (change[i])
				sets[i].err = e;
		free(want);
		free(change);
		return -1;
	}
	if (todo > 0) {
		if (ms_index_refresh(f->dir_fd, &f->ix, f->uidvalidity) < 0)
			msg_warn("mailstore: %s/%s: %s", f->name, MS_INDEX, strerror(errno));
		if (f->ix.highestmodseq > f->highestmodseq)
			f->highestmodseq = f->ix.highestmodseq;
		buf_init(&lines, MS_INDEX_MAX);
		for (size_t i = 0; i < n; i++)
			if (change[i])
				sets[i].err = apply_flags(f, &f->msgs[sets[i].seq - 1], &want[i], &lines);
		if (ms_index_append(f->dir_fd, &f->ix, &lines) < 0)
			msg_warn("mailstore: %s/%s: %s", f->name, MS_INDEX, strerror(errno));
		buf_free(&lines);
		ms_lock_release(&l);
	}
	free(want);
	free(change);
	for (size_t i = 0; i < n && first_err == n; i++)
		if (sets[i].err != 0)
			first_err = i;
	if (first_err < n)
		(void)ms_fail(f->s, sets[first_err].err, "message %u: %s", sets[first_err].seq,
			      strerror(sets[first_err].err));
	return f->readonly && n > 0 ? -1 : 0;
}

int mfolder_set_flags(struct mfolder *f, uint32_t seq, unsigned flags, uint32_t keywords)
{
	struct mfolder_flag_set set = { .seq = seq, .flags = flags, .keywords = keywords };

	if (mfolder_set_flags_many(f, &set, 1) < 0 || set.err != 0) {
		errno = set.err;
		return -1;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool wanted(const uint32_t *uids, size_t nuids, uint32_t uid)
{
	return bsearch(&uid, uids, nuids, sizeof(uint32_t), cmp_u32) != NULL;
}

/* Remove m's file (found again if renamed). 1 removed, 0 already gone, -1 error. */
static int unlink_msg(struct mfolder *f, struct ms_msg *m)
{
	for (int tries = 0; tries < 2; tries++) {
		if (unlinkat(m->dir == 'c' ? f->cur_fd : f->new_fd, m->file, 0) == 0)
			return 1;
		if (errno != ENOENT)
			return -1;
		if (ms_msg_find(f, m) <= 0)
			return 0;
	}
	return 0;
}

int mfolder_expunge(struct mfolder *f, const uint32_t *uids, size_t nuids,
		    struct mfolder_changes *ch)
{
	uint32_t *sorted = NULL, *gone = NULL;
	size_t ngone = 0;
	uint64_t bytes = 0;
	int rc;

	if (f->readonly)
		return ms_fail(f->s, EROFS, "%s is read-only", f->name);
	if (uids != NULL) {
		sorted = xreallocarray(NULL, nuids + 1, sizeof(uint32_t));
		memcpy(sorted, uids, nuids * sizeof(uint32_t));
		qsort(sorted, nuids, sizeof(uint32_t), cmp_u32);
	}
	gone = xreallocarray(NULL, f->count + 1, sizeof(uint32_t));
	for (uint32_t i = 0; i < f->count; i++) {
		struct ms_msg *m = &f->msgs[i];

		if (!(m->m.flags & MSF_DELETED) || (uids != NULL && !wanted(sorted, nuids, m->m.uid)))
			continue;
		rc = unlink_msg(f, m);
		if (rc < 0)
			msg_warn("mailstore: expunge %s/%s: %s", f->name, m->file, strerror(errno));
		if (rc > 0)
			bytes += m->m.file_size;
		if (rc >= 0)
			gone[ngone++] = m->m.uid;
	}
	if (ngone > 0 && maildir_quota_add(f->s->root_fd, -(int64_t)bytes, -(int64_t)ngone) < 0)
		msg_warn("mailstore: %s: %s", MAILDIR_QUOTA_FILE, strerror(errno));
	rc = ms_sync(f, ch, gone, ngone);
	free(gone);
	free(sorted);
	return rc;
}

int mfolder_msg_open(struct mfolder *f, uint32_t seq)
{
	struct ms_msg *m = seq >= 1 && seq <= f->count ? &f->msgs[seq - 1] : NULL;
	int fd = -1;

	if (m == NULL) {
		errno = EINVAL;
		return -1;
	}
	for (int tries = 0; tries < 2 && fd < 0; tries++) {
		mstore_msg_file_ops++;
		fd = openat(m->dir == 'c' ? f->cur_fd : f->new_fd, m->file,
			    O_RDONLY | MS_FILE_FLAGS | O_NONBLOCK);
		if (fd >= 0 || errno != ENOENT)
			break;
		if (ms_msg_find(f, m) <= 0) {
			errno = ENOENT;
			break;
		}
	}
	return fd;
}

/* ---- STATUS ------------------------------------------------------------------------ */

int mstore_status(struct mstore *s, const char *name, struct mstatus *st)
{
	struct mfolder *f = mfolder_open(s, name, true);

	memset(st, 0, sizeof(*st));
	if (f == NULL)
		return -1;
	st->messages = f->count;
	st->recent = f->recent;
	st->uidnext = f->uidnext;
	st->uidvalidity = f->uidvalidity;
	st->highestmodseq = f->highestmodseq;
	for (uint32_t i = 0; i < f->count; i++) {
		st->unseen += !(f->msgs[i].m.flags & MSF_SEEN);
		st->size += f->msgs[i].m.size;
	}
	mfolder_close(f);
	return 0;
}

const char *mfolder_path(const struct mfolder *f)
{
	static char path[4096];

	if (ms_is_inbox(f->name))
		(void)str_copy(path, sizeof(path), f->s->root);
	else if (str_fmt(path, sizeof(path), "%s/.%s", f->s->root, f->name) < 0)
		path[0] = '\0';
	return path;
}
