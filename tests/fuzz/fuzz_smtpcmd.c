/*
 * fuzz_smtpcmd.c: libFuzzer target for the SMTP command parser (lib/smtpcmd.c). Any input
 * either is refused with a well-formed 5xx reply, or is accepted with results that keep the
 * parser's promises: bounded NUL-terminated strings, no NUL/control bytes in what was
 * accepted, paths split as local@domain with no '@' in either part, flags matching the local
 * part, and the same answer when parsed twice. Also checks that xtext encode/decode round
 * trips. Anything else aborts. Build and run: `make fuzz-smtpcmd`, `make fuzz-run`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct smtp_cmd first, second;	/* large: keep them off the stack */
static char xt[3 * 4096 + 1], back[4096 + 1];

static void check_string(const char *s, size_t size)
{
	if (memchr(s, '\0', size) == NULL)
		abort();
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

static void check_path(const struct smtp_cmd *c)
{
	const struct smtp_path *p = &c->path;
	size_t ll = strlen(p->local);

	check_string(p->local, sizeof(p->local));
	check_string(p->domain, sizeof(p->domain));
	check_string(p->addr, sizeof(p->addr));
	if (p->null_path) {
		if (c->verb != SMTP_MAIL || p->addr[0] != '\0')
			abort();
		return;
	}
	if (p->postmaster) {
		if (c->verb != SMTP_RCPT || strcmp(p->addr, "postmaster") != 0)
			abort();
		return;
	}
	if (ll == 0 || ll > SMTP_LOCAL_MAX || p->domain[0] == '\0' ||
	    strchr(p->local, '@') != NULL || strchr(p->domain, '@') != NULL ||
	    strncmp(p->addr, p->local, ll) != 0 || p->addr[ll] != '@' ||
	    strcmp(p->addr + ll + 1, p->domain) != 0 ||
	    p->has_percent != (strchr(p->local, '%') != NULL) ||
	    p->has_bang != (strchr(p->local, '!') != NULL) ||
	    p->quoted != (p->local[0] == '"'))
		abort();
	if (c->verb == SMTP_MAIL && p->utf8 && !c->mail.smtputf8)
		abort();
}

static void check_result(const uint8_t *data, size_t size, int rc, const struct smtp_cmd *c)
{
	if (rc != 0) {
		if ((rc != 500 && rc != 501 && rc != 553 && rc != 555) || c->reply.code != rc ||
		    c->reply.enh[0] != '5' || c->reply.text[0] == '\0')
			abort();
		check_string(c->reply.text, sizeof(c->reply.text));
		return;
	}
	if (c->verb == SMTP_NONE || memchr(data, '\0', size) != NULL || size > SMTP_LINE_MAX - 2)
		abort();
	check_string(c->arg, sizeof(c->arg));
	check_string(c->auth_resp, sizeof(c->auth_resp));
	check_string(c->mail.envid, sizeof(c->mail.envid));
	check_string(c->mail.auth, sizeof(c->mail.auth));
	check_string(c->rcpt.orcpt, sizeof(c->rcpt.orcpt));
	if (c->verb == SMTP_MAIL || c->verb == SMTP_RCPT)
		check_path(c);
}

static void check_xtext(const uint8_t *data, size_t size)
{
	ssize_t e, d;

	if (size > 4096 || memchr(data, '\0', size) != NULL)
		return;
	e = smtp_xtext_encode((const char *)data, size, xt, sizeof(xt));
	if (e < 0)
		abort();
	d = smtp_xtext_decode(xt, (size_t)e, back, sizeof(back));
	if (d != (ssize_t)size || memcmp(back, data, size) != 0)
		abort();
	d = smtp_xtext_decode((const char *)data, size, back, sizeof(back));
	if (d > (ssize_t)size)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc = smtp_parse_command((const char *)data, size, &first, NULL, 0);
	char why[8];		/* a tiny log buffer must be safe too */
	int rc2 = smtp_parse_command((const char *)data, size, &second, why, sizeof(why));

	check_result(data, size, rc, &first);
	if (rc2 != rc || first.verb != second.verb ||
	    memcmp(&first.reply, &second.reply, sizeof(first.reply)) != 0 ||
	    strcmp(first.path.addr, second.path.addr) != 0 || memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	check_xtext(data, size);
	return 0;
}
