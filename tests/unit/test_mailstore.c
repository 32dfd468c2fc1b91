/*
 * test_mailstore.c: unit tests for lib/mailstore*.c and lib/mutf7.c: modified UTF-7,
 * folder names, create/list/rename/delete (children, INBOX moving its mail with its UIDs),
 * subscriptions in Dovecot's two formats, APPEND with UIDs, flags, keywords, sizes and
 * dates that survive a re-open, deliveries into new/ between syncs (\Recent for one view
 * only), flag changes and expunges seen by another view (sequence numbers, shared
 * mod-sequences), dovecot-keywords (unknown letters kept and never reused), COPY by hard
 * link, quota, symbolic links refused, dot-locks (dead owner, stale, live holder),
 * dovecot-uidlist parsing (v1, v3 fields kept, broken files), a Maildir written by real
 * Dovecot (tests/unit/fixtures/mailstore/dovecot) read with its UIDs and flags, and a
 * 100,000-message folder re-opened without touching a message file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "maildir.h"
#include "mailstore.h"
#include "mailstore_priv.h"
#include "mutf7.h"
#include "t.h"
#include "util.h"

#define FIXTURE "tests/unit/fixtures/mailstore/dovecot"

static char tmpdir[] = "/tmp/test_mailstore.XXXXXX";
static int case_no;

/* ---- helpers ------------------------------------------------------------------------- */

/* A path below the test directory: at("m1/cur") etc. */
static const char *at(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *at(const char *fmt, ...)
{
	static char bufs[8][1024];
	static int next;
	char *p = bufs[next++ % 8], rel[900];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(rel, sizeof(rel), fmt, ap) >= (int)sizeof(rel))
		abort();
	va_end(ap);
	if (str_fmt(p, sizeof(bufs[0]), "%s/%s", tmpdir, rel) < 0)
		abort();
	return p;
}

/* A fresh Maildir name ("m<n>") for one test. */
static const char *fresh(void)
{
	static char name[32];

	(void)str_fmt(name, sizeof(name), "m%d", ++case_no);
	return name;
}

static struct mstore *open_store(const char *m)
{
	char err[256] = "";
	struct mstore *s = mstore_open(at("%s", m), err, sizeof(err));

	if (s == NULL)
		fprintf(stderr, "mstore_open: %s\n", err);
	return s;
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || close(fd) < 0) {
		perror(path);
		abort();
	}
}

