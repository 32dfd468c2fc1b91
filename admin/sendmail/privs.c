/*
 * privs.c: what postern-sendmail does about running set-group-ID setgid_group.
 *
 * The only thing the extra group is for is writing into maildrop/ (mode 1730, group
 * setgid_group). So, first thing: descriptors 0-2 are made to exist (a setgid program run
 * with stdout closed would otherwise write its queue file's bytes, or its errors, into
 * whatever it opens next), the environment is replaced by a fixed PATH plus a checked TZ and
 * POSTERN_CONFIG, and the extra group is suspended (effective gid = real gid, the saved
 * set-gid kept). maildrop.c resumes it around the write only. Before anything else is run
 * (postern mailq/flush) or read for the user (newaliases) the group is dropped for good,
 * and that is verified.
 *
 * The configuration names the spool directory the privileged write goes to, the size
 * limit and the command directory. A configuration other than the default (-C FILE or
 * POSTERN_CONFIG) is therefore only honoured while set-group-ID when root owns the file and
 * nobody else may write it: otherwise any local user could point spool_directory at any
 * directory setgid_group may write to, or lift the limits, with our group's rights.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sendmail.h"
#include "util.h"

#define SAFE_PATH	"/usr/sbin:/usr/bin:/sbin:/bin"
#define ENV_VALUE_MAX	1024

static struct {
	gid_t real, set;	/* the real gid and the set-group-ID one */
	bool setgid;
} P;

static void die_early(const char *what)
{
	char line[256];

	/* Possibly before stderr is known to be usable: best effort, one write. */
	if (str_fmt(line, sizeof(line), "sendmail: %s\n", what) == 0)
		(void)write_all(2, line, strlen(line));
	_exit(EX_OSERR);
}

/* fds 0, 1 and 2 exist (on /dev/null if the caller closed them). */
static void open_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", O_RDWR) != fd)
			die_early("cannot open /dev/null for a closed standard descriptor");
	}
}

/* TZ names a zone ("Europe/Berlin", ":UTC", "CET-1CEST") but never a file of the caller's
 * choosing, nor anything long or odd. */
static bool tz_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 64 || v[0] == '/' || (v[0] == ':' && v[1] == '/') ||
	    strstr(v, "..") != NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9') || strchr(":/_+-,.<>", v[i]) != NULL))
			return false;
	return true;
}

static bool printable(const char *v)
{
	size_t n = strnlen(v, ENV_VALUE_MAX + 1);

	if (n == 0 || n > ENV_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return false;
	return true;
}

static void sanitize_environment(void)
{
	const char *tz = getenv("TZ"), *conf = getenv("POSTERN_CONFIG");
	char *keep_tz = tz && tz_ok(tz) ? xstrdup(tz) : NULL;
	char *keep_conf = conf && printable(conf) ? xstrdup(conf) : NULL;

	if (clearenv() != 0 || setenv("PATH", SAFE_PATH, 1) != 0 ||
	    (keep_tz && setenv("TZ", keep_tz, 1) != 0) ||
	    (keep_conf && setenv("POSTERN_CONFIG", keep_conf, 1) != 0))
		die_early("cannot set up the environment");
	free(keep_tz);
	free(keep_conf);
}

void privs_init(void)
{
	open_std_fds();
	sanitize_environment();
	/* A write past RLIMIT_FSIZE must fail (and the file be removed), not kill us with
	 * a half-written file in maildrop/; a closed stdout in -bs mode is EPIPE. */
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	P.real = getgid();
	P.set = getegid();
	P.setgid = P.real != P.set;
	privs_suspend();
}

bool privs_setgid(void)
{
	return P.setgid;
}

void privs_suspend(void)
{
	if (P.setgid && (setegid(P.real) < 0 || getegid() != P.real))
		die_early("cannot suspend the set-group-ID");
}

void privs_resume(void)
{
	if (P.setgid && (setegid(P.set) < 0 || getegid() != P.set))
		die_early("cannot resume the set-group-ID");
}

void privs_drop(const struct sendmail *sm)
{
	gid_t r, e, s;

	if (!P.setgid)
		return;
	if (setresgid(P.real, P.real, P.real) < 0 || getresgid(&r, &e, &s) < 0 ||
	    r != P.real || e != P.real || s != P.real)
		sm_die(sm, EX_OSERR, "cannot drop the set-group-ID: %s", strerror(errno));
	/* Root may regain any group anyway; anyone else must not get ours back. */
	if (geteuid() != 0 && setegid(P.set) == 0)
		sm_die(sm, EX_OSERR, "the set-group-ID could be regained after dropping it");
}

static void conf_error(const char *msg, void *arg)
{
	sm_warn(arg, "%s", msg);
}

/* The open configuration file, checked: a regular file, and trusted if it must be. */
static int open_config(struct sendmail *sm)
{
	struct stat st;
	int fd = open(sm->conf_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		sm_die(sm, EX_TEMPFAIL, "cannot open the configuration file %s: %s",
		       sm->conf_path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		sm_die(sm, EX_TEMPFAIL, "%s: not a regular file", sm->conf_path);
	if (sm->conf_given && P.setgid && (st.st_uid != 0 || (st.st_mode & 022) != 0))
		sm_die(sm, EX_NOPERM, "refusing the configuration file %s: running set-group-ID, "
		       "a configuration other than the default must be owned by root and not "
		       "writable by group or others", sm->conf_path);
	return fd;
}

void config_load(struct sendmail *sm)
{
	int fd = open_config(sm);

	sm->cfg = conf_load_fd(fd, sm->conf_path, conf_params, conf_error, sm);
	close(fd);
	if (sm->cfg == NULL)
		sm_die(sm, EX_TEMPFAIL, "the configuration file %s has errors", sm->conf_path);
	sm->myhostname = conf_str(sm->cfg, "myhostname");
	sm->myorigin = conf_str(sm->cfg, "myorigin");
	sm->size_limit = (uint64_t)conf_size(sm->cfg, "message_size_limit");
}

void exec_postern(struct sendmail *sm, const char *command)
{
	char path[4096];
	char *argv[] = { xstrdup("postern"), xstrdup(command), xstrdup("-c"),
			 xstrdup(sm->conf_path), NULL };

	if (str_fmt(path, sizeof(path), "%s/postern", conf_str(sm->cfg, "command_directory")) < 0)
		sm_die(sm, EX_CONFIG, "command_directory is too long");
	signal(SIGXFSZ, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	fflush(NULL);
	execv(path, argv);
	sm_die(sm, EX_UNAVAILABLE, "cannot run %s: %s", path, strerror(errno));
}
