/*
 * admin_mailq.c: the queue listing of `postern mailq`, `mailq` and `postern queue list`
 * (issue 5), in the layout of Postfix's `postqueue -p` with a column wide enough for our
 * 19-character queue ids. It reads queue/{incoming,active,deferred,hold}/X/Y/QID directly,
 * as root, and never changes anything: every file is opened read-only, without following
 * symbolic links (the queue belongs to queue_owner, we are root), and validated with
 * qf_open_fd. A file that vanishes meanwhile (qmgr moved or removed it) is skipped silently,
 * one that does not validate with a warning on stderr (queue daemon and qmgr move such files
 * to corrupt/). Deferred recipients show the reason qmgr wrote to queue/defer/X/Y/QID.
 *
 * Each message is formatted into its own buffer as it is read and the buffers are printed
 * sorted by arrival, so every message is a consistent snapshot of its file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "buf.h"
#include "queuefile.h"
#include "util.h"

#define MAILQ_MAX_DEFER		(4u << 20)	/* bytes of a defer file we read */
#define MAILQ_MAX_ENTRY		(32u << 20)	/* text of one message (10000 recipients) */
#define MAILQ_ID_WIDTH		(QF_QID_LEN + 1)	/* queue id and its status mark */
#define MAILQ_RCPT_INDENT	50	/* recipients line up under the sender */

/* The queues mailq shows, and the mark after the id (as postqueue: '*' active, '!' held,
 * none otherwise). */
static const struct {
	const char *name;
	char mark;
} mailq_queues[] = {
	{ "incoming", 0 }, { "active", '*' }, { "deferred", 0 }, { "hold", '!' },
};

struct mailq_entry {
	int64_t arrival_ms;
	char qid[QF_QID_SIZE];
	uint64_t size;
	struct buf text;
};

struct mailq {
	int queue_dfd, defer_dfd;	/* queue/ and queue/defer/ (-1 if absent) */
	struct mailq_entry *e;
	size_t n, cap;
};

/* One line of a defer file: the recipient's address and the reason. */
struct defer_line {
	const char *addr, *text;
};

struct defer_reasons {
	char *data;
	struct defer_line *line;
	size_t n;
};

static void mailq_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mailq_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("postern/mailq: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* openat of one path component, never through a symbolic link. */
static int open_dir_at(int dfd, const char *name)
{
	return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* "X" or "Y" of a queue subdirectory: one upper-case hex digit, as qid_subdir makes. */
static bool subdir_name(const char *name)
{
	return ((name[0] >= '0' && name[0] <= '9') || (name[0] >= 'A' && name[0] <= 'F')) &&
	       name[1] == '\0';
}

/* Read a regular file at dfd/name into a NUL-terminated heap buffer, at most max bytes
 * (a longer file is cut). NULL if it cannot be opened (errno set). */
static char *read_small_file(int dfd, const char *name, size_t max, size_t *len)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *data;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		(void)close(fd);
		errno = EINVAL;
		return NULL;
	}
	if ((uint64_t)st.st_size < max)
		max = (size_t)st.st_size;
	data = xmalloc(max + 1);
	n = read_full(fd, data, max);
	(void)close(fd);
	*len = n > 0 ? (size_t)n : 0;
	data[*len] = '\0';
	return data;
}

static int defer_line_cmp(const void *a, const void *b)
{
	const struct defer_line *x = a, *y = b;
	int c = strcmp(x->addr, y->addr);

	/* Equal addresses keep their file order: the first line wins the lookup. */
	return c ? c : (x->addr < y->addr ? -1 : x->addr > y->addr);
}

/* Split "ADDRESS TAB DSN TAB TEXT" lines in place; malformed lines are ignored. Control
 * characters in TEXT (it quotes remote servers) become '?' before they reach a terminal. */
static void defer_parse(struct defer_reasons *d, size_t len)
{
	char *p = d->data, *end = d->data + len;
	size_t cap = 0;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *tab1, *tab2;

		if (nl == NULL)
			break;		/* a cut or unfinished last line */
		*nl = '\0';
		tab1 = strchr(p, '\t');
		tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
		if (tab1 && tab2 && tab1 != p && strchr(tab2 + 1, '\t') == NULL) {
			*tab1 = '\0';
			for (char *t = tab2 + 1; *t; t++)
				if ((unsigned char)*t < 0x20 || *t == 0x7f)
					*t = '?';
			if (d->n == cap) {
				cap = cap ? 2 * cap : 16;
				d->line = xreallocarray(d->line, cap, sizeof(*d->line));
			}
			d->line[d->n++] = (struct defer_line){ p, tab2 + 1 };
		}
		p = nl + 1;
	}
	if (d->n > 1)
		qsort(d->line, d->n, sizeof(*d->line), defer_line_cmp);
}

