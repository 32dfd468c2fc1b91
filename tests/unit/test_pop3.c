/*
 * test_pop3.c: lib/pop3.c: Dovecot-compatible UIDL templates (the values Dovecot 2.3.19's
 * pop3 printed for the same UIDs and UIDVALIDITY) and the RETR/TOP transfer encoding.
 */
#include <string.h>

#include "pop3.h"
#include "t.h"

static const char *uidl(const char *fmt, uint32_t uid, uint32_t uidv, const char *file)
{
	static char out[POP3_UIDL_MAX + 1];

	if (pop3_uidl(fmt, uid, uidv, file, out, sizeof(out)) < 0)
		return "(error)";
	return out;
}

static void test_default_format_matches_dovecot(void)
{
	/* Dovecot 2.3.19, pop3_uidl_format = %08Xu%08Xv, UIDVALIDITY 1795303654 */
	T_EQ_STR(uidl(POP3_DEFAULT_UIDL_FORMAT, 1, 1795303654, NULL), "000000016b0228e6");
	T_EQ_STR(uidl(POP3_DEFAULT_UIDL_FORMAT, 3, 1795303654, NULL), "000000036b0228e6");
	T_EQ_STR(uidl(POP3_DEFAULT_UIDL_FORMAT, 0xabcdef12u, 7, NULL), "abcdef1200000007");
	T_EQ_STR(uidl(POP3_DEFAULT_UIDL_FORMAT, 0xffffffffu, 0xffffffffu, NULL), "ffffffffffffffff");
}

static void test_other_templates(void)
{
	const char *file = "1700000000.M1P2Q3.host,S=10,W=12:2,S";

	T_EQ_STR(uidl("%u.%v", 42, 99, NULL), "42.99");
	T_EQ_STR(uidl("%{uid}-%{uidvalidity}", 42, 99, NULL), "42-99");
	T_EQ_STR(uidl("%f", 1, 1, file), "1700000000.M1P2Q3.host,S=10,W=12");
	T_EQ_STR(uidl("%{filename}", 1, 1, file), "1700000000.M1P2Q3.host,S=10,W=12");
	T_EQ_STR(uidl("%XUu", 0xabcu, 1, NULL), "ABC");	/* in order: hex, then upper */
	T_EQ_STR(uidl("%UXu", 0xabcu, 1, NULL), "abc");
	T_EQ_STR(uidl("%05u", 42, 1, NULL), "00042");
	T_EQ_STR(uidl("%05u", 1234567, 1, NULL), "1234567");	/* zero padding never cuts */
	T_EQ_STR(uidl("%3u", 1234567, 1, NULL), "123");		/* a plain width does */
	T_EQ_STR(uidl("%2.3u", 1234567, 1, NULL), "345");	/* offset 2, width 3 */
	T_EQ_STR(uidl("%-3.u", 1234567, 1, NULL), "567");	/* the last three */
	T_EQ_STR(uidl("%.-2u", 1234567, 1, NULL), "12345");	/* all but the last two */
	T_EQ_STR(uidl("a%%b%u", 5, 1, NULL), "a%b5");
	T_EQ_STR(uidl("%Lf", 1, 1, "ABC:2,"), "abc");
}

static void test_refused_templates(void)
{
	char err[128];

	T_EQ_INT(pop3_uidl_check(POP3_DEFAULT_UIDL_FORMAT, err, sizeof(err)), 0);
	T_EQ_INT(pop3_uidl_check("%f", err, sizeof(err)), 0);
	T_EQ_INT(pop3_uidl_check("%m", err, sizeof(err)), -1);
	T_CHECK(strstr(err, "%m") != NULL);
	T_EQ_INT(pop3_uidl_check("%g", err, sizeof(err)), -1);
	T_EQ_INT(pop3_uidl_check("%q", err, sizeof(err)), -1);
	T_EQ_INT(pop3_uidl_check("%{md5}", err, sizeof(err)), -1);
	T_EQ_INT(pop3_uidl_check("%Mu", err, sizeof(err)), -1);	/* MD5 modifier */
	T_EQ_INT(pop3_uidl_check("%u %v", err, sizeof(err)), -1);	/* a space */
	T_EQ_INT(pop3_uidl_check("", err, sizeof(err)), -1);		/* empty */
	T_EQ_INT(pop3_uidl_check("%080u", err, sizeof(err)), -1);	/* over 70 */
	T_EQ_INT(pop3_uidl_check("%u%", err, sizeof(err)), -1);
	T_EQ_INT(pop3_uidl_check("%99999999999u", err, sizeof(err)), -1);
	T_EQ_STR(uidl("%f", 1, 1, NULL), "(error)");
	T_EQ_STR(uidl("x%fy", 1, 1, "a b"), "(error)");	/* a space in the result */
}

/* Encode msg in chunks of `chunk` bytes (TOP when lines >= 0). */
static const char *encode(const char *msg, size_t chunk, long lines)
{
	static struct buf out;
	struct pop3_encoder e;
	size_t n = strlen(msg);

	buf_free(&out);
	buf_init(&out, 4 * n + 16);
	pop3_encoder_init(&e, lines >= 0, lines >= 0 ? (uint64_t)lines : 0);
	for (size_t i = 0; i < n; i += chunk)
		if (pop3_encode(&e, msg + i, n - i < chunk ? n - i : chunk, &out) < 0)
			return "(overflow)";
	if (pop3_encode_end(&e, &out) < 0)
		return "(overflow)";
	return buf_cstr(&out);
}

static void test_crlf_and_dot_stuffing(void)
{
	const char *msg = "Subject: x\n\n.hidden\nmiddle.dot\n..two\n.\nend";
	const char *want = "Subject: x\r\n\r\n..hidden\r\nmiddle.dot\r\n...two\r\n..\r\nend\r\n";

	for (size_t chunk = 1; chunk <= strlen(msg); chunk++)
		T_EQ_STR(encode(msg, chunk, -1), want);
	/* CRLF already there: not doubled, even split between chunks */
	T_EQ_STR(encode("A: b\r\n\r\n.x\r\n", 1, -1), "A: b\r\n\r\n..x\r\n");
	T_EQ_STR(encode("A: b\r\n\r\n.x\r\n", 64, -1), "A: b\r\n\r\n..x\r\n");
	/* a bare CR stays (as Dovecot sends it); a first line starting with a dot */
	T_EQ_STR(encode(".a\rb\n", 64, -1), "..a\rb\r\n");
	T_EQ_STR(encode("", 64, -1), "");
}

static void test_top(void)
{
	const char *msg = "A: 1\nB: 2\n\nl1\n.l2\nl3\n";

	for (size_t chunk = 1; chunk <= strlen(msg); chunk++) {
		T_EQ_STR(encode(msg, chunk, 0), "A: 1\r\nB: 2\r\n\r\n");
		T_EQ_STR(encode(msg, chunk, 2), "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n");
		T_EQ_STR(encode(msg, chunk, 99), "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n");
	}
	/* the empty line may carry a CR; a message without a body */
	T_EQ_STR(encode("A: 1\r\n\r\nbody\r\n", 3, 0), "A: 1\r\n\r\n");
	T_EQ_STR(encode("A: 1\nB: 2", 4, 5), "A: 1\r\nB: 2\r\n");
}

int main(void)
{
	T_RUN(test_default_format_matches_dovecot);
	T_RUN(test_other_templates);
	T_RUN(test_refused_templates);
	T_RUN(test_crlf_and_dot_stuffing);
	T_RUN(test_top);
	return T_DONE();
}
