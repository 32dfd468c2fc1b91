/*
 * test_buf.c: unit tests for lib/buf.c, the growable byte buffer with a hard limit: growth,
 * the limit (nothing is appended past it), embedded NUL bytes, consume and reset, and
 * appending a buffer's own bytes to itself.
 */
#include <errno.h>
#include <string.h>

#include "buf.h"
#include "t.h"

static void test_empty(void)
{
	struct buf b;

	buf_init(&b, 100);
	T_CHECK(b.data == NULL);
	T_EQ_INT(b.len, 0);
	T_EQ_INT(b.limit, 100);
	T_EQ_STR(buf_cstr(&b), "");
	buf_reset(&b);		/* on a buffer that never allocated */
	buf_consume(&b, 5);
	T_EQ_INT(b.len, 0);
	buf_free(&b);
	buf_free(&b);		/* twice is harmless */
	T_CHECK(b.data == NULL);
}

static void test_append(void)
{
	struct buf b;

	buf_init(&b, 1000);
	T_EQ_INT(buf_append(&b, "abc", 3), 0);
	T_EQ_INT(buf_append_str(&b, "def"), 0);
	T_EQ_INT(buf_append_char(&b, 'g'), 0);
	T_EQ_INT(buf_append(&b, "zzz", 0), 0);
	T_EQ_INT(b.len, 7);
	T_EQ_STR(buf_cstr(&b), "abcdefg");
	T_CHECK(b.cap > b.len);
	T_EQ_INT(b.data[b.len], '\0');
	buf_free(&b);

	/* An empty append still gives a NUL-terminated, non-NULL string. */
	buf_init(&b, 10);
	T_EQ_INT(buf_append(&b, "", 0), 0);
	T_CHECK(b.data != NULL && b.data[0] == '\0');
	buf_free(&b);
}

static void test_growth(void)
{
	struct buf b;
	size_t i;
	int ok = 1;

	buf_init(&b, 100000);
	for (i = 0; i < 100000; i++)
		if (buf_append_char(&b, (char)('a' + i % 26)) < 0)
			ok = 0;
	T_CHECK(ok);
	T_EQ_INT(b.len, 100000);
	T_CHECK(b.cap >= 100001);
	for (i = 0; i < 100000; i++)
		if (b.data[i] != (char)('a' + i % 26))
			ok = 0;
	T_CHECK(ok);
	T_EQ_INT(b.data[100000], '\0');
	buf_free(&b);
}

static void test_limit(void)
{
	struct buf b;

	buf_init(&b, 5);
	T_EQ_INT(buf_append(&b, "abc", 3), 0);
	errno = 0;
	T_EQ_INT(buf_append(&b, "def", 3), -1);		/* 6 > 5 */
	T_EQ_INT(errno, EMSGSIZE);
	T_EQ_STR(buf_cstr(&b), "abc");			/* nothing appended */
	T_EQ_INT(buf_append(&b, "de", 2), 0);		/* exactly the limit */
	T_EQ_STR(buf_cstr(&b), "abcde");
	T_EQ_INT(buf_append_char(&b, 'x'), -1);
	T_EQ_INT(buf_append(&b, "", 0), 0);		/* nothing still fits */
	T_EQ_INT(buf_printf(&b, "%d", 1), -1);
	T_EQ_INT(buf_append(&b, "x", (size_t)-1), -1);	/* huge n: no wrap-around */
	T_EQ_INT(b.len, 5);
	buf_free(&b);

	buf_init(&b, 0);
	T_EQ_INT(buf_append_char(&b, 'x'), -1);
	T_EQ_INT(buf_printf(&b, "%s", ""), 0);
	T_EQ_STR(buf_cstr(&b), "");
	buf_free(&b);

	/* Even without a limit, a length that would wrap size_t is refused. */
	buf_init(&b, (size_t)-1);
	T_EQ_INT(buf_append_char(&b, 'x'), 0);
	T_EQ_INT(buf_append(&b, "x", (size_t)-2), -1);
	T_EQ_INT(b.len, 1);
	buf_free(&b);
}

