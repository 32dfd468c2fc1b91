/*
 * maildir.h: the Maildir code shared by the virtual delivery agent and the IMAP/POP3
 * sessions: creating a Maildir and its Maildir++ folders without ever following a symlink,
 * Dovecot-compatible delivery (tmp/ -> fsync -> new/, names `time.M<usec>P<pid>Q<n>.host,
 * S=<size>,W=<vsize>`, LF line endings on disk), Maildir++ quota in `maildirsize`, and the
 * parsing and rewriting of file names (sizes and the ":2," flags).
 *
 * Every function that takes a `maildir_fd` wants a directory descriptor of the Maildir root
 * (the directory holding cur/ new/ tmp/), as returned by maildir_create() or maildir_open().
 * Sub-directories are always opened relative to it with O_NOFOLLOW.
 */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest file name we create or accept (NAME_MAX on Linux). */
#define MAILDIR_NAME_MAX 255
/* Longest Maildir++ folder name on disk, leading '.' included. */
#define MAILDIR_FOLDER_MAX 200
/* The Maildir++ quota file and its size rule: at this size or above it is recalculated. */
#define MAILDIR_QUOTA_FILE "maildirsize"
#define MAILDIR_QUOTA_MAX_FILE 5120
/* An over-quota maildirsize older than this is not trusted (recalculated). */
#define MAILDIR_QUOTA_STALE_SECS (15 * 60)

/* ---- layout -------------------------------------------------------------------------- */

/* Create PATH/{cur,new,tmp} (PATH itself too if missing; its parents must exist). Every path
 * component is opened with O_NOFOLLOW|O_DIRECTORY, so a symlink anywhere in PATH fails (ELOOP
 * or ENOTDIR); ".." components are refused (EINVAL). Directories that already exist are
 * accepted; the ones created get `mode` exactly (not masked by umask) and, unless uid is
 * (uid_t)-1, owner uid:gid. Returns a descriptor of the Maildir directory, or -1 with errno. */
int maildir_create(const char *path, uid_t uid, gid_t gid, mode_t mode);
/* Open an existing Maildir root with the same rules; -1 with errno. */
int maildir_open(const char *path);

/* Is `folder` a safe Maildir++ folder name: ".Name" or ".Name.Sub", no '/', no empty or
 * "." / ".." component, no control characters, at most MAILDIR_FOLDER_MAX bytes. */
int maildir_folder_valid(const char *folder);
/* Create the folder (a Maildir with cur/new/tmp and an empty `maildirfolder` marker) inside
 * the Maildir, completing a half-created one. Mode and, when running as root, owner are
 * taken from the Maildir root. 0, or -1 with errno (EINVAL for an invalid name). */
int maildir_create_folder(int maildir_fd, const char *folder);
/* Descriptor of an existing folder's directory, or -1 with errno (ENOENT if missing). */
int maildir_open_folder(int maildir_fd, const char *folder);

/* ---- delivery ------------------------------------------------------------------------ */

struct maildir_delivery {
	char name[MAILDIR_NAME_MAX + 1];	/* final file name in new/ */
	uint64_t size;				/* S=: bytes on disk (LF line endings) */
	uint64_t vsize;				/* W=: size with CRLF line endings */
};

/* Deliver one message into new/: `prepend` (header lines built by the caller, CRLF or LF)
 * followed by `len` bytes of msg_fd read with pread from offset `off`, with every CRLF stored
 * as LF. The file is written in tmp/ (O_EXCL, 0600), fsynced, renamed into new/ and new/ is
 * fsynced. hostname NULL means gethostname(); '/' and ':' in it are escaped as Dovecot does.
 * Returns 0, or -1 with errno (ENOSPC, EDQUOT, EIO if msg_fd ends early, ...) and nothing
 * left behind in tmp/ or new/. */
int maildir_deliver(int maildir_fd, int msg_fd, off_t off, uint64_t len, const char *prepend,
		    size_t prepend_len, const char *hostname, struct maildir_delivery *out);
/* The same without fsync of new/, for a caller that moves the file on (IMAP APPEND into
 * cur/) and makes that rename durable: one directory fsync per message instead of two. */
