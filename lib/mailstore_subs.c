/*
 * mailstore_subs.c: the IMAP subscriptions, in Dovecot's ROOT/subscriptions file
 * (subscription-file.c). Version 2, which Dovecot writes for a new file, starts with
 * "V<TAB>2" and an empty line and then has one name per line with the hierarchy separator
 * written as a TAB (TAB, CR, LF and \001 inside a component are escaped as \001 + 't' 'r'
 * 'n' '1'). A file without that header is version 1: one name per line as it is (what
 * lib/mailbox.c writes). Names are in modified UTF-7 either way. An update keeps the file's
 * version, goes through the dot-lock subscriptions.lock and replaces the file by renaming
 * the lock file over it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "mailstore_priv.h"
#include "util.h"

static const char v2_header[] = "V\t2\n\n";

struct subs {
	int version;
	char **names;
	size_t n;
};

static void subs_free(struct subs *sb)
{
	mstore_names_free(sb->names, sb->n);
	memset(sb, 0, sizeof(*sb));
}

static void subs_add(struct subs *sb, const char *name)
{
	sb->names = xreallocarray(sb->names, sb->n + 1, sizeof(char *));
	sb->names[sb->n++] = xstrdup(name);
}

/* A version 2 line to a name: TAB -> '.', \001 escapes undone. */
static void unescape_v2(const char *line, struct buf *out)
{
	for (const char *p = line; *p != '\0'; p++) {
		char c = *p;

		if (c == '\t') {
			c = '.';
		} else if (c == '\001' && p[1] != '\0') {
			p++;
			c = *p == 't' ? '\t' : *p == 'r' ? '\r' : *p == 'n' ? '\n' :
			    *p == '1' ? '\001' : *p;
		}
		(void)buf_append_char(out, c);
	}
}

/* Names as mailstore spells them: valid, "INBOX" in capitals. Others are skipped. */
static void add_parsed(struct subs *sb, const char *name)
{
	if (!mstore_name_valid(name))
		return;
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '.')) {
		char *copy = xstrdup(name);

		memcpy(copy, "INBOX", 5);
		subs_add(sb, copy);
		free(copy);
		return;
	}
	subs_add(sb, name);
}

static void subs_parse(char *text, size_t len, struct subs *sb)
{
	char *line = text, *nl, *end = text + len;
	struct buf name;

	sb->version = 1;
	if (len >= sizeof(v2_header) - 1 && memcmp(text, v2_header, sizeof(v2_header) - 1) == 0) {
		sb->version = 2;
		line += sizeof(v2_header) - 1;
	}
	buf_init(&name, MS_NAME_MAX + 1);
	for (; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			nl = end;
		*nl = '\0';
		if (line[0] == '\0')
			continue;
		if (sb->version == 1) {
			add_parsed(sb, line);
			continue;
		}
		buf_reset(&name);
		unescape_v2(line, &name);
		add_parsed(sb, buf_cstr(&name));
	}
	buf_free(&name);
}

/* The current file (a missing one is an empty version 2 file). */
static int subs_read(struct mstore *s, struct subs *sb)
{
	struct buf b;
	struct stat st;

	memset(sb, 0, sizeof(*sb));
	sb->version = 2;
	buf_init(&b, MS_SMALL_FILE_MAX);
	if (ms_read_file(s->root_fd, MS_SUBSCRIPTIONS, MS_SMALL_FILE_MAX, &b, &st) < 0) {
		buf_free(&b);
		if (errno == ENOENT)
			return 0;
		return ms_fail_errno(s, "read", MS_SUBSCRIPTIONS);
	}
	if (b.len > 0 && memchr(b.data, '\0', b.len) == NULL)
		subs_parse(b.data, b.len, sb);
	buf_free(&b);
	return 0;
}

static int subs_format(const struct subs *sb, struct buf *b)
{
	int rc = sb->version >= 2 ? buf_append_str(b, v2_header) : 0;

	for (size_t i = 0; i < sb->n && rc == 0; i++) {
		size_t mark = b->len;

		rc = buf_append_str(b, sb->names[i]);
		if (sb->version >= 2)
			for (size_t k = mark; k < b->len; k++)
				if (b->data[k] == '.')
					b->data[k] = '\t';
		if (rc == 0)
			rc = buf_append_char(b, '\n');
	}
	return rc;
}

