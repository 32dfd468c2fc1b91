/*
 * admin_queue.c: queue administration (issue 5), Postfix's postqueue -p/-f and
 * postsuper -d/-h/-H/-r under one command:
 *
 *   postern mailq [-c FILE]                  (also `mailq [-c FILE]`): list the queue
 *   postern queue [-c FILE] list             the same
 *   postern queue [-c FILE] flush [ALL]      try deferred mail now (`postern flush`)
 *   postern queue [-c FILE] delete|hold|release|requeue ID...|ALL
 *
 * Listing reads the queue directories itself (admin_mailq.c). Every change is a
 * QMGR_REQ_CONTROL request to qmgr (lib/qmgrproto.h): qmgr alone moves queue files, so the
 * command never races it. Only root may ask. The result goes to stdout ("postern/queue:
 * Deleted: 3 messages", like postsuper), problems to stderr, one line each; exit 0, 1 if a
 * request failed (an unknown id), 2 on a usage error, 75 if qmgr cannot be reached.
 * Every change is also logged to the mail log, as an audit trail.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "ipc.h"
#include "log.h"
#include "qmgrproto.h"
#include "queuefile.h"
#include "util.h"

#define DEFAULT_CONF		"/etc/postern/postern.conf"
#define CONNECT_TIMEOUT_MS	5000

struct queue_verb {
	const char *name;
	const char *done;	/* "Deleted": the summary line; NULL for list */
	bool takes_ids;		/* ID...|ALL required; else nothing or ALL */
	const char *usage;
};

static const struct queue_verb queue_verbs[] = {
	{ "list", NULL, false, "list                  show the queue, as mailq" },
	{ "flush", "Flushed", false, "flush [ALL]           try all deferred mail now" },
	{ "delete", "Deleted", true, "delete ID...|ALL      remove messages from the queue" },
	{ "hold", "Placed on hold", true, "hold ID...|ALL        put messages on hold" },
	{ "release", "Released from hold", true,
	  "release ID...|ALL     release held messages into the queue" },
	{ "requeue", "Requeued", true,
	  "requeue ID...|ALL     try every recipient not yet done again from scratch" },
};

/* The prefix of every message: "postern/queue" or "postern/mailq". */
static const char *prog = "postern/queue";

static int queue_usage(FILE *out)
{
	fprintf(out, "usage: postern queue [-c FILE] COMMAND\ncommands:\n");
	for (size_t i = 0; i < ARRAY_LEN(queue_verbs); i++)
		fprintf(out, "  %s\n", queue_verbs[i].usage);
	return out == stdout ? ADMIN_OK : ADMIN_USAGE;
}

static void conf_message(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "%s: %s\n", prog, msg);
}

/* Changes are logged where the other Postern programs log (the audit trail). */
static void open_audit_log(const struct config *cfg)
{
	const char *file = conf_str(cfg, "log_file");

	if (*file)
		(void)log_open("admin", LOG_TARGET_FILE, file);
	else
		(void)log_open("admin", LOG_TARGET_SYSLOG, NULL);
}

/* Parse "[-c FILE]" (and -h) at the front of argv; the index of the first other argument,
 * or -1 after a usage message (*rc says the exit status). */
static int parse_conf_option(int argc, char **argv, const char **conf, int (*usage)(FILE *),
			     int *rc)
{
	int c;

	*conf = DEFAULT_CONF;
	while ((c = getopt(argc, argv, "+c:h")) != -1) {
		if (c != 'c') {
			*rc = usage(c == 'h' ? stdout : stderr);
			return -1;
		}
		*conf = optarg;
	}
	return optind;
}

static int mailq_usage(FILE *out)
{
	fprintf(out, "usage: mailq [-c FILE]\n       postern mailq [-c FILE]\n");
	return out == stdout ? ADMIN_OK : ADMIN_USAGE;
}

static int run_list(const char *conf_path)
{
	struct config *cfg = conf_load(conf_path, conf_message, NULL);
	int rc;

	if (cfg == NULL)
		return ADMIN_FAIL;
	rc = mailq_list(conf_str(cfg, "spool_directory"));
	conf_free(cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: cannot write the output\n", prog);
		rc = rc ? rc : ADMIN_FAIL;
	}
	return rc;
}

