/*
 * pickup.c: local submission. sendmail (running as the submitting user, setgid
 * setgid_group) writes a complete queue file under a name starting with "." in maildrop/
 * and renames it to a name without the dot when it is complete. Every such file is
 * untrusted input: it is opened without following links or blocking, must be a regular file
 * with one link and within the size limit, and must validate. Its sender, recipients, DSN
 * options and message are then copied into a NEW queue file (fresh queue id, arrival now,
 * client "localhost", auth user = the file owner's name, every recipient pending) that goes
 * through the same durable commit as smtpd's files; only then is the maildrop file removed.
 * A file that does not validate is moved to queue/corrupt/ and logged; a temporary failure
 * (disk full) leaves it in place for the next scan.
 *
 * maildrop/ is scanned every maildrop_scan_interval and, through inotify, as soon as a file
 * is renamed into it. Log lines take Postfix's pickup form: "postern/pickup[pid]: ID: uid=N
 * from=<sender>".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "util.h"

#define PICKUP_MAX_INFLIGHT	16	/* files being committed at once */
#define PICKUP_SCAN_BATCH	64	/* files looked at per turn of the event loop */
#define PICKUP_MAX_USERS	65536	/* passwd entries remembered */
#define PICKUP_ABANDONED_S	86400	/* a ".name" this old was left by a dead writer */
#define PICKUP_COPY_CHUNK	65536

struct user_name {
	uid_t uid;
	char *name;
};

struct pickup {
	char name[256];		/* in maildrop/ */
	uid_t uid;
	char *sender;
};

static struct {
	struct user_name *users;	/* snapshot of passwd: a chroot has none */
	size_t nusers;
	int64_t interval_ms;
	uint64_t scan_timer;		/* 0 if no scan is due soon */
	struct pickup *inflight[PICKUP_MAX_INFLIGHT];
	int ninflight;
} P;

static void schedule_scan(int64_t after_ms);

/* ---- start-up -------------------------------------------------------------------------- */

static bool safe_user_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

