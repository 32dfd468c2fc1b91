/*
 * import_read.c: reading the source files of `postern import` (import.h): every file is
 * bounded in size, line length and number (a configuration that includes itself, or a glob
 * that matches thousands of files, ends with a clear message instead of a hang), and
 * split into NUL-terminated physical lines that the format parsers join as they need.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "util.h"

char *imp_trim(char *s)
{
	size_t len;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

/* Read at most IMP_FILE_MAX bytes of fd into *out (NUL-terminated). */
static int slurp(int fd, char **out, size_t *outlen)
{
	size_t cap = 4096, len = 0;
	char *data = xmalloc(cap + 1);
	ssize_t n;

	for (;;) {
		if (len == cap) {
			if (cap >= IMP_FILE_MAX) {
				free(data);
				errno = EFBIG;
				return -1;
			}
			cap = cap * 2 > IMP_FILE_MAX ? IMP_FILE_MAX : cap * 2;
			data = xreallocarray(data, cap + 1, 1);
		}
		n = read(fd, data + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(data);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	data[len] = '\0';
	*out = data;
	*outlen = len;
	return 0;
}

static int split_lines(struct import *im, struct imp_text *t, size_t len)
{
	size_t cap = 64, i, start = 0;
	bool final_newline = len > 0 && t->data[len - 1] == '\n';

	if (memchr(t->data, '\0', len) != NULL)
		return imp_error(im, (struct imp_where){ t->name, 0 },
				 "contains a NUL byte: not a text file");
	t->line = xcalloc(cap, sizeof(*t->line));
	for (i = 0; i <= len; i++) {
		if (i < len && t->data[i] != '\n')
			continue;
		if (t->nlines == cap) {
			cap *= 2;
			t->line = xreallocarray(t->line, cap, sizeof(*t->line));
		}
		t->data[i] = '\0';
		if (i > start && t->data[i - 1] == '\r')
			t->data[i - 1] = '\0';
		if (i - start > IMP_LINE_MAX)
			return imp_error(im, (struct imp_where){ t->name, (int)t->nlines + 1 },
					 "line longer than %d bytes", IMP_LINE_MAX);
		t->line[t->nlines++] = t->data + start;
		start = i + 1;
	}
	if (final_newline || len == 0)
		t->nlines--;	/* the empty "line" after the last newline is no line */
	return 0;
}

int imp_text_read(struct import *im, const char *path, bool missing_ok, struct imp_text *t)
{
	struct stat st;
	size_t len;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	t->name = imp_intern(im, path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (missing_ok && errno == ENOENT)
			return 1;
		return imp_error(im, (struct imp_where){ t->name, 0 }, "cannot open: %s",
				 strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		(void)close(fd);
		return imp_error(im, (struct imp_where){ t->name, 0 }, "not a regular file");
	}
	if (++im->files_read > IMP_FILES_MAX) {
		(void)close(fd);
		return imp_error(im, (struct imp_where){ t->name, 0 },
				 "more than %d configuration files read: giving up",
				 IMP_FILES_MAX);
	}
	rc = slurp(fd, &t->data, &len);
	(void)close(fd);
	if (rc < 0)
		return imp_error(im, (struct imp_where){ t->name, 0 }, "cannot read: %s",
				 errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
	if (split_lines(im, t, len) < 0) {
		imp_text_free(t);
		return -1;
	}
	return 0;
}

void imp_text_free(struct imp_text *t)
{
	free(t->data);
	free(t->line);
	t->data = NULL;
	t->line = NULL;
	t->nlines = 0;
}

/* If path is below prefix (a directory) and dir is given, the same file below dir. */
static bool remap(const char *path, const char *prefix, const char *dir, char *out,
		  size_t outlen)
{
	size_t plen = strlen(prefix);
	struct stat st;

	if (dir == NULL || strncmp(path, prefix, plen) != 0 || path[plen] != '/')
		return false;
	if (str_fmt(out, outlen, "%s%s", dir, path + plen) < 0)
		return false;
	return stat(out, &st) == 0 || stat(path, &st) < 0;
}

void imp_source_path(const struct import *im, const char *path, char *out, size_t outlen)
{
	if (remap(path, "/etc/postfix", im->postfix_dir, out, outlen))
		return;
	if (remap(path, "/etc/dovecot", im->dovecot_dir, out, outlen))
		return;
	if (str_copy(out, outlen, path) < 0)
		out[0] = '\0';
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

/* Record one logical line "name = value" that started at line `at`. */
static int kv_line(struct import *im, char *text, struct imp_where at, struct imp_list *out)
{
	char *eq = strchr(text, '='), *name, *value;

	if (eq == NULL)
		return imp_error(im, at, "expected 'name = value'");
	*eq = '\0';
	name = imp_trim(text);
	value = imp_trim(eq + 1);
	for (char *p = name; *p; p++)
		if (!name_char(*p))
			return imp_error(im, at, "bad parameter name '%.60s'", name);
	if (*name == '\0')
		return imp_error(im, at, "expected 'name = value'");
	if (imp_list_set(out, name, value, at, true) == NULL)
		return imp_error(im, at, "more than %d settings", IMP_ITEMS_MAX);
	return 0;
}

int imp_parse_kv(struct import *im, const struct imp_text *t, enum imp_join join,
		 struct imp_list *out)
{
	struct buf logical;
	struct imp_where at = { t->name, 0 };
	bool open = false, more = false;
	int rc = 0;

	buf_init(&logical, IMP_LOGICAL_MAX);
	for (size_t i = 0; i <= t->nlines && rc == 0; i++) {
		const char *line = i < t->nlines ? t->line[i] : NULL;
		const char *first = line ? line + strspn(line, " \t") : NULL;
		bool cont = false;

		if (line && (*first == '\0' || *first == '#') && !more)
			continue;
		if (line && join == IMP_JOIN_INDENT)
			cont = first != line;
		else if (line)
			cont = more;
		if (cont && !open) {
			rc = imp_error(im, (struct imp_where){ t->name, (int)i + 1 },
				       "continuation line without a setting before it");
			break;
		}
		if (!cont && open) {
			char *copy = xstrdup(buf_cstr(&logical));

			rc = kv_line(im, copy, at, out);
			free(copy);
			buf_reset(&logical);
			open = false;
		}
		if (line == NULL || rc < 0)
			break;
		if (!open)
			at.line = (int)i + 1;
		open = true;
		size_t len = strlen(first);

		more = join == IMP_JOIN_BACKSLASH && len > 0 && first[len - 1] == '\\';
		if ((logical.len && buf_append_char(&logical, ' ') < 0) ||
		    buf_append(&logical, first, more ? len - 1 : len) < 0)
			rc = imp_error(im, at, "logical line longer than %d bytes",
				       IMP_LOGICAL_MAX);
	}
	buf_free(&logical);
	return rc;
}
