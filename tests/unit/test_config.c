/*
 * test_config.c: unit tests for the postern.conf parser (lib/config.c, config_expand.c,
 * config_value.c) against the real parameter table: syntax, continuation lines, $name
 * expansion and its limits, typed values and ranges, overrides, and every error message.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "config_priv.h"
#include "params.h"
#include "t.h"
#include "t_errs.h"
#include "util.h"


static char dir[64], path[128];


/* path followed by suffix, e.g. at(":3: missing '='"); a few rotating buffers. */
static const char *at(const char *fmt, ...)
{
	static char bufs[4][1024];
	static int next;
	char *out = bufs[next++ % 4], rest[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	str_fmt(out, sizeof(bufs[0]), "%s%s", path, rest);
	return out;
}

static void write_conf(const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write_all(fd, data, len) < 0 || close(fd) < 0) {
		perror(path);
		exit(2);
	}
}

static struct config *load_bytes(const char *data, size_t len, struct errs *e)
{
	memset(e, 0, sizeof(*e));
	write_conf(data, len);
	return conf_load(path, collect, e);
}

static struct config *load(const char *text, struct errs *e)
{
	return load_bytes(text, strlen(text), e);
}

/* Load text that must be accepted. */
static struct config *load_ok(const char *text)
{
	struct errs e;
	struct config *c = load(text, &e);

	T_CHECK(c != NULL);
	T_EQ_INT(e.n, 0);
	if (e.n)
		fprintf(stderr, "  first error: %s\n", e.msg[0]);
	/* Keep going with something the getters accept; the failure is already counted. */
	return c ? c : conf_defaults();
}

/* Load text that must be rejected with exactly one message. */
static void load_one_error(const char *text, const char *want)
{
	struct errs e;
	struct config *c = load(text, &e);

	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], want);
	conf_free(c);
}

