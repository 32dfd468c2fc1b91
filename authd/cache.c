/*
 * cache.c: authd's lookup cache: positive answers for authd_cache_ttl, negative ones
 * (unknown user, not our domain) for authd_negative_cache_ttl; temporary failures are never
 * cached. A chained hash table bounded by authd_cache_size; when it is full it is emptied,
 * which costs a burst of queries and nothing else. Main thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "util.h"

struct entry {
	int type;
	char *key;
	int64_t expires;
	struct lookup res;
	struct entry *next;
};

static struct {
	struct entry **bucket;
	size_t nbuckets, count, max;
	int64_t ttl, negative_ttl;	/* read once: getters search the parameter table */
} C;

static uint64_t hash(int type, const char *key)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)type;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

static void entry_free(struct entry *e)
{
	lookup_free(&e->res);
	free(e->key);
	free(e);
}

static void cache_clear(void)
{
	for (size_t i = 0; i < C.nbuckets; i++) {
		struct entry *e = C.bucket[i], *next;

		for (; e; e = next) {
			next = e->next;
			entry_free(e);
		}
		C.bucket[i] = NULL;
	}
	C.count = 0;
}

void cache_init(size_t max)
{
	cache_clear();
	free(C.bucket);
	C.max = max;
	C.ttl = conf_time_ms(A.cfg, "authd_cache_ttl");
	C.negative_ttl = conf_time_ms(A.cfg, "authd_negative_cache_ttl");
	C.nbuckets = 1024;
	while (C.nbuckets < max && C.nbuckets < (1u << 22))
		C.nbuckets <<= 1;
	C.bucket = xcalloc(C.nbuckets, sizeof(*C.bucket));
}

static struct entry **slot(int type, const char *key)
{
	struct entry **pp = &C.bucket[hash(type, key) & (C.nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->type == type && strcmp((*pp)->key, key) == 0)
			break;
	return pp;
}

const struct lookup *cache_get(int type, const char *key)
{
	struct entry **pp, *e;

	if (C.max == 0)
		return NULL;
	pp = slot(type, key);
	e = *pp;
	if (e == NULL)
		return NULL;
	if (e->expires <= ev_now(A.loop)) {
		*pp = e->next;
		entry_free(e);
		C.count--;
		return NULL;
	}
	return &e->res;
}

void cache_put(int type, const char *key, const struct lookup *res)
{
	int64_t ttl = res->status == IPC_OK ? C.ttl : C.negative_ttl;
	struct entry **pp, *e;

	if (C.max == 0 || ttl == 0 || res->status == IPC_TEMPFAIL)
		return;
	if (C.count >= C.max)
		cache_clear();
	pp = slot(type, key);
	if (*pp) {
		e = *pp;
		lookup_free(&e->res);
	} else {
		e = xcalloc(1, sizeof(*e));
		e->type = type;
		e->key = xstrdup(key);
		*pp = e;
		C.count++;
	}
	lookup_copy(&e->res, res);
	e->expires = ev_now(A.loop) + ttl;
}
