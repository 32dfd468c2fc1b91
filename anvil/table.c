/*
 * table.c: postern-anvil's counts, a chained hash table keyed by service and client address.
 * It is bounded by construction: an entry exists only while a counted connection holds it,
 * and there are at most ANVIL_MAX_CLIENTS of those. The hash is seeded at start so a client
 * that picks its addresses cannot aim them all at one chain.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "anvil.h"
#include "log.h"
#include "util.h"

#define TABLE_SIZE	4096	/* a power of two; about one entry per bucket when full */

static struct anvil_entry *bucket[TABLE_SIZE];
static uint32_t seed;
static bool seeded;

static void seed_once(void)
{
	if (seeded)
		return;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	seeded = true;
}

/* FNV-1a over service, a separator and the address, mixed with the seed. */
static unsigned hash_pair(const char *service, const char *rip)
{
	uint32_t h = 2166136261u ^ seed;

	for (const char *p = service; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ 0xffu) * 16777619u;
	for (const char *p = rip; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static struct anvil_entry *find(unsigned h, const char *service, const char *rip)
{
	for (struct anvil_entry *e = bucket[h % TABLE_SIZE]; e; e = e->next)
		if (e->hash == h && strcmp(e->service, service) == 0 && strcmp(e->rip, rip) == 0)
			return e;
	return NULL;
}

struct anvil_entry *table_add(const char *service, const char *rip)
{
	unsigned h;
	struct anvil_entry *e;

	seed_once();
	h = hash_pair(service, rip);
	e = find(h, service, rip);
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->hash = h;
		if (str_copy(e->service, sizeof(e->service), service) < 0 ||
		    str_copy(e->rip, sizeof(e->rip), rip) < 0)
			msg_panic("table_add: unchecked key");
		e->next = bucket[h % TABLE_SIZE];
		bucket[h % TABLE_SIZE] = e;
		AV.nentries++;
	}
	e->count++;
	return e;
}

void table_drop(struct anvil_entry *e)
{
	struct anvil_entry **pp = &bucket[e->hash % TABLE_SIZE];

	if (--e->count > 0)
		return;
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp == NULL)
		msg_panic("table_drop: entry not in its chain");
	*pp = e->next;
	AV.nentries--;
	free(e);
}

bool anvil_valid_service(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= ANVIL_SERVICE_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_/-") == n;
}

/* Any printable address form (IPv4, IPv6 with a zone) but nothing that breaks a log line. */
bool anvil_valid_rip(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ANVIL_RIP_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}
