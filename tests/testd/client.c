/*
 * client.c: postern-testd's line protocol for one TCP client (pool mode).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testd.h"
#include "buf.h"
#include "inet.h"
#include "log.h"
#include "stream.h"
#include "tls.h"
#include "util.h"

static void reply(struct stream *s, const char *text)
{
	stream_printf(s, "%s\r\n", text);
}

/* Strip the line terminator; false if the line holds a NUL byte. */
static bool chomp(struct buf *line)
{
	while (line->len && (line->data[line->len - 1] == '\n' || line->data[line->len - 1] == '\r'))
		line->data[--line->len] = '\0';
	return memchr(line->data, '\0', line->len) == NULL;
}

static bool do_starttls(struct stream *s, struct testd *t)
{
	char desc[128];

	if (stream_ssl(s)) {
		reply(s, "ERR already in TLS");
		return true;
	}
	if (t->tls == NULL) {
		reply(s, "ERR TLS not available");
		return true;
	}
	reply(s, "OK begin TLS");
	if (stream_flush(s) < 0 || stream_starttls_server(s, tls_server_ctx(t->tls)) < 0) {
		msg_info("STARTTLS handshake failed");
		return false;
	}
	tls_describe(stream_ssl(s), desc, sizeof(desc));
	msg_info("TLS started: %s", desc);
	return true;
}

/* One command; false ends the session. */
static bool command(struct stream *s, struct testd *t, const char *cmd)
{
	char desc[128];

	if (strcmp(cmd, "PING") == 0) {
		reply(s, "PONG");
	} else if (strncmp(cmd, "ECHO ", 5) == 0) {
		reply(s, cmd + 5);
	} else if (strcmp(cmd, "TLS") == 0) {
		if (stream_ssl(s)) {
			tls_describe(stream_ssl(s), desc, sizeof(desc));
			reply(s, desc);
		} else {
			reply(s, "none");
		}
	} else if (strcmp(cmd, "STARTTLS") == 0) {
		return do_starttls(s, t);
	} else if (strcmp(cmd, "QUIT") == 0) {
		reply(s, "BYE");
		return false;
	} else {
		reply(s, "ERR unknown command");
	}
	return true;
}

void testd_serve_client(struct server *srv, int fd, int listener, const struct sockaddr *peer,
			socklen_t peerlen)
{
	struct testd *t = srv->ctx;
	struct stream *s;
	struct buf line;
	char host[64], greet[128];
	int cfd = dup(fd);	/* the skeleton closes fd; the stream owns its own copy */

	(void)listener, (void)peerlen;
	inet_format_host(peer, host, sizeof(host));
	msg_info("connect from %s", host);
	if (cfd < 0)
		return;
	s = stream_new(cfd, TESTD_MAX_LINE + 2, TESTD_TIMEOUT_MS);
	buf_init(&line, TESTD_MAX_LINE + 2);
	if (t->implicit_tls && stream_starttls_server(s, tls_server_ctx(t->tls)) < 0) {
		msg_info("TLS handshake failed with %s", host);
		goto done;
	}
	str_fmt(greet, sizeof(greet), "postern-testd %s %d ready", srv->service, (int)getpid());
	reply(s, greet);
	for (;;) {
		ssize_t n;

		if (stream_flush(s) < 0)
			break;
		n = stream_readline(s, &line);
		if (n == STREAM_TOOLONG) {
			reply(s, "ERR line too long");
			continue;
		}
		if (n <= 0)
			break;
		if (!chomp(&line)) {
			reply(s, "ERR NUL in command");
			continue;
		}
		if (!command(s, t, line.data))
			break;
	}
	stream_flush(s);
done:
	msg_info("disconnect from %s", host);
	buf_free(&line);
	stream_free(s);
}