/* The file's content ("" if unreadable), in a static buffer. */
static const char *read_text(const char *path)
{
	static char text[65536];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? 0 : read_full(fd, text, sizeof(text) - 1);

	if (fd >= 0)
		close(fd);
	text[n > 0 ? n : 0] = '\0';
	return text;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int count_files(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The only file in a directory whose name contains `part` ("" if none or several). */
static const char *find_file(const char *dir, const char *part)
{
	static char found[512];
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	found[0] = '\0';
	if (d == NULL)
		return found;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strstr(de->d_name, part) != NULL && n++ == 0)
			(void)str_copy(found, sizeof(found), de->d_name);
	closedir(d);
	if (n != 1)
		found[0] = '\0';
	return found;
}

/* Drop a message into DIR/new/ as a delivery agent would (tmp/ then rename). */
static void deliver_raw(const char *dir, long secs, int usecs, const char *text)
{
	char name[256];
	static int q;

	(void)str_fmt(name, sizeof(name), "%ld.M%dP%dQ%d.testhost,S=%zu", secs, usecs,
		      (int)getpid(), ++q, strlen(text));
	write_text(at("%s/tmp/%s", dir, name), text);
	if (rename(at("%s/tmp/%s", dir, name), at("%s/new/%s", dir, name)) < 0)
		abort();
}

/* Replace the ":2,..." end of a file path in place. */
static void set_info(char *path, size_t size, const char *info)
{
	char *p = strstr(path, ":2,");

	if (p == NULL || str_copy(p, size - (size_t)(p - path), info) < 0)
		abort();
}

static void names_expect(char **names, size_t n, const char *const *want, size_t nwant,
			 int line)
{
	bool ok = n == nwant;

	for (size_t i = 0; ok && i < n; i++)
		ok = strcmp(names[i], want[i]) == 0;
	if (!ok) {
		fprintf(stderr, "line %d: names:", line);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %s", names[i]);
		fprintf(stderr, "\n");
	}
	T_CHECK(ok);
}

#define NAMES_ARE(names, n, ...)                                                         \
	do {                                                                              \
		const char *const want_[] = { __VA_ARGS__ };                              \
		names_expect(names, n, want_, ARRAY_LEN(want_), __LINE__);                \
	} while (0)

static void expect_list(struct mstore *s, const char *const *want, size_t nwant, int line)
{
	char **names = NULL;
	size_t n = 0;

	T_EQ_INT(mstore_list(s, &names, &n), 0);
	names_expect(names, n, want, nwant, line);
	mstore_names_free(names, n);
}

#define LIST_IS(s, ...)                                                                  \
	do {                                                                              \
		const char *const want_[] = { __VA_ARGS__ };                              \
		expect_list(s, want_, ARRAY_LEN(want_), __LINE__);                        \
	} while (0)

static uint32_t append(struct mstore *s, const char *folder, const char *text, unsigned flags,
		       const char *kw, time_t date)
{
	const char *kws[1] = { kw };
	uint32_t v = 0, uid = 0;

	if (mstore_append(s, folder, text, strlen(text), flags, kws, kw != NULL, date, &v, &uid) < 0) {
		fprintf(stderr, "append: %s\n", mstore_error(s));
		return 0;
	}
	return uid;
}

static uint32_t uid_at(struct mfolder *f, uint32_t seq)
{
	const struct mmsg *m = mfolder_msg(f, seq);

	return m != NULL ? m->uid : 0;
}

/* ---- modified UTF-7 -------------------------------------------------------------------- */

static const char *to_utf8(const char *m)
{
	static struct buf b;

	buf_free(&b);
	buf_init(&b, 4096);
	return mutf7_to_utf8(m, strlen(m), &b) == 0 ? buf_cstr(&b) : "(error)";
}

static const char *to_mutf7(const char *u)
{
	static struct buf b;

	buf_free(&b);
	buf_init(&b, 4096);
	return utf8_to_mutf7(u, strlen(u), &b) == 0 ? buf_cstr(&b) : "(error)";
}

static void test_mutf7(void)
{
	static const char *const pairs[][2] = {
		{ "INBOX", "INBOX" }, { "Caf\xc3\xa9", "Caf&AOk-" }, { "a&b", "a&-b" },
		{ "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-" },
		{ "\xf0\x9f\x98\x80", "&2D3eAA-" }, { "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
		  "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
		{ "\xc3\xa9t\xc3\xa9", "&AOk-t&AOk-" }, { "", "" },
	};

	for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
		T_EQ_STR(to_mutf7(pairs[i][0]), pairs[i][1]);
		T_EQ_STR(to_utf8(pairs[i][1]), pairs[i][0]);
		T_CHECK(mutf7_valid(pairs[i][1], strlen(pairs[i][1])));
	}
	/* One spelling only: ASCII in BASE64, split runs, bad padding, lone surrogates... */
	static const char *const bad[] = {
		"&AGE-", "&AOk-&AOk-", "&AOk", "&AOl-", "&2D3-", "&3gA-", "a\tb", "Caf\xc3\xa9",
		"&-&", "&AAA-", "&AOkA-", "&*-",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		T_CHECK(!mutf7_valid(bad[i], strlen(bad[i])));
		T_EQ_STR(to_utf8(bad[i]), "(error)");
	}
	T_EQ_STR(to_mutf7("\xc3\x28"), "(error)");		/* not UTF-8 */
	T_EQ_STR(to_mutf7("\xed\xa0\x80"), "(error)");		/* a surrogate */
	T_EQ_STR(to_mutf7("\xc0\xaf"), "(error)");		/* overlong */
	to_utf8("");
	to_mutf7("");
}

static void test_names(void)
{
	static const char *const good[] = {
		"INBOX", "inbox", "Sent", "Lists.Work", "Caf&AOk-", "a b", "INBOX.Sub", "~x",
	};
	static const char *const badn[] = {
		"", ".", ".Sent", "Sent.", "a..b", "a/b", "a\tb", "Caf\xc3\xa9", "&AOk-&AOk-",
		"DOVECOT-TRASHED", "..", "a\x7f",
	};
	char longname[300];

	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		T_CHECK(mstore_name_valid(good[i]));
	for (size_t i = 0; i < ARRAY_LEN(badn); i++)
		T_CHECK(!mstore_name_valid(badn[i]));
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	T_CHECK(!mstore_name_valid(longname));
	longname[MAILDIR_FOLDER_MAX - 1] = '\0';
	T_CHECK(mstore_name_valid(longname));
	T_CHECK(!mstore_name_valid(NULL));
}

/* ---- folders --------------------------------------------------------------------------- */

static void test_folders(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mstatus st1, st2;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	T_CHECK(exists(at("%s/cur", m)) && exists(at("%s/new", m)) && exists(at("%s/tmp", m)));
	T_EQ_INT(mstore_create(s, "Sent"), 0);
	T_EQ_INT(mstore_create(s, "Sent"), -1);
	T_EQ_INT(errno, EEXIST);
	T_EQ_INT(mstore_create(s, "inbox"), -1);
	T_EQ_INT(errno, EEXIST);
	T_EQ_INT(mstore_create(s, "bad/name"), -1);
	T_EQ_INT(errno, EINVAL);
	T_EQ_INT(mstore_create(s, "A.B.C"), 0);	/* and its parents */
	LIST_IS(s, "INBOX", "A", "A.B", "A.B.C", "Sent");
	T_CHECK(exists(at("%s/.A.B.C/maildirfolder", m)));
	T_CHECK(exists(at("%s/.A.B.C/tmp", m)));
	T_CHECK(strncmp(read_text(at("%s/.A.B.C/dovecot-uidlist", m)), "3 V", 3) == 0);

	/* UIDVALIDITY: Dovecot's counter, so a re-created folder never gets the old one. */
	T_EQ_INT(mstore_status(s, "Sent", &st1), 0);
	T_EQ_INT(mstore_delete(s, "Sent"), 0);
	T_EQ_INT(mstore_create(s, "Sent"), 0);
	T_EQ_INT(mstore_status(s, "Sent", &st2), 0);
	T_CHECK(st2.uidvalidity > st1.uidvalidity);

	/* Renaming takes the children along; the target must be free and not inside. */
	T_EQ_INT(mstore_rename(s, "A", "Z"), 0);
	LIST_IS(s, "INBOX", "Sent", "Z", "Z.B", "Z.B.C");
	T_CHECK(!exists(at("%s/.A", m)));
	T_EQ_INT(mstore_rename(s, "Z", "Sent"), -1);
	T_EQ_INT(errno, EEXIST);
	T_EQ_INT(mstore_rename(s, "Nope", "X"), -1);
	T_EQ_INT(errno, ENOENT);
	T_EQ_INT(mstore_rename(s, "Z", "Z.Q"), -1);
	T_EQ_INT(errno, EINVAL);
	T_EQ_INT(mstore_rename(s, "Z.B", "INBOX"), -1);
	T_EQ_INT(errno, EEXIST);
	LIST_IS(s, "INBOX", "Sent", "Z", "Z.B", "Z.B.C");

	/* Deleting a folder leaves its children (Maildir++ folders are separate). */
	T_EQ_INT(mstore_delete(s, "Z.B"), 0);
	LIST_IS(s, "INBOX", "Sent", "Z", "Z.B.C");
	T_EQ_INT(mstore_delete(s, "INBOX"), -1);
	T_EQ_INT(errno, EINVAL);
	T_EQ_INT(mstore_delete(s, "Nope"), -1);
	T_EQ_INT(errno, ENOENT);
	T_CHECK(!exists(at("%s/.DOVECOT-TRASHED", m)));
	/* A deletion that crashed half-way is finished by the next one. */
	T_EQ_INT(mkdir(at("%s/.DOVECOT-TRASHED", m), 0700), 0);
	T_EQ_INT(mkdir(at("%s/.DOVECOT-TRASHED/cur", m), 0700), 0);
	write_text(at("%s/.DOVECOT-TRASHED/cur/1.M1P1.x,S=1:2,", m), "x");
	LIST_IS(s, "INBOX", "Sent", "Z", "Z.B.C");
	T_EQ_INT(mstore_delete(s, "Z"), 0);
	T_CHECK(!exists(at("%s/.DOVECOT-TRASHED", m)));
	LIST_IS(s, "INBOX", "Sent", "Z.B.C");
	T_EQ_INT(mfolder_open(s, "Z", false) == NULL, 1);
	T_EQ_INT(errno, ENOENT);
	mstore_close(s);
}

static void test_rename_inbox(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mstatus in, old;
	struct mfolder *f;
	const char *const *kw;
	uint32_t v;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(append(s, "INBOX", "Subject: 1\n\none\n", MSF_SEEN, "Junk", 0), 1);
	T_EQ_INT(append(s, "INBOX", "Subject: 2\n\ntwo\n", 0, NULL, 0), 2);
	T_EQ_INT(mstore_status(s, "INBOX", &in), 0);
	v = in.uidvalidity;
	T_EQ_INT(mstore_rename(s, "inbox", "Old.Mail"), 0);
	LIST_IS(s, "INBOX", "Old", "Old.Mail");
	T_EQ_INT(mstore_status(s, "Old.Mail", &old), 0);
	T_EQ_INT(old.messages, 2);
	T_EQ_INT(old.uidvalidity, v);
	T_EQ_INT(old.uidnext, 3);
	T_EQ_INT(mstore_status(s, "INBOX", &in), 0);
	T_EQ_INT(in.messages, 0);
	T_EQ_INT(in.uidvalidity, v);	/* INBOX keeps counting: no UID used twice */
	T_EQ_INT(in.uidnext, 3);
	T_EQ_INT(count_files(at("%s/cur", m)), 0);
	f = mfolder_open(s, "Old.Mail", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(uid_at(f, 1), 1);
		T_EQ_INT(uid_at(f, 2), 2);
		T_EQ_INT(mfolder_msg(f, 1)->flags & MSF_SEEN, MSF_SEEN);
		T_EQ_INT(mfolder_keywords(f, &kw), 1);
		T_EQ_STR(kw[0], "Junk");
		T_EQ_INT(mfolder_msg(f, 1)->keywords, 1);
		mfolder_close(f);
	}
	T_EQ_INT(append(s, "INBOX", "Subject: 3\n\nthree\n", 0, NULL, 0), 3);
	mstore_close(s);
}

/* ---- subscriptions ---------------------------------------------------------------------- */

static void test_subscriptions(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	char **names;
	size_t n;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(mstore_subscriptions(s, &names, &n), 0);
	T_EQ_INT(n, 0);
	mstore_names_free(names, n);
	T_EQ_INT(mstore_subscribe(s, "Sent", true), 0);
	T_EQ_INT(mstore_subscribe(s, "Lists.Work", true), 0);
	T_EQ_INT(mstore_subscribe(s, "inbox", true), 0);
	T_EQ_INT(mstore_subscribe(s, "Lists.Work", true), 0);	/* already: no change */
	T_EQ_STR(read_text(at("%s/subscriptions", m)), "V\t2\n\nSent\nLists\tWork\nINBOX\n");
	T_EQ_INT(mstore_subscriptions(s, &names, &n), 0);
	NAMES_ARE(names, n, "Sent", "Lists.Work", "INBOX");
	mstore_names_free(names, n);
	T_EQ_INT(mstore_subscribe(s, "Sent", false), 0);
	T_EQ_STR(read_text(at("%s/subscriptions", m)), "V\t2\n\nLists\tWork\nINBOX\n");
	T_EQ_INT(mstore_subscribe(s, "a/b", true), -1);
	T_EQ_INT(errno, EINVAL);
	T_CHECK(!exists(at("%s/subscriptions.lock", m)));

	/* Renaming a folder renames its subscriptions (children too). */
	T_EQ_INT(mstore_create(s, "Lists.Work"), 0);
	T_EQ_INT(mstore_rename(s, "Lists", "Listen"), 0);
	T_EQ_STR(read_text(at("%s/subscriptions", m)), "V\t2\n\nListen\tWork\nINBOX\n");

	/* A version 1 file (lib/mailbox.c writes those) is read and stays version 1. */
	write_text(at("%s/subscriptions", m), "Sent\nTrash\n\n");
	T_EQ_INT(mstore_subscriptions(s, &names, &n), 0);
	NAMES_ARE(names, n, "Sent", "Trash");
	mstore_names_free(names, n);
	T_EQ_INT(mstore_subscribe(s, "Lists.Work", true), 0);
	T_EQ_STR(read_text(at("%s/subscriptions", m)), "Sent\nTrash\nLists.Work\n");
	mstore_close(s);
}

/* ---- messages ------------------------------------------------------------------------- */

static void test_append(void)
{
	static const char crlf[] = "From: a@example.org\r\nSubject: one\r\n\r\nhello\r\nworld\r\n";
	static const char lf[] = "Subject: two\n\nbare\nlines\n";
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f;
	const struct mmsg *msg;
	const char *const *kw;
	struct mfolder_changes ch;
	struct stat st;
	uint32_t v = 0, v2 = 0, uid = 0;
	char path[600], buf[200];
	const char *name;
	int fd;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f == NULL)
		return;
	T_EQ_INT(mfolder_count(f), 0);
	T_EQ_INT(mfolder_uidnext(f), 1);
	v = mfolder_uidvalidity(f);
	T_CHECK(v != 0);

	const char *kws[] = { "$Forwarded" };

	T_EQ_INT(mstore_append(s, "INBOX", crlf, strlen(crlf), MSF_SEEN | MSF_FLAGGED | MSF_RECENT,
			       kws, 1, 1000000000, &v2, &uid), 0);
	T_EQ_INT(uid, 1);
	T_EQ_INT(v2, v);
	T_EQ_INT(append(s, "INBOX", lf, 0, NULL, 0), 2);
	T_EQ_INT(count_files(at("%s/new", m)), 0);
	name = find_file(at("%s/cur", m), ":2,FSa");
	T_CHECK(name[0] != '\0');
	(void)str_copy(path, sizeof(path), at("%s/cur/%s", m, name));
	T_EQ_INT(stat(path, &st), 0);
	T_EQ_INT(st.st_mtime, 1000000000);
	T_EQ_INT(st.st_size, strlen(crlf) - 5);
	T_CHECK(strstr(name, ",S=46,W=51:") != NULL);
	T_EQ_STR(read_text(path), "From: a@example.org\nSubject: one\n\nhello\nworld\n");

	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_CHECK(ch.exists_changed);
	T_EQ_INT(ch.exists, 2);
	T_EQ_INT(ch.nexpunged, 0);
	mfolder_changes_free(&ch);
	msg = mfolder_msg(f, 1);
	T_EQ_INT(msg->uid, 1);
	T_EQ_INT(msg->flags, MSF_SEEN | MSF_FLAGGED);	/* appended: \Recent for nobody */
	T_EQ_INT(msg->keywords, 1);
	T_EQ_INT(msg->size, strlen(crlf));
	T_EQ_INT(msg->file_size, strlen(crlf) - 5);
	mfolder_load_date(f, 1);
	T_EQ_INT(msg->internal_date, 1000000000);
	msg = mfolder_msg(f, 2);
	T_EQ_INT(msg->size, strlen(lf) + 4);		/* four LFs become CRLF */
	T_EQ_INT(msg->file_size, strlen(lf));
	mfolder_load_date(f, 2);
	T_CHECK(msg->internal_date >= time(NULL) - 60);
	T_CHECK(mfolder_msg(f, 3) == NULL && mfolder_msg(f, 0) == NULL);
	T_EQ_INT(mfolder_seq_of_uid(f, 2), 2);
	T_EQ_INT(mfolder_seq_of_uid(f, 7), 0);
	T_EQ_INT(mfolder_keywords(f, &kw), 1);
	T_EQ_STR(kw[0], "$Forwarded");
	fd = mfolder_msg_open(f, 2);
	T_CHECK(fd >= 0);
	if (fd >= 0) {
		ssize_t n = read_full(fd, buf, sizeof(buf) - 1);

		buf[n > 0 ? n : 0] = '\0';
		T_EQ_STR(buf, lf);
		close(fd);
	}
	mfolder_close(f);
	mstore_close(s);

	/* The uidlist, as Dovecot writes it. */
	T_CHECK(strncmp(read_text(at("%s/dovecot-uidlist", m)), "3 V", 3) == 0);
	{
		char hdr[64];

		/* APPEND adds lines at the end, as Dovecot does; the header's N may lag (readers
		 * take the larger), so only its prefix is fixed */
		(void)str_fmt(hdr, sizeof(hdr), "3 V%" PRIu32 " N", v);
		T_CHECK(strncmp(read_text(at("%s/dovecot-uidlist", m)), hdr, strlen(hdr)) == 0);
		T_CHECK(strstr(read_text(at("%s/dovecot-uidlist", m)), "\n1 :") != NULL);
		T_CHECK(strstr(read_text(at("%s/dovecot-uidlist", m)), "\n2 :") != NULL);
	}
	T_EQ_STR(read_text(at("%s/dovecot-keywords", m)), "0 $Forwarded\n");

	/* Everything is still there after a re-open of the whole store. */
	s = open_store(m);
	f = s != NULL ? mfolder_open(s, "inbox", false) : NULL;
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(mfolder_uidvalidity(f), v);
		T_EQ_INT(mfolder_count(f), 2);
		T_EQ_INT(mfolder_uidnext(f), 3);
		T_EQ_INT(mfolder_msg(f, 1)->flags, MSF_SEEN | MSF_FLAGGED);
		T_EQ_INT(mfolder_msg(f, 1)->size, strlen(crlf));
		mfolder_load_date(f, 1);
		T_EQ_INT(mfolder_msg(f, 1)->internal_date, 1000000000);
		mfolder_close(f);
	}
	T_EQ_INT(append(s, "Nope", lf, 0, NULL, 0), 0);
	T_EQ_INT(errno, ENOENT);
	T_EQ_INT(mstore_append(s, "INBOX", lf, strlen(lf), 0, (const char *[]){ "bad kw" }, 1, 0,
			       &v2, &uid), -1);
	T_EQ_INT(errno, EINVAL);
	T_EQ_INT(count_files(at("%s/cur", m)), 2);
	mstore_close(s);
}

