/*
 * commit.c: from a written temporary file to a durable queue file. The main thread
 * validates the file as untrusted input (a writer's word counts for nothing); then one
 * committer thread makes it durable: fsync the file, rename it into incoming/<subdir>/,
 * fsync that directory. Group commit: the thread takes every job waiting at once, fsyncs
 * each file, renames each, and fsyncs each distinct directory once for the whole batch; a
 * job is handed back (through an eventfd, as in authd/workers.c) only after its own data
 * and its rename are on disk, or with the errno that stopped it. Failed jobs leave nothing
 * behind in incoming/.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "util.h"

int commit_validate(const struct tmpfile *tf, size_t *nrcpt, uint64_t *size, int *status,
		    char *reason, size_t reasonlen)
{
	char err[256];
	struct stat st;
	struct qf q;

	*status = IPC_PERMFAIL;
	if (fstat(tf->fd, &st) < 0) {
		*status = IPC_TEMPFAIL;
		str_fmt(reason, reasonlen, "cannot stat queue file: %s", strerror(errno));
		return -1;
	}
	if ((uint64_t)st.st_size > Q.file_limit) {
		str_fmt(reason, reasonlen, "queue file too large: %llu bytes, limit %llu",
			(unsigned long long)st.st_size, (unsigned long long)Q.file_limit);
		return -1;
	}
	if (qf_open_fd(tf->fd, &q, err, sizeof(err)) < 0) {
		if (strstr(err, "read error") != NULL || strncmp(err, "fstat", 5) == 0)
			*status = IPC_TEMPFAIL;
		str_fmt(reason, reasonlen, "invalid queue file: %s", err);
		return -1;
	}
	if (strcmp(q.env.qid, tf->qid) != 0) {
		str_fmt(reason, reasonlen, "invalid queue file: it names queue id %s, not %s",
			q.env.qid, tf->qid);
		qf_free(&q);
		return -1;
	}
	*nrcpt = q.env.nrcpt;
	*size = q.msg_len;
	qf_free(&q);
	return 0;
}

const char *commit_error(const struct commit_job *job, char *buf, size_t buflen)
{
	str_fmt(buf, buflen, "%s: %s", job->failed_step ? job->failed_step : "commit",
		strerror(job->err));
	return buf;
}

/* ---- the committer thread (it never logs: log.c belongs to the main thread) ------------ */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	struct commit_job *todo, **todo_tail;
	struct commit_job *done, **done_tail;
	int efd;
	bool stopping, started;
	pthread_t tid;
} C = { .lock = PTHREAD_MUTEX_INITIALIZER, .ready = PTHREAD_COND_INITIALIZER, .efd = -1 };

static void fail_job(struct commit_job *j, const char *step, int err)
{
	j->failed_step = step;
	j->err = err ? err : EIO;
}

static int incoming_path(const struct commit_job *j, char *buf, size_t buflen)
{
	return str_fmt(buf, buflen, "%s/%s", j->subdir, j->tf.qid);
}

/* Make one directory durable; on failure every renamed job in it is undone and failed. */
static void sync_subdir(struct commit_job *batch, const char *subdir)
{
	char path[QF_SUBDIR_SIZE + QF_QID_SIZE + 1];
	int fd, err = 0;

	fd = openat(Q.incoming_dfd, subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fsync(fd) < 0)
		err = errno;
	if (fd >= 0)
		close(fd);
	if (err == 0)
		return;
	for (struct commit_job *j = batch; j; j = j->next) {
		if (j->err || strcmp(j->subdir, subdir) != 0)
			continue;
		fail_job(j, "directory fsync", err);
		if (incoming_path(j, path, sizeof(path)) == 0)
			unlinkat(Q.incoming_dfd, path, 0);	/* best effort; qmgr re-validates */
	}
}

static int hex_val(char c)
{
	return c >= 'A' ? c - 'A' + 10 : c - '0';
}

