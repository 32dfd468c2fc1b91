/*
 * mailstore.h: a user's Maildir++ store as the IMAP and POP3 sessions see it (issues 6, 7;
 * DESIGN.md §5), compatible with Dovecot's files so a mailbox moves between the two with
 * its UIDs, flags and keywords intact:
 *
 *   ROOT/                     INBOX (cur/ new/ tmp/)
 *   ROOT/.Sent, .Lists.Work   folders: Maildir++ names, hierarchy separator '.', names in
 *                             modified UTF-7 on disk exactly as on the IMAP wire
 *   dovecot-uidlist           per folder, version 3: "3 V<uidvalidity> N<uidnext> G<guid>"
 *                             then "<uid> [:<basename>|other fields] :<basename>" lines
 *   dovecot-uidlist.lock      dot-lock while it is rewritten (Dovecot's protocol)
 *   dovecot-keywords          per folder: "<index> <name>" lines; keyword i is the letter
 *                             'a'+i in the ":2," flags of a file name
 *   subscriptions             Dovecot's format (version line, then one name per line)
 *   maildirsize               Maildir++ quota (lib/maildir_quota.c)
 *   postern-index             Postern's own cache per folder: uid, file name, sizes,
 *                             internal date, modseq; rebuildable from the above at any time
 *
 * Flags live in the file name (":2,DFRST" + keyword letters, sorted). \Recent is not
 * stored: a session that moves a file from new/ to cur/ owns its \Recent (RFC 3501 says
 * one session sees it). INTERNALDATE is the file's mtime (Dovecot's choice). RFC822.SIZE is
 * W= from the name (CRLF size) or computed once and cached.
 *
 * Concurrency: several sessions and deliveries share a folder. Deliveries only add files
 * to new/. Sessions take the uidlist dot-lock for the short time they assign UIDs or
 * rewrite the list; a file another session renamed (flag change) or removed (expunge) is
 * found again or reported expunged by the next mstore_sync. Nothing here ever follows a
 * symbolic link or leaves ROOT: names are validated (no "/", no "..", no leading '.' in a
 * component, no control characters, bounded length).
 *
 * Errors: functions return 0 or -1 with errno and a message in the store's error buffer
 * (mstore_error); ENOENT for a folder that does not exist, EEXIST, ENOTEMPTY, EDQUOT
 * (over quota), EINVAL (bad name).
 */
#ifndef POSTERN_MAILSTORE_H
#define POSTERN_MAILSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define MS_NAME_MAX		512	/* a folder name (mUTF-7), without the leading '.' */
#define MS_MAX_KEYWORDS		26	/* Dovecot's letters a..z */
#define MS_KEYWORD_MAX		100	/* one keyword's length */

/* System flags (bits). */
#define MSF_SEEN	0x01
#define MSF_ANSWERED	0x02
#define MSF_FLAGGED	0x04
#define MSF_DELETED	0x08
#define MSF_DRAFT	0x10
#define MSF_RECENT	0x20	/* never stored; set in this session's view only */

struct mstore;
struct mfolder;

/* ---- the store ------------------------------------------------------------------------- */

/* Open the Maildir at root (an absolute path: "/Maildir" in a session's chroot); it is
 * created with cur/ new/ tmp/ if missing. NULL on error (errno, err). */
struct mstore *mstore_open(const char *root, char *err, size_t errlen);
void mstore_close(struct mstore *s);
const char *mstore_error(const struct mstore *s);

/* Folder names are IMAP names with '.' as the separator; "INBOX" (any case) is the root. */
bool mstore_name_valid(const char *name);

/* Every folder, INBOX first, then sorted by name; *names is a heap array of heap strings
 * (free with mstore_names_free). Includes \Noselect parents implied by children? No: only
 * folders that exist on disk; callers derive \HasChildren. */
int mstore_list(struct mstore *s, char ***names, size_t *n);
void mstore_names_free(char **names, size_t n);
int mstore_create(struct mstore *s, const char *name);		/* and missing parents */
int mstore_delete(struct mstore *s, const char *name);		/* INBOX: EINVAL */
int mstore_rename(struct mstore *s, const char *from, const char *to);	/* with children;
								 * INBOX moves its mail */
int mstore_subscriptions(struct mstore *s, char ***names, size_t *n);
int mstore_subscribe(struct mstore *s, const char *name, bool on);

/* The user's quota from the user database (authd); it wins over the limits written in
 * maildirsize, as for the delivery agent. 0 and 0 (the default): maildirsize's own limits. */
void mstore_set_quota(struct mstore *s, uint64_t bytes, uint64_t msgs);
/* Quota from maildirsize: used and limit in bytes and messages (0 limit = none). */
int mstore_quota(struct mstore *s, uint64_t *bytes, uint64_t *bytes_limit, uint64_t *msgs,
		 uint64_t *msgs_limit);

/* ---- a folder -------------------------------------------------------------------------- */

struct mmsg {
	uint32_t uid;
	unsigned flags;			/* MSF_* */
	uint32_t keywords;		/* bit i = keyword i of the folder */
	uint64_t modseq;		/* CONDSTORE: last change of flags */
	uint64_t size;			/* RFC822.SIZE: bytes with CRLF line ends */
	uint64_t file_size;		/* bytes on disk (LF line ends) */
	time_t internal_date;		/* 0 until mfolder_load_date() learnt it */
	const char *file;		/* current base name, valid until the next sync */
};

