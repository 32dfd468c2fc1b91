/*
 * fuzz_mxlookup.c: libFuzzer target for the DNS answer parser (mx_parse_answer in
 * lib/mxlookup.c). Each input is parsed as an answer to MX, A and AAAA queries, with the
 * question taken from the packet and with a fixed name. Accepted answers must keep the
 * parser's promises: counts within limits, NUL-terminated names of at most 253 characters
 * that are host names (or "." for a null MX), addresses of the family asked for, and the
 * same result when parsed twice; sorting keeps preferences in order. Anything else aborts.
 * Build and run: `make fuzz-mxlookup`, `make fuzz-run`.
 */
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mxlookup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mx_answer first, second;	/* large: keep them off the stack */

static void check_name(const char *name)
{
	const char *nul = memchr(name, '\0', MX_NAME_MAX);

	if (nul == NULL || nul - name > 253 || (strcmp(name, ".") != 0 && !mx_valid_domain(name)))
		abort();
}

static void check_answer(const struct mx_answer *a, int qtype)
{
	if (a->nmx > MX_MAX_RECORDS || a->naddrs > MX_MAX_ADDRS || a->rcode < 0 || a->rcode > 15)
		abort();
	if (qtype != ns_t_mx && a->nmx != 0)
		abort();
	if (qtype == ns_t_mx && a->naddrs != 0)
		abort();
	for (size_t i = 0; i < a->nmx; i++) {
		check_name(a->mx[i].name);
		if (a->mx[i].pref > 0xffff)
			abort();
	}
	for (size_t i = 0; i < a->naddrs; i++) {
		int want = qtype == ns_t_a ? AF_INET : AF_INET6;
		socklen_t len = qtype == ns_t_a ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6);

		if (a->addrs[i].ss.ss_family != want || a->addrs[i].len != len)
			abort();
	}
}

static void check_sort(struct mx_answer *a, uint64_t seed)
{
	mx_sort_records(a->mx, a->nmx, &seed);
	for (size_t i = 1; i < a->nmx; i++)
		if (a->mx[i - 1].pref > a->mx[i].pref)
			abort();
}

static void run(const uint8_t *data, size_t size, const char *qname, int qtype)
{
	char err[16];	/* a small reason buffer must be safe too */
	int rc = mx_parse_answer(data, size, qname, qtype, &first, err, sizeof(err));
	int rc2 = mx_parse_answer(data, size, qname, qtype, &second, NULL, 0);

	if (rc != rc2 || memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	if (rc != 0)
		return;
	if (memcmp(&first, &second, sizeof(first)) != 0)
		abort();
	check_answer(&first, qtype);
	check_sort(&first, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = { ns_t_mx, ns_t_a, ns_t_aaaa };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		run(data, size, NULL, types[i]);
		run(data, size, "example.com", types[i]);
	}
	return 0;
}