/* The reasons qmgr wrote for qid (none if the file is missing or unreadable). */
static void defer_load(const struct mailq *mq, const char *qid, struct defer_reasons *d)
{
	char subdir[QF_SUBDIR_SIZE];
	int xfd, yfd;
	size_t len;

	memset(d, 0, sizeof(*d));
	if (mq->defer_dfd < 0 || qid_subdir(qid, subdir, sizeof(subdir)) < 0)
		return;
	subdir[1] = '\0';	/* "B/5" -> "B" and "5" */
	if ((xfd = open_dir_at(mq->defer_dfd, subdir)) < 0)
		return;
	yfd = open_dir_at(xfd, subdir + 2);
	(void)close(xfd);
	if (yfd < 0)
		return;
	d->data = read_small_file(yfd, qid, MAILQ_MAX_DEFER, &len);
	(void)close(yfd);
	if (d->data)
		defer_parse(d, len);
}

static const char *defer_lookup(const struct defer_reasons *d, const char *addr)
{
	size_t lo = 0, hi = d->n;

	/* The lowest index with line[i].addr >= addr: the first of equal addresses. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(d->line[mid].addr, addr) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->n && strcmp(d->line[lo].addr, addr) == 0 ? d->line[lo].text : NULL;
}

static void defer_free(struct defer_reasons *d)
{
	free(d->data);
	free(d->line);
}

/* "Sat Nov 21 22:13:44": asctime's layout (day padded with a space), local time. */
static void format_arrival(int64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(out, outlen, "%a %b %e %H:%M:%S", &tm) == 0)
		str_copy(out, outlen, "?");
}

/* The header line and one line per recipient not yet done, a deferred one's reason in
 * parentheses before it (once for consecutive recipients with the same reason). */
static int format_entry(const struct mailq *mq, const struct qf *q, char mark, struct buf *b)
{
	const struct qf_envelope *env = &q->env;
	char idmark[MAILQ_ID_WIDTH + 1], when[64];
	struct defer_reasons reasons;
	const char *last = NULL;
	int rc = 0;

	str_copy(idmark, sizeof(idmark), env->qid);	/* always QF_QID_LEN characters */
	if (mark) {
		idmark[QF_QID_LEN] = mark;
		idmark[QF_QID_LEN + 1] = '\0';
	}
	format_arrival(env->arrival_ms, when, sizeof(when));
	rc |= buf_printf(b, "%-*s%8llu %-19s  %s\n", MAILQ_ID_WIDTH, idmark,
			 (unsigned long long)q->msg_len, when,
			 *env->sender ? env->sender : "MAILER-DAEMON");
	defer_load(mq, env->qid, &reasons);
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct qf_rcpt *r = &env->rcpt[i];
		const char *why = NULL;

		if (r->status.state != QF_PENDING && r->status.state != QF_DEFERRED)
			continue;
		if (r->status.state == QF_DEFERRED)
			why = defer_lookup(&reasons, r->addr);
		if (why && (last == NULL || strcmp(why, last) != 0))
			rc |= buf_printf(b, "(%s)\n", why);
		last = why;
		rc |= buf_printf(b, "%*s%s\n", MAILQ_RCPT_INDENT, "", r->addr);
	}
	rc |= buf_append_char(b, '\n');
	defer_free(&reasons);
	return rc < 0 ? -1 : 0;
}

/* Read one queue file; it joins the list, or is skipped (a warning if it is not valid). */
static void read_entry(struct mailq *mq, int dfd, const char *path, const char *name,
		       char mark)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct mailq_entry *e;
	char err[256];
	struct stat st;
	struct qf q;

	if (fd < 0) {
		if (errno != ENOENT)	/* ENOENT: qmgr moved or removed it meanwhile */
			mailq_warn("skipping %s/%s: %s", path, name, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		mailq_warn("skipping %s/%s: not a regular file", path, name);
		(void)close(fd);
		return;
	}
	if (qf_open_fd(fd, &q, err, sizeof(err)) < 0) {
		mailq_warn("skipping %s/%s: %s", path, name, err);
		(void)close(fd);
		return;
	}
	(void)close(fd);
	if (strcmp(q.env.qid, name) != 0) {
		mailq_warn("skipping %s/%s: it holds queue id %s", path, name, q.env.qid);
		qf_free(&q);
		return;
	}
	if (mq->n == mq->cap) {
		mq->cap = mq->cap ? 2 * mq->cap : 64;
		mq->e = xreallocarray(mq->e, mq->cap, sizeof(*mq->e));
	}
	e = &mq->e[mq->n];
	e->arrival_ms = q.env.arrival_ms;
	e->size = q.msg_len;
	str_copy(e->qid, sizeof(e->qid), q.env.qid);
	buf_init(&e->text, MAILQ_MAX_ENTRY);
	if (format_entry(mq, &q, mark, &e->text) < 0) {
		mailq_warn("skipping %s/%s: too many recipients to show", path, name);
		buf_free(&e->text);
	} else {
		mq->n++;
	}
	qf_free(&q);
}

