/*
 * postern-pop3: the POP3 session of one logged-in user (issue 7; DESIGN.md §1). master
 * execs it as root with the client's connection (through pop3-login) on fd 0 and the user's
 * identity in its arguments (lib/sessionproto.h, lib/sessionargs.h); before reading a byte
 * it chroots into the user's home and becomes the user, with no capability left. Then it
 * takes the POP3 session lock, opens the INBOX and answers "+OK Logged in.". Table of
 * contents:
 *
 *   main.c       arguments, the drop, the maildrop, the command loop, the logout log line
 *   io.c         reading command lines, buffered output, the idle timeout
 *   commands.c   the command table; STAT LIST DELE NOOP RSET UIDL CAPA
 *   retr.c       RETR and TOP (CRLF and byte-stuffing: lib/pop3.c)
 *   update.c     QUIT: the UPDATE state
 *   lock.c       one POP3 session per mailbox ([IN-USE]), Dovecot's lock file
 *
 * The mail itself is lib/mailstore.h (Maildir++, dovecot-uidlist: the UIDs and UIDVALIDITY
 * behind Dovecot-compatible UIDLs, lib/pop3.h).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pop3.h"
#include "privsep.h"
#include "session.h"
#include "sessionargs.h"
#include "util.h"

#define INTERNAL_ERROR \
	"-ERR [SYS/TEMP] Internal error occurred. Refer to server log for more information."

struct session S = { .fd = 0, .lock = { .fd = -1 } };
volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Dovecot's line: "pop3(USER)<PID>: Info: WHAT top=T/TB, retr=R/RB, del=D/M, size=S". */
static void log_end(const char *what)
{
	char tag[512];

	(void)str_fmt(tag, sizeof(tag), "pop3(%s)<%d>", S.user, (int)getpid());
	msg_tagged(tag, "Info: %s top=%u/%llu, retr=%u/%llu, del=%u/%u, size=%llu", what,
		   S.top_count, (unsigned long long)S.top_bytes, S.retr_count,
		   (unsigned long long)S.retr_bytes, S.delete_success ? S.deleted_count : 0,
		   S.count, (unsigned long long)S.total_size);
}

/* Refuse the session before it began: one line to the client, one to the log. */
static __attribute__((noreturn)) void refuse(const char *reply, const char *why)
{
	out_line("%s", reply);
	out_flush();
	log_end(why);
	pop3_lock_release(&S.lock);
	exit(0);
}

static void open_mailbox(const struct session_args *a)
{
	char maildir[4096], err[512];
	int r;

	if (pop3_uidl_check(S.uidl_format, err, sizeof(err)) < 0) {
		msg_tagged("pop3", "Error: pop3_uidl_format = %s: %s", S.uidl_format, err);
		refuse(INTERNAL_ERROR, "Disconnected: Invalid pop3_uidl_format");
	}
	if (session_maildir(a, maildir, sizeof(maildir), err, sizeof(err)) < 0 ||
	    (S.store = mstore_open(maildir, err, sizeof(err))) == NULL) {
		msg_tagged("pop3", "Error: %s: cannot open the mailbox: %s", a->user, err);
		refuse(INTERNAL_ERROR, "Disconnected: Couldn't open INBOX");
	}
	mstore_set_quota(S.store, (uint64_t)a->quota, 0);	/* authd's quota wins */
	r = pop3_lock_take(&S.lock, maildir, POP3_LOCK_WAIT_MS, err, sizeof(err));
	if (r < 0) {
		msg_tagged("pop3", "Error: %s: POP3 session lock: %s", a->user, err);
		refuse("-ERR [SYS/TEMP] Failed to create POP3 session lock.",
		       "Couldn't lock POP3 session");
	}
	if (r == 0)
		refuse("-ERR [IN-USE] Mailbox is locked by another POP3 session.",
		       "Couldn't lock POP3 session");
	S.inbox = mfolder_open(S.store, "INBOX", false);
	if (S.inbox == NULL) {
		msg_tagged("pop3", "Error: %s: cannot open INBOX: %s", a->user,
			   mstore_error(S.store));
		refuse(INTERNAL_ERROR, "Disconnected: Couldn't open INBOX");
	}
}

/* The maildrop: every message of the INBOX now, with its size. */
static void load_maildrop(void)
{
	S.count = mfolder_count(S.inbox);
	S.msgs = xcalloc((size_t)S.count + 1, sizeof(*S.msgs));
	for (uint32_t n = 0; n < S.count; n++) {
		S.msgs[n].size = mfolder_msg(S.inbox, n + 1)->size;
		S.total_size += S.msgs[n].size;
	}
}

static void start(int argc, char **argv)
{
	struct session_args a;
	struct sigaction sa;
	const char *file;

	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;		/* no SA_RESTART: poll returns EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0)
		exit(1);
	session_args_parse(argc, argv, &a, "postern-pop3");
	S.cfg = conf_load(a.conf, NULL, NULL);
	if (S.cfg == NULL)
		exit(1);
	file = conf_str(S.cfg, "log_file");
	if (!*file || log_open("pop3", LOG_TARGET_FILE, file) < 0)
		log_open("pop3", LOG_TARGET_SYSLOG, NULL);
	session_enter(a.home, (uid_t)a.uid, (gid_t)a.gid);
	if (fd_set_nonblock(S.fd, 1) < 0)
		msg_fatal("the client socket: %m");
	S.user = a.user;
	S.password_ok = a.tls || conf_bool(S.cfg, "pop3_allow_plaintext_auth");
	S.uidl_format = conf_str(S.cfg, "pop3_uidl_format");
	buf_init(&S.in, POP3_IN_MAX);
	if (session_read_prefix(&a, &S.in) < 0)	/* what the client sent with its login */
		msg_fatal("%s: cannot take the client's pending input", a.user);
	buf_init(&S.out, POP3_OUT_MAX);
	open_mailbox(&a);
	load_maildrop();
}

int main(int argc, char **argv)
{
	start(argc, argv);
	out_line("+OK Logged in.");
	S.end = "Disconnected: Connection closed";
	while (!S.quit) {
		int r = io_read_line();

		if (r == 0)
			break;
		if (r < 0) {
			out_line("-ERR Input line too long.");
			S.end = "Disconnected: Input line too long";
			break;
		}
		dispatch();
	}
	out_flush();
	log_end(S.end);
	pop3_lock_release(&S.lock);
	mfolder_close(S.inbox);
	mstore_close(S.store);
	return 0;
}
