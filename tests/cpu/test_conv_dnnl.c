/* The oneDNN convolutions (runtime/cpu/conv_dnnl.c) against the double-precision reference
 * kernels, on the shapes the models use (3x3 and 1x1, strided, padded and not, grouped and
 * depthwise, with a bias and an epilogue), and their promises:
 *   accuracy     each pass within 1e-5 of the f64 reference, relative to the largest |value|
 *                (f32 with other summation orders), the epilogue applied after the bias
 *   determinism  forward and backward-data bit-identical at 1, 2 and 3 threads; backward-
 *                filter bit-identical from run to run at each thread count
 *   workspace    a workspace one byte short is refused (-1) and the output left as it was; an
 *                unprepared shape is refused too
 *   choice       shapes where im2col measured faster (the RGB input layer, 1x1 over few
 *                channels) are not prepared
 * Skipped (77) when nnc was built without oneDNN.
 *   test_conv_dnnl */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/conv_dnnl.h"
#include "runtime/cpu/kernels.h"
#include "tests/check.h"

typedef struct {
	const char *name;
	CpuConv cv;
} Case;

static const Case cases[] = {
	{"3x3", {.n = 4, .c = 16, .h = 12, .w = 12, .k = 16, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .groups = 1}},
	{"3x3 stride 2", {.n = 3, .c = 16, .h = 11, .w = 9, .k = 32, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .groups = 1}},
	{"1x1 stride 2", {.n = 2, .c = 128, .h = 8, .w = 8, .k = 32, .kh = 1, .kw = 1, .sh = 2, .sw = 2, .ph = 0, .pw = 0, .groups = 1}},
	{"depthwise", {.n = 2, .c = 32, .h = 8, .w = 8, .k = 32, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .groups = 32}},
	{"grouped", {.n = 2, .c = 64, .h = 6, .w = 6, .k = 64, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .groups = 2}},
	{"5x5 unpadded", {.n = 2, .c = 16, .h = 9, .w = 9, .k = 24, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .ph = 0, .pw = 0, .groups = 1}},
};

/* Shapes where im2col measured faster: never prepared, so the executor keeps im2col. */
static const CpuConv im2col_faster[] = {
	{.n = 2, .c = 3, .h = 10, .w = 10, .k = 16, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1, .groups = 1},
	{.n = 2, .c = 96, .h = 8, .w = 8, .k = 24, .kh = 1, .kw = 1, .sh = 1, .sw = 1, .ph = 0, .pw = 0, .groups = 1},
};

static void
fill(float *f, double *d, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		f[i] = (float)((double)(seed >> 8 & 0xffff) / 65536.0 - 0.5);
		d[i] = f[i];
	}
}

/* |got - want| <= 1e-5 * max |want| over the tensor. */
static void
close_to(const char *what, const char *name, const float *got, const double *want, size_t n)
{
	double scale = 1e-30, worst = 0;
	for (size_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(want[i]));
	for (size_t i = 0; i < n; i++)
		worst = fmax(worst, fabs(got[i] - want[i]));
	checks++;
	if (!(worst <= 1e-5 * scale))
		check_fail("%s [%s]: off the f64 reference by %g (scale %g)", what, name, worst, scale);
}

/* Prepares every pass of CV at THREADS; returns the largest workspace. */
static size_t
prepare(const CpuConv *cv, int threads)
{
	size_t ws = 0;
	for (int p = 0; p < 3; p++)
		for (int bias = 0; bias < 2; bias++) {
			size_t b = cpu_dnnl_conv_prepare(cv, (CpuConvPass)p, bias, threads);
			ws = b > ws ? b : ws;
		}
	return ws;
}

