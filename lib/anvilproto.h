/*
 * anvilproto.h: the protocol between smtpd (and later other pool services) and postern-anvil,
 * the connection counter (issue 4: smtpd_client_connection_count_limit), over
 * $spool_directory/private/anvil with lib/ipc.h frames. A pool process sees one client, so
 * the count of connections per client address lives in this one daemon.
 *
 * A connection is counted for as long as the client keeps its anvil socket open: the client
 * registers once at session start and closes the socket when the session ends. anvil forgets
 * a connection when its socket closes for any reason (session end, exit, crash, kill -9), so
 * a dead smtpd never leaks a count. One registration per socket: a second CONNECT on the same
 * socket replaces the first.
 *
 * Every reply carries the request's type and id; "reason" (string) comes with every PERMFAIL
 * and TEMPFAIL. A peer that is neither root nor mail_owner gets PERMFAIL "not allowed";
 * unknown request types and unknown, missing or malformed keys are PERMFAIL.
 *
 * ANVIL_REQ_CONNECT    who: smtpd (mail_owner), root
 *   in:  service (string: [a-z0-9_/-], 1..32 chars, e.g. "smtp"),
 *        rip (string: the client address as text, 1..63 printable chars, no space)
 *   out: OK count (int: connections from rip to service, this one included).
 *        TEMPFAIL reason: too many clients (anvil serves at most ANVIL_MAX_CLIENTS).
 * A client treats no answer within ANVIL_TIMEOUT_MS, a TEMPFAIL or an unreachable socket as
 * "no limit" (fail open): a missing anvil must never stop mail.
 */
#ifndef POSTERN_ANVILPROTO_H
#define POSTERN_ANVILPROTO_H

enum anvil_req {
	ANVIL_REQ_CONNECT = 30,
};

#define ANVIL_SOCKET		"private/anvil"	/* relative to spool_directory */
#define ANVIL_TIMEOUT_MS	200
#define ANVIL_MAX_CLIENTS	4096
#define ANVIL_SERVICE_MAX	32
#define ANVIL_RIP_MAX		63

#endif
