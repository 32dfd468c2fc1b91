/*
 * address.h: mail addresses as Postern stores and looks them up: split into local part and
 * domain, domain lower-cased, bounded, free of bytes that have no business in a lookup key
 * or a file name. This is not the RFC 5321 command parser (smtpd has that); it validates
 * what reaches lookups and delivery, whoever sent it.
 */
#ifndef POSTERN_ADDRESS_H
#define POSTERN_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_MAX_LOCAL	64	/* RFC 5321 4.5.3.1.1 */
#define ADDR_MAX_DOMAIN	255	/* RFC 5321 4.5.3.1.2 */
#define ADDR_MAX	(ADDR_MAX_LOCAL + 1 + ADDR_MAX_DOMAIN)

struct addr {
	char full[ADDR_MAX + 1];	/* local@domain, domain lower-cased */
	char local[ADDR_MAX_LOCAL + 1];	/* as given (local parts are case-sensitive in theory) */
	char domain[ADDR_MAX_DOMAIN + 1];	/* lower-case */
};

/*
 * Parse "local@domain" (the last '@' separates). Fails (-1) on: empty parts, over-long parts,
 * control characters or spaces, '/' or a leading '.' or ".." in the local part or domain
 * (so an address can name a directory safely), a domain with characters other than letters,
 * digits, '-', '.', or UTF-8 bytes, or a domain starting or ending with '.' or '-'.
 * A bare local part (no '@') is accepted when default_domain is not NULL.
 */
int addr_parse(const char *in, const char *default_domain, struct addr *out);

/* If the local part contains one of the delimiter characters (e.g. "+"), produce the address
 * without the extension ("user+tag@d" -> "user@d"). Returns false if there is no extension. */
bool addr_strip_extension(const struct addr *in, const char *delimiters, struct addr *out);

/* Case-insensitive comparison of two addresses as lookups treat them. */
bool addr_equal(const char *a, const char *b);

#endif
