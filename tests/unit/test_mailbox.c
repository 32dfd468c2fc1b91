/*
 * test_mailbox: lib/mailbox.c, the Maildir path of a virtual user and its creation below
 * virtual_mailbox_base (shared by `postern admin user add` and postern-virtual): template
 * expansion, the lexical "below the base" check, and the walk that creates the layout but
 * refuses symbolic links, ".." and paths outside the base.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox.h"
#include "t.h"
#include "util.h"

static char base[64];

static void test_paths(void)
{
	struct addr a;
	char out[256];

	T_EQ_INT(addr_parse("Alice@Example.ORG", NULL, &a), 0);
	T_EQ_INT(mailbox_expand("/v/%d/%n/%u/%%", &a, out, sizeof(out)), 0);
	T_EQ_STR(out, "/v/example.org/Alice/Alice@example.org/%");
	T_EQ_INT(mailbox_expand("/v/%x", &a, out, sizeof(out)), -1);
	T_EQ_INT(mailbox_expand("/v/%", &a, out, sizeof(out)), -1);
	T_EQ_INT(mailbox_expand("/v/%d", &a, out, 8), -1);

	T_EQ_INT(mailbox_maildir_path("/h", "~/Maildir", &a, out, sizeof(out)), 0);
	T_EQ_STR(out, "/h/Maildir");
	T_EQ_INT(mailbox_maildir_path("/h", "maildir:~/Mail", &a, out, sizeof(out)), 0);
	T_EQ_STR(out, "/h/Mail");
	T_EQ_INT(mailbox_maildir_path("/h", "~", &a, out, sizeof(out)), 0);
	T_EQ_STR(out, "/h");
	T_EQ_INT(mailbox_maildir_path("/h", "/m/%d/%n", &a, out, sizeof(out)), 0);
	T_EQ_STR(out, "/m/example.org/Alice");
	T_EQ_INT(mailbox_maildir_path("/h", "Maildir", &a, out, sizeof(out)), -1);
	T_EQ_INT(mailbox_maildir_path("/h", "mbox:~/mail", &a, out, sizeof(out)), -1);
}

static void test_below_base(void)
{
	T_CHECK(mailbox_below_base("/var/mail/vhosts", "/var/mail/vhosts/d/u"));
	T_CHECK(mailbox_below_base("/var/mail/vhosts/", "/var/mail/vhosts/d/u/Maildir"));
	T_CHECK(!mailbox_below_base("/var/mail/vhosts", "/var/mail/vhosts"));
	T_CHECK(!mailbox_below_base("/var/mail/vhosts", "/var/mail/vhosts/"));
	T_CHECK(!mailbox_below_base("/var/mail/vhosts", "/var/mail/vhostsX/d"));
	T_CHECK(!mailbox_below_base("/var/mail/vhosts", "/var/mail/vhosts/d/../../etc"));
	T_CHECK(!mailbox_below_base("/var/mail/vhosts", "/var/mail/vhosts/./d"));
	T_CHECK(!mailbox_below_base("/var/mail/vhosts", "/var/mail/vhosts/d/.."));
	T_CHECK(mailbox_below_base("/var/mail/vhosts", "/var/mail/vhosts/d/..u/.x"));
	T_CHECK(!mailbox_below_base("/var/mail/vhosts", "/etc/passwd"));
	T_CHECK(!mailbox_below_base("relative", "relative/d"));
	T_CHECK(!mailbox_below_base("/", "/etc"));
}

static bool is_dir(const char *path, mode_t mode)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == mode &&
	       st.st_uid == getuid();
}

static void test_create_and_open(void)
{
	char md[256], p[320], err[512];
	int fd;

	(void)str_fmt(md, sizeof(md), "%s/d.test/u/Maildir", base);
	/* Without create a missing Maildir is ENOENT (postern-virtual then creates it). */
	fd = mailbox_open(base, md, getuid(), getgid(), false, err, sizeof(err));
	T_CHECK(fd < 0 && errno == ENOENT);
	fd = mailbox_open(base, md, getuid(), getgid(), true, err, sizeof(err));
	T_CHECK(fd >= 0);
	if (fd >= 0)
		(void)close(fd);
	(void)str_fmt(p, sizeof(p), "%s/d.test", base);
	T_CHECK(is_dir(p, 0700));
	T_CHECK(is_dir(md, 0700));
	(void)str_fmt(p, sizeof(p), "%s/new", md);
	T_CHECK(is_dir(p, 0700));
	(void)str_fmt(p, sizeof(p), "%s/.Trash/cur", md);
	T_CHECK(is_dir(p, 0700));
	(void)str_fmt(p, sizeof(p), "%s/.Archive/maildirfolder", md);
	T_EQ_INT(access(p, F_OK), 0);
	(void)str_fmt(p, sizeof(p), "%s/subscriptions", md);
	T_EQ_INT(access(p, F_OK), 0);
	/* Now it opens without creating. */
	fd = mailbox_open(base, md, getuid(), getgid(), false, err, sizeof(err));
	T_CHECK(fd >= 0);
	if (fd >= 0)
		(void)close(fd);
}

static void test_refusals(void)
{
	char md[256], link[256], err[512];
	int fd;

	/* A symbolic link on the way (here: the domain directory) stops the walk. */
	(void)str_fmt(link, sizeof(link), "%s/evil.test", base);
	T_EQ_INT(symlink("/tmp", link), 0);
	(void)str_fmt(md, sizeof(md), "%s/evil.test/u/Maildir", base);
	fd = mailbox_open(base, md, getuid(), getgid(), true, err, sizeof(err));
	T_CHECK(fd < 0 && (errno == ELOOP || errno == ENOTDIR));
	T_CHECK(strstr(err, "symbolic link") != NULL);
	T_CHECK(access("/tmp/u/Maildir", F_OK) < 0);
	/* Outside the base, or with "..": refused before anything is touched. */
	fd = mailbox_open(base, "/tmp/elsewhere/Maildir", getuid(), getgid(), true, err,
			  sizeof(err));
	T_CHECK(fd < 0 && errno == EINVAL);
	(void)str_fmt(md, sizeof(md), "%s/d.test/../../x/Maildir", base);
	fd = mailbox_open(base, md, getuid(), getgid(), true, err, sizeof(err));
	T_CHECK(fd < 0 && errno == EINVAL);
}

int main(void)
{
	char cmd[128];
	int rc;

	(void)str_copy(base, sizeof(base), "/tmp/test_mailbox.XXXXXX");
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	T_RUN(test_paths);
	T_RUN(test_below_base);
	T_RUN(test_create_and_open);
	T_RUN(test_refusals);
	rc = T_DONE();
	(void)str_fmt(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", base);
	return rc;
}
