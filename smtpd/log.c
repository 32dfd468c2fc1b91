/*
 * log.c: smtpd's log lines in Postfix's shapes, so pflogsumm (--syslog-name=postern) and
 * fail2ban's stock postfix filter read them unchanged (reference/logs-postfix-dovecot.txt):
 *
 *   connect from unknown[127.0.0.1]
 *   NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 <x@y>: Relay access denied;
 *       from=<a@b> to=<x@y> proto=ESMTP helo=<client.example>
 *   warning: unknown[127.0.0.1]: SASL PLAIN authentication failed: (reason unavailable),
 *       sasl_username=alice@example.com
 *   disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"
#include "buf.h"
#include "log.h"
#include "util.h"

static const char *const counter_name[CNT_MAX] = {
	[CNT_HELO] = "helo", [CNT_EHLO] = "ehlo", [CNT_STARTTLS] = "starttls",
	[CNT_AUTH] = "auth", [CNT_MAIL] = "mail", [CNT_RCPT] = "rcpt", [CNT_DATA] = "data",
	[CNT_BDAT] = "bdat", [CNT_RSET] = "rset", [CNT_NOOP] = "noop", [CNT_VRFY] = "vrfy",
	[CNT_HELP] = "help", [CNT_QUIT] = "quit", [CNT_UNKNOWN] = "unknown",
};

void count_cmd(struct session *ss, enum smtpd_counter c, bool ok)
{
	ss->cnt_all[c]++;
	if (ok)
		ss->cnt_ok[c]++;
}

static void put_count(struct buf *b, const char *name, unsigned ok, unsigned all)
{
	if (ok == all)
		(void)buf_printf(b, " %s=%u", name, ok);
	else
		(void)buf_printf(b, " %s=%u/%u", name, ok, all);
}

void log_disconnect(const struct session *ss)
{
	struct buf b;
	unsigned ok = 0, all = 0;

	buf_init(&b, 1024);
	for (int i = 0; i < CNT_MAX; i++) {
		if (ss->cnt_all[i] == 0)
			continue;
		put_count(&b, counter_name[i], ss->cnt_ok[i], ss->cnt_all[i]);
		ok += ss->cnt_ok[i];
		all += ss->cnt_all[i];
	}
	put_count(&b, "commands", ok, all);
	msg_info("disconnect from %s%s", ss->namaddr, buf_cstr(&b));
	buf_free(&b);
}

void log_reject(const struct session *ss, const char *cmd, const char *replytext,
		const char *rcpt)
{
	char to[SMTPD_ADDR_SIZE + 8] = "";

	if (rcpt)
		(void)str_fmt(to, sizeof(to), " to=<%s>", rcpt);
	if (ss->txn.active || strcmp(cmd, "MAIL") == 0)
		msg_info("%s: reject: %s from %s: %s; from=<%s>%s proto=%s helo=<%s>",
			 ss->txn.qid[0] ? ss->txn.qid : "NOQUEUE", cmd, ss->namaddr, replytext,
			 ss->txn.sender, to, ss->esmtp ? "ESMTP" : "SMTP", ss->helo);
	else
		msg_info("NOQUEUE: reject: %s from %s: %s;%s proto=%s helo=<%s>", cmd,
			 ss->namaddr, replytext, to, ss->esmtp ? "ESMTP" : "SMTP", ss->helo);
}

/* fail2ban's stock postfix filter wants the program name to match
 * "postfix(-\w+)?/\w+(?:/smtp[ds])?" and ignores "postern/smtpd". "postfix-postern/smtpd" is
 * the least deceptive name it accepts: Postfix's own convention for a second instance
 * ("postfix-NAME"), naming Postern, not posing as Postfix itself. Only this line uses it. */
#define SASL_FAIL_TAG "postfix-postern/smtpd"

void log_sasl_failure(const struct session *ss, const char *mech, const char *user)
{
	char tag[64];

	/* In a log file the tag carries the pid itself; syslog adds it (LOG_PID). */
	if (log_file_fd() >= 0)
		(void)str_fmt(tag, sizeof(tag), "%s[%d]", SASL_FAIL_TAG, (int)getpid());
	else
		(void)str_copy(tag, sizeof(tag), SASL_FAIL_TAG);
	msg_tagged(tag, "warning: %s: SASL %s authentication failed: (reason unavailable), "
		   "sasl_username=%s", ss->namaddr, mech, user);
}
