/*
 * queueproto.h: the protocol between smtpd (and other writers) and the queue daemon
 * (DESIGN.md §2, §4; issue 4), over $spool_directory/private/queue with lib/ipc.h frames.
 * The queue daemon alone may create queue files; a writer never opens one by name.
 *
 * Every reply carries the request's type and id; "reason" (string) comes with every
 * PERMFAIL and TEMPFAIL. A peer that is neither root nor mail_owner gets PERMFAIL "not
 * allowed" to every request; unknown request types and unknown or missing keys are PERMFAIL.
 *
 * QUEUE_REQ_CREATE     who: smtpd (mail_owner), root
 *   in:  (nothing required) client (string, for the log)
 *   out: OK id (queue id), with ONE descriptor: the new file queue/tmp/<id> (mode 0600,
 *        owner queue_owner), open read-write, empty, positioned at 0. The writer writes the
 *        whole queue file with the lib/queuefile.h writer, under exactly this id, and does
 *        not fsync (the queue daemon does).
 *        TEMPFAIL reason: free space below queue_minfree or below one maximal queue file
 *        ("insufficient queue space"), more than 8 uncommitted files on this connection
 *        (or too many in all), I/O trouble.
 * QUEUE_REQ_COMMIT     who: the same connection that created the id
 *   in:  id
 *   out: OK id once the file is validated, fsync'ed, renamed into incoming/<subdir>/<id>
 *        and that directory fsync'ed: only then may smtpd say "250 2.0.0 Ok: queued as ID".
 *        PERMFAIL id reason: the file does not validate (larger than queue_file_size_limit,
 *        torn or malformed, another queue id inside): the writer's bug or a lie; the file
 *        is removed. PERMFAIL reason without id: the id is not an uncommitted file of this
 *        connection. TEMPFAIL id reason: I/O trouble (disk full, EIO, quota); the file is
 *        removed and the writer may start again with CREATE.
 *        No answer (the connection breaks): the outcome is unknown; the message may or may
 *        not be queued (smtpd answers 4xx; a retry may duplicate it, never lose it).
 * QUEUE_REQ_ABORT      who: the same connection
 *   in:  id
 *   out: OK id; the temporary file is removed. PERMFAIL if the id is not an uncommitted file
 *        of this connection. A connection that closes aborts every file it created and did
 *        not commit; files left in queue/tmp by a daemon that died are removed when it
 *        restarts.
 *
 * Commits that arrive together share work (group commit: one thread fsyncs every waiting
 * file, renames them, then fsyncs each distinct directory once), but none is answered before
 * its own data and its rename are on disk.
 *
 * Local submission does not use this socket: sendmail writes a complete queue file (any
 * queue id, the writer library) as maildrop/.NAME, readable by queue_owner (mode 0644), and
 * renames it to maildrop/NAME when complete. The queue daemon validates it as untrusted,
 * re-queues its sender, recipients, DSN options and message under a fresh id (client
 * "localhost", auth user = the file owner's name or "uid=N", every recipient pending), then
 * removes it; a file that does not validate is moved to queue/corrupt/.
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
