/*
 * aliases.h: aliases(5) files as sendmail and Postfix read them, parsed from the text itself
 * (no .db, no newaliases). The local delivery agent reads aliases_file through this; `postern
 * check` may use it to report file:line problems.
 *
 *   # a comment line (its first non-blank character is '#')
 *   name: target, target, ...
 *       target, ...            a line starting with white space continues the entry
 *   "name with space": "|/usr/bin/cmd -a x", /var/log/mail.copy, :include:/etc/mail/staff
 *
 * Names are case-insensitive (stored lower-case). Targets are separated by commas; a part in
 * double quotes may hold commas, colons and spaces (\" and \\ escape inside quotes); white
 * space around a target is dropped. Blank and comment lines are skipped and do not end an
 * entry. A malformed entry is reported through the warn callback with its line number and
 * skipped; the rest of the file still counts. The first of two entries with the same name
 * wins (the second is reported), as postalias does.
 *
 * Every input is bounded: the file (ALIASES_MAX_FILE), one entry with its continuation lines
 * (ALIASES_MAX_ENTRY), a name (ALIASES_MAX_NAME), a target (ALIASES_MAX_TARGET) and the
 * targets of one entry (ALIASES_MAX_TARGETS).
 */
#ifndef POSTERN_ALIASES_H
#define POSTERN_ALIASES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define ALIASES_MAX_FILE	(64u << 20)	/* bytes of one aliases or :include: file */
#define ALIASES_MAX_ENTRY	(1u << 20)	/* bytes of one entry with its continuations */
#define ALIASES_MAX_NAME	256
#define ALIASES_MAX_TARGET	4096		/* a |command can be long */
#define ALIASES_MAX_TARGETS	10000		/* targets of one entry */

struct alias {
	char *name;		/* lower-case */
	char **target;		/* quotes removed, surrounding white space dropped */
	size_t ntarget;		/* >= 1 */
	unsigned line;		/* where the entry starts (1-based) */
};

struct aliases {
	struct alias *entry;	/* sorted by name, names unique */
	size_t n;
};

/* Called once per problem: the 1-based line and a message such as "missing ':'". */
typedef void aliases_warn_fn(void *arg, unsigned line, const char *msg);

/* Parse len bytes of aliases(5) text into out (which the caller frees with aliases_free).
 * Problems go to warn (may be NULL); the entries concerned are skipped. */
void aliases_parse(const char *text, size_t len, struct aliases *out, aliases_warn_fn *warn,
		   void *arg);
/* The entry for name (compared ignoring ASCII case), or NULL. */
const struct alias *aliases_find(const struct aliases *a, const char *name);
void aliases_free(struct aliases *a);

/* An :include: file: targets separated by commas or line ends, blank and '#' lines skipped,
 * quotes as above. On success *out holds *n heap strings (free with aliases_list_free);
 * malformed lines go to warn and are skipped. */
void aliases_parse_list(const char *text, size_t len, char ***out, size_t *n,
			aliases_warn_fn *warn, void *arg);
void aliases_list_free(char **list, size_t n);

/* What a target asks for; *value is the rest after the marker. */
enum alias_kind {
	ALIAS_ADDRESS,		/* user, user@domain: expanded further */
	ALIAS_NOEXPAND,		/* \user: that user's mailbox, no further alias lookup */
	ALIAS_COMMAND,		/* |command (value: the command) */
	ALIAS_FILE,		/* /path (value: the whole path, a trailing '/' = Maildir) */
	ALIAS_INCLUDE,		/* :include:/path (value: the path) */
};
enum alias_kind alias_target_kind(const char *target, const char **value);

/* ---- a file on disk, re-read when it changes -------------------------------------------- */

struct aliases_file {
	char *path;
	struct aliases tab;
	bool loaded;		/* a refresh succeeded at least once */
	bool present;		/* false: the file does not exist (an empty table) */
	bool trusted;		/* a regular file owned by root, not writable by group or other */
	uid_t uid;
	mode_t mode;
	dev_t dev;		/* identity of what tab was read from */
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

/* Nothing loaded yet; path is copied. */
void aliases_file_init(struct aliases_file *f, const char *path);
/* Make f match the file on disk: re-read it when its device, inode, size, mtime or ctime
 * (so also a chown or chmod) differ from what was read last. A missing file is an empty
 * table (present = false). 1 re-read, 0 unchanged, -1 cannot be read (errno; EFBIG when
 * over ALIASES_MAX_FILE, EINVAL when not a regular file): the old table is dropped and
 * the caller should defer. */
int aliases_file_refresh(struct aliases_file *f, aliases_warn_fn *warn, void *arg);
void aliases_file_free(struct aliases_file *f);

/* Read a whole regular file of at most max bytes (no FIFO, no device) with its fstat:
 * 0, or -1 with errno. *text is NUL-terminated and heap-allocated. */
int aliases_read_file(const char *path, size_t max, char **text, size_t *len,
		      struct stat *st);
/* Owned by root, regular, not writable by group or other: may name commands and files. */
bool aliases_stat_trusted(const struct stat *st);

#endif
