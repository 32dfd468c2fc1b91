/*
 * qmgrproto.h: queue control (issue 5; Postfix's postqueue -f and postsuper -d/-h/-H/-r),
 * over $spool_directory/private/qmgr with lib/ipc.h frames. Only root may ask: `postern
 * queue` (admin/) is the client. qmgr alone moves files between active/, deferred/ and
 * hold/, so every change goes through it; listing (mailq) reads the queue directories
 * directly and needs no request.
 *
 * QMGR_REQ_CONTROL     who: root
 *   in:  op = "flush" (deferred mail is tried now), "delete", "hold", "release" (hold/ back
 *        to the queue), "requeue" (every recipient not yet done is tried again from
 *        scratch, aliases re-expanded); id = a queue id, or "ALL"
 *        ("flush" takes no id, or "ALL")
 *   out: OK count (int: messages affected); PERMFAIL reason ("no such message", bad op).
 *
 * Deferred reasons live beside the queue: queue/defer/<subdir>/<qid>, written by qmgr after
 * each attempt (not fsync'ed: advisory), one line per recipient not yet done:
 *	ADDRESS TAB DSN TAB TEXT NL
 * (TEXT free of TAB, CR and LF). mailq shows TEXT under the message; the bounce after
 * maximal_queue_lifetime quotes it.
 */
#ifndef POSTERN_QMGRPROTO_H
#define POSTERN_QMGRPROTO_H

enum qmgr_req {
	QMGR_REQ_CONTROL = 50,
};

#define QMGR_SOCKET		"private/qmgr"	/* relative to spool_directory */
#define QMGR_TIMEOUT_MS		30000

#endif