static void test_delivery(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f, *g, *h;
	struct mfolder_changes ch;

	if (s == NULL || (f = mfolder_open(s, "INBOX", false)) == NULL) {
		T_CHECK(0);
		mstore_close(s);
		return;
	}
	/* Delivered out of order: UIDs follow the delivery time in the names. */
	deliver_raw(m, 1700000002, 5, "Subject: b\n\nb\n");
	deliver_raw(m, 1700000001, 9, "Subject: a\n\na\n");
	deliver_raw(m, 1700000002, 70, "Subject: c\n\nc\n");
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_CHECK(ch.exists_changed);
	T_EQ_INT(ch.exists, 3);
	T_EQ_INT(ch.recent, 3);
	mfolder_changes_free(&ch);
	T_EQ_INT(count_files(at("%s/new", m)), 0);
	T_EQ_INT(count_files(at("%s/cur", m)), 3);
	T_CHECK(strstr(mfolder_msg(f, 1)->file, "1700000001.M9P") == mfolder_msg(f, 1)->file);
	T_CHECK(strstr(mfolder_msg(f, 3)->file, "1700000002.M70P") == mfolder_msg(f, 3)->file);
	T_CHECK(strstr(mfolder_msg(f, 3)->file, ":2,") != NULL);
	T_EQ_INT(mfolder_msg(f, 2)->flags, MSF_RECENT);

	/* A second session sees them, not as recent; the next delivery is recent for the
	 * session that syncs first only. */
	g = mfolder_open(s, "INBOX", false);
	T_CHECK(g != NULL);
	if (g == NULL) {
		mfolder_close(f);
		mstore_close(s);
		return;
	}
	T_EQ_INT(mfolder_count(g), 3);
	T_EQ_INT(mfolder_msg(g, 1)->flags & MSF_RECENT, 0);
	deliver_raw(m, 1700000003, 1, "Subject: d\n\nd\n");
	T_EQ_INT(mfolder_sync(g, &ch), 0);
	T_EQ_INT(ch.exists, 4);
	T_EQ_INT(ch.recent, 1);
	mfolder_changes_free(&ch);
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_CHECK(ch.exists_changed);
	T_EQ_INT(ch.exists, 4);
	T_EQ_INT(ch.recent, 3);
	T_EQ_INT(mfolder_msg(f, 4)->uid, 4);
	T_EQ_INT(mfolder_msg(f, 4)->flags & MSF_RECENT, 0);
	mfolder_changes_free(&ch);
	T_EQ_INT(mfolder_sync(f, &ch), 0);	/* nothing new */
	T_CHECK(!ch.exists_changed && ch.nexpunged == 0 && ch.nflag_changed == 0);
	mfolder_changes_free(&ch);

	/* A read-only view numbers the new message but leaves it in new/. */
	h = mfolder_open(s, "INBOX", true);
	T_CHECK(h != NULL);
	if (h != NULL) {
		deliver_raw(m, 1700000004, 1, "Subject: e\n\ne\n");
		T_EQ_INT(mfolder_sync(h, &ch), 0);
		T_EQ_INT(ch.exists, 5);
		T_EQ_INT(ch.recent, 1);
		mfolder_changes_free(&ch);
		T_EQ_INT(count_files(at("%s/new", m)), 1);
		T_EQ_INT(mfolder_set_flags(h, 1, MSF_SEEN, 0), -1);
		T_EQ_INT(errno, EROFS);
		mfolder_close(h);
	}
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_EQ_INT(ch.exists, 5);
	T_EQ_INT(mfolder_msg(f, 5)->uid, 5);
	T_EQ_INT(mfolder_msg(f, 5)->flags & MSF_RECENT, MSF_RECENT);
	mfolder_changes_free(&ch);
	T_EQ_INT(count_files(at("%s/new", m)), 0);
	mfolder_close(g);
	mfolder_close(f);
	mstore_close(s);
}

/* A store with n messages in INBOX and two read-write views of it. */
static struct mstore *setup_views(const char **m, int n, struct mfolder **f, struct mfolder **g)
{
	struct mstore *s;

	*m = fresh();
	s = open_store(*m);
	*f = *g = NULL;
	if (s == NULL)
		return NULL;
	for (int i = 1; i <= n; i++) {
		char text[64];

		(void)str_fmt(text, sizeof(text), "Subject: %d\n\nbody %d\n", i, i);
		if (append(s, "INBOX", text, 0, NULL, 0) != (uint32_t)i)
			return s;
	}
	*f = mfolder_open(s, "INBOX", false);
	*g = mfolder_open(s, "INBOX", false);
	return s;
}

static void close_views(struct mstore *s, struct mfolder *f, struct mfolder *g)
{
	mfolder_close(f);
	mfolder_close(g);
	mstore_close(s);
}

/* Many messages at once: each gets its flags and its own mod-sequence, a message removed
 * behind the view's back is ENOENT without stopping the others, a bad entry is EINVAL, and
 * the other view sees it all at its next sync. */
static void test_set_flags_many(void)
{
	const char *m;
	struct mfolder *f, *g;
	struct mstore *s = setup_views(&m, 5, &f, &g);
	struct mfolder_flag_set sets[6];
	struct mfolder_changes ch;
	uint64_t before;

	if (f == NULL || g == NULL) {
		T_CHECK(0);
		close_views(s, f, g);
		return;
	}
	before = mfolder_highestmodseq(f);
	T_EQ_INT(unlink(at("%s/cur/%s", m, mfolder_msg(f, 3)->file)), 0);
	for (uint32_t i = 0; i < 5; i++)
		sets[i] = (struct mfolder_flag_set){ .seq = i + 1, .flags = MSF_SEEN | MSF_FLAGGED };
	sets[5] = (struct mfolder_flag_set){ .seq = 99, .flags = MSF_SEEN };
	T_EQ_INT(mfolder_set_flags_many(f, sets, 6), 0);
	T_EQ_INT(sets[0].err, 0);
	T_EQ_INT(sets[2].err, ENOENT);
	T_EQ_INT(sets[4].err, 0);
	T_EQ_INT(sets[5].err, EINVAL);
	T_EQ_INT(mfolder_msg(f, 1)->flags, MSF_SEEN | MSF_FLAGGED);
	T_EQ_INT(mfolder_msg(f, 5)->flags, MSF_SEEN | MSF_FLAGGED);
	T_CHECK(mfolder_msg(f, 1)->modseq > before);
	T_CHECK(mfolder_msg(f, 2)->modseq > mfolder_msg(f, 1)->modseq);
	T_EQ_INT(mfolder_highestmodseq(f), mfolder_msg(f, 5)->modseq);
	T_EQ_INT(mfolder_sync(g, &ch), 0);
	mfolder_changes_free(&ch);
	/* (the file of UID 3 is gone: g no longer shows it) */
	T_EQ_INT(mfolder_count(g), 4);
	T_EQ_INT(mfolder_msg(g, mfolder_seq_of_uid(g, 4))->flags, MSF_SEEN | MSF_FLAGGED);
	T_EQ_INT(mfolder_msg(g, mfolder_seq_of_uid(g, 4))->modseq, mfolder_msg(f, 4)->modseq);
	/* Nothing to change: no error, nothing renamed. */
	sets[0] = (struct mfolder_flag_set){ .seq = 1, .flags = MSF_SEEN | MSF_FLAGGED };
	T_EQ_INT(mfolder_set_flags_many(f, sets, 1), 0);
	T_EQ_INT(sets[0].err, 0);
	close_views(s, f, g);
	/* A read-only view changes nothing. */
	s = open_store(m);
	f = s != NULL ? mfolder_open(s, "INBOX", true) : NULL;
	T_CHECK(f != NULL);
	if (f != NULL) {
		sets[0] = (struct mfolder_flag_set){ .seq = 1, .flags = 0 };
		T_EQ_INT(mfolder_set_flags_many(f, sets, 1), -1);
		T_EQ_INT(sets[0].err, EROFS);
		mfolder_close(f);
	}
	mstore_close(s);
}

