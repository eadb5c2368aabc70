/* Tests of the safetensors writer and reader (runtime/safetensors.h): every dtype at ranks 0-4
 * round-trips through memory and through a file; the writer's bytes match, byte for byte, files
 * built by hand from the format's specification the way the reference implementation lays them
 * out; every reader error is provoked from a hand-written header and its message checked; every
 * writer validation fails with its message; every truncation of a valid file is reported as
 * one; and a few thousand random corruptions parse or fail without touching memory they should
 * not (run under ASan to see that). Deterministic; runs in well under a second. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/safetensors.h"

#include "tests/check.h"



/* A file image: the 8-byte length of JSON, JSON, then DATALEN bytes of data (value k & 0xff). */
static unsigned char *
mkfile(const char *json, size_t datalen, size_t *len)
{
	size_t n = strlen(json);
	unsigned char *b = malloc(8 + n + datalen + 1);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(b + 8, json, n);
	for (size_t k = 0; k < datalen; k++)
		b[8 + n + k] = (unsigned char)k;
	*len = 8 + n + datalen;
	return b;
}

/* Parsing JSON (+ DATALEN data bytes), as file NAME, must succeed: the file (NULL, said, when it
 * did not), with its image in *B (*LEN bytes; the caller frees it). */
static StFile *
good_header(const char *json, size_t datalen, const char *name, unsigned char **b, size_t *len)
{
	*b = mkfile(json, datalen, len);
	StFile *f = NULL;
	char err[512] = "";
	CHECK(st_parse(*b, *len, name, &f, err, sizeof err) == 0);
	if (!f)
		fprintf(stderr, "%s: %s\n", name, err);
	return f;
}

/* Parsing JSON (+ DATALEN data bytes) must fail with a message containing WANT. */
static void
bad_header(const char *json, size_t datalen, const char *want, int line)
{
	size_t len;
	unsigned char *b = mkfile(json, datalen, &len);
	StFile *f = NULL;
	char err[512] = "";
	int rc = st_parse(b, len, "x.safetensors", &f, err, sizeof err);
	checks++;
	if (rc != -1 || f) {
		failures++;
		fprintf(stderr, "%s:%d: header was accepted: %s\n", __FILE__, line, json);
		st_close(f);
	} else {
		check_msg_at(err, want, __FILE__, line);
	}
	free(b);
}

static void
fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t j = 0; j < n; j++)
		p[j] = (unsigned char)(j * 31u + seed * 7u + 1u);
}

/* ---- dtypes -------------------------------------------------------------------------------- */

static void
test_dtypes(void)
{
	static const char *names[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
		"BF16", "I32", "U32", "F32", "F64", "I64", "U64"};
	static const size_t sizes[] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};
	for (int i = 0; i < ST_NDTYPE; i++) {
		StDtype d;
		CHECK(strcmp(st_dtype_name((StDtype)i), names[i]) == 0);
		CHECK(st_dtype_size((StDtype)i) == sizes[i]);
		CHECK(st_dtype_parse(names[i], &d) == 0 && d == (StDtype)i);
	}
	StDtype d;
	CHECK(st_dtype_parse("F17", &d) == -1);
	CHECK(st_dtype_parse("f32", &d) == -1);
	CHECK(st_dtype_name(ST_NDTYPE) == NULL);
	CHECK(st_dtype_size(ST_NDTYPE) == 0);
}

/* ---- round trips --------------------------------------------------------------------------- */

enum { NRANK = 5, NT = ST_NDTYPE * (NRANK + 1) };

typedef struct {
	StTensor t[NT];
	int64_t dims[NT][4];
	char names[NT][32];
	unsigned char *data[NT];
} Sample;

/* Every dtype at ranks 0-4 (dims 3, 2, 1, 2) plus a zero-size [0, 5] tensor of each. */
static void
sample_init(Sample *s)
{
	static const int64_t shape[4] = {3, 2, 1, 2};
	int k = 0;
	for (int d = 0; d < ST_NDTYPE; d++)
		for (int r = 0; r <= NRANK; r++, k++) {
			StTensor *t = &s->t[k];
			size_t n = st_dtype_size((StDtype)d);
			if (r < NRANK) {
				for (int i = 0; i < r; i++) {
					s->dims[k][i] = shape[i];
					n *= (size_t)shape[i];
				}
				snprintf(s->names[k], sizeof s->names[k], "t.%s.r%d", st_dtype_name((StDtype)d), r);
				t->rank = r;
			} else {
				s->dims[k][0] = 0;
				s->dims[k][1] = 5;
				n = 0;
				snprintf(s->names[k], sizeof s->names[k], "empty.%s", st_dtype_name((StDtype)d));
				t->rank = 2;
			}
			s->data[k] = malloc(n ? n : 1);
			fill_pattern(s->data[k], n, (unsigned)k);
			t->name = s->names[k];
			t->dtype = (StDtype)d;
			t->dims = s->dims[k];
			t->data = n ? s->data[k] : NULL;
		}
}

static void
sample_free(Sample *s)
{
	for (int k = 0; k < NT; k++)
		free(s->data[k]);
}

static size_t
nbytes_of(const StTensor *t)
{
	size_t n = st_dtype_size(t->dtype);
	for (int i = 0; i < t->rank; i++)
		n *= (size_t)t->dims[i];
	return n;
}

static const StMeta sample_meta[] = {
	{"format", "pt"},
	{"note", "caf\xc3\xa9 \"quoted\" back\\slash\nnew line\ttab \x01 ctl \xf0\x9f\x98\x80"},
	{"empty", ""},
	{"\xe2\x88\x9a key", "unicode key"},
};
enum { NMETA = sizeof sample_meta / sizeof sample_meta[0] };