int cmd_mailq(int argc, char **argv)
{
	const char *conf;
	int rc = ADMIN_OK, first;

	prog = "postern/mailq";
	if ((first = parse_conf_option(argc, argv, &conf, mailq_usage, &rc)) < 0)
		return rc;
	if (first < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[first]);
		return mailq_usage(stderr);
	}
	return run_list(conf);
}

/* IDs must all be queue ids, or be the single word ALL; ADMIN_OK or ADMIN_FAIL/USAGE. */
static int check_ids(const struct queue_verb *v, int nids, char **ids)
{
	char safe[64];

	if (v->done == NULL && nids > 0) {
		fprintf(stderr, "%s: %s takes no arguments\n", prog, v->name);
		return queue_usage(stderr);
	}
	if (v->takes_ids && nids == 0) {
		fprintf(stderr, "%s: %s: a queue id or ALL is missing\n", prog, v->name);
		return queue_usage(stderr);
	}
	if (!v->takes_ids && (nids > 1 || (nids == 1 && strcmp(ids[0], "ALL") != 0))) {
		fprintf(stderr, "%s: %s takes no queue id (or only ALL)\n", prog, v->name);
		return queue_usage(stderr);
	}
	for (int i = 0; i < nids; i++) {
		if (strcmp(ids[i], "ALL") == 0 && nids > 1) {
			fprintf(stderr, "%s: ALL cannot be combined with queue ids\n", prog);
			return ADMIN_USAGE;
		}
		if (strcmp(ids[i], "ALL") != 0 && !qid_valid(ids[i])) {
			fprintf(stderr, "%s: bad queue id '%s' (expected %d upper-case hex digits, "
				"as mailq shows them)\n", prog,
				admin_printable(ids[i], safe, sizeof(safe)), QF_QID_LEN);
			return ADMIN_FAIL;
		}
	}
	return ADMIN_OK;
}

/* One request: op on id (NULL: none). ADMIN_OK with *count, ADMIN_FAIL after qmgr refused
 * (message printed), ADMIN_TEMPFAIL if qmgr did not answer or is unsure. */
static int control_one(int fd, const char *path, uint32_t reqid, const char *op,
		       const char *id, int64_t *count)
{
	struct ipc_msg *req = xmalloc(sizeof(*req)), *reply = xmalloc(sizeof(*reply));
	const char *reason;
	char safe[256];
	int rc = ADMIN_OK;

	ipc_msg_init(req, QMGR_REQ_CONTROL, reqid);
	if (ipc_put_str(req, "op", op) < 0 || (id && ipc_put_str(req, "id", id) < 0)) {
		fprintf(stderr, "%s: cannot build the request: %s\n", prog, strerror(errno));
		rc = ADMIN_FAIL;
	} else if (ipc_call(fd, req, reply, QMGR_TIMEOUT_MS) < 0) {
		fprintf(stderr, "%s: no answer from qmgr at %s: %s\n", prog, path,
			strerror(errno));
		rc = ADMIN_TEMPFAIL;
	} else {
		reason = ipc_get_str(reply, "reason");
		admin_printable(reason ? reason : "(no reason given)", safe, sizeof(safe));
		if (reply->status == IPC_TEMPFAIL) {
			fprintf(stderr, "%s: qmgr: temporary failure: %s\n", prog, safe);
			rc = ADMIN_TEMPFAIL;
		} else if (reply->status != IPC_OK) {
			fprintf(stderr, "%s: %s: %s\n", prog, id ? id : op, safe);
			rc = ADMIN_FAIL;
		} else if (ipc_get_int(reply, "count", count) < 0 || *count < 0) {
			fprintf(stderr, "%s: qmgr's answer has no message count\n", prog);
			rc = ADMIN_FAIL;
		}
		ipc_close_fds(reply);
	}
	free(req);
	free(reply);
	return rc;
}

