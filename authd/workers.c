/*
 * workers.c: authd's database worker threads. Each worker owns one database connection
 * (lib/sqldb.c is not thread-safe, one connection per thread is the rule) and runs jobs
 * from a shared queue; finished jobs go back to the main thread through an eventfd, so the
 * event loop only ever touches a job before submitting it and after it is done.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "authd.h"
#include "log.h"
#include "sqldb.h"
#include "util.h"

#define MAX_WORKERS 64

static struct {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	struct job *queued, **queued_tail;	/* FIFO of jobs not yet taken */
	struct job *done;
	int efd;
	bool stopping;
	int n;
	pthread_t tid[MAX_WORKERS];
} W = { .lock = PTHREAD_MUTEX_INITIALIZER, .ready = PTHREAD_COND_INITIALIZER, .efd = -1 };

static struct job *next_job(void)
{
	struct job *j;

	pthread_mutex_lock(&W.lock);
	while (W.queued == NULL && !W.stopping)
		pthread_cond_wait(&W.ready, &W.lock);
	j = W.queued;
	if (j) {
		W.queued = j->next;
		if (W.queued == NULL)
			W.queued_tail = &W.queued;
	}
	pthread_mutex_unlock(&W.lock);
	return j;
}

static void finish_job(struct job *j)
{
	uint64_t one = 1;

	pthread_mutex_lock(&W.lock);
	j->next = W.done;
	W.done = j;
	pthread_mutex_unlock(&W.lock);
	if (write(W.efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		msg_warn("eventfd write: %m");
}

static void *worker_main(void *arg)
{
	struct sqldb *db;

	(void)arg;
	sqldb_thread_init();
	db = sqldb_new(A.sql, false);
	for (struct job *j; (j = next_job()) != NULL;) {
		lookup_run(db, j);
		finish_job(j);
	}
	sqldb_free(db);
	sqldb_thread_end();
	return NULL;
}

/* Main thread: hand finished jobs back, oldest first. */
static void on_done(struct ev_loop *loop, int fd, int revents, void *arg)
{
	uint64_t n;
	struct job *list, *rev = NULL;

	(void)loop, (void)revents, (void)arg;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		msg_warn("eventfd read: %m");
	pthread_mutex_lock(&W.lock);
	list = W.done;
	W.done = NULL;
	pthread_mutex_unlock(&W.lock);
	while (list) {
		struct job *next = list->next;

		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct job *next = rev->next;

		client_job_done(rev);
		rev = next;
	}
}

void workers_start(int n)
{
	sigset_t all, old;

	W.queued_tail = &W.queued;
	W.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (W.efd < 0)
		msg_fatal("eventfd: %m");
	if (n > MAX_WORKERS)
		n = MAX_WORKERS;
	/* Workers must never take the process's signals (the loop's self-pipe handles them). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (W.n = 0; W.n < n; W.n++)
		if (pthread_create(&W.tid[W.n], NULL, worker_main, NULL) != 0)
			msg_fatal("cannot start database worker thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Called from the main thread once the loop exists. */
void workers_attach(struct ev_loop *loop)
{
	if (ev_fd_add(loop, W.efd, POLLIN, on_done, NULL) < 0)
		msg_fatal("cannot watch the worker eventfd: %m");
}

void workers_submit(struct job *job)
{
	pthread_mutex_lock(&W.lock);
	job->next = NULL;
	*W.queued_tail = job;
	W.queued_tail = &job->next;
	pthread_cond_signal(&W.ready);
	pthread_mutex_unlock(&W.lock);
}

void workers_stop(void)
{
	pthread_mutex_lock(&W.lock);
	W.stopping = true;
	pthread_cond_broadcast(&W.ready);
	pthread_mutex_unlock(&W.lock);
}