/* F must hold exactly the tensors of S and the sample metadata, laid out as the writer does. */
static void
check_sample_file(const StFile *f, const Sample *s)
{
	CHECK(st_count(f) == NT);
	for (int k = 0; k < NT; k++) {
		const StTensor *t = st_find(f, s->t[k].name);
		CHECK(t != NULL);
		if (!t)
			continue;
		size_t n = nbytes_of(&s->t[k]);
		CHECK(strcmp(t->name, s->t[k].name) == 0);
		CHECK(t->dtype == s->t[k].dtype);
		CHECK(t->rank == s->t[k].rank);
		CHECK(memcmp(t->dims, s->t[k].dims, (size_t)t->rank * sizeof *t->dims) == 0);
		CHECK(t->nbytes == n);
		CHECK(n == 0 || memcmp(t->data, s->data[k], n) == 0);
		CHECK(t->offset % st_dtype_size(t->dtype) == 0);
	}
	/* Data order: dtype decreasing, then name; contiguous from the 8-aligned data start. */
	size_t len;
	const unsigned char *bytes = st_file_bytes(f, &len);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | bytes[i];
	CHECK(hlen % 8 == 0);
	uint64_t at = 8 + hlen;
	for (size_t i = 0; i < st_count(f); i++) {
		const StTensor *t = st_tensor_at(f, i);
		CHECK(t->offset == at);
		CHECK(t->data == bytes + t->offset);
		at += t->nbytes;
		if (i) {
			const StTensor *p = st_tensor_at(f, i - 1);
			CHECK(p->dtype > t->dtype || (p->dtype == t->dtype && strcmp(p->name, t->name) < 0));
		}
	}
	CHECK(at == len);
	CHECK(st_tensor_at(f, st_count(f)) == NULL);
	CHECK(st_find(f, "t.F32.r9") == NULL);
	CHECK(st_find(f, "") == NULL);

	CHECK(st_meta_count(f) == NMETA);
	for (int j = 0; j < NMETA; j++) {
		const char *v = st_meta_get(f, sample_meta[j].key);
		CHECK(v && strcmp(v, sample_meta[j].value) == 0);
	}
	for (size_t j = 1; j < st_meta_count(f); j++)
		CHECK(strcmp(st_meta_at(f, j - 1)->key, st_meta_at(f, j)->key) < 0);
	CHECK(st_meta_get(f, "missing") == NULL);
	CHECK(st_meta_at(f, NMETA) == NULL);
	uint64_t off, n;
	CHECK(st_meta_span(f, "missing", &off, &n) == -1);
	CHECK(st_meta_span(f, "format", &off, &n) == 0 && n == 2 && memcmp(bytes + off, "pt", 2) == 0);
	const char *raw = "caf\xc3\xa9 \\\"quoted\\\" back\\\\slash\\nnew line\\ttab \\u0001 ctl "
		"\xf0\x9f\x98\x80";
	CHECK(st_meta_span(f, "note", &off, &n) == 0 && n == strlen(raw) &&
		memcmp(bytes + off, raw, n) == 0);
	CHECK(st_meta_span(f, "empty", &off, &n) == 0 && n == 0 && bytes[off - 1] == '"' &&
		bytes[off] == '"');
}

static void
test_roundtrip(const char *dir)
{
	Sample s;
	sample_init(&s);
	char err[512] = "";
	unsigned char *mem;
	size_t len;
	CHECK(st_serialize(s.t, NT, sample_meta, NMETA, &mem, &len, err, sizeof err) == 0);
	StFile *f = NULL;
	CHECK(st_parse(mem, len, "mem", &f, err, sizeof err) == 0);
	if (!f) {
		fprintf(stderr, "parse failed: %s\n", err);
		failures++;
		sample_free(&s);
		free(mem);
		return;
	}
	check_sample_file(f, &s);
	CHECK(strcmp(st_file_path(f), "mem") == 0);

	/* The reader's tensors are valid writer input: writing them back is the identity. */
	StTensor copy[NT];
	for (size_t i = 0; i < st_count(f); i++)
		copy[i] = *st_tensor_at(f, i);
	StMeta meta[NMETA];
	for (size_t j = 0; j < st_meta_count(f); j++)
		meta[j] = *st_meta_at(f, j);
	unsigned char *again;
	size_t len2;
	CHECK(st_serialize(copy, NT, meta, NMETA, &again, &len2, err, sizeof err) == 0);
	CHECK(len2 == len && memcmp(again, mem, len) == 0);
	free(again);
	st_close(f);

	/* Through a file: the same bytes. */
	char path[512];
	snprintf(path, sizeof path, "%s/sample.safetensors", dir);
	CHECK(st_write(path, s.t, NT, sample_meta, NMETA, err, sizeof err) == 0);
	CHECK(st_open(path, &f, err, sizeof err) == 0);
	if (f) {
		size_t flen;
		const unsigned char *fb = st_file_bytes(f, &flen);
		CHECK(flen == len && memcmp(fb, mem, len) == 0);
		CHECK(strcmp(st_file_path(f), path) == 0);
		check_sample_file(f, &s);
		st_close(f);
	}
	/* Writing through st_write_fd with an observer sees every byte, in order. */
	StHeader h;
	CHECK(st_header_build(path, s.t, NT, sample_meta, NMETA, &h, err, sizeof err) == 0);
	CHECK(h.len % 8 == 0 && h.nt == NT && h.len + h.data_len == len);
	CHECK(memcmp(h.bytes, mem, h.len) == 0);
	for (int j = 0; j < NMETA; j++)
		CHECK(h.bytes[h.meta_pos[j] - 1] == '"');
	CHECK(memcmp(h.bytes + h.meta_pos[0], "pt\"", 3) == 0);
	st_header_free(&h);
	CHECK(h.bytes == NULL && h.order == NULL);

	/* No tensors, no metadata. */
	unsigned char *e;
	size_t elen;
	CHECK(st_serialize(NULL, 0, NULL, 0, &e, &elen, err, sizeof err) == 0);
	CHECK(elen == 16 && memcmp(e, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
	CHECK(st_parse(e, elen, "empty", &f, err, sizeof err) == 0 && st_count(f) == 0 &&
		st_meta_count(f) == 0);
	st_close(f);
	free(e);
	free(mem);
	sample_free(&s);
}

/* Many tensors with scrambled names: the name index and the layout hold at scale. */
static void
test_many(void)
{
	enum { N = 1500 };
	StTensor *t = calloc(N, sizeof *t);
	char (*names)[24] = calloc(N, sizeof *names);
	int64_t *dims = calloc(N, sizeof *dims);
	unsigned char *data = calloc(N * 8 * 7, 1);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "layer%d.w%u", (i * 7919) % N, (unsigned)i % 3);
		dims[i] = i % 7;
		t[i] = (StTensor){.name = names[i], .dtype = (StDtype)(i % ST_NDTYPE), .rank = 1,
			.dims = &dims[i], .data = data};
	}
	unsigned char *mem;
	size_t len;
	char err[512];
	StFile *f = NULL;
	CHECK(st_serialize(t, N, NULL, 0, &mem, &len, err, sizeof err) == 0);
	CHECK(st_parse(mem, len, "many", &f, err, sizeof err) == 0);
	if (f) {
		CHECK(st_count(f) == N);
		for (int i = 0; i < N; i++) {
			const StTensor *x = st_find(f, names[i]);
			CHECK(x && x->dtype == t[i].dtype && x->dims[0] == dims[i]);
		}
		st_close(f);
	}
	free(mem);
	free(t);
	free(names);
	free(dims);
	free(data);
}

