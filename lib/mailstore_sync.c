/*
 * mailstore_sync.c: bringing a folder view up to date with the disk (mfolder_sync).
 *
 * cur/ and new/ are only read when their mtimes changed, or when they had changed too
 * recently for an unchanged mtime to prove anything (file systems stamp directories with a
 * coarse clock). A scan is "stable" when neither directory changed while it was read; only
 * then does a message missing from it count as expunged (a rename racing readdir could hide
 * it otherwise). Files are matched to the view by base name; unknown ones get their UIDs
 * from dovecot-uidlist, and files it does not know yet get the next UIDs under the uidlist
 * lock, in delivery-time order, which is also when lines of vanished files are dropped
 * (only lines that predate the view's newest UID, so a line for a file that arrived after
 * the scan is never lost). A read-write view moves new/ files to cur/ (":2," added) under
 * the same lock and owns their \Recent. Sizes, dates and mod-sequences come from
 * postern-index when it knows the message, else from one stat() (and one read when the
 * name has no W=), and what was learnt goes back into the index.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maildir.h"
#include "mailstore_priv.h"
#include "util.h"

/* A directory mtime at least this old when scanned proves the scan saw every change. */
#define SETTLE_SECS 2
#define NAMES_MAX ((size_t)1 << 31)

unsigned long mstore_msg_file_ops;
unsigned long mstore_dir_scans;

struct scan_ent {
	size_t off;		/* its name in scan.names */
	uint32_t base_len;
	char dir;
	bool regular;		/* readdir said it is a regular file */
	bool sizes_named;	/* the name carries both sizes (S= and W=), now in the fields */
	bool gone;		/* vanished before we could stat it */
	uint32_t uid;
	uint64_t size, file_size;
	int64_t mtime;
	bool have_data;
};

struct scan {
	struct buf names;
	struct scan_ent *ents;
	size_t n, cap;
	bool stable, settled;
	struct timespec cur_mtime, new_mtime;
};

struct sync {
	struct mfolder *f;
	struct scan sc;
	bool scanned;
	uint32_t last_uid_before;	/* the view's newest UID when the sync began */
	size_t *unassigned, nunassigned;
	size_t *news, nnews;		/* scan entries with UIDs new to the view */
	uint8_t *seen;			/* per view message: found by the scan */
	bool skipped;			/* a numbered file the view cannot show */
	uint32_t *expunge;		/* view indexes, ascending */
	size_t nexpunge;
	struct ms_lock lock;
	bool locked;
	struct buf lines;		/* for postern-index */
};

static const char *ent_name(const struct scan *sc, const struct scan_ent *e)
{
	return sc->names.data + e->off;
}

static void scan_free(struct scan *sc)
{
	buf_free(&sc->names);
	free(sc->ents);
	memset(sc, 0, sizeof(*sc));
}

/* ---- scanning ---------------------------------------------------------------------- */

static int scan_add(struct scan *sc, const char *name, char dir, bool regular)
{
	struct maildir_name mn;
	struct scan_ent *e;
	size_t len = strlen(name);

	/* Names Dovecot would not take (or could not put in its uidlist) are not messages. */
	if (name[0] == '.' || strpbrk(name, "\r\n") != NULL || maildir_parse_name(name, &mn) < 0)
		return 0;
	if (sc->n == sc->cap) {
		sc->cap = sc->cap ? sc->cap * 2 : 1024;
		sc->ents = xreallocarray(sc->ents, sc->cap, sizeof(*sc->ents));
	}
	e = &sc->ents[sc->n];
	memset(e, 0, sizeof(*e));
	e->off = sc->names.len;
	e->base_len = (uint32_t)mn.base_len;
	e->dir = dir;
	e->regular = regular;
	if (mn.has_size && mn.has_vsize) {
		e->sizes_named = true;
		e->file_size = mn.size;
		e->size = mn.vsize;
	}
	if (buf_append(&sc->names, name, len + 1) < 0)
		return -1;
	sc->n++;
	return 0;
}

static int scan_one(int dirfd, char dir, struct scan *sc)
{
	struct dirent *de;
	DIR *d;
	int fd = openat(dirfd, ".", MS_DIR_FLAGS), rc = 0;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		ms_close(fd);
		return -1;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL)
		if (de->d_type == DT_REG || de->d_type == DT_UNKNOWN)
			rc = scan_add(sc, de->d_name, dir, de->d_type == DT_REG);
	if (rc == 0 && errno != 0)
		rc = -1;
	fd = errno;
	(void)closedir(d);
	errno = fd;
	return rc;
}

