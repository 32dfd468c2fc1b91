/*
 * queue.h: shared declarations of postern-queue (issue 4, DESIGN.md §4), the single daemon
 * that alone creates queue files. It runs as queue_owner, chrooted in the spool, and works
 * only through directory descriptors opened before the chroot (so the same code runs in
 * developer mode, unchrooted). The main thread runs the event loop: IPC clients (conn.c),
 * the maildrop pickup (pickup.c) and the bookkeeping of temporary files (tmpfiles.c); one
 * committer thread (commit.c) does the slow, durable part: fsync, rename into incoming/,
 * directory fsync, shared by every commit that is waiting at the same time.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "event.h"
#include "ipc.h"
#include "ipcserver.h"
#include "queuefile.h"

#define QUEUE_MAX_CLIENTS	1024
#define QUEUE_MAX_PER_CONN	8	/* uncommitted files one connection may hold */
#define QUEUE_MAX_TMP		2048	/* uncommitted files in all */
#define QUEUE_REASON_LEN	300

/* A file this daemon created in queue/tmp and has not committed or removed yet. */
struct tmpfile {
	char qid[QF_QID_SIZE];
	int fd;				/* our own descriptor, read-write */
};

/* One file on its way into incoming/: filled by the main thread, done by the committer. */
struct commit_job {
	struct tmpfile tf;
	char subdir[QF_SUBDIR_SIZE];
	size_t nrcpt;
	uint64_t size;
	/* results, set by the committer thread */
	int err;			/* 0 = durable in incoming/; else errno */
	const char *failed_step;	/* "fsync", "rename", "directory fsync" */
	/* who wants to know: called in the main thread, then the job is freed */
	void (*done)(struct commit_job *job);
	void *arg;
	uint32_t req_id;
	struct commit_job *next;
};

struct queued {
	struct config *cfg;
	struct ev_loop *loop;
	struct ipc_allow allow;		/* CREATE / COMMIT / ABORT */
	int queue_dfd, tmp_dfd, incoming_dfd, corrupt_dfd, maildrop_dfd;
	int inotify_fd;			/* -1 if unavailable */
	uint64_t minfree;		/* queue_minfree */
	uint64_t file_limit;		/* largest queue file */
	int ntmp;			/* uncommitted files in all */
	struct ipc_server *srv;
};

extern struct queued Q;

/* conn.c: IPC clients */
extern const struct ipc_server_ops conn_ops;

/* tmpfiles.c: temporary files, free space, start-up housekeeping */
/* Check free space; 0, or -1 with a reason for a TEMPFAIL. */
int tmp_space_ok(char *reason, size_t reasonlen);
/* Create queue/tmp/<fresh qid>; 0, or -1 with a reason (errno set). */
int tmp_create(struct tmpfile *tf, char *reason, size_t reasonlen);
/* Close and unlink an uncommitted file. */
void tmp_discard(struct tmpfile *tf);
void tmp_clean_stale(void);
void incoming_make_subdirs(void);
/* Move a file from dfd/name to queue/corrupt/<fresh id>; the new name goes to newname. */
int corrupt_move(int dfd, const char *name, char *newname, size_t newlen);

/* commit.c: validation and the committer thread */
/* Validate the file of tf as untrusted input (size, structure, the queue id we issued);
 * 0 and nrcpt/size filled, or -1 with IPC_PERMFAIL/IPC_TEMPFAIL in *status and a reason. */
int commit_validate(const struct tmpfile *tf, size_t *nrcpt, uint64_t *size, int *status,
		    char *reason, size_t reasonlen);
void committer_start(void);
void committer_attach(struct ev_loop *loop);
void committer_submit(struct commit_job *job);
void committer_stop(void);
/* Postfix-like text for a failed job, e.g. "rename: No space left on device". */
const char *commit_error(const struct commit_job *job, char *buf, size_t buflen);

/* pickup.c: maildrop/ */
void pickup_init(const struct config *cfg);	/* before the drop: inotify, passwd */
void pickup_start(struct ev_loop *loop);

#endif
