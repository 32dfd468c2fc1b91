/*
 * test_ipc.c: unit tests of lib/ipc.c and lib/ipc_sock.c: round trips of every attribute
 * kind, descriptor passing, peer credentials, listen/connect, ipc_call with a forked server
 * (answer, stale answer, silence, hangup), every strict-decoding rule with hand-made frames,
 * and the limits of the put functions.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc.h"
#include "t.h"
#include "util.h"

/* Messages are large (two 64 KiB buffers): keep them out of the stack. */
static struct ipc_msg msg_a, msg_b;
static unsigned char frame[IPC_MAX_FRAME + 64];

static void seqpair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		exit(2);
	}
}

/* Open descriptors of this process, to catch leaks. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* ---- hand-made frames -------------------------------------------------------------------- */

static size_t raw_hdr(unsigned char *f, unsigned nfds, unsigned status, uint32_t len)
{
	f[0] = 'P';
	f[1] = 'N';
	f[2] = 1;
	f[3] = (unsigned char)nfds;
	f[4] = 0x12;			/* type 0x1234 */
	f[5] = 0x34;
	f[6] = (unsigned char)(status >> 8);
	f[7] = (unsigned char)status;
	f[8] = 0xde;			/* id 0xdeadbeef */
	f[9] = 0xad;
	f[10] = 0xbe;
	f[11] = 0xef;
	f[12] = (unsigned char)(len >> 24);
	f[13] = (unsigned char)(len >> 16);
	f[14] = (unsigned char)(len >> 8);
	f[15] = (unsigned char)len;
	return IPC_HDR_LEN;
}

/* Append one attribute at f+off; returns the new offset. */
static size_t raw_attr(unsigned char *f, size_t off, unsigned kind, const char *key, size_t keylen,
		       const void *val, uint32_t vlen)
{
	f[off++] = (unsigned char)kind;
	f[off++] = (unsigned char)keylen;
	memcpy(f + off, key, keylen);
	off += keylen;
	f[off++] = (unsigned char)(vlen >> 24);
	f[off++] = (unsigned char)(vlen >> 16);
	f[off++] = (unsigned char)(vlen >> 8);
	f[off++] = (unsigned char)vlen;
	if (vlen > 0)
		memcpy(f + off, val, vlen);
	return off + vlen;
}

/* Fix the header's length field to match a frame of total size len. */
static void raw_fix_len(unsigned char *f, size_t len)
{
	uint32_t pl = (uint32_t)(len - IPC_HDR_LEN);

	f[12] = (unsigned char)(pl >> 24);
	f[13] = (unsigned char)(pl >> 16);
	f[14] = (unsigned char)(pl >> 8);
	f[15] = (unsigned char)pl;
}

/* Decode must fail with EPROTO and leave no attributes behind. */
static void expect_reject(const unsigned char *f, size_t len, int line)
{
	errno = 0;
	if (ipc_decode(&msg_a, f, len) != -1 || errno != EPROTO || msg_a.nattr != 0) {
		fprintf(stderr, "%s:%d: frame of %zu bytes was not rejected with EPROTO\n",
			__FILE__, line, len);
		t_failures++;
	}
	t_checks++;
}
#define REJECT(f, len) expect_reject((f), (len), __LINE__)

/* ---- building, encoding, round trips ----------------------------------------------------- */

static void fill_every_kind(struct ipc_msg *m)
{
	static const unsigned char bin[] = { 0, 1, 2, 0xff, 0, 'x' };

	ipc_msg_init(m, 7, 42);
	m->status = IPC_PERMFAIL;
	T_EQ_INT(ipc_put_str(m, "reason", "5.1.1 no such user"), 0);
	T_EQ_INT(ipc_put_str(m, "empty", ""), 0);
	T_EQ_INT(ipc_put_strn(m, "part", "abcdef", 3), 0);
	T_EQ_INT(ipc_put_int(m, "min", INT64_MIN), 0);
	T_EQ_INT(ipc_put_int(m, "max", INT64_MAX), 0);
	T_EQ_INT(ipc_put_int(m, "neg_1", -1), 0);
	T_EQ_INT(ipc_put_bytes(m, "blob", bin, sizeof(bin)), 0);
	T_EQ_INT(ipc_put_bytes(m, "none", NULL, 0), 0);
}

