/*
 * mailstore_keywords.c: IMAP keywords and flags in Maildir file names, as Dovecot keeps
 * them (maildir-keywords.c, maildir-filename-flags.c). A folder's dovecot-keywords maps the
 * letters a..z of the ":2," flags to names, one "<index> <name>" line each. The file is
 * only written by a holder of the uidlist lock, through dovecot-keywords.lock and a rename,
 * and its mtime always grows by at least a second (Dovecot re-reads it on a change of the
 * mtime's seconds). System flags are D F R S T; any other letter, and a keyword letter the
 * file does not name, is kept as it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mailstore_priv.h"
#include "util.h"

void ms_keywords_free(struct ms_keywords *kw)
{
	for (size_t i = 0; i < MS_MAX_KEYWORDS; i++)
		free(kw->names[i]);
	memset(kw, 0, sizeof(*kw));
}

bool ms_keyword_valid(const char *name)
{
	size_t len = strnlen(name, MS_KEYWORD_MAX + 1);

	if (len == 0 || len > MS_KEYWORD_MAX || name[0] == '\\')
		return false;
	/* An IMAP atom: no specials, controls, spaces or 8-bit bytes. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

int ms_keywords_find(const struct ms_keywords *kw, const char *name)
{
	for (size_t i = 0; i < MS_MAX_KEYWORDS; i++)
		if (kw->names[i] != NULL && strcasecmp(kw->names[i], name) == 0)
			return (int)i;
	return -1;
}

/* Parse the file's lines into names[] (lines Dovecot would skip are skipped here too). */
static void parse_keywords(char *text, char *names[MS_MAX_KEYWORDS])
{
	char *save = NULL, *line, *sp, *end;
	long idx;

	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		sp = strchr(line, ' ');
		if (sp == NULL)
			continue;
		*sp = '\0';
		idx = strtol(line, &end, 10);
		if (end == line || *end != '\0' || idx < 0 || idx >= MS_MAX_KEYWORDS ||
		    !ms_keyword_valid(sp + 1) || names[idx] != NULL)
			continue;
		names[idx] = xstrdup(sp + 1);
	}
}

static void set_count(struct ms_keywords *kw)
{
	kw->count = 0;
	for (size_t i = 0; i < MS_MAX_KEYWORDS; i++)
		if (kw->names[i] != NULL)
			kw->count = i + 1;
}

/* Take the new table; 1 if it differs from the old one. */
static int replace_names(struct ms_keywords *kw, char *names[MS_MAX_KEYWORDS])
{
	int changed = 0;

	for (size_t i = 0; i < MS_MAX_KEYWORDS; i++) {
		if ((kw->names[i] == NULL) != (names[i] == NULL) ||
		    (names[i] != NULL && strcmp(kw->names[i], names[i]) != 0))
			changed = 1;
		free(kw->names[i]);
		kw->names[i] = names[i];
	}
	set_count(kw);
	return changed;
}

