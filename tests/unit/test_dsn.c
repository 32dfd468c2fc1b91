/*
 * test_dsn.c: unit tests for lib/dsn.c. Every report produced is parsed back by a small
 * MIME reader here (boundaries, part headers, delivery-status blocks, CRLF and line
 * lengths), and one is also handed to Python's email package when python3 exists.
 * DSN_DUMP=path keeps that report in a file for a human to look at.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "dsn.h"
#include "queuefile.h"
#include "t.h"
#include "util.h"

#define OUT_LIMIT (4u << 20)
#define NOW_MS INT64_C(1700000100000)
#define QID "63A1F0C2D4E5B00012F"

static const char SIMPLE[] =
	"From: Sender <sender@example.org>\r\n"
	"To: bob@example.com\r\n"
	"Subject: hello\r\n"
	"Message-ID: <abc@example.org>\r\n"
	"\r\n"
	"BODY-MARKER line one\r\n"
	"line two\r\n";
#define SIMPLE_HDRS_LEN (sizeof(SIMPLE) - 1 - sizeof("\r\nBODY-MARKER line one\r\nline two\r\n") + 1)

/* ---- fixtures ------------------------------------------------------------------------- */

/* A temporary file holding junk, then the message at *off (as in a queue file). */
static int msg_file(const char *data, size_t len, off_t *off)
{
	char path[] = "/tmp/test_dsn.XXXXXX";
	static const char junk[] = "JUNK-BEFORE-THE-MESSAGE\n";
	int fd = mkstemp(path);

	if (fd < 0) {
		perror("mkstemp");
		exit(2);
	}
	(void)unlink(path);
	if (write_all(fd, junk, sizeof(junk) - 1) < 0 || write_all(fd, data, len) < 0 ||
	    write_all(fd, "TRAILER", 7) < 0) {
		perror("write");
		exit(2);
	}
	*off = (off_t)(sizeof(junk) - 1);
	return fd;
}

static struct dsn_msg base_msg(int fd, off_t off, size_t len)
{
	return (struct dsn_msg){
		.kind = DSN_KIND_FAILURE, .myhostname = "mx.test", .qid = QID,
		.sender = "sender@example.org", .ret = QF_RET_NONE,
		.arrival_ms = NOW_MS - 60000, .client_name = "client.example.org",
		.client_addr = "192.0.2.7", .now_ms = NOW_MS, .msg_fd = fd, .msg_off = off,
		.msg_len = len, .return_limit = DSN_RETURN_LIMIT_DEFAULT,
	};
}

static struct dsn_rcpt bob_rcpt(void)
{
	return (struct dsn_rcpt){
		.addr = "bob@example.com", .orcpt = "rfc822;alias@example.com",
		.action = DSN_ACTION_FAILED, .status = "5.1.1", .remote_mta = "mx.example.com",
		.diag = "550 5.1.1 no such user", .last_attempt_ms = NOW_MS - 1000,
	};
}

/* ---- a small MIME reader for checking ----------------------------------------------------- */

struct part {
	const char *hdr, *body;
	size_t hlen, blen;
};

struct report {
	char boundary[128];
	const char *top;
	size_t toplen;
	struct part part[4];
	size_t nparts;
};

/* Every line ends in CRLF, none is longer than 998 octets, no NUL. */
static bool wire_ok(const struct buf *b)
{
	size_t i, col = 0;

	for (i = 0; i < b->len; i++) {
		char c = b->data[i];
		if (c == '\0')
			return false;
		if (c == '\r') {
			if (i + 1 >= b->len || b->data[i + 1] != '\n')
				return false;
			i++, col = 0;
			continue;
		}
		if (c == '\n' || ++col > DSN_LINE_MAX)
			return false;
	}
	return b->len >= 2 && b->data[b->len - 1] == '\n';
}

/* Header field name in hdr[0..len): its unfolded value (folds removed, leading blanks
 * skipped) in out. 1 if found. */
static int header(const char *hdr, size_t len, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name), pos = 0, o = 0;

	while (pos < len) {
		const char *eol = memmem(hdr + pos, len - pos, "\r\n", 2);
		size_t end = eol != NULL ? (size_t)(eol - hdr) : len;
		if (end - pos > nl && strncasecmp(hdr + pos, name, nl) == 0 && hdr[pos + nl] == ':') {
			pos += nl + 1;
			while (pos < len && hdr[pos] == ' ')
				pos++;
			while (pos < len && o + 1 < size) {
				if (hdr[pos] == '\r' && pos + 2 < len && hdr[pos + 1] == '\n' &&
				    (hdr[pos + 2] == ' ' || hdr[pos + 2] == '\t')) {
					pos += 2;
					continue;
				}
				if (hdr[pos] == '\r')
					break;
				out[o++] = hdr[pos++];
			}
			out[o] = '\0';
			return 1;
		}
		pos = end + 2;
	}
	return 0;
}

static bool part_header(const struct part *p, const char *name, char *out, size_t size)
{
	return header(p->hdr, p->hlen, name, out, size) == 1;
}

