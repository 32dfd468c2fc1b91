/*
 * store.c: the commands that change messages. STORE (RFC 3501 §6.4.6, with CONDSTORE's
 * UNCHANGEDSINCE and [MODIFIED]), COPY (§6.4.7) and MOVE (RFC 6851) with UIDPLUS's
 * COPYUID, EXPUNGE (§6.4.3) and UID EXPUNGE (RFC 4315), each also in its UID form.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "session.h"
#include "util.h"

static void report_expunges(struct mfolder_changes *ch, uint32_t *before, size_t nbefore)
{
	report_expunged(ch, before, nbefore);
	free(before);
	S.reported_exists = mfolder_count(S.folder);
	mfolder_changes_free(ch);
}

static void internal_error(const char *what)
{
	msg_warn("%s: %s in %s: %s", S.user, what, S.folder_name, mstore_error(S.store));
	reply_tagged("NO", "[SERVERBUG] Internal error occurred. Refer to server log for more "
		     "information.");
}

/* ---- STORE ---------------------------------------------------------------------------- */

/* What a STORE asks for, and what it found modified (UNCHANGEDSINCE). */
struct store_req {
	const uint32_t *seqs;
	size_t n;
	int mode;		/* '+', '-' or '=' */
	unsigned flags;
	uint32_t keywords;
	unsigned long long unchanged;
	bool uid, silent;
	uint32_t modified[1024];
	size_t nmod;
};

/* The new flags of message m under the request. */
static void store_target(const struct store_req *r, const struct mmsg *m, unsigned *nf,
			 uint32_t *nk)
{
	*nf = r->mode == '+' ? m->flags | r->flags : r->mode == '-' ? m->flags & ~r->flags
	      : (m->flags & MSF_RECENT) | r->flags;
	*nk = r->mode == '+' ? m->keywords | r->keywords
	      : r->mode == '-' ? m->keywords & ~r->keywords : r->keywords;
}

static void store_report(const struct store_req *r, uint32_t seq)
{
	const struct mmsg *m = mfolder_msg(S.folder, seq);

	if (r->silent && !(r->unchanged && S.condstore))
		return;
	out_printf("* %u FETCH (", seq);
	if (r->uid || S.qresync)	/* RFC 7162 §3.2.4: UID with QRESYNC */
		out_printf("UID %u ", m->uid);
	out_str("FLAGS (");
	out_flag_list(m);
	out_str(")");
	if (S.condstore)
		out_printf(" MODSEQ (%llu)", (unsigned long long)m->modseq);
	out_str(")\r\n");
}

/* Change every message of the set at once (one lock, one index append), then report each.
 * -1 on a real error (a message expunged meanwhile is just left out). */
static int store_apply(struct store_req *r)
{
	enum { SKIP = -2, KEEP = -1 };	/* else: the message's index in sets[] */
	struct mfolder_flag_set *sets = xreallocarray(NULL, r->n ? r->n : 1, sizeof(*sets));
	ssize_t *what = xreallocarray(NULL, r->n ? r->n : 1, sizeof(*what));
	size_t ns = 0;
	int rc = 0;

	for (size_t i = 0; i < r->n; i++) {
		const struct mmsg *m = mfolder_msg(S.folder, r->seqs[i]);
		unsigned nf;
		uint32_t nk;

		what[i] = SKIP;
		if (m == NULL)
			continue;
		if (r->unchanged && m->modseq > r->unchanged) {
			if (r->nmod < sizeof(r->modified) / sizeof(r->modified[0]))
				r->modified[r->nmod++] = r->uid ? m->uid : r->seqs[i];
			continue;
		}
		store_target(r, m, &nf, &nk);
		what[i] = KEEP;
		if (nf != m->flags || nk != m->keywords) {
			what[i] = (ssize_t)ns;
			sets[ns++] = (struct mfolder_flag_set){ .seq = r->seqs[i], .flags = nf,
								 .keywords = nk };
		}
	}
	if (ns > 0 && mfolder_set_flags_many(S.folder, sets, ns) < 0)
		rc = -1;
	for (size_t k = 0; k < ns && rc == 0; k++)
		if (sets[k].err != 0 && sets[k].err != ENOENT)
			rc = -1;
	for (size_t i = 0; i < r->n && rc == 0; i++) {
		if (what[i] == SKIP || (what[i] >= 0 && sets[what[i]].err == ENOENT))
			continue;	/* (ENOENT: expunged by someone else meanwhile) */
		store_report(r, r->seqs[i]);
		S.deleted_count += (r->flags & MSF_DELETED) && r->mode != '-';
	}
	free(what);
	free(sets);
	return rc;
}

