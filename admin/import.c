/*
 * import.c: `postern import`: read an existing Postfix + Dovecot + MySQL configuration
 * (the common guides' set-up) and write an equivalent postern.conf and sql.conf, each value
 * commented with the file and line it came from, and every setting that could not be
 * carried over listed on stderr and at the end of postern.conf. Maildirs stay where they
 * are: the mail templates point at them.
 *
 * This file holds the command, the lists of settings, the final checks (the files are
 * loaded with Postern's own loaders before they are written: a file that would not load is
 * never written; a value Postern refuses becomes a "not carried over" line instead) and the
 * writing. The readers are import_read.c, import_postfix.c, import_dovecot.c and
 * import_sql.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "import.h"
#include "inet.h"
#include "log.h"
#include "pop3.h"
#include "privsep.h"
#include "sqlconf.h"
#include "util.h"

#define RETRIES_MAX 50	/* refused values dropped one by one before giving up */

/* ---- lists ------------------------------------------------------------------------------- */

struct imp_item *imp_list_get(const struct imp_list *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0)
			return &l->v[i];
	return NULL;
}

struct imp_item *imp_list_set(struct imp_list *l, const char *key, const char *value,
			      struct imp_where at, bool replace)
{
	struct imp_item *it = replace ? imp_list_get(l, key) : NULL;

	if (it) {
		free(it->value);
		free(it->from);
		it->from = NULL;
		it->value = xstrdup(value);
		it->at = at;
		return it;
	}
	if (l->n >= IMP_ITEMS_MAX)
		return NULL;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	it = &l->v[l->n++];
	memset(it, 0, sizeof(*it));
	it->key = xstrdup(key);
	it->value = xstrdup(value);
	it->at = at;
	return it;
}

static void item_free(struct imp_item *it)
{
	free(it->key);
	free(it->value);
	free(it->from);
}

void imp_list_free(struct imp_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		item_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Remove item i, keeping the order of the others. */
static void list_remove(struct imp_list *l, size_t i)
{
	item_free(&l->v[i]);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

/* ---- what the readers report ------------------------------------------------------------- */

const char *imp_intern(struct import *im, const char *name)
{
	for (size_t i = 0; i < im->nfiles; i++)
		if (strcmp(im->files[i], name) == 0)
			return im->files[i];
	im->files = xreallocarray(im->files, im->nfiles + 1, sizeof(*im->files));
	im->files[im->nfiles] = xstrdup(name);
	return im->files[im->nfiles++];
}

static void set_in(struct imp_list *l, const char *name, const char *value,
		   struct imp_where at, const char *from)
{
	struct imp_item *it = imp_list_set(l, name, value, at, true);

	if (it)
		it->from = xstrdup(from ? from : name);
}

void imp_conf(struct import *im, const char *name, const char *value, struct imp_where at,
	      const char *from)
{
	set_in(&im->conf, name, value, at, from);
}

void imp_sql(struct import *im, const char *name, const char *value, struct imp_where at,
	     const char *from)
{
	set_in(&im->sql, name, value, at, from);
}

bool imp_conf_has(const struct import *im, const char *name)
{
	return imp_list_get(&im->conf, name) != NULL;
}

static char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		msg_fatal("out of memory");
	return s;
}

void imp_lose(struct import *im, struct imp_where at, const char *key, const char *value,
	      const char *fmt, ...)
{
	struct imp_lost *l;
	va_list ap;

	if (im->nlost == im->caplost) {
		im->caplost = im->caplost ? im->caplost * 2 : 16;
		im->lost = xreallocarray(im->lost, im->caplost, sizeof(*im->lost));
	}
	l = &im->lost[im->nlost++];
	l->at = at;
	l->key = xstrdup(key);
	/* Never repeat a password in a report or a world-readable file. */
	l->value = xstrdup(strcmp(key, "password") == 0 || strstr(value, "password=") ?
			   "(hidden)" : value);
	va_start(ap, fmt);
	l->reason = vformat(fmt, ap);
	va_end(ap);
}

void imp_note(struct import *im, struct imp_where at, const char *fmt, ...)
{
	struct imp_item *it;
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = vformat(fmt, ap);
	va_end(ap);
	it = imp_list_set(&im->notes, "", text, at, false);
	(void)it;
	free(text);
}

int imp_error(struct import *im, struct imp_where at, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "postern import: ");
	if (at.file && at.line > 0)
		fprintf(stderr, "%s:%d: ", at.file, at.line);
	else if (at.file)
		fprintf(stderr, "%s: ", at.file);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	im->failed = true;
	return -1;
}