/* Run fn in a child and report whether it died of abort() (msg_panic). */
static int panics(void (*fn)(void))
{
	int status, devnull;
	pid_t pid = fork();

	if (pid < 0)
		return 0;
	if (pid == 0) {
		devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 2);
		fn();
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

/* ---- defaults ---------------------------------------------------------------------------- */

static void test_defaults(void)
{
	struct config *c = conf_defaults();
	char host[1025], domain[1025], want[1100];
	const char *const *items;
	size_t n, i;

	T_EQ_STR(conf_path(c), "(defaults)");
	T_EQ_INT(conf_int(c, "default_process_limit"), 100);
	T_EQ_INT(conf_int(c, "smtp_process_limit"), 100);	/* "$default_process_limit" */
	T_EQ_INT(conf_int(c, "max_use"), 100);
	T_EQ_INT(conf_time_ms(c, "max_idle"), 100000);
	T_EQ_INT(conf_time_ms(c, "master_stop_timeout"), 4000);
	T_CHECK(conf_bool(c, "daemon_chroot"));
	T_CHECK(!conf_bool(c, "test_services"));
	T_EQ_STR(conf_str(c, "config_directory"), "/etc/postern");
	T_EQ_STR(conf_str(c, "tls_cert_file"), "/etc/postern/cert.pem");
	T_EQ_STR(conf_str(c, "log_file"), "");

	T_EQ_INT(params_computed_default("myhostname", host, sizeof(host)), 0);
	T_EQ_INT(params_computed_default("mydomain", domain, sizeof(domain)), 0);
	T_EQ_STR(conf_str(c, "myhostname"), host);
	T_EQ_STR(conf_str(c, "mydomain"), domain);
	T_EQ_STR(conf_str(c, "myorigin"), host);

	items = conf_list(c, "mydestination", &n);
	T_EQ_INT(n, 3);
	str_fmt(want, sizeof(want), "localhost.%s", domain);
	if (n == 3) {
		T_EQ_STR(items[0], host);
		T_EQ_STR(items[1], want);
		T_EQ_STR(items[2], "localhost");
		T_CHECK(items[3] == NULL);
	}
	items = conf_list(c, "mynetworks", &n);
	T_EQ_INT(n, 2);
	if (n == 2) {
		T_EQ_STR(items[0], "127.0.0.0/8");
		T_EQ_STR(items[1], "[::1]/128");
	}
	items = conf_list(c, "test_listen", &n);
	T_EQ_INT(n, 0);
	T_CHECK(items != NULL && items[0] == NULL);
	T_CHECK(conf_list(c, "smtp_listen", NULL) != NULL);

	for (i = 0; conf_params[i].name; i++)
		T_CHECK(!conf_is_set(c, conf_params[i].name));
	conf_free(c);
}

static void test_param_find(void)
{
	const struct conf_param *p = conf_param_find("max_idle");

	T_CHECK(p != NULL && p->type == CONF_TIME && strcmp(p->name, "max_idle") == 0);
	T_CHECK(conf_param_find("max_idl") == NULL);
	T_CHECK(conf_param_find("max_idle_") == NULL);
	T_CHECK(conf_param_find("") == NULL);
	T_CHECK(conf_param_find(NULL) == NULL);
}

/* ---- syntax ------------------------------------------------------------------------------ */

static void test_basic_syntax(void)
{
	struct config *c = load_ok(
		"# a comment\n"
		"\n"
		"   \t\n"
		"myhostname = mail.example.com\n"
		"   # an indented comment is still a comment\n"
		"mail_owner=nobody\n"
		"queue_owner\t =\t  q  \t\n"
		"setgid_group = a#b # not a comment\n"
		"auth_owner = x = y\n"
		"log_file =\n"
		"vmail_owner = crlf\r\n"
		"default_process_limit = 42");	/* no final newline */

	T_EQ_STR(conf_path(c), path);
	T_EQ_STR(conf_str(c, "myhostname"), "mail.example.com");
	T_EQ_STR(conf_str(c, "mail_owner"), "nobody");
	T_EQ_STR(conf_str(c, "queue_owner"), "q");
	T_EQ_STR(conf_str(c, "setgid_group"), "a#b # not a comment");
	T_EQ_STR(conf_str(c, "auth_owner"), "x = y");
	T_EQ_STR(conf_str(c, "log_file"), "");
	T_CHECK(conf_is_set(c, "log_file"));
	T_EQ_STR(conf_str(c, "vmail_owner"), "crlf");
	T_EQ_INT(conf_int(c, "default_process_limit"), 42);
	T_CHECK(conf_is_set(c, "myhostname"));
	T_CHECK(!conf_is_set(c, "myorigin"));
	conf_free(c);

	c = load_ok("");
	T_EQ_INT(conf_int(c, "max_use"), 100);
	conf_free(c);
}

static void test_later_assignment_wins(void)
{
	/* Only the value that counts is validated, as in Postfix. */
	struct config *c = load_ok("mail_owner = a\nmax_idle = soon\nmail_owner = b\n"
				   "max_idle = 5s\n");

	T_EQ_STR(conf_str(c, "mail_owner"), "b");
	T_EQ_INT(conf_time_ms(c, "max_idle"), 5000);
	conf_free(c);
}

static void test_continuation(void)
{
	struct config *c = load_ok(
		"mydestination = a.example,\n"
		"    b.example   \n"
		"# comments and blank lines do not end a logical line\n"
		"\n"
		"\tc.example d.example\n"
		"mail_owner = one\n"
		"  two  \n"
		"\t\tthree\n"
		"queue_owner = q\n");
	const char *const *items;
	size_t n;

	items = conf_list(c, "mydestination", &n);
	T_EQ_INT(n, 4);
	if (n == 4) {
		T_EQ_STR(items[0], "a.example");
		T_EQ_STR(items[1], "b.example");
		T_EQ_STR(items[2], "c.example");
		T_EQ_STR(items[3], "d.example");
	}
	T_EQ_STR(conf_str(c, "mail_owner"), "one two three");
	T_EQ_STR(conf_str(c, "queue_owner"), "q");
	conf_free(c);

	/* The name and '=' may come on different physical lines. */
	c = load_ok("mail_owner\n  = joined\n");
	T_EQ_STR(conf_str(c, "mail_owner"), "joined");
	conf_free(c);
}

static void test_continuation_errors(void)
{
	struct errs e;
	struct config *c;

	/* One error for a run of orphan continuation lines, and the file goes on. */
	c = load("  orphan = 1\n  more\n# c\nmail_owner = x\nbogus = 1\n   tail of bogus\n", &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 2);
	T_EQ_STR(e.msg[0], at(":1: continuation line without a parameter line before it"));
	T_EQ_STR(e.msg[1], at(":5: unknown parameter 'bogus'"));
}

static void test_syntax_errors(void)
{
	struct errs e;
	struct config *c = load(
		"mail_owner = ok\n"
		"just some words\n"
		"= value\n"
		"Mail_Owner = x\n"
		"smtpd_bannr = hi\n"
		"max idle = 5s\n"
		"queue_owner = fine\n"
		"default_process_limit = 0\n", &e);

	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 6);
	T_EQ_STR(e.msg[0], at(":2: missing '=' (expected name = value)"));
	T_EQ_STR(e.msg[1], at(":3: missing parameter name before '='"));
	T_EQ_STR(e.msg[2], at(":4: bad parameter name 'Mail_Owner' (expected a-z, 0-9 and _)"));
	T_EQ_STR(e.msg[3], at(":5: unknown parameter 'smtpd_bannr'"));
	T_EQ_STR(e.msg[4], at(":6: bad parameter name 'max idle' (expected a-z, 0-9 and _)"));
	T_EQ_STR(e.msg[5],
		 at(":8: value of 'default_process_limit' is out of range [1..100000]: '0'"));
}

static void test_messages_are_clean_lines(void)
{
	char name[300];
	struct errs e;
	int i;

	/* Control characters never reach the callback; long names are cut. */
	load("ma\x1bil = x\n", &e);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], at(":1: bad parameter name 'ma?il' (expected a-z, 0-9 and _)"));
	load("max_idle = 5\x01s\n", &e);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], at(":1: bad value for 'max_idle': '5?s' "
			      "(expected a time like 30s, 5m)"));

	for (i = 0; i < 200; i++)
		name[i] = 'z';
	str_copy(name + 200, sizeof(name) - 200, " = 1\n");
	load(name, &e);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], at(":1: unknown parameter '%.60s...'", name));
}

/* ---- file limits ------------------------------------------------------------------------- */

static void test_unreadable(void)
{
	struct errs e = { 0 };
	char missing[200], want[300];

	str_fmt(missing, sizeof(missing), "%s/nonexistent.conf", dir);
	T_CHECK(conf_load(missing, collect, &e) == NULL);
	T_EQ_INT(e.n, 1);
	str_fmt(want, sizeof(want), "%s: cannot open: %s", missing, strerror(ENOENT));
	T_EQ_STR(e.msg[0], want);

	memset(&e, 0, sizeof(e));
	T_CHECK(conf_load(dir, collect, &e) == NULL);
	T_EQ_INT(e.n, 1);
	str_fmt(want, sizeof(want), "%s: cannot open: %s", dir, strerror(EISDIR));
	T_EQ_STR(e.msg[0], want);
}