int maildir_deliver_staged(int maildir_fd, int msg_fd, off_t off, uint64_t len,
			   const char *hostname, struct maildir_delivery *out);

/* ---- file names ---------------------------------------------------------------------- */

/* A parsed message file name. Pointers point into the parsed string. */
struct maildir_name {
	const char *name;
	size_t base_len;	/* bytes before ':' (what dovecot-uidlist stores) */
	size_t uniq_len;	/* bytes before the first ',' or ':' (the unique part) */
	int has_size, has_vsize;
	uint64_t size, vsize;	/* S= and W= when present */
	int has_info;		/* the name has ":2," */
	char flags[53];		/* the flag letters, sorted, each once: "DFPRST" then "a".."z" */
};

/* Standard flags (RFC 3501 system flags as Maildir letters). */
#define MAILDIR_FLAG_DRAFT 'D'
#define MAILDIR_FLAG_FLAGGED 'F'
#define MAILDIR_FLAG_PASSED 'P'
#define MAILDIR_FLAG_REPLIED 'R'
#define MAILDIR_FLAG_SEEN 'S'
#define MAILDIR_FLAG_TRASHED 'T'

/* Parse a name from cur/ or new/. Refuses (-1, EINVAL) an empty name, one longer than
 * MAILDIR_NAME_MAX, one with '/' or starting with '.'. A malformed S= or W= value is not an
 * error: has_size/has_vsize stay 0 (the size then comes from stat, as Dovecot does).
 * Characters after ":2," that are not letters are ignored. */
int maildir_parse_name(const char *name, struct maildir_name *out);
/* Does the parsed name carry flag letter c. */
int maildir_name_has_flag(const struct maildir_name *n, char c);
/* Write into out[outsize] the name with its info replaced by ":2," and the letters of
 * `flags` (any order, duplicates allowed; only A-Z and a-z are accepted) sorted as Dovecot
 * writes them. -1 with errno EINVAL (bad name or flag) or ENAMETOOLONG. */
int maildir_flags_set(const char *name, const char *flags, char *out, size_t outsize);

/* ---- Maildir++ quota ----------------------------------------------------------------- */

struct maildir_quota {
	uint64_t bytes_limit, count_limit;	/* effective limits; 0 means none */
	uint64_t bytes_used, count_used;	/* current usage */
	int caller_limit;	/* the limits came from maildir_quota_set_limit() */
	int enforced;		/* some limit applies (else check always says it fits) */
	int recalculated;	/* the last read or recalc scanned the Maildir */
};

/* Start with no limits and no usage. */
void maildir_quota_init(struct maildir_quota *q);
/* The limits from the user database (authd's quota). Non-zero limits win over the ones in
 * maildirsize, whose header is then rewritten; both zero means "take them from the file". */
void maildir_quota_set_limit(struct maildir_quota *q, uint64_t bytes, uint64_t count);
/* Read maildirsize into q. The Maildir is rescanned (and the file rewritten) when the file
 * is missing while a limit is set by the caller, is MAILDIR_QUOTA_MAX_FILE bytes or more,
 * is malformed or sums below zero, has limits that differ from the caller's, or says "over
 * quota" while holding more than one usage line or being older than 15 minutes. A missing
 * file with no caller limit means no quota. 0, or -1 with errno. */
int maildir_quota_read(int maildir_fd, struct maildir_quota *q);
/* 1 if adding add_bytes in add_count messages stays within every limit, else 0. */
int maildir_quota_check(const struct maildir_quota *q, uint64_t add_bytes, uint64_t add_count);
/* Append "bytes count\n" to maildirsize with one O_APPEND write (negative for removals).
 * Does nothing (returns 0) when the file does not exist. 0, or -1 with errno. */
int maildir_quota_add(int maildir_fd, int64_t bytes, int64_t count);
/* Scan cur/ and new/ of the Maildir and of every folder (all folders count, Trash too; sizes
 * from S= when the name has it, else lstat) into q, and atomically replace maildirsize with
 * q's limits and that usage (written via tmp/ and rename). If the Maildir changed during the
 * scan the file is not written (the next read recalculates again). 0, or -1 with errno. */
int maildir_quota_recalc(int maildir_fd, struct maildir_quota *q);

#endif