static void
test_case(const Case *c)
{
	CpuConv cv = c->cv;
	CHECK(cpu_conv_setup(&cv) == 0);
	size_t nx = cpu_conv_x_numel(&cv), ny = cpu_conv_y_numel(&cv), nw = cpu_conv_w_numel(&cv);
	float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)cv.k * 4), *dy = malloc(ny * 4);
	double *xd = malloc(nx * 8), *wd = malloc(nw * 8), *bd = malloc((size_t)cv.k * 8), *dyd = malloc(ny * 8);
	float *y[4] = {0}, *dx[4] = {0}, *dw[4] = {0}, *dw2 = malloc(nw * 4);
	double *yd = malloc(ny * 8), *dxd = malloc(nx * 8), *dwd = malloc(nw * 8);
	fill(x, xd, nx, 1), fill(w, wd, nw, 2), fill(b, bd, (size_t)cv.k, 3), fill(dy, dyd, ny, 4);
	size_t wsd = 0;
	for (int p = 0; p < 3; p++) {
		size_t s = cpu_conv2d_workspace_f64(&cv, (CpuConvPass)p, 1);
		wsd = s > wsd ? s : wsd;
	}
	void *wsdbuf = malloc(wsd + 64);
	CHECK(cpu_conv2d_forward_f64(&cv, xd, wd, bd, yd, wsdbuf, wsd) == 0);
	CHECK(cpu_conv2d_backward_data_f64(&cv, dyd, wd, dxd, wsdbuf, wsd) == 0);
	CHECK(cpu_conv2d_backward_filter_f64(&cv, xd, dyd, dwd, wsdbuf, wsd) == 0);
	for (int t = 1; t <= 3; t++) {
		cpu_threads_init(t);
		size_t ws = prepare(&cv, t);
		checks++;
		if (!ws) {
			check_fail("[%s]: oneDNN has no JIT kernel for it at %d threads", c->name, t);
			continue;
		}
		void *wsbuf = malloc(ws);
		y[t] = malloc(ny * 4), dx[t] = malloc(nx * 4), dw[t] = malloc(nw * 4);
		CHECK(cpu_dnnl_conv_forward(&cv, x, w, b, y[t], wsbuf, ws, EPI_NONE, t) == 0);
		CHECK(cpu_dnnl_conv_backward_data(&cv, dy, w, dx[t], wsbuf, ws, t) == 0);
		CHECK(cpu_dnnl_conv_backward_filter(&cv, x, dy, dw[t], wsbuf, ws, t) == 0);
		CHECK(cpu_dnnl_conv_backward_filter(&cv, x, dy, dw2, wsbuf, ws, t) == 0);
		char what[64];
		snprintf(what, sizeof what, "backward-filter run to run at %d threads", t);
		checks++;
		if (memcmp(dw[t], dw2, nw * 4) != 0)
			check_fail("%s [%s]: differs", what, c->name);
		if (t == 2) {
			close_to("forward", c->name, y[t], yd, ny);
			close_to("backward-data", c->name, dx[t], dxd, nx);
			close_to("backward-filter", c->name, dw[t], dwd, nw);
			/* the epilogue is applied after the bias, as relu(conv + b) */
			float *r = malloc(ny * 4);
			CHECK(cpu_dnnl_conv_forward(&cv, x, w, b, r, wsbuf, ws, EPI_RELU, t) == 0);
			bool relu_ok = true;
			for (size_t i = 0; i < ny; i++)
				relu_ok &= r[i] == (y[t][i] > 0 ? y[t][i] : 0);
			CHECK(relu_ok);
			/* a workspace one byte short: refused, output untouched */
			memcpy(r, y[t], ny * 4);
			size_t fws = cpu_dnnl_conv_prepare(&cv, CPU_CONV_FORWARD, true, t);
			CHECK(fws > 0 && cpu_dnnl_conv_forward(&cv, x, w, b, r, wsbuf, fws - 1, EPI_NONE, t) == -1);
			CHECK(memcmp(r, y[t], ny * 4) == 0);
			/* not prepared (another thread count): refused */
			CHECK(cpu_dnnl_conv_forward(&cv, x, w, b, r, wsbuf, ws, EPI_NONE, 7) == -1);
			free(r);
		}
		if (t > 1 && y[1]) {
			checks += 2;
			if (memcmp(y[t], y[1], ny * 4) != 0)
				check_fail("forward [%s]: %d threads differ from 1", c->name, t);
			if (memcmp(dx[t], dx[1], nx * 4) != 0)
				check_fail("backward-data [%s]: %d threads differ from 1", c->name, t);
		}
		free(wsbuf);
	}
	for (int t = 1; t <= 3; t++)
		free(y[t]), free(dx[t]), free(dw[t]);
	free(x), free(w), free(b), free(dy), free(xd), free(wd), free(bd), free(dyd), free(dw2), free(yd), free(dxd),
		free(dwd), free(wsdbuf);
}

int
main(void)
{
#ifndef NNC_HAVE_DNNL
	printf("skipped: nnc was built without oneDNN\n");
	return 77;
#endif
	if (getenv("NNC_CPU_CONV")) { /* it changes which shapes are prepared */
		printf("skipped: NNC_CPU_CONV is set\n");
		return 77;
	}
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		test_case(&cases[i]);
	for (size_t i = 0; i < sizeof im2col_faster / sizeof im2col_faster[0]; i++) {
		CpuConv cv = im2col_faster[i];
		CHECK(cpu_conv_setup(&cv) == 0);
		CHECK(prepare(&cv, 2) == 0 && !cpu_dnnl_conv_ready(&cv, CPU_CONV_FORWARD, false, 2));
	}
	cpu_threads_shutdown();
	printf("test_conv_dnnl: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