static int parse_report(const struct buf *b, struct report *r)
{
	const char *end = b->data + b->len, *hend, *q, *p;
	char ct[512], delim[140];
	size_t dl;

	memset(r, 0, sizeof(*r));
	hend = memmem(b->data, b->len, "\r\n\r\n", 4);
	if (hend == NULL)
		return -1;
	r->top = b->data, r->toplen = (size_t)(hend - b->data) + 2;
	if (header(r->top, r->toplen, "Content-Type", ct, sizeof(ct)) != 1 ||
	    (q = strstr(ct, "boundary=\"")) == NULL)
		return -1;
	q += 10;
	if (strchr(q, '"') == NULL || (size_t)(strchr(q, '"') - q) >= sizeof(r->boundary))
		return -1;
	memcpy(r->boundary, q, (size_t)(strchr(q, '"') - q));
	dl = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", r->boundary);
	p = memmem(hend, (size_t)(end - hend), delim, dl);
	while (p != NULL && r->nparts < 4) {
		const char *start = p + dl, *next, *ph;
		if ((size_t)(end - start) >= 4 && memcmp(start, "--\r\n", 4) == 0)
			return start + 4 == end ? 0 : -1;
		if ((size_t)(end - start) < 2 || memcmp(start, "\r\n", 2) != 0)
			return -1;
		start += 2;
		next = memmem(start, (size_t)(end - start), delim, dl);
		if (next == NULL)
			return -1;
		ph = memmem(start, (size_t)(next - start), "\r\n\r\n", 4);
		if (ph == NULL)
			return -1;
		r->part[r->nparts] = (struct part){ start, ph + 4, (size_t)(ph - start) + 2,
						    (size_t)(next - ph - 4) };
		r->nparts++;
		p = next;
	}
	return -1;
}

/* The delivery-status blocks (separated by empty lines) of p. */
static size_t ds_blocks(const struct part *p, struct part *blk, size_t max)
{
	const char *s = p->body, *end = p->body + p->blen;
	size_t n = 0;

	while (s < end && n < max) {
		const char *e = memmem(s, (size_t)(end - s), "\r\n\r\n", 4);
		const char *stop = e != NULL ? e + 2 : end;
		if (stop - s > 2)
			blk[n++] = (struct part){ s, NULL, (size_t)(stop - s), 0 };
		s = e != NULL ? e + 4 : end;
	}
	return n;
}

static bool blk_is(const struct part *blk, const char *name, const char *want)
{
	char v[4096];

	return header(blk->hdr, blk->hlen, name, v, sizeof(v)) == 1 && strcmp(v, want) == 0;
}

static bool blk_has(const struct part *blk, const char *name)
{
	char v[4096];

	return header(blk->hdr, blk->hlen, name, v, sizeof(v)) == 1;
}

static bool contains(const char *p, size_t n, const char *s)
{
	return memmem(p, n, s, strlen(s)) != NULL;
}

/* Compose, check the wire format and parse it back. */
static int run(const struct dsn_msg *m, const struct dsn_rcpt *r, size_t n, struct buf *out,
	       struct report *rep, struct dsn_result *res)
{
	char err[256] = "";
	int rc;

	buf_init(out, OUT_LIMIT);
	rc = dsn_compose(m, r, n, out, res, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "dsn_compose: %s\n", err);
		return -1;
	}
	T_CHECK(wire_ok(out));
	T_EQ_INT(parse_report(out, rep), 0);
	return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_failure_full(void)
{
	off_t off;
	int fd = msg_file(SIMPLE, sizeof(SIMPLE) - 1, &off);
	struct dsn_msg m = base_msg(fd, off, sizeof(SIMPLE) - 1);
	struct dsn_rcpt r = bob_rcpt();
	struct dsn_result res;
	struct report rep;
	struct part blk[4];
	struct buf out;
	char v[512];

	m.envid = "ENV-42";
	if (run(&m, &r, 1, &out, &rep, &res) < 0) {
		T_CHECK(0);
		close(fd);
		return;
	}
	T_CHECK(header(rep.top, rep.toplen, "From", v, sizeof(v)) && strcmp(v, "MAILER-DAEMON@mx.test (Mail Delivery System)") == 0);
	T_CHECK(header(rep.top, rep.toplen, "To", v, sizeof(v)) && strcmp(v, "<sender@example.org>") == 0);
	T_CHECK(header(rep.top, rep.toplen, "Subject", v, sizeof(v)) && strcmp(v, "Undelivered Mail Returned to Sender") == 0);
	T_CHECK(header(rep.top, rep.toplen, "Auto-Submitted", v, sizeof(v)) && strcmp(v, "auto-replied") == 0);
	T_CHECK(header(rep.top, rep.toplen, "MIME-Version", v, sizeof(v)) && strcmp(v, "1.0") == 0);
	T_CHECK(header(rep.top, rep.toplen, "Message-ID", v, sizeof(v)) && v[0] == '<' &&
		strstr(v, "." QID ".") != NULL && strstr(v, "@mx.test>") != NULL);
	T_CHECK(header(rep.top, rep.toplen, "Date", v, sizeof(v)) && strlen(v) >= 30 && v[3] == ',' &&
		(strchr(v, '+') != NULL || strchr(v, '-') != NULL) && strstr(v, " 2023 ") != NULL);
	T_CHECK(header(rep.top, rep.toplen, "Content-Type", v, sizeof(v)) &&
		strncmp(v, "multipart/report; report-type=delivery-status; boundary=\"", 57) == 0);
	T_CHECK(!header(rep.top, rep.toplen, "Content-Transfer-Encoding", v, sizeof(v)));
	T_EQ_INT(rep.nparts, 3);
	T_CHECK(part_header(&rep.part[0], "Content-Type", v, sizeof(v)) && strcmp(v, "text/plain; charset=us-ascii") == 0);
	T_CHECK(part_header(&rep.part[1], "Content-Type", v, sizeof(v)) && strcmp(v, "message/delivery-status") == 0);
	T_CHECK(part_header(&rep.part[2], "Content-Type", v, sizeof(v)) && strcmp(v, "message/rfc822") == 0);
	T_CHECK(contains(rep.part[0].body, rep.part[0].blen, "This is the mail system at host mx.test."));
	T_CHECK(contains(rep.part[0].body, rep.part[0].blen,
			 "<bob@example.com> (expanded from <alias@example.com>): host mx.example.com"));
	T_CHECK(contains(rep.part[0].body, rep.part[0].blen, "550 5.1.1 no such user"));
	/* Wrapped text: continuation lines are indented by four, paragraphs not at all. */
	T_CHECK(contains(rep.part[0].body, rep.part[0].blen, "mx.example.com\r\n    said: 550"));
	T_CHECK(!contains(rep.part[0].body, rep.part[0].blen, "\r\n reason"));
	/* The original comes back byte for byte. */
	T_EQ_INT(rep.part[2].blen, sizeof(SIMPLE) - 1);
	T_CHECK(rep.part[2].blen == sizeof(SIMPLE) - 1 &&
		memcmp(rep.part[2].body, SIMPLE, sizeof(SIMPLE) - 1) == 0);
	T_EQ_INT(ds_blocks(&rep.part[1], blk, 4), 2);
	T_CHECK(blk_is(&blk[0], "Reporting-MTA", "dns; mx.test"));
	T_CHECK(blk_is(&blk[0], "X-Postern-Queue-ID", QID));
	T_CHECK(blk_is(&blk[0], "X-Postern-Sender", "rfc822; sender@example.org"));
	T_CHECK(blk_is(&blk[0], "Received-From-MTA", "dns; client.example.org ([192.0.2.7])"));
	T_CHECK(blk_is(&blk[0], "Original-Envelope-Id", "ENV-42"));
	T_CHECK(blk_has(&blk[0], "Arrival-Date"));
	T_CHECK(blk_is(&blk[1], "Final-Recipient", "rfc822; bob@example.com"));
	T_CHECK(blk_is(&blk[1], "Original-Recipient", "rfc822; alias@example.com"));
	T_CHECK(blk_is(&blk[1], "Action", "failed"));
	T_CHECK(blk_is(&blk[1], "Status", "5.1.1"));
	T_CHECK(blk_is(&blk[1], "Remote-MTA", "dns; mx.example.com"));
	T_CHECK(blk_is(&blk[1], "Diagnostic-Code", "smtp; 550 5.1.1 no such user"));
	T_CHECK(blk_has(&blk[1], "Last-Attempt-Date"));
	T_CHECK(!blk_has(&blk[1], "Will-Retry-Until"));
	T_CHECK(res.returned_full && !res.returned_headers && !res.needs_8bit && !res.needs_smtputf8);
	buf_free(&out);
	close(fd);
}

