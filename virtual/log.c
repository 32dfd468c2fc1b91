/*
 * log.c: the delivery line in Postfix's format, which pflogsumm and log watchers read:
 *   QID: to=<rcpt>, orig_to=<orig>, relay=virtual, delay=0.04, delays=0.01/0/0/0.03,
 *   dsn=2.0.0, status=sent (delivered to maildir)
 * delays= splits the delay as Postfix does: before qmgr took the message (arrival ->
 * active), inside qmgr (active -> our request), connection set-up (none here: 0), and the
 * delivery itself.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "queuefile.h"
#include "util.h"
#include "virtual.h"

/* Seconds as Postfix prints them: "0" for nothing, two decimals below 10 s without
 * trailing zeros ("0.04", "1.5"), one below 100 s, whole seconds above. */
static void fmt_secs(char *out, size_t outsize, int64_t ms)
{
	double s = ms > 0 ? (double)ms / 1000.0 : 0.0;
	size_t len;

	(void)snprintf(out, outsize, s < 10 ? "%.2f" : s < 100 ? "%.1f" : "%.0f", s);
	len = strlen(out);
	if (strchr(out, '.') != NULL) {
		while (len > 0 && out[len - 1] == '0')
			out[--len] = '\0';
		if (len > 0 && out[len - 1] == '.')
			out[--len] = '\0';
	}
}

static const char *status_of(int code)
{
	return code < 400 ? "sent" : code < 500 ? "deferred" : "bounced";
}

void log_delivery(const struct vreq *r, const struct vrcpt *rc)
{
	char total[16], a[16], b[16], d[16], orig[600];
	int64_t now = wall_ms();

	fmt_secs(total, sizeof(total), now - r->arrival);
	fmt_secs(a, sizeof(a), r->active - r->arrival);
	fmt_secs(b, sizeof(b), r->received - r->active);
	fmt_secs(d, sizeof(d), now - r->received);
	orig[0] = '\0';
	if (rc->orig[0] != '\0')
		(void)str_fmt(orig, sizeof(orig), " orig_to=<%s>,", rc->orig);
	msg_info("%s: to=<%s>,%s relay=virtual, delay=%s, delays=%s/%s/0/%s, dsn=%s, "
		 "status=%s (%s)", r->qid, rc->rcpt, orig, total, a, b, d, rc->dsn,
		 status_of(rc->code), rc->text);
}
