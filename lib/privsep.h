/*
 * privsep.h: dropping privileges the way DESIGN.md §1 requires of every daemon:
 * chroot (optional), setgroups/setgid/setuid to the service user (verified: root cannot be
 * regained), every capability dropped from the effective, permitted, inheritable, ambient
 * and bounding sets except the few a daemon is allowed to keep, no new privileges, not
 * dumpable, no core files. Any failure is fatal: a daemon never runs half-dropped.
 */
#ifndef POSTERN_PRIVSEP_H
#define POSTERN_PRIVSEP_H

#include <stdbool.h>
#include <sys/types.h>

/* Early hardening for any process: no core dumps, not dumpable. */
void privsep_harden(void);

/*
 * Become `user` (a name; "root" keeps uid 0 and is only sensible with keep_caps), after
 * chroot into chroot_dir if not NULL. keep_caps is NULL/"" or a comma-separated list of
 * capability names ("cap_setuid,cap_setgid"). Must be called as root. Ends with
 * privsep_harden() and PR_SET_NO_NEW_PRIVS.
 */
void privsep_drop(const char *user, const char *chroot_dir, const char *keep_caps);

/*
 * A mail session's drop (lib/sessionproto.h), called as root by the session program before
 * it reads a byte from the client: chroot(home), chdir("/"), no supplementary groups,
 * uid:gid in all three slots, every capability gone from every set (the bounding set too),
 * verified that root cannot be regained, no new privileges, not dumpable, no cores. uid 0
 * and gid 0 are refused. Any failure is fatal.
 */
void session_enter(const char *home, uid_t uid, gid_t gid);

/* Developer mode (-u): no user switch, no chroot; still no new privileges and no cores. */
void privsep_drop_dev(void);

/* Resolve a user name; -1 if unknown. */
int privsep_lookup_user(const char *user, uid_t *uid, gid_t *gid);
int privsep_lookup_group(const char *group, gid_t *gid);

#endif
