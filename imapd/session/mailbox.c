/*
 * mailbox.c: the selected state. SELECT and EXAMINE (RFC 3501 §6.3.1-2, with CONDSTORE's
 * HIGHESTMODSEQ), CLOSE (expunges silently), UNSELECT (RFC 3691, does not); the untagged
 * EXISTS / RECENT / EXPUNGE / FETCH updates that tell the client what other sessions and
 * deliveries changed; flags in both directions; sequence sets of the selected folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "session.h"
#include "util.h"

static const struct { unsigned bit; const char *name; } sysflags[] = {
	{ MSF_ANSWERED, "\\Answered" }, { MSF_FLAGGED, "\\Flagged" }, { MSF_DELETED, "\\Deleted" },
	{ MSF_SEEN, "\\Seen" }, { MSF_DRAFT, "\\Draft" }, { MSF_RECENT, "\\Recent" },
};

void out_flag_list(const struct mmsg *m)
{
	const char *const *kw;
	size_t nkw = S.folder ? mfolder_keywords(S.folder, &kw) : 0;
	bool first = true;

	for (size_t i = 0; i < sizeof(sysflags) / sizeof(sysflags[0]); i++)
		if (m->flags & sysflags[i].bit) {
			if (!first)
				out_raw(" ", 1);
			out_str(sysflags[i].name);
			first = false;
		}
	for (size_t i = 0; i < nkw && i < 32; i++)
		if (m->keywords & (1u << i)) {
			if (!first)
				out_raw(" ", 1);
			out_str(kw[i]);
			first = false;
		}
}

/* One flag: a system flag bit, or a keyword index (create it when asked). */
static int parse_one_flag(const char *f, unsigned *flags, uint32_t *keywords, bool create)
{
	int k;

	for (size_t i = 0; i + 1 < sizeof(sysflags) / sizeof(sysflags[0]); i++)
		if (strcasecmp(f, sysflags[i].name) == 0) {
			*flags |= sysflags[i].bit;
			return 0;
		}
	if (f[0] == '\\')
		return -1;		/* \Recent and unknown system flags cannot be set */
	if (S.folder == NULL)
		return 0;
	k = mfolder_keyword_index(S.folder, f, create);
	if (k >= 0)
		*keywords |= 1u << k;
	return 0;
}

int parse_flags(const struct imaparg *a, unsigned *flags, uint32_t *keywords, bool create)
{
	*flags = 0;
	*keywords = 0;
	if (a == NULL)
		return -1;
	if (a->kind == IMAPARG_ATOM)
		return parse_one_flag(a->text, flags, keywords, create);
	if (a->kind != IMAPARG_LIST)
		return -1;
	for (const struct imaparg *f = a->child; f; f = f->next)
		if (f->kind != IMAPARG_ATOM || parse_one_flag(f->text, flags, keywords, create) < 0)
			return -1;
	return 0;
}

uint32_t *resolve_set(const char *set, bool uid, size_t *n)
{
	static struct seqset ss;
	uint32_t count = S.folder ? mfolder_count(S.folder) : 0, star;
	uint32_t *out;
	size_t k = 0;

	*n = 0;
	if (uid) {
		const struct mmsg *last = count ? mfolder_msg(S.folder, count) : NULL;

		star = last ? last->uid : 1;
	} else {
		star = count ? count : 1;
	}
	if (set == NULL || seqset_parse(set, star, &ss) < 0)
		return NULL;
	if (!uid && count == 0)
		return NULL;		/* no sequence numbers exist at all */
	out = xmalloc(sizeof(*out) * (count ? count : 1));
	if (uid) {
		for (uint32_t seq = 1; seq <= count; seq++)
			if (seqset_has(&ss, mfolder_msg(S.folder, seq)->uid))
				out[k++] = seq;
	} else {
		for (size_t i = 0; i < ss.n; i++) {
			if (ss.r[i].hi > count) {
				free(out);
				return NULL;
			}
			for (uint32_t s = ss.r[i].lo; s <= ss.r[i].hi; s++)
				out[k++] = s;
		}
	}
	*n = k;
	return out;
}

void folder_close(void)
{
	if (S.folder)
		mfolder_close(S.folder);
	S.folder = NULL;
	S.state = S_AUTH;
}

