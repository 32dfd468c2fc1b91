/*
 * login.c: the parts of imap-login and pop3-login that do not depend on the protocol (see
 * login.h): start-up, the client's addresses and TLS, SASL through authd, the hand-off to
 * master and the Dovecot-format log lines.
 */
#include "login.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "base64.h"
#include "inet.h"
#include "ipc.h"
#include "log.h"
#include "privsep.h"
#include "proxy.h"
#include "sessionproto.h"
#include "util.h"

#define CONNECT_TIMEOUT_MS	5000
#define SASL_DECODED_MAX	BASE64_DECODED_MAX(LOGIN_SASL_LINE_MAX)

/* ---- start-up ------------------------------------------------------------------------------ */

/* Connect to a private socket, as uid:gid if switch_ids (we are root and must not look like
 * it: SO_PEERCRED records the effective ids of the connect call). */
static int connect_as(const char *path, bool switch_ids, uid_t uid, gid_t gid)
{
	int fd, saved;

	if (switch_ids && (setegid(gid) < 0 || seteuid(uid) < 0))
		msg_fatal("cannot take the ids %d:%d to connect to %s: %m", (int)uid, (int)gid,
			  path);
	fd = ipc_connect(path, CONNECT_TIMEOUT_MS);
	saved = errno;
	if (switch_ids && (seteuid(0) < 0 || setegid(0) < 0))
		msg_fatal("cannot get back to root after connecting to %s: %m", path);
	if (fd < 0)
		msg_warn("connect to %s: %s", path, strerror(saved));
	return fd;
}

static void connect_private(struct login_conf *cf, const struct server *srv)
{
	const char *spool = conf_str(srv->cfg, "spool_directory");
	const char *user = conf_str(srv->cfg, "mail_owner");
	bool switch_ids = geteuid() == 0 && !srv->dev_mode;
	char path[4096];
	uid_t uid = 0;
	gid_t gid = 0;

	if (switch_ids && privsep_lookup_user(user, &uid, &gid) < 0)
		msg_fatal("mail_owner: unknown user %s", user);
	if (str_fmt(path, sizeof(path), "%s/%s", spool, AUTH_SOCKET) < 0)
		msg_fatal("spool_directory too long");
	cf->auth_fd = connect_as(path, switch_ids, uid, gid);
	if (str_fmt(path, sizeof(path), "%s/%s", spool, SESSION_SOCKET) < 0)
		msg_fatal("spool_directory too long");
	cf->master_fd = connect_as(path, switch_ids, uid, gid);
	cf->broken = cf->auth_fd < 0 || cf->master_fd < 0;
}

void login_init(struct login_conf *cf, struct server *srv, const char *protocol,
		const char *log_tag, bool implicit_tls, bool allow_plaintext)
{
	char err[512];

	memset(cf, 0, sizeof(*cf));
	cf->protocol = protocol;
	cf->log_tag = log_tag;
	cf->implicit_tls = implicit_tls;
	cf->allow_plaintext = allow_plaintext;
	cf->idle_ms = (int)conf_time_ms(srv->cfg, "login_idle_timeout");
	cf->tls = tls_server_new(conf_str(srv->cfg, "tls_cert_file"),
				 conf_str(srv->cfg, "tls_key_file"), err, sizeof(err));
	if (cf->tls == NULL && implicit_tls)
		msg_fatal("%s", err);
	if (cf->tls == NULL)
		msg_warn("STARTTLS unavailable: %s", err);
	connect_private(cf, srv);
}

/* The watcher thread: when authd or master closes its end, ask the pool skeleton to stop
 * (SIGHUP to the process; this thread blocks every signal, so the main thread takes it,
 * which interrupts its wait for a connection). An idle process thus never takes a client
 * it could not log in. */
static void *watch_private(void *arg)
{
	const struct login_conf *cf = arg;
	struct pollfd p[2] = {
		{ .fd = cf->auth_fd, .events = POLLRDHUP }, { .fd = cf->master_fd, .events = POLLRDHUP },
	};

	for (;;) {
		int r = poll(p, 2, -1);

		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && ((p[0].revents | p[1].revents) &
			      (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
			break;
	}
	msg_info("the connection to authd or master is gone: exiting after the current client");
	(void)kill(getpid(), SIGHUP);
	return NULL;
}

void login_post_drop(struct login_conf *cf)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;

	if (cf->auth_fd < 0 || cf->master_fd < 0)
		return;		/* broken from the start: login_after_client ends the process */
	sigfillset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0 || pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0 ||
	    pthread_create(&t, &attr, watch_private, cf) != 0)
		msg_fatal("cannot start the connection watcher");
	(void)pthread_attr_destroy(&attr);
	if (pthread_sigmask(SIG_SETMASK, &old, NULL) != 0)
		msg_fatal("pthread_sigmask: %m");
}

