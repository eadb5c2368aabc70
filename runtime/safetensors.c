/* Safetensors writer and reader (see safetensors.h for the format and the invariants).
 *
 * The writer validates everything first, then builds the header in memory (its JSON emitted
 * in the reference implementation's order and escaping) and streams the tensors after it.
 * The reader loads the whole file, has jansson parse the header (after refusing NUL bytes,
 * which jansson would take for the end of its input), walks jansson's tree into tensors and
 * metadata, then checks sizes and that the tensors tile the data section. The StFile keeps the
 * file bytes and jansson's tree, which owns every name and metadata string it hands out.
 * jansson does not say where a value lies in its input, so two things scan the accepted header
 * for string tokens (a '"' and on to the next unescaped '"'): the raw spans of metadata values
 * (st_meta_span), and, for a duplicate key, the depth it was found at, to name it as a tensor,
 * a field or a metadata key. */
#include "runtime/safetensors.h"
#include "core/file.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- dtypes -------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	size_t size;
} dtypes[ST_NDTYPE] = {
	[ST_BOOL] = {"BOOL", 1},
	[ST_U8] = {"U8", 1},
	[ST_I8] = {"I8", 1},
	[ST_F8_E5M2] = {"F8_E5M2", 1},
	[ST_F8_E4M3] = {"F8_E4M3", 1},
	[ST_I16] = {"I16", 2},
	[ST_U16] = {"U16", 2},
	[ST_F16] = {"F16", 2},
	[ST_BF16] = {"BF16", 2},
	[ST_I32] = {"I32", 4},
	[ST_U32] = {"U32", 4},
	[ST_F32] = {"F32", 4},
	[ST_F64] = {"F64", 8},
	[ST_I64] = {"I64", 8},
	[ST_U64] = {"U64", 8},
};

const char *
st_dtype_name(StDtype t)
{
	return (unsigned)t < ST_NDTYPE ? dtypes[t].name : NULL;
}

size_t
st_dtype_size(StDtype t)
{
	return (unsigned)t < ST_NDTYPE ? dtypes[t].size : 0;
}