static void import_free(struct import *im)
{
	imp_list_free(&im->conf);
	imp_list_free(&im->sql);
	imp_list_free(&im->notes);
	for (size_t i = 0; i < im->nlost; i++) {
		free(im->lost[i].key);
		free(im->lost[i].value);
		free(im->lost[i].reason);
	}
	free(im->lost);
	for (size_t i = 0; i < im->nfiles; i++)
		free(im->files[i]);
	free(im->files);
	free(im->db.hosts);
	free(im->db.user);
	free(im->db.password);
	free(im->db.dbname);
	free(im->home_tmpl);
	free(im->mail_tmpl);
	free(im->vmail_user);
}

/* ---- rendering --------------------------------------------------------------------------- */

/* Append s with control characters shown as '?' (for comments). */
static void put_printable(struct buf *b, const char *s)
{
	for (; *s; s++)
		(void)buf_append_char(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* A value for a `name = value` line: '$' doubled (the loaders expand $name). */
static void put_value(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '$')
			(void)buf_append_char(b, '$');
		(void)buf_append_char(b, (unsigned char)*s < 0x20 ? ' ' : *s);
	}
}

static int count_lines(const struct buf *b)
{
	int n = 0;

	for (size_t i = 0; i < b->len; i++)
		n += b->data[i] == '\n';
	return n;
}

static void put_where(struct buf *b, struct imp_where at)
{
	if (at.file && at.line > 0)
		(void)buf_printf(b, "%s:%d", at.file, at.line);
	else if (at.file)
		put_printable(b, at.file);
	else
		(void)buf_append_str(b, "(derived)");
}

/* Render the settings of l into b; lineof[i] gets the line number of item i. */
static void render_items(struct buf *b, const struct imp_list *l, int *lineof)
{
	for (size_t i = 0; i < l->n; i++) {
		(void)buf_append_str(b, "\n# from ");
		put_where(b, l->v[i].at);
		(void)buf_append_char(b, ' ');
		put_printable(b, l->v[i].from ? l->v[i].from : l->v[i].key);
		(void)buf_append_char(b, '\n');
		lineof[i] = count_lines(b) + 1;
		(void)buf_printf(b, "%s = ", l->v[i].key);
		put_value(b, l->v[i].value);
		(void)buf_append_char(b, '\n');
	}
}

static void render_header(const struct import *im, struct buf *b, const char *what)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	if (localtime_r(&now, &tm) == NULL || strftime(date, sizeof(date), "%Y-%m-%d %H:%M",
						      &tm) == 0)
		(void)str_copy(date, sizeof(date), "(unknown date)");
	(void)buf_printf(b, "# %s: written by `postern import` on %s from", what, date);
	if (im->postfix_dir)
		(void)buf_printf(b, " %s", im->postfix_dir);
	if (im->postfix_dir && im->dovecot_dir)
		(void)buf_append_str(b, " and");
	if (im->dovecot_dir)
		(void)buf_printf(b, " %s", im->dovecot_dir);
	(void)buf_append_str(b, ".\n# Each setting says which source line it came from.\n");
}

static void render_conf(const struct import *im, struct buf *b, int *lineof)
{
	buf_reset(b);
	render_header(im, b, "postern.conf");
	(void)buf_append_str(b, "# Settings found but not carried over are listed at the end.\n");
	render_items(b, &im->conf, lineof);
	if (im->notes.n) {
		(void)buf_append_str(b, "\n# Differences to know about:\n");
		for (size_t i = 0; i < im->notes.n; i++) {
			(void)buf_append_str(b, "#   ");
			put_where(b, im->notes.v[i].at);
			(void)buf_append_str(b, ": ");
			put_printable(b, im->notes.v[i].value);
			(void)buf_append_char(b, '\n');
		}
	}
	(void)buf_printf(b, "\n# Not carried over (%zu):\n", im->nlost);
	for (size_t i = 0; i < im->nlost; i++) {
		(void)buf_append_str(b, "#   ");
		put_where(b, im->lost[i].at);
		(void)buf_append_str(b, ": ");
		put_printable(b, im->lost[i].key);
		(void)buf_append_str(b, " = ");
		put_printable(b, im->lost[i].value);
		(void)buf_append_str(b, ": ");
		put_printable(b, im->lost[i].reason);
		(void)buf_append_char(b, '\n');
	}
}

