/*
 * options.c: postern-sendmail's command line, Postfix's sendmail options. The name the
 * program runs under sets the default mode (mailq: -bp, newaliases: -bi). Options stop at
 * the first non-option argument, as Postfix's do on Linux ("+" in the getopt string): an
 * address after the recipients is never taken for an option, so a recipient such as
 * "-Cfoo" coming from a careless script cannot change the configuration file.
 *
 * Options of Sendmail that make no sense here are accepted and ignored, so scripts written
 * for Sendmail or Postfix keep working: -o X (except -oi), -O X, -B 7BIT, -G, -U, -L X,
 * -X X, -h N, -p X, -e X, -c, -m, -n, -x, -qINTERVAL.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sendmail.h"
#include "address.h"
#include "util.h"

#define OPTSTRING	"+B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:q::r:tvx"

__attribute__((noreturn))
static void usage(const struct sendmail *sm, const char *why)
{
	if (why)
		fprintf(stderr, "%s: %s\n", sm->prog, why);
	fprintf(stderr, "usage: sendmail [-t] [-i] [-f sender] [-F full_name] [-N dsn] "
		"[-R full|hdrs] [-V envid] [-C config] [-v] [--] [recipient ...]\n"
		"       sendmail -bs | -bp | -bi | -q   (see postern-sendmail(1))\n");
	exit(EX_USAGE);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* -N never | success,failure,delay (any order, any case). */
static unsigned parse_notify(const struct sendmail *sm, const char *arg)
{
	char *copy = xstrdup(arg), *save = NULL, *tok;
	unsigned bits = 0;

	for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (strcasecmp(tok, "never") == 0)
			bits |= QF_NOTIFY_NEVER;
		else if (strcasecmp(tok, "success") == 0)
			bits |= QF_NOTIFY_SUCCESS;
		else if (strcasecmp(tok, "failure") == 0)
			bits |= QF_NOTIFY_FAILURE;
		else if (strcasecmp(tok, "delay") == 0)
			bits |= QF_NOTIFY_DELAY;
		else
			usage(sm, "-N: want never, or a list of success, failure and delay");
	}
	free(copy);
	if (bits == 0 || ((bits & QF_NOTIFY_NEVER) && bits != QF_NOTIFY_NEVER))
		usage(sm, "-N: want never, or a list of success, failure and delay");
	return bits;
}

/* -V: an RFC 3461 ENVID, printable ASCII without spaces. */
static const char *check_envid(const struct sendmail *sm, const char *arg)
{
	size_t n = strlen(arg);

	if (n == 0 || n > QF_MAX_ENVID)
		usage(sm, "-V: the envelope id must have 1 to 100 characters");
	for (size_t i = 0; i < n; i++)
		if (arg[i] < '!' || arg[i] > '~')
			usage(sm, "-V: the envelope id must be printable ASCII without spaces");
	return arg;
}

static void set_mode(struct sendmail *sm, const char *arg)
{
	if (strcmp(arg, "m") == 0)
		sm->mode = SM_DELIVER;
	else if (strcmp(arg, "s") == 0)
		sm->mode = SM_SMTP;
	else if (strcmp(arg, "p") == 0)
		sm->mode = SM_MAILQ;
	else if (strcmp(arg, "i") == 0)
		sm->mode = SM_NEWALIASES;
	else if (strcmp(arg, "d") == 0 || strcmp(arg, "D") == 0)
		sm_die(sm, EX_USAGE, "-b%s: Postern's SMTP server is started by postern-master "
		       "(systemctl start postern), not by sendmail", arg);
	else if (strcmp(arg, "v") == 0)
		sm_die(sm, EX_USAGE, "-bv: address verification is not supported");
	else
		usage(sm, "-b: want m, s, p or i");
}

/* -q: flush the queue; -qINTERVAL (Sendmail's daemon mode) is ignored, -qR/-qS flush all. */
static void set_queue_mode(struct sendmail *sm, const char *arg)
{
	if (arg == NULL || arg[0] == 'R' || arg[0] == 'S' || arg[0] == 'I')
		sm->mode = SM_FLUSH;
	else
		sm->mode = SM_NOTHING;
}

