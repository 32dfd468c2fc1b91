/*
 * address.c: parse and validate addresses for lookups and delivery (see address.h).
 */
#include "address.h"

#include <string.h>
#include <strings.h>

#include "util.h"

static bool bad_common(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || c == '/' || c == '\\';
}

static bool valid_local(const char *s, size_t n)
{
	if (n == 0 || n > ADDR_MAX_LOCAL || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (bad_common((unsigned char)s[i]) || s[i] == '@')
			return false;
		if (s[i] == '.' && i + 1 < n && s[i + 1] == '.')
			return false;
	}
	return true;
}

static bool valid_domain(const char *s, size_t n)
{
	if (n == 0 || n > ADDR_MAX_DOMAIN || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' ||
	    s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80)
			continue;	/* UTF-8 (internationalized domain) */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
		if (c == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

int addr_parse(const char *in, const char *default_domain, struct addr *out)
{
	const char *at = strrchr(in, '@'), *dom;
	size_t llen, dlen;

	if (at == NULL) {
		if (default_domain == NULL)
			return -1;
		llen = strlen(in);
		dom = default_domain;
	} else {
		llen = (size_t)(at - in);
		dom = at + 1;
	}
	dlen = strlen(dom);
	if (!valid_local(in, llen) || !valid_domain(dom, dlen))
		return -1;
	memcpy(out->local, in, llen);
	out->local[llen] = '\0';
	for (size_t i = 0; i <= dlen; i++) {
		char c = dom[i];

		out->domain[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	if (str_fmt(out->full, sizeof(out->full), "%s@%s", out->local, out->domain) < 0)
		return -1;
	return 0;
}

bool addr_strip_extension(const struct addr *in, const char *delimiters, struct addr *out)
{
	size_t cut;

	if (delimiters == NULL || *delimiters == '\0')
		return false;
	cut = strcspn(in->local, delimiters);
	if (in->local[cut] == '\0' || cut == 0)
		return false;
	*out = *in;
	out->local[cut] = '\0';
	return str_fmt(out->full, sizeof(out->full), "%s@%s", out->local, out->domain) >= 0;
}

bool addr_equal(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}