/* A private connection is dead if it reads as EOF or fails; a stale late answer to an
 * abandoned call is harmless (ipc_call skips it). */
static bool connection_dead(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b;

	if (fd < 0)
		return true;
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (p.revents & (POLLERR | POLLNVAL))
		return true;
	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void login_after_client(struct login_conf *cf)
{
	if (cf->broken || connection_dead(cf->auth_fd) || connection_dead(cf->master_fd)) {
		msg_info("a connection to authd or master is unusable: exiting after this client");
		(void)kill(getpid(), SIGHUP);	/* the pool skeleton's graceful stop */
	}
}

/* ---- the client ---------------------------------------------------------------------------- */

void login_log_user(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t n = 0;

	if (dstlen == 0)
		return;
	for (size_t i = 0; i < srclen && n + 1 < dstlen; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[n++] = ch <= ' ' || ch == 0x7f || strchr("<>,()", ch) ? '?' : (char)ch;
	}
	dst[n] = '\0';
}

static int port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return 0;
}

/* Dovecot's session id: 12 bytes, 16 base64 characters. Ours are random. */
static void make_session_id(char *out, size_t outlen)
{
	unsigned char rnd[12];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		msg_fatal("getrandom: %m");
	if (base64_encode(rnd, sizeof(rnd), out, outlen) < 0)
		msg_panic("session id buffer too small");
}

static void client_addresses(struct login_client *c, int fd, const struct sockaddr *peer)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);

	inet_format_host(peer, c->rip, sizeof(c->rip));
	c->rport = port_of(peer);
	if (getsockname(fd, (struct sockaddr *)&local, &len) == 0) {
		inet_format_host((struct sockaddr *)&local, c->lip, sizeof(c->lip));
		c->lport = port_of((struct sockaddr *)&local);
	} else {
		str_copy(c->lip, sizeof(c->lip), "unknown");
	}
}

static int handshake(struct login_client *c)
{
	char err[256];

	if (stream_starttls_server(c->s, tls_server_ctx(c->cf->tls)) < 0) {
		tls_error_string(err, sizeof(err));
		msg_info("TLS handshake with %s failed: %s", c->rip, err);
		login_log_disconnect(c, "TLS handshaking failed");
		return -1;
	}
	c->tls = true;
	return 0;
}

int login_client_start(struct login_client *c, struct login_conf *cf, int fd,
		       const struct sockaddr *peer)
{
	int cfd = dup(fd);	/* the skeleton closes fd; the stream owns its own copy */
	int one = 1;

	/* Responses go out in bursts through the proxy: without TCP_NODELAY the last partial
	 * segment of a burst waits for the client's delayed ACK (~40 ms per command). */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(c, 0, sizeof(*c));
	c->cf = cf;
	c->started = mono_ms();
	client_addresses(c, fd, peer);
	make_session_id(c->session_id, sizeof(c->session_id));
	if (connection_dead(cf->auth_fd) || connection_dead(cf->master_fd))
		cf->broken = true;
	if (cfd < 0 || (c->s = stream_new(cfd, 0, cf->idle_ms)) == NULL) {
		msg_warn("cannot set up the connection from %s: %m", c->rip);
		if (cfd >= 0)
			close(cfd);
		return -1;
	}
	if (cf->implicit_tls)
		return handshake(c);
	return 0;
}

void login_client_end(struct login_client *c)
{
	stream_free(c->s);
	c->s = NULL;
}

int login_starttls(struct login_client *c)
{
	return handshake(c);
}

bool login_tls_available(const struct login_client *c)
{
	return c->cf->tls != NULL;
}

bool login_plaintext_allowed(const struct login_client *c)
{
	return c->tls || c->cf->allow_plaintext;
}

void login_note_plaintext_refused(struct login_client *c)
{
	c->plaintext_refused = true;
}

/* ---- authd --------------------------------------------------------------------------------- */

static bool ticket_ok(const char *t)
{
	size_t n = strlen(t);

	return n > 0 && n <= LOGIN_TICKET_MAX && strspn(t, "0123456789abcdefABCDEF") == n;
}

