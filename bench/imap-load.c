/*
 * bench/imap-load.c: imap-load, the load generator of bench/imap.sh (issue 6). It speaks
 * plain IMAP4rev1 over TCP to any server, so Postern and Dovecot see the very same client.
 *
 *   imap-load login  -p PORT -U USERS -w PASS [-c CONNS] [-n NUSERS] [-d SECONDS]
 *       CONNS threads each loop connect, greeting, LOGIN, LOGOUT, close for SECONDS;
 *       thread i logs in as user i, i+CONNS, ... (mod NUSERS), so no user ever has two
 *       connections at once (Dovecot's mail_max_userip_connections would count them).
 *   imap-load fetch  -p PORT -U USER -w PASS -x COUNT
 *       one connection: LOGIN, then the clock runs over SELECT INBOX and
 *       UID FETCH 1:* (FLAGS UID RFC822.SIZE); EXISTS and the FETCH responses must be COUNT.
 *   imap-load append -p PORT -U USERS -w PASS [-c CONNS] [-m MESSAGES] [-s SIZE]
 *       CONNS connections (user i each) log in, wait for each other, then APPEND MESSAGES
 *       messages of SIZE bytes in all to their INBOX (synchronizing literals, one at a time).
 *   imap-load idle   -p PORT -U USERS -w PASS [-c CONNS]
 *       CONNS connections (user i each) log in and SELECT INBOX, then "ready" is printed and
 *       they stay idle until standard input reaches end of file; then LOGOUT.
 *
 * USERS is a login name in which '#' stands for the user's number (u#@bench.test gives
 * u0@bench.test, u1@bench.test, ...). Every run prints one line of key=value pairs,
 * including the client's own CPU time (cpu_s) so that it can be seen not to be the
 * bottleneck, and exits 1 if anything went wrong (a refused login, a wrong count, a server
 * that does not answer within -t seconds, which a half-written server must not turn into a
 * hang), 2 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
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

#include "buf.h"
#include "loadgen.h"
#include "util.h"

#define MAX_CONNS	2000
#define MAX_USER	200
#define LINE_LIMIT	(1 << 20)	/* one response line, literals included */
#define MAX_SIZE	(10 << 20)	/* APPEND message size */

enum mode { MODE_LOGIN, MODE_FETCH, MODE_APPEND, MODE_IDLE };

struct options {
	enum mode mode;
	const char *host, *users, *password;
	int port, conns, nusers, timeout_s;
	long messages, size, expect;
	double seconds;
};

/* One IMAP client connection. */
struct conn {
	int fd;
	unsigned tagseq;
	char in[65536];
	size_t pos, end;
	struct buf line;		/* the response being read, literals included */
	long exists, fetches;		/* from untagged responses since the last command */
	char err[256];			/* what went wrong, for the one error message */
};

/* What one worker thread did. */
struct worker {
	pthread_t tid;
	int index;
	const struct options *o;
	pthread_barrier_t *start;
	const char *message;		/* APPEND body */
	long todo, done, errors;
	uint32_t *lat_us;
	size_t nlat, caplat;
	char err[256];
};

static void usage(void)
{
	fprintf(stderr,
		"usage: imap-load login|fetch|append|idle -p PORT -U USER -w PASSWORD [-H HOST]\n"
		"       [-c CONNS] [-n NUSERS] [-d SECONDS] [-x COUNT] [-m MESSAGES] [-s SIZE]\n"
		"       [-t TIMEOUT]   ('#' in USER is the user's number)\n");
	exit(2);
}

static enum mode parse_mode(const char *s)
{
	static const char *const names[] = { "login", "fetch", "append", "idle" };

	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		if (strcmp(s, names[i]) == 0)
			return (enum mode)i;
	usage();
	return MODE_LOGIN;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	int c;

