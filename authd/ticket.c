/*
 * ticket.c: one-time login tickets. A login process that authenticated a user gets a ticket;
 * master redeems it (once, within auth_ticket_ttl) for the user's uid, gid and home before it
 * starts the session. A compromised login process can therefore only open sessions for
 * users whose passwords it was actually given. Tickets are 128 random bits; at most
 * TICKET_MAX are outstanding, the oldest is dropped first. Main thread only.
 */
#include <string.h>
#include <sys/random.h>

#include "authd.h"
#include "log.h"
#include "passwd.h"
#include "util.h"

#define TICKET_MAX 1024

struct ticket {
	char id[33];
	int64_t expires;
	struct lookup user;
	bool used;
};

static struct ticket tickets[TICKET_MAX];
static size_t next_slot;

void ticket_issue(const struct lookup *user, char *out, size_t outlen)
{
	struct ticket *t = &tickets[next_slot];
	unsigned char rnd[16];
	static const char hex[] = "0123456789abcdef";

	next_slot = (next_slot + 1) % TICKET_MAX;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		msg_fatal("getrandom: %m");
	if (t->id[0])
		lookup_free(&t->user);
	for (size_t i = 0; i < sizeof(rnd); i++) {
		t->id[2 * i] = hex[rnd[i] >> 4];
		t->id[2 * i + 1] = hex[rnd[i] & 15];
	}
	t->id[32] = '\0';
	t->used = false;
	t->expires = mono_ms() + conf_time_ms(A.cfg, "auth_ticket_ttl");
	lookup_copy(&t->user, user);
	str_copy(out, outlen, t->id);
}

bool ticket_redeem(const char *id, struct lookup *out)
{
	size_t len = strlen(id);

	if (len != 32)
		return false;
	for (size_t i = 0; i < TICKET_MAX; i++) {
		struct ticket *t = &tickets[i];

		if (!t->id[0] || t->used || !passwd_ct_equal(t->id, 32, id, len))
			continue;
		t->used = true;
		if (t->expires < mono_ms())
			return false;
		lookup_copy(out, &t->user);
		return true;
	}
	return false;
}
