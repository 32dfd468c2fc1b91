/*
 * postern-pop3-login: the POP3 login process (issue 7; DESIGN.md §1 login/session split).
 * A pool service on the pop3 (110, STLS) and pop3s (995, implicit TLS: argument -t)
 * listeners; it runs as mail_owner, chrooted into $spool_directory/empty, without any
 * capability, and never sees a mailbox. Table of contents:
 *
 *   main.c       lib/login.c's login_main: arguments (-t), TLS keys and the private
 *                connections as root, the pool skeleton
 *   client.c     one client: greeting, reading command lines and their limits, the
 *                disconnect line
 *   commands.c   CAPA STLS QUIT, unknown commands
 *   auth.c       USER/PASS and AUTH through authd, then the hand-off to the session
 *
 * After a successful login master starts the user's session (postern-pop3); a client with TLS
 * is proxied to it until either side closes, a client without TLS is handed over to it.
 */
#include "pop3_login.h"

int main(int argc, char **argv)
{
	login_main(argc, argv, "pop3", "pop3-login", "pop3_allow_plaintext_auth", pop3_login_serve);
}