static void test_file_size_limit(void)
{
	size_t len = CONF_FILE_MAX + 1, i;
	char *data = xmalloc(len);
	struct config *c;
	struct errs e;

	/* Comment lines of 1000 bytes, ending exactly at 1 MiB: accepted. */
	for (i = 0; i < len; i++)
		data[i] = (i % 1000 == 999) ? '\n' : '#';
	data[CONF_FILE_MAX - 1] = '\n';
	c = load_bytes(data, CONF_FILE_MAX, &e);
	T_CHECK(c != NULL);
	T_EQ_INT(e.n, 0);
	conf_free(c);

	c = load_bytes(data, len, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], at(": file is larger than 1048576 bytes"));
	free(data);
}

static void test_line_length_limit(void)
{
	size_t max = CONF_LINE_MAX, len = max + 200, i;
	char *data = xmalloc(len);
	struct config *c;
	struct errs e;

	/* Line 1: exactly 64 KiB of value line; accepted. */
	memcpy(data, "mail_owner = ", 13);
	for (i = 13; i < max; i++)
		data[i] = 'a';
	data[max] = '\n';
	c = load_bytes(data, max + 1, &e);
	T_CHECK(c != NULL);
	T_EQ_INT(e.n, 0);
	T_EQ_INT(c ? strlen(conf_str(c, "mail_owner")) : 0, max - 13);
	conf_free(c);

	/* One byte more, followed by its continuation (dropped with it) and a bad line. */
	data[max] = 'a';
	memcpy(data + max + 1, "\n  cont\nnope = 1\n", 17);
	c = load_bytes(data, max + 18, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 2);
	T_EQ_STR(e.msg[0], at(":1: line longer than 65536 bytes"));
	T_EQ_STR(e.msg[1], at(":3: unknown parameter 'nope'"));
	free(data);
}

static void test_nul_byte(void)
{
	static const char text[] = "mail_owner = a\nqueue_owner = b\0c\n  more\nbad = 1\n"
				   "auth_owner = x\n    y\0z\nvmail_owner = v\n";
	struct errs e;
	struct config *c = load_bytes(text, sizeof(text) - 1, &e);

	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 3);
	T_EQ_STR(e.msg[0], at(":2: NUL byte in line"));
	T_EQ_STR(e.msg[1], at(":4: unknown parameter 'bad'"));
	T_EQ_STR(e.msg[2], at(":6: NUL byte in line"));
}

static void test_error_callback_null(void)
{
	char logpath[200], got[2048];
	int saved = dup(2), fd;
	ssize_t n;

	str_fmt(logpath, sizeof(logpath), "%s/stderr.txt", dir);
	fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	T_CHECK(saved >= 0 && fd >= 0);
	write_conf("nosuch = 1\n", 11);
	dup2(fd, 2);
	T_CHECK(conf_load(path, NULL, NULL) == NULL);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, got, sizeof(got) - 1, 0);
	close(fd);
	got[n > 0 ? n : 0] = '\0';
	T_CHECK(strstr(got, "error: ") != NULL);
	T_CHECK(strstr(got, at(":1: unknown parameter 'nosuch'\n")) != NULL);
}

/* ---- expansion --------------------------------------------------------------------------- */

static void test_expansion(void)
{
	struct config *c = load_ok(
		"myorigin = $mail_owner.${queue_owner}x\n"
		"mail_owner = m\n"			/* defined after its use */
		"queue_owner = q\n"
		"auth_owner = cost $$5 and $$mail_owner, $$$mail_owner, $$${mail_owner}\n"
		"setgid_group = ${config_directory}/$log_file/$spool_directory\n"
		"mydestination = $myhostname, ${mail_owner}.example $queue_owner\n"
		"myhostname = host.example.org\n"
		"default_process_limit = 7\n"
		"imap_process_limit = 9\n"
		"max_use = $default_process_limit$default_process_limit\n"
		"max_idle = ${max_use}s\n");
	const char *const *items;
	size_t n;

	T_EQ_STR(conf_str(c, "myorigin"), "m.qx");
	T_EQ_STR(conf_str(c, "auth_owner"), "cost $5 and $mail_owner, $m, $m");
	T_EQ_STR(conf_str(c, "setgid_group"), "/etc/postern//" "/var/spool/postern");
	items = conf_list(c, "mydestination", &n);
	T_EQ_INT(n, 3);
	if (n == 3) {
		T_EQ_STR(items[0], "host.example.org");
		T_EQ_STR(items[1], "m.example");
		T_EQ_STR(items[2], "q");
	}
	T_EQ_INT(conf_int(c, "smtp_process_limit"), 7);
	T_EQ_INT(conf_int(c, "imap_process_limit"), 9);
	T_EQ_INT(conf_int(c, "max_use"), 77);
	T_EQ_INT(conf_time_ms(c, "max_idle"), 77000);
	conf_free(c);
}

