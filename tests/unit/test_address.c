/*
 * test_address.c: lib/address.c, the validation every lookup key and mailbox path passes.
 */
#include <string.h>

#include "address.h"
#include "t.h"

static void test_good(void)
{
	struct addr a;

	T_EQ_INT(addr_parse("Alice@Example.ORG", NULL, &a), 0);
	T_EQ_STR(a.full, "Alice@example.org");
	T_EQ_STR(a.local, "Alice");
	T_EQ_STR(a.domain, "example.org");
	T_EQ_INT(addr_parse("root", "localhost", &a), 0);
	T_EQ_STR(a.full, "root@localhost");
	T_EQ_INT(addr_parse("a@b@c.test", NULL, &a), -1);	/* '@' never in a local part */
	T_EQ_INT(addr_parse("user.name+tag@sub.example.org", NULL, &a), 0);
	T_EQ_INT(addr_parse("j\xc3\xb6rg@b\xc3\xbc" "cher.example", NULL, &a), 0);
}

static void test_garbage(void)
{
	static const char *const bad[] = {
		"", "@", "user@", "@example.org", "root", "user@exa mple.org", "us er@example.org",
		"user@example..org", "user@.example.org", "user@example.org.", "user@-example.org",
		"../etc@example.org", ".hidden@example.org", "a..b@example.org",
		"a/b@example.org", "a\\b@example.org", "user@exa/mple.org", "user@example.org\n",
		"us\ter@example.org", "us\rer@example.org", "user@exam_ple.org", "\x7f@example.org",
	};
	struct addr a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = addr_parse(bad[i], NULL, &a);

		if (r != -1)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
		T_EQ_INT(r, -1);
	}
}

static void test_limits(void)
{
	char buf[600];
	struct addr a;

	memset(buf, 'x', 64);
	strcpy(buf + 64, "@example.org");
	T_EQ_INT(addr_parse(buf, NULL, &a), 0);		/* 64-octet local part */
	memset(buf, 'x', 65);
	strcpy(buf + 65, "@example.org");
	T_EQ_INT(addr_parse(buf, NULL, &a), -1);	/* 65 */
	buf[0] = 'u';
	buf[1] = '@';
	memset(buf + 2, 'd', 255);
	buf[2 + 255] = '\0';
	T_EQ_INT(addr_parse(buf, NULL, &a), 0);		/* 255-octet domain */
	memset(buf + 2, 'd', 256);
	buf[2 + 256] = '\0';
	T_EQ_INT(addr_parse(buf, NULL, &a), -1);	/* 256 */
	memset(buf, 'x', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	T_EQ_INT(addr_parse(buf, "example.org", &a), -1);	/* overlong, no '@' */
}

static void test_extension(void)
{
	struct addr a, b;

	T_EQ_INT(addr_parse("user+tag+more@example.org", NULL, &a), 0);
	T_CHECK(addr_strip_extension(&a, "+", &b));
	T_EQ_STR(b.full, "user@example.org");
	T_CHECK(addr_strip_extension(&a, "-+", &b));
	T_EQ_INT(addr_parse("user@example.org", NULL, &a), 0);
	T_CHECK(!addr_strip_extension(&a, "+", &b));
	T_EQ_INT(addr_parse("+tag@example.org", NULL, &a), 0);
	T_CHECK(!addr_strip_extension(&a, "+", &b));	/* nothing left before it */
	T_CHECK(!addr_strip_extension(&a, "", &b));
	T_CHECK(addr_equal("A@Example.org", "a@EXAMPLE.ORG"));
	T_CHECK(!addr_equal("a@example.org", "b@example.org"));
}

int main(void)
{
	T_RUN(test_good);
	T_RUN(test_garbage);
	T_RUN(test_limits);
	T_RUN(test_extension);
	return T_DONE();
}
