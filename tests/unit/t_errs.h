/*
 * t_errs.h: a conf_error_fn for tests that collects reported problems so a test can assert
 * on how many there were and what they said.
 */
#ifndef POSTERN_T_ERRS_H
#define POSTERN_T_ERRS_H

#include "util.h"

#define MAX_ERRS 40

struct errs {
	int n;
	char msg[MAX_ERRS][1024];
};

static void collect(const char *msg, void *arg)
{
	struct errs *e = arg;

	if (e->n < MAX_ERRS)
		str_copy(e->msg[e->n], sizeof(e->msg[0]), msg);
	e->n++;
}

#endif
