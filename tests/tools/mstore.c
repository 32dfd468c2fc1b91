/*
 * mstore: drive lib/mailstore from the command line, for tests/e2e/test_mailstore_dovecot.py
 * (which compares what it sees and writes with real Dovecot's doveadm).
 *
 *   mstore ROOT list | subs
 *   mstore ROOT create|delete|subscribe|unsubscribe NAME
 *   mstore ROOT rename FROM TO
 *   mstore ROOT status NAME        "messages=N uidvalidity=V uidnext=U unseen=S"
 *   mstore ROOT dump NAME          "uidvalidity=V uidnext=U", then "UID<TAB>FLAGS" per message
 *                                  (FLAGS as doveadm prints them, \Recent left out)
 *   mstore ROOT append NAME [DATE] [FLAG...] < message   prints "uidvalidity=V uid=U"
 *   mstore ROOT store NAME UID [FLAG...]     replace the flags (\Seen ... and keywords)
 *   mstore ROOT expunge NAME                 expunge the \Deleted messages
 *   mstore ROOT copy NAME UID TARGET         prints "uidvalidity=V uid=U"
 *
 * Exit status 0 on success, 1 with the store's error on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "mailstore.h"
#include "util.h"

static const struct {
	unsigned bit;
	const char *name;
} sys_flags[] = {
	{ MSF_ANSWERED, "\\Answered" }, { MSF_FLAGGED, "\\Flagged" }, { MSF_DELETED, "\\Deleted" },
	{ MSF_SEEN, "\\Seen" }, { MSF_DRAFT, "\\Draft" },
};

static int fail(struct mstore *s, const char *what)
{
	fprintf(stderr, "mstore: %s: %s\n", what, s != NULL ? mstore_error(s) : strerror(errno));
	return 1;
}

static unsigned sys_flag(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(sys_flags); i++)
		if (strcasecmp(name, sys_flags[i].name) == 0)
			return sys_flags[i].bit;
	return 0;
}

static int print_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%s\n", names[i]);
	mstore_names_free(names, n);
	return 0;
}

static int dump(struct mstore *s, const char *name)
{
	struct mfolder *f = mfolder_open(s, name, true);
	const char *const *kw;
	size_t nkw;

	if (f == NULL)
		return fail(s, name);
	nkw = mfolder_keywords(f, &kw);
	printf("uidvalidity=%u uidnext=%u\n", mfolder_uidvalidity(f), mfolder_uidnext(f));
	for (uint32_t seq = 1; seq <= mfolder_count(f); seq++) {
		const struct mmsg *m = mfolder_msg(f, seq);
		const char *sep = "";

		printf("%u\t", m->uid);
		for (size_t i = 0; i < ARRAY_LEN(sys_flags); i++)
			if (m->flags & sys_flags[i].bit) {
				printf("%s%s", sep, sys_flags[i].name);
				sep = " ";
			}
		for (size_t i = 0; i < nkw; i++)
			if (m->keywords & (1u << i)) {
				printf("%s%s", sep, kw[i]);
				sep = " ";
			}
		printf("\n");
	}
	mfolder_close(f);
	return 0;
}

static int append(struct mstore *s, const char *name, int argc, char **argv)
{
	const char *kws[MS_MAX_KEYWORDS];
	unsigned flags = 0;
	size_t nkw = 0;
	time_t date = 0;
	uint32_t v, uid;
	struct buf b;
	char chunk[65536];
	ssize_t n;
	int i = 0;

	if (argc > 0 && argv[0][0] >= '0' && argv[0][0] <= '9')
		date = (time_t)atoll(argv[i++]);
	for (; i < argc; i++) {
		if (argv[i][0] == '\\')
			flags |= sys_flag(argv[i]);
		else if (nkw < MS_MAX_KEYWORDS)
			kws[nkw++] = argv[i];
	}
	buf_init(&b, 64 << 20);
	while ((n = read(0, chunk, sizeof(chunk))) > 0)
		if (buf_append(&b, chunk, (size_t)n) < 0)
			return fail(NULL, "stdin");
	if (mstore_append(s, name, buf_cstr(&b), b.len, flags, kws, nkw, date, &v, &uid) < 0)
		return fail(s, "append");
	buf_free(&b);
	printf("uidvalidity=%u uid=%u\n", v, uid);
	return 0;
}

static int store(struct mstore *s, const char *name, uint32_t uid, int argc, char **argv)
{
	struct mfolder *f = mfolder_open(s, name, false);
	unsigned flags = 0;
	uint32_t kw = 0;
	int rc = 0;

	if (f == NULL)
		return fail(s, name);
	for (int i = 0; i < argc; i++) {
		int idx = argv[i][0] == '\\' ? -2 : mfolder_keyword_index(f, argv[i], true);

		if (idx == -2)
			flags |= sys_flag(argv[i]);
		else if (idx >= 0)
			kw |= 1u << idx;
		else
			rc = fail(s, argv[i]);
	}
	if (rc == 0 && mfolder_set_flags(f, mfolder_seq_of_uid(f, uid), flags, kw) < 0)
		rc = fail(s, "store");
	mfolder_close(f);
	return rc;
}

static int expunge(struct mstore *s, const char *name)
{
	struct mfolder *f = mfolder_open(s, name, false);
	struct mfolder_changes ch;
	int rc = 0;

	if (f == NULL)
		return fail(s, name);
	if (mfolder_expunge(f, NULL, 0, &ch) < 0)
		rc = fail(s, "expunge");
	else
		printf("expunged=%zu\n", ch.nexpunged);
	mfolder_changes_free(&ch);
	mfolder_close(f);
	return rc;
}

static int copy(struct mstore *s, const char *name, uint32_t uid, const char *target)
{
	struct mfolder *f = mfolder_open(s, name, false);
	uint32_t v, nuid;
	int rc = 0;

	if (f == NULL)
		return fail(s, name);
	if (mfolder_copy(f, mfolder_seq_of_uid(f, uid), target, &v, &nuid) < 0)
		rc = fail(s, "copy");
	else
		printf("uidvalidity=%u uid=%u\n", v, nuid);
	mfolder_close(f);
	return rc;
}

static int run(struct mstore *s, int argc, char **argv)
{
	const char *cmd = argv[0], *name = argc > 1 ? argv[1] : "";
	char **names;
	size_t n;
	struct mstatus st;

	if (strcmp(cmd, "list") == 0)
		return mstore_list(s, &names, &n) < 0 ? fail(s, cmd) : print_names(names, n);
	if (strcmp(cmd, "subs") == 0)
		return mstore_subscriptions(s, &names, &n) < 0 ? fail(s, cmd) : print_names(names, n);
	if (argc < 2)
		return 2;
	if (strcmp(cmd, "create") == 0)
		return mstore_create(s, name) < 0 ? fail(s, cmd) : 0;
	if (strcmp(cmd, "delete") == 0)
		return mstore_delete(s, name) < 0 ? fail(s, cmd) : 0;
	if (strcmp(cmd, "subscribe") == 0 || strcmp(cmd, "unsubscribe") == 0)
		return mstore_subscribe(s, name, cmd[0] == 's') < 0 ? fail(s, cmd) : 0;
	if (strcmp(cmd, "rename") == 0 && argc == 3)
		return mstore_rename(s, name, argv[2]) < 0 ? fail(s, cmd) : 0;
	if (strcmp(cmd, "status") == 0) {
		if (mstore_status(s, name, &st) < 0)
			return fail(s, cmd);
		printf("messages=%u uidvalidity=%u uidnext=%u unseen=%u\n", st.messages,
		       st.uidvalidity, st.uidnext, st.unseen);
		return 0;
	}
	if (strcmp(cmd, "dump") == 0)
		return dump(s, name);
	if (strcmp(cmd, "append") == 0)
		return append(s, name, argc - 2, argv + 2);
	if (strcmp(cmd, "store") == 0 && argc >= 3)
		return store(s, name, (uint32_t)strtoul(argv[2], NULL, 10), argc - 3, argv + 3);
	if (strcmp(cmd, "expunge") == 0)
		return expunge(s, name);
	if (strcmp(cmd, "copy") == 0 && argc == 4)
		return copy(s, name, (uint32_t)strtoul(argv[2], NULL, 10), argv[3]);
	return 2;
}

int main(int argc, char **argv)
{
	char err[256];
	struct mstore *s;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: mstore ROOT COMMAND [ARG...]\n");
		return 2;
	}
	s = mstore_open(argv[1], err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "mstore: %s\n", err);
		return 1;
	}
	rc = run(s, argc - 2, argv + 2);
	if (rc == 2)
		fprintf(stderr, "mstore: bad command\n");
	mstore_close(s);
	return rc;
}
