/* Checkpoints (see checkpoint.h for the format, the checksum and the crash-safety argument).
 *
 * Saving builds the safetensors header with the checksum digits zeroed, streams the file into
 * PATH.tmp while hashing exactly the bytes written, patches the digest in with pwrite,
 * then fsync, rename, fsync of the directory. Every failure before the rename unlinks the
 * temporary file, so PATH is never touched unless the new file is complete and synced.
 * Loading reads the whole file through the safetensors reader, hashes it in three pieces
 * (before the digits, 64 '0's, after them) so the image is never copied, and checks the
 * nnc.* metadata and the caller's expectations before copying anything out. */
#include "runtime/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- SHA-256 (nettle) ---------------------------------------------------------------------- */

void
sha256_init(Sha256 *s)
{
	nettle_sha256_init(&s->ctx);
}

void
sha256_update(Sha256 *s, const void *p, size_t n)
{
	nettle_sha256_update(&s->ctx, n, p);
}

void
sha256_final(Sha256 *s, unsigned char digest[32])
{
	nettle_sha256_digest(&s->ctx, SHA256_DIGEST_SIZE, digest);
}

void
sha256_hex(const unsigned char digest[32], char hex[65])
{
	static const char x[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = x[digest[i] >> 4];
		hex[2 * i + 1] = x[digest[i] & 15];
	}
	hex[64] = 0;
}

static const char zeros64[] = "0000000000000000000000000000000000000000000000000000000000000000";

int
ckpt_checksum(const unsigned char *bytes, size_t len, size_t digits, char hex[65])
{
	if (digits > len || len - digits < 64)
		return -1;
	Sha256 s;
	unsigned char d[32];
	sha256_init(&s);
	sha256_update(&s, bytes, digits);
	sha256_update(&s, zeros64, 64);
	sha256_update(&s, bytes + digits + 64, len - digits - 64);
	sha256_final(&s, d);
	sha256_hex(d, hex);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static char *
concat(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *s = malloc(na + nb + 1);
	if (s) {
		memcpy(s, a, na);
		memcpy(s + na, b, nb + 1);
	}
	return s;
}

/* "0123456789abcdef,..." for N words; malloc'd. */
static char *
words_hex(const uint64_t *w, size_t n)
{
	if (n > (SIZE_MAX - 1) / 17)
		return NULL;
	char *s = malloc(n * 17 + 1), *p = s;
	if (!s)
		return NULL;
	*p = 0;
	for (size_t i = 0; i < n; i++)
		p += snprintf(p, 18, "%s%016" PRIx64, i ? "," : "", w[i]);
	return s;
}

static int
parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses words_hex's format; *OUT is malloc'd (NULL when there are no words). */
static int
parse_words(const char *s, uint64_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!s)
		return -1;
	size_t len = strlen(s);
	if (len == 0)
		return 0;
	if ((len + 1) % 17)
		return -1;
	size_t k = (len + 1) / 17;
	uint64_t *w = malloc(k * sizeof *w);
	if (!w)
		return -1;
	for (size_t i = 0; i < k; i++) {
		const char *p = s + 17 * i;
		uint64_t v = 0;
		for (int j = 0; j < 16; j++) {
			int h = hexval(p[j]);
			if (h < 0) {
				free(w);
				return -1;
			}
			v = v << 4 | (uint64_t)h;
		}
		if (i + 1 < k && p[16] != ',') {
			free(w);
			return -1;
		}
		w[i] = v;
	}
	*out = w;
	*n = k;
	return 0;
}

static void
sha_observe(void *ctx, const void *p, size_t n)
{
	sha256_update(ctx, p, n);
}