/* new/ before cur/: a file moving from one to the other is seen at least once. */
static int scan_dirs(struct mfolder *f, struct scan *sc)
{
	struct stat c0, n0, c1, n1;
	time_t start = 0;

	mstore_dir_scans++;
	for (int attempt = 0; attempt < 3; attempt++) {
		scan_free(sc);
		buf_init(&sc->names, NAMES_MAX);
		if (fstat(f->new_fd, &n0) < 0 || fstat(f->cur_fd, &c0) < 0)
			return -1;
		start = time(NULL);
		if (scan_one(f->new_fd, 'n', sc) < 0 || scan_one(f->cur_fd, 'c', sc) < 0 ||
		    fstat(f->new_fd, &n1) < 0 || fstat(f->cur_fd, &c1) < 0)
			return -1;
		sc->stable = ms_ts_eq(n0.st_mtim, n1.st_mtim) && ms_ts_eq(c0.st_mtim, c1.st_mtim);
		if (sc->stable)
			break;
	}
	sc->cur_mtime = c1.st_mtim;
	sc->new_mtime = n1.st_mtim;
	sc->settled = sc->stable && c1.st_mtime + SETTLE_SECS <= start &&
		      n1.st_mtime + SETTLE_SECS <= start;
	return 0;
}

/* ---- small helpers ----------------------------------------------------------------- */

uint32_t ms_seq_of_uid(const struct mfolder *f, uint32_t uid)
{
	uint32_t lo = 0, hi = f->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (f->msgs[mid].m.uid == uid)
			return mid + 1;
		if (f->msgs[mid].m.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static void rebuild_bases(struct mfolder *f)
{
	ms_strmap_free(&f->bases);
	ms_strmap_init(&f->bases, f->count);
	for (uint32_t i = 0; i < f->count; i++)
		ms_strmap_put(&f->bases, f->msgs[i].file, f->msgs[i].base_len, f->msgs[i].m.uid);
	f->bases_dirty = false;
}

/* RFC822.SIZE of a file without W=: its size plus one CR per bare LF (reads it). */
static int count_vsize(int dirfd, const char *name, uint64_t *vsize)
{
	char chunk[65536], prev = '\0';
	uint64_t size = 0, bare = 0;
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY | MS_FILE_FLAGS | O_NONBLOCK);

	mstore_msg_file_ops++;
	if (fd < 0)
		return -1;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ms_close(fd);
			return -1;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n' && prev != '\r')
				bare++;
			prev = chunk[i];
		}
		size += (uint64_t)n;
	}
	(void)close(fd);
	*vsize = size + bare;
	return 0;
}

/* Size, file size and date of a file seen for the first time. A name that carries both
 * sizes (S= and W=, as Dovecot and Postern write them) is not even stat()ed: on the first
 * open of a large folder that is most of the work, and the date is rarely wanted, so it is
 * left unknown (0) for mfolder_load_date(). */
static void fetch_data(struct mfolder *f, struct sync *y, struct scan_ent *e)
{
	const char *name = ent_name(&y->sc, e);
	int dirfd = e->dir == 'c' ? f->cur_fd : f->new_fd;
	struct maildir_name mn;
	struct stat st;

	if (e->regular && e->sizes_named) {
		e->mtime = 0;
		e->have_data = true;
		return;
	}
	(void)maildir_parse_name(name, &mn);
	mstore_msg_file_ops++;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
		e->gone = true;	/* vanished, or not a message after all */
		return;
	}
	e->file_size = mn.has_size ? mn.size : (uint64_t)st.st_size;
	e->mtime = (int64_t)st.st_mtime;
	if (mn.has_vsize)
		e->size = mn.vsize;
	else if (count_vsize(dirfd, name, &e->size) < 0)
		e->size = e->file_size;
	e->have_data = true;
}

/* Take what the index knows about entry e (UID known) when it is the same file. */
static void data_from_index(struct mfolder *f, struct sync *y, struct scan_ent *e)
{
	const struct ms_idxrec *r = ms_index_get(&f->ix, e->uid);
	const char *name = ent_name(&y->sc, e);

	if (r == NULL || strncmp(r->file, name, e->base_len) != 0 ||
	    (r->file[e->base_len] != '\0' && r->file[e->base_len] != ':'))
		return;
	e->size = r->size;
	e->file_size = r->file_size;
	e->mtime = r->mtime;
	e->have_data = true;
}

/* Grow an array that only ever grows by one: room doubles at every power of two. */
static void *grow(void *arr, size_t n, size_t size)
{
	if (n == 0 || (n & (n - 1)) == 0)
		arr = xreallocarray(arr, n == 0 ? 16 : n * 2, size);
	return arr;
}

static void push(size_t **arr, size_t *n, size_t v)
{
	*arr = grow(*arr, *n, sizeof(size_t));
	(*arr)[(*n)++] = v;
}

/* ---- matching the scan with the view ------------------------------------------------ */

static int load_uidlist(struct mfolder *f)
{
	if (f->ul_loaded && !ms_uidlist_changed(f->dir_fd, &f->ul))
		return 0;
	if ((f->ul_loaded ? ms_uidlist_refresh(f->dir_fd, &f->ul) :
			    ms_uidlist_read(f->dir_fd, &f->ul)) < 0)
		return ms_fail_errno(f->s, "read", MS_UIDLIST);
	f->ul_loaded = true;
	/* Replaced or broken under a view that has UIDs: they mean nothing any more. */
	if (f->uidvalidity != 0 && (!f->ul.exists || f->ul.uidvalidity != f->uidvalidity)) {
		f->frozen = true;
		return ms_fail(f->s, ESTALE, "UIDVALIDITY of %s changed", f->name);
	}
	return 0;
}

