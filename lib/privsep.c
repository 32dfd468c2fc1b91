/*
 * privsep.c: chroot, user switch and capability dropping (see privsep.h).
 */
#include "privsep.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <linux/securebits.h>

#include "log.h"
#include "util.h"

#define MAX_KEEP_CAPS 8
#define MAX_GROUPS 64

void privsep_harden(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		msg_fatal("setrlimit(RLIMIT_CORE): %m");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		msg_fatal("prctl(PR_SET_DUMPABLE): %m");
}

int privsep_lookup_user(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return -1;
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

int privsep_lookup_group(const char *group, gid_t *gid)
{
	struct group gr, *res = NULL;
	char buf[8192];

	if (getgrnam_r(group, &gr, buf, sizeof(buf), &res) != 0 || res == NULL)
		return -1;
	*gid = gr.gr_gid;
	return 0;
}

/* Parse "cap_setuid,cap_setgid" into values; fatal on an unknown name. */
static int parse_caps(const char *list, cap_value_t *caps)
{
	char tmp[256], *save = NULL, *tok;
	int n = 0;

	if (list == NULL || *list == '\0')
		return 0;
	if (str_copy(tmp, sizeof(tmp), list) < 0)
		msg_fatal("capability list too long: %s", list);
	for (tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (n == MAX_KEEP_CAPS)
			msg_fatal("too many capabilities to keep: %s", list);
		if (cap_from_name(tok, &caps[n]) < 0)
			msg_fatal("unknown capability: %s", tok);
		n++;
	}
	return n;
}

static bool cap_listed(cap_value_t c, const cap_value_t *caps, int n)
{
	for (int i = 0; i < n; i++)
		if (caps[i] == c)
			return true;
	return false;
}

/* Remove every capability not listed from the bounding set (needs CAP_SETPCAP). */
static void drop_bounding(const cap_value_t *keep, int nkeep)
{
	for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		if (cap_listed(c, keep, nkeep))
			continue;
		if (cap_drop_bound(c) < 0 && errno != EINVAL)
			msg_fatal("cannot drop capability %d from the bounding set: %m", (int)c);
	}
}

/* Effective and permitted = keep; inheritable and ambient empty. */
static void set_caps(const cap_value_t *keep, int nkeep)
{
	cap_t caps = cap_init();

	if (caps == NULL)
		msg_fatal("cap_init: %m");
	if (nkeep > 0 && (cap_set_flag(caps, CAP_PERMITTED, nkeep, keep, CAP_SET) < 0 ||
			  cap_set_flag(caps, CAP_EFFECTIVE, nkeep, keep, CAP_SET) < 0))
		msg_fatal("cap_set_flag: %m");
	if (cap_set_proc(caps) < 0)
		msg_fatal("cap_set_proc: %m");
	cap_free(caps);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		msg_fatal("cannot clear ambient capabilities: %m");
}

static void do_chroot(const char *dir)
{
	if (chdir(dir) < 0)
		msg_fatal("chdir %s: %m", dir);
	if (chroot(".") < 0)
		msg_fatal("chroot %s: %m", dir);
	if (chdir("/") < 0)
		msg_fatal("chdir / in %s: %m", dir);
}

/* The user's supplementary groups. Call before chroot: inside it /etc/group is gone and
 * getgrouplist would quietly return the primary group alone. */
static int user_groups(const char *user, gid_t gid, gid_t *groups)
{
	int ngroups = MAX_GROUPS;

	if (getgrouplist(user, gid, groups, &ngroups) < 0)
		msg_fatal("user %s is in more than %d groups", user, MAX_GROUPS);
	return ngroups;
}

/* Switch all three uids and gids; the supplementary groups are the user's own. */
static void switch_user(const char *user, uid_t uid, gid_t gid, const gid_t *groups,
			int ngroups)
{
	if (setgroups((size_t)ngroups, groups) < 0)
		msg_fatal("setgroups for %s: %m", user);
	if (setresgid(gid, gid, gid) < 0)
		msg_fatal("setresgid(%d): %m", (int)gid);
	if (setresuid(uid, uid, uid) < 0)
		msg_fatal("setresuid(%d): %m", (int)uid);
}