	if (argc < 2)
		usage();
	*o = (struct options){ .mode = parse_mode(argv[1]), .host = "127.0.0.1", .conns = 1,
			       .nusers = 0, .timeout_s = 10, .messages = 2000, .size = 4096,
			       .expect = -1, .seconds = 5 };
	optind = 2;
	while ((c = getopt(argc, argv, "H:p:U:w:c:n:d:x:m:s:t:")) != -1) {
		switch (c) {
		case 'H': o->host = optarg; break;
		case 'p': o->port = (int)loadgen_num("imap-load", optarg, 1, 65535, "-p"); break;
		case 'U': o->users = optarg; break;
		case 'w': o->password = optarg; break;
		case 'c': o->conns = (int)loadgen_num("imap-load", optarg, 1, MAX_CONNS, "-c"); break;
		case 'n': o->nusers = (int)loadgen_num("imap-load", optarg, 1, 1000000, "-n"); break;
		case 'd': o->seconds = (double)loadgen_num("imap-load", optarg, 1, 3600, "-d"); break;
		case 'x': o->expect = loadgen_num("imap-load", optarg, 0, 100000000, "-x"); break;
		case 'm': o->messages = loadgen_num("imap-load", optarg, 1, 10000000, "-m"); break;
		case 's': o->size = loadgen_num("imap-load", optarg, 256, MAX_SIZE, "-s"); break;
		case 't': o->timeout_s = (int)loadgen_num("imap-load", optarg, 1, 3600, "-t"); break;
		default: usage();
		}
	}
	if (optind != argc || o->port == 0 || o->users == NULL || o->password == NULL ||
	    strlen(o->users) > MAX_USER / 2 || strpbrk(o->password, "\"\\\r\n") != NULL ||
	    strpbrk(o->users, "\"\\\r\n") != NULL || (o->mode == MODE_FETCH && o->expect < 0))
		usage();
	if (o->nusers == 0)
		o->nusers = o->conns;
	if (o->nusers < o->conns) {
		fprintf(stderr, "imap-load: -n must be at least -c (one connection per user)\n");
		exit(2);
	}
}

/* ---- one connection ------------------------------------------------------------------ */

