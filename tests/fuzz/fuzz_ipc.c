/*
 * fuzz_ipc.c: libFuzzer target for the IPC frame decoder (lib/ipc.c). Any input either
 * fails with EPROTO, or decodes into a message that, rebuilt attribute by attribute with the
 * put functions, encodes to exactly the input bytes (the encoding is canonical) and decodes
 * again to the same attributes. Anything else aborts. Build and run: `make fuzz-run`.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Large: keep them out of the stack. */
static struct ipc_msg first, rebuilt, second;
static unsigned char out[IPC_MAX_FRAME];

static void rebuild(const struct ipc_msg *m, struct ipc_msg *r)
{
	ipc_msg_init(r, m->type, m->id);
	r->status = m->status;
	r->nfds = m->nfds;		/* the announced count; decode attaches no descriptors */
	for (size_t i = 0; i < m->nattr; i++) {
		const struct ipc_attr *a = &m->attr[i];
		int rc = -1;

		if (ipc_get(m, a->key) != a)	/* keys are unique */
			abort();
		switch (a->kind) {
		case IPC_STR:
			if (a->str == NULL || strlen(a->str) != a->len ||
			    memcmp(a->str, a->val, a->len) != 0)
				abort();
			rc = ipc_put_strn(r, a->key, a->str, a->len);
			break;
		case IPC_INT:
			rc = ipc_put_int(r, a->key, a->ival);
			break;
		case IPC_BYTES:
			rc = ipc_put_bytes(r, a->key, a->val, a->len);
			break;
		}
		if (rc != 0)
			abort();
	}
}

static void same_attrs(const struct ipc_msg *a, const struct ipc_msg *b)
{
	if (a->type != b->type || a->id != b->id || a->status != b->status ||
	    a->nfds != b->nfds || a->nattr != b->nattr || a->plen != b->plen)
		abort();
	for (size_t i = 0; i < a->nattr; i++) {
		const struct ipc_attr *x = &a->attr[i], *y = &b->attr[i];

		if (x->kind != y->kind || strcmp(x->key, y->key) != 0 || x->len != y->len ||
		    x->ival != y->ival || memcmp(x->val, y->val, x->len) != 0 ||
		    (x->str == NULL) != (y->str == NULL) ||
		    (x->str != NULL && strcmp(x->str, y->str) != 0))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = 0;

	if (ipc_decode(&first, data, size) < 0) {
		if (errno != EPROTO || first.nattr != 0)
			abort();
		return 0;
	}
	if (size != IPC_HDR_LEN + first.plen || first.nattr > IPC_MAX_ATTRS ||
	    first.nfds > IPC_MAX_FDS)
		abort();
	rebuild(&first, &rebuilt);
	if (ipc_encode(&rebuilt, out, sizeof(out), &len) != 0 || len != size ||
	    memcmp(out, data, size) != 0)
		abort();
	if (ipc_decode(&second, out, len) != 0)
		abort();
	same_attrs(&first, &second);
	same_attrs(&first, &rebuilt);
	return 0;
}
