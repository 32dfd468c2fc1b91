/*
 * postern-imap: the IMAP session of one logged-in user (issue 6; DESIGN.md §1). master
 * execs it as root with the client's connection (through the login process) on fd 0 and
 * the user's identity in its arguments (lib/sessionproto.h); before reading a byte it
 * chroots into the user's home and becomes the user, with no capability left. Table of
 * contents:
 *
 *   main.c        arguments, the drop, the command loop, the logout log line
 *   io.c          reading commands (lib/imapcmd.c), writing responses and IMAP strings
 *   dispatch.c    the command table: which commands exist in which state
 *   cmd_misc.c    CAPABILITY NOOP LOGOUT ID ENABLE NAMESPACE CHECK GETQUOTA(ROOT)
 *   mailbox.c     SELECT EXAMINE CLOSE UNSELECT, untagged updates, flags
 *   folders.c     CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS
 *   append.c      APPEND
 *   fetch.c       FETCH and UID FETCH (lib/mime.h for ENVELOPE, BODYSTRUCTURE, sections)
 *   store.c       STORE, COPY, MOVE, EXPUNGE and their UID forms
 *   search.c      SEARCH and UID SEARCH (with ESEARCH's RETURN)
 *   idle.c        IDLE: new mail pushed as it arrives (inotify on the folder)
 *
 * The mail itself is lib/mailstore.h (Maildir++, dovecot-uidlist, Dovecot-compatible).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mime.h"
#include "privsep.h"
#include "session.h"
#include "sessionargs.h"
#include "util.h"

struct session S = { .fd = 0 };

static void start(int argc, char **argv)
{
	static char maildir[4096];
	struct session_args a;
	const char *file;
	char err[256];

	signal(SIGPIPE, SIG_IGN);
	session_args_parse(argc, argv, &a, "postern-imap");
	S.cfg = conf_load(a.conf, NULL, NULL);
	if (S.cfg == NULL)
		exit(1);
	file = conf_str(S.cfg, "log_file");
	if (!*file || log_open("imap", LOG_TARGET_FILE, file) < 0)
		log_open("imap", LOG_TARGET_SYSLOG, NULL);
	{	/* charset converters, before the chroot hides their modules */
		size_t n;
		const char *const *cs = conf_list(S.cfg, "imap_search_charsets", &n);

		mime_init_charsets(cs, n);
	}
	session_enter(a.home, (uid_t)a.uid, (gid_t)a.gid);
	S.user = a.user;
	S.tag0 = a.tag[0] ? a.tag : "*";
	S.tls = a.tls;
	S.append_limit = (uint64_t)conf_size(S.cfg, "message_size_limit");
	if (session_maildir(&a, maildir, sizeof(maildir), err, sizeof(err)) < 0)
		msg_fatal("%s: %s", a.user, err);
	S.store = mstore_open(maildir, err, sizeof(err));
	if (S.store == NULL) {
		msg_tagged("imap", "Error: %s: cannot open the mailbox %s: %s", a.user, maildir, err);
		dprintf(S.fd, "%s NO [SERVERBUG] Internal error occurred. Refer to server log for "
			"more information.\r\n", S.tag0);
		exit(1);
	}
	mstore_set_quota(S.store, (uint64_t)a.quota, 0);	/* authd's quota wins */
	buf_init(&S.out, IMAP_OUT_FLUSH * 2 + 1);
	S.cmd = imapcmd_new(&(struct imapcmd_limits){
		.line_max = 65536, .literal_max = S.append_limit,	/* refused before the "+" */
		.total_max = S.append_limit + 131072, .literal_plus = true });
	S.state = S_AUTH;
	{	/* what the client sent after its LOGIN, when the login process handed it over */
		struct buf pre;

		buf_init(&pre, 65536);
		if (session_read_prefix(&a, &pre) < 0)
			msg_fatal("%s: cannot take the client's pending input", a.user);
		if (pre.len)
			(void)imapcmd_feed(S.cmd, pre.data, pre.len);
		buf_free(&pre);
	}
}

static void log_logout(const char *why)
{
	char tag[512];

	(void)str_fmt(tag, sizeof(tag), "imap(%s)<%d>", S.user, (int)getpid());
	msg_tagged(tag, "Info: Disconnected: %s in=%llu out=%llu deleted=%u expunged=%u", why,
		   (unsigned long long)S.bytes_in, (unsigned long long)S.bytes_out,
		   S.deleted_count, S.expunged_count);
}

int main(int argc, char **argv)
{
	int r;

	start(argc, argv);
	out_printf("%s OK [CAPABILITY %s] Logged in\r\n", S.tag0, capability_string());
	while (S.state != S_LOGOUT) {
		r = io_read_command();
		if (r == 0) {
			out_flush();
			log_logout("Connection closed");
			return 0;
		}
		if (r == 2)
			reply_tagged("BAD", "Error in IMAP command: %s", S.cmd->error);
		else if (r == 3)
			reply_tagged(S.cmd->literal_size ? "NO" : "BAD", "[TOOBIG] %s",
				     S.cmd->error ? S.cmd->error : "Command too long");
		else
			dispatch();
		imapcmd_reset(S.cmd);
	}
	out_flush();
	log_logout("Logged out");
	return 0;
}
