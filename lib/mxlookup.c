/*
 * mxlookup.c: destination lookup for outbound SMTP (see mxlookup.h): a strict DNS answer
 * parser, MX ordering, address resolution, domain literals, relayhost and the test override.
 *
 * The parser is written by hand rather than with ns_parserr so that every bound is visible
 * here: compression pointers may only point before the place the current name started (so
 * no loop can form), names stop at 255 octets, and each record's data must be consumed
 * exactly by its rdlength.
 */
#include "mxlookup.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define DNS_HEADER_LEN	12
#define DNS_RR_FIXED	10		/* type, class, ttl, rdlength */
#define DNS_NAME_WIRE	255		/* RFC 1035 3.1: a name is at most 255 octets */
#define DNS_FLAG_QR	0x8000u
#define DNS_FLAG_TC	0x0200u
#define CHAIN_MAX	8		/* qname plus the CNAME targets we follow */
#define ANSWER_MAX	65536		/* a DNS message over TCP is at most 64 KB */
#define MAX_OVERRIDES	32

static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(err, errlen, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
}

static bool is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

bool mx_valid_domain(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (!is_ldh(name[i]) || ++label > 63) {
			return false;
		}
	}
	return label > 0;
}

/* Copy a name without its trailing dot (the root stays "."); -1 if it does not fit. */
static int name_normalize(char *out, size_t outlen, const char *name)
{
	size_t len = strlen(name);

	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len >= outlen)
		return -1;
	memmove(out, name, len);	/* out may be name itself */
	out[len] = '\0';
	return 0;
}

/* ---- the packet parser ---------------------------------------------------------------- */

struct packet {
	const unsigned char *msg;
	size_t len;
};

/* Bytes allowed in a label's text form: printable, and not the separators we would print. */
static bool label_byte_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '.' && c != '\\';
}

/* Append one label at pos to out (with a dot before it unless first). */
static int label_append(const struct packet *pk, size_t pos, size_t n, char *out, size_t *o)
{
	if (*o > 0)
		out[(*o)++] = '.';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = pk->msg[pos + 1 + i];

		if (!label_byte_ok(c))
			return -1;
		out[(*o)++] = (char)c;
	}
	return 0;
}

/*
 * Expand the name at off into out[MX_NAME_MAX]; *next gets the offset after the name's
 * bytes in place. A pointer must point before the start of the name or of the previous
 * pointer's target, so every jump goes strictly backwards and loops cannot happen. The wire
 * length (at most 255) also bounds the text: at most 253 characters.
 */
static int name_expand(const struct packet *pk, size_t off, char *out, size_t *next)
{
	size_t pos = off, lowest = off, wire = 1, o = 0;
	bool jumped = false;

	for (;;) {
		unsigned c;

		if (pos >= pk->len)
			return -1;
		c = pk->msg[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t target;

			if (pos + 1 >= pk->len)
				return -1;
			target = (size_t)(c & 0x3f) << 8 | pk->msg[pos + 1];
			if (target >= lowest)
				return -1;
			if (!jumped)
				*next = pos + 2;
			jumped = true;
			pos = lowest = target;
			continue;
		}
		if (c & 0xc0)
			return -1;	/* 0x40/0x80: extended label types, never valid here */
		if (c == 0)
			break;
		wire += c + 1;
		if (wire > DNS_NAME_WIRE || c > pk->len - pos - 1)
			return -1;
		if (label_append(pk, pos, c, out, &o) < 0)
			return -1;
		pos += 1 + c;
	}
	if (!jumped)
		*next = pos + 1;
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return 0;
}

/* The names whose records belong to the answer: the query name and CNAME targets. */
struct chain {
	size_t n;
	char names[CHAIN_MAX][MX_NAME_MAX];
};

static bool chain_has(const struct chain *ch, const char *name)
{
	for (size_t i = 0; i < ch->n; i++)
		if (strcasecmp(ch->names[i], name) == 0)
			return true;
	return false;
}

static int parse_question(const struct packet *pk, const char *qname, int qtype,
			  struct chain *ch, size_t *pos, char *err, size_t errlen)
{
	char name[MX_NAME_MAX];

