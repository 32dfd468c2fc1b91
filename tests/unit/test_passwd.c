/*
 * test_passwd.c: unit tests for lib/passwd.c: hashes made by other tools (mkpasswd from
 * Debian's whois package and openssl passwd, both run at test time when installed, plus
 * fixed vectors made with them) verify with and without Dovecot {SCHEME} prefixes; wrong
 * passwords mismatch; prefixes that do not fit the hash, garbage and locked entries are
 * bad hashes; {PLAIN}; new hashes round trip with fresh salts; weak-scheme detection;
 * constant-time comparison; password validity and libxcrypt's passphrase limit.
 */
#include <crypt.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "passwd.h"
#include "t.h"
#include "util.h"

#define PW "correct horse battery staple"
/* Differs within the first 8 bytes, the most DES crypt looks at. */
#define WRONG_PW "Correct horse battery staple"
#define UTF8_PW "p\xc3\xa4ssw\xc3\xb6rd\xe2\x82\xac" /* "pässwörd€" */

/* A known hash and the Dovecot scheme naming its family. */
struct vector {
	const char *hash;
	const char *scheme;
};

/* Made once with mkpasswd (whois 5.5.17) and OpenSSL 3.0 from PW. */
static const struct vector known[] = {
	{ "$6$Rk13kyhGBDJ542wA$heVbn6EVfJWvfbaet0SwAwLkZAXrLcMRuq.tAuS.DdKLQtoaJpVl3R9bV7ADMQZmr"
	  "LLaY9fgOtXAQM3TtBOBW/", "SHA512-CRYPT" },
	/* mkpasswd -m sha-512 -R 10000 */
	{ "$6$rounds=10000$rvMJuOx7cRGxZtF9$W753TKyqK/jFivH8WJPIgkzyEhjCevpfqw1XXYUhJ7Njie0DGUry"
	  "cTraUDG6jk0wx6wwRXkvsDOw0G.DwK4AO.", "SHA512-CRYPT" },
	/* openssl passwd -6 -salt abcdefghijklmnop: what MariaDB's ENCRYPT() stores */
	{ "$6$abcdefghijklmnop$UY4jc6.rVibJ9tqDqiG0GMdZRHkv1j4sPRRH2eUSo3Kszltzbk30CmYcWPNRTD/Ks"
	  "YFHF7WTtNkAxF3dZ3zPE.", "SHA512-CRYPT" },
	{ "$5$fmJhNf3dP2T/fszN$JhTZVzSfhIIYrhelk.JBoeSKd9.lwyro8cZGxd4Fev7", "SHA256-CRYPT" },
	{ "$5$f2/zQvLaEjhFSJL0$yTgvvMvcFvKrrO3acppaWW54eP3evryB3E2TEkt5eO.", "SHA256-CRYPT" },
	{ "$y$j9T$h7b9Tpm5qIbLhLnwHGxki0$ulZVgAZtaK0uPz5egN4wTEkOcFs82go9M9kYhCbqLcC",
	  "YESCRYPT" },
	{ "$2b$05$nqjCc9dYNmmWbJ4v1CAbkenpiTJj3x9upHzNL5aZhMLoVnlP.e9va", "BLF-CRYPT" },
	{ "$2a$05$W1jBrDq0IVbzNErDRTznYueMeJS0at.r10At6RmvLYn.3f5GtnT9i", "BLF-CRYPT" },
	/* PHP's $2y$ is the same algorithm as $2b$: the $2b$ vector under PHP's prefix */
	{ "$2y$05$nqjCc9dYNmmWbJ4v1CAbkenpiTJj3x9upHzNL5aZhMLoVnlP.e9va", "BLF-CRYPT" },
	{ "$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/", "MD5-CRYPT" },
	{ "$1$Anv4Kkiq$28NTpMICqBiki0B810aY30", "MD5-CRYPT" },
	{ "Tkgird3NTSZc6", "DES-CRYPT" },
	/* BSDi extended DES: only {CRYPT} or no prefix */
	{ "_J9..ahAkjBcsVjWW5.Y", "CRYPT" },
};