static void test_expansion_errors(void)
{
	struct errs e;
	struct config *c = load(
		"mail_owner = $nosuch and ${other_one}\n"
		"queue_owner = ${mail_owner\n"
		"auth_owner = ${}\n"
		"vmail_owner = cost 5$\n"
		"setgid_group = a $-b\n"
		"log_file = ${Mail_owner}\n"
		"myorigin = $mail_owner\n", &e);	/* fails silently: cause reported */

	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 7);
	T_EQ_STR(e.msg[0], at(":1: value of 'mail_owner' refers to unknown parameter 'nosuch'"));
	T_EQ_STR(e.msg[1], at(":1: value of 'mail_owner' refers to unknown parameter "
			      "'other_one'"));
	T_EQ_STR(e.msg[2], at(":2: bad '${' in value of 'queue_owner' (expected ${name})"));
	T_EQ_STR(e.msg[3], at(":3: bad '${' in value of 'auth_owner' (expected ${name})"));
	T_EQ_STR(e.msg[4], at(":4: '$' without a parameter name in value of 'vmail_owner' "
			      "(write $$ for a literal '$')"));
	T_EQ_STR(e.msg[5], at(":5: '$' without a parameter name in value of 'setgid_group' "
			      "(write $$ for a literal '$')"));
	T_EQ_STR(e.msg[6], at(":6: bad '${' in value of 'log_file' (expected ${name})"));
}

static void test_bad_reference_is_reported_once(void)
{
	/* Nine *_process_limit defaults use $default_process_limit: still one message. */
	load_one_error("max_use = 5\ndefault_process_limit = lots\n",
		       at(":2: bad value for 'default_process_limit': 'lots' "
			  "(expected an integer)"));
}

static void test_recursion(void)
{
	load_one_error("mail_owner = x\nmyorigin = a$myorigin\n",
		       at(":2: recursive expansion of 'myorigin' (myorigin -> myorigin)"));
	load_one_error("config_directory = $spool_directory/etc\n"
		       "spool_directory = ${config_directory}/spool\n",
		       at(":1: recursive expansion of 'config_directory' "
			  "(config_directory -> spool_directory -> config_directory)"));
	/* A cycle through defaults is reported where the file closes it. */
	load_one_error("mail_owner = x\nconfig_directory = $tls_cert_file\n",
		       at(":2: recursive expansion of 'config_directory' "
			  "(config_directory -> tls_cert_file -> config_directory)"));
	/* mydomain's default comes from a configured myhostname. */
	load_one_error("myhostname = mail.$mydomain\n",
		       at(":1: recursive expansion of 'myhostname' "
			  "(myhostname -> mydomain -> myhostname)"));
}

/* Twenty-two STR/LIST parameters to build reference chains from. None of them may be named
 * by another parameter's default outside the chain (config_directory, virtual_mailbox_base
 * are), or that parameter would be nested too deep as well. */
static const char *const chain[] = {
	"myorigin", "pop3s_listen", "spool_directory", "daemon_directory",
	"test_listen", "log_file", "mail_owner", "queue_owner", "auth_owner",
	"setgid_group", "vmail_owner", "tls_cert_file", "tls_key_file", "mydestination",
	"mynetworks", "inet_interfaces", "smtp_listen", "submission_listen", "smtps_listen",
	"imap_listen", "imaps_listen", "pop3_listen",
};

/* chain[0] = $chain[1], ..., chain[levels] = end; written leaf first. */
static char *chain_text(size_t levels)
{
	struct buf b;
	char *text;
	size_t i;

	buf_init(&b, 1 << 16);
	buf_printf(&b, "%s = end\n", chain[levels]);
	for (i = levels; i-- > 0;)
		buf_printf(&b, "%s = $%s\n", chain[i], chain[i + 1]);
	text = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return text;
}

static void test_depth_limit(void)
{
	char *text = chain_text(20), want[200];
	struct config *c = load_ok(text);

	T_EQ_INT(ARRAY_LEN(chain), 22);
	T_EQ_STR(conf_str(c, "myorigin"), "end");
	conf_free(c);
	free(text);

	/* 21 levels: reported at the one value that has 21 levels below it (line 22). */
	text = chain_text(21);
	str_fmt(want, sizeof(want), ":22: recursive expansion of 'myorigin' (nested more than "
		"20 levels deep)");
	load_one_error(text, at("%s", want));
	free(text);
}

static void test_expansion_size_limit(void)
{
	struct buf b;
	char want[300];
	int i;

	/* 60000 bytes doubled five times passes the 1 MiB limit at mail_owner (line 6). */
	buf_init(&b, 1 << 20);
	buf_append_str(&b, "config_directory = ");
	for (i = 0; i < 60000; i++)
		buf_append_char(&b, 'x');
	buf_append_str(&b, "\nspool_directory = $config_directory$config_directory\n"
		       "daemon_directory = $spool_directory$spool_directory\n"
		       "virtual_mailbox_base = $daemon_directory$daemon_directory\n"
		       "log_file = $virtual_mailbox_base$virtual_mailbox_base\n"
		       "mail_owner = $log_file$log_file\n"
		       "queue_owner = $mail_owner\n");
	str_fmt(want, sizeof(want), ":6: value of 'mail_owner' is longer than 1048576 bytes "
		"after expansion");
	load_one_error(buf_cstr(&b), at("%s", want));
	buf_free(&b);
}

/* ---- mydomain ---------------------------------------------------------------------------- */

static void test_mydomain_rule(void)
{
	struct config *c = load_ok("myhostname = mail.example.com\n");
	const char *const *items;
	size_t n;

	T_EQ_STR(conf_str(c, "mydomain"), "example.com");
	T_EQ_STR(conf_str(c, "myorigin"), "mail.example.com");
	items = conf_list(c, "mydestination", &n);
	T_EQ_INT(n, 3);
	if (n == 3)
		T_EQ_STR(items[1], "localhost.example.com");
	T_CHECK(!conf_is_set(c, "mydomain"));
	conf_free(c);

	c = load_ok("myhostname = localhost\n");
	T_EQ_STR(conf_str(c, "mydomain"), "localdomain");
	conf_free(c);
	c = load_ok("myhostname = host.\n");
	T_EQ_STR(conf_str(c, "mydomain"), "localdomain");
	conf_free(c);
	c = load_ok("mail_owner = mx\nmyhostname = $mail_owner.a.b\n");
	T_EQ_STR(conf_str(c, "mydomain"), "a.b");
	conf_free(c);
	c = load_ok("myhostname = mail.example.com\nmydomain = other.net\n");
	T_EQ_STR(conf_str(c, "mydomain"), "other.net");
	conf_free(c);
}

