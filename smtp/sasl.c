/*
 * sasl.c: credentials for relayhosts and transport nexthops (smtp_sasl_password_file, in
 * the format of Postfix's sasl_passwd: "[host]:port user:password" or "host user:password",
 * '#' comments and blank lines allowed) and the client side of SMTP AUTH (RFC 4954) with
 * PLAIN (preferred, RFC 4616) or LOGIN.
 *
 * The file is read once per process as root, before the chroot, and refused as a whole
 * (with a warning) when it is not a regular file owned by root, when group or others may
 * read or write it, or when a line is malformed: deliveries that would look it up are then
 * deferred rather than sent without credentials. A name is matched against the relayhost
 * or nexthop string exactly as configured (host names case-insensitively).
 *
 * Credentials go to a server only inside TLS unless smtp_sasl_tls_only = no; a server that
 * gives us no TLS then gets a deferral (4.7.0), never the password. Neither the password
 * nor its encoding is ever logged, and buffers that held them are wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "log.h"
#include "smtp.h"
#include "util.h"

#define SASL_FILE_MAX		(1024 * 1024)
#define SASL_MAX_ENTRIES	1000
#define SASL_FIELD_MAX		255	/* user name, password */
#define SASL_RAW_MAX		(2 * SASL_FIELD_MAX + 2)		/* "\0user\0pass" */
#define SASL_B64_MAX		(4 * ((SASL_RAW_MAX + 2) / 3) + 1)

enum sasl_state { SASL_OFF, SASL_OK, SASL_BAD };

static enum sasl_state state = SASL_OFF;
static const char *file_path = "";
static struct sasl_cred creds[SASL_MAX_ENTRIES];
static size_t ncreds;

const char *sasl_path(void)
{
	return file_path;
}

/* ---- the password file ------------------------------------------------------------------ */

static void refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void refuse(const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	msg_warn("smtp_sasl_password_file %s: %s; not used: deliveries through a relayhost or "
		 "nexthop are deferred", file_path, why);
	state = SASL_BAD;
}

static void forget_all(void)
{
	for (size_t i = 0; i < ncreds; i++) {
		explicit_bzero(creds[i].pass, strlen(creds[i].pass));
		free(creds[i].name);
		free(creds[i].user);
		free(creds[i].pass);
	}
	memset(creds, 0, sizeof(creds));
	ncreds = 0;
}

/* One line, trailing white space already cut: NULL (kept or skipped), or why it is bad. */
static const char *parse_line(char *line, unsigned lineno)
{
	char *name = line + strspn(line, " \t"), *rest, *colon;

	if (*name == '\0' || *name == '#')
		return NULL;
	rest = name + strcspn(name, " \t");
	if (*rest == '\0')
		return "want \"[host]:port user:password\"";
	*rest++ = '\0';
	rest += strspn(rest, " \t");
	colon = strchr(rest, ':');
	if (colon == NULL || colon == rest || colon[1] == '\0')
		return "want \"[host]:port user:password\" (user name and password not empty)";
	*colon = '\0';
	if (strlen(name) > DELIVER_NEXTHOP_MAX || strlen(rest) > SASL_FIELD_MAX ||
	    strlen(colon + 1) > SASL_FIELD_MAX)
		return "host, user name or password too long";
	for (size_t i = 0; i < ncreds; i++) {
		if (strcasecmp(creds[i].name, name) == 0) {
			msg_warn("%s:%u: second entry for %s ignored", file_path, lineno, name);
			return NULL;
		}
	}
	if (ncreds == SASL_MAX_ENTRIES)
		return "too many entries";
	creds[ncreds++] = (struct sasl_cred){ xstrdup(name), xstrdup(rest), xstrdup(colon + 1) };
	return NULL;
}

static void parse(char *text)
{
	unsigned lineno = 0;

	for (char *line = text, *next; line != NULL && state != SASL_BAD; line = next) {
		const char *bad;
		size_t len;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		len = strlen(line);
		while (len > 0 && strchr(" \t\r", line[len - 1]) != NULL)
			line[--len] = '\0';
		bad = parse_line(line, lineno);
		if (bad != NULL)
			refuse("line %u: %s", lineno, bad);
	}
}

/* The file's owner and mode, checked on the descriptor actually read. 0, or -1 (refused). */
static int check_file(int fd, bool dev_mode, size_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		refuse("cannot stat: %m");
		return -1;
	}
	if (!S_ISREG(st.st_mode))
		refuse("not a regular file");
	else if (st.st_uid != 0 && !(dev_mode && st.st_uid == geteuid()))
		refuse("owned by uid %u, not root", (unsigned)st.st_uid);
	else if ((st.st_mode & 0066) != 0)
		refuse("group or others may read or write it (mode %04o; want 0600)",
		       (unsigned)(st.st_mode & 07777));
	else if (st.st_size > SASL_FILE_MAX)
		refuse("larger than %d bytes", SASL_FILE_MAX);
	else
		*size = (size_t)st.st_size;
	return state == SASL_BAD ? -1 : 0;
}