/* Part 3 for RET and the size limit: whether it is the whole message or its header. */
static void check_ret(enum qf_ret ret, size_t limit, bool want_full)
{
	off_t off;
	int fd = msg_file(SIMPLE, sizeof(SIMPLE) - 1, &off);
	struct dsn_msg m = base_msg(fd, off, sizeof(SIMPLE) - 1);
	struct dsn_rcpt r = bob_rcpt();
	struct dsn_result res;
	struct report rep;
	struct buf out;
	char v[256];

	m.ret = ret, m.return_limit = limit;
	if (run(&m, &r, 1, &out, &rep, &res) == 0) {
		const struct part *p = &rep.part[2];
		T_EQ_INT(rep.nparts, 3);
		T_EQ_INT(res.returned_full, want_full);
		T_EQ_INT(res.returned_headers, !want_full);
		T_CHECK(part_header(p, "Content-Type", v, sizeof(v)));
		T_EQ_STR(v, want_full ? "message/rfc822" : "text/rfc822-headers");
		T_EQ_INT(contains(p->body, p->blen, "BODY-MARKER"), want_full);
		if (!want_full)
			T_CHECK(p->blen == SIMPLE_HDRS_LEN && memcmp(p->body, SIMPLE, p->blen) == 0);
	} else {
		T_CHECK(0);
	}
	buf_free(&out);
	close(fd);
}

static void test_ret_and_size_limit(void)
{
	check_ret(QF_RET_FULL, DSN_RETURN_LIMIT_DEFAULT, true);
	check_ret(QF_RET_NONE, DSN_RETURN_LIMIT_DEFAULT, true);
	check_ret(QF_RET_HDRS, DSN_RETURN_LIMIT_DEFAULT, false);
	check_ret(QF_RET_FULL, sizeof(SIMPLE) - 1, true);	/* exactly at the limit */
	check_ret(QF_RET_FULL, sizeof(SIMPLE) - 2, false);	/* one byte over */
	check_ret(QF_RET_NONE, 10, false);
	check_ret(QF_RET_FULL, 0, false);
}

