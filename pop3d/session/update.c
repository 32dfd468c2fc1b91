/*
 * update.c: QUIT and the UPDATE state (RFC 1939 §6). Only now does the mailbox change:
 * messages retrieved with RETR get \Seen (as Dovecot does by default), and the messages
 * marked with DELE get \Deleted and are expunged, by UID, so that a message some IMAP client
 * marked \Deleted without expunging it is left alone. The folder view was opened read-write
 * at the start, so the renames and removals are lib/mailstore's own, with dovecot-uidlist,
 * maildirsize and Postern's index kept up to date: an IMAP session on the same mailbox sees
 * the messages go at its next sync. A message that is already gone (expunged meanwhile by
 * another session) is not an error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"
#include "util.h"

/* Give message n (index) extra flags; false on a real error (a vanished one is fine). */
static bool add_flags(uint32_t n, unsigned add)
{
	const struct mmsg *m = mfolder_msg(S.inbox, n + 1);

	if (m == NULL || (m->flags & add) == add)
		return true;
	if (mfolder_set_flags(S.inbox, n + 1, (m->flags & ~MSF_RECENT) | add, m->keywords) == 0 ||
	    errno == ENOENT)
		return true;
	msg_tagged("pop3", "Error: %s: cannot flag message %u: %s", S.user, n + 1,
		   mstore_error(S.store));
	return false;
}

/* The UPDATE state: 0, or -1 if something could not be written. */
static int update(void)
{
	uint32_t *uids = xreallocarray(NULL, (size_t)S.count + 1, sizeof(uint32_t));
	size_t nuids = 0;
	bool ok = true;

	for (uint32_t n = 0; n < S.count; n++) {
		bool flagged;

		if (S.msgs[n].deleted) {
			flagged = add_flags(n, MSF_DELETED);
			if (flagged)
				uids[nuids++] = mfolder_msg(S.inbox, n + 1)->uid;
		} else {
			flagged = !S.msgs[n].retrieved || add_flags(n, MSF_SEEN);
		}
		ok = ok && flagged;
	}
	if (nuids > 0 && mfolder_expunge(S.inbox, uids, nuids, NULL) < 0) {
		msg_tagged("pop3", "Error: %s: expunge: %s", S.user, mstore_error(S.store));
		ok = false;
	}
	free(uids);
	return ok ? 0 : -1;
}

void cmd_quit(const char *args)
{
	(void)args;
	S.quit = true;
	if (update() < 0) {
		out_line("-ERR [SYS/TEMP] Some deleted messages were not removed.");
		S.end = "Disconnected: Storage error during logout.";
		return;
	}
	S.delete_success = true;
	out_line(S.deleted_count ? "+OK Logging out, messages deleted." : "+OK Logging out.");
	S.end = "Disconnected: Logged out";
}
