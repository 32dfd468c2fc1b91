/*
 * test_smtpcmd.c: unit tests for the SMTP command parser (lib/smtpcmd.c): every command in
 * good and bad forms, the relay and smuggling tricks smtpd must refuse, ESMTP parameters,
 * length boundaries, NUL bytes, quoted local parts, address literals and xtext.
 */
#include <stdint.h>
#include <stdlib.h>

#include "smtpcmd.h"
#include "t.h"
#include "util.h"

static struct smtp_cmd cmd;	/* large: keep it off the stack */
static char why[128];

static int parse_n(const char *line, size_t len)
{
	return smtp_parse_command(line, len, &cmd, why, sizeof(why));
}

static int parse(const char *line)
{
	return parse_n(line, strlen(line));
}

/* The command is refused with this reply code and enhanced status code. */
#define REFUSED(line, rcode, enhanced)                                                        \
	do {                                                                            \
		T_EQ_INT(parse(line), rcode);                                           \
		T_EQ_INT(cmd.reply.code, rcode);                                        \
		T_EQ_STR(cmd.reply.enh, enhanced);                                      \
	} while (0)

#define OK(line) T_EQ_INT(parse(line), 0)

/* A string of n copies of ch, in a static buffer (one at a time). */
static const char *rep(char ch, size_t n)
{
	static char buf[16384];

	memset(buf, ch, n);
	buf[n] = '\0';
	return buf;
}

static void test_verbs(void)
{
	OK("EHLO mail.example.com");
	T_EQ_INT(cmd.verb, SMTP_EHLO);
	T_EQ_STR(cmd.arg, "mail.example.com");
	OK("ehlo Mail.Example.COM");
	T_EQ_STR(cmd.arg, "Mail.Example.COM");
	OK("HeLo localhost");
	T_EQ_INT(cmd.verb, SMTP_HELO);
	OK("EHLO my_pc.lan");		/* underscores tolerated in HELO names */
	OK("EHLO [192.0.2.1]");
	T_CHECK(cmd.helo_literal);
	OK("EHLO [IPv6:2001:db8::1]");
	REFUSED("EHLO", 501, "5.5.4");
	REFUSED("EHLO ", 501, "5.5.4");
	REFUSED("EHLO  a.b", 501, "5.5.4");
	REFUSED("EHLO a.b extra", 501, "5.5.4");
	REFUSED("EHLO -a.b", 501, "5.5.4");
	REFUSED("EHLO a..b", 501, "5.5.4");
	REFUSED("EHLO a.b.", 501, "5.5.4");
	REFUSED("EHLO [300.1.1.1]", 501, "5.5.4");
	REFUSED("EHLO [1.2.3]", 501, "5.5.4");
	REFUSED("EHLO [IPv6:2001:db8::g]", 501, "5.5.4");
	REFUSED("EHLO [tag:foo]", 501, "5.5.4");
	REFUSED("EHLO [1.2.3.4", 501, "5.5.4");

	OK("DATA");
	T_EQ_INT(cmd.verb, SMTP_DATA);
	OK("data");
	REFUSED("DATA x", 501, "5.5.4");
	REFUSED("DATA ", 501, "5.5.4");
	OK("RSET");
	T_EQ_INT(cmd.verb, SMTP_RSET);
	REFUSED("RSET now", 501, "5.5.4");
	OK("QUIT");
	T_EQ_INT(cmd.verb, SMTP_QUIT);
	REFUSED("QUIT please", 501, "5.5.4");
	OK("STARTTLS");
	T_EQ_INT(cmd.verb, SMTP_STARTTLS);
	OK("starttls");
	REFUSED("STARTTLS x", 501, "5.5.4");
	OK("NOOP");
	T_EQ_INT(cmd.verb, SMTP_NOOP);
	OK("NOOP hello there");
	T_EQ_STR(cmd.arg, "hello there");
	REFUSED("NOOP ", 501, "5.5.4");
	OK("HELP");
	OK("HELP MAIL");
	T_EQ_STR(cmd.arg, "MAIL");
	OK("VRFY postmaster");
	T_EQ_INT(cmd.verb, SMTP_VRFY);
	T_EQ_STR(cmd.arg, "postmaster");
	REFUSED("VRFY", 501, "5.5.4");
	REFUSED("VRFY ", 501, "5.5.4");

	REFUSED("XYZZY", 500, "5.5.2");
	T_EQ_STR(cmd.reply.text, "Syntax error, command unrecognized");
	T_EQ_INT(cmd.verb, SMTP_NONE);
	REFUSED("", 500, "5.5.2");
	REFUSED(" QUIT", 500, "5.5.2");
	REFUSED("QUITX", 500, "5.5.2");
	REFUSED("MAILFROM:<a@b>", 500, "5.5.2");
	REFUSED("MAI\xcc L FROM:<a@b>", 500, "5.5.2");	/* 8-bit in the verb */
	REFUSED("QU\xc3\xa9T", 500, "5.5.2");
	REFUSED("NOOP caf\xc3\xa9", 501, "5.5.4");	/* 8-bit outside MAIL/RCPT */
	REFUSED("EHLO caf\xc3\xa9.example", 501, "5.5.4");
	REFUSED("QUIT\t", 500, "5.5.2");		/* control characters */
	REFUSED("NOOP a\tb", 500, "5.5.2");
	REFUSED("NOOP a\rb", 500, "5.5.2");
	REFUSED("NOOP a\x7f", 500, "5.5.2");
	REFUSED("NOOP \x1b[31m", 500, "5.5.2");
}

