/*
 * deferlog.c: queue/defer/X/Y/QID, why each recipient of a deferred message is still
 * waiting (format in lib/qmgrproto.h). mailq prints it; it is advisory, so it is written
 * whole into a temporary name and renamed over the old one, without fsync.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "qmgr.h"
#include "util.h"

/* TEXT with TAB, CR and LF (and other controls) made spaces. */
static void append_clean(struct buf *b, const char *s)
{
	for (; s && *s; s++)
		(void)buf_append_char(b, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

void deferlog_write(struct msg *m)
{
	char path[64], tmp[80];
	struct buf b;
	int fd;

	if (qdir_path(m->qid, path, sizeof(path)) < 0 ||
	    str_fmt(tmp, sizeof(tmp), "%s.tmp", path) < 0)
		return;
	buf_init(&b, 1u << 22);
	for (size_t i = 0; i < m->q.env.nrcpt; i++) {
		const struct mrcpt *r = &m->rcpt[i];

		if (r->qr->status.state != QF_DEFERRED && r->qr->status.state != QF_PENDING)
			continue;
		append_clean(&b, r->qr->addr);
		(void)buf_append_char(&b, '\t');
		append_clean(&b, r->qr->status.dsn[0] ? r->qr->status.dsn : "4.0.0");
		(void)buf_append_char(&b, '\t');
		append_clean(&b, r->text && r->text[0] ? r->text : "delivery temporarily suspended");
		(void)buf_append_char(&b, '\n');
	}
	fd = openat(G.dfd[D_DEFER], tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0600);
	if (fd < 0 || write_all(fd, b.data, b.len) < 0 ||
	    renameat(G.dfd[D_DEFER], tmp, G.dfd[D_DEFER], path) < 0) {
		msg_warn("%s: cannot write the defer log: %m", m->qid);
		(void)unlinkat(G.dfd[D_DEFER], tmp, 0);
	}
	if (fd >= 0)
		close(fd);
	buf_free(&b);
}

void deferlog_remove(const char *qid)
{
	char path[64];

	if (qdir_path(qid, path, sizeof(path)) == 0)
		(void)unlinkat(G.dfd[D_DEFER], path, 0);
}