/* Send an AUTH_REQ_AUTH (mech and credentials already in req) and read the verdict. */
static enum login_auth authd_ask(struct login_client *c, struct ipc_msg *req,
				 struct login_result *res)
{
	static struct ipc_msg rep;
	struct login_conf *cf = c->cf;
	const char *user, *ticket;

	if (ipc_put_str(req, "service", cf->protocol) < 0 || ipc_put_str(req, "rip", c->rip) < 0 ||
	    ipc_put_int(req, "ticket", 1) < 0)
		return LOGIN_AUTH_FAILED;	/* only oversized credentials get here */
	if (cf->auth_fd < 0)
		return LOGIN_AUTH_TEMPFAIL;
	if (ipc_call(cf->auth_fd, req, &rep, AUTH_TIMEOUT_MS) < 0) {
		msg_warn("authd request: %m");
		if (errno != ETIMEDOUT)
			cf->broken = true;
		return LOGIN_AUTH_TEMPFAIL;
	}
	if (rep.status == IPC_TEMPFAIL) {
		msg_info("authd: temporary failure for %s: %s", c->rip,
			 ipc_get_str(&rep, "reason") ? ipc_get_str(&rep, "reason") : "-");
		return LOGIN_AUTH_TEMPFAIL;
	}
	if (rep.status != IPC_OK) {
		c->auth_failures++;
		return LOGIN_AUTH_FAILED;
	}
	user = ipc_get_str(&rep, "user");
	ticket = ipc_get_str(&rep, "ticket");
	if (user == NULL || ticket == NULL || !ticket_ok(ticket) ||
	    str_copy(res->user, sizeof(res->user), user) < 0 ||
	    str_copy(res->ticket, sizeof(res->ticket), ticket) < 0) {
		msg_warn("authd accepted a login but gave no usable user and ticket");
		return LOGIN_AUTH_TEMPFAIL;
	}
	return LOGIN_AUTH_OK;
}

static void note_attempt(struct login_client *c, const char *user, size_t ulen,
			 const char *method)
{
	login_log_user(c->user, sizeof(c->user), user, ulen);
	str_copy(c->method, sizeof(c->method), method);
}

/* SASL PLAIN's response: authzid NUL authcid NUL passwd (authd checks the details). */
static enum login_auth auth_plain(struct login_client *c, const unsigned char *resp,
				  size_t len, struct login_result *res)
{
	static struct ipc_msg req;
	const unsigned char *n1 = memchr(resp, '\0', len), *n2 = NULL;
	enum login_auth r;

	if (n1)
		n2 = memchr(n1 + 1, '\0', len - (size_t)(n1 + 1 - resp));
	note_attempt(c, n2 ? (const char *)n1 + 1 : "", n2 ? (size_t)(n2 - n1 - 1) : 0, "PLAIN");
	ipc_msg_init(&req, AUTH_REQ_AUTH, ++c->cf->ipc_id);
	if (n2 == NULL || ipc_put_str(&req, "mech", "PLAIN") < 0 ||
	    ipc_put_bytes(&req, "resp", resp, len) < 0) {
		c->auth_failures++;
		return LOGIN_AUTH_FAILED;
	}
	r = authd_ask(c, &req, res);
	explicit_bzero(req.payload, req.plen);	/* the password is in there */
	return r;
}

enum login_auth login_auth_userpass(struct login_client *c, const char *user,
				    const char *pass, const char *method,
				    struct login_result *res)
{
	static struct ipc_msg req;
	enum login_auth r;

	note_attempt(c, user, strlen(user), method);
	ipc_msg_init(&req, AUTH_REQ_AUTH, ++c->cf->ipc_id);
	if (*user == '\0' || *pass == '\0' || strlen(user) > AUTH_MAX_ADDRESS ||
	    strlen(pass) > AUTH_MAX_PASSWORD || ipc_put_str(&req, "mech", "LOGIN") < 0 ||
	    ipc_put_str(&req, "user", user) < 0 || ipc_put_str(&req, "pass", pass) < 0) {
		c->auth_failures++;
		return LOGIN_AUTH_FAILED;
	}
	r = authd_ask(c, &req, res);
	explicit_bzero(req.payload, req.plen);
	if (r == LOGIN_AUTH_OK)
		str_copy(res->method, sizeof(res->method), method);
	return r;
}

/* ---- SASL ---------------------------------------------------------------------------------- */

struct sasl {
	struct login_client *c;
	login_line_fn *read_line;
	void *arg;
	const char *initial;		/* consumed by the first response */
};