/* What a sync saw since the last one, for untagged responses. */
struct mfolder_changes {
	uint32_t *expunged_seqs;	/* in the order to report them (descending works) */
	size_t nexpunged;
	uint32_t *flag_changed_seqs;	/* after the expunges */
	size_t nflag_changed;
	uint32_t exists, recent;	/* the new totals */
	bool exists_changed, uidvalidity_changed;
};

/* Open a folder; readonly (EXAMINE) never moves new/ to cur/ and never writes. Messages
 * seen in new/ by a read-write open are moved to cur/ and get MSF_RECENT in this view. */
struct mfolder *mfolder_open(struct mstore *s, const char *name, bool readonly);
void mfolder_close(struct mfolder *f);
uint32_t mfolder_uidvalidity(const struct mfolder *f);
uint32_t mfolder_uidnext(const struct mfolder *f);
uint64_t mfolder_highestmodseq(const struct mfolder *f);
uint32_t mfolder_count(const struct mfolder *f);
/* Message by sequence number 1..count; NULL out of range. */
const struct mmsg *mfolder_msg(const struct mfolder *f, uint32_t seq);
/* Make sure message seq's internal_date is known: a first open does not stat() every file
 * (the size is in its name), so the date is read when a client first asks for it (FETCH
 * INTERNALDATE, SEARCH BEFORE/ON/SINCE, a COPY that must copy bytes) and kept in
 * postern-index by the next sync. Falls back to the delivery time in the file name when the
 * file is gone. */
void mfolder_load_date(struct mfolder *f, uint32_t seq);
/* Sequence number of a UID, or 0. */
uint32_t mfolder_seq_of_uid(const struct mfolder *f, uint32_t uid);
/* The folder's keyword names (index = bit). */
size_t mfolder_keywords(const struct mfolder *f, const char *const **names);
/* Index of a keyword, adding it (and writing dovecot-keywords) when create; -1 if unknown
 * or the table is full. */
int mfolder_keyword_index(struct mfolder *f, const char *name, bool create);

/* Look at the disk again: new files get UIDs (and move to cur/ unless readonly), vanished
 * ones are expunged from the view, renamed ones update their flags. ch may be NULL. */
int mfolder_sync(struct mfolder *f, struct mfolder_changes *ch);
void mfolder_changes_free(struct mfolder_changes *ch);

/* Open a message for reading (O_RDONLY|O_NOFOLLOW), finding it again if it was renamed.
 * -1 with errno ENOENT if it has been expunged meanwhile. */
int mfolder_msg_open(struct mfolder *f, uint32_t seq);

/* Set the flags and keywords of message seq (renames its file; modseq goes up). */
int mfolder_set_flags(struct mfolder *f, uint32_t seq, unsigned flags, uint32_t keywords);

/* The same for many messages under one uidlist lock and with one index append (a STORE on
 * a range, POP3's QUIT): each entry's err is 0 or an errno (ENOENT: expunged meanwhile;
 * EINVAL: no such message or keyword). -1 only when nothing could be done (read-only view,
 * lock not taken: every err set); the store's error names the first failure. */
struct mfolder_flag_set {
	uint32_t seq;
	unsigned flags;
	uint32_t keywords;
	int err;		/* out */
};
int mfolder_set_flags_many(struct mfolder *f, struct mfolder_flag_set *sets, size_t n);

/* Remove every message with MSF_DELETED (uids: when not NULL, only those in the sorted
 * list, for UID EXPUNGE). The expunged sequence numbers are reported through ch as by
 * sync. */
int mfolder_expunge(struct mfolder *f, const uint32_t *uids, size_t nuids,
		    struct mfolder_changes *ch);

/* Append a message (data with CRLF or LF line ends; stored with LF) with flags, keywords
 * (indexes in the target folder) and internal date (0 = now). Durable (fsync) before it
 * returns; *uid is its UID (UIDPLUS) and *uidvalidity the folder's. EDQUOT over quota. */
int mstore_append(struct mstore *s, const char *folder, const void *data, size_t len,
		  unsigned flags, const char *const *keywords, size_t nkeywords,
		  time_t internal_date, uint32_t *uidvalidity, uint32_t *uid);

/* Copy message seq of f into folder (hard link when possible) keeping flags and keywords
 * (by name); *uid gets the new UID. */
int mfolder_copy(struct mfolder *f, uint32_t seq, const char *folder, uint32_t *uidvalidity,
		 uint32_t *uid);

/* Status of a folder without selecting it (STATUS, LIST-STATUS). */
struct mstatus {
	uint32_t messages, recent, uidnext, uidvalidity, unseen;
	uint64_t highestmodseq, size;
};
int mstore_status(struct mstore *s, const char *name, struct mstatus *st);

/* The folder's directory as a path usable by this process (for inotify in IMAP IDLE):
 * e.g. "/Maildir/.Sent"; its new/ and cur/ are below it. */
const char *mfolder_path(const struct mfolder *f);

#endif