static void test_flags_seen_elsewhere(void)
{
	const char *m;
	struct mfolder *f, *g;
	struct mstore *s = setup_views(&m, 3, &f, &g);
	struct mfolder_changes ch;
	uint64_t before, mod;

	if (f == NULL || g == NULL) {
		T_CHECK(0);
		close_views(s, f, g);
		return;
	}
	before = mfolder_highestmodseq(f);
	T_EQ_INT(mfolder_set_flags(f, 2, MSF_SEEN | MSF_ANSWERED | MSF_RECENT, 0), 0);
	mod = mfolder_msg(f, 2)->modseq;
	T_CHECK(mod > before);
	T_EQ_INT(mfolder_highestmodseq(f), mod);
	T_CHECK(strstr(mfolder_msg(f, 2)->file, ":2,RS") != NULL);
	T_EQ_INT(mfolder_msg(f, 2)->flags, MSF_SEEN | MSF_ANSWERED);
	T_EQ_INT(mfolder_set_flags(f, 2, MSF_SEEN | MSF_ANSWERED, 0), 0);	/* no change */
	T_EQ_INT(mfolder_msg(f, 2)->modseq, mod);
	T_EQ_INT(mfolder_set_flags(f, 9, MSF_SEEN, 0), -1);

	T_EQ_INT(mfolder_sync(g, &ch), 0);
	T_EQ_INT(ch.nflag_changed, 1);
	if (ch.nflag_changed == 1)
		T_EQ_INT(ch.flag_changed_seqs[0], 2);
	T_CHECK(!ch.exists_changed);
	mfolder_changes_free(&ch);
	T_EQ_INT(mfolder_msg(g, 2)->flags, MSF_SEEN | MSF_ANSWERED);
	T_EQ_INT(mfolder_msg(g, 2)->modseq, mod);	/* the change has one mod-sequence */
	T_EQ_INT(mfolder_highestmodseq(g), mod);
	T_EQ_INT(mfolder_sync(f, &ch), 0);	/* our own change is not news to us */
	T_EQ_INT(ch.nflag_changed, 0);
	mfolder_changes_free(&ch);

	/* A change made behind our back (another program renaming the file). */
	{
		char from[700], to[700];
		const char *file = mfolder_msg(f, 3)->file;

		(void)str_copy(from, sizeof(from), at("%s/cur/%s", m, file));
		(void)str_copy(to, sizeof(to), from);
		T_CHECK(strstr(to, ":2,") != NULL);
		set_info(to, sizeof(to), ":2,T");
		T_EQ_INT(rename(from, to), 0);
	}
	T_EQ_INT(mfolder_sync(g, &ch), 0);
	T_EQ_INT(ch.nflag_changed, 1);
	mfolder_changes_free(&ch);
	T_EQ_INT(mfolder_msg(g, 3)->flags, MSF_DELETED);
	T_CHECK(mfolder_msg(g, 3)->modseq > mod);
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_EQ_INT(ch.nflag_changed, 1);
	mfolder_changes_free(&ch);
	T_EQ_INT(mfolder_msg(f, 3)->modseq, mfolder_msg(g, 3)->modseq);
	close_views(s, f, g);
}

static void test_expunge(void)
{
	const char *m;
	struct mfolder *f, *g;
	struct mstore *s = setup_views(&m, 5, &f, &g);
	struct mfolder_changes ch;
	const char *ul;

	if (f == NULL || g == NULL) {
		T_CHECK(0);
		close_views(s, f, g);
		return;
	}
	T_EQ_INT(mfolder_set_flags(f, 2, MSF_DELETED, 0), 0);
	T_EQ_INT(mfolder_set_flags(f, 4, MSF_DELETED | MSF_SEEN, 0), 0);
	T_EQ_INT(mfolder_expunge(f, NULL, 0, &ch), 0);
	T_EQ_INT(ch.nexpunged, 2);
	if (ch.nexpunged == 2) {
		T_EQ_INT(ch.expunged_seqs[0], 4);
		T_EQ_INT(ch.expunged_seqs[1], 2);
	}
	T_EQ_INT(ch.exists, 3);
	mfolder_changes_free(&ch);
	T_EQ_INT(uid_at(f, 1), 1);
	T_EQ_INT(uid_at(f, 2), 3);
	T_EQ_INT(uid_at(f, 3), 5);
	T_EQ_INT(count_files(at("%s/cur", m)), 3);

	T_EQ_INT(mfolder_sync(g, &ch), 0);
	T_EQ_INT(ch.nexpunged, 2);
	if (ch.nexpunged == 2) {
		T_EQ_INT(ch.expunged_seqs[0], 4);
		T_EQ_INT(ch.expunged_seqs[1], 2);
	}
	T_EQ_INT(ch.nflag_changed, 0);	/* 2 and 4 changed, but are gone */
	T_EQ_INT(ch.exists, 3);
	mfolder_changes_free(&ch);
	T_EQ_INT(uid_at(g, 2), 3);

	/* UID EXPUNGE: only the listed UIDs among the \Deleted ones. */
	T_EQ_INT(mfolder_set_flags(g, 2, MSF_DELETED, 0), 0);
	T_EQ_INT(mfolder_set_flags(g, 3, MSF_DELETED, 0), 0);
	T_EQ_INT(mfolder_expunge(g, (const uint32_t[]){ 5, 77 }, 2, &ch), 0);
	T_EQ_INT(ch.nexpunged, 1);
	if (ch.nexpunged == 1)
		T_EQ_INT(ch.expunged_seqs[0], 3);
	mfolder_changes_free(&ch);
	T_EQ_INT(mfolder_count(g), 2);
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_EQ_INT(ch.nexpunged, 1);
	T_EQ_INT(ch.nflag_changed, 1);	/* UID 3 got \Deleted, after the expunge of seq 3 */
	if (ch.nflag_changed == 1)
		T_EQ_INT(ch.flag_changed_seqs[0], 2);
	mfolder_changes_free(&ch);

	/* UIDs are never used again; numbering new files drops the lines of gone ones. */
	T_EQ_INT(append(s, "INBOX", "Subject: 6\n\n6\n", 0, NULL, 0), 6);
	deliver_raw(m, 1700000000, 1, "Subject: 7\n\n7\n");
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_EQ_INT(ch.exists, 4);
	mfolder_changes_free(&ch);
	T_EQ_INT(uid_at(f, 4), 7);
	ul = read_text(at("%s/dovecot-uidlist", m));
	T_CHECK(strstr(ul, "\n2 :") == NULL && strstr(ul, "\n4 :") == NULL &&
		strstr(ul, "\n5 :") == NULL);
	T_CHECK(strstr(ul, "\n1 :") != NULL && strstr(ul, "\n3 :") != NULL &&
		strstr(ul, "\n6 :") != NULL && strstr(ul, "\n7 :") != NULL);
	T_CHECK(strstr(ul, " N8 ") != NULL);
	T_EQ_INT(mfolder_expunge(f, NULL, 0, &ch), 0);	/* nothing \Deleted left but 3 */
	T_EQ_INT(ch.nexpunged, 1);
	mfolder_changes_free(&ch);
	close_views(s, f, g);
}

static void test_keywords(void)
{
	const char *m;
	struct mfolder *f, *g;
	struct mstore *s = setup_views(&m, 2, &f, &g);
	struct mfolder_changes ch;
	const char *const *kw;
	char name[32], from[700], to[700];

	if (f == NULL || g == NULL) {
		T_CHECK(0);
		close_views(s, f, g);
		return;
	}
	T_EQ_INT(mfolder_keyword_index(f, "Junk", false), -1);
	T_EQ_INT(errno, ENOENT);
	T_EQ_INT(mfolder_keyword_index(f, "Junk", true), 0);
	T_EQ_INT(mfolder_keyword_index(f, "$Label1", true), 1);
	T_EQ_INT(mfolder_keyword_index(f, "junk", false), 0);
	T_EQ_INT(mfolder_keyword_index(f, "a b", true), -1);
	T_EQ_INT(errno, EINVAL);
	T_EQ_INT(mfolder_keyword_index(f, "\\Seen", true), -1);
	T_EQ_STR(read_text(at("%s/dovecot-keywords", m)), "0 Junk\n1 $Label1\n");
	T_EQ_INT(mfolder_set_flags(f, 1, MSF_SEEN, 3), 0);
	T_CHECK(strstr(mfolder_msg(f, 1)->file, ":2,Sab") != NULL);
	T_EQ_INT(mfolder_set_flags(f, 1, MSF_SEEN, 1u << 5), -1);
	T_EQ_INT(errno, EINVAL);

	/* The other view learns the names and the flags. */
	T_EQ_INT(mfolder_keyword_index(g, "$label1", false), 1);
	T_EQ_INT(mfolder_sync(g, &ch), 0);
	T_EQ_INT(ch.nflag_changed, 1);
	mfolder_changes_free(&ch);
	T_EQ_INT(mfolder_msg(g, 1)->keywords, 3);
	T_EQ_INT(mfolder_keywords(g, &kw), 2);
	T_EQ_STR(kw[1], "$Label1");

	/* Letters without a name (z) and flags we do not know (P) are kept as they are,
	 * and z is never given to a new keyword. */
	(void)str_copy(from, sizeof(from), at("%s/cur/%s", m, mfolder_msg(f, 2)->file));
	(void)str_copy(to, sizeof(to), from);
	set_info(to, sizeof(to), ":2,PSz");
	T_EQ_INT(rename(from, to), 0);
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	mfolder_changes_free(&ch);
	T_EQ_INT(mfolder_msg(f, 2)->flags, MSF_SEEN);
	T_EQ_INT(mfolder_msg(f, 2)->keywords, 0);
	T_EQ_INT(mfolder_set_flags(f, 2, MSF_FLAGGED, 1), 0);
	T_CHECK(strstr(mfolder_msg(f, 2)->file, ":2,FPaz") != NULL);
	for (int i = 2; i < 25; i++) {
		(void)str_fmt(name, sizeof(name), "K%d", i);
		T_EQ_INT(mfolder_keyword_index(f, name, true), i);
	}
	T_EQ_INT(mfolder_keyword_index(f, "OneTooMany", true), -1);
	T_EQ_INT(errno, ENOSPC);
	T_EQ_INT(mfolder_keywords(f, &kw), 25);
	close_views(s, f, g);

	/* Keywords and their letters survive a re-open. */
	s = open_store(m);
	f = s != NULL ? mfolder_open(s, "INBOX", true) : NULL;
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(mfolder_msg(f, 1)->keywords, 3);
		T_EQ_INT(mfolder_msg(f, 2)->keywords, 1);
		T_EQ_INT(mfolder_keyword_index(f, "K24", false), 24);
	}
	mfolder_close(f);
	mstore_close(s);
}