/* mkpasswd -m sha-512 of UTF8_PW */
static const char utf8_hash[] = "$6$d8BVf5IXKS.rqdWt$OMwgQq3gqNrOfS4UFNcRY9PXukUqB6Gd.lnB6nG"
				"ee38..32P6CB1W4Xo5wD.DEfC3OoBZNJDrkTdrMA40tIgw/";

static const char empty_hash[] = "$6$emptypassword00$yEmuQ6JFvnLKFNTGmPBSgZ1KF0Bx25bHs7ETC"
				 "Nf9.2qUHo4cd2F7HSeeqy7YHFCYfUpA7wuGnuEz4d2PUyQwL.";

/* Every prefix that names one hash family (so must refuse all others). */
static const char *const family_schemes[] = {
	"SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT", "BLF-CRYPT", "DES-CRYPT", "YESCRYPT",
};

static enum passwd_result verify_with(const char *pw, const char *prefix, const char *hash)
{
	char stored[1200];

	if (str_fmt(stored, sizeof(stored), "%s%s", prefix, hash) < 0)
		return (enum passwd_result)-1;
	return passwd_verify(pw, stored);
}

static void lower(char *dst, size_t size, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

/* Check hash (of pw, family named by scheme) bare and under every prefix. */
static void check_hash(const char *hash, const char *scheme, const char *pw, const char *what)
{
	char prefix[64], name[48];
	size_t i;
	int t_before = t_failures;

	T_EQ_INT(passwd_verify(pw, hash), PASSWD_MATCH);
	T_EQ_INT(passwd_verify(WRONG_PW, hash), PASSWD_MISMATCH);
	T_EQ_INT(passwd_verify("", hash), PASSWD_MISMATCH);
	T_EQ_INT(passwd_verify(NULL, hash), PASSWD_MISMATCH);
	T_EQ_INT(verify_with(pw, "{CRYPT}", hash), PASSWD_MATCH);
	T_EQ_INT(verify_with(pw, "{crypt}", hash), PASSWD_MATCH);
	T_EQ_INT(verify_with(WRONG_PW, "{CRYPT}", hash), PASSWD_MISMATCH);
	T_CHECK(str_fmt(prefix, sizeof(prefix), "{%s}", scheme) > 0);
	T_EQ_INT(verify_with(pw, prefix, hash), PASSWD_MATCH);
	T_EQ_INT(verify_with(WRONG_PW, prefix, hash), PASSWD_MISMATCH);
	lower(name, sizeof(name), scheme);
	T_CHECK(str_fmt(prefix, sizeof(prefix), "{%s}", name) > 0);
	T_EQ_INT(verify_with(pw, prefix, hash), PASSWD_MATCH);
	for (i = 0; i < ARRAY_LEN(family_schemes); i++) {
		if (strcmp(family_schemes[i], scheme) == 0)
			continue;
		T_CHECK(str_fmt(prefix, sizeof(prefix), "{%s}", family_schemes[i]) > 0);
		T_EQ_INT(verify_with(pw, prefix, hash), PASSWD_BADHASH);
	}
	/* {PLAIN} takes the hash for the password itself. */
	T_EQ_INT(verify_with(pw, "{PLAIN}", hash), PASSWD_MISMATCH);
	T_EQ_INT(verify_with(hash, "{PLAIN}", hash), PASSWD_MATCH);
	if (t_failures != t_before)
		fprintf(stderr, "  ... for %s %s\n", what, hash);
}

static void test_known_vectors(void)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(known); i++)
		check_hash(known[i].hash, known[i].scheme, PW, "known vector");
	check_hash(utf8_hash, "SHA512-CRYPT", UTF8_PW, "UTF-8 vector");
	T_EQ_INT(passwd_verify(PW, utf8_hash), PASSWD_MISMATCH);
	/* bcrypt's three version letters are interchangeable for 8-bit-clean input */
	T_EQ_INT(verify_with(PW, "{BLF-CRYPT}", "$2y$05$W1jBrDq0IVbzNErDRTznYueMeJS0at.r10At6R"
				"mvLYn.3f5GtnT9i"), PASSWD_MATCH);
}