static void option(struct sendmail *sm, int c, const char *arg)
{
	switch (c) {
	case 'B':
		if (strcasecmp(arg, "8BITMIME") == 0)
			sm->body_8bit = true;
		else if (strcasecmp(arg, "7BIT") != 0)
			usage(sm, "-B: want 7BIT or 8BITMIME");
		break;
	case 'C': sm->conf_path = arg; sm->conf_given = true; break;
	case 'F': sm->fullname = arg; break;
	case 'I': sm->mode = SM_NEWALIASES; break;
	case 'N': sm->notify = parse_notify(sm, arg); break;
	case 'R':
		if (strcasecmp(arg, "full") == 0)
			sm->ret = QF_RET_FULL;
		else if (strcasecmp(arg, "hdrs") == 0)
			sm->ret = QF_RET_HDRS;
		else
			usage(sm, "-R: want full or hdrs");
		break;
	case 'V': sm->envid = check_envid(sm, arg); break;
	case 'b': set_mode(sm, arg); break;
	case 'f': case 'r': sm->sender_arg = arg; break;
	case 'i': sm->dot_ends = false; break;
	case 'o': if (arg[0] == 'i' && arg[1] == '\0') sm->dot_ends = false; break;
	case 'q': set_queue_mode(sm, arg); break;
	case 't': sm->extract = true; break;
	case 'v': sm->verbose++; break;
	case 'G': case 'U': case 'c': case 'm': case 'n': case 'x':	/* Sendmail's, ignored */
	case 'L': case 'O': case 'X': case 'e': case 'h': case 'p':
		break;
	default:
		usage(sm, NULL);
	}
}

void options_parse(struct sendmail *sm, int argc, char **argv)
{
	const char *name = argc > 0 ? base_name(argv[0]) : "sendmail";
	const char *env = getenv("POSTERN_CONFIG");
	int c;

	sm->conf_path = "/etc/postern/postern.conf";
	if (env != NULL && env[0] != '\0') {
		sm->conf_path = env;
		sm->conf_given = true;
	}
	if (strcmp(name, "mailq") == 0) {
		sm->prog = "mailq";
		sm->mode = SM_MAILQ;
	} else if (strcmp(name, "newaliases") == 0) {
		sm->prog = "newaliases";
		sm->mode = SM_NEWALIASES;
	}
	opterr = 0;
	while ((c = getopt(argc, argv, OPTSTRING)) != -1) {
		if (c == '?' || c == ':') {
			char why[64];

			(void)str_fmt(why, sizeof(why), "bad option -%c or a missing argument",
				      optopt ? optopt : '?');
			usage(sm, why);
		}
		option(sm, c, optarg);
	}
	sm->args = argv + optind;
	sm->nargs = argc - optind;
	if (sm->nargs > 0 && sm->mode != SM_DELIVER && sm->mode != SM_NOTHING)
		usage(sm, "recipients are only taken when sending mail");
}

struct sender_parse {
	const struct sendmail *sm;
	int n;			/* addresses seen (the empty "<>" not counted) */
	bool bad;
	char addr[ADDR_MAX + 1];
};

static void sender_one(void *arg, const char *addr)
{
	struct sender_parse *s = arg;

	if (addr[0] == '\0')
		return;
	if (s->n++ == 0 && addr_canon(s->sm, addr, s->addr, sizeof(s->addr)) < 0)
		s->bad = true;
}

/* What needs myorigin: the sender of -f / -r. */
void options_finish(struct sendmail *sm)
{
	struct sender_parse s = { .sm = sm };

	if (sm->sender_arg == NULL)
		return;
	addrlist_each(sm->sender_arg, strlen(sm->sender_arg), sender_one, &s);
	if (s.n == 0) {
		sm->sender = xstrdup("");	/* -f "" or -f "<>": the null sender */
		return;
	}
	if (s.n > 1 || s.bad)
		sm_die(sm, EX_DATAERR, "bad sender address: %s", sm->sender_arg);
	sm->sender = xstrdup(s.addr);
}
