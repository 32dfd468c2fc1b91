/*
 * command.c: the |command and /file targets of aliases_file, in a child that already is
 * default_privs (spawn.c). expand.c lets them through only from a root-owned aliases file
 * that group and others cannot write; a command never comes from an address.
 *
 * |command: /bin/sh -c COMMAND in its own session, in default_privs' home (or /), umask
 * 077, with a clean environment (PATH, SHELL, HOME, USER, LOGNAME, SENDER, RECIPIENT,
 * LOCAL, DOMAIN, EXTENSION, ORIGINAL_RECIPIENT, as Postfix's local sets them). Its standard
 * input is the message (From_ line, Return-Path:, Delivered-To:, LF line ends), fed as the
 * pipe drains while the first bytes of its output are kept for the diagnostic. After
 * local_command_timeout the whole session is killed. Exit status 0 is delivered; EX_TEMPFAIL
 * (75) and EX_OSERR (71), death by a signal and the time limit are 4xx (retried); every
 * other status is a 5xx with the enhanced code sysexits(3) suggests.
 *
 * /file: appended in mbox format under the mbox locks (mbox.c; the dotlock only where
 * default_privs may create it); /dev/null discards; a path ending in '/' is a Maildir.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "address.h"
#include "local.h"
#include "log.h"
#include "maildir.h"
#include "util.h"

#define CMD_BUF		65536
#define CMD_OUTPUT_MAX	400	/* bytes of the command's output kept for the diagnostic */
#define CMD_DRAIN_MS	200	/* after the command exits, its output may still be read */
#define ENV_MAX		16

/* ---- the command's process -------------------------------------------------------------- */

struct env {
	char *v[ENV_MAX + 1];
	char buf[ENV_MAX][DELIVER_TEXT_MAX + 32];
	size_t n;
};

static void env_add(struct env *e, const char *name, const char *value)
{
	if (e->n < ENV_MAX &&
	    str_fmt(e->buf[e->n], sizeof(e->buf[e->n]), "%s=%s", name, value) >= 0) {
		e->v[e->n] = e->buf[e->n];
		e->n++;
	}
}

static void make_env(const struct command_job *j, struct env *e)
{
	struct addr a, bare;
	const char *ext = "";

	env_add(e, "PATH", "/usr/bin:/bin");
	env_add(e, "SHELL", "/bin/sh");
	env_add(e, "HOME", j->home);
	env_add(e, "USER", j->user);
	env_add(e, "LOGNAME", j->user);
	env_add(e, "SENDER", j->src.sender);
	env_add(e, "RECIPIENT", j->rcpt);
	env_add(e, "ORIGINAL_RECIPIENT", j->orig);
	if (addr_parse(j->rcpt, NULL, &a) == 0) {
		if (addr_strip_extension(&a, L.delimiter, &bare))
			ext = a.local + strlen(bare.local) + 1;
		env_add(e, "LOCAL", a.local);
		env_add(e, "DOMAIN", a.domain);
		env_add(e, "EXTENSION", ext);
	}
	e->v[e->n] = NULL;
}

static __attribute__((noreturn)) void exec_command(const struct command_job *j, int in, int out)
{
	static struct env env;
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	(void)setsid();
	if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(out, STDERR_FILENO) < 0)
		_exit(EX_OSERR);
	(void)close_range(3, ~0u, 0);
	sigemptyset(&dfl.sa_mask);
	(void)sigaction(SIGPIPE, &dfl, NULL);
	(void)sigaction(SIGXFSZ, &dfl, NULL);
	if (chdir(j->home) < 0 && chdir("/") < 0)
		_exit(EX_OSERR);
	(void)umask(077);
	make_env(j, &env);
	execle("/bin/sh", "sh", "-c", j->command, (char *)NULL, env.v);
	_exit(EX_OSERR);
}

/* ---- feeding it ------------------------------------------------------------------------- */

struct feed {
	struct fmt *f;
	char buf[CMD_BUF];
	size_t len, off;
	int in, out;		/* our ends of its stdin and stdout; -1 once closed */
	char output[CMD_OUTPUT_MAX + 1];
	size_t outlen;
	int read_error;		/* errno of a failed read of the queue file */
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		(void)close(*fd);
	*fd = -1;
}

