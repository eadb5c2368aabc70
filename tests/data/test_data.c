/* Unit tests for the CIFAR-10 loader (runtime/data.c), on tiny synthetic datasets that the test
 * writes into a fresh temporary folder (R records per file instead of 10,000; the real dataset
 * is never needed). Covered: loading (both folder layouts, limits), the normalization values,
 * the crop/flip/cutout geometry against an independent pad-crop-flip reference, the epoch
 * permutation, resuming from a saved order state, identical bytes with 1-3 threads, partial
 * evaluation batches, and every error message, text for text. Deterministic; well under 1 s. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/data.h"
#include "runtime/splitmix.h"
#include "tests/check.h"



enum { R = 7 }; /* records per synthetic file: 35 training, 7 test images */

static char tmpdir[200];

static const char *
fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* A formatted string in one of a few rotating static buffers (so never keep one long). */
static const char *
fmt(const char *f, ...)
{
	static char buf[8][512];
	static int k;
	char *b = buf[k++ % 8];
	va_list ap;
	va_start(ap, f);
	vsnprintf(b, sizeof buf[0], f, ap);
	va_end(ap);
	return b;
}

/* The synthetic data: pixel bytes and labels as functions of (split, index). */
static uint8_t
pix(int split, int idx, int byte)
{
	return (uint8_t)((idx * 97 + byte * 13 + split * 29 + (byte >> 10) * 61) & 255);
}

static uint8_t
label_of(int split, int idx)
{
	return (uint8_t)((idx * 3 + split) % 10);
}

/* Writes a file of `records` records of split s starting at image `first`; `extra` bytes are
 * appended (negative: cut off); label_at >= 0 sets that record's label to bad_label. */
static void
write_file(const char *path, int s, int first, int records, int extra, int label_at, int bad_label)
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	long total = (long)records * CIFAR_RECORD_BYTES + extra;
	long written = 0;
	for (int r = 0; r < records; r++) {
		uint8_t rec[CIFAR_RECORD_BYTES];
		rec[0] = r == label_at ? (uint8_t)bad_label : label_of(s, first + r);
		for (int b = 0; b < CIFAR_IMAGE_BYTES; b++)
			rec[1 + b] = pix(s, first + r, b);
		long n = total - written < (long)sizeof rec ? total - written : (long)sizeof rec;
		if (n > 0 && fwrite(rec, 1, (size_t)n, f) != (size_t)n)
			exit(1);
		written += n > 0 ? n : 0;
	}
	for (; written < total; written++)
		fputc(0xab, f);
	fclose(f);
}

static void
write_dataset(const char *dir)
{
	for (int k = 0; k < CIFAR_TRAIN_FILES; k++)
		write_file(fmt("%s/data_batch_%d.bin", dir, k + 1), CIFAR_TRAIN, k * R, R, 0, -1, 0);
	write_file(fmt("%s/test_batch.bin", dir), CIFAR_TEST, 0, R, 0, -1, 0);
}

static void
remove_dataset(const char *dir)
{
	for (int k = 0; k < CIFAR_TRAIN_FILES; k++)
		remove(fmt("%s/data_batch_%d.bin", dir, k + 1));
	remove(fmt("%s/test_batch.bin", dir));
}

static const CifarOpenOptions tiny = {0, 0, R};

/* --- loading -------------------------------------------------------------------------- */

