/*
 * passwd.c: password hashes for authd (DESIGN.md §6). Verifies stored hashes with
 * libxcrypt's crypt_r, with or without a Dovecot {SCHEME} prefix, compares clear-text
 * {PLAIN} entries in constant time, and makes new yescrypt / SHA512-CRYPT hashes.
 * Nothing here logs: passwords and hashes must never reach a log line.
 */
#include <crypt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "passwd.h"
#include "util.h"

/* Longest scheme name between the braces we bother to look up. */
#define SCHEME_NAME_MAX 32

enum scheme_kind {
	KIND_CRYPT, /* the body is a crypt(3) string */
	KIND_DES,   /* the body is traditional DES crypt: 13 characters, no '$' */
	KIND_PLAIN, /* the body is the password itself */
};

struct scheme {
	const char *name;
	enum scheme_kind kind;
	const char *const *prefixes; /* KIND_CRYPT: hash prefixes allowed; NULL = any */
	bool weak;                   /* worth re-hashing after a successful login */
};

static const char *const sha512_prefixes[] = { "$6$", NULL };
static const char *const sha256_prefixes[] = { "$5$", NULL };
static const char *const md5_prefixes[] = { "$1$", NULL };
static const char *const blf_prefixes[] = { "$2a$", "$2b$", "$2y$", NULL };
static const char *const yescrypt_prefixes[] = { "$y$", NULL };

/* Dovecot's scheme names (plus YESCRYPT, which Dovecot spells {CRYPT}). */
static const struct scheme schemes[] = {
	{ "SHA512-CRYPT", KIND_CRYPT, sha512_prefixes, false },
	{ "SHA256-CRYPT", KIND_CRYPT, sha256_prefixes, false },
	{ "MD5-CRYPT", KIND_CRYPT, md5_prefixes, true },
	{ "BLF-CRYPT", KIND_CRYPT, blf_prefixes, false },
	{ "YESCRYPT", KIND_CRYPT, yescrypt_prefixes, false },
	{ "CRYPT", KIND_CRYPT, NULL, false },
	{ "DES-CRYPT", KIND_DES, NULL, true },
	{ "PLAIN", KIND_PLAIN, NULL, true },
	{ "CLEARTEXT", KIND_PLAIN, NULL, true },
	{ "CLEAR", KIND_PLAIN, NULL, true },
};

/* Hash families that are weak whatever prefix they come with. */
static const char *const weak_prefixes[] = {
	"$1$",   /* MD5-CRYPT */
	"_",     /* BSDi extended DES */
	"$3$",   /* NT hash */
	"$md5",  /* SunMD5 */
	"$sha1$" /* NetBSD PBKDF1-SHA1 */
};

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Split an optional "{NAME}" off stored: *sc is NULL without a prefix. -1 if the prefix
 * is malformed or names a scheme we do not know. */
static int split_scheme(const char *stored, const struct scheme **sc, const char **body)
{
	const char *brace;
	size_t len, i;

	*sc = NULL;
	*body = stored;
	if (stored[0] != '{')
		return 0;
	brace = memchr(stored + 1, '}', strnlen(stored + 1, SCHEME_NAME_MAX + 1));
	if (brace == NULL)
		return -1;
	len = (size_t)(brace - (stored + 1));
	for (i = 0; i < ARRAY_LEN(schemes); i++) {
		if (strlen(schemes[i].name) == len &&
		    strncasecmp(schemes[i].name, stored + 1, len) == 0) {
			*sc = &schemes[i];
			*body = brace + 1;
			return 0;
		}
	}
	return -1;
}

/* Characters crypt(3) strings are made of: the base-64 alphabet, '$' separators, the
 * "rounds=N" / "$md5,rounds=N" parameters and BSDi DES's leading '_'. Anything else
 * (spaces, a trailing newline from a careless import, '!' or '*' of a locked account) is
 * not a hash. Current libxcrypt refuses such settings too; checking here keeps the verdict
 * independent of its version. */
static bool crypt_charset_ok(const char *s)
{
	static const char extra[] = "./$=,";

	if (*s == '_')
		s++;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= 'a' && *s <= 'z') || strchr(extra, *s) != NULL))
			return false;
	return true;
}

static bool is_des_hash(const char *s)
{
	return strlen(s) == 13 && strchr(s, '$') == NULL && crypt_charset_ok(s);
}

/* Whether body looks like a hash the scheme (NULL: no prefix) allows. */
static bool body_fits_scheme(const struct scheme *sc, const char *body)
{
	size_t i;

	if (body[0] == '\0' || !crypt_charset_ok(body))
		return false;
	if (sc == NULL || (sc->kind == KIND_CRYPT && sc->prefixes == NULL))
		return true;
	if (sc->kind == KIND_DES)
		return is_des_hash(body);
	for (i = 0; sc->prefixes[i] != NULL; i++)
		if (has_prefix(body, sc->prefixes[i]))
			return true;
	return false;
}

/* password may be NULL here and in verify_crypt: it then never matches. */
static enum passwd_result verify_plain(const char *password, const char *body)
{
	/* An empty clear-text password is a broken entry, not a password. */
	if (body[0] == '\0')
		return PASSWD_BADHASH;
	if (password == NULL)
		return PASSWD_MISMATCH;
	return passwd_ct_equal(password, strlen(password), body, strlen(body)) ?
		PASSWD_MATCH : PASSWD_MISMATCH;
}