static void check_every_kind(const struct ipc_msg *m)
{
	static const unsigned char bin[] = { 0, 1, 2, 0xff, 0, 'x' };
	const struct ipc_attr *a;
	int64_t v = 0;

	T_EQ_INT(m->type, 7);
	T_EQ_INT(m->id, 42);
	T_EQ_INT(m->status, IPC_PERMFAIL);
	T_EQ_INT(m->nattr, 8);
	T_EQ_STR(ipc_get_str(m, "reason"), "5.1.1 no such user");
	T_EQ_STR(ipc_get_str(m, "empty"), "");
	T_EQ_STR(ipc_get_str(m, "part"), "abc");
	T_CHECK(ipc_get_int(m, "min", &v) == 0 && v == INT64_MIN);
	T_CHECK(ipc_get_int(m, "max", &v) == 0 && v == INT64_MAX);
	T_CHECK(ipc_get_int(m, "neg_1", &v) == 0 && v == -1);
	a = ipc_get(m, "blob");
	T_CHECK(a != NULL && a->kind == IPC_BYTES && a->len == sizeof(bin) &&
		memcmp(a->val, bin, sizeof(bin)) == 0);
	a = ipc_get(m, "none");
	T_CHECK(a != NULL && a->kind == IPC_BYTES && a->len == 0);
	/* wrong kind or absent */
	T_CHECK(ipc_get_str(m, "blob") == NULL);
	T_CHECK(ipc_get_str(m, "min") == NULL);
	T_CHECK(ipc_get_int(m, "reason", &v) == -1);
	T_CHECK(ipc_get(m, "absent") == NULL);
	T_CHECK(ipc_get_str(m, "absent") == NULL);
}

static void test_encode_decode(void)
{
	size_t len = 0;

	fill_every_kind(&msg_a);
	check_every_kind(&msg_a);		/* a built message answers lookups too */
	T_EQ_INT(ipc_encode(&msg_a, frame, sizeof(frame), &len), 0);
	T_EQ_INT(len, IPC_HDR_LEN + msg_a.plen);
	T_CHECK(memcmp(frame, "PN\001\000\000\007\000\001\000\000\000\052", 12) == 0);
	T_EQ_INT(ipc_decode(&msg_b, frame, len), 0);
	check_every_kind(&msg_b);
	T_EQ_INT(msg_b.nfds, 0);
	/* too small an output buffer, bad status */
	errno = 0;
	T_CHECK(ipc_encode(&msg_a, frame, len - 1, &len) == -1 && errno == EMSGSIZE);
	msg_a.status = 3;
	errno = 0;
	T_CHECK(ipc_encode(&msg_a, frame, sizeof(frame), &len) == -1 && errno == EINVAL);
	/* an empty message is a bare header */
	ipc_msg_init(&msg_a, 1, 2);
	T_EQ_INT(ipc_encode(&msg_a, frame, sizeof(frame), &len), 0);
	T_EQ_INT(len, IPC_HDR_LEN);
	T_EQ_INT(ipc_decode(&msg_b, frame, len), 0);
	T_EQ_INT(msg_b.nattr, 0);
}

static void test_socket_roundtrip(void)
{
	int sv[2];

	seqpair(sv);
	fill_every_kind(&msg_a);
	T_EQ_INT(ipc_send(sv[0], &msg_a), 0);
	T_EQ_INT(ipc_recv(sv[1], &msg_b), 1);
	check_every_kind(&msg_b);
	/* a reply keeps type and id */
	ipc_reply_init(&msg_a, &msg_b, IPC_TEMPFAIL);
	T_EQ_INT(ipc_send(sv[1], &msg_a), 0);
	T_EQ_INT(ipc_recv(sv[0], &msg_b), 1);
	T_EQ_INT(msg_b.type, 7);
	T_EQ_INT(msg_b.id, 42);
	T_EQ_INT(msg_b.status, IPC_TEMPFAIL);
	T_EQ_INT(msg_b.nattr, 0);
	/* the largest frame crosses the socket whole */
	ipc_msg_init(&msg_a, 3, 3);
	memset(frame, 'z', IPC_MAX_PAYLOAD);
	T_EQ_INT(ipc_put_bytes(&msg_a, "big", frame, IPC_MAX_PAYLOAD - 6 - 3), 0);
	T_EQ_INT(msg_a.plen, IPC_MAX_PAYLOAD);
	T_EQ_INT(ipc_send(sv[0], &msg_a), 0);
	T_EQ_INT(ipc_recv(sv[1], &msg_b), 1);
	T_CHECK(ipc_get(&msg_b, "big") != NULL && ipc_get(&msg_b, "big")->len == IPC_MAX_PAYLOAD - 9);
	/* orderly EOF */
	close(sv[0]);
	T_EQ_INT(ipc_recv(sv[1], &msg_b), 0);
	close(sv[1]);
}

