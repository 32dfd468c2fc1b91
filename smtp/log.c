/*
 * log.c: postern-smtp's own log lines, worded as Postfix's smtp(8) words them so log
 * watchers need no second set of patterns. The delivery lines (to=<...>, relay=...,
 * status=...) come from lib/deliverreq.c, shared with the other agents.
 */
#include "log.h"
#include "smtp.h"
#include "tls.h"

void log_host_failed(const char *qid, const char *relay, const char *why)
{
	(void)relay;	/* the reason names the host already, as Postfix's does */
	msg_info("%s: %s", qid, why);
}

void log_tls(const char *relay, SSL *ssl, bool verified)
{
	char desc[256];

	tls_describe(ssl, desc, sizeof(desc));
	msg_info("%s TLS connection established to %s: %s", verified ? "Verified" : "Anonymous",
		 relay, desc);
}