/* A keywords file with a gap: every index below the count has a printable name. */
static void test_keyword_holes(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f;
	const char *const *kw;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	write_text(at("%s/dovecot-keywords", m), "0 Alpha\n2 Gamma\nbroken\n30 Big\n");
	write_text(at("%s/cur/1700000000.M1P1Q1.x,S=3:2,abc", m), "x\n\n");
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(mfolder_keywords(f, &kw), 3);
		T_EQ_STR(kw[0], "Alpha");
		T_EQ_STR(kw[1], "unknown-1");
		T_EQ_STR(kw[2], "Gamma");
		T_EQ_INT(mfolder_msg(f, 1)->keywords, 5);	/* b has no name: kept, not shown */
		T_EQ_INT(mfolder_keyword_index(f, "unknown-1", false), -1);
		T_EQ_INT(mfolder_keyword_index(f, "Delta", true), 3);	/* b is in use */
		T_EQ_INT(mfolder_set_flags(f, 1, 0, 8), 0);
		T_CHECK(strstr(mfolder_msg(f, 1)->file, ":2,bd") != NULL);
		mfolder_close(f);
	}
	mstore_close(s);
}

static void test_copy(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f, *a;
	struct mstatus st;
	struct stat sb;
	const char *const *kw;
	uint32_t v = 0, uid = 0;

	if (s == NULL || append(s, "INBOX", "Subject: c\r\n\r\ncopy me\r\n", MSF_SEEN, "Work",
				1234567890) != 1 || mstore_create(s, "Archive") < 0 ||
	    (f = mfolder_open(s, "INBOX", false)) == NULL) {
		T_CHECK(0);
		mstore_close(s);
		return;
	}
	T_EQ_INT(mstore_status(s, "Archive", &st), 0);
	T_EQ_INT(mfolder_keyword_index(f, "Other", true), 1);	/* Archive will use index 0 */
	T_EQ_INT(mfolder_copy(f, 1, "Archive", &v, &uid), 0);
	T_EQ_INT(uid, 1);
	T_EQ_INT(v, st.uidvalidity);
	T_EQ_INT(stat(at("%s/cur/%s", m, mfolder_msg(f, 1)->file), &sb), 0);
	T_EQ_INT(sb.st_nlink, 2);	/* a hard link, not a copy */
	a = mfolder_open(s, "Archive", false);
	T_CHECK(a != NULL);
	if (a != NULL) {
		T_EQ_INT(mfolder_count(a), 1);
		T_EQ_INT(mfolder_msg(a, 1)->flags, MSF_SEEN);
		T_EQ_INT(mfolder_keywords(a, &kw), 1);
		T_EQ_STR(kw[0], "Work");
		T_EQ_INT(mfolder_msg(a, 1)->keywords, 1);
		T_EQ_INT(mfolder_msg(a, 1)->size, mfolder_msg(f, 1)->size);
		mfolder_load_date(a, 1);
		T_EQ_INT(mfolder_msg(a, 1)->internal_date, 1234567890);
		mfolder_close(a);
	}
	T_EQ_INT(mfolder_copy(f, 1, "INBOX", &v, &uid), 0);
	T_EQ_INT(uid, 2);
	T_EQ_INT(mfolder_copy(f, 1, "Nope", &v, &uid), -1);
	T_EQ_INT(errno, ENOENT);
	T_EQ_INT(mfolder_copy(f, 5, "Archive", &v, &uid), -1);
	mfolder_close(f);
	mstore_close(s);
}

static void test_quota(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f;
	struct mfolder_changes ch;
	uint64_t b, bl, n, nl;
	char big[80];

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mstore_set_quota(s, 100, 0);
	T_EQ_INT(append(s, "INBOX", big, 0, NULL, 0), 1);
	T_EQ_INT(append(s, "INBOX", big, 0, NULL, 0), 0);
	T_EQ_INT(errno, EDQUOT);
	T_EQ_INT(count_files(at("%s/cur", m)), 1);
	T_EQ_INT(count_files(at("%s/new", m)), 0);
	T_EQ_INT(mstore_quota(s, &b, &bl, &n, &nl), 0);
	T_EQ_INT(b, 79);
	T_EQ_INT(bl, 100);
	T_EQ_INT(n, 1);
	T_EQ_INT(nl, 0);
	f = mfolder_open(s, "INBOX", false);
	if (f != NULL) {
		T_EQ_INT(mfolder_set_flags(f, 1, MSF_DELETED, 0), 0);
		T_EQ_INT(mfolder_expunge(f, NULL, 0, &ch), 0);
		mfolder_changes_free(&ch);
		mfolder_close(f);
	}
	T_EQ_INT(mstore_quota(s, &b, &bl, &n, &nl), 0);
	T_EQ_INT(b, 0);
	T_EQ_INT(n, 0);
	T_EQ_INT(append(s, "INBOX", big, 0, NULL, 0), 2);
	mstore_close(s);
}

static void test_symlinks(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f;
	struct mstatus st;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(mkdir(at("outside"), 0700), 0);
	T_EQ_INT(mkdir(at("outside/cur"), 0700), 0);
	T_EQ_INT(mkdir(at("outside/new"), 0700), 0);
	write_text(at("outside/cur/1.M1P1.x,S=5:2,S"), "Secret");
	T_EQ_INT(symlink(at("outside"), at("%s/.Evil", m)), 0);
	T_EQ_INT(symlink("/etc/passwd", at("%s/cur/2.M2P2.x,S=5:2,S", m)), 0);
	LIST_IS(s, "INBOX");
	T_CHECK(mfolder_open(s, "Evil", false) == NULL);
	T_EQ_INT(errno, ENOENT);
	T_EQ_INT(mstore_status(s, "Evil", &st), -1);
	T_EQ_INT(mstore_delete(s, "Evil"), -1);
	T_EQ_INT(mstore_rename(s, "Evil", "Good"), -1);
	T_EQ_INT(append(s, "Evil", "x", 0, NULL, 0), 0);
	T_EQ_INT(count_files(at("outside/cur")), 1);
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(mfolder_count(f), 0);	/* a link is not a message */
		mfolder_close(f);
	}
	mstore_close(s);
}

static void test_status_and_modseq(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f;
	struct mstatus st;
	uint64_t mod = 0;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(append(s, "INBOX", "Subject: 1\n\n1\n", MSF_SEEN, NULL, 0), 1);
	T_EQ_INT(append(s, "INBOX", "Subject: 2\n\n2\n", 0, NULL, 0), 2);
	deliver_raw(m, 1700000000, 1, "Subject: 3\n\n3\n");
	T_EQ_INT(mstore_status(s, "INBOX", &st), 0);
	T_EQ_INT(st.messages, 3);
	T_EQ_INT(st.recent, 1);
	T_EQ_INT(st.unseen, 2);
	T_EQ_INT(st.uidnext, 4);
	T_EQ_INT(st.size, 3 * strlen("Subject: 1\r\n\r\n1\r\n"));
	T_EQ_INT(count_files(at("%s/new", m)), 1);	/* STATUS claims nothing */

	f = mfolder_open(s, "INBOX", false);
	if (f != NULL) {
		T_EQ_INT(mfolder_set_flags(f, 2, MSF_FLAGGED, 0), 0);
		mod = mfolder_msg(f, 2)->modseq;
		mfolder_close(f);
	}
	T_EQ_INT(mstore_status(s, "INBOX", &st), 0);
	T_EQ_INT(st.highestmodseq, mod);
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(mfolder_msg(f, 2)->modseq, mod);
		T_EQ_INT(mfolder_highestmodseq(f), mod);
		mfolder_close(f);
	}
	/* Losing the index never makes HIGHESTMODSEQ go back. */
	T_EQ_INT(unlink(at("%s/postern-index", m)), 0);
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_CHECK(mfolder_highestmodseq(f) > mod);
		T_CHECK(mfolder_msg(f, 2)->modseq > mod);
		T_EQ_INT(mfolder_msg(f, 2)->flags, MSF_FLAGGED);
		mfolder_close(f);
	}
	T_CHECK(exists(at("%s/postern-index", m)));
	mstore_close(s);
}

/* ---- dovecot-uidlist and locks -------------------------------------------------------- */