/* A scanned file the view has: note a rename and what it did to the flags. */
static void match_known(struct mfolder *f, struct sync *y, const struct scan_ent *e,
			uint32_t idx)
{
	struct ms_msg *m = &f->msgs[idx];
	const char *name = ent_name(&y->sc, e);
	struct ms_flags old = m->fl;

	y->seen[idx] = 1;
	if (m->dir == e->dir && strcmp(m->file, name) == 0)
		return;
	free(m->file);
	m->file = xstrdup(name);
	m->m.file = m->file;
	m->dir = e->dir;
	f->bases_dirty = true;
	ms_msg_parse_flags(f, m);
	if (!ms_flags_eq(&old, &m->fl))
		m->dirty = true;
}

static int match_scan(struct mfolder *f, struct sync *y)
{
	bool ul_needed = false;

	if (f->bases_dirty)
		rebuild_bases(f);
	for (size_t i = 0; i < y->sc.n; i++) {
		struct scan_ent *e = &y->sc.ents[i];
		uint32_t uid = ms_strmap_get(&f->bases, ent_name(&y->sc, e), e->base_len);
		uint32_t seq = uid != 0 ? ms_seq_of_uid(f, uid) : 0;

		if (seq != 0) {
			match_known(f, y, e, seq - 1);
			continue;
		}
		if (!ul_needed && load_uidlist(f) < 0)
			return -1;
		ul_needed = true;
		e->uid = ms_uidlist_uid(&f->ul, ent_name(&y->sc, e), e->base_len);
		if (e->uid == 0)
			push(&y->unassigned, &y->nunassigned, i);
		else if (e->uid > f->last_uid)
			push(&y->news, &y->nnews, i);
		else
			y->skipped = true;	/* below the view's newest UID: a later view shows it */
	}
	return 0;
}

static bool in_sorted(const uint32_t *v, size_t n, uint32_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] == x)
			return true;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Messages that are gone: missing from a stable scan, or removed by us. */
static void find_expunged(struct mfolder *f, struct sync *y, const uint32_t *gone, size_t ngone)
{
	for (uint32_t i = 0; i < f->count; i++) {
		if ((y->scanned && y->sc.stable && !y->seen[i]) ||
		    (ngone > 0 && in_sorted(gone, ngone, f->msgs[i].m.uid))) {
			y->expunge = grow(y->expunge, y->nexpunge, sizeof(uint32_t));
			y->expunge[y->nexpunge++] = i;
		}
	}
}

/* ---- under the uidlist lock --------------------------------------------------------- */

/* New files are numbered in delivery order: the time in the name, then the name. The times
 * are parsed once into a compact array that is sorted instead of the scan entries. */
struct time_key {
	uint64_t secs, usecs;
	uint64_t key;		/* secs and usecs in one number, when they fit (radix_sort) */
	size_t ent;
};

/* Time, then base name (so that one base seen twice, in new/ and cur/, sorts together),
 * then the whole name. */
static int cmp_time_key(const void *a, const void *b, void *ctx)
{
	const struct scan *sc = ctx;
	const struct time_key *x = a, *y = b;
	const struct scan_ent *ex = &sc->ents[x->ent], *ey = &sc->ents[y->ent];
	int c;

	if (x->secs != y->secs)
		return x->secs < y->secs ? -1 : 1;
	if (x->usecs != y->usecs)
		return x->usecs < y->usecs ? -1 : 1;
	c = memcmp(ent_name(sc, ex), ent_name(sc, ey),
		   ex->base_len < ey->base_len ? ex->base_len : ey->base_len);
	if (c != 0 || ex->base_len != ey->base_len)
		return c != 0 ? c : (ex->base_len < ey->base_len ? -1 : 1);
	return strcmp(ent_name(sc, ex), ent_name(sc, ey));
}

static bool same_base(const struct scan *sc, const struct scan_ent *a, const struct scan_ent *b)
{
	return a->base_len == b->base_len &&
	       memcmp(ent_name(sc, a), ent_name(sc, b), a->base_len) == 0;
}

/* A stable LSD radix sort of k[0..n) by key, a byte at a time, skipping the bytes every
 * key shares (the high bytes of times close together): a first open of 100,000 files
 * sorts in a few passes instead of 1.7 million comparisons. */
static void radix_sort(struct time_key *k, size_t n)
{
	struct time_key *tmp = xreallocarray(NULL, n, sizeof(*tmp)), *src = k, *dst = tmp;

	for (unsigned shift = 0; shift < 64; shift += 8) {
		size_t count[256] = { 0 }, pos = 0;

		for (size_t i = 0; i < n; i++)
			count[(src[i].key >> shift) & 0xff]++;
		if (count[(src[0].key >> shift) & 0xff] == n)
			continue;
		for (size_t d = 0; d < 256; d++) {
			size_t c = count[d];

			count[d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].key >> shift) & 0xff]++] = src[i];
		src = dst;
		dst = dst == tmp ? k : tmp;
	}
	if (src != k)
		memcpy(k, src, n * sizeof(*k));
	free(tmp);
}

