/*
 * authproto.h: the authd protocol (DESIGN.md §3, §6; issue 3). One socket,
 * $spool_directory/private/auth, carries every request type; authd checks the peer's
 * SO_PEERCRED uid against an allow-list per type. Frames are lib/ipc.h frames; every reply
 * has the request's type and id and a status: OK, PERMFAIL (with "reason") or TEMPFAIL
 * (with "reason"; the database is unreachable, the peer is rate-limited, ...). A caller
 * that gets no answer in time treats it as TEMPFAIL.
 *
 * Attribute names (all strings unless marked int/bytes):
 *
 * AUTH_REQ_AUTH          who: smtpd, imap-login, pop3-login (mail_owner), root
 *   in:  service (smtp|submission|imap|pop3|...), mech (PLAIN|LOGIN|CRAM-MD5), rip (client address),
 *        for PLAIN: resp (bytes: the decoded SASL response authzid NUL authcid NUL passwd);
 *        for LOGIN: user, pass;
 *        for CRAM-MD5: user, challenge (as sent to the client), response (hex digest);
 *        only users whose stored password is clear text ({PLAIN}) can use it, as in
 *        Dovecot; login processes offer it only when auth_cram_md5 = yes;
 *        ticket (int, 1 = a login process wants a one-time session ticket)
 *   out: OK user (canonical login name) [ticket]; PERMFAIL reason "authentication failed"
 *        (the same for unknown user and wrong password); TEMPFAIL reason.
 *        Failures are answered after a delay that grows per client address and per user.
 * AUTH_REQ_TICKET        who: root (master)
 *   in:  ticket
 *   out: OK user, home, mail (mail location, e.g. "~/Maildir"), uid (int), gid (int),
 *        quota (int, bytes, 0 = none); PERMFAIL for an unknown, used or expired ticket.
 * AUTH_REQ_USER          who: delivery agents (vmail_owner, queue_owner), root
 *   in:  address
 *   out: OK user, home, mail, uid, gid, quota; PERMFAIL "unknown user"; TEMPFAIL.
 * AUTH_REQ_RCPT          who: smtpd (mail_owner), qmgr (queue_owner), root
 *   in:  address
 *   out: OK kind = "virtual" (user = the mailbox's canonical address)
 *                | "alias"   (targets = bytes: addresses separated by NUL)
 *                | "local"   (user = the system user name; domain in mydestination)
 *                | "remote"  (the domain is not ours: relaying is the caller's decision);
 *        PERMFAIL reason "unknown user" (our domain, no such address); TEMPFAIL.
 * AUTH_REQ_SENDER        who: smtpd (mail_owner), root
 *   in:  user (authenticated login name), address (envelope sender or From)
 *   out: OK (user owns address: it is the user's own or an alias pointing to the user);
 *        PERMFAIL reason; TEMPFAIL.
 */
#ifndef POSTERN_AUTHPROTO_H
#define POSTERN_AUTHPROTO_H

enum auth_req {
	AUTH_REQ_AUTH = 10,
	AUTH_REQ_TICKET = 11,
	AUTH_REQ_USER = 12,
	AUTH_REQ_RCPT = 13,
	AUTH_REQ_SENDER = 14,
};

#define AUTH_SOCKET		"private/auth"	/* relative to spool_directory */
#define AUTH_MAX_ADDRESS	320		/* RFC 5321: 64 + 1 + 255, with slack */
#define AUTH_MAX_PASSWORD	1024
#define AUTH_MAX_CHALLENGE	512
#define AUTH_TIMEOUT_MS		15000		/* default client-side deadline */

#endif