static void test_uidlist_parsing(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct ms_uidlist ul = { 0 };
	int fd;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	fd = open(at("%s", m), O_RDONLY | O_DIRECTORY);
	/* Fields we do not know are kept, header and records. */
	write_text(at("%s/dovecot-uidlist", m),
		   "3 V1234 N10 G0123456789abcdef0123456789abcdef X7\n"
		   "2 W120 P1a2b :100.M1P1.host,S=99\n5 :200.M2P2.host\n7 :300.M3P3.host\n"
		   "8 :partial");
	T_EQ_INT(ms_uidlist_read(fd, &ul), 0);
	T_CHECK(ul.exists);
	T_EQ_INT(ul.uidvalidity, 1234);
	T_EQ_INT(ul.uidnext, 10);
	T_EQ_INT(ul.n, 3);
	T_EQ_INT(ms_uidlist_uid(&ul, "200.M2P2.host", 13), 5);
	T_EQ_INT(ms_uidlist_uid(&ul, "100.M1P1.host,S=99", 18), 2);
	T_EQ_INT(ms_uidlist_uid(&ul, "partial", 7), 0);
	ms_uidlist_add(&ul, 10, "400.M4P4.host", 13);
	T_EQ_INT(ms_uidlist_write(fd, &ul), 0);
	T_EQ_STR(read_text(at("%s/dovecot-uidlist", m)),
		 "3 V1234 N11 G0123456789abcdef0123456789abcdef X7\n"
		 "2 W120 P1a2b :100.M1P1.host,S=99\n5 :200.M2P2.host\n7 :300.M3P3.host\n"
		 "10 :400.M4P4.host\n");
	/* Version 1 (Courier's format), N below the last UID, a name with flags. */
	write_text(at("%s/dovecot-uidlist", m), "1 777 2\n1 a.b.c\n4 d.e.f:2,S\n");
	T_EQ_INT(ms_uidlist_read(fd, &ul), 0);
	T_CHECK(ul.exists);
	T_EQ_INT(ul.uidvalidity, 777);
	T_EQ_INT(ul.uidnext, 5);
	T_EQ_INT(ms_uidlist_uid(&ul, "d.e.f", 5), 4);
	/* A file that names a base twice: the later UID wins (Dovecot's rule). */
	write_text(at("%s/dovecot-uidlist", m), "3 V5 N9\n1 :x\n2 :y\n3 :x\n");
	T_EQ_INT(ms_uidlist_read(fd, &ul), 0);
	T_EQ_INT(ul.n, 2);
	T_EQ_INT(ms_uidlist_uid(&ul, "x", 1), 3);
	/* Broken files count as missing. */
	static const char *const broken[] = {
		"3 V0 N1\n", "3 V5 N1\n2 :a\n2 :b\n", "3 V5 N1\n3 :a\n1 :b\n", "x\n",
		"3 V5 N1\n1 :a/b\n", "4 V5 N1\n", "3 V5 N1\n1 x\n", "",
	};
	for (size_t i = 0; i < ARRAY_LEN(broken); i++) {
		write_text(at("%s/dovecot-uidlist", m), broken[i]);
		T_EQ_INT(ms_uidlist_read(fd, &ul), 0);
		T_CHECK(!ul.exists);
	}
	ms_uidlist_free(&ul);
	close(fd);
	mstore_close(s);
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { .tv_sec = t }, { .tv_sec = t } };

	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		abort();
}

static void test_locks(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct ms_lock l, l2;
	char text[300], host[256] = "";
	int fd, pfd[2];
	pid_t pid;
	int64_t t0;

	if (s == NULL || gethostname(host, sizeof(host) - 1) < 0) {
		T_CHECK(0);
		mstore_close(s);
		return;
	}
	fd = open(at("%s", m), O_RDONLY | O_DIRECTORY);
	T_EQ_INT(ms_lock_take(&l, fd, "dovecot-uidlist", host, 120, 0), 0);
	(void)str_fmt(text, sizeof(text), "%d:%s", (int)getpid(), host);
	T_EQ_STR(read_text(at("%s/dovecot-uidlist.lock", m)), text);
	T_CHECK(ms_lock_held(&l));
	T_EQ_INT(ms_lock_take(&l2, fd, "dovecot-uidlist", host, 120, 0), -1);
	T_EQ_INT(errno, EAGAIN);
	ms_lock_release(&l);
	T_CHECK(!exists(at("%s/dovecot-uidlist.lock", m)));

	/* The owner died: its lock goes once it is a few seconds old. */
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	(void)str_fmt(text, sizeof(text), "%d:%s", (int)pid, host);
	write_text(at("%s/dovecot-uidlist.lock", m), text);
	T_EQ_INT(ms_lock_take(&l, fd, "dovecot-uidlist", host, 120, 0), -1);	/* too young */
	set_mtime(at("%s/dovecot-uidlist.lock", m), time(NULL) - 10);
	T_EQ_INT(ms_lock_take(&l, fd, "dovecot-uidlist", host, 120, 0), 0);
	ms_lock_release(&l);

	/* Another host's lock: stale once neither it nor the target has changed for the
	 * stale time (120 s for the uidlist; 1 s here), however old it claims to be. */
	write_text(at("%s/dovecot-uidlist", m), "3 V1 N1\n");
	write_text(at("%s/dovecot-uidlist.lock", m), "1:elsewhere.example");
	set_mtime(at("%s/dovecot-uidlist.lock", m), time(NULL) - 200);
	T_EQ_INT(ms_lock_take(&l, fd, "dovecot-uidlist", host, 120, 0), -1);
	T_EQ_INT(errno, EAGAIN);
	t0 = mono_ms();
	T_EQ_INT(ms_lock_take(&l, fd, "dovecot-uidlist", host, 1, 5), 0);
	T_CHECK(mono_ms() - t0 >= 900);
	T_CHECK(ms_lock_held(&l));
	/* Replacing writes the file and releases in one rename. */
	T_EQ_INT(ms_lock_replace(&l, "new\n", 4, NULL), 0);
	T_EQ_STR(read_text(at("%s/dovecot-uidlist", m)), "new\n");
	T_CHECK(!exists(at("%s/dovecot-uidlist.lock", m)));
	unlink(at("%s/dovecot-uidlist", m));

	/* A live holder is waited for. */
	T_EQ_INT(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		struct ms_lock cl;

		close(pfd[0]);
		if (ms_lock_take(&cl, fd, "dovecot-uidlist", host, 120, 5) < 0)
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		usleep(700000);
		ms_lock_release(&cl);
		_exit(0);
	}
	close(pfd[1]);
	T_EQ_INT(read(pfd[0], text, 1), 1);
	close(pfd[0]);
	t0 = mono_ms();
	T_EQ_INT(append(s, "INBOX", "Subject: w\n\nwaited\n", 0, NULL, 0), 1);
	T_CHECK(mono_ms() - t0 >= 400);
	waitpid(pid, NULL, 0);
	close(fd);
	mstore_close(s);
}

/* ---- Dovecot's own files ---------------------------------------------------------------- */

static int copy_tree(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *de;
	char a[1024], b[1024];
	struct stat st;
	int rc = 0;

	if (d == NULL || (mkdir(to, 0700) < 0 && errno != EEXIST))
		return -1;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		(void)str_fmt(a, sizeof(a), "%s/%s", from, de->d_name);
		(void)str_fmt(b, sizeof(b), "%s/%s", to, de->d_name);
		if (stat(a, &st) < 0)
			rc = -1;
		else if (S_ISDIR(st.st_mode))
			rc = copy_tree(a, b);
		else {
			char *data;
			size_t len;

			rc = read_file(a, 1 << 20, &data, &len);
			if (rc == 0) {
				int fd = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0600);

				rc = fd < 0 || write_all(fd, data, len) < 0 ? -1 : 0;
				if (fd >= 0)
					close(fd);
				free(data);
			}
		}
	}
	closedir(d);
	return rc;
}

/* "\Seen $Forwarded" for a message of the view, as doveadm prints it. */
static void flags_text(struct mfolder *f, const struct mmsg *msg, char *out, size_t outlen)
{
	static const struct { unsigned bit; const char *name; } sys[] = {
		{ MSF_ANSWERED, "\\Answered" }, { MSF_FLAGGED, "\\Flagged" },
		{ MSF_DELETED, "\\Deleted" }, { MSF_SEEN, "\\Seen" }, { MSF_DRAFT, "\\Draft" },
	};
	const char *const *kw;
	size_t nkw = mfolder_keywords(f, &kw);
	struct buf b;

	buf_init(&b, 1024);
	for (size_t i = 0; i < ARRAY_LEN(sys); i++)
		if (msg->flags & sys[i].bit)
			(void)buf_printf(&b, "%s%s", b.len ? " " : "", sys[i].name);
	for (size_t i = 0; i < nkw; i++)
		if (msg->keywords & (1u << i))
			(void)buf_printf(&b, "%s%s", b.len ? " " : "", kw[i]);
	(void)str_copy(out, outlen, buf_cstr(&b));
	buf_free(&b);
}

