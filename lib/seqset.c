/*
 * seqset.c: IMAP sequence sets (RFC 3501 sequence-set) for command handlers: parsing
 * "1,3:5,7:*" into sorted disjoint ranges, membership, and printing a sorted list of
 * numbers compactly ("1:3,7") for responses such as COPYUID.
 */
#include <stdlib.h>
#include <string.h>

#include "imapcmd.h"
#include "util.h"

struct range {
	uint32_t lo, hi;
};

/* One seq-number at *pp: nz-number or "*" (= star). Leading zeros are tolerated. */
static int seq_number(const char **pp, uint32_t star, uint32_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (*p == '*') {
		*out = star;
		*pp = p + 1;
		return 0;
	}
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	if (v == 0)
		return -1;
	*out = (uint32_t)v;
	*pp = p;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Parse into tmp[]; returns the number of ranges or -1. */
static long parse_ranges(const char *s, uint32_t star, struct range *tmp)
{
	long n = 0;

	for (;;) {
		uint32_t a, b;

		if (seq_number(&s, star, &a) < 0)
			return -1;
		b = a;
		if (*s == ':') {
			s++;
			if (seq_number(&s, star, &b) < 0)
				return -1;
		}
		if (a > b) {
			uint32_t t = a;

			a = b;
			b = t;
		}
		if (a == 0)		/* only "*" in an empty mailbox gives 0: it names nothing */
			a = 1;
		if (a <= b)
			tmp[n++] = (struct range){ a, b };
		if (*s == '\0')
			return n;
		if (*s++ != ',')
			return -1;
	}
}

int seqset_parse(const char *s, uint32_t star, struct seqset *out)
{
	struct range *tmp;
	size_t max = 1, n = 0;
	long got;

	out->n = 0;
	if (s == NULL || *s == '\0')
		return -1;
	for (const char *p = s; *p; p++)
		max += *p == ',';
	tmp = xreallocarray(NULL, max, sizeof(*tmp));
	got = parse_ranges(s, star, tmp);
	if (got > 0)
		qsort(tmp, (size_t)got, sizeof(*tmp), range_cmp);
	for (long i = 0; i < got; i++) {
		if (n > 0 && (out->r[n - 1].hi == UINT32_MAX || tmp[i].lo <= out->r[n - 1].hi + 1)) {
			if (tmp[i].hi > out->r[n - 1].hi)
				out->r[n - 1].hi = tmp[i].hi;
			continue;
		}
		if (n == IMAPCMD_MAX_RANGES) {
			got = -1;
			break;
		}
		out->r[n].lo = tmp[i].lo;
		out->r[n].hi = tmp[i].hi;
		n++;
	}
	free(tmp);
	if (got < 0)
		return -1;
	out->n = n;
	return 0;
}

bool seqset_has(const struct seqset *s, uint32_t v)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v < s->r[mid].lo)
			hi = mid;
		else if (v > s->r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* Returns 0 (not a length: callers test == 0), -1 if it does not fit. Duplicates are
 * printed once; an unsorted input still gives a correct, if longer, set. */
int seqset_format(const uint32_t *sorted, size_t n, char *out, size_t outlen)
{
	size_t len = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (size_t i = 0; i < n;) {
		uint32_t lo = sorted[i], hi = lo;
		int w;

		while (++i < n && (sorted[i] == hi || (hi != UINT32_MAX && sorted[i] == hi + 1)))
			hi = sorted[i];
		if (lo == hi)
			w = str_fmt(out + len, outlen - len, "%s%u", len ? "," : "", lo);
		else
			w = str_fmt(out + len, outlen - len, "%s%u:%u", len ? "," : "", lo, hi);
		if (w < 0) {
			out[0] = '\0';
			return -1;
		}
		len += (size_t)w;
	}
	return 0;
}
