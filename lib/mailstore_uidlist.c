/*
 * mailstore_uidlist.c: Dovecot's dovecot-uidlist (maildir-uidlist.c): the permanent map of
 * message file base names (the name up to ':') to IMAP UIDs, and Dovecot's per-store
 * UIDVALIDITY counter. Version 3 is read and written:
 *
 *   3 V<uidvalidity> N<uidnext> G<mailbox guid>[ <other header fields>]
 *   <uid>[ <key><value>...] :<base name>
 *
 * Version 1 ("1 <uidvalidity> <uidnext>", "<uid> <name>") is read too. Fields we do not
 * use (Dovecot's W, P, O, G...) are kept verbatim and written back. A file Dovecot would
 * call broken (bad header, UIDs not ascending, a '/' in a name) reads as no file at all,
 * which is what Dovecot makes of it too: the folder gets a new UIDVALIDITY. The list is only
 * ever written whole (tmp file + rename) by a holder of dovecot-uidlist.lock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mailstore_priv.h"
#include "util.h"

/* ---- string map -------------------------------------------------------------------- */

unsigned long mstore_uidlist_bytes;

/* Maildir base names are long and alike: mix eight bytes at a time. */
static uint32_t hash_bytes(const char *p, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, p, len);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	return (uint32_t)(h ^ (h >> 29));
}

void ms_strmap_init(struct ms_strmap *m, size_t expected)
{
	size_t n = 64;

	while (n < expected * 2 + 1)
		n *= 2;
	m->slots = xcalloc(n, sizeof(*m->slots));
	m->nslots = n;
	m->used = 0;
}