/* ---- files built by hand from the specification -------------------------------------------- */

typedef struct {
	const char *what;
	const char *bytes; /* the whole expected file */
	size_t len;
} Expected;

static void
check_expected(const Expected *x, const StTensor *t, size_t nt, const StMeta *m, size_t nm)
{
	unsigned char *mem;
	size_t len;
	char err[512] = "";
	CHECK(st_serialize(t, nt, m, nm, &mem, &len, err, sizeof err) == 0);
	checks++;
	if (len != x->len || memcmp(mem, x->bytes, len) != 0) {
		failures++;
		fprintf(stderr, "%s: writer output differs from the hand-built file\n got: %.*s\nwant: "
			"%.*s\n", x->what, (int)len - 8, (const char *)mem + 8, (int)x->len - 8, x->bytes + 8);
	}
	free(mem);
	/* And the reader takes the hand-built file. */
	StFile *f = NULL;
	CHECK(st_parse(x->bytes, x->len, x->what, &f, err, sizeof err) == 0);
	if (!f) {
		fprintf(stderr, "%s: %s\n", x->what, err);
		return;
	}
	CHECK(st_count(f) == nt);
	for (size_t i = 0; i < nt; i++) {
		const StTensor *r = st_find(f, t[i].name);
		CHECK(r && r->dtype == t[i].dtype && r->rank == t[i].rank);
		CHECK(r && (r->nbytes == 0 || memcmp(r->data, t[i].data, (size_t)r->nbytes) == 0));
	}
	for (size_t j = 0; j < nm; j++)
		CHECK(st_meta_get(f, m[j].key) && strcmp(st_meta_get(f, m[j].key), m[j].value) == 0);
	st_close(f);
}

#define EXPECTED(what, lit) ((Expected){what, lit, sizeof lit - 1})

