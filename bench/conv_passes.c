/* Per-pass convolution timings on the ResNet shapes (batch 128, f32): nnc's im2col + OpenBLAS
 * kernels against the oneDNN path (runtime/cpu/conv_dnnl.c, its reorders to and from the
 * blocked layouts included), each pass the median of ROUNDS runs of REPS calls. Prints one
 * Markdown row per shape: milliseconds per pass for each, and im2col's total over oneDNN's.
 * bench/cpu_conv.sh writes the table.
 *   bench_conv_passes THREADS ROUNDS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "runtime/cpu/conv_dnnl.h"
#include "runtime/cpu/kernels.h"

enum { REPS = 5 };


static int
by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Milliseconds per call of pass PASS (im2col unless DNNL), median of ROUNDS. */
static double
time_pass(const CpuConv *cv, int pass, bool dnnl, int threads, int rounds, float *x, float *w, float *y, float *dx,
	float *dw, void *ws, size_t wsb)
{
	double t[64];
	for (int r = 0; r < rounds && r < 64; r++) {
		double t0 = 0;
		for (int i = -1; i < REPS; i++) {
			if (i == 0)
				t0 = nnc_seconds();
			int rc = pass == 0 ? (dnnl ? cpu_dnnl_conv_forward(cv, x, w, NULL, y, ws, wsb, EPI_NONE, threads)
			                           : cpu_conv2d_forward_f32(cv, x, w, NULL, y, ws, wsb))
			       : pass == 1 ? (dnnl ? cpu_dnnl_conv_backward_data(cv, y, w, dx, ws, wsb, threads)
			                           : cpu_conv2d_backward_data_f32(cv, y, w, dx, ws, wsb))
			                   : (dnnl ? cpu_dnnl_conv_backward_filter(cv, x, y, dw, ws, wsb, threads)
			                           : cpu_conv2d_backward_filter_f32(cv, x, y, dw, ws, wsb));
			if (rc) {
				fprintf(stderr, "bench_conv_passes: a convolution failed\n");
				exit(1);
			}
		}
		t[r] = (nnc_seconds() - t0) / REPS * 1e3;
	}
	qsort(t, (size_t)rounds, sizeof *t, by_value);
	return t[rounds / 2];
}

int
main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2, rounds = argc > 2 ? atoi(argv[2]) : 3;
	if (threads < 1 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "usage: bench_conv_passes THREADS ROUNDS\n");
		return 2;
	}
	cpu_threads_init(threads);
	/* c, h (= w), k, kernel, stride, groups: ResNet-20/56's convolutions at batch 128, and
	 * MobileNet-V2's kinds (depthwise 3x3, pointwise 1x1) */
	static const int shapes[][6] = {{3, 32, 16, 3, 1, 1}, {16, 32, 16, 3, 1, 1}, {16, 32, 32, 3, 2, 1},
		{16, 32, 32, 1, 2, 1}, {32, 16, 32, 3, 1, 1}, {32, 16, 64, 3, 2, 1}, {64, 8, 64, 3, 1, 1},
		{96, 16, 96, 3, 1, 96}, {96, 16, 24, 1, 1, 1}, {24, 16, 144, 1, 1, 1}, {160, 4, 960, 1, 1, 1}};
	printf("| shape (c, h, k, kernel, stride, groups) | im2col fwd | bwd-data | bwd-filter | oneDNN fwd | bwd-data | bwd-filter "
	       "| im2col / oneDNN |\n|---|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		const int *s = shapes[i];
		CpuConv cv = {.n = 128, .c = s[0], .h = s[1], .w = s[1], .k = s[2], .kh = s[3], .kw = s[3], .sh = s[4],
			.sw = s[4], .ph = s[3] / 2, .pw = s[3] / 2, .groups = s[5]};
		if (cpu_conv_setup(&cv))
			return 1;
		size_t nx = cpu_conv_x_numel(&cv), ny = cpu_conv_y_numel(&cv), nw = cpu_conv_w_numel(&cv), wsb = 0;
		for (int p = 0; p < 3; p++) {
			size_t a = cpu_conv2d_workspace_f32(&cv, (CpuConvPass)p, threads);
			size_t b = cpu_dnnl_conv_prepare(&cv, (CpuConvPass)p, false, threads);
			wsb = a > wsb ? a : wsb;
			wsb = b > wsb ? b : wsb;
			if (!b) {
				fprintf(stderr, "bench_conv_passes: oneDNN has no JIT kernel for a pass (or NNC_CPU_CONV is set)\n");
				return 1;
			}
		}
		float *x = malloc(nx * 4), *w = malloc(nw * 4), *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4);
		void *ws = aligned_alloc(64, (wsb + 63) / 64 * 64);
		if (!x || !w || !y || !dx || !dw || !ws)
			return 1;
		for (size_t j = 0; j < nx; j++)
			x[j] = (float)(j * 7919 % 1000) / 1000 - 0.5f;
		for (size_t j = 0; j < nw; j++)
			w[j] = (float)(j * 104729 % 1000) / 1000 - 0.5f;
		for (size_t j = 0; j < ny; j++)
			y[j] = (float)(j * 15485863 % 1000) / 1000 - 0.5f;
		double t[2][3], total[2] = {0, 0};
		for (int d = 0; d < 2; d++)
			for (int p = 0; p < 3; p++) {
				t[d][p] = time_pass(&cv, p, d, threads, rounds, x, w, y, dx, dw, ws, wsb);
				total[d] += t[d][p];
			}
		printf("| %d, %d, %d, %dx%d, %d, %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", cv.c, cv.h, cv.k,
			cv.kh, cv.kw, cv.sh, cv.groups, t[0][0], t[0][1], t[0][2], t[1][0], t[1][1], t[1][2], total[0] / total[1]);
		free(x), free(w), free(y), free(dx), free(dw), free(ws);
	}
	return 0;
}