/* ---- typed values ------------------------------------------------------------------------ */

static void test_int(void)
{
	struct config *c = load_ok("default_process_limit = 100000\nmax_use = 00012\n");

	T_EQ_INT(conf_int(c, "default_process_limit"), 100000);
	T_EQ_INT(conf_int(c, "max_use"), 12);
	conf_free(c);
	c = load_ok("default_process_limit = 1\n");
	T_EQ_INT(conf_int(c, "default_process_limit"), 1);
	conf_free(c);

	load_one_error("default_process_limit = 100001\n",
		       at(":1: value of 'default_process_limit' is out of range [1..100000]: "
			  "'100001'"));
	load_one_error("default_process_limit = -5\n",
		       at(":1: value of 'default_process_limit' is out of range [1..100000]: "
			  "'-5'"));
	load_one_error("default_process_limit = 99999999999999999999999\n",
		       at(":1: value of 'default_process_limit' is out of range [1..100000]: "
			  "'99999999999999999999999'"));
	load_one_error("default_process_limit = -9223372036854775809\n",
		       at(":1: value of 'default_process_limit' is out of range [1..100000]: "
			  "'-9223372036854775809'"));
	/* 2^64 - 5: negated in 64 bits it would be 5. */
	load_one_error("default_process_limit = -18446744073709551611\n",
		       at(":1: value of 'default_process_limit' is out of range [1..100000]: "
			  "'-18446744073709551611'"));
	load_one_error("default_process_limit = 5x\n",
		       at(":1: bad value for 'default_process_limit': '5x' "
			  "(expected an integer)"));
	load_one_error("max_use = +5\n",
		       at(":1: bad value for 'max_use': '+5' (expected an integer)"));
	load_one_error("max_use = 5 6\n",
		       at(":1: bad value for 'max_use': '5 6' (expected an integer)"));
	load_one_error("max_use =\n", at(":1: bad value for 'max_use': '' (expected an integer)"));
	load_one_error("max_use = 0x10\n",
		       at(":1: bad value for 'max_use': '0x10' (expected an integer)"));
	load_one_error("max_use = -\n",
		       at(":1: bad value for 'max_use': '-' (expected an integer)"));
}

static void test_bool(void)
{
	static const char *const yes[] = { "yes", "YES", "True", "on", "1", "oN" };
	static const char *const no[] = { "no", "No", "FALSE", "off", "0", "OFF" };
	char text[100];
	struct config *c;
	size_t i;

	for (i = 0; i < ARRAY_LEN(yes); i++) {
		str_fmt(text, sizeof(text), "daemon_chroot = %s\ntest_services = %s\n", no[i],
			yes[i]);
		c = load_ok(text);
		T_CHECK(!conf_bool(c, "daemon_chroot"));
		T_CHECK(conf_bool(c, "test_services"));
		conf_free(c);
	}
	load_one_error("daemon_chroot = maybe\n",
		       at(":1: bad value for 'daemon_chroot': 'maybe' (expected yes or no)"));
	load_one_error("daemon_chroot = 2\n",
		       at(":1: bad value for 'daemon_chroot': '2' (expected yes or no)"));
	load_one_error("daemon_chroot = yess\n",
		       at(":1: bad value for 'daemon_chroot': 'yess' (expected yes or no)"));
}

static void test_time(void)
{
	static const struct {
		const char *text;
		long long ms;
	} good[] = {
		{ "30", 30000 }, { "30s", 30000 }, { "1000ms", 1000 }, { "1500MS", 1500 },
		{ "5m", 300000 }, { "2h", 7200000 }, { "1d", 86400000 }, { "1D", 86400000 },
		{ "1s", 1000 }, { "86400s", 86400000 }, { "1440m", 86400000 },
	};
	char text[100];
	struct config *c;
	size_t i;

	for (i = 0; i < ARRAY_LEN(good); i++) {
		str_fmt(text, sizeof(text), "max_idle = %s\n", good[i].text);
		c = load_ok(text);
		T_EQ_INT(conf_time_ms(c, "max_idle"), good[i].ms);
		conf_free(c);
	}
	c = load_ok("service_throttle_time = 100ms\nmaster_stop_timeout = 1m\n");
	T_EQ_INT(conf_time_ms(c, "service_throttle_time"), 100);
	T_EQ_INT(conf_time_ms(c, "master_stop_timeout"), 60000);
	conf_free(c);

	load_one_error("max_idle = abc\n", at(":1: bad value for 'max_idle': 'abc' "
					      "(expected a time like 30s, 5m)"));
	load_one_error("max_idle = 5x\n", at(":1: bad value for 'max_idle': '5x' "
					     "(expected a time like 30s, 5m)"));
	load_one_error("max_idle = s\n", at(":1: bad value for 'max_idle': 's' "
					    "(expected a time like 30s, 5m)"));
	load_one_error("max_idle = 5 s\n", at(":1: bad value for 'max_idle': '5 s' "
					      "(expected a time like 30s, 5m)"));
	load_one_error("max_idle = -5s\n", at(":1: bad value for 'max_idle': '-5s' "
					      "(expected a time like 30s, 5m)"));
	load_one_error("max_idle = 5sec\n", at(":1: bad value for 'max_idle': '5sec' "
					       "(expected a time like 30s, 5m)"));
	load_one_error("max_idle = 2d\n",
		       at(":1: value of 'max_idle' is out of range [1s..1d]: '2d'"));
	load_one_error("max_idle = 1w\n",
		       at(":1: value of 'max_idle' is out of range [1s..1d]: '1w'"));
	load_one_error("max_idle = 999ms\n",
		       at(":1: value of 'max_idle' is out of range [1s..1d]: '999ms'"));
	load_one_error("max_idle = 0\n",
		       at(":1: value of 'max_idle' is out of range [1s..1d]: '0'"));
	load_one_error("master_stop_timeout = 61s\n",
		       at(":1: value of 'master_stop_timeout' is out of range [100ms..1m]: '61s'"));
	/* Overflow in the number itself and in the unit multiplication. */
	load_one_error("max_idle = 99999999999999999999\n",
		       at(":1: value of 'max_idle' is out of range [1s..1d]: "
			  "'99999999999999999999'"));
	load_one_error("max_idle = 9223372036854775w\n",
		       at(":1: value of 'max_idle' is out of range [1s..1d]: "
			  "'9223372036854775w'"));
}

