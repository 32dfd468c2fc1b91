/*
 * mailstore_priv.h: what the lib/mailstore*.c files share and callers of mailstore.h do
 * not see: the store and folder structures, Dovecot's dot-lock protocol, dovecot-uidlist,
 * dovecot-keywords, the postern-index cache, and a counter of message-file accesses that
 * the unit tests read to prove a cached re-open touches no message file.
 */
#ifndef POSTERN_MAILSTORE_PRIV_H
#define POSTERN_MAILSTORE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "mailstore.h"

#define MS_UIDLIST		"dovecot-uidlist"
#define MS_UIDLIST_TMP		"dovecot-uidlist.tmp"	/* Dovecot's name, under the lock */
#define MS_KEYWORDS		"dovecot-keywords"
#define MS_INDEX		"postern-index"
#define MS_INDEX_TMP		"postern-index.tmp"
#define MS_SUBSCRIPTIONS	"subscriptions"
#define MS_UIDVALIDITY		"dovecot-uidvalidity"
#define MS_TRASH_DIR		".DOVECOT-TRASHED"	/* Dovecot's name for a folder being deleted */

/* Dovecot's dot-lock timings (maildir-uidlist.h, subscription-file.c). */
#define MS_UIDLIST_STALE_SECS	120
#define MS_UIDLIST_WAIT_SECS	(MS_UIDLIST_STALE_SECS + 2)
#define MS_SUBS_STALE_SECS	30
#define MS_SUBS_WAIT_SECS	120
/* A lock younger than this is not checked for a dead owner (Dovecot: STALE_PID_CHECK_SECS). */
#define MS_LOCK_PID_CHECK_SECS	2

/* Largest metadata files read into memory. */
#define MS_UIDLIST_MAX		(256u << 20)
#define MS_INDEX_MAX		(512u << 20)
#define MS_SMALL_FILE_MAX	(1u << 20)

#define MS_DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define MS_FILE_FLAGS	(O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)

/* Test hooks: message files this process opened or stat'ed, and scans of a folder's
 * cur/ and new/ (mailstore_sync.c). */
extern unsigned long mstore_msg_file_ops;
extern unsigned long mstore_dir_scans;
/* ...and bytes of dovecot-uidlist read (mailstore_uidlist.c). */
extern unsigned long mstore_uidlist_bytes;

struct mstore {
	int root_fd;
	char *root;
	char host[256];		/* gethostname(), for lock files ("pid:host") */
	uint64_t quota_bytes, quota_msgs;	/* limits from the caller, 0 = from maildirsize */
	char err[256];
	/* The uidlist of the folder last appended or copied to, kept so that the next APPEND
	 * there reads only the lines added since (ms_uidlist_refresh), not the whole list. */
	char *append_folder;
	struct ms_uidlist *append_ul;
};

