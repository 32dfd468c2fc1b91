/*
 * test_services.c: unit tests for lib/services.c against lib/params.c: every service_table
 * entry names parameters that exist in conf_params with the type master reads them as, pools
 * have listeners and a process limit, names and private sockets are unique and safe, kept
 * capabilities are real names and only on uid-0 services; and the parameter table itself is
 * sound: unique names, documented, sane ranges, and conf_defaults() yields a valid value of
 * the declared type for every parameter, including listeners that expand without clashes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/socket.h>

#include "config.h"
#include "inet.h"
#include "params.h"
#include "services.h"
#include "t.h"
#include "util.h"

/* The parameter exists and has the given type. */
static bool param_is(const char *name, enum conf_type type)
{
	const struct conf_param *p = name ? conf_param_find(name) : NULL;

	return p != NULL && p->type == type;
}

static void report(const struct service_def *d, const char *what)
{
	fprintf(stderr, "service %s: %s\n", d->name ? d->name : "(null)", what);
}

#define S_CHECK(d, cond)                                \
	do {                                            \
		if (!(cond))                            \
			report(d, #cond);               \
		T_CHECK(cond);                          \
	} while (0)

/* A name usable as an argument, a log tag and a file name: [a-z0-9-], not empty. */
static bool safe_name(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 32)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(s);
}

/* Every name in a comma list is a capability libcap knows. */
static bool caps_known(const char *list)
{
	char tmp[256], *save = NULL, *tok;
	int n = 0;

	if (str_copy(tmp, sizeof(tmp), list) < 0)
		return false;
	for (tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		cap_value_t c;

		if (cap_from_name(tok, &c) < 0)
			return false;
		n++;
	}
	return n > 0;
}

static void test_table_not_empty(void)
{
	T_CHECK(service_table_len > 0);
}

static void test_entry_parameters(void)
{
	for (size_t i = 0; i < service_table_len; i++) {
		const struct service_def *d = &service_table[i];

		S_CHECK(d, safe_name(d->name));
		S_CHECK(d, d->kind == SERVICE_POOL || d->kind == SERVICE_SINGLE);
		S_CHECK(d, d->root == ROOT_NONE || d->root == ROOT_SPOOL || d->root == ROOT_EMPTY);
		S_CHECK(d, d->command != NULL && *d->command && strchr(d->command, '/') == NULL);
		S_CHECK(d, d->args != NULL);
		S_CHECK(d, d->user_param != NULL);
		if (d->user_param && strcmp(d->user_param, "root") != 0)
			S_CHECK(d, param_is(d->user_param, CONF_STR));
		if (d->listen_param)
			S_CHECK(d, param_is(d->listen_param, CONF_LIST));
		if (d->limit_param)
			S_CHECK(d, param_is(d->limit_param, CONF_INT));
		if (d->enable_param)
			S_CHECK(d, param_is(d->enable_param, CONF_BOOL));
		if (d->socket_group_param)
			S_CHECK(d, param_is(d->socket_group_param, CONF_STR));
	}
}

static void test_kinds(void)
{
	for (size_t i = 0; i < service_table_len; i++) {
		const struct service_def *d = &service_table[i];

		if (d->kind == SERVICE_POOL) {
			/* a pool has a limit and something to accept on: inet listeners or, for
			 * the delivery agents, a private socket */
			S_CHECK(d, d->listen_param != NULL || d->private_socket != NULL);
			S_CHECK(d, d->limit_param != NULL);
		} else {
			/* a single daemon is one process: a limit would be ignored */
			S_CHECK(d, d->limit_param == NULL);
			/* and it must be reachable somehow */
			S_CHECK(d, d->listen_param != NULL || d->private_socket != NULL);
		}
	}
}

static void test_unique_names(void)
{
	for (size_t i = 0; i < service_table_len; i++)
		for (size_t j = i + 1; j < service_table_len; j++) {
			const struct service_def *a = &service_table[i], *b = &service_table[j];

			S_CHECK(b, strcmp(a->name, b->name) != 0);
			if (a->private_socket && b->private_socket)
				S_CHECK(b, strcmp(a->private_socket, b->private_socket) != 0);
			if (a->listen_param && b->listen_param)
				S_CHECK(b, strcmp(a->listen_param, b->listen_param) != 0);
			if (a->limit_param && b->limit_param)
				S_CHECK(b, strcmp(a->limit_param, b->limit_param) != 0);
		}
}

static void test_private_sockets(void)
{
	for (size_t i = 0; i < service_table_len; i++) {
		const struct service_def *d = &service_table[i];

		if (d->private_socket)
			S_CHECK(d, safe_name(d->private_socket));
		/* a socket group means nothing without a socket */
		if (d->socket_group_param)
			S_CHECK(d, d->private_socket != NULL);
	}
}

/* DESIGN.md §1: only a uid-0 service keeps capabilities, and then only a named few. */
static void test_capabilities(void)
{
	for (size_t i = 0; i < service_table_len; i++) {
		const struct service_def *d = &service_table[i];
		bool root = d->user_param && strcmp(d->user_param, "root") == 0;

		if (d->keep_caps) {
			S_CHECK(d, root);
			S_CHECK(d, caps_known(d->keep_caps));
			S_CHECK(d, strstr(d->keep_caps, "cap_sys_admin") == NULL);
		}
		if (root) {
			/* uid 0 with every capability is not a drop at all */
			S_CHECK(d, d->keep_caps != NULL && *d->keep_caps);
			/* and it never parses network input */
			S_CHECK(d, d->listen_param == NULL);
		}
	}
}

