/*
 * test_mxlookup.c: unit tests for lib/mxlookup.c without any network. DNS answers are built
 * byte by byte with a tiny packet builder and fed to the parser, and mx_lookup runs against a
 * fake resolver (mx_set_query) that answers from a small in-memory zone.
 * `test_mxlookup --seeds DIR` writes the fuzzer's seed packets instead.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mxlookup.h"
#include "t.h"
#include "util.h"

/* ---- packet builder ------------------------------------------------------------------ */

struct pb {
	unsigned char b[8192];
	size_t n;
};

static void pb_u8(struct pb *p, unsigned v)
{
	if (p->n < sizeof(p->b))
		p->b[p->n++] = (unsigned char)v;
}

static void pb_u16(struct pb *p, unsigned v)
{
	pb_u8(p, v >> 8);
	pb_u8(p, v & 0xff);
}

static void pb_put16(struct pb *p, size_t at, unsigned v)
{
	p->b[at] = (unsigned char)(v >> 8);
	p->b[at + 1] = (unsigned char)v;
}

/* Labels of name, then either a compression pointer to ptr (if nonzero) or the root. */
static void pb_name_ptr(struct pb *p, const char *name, size_t ptr)
{
	while (name != NULL && *name != '\0') {
		size_t len = strcspn(name, ".");

		pb_u8(p, (unsigned)len);
		for (size_t i = 0; i < len; i++)
			pb_u8(p, (unsigned char)name[i]);
		name += len;
		if (*name == '.')
			name++;
	}
	if (ptr != 0)
		pb_u16(p, 0xc000 | (unsigned)ptr);
	else
		pb_u8(p, 0);
}

static void pb_name(struct pb *p, const char *name)
{
	pb_name_ptr(p, name, 0);
}

#define QNAME_OFF 12	/* where the question's name starts: compression target */

static void pb_header(struct pb *p, unsigned flags, unsigned qd, unsigned an)
{
	p->n = 0;
	pb_u16(p, 0x1234);
	pb_u16(p, flags);
	pb_u16(p, qd);
	pb_u16(p, an);
	pb_u16(p, 0);
	pb_u16(p, 0);
}

/* A NOERROR (or rcode) response header plus the question. */
static void pb_response(struct pb *p, const char *qname, int qtype, unsigned rcode, unsigned an)
{
	pb_header(p, 0x8180 | rcode, 1, an);
	pb_name(p, qname);
	pb_u16(p, (unsigned)qtype);
	pb_u16(p, ns_c_in);
}

/* Record fixed part for owner (NULL: pointer to the question name); returns rdlength's spot. */
static size_t pb_rr(struct pb *p, const char *owner, int type)
{
	size_t at;

	if (owner == NULL)
		pb_u16(p, 0xc000 | QNAME_OFF);
	else
		pb_name(p, owner);
	pb_u16(p, (unsigned)type);
	pb_u16(p, ns_c_in);
	pb_u16(p, 0);
	pb_u16(p, 300);
	at = p->n;
	pb_u16(p, 0);
	return at;
}

static void pb_rr_end(struct pb *p, size_t at)
{
	pb_put16(p, at, (unsigned)(p->n - at - 2));
}

/* MX; if suffix_ptr is set, exchange is labels followed by a pointer to it. */
static void pb_mx(struct pb *p, const char *owner, unsigned pref, const char *exch, size_t ptr)
{
	size_t at = pb_rr(p, owner, ns_t_mx);

	pb_u16(p, pref);
	pb_name_ptr(p, strcmp(exch, ".") == 0 ? NULL : exch, ptr);
	pb_rr_end(p, at);
}

static void pb_addr(struct pb *p, const char *owner, const char *ip)
{
	unsigned char bin[16];
	int v6 = strchr(ip, ':') != NULL;
	size_t at = pb_rr(p, owner, v6 ? ns_t_aaaa : ns_t_a);

	if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, bin) != 1)
		abort();
	for (int i = 0; i < (v6 ? 16 : 4); i++)
		pb_u8(p, bin[i]);
	pb_rr_end(p, at);
}

static void pb_cname(struct pb *p, const char *owner, const char *target)
{
	size_t at = pb_rr(p, owner, ns_t_cname);

	pb_name(p, target);
	pb_rr_end(p, at);
}

static struct mx_answer ans;	/* large: off the stack */
static char err[512];

static int parse(const struct pb *p, const char *qname, int qtype)
{
	/* an exact-size heap copy, so ASan catches any read past the end */
	unsigned char *copy = xmalloc(p->n ? p->n : 1);
	int rc;

	memcpy(copy, p->b, p->n);
	rc = mx_parse_answer(copy, p->n, qname, qtype, &ans, err, sizeof(err));
	free(copy);
	return rc;
}

