/*
 * postern-sendmail: sendmail(1), mailq(1) and newaliases(1) for Postern (issue 8), installed
 * as /usr/sbin/sendmail.postern, mode 2755 root:setgid_group, with sendmail, mailq and
 * newaliases as links to it. The name it is run under picks the default mode; the options
 * are Postfix's (options.c, docs/man/postern-sendmail.1).
 *
 * Order of events, so the extra group does as little as possible:
 *   privs_init      fds 0-2 open, environment cleared, extra group suspended (privs.c)
 *   options_parse   the command line (options.c)
 *   config_load     postern.conf; a non-default one only if root owns it (privs.c)
 *   then one of     deliver (here): read stdin, headers (message.c), write the queue file
 *                   into maildrop/ with the group resumed for just that (maildrop.c)
 *                   smtp_session (-bs, smtp.c), the same per DATA
 *                   newaliases (-bi) or exec `postern mailq|flush` with the group dropped
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sendmail.h"
#include "address.h"
#include "log.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
/* Sanitizer builds only. LeakSanitizer stops the world with ptrace, which the kernel refuses
 * in a set-group-ID (non-dumpable) process, and the runtime cannot read ASAN_OPTIONS there
 * either (/proc/self/environ then belongs to root): leak checking is off by default here.
 * Memory errors are still caught, and reported on stderr. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

static void vsay(const struct sendmail *sm, const char *level, const char *fmt, va_list ap)
{
	char text[2048];

	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		str_copy(text, sizeof(text), "(unformattable message)");
	for (char *p = text; *p; p++)	/* no terminal escapes from addresses or files */
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(stderr, "%s: %s%s\n", sm ? sm->prog : "sendmail", level, text);
}

void sm_die(const struct sendmail *sm, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(sm, "", fmt, ap);
	va_end(ap);
	exit(status);
}

void sm_warn(const struct sendmail *sm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(sm, "warning: ", fmt, ap);
	va_end(ap);
}

/* The invoking user: the real uid, never $USER or $LOGNAME (the caller controls those). */
static void who_am_i(struct sendmail *sm)
{
	struct passwd *pw;

	sm->uid = getuid();
	sm->gecos_name = xstrdup("");
	if ((pw = getpwuid(sm->uid)) == NULL)
		return;
	sm->login = xstrdup(pw->pw_name);
	if (pw->pw_gecos) {
		free(sm->gecos_name);
		/* The full name is the gecos field up to its first comma. */
		sm->gecos_name = xstrndup(pw->pw_gecos, strcspn(pw->pw_gecos, ","));
	}
}

const char *default_sender(struct sendmail *sm)
{
	char addr[ADDR_MAX + 1];

	if (sm->sender)
		return sm->sender;
	if (sm->login == NULL)
		sm_die(sm, EX_NOUSER, "cannot find a login name for uid %u: use -f ADDRESS",
		       (unsigned)sm->uid);
	if (addr_canon(sm, sm->login, addr, sizeof(addr)) < 0)
		sm_die(sm, EX_DATAERR, "login name '%s' is not a valid address: use -f ADDRESS",
		       sm->login);
	sm->sender = xstrdup(addr);
	return sm->sender;
}

/* -v: what was queued, on stderr. */
static void say_queued(const struct sendmail *sm, const char *name, const char *sender,
		       const struct sm_rcpts *r, uint64_t size)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	(void)buf_printf(&b, "queued as maildrop/%s: from=<%s>, size=%llu, nrcpt=%zu, to=", name,
			 sender, (unsigned long long)size, r->n);
	for (size_t i = 0; i < r->n; i++)
		(void)buf_printf(&b, "%s<%s>", i ? "," : "", r->addr[i]);
	fprintf(stderr, "%s: %s\n", sm->prog, buf_cstr(&b));
	buf_free(&b);
}

/* -bm: one message from stdin into maildrop/. */
static int deliver(struct sendmail *sm)
{
	struct sm_rcpts rcpts = { 0 };
	struct sm_message m;
	struct sm_envelope env = { 0 };
	char bad[QF_MAX_ADDR + 64], name[QF_QID_SIZE], err[512];
	const char *sender = default_sender(sm);

	for (int i = 0; i < sm->nargs; i++)
		if (rcpts_add_list(sm, &rcpts, sm->args[i], strlen(sm->args[i]), bad,
				   sizeof(bad)) < 0)
			sm_die(sm, EX_DATAERR, "bad recipient address: %s", bad);
	if (rcpts.n == 0 && !sm->extract)
		sm_die(sm, EX_DATAERR, "no recipients specified (give addresses or use -t)");
	message_init(&m, sm->size_limit);
	if (message_read(sm, &m) < 0) {
		if (errno == EMSGSIZE)
			sm_die(sm, EX_DATAERR, "message too large: the limit is %llu bytes "
			       "(message_size_limit)", (unsigned long long)sm->size_limit);
		sm_die(sm, EX_IOERR, "cannot read the message: %s", strerror(errno));
	}
	if (message_prepare(sm, &m, sender, sm->extract, &rcpts, bad, sizeof(bad)) < 0)
		sm_die(sm, EX_DATAERR, "bad recipient address in the message headers: %s", bad);
	if (rcpts.n == 0)
		sm_die(sm, EX_DATAERR, "no recipients found in the message headers");
	if (m.size > sm->size_limit)
		sm_die(sm, EX_DATAERR, "message too large: the limit is %llu bytes "
		       "(message_size_limit)", (unsigned long long)sm->size_limit);
	env = (struct sm_envelope){ .sender = sender, .rcpts = &rcpts, .notify = sm->notify,
				    .ret = sm->ret, .envid = sm->envid,
				    .eightbit = m.eightbit || sm->body_8bit };
	if (maildrop_write(sm, &env, &m, name, sizeof(name), err, sizeof(err)) < 0)
		sm_die(sm, EX_TEMPFAIL, "cannot queue the message: %s", err);
	if (sm->verbose)
		say_queued(sm, name, sender, &rcpts, m.size);
	message_free(&m);
	rcpts_free(&rcpts);
	return EX_OK;
}

int main(int argc, char **argv)
{
	struct sendmail sm = { .prog = "sendmail", .dot_ends = true };
	int rc = EX_OK;

	privs_init();
	log_open("sendmail", LOG_TARGET_STDERR, NULL);
	options_parse(&sm, argc, argv);
	config_load(&sm);
	options_finish(&sm);
	who_am_i(&sm);
	switch (sm.mode) {
	case SM_MAILQ:
		privs_drop(&sm);
		exec_postern(&sm, "mailq");
	case SM_FLUSH:
		privs_drop(&sm);
		exec_postern(&sm, "flush");
	case SM_NEWALIASES:
		privs_drop(&sm);
		rc = newaliases(&sm);
		break;
	case SM_NOTHING:
		break;
	case SM_SMTP:
		rc = smtp_session(&sm);
		break;
	case SM_DELIVER:
		rc = deliver(&sm);
		break;
	}
	conf_free(sm.cfg);
	free(sm.login);
	free(sm.gecos_name);
	free(sm.sender);
	return rc;
}