/* No parameter in the table is a SIZE yet, so size parsing is tested directly. */
static void test_size(void)
{
	static const struct conf_param p = { "test_size", CONF_SIZE, "0", 1, 1LL << 40, "" };
	static const struct {
		const char *text;
		long long bytes;	/* -1: rejected */
	} cases[] = {
		{ "1", 1 }, { "100", 100 }, { "512k", 524288 }, { "512K", 524288 },
		{ "10m", 10485760 }, { "1g", 1073741824 }, { "1024G", 1LL << 40 },
		{ "1025g", -1 }, { "0", -1 }, { "5x", -1 }, { "k", -1 }, { "1kb", -1 },
		{ "99999999999999999999k", -1 }, { "9999999999999g", -1 }, { "", -1 },
		{ "17179869185g", -1 },		/* (2^34 + 1) * 2^30 would wrap to 2^30 */
	};
	struct conf_val v;
	struct errs e;
	char text[64];
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		memset(&v, 0, sizeof(v));
		memset(&e, 0, sizeof(e));
		str_copy(text, sizeof(text), cases[i].text);
		v.str = text;
		rc = conf_value_parse(&p, &v, "f:1", collect, &e);
		T_EQ_INT(rc, cases[i].bytes < 0 ? -1 : 0);
		T_EQ_INT(e.n, cases[i].bytes < 0 ? 1 : 0);
		if (rc == 0)
			T_EQ_INT(v.num, cases[i].bytes);
	}
	memset(&e, 0, sizeof(e));
	str_copy(text, sizeof(text), "5x");
	conf_value_parse(&p, &v, "f:1", collect, &e);
	T_EQ_STR(e.msg[0], "f:1: bad value for 'test_size': '5x' (expected a size like 512k, 10m)");
	memset(&e, 0, sizeof(e));
	str_copy(text, sizeof(text), "2048g");
	conf_value_parse(&p, &v, "f:1", collect, &e);
	T_EQ_STR(e.msg[0], "f:1: value of 'test_size' is out of range [1..1024g]: '2048g'");
}

static void test_list(void)
{
	struct config *c = load_ok("mynetworks = a,b  c,,, d\t,e ,\n"
				   "inet_interfaces = ,  , \n"
				   "smtp_listen = 127.0.0.1:25\n");
	const char *const *items;
	size_t n;

	items = conf_list(c, "mynetworks", &n);
	T_EQ_INT(n, 5);
	if (n == 5) {
		T_EQ_STR(items[0], "a");
		T_EQ_STR(items[1], "b");
		T_EQ_STR(items[2], "c");
		T_EQ_STR(items[3], "d");
		T_EQ_STR(items[4], "e");
		T_CHECK(items[5] == NULL);
	}
	items = conf_list(c, "inet_interfaces", &n);
	T_EQ_INT(n, 0);
	T_CHECK(items != NULL && items[0] == NULL);
	items = conf_list(c, "smtp_listen", &n);
	T_EQ_INT(n, 1);
	T_EQ_STR(items[0], "127.0.0.1:25");
	conf_free(c);
}

/* ---- conf_set ---------------------------------------------------------------------------- */

static void test_set(void)
{
	struct config *c = load_ok("default_process_limit = 10\nmail_owner = file\n");
	const char *old = conf_str(c, "mail_owner");
	struct errs e = { 0 };

	T_EQ_INT(conf_int(c, "smtp_process_limit"), 10);
	T_EQ_INT(conf_set(c, "default_process_limit", " 20 ", collect, &e), 0);
	T_EQ_INT(conf_int(c, "default_process_limit"), 20);
	T_EQ_INT(conf_int(c, "smtp_process_limit"), 20);	/* re-expanded */
	T_EQ_INT(conf_set(c, "mail_owner", "$queue_owner-x", collect, &e), 0);
	T_EQ_STR(conf_str(c, "mail_owner"), "postern-queue-x");
	T_EQ_STR(old, "file");		/* earlier strings stay valid until conf_free */
	T_CHECK(!conf_is_set(c, "max_idle"));
	T_EQ_INT(conf_set(c, "max_idle", "1m", collect, &e), 0);
	T_CHECK(conf_is_set(c, "max_idle"));
	T_EQ_INT(conf_time_ms(c, "max_idle"), 60000);
	T_EQ_INT(e.n, 0);
	conf_free(c);

	/* On conf_defaults too, and through the mydomain rule. */
	c = conf_defaults();
	T_EQ_INT(conf_set(c, "myhostname", "mx.example.net", collect, &e), 0);
	T_EQ_STR(conf_str(c, "mydomain"), "example.net");
	T_EQ_STR(conf_str(c, "myorigin"), "mx.example.net");
	T_EQ_INT(e.n, 0);
	conf_free(c);
}

