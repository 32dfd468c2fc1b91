/*
 * bench/authd.c: authd-bench, a load generator for postern-authd (issue 3).
 *
 * Opens N connections to authd's socket and keeps W AUTH_REQ_RCPT requests in flight on
 * each (closed loop: a reply triggers the next request), all multiplexed with epoll in one
 * thread, for D seconds. Two workloads:
 *   -a ADDRESS   the same address every time: after the first, authd answers from its cache;
 *   -u DOMAIN    a new address in DOMAIN every time (random, never repeated), so every
 *                request goes to the database (authd caches negative answers too, so the
 *                addresses must be new; DOMAIN should be a virtual domain, so authd runs the
 *                whole alias/mailbox/catch-all chain).
 * Prints one line of key=value pairs: requests per second and p50/p99/max latency in
 * microseconds, plus the answers by status. Runs as root (authd's allow-list lets root ask
 * rcpt), or as a user on the rcpt allow-list.
 *
 *   authd-bench -s SOCKET (-a ADDRESS | -u DOMAIN) [-c CONNS] [-d SECONDS] [-w WINDOW]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "authproto.h"
#include "ipc.h"
#include "util.h"

#define MAX_CONNS	1000
#define MAX_WINDOW	64
#define DRAIN_MS	5000	/* how long to wait for answers still in flight at the end */

struct options {
	const char *socket;
	const char *address;	/* cached workload */
	const char *domain;	/* uncached workload */
	int conns, window;
	double seconds;
};

struct conn {
	int fd;
	uint32_t seq;			/* request counter; the id is seq << 8 | slot */
	int inflight;
	int64_t sent_ns[MAX_WINDOW];	/* per slot; 0 = free */
};

struct stats {
	uint64_t sent, ok, permfail, tempfail, errors;
	uint32_t *lat_us;		/* one per answer */
	size_t nlat, caplat;
	int64_t first_ns, last_ns;
};

static struct ipc_msg msg;		/* one at a time: encode or decode */
static unsigned char frame[IPC_MAX_FRAME + 1];
static uint32_t run_tag;		/* random per run: addresses never repeat across runs */
static uint64_t addr_counter;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: authd-bench -s SOCKET (-a ADDRESS | -u DOMAIN) [-c CONNS] "
		"[-d SECONDS] [-w WINDOW]\n");
	exit(2);
}

static long parse_num(const char *s, long min, long max, const char *what)
{
	long long v;

	if (str_to_ll(s, min, max, &v) < 0) {
		fprintf(stderr, "authd-bench: %s must be %ld..%ld\n", what, min, max);
		exit(2);
	}
	return (long)v;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	int c;

	*o = (struct options){ .conns = 50, .window = 1, .seconds = 5 };
	while ((c = getopt(argc, argv, "s:a:u:c:d:w:")) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'a': o->address = optarg; break;
		case 'u': o->domain = optarg; break;
		case 'c': o->conns = (int)parse_num(optarg, 1, MAX_CONNS, "-c"); break;
		case 'd': o->seconds = (double)parse_num(optarg, 1, 3600, "-d"); break;
		case 'w': o->window = (int)parse_num(optarg, 1, MAX_WINDOW, "-w"); break;
		default: usage();
		}
	}
	if (optind != argc || o->socket == NULL || (o->address == NULL) == (o->domain == NULL))
		usage();
	if ((o->address && strlen(o->address) > AUTH_MAX_ADDRESS) ||
	    (o->domain && strlen(o->domain) > AUTH_MAX_ADDRESS - 32)) {
		fprintf(stderr, "authd-bench: address or domain too long\n");
		exit(2);
	}
}

/* The address of the next request: fixed, or new every time. */
static const char *next_address(const struct options *o, char *buf, size_t buflen)
{
	if (o->address)
		return o->address;
	if (str_fmt(buf, buflen, "bench%08" PRIx32 "x%" PRIu64 "@%s", run_tag, addr_counter++,
		    o->domain) < 0)
		abort();	/* bounded by parse_args */
	return buf;
}