/* Sort k[0..n) by cmp_time_key: by the combined key when every time fits in one (then
 * only runs of equal times need the names), else by comparisons. */
static void sort_time_keys(struct time_key *k, size_t n, struct scan *sc)
{
	bool fits = n > 1;

	for (size_t i = 0; i < n && fits; i++) {
		fits = k[i].secs < ((uint64_t)1 << 40) && k[i].usecs < ((uint64_t)1 << 24);
		k[i].key = k[i].secs << 24 | k[i].usecs;
	}
	if (!fits) {
		if (n > 1)
			qsort_r(k, n, sizeof(*k), cmp_time_key, sc);
		return;
	}
	radix_sort(k, n);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && k[j].key == k[i].key; j++)
			;
		if (j - i > 1)
			qsort_r(k + i, j - i, sizeof(*k), cmp_time_key, sc);
	}
}

/* Sort y->unassigned[0..n) by cmp_time_key; with twins_gone, a base seen twice (in new/
 * and cur/ at once) keeps only its first file (twins share their time, so names are only
 * compared then). */
static void sort_by_time(struct sync *y, size_t n, bool twins_gone)
{
	struct time_key *k = xreallocarray(NULL, n, sizeof(*k));

	for (size_t i = 0; i < n; i++) {
		k[i].ent = y->unassigned[i];
		ms_name_time(ent_name(&y->sc, &y->sc.ents[k[i].ent]), &k[i].secs, &k[i].usecs);
	}
	sort_time_keys(k, n, &y->sc);
	for (size_t i = 0, kept = 0; i < n; i++) {
		struct scan_ent *e = &y->sc.ents[k[i].ent];

		if (twins_gone && i > 0 && k[i].secs == k[kept].secs &&
		    k[i].usecs == k[kept].usecs && same_base(&y->sc, &y->sc.ents[k[kept].ent], e))
			e->gone = true;
		else
			kept = i;
		y->unassigned[i] = k[i].ent;
	}
	free(k);
}

static int cmp_ent_uid(const void *a, const void *b, void *ctx)
{
	const struct scan *sc = ctx;
	uint32_t x = sc->ents[*(const size_t *)a].uid, y = sc->ents[*(const size_t *)b].uid;

	return x < y ? -1 : x > y;
}

struct drop_ctx {
	uint32_t limit;
	struct ms_strmap present;
};

/* A line stays unless it is older than the view's newest UID and its file is gone. */
static bool keep_line(void *p, const struct ms_uidrec *r)
{
	struct drop_ctx *d = p;

	return r->uid > d->limit || ms_strmap_get(&d->present, r->base, strlen(r->base)) != 0;
}

/* True if lines were dropped. */
static bool drop_vanished(struct sync *y)
{
	struct drop_ctx d = { .limit = y->last_uid_before };
	size_t before = y->f->ul.n;

	/* Only lines up to the view's newest UID may go: none when the view was empty. */
	if (!y->scanned || !y->sc.stable || d.limit == 0)
		return false;
	ms_strmap_init(&d.present, y->sc.n);
	for (size_t i = 0; i < y->sc.n; i++)
		ms_strmap_put(&d.present, ent_name(&y->sc, &y->sc.ents[i]), y->sc.ents[i].base_len, 1);
	ms_uidlist_filter(&y->f->ul, keep_line, &d);
	ms_strmap_free(&d.present);
	return y->f->ul.n != before;
}

/* Number the files nobody has numbered yet (someone may have while we waited). */
static int assign_uids(struct mfolder *f, struct sync *y)
{
	size_t keep = 0, old_lines = f->ul.n;
	int rc;

	if (old_lines == 0)	/* a folder's first numbering: nobody else has numbered any */
		keep = y->nunassigned;
	for (size_t i = 0; i < y->nunassigned && old_lines != 0; i++) {
		struct scan_ent *e = &y->sc.ents[y->unassigned[i]];

		e->uid = ms_uidlist_uid(&f->ul, ent_name(&y->sc, e), e->base_len);
		if (e->uid == 0)
			y->unassigned[keep++] = y->unassigned[i];
		else if (e->uid > f->last_uid)
			push(&y->news, &y->nnews, y->unassigned[i]);
	}
	y->nunassigned = keep;
	if (keep == 0)
		return 0;
	/* The same base twice (in new/ and cur/ at once): one message, one UID. With no old
	 * lines the sort finds the twins and the map can wait. */
	sort_by_time(y, keep, old_lines == 0);
	for (size_t i = 0; i < keep; i++) {
		struct scan_ent *e = &y->sc.ents[y->unassigned[i]];

		if (e->gone)
			continue;
		if (old_lines == 0) {
			ms_uidlist_add_unmapped(&f->ul, f->ul.uidnext, ent_name(&y->sc, e), e->base_len);
		} else if (!ms_uidlist_add_new(&f->ul, f->ul.uidnext, ent_name(&y->sc, e),
					       e->base_len)) {
			e->gone = true;
			continue;
		}
		e->uid = f->ul.uidnext - 1;
		push(&y->news, &y->nnews, y->unassigned[i]);
	}
	y->nunassigned = 0;
	/* Appending the new lines is enough (and all Dovecot does) unless old ones went. */
	rc = drop_vanished(y) ? ms_uidlist_write(f->dir_fd, &f->ul) :
				ms_uidlist_append(f->dir_fd, &f->ul, old_lines);
	if (rc < 0)
		return ms_fail_errno(f->s, "write", MS_UIDLIST);
	return 0;
}