void pickup_init(const struct config *cfg)
{
	char path[4096];
	struct passwd *pw;

	P.interval_ms = conf_time_ms(cfg, "maildrop_scan_interval");
	setpwent();
	while (P.nusers < PICKUP_MAX_USERS && (pw = getpwent()) != NULL) {
		if (!safe_user_name(pw->pw_name))
			continue;
		P.users = xreallocarray(P.users, P.nusers + 1, sizeof(*P.users));
		P.users[P.nusers].uid = pw->pw_uid;
		P.users[P.nusers++].name = xstrdup(pw->pw_name);
	}
	endpwent();
	Q.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (Q.inotify_fd < 0 ||
	    str_fmt(path, sizeof(path), "%s/maildrop", conf_str(cfg, "spool_directory")) < 0 ||
	    inotify_add_watch(Q.inotify_fd, path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		msg_warn("no inotify on maildrop/ (%m): scanning every %lld ms only",
			 (long long)P.interval_ms);
		if (Q.inotify_fd >= 0)
			close(Q.inotify_fd);
		Q.inotify_fd = -1;
	}
}

/* The auth user of a picked-up message: the owner's login name, else "uid=N". */
static void owner_name(uid_t uid, char *buf, size_t buflen)
{
	for (size_t i = 0; i < P.nusers; i++)
		if (P.users[i].uid == uid && str_copy(buf, buflen, P.users[i].name) == 0)
			return;
	str_fmt(buf, buflen, "uid=%u", (unsigned)uid);
}

/* ---- one file -------------------------------------------------------------------------- */

static void move_to_corrupt(const char *name, const char *reason)
{
	char newname[QF_QID_SIZE];

	if (corrupt_move(Q.maildrop_dfd, name, newname, sizeof(newname)) < 0)
		msg_warn("maildrop file %s: %s; cannot move it to corrupt: %m", name, reason);
	else
		msg_warn("maildrop file %s: %s; moved to corrupt/%s", name, reason, newname);
}

static void pickup_free(struct pickup *p)
{
	for (int i = 0; i < P.ninflight; i++)
		if (P.inflight[i] == p) {
			P.inflight[i] = P.inflight[--P.ninflight];
			break;
		}
	free(p->sender);
	free(p);
}

static void pickup_done(struct commit_job *job)
{
	struct pickup *p = job->arg;
	char why[QUEUE_REASON_LEN];

	if (job->err == 0) {
		close(job->tf.fd);
		Q.ntmp--;
		log_set_service("pickup");
		msg_info("%s: uid=%u from=<%s>", job->tf.qid, (unsigned)p->uid, p->sender);
		log_set_service("queue");
		msg_info("%s: committed, size=%llu, nrcpt=%zu", job->tf.qid,
			 (unsigned long long)job->size, job->nrcpt);
		if (unlinkat(Q.maildrop_dfd, p->name, 0) < 0 && errno != ENOENT)
			msg_warn("remove maildrop file %s: %m (it will be queued again)", p->name);
	} else {
		msg_warn("maildrop file %s: commit failed: %s; will retry", p->name,
			 commit_error(job, why, sizeof(why)));
		tmp_discard(&job->tf);
	}
	pickup_free(p);
	free(job);
	schedule_scan(0);	/* a slot is free: look for more */
}

/* Copy the message of the validated maildrop file into the writer. -1 with *input_bad set
 * when the maildrop file changed under us (its owner's doing: corrupt). */
static int copy_message(int in, const struct qf *q, struct qf_writer *w, bool *input_bad)
{
	char *chunk = xmalloc(PICKUP_COPY_CHUNK);
	uint64_t done = 0;
	int rc = 0;

	while (rc == 0 && done < q->msg_len) {
		size_t want = q->msg_len - done < PICKUP_COPY_CHUNK ? (size_t)(q->msg_len - done)
								    : PICKUP_COPY_CHUNK;
		ssize_t r = pread(in, chunk, want, q->msg_off + (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			*input_bad = r == 0;
			rc = -1;
		} else if (qf_writer_body(w, chunk, (size_t)r) < 0) {
			rc = -1;
		} else {
			done += (uint64_t)r;
		}
	}
	free(chunk);
	return rc;
}

/* Write the new queue file for a validated maildrop file; 0, or -1 (reason logged). */
static int write_new_file(int in, struct qf *q, uid_t uid, struct tmpfile *tf, bool *input_bad)
{
	static char empty[] = "", localhost[] = "localhost";
	struct qf_envelope env = q->env;
	char user[80], err[256];
	struct qf_writer *w;

	owner_name(uid, user, sizeof(user));
	str_copy(env.qid, sizeof(env.qid), tf->qid);
	env.arrival_ms = wall_ms();
	env.client_addr = empty;
	env.client_name = localhost;
	env.helo = empty;
	env.auth_user = user;
	for (size_t i = 0; i < env.nrcpt; i++) {
		memset(&env.rcpt[i].status, 0, sizeof(env.rcpt[i].status));	/* pending */
		env.rcpt[i].status_off = 0;
	}
	w = qf_writer_begin(tf->fd, &env, err, sizeof(err));
	if (w == NULL) {
		msg_warn("%s: cannot write queue file: %s", tf->qid, err);
		return -1;
	}
	if (copy_message(in, q, w, input_bad) < 0) {
		if (!*input_bad)
			msg_warn("%s: cannot write queue file: %m", tf->qid);
		qf_writer_abort(w);
		return -1;
	}
	if (qf_writer_end(w) < 0) {
		msg_warn("%s: cannot write queue file: %m", tf->qid);
		return -1;
	}
	return 0;
}

/* Open and check a maildrop file; the descriptor, or -1 after moving it to corrupt (or
 * when it vanished). */
static int open_dropped(const char *name, struct stat *st)
{
	char reason[128];
	int fd = openat(Q.maildrop_dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		str_fmt(reason, sizeof(reason), "%s",
			errno == ELOOP ? "symbolic link" : strerror(errno));
		move_to_corrupt(name, reason);
		return -1;
	}
	reason[0] = '\0';
	if (fstat(fd, st) < 0)
		str_fmt(reason, sizeof(reason), "fstat: %s", strerror(errno));
	else if (!S_ISREG(st->st_mode))
		str_fmt(reason, sizeof(reason), "not a regular file");
	else if (st->st_nlink != 1)
		str_fmt(reason, sizeof(reason), "file has %lu links", (unsigned long)st->st_nlink);
	else if ((uint64_t)st->st_size > Q.file_limit)
		str_fmt(reason, sizeof(reason), "file too large: %llu bytes, limit %llu",
			(unsigned long long)st->st_size, (unsigned long long)Q.file_limit);
	if (reason[0]) {
		close(fd);
		move_to_corrupt(name, reason);
		return -1;
	}
	return fd;
}

/* 0 when done with the file (queued, moved or gone), -1 to stop scanning for now. */
static int pickup_file(const char *name)
{
	char reason[QUEUE_REASON_LEN], err[256];
	struct commit_job *job;
	struct pickup *p;
	struct stat st;
	struct qf q;
	bool input_bad = false;
	int fd;

	if ((fd = open_dropped(name, &st)) < 0)
		return 0;
	if (qf_open_fd(fd, &q, err, sizeof(err)) < 0) {
		close(fd);
		move_to_corrupt(name, err);
		return 0;
	}
	job = xcalloc(1, sizeof(*job));
	if (tmp_space_ok(reason, sizeof(reason)) < 0 ||
	    tmp_create(&job->tf, reason, sizeof(reason)) < 0) {
		msg_warn("maildrop file %s: %s; will retry", name, reason);
		goto later;
	}
	if (write_new_file(fd, &q, st.st_uid, &job->tf, &input_bad) < 0) {
		tmp_discard(&job->tf);
		if (input_bad) {
			move_to_corrupt(name, "file changed while it was read");
			free(job);
			close(fd);
			qf_free(&q);
			return 0;
		}
		goto later;
	}
	p = xcalloc(1, sizeof(*p));
	str_copy(p->name, sizeof(p->name), name);
	p->uid = st.st_uid;
	p->sender = xstrdup(q.env.sender);
	P.inflight[P.ninflight++] = p;
	job->nrcpt = q.env.nrcpt;
	job->size = q.msg_len;
	job->done = pickup_done;
	job->arg = p;
	committer_submit(job);
	close(fd);
	qf_free(&q);
	return 0;
later:
	free(job);
	close(fd);
	qf_free(&q);
	return -1;
}

/* ---- scanning -------------------------------------------------------------------------- */

static bool in_flight(const char *name)
{
	for (int i = 0; i < P.ninflight; i++)
		if (strcmp(P.inflight[i]->name, name) == 0)
			return true;
	return false;
}

/* A ".name" is a file sendmail is still writing, unless it is a day old. */
static void check_hidden(const char *name, time_t now)
{
	struct stat st;

	if (fstatat(Q.maildrop_dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now - st.st_mtime > PICKUP_ABANDONED_S)
		move_to_corrupt(name, "abandoned temporary file");
}

/* Look at up to PICKUP_SCAN_BATCH files; true if there may be more to do right away. */
static bool scan_once(void)
{
	int dfd = dup(Q.maildrop_dfd), seen = 0;
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	time_t now = time(NULL);
	struct dirent *de;
	bool more = false;

	if (d == NULL) {
		msg_warn("read maildrop: %m");
		if (dfd >= 0)
			close(dfd);
		return false;
	}
	rewinddir(d);	/* the dup shares the offset with Q.maildrop_dfd */
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_name[0] == '.') {
			check_hidden(de->d_name, now);
			continue;
		}
		if (in_flight(de->d_name))
			continue;
		if (P.ninflight >= PICKUP_MAX_INFLIGHT || ++seen > PICKUP_SCAN_BATCH) {
			more = P.ninflight < PICKUP_MAX_INFLIGHT;
			break;
		}
		if (pickup_file(de->d_name) < 0)
			break;		/* temporary trouble: the periodic scan retries */
	}
	closedir(d);
	return more;
}

static void on_scan(struct ev_loop *loop, void *arg)
{
	(void)loop, (void)arg;
	P.scan_timer = 0;
	if (scan_once())
		schedule_scan(0);
}

static void schedule_scan(int64_t after_ms)
{
	if (P.scan_timer != 0)
		return;
	P.scan_timer = ev_timer_add(Q.loop, after_ms, on_scan, NULL);
}

static void on_periodic(struct ev_loop *loop, void *arg)
{
	(void)arg;
	schedule_scan(0);
	ev_timer_add(loop, P.interval_ms, on_periodic, NULL);
}

static void on_inotify(struct ev_loop *loop, int fd, int revents, void *arg)
{
	char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)loop, (void)revents, (void)arg;
	while (read(fd, events, sizeof(events)) > 0)
		;		/* which file does not matter: the scan looks at them all */
	schedule_scan(0);
}

void pickup_start(struct ev_loop *loop)
{
	if (Q.inotify_fd >= 0 && ev_fd_add(loop, Q.inotify_fd, POLLIN, on_inotify, NULL) < 0)
		msg_warn("cannot watch inotify: %m");
	schedule_scan(0);
	ev_timer_add(loop, P.interval_ms, on_periodic, NULL);
}
