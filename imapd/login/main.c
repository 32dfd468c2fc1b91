/*
 * postern-imap-login: the IMAP login process (issue 6; DESIGN.md §1 login/session split).
 * A pool service on the imap (143, STARTTLS) and imaps (993, implicit TLS: argument -t)
 * listeners; it runs as mail_owner, chrooted into $spool_directory/empty, without any
 * capability, and never sees a mailbox. Table of contents:
 *
 *   main.c       lib/login.c's login_main: arguments (-t), TLS keys and the private
 *                connections as root, the pool skeleton
 *   client.c     one client: greeting, reading commands (lib/imapcmd.h), limits, the
 *                disconnect line
 *   commands.c   CAPABILITY NOOP LOGOUT STARTTLS ID ENABLE, unknown commands
 *   auth.c       LOGIN and AUTHENTICATE through authd, then the hand-off to the session
 *
 * After a successful login master starts the user's session (postern-imap); a client with TLS
 * is proxied to it until either side closes, a client without TLS is handed over to it.
 */
#include "imap_login.h"

int main(int argc, char **argv)
{
	login_main(argc, argv, "imap", "imap-login", "imap_allow_plaintext_auth", imap_login_serve);
}