static void commit_batch(struct commit_job *batch)
{
	char path[QF_SUBDIR_SIZE + QF_QID_SIZE + 1];
	bool synced[256] = { false };

	for (struct commit_job *j = batch; j; j = j->next)
		if (fsync(j->tf.fd) < 0)
			fail_job(j, "fsync", errno);
	for (struct commit_job *j = batch; j; j = j->next) {
		if (j->err)
			continue;
		if (incoming_path(j, path, sizeof(path)) < 0)
			fail_job(j, "rename", ENAMETOOLONG);
		else if (renameat(Q.tmp_dfd, j->tf.qid, Q.incoming_dfd, path) < 0)
			fail_job(j, "rename", errno);
	}
	for (struct commit_job *j = batch; j; j = j->next) {
		int idx = hex_val(j->subdir[0]) * 16 + hex_val(j->subdir[2]);	/* "H/L" */

		if (j->err || synced[idx])
			continue;
		synced[idx] = true;
		sync_subdir(batch, j->subdir);
	}
}

static void *committer_main(void *arg)
{
	uint64_t one = 1;

	(void)arg;
	for (;;) {
		struct commit_job *batch;

		pthread_mutex_lock(&C.lock);
		while (C.todo == NULL && !C.stopping)
			pthread_cond_wait(&C.ready, &C.lock);
		batch = C.todo;
		C.todo = NULL;
		C.todo_tail = &C.todo;
		pthread_mutex_unlock(&C.lock);
		if (batch == NULL)
			break;
		commit_batch(batch);
		pthread_mutex_lock(&C.lock);
		*C.done_tail = batch;
		while (*C.done_tail)
			C.done_tail = &(*C.done_tail)->next;
		pthread_mutex_unlock(&C.lock);
		while (write(C.efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

/* Main thread: hand finished jobs back in the order they were submitted. */
static void on_done(struct ev_loop *loop, int fd, int revents, void *arg)
{
	struct commit_job *list;
	uint64_t n;

	(void)loop, (void)revents, (void)arg;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		msg_warn("eventfd read: %m");
	pthread_mutex_lock(&C.lock);
	list = C.done;
	C.done = NULL;
	C.done_tail = &C.done;
	pthread_mutex_unlock(&C.lock);
	while (list) {
		struct commit_job *next = list->next;

		list->done(list);
		list = next;
	}
}

void committer_start(void)
{
	sigset_t all, old;

	C.todo_tail = &C.todo;
	C.done_tail = &C.done;
	C.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (C.efd < 0)
		msg_fatal("eventfd: %m");
	/* The thread must never take the process's signals (the loop's self-pipe does). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&C.tid, NULL, committer_main, NULL) != 0)
		msg_fatal("cannot start the committer thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	C.started = true;
}

void committer_attach(struct ev_loop *loop)
{
	if (ev_fd_add(loop, C.efd, POLLIN, on_done, NULL) < 0)
		msg_fatal("cannot watch the committer eventfd: %m");
}

void committer_submit(struct commit_job *job)
{
	job->next = NULL;
	job->err = 0;
	job->failed_step = NULL;
	if (qid_subdir(job->tf.qid, job->subdir, sizeof(job->subdir)) < 0)
		msg_panic("queue id %s has no subdirectory", job->tf.qid);
	pthread_mutex_lock(&C.lock);
	*C.todo_tail = job;
	C.todo_tail = &job->next;
	pthread_cond_signal(&C.ready);
	pthread_mutex_unlock(&C.lock);
}

/* Let the thread finish the batch it is working on; what is still waiting is dropped with
 * the process (nobody was answered for it, and tmp/ is swept at the next start). */
void committer_stop(void)
{
	if (!C.started)
		return;
	pthread_mutex_lock(&C.lock);
	C.stopping = true;
	C.todo = NULL;
	C.todo_tail = &C.todo;
	pthread_cond_broadcast(&C.ready);
	pthread_mutex_unlock(&C.lock);
	pthread_join(C.tid, NULL);
}
