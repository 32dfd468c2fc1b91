/*
 * queuefile_priv.h: what queuefile.c (ids, checks, writer, status updates) and
 * queuefile_read.c (the validating reader) share: record types, big-endian helpers, the
 * status block codec and the per-field checks, so writer and reader enforce the same rules.
 * Not for use outside the queuefile*.c files.
 */
#ifndef POSTERN_QUEUEFILE_PRIV_H
#define POSTERN_QUEUEFILE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "queuefile.h"

enum {
	QF_REC_MAGIC = 'V', QF_REC_QID = 'I', QF_REC_TIME = 'T', QF_REC_SENDER = 'S',
	QF_REC_CLIENT_ADDR = 'A', QF_REC_CLIENT_NAME = 'N', QF_REC_HELO = 'H',
	QF_REC_AUTH = 'U', QF_REC_SIZE = 'L', QF_REC_BODY = 'B', QF_REC_FLAGS = 'F',
	QF_REC_RET = 'W', QF_REC_ENVID = 'E', QF_REC_RCPT = 'R', QF_REC_EOE = 'X',
	QF_REC_MSG = 'M', QF_REC_END = 'Z',
};

/* Recipient payload: status block, notify, ORCPT length, then ORCPT and address. */
#define QF_RCPT_FIXED	(QF_STATUS_LEN + 1 + 2)

static inline void qf_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static inline void qf_put32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static inline void qf_put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static inline uint16_t qf_get16(const unsigned char *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t qf_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t qf_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* NULL if the len bytes at s are an acceptable string field of at most max bytes, else
 * what is wrong ("too long", "empty", "contains a NUL byte", ...). */
const char *qf_text_problem(const char *s, size_t len, size_t max, int empty_ok);
/* NULL if notify is a valid QF_NOTIFY_* combination, else what is wrong. */
const char *qf_notify_problem(unsigned notify);
/* NULL if st is a valid status, else what is wrong. */
const char *qf_status_problem(const struct qf_status *st);
void qf_status_encode(const struct qf_status *st, unsigned char out[QF_STATUS_LEN]);
/* Decode and check; NULL or what is wrong. */
const char *qf_status_decode(const unsigned char in[QF_STATUS_LEN], struct qf_status *st);

#endif
