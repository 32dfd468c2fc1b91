/*
 * sessionargs.c: a mail session's arguments and its Maildir inside the chroot (see
 * sessionargs.h).
 */
#include "sessionargs.h"

#include "buf.h"

#include <errno.h>
#include <getopt.h>
#include <unistd.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "util.h"

static long long id_arg(const char *s)
{
	long long v;

	return str_to_ll(s, 0, 0x7fffffff, &v) < 0 ? -1 : v;
}

void session_args_parse(int argc, char **argv, struct session_args *a, const char *prog)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->uid = a->gid = -1;
	a->prefix_fd = -1;
	a->service = a->mail = a->tag = a->rip = a->lip = a->method = "";
	optind = 1;
	while ((c = getopt(argc, argv, "c:s:U:u:g:H:M:q:r:l:t:Tm:P:")) != -1) {
		switch (c) {
		case 'c': a->conf = optarg; break;
		case 's': a->service = optarg; break;
		case 'U': a->user = optarg; break;
		case 'u': a->uid = id_arg(optarg); break;
		case 'g': a->gid = id_arg(optarg); break;
		case 'H': a->home = optarg; break;
		case 'M': a->mail = optarg; break;
		case 'q': if (str_to_ll(optarg, 0, INT64_MAX, &a->quota) < 0) a->quota = 0; break;
		case 'r': a->rip = optarg; break;
		case 'l': a->lip = optarg; break;
		case 't': a->tag = optarg; break;
		case 'T': a->tls = true; break;
		case 'm': a->method = optarg; break;
		case 'P': {
			long long fd;

			a->prefix_fd = str_to_ll(optarg, 3, 1024, &fd) == 0 ? (int)fd : -1;
			break;
		}
		default: break;
		}
	}
	if (!a->conf || !a->user || !a->home || a->uid < 0 || a->gid < 0 || a->home[0] != '/')
		msg_fatal("usage: %s -c CONF -U USER -u UID -g GID -H HOME [-M MAIL] [-t TAG] ... "
			  "(started by master only)", prog);
}

/* Does the path have a ".." component? */
static bool has_dotdot(const char *p)
{
	for (const char *c = p; (c = strstr(c, "..")) != NULL; c += 2)
		if ((c == p || c[-1] == '/') && (c[2] == '\0' || c[2] == '/'))
			return true;
	return false;
}

int session_maildir(const struct session_args *a, char *out, size_t outlen, char *err,
		    size_t errlen)
{
	const char *mail = a->mail && *a->mail ? a->mail : "~/Maildir";
	size_t hl = strlen(a->home);
	int rc;

	while (hl > 1 && a->home[hl - 1] == '/')
		hl--;
	if (strncmp(mail, "maildir:", 8) == 0)
		mail += 8;
	if (mail[0] == '~' && mail[1] == '/')
		rc = str_fmt(out, outlen, "/%s", mail + 2);
	else if (strncmp(mail, a->home, hl) == 0 && mail[hl] == '/')
		rc = str_copy(out, outlen, mail + hl);
	else
		return str_fmt(err, errlen, "mail location %s is outside the home %s", mail,
			       a->home), -1;
	if (rc < 0)
		return str_copy(err, errlen, "mail location too long"), -1;
	if (has_dotdot(out))
		return str_fmt(err, errlen, "mail location %s contains ..", mail), -1;
	return 0;
}

int session_read_prefix(struct session_args *a, struct buf *out)
{
	char chunk[4096];
	ssize_t n;
	int rc = 0;

	if (a->prefix_fd < 0)
		return 0;
	while ((n = read(a->prefix_fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(out, chunk, (size_t)n) < 0) {
			rc = -1;
			break;
		}
	}
	(void)close(a->prefix_fd);
	a->prefix_fd = -1;
	return rc;
}
