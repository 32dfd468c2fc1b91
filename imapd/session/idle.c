/*
 * idle.c: IDLE (RFC 2177). While the client idles, inotify watches the selected folder's
 * new/ and cur/ (deliveries, other sessions' flag changes and expunges); each burst of
 * events is followed by a sync and the untagged updates, so new mail reaches the client
 * within moments of its delivery. DONE ends it; anything else is BAD. A sync also runs
 * every IDLE_RESYNC_MS in case an event was missed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "session.h"
#include "util.h"

#define IDLE_RESYNC_MS	(2 * 60 * 1000)
#define IDLE_BATCH_MS	50	/* let a burst of events settle before syncing */

static int watch_folder(void)
{
	static const char *const sub[] = { "new", "cur" };
	char path[4096];
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0 || S.folder == NULL)
		return fd;
	for (size_t i = 0; i < 2; i++) {
		if (str_fmt(path, sizeof(path), "%s/%s", mfolder_path(S.folder), sub[i]) < 0 ||
		    inotify_add_watch(fd, path, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
				      IN_DELETE) < 0)
			msg_warn("%s: IDLE cannot watch %s: %m", S.user, path);
	}
	return fd;
}

static void drain(int fd)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

void cmd_idle(const struct imaparg *a)
{
	int ifd, waited = 0;
	const char *line;
	size_t len;

	if (a) {
		reply_tagged("BAD", "IDLE takes no arguments.");
		return;
	}
	ifd = S.state == S_SELECTED ? watch_folder() : -1;
	if (S.state == S_SELECTED)
		folder_report_changes(true);
	out_str("+ idling\r\n");
	for (;;) {
		int r = io_wait(ifd, IDLE_RESYNC_MS);

		if (r == 1)
			break;
		if (r == 0) {
			struct pollfd p = { .fd = S.fd, .events = POLLIN };

			(void)poll(&p, 1, IDLE_BATCH_MS);	/* settle, unless the client speaks */
			drain(ifd);
		}
		folder_report_changes(true);
		waited += r < 0 ? IDLE_RESYNC_MS : 0;
		if (waited >= IMAP_IDLE_TIMEOUT_MS) {
			out_str("* BYE Disconnected for inactivity.\r\n");
			out_flush();
			S.state = S_LOGOUT;
			if (ifd >= 0)
				close(ifd);
			return;
		}
	}
	if (ifd >= 0)
		close(ifd);
	switch (io_read_line(&line, &len)) {
	case 0:
		S.state = S_LOGOUT;
		return;
	case 1:
		if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
			reply_tagged("OK", "Idle completed.");
			return;
		}
		__attribute__((fallthrough));
	default:
		reply_tagged("BAD", "Expected DONE.");
	}
}
