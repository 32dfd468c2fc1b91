/*
 * deliver.c: one DELIVER request for postern-smtp. The destination is the request's
 * nexthop when qmgr gives one (a transport_map override), else the relayhost when one is
 * set, else the recipients' domain (qmgr groups recipients by domain; by MX they must share
 * one). "[host]:port" means that host's addresses, no MX lookup; "host:port", "host" or a
 * domain means its mail exchangers (lib/mxlookup.h). A connection still open from the
 * previous request to the same destination is tried first (client.c); then the hosts in
 * order, each host's addresses in turn, until one conversation settles every recipient;
 * when none does, everybody still open is deferred with the last host's reason (Postfix's
 * wording, so logs and bounces read alike).
 */
#include <ctype.h>
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

/* Where the request goes and with which credential. False when it cannot go anywhere:
 * recipients of several domains by MX (r->nrcpt set to 0: a malformed request), or
 * credentials that may be needed but cannot be read (everybody deferred). */
static bool destination(struct deliver_request *r, struct smtp_dest *d)
{
	memset(d, 0, sizeof(*d));
	d->via = r->nexthop[0] != '\0' ? r->nexthop : S.relayhost;
	if (d->via[0] == '\0') {
		const char *dom = domain_of(r->rcpt[0].rcpt);
		size_t n;

		if (!one_domain(r)) {
			msg_warn("%s: request with recipients of more than one domain", r->qid);
			r->nrcpt = 0;
			return false;
		}
		(void)str_fmt(d->key, sizeof(d->key), "mx:%s", dom);
		for (n = 3; d->key[n] != '\0'; n++)
			d->key[n] = (char)tolower((unsigned char)d->key[n]);
		return true;
	}
	(void)str_fmt(d->key, sizeof(d->key), "via:%s", d->via);
	if (sasl_lookup(d->via, &d->cred) == SASL_UNUSABLE) {
		char text[DELIVER_TEXT_MAX];

		(void)str_fmt(text, sizeof(text), "smtp_sasl_password_file %s cannot be used (see "
			       "the warning in the log): delivery to %s deferred", sasl_path(),
			       d->via);
		settle_rest(r, 451, "4.3.5", text, "none");
		return false;
	}
	return true;
}

/* Where the mail goes; false with every recipient settled when it cannot be found. */
static bool lookup(const struct smtp_dest *d, struct mx_result *mx, struct deliver_request *r)
{
	const char *domain = domain_of(r->rcpt[0].rcpt);
	char err[512];
	enum mx_status st;

	if (d->via[0] != '\0') {
		struct mx_relayhost rh;

		if (mx_parse_relayhost(d->via, &rh, err, sizeof(err)) < 0) {
			char text[DELIVER_TEXT_MAX];

			msg_warn("%s: bad nexthop \"%s\": %s", r->qid, d->via, err);
			(void)str_fmt(text, sizeof(text), "bad nexthop \"%s\" (want [host]:port, "
				       "host:port, host or a domain)", d->via);
			settle_rest(r, 451, "4.3.5", text, "none");
			return false;
		}
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
	struct smtp_dest d;

	if (!destination(r, &d)) {
		client_cache_close();
		return;
	}
	if (client_reuse(r, &d, &fail) == SMTP_DONE && all_settled(r))
		return;
	memset(&mx, 0, sizeof(mx));
	if (!lookup(&d, &mx, r))
		return;
	for (size_t h = 0; h < mx.nhosts && !all_settled(r); h++)
		for (size_t a = 0; a < mx.hosts[h].naddrs && !all_settled(r); a++)
			if (client_deliver(r, &d, mx.hosts[h].name, &mx.hosts[h].addrs[a],
					   &fail) == SMTP_DONE)
				break;
	settle_rest(r, fail.code, fail.dsn, fail.text, fail.relay);
}
