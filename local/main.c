/*
 * postern-local: the local delivery agent (issue 5; Postfix's local(8)). qmgr hands it a
 * queue file open read-only, where the message lies in it, and up to DELIVER_MAX_RCPT
 * recipients in our own domains (lib/deliverproto.h); it answers one result per recipient.
 * Table of contents:
 *
 *   main.c     start-up, settings
 *   conn.c     the socket: peer check, the DELIVER request, aliases_file refresh, the
 *              per-recipient reply (lib/deliverreq.c parses, answers and logs)
 *   expand.c   one recipient: extension stripping, aliases_file expansion (recursive,
 *              loop-safe, de-duplicated, bounded), Delivered-To loop checks, the system
 *              user lookup, then each target delivered and logged, one combined result
 *   spawn.c    the fork per delivery: a child permanently switched to the target's user,
 *              the alarm safety net, the result pipe
 *   user.c     a system user's mailbox: mbox in mail_spool_directory, or home_mailbox
 *              (an mbox, or a Maildir through lib/maildir.h)
 *   mbox.c     appending to an mbox file: dotlock plus fcntl lock, truncation on failure
 *   format.c   the message as written: From_ line, Return-Path:, Delivered-To:, CRLF to
 *              LF, >From quoting, the final empty line
 *   command.c  |command (as default_privs, with local_command_timeout, sysexits) and
 *              /file deliveries from aliases_file
 *   forward.c  remote targets: a new queue file through the queue daemon
 *
 * Privileges: master starts us as uid 0 keeping only CAP_SETUID and CAP_SETGID, without a
 * chroot. This process never opens a user's file: every delivery runs in a child that
 * first becomes the recipient (or default_privs for commands and files, or mail_owner to
 * talk to the queue daemon). local is a pool on private/local: one qmgr connection per
 * process, one request after another.
 */
#include <grp.h>
#include <string.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "privsep.h"
#include "queueproto.h"
#include "server.h"
#include "util.h"

struct locald L;

static void pre_drop(struct server *srv)
{
	deliver_allow_init(srv, &L.allow);
}

/* home_mailbox: empty, or a relative path without "." or ".." components. */
static bool home_mailbox_ok(const char *hm)
{
	const char *p = hm;

	if (*hm == '\0')
		return true;
	if (*hm == '/')
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");

		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		while (*p == '/')
			p++;
	}
	return true;
}

static void load_identities(struct server *srv)
{
	const char *owner = conf_str(srv->cfg, "mail_owner");
	gid_t gid;

	if (!L.dev_mode && privsep_lookup_user(owner, &L.forward_uid, &L.forward_gid) < 0)
		msg_fatal("mail_owner %s is not a known user", owner);
	if (L.dev_mode) {
		L.forward_uid = getuid();
		L.forward_gid = getgid();
	}
	L.have_mail_gid = privsep_lookup_group("mail", &gid) == 0;
	L.mail_gid = L.have_mail_gid ? gid : 0;
}

static void load_settings(struct server *srv)
{
	const struct config *c = srv->cfg;

	L.dev_mode = srv->dev_mode;
	L.spool = conf_str(c, "mail_spool_directory");
	L.home_mailbox = conf_str(c, "home_mailbox");
	L.home_maildir = *L.home_mailbox && L.home_mailbox[strlen(L.home_mailbox) - 1] == '/';
	L.default_privs = conf_str(c, "default_privs");
	L.delimiter = conf_str(c, "recipient_delimiter");
	L.mydestination = conf_list(c, "mydestination", &L.nmydestination);
	L.command_timeout_ms = conf_time_ms(c, "local_command_timeout");
	L.minimum_uid = conf_int(c, "minimum_uid");
	L.recursion_limit = (size_t)conf_int(c, "alias_recursion_limit");
	L.expansion_limit = (size_t)conf_int(c, "alias_expansion_limit");
	if (L.spool[0] != '/')
		msg_fatal("mail_spool_directory = %s is not an absolute path", L.spool);
	if (!home_mailbox_ok(L.home_mailbox))
		msg_fatal("home_mailbox = %s must be a path relative to the home, without . or ..",
			  L.home_mailbox);
	if (str_fmt(L.queue_path, sizeof(L.queue_path), "%s/%s",
		    conf_str(c, "spool_directory"), QUEUE_SOCKET) < 0)
		msg_fatal("spool_directory is too long");
	aliases_file_init(&L.aliases, conf_str(c, "aliases_file"));
	load_identities(srv);
}

static void post_drop(struct server *srv)
{
	load_settings(srv);
	msg_info("ready: aliases from %s, mailboxes %s%s", L.aliases.path,
		 *L.home_mailbox ? "~/" : L.spool, *L.home_mailbox ? L.home_mailbox : "/USER");
}

static void serve(struct server *srv, int fd, int listener, const struct sockaddr *peer,
		  socklen_t peerlen)
{
	(void)srv, (void)listener, (void)peer, (void)peerlen;
	deliver_pool_serve(fd, &conn_ops);
}

int main(int argc, char **argv)
{
	static const struct server_hooks hooks = {
		.pre_drop = pre_drop,
		.post_drop = post_drop,
		.serve = serve,
	};

	server_main(argc, argv, SERVER_POOL_MODE, &hooks);
}