static const char *addr_text(const struct inet_addr *a, char *buf, size_t len)
{
	const void *bin = a->ss.ss_family == AF_INET
		? (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr
		: (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;

	if (inet_ntop(a->ss.ss_family, bin, buf, (socklen_t)len) == NULL)
		str_copy(buf, len, "?");
	return buf;
}

static unsigned addr_port(const struct inet_addr *a)
{
	return ntohs(a->ss.ss_family == AF_INET ? ((const struct sockaddr_in *)&a->ss)->sin_port
						: ((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

/* ---- parser tests -------------------------------------------------------------------- */

static void build_three_mx(struct pb *p)
{
	pb_response(p, "example.com", ns_t_mx, 0, 3);
	pb_mx(p, NULL, 20, "mx2", QNAME_OFF);		/* mx2.example.com, compressed */
	pb_mx(p, NULL, 10, "mx1.example.com", 0);
	pb_mx(p, NULL, 30, "backup.example.net", 0);
}

static void test_parse_mx(void)
{
	struct pb p;

	build_three_mx(&p);
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), 0);
	T_EQ_INT(ans.rcode, 0);
	T_EQ_INT(ans.nmx, 3);
	T_EQ_STR(ans.mx[0].name, "mx2.example.com");
	T_EQ_INT(ans.mx[0].pref, 20);
	T_EQ_STR(ans.mx[1].name, "mx1.example.com");
	T_EQ_STR(ans.mx[2].name, "backup.example.net");
	T_EQ_INT(ans.mx[2].pref, 30);
	T_CHECK(!ans.cname && !ans.skipped && !ans.truncated);
	/* the question decides; case and a trailing dot do not matter */
	T_EQ_INT(parse(&p, "EXAMPLE.com.", ns_t_mx), 0);
	T_EQ_INT(parse(&p, NULL, ns_t_mx), 0);
	T_EQ_INT(ans.nmx, 3);
	T_EQ_INT(parse(&p, "example.org", ns_t_mx), -1);
	T_EQ_INT(parse(&p, "example.com", ns_t_a), -1);
}

static void test_parse_addresses(void)
{
	struct pb p;
	char buf[64];

	pb_response(&p, "mx.example.com", ns_t_a, 0, 3);
	pb_addr(&p, NULL, "192.0.2.1");
	pb_addr(&p, "other.example.com", "192.0.2.99");	/* not ours: ignored */
	pb_addr(&p, NULL, "192.0.2.2");
	T_EQ_INT(parse(&p, "mx.example.com", ns_t_a), 0);
	T_EQ_INT(ans.naddrs, 2);
	T_EQ_STR(addr_text(&ans.addrs[0], buf, sizeof(buf)), "192.0.2.1");
	T_EQ_STR(addr_text(&ans.addrs[1], buf, sizeof(buf)), "192.0.2.2");
	T_EQ_INT(ans.addrs[0].len, sizeof(struct sockaddr_in));

	pb_response(&p, "mx.example.com", ns_t_aaaa, 0, 1);
	pb_addr(&p, NULL, "2001:db8::25");
	T_EQ_INT(parse(&p, "mx.example.com", ns_t_aaaa), 0);
	T_EQ_INT(ans.naddrs, 1);
	T_EQ_STR(addr_text(&ans.addrs[0], buf, sizeof(buf)), "2001:db8::25");

	/* more than MX_MAX_ADDRS: kept to the limit, flagged */
	pb_response(&p, "many.example.com", ns_t_a, 0, MX_MAX_ADDRS + 5);
	for (int i = 0; i < MX_MAX_ADDRS + 5; i++) {
		char ip[32];

		str_fmt(ip, sizeof(ip), "192.0.2.%d", i + 1);
		pb_addr(&p, NULL, ip);
	}
	T_EQ_INT(parse(&p, "many.example.com", ns_t_a), 0);
	T_EQ_INT(ans.naddrs, MX_MAX_ADDRS);
	T_CHECK(ans.skipped);
}

static void test_parse_cname_chain(void)
{
	struct pb p;

	pb_response(&p, "alias.example.com", ns_t_mx, 0, 3);
	pb_cname(&p, NULL, "real.example.net");
	pb_mx(&p, "real.example.net", 5, "mx.example.net", 0);
	pb_mx(&p, "unrelated.example.org", 1, "evil.example.org", 0);
	T_EQ_INT(parse(&p, "alias.example.com", ns_t_mx), 0);
	T_CHECK(ans.cname);
	T_EQ_INT(ans.nmx, 1);
	T_EQ_STR(ans.mx[0].name, "mx.example.net");
}

static void test_parse_null_and_empty(void)
{
	struct pb p;

	pb_response(&p, "nomail.example", ns_t_mx, 0, 1);
	pb_mx(&p, NULL, 0, ".", 0);
	T_EQ_INT(parse(&p, "nomail.example", ns_t_mx), 0);
	T_EQ_INT(ans.nmx, 1);
	T_EQ_STR(ans.mx[0].name, ".");
	T_EQ_INT(ans.mx[0].pref, 0);

	pb_response(&p, "empty.example", ns_t_mx, 0, 0);
	T_EQ_INT(parse(&p, "empty.example", ns_t_mx), 0);
	T_EQ_INT(ans.nmx, 0);
	T_EQ_INT(ans.rcode, 0);

	pb_response(&p, "gone.example", ns_t_mx, ns_r_nxdomain, 0);
	T_EQ_INT(parse(&p, "gone.example", ns_t_mx), 0);
	T_EQ_INT(ans.rcode, ns_r_nxdomain);

	pb_header(&p, 0x8380, 1, 0);	/* TC bit */
	pb_name(&p, "big.example");
	pb_u16(&p, ns_t_mx);
	pb_u16(&p, ns_c_in);
	T_EQ_INT(parse(&p, "big.example", ns_t_mx), 0);
	T_CHECK(ans.truncated);
}

/* A packet with every feature, cut at every length: each cut is refused, none read past. */
static void test_parse_truncated(void)
{
	struct pb p, cut;
	int bad = 0;

	pb_response(&p, "example.com", ns_t_mx, 0, 4);
	pb_cname(&p, NULL, "mail.example.com");
	pb_mx(&p, "mail.example.com", 10, "mx1", QNAME_OFF);
	pb_mx(&p, "mail.example.com", 10, "mx2.example.org", 0);
	pb_mx(&p, "mail.example.com", 20, "", QNAME_OFF);	/* exchange = pointer only */
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), 0);
	T_EQ_INT(ans.nmx, 3);
	T_EQ_STR(ans.mx[0].name, "mx1.example.com");
	T_EQ_STR(ans.mx[2].name, "example.com");
	for (size_t len = 0; len < p.n; len++) {
		cut = p;
		cut.n = len;
		if (parse(&cut, "example.com", ns_t_mx) != -1)
			bad++;
	}
	T_EQ_INT(bad, 0);
}

static void test_parse_compression_loops(void)
{
	struct pb p;
	size_t at;

	/* exchange that points at itself */
	pb_response(&p, "loop.example", ns_t_mx, 0, 1);
	at = pb_rr(&p, NULL, ns_t_mx);
	pb_u16(&p, 10);
	pb_u16(&p, 0xc000 | (unsigned)p.n);
	pb_rr_end(&p, at);
	T_EQ_INT(parse(&p, "loop.example", ns_t_mx), -1);

	/* a label followed by a pointer back to that label */
	pb_response(&p, "loop.example", ns_t_mx, 0, 1);
	at = pb_rr(&p, NULL, ns_t_mx);
	pb_u16(&p, 10);
	{
		size_t label = p.n;

		pb_u8(&p, 1);
		pb_u8(&p, 'a');
		pb_u16(&p, 0xc000 | (unsigned)label);
	}
	pb_rr_end(&p, at);
	T_EQ_INT(parse(&p, "loop.example", ns_t_mx), -1);

	/* two names pointing at each other: A -> B and B -> A */
	pb_response(&p, "loop.example", ns_t_mx, 0, 2);
	{
		size_t a_at, b_at, a_name, b_name;

		a_at = pb_rr(&p, NULL, ns_t_mx);
		pb_u16(&p, 10);
		a_name = p.n;
		pb_u8(&p, 1);
		pb_u8(&p, 'a');
		pb_u16(&p, 0);		/* patched below to point at b */
		pb_rr_end(&p, a_at);
		b_at = pb_rr(&p, NULL, ns_t_mx);
		pb_u16(&p, 20);
		b_name = p.n;
		pb_u8(&p, 1);
		pb_u8(&p, 'b');
		pb_u16(&p, 0xc000 | (unsigned)a_name);
		pb_rr_end(&p, b_at);
		pb_put16(&p, a_name + 2, 0xc000 | (unsigned)b_name);
	}
	T_EQ_INT(parse(&p, "loop.example", ns_t_mx), -1);

	/* a forward pointer (to a later, valid name) is refused too */
	pb_response(&p, "fwd.example", ns_t_mx, 0, 1);
	at = pb_rr(&p, NULL, ns_t_mx);
	pb_u16(&p, 10);
	pb_u16(&p, 0xc000 | (unsigned)(p.n + 2));
	pb_name(&p, "x");
	pb_rr_end(&p, at);
	T_EQ_INT(parse(&p, "fwd.example", ns_t_mx), -1);

	/* the 0x40 and 0x80 label types */
	pb_response(&p, "ext.example", ns_t_mx, 0, 1);
	at = pb_rr(&p, NULL, ns_t_mx);
	pb_u16(&p, 10);
	pb_u8(&p, 0x41);
	pb_u8(&p, 0);
	pb_rr_end(&p, at);
	T_EQ_INT(parse(&p, "ext.example", ns_t_mx), -1);
}

static void test_parse_bad_rdlength(void)
{
	struct pb p;
	size_t at;

	/* MX rdlength two bytes longer than the data: trailing junk */
	pb_response(&p, "example.com", ns_t_mx, 0, 1);
	at = pb_rr(&p, NULL, ns_t_mx);
	pb_u16(&p, 10);
	pb_name(&p, "mx.example.com");
	pb_u16(&p, 0);
	pb_rr_end(&p, at);
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);

	/* rdlength shorter than the name: the name runs into what follows */
	pb_response(&p, "example.com", ns_t_mx, 0, 1);
	at = pb_rr(&p, NULL, ns_t_mx);
	pb_u16(&p, 10);
	pb_name(&p, "mx.example.com");
	pb_put16(&p, at, (unsigned)(p.n - at - 2 - 4));
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);

	/* rdlength past the end of the message */
	pb_response(&p, "example.com", ns_t_mx, 0, 1);
	at = pb_rr(&p, NULL, ns_t_mx);
	pb_u16(&p, 10);
	pb_name(&p, "mx.example.com");
	pb_put16(&p, at, 0xffff);
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);

	/* MX too short to hold a preference and a name */
	pb_response(&p, "example.com", ns_t_mx, 0, 1);
	at = pb_rr(&p, NULL, ns_t_mx);
	pb_u16(&p, 10);
	pb_rr_end(&p, at);
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);

	/* an A record of 5 bytes, an AAAA of 4 */
	pb_response(&p, "h.example", ns_t_a, 0, 1);
	at = pb_rr(&p, NULL, ns_t_a);
	for (int i = 0; i < 5; i++)
		pb_u8(&p, 1);
	pb_rr_end(&p, at);
	T_EQ_INT(parse(&p, "h.example", ns_t_a), -1);
	pb_response(&p, "h.example", ns_t_aaaa, 0, 1);
	at = pb_rr(&p, NULL, ns_t_aaaa);
	for (int i = 0; i < 4; i++)
		pb_u8(&p, 1);
	pb_rr_end(&p, at);
	T_EQ_INT(parse(&p, "h.example", ns_t_aaaa), -1);

	/* records of a type we do not read still have their length checked */
	pb_response(&p, "example.com", ns_t_mx, 0, 1);
	at = pb_rr(&p, NULL, ns_t_txt);
	pb_u8(&p, 1);
	pb_u8(&p, 'x');
	pb_put16(&p, at, 3);
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);
}

