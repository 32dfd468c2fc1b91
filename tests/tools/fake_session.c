/*
 * fake_session: a stand-in for a mail session program (postern-imap, postern-pop3), for the
 * end-to-end tests of the login/session hand-off (test_imap_login.py). master execs it as
 * root with the arguments of lib/sessionproto.h and the client socket on fd 0, exactly as
 * it would the real session; it calls session_enter() (lib/privsep.h) and then reports what
 * it became, so a test can assert the drop from the client side:
 *
 *   TAG OK [FAKE] pid=P uid=R/E/S gid=R/E/S groups=N caps=TEXT nnp=1 dumpable=0 cwd=/
 *       user=U home=H mail=M quota=Q service=S method=M tls=0|1 rip=R lip=L
 *
 * (one line; TAG is -t, "+OK" for an empty tag as POP3 would answer). Then, until EOF or
 * a line "X LOGOUT", it answers each line with "* ECHO <line>" (so pipelined bytes and the
 * proxy can be checked) and ends with "* BYE fake" and "X OK LOGOUT". It waits for its
 * client, so /proc/P/root and /proc/P/status can be read from outside meanwhile.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "privsep.h"
#include "util.h"

struct args {
	const char *service, *user, *home, *mail, *quota, *rip, *lip, *tag, *method;
	long long uid, gid;
	int tls;
};

static void parse(int argc, char **argv, struct args *a)
{
	int c;

	while ((c = getopt(argc, argv, "c:s:U:u:g:H:M:q:r:l:t:Tm:")) != -1) {
		switch (c) {
		case 'c': break;
		case 's': a->service = optarg; break;
		case 'U': a->user = optarg; break;
		case 'u': if (str_to_ll(optarg, 1, 0x7fffffff, &a->uid) < 0) exit(2); break;
		case 'g': if (str_to_ll(optarg, 1, 0x7fffffff, &a->gid) < 0) exit(2); break;
		case 'H': a->home = optarg; break;
		case 'M': a->mail = optarg; break;
		case 'q': a->quota = optarg; break;
		case 'r': a->rip = optarg; break;
		case 'l': a->lip = optarg; break;
		case 't': a->tag = optarg; break;
		case 'T': a->tls = 1; break;
		case 'm': a->method = optarg; break;
		default: exit(2);
		}
	}
	if (!a->service || !a->user || !a->home || !a->mail || !a->quota || !a->rip ||
	    !a->lip || !a->tag || !a->method || a->uid <= 0 || a->gid <= 0 || optind != argc)
		exit(2);
}

static void report(const struct args *a)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	char cwd[256] = "?", *caps_text;
	cap_t caps = cap_get_proc();

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 || caps == NULL ||
	    getcwd(cwd, sizeof(cwd)) == NULL)
		exit(3);
	caps_text = cap_to_text(caps, NULL);
	dprintf(0, "%s OK [FAKE] pid=%d uid=%d/%d/%d gid=%d/%d/%d groups=%d caps=%s nnp=%d "
		"dumpable=%d cwd=%s user=%s home=%s mail=%s quota=%s service=%s method=%s tls=%d "
		"rip=%s lip=%s\r\n", *a->tag ? a->tag : "+OK", (int)getpid(), (int)r, (int)e,
		(int)s, (int)rg, (int)eg, (int)sg, getgroups(0, NULL), caps_text ? caps_text : "?",
		prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), cwd,
		a->user, a->home, a->mail, a->quota, a->service, a->method, a->tls, a->rip, a->lip);
	cap_free(caps_text);
	cap_free(caps);
}

/* Echo lines until EOF or "X LOGOUT". */
static void echo_loop(void)
{
	FILE *in = fdopen(0, "r");
	char line[8192];

	if (in == NULL)
		exit(3);
	while (fgets(line, sizeof(line), in) != NULL) {
		char *sp;

		line[strcspn(line, "\r\n")] = '\0';
		dprintf(0, "* ECHO %s\r\n", line);
		sp = strchr(line, ' ');
		if (sp && strcasecmp(sp + 1, "LOGOUT") == 0) {
			*sp = '\0';
			dprintf(0, "* BYE fake\r\n%s OK LOGOUT\r\n", line);
			return;
		}
	}
}

int main(int argc, char **argv)
{
	struct args a = { 0 };

	parse(argc, argv, &a);
	session_enter(a.home, (uid_t)a.uid, (gid_t)a.gid);
	report(&a);
	echo_loop();
	return 0;
}
