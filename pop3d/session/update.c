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

/* The UPDATE state: 0, or -1 if something could not be written. */
static int update(void)
{
	uint32_t *uids = xreallocarray(NULL, (size_t)S.count + 1, sizeof(uint32_t));
	struct mfolder_flag_set *sets = xreallocarray(NULL, (size_t)S.count + 1, sizeof(*sets));
	size_t nuids = 0, nsets = 0;
	bool ok = true;

	/* \Deleted for DELE, \Seen for RETR: every change under one lock. */
	for (uint32_t n = 0; n < S.count; n++) {
		const struct mmsg *m = mfolder_msg(S.inbox, n + 1);
		unsigned add = S.msgs[n].deleted ? MSF_DELETED : S.msgs[n].retrieved ? MSF_SEEN : 0;

		if (m != NULL && add != 0 && (m->flags & add) != add)
			sets[nsets++] = (struct mfolder_flag_set){ .seq = n + 1, .keywords = m->keywords,
								   .flags = (m->flags & ~MSF_RECENT) | add };
	}
	if (nsets > 0 && mfolder_set_flags_many(S.inbox, sets, nsets) < 0)
		ok = false;
	for (size_t i = 0; i < nsets; i++)
		if (sets[i].err != 0 && sets[i].err != ENOENT) {	/* (gone meanwhile: fine) */
			msg_tagged("pop3", "Error: %s: cannot flag message %u: %s", S.user,
				   sets[i].seq, strerror(sets[i].err));
			ok = false;
		}
	for (uint32_t n = 0; n < S.count; n++)
		if (S.msgs[n].deleted && mfolder_msg(S.inbox, n + 1) != NULL &&
		    (mfolder_msg(S.inbox, n + 1)->flags & MSF_DELETED))
			uids[nuids++] = mfolder_msg(S.inbox, n + 1)->uid;
	free(sets);
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