int
st_dtype_parse(const char *name, StDtype *out)
{
	for (int i = 0; i < ST_NDTYPE; i++)
		if (strcmp(name, dtypes[i].name) == 0) {
			*out = (StDtype)i;
			return 0;
		}
	return -1;
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

/* Length of the valid UTF-8 sequence at S (N bytes available), or 0 if it is not one:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t k;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2, cp = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		k = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t j = 1; j < k; j++) {
		if ((s[j] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[j] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

static int
utf8_valid(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(u + i, n - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

/* A name made safe to print in a message: at most SHOWN-4 bytes (cut at a character
 * boundary, then "..."), control characters replaced by '?'. */
enum { SHOWN = 100 };

static const char *
show(char buf[SHOWN], const char *s)
{
	size_t n = strlen(s), max = SHOWN - 4, k = n < max ? n : max;
	while (k < n && k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
		k--;
	for (size_t i = 0; i < k; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (k < n)
		memcpy(buf + k, "...", 3), k += 3;
	buf[k] = 0;
	return buf;
}

/* "[10, 16]", cut with "..." to fit N bytes. */
static const char *
fmt_shape(char *buf, size_t n, const int64_t *dims, int rank)
{
	size_t at = 0;
	buf[at++] = '[';
	for (int i = 0; i < rank; i++) {
		char num[32];
		int k = snprintf(num, sizeof num, "%s%" PRId64, i ? ", " : "", dims[i]);
		if (at + (size_t)k + 5 > n) {
			memcpy(buf + at, "...", 3);
			at += 3;
			break;
		}
		memcpy(buf + at, num, (size_t)k);
		at += (size_t)k;
	}
	buf[at++] = ']';
	buf[at] = 0;
	return buf;
}

/* Element count and byte count of a shape; -1 on a negative dimension or on overflow. */
static int
shape_bytes(StDtype dt, int rank, const int64_t *dims, uint64_t *nbytes)
{
	uint64_t n = 1;
	for (int i = 0; i < rank; i++) {
		if (dims[i] < 0)
			return -1;
		uint64_t d = (uint64_t)dims[i];
		if (d && n > UINT64_MAX / d)
			return -1;
		n *= d;
	}
	uint64_t size = st_dtype_size(dt);
	if (n > UINT64_MAX / size)
		return -1;
	*nbytes = n * size;
	return 0;
}

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct {
	unsigned char *p;
	size_t n, cap;
	int oom;
} Buf;

static void
buf_put(Buf *b, const void *s, size_t n)
{
	if (b->oom)
		return;
	if (n > b->cap - b->n) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->n < n) {
			if (cap > SIZE_MAX / 2) {
				b->oom = 1;
				return;
			}
			cap *= 2;
		}
		unsigned char *q = realloc(b->p, cap);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void
buf_str(Buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* A JSON string, escaped as serde_json does: '"' and '\\', the short escapes for \b \f \n \r
 * \t, \u00xx (lower-case hex) for other control characters, everything else verbatim. */
static void
buf_json_string(Buf *b, const char *s)
{
	buf_put(b, "\"", 1);
	const char *run = s;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *esc = NULL;
		char u[8];
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c < 0x20) {
				snprintf(u, sizeof u, "\\u%04x", c);
				esc = u;
			}
		}
		if (esc) {
			buf_put(b, run, (size_t)(s - run));
			buf_str(b, esc);
			run = s + 1;
		}
	}
	buf_put(b, run, (size_t)(s - run));
	buf_put(b, "\"", 1);
}

static int
cmp_data_order(const void *a, const void *b)
{
	const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
	if (x->dtype != y->dtype)
		return x->dtype > y->dtype ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
cmp_tensor_name(const void *a, const void *b)
{
	return strcmp((*(const StTensor *const *)a)->name, (*(const StTensor *const *)b)->name);
}

static int
cmp_meta_key(const void *a, const void *b)
{
	return strcmp((*(const StMeta *const *)a)->key, (*(const StMeta *const *)b)->key);
}

static int
check_tensor(const char *where, const StTensor *t, size_t i, uint64_t *nbytes, char *err,
	size_t errlen)
{
	char nb[SHOWN], sb[160];
	if (!t->name)
		return fail(err, errlen, "%s: tensor %zu has no name", where, i);
	if (!utf8_valid(t->name))
		return fail(err, errlen, "%s: tensor name '%s' is not valid UTF-8", where,
			show(nb, t->name));
	if (strcmp(t->name, "__metadata__") == 0)
		return fail(err, errlen, "%s: '__metadata__' is reserved and cannot name a tensor", where);
	if ((unsigned)t->dtype >= ST_NDTYPE)
		return fail(err, errlen, "%s: tensor '%s': unknown dtype %d", where, show(nb, t->name),
			(int)t->dtype);
	if (t->rank < 0 || t->rank > ST_MAX_RANK)
		return fail(err, errlen, "%s: tensor '%s': rank %d is outside 0..%d", where,
			show(nb, t->name), t->rank, ST_MAX_RANK);
	if (t->rank > 0 && !t->dims)
		return fail(err, errlen, "%s: tensor '%s': rank %d but no dims", where, show(nb, t->name),
			t->rank);
	for (int d = 0; d < t->rank; d++)
		if (t->dims[d] < 0)
			return fail(err, errlen, "%s: tensor '%s': negative dimension in shape %s", where,
				show(nb, t->name), fmt_shape(sb, sizeof sb, t->dims, t->rank));
	if (shape_bytes(t->dtype, t->rank, t->dims, nbytes) < 0)
		return fail(err, errlen, "%s: tensor '%s': shape %s of %s overflows a 64-bit byte count",
			where, show(nb, t->name), fmt_shape(sb, sizeof sb, t->dims, t->rank),
			st_dtype_name(t->dtype));
	if (*nbytes && !t->data)
		return fail(err, errlen, "%s: tensor '%s': %" PRIu64 " bytes of data but no data pointer",
			where, show(nb, t->name), *nbytes);
	if (*nbytes > SIZE_MAX)
		return fail(err, errlen, "%s: tensor '%s': %" PRIu64 " bytes do not fit in memory", where,
			show(nb, t->name), *nbytes);
	return 0;
}

int
st_header_build(const char *path, const StTensor *t, size_t nt, const StMeta *meta, size_t nmeta,
	StHeader *h, char *err, size_t errlen)
{
	const char *where = path ? path : "safetensors";
	char nb[SHOWN];
	memset(h, 0, sizeof *h);
	if ((nt && !t) || (nmeta && !meta))
		return fail(err, errlen, "%s: NULL tensor or metadata array", where);

	uint64_t *sizes = calloc(nt ? nt : 1, sizeof *sizes);
	const StTensor **byorder = calloc(nt ? nt : 1, sizeof *byorder);
	const StTensor **byname = calloc(nt ? nt : 1, sizeof *byname);
	const StMeta **bykey = calloc(nmeta ? nmeta : 1, sizeof *bykey);
	h->order = calloc(nt ? nt : 1, sizeof *h->order);
	h->meta_pos = calloc(nmeta ? nmeta : 1, sizeof *h->meta_pos);
	Buf b = {0};
	int rc = -1;
	if (!sizes || !byorder || !byname || !bykey || !h->order || !h->meta_pos) {
		fail(err, errlen, "%s: out of memory building the header", where);
		goto out;
	}

	for (size_t i = 0; i < nt; i++) {
		if (check_tensor(where, &t[i], i, &sizes[i], err, errlen) < 0)
			goto out;
		byorder[i] = byname[i] = &t[i];
	}
	qsort(byname, nt, sizeof *byname, cmp_tensor_name);
	for (size_t i = 1; i < nt; i++)
		if (strcmp(byname[i - 1]->name, byname[i]->name) == 0) {
			fail(err, errlen, "%s: duplicate tensor name '%s'", where, show(nb, byname[i]->name));
			goto out;
		}
	for (size_t j = 0; j < nmeta; j++) {
		if (!meta[j].key || !meta[j].value) {
			fail(err, errlen, "%s: metadata entry %zu has a NULL key or value", where, j);
			goto out;
		}
		if (!utf8_valid(meta[j].key) || !utf8_valid(meta[j].value)) {
			fail(err, errlen, "%s: metadata '%s': not valid UTF-8", where, show(nb, meta[j].key));
			goto out;
		}
		bykey[j] = &meta[j];
	}
	qsort(bykey, nmeta, sizeof *bykey, cmp_meta_key);
	for (size_t j = 1; j < nmeta; j++)
		if (strcmp(bykey[j - 1]->key, bykey[j]->key) == 0) {
			fail(err, errlen, "%s: duplicate metadata key '%s'", where, show(nb, bykey[j]->key));
			goto out;
		}
	qsort(byorder, nt, sizeof *byorder, cmp_data_order);

	buf_put(&b, "\0\0\0\0\0\0\0\0{", 9);
	if (nmeta) {
		buf_str(&b, "\"__metadata__\":{");
		for (size_t j = 0; j < nmeta; j++) {
			if (j)
				buf_put(&b, ",", 1);
			buf_json_string(&b, bykey[j]->key);
			buf_put(&b, ":", 1);
			h->meta_pos[bykey[j] - meta] = b.n + 1;
			buf_json_string(&b, bykey[j]->value);
		}
		buf_put(&b, "}", 1);
	}
	uint64_t at = 0;
	for (size_t i = 0; i < nt; i++) {
		const StTensor *x = byorder[i];
		size_t k = (size_t)(x - t);
		char num[64];
		h->order[i] = k;
		if (nmeta || i)
			buf_put(&b, ",", 1);
		buf_json_string(&b, x->name);
		buf_str(&b, ":{\"dtype\":\"");
		buf_str(&b, st_dtype_name(x->dtype));
		buf_str(&b, "\",\"shape\":[");
		for (int d = 0; d < x->rank; d++) {
			snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", x->dims[d]);
			buf_str(&b, num);
		}
		if (sizes[k] > UINT64_MAX - at) {
			fail(err, errlen, "%s: the total data size overflows 64 bits", where);
			goto out;
		}
		snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", at, at + sizes[k]);
		buf_str(&b, num);
		at += sizes[k];
	}
	buf_put(&b, "}", 1);
	while ((b.n - 8) % 8)
		buf_put(&b, " ", 1);
	if (b.oom) {
		fail(err, errlen, "%s: out of memory building the header", where);
		goto out;
	}
	if (b.n - 8 > ST_MAX_HEADER) {
		fail(err, errlen, "%s: header of %zu bytes exceeds the %d-byte limit", where, b.n - 8,
			ST_MAX_HEADER);
		goto out;
	}
	uint64_t hn = b.n - 8;
	for (int i = 0; i < 8; i++)
		b.p[i] = (unsigned char)(hn >> (8 * i));
	h->bytes = b.p;
	h->len = b.n;
	h->nt = nt;
	h->data_len = at;
	b.p = NULL;
	rc = 0;
out:
	free(b.p);
	free(sizes);
	free(byorder);
	free(byname);
	free(bykey);
	if (rc < 0) {
		free(h->order);
		free(h->meta_pos);
		memset(h, 0, sizeof *h);
	}
	return rc;
}

void
st_header_free(StHeader *h)
{
	free(h->bytes);
	free(h->order);
	free(h->meta_pos);
	memset(h, 0, sizeof *h);
}

static int
write_all(int fd, const void *p, size_t n)
{
	const unsigned char *s = p;
	while (n) {
		size_t chunk = n < ((size_t)1 << 30) ? n : (size_t)1 << 30;
		ssize_t w = write(fd, s, chunk);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t
tensor_nbytes(const StTensor *t)
{
	uint64_t n = 0;
	shape_bytes(t->dtype, t->rank, t->dims, &n); /* validated by st_header_build */
	return (size_t)n;
}

int
st_write_fd(int fd, const char *path, const StHeader *h, const StTensor *t, StObserver *observe,
	void *ctx, char *err, size_t errlen)
{
	if (write_all(fd, h->bytes, h->len) < 0)
		return fail(err, errlen, "%s: write failed: %s", path, strerror(errno));
	if (observe)
		observe(ctx, h->bytes, h->len);
	for (size_t i = 0; i < h->nt; i++) {
		const StTensor *x = &t[h->order[i]];
		size_t n = tensor_nbytes(x);
		if (!n)
			continue;
		if (write_all(fd, x->data, n) < 0) {
			char nb[SHOWN];
			return fail(err, errlen, "%s: write failed in tensor '%s': %s", path,
				show(nb, x->name), strerror(errno));
		}
		if (observe)
			observe(ctx, x->data, n);
	}
	return 0;
}

int
st_write(const char *path, const StTensor *t, size_t nt, const StMeta *meta, size_t nmeta,
	char *err, size_t errlen)
{
	StHeader h;
	if (st_header_build(path, t, nt, meta, nmeta, &h, err, errlen) < 0)
		return -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		st_header_free(&h);
		return fail(err, errlen, "%s: cannot create: %s", path, strerror(errno));
	}
	int rc = st_write_fd(fd, path, &h, t, NULL, NULL, err, errlen);
	if (close(fd) < 0 && rc == 0)
		rc = fail(err, errlen, "%s: close failed: %s", path, strerror(errno));
	if (rc < 0)
		unlink(path);
	st_header_free(&h);
	return rc;
}

int
st_serialize(const StTensor *t, size_t nt, const StMeta *meta, size_t nmeta, unsigned char **out,
	size_t *len, char *err, size_t errlen)
{
	StHeader h;
	*out = NULL;
	*len = 0;
	if (st_header_build(NULL, t, nt, meta, nmeta, &h, err, errlen) < 0)
		return -1;
	if (h.data_len > SIZE_MAX - h.len) {
		st_header_free(&h);
		return fail(err, errlen, "safetensors: %" PRIu64 " bytes of data do not fit in memory",
			h.data_len);
	}
	size_t total = h.len + (size_t)h.data_len;
	unsigned char *p = malloc(total);
	if (!p) {
		st_header_free(&h);
		return fail(err, errlen, "safetensors: out of memory for %zu bytes", total);
	}
	memcpy(p, h.bytes, h.len);
	size_t at = h.len;
	for (size_t i = 0; i < h.nt; i++) {
		const StTensor *x = &t[h.order[i]];
		size_t n = tensor_nbytes(x);
		if (n)
			memcpy(p + at, x->data, n);
		at += n;
	}
	st_header_free(&h);
	*out = p;
	*len = total;
	return 0;
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct {
	uint64_t off, len;
} Span;

struct StFile {
	char *path;
	unsigned char *buf;
	size_t len;
	json_t *root;       /* the parsed header: owns the names and metadata strings */
	StTensor *t;        /* data order */
	size_t nt;
	const StTensor **byname;
	int64_t *dims;
	StMeta *meta;       /* sorted by key */
	Span *span;         /* parallel to meta */
	size_t nmeta;
};

void
st_close(StFile *f)
{
	if (!f)
		return;
	free(f->path);
	free(f->buf);
	json_decref(f->root);
	free(f->t);
	free(f->byname);
	free(f->dims);
	free(f->meta);
	free(f->span);
	free(f);
}

/* jansson's message made safe to print: control characters and bytes that are not UTF-8 (its
 * "near '...'" quotes the input, cut at a fixed length) become '?'. */
static const char *
clean_text(char *buf, size_t n, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), k = 0;
	for (size_t i = 0; i < len && k + 1 < n;) {
		size_t q = utf8_seq(u + i, len - i);
		if (q <= 1 || k + q >= n) {
			buf[k++] = q == 1 && u[i] >= 0x20 && u[i] != 0x7f ? s[i] : '?';
			i++;
			continue;
		}
		memcpy(buf + k, s + i, q);
		k += q;
		i += q;
	}
	buf[k] = 0;
	return buf;
}

/* Advances *I past the next string token of the header S (N bytes) and gives the span between
 * its quotes. Only run on a header jansson has accepted, where a '"' outside a string opens one
 * and a '"' inside one either follows a backslash or closes it. */
static void
next_string(const unsigned char *s, size_t n, size_t *i, Span *sp)
{
	while (*i < n && s[*i] != '"')
		(*i)++;
	size_t open = ++*i;
	while (*i < n && s[*i] != '"')
		*i += s[*i] == '\\' ? 2 : 1;
	sp->off = open;
	sp->len = *i - open;
	(*i)++;
}

/* A JSON string token of the header S (SP: between its quotes), decoded by jansson, for a
 * message. */
static const char *
show_token(char buf[SHOWN], const unsigned char *s, Span sp)
{
	json_t *j = sp.off ? json_loadb((const char *)s + sp.off - 1, (size_t)sp.len + 2,
		JSON_DECODE_ANY, NULL) : NULL;
	show(buf, json_is_string(j) ? json_string_value(j) : "?");
	json_decref(j);
	return buf;
}

/* jansson's duplicate-key error, at byte POS of the header S (just after the key), said the
 * way nnc's tables name things: the depth of the object holding the key (1: the top level)
 * says whether it is a tensor name, a tensor's field or a metadata key. The bytes before POS
 * are JSON jansson has read, so the scan sees every string token whole. */
static int
duplicate_key(const char *path, const unsigned char *s, size_t pos, char *err, size_t errlen)
{
	char nb[SHOWN], nb2[SHOWN];
	int depth = 0;
	Span top = {0, 0}, key = {0, 0};
	for (size_t i = 0; i < pos;) {
		if (s[i] == '"') {
			next_string(s, pos, &i, &key);
			if (depth == 1)
				top = key;
			continue;
		}
		depth += s[i] == '{' || s[i] == '[' ? 1 : s[i] == '}' || s[i] == ']' ? -1 : 0;
		i++;
	}
	const char *k = show_token(nb, s, key), *t = show_token(nb2, s, top);
	if (depth == 1 && strcmp(k, "__metadata__") == 0)
		return fail(err, errlen, "%s: '__metadata__' appears twice", path);
	if (depth == 1)
		return fail(err, errlen, "%s: duplicate tensor name '%s'", path, k);
	if (depth == 2 && strcmp(t, "__metadata__") == 0)
		return fail(err, errlen, "%s: __metadata__ has duplicate key '%s'", path, k);
	if (depth == 2)
		return fail(err, errlen, "%s: tensor '%s': duplicate field '%s'", path, t, k);
	return fail(err, errlen, "%s: header JSON, byte %zu: duplicate key '%s'", path, pos + 7, k);
}

typedef struct {
	StMeta m;
	Span s;
} MetaEntry;

static int
cmp_meta_entry(const void *a, const void *b)
{
	return strcmp(((const MetaEntry *)a)->m.key, ((const MetaEntry *)b)->m.key);
}

static int
cmp_offset(const void *a, const void *b)
{
	const StTensor *x = a, *y = b;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->nbytes != y->nbytes)
		return x->nbytes < y->nbytes ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* One tensor's entry: X is its value. Fills T (offset relative to the data section). */
static int
read_tensor(StFile *f, json_t *x, StTensor *t, int64_t *dims, char *err, size_t errlen)
{
	char nb[SHOWN], sb[160];
	const char *name = show(nb, t->name);
	if (!json_is_object(x))
		return fail(err, errlen, "%s: tensor '%s': expected an object with dtype, shape and "
			"data_offsets", f->path, name);
	const char *k;
	json_t *v;
	json_object_foreach(x, k, v)
		if (strcmp(k, "dtype") != 0 && strcmp(k, "shape") != 0 && strcmp(k, "data_offsets") != 0)
			return fail(err, errlen, "%s: tensor '%s': unknown field '%s'", f->path, name,
				show(sb, k));
	json_t *dt = json_object_get(x, "dtype"), *shape = json_object_get(x, "shape"),
		*offs = json_object_get(x, "data_offsets");
	if (!dt || !shape || !offs)
		return fail(err, errlen, "%s: tensor '%s': missing field '%s'", f->path, name,
			!dt ? "dtype" : !shape ? "shape" : "data_offsets");
	if (!json_is_string(dt))
		return fail(err, errlen, "%s: tensor '%s': dtype must be a string", f->path, name);
	if (st_dtype_parse(json_string_value(dt), &t->dtype) < 0)
		return fail(err, errlen, "%s: tensor '%s': unknown dtype '%s'", f->path, name,
			show(sb, json_string_value(dt)));
	if (!json_is_array(shape))
		return fail(err, errlen, "%s: tensor '%s': shape must be an array of integers", f->path,
			name);
	if (json_array_size(shape) > ST_MAX_RANK)
		return fail(err, errlen, "%s: tensor '%s': shape has %zu dimensions, more than %d",
			f->path, name, json_array_size(shape), ST_MAX_RANK);
	int rank = 0;
	size_t i;
	json_array_foreach(shape, i, v) {
		if (!json_is_integer(v))
			return fail(err, errlen, "%s: tensor '%s': shape must be an array of integers",
				f->path, name);
		if (json_integer_value(v) < 0)
			return fail(err, errlen, "%s: tensor '%s': shape dimension %d is negative", f->path,
				name, rank);
		dims[rank++] = (int64_t)json_integer_value(v);
	}
	t->rank = rank;
	t->dims = dims;
	uint64_t be[2];
	int n = 0;
	if (json_is_array(offs) && json_array_size(offs) == 2)
		json_array_foreach(offs, i, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				break;
			be[n++] = (uint64_t)json_integer_value(v);
		}
	if (n != 2)
		return fail(err, errlen, "%s: tensor '%s': data_offsets must be [begin, end], two "
			"non-negative integers", f->path, name);
	if (be[0] > be[1])
		return fail(err, errlen, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
			"] are reversed (begin > end)", f->path, name, be[0], be[1]);
	if (shape_bytes(t->dtype, rank, dims, &t->nbytes) < 0)
		return fail(err, errlen, "%s: tensor '%s': shape %s of %s overflows a 64-bit byte count",
			f->path, name, fmt_shape(sb, sizeof sb, dims, rank), st_dtype_name(t->dtype));
	if (be[1] - be[0] != t->nbytes)
		return fail(err, errlen, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
			"] do not match shape %s of %s (%" PRIu64 " bytes)", f->path, name, be[0], be[1],
			fmt_shape(sb, sizeof sb, dims, rank), st_dtype_name(t->dtype), t->nbytes);
	t->offset = be[0];
	return 0;
}

/* The metadata: its entries sorted by key, with the spans of their values in the file. Every
 * tensor entry before it has been checked, so it holds exactly four strings (its three field
 * names and its dtype) and its name a fifth: the metadata's key is string token 5 * BEFORE. */
static int
read_meta(StFile *f, json_t *m, size_t before, uint64_t hlen, char *err, size_t errlen)
{
	char nb[SHOWN];
	if (!json_is_object(m))
		return fail(err, errlen, "%s: '__metadata__' must be an object of strings", f->path);
	size_t n = json_object_size(m);
	MetaEntry *me = calloc(n ? n : 1, sizeof *me);
	if (!me)
		return fail(err, errlen, "%s: out of memory", f->path);
	const unsigned char *s = f->buf + 8;
	size_t at = 0;
	Span skip;
	for (size_t k = 0; k <= 5 * before; k++)
		next_string(s, (size_t)hlen, &at, &skip);
	const char *key;
	json_t *v;
	json_object_foreach(m, key, v) {
		if (!json_is_string(v)) {
			free(me);
			return fail(err, errlen, "%s: __metadata__ '%s': value must be a string", f->path,
				show(nb, key));
		}
		MetaEntry *e = &me[f->nmeta++];
		e->m.key = key;
		e->m.value = json_string_value(v);
		next_string(s, (size_t)hlen, &at, &skip);
		next_string(s, (size_t)hlen, &at, &e->s);
		e->s.off += 8;
	}
	qsort(me, f->nmeta, sizeof *me, cmp_meta_entry);
	f->meta = calloc(n ? n : 1, sizeof *f->meta);
	f->span = calloc(n ? n : 1, sizeof *f->span);
	if (!f->meta || !f->span) {
		free(me);
		return fail(err, errlen, "%s: out of memory", f->path);
	}
	for (size_t j = 0; j < f->nmeta; j++) {
		f->meta[j] = me[j].m;
		f->span[j] = me[j].s;
	}
	free(me);
	return 0;
}

/* Walks the parsed header into F's tables, then checks the layout. */
static int
read_header(StFile *f, uint64_t hlen, char *err, size_t errlen)
{
	char nb[SHOWN], nb2[SHOWN];
	json_t *meta = json_object_get(f->root, "__metadata__");
	size_t ndims = 0;
	const char *key;
	json_t *v;
	f->nt = json_object_size(f->root) - (meta != NULL);
	json_object_foreach(f->root, key, v) {
		json_t *shape = json_is_object(v) ? json_object_get(v, "shape") : NULL;
		if (v != meta && json_is_array(shape) && json_array_size(shape) <= ST_MAX_RANK)
			ndims += json_array_size(shape);
	}
	f->t = calloc(f->nt ? f->nt : 1, sizeof *f->t);
	f->byname = calloc(f->nt ? f->nt : 1, sizeof *f->byname);
	f->dims = calloc(ndims ? ndims : 1, sizeof *f->dims);
	if (!f->t || !f->byname || !f->dims)
		return fail(err, errlen, "%s: out of memory", f->path);

	size_t i = 0, d = 0;
	json_object_foreach(f->root, key, v) {
		if (v == meta) {
			if (read_meta(f, meta, i, hlen, err, errlen) < 0)
				return -1;
			continue;
		}
		StTensor *t = &f->t[i++];
		t->name = key;
		if (read_tensor(f, v, t, f->dims + d, err, errlen) < 0)
			return -1;
		d += (size_t)t->rank;
	}

	/* Names are unique: jansson rejects duplicate keys. */
	qsort(f->t, f->nt, sizeof *f->t, cmp_offset);
	uint64_t data_len = f->len - 8 - hlen, at = 0;
	for (i = 0; i < f->nt; i++) {
		StTensor *t = &f->t[i];
		uint64_t b = t->offset, e = b + t->nbytes;
		if (e > data_len)
			return fail(err, errlen, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] "
				"extend past the end of the data section (%" PRIu64 " bytes): the file is "
				"truncated", f->path, show(nb, t->name), b, e, data_len);
		if (b < at)
			return fail(err, errlen, "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 "] and '%s' [%"
				PRIu64 ", %" PRIu64 "] overlap", f->path, show(nb, f->t[i - 1].name),
				f->t[i - 1].offset, f->t[i - 1].offset + f->t[i - 1].nbytes, show(nb2, t->name),
				b, e);
		if (b > at)
			return fail(err, errlen, "%s: bytes [%" PRIu64 ", %" PRIu64 ") of the data section "
				"belong to no tensor (a gap before '%s')", f->path, at, b, show(nb, t->name));
		at = e;
	}
	if (at != data_len)
		return fail(err, errlen, "%s: the data section has %" PRIu64 " bytes but the tensors "
			"cover only %" PRIu64 " (%" PRIu64 " trailing bytes)", f->path, data_len, at,
			data_len - at);
	for (i = 0; i < f->nt; i++) {
		StTensor *t = &f->t[i];
		t->offset += 8 + hlen;
		t->data = f->buf + t->offset;
		f->byname[i] = t;
	}
	qsort(f->byname, f->nt, sizeof *f->byname, cmp_tensor_name);
	return 0;
}

/* Takes ownership of BUF (LEN bytes), whatever the outcome. */
static int
parse_owned(unsigned char *buf, size_t len, const char *label, StFile **out, char *err,
	size_t errlen)
{
	*out = NULL;
	StFile *f = calloc(1, sizeof *f);
	char *path = malloc(strlen(label) + 1);
	if (!f || !path) {
		free(f);
		free(path);
		free(buf);
		return fail(err, errlen, "%s: out of memory", label);
	}
	strcpy(path, label);
	f->path = path;
	f->buf = buf;
	f->len = len;

	if (len == 0) {
		fail(err, errlen, "%s: file is empty: truncated, or not a safetensors file", path);
		goto bad;
	}
	if (len < 8) {
		fail(err, errlen, "%s: file is truncated: %zu bytes, shorter than the 8-byte header "
			"length", path, len);
		goto bad;
	}
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | buf[i];
	if (hlen > ST_MAX_HEADER) {
		fail(err, errlen, "%s: header length %" PRIu64 " exceeds the %d-byte limit (not a "
			"safetensors file?)", path, hlen, ST_MAX_HEADER);
		goto bad;
	}
	if (hlen > len - 8) {
		fail(err, errlen, "%s: file is truncated: header length %" PRIu64 " exceeds the %zu "
			"bytes after it", path, hlen, len - 8);
		goto bad;
	}
	if (hlen == 0 || buf[8] != '{') {
		fail(err, errlen, "%s: header JSON, byte 8: the header does not start with '{'", path);
		goto bad;
	}
	/* jansson would stop at a NUL as at the end of its input, and JSON has none anywhere. */
	const unsigned char *nul = memchr(buf + 8, 0, (size_t)hlen);
	if (nul) {
		fail(err, errlen, "%s: header JSON, byte %zu: a NUL byte (JSON has none; the header "
			"is padded with spaces)", path, (size_t)(nul - buf));
		goto bad;
	}
	json_error_t je;
	f->root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
	if (!f->root && json_error_code(&je) == json_error_duplicate_key && je.position > 0) {
		duplicate_key(path, buf + 8, (size_t)je.position, err, errlen);
		goto bad;
	}
	if (!f->root) {
		char text[2 * sizeof je.text];
		size_t at = json_error_code(&je) == json_error_premature_end_of_input ? (size_t)hlen :
			je.position > 0 ? (size_t)je.position - 1 : 0;
		fail(err, errlen, "%s: header JSON, byte %zu: %s", path, 8 + at,
			clean_text(text, sizeof text, je.text));
		goto bad;
	}
	if (read_header(f, hlen, err, errlen) < 0)
		goto bad;
	*out = f;
	return 0;
bad:
	st_close(f);
	return -1;
}

int
st_parse(const void *buf, size_t len, const char *label, StFile **out, char *err, size_t errlen)
{
	unsigned char *copy = malloc(len ? len : 1);
	*out = NULL;
	if (!copy)
		return fail(err, errlen, "%s: out of memory for %zu bytes", label, len);
	if (len)
		memcpy(copy, buf, len);
	return parse_owned(copy, len, label, out, err, errlen);
}

int
st_open(const char *path, StFile **out, char *err, size_t errlen)
{
	*out = NULL;
	const char *why;
	int fd = file_open_regular(path, &why);
	if (fd < 0)
		return fail(err, errlen, "%s: cannot open: %s", path, why);
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, "%s: cannot stat: %s", path, strerror(e));
	}
	if ((uintmax_t)sb.st_size > SIZE_MAX - 1) {
		close(fd);
		return fail(err, errlen, "%s: too large to read", path);
	}
	size_t len = (size_t)sb.st_size, got = 0;
	unsigned char *buf = malloc(len ? len : 1);
	if (!buf) {
		close(fd);
		return fail(err, errlen, "%s: out of memory for %zu bytes", path, len);
	}
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return fail(err, errlen, "%s: read failed: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != len) {
		free(buf);
		return fail(err, errlen, "%s: the file shrank while being read", path);
	}
	return parse_owned(buf, len, path, out, err, errlen);
}

