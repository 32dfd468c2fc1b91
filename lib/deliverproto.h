/*
 * deliverproto.h: the protocol between qmgr and the delivery agents (virtual, local, smtp;
 * issue 5), over $spool_directory/private/<agent> with lib/ipc.h frames. qmgr hands an agent
 * the queue file open READ-ONLY and where the message lies in it: never a path. The agent
 * reports one result per recipient; qmgr records each durably in the queue file's status
 * block (lib/queuefile.h) before it does anything else.
 *
 * DELIVER_REQ_DELIVER   who: qmgr (queue_owner), root
 *   in:  one descriptor: the queue file, O_RDONLY
 *        qid, msg_off (int), msg_len (int), sender ("" = null sender), arrival (int, ms),
 *        active (int, ms: when qmgr took the message), body ("7BIT" | "8BITMIME" |
 *        "BINARYMIME"), smtputf8 (int 0/1), nrcpt (int, 1..DELIVER_MAX_RCPT), and for each
 *        recipient i in 0..nrcpt-1: rcpt<i> (address as it will be delivered), orig<i>
 *        (the original recipient before alias expansion, "" if the same; for logs and
 *        Delivered-To loop checks), notify<i> (int, QF_NOTIFY_* bits)
 *   out: OK, then per recipient i: code<i> (int: the SMTP reply code, 2xx delivered, 4xx
 *        try later, 5xx bounce), dsn<i> ("2.0.0", "4.2.2", "5.1.1", ...), text<i> (the
 *        diagnostic, e.g. "delivered to maildir" or "host mx.example.com said: 550 ..."),
 *        relay<i> (for the log: "virtual", "local", "mx.example.com[192.0.2.1]:25").
 *        TEMPFAIL (with reason) for the whole request when the agent cannot even try: qmgr
 *        treats every recipient as 4xx. PERMFAIL only for a malformed request (qmgr's bug).
 *
 * The agent logs the Postfix delivery line for each recipient:
 *   QID: to=<rcpt>, orig_to=<orig>, relay=RELAY, delay=D, delays=a/b/c/d, dsn=X.Y.Z,
 *   status=sent|deferred|bounced (TEXT)
 */
#ifndef POSTERN_DELIVERPROTO_H
#define POSTERN_DELIVERPROTO_H

enum deliver_req {
	DELIVER_REQ_DELIVER = 40,
};

#define DELIVER_MAX_RCPT	50		/* recipients per request */
#define DELIVER_TIMEOUT_MS	600000		/* an agent may take minutes (remote SMTP) */

#endif