static void render_sql(const struct import *im, struct buf *b, int *lineof)
{
	buf_reset(b);
	render_header(im, b, "sql.conf");
	(void)buf_append_str(b, "# Holds the database password: mode 0600, owner postern-auth.\n"
			     "# Placeholders (%s address, %u login, %n local part, %d domain) are "
			     "bound as\n# prepared-statement parameters.\n");
	render_items(b, &im->sql, lineof);
}

/* ---- checks before writing --------------------------------------------------------------- */

struct load_errors {
	const char *path;	/* the name the loader was given */
	int line;		/* the first error's line (0: none or not tied to a line) */
	char msg[512];
	int count;
};

static void collect_error(const char *msg, void *arg)
{
	struct load_errors *e = arg;
	size_t plen = strlen(e->path);
	long line = 0;
	char *end;

	if (e->count++ > 0)
		return;
	if (strncmp(msg, e->path, plen) == 0 && msg[plen] == ':') {
		line = strtol(msg + plen + 1, &end, 10);
		msg = *end == ':' ? end + 1 : msg + plen + 1;
		while (*msg == ' ')
			msg++;
	}
	e->line = (int)line;
	(void)str_copy(e->msg, sizeof(e->msg), msg);
}

/* Load text as postern.conf (sql false) or sql.conf (sql true) from a memory file. 0 if it
 * loads; otherwise the first error in e. */
