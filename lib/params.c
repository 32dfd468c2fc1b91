/*
 * params.c: the declaration of every postern.conf parameter: name, type, default, range and
 * one line of documentation. All Postern programs read the same file through this table, so a
 * parameter meant for one daemon is never "unknown" to another. Names follow Postfix's
 * main.cf where Postfix has the same setting.
 *
 * A default of NULL means "computed at load time" (see params_computed_default).
 */
#include "config.h"
#include "params.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define MS(s)	((long long)(s) * 1000LL)
#define DAY	(86400LL * 1000LL)
#define NOMAX	0x7fffffffffffffffLL

/* Per-pool-service process limits: one line per service in the master's table. */
#define SERVICE_LIMIT(svc) \
	{ svc "_process_limit", CONF_INT, "$default_process_limit", 1, 100000, \
	  "most processes of the " svc " service at once" }

const struct conf_param conf_params[] = {
	/* identity */
	{ "myhostname", CONF_STR, NULL, 0, 0, "this host's fully qualified name" },
	{ "mydomain", CONF_STR, NULL, 0, 0, "this host's domain (myhostname minus its first label)" },
	{ "myorigin", CONF_STR, "$myhostname", 0, 0, "domain appended to locally posted mail" },
	{ "mydestination", CONF_LIST, "$myhostname, localhost.$mydomain, localhost", 0, 0,
	  "domains delivered to system users by local" },
	{ "mynetworks", CONF_LIST, "127.0.0.0/8, [::1]/128", 0, 0,
	  "clients allowed to relay without authentication" },

	/* listeners: each a list of [address:]port; empty disables the service */
	{ "inet_interfaces", CONF_LIST, "all", 0, 0,
	  "addresses to listen on for listeners given as a bare port (all, loopback-only, list)" },
	{ "smtp_listen", CONF_LIST, "25", 0, 0, "SMTP (MX) listeners" },
	{ "submission_listen", CONF_LIST, "587", 0, 0, "submission (STARTTLS+AUTH) listeners" },
	{ "smtps_listen", CONF_LIST, "465", 0, 0, "submission over implicit TLS listeners" },
	{ "imap_listen", CONF_LIST, "143", 0, 0, "IMAP listeners" },
	{ "imaps_listen", CONF_LIST, "993", 0, 0, "IMAP over implicit TLS listeners" },
	{ "pop3_listen", CONF_LIST, "110", 0, 0, "POP3 listeners" },
	{ "pop3s_listen", CONF_LIST, "995", 0, 0, "POP3 over implicit TLS listeners" },
	{ "test_listen", CONF_LIST, "", 0, 0, "listeners of the built-in test service" },

	/* places */
	{ "config_directory", CONF_STR, "/etc/postern", 0, 0, "where postern.conf and sql.conf live" },
	{ "spool_directory", CONF_STR, "/var/spool/postern", 0, 0,
	  "queue, private sockets and the daemons' chroot" },
	{ "daemon_directory", CONF_STR, "/usr/lib/postern", 0, 0, "where the daemon programs live" },
	{ "command_directory", CONF_STR, "/usr/sbin", 0, 0,
	  "where the postern command lives (sendmail -bp and -q run it)" },
	{ "virtual_mailbox_base", CONF_STR, "/var/mail/vhosts", 0, 0, "root of virtual mailboxes" },
	{ "log_file", CONF_STR, "", 0, 0, "append log lines to this file instead of syslog" },

	/* users */
	{ "mail_owner", CONF_STR, "postern", 0, 0, "user of smtpd, smtp and the login processes" },
	{ "queue_owner", CONF_STR, "postern-queue", 0, 0, "user of queue and qmgr" },
	{ "auth_owner", CONF_STR, "postern-auth", 0, 0, "user of authd" },
	{ "setgid_group", CONF_STR, "postern-drop", 0, 0, "group of sendmail's maildrop" },
	{ "vmail_owner", CONF_STR, "vmail", 0, 0, "owner of virtual mailboxes" },
	{ "daemon_chroot", CONF_BOOL, "yes", 0, 0,
	  "chroot daemons into spool_directory (DESIGN.md §1)" },

	/* TLS */
	{ "tls_cert_file", CONF_STR, "$config_directory/cert.pem", 0, 0,
	  "server certificate chain, PEM, leaf first" },
	{ "tls_key_file", CONF_STR, "$config_directory/key.pem", 0, 0, "server private key, PEM" },

	/* master: processes */
	{ "default_process_limit", CONF_INT, "100", 1, 100000,
	  "most processes of one pool service at once" },
	SERVICE_LIMIT("smtp"), SERVICE_LIMIT("submission"), SERVICE_LIMIT("smtps"),
	SERVICE_LIMIT("imap"), SERVICE_LIMIT("imaps"), SERVICE_LIMIT("pop3"),
	SERVICE_LIMIT("pop3s"), SERVICE_LIMIT("test"),
	{ "virtual_process_limit", CONF_INT, "20", 1, 100000,
	  "most virtual delivery processes (qmgr's concurrency for virtual)" },
	{ "max_use", CONF_INT, "100", 1, 1000000,
	  "connections a pool process serves before it exits" },
	{ "max_idle", CONF_TIME, "100s", MS(1), DAY,
	  "how long an idle pool process waits for a connection before it exits" },
	{ "service_throttle_time", CONF_TIME, "60s", 100, DAY,
	  "how long master waits before restarting a service that failed at start-up" },
	{ "master_stop_timeout", CONF_TIME, "4s", 100, MS(60),
	  "how long master waits for children on stop before killing them" },
	{ "test_services", CONF_BOOL, "no", 0, 0,
	  "run the built-in test services (for the test suite only)" },

	/* authd (issue 3) */
	{ "sql_config", CONF_STR, "$config_directory/sql.conf", 0, 0,
	  "database settings and queries; mode 0600, owner auth_owner" },
	{ "auth_socket_group", CONF_STR, "postern", 0, 0,
	  "group allowed to connect to authd's socket (its members: the daemon users)" },
	{ "authd_workers", CONF_INT, "4", 1, 64, "database worker threads of authd" },
	{ "authd_cache_ttl", CONF_TIME, "60s", 0, DAY, "how long authd caches a found lookup" },
	{ "authd_negative_cache_ttl", CONF_TIME, "10s", 0, DAY,
	  "how long authd caches a lookup that found nothing" },
	{ "authd_cache_size", CONF_INT, "100000", 0, 10000000, "most cached lookups" },
	{ "auth_failure_delay", CONF_TIME, "500ms", 0, MS(60),
	  "delay of the first failed login's answer; doubles per failure" },
	{ "auth_failure_max_delay", CONF_TIME, "8s", 0, MS(600), "longest failure delay" },
	{ "auth_failure_limit", CONF_INT, "10", 1, 1000000,
	  "failures after which a client address is refused for auth_failure_window" },
	{ "auth_failure_window", CONF_TIME, "5m", MS(1), DAY,
	  "failures older than this are forgotten" },
	{ "auth_cram_md5", CONF_BOOL, "no", 0, 0,
	  "offer CRAM-MD5 (works only for users whose stored password is {PLAIN})" },
	{ "auth_ticket_ttl", CONF_TIME, "10s", 100, MS(300), "lifetime of a login ticket" },
	{ "recipient_delimiter", CONF_STR, "+", 0, 0,
	  "characters separating an address extension (user+tag@domain)" },
	{ "virtual_home", CONF_STR, "$virtual_mailbox_base/%d/%n", 0, 0,
	  "home of a virtual user (%d domain, %n local part)" },
	{ "virtual_mail", CONF_STR, "~/Maildir", 0, 0, "mail location inside the home" },
	{ "virtual_quota", CONF_SIZE, "0", 0, NOMAX, "default quota in bytes (0 = none)" },
	{ "required_aliases", CONF_LIST, "postmaster, abuse", 0, 0,
	  "local parts that exist in every virtual domain (RFC 2142)" },
	{ "required_aliases_target", CONF_STR, "root@$myhostname", 0, 0,
	  "where required local parts go when no user or alias has them" },
	{ "aliases_file", CONF_STR, "/etc/aliases", 0, 0, "system aliases (local domains)" },
	{ "minimum_uid", CONF_INT, "1000", 0, 0x7fffffff,
	  "lowest uid a delivery or session may run as (vmail's uid is always allowed)" },

	/* smtpd (issue 4) */
	{ "smtpd_banner", CONF_STR, "$myhostname ESMTP Postern", 0, 0,
	  "text after 220 in the greeting" },
	{ "message_size_limit", CONF_SIZE, "10240000", 1024, 1LL << 32,
	  "largest message accepted (SIZE), bytes" },
	{ "smtpd_recipient_limit", CONF_INT, "1000", 1, 10000, "recipients per message" },
	{ "smtpd_timeout", CONF_TIME, "300s", MS(1), MS(3600),
	  "how long smtpd waits for a command or a chunk of data" },
	{ "smtpd_hard_error_limit", CONF_INT, "20", 1, 1000,
	  "errors after which smtpd disconnects" },
	{ "smtpd_soft_error_limit", CONF_INT, "10", 0, 1000,
	  "errors after which every reply is delayed by smtpd_error_sleep_time" },
	{ "smtpd_error_sleep_time", CONF_TIME, "1s", 0, MS(60), "delay per error past the soft limit" },
	{ "smtpd_client_connection_count_limit", CONF_INT, "50", 0, 100000,
	  "simultaneous connections from one client address (0 = no limit)" },
	{ "disable_vrfy_command", CONF_BOOL, "yes", 0, 0, "refuse VRFY (252 when enabled)" },
	{ "smtpd_tls_auth_only", CONF_BOOL, "yes", 0, 0, "offer AUTH only after STARTTLS" },
	{ "smtpd_sasl_authenticated_header", CONF_BOOL, "no", 0, 0,
	  "name the login in the Received: header" },
	{ "smtpd_sender_login_check", CONF_BOOL, "yes", 0, 0,
	  "submission: the envelope sender must belong to the login (authd's sender check)" },
	{ "smtputf8_enable", CONF_BOOL, "yes", 0, 0, "offer SMTPUTF8 (RFC 6531)" },

	/* queue (issue 4) */
	{ "queue_minfree", CONF_SIZE, "0", 0, NOMAX,
	  "free space the queue file system must keep; below it new mail is refused (4xx)" },
	{ "queue_file_size_limit", CONF_SIZE, "0", 0, NOMAX,
	  "largest queue file (0 = message_size_limit plus room for the envelope)" },
	{ "queue_enable", CONF_BOOL, "no", 0, 0,
	  "obsolete and ignored: the queue daemon always runs (kept so old files still load)" },
	{ "maildrop_scan_interval", CONF_TIME, "10s", 100, MS(3600),
	  "how often the queue daemon looks into maildrop/ besides its notifications" },

	/* virtual delivery agent (issue 5) */
	{ "virtual_enable", CONF_BOOL, "yes", 0, 0, "run the virtual delivery agent" },
	{ "virtual_overquota_temporary", CONF_BOOL, "no", 0, 0,
	  "over quota is a temporary failure (452 4.2.2, retried) instead of a bounce (552 5.2.2)" },
	{ "virtual_plus_folders", CONF_BOOL, "yes", 0, 0,
	  "deliver user+tag@domain into the Maildir folder .tag when it exists" },

	/* smtp client (issue 5) */
	{ "smtp_agent_enable", CONF_BOOL, "yes", 0, 0,
	  "run the outbound SMTP delivery agent (postern-smtp)" },
	{ "relayhost", CONF_STR, "", 0, 0,
	  "send all outbound mail through this host: [host]:port (no MX lookup) or host[:port]" },
	{ "smtp_connect_timeout", CONF_TIME, "30s", 100, MS(3600),
	  "how long the SMTP client waits for a connection to be set up" },
	{ "smtp_tls_security_level", CONF_STR, "may", 0, 0,
	  "outbound TLS: none, may (opportunistic), encrypt (required), verify (required, "
	  "certificate and host name checked)" },
	{ "smtp_host_override", CONF_LIST, "", 0, 0,
	  "for tests and lab setups only: domain=ADDR[:port] items sent there instead of DNS" },
	{ "smtp_agent_process_limit", CONF_INT, "20", 1, 100000,
	  "most outbound SMTP processes (qmgr's concurrency for smtp)" },
	{ "smtp_sasl_password_file", CONF_STR, "", 0, 0,
	  "relayhost credentials, lines \"[host]:port user:password\"; mode 0600, owner root" },
	{ "smtp_sasl_tls_only", CONF_BOOL, "yes", 0, 0,
	  "send relayhost credentials only over TLS" },
	{ "smtp_connection_cache_time", CONF_TIME, "2s", 0, MS(300),
	  "how long an idle outbound connection is kept for the next message to its destination" },

	/* local delivery agent (issue 5) */
	{ "local_enable", CONF_BOOL, "yes", 0, 0,
	  "run the local delivery agent (system users, aliases_file)" },
	{ "local_process_limit", CONF_INT, "20", 1, 100000,
	  "most local delivery processes (qmgr's concurrency for local)" },
	{ "home_mailbox", CONF_STR, "", 0, 0,
	  "local users' mailbox relative to their home (\"Maildir/\": Maildir); empty: mbox in "
	  "mail_spool_directory" },
	{ "mail_spool_directory", CONF_STR, "/var/mail", 0, 0, "where local users' mbox files live" },
	{ "default_privs", CONF_STR, "nobody", 0, 0,
	  "user that runs |command and /file deliveries of aliases_file" },
	{ "local_command_timeout", CONF_TIME, "1000s", MS(1), DAY,
	  "how long a |command delivery may run" },

	/* qmgr (issue 5) */
	{ "qmgr_enable", CONF_BOOL, "yes", 0, 0,
	  "run the queue manager (no: mail is queued but not delivered)" },
	{ "transport_map", CONF_LIST, "", 0, 0,
	  "per-domain transport: domain=virtual|local|smtp[:nexthop] items (.domain: subdomains)" },
	{ "default_destination_concurrency_limit", CONF_INT, "20", 1, 1000,
	  "most deliveries at once to one smtp destination" },
	{ "minimal_backoff_time", CONF_TIME, "300s", 100, DAY,
	  "least time between delivery attempts of a deferred message" },
	{ "maximal_backoff_time", CONF_TIME, "4000s", 100, DAY,
	  "most time between delivery attempts of a deferred message" },
	{ "queue_run_delay", CONF_TIME, "300s", 100, DAY, "how often qmgr scans deferred/" },
	{ "maximal_queue_lifetime", CONF_TIME, "5d", 0, 1000 * DAY,
	  "after this a message still deferred is bounced" },
	{ "bounce_queue_lifetime", CONF_TIME, "5d", 0, 1000 * DAY,
	  "the same for bounces (null sender)" },
	{ "qmgr_message_active_limit", CONF_INT, "2000", 10, 1000000,
	  "messages qmgr keeps in active/ at once" },
	{ "alias_expansion_limit", CONF_INT, "1000", 1, 100000,
	  "most addresses one recipient may expand to" },
	{ "alias_recursion_limit", CONF_INT, "20", 1, 1000, "deepest alias nesting" },
	{ "bounce_notice_recipient", CONF_STR, "postmaster", 0, 0,
	  "who gets a bounce that could not be delivered (double bounce)" },

	/* login processes and mail sessions (issue 6) */
	{ "imap_search_charsets", CONF_LIST,
	  "ISO-8859-1, ISO-8859-15, ISO-8859-2, WINDOWS-1250, WINDOWS-1251, WINDOWS-1252, KOI8-R",
	  0, 0, "charsets besides UTF-8 an IMAP session can decode for SEARCH (each costs memory "
	  "in every session; mail in others is searched as UTF-8)" },
	{ "mail_max_sessions", CONF_INT, "1000", 1, 1000000,
	  "most IMAP and POP3 sessions master runs at once (beyond it logins fail temporarily)" },
	{ "imap_allow_plaintext_auth", CONF_BOOL, "no", 0, 0,
	  "offer LOGIN and AUTHENTICATE on port 143 before STARTTLS (passwords in the clear)" },
	{ "login_idle_timeout", CONF_TIME, "60s", MS(1), MS(3600),
	  "how long a login process waits for a command before the user has logged in" },
	/* POP3 (issue 7) */
	{ "pop3_allow_plaintext_auth", CONF_BOOL, "no", 0, 0,
	  "offer USER/PASS and AUTH on port 110 before STLS (passwords in the clear)" },
	{ "pop3_uidl_format", CONF_STR, "%08Xu%08Xv", 0, 0,
	  "UIDL template, Dovecot's syntax (%u uid, %v uidvalidity, %f file name)" },

	{ NULL, CONF_STR, NULL, 0, 0, NULL },
};

/* Fully qualified host name: the kernel's name, completed through the resolver. */
static void fqdn(char *out, size_t outlen)
{
	char host[256];
	struct addrinfo hints = { .ai_flags = AI_CANONNAME }, *ai = NULL;

	if (gethostname(host, sizeof(host)) < 0)
		str_copy(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.') == NULL && getaddrinfo(host, NULL, &hints, &ai) == 0) {
		if (ai && ai->ai_canonname && strchr(ai->ai_canonname, '.'))
			str_copy(host, sizeof(host), ai->ai_canonname);
		freeaddrinfo(ai);
	}
	str_copy(out, outlen, host);
}

int params_computed_default(const char *name, char *out, size_t outlen)
{
	char host[256];
	const char *dot;

	fqdn(host, sizeof(host));
	if (strcmp(name, "myhostname") == 0)
		return str_copy(out, outlen, host);
	if (strcmp(name, "mydomain") == 0) {
		dot = strchr(host, '.');
		return str_copy(out, outlen, dot && dot[1] ? dot + 1 : "localdomain");
	}
	return -1;
}
