/*
 * reply.c: every SMTP reply goes out through here, so error counting (for
 * smtpd_soft_error_limit / smtpd_hard_error_limit) and the soft-limit delay happen in one
 * place. Replies are buffered; the session loop flushes when the client's pipelined input
 * is used up (RFC 2920) or before it blocks for more.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "smtpd.h"
#include "log.h"
#include "util.h"

/* "452 4.5.3 Error: too many recipients" is not counted: like Postfix's recipient overshoot,
 * a client that sends too many recipients keeps its session (the rest of its message goes
 * out in a later transaction). */
static bool counts_as_error(int code, const char *enh)
{
	if (code < 400 || code == 421)
		return false;
	return !(code == 452 && strcmp(enh, "4.5.3") == 0);
}

static void error_delay(struct session *ss)
{
	struct timespec ts;

	if (ss->errors <= ss->cf->soft_errors || ss->cf->error_sleep_ms <= 0)
		return;
	/* Flush what is pending first, so the delay only slows the erring client. */
	(void)stream_flush(ss->s);
	ts.tv_sec = ss->cf->error_sleep_ms / 1000;
	ts.tv_nsec = (long)(ss->cf->error_sleep_ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void reply_raw(struct session *ss, const char *line)
{
	(void)stream_puts(ss->s, line);
	(void)stream_puts(ss->s, "\r\n");
}

void reply(struct session *ss, int code, const char *enh, const char *fmt, ...)
{
	char text[600];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		str_copy(text, sizeof(text), "Error");
	va_end(ap);
	if (counts_as_error(code, enh)) {
		ss->errors++;
		error_delay(ss);
	}
	(void)stream_printf(ss->s, "%d %s %s\r\n", code, enh, text);
}

void reply_parse_error(struct session *ss, const struct smtp_reply *r)
{
	reply(ss, r->code, r->enh, "%s", r->text);
}

int reply_flush(struct session *ss)
{
	return stream_flush(ss->s);
}