static void report_flags(uint32_t seq)
{
	const struct mmsg *m = mfolder_msg(S.folder, seq);

	if (m == NULL)
		return;
	out_printf("* %u FETCH (UID %u FLAGS (", seq, m->uid);
	out_flag_list(m);
	out_str(")");
	if (S.condstore)
		out_printf(" MODSEQ (%llu)", (unsigned long long)m->modseq);
	out_str(")\r\n");
}

uint32_t *folder_uids(size_t *n)
{
	uint32_t count = S.folder ? mfolder_count(S.folder) : 0;
	uint32_t *u = xmalloc(sizeof(*u) * (count ? count : 1));

	for (uint32_t i = 0; i < count; i++)
		u[i] = mfolder_msg(S.folder, i + 1)->uid;
	*n = count;
	return u;
}

static void out_vanished(const char *prefix, const uint32_t *uids, size_t n)
{
	char *set;

	if (n == 0)
		return;
	set = xmalloc(n * 22 + 1);
	if (seqset_format(uids, n, set, n * 22 + 1) == 0)
		out_printf("* VANISHED %s%s\r\n", prefix, set);
	free(set);
}

void report_expunged(const struct mfolder_changes *ch, const uint32_t *before, size_t nbefore)
{
	if (!S.qresync || before == NULL) {
		for (size_t i = 0; i < ch->nexpunged; i++)
			out_printf("* %u EXPUNGE\r\n", ch->expunged_seqs[i]);
	} else if (ch->nexpunged) {
		uint32_t *gone = xmalloc(sizeof(*gone) * (nbefore ? nbefore : 1));
		size_t k = 0;

		for (size_t i = 0; i < nbefore; i++)
			if (mfolder_seq_of_uid(S.folder, before[i]) == 0)
				gone[k++] = before[i];
		out_vanished("", gone, k);
		free(gone);
	}
	S.expunged_count += (unsigned)ch->nexpunged;
}

void report_vanished_earlier(const struct seqset *set)
{
	uint32_t next = mfolder_uidnext(S.folder), *gone;
	size_t k = 0, cap = 1024;

	gone = xmalloc(sizeof(*gone) * cap);
	for (size_t r = 0; set ? r < set->n : r < 1; r++) {
		uint32_t lo = set ? set->r[r].lo : 1, hi = set ? set->r[r].hi : next - 1;

		for (uint32_t u = lo; u <= hi && u < next && u != 0; u++) {
			if (mfolder_seq_of_uid(S.folder, u) != 0)
				continue;
			if (k == cap)
				gone = xreallocarray(gone, cap *= 2, sizeof(*gone));
			gone[k++] = u;
		}
	}
	out_vanished("(EARLIER) ", gone, k);
	free(gone);
}

/* Called at NOOP, CHECK, IDLE, SELECT, EXPUNGE, APPEND and STATUS of the selected folder
 * (not after every UID command: a sync reads the folder's directories, and clients poll
 * with NOOP or IDLE anyway). */
void folder_report_changes(bool allow_expunge)
{
	struct mfolder_changes ch;
	uint32_t *before = NULL;
	size_t nbefore = 0;

	if (S.folder == NULL || !allow_expunge)
		return;
	memset(&ch, 0, sizeof(ch));
	if (S.qresync)
		before = folder_uids(&nbefore);
	if (mfolder_sync(S.folder, &ch) < 0) {
		msg_warn("%s: sync %s: %s", S.user, S.folder_name, mstore_error(S.store));
		free(before);
		return;
	}
	report_expunged(&ch, before, nbefore);
	free(before);
	for (size_t i = 0; i < ch.nflag_changed; i++)
		report_flags(ch.flag_changed_seqs[i]);
	if (ch.exists_changed || ch.exists != S.reported_exists) {
		out_printf("* %u EXISTS\r\n", ch.exists);
		out_printf("* %u RECENT\r\n", ch.recent);
	}
	S.reported_exists = ch.exists;
	mfolder_changes_free(&ch);
}