/* Re-hash password with the stored hash as setting and compare. A password libxcrypt
 * cannot take (>= CRYPT_MAX_PASSPHRASE_SIZE bytes, or none) cannot match, but the hash is
 * still computed (over "") so a broken hash is reported and the time spent is the same. */
static enum passwd_result verify_crypt(const char *password, const char *body)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	bool usable = password != NULL && strlen(password) < CRYPT_MAX_PASSPHRASE_SIZE;
	const char *out = crypt_r(usable ? password : "", body, cd);
	size_t bodylen = strlen(body);
	enum passwd_result res;

	/* A complete hash re-hashes to a string of its own length; a mere setting ("$6$salt")
	 * or a string crypt reads only the salt of ("secret" as DES) does not. */
	if (out == NULL || out[0] == '*' || strlen(out) != bodylen)
		res = PASSWD_BADHASH;
	else if (passwd_ct_equal(out, bodylen, body, bodylen) && usable)
		res = PASSWD_MATCH;
	else
		res = PASSWD_MISMATCH;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return res;
}

enum passwd_result passwd_verify(const char *password, const char *stored)
{
	const struct scheme *sc;
	const char *body;

	if (stored == NULL || split_scheme(stored, &sc, &body) < 0)
		return PASSWD_BADHASH;
	if (sc != NULL && sc->kind == KIND_PLAIN)
		return verify_plain(password, body);
	if (!body_fits_scheme(sc, body))
		return PASSWD_BADHASH;
	return verify_crypt(password, body);
}

const char *passwd_cleartext(const char *stored)
{
	const struct scheme *sc;
	const char *body;

	if (stored == NULL || split_scheme(stored, &sc, &body) < 0 || sc == NULL ||
	    sc->kind != KIND_PLAIN || *body == '\0')
		return NULL;
	return body;
}

bool passwd_is_weak(const char *stored)
{
	const struct scheme *sc;
	const char *body;
	size_t i;

	if (stored == NULL || split_scheme(stored, &sc, &body) < 0)
		return false;
	if (sc != NULL && sc->weak)
		return true;
	for (i = 0; i < ARRAY_LEN(weak_prefixes); i++)
		if (has_prefix(body, weak_prefixes[i]))
			return true;
	return is_des_hash(body);
}

int passwd_hash(const char *password, enum passwd_scheme scheme, char *out, size_t outlen)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *prefix, *hash;
	struct crypt_data *cd;
	int rc = -1;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (scheme == PASSWD_YESCRYPT)
		prefix = "$y$";
	else if (scheme == PASSWD_SHA512_CRYPT)
		prefix = "$6$";
	else
		return -1;
	if (password == NULL || password[0] == '\0' ||
	    strlen(password) >= CRYPT_MAX_PASSPHRASE_SIZE)
		return -1;
	/* count 0: the method's default cost; no random bytes given: libxcrypt gets its own. */
	if (crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)) == NULL)
		return -1;
	cd = xcalloc(1, sizeof(*cd));
	hash = crypt_r(password, setting, cd);
	if (hash != NULL && has_prefix(hash, prefix) && str_copy(out, outlen, hash) == 0)
		rc = 0;
	else
		out[0] = '\0';
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

int passwd_scheme_parse(const char *name, enum passwd_scheme *out)
{
	if (name == NULL)
		return -1;
	if (strcasecmp(name, "yescrypt") == 0)
		*out = PASSWD_YESCRYPT;
	else if (strcasecmp(name, "sha512-crypt") == 0)
		*out = PASSWD_SHA512_CRYPT;
	else
		return -1;
	return 0;
}

bool passwd_valid_password(const char *pw, size_t len)
{
	return pw != NULL && len > 0 && len <= PASSWD_MAX_LEN && memchr(pw, '\0', len) == NULL;
}

/* All ones if x < y, else zero, without a branch (the usual borrow-bit trick). */
static size_t ct_lt_mask(size_t x, size_t y)
{
	size_t borrow = x ^ ((x ^ y) | ((x - y) ^ y));

	return (size_t)0 - (borrow >> (sizeof(size_t) * 8 - 1));
}

/* All ones if x != 0, else zero. */
static size_t ct_nonzero_mask(size_t x)
{
	return (size_t)0 - ((x | ((size_t)0 - x)) >> (sizeof(size_t) * 8 - 1));
}

/* Byte i of p[0..len), or 0 past its end; p is never read out of bounds (an empty string
 * reads a static zero byte instead) and nothing branches on i, len or the contents. */
static unsigned char ct_byte_at(const unsigned char *p, size_t len, size_t i)
{
	static const unsigned char zero;
	size_t nonempty = ct_nonzero_mask(len), in = ct_lt_mask(i, len);
	uintptr_t src = ((uintptr_t)p & nonempty) | ((uintptr_t)&zero & ~nonempty);

	return (unsigned char)(((const unsigned char *)src)[i & in] & in);
}

bool passwd_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen ^ ((alen ^ blen) & ct_lt_mask(alen, blen)); /* max(alen, blen) */
	size_t i, diff = ct_nonzero_mask(alen ^ blen);

	for (i = 0; i < n; i++)
		diff |= (size_t)(ct_byte_at(a, alen, i) ^ ct_byte_at(b, blen, i));
	return diff == 0;
}