/* ---- descriptors ------------------------------------------------------------------------- */

static void test_fd_passing(void)
{
	int sv[2], p1[2], p2[2];
	char got[8] = { 0 };

	seqpair(sv);
	T_EQ_INT(pipe2(p1, O_CLOEXEC), 0);
	T_EQ_INT(pipe2(p2, O_CLOEXEC), 0);
	ipc_msg_init(&msg_a, 9, 1);
	T_EQ_INT(ipc_put_str(&msg_a, "what", "pipes"), 0);
	T_EQ_INT(ipc_put_fd(&msg_a, p1[1]), 0);
	T_EQ_INT(ipc_put_fd(&msg_a, p2[1]), 0);
	T_EQ_INT(ipc_send(sv[0], &msg_a), 0);
	close(p1[1]);
	close(p2[1]);
	T_EQ_INT(ipc_recv(sv[1], &msg_b), 1);
	T_EQ_INT(msg_b.nfds, 2);
	T_EQ_STR(ipc_get_str(&msg_b, "what"), "pipes");
	T_CHECK(fcntl(msg_b.fds[0], F_GETFD) & FD_CLOEXEC);
	/* the received descriptors are the pipes' write ends */
	T_EQ_INT(write(msg_b.fds[0], "one", 3), 3);
	T_EQ_INT(write(msg_b.fds[1], "two", 3), 3);
	T_EQ_INT(read(p1[0], got, sizeof(got)), 3);
	T_CHECK(memcmp(got, "one", 3) == 0);
	T_EQ_INT(read(p2[0], got, sizeof(got)), 3);
	T_CHECK(memcmp(got, "two", 3) == 0);
	ipc_close_fds(&msg_b);
	T_EQ_INT(msg_b.nfds, 0);
	/* all write ends are gone now: the readers see EOF */
	T_EQ_INT(read(p1[0], got, sizeof(got)), 0);
	T_EQ_INT(read(p2[0], got, sizeof(got)), 0);
	close(p1[0]);
	close(p2[0]);
	close(sv[0]);
	close(sv[1]);
}

/* Send a raw record with nfds descriptors (each a dup of fd); -1 if sendmsg failed. */
static int send_raw(int sock, const unsigned char *f, size_t len, int fd, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)f, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[8];

	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		for (int i = 0; i < nfds; i++)
			fds[i] = fd;
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* A bad record carrying nfds copies of a pipe's write end must be refused and every copy
 * closed: once we close our own end, the reader sees EOF. */
static void reject_with_fds(const unsigned char *f, size_t len, int nfds, int line)
{
	int sv[2], p[2];
	char c;
	int before = t_failures;

	seqpair(sv);
	if (pipe2(p, O_CLOEXEC) < 0)
		exit(2);
	T_EQ_INT(send_raw(sv[0], f, len, p[1], nfds), 0);
	close(p[1]);
	errno = 0;
	T_EQ_INT(ipc_recv(sv[1], &msg_b), -1);
	T_EQ_INT(errno, EPROTO);
	T_EQ_INT(fd_set_nonblock(p[0], 1), 0);
	T_EQ_INT(read(p[0], &c, 1), 0);
	if (t_failures != before)
		fprintf(stderr, "  (from line %d)\n", line);
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}