static void test_dovecot_maildir(void)
{
	const char *m = fresh();
	struct mstore *s;
	struct mfolder *f;
	struct mstatus st;
	char **names, line[256], flags[256];
	size_t n;
	FILE *exp;

	if (copy_tree(FIXTURE, at("%s", m)) < 0) {
		fprintf(stderr, "cannot copy %s (run from the top directory)\n", FIXTURE);
		T_CHECK(0);
		return;
	}
	unlink(at("%s/expected-flags.txt", m));
	unlink(at("%s/README", m));
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 3; k++)
			(void)mkdir(at("%s/%s/%s", m, i ? ".Sent" : ".Lists.Work",
				       (const char *[]){ "cur", "new", "tmp" }[k]), 0700);
	s = open_store(m);
	f = s != NULL ? mfolder_open(s, "INBOX", true) : NULL;
	if (f == NULL) {
		T_CHECK(0);
		mstore_close(s);
		return;
	}
	T_EQ_INT(mfolder_uidvalidity(f), 1795302087);
	T_EQ_INT(mfolder_uidnext(f), 7);
	T_EQ_INT(mfolder_count(f), 5);
	/* Every UID and flag as Dovecot itself reported them. */
	exp = fopen(FIXTURE "/expected-flags.txt", "r");
	T_CHECK(exp != NULL && fgets(line, sizeof(line), exp) != NULL);	/* header */
	for (uint32_t seq = 1; exp != NULL && fgets(line, sizeof(line), exp) != NULL; seq++) {
		char *tab = strchr(line, '\t');
		const struct mmsg *msg = mfolder_msg(f, seq);

		line[strcspn(line, "\n")] = '\0';
		T_CHECK(tab != NULL && msg != NULL);
		if (tab == NULL || msg == NULL)
			break;
		*tab = '\0';
		T_EQ_INT(msg->uid, atoi(line));
		flags_text(f, msg, flags, sizeof(flags));
		T_EQ_STR(flags, tab + 1);
		T_EQ_INT(msg->size, msg->uid == 6 ? 51 : 83);
	}
	if (exp != NULL)
		fclose(exp);
	T_EQ_INT(mfolder_msg(f, 5)->flags, MSF_SEEN | MSF_RECENT);	/* still in new/ */
	mfolder_close(f);

	LIST_IS(s, "INBOX", "Lists.Work", "Sent");
	T_EQ_INT(mstore_subscriptions(s, &names, &n), 0);
	NAMES_ARE(names, n, "Sent", "Lists.Work", "INBOX");
	mstore_names_free(names, n);
	T_EQ_INT(mstore_status(s, "Sent", &st), 0);
	T_EQ_INT(st.uidvalidity, 1795302088);
	/* A new folder continues Dovecot's UIDVALIDITY counter. */
	T_EQ_INT(mstore_create(s, "New"), 0);
	T_EQ_INT(mstore_status(s, "New", &st), 0);
	T_EQ_INT(st.uidvalidity, 0x6b0222c9 + 1);
	T_EQ_STR(read_text(at("%s/dovecot-uidvalidity", m)), "6b0222ca");
	T_CHECK(exists(at("%s/dovecot-uidvalidity.6b0222ca", m)));

	/* Read-write: UID 6 moves to cur/, the next message is UID 7, the GUID stays. */
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(mfolder_msg(f, 5)->flags, MSF_SEEN | MSF_RECENT);
		T_CHECK(strstr(mfolder_msg(f, 5)->file, ":2,S") != NULL);
		mfolder_close(f);
	}
	T_EQ_INT(count_files(at("%s/new", m)), 0);
	T_EQ_INT(append(s, "INBOX", "Subject: 7\n\n7\n", 0, NULL, 0), 7);
	{
		static const char hdr[] = "3 V1795302087 N";
		const char *text = read_text(at("%s/dovecot-uidlist", m));

		/* the header (and its GUID) kept, the new message's line appended */
		T_CHECK(strncmp(text, hdr, strlen(hdr)) == 0);
		T_CHECK(strstr(text, " Gc43a5e02c722026bd852000083ecc375\n") != NULL);
		T_CHECK(strstr(text, "\n7 :") != NULL);
	}
	mstore_close(s);
}

/* ---- several writers ------------------------------------------------------------------- */

#define WRITERS 4
#define EACH 40

static void test_concurrent_writers(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f;
	pid_t pids[WRITERS];
	int status, ok = 1;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	for (int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		if (pids[w] == 0) {
			struct mstore *cs = open_store(m);
			char text[64];

			for (int i = 0; i < EACH && cs != NULL; i++) {
				(void)str_fmt(text, sizeof(text), "Subject: %d/%d\n\nx\n", w, i);
				if (i % 2 == 0 && append(cs, "INBOX", text, 0, NULL, 0) == 0)
					_exit(1);
				if (i % 2 == 1)
					deliver_raw(m, 1700000000 + i, w, text);
				if (i % 5 == 0) {	/* a session syncing in between */
					struct mfolder *cf = mfolder_open(cs, "INBOX", false);

					if (cf == NULL)
						_exit(1);
					mfolder_close(cf);
				}
			}
			mstore_close(cs);
			_exit(cs != NULL ? 0 : 1);
		}
	}
	for (int w = 0; w < WRITERS; w++) {
		T_EQ_INT(waitpid(pids[w], &status, 0), pids[w]);
		ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	T_CHECK(ok);
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		/* Every message exactly once, UIDs 1..N without a gap or a repeat. */
		T_EQ_INT(mfolder_count(f), WRITERS * EACH);
		for (uint32_t seq = 1; seq <= mfolder_count(f); seq++)
			if (uid_at(f, seq) != seq)
				ok = 0;
		T_CHECK(ok);
		T_EQ_INT(mfolder_uidnext(f), WRITERS * EACH + 1);
		mfolder_close(f);
	}
	T_EQ_INT(count_files(at("%s/cur", m)), WRITERS * EACH);
	T_CHECK(!exists(at("%s/dovecot-uidlist.lock", m)));
	mstore_close(s);
}

/* Someone else numbers a file (Dovecot appends a line); someone replaces the uidlist. */
static void test_foreign_uidlist_changes(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f;
	struct mfolder_changes ch;
	char line[200];
	int fd;

	if (s == NULL || append(s, "INBOX", "Subject: 1\n\n1\n", 0, NULL, 0) != 1 ||
	    (f = mfolder_open(s, "INBOX", false)) == NULL) {
		T_CHECK(0);
		mstore_close(s);
		return;
	}
	write_text(at("%s/cur/1700000000.M1P9Q1.other,S=11:2,F", m), "Subject: 2\n");
	fd = open(at("%s/dovecot-uidlist", m), O_WRONLY | O_APPEND);
	(void)str_fmt(line, sizeof(line), "9 :1700000000.M1P9Q1.other,S=11\n");
	T_CHECK(fd >= 0 && write_all(fd, line, strlen(line)) == 0);
	close(fd);
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_EQ_INT(ch.exists, 2);
	mfolder_changes_free(&ch);
	T_EQ_INT(uid_at(f, 2), 9);
	T_EQ_INT(mfolder_msg(f, 2)->flags, MSF_FLAGGED);
	T_EQ_INT(mfolder_uidnext(f), 10);
	T_EQ_INT(append(s, "INBOX", "Subject: 3\n\n3\n", 0, NULL, 0), 10);

	/* A new UIDVALIDITY: the view can only say so (the session must close it). */
	write_text(at("%s/dovecot-uidlist", m), "3 V42 N1\n");
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_CHECK(ch.uidvalidity_changed);
	mfolder_changes_free(&ch);
	mfolder_close(f);
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(mfolder_uidvalidity(f), 42);
		T_EQ_INT(mfolder_count(f), 3);
		T_EQ_INT(uid_at(f, 1), 1);	/* numbered again, in delivery-time order */
		mfolder_close(f);
	}
	mstore_close(s);
}

/* A folder's first numbering (huge: one name's time does not fit the radix sort's key,
 * so the comparison sort runs instead). */
static void first_numbering(struct mstore *s, const char *m, int huge)
{
	struct mfolder *f;
	uint32_t n = 4 + (uint32_t)huge;

	write_text(at("%s/cur/1700000003.M1P1Q1.h,S=2,W=4:2,S", m), "c\n");
	write_text(at("%s/new/1700000002.M1P1Q1.h,S=2,W=4", m), "b\n");
	write_text(at("%s/cur/1700000002.M1P1Q1.h,S=2,W=4:2,F", m), "b\n");
	write_text(at("%s/cur/1700000002.M1P1Q0.h,S=2,W=4:2,", m), "a\n");
	write_text(at("%s/new/1700000001.M9P1Q1.h,S=2,W=4", m), "z\n");
	if (huge)
		write_text(at("%s/cur/99999999999999.M1P1Q1.h,S=2,W=4:2,", m), "y\n");
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(mfolder_count(f), n);
		for (uint32_t i = 1; i <= mfolder_count(f); i++)
			T_EQ_INT(uid_at(f, i), i);
		T_CHECK(strncmp(mfolder_msg(f, 1)->file, "1700000001.", 11) == 0);
		T_CHECK(strncmp(mfolder_msg(f, 2)->file, "1700000002.M1P1Q0", 17) == 0);
		T_CHECK(strncmp(mfolder_msg(f, 3)->file, "1700000002.M1P1Q1", 17) == 0);
		T_CHECK(strncmp(mfolder_msg(f, 4)->file, "1700000003.", 11) == 0);
		if (huge)
			T_CHECK(strncmp(mfolder_msg(f, 5)->file, "99999999999999.", 15) == 0);
		mfolder_close(f);
	}
	/* The uidlist has a line per base, and a new view agrees. */
	f = mfolder_open(s, "INBOX", true);
	T_CHECK(f != NULL);
	if (f != NULL) {
		T_EQ_INT(mfolder_count(f), n);
		T_EQ_INT(mfolder_uidnext(f), n + 1);
		mfolder_close(f);
	}
}

/* A message caught between new/ and cur/ (its base in both) is one message with one UID,
 * and the order is the delivery time in the names, whichever sort ran. */
static void test_first_numbering_twins(void)
{
	for (int huge = 0; huge <= 1; huge++) {
		const char *m = fresh();
		struct mstore *s = open_store(m);

		if (s == NULL) {
			T_CHECK(0);
			return;
		}
		first_numbering(s, m, huge);
		mstore_close(s);
	}
}

/* A view and the APPENDs of one store read only what was added to dovecot-uidlist since
 * they last read it, and still notice a file that was rewritten. */