static int try_load(const char *text, size_t len, bool sql, struct load_errors *e)
{
	char path[64];
	struct config *c;
	int fd = memfd_create("postern-import", MFD_CLOEXEC);

	memset(e, 0, sizeof(*e));
	if (fd < 0 || write_all(fd, text, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		(void)str_fmt(e->msg, sizeof(e->msg), "cannot check the output: %s",
			      strerror(errno));
		e->count = 1;
		if (fd >= 0)
			(void)close(fd);
		return -1;
	}
	(void)str_fmt(path, sizeof(path), "/proc/self/fd/%d", fd);
	e->path = path;
	c = sql ? sqlconf_load(path, false, collect_error, e)
		: conf_load_fd(fd, path, conf_params, collect_error, e);
	(void)close(fd);
	e->path = NULL;
	if (c == NULL && e->count == 0)
		e->count = 1;
	if (c)
		conf_free(c);
	return c ? 0 : -1;
}

/* Render and load until the file loads: a value the loader refuses is moved to the list of
 * settings not carried over, with the loader's reason. -1 if that does not converge. */
static int settle(struct import *im, struct imp_list *l, bool sql, struct buf *out)
{
	struct load_errors e;
	int *lineof;

	for (int round = 0; round < RETRIES_MAX; round++) {
		lineof = xcalloc(l->n + 1, sizeof(*lineof));
		if (sql)
			render_sql(im, out, lineof);
		else
			render_conf(im, out, lineof);
		if (try_load(buf_cstr(out), out->len, sql, &e) == 0) {
			free(lineof);
			return 0;
		}
		size_t i;

		for (i = 0; i < l->n && (e.line == 0 || lineof[i] != e.line); i++)
			;
		free(lineof);
		if (e.line == 0 || i == l->n) {
			fprintf(stderr, "postern import: the %s written would not load: %s\n",
				sql ? "sql.conf" : "postern.conf", e.msg);
			return -1;
		}
		imp_lose(im, l->v[i].at, l->v[i].from ? l->v[i].from : l->v[i].key,
			 l->v[i].value, "Postern refuses it as %s: %s", l->v[i].key, e.msg);
		list_remove(l, i);
	}
	fprintf(stderr, "postern import: too many refused values\n");
	return -1;
}

/* Listener lists and inet_interfaces must also make sense to master. */
static void check_listeners(struct import *im)
{
	static const char *const listen[] = {
		"smtp_listen", "submission_listen", "smtps_listen", "imap_listen",
		"imaps_listen", "pop3_listen", "pop3s_listen",
	};
	struct imp_item *ifs = imp_list_get(&im->conf, "inet_interfaces");
	struct inet_addr addrs[INET_MAX_ADDRS];
	const char *all[] = { "all" };
	char err[256], *copy, *tok, *save = NULL;
	const char *items[INET_MAX_ADDRS];
	size_t nitems = 0;

	if (ifs) {
		copy = xstrdup(ifs->value);
		for (tok = strtok_r(copy, ", \t", &save); tok && nitems < INET_MAX_ADDRS;
		     tok = strtok_r(NULL, ", \t", &save))
			items[nitems++] = tok;
		if (nitems == 0 ||
		    inet_listen_expand("25", items, nitems, addrs, INET_MAX_ADDRS, err,
				       sizeof(err)) < 0) {
			imp_lose(im, ifs->at, ifs->from, ifs->value, "%s", nitems ? err :
				 "empty");
			list_remove(&im->conf, (size_t)(ifs - im->conf.v));
		}
		free(copy);
	}
	for (size_t i = 0; i < ARRAY_LEN(listen); i++) {
		struct imp_item *it = imp_list_get(&im->conf, listen[i]);

		if (it == NULL)
			continue;
		copy = xstrdup(it->value);
		save = NULL;
		for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
			if (inet_listen_expand(tok, all, 1, addrs, INET_MAX_ADDRS, err,
					       sizeof(err)) < 0)
				break;
		if (tok) {
			imp_lose(im, it->at, it->from, it->value, "%s", err);
			list_remove(&im->conf, (size_t)(it - im->conf.v));
		}
		free(copy);
	}
}

static void check_uidl(struct import *im)
{
	struct imp_item *it = imp_list_get(&im->conf, "pop3_uidl_format");
	char err[256];

	if (it && pop3_uidl_check(it->value, err, sizeof(err)) < 0) {
		imp_lose(im, it->at, it->from, it->value,
			 "Postern cannot produce these UIDLs (%s): POP3 clients would download "
			 "every message again", err);
		list_remove(&im->conf, (size_t)(it - im->conf.v));
	}
}

/* ---- writing ----------------------------------------------------------------------------- */

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Write text to dir/name with mode (via a temporary file and rename); with force an
 * existing file is kept as name.bak first. */
static int write_out(const char *dir, const char *name, const struct buf *text, mode_t mode,
		     const char *owner)
{
	char path[4096], tmp[4200], bak[4200];
	uid_t uid;
	gid_t gid;
	int fd;

	if (str_fmt(path, sizeof(path), "%s/%s", dir, name) < 0 ||
	    str_fmt(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) < 0 ||
	    str_fmt(bak, sizeof(bak), "%s.bak", path) < 0) {
		fprintf(stderr, "postern import: %s: path too long\n", dir);
		return -1;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, "postern import: cannot create %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) < 0 || write_all(fd, text->data, text->len) < 0 ||
	    (owner && geteuid() == 0 && privsep_lookup_user(owner, &uid, &gid) == 0 &&
	     fchown(fd, uid, gid) < 0) || fsync(fd) < 0) {
		fprintf(stderr, "postern import: cannot write %s: %s\n", tmp, strerror(errno));
		(void)close(fd);
		(void)unlink(tmp);
		return -1;
	}
	(void)close(fd);
	if (exists(path) && rename(path, bak) < 0) {
		fprintf(stderr, "postern import: cannot keep %s as %s: %s\n", path, bak,
			strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) < 0) {
		fprintf(stderr, "postern import: cannot rename %s to %s: %s\n", tmp, path,
			strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

static int write_both(const char *dir, bool force, const struct buf *conf,
		      const struct buf *sql)
{
	static const char *const names[] = { "postern.conf", "sql.conf" };
	char path[4096];
	struct stat st;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "postern import: %s: not a directory\n", dir);
		return -1;
	}
	for (size_t i = 0; i < ARRAY_LEN(names) && !force; i++) {
		if (str_fmt(path, sizeof(path), "%s/%s", dir, names[i]) < 0 || exists(path)) {
			fprintf(stderr, "postern import: %s exists: not overwritten (--force keeps "
				"it as %s.bak and writes a new one)\n", path, names[i]);
			return -1;
		}
	}
	if (write_out(dir, "sql.conf", sql, 0600, "postern-auth") < 0 ||
	    write_out(dir, "postern.conf", conf, 0644, NULL) < 0)
		return -1;
	return 0;
}

static void print_lost(const struct import *im)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	for (size_t i = 0; i < im->nlost; i++) {
		buf_reset(&b);
		(void)buf_append_str(&b, "postern import: not carried over: ");
		put_where(&b, im->lost[i].at);
		(void)buf_append_str(&b, ": ");
		put_printable(&b, im->lost[i].key);
		(void)buf_append_str(&b, " = ");
		put_printable(&b, im->lost[i].value);
		(void)buf_append_str(&b, ": ");
		put_printable(&b, im->lost[i].reason);
		fprintf(stderr, "%s\n", buf_cstr(&b));
	}
	buf_free(&b);
}

/* ---- the command ------------------------------------------------------------------------- */

struct import_opts {
	const char *postfix, *dovecot, *outdir;
	bool dry_run, force;
};

static int usage(void)
{
	fprintf(stderr, "usage: postern import [--postfix DIR] [--dovecot DIR] [-o DIR] [-n] "
		"[--force]\n"
		"  --postfix DIR  Postfix configuration (default /etc/postfix)\n"
		"  --dovecot DIR  Dovecot configuration (default /etc/dovecot)\n"
		"  -o DIR         where to write postern.conf and sql.conf (default /etc/postern)\n"
		"  -n             dry run: print both files on stdout\n"
		"  --force        replace existing files (kept as .bak)\n");
	return ADMIN_USAGE;
}

static int parse_opts(int argc, char **argv, struct import_opts *o)
{
	static const struct option longopts[] = {
		{ "postfix", required_argument, NULL, 'p' },
		{ "dovecot", required_argument, NULL, 'd' },
		{ "force", no_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*o = (struct import_opts){ "/etc/postfix", "/etc/dovecot", "/etc/postern", false,
				   false };
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+o:nfh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': o->postfix = optarg; break;
		case 'd': o->dovecot = optarg; break;
		case 'o': o->outdir = optarg; break;
		case 'n': o->dry_run = true; break;
		case 'f': o->force = true; break;
		default: return -1;
		}
	}
	if (optind != argc || !*o->postfix || !*o->dovecot || !*o->outdir)
		return -1;
	return 0;
}

/* With -o DIR other than the default, the files point at each other there. */
static void place(struct import *im, const char *outdir)
{
	if (strcmp(outdir, "/etc/postern") != 0)
		imp_conf(im, "config_directory", outdir, (struct imp_where){ NULL, 0 },
			 "-o (where this file and sql.conf were written)");
}

static int produce(struct import *im, const struct import_opts *o)
{
	struct buf conf, sql;
	int rc = ADMIN_FAIL;

	buf_init(&conf, 4 << 20);
	buf_init(&sql, 1 << 20);
	check_listeners(im);
	check_uidl(im);
	if (settle(im, &im->sql, true, &sql) == 0 && settle(im, &im->conf, false, &conf) == 0) {
		print_lost(im);
		if (o->dry_run) {
			printf("# ==> postern.conf <==\n%s\n# ==> sql.conf <==\n%s",
			       buf_cstr(&conf), buf_cstr(&sql));
			rc = fflush(stdout) == 0 ? ADMIN_OK : ADMIN_FAIL;
		} else if (write_both(o->outdir, o->force, &conf, &sql) == 0) {
			fprintf(stderr, "postern import: wrote %s/postern.conf and %s/sql.conf "
				"(%zu settings not carried over)\n", o->outdir, o->outdir,
				im->nlost);
			rc = ADMIN_OK;
		}
	}
	buf_free(&conf);
	buf_free(&sql);
	return rc;
}

int cmd_import(int argc, char **argv)
{
	struct import im;
	struct import_opts o;
	int rc = ADMIN_FAIL;

	if (parse_opts(argc, argv, &o) < 0)
		return usage();
	memset(&im, 0, sizeof(im));
	im.postfix_dir = o.postfix;
	im.dovecot_dir = o.dovecot;
	place(&im, o.outdir);
	/* Dovecot first: it names the database and the mail location; the Postfix maps
	 * then add the lookups and say whether they use the same database. */
	if (imp_dovecot(&im, o.dovecot) == 0 && imp_postfix(&im, o.postfix) == 0 &&
	    !im.failed) {
		if (!im.db.set)
			fprintf(stderr, "postern import: found no MySQL database in %s or %s "
				"(mysql: maps in main.cf, a Dovecot sql passdb): Postern needs "
				"one\n", o.postfix, o.dovecot);
		else
			rc = produce(&im, &o);
	}
	import_free(&im);
	return rc;
}
