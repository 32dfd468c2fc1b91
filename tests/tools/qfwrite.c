/*
 * qfwrite: a test tool that writes and checks queue files with lib/queuefile.h, so the
 * Python end-to-end tests never duplicate the format.
 *
 *   qfwrite (--fd N | --out PATH) [--qid ID] [--sender S] --rcpt R [--rcpt R ...]
 *           [--auth-user U] [--truncate N | --chop N] < message
 *       Writes a queue file (message from stdin) into descriptor N or a new file PATH.
 *       --truncate N cuts the finished file to N bytes, --chop N removes its last N bytes
 *       (both make a torn file). Exit 0, or 1 with the reason on stderr.
 *   qfwrite --check PATH
 *       Validates PATH and prints "qid=ID nrcpt=N msglen=N sender=<S> auth=U client=NAME
 *       rcpt=A,B" on one line; exit 0, or 1 with the validator's reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queuefile.h"
#include "util.h"

#define MAX_RCPT 1000

static int check(const char *path)
{
	char err[256];
	struct qf q;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		fprintf(stderr, "qfwrite: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (qf_open_fd(fd, &q, err, sizeof(err)) < 0) {
		fprintf(stderr, "qfwrite: %s: %s\n", path, err);
		close(fd);
		return 1;
	}
	printf("qid=%s nrcpt=%zu msglen=%llu sender=<%s> auth=%s client=%s rcpt=", q.env.qid,
	       q.env.nrcpt, (unsigned long long)q.msg_len, q.env.sender,
	       q.env.auth_user ? q.env.auth_user : "", q.env.client_name);
	for (size_t i = 0; i < q.env.nrcpt; i++)
		printf("%s%s", i ? "," : "", q.env.rcpt[i].addr);
	printf("\n");
	qf_free(&q);
	close(fd);
	return 0;
}

static int copy_stdin(struct qf_writer *w)
{
	char buf[65536];
	ssize_t r;

	while ((r = read(0, buf, sizeof(buf))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || qf_writer_body(w, buf, (size_t)r) < 0)
			return -1;
	}
	return 0;
}

struct opts {
	int fd;
	const char *out, *check;
	struct qf_envelope env;
	long long truncate, chop;
};

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "fd", required_argument, NULL, 'f' },	{ "out", required_argument, NULL, 'o' },
		{ "qid", required_argument, NULL, 'i' },	{ "sender", required_argument, NULL, 's' },
		{ "rcpt", required_argument, NULL, 'r' },	{ "auth-user", required_argument, NULL, 'u' },
		{ "truncate", required_argument, NULL, 't' }, { "chop", required_argument, NULL, 'c' },
		{ "check", required_argument, NULL, 'k' },	{ NULL, 0, NULL, 0 },
	};
	static char empty[] = "", client[] = "localhost";
	int ch;

	o->env.sender = o->env.client_addr = o->env.helo = empty;
	o->env.client_name = client;
	static struct qf_rcpt rcpts[MAX_RCPT];	/* static: a one-shot tool, nothing to free */

	o->env.rcpt = rcpts;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f': o->fd = atoi(optarg); break;
		case 'o': o->out = optarg; break;
		case 'i': str_copy(o->env.qid, sizeof(o->env.qid), optarg); break;
		case 's': o->env.sender = optarg; break;
		case 'u': o->env.auth_user = optarg; break;
		case 't': o->truncate = atoll(optarg); break;
		case 'c': o->chop = atoll(optarg); break;
		case 'k': o->check = optarg; break;
		case 'r':
			if (o->env.nrcpt < MAX_RCPT)
				o->env.rcpt[o->env.nrcpt++].addr = optarg;
			break;
		default: exit(2);
		}
	}
}

int main(int argc, char **argv)
{
	struct opts o = { .fd = -1, .truncate = -1 };
	struct qf_writer *w;
	char err[256];
	struct stat st;

	parse(argc, argv, &o);
	if (o.check)
		return check(o.check);
	if (o.env.qid[0] == '\0')
		qid_new(o.env.qid, sizeof(o.env.qid));
	o.env.arrival_ms = wall_ms();
	if (o.out)
		o.fd = open(o.out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (o.fd < 0) {
		fprintf(stderr, "qfwrite: no output: %s\n", strerror(errno));
		return 1;
	}
	if ((w = qf_writer_begin(o.fd, &o.env, err, sizeof(err))) == NULL) {
		fprintf(stderr, "qfwrite: %s\n", err);
		return 1;
	}
	if (copy_stdin(w) < 0 || qf_writer_end(w) < 0) {
		fprintf(stderr, "qfwrite: write: %s\n", strerror(errno));
		return 1;
	}
	if (o.chop > 0 && fstat(o.fd, &st) == 0)
		o.truncate = st.st_size > o.chop ? st.st_size - o.chop : 0;
	if (o.truncate >= 0 && ftruncate(o.fd, (off_t)o.truncate) < 0) {
		fprintf(stderr, "qfwrite: truncate: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