/* Write what the pipe takes; fetch more message first when the buffer is empty. */
static void feed_input(struct feed *fe)
{
	ssize_t n;

	if (fe->off == fe->len) {
		n = fmt_read(fe->f, fe->buf, sizeof(fe->buf));
		if (n <= 0) {
			if (n < 0)
				fe->read_error = errno;
			close_fd(&fe->in);	/* EOF for the command */
			return;
		}
		fe->len = (size_t)n;
		fe->off = 0;
	}
	n = write(fe->in, fe->buf + fe->off, fe->len - fe->off);
	if (n > 0)
		fe->off += (size_t)n;
	else if (n < 0 && errno != EAGAIN && errno != EINTR)
		close_fd(&fe->in);	/* EPIPE: it stopped reading; its status decides */
}

static void read_output(struct feed *fe)
{
	char tmp[4096];
	ssize_t n = read(fe->out, tmp, sizeof(tmp));

	if (n > 0) {
		size_t keep = CMD_OUTPUT_MAX - fe->outlen;

		if ((size_t)n < keep)
			keep = (size_t)n;
		memcpy(fe->output + fe->outlen, tmp, keep);
		fe->outlen += keep;
		fe->output[fe->outlen] = '\0';
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		close_fd(&fe->out);
	}
}

/* Feed and watch the command until it exits (and its output is drained) or the time is up.
 * 0 with *status, or -1 on timeout (the session is killed and reaped). */
static int run(struct feed *fe, pid_t pid, int64_t timeout_ms, int *status)
{
	int64_t deadline = mono_ms() + timeout_ms, drain_until = 0;
	bool exited = false;

	while (!exited || (fe->out >= 0 && mono_ms() < drain_until)) {
		struct pollfd pfd[2];
		nfds_t n = 0;
		int64_t left = deadline - mono_ms();

		if (left <= 0) {
			(void)kill(-pid, SIGKILL);
			(void)waitpid(pid, status, 0);
			return -1;
		}
		if (fe->in >= 0)
			pfd[n++] = (struct pollfd){ .fd = fe->in, .events = POLLOUT };
		if (fe->out >= 0)
			pfd[n++] = (struct pollfd){ .fd = fe->out, .events = POLLIN };
		if (poll(pfd, n, left > 100 ? 100 : (int)left) > 0)
			for (nfds_t i = 0; i < n; i++) {
				if (pfd[i].revents && pfd[i].fd == fe->in)
					feed_input(fe);
				else if (pfd[i].revents && pfd[i].fd == fe->out)
					read_output(fe);
			}
		if (!exited && waitpid(pid, status, WNOHANG) == pid) {
			exited = true;
			drain_until = mono_ms() + CMD_DRAIN_MS;
			close_fd(&fe->in);
		}
	}
	return 0;
}

/* ---- the verdict ------------------------------------------------------------------------ */

static const struct {
	int status;
	const char *dsn, *what;
} sysexits[] = {
	{ EX_USAGE, "5.3.0", "command line usage error" },
	{ EX_DATAERR, "5.6.0", "data format error" },
	{ EX_NOINPUT, "5.3.0", "cannot open input" },
	{ EX_NOUSER, "5.1.1", "user unknown" },
	{ EX_NOHOST, "5.1.2", "host name unknown" },
	{ EX_UNAVAILABLE, "5.3.0", "service unavailable" },
	{ EX_SOFTWARE, "5.3.0", "internal software error" },
	{ EX_OSERR, "4.3.0", "system resource problem" },
	{ EX_OSFILE, "5.3.0", "critical OS file missing" },
	{ EX_CANTCREAT, "5.2.0", "cannot create output file" },
	{ EX_IOERR, "5.3.0", "input/output error" },
	{ EX_TEMPFAIL, "4.3.0", "temporary failure" },
	{ EX_PROTOCOL, "5.5.0", "remote error in protocol" },
	{ EX_NOPERM, "5.7.0", "permission denied" },
	{ EX_CONFIG, "5.3.5", "local configuration error" },
};

/* The output as one line of printable text: ". Command output: ..." or "". */
static void output_note(const struct feed *fe, char *out, size_t outsize)
{
	char clean[CMD_OUTPUT_MAX + 1];
	size_t n = 0;

	for (size_t i = 0; i < fe->outlen; i++) {
		unsigned char c = (unsigned char)fe->output[i];

		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (n == 0 || clean[n - 1] == ' '))
			continue;
		clean[n++] = (char)c;
	}
	while (n > 0 && clean[n - 1] == ' ')
		n--;
	clean[n] = '\0';
	out[0] = '\0';
	if (n > 0)
		(void)snprintf(out, outsize, ". Command output: %s", clean);
}