static void test_set_errors(void)
{
	struct config *c = load_ok("max_use = 5000\nsmtp_process_limit = $max_use\n");
	struct errs e = { 0 };

	T_EQ_INT(conf_set(c, "no_such_thing", "1", collect, &e), -1);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], "command line: unknown parameter 'no_such_thing'");

	memset(&e, 0, sizeof(e));
	T_EQ_INT(conf_set(c, "max_idle", "abc", collect, &e), -1);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], "command line: bad value for 'max_idle': 'abc' "
		 "(expected a time like 30s, 5m)");
	T_CHECK(!conf_is_set(c, "max_idle"));
	T_EQ_INT(conf_time_ms(c, "max_idle"), 100000);

	memset(&e, 0, sizeof(e));
	T_EQ_INT(conf_set(c, "mail_owner", "a\nb", collect, &e), -1);
	T_EQ_STR(e.msg[0], "command line: bad value for 'mail_owner': it contains a line break");

	/* A value that breaks another parameter: reported at that parameter's line. */
	memset(&e, 0, sizeof(e));
	T_EQ_INT(conf_set(c, "max_use", "200000", collect, &e), -1);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], at(":2: value of 'smtp_process_limit' is out of range "
			      "[1..100000]: '200000'"));
	T_EQ_INT(conf_int(c, "max_use"), 5000);		/* unchanged */
	T_EQ_INT(conf_int(c, "smtp_process_limit"), 5000);

	/* A cycle through the override. */
	memset(&e, 0, sizeof(e));
	T_EQ_INT(conf_set(c, "max_use", "$smtp_process_limit", collect, &e), -1);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], at(":2: recursive expansion of 'smtp_process_limit' "
			      "(smtp_process_limit -> max_use -> smtp_process_limit)"));
	T_EQ_INT(conf_int(c, "max_use"), 5000);
	T_CHECK(conf_is_set(c, "max_use"));
	conf_free(c);
}

/* ---- a second parameter table (conf_load_table) ----------------------------------------- */

static struct config *panic_conf;	/* the configuration the panicking getters below use */

static const struct conf_param other_params[] = {
	{ "dbname", CONF_STR, "mail", 0, 0, "a string with a default" },
	{ "label", CONF_STR, "$dbname-db", 0, 0, "refers to another entry of this table" },
	{ "secret", CONF_STR, NULL, 0, 0, "NULL default: empty in a non-global table" },
	{ "myhostname", CONF_STR, NULL, 0, 0, "same name as a global one, no computed default" },
	{ "port", CONF_INT, "3306", 1, 65535, "an integer with a range" },
	{ "wait", CONF_TIME, "2s", 1000, 60000, "a time" },
	{ "hosts", CONF_LIST, "", 0, 0, "a list" },
	{ NULL, CONF_STR, NULL, 0, 0, NULL },
};

static struct config *load_other(const char *text, struct errs *e)
{
	memset(e, 0, sizeof(*e));
	write_conf(text, strlen(text));
	return conf_load_table(path, other_params, collect, e);
}

static void test_table_defaults(void)
{
	struct errs e;
	struct config *c = load_other("# nothing set\n", &e);
	size_t n = 99;

	T_CHECK(c != NULL);
	T_EQ_INT(e.n, 0);
	if (c == NULL)
		return;
	T_EQ_STR(conf_path(c), path);
	T_EQ_STR(conf_str(c, "dbname"), "mail");
	T_EQ_STR(conf_str(c, "label"), "mail-db");
	T_EQ_STR(conf_str(c, "secret"), "");
	T_EQ_STR(conf_str(c, "myhostname"), "");	/* no host-derived default here */
	T_EQ_INT(conf_int(c, "port"), 3306);
	T_EQ_INT(conf_time_ms(c, "wait"), 2000);
	T_CHECK(conf_list(c, "hosts", &n) != NULL && n == 0);
	T_CHECK(!conf_is_set(c, "dbname"));
	conf_free(c);
}

static void test_table_values(void)
{
	struct errs e;
	struct config *c = load_other("dbname = box\nsecret = a$$b\nhosts = unix:/x,\n"
				      "  db1:3307 [::1]:3308\nport = 1\n", &e);
	const char *const *items;
	size_t n = 0;

	T_CHECK(c != NULL);
	T_EQ_INT(e.n, 0);
	if (c == NULL)
		return;
	T_EQ_STR(conf_str(c, "label"), "box-db");
	T_EQ_STR(conf_str(c, "secret"), "a$b");
	T_EQ_INT(conf_int(c, "port"), 1);
	T_CHECK(conf_is_set(c, "dbname"));
	T_CHECK(!conf_is_set(c, "label"));
	items = conf_list(c, "hosts", &n);
	T_EQ_INT(n, 3);
	if (n == 3) {
		T_EQ_STR(items[0], "unix:/x");
		T_EQ_STR(items[1], "db1:3307");
		T_EQ_STR(items[2], "[::1]:3308");
	}
	/* conf_set works on the table's names, and re-expands within the table. */
	T_EQ_INT(conf_set(c, "dbname", "other", collect, &e), 0);
	T_EQ_STR(conf_str(c, "label"), "other-db");
	T_EQ_INT(conf_set(c, "max_use", "1", collect, &e), -1);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], "command line: unknown parameter 'max_use'");
	conf_free(c);
}