static void test_embedded_nul(void)
{
	struct buf b;

	buf_init(&b, 100);
	T_EQ_INT(buf_append(&b, "a\0b", 3), 0);
	T_EQ_INT(buf_append_char(&b, '\0'), 0);
	T_EQ_INT(b.len, 4);
	T_CHECK(memcmp(b.data, "a\0b\0", 5) == 0);
	buf_consume(&b, 1);
	T_EQ_INT(b.len, 3);
	T_CHECK(memcmp(b.data, "\0b\0", 4) == 0);
	buf_free(&b);
}

static void test_append_u64(void)
{
	struct buf b;
	const unsigned long long v[] = { 0, 7, 10, 4294967295ULL, 18446744073709551615ULL };
	char want[32];

	buf_init(&b, 100);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		buf_reset(&b);
		T_EQ_INT(buf_append_u64(&b, v[i]), 0);
		(void)snprintf(want, sizeof(want), "%llu", v[i]);
		T_EQ_STR(buf_cstr(&b), want);
	}
	buf_free(&b);
	buf_init(&b, 3);
	T_EQ_INT(buf_append_u64(&b, 1234), -1);	/* over the limit: nothing appended */
	T_EQ_INT(b.len, 0);
	buf_free(&b);
}

static void test_printf(void)
{
	struct buf b;
	int i;

	buf_init(&b, 10000);
	T_EQ_INT(buf_printf(&b, "%s=%d", "x", 42), 0);
	T_EQ_INT(buf_printf(&b, "%c", '!'), 0);
	T_EQ_STR(buf_cstr(&b), "x=42!");
	T_EQ_INT(b.len, 5);
	for (i = 0; i < 1000; i++)
		T_EQ_INT(buf_printf(&b, "%03d", i % 1000), 0);
	T_EQ_INT(b.len, 5 + 3000);
	T_CHECK(memcmp(b.data + b.len - 6, "998999", 6) == 0);
	buf_free(&b);
}

static void test_consume_reset(void)
{
	struct buf b;

	buf_init(&b, 100);
	buf_append_str(&b, "hello world");
	buf_consume(&b, 6);
	T_EQ_STR(buf_cstr(&b), "world");
	T_EQ_INT(b.len, 5);
	buf_consume(&b, 0);
	T_EQ_STR(buf_cstr(&b), "world");
	buf_consume(&b, 5);
	T_EQ_STR(buf_cstr(&b), "");
	T_EQ_INT(b.len, 0);
	buf_append_str(&b, "again");
	buf_consume(&b, 1000);
	T_EQ_STR(buf_cstr(&b), "");
	buf_append_str(&b, "x");
	buf_reset(&b);
	T_EQ_INT(b.len, 0);
	T_EQ_STR(buf_cstr(&b), "");
	T_CHECK(b.data != NULL);		/* reset keeps the memory */
	buf_free(&b);
	T_CHECK(b.data == NULL);
	T_EQ_INT(b.len, 0);
	T_EQ_INT(b.cap, 0);
	T_EQ_INT(buf_append_str(&b, "reuse"), 0);	/* usable again after free */
	T_EQ_STR(buf_cstr(&b), "reuse");
	buf_free(&b);
}

static void test_self_append(void)
{
	struct buf b;
	int i;

	/* Appending b's own bytes must survive the reallocation that growing causes. */
	buf_init(&b, 1 << 20);
	buf_append_str(&b, "abcdefgh");
	for (i = 0; i < 10; i++)
		T_EQ_INT(buf_append(&b, b.data, b.len), 0);
	T_EQ_INT(b.len, 8 << 10);
	T_CHECK(memcmp(b.data + b.len - 8, "abcdefgh", 8) == 0);
	T_CHECK(memcmp(b.data + 4096, "abcdefgh", 8) == 0);
	T_EQ_INT(buf_append(&b, b.data + 2, 3), 0);
	T_CHECK(memcmp(b.data + b.len - 3, "cde", 3) == 0);
	buf_free(&b);
}

int main(void)
{
	T_RUN(test_empty);
	T_RUN(test_append);
	T_RUN(test_growth);
	T_RUN(test_limit);
	T_RUN(test_embedded_nul);
	T_RUN(test_printf);
	T_RUN(test_append_u64);
	T_RUN(test_consume_reset);
	T_RUN(test_self_append);
	return T_DONE();
}
