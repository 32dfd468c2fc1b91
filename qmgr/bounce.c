/*
 * bounce.c: non-delivery reports. When a message has recipients in QF_BOUNCED, qmgr
 * composes one RFC 3464 report for all of them (lib/dsn.h) and queues it as a new message
 * with the null sender: written into tmp/, fsync'ed, renamed into incoming/ and that
 * directory fsync'ed, exactly as the queue daemon commits (inotify then brings it back to
 * qmgr). Then the recipients become QF_RETURNED.
 *
 * Never bounce a bounce: when the failed message has the null sender, the report goes to
 * bounce_notice_recipient (postmaster) instead, from double-bounce@$myhostname; when THAT
 * fails, it is dropped with a log line. Recipients that asked NOTIFY=NEVER (or NOTIFY
 * without FAILURE) are returned without a report.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "dsn.h"
#include "log.h"
#include "qmgr.h"
#include "util.h"

#define REPORT_LIMIT	(DSN_RETURN_LIMIT_DEFAULT + DSN_HEADERS_MAX + (1u << 20))

/* "mx.example.com[192.0.2.1]:25" -> "mx.example.com"; NULL for virtual, local, none. */
static const char *remote_mta(const char *relay, char *out, size_t outlen)
{
	size_t n;

	if (relay == NULL || strchr(relay, '[') == NULL)
		return NULL;
	n = (size_t)(strchr(relay, '[') - relay);
	if (n == 0 || n >= outlen)
		return NULL;
	memcpy(out, relay, n);
	out[n] = '\0';
	return out;
}

static bool is_double_bounce(const char *sender)
{
	return strncasecmp(sender, "double-bounce@", 14) == 0 &&
	       strcasecmp(sender + 14, G.myhostname) == 0;
}

/* Write a whole queue file for the report and commit it into incoming/. */
static int queue_report(const struct buf *report, const struct dsn_result *res,
			const char *sender, const char *to, char *qid)
{
	char to_copy[QF_MAX_ADDR + 1], from_copy[QF_MAX_ADDR + 1], empty[1] = "";
	struct qf_rcpt rcpt = { .addr = to_copy };
	struct qf_envelope env = {
		.arrival_ms = wall_ms(), .sender = from_copy,
		.client_addr = empty, .client_name = empty, .helo = empty,
		.body = res->needs_8bit ? QF_BODY_8BITMIME : QF_BODY_7BIT,
		.flags = res->needs_smtputf8 ? QF_F_SMTPUTF8 : 0, .rcpt = &rcpt, .nrcpt = 1,
	};
	char path[64], err[256];
	struct qf_writer *w;
	int fd, rc = -1;

	if (str_copy(to_copy, sizeof(to_copy), to) < 0 ||
	    str_copy(from_copy, sizeof(from_copy), sender) < 0 ||
	    qid_new(qid, QF_QID_SIZE) < 0 || qdir_path(qid, path, sizeof(path)) < 0)
		return -1;
	(void)str_copy(env.qid, sizeof(env.qid), qid);
	fd = openat(G.dfd[D_TMP], qid, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		msg_warn("bounce: create tmp/%s: %m", qid);
		return -1;
	}
	w = qf_writer_begin(fd, &env, err, sizeof(err));
	if (w == NULL) {
		msg_warn("bounce: %s", err);
	} else if (qf_writer_body(w, report->data, report->len) < 0) {
		qf_writer_abort(w);
		msg_warn("bounce: write: %m");
	} else if (qf_writer_end(w) < 0 || fsync(fd) < 0 ||
		   renameat(G.dfd[D_TMP], qid, G.dfd[D_INCOMING], path) < 0) {
		msg_warn("bounce: commit %s: %m", qid);
	} else if ((rc = qdir_sync_subdir(D_INCOMING, qid)) < 0) {
		msg_warn("bounce: fsync the directory of queue/incoming/%s: %m", path);
	}
	close(fd);
	if (rc < 0)
		(void)unlinkat(G.dfd[D_TMP], qid, 0);
	return rc;
}

/* Mark every QF_BOUNCED recipient returned, durably. */
static void mark_returned(struct msg *m)
{
	for (size_t i = 0; i < m->q.env.nrcpt; i++) {
		struct qf_rcpt *qr = m->rcpt[i].qr;

		if (qr->status.state == QF_BOUNCED &&
		    qf_rcpt_set_status(m->fd, qr, QF_RETURNED, qr->status.code, qr->status.dsn,
				       qr->status.last_ms) < 0)
			msg_warn("%s: cannot record the bounce for %s: %m", m->qid, qr->addr);
	}
	if (fdatasync(m->fd) < 0)
		msg_warn("%s: fdatasync: %m", m->qid);
}

static size_t collect(struct msg *m, struct dsn_rcpt *out, char (*mta)[256])
{
	size_t n = 0;

	for (size_t i = 0; i < m->q.env.nrcpt; i++) {
		struct mrcpt *r = &m->rcpt[i];

		if (r->qr->status.state != QF_BOUNCED ||
		    !dsn_should_report(r->qr->notify, DSN_ACTION_FAILED, false))
			continue;
		dsn_rcpt_from_qf(&out[n], r->qr);
		out[n].diag = r->text && r->text[0] ? r->text : "delivery failed";
		out[n].remote_mta = remote_mta(r->relay, mta[n], sizeof(mta[n]));
		out[n].diag_type = out[n].remote_mta ? "smtp" : "x-postern";
		n++;
	}
	return n;
}

int bounce_send(struct msg *m)
{
	const char *sender = m->q.env.sender;
	struct dsn_rcpt *rcpts = xcalloc(m->q.env.nrcpt, sizeof(*rcpts));
	char (*mta)[256] = xcalloc(m->q.env.nrcpt, sizeof(*mta));
	char to[QF_MAX_ADDR + 1], qid[QF_QID_SIZE], err[256];
	struct dsn_result res;
	struct dsn_msg dm;
	struct buf report;
	size_t n = collect(m, rcpts, mta);
	int rc = 0;

	buf_init(&report, REPORT_LIMIT);
	if (n > 0 && is_double_bounce(sender)) {
		msg_info("%s: discarding a failed postmaster notice", m->qid);
		n = 0;
	}
	if (n > 0) {
		bool bounce = dsn_is_bounce(sender);
		const char *notice = G.bounce_notice_recipient;

		if (!bounce)
			(void)str_copy(to, sizeof(to), sender);
		else if (strchr(notice, '@'))
			(void)str_copy(to, sizeof(to), notice);
		else
			(void)str_fmt(to, sizeof(to), "%s@%s", notice, G.myhostname);
		dsn_msg_from_qf(&dm, &m->q, m->fd, G.myhostname, DSN_KIND_FAILURE);
		dm.sender = to;
		if (dsn_compose(&dm, rcpts, n, &report, &res, err, sizeof(err)) < 0) {
			msg_warn("%s: cannot compose the bounce: %s", m->qid, err);
			rc = -1;
		} else {
			char from[QF_MAX_ADDR + 1] = "";

			if (bounce)
				(void)str_fmt(from, sizeof(from), "double-bounce@%s", G.myhostname);
			rc = queue_report(&report, &res, from, to, qid);
			if (rc == 0)
				msg_info("%s: sender non-delivery notification: %s", m->qid, qid);
		}
	}
	if (rc == 0)
		mark_returned(m);
	buf_free(&report);
	free(rcpts);
	free(mta);
	return rc;
}