static void
test_reference_bytes(void)
{
	/* What safetensors.torch.save_file({"a": torch.tensor([[1., 2.], [3., 4.]]),
	 * "b": torch.arange(1, 7, dtype=torch.uint8).reshape(2, 3)}, p, {"format": "pt"}) writes:
	 * metadata first, F32 before U8, 144 bytes of header (no padding needed), then the data. */
	static const float a[] = {1, 2, 3, 4};
	static const unsigned char bdata[] = {1, 2, 3, 4, 5, 6};
	static const int64_t da[] = {2, 2}, db[] = {2, 3};
	StTensor t1[] = {
		{.name = "b", .dtype = ST_U8, .rank = 2, .dims = db, .data = bdata},
		{.name = "a", .dtype = ST_F32, .rank = 2, .dims = da, .data = a},
	};
	StMeta m1[] = {{"format", "pt"}};
	check_expected(&EXPECTED("reference 1",
		"\x90\0\0\0\0\0\0\0"
		"{\"__metadata__\":{\"format\":\"pt\"},"
		"\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
		"\"b\":{\"dtype\":\"U8\",\"shape\":[2,3],\"data_offsets\":[16,22]}}"
		"\x00\x00\x80\x3f" "\x00\x00\x00\x40" "\x00\x00\x40\x40" "\x00\x00\x80\x40"
		"\x01\x02\x03\x04\x05\x06"), t1, 2, m1, 1);

	/* Dtype order beats name order: I64, then F16, then U8; 162 bytes padded to 168. */
	static const unsigned char u8[] = {7, 8, 9};
	static const uint64_t i64[] = {0x0102030405060708u};
	static const uint16_t f16[] = {0x3c00, 0xc000}; /* 1.0, -2.0 */
	static const int64_t d3[] = {3}, d1[] = {1}, d2[] = {2};
	StTensor t2[] = {
		{.name = "a", .dtype = ST_U8, .rank = 1, .dims = d3, .data = u8},
		{.name = "b", .dtype = ST_I64, .rank = 1, .dims = d1, .data = i64},
		{.name = "c", .dtype = ST_F16, .rank = 1, .dims = d2, .data = f16},
	};
	check_expected(&EXPECTED("reference 2",
		"\xa8\0\0\0\0\0\0\0"
		"{\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
		"\"c\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
		"\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[12,15]}}      "
		"\x08\x07\x06\x05\x04\x03\x02\x01" "\x00\x3c\x00\xc0" "\x07\x08\x09"), t2, 3, NULL, 0);

	/* A scalar: shape []. */
	static const double pi = 3.140625; /* exact in binary: 0x4009200000000000 */
	StTensor t3[] = {{.name = "s", .dtype = ST_F64, .rank = 0, .dims = NULL, .data = &pi}};
	check_expected(&EXPECTED("reference 3",
		"\x38\0\0\0\0\0\0\0"
		"{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}   "
		"\x00\x00\x00\x00\x00\x20\x09\x40"), t3, 1, NULL, 0);

	/* Only metadata. */
	StMeta m4[] = {{"framework", "pt"}};
	check_expected(&EXPECTED("reference 4",
		"\x28\0\0\0\0\0\0\0{\"__metadata__\":{\"framework\":\"pt\"}}     "), NULL, 0, m4, 1);

	/* What other writers may produce is read too: any tensor order, whitespace, escapes
	 * (\u00e9, \/, a surrogate pair), metadata last, no padding. */
	static const char loose[] =
		"{\n  \"w\\u00e9ight\\/x\" : { \"shape\" : [ 2 ], \"dtype\" : \"I16\", "
		"\"data_offsets\" : [ 4, 8 ] },\r\n\t\"first\":{\"data_offsets\":[0,4],\"dtype\":\"U8\","
		"\"shape\":[2,2]}, \"__metadata__\" : { \"k\\ud83d\\ude00\" : \"v\" } }";
	size_t len;
	unsigned char *b;
	StFile *f = good_header(loose, 8, "loose", &b, &len);
	if (f) {
		const StTensor *w = st_find(f, "w\xc3\xa9ight/x");
		CHECK(w && w->dtype == ST_I16 && w->rank == 1 && w->dims[0] == 2 && w->nbytes == 4);
		CHECK(w && w->data == st_file_bytes(f, &len) + 8 + strlen(loose) + 4);
		CHECK(st_tensor_at(f, 0) == st_find(f, "first"));
		CHECK(st_meta_get(f, "k\xf0\x9f\x98\x80") && strcmp(st_meta_get(f, "k\xf0\x9f\x98\x80"), "v") == 0);
		st_close(f);
	}
	free(b);
}

/* ---- reader errors ------------------------------------------------------------------------- */

#define BAD(json, datalen, want) bad_header(json, datalen, want, __LINE__)
#define T(name, rest) "\"" name "\":{" rest "}"
#define F32x4(name, b, e) T(name, "\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[" #b "," #e "]")

