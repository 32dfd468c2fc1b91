/*
 * mailbox.h: where a virtual user's Maildir lives and its creation below
 * virtual_mailbox_base, shared by `postern admin user add` (as root) and the virtual delivery
 * agent (as vmail) so both build the same layout (DESIGN.md §5): the Maildir's parents
 * inside the base (mode 0700), cur/ new/ tmp/, the Maildir++ folders Dovecot clients expect
 * (.Drafts .Sent .Trash .Junk .Archive, each with a maildirfolder file) and a Dovecot
 * subscriptions file naming them.
 *
 * The tree below the base is writable by vmail (and so by anything that compromises a
 * delivery agent), so the path is walked one component at a time from the base with
 * openat(O_NOFOLLOW | O_DIRECTORY): a symbolic link or a ".." anywhere below the base stops
 * the walk, and nothing is ever created outside the base. What the walk creates is given to
 * uid:gid (mode 0700, files 0600); what exists already must belong to root or to uid.
 */
#ifndef POSTERN_MAILBOX_H
#define POSTERN_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "address.h"

/* Expand %d (domain) %n (local part) %u (whole address) %% in tmpl, as authd does for
 * virtual_home. 0, or -1 for an unknown escape or an overflow. */
int mailbox_expand(const char *tmpl, const struct addr *a, char *out, size_t outlen);

/* The Maildir path from a home and a mail location: "~" or "~/PATH" (relative to home) or
 * an absolute path (expanded as above), each optionally after Dovecot's "maildir:" prefix.
 * 0, or -1 when the location is none of these or the result does not fit. */
int mailbox_maildir_path(const char *home, const char *mail, const struct addr *a, char *out,
			 size_t outlen);

/* Is path absolute, free of "." and ".." components, and strictly below base (a lexical
 * check; the walk below refuses symbolic links). */
bool mailbox_below_base(const char *base, const char *path);

/* Open the Maildir `maildir` (which must lie below `base`), walking down from base. With
 * `create`, missing directories on the way, the Maildir itself with cur/ new/ tmp/ and the
 * standard folders are created and given to uid:gid; without it a missing component fails
 * with errno ENOENT. Returns a descriptor of the Maildir root (lib/maildir.h's maildir_fd),
 * or -1 with errno set and a one-line reason in err. */
int mailbox_open(const char *base, const char *maildir, uid_t uid, gid_t gid, bool create,
		 char *err, size_t errlen);

#endif