/* One response, decoded into out[0..*outlen). challenge is base64 ("" for none). */
static enum login_auth sasl_step(struct sasl *x, const char *challenge, unsigned char *out,
				 size_t outsize, size_t *outlen)
{
	static char line[LOGIN_SASL_LINE_MAX + 1];
	struct login_client *c = x->c;
	const char *text = x->initial;
	size_t len;
	ssize_t d;

	x->initial = NULL;
	if (text != NULL && strcmp(text, "=") == 0) {
		*outlen = 0;
		return LOGIN_AUTH_OK;
	}
	if (text != NULL) {
		len = strlen(text);
	} else {
		int r;

		(void)stream_printf(c->s, "+ %s\r\n", challenge);
		if (stream_flush(c->s) < 0)
			return LOGIN_AUTH_GONE;
		if (!c->sasl_waiting)
			c->sasl_started = mono_ms();
		c->sasl_waiting = true;
		r = x->read_line(c, x->arg, line, sizeof(line), &len);
		if (r == 0)
			return LOGIN_AUTH_GONE;
		if (r < 0)
			return LOGIN_AUTH_TOOLONG;
		if (len == 1 && line[0] == '*')
			return LOGIN_AUTH_CANCELLED;
		text = line;
	}
	d = base64_decode(text, len, out, outsize);
	explicit_bzero(line, sizeof(line));
	if (d < 0)
		return LOGIN_AUTH_BAD_BASE64;
	*outlen = (size_t)d;
	return LOGIN_AUTH_OK;
}

static enum login_auth sasl_plain(struct sasl *x, struct login_result *res)
{
	static unsigned char resp[SASL_DECODED_MAX];
	size_t len = 0;
	enum login_auth r = sasl_step(x, "", resp, sizeof(resp), &len);

	if (r == LOGIN_AUTH_OK)
		r = auth_plain(x->c, resp, len, res);
	if (r == LOGIN_AUTH_OK)
		str_copy(res->method, sizeof(res->method), "PLAIN");
	explicit_bzero(resp, sizeof(resp));
	return r;
}

static enum login_auth sasl_login(struct sasl *x, struct login_result *res)
{
	static unsigned char user[SASL_DECODED_MAX + 1], pass[SASL_DECODED_MAX + 1];
	size_t ulen = 0, plen = 0;
	enum login_auth r;

	/* "Username:" and "Password:", as every LOGIN client expects. */
	r = sasl_step(x, "VXNlcm5hbWU6", user, sizeof(user) - 1, &ulen);
	if (r == LOGIN_AUTH_OK)
		r = sasl_step(x, "UGFzc3dvcmQ6", pass, sizeof(pass) - 1, &plen);
	user[ulen] = '\0';
	pass[plen] = '\0';
	if (r == LOGIN_AUTH_OK && (memchr(user, '\0', ulen) || memchr(pass, '\0', plen))) {
		note_attempt(x->c, "", 0, "LOGIN");
		x->c->auth_failures++;
		r = LOGIN_AUTH_FAILED;
	} else if (r == LOGIN_AUTH_OK) {
		r = login_auth_userpass(x->c, (char *)user, (char *)pass, "LOGIN", res);
	}
	explicit_bzero(pass, sizeof(pass));
	return r;
}

enum login_auth login_sasl(struct login_client *c, const char *mech, const char *initial,
			   login_line_fn *read_line, void *arg, struct login_result *res)
{
	struct sasl x = { c, read_line, arg, initial };
	enum login_auth r;

	memset(res, 0, sizeof(*res));
	if (strcasecmp(mech, "PLAIN") == 0) {
		str_copy(c->method, sizeof(c->method), "PLAIN");
		r = sasl_plain(&x, res);
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		str_copy(c->method, sizeof(c->method), "LOGIN");
		r = sasl_login(&x, res);
	} else {
		return LOGIN_AUTH_UNSUPPORTED;
	}
	if (r != LOGIN_AUTH_GONE)
		c->sasl_waiting = false;
	return r;
}

/* ---- the session --------------------------------------------------------------------------- */

/* SESSION_REQ_START: 0 with the session's pid, or -1 (logged). */
/* fd: the session's connection; prefix: a pipe of the client's pending input or -1;
 * fail: for a direct handover (fd is the client), what master's child tells the client
 * if it refuses the session, else NULL. */
