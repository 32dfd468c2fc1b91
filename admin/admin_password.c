/*
 * admin_password.c: passwords for `postern admin`: read from the terminal with echo off
 * (never from a command-line argument, which other users can see in ps) or from stdin for
 * scripts, checked, and hashed with the chosen scheme. Clear text is wiped after use, and
 * the terminal's echo is restored even when a signal ends the program during the prompt.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "admin.h"
#include "util.h"

/* The longest password crypt_r hashes (passwd.h). */
#define HASHABLE_MAX (CRYPT_MAX_PASSPHRASE_SIZE - 1)

int admin_pick_scheme(const struct admin_ctx *ctx, const char *opt, enum passwd_scheme *out)
{
	char safe[64];
	const char *def;

	if (opt) {
		if (passwd_scheme_parse(opt, out) == 0)
			return ADMIN_OK;
		fprintf(stderr, "postern admin: unknown password scheme '%s' (use yescrypt or "
			"sha512-crypt)\n", admin_printable(opt, safe, sizeof(safe)));
		return ADMIN_USAGE;
	}
	def = conf_str(ctx->sql, "default_pass_scheme");
	if (passwd_scheme_parse(def, out) == 0)
		return ADMIN_OK;
	admin_warn("default_pass_scheme %s cannot be used for new passwords; using SHA512-CRYPT",
		   admin_printable(def, safe, sizeof(safe)));
	*out = PASSWD_SHA512_CRYPT;
	return ADMIN_OK;
}

/* Read one line (up to '\n' or EOF) into out; *len gets its length without the newline.
 * Bytes beyond outlen - 1 are read and dropped, *len still counts them. 0 if a line (even
 * an empty one) was read, 1 at EOF before any byte, -1 on a read error. */
static int read_line(int fd, char *out, size_t outlen, size_t *len)
{
	char c;
	ssize_t n;

	*len = 0;
	for (;;) {
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (c == '\n') {
			out[*len < outlen ? *len : outlen - 1] = '\0';
			return 0;
		}
		if (*len + 1 < outlen)
			out[*len] = c;
		++*len;
	}
	out[*len < outlen ? *len : outlen - 1] = '\0';
	return *len == 0 ? 1 : 0;
}

/* ---- the terminal ------------------------------------------------------------------------ */

static int tty_fd = -1;
static struct termios tty_saved;

static void restore_tty(void)
{
	if (tty_fd >= 0)
		(void)tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
}

static void on_signal(int sig)
{
	restore_tty();
	(void)signal(sig, SIG_DFL);
	(void)raise(sig);
}

static const int tty_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Ask on the open terminal with echo off. */
static int ask_tty(const char *prompt, char *out, size_t outlen, size_t *len)
{
	struct termios quiet;
	struct sigaction sa, old[ARRAY_LEN(tty_signals)];
	int r;

	if (tcgetattr(tty_fd, &tty_saved) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	for (size_t i = 0; i < ARRAY_LEN(tty_signals); i++)
		(void)sigaction(tty_signals[i], &sa, &old[i]);
	quiet = tty_saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	quiet.c_lflag |= ECHONL;	/* the user sees that Enter was taken */
	/* Echo off before the prompt: TCSAFLUSH drops what was typed before it. */
	r = tcsetattr(tty_fd, TCSAFLUSH, &quiet);
	if (r == 0)
		r = write_all(tty_fd, prompt, strlen(prompt));
	if (r == 0)
		r = read_line(tty_fd, out, outlen, len);
	restore_tty();
	for (size_t i = 0; i < ARRAY_LEN(tty_signals); i++)
		(void)sigaction(tty_signals[i], &old[i], NULL);
	return r;
}

/* ---- checks ------------------------------------------------------------------------------ */

static int check_password(const char *pw, size_t len, size_t maxlen)
{
	if (len == 0)
		return admin_fail("the password is empty");
	if (len > maxlen)
		return admin_fail("the password is too long (%zu bytes; at most %zu)", len, maxlen);
	if (!passwd_valid_password(pw, len))
		return admin_fail("the password contains a NUL byte");
	return ADMIN_OK;
}

static int read_stdin(size_t maxlen, char *out, size_t outlen)
{
	size_t len;
	int r = read_line(STDIN_FILENO, out, outlen, &len);

	if (r < 0)
		return admin_fail("cannot read the password from standard input: %s",
				  strerror(errno));
	if (r > 0)
		return admin_fail("no password on standard input");
	return check_password(out, len, maxlen);
}

static int read_tty(const char *prompt, const char *confirm_prompt, size_t maxlen, char *out,
		    size_t outlen)
{
	char again[PASSWD_MAX_LEN + 2];
	size_t len, len2;
	int rc = ADMIN_OK;

	tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty_fd < 0)
		return admin_fail("cannot open /dev/tty to ask for the password (%s); use "
				  "--password-stdin", strerror(errno));
	if (ask_tty(prompt, out, outlen, &len) != 0)
		rc = admin_fail("no password read from the terminal");
	if (rc == ADMIN_OK)
		rc = check_password(out, len, maxlen);
	if (rc == ADMIN_OK && confirm_prompt) {
		if (ask_tty(confirm_prompt, again, sizeof(again), &len2) != 0)
			rc = admin_fail("no password read from the terminal");
		else if (len2 != len || strcmp(again, out) != 0)
			rc = admin_fail("the passwords do not match");
	}
	explicit_bzero(again, sizeof(again));
	(void)close(tty_fd);
	tty_fd = -1;
	return rc;
}

int admin_read_password(bool from_stdin, const char *prompt, const char *confirm_prompt,
			size_t maxlen, char *out, size_t outlen)
{
	int rc;

	if (outlen < maxlen + 2 || maxlen > PASSWD_MAX_LEN)
		return admin_fail("internal error: password buffer too small");
	if (from_stdin)
		rc = read_stdin(maxlen, out, outlen);
	else
		rc = read_tty(prompt, confirm_prompt, maxlen, out, outlen);
	if (rc != ADMIN_OK)
		explicit_bzero(out, outlen);
	return rc;
}

int admin_new_hash(bool from_stdin, const char *user, enum passwd_scheme scheme, char *hash,
		   size_t hashlen)
{
	char pw[PASSWD_MAX_LEN + 2], prompt[ADDR_MAX + 32];
	int rc;

	if (str_fmt(prompt, sizeof(prompt), "New password for %s: ", user) < 0)
		str_copy(prompt, sizeof(prompt), "New password: ");
	rc = admin_read_password(from_stdin, prompt, "Retype the new password: ", HASHABLE_MAX,
				 pw, sizeof(pw));
	if (rc == ADMIN_OK && passwd_hash(pw, scheme, hash, hashlen) < 0)
		rc = admin_fail("cannot hash the password");
	explicit_bzero(pw, sizeof(pw));
	return rc;
}