static void
test_reader_errors(void)
{
	char err[512] = "";
	StFile *f = (StFile *)&err; /* must be reset to NULL on failure */
	size_t len;

	/* The exact message, as specified. */
	unsigned char *b = mkfile("{" T("fc.weight", "\"dtype\":\"F32\",\"shape\":[10,16],"
		"\"data_offsets\":[0,100]") "}", 100, &len);
	CHECK(st_parse(b, len, "x.safetensors", &f, err, sizeof err) == -1 && f == NULL);
	CHECK(strcmp(err, "x.safetensors: tensor 'fc.weight': data_offsets [0, 100] do not match "
		"shape [10, 16] of F32 (640 bytes)") == 0);
	free(b);
	b = mkfile("{\"a\" 1}", 0, &len);
	CHECK(st_parse(b, len, "x.safetensors", &f, err, sizeof err) == -1);
	CHECK(strcmp(err, "x.safetensors: header JSON, byte 13: ':' expected near '1'") == 0);
	free(b);

	/* Sizes and lengths. */
	CHECK(st_parse("", 0, "x.safetensors", &f, err, sizeof err) == -1);
	CHECK_MSG(err, "x.safetensors: file is empty: truncated");
	CHECK(st_parse("\x10\0\0", 3, "x.safetensors", &f, err, sizeof err) == -1);
	CHECK_MSG(err, "truncated: 3 bytes, shorter than the 8-byte header length");
	CHECK(st_parse("\x00\xc2\xeb\x0b\0\0\0\0{}", 10, "x.safetensors", &f, err, sizeof err) == -1);
	CHECK_MSG(err, "header length 200000000 exceeds the 100000000-byte limit");
	CHECK(st_parse("\xff\xff\xff\xff\xff\xff\xff\xff{}", 10, "x.safetensors", &f, err, sizeof err) == -1);
	CHECK_MSG(err, "header length 18446744073709551615 exceeds");
	CHECK(st_parse("\x03\0\0\0\0\0\0\0{}", 10, "x.safetensors", &f, err, sizeof err) == -1);
	CHECK_MSG(err, "truncated: header length 3 exceeds the 2 bytes after it");
	CHECK(st_parse("\0\0\0\0\0\0\0\0", 8, "x.safetensors", &f, err, sizeof err) == -1);
	CHECK_MSG(err, "byte 8: the header does not start with '{'");

	/* JSON syntax (jansson's messages), with the file offset of the last byte read: the end of
	 * the token the message quotes, or the end of the header. */
	BAD(" {}", 0, "byte 8: the header does not start with '{'");
	BAD("[]", 0, "byte 8: the header does not start with '{'");
	BAD("{", 0, "byte 9: string or '}' expected near end of file");
	BAD("{\"a\":", 0, "byte 13: unexpected token near end of file");
	BAD("{\"a", 0, "byte 11: premature end of input");
	BAD("{\"a\":{}", 0, "byte 15: '}' expected near end of file");
	BAD("{\"a\":[1 2]}", 0, "byte 16: ']' expected near '2'");
	BAD("{\"a\":1 \"b\":2}", 0, "byte 17: '}' expected near '\"b\"'");
	BAD("{\"a\":1,}", 0, "byte 15: string or '}' expected near '}'");
	BAD("{\"a\":[1,]}", 0, "byte 16: unexpected token near ']'");
	BAD("{a:1}", 0, "byte 9: string or '}' expected near 'a'");
	BAD("{\"a\":01}", 0, "byte 13: invalid token near '0'");
	BAD("{\"a\":-}", 0, "byte 13: invalid token near '-'");
	BAD("{\"a\":18446744073709551616}", 0, "byte 32: too big integer near '18446744073709551616'");
	BAD("{\"a\":\x01}", 0, "byte 13: invalid token near '?'");
	BAD("{\"a\\q\":1}", 0, "byte 12: invalid escape near '\"a\\q'");
	BAD("{\"a\\u12\":1}", 0, "byte 15: invalid escape near '\"a\\u12\"'");
	BAD("{\"a\\ud800\":1}", 0, "byte 17: invalid Unicode '\\uD800'");
	BAD("{\"a\\udc00\":1}", 0, "byte 17: invalid Unicode '\\uDC00'");
	BAD("{\"a\\ud800\\u0041\":1}", 0, "invalid Unicode '\\uD800\\u0041'");
	BAD("{\"a\\u0000\":1}", 0, "byte 17: NUL byte in object key not supported");
	BAD("{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0, "byte 37: \\u0000 is not allowed");
	BAD("{\"a\tb\":1}", 0, "byte 10: control character 0x9 near '\"a'");
	BAD("{\"a\xff\":1}", 0, "byte 10: unable to decode byte 0xff");
	BAD("{\"a\xc0\x80\":1}", 0, "unable to decode byte 0xc0"); /* overlong NUL */
	BAD("{\"a\xed\xa0\x80\":1}", 0, "unable to decode byte 0xed"); /* encoded surrogate */
	BAD("{\"a\xf4\x90\x80\x80\":1}", 0, "unable to decode byte 0xf4"); /* above U+10FFFF */
	BAD("{\"a\xe2\x82\":1}", 0, "unable to decode byte 0xe2"); /* cut short */
	/* Nothing may follow the object but the spaces that pad it: no other bytes, no NUL
	 * (jansson would take a NUL for the end of its input). */
	BAD("{}x", 0, "byte 10: end of file expected near 'x'");
	BAD("{}  {}", 0, "byte 12: end of file expected near '{'");
	CHECK(st_parse("\x03\0\0\0\0\0\0\0{}\0", 11, "x.safetensors", &f, err, sizeof err) == -1);
	CHECK_MSG(err, "x.safetensors: header JSON, byte 10: a NUL byte (JSON has none");
	CHECK(st_parse("\x08\0\0\0\0\0\0\0{}\0junk!", 16, "x.safetensors", &f, err, sizeof err) == -1);
	CHECK_MSG(err, "byte 10: a NUL byte");
	{
		char deep[3000] = "{\"a\":";
		for (int i = 0; i < 2100; i++)
			strcat(deep, "[");
		BAD(deep, 0, "maximum parsing depth reached");
	}

	/* Values JSON allows where the format has none. */
	BAD("{\"a\":1.5}", 0, "x.safetensors: tensor 'a': expected an object with dtype, shape and data_offsets");
	BAD("{\"a\":true}", 0, "tensor 'a': expected an object");
	BAD("{\"a\":null}", 0, "tensor 'a': expected an object");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': shape must be an array of integers");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': shape must be an array of integers");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': shape must be an array of integers");
	BAD("{" T("a", "\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': dtype must be a string");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]") "}", 4,
		"tensor 'a': data_offsets must be [begin, end], two non-negative integers");
	BAD("{\"__metadata__\":{\"k\":null}}", 0, "__metadata__ 'k': value must be a string");

	/* Structure. */
	BAD("{\"a\":1}", 0, "x.safetensors: tensor 'a': expected an object with dtype, shape and data_offsets");
	BAD("{" T("a", "\"shape\":[1],\"data_offsets\":[0,4]") "}", 4, "tensor 'a': missing field 'dtype'");
	BAD("{" T("a", "\"dtype\":\"F32\",\"data_offsets\":[0,4]") "}", 4, "tensor 'a': missing field 'shape'");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[1]") "}", 4, "tensor 'a': missing field 'data_offsets'");
	BAD("{" T("a", "\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': duplicate field 'dtype'");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"offsets\":1") "}", 4,
		"tensor 'a': unknown field 'offsets'");
	BAD("{" T("a", "\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': unknown dtype 'F17'");
	BAD("{" T("a", "\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': dtype must be a string");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': shape must be an array of integers");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': shape must be an array of integers");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]") "}", 4,
		"tensor 'a': shape dimension 1 is negative");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,4]") "}", 4,
		"byte 55: too big integer near '9223372036854775808'");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]") "}",
		4, "tensor 'a': shape [4294967296, 4294967296, 16] of F32 overflows a 64-bit byte count");
	BAD("{" T("a", "\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]") "}",
		4, "overflows a 64-bit byte count");
	{
		char big[600] = "{" "\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1],\"shape\":[1";
		for (int i = 0; i < 64; i++)
			strcat(big, ",1");
		strcat(big, "]}}");
		BAD(big, 1, "x.safetensors: tensor 'a': shape has 65 dimensions, more than 64");
		big[strlen(big) - 5] = 0; /* drop one dimension: rank 64 is fine */
		strcat(big, "]}}");
		size_t len;
		unsigned char *b = mkfile(big, 1, &len);
		StFile *f = NULL;
		char err[512];
		CHECK(st_parse(b, len, "x", &f, err, sizeof err) == 0 && st_find(f, "a")->rank == 64);
		st_close(f);
		free(b);
	}
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]") "}", 4,
		"tensor 'a': data_offsets must be [begin, end], two non-negative integers");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]") "}", 4,
		"data_offsets must be [begin, end]");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]") "}", 4,
		"data_offsets must be [begin, end]");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}") "}", 4,
		"data_offsets must be [begin, end]");
	BAD("{" F32x4("a", 16, 0) "}", 16, "tensor 'a': data_offsets [16, 0] are reversed (begin > end)");
	BAD("{" F32x4("a", 0, 12) "}", 12, "tensor 'a': data_offsets [0, 12] do not match shape [4] of F32 (16 bytes)");
	BAD("{\"__metadata__\":[]}", 0, "'__metadata__' must be an object of strings");
	BAD("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ 'k': value must be a string");
	BAD("{\"__metadata__\":{\"k\":{}}}", 0, "__metadata__ 'k': value must be a string");
	BAD("{\"__metadata__\":{\"k\":\"1\",\"j\":\"2\",\"k\":\"3\"}}", 0, "__metadata__ has duplicate key 'k'");
	BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "'__metadata__' appears twice");
	BAD("{" F32x4("a", 0, 16) "," F32x4("a", 16, 32) "}", 32, "x.safetensors: duplicate tensor name 'a'");
	BAD("{" F32x4("w\\nx", 0, 16) "," F32x4("w\\nx", 16, 32) "}", 32, "duplicate tensor name 'w?x'");
	BAD("{\"\xc3\xa9\":{}," F32x4("\xc3\xa9", 0, 16) "}", 16, "duplicate tensor name '\xc3\xa9'");
	BAD("{\"__metadata__\":{\"\xf0\x9f\x98\x80\":\"\xc3\xa9\",\"k\":\"1\",\"k\":\"2\"}}", 0,
		"__metadata__ has duplicate key 'k'");
	BAD("{" T("\xc3\xa9", "\"dtype\":\"F32\",\"shape\":[1],\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
		"tensor '\xc3\xa9': duplicate field 'shape'");
	BAD("{" T("a", "\"dtype\":\"F32\",\"shape\":[{\"x\":1,\"x\":2}],\"data_offsets\":[0,4]") "}", 4,
		"x.safetensors: header JSON, byte 46: duplicate key 'x'");
	BAD("{\"a\\u0062\":{},\"ab\":{}}", 0, "duplicate tensor name 'ab'");

	/* Layout of the data section. */
	BAD("{" F32x4("a", 0, 16) "}", 8, "tensor 'a': data_offsets [0, 16] extend past the end of the "
		"data section (8 bytes): the file is truncated");
	BAD("{" F32x4("a", 0, 16) "," F32x4("b", 8, 24) "}", 24, "tensors 'a' [0, 16] and 'b' [8, 24] overlap");
	BAD("{" F32x4("b", 0, 16) "," F32x4("a", 0, 16) "}", 16, "tensors 'a' [0, 16] and 'b' [0, 16] overlap");
	BAD("{" F32x4("a", 0, 16) "," T("z", "\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]") "}",
		16, "tensors 'a' [0, 16] and 'z' [4, 4] overlap");
	BAD("{" F32x4("a", 0, 16) "," F32x4("b", 20, 36) "}", 36,
		"bytes [16, 20) of the data section belong to no tensor (a gap before 'b')");
	BAD("{" F32x4("a", 4, 20) "}", 20, "bytes [0, 4) of the data section belong to no tensor");
	BAD("{" F32x4("a", 0, 16) "}", 20, "the data section has 20 bytes but the tensors cover only 16 (4 trailing bytes)");
	BAD("{}", 1, "the data section has 1 bytes but the tensors cover only 0");

	/* A long, hostile name is cut in messages, never overflowing anything. */
	{
		char json[3000] = "{\"";
		for (int i = 0; i < 1000; i++)
			strcat(json, "\\n");
		strcat(json, "\":1}");
		BAD(json, 0, "x.safetensors: tensor '????");
		BAD(json, 0, "...': expected an object");
	}

	/* Files that do not exist, or are directories. */
	CHECK(st_open("/nonexistent/dir/x.safetensors", &f, err, sizeof err) == -1 && f == NULL);
	CHECK_MSG(err, "/nonexistent/dir/x.safetensors: cannot open: No such file or directory");
	CHECK(st_open("/", &f, err, sizeof err) == -1);
	CHECK_MSG(err, "/: cannot open: is a directory, not a regular file");
	/* A NULL error buffer is allowed. */
	CHECK(st_parse("", 0, "x", &f, NULL, 0) == -1);
	/* A tiny error buffer truncates cleanly. */
	char small[8];
	CHECK(st_parse("", 0, "x.safetensors", &f, small, sizeof small) == -1 && strlen(small) == 7);
}

