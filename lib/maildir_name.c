/*
 * maildir_name.c: Maildir message file names as Dovecot reads and writes them:
 * `<unique>[,S=<size>][,W=<vsize>][,...][:2,<flags>]`. Parsing points into the caller's
 * string; rewriting the flags keeps everything before ':' and writes the flag letters in
 * ASCII order (D F P R S T, then keyword letters a..z), which is the order Dovecot expects.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "maildir.h"

/* Bit for a flag letter: A-Z are bits 0-25, a-z bits 26-51; -1 for anything else. */
static int flag_bit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return 26 + (c - 'a');
	return -1;
}

/* The letters of a flag bit set in sorted order into out (at least 53 bytes). */
static void flags_to_string(uint64_t bits, char *out)
{
	size_t o = 0;
	int i;

	for (i = 0; i < 52; i++)
		if (bits & (UINT64_C(1) << i))
			out[o++] = (char)(i < 26 ? 'A' + i : 'a' + (i - 26));
	out[o] = '\0';
}

/* A whole run of decimal digits [p,end) into *out; -1 if empty, junk or overflowing. */
static int parse_u64(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;

	if (p == end)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

/* The ",key=value" fields between the unique part and ':' (S= and W=; others ignored). */
static void parse_fields(const char *p, const char *end, struct maildir_name *out)
{
	while (p < end && *p == ',') {
		const char *field = p + 1;
		const char *fend = memchr(field, ',', (size_t)(end - field));

		if (fend == NULL)
			fend = end;
		if (fend - field >= 2 && field[1] == '=') {
			if (field[0] == 'S' && !out->has_size)
				out->has_size = parse_u64(field + 2, fend, &out->size) == 0;
			else if (field[0] == 'W' && !out->has_vsize)
				out->has_vsize = parse_u64(field + 2, fend, &out->vsize) == 0;
		}
		p = fend;
	}
}

int maildir_parse_name(const char *name, struct maildir_name *out)
{
	const char *colon, *p;
	uint64_t bits = 0;
	size_t len;

	memset(out, 0, sizeof(*out));
	len = name != NULL ? strnlen(name, MAILDIR_NAME_MAX + 1) : 0;
	if (len == 0 || len > MAILDIR_NAME_MAX || name[0] == '.' || memchr(name, '/', len)) {
		errno = EINVAL;
		return -1;
	}
	out->name = name;
	colon = memchr(name, ':', len);
	out->base_len = colon != NULL ? (size_t)(colon - name) : len;
	out->uniq_len = strcspn(name, ",:");
	parse_fields(name + out->uniq_len, name + out->base_len, out);
	if (colon != NULL && colon[1] == '2' && colon[2] == ',') {
		out->has_info = 1;
		for (p = colon + 3; *p != '\0'; p++)
			if (flag_bit(*p) >= 0)
				bits |= UINT64_C(1) << flag_bit(*p);
	}
	flags_to_string(bits, out->flags);
	return 0;
}

int maildir_name_has_flag(const struct maildir_name *n, char c)
{
	return flag_bit(c) >= 0 && strchr(n->flags, c) != NULL;
}

int maildir_flags_set(const char *name, const char *flags, char *out, size_t outsize)
{
	struct maildir_name parsed;
	char sorted[53];
	uint64_t bits = 0;
	size_t flen;

	if (maildir_parse_name(name, &parsed) < 0 || flags == NULL)
		return -1;
	for (; *flags != '\0'; flags++) {
		if (flag_bit(*flags) < 0) {
			errno = EINVAL;
			return -1;
		}
		bits |= UINT64_C(1) << flag_bit(*flags);
	}
	flags_to_string(bits, sorted);
	flen = strlen(sorted);
	if (parsed.base_len + 3 + flen > MAILDIR_NAME_MAX || parsed.base_len + 3 + flen >= outsize) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memmove(out, name, parsed.base_len);	/* memmove: out may be the name itself */
	memcpy(out + parsed.base_len, ":2,", 3);
	memcpy(out + parsed.base_len + 3, sorted, flen + 1);
	return 0;
}
