/*
 * msgheaders.h: the header section of a queued message, as the delivery agents (virtual,
 * local) need it: read from the queue file descriptor they are handed, and searched for
 * "Delivered-To: addr", the mark every delivery (and every forwarding) leaves, which is how
 * mail loops are caught, as Postfix does. Only the first `max` bytes are read: a loop adds its
 * Delivered-To at the top, so it is always within them.
 */
#ifndef POSTERN_MSGHEADERS_H
#define POSTERN_MSGHEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MSGHEADERS_MAX	(256 * 1024)	/* the usual bound for `max` */

/* Read the first min(len, max) message bytes at off of fd (pread: the file offset is not
 * used). *out is heap-allocated and NUL-terminated; 0, or -1 with errno (EIO when the file
 * ends early). */
int msgheaders_read(int fd, off_t off, uint64_t len, size_t max, char **out, size_t *outlen);

/* Does the header section in [hdr, hdr + len) carry a Delivered-To: field naming addr
 * (compared ignoring case, with or without angle brackets)? The search stops at the blank
 * line that ends the header section. */
bool msgheaders_delivered_to(const char *hdr, size_t len, const char *addr);

#endif