static void test_several_rcpts(void)
{
	off_t off;
	int fd = msg_file(SIMPLE, sizeof(SIMPLE) - 1, &off);
	struct dsn_msg m = base_msg(fd, off, sizeof(SIMPLE) - 1);
	struct dsn_rcpt r[3] = { bob_rcpt(), bob_rcpt(), bob_rcpt() };
	struct dsn_result res;
	struct report rep;
	struct part blk[6];
	struct buf out;

	r[0].orcpt = NULL;
	r[1].addr = "carol@example.net", r[1].orcpt = "carol@example.net";	/* no type */
	r[1].remote_mta = NULL, r[1].diag = "mailbox full", r[1].diag_type = "X-Postern";
	r[1].status = "5.2.2";
	r[2].addr = "dave@example.net", r[2].orcpt = "", r[2].status = "bogus";
	r[2].diag = NULL, r[2].remote_mta = NULL, r[2].last_attempt_ms = 0;
	if (run(&m, r, 3, &out, &rep, &res) != 0) {
		T_CHECK(0);
		close(fd);
		return;
	}
	T_EQ_INT(ds_blocks(&rep.part[1], blk, 6), 4);
	T_CHECK(!blk_has(&blk[0], "Original-Envelope-Id"));
	T_CHECK(blk_is(&blk[1], "Final-Recipient", "rfc822; bob@example.com"));
	T_CHECK(!blk_has(&blk[1], "Original-Recipient"));
	T_CHECK(blk_is(&blk[2], "Final-Recipient", "rfc822; carol@example.net"));
	T_CHECK(blk_is(&blk[2], "Original-Recipient", "rfc822; carol@example.net"));
	T_CHECK(blk_is(&blk[2], "Status", "5.2.2"));
	T_CHECK(blk_is(&blk[2], "Diagnostic-Code", "X-Postern; mailbox full"));
	T_CHECK(!blk_has(&blk[2], "Remote-MTA"));
	T_CHECK(blk_is(&blk[3], "Final-Recipient", "rfc822; dave@example.net"));
	T_CHECK(!blk_has(&blk[3], "Original-Recipient"));
	T_CHECK(blk_is(&blk[3], "Status", "5.0.0"));	/* malformed status: by action */
	T_CHECK(!blk_has(&blk[3], "Diagnostic-Code"));
	T_CHECK(!blk_has(&blk[3], "Last-Attempt-Date"));
	T_CHECK(contains(rep.part[0].body, rep.part[0].blen, "<carol@example.net>: mailbox full"));
	T_CHECK(contains(rep.part[0].body, rep.part[0].blen,
			 "<dave@example.net>: delivery failed (5.0.0)"));
	T_CHECK(!contains(rep.part[0].body, rep.part[0].blen, "carol@example.net (expanded"));
	buf_free(&out);
	close(fd);
}

/* Remove every fold (CRLF before a blank) and every blank: for comparing folded text. */
static void squeeze(const char *in, size_t n, char *out, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 1 < size; i++) {
		if (in[i] == '\r' || in[i] == '\n' || in[i] == ' ')
			continue;
		out[o++] = in[i];
	}
	out[o] = '\0';
}

static void test_long_diagnostic(void)
{
	off_t off;
	int fd = msg_file(SIMPLE, sizeof(SIMPLE) - 1, &off);
	struct dsn_msg m = base_msg(fd, off, sizeof(SIMPLE) - 1);
	struct dsn_rcpt r[2] = { bob_rcpt(), bob_rcpt() };
	char words[1600], token[1300], want[4096], got[8192], v[4096];
	struct dsn_result res;
	struct report rep;
	struct part blk[4];
	struct buf out;
	size_t i;

	memcpy(words, "550-5.7.1 ", 10);
	for (i = 10; i + 1 < sizeof(words); i++)
		words[i] = i % 9 == 0 ? ' ' : (char)('a' + i % 26);
	words[sizeof(words) - 1] = '\0';
	memset(token, 'x', sizeof(token) - 1);
	token[sizeof(token) - 1] = '\0';
	r[0].diag = words, r[1].diag = token;
	if (run(&m, r, 2, &out, &rep, &res) != 0) {
		T_CHECK(0);
		close(fd);
		return;
	}
	T_EQ_INT(ds_blocks(&rep.part[1], blk, 4), 3);
	/* Folded at white space: unfolding gives the diagnostic back exactly. */
	T_CHECK(header(blk[1].hdr, blk[1].hlen, "Diagnostic-Code", v, sizeof(v)) == 1);
	T_CHECK(strncmp(v, "smtp; ", 6) == 0 && strcmp(v + 6, words) == 0);
	T_CHECK(contains(blk[1].hdr, blk[1].hlen, "\r\n "));
	/* No white space at all: split, only the fold differs. */
	T_CHECK(header(blk[2].hdr, blk[2].hlen, "Diagnostic-Code", v, sizeof(v)) == 1);
	squeeze(v, strlen(v), got, sizeof(got));
	(void)snprintf(want, sizeof(want), "smtp;%s", token);
	T_EQ_STR(got, want);
	/* The text part wraps it too (wire_ok in run() checked every line). */
	squeeze(rep.part[0].body, rep.part[0].blen, got, sizeof(got));
	T_CHECK(strstr(got, token) != NULL);
	buf_free(&out);
	close(fd);
}

/* A remote reply cannot inject header lines or fields. */
static void test_diagnostic_cleaned(void)
{
	off_t off;
	int fd = msg_file(SIMPLE, sizeof(SIMPLE) - 1, &off);
	struct dsn_msg m = base_msg(fd, off, sizeof(SIMPLE) - 1);
	struct dsn_rcpt r = bob_rcpt();
	struct dsn_result res;
	struct report rep;
	struct part blk[4];
	struct buf out;

	r.diag = "550 bad\r\nAction: delivered\r\n\r\nX-Evil: \x01yes \xc3\xa9t\xe9  end  ";
	r.remote_mta = "mx\r\nStatus: 2.0.0";
	if (run(&m, &r, 1, &out, &rep, &res) != 0) {
		T_CHECK(0);
		close(fd);
		return;
	}
	T_EQ_INT(ds_blocks(&rep.part[1], blk, 4), 2);
	T_CHECK(blk_is(&blk[1], "Action", "failed"));
	T_CHECK(blk_is(&blk[1], "Status", "5.1.1"));
	T_CHECK(blk_is(&blk[1], "Diagnostic-Code",
		       "smtp; 550 bad Action: delivered X-Evil: yes ??t? end"));
	T_CHECK(blk_is(&blk[1], "Remote-MTA", "dns; mx Status: 2.0.0"));
	T_CHECK(!contains(out.data, out.len, "\nX-Evil"));
	T_CHECK(!res.needs_8bit);
	buf_free(&out);
	close(fd);
}

