/*
 * proxy.h: the byte pump between a login process's client (a stream, in the clear or over
 * TLS) and the mail session behind it (the login's end of a socketpair). Both directions
 * move independently, without blocking one on the other, so neither a client that stops
 * reading nor one that stops writing can wedge the session's other direction; each has a
 * bounded buffer, and a full buffer only stops reading from the side that fills it.
 *
 * The pump runs until either side closes or fails. What was already read from the closing
 * side is still delivered to the other (the session's "* BYE" and tagged LOGOUT answer,
 * a client's last command), within PROXY_DRAIN_MS. It has no idle timeout of its own: the
 * session has one (RFC 3501 §5.4) and closes, which ends the pump.
 */
#ifndef POSTERN_PROXY_H
#define POSTERN_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include "stream.h"

#define PROXY_BUF_SIZE	16384
#define PROXY_DRAIN_MS	5000

enum proxy_end {
	PROXY_CLIENT_CLOSED,	/* the client closed (or reset) its connection */
	PROXY_SESSION_CLOSED,	/* the session closed its socket */
	PROXY_CLIENT_ERROR,	/* TLS or socket error on the client side */
	PROXY_SESSION_ERROR,
};

struct proxy_stats {
	uint64_t client_bytes;		/* client -> session */
	uint64_t session_bytes;		/* session -> client */
	enum proxy_end end;
};

/* Pump until one side closes. The stream's buffered input, if any, is forwarded first; the
 * stream's descriptor and session_fd are made non-blocking. Neither is closed. */
void proxy_run(struct stream *client, int session_fd, struct proxy_stats *st);

#endif
