/*
 * test_tls.c: unit tests for lib/tls.c together with TLS in lib/stream.c: the STARTTLS
 * injection defence, TLS line I/O both ways, handshake and read timeouts, certificate
 * loading errors, reload keeping the old context on failure, peer verification (CA and host
 * name) and the server's protocol and cipher policy. Certificates are made at start-up with
 * the openssl command in a private temporary directory; the client side runs in a child.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>

#include "buf.h"
#include "stream.h"
#include "tls.h"
#include "util.h"
#include "t.h"

static char dir[64];
static char cert1[128], key1[128], cert2[128], key2[128], garbage[128];
static char cur_cert[128], cur_key[128];

static void path_in_dir(char *out, size_t outlen, const char *name)
{
	if (str_fmt(out, outlen, "%s/%s", dir, name) < 0) {
		fprintf(stderr, "path too long\n");
		exit(2);
	}
}

/* openssl req -x509 ... -keyout key -out cert, quietly; exits the test on failure. */
static void make_cert(const char *cert, const char *key)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("openssl", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		       "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
		       "/CN=localhost", "-keyout", key, "-out", cert, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "cannot generate a test certificate with openssl\n");
		exit(2);
	}
}

static void write_bytes(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write_all(fd, data, len) < 0 || close(fd) < 0) {
		perror(path);
		exit(2);
	}
}

static void write_text(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text));
}

static void copy_file(const char *from, const char *to)
{
	char *data;
	size_t len;

	if (read_file(from, 1 << 20, &data, &len) < 0) {
		perror(from);
		exit(2);
	}
	write_bytes(to, data, len);
	free(data);
}

static void setup(void)
{
	if (str_copy(dir, sizeof(dir), "/tmp/postern-test-tls-XXXXXX") < 0 || !mkdtemp(dir)) {
		perror("mkdtemp");
		exit(2);
	}
	path_in_dir(cert1, sizeof(cert1), "cert1.pem");
	path_in_dir(key1, sizeof(key1), "key1.pem");
	path_in_dir(cert2, sizeof(cert2), "cert2.pem");
	path_in_dir(key2, sizeof(key2), "key2.pem");
	path_in_dir(garbage, sizeof(garbage), "garbage.pem");
	path_in_dir(cur_cert, sizeof(cur_cert), "cur-cert.pem");
	path_in_dir(cur_key, sizeof(cur_key), "cur-key.pem");
	make_cert(cert1, key1);
	make_cert(cert2, key2);
	write_text(garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
		   "-----END CERTIFICATE-----\n");
}

static void teardown(void)
{
	const char *files[] = { cert1, key1, cert2, key2, garbage, cur_cert, cur_key };

	for (size_t i = 0; i < ARRAY_LEN(files); i++)
		(void)unlink(files[i]);
	(void)rmdir(dir);
}

static SSL_CTX *client_ctx(enum tls_verify verify, const char *cafile)
{
	char err[256] = "";
	SSL_CTX *ctx = tls_client_ctx_new(verify, cafile, err, sizeof(err));

	if (ctx == NULL) {
		fprintf(stderr, "client context: %s\n", err);
		exit(2);
	}
	return ctx;
}

/* Run client(fd, arg) in a child over a socketpair while server(fd, arg) runs here. The
 * child's T_ checks count through its exit status: returns the number of child failures
 * (0 when all passed), or -1 if it died. */