static void test_8bit_original(void)
{
	static const char msg8[] = "From: a@example.org\r\nSubject: caf\xc3\xa9\r\n\r\n"
				   "Gr\xc3\xbc\xc3\x9f" "e\r\n";
	static const char body8[] = "From: a@example.org\r\nSubject: plain\r\n\r\n"
				    "Gr\xc3\xbc\xc3\x9f" "e\r\n";
	off_t off;
	int fd = msg_file(msg8, sizeof(msg8) - 1, &off), fd2;
	struct dsn_msg m = base_msg(fd, off, sizeof(msg8) - 1);
	struct dsn_rcpt r = bob_rcpt();
	struct dsn_result res;
	struct report rep;
	struct buf out;
	char v[256];

	if (run(&m, &r, 1, &out, &rep, &res) == 0) {
		T_CHECK(res.needs_8bit && res.returned_full && !res.needs_smtputf8);
		T_CHECK(header(rep.top, rep.toplen, "Content-Transfer-Encoding", v, sizeof(v)) &&
			strcmp(v, "8bit") == 0);
		T_CHECK(part_header(&rep.part[2], "Content-Transfer-Encoding", v, sizeof(v)) &&
			strcmp(v, "8bit") == 0);
		T_CHECK(!part_header(&rep.part[0], "Content-Transfer-Encoding", v, sizeof(v)));
		T_CHECK(!part_header(&rep.part[1], "Content-Transfer-Encoding", v, sizeof(v)));
		T_CHECK(rep.part[2].blen == sizeof(msg8) - 1 &&
			memcmp(rep.part[2].body, msg8, sizeof(msg8) - 1) == 0);
	} else {
		T_CHECK(0);
	}
	buf_free(&out);
	/* 8-bit body, headers only returned: the report itself is 7bit. */
	fd2 = msg_file(body8, sizeof(body8) - 1, &off);
	m = base_msg(fd2, off, sizeof(body8) - 1);
	m.ret = QF_RET_HDRS;
	if (run(&m, &r, 1, &out, &rep, &res) == 0) {
		T_CHECK(!res.needs_8bit && res.returned_headers);
		T_CHECK(!header(rep.top, rep.toplen, "Content-Transfer-Encoding", v, sizeof(v)));
	} else {
		T_CHECK(0);
	}
	buf_free(&out);
	close(fd);
	close(fd2);
}

static void test_smtputf8(void)
{
	static const char msgu[] = "From: j\xc3\xb6rg@b\xc3\xbc.example\r\nSubject: x\r\n\r\nhi\r\n";
	off_t off;
	int fd = msg_file(msgu, sizeof(msgu) - 1, &off);
	struct dsn_msg m = base_msg(fd, off, sizeof(msgu) - 1);
	struct dsn_rcpt r[2] = { bob_rcpt(), bob_rcpt() };
	struct dsn_result res;
	struct report rep;
	struct part blk[4];
	struct buf out;
	char v[256];

	m.smtputf8 = true;
	m.sender = "j\xc3\xb6rg@b\xc3\xbc.example";
	r[1].addr = "\xc3\xa9lise@example.com";
	r[1].orcpt = "rfc822;\xc3\xa9lise@example.com";
	if (run(&m, r, 2, &out, &rep, &res) != 0) {
		T_CHECK(0);
		close(fd);
		return;
	}
	T_CHECK(res.needs_8bit && res.needs_smtputf8);
	T_CHECK(header(rep.top, rep.toplen, "Content-Type", v, sizeof(v)) &&
		strstr(v, "report-type=global-delivery-status") != NULL);
	T_CHECK(header(rep.top, rep.toplen, "To", v, sizeof(v)) &&
		strcmp(v, "<j\xc3\xb6rg@b\xc3\xbc.example>") == 0);
	T_CHECK(part_header(&rep.part[1], "Content-Type", v, sizeof(v)) &&
		strcmp(v, "message/global-delivery-status") == 0);
	T_CHECK(part_header(&rep.part[2], "Content-Type", v, sizeof(v)) &&
		strcmp(v, "message/global") == 0);
	T_CHECK(part_header(&rep.part[0], "Content-Type", v, sizeof(v)) &&
		strcmp(v, "text/plain; charset=utf-8") == 0);
	T_EQ_INT(ds_blocks(&rep.part[1], blk, 4), 3);
	T_CHECK(blk_is(&blk[0], "X-Postern-Sender", "utf-8; j\xc3\xb6rg@b\xc3\xbc.example"));
	T_CHECK(blk_is(&blk[1], "Final-Recipient", "rfc822; bob@example.com"));
	T_CHECK(blk_is(&blk[2], "Final-Recipient", "utf-8; \xc3\xa9lise@example.com"));
	T_CHECK(blk_is(&blk[2], "Original-Recipient", "utf-8; \xc3\xa9lise@example.com"));
	buf_free(&out);
	/* Invalid UTF-8 in an address never reaches the report. */
	r[1].addr = "\xff\xc3(x@example.com";
	r[1].orcpt = NULL;
	if (run(&m, r, 2, &out, &rep, &res) == 0) {
		T_EQ_INT(ds_blocks(&rep.part[1], blk, 4), 3);
		T_CHECK(blk_is(&blk[2], "Final-Recipient", "utf-8; ?" "?(x@example.com"));
	} else {
		T_CHECK(0);
	}
	buf_free(&out);
	close(fd);
}