/* Parameters named like per-service ones belong to a service (no orphans). */
static void test_no_orphan_parameters(void)
{
	for (const struct conf_param *p = conf_params; p->name; p++) {
		size_t len = strlen(p->name);
		bool listen = len > 7 && strcmp(p->name + len - 7, "_listen") == 0;
		bool limit = len > 14 && strcmp(p->name + len - 14, "_process_limit") == 0 &&
			     strcmp(p->name, "default_process_limit") != 0;
		bool used = false;

		if (!listen && !limit)
			continue;
		for (size_t i = 0; i < service_table_len; i++) {
			const struct service_def *d = &service_table[i];
			const char *name = listen ? d->listen_param : d->limit_param;

			if (name && strcmp(name, p->name) == 0)
				used = true;
		}
		if (!used)
			fprintf(stderr, "parameter %s belongs to no service\n", p->name);
		T_CHECK(used);
	}
}

static void test_param_table(void)
{
	size_t n = 0;

	for (const struct conf_param *p = conf_params; p->name; p++, n++) {
		char tmp[256];

		T_CHECK(*p->name != '\0');
		T_CHECK(strspn(p->name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(p->name));
		T_CHECK(p->doc != NULL && *p->doc != '\0');
		T_CHECK(p->type >= CONF_STR && p->type <= CONF_LIST);
		T_CHECK(conf_param_find(p->name) == p);
		if (p->type == CONF_INT || p->type == CONF_TIME || p->type == CONF_SIZE)
			T_CHECK(p->min <= p->max);
		if (p->def == NULL && params_computed_default(p->name, tmp, sizeof(tmp)) != 0) {
			fprintf(stderr, "parameter %s has neither a default nor a computed one\n",
				p->name);
			T_CHECK(0);
		}
		for (const struct conf_param *q = p + 1; q->name; q++)
			if (strcmp(p->name, q->name) == 0) {
				fprintf(stderr, "parameter %s declared twice\n", p->name);
				T_CHECK(0);
			}
	}
	T_CHECK(n > 10);
	T_CHECK(conf_param_find("no_such_parameter") == NULL);
}

/* conf_defaults() loads, and each default reads back through the getter of its type. */
static void test_defaults_valid(void)
{
	struct config *c = conf_defaults();

	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	for (const struct conf_param *p = conf_params; p->name; p++) {
		long long v;
		size_t n = 99;
		const char *const *items;

		T_CHECK(!conf_is_set(c, p->name));
		switch (p->type) {
		case CONF_STR:
			T_CHECK(conf_str(c, p->name) != NULL);
			break;
		case CONF_INT:
			v = conf_int(c, p->name);
			T_CHECK(v >= p->min && v <= p->max);
			break;
		case CONF_BOOL:
			(void)conf_bool(c, p->name);
			break;
		case CONF_TIME:
			v = conf_time_ms(c, p->name);
			T_CHECK(v >= p->min && v <= p->max);
			break;
		case CONF_SIZE:
			v = conf_size(c, p->name);
			T_CHECK(v >= p->min && v <= p->max);
			break;
		case CONF_LIST:
			items = conf_list(c, p->name, &n);
			T_CHECK(n != 99);
			for (size_t i = 0; i < n; i++)
				T_CHECK(items[i] != NULL && *items[i] != '\0');
			break;
		}
	}
	/* What master reads for each service, the way it reads it. */
	for (size_t i = 0; i < service_table_len; i++) {
		const struct service_def *d = &service_table[i];

		if (d->user_param && strcmp(d->user_param, "root") != 0)
			S_CHECK(d, *conf_str(c, d->user_param) != '\0');
		if (d->socket_group_param)
			S_CHECK(d, *conf_str(c, d->socket_group_param) != '\0');
		if (d->limit_param)
			S_CHECK(d, conf_int(c, d->limit_param) >= 1);
		if (d->enable_param)
			(void)conf_bool(c, d->enable_param);
	}
	conf_free(c);
}

/* The default listeners expand under the default inet_interfaces, and no two services share
 * an address (master could not bind both). */
static void test_default_listeners(void)
{
	struct config *c = conf_defaults();
	char seen[256][64];
	size_t nseen = 0, nif;
	const char *const *ifs = conf_list(c, "inet_interfaces", &nif);

	for (size_t i = 0; i < service_table_len; i++) {
		const struct service_def *d = &service_table[i];
		const char *const *spec;
		size_t nspec;

		if (d->listen_param == NULL)
			continue;
		spec = conf_list(c, d->listen_param, &nspec);
		for (size_t s = 0; s < nspec; s++) {
			struct inet_addr a[INET_MAX_ADDRS];
			char err[256], desc[64];
			int n = inet_listen_expand(spec[s], ifs, nif, a, INET_MAX_ADDRS, err,
						   sizeof(err));

			if (n < 0)
				report(d, err);
			T_CHECK(n > 0);
			for (int j = 0; j < n; j++) {
				inet_format((struct sockaddr *)&a[j].ss, desc, sizeof(desc));
				for (size_t k = 0; k < nseen; k++)
					if (strcmp(seen[k], desc) == 0) {
						report(d, desc);
						T_CHECK(0);
					}
				if (nseen < ARRAY_LEN(seen))
					str_copy(seen[nseen++], sizeof(seen[0]), desc);
			}
		}
	}
	T_CHECK(nseen > 0);
	conf_free(c);
}

int main(void)
{
	T_RUN(test_table_not_empty);
	T_RUN(test_entry_parameters);
	T_RUN(test_kinds);
	T_RUN(test_unique_names);
	T_RUN(test_private_sockets);
	T_RUN(test_capabilities);
	T_RUN(test_no_orphan_parameters);
	T_RUN(test_param_table);
	T_RUN(test_defaults_valid);
	T_RUN(test_default_listeners);
	return T_DONE();
}