/* The uidlist as it is now; a new folder gets its first one. -1 also when the UIDVALIDITY
 * changed (f->frozen). */
static int locked_uidlist(struct mfolder *f)
{
	if (load_uidlist(f) < 0)
		return -1;
	if (!f->ul.exists) {
		(void)ms_uidlist_init_new(f->s, &f->ul);
		if (ms_uidlist_write(f->dir_fd, &f->ul) < 0)
			return ms_fail_errno(f->s, "write", MS_UIDLIST);
	}
	f->uidvalidity = f->ul.uidvalidity;
	return 0;
}

/* A read-write view takes new/ files into cur/ and, with them, their \Recent. */
static void move_new(struct mfolder *f, struct sync *y)
{
	char newname[MAILDIR_NAME_MAX + 1];
	unsigned long n = 0;

	for (uint32_t i = 0; i < f->count; i++) {
		struct ms_msg *m = &f->msgs[i];
		struct ms_flags fl = m->fl;

		if (m->dir == 'n' && ms_msg_rename(f, m, &fl, true) == 0)
			m->m.flags |= MSF_RECENT;
		if (++n % 1000 == 0)
			ms_lock_touch(&y->lock);
	}
	for (size_t i = 0; i < y->nnews; i++) {
		struct scan_ent *e = &y->sc.ents[y->news[i]];
		const char *name = ent_name(&y->sc, e);
		struct maildir_name mn;

		if (e->dir != 'n' || e->gone || maildir_parse_name(name, &mn) < 0 ||
		    maildir_flags_set(name, mn.flags, newname, sizeof(newname)) < 0)
			continue;
		if (renameat(f->new_fd, name, f->cur_fd, newname) < 0)
			continue;	/* another session took it: it is in cur/ now */
		size_t off = y->sc.names.len;	/* (name is invalid once names grows) */

		if (buf_append(&y->sc.names, newname, strlen(newname) + 1) < 0) {
			e->gone = true;	/* cannot happen below the limit; the next sync finds it */
			continue;
		}
		e->off = off;
		e->dir = 'C';	/* in cur/ now, moved by us */
		if (++n % 1000 == 0)
			ms_lock_touch(&y->lock);
	}
}

/* ---- applying the changes to the view ----------------------------------------------- */

static void apply_expunges(struct mfolder *f, struct sync *y, struct mfolder_changes *ch)
{
	uint32_t o = 0;
	size_t j = 0;

	if (y->nexpunge == 0)
		return;
	if (ch != NULL) {
		ch->expunged_seqs = xreallocarray(NULL, y->nexpunge, sizeof(uint32_t));
		for (size_t k = 0; k < y->nexpunge; k++)	/* descending */
			ch->expunged_seqs[k] = y->expunge[y->nexpunge - 1 - k] + 1;
		ch->nexpunged = y->nexpunge;
	}
	for (uint32_t i = 0; i < f->count; i++) {
		if (j < y->nexpunge && y->expunge[j] == i) {
			if (y->locked)
				(void)ms_index_fmt_expunge(&y->lines, f->msgs[i].m.uid);
			free(f->msgs[i].file);
			j++;
			continue;
		}
		f->msgs[o++] = f->msgs[i];
	}
	f->count = o;
	f->bases_dirty = true;
}

/* Reported flag changes get a mod-sequence (the index's if it has recorded them). */
static void apply_flag_changes(struct mfolder *f, struct sync *y, struct mfolder_changes *ch)
{
	bool fresh;

	for (uint32_t i = 0; i < f->count; i++) {
		struct ms_msg *m = &f->msgs[i];

		if (!m->dirty)
			continue;
		m->dirty = false;
		m->m.flags = m->fl.flags | (m->m.flags & MSF_RECENT);
		m->m.keywords = m->fl.keywords;
		m->m.modseq = ms_pick_modseq(f, m, &fresh);
		if (fresh && y->locked)
			(void)ms_msg_index_line(&y->lines, m);
		if (ch != NULL) {
			ch->flag_changed_seqs = grow(ch->flag_changed_seqs, ch->nflag_changed,
						     sizeof(uint32_t));
			ch->flag_changed_seqs[ch->nflag_changed++] = i + 1;
		}
	}
}

