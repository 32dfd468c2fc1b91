/*
 * test_aliases.c: unit tests of lib/aliases.c: the aliases(5) grammar (names, continuation
 * lines, comments, quotes, escapes), the problems it reports with their line numbers, the
 * kinds of targets, :include: lists, and a file re-read when it changes on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases.h"
#include "t.h"

/* Warnings collected as "LINE: message" lines. */
static char warnings[4096];
static int nwarn;

static void collect(void *arg, unsigned line, const char *msg)
{
	size_t len = strlen(warnings);

	(void)arg;
	nwarn++;
	(void)snprintf(warnings + len, sizeof(warnings) - len, "%u: %s\n", line, msg);
}

static void parse(const char *text, struct aliases *a)
{
	warnings[0] = '\0';
	nwarn = 0;
	aliases_parse(text, strlen(text), a, collect, NULL);
}

static const char *target(const struct aliases *a, const char *name, size_t i)
{
	const struct alias *e = aliases_find(a, name);

	return e && i < e->ntarget ? e->target[i] : NULL;
}

static size_t ntargets(const struct aliases *a, const char *name)
{
	const struct alias *e = aliases_find(a, name);

	return e ? e->ntarget : 0;
}

static void test_basic_entries(void)
{
	struct aliases a;

	parse("# system aliases\n"
	      "postmaster: root\n"
	      "Team:  alice ,bob,  carol@example.org  \n"
	      "\n"
	      "root:\tadmin\n", &a);
	T_EQ_INT(nwarn, 0);
	T_EQ_INT(a.n, 3);
	T_EQ_STR(target(&a, "postmaster", 0), "root");
	T_EQ_INT(ntargets(&a, "team"), 3);
	T_EQ_STR(target(&a, "TEAM", 0), "alice");	/* names ignore case */
	T_EQ_STR(target(&a, "team", 1), "bob");
	T_EQ_STR(target(&a, "team", 2), "carol@example.org");
	T_EQ_STR(target(&a, "root", 0), "admin");
	T_CHECK(aliases_find(&a, "Team")->line == 3);
	T_CHECK(aliases_find(&a, "nobody") == NULL);
	T_CHECK(aliases_find(&a, "") == NULL);
	aliases_free(&a);
}

static void test_continuation_and_comments(void)
{
	struct aliases a;

	parse("staff: alice,\r\n"
	      "   bob,\r\n"
	      "# a comment inside the entry does not end it\r\n"
	      "\r\n"
	      "\tcarol\r\n"
	      "other: dave\r\n"
	      "    # an indented comment\n"
	      "  , erin\n", &a);
	T_EQ_INT(nwarn, 0);
	T_EQ_INT(ntargets(&a, "staff"), 3);
	T_EQ_STR(target(&a, "staff", 2), "carol");
	T_EQ_INT(ntargets(&a, "other"), 2);
	T_EQ_STR(target(&a, "other", 1), "erin");
	T_EQ_INT(aliases_find(&a, "other")->line, 6);
	aliases_free(&a);
}

static void test_quotes_and_commands(void)
{
	struct aliases a;

	parse("log: \"|/usr/bin/logger -t mail, with comma\", /var/log/copy\n"
	      "proc: |/usr/bin/procmail -a x\n"
	      "esc: \"|echo \\\"hi\\\" \\\\ there \"\n"
	      "\"odd name\": \\root\n"
	      "inc: :include:/etc/mail/staff\n", &a);
	T_EQ_INT(nwarn, 0);
	T_EQ_INT(ntargets(&a, "log"), 2);
	T_EQ_STR(target(&a, "log", 0), "|/usr/bin/logger -t mail, with comma");
	T_EQ_STR(target(&a, "log", 1), "/var/log/copy");
	T_EQ_STR(target(&a, "proc", 0), "|/usr/bin/procmail -a x");
	T_EQ_STR(target(&a, "esc", 0), "|echo \"hi\" \\ there ");	/* quoted blanks kept */
	T_EQ_STR(target(&a, "odd name", 0), "\\root");
	T_EQ_STR(target(&a, "inc", 0), ":include:/etc/mail/staff");
	aliases_free(&a);
}