static void test_bdat_auth(void)
{
	OK("BDAT 1000");
	T_EQ_INT(cmd.verb, SMTP_BDAT);
	T_EQ_INT(cmd.bdat_size, 1000);
	T_CHECK(!cmd.bdat_last);
	OK("BDAT 0 LAST");
	T_EQ_INT(cmd.bdat_size, 0);
	T_CHECK(cmd.bdat_last);
	OK("bdat 5 last");
	T_CHECK(cmd.bdat_last);
	OK("BDAT 9223372036854775807");
	T_EQ_INT(cmd.bdat_size, INT64_MAX);
	REFUSED("BDAT 9223372036854775808", 501, "5.5.4");
	REFUSED("BDAT 99999999999999999999999", 501, "5.5.4");
	REFUSED("BDAT", 501, "5.5.4");
	REFUSED("BDAT -1", 501, "5.5.4");
	REFUSED("BDAT 1x", 501, "5.5.4");
	REFUSED("BDAT 1  LAST", 501, "5.5.4");
	REFUSED("BDAT 1 LAST ", 501, "5.5.4");
	REFUSED("BDAT 1 FIRST", 501, "5.5.4");

	OK("AUTH PLAIN");
	T_EQ_INT(cmd.verb, SMTP_AUTH);
	T_EQ_STR(cmd.arg, "PLAIN");
	T_CHECK(!cmd.has_auth_resp);
	OK("auth login");
	T_EQ_STR(cmd.arg, "LOGIN");
	OK("AUTH PLAIN AHVzZXIAcGFzcw==");
	T_CHECK(cmd.has_auth_resp);
	T_EQ_STR(cmd.auth_resp, "AHVzZXIAcGFzcw==");
	OK("AUTH PLAIN =");
	T_EQ_STR(cmd.auth_resp, "=");
	OK("AUTH CRAM-MD5");
	REFUSED("AUTH", 501, "5.5.4");
	REFUSED("AUTH ", 501, "5.5.4");
	REFUSED("AUTH PL@IN", 501, "5.5.4");
	REFUSED("AUTH ABCDEFGHIJKLMNOPQRSTU", 501, "5.5.4");	/* 21 > 20 */
	REFUSED("AUTH PLAIN abc", 501, "5.5.4");		/* not a multiple of 4 */
	REFUSED("AUTH PLAIN ab=c", 501, "5.5.4");
	REFUSED("AUTH PLAIN a===", 501, "5.5.4");
	REFUSED("AUTH PLAIN AAAA AAAA", 501, "5.5.4");
	REFUSED("AUTH PLAIN  AAAA", 501, "5.5.4");
	/* AUTH lines may be 12288 octets with CRLF (RFC 4954). */
	{
		char line[SMTP_AUTH_LINE_MAX + 8];
		size_t pre = strlen("AUTH PLAIN ");
		size_t n = SMTP_AUTH_LINE_MAX - 2 - pre;

		n -= n % 4;
		memcpy(line, "AUTH PLAIN ", pre);
		memcpy(line + pre, rep('A', n), n);
		T_EQ_INT(parse_n(line, pre + n), 0);
		memcpy(line + pre, rep('A', n + 4), n + 4);
		T_EQ_INT(parse_n(line, pre + n + 4), 500);
	}
}

