/*
 * ipc.c: the framing library of every internal protocol (DESIGN.md §3): building frames,
 * encoding them, decoding them strictly (this code is fuzzed: every length is checked before
 * it is used), and moving them over SOCK_SEQPACKET sockets with SCM_RIGHTS descriptors.
 * Socket setup (listen, connect, peer credentials) lives in ipc_sock.c.
 *
 * A message keeps its attributes twice: encoded in payload (so sending is one sendmsg of
 * header + payload) and indexed in attr[] (so lookups need no parsing). put_* and decode
 * maintain both through the same index_attr(), so a built and a decoded message look alike.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ipc.h"
#include "util.h"

#define IPC_VERSION	1
#define ATTR_FIXED	6	/* kind(1) keylen(1) vlen(4) */

/* A control buffer for IPC_MAX_FDS descriptors, aligned for struct cmsghdr. */
union fd_control {
	char buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
	struct cmsghdr align;
};

static void put_be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

static void put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint16_t get_be16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get_be32(const unsigned char *p)
{
	return ((uint32_t)get_be16(p) << 16) | get_be16(p + 2);
}

static uint64_t get_be64(const unsigned char *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

static bool valid_key(const unsigned char *k, size_t n)
{
	if (n < 1 || n > IPC_MAX_KEY)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = k[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* ---- building ---------------------------------------------------------------------------- */

void ipc_msg_init(struct ipc_msg *m, uint16_t type, uint32_t id)
{
	m->type = type;
	m->status = IPC_OK;
	m->id = id;
	m->nfds = 0;
	for (int i = 0; i < IPC_MAX_FDS; i++)
		m->fds[i] = -1;
	m->nattr = 0;
	m->plen = 0;
	m->slen = 0;
}

void ipc_reply_init(struct ipc_msg *reply, const struct ipc_msg *req, enum ipc_status st)
{
	ipc_msg_init(reply, req->type, req->id);
	reply->status = (uint16_t)st;
}

/* Record an attribute whose key and value already sit in m->payload. The caller has checked
 * the key, the kind-specific value rules, the attribute count and uniqueness. */
static int index_attr(struct ipc_msg *m, enum ipc_kind kind, const unsigned char *key,
		      size_t keylen, const unsigned char *val, uint32_t len)
{
	struct ipc_attr *a = &m->attr[m->nattr];

	a->kind = kind;
	memcpy(a->key, key, keylen);
	a->key[keylen] = '\0';
	a->val = val;
	a->len = len;
	a->ival = kind == IPC_INT ? (int64_t)get_be64(val) : 0;
	a->str = NULL;
	if (kind == IPC_STR) {
		/* Cannot trigger (see ipc.h), but an overrun here must be impossible. */
		if ((size_t)len >= sizeof(m->strs) - m->slen) {
			errno = EMSGSIZE;
			return -1;
		}
		memcpy(m->strs + m->slen, val, len);
		m->strs[m->slen + len] = '\0';
		a->str = m->strs + m->slen;
		m->slen += (size_t)len + 1;
	}
	m->nattr++;
	return 0;
}

static int put_attr(struct ipc_msg *m, enum ipc_kind kind, const char *key,
		    const void *val, size_t n)
{
	size_t keylen = strnlen(key, IPC_MAX_KEY + 1);
	size_t room = IPC_MAX_PAYLOAD - m->plen;
	unsigned char *p = m->payload + m->plen;

	if (!valid_key((const unsigned char *)key, keylen) || ipc_get(m, key) != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (m->nattr >= IPC_MAX_ATTRS || n > room || ATTR_FIXED + keylen > room - n) {
		errno = EMSGSIZE;
		return -1;
	}
	p[0] = (unsigned char)kind;
	p[1] = (unsigned char)keylen;
	memcpy(p + 2, key, keylen);
	put_be32(p + 2 + keylen, (uint32_t)n);
	if (n > 0)
		memcpy(p + ATTR_FIXED + keylen, val, n);
	if (index_attr(m, kind, p + 2, keylen, p + ATTR_FIXED + keylen, (uint32_t)n) < 0)
		return -1;
	m->plen += ATTR_FIXED + keylen + n;
	return 0;
}

int ipc_put_strn(struct ipc_msg *m, const char *key, const char *s, size_t n)
{
	if (n > 0 && memchr(s, '\0', n) != NULL) {
		errno = EINVAL;
		return -1;
	}
	return put_attr(m, IPC_STR, key, s, n);
}

int ipc_put_str(struct ipc_msg *m, const char *key, const char *s)
{
	return ipc_put_strn(m, key, s, strlen(s));
}

int ipc_put_bytes(struct ipc_msg *m, const char *key, const void *p, size_t n)
{
	return put_attr(m, IPC_BYTES, key, p, n);
}

int ipc_put_int(struct ipc_msg *m, const char *key, int64_t v)
{
	unsigned char be[8];

	put_be64(be, (uint64_t)v);
	return put_attr(m, IPC_INT, key, be, sizeof(be));
}

int ipc_put_fd(struct ipc_msg *m, int fd)
{
	if (fd < 0) {
		errno = EINVAL;
		return -1;
	}
	if (m->nfds < 0 || m->nfds >= IPC_MAX_FDS) {
		errno = EMSGSIZE;
		return -1;
	}
	m->fds[m->nfds++] = fd;
	return 0;
}

/* ---- encoding and decoding --------------------------------------------------------------- */

static int encode_header(const struct ipc_msg *m, unsigned char *h)
{
	if (m->plen > IPC_MAX_PAYLOAD || m->nfds < 0 || m->nfds > IPC_MAX_FDS ||
	    m->status > IPC_TEMPFAIL) {
		errno = EINVAL;
		return -1;
	}
	h[0] = 'P';
	h[1] = 'N';
	h[2] = IPC_VERSION;
	h[3] = (unsigned char)m->nfds;
	put_be16(h + 4, m->type);
	put_be16(h + 6, m->status);
	put_be32(h + 8, m->id);
	put_be32(h + 12, (uint32_t)m->plen);
	return 0;
}

int ipc_encode(const struct ipc_msg *m, unsigned char *out, size_t outsize, size_t *outlen)
{
	unsigned char h[IPC_HDR_LEN];

	if (encode_header(m, h) < 0)
		return -1;
	if (outsize < IPC_HDR_LEN + m->plen) {
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(out, h, IPC_HDR_LEN);
	memcpy(out + IPC_HDR_LEN, m->payload, m->plen);
	*outlen = IPC_HDR_LEN + m->plen;
	return 0;
}

/* Check the header of a record of framelen bytes and start m from it. */
static int decode_header(struct ipc_msg *m, const unsigned char *h, size_t framelen)
{
	if (framelen < IPC_HDR_LEN || framelen > IPC_MAX_FRAME || h[0] != 'P' || h[1] != 'N' ||
	    h[2] != IPC_VERSION || h[3] > IPC_MAX_FDS || get_be16(h + 6) > IPC_TEMPFAIL ||
	    get_be32(h + 12) != framelen - IPC_HDR_LEN) {
		errno = EPROTO;
		return -1;
	}
	ipc_msg_init(m, get_be16(h + 4), get_be32(h + 8));
	m->status = get_be16(h + 6);
	m->nfds = h[3];		/* the count announced; the descriptors are the caller's job */
	m->plen = framelen - IPC_HDR_LEN;
	return 0;
}

/* Parse src[0..m->plen), which holds the same bytes as m->payload (it is the caller's frame
 * or m->payload itself), and index it into m. One attribute at a time, each length is
 * checked against what is left before anything is read. Reading the caller's exact-size
 * buffer rather than the copy in the larger payload array lets the fuzzer's AddressSanitizer
 * see any read past the end of the frame. */
static int parse_payload(struct ipc_msg *m, const unsigned char *src)
{
	size_t off = 0;

	while (off < m->plen) {
		const unsigned char *p = src + off;
		size_t left = m->plen - off;
		unsigned kind, keylen;
		uint32_t vlen;
		const unsigned char *val;
		char key[IPC_MAX_KEY + 1];

		if (left < ATTR_FIXED)
			goto bad;
		kind = p[0];
		keylen = p[1];
		if (kind < IPC_STR || kind > IPC_BYTES || keylen > left - ATTR_FIXED ||
		    !valid_key(p + 2, keylen))
			goto bad;
		vlen = get_be32(p + 2 + keylen);
		val = p + ATTR_FIXED + keylen;
		if (vlen > left - ATTR_FIXED - keylen || (kind == IPC_INT && vlen != 8) ||
		    (kind == IPC_STR && memchr(val, '\0', vlen) != NULL) ||
		    m->nattr >= IPC_MAX_ATTRS)
			goto bad;
		memcpy(key, p + 2, keylen);
		key[keylen] = '\0';
		if (ipc_get(m, key) != NULL ||
		    index_attr(m, (enum ipc_kind)kind, p + 2, keylen, m->payload + (val - src),
			       vlen) < 0)
			goto bad;
		off += ATTR_FIXED + keylen + vlen;
	}
	return 0;
bad:
	errno = EPROTO;
	return -1;
}

/* A message that failed to decode holds nothing a careless caller could use. */
static int decode_failed(struct ipc_msg *m)
{
	m->nfds = 0;
	m->nattr = 0;
	m->plen = 0;
	m->slen = 0;
	errno = EPROTO;
	return -1;
}

int ipc_decode(struct ipc_msg *m, const unsigned char *frame, size_t len)
{
	if (len < IPC_HDR_LEN || decode_header(m, frame, len) < 0)
		return decode_failed(m);
	memmove(m->payload, frame + IPC_HDR_LEN, m->plen);
	if (parse_payload(m, frame + IPC_HDR_LEN) < 0)
		return decode_failed(m);
	return 0;
}

/* ---- lookup ------------------------------------------------------------------------------ */

const struct ipc_attr *ipc_get(const struct ipc_msg *m, const char *key)
{
	for (size_t i = 0; i < m->nattr; i++)
		if (strcmp(m->attr[i].key, key) == 0)
			return &m->attr[i];
	return NULL;
}

const char *ipc_get_str(const struct ipc_msg *m, const char *key)
{
	const struct ipc_attr *a = ipc_get(m, key);

	return a != NULL && a->kind == IPC_STR ? a->str : NULL;
}

int ipc_get_int(const struct ipc_msg *m, const char *key, int64_t *v)
{
	const struct ipc_attr *a = ipc_get(m, key);

	if (a == NULL || a->kind != IPC_INT)
		return -1;
	*v = a->ival;
	return 0;
}

int ipc_check_keys(const struct ipc_msg *m, const char *const *allowed)
{
	for (size_t i = 0; i < m->nattr; i++) {
		size_t j = 0;

		while (allowed[j] != NULL && strcmp(allowed[j], m->attr[i].key) != 0)
			j++;
		if (allowed[j] == NULL) {
			errno = EPROTO;
			return -1;
		}
	}
	return 0;
}

/* ---- sockets ----------------------------------------------------------------------------- */

void ipc_close_fds(struct ipc_msg *m)
{
	for (int i = 0; i < m->nfds && i < IPC_MAX_FDS; i++) {
		if (m->fds[i] >= 0)
			(void)close(m->fds[i]);
		m->fds[i] = -1;
	}
	m->nfds = 0;
}

static int send_frame(int sock, const struct ipc_msg *m, int flags)
{
	unsigned char hdr[IPC_HDR_LEN];
	union fd_control ctl;
	struct iovec iov[2];
	struct msghdr mh;
	ssize_t n;

	if (encode_header(m, hdr) < 0)
		return -1;
	iov[0] = (struct iovec){ .iov_base = hdr, .iov_len = sizeof(hdr) };
	/* sendmsg does not write through iov_base; the cast only drops const. */
	iov[1] = (struct iovec){ .iov_base = (void *)(uintptr_t)m->payload, .iov_len = m->plen };
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = m->plen > 0 ? 2 : 1;
	if (m->nfds > 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)m->nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)m->nfds);
		memcpy(CMSG_DATA(c), m->fds, sizeof(int) * (size_t)m->nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n != IPC_HDR_LEN + m->plen) {	/* a record is atomic; cannot happen */
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

int ipc_send(int sock, const struct ipc_msg *m)
{
	return send_frame(sock, m, 0);
}

/* Move the descriptors of every SCM_RIGHTS message into fds[]; return how many, or -1 if
 * anything else arrived or there were too many (those that did not fit are closed here,
 * the ones in fds[] are left for the caller to close). */
static int collect_fds(struct msghdr *mh, int fds[IPC_MAX_FDS], int *count)
{
	int ok = 0;

	*count = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0)) {
			ok = -1;
			continue;
		}
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*count < IPC_MAX_FDS) {
				fds[(*count)++] = fd;
			} else {
				(void)close(fd);
				ok = -1;
			}
		}
	}
	return ok;
}