/* Paranoia: prove the switch stuck and cannot be undone. */
static void verify_dropped(uid_t uid, gid_t gid)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || r != uid || e != uid || s != uid)
		msg_fatal("uid switch to %d did not take", (int)uid);
	if (getresgid(&rg, &eg, &sg) < 0 || rg != gid || eg != gid || sg != gid)
		msg_fatal("gid switch to %d did not take", (int)gid);
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		msg_fatal("root privileges could be regained after dropping to uid %d", (int)uid);
}

void privsep_drop(const char *user, const char *chroot_dir, const char *keep_caps)
{
	cap_value_t keep[MAX_KEEP_CAPS];
	int nkeep = parse_caps(keep_caps, keep), ngroups;
	gid_t groups[MAX_GROUPS];
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0)
		msg_fatal("privsep_drop: not running as root");
	if (privsep_lookup_user(user, &uid, &gid) < 0)
		msg_fatal("unknown user: %s", user);
	ngroups = user_groups(user, gid, groups);
	if (chroot_dir)
		do_chroot(chroot_dir);
	drop_bounding(keep, nkeep);
	if (uid == 0) {
		/* Stay uid 0 but make it powerless: no capabilities come back from uid 0 on exec
		 * (NOROOT), and setuid to a user still clears them (no NO_SETUID_FIXUP). */
		if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0) < 0)
			msg_fatal("prctl(PR_SET_SECUREBITS): %m");
		if (setgroups(0, NULL) < 0)
			msg_fatal("setgroups: %m");
	} else {
		if (nkeep > 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			msg_fatal("prctl(PR_SET_KEEPCAPS): %m");
		switch_user(user, uid, gid, groups, ngroups);
	}
	set_caps(keep, nkeep);
	verify_dropped(uid, gid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		msg_fatal("prctl(PR_SET_NO_NEW_PRIVS): %m");
	privsep_harden();
}

/* No capability in the effective, permitted, inheritable, ambient or bounding set. */
static void verify_no_caps(void)
{
	cap_t now = cap_get_proc(), none = cap_init();

	if (now == NULL || none == NULL)
		msg_fatal("cap_get_proc: %m");
	if (cap_compare(now, none) != 0)
		msg_fatal("capabilities remain after the drop");
	cap_free(now);
	cap_free(none);
	for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		if (cap_get_bound(c) > 0)
			msg_fatal("capability %d remains in the bounding set", (int)c);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) > 0)
			msg_fatal("capability %d remains in the ambient set", (int)c);
	}
}

void session_enter(const char *home, uid_t uid, gid_t gid)
{
	if (geteuid() != 0)
		msg_fatal("session_enter: not running as root");
	if (uid == 0 || gid == 0)
		msg_fatal("session_enter: refusing to run a session as uid %d gid %d", (int)uid,
			  (int)gid);
	if (home == NULL || home[0] != '/')
		msg_fatal("session_enter: home is not an absolute path");
	if (chroot(home) < 0)
		msg_fatal("chroot %s: %m", home);
	if (chdir("/") < 0)
		msg_fatal("chdir / in %s: %m", home);
	drop_bounding(NULL, 0);
	if (setgroups(0, NULL) < 0)
		msg_fatal("setgroups: %m");
	if (setresgid(gid, gid, gid) < 0)
		msg_fatal("setresgid(%d): %m", (int)gid);
	if (setresuid(uid, uid, uid) < 0)
		msg_fatal("setresuid(%d): %m", (int)uid);
	set_caps(NULL, 0);
	verify_dropped(uid, gid);
	if (getgroups(0, NULL) != 0)
		msg_fatal("supplementary groups remain after setgroups(0)");
	if (setgid(0) == 0 || setegid(0) == 0)
		msg_fatal("group root could be regained after dropping to gid %d", (int)gid);
	verify_no_caps();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		msg_fatal("prctl(PR_SET_NO_NEW_PRIVS): %m");
	privsep_harden();
}

void privsep_drop_dev(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		msg_fatal("prctl(PR_SET_NO_NEW_PRIVS): %m");
	privsep_harden();
}
