/*
 * base64.c: strict RFC 4648 base64 (see base64.h).
 */
#include "base64.h"

#include <stdint.h>

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(unsigned char c, char c62, char c63)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == (unsigned char)c62 ? 62 : c == (unsigned char)c63 ? 63 : -1;
}

static int value_of(unsigned char c)
{
	return base64_value(c, '+', '/');
}

/* One quantum of 4 characters into up to 3 bytes; -1 if malformed. last: the final one. */
static int decode_quantum(const char *q, int last, unsigned char *out)
{
	int v[4], pad = 0;

	for (int i = 0; i < 4; i++) {
		if (q[i] == '=' && last && i >= 2) {
			v[i] = 0;
			pad++;
		} else if (pad > 0 || (v[i] = value_of((unsigned char)q[i])) < 0) {
			return -1;
		}
	}
	/* Canonical only: the bits the padding hides must be zero. */
	if ((pad == 1 && (v[2] & 0x3)) || (pad == 2 && (v[1] & 0xf)))
		return -1;
	out[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
	out[1] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
	out[2] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
	return 3 - pad;
}

ssize_t base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize)
{
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		unsigned char tmp[3];
		int n = decode_quantum(in + i, i + 4 == len, tmp);

		if (n < 0 || o + (size_t)n > outsize)
			return -1;
		for (int j = 0; j < n; j++)
			out[o++] = tmp[j];
	}
	return (ssize_t)o;
}

int base64_encode(const void *in, size_t n, char *out, size_t outsize)
{
	const unsigned char *p = in;
	size_t o = 0;

	if (outsize < BASE64_ENCODED_LEN(n) + 1)
		return -1;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}
