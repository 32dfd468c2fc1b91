/*
 * queueproto.h: the protocol between smtpd (and other writers) and the queue daemon
 * (DESIGN.md §2, §4; issue 4), over $spool_directory/private/queue with lib/ipc.h frames.
 * The queue daemon alone may create queue files; a writer never opens one by name.
 *
 * QUEUE_REQ_CREATE     who: smtpd (mail_owner), root
 *   in:  (nothing required) client (string, for the log)
 *   out: OK id (queue id), with ONE descriptor: the new file in queue/tmp, open read-write,
 *        positioned at 0. The writer writes the whole queue file (lib/queuefile.h writer).
 *        TEMPFAIL reason (disk full, queue_minfree reached, too many open files, ...).
 * QUEUE_REQ_COMMIT     who: the same connection that created the id
 *   in:  id
 *   out: OK id once the file is validated, fsync'ed, renamed into incoming/ and the
 *        directory fsync'ed: only then may smtpd say "250 2.0.0 Ok: queued as ID".
 *        PERMFAIL reason: the file does not validate (size, structure): the writer's bug
 *        or a lie; the file is removed. TEMPFAIL reason: I/O trouble; the file is removed.
 * QUEUE_REQ_ABORT      who: the same connection
 *   in:  id
 *   out: OK; the temporary file is removed. A connection that closes aborts every file it
 *        created and did not commit.
 *
 * Commits that arrive together may share one directory fsync (group commit), but none is
 * answered before its own data and its rename are on disk.
 */
#ifndef POSTERN_QUEUEPROTO_H
#define POSTERN_QUEUEPROTO_H

enum queue_req {
	QUEUE_REQ_CREATE = 20,
	QUEUE_REQ_COMMIT = 21,
	QUEUE_REQ_ABORT = 22,
};

#define QUEUE_SOCKET		"private/queue"	/* relative to spool_directory */
#define QUEUE_TIMEOUT_MS	30000

#endif