void ms_strmap_free(struct ms_strmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static struct ms_strmap_slot *strmap_slot(const struct ms_strmap *m, const char *key,
					  size_t len, uint32_t hash)
{
	size_t i = hash & (m->nslots - 1);

	while (m->slots[i].key != NULL &&
	       (m->slots[i].hash != hash || m->slots[i].len != len ||
		memcmp(m->slots[i].key, key, len) != 0))
		i = (i + 1) & (m->nslots - 1);
	return &m->slots[i];
}

void ms_strmap_reserve(struct ms_strmap *m, size_t total)
{
	struct ms_strmap old = *m;

	if (m->slots != NULL && total * 2 < m->nslots)
		return;
	ms_strmap_init(m, total);
	for (size_t i = 0; i < old.nslots; i++)
		if (old.slots[i].key != NULL)
			*strmap_slot(m, old.slots[i].key, old.slots[i].len, old.slots[i].hash) =
				old.slots[i];
	m->used = old.used;
	free(old.slots);
}

uint32_t ms_strmap_put(struct ms_strmap *m, const char *key, size_t len, uint32_t value)
{
	struct ms_strmap_slot *slot;
	uint32_t hash = hash_bytes(key, len), old;

	if (m->slots == NULL || (m->used + 1) * 2 > m->nslots)
		ms_strmap_reserve(m, m->slots == NULL ? 16 : m->nslots);
	slot = strmap_slot(m, key, len, hash);
	old = slot->key != NULL ? slot->value : 0;
	if (slot->key == NULL)
		m->used++;
	slot->key = key;
	slot->len = (uint32_t)len;
	slot->value = value;
	slot->hash = hash;
	return old;
}

uint32_t ms_strmap_get(const struct ms_strmap *m, const char *key, size_t len)
{
	if (m->slots == NULL)
		return 0;
	return strmap_slot(m, key, len, hash_bytes(key, len))->value;
}

/* ---- reading ----------------------------------------------------------------------- */

void ms_uidlist_free(struct ms_uidlist *ul)
{
	for (size_t i = 0; i < ul->n; i++) {
		free(ul->recs[i].base);
		free(ul->recs[i].ext);
	}
	free(ul->recs);
	free(ul->hdr_ext);
	ms_strmap_free(&ul->map);
	memset(ul, 0, sizeof(*ul));
}

static int parse_u32(const char *p, const char *end, uint32_t *out)
{
	uint64_t v = 0;

	if (p == end)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static bool is_hex32(const char *p, size_t len)
{
	if (len != 32)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

static void append_field(char **dst, const char *p, size_t len)
{
	size_t old = *dst != NULL ? strlen(*dst) : 0;
	char *s = xmalloc(old + len + 2);

	if (old > 0) {
		memcpy(s, *dst, old);
		s[old++] = ' ';
	}
	memcpy(s + old, p, len);
	s[old + len] = '\0';
	free(*dst);
	*dst = s;
}

/* "3 V.. N.. G.. ..." or "1 <uidvalidity> <uidnext>"; -1 if broken. */
static int parse_header(char *line, struct ms_uidlist *ul, int *version)
{
	char *p = line + 2, *end;

	if (line[0] < '0' || line[0] > '9' || line[1] != ' ')
		return -1;
	*version = line[0] - '0';
	if (*version == 1) {
		if (sscanf(p, "%" SCNu32 " %" SCNu32, &ul->uidvalidity, &ul->uidnext) != 2)
			return -1;
	} else if (*version == 3) {
		while (*p != '\0') {
			end = p + strcspn(p, " ");
			if (*p == 'V' && parse_u32(p + 1, end, &ul->uidvalidity) < 0)
				return -1;
			else if (*p == 'N' && parse_u32(p + 1, end, &ul->uidnext) < 0)
				return -1;
			else if (*p == 'G' && !is_hex32(p + 1, (size_t)(end - p - 1)))
				return -1;
			else if (*p == 'G')
				memcpy(ul->guid, p + 1, 32);
			else if (*p != 'V' && *p != 'N' && end > p)
				append_field(&ul->hdr_ext, p, (size_t)(end - p));
			p = end + strspn(end, " ");
		}
	} else {
		return -1;
	}
	return ul->uidvalidity != 0 && ul->uidnext != 0 ? 0 : -1;
}

/* A new record at the end (not yet in the map). */
static struct ms_uidrec *append_rec(struct ms_uidlist *ul, uint32_t uid, const char *base,
				    size_t len, const char *ext, size_t extlen)
{
	struct ms_uidrec *r;

	if (ul->n == ul->cap) {
		ul->cap = ul->cap ? ul->cap * 2 : 256;
		ul->recs = xreallocarray(ul->recs, ul->cap, sizeof(*ul->recs));
		/* The map points into the records' strings, not the array: still valid. */
	}
	r = &ul->recs[ul->n++];
	r->uid = uid;
	r->base = xstrndup(base, len);
	r->ext = extlen > 0 ? xstrndup(ext, extlen) : NULL;
	return r;
}

static void rebuild_map(struct ms_uidlist *ul)
{
	ms_strmap_free(&ul->map);
	ms_strmap_init(&ul->map, ul->n);
	for (size_t i = 0; i < ul->n; i++)
		ms_strmap_put(&ul->map, ul->recs[i].base, strlen(ul->recs[i].base),
			      ul->recs[i].uid);
	ul->map_stale = false;
}

static void ensure_map(struct ms_uidlist *ul)
{
	if (ul->map_stale)
		rebuild_map(ul);
}

/* Append a record; true if its base already had a record (an older one, to drop). */
static bool add_record(struct ms_uidlist *ul, uint32_t uid, const char *base, size_t len,
		       const char *ext, size_t extlen)
{
	struct ms_uidrec *r;

	ensure_map(ul);
	r = append_rec(ul, uid, base, len, ext, extlen);
	return ms_strmap_put(&ul->map, r->base, len, uid) != 0;
}

/* One record line; -1 if broken. */
static int parse_record(char *line, int version, struct ms_uidlist *ul, uint32_t prev,
			bool *dupes)
{
	char *p = line + strspn(line, "0123456789"), *ext, *name;
	uint32_t uid;
	size_t base_len;

	if (p == line || *p != ' ' || parse_u32(line, p, &uid) < 0 || uid == 0 ||
	    uid == UINT32_MAX || uid <= prev)
		return -1;
	p += strspn(p, " ");
	ext = p;
	if (version == 3) {
		name = strchr(p, ':');
		if (name == NULL)
			return -1;
		p = name;
		while (p > ext && p[-1] == ' ')
			p--;
		name++;
	} else {
		name = p;
		p = ext;
	}
	base_len = strcspn(name, ":");
	if (base_len == 0 || strchr(name, '/') != NULL)
		return -1;
	if (add_record(ul, uid, name, base_len, ext, (size_t)(p - ext)))
		*dupes = true;
	return 0;
}

/* Drop records whose base a later line gave another UID (Dovecot keeps the later one). */
static bool keep_latest(void *ctx, const struct ms_uidrec *r)
{
	const struct ms_uidlist *ul = ctx;

	return ms_strmap_get(&ul->map, r->base, strlen(r->base)) == r->uid;
}

/* Remember the bytes before `parsed` (the end of the last complete line read). */
static void note_tail(struct ms_uidlist *ul, const char *data, size_t len)
{
	size_t keep = sizeof(ul->tail);

	if (len >= keep) {
		memcpy(ul->tail, data + len - keep, keep);
		ul->tail_len = keep;
		return;
	}
	if (ul->tail_len + len > keep) {	/* shift out what no longer fits */
		size_t drop = ul->tail_len + len - keep;

		memmove(ul->tail, ul->tail + drop, ul->tail_len - drop);
		ul->tail_len -= drop;
	}
	memcpy(ul->tail + ul->tail_len, data, len);
	ul->tail_len += len;
}

/* Lines of text (the whole file when with_header, else what was appended after the lines
 * ul already holds); ul->parsed grows by the bytes of complete lines taken. */
static int parse_lines(char *text, size_t len, struct ms_uidlist *ul, bool with_header)
{
	char *line = text, *nl, *end = text + len;
	uint32_t prev = ul->n > 0 ? ul->recs[ul->n - 1].uid : 0;
	bool first = with_header, dupes = false;

	if (memchr(text, '\0', len) != NULL)
		return -1;
	/* A last line without its newline is being appended: ignore it, as Dovecot does. */
	while (line < end && (nl = memchr(line, '\n', (size_t)(end - line))) != NULL) {
		*nl = '\0';
		if (first ? parse_header(line, ul, &ul->version) < 0 :
			    parse_record(line, ul->version, ul, prev, &dupes) < 0)
			return -1;
		if (!first)
			prev = ul->recs[ul->n - 1].uid;
		first = false;
		*nl = '\n';
		line = nl + 1;
	}
	if (first)
		return -1;
	note_tail(ul, text, (size_t)(line - text));
	ul->parsed += line - text;
	if (dupes)
		ms_uidlist_filter(ul, keep_latest, ul);
	if (ul->uidnext <= prev)
		ul->uidnext = prev + 1;
	return 0;
}

static int parse_uidlist(char *text, size_t len, struct ms_uidlist *ul)
{
	ul->parsed = 0;
	ul->tail_len = 0;
	return parse_lines(text, len, ul, true);
}

int ms_uidlist_read(int dirfd, struct ms_uidlist *ul)
{
	struct buf b;
	struct stat st;
	int rc;

	ms_uidlist_free(ul);
	buf_init(&b, MS_UIDLIST_MAX);
	if (ms_read_file(dirfd, MS_UIDLIST, MS_UIDLIST_MAX, &b, &st) < 0) {
		buf_free(&b);
		return errno == ENOENT ? 0 : -1;
	}
	ul->dev = st.st_dev;
	ul->ino = st.st_ino;
	ul->size = st.st_size;
	ul->mtime = st.st_mtim;
	mstore_uidlist_bytes += b.len;
	rc = b.len > 0 ? parse_uidlist(b.data, b.len, ul) : -1;
	buf_free(&b);
	if (rc < 0) {
		struct ms_uidlist keep = { .dev = ul->dev, .ino = ul->ino, .size = ul->size,
					   .mtime = ul->mtime };

		ms_uidlist_free(ul);
		*ul = keep;	/* "broken", but remember which file so we notice a new one */
		return 0;
	}
	ul->exists = true;
	return 0;
}

bool ms_uidlist_changed(int dirfd, const struct ms_uidlist *ul)
{
	struct stat st;

	if (fstatat(dirfd, MS_UIDLIST, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return ul->ino != 0;
	return st.st_ino != ul->ino || st.st_dev != ul->dev || st.st_size != ul->size ||
	       !ms_ts_eq(st.st_mtim, ul->mtime);
}

/* Read what was appended to an open uidlist whose first ul->parsed bytes ul holds.
 * 1 if ul is now up to date, 0 if the file is not simply a longer version of what was
 * read (the caller reads it whole), -1 on I/O errors. */
static int read_appended(int fd, const struct stat *st, struct ms_uidlist *ul)
{
	char tail[sizeof(ul->tail)], *text;
	size_t len;
	int rc = 1;

	if (st->st_dev != ul->dev || st->st_ino != ul->ino || st->st_size < ul->parsed ||
	    ul->parsed < (off_t)ul->tail_len || st->st_size > (off_t)MS_UIDLIST_MAX)
		return 0;
	if (pread(fd, tail, ul->tail_len, ul->parsed - (off_t)ul->tail_len) !=
	    (ssize_t)ul->tail_len)
		return -1;
	mstore_uidlist_bytes += ul->tail_len;
	if (memcmp(tail, ul->tail, ul->tail_len) != 0)
		return 0;	/* rewritten in place by someone: not ours to patch */
	len = (size_t)(st->st_size - ul->parsed);
	if (len > 0) {
		text = xmalloc(len);
		mstore_uidlist_bytes += len;
		if (pread(fd, text, len, ul->parsed) != (ssize_t)len)
			rc = -1;
		else if (parse_lines(text, len, ul, false) < 0)
			rc = 0;
		free(text);
	}
	if (rc > 0) {
		ul->size = st->st_size;
		ul->mtime = st->st_mtim;
	}
	return rc;
}

int ms_uidlist_refresh(int dirfd, struct ms_uidlist *ul)
{
	struct stat st;
	int fd, rc = 0;

	if (!ul->exists || ul->ino == 0)
		return ms_uidlist_read(dirfd, ul);
	fd = openat(dirfd, MS_UIDLIST, O_RDONLY | O_NONBLOCK | MS_FILE_FLAGS);
	if (fd < 0)
		return errno == ENOENT ? ms_uidlist_read(dirfd, ul) : -1;
	if (fstat(fd, &st) < 0)
		rc = -1;
	else if (st.st_dev == ul->dev && st.st_ino == ul->ino && st.st_size == ul->size &&
		 ms_ts_eq(st.st_mtim, ul->mtime))
		rc = 1;
	else
		rc = read_appended(fd, &st, ul);
	ms_close(fd);
	if (rc < 0)
		return -1;
	return rc > 0 ? 0 : ms_uidlist_read(dirfd, ul);
}

uint32_t ms_uidlist_uid(struct ms_uidlist *ul, const char *base, size_t len)
{
	ensure_map(ul);
	return ms_strmap_get(&ul->map, base, len);
}

void ms_uidlist_add_unmapped(struct ms_uidlist *ul, uint32_t uid, const char *base, size_t len)
{
	(void)append_rec(ul, uid, base, len, NULL, 0);
	ul->map_stale = true;
	if (ul->uidnext <= uid)
		ul->uidnext = uid + 1;
}

bool ms_uidlist_add_new(struct ms_uidlist *ul, uint32_t uid, const char *base, size_t len)
{
	struct ms_strmap *m = &ul->map;
	struct ms_strmap_slot *slot;
	struct ms_uidrec *r;
	uint32_t hash = hash_bytes(base, len);

	ensure_map(ul);
	if (m->slots == NULL || (m->used + 1) * 2 > m->nslots)
		ms_strmap_reserve(m, m->slots == NULL ? 16 : m->nslots);
	slot = strmap_slot(m, base, len, hash);
	if (slot->key != NULL)
		return false;
	r = append_rec(ul, uid, base, len, NULL, 0);
	*slot = (struct ms_strmap_slot){ .key = r->base, .len = (uint32_t)len, .value = uid,
					 .hash = hash };
	m->used++;
	if (ul->uidnext <= uid)
		ul->uidnext = uid + 1;
	return true;
}

void ms_uidlist_add(struct ms_uidlist *ul, uint32_t uid, const char *base, size_t len)
{
	(void)add_record(ul, uid, base, len, NULL, 0);
	if (ul->uidnext <= uid)
		ul->uidnext = uid + 1;
}

void ms_uidlist_filter(struct ms_uidlist *ul, bool (*keep)(void *ctx, const struct ms_uidrec *r),
		       void *ctx)
{
	size_t o = 0;

	for (size_t i = 0; i < ul->n; i++) {
		if (keep(ctx, &ul->recs[i])) {
			ul->recs[o++] = ul->recs[i];
		} else {
			free(ul->recs[i].base);
			free(ul->recs[i].ext);
		}
	}
	ul->n = o;
	rebuild_map(ul);
}

/* ---- writing ----------------------------------------------------------------------- */

static uint32_t uidvalidity_next(int root_fd);

static void random_guid(char out[33])
{
	unsigned char raw[16];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* No entropy source: a GUID only needs to be unique, not secret. */
			uint64_t t = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 40);

			for (size_t i = got; i < sizeof(raw); i++, t = t * 6364136223846793005ull + 1)
				raw[i] = (unsigned char)(t >> 56);
			break;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		(void)str_fmt(out + 2 * i, 3, "%02x", raw[i]);
}

int ms_uidlist_init_new(struct mstore *s, struct ms_uidlist *ul)
{
	ms_uidlist_free(ul);
	ul->uidvalidity = uidvalidity_next(s->root_fd);
	ul->uidnext = 1;
	random_guid(ul->guid);
	ms_strmap_init(&ul->map, 16);
	ul->exists = true;
	return 0;
}

/* "<uid>[ <ext>] :<base>\n" */
static int fmt_rec(struct buf *b, const struct ms_uidrec *r)
{
	int rc = buf_append_u64(b, r->uid);

	if (r->ext != NULL)
		rc |= buf_append_char(b, ' ') | buf_append_str(b, r->ext);
	return rc | buf_append(b, " :", 2) | buf_append_str(b, r->base) | buf_append_char(b, '\n');
}

int ms_uidlist_write(int dirfd, struct ms_uidlist *ul)
{
	struct buf b;
	struct stat st;
	int rc = 0;

	if (ul->guid[0] == '\0')
		random_guid(ul->guid);
	buf_init(&b, MS_UIDLIST_MAX);
	rc |= buf_printf(&b, "3 V%" PRIu32 " N%" PRIu32 " G%s%s%s\n", ul->uidvalidity,
			 ul->uidnext, ul->guid, ul->hdr_ext != NULL ? " " : "",
			 ul->hdr_ext != NULL ? ul->hdr_ext : "");
	for (size_t i = 0; i < ul->n && rc == 0; i++)
		rc |= fmt_rec(&b, &ul->recs[i]);
	if (rc == 0)
		rc = ms_write_replace(dirfd, MS_UIDLIST_TMP, MS_UIDLIST, b.data, b.len);
	if (rc == 0) {
		ul->parsed = (off_t)b.len;
		ul->tail_len = 0;
		note_tail(ul, b.data, b.len);
		ul->version = 3;
	}
	buf_free(&b);
	if (rc == 0 && fstatat(dirfd, MS_UIDLIST, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		ul->dev = st.st_dev;
		ul->ino = st.st_ino;
		ul->size = st.st_size;
		ul->mtime = st.st_mtim;
	}
	return rc;
}

int ms_uidlist_append(int dirfd, struct ms_uidlist *ul, size_t from)
{
	struct buf b;
	struct stat st;
	int fd, rc = 0;

	/* Appending is only right when the file is still the one this list was read from
	 * (the caller holds the lock; anyone else rewrites it only under the lock). */
	if (ul->ino == 0 || fstatat(dirfd, MS_UIDLIST, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_ino != ul->ino || st.st_size != ul->size || st.st_size == 0 ||
	    ul->parsed != st.st_size)	/* (a torn last line: the file is rewritten) */
		return ms_uidlist_write(dirfd, ul);
	buf_init(&b, MS_UIDLIST_MAX);
	for (size_t i = from; i < ul->n && rc == 0; i++)
		rc |= fmt_rec(&b, &ul->recs[i]);
	fd = rc == 0 ? openat(dirfd, MS_UIDLIST, O_WRONLY | O_APPEND | MS_FILE_FLAGS) : -1;
	if (fd < 0 || write_all(fd, b.data, b.len) < 0 || fdatasync(fd) < 0 ||
	    fstat(fd, &st) < 0)
		rc = -1;
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		note_tail(ul, b.data, b.len);
		ul->parsed += (off_t)b.len;
		ul->size = st.st_size;
		ul->mtime = st.st_mtim;
	}
	buf_free(&b);
	return rc;
}

/* ---- UIDVALIDITY ------------------------------------------------------------------- */

/* When the counter file cannot be used: the time, never the same value twice here. */
static uint32_t uidvalidity_fallback(void)
{
	static uint32_t last;
	uint32_t now = (uint32_t)time(NULL);

	last = last < now ? now : last + 1;
	return last;
}

static void uidvalidity_store(int root_fd, uint32_t value)
{
	char hex[9];
	int fd = openat(root_fd, MS_UIDVALIDITY, O_RDWR | O_CREAT | MS_FILE_FLAGS, 0600);

	if (fd < 0)
		return;
	(void)str_fmt(hex, sizeof(hex), "%08" PRIx32, value);
	if (pwrite(fd, hex, 8, 0) != 8)
		msg_warn("mailstore: %s: %s", MS_UIDVALIDITY, strerror(errno));
	(void)close(fd);
}

/* Move the marker file dovecot-uidvalidity.<v> to .<v+1>: the atomic step that makes the
 * value ours. 0 and *value the new one, or -1. */
static int uidvalidity_bump(int root_fd, uint32_t *value)
{
	char from[64], to[64];

	for (int i = 0; i < 10; i++) {
		(void)str_fmt(from, sizeof(from), MS_UIDVALIDITY ".%08" PRIx32, *value);
		*value += 1;
		(void)str_fmt(to, sizeof(to), MS_UIDVALIDITY ".%08" PRIx32, *value);
		if (renameat(root_fd, from, root_fd, to) == 0)
			return 0;
		if (errno != ENOENT)
			return -1;
	}
	return -1;
}

/* No usable counter file: find the marker files, or start one from the time. */
static uint32_t uidvalidity_rescan(int root_fd)
{
	char name[64];
	uint32_t max = 0, v;
	struct dirent *de;
	DIR *dir;
	int fd = openat(root_fd, ".", MS_DIR_FLAGS);

	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		ms_close(fd);
		return uidvalidity_fallback();
	}
	while ((de = readdir(dir)) != NULL) {
		const char *p = de->d_name;
		char *end;

		if (strncmp(p, MS_UIDVALIDITY ".", sizeof(MS_UIDVALIDITY)) != 0)
			continue;
		p += sizeof(MS_UIDVALIDITY);
		errno = 0;
		unsigned long x = strtoul(p, &end, 16);

		v = (uint32_t)x;
		if (errno == 0 && end != p && *end == '\0' && x <= UINT32_MAX && v > max)
			max = v;
	}
	(void)closedir(dir);
	if (max == 0) {
		v = uidvalidity_fallback();
		(void)str_fmt(name, sizeof(name), MS_UIDVALIDITY ".%08" PRIx32, v);
		fd = openat(root_fd, name, O_RDONLY | O_CREAT | O_EXCL | MS_FILE_FLAGS, 0444);
		ms_close(fd);
	} else {
		v = max;
		if (uidvalidity_bump(root_fd, &v) < 0)
			return uidvalidity_fallback();
	}
	uidvalidity_store(root_fd, v);
	return v;
}

/* Dovecot's per-store UIDVALIDITY counter: ROOT/dovecot-uidvalidity holds the last value
 * in hex, and renaming the marker dovecot-uidvalidity.<v> to .<v+1> claims the next one. */
static uint32_t uidvalidity_next(int root_fd)
{
	char hex[9];
	ssize_t n;
	uint32_t v;
	char *end;
	int fd = openat(root_fd, MS_UIDVALIDITY, O_RDWR | MS_FILE_FLAGS);

	if (fd < 0)
		return uidvalidity_rescan(root_fd);
	n = read_full(fd, hex, 8);
	(void)close(fd);
	if (n <= 0)
		return uidvalidity_rescan(root_fd);
	hex[n] = '\0';
	errno = 0;
	v = (uint32_t)strtoul(hex, &end, 16);
	if (errno != 0 || end == hex || v == 0 || uidvalidity_bump(root_fd, &v) < 0)
		return uidvalidity_rescan(root_fd);
	uidvalidity_store(root_fd, v);
	return v;
}

/* ---- UID order of new files -------------------------------------------------------- */

void ms_name_time(const char *p, uint64_t *secs, uint64_t *usecs)
{
	*secs = *usecs = 0;
	for (; *p >= '0' && *p <= '9'; p++)
		*secs = *secs * 10 + (uint64_t)(*p - '0');
	if (p[0] != '.' || p[1] != 'M')
		return;
	for (p += 2; *p >= '0' && *p <= '9'; p++)
		*usecs = *usecs * 10 + (uint64_t)(*p - '0');
}