/* Run argv (no shell) and put its first output line in out. 0 on success; -1 with a skip
 * message if the tool is missing or fails (e.g. a method this build does not have). */
static int run_tool(char *const argv[], char *out, size_t outlen)
{
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(fds[1], 1) < 0 || freopen("/dev/null", "w", stderr) == NULL)
			_exit(126);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	n = read_full(fds[0], out, outlen - 1);
	close(fds[0]);
	if (waitpid(pid, &status, 0) < 0 || n <= 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "  skip: `%s %s %s` unavailable or failed\n", argv[0], argv[1],
			argv[2]);
		return -1;
	}
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

struct tool_case {
	const char *argv[4];
	const char *scheme;
	const char *prefix; /* expected start of the hash */
};

static void test_tool_hashes(void)
{
	static const struct tool_case cases[] = {
		{ { "mkpasswd", "-m", "sha-512", NULL }, "SHA512-CRYPT", "$6$" },
		{ { "mkpasswd", "-m", "yescrypt", NULL }, "YESCRYPT", "$y$" },
		{ { "mkpasswd", "-m", "bcrypt", NULL }, "BLF-CRYPT", "$2" },
		{ { "mkpasswd", "-m", "md5crypt", NULL }, "MD5-CRYPT", "$1$" },
		{ { "mkpasswd", "-m", "descrypt", NULL }, "DES-CRYPT", "" },
		{ { "openssl", "passwd", "-6", NULL }, "SHA512-CRYPT", "$6$" },
		{ { "openssl", "passwd", "-5", NULL }, "SHA256-CRYPT", "$5$" },
		{ { "openssl", "passwd", "-1", NULL }, "MD5-CRYPT", "$1$" },
	};
	static char pw_arg[] = PW; /* execvp's argv is not const */
	char out[512];
	char *argv[5];
	size_t i;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		memcpy(argv, cases[i].argv, 3 * sizeof(argv[0]));
		argv[3] = pw_arg;
		argv[4] = NULL;
		if (run_tool(argv, out, sizeof(out)) < 0)
			continue;
		T_CHECK(strncmp(out, cases[i].prefix, strlen(cases[i].prefix)) == 0);
		check_hash(out, cases[i].scheme, PW, argv[0]);
		T_EQ_INT(passwd_is_weak(out), strcmp(cases[i].scheme, "MD5-CRYPT") == 0 ||
				strcmp(cases[i].scheme, "DES-CRYPT") == 0);
	}
}

static void test_bad_hashes(void)
{
	static const char *const bad[] = {
		"", "*", "!", "!!", "*LK*", "x", "secret", "hello world!!", "{UNKNOWN}x",
		"{UNKNOWN}$6$Rk13kyhGBDJ542wA$heVbn6EVfJWvfbaet0SwAwLkZAXrLcMRuq.tAuS.DdKLQtoaJp"
		"Vl3R9bV7ADMQZmrLLaY9fgOtXAQM3TtBOBW/",
		"{SHA512-CRYPT}", "{CRYPT}", "{DES-CRYPT}", "{", "{}", "{}$1$CMZ1KpgB$Vp5WrD.snwNWo"
		"bp1Mubdm/", "{CRYPT", "{CRYPT$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/",
		"{AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA}x", "{ CRYPT}x",
		"$6$", "$6$Rk13kyhGBDJ542wA", "$6$Rk13kyhGBDJ542wA$", "$9$abc$def",
		"$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm",    /* one character short */
		"$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/x",  /* one character too many */
		"$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/\n", /* newline from an import */
		" $1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/",
		"!$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/", /* a locked account */
		"{CRYPT}!$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/",
		"$2b$05$nqjCc9dYNmmWbJ4v1CAbke",        /* bcrypt setting without the hash */
		"$2b$99$nqjCc9dYNmmWbJ4v1CAbkenpiTJj3x9upHzNL5aZhMLoVnlP.e9va",
		"$y$j9T$h7b9Tpm5qIbLhLnwHGxki0$",
		"{DES-CRYPT}$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/",
		"{DES-CRYPT}_J9..ahAkjBcsVjWW5.Y", "{DES-CRYPT}Tkgird3NTSZc", "Tkgird3NTSZc",
		"{SHA512-CRYPT}{SHA512-CRYPT}$6$Rk13kyhGBDJ542wA$heVbn6EVfJWvfbaet0SwAwLkZAXrLcMRu"
		"q.tAuS.DdKLQtoaJpVl3R9bV7ADMQZmrLLaY9fgOtXAQM3TtBOBW/",
		"{PLAIN}", "{CLEARTEXT}",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		int r = passwd_verify(PW, bad[i]);

		T_EQ_INT(r, PASSWD_BADHASH);
		if (r != PASSWD_BADHASH)
			fprintf(stderr, "  ... for \"%s\"\n", bad[i]);
		T_EQ_INT(passwd_verify("", bad[i]), PASSWD_BADHASH);
	}
	T_EQ_INT(passwd_verify(PW, NULL), PASSWD_BADHASH);
	/* The example from the brief: an MD5 prefix on a SHA-512 hash. */
	T_EQ_INT(verify_with(PW, "{MD5-CRYPT}", known[0].hash), PASSWD_BADHASH);
}

