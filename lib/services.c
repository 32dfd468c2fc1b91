/*
 * services.c: the service table (see services.h).
 *
 * The SMTP listeners are served by postern-smtpd in three roles (issue 4), the IMAP ones by
 * postern-imap-login (issue 6), the POP3 ones by postern-pop3-login (issue 7). postern-testd,
 * a small honest test service that greets with its own name and echoes lines, serves only
 * the test listener and the test daemons below.
 */
#include "services.h"

const struct service_def service_table[] = {
	/* name          kind           command          args  user          root
	 * caps  listen                limit                       socket  group  enable */
	{ "smtp", SERVICE_POOL, "postern-smtpd", "-r mx", "mail_owner", ROOT_SPOOL,
	  NULL, "smtp_listen", "smtp_process_limit", NULL, NULL, NULL },
	{ "submission", SERVICE_POOL, "postern-smtpd", "-r submission", "mail_owner", ROOT_SPOOL,
	  NULL, "submission_listen", "submission_process_limit", NULL, NULL, NULL },
	{ "smtps", SERVICE_POOL, "postern-smtpd", "-r smtps", "mail_owner", ROOT_SPOOL,
	  NULL, "smtps_listen", "smtps_process_limit", NULL, NULL, NULL },
	/* IMAP logins (issue 6): STARTTLS on 143, implicit TLS on 993 (-t). */
	{ "imap", SERVICE_POOL, "postern-imap-login", "", "mail_owner", ROOT_EMPTY,
	  NULL, "imap_listen", "imap_process_limit", NULL, NULL, NULL },
	{ "imaps", SERVICE_POOL, "postern-imap-login", "-t", "mail_owner", ROOT_EMPTY,
	  NULL, "imaps_listen", "imaps_process_limit", NULL, NULL, NULL },
	/* POP3 logins (issue 7): STLS on 110, implicit TLS on 995 (-t). */
	{ "pop3", SERVICE_POOL, "postern-pop3-login", "", "mail_owner", ROOT_EMPTY,
	  NULL, "pop3_listen", "pop3_process_limit", NULL, NULL, NULL },
	{ "pop3s", SERVICE_POOL, "postern-pop3-login", "-t", "mail_owner", ROOT_EMPTY,
	  NULL, "pop3s_listen", "pop3s_process_limit", NULL, NULL, NULL },

	/* authd: the only holder of the database credentials (issue 3). */
	{ "authd", SERVICE_SINGLE, "postern-authd", "", "auth_owner", ROOT_NONE,
	  NULL, NULL, NULL, "auth", "auth_socket_group", NULL },

	/* queue: creates and commits queue files, picks up maildrop/ (issue 4). */
	{ "queue", SERVICE_SINGLE, "postern-queue", "", "queue_owner", ROOT_SPOOL,
	  NULL, NULL, NULL, "queue", "mail_owner", NULL },

	/* anvil: connection counts per client address for smtpd's pool (issue 4). */
	{ "anvil", SERVICE_SINGLE, "postern-anvil", "", "mail_owner", ROOT_SPOOL,
	  NULL, NULL, NULL, "anvil", "mail_owner", NULL },

	/* virtual: delivery into virtual users' Maildirs for qmgr (issue 5). Not chrooted: it
	 * writes below virtual_mailbox_base. Its clients are qmgr (queue_owner, whose group
	 * of the same name opens the socket) and root. A pool on a private socket: each
	 * process serves one qmgr connection, so qmgr's connections are the concurrency. */
	{ "virtual", SERVICE_POOL, "postern-virtual", "", "vmail_owner", ROOT_NONE,
	  NULL, NULL, "virtual_process_limit", "virtual", "queue_owner", "virtual_enable" },

	/* smtp: outbound SMTP delivery for qmgr (issue 5), chrooted into the spool (the
	 * resolver reads its etc/resolv.conf). A pool like virtual. */
	{ "smtp-agent", SERVICE_POOL, "postern-smtp", "", "mail_owner", ROOT_SPOOL,
	  NULL, NULL, "smtp_agent_process_limit", "smtp", "queue_owner", "smtp_agent_enable" },

	/* local: system users and aliases_file (issue 5). uid 0 keeping only CAP_SETUID and
	 * CAP_SETGID: each delivery forks and switches for good to the recipient. */
	{ "local", SERVICE_POOL, "postern-local", "", "root", ROOT_NONE,
	  "cap_setuid,cap_setgid", NULL, "local_process_limit", "local", "queue_owner",
	  "local_enable" },

	/* qmgr: schedules deliveries from the queue (issue 5). */
	{ "qmgr", SERVICE_SINGLE, "postern-qmgr", "", "queue_owner", ROOT_SPOOL,
	  NULL, NULL, NULL, "qmgr", "queue_owner", "qmgr_enable" },

	/* Test services: exercise a pool on its own port, a single daemon behind a private
	 * socket, and the one privileged shape (uid 0 keeping only CAP_SETUID+CAP_SETGID)
	 * that local will have. */
	{ "test", SERVICE_POOL, "postern-testd", "", "mail_owner", ROOT_SPOOL,
	  NULL, "test_listen", "test_process_limit", NULL, NULL, "test_services" },
	{ "testd-single", SERVICE_SINGLE, "postern-testd", "-s", "queue_owner", ROOT_SPOOL,
	  NULL, NULL, NULL, "testd", "mail_owner", "test_services" },
	{ "testd-privileged", SERVICE_SINGLE, "postern-testd", "-s", "root", ROOT_NONE,
	  "cap_setuid,cap_setgid", NULL, NULL, "testd-priv", "mail_owner", "test_services" },
};

const size_t service_table_len = sizeof(service_table) / sizeof(service_table[0]);