static void test_recv_rejects(void)
{
	size_t len = raw_hdr(frame, 0, 0, 0);
	static unsigned char huge[IPC_MAX_FRAME + 100];

	reject_with_fds(frame, len, 1, __LINE__);		/* fd the header does not announce */
	raw_hdr(frame, 2, 0, 0);
	reject_with_fds(frame, len, 1, __LINE__);		/* fewer than announced */
	raw_hdr(frame, 4, 0, 0);
	reject_with_fds(frame, len, 5, __LINE__);		/* more than IPC_MAX_FDS */
	raw_hdr(frame, 1, 0, 0);
	frame[0] = 'X';
	reject_with_fds(frame, len, 1, __LINE__);		/* bad frame with its fd */
	reject_with_fds(frame, 10, 0, __LINE__);		/* short record */
	/* one byte more than the largest frame, and far more (MSG_TRUNC) */
	raw_hdr(huge, 0, 0, IPC_MAX_PAYLOAD + 1);
	raw_attr(huge, IPC_HDR_LEN, IPC_BYTES, "b", 1, frame, IPC_MAX_PAYLOAD - 6);
	reject_with_fds(huge, IPC_MAX_FRAME + 1, 0, __LINE__);
	raw_fix_len(huge, sizeof(huge));
	reject_with_fds(huge, sizeof(huge), 1, __LINE__);
	/* and a good frame with its announced fd still works */
	raw_hdr(frame, 1, 0, 0);
	{
		int sv[2], p[2];

		seqpair(sv);
		T_EQ_INT(pipe2(p, O_CLOEXEC), 0);
		T_EQ_INT(send_raw(sv[0], frame, len, p[1], 1), 0);
		T_EQ_INT(ipc_recv(sv[1], &msg_b), 1);
		T_EQ_INT(msg_b.nfds, 1);
		T_EQ_INT(msg_b.type, 0x1234);
		T_EQ_INT(msg_b.id, 0xdeadbeef);
		ipc_close_fds(&msg_b);
		close(p[0]);
		close(p[1]);
		close(sv[0]);
		close(sv[1]);
	}
}

/* ---- strict decoding --------------------------------------------------------------------- */

