/*
 * bench/pop3-load.c: pop3-load, the load generator of bench/pop3.sh (issue 7). It speaks
 * plain POP3 (RFC 1939, USER/PASS) over TCP to any server, so Postern and Dovecot see the
 * very same client.
 *
 *   pop3-load login -p PORT -U USERS -w PASS [-c CONNS] [-n NUSERS] [-d SECONDS]
 *       CONNS threads each loop connect, greeting, USER, PASS, QUIT, close for SECONDS;
 *       thread i logs in as user i, i+CONNS, ... (mod NUSERS), so no user ever has two
 *       sessions at once (a POP3 mailbox is locked while a session holds it).
 *   pop3-load retr  -p PORT -U USERS -w PASS [-c CONNS] -x COUNT
 *       CONNS connections (user i each) log in and wait for each other; then the clock runs
 *       while each one sends RETR 1 .. RETR COUNT, one at a time as mail clients do, and
 *       reads every message to its terminating line (seconds: until the last one is done);
 *       then QUIT, timed on its own (quit_ms: the slowest; nothing is deleted, but a server
 *       may mark the messages \Seen then, as Dovecot and Postern do).
 *       Every answer must be "+OK N octets" followed by exactly N bytes once unstuffed.
 *
 * USERS is a login name in which '#' stands for the user's number (u#@bench.test gives
 * u0@bench.test, u1@bench.test, ...). Every run prints one line of key=value pairs,
 * including the client's own CPU time (cpu_s), and exits 1 if anything went wrong (a refused
 * login, a wrong size, a server that does not answer within -t seconds), 2 on a usage error.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"
#include "util.h"

#define MAX_CONNS	1000
#define MAX_USER	200
#define LINE_MAX_POP	4096		/* one status line */

enum mode { MODE_LOGIN, MODE_RETR };

struct options {
	enum mode mode;
	const char *host, *users, *password;
	int port, conns, nusers, timeout_s;
	long count;
	double seconds;
};

/* One POP3 client connection. */
struct conn {
	int fd;
	char in[65536];
	size_t pos, end;
	char line[LINE_MAX_POP];	/* the last status line */
	char err[256];
};

struct worker {
	pthread_t tid;
	int index;
	const struct options *o;
	pthread_barrier_t *start;
	long done, errors;
	unsigned long long bytes;
	double retr_end, quit_s;	/* retr: when the last RETR was read, how long QUIT took */
	char err[256];
};

static void usage(void)
{
	fprintf(stderr, "usage: pop3-load login|retr -p PORT -U USER -w PASSWORD [-H HOST]\n"
		"       [-c CONNS] [-n NUSERS] [-d SECONDS] [-x COUNT] [-t TIMEOUT]\n"
		"       ('#' in USER is the user's number)\n");
	exit(2);
}

static void parse_args(int argc, char **argv, struct options *o)
{
	int c;

	if (argc < 2 || (strcmp(argv[1], "login") != 0 && strcmp(argv[1], "retr") != 0))
		usage();
	*o = (struct options){ .mode = strcmp(argv[1], "login") == 0 ? MODE_LOGIN : MODE_RETR,
			       .host = "127.0.0.1", .conns = 1, .timeout_s = 10, .count = -1,
			       .seconds = 5 };
	optind = 2;
	while ((c = getopt(argc, argv, "H:p:U:w:c:n:d:x:t:")) != -1) {
		switch (c) {
		case 'H': o->host = optarg; break;
		case 'p': o->port = (int)loadgen_num("pop3-load", optarg, 1, 65535, "-p"); break;
		case 'U': o->users = optarg; break;
		case 'w': o->password = optarg; break;
		case 'c': o->conns = (int)loadgen_num("pop3-load", optarg, 1, MAX_CONNS, "-c"); break;
		case 'n': o->nusers = (int)loadgen_num("pop3-load", optarg, 1, 1000000, "-n"); break;
		case 'd': o->seconds = (double)loadgen_num("pop3-load", optarg, 1, 3600, "-d"); break;
		case 'x': o->count = loadgen_num("pop3-load", optarg, 1, 10000000, "-x"); break;
		case 't': o->timeout_s = (int)loadgen_num("pop3-load", optarg, 1, 3600, "-t"); break;
		default: usage();
		}
	}
	if (!o->port || !o->users || !o->password || (o->mode == MODE_RETR && o->count < 0))
		usage();
	if (o->nusers == 0)
		o->nusers = o->conns;
}