static void add_message(struct mfolder *f, struct sync *y, const struct scan_ent *e)
{
	struct ms_msg *m;
	bool fresh;

	if (f->count == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		f->msgs = xreallocarray(f->msgs, f->cap, sizeof(*f->msgs));
	}
	m = &f->msgs[f->count++];
	memset(m, 0, sizeof(*m));
	m->file = xstrdup(ent_name(&y->sc, e));
	m->m.file = m->file;
	m->m.uid = e->uid;
	m->dir = e->dir == 'n' ? 'n' : 'c';
	m->base_len = e->base_len;
	m->m.size = e->size;
	m->m.file_size = e->file_size;
	m->m.internal_date = (time_t)e->mtime;
	ms_msg_parse_flags(f, m);
	m->m.flags = m->fl.flags;
	m->m.keywords = m->fl.keywords;
	/* Ours if we moved it from new/; a read-only view shows new/ as recent, unclaimed. */
	if (e->dir == 'C' || (f->readonly && e->dir == 'n'))
		m->m.flags |= MSF_RECENT;
	m->m.modseq = ms_pick_modseq(f, m, &fresh);
	/* (A folder without an index gets all of it from index_catch_up.) */
	if ((fresh || e->dir == 'C') && y->locked && f->ix.exists)
		(void)ms_msg_index_line(&y->lines, m);
	f->last_uid = e->uid;
	f->bases_dirty = true;
}

static bool news_sorted(const struct sync *y)
{
	for (size_t i = 1; i < y->nnews; i++)
		if (y->sc.ents[y->news[i - 1]].uid > y->sc.ents[y->news[i]].uid)
			return false;
	return true;
}

static void apply_news(struct mfolder *f, struct sync *y)
{
	if (y->nnews > 1 && !news_sorted(y))	/* a first numbering makes them in order */
		qsort_r(y->news, y->nnews, sizeof(size_t), cmp_ent_uid, &y->sc);
	for (size_t i = 0; i < y->nnews; i++) {
		struct scan_ent *e = &y->sc.ents[y->news[i]];

		/* UID order is not the order of the scan: ask for the entry eight messages
		 * ahead and for the name four ahead (whose entry came in four turns ago), or a
		 * folder's first open waits on memory for each message. */
		if (i + 8 < y->nnews)
			__builtin_prefetch(&y->sc.ents[y->news[i + 8]]);
		if (i + 4 < y->nnews)
			__builtin_prefetch(ent_name(&y->sc, &y->sc.ents[y->news[i + 4]]));
		if (e->gone || e->uid <= f->last_uid)
			continue;
		if (!e->have_data)
			fetch_data(f, y, e);
		if (!e->gone)
			add_message(f, y, e);
	}
}

/* ---- the index ---------------------------------------------------------------------- */

/* Make the index say exactly what the view holds (so a state line may vouch for it):
 * every message as it is, nothing else. That covers whatever lines the sync gathered
 * already, so they are dropped rather than written twice. */
static void index_catch_up(struct mfolder *f, struct sync *y)
{
	buf_reset(&y->lines);
	for (uint32_t i = 0; i < f->count; i++) {
		const struct ms_msg *m = &f->msgs[i];
		const struct ms_idxrec *r = ms_index_get(&f->ix, m->m.uid);

		if (r == NULL || r->dir != m->dir || r->modseq != m->m.modseq ||
		    r->mtime != (int64_t)m->m.internal_date || strcmp(r->file, m->file) != 0)
			(void)ms_msg_index_line(&y->lines, m);
	}
	for (size_t i = 0; i < f->ix.n; i++)
		if (f->ix.recs[i].file != NULL && ms_seq_of_uid(f, f->ix.recs[i].uid) == 0)
			(void)ms_index_fmt_expunge(&y->lines, f->ix.recs[i].uid);
}

static bool all_in_cur(const struct mfolder *f)
{
	for (uint32_t i = 0; i < f->count; i++)
		if (f->msgs[i].dir != 'c')
			return false;
	return true;
}

/* The state line for the view as it is, when cur/ and new/ are still what the view was
 * built from and quiet enough to be trusted. */
