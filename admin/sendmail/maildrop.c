/*
 * maildrop.c: the one privileged act of postern-sendmail, writing a message into
 * $spool_directory/maildrop/ for the queue daemon's pickup (queue/pickup.c).
 *
 * The file is a complete queue file (lib/queuefile.h) created as ".QID" with O_EXCL and
 * O_NOFOLLOW under a directory descriptor, written, fsync()ed and closed, and only then
 * renamed to "QID" (without replacing anything): pickup ignores dot files, so it never sees
 * a partial one, and sendmail reports success only after the rename. On any failure after
 * the create the dot file is unlinked, so nothing is left behind; a sendmail killed with
 * SIGKILL in between leaves a dot file that pickup removes after a day. The usual terminal
 * signals are blocked meanwhile so ^C cannot leave one.
 *
 * The file is made mode 0644 whatever the umask: pickup runs as queue_owner, which is not
 * in setgid_group, and reads it as "other". maildrop/ itself (1730, queue_owner:
 * setgid_group) lets nobody but queue_owner list or open it. The directory cannot be
 * fsync()ed (we may write but not read it); pickup's commit makes the message durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sendmail.h"
#include "util.h"

#define CREATE_TRIES	10

struct drop {
	int dfd, fd;
	char qid[QF_QID_SIZE], dot[QF_QID_SIZE + 1];
};

static void fill_envelope(const struct sm_envelope *e, const char *qid, struct qf_envelope *env,
			  struct qf_rcpt *rc)
{
	static char empty[] = "", localhost[] = "localhost";

	memset(env, 0, sizeof(*env));
	(void)str_copy(env->qid, sizeof(env->qid), qid);
	env->arrival_ms = wall_ms();
	env->sender = (char *)(uintptr_t)e->sender;	/* the writer only reads it */
	env->client_addr = empty;
	env->client_name = localhost;
	env->helo = empty;
	env->body = e->eightbit ? QF_BODY_8BITMIME : QF_BODY_7BIT;
	env->flags = e->smtputf8 ? QF_F_SMTPUTF8 : 0;
	env->ret = e->ret;
	env->envid = (char *)(uintptr_t)e->envid;
	for (size_t i = 0; i < e->rcpts->n; i++)
		rc[i] = (struct qf_rcpt){ .addr = e->rcpts->addr[i],
					  .orcpt = e->orcpt ? e->orcpt[i] : NULL,
					  .notify = e->rcpt_notify ? e->rcpt_notify[i] : e->notify };
	env->rcpt = rc;
	env->nrcpt = e->rcpts->n;
}

static int fail(char *err, size_t errlen, const char *what, const char *detail)
{
	(void)str_fmt(err, errlen, "%s: %s", what, detail);
	return -1;
}

/* strerror, with the likely cause of a refusal to enter or write maildrop/. */
static const char *why_not(int err)
{
	if (err == EACCES || err == EPERM)
		return "Permission denied (is sendmail installed set-group-ID setgid_group?)";
	return strerror(err);
}

/* Create ".QID" (a fresh id if one is taken). */
static int create(struct drop *d, char *err, size_t errlen)
{
	for (int i = 0; i < CREATE_TRIES; i++) {
		if (qid_new(d->qid, sizeof(d->qid)) < 0 ||
		    str_fmt(d->dot, sizeof(d->dot), ".%s", d->qid) < 0)
			return fail(err, errlen, "queue id", strerror(errno));
		d->fd = openat(d->dfd, d->dot, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
			       O_NOCTTY, 0600);
		if (d->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	return fail(err, errlen, "create a file in maildrop/", why_not(errno));
}

/* Envelope and pieces into d->fd, made durable. */
static int write_file(struct drop *d, const struct sm_envelope *e, const struct sm_message *m,
		      char *err, size_t errlen)
{
	struct qf_rcpt *rc = xcalloc(e->rcpts->n ? e->rcpts->n : 1, sizeof(*rc));
	struct qf_envelope env;
	struct qf_writer *w;
	char why[256];
	int rc_ = -1;

	fill_envelope(e, d->qid, &env, rc);
	if (fchmod(d->fd, 0644) < 0) {
		fail(err, errlen, "chmod", strerror(errno));
		goto out;
	}
	if ((w = qf_writer_begin(d->fd, &env, why, sizeof(why))) == NULL) {
		fail(err, errlen, "write", errno == EINVAL ? why : strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < m->npiece; i++)
		if (qf_writer_body(w, m->piece[i].p, m->piece[i].len) < 0)
			break;
	if (qf_writer_end(w) < 0)
		fail(err, errlen, "write", strerror(errno));
	else if (fsync(d->fd) < 0)
		fail(err, errlen, "fsync", strerror(errno));
	else
		rc_ = 0;
out:
	free(rc);
	if (close(d->fd) < 0 && rc_ == 0)
		rc_ = fail(err, errlen, "close", strerror(errno));
	d->fd = -1;
	return rc_;
}

/* Publish ".QID" as "QID", never over an existing file. */
static int publish(struct drop *d, char *err, size_t errlen)
{
	if (renameat2(d->dfd, d->dot, d->dfd, d->qid, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOSYS) {	/* a file system without NOREPLACE */
		if (faccessat(d->dfd, d->qid, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			errno = EEXIST;
		else if (errno == ENOENT && renameat(d->dfd, d->dot, d->dfd, d->qid) == 0)
			return 0;
	}
	return fail(err, errlen, "rename in maildrop/", strerror(errno));
}

static int drop_it(const struct sendmail *sm, const struct sm_envelope *e,
		   const struct sm_message *m, struct drop *d, char *err, size_t errlen)
{
	char path[4096];

	if (str_fmt(path, sizeof(path), "%s/maildrop", conf_str(sm->cfg, "spool_directory")) < 0)
		return fail(err, errlen, "spool_directory", "too long");
	/* O_PATH: we may search and write maildrop/, not read it. */
	d->dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->dfd < 0)
		return fail(err, errlen, path, why_not(errno));
	if (create(d, err, errlen) < 0)
		return -1;
	if (write_file(d, e, m, err, errlen) < 0 || publish(d, err, errlen) < 0) {
		(void)unlinkat(d->dfd, d->dot, 0);
		return -1;
	}
	return 0;
}

int maildrop_write(const struct sendmail *sm, const struct sm_envelope *e,
		   const struct sm_message *m, char *name, size_t namelen, char *err,
		   size_t errlen)
{
	struct drop d = { .dfd = -1, .fd = -1 };
	sigset_t block, old;
	int rc;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGTSTP);
	sigprocmask(SIG_BLOCK, &block, &old);
	privs_resume();
	rc = drop_it(sm, e, m, &d, err, errlen);
	if (d.dfd >= 0)
		close(d.dfd);
	privs_suspend();
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		(void)str_copy(name, namelen, d.qid);
	return rc;
}
