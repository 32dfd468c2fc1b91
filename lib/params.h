/*
 * params.h: support for the parameter table in params.c.
 */
#ifndef POSTERN_PARAMS_H
#define POSTERN_PARAMS_H

#include <stddef.h>

/* Value of a parameter whose declared default is NULL (computed from the host at load time).
 * Note: mydomain is computed from the host name, not from a configured myhostname; set both
 * when overriding. Returns -1 if name has no computed default. */
int params_computed_default(const char *name, char *out, size_t outlen);

#endif
