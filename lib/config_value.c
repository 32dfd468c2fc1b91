/*
 * config_value.c: turning an expanded postern.conf value into its typed form: integers,
 * booleans, times with units (kept in milliseconds), sizes with units (kept in bytes) and
 * lists. Every number is parsed by hand with overflow checks, so a huge value is reported as
 * out of range instead of wrapping or saturating silently.
 */
#include "config_priv.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct unit {
	const char *suffix;
	long long mult;
};

/* The first entry is the unit of a bare number. */
static const struct unit time_units[] = {
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60LL * 1000 }, { "h", 3600LL * 1000 },
	{ "d", 86400LL * 1000 }, { "w", 7 * 86400LL * 1000 }, { NULL, 0 },
};
static const struct unit size_units[] = {
	{ "", 1 }, { "k", 1024 }, { "m", 1024 * 1024 }, { "g", 1024 * 1024 * 1024 }, { NULL, 0 },
};

enum parsed { PARSED_OK, PARSED_JUNK, PARSED_RANGE };

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Leading decimal digits of *s; *overflow tells whether they fit in an unsigned long long. */
static bool parse_digits(const char **s, unsigned long long *v, bool *overflow)
{
	const char *p = *s;
	unsigned long long n = 0;

	*overflow = false;
	if (!is_digit(*p))
		return false;
	for (; is_digit(*p); p++)
		if (__builtin_mul_overflow(n, 10ULL, &n) ||
		    __builtin_add_overflow(n, (unsigned long long)(*p - '0'), &n))
			*overflow = true;
	*s = p;
	*v = n;
	return true;
}

/* A whole string "[-]digits". */
static enum parsed parse_int(const char *s, long long *out)
{
	bool neg = *s == '-', overflow;
	unsigned long long mag;
	const unsigned long long limit = (unsigned long long)LLONG_MAX + (neg ? 1 : 0);

	if (neg)
		s++;
	if (!parse_digits(&s, &mag, &overflow) || *s != '\0')
		return PARSED_JUNK;
	if (overflow || mag > limit)
		return PARSED_RANGE;
	if (neg)
		*out = mag == limit ? LLONG_MIN : -(long long)mag;
	else
		*out = (long long)mag;
	return PARSED_OK;
}

/* A whole string "digits[unit]", scaled by the unit's multiplier. */
static enum parsed parse_scaled(const char *s, const struct unit *units, long long *out)
{
	unsigned long long n;
	bool overflow;
	const struct unit *u;

	if (!parse_digits(&s, &n, &overflow))
		return PARSED_JUNK;
	for (u = units; u->suffix; u++)
		if (strcasecmp(s, u->suffix) == 0)
			break;
	if (u->suffix == NULL)
		return PARSED_JUNK;
	if (overflow || n > (unsigned long long)(LLONG_MAX / u->mult))
		return PARSED_RANGE;
	*out = (long long)n * u->mult;
	return PARSED_OK;
}

static enum parsed parse_bool(const char *s, long long *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return PARSED_OK;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return PARSED_OK;
		}
	}
	return PARSED_JUNK;
}

/* A limit in the units an administrator writes: 86400000 ms prints as "1d". */
static void format_amount(enum conf_type type, long long v, char *out, size_t outlen)
{
	const struct unit *units = type == CONF_TIME ? time_units : size_units;
	const struct unit *best = NULL, *u;

	if (type == CONF_TIME || type == CONF_SIZE)
		for (u = units + 1; u->suffix; u++)
			if (v != 0 && v % u->mult == 0 && (best == NULL || u->mult > best->mult))
				best = u;
	if (best && best->mult > 1)
		(void)str_fmt(out, outlen, "%lld%s", v / best->mult, best->suffix);
	else
		(void)str_fmt(out, outlen, "%lld%s", v, type == CONF_TIME ? "ms" : "");
}

static const char *expectation(enum conf_type type)
{
	switch (type) {
	case CONF_INT:
		return "an integer";
	case CONF_BOOL:
		return "yes or no";
	case CONF_TIME:
		return "a time like 30s, 5m";
	case CONF_SIZE:
		return "a size like 512k, 10m";
	case CONF_STR:
	case CONF_LIST:
		break;
	}
	return "a string";
}

/* Split on commas and white space; empty items are dropped. */
static void split_list(struct conf_val *v)
{
	static const char sep[] = ", \t\r\n\v\f";
	size_t n = 0;
	char *p;

	v->itembuf = xstrdup(v->str);
	for (p = v->itembuf + strspn(v->itembuf, sep); *p; p += strspn(p, sep)) {
		n++;
		p += strcspn(p, sep);
	}
	v->items = xcalloc(n + 1, sizeof(*v->items));
	v->nitems = 0;
	for (p = v->itembuf + strspn(v->itembuf, sep); *p; p += strspn(p, sep)) {
		v->items[v->nitems++] = p;
		p += strcspn(p, sep);
		if (*p)
			*p++ = '\0';
	}
}

int conf_value_parse(const struct conf_param *p, struct conf_val *v, const char *where,
		     conf_error_fn *err, void *arg)
{
	enum parsed r = PARSED_OK;
	char shown[96], lo[32], hi[32];

	switch (p->type) {
	case CONF_STR:
		return 0;
	case CONF_LIST:
		split_list(v);
		return 0;
	case CONF_BOOL:
		r = parse_bool(v->str, &v->num);
		break;
	case CONF_INT:
		r = parse_int(v->str, &v->num);
		break;
	case CONF_TIME:
		r = parse_scaled(v->str, time_units, &v->num);
		break;
	case CONF_SIZE:
		r = parse_scaled(v->str, size_units, &v->num);
		break;
	}
	if (r == PARSED_OK && p->type != CONF_BOOL && (v->num < p->min || v->num > p->max))
		r = PARSED_RANGE;
	conf_excerpt(v->str, shown, sizeof(shown));
	if (r == PARSED_JUNK) {
		conf_report(err, arg, "%s: bad value for '%s': '%s' (expected %s)", where, p->name,
			    shown, expectation(p->type));
		return -1;
	}
	if (r == PARSED_RANGE) {
		format_amount(p->type, p->min, lo, sizeof(lo));
		format_amount(p->type, p->max, hi, sizeof(hi));
		conf_report(err, arg, "%s: value of '%s' is out of range [%s..%s]: '%s'", where,
			    p->name, lo, hi, shown);
		return -1;
	}
	return 0;
}