static void test_target_kinds(void)
{
	const char *v;

	T_EQ_INT(alias_target_kind("|/bin/cat", &v), ALIAS_COMMAND);
	T_EQ_STR(v, "/bin/cat");
	T_EQ_INT(alias_target_kind("/var/log/x", &v), ALIAS_FILE);
	T_EQ_STR(v, "/var/log/x");
	T_EQ_INT(alias_target_kind(":INCLUDE: /etc/list", &v), ALIAS_INCLUDE);
	T_EQ_STR(v, "/etc/list");
	T_EQ_INT(alias_target_kind("\\alice", &v), ALIAS_NOEXPAND);
	T_EQ_STR(v, "alice");
	T_EQ_INT(alias_target_kind("bob@example.org", &v), ALIAS_ADDRESS);
	T_EQ_STR(v, "bob@example.org");
}

static void test_problems_are_reported_and_skipped(void)
{
	struct aliases a;

	parse("  orphan continuation\n"		/* 1 */
	      "nocolon alice\n"			/* 2 */
	      "open: \"|never closed\n"		/* 3 */
	      "good: alice\n"			/* 4 */
	      ": nobody\n"			/* 5 */
	      "empty:\n"			/* 6 */
	      "good: bob\n"			/* 7: duplicate, the first wins */
	      "ctl: a\001b\n"			/* 8 */
	      "nothing: \"\"\n"			/* 9 */
	      "also: carol,\n", &a);		/* 10: a trailing comma is harmless */
	T_EQ_INT(a.n, 2);
	T_EQ_STR(target(&a, "good", 0), "alice");
	T_EQ_STR(target(&a, "also", 0), "carol");
	T_EQ_INT(ntargets(&a, "also"), 1);
	T_EQ_INT(nwarn, 8);
	T_CHECK(strstr(warnings, "1: continuation line without an entry") != NULL);
	T_CHECK(strstr(warnings, "2: white space in the name") != NULL);
	T_CHECK(strstr(warnings, "3: unterminated quote") != NULL);
	T_CHECK(strstr(warnings, "5: empty name") != NULL);
	T_CHECK(strstr(warnings, "6: no targets") != NULL);
	T_CHECK(strstr(warnings, "7: duplicate entry \"good\" (first at line 4)") != NULL);
	T_CHECK(strstr(warnings, "8: control character") != NULL);
	T_CHECK(strstr(warnings, "9: empty quoted target") != NULL);
	aliases_free(&a);
}

static void test_nul_and_limits(void)
{
	static const char text[] = "a: x\0y\nb: z\n";
	struct aliases a;
	char *big = malloc(ALIASES_MAX_TARGET + 64);

	warnings[0] = '\0';
	nwarn = 0;
	aliases_parse(text, sizeof(text) - 1, &a, collect, NULL);
	T_EQ_INT(a.n, 1);
	T_EQ_STR(target(&a, "b", 0), "z");
	T_CHECK(strstr(warnings, "1: NUL byte") != NULL);
	aliases_free(&a);

	memcpy(big, "long: ", 6);
	memset(big + 6, 'x', ALIASES_MAX_TARGET + 1);
	strcpy(big + 6 + ALIASES_MAX_TARGET + 1, "\nok: y\n");
	parse(big, &a);
	T_EQ_INT(a.n, 1);
	T_CHECK(strstr(warnings, "1: target too long") != NULL);
	aliases_free(&a);
	free(big);
}