	if (get16(pk->msg + 4) != 1) {
		set_err(err, errlen, "question count is %u, not 1", get16(pk->msg + 4));
		return -1;
	}
	if (name_expand(pk, DNS_HEADER_LEN, name, pos) < 0 || pk->len - *pos < 4) {
		set_err(err, errlen, "malformed question");
		return -1;
	}
	if ((qname != NULL && strcasecmp(name, ch->names[0]) != 0) ||
	    get16(pk->msg + *pos) != (unsigned)qtype || get16(pk->msg + *pos + 2) != ns_c_in) {
		set_err(err, errlen, "answer to another question (%s)", name);
		return -1;
	}
	if (qname == NULL)
		memcpy(ch->names[0], name, sizeof(name));
	*pos += 4;
	return 0;
}

static int parse_mx_rdata(const struct packet *pk, size_t rd, size_t rdlen, struct mx_answer *out)
{
	struct mx_record rec;
	size_t end;

	memset(&rec, 0, sizeof(rec));	/* results are compared byte for byte (fuzzer) */
	if (rdlen < 3 || name_expand(pk, rd + 2, rec.name, &end) < 0 || end != rd + rdlen)
		return -1;
	rec.pref = get16(pk->msg + rd);
	if ((strcmp(rec.name, ".") != 0 && !mx_valid_domain(rec.name)) ||
	    out->nmx == MX_MAX_RECORDS) {
		out->skipped = true;
		return 0;
	}
	out->mx[out->nmx++] = rec;
	return 0;
}

static int parse_addr_rdata(const struct packet *pk, size_t rd, size_t rdlen, int type,
			    struct mx_answer *out)
{
	struct inet_addr *a;

	if (rdlen != (type == ns_t_a ? 4u : 16u))
		return -1;
	if (out->naddrs == MX_MAX_ADDRS) {
		out->skipped = true;
		return 0;
	}
	a = &out->addrs[out->naddrs++];
	memset(a, 0, sizeof(*a));
	if (type == ns_t_a) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;

		in4->sin_family = AF_INET;
		memcpy(&in4->sin_addr, pk->msg + rd, 4);
		a->len = sizeof(*in4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, pk->msg + rd, 16);
		a->len = sizeof(*in6);
	}
	return 0;
}

static int parse_cname_rdata(const struct packet *pk, size_t rd, size_t rdlen, struct chain *ch,
			     struct mx_answer *out)
{
	char target[MX_NAME_MAX];
	size_t end;

	if (name_expand(pk, rd, target, &end) < 0 || end != rd + rdlen)
		return -1;
	out->cname = true;
	if (ch->n < CHAIN_MAX && !chain_has(ch, target))
		memcpy(ch->names[ch->n++], target, sizeof(target));
	return 0;
}

/* One answer record at *pos: check its bounds, use it if it belongs to the chain. */
static int parse_record(const struct packet *pk, size_t *pos, int qtype, struct chain *ch,
			struct mx_answer *out)
{
	char owner[MX_NAME_MAX];
	unsigned type, class;
	size_t rd, rdlen;

	if (name_expand(pk, *pos, owner, pos) < 0 || pk->len - *pos < DNS_RR_FIXED)
		return -1;
	type = get16(pk->msg + *pos);
	class = get16(pk->msg + *pos + 2);
	rdlen = get16(pk->msg + *pos + 8);
	rd = *pos + DNS_RR_FIXED;
	if (rdlen > pk->len - rd)
		return -1;
	*pos = rd + rdlen;
	if (class != ns_c_in || !chain_has(ch, owner))
		return 0;
	if (type == ns_t_cname)
		return parse_cname_rdata(pk, rd, rdlen, ch, out);
	if (type != (unsigned)qtype)
		return 0;
	if (type == ns_t_mx)
		return parse_mx_rdata(pk, rd, rdlen, out);
	return parse_addr_rdata(pk, rd, rdlen, qtype, out);
}

int mx_parse_answer(const unsigned char *msg, size_t len, const char *qname, int qtype,
		    struct mx_answer *out, char *err, size_t errlen)
{
	struct packet pk = { msg, len };
	struct chain ch = { .n = 1 };
	size_t pos, ancount;
	unsigned flags;