/* Four labels: 63+63+63+n octets of text. */
static void long_name(char *out, size_t outlen, size_t last)
{
	char label[64];

	memset(label, 'a', 63);
	label[63] = '\0';
	str_fmt(out, outlen, "%s.%s.%s.%.*s", label, label, label, (int)last, label);
}

static void test_parse_name_limits(void)
{
	char name[400];
	struct pb p;

	long_name(name, sizeof(name), 61);	/* 253 characters: 255 octets on the wire */
	T_EQ_INT(strlen(name), 253);
	T_CHECK(mx_valid_domain(name));
	pb_response(&p, name, ns_t_mx, 0, 1);
	pb_mx(&p, NULL, 10, "mx", QNAME_OFF);	/* "mx." + 253 > 255: refused */
	T_EQ_INT(parse(&p, name, ns_t_mx), -1);
	pb_response(&p, name, ns_t_mx, 0, 1);
	pb_mx(&p, NULL, 10, "", QNAME_OFF);
	T_EQ_INT(parse(&p, name, ns_t_mx), 0);
	T_EQ_STR(ans.mx[0].name, name);

	long_name(name, sizeof(name), 62);	/* 256 octets */
	T_CHECK(!mx_valid_domain(name));
	pb_response(&p, name, ns_t_mx, 0, 0);
	T_EQ_INT(parse(&p, NULL, ns_t_mx), -1);

	/* a label with a dot or a control byte inside cannot be shown as a name */
	pb_response(&p, "example.com", ns_t_mx, 0, 1);
	pb_mx(&p, NULL, 10, "mx", 0);
	p.b[p.n - 2] = '.';
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);

	/* an exchange that is not a host name is skipped, not fatal */
	pb_response(&p, "example.com", ns_t_mx, 0, 2);
	pb_mx(&p, NULL, 10, "m*x.example.com", 0);
	pb_mx(&p, NULL, 20, "good.example.com", 0);
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), 0);
	T_EQ_INT(ans.nmx, 1);
	T_EQ_STR(ans.mx[0].name, "good.example.com");
	T_CHECK(ans.skipped);
}

