/*
 * spool.c: create the spool tree with the right owners and modes (fixing them when wrong,
 * like `postfix set-permissions`) and copy the files a chrooted daemon needs from /etc.
 *
 *   $spool_directory           root          0755
 *     pid/                     root          0755   master.pid
 *     private/                 root          0755   service sockets, each 0660
 *     etc/                     root          0755   resolv.conf hosts services localtime ...
 *     empty/                   root          0555   chroot of the login processes
 *     queue/{tmp,incoming,active,deferred,hold,corrupt,defer}   queue_owner 0700
 *       incoming/X/Y/          queue_owner   0700   the 256 hashed subdirectories
 *     maildrop/                queue_owner:setgid_group 1730 (write-only drop box)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "master.h"
#include "log.h"
#include "privsep.h"
#include "util.h"

static const char *const queue_dirs[] = {
	"tmp", "incoming", "active", "deferred", "hold", "corrupt", "defer",
};

static const char *const etc_files[] = {
	"resolv.conf", "hosts", "services", "localtime", "nsswitch.conf", "host.conf",
	"protocols", "gai.conf",
};

/* Make dir exist with exactly this owner and mode (owner unchanged in developer mode). */
static void ensure_dir(const char *path, uid_t uid, gid_t gid, mode_t mode, bool dev)
{
	struct stat st;

	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		msg_fatal("mkdir %s: %m", path);
	if (lstat(path, &st) < 0)
		msg_fatal("stat %s: %m", path);
	if (!S_ISDIR(st.st_mode))
		msg_fatal("%s exists but is not a directory", path);
	if (!dev && (st.st_uid != uid || st.st_gid != gid) && chown(path, uid, gid) < 0)
		msg_fatal("chown %s: %m", path);
	if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0)
		msg_fatal("chmod %s: %m", path);
}

static void path_join(char *out, size_t outlen, const char *a, const char *b)
{
	if (str_fmt(out, outlen, "%s/%s", a, b) < 0)
		msg_fatal("path too long: %s/%s", a, b);
}

/* Copy /etc/NAME to DIR/NAME if it exists; replaced atomically so a running daemon never
 * sees a half-written resolv.conf. */
static void copy_etc_file(const char *dir, const char *name)
{
	char src[256], dst[4096], tmp[4200];
	char *data;
	size_t len;
	int fd;

	path_join(src, sizeof(src), "/etc", name);
	if (read_file(src, 1 << 20, &data, &len) < 0)
		return;		/* absent or unreadable: the daemons do without */
	path_join(dst, sizeof(dst), dir, name);
	if (str_fmt(tmp, sizeof(tmp), "%s.tmp", dst) < 0)
		msg_fatal("path too long: %s", dst);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || write_all(fd, data, len) < 0 || fchmod(fd, 0644) < 0 || close(fd) < 0 ||
	    rename(tmp, dst) < 0)
		msg_fatal("copy %s to %s: %m", src, dst);
	free(data);
}

static void lookup_or_die(const struct config *cfg, const char *param, uid_t *uid, gid_t *gid)
{
	const char *name = conf_str(cfg, param);

	if (privsep_lookup_user(name, uid, gid) < 0)
		msg_fatal("%s: user '%s' does not exist (create it or change %s)", param, name,
			  param);
}

/* incoming/X/Y for the 16 x 16 hex digits, before any daemon starts: the queue daemon
 * writes into them and qmgr watches them from its first moment (inotify). */
static void make_hashed_subdirs(const char *dir, uid_t uid, gid_t gid, bool dev)
{
	static const char hex[] = "0123456789ABCDEF";
	char path[4200];

	for (int i = 0; i < 16; i++) {
		if (str_fmt(path, sizeof(path), "%s/%c", dir, hex[i]) < 0)
			msg_fatal("path too long: %s", dir);
		ensure_dir(path, uid, gid, 0700, dev);
		for (int j = 0; j < 16; j++) {
			if (str_fmt(path, sizeof(path), "%s/%c/%c", dir, hex[i], hex[j]) < 0)
				msg_fatal("path too long: %s", dir);
			ensure_dir(path, uid, gid, 0700, dev);
		}
	}
}

void spool_prepare(const struct config *cfg, bool dev)
{
	const char *spool = conf_str(cfg, "spool_directory");
	uid_t quid = 0, uid;
	gid_t qgid = 0, drop_gid = 0, gid;
	char path[4096], sub[4096];

	if (!dev) {
		lookup_or_die(cfg, "queue_owner", &quid, &qgid);
		if (privsep_lookup_group(conf_str(cfg, "setgid_group"), &drop_gid) < 0)
			msg_fatal("setgid_group: group '%s' does not exist",
				  conf_str(cfg, "setgid_group"));
		lookup_or_die(cfg, "mail_owner", &uid, &gid);
	}
	ensure_dir(spool, 0, 0, 0755, dev);
	path_join(path, sizeof(path), spool, "pid");
	ensure_dir(path, 0, 0, 0755, dev);
	path_join(path, sizeof(path), spool, "private");
	ensure_dir(path, 0, 0, 0755, dev);
	path_join(path, sizeof(path), spool, "empty");
	ensure_dir(path, 0, 0, 0555, dev);
	path_join(path, sizeof(path), spool, "etc");
	ensure_dir(path, 0, 0, 0755, dev);
	for (size_t i = 0; i < ARRAY_LEN(etc_files); i++)
		copy_etc_file(path, etc_files[i]);
	path_join(path, sizeof(path), spool, "queue");
	ensure_dir(path, quid, qgid, 0700, dev);
	for (size_t i = 0; i < ARRAY_LEN(queue_dirs); i++) {
		path_join(sub, sizeof(sub), path, queue_dirs[i]);
		ensure_dir(sub, quid, qgid, 0700, dev);
	}
	path_join(sub, sizeof(sub), path, "incoming");
	make_hashed_subdirs(sub, quid, qgid, dev);
	path_join(path, sizeof(path), spool, "maildrop");
	ensure_dir(path, quid, drop_gid, 01730, dev);
}