	memset(out, 0, sizeof(*out));
	if (qtype != ns_t_mx && qtype != ns_t_a && qtype != ns_t_aaaa) {
		set_err(err, errlen, "unsupported query type %d", qtype);
		return -1;
	}
	if (qname != NULL && name_normalize(ch.names[0], sizeof(ch.names[0]), qname) < 0) {
		set_err(err, errlen, "query name too long");
		return -1;
	}
	if (len < DNS_HEADER_LEN) {
		set_err(err, errlen, "short message (%zu bytes)", len);
		return -1;
	}
	flags = get16(msg + 2);
	if (!(flags & DNS_FLAG_QR)) {
		set_err(err, errlen, "not a response");
		return -1;
	}
	out->rcode = (int)(flags & 0xf);
	out->truncated = (flags & DNS_FLAG_TC) != 0;
	if (parse_question(&pk, qname, qtype, &ch, &pos, err, errlen) < 0)
		return -1;
	ancount = get16(msg + 6);
	for (size_t i = 0; i < ancount; i++) {
		if (parse_record(&pk, &pos, qtype, &ch, out) < 0) {
			set_err(err, errlen, "malformed answer record %zu", i + 1);
			return -1;
		}
	}
	return 0;
}

/* ---- ordering ------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void mx_sort_records(struct mx_record *r, size_t n, uint64_t *rng)
{
	/* Insertion sort: stable, and n is at most MX_MAX_RECORDS. */
	for (size_t i = 1; i < n; i++) {
		struct mx_record key = r[i];
		size_t j = i;

		for (; j > 0 && r[j - 1].pref > key.pref; j--)
			r[j] = r[j - 1];
		r[j] = key;
	}
	/* Fisher-Yates within each run of equal preference (RFC 5321 5.1: random order). */
	for (size_t start = 0, end; start < n; start = end) {
		for (end = start + 1; end < n && r[end].pref == r[start].pref; end++)
			;
		for (size_t k = end - 1; k > start; k--) {
			size_t m = start + (size_t)(splitmix64(rng) % (k - start + 1));
			struct mx_record tmp = r[k];

			r[k] = r[m];
			r[m] = tmp;
		}
	}
}

static _Thread_local uint64_t rng_state;
static _Thread_local bool rng_seeded;

void mx_set_seed(uint64_t seed)
{
	rng_state = seed;
	rng_seeded = true;
}

static uint64_t *thread_rng(void)
{
	if (!rng_seeded) {
		if (getrandom(&rng_state, sizeof(rng_state), GRND_NONBLOCK) != sizeof(rng_state))
			rng_state = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32) ^
				    (uint64_t)(uintptr_t)&rng_state;
		rng_seeded = true;
	}
	return &rng_state;
}

/* ---- DNS queries ---------------------------------------------------------------------- */

static int res_query_default(void *arg, const char *name, int type, unsigned char *ans,
			     size_t anslen, int *herr)
{
	struct __res_state rs;
	int n;

	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) != 0) {
		*herr = TRY_AGAIN;
		return -1;
	}
	n = res_nquery(&rs, name, ns_c_in, type, ans, (int)anslen);
	*herr = n < 0 ? rs.res_h_errno : 0;
	res_nclose(&rs);
	return n;
}

static mx_query_fn query_fn = res_query_default;
static void *query_arg;

void mx_set_query(mx_query_fn fn, void *arg)
{
	query_fn = fn != NULL ? fn : res_query_default;
	query_arg = fn != NULL ? arg : NULL;
}

enum qresult { Q_OK, Q_NODATA, Q_NXDOMAIN, Q_TEMP };

static const char *type_name(int type)
{
	return type == ns_t_mx ? "MX" : type == ns_t_a ? "A" : "AAAA";
}

static enum qresult query_failed(int herr, const char *name, int type, char *err, size_t errlen)
{
	const char *what = herr == HOST_NOT_FOUND ? "Host not found"
			 : herr == NO_DATA ? "No address associated with hostname"
			 : "Host not found, try again";

	set_err(err, errlen,
		"Host or domain name not found. Name service error for name=%s type=%s: %s",
		name, type_name(type), what);
	return herr == HOST_NOT_FOUND ? Q_NXDOMAIN : herr == NO_DATA ? Q_NODATA : Q_TEMP;
}

