/*
 * dispatch.c: the commands of the authenticated and selected states (RFC 3501 §6.3, §6.4
 * and the extensions we announce), and the CAPABILITY list that names them.
 */
#include <string.h>

#include "session.h"

struct command {
	const char *name;
	void (*run)(const struct imaparg *a);
	bool selected;		/* only in the selected state */
};

static const struct command commands[] = {
	{ "CAPABILITY", cmd_capability, false },
	{ "NOOP", cmd_noop, false },
	{ "LOGOUT", cmd_logout, false },
	{ "ID", cmd_id, false },
	{ "ENABLE", cmd_enable, false },
	{ "NAMESPACE", cmd_namespace, false },
	{ "SELECT", cmd_select, false },
	{ "EXAMINE", cmd_examine, false },
	{ "CREATE", cmd_create, false },
	{ "DELETE", cmd_delete, false },
	{ "RENAME", cmd_rename, false },
	{ "SUBSCRIBE", cmd_subscribe, false },
	{ "UNSUBSCRIBE", cmd_unsubscribe, false },
	{ "LIST", cmd_list, false },
	{ "LSUB", cmd_lsub, false },
	{ "STATUS", cmd_status, false },
	{ "APPEND", cmd_append, false },
	{ "IDLE", cmd_idle, false },
	{ "GETQUOTA", cmd_getquota, false },
	{ "GETQUOTAROOT", cmd_getquotaroot, false },
	{ "CHECK", cmd_check, true },
	{ "CLOSE", cmd_close, true },
	{ "UNSELECT", cmd_unselect, true },
	{ "EXPUNGE", cmd_expunge, true },
	{ "SEARCH", cmd_search, true },
	{ "FETCH", cmd_fetch, true },
	{ "STORE", cmd_store, true },
	{ "COPY", cmd_copy, true },
	{ "MOVE", cmd_move, true },
	{ "UID EXPUNGE", cmd_uid_expunge, true },
	{ "UID SEARCH", cmd_uid_search, true },
	{ "UID FETCH", cmd_uid_fetch, true },
	{ "UID STORE", cmd_uid_store, true },
	{ "UID COPY", cmd_uid_copy, true },
	{ "UID MOVE", cmd_uid_move, true },
};

const char *capability_string(void)
{
	return "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE UIDPLUS "
	       "MOVE UNSELECT CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH "
	       "CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE";
}

void dispatch(void)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, S.cmd->name) != 0)
			continue;
		if (commands[i].selected && S.state != S_SELECTED) {
			reply_tagged("BAD", "No mailbox selected.");
			return;
		}
		commands[i].run(S.cmd->args);
		return;
	}
	if (strcmp(S.cmd->name, "LOGIN") == 0 || strcmp(S.cmd->name, "AUTHENTICATE") == 0)
		reply_tagged("BAD", "Already logged in.");
	else if (strcmp(S.cmd->name, "STARTTLS") == 0)
		reply_tagged("BAD", "TLS is already active or not available after login.");
	else
		reply_tagged("BAD", "Error in IMAP command %s: Unknown command.", S.cmd->name);
}