/* fsync of the directory holding PATH, so the rename itself is durable. */
static int
sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	if (!slash)
		dir = concat(".", "");
	else if (slash == path)
		dir = concat("/", "");
	else {
		dir = malloc((size_t)(slash - path) + 1);
		if (dir) {
			memcpy(dir, path, (size_t)(slash - path));
			dir[slash - path] = 0;
		}
	}
	if (!dir) {
		errno = ENOMEM;
		return -1;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	if (rc < 0 && errno == EINVAL) /* some file systems cannot sync a directory */
		rc = 0;
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

static int
pwrite_all(int fd, const void *p, size_t n, off_t at)
{
	const unsigned char *s = p;
	while (n) {
		ssize_t w = pwrite(fd, s, n, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		s += w;
		n -= (size_t)w;
		at += w;
	}
	return 0;
}

/* ---- saving -------------------------------------------------------------------------------- */

enum { M_FORMAT, M_PLAN, M_EPOCH, M_STEP, M_RNG, M_ORDER, M_CHECKSUM, M_RESERVED };

int
ckpt_save(const char *path, const StTensor *t, size_t nt, const CkptInfo *info, unsigned flags,
	char *err, size_t errlen)
{
	if (!path || !*path)
		return fail(err, errlen, "checkpoint: no path given");
	if (!info || !info->plan || !*info->plan)
		return fail(err, errlen, "%s: cannot save checkpoint: no plan identity given", path);
	if ((info->nrng && !info->rng) || (info->norder && !info->data_order) ||
		(info->nextra && !info->extra))
		return fail(err, errlen, "%s: cannot save checkpoint: NULL rng, data_order or extra "
			"array with a non-zero count", path);
	if (flags & ~(unsigned)CKPT_KEEP_PREV)
		return fail(err, errlen, "%s: cannot save checkpoint: unknown flags 0x%x", path, flags);
	for (size_t i = 0; i < info->nextra; i++)
		if (info->extra[i].key && strncmp(info->extra[i].key, "nnc.", 4) == 0)
			return fail(err, errlen, "%s: cannot save checkpoint: metadata key '%.64s' is "
				"reserved (keys starting with \"nnc.\" belong to the checkpoint format)", path,
				info->extra[i].key);
	if (info->nextra > SIZE_MAX / sizeof(StMeta) - M_RESERVED)
		return fail(err, errlen, "%s: cannot save checkpoint: too much metadata", path);

	char epoch[24], step[24], checksum[72];
	snprintf(epoch, sizeof epoch, "%" PRIu64, info->epoch);
	snprintf(step, sizeof step, "%" PRIu64, info->step);
	snprintf(checksum, sizeof checksum, "sha256:%s", zeros64);
	char *rng = words_hex(info->rng, info->nrng);
	char *order = words_hex(info->data_order, info->norder);
	char *tmp = NULL, *prev = NULL;
	size_t nm = M_RESERVED + info->nextra;
	StMeta *meta = malloc(nm * sizeof *meta);
	tmp = concat(path, ".tmp");
	prev = concat(path, ".prev");
	StHeader h = {0};
	int fd = -1, rc = -1;
	char why[512];
	if (!rng || !order || !meta || !tmp || !prev) {
		fail(err, errlen, "%s: cannot save checkpoint: out of memory", path);
		goto out;
	}
	meta[M_FORMAT] = (StMeta){"nnc.format", CKPT_FORMAT};
	meta[M_PLAN] = (StMeta){"nnc.plan", info->plan};
	meta[M_EPOCH] = (StMeta){"nnc.epoch", epoch};
	meta[M_STEP] = (StMeta){"nnc.step", step};
	meta[M_RNG] = (StMeta){"nnc.rng", rng};
	meta[M_ORDER] = (StMeta){"nnc.data_order", order};
	meta[M_CHECKSUM] = (StMeta){"nnc.checksum", checksum};
	for (size_t i = 0; i < info->nextra; i++)
		meta[M_RESERVED + i] = info->extra[i];
	if (st_header_build(path, t, nt, meta, nm, &h, err, errlen) < 0)
		goto out;
	size_t digits = h.meta_pos[M_CHECKSUM] + 7;

	unlink(tmp); /* left by a killed run: never a live writer's, whom the caller's lock excludes */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0) {
		fail(err, errlen, "%s: cannot save checkpoint: cannot create %s: %s", path, tmp,
			strerror(errno));
		goto out;
	}
	Sha256 sha;
	unsigned char digest[32];
	char hex[65];
	sha256_init(&sha);
	if (st_write_fd(fd, tmp, &h, t, sha_observe, &sha, why, sizeof why) < 0) {
		fail(err, errlen, "%s: cannot save checkpoint: %s; the previous checkpoint is unchanged",
			path, why);
		goto out;
	}
	sha256_final(&sha, digest);
	sha256_hex(digest, hex);
	if (pwrite_all(fd, hex, 64, (off_t)digits) < 0 || fsync(fd) < 0) {
		fail(err, errlen, "%s: cannot save checkpoint: writing %s: %s; the previous checkpoint "
			"is unchanged", path, tmp, strerror(errno));
		goto out;
	}
	int cfd = fd;
	fd = -1;
	if (close(cfd) < 0) {
		fail(err, errlen, "%s: cannot save checkpoint: closing %s: %s; the previous checkpoint "
			"is unchanged", path, tmp, strerror(errno));
		goto out;
	}
	if (flags & CKPT_KEEP_PREV) {
		if ((unlink(prev) < 0 && errno != ENOENT) || (link(path, prev) < 0 && errno != ENOENT)) {
			fail(err, errlen, "%s: cannot save checkpoint: cannot keep the previous one as %s: "
				"%s; it is unchanged", path, prev, strerror(errno));
			goto out;
		}
	}
	if (rename(tmp, path) < 0) {
		fail(err, errlen, "%s: cannot save checkpoint: cannot rename %s over it: %s; the "
			"previous checkpoint is unchanged", path, tmp, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL; /* renamed: nothing to clean up any more */
	if (sync_dir(path) < 0) {
		fail(err, errlen, "%s: checkpoint written, but syncing its directory failed: %s; it may "
			"not survive a power loss", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	st_header_free(&h);
	free(meta);
	free(rng);
	free(order);
	free(tmp);
	free(prev);
	return rc;
}

/* ---- loading ------------------------------------------------------------------------------- */

void
ckpt_close(Ckpt *c)
{
	if (!c)
		return;
	st_close(c->file);
	free(c->rng);
	free(c->data_order);
	memset(c, 0, sizeof *c);
}

/* "F32 [10, 16]" into BUF. */
static const char *
describe(char *buf, size_t n, StDtype dt, int rank, const int64_t *dims)
{
	const char *name = st_dtype_name(dt);
	int k = snprintf(buf, n, "%s [", name ? name : "?");
	for (int i = 0; i < rank && k > 0 && (size_t)k < n; i++)
		k += snprintf(buf + k, n - (size_t)k, "%s%" PRId64, i ? ", " : "", dims[i]);
	if (k > 0 && (size_t)k < n)
		snprintf(buf + k, n - (size_t)k, "]");
	return buf;
}

static int
same_shape(const StTensor *t, const CkptExpect *e)
{
	if (t->dtype != e->dtype || t->rank != e->rank)
		return 0;
	for (int i = 0; i < t->rank; i++)
		if (t->dims[i] != e->dims[i])
			return 0;
	return 1;
}

static int
is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (hexval(s[i]) < 0)
			return 0;
	return 1;
}

int
ckpt_load(const char *path, const char *plan, const CkptExpect *expect, size_t nexpect, Ckpt *out,
	char *err, size_t errlen)
{
	char a[200], b[200];
	memset(out, 0, sizeof *out);
	if (nexpect && !expect)
		return fail(err, errlen, "%s: NULL expectation list", path);
	for (size_t i = 0; i < nexpect; i++)
		if (!expect[i].name || (unsigned)expect[i].dtype >= ST_NDTYPE || expect[i].rank < 0 ||
			expect[i].rank > ST_MAX_RANK || (expect[i].rank && !expect[i].dims))
			return fail(err, errlen, "%s: expectation %zu is invalid (no name, bad dtype or "
				"rank, or no dims)", path, i);

	StFile *f;
	if (st_open(path, &f, err, errlen) < 0)
		return -1;
	const char *fmt = st_meta_get(f, "nnc.format");
	const char *cs = st_meta_get(f, "nnc.checksum");
	uint64_t off = 0, len = 0;
	int have_cs = cs && strlen(cs) == 71 && strncmp(cs, "sha256:", 7) == 0 &&
		is_lower_hex(cs + 7, 64) && st_meta_span(f, "nnc.checksum", &off, &len) == 0 && len == 71;
	if (!fmt) {
		fail(err, errlen, "%s: not an nnc checkpoint (no nnc.format in its metadata)", path);
		goto bad;
	}
	if (have_cs) {
		size_t n;
		const unsigned char *bytes = st_file_bytes(f, &n);
		char hex[65];
		if (ckpt_checksum(bytes, n, (size_t)off + 7, hex) < 0 || memcmp(hex, cs + 7, 64) != 0) {
			fail(err, errlen, "%s: checksum mismatch: the file is corrupt (stored sha256 "
				"%.16s..., computed %.16s...)", path, cs + 7, hex);
			goto bad;
		}
	}
	if (strcmp(fmt, CKPT_FORMAT) != 0) {
		fail(err, errlen, "%s: unsupported checkpoint format '%.64s' (this build reads '%s')",
			path, fmt, CKPT_FORMAT);
		goto bad;
	}
	if (!have_cs) {
		fail(err, errlen, "%s: corrupt checkpoint: nnc.checksum is missing or malformed", path);
		goto bad;
	}
	out->plan = st_meta_get(f, "nnc.plan");
	const char *bad_key = !out->plan ? "nnc.plan" :
		parse_u64(st_meta_get(f, "nnc.epoch"), &out->epoch) < 0 ? "nnc.epoch" :
		parse_u64(st_meta_get(f, "nnc.step"), &out->step) < 0 ? "nnc.step" :
		parse_words(st_meta_get(f, "nnc.rng"), &out->rng, &out->nrng) < 0 ? "nnc.rng" :
		parse_words(st_meta_get(f, "nnc.data_order"), &out->data_order, &out->norder) < 0 ?
		"nnc.data_order" : NULL;
	if (bad_key) {
		fail(err, errlen, "%s: corrupt checkpoint: %s is missing or malformed", path, bad_key);
		goto bad;
	}
	if (plan && strcmp(plan, out->plan) != 0) {
		fail(err, errlen, "%s: plan mismatch: the checkpoint was written for plan '%.80s', this "
			"run's plan is '%.80s'", path, out->plan, plan);
		goto bad;
	}
	size_t missing = 0, first = 0;
	for (size_t i = 0; i < nexpect; i++)
		if (!st_find(f, expect[i].name) && !missing++)
			first = i;
	if (missing) {
		const CkptExpect *e = &expect[first];
		char more[64] = "";
		if (missing > 1)
			snprintf(more, sizeof more, " (and %zu more missing)", missing - 1);
		fail(err, errlen, "%s: missing tensor '%.80s' (expected %s)%s", path, e->name,
			describe(a, sizeof a, e->dtype, e->rank, e->dims), more);
		goto bad;
	}
	for (size_t i = 0; i < nexpect; i++) {
		const StTensor *t = st_find(f, expect[i].name);
		if (!same_shape(t, &expect[i])) {
			fail(err, errlen, "%s: shape mismatch: tensor '%.80s' is %s in the checkpoint, "
				"expected %s", path, t->name, describe(a, sizeof a, t->dtype, t->rank, t->dims),
				describe(b, sizeof b, expect[i].dtype, expect[i].rank, expect[i].dims));
			goto bad;
		}
	}
	for (size_t i = 0; i < nexpect; i++) {
		const StTensor *t = st_find(f, expect[i].name);
		if (expect[i].dst && t->nbytes)
			memcpy(expect[i].dst, t->data, (size_t)t->nbytes);
	}
	out->file = f;
	return 0;
bad:
	free(out->rng);
	free(out->data_order);
	memset(out, 0, sizeof *out);
	st_close(f);
	return -1;
}