static void test_uidlist_incremental(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f;
	struct mfolder_changes ch;
	unsigned long before;
	char line[200];
	int fd;

	for (int i = 1; i <= 200; i++)
		if (s == NULL || append(s, "INBOX", "Subject: x\n\nx\n", 0, NULL, 0) != (uint32_t)i) {
			T_CHECK(0);
			mstore_close(s);
			return;
		}
	/* The store's 200th APPEND read one line and a few bytes before it, not 200 lines. */
	before = mstore_uidlist_bytes;
	T_EQ_INT(append(s, "INBOX", "Subject: y\n\ny\n", 0, NULL, 0), 201);
	T_CHECK(mstore_uidlist_bytes - before < 200);
	f = mfolder_open(s, "INBOX", false);
	if (f == NULL) {
		T_CHECK(0);
		mstore_close(s);
		return;
	}
	T_EQ_INT(mfolder_count(f), 201);
	/* Another program numbers a file: the view reads that line only. */
	write_text(at("%s/cur/1700000000.M1P9Q1.other,S=11:2,S", m), "Subject: 2\n");
	fd = open(at("%s/dovecot-uidlist", m), O_WRONLY | O_APPEND);
	(void)str_fmt(line, sizeof(line), "300 :1700000000.M1P9Q1.other,S=11\n");
	T_CHECK(fd >= 0 && write_all(fd, line, strlen(line)) == 0);
	close(fd);
	before = mstore_uidlist_bytes;
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_EQ_INT(ch.exists, 202);
	mfolder_changes_free(&ch);
	T_CHECK(mstore_uidlist_bytes - before < 200);
	T_EQ_INT(uid_at(f, 202), 300);
	T_EQ_INT(mfolder_msg(f, 202)->flags, MSF_SEEN);
	/* Both sides number on from there. */
	T_EQ_INT(append(s, "INBOX", "Subject: z\n\nz\n", 0, NULL, 0), 301);
	T_EQ_INT(mfolder_sync(f, &ch), 0);
	T_EQ_INT(ch.exists, 203);
	mfolder_changes_free(&ch);
	T_EQ_INT(uid_at(f, 203), 301);
	mfolder_close(f);
	/* Rewritten in place (same inode, longer, other bytes): read whole, as a new list. */
	{
		struct stat st;
		char *text;
		size_t n;

		T_EQ_INT(stat(at("%s/dovecot-uidlist", m), &st), 0);
		n = (size_t)st.st_size + 100;
		text = xmalloc(n + 1);
		memset(text, '#', n);
		memcpy(text, "3 V77 N1\n", 9);
		text[n - 1] = '\n';
		text[n] = '\0';
		for (size_t i = 9; i + 1 < n; i += 40)
			text[i] = '\n';	/* (lines the parser refuses: a broken list) */
		fd = open(at("%s/dovecot-uidlist", m), O_WRONLY | O_TRUNC);
		T_CHECK(fd >= 0 && write_all(fd, text, n) == 0);
		close(fd);
		free(text);
		write_text(at("%s/dovecot-uidlist", m), "3 V77 N5\n");
	}
	f = mfolder_open(s, "INBOX", false);
	T_CHECK(f != NULL);
	if (f != NULL) {
		uint32_t next = mfolder_uidnext(f);

		T_EQ_INT(mfolder_uidvalidity(f), 77);
		T_EQ_INT(mfolder_count(f), 203);
		/* The store's APPEND notices the new list too. */
		T_EQ_INT(append(s, "INBOX", "Subject: w\n\nw\n", 0, NULL, 0), next);
		T_EQ_INT(mfolder_sync(f, &ch), 0);
		T_EQ_INT(ch.exists, 204);
		mfolder_changes_free(&ch);
		mfolder_close(f);
	}
	mstore_close(s);
}

/* ---- a big folder ---------------------------------------------------------------------- */

#define BIG 100000

static void make_big(const char *m)
{
	char name[128], text[64];
	int dfd = open(at("%s/cur", m), O_RDONLY | O_DIRECTORY);

	for (int i = 0; i < BIG && dfd >= 0; i++) {
		int len = str_fmt(text, sizeof(text), "Subject: %d\n\nx\n", i);

		(void)str_fmt(name, sizeof(name), "1700000000.M%06dP1Q%d.big,S=%d,W=%d:2,%s", i % 1000000,
			      i, len, len + 3, i % 3 == 0 ? "S" : "");
		int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);

		if (fd < 0 || write_all(fd, text, (size_t)len) < 0 || close(fd) < 0)
			abort();
	}
	close(dfd);
}

static void test_big_folder(void)
{
	const char *m = fresh();
	struct mstore *s = open_store(m);
	struct mfolder *f;
	unsigned long ops, scans;
	int64_t t0, t_first, t_second, t_trusted;

	if (s == NULL) {
		T_CHECK(0);
		return;
	}
	make_big(m);
	ops = mstore_msg_file_ops;
	t0 = mono_ms();
	f = mfolder_open(s, "INBOX", false);
	t_first = mono_ms() - t0;
	T_CHECK(f != NULL);
	if (f == NULL) {
		mstore_close(s);
		return;
	}
	T_EQ_INT(mfolder_count(f), BIG);
	/* Not even the first time is a message file touched: the sizes are in the names and
	 * the dates are read when asked for. */
	T_EQ_INT(mstore_msg_file_ops - ops, 0);
	T_EQ_INT(uid_at(f, BIG), BIG);
	T_EQ_INT(mfolder_msg(f, 50001)->internal_date, 0);
	mfolder_close(f);

	/* Again: everything comes from postern-index; no message file is touched. */
	ops = mstore_msg_file_ops;
	t0 = mono_ms();
	f = mfolder_open(s, "INBOX", false);
	t_second = mono_ms() - t0;
	T_CHECK(f != NULL);
	if (f == NULL) {
		mstore_close(s);
		return;
	}
	T_EQ_INT(mstore_msg_file_ops - ops, 0);
	T_EQ_INT(mfolder_count(f), BIG);
	T_EQ_INT(mfolder_uidnext(f), BIG + 1);
	T_EQ_INT(mfolder_msg(f, 50001)->size, strlen("Subject: 50000\n\nx\n") + 3);
	T_EQ_INT(mfolder_msg(f, 50001)->flags, 0);
	T_EQ_INT(mfolder_msg(f, 50002)->flags, MSF_SEEN);
	{
		struct stat st;

		T_EQ_INT(stat(at("%s/cur/%s", m, mfolder_msg(f, 50001)->file), &st), 0);
		mfolder_load_date(f, 50001);
		T_EQ_INT(mfolder_msg(f, 50001)->internal_date, st.st_mtime);
		T_EQ_INT(mstore_msg_file_ops - ops, 1);
		/* The next sync keeps what was learnt in postern-index. */
		T_EQ_INT(mfolder_sync(f, NULL), 0);
	}
	mfolder_close(f);
	ops = mstore_msg_file_ops;
	f = mfolder_open(s, "INBOX", false);
	if (f != NULL) {
		struct stat st;

		T_EQ_INT(stat(at("%s/cur/%s", m, mfolder_msg(f, 50001)->file), &st), 0);
		T_EQ_INT(mfolder_msg(f, 50001)->internal_date, st.st_mtime);
		mfolder_load_date(f, 50001);
		T_EQ_INT(mstore_msg_file_ops - ops, 0);
		mfolder_close(f);
	}

	/* Once the directories have been quiet for a while the index vouches for them: an
	 * open then reads neither the directories nor the uidlist. */
	set_mtime(at("%s/cur", m), time(NULL) - 60);
	set_mtime(at("%s/new", m), time(NULL) - 60);
	f = mfolder_open(s, "INBOX", false);	/* this one writes the state line */
	mfolder_close(f);
	ops = mstore_msg_file_ops;
	scans = mstore_dir_scans;
	t0 = mono_ms();
	f = mfolder_open(s, "INBOX", false);
	t_trusted = mono_ms() - t0;
	T_CHECK(f != NULL);
	T_EQ_INT(mstore_dir_scans - scans, 0);
	T_EQ_INT(mstore_msg_file_ops - ops, 0);
	if (f != NULL) {
		T_EQ_INT(mfolder_count(f), BIG);
		T_EQ_INT(mfolder_msg(f, 3)->flags, 0);
		T_EQ_INT(mfolder_msg(f, 4)->flags, MSF_SEEN);
		/* ...and still notices a delivery. */
		deliver_raw(m, 1700000001, 1, "Subject: late\n\nlate\n");
		struct mfolder_changes ch;
		struct stat u0, u1;

		T_EQ_INT(stat(at("%s/dovecot-uidlist", m), &u0), 0);
		T_EQ_INT(mfolder_sync(f, &ch), 0);
		T_EQ_INT(ch.exists, BIG + 1);
		/* The new line was appended, not the whole 100,000-line file rewritten. */
		T_EQ_INT(stat(at("%s/dovecot-uidlist", m), &u1), 0);
		T_EQ_INT(u1.st_ino, u0.st_ino);
		T_CHECK(u1.st_size > u0.st_size);
		T_EQ_INT(mfolder_msg(f, BIG + 1)->uid, BIG + 1);
		mfolder_changes_free(&ch);
		mfolder_close(f);
	}
	fprintf(stderr, "  %d messages: first open %lld ms, second %lld ms, trusted %lld ms\n",
		BIG, (long long)t_first, (long long)t_second, (long long)t_trusted);
	mstore_close(s);
}

/* ---- main ------------------------------------------------------------------------------ */

static void rm_rf(const char *path)
{
	char cmd[1200];

	if (str_fmt(cmd, sizeof(cmd), "rm -rf '%s'", path) > 0 && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", path);
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	T_RUN(test_mutf7);
	T_RUN(test_names);
	T_RUN(test_folders);
	T_RUN(test_rename_inbox);
	T_RUN(test_subscriptions);
	T_RUN(test_append);
	T_RUN(test_delivery);
	T_RUN(test_flags_seen_elsewhere);
	T_RUN(test_set_flags_many);
	T_RUN(test_expunge);
	T_RUN(test_keywords);
	T_RUN(test_keyword_holes);
	T_RUN(test_copy);
	T_RUN(test_quota);
	T_RUN(test_symlinks);
	T_RUN(test_status_and_modseq);
	T_RUN(test_uidlist_parsing);
	T_RUN(test_locks);
	T_RUN(test_dovecot_maildir);
	T_RUN(test_concurrent_writers);
	T_RUN(test_foreign_uidlist_changes);
	T_RUN(test_uidlist_incremental);
	T_RUN(test_first_numbering_twins);
	T_RUN(test_big_folder);
	if (getenv("KEEP_TMP") == NULL)
		rm_rf(tmpdir);
	return T_DONE();
}
