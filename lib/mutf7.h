/*
 * mutf7.h: IMAP's modified UTF-7 (RFC 3501 §5.1.3), the encoding of mailbox names on the
 * wire and, as Dovecot stores them, in Maildir++ folder names on disk. Printable US-ASCII
 * stands for itself except '&', which is written "&-"; anything else is UTF-16 in a
 * modified BASE64 (',' instead of '/', no padding) between '&' and '-'.
 *
 * The decoder is strict, so a name has exactly one encoding: it refuses control and 8-bit
 * bytes, a BASE64 run that encodes printable ASCII, two runs in a row, non-zero or too many
 * padding bits, an unterminated run, unpaired surrogates and U+0000. The encoder refuses
 * input that is not well-formed UTF-8 (overlong forms, surrogates, > U+10FFFF).
 */
#ifndef POSTERN_MUTF7_H
#define POSTERN_MUTF7_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Append the UTF-8 form of the modified UTF-7 string in[len] to out. 0, or -1 with errno
 * EINVAL (malformed input) or EMSGSIZE (out's limit); out may hold a partial result then. */
int mutf7_to_utf8(const char *in, size_t len, struct buf *out);

/* Append the modified UTF-7 form of the UTF-8 string in[len] to out. 0, or -1 with errno
 * EINVAL (not UTF-8, or U+0000) or EMSGSIZE. */
int utf8_to_mutf7(const char *in, size_t len, struct buf *out);

/* Is in[len] well-formed modified UTF-7 (the rules above). */
bool mutf7_valid(const char *in, size_t len);

#endif