static void test_decode_rejects(void)
{
	static const unsigned char eight[16] = { 0 };	/* room for the too-long int */
	size_t off, i;
	char key[40];

	/* truncated header */
	raw_hdr(frame, 0, 0, 0);
	REJECT(frame, 0);
	REJECT(frame, 1);
	REJECT(frame, IPC_HDR_LEN - 1);
	T_EQ_INT(ipc_decode(&msg_a, frame, IPC_HDR_LEN), 0);	/* the baseline is good */
	/* magic, version, nfds, status */
	frame[0] = 'p';
	REJECT(frame, IPC_HDR_LEN);
	raw_hdr(frame, 0, 0, 0);
	frame[1] = 'M';
	REJECT(frame, IPC_HDR_LEN);
	raw_hdr(frame, 0, 0, 0);
	frame[2] = 2;
	REJECT(frame, IPC_HDR_LEN);
	raw_hdr(frame, IPC_MAX_FDS + 1, 0, 0);
	REJECT(frame, IPC_HDR_LEN);
	raw_hdr(frame, IPC_MAX_FDS, 0, 0);
	T_EQ_INT(ipc_decode(&msg_a, frame, IPC_HDR_LEN), 0);
	T_EQ_INT(msg_a.nfds, IPC_MAX_FDS);
	raw_hdr(frame, 0, 3, 0);
	REJECT(frame, IPC_HDR_LEN);
	raw_hdr(frame, 0, 0x100, 0);
	REJECT(frame, IPC_HDR_LEN);
	raw_hdr(frame, 0, IPC_TEMPFAIL, 0);
	T_EQ_INT(ipc_decode(&msg_a, frame, IPC_HDR_LEN), 0);
	T_EQ_INT(msg_a.status, IPC_TEMPFAIL);

	/* length field: larger and smaller than the record */
	raw_hdr(frame, 0, 0, 0);
	off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, "k", 1, "v", 1);
	raw_fix_len(frame, off);
	T_EQ_INT(ipc_decode(&msg_a, frame, off), 0);
	raw_fix_len(frame, off + 1);
	REJECT(frame, off);
	raw_fix_len(frame, off - 1);
	REJECT(frame, off);
	raw_hdr(frame, 0, 0, 0xffffffffU);
	REJECT(frame, off);
	raw_hdr(frame, 0, 0, IPC_MAX_PAYLOAD + 1);
	REJECT(frame, IPC_MAX_FRAME + 1);

	/* kinds */
	raw_hdr(frame, 0, 0, 0);
	for (unsigned kind = 0; kind < 6; kind += (kind == 0 ? 4 : 1)) {
		off = raw_attr(frame, IPC_HDR_LEN, kind, "k", 1, "v", 1);
		raw_fix_len(frame, off);
		REJECT(frame, off);
	}

	/* keys: empty, too long, bad characters; the longest allowed one passes */
	memset(key, 'a', sizeof(key));
	off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, key, 0, "v", 1);
	raw_fix_len(frame, off);
	REJECT(frame, off);
	off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, key, IPC_MAX_KEY + 1, "v", 1);
	raw_fix_len(frame, off);
	REJECT(frame, off);
	off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, key, IPC_MAX_KEY, "v", 1);
	raw_fix_len(frame, off);
	T_EQ_INT(ipc_decode(&msg_a, frame, off), 0);
	T_EQ_INT(strlen(msg_a.attr[0].key), IPC_MAX_KEY);
	{
		static const char *const bad[] = { "Key", "a-b", "a b", "a.b", "\xc3\xa9", "k\n" };

		for (i = 0; i < ARRAY_LEN(bad); i++) {
			off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, bad[i], strlen(bad[i]), "v", 1);
			raw_fix_len(frame, off);
			REJECT(frame, off);
		}
		off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, "a\0b", 3, "v", 1);
		raw_fix_len(frame, off);
		REJECT(frame, off);
	}
	off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, "az_09", 5, "v", 1);
	raw_fix_len(frame, off);
	T_EQ_INT(ipc_decode(&msg_a, frame, off), 0);

	/* duplicate key, even of another kind */
	off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, "k", 1, "v", 1);
	off = raw_attr(frame, off, IPC_INT, "k", 1, eight, 8);
	raw_fix_len(frame, off);
	REJECT(frame, off);

	/* NUL in a string (bytes may hold it) */
	off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, "k", 1, "a\0b", 3);
	raw_fix_len(frame, off);
	REJECT(frame, off);
	off = raw_attr(frame, IPC_HDR_LEN, IPC_BYTES, "k", 1, "a\0b", 3);
	raw_fix_len(frame, off);
	T_EQ_INT(ipc_decode(&msg_a, frame, off), 0);

	/* ints are exactly 8 bytes */
	for (uint32_t n = 0; n <= 9; n++) {
		off = raw_attr(frame, IPC_HDR_LEN, IPC_INT, "k", 1, eight, n);
		raw_fix_len(frame, off);
		if (n == 8)
			T_EQ_INT(ipc_decode(&msg_a, frame, off), 0);
		else
			REJECT(frame, off);
	}

	/* too many attributes: IPC_MAX_ATTRS pass, one more does not */
	off = IPC_HDR_LEN;
	for (i = 0; i < IPC_MAX_ATTRS; i++) {
		int kl = str_fmt(key, sizeof(key), "k%zu", i);

		off = raw_attr(frame, off, IPC_INT, key, (size_t)kl, eight, 8);
	}
	raw_fix_len(frame, off);
	T_EQ_INT(ipc_decode(&msg_a, frame, off), 0);
	T_EQ_INT(msg_a.nattr, IPC_MAX_ATTRS);
	off = raw_attr(frame, off, IPC_INT, "extra", 5, eight, 8);
	raw_fix_len(frame, off);
	REJECT(frame, off);

	/* trailing garbage: 1..6 bytes after the last attribute; a value running past the end */
	off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, "k", 1, "v", 1);
	for (i = 1; i <= 6; i++) {
		memset(frame + off, i == 6 ? 1 : 0, i);
		raw_fix_len(frame, off + i);
		REJECT(frame, off + i);
	}
	off = raw_attr(frame, IPC_HDR_LEN, IPC_STR, "k", 1, "value", 5);
	raw_fix_len(frame, off - 1);
	REJECT(frame, off - 1);
	frame[IPC_HDR_LEN + 6] = 0x80;		/* vlen 0x80000005 */
	raw_fix_len(frame, off);
	REJECT(frame, off);
	/* a key running past the end */
	frame[IPC_HDR_LEN] = IPC_STR;
	frame[IPC_HDR_LEN + 1] = 20;
	memset(frame + IPC_HDR_LEN + 2, 'a', 10);
	raw_fix_len(frame, IPC_HDR_LEN + 12);
	REJECT(frame, IPC_HDR_LEN + 12);
}

/* ---- put limits -------------------------------------------------------------------------- */

