/*
 * session.c: master's side of lib/sessionproto.h: starting a mail session for a login
 * process that authenticated a user (DESIGN.md §1, the login/session split).
 *
 * master serves $spool_directory/private/session (root, mode 0660, group: mail_owner's
 * group) on its own event loop; only mail_owner (and, with -u, the invoking user) may ask.
 * A SESSION_REQ_START is validated strictly here, in master, without any I/O: known keys
 * only, service imap or pop3, an IMAP tag of tag characters (RFC 3501: any ASTRING-CHAR but
 * "+") up to SESSION_TAG_MAX ("" for POP3), a ticket of 16 to 64 hex digits (authd issues
 * 32), literal IP addresses, ports, tls 0/1, a mechanism name, and exactly one descriptor,
 * an AF_UNIX SOCK_STREAM socket. Then master forks and answers OK with the child's pid at
 * once: the slow part (authd, the file system) happens in the child, so master's loop never
 * waits on it.
 *
 * The child stays root and never reads a byte of the client socket. It redeems the ticket
 * with authd (AUTH_REQ_TICKET, which only root may ask), re-checks what authd answered (a
 * compromised authd or a bad row in the database must not open a session anywhere): the
 * home is a normalised absolute path strictly below virtual_mailbox_base, also once every
 * symbolic link is resolved, and is itself an existing directory, not a symbolic link; uid
 * and gid are not 0 and the uid is at least minimum_uid unless it is vmail_owner's; the mail
 * location has no ".." and no control character. Then it execs postern-imap or postern-pop3
 * from daemon_directory with the socket as fd 0 (sessionproto.h's argument vector), which
 * chroots into the home and drops to the user (session_enter, lib/privsep.h). Any refusal
 * is logged under the service's name and the child exits: the socket closes without a
 * byte, and the login process tells the client to try again later.
 *
 * Sessions are counted; beyond mail_max_sessions a request is answered TEMPFAIL. They are
 * not services: master reaps them (supervise_reap hands over pids it does not know), never
 * restarts them, and on stop sends them SIGTERM with everything else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "master.h"
#include "authproto.h"
#include "ipc.h"
#include "ipcserver.h"
#include "log.h"
#include "privsep.h"
#include "sessionproto.h"
#include "util.h"

#define SESSION_MAX_PEERS	4096	/* login processes connected at once */
#define TICKET_MIN		16
#define TICKET_MAX		64
#define METHOD_MAX		20
#define CHILD_DEADLINE_S	30	/* a child that has not exec'd by then is killed */
#define SESSION_ARGV_MAX	32

/* A validated SESSION_REQ_START. */
struct start_req {
	int64_t direct;		/* 1: fds[0] is the client itself (no TLS, no proxy) */
	char fail[256];		/* direct: what to tell the client if the session is refused */
	char service[8];
	char ticket[TICKET_MAX + 1];
	char rip[INET6_ADDRSTRLEN], lip[INET6_ADDRSTRLEN];
	int64_t rport, lport, tls;
	char tag[SESSION_TAG_MAX + 1];
	char method[METHOD_MAX + 1];
};

/* What authd's ticket gave, checked. */
struct account {
	char user[AUTH_MAX_ADDRESS + 1];
	char home[PATH_MAX], mail[1024];
	int64_t uid, gid, quota;
};

struct session_child {
	pid_t pid;
	struct session_child *next;
};

static struct {
	struct ipc_server *srv;
	char path[4096];
	struct ipc_allow allow;
	long long max;
	uid_t vmail_uid;
	bool have_vmail;
	int count;
	struct session_child *children;
} SS;

/* ---- validation in master ---------------------------------------------------------------- */

static bool is_tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\+", c);
}

static bool valid_tag(const char *service, const char *tag)
{
	size_t n = strlen(tag);

	if (strcmp(service, "pop3") == 0)
		return n == 0;
	if (n == 0 || n > SESSION_TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tag_char((unsigned char)tag[i]))
			return false;
	return true;
}

