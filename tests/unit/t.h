/*
 * t.h: the unit-test harness: a handful of assertion macros and a runner. A test file
 * defines test functions and a main() that calls T_RUN on each and returns T_DONE().
 */
#ifndef POSTERN_T_H
#define POSTERN_T_H

#include <stdio.h>
#include <string.h>

static int t_failures, t_checks;

#define T_CHECK(cond)                                                                   \
	do {                                                                            \
		t_checks++;                                                             \
		if (!(cond)) {                                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			t_failures++;                                                   \
		}                                                                       \
	} while (0)

#define T_EQ_INT(a, b)                                                                  \
	do {                                                                            \
		long long t_a = (long long)(a), t_b = (long long)(b);                   \
		t_checks++;                                                             \
		if (t_a != t_b) {                                                       \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__,      \
				__LINE__, #a, t_a, t_b);                                \
			t_failures++;                                                   \
		}                                                                       \
	} while (0)

#define T_EQ_STR(a, b)                                                                  \
	do {                                                                            \
		const char *t_a = (a), *t_b = (b);                                      \
		t_checks++;                                                             \
		if (t_a == NULL || t_b == NULL || strcmp(t_a, t_b) != 0) {              \
			fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,  \
				__LINE__, #a, t_a ? t_a : "(null)", t_b ? t_b : "(null)");  \
			t_failures++;                                                   \
		}                                                                       \
	} while (0)

#define T_RUN(fn)                                                                       \
	do {                                                                            \
		int t_before = t_failures;                                              \
		fn();                                                                   \
		fprintf(stderr, "%-40s %s\n", #fn, t_failures == t_before ? "ok" : "FAILED"); \
	} while (0)

#define T_DONE() (fprintf(stderr, "%d checks, %d failures\n", t_checks, t_failures), \
		  t_failures ? 1 : 0)

#endif
