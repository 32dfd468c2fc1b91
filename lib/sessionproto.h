/*
 * sessionproto.h: how a login process (imap-login, pop3-login) gets a mail session started
 * (DESIGN.md §1 login/session split; issues 6 and 7), over $spool_directory/private/session
 * (owned by root, mode 0660, group mail_owner) with lib/ipc.h frames. master serves it.
 *
 * SESSION_REQ_START    who: mail_owner (the login processes)
 *   in:  one descriptor: the login's end of a socketpair (AF_UNIX, SOCK_STREAM) that becomes
 *        the session's client connection (the login proxies the real client, TLS or not);
 *        ticket (from authd's AUTH reply with ticket=1), service ("imap" | "pop3"),
 *        rip, lip (client and local address, for the session's log lines), rport, lport
 *        (ints), tls (int 0/1), tag (IMAP: the tag of the LOGIN/AUTHENTICATE command, whose
 *        tagged OK the session writes as its first output; POP3: ""), method (PLAIN, LOGIN,
 *        ... for the log).
 *        Without TLS there is nothing to proxy, so the login hands over the client itself:
 *        the descriptor is then the client's TCP socket, with direct (int 1) and fail (the
 *        complete reply, CRLF included, that master's child writes to the client if it
 *        refuses the session), and optionally a second descriptor: a pipe holding what the
 *        client already sent after its login command (the session reads it first; -P FD).
 *   out: OK pid (int): a child of master is redeeming the ticket and starting the session.
 *        PERMFAIL reason: the request is malformed, the service unknown. TEMPFAIL reason.
 *
 * The session side: master's child (root) redeems the ticket with authd (AUTH_REQ_TICKET),
 * re-checks the answer (home absolute, inside virtual_mailbox_base, no "..", uid not below
 * minimum_uid unless it is vmail_owner's) and execs the session program (postern-imap or
 * postern-pop3) as root with the socket as fd 0 and the arguments
 *     -c CONF -s SERVICE -U USER -u UID -g GID -H HOME -M MAIL -q QUOTA -r RIP -l LIP
 *     -t TAG -T (when TLS) -m METHOD [-P FD]
 * The session chroots into HOME and drops to UID:GID with no capability before it reads a
 * byte from the client (session_enter, lib/privsep.h), then writes its first response
 * (IMAP: "TAG OK [CAPABILITY ...] Logged in"; POP3: "+OK Logged in."). If the ticket or the
 * account is refused, the socket is closed without a byte: the login process answers the
 * client as for a temporary failure (IMAP "NO [UNAVAILABLE]", POP3 "-ERR [SYS/TEMP]").
 */
#ifndef POSTERN_SESSIONPROTO_H
#define POSTERN_SESSIONPROTO_H

enum session_req {
	SESSION_REQ_START = 60,
};

#define SESSION_SOCKET		"private/session"	/* relative to spool_directory */
#define SESSION_TIMEOUT_MS	10000
#define SESSION_TAG_MAX		64

#endif