static void test_plain(void)
{
	T_EQ_INT(passwd_verify("secret", "{PLAIN}secret"), PASSWD_MATCH);
	T_EQ_INT(passwd_verify("secret", "{plain}secret"), PASSWD_MATCH);
	T_EQ_INT(passwd_verify("secret", "{CLEARTEXT}secret"), PASSWD_MATCH);
	T_EQ_INT(passwd_verify("secret", "{Clear}secret"), PASSWD_MATCH);
	T_EQ_INT(passwd_verify("Secret", "{PLAIN}secret"), PASSWD_MISMATCH);
	T_EQ_INT(passwd_verify("secre", "{PLAIN}secret"), PASSWD_MISMATCH);
	T_EQ_INT(passwd_verify("secret2", "{PLAIN}secret"), PASSWD_MISMATCH);
	T_EQ_INT(passwd_verify("", "{PLAIN}secret"), PASSWD_MISMATCH);
	T_EQ_INT(passwd_verify(NULL, "{PLAIN}secret"), PASSWD_MISMATCH);
	T_EQ_INT(passwd_verify("", "{PLAIN}"), PASSWD_BADHASH);
	/* Clear text is taken as is: spaces, braces and '$' included. */
	T_EQ_INT(passwd_verify(" {x} $6$ ", "{PLAIN} {x} $6$ "), PASSWD_MATCH);
	T_EQ_INT(passwd_verify(UTF8_PW, "{PLAIN}" UTF8_PW), PASSWD_MATCH);
	/* Without a prefix "secret" is a (bad) crypt hash, never clear text. */
	T_EQ_INT(passwd_verify("secret", "secret"), PASSWD_BADHASH);
}

static void check_round_trip(enum passwd_scheme scheme, const char *prefix, size_t len)
{
	char h1[256], h2[256], tiny[40];

	T_EQ_INT(passwd_hash(PW, scheme, h1, sizeof(h1)), 0);
	T_EQ_INT(passwd_hash(PW, scheme, h2, sizeof(h2)), 0);
	T_CHECK(strncmp(h1, prefix, strlen(prefix)) == 0);
	T_EQ_INT(strlen(h1), len);
	T_EQ_INT(strlen(h2), len);
	T_CHECK(strcmp(h1, h2) != 0); /* fresh salt each time */
	T_CHECK(strchr(h1, '{') == NULL);
	T_EQ_INT(passwd_verify(PW, h1), PASSWD_MATCH);
	T_EQ_INT(passwd_verify(PW, h2), PASSWD_MATCH);
	T_EQ_INT(passwd_verify(WRONG_PW, h1), PASSWD_MISMATCH);
	T_EQ_INT(verify_with(PW, "{CRYPT}", h1), PASSWD_MATCH);
	T_CHECK(!passwd_is_weak(h1));
	/* An output buffer one byte short fails cleanly and leaves no partial hash. */
	T_EQ_INT(passwd_hash(PW, scheme, h2, len), -1);
	T_EQ_STR(h2, "");
	T_EQ_INT(passwd_hash(PW, scheme, tiny, sizeof(tiny)), -1);
	T_EQ_STR(tiny, "");
	T_EQ_INT(passwd_hash(PW, scheme, h2, len + 1), 0);
	T_EQ_INT(passwd_verify(PW, h2), PASSWD_MATCH);
}

