/*
 * virtual.h: the state shared by the files of postern-virtual, the delivery agent into
 * virtual users' Maildirs (issue 5, lib/deliverproto.h, lib/deliverreq.h).
 */
#ifndef POSTERN_VIRTUAL_H
#define POSTERN_VIRTUAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "deliverreq.h"
#include "event.h"
#include "ipc.h"
#include "ipcserver.h"

#define VIRTUAL_HEADER_MAX	(256 * 1024)	/* header bytes searched for Delivered-To */

struct virtuald {
	struct ipc_allow allow;		/* root and queue_owner */
	const char *base;		/* virtual_mailbox_base */
	const char *delimiter;		/* recipient_delimiter */
	bool plus_folders;		/* virtual_plus_folders */
	bool overquota_temporary;	/* virtual_overquota_temporary */
	char auth_path[4096];		/* $spool_directory/private/auth */
	int auth_sock;			/* kept open between deliveries; -1 when closed */
	uint32_t auth_id;
};

extern struct virtuald V;

/* One DELIVER request (valid while its frame is) and the message's header section. */
struct vreq {
	struct deliver_request req;
	char *headers;			/* bounded by VIRTUAL_HEADER_MAX */
	size_t headers_len;
};

/* conn.c */
extern const struct ipc_server_ops conn_ops;

/* deliver.c: try one recipient and fill in its result. */
void deliver_rcpt(const struct vreq *r, struct deliver_rcpt *rc);

/* headers.c */
/* Read the header section of the message (at most VIRTUAL_HEADER_MAX bytes) into r. */
int headers_read(struct vreq *r);
/* Does the header section carry "Delivered-To: addr" (addresses compared ignoring case). */
bool headers_delivered_to(const struct vreq *r, const char *addr);
/* "Return-Path: <sender>\r\nDelivered-To: rcpt\r\n" into out; its length, or -1. */
int headers_prepend(const char *sender, const char *rcpt, char *out, size_t outsize);

#endif
