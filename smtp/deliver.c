/*
 * deliver.c: one DELIVER request for postern-smtp. qmgr groups recipients by domain, so a
 * request has one destination: the relayhost when one is set, else the domain's mail
 * exchangers (lib/mxlookup.h). Hosts are tried in order, each host's addresses in turn,
 * until one conversation settles every recipient; when none does, everybody still open is
 * deferred with the last host's reason (Postfix's wording, so logs and bounces read alike).
 */
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtp.h"
#include "util.h"

/* The domain of an address (after its last '@'); "" if it has none. */
static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

static bool one_domain(const struct deliver_request *r)
{
	const char *d = domain_of(r->rcpt[0].rcpt);

	for (size_t i = 1; i < r->nrcpt; i++)
		if (strcasecmp(d, domain_of(r->rcpt[i].rcpt)) != 0)
			return false;
	return true;
}

/* Every recipient without a result gets this one. */
static void settle_rest(struct deliver_request *r, int code, const char *dsn, const char *text,
			const char *relay)
{
	for (size_t i = 0; i < r->nrcpt; i++) {
		struct deliver_rcpt *rc = &r->rcpt[i];

		if (rc->code != 0)
			continue;
		deliver_result(rc, code, dsn, "%s", text);
		(void)str_copy(rc->relay, sizeof(rc->relay), relay);
	}
}

/* Where the mail goes; false with every recipient settled when it cannot be found. */
static bool lookup(const char *domain, struct mx_result *mx, struct deliver_request *r)
{
	char err[512];
	enum mx_status st;

	if (S.relayhost[0] != '\0') {
		struct mx_relayhost rh;

		if (mx_parse_relayhost(S.relayhost, &rh, err, sizeof(err)) < 0)
			st = MX_TEMPFAIL;	/* checked at start-up; cannot happen */
		else
			st = mx_lookup_relayhost(&rh, mx, err, sizeof(err));
	} else if (domain[0] == '\0') {
		(void)str_copy(err, sizeof(err), "recipient address has no domain");
		st = MX_NOTFOUND;
	} else {
		st = mx_lookup(domain, mx, err, sizeof(err));
	}
	if (st != MX_OK && mx->warning[0] != '\0')
		msg_warn("%s: %s", r->qid, mx->warning);
	switch (st) {
	case MX_OK:
		return true;
	case MX_NULLMX:
		settle_rest(r, 556, "5.1.10", err, "none");
		return false;
	case MX_NOTFOUND:
		settle_rest(r, 550, "5.1.2", err, "none");
		return false;
	case MX_TEMPFAIL:
	default:
		settle_rest(r, 451, "4.4.3", err, "none");
		return false;
	}
}

static bool all_settled(const struct deliver_request *r)
{
	for (size_t i = 0; i < r->nrcpt; i++)
		if (r->rcpt[i].code == 0)
			return false;
	return true;
}

void deliver_request(struct deliver_request *r)
{
	static struct mx_result mx;	/* ~30 KB: not on the stack */
	struct smtp_failure fail = { .code = 451, .dsn = "4.4.1",
				     .text = "no mail exchanger could be reached",
				     .relay = "none" };

	if (!one_domain(r)) {
		msg_warn("%s: request with recipients of more than one domain", r->qid);
		r->nrcpt = 0;
		return;
	}
	memset(&mx, 0, sizeof(mx));
	if (!lookup(domain_of(r->rcpt[0].rcpt), &mx, r))
		return;
	for (size_t h = 0; h < mx.nhosts && !all_settled(r); h++)
		for (size_t a = 0; a < mx.hosts[h].naddrs && !all_settled(r); a++)
			if (client_deliver(r, mx.hosts[h].name, &mx.hosts[h].addrs[a], &fail) ==
			    SMTP_DONE)
				break;
	settle_rest(r, fail.code, fail.dsn, fail.text, fail.relay);
}