int ms_keywords_refresh(int dirfd, struct ms_keywords *kw)
{
	char *names[MS_MAX_KEYWORDS] = { 0 };
	struct stat st;
	struct buf b;

	if (fstatat(dirfd, MS_KEYWORDS, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return -1;
		kw->exists = false;
		kw->ino = 0;
		return replace_names(kw, names);
	}
	if (kw->exists && st.st_ino == kw->ino && st.st_size == kw->size &&
	    ms_ts_eq(st.st_mtim, kw->mtime))
		return 0;
	buf_init(&b, MS_SMALL_FILE_MAX);
	if (ms_read_file(dirfd, MS_KEYWORDS, MS_SMALL_FILE_MAX, &b, &st) < 0) {
		buf_free(&b);
		if (errno != ENOENT)
			return -1;
		kw->exists = false;
		return replace_names(kw, names);
	}
	if (b.len > 0 && memchr(b.data, '\0', b.len) == NULL)
		parse_keywords(b.data, names);
	buf_free(&b);
	kw->exists = true;
	kw->ino = st.st_ino;
	kw->size = st.st_size;
	kw->mtime = st.st_mtim;
	return replace_names(kw, names);
}

int ms_keywords_write(int dirfd, struct ms_keywords *kw, const char *host)
{
	struct timespec mtime = { .tv_sec = time(NULL), .tv_nsec = 0 };
	struct ms_lock l;
	struct buf b;
	struct stat st;
	int rc = 0;

	buf_init(&b, MS_SMALL_FILE_MAX);
	for (size_t i = 0; i < MS_MAX_KEYWORDS && rc == 0; i++)
		if (kw->names[i] != NULL)
			rc = buf_printf(&b, "%zu %s\n", i, kw->names[i]);
	if (fstatat(dirfd, MS_KEYWORDS, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    mtime.tv_sec <= st.st_mtime)
		mtime.tv_sec = st.st_mtime + 1;
	/* We hold the uidlist lock, so a keywords lock can only be a leftover (Dovecot too). */
	(void)unlinkat(dirfd, MS_KEYWORDS ".lock", 0);
	if (rc == 0)
		rc = ms_lock_take(&l, dirfd, MS_KEYWORDS, host, 0, 0);
	if (rc == 0)
		rc = ms_lock_replace(&l, b.data != NULL ? b.data : "", b.len, &mtime);
	buf_free(&b);
	if (rc == 0 && fstatat(dirfd, MS_KEYWORDS, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		kw->exists = true;
		kw->ino = st.st_ino;
		kw->size = st.st_size;
		kw->mtime = st.st_mtim;
	}
	return rc;
}

int ms_keywords_add(int dirfd, struct ms_keywords *kw, const char *name, uint32_t avoid,
		    const char *host)
{
	int idx;

	if (!ms_keyword_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	if (ms_keywords_refresh(dirfd, kw) < 0)
		return -1;
	idx = ms_keywords_find(kw, name);
	if (idx >= 0)
		return idx;
	for (idx = 0; idx < MS_MAX_KEYWORDS; idx++)
		if (kw->names[idx] == NULL && !(avoid & (1u << idx)))
			break;
	if (idx == MS_MAX_KEYWORDS) {
		errno = ENOSPC;
		return -1;
	}
	kw->names[idx] = xstrdup(name);
	set_count(kw);
	if (ms_keywords_write(dirfd, kw, host) < 0) {
		int saved = errno;

		free(kw->names[idx]);
		kw->names[idx] = NULL;
		set_count(kw);
		errno = saved;
		return -1;
	}
	return idx;
}

/* ---- flags ------------------------------------------------------------------------- */

static unsigned sys_flag(char c)
{
	switch (c) {
	case 'D': return MSF_DRAFT;
	case 'F': return MSF_FLAGGED;
	case 'R': return MSF_ANSWERED;
	case 'S': return MSF_SEEN;
	case 'T': return MSF_DELETED;
	default: return 0;
	}
}

void ms_flags_parse(const char *letters, const struct ms_keywords *kw, struct ms_flags *out)
{
	memset(out, 0, sizeof(*out));
	for (; *letters != '\0'; letters++) {
		char c = *letters;

		if (sys_flag(c) != 0)
			out->flags |= sys_flag(c);
		else if (c >= 'A' && c <= 'Z')
			out->other |= 1u << (c - 'A');
		else if (c >= 'a' && c <= 'z' && kw->names[c - 'a'] != NULL)
			out->keywords |= 1u << (c - 'a');
		else if (c >= 'a' && c <= 'z')
			out->unknown_kw |= 1u << (c - 'a');
	}
}

void ms_flags_letters(const struct ms_flags *fl, char *out)
{
	size_t o = 0;

	/* Upper case sorts before lower case: A..Z then a..z is Dovecot's order. */
	for (char c = 'A'; c <= 'Z'; c++)
		if ((fl->flags & sys_flag(c)) != 0 ||
		    (sys_flag(c) == 0 && (fl->other & (1u << (c - 'A')))))
			out[o++] = c;
	for (char c = 'a'; c <= 'z'; c++)
		if ((fl->keywords | fl->unknown_kw) & (1u << (c - 'a')))
			out[o++] = c;
	out[o] = '\0';
}

bool ms_flags_eq(const struct ms_flags *a, const struct ms_flags *b)
{
	return a->flags == b->flags && a->keywords == b->keywords &&
	       a->unknown_kw == b->unknown_kw && a->other == b->other;
}
