/*
 * passwd.h: password hashes (DESIGN.md §6). Verifies everything libxcrypt verifies
 * ($y$ yescrypt, $2b$/$2y$/$2a$ bcrypt, $6$ SHA512-CRYPT, $5$ SHA256-CRYPT, $1$ MD5-CRYPT,
 * traditional DES crypt) with or without a Dovecot {SCHEME} prefix ({SHA512-CRYPT},
 * {BLF-CRYPT}, {CRYPT}, {MD5-CRYPT}, {SHA256-CRYPT}, ...), plus {PLAIN}/{CLEARTEXT} for
 * databases that store clear text (compared in constant time). New hashes are yescrypt or
 * SHA512-CRYPT. crypt_r is used (thread-safe); a hash that fails to parse never verifies.
 */
#ifndef POSTERN_PASSWD_H
#define POSTERN_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

enum passwd_result { PASSWD_MATCH, PASSWD_MISMATCH, PASSWD_BADHASH };

/* Compare a password with a stored hash, in time independent of where they differ. */
enum passwd_result passwd_verify(const char *password, const char *stored);

/* The password itself if the stored value is clear text ({PLAIN}, {CLEARTEXT}, {CLEAR}),
 * else NULL. Challenge-response mechanisms (CRAM-MD5) need it and work only then. */
const char *passwd_cleartext(const char *stored);

/* True for schemes worth upgrading on login: MD5-CRYPT, DES crypt, clear text. */
bool passwd_is_weak(const char *stored);

enum passwd_scheme { PASSWD_YESCRYPT, PASSWD_SHA512_CRYPT };
/* Hash a new password with a fresh random salt (getrandom) into out, without a {SCHEME}
 * prefix ("$y$..." or "$6$..."), so it fits the guides' varchar(106) column. -1 on error. */
int passwd_hash(const char *password, enum passwd_scheme scheme, char *out, size_t outlen);
/* Parse "yescrypt" / "sha512-crypt" (also Dovecot's "SHA512-CRYPT"); -1 if unknown. */
int passwd_scheme_parse(const char *name, enum passwd_scheme *out);

/* Longest password passwd_valid_password accepts, in bytes. Note that libxcrypt hashes at
 * most CRYPT_MAX_PASSPHRASE_SIZE - 1 (511) bytes: longer ones verify only against
 * {PLAIN}, never match a crypt hash, and passwd_hash refuses them. */
#define PASSWD_MAX_LEN 1024
/* True if pw[0..len) is a usable password: non-empty, at most PASSWD_MAX_LEN bytes and
 * free of NUL bytes (so len == strlen(pw) when pw is NUL-terminated at len). */
bool passwd_valid_password(const char *pw, size_t len);

/* Constant-time equality of two byte strings of possibly different lengths. */
bool passwd_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif
