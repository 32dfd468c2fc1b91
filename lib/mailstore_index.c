/*
 * mailstore_index.c: postern-index, Postern's own cache in each folder, so that opening a
 * large folder reads one file instead of stat()ing every message. It is a log of lines,
 * appended to by holders of the uidlist lock and rewritten whole (tmp + rename) when it
 * has grown well past its live content; the last word about a UID wins:
 *
 *   PI 1 V<uidvalidity>                                      first line
 *   R <uid> <modseq> <size> <file size> <mtime> <c|n> <file>  a message as last seen
 *   X <uid>                                                  a message expunged
 *   S H<highestmodseq>[ U<uidnext> L<ino>:<size>:<mtime> C<mtime> N<mtime>]
 *
 * An S line with the identities of dovecot-uidlist, cur/ and new/ says the records are
 * exactly the folder's messages as long as those three are unchanged (the writer only
 * writes it after a scan of directories that had been quiet for a while); an R or X line
 * after it withdraws that. Mod-sequences and sizes are kept here; everything can be rebuilt
 * from the Maildir, and a malformed or foreign (other UIDVALIDITY) file is treated as
 * missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailstore_priv.h"
#include "util.h"

void ms_index_free(struct ms_index *ix)
{
	for (size_t i = 0; i < ix->n; i++)
		free(ix->recs[i].file);
	free(ix->recs);
	memset(ix, 0, sizeof(*ix));
}

/* Records stay in place when expunged (file NULL) so lookups stay a binary search. */
static struct ms_idxrec *find_slot(const struct ms_index *ix, uint32_t uid, size_t *pos)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ix->recs[mid].uid == uid) {
			*pos = mid;
			return &ix->recs[mid];
		}
		if (ix->recs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return NULL;
}

struct ms_idxrec *ms_index_get(const struct ms_index *ix, uint32_t uid)
{
	size_t pos = 0;
	struct ms_idxrec *r = find_slot(ix, uid, &pos);

	return r != NULL && r->file != NULL ? r : NULL;
}

static void upsert(struct ms_index *ix, const struct ms_idxrec *in, const char *file)
{
	size_t pos = 0;
	struct ms_idxrec *r = ix->n > 0 && ix->recs[ix->n - 1].uid < in->uid ? NULL :
			      find_slot(ix, in->uid, &pos);

	if (r == NULL) {
		if (ix->n == ix->cap) {
			ix->cap = ix->cap ? ix->cap * 2 : 256;
			ix->recs = xreallocarray(ix->recs, ix->cap, sizeof(*ix->recs));
		}
		if (ix->n > 0 && ix->recs[ix->n - 1].uid > in->uid) {
			memmove(&ix->recs[pos + 1], &ix->recs[pos], (ix->n - pos) * sizeof(*r));
			r = &ix->recs[pos];
		} else {
			r = &ix->recs[ix->n];
		}
		ix->n++;
		r->file = NULL;
	}
	if (r->file == NULL)
		ix->live++;
	free(r->file);
	*r = *in;
	r->file = xstrdup(file);
	if (in->modseq > ix->highestmodseq)
		ix->highestmodseq = in->modseq;
}

/* ---- parsing ----------------------------------------------------------------------- */

static int parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	*p = s;
	return 0;
}

static int parse_ts(const char **p, struct timespec *ts)
{
	uint64_t sec = 0, nsec = 0;

	if (parse_u64(p, &sec) < 0 || **p != '.')
		return -1;
	(*p)++;
	if (parse_u64(p, &nsec) < 0 || nsec >= 1000000000)
		return -1;
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = (long)nsec;
	return 0;
}

