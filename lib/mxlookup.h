/*
 * mxlookup.h: where outbound mail for a domain goes. The smtp client asks mx_lookup() for a
 * domain and gets the hosts to try in order (MX preference, random among equals, each host's
 * IPv4 then IPv6 addresses), the implicit MX of RFC 5321 5.1 when there is no MX, null MX
 * (RFC 7505) and a three-way verdict: OK, permanent (bounce) or temporary (defer).
 * Also: relayhost parsing with Postfix's meaning of brackets, domain literals, and a test
 * override (smtp_host_override) that points domains at fixed addresses instead of DNS.
 *
 * DNS goes through res_nquery with a resolver state per call (thread-safe). In a chroot the
 * resolver reads the chroot's etc/resolv.conf. The packet parser is exposed for tests and
 * fuzzing: it never reads outside the message and rejects compression loops, names over 255
 * octets and record lengths that disagree with their contents.
 */
#ifndef POSTERN_MXLOOKUP_H
#define POSTERN_MXLOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inet.h"

#define MX_MAX_HOSTS	20	/* hosts kept in a result (best preferences first) */
#define MX_MAX_ADDRS	10	/* addresses kept per host */
#define MX_MAX_RECORDS	64	/* MX records read from one answer before sorting */
#define MX_NAME_MAX	256	/* a domain name in text form, with its NUL */
#define MX_WARN_MAX	512
#define MX_DEFAULT_PORT	25

enum mx_status {
	MX_OK,		/* hosts[] holds at least one host with at least one address */
	MX_NULLMX,	/* the domain says it takes no mail (RFC 7505): bounce 556 5.1.10 */
	MX_NOTFOUND,	/* permanent: no such domain / no address: bounce 5.1.2 (or 5.4.4) */
	MX_TEMPFAIL,	/* SERVFAIL, timeout, malformed answer...: defer */
};

struct mx_host {
	char name[MX_NAME_MAX];	/* MX host name, the domain itself (implicit MX) or a literal */
	unsigned pref;		/* MX preference; 0 for implicit MX, literals and overrides */
	size_t naddrs;
	struct inet_addr addrs[MX_MAX_ADDRS];	/* ports already set */
};

struct mx_result {
	enum mx_status status;
	unsigned port;		/* port the addresses carry (25 unless overridden) */
	bool implicit_mx;	/* no MX records: hosts[0] is the domain itself */
	bool literal;		/* a domain literal or a bracketed relayhost IP */
	bool overridden;	/* answered by smtp_host_override, not DNS */
	size_t nhosts;
	struct mx_host hosts[MX_MAX_HOSTS];
	char warning[MX_WARN_MAX];	/* non-fatal oddities worth a log line ("" if none) */
};

/*
 * Look up where mail for domain goes. domain is a DNS name (a trailing dot is allowed) or a
 * domain literal "[192.0.2.1]" / "[IPv6:2001:db8::1]". Returns out->status; err gets a
 * reason (Postfix's wording, fit for a DSN diagnostic) unless the status is MX_OK.
 * out is large (~30 KB): callers should not put it on a small thread stack.
 */
enum mx_status mx_lookup(const char *domain, struct mx_result *out, char *err, size_t errlen);

/* relayhost = "[host]:port", "[host]", "host:port" or "host" (Postfix semantics). */
struct mx_relayhost {
	char host[MX_NAME_MAX];	/* without brackets; an IPv6 literal without "IPv6:" */
	unsigned port;		/* 25 when not given */
	bool mx_lookup;		/* bare host: look up its MX; brackets: its addresses only */
};

/* Parse a relayhost setting. Port may be a number or smtp/submission/smtps. -1 on error. */
int mx_parse_relayhost(const char *spec, struct mx_relayhost *out, char *err, size_t errlen);
/* Resolve a parsed relayhost into a result (MX lookup or addresses, the port applied). */
enum mx_status mx_lookup_relayhost(const struct mx_relayhost *rh, struct mx_result *out,
				   char *err, size_t errlen);

/*
 * Test and lab hook (parameter smtp_host_override): "domain=ADDR[:port], ..." where ADDR is an
 * IPv4 address or a bracketed "[IPv6]" / "[IPv4]"; items separated by commas and/or white
 * space, no spaces around '='. Several items for one domain give that host several
 * addresses. Matching domains (case-insensitive, whole name) never reach DNS. "" clears.
 * Replaces the previous list only on success; returns -1 with a reason on a syntax error.
 * Set it at start-up, before lookups run in other threads.
 */
int mx_set_override(const char *spec, char *err, size_t errlen);

/* Seed the calling thread's generator that orders equal-preference MX hosts (tests);
 * unseeded threads seed themselves from getrandom(). */
void mx_set_seed(uint64_t seed);

/*
 * The DNS query function, replaceable for tests: send a query for name/type (ns_t_mx,
 * ns_t_a, ns_t_aaaa), put the answer in ans and return its length, or return -1 with *herr
 * set to HOST_NOT_FOUND, NO_DATA, TRY_AGAIN or NO_RECOVERY (as res_nquery does). A returned
 * answer is judged by its RCODE too. NULL restores res_nquery.
 */
typedef int (*mx_query_fn)(void *arg, const char *name, int type, unsigned char *ans,
			   size_t anslen, int *herr);
void mx_set_query(mx_query_fn fn, void *arg);

/* ---- the packet parser (exposed for tests and the fuzzer) ---------------------------- */

struct mx_record {
	char name[MX_NAME_MAX];	/* exchange; "." for a null MX */
	unsigned pref;
};

struct mx_answer {
	int rcode;		/* RCODE from the header (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN...) */
	bool truncated;		/* TC bit set */
	bool cname;		/* the answer went through a CNAME */
	bool skipped;		/* records ignored: over the limits or an unusable exchange */
	size_t nmx;
	struct mx_record mx[MX_MAX_RECORDS];
	size_t naddrs;		/* A/AAAA answers, port 0 */
	struct inet_addr addrs[MX_MAX_ADDRS];
};

/*
 * Parse a DNS response to a query for qname/qtype (qname NULL: take it from the question).
 * Collects the answer records of type qtype (MX, A or AAAA) owned by qname or by a CNAME
 * target reached from it. Returns 0, or -1 with a reason if the message is malformed.
 */
int mx_parse_answer(const unsigned char *msg, size_t len, const char *qname, int qtype,
		    struct mx_answer *out, char *err, size_t errlen);

/* Sort records by preference and shuffle each run of equal preference with *rng. */
void mx_sort_records(struct mx_record *r, size_t n, uint64_t *rng);

/* Name syntax the lookup accepts: letters, digits, '-', '_', dots, at most 253 characters,
 * labels of 1..63; one trailing dot allowed. */
bool mx_valid_domain(const char *name);

#endif