static void test_hash(void)
{
	char h[256];

	/* "$6$" + 16 salt + "$" + 86: the guides' varchar(106) column, exactly */
	check_round_trip(PASSWD_SHA512_CRYPT, "$6$", 106);
	T_EQ_INT(passwd_hash(PW, PASSWD_SHA512_CRYPT, h, sizeof(h)), 0);
	T_EQ_INT(verify_with(PW, "{SHA512-CRYPT}", h), PASSWD_MATCH);
	T_EQ_INT(verify_with(PW, "{YESCRYPT}", h), PASSWD_BADHASH);
	/* "$y$j9T$" + 22 salt + "$" + 43 at the default cost */
	check_round_trip(PASSWD_YESCRYPT, "$y$", 73);
	T_EQ_INT(passwd_hash(PW, PASSWD_YESCRYPT, h, sizeof(h)), 0);
	T_EQ_INT(verify_with(PW, "{YESCRYPT}", h), PASSWD_MATCH);
	T_EQ_INT(verify_with(PW, "{SHA512-CRYPT}", h), PASSWD_BADHASH);
	T_EQ_INT(passwd_hash(UTF8_PW, PASSWD_YESCRYPT, h, sizeof(h)), 0);
	T_EQ_INT(passwd_verify(UTF8_PW, h), PASSWD_MATCH);

	T_EQ_INT(passwd_hash("", PASSWD_SHA512_CRYPT, h, sizeof(h)), -1);
	T_EQ_INT(passwd_hash(NULL, PASSWD_SHA512_CRYPT, h, sizeof(h)), -1);
	T_EQ_INT(passwd_hash(PW, (enum passwd_scheme)42, h, sizeof(h)), -1);
	T_EQ_INT(passwd_hash(PW, PASSWD_YESCRYPT, h, 0), -1);
}

static void test_scheme_parse(void)
{
	enum passwd_scheme s = PASSWD_YESCRYPT;

	T_EQ_INT(passwd_scheme_parse("sha512-crypt", &s), 0);
	T_EQ_INT(s, PASSWD_SHA512_CRYPT);
	T_EQ_INT(passwd_scheme_parse("yescrypt", &s), 0);
	T_EQ_INT(s, PASSWD_YESCRYPT);
	T_EQ_INT(passwd_scheme_parse("SHA512-CRYPT", &s), 0);
	T_EQ_INT(s, PASSWD_SHA512_CRYPT);
	T_EQ_INT(passwd_scheme_parse("YESCRYPT", &s), 0);
	T_EQ_INT(s, PASSWD_YESCRYPT);
	T_EQ_INT(passwd_scheme_parse("Sha512-Crypt", &s), 0);
	T_EQ_INT(s, PASSWD_SHA512_CRYPT);
	T_EQ_INT(passwd_scheme_parse("md5-crypt", &s), -1);
	T_EQ_INT(passwd_scheme_parse("sha512", &s), -1);
	T_EQ_INT(passwd_scheme_parse("yescrypt ", &s), -1);
	T_EQ_INT(passwd_scheme_parse("{SHA512-CRYPT}", &s), -1);
	T_EQ_INT(passwd_scheme_parse("", &s), -1);
	T_EQ_INT(passwd_scheme_parse(NULL, &s), -1);
	T_EQ_INT(s, PASSWD_SHA512_CRYPT); /* untouched by failures */
}