static void test_include_list(void)
{
	static const char text[] = "# staff\nalice, bob\n\n  carol\n\"|/bin/cat\", \"unterminated\n"
				   "dave\n";
	char **list;
	size_t n;

	warnings[0] = '\0';
	nwarn = 0;
	aliases_parse_list(text, sizeof(text) - 1, &list, &n, collect, NULL);
	T_EQ_INT(n, 4);
	if (n == 4) {
		T_EQ_STR(list[0], "alice");
		T_EQ_STR(list[1], "bob");
		T_EQ_STR(list[2], "carol");
		T_EQ_STR(list[3], "dave");
	}
	T_EQ_INT(nwarn, 1);
	T_CHECK(strstr(warnings, "5: unterminated quote") != NULL);
	aliases_list_free(list, n);
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);

	if (fd >= 0)
		close(fd);
	return ok && chmod(path, mode) == 0 ? 0 : -1;
}

static void test_file_reread_on_change(void)
{
	char dir[] = "/tmp/test_aliases.XXXXXX", path[128];
	struct aliases_file f;

	T_CHECK(mkdtemp(dir) != NULL);
	(void)snprintf(path, sizeof(path), "%s/aliases", dir);
	aliases_file_init(&f, path);

	T_EQ_INT(aliases_file_refresh(&f, NULL, NULL), 1);	/* missing: empty */
	T_CHECK(f.loaded && !f.present && f.tab.n == 0);
	T_EQ_INT(aliases_file_refresh(&f, NULL, NULL), 0);

	T_EQ_INT(write_text(path, "a: alice\n", 0644), 0);
	T_EQ_INT(aliases_file_refresh(&f, NULL, NULL), 1);
	T_CHECK(f.present);
	T_EQ_STR(target(&f.tab, "a", 0), "alice");
	T_EQ_INT(aliases_file_refresh(&f, NULL, NULL), 0);	/* unchanged */
	if (geteuid() == 0)
		T_CHECK(f.trusted);

	T_EQ_INT(write_text(path, "a: bob\nb: carol\n", 0644), 0);
	T_EQ_INT(aliases_file_refresh(&f, NULL, NULL), 1);
	T_EQ_STR(target(&f.tab, "a", 0), "bob");
	T_EQ_STR(target(&f.tab, "b", 0), "carol");

	T_EQ_INT(chmod(path, 0664), 0);		/* ctime changes: trust is re-checked */
	T_EQ_INT(aliases_file_refresh(&f, NULL, NULL), 1);
	T_CHECK(!f.trusted);
	T_EQ_STR(target(&f.tab, "b", 0), "carol");

	T_EQ_INT(unlink(path), 0);
	T_EQ_INT(mkfifo(path, 0600), 0);	/* not a regular file: refused, never blocks */
	errno = 0;
	T_EQ_INT(aliases_file_refresh(&f, NULL, NULL), -1);
	T_EQ_INT(errno, EINVAL);
	T_CHECK(!f.loaded && f.tab.n == 0);

	T_EQ_INT(unlink(path), 0);
	T_EQ_INT(aliases_file_refresh(&f, NULL, NULL), 1);
	T_CHECK(f.loaded && !f.present);
	aliases_file_free(&f);
	T_EQ_INT(rmdir(dir), 0);
}

static void test_trusted_stat(void)
{
	struct stat st = { .st_mode = S_IFREG | 0644, .st_uid = 0 };

	T_CHECK(aliases_stat_trusted(&st));
	st.st_mode = S_IFREG | 0664;
	T_CHECK(!aliases_stat_trusted(&st));
	st.st_mode = S_IFREG | 0646;
	T_CHECK(!aliases_stat_trusted(&st));
	st.st_mode = S_IFREG | 0600;
	st.st_uid = 1000;
	T_CHECK(!aliases_stat_trusted(&st));
}

int main(void)
{
	T_RUN(test_basic_entries);
	T_RUN(test_continuation_and_comments);
	T_RUN(test_quotes_and_commands);
	T_RUN(test_target_kinds);
	T_RUN(test_problems_are_reported_and_skipped);
	T_RUN(test_nul_and_limits);
	T_RUN(test_include_list);
	T_RUN(test_file_reread_on_change);
	T_RUN(test_trusted_stat);
	return T_DONE();
}