static void test_put_limits(void)
{
	static unsigned char big[IPC_MAX_PAYLOAD];
	char key[IPC_MAX_KEY + 2];
	size_t len, plen;
	int p[2];

	ipc_msg_init(&msg_a, 1, 1);
	memset(key, 'k', sizeof(key));
	key[IPC_MAX_KEY + 1] = '\0';
	errno = 0;
	T_CHECK(ipc_put_str(&msg_a, key, "v") == -1 && errno == EINVAL);	/* 33 chars */
	key[IPC_MAX_KEY] = '\0';
	T_EQ_INT(ipc_put_str(&msg_a, key, "v"), 0);				/* 32 chars */
	errno = 0;
	T_CHECK(ipc_put_str(&msg_a, "", "v") == -1 && errno == EINVAL);
	errno = 0;
	T_CHECK(ipc_put_int(&msg_a, "Upper", 1) == -1 && errno == EINVAL);
	errno = 0;
	T_CHECK(ipc_put_int(&msg_a, "dash-ed", 1) == -1 && errno == EINVAL);
	T_EQ_INT(ipc_put_str(&msg_a, "dup", "one"), 0);
	errno = 0;
	T_CHECK(ipc_put_int(&msg_a, "dup", 2) == -1 && errno == EINVAL);
	errno = 0;
	T_CHECK(ipc_put_strn(&msg_a, "nul", "a\0b", 3) == -1 && errno == EINVAL);
	T_EQ_INT(msg_a.nattr, 2);

	/* fill the frame to the last byte: then nothing more fits, not even an empty value */
	plen = msg_a.plen;
	errno = 0;
	T_CHECK(ipc_put_bytes(&msg_a, "big", big, IPC_MAX_PAYLOAD - plen - 8) == -1 &&
		errno == EMSGSIZE);
	T_EQ_INT(msg_a.plen, plen);
	T_EQ_INT(ipc_put_bytes(&msg_a, "big", big, IPC_MAX_PAYLOAD - plen - 9), 0);
	T_EQ_INT(msg_a.plen, IPC_MAX_PAYLOAD);
	errno = 0;
	T_CHECK(ipc_put_bytes(&msg_a, "x", NULL, 0) == -1 && errno == EMSGSIZE);
	errno = 0;
	T_CHECK(ipc_put_int(&msg_a, "x", 0) == -1 && errno == EMSGSIZE);
	errno = 0;
	T_CHECK(ipc_put_bytes(&msg_a, "huge", big, SIZE_MAX) == -1 && errno == EMSGSIZE);
	/* the failures did not corrupt it */
	T_EQ_INT(msg_a.nattr, 3);
	T_EQ_INT(ipc_encode(&msg_a, frame, sizeof(frame), &len), 0);
	T_EQ_INT(ipc_decode(&msg_b, frame, len), 0);
	T_EQ_INT(msg_b.nattr, 3);
	T_EQ_STR(ipc_get_str(&msg_b, "dup"), "one");
	T_EQ_STR(ipc_get_str(&msg_b, key), "v");

	/* attribute count */
	ipc_msg_init(&msg_a, 1, 1);
	for (size_t i = 0; i < IPC_MAX_ATTRS; i++) {
		char k[16];

		(void)str_fmt(k, sizeof(k), "a%zu", i);
		T_EQ_INT(ipc_put_int(&msg_a, k, (int64_t)i), 0);
	}
	errno = 0;
	T_CHECK(ipc_put_int(&msg_a, "one_more", 0) == -1 && errno == EMSGSIZE);
	T_EQ_INT(msg_a.nattr, IPC_MAX_ATTRS);

	/* descriptors */
	T_EQ_INT(pipe(p), 0);
	errno = 0;
	T_CHECK(ipc_put_fd(&msg_a, -1) == -1 && errno == EINVAL);
	for (int i = 0; i < IPC_MAX_FDS; i++)
		T_EQ_INT(ipc_put_fd(&msg_a, p[0]), 0);
	errno = 0;
	T_CHECK(ipc_put_fd(&msg_a, p[0]) == -1 && errno == EMSGSIZE);
	T_EQ_INT(msg_a.nfds, IPC_MAX_FDS);
	close(p[0]);
	close(p[1]);
}

static void test_check_keys(void)
{
	static const char *const allowed[] = { "user", "pass", "service", NULL };
	static const char *const none[] = { NULL };

	ipc_msg_init(&msg_a, 1, 1);
	T_EQ_INT(ipc_check_keys(&msg_a, none), 0);
	T_EQ_INT(ipc_put_str(&msg_a, "user", "alice"), 0);
	T_EQ_INT(ipc_put_str(&msg_a, "service", "smtp"), 0);
	T_EQ_INT(ipc_check_keys(&msg_a, allowed), 0);
	errno = 0;
	T_CHECK(ipc_check_keys(&msg_a, none) == -1 && errno == EPROTO);
	T_EQ_INT(ipc_put_str(&msg_a, "users", "x"), 0);	/* a prefix is not a match */
	errno = 0;
	T_CHECK(ipc_check_keys(&msg_a, allowed) == -1 && errno == EPROTO);
}

