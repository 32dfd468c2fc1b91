/*
 * qfcheck: validate queue files the way the queue daemon and qmgr read them, for tests.
 *
 *   qfcheck [-m] FILE...
 *
 * For each valid file prints "FILE: ok" and then its envelope, one "key=value" line each
 * (qid, sender, client, helo, auth, size, body, smtputf8, rcpt (repeated, as
 * "state address"), msg_len); with -m, only the message bytes of the single FILE go to
 * stdout. An invalid file prints "FILE: invalid: REASON" and makes the exit status 1.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queuefile.h"

static void print_envelope(const struct qf *q)
{
	const struct qf_envelope *e = &q->env;

	printf("qid=%s\nsender=%s\nclient=%s[%s]\nhelo=%s\nauth=%s\nsize=%llu\nbody=%d\n"
	       "smtputf8=%d\n", e->qid, e->sender, e->client_name, e->client_addr, e->helo,
	       e->auth_user ? e->auth_user : "", (unsigned long long)e->size, (int)e->body,
	       (e->flags & QF_F_SMTPUTF8) ? 1 : 0);
	for (size_t i = 0; i < e->nrcpt; i++)
		printf("rcpt=%s %s\n", qf_state_name((enum qf_state)e->rcpt[i].status.state),
		       e->rcpt[i].addr);
	printf("msg_len=%llu\n", (unsigned long long)q->msg_len);
}

static int dump_message(int fd, const struct qf *q)
{
	char buf[65536];
	off_t off = q->msg_off;
	uint64_t left = q->msg_len;

	while (left > 0) {
		ssize_t n = pread(fd, buf, left < sizeof(buf) ? left : sizeof(buf), off);

		if (n <= 0 || fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return 1;
		off += n;
		left -= (uint64_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 0, first = 1;
	int message = argc > 1 && strcmp(argv[1], "-m") == 0;

	if (argc < 2 + message) {
		fprintf(stderr, "usage: qfcheck [-m] FILE...\n");
		return 2;
	}
	for (int i = 1 + message; i < argc; i++) {
		char err[256];
		struct qf q;
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC);

		if (fd < 0 || qf_open_fd(fd, &q, err, sizeof(err)) < 0) {
			printf("%s: invalid: %s\n", argv[i], fd < 0 ? "cannot open" : err);
			rc = 1;
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (message) {
			rc |= dump_message(fd, &q);
		} else {
			printf("%s%s: ok\n", first ? "" : "\n", argv[i]);
			print_envelope(&q);
		}
		first = 0;
		qf_free(&q);
		close(fd);
	}
	return rc;
}