/* Every file of one subdirectory whose name is a queue id. */
static void read_subdir(struct mailq *mq, int dfd, const char *path, char mark)
{
	int fd = dup(dfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (dir == NULL) {
		if (fd >= 0)
			(void)close(fd);
		mailq_warn("cannot read %s: %s", path, strerror(errno));
		return;
	}
	while ((de = readdir(dir)) != NULL)
		if (qid_valid(de->d_name))
			read_entry(mq, dfd, path, de->d_name, mark);
	(void)closedir(dir);
}

/* Walk dfd's one-hex-digit subdirectories; at depth 1 the files are read. */
static void walk(struct mailq *mq, int dfd, const char *path, int depth, char mark)
{
	int fd = dup(dfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	char sub[4096 + 8];
	struct dirent *de;
	int subfd;

	if (dir == NULL) {
		if (fd >= 0)
			(void)close(fd);
		mailq_warn("cannot read %s: %s", path, strerror(errno));
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (!subdir_name(de->d_name))
			continue;
		(void)str_fmt(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if ((subfd = open_dir_at(dfd, de->d_name)) < 0) {
			if (errno != ENOENT)
				mailq_warn("cannot open %s: %s", sub, strerror(errno));
			continue;
		}
		if (depth == 0)
			walk(mq, subfd, sub, 1, mark);
		else
			read_subdir(mq, subfd, sub, mark);
		(void)close(subfd);
	}
	(void)closedir(dir);
}

static int entry_cmp(const void *a, const void *b)
{
	const struct mailq_entry *x = a, *y = b;

	if (x->arrival_ms != y->arrival_ms)
		return x->arrival_ms < y->arrival_ms ? -1 : 1;
	return strcmp(x->qid, y->qid);
}

static void print_entries(struct mailq *mq)
{
	uint64_t total = 0;
	size_t shown = 0;

	if (mq->n == 0) {
		printf("Mail queue is empty\n");
		return;
	}
	qsort(mq->e, mq->n, sizeof(*mq->e), entry_cmp);
	printf("-Queue ID---------- --Size-- ----Arrival Time---- -Sender/Recipient-------\n");
	for (size_t i = 0; i < mq->n; i++) {
		/* A file qmgr moved while we walked (active/ to deferred/) may have been seen
		 * twice; the copies sort next to each other. */
		if (i > 0 && strcmp(mq->e[i].qid, mq->e[i - 1].qid) == 0)
			continue;
		(void)fwrite(mq->e[i].text.data, 1, mq->e[i].text.len, stdout);
		total += mq->e[i].size;
		shown++;
	}
	printf("-- %llu Kbytes in %zu Request%s.\n", (unsigned long long)(total / 1024), shown,
	       shown == 1 ? "" : "s");
}

int mailq_list(const char *spool)
{
	struct mailq mq = { .queue_dfd = -1, .defer_dfd = -1 };
	char path[4096], qpath[4096];
	int dfd;

	if (str_fmt(path, sizeof(path), "%s/queue", spool) < 0) {
		fprintf(stderr, "postern/mailq: spool_directory is too long\n");
		return ADMIN_FAIL;
	}
	if ((mq.queue_dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "postern/mailq: cannot open the queue %s: %s%s\n", path,
			strerror(errno), errno == EACCES ? " (mailq must be run as root)" : "");
		return ADMIN_FAIL;
	}
	mq.defer_dfd = open_dir_at(mq.queue_dfd, "defer");
	for (size_t i = 0; i < ARRAY_LEN(mailq_queues); i++) {
		if ((dfd = open_dir_at(mq.queue_dfd, mailq_queues[i].name)) < 0) {
			if (errno != ENOENT)
				mailq_warn("cannot open %s/%s: %s", path, mailq_queues[i].name,
					   strerror(errno));
			continue;
		}
		(void)str_fmt(qpath, sizeof(qpath), "%s/%s", path, mailq_queues[i].name);
		walk(&mq, dfd, qpath, 0, mailq_queues[i].mark);
		(void)close(dfd);
	}
	print_entries(&mq);
	for (size_t i = 0; i < mq.n; i++)
		buf_free(&mq.e[i].text);
	free(mq.e);
	if (mq.defer_dfd >= 0)
		(void)close(mq.defer_dfd);
	(void)close(mq.queue_dfd);
	return ADMIN_OK;
}
