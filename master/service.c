/*
 * service.c: turn the service table plus postern.conf into runnable services: resolve the
 * program path, user, chroot and limits, build the argument vector a child gets, and bind
 * the service's inet listeners and private socket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "master.h"
#include "buf.h"
#include "inet.h"
#include "ipc.h"
#include "log.h"
#include "privsep.h"
#include "util.h"

#define ARGV_MAX 32

static const char *service_user(const struct service_def *def, const struct config *cfg)
{
	return strcmp(def->user_param, "root") == 0 ? "root" : conf_str(cfg, def->user_param);
}

static char *service_root(const struct service_def *def, const struct config *cfg)
{
	char path[4096];

	if (def->root == ROOT_NONE || !conf_bool(cfg, "daemon_chroot"))
		return NULL;
	if (def->root == ROOT_EMPTY) {
		if (str_fmt(path, sizeof(path), "%s/empty", conf_str(cfg, "spool_directory")) < 0)
			msg_fatal("spool_directory too long");
		return xstrdup(path);
	}
	return xstrdup(conf_str(cfg, "spool_directory"));
}

static void argv_add(char **argv, int *argc, const char *s)
{
	if (*argc >= ARGV_MAX - 1)
		msg_panic("service argument vector overflow");
	argv[(*argc)++] = xstrdup(s);
	argv[*argc] = NULL;
}

/* The argument vector of server.h's contract; listener count is filled in at bind time. */
static char **build_argv(const struct service_def *def, const struct config *cfg,
			 const char *conf_path, const char *root)
{
	char **argv = xcalloc(ARGV_MAX, sizeof(char *)), path[4096], tmp[256], *save = NULL, *tok;
	int argc = 0;

	if (str_fmt(path, sizeof(path), "%s/%s", conf_str(cfg, "daemon_directory"),
		    def->command) < 0)
		msg_fatal("daemon_directory too long");
	argv_add(argv, &argc, path);
	argv_add(argv, &argc, "-c");
	argv_add(argv, &argc, conf_path);
	argv_add(argv, &argc, "-n");
	argv_add(argv, &argc, def->name);
	if (M.dev_mode) {
		argv_add(argv, &argc, "-u");
	} else {
		argv_add(argv, &argc, "-U");
		argv_add(argv, &argc, service_user(def, cfg));
		if (root) {
			argv_add(argv, &argc, "-R");
			argv_add(argv, &argc, root);
		}
		if (def->keep_caps) {
			argv_add(argv, &argc, "-K");
			argv_add(argv, &argc, def->keep_caps);
		}
	}
	if (M.foreground)
		argv_add(argv, &argc, "-f");
	for (int i = 0; i < M.verbose; i++)
		argv_add(argv, &argc, "-v");
	argv_add(argv, &argc, "-l");
	argv_add(argv, &argc, "0");	/* placeholder, see service_bind */
	argv_add(argv, &argc, "--");
	str_copy(tmp, sizeof(tmp), def->args);
	for (tok = strtok_r(tmp, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		argv_add(argv, &argc, tok);
	return argv;
}

static char *join_argv(char **argv)
{
	struct buf b;
	char *s;

	buf_init(&b, 1 << 16);
	for (int i = 0; argv[i]; i++)
		if (buf_append_str(&b, argv[i]) < 0 || buf_append_char(&b, '\x1f') < 0)
			msg_fatal("service arguments too long");
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

/* Listener identity: the spec list, the interfaces and the private socket's owner. */
static char *listen_signature(const struct service_def *def, const struct config *cfg)
{
	struct buf b;
	const char *const *items;
	size_t n;
	char *s;

	buf_init(&b, 1 << 16);
	if (def->listen_param) {
		items = conf_list(cfg, def->listen_param, &n);
		for (size_t i = 0; i < n; i++)
			buf_printf(&b, "%s,", items[i]);
		items = conf_list(cfg, "inet_interfaces", &n);
		for (size_t i = 0; i < n; i++)
			buf_printf(&b, "@%s", items[i]);
	}
	if (def->private_socket)
		buf_printf(&b, "|%s/private/%s|%s|%s", conf_str(cfg, "spool_directory"),
			   def->private_socket, service_user(def, cfg),
			   def->socket_group_param ? conf_str(cfg, def->socket_group_param) : "");
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

struct service *service_build(const struct service_def *def, const struct config *cfg,
			      const char *conf_path)
{
	struct service *svc;
	char *root;

	if (def->enable_param && !conf_bool(cfg, def->enable_param))
		return NULL;
	if (def->kind == SERVICE_POOL && def->listen_param) {
		size_t n = 0;

		conf_list(cfg, def->listen_param, &n);
		if (n == 0)
			return NULL;	/* no listeners configured: service disabled */
	}
	svc = xcalloc(1, sizeof(*svc));
	svc->def = def;
	root = service_root(def, cfg);
	svc->argv = build_argv(def, cfg, conf_path, root);
	free(root);
	svc->signature = join_argv(svc->argv);
	svc->listen_sig = listen_signature(def, cfg);
	svc->limit = def->kind == SERVICE_POOL ? (int)conf_int(cfg, def->limit_param) : 1;
	svc->status_rd = svc->status_wr = -1;
	return svc;
}

static int add_listener(struct service *svc, int fd, const char *desc)
{
	if (svc->nlisten >= SERVER_MAX_LISTEN) {
		close(fd);
		msg_error("service %s: more than %d listeners", svc->def->name, SERVER_MAX_LISTEN);
		return -1;
	}
	svc->listen_fd[svc->nlisten] = fd;
	svc->listen_desc[svc->nlisten] = xstrdup(desc);
	svc->nlisten++;
	return 0;
}

static int bind_inet(struct service *svc, const struct config *cfg)
{
	size_t nspec, nif;
	const char *const *spec = conf_list(cfg, svc->def->listen_param, &nspec);
	const char *const *ifs = conf_list(cfg, "inet_interfaces", &nif);
	struct inet_addr addrs[INET_MAX_ADDRS];
	char err[256], desc[128];

	for (size_t i = 0; i < nspec; i++) {
		int n = inet_listen_expand(spec[i], ifs, nif, addrs, INET_MAX_ADDRS, err,
					   sizeof(err));

		if (n < 0) {
			msg_error("%s: %s", svc->def->listen_param, err);
			return -1;
		}
		for (int j = 0; j < n; j++) {
			int fd = inet_listen(&addrs[j], 128);

			inet_format((struct sockaddr *)&addrs[j].ss, desc, sizeof(desc));
			if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL) && n > 1) {
				msg_warn("service %s: skipping %s: %m", svc->def->name, desc);
				continue;
			}
			if (fd < 0) {
				msg_error("service %s: cannot listen on %s: %m", svc->def->name, desc);
				return -1;
			}
			if (add_listener(svc, fd, desc) < 0)
				return -1;
		}
	}
	return 0;
}

static int bind_private(struct service *svc, const struct config *cfg)
{
	const struct service_def *def = svc->def;
	char path[4096];
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1, ugid;
	int fd;

	if (str_fmt(path, sizeof(path), "%s/private/%s", conf_str(cfg, "spool_directory"),
		    def->private_socket) < 0) {
		msg_error("private socket path too long");
		return -1;
	}
	if (!M.dev_mode) {
		if (privsep_lookup_user(service_user(def, cfg), &uid, &ugid) < 0) {
			msg_error("service %s: unknown user %s", def->name, service_user(def, cfg));
			return -1;
		}
		gid = ugid;
		if (def->socket_group_param &&
		    privsep_lookup_group(conf_str(cfg, def->socket_group_param), &gid) < 0)
			gid = ugid;
	}
	fd = ipc_listen(path, uid, gid, 0660, 128);
	if (fd < 0) {
		msg_error("service %s: cannot listen on %s: %m", def->name, path);
		return -1;
	}
	fd_set_nonblock(fd, 1);
	return add_listener(svc, fd, path);
}

/* Patch the -l placeholder now that the listener count is known. */
static void set_listen_count(struct service *svc)
{
	char count[16];
	int i;

	for (i = 0; svc->argv[i] && strcmp(svc->argv[i], "-l") != 0; i++)
		;
	if (svc->argv[i] == NULL || svc->argv[i + 1] == NULL)
		msg_panic("service %s: no -l in argv", svc->def->name);
	str_fmt(count, sizeof(count), "%d", svc->nlisten);
	free(svc->argv[i + 1]);
	svc->argv[i + 1] = xstrdup(count);
}

int service_bind(struct service *svc, const struct config *cfg)
{
	if (svc->def->listen_param && bind_inet(svc, cfg) < 0)
		return -1;
	if (svc->def->private_socket && bind_private(svc, cfg) < 0)
		return -1;
	set_listen_count(svc);
	return 0;
}

void service_take_listeners(struct service *to, struct service *from)
{
	for (int i = 0; i < from->nlisten; i++) {
		to->listen_fd[i] = from->listen_fd[i];
		to->listen_desc[i] = from->listen_desc[i];
		from->listen_fd[i] = -1;
		from->listen_desc[i] = NULL;
	}
	to->nlisten = from->nlisten;
	from->nlisten = 0;
	set_listen_count(to);
}

void service_free(struct service *svc)
{
	for (int i = 0; i < svc->nlisten; i++) {
		if (svc->listen_fd[i] >= 0)
			close(svc->listen_fd[i]);
		free(svc->listen_desc[i]);
	}
	if (svc->status_rd >= 0)
		close(svc->status_rd);
	if (svc->status_wr >= 0)
		close(svc->status_wr);
	for (int i = 0; svc->argv[i]; i++)
		free(svc->argv[i]);
	free(svc->argv);
	free(svc->signature);
	free(svc->listen_sig);
	free(svc);
}

struct service *services_build_all(const struct config *cfg, const char *conf_path)
{
	struct service *head = NULL, **tail = &head;

	for (size_t i = 0; i < service_table_len; i++) {
		struct service *svc = service_build(&service_table[i], cfg, conf_path);

		if (svc == NULL)
			continue;
		*tail = svc;
		tail = &svc->next;
	}
	return head;
}
