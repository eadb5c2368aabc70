/* A command-line driver of runtime/safetensors.h and runtime/checkpoint.h for the cross-checks
 * in tests/io/crosscheck.py, which compare this library with an independent Python reader and
 * writer. Commands (exit 0 on success, 1 with the library's message on stderr otherwise):
 *   io_tool sample OUT      write the sample file: every dtype, ranks 0-3, a zero-size tensor,
 *                           known values (arange etc.) for torch to check, tricky metadata
 *   io_tool ckpt OUT        write a sample checkpoint (plan "plan-X", epoch 3, step 1234)
 *   io_tool dump FILE       read FILE and print its metadata and tensors, sorted, one a line:
 *                             meta KEY=VALUE
 *                             tensor NAME DTYPE [D0,D1,...] NBYTES SHA256-OF-DATA
 *   io_tool rewrite IN OUT  read IN and write its tensors and metadata to OUT with st_write
 *   io_tool load-ckpt FILE  load FILE as a checkpoint (any plan) and print epoch, step, words
 *   io_tool diff A B [FLOOR]  the F32/F16 tensors of A and B by name (each must be in both,
 *                           of one shape): per tensor, max |a - b| / max(max |a|, FLOOR) (FLOOR
 *                           default 0; 0 when equal), then "largest relative difference X" over
 *                           all; for the layout test's tolerances. FLOOR keeps a tensor that is
 *                           rounding noise around an exact zero (a batch mean of normalized
 *                           values) from being measured against its own noise. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "runtime/checkpoint.h"

static int
die(const char *msg)
{
	fprintf(stderr, "io_tool: %s\n", msg);
	return 1;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp((*(const StTensor *const *)a)->name, (*(const StTensor *const *)b)->name);
}

static int
cmd_dump(const char *path)
{
	StFile *f;
	char err[1024];
	if (st_open(path, &f, err, sizeof err) < 0)
		return die(err);
	for (size_t j = 0; j < st_meta_count(f); j++)
		printf("meta %s=%s\n", st_meta_at(f, j)->key, st_meta_at(f, j)->value);
	size_t n = st_count(f);
	const StTensor **t = malloc((n ? n : 1) * sizeof *t);
	for (size_t i = 0; i < n; i++)
		t[i] = st_tensor_at(f, i);
	qsort(t, n, sizeof *t, cmp_name);
	for (size_t i = 0; i < n; i++) {
		Sha256 s;
		unsigned char d[32];
		char hex[65];
		sha256_init(&s);
		sha256_update(&s, t[i]->data, (size_t)t[i]->nbytes);
		sha256_final(&s, d);
		sha256_hex(d, hex);
		printf("tensor %s %s [", t[i]->name, st_dtype_name(t[i]->dtype));
		for (int k = 0; k < t[i]->rank; k++)
			printf("%s%" PRId64, k ? "," : "", t[i]->dims[k]);
		printf("] %" PRIu64 " %s\n", t[i]->nbytes, hex);
	}
	free(t);
	st_close(f);
	return 0;
}

static int
cmd_rewrite(const char *in, const char *out)
{
	StFile *f;
	char err[1024];
	if (st_open(in, &f, err, sizeof err) < 0)
		return die(err);
	size_t n = st_count(f), nm = st_meta_count(f);
	StTensor *t = malloc((n ? n : 1) * sizeof *t);
	StMeta *m = malloc((nm ? nm : 1) * sizeof *m);
	for (size_t i = 0; i < n; i++)
		t[i] = *st_tensor_at(f, i);
	for (size_t j = 0; j < nm; j++)
		m[j] = *st_meta_at(f, j);
	int rc = st_write(out, t, n, m, nm, err, sizeof err);
	free(t);
	free(m);
	st_close(f);
	return rc < 0 ? die(err) : 0;
}

/* The sample: known values where torch can check them, patterns elsewhere. */
static int
cmd_sample(const char *out)
{
	enum { MAXT = 96 };
	static unsigned char pool[1 << 16];
	static int64_t dims[MAXT][4];
	static char names[MAXT][40];
	StTensor t[MAXT];
	size_t nt = 0, used = 0;

	static float f32[6];
	for (int i = 0; i < 6; i++)
		f32[i] = 0.5f * (float)i;
	static int64_t i64[5] = {-2, -1, 0, 1, 2};
	static const uint16_t bf16[2] = {0x3f80, 0xc000};  /* 1.0, -2.0 */
	static const uint16_t f16[3] = {0x3800, 0x3c00, 0xfc00}; /* 0.5, 1.0, -inf */
	static double f64 = -0.25;
	static unsigned char b[4] = {1, 0, 0, 1};
	static const int64_t d23[] = {2, 3}, d5[] = {5}, d2[] = {2}, d3[] = {3}, d22[] = {2, 2},
		d03[] = {0, 3};
	t[nt++] = (StTensor){.name = "known.f32", .dtype = ST_F32, .rank = 2, .dims = d23, .data = f32};
	t[nt++] = (StTensor){.name = "known.i64", .dtype = ST_I64, .rank = 1, .dims = d5, .data = i64};
	t[nt++] = (StTensor){.name = "known.bf16", .dtype = ST_BF16, .rank = 1, .dims = d2, .data = bf16};
	t[nt++] = (StTensor){.name = "known.f16", .dtype = ST_F16, .rank = 1, .dims = d3, .data = f16};
	t[nt++] = (StTensor){.name = "known.f64", .dtype = ST_F64, .rank = 0, .dims = NULL, .data = &f64};
	t[nt++] = (StTensor){.name = "known.bool", .dtype = ST_BOOL, .rank = 2, .dims = d22, .data = b};
	t[nt++] = (StTensor){.name = "empty", .dtype = ST_F32, .rank = 2, .dims = d03, .data = NULL};
	t[nt++] = (StTensor){.name = "layer1.0.conv1.weight\xc3\xa9\"\\", .dtype = ST_U8, .rank = 1,
		.dims = d3, .data = "abc"};
	static const int64_t shape[3] = {3, 1, 2};
	for (int d = 0; d < ST_NDTYPE; d++)
		for (int r = 0; r <= 3; r++) {
			size_t n = st_dtype_size((StDtype)d);
			for (int k = 0; k < r; k++) {
				dims[nt][k] = shape[k];
				n *= (size_t)shape[k];
			}
			for (size_t k = 0; k < n; k++)
				pool[used + k] = (unsigned char)(k * 13 + nt);
			snprintf(names[nt], sizeof names[nt], "p.%s.%d", st_dtype_name((StDtype)d), r);
			t[nt] = (StTensor){.name = names[nt], .dtype = (StDtype)d, .rank = r,
				.dims = dims[nt], .data = pool + used};
			used += n;
			nt++;
		}
	static const StMeta m[] = {
		{"format", "pt"},
		{"note", "caf\xc3\xa9 \"q\" \\ / \n\t\x01 \xf0\x9f\x98\x80"},
		{"", "empty key"},
	};
	char err[1024];
	if (st_write(out, t, nt, m, 3, err, sizeof err) < 0)
		return die(err);
	return 0;
}

