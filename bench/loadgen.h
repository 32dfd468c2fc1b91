/*
 * loadgen.h: what the protocol load generators of bench/ (imap-load, pop3-load) share:
 * the clock, number arguments, numbered user names, CPU time, and a TCP connection with
 * timeouts on every call.
 */
#ifndef POSTERN_BENCH_LOADGEN_H
#define POSTERN_BENCH_LOADGEN_H

#include <stddef.h>

double loadgen_now(void);		/* monotonic seconds */
double loadgen_cpu_seconds(void);	/* user + system time of this process */
/* A whole number in [min, max], or exit 2 naming prog and what. */
long loadgen_num(const char *prog, const char *s, long min, long max, const char *what);
/* users with its '#' replaced by n ("u#@bench.test" -> "u7@bench.test"). */
void loadgen_user(const char *users, long n, char *out, size_t outlen);
/* A TCP connection to host:port (IPv4 literal) with TCP_NODELAY and send/receive
 * timeouts of timeout_s; the descriptor, or -1 with the reason in err. */
int loadgen_connect(const char *host, int port, int timeout_s, char *err, size_t errlen);

#endif