static void store(const struct imaparg *a, bool uid)
{
	struct store_req req = { .uid = uid };
	unsigned long long unchanged = 0;
	unsigned flags, kw_unused;
	uint32_t keywords, *seqs;
	const struct imaparg *item;
	size_t n, nmod = 0;
	int mode;		/* '+', '-' or '=' */
	bool silent;

	if (a == NULL || a->kind != IMAPARG_ATOM || (item = a->next) == NULL) {
		reply_tagged("BAD", "STORE wants a message set, an item and flags.");
		return;
	}
	if (item->kind == IMAPARG_LIST) {	/* (UNCHANGEDSINCE n) */
		if (!item->child || !imaparg_is_atom(item->child, "UNCHANGEDSINCE") ||
		    !item->child->next || sscanf(item->child->next->text, "%llu", &unchanged) != 1) {
			reply_tagged("BAD", "Invalid STORE modifier.");
			return;
		}
		S.condstore = true;
		item = item->next;
	}
	if (item == NULL || item->kind != IMAPARG_ATOM || item->next == NULL) {
		reply_tagged("BAD", "STORE wants an item and flags.");
		return;
	}
	mode = item->text[0] == '+' ? '+' : item->text[0] == '-' ? '-' : '=';
	{
		const char *name = item->text + (mode != '=');

		silent = strcasecmp(name, "FLAGS.SILENT") == 0;
		if (!silent && strcasecmp(name, "FLAGS") != 0) {
			reply_tagged("BAD", "Invalid STORE item %s.", item->text);
			return;
		}
	}
	if (S.readonly) {
		reply_tagged("NO", "Mailbox is read-only.");
		return;
	}
	/* flags may be a list or a sequence of atoms */
	if (item->next->kind == IMAPARG_LIST) {
		if (parse_flags(item->next, &flags, &keywords, true) < 0) {
			reply_tagged("BAD", "Invalid flags.");
			return;
		}
	} else {
		flags = 0;
		keywords = 0;
		for (const struct imaparg *f = item->next; f; f = f->next) {
			uint32_t k;

			if (parse_flags(f, &kw_unused, &k, true) < 0) {
				reply_tagged("BAD", "Invalid flags.");
				return;
			}
			flags |= kw_unused;
			keywords |= k;
		}
	}
	seqs = resolve_set(a->text, uid, &n);
	if (seqs == NULL) {
		reply_tagged("BAD", "Error in IMAP command STORE: Invalid messageset");
		return;
	}
	req.mode = mode;
	req.flags = flags;
	req.keywords = keywords;
	req.unchanged = unchanged;
	req.silent = silent;
	req.seqs = seqs;
	req.n = n;
	if (store_apply(&req) < 0) {
		free(seqs);
		internal_error("store");
		return;
	}
	nmod = req.nmod;
	free(seqs);
	if (nmod) {
		char set[8192];

		if (seqset_format(req.modified, nmod, set, sizeof(set)) < 0)
			(void)str_copy(set, sizeof(set), "1:*");
		reply_tagged("OK", "[MODIFIED %s] Conditional store failed.", set);
	} else {
		reply_tagged("OK", "Store completed.");
	}
}

void cmd_store(const struct imaparg *a)
{
	store(a, false);
}

void cmd_uid_store(const struct imaparg *a)
{
	store(a, true);
}

/* ---- COPY and MOVE ------------------------------------------------------------------------ */

