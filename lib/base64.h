/*
 * base64.h: RFC 4648 §4 base64, strict, for SASL exchanges (IMAP AUTHENTICATE, POP3 AUTH:
 * RFC 4959, RFC 5034): a response that is not exactly base64 is refused, never guessed at.
 */
#ifndef POSTERN_BASE64_H
#define POSTERN_BASE64_H

#include <stddef.h>
#include <sys/types.h>

/* Bytes base64_decode may produce from len characters (an upper bound). */
#define BASE64_DECODED_MAX(len)	((len) / 4 * 3 + 3)
/* Characters (without NUL) base64_encode produces from n bytes. */
#define BASE64_ENCODED_LEN(n)	(((n) + 2) / 3 * 4)

/* Decode in[0..len) into out: the byte count, or -1 if the input is not canonical base64
 * (length not a multiple of 4, a character outside the alphabet, padding anywhere but at
 * the end, non-zero bits in the padding) or does not fit in outsize. */
/* The value of one base64 character, with the alphabet's last two characters given
 * ('+' '/' for RFC 4648, '+' ',' for IMAP's modified UTF-7); -1 if not in it. */
int base64_value(unsigned char c, char c62, char c63);
ssize_t base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize);
/* Encode n bytes into out, NUL-terminated; -1 if outsize is too small. */
int base64_encode(const void *in, size_t n, char *out, size_t outsize);

#endif
