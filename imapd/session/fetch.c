/*
 * fetch.c: FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2) with CONDSTORE's MODSEQ and
 * CHANGEDSINCE (RFC 7162). FLAGS, UID, INTERNALDATE, RFC822.SIZE and MODSEQ come from the
 * folder's index without opening the message; ENVELOPE, BODY, BODYSTRUCTURE, BODY[...] and
 * the RFC822 forms read the message once (converted to CRLF line ends, which is what the
 * client sees and what RFC822.SIZE counts) and parse it with lib/mime.h. BODY[...] without
 * .PEEK and RFC822(.TEXT) set \Seen in a read-write folder and report the new FLAGS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mime.h"
#include "session.h"
#include "util.h"

#define MAX_ITEMS	64

enum fitem {
	F_UID, F_FLAGS, F_INTERNALDATE, F_SIZE, F_ENVELOPE, F_BODY, F_BODYSTRUCTURE,
	F_SECTION, F_RFC822, F_RFC822_HEADER, F_RFC822_TEXT, F_MODSEQ,
};

struct item {
	enum fitem kind;
	bool peek;
	const char *section;	/* F_SECTION: inside the brackets */
	bool partial;
	uint64_t p_off, p_len;
};

struct fetch_req {
	struct item it[MAX_ITEMS];
	size_t n;
	bool needs_body;	/* the message must be read */
	bool sets_seen;
	uint64_t changedsince;	/* 0 = none */
	bool vanished;		/* UID FETCH ... (CHANGEDSINCE n VANISHED) */
};

/* ---- the message -------------------------------------------------------------------------- */

static struct {
	uint32_t uid;		/* 0 = nothing loaded */
	char *data;
	size_t len;
	struct mime_msg mime;
} cur;

static void unload(void)
{
	if (cur.uid) {
		mime_free(&cur.mime);
		free(cur.data);
	}
	memset(&cur, 0, sizeof(cur));
}

/* Read message seq into cur with CRLF line ends; -1 if it vanished or cannot be read. */
static int load(uint32_t seq)
{
	const struct mmsg *m = mfolder_msg(S.folder, seq);
	struct buf raw, crlf;
	char chunk[65536];
	ssize_t n;
	int fd;

	if (m == NULL)
		return -1;
	if (cur.uid == m->uid)
		return 0;
	unload();
	fd = mfolder_msg_open(S.folder, seq);
	if (fd < 0)
		return -1;
	buf_init(&raw, IMAP_MSG_MAX);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(&raw, chunk, (size_t)n) < 0)
			break;
	close(fd);
	if (n != 0) {
		buf_free(&raw);
		return -1;
	}
	buf_init(&crlf, IMAP_MSG_MAX * 2);
	for (size_t i = 0; i < raw.len; i++) {
		if (raw.data[i] == '\n' && (i == 0 || raw.data[i - 1] != '\r'))
			(void)buf_append(&crlf, "\r", 1);
		(void)buf_append(&crlf, &raw.data[i], 1);
	}
	buf_free(&raw);
	cur.data = crlf.data ? crlf.data : xstrdup("");
	cur.len = crlf.len;
	if (mime_parse(cur.data, cur.len, &cur.mime) < 0) {
		free(cur.data);
		memset(&cur, 0, sizeof(cur));
		return -1;
	}
	cur.uid = m->uid;
	return 0;
}

/* ---- parsing the request ------------------------------------------------------------------ */

static int add(struct fetch_req *r, enum fitem k)
{
	if (r->n == MAX_ITEMS)
		return -1;
	r->it[r->n++] = (struct item){ .kind = k };
	if (k == F_ENVELOPE || k == F_BODY || k == F_BODYSTRUCTURE || k == F_RFC822 ||
	    k == F_RFC822_HEADER || k == F_RFC822_TEXT)
		r->needs_body = true;
	if (k == F_RFC822 || k == F_RFC822_TEXT)
		r->sets_seen = true;
	return 0;
}

static int parse_partial(const struct imaparg *p, struct item *it)
{
	unsigned long long off, len;
	int used = 0;

	if (sscanf(p->text, "%llu.%llu%n", &off, &len, &used) != 2 || p->text[used] != '\0' ||
	    len == 0)
		return -1;
	it->partial = true;
	it->p_off = off;
	it->p_len = len;
	return 0;
}