static void test_parse_header(void)
{
	struct pb p;

	pb_response(&p, "example.com", ns_t_mx, 0, 0);
	p.b[2] &= 0x7f;					/* a query, not a response */
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);
	pb_header(&p, 0x8180, 0, 0);			/* no question */
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);
	pb_header(&p, 0x8180, 2, 0);
	pb_name(&p, "example.com");
	pb_u16(&p, ns_t_mx);
	pb_u16(&p, ns_c_in);
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);
	p.n = 11;
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);
	pb_response(&p, "example.com", ns_t_mx, 0, 0);
	T_EQ_INT(parse(&p, "example.com", ns_t_txt), -1);	/* not a type we parse */
	/* ancount says 65535 but nothing follows */
	pb_response(&p, "example.com", ns_t_mx, 0, 0xffff);
	T_EQ_INT(parse(&p, "example.com", ns_t_mx), -1);
}

/* ---- ordering ------------------------------------------------------------------------ */

static void set_records(struct mx_record *r, const unsigned *prefs, const char *const *names,
			size_t n)
{
	for (size_t i = 0; i < n; i++) {
		str_copy(r[i].name, sizeof(r[i].name), names[i]);
		r[i].pref = prefs[i];
	}
}

static void test_sort(void)
{
	static const unsigned prefs[] = { 30, 10, 20, 5 };
	static const char *const names[] = { "c", "a", "b", "z" };
	struct mx_record r[4];
	uint64_t rng = 1;

	set_records(r, prefs, names, 4);
	mx_sort_records(r, 4, &rng);
	T_EQ_STR(r[0].name, "z");
	T_EQ_STR(r[1].name, "a");
	T_EQ_STR(r[2].name, "b");
	T_EQ_STR(r[3].name, "c");
	mx_sort_records(r, 0, &rng);	/* empty is fine */
}

/* Three equal hosts between a better and a worse one: every order shows up over many seeds,
 * each about as often, and the others never move. */
static void test_shuffle(void)
{
	static const unsigned prefs[] = { 20, 10, 10, 5, 10 };
	static const char *const names[] = { "last", "a", "b", "first", "c" };
	static const char *const perms[6] = { "abc", "acb", "bac", "bca", "cab", "cba" };
	int seen[6] = { 0 }, other = 0;
	struct mx_record r[5];

	for (uint64_t seed = 0; seed < 600; seed++) {
		uint64_t rng = seed;
		char order[4];

		set_records(r, prefs, names, 5);
		mx_sort_records(r, 5, &rng);
		if (strcmp(r[0].name, "first") != 0 || strcmp(r[4].name, "last") != 0)
			other++;
		order[0] = r[1].name[0];
		order[1] = r[2].name[0];
		order[2] = r[3].name[0];
		order[3] = '\0';
		for (int i = 0; i < 6; i++)
			if (strcmp(order, perms[i]) == 0)
				seen[i]++;
	}
	T_EQ_INT(other, 0);
	for (int i = 0; i < 6; i++)
		T_CHECK(seen[i] > 50 && seen[i] < 150);
	T_EQ_INT(seen[0] + seen[1] + seen[2] + seen[3] + seen[4] + seen[5], 600);

	/* the same seed gives the same order */
	{
		uint64_t a = 42, b = 42;
		struct mx_record r2[5];

		set_records(r, prefs, names, 5);
		set_records(r2, prefs, names, 5);
		mx_sort_records(r, 5, &a);
		mx_sort_records(r2, 5, &b);
		for (int i = 0; i < 5; i++)
			T_EQ_STR(r[i].name, r2[i].name);
	}
}

/* ---- a fake resolver: a small zone answered through mx_set_query ------------------------ */

enum { Z_SERVFAIL = -1, Z_RCODE_NX = -2, Z_GARBAGE = -3, Z_RCODE_SERVFAIL = -4 };

struct zrec {
	const char *name;
	int type;		/* ns_t_mx/a/aaaa/cname or a Z_ failure for any query of name */
	const char *data;	/* exchange, address or CNAME target */
	unsigned pref;
};

static const struct zrec *zone;
static size_t zone_n;
static int nqueries;
static char query_log[1024];

static void zone_set(const struct zrec *z, size_t n)
{
	zone = z;
	zone_n = n;
	nqueries = 0;
	query_log[0] = '\0';
}

static int zone_failure(const char *name)
{
	for (size_t i = 0; i < zone_n; i++)
		if (zone[i].type < 0 && strcasecmp(zone[i].name, name) == 0)
			return zone[i].type;
	return 0;
}

/* Records of name of type (or CNAME), following CNAMEs; returns how many were added. */
static unsigned zone_answer(struct pb *p, const char *name, int type, int depth)
{
	unsigned an = 0;

	for (size_t i = 0; i < zone_n && depth < 5; i++) {
		const struct zrec *z = &zone[i];

		if (strcasecmp(z->name, name) != 0)
			continue;
		if (z->type == ns_t_cname) {
			pb_cname(p, name, z->data);
			an += 1 + zone_answer(p, z->data, type, depth + 1);
		} else if (z->type == type && type == ns_t_mx) {
			pb_mx(p, name, z->pref, z->data, 0);
			an++;
		} else if (z->type == type) {
			pb_addr(p, name, z->data);
			an++;
		}
	}
	return an;
}

static bool zone_knows(const char *name)
{
	for (size_t i = 0; i < zone_n; i++)
		if (strcasecmp(zone[i].name, name) == 0)
			return true;
	return false;
}

static int fake_query(void *arg, const char *name, int type, unsigned char *out, size_t outlen,
		      int *herr)
{
	struct pb *p = xmalloc(sizeof(*p));
	int fail = zone_failure(name), rc = -1;
	size_t used = strlen(query_log);
	unsigned an;

	nqueries++;
	str_fmt(query_log + used, sizeof(query_log) - used, "%s%s/%s", used ? " " : "", name,
		type == ns_t_mx ? "MX" : type == ns_t_a ? "A" : "AAAA");
	*herr = 0;
	pb_response(p, name, type, 0, 0);
	an = zone_answer(p, name, type, 0);
	pb_put16(p, 6, an);
	if (fail == Z_SERVFAIL) {
		*herr = TRY_AGAIN;
	} else if (fail == Z_RCODE_NX || fail == Z_RCODE_SERVFAIL) {
		pb_response(p, name, type, fail == Z_RCODE_NX ? 3 : 2, 0);
		rc = 0;
	} else if (fail == Z_GARBAGE) {
		p->n -= 3;
		rc = 0;
	} else if (!zone_knows(name)) {
		*herr = HOST_NOT_FOUND;
	} else if (an == 0) {
		*herr = NO_DATA;
	} else {
		rc = 0;
	}
	if (rc == 0 && p->n <= outlen) {
		memcpy(out, p->b, p->n);
		rc = (int)p->n;
	}
	free(p);
	return rc;
}