/* RFC 7162 §3.2.5: what changed since the client's (uidvalidity modseq [known-uids]). */
static void qresync_select(const struct imaparg *qr)
{
	static struct seqset known;
	unsigned long long uv, ms;
	uint32_t count = mfolder_count(S.folder);

	if (qr == NULL || qr->next == NULL || sscanf(qr->text, "%llu", &uv) != 1 ||
	    sscanf(qr->next->text, "%llu", &ms) != 1 || uv != mfolder_uidvalidity(S.folder))
		return;		/* another UIDVALIDITY: the client resyncs from scratch */
	if (qr->next->next && qr->next->next->kind == IMAPARG_ATOM &&
	    seqset_parse(qr->next->next->text, mfolder_uidnext(S.folder), &known) == 0)
		report_vanished_earlier(&known);
	else
		report_vanished_earlier(NULL);
	for (uint32_t seq = 1; seq <= count; seq++)
		if (mfolder_msg(S.folder, seq)->modseq > ms)
			report_flags(seq);
}

static void select_folder(const struct imaparg *a, bool readonly)
{
	const char *name = a ? imaparg_astring(a) : NULL;
	const struct imaparg *qr = NULL;	/* (uidvalidity modseq [known-uids ...]) */
	const char *const *kw;
	char flags[1024] = "";
	uint32_t count, recent = 0, unseen = 0;
	size_t nkw;

	if (name == NULL) {
		reply_tagged("BAD", "Missing mailbox name.");
		return;
	}
	for (const struct imaparg *p = a->next; p; p = p->next) {	/* (CONDSTORE) (QRESYNC ..) */
		if (p->kind != IMAPARG_LIST)
			continue;
		for (const struct imaparg *q = p->child; q; q = q->next) {
			if (imaparg_is_atom(q, "CONDSTORE"))
				S.condstore = true;
			else if (imaparg_is_atom(q, "QRESYNC") && q->next &&
				 q->next->kind == IMAPARG_LIST) {
				if (!S.qresync) {
					reply_tagged("BAD", "QRESYNC is not enabled.");
					return;
				}
				qr = q->next->child;
				q = q->next;
			}
		}
	}
	folder_close();
	S.folder = mfolder_open(S.store, name, readonly);
	if (S.folder == NULL) {
		reply_tagged("NO", "[NONEXISTENT] Mailbox doesn't exist: %s", name);
		return;
	}
	(void)str_copy(S.folder_name, sizeof(S.folder_name), name);
	S.readonly = readonly;
	S.state = S_SELECTED;
	count = mfolder_count(S.folder);
	for (uint32_t seq = 1; seq <= count; seq++) {
		const struct mmsg *m = mfolder_msg(S.folder, seq);

		recent += (m->flags & MSF_RECENT) != 0;
		if (unseen == 0 && !(m->flags & MSF_SEEN))
			unseen = seq;
	}
	nkw = mfolder_keywords(S.folder, &kw);
	for (size_t i = 0; i < nkw; i++) {
		(void)strncat(flags, " ", sizeof(flags) - strlen(flags) - 1);
		(void)strncat(flags, kw[i], sizeof(flags) - strlen(flags) - 1);
	}
	reply_untagged("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s)", flags);
	reply_untagged("OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s)] "
		       "Flags permitted.", flags, readonly ? "" : " \\*");
	reply_untagged("%u EXISTS", count);
	reply_untagged("%u RECENT", recent);
	if (unseen)
		reply_untagged("OK [UNSEEN %u] First unseen.", unseen);
	reply_untagged("OK [UIDVALIDITY %u] UIDs valid", mfolder_uidvalidity(S.folder));
	reply_untagged("OK [UIDNEXT %u] Predicted next UID", mfolder_uidnext(S.folder));
	if (S.condstore)
		reply_untagged("OK [HIGHESTMODSEQ %llu] Highest",
			       (unsigned long long)mfolder_highestmodseq(S.folder));
	S.reported_exists = count;
	if (qr)
		qresync_select(qr);
	reply_tagged("OK", "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
		     readonly ? "Examine" : "Select");
}

void cmd_select(const struct imaparg *a)
{
	select_folder(a, false);
}

void cmd_examine(const struct imaparg *a)
{
	select_folder(a, true);
}

void cmd_close(const struct imaparg *a)
{
	(void)a;
	if (!S.readonly && mfolder_expunge(S.folder, NULL, 0, NULL) < 0)
		msg_warn("%s: expunge on CLOSE: %s", S.user, mstore_error(S.store));
	folder_close();
	reply_tagged("OK", "Close completed.");
}

void cmd_unselect(const struct imaparg *a)
{
	(void)a;
	folder_close();
	reply_tagged("OK", "Unselect completed.");
}