/* One fetch-att (a points at it; a section and partial follow as sibling nodes). */
static int parse_att(const struct imaparg **ap, struct fetch_req *r)
{
	const struct imaparg *a = *ap;
	static const struct { const char *name; enum fitem k; } simple[] = {
		{ "UID", F_UID }, { "FLAGS", F_FLAGS }, { "INTERNALDATE", F_INTERNALDATE },
		{ "RFC822.SIZE", F_SIZE }, { "ENVELOPE", F_ENVELOPE },
		{ "BODYSTRUCTURE", F_BODYSTRUCTURE }, { "RFC822", F_RFC822 },
		{ "RFC822.HEADER", F_RFC822_HEADER }, { "RFC822.TEXT", F_RFC822_TEXT },
		{ "MODSEQ", F_MODSEQ },
	};

	if (a->kind != IMAPARG_ATOM)
		return -1;
	if ((imaparg_is_atom(a, "BODY") || imaparg_is_atom(a, "BODY.PEEK")) && a->next &&
	    a->next->kind == IMAPARG_SECTION) {
		struct item *it;

		if (add(r, F_SECTION) < 0)
			return -1;
		it = &r->it[r->n - 1];
		it->peek = imaparg_is_atom(a, "BODY.PEEK");
		it->section = a->next->text;
		r->needs_body = true;
		r->sets_seen |= !it->peek;
		a = a->next;
		if (a->next && a->next->kind == IMAPARG_PARTIAL) {
			a = a->next;
			if (parse_partial(a, it) < 0)
				return -1;
		}
		*ap = a;
		return 0;
	}
	if (imaparg_is_atom(a, "BODY"))
		return add(r, F_BODY);
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (imaparg_is_atom(a, simple[i].name)) {
			if (simple[i].k == F_MODSEQ)
				S.condstore = true;
			return add(r, simple[i].k);
		}
	return -1;
}

/* The items at *ap (a macro, a list, or one att with its section and partial); *ap moves
 * to what follows them (the modifiers, if any). */
static int parse_request(const struct imaparg **ap, struct fetch_req *r)
{
	const struct imaparg *a = *ap;

	memset(r, 0, sizeof(*r));
	if (a == NULL)
		return -1;
	*ap = a->next;
	if (a->kind == IMAPARG_ATOM && imaparg_is_atom(a, "ALL"))
		return add(r, F_FLAGS) | add(r, F_INTERNALDATE) | add(r, F_SIZE) | add(r, F_ENVELOPE);
	if (a->kind == IMAPARG_ATOM && imaparg_is_atom(a, "FAST"))
		return add(r, F_FLAGS) | add(r, F_INTERNALDATE) | add(r, F_SIZE);
	if (a->kind == IMAPARG_ATOM && imaparg_is_atom(a, "FULL"))
		return add(r, F_FLAGS) | add(r, F_INTERNALDATE) | add(r, F_SIZE) |
		       add(r, F_ENVELOPE) | add(r, F_BODY);
	if (a->kind == IMAPARG_LIST) {
		for (const struct imaparg *x = a->child; x; x = x->next)
			if (parse_att(&x, r) < 0)
				return -1;
		return r->n ? 0 : -1;
	}
	if (parse_att(&a, r) < 0)	/* a ends on the att's last node (section, partial) */
		return -1;
	*ap = a->next;
	return 0;
}

/* (CHANGEDSINCE n [VANISHED]) after the items (RFC 7162 §3.1.4, §3.2.6) */
static int parse_modifiers(const struct imaparg *m, struct fetch_req *r, bool uid)
{
	unsigned long long v;

	if (m == NULL)
		return 0;
	if (m->kind != IMAPARG_LIST || m->next)
		return -1;
	for (const struct imaparg *x = m->child; x; x = x->next) {
		if (imaparg_is_atom(x, "CHANGEDSINCE") && x->next &&
		    sscanf(x->next->text, "%llu", &v) == 1) {
			r->changedsince = v;
			x = x->next;
		} else if (imaparg_is_atom(x, "VANISHED") && uid && S.qresync) {
			r->vanished = true;
		} else {
			return -1;
		}
	}
	if (r->vanished && r->changedsince == 0)
		return -1;	/* VANISHED needs CHANGEDSINCE */
	S.condstore = true;
	return 0;
}

/* ---- the response ------------------------------------------------------------------------- */

static void out_date(time_t t)
{
	struct tm tm;
	char s[64];

	localtime_r(&t, &tm);
	strftime(s, sizeof(s), "\"%d-%b-%Y %H:%M:%S %z\"", &tm);
	out_str(s);
}

static void out_bytes(const char *p, size_t len, const struct item *it)
{
	if (it && it->partial) {
		size_t off = it->p_off < len ? (size_t)it->p_off : len;
		size_t n = len - off < it->p_len ? len - off : (size_t)it->p_len;

		out_printf("<%zu> {%zu}\r\n", off, n);
		out_raw(p + off, n);
		return;
	}
	out_printf(" {%zu}\r\n", len);
	out_raw(p, len);
}

static void out_section(const struct item *it)
{
	struct buf b;

	buf_init(&b, IMAP_MSG_MAX * 2);
	if (mime_section(&cur.mime, it->section, &b) < 0)
		buf_reset(&b);
	out_printf("BODY[%s]", it->section);
	out_bytes(b.data ? b.data : "", b.len, it);
	buf_free(&b);
}

static void out_mime(bool envelope, bool extended)
{
	struct buf b;

	buf_init(&b, IMAP_MSG_MAX);
	if (envelope)
		(void)mime_envelope(&cur.mime, cur.mime.root, &b);
	else
		(void)mime_bodystructure(&cur.mime, cur.mime.root, extended, &b);
	out_raw(b.data ? b.data : "NIL", b.len ? b.len : 3);
	buf_free(&b);
}