static struct mx_result res;

static enum mx_status lookup(const char *domain)
{
	memset(err, 'x', sizeof(err));
	return mx_lookup(domain, &res, err, sizeof(err));
}

static void test_lookup_order(void)
{
	static const struct zrec z[] = {
		{ "example.com", ns_t_mx, "mx-b.example.com", 10 },
		{ "example.com", ns_t_mx, "backup.example.net", 50 },
		{ "example.com", ns_t_mx, "mx-a.example.com", 10 },
		{ "mx-a.example.com", ns_t_a, "192.0.2.1", 0 },
		{ "mx-a.example.com", ns_t_aaaa, "2001:db8::1", 0 },
		{ "mx-a.example.com", ns_t_a, "192.0.2.2", 0 },
		{ "mx-b.example.com", ns_t_aaaa, "2001:db8::2", 0 },
		{ "backup.example.net", ns_t_a, "198.51.100.7", 0 },
	};
	char buf[64];
	int a_first = 0;

	mx_set_query(fake_query, NULL);
	for (uint64_t seed = 0; seed < 20; seed++) {
		zone_set(z, ARRAY_LEN(z));
		mx_set_seed(seed);
		T_EQ_INT(lookup("example.com"), MX_OK);
		T_EQ_INT(res.nhosts, 3);
		T_CHECK(!res.implicit_mx && !res.literal && !res.overridden);
		T_EQ_INT(res.port, 25);
		T_EQ_STR(res.warning, "");
		if (strcmp(res.hosts[0].name, "mx-a.example.com") == 0) {
			a_first++;
			T_EQ_INT(res.hosts[0].naddrs, 3);	/* A records first, then AAAA */
			T_EQ_STR(addr_text(&res.hosts[0].addrs[0], buf, sizeof(buf)), "192.0.2.1");
			T_EQ_STR(addr_text(&res.hosts[0].addrs[1], buf, sizeof(buf)), "192.0.2.2");
			T_EQ_STR(addr_text(&res.hosts[0].addrs[2], buf, sizeof(buf)),
				 "2001:db8::1");
			T_EQ_INT(addr_port(&res.hosts[0].addrs[2]), 25);
			T_EQ_STR(res.hosts[1].name, "mx-b.example.com");
		} else {
			T_EQ_STR(res.hosts[0].name, "mx-b.example.com");
			T_EQ_INT(res.hosts[0].naddrs, 1);
			T_EQ_STR(res.hosts[1].name, "mx-a.example.com");
		}
		T_EQ_INT(res.hosts[0].pref, 10);
		T_EQ_STR(res.hosts[2].name, "backup.example.net");
		T_EQ_INT(res.hosts[2].pref, 50);
		T_EQ_INT(addr_port(&res.hosts[2].addrs[0]), 25);
	}
	T_CHECK(a_first > 0 && a_first < 20);	/* both orders happen */
}

static void test_lookup_failures(void)
{
	static const struct zrec z[] = {
		{ "nullmx.example", ns_t_mx, ".", 0 },
		{ "servfail.example", Z_SERVFAIL, NULL, 0 },
		{ "rcode-nx.example", Z_RCODE_NX, NULL, 0 },
		{ "rcode-sf.example", Z_RCODE_SERVFAIL, NULL, 0 },
		{ "garbage.example", Z_GARBAGE, NULL, 0 },
		{ "noaddr.example", ns_t_mx, "gone.example", 10 },
		{ "half.example", ns_t_mx, "servfail.example", 10 },
		{ "half.example", ns_t_mx, "gone.example", 20 },
		{ "partial.example", ns_t_mx, "servfail.example", 10 },
		{ "partial.example", ns_t_mx, "ok.example", 20 },
		{ "ok.example", ns_t_a, "192.0.2.9", 0 },
	};

	mx_set_query(fake_query, NULL);
	zone_set(z, ARRAY_LEN(z));
	T_EQ_INT(lookup("nullmx.example"), MX_NULLMX);
	T_CHECK(strstr(err, "does not accept mail (nullMX)") != NULL);
	T_EQ_INT(res.nhosts, 0);

	T_EQ_INT(lookup("nxdomain.example"), MX_NOTFOUND);
	T_EQ_STR(err, "Host or domain name not found. Name service error for "
		 "name=nxdomain.example type=MX: Host not found");
	T_EQ_INT(lookup("rcode-nx.example"), MX_NOTFOUND);

	T_EQ_INT(lookup("servfail.example"), MX_TEMPFAIL);
	T_CHECK(strstr(err, "try again") != NULL);
	T_EQ_INT(lookup("rcode-sf.example"), MX_TEMPFAIL);
	T_EQ_INT(lookup("garbage.example"), MX_TEMPFAIL);
	T_CHECK(strstr(err, "malformed DNS reply") != NULL);

	/* the only MX host does not exist: permanent; one of them unsure: temporary */
	T_EQ_INT(lookup("noaddr.example"), MX_NOTFOUND);
	T_CHECK(strstr(err, "name=gone.example type=A") != NULL);
	T_EQ_INT(lookup("half.example"), MX_TEMPFAIL);
	T_CHECK(strstr(err, "name=servfail.example") != NULL);
	/* a host that works is enough; the failed one is noted */
	T_EQ_INT(lookup("partial.example"), MX_OK);
	T_EQ_INT(res.nhosts, 1);
	T_EQ_STR(res.hosts[0].name, "ok.example");
	T_EQ_STR(err, "");
	T_CHECK(strstr(res.warning, "servfail.example skipped") != NULL);

	/* bad syntax never reaches DNS */
	zone_set(z, ARRAY_LEN(z));
	T_EQ_INT(lookup("bad..example"), MX_NOTFOUND);
	T_EQ_INT(lookup("sp ace.example"), MX_NOTFOUND);
	T_EQ_INT(lookup(""), MX_NOTFOUND);
	T_EQ_INT(nqueries, 0);
}