/* ---- a connection ------------------------------------------------------------------------ */

static int conn_fail(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int conn_fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->pos > 0 && c->pos == c->end)
		c->pos = c->end = 0;
	if (c->end == sizeof(c->in)) {
		memmove(c->in, c->in + c->pos, c->end - c->pos);
		c->end -= c->pos;
		c->pos = 0;
	}
	do
		n = read(c->fd, c->in + c->end, sizeof(c->in) - c->end);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return conn_fail(c, "server closed the connection");
	if (n < 0)
		return conn_fail(c, "read: %s", errno == EAGAIN ? "timeout" : strerror(errno));
	c->end += (size_t)n;
	return 0;
}

/* One line (without CRLF) at *line (valid until the next read), its length in *len. */
static int conn_next_line(struct conn *c, const char **line, size_t *len)
{
	for (;;) {
		char *lf = memchr(c->in + c->pos, '\n', c->end - c->pos);

		if (lf != NULL) {
			size_t n = (size_t)(lf - (c->in + c->pos));

			*line = c->in + c->pos;
			*len = n > 0 && (*line)[n - 1] == '\r' ? n - 1 : n;
			c->pos += n + 1;
			return 0;
		}
		if (c->pos > 0) {
			memmove(c->in, c->in + c->pos, c->end - c->pos);
			c->end -= c->pos;
			c->pos = 0;
		}
		if (c->end == sizeof(c->in))
			return conn_fail(c, "line longer than %zu bytes", sizeof(c->in));
		if (conn_fill(c) < 0)
			return -1;
	}
}

/* A status line into c->line: 0 for +OK, -1 otherwise. */
static int conn_status(struct conn *c, const char *what)
{
	const char *l;
	size_t n;

	if (conn_next_line(c, &l, &n) < 0)
		return -1;
	(void)str_fmt(c->line, sizeof(c->line), "%.*s", (int)(n < 400 ? n : 400), l);
	if (strncmp(c->line, "+OK", 3) != 0)
		return conn_fail(c, "%s: %s", what, c->line);
	return 0;
}

static int conn_send(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int conn_send(struct conn *c, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(text) || write_all(c->fd, text, (size_t)n) < 0)
		return conn_fail(c, "write: %s", strerror(errno));
	return 0;
}

static int conn_open(struct conn *c, const struct options *o)
{
	c->pos = c->end = 0;
	c->err[0] = '\0';
	c->fd = loadgen_connect(o->host, o->port, o->timeout_s, c->err, sizeof(c->err));
	if (c->fd < 0)
		return -1;
	return conn_status(c, "greeting");
}

static int conn_login(struct conn *c, const struct options *o, long user)
{
	char name[MAX_USER];

	loadgen_user(o->users, user, name, sizeof(name));
	if (conn_send(c, "USER %s\r\n", name) < 0 || conn_status(c, "USER") < 0 ||
	    conn_send(c, "PASS %s\r\n", o->password) < 0 || conn_status(c, "PASS") < 0)
		return -1;
	return 0;
}

static int conn_quit(struct conn *c)
{
	return conn_send(c, "QUIT\r\n") < 0 || conn_status(c, "QUIT") < 0 ? -1 : 0;
}

/* RETR n: the message's size in bytes once unstuffed (must equal the announced size). */
static int conn_retr(struct conn *c, long n, unsigned long long *bytes)
{
	unsigned long long want, got = 0;
	const char *l;
	size_t len;

	if (conn_send(c, "RETR %ld\r\n", n) < 0 || conn_status(c, "RETR") < 0)
		return -1;
	if (sscanf(c->line, "+OK %llu", &want) != 1)
		return conn_fail(c, "RETR %ld: no size in \"%s\"", n, c->line);
	for (;;) {
		if (conn_next_line(c, &l, &len) < 0)
			return -1;
		if (len == 1 && l[0] == '.')
			break;
		got += len + 2 - (len > 0 && l[0] == '.');
	}
	if (got != want)
		return conn_fail(c, "RETR %ld: %llu bytes, announced %llu", n, got, want);
	*bytes += got;
	return 0;
}