static void test_delay_warning(void)
{
	off_t off;
	int fd = msg_file(SIMPLE, sizeof(SIMPLE) - 1, &off);
	struct dsn_msg m = base_msg(fd, off, sizeof(SIMPLE) - 1);
	struct dsn_rcpt r = bob_rcpt();
	struct dsn_result res;
	struct report rep;
	struct part blk[4];
	struct buf out;
	char v[256];

	m.kind = DSN_KIND_DELAY, m.ret = QF_RET_FULL;
	r.action = DSN_ACTION_DELAYED, r.status = NULL;
	r.diag = "451 4.4.1 connection timed out";
	r.retry_until_ms = NOW_MS + 5 * 86400000LL;
	if (run(&m, &r, 1, &out, &rep, &res) != 0) {
		T_CHECK(0);
		close(fd);
		return;
	}
	T_CHECK(header(rep.top, rep.toplen, "Subject", v, sizeof(v)) &&
		strcmp(v, "Delayed Mail (still being retried)") == 0);
	T_CHECK(res.returned_headers && !res.returned_full);	/* RET=FULL: failures only */
	T_CHECK(part_header(&rep.part[2], "Content-Type", v, sizeof(v)) &&
		strcmp(v, "text/rfc822-headers") == 0);
	T_EQ_INT(ds_blocks(&rep.part[1], blk, 4), 2);
	T_CHECK(blk_is(&blk[1], "Action", "delayed"));
	T_CHECK(blk_is(&blk[1], "Status", "4.0.0"));
	T_CHECK(blk_has(&blk[1], "Will-Retry-Until"));
	T_CHECK(contains(rep.part[0].body, rep.part[0].blen, "WARNING"));
	buf_free(&out);
	close(fd);
}

/* An original that is not valid 8bit MIME (bare LF, NUL, a 3000-octet line) comes back
 * as headers, and an overlong header line is folded. */
static void test_unfit_original(void)
{
	struct buf msg;
	struct dsn_result res;
	struct report rep;
	struct buf out;
	off_t off;
	int fd;
	size_t i;
	char v[256];

	buf_init(&msg, 1 << 20);
	T_EQ_INT(buf_append_str(&msg, "Subject: long\r\nX-Long: "), 0);
	for (i = 0; i < 3000; i++)
		T_EQ_INT(buf_append_char(&msg, (char)('a' + i % 26)), 0);
	T_EQ_INT(buf_append_str(&msg, "\r\nX-Bare: lf\nX-Nul: a"), 0);
	T_EQ_INT(buf_append(&msg, "\0b\rc\r\n\r\nbody\nbare\r\n", 20), 0);
	fd = msg_file(msg.data, msg.len, &off);
	{
		struct dsn_msg m = base_msg(fd, off, msg.len);
		struct dsn_rcpt r = bob_rcpt();
		if (run(&m, &r, 1, &out, &rep, &res) == 0) {
			const struct part *p = &rep.part[2];
			T_CHECK(res.returned_headers);
			T_CHECK(part_header(p, "Content-Type", v, sizeof(v)) &&
				strcmp(v, "text/rfc822-headers") == 0);
			T_CHECK(contains(p->body, p->blen, "\r\nX-Bare: lf\r\nX-Nul: a b c\r\n"));
			T_CHECK(!contains(p->body, p->blen, "body"));
		} else {
			T_CHECK(0);
		}
	}
	buf_free(&out);
	buf_free(&msg);
	close(fd);
}

/* A boundary found in the content is never used. */
static unsigned fill_calls;
static void fill_zero_first(void *p, size_t n)
{
	memset(p, fill_calls++ == 0 ? 0x00 : 0xA5, n);
}

static void test_boundary_collision(void)
{
	static const char msgb[] = "Subject: trap\r\n\r\n--=_Postern-00000000000000000000000000000000\r\n";
	off_t off;
	int fd = msg_file(msgb, sizeof(msgb) - 1, &off);
	struct dsn_msg m = base_msg(fd, off, sizeof(msgb) - 1);
	struct dsn_rcpt r = bob_rcpt();
	struct dsn_result res;
	struct report rep;
	struct buf out;

	fill_calls = 0;
	dsn_set_random(fill_zero_first);
	if (run(&m, &r, 1, &out, &rep, &res) == 0) {
		T_EQ_STR(rep.boundary, "=_Postern-A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5");
		T_EQ_INT(rep.nparts, 3);
		T_CHECK(rep.part[2].blen == sizeof(msgb) - 1);
	} else {
		T_CHECK(0);
	}
	T_CHECK(fill_calls >= 2);
	dsn_set_random(NULL);
	buf_free(&out);
	close(fd);
}

static void test_should_report(void)
{
	const unsigned S = QF_NOTIFY_SUCCESS, F = QF_NOTIFY_FAILURE, D = QF_NOTIFY_DELAY;

	T_CHECK(!dsn_should_report(QF_NOTIFY_NEVER, DSN_ACTION_FAILED, true));
	T_CHECK(!dsn_should_report(QF_NOTIFY_NEVER, DSN_ACTION_DELAYED, true));
	T_CHECK(dsn_should_report(0, DSN_ACTION_FAILED, false));
	T_CHECK(dsn_should_report(F, DSN_ACTION_FAILED, false));
	T_CHECK(dsn_should_report(S | F, DSN_ACTION_FAILED, false));
	T_CHECK(!dsn_should_report(S, DSN_ACTION_FAILED, false));
	T_CHECK(!dsn_should_report(D, DSN_ACTION_FAILED, false));
	T_CHECK(dsn_should_report(0, DSN_ACTION_DELAYED, true));
	T_CHECK(!dsn_should_report(0, DSN_ACTION_DELAYED, false));
	T_CHECK(dsn_should_report(D, DSN_ACTION_DELAYED, false));
	T_CHECK(!dsn_should_report(F, DSN_ACTION_DELAYED, true));
	T_CHECK(!dsn_should_report(0, DSN_ACTION_DELIVERED, true));
	T_CHECK(dsn_should_report(S, DSN_ACTION_DELIVERED, false));
	T_CHECK(dsn_should_report(S | D, DSN_ACTION_RELAYED, false));
	T_CHECK(dsn_should_report(S, DSN_ACTION_EXPANDED, false));
	T_CHECK(!dsn_should_report(F | D, DSN_ACTION_EXPANDED, false));
	T_CHECK(dsn_is_bounce(""));
	T_CHECK(dsn_is_bounce(NULL));
	T_CHECK(dsn_is_bounce("<>"));
	T_CHECK(!dsn_is_bounce("MAILER-DAEMON@example.com"));
	T_EQ_STR(dsn_action_name(DSN_ACTION_EXPANDED), "expanded");
}