static int request_session(struct login_client *c, const struct login_result *res,
			   const char *tag, int fd, int prefix, const char *fail, pid_t *mpid)
{
	static struct ipc_msg req, rep;
	struct login_conf *cf = c->cf;
	int64_t pid;

	ipc_msg_init(&req, SESSION_REQ_START, ++cf->ipc_id);
	if (ipc_put_str(&req, "ticket", res->ticket) < 0 ||
	    ipc_put_str(&req, "service", cf->protocol) < 0 ||
	    ipc_put_str(&req, "rip", c->rip) < 0 || ipc_put_str(&req, "lip", c->lip) < 0 ||
	    ipc_put_int(&req, "rport", c->rport) < 0 || ipc_put_int(&req, "lport", c->lport) < 0 ||
	    ipc_put_int(&req, "tls", c->tls) < 0 || ipc_put_str(&req, "tag", tag) < 0 ||
	    ipc_put_str(&req, "method", res->method) < 0 || ipc_put_fd(&req, fd) < 0 ||
	    (prefix >= 0 && ipc_put_fd(&req, prefix) < 0) ||
	    (fail && (ipc_put_int(&req, "direct", 1) < 0 || ipc_put_str(&req, "fail", fail) < 0))) {
		msg_warn("cannot build the session request: %m");
		return -1;
	}
	if (cf->master_fd < 0)
		return -1;
	if (ipc_call(cf->master_fd, &req, &rep, SESSION_TIMEOUT_MS) < 0) {
		msg_warn("master session request: %m");
		if (errno != ETIMEDOUT)
			cf->broken = true;
		return -1;
	}
	if (rep.status != IPC_OK || ipc_get_int(&rep, "pid", &pid) < 0 || pid <= 0) {
		msg_warn("master did not start a session for %s: %s", res->user,
			 ipc_get_str(&rep, "reason") ? ipc_get_str(&rep, "reason") : "no pid");
		return -1;
	}
	*mpid = (pid_t)pid;
	return 0;
}

/* The session's first bytes (its tagged OK): count, or 0 if it closed or never spoke. */
static ssize_t first_bytes(int fd, char *buf, size_t size)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t deadline = mono_ms() + LOGIN_START_TIMEOUT_MS;
	ssize_t n;

	for (;;) {
		int64_t left = deadline - mono_ms();
		int r;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return 0;
		if (r > 0)
			break;
	}
	do
		n = read(fd, buf, size);
	while (n < 0 && errno == EINTR);
	return n > 0 ? n : 0;
}

static void log_login(struct login_client *c, const struct login_result *res, pid_t mpid,
		      bool ok)
{
	char user[AUTH_MAX_ADDRESS + 1];

	c->logged = true;
	login_log_user(user, sizeof(user), res->user, strlen(res->user));
	if (ok)
		msg_tagged(c->cf->log_tag, "Info: Login: user=<%s>, method=%s, rip=%s, lip=%s, "
			   "mpid=%d%s, session=<%s>", user, res->method, c->rip, c->lip, (int)mpid,
			   c->tls ? ", TLS" : "", c->session_id);
	else
		msg_tagged(c->cf->log_tag, "Error: Internal login failure: the session did not "
			   "start: user=<%s>, method=%s, rip=%s, lip=%s, mpid=%d%s, session=<%s>",
			   user, res->method, c->rip, c->lip, (int)mpid, c->tls ? ", TLS" : "",
			   c->session_id);
}

/* A client without TLS needs no proxy: the session gets the client's connection itself
 * (and, through a pipe, what the client already sent after its login), and this process
 * is free for the next client (DESIGN.md §1). 0 done, -1 refused (the client was told),
 * 1 not possible (too much pending input for a pipe): proxy instead. */
static int hand_over(struct login_client *c, const struct login_result *res, const char *tag,
		     const void *pending, size_t npending, const char *fail_reply)
{
	static char more[16384];
	size_t nmore = 0;
	pid_t mpid = 0;
	int p[2] = { -1, -1 }, rc = -1;

	while (stream_pending(c->s) > 0 && nmore < sizeof(more)) {
		ssize_t n = stream_read(c->s, more + nmore, sizeof(more) - nmore);

		if (n <= 0)
			break;
		nmore += (size_t)n;
	}
	if (stream_pending(c->s) > 0 || npending + nmore > 60000)
		return 1;	/* more than a pipe holds without a reader */
	if (npending + nmore > 0) {
		if (pipe2(p, O_CLOEXEC) < 0 || write_all(p[1], pending, npending) < 0 ||
		    write_all(p[1], more, nmore) < 0) {
			msg_warn("pending input pipe: %m");
			goto out;
		}
		close(p[1]);
		p[1] = -1;
	}
	rc = request_session(c, res, tag, stream_fd(c->s), p[0], fail_reply, &mpid);
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	log_login(c, res, mpid, rc == 0);
	if (rc < 0) {
		(void)stream_puts(c->s, fail_reply);
		(void)stream_flush(c->s);
	}
	return rc;
}