static void test_table_errors(void)
{
	struct errs e;
	struct config *c;

	/* A name of the global table is unknown in another one, and vice versa. */
	c = load_other("max_use = 5\nport = 70000\nlabel = $mail_owner\n", &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 3);
	T_EQ_STR(e.msg[0], at(":1: unknown parameter 'max_use'"));
	T_EQ_STR(e.msg[1], at(":2: value of 'port' is out of range [1..65535]: '70000'"));
	T_EQ_STR(e.msg[2], at(":3: value of 'label' refers to unknown parameter 'mail_owner'"));
	conf_free(c);

	memset(&e, 0, sizeof(e));
	write_conf("dbname = x\n", 11);
	c = conf_load(path, collect, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], at(":1: unknown parameter 'dbname'"));
	conf_free(c);
}

static void get_global_name(void) { (void)conf_int(panic_conf, "max_use"); }
static void get_wrong_type(void) { (void)conf_int(panic_conf, "dbname"); }
static void get_right(void) { (void)conf_int(panic_conf, "port"); }

static void test_table_getters_and_fd(void)
{
	struct errs e = { 0 };
	struct config *c;
	int fd;

	write_conf("port = 42\n", 10);
	fd = open(path, O_RDONLY);
	T_CHECK(fd >= 0);
	c = conf_load_fd(fd, "named.conf", other_params, collect, &e);
	T_CHECK(c != NULL);
	T_EQ_INT(e.n, 0);
	if (c) {
		T_EQ_STR(conf_path(c), "named.conf");
		T_EQ_INT(conf_int(c, "port"), 42);
		panic_conf = c;
		T_CHECK(panics(get_global_name));
		T_CHECK(panics(get_wrong_type));
		T_CHECK(!panics(get_right));
		conf_free(c);
	}
	/* Errors name the path given, not the descriptor. */
	write_conf("port = x\n", 9);
	T_EQ_INT(lseek(fd, 0, SEEK_SET), 0);
	c = conf_load_fd(fd, "named.conf", other_params, collect, &e);
	T_CHECK(c == NULL);
	T_EQ_INT(e.n, 1);
	T_EQ_STR(e.msg[0], "named.conf:1: bad value for 'port': 'x' (expected an integer)");
	close(fd);
	conf_free(c);
}

/* ---- getters that are programming errors ------------------------------------------------- */

static void get_unknown(void) { (void)conf_str(panic_conf, "no_such_param"); }
static void get_null(void) { (void)conf_str(panic_conf, NULL); }
static void int_of_str(void) { (void)conf_int(panic_conf, "mail_owner"); }
static void str_of_list(void) { (void)conf_str(panic_conf, "mydestination"); }
static void size_of_int(void) { (void)conf_size(panic_conf, "max_use"); }
static void bool_of_time(void) { (void)conf_bool(panic_conf, "max_idle"); }
static void time_of_int(void) { (void)conf_time_ms(panic_conf, "max_use"); }
static void list_of_str(void) { (void)conf_list(panic_conf, "mail_owner", NULL); }
static void is_set_unknown(void) { (void)conf_is_set(panic_conf, "nope"); }
static void right_type(void) { (void)conf_int(panic_conf, "max_use"); }

static void test_getter_panics(void)
{
	panic_conf = conf_defaults();
	T_CHECK(panics(get_unknown));
	T_CHECK(panics(get_null));
	T_CHECK(panics(int_of_str));
	T_CHECK(panics(str_of_list));
	T_CHECK(panics(size_of_int));
	T_CHECK(panics(bool_of_time));
	T_CHECK(panics(time_of_int));
	T_CHECK(panics(list_of_str));
	T_CHECK(panics(is_set_unknown));
	T_CHECK(!panics(right_type));	/* the harness itself can tell the difference */
	conf_free(panic_conf);
}

int main(void)
{
	str_copy(dir, sizeof(dir), "/tmp/test_config.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	str_fmt(path, sizeof(path), "%s/postern.conf", dir);

	T_RUN(test_defaults);
	T_RUN(test_param_find);
	T_RUN(test_basic_syntax);
	T_RUN(test_later_assignment_wins);
	T_RUN(test_continuation);
	T_RUN(test_continuation_errors);
	T_RUN(test_syntax_errors);
	T_RUN(test_messages_are_clean_lines);
	T_RUN(test_unreadable);
	T_RUN(test_file_size_limit);
	T_RUN(test_line_length_limit);
	T_RUN(test_nul_byte);
	T_RUN(test_error_callback_null);
	T_RUN(test_expansion);
	T_RUN(test_expansion_errors);
	T_RUN(test_bad_reference_is_reported_once);
	T_RUN(test_recursion);
	T_RUN(test_depth_limit);
	T_RUN(test_expansion_size_limit);
	T_RUN(test_mydomain_rule);
	T_RUN(test_int);
	T_RUN(test_bool);
	T_RUN(test_time);
	T_RUN(test_size);
	T_RUN(test_list);
	T_RUN(test_set);
	T_RUN(test_set_errors);
	T_RUN(test_table_defaults);
	T_RUN(test_table_values);
	T_RUN(test_table_errors);
	T_RUN(test_table_getters_and_fd);
	T_RUN(test_getter_panics);

	{
		char f[200];

		str_fmt(f, sizeof(f), "%s/stderr.txt", dir);
		unlink(f);
		unlink(path);
		rmdir(dir);
	}
	return T_DONE();
}