/* st_meta_span finds a value's raw text wherever the metadata stands among the tensors, and
 * whatever quotes, brackets and escapes the strings before it hold. */
static void
test_meta_spans(void)
{
	static const char json[] =
		"{ \"a\\\"[{\\\\\" : {\"dtype\":\"U8\", \"shape\":[2], \"data_offsets\":[0,2]},"
		"\"}]\\\"\":{\"data_offsets\":[2,3],\"shape\":[],\"dtype\":\"I8\"} ,\n"
		"\"__metadata__\" : { \"k\\\"1\" : \"v\\\"{[1\", \"k\\u00e92\":\"\", \"\\\\\":\"x\\\\\" },"
		"\"z\":{\"dtype\":\"BOOL\",\"shape\":[1,1],\"data_offsets\":[3,4]}}";
	size_t len;
	unsigned char *b;
	StFile *f = good_header(json, 4, "spans", &b, &len);
	if (!f) {
		free(b);
		return;
	}
	static const struct {
		const char *key, *raw;
	} want[] = {{"k\"1", "v\\\"{[1"}, {"k\xc3\xa9" "2", ""}, {"\\", "x\\\\"}};
	for (size_t j = 0; j < sizeof want / sizeof *want; j++) {
		uint64_t off = 0, n = 0;
		CHECK(st_meta_span(f, want[j].key, &off, &n) == 0 && n == strlen(want[j].raw) &&
			off + n < len && memcmp(b + off, want[j].raw, n) == 0 && b[off - 1] == '"' &&
			b[off + n] == '"');
	}
	CHECK(st_meta_get(f, "k\"1") && strcmp(st_meta_get(f, "k\"1"), "v\"{[1") == 0);
	CHECK(st_find(f, "a\"[{\\") && st_find(f, "}]\"") && st_find(f, "z"));
	st_close(f);
	free(b);
}