static void test_lookup_implicit(void)
{
	static const struct zrec z[] = {
		{ "bare.example", ns_t_a, "192.0.2.30", 0 },
		{ "bare.example", ns_t_aaaa, "2001:db8::30", 0 },
		{ "v6only.example", ns_t_aaaa, "2001:db8::31", 0 },
		{ "txtonly.example", ns_t_txt, "x", 0 },
		{ "alias.example", ns_t_cname, "bare.example", 0 },
		{ "flaky.example", ns_t_txt, "x", 0 },
	};
	char buf[64];

	mx_set_query(fake_query, NULL);
	zone_set(z, ARRAY_LEN(z));
	T_EQ_INT(lookup("bare.example."), MX_OK);
	T_CHECK(res.implicit_mx);
	T_EQ_INT(res.nhosts, 1);
	T_EQ_STR(res.hosts[0].name, "bare.example");
	T_EQ_INT(res.hosts[0].pref, 0);
	T_EQ_INT(res.hosts[0].naddrs, 2);
	T_EQ_STR(addr_text(&res.hosts[0].addrs[0], buf, sizeof(buf)), "192.0.2.30");
	T_EQ_STR(addr_text(&res.hosts[0].addrs[1], buf, sizeof(buf)), "2001:db8::30");
	T_EQ_INT(addr_port(&res.hosts[0].addrs[0]), 25);
	T_EQ_INT(addr_port(&res.hosts[0].addrs[1]), 25);
	T_EQ_STR(query_log, "bare.example/MX bare.example/A bare.example/AAAA");

	T_EQ_INT(lookup("v6only.example"), MX_OK);
	T_EQ_INT(res.hosts[0].naddrs, 1);
	T_EQ_INT(res.hosts[0].addrs[0].ss.ss_family, AF_INET6);

	/* a CNAME for the domain itself is normal: no warning */
	T_EQ_INT(lookup("alias.example"), MX_OK);
	T_CHECK(res.implicit_mx);
	T_EQ_INT(res.hosts[0].naddrs, 2);
	T_EQ_STR(res.warning, "");

	/* no MX and no address: permanent */
	T_EQ_INT(lookup("txtonly.example"), MX_NOTFOUND);
	T_CHECK(strstr(err, "name=txtonly.example type=AAAA") != NULL);
	T_EQ_INT(res.nhosts, 0);
}

static void test_lookup_odd_mx(void)
{
	static const struct zrec z[] = {
		{ "iplit.example", ns_t_mx, "192.0.2.55", 10 },
		{ "cname.example", ns_t_mx, "alias.example", 10 },
		{ "alias.example", ns_t_cname, "real.example", 0 },
		{ "real.example", ns_t_a, "192.0.2.56", 0 },
		{ "mixed.example", ns_t_mx, ".", 0 },
		{ "mixed.example", ns_t_mx, "real.example", 10 },
	};
	char buf[64];

	mx_set_query(fake_query, NULL);
	zone_set(z, ARRAY_LEN(z));
	T_EQ_INT(lookup("iplit.example"), MX_OK);
	T_EQ_STR(addr_text(&res.hosts[0].addrs[0], buf, sizeof(buf)), "192.0.2.55");
	T_CHECK(strstr(res.warning, "is an IP address") != NULL);
	T_EQ_STR(query_log, "iplit.example/MX");

	T_EQ_INT(lookup("cname.example"), MX_OK);
	T_EQ_STR(addr_text(&res.hosts[0].addrs[0], buf, sizeof(buf)), "192.0.2.56");
	T_CHECK(strstr(res.warning, "alias.example is an alias (CNAME)") != NULL);

	T_EQ_INT(lookup("mixed.example"), MX_OK);
	T_EQ_INT(res.nhosts, 1);
	T_EQ_STR(res.hosts[0].name, "real.example");
	T_CHECK(strstr(res.warning, "null MX mixed") != NULL);
}

static void test_lookup_host_limit(void)
{
	static struct zrec z[2 * (MX_MAX_HOSTS + 5)];
	static char names[MX_MAX_HOSTS + 5][32];
	size_t n = 0;

	for (unsigned i = 0; i < MX_MAX_HOSTS + 5; i++) {
		str_fmt(names[i], sizeof(names[i]), "mx%u.many.example", i);
		z[n++] = (struct zrec){ "many.example", ns_t_mx, names[i], 100 - i };
		z[n++] = (struct zrec){ names[i], ns_t_a, "192.0.2.80", 0 };
	}
	mx_set_query(fake_query, NULL);
	zone_set(z, n);
	T_EQ_INT(lookup("many.example"), MX_OK);
	T_EQ_INT(res.nhosts, MX_MAX_HOSTS);
	T_EQ_STR(res.hosts[0].name, "mx24.many.example");	/* lowest preference (76) */
	T_EQ_INT(res.hosts[0].pref, 76);
	T_EQ_INT(res.hosts[MX_MAX_HOSTS - 1].pref, 95);
	T_EQ_INT(nqueries, 1 + 2 * MX_MAX_HOSTS);	/* no address queries past the limit */
}

static void test_domain_literals(void)
{
	char buf[64];

	mx_set_query(fake_query, NULL);
	zone_set(NULL, 0);
	T_EQ_INT(lookup("[192.0.2.1]"), MX_OK);
	T_CHECK(res.literal);
	T_EQ_INT(res.nhosts, 1);
	T_EQ_STR(res.hosts[0].name, "[192.0.2.1]");
	T_EQ_STR(addr_text(&res.hosts[0].addrs[0], buf, sizeof(buf)), "192.0.2.1");
	T_EQ_INT(addr_port(&res.hosts[0].addrs[0]), 25);
	T_EQ_INT(lookup("[IPv6:2001:db8::7]"), MX_OK);
	T_EQ_STR(addr_text(&res.hosts[0].addrs[0], buf, sizeof(buf)), "2001:db8::7");
	T_EQ_INT(addr_port(&res.hosts[0].addrs[0]), 25);
	T_EQ_INT(res.hosts[0].addrs[0].len, sizeof(struct sockaddr_in6));
	T_EQ_INT(lookup("[ipv6:::1]"), MX_OK);
	T_EQ_INT(res.hosts[0].addrs[0].ss.ss_family, AF_INET6);

	T_EQ_INT(lookup("[2001:db8::7]"), MX_NOTFOUND);		/* the IPv6: tag is required */
	T_EQ_INT(lookup("[IPv6:192.0.2.1]"), MX_NOTFOUND);
	T_EQ_INT(lookup("[192.0.2.1"), MX_NOTFOUND);
	T_EQ_INT(lookup("[]"), MX_NOTFOUND);
	T_EQ_INT(lookup("["), MX_NOTFOUND);
	T_EQ_INT(lookup("[IPv6:]"), MX_NOTFOUND);
	T_EQ_INT(lookup("[IPv6:"), MX_NOTFOUND);
	T_EQ_INT(lookup("[192.0.2.300]"), MX_NOTFOUND);
	T_EQ_INT(lookup("[example.com]"), MX_NOTFOUND);
	T_CHECK(strstr(err, "invalid domain literal") != NULL);
	T_EQ_INT(nqueries, 0);
}