/* Set errno to e and the store's error message; returns -1 for `return ms_fail(...)`. */
int ms_fail(struct mstore *s, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The error of a failed system call on a named object, errno kept. */
int ms_fail_errno(struct mstore *s, const char *what, const char *name);

/* Is name INBOX (any case)? */
bool ms_is_inbox(const char *name);
/* The folder's directory below the root (O_NOFOLLOW); -1 with errno (ENOENT). */
int ms_open_folder_dir(struct mstore *s, const char *name);

/* close() keeping errno. */
void ms_close(int fd);
/* Read a whole file below dirfd (O_NOFOLLOW, regular files only) into b; st gets its
 * stat. -1 with errno (ENOENT, EFBIG over max). */
int ms_read_file(int dirfd, const char *name, size_t max, struct buf *b, struct stat *st);
/* Write data to tmpname below dirfd, fsync, rename over name. 0 or -1 with errno. */
int ms_write_replace(int dirfd, const char *tmpname, const char *name, const void *data,
		     size_t len);
/* The same with the file's first bytes (head) apart from the rest, to spare a copy. */
int ms_write_replace2(int dirfd, const char *tmpname, const char *name, const void *head,
		      size_t headlen, const void *data, size_t len);
bool ms_ts_eq(struct timespec a, struct timespec b);

/* ---- subscriptions (mailstore_subs.c) ----------------------------------------------- */

/* Rename the subscriptions of from and its children to to (after a folder rename). */
int ms_subs_rename(struct mstore *s, const char *from, const char *to);

/* ---- dot-locks (mailstore_lock.c), Dovecot's file-dotlock protocol -------------------- */

struct ms_lock {
	int dirfd;		/* borrowed */
	int fd;			/* the lock file while held, else -1 */
	dev_t dev;
	ino_t ino;
	char target[64];	/* the protected file, e.g. "dovecot-uidlist" */
	char path[72];		/* target + ".lock" */
};

/* Create TARGET.lock below dirfd with O_EXCL holding "pid:host", waiting up to wait_secs
 * (0: try once). A lock whose owner is a dead process on this host, or that and the target
 * have not changed for stale_secs, is overridden as Dovecot does. 0, or -1 with errno
 * (EAGAIN on timeout). */
int ms_lock_take(struct ms_lock *l, int dirfd, const char *target, const char *host,
		 int stale_secs, int wait_secs);
/* Is the lock still ours (not overridden as stale by someone else)? */
bool ms_lock_held(const struct ms_lock *l);
/* Refresh the lock's mtime so a long job is not taken for stale. */
void ms_lock_touch(struct ms_lock *l);
void ms_lock_release(struct ms_lock *l);
/* Write data into the lock file (with that mtime unless NULL), fsync it and rename it over
 * the target: the update and the unlock in one step (Dovecot's file_dotlock_replace). The
 * lock is released either way. */
int ms_lock_replace(struct ms_lock *l, const void *data, size_t len,
		    const struct timespec *mtime);

/* ---- string -> uint32 map (mailstore_uidlist.c) -------------------------------------- */

struct ms_strmap {
	/* The hash is kept so that a probe compares keys only when it matches. */
	struct ms_strmap_slot { const char *key; uint32_t len, value, hash; } *slots;
	size_t nslots, used;
};

void ms_strmap_init(struct ms_strmap *m, size_t expected);
/* Make room for `total` keys at once (a folder's first numbering adds them all). */
void ms_strmap_reserve(struct ms_strmap *m, size_t total);
void ms_strmap_free(struct ms_strmap *m);
/* Insert or replace; key must stay valid as long as the map. The old value, or 0. */
uint32_t ms_strmap_put(struct ms_strmap *m, const char *key, size_t len, uint32_t value);
/* The value, or 0 if absent (values are never 0). */
uint32_t ms_strmap_get(const struct ms_strmap *m, const char *key, size_t len);

/* ---- dovecot-uidlist (mailstore_uidlist.c) ------------------------------------------ */

struct ms_uidrec {
	uint32_t uid;
	char *base;		/* the file name up to ':' */
	char *ext;		/* extension fields ("W123 P..."), kept verbatim, or NULL */
};

struct ms_uidlist {
	bool exists;		/* read from a valid file */
	uint32_t uidvalidity, uidnext;
	char guid[33];		/* mailbox GUID, 32 hex digits */
	char *hdr_ext;		/* other header fields, kept verbatim, or NULL */
	struct ms_uidrec *recs;	/* ascending UIDs */
	size_t n, cap;
	struct ms_strmap map;	/* base -> uid */
	bool map_stale;		/* records were added without the map (built when needed) */
	dev_t dev;		/* identity of the file read */
	ino_t ino;
	off_t size;
	struct timespec mtime;
	/* Where the complete lines read so far end, the bytes just before (to recognise the
	 * file when it has only grown) and the header's version: what ms_uidlist_refresh()
	 * needs to read only the lines appended since. */
	off_t parsed;
	char tail[32];
	size_t tail_len;
	int version;
};

void ms_uidlist_free(struct ms_uidlist *ul);
/* (Re)read dirfd's dovecot-uidlist. A missing or corrupt file gives exists = false (and
 * 0). -1 with errno on I/O errors. */
int ms_uidlist_read(int dirfd, struct ms_uidlist *ul);
/* The same, but when the file has only grown since ul was read (as appends make it), only
 * the new lines are read: a session that sees a delivery into a folder of 100,000
 * messages reads one line, not the whole list. */
int ms_uidlist_refresh(int dirfd, struct ms_uidlist *ul);
/* Has the file changed (or appeared, or vanished) since it was read? */
bool ms_uidlist_changed(int dirfd, const struct ms_uidlist *ul);
/* 0 if unknown. */
uint32_t ms_uidlist_uid(struct ms_uidlist *ul, const char *base, size_t len);
/* Append a record for a new UID (uid >= uidnext), bumping uidnext. */
void ms_uidlist_add(struct ms_uidlist *ul, uint32_t uid, const char *base, size_t len);
/* The same unless base already has a record: then nothing changes and false is returned
 * (one hash lookup for both, which matters when a first open numbers 100,000 files). */
bool ms_uidlist_add_new(struct ms_uidlist *ul, uint32_t uid, const char *base, size_t len);
/* Append a record the caller knows to be new (a folder's first numbering, de-duplicated
 * by sorting), leaving the map to be built when it is first needed: a client opening a
 * folder of 100,000 messages for the first time does not wait for it. */
void ms_uidlist_add_unmapped(struct ms_uidlist *ul, uint32_t uid, const char *base, size_t len);
/* Keep only the records for which keep(uid, base) says so. */
void ms_uidlist_filter(struct ms_uidlist *ul, bool (*keep)(void *ctx, const struct ms_uidrec *r),
		       void *ctx);
/* Start a new list (a new UIDVALIDITY from the store's counter, UID 1, a random GUID). */
int ms_uidlist_init_new(struct mstore *s, struct ms_uidlist *ul);
/* Write it (dovecot-uidlist.tmp, fsync, rename). The caller holds the uidlist lock. */
int ms_uidlist_write(int dirfd, struct ms_uidlist *ul);
/* Add records [from, n) at the end of the file instead of rewriting it (as Dovecot does:
 * the header's N may then lag, readers take the larger). Falls back to a rewrite when the
 * file is not the one the list was read from. Durable (fdatasync) on return. */
int ms_uidlist_append(int dirfd, struct ms_uidlist *ul, size_t from);
/* The delivery time Maildir names start with: "<secs>.M<usecs>..." (missing parts 0). */
void ms_name_time(const char *name, uint64_t *secs, uint64_t *usecs);

/* ---- dovecot-keywords (mailstore_keywords.c) ---------------------------------------- */

struct ms_keywords {
	char *names[MS_MAX_KEYWORDS];	/* NULL: index unused */
	size_t count;			/* 1 + highest used index */
	bool exists;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

void ms_keywords_free(struct ms_keywords *kw);
/* Re-read the file if it changed. 1 if the table changed, 0 if not, -1 on I/O error. */
int ms_keywords_refresh(int dirfd, struct ms_keywords *kw);
/* Index of name (case-insensitive) or -1. */
int ms_keywords_find(const struct ms_keywords *kw, const char *name);
bool ms_keyword_valid(const char *name);
/* Write the table to dirfd's dovecot-keywords, its mtime past the old file's. The caller
 * holds that folder's uidlist lock. */
int ms_keywords_write(int dirfd, struct ms_keywords *kw, const char *host);
/* Give name the first index not named and not in `avoid` (letters seen on files without a
 * name) and write the file. The caller holds the uidlist lock. Index, or -1 with errno
 * (ENOSPC: full). */
int ms_keywords_add(int dirfd, struct ms_keywords *kw, const char *name, uint32_t avoid,
		    const char *host);

/* ---- flags in file names (mailstore_keywords.c) ------------------------------------- */

/* What the ":2," letters of a file name mean to a folder. */
struct ms_flags {
	unsigned flags;		/* MSF_* */
	uint32_t keywords;	/* named keyword letters */
	uint32_t unknown_kw;	/* keyword letters without a name: kept as they are */
	uint32_t other;		/* other upper-case letters (P...): kept as they are */
};

void ms_flags_parse(const char *letters, const struct ms_keywords *kw, struct ms_flags *out);
/* The letters for fl (sorted as Dovecot writes them) into out[53]. */
void ms_flags_letters(const struct ms_flags *fl, char *out);
bool ms_flags_eq(const struct ms_flags *a, const struct ms_flags *b);

/* ---- postern-index (mailstore_index.c) ---------------------------------------------- */

struct ms_idxrec {
	uint32_t uid;
	char dir;		/* 'c' cur/, 'n' new/ */
	uint64_t modseq, size, file_size;
	int64_t mtime;
	char *file;
};

/* What a trusted state line says: the records were exactly cur/ and new/ when both
 * directories and the uidlist had these identities. */
struct ms_idxstate {
	bool valid;
	uint32_t uidnext;
	ino_t ul_ino;
	off_t ul_size;
	struct timespec ul_mtime, cur_mtime, new_mtime;
};

struct ms_index {
	bool exists;
	uint32_t uidvalidity;
	uint64_t highestmodseq;
	struct ms_idxstate state;	/* the last state line */
	struct ms_idxrec *recs;		/* ascending UIDs */
	size_t n, cap, live;		/* live: records not expunged */
	size_t lines;			/* lines in the file: compaction is due when >> live */
	dev_t dev;			/* the file as far as it was read */
	ino_t ino;
	off_t off;
};

void ms_index_free(struct ms_index *ix);
/* Read the whole file, or only what was appended since the last read when it is the same
 * file. A missing or foreign (other UIDVALIDITY; 0 takes the file's) file gives an empty
 * index. 1 if anything was read, 0 if not, -1 on I/O error. */
int ms_index_refresh(int dirfd, struct ms_index *ix, uint32_t uidvalidity);
struct ms_idxrec *ms_index_get(const struct ms_index *ix, uint32_t uid);
/* Apply lines to ix and append them to the file (rewriting it whole when it is missing,
 * was replaced since we read it, or has grown to more than twice its live content). The
 * caller holds the uidlist lock and refreshed ix under it. */
int ms_index_append(int dirfd, struct ms_index *ix, const struct buf *lines);
/* Format a record / expunge / state line into b. */
int ms_index_fmt_rec(struct buf *b, const struct ms_idxrec *r);
int ms_index_fmt_expunge(struct buf *b, uint32_t uid);
int ms_index_fmt_state(struct buf *b, uint64_t highestmodseq, const struct ms_idxstate *st);

/* ---- folders (mailstore_folder.c, mailstore_sync.c) -------------------------------- */

struct ms_msg {
	struct mmsg m;
	char *file;		/* current file name; m.file points here */
	char dir;		/* 'c' cur/ or 'n' new/ */
	bool dirty;		/* flags changed, not reported yet */
	bool date_learnt;	/* internal_date read since the index last heard of it */
	uint32_t base_len;
	struct ms_flags fl;
};

struct mfolder {
	struct mstore *s;
	char *name;
	bool readonly;
	bool frozen;		/* UIDVALIDITY changed under us: nothing more to sync */
	int dir_fd, cur_fd, new_fd;
	uint32_t uidvalidity, uidnext, last_uid;
	uint64_t highestmodseq;
	struct ms_uidlist ul;	/* records valid only when ul_loaded */
	bool ul_loaded;
	struct ms_index ix;
	struct ms_keywords kw;
	const char *kw_list[MS_MAX_KEYWORDS];	/* what mfolder_keywords() hands out */
	struct ms_msg *msgs;	/* ascending UIDs; seq = index + 1 */
	uint32_t count, cap, recent;
	uint32_t dates_learnt;	/* messages with date_learnt set */
	struct ms_strmap bases;	/* base name -> uid of the view's messages */
	bool bases_dirty;
	bool dirs_known;	/* the view is what cur/ and new/ held at these mtimes */
	struct timespec cur_mtime, new_mtime;
};

/* The keyword table changed: refresh the list mfolder_keywords() hands out. */
void ms_folder_keywords_changed(struct mfolder *f);
/* Parse the flag letters of a file name for this folder. */
void ms_msg_parse_flags(struct mfolder *f, struct ms_msg *m);
/* Give message m the flags fl by renaming its file (into cur/ when to_cur), finding it
 * again first if someone renamed it. 0, or -1 with errno (ENOENT: expunged). */
int ms_msg_rename(struct mfolder *f, struct ms_msg *m, const struct ms_flags *fl, bool to_cur);
/* Find m's file again by its base name (cur/ then new/). 1 found, 0 gone, -1 error. */
int ms_msg_find(struct mfolder *f, struct ms_msg *m);
/* Take the folder's uidlist lock (Dovecot's timings). */
int ms_folder_lock(struct mfolder *f, struct ms_lock *l);
/* The mod-sequence the index has for m with its current flags, or 0. */
uint64_t ms_index_modseq(const struct mfolder *f, const struct ms_msg *m);
/* The mod-sequence a change of m gets: the index's when it already recorded these flags
 * (another session did the work), else a new one. *fresh says which. */
uint64_t ms_pick_modseq(struct mfolder *f, const struct ms_msg *m, bool *fresh);
/* Its index record line into b. */
int ms_msg_index_line(struct buf *b, const struct ms_msg *m);
/* Look at the disk (mailstore_sync.c). gone: UIDs whose files we just removed. */
int ms_sync(struct mfolder *f, struct mfolder_changes *ch, const uint32_t *gone, size_t ngone);
uint32_t ms_seq_of_uid(const struct mfolder *f, uint32_t uid);

#endif