static int recv_frame(int sock, struct ipc_msg *m, int flags)
{
	unsigned char hdr[IPC_HDR_LEN], spare;
	union fd_control ctl;
	struct iovec iov[3];
	struct msghdr mh;
	int fds[IPC_MAX_FDS], nfds;
	ssize_t n;
	bool good;

	iov[0] = (struct iovec){ .iov_base = hdr, .iov_len = sizeof(hdr) };
	iov[1] = (struct iovec){ .iov_base = m->payload, .iov_len = sizeof(m->payload) };
	iov[2] = (struct iovec){ .iov_base = &spare, .iov_len = 1 };	/* oversize detection */
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 3;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	good = collect_fds(&mh, fds, &nfds) == 0;
	if (n == 0 && good && nfds == 0)
		return 0;			/* orderly EOF */
	good = good && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
	       decode_header(m, hdr, (size_t)n) == 0 && parse_payload(m, m->payload) == 0 &&
	       nfds == m->nfds;
	if (!good) {
		for (int i = 0; i < nfds; i++)
			(void)close(fds[i]);
		return decode_failed(m);
	}
	memcpy(m->fds, fds, sizeof(int) * (size_t)nfds);
	return 1;
}

int ipc_recv(int sock, struct ipc_msg *m)
{
	return recv_frame(sock, m, 0);
}

/* Wait until sock has one of events or the deadline (mono_ms; -1 = none) passes. */
static int wait_until(int sock, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = sock, .events = events };
		int64_t left = deadline < 0 ? -1 : deadline - mono_ms();
		int r;

		if (deadline >= 0 && left < 0)
			left = 0;
		r = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r > 0) {
			if (pfd.revents & POLLNVAL) {
				errno = EBADF;
				return -1;
			}
			return 0;	/* readiness, hangup or error: the next call reports it */
		}
		if (r == 0 && deadline >= 0 && mono_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* timeout_ms < 0 waits without limit (callers should not; DESIGN.md wants a timeout). */
int ipc_call(int sock, const struct ipc_msg *req, struct ipc_msg *reply, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	uint32_t id = req->id;

	while (send_frame(sock, req, MSG_DONTWAIT) < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (wait_until(sock, POLLOUT, deadline) < 0)
			return -1;
	}
	for (;;) {
		int r;

		if (wait_until(sock, POLLIN, deadline) < 0)
			return -1;
		r = recv_frame(sock, reply, MSG_DONTWAIT);
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (r > 0 && reply->id == id)
			return 0;
		if (r > 0)
			ipc_close_fds(reply);	/* a late answer to an earlier, abandoned call */
	}
}