static void test_override(void)
{
	static const struct zrec z[] = {
		{ "dns.example", ns_t_a, "192.0.2.40", 0 },
	};
	char buf[64];

	mx_set_query(fake_query, NULL);
	zone_set(z, ARRAY_LEN(z));
	T_EQ_INT(mx_set_override("example.test=127.0.0.1:2525, other.test=[::1]:2526\n"
				 "two.test=127.0.0.2 two.test=[IPv6:::1]:smtp, v4.test=[127.0.0.3]",
				 err, sizeof(err)), 0);
	T_EQ_INT(lookup("example.test"), MX_OK);
	T_CHECK(res.overridden);
	T_EQ_INT(res.port, 2525);
	T_EQ_INT(res.nhosts, 1);
	T_EQ_STR(res.hosts[0].name, "example.test");
	T_EQ_STR(addr_text(&res.hosts[0].addrs[0], buf, sizeof(buf)), "127.0.0.1");
	T_EQ_INT(addr_port(&res.hosts[0].addrs[0]), 2525);
	T_EQ_INT(lookup("EXAMPLE.Test."), MX_OK);
	T_EQ_INT(res.port, 2525);
	T_EQ_INT(lookup("other.test"), MX_OK);
	T_EQ_STR(addr_text(&res.hosts[0].addrs[0], buf, sizeof(buf)), "::1");
	T_EQ_INT(addr_port(&res.hosts[0].addrs[0]), 2526);
	T_EQ_INT(lookup("two.test"), MX_OK);
	T_EQ_INT(res.hosts[0].naddrs, 2);
	T_EQ_INT(res.port, 25);
	T_EQ_INT(lookup("v4.test"), MX_OK);
	T_EQ_STR(addr_text(&res.hosts[0].addrs[0], buf, sizeof(buf)), "127.0.0.3");
	T_EQ_INT(nqueries, 0);
	/* only whole names match; others go to DNS */
	T_EQ_INT(lookup("sub.example.test"), MX_NOTFOUND);
	T_EQ_INT(lookup("dns.example"), MX_OK);
	T_CHECK(!res.overridden);
	T_EQ_INT(nqueries, 4);

	/* bad specs are refused and keep the previous list */
	static const char *const bad[] = {
		"foo", "=127.0.0.1", "x.test=", "x.test=::1", "x.test=host.example",
		"x.test=127.0.0.1:0", "x.test=127.0.0.1:65536", "x.test=127.0.0.1:",
		"x.test=[::1]junk", "x.test=[::1", "bad..name=127.0.0.1", "x.test=[]:25",
		"x.test=127.0.0.1:25:26", "x.test=1.2.3",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		T_EQ_INT(mx_set_override(bad[i], err, sizeof(err)), -1);
		T_CHECK(strstr(err, "smtp_host_override") != NULL);
	}
	T_EQ_INT(lookup("example.test"), MX_OK);
	T_CHECK(res.overridden);

	T_EQ_INT(mx_set_override(" , ", err, sizeof(err)), 0);	/* empty: cleared */
	T_EQ_INT(lookup("example.test"), MX_NOTFOUND);
	T_EQ_INT(mx_set_override("", err, sizeof(err)), 0);
}

static void test_relayhost_parse(void)
{
	struct mx_relayhost rh;

	T_EQ_INT(mx_parse_relayhost("[smtp.isp.example]:587", &rh, err, sizeof(err)), 0);
	T_EQ_STR(rh.host, "smtp.isp.example");
	T_EQ_INT(rh.port, 587);
	T_CHECK(!rh.mx_lookup);
	T_EQ_INT(mx_parse_relayhost("[smtp.isp.example]", &rh, err, sizeof(err)), 0);
	T_EQ_INT(rh.port, 25);
	T_CHECK(!rh.mx_lookup);
	T_EQ_INT(mx_parse_relayhost("isp.example", &rh, err, sizeof(err)), 0);
	T_EQ_STR(rh.host, "isp.example");
	T_EQ_INT(rh.port, 25);
	T_CHECK(rh.mx_lookup);
	T_EQ_INT(mx_parse_relayhost("isp.example.:submission", &rh, err, sizeof(err)), 0);
	T_EQ_STR(rh.host, "isp.example");
	T_EQ_INT(rh.port, 587);
	T_CHECK(rh.mx_lookup);
	T_EQ_INT(mx_parse_relayhost("[IPv6:2001:db8::1]:2525", &rh, err, sizeof(err)), 0);
	T_EQ_STR(rh.host, "2001:db8::1");
	T_EQ_INT(rh.port, 2525);
	T_CHECK(!rh.mx_lookup);
	T_EQ_INT(mx_parse_relayhost("[2001:db8::1]", &rh, err, sizeof(err)), 0);
	T_EQ_STR(rh.host, "2001:db8::1");
	T_EQ_INT(mx_parse_relayhost("192.0.2.1:465", &rh, err, sizeof(err)), 0);
	T_CHECK(!rh.mx_lookup);			/* an address has no MX */
	T_EQ_INT(rh.port, 465);

	static const char *const bad[] = {
		"", "[", "[]", "[host.example", "[host.example]x", "[host.example]:", "host:",
		"host:0", "host:99999", "host:smtpx", "2001:db8::1", "bad host", "a..b",
		"[bad_host!]:25", ":25",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		T_EQ_INT(mx_parse_relayhost(bad[i], &rh, err, sizeof(err)), -1);
		T_CHECK(strstr(err, "relayhost") != NULL);
	}
}

