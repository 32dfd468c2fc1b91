/*
 * headers.c: what postern-virtual needs from the message's header section, and the lines it
 * adds in front of it. Mail loops are caught as Postfix does: a message whose header already
 * says "Delivered-To: rcpt" has been here before. Only the first VIRTUAL_HEADER_MAX bytes
 * are searched (a loop adds its Delivered-To at the top, so it is always within them). The
 * reading and the search are lib/msgheaders.c, shared with postern-local.
 */
#include <string.h>

#include "msgheaders.h"
#include "util.h"
#include "virtual.h"

int headers_read(struct vreq *r)
{
	const struct deliver_request *q = &r->req;

	r->headers = NULL;
	return msgheaders_read(q->fd, q->msg_off, q->msg_len, VIRTUAL_HEADER_MAX, &r->headers,
			       &r->headers_len);
}

bool headers_delivered_to(const struct vreq *r, const char *addr)
{
	return msgheaders_delivered_to(r->headers, r->headers_len, addr);
}

int headers_prepend(const char *sender, const char *rcpt, char *out, size_t outsize)
{
	if (str_fmt(out, outsize, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", sender, rcpt) < 0)
		return -1;
	return (int)strlen(out);
}