static void test_mail_paths(void)
{
	OK("MAIL FROM:<user@example.com>");
	T_EQ_INT(cmd.verb, SMTP_MAIL);
	T_EQ_STR(cmd.path.addr, "user@example.com");
	T_EQ_STR(cmd.path.local, "user");
	T_EQ_STR(cmd.path.domain, "example.com");
	T_CHECK(!cmd.path.null_path && !cmd.path.has_percent && !cmd.path.has_bang);
	OK("mail from:<User@Example.COM>");
	T_EQ_STR(cmd.path.addr, "User@Example.COM");
	OK("MAIL FROM: <user@example.com>");	/* one space tolerated */
	T_EQ_STR(cmd.path.addr, "user@example.com");
	OK("MAIL FROM:<>");
	T_CHECK(cmd.path.null_path);
	T_EQ_STR(cmd.path.addr, "");
	OK("MAIL FROM: <>");
	OK("MAIL FROM:<first.last+tag@sub.example.org>");
	OK("MAIL FROM:<a@[192.0.2.1]>");
	T_CHECK(cmd.path.domain_literal);
	T_EQ_STR(cmd.path.domain, "[192.0.2.1]");
	OK("MAIL FROM:<a@[IPv6:2001:db8::1]>");
	OK("MAIL FROM:<a@[IPv6:::ffff:192.0.2.1]>");
	OK("MAIL FROM:<a@[IPv6:2001:DB8:0:0:0:0:0:1]>");
	REFUSED("MAIL FROM:<a@[IPv6:2001:db8:::1]>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@[IPv6:1.2.3.4]>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@[256.1.1.1]>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@[1.2.3.4.5]>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@[1.2.3.4]x>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@[x:y]>", 501, "5.1.7");

	REFUSED("MAIL", 501, "5.5.4");
	REFUSED("MAIL FROM", 501, "5.5.4");
	REFUSED("MAIL TO:<a@b>", 501, "5.5.4");
	REFUSED("MAIL  FROM:<a@b>", 501, "5.5.4");
	REFUSED("MAIL FROM :<a@b>", 501, "5.5.4");
	REFUSED("MAIL FROM:a@b", 501, "5.1.7");		/* brackets required */
	T_EQ_STR(cmd.reply.text, "Bad sender address syntax");
	REFUSED("MAIL FROM:  <a@b>", 501, "5.1.7");	/* only one space */
	REFUSED("MAIL FROM:<a@b", 501, "5.1.7");
	REFUSED("MAIL FROM:<<a@b>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@b>>", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> ", 501, "5.5.4");
	REFUSED("MAIL FROM:<a<b@c>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@b>x", 501, "5.5.4");
	REFUSED("MAIL FROM:<user>", 501, "5.1.7");
	REFUSED("MAIL FROM:<Postmaster>", 501, "5.1.7");	/* RCPT only */
	REFUSED("MAIL FROM:<@b>", 553, "5.1.7");
	REFUSED("MAIL FROM:<a@>", 501, "5.1.7");
	REFUSED("MAIL FROM:<.a@b>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a.@b>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a..b@c>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a b@c>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@b..c>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@-b.c>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@b-.c>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@b.c.>", 501, "5.1.7");
	REFUSED("MAIL FROM:<a@b_c.d>", 501, "5.1.7");	/* no underscores in paths */
	REFUSED("MAIL FROM:<a(comment)@b>", 501, "5.1.7");
}

static void test_rcpt_paths(void)
{
	OK("RCPT TO:<user@example.com>");
	T_EQ_INT(cmd.verb, SMTP_RCPT);
	T_EQ_STR(cmd.path.addr, "user@example.com");
	OK("rcpt to: <user@example.com>");
	OK("RCPT TO:<Postmaster>");
	T_CHECK(cmd.path.postmaster);
	T_EQ_STR(cmd.path.addr, "postmaster");
	OK("RCPT TO:<postMASTER>");
	T_CHECK(cmd.path.postmaster);
	OK("RCPT TO:<Postmaster@example.com>");
	T_CHECK(!cmd.path.postmaster);
	T_EQ_STR(cmd.path.addr, "Postmaster@example.com");
	REFUSED("RCPT TO:<>", 501, "5.1.3");
	REFUSED("RCPT TO:user@example.com", 501, "5.1.3");
	T_EQ_STR(cmd.reply.text, "Bad recipient address syntax");
	REFUSED("RCPT TO:", 501, "5.1.3");
	REFUSED("RCPT FROM:<a@b>", 501, "5.5.4");
	REFUSED("RCPT TO:<user>", 501, "5.1.3");
	REFUSED("RCPT TO:<a@b", 501, "5.1.3");
	REFUSED("RCPT TO:a@b>", 501, "5.1.3");
}

/* Each relay or smuggling trick is refused or flagged, never parsed into something else. */
static void test_relay_tricks(void)
{
	REFUSED("RCPT TO:<@relay.example:user@victim.example>", 553, "5.1.3");
	T_EQ_STR(cmd.reply.text, "Source routes are not accepted");
	REFUSED("RCPT TO:<@a,@b:user@c>", 553, "5.1.3");
	REFUSED("MAIL FROM:<@a,@b:user@c>", 553, "5.1.7");
	REFUSED("RCPT TO:<user@ours.example@theirs.example>", 553, "5.1.3");
	REFUSED("RCPT TO:<user@ours@theirs>", 553, "5.1.3");
	REFUSED("MAIL FROM:<user@ours@theirs>", 553, "5.1.7");
	REFUSED("RCPT TO:<\"user@theirs\"@ours.example>", 553, "5.1.3");
	REFUSED("RCPT TO:<\"user\\@theirs\"@ours.example>", 553, "5.1.3");

	OK("RCPT TO:<user%theirs.example@ours.example>");	/* %-hack: accepted, flagged */
	T_CHECK(cmd.path.has_percent);
	T_CHECK(!cmd.path.has_bang);
	T_EQ_STR(cmd.path.domain, "ours.example");
	OK("RCPT TO:<theirs.example!user@ours.example>");	/* bang path: flagged */
	T_CHECK(cmd.path.has_bang);
	T_CHECK(!cmd.path.has_percent);
	OK("RCPT TO:<\"user%theirs\"@ours.example>");		/* also inside quotes */
	T_CHECK(cmd.path.has_percent);
	OK("RCPT TO:<\"a!b\"@ours.example>");
	T_CHECK(cmd.path.has_bang);

	REFUSED("RCPT TO:<<user@example.com>>", 501, "5.1.3");
	REFUSED("RCPT TO:<user@example.com", 501, "5.1.3");
	REFUSED("RCPT TO:<user@example.com>>", 501, "5.5.4");
	REFUSED("RCPT TO:<user@example.com> <x@y>", 501, "5.5.4");
	REFUSED("RCPT TO:<user@example.com>\r\nRCPT TO:<x@y>", 500, "5.5.2");

	/* NUL bytes at several positions */
	static const char with_nul[] = "RCPT TO:<user@example.com> NOTIFY=NEVER";
	size_t n = sizeof(with_nul) - 1;
	size_t positions[] = { 0, 2, 4, 5, 9, 13, 14, 25, 26, 30, n - 1 };
	for (size_t i = 0; i < ARRAY_LEN(positions); i++) {
		char line[sizeof(with_nul)];

		memcpy(line, with_nul, sizeof(with_nul));
		line[positions[i]] = '\0';
		T_EQ_INT(parse_n(line, n), 500);
		T_EQ_STR(cmd.reply.enh, "5.5.2");
	}
	T_EQ_INT(parse_n("QUIT\0", 5), 500);
	T_EQ_INT(parse_n("\0", 1), 500);
	T_EQ_INT(parse_n(with_nul, n), 0);
}

static void test_quoted_and_utf8(void)
{
	OK("RCPT TO:<\"john doe\"@example.com>");
	T_EQ_STR(cmd.path.local, "\"john doe\"");
	T_EQ_STR(cmd.path.addr, "\"john doe\"@example.com");
	T_CHECK(cmd.path.quoted);
	OK("RCPT TO:<\"john\"@example.com>");		/* quotes dropped when not needed */
	T_EQ_STR(cmd.path.addr, "john@example.com");
	T_CHECK(!cmd.path.quoted);
	OK("RCPT TO:<\"j\\o\\h\\n\"@example.com>");	/* needless escapes removed */
	T_EQ_STR(cmd.path.local, "john");
	OK("RCPT TO:<\"a\\\"b\\\\c\"@example.com>");	/* needed escapes kept */
	T_EQ_STR(cmd.path.local, "\"a\\\"b\\\\c\"");
	OK("RCPT TO:<\"a>b\"@example.com>");		/* '>' inside quotes */
	T_EQ_STR(cmd.path.local, "\"a>b\"");
	OK("RCPT TO:<\"a..b\"@example.com>");
	T_EQ_STR(cmd.path.local, "\"a..b\"");
	REFUSED("RCPT TO:<\"\"@example.com>", 501, "5.1.3");
	REFUSED("RCPT TO:<\"abc@example.com>", 501, "5.1.3");
	REFUSED("RCPT TO:<\"abc\"x@example.com>", 501, "5.1.3");
	REFUSED("RCPT TO:<x\"abc\"@example.com>", 501, "5.1.3");
	REFUSED("RCPT TO:<\"abc\\\"@example.com>", 501, "5.1.3");

	/* UTF-8: MAIL needs SMTPUTF8 itself; RCPT is flagged for the caller. */
	OK("MAIL FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example> SMTPUTF8");
	T_CHECK(cmd.path.utf8);
	T_CHECK(cmd.mail.smtputf8);
	REFUSED("MAIL FROM:<j\xc3\xb6rg@example.com>", 553, "5.6.7");
	OK("RCPT TO:<j\xc3\xb6rg@example.com>");
	T_CHECK(cmd.path.utf8);
	OK("RCPT TO:<\"j\xc3\xb6 rg\"@example.com>");
	T_CHECK(cmd.path.utf8);
	OK("RCPT TO:<jorg@example.com>");
	T_CHECK(!cmd.path.utf8);
	REFUSED("RCPT TO:<j\xc3@example.com>", 501, "5.1.3");		/* truncated */
	REFUSED("RCPT TO:<j\xc0\xaf@example.com>", 501, "5.1.3");		/* overlong */
	REFUSED("RCPT TO:<j\xed\xa0\x80@example.com>", 501, "5.1.3");	/* surrogate */
	REFUSED("RCPT TO:<j\xff@example.com>", 501, "5.1.3");
	REFUSED("RCPT TO:<jorg@example.com> NOTIFY=N\xc3\xa9VER", 501, "5.5.4");

	struct smtp_reply r;
	char text[256];

	smtp_reply_utf8(&r, true);
	T_EQ_INT(r.code, 553);
	T_EQ_INT(smtp_reply_format(&r, text, sizeof(text)), (int)strlen(text));
	T_EQ_STR(text, "553 5.6.7 Non-ASCII recipient address requires SMTPUTF8");
	T_EQ_INT(smtp_reply_format(&r, text, 10), -1);
}

static void test_lengths(void)
{
	char line[4096];

	/* local part 64 / 65 */
	T_CHECK(str_fmt(line, sizeof(line), "RCPT TO:<%s@example.com>", rep('a', 64)) > 0);
	OK(line);
	T_EQ_INT(strlen(cmd.path.local), 64);
	T_CHECK(str_fmt(line, sizeof(line), "RCPT TO:<%s@example.com>", rep('a', 65)) > 0);
	REFUSED(line, 501, "5.1.3");
	/* quoted: the normalized form counts (62 + 2 quotes = 64 ok, 63 + 2 refused) */
	T_CHECK(str_fmt(line, sizeof(line), "RCPT TO:<\"%s b\"@example.com>", rep('a', 60)) > 0);
	OK(line);
	T_CHECK(str_fmt(line, sizeof(line), "RCPT TO:<\"%s b\"@example.com>", rep('a', 61)) > 0);
	REFUSED(line, 501, "5.1.3");

	/* domain 255 / 256 and labels 63 / 64 (EHLO: a path cannot hold 255 octets) */
	char dom[300];
	size_t d = 0;
	while (d + 64 <= 255) {
		memcpy(dom + d, rep('x', 63), 63);
		dom[d + 63] = '.';
		d += 64;
	}
	memcpy(dom + d, rep('y', 255 - d), 255 - d);
	dom[255] = '\0';
	T_CHECK(str_fmt(line, sizeof(line), "EHLO %s", dom) > 0);
	OK(line);
	T_EQ_INT(strlen(cmd.arg), 255);
	T_CHECK(str_fmt(line, sizeof(line), "EHLO %sy", dom) > 0);
	REFUSED(line, 501, "5.5.4");
	T_CHECK(str_fmt(line, sizeof(line), "EHLO %s.com", rep('x', 63)) > 0);
	OK(line);
	T_CHECK(str_fmt(line, sizeof(line), "EHLO %s.com", rep('x', 64)) > 0);
	REFUSED(line, 501, "5.5.4");

	/* path 256 / 257 octets including the angle brackets */
	char mid[300];
	memcpy(mid, rep('d', 63), 63);
	mid[63] = '.';
	memcpy(mid + 64, rep('e', 63), 63);
	mid[127] = '.';
	memcpy(mid + 128, rep('f', 63), 63);
	mid[191] = '.';
	mid[192] = '\0';
	/* "<" + 60 + "@" + 192 + "g" + ">" = 256 */
	T_CHECK(str_fmt(line, sizeof(line), "MAIL FROM:<%s@%sg>", rep('a', 60), mid) > 0);
	T_EQ_INT(strlen(line) - strlen("MAIL FROM:"), 256);
	OK(line);
	T_CHECK(str_fmt(line, sizeof(line), "MAIL FROM:<%s@%sgh>", rep('a', 60), mid) > 0);
	REFUSED(line, 501, "5.1.7");

	/* command line 512 with CRLF: 510 here ok, 511 refused; 512 and 513 too */
	size_t pre = strlen("NOOP ");
	memcpy(line, "NOOP ", pre);
	memcpy(line + pre, rep('n', 510 - pre), 510 - pre);
	T_EQ_INT(parse_n(line, 510), 0);
	memcpy(line + pre, rep('n', 513 - pre), 513 - pre);
	T_EQ_INT(parse_n(line, 511), 500);
	T_EQ_STR(cmd.reply.text, "Line too long");
	T_EQ_INT(parse_n(line, 512), 500);
	T_EQ_INT(parse_n(line, 513), 500);
	T_EQ_INT(parse_n(line, 12287), 500);
	static char huge[20000];
	memset(huge, 'A', sizeof(huge));
	T_EQ_INT(parse_n(huge, sizeof(huge)), 500);

	/* MAIL and RCPT may be longer because of their parameters */
	T_CHECK(str_fmt(line, sizeof(line), "MAIL FROM:<a@b> AUTH=%s", rep('x', 500)) > 0);
	OK(line);
	T_CHECK(str_fmt(line, sizeof(line), "MAIL FROM:<a@b> AUTH=%s", rep('x', 501)) > 0);
	REFUSED(line, 501, "5.5.4");
	T_CHECK(str_fmt(line, sizeof(line), "RCPT TO:<a@b> ORCPT=rfc822;%s", rep('x', 493)) > 0);
	OK(line);
	T_EQ_INT(strlen(cmd.rcpt.orcpt), 493);
	T_CHECK(str_fmt(line, sizeof(line), "RCPT TO:<a@b> ORCPT=rfc822;%s", rep('x', 494)) > 0);
	REFUSED(line, 501, "5.5.4");
	memcpy(line, "RCPT TO:<a@b> NOTIFY=NEVER", 26);
	memset(line + 26, ' ', 600);
	T_EQ_INT(parse_n(line, SMTP_RCPT_LINE_MAX - 1), 500);
	memcpy(line, "MAIL FROM:<a@b>", 15);
	memset(line + 15, ' ', 1200);
	T_EQ_INT(parse_n(line, SMTP_MAIL_LINE_MAX - 1), 500);
	T_EQ_INT(parse_n(line, SMTP_MAIL_LINE_MAX - 2), 501);	/* length ok, syntax not */
}

static void test_mail_params(void)
{
	OK("MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B123 AUTH=<>");
	T_CHECK(cmd.mail.has_size);
	T_EQ_INT(cmd.mail.size, 1000);
	T_EQ_INT(cmd.mail.body, SMTP_BODY_8BITMIME);
	T_CHECK(cmd.mail.smtputf8);
	T_EQ_INT(cmd.mail.ret, SMTP_RET_HDRS);
	T_CHECK(cmd.mail.has_envid);
	T_EQ_STR(cmd.mail.envid, "QQ+123");
	T_CHECK(cmd.mail.has_auth && cmd.mail.auth_null);
	OK("mail from:<a@b> size=0 body=7bit ret=full smtputf8");
	T_EQ_INT(cmd.mail.body, SMTP_BODY_7BIT);
	T_EQ_INT(cmd.mail.ret, SMTP_RET_FULL);
	OK("MAIL FROM:<a@b> BODY=BINARYMIME");
	T_EQ_INT(cmd.mail.body, SMTP_BODY_BINARYMIME);
	OK("MAIL FROM:<a@b> AUTH=joe+40example.com");
	T_CHECK(cmd.mail.has_auth && !cmd.mail.auth_null);
	T_EQ_STR(cmd.mail.auth, "joe@example.com");
	OK("MAIL FROM:<a@b>");
	T_CHECK(!cmd.mail.has_size && !cmd.mail.smtputf8 && !cmd.mail.has_auth);
	T_EQ_INT(cmd.mail.body, SMTP_BODY_NONE);

	OK("MAIL FROM:<a@b> SIZE=18446744073709551615");
	T_EQ_INT(cmd.mail.size == UINT64_MAX, 1);
	OK("MAIL FROM:<a@b> SIZE=18446744073709551616");	/* saturates */
	T_EQ_INT(cmd.mail.size == UINT64_MAX, 1);
	OK("MAIL FROM:<a@b> SIZE=99999999999999999999");
	T_EQ_INT(cmd.mail.size == UINT64_MAX, 1);
	REFUSED("MAIL FROM:<a@b> SIZE=999999999999999999999", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SIZE=", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SIZE", 501, "5.5.4");
	T_EQ_STR(cmd.reply.text, "Bad SIZE parameter syntax");
	REFUSED("MAIL FROM:<a@b> SIZE=-1", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SIZE=+1", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SIZE=1k", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SIZE=0x10", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SIZE=1 SIZE=1", 501, "5.5.4");
	T_EQ_STR(cmd.reply.text, "Duplicate SIZE parameter");
	REFUSED("MAIL FROM:<a@b> BODY=9BIT", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> BODY=7BIT BODY=7BIT", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SMTPUTF8=yes", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SMTPUTF8 SMTPUTF8", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> RET=ALL", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> RET=FULL RET=HDRS", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> ENVID=a+4", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> ENVID=a+0A", 501, "5.5.4");	/* decodes to a control */
	REFUSED("MAIL FROM:<a@b> ENVID=x ENVID=y", 501, "5.5.4");
	char line[400];
	T_CHECK(str_fmt(line, sizeof(line), "MAIL FROM:<a@b> ENVID=%s", rep('e', 100)) > 0);
	OK(line);
	T_CHECK(str_fmt(line, sizeof(line), "MAIL FROM:<a@b> ENVID=%s", rep('e', 101)) > 0);
	REFUSED(line, 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> AUTH=", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> AUTH=+ZZ", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> AUTH=<> AUTH=<>", 501, "5.5.4");

	REFUSED("MAIL FROM:<a@b> FOO=bar", 555, "5.5.4");
	T_EQ_STR(cmd.reply.text, "Unsupported option: FOO");
	REFUSED("MAIL FROM:<a@b> X-SIZE=1", 555, "5.5.4");
	REFUSED("MAIL FROM:<a@b> NOTIFY=NEVER", 555, "5.5.4");	/* RCPT parameter */
	REFUSED("MAIL FROM:<a@b> ORCPT=rfc822;a@b", 555, "5.5.4");
	REFUSED("MAIL FROM:<a@b>  SIZE=1", 501, "5.5.4");	/* two spaces */
	REFUSED("MAIL FROM:<a@b> SIZE=1 ", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> =1", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> -X=1", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> S_ZE=1", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SIZE=1=2", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> SIZE==1", 501, "5.5.4");
	REFUSED("MAIL FROM:<a@b> FOO=\xc3\xa9", 501, "5.5.4");
}

static void test_rcpt_params(void)
{
	OK("RCPT TO:<a@b> NOTIFY=NEVER");
	T_EQ_INT(cmd.rcpt.notify, SMTP_NOTIFY_NEVER);
	OK("RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY");
	T_EQ_INT(cmd.rcpt.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	OK("RCPT TO:<a@b> notify=delay,failure");
	T_EQ_INT(cmd.rcpt.notify, SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	OK("RCPT TO:<a@b>");
	T_EQ_INT(cmd.rcpt.notify, 0);
	T_CHECK(!cmd.rcpt.has_orcpt);
	REFUSED("RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> NOTIFY=SUCCESS,NEVER", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> NOTIFY=SUCCESS,SUCCESS", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> NOTIFY=SUCCESS,", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> NOTIFY=,SUCCESS", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> NOTIFY=SUCCESS,,DELAY", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> NOTIFY=ALWAYS", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4");

	OK("RCPT TO:<a@b> ORCPT=rfc822;joe+40example.com");
	T_CHECK(cmd.rcpt.has_orcpt);
	T_EQ_STR(cmd.rcpt.orcpt_type, "rfc822");
	T_EQ_STR(cmd.rcpt.orcpt, "joe@example.com");
	OK("RCPT TO:<a@b> ORCPT=RFC822;x+2By NOTIFY=FAILURE");
	T_EQ_STR(cmd.rcpt.orcpt, "x+y");
	T_EQ_INT(cmd.rcpt.notify, SMTP_NOTIFY_FAILURE);
	REFUSED("RCPT TO:<a@b> ORCPT=rfc822;", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> ORCPT=x400;abc", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> ORCPT=joe@example.com", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> ORCPT=rfc822;a+", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> ORCPT=rfc822;a+00b", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;b", 501, "5.5.4");
	REFUSED("RCPT TO:<a@b> SIZE=10", 555, "5.5.4");
	REFUSED("RCPT TO:<a@b> SMTPUTF8", 555, "5.5.4");
	REFUSED("RCPT TO:<a@b> BODY=8BITMIME", 555, "5.5.4");
	REFUSED("RCPT TO:<a@b> XFORWARD=1", 555, "5.5.4");
	T_EQ_STR(cmd.reply.text, "Unsupported option: XFORWARD");
}

static void test_xtext(void)
{
	char out[64], back[64];
	const char *samples[] = { "", "plain", "a+b=c", "sp ace", "\x01\x7f\xff", "user@example.com" };

	for (size_t i = 0; i < ARRAY_LEN(samples); i++) {
		ssize_t e = smtp_xtext_encode(samples[i], strlen(samples[i]), out, sizeof(out));

		T_CHECK(e >= 0);
		T_EQ_INT(smtp_xtext_decode(out, (size_t)e, back, sizeof(back)),
			 (ssize_t)strlen(samples[i]));
		T_EQ_STR(back, samples[i]);
	}
	T_EQ_INT(smtp_xtext_encode("a+b=c d", 7, out, sizeof(out)), 13);
	T_EQ_STR(out, "a+2Bb+3Dc+20d");
	T_EQ_INT(smtp_xtext_encode("abc", 3, out, 3), -1);	/* no room for the NUL */
	T_EQ_INT(smtp_xtext_encode("abc", 3, out, 4), 3);
	T_EQ_INT(smtp_xtext_encode("+", 1, out, 3), -1);
	T_EQ_INT(smtp_xtext_decode("+4", 2, out, sizeof(out)), -1);
	T_EQ_INT(smtp_xtext_decode("+ZZ", 3, out, sizeof(out)), -1);
	T_EQ_INT(smtp_xtext_decode("abc+", 4, out, sizeof(out)), -1);
	T_EQ_INT(smtp_xtext_decode("+2b", 3, out, sizeof(out)), -1);	/* upper case only */
	T_EQ_INT(smtp_xtext_decode("+00", 3, out, sizeof(out)), -1);
	T_EQ_INT(smtp_xtext_decode("a=b", 3, out, sizeof(out)), -1);
	T_EQ_INT(smtp_xtext_decode("a b", 3, out, sizeof(out)), -1);
	T_EQ_INT(smtp_xtext_decode("abc", 3, out, 3), -1);
	T_EQ_INT(smtp_xtext_decode("abc", 3, out, 4), 3);
	T_EQ_INT(smtp_xtext_decode("+41+42", 6, out, sizeof(out)), 2);
	T_EQ_STR(out, "AB");
}

int main(void)
{
	T_RUN(test_verbs);
	T_RUN(test_bdat_auth);
	T_RUN(test_mail_paths);
	T_RUN(test_rcpt_paths);
	T_RUN(test_relay_tricks);
	T_RUN(test_quoted_and_utf8);
	T_RUN(test_lengths);
	T_RUN(test_mail_params);
	T_RUN(test_rcpt_params);
	T_RUN(test_xtext);
	return T_DONE();
}