int mstore_subscriptions(struct mstore *s, char ***names, size_t *n)
{
	struct subs sb;

	if (subs_read(s, &sb) < 0)
		return -1;
	*names = sb.names;
	*n = sb.n;
	return 0;
}

/* Read under the lock, let edit() change the list, write it if it changed. */
static int subs_update(struct mstore *s, bool (*edit)(struct subs *sb, const void *arg),
		       const void *arg)
{
	struct ms_lock l;
	struct subs sb;
	struct buf b;
	int rc;

	if (ms_lock_take(&l, s->root_fd, MS_SUBSCRIPTIONS, s->host, MS_SUBS_STALE_SECS,
			 MS_SUBS_WAIT_SECS) < 0)
		return ms_fail_errno(s, "lock", MS_SUBSCRIPTIONS);
	if (subs_read(s, &sb) < 0) {
		ms_lock_release(&l);
		return -1;
	}
	if (!edit(&sb, arg)) {
		ms_lock_release(&l);
		subs_free(&sb);
		return 0;
	}
	buf_init(&b, MS_SMALL_FILE_MAX);
	rc = subs_format(&sb, &b);
	if (rc == 0)
		rc = ms_lock_replace(&l, buf_cstr(&b), b.len, NULL);
	else
		ms_lock_release(&l);
	if (rc < 0)
		(void)ms_fail_errno(s, "write", MS_SUBSCRIPTIONS);
	buf_free(&b);
	subs_free(&sb);
	return rc;
}

struct subscribe_arg {
	const char *name;
	bool on;
};

static bool edit_subscribe(struct subs *sb, const void *p)
{
	const struct subscribe_arg *a = p;
	bool changed = false;
	size_t o = 0;

	for (size_t i = 0; i < sb->n; i++) {
		if (strcmp(sb->names[i], a->name) == 0) {
			if (a->on && !changed) {
				sb->names[o++] = sb->names[i];
				changed = true;	/* found: stays, nothing to add */
				continue;
			}
			free(sb->names[i]);
			continue;
		}
		sb->names[o++] = sb->names[i];
	}
	if (a->on && !changed) {
		sb->n = o;
		subs_add(sb, a->name);
		return true;
	}
	changed = o != sb->n;
	sb->n = o;
	return changed;
}

int mstore_subscribe(struct mstore *s, const char *name, bool on)
{
	char norm[MS_NAME_MAX + 1];
	struct subscribe_arg a = { .name = norm, .on = on };

	if (!mstore_name_valid(name))
		return ms_fail(s, EINVAL, "invalid folder name");
	(void)str_copy(norm, sizeof(norm), name);
	if (strncasecmp(norm, "INBOX", 5) == 0 && (norm[5] == '\0' || norm[5] == '.'))
		memcpy(norm, "INBOX", 5);
	return subs_update(s, edit_subscribe, &a);
}

struct rename_arg {
	const char *from, *to;
};

static bool edit_rename(struct subs *sb, const void *p)
{
	const struct rename_arg *a = p;
	size_t flen = strlen(a->from);
	bool changed = false;

	for (size_t i = 0; i < sb->n; i++) {
		const char *name = sb->names[i];
		struct buf b;

		if (strncmp(name, a->from, flen) != 0 || (name[flen] != '\0' && name[flen] != '.'))
			continue;
		buf_init(&b, MS_NAME_MAX + 1);
		if (buf_printf(&b, "%s%s", a->to, name + flen) == 0 &&
		    mstore_name_valid(buf_cstr(&b))) {
			free(sb->names[i]);
			sb->names[i] = xstrdup(buf_cstr(&b));
			changed = true;
		}
		buf_free(&b);
	}
	return changed;
}

int ms_subs_rename(struct mstore *s, const char *from, const char *to)
{
	struct rename_arg a = { .from = from, .to = to };

	return subs_update(s, edit_rename, &a);
}