static int parse_state(const char *p, struct ms_index *ix)
{
	struct ms_idxstate st = { 0 };
	uint64_t v = 0, ino = 0, size = 0;

	if (*p++ != 'H' || parse_u64(&p, &v) < 0)
		return -1;
	if (v > ix->highestmodseq)
		ix->highestmodseq = v;
	if (*p == '\0') {
		ix->state.valid = false;
		return 0;
	}
	if (strncmp(p, " U", 2) != 0 || (p += 2, parse_u64(&p, &v)) < 0 || v > UINT32_MAX ||
	    strncmp(p, " L", 2) != 0 || (p += 2, parse_u64(&p, &ino)) < 0 || *p++ != ':' ||
	    parse_u64(&p, &size) < 0 || *p++ != ':' || parse_ts(&p, &st.ul_mtime) < 0 ||
	    strncmp(p, " C", 2) != 0 || (p += 2, parse_ts(&p, &st.cur_mtime)) < 0 ||
	    strncmp(p, " N", 2) != 0 || (p += 2, parse_ts(&p, &st.new_mtime)) < 0 || *p != '\0')
		return -1;
	st.uidnext = (uint32_t)v;
	st.ul_ino = (ino_t)ino;
	st.ul_size = (off_t)size;
	st.valid = true;
	ix->state = st;
	return 0;
}

static int parse_rec(const char *p, struct ms_index *ix)
{
	struct ms_idxrec r = { 0 };
	uint64_t uid = 0, mtime = 0;

	if (parse_u64(&p, &uid) < 0 || uid == 0 || uid > UINT32_MAX || *p++ != ' ' ||
	    parse_u64(&p, &r.modseq) < 0 || *p++ != ' ' || parse_u64(&p, &r.size) < 0 ||
	    *p++ != ' ' || parse_u64(&p, &r.file_size) < 0 || *p++ != ' ' ||
	    parse_u64(&p, &mtime) < 0 || mtime > INT64_MAX || *p++ != ' ' ||
	    (*p != 'c' && *p != 'n') || p[1] != ' ' || p[2] == '\0' || p[2] == '.' ||
	    strchr(p + 2, '/') != NULL)
		return -1;
	r.uid = (uint32_t)uid;
	r.mtime = (int64_t)mtime;
	r.dir = *p;
	upsert(ix, &r, p + 2);
	ix->state.valid = false;
	return 0;
}

static int parse_expunge(const char *p, struct ms_index *ix)
{
	uint64_t uid = 0;
	size_t pos = 0;
	struct ms_idxrec *r;

	if (parse_u64(&p, &uid) < 0 || *p != '\0' || uid == 0 || uid > UINT32_MAX)
		return -1;
	r = find_slot(ix, (uint32_t)uid, &pos);
	if (r != NULL && r->file != NULL) {
		free(r->file);
		r->file = NULL;
		ix->live--;
	}
	ix->state.valid = false;
	return 0;
}

static int parse_line(char *line, struct ms_index *ix)
{
	if (line[0] == 'R' && line[1] == ' ')
		return parse_rec(line + 2, ix);
	if (line[0] == 'X' && line[1] == ' ')
		return parse_expunge(line + 2, ix);
	if (line[0] == 'S' && line[1] == ' ')
		return parse_state(line + 2, ix);
	return -1;
}

/* Apply the whole lines of text[len]; how many bytes they took, or -1 if one is bad.
 * The text is left as it was (each line is NUL-terminated only while it is parsed). */
static ssize_t parse_lines(char *text, size_t len, struct ms_index *ix)
{
	char *line = text, *nl, *end = text + len;

	while (line < end && (nl = memchr(line, '\n', (size_t)(end - line))) != NULL) {
		int rc;

		*nl = '\0';
		rc = memchr(line, '\0', (size_t)(nl - line)) != NULL ? -1 : parse_line(line, ix);
		*nl = '\n';
		if (rc < 0)
			return -1;
		ix->lines++;
		line = nl + 1;
	}
	return line - text;
}

/* The first line; -1 if it is not ours for this UIDVALIDITY (0: any, taken from it). */
static ssize_t parse_header(const char *text, size_t len, uint32_t *uidvalidity)
{
	const char *nl = memchr(text, '\n', len), *p = text + 6;
	uint64_t v = 0;

	if (nl == NULL || len < 7 || memcmp(text, "PI 1 V", 6) != 0 ||
	    parse_u64(&p, &v) < 0 || p != nl || v == 0 || v > UINT32_MAX ||
	    (*uidvalidity != 0 && v != *uidvalidity))
		return -1;
	*uidvalidity = (uint32_t)v;
	return nl + 1 - text;
}

/* ---- reading ----------------------------------------------------------------------- */

/* Read len bytes at off (or up to EOF) into b. */
static int read_at(int fd, off_t off, size_t len, struct buf *b)
{
	char chunk[65536];

	while (len > 0) {
		ssize_t n = pread(fd, chunk, len < sizeof(chunk) ? len : sizeof(chunk), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (buf_append(b, chunk, (size_t)n) < 0)
			return -1;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static void reset(struct ms_index *ix, uint32_t uidvalidity)
{
	ms_index_free(ix);
	ix->uidvalidity = uidvalidity;
}

/* Read the file from ix->off (0: from the start, header included). */
static int read_from(int fd, const struct stat *st, struct ms_index *ix, uint32_t uidvalidity)
{
	struct buf b;
	ssize_t used, hdr = 0;
	int rc = 0;

	buf_init(&b, MS_INDEX_MAX);
	if (read_at(fd, ix->off, (size_t)(st->st_size - ix->off), &b) < 0) {
		buf_free(&b);
		return -1;
	}
	if (ix->off == 0) {
		hdr = b.len > 0 ? parse_header(b.data, b.len, &uidvalidity) : -1;
		if (hdr < 0) {
			buf_free(&b);
			reset(ix, uidvalidity);
			return 0;	/* foreign or broken: as good as missing */
		}
		ix->exists = true;
		ix->uidvalidity = uidvalidity;
		ix->lines = 1;
		ix->dev = st->st_dev;
		ix->ino = st->st_ino;
	}
	used = parse_lines(b.data + hdr, b.len - (size_t)hdr, ix);
	if (used < 0)
		reset(ix, uidvalidity);
	else
		ix->off += hdr + used;
	buf_free(&b);
	return rc;
}

int ms_index_refresh(int dirfd, struct ms_index *ix, uint32_t uidvalidity)
{
	struct stat st;
	int fd, rc;

	if (uidvalidity != 0 && ix->uidvalidity != uidvalidity)
		reset(ix, uidvalidity);
	uidvalidity = ix->uidvalidity != 0 ? ix->uidvalidity : uidvalidity;
	fd = openat(dirfd, MS_INDEX, O_RDONLY | MS_FILE_FLAGS);
	if (fd < 0) {
		if (errno != ENOENT)
			return -1;
		if (!ix->exists && ix->n == 0)
			return 0;
		reset(ix, uidvalidity);
		return 1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ms_close(fd);
		reset(ix, uidvalidity);
		return 1;
	}
	if (ix->exists && st.st_dev == ix->dev && st.st_ino == ix->ino && st.st_size == ix->off) {
		(void)close(fd);
		return 0;
	}
	if (!ix->exists || st.st_dev != ix->dev || st.st_ino != ix->ino || st.st_size < ix->off)
		reset(ix, uidvalidity);
	rc = read_from(fd, &st, ix, uidvalidity);
	ms_close(fd);
	return rc < 0 ? -1 : 1;
}

/* ---- writing ----------------------------------------------------------------------- */

int ms_index_fmt_rec(struct buf *b, const struct ms_idxrec *r)
{
	/* Hand-formatted: the first open of a large folder writes one per message. */
	char dir[3] = { ' ', r->dir, ' ' };
	int rc = buf_append(b, "R ", 2) | buf_append_u64(b, r->uid) | buf_append_char(b, ' ') |
		 buf_append_u64(b, r->modseq) | buf_append_char(b, ' ') |
		 buf_append_u64(b, r->size) | buf_append_char(b, ' ') |
		 buf_append_u64(b, r->file_size) | buf_append_char(b, ' ') |
		 buf_append_u64(b, r->mtime < 0 ? 0 : (unsigned long long)r->mtime);

	return rc | buf_append(b, dir, sizeof(dir)) | buf_append_str(b, r->file) |
	       buf_append_char(b, '\n');
}

int ms_index_fmt_expunge(struct buf *b, uint32_t uid)
{
	return buf_printf(b, "X %" PRIu32 "\n", uid);
}

int ms_index_fmt_state(struct buf *b, uint64_t highestmodseq, const struct ms_idxstate *st)
{
	if (st == NULL || !st->valid)
		return buf_printf(b, "S H%" PRIu64 "\n", highestmodseq);
	return buf_printf(b, "S H%" PRIu64 " U%" PRIu32 " L%llu:%lld:%lld.%09ld C%lld.%09ld"
			  " N%lld.%09ld\n", highestmodseq, st->uidnext,
			  (unsigned long long)st->ul_ino, (long long)st->ul_size,
			  (long long)st->ul_mtime.tv_sec, st->ul_mtime.tv_nsec,
			  (long long)st->cur_mtime.tv_sec, st->cur_mtime.tv_nsec,
			  (long long)st->new_mtime.tv_sec, st->new_mtime.tv_nsec);
}

/* Note the file's identity after we wrote all of it. */
static int note_written(int dirfd, struct ms_index *ix)
{
	struct stat st;

	if (fstatat(dirfd, MS_INDEX, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	ix->exists = true;
	ix->dev = st.st_dev;
	ix->ino = st.st_ino;
	ix->off = st.st_size;
	return 0;
}

/* Rewrite the file from ix (tmp + rename) when appended lines have piled up, or always
 * with force. The caller holds the uidlist lock. */
static int compact(int dirfd, struct ms_index *ix, bool force)
{
	size_t live = ix->live, o = 0;
	struct buf b;
	int rc;

	if (!force && ix->exists && ix->lines < 1024 + 2 * live)
		return 0;
	buf_init(&b, MS_INDEX_MAX);
	rc = buf_printf(&b, "PI 1 V%" PRIu32 "\n", ix->uidvalidity);
	for (size_t i = 0; i < ix->n && rc == 0; i++) {
		if (ix->recs[i].file == NULL)
			continue;
		rc = ms_index_fmt_rec(&b, &ix->recs[i]);
		ix->recs[o++] = ix->recs[i];
	}
	if (rc == 0) {
		ix->n = o;
		rc = ms_index_fmt_state(&b, ix->highestmodseq, &ix->state);
	}
	if (rc == 0)
		rc = ms_write_replace(dirfd, MS_INDEX_TMP, MS_INDEX, b.data, b.len);
	buf_free(&b);
	if (rc == 0) {
		ix->lines = live + 2;
		rc = note_written(dirfd, ix);
	}
	return rc;
}

/* A folder's first index: the header and the lines as they are (formatting every record
 * again, as compact() would, doubles the cost of a first open). */
static int write_new(int dirfd, struct ms_index *ix, const struct buf *lines)
{
	char head[32];
	int rc = str_fmt(head, sizeof(head), "PI 1 V%" PRIu32 "\n", ix->uidvalidity);

	if (rc >= 0)
		rc = ms_write_replace2(dirfd, MS_INDEX_TMP, MS_INDEX, head, strlen(head),
				       lines->data, lines->len);
	if (rc == 0) {
		ix->lines++;	/* the header */
		rc = note_written(dirfd, ix);
	}
	return rc;
}

int ms_index_append(int dirfd, struct ms_index *ix, const struct buf *lines)
{
	struct stat st;
	int fd, rc;

	if (lines->len == 0)
		return 0;
	/* Apply first: a new file is then written whole with these lines in it. */
	rc = parse_lines(lines->data, lines->len, ix) == (ssize_t)lines->len ? 0 : -1;
	if (rc < 0) {
		errno = EINVAL;
		return -1;
	}
	if (!ix->exists)
		return write_new(dirfd, ix, lines);
	fd = openat(dirfd, MS_INDEX, O_WRONLY | O_APPEND | MS_FILE_FLAGS);
	if (fd < 0)
		return errno == ENOENT ? compact(dirfd, ix, true) : -1;
	/* Only append to the very file we have read to its end; else rewrite it. */
	if (fstat(fd, &st) < 0 || st.st_ino != ix->ino || st.st_dev != ix->dev ||
	    st.st_size != ix->off) {
		ms_close(fd);
		return compact(dirfd, ix, true);
	}
	rc = write_all(fd, lines->data, lines->len);
	if (rc == 0)
		ix->off += (off_t)lines->len;
	ms_close(fd);
	return rc < 0 ? -1 : compact(dirfd, ix, false);
}
