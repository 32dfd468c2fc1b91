/*
 * retr.c: RETR and TOP (RFC 1939 §7). The message file (LF line ends on disk) is streamed
 * through lib/pop3.c's encoder: CRLF line ends, a '.' before lines that start with one, then
 * the terminating ".". RETR's "+OK N octets" gives the size LIST gave. A retrieved message
 * gets \Seen at QUIT (Dovecot's default, pop3_no_flag_updates = no); TOP changes nothing.
 *
 * A message another session expunged meanwhile is "-ERR Message N expunged."; a read error
 * after the "+OK" cannot be told to the client any more, so the connection is closed (the
 * client sees a transfer without its terminating line and discards it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pop3.h"
#include "session.h"
#include "util.h"

static char chunk[POP3_FILE_CHUNK];

/* The file's bytes through the encoder into the output: 0, or -1 on a read error. */
static int encode_file(int fd, struct pop3_encoder *e)
{
	struct buf *out;
	ssize_t n;

	while (!e->done && !S.gone) {
		do
			n = read(fd, chunk, sizeof(chunk));
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return n < 0 ? -1 : 0;
		out = out_room(2 * (size_t)n + 1);
		if (out != NULL && pop3_encode(e, chunk, (size_t)n, out) < 0)
			msg_panic("RETR output buffer overflow");
	}
	return 0;
}

/* Stream message index i; the bytes written before the terminating line are added to
 * *counter (Dovecot's retr= and top= byte counts). false if it could not be sent. */
static bool send_message(int64_t i, bool top, uint64_t lines, uint64_t *counter)
{
	uint64_t start = out_offset();
	struct pop3_encoder e;
	struct buf *out;
	int rc, fd = mfolder_msg_open(S.inbox, (uint32_t)i + 1);

	if (fd < 0) {
		out_line(errno == ENOENT ? "-ERR Message %lld expunged." :
			 "-ERR [SYS/TEMP] Cannot read message %lld.", (long long)i + 1);
		msg_tagged("pop3", "Info: %s: message %lld: %s", S.user, (long long)i + 1,
			   strerror(errno));
		command_failed();
		return false;
	}
	if (top)
		out_line("+OK");
	else
		out_line("+OK %llu octets", (unsigned long long)S.msgs[i].size);
	pop3_encoder_init(&e, top, lines);
	rc = encode_file(fd, &e);
	if (rc < 0)
		msg_tagged("pop3", "Error: %s: reading message %lld: %s", S.user, (long long)i + 1,
			   strerror(errno));
	close(fd);
	if (rc < 0) {
		S.end = "Disconnected: Storage error";
		S.quit = true;
		return false;
	}
	if ((out = out_room(2)) != NULL && pop3_encode_end(&e, out) < 0)
		msg_panic("RETR output buffer overflow");
	*counter += out_offset() - start;
	out_line(".");
	return !S.gone;
}

void cmd_retr(const char *args)
{
	int64_t i = msgnum_arg(args, false, NULL);

	if (i < 0)
		return;
	S.retr_count++;
	if (send_message(i, false, 0, &S.retr_bytes))
		S.msgs[i].retrieved = true;
}

void cmd_top(const char *args)
{
	const char *rest;
	unsigned long long lines = 0;
	int64_t i = msgnum_arg(args, true, &rest);
	const char *p = rest;

	if (i < 0)
		return;
	if (*p < '0' || *p > '9') {
		out_line("-ERR Invalid size: %s", rest);
		command_failed();
		return;
	}
	while (*p >= '0' && *p <= '9' && lines <= UINT64_MAX / 10 - 10)
		lines = lines * 10 + (unsigned)(*p++ - '0');
	if (*p >= '0' && *p <= '9') {
		out_line("-ERR Size too large: %s", rest);
		command_failed();
		return;
	}
	if (*p != '\0') {
		out_line("-ERR Noise after size: %s", p);
		command_failed();
		return;
	}
	S.top_count++;
	(void)send_message(i, true, lines, &S.top_bytes);
}
