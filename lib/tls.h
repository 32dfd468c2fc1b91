/*
 * tls.h: OpenSSL context helpers. Servers load certificate and key as root before privileges
 * are dropped; reloading (SIGHUP) builds a new context from the same files and keeps the old
 * one if that fails, so a bad certificate never takes the service down. Policy: TLS 1.2 and
 * newer only, forward-secret AEAD ciphers, server cipher preference, no compression, no
 * renegotiation, session tickets on.
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

struct tls_server;

/* Loads cert (a chain in PEM, leaf first) and key and checks that they match. NULL with a
 * message in err on failure. */
struct tls_server *tls_server_new(const char *cert_file, const char *key_file, char *err,
				  size_t errlen);
int tls_server_reload(struct tls_server *t, char *err, size_t errlen);
SSL_CTX *tls_server_ctx(const struct tls_server *t);
void tls_server_free(struct tls_server *t);

enum tls_verify { TLS_VERIFY_NONE, TLS_VERIFY_PEER };
/* Client context; cafile NULL means the system store. */
SSL_CTX *tls_client_ctx_new(enum tls_verify verify, const char *cafile, char *err,
			    size_t errlen);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", as Postfix logs it. */
void tls_describe(SSL *ssl, char *out, size_t outlen);
/* The most recent OpenSSL error as text (clears the queue). */
void tls_error_string(char *out, size_t outlen);

#endif