static void
test_load(void)
{
	char err[512] = "";
	CifarData d;
	char dir[300], top[300], sub[300];
	snprintf(dir, sizeof dir, "%s/flat", tmpdir);
	CHECK(mkdir(dir, 0700) == 0);
	write_dataset(dir);
	CHECK(cifar_open(&d, dir, &tiny, err, sizeof err) == 0);
	CHECK(d.n[CIFAR_TRAIN] == 5 * R && d.n[CIFAR_TEST] == R);
	int bad = 0;
	for (int s = 0; s < 2; s++)
		for (int i = 0; i < d.n[s]; i++) {
			bad += d.labels[s][i] != label_of(s, i);
			for (int b = 0; b < CIFAR_IMAGE_BYTES; b++)
				bad += d.images[s][(size_t)i * CIFAR_IMAGE_BYTES + b] != pix(s, i, b);
		}
	CHECK(bad == 0);
	cifar_close(&d);
	CHECK(d.images[0] == NULL && d.n[0] == 0);

	/* Limits read only the files they need: without data_batch_3..5 the first 2R+1 images
	 * cannot load, the first 2R can. */
	for (int k = 3; k <= 5; k++)
		remove(fmt("%s/data_batch_%d.bin", dir, k));
	CifarOpenOptions lim = {2 * R, 3, R};
	CHECK(cifar_open(&d, dir, &lim, err, sizeof err) == 0);
	CHECK(d.n[CIFAR_TRAIN] == 2 * R && d.n[CIFAR_TEST] == 3);
	CHECK(d.labels[CIFAR_TRAIN][2 * R - 1] == label_of(CIFAR_TRAIN, 2 * R - 1));
	CHECK(d.images[CIFAR_TEST][2 * CIFAR_IMAGE_BYTES + 5] == pix(CIFAR_TEST, 2, 5));
	cifar_close(&d);
	lim.max_train = 2 * R + 1;
	CHECK(cifar_open(&d, dir, &lim, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/data_batch_3.bin: cannot open: No such file or directory", dir));
	CHECK(d.images[0] == NULL && d.images[1] == NULL && d.n[0] == 0);
	/* A limit above the data is "at most". */
	write_dataset(dir);
	lim = (CifarOpenOptions){1000000, 1000000, R};
	CHECK(cifar_open(&d, dir, &lim, err, sizeof err) == 0);
	CHECK(d.n[CIFAR_TRAIN] == 5 * R && d.n[CIFAR_TEST] == R);
	cifar_close(&d);
	remove_dataset(dir);
	rmdir(dir);

	/* The layout of the official tarball: DIR/cifar-10-batches-bin/... */
	snprintf(top, sizeof top, "%s/top", tmpdir);
	snprintf(sub, sizeof sub, "%s/top/cifar-10-batches-bin", tmpdir);
	CHECK(mkdir(top, 0700) == 0 && mkdir(sub, 0700) == 0);
	write_dataset(sub);
	CHECK(cifar_open(&d, top, &tiny, err, sizeof err) == 0);
	CHECK(d.n[CIFAR_TRAIN] == 5 * R && d.labels[CIFAR_TRAIN][9] == label_of(CIFAR_TRAIN, 9));
	cifar_close(&d);
	remove_dataset(sub);
	rmdir(sub);
	rmdir(top);
}

static void
test_open_errors(void)
{
	char err[512];
	CifarData d;
	char dir[300];
	snprintf(dir, sizeof dir, "%s/err", tmpdir);
	CHECK(mkdir(dir, 0700) == 0);

	/* missing file */
	write_dataset(dir);
	remove(fmt("%s/data_batch_3.bin", dir));
	CHECK(cifar_open(&d, dir, &tiny, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/data_batch_3.bin: cannot open: No such file or directory", dir));
	CHECK(d.images[0] == NULL && d.labels[1] == NULL);

	/* truncated */
	write_dataset(dir);
	write_file(fmt("%s/test_batch.bin", dir), CIFAR_TEST, 0, R, -1, -1, 0);
	CHECK(cifar_open(&d, dir, &tiny, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/test_batch.bin: truncated: expected 21511 bytes (7 records of 3073), got 21510", dir));
	write_file(fmt("%s/test_batch.bin", dir), CIFAR_TEST, 0, 0, 0, -1, 0);
	CHECK(cifar_open(&d, dir, &tiny, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/test_batch.bin: truncated: expected 21511 bytes (7 records of 3073), got 0", dir));

	/* wrong size: too long */
	write_dataset(dir);
	write_file(fmt("%s/data_batch_1.bin", dir), CIFAR_TRAIN, 0, R, 1, -1, 0);
	CHECK(cifar_open(&d, dir, &tiny, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/data_batch_1.bin: wrong size: expected 21511 bytes (7 records of 3073), got 21512", dir));

	/* official sizes expected by default */
	write_dataset(dir);
	CHECK(cifar_open(&d, dir, NULL, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/data_batch_1.bin: truncated: expected 30730000 bytes (10000 records of 3073), got 21511", dir));

	/* label 10, and 255 */
	write_file(fmt("%s/data_batch_2.bin", dir), CIFAR_TRAIN, R, R, 0, 5, 10);
	CHECK(cifar_open(&d, dir, &tiny, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/data_batch_2.bin: record 5: label 10 is outside 0-9", dir));
	write_dataset(dir);
	write_file(fmt("%s/test_batch.bin", dir), CIFAR_TEST, 0, R, 0, 0, 255);
	CHECK(cifar_open(&d, dir, &tiny, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/test_batch.bin: record 0: label 255 is outside 0-9", dir));
	/* ... but a bad label past the limit is never read */
	CifarOpenOptions lim = {0, 0, R};
	write_dataset(dir);
	write_file(fmt("%s/test_batch.bin", dir), CIFAR_TEST, 0, R, 0, 6, 10);
	lim.max_test = 6;
	CHECK(cifar_open(&d, dir, &lim, err, sizeof err) == 0);
	cifar_close(&d);

	/* a folder where a file should be */
	write_dataset(dir);
	remove(fmt("%s/test_batch.bin", dir));
	CHECK(mkdir(fmt("%s/test_batch.bin", dir), 0700) == 0);
	CHECK(cifar_open(&d, dir, &tiny, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/test_batch.bin: cannot open: is a directory, not a regular file", dir));
	rmdir(fmt("%s/test_batch.bin", dir));

	/* no such folder */
	CHECK(cifar_open(&d, fmt("%s/nowhere", dir), &tiny, err, sizeof err) == -1);
	CHECK_STR(err, fmt("%s/nowhere: no such folder (scripts/get-cifar10.sh fetches CIFAR-10)", dir));

	/* bad options */
	lim = (CifarOpenOptions){-1, 0, 0};
	CHECK(cifar_open(&d, dir, &lim, err, sizeof err) == -1);
	CHECK_STR(err, "CIFAR-10 open options: limits and records per file must be >= 0");
	remove_dataset(dir);
	rmdir(dir);
}

/* --- normalization and geometry ------------------------------------------------------- */

static void
test_normalization(const CifarData *d)
{
	char err[256];
	CifarConfig c;
	cifar_config_default(&c, 4, 1);
	CHECK(c.mean[0] == 0.4914f && c.mean[1] == 0.4822f && c.mean[2] == 0.4465f);
	CHECK(c.std[0] == 0.2470f && c.std[1] == 0.2435f && c.std[2] == 0.2616f);
	CHECK(c.shuffle == 1 && c.crop_pad == 0 && c.flip == 0 && c.cutout == 0 && c.threads == 1);
	/* a recipe's configuration: its normalization and seed always, its augmentation for training */
	Recipe r;
	recipe_defaults(&r);
	CifarConfig rc;
	cifar_config_recipe(&rc, &r, 4, false);
	CHECK(!memcmp(rc.mean, c.mean, sizeof c.mean) && !memcmp(rc.std, c.std, sizeof c.std));
	r.norm_mean[1] = 0.5;
	r.norm_std[2] = 0.125;
	r.seed = 9;
	r.alternate_flip = true;
	r.crop_reflect = true;
	r.cutout = 8;
	cifar_config_recipe(&rc, &r, 4, false);
	CHECK(rc.mean[1] == 0.5f && rc.std[2] == 0.125f && rc.seed == 9 && rc.crop_pad == 0 && rc.flip == 0 && rc.cutout == 0);
	cifar_config_recipe(&rc, &r, 4, true);
	CHECK(rc.mean[1] == 0.5f && rc.crop_pad == 4 && rc.crop_reflect == 1 && rc.flip == 2 && rc.cutout == 8 && rc.batch == 4);
	CifarLoader l;
	CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
	/* the table itself, at a few bytes */
	CHECK(fabsf(l.lut[0][0] - (-0.4914f / 0.2470f)) < 1e-5f);    /* -1.98947 */
	CHECK(fabsf(l.lut[0][255] - (0.5086f / 0.2470f)) < 1e-5f);   /*  2.05911 */
	CHECK(fabsf(l.lut[1][128] - ((128 / 255.0f - 0.4822f) / 0.2435f)) < 1e-5f);
	CHECK(fabsf(l.lut[2][255] - (0.5535f / 0.2616f)) < 1e-5f);   /*  2.11583 */
	float x[4 * CIFAR_IMAGE_BYTES];
	int32_t y[4];
	CHECK(cifar_eval_batch(&l, CIFAR_TEST, 0, x, y) == 4);
	int bad = 0;
	for (int i = 0; i < 4; i++) {
		bad += y[i] != label_of(CIFAR_TEST, i);
		for (int b = 0; b < CIFAR_IMAGE_BYTES; b++) {
			int ch = b / CIFAR_PIXELS;
			double want = (pix(CIFAR_TEST, i, b) / 255.0 - c.mean[ch]) / c.std[ch];
			bad += fabs(x[i * CIFAR_IMAGE_BYTES + b] - want) > 1e-6;
		}
	}
	CHECK(bad == 0);
	cifar_loader_free(&l);

	/* mean 0, std 1: plain [0, 1] */
	c.mean[0] = c.mean[1] = c.mean[2] = 0.0f;
	c.std[0] = c.std[1] = c.std[2] = 1.0f;
	CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
	CHECK(cifar_eval_batch(&l, CIFAR_TRAIN, 3, x, y) == 4);
	CHECK(x[0] == (float)(pix(CIFAR_TRAIN, 3, 0) / 255.0));
	CHECK(x[CIFAR_IMAGE_BYTES + 2048] == (float)(pix(CIFAR_TRAIN, 4, 2048) / 255.0));
	CHECK(l.lut[1][255] == 1.0f && l.lut[2][0] == 0.0f);
	cifar_loader_free(&l);
}

/* The known image for geometry: every pixel nonzero and unique within its channel. */
static void
known_image(uint8_t *img)
{
	for (int y = 0; y < 32; y++)
		for (int x = 0; x < 32; x++) {
			img[0 * 1024 + y * 32 + x] = (uint8_t)(1 + y * 7 + x);
			img[1 * 1024 + y * 32 + x] = (uint8_t)(1 + x * 7 + y);
			img[2 * 1024 + y * 32 + x] = (uint8_t)(255 - y * 7 - x);
		}
}

/* Reference, written the way torchvision does it: pad the 32x32 image with P zeros on each side
 * into a (32+2P)^2 canvas, take the 32x32 window at (dy, dx), then mirror it left-right. With
 * REFLECT the canvas's border is the image reflected, as torch.nn.functional.pad's 'reflect'
 * builds it: row -k is row k, row 31 + k is row 31 - k. */
static void
reference_pad(const uint8_t *img, int P, int dy, int dx, int flip, int reflect, uint8_t *out)
{
	uint8_t canvas[3][96][96];
	memset(canvas, 0, sizeof canvas);
	for (int c = 0; c < 3; c++)
		for (int y = -P; y < 32 + P; y++)
			for (int x = -P; x < 32 + P; x++) {
				int in = y >= 0 && y < 32 && x >= 0 && x < 32;
				int ry = y < 0 ? -y : y > 31 ? 62 - y : y, rx = x < 0 ? -x : x > 31 ? 62 - x : x;
				if (in || reflect)
					canvas[c][y + P][x + P] = img[c * 1024 + ry * 32 + rx];
			}
	for (int c = 0; c < 3; c++)
		for (int y = 0; y < 32; y++)
			for (int x = 0; x < 32; x++) {
				uint8_t v = canvas[c][y + dy][x + dx];
				out[c * 1024 + y * 32 + (flip ? 31 - x : x)] = v;
			}
}

static void
reference(const uint8_t *img, int P, int dy, int dx, int flip, uint8_t *out)
{
	reference_pad(img, P, dy, dx, flip, 0, out);
}

static void
test_geometry(const CifarData *d)
{
	char err[256];
	uint8_t img[CIFAR_IMAGE_BYTES], ref[CIFAR_IMAGE_BYTES];
	float out[CIFAR_IMAGE_BYTES];
	known_image(img);
	CifarConfig c;
	cifar_config_default(&c, 1, 7);
	c.mean[0] = c.mean[1] = c.mean[2] = 0.5f;
	c.std[0] = c.std[1] = c.std[2] = 0.25f;
	c.crop_pad = 4;
	c.flip = 1;
	CifarLoader l;
	CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
#define AT(ch, y, x) out[(ch) * 1024 + (y) * 32 + (x)]
#define V(ch, y, x) l.lut[ch][img[(ch) * 1024 + (y) * 32 + (x)]]
	const float pad = l.lut[0][0]; /* black after normalization: (0 - 0.5) / 0.25 = -2 */
	CHECK(pad == -2.0f);

	/* every crop offset, both flips, against the reference */
	int bad = 0;
	for (int dy = 0; dy <= 8; dy++)
		for (int dx = 0; dx <= 8; dx++)
			for (int f = 0; f < 2; f++) {
				CifarAug a = {dy, dx, f, 0, 0};
				cifar_render(&l, img, &a, out);
				reference(img, 4, dy, dx, f, ref);
				for (int b = 0; b < CIFAR_IMAGE_BYTES; b++)
					bad += out[b] != l.lut[b / 1024][ref[b]];
			}
	CHECK(bad == 0);
	/* reflected padding (airbench's translations), every offset and both flips */
	l.cfg.crop_reflect = 1;
	for (int dy = 0; dy <= 8; dy++)
		for (int dx = 0; dx <= 8; dx++)
			for (int f = 0; f < 2; f++) {
				CifarAug a = {dy, dx, f, 0, 0};
				cifar_render(&l, img, &a, out);
				reference_pad(img, 4, dy, dx, f, 1, ref);
				for (int b = 0; b < CIFAR_IMAGE_BYTES; b++)
					bad += out[b] != l.lut[b / 1024][ref[b]];
			}
	CHECK(bad == 0);
	l.cfg.crop_reflect = 0;

	/* and spelled out at a few points */
	CifarAug a = {0, 0, 0, 0, 0}; /* window at the padded canvas's top-left */
	cifar_render(&l, img, &a, out);
	CHECK(AT(0, 0, 0) == pad && AT(0, 3, 31) == pad && AT(2, 31, 3) == pad);
	CHECK(AT(0, 4, 4) == V(0, 0, 0) && AT(1, 31, 31) == V(1, 27, 27));
	a = (CifarAug){4, 4, 0, 0, 0}; /* centred: the image itself */
	cifar_render(&l, img, &a, out);
	bad = 0;
	for (int b = 0; b < CIFAR_IMAGE_BYTES; b++)
		bad += out[b] != l.lut[b / 1024][img[b]];
	CHECK(bad == 0);
	a = (CifarAug){8, 8, 0, 0, 0}; /* bottom-right: last 4 rows and columns padding */
	cifar_render(&l, img, &a, out);
	CHECK(AT(0, 0, 0) == V(0, 4, 4) && AT(2, 27, 27) == V(2, 31, 31));
	CHECK(AT(0, 28, 0) == pad && AT(1, 0, 28) == pad);
	a = (CifarAug){4, 4, 1, 0, 0}; /* flip only */
	cifar_render(&l, img, &a, out);
	CHECK(AT(0, 0, 0) == V(0, 0, 31) && AT(1, 5, 31) == V(1, 5, 0) && AT(2, 9, 10) == V(2, 9, 21));
	a = (CifarAug){4, 0, 1, 0, 0}; /* crop shifted right by 4 then flipped: padding on the right */
	cifar_render(&l, img, &a, out);
	CHECK(AT(0, 0, 27) == V(0, 0, 0) && AT(0, 0, 28) == pad && AT(2, 31, 31) == pad);
	CHECK(AT(1, 7, 0) == V(1, 7, 27));

	/* flags off: the choices are ignored */
	l.cfg.flip = 0;
	l.cfg.crop_pad = 0;
	a = (CifarAug){0, 8, 1, 0, 0};
	cifar_render(&l, img, &a, out);
	CHECK(AT(0, 0, 0) == V(0, 0, 0) && AT(2, 31, 31) == V(2, 31, 31));

	/* cutout, size 8 at (10, 20): rows 6-13, columns 16-23, all channels, to 0.0 */
	l.cfg.cutout = 8;
	a = (CifarAug){0, 0, 0, 10, 20};
	cifar_render(&l, img, &a, out);
	int zeros = 0, wrong = 0;
	for (int ch = 0; ch < 3; ch++)
		for (int y = 0; y < 32; y++)
			for (int x = 0; x < 32; x++) {
				int in = y >= 6 && y <= 13 && x >= 16 && x <= 23;
				zeros += AT(ch, y, x) == 0.0f;
				wrong += in ? AT(ch, y, x) != 0.0f : AT(ch, y, x) != V(ch, y, x);
			}
	CHECK(wrong == 0 && zeros == 3 * 64);
	/* clipped at the corners: (0, 0) -> rows 0-3 x columns 0-3; (31, 31) -> 27-31 x 27-31 */
	a = (CifarAug){0, 0, 0, 0, 0};
	cifar_render(&l, img, &a, out);
	zeros = 0;
	for (int b = 0; b < CIFAR_IMAGE_BYTES; b++)
		zeros += out[b] == 0.0f;
	CHECK(zeros == 3 * 16 && AT(1, 3, 3) == 0.0f && AT(1, 4, 3) != 0.0f && AT(1, 3, 4) != 0.0f);
	a = (CifarAug){0, 0, 0, 31, 31};
	cifar_render(&l, img, &a, out);
	zeros = 0;
	for (int b = 0; b < CIFAR_IMAGE_BYTES; b++)
		zeros += out[b] == 0.0f;
	CHECK(zeros == 3 * 25 && AT(0, 27, 27) == 0.0f && AT(0, 26, 27) != 0.0f);
	/* odd size 5 at (10, 10): rows and columns 8-12 */
	l.cfg.cutout = 5;
	a = (CifarAug){0, 0, 0, 10, 10};
	cifar_render(&l, img, &a, out);
	CHECK(AT(2, 8, 8) == 0.0f && AT(2, 12, 12) == 0.0f && AT(2, 7, 8) != 0.0f && AT(2, 13, 12) != 0.0f);
	/* cutout comes after crop and flip: the square lands in output coordinates */
	l.cfg.cutout = 8;
	l.cfg.crop_pad = 4;
	l.cfg.flip = 1;
	a = (CifarAug){0, 0, 1, 10, 20};
	cifar_render(&l, img, &a, out);
	reference(img, 4, 0, 0, 1, ref);
	wrong = 0;
	for (int ch = 0; ch < 3; ch++)
		for (int y = 0; y < 32; y++)
			for (int x = 0; x < 32; x++) {
				int in = y >= 6 && y <= 13 && x >= 16 && x <= 23;
				wrong += AT(ch, y, x) != (in ? 0.0f : l.lut[ch][ref[ch * 1024 + y * 32 + x]]);
			}
	CHECK(wrong == 0);
	/* no augmentation at all with a == NULL */
	cifar_render(&l, img, NULL, out);
	CHECK(AT(0, 0, 0) == V(0, 0, 0) && AT(0, 12, 20) == V(0, 12, 20));
#undef AT
#undef V
	cifar_loader_free(&l);
}

/* --- randomness ------------------------------------------------------------------------ */

static int
is_permutation(const uint32_t *p, uint32_t n)
{
	static unsigned char seen[5000];
	if (n > sizeof seen)
		return 0;
	memset(seen, 0, n);
	for (uint32_t i = 0; i < n; i++) {
		if (p[i] >= n || seen[p[i]])
			return 0;
		seen[p[i]] = 1;
	}
	return 1;
}

static void
test_permutation(void)
{
	enum { N = 5000 };
	static uint32_t a[N], b[N];
	cifar_epoch_order(42, 0, a, N);
	CHECK(is_permutation(a, N));
	cifar_epoch_order(42, 0, b, N);
	CHECK(memcmp(a, b, sizeof a) == 0); /* reproducible from (seed, epoch) */
	int fixed = 0;
	for (int i = 0; i < N; i++)
		fixed += a[i] == (uint32_t)i;
	CHECK(fixed < 10); /* a real shuffle (expected about 1 fixed point) */
	cifar_epoch_order(42, 1, b, N);
	CHECK(is_permutation(b, N) && memcmp(a, b, sizeof a) != 0); /* epochs differ */
	cifar_epoch_order(43, 0, b, N);
	CHECK(is_permutation(b, N) && memcmp(a, b, sizeof a) != 0); /* seeds differ */
	cifar_epoch_order(42, 0, b, 1);
	CHECK(b[0] == 0);
	cifar_epoch_order(42, 0, b, 0); /* nothing to do, nothing written */

	/* Pinned values: the order is part of the checkpoint contract; a change to the generator
	 * must be deliberate. */
	uint32_t p[8];
	cifar_epoch_order(0, 0, p, 8);
	CHECK(is_permutation(p, 8));
	static const uint32_t pinned[8] = {5, 1, 3, 0, 2, 7, 4, 6};
	CHECK(memcmp(p, pinned, sizeof p) == 0);

	/* uniformity, roughly: where element 0 lands in a permutation of 4, over 8000 epochs */
	int where[4] = {0};
	for (uint64_t e = 0; e < 8000; e++) {
		cifar_epoch_order(9, e, p, 4);
		for (int i = 0; i < 4; i++)
			if (p[i] == 0)
				where[i]++;
	}
	for (int i = 0; i < 4; i++)
		CHECK(where[i] > 1850 && where[i] < 2150);

	/* augmentation choices: in range, all values reached, reproducible */
	CifarConfig c;
	cifar_config_default(&c, 1, 5);
	c.crop_pad = 4;
	int seen_dy[9] = {0}, flips = 0, lo = 0, hi = 0, range_bad = 0;
	for (uint64_t pos = 0; pos < 4000; pos++) {
		CifarAug g = cifar_aug_draw(&c, 3, pos);
		range_bad += g.dy < 0 || g.dy > 8 || g.dx < 0 || g.dx > 8 || g.cy < 0 || g.cy > 31 ||
			     g.cx < 0 || g.cx > 31 || (g.flip != 0 && g.flip != 1);
		seen_dy[g.dy]++;
		flips += g.flip;
		lo += g.cx == 0;
		hi += g.cy == 31;
	}
	CHECK(range_bad == 0 && lo > 0 && hi > 0);
	for (int i = 0; i < 9; i++)
		CHECK(seen_dy[i] > 300 && seen_dy[i] < 600);
	CHECK(flips > 1800 && flips < 2200);
	CifarAug g1 = cifar_aug_draw(&c, 3, 17), g2 = cifar_aug_draw(&c, 3, 17);
	CHECK(g1.dy == 3 && g1.dx == 6 && g1.flip == 1 && g1.cy == 16 && g1.cx == 26); /* pinned */
	CHECK(memcmp(&g1, &g2, sizeof g1) == 0);
	g2 = cifar_aug_draw(&c, 4, 17);
	CifarAug g3 = cifar_aug_draw(&c, 3, 18);
	CHECK(memcmp(&g1, &g2, sizeof g1) != 0 && memcmp(&g1, &g3, sizeof g1) != 0);
	/* pad 0: no crop offset */
	c.crop_pad = 0;
	CHECK(cifar_aug_draw(&c, 3, 17).dy == 0 && cifar_aug_draw(&c, 3, 17).dx == 0);
}

/* --- batches: order, resume, threads ----------------------------------------------------- */

enum { B = 4, STEPS = 3 * (5 * R / B) + 2 }; /* 8 batches per epoch (3 images dropped) */

typedef struct {
	float x[B * CIFAR_IMAGE_BYTES];
	int32_t y[B];
	CifarOrder before;
} Batch;

static void
run(const CifarData *d, const CifarConfig *c, Batch *out, int steps)
{
	char err[256];
	CifarLoader l;
	CHECK(cifar_loader_init(&l, d, c, err, sizeof err) == 0);
	for (int s = 0; s < steps; s++) {
		out[s].before = l.order;
		cifar_loader_next(&l, out[s].x, out[s].y);
	}
	cifar_loader_free(&l);
}

static void
test_batches(const CifarData *d)
{
	char err[256];
	static Batch a[STEPS], b[STEPS];
	CifarConfig c;
	cifar_config_default(&c, B, 2024);
	c.crop_pad = 4;
	c.flip = 1;
	c.cutout = 8;
	CifarLoader l;
	CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
	CHECK(cifar_batches_per_epoch(&l) == 8);
	CHECK(l.order.epoch == 0 && l.order.position == 0);

	/* the uninterrupted run, checked image by image against its definition */
	uint32_t perm[5 * R];
	float want[CIFAR_IMAGE_BYTES];
	int bad = 0, labels_bad = 0;
	for (int s = 0; s < STEPS; s++) {
		a[s].before = l.order;
		cifar_loader_next(&l, a[s].x, a[s].y);
		uint64_t e = a[s].before.epoch, p0 = a[s].before.position;
		CHECK(e == (uint64_t)(s / 8) && p0 == (uint64_t)(s % 8) * B);
		cifar_epoch_order(c.seed, e, perm, 5 * R);
		for (int i = 0; i < B; i++) {
			uint32_t idx = perm[p0 + (uint64_t)i];
			CifarAug g = cifar_aug_draw(&c, e, p0 + (uint64_t)i);
			cifar_render(&l, d->images[CIFAR_TRAIN] + (size_t)idx * CIFAR_IMAGE_BYTES, &g, want);
			bad += memcmp(want, a[s].x + i * CIFAR_IMAGE_BYTES, sizeof want) != 0;
			labels_bad += a[s].y[i] != d->labels[CIFAR_TRAIN][idx];
		}
	}
	CHECK(bad == 0 && labels_bad == 0);
	CHECK(l.order.epoch == 3 && l.order.position == 2 * B);
	/* after the last full batch of an epoch the state reads (next epoch, 0) */
	CHECK(a[8].before.epoch == 1 && a[8].before.position == 0);
	cifar_loader_free(&l);

	/* resuming at every step's saved state reproduces every later batch, byte for byte */
	for (int s = 0; s < STEPS; s++) {
		CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
		CHECK(cifar_loader_seek(&l, a[s].before, err, sizeof err) == 0);
		int same = 1;
		for (int t = s; t < STEPS && t < s + 3; t++) {
			cifar_loader_next(&l, b[0].x, b[0].y);
			same &= memcmp(b[0].x, a[t].x, sizeof b[0].x) == 0 &&
				memcmp(b[0].y, a[t].y, sizeof b[0].y) == 0;
		}
		CHECK(same);
		cifar_loader_free(&l);
	}

	/* threads: 2 and 3 give the very same bytes (3 threads on 4 images: uneven slices) */
	for (int threads = 2; threads <= 3; threads++) {
		c.threads = threads;
		run(d, &c, b, STEPS);
		int same = 1;
		for (int s = 0; s < STEPS; s++)
			same &= memcmp(a[s].x, b[s].x, sizeof a[s].x) == 0 &&
				memcmp(a[s].y, b[s].y, sizeof a[s].y) == 0;
		CHECK(same);
	}
	c.threads = 1;

	/* another seed gives other batches; the same seed the same */
	c.seed = 2025;
	run(d, &c, b, 1);
	CHECK(memcmp(a[0].x, b[0].x, sizeof a[0].x) != 0);
	c.seed = 2024;
	run(d, &c, b, 1);
	CHECK(memcmp(a[0].x, b[0].x, sizeof a[0].x) == 0);

	/* each epoch delivers distinct images: without augmentation, identify them by label+bytes */
	cifar_config_default(&c, B, 11);
	CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
	cifar_epoch_order(11, 0, perm, 5 * R);
	CHECK(is_permutation(perm, 5 * R));
	for (int s = 0; s < 8; s++) {
		cifar_loader_next(&l, b[0].x, b[0].y);
		for (int i = 0; i < B; i++) {
			cifar_render(&l, d->images[CIFAR_TRAIN] + (size_t)perm[s * B + i] * CIFAR_IMAGE_BYTES,
				     NULL, want);
			CHECK(memcmp(want, b[0].x + i * CIFAR_IMAGE_BYTES, sizeof want) == 0);
		}
	}
	cifar_loader_free(&l);

	/* shuffle off: file order, epoch after epoch */
	c.shuffle = 0;
	CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
	for (int s = 0; s < 10; s++) {
		cifar_loader_next(&l, b[0].x, b[0].y);
		CHECK(b[0].y[0] == d->labels[CIFAR_TRAIN][(s % 8) * B]);
	}
	cifar_loader_free(&l);

	/* seek: a position with fewer than B left is the next epoch; past N is an error */
	CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
	CHECK(cifar_loader_seek(&l, (CifarOrder){5, 5 * R - 2}, err, sizeof err) == 0);
	CHECK(l.order.epoch == 6 && l.order.position == 0);
	CHECK(cifar_loader_seek(&l, (CifarOrder){5, 5 * R - B}, err, sizeof err) == 0);
	CHECK(l.order.epoch == 5 && l.order.position == 5 * R - B);
	CHECK(cifar_loader_seek(&l, (CifarOrder){5, 5 * R + 1}, err, sizeof err) == -1);
	CHECK_STR(err, "CIFAR-10 loader: position 36 is past the 35 training images");
	CHECK(l.order.epoch == 5 && l.order.position == 5 * R - B); /* unchanged */
	cifar_loader_free(&l);
}

/* Alternating flip (flip = 2, runtime/splitmix.h nnc_flip_of): every image is rendered
 * mirrored in exactly one of two consecutive epochs, about half of them in each, the same
 * half for a seed; mode 1 keeps the draw's bit and mode 0 never flips. */
static void
test_alternating_flip(const CifarData *d)
{
	char err[256];
	enum { N = 5 * R };
	static float x[2][N * CIFAR_IMAGE_BYTES];
	int32_t y[N];
	CifarConfig c;
	cifar_config_default(&c, N, 99);
	c.shuffle = 0; /* slot i is image i in every epoch */
	c.flip = 2;
	CifarLoader l;
	CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
	cifar_loader_next(&l, x[0], y);
	cifar_loader_next(&l, x[1], y);
	int once = 0, first = 0;
	for (int i = 0; i < N; i++) {
		const float *a = x[0] + (size_t)i * CIFAR_IMAGE_BYTES, *b = x[1] + (size_t)i * CIFAR_IMAGE_BYTES;
		bool mirror = true, same = true;
		for (int e = 0; e < CIFAR_IMAGE_BYTES; e++) {
			int col = e % 32;
			mirror &= a[e] == b[e - col + 31 - col];
			same &= a[e] == b[e];
		}
		once += mirror && !same;
		first += nnc_flip_of(c.seed, 2, 0, (uint64_t)i, 0);
		CHECK(nnc_flip_of(c.seed, 2, 0, (uint64_t)i, 0) != nnc_flip_of(c.seed, 2, 1, (uint64_t)i, 1));
		CHECK(nnc_flip_of(c.seed, 2, 2, (uint64_t)i, 1) == nnc_flip_of(c.seed, 2, 0, (uint64_t)i, 0));
	}
	CHECK(once == N);
	CHECK(first > N / 4 && first < 3 * N / 4);
	CHECK(nnc_flip_of(c.seed, 1, 3, 5, 1) == 1 && nnc_flip_of(c.seed, 1, 3, 5, 0) == 0);
	CHECK(nnc_flip_of(c.seed, 0, 3, 5, 1) == 0);
	cifar_loader_free(&l);
}

/* Test-time augmentation views (cifar_tta_view) against their definition on two images of
 * distinct pixel values: mirrored, and translated by one pixel with PyTorch's reflection at
 * the borders (index -1 reads 1, 32 reads 30); the weights of each level sum to 1. */
static void
test_tta_views(void)
{
	enum { N = 2, S = 32 };
	static float x[N * CIFAR_IMAGE_BYTES], v[N * CIFAR_IMAGE_BYTES];
	for (int i = 0; i < N * CIFAR_IMAGE_BYTES; i++)
		x[i] = (float)i;
#define PX(a, i, c, y, xx) (a)[(((i) * 3 + (c)) * S + (y)) * S + (xx)]
	int bad = 0;
	for (int view = 0; view < CIFAR_TTA_MAX_VIEWS; view++) {
		cifar_tta_view(x, N, view, v);
		int shift = view < 2 ? 0 : view < 4 ? -1 : 1;
		for (int i = 0; i < N; i++)
			for (int c = 0; c < 3; c++)
				for (int y = 0; y < S; y++)
					for (int xx = 0; xx < S; xx++) {
						int sx = view & 1 ? S - 1 - xx : xx;
						int ry = y + shift, rx = sx + shift;
						ry = ry < 0 ? 1 : ry > S - 1 ? S - 2 : ry;
						rx = rx < 0 ? 1 : rx > S - 1 ? S - 2 : rx;
						bad += PX(v, i, c, y, xx) != PX(x, i, c, ry, rx);
					}
	}
	CHECK(bad == 0);
	cifar_tta_view(x, N, 2, v); /* down and right: the top-left output pixel is the input's (1, 1) */
	CHECK(PX(v, 1, 2, 0, 0) == PX(x, 1, 2, 1, 1) && PX(v, 1, 2, 5, 7) == PX(x, 1, 2, 4, 6));
	cifar_tta_view(x, N, 5, v); /* up and left, mirrored: output (31, 0) reads input (30, 30) */
	CHECK(PX(v, 0, 0, 31, 0) == PX(x, 0, 0, 30, 30) && PX(v, 0, 0, 3, 0) == PX(x, 0, 0, 4, 30));
#undef PX
	for (int level = 0; level <= 2; level++) {
		double w = 0;
		for (int k = 0; k < cifar_tta_views(level); k++)
			w += cifar_tta_weight(level, k);
		CHECK(w == 1);
	}
	CHECK(cifar_tta_views(0) == 1 && cifar_tta_views(1) == 2 && cifar_tta_views(2) == 6);
}

static void
test_eval(const CifarData *d)
{
	char err[256];
	CifarConfig c;
	cifar_config_default(&c, B, 3);
	c.crop_pad = 4; /* evaluation ignores augmentation */
	c.flip = 1;
	c.cutout = 16;
	for (int threads = 1; threads <= 2; threads++) {
		c.threads = threads;
		CifarLoader l;
		CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
		float x[B * CIFAR_IMAGE_BYTES], want[CIFAR_IMAGE_BYTES];
		int32_t y[B];
		/* test split: 7 images = 4 + 3 */
		int64_t first = 0;
		int32_t k, batches = 0, total = 0, bad = 0;
		while ((k = cifar_eval_batch(&l, CIFAR_TEST, first, x, y)) > 0) {
			CHECK(k == (batches == 0 ? 4 : 3));
			for (int i = 0; i < B; i++) {
				if (i < k) {
					cifar_render(&l, d->images[CIFAR_TEST] + (size_t)(first + i) * CIFAR_IMAGE_BYTES,
						     NULL, want);
					bad += memcmp(want, x + i * CIFAR_IMAGE_BYTES, sizeof want) != 0;
					bad += y[i] != label_of(CIFAR_TEST, (int)first + i);
				} else {
					for (int b = 0; b < CIFAR_IMAGE_BYTES; b++)
						bad += x[i * CIFAR_IMAGE_BYTES + b] != 0.0f;
					bad += y[i] != -1;
				}
			}
			batches++;
			total += k;
			first += k;
		}
		CHECK(batches == 2 && total == R && bad == 0);
		/* training split: 35 = 8 x 4 + 3, nothing dropped */
		for (first = 0, total = 0, batches = 0; (k = cifar_eval_batch(&l, CIFAR_TRAIN, first, x, y)) > 0;
		     first += k, batches++)
			total += k;
		CHECK(total == 5 * R && batches == 9);
		CHECK(cifar_eval_batch(&l, CIFAR_TEST, -1, x, y) == 0);
		CHECK(cifar_eval_batch(&l, CIFAR_TEST, R, x, y) == 0);
		cifar_loader_free(&l);
	}
}

static void
test_config_errors(const CifarData *d)
{
	char err[256];
	CifarLoader l;
	CifarConfig c;
#define BAD(stmt, want)                                                     \
	do {                                                                    \
		cifar_config_default(&c, B, 1);                                     \
		stmt;                                                               \
		CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == -1);         \
		CHECK_STR(err, want);                                               \
		CHECK(l.perm == NULL && l.pool == NULL);                            \
	} while (0)
	BAD(c.batch = 0, "CIFAR-10 loader: batch size 0 must be 1 to 35 (the training images)");
	BAD(c.batch = 36, "CIFAR-10 loader: batch size 36 must be 1 to 35 (the training images)");
	BAD(c.crop_pad = -1, "CIFAR-10 loader: crop padding -1 must be 0 to 32");
	BAD(c.cutout = 33, "CIFAR-10 loader: cutout size 33 must be 0 to 32");
	BAD(c.flip = 3, "CIFAR-10 loader: flip must be 0, 1 or 2 (alternating), got 3");
	BAD((c.crop_reflect = 1, c.crop_pad = 32), "CIFAR-10 loader: reflected crop padding 32 must be below 32");
	BAD(c.threads = 0, "CIFAR-10 loader: thread count 0 must be 1 to 64");
	BAD(c.threads = 65, "CIFAR-10 loader: thread count 65 must be 1 to 64");
	BAD(c.std[1] = 0.0f, "CIFAR-10 loader: channel 1: std must be > 0 and mean a number");
	BAD(c.mean[2] = NAN, "CIFAR-10 loader: channel 2: std must be > 0 and mean a number");
#undef BAD
	cifar_config_default(&c, 35, 1);
	CHECK(cifar_loader_init(&l, d, &c, err, sizeof err) == 0);
	CHECK(cifar_batches_per_epoch(&l) == 1);
	cifar_loader_free(&l);
	CHECK(strcmp(cifar_class_name(0), "airplane") == 0 && strcmp(cifar_class_name(9), "truck") == 0);
	CHECK(strcmp(cifar_class_name(10), "?") == 0 && strcmp(cifar_class_name(-1), "?") == 0);
}

int
main(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/nnc-data-test.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_load();
	test_open_errors();

	char dir[300];
	snprintf(dir, sizeof dir, "%s/ok", tmpdir);
	CHECK(mkdir(dir, 0700) == 0);
	write_dataset(dir);
	char err[512];
	CifarData d;
	if (cifar_open(&d, dir, &tiny, err, sizeof err) != 0) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	test_normalization(&d);
	test_geometry(&d);
	test_permutation();
	test_batches(&d);
	test_alternating_flip(&d);
	test_tta_views();
	test_eval(&d);
	test_config_errors(&d);
	cifar_close(&d);
	remove_dataset(dir);
	rmdir(dir);
	if (rmdir(tmpdir) != 0)
		fprintf(stderr, "note: %s not empty\n", tmpdir);

	return check_exit("data_loader");
}
