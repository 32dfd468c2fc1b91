/*
 * tls.c: OpenSSL contexts for Postern's servers and clients (see tls.h).
 *
 * A server context is always built whole from the files and only then put in place, so a
 * reload that fails leaves the old context serving. Connections already running keep their
 * own reference to the context they were created from (SSL_new takes one), so freeing the old
 * context on a successful reload is safe.
 *
 * Hostname checking for verifying clients is done per connection by stream.c (SSL_set1_host
 * with the SNI name), because the context does not know which peer it will talk to.
 */
#include "tls.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "util.h"

/* TLS 1.2: ECDHE key exchange with AEAD ciphers only (no RSA key exchange, no CBC). TLS 1.3
 * keeps OpenSSL's default suites, which all qualify. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

/* Options for both sides. A peer closing without close_notify is an ordinary EOF to us: the
 * mail protocols carry their own end markers, so truncation cannot go unnoticed. */
#define TLS_COMMON_OPTIONS (SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | \
			    SSL_OP_IGNORE_UNEXPECTED_EOF)

static const unsigned char session_id_context[] = "postern";

struct tls_server {
	char *cert_file;
	char *key_file;
	SSL_CTX *ctx;
};

/* The reason of one queued error, with OpenSSL's detail text if it has any. */
static void error_text(unsigned long e, const char *data, int flags, char *out, size_t outlen)
{
	const char *reason = ERR_reason_error_string(e);

	if (reason == NULL && ERR_SYSTEM_ERROR(e))
		reason = strerror(ERR_GET_REASON(e));
	if (reason == NULL)
		reason = "unknown error";
	if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0')
		(void)str_fmt(out, outlen, "%s (%s)", reason, data);
	else
		(void)str_copy(out, outlen, reason);
}

/* OpenSSL queues a failure from the root cause outwards ("No such file or directory", then
 * "BIO lib", then "system lib"): the oldest entry is the one that tells an administrator what
 * is wrong. Our callers clear the queue before each operation, so it is the latest failure. */
void tls_error_string(char *out, size_t outlen)
{
	const char *data = NULL;
	int flags = 0;
	unsigned long e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);

	if (outlen == 0)
		return;
	if (e == 0)
		(void)str_copy(out, outlen, "no OpenSSL error recorded");
	else
		error_text(e, data, flags, out, outlen);
	ERR_clear_error();
}

/* "what: file: reason" into err, using the OpenSSL error queue. */
static void fail_with_file(char *err, size_t errlen, const char *what, const char *file)
{
	char reason[256];

	tls_error_string(reason, sizeof(reason));
	if (err != NULL && errlen > 0)
		(void)str_fmt(err, errlen, "%s %s: %s", what, file, reason);
}

static void fail_plain(char *err, size_t errlen, const char *what)
{
	char reason[256];

	tls_error_string(reason, sizeof(reason));
	if (err != NULL && errlen > 0)
		(void)str_fmt(err, errlen, "%s: %s", what, reason);
}

static bool key_mismatch(void)
{
	unsigned long e = ERR_peek_last_error();

	return ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
}

static void fail_mismatch(char *err, size_t errlen, const char *key_file, const char *cert_file)
{
	char reason[256];

	tls_error_string(reason, sizeof(reason));
	if (err != NULL && errlen > 0)
		(void)str_fmt(err, errlen, "private key %s does not match certificate %s: %s",
			      key_file, cert_file, reason);
}

/* Protocol floor and common options; 0 or -1 with the reason in err. */
static int ctx_policy(SSL_CTX *ctx, char *err, size_t errlen)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		fail_plain(err, errlen, "cannot set the minimum TLS version");
		return -1;
	}
	SSL_CTX_set_options(ctx, TLS_COMMON_OPTIONS);
	return 0;
}

static SSL_CTX *server_ctx_build(const char *cert_file, const char *key_file, char *err,
				 size_t errlen)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		fail_plain(err, errlen, "cannot create a TLS server context");
		return NULL;
	}
	if (ctx_policy(ctx, err, errlen) < 0)
		goto fail;
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		fail_plain(err, errlen, "cannot set the TLS 1.2 cipher list");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Needed for session resumption to work if client certificates are ever requested. */
	(void)SSL_CTX_set_session_id_context(ctx, session_id_context,
					     sizeof(session_id_context) - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		fail_with_file(err, errlen, "cannot load certificate chain", cert_file);
		goto fail;
	}
	/* OpenSSL already refuses a key that does not match the certificate while loading it;
	 * the explicit check covers a chain file that held no usable leaf. */
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		if (key_mismatch())
			fail_mismatch(err, errlen, key_file, cert_file);
		else
			fail_with_file(err, errlen, "cannot load private key", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		fail_mismatch(err, errlen, key_file, cert_file);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_server *tls_server_new(const char *cert_file, const char *key_file, char *err,
				  size_t errlen)
{
	struct tls_server *t;
	SSL_CTX *ctx = server_ctx_build(cert_file, key_file, err, errlen);

	if (ctx == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->cert_file = xstrdup(cert_file);
	t->key_file = xstrdup(key_file);
	t->ctx = ctx;
	return t;
}

int tls_server_reload(struct tls_server *t, char *err, size_t errlen)
{
	SSL_CTX *ctx = server_ctx_build(t->cert_file, t->key_file, err, errlen);

	if (ctx == NULL)
		return -1;
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	return 0;
}

SSL_CTX *tls_server_ctx(const struct tls_server *t)
{
	return t->ctx;
}

void tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t->cert_file);
	free(t->key_file);
	free(t);
}

/* Outgoing connections keep OpenSSL's default cipher list: a remote MX that only speaks
 * something older is still better encrypted than not. The protocol floor still holds. */
SSL_CTX *tls_client_ctx_new(enum tls_verify verify, const char *cafile, char *err,
			    size_t errlen)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		fail_plain(err, errlen, "cannot create a TLS client context");
		return NULL;
	}
	if (ctx_policy(ctx, err, errlen) < 0)
		goto fail;
	if (verify == TLS_VERIFY_PEER) {
		if (cafile != NULL && SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
			fail_with_file(err, errlen, "cannot load CA certificates", cafile);
			goto fail;
		}
		if (cafile == NULL && SSL_CTX_set_default_verify_paths(ctx) != 1) {
			fail_plain(err, errlen, "cannot load the system CA store");
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_describe(SSL *ssl, char *out, size_t outlen)
{
	const SSL_CIPHER *cipher = ssl ? SSL_get_current_cipher(ssl) : NULL;
	int alg_bits = 0, bits;

	if (outlen == 0)
		return;
	if (cipher == NULL) {
		(void)str_copy(out, outlen, "no TLS");
		return;
	}
	bits = SSL_CIPHER_get_bits(cipher, &alg_bits);
	(void)str_fmt(out, outlen, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
		      SSL_CIPHER_get_name(cipher), bits, alg_bits);
}