/* Every proper prefix of a valid file is reported as truncated. */
static void
test_truncation(void)
{
	static const float v[6] = {1, 2, 3, 4, 5, 6};
	static const int64_t d[] = {2, 3}, d1[] = {2};
	StTensor t[] = {
		{.name = "w", .dtype = ST_F32, .rank = 2, .dims = d, .data = v},
		{.name = "b", .dtype = ST_BF16, .rank = 1, .dims = d1, .data = v},
	};
	StMeta m[] = {{"k", "v"}};
	unsigned char *mem;
	size_t len;
	char err[512];
	CHECK(st_serialize(t, 2, m, 1, &mem, &len, err, sizeof err) == 0);
	for (size_t n = 0; n < len; n++) {
		StFile *f = NULL;
		CHECK(st_parse(mem, n, "t.safetensors", &f, err, sizeof err) == -1);
		CHECK_MSG(err, "truncated");
	}
	free(mem);
}

/* ---- writer errors ------------------------------------------------------------------------- */

static void
bad_write(const StTensor *t, size_t nt, const StMeta *m, size_t nm, const char *want, int line)
{
	unsigned char *mem = (unsigned char *)"sentinel";
	size_t len = 1;
	char err[512] = "";
	int rc = st_serialize(t, nt, m, nm, &mem, &len, err, sizeof err);
	checks++;
	if (rc != -1 || mem != NULL || len != 0) {
		failures++;
		fprintf(stderr, "%s:%d: the writer accepted bad input\n", __FILE__, line);
		if (rc == 0)
			free(mem);
		return;
	}
	check_msg_at(err, want, __FILE__, line);
}

#define BADW(t, nt, m, nm, want) bad_write(t, nt, m, nm, want, __LINE__)