static bool valid_ip(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static bool valid_method(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= METHOD_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

static bool valid_ticket(const char *s)
{
	size_t n = strlen(s);

	return n >= TICKET_MIN && n <= TICKET_MAX && strspn(s, "0123456789abcdef") == n;
}

/* The session's connection: a socketpair end from the login process, or (direct) the
 * client's own TCP connection. */
static bool is_stream_socket(int fd, bool direct)
{
	int type = 0, domain = 0;
	socklen_t tl = sizeof(type), dl = sizeof(domain);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM &&
	       getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) == 0 &&
	       (direct ? domain == AF_INET || domain == AF_INET6 : domain == AF_UNIX);
}

static bool is_pipe(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* The reply to the client on refusal: printable ASCII ending in CRLF. */
static bool valid_fail(const char *s)
{
	size_t n = strlen(s);

	if (n < 3 || s[n - 2] != '\r' || s[n - 1] != '\n')
		return false;
	for (size_t i = 0; i + 2 < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* Copy a string attribute; false if absent or too long. */
static bool take(const struct ipc_msg *m, const char *key, char *dst, size_t len)
{
	const char *v = ipc_get_str(m, key);

	return v != NULL && str_copy(dst, len, v) == 0;
}

static bool take_int(const struct ipc_msg *m, const char *key, int64_t lo, int64_t hi,
		     int64_t *out)
{
	return ipc_get_int(m, key, out) == 0 && *out >= lo && *out <= hi;
}

/* NULL if the request is acceptable (r filled in), else why not. */
static const char *validate(const struct ipc_msg *m, struct start_req *r)
{
	static const char *const keys[] = {
		"ticket", "service", "rip", "lip", "rport", "lport", "tls", "tag", "method",
		"direct", "fail", NULL,
	};

	if (ipc_check_keys(m, keys) < 0)
		return "unknown attribute";
	r->direct = 0;
	r->fail[0] = '\0';
	if (ipc_get(m, "direct") && !take_int(m, "direct", 0, 1, &r->direct))
		return "malformed direct";
	if (r->direct && (!take(m, "fail", r->fail, sizeof(r->fail)) || !valid_fail(r->fail)))
		return "direct wants a fail reply";
	if (m->nfds < 1 || m->nfds > 2 || !is_stream_socket(m->fds[0], r->direct) ||
	    (m->nfds == 2 && !is_pipe(m->fds[1])))
		return "want the session's stream socket and at most a pipe of pending input";
	if (!take(m, "service", r->service, sizeof(r->service)) ||
	    (strcmp(r->service, "imap") != 0 && strcmp(r->service, "pop3") != 0))
		return "unknown service";
	if (!take(m, "ticket", r->ticket, sizeof(r->ticket)) || !valid_ticket(r->ticket))
		return "malformed ticket";
	if (!take(m, "tag", r->tag, sizeof(r->tag)) || !valid_tag(r->service, r->tag))
		return "malformed tag";
	if (!take(m, "rip", r->rip, sizeof(r->rip)) || !valid_ip(r->rip) ||
	    !take(m, "lip", r->lip, sizeof(r->lip)) || !valid_ip(r->lip))
		return "malformed address";
	if (!take_int(m, "rport", 0, 65535, &r->rport) || !take_int(m, "lport", 0, 65535, &r->lport))
		return "malformed port";
	if (!take_int(m, "tls", 0, 1, &r->tls))
		return "malformed tls";
	if (!take(m, "method", r->method, sizeof(r->method)) || !valid_method(r->method))
		return "malformed method";
	return NULL;
}

/* ---- the child: redeem, check, exec ---------------------------------------------------------- */

static __attribute__((noreturn, format(printf, 3, 4)))
void refuse(const struct start_req *r, const char *user, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(why, sizeof(why), fmt, ap) < 0)
		str_copy(why, sizeof(why), "(unformattable reason)");
	va_end(ap);
	msg_tagged(r->service, "Error: session refused: user=<%s>, rip=%s, lip=%s: %s", user,
		   r->rip, r->lip, why);
	if (r->direct)	/* nobody else holds the client now: answer it here */
		(void)write_all(0, r->fail, strlen(r->fail));
	_exit(1);
}

/* No control characters, not empty, bounded. */
static bool printable(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* An absolute path without empty, "." or ".." components and without a trailing slash. */
static bool normalised_path(const char *p)
{
	if (p[0] != '/' || p[1] == '\0')
		return false;
	for (const char *c = p + 1; *c; ) {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
		if (*c == '/')
			c++;
		if (*c == '\0' && c[-1] == '/')
			return false;
	}
	return true;
}

static bool strictly_below(const char *path, const char *base)
{
	size_t n = strlen(base);

	while (n > 1 && base[n - 1] == '/')
		n--;
	if (n == 1 && base[0] == '/')
		return path[0] == '/' && path[1] != '\0';
	return strncmp(path, base, n) == 0 && path[n] == '/' && path[n + 1] != '\0';
}

static bool has_dotdot(const char *s)
{
	for (const char *c = s; (c = strstr(c, "..")) != NULL; c += 2) {
		bool start = c == s || c[-1] == '/', end = c[2] == '\0' || c[2] == '/';

		if (start && end)
			return true;
	}
	return false;
}

/* The home, as authd gave it and as the file system has it. */
static void check_home(const struct start_req *r, const struct account *a)
{
	const char *base = conf_str(M.cfg, "virtual_mailbox_base");
	char real_home[PATH_MAX], real_base[PATH_MAX];
	struct stat st;

	if (!normalised_path(a->home) || has_dotdot(a->home))
		refuse(r, a->user, "home %s is not a normalised absolute path", a->home);
	if (!strictly_below(a->home, base))
		refuse(r, a->user, "home %s is not below virtual_mailbox_base %s", a->home, base);
	if (lstat(a->home, &st) < 0)
		refuse(r, a->user, "home %s: %m", a->home);
	if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode))
		refuse(r, a->user, "home %s is not a directory (or is a symbolic link)", a->home);
	if (realpath(a->home, real_home) == NULL || realpath(base, real_base) == NULL)
		refuse(r, a->user, "cannot resolve home %s or base %s: %m", a->home, base);
	if (!strictly_below(real_home, real_base))
		refuse(r, a->user, "home %s resolves to %s, outside %s", a->home, real_home,
		       real_base);
}

static void check_account(const struct start_req *r, const struct ipc_msg *rep,
			  struct account *a)
{
	static const char *const keys[] = {
		"user", "home", "mail", "uid", "gid", "quota", NULL,
	};
	long long min_uid = conf_int(M.cfg, "minimum_uid");

	if (ipc_check_keys(rep, keys) < 0 || !take(rep, "user", a->user, sizeof(a->user)) ||
	    !take(rep, "home", a->home, sizeof(a->home)) ||
	    !take(rep, "mail", a->mail, sizeof(a->mail)) ||
	    ipc_get_int(rep, "uid", &a->uid) < 0 || ipc_get_int(rep, "gid", &a->gid) < 0 ||
	    ipc_get_int(rep, "quota", &a->quota) < 0)
		refuse(r, "", "malformed answer from authd");
	if (!printable(a->user, AUTH_MAX_ADDRESS))
		refuse(r, "", "unusable user name from authd");
	if (a->uid <= 0 || a->uid > INT_MAX || a->gid <= 0 || a->gid > INT_MAX)
		refuse(r, a->user, "uid %lld gid %lld not allowed", (long long)a->uid,
		       (long long)a->gid);
	if (a->uid < min_uid && !(SS.have_vmail && (uid_t)a->uid == SS.vmail_uid))
		refuse(r, a->user, "uid %lld is below minimum_uid %lld", (long long)a->uid, min_uid);
	if (!printable(a->mail, sizeof(a->mail) - 1) || has_dotdot(a->mail))
		refuse(r, a->user, "unusable mail location %s", a->mail);
	if (a->quota < 0)
		refuse(r, a->user, "negative quota");
	check_home(r, a);
}

/* AUTH_REQ_TICKET over private/auth. */
static void redeem(const struct start_req *r, struct account *a)
{
	static struct ipc_msg req, rep;
	char path[4096];
	int fd;

	if (str_fmt(path, sizeof(path), "%s/%s", conf_str(M.cfg, "spool_directory"),
		    AUTH_SOCKET) < 0)
		refuse(r, "", "spool_directory too long");
	fd = ipc_connect(path, SESSION_TIMEOUT_MS);
	if (fd < 0)
		refuse(r, "", "connect to authd %s: %m", path);
	ipc_msg_init(&req, AUTH_REQ_TICKET, 1);
	if (ipc_put_str(&req, "ticket", r->ticket) < 0)
		refuse(r, "", "cannot build the ticket request");
	if (ipc_call(fd, &req, &rep, SESSION_TIMEOUT_MS) < 0)
		refuse(r, "", "authd did not answer the ticket: %m");
	close(fd);
	if (rep.status != IPC_OK)
		refuse(r, "", "ticket refused by authd: %s",
		       ipc_get_str(&rep, "reason") ? ipc_get_str(&rep, "reason") : "-");
	check_account(r, &rep, a);
}

static void argv_push(char **argv, int *n, const char *s)
{
	if (*n >= SESSION_ARGV_MAX - 1)
		msg_panic("session argument vector overflow");
	argv[(*n)++] = xstrdup(s);
	argv[*n] = NULL;
}

static void argv_push_int(char **argv, int *n, int64_t v)
{
	char num[32];

	(void)str_fmt(num, sizeof(num), "%lld", (long long)v);
	argv_push(argv, n, num);
}

/* lib/sessionproto.h's vector. */
static void build_argv(const struct start_req *r, const struct account *a, int prefix_fd,
		       char **argv)
{
	char path[4096];
	int n = 0;

	if (str_fmt(path, sizeof(path), "%s/postern-%s", conf_str(M.cfg, "daemon_directory"),
		    r->service) < 0)
		refuse(r, a->user, "daemon_directory too long");
	argv_push(argv, &n, path);
	argv_push(argv, &n, "-c");
	argv_push(argv, &n, M.conf_path);
	argv_push(argv, &n, "-s");
	argv_push(argv, &n, r->service);
	argv_push(argv, &n, "-U");
	argv_push(argv, &n, a->user);
	argv_push(argv, &n, "-u");
	argv_push_int(argv, &n, a->uid);
	argv_push(argv, &n, "-g");
	argv_push_int(argv, &n, a->gid);
	argv_push(argv, &n, "-H");
	argv_push(argv, &n, a->home);
	argv_push(argv, &n, "-M");
	argv_push(argv, &n, a->mail);
	argv_push(argv, &n, "-q");
	argv_push_int(argv, &n, a->quota);
	argv_push(argv, &n, "-r");
	argv_push(argv, &n, r->rip);
	argv_push(argv, &n, "-l");
	argv_push(argv, &n, r->lip);
	argv_push(argv, &n, "-t");
	argv_push(argv, &n, r->tag);
	if (r->tls)
		argv_push(argv, &n, "-T");
	argv_push(argv, &n, "-m");
	argv_push(argv, &n, r->method);
	if (prefix_fd >= 0) {
		argv_push(argv, &n, "-P");
		argv_push_int(argv, &n, prefix_fd);
	}
}

/* Keep only fd 0 (the session socket), 1 and 2, the log file (close-on-exec) and keep
 * (the pipe of pending input, or -1). */
static void close_other_fds(int keep)
{
	int fds[2] = { log_file_fd(), keep }, lo = 3;

	if (fds[0] > fds[1]) {
		fds[0] = fds[1];
		fds[1] = log_file_fd();
	}
	for (int i = 0; i < 2; i++) {
		if (fds[i] < lo)
			continue;
		if (fds[i] > lo)
			syscall(SYS_close_range, (unsigned)lo, (unsigned)fds[i] - 1, 0U);
		lo = fds[i] + 1;
	}
	syscall(SYS_close_range, (unsigned)lo, ~0U, 0U);
}

static __attribute__((noreturn)) void child_main(const struct start_req *r, int sock,
						 int prefix)
{
	static struct account a;
	char *argv[SESSION_ARGV_MAX], *env[SPAWN_ENV_MAX];
	sigset_t none;

	log_reset_pid();
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	alarm(CHILD_DEADLINE_S);
	if (sock != 0 && (dup2(sock, 0) < 0 || close(sock) < 0))
		refuse(r, "", "cannot move the session socket to fd 0: %m");
	if (fd_set_cloexec(0, 0) < 0 || fd_set_nonblock(0, 0) < 0)
		refuse(r, "", "session socket: %m");
	if (prefix == 0 || (prefix > 0 && prefix < 3)) {	/* keep it clear of 0..2 */
		int moved = fcntl(prefix, F_DUPFD, 3);

		prefix = moved;
	}
	if (prefix >= 0 && fd_set_cloexec(prefix, 0) < 0)
		refuse(r, "", "pending input pipe: %m");
	close_other_fds(prefix);
	redeem(r, &a);
	build_argv(r, &a, prefix, argv);
	spawn_build_env(env);
	signal(SIGPIPE, SIG_DFL);
	alarm(0);
	execve(argv[0], argv, env);
	refuse(r, a.user, "exec %s: %m", argv[0]);
}

/* ---- master's loop ------------------------------------------------------------------------- */

static void start_one(struct ipc_peer *p, const struct ipc_msg *m, const struct start_req *r)
{
	static struct ipc_msg reply;
	struct session_child *c;
	pid_t pid;

	if (SS.count >= SS.max || M.stopping) {
		if (!M.stopping)
			msg_warn("mail_max_sessions (%lld) reached: %s session for %s refused",
				 SS.max, r->service, r->rip);
		(void)ipc_peer_reply(p, m, IPC_TEMPFAIL, M.stopping ? "master is stopping" :
				     "too many sessions");
		return;
	}
	pid = fork();
	if (pid < 0) {
		msg_warn("fork for a %s session: %m", r->service);
		(void)ipc_peer_reply(p, m, IPC_TEMPFAIL, "cannot fork");
		return;
	}
	if (pid == 0)
		child_main(r, m->fds[0], m->nfds > 1 ? m->fds[1] : -1);
	c = xcalloc(1, sizeof(*c));
	c->pid = pid;
	c->next = SS.children;
	SS.children = c;
	SS.count++;
	msg_debug("%s session for %s: pid %d", r->service, r->rip, (int)pid);
	ipc_reply_init(&reply, m, IPC_OK);
	if (ipc_put_int(&reply, "pid", pid) < 0)
		msg_panic("cannot build a session reply");
	(void)ipc_peer_send(p, &reply);
}

static void on_request(struct ipc_peer *p, struct ipc_msg *m)
{
	struct start_req r;
	const char *why;

	memset(&r, 0, sizeof(r));
	if (m->type != SESSION_REQ_START) {
		(void)ipc_peer_reply(p, m, IPC_PERMFAIL, "unknown request type");
	} else if (ipc_peer_allowed(p, m, &SS.allow)) {
		why = validate(m, &r);
		if (why) {
			msg_warn("session request from pid %d refused: %s", (int)p->pid, why);
			(void)ipc_peer_reply(p, m, IPC_PERMFAIL, why);
		} else {
			start_one(p, m, &r);
		}
	}
	ipc_close_fds(m);	/* the child has its copy */
}

static const struct ipc_server_ops session_ops = {
	.request = on_request,
	.max_fds = 2,	/* the connection, and a pipe of pending input */
};

/* Who may ask, and the socket's group: both follow mail_owner. */
void session_configure(const struct config *cfg)
{
	const char *owner = conf_str(cfg, "mail_owner");
	const char *const users[] = { owner, NULL };
	uid_t uid;
	gid_t gid;

	SS.max = conf_int(cfg, "mail_max_sessions");
	SS.have_vmail = privsep_lookup_user(conf_str(cfg, "vmail_owner"), &SS.vmail_uid,
					    &gid) == 0;
	if (ipc_allow_init(&SS.allow, users) < 0)
		msg_warn("mail_owner %s is not a known user: no login process can start sessions",
			 owner);
	if (M.dev_mode && SS.allow.n < IPC_MAX_ALLOW)
		SS.allow.uid[SS.allow.n++] = getuid();
	if (!M.dev_mode && privsep_lookup_user(owner, &uid, &gid) == 0 && SS.path[0] &&
	    chown(SS.path, 0, gid) < 0)
		msg_warn("chown %s: %m", SS.path);
}

void session_init(void)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int fd;

	if (str_fmt(SS.path, sizeof(SS.path), "%s/%s", conf_str(M.cfg, "spool_directory"),
		    SESSION_SOCKET) < 0)
		msg_fatal("spool_directory too long");
	if (!M.dev_mode) {
		if (privsep_lookup_user(conf_str(M.cfg, "mail_owner"), &uid, &gid) < 0)
			msg_fatal("mail_owner: unknown user %s", conf_str(M.cfg, "mail_owner"));
		uid = 0;
	}
	fd = ipc_listen(SS.path, uid, gid, 0660, 128);
	if (fd < 0)
		msg_fatal("cannot listen on %s: %m", SS.path);
	fd_set_nonblock(fd, 1);
	SS.srv = ipc_server_new(M.loop, SESSION_MAX_PEERS, &session_ops, NULL);
	if (ipc_server_listen(SS.srv, &fd, 1) < 0)
		msg_fatal("cannot watch %s: %m", SS.path);
	session_configure(M.cfg);
}

bool session_reaped(pid_t pid, int status)
{
	for (struct session_child **pp = &SS.children; *pp; pp = &(*pp)->next) {
		struct session_child *c = *pp;

		if (c->pid != pid)
			continue;
		*pp = c->next;
		free(c);
		SS.count--;
		if (WIFSIGNALED(status) && !M.stopping)
			msg_warn("session pid %d killed by signal %d", (int)pid, WTERMSIG(status));
		return true;
	}
	return false;
}

void session_signal_all(int sig)
{
	for (struct session_child *c = SS.children; c; c = c->next)
		kill(c->pid, sig);
}

int session_count(void)
{
	return SS.count;
}