static void test_relayhost_lookup(void)
{
	static const struct zrec z[] = {
		{ "isp.example", ns_t_mx, "smtp.isp.example", 10 },
		{ "smtp.isp.example", ns_t_a, "192.0.2.60", 0 },
		{ "smtp.isp.example", ns_t_mx, "elsewhere.example", 10 },
	};
	struct mx_relayhost rh;

	mx_set_query(fake_query, NULL);
	zone_set(z, ARRAY_LEN(z));
	T_EQ_INT(mx_parse_relayhost("[smtp.isp.example]:587", &rh, err, sizeof(err)), 0);
	T_EQ_INT(mx_lookup_relayhost(&rh, &res, err, sizeof(err)), MX_OK);
	T_EQ_STR(query_log, "smtp.isp.example/A smtp.isp.example/AAAA");	/* no MX */
	T_EQ_INT(res.port, 587);
	T_EQ_INT(addr_port(&res.hosts[0].addrs[0]), 587);
	T_CHECK(!res.implicit_mx);

	zone_set(z, ARRAY_LEN(z));
	T_EQ_INT(mx_parse_relayhost("isp.example:2525", &rh, err, sizeof(err)), 0);
	T_EQ_INT(mx_lookup_relayhost(&rh, &res, err, sizeof(err)), MX_OK);
	T_EQ_STR(res.hosts[0].name, "smtp.isp.example");
	T_EQ_INT(addr_port(&res.hosts[0].addrs[0]), 2525);
	T_EQ_INT(res.port, 2525);

	zone_set(z, ARRAY_LEN(z));
	T_EQ_INT(mx_parse_relayhost("[192.0.2.61]:26", &rh, err, sizeof(err)), 0);
	T_EQ_INT(mx_lookup_relayhost(&rh, &res, err, sizeof(err)), MX_OK);
	T_CHECK(res.literal);
	T_EQ_INT(addr_port(&res.hosts[0].addrs[0]), 26);
	T_EQ_INT(nqueries, 0);

	T_EQ_INT(mx_parse_relayhost("[missing.example]", &rh, err, sizeof(err)), 0);
	T_EQ_INT(mx_lookup_relayhost(&rh, &res, err, sizeof(err)), MX_NOTFOUND);
	T_EQ_INT(res.nhosts, 0);

	/* the override wins, with its own port */
	T_EQ_INT(mx_set_override("smtp.isp.example=127.0.0.1:2600", err, sizeof(err)), 0);
	zone_set(z, ARRAY_LEN(z));
	T_EQ_INT(mx_parse_relayhost("[smtp.isp.example]:587", &rh, err, sizeof(err)), 0);
	T_EQ_INT(mx_lookup_relayhost(&rh, &res, err, sizeof(err)), MX_OK);
	T_CHECK(res.overridden);
	T_EQ_INT(addr_port(&res.hosts[0].addrs[0]), 2600);
	T_EQ_INT(nqueries, 0);
	T_EQ_INT(mx_set_override("", err, sizeof(err)), 0);
}

/* Tiny error buffers are truncated, never overrun. */
static void test_small_err(void)
{
	char small[8];

	mx_set_query(fake_query, NULL);
	zone_set(NULL, 0);
	memset(small, 'x', sizeof(small));
	T_EQ_INT(mx_lookup("nowhere.example", &res, small, sizeof(small)), MX_NOTFOUND);
	T_CHECK(memchr(small, '\0', sizeof(small)) != NULL);
	T_EQ_INT(mx_lookup("nowhere.example", &res, NULL, 0), MX_NOTFOUND);
}

/* ---- fuzzer seeds -------------------------------------------------------------------- */

static int write_seed(const char *dir, const char *name, const struct pb *p)
{
	char path[512];

	if (str_fmt(path, sizeof(path), "%s/%s", dir, name) < 0)
		return -1;
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	if (fwrite(p->b, 1, p->n, f) != p->n) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

static int write_seeds(const char *dir)
{
	struct pb p;
	int rc = 0;

	build_three_mx(&p);
	rc |= write_seed(dir, "mx_three", &p);
	pb_response(&p, "nomail.example", ns_t_mx, 0, 1);
	pb_mx(&p, NULL, 0, ".", 0);
	rc |= write_seed(dir, "mx_null", &p);
	pb_response(&p, "alias.example.com", ns_t_mx, 0, 2);
	pb_cname(&p, NULL, "real.example.net");
	pb_mx(&p, "real.example.net", 5, "mx", QNAME_OFF);
	rc |= write_seed(dir, "mx_cname", &p);
	pb_response(&p, "mx.example.com", ns_t_a, 0, 2);
	pb_addr(&p, NULL, "192.0.2.1");
	pb_addr(&p, NULL, "192.0.2.2");
	rc |= write_seed(dir, "a_two", &p);
	pb_response(&p, "mx.example.com", ns_t_aaaa, 0, 1);
	pb_addr(&p, NULL, "2001:db8::25");
	rc |= write_seed(dir, "aaaa_one", &p);
	pb_response(&p, "gone.example", ns_t_mx, ns_r_nxdomain, 0);
	rc |= write_seed(dir, "mx_nxdomain", &p);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--seeds") == 0)
		return write_seeds(argv[2]) ? 1 : 0;
	T_RUN(test_parse_mx);
	T_RUN(test_parse_addresses);
	T_RUN(test_parse_cname_chain);
	T_RUN(test_parse_null_and_empty);
	T_RUN(test_parse_truncated);
	T_RUN(test_parse_compression_loops);
	T_RUN(test_parse_bad_rdlength);
	T_RUN(test_parse_name_limits);
	T_RUN(test_parse_header);
	T_RUN(test_sort);
	T_RUN(test_shuffle);
	T_RUN(test_lookup_order);
	T_RUN(test_lookup_failures);
	T_RUN(test_lookup_implicit);
	T_RUN(test_lookup_odd_mx);
	T_RUN(test_lookup_host_limit);
	T_RUN(test_domain_literals);
	T_RUN(test_override);
	T_RUN(test_relayhost_parse);
	T_RUN(test_relayhost_lookup);
	T_RUN(test_small_err);
	return T_DONE();
}