static void test_weak(void)
{
	static const char *const weak[] = {
		"$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/", "{MD5-CRYPT}$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/",
		"{CRYPT}$1$CMZ1KpgB$Vp5WrD.snwNWobp1Mubdm/", "Tkgird3NTSZc6", "{CRYPT}Tkgird3NTSZc6",
		"{DES-CRYPT}Tkgird3NTSZc6", "_J9..ahAkjBcsVjWW5.Y", "{PLAIN}secret",
		"{CLEARTEXT}secret", "{CLEAR}secret", "{plain}$6$x",
	};
	static const char *const strong[] = {
		"$6$Rk13kyhGBDJ542wA$heVbn6EVfJWvfbaet0SwAwLkZAXrLcMRuq.tAuS.DdKLQtoaJpVl3R9bV7ADMQZ"
		"mrLLaY9fgOtXAQM3TtBOBW/",
		"{SHA512-CRYPT}$6$Rk13kyhGBDJ542wA$heVbn6EVfJWvfbaet0SwAwLkZAXrLcMRuq.tAuS.DdKLQtoaJ"
		"pVl3R9bV7ADMQZmrLLaY9fgOtXAQM3TtBOBW/",
		"$5$fmJhNf3dP2T/fszN$JhTZVzSfhIIYrhelk.JBoeSKd9.lwyro8cZGxd4Fev7",
		"$y$j9T$h7b9Tpm5qIbLhLnwHGxki0$ulZVgAZtaK0uPz5egN4wTEkOcFs82go9M9kYhCbqLcC",
		"{BLF-CRYPT}$2b$05$nqjCc9dYNmmWbJ4v1CAbkenpiTJj3x9upHzNL5aZhMLoVnlP.e9va",
		"", "{UNKNOWN}$1$x", "secret",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(weak); i++)
		T_CHECK(passwd_is_weak(weak[i]));
	for (i = 0; i < ARRAY_LEN(strong); i++)
		T_CHECK(!passwd_is_weak(strong[i]));
	T_CHECK(!passwd_is_weak(NULL));
}

static void test_ct_equal(void)
{
	T_CHECK(passwd_ct_equal("abc", 3, "abc", 3));
	T_CHECK(passwd_ct_equal("", 0, "", 0));
	T_CHECK(passwd_ct_equal(NULL, 0, NULL, 0));
	T_CHECK(passwd_ct_equal("abc", 0, "xyz", 0));
	T_CHECK(!passwd_ct_equal("abc", 3, "abd", 3));
	T_CHECK(!passwd_ct_equal("abc", 3, "xbc", 3));
	T_CHECK(!passwd_ct_equal("abc", 3, "abcd", 4));
	T_CHECK(!passwd_ct_equal("abcd", 4, "abc", 3));
	T_CHECK(!passwd_ct_equal("", 0, "a", 1));
	T_CHECK(!passwd_ct_equal("a", 1, "", 0));
	T_CHECK(!passwd_ct_equal(NULL, 0, "a", 1));
	/* A zero byte past the shorter string's end must not count as equal. */
	T_CHECK(!passwd_ct_equal("ab", 2, "ab\0", 3));
	T_CHECK(!passwd_ct_equal("ab\0", 3, "ab", 2));
	T_CHECK(passwd_ct_equal("a\0b", 3, "a\0b", 3));
	T_CHECK(!passwd_ct_equal("a\0b", 3, "a\0c", 3));
	/* Each bit of each byte matters. */
	{
		unsigned char x[64], y[64];
		size_t i;
		int bit, all = 1;

		for (i = 0; i < sizeof(x); i++)
			x[i] = (unsigned char)(i * 37 + 11);
		for (i = 0; i < sizeof(x); i++)
			for (bit = 0; bit < 8; bit++) {
				memcpy(y, x, sizeof(y));
				y[i] ^= (unsigned char)(1u << bit);
				if (passwd_ct_equal(x, sizeof(x), y, sizeof(y)))
					all = 0;
			}
		T_CHECK(all);
		T_CHECK(passwd_ct_equal(x, sizeof(x), x, sizeof(x)));
		T_CHECK(!passwd_ct_equal(x, sizeof(x), x, sizeof(x) - 1));
	}
}

