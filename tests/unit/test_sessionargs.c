/*
 * test_sessionargs.c: lib/sessionargs.c: a session's argument vector as master builds it
 * (lib/sessionproto.h) and the Maildir's path inside the session's chroot.
 */
#include <string.h>

#include "sessionargs.h"
#include "t.h"

static void test_parse_master_vector(void)
{
	static char vec[] = "postern-pop3|-c|/etc/postern/postern.conf|-s|pop3|-U|"
			    "bob@example.org|-u|5000|-g|5001|-H|/var/mail/vhosts/e/bob|-M|"
			    "maildir:~/Maildir|-q|1048576|-r|192.0.2.1|-l|127.0.0.1|-t||-T|-m|PLAIN";
	char *argv[32];
	int argc = 0;
	struct session_args a;

	/* writable strings, as getopt may permute them: split a writable copy at '|' */
	for (char *p = vec, *bar; argc < 31; p = bar + 1) {
		argv[argc++] = p;
		if ((bar = strchr(p, '|')) == NULL)
			break;
		*bar = '\0';
	}
	argv[argc] = NULL;
	session_args_parse(argc, argv, &a, "test");
	T_EQ_STR(a.conf, "/etc/postern/postern.conf");
	T_EQ_STR(a.service, "pop3");
	T_EQ_STR(a.user, "bob@example.org");
	T_EQ_INT(a.uid, 5000);
	T_EQ_INT(a.gid, 5001);
	T_EQ_STR(a.home, "/var/mail/vhosts/e/bob");
	T_EQ_INT(a.quota, 1048576);
	T_EQ_STR(a.tag, "");
	T_CHECK(a.tls);
	T_EQ_STR(a.method, "PLAIN");
	T_EQ_STR(a.rip, "192.0.2.1");
}

static const char *maildir(const char *home, const char *mail)
{
	static char out[256], err[256];
	struct session_args a;

	memset(&a, 0, sizeof(a));
	a.home = home;
	a.mail = mail;
	if (session_maildir(&a, out, sizeof(out), err, sizeof(err)) < 0)
		return "(refused)";
	return out;
}

static void test_maildir_in_the_chroot(void)
{
	T_EQ_STR(maildir("/h/bob", ""), "/Maildir");
	T_EQ_STR(maildir("/h/bob", NULL), "/Maildir");
	T_EQ_STR(maildir("/h/bob", "~/Maildir"), "/Maildir");
	T_EQ_STR(maildir("/h/bob", "maildir:~/Mail/box"), "/Mail/box");
	T_EQ_STR(maildir("/h/bob", "/h/bob/Maildir"), "/Maildir");
	T_EQ_STR(maildir("/h/bob/", "/h/bob/Maildir"), "/Maildir");
	T_EQ_STR(maildir("/h/bob", "/h/bobby/Maildir"), "(refused)");	/* not inside */
	T_EQ_STR(maildir("/h/bob", "/elsewhere/Maildir"), "(refused)");
	T_EQ_STR(maildir("/h/bob", "~/../alice/Maildir"), "(refused)");
	T_EQ_STR(maildir("/h/bob", "~/Maildir/.."), "(refused)");
	T_EQ_STR(maildir("/h/bob", "~/Mail..dir"), "/Mail..dir");	/* not a component */
}

int main(void)
{
	T_RUN(test_parse_master_vector);
	T_RUN(test_maildir_in_the_chroot);
	return T_DONE();
}