int login_session(struct login_client *c, const struct login_result *res, const char *tag,
		  const void *pending, size_t npending, const char *fail_reply)
{
	static char first[PROXY_BUF_SIZE];
	struct proxy_stats st;
	pid_t mpid = 0;
	ssize_t n = 0;
	int sp[2], r;

	if (!c->tls && (r = hand_over(c, res, tag, pending, npending, fail_reply)) <= 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		msg_warn("socketpair: %m");
		sp[0] = sp[1] = -1;
	} else if (request_session(c, res, tag, sp[1], -1, NULL, &mpid) < 0) {
		close(sp[1]);
		sp[1] = -1;
	} else {
		close(sp[1]);
		if (npending == 0 || write_all(sp[0], pending, npending) == 0)
			n = first_bytes(sp[0], first, sizeof(first));
	}
	if (n <= 0) {
		log_login(c, res, mpid, false);
		(void)stream_puts(c->s, fail_reply);
		(void)stream_flush(c->s);
		if (sp[0] >= 0)
			close(sp[0]);
		return -1;
	}
	log_login(c, res, mpid, true);
	if (stream_write(c->s, first, (size_t)n) == 0)
		proxy_run(c->s, sp[0], &st);
	close(sp[0]);
	return 0;
}

/* ---- the program ------------------------------------------------------------------------ */

static struct {
	struct login_conf cf;
	const char *protocol, *log_tag, *plaintext_param;
	login_serve_fn *serve;
} LP;

static void login_pre_drop(struct server *srv)
{
	bool implicit_tls = false;

	for (int i = 0; i < srv->argc; i++) {
		if (strcmp(srv->argv[i], "-t") == 0)
			implicit_tls = true;
		else
			msg_fatal("unknown argument: %s (want -t for implicit TLS)", srv->argv[i]);
	}
	login_init(&LP.cf, srv, LP.protocol, LP.log_tag, implicit_tls,
		   conf_bool(srv->cfg, LP.plaintext_param));
}

static void login_post_drop_hook(struct server *srv)
{
	(void)srv;
	login_post_drop(&LP.cf);
}

static void login_serve_hook(struct server *srv, int fd, int listener,
			     const struct sockaddr *peer, socklen_t peerlen)
{
	(void)srv, (void)listener, (void)peerlen;
	LP.serve(&LP.cf, fd, peer);
}

void login_main(int argc, char **argv, const char *protocol, const char *log_tag,
		const char *plaintext_param, login_serve_fn *serve)
{
	static const struct server_hooks hooks = {
		.pre_drop = login_pre_drop,
		.post_drop = login_post_drop_hook,
		.serve = login_serve_hook,
	};

	LP.protocol = protocol;
	LP.log_tag = log_tag;
	LP.plaintext_param = plaintext_param;
	LP.serve = serve;
	server_main(argc, argv, SERVER_POOL_MODE, &hooks);
}

/* ---- the disconnect line ------------------------------------------------------------------- */

void login_log_disconnect(struct login_client *c, const char *reason)
{
	int64_t now = mono_ms();
	int secs = (int)((now - c->started) / 1000);
	char detail[128], method[40] = "";

	if (c->logged)
		return;
	c->logged = true;
	if (c->sasl_waiting)
		(void)str_fmt(detail, sizeof(detail), "client didn't finish SASL auth, waited %d secs",
			      (int)((now - c->sasl_started) / 1000));
	else if (c->auth_failures > 0)
		(void)str_fmt(detail, sizeof(detail), "auth failed, %d attempts in %d secs",
			      c->auth_failures, secs);
	else if (c->plaintext_refused)
		(void)str_copy(detail, sizeof(detail), "tried to use disallowed plaintext auth");
	else
		(void)str_fmt(detail, sizeof(detail), "no auth attempts in %d secs", secs);
	if (c->method[0])
		(void)str_fmt(method, sizeof(method), ", method=%s", c->method);
	msg_tagged(c->cf->log_tag, "Info: Disconnected: %s (%s): user=<%s>%s, rip=%s, lip=%s%s, "
		   "session=<%s>", reason, detail, c->user, method, c->rip, c->lip,
		   c->tls ? ", TLS" : "", c->session_id);
}