static int
cmd_ckpt(const char *out)
{
	static const float w[4] = {1, 2, 3, 4};
	static const int64_t d[] = {2, 2};
	static const uint64_t rng[] = {0x0123456789abcdefu, 7};
	static const uint64_t order[] = {99};
	StTensor t[] = {{.name = "fc.weight", .dtype = ST_F32, .rank = 2, .dims = d, .data = w}};
	StMeta extra[] = {{"model", "tiny"}};
	CkptInfo info = {.plan = "plan-X", .epoch = 3, .step = 1234, .rng = rng, .nrng = 2,
		.data_order = order, .norder = 1, .extra = extra, .nextra = 1};
	char err[1024];
	if (ckpt_save(out, t, 1, &info, 0, err, sizeof err) < 0)
		return die(err);
	return 0;
}

static int
cmd_load_ckpt(const char *path)
{
	Ckpt c;
	char err[1024];
	if (ckpt_load(path, NULL, NULL, 0, &c, err, sizeof err) < 0)
		return die(err);
	printf("plan %s epoch %" PRIu64 " step %" PRIu64 " rng", c.plan, c.epoch, c.step);
	for (size_t i = 0; i < c.nrng; i++)
		printf(" %" PRIx64, c.rng[i]);
	printf(" order");
	for (size_t i = 0; i < c.norder; i++)
		printf(" %" PRIx64, c.data_order[i]);
	printf("\n");
	ckpt_close(&c);
	return 0;
}

static double
element(const StTensor *t, size_t i)
{
	if (t->dtype == ST_F16)
		return half_to_float(((const nnc_half *)t->data)[i]);
	return ((const float *)t->data)[i];
}

static int
cmd_diff(const char *a, const char *b, double floor)
{
	char err[1024];
	StFile *fa, *fb;
	if (st_open(a, &fa, err, sizeof err) != 0)
		return die(err);
	if (st_open(b, &fb, err, sizeof err) != 0) {
		st_close(fa);
		return die(err);
	}
	double worst = 0;
	int rc = 0;
	for (size_t i = 0; i < st_count(fa) && !rc; i++) {
		const StTensor *x = st_tensor_at(fa, i), *y = st_find(fb, x->name);
		if (x->dtype != ST_F32 && x->dtype != ST_F16)
			continue;
		bool same = y && y->dtype == x->dtype && y->rank == x->rank;
		for (int k = 0; same && k < x->rank; k++)
			same = x->dims[k] == y->dims[k];
		if (!same) {
			fprintf(stderr, "io_tool: %s: tensor '%s' is missing or shaped differently\n", b, x->name);
			rc = 1;
			break;
		}
		size_t n = (size_t)(x->nbytes / (x->dtype == ST_F16 ? 2 : 4));
		double big = 0, d = 0;
		for (size_t j = 0; j < n; j++) {
			double u = element(x, j), v = element(y, j);
			big = fabs(u) > big ? fabs(u) : big;
			double e = u == v ? 0 : isnan(u) || isnan(v) ? INFINITY : fabs(u - v);
			d = e > d ? e : d;
		}
		big = big > floor ? big : floor;
		double rel = d == 0 ? 0 : big > 0 ? d / big : INFINITY;
		printf("%s %.3g\n", x->name, rel);
		worst = rel > worst ? rel : worst;
	}
	if (!rc)
		printf("largest relative difference %.3g\n", worst);
	st_close(fa);
	st_close(fb);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "dump") == 0)
		return cmd_dump(argv[2]);
	if (argc == 4 && strcmp(argv[1], "rewrite") == 0)
		return cmd_rewrite(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "sample") == 0)
		return cmd_sample(argv[2]);
	if (argc == 3 && strcmp(argv[1], "ckpt") == 0)
		return cmd_ckpt(argv[2]);
	if (argc == 3 && strcmp(argv[1], "load-ckpt") == 0)
		return cmd_load_ckpt(argv[2]);
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "diff") == 0)
		return cmd_diff(argv[2], argv[3], argc == 5 ? strtod(argv[4], NULL) : 0);
	fprintf(stderr, "usage: io_tool sample|ckpt|dump|load-ckpt FILE | rewrite IN OUT | diff A B [FLOOR]\n");
	return 2;
}