/* ---- credentials and named sockets ------------------------------------------------------- */

static void test_peercred(void)
{
	int sv[2];
	pid_t pid = 0;
	uid_t uid = 12345;
	gid_t gid = 12345;
	struct passwd *pw = getpwuid(getuid());
	static const char *const root[] = { "root", NULL };
	static const char *const nobody_known[] = { "no_such_user_postern_test", NULL };
	const char *mine[] = { "no_such_user_postern_test", pw ? pw->pw_name : "root", NULL };

	seqpair(sv);
	T_EQ_INT(ipc_peercred(sv[1], &pid, &uid, &gid), 0);
	T_EQ_INT(pid, getpid());
	T_EQ_INT(uid, getuid());
	T_EQ_INT(gid, getgid());
	T_EQ_INT(ipc_peercred(sv[1], NULL, NULL, NULL), 0);
	close(sv[0]);
	close(sv[1]);
	T_CHECK(ipc_peercred(-1, &pid, &uid, &gid) == -1);

	struct ipc_allow a;

	T_EQ_INT(ipc_allow_init(&a, root), 0);
	T_CHECK(ipc_allow_check(&a, 0));
	T_CHECK(!ipc_allow_check(&a, 54321));
	T_EQ_INT(ipc_allow_init(&a, nobody_known), -1);	/* unknown names are reported */
	T_CHECK(!ipc_allow_check(&a, 0));
	T_CHECK(!ipc_allow_check(&a, getuid()));
	T_EQ_INT(ipc_allow_init(&a, mine), -1);
	T_CHECK(pw != NULL && ipc_allow_check(&a, getuid()));
	T_CHECK(!ipc_allow_check(&a, getuid() + 1));
}

static void test_listen_connect(void)
{
	char dir[] = "/tmp/test_ipc.XXXXXX", path[128], longpath[200];
	struct stat st;
	uid_t own_uid = geteuid() == 0 ? 65534 : geteuid();
	gid_t own_gid = geteuid() == 0 ? 65534 : getegid();
	int l, c, s, c2, fd;
	int64_t t0;

	T_CHECK(mkdtemp(dir) != NULL);
	T_EQ_INT(str_fmt(path, sizeof(path), "%s/sock", dir) > 0, 1);
	l = ipc_listen(path, (uid_t)-1, (gid_t)-1, 0660, 8);
	T_CHECK(l >= 0);
	T_CHECK(fcntl(l, F_GETFD) & FD_CLOEXEC);
	T_CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0660);
	c = ipc_connect(path, 1000);
	T_CHECK(c >= 0);
	T_CHECK(fcntl(c, F_GETFD) & FD_CLOEXEC);
	T_CHECK(!(fcntl(c, F_GETFL) & O_NONBLOCK));	/* back to blocking */
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	T_CHECK(s >= 0);
	ipc_msg_init(&msg_a, 5, 77);
	T_EQ_INT(ipc_put_str(&msg_a, "hello", "world"), 0);
	T_EQ_INT(ipc_send(c, &msg_a), 0);
	T_EQ_INT(ipc_recv(s, &msg_b), 1);
	T_EQ_STR(ipc_get_str(&msg_b, "hello"), "world");
	close(s);
	close(c);
	close(l);

	/* a stale socket is replaced; owner and mode are applied */
	l = ipc_listen(path, own_uid, own_gid, 0600, 0);
	T_CHECK(l >= 0);
	T_CHECK(lstat(path, &st) == 0 && (st.st_mode & 07777) == 0600 &&
		st.st_uid == own_uid && st.st_gid == own_gid);
	/* backlog 0: one pending connection fills it, the next times out */
	c = ipc_connect(path, 1000);
	T_CHECK(c >= 0);
	t0 = mono_ms();
	errno = 0;
	c2 = ipc_connect(path, 200);
	T_CHECK(c2 == -1 && errno == ETIMEDOUT);
	T_CHECK(mono_ms() - t0 >= 190 && mono_ms() - t0 < 2000);
	if (c2 >= 0)
		close(c2);
	close(c);
	close(l);

	/* never remove something that is not a socket */
	T_EQ_INT(unlink(path), 0);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	T_CHECK(fd >= 0);
	close(fd);
	errno = 0;
	T_CHECK(ipc_listen(path, (uid_t)-1, (gid_t)-1, 0660, 8) == -1 && errno == EEXIST);
	T_CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
	T_EQ_INT(unlink(path), 0);

	/* nobody listening; path too long */
	errno = 0;
	T_CHECK(ipc_connect(path, 100) == -1 && errno == ENOENT);
	memset(longpath, 'x', sizeof(longpath));
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	errno = 0;
	T_CHECK(ipc_listen(longpath, (uid_t)-1, (gid_t)-1, 0660, 8) == -1 && errno == ENAMETOOLONG);
	errno = 0;
	T_CHECK(ipc_connect(longpath, 100) == -1 && errno == ENAMETOOLONG);
	T_EQ_INT(rmdir(dir), 0);
}