static int run_pair(void (*server)(int fd, void *arg), void (*client)(int fd, void *arg),
		    void *arg)
{
	int sv[2], status;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		exit(2);
	pid = fork();
	if (pid < 0)
		exit(2);
	if (pid == 0) {
		int before = t_failures;

		close(sv[0]);
		client(sv[1], arg);
		_exit(t_failures - before > 100 ? 100 : t_failures - before);
	}
	close(sv[1]);
	server(sv[0], arg);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void expect_line(struct stream *s, struct buf *line, const char *want)
{
	ssize_t n = stream_readline(s, line);

	T_EQ_INT(n, (ssize_t)strlen(want));
	T_EQ_STR(n > 0 ? buf_cstr(line) : "(none)", want);
}

/* ---- STARTTLS injection and TLS I/O -------------------------------------------------------- */

struct session {
	SSL_CTX *sctx, *cctx;
	char desc[160];
};

#define BULK (200 * 1024)

static void fill_pattern(char *p, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(seed + i * 7 % 251);
}

/* Read exactly n bytes with stream_read and compare them with the pattern. */
static void expect_bulk(struct stream *s, int seed)
{
	char *want = xmalloc(BULK), *got = xmalloc(BULK);
	size_t have = 0;

	fill_pattern(want, BULK, seed);
	while (have < BULK) {
		ssize_t n = stream_read(s, got + have, BULK - have);

		if (n <= 0)
			break;
		have += (size_t)n;
	}
	T_EQ_INT(have, BULK);
	T_CHECK(memcmp(want, got, BULK) == 0);
	free(want);
	free(got);
}

static void send_bulk(struct stream *s, int seed)
{
	char *data = xmalloc(BULK);

	fill_pattern(data, BULK, seed);
	T_EQ_INT(stream_write(s, data, 1000), 0);
	T_EQ_INT(stream_write(s, data + 1000, BULK - 1000), 0);
	T_EQ_INT(stream_flush(s), 0);
	free(data);
}

static void injection_server(int fd, void *arg)
{
	struct session *ss = arg;
	struct stream *s = stream_new(fd, 512, 5000);
	struct buf line;

	buf_init(&line, 1024);
	expect_line(s, &line, "STARTTLS\r\n");
	/* The injected command is sitting in our buffer: this is what must be thrown away. */
	T_EQ_INT(stream_pending(s), strlen("INJECTED\r\n"));
	T_EQ_INT(stream_puts(s, "220 2.0.0 Ready to start TLS\r\n"), 0);
	T_EQ_INT(stream_starttls_server(s, ss->sctx), 0);
	T_CHECK(stream_ssl(s) != NULL);
	/* The first line inside TLS is the client's EHLO, never the injected bytes. */
	expect_line(s, &line, "EHLO inside\r\n");
	tls_describe(stream_ssl(s), ss->desc, sizeof(ss->desc));
	T_EQ_INT(stream_printf(s, "250 %s\r\n", "inside ok"), 0);
	T_EQ_INT(stream_flush(s), 0);
	expect_bulk(s, 1);
	send_bulk(s, 2);
	expect_line(s, &line, "QUIT\r\n");
	T_EQ_INT(stream_puts(s, "221 bye\r\n"), 0);
	T_EQ_INT(stream_flush(s), 0);
	T_EQ_INT(stream_readline(s, &line), STREAM_EOF);
	buf_free(&line);
	stream_free(s);
}

static void injection_client(int fd, void *arg)
{
	struct session *ss = arg;
	struct stream *c;
	struct buf line;

	/* The attack: a second command pipelined in the same packet as STARTTLS. Like a real
	 * client, the ClientHello only goes out after the server's 220. */
	T_EQ_INT(write_all(fd, "STARTTLS\r\nINJECTED\r\n", 20), 0);
	c = stream_new(fd, 512, 5000);
	buf_init(&line, 1024);
	expect_line(c, &line, "220 2.0.0 Ready to start TLS\r\n");
	T_EQ_INT(stream_starttls_client(c, ss->cctx, "localhost"), 0);
	T_EQ_INT(SSL_get_verify_result(stream_ssl(c)), X509_V_OK);
	T_EQ_INT(stream_puts(c, "EHLO inside\r\n"), 0);
	T_EQ_INT(stream_flush(c), 0);
	expect_line(c, &line, "250 inside ok\r\n");
	send_bulk(c, 1);
	expect_bulk(c, 2);
	T_EQ_INT(stream_puts(c, "QUIT\r\n"), 0);
	T_EQ_INT(stream_flush(c), 0);
	expect_line(c, &line, "221 bye\r\n");
	buf_free(&line);
	stream_free(c);
}

static void test_starttls_injection(void)
{
	char err[256] = "";
	struct tls_server *t = tls_server_new(cert1, key1, err, sizeof(err));
	struct session ss;

	T_CHECK(t != NULL);
	if (t == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	memset(&ss, 0, sizeof(ss));
	ss.sctx = tls_server_ctx(t);
	ss.cctx = client_ctx(TLS_VERIFY_PEER, cert1);
	T_EQ_INT(run_pair(injection_server, injection_client, &ss), 0);
	T_CHECK(strncmp(ss.desc, "TLSv1.3 with cipher TLS_", 24) == 0);
	T_CHECK(strstr(ss.desc, " bits)") != NULL);
	SSL_CTX_free(ss.cctx);
	tls_server_free(t);
}

/* ---- timeouts ---------------------------------------------------------------------------- */

static void timeout_server(int fd, void *arg)
{
	struct session *ss = arg;
	struct stream *s = stream_new(fd, 512, 200);
	int64_t start = mono_ms(), took;

	/* The first time the client stays silent: the handshake itself times out. */
	T_EQ_INT(stream_starttls_server(s, ss->sctx), STREAM_TIMEOUT);
	took = mono_ms() - start;
	T_CHECK(took >= 195 && took < 800);
	T_CHECK(stream_ssl(s) == NULL);
	stream_free(s);
}

static void timeout_client(int fd, void *arg)
{
	char c;

	/* Say nothing; wait for the server to give up and close. */
	T_EQ_INT(read(fd, &c, 1), 0);
	close(fd);
}

static void read_timeout_server(int fd, void *arg)
{
	struct session *ss = arg;
	struct stream *s = stream_new(fd, 512, 5000);
	struct buf line;
	int64_t start, took;

	buf_init(&line, 1024);
	T_EQ_INT(stream_starttls_server(s, ss->sctx), 0);
	stream_set_timeout(s, 200);
	start = mono_ms();
	T_EQ_INT(stream_readline(s, &line), STREAM_TIMEOUT);
	took = mono_ms() - start;
	T_CHECK(took >= 195 && took < 800);
	stream_set_timeout(s, 5000);
	T_EQ_INT(stream_puts(s, "421 timeout\r\n"), 0);
	T_EQ_INT(stream_flush(s), 0);
	buf_free(&line);
	stream_free(s);
}

static void read_timeout_client(int fd, void *arg)
{
	struct session *ss = arg;
	struct stream *c = stream_new(fd, 512, 5000);
	struct buf line;

	buf_init(&line, 1024);
	T_EQ_INT(stream_starttls_client(c, ss->cctx, "localhost"), 0);
	expect_line(c, &line, "421 timeout\r\n");
	T_EQ_INT(stream_readline(c, &line), STREAM_EOF);
	buf_free(&line);
	stream_free(c);
}

static void test_timeouts(void)
{
	char err[256] = "";
	struct tls_server *t = tls_server_new(cert1, key1, err, sizeof(err));
	struct session ss;

	T_CHECK(t != NULL);
	if (t == NULL)
		return;
	memset(&ss, 0, sizeof(ss));
	ss.sctx = tls_server_ctx(t);
	ss.cctx = client_ctx(TLS_VERIFY_PEER, cert1);
	T_EQ_INT(run_pair(timeout_server, timeout_client, &ss), 0);
	T_EQ_INT(run_pair(read_timeout_server, read_timeout_client, &ss), 0);
	SSL_CTX_free(ss.cctx);
	tls_server_free(t);
}

/* ---- handshakes that should or should not succeed ------------------------------------------ */

struct handshake {
	SSL_CTX *sctx, *cctx;
	const char *sni;
	bool expect_ok;
	const char *client_error;	/* expected in tls_error_string() when failing */
	int server_rc;
	char desc[160];
};

static void hs_server(int fd, void *arg)
{
	struct handshake *h = arg;
	struct stream *s = stream_new(fd, 512, 5000);
	struct buf line;

	buf_init(&line, 1024);
	h->server_rc = stream_starttls_server(s, h->sctx);
	if (h->server_rc == 0) {
		tls_describe(stream_ssl(s), h->desc, sizeof(h->desc));
		expect_line(s, &line, "ping\n");
		T_EQ_INT(stream_puts(s, "pong\n"), 0);
		T_EQ_INT(stream_flush(s), 0);
	}
	buf_free(&line);
	stream_free(s);
}

static void hs_client(int fd, void *arg)
{
	struct handshake *h = arg;
	struct stream *c = stream_new(fd, 512, 5000);
	struct buf line;
	char err[256];
	int rc = stream_starttls_client(c, h->cctx, h->sni);

	buf_init(&line, 1024);
	T_EQ_INT(rc, h->expect_ok ? 0 : STREAM_ERR);
	if (rc == 0) {
		T_EQ_INT(stream_puts(c, "ping\n"), 0);
		T_EQ_INT(stream_flush(c), 0);
		expect_line(c, &line, "pong\n");
	} else if (h->client_error != NULL) {
		tls_error_string(err, sizeof(err));
		T_CHECK(strstr(err, h->client_error) != NULL);
		if (strstr(err, h->client_error) == NULL)
			fprintf(stderr, "client error: %s\n", err);
	}
	buf_free(&line);
	stream_free(c);
}

/* Handshake sctx against cctx; checks the client side in the child and returns the server's
 * result. */
static int handshake(struct handshake *h)
{
	h->server_rc = 1;
	h->desc[0] = '\0';
	T_EQ_INT(run_pair(hs_server, hs_client, h), 0);
	return h->server_rc;
}

static void test_client_verify(void)
{
	char err[256] = "";
	struct tls_server *t = tls_server_new(cert1, key1, err, sizeof(err));
	struct handshake h;

	T_CHECK(t != NULL);
	if (t == NULL)
		return;
	memset(&h, 0, sizeof(h));
	h.sctx = tls_server_ctx(t);

	/* The right CA and the right name. */
	h.cctx = client_ctx(TLS_VERIFY_PEER, cert1);
	h.sni = "localhost";
	h.expect_ok = true;
	T_EQ_INT(handshake(&h), 0);
	/* The right CA but another name. */
	h.sni = "mail.example.org";
	h.expect_ok = false;
	h.client_error = "certificate verify failed";
	T_EQ_INT(handshake(&h), STREAM_ERR);
	SSL_CTX_free(h.cctx);

	/* The wrong CA. */
	h.cctx = client_ctx(TLS_VERIFY_PEER, cert2);
	h.sni = "localhost";
	T_EQ_INT(handshake(&h), STREAM_ERR);
	SSL_CTX_free(h.cctx);

	/* No verification: the same certificate is accepted. */
	h.cctx = client_ctx(TLS_VERIFY_NONE, NULL);
	h.expect_ok = true;
	h.client_error = NULL;
	T_EQ_INT(handshake(&h), 0);
	T_CHECK(strncmp(h.desc, "TLSv1.3", 7) == 0);
	SSL_CTX_free(h.cctx);
	tls_server_free(t);
}

/* TLS 1.2 still works with an AEAD suite; CBC suites and TLS 1.1 are refused. */
static void test_server_policy(void)
{
	char err[256] = "";
	struct tls_server *t = tls_server_new(cert1, key1, err, sizeof(err));
	struct handshake h;

	T_CHECK(t != NULL);
	if (t == NULL)
		return;
	memset(&h, 0, sizeof(h));
	h.sctx = tls_server_ctx(t);
	h.sni = "localhost";

	h.cctx = client_ctx(TLS_VERIFY_PEER, cert1);
	T_CHECK(SSL_CTX_set_max_proto_version(h.cctx, TLS1_2_VERSION) == 1);
	h.expect_ok = true;
	T_EQ_INT(handshake(&h), 0);
	T_EQ_STR(h.desc, "TLSv1.2 with cipher ECDHE-ECDSA-AES256-GCM-SHA384 (256/256 bits)");

	/* Offer only a CBC suite: there must be no shared cipher. */
	T_CHECK(SSL_CTX_set_cipher_list(h.cctx, "ECDHE-ECDSA-AES128-SHA") == 1);
	h.expect_ok = false;
	T_EQ_INT(handshake(&h), STREAM_ERR);
	SSL_CTX_free(h.cctx);

	/* A TLS 1.1 client (allowed to go that low by security level 0) is refused. */
	h.cctx = client_ctx(TLS_VERIFY_NONE, NULL);
	SSL_CTX_set_security_level(h.cctx, 0);
	T_CHECK(SSL_CTX_set_min_proto_version(h.cctx, TLS1_1_VERSION) == 1);
	T_CHECK(SSL_CTX_set_max_proto_version(h.cctx, TLS1_1_VERSION) == 1);
	T_CHECK(SSL_CTX_set_cipher_list(h.cctx, "ALL:@SECLEVEL=0") == 1);
	T_EQ_INT(handshake(&h), STREAM_ERR);
	SSL_CTX_free(h.cctx);
	tls_server_free(t);
}

/* ---- loading and reloading ------------------------------------------------------------------ */

static void test_load_errors(void)
{
	char err[512] = "";
	char missing[160];

	path_in_dir(missing, sizeof(missing), "missing.pem");
	T_CHECK(tls_server_new(missing, key1, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, missing) != NULL);
	T_CHECK(strstr(err, "No such file") != NULL);

	err[0] = '\0';
	T_CHECK(tls_server_new(cert1, key2, err, sizeof(err)) == NULL);	/* not its key */
	T_CHECK(strstr(err, key2) != NULL && strstr(err, cert1) != NULL);
	T_CHECK(strstr(err, "does not match") != NULL);

	err[0] = '\0';
	T_CHECK(tls_server_new(garbage, key1, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, garbage) != NULL);

	err[0] = '\0';
	T_CHECK(tls_server_new(cert1, missing, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, missing) != NULL);

	err[0] = '\0';
	T_CHECK(tls_client_ctx_new(TLS_VERIFY_PEER, missing, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, missing) != NULL);

	/* Nothing left behind in OpenSSL's error queue for the next caller. */
	T_EQ_INT(ERR_peek_error(), 0);
}

static void test_reload(void)
{
	char err[512] = "";
	struct tls_server *t;
	struct handshake h;
	SSL_CTX *first;

	copy_file(cert1, cur_cert);
	copy_file(key1, cur_key);
	t = tls_server_new(cur_cert, cur_key, err, sizeof(err));
	T_CHECK(t != NULL);
	if (t == NULL)
		return;
	first = tls_server_ctx(t);

	/* A broken certificate: reload fails, says why, and the old context keeps serving. */
	copy_file(garbage, cur_cert);
	T_EQ_INT(tls_server_reload(t, err, sizeof(err)), -1);
	T_CHECK(strstr(err, cur_cert) != NULL);
	T_CHECK(tls_server_ctx(t) == first);
	memset(&h, 0, sizeof(h));
	h.sctx = tls_server_ctx(t);
	h.cctx = client_ctx(TLS_VERIFY_PEER, cert1);
	h.sni = "localhost";
	h.expect_ok = true;
	T_EQ_INT(handshake(&h), 0);
	SSL_CTX_free(h.cctx);

	/* A good new pair: the new context serves the new certificate. */
	copy_file(cert2, cur_cert);
	copy_file(key2, cur_key);
	T_EQ_INT(tls_server_reload(t, err, sizeof(err)), 0);
	h.sctx = tls_server_ctx(t);
	h.cctx = client_ctx(TLS_VERIFY_PEER, cert2);
	T_EQ_INT(handshake(&h), 0);
	SSL_CTX_free(h.cctx);
	tls_server_free(t);
}

static void test_describe_without_tls(void)
{
	char out[64];

	tls_describe(NULL, out, sizeof(out));
	T_EQ_STR(out, "no TLS");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);	/* as the daemons do: OpenSSL writes with write(2) */
	alarm(120);
	setup();
	T_RUN(test_starttls_injection);
	T_RUN(test_timeouts);
	T_RUN(test_client_verify);
	T_RUN(test_server_policy);
	T_RUN(test_load_errors);
	T_RUN(test_reload);
	T_RUN(test_describe_without_tls);
	teardown();
	return T_DONE();
}