size_t
st_count(const StFile *f)
{
	return f->nt;
}

const StTensor *
st_tensor_at(const StFile *f, size_t i)
{
	return i < f->nt ? &f->t[i] : NULL;
}

const StTensor *
st_find(const StFile *f, const char *name)
{
	size_t lo = 0, hi = f->nt;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, f->byname[mid]->name);
		if (c == 0)
			return f->byname[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t
st_meta_count(const StFile *f)
{
	return f->nmeta;
}

const StMeta *
st_meta_at(const StFile *f, size_t i)
{
	return i < f->nmeta ? &f->meta[i] : NULL;
}

static const StMeta *
meta_find(const StFile *f, const char *key)
{
	size_t lo = 0, hi = f->nmeta;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, f->meta[mid].key);
		if (c == 0)
			return &f->meta[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *
st_meta_get(const StFile *f, const char *key)
{
	const StMeta *m = meta_find(f, key);
	return m ? m->value : NULL;
}

int
st_meta_span(const StFile *f, const char *key, uint64_t *off, uint64_t *len)
{
	const StMeta *m = meta_find(f, key);
	if (!m)
		return -1;
	*off = f->span[m - f->meta].off;
	*len = f->span[m - f->meta].len;
	return 0;
}

const unsigned char *
st_file_bytes(const StFile *f, size_t *len)
{
	*len = f->len;
	return f->buf;
}

const char *
st_file_path(const StFile *f)
{
	return f->path;
}