static bool current_state(struct mfolder *f, struct ms_idxstate *st)
{
	struct stat c, n, u;

	memset(st, 0, sizeof(*st));
	if (!f->dirs_known || (!f->readonly && !all_in_cur(f)) ||
	    fstat(f->cur_fd, &c) < 0 || fstat(f->new_fd, &n) < 0 ||
	    fstatat(f->dir_fd, MS_UIDLIST, &u, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !ms_ts_eq(c.st_mtim, f->cur_mtime) || !ms_ts_eq(n.st_mtim, f->new_mtime))
		return false;
	st->valid = true;
	st->uidnext = f->uidnext;
	st->ul_ino = u.st_ino;
	st->ul_size = u.st_size;
	st->ul_mtime = u.st_mtim;
	st->cur_mtime = c.st_mtim;
	st->new_mtime = n.st_mtim;
	return true;
}

static bool same_state(const struct ms_idxstate *a, const struct ms_idxstate *b)
{
	return a->valid && b->valid && a->uidnext == b->uidnext && a->ul_ino == b->ul_ino &&
	       a->ul_size == b->ul_size && ms_ts_eq(a->ul_mtime, b->ul_mtime) &&
	       ms_ts_eq(a->cur_mtime, b->cur_mtime) && ms_ts_eq(a->new_mtime, b->new_mtime);
}

/* Dates mfolder_load_date() learnt since the index last heard of them. */
static bool index_dates(struct mfolder *f, struct sync *y)
{
	if (f->dates_learnt == 0)
		return false;
	for (uint32_t i = 0; i < f->count; i++)
		if (f->msgs[i].date_learnt) {
			(void)ms_msg_index_line(&y->lines, &f->msgs[i]);
			f->msgs[i].date_learnt = false;
		}
	f->dates_learnt = 0;
	return true;
}

static void index_write(struct mfolder *f, struct sync *y)
{
	struct ms_idxstate st;
	bool current = !y->skipped && y->nunassigned == 0 && current_state(f, &st);
	bool vouch = current && !same_state(&st, &f->ix.state);
	bool dates = index_dates(f, y);

	/* Record lines withdraw the state line before them: say it again after the dates. */
	if (!f->ix.exists || vouch || (current && dates))
		index_catch_up(f, y);
	if (vouch || (current && dates))
		(void)ms_index_fmt_state(&y->lines, f->highestmodseq, &st);
	if (y->lines.len > 0 && ms_index_append(f->dir_fd, &f->ix, &y->lines) < 0)
		msg_warn("mailstore: %s/%s: %s", f->name, MS_INDEX, strerror(errno));
}

/* ---- the sync ----------------------------------------------------------------------- */

/* Keywords named or unnamed since: the letters mean something else now. */
static int refresh_keywords(struct mfolder *f)
{
	int rc = ms_keywords_refresh(f->dir_fd, &f->kw);

	if (rc <= 0)
		return rc;
	ms_folder_keywords_changed(f);
	for (uint32_t i = 0; i < f->count; i++) {
		struct ms_msg *m = &f->msgs[i];
		struct ms_flags old = m->fl;

		ms_msg_parse_flags(f, m);
		if (!ms_flags_eq(&old, &m->fl))
			m->dirty = true;
	}
	return 0;
}

static int look_at_dirs(struct mfolder *f, struct sync *y)
{
	struct stat c, n;

	if (fstat(f->cur_fd, &c) < 0 || fstat(f->new_fd, &n) < 0)
		return ms_fail_errno(f->s, "stat", f->name);
	if (f->dirs_known && ms_ts_eq(c.st_mtim, f->cur_mtime) && ms_ts_eq(n.st_mtim, f->new_mtime))
		return 0;
	if (scan_dirs(f, &y->sc) < 0)
		return ms_fail_errno(f->s, "read", f->name);
	y->scanned = true;
	f->dirs_known = y->sc.settled;
	f->cur_mtime = y->sc.cur_mtime;
	f->new_mtime = y->sc.new_mtime;
	y->seen = xcalloc(f->count + 1, 1);
	return match_scan(f, y);
}

/* A view not opened from the index learns its UIDVALIDITY from the uidlist (a folder
 * without one gets it under the lock). */
static int know_uidvalidity(struct mfolder *f)
{
	if (f->uidvalidity != 0)
		return 0;
	if (load_uidlist(f) < 0)
		return -1;
	if (f->ul.exists)
		f->uidvalidity = f->ul.uidvalidity;
	return 0;
}

/* Has another session replaced the uidlist with another UIDVALIDITY? (load_uidlist()
 * freezes the view then.) */
static int check_uidlist(struct mfolder *f)
{
	if (f->uidvalidity == 0 || !ms_uidlist_changed(f->dir_fd, &f->ul))
		return 0;
	return load_uidlist(f);
}

/* Sizes and dates of the files the view is about to show. */
static void prefetch(struct mfolder *f, struct sync *y)
{
	for (size_t i = 0; i < y->nnews; i++) {
		struct scan_ent *e = &y->sc.ents[y->news[i]];

		data_from_index(f, y, e);
		if (!e->have_data)
			fetch_data(f, y, e);
	}
	for (size_t i = 0; i < y->nunassigned; i++)
		fetch_data(f, y, &y->sc.ents[y->unassigned[i]]);
}

/* Would the index gain anything from this sync (worth taking the lock for)? */
static bool index_wants(struct mfolder *f, struct sync *y)
{
	const struct ms_idxstate *st = &f->ix.state;

	if (y->nexpunge > 0 || f->dates_learnt > 0 || (!f->ix.exists && f->count + y->nnews > 0))
		return true;
	for (uint32_t i = 0; i < f->count; i++)
		if (f->msgs[i].dirty && ms_index_modseq(f, &f->msgs[i]) == 0)
			return true;
	for (size_t i = 0; i < y->nnews; i++)
		if (ms_index_get(&f->ix, y->sc.ents[y->news[i]].uid) == NULL)
			return true;
	return f->dirs_known && !y->skipped &&
	       !(st->valid && ms_ts_eq(st->cur_mtime, f->cur_mtime) &&
		 ms_ts_eq(st->new_mtime, f->new_mtime) && st->ul_ino == f->ul.ino &&
		 st->ul_size == f->ul.size && ms_ts_eq(st->ul_mtime, f->ul.mtime));
}

static bool needs_lock(struct mfolder *f, struct sync *y)
{
	if (y->nunassigned > 0 || f->uidvalidity == 0)
		return true;
	if (!f->readonly) {
		for (uint32_t i = 0; i < f->count; i++)
			if (f->msgs[i].dir == 'n')
				return true;
		for (size_t i = 0; i < y->nnews; i++)
			if (y->sc.ents[y->news[i]].dir == 'n')
				return true;
	}
	return index_wants(f, y);
}

/* The work that needs the uidlist lock. -1 only when the folder froze. */
static int locked_work(struct mfolder *f, struct sync *y)
{
	if (ms_folder_lock(f, &y->lock) < 0) {
		msg_warn("mailstore: %s: %s", f->name, mstore_error(f->s));
		return 0;	/* unnumbered files wait for the next sync */
	}
	y->locked = true;
	if (locked_uidlist(f) < 0)
		return -1;
	if (ms_index_refresh(f->dir_fd, &f->ix, f->uidvalidity) < 0)
		msg_warn("mailstore: %s/%s: %s", f->name, MS_INDEX, strerror(errno));
	if (f->ix.highestmodseq > f->highestmodseq)
		f->highestmodseq = f->ix.highestmodseq;
	if (y->nunassigned > 0 && assign_uids(f, y) < 0)
		msg_warn("mailstore: %s: %s", f->name, mstore_error(f->s));
	if (!f->readonly)
		move_new(f, y);
	return 0;
}

/* A folder that had messages but has lost its index (or never had one) cannot know its
 * old mod-sequences; starting from the clock in microseconds keeps them growing anyway
 * (unless changes came faster than one per microsecond), and a CONDSTORE client asking
 * for changes since an old value is told everything changed, which is right. */
static void restart_modseqs(struct mfolder *f)
{
	struct timespec now;

	if (f->ix.exists || f->highestmodseq != 0 || f->uidvalidity == 0)
		return;
	if (!f->ul_loaded && load_uidlist(f) < 0)
		return;
	if (f->ul.uidnext > 1 && clock_gettime(CLOCK_REALTIME, &now) == 0)
		f->highestmodseq = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
}

static void fill_changes(struct mfolder *f, struct mfolder_changes *ch, uint32_t count_before,
			 uint32_t last_before)
{
	if (ch == NULL)
		return;
	ch->exists = f->count;
	ch->recent = f->recent;
	ch->exists_changed = f->count != count_before || f->last_uid != last_before;
	ch->uidvalidity_changed = f->frozen;
}

static void sync_free(struct sync *y)
{
	if (y->locked)
		ms_lock_release(&y->lock);
	scan_free(&y->sc);
	free(y->unassigned);
	free(y->news);
	free(y->seen);
	free(y->expunge);
	buf_free(&y->lines);
}

static void count_recent(struct mfolder *f)
{
	f->recent = 0;
	for (uint32_t i = 0; i < f->count; i++)
		f->recent += (f->msgs[i].m.flags & MSF_RECENT) != 0;
}

int ms_sync(struct mfolder *f, struct mfolder_changes *ch, const uint32_t *gone, size_t ngone)
{
	struct sync y = { .f = f, .last_uid_before = f->last_uid };
	uint32_t count_before = f->count, last_before = f->last_uid;
	int rc = 0;

	if (ch != NULL)
		memset(ch, 0, sizeof(*ch));
	buf_init(&y.lines, MS_INDEX_MAX);
	if (!f->frozen && (refresh_keywords(f) < 0 || know_uidvalidity(f) < 0 ||
			   check_uidlist(f) < 0 || look_at_dirs(f, &y) < 0))
		rc = f->frozen ? 0 : -1;
	if (rc == 0 && !f->frozen) {
		if (f->uidvalidity != 0 &&
		    ms_index_refresh(f->dir_fd, &f->ix, f->uidvalidity) < 0)
			msg_warn("mailstore: %s/%s: %s", f->name, MS_INDEX, strerror(errno));
		if (f->ix.highestmodseq > f->highestmodseq)
			f->highestmodseq = f->ix.highestmodseq;
		restart_modseqs(f);
		prefetch(f, &y);
		find_expunged(f, &y, gone, ngone);
		if (needs_lock(f, &y) && locked_work(f, &y) < 0)
			rc = f->frozen ? 0 : -1;
	}
	if (rc == 0 && !f->frozen) {
		apply_expunges(f, &y, ch);
		apply_flag_changes(f, &y, ch);
		apply_news(f, &y);
		if (f->ul.uidnext > f->uidnext)
			f->uidnext = f->ul.uidnext;
		if (f->last_uid + 1 > f->uidnext)
			f->uidnext = f->last_uid + 1;
		count_recent(f);
		if (y.locked)
			index_write(f, &y);
	}
	fill_changes(f, ch, count_before, last_before);
	sync_free(&y);
	if (rc == 0 && f->uidvalidity == 0)
		rc = ms_fail(f->s, EAGAIN, "%s: no UIDVALIDITY yet", f->name);
	return rc;
}