static int conn_fail(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int conn_fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err[0] == '\0') {
		va_start(ap, fmt);
		(void)vsnprintf(c->err, sizeof(c->err), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int conn_read_more(struct conn *c)
{
	ssize_t n;

	if (c->pos == c->end)
		c->pos = c->end = 0;
	do
		n = recv(c->fd, c->in + c->end, sizeof(c->in) - c->end, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return conn_fail(c, "connection closed by the server");
	if (n < 0)
		return conn_fail(c, "%s", errno == EAGAIN ? "no answer within the timeout"
				 : strerror(errno));
	c->end += (size_t)n;
	return 0;
}

/* Append n raw bytes of input (a literal) to the current line. */
static int conn_read_literal(struct conn *c, size_t n)
{
	while (n > 0) {
		size_t take;

		if (c->pos == c->end && conn_read_more(c) < 0)
			return -1;
		take = c->end - c->pos < n ? c->end - c->pos : n;
		if (buf_append(&c->line, c->in + c->pos, take) < 0)
			return conn_fail(c, "response longer than %d bytes", LINE_LIMIT);
		c->pos += take;
		n -= take;
	}
	return 0;
}

/* The size of a literal announced at the end of the line read so far, or -1. */
static long literal_size(const struct buf *line, size_t from)
{
	const char *s = line->data + from, *end = line->data + line->len, *open;
	long long v;
	char num[24];

	if (line->len == from || end[-1] != '}')
		return -1;
	open = end - 1;
	while (open > s && open[-1] != '{')
		open--;
	if (open == s || (size_t)(end - 1 - open) >= sizeof(num))
		return -1;
	memcpy(num, open, (size_t)(end - 1 - open));
	num[end - 1 - open] = '\0';
	if (num[0] != '\0' && num[strlen(num) - 1] == '+')
		num[strlen(num) - 1] = '\0';
	return str_to_ll(num, 0, LINE_LIMIT, &v) < 0 ? -1 : (long)v;
}

/* Read one whole response into c->line (CRLF stripped, literals kept inline). */
static int conn_read_response(struct conn *c)
{
	size_t seg = 0;

	buf_reset(&c->line);
	for (;;) {
		char *nl;
		long lit;

		if (c->pos == c->end && conn_read_more(c) < 0)
			return -1;
		nl = memchr(c->in + c->pos, '\n', c->end - c->pos);
		if (nl == NULL) {
			if (buf_append(&c->line, c->in + c->pos, c->end - c->pos) < 0)
				return conn_fail(c, "response longer than %d bytes", LINE_LIMIT);
			c->pos = c->end;
			continue;
		}
		if (buf_append(&c->line, c->in + c->pos, (size_t)(nl - (c->in + c->pos))) < 0)
			return conn_fail(c, "response longer than %d bytes", LINE_LIMIT);
		c->pos = (size_t)(nl + 1 - c->in);
		if (c->line.len > 0 && c->line.data[c->line.len - 1] == '\r')
			c->line.data[--c->line.len] = '\0';
		lit = literal_size(&c->line, seg);
		if (lit < 0)
			return 0;
		if (conn_read_literal(c, (size_t)lit) < 0)
			return -1;
		seg = c->line.len;
	}
}

/* Note EXISTS and FETCH counts of an untagged response. */
static void conn_untagged(struct conn *c)
{
	const char *s = buf_cstr(&c->line) + 2;
	char *end;
	long n;

	if (*s < '0' || *s > '9')
		return;
	n = strtol(s, &end, 10);
	if (strcmp(end, " EXISTS") == 0)
		c->exists = n;
	else if (strncmp(end, " FETCH ", 7) == 0)
		c->fetches++;
}

static int conn_send(struct conn *c, const void *p, size_t n)
{
	if (write_all(c->fd, p, n) < 0)
		return conn_fail(c, "send: %s", errno == EAGAIN ? "timeout" : strerror(errno));
	return 0;
}

/* Read responses until the tagged one; 0 if it says OK. A "+" continuation request ends the
 * wait too when want_plus is set (APPEND), and returns 1. */
static int conn_wait(struct conn *c, const char *tag, const char *what, bool want_plus)
{
	size_t taglen = strlen(tag);

	for (;;) {
		const char *l;

		if (conn_read_response(c) < 0)
			return -1;
		l = buf_cstr(&c->line);
		if (want_plus && l[0] == '+')
			return 1;
		if (strncmp(l, "* BYE", 5) == 0 && strcmp(what, "LOGOUT") != 0)
			return conn_fail(c, "%s: %.200s", what, l);
		if (l[0] == '*' && l[1] == ' ') {
			conn_untagged(c);
			continue;
		}
		if (strncmp(l, tag, taglen) == 0 && l[taglen] == ' ') {
			if (strncmp(l + taglen + 1, "OK", 2) == 0)
				return 0;
			return conn_fail(c, "%s: %.200s", what, l);
		}
		if (l[0] != '+')
			return conn_fail(c, "%s: unexpected response: %.200s", what, l);
	}
}

/* Send "TAG ARGS\r\n" and wait for the tagged OK. */
static int conn_command(struct conn *c, const char *what, const char *args)
{
	char tag[16], cmd[512];
	int len;

	(void)str_fmt(tag, sizeof(tag), "a%u", ++c->tagseq);
	len = str_fmt(cmd, sizeof(cmd), "%s %s\r\n", tag, args);
	if (len < 0)
		return conn_fail(c, "%s: command too long", what);
	c->exists = -1;
	c->fetches = 0;
	if (conn_send(c, cmd, (size_t)len) < 0)
		return -1;
	return conn_wait(c, tag, what, false);
}

/* Connect and read the greeting; the socket times out after timeout_s in every call. */
static int conn_open(struct conn *c, const struct options *o)
{
	c->pos = c->end = 0;
	c->tagseq = 0;
	c->fd = loadgen_connect(o->host, o->port, o->timeout_s, c->err, sizeof(c->err));
	if (c->fd < 0)
		return -1;
	if (conn_read_response(c) < 0)
		return -1;
	if (strncmp(buf_cstr(&c->line), "* OK", 4) != 0)
		return conn_fail(c, "not an IMAP greeting: %.200s", buf_cstr(&c->line));
	return 0;
}

static int conn_login(struct conn *c, const struct options *o, long user)
{
	char name[MAX_USER], args[MAX_USER * 2];

	loadgen_user(o->users, user, name, sizeof(name));
	if (str_fmt(args, sizeof(args), "LOGIN \"%s\" \"%s\"", name, o->password) < 0)
		return conn_fail(c, "user name or password too long");
	return conn_command(c, "LOGIN", args);
}

/* LOGOUT: the server says BYE, then OK, then closes. */
static int conn_logout(struct conn *c)
{
	int rc = conn_command(c, "LOGOUT", "LOGOUT");

	conn_close(c);
	return rc;
}

static int conn_append(struct conn *c, const char *message, size_t size)
{
	char tag[16], cmd[96];
	int len, rc;

	(void)str_fmt(tag, sizeof(tag), "a%u", ++c->tagseq);
	len = str_fmt(cmd, sizeof(cmd), "%s APPEND INBOX {%zu}\r\n", tag, size);
	if (len < 0 || conn_send(c, cmd, (size_t)len) < 0)
		return -1;
	rc = conn_wait(c, tag, "APPEND", true);
	if (rc != 1)
		return rc < 0 ? -1 : conn_fail(c, "APPEND: OK before the literal was sent");
	if (conn_send(c, message, size) < 0 || conn_send(c, "\r\n", 2) < 0)
		return -1;
	return conn_wait(c, tag, "APPEND", false);
}

/* ---- workers --------------------------------------------------------------------------- */

static void worker_latency(struct worker *w, double secs)
{
	double us = secs * 1e6;

	if (w->nlat == w->caplat) {
		w->caplat = w->caplat ? 2 * w->caplat : 1024;
		w->lat_us = xreallocarray(w->lat_us, w->caplat, sizeof(*w->lat_us));
	}
	w->lat_us[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void worker_error(struct worker *w, struct conn *c)
{
	w->errors++;
	if (w->err[0] == '\0')
		(void)str_copy(w->err, sizeof(w->err), c->err[0] ? c->err : "unknown error");
	c->err[0] = '\0';
	conn_close(c);
}

/* login: connect + LOGIN + LOGOUT until the deadline. */
static void *login_worker(void *arg)
{
	struct worker *w = arg;
	const struct options *o = w->o;
	struct conn *c = xcalloc(1, sizeof(*c));
	long user = w->index;
	double end;

	buf_init(&c->line, LINE_LIMIT);
	c->fd = -1;
	pthread_barrier_wait(w->start);
	end = loadgen_now() + o->seconds;
	while (loadgen_now() < end) {
		double t0 = loadgen_now();

		if (conn_open(c, o) < 0 || conn_login(c, o, user) < 0 || conn_logout(c) < 0) {
			worker_error(w, c);
			usleep(10000);	/* a broken server must not turn this into a busy loop */
		} else {
			w->done++;
			worker_latency(w, loadgen_now() - t0);
		}
		user = (user + o->conns) % o->nusers;
	}
	buf_free(&c->line);
	free(c);
	return NULL;
}

/* append: log in, wait for the others, APPEND w->todo messages, LOGOUT. */
static void *append_worker(void *arg)
{
	struct worker *w = arg;
	const struct options *o = w->o;
	struct conn *c = xcalloc(1, sizeof(*c));
	bool ok;

	buf_init(&c->line, LINE_LIMIT);
	ok = conn_open(c, o) == 0 && conn_login(c, o, w->index) == 0;
	if (!ok)
		worker_error(w, c);
	pthread_barrier_wait(w->start);
	for (long i = 0; ok && i < w->todo; i++) {
		double t0 = loadgen_now();

		if (conn_append(c, w->message, (size_t)o->size) < 0) {
			worker_error(w, c);
			ok = false;
			break;
		}
		w->done++;
		worker_latency(w, loadgen_now() - t0);
	}
	if (ok && conn_logout(c) < 0)
		worker_error(w, c);
	buf_free(&c->line);
	free(c);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Latencies of all workers, sorted, into *all; returns how many. */
static size_t merge_latencies(struct worker *ws, int n, uint32_t **all)
{
	size_t total = 0, k = 0;

	for (int i = 0; i < n; i++)
		total += ws[i].nlat;
	*all = xcalloc(total ? total : 1, sizeof(**all));
	for (int i = 0; i < n; i++) {
		if (ws[i].nlat)
			memcpy(*all + k, ws[i].lat_us, ws[i].nlat * sizeof(**all));
		k += ws[i].nlat;
	}
	qsort(*all, total, sizeof(**all), cmp_u32);
	return total;
}

static double pct_ms(const uint32_t *lat, size_t n, double p)
{
	return n ? lat[(size_t)(p * (double)(n - 1) + 0.5)] / 1000.0 : 0.0;
}

/* A message of exactly size bytes with CRLF line ends, as a client would APPEND it. */
static char *make_message(long size)
{
	static const char head[] =
		"From: Bench Sender <sender@outside.example>\r\n"
		"To: Bench User <user@bench.test>\r\n"
		"Subject: imap-load APPEND benchmark\r\n"
		"Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
		"Message-ID: <imap-load@outside.example>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n";
	char *m = xmalloc((size_t)size + 1);
	size_t len = strlen(head), i = len;

	memcpy(m, head, len);
	while (i < (size_t)size) {	/* 76 letters and CRLF per line; the last one shorter */
		size_t col = (i - len) % 78;

		m[i++] = col == 76 ? '\r' : col == 77 ? '\n' : (char)('a' + col % 26);
	}
	m[size - 2] = '\r';
	m[size - 1] = '\n';
	m[size] = '\0';
	return m;
}

/* Start o->conns workers running fn, release them together, wait for all; the seconds
 * from release to the end of the last one go to *secs. */
static struct worker *run_workers(const struct options *o, void *(*fn)(void *),
				  const char *message, double *secs)
{
	struct worker *ws = xcalloc((size_t)o->conns, sizeof(*ws));
	pthread_barrier_t start;
	double t0;

	if (pthread_barrier_init(&start, NULL, (unsigned)o->conns + 1) != 0)
		abort();
	for (int i = 0; i < o->conns; i++) {
		ws[i] = (struct worker){ .index = i, .o = o, .start = &start, .message = message,
					 .todo = o->messages / o->conns +
						 (i < o->messages % o->conns ? 1 : 0) };
		if (pthread_create(&ws[i].tid, NULL, fn, &ws[i]) != 0) {
			fprintf(stderr, "imap-load: pthread_create failed\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	t0 = loadgen_now();
	for (int i = 0; i < o->conns; i++)
		pthread_join(ws[i].tid, NULL);
	*secs = loadgen_now() - t0;
	pthread_barrier_destroy(&start);
	return ws;
}

/* Print the summary line of login or append; the exit status. */
static int report_workers(const struct options *o, struct worker *ws, double secs)
{
	long done = 0, errors = 0;
	const char *err = NULL;
	uint32_t *lat;
	size_t n;

	for (int i = 0; i < o->conns; i++) {
		done += ws[i].done;
		errors += ws[i].errors;
		if (err == NULL && ws[i].err[0])
			err = ws[i].err;
	}
	n = merge_latencies(ws, o->conns, &lat);
	printf("mode=%s conns=%d done=%ld errors=%ld seconds=%.3f rate=%.1f p50_ms=%.2f "
	       "p99_ms=%.2f max_ms=%.2f cpu_s=%.2f\n", o->mode == MODE_LOGIN ? "login" : "append",
	       o->conns, done, errors, secs, secs > 0 ? (double)done / secs : 0.0,
	       pct_ms(lat, n, 0.50), pct_ms(lat, n, 0.99), pct_ms(lat, n, 1.0), loadgen_cpu_seconds());
	if (err)
		fprintf(stderr, "imap-load: %ld errors, the first: %s\n", errors, err);
	for (int i = 0; i < o->conns; i++)
		free(ws[i].lat_us);
	free(lat);
	free(ws);
	return errors || done == 0 ? 1 : 0;
}

static int run_login(const struct options *o)
{
	double secs;
	struct worker *ws = run_workers(o, login_worker, NULL, &secs);

	return report_workers(o, ws, secs);
}

static int run_append(const struct options *o)
{
	char *message = make_message(o->size);
	double secs;
	struct worker *ws;
	int rc;

	if (o->messages < o->conns) {
		fprintf(stderr, "imap-load: -m must be at least -c\n");
		exit(2);
	}
	ws = run_workers(o, append_worker, message, &secs);
	rc = report_workers(o, ws, secs);
	free(message);
	return rc;
}

/* fetch: the clock covers SELECT INBOX and UID FETCH 1:*, not the login. */
static int run_fetch(const struct options *o)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	double t0, t1, t2 = 0;
	long exists = -1, fetched = 0;
	int rc;

	buf_init(&c->line, LINE_LIMIT);
	rc = conn_open(c, o) == 0 && conn_login(c, o, 0) == 0 ? 0 : -1;
	t0 = t1 = loadgen_now();
	if (rc == 0 && (rc = conn_command(c, "SELECT", "SELECT INBOX")) == 0) {
		t1 = loadgen_now();
		exists = c->exists;
		rc = conn_command(c, "UID FETCH", "UID FETCH 1:* (FLAGS UID RFC822.SIZE)");
		t2 = loadgen_now();
		fetched = c->fetches;
	}
	if (rc == 0 && (exists != o->expect || fetched != o->expect))
		rc = conn_fail(c, "expected %ld messages, SELECT said %ld EXISTS and FETCH "
			       "returned %ld", o->expect, exists, fetched);
	if (rc == 0)
		rc = conn_logout(c);
	printf("mode=fetch exists=%ld fetched=%ld select_ms=%.1f fetch_ms=%.1f total_ms=%.1f "
	       "cpu_s=%.2f\n", exists, fetched, (t1 - t0) * 1e3, rc == 0 ? (t2 - t1) * 1e3 : 0,
	       rc == 0 ? (t2 - t0) * 1e3 : 0, loadgen_cpu_seconds());
	if (rc < 0)
		fprintf(stderr, "imap-load: %s\n", c->err);
	conn_close(c);
	buf_free(&c->line);
	free(c);
	return rc < 0 ? 1 : 0;
}

/* idle: o->conns logged-in connections with INBOX selected, until stdin is closed. */
static int run_idle(const struct options *o)
{
	struct conn *cs = xcalloc((size_t)o->conns, sizeof(*cs));
	char sink[256];
	int rc = 0, opened = 0;

	for (int i = 0; i < o->conns && rc == 0; i++, opened++) {
		buf_init(&cs[i].line, LINE_LIMIT);
		if (conn_open(&cs[i], o) < 0 || conn_login(&cs[i], o, i) < 0 ||
		    conn_command(&cs[i], "SELECT", "SELECT INBOX") < 0) {
			fprintf(stderr, "imap-load: connection %d: %s\n", i, cs[i].err);
			rc = -1;
		}
	}
	if (rc == 0) {
		printf("ready conns=%d\n", o->conns);
		fflush(stdout);
		while (read(0, sink, sizeof(sink)) > 0)
			;
	}
	for (int i = 0; i < opened; i++) {
		if (rc == 0 && cs[i].fd >= 0 && conn_logout(&cs[i]) < 0) {
			fprintf(stderr, "imap-load: LOGOUT %d: %s\n", i, cs[i].err);
			rc = -1;
		}
		conn_close(&cs[i]);
		buf_free(&cs[i].line);
	}
	printf("mode=idle conns=%d ok=%s cpu_s=%.2f\n", o->conns, rc == 0 ? "yes" : "no",
	       loadgen_cpu_seconds());
	free(cs);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct options o;

	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);	/* a server closing on us is an error to report, not death */
	switch (o.mode) {
	case MODE_LOGIN: return run_login(&o);
	case MODE_FETCH: return run_fetch(&o);
	case MODE_APPEND: return run_append(&o);
	case MODE_IDLE: return run_idle(&o);
	}
	return 2;
}
