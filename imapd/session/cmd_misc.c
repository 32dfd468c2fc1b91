/*
 * cmd_misc.c: the small commands: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE
 * (RFC 5161: CONDSTORE, UTF8=ACCEPT), NAMESPACE (RFC 2342: one personal namespace, "."),
 * CHECK, and QUOTA (RFC 9208) from maildirsize: one root "User quota" for every folder.
 */
#include <string.h>
#include <strings.h>

#include "session.h"

void cmd_capability(const struct imaparg *a)
{
	if (a) {
		reply_tagged("BAD", "CAPABILITY takes no arguments.");
		return;
	}
	reply_untagged("CAPABILITY %s", capability_string());
	reply_tagged("OK", "Capability completed.");
}

void cmd_noop(const struct imaparg *a)
{
	(void)a;
	if (S.state == S_SELECTED)
		folder_report_changes(true);
	reply_tagged("OK", "NOOP completed.");
}

void cmd_check(const struct imaparg *a)
{
	cmd_noop(a);
}

void cmd_logout(const struct imaparg *a)
{
	(void)a;
	reply_untagged("BYE Logging out");
	reply_tagged("OK", "Logout completed.");
	folder_close();
	S.state = S_LOGOUT;
}

void cmd_id(const struct imaparg *a)
{
	if (a == NULL || (a->kind != IMAPARG_LIST && !imaparg_is_atom(a, "NIL"))) {
		reply_tagged("BAD", "ID wants a parameter list or NIL.");
		return;
	}
	reply_untagged("ID (\"name\" \"Postern\")");
	reply_tagged("OK", "ID completed.");
}

void cmd_enable(const struct imaparg *a)
{
	char enabled[128] = "";

	if (a == NULL) {
		reply_tagged("BAD", "ENABLE wants capability names.");
		return;
	}
	for (; a; a = a->next) {
		if (imaparg_is_atom(a, "CONDSTORE") && !S.condstore) {
			S.condstore = true;
			(void)strncat(enabled, " CONDSTORE", sizeof(enabled) - strlen(enabled) - 1);
		} else if (imaparg_is_atom(a, "QRESYNC") && !S.qresync) {
			S.qresync = S.condstore = true;	/* QRESYNC implies CONDSTORE */
			(void)strncat(enabled, " QRESYNC", sizeof(enabled) - strlen(enabled) - 1);
		}
	}
	reply_untagged("ENABLED%s", enabled);
	reply_tagged("OK", "Enabled.");
}

void cmd_namespace(const struct imaparg *a)
{
	(void)a;
	reply_untagged("NAMESPACE ((\"\" \".\")) NIL NIL");
	reply_tagged("OK", "Namespace completed.");
}

static void quota_reply(void)
{
	uint64_t bytes = 0, blimit = 0, msgs = 0, mlimit = 0;

	if (mstore_quota(S.store, &bytes, &blimit, &msgs, &mlimit) < 0 ||
	    (blimit == 0 && mlimit == 0)) {
		out_str("* QUOTA \"User quota\" ()\r\n");
		return;
	}
	out_str("* QUOTA \"User quota\" (");
	if (blimit)
		out_printf("STORAGE %llu %llu", (unsigned long long)(bytes / 1024),
			   (unsigned long long)(blimit / 1024));
	if (mlimit)
		out_printf("%sMESSAGE %llu %llu", blimit ? " " : "", (unsigned long long)msgs,
			   (unsigned long long)mlimit);
	out_str(")\r\n");
}

void cmd_getquota(const struct imaparg *a)
{
	const char *root = a ? imaparg_astring(a) : NULL;

	if (root == NULL || a->next) {
		reply_tagged("BAD", "GETQUOTA wants a quota root.");
		return;
	}
	if (strcasecmp(root, "User quota") != 0) {
		reply_tagged("NO", "Quota root does not exist.");
		return;
	}
	quota_reply();
	reply_tagged("OK", "Getquota completed.");
}

void cmd_getquotaroot(const struct imaparg *a)
{
	const char *name = a ? imaparg_astring(a) : NULL;

	if (name == NULL || a->next) {
		reply_tagged("BAD", "GETQUOTAROOT wants a mailbox.");
		return;
	}
	out_str("* QUOTAROOT ");
	out_astring(name);
	out_str(" \"User quota\"\r\n");
	quota_reply();
	reply_tagged("OK", "Getquotaroot completed.");
}