/* ---- ipc_call against forked servers ----------------------------------------------------- */

enum server_mode { SERVE_ECHO, SERVE_SILENT, SERVE_HANGUP };

/* The child: answer each request per mode until EOF. Echo first sends a stale reply (other
 * id, with a descriptor) that the caller must skip, then the real one. */
static void serve(int sock, enum server_mode mode)
{
	static struct ipc_msg req, rep;

	while (ipc_recv(sock, &req) == 1) {
		if (mode == SERVE_HANGUP)
			_exit(0);
		if (mode == SERVE_SILENT)
			continue;
		ipc_msg_init(&rep, req.type, req.id + 1000);
		if (ipc_put_fd(&rep, sock) < 0 || ipc_put_str(&rep, "stale", "yes") < 0 ||
		    ipc_send(sock, &rep) < 0)
			_exit(3);
		ipc_reply_init(&rep, &req, IPC_OK);
		if (ipc_put_str(&rep, "echo", ipc_get_str(&req, "say") ? ipc_get_str(&req, "say") : "") < 0 ||
		    ipc_send(sock, &rep) < 0)
			_exit(3);
	}
	_exit(0);
}

static pid_t start_server(int *sock, enum server_mode mode)
{
	int sv[2];
	pid_t pid;

	seqpair(sv);
	pid = fork();
	if (pid < 0)
		exit(2);
	if (pid == 0) {
		close(sv[0]);
		serve(sv[1], mode);
	}
	close(sv[1]);
	*sock = sv[0];
	return pid;
}

static int reap(pid_t pid)
{
	int status = -1;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_call(void)
{
	int sock, before = count_fds();
	pid_t pid = start_server(&sock, SERVE_ECHO);

	for (uint32_t id = 1; id <= 3; id++) {
		ipc_msg_init(&msg_a, 11, id);
		T_EQ_INT(ipc_put_str(&msg_a, "say", "ping"), 0);
		T_EQ_INT(ipc_call(sock, &msg_a, &msg_b, 2000), 0);
		T_EQ_INT(msg_b.id, id);
		T_EQ_INT(msg_b.type, 11);
		T_EQ_INT(msg_b.status, IPC_OK);
		T_EQ_INT(msg_b.nfds, 0);
		T_EQ_STR(ipc_get_str(&msg_b, "echo"), "ping");
		T_CHECK(ipc_get(&msg_b, "stale") == NULL);
	}
	close(sock);
	T_EQ_INT(reap(pid), 0);
	T_EQ_INT(count_fds(), before);		/* the stale replies' descriptors were closed */
}

static void test_call_timeout(void)
{
	int sock;
	pid_t pid = start_server(&sock, SERVE_SILENT);
	int64_t t0 = mono_ms(), took;

	ipc_msg_init(&msg_a, 11, 1);
	errno = 0;
	T_EQ_INT(ipc_call(sock, &msg_a, &msg_b, 300), -1);
	took = mono_ms() - t0;
	T_EQ_INT(errno, ETIMEDOUT);
	T_CHECK(took >= 290 && took < 1500);
	close(sock);
	T_EQ_INT(reap(pid), 0);

	pid = start_server(&sock, SERVE_HANGUP);
	errno = 0;
	T_EQ_INT(ipc_call(sock, &msg_a, &msg_b, 2000), -1);
	T_EQ_INT(errno, ECONNRESET);
	close(sock);
	T_EQ_INT(reap(pid), 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	T_RUN(test_encode_decode);
	T_RUN(test_socket_roundtrip);
	T_RUN(test_fd_passing);
	T_RUN(test_recv_rejects);
	T_RUN(test_decode_rejects);
	T_RUN(test_put_limits);
	T_RUN(test_check_keys);
	T_RUN(test_peercred);
	T_RUN(test_listen_connect);
	T_RUN(test_call);
	T_RUN(test_call_timeout);
	return T_DONE();
}
