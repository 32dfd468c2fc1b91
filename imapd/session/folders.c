/*
 * folders.c: the folder commands. CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 3501
 * §6.3.3-7), LIST and LSUB with '%' and '*' (§6.3.8-9) and with LIST-EXTENDED (RFC 5258:
 * selection SUBSCRIBED, SPECIAL-USE, RECURSIVEMATCH; return CHILDREN, SUBSCRIBED,
 * SPECIAL-USE, STATUS of RFC 5819), CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154: the
 * standard folder names carry their attribute), STATUS (§6.3.10, with HIGHESTMODSEQ and
 * SIZE). Names are modified UTF-7 on the wire and on disk alike; the separator is '.'.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "session.h"
#include "util.h"

#define SEP '.'

static const char *folder_arg(const struct imaparg *a)
{
	const char *n = a ? imaparg_astring(a) : NULL;

	if (n == NULL)
		reply_tagged("BAD", "Missing mailbox name.");
	return n;
}

static void store_error(const char *what)
{
	switch (errno) {
	case ENOENT: reply_tagged("NO", "[NONEXISTENT] Mailbox doesn't exist."); break;
	case EEXIST: reply_tagged("NO", "[ALREADYEXISTS] Mailbox already exists."); break;
	case EINVAL: reply_tagged("NO", "[CANNOT] Invalid mailbox name."); break;
	case EDQUOT: reply_tagged("NO", "[OVERQUOTA] Quota exceeded."); break;
	default:
		msg_warn("%s: %s: %s", S.user, what, mstore_error(S.store));
		reply_tagged("NO", "[SERVERBUG] Internal error occurred. Refer to server log for "
			     "more information.");
	}
}

void cmd_create(const struct imaparg *a)
{
	char name[MS_NAME_MAX + 2];
	const char *n = folder_arg(a);
	size_t len;

	if (n == NULL)
		return;
	(void)str_copy(name, sizeof(name), n);
	len = strlen(name);
	if (len > 0 && name[len - 1] == SEP)
		name[len - 1] = '\0';	/* "Foo." means create Foo as a future parent */
	if (strcasecmp(name, "INBOX") == 0) {
		reply_tagged("NO", "[ALREADYEXISTS] Mailbox already exists.");
		return;
	}
	if (mstore_create(S.store, name) < 0)
		store_error("create");
	else
		reply_tagged("OK", "Create completed.");
}

void cmd_delete(const struct imaparg *a)
{
	const char *n = folder_arg(a);

	if (n == NULL)
		return;
	if (strcasecmp(n, "INBOX") == 0) {
		reply_tagged("NO", "INBOX can't be deleted.");
		return;
	}
	if (S.folder && strcmp(S.folder_name, n) == 0)
		folder_close();
	if (mstore_delete(S.store, n) < 0)
		store_error("delete");
	else
		reply_tagged("OK", "Delete completed.");
}

void cmd_rename(const struct imaparg *a)
{
	const char *from = folder_arg(a), *to = a && a->next ? imaparg_astring(a->next) : NULL;

	if (from == NULL)
		return;
	if (to == NULL) {
		reply_tagged("BAD", "RENAME wants two mailbox names.");
		return;
	}
	if (mstore_rename(S.store, from, to) < 0)
		store_error("rename");
	else
		reply_tagged("OK", "Rename completed.");
}

static void subscribe(const struct imaparg *a, bool on)
{
	const char *n = folder_arg(a);

	if (n == NULL)
		return;
	if (mstore_subscribe(S.store, strcasecmp(n, "INBOX") == 0 ? "INBOX" : n, on) < 0)
		store_error("subscribe");
	else
		reply_tagged("OK", "%s completed.", on ? "Subscribe" : "Unsubscribe");
}

void cmd_subscribe(const struct imaparg *a)
{
	subscribe(a, true);
}

void cmd_unsubscribe(const struct imaparg *a)
{
	subscribe(a, false);
}

/* ---- LIST ------------------------------------------------------------------------------- */

/* IMAP wildcard match: '*' anything, '%' anything but the separator. Dynamic programming
 * over (pattern, name) prefixes: no recursion, time bounded by the two lengths. */
