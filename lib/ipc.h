/*
 * ipc.h: the one framing library for every internal protocol (DESIGN.md §3).
 *
 * Transport: AF_UNIX SOCK_SEQPACKET sockets, so each frame is exactly one record and a
 * short or oversized record is detectable (MSG_TRUNC). Never newline-delimited text.
 *
 * Frame (all integers big-endian):
 *   header, 16 bytes:  'P' 'N' version(=1) nfds  type(u16) status(u16) id(u32) length(u32)
 *   payload, `length` bytes: attributes, each
 *     kind(u8: 1=string, 2=int64, 3=bytes) keylen(u8, 1..32) key([a-z0-9_]) vlen(u32) value
 *   Strings may not contain NUL; ints are exactly 8 bytes. A key appears at most once.
 *   File descriptors (at most IPC_MAX_FDS) travel as SCM_RIGHTS with the record; the header's
 *   nfds must match what arrived.
 * Every reply carries a three-way status: OK, PERMFAIL (with a "reason" attribute) or
 * TEMPFAIL. Whoever is unsure answers TEMPFAIL; only PERMFAIL may become a 5xx or a bounce.
 */
#ifndef POSTERN_IPC_H
#define POSTERN_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPC_HDR_LEN	16
#define IPC_MAX_FRAME	65536		/* header + payload */
#define IPC_MAX_PAYLOAD	(IPC_MAX_FRAME - IPC_HDR_LEN)
#define IPC_MAX_FDS	4
#define IPC_MAX_ATTRS	128
#define IPC_MAX_KEY	32

enum ipc_status { IPC_OK = 0, IPC_PERMFAIL = 1, IPC_TEMPFAIL = 2 };
enum ipc_kind { IPC_STR = 1, IPC_INT = 2, IPC_BYTES = 3 };

struct ipc_attr {
	enum ipc_kind kind;
	char key[IPC_MAX_KEY + 1];
	const unsigned char *val;	/* points into the message's payload */
	uint32_t len;
	int64_t ival;			/* for IPC_INT */
	const char *str;		/* for IPC_STR: NUL-terminated copy in strs, else NULL */
};

struct ipc_msg {
	uint16_t type;
	uint16_t status;
	uint32_t id;
	int nfds;
	int fds[IPC_MAX_FDS];
	size_t nattr;
	struct ipc_attr attr[IPC_MAX_ATTRS];
	size_t plen;
	unsigned char payload[IPC_MAX_PAYLOAD];
	/* NUL-terminated copies of the string values. Each string attribute costs at least
	 * 7 bytes of payload beyond its value, so the copies always fit in this much. */
	size_t slen;
	char strs[IPC_MAX_PAYLOAD];
};
/* val and str point into the message itself: copy a message with ipc_decode of its
 * encoding, never by struct assignment. */

/* Building. The put functions return -1 (errno EMSGSIZE or EINVAL) if the frame would
 * exceed its limits, the key is malformed or repeated, or a string holds a NUL. */
void ipc_msg_init(struct ipc_msg *m, uint16_t type, uint32_t id);
int ipc_put_str(struct ipc_msg *m, const char *key, const char *s);
int ipc_put_strn(struct ipc_msg *m, const char *key, const char *s, size_t n);
int ipc_put_bytes(struct ipc_msg *m, const char *key, const void *p, size_t n);
int ipc_put_int(struct ipc_msg *m, const char *key, int64_t v);
/* Attach a descriptor (not duplicated, not closed by send). */
int ipc_put_fd(struct ipc_msg *m, int fd);
/* A reply to req: same type and id, given status. */
void ipc_reply_init(struct ipc_msg *reply, const struct ipc_msg *req, enum ipc_status st);

/* Encoding and strict decoding without a socket (used by send/recv and by the fuzzer).
 * decode returns 0, or -1 with errno EPROTO on any malformation; fds are not touched. */
int ipc_encode(const struct ipc_msg *m, unsigned char *out, size_t outsize, size_t *outlen);
int ipc_decode(struct ipc_msg *m, const unsigned char *frame, size_t len);

/* Send one frame; -1 on error (EAGAIN from non-blocking sockets passes through). */
int ipc_send(int sock, const struct ipc_msg *m);
/* Receive one frame: 1 on success, 0 on orderly EOF, -1 on error (EAGAIN passes through;
 * EPROTO for a malformed frame, whose descriptors are closed). Received fds are owned by
 * the caller (close them with ipc_close_fds unless taken). */
int ipc_recv(int sock, struct ipc_msg *m);
void ipc_close_fds(struct ipc_msg *m);

/* Send req and wait for the reply with the same id, at most timeout_ms in all.
 * 0 on success; -1 with errno ETIMEDOUT, EPROTO, ECONNRESET, ... A caller treats -1 as
 * TEMPFAIL. */
int ipc_call(int sock, const struct ipc_msg *req, struct ipc_msg *reply, int timeout_ms);

/* Lookup. NULL / -1 if absent or of another kind. */
const struct ipc_attr *ipc_get(const struct ipc_msg *m, const char *key);
/* A NUL-terminated string valid as long as m (decode keeps terminated copies). */
const char *ipc_get_str(const struct ipc_msg *m, const char *key);
int ipc_get_int(const struct ipc_msg *m, const char *key, int64_t *v);
/* -1 (errno EPROTO) if the message holds a key not in the NULL-terminated allowed list. */
int ipc_check_keys(const struct ipc_msg *m, const char *const *allowed);

/* Sockets. listen: unlink stale path, bind, chown to uid:gid, chmod mode, listen.
 * connect: with a timeout. Both return a CLOEXEC descriptor or -1. */
int ipc_listen(const char *path, uid_t uid, gid_t gid, mode_t mode, int backlog);
int ipc_connect(const char *path, int timeout_ms);
/* Peer credentials of a connected UNIX socket. */
int ipc_peercred(int sock, pid_t *pid, uid_t *uid, gid_t *gid);
/* Peer allow-lists. Names are resolved to uids once, at start-up and before any chroot
 * (a chroot has no passwd file). init returns -1 if a name is unknown (it is left out). */
#define IPC_MAX_ALLOW 16
struct ipc_allow {
	size_t n;
	uid_t uid[IPC_MAX_ALLOW];
};
int ipc_allow_init(struct ipc_allow *a, const char *const *users);
bool ipc_allow_check(const struct ipc_allow *a, uid_t uid);

#endif