/* Ask for name/type and parse the answer into ans; err explains anything but Q_OK. */
static enum qresult dns_query(const char *name, int type, struct mx_answer *ans, char *err,
			      size_t errlen)
{
	unsigned char *buf = xmalloc(ANSWER_MAX);
	char why[128];
	int herr = 0;
	int n = query_fn(query_arg, name, type, buf, ANSWER_MAX, &herr);
	enum qresult r;

	memset(ans, 0, sizeof(*ans));
	if (n < 0) {
		r = query_failed(herr, name, type, err, errlen);
	} else if (mx_parse_answer(buf, (size_t)n < ANSWER_MAX ? (size_t)n : ANSWER_MAX, name,
				   type, ans, why, sizeof(why)) < 0) {
		set_err(err, errlen, "malformed DNS reply for name=%s type=%s: %s", name,
			type_name(type), why);
		r = Q_TEMP;
	} else if (ans->rcode != ns_r_noerror) {
		r = query_failed(ans->rcode == ns_r_nxdomain ? HOST_NOT_FOUND : TRY_AGAIN, name,
				 type, err, errlen);
	} else if ((type == ns_t_mx && ans->nmx == 0) || (type != ns_t_mx && ans->naddrs == 0)) {
		r = query_failed(NO_DATA, name, type, err, errlen);
	} else {
		r = Q_OK;
	}
	free(buf);
	return r;
}

/* ---- results -------------------------------------------------------------------------- */

static void add_warning(struct mx_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_warning(struct mx_result *res, const char *fmt, ...)
{
	size_t used = strlen(res->warning);
	va_list ap;

	if (used > 0 && used + 2 < sizeof(res->warning)) {
		memcpy(res->warning + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	if (vsnprintf(res->warning + used, sizeof(res->warning) - used, fmt, ap) < 0)
		res->warning[used] = '\0';
	va_end(ap);
}

static void result_init(struct mx_result *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->status = MX_TEMPFAIL;
	out->port = MX_DEFAULT_PORT;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

static void set_port(struct inet_addr *a, unsigned port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}

static void apply_port(struct mx_result *out, unsigned port)
{
	out->port = port;
	for (size_t i = 0; i < out->nhosts; i++)
		for (size_t j = 0; j < out->hosts[i].naddrs; j++)
			set_port(&out->hosts[i].addrs[j], port);
}

/* An IPv4 or IPv6 address in text (no brackets), port 0. */
static bool addr_parse(const char *text, struct inet_addr *a)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		a->len = sizeof(*in4);
		return true;
	}
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		a->len = sizeof(*in6);
		return true;
	}
	return false;
}

static void host_add_addrs(struct mx_host *h, const struct mx_answer *ans)
{
	for (size_t i = 0; i < ans->naddrs && h->naddrs < MX_MAX_ADDRS; i++)
		h->addrs[h->naddrs++] = ans->addrs[i];
}

/*
 * Addresses of one host: IPv4 then IPv6. mx_host says the name came from an MX record, where
 * an IP address or a CNAME is against RFC 5321/2181 but accepted with a warning.
 */
static enum mx_status resolve_host(struct mx_host *h, bool mx_host, struct mx_result *res,
				   char *err, size_t errlen)
{
	struct mx_answer *ans = xmalloc(sizeof(*ans));
	char err6[512];
	enum qresult r4, r6 = Q_NODATA;
	bool cname = false;

	if (addr_parse(h->name, &h->addrs[0])) {
		h->naddrs = 1;
		if (mx_host)
			add_warning(res, "MX host %s is an IP address, not a name", h->name);
		free(ans);
		return MX_OK;
	}
	r4 = dns_query(h->name, ns_t_a, ans, err, errlen);
	if (r4 == Q_OK) {
		host_add_addrs(h, ans);
		cname = ans->cname;
	}
	if (r4 != Q_NXDOMAIN) {
		r6 = dns_query(h->name, ns_t_aaaa, ans, err6, sizeof(err6));
		if (r6 == Q_OK) {
			host_add_addrs(h, ans);
			cname = cname || ans->cname;
		}
		if (r4 != Q_TEMP)	/* a temporary reason wins: it decides the status */
			set_err(err, errlen, "%s", err6);
	}
	free(ans);
	if (h->naddrs > 0) {
		if (cname && mx_host)
			add_warning(res, "MX host %s is an alias (CNAME)", h->name);
		return MX_OK;
	}
	return r4 == Q_TEMP || r6 == Q_TEMP ? MX_TEMPFAIL : MX_NOTFOUND;
}

static enum mx_status finish(struct mx_result *out, enum mx_status st)
{
	out->status = st;
	if (st != MX_OK)
		out->nhosts = 0;
	return st;
}

/* ---- overrides (smtp_host_override) -------------------------------------------------- */

struct override {
	char domain[MX_NAME_MAX];
	struct inet_addr addr;	/* port set */
	unsigned port;
};

static struct override overrides[MAX_OVERRIDES];
static size_t noverrides;

/* "25", "smtp", "submission", "smtps": no getservbyname, which needs files in a chroot. */
static int port_parse(const char *s, unsigned *port)
{
	static const struct { const char *name; unsigned port; } names[] = {
		{ "smtp", 25 }, { "submission", 587 }, { "smtps", 465 },
	};
	long long v;

	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*port = names[i].port;
			return 0;
		}
	}
	if (str_to_ll(s, 1, 65535, &v) < 0)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* Split "[inner]rest" or "host:port"/"host" into host and port texts; -1 on bad shape. */