static bool wild_match(const char *pat, const char *name)
{
	size_t n = strlen(name), m = strlen(pat);
	bool row[MS_NAME_MAX + 2], next[MS_NAME_MAX + 2];

	if (n > MS_NAME_MAX || m > 4 * MS_NAME_MAX)
		return false;
	row[0] = true;
	for (size_t j = 1; j <= n; j++)
		row[j] = false;
	for (size_t i = 0; i < m; i++) {
		char c = pat[i];

		next[0] = (c == '*' || c == '%') && row[0];
		for (size_t j = 1; j <= n; j++) {
			if (c == '*')
				next[j] = row[j] || next[j - 1];
			else if (c == '%')
				next[j] = row[j] || (next[j - 1] && name[j - 1] != SEP);
			else
				next[j] = row[j - 1] && name[j - 1] == c;
		}
		memcpy(row, next, (n + 1) * sizeof(bool));
	}
	return row[n];
}

static bool name_match(const char *ref, const char *pat, const char *name)
{
	char full[2 * MS_NAME_MAX + 2];

	if (str_fmt(full, sizeof(full), "%s%s", ref, pat) < 0)
		return false;
	if (strncasecmp(full, "INBOX", 5) == 0 && (full[5] == '\0' || full[5] == SEP)) {
		memcpy(full, "INBOX", 5);	/* INBOX matches case-insensitively */
	}
	return wild_match(full, name);
}

static const char *special_use(const char *name)
{
	static const char *const uses[][2] = {
		{ "Drafts", "\\Drafts" }, { "Sent", "\\Sent" }, { "Sent Messages", "\\Sent" },
		{ "Trash", "\\Trash" }, { "Junk", "\\Junk" }, { "Spam", "\\Junk" },
		{ "Archive", "\\Archive" },
	};

	for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++)
		if (strcmp(name, uses[i][0]) == 0)
			return uses[i][1];
	return NULL;
}

struct list_opts {
	bool lsub, subscribed_only, special_only, recursive;
	bool ret_subscribed, ret_children, ret_special;
	const struct imaparg *status_items;	/* RETURN (STATUS (...)) */
};

