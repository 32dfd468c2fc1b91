/*
 * received.c: the Received: header smtpd puts first in every message (RFC 5321 4.4), with
 * the protocol keyword of RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA; SMTP after HELO), the TLS
 * parameters, and "for <rcpt>" when there is exactly one recipient (as Postfix does, so a
 * message to many does not reveal the others). The login name appears only with
 * smtpd_sasl_authenticated_header = yes.
 */
#include <stdio.h>
#include <time.h>

#include "smtpd.h"
#include "buf.h"
#include "util.h"

static const char *protocol(const struct session *ss)
{
	bool a = ss->auth_user[0] != '\0';

	if (!ss->esmtp)
		return "SMTP";
	if (ss->tls)
		return a ? "ESMTPSA" : "ESMTPS";
	return a ? "ESMTPA" : "ESMTP";
}

/* RFC 5322 date-time: "Sat, 22 Nov 2025 19:21:19 +0000 (UTC)". */
static void rfc5322_date(char *out, size_t outlen)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	if (strftime(out, outlen, "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
		(void)str_copy(out, outlen, "Thu, 01 Jan 1970 00:00:00 +0000");
}

int received_header(const struct session *ss, char *out, size_t outlen)
{
	struct buf b;
	char date[64];
	int r;

	buf_init(&b, outlen - 1);
	rfc5322_date(date, sizeof(date));
	(void)buf_printf(&b, "Received: from %s (%s [%s])\r\n", ss->helo[0] ? ss->helo : ss->name,
			 ss->name, ss->addr);
	(void)buf_printf(&b, "\tby %s (Postern) with %s id %s", ss->cf->myhostname, protocol(ss),
			 ss->txn.qid);
	if (ss->tls)
		(void)buf_printf(&b, "\r\n\t(using %s)", ss->tls_desc);
	if (ss->auth_user[0] && ss->cf->auth_header)
		(void)buf_printf(&b, "\r\n\t(Authenticated sender: %s)", ss->auth_user);
	if (ss->txn.nrcpt == 1)
		(void)buf_printf(&b, "\r\n\tfor <%s>", ss->txn.rcpt[0].addr);
	r = buf_printf(&b, "; %s\r\n", date);
	if (r == 0)
		r = str_copy(out, outlen, buf_cstr(&b));
	buf_free(&b);
	return r;
}