static int connect_qmgr(const struct config *cfg, char *path, size_t pathlen, int *fd)
{
	if (str_fmt(path, pathlen, "%s/%s", conf_str(cfg, "spool_directory"), QMGR_SOCKET) < 0) {
		fprintf(stderr, "%s: spool_directory is too long\n", prog);
		return ADMIN_FAIL;
	}
	*fd = ipc_connect(path, CONNECT_TIMEOUT_MS);
	if (*fd < 0) {
		fprintf(stderr, "%s: cannot connect to qmgr at %s: %s (is the mail system "
			"running, with qmgr?)\n", prog, path, strerror(errno));
		return ADMIN_TEMPFAIL;
	}
	return ADMIN_OK;
}

/* Send op for each id (or once without one) and print the summary. */
static int run_control(const struct config *cfg, const struct queue_verb *v, int nids,
		       char **ids)
{
	char path[4096];
	int64_t count, total = 0;
	int fd, rc, worst = ADMIN_OK, answered = 0;

	if ((rc = connect_qmgr(cfg, path, sizeof(path), &fd)) != ADMIN_OK)
		return rc;
	for (int i = 0; i < (nids ? nids : 1) && worst != ADMIN_TEMPFAIL; i++) {
		const char *id = nids ? ids[i] : NULL;

		rc = control_one(fd, path, (uint32_t)i + 1, v->name, id, &count);
		if (rc == ADMIN_OK) {
			answered++;
			total += count;
			msg_info("queue %s %s: %lld message%s (uid %u)", v->name, id ? id : "ALL",
				 (long long)count, count == 1 ? "" : "s", (unsigned)getuid());
		} else if (worst != ADMIN_TEMPFAIL) {
			worst = rc;
		}
	}
	(void)close(fd);
	if (answered > 0)
		printf("%s: %s: %lld message%s\n", prog, v->done, (long long)total,
		       total == 1 ? "" : "s");
	return worst;
}

static int run_verb(const char *conf_path, const struct queue_verb *v, int nids, char **ids)
{
	struct config *cfg;
	int rc;

	if ((rc = check_ids(v, nids, ids)) != ADMIN_OK)
		return rc;
	if (v->done == NULL)
		return run_list(conf_path);
	if (geteuid() != 0) {
		fprintf(stderr, "%s: only root may change the queue\n", prog);
		return ADMIN_FAIL;
	}
	if ((cfg = conf_load(conf_path, conf_message, NULL)) == NULL)
		return ADMIN_FAIL;
	open_audit_log(cfg);
	rc = run_control(cfg, v, nids, ids);
	conf_free(cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: cannot write the output\n", prog);
		rc = rc ? rc : ADMIN_FAIL;
	}
	return rc;
}

int cmd_queue(int argc, char **argv)
{
	const char *conf;
	int rc = ADMIN_OK, first;

	if ((first = parse_conf_option(argc, argv, &conf, queue_usage, &rc)) < 0)
		return rc;
	if (first >= argc)
		return queue_usage(stderr);
	for (size_t i = 0; i < ARRAY_LEN(queue_verbs); i++)
		if (strcmp(argv[first], queue_verbs[i].name) == 0)
			return run_verb(conf, &queue_verbs[i], argc - first - 1, argv + first + 1);
	fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[first]);
	return queue_usage(stderr);
}

static int flush_usage(FILE *out)
{
	fprintf(out, "usage: postern flush [-c FILE]\n");
	return out == stdout ? ADMIN_OK : ADMIN_USAGE;
}

int cmd_flush(int argc, char **argv)
{
	const char *conf;
	int rc = ADMIN_OK, first;

	if ((first = parse_conf_option(argc, argv, &conf, flush_usage, &rc)) < 0)
		return rc;
	if (first < argc)
		return flush_usage(stderr);
	for (size_t i = 0; i < ARRAY_LEN(queue_verbs); i++)
		if (strcmp(queue_verbs[i].name, "flush") == 0)
			return run_verb(conf, &queue_verbs[i], 0, NULL);
	return ADMIN_FAIL;
}
