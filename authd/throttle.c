/*
 * throttle.c: failed-login accounting. Failures are counted per client address and per
 * user within auth_failure_window. Every failed answer is delayed: auth_failure_delay,
 * doubling with each recent failure of that address or user, up to auth_failure_max_delay.
 * An address with auth_failure_limit failures is refused outright (TEMPFAIL) until its
 * failures age out. A user with that many failures is refused only to addresses that have
 * failed recently themselves, so an attacker cannot lock a user out of a clean network.
 * Main thread only; the table is bounded and forgets the oldest entries first.
 */
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "util.h"

#define THROTTLE_MAX 4096

struct fails {
	char key[ADDR_MAX + 8];	/* "a:" address or "u:" user */
	int count;
	int64_t last;
};

static struct fails table[THROTTLE_MAX];

static struct fails *find(const char *kind, const char *name, bool create)
{
	char key[sizeof(table[0].key)];
	struct fails *oldest = &table[0];
	int64_t now = mono_ms(), window = conf_time_ms(A.cfg, "auth_failure_window");

	if (str_fmt(key, sizeof(key), "%s:%s", kind, name) < 0)
		return NULL;
	for (size_t i = 0; i < THROTTLE_MAX; i++) {
		struct fails *f = &table[i];

		if (f->key[0] && now - f->last > window)
			f->key[0] = '\0';	/* aged out */
		if (f->key[0] && strcmp(f->key, key) == 0)
			return f;
		if (!f->key[0] || f->last < oldest->last)
			oldest = f;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	str_copy(oldest->key, sizeof(oldest->key), key);
	oldest->last = now;
	return oldest;
}

int64_t throttle_check(const char *rip, const char *user)
{
	long long limit = conf_int(A.cfg, "auth_failure_limit");
	struct fails *a = find("a", rip, false), *u = find("u", user, false);

	if (a && a->count >= limit)
		return -1;
	if (u && u->count >= limit && a && a->count > 0)
		return -1;
	return 0;
}

int64_t throttle_failure(const char *rip, const char *user)
{
	struct fails *a = find("a", rip, true), *u = find("u", user, true);
	int64_t delay = conf_time_ms(A.cfg, "auth_failure_delay");
	int64_t max = conf_time_ms(A.cfg, "auth_failure_max_delay");
	int n = 0;

	for (struct fails *f = a; f; f = (f == a ? u : NULL)) {
		f->count++;
		f->last = mono_ms();
		if (f->count > n)
			n = f->count;
	}
	for (int i = 1; i < n && delay < max; i++)
		delay *= 2;
	return delay < max ? delay : max;
}

void throttle_success(const char *rip, const char *user)
{
	struct fails *u = find("u", user, false);

	(void)rip;	/* an address's failures stand: one good password among many guesses */
	if (u)
		u->key[0] = '\0';
}