static void out_item(const struct item *it, const struct mmsg *m)
{
	size_t hdr;

	switch (it->kind) {
	case F_UID: out_str("UID "); out_uint(m->uid); break;
	case F_FLAGS: out_str("FLAGS ("); out_flag_list(m); out_str(")"); break;
	case F_INTERNALDATE: out_str("INTERNALDATE "); out_date(m->internal_date); break;
	case F_SIZE: out_str("RFC822.SIZE "); out_uint(m->size); break;
	case F_MODSEQ: out_printf("MODSEQ (%llu)", (unsigned long long)m->modseq); break;
	case F_ENVELOPE: out_str("ENVELOPE "); out_mime(true, false); break;
	case F_BODY: out_str("BODY "); out_mime(false, false); break;
	case F_BODYSTRUCTURE: out_str("BODYSTRUCTURE "); out_mime(false, true); break;
	case F_SECTION: out_section(it); break;
	case F_RFC822: out_str("RFC822"); out_bytes(cur.data, cur.len, NULL); break;
	case F_RFC822_HEADER:
		hdr = cur.mime.root ? cur.mime.root->header_len : cur.len;
		out_str("RFC822.HEADER");
		out_bytes(cur.data, hdr, NULL);
		break;
	case F_RFC822_TEXT:
		hdr = cur.mime.root ? cur.mime.root->header_len : cur.len;
		out_str("RFC822.TEXT");
		out_bytes(cur.data + hdr, cur.len - hdr, NULL);
		break;
	}
}

static bool has_kind(const struct fetch_req *r, enum fitem k)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->it[i].kind == k)
			return true;
	return false;
}

/* One message; false if it vanished meanwhile (its response is left out). */
static bool fetch_one(uint32_t seq, const struct fetch_req *r, bool uid)
{
	const struct mmsg *m = mfolder_msg(S.folder, seq);
	bool seen_now = false, first = true;

	if (m == NULL || (r->changedsince && m->modseq <= r->changedsince))
		return true;
	if (r->needs_body && load(seq) < 0)
		return false;
	if (has_kind(r, F_INTERNALDATE))
		mfolder_load_date(S.folder, seq);
	if (r->sets_seen && !S.readonly && !(m->flags & MSF_SEEN)) {
		if (mfolder_set_flags(S.folder, seq, m->flags | MSF_SEEN, m->keywords) == 0)
			seen_now = true;
		m = mfolder_msg(S.folder, seq);
	}
	out_str("* ");
	out_uint(seq);
	out_str(" FETCH (");
	if ((uid || S.qresync) && !has_kind(r, F_UID)) {
		out_str("UID ");
		out_uint(m->uid);
		first = false;
	}
	for (size_t i = 0; i < r->n; i++) {
		if (!first)
			out_str(" ");
		out_item(&r->it[i], m);
		first = false;
	}
	if (seen_now && !has_kind(r, F_FLAGS)) {
		out_str(" FLAGS (");
		out_flag_list(m);
		out_str(")");
	}
	if ((S.condstore && !has_kind(r, F_MODSEQ)) && (r->changedsince || seen_now))
		out_printf(" MODSEQ (%llu)", (unsigned long long)m->modseq);
	out_str(")\r\n");
	return true;
}

static void fetch(const struct imaparg *a, bool uid)
{
	static struct fetch_req r;
	uint32_t *seqs;
	size_t n;
	bool lost = false;

	const struct imaparg *items = a ? a->next : NULL;

	if (a == NULL || items == NULL || parse_request(&items, &r) < 0 ||
	    parse_modifiers(items, &r, uid) < 0) {
		reply_tagged("BAD", "Error in IMAP command FETCH: Invalid arguments.");
		return;
	}
	seqs = a->kind == IMAPARG_ATOM ? resolve_set(a->text, uid, &n) : NULL;
	if (seqs == NULL) {
		reply_tagged("BAD", "Error in IMAP command FETCH: Invalid messageset");
		return;
	}
	if (r.vanished) {
		static struct seqset want;
		const struct mmsg *last = mfolder_count(S.folder) ?
			mfolder_msg(S.folder, mfolder_count(S.folder)) : NULL;

		if (seqset_parse(a->text, last ? last->uid : 1, &want) == 0)
			report_vanished_earlier(&want);
	}
	for (size_t i = 0; i < n; i++)
		if (!fetch_one(seqs[i], &r, uid))
			lost = true;
	free(seqs);
	unload();
	if (lost)
		reply_tagged("NO", "Some messages were expunged meanwhile; their data is missing.");
	else
		reply_tagged("OK", "Fetch completed.");
}

void cmd_fetch(const struct imaparg *a)
{
	fetch(a, false);
}

void cmd_uid_fetch(const struct imaparg *a)
{
	fetch(a, true);
}