static void copy(const struct imaparg *a, bool uid, bool move)
{
	const char *dest = a && a->next ? imaparg_astring(a->next) : NULL;
	uint32_t *seqs, *src, *dst, uidvalidity = 0;
	char sset[8192], dset[8192];
	size_t n;
	bool report;

	if (dest == NULL || a->kind != IMAPARG_ATOM || a->next->next) {
		reply_tagged("BAD", "%s wants a message set and a mailbox.", move ? "MOVE" : "COPY");
		return;
	}
	if (move && S.readonly) {
		reply_tagged("NO", "Mailbox is read-only.");
		return;
	}
	if (strcasecmp(dest, "INBOX") == 0)
		dest = "INBOX";
	seqs = resolve_set(a->text, uid, &n);
	if (seqs == NULL) {
		reply_tagged("BAD", "Error in IMAP command %s: Invalid messageset", move ? "MOVE" : "COPY");
		return;
	}
	src = xmalloc(sizeof(*src) * (n ? n : 1));
	dst = xmalloc(sizeof(*dst) * (n ? n : 1));
	for (size_t i = 0; i < n; i++) {
		src[i] = mfolder_msg(S.folder, seqs[i])->uid;
		if (mfolder_copy(S.folder, seqs[i], dest, &uidvalidity, &dst[i]) < 0) {
			int e = errno;

			free(seqs), free(src), free(dst);
			if (e == ENOENT && i == 0)
				reply_tagged("NO", "[TRYCREATE] Mailbox doesn't exist: %s", dest);
			else if (e == EDQUOT)
				reply_tagged("NO", "[OVERQUOTA] Quota exceeded");
			else
				internal_error("copy");
			return;
		}
	}
	/* COPYUID only when the sets fit a line */
	report = n > 0 && seqset_format(src, n, sset, sizeof(sset)) == 0 &&
		 seqset_format(dst, n, dset, sizeof(dset)) == 0;
	if (move) {
		struct mfolder_changes ch = { 0 };
		uint32_t *before;
		size_t nbefore;

		if (report)
			out_printf("* OK [COPYUID %u %s %s] Moved UIDs.\r\n", uidvalidity, sset, dset);
		struct mfolder_flag_set *sets = xreallocarray(NULL, n ? n : 1, sizeof(*sets));

		for (size_t i = 0; i < n; i++) {
			const struct mmsg *m = mfolder_msg(S.folder, seqs[i]);

			sets[i] = (struct mfolder_flag_set){ .seq = seqs[i], .keywords = m->keywords,
							     .flags = m->flags | MSF_DELETED };
		}
		(void)mfolder_set_flags_many(S.folder, sets, n);	/* (expunged by UID below) */
		free(sets);
		before = folder_uids(&nbefore);
		if (mfolder_expunge(S.folder, src, n, &ch) == 0)
			report_expunges(&ch, before, nbefore);
		else
			free(before);
		reply_tagged("OK", "Move completed.");
	} else if (report) {
		reply_tagged("OK", "[COPYUID %u %s %s] Copy completed.", uidvalidity, sset, dset);
	} else {
		reply_tagged("OK", "Copy completed.");
	}
	free(seqs), free(src), free(dst);
}

void cmd_copy(const struct imaparg *a)
{
	copy(a, false, false);
}

void cmd_uid_copy(const struct imaparg *a)
{
	copy(a, true, false);
}

void cmd_move(const struct imaparg *a)
{
	copy(a, false, true);
}

void cmd_uid_move(const struct imaparg *a)
{
	copy(a, true, true);
}

/* ---- EXPUNGE ---------------------------------------------------------------------------- */

void cmd_expunge(const struct imaparg *a)
{
	struct mfolder_changes ch = { 0 };
	uint32_t *before;
	size_t nbefore;

	(void)a;
	if (S.readonly) {
		reply_tagged("NO", "Mailbox is read-only.");
		return;
	}
	before = folder_uids(&nbefore);
	if (mfolder_expunge(S.folder, NULL, 0, &ch) < 0) {
		free(before);
		internal_error("expunge");
		return;
	}
	report_expunges(&ch, before, nbefore);
	folder_report_changes(true);
	reply_tagged("OK", "Expunge completed.");
}

void cmd_uid_expunge(const struct imaparg *a)
{
	struct mfolder_changes ch = { 0 };
	uint32_t *seqs, *uids;
	size_t n;

	if (a == NULL || a->kind != IMAPARG_ATOM || a->next) {
		reply_tagged("BAD", "UID EXPUNGE wants a UID set.");
		return;
	}
	if (S.readonly) {
		reply_tagged("NO", "Mailbox is read-only.");
		return;
	}
	seqs = resolve_set(a->text, true, &n);
	if (seqs == NULL) {
		reply_tagged("BAD", "Invalid UID set.");
		return;
	}
	uids = xmalloc(sizeof(*uids) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		uids[i] = mfolder_msg(S.folder, seqs[i])->uid;
	if (mfolder_expunge(S.folder, uids, n, &ch) < 0) {
		free(seqs), free(uids);
		internal_error("expunge");
		return;
	}
	free(seqs);
	report_expunges(&ch, uids, n);	/* before: only these could go */
	reply_tagged("OK", "Expunge completed.");
}