static void
test_writer_errors(const char *dir)
{
	static const float v[4] = {0};
	static const int64_t d4[] = {4}, dneg[] = {2, -1}, dhuge[] = {INT64_MAX, INT64_MAX};
	StTensor ok = {.name = "ok", .dtype = ST_F32, .rank = 1, .dims = d4, .data = v};
	StTensor t[2];

	t[0] = ok;
	t[0].name = NULL;
	BADW(t, 1, NULL, 0, "safetensors: tensor 0 has no name");
	t[0] = ok;
	t[0].name = "__metadata__";
	BADW(t, 1, NULL, 0, "'__metadata__' is reserved and cannot name a tensor");
	t[0] = ok;
	t[0].name = "bad\xff";
	BADW(t, 1, NULL, 0, "tensor name 'bad\xff' is not valid UTF-8");
	t[0] = ok;
	t[0].dtype = ST_NDTYPE;
	BADW(t, 1, NULL, 0, "tensor 'ok': unknown dtype 15");
	t[0] = ok;
	t[0].rank = ST_MAX_RANK + 1;
	BADW(t, 1, NULL, 0, "tensor 'ok': rank 65 is outside 0..64");
	t[0] = ok;
	t[0].rank = -1;
	BADW(t, 1, NULL, 0, "rank -1 is outside");
	t[0] = ok;
	t[0].dims = NULL;
	BADW(t, 1, NULL, 0, "tensor 'ok': rank 1 but no dims");
	t[0] = ok;
	t[0].rank = 2;
	t[0].dims = dneg;
	BADW(t, 1, NULL, 0, "tensor 'ok': negative dimension in shape [2, -1]");
	t[0] = ok;
	t[0].rank = 2;
	t[0].dims = dhuge;
	BADW(t, 1, NULL, 0, "tensor 'ok': shape [9223372036854775807, 9223372036854775807] of F32 overflows");
	t[0] = ok;
	t[0].data = NULL;
	BADW(t, 1, NULL, 0, "tensor 'ok': 16 bytes of data but no data pointer");
	t[0] = t[1] = ok;
	t[1].dtype = ST_U8; /* same name, different dtype: not adjacent in data order */
	BADW(t, 2, NULL, 0, "duplicate tensor name 'ok'");
	BADW(NULL, 1, NULL, 0, "NULL tensor or metadata array");

	StMeta m[2] = {{"k", "v"}, {"k", "w"}};
	BADW(&ok, 1, m, 2, "duplicate metadata key 'k'");
	m[1] = (StMeta){"j", NULL};
	BADW(&ok, 1, m, 2, "metadata entry 1 has a NULL key or value");
	m[1] = (StMeta){"j", "\xc3"};
	BADW(&ok, 1, m, 2, "metadata 'j': not valid UTF-8");

	/* A zero-size tensor needs no data. */
	static const int64_t d0[] = {0, 3};
	StTensor z = {.name = "z", .dtype = ST_F64, .rank = 2, .dims = d0, .data = NULL};
	unsigned char *mem;
	size_t len;
	char err[512];
	CHECK(st_serialize(&z, 1, NULL, 0, &mem, &len, err, sizeof err) == 0);
	free(mem);

	/* st_write names the file, and leaves nothing behind on failure. */
	char path[512];
	snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
	CHECK(st_write(path, &ok, 1, NULL, 0, err, sizeof err) == -1);
	CHECK_MSG(err, "/no/such/dir/x.safetensors: cannot create: No such file or directory");
	snprintf(path, sizeof path, "%s/bad.safetensors", dir);
	t[0] = t[1] = ok;
	CHECK(st_write(path, t, 2, NULL, 0, err, sizeof err) == -1);
	CHECK_MSG(err, "bad.safetensors: duplicate tensor name 'ok'");
	CHECK(access(path, F_OK) == -1 && errno == ENOENT);
}

/* ---- random corruption --------------------------------------------------------------------- */

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
test_mutations(void)
{
	static const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	static const int64_t d[] = {2, 2}, d1[] = {3};
	StTensor t[] = {
		{.name = "layer1.0.conv1.weight", .dtype = ST_F32, .rank = 2, .dims = d, .data = v},
		{.name = "bn.running_var", .dtype = ST_F16, .rank = 1, .dims = d1, .data = v},
		{.name = "s", .dtype = ST_I64, .rank = 0, .dims = NULL, .data = v},
	};
	StMeta m[] = {{"format", "pt"}, {"n\\u00e9", "\"x\""}};
	unsigned char *mem;
	size_t len;
	char err[512];
	CHECK(st_serialize(t, 3, m, 2, &mem, &len, err, sizeof err) == 0);
	static const char interesting[] = "{}[]\",:\\u-0123456789e. \x80\xff";
	uint64_t seed = 0x9e3779b97f4a7c15u;
	int accepted = 0;
	unsigned char *b = malloc(len);
	for (int it = 0; it < 4000; it++) {
		memcpy(b, mem, len);
		int edits = 1 + (int)(rnd(&seed) % 3);
		for (int e = 0; e < edits; e++) {
			size_t at = (size_t)(rnd(&seed) % len);
			if (rnd(&seed) % 2)
				b[at] = (unsigned char)interesting[rnd(&seed) % (sizeof interesting - 1)];
			else
				b[at] ^= (unsigned char)(1u << (rnd(&seed) % 8));
		}
		size_t n = rnd(&seed) % 8 ? len : (size_t)(rnd(&seed) % len);
		StFile *f = NULL;
		if (st_parse(b, n, "m", &f, err, sizeof err) == 0) {
			accepted++;
			size_t flen;
			const unsigned char *fb = st_file_bytes(f, &flen);
			for (size_t i = 0; i < st_count(f); i++) {
				const StTensor *x = st_tensor_at(f, i);
				CHECK(x->offset + x->nbytes <= flen);
				CHECK(st_find(f, x->name) == x);
				CHECK(x->data == fb + x->offset);
			}
			st_close(f);
		} else {
			CHECK(strncmp(err, "m: ", 3) == 0);
		}
	}
	CHECK(accepted > 0); /* edits to tensor data leave the file valid */
	free(b);
	free(mem);
}

int
main(void)
{
	char dir[] = "/tmp/nnc-io-st-XXXXXX";
	const char *tmp = getenv("TMPDIR");
	char buf[512];
	char *d;
	if (tmp && *tmp) {
		snprintf(buf, sizeof buf, "%s/nnc-io-st-XXXXXX", tmp);
		d = mkdtemp(buf);
	} else {
		d = mkdtemp(dir);
	}
	if (!d) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_dtypes();
	test_roundtrip(d);
	test_many();
	test_reference_bytes();
	test_reader_errors();
	test_meta_spans();
	test_truncation();
	test_writer_errors(d);
	test_mutations();

	char path[600];
	snprintf(path, sizeof path, "%s/sample.safetensors", d);
	unlink(path);
	if (rmdir(d) < 0) {
		fprintf(stderr, "rmdir %s: %s (files left behind?)\n", d, strerror(errno));
		failures++;
	}
	if (failures) {
		fprintf(stderr, "%d of %d checks failed\n", failures, checks);
		return 1;
	}
	printf("safetensors: %d checks passed\n", checks);
	return 0;
}