static void test_valid_password(void)
{
	char pw[PASSWD_MAX_LEN + 2];

	memset(pw, 'p', sizeof(pw));
	T_CHECK(passwd_valid_password("a", 1));
	T_CHECK(passwd_valid_password(PW, strlen(PW)));
	T_CHECK(passwd_valid_password(UTF8_PW, strlen(UTF8_PW)));
	T_CHECK(passwd_valid_password(pw, PASSWD_MAX_LEN));
	T_CHECK(!passwd_valid_password(pw, PASSWD_MAX_LEN + 1));
	T_CHECK(!passwd_valid_password("", 0));
	T_CHECK(!passwd_valid_password(NULL, 0));
	T_CHECK(!passwd_valid_password("a\0b", 3));
	T_CHECK(!passwd_valid_password("\0", 1));
	T_CHECK(!passwd_valid_password("ab\0", 3));
	T_EQ_INT(PASSWD_MAX_LEN, 1024);
}

/* libxcrypt takes passphrases up to CRYPT_MAX_PASSPHRASE_SIZE - 1 (511) bytes. */
static void test_long_passwords(void)
{
	char pw[PASSWD_MAX_LEN + 1], stored[PASSWD_MAX_LEN + 16], h[256];
	size_t max_crypt = CRYPT_MAX_PASSPHRASE_SIZE - 1;

	memset(pw, 'L', sizeof(pw));
	pw[PASSWD_MAX_LEN] = '\0';
	T_EQ_INT(strlen(pw), 1024);
	T_CHECK(passwd_valid_password(pw, strlen(pw)));
	/* {PLAIN} has no limit of its own. */
	T_CHECK(str_fmt(stored, sizeof(stored), "{PLAIN}%s", pw) > 0);
	T_EQ_INT(passwd_verify(pw, stored), PASSWD_MATCH);
	stored[strlen(stored) - 1] = 'M';
	T_EQ_INT(passwd_verify(pw, stored), PASSWD_MISMATCH);
	/* Too long for crypt: never matches, hash still judged, and cannot be hashed. */
	T_EQ_INT(passwd_verify(pw, known[0].hash), PASSWD_MISMATCH);
	T_EQ_INT(passwd_verify(pw, "$6$"), PASSWD_BADHASH);
	T_EQ_INT(passwd_hash(pw, PASSWD_SHA512_CRYPT, h, sizeof(h)), -1);
	T_EQ_INT(passwd_hash(pw, PASSWD_YESCRYPT, h, sizeof(h)), -1);
	pw[max_crypt + 1] = '\0';
	T_EQ_INT(passwd_hash(pw, PASSWD_SHA512_CRYPT, h, sizeof(h)), -1);
	/* The longest crypt takes round trips, and its one-shorter prefix does not match. */
	pw[max_crypt] = '\0';
	T_EQ_INT(passwd_hash(pw, PASSWD_SHA512_CRYPT, h, sizeof(h)), 0);
	T_EQ_INT(passwd_verify(pw, h), PASSWD_MATCH);
	pw[max_crypt] = 'L';
	pw[max_crypt + 1] = '\0';
	T_EQ_INT(passwd_verify(pw, h), PASSWD_MISMATCH);
	pw[max_crypt - 1] = '\0';
	T_EQ_INT(passwd_verify(pw, h), PASSWD_MISMATCH);
	/* A hash of the empty password (mkpasswd -m sha-512 -S emptypassword00 '') matches
	 * "", but neither a too-long password (hashed as "" internally) nor a NULL one. */
	T_EQ_INT(passwd_verify("", empty_hash), PASSWD_MATCH);
	T_EQ_INT(passwd_verify(NULL, empty_hash), PASSWD_MISMATCH);
	pw[max_crypt - 1] = 'L';
	T_EQ_INT(passwd_verify(pw, empty_hash), PASSWD_MISMATCH);
	pw[max_crypt - 1] = '\0';
	T_EQ_INT(passwd_verify(pw, empty_hash), PASSWD_MISMATCH);
}

int main(void)
{
	T_RUN(test_known_vectors);
	T_RUN(test_tool_hashes);
	T_RUN(test_bad_hashes);
	T_RUN(test_plain);
	T_RUN(test_hash);
	T_RUN(test_scheme_parse);
	T_RUN(test_weak);
	T_RUN(test_ct_equal);
	T_RUN(test_valid_password);
	T_RUN(test_long_passwords);
	return T_DONE();
}