static int compose_err(const struct dsn_msg *m, const struct dsn_rcpt *r, size_t n,
		       size_t limit, int *e)
{
	struct buf out;
	struct dsn_result res;
	char err[128] = "";
	int rc;

	buf_init(&out, limit);
	T_EQ_INT(buf_append_str(&out, "KEEP"), 0);
	errno = 0;
	rc = dsn_compose(m, r, n, &out, &res, err, sizeof(err));
	*e = errno;
	T_CHECK(rc == 0 || (out.len == 4 && strcmp(buf_cstr(&out), "KEEP") == 0 && err[0] != '\0'));
	buf_free(&out);
	return rc;
}

static void test_errors(void)
{
	off_t off;
	int fd = msg_file(SIMPLE, sizeof(SIMPLE) - 1, &off), e;
	struct dsn_msg m = base_msg(fd, off, sizeof(SIMPLE) - 1), bad;
	struct dsn_rcpt r = bob_rcpt(), badr;

	T_EQ_INT(compose_err(&m, &r, 1, OUT_LIMIT, &e), 0);
	bad = m, bad.sender = "";
	T_CHECK(compose_err(&bad, &r, 1, OUT_LIMIT, &e) == -1 && e == EINVAL);
	bad = m, bad.myhostname = "bad host";
	T_CHECK(compose_err(&bad, &r, 1, OUT_LIMIT, &e) == -1 && e == EINVAL);
	bad = m, bad.qid = NULL;
	T_CHECK(compose_err(&bad, &r, 1, OUT_LIMIT, &e) == -1 && e == EINVAL);
	T_CHECK(compose_err(&m, &r, 0, OUT_LIMIT, &e) == -1 && e == EINVAL);
	badr = r, badr.addr = "a\r\nb@x";
	T_CHECK(compose_err(&m, &badr, 1, OUT_LIMIT, &e) == -1 && e == EINVAL);
	badr = r, badr.diag_type = "smtp; x";
	T_CHECK(compose_err(&m, &badr, 1, OUT_LIMIT, &e) == -1 && e == EINVAL);
	T_CHECK(compose_err(&m, &r, 1, 600, &e) == -1 && e == EMSGSIZE);
	bad = m, bad.msg_len = sizeof(SIMPLE) + 100;	/* past the end of the file */
	T_CHECK(compose_err(&bad, &r, 1, OUT_LIMIT, &e) == -1 && e == EIO);
	close(fd);
	T_CHECK(compose_err(&m, &r, 1, OUT_LIMIT, &e) == -1 && e == EBADF);
	bad = m, bad.msg_fd = -1;	/* no original: two parts */
	T_EQ_INT(compose_err(&bad, &r, 1, OUT_LIMIT, &e), 0);
}

/* From a real queue file, through dsn_msg_from_qf and dsn_rcpt_from_qf. */
static void test_from_queue_file(void)
{
	char path[] = "/tmp/test_dsn_qf.XXXXXX", err[256] = "";
	struct qf_rcpt rc[2] = {
		{ .addr = (char *)(uintptr_t)"bob@example.com",
		  .orcpt = (char *)(uintptr_t)"rfc822;alias@example.com", .notify = 0 },
		{ .addr = (char *)(uintptr_t)"eve@example.com", .orcpt = NULL,
		  .notify = QF_NOTIFY_SUCCESS },
	};
	struct qf_envelope env = {
		.arrival_ms = NOW_MS - 5000, .sender = (char *)(uintptr_t)"sender@example.org",
		.client_addr = (char *)(uintptr_t)"192.0.2.9",
		.client_name = (char *)(uintptr_t)"c.example.org",
		.helo = (char *)(uintptr_t)"c.example.org", .envid = (char *)(uintptr_t)"E1",
		.ret = QF_RET_FULL, .rcpt = rc, .nrcpt = 2,
	};
	struct qf q;
	struct qf_writer *w;
	struct dsn_msg m;
	struct dsn_rcpt r[2];
	struct dsn_result res;
	struct report rep;
	struct part blk[4];
	struct buf out;
	int fd = mkstemp(path);

	T_CHECK(fd >= 0);
	if (fd < 0)
		return;
	(void)unlink(path);
	T_EQ_INT(qid_new(env.qid, sizeof(env.qid)), 0);
	w = qf_writer_begin(fd, &env, err, sizeof(err));
	T_CHECK(w != NULL);
	if (w == NULL || qf_writer_body(w, SIMPLE, sizeof(SIMPLE) - 1) < 0 || qf_writer_end(w) < 0 ||
	    qf_open_fd(fd, &q, err, sizeof(err)) < 0) {
		fprintf(stderr, "queue file: %s\n", err);
		T_CHECK(0);
		close(fd);
		return;
	}
	T_EQ_INT(qf_rcpt_set_status(fd, &q.env.rcpt[0], QF_BOUNCED, 550, "5.1.1", NOW_MS - 10), 0);
	T_EQ_INT(qf_rcpt_set_status(fd, &q.env.rcpt[1], QF_DELIVERED, 250, "2.0.0", NOW_MS - 9), 0);
	dsn_msg_from_qf(&m, &q, fd, "mx.test", DSN_KIND_FAILURE);
	m.now_ms = NOW_MS;
	dsn_rcpt_from_qf(&r[0], &q.env.rcpt[0]);
	dsn_rcpt_from_qf(&r[1], &q.env.rcpt[1]);
	T_EQ_INT(r[0].action, DSN_ACTION_FAILED);
	T_EQ_INT(r[1].action, DSN_ACTION_DELIVERED);
	T_CHECK(dsn_should_report(q.env.rcpt[0].notify, r[0].action, false));
	T_CHECK(dsn_should_report(q.env.rcpt[1].notify, r[1].action, false));
	r[0].diag = "550 5.1.1 unknown";
	if (run(&m, r, 2, &out, &rep, &res) == 0) {
		T_EQ_INT(ds_blocks(&rep.part[1], blk, 4), 3);
		T_CHECK(blk_is(&blk[0], "X-Postern-Queue-ID", q.env.qid));
		T_CHECK(blk_is(&blk[0], "Original-Envelope-Id", "E1"));
		T_CHECK(blk_is(&blk[1], "Original-Recipient", "rfc822; alias@example.com"));
		T_CHECK(blk_is(&blk[1], "Status", "5.1.1"));
		T_CHECK(blk_has(&blk[1], "Last-Attempt-Date"));
		T_CHECK(blk_is(&blk[2], "Action", "delivered"));
		T_CHECK(blk_is(&blk[2], "Status", "2.0.0"));
		T_CHECK(rep.part[2].blen == sizeof(SIMPLE) - 1 &&
			memcmp(rep.part[2].body, SIMPLE, sizeof(SIMPLE) - 1) == 0);
	} else {
		T_CHECK(0);
	}
	buf_free(&out);
	qf_free(&q);
	close(fd);
}