static int split_host_port(const char *s, char *host, size_t hostlen, const char **port,
			   bool *bracketed)
{
	const char *colon, *end;

	*bracketed = s[0] == '[';
	if (*bracketed) {
		end = strchr(s, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return -1;
		s++;
		if (strncasecmp(s, "IPv6:", 5) == 0)
			s += 5;
		*port = end[1] == ':' ? end + 2 : NULL;
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return -1;	/* more than one colon: an IPv6 address needs brackets */
		end = colon != NULL ? colon : s + strlen(s);
		*port = colon != NULL ? colon + 1 : NULL;
	}
	if (end == s || (size_t)(end - s) >= hostlen)
		return -1;
	memcpy(host, s, (size_t)(end - s));
	host[end - s] = '\0';
	return 0;
}

/* One "domain=ADDR[:port]" item. */
static int override_item(const char *item, struct override *ov, char *err, size_t errlen)
{
	const char *eq = strchr(item, '='), *port;
	char host[MX_NAME_MAX];
	bool bracketed;

	memset(ov, 0, sizeof(*ov));
	ov->port = MX_DEFAULT_PORT;
	if (eq == NULL || (size_t)(eq - item) >= sizeof(ov->domain)) {
		set_err(err, errlen, "smtp_host_override: \"%s\" is not domain=address", item);
		return -1;
	}
	memcpy(ov->domain, item, (size_t)(eq - item));
	if (!mx_valid_domain(ov->domain) ||
	    name_normalize(ov->domain, sizeof(ov->domain), ov->domain) < 0) {
		set_err(err, errlen, "smtp_host_override: bad domain in \"%s\"", item);
		return -1;
	}
	if (split_host_port(eq + 1, host, sizeof(host), &port, &bracketed) < 0 ||
	    !addr_parse(host, &ov->addr) || (!bracketed && ov->addr.ss.ss_family != AF_INET) ||
	    (port != NULL && port_parse(port, &ov->port) < 0)) {
		set_err(err, errlen, "smtp_host_override: bad address in \"%s\" (want IPv4[:port] "
			"or [address][:port])", item);
		return -1;
	}
	set_port(&ov->addr, ov->port);
	return 0;
}

int mx_set_override(const char *spec, char *err, size_t errlen)
{
	static const char seps[] = ", \t\r\n";
	struct override parsed[MAX_OVERRIDES];
	size_t n = 0;

	for (const char *p = spec; *p != '\0';) {
		size_t len = strcspn(p, seps);
		char item[2 * MX_NAME_MAX];

		if (len == 0) {
			p++;
			continue;
		}
		if (len >= sizeof(item) || n == MAX_OVERRIDES) {
			set_err(err, errlen, "smtp_host_override: %s",
				n == MAX_OVERRIDES ? "too many items" : "item too long");
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (override_item(item, &parsed[n++], err, errlen) < 0)
			return -1;
		p += len;
	}
	memcpy(overrides, parsed, n * sizeof(parsed[0]));
	noverrides = n;
	return 0;
}

/* Fill out from the override list if it names domain; false if it does not. */
static bool override_find(const char *domain, struct mx_result *out)
{
	char name[MX_NAME_MAX];
	struct mx_host *h = &out->hosts[0];

	if (noverrides == 0 || name_normalize(name, sizeof(name), domain) < 0)
		return false;
	for (size_t i = 0; i < noverrides; i++) {
		if (strcasecmp(overrides[i].domain, name) != 0 || h->naddrs == MX_MAX_ADDRS)
			continue;
		if (h->naddrs == 0)
			out->port = overrides[i].port;
		h->addrs[h->naddrs++] = overrides[i].addr;
	}
	if (h->naddrs == 0)
		return false;
	memcpy(h->name, name, sizeof(name));
	out->nhosts = 1;
	out->overridden = true;
	out->status = MX_OK;
	return true;
}

/* ---- lookups -------------------------------------------------------------------------- */

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 4.1.3): that address, no DNS. */
static enum mx_status lookup_literal(const char *domain, struct mx_result *out, char *err,
				     size_t errlen)
{
	size_t len = strlen(domain), skip = strncasecmp(domain + 1, "IPv6:", 5) == 0 ? 6 : 1;
	struct mx_host *h = &out->hosts[0];
	char addr[INET6_ADDRSTRLEN + 8];
	bool v6 = skip == 6;

	/* domain is "[" + optional "IPv6:" + address + "]" */
	if (len < skip + 2 || domain[len - 1] != ']' || len - skip - 1 >= sizeof(addr))
		goto bad;
	memcpy(addr, domain + skip, len - skip - 1);
	addr[len - skip - 1] = '\0';
	if (!addr_parse(addr, &h->addrs[0]) || (h->addrs[0].ss.ss_family == AF_INET6) != v6)
		goto bad;
	h->naddrs = 1;
	if (str_copy(h->name, sizeof(h->name), domain) < 0)
		goto bad;
	out->nhosts = 1;
	out->literal = true;
	apply_port(out, out->port);
	return finish(out, MX_OK);
bad:
	set_err(err, errlen, "invalid domain literal %.80s", domain);
	return finish(out, MX_NOTFOUND);
}

/* No MX records: the domain itself is the host (RFC 5321 5.1). */
static enum mx_status lookup_implicit(const char *name, struct mx_result *out, char *err,
				      size_t errlen)
{
	struct mx_host *h = &out->hosts[0];
	enum mx_status st;

	memcpy(h->name, name, MX_NAME_MAX);
	st = resolve_host(h, false, out, err, errlen);
	if (st == MX_OK) {
		out->nhosts = 1;
		out->implicit_mx = true;
		apply_port(out, out->port);
	}
	return finish(out, st);
}

/* Addresses for each MX host in order; hosts without any are dropped. */
static enum mx_status resolve_mx_hosts(struct mx_answer *ans, struct mx_result *out, char *err,
				       size_t errlen)
{
	char host_err[512];
	bool temp = false;

	mx_sort_records(ans->mx, ans->nmx, thread_rng());
	for (size_t i = 0; i < ans->nmx && out->nhosts < MX_MAX_HOSTS; i++) {
		struct mx_host *h = &out->hosts[out->nhosts];
		enum mx_status st;

		memset(h, 0, sizeof(*h));
		memcpy(h->name, ans->mx[i].name, MX_NAME_MAX);
		h->pref = ans->mx[i].pref;
		st = resolve_host(h, true, out, host_err, sizeof(host_err));
		if (st == MX_OK) {
			out->nhosts++;
			continue;
		}
		if (!temp || st == MX_TEMPFAIL)
			set_err(err, errlen, "%s", host_err);	/* a temporary reason wins */
		temp = temp || st == MX_TEMPFAIL;
		add_warning(out, "MX host %s skipped: %s", h->name, host_err);
		memset(h, 0, sizeof(*h));
	}
	if (out->nhosts > 0) {
		if (err != NULL && errlen > 0)
			err[0] = '\0';
		apply_port(out, out->port);
		return finish(out, MX_OK);
	}
	return finish(out, temp ? MX_TEMPFAIL : MX_NOTFOUND);
}

/* Drop "." exchanges that come with other MX records (RFC 7505 says not to mix them). */
static void drop_null_exchanges(struct mx_answer *ans, struct mx_result *out)
{
	size_t kept = 0;

	for (size_t i = 0; i < ans->nmx; i++) {
		if (strcmp(ans->mx[i].name, ".") == 0)
			add_warning(out, "null MX mixed with other MX records: ignored");
		else
			ans->mx[kept++] = ans->mx[i];
	}
	ans->nmx = kept;
}

/* RFC 7505: one MX with exchange "." (we also accept several, all "."). */
static bool is_null_mx(const struct mx_answer *ans)
{
	for (size_t i = 0; i < ans->nmx; i++)
		if (strcmp(ans->mx[i].name, ".") != 0)
			return false;
	return ans->nmx > 0;
}

static enum mx_status lookup_mx(const char *name, struct mx_result *out, char *err,
				size_t errlen)
{
	struct mx_answer *ans = xmalloc(sizeof(*ans));
	enum qresult q = dns_query(name, ns_t_mx, ans, err, errlen);
	enum mx_status st;

	if (q == Q_OK && is_null_mx(ans)) {
		set_err(err, errlen, "Domain %s does not accept mail (nullMX)", name);
		st = finish(out, MX_NULLMX);
	} else if (q == Q_OK) {
		drop_null_exchanges(ans, out);
		st = resolve_mx_hosts(ans, out, err, errlen);
	} else if (q == Q_NODATA && ans->skipped) {
		set_err(err, errlen, "no usable MX host for %s (malformed MX records)", name);
		st = finish(out, MX_TEMPFAIL);
	} else if (q == Q_NODATA) {
		st = lookup_implicit(name, out, err, errlen);
	} else {
		st = finish(out, q == Q_NXDOMAIN ? MX_NOTFOUND : MX_TEMPFAIL);
	}
	if (ans->skipped && q == Q_OK)
		add_warning(out, "some MX records for %s were unusable or over the limit", name);
	free(ans);
	return st;
}

enum mx_status mx_lookup(const char *domain, struct mx_result *out, char *err, size_t errlen)
{
	char name[MX_NAME_MAX];

	result_init(out, err, errlen);
	if (domain[0] == '[')
		return lookup_literal(domain, out, err, errlen);
	if (override_find(domain, out))
		return MX_OK;
	if (!mx_valid_domain(domain) || name_normalize(name, sizeof(name), domain) < 0) {
		set_err(err, errlen, "invalid domain name syntax: %.80s", domain);
		return finish(out, MX_NOTFOUND);
	}
	return lookup_mx(name, out, err, errlen);
}

/* ---- relayhost ------------------------------------------------------------------------ */

int mx_parse_relayhost(const char *spec, struct mx_relayhost *out, char *err, size_t errlen)
{
	struct inet_addr a;
	const char *port;
	bool bracketed;

	memset(out, 0, sizeof(*out));
	out->port = MX_DEFAULT_PORT;
	if (split_host_port(spec, out->host, sizeof(out->host), &port, &bracketed) < 0 ||
	    (port != NULL && port_parse(port, &out->port) < 0)) {
		set_err(err, errlen,
			"relayhost: bad syntax \"%.80s\" (want [host]:port or host:port)", spec);
		return -1;
	}
	if (addr_parse(out->host, &a)) {
		out->mx_lookup = false;	/* an address has no MX: use it as it is */
		return 0;
	}
	if (!mx_valid_domain(out->host) ||
	    name_normalize(out->host, sizeof(out->host), out->host) < 0) {
		set_err(err, errlen, "relayhost: bad host name \"%.80s\"", out->host);
		return -1;
	}
	out->mx_lookup = !bracketed;
	return 0;
}

enum mx_status mx_lookup_relayhost(const struct mx_relayhost *rh, struct mx_result *out,
				   char *err, size_t errlen)
{
	struct mx_host *h = &out->hosts[0];
	enum mx_status st;

	if (rh->mx_lookup) {
		st = mx_lookup(rh->host, out, err, errlen);
	} else {
		result_init(out, err, errlen);
		if (override_find(rh->host, out))
			return MX_OK;
		memcpy(h->name, rh->host, MX_NAME_MAX);
		out->literal = addr_parse(rh->host, &h->addrs[0]);
		st = resolve_host(h, false, out, err, errlen);
		out->nhosts = st == MX_OK ? 1 : 0;
		st = finish(out, st);
	}
	if (st == MX_OK && !out->overridden)
		apply_port(out, rh->port);
	return st;
}