static void verdict(const struct command_job *j, const struct feed *fe, int rc, int status,
		    struct lresult *res)
{
	char note[CMD_OUTPUT_MAX + 32];
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	const char *dsn = "5.3.0", *what = NULL;
	char why[64] = "";

	output_note(fe, note, sizeof(note));
	if (rc < 0) {
		lresult_set(res, 451, "4.3.0", "command time limit exceeded: \"%.200s\"; deferred",
			    j->command);
	} else if (fe->read_error != 0) {
		lresult_errno(res, fe->read_error, "read the queue file");
	} else if (WIFSIGNALED(status)) {
		lresult_set(res, 451, "4.3.0", "command died with signal %d: \"%.200s\"%s",
			    WTERMSIG(status), j->command, note);
	} else if (code == 0) {
		lresult_set(res, 250, "2.0.0", "delivered to command: %s", j->command);
	} else {
		for (size_t i = 0; i < ARRAY_LEN(sysexits); i++)
			if (sysexits[i].status == code) {
				dsn = sysexits[i].dsn;
				what = sysexits[i].what;
			}
		if (what != NULL)
			(void)str_fmt(why, sizeof(why), " (%s)", what);
		lresult_set(res, dsn[0] == '4' ? 451 : 550, dsn, "command died with status %d%s: "
			    "\"%.200s\"%s", code, why, j->command, note);
	}
}

void command_deliver(void *arg, struct lresult *res)
{
	static struct feed fe;
	const struct command_job *j = arg;
	int in[2], out[2], status = 0, rc;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		lresult_errno(res, errno, "create a pipe");
		return;
	}
	pid = fork();
	if (pid < 0) {
		lresult_errno(res, errno, "fork the command");
		return;
	}
	if (pid == 0)
		exec_command(j, in[0], out[1]);
	(void)close(in[0]);
	(void)close(out[1]);
	fe = (struct feed){ .f = fmt_new(&j->src, FMT_FROM_LINE), .in = in[1], .out = out[0] };
	(void)fd_set_nonblock(fe.in, 1);
	(void)fd_set_nonblock(fe.out, 1);
	rc = run(&fe, pid, j->timeout_ms, &status);
	close_fd(&fe.in);
	close_fd(&fe.out);
	fmt_free(fe.f);
	verdict(j, &fe, rc, status, res);
	if (res->code >= 400)
		msg_warn("%s: %s", j->rcpt, res->text);
}

/* ---- /file ------------------------------------------------------------------------------ */

static void file_maildir(const struct command_job *j, char *path, struct lresult *res)
{
	char prepend[2 * DELIVER_TEXT_MAX];
	struct maildir_delivery out;
	size_t len = strlen(path);
	int fd;

	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	if (str_fmt(prepend, sizeof(prepend), "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
		    j->src.sender, j->src.delivered_to) < 0) {
		lresult_set(res, 451, "4.3.0", "internal error: header too long; deferred");
		return;
	}
	fd = maildir_create(path, (uid_t)-1, (gid_t)-1, 0700);
	if (fd < 0 || maildir_deliver(fd, j->src.fd, j->src.off, j->src.len, prepend,
				      strlen(prepend), NULL, &out) < 0) {
		msg_warn("%s: delivery to maildir %s failed: %m", j->rcpt, path);
		lresult_errno(res, errno, "write the maildir");
	} else {
		lresult_set(res, 250, "2.0.0", "delivered to maildir: %s", path);
	}
	if (fd >= 0)
		(void)close(fd);
}

void file_deliver(void *arg, struct lresult *res)
{
	const struct command_job *j = arg;
	const struct mbox_opts o = { .create = true, .allow_devnull = true };
	char path[LOCAL_PATH_MAX];

	if (str_copy(path, sizeof(path), j->command) < 0) {
		lresult_set(res, 550, "5.3.0", "file name too long");
		return;
	}
	if (path[strlen(path) - 1] == '/')
		file_maildir(j, path, res);
	else if (mbox_append(path, &o, &j->src, res) == 0)
		lresult_set(res, 250, "2.0.0", "delivered to file: %s", path);
}
