/*
 * test_base64.c: unit tests for lib/base64.c: RFC 4648 test vectors both ways, SASL's
 * typical inputs (a PLAIN response with NULs), and every kind of non-canonical input the
 * strict decoder must refuse (bad length, foreign characters, padding in the middle or
 * with bits set, output too small).
 */
#include <string.h>

#include "base64.h"
#include "t.h"

static const struct { const char *plain, *b64; } vectors[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void test_rfc4648_vectors(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		unsigned char out[16];
		char enc[16];
		ssize_t n = base64_decode(vectors[i].b64, strlen(vectors[i].b64), out, sizeof(out));

		T_EQ_INT(n, strlen(vectors[i].plain));
		T_CHECK(n >= 0 && memcmp(out, vectors[i].plain, (size_t)n) == 0);
		T_EQ_INT(base64_encode(vectors[i].plain, strlen(vectors[i].plain), enc, sizeof(enc)), 0);
		T_EQ_STR(enc, vectors[i].b64);
	}
}

static void test_sasl_plain_round_trip(void)
{
	static const char resp[] = "\0alice@example.com\0pass word";
	char enc[64];
	unsigned char out[64];
	ssize_t n;

	T_EQ_INT(base64_encode(resp, sizeof(resp) - 1, enc, sizeof(enc)), 0);
	T_EQ_STR(enc, "AGFsaWNlQGV4YW1wbGUuY29tAHBhc3Mgd29yZA==");
	n = base64_decode(enc, strlen(enc), out, sizeof(out));
	T_EQ_INT(n, sizeof(resp) - 1);
	T_CHECK(memcmp(out, resp, sizeof(resp) - 1) == 0);
	/* all 256 byte values survive */
	{
		unsigned char all[256], back[256];
		char big[BASE64_ENCODED_LEN(256) + 1];

		for (int i = 0; i < 256; i++)
			all[i] = (unsigned char)i;
		T_EQ_INT(base64_encode(all, sizeof(all), big, sizeof(big)), 0);
		T_EQ_INT(strlen(big), BASE64_ENCODED_LEN(256));
		T_EQ_INT(base64_decode(big, strlen(big), back, sizeof(back)), 256);
		T_CHECK(memcmp(all, back, 256) == 0);
	}
}

static void test_refuses_non_canonical(void)
{
	static const char *const bad[] = {
		"Zg=", "Zm9", "Z", "Zg==Zg==", "Zm=v", "Z===", "====", "Zm9v!A==", "Zm9v\nYg==",
		"Zh==", "Zm9=", " Zm9v", "Zm9v ", "*",
	};
	unsigned char out[32];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ssize_t n = base64_decode(bad[i], strlen(bad[i]), out, sizeof(out));

		if (n != -1)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
		T_EQ_INT(n, -1);
	}
}

static void test_sizes(void)
{
	unsigned char out[5];
	char enc[8], enc9[9];

	T_EQ_INT(base64_decode("Zm9vYmFy", 8, out, sizeof(out)), -1);	/* needs 6 */
	T_EQ_INT(base64_decode("Zm9vYg==", 8, out, sizeof(out)), 4);
	T_EQ_INT(base64_encode("foobar", 6, enc, sizeof(enc)), -1);	/* needs 9 */
	T_EQ_INT(base64_encode("fooba", 5, enc, sizeof(enc)), -1);	/* 8 + NUL */
	T_EQ_INT(base64_encode("foob", 4, enc9, sizeof(enc9)), 0);
	T_EQ_STR(enc9, "Zm9vYg==");
}

int main(void)
{
	T_RUN(test_rfc4648_vectors);
	T_RUN(test_sasl_plain_round_trip);
	T_RUN(test_refuses_non_canonical);
	T_RUN(test_sizes);
	return T_DONE();
}