static int send_request(const struct options *o, struct conn *c, int slot, struct stats *st)
{
	char addr[AUTH_MAX_ADDRESS + 64];
	uint32_t id = (c->seq++ << 8) | (uint32_t)slot;
	size_t len;

	ipc_msg_init(&msg, AUTH_REQ_RCPT, id);
	if (ipc_put_str(&msg, "address", next_address(o, addr, sizeof(addr))) < 0 ||
	    ipc_encode(&msg, frame, sizeof(frame), &len) < 0)
		return -1;
	c->sent_ns[slot] = now_ns();
	if (send(c->fd, frame, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -1;
	c->inflight++;
	st->sent++;
	return 0;
}

static void record(struct stats *st, int status, int64_t sent, int64_t now)
{
	int64_t us = (now - sent) / 1000;

	if (st->nlat == st->caplat) {
		st->caplat = st->caplat ? 2 * st->caplat : 1 << 16;
		st->lat_us = xreallocarray(st->lat_us, st->caplat, sizeof(*st->lat_us));
	}
	st->lat_us[st->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	if (st->first_ns == 0)
		st->first_ns = sent;
	st->last_ns = now;
	if (status == IPC_OK)
		st->ok++;
	else if (status == IPC_PERMFAIL)
		st->permfail++;
	else
		st->tempfail++;
}

/* Read one answer; -1 if the connection is broken or the answer is not one we await. */
static int read_answer(struct conn *c, struct stats *st, int *slot)
{
	ssize_t n = recv(c->fd, frame, sizeof(frame), 0);

	if (n <= 0 || (size_t)n > IPC_MAX_FRAME || ipc_decode(&msg, frame, (size_t)n) < 0 ||
	    msg.type != AUTH_REQ_RCPT)
		return -1;
	*slot = (int)(msg.id & 0xff);
	if (*slot >= MAX_WINDOW || c->sent_ns[*slot] == 0)
		return -1;
	record(st, msg.status, c->sent_ns[*slot], now_ns());
	c->sent_ns[*slot] = 0;
	c->inflight--;
	return 0;
}

static void conn_fail(int ep, struct conn *c, struct stats *st)
{
	st->errors++;
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->inflight = 0;
}

static struct conn *open_conns(const struct options *o, int ep)
{
	struct conn *conns = xcalloc((size_t)o->conns, sizeof(*conns));

	for (int i = 0; i < o->conns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };

		conns[i].fd = ipc_connect(o->socket, 5000);
		if (conns[i].fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) {
			fprintf(stderr, "authd-bench: connect %s: %s\n", o->socket, strerror(errno));
			exit(1);
		}
	}
	return conns;
}

/* The main loop: answers come in, new requests go out until the deadline, then drain. */
static void run(const struct options *o, struct conn *conns, int ep, struct stats *st)
{
	int64_t end = now_ns() + (int64_t)(o->seconds * 1e9);
	int64_t drain_end = end + (int64_t)DRAIN_MS * 1000000;
	struct epoll_event evs[64];
	uint64_t inflight = 0;

	for (int i = 0; i < o->conns; i++)
		for (int s = 0; s < o->window; s++)
			if (send_request(o, &conns[i], s, st) == 0)
				inflight++;
	while (inflight > 0 && now_ns() < drain_end) {
		int n = epoll_wait(ep, evs, 64, 100);

		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			int slot;

			if (c->fd < 0)
				continue;
			if (read_answer(c, st, &slot) < 0) {
				inflight -= (uint64_t)c->inflight;
				conn_fail(ep, c, st);
				continue;
			}
			inflight--;
			if (now_ns() < end) {
				if (send_request(o, c, slot, st) < 0) {
					inflight -= (uint64_t)c->inflight;
					conn_fail(ep, c, st);
				} else {
					inflight++;
				}
			}
		}
	}
	st->errors += inflight;		/* never answered */
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static uint32_t percentile(const struct stats *st, double p)
{
	size_t i;

	if (st->nlat == 0)
		return 0;
	i = (size_t)(p * (double)(st->nlat - 1) + 0.5);
	return st->lat_us[i];
}

static void report(const struct options *o, struct stats *st)
{
	double secs = st->last_ns > st->first_ns ? (double)(st->last_ns - st->first_ns) / 1e9 : 0;
	uint64_t answered = st->ok + st->permfail + st->tempfail;

	qsort(st->lat_us, st->nlat, sizeof(*st->lat_us), cmp_u32);
	printf("mode=%s conns=%d window=%d seconds=%.2f requests=%" PRIu64 " rate=%.0f "
	       "p50_us=%" PRIu32 " p99_us=%" PRIu32 " max_us=%" PRIu32 " ok=%" PRIu64
	       " permfail=%" PRIu64 " tempfail=%" PRIu64 " errors=%" PRIu64 "\n",
	       o->address ? "cached" : "uncached", o->conns, o->window, secs, answered,
	       secs > 0 ? (double)answered / secs : 0.0, percentile(st, 0.50),
	       percentile(st, 0.99), percentile(st, 1.0), st->ok, st->permfail, st->tempfail,
	       st->errors);
}

/* One request before the clock starts, so the cached workload measures cache hits only. */
static void warm_up(const struct options *o)
{
	struct ipc_msg *req = xcalloc(1, sizeof(*req)), *rep = xcalloc(1, sizeof(*rep));
	int fd = ipc_connect(o->socket, 5000);

	if (fd < 0) {
		fprintf(stderr, "authd-bench: connect %s: %s\n", o->socket, strerror(errno));
		exit(1);
	}
	ipc_msg_init(req, AUTH_REQ_RCPT, 1);
	if (ipc_put_str(req, "address", o->address) < 0 || ipc_call(fd, req, rep, 10000) < 0) {
		fprintf(stderr, "authd-bench: no answer from authd: %s\n", strerror(errno));
		exit(1);
	}
	close(fd);
	free(req);
	free(rep);
}

int main(int argc, char **argv)
{
	struct options o;
	struct stats st = { 0 };
	struct conn *conns;
	int ep;

	parse_args(argc, argv, &o);
	if (getrandom(&run_tag, sizeof(run_tag), 0) != (ssize_t)sizeof(run_tag))
		run_tag = (uint32_t)now_ns() ^ (uint32_t)getpid();
	if (o.address)
		warm_up(&o);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("authd-bench: epoll_create1");
		return 1;
	}
	conns = open_conns(&o, ep);
	run(&o, conns, ep, &st);
	report(&o, &st);
	for (int i = 0; i < o.conns; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	free(conns);
	free(st.lat_us);
	close(ep);
	return st.errors ? 1 : 0;
}