/* ---- a real MIME parser: Python's email package ------------------------------------------ */

static const char PY_CHECK[] =
	"import sys, email, email.policy\n"
	"m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n"
	"assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
	"assert m.get_param('report-type') == 'delivery-status'\n"
	"parts = list(m.iter_parts())\n"
	"types = [p.get_content_type() for p in parts]\n"
	"assert types == ['text/plain', 'message/delivery-status', 'message/rfc822'], types\n"
	"ds = parts[1].get_payload()\n"
	"assert len(ds) == 3, len(ds)\n"
	"assert ds[0]['Reporting-MTA'] == 'dns; mx.test', ds[0]['Reporting-MTA']\n"
	"assert ds[1]['Action'] == 'failed' and ds[1]['Status'] == '5.1.1'\n"
	"assert ds[2]['Final-Recipient'] == 'rfc822; carol@example.net'\n"
	"orig = parts[2].get_payload(0)\n"
	"assert orig['Subject'] == 'hello', orig['Subject']\n"
	"defects = [d for p in m.walk() for d in p.defects]\n"
	"assert not defects, defects\n"
	"print('python email parser: ok')\n";

static void test_python_parses(void)
{
	const char *dump = getenv("DSN_DUMP");
	char tmp[] = "/tmp/test_dsn_dump.XXXXXX", cmd[8192], script[] = "/tmp/test_dsn_py.XXXXXX";
	const char *path = dump;
	off_t off;
	int fd = msg_file(SIMPLE, sizeof(SIMPLE) - 1, &off), out_fd, sfd, status;
	struct dsn_msg m = base_msg(fd, off, sizeof(SIMPLE) - 1);
	struct dsn_rcpt r[2] = { bob_rcpt(), bob_rcpt() };
	struct dsn_result res;
	struct report rep;
	struct buf out;

	m.envid = "ENV-42";
	r[1].addr = "carol@example.net", r[1].orcpt = NULL;
	r[1].diag = "550 5.7.1 a rather long explanation of why this message was refused, which "
		    "goes on and on so that the Diagnostic-Code field must be folded over lines";
	if (run(&m, r, 2, &out, &rep, &res) != 0) {
		T_CHECK(0);
		close(fd);
		return;
	}
	close(fd);
	out_fd = dump != NULL ? open(dump, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
			      : mkstemp(tmp);
	if (dump == NULL)
		path = tmp;
	T_CHECK(out_fd >= 0 && write_all(out_fd, out.data, out.len) == 0);
	if (out_fd >= 0)
		close(out_fd);
	buf_free(&out);
	if (access("/usr/bin/python3", X_OK) != 0) {
		fprintf(stderr, "python3 missing: MIME parser check skipped\n");
	} else if ((sfd = mkstemp(script)) < 0 ||
		   write_all(sfd, PY_CHECK, sizeof(PY_CHECK) - 1) < 0 || close(sfd) < 0 ||
		   str_fmt(cmd, sizeof(cmd), "/usr/bin/python3 -c \"$(cat '%s')\" '%s'", script,
			   path) < 0) {
		T_CHECK(0);
	} else {
		status = system(cmd);
		T_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	(void)unlink(script);
	if (dump == NULL)
		(void)unlink(tmp);
}

int main(void)
{
	T_RUN(test_failure_full);
	T_RUN(test_ret_and_size_limit);
	T_RUN(test_several_rcpts);
	T_RUN(test_long_diagnostic);
	T_RUN(test_diagnostic_cleaned);
	T_RUN(test_8bit_original);
	T_RUN(test_smtputf8);
	T_RUN(test_delay_warning);
	T_RUN(test_unfit_original);
	T_RUN(test_boundary_collision);
	T_RUN(test_should_report);
	T_RUN(test_errors);
	T_RUN(test_from_queue_file);
	T_RUN(test_python_parses);
	return T_DONE();
}