void sasl_load(const char *path, bool dev_mode)
{
	char *text;
	size_t size = 0, got = 0;
	int fd;

	forget_all();
	state = SASL_OFF;
	if (path[0] == '\0')
		return;
	file_path = path;
	state = SASL_OK;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		refuse("cannot open: %m");
		return;
	}
	if (check_file(fd, dev_mode, &size) < 0) {
		(void)close(fd);
		return;
	}
	text = xmalloc(size + 1);
	while (got < size) {
		ssize_t n = read(fd, text + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	(void)close(fd);
	text[got] = '\0';
	if (got < size || strlen(text) != got)
		refuse(got < size ? "cannot read it all" : "it contains a NUL byte");
	else
		parse(text);
	explicit_bzero(text, size + 1);
	free(text);
	if (state == SASL_BAD)
		forget_all();
}

enum sasl_found sasl_lookup(const char *name, const struct sasl_cred **out)
{
	*out = NULL;
	if (state == SASL_OFF || name[0] == '\0')
		return SASL_NONE;
	if (state == SASL_BAD)
		return SASL_UNUSABLE;
	for (size_t i = 0; i < ncreds; i++) {
		if (strcasecmp(creds[i].name, name) == 0) {
			*out = &creds[i];
			return SASL_FOUND;
		}
	}
	return SASL_NONE;
}

/* ---- AUTH ------------------------------------------------------------------------------- */

/* base64 of n bytes into out (SASL_B64_MAX). */
static void b64(char *out, const void *in, size_t n)
{
	(void)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* AUTH PLAIN with an initial response: "\0user\0password". The reply code, or -1. */
static int auth_plain(struct smtp_conn *c, const struct sasl_cred *cred)
{
	char raw[SASL_RAW_MAX], enc[SASL_B64_MAX];
	size_t ulen = strlen(cred->user), plen = strlen(cred->pass), n = 0;
	int code;

	raw[n++] = '\0';
	memcpy(raw + n, cred->user, ulen);
	n += ulen;
	raw[n++] = '\0';
	memcpy(raw + n, cred->pass, plen);
	n += plen;
	b64(enc, raw, n);
	code = conn_command(c, false, "AUTH PLAIN %s", enc);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(enc, sizeof(enc));
	return code;
}

/* AUTH LOGIN: the user name and the password, each after a 334. The last reply code. */
static int auth_login(struct smtp_conn *c, const struct sasl_cred *cred)
{
	char enc[SASL_B64_MAX];
	int code = conn_command(c, false, "AUTH LOGIN");

	if (code != 334)
		return code;
	b64(enc, cred->user, strlen(cred->user));
	code = conn_command(c, false, "%s", enc);
	if (code == 334) {
		b64(enc, cred->pass, strlen(cred->pass));
		code = conn_command(c, false, "%s", enc);
	}
	explicit_bzero(enc, sizeof(enc));
	return code;
}

/* Why credentials are not sent to a server we have no TLS with. */
static enum smtp_outcome no_tls(struct smtp_conn *c)
{
	const char *why = S.tls_level == SMTP_TLS_NONE ? "smtp_tls_security_level is none" :
			  !c->ext_starttls ? "the server does not offer STARTTLS" :
			  "TLS could not be started";

	return conn_next_host(c, 454, "4.7.0", "TLS is required for SASL authentication "
			      "(smtp_sasl_tls_only = yes), but %s: not authenticating to host %s",
			      why, c->hostaddr);
}

int sasl_authenticate(struct smtp_conn *c, const struct sasl_cred *cred,
		      enum smtp_outcome *out)
{
	char reply[SMTP_REPLY_MAX];
	int code;

	if (S.sasl_tls_only && !c->tls) {
		*out = no_tls(c);
		return -1;
	}
	if (c->auth_mechs[0] == '\0')
		return 0;	/* nothing offered: the server decides whether it needs it */
	if (!c->ext_auth_plain && !c->ext_auth_login) {
		*out = conn_next_host(c, 454, "4.7.0", "SASL authentication failed; cannot "
				      "authenticate to server %s: no mechanism available (server "
				      "offers %s; we speak PLAIN and LOGIN)", c->hostaddr,
				      c->auth_mechs);
		return -1;
	}
	code = c->ext_auth_plain ? auth_plain(c, cred) : auth_login(c, cred);
	if (code == 235)
		return 0;
	if (code < 0) {
		*out = conn_lost(c, "sending AUTH");
		return -1;
	}
	(void)str_copy(reply, sizeof(reply), c->reply);
	if (code == 334)	/* a challenge we did not expect: cancel the exchange */
		(void)conn_command(c, false, "*");
	*out = conn_next_host(c, 454, "4.7.0", "SASL authentication failed; server %s said: %s",
			      c->hostaddr, reply);
	return -1;
}