static bool in_list(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static bool has_children(char **names, size_t n, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (strncmp(names[i], name, len) == 0 && names[i][len] == SEP)
			return true;
	return false;
}

void status_line(const char *name, const struct imaparg *items);

static void list_one(const char *name, char **all, size_t nall, char **subs, size_t nsubs,
		     const struct list_opts *o, bool exists)
{
	char attrs[256] = "";
	const char *use = special_use(name);
	bool sub = in_list(subs, nsubs, name);

#define ADD(a) (void)strncat(attrs, attrs[0] ? " " a : a, sizeof(attrs) - strlen(attrs) - 1)
	if (!exists)
		ADD("\\Noselect");
	if (has_children(all, nall, name))
		ADD("\\HasChildren");
	else
		ADD("\\HasNoChildren");
	if (use && (!o->lsub)) {
		(void)strncat(attrs, " ", sizeof(attrs) - strlen(attrs) - 1);
		(void)strncat(attrs, use, sizeof(attrs) - strlen(attrs) - 1);
	}
	if (sub && (o->ret_subscribed || o->subscribed_only) && !o->lsub)
		ADD("\\Subscribed");
#undef ADD
	out_printf("* %s (%s) \"%c\" ", o->lsub ? "LSUB" : "LIST", attrs, SEP);
	out_astring(name);
	out_str("\r\n");
	if (o->status_items && exists)
		status_line(name, o->status_items);
}

/* RECURSIVEMATCH (RFC 5258 §3.5): a matching name that is not subscribed itself but has a
 * subscribed descendant is listed with CHILDINFO, so a client sees the way down to it.
 * Candidates are the existing names and the parents of subscribed ones. */
static void list_childinfo(const char *ref, const char *const *pats, size_t npats, char **all,
			   size_t nall, char **subs, size_t nsubs)
{
	char cand[MS_NAME_MAX + 1];
	char **seen = xmalloc(sizeof(*seen) * (nall + nsubs * 8 + 1));
	size_t nseen = 0;

	for (size_t i = 0; i < nsubs; i++) {
		const char *dot = subs[i];

		while ((dot = strchr(dot, SEP)) != NULL) {
			size_t len = (size_t)(dot - subs[i]);
			bool match = false;

			dot++;
			if (len >= sizeof(cand))
				break;
			memcpy(cand, subs[i], len);
			cand[len] = '\0';
			if (in_list(subs, nsubs, cand) || in_list(seen, nseen, cand))
				continue;
			for (size_t p = 0; p < npats && !match; p++)
				match = name_match(ref, pats[p], cand);
			if (!match || nseen >= nall + nsubs * 8)
				continue;
			seen[nseen++] = xstrdup(cand);
			out_printf("* LIST (%s) \"%c\" ", in_list(all, nall, cand) ? "" :
				   "\\NonExistent", SEP);
			out_astring(cand);
			out_str(" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n");
		}
	}
	mstore_names_free(seen, nseen);
}

static void do_list(const char *ref, const char *const *pats, size_t npats,
		    const struct list_opts *o)
{
	char **all = NULL, **subs = NULL;
	size_t nall = 0, nsubs = 0;

	if (mstore_list(S.store, &all, &nall) < 0 || mstore_subscriptions(S.store, &subs, &nsubs) < 0) {
		mstore_names_free(all, nall);
		store_error("list");
		return;
	}
	for (size_t i = 0; i < nall; i++) {
		bool match = false, sub = in_list(subs, nsubs, all[i]);

		for (size_t p = 0; p < npats && !match; p++)
			match = name_match(ref, pats[p], all[i]);
		if (!match || ((o->lsub || o->subscribed_only) && !sub))
			continue;
		if (o->special_only && !special_use(all[i]))
			continue;
		list_one(all[i], all, nall, subs, nsubs, o, true);
	}
	if (o->lsub || o->subscribed_only)	/* subscribed names that no longer exist */
		for (size_t i = 0; i < nsubs; i++) {
			bool match = false;

			for (size_t p = 0; p < npats && !match; p++)
				match = name_match(ref, pats[p], subs[i]);
			if (match && !in_list(all, nall, subs[i]))
				list_one(subs[i], all, nall, subs, nsubs, o, false);
		}
	if (o->recursive)
		list_childinfo(ref, pats, npats, all, nall, subs, nsubs);
	mstore_names_free(all, nall);
	mstore_names_free(subs, nsubs);
}

static int parse_selection(const struct imaparg *l, struct list_opts *o)
{
	for (const struct imaparg *x = l->child; x; x = x->next) {
		if (imaparg_is_atom(x, "SUBSCRIBED"))
			o->subscribed_only = o->ret_subscribed = true;
		else if (imaparg_is_atom(x, "SPECIAL-USE"))
			o->special_only = true;
		else if (imaparg_is_atom(x, "RECURSIVEMATCH"))
			o->recursive = true;
		else if (imaparg_is_atom(x, "REMOTE"))
			;
		else
			return -1;
	}
	return o->recursive && !o->subscribed_only ? -1 : 0;
}

static int parse_return(const struct imaparg *l, struct list_opts *o)
{
	for (const struct imaparg *x = l->child; x; x = x->next) {
		if (imaparg_is_atom(x, "SUBSCRIBED"))
			o->ret_subscribed = true;
		else if (imaparg_is_atom(x, "CHILDREN"))
			o->ret_children = true;
		else if (imaparg_is_atom(x, "SPECIAL-USE"))
			o->ret_special = true;
		else if (imaparg_is_atom(x, "STATUS") && x->next && x->next->kind == IMAPARG_LIST)
			o->status_items = (x = x->next)->child;
		else
			return -1;
	}
	return 0;
}

static void list_command(const struct imaparg *a, bool lsub)
{
	struct list_opts o = { .lsub = lsub };
	const char *pats[64], *ref;
	size_t npats = 0;

	if (!lsub && a && a->kind == IMAPARG_LIST) {
		if (parse_selection(a, &o) < 0) {
			reply_tagged("BAD", "Invalid LIST selection options.");
			return;
		}
		a = a->next;
	}
	ref = a ? imaparg_astring(a) : NULL;
	if (ref == NULL || a->next == NULL) {
		reply_tagged("BAD", "LIST wants a reference and a mailbox pattern.");
		return;
	}
	a = a->next;
	if (a->kind == IMAPARG_LIST && !lsub) {
		for (const struct imaparg *p = a->child; p && npats < 64; p = p->next)
			if ((pats[npats] = imaparg_astring(p)) != NULL)
				npats++;
	} else if ((pats[0] = imaparg_astring(a)) != NULL) {
		npats = 1;
	}
	if (npats == 0) {
		reply_tagged("BAD", "Invalid mailbox pattern.");
		return;
	}
	a = a->next;
	if (a && !lsub && imaparg_is_atom(a, "RETURN") && a->next && a->next->kind == IMAPARG_LIST) {
		if (parse_return(a->next, &o) < 0) {
			reply_tagged("BAD", "Invalid LIST return options.");
			return;
		}
	} else if (a) {
		reply_tagged("BAD", "Unexpected arguments.");
		return;
	}
	if (npats == 1 && pats[0][0] == '\0') {
		out_printf("* %s (\\Noselect) \"%c\" \"\"\r\n", lsub ? "LSUB" : "LIST", SEP);
	} else {
		do_list(ref, pats, npats, &o);
	}
	reply_tagged("OK", "%s completed.", lsub ? "Lsub" : "List");
}

void cmd_list(const struct imaparg *a)
{
	list_command(a, false);
}

void cmd_lsub(const struct imaparg *a)
{
	list_command(a, true);
}

/* ---- STATUS ----------------------------------------------------------------------------- */

/* "* STATUS name (...)", or nothing if the folder cannot be read (LIST-STATUS skips it). */
void status_line(const char *name, const struct imaparg *items)
{
	struct mstatus st;
	bool first = true;

	if (S.folder && strcmp(name, S.folder_name) == 0)
		folder_report_changes(false);
	if (mstore_status(S.store, name, &st) < 0)
		return;
	out_str("* STATUS ");
	out_astring(name);
	out_str(" (");
	for (const struct imaparg *i = items; i; i = i->next) {
		const char *n = i->text;
		unsigned long long v;

		if (imaparg_is_atom(i, "MESSAGES")) v = st.messages;
		else if (imaparg_is_atom(i, "RECENT")) v = st.recent;
		else if (imaparg_is_atom(i, "UIDNEXT")) v = st.uidnext;
		else if (imaparg_is_atom(i, "UIDVALIDITY")) v = st.uidvalidity;
		else if (imaparg_is_atom(i, "UNSEEN")) v = st.unseen;
		else if (imaparg_is_atom(i, "HIGHESTMODSEQ")) v = st.highestmodseq;
		else if (imaparg_is_atom(i, "SIZE")) v = st.size;
		else continue;
		out_printf("%s%s %llu", first ? "" : " ", n, v);
		first = false;
	}
	out_str(")\r\n");
}

void cmd_status(const struct imaparg *a)
{
	const char *name = folder_arg(a);
	struct mstatus st;

	if (name == NULL)
		return;
	if (a->next == NULL || a->next->kind != IMAPARG_LIST || a->next->child == NULL) {
		reply_tagged("BAD", "STATUS wants a list of status items.");
		return;
	}
	for (const struct imaparg *i = a->next->child; i; i = i->next)
		if (!imaparg_is_atom(i, "MESSAGES") && !imaparg_is_atom(i, "RECENT") &&
		    !imaparg_is_atom(i, "UIDNEXT") && !imaparg_is_atom(i, "UIDVALIDITY") &&
		    !imaparg_is_atom(i, "UNSEEN") && !imaparg_is_atom(i, "HIGHESTMODSEQ") &&
		    !imaparg_is_atom(i, "SIZE")) {
			reply_tagged("BAD", "Unknown STATUS item.");
			return;
		}
	if (mstore_status(S.store, name, &st) < 0) {
		store_error("status");
		return;
	}
	status_line(name, a->next->child);
	reply_tagged("OK", "Status completed.");
}