/* ---- workers ----------------------------------------------------------------------------- */

static void worker_error(struct worker *w, struct conn *c)
{
	w->errors++;
	if (w->err[0] == '\0')
		(void)str_copy(w->err, sizeof(w->err), c->err[0] ? c->err : "unknown error");
}

static void *login_worker(void *arg)
{
	struct worker *w = arg;
	const struct options *o = w->o;
	struct conn c = { .fd = -1 };
	double end = loadgen_now() + o->seconds;
	long user = w->index;

	(void)pthread_barrier_wait(w->start);
	while (loadgen_now() < end) {
		if (conn_open(&c, o) < 0 || conn_login(&c, o, user) < 0 || conn_quit(&c) < 0)
			worker_error(w, &c);
		else
			w->done++;
		conn_close(&c);
		user = (user + o->conns) % o->nusers;
	}
	return NULL;
}

static void *retr_worker(void *arg)
{
	struct worker *w = arg;
	const struct options *o = w->o;
	struct conn c = { .fd = -1 };
	bool ok = conn_open(&c, o) == 0 && conn_login(&c, o, w->index) == 0;

	(void)pthread_barrier_wait(w->start);
	for (long n = 1; ok && n <= o->count; n++) {
		if (conn_retr(&c, n, &w->bytes) < 0)
			ok = false;
		else
			w->done++;
	}
	w->retr_end = loadgen_now();
	if (!ok || conn_quit(&c) < 0)
		worker_error(w, &c);
	w->quit_s = loadgen_now() - w->retr_end;
	conn_close(&c);
	return NULL;
}

int main(int argc, char **argv)
{
	struct options o;
	struct worker *ws;
	pthread_barrier_t start;
	long done = 0, errors = 0;
	unsigned long long bytes = 0;
	const char *first = NULL;
	double t0, secs, retr_end = 0, quit_s = 0;

	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv, &o);
	ws = calloc((size_t)o.conns, sizeof(*ws));
	if (ws == NULL || pthread_barrier_init(&start, NULL, (unsigned)o.conns + 1) != 0)
		return 1;
	for (int i = 0; i < o.conns; i++) {
		ws[i] = (struct worker){ .index = i, .o = &o, .start = &start };
		if (pthread_create(&ws[i].tid, NULL, o.mode == MODE_LOGIN ? login_worker :
				   retr_worker, &ws[i]) != 0)
			return 1;
	}
	(void)pthread_barrier_wait(&start);
	t0 = loadgen_now();
	for (int i = 0; i < o.conns; i++) {
		(void)pthread_join(ws[i].tid, NULL);
		done += ws[i].done;
		errors += ws[i].errors;
		bytes += ws[i].bytes;
		retr_end = ws[i].retr_end > retr_end ? ws[i].retr_end : retr_end;
		quit_s = ws[i].quit_s > quit_s ? ws[i].quit_s : quit_s;
		if (first == NULL && ws[i].err[0])
			first = ws[i].err;
	}
	secs = (o.mode == MODE_RETR ? retr_end : loadgen_now()) - t0;
	if (o.mode == MODE_LOGIN)
		printf("mode=login conns=%d logins=%ld errors=%ld seconds=%.2f rate=%.1f cpu_s=%.2f\n",
		       o.conns, done, errors, secs, (double)done / secs, loadgen_cpu_seconds());
	else
		printf("mode=retr conns=%d messages=%ld bytes=%llu errors=%ld seconds=%.3f "
		       "rate=%.1f mib_s=%.1f quit_ms=%.1f cpu_s=%.2f\n", o.conns, done, bytes,
		       errors, secs, (double)done / secs, (double)bytes / secs / 1048576.0,
		       quit_s * 1000.0, loadgen_cpu_seconds());
	if (errors > 0)
		fprintf(stderr, "pop3-load: %ld errors, the first: %s\n", errors, first ? first : "?");
	if (o.mode == MODE_RETR && done != o.count * o.conns)
		errors++;
	free(ws);
	return errors > 0 ? 1 : 0;
}
