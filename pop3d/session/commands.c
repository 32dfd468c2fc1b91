/*
 * commands.c: the TRANSACTION state (RFC 1939 §5, RFC 2449): the command table and STAT,
 * LIST, DELE, NOOP, RSET, UIDL and CAPA; RETR and TOP are retr.c, QUIT update.c. Answers
 * and error texts are Dovecot's, which clients and scripts have met for years. A command
 * that fails counts as bad; POP3_MAX_BAD of them in a row end the session.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "pop3.h"
#include "session.h"
#include "util.h"

static bool failed;		/* the current command answered -ERR */

void command_failed(void)
{
	failed = true;
}

static void __attribute__((format(printf, 1, 2))) err_line(const char *fmt, ...)
{
	char text[POP3_LINE_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	va_end(ap);
	out_line("%s", text);
	failed = true;
}

int64_t msgnum_arg(const char *args, bool then_space, const char **rest)
{
	unsigned long long n = 0;
	const char *p = args;

	if (*p < '0' || *p > '9')
		return err_line("-ERR Invalid message number: %s", args), -1;
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (unsigned)(*p++ - '0');
		if (n > UINT32_MAX)
			return err_line("-ERR Message number too large: %s", args), -1;
	}
	if (*p != (then_space ? ' ' : '\0'))
		return err_line("-ERR Noise after message number: %s", p), -1;
	if (n == 0 || n > S.count)
		return err_line("-ERR There's no message %llu.", n), -1;
	if (S.msgs[n - 1].deleted)
		return err_line("-ERR Message is deleted."), -1;
	while (*p == ' ')
		p++;
	if (rest != NULL)
		*rest = p;
	return (int64_t)n - 1;
}

static void cmd_stat(const char *args)
{
	(void)args;
	out_line("+OK %u %llu", S.count - S.deleted_count,
		 (unsigned long long)(S.total_size - S.deleted_size));
}

static void cmd_list(const char *args)
{
	int64_t i;

	if (*args != '\0') {
		if ((i = msgnum_arg(args, false, NULL)) >= 0)
			out_line("+OK %lld %llu", (long long)i + 1,
				 (unsigned long long)S.msgs[i].size);
		return;
	}
	out_line("+OK %u messages:", S.count - S.deleted_count);
	for (uint32_t n = 0; n < S.count; n++)
		if (!S.msgs[n].deleted)
			out_line("%u %llu", n + 1, (unsigned long long)S.msgs[n].size);
	out_line(".");
}

static void cmd_dele(const char *args)
{
	int64_t i = msgnum_arg(args, false, NULL);

	if (i < 0)
		return;
	S.msgs[i].deleted = true;
	S.deleted_count++;
	S.deleted_size += S.msgs[i].size;
	out_line("+OK Marked to be deleted.");
}

static void cmd_noop(const char *args)
{
	(void)args;
	out_line("+OK");
}

/* RFC 1939: unmark the deleted messages; like Dovecot, forget pending \Seen marks too. */
static void cmd_rset(const char *args)
{
	(void)args;
	for (uint32_t n = 0; n < S.count; n++)
		S.msgs[n].deleted = S.msgs[n].retrieved = false;
	S.deleted_count = 0;
	S.deleted_size = 0;
	out_line("+OK");
}

/* One "N UIDL" (with "+OK " for a single message); false after -ERR. */
static bool uidl_line(uint32_t n, bool single)
{
	const struct mmsg *m = mfolder_msg(S.inbox, n + 1);
	char uidl[POP3_UIDL_MAX + 1];

	if (m == NULL || pop3_uidl(S.uidl_format, m->uid, mfolder_uidvalidity(S.inbox), m->file,
				   uidl, sizeof(uidl)) < 0) {
		msg_tagged("pop3", "Error: UIDL of message %u (uid %u) with pop3_uidl_format %s "
			   "failed", n + 1, m ? m->uid : 0, S.uidl_format);
		out_line("-ERR [SYS/TEMP] UIDL failed.");
		failed = true;
		return false;
	}
	out_line("%s%u %s", single ? "+OK " : "", n + 1, uidl);
	return true;
}

static void cmd_uidl(const char *args)
{
	int64_t i;

	if (*args != '\0') {
		if ((i = msgnum_arg(args, false, NULL)) >= 0)
			(void)uidl_line((uint32_t)i, true);
		return;
	}
	out_line("+OK");
	for (uint32_t n = 0; n < S.count; n++) {
		if (S.msgs[n].deleted)
			continue;
		if (!uidl_line(n, false)) {
			S.end = "Disconnected: POP3 UIDLs couldn't be listed";
			S.quit = true;	/* the listing is broken: the client must not go on */
			return;
		}
	}
	out_line(".");
}

/* RFC 2449 §5: what the AUTHORIZATION state offered is listed here too; STLS is not. */
static void cmd_capa(const char *args)
{
	(void)args;
	out_line("+OK");
	out_line("TOP");
	out_line("UIDL");
	out_line("RESP-CODES");
	out_line("PIPELINING");
	out_line("AUTH-RESP-CODE");
	if (S.password_ok) {
		out_line("USER");
		out_line("SASL PLAIN LOGIN");
	}
	out_line("IMPLEMENTATION Postern");
	out_line(".");
}

static const struct {
	const char *name;
	void (*run)(const char *args);
} commands[] = {
	{ "STAT", cmd_stat }, { "LIST", cmd_list }, { "RETR", cmd_retr }, { "DELE", cmd_dele },
	{ "NOOP", cmd_noop }, { "RSET", cmd_rset }, { "QUIT", cmd_quit }, { "TOP", cmd_top },
	{ "UIDL", cmd_uidl }, { "CAPA", cmd_capa },
};

void dispatch(void)
{
	const char *args = strchr(S.line, ' ');
	size_t namelen = args ? (size_t)(args - S.line) : S.line_len, i;

	args = args ? args + 1 : S.line + S.line_len;
	while (*args == ' ')
		args++;
	failed = false;
	for (i = 0; i < ARRAY_LEN(commands); i++)
		if (strlen(commands[i].name) == namelen &&
		    strncasecmp(S.line, commands[i].name, namelen) == 0)
			break;
	if (i < ARRAY_LEN(commands))
		commands[i].run(args);
	else
		err_line("-ERR Unknown command: %.*s", (int)namelen, S.line);
	S.bad_in_a_row = failed ? S.bad_in_a_row + 1 : 0;
	if (S.bad_in_a_row >= POP3_MAX_BAD && !S.quit) {
		out_line("-ERR Too many bad commands.");
		S.end = "Disconnected: Too many bad commands.";
		S.quit = true;
	}
}
