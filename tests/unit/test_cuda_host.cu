/* The CUDA kernels' scalar functions (runtime/cuda/kernels_math.cuh) against their CPU twins,
 * run on the host: it needs nvcc to build but no GPU to run, so it runs wherever the CUDA
 * backend is built (not labelled `cuda`). It checks, bit for bit:
 *   - the Philox4x32-10 stream of dropout masks against cpu_rng_at, over keys and positions
 *     that cross 4-word blocks and the 32-bit counter word;
 *   - every elementwise op and prologue formula against cpu_ew_range / the CPU kernels, on
 *     values that include the masks' bounds (0, 6) and large magnitudes (host math; the device
 *     math library may differ in the last bit, which test_cuda_vs_cpu allows for);
 *   - the pooling backward's windows_over against brute force: for every geometry up to 5x5
 *     windows, strides 1-3, padding 0-2, the output windows it lists are exactly those whose
 *     window contains the input position. */
#include <cstdio>
#include <cstring>

#include "runtime/cuda/kernels_math.cuh"
extern "C" {
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/rng.h"
}

static int checks, failures;

static void
check(bool ok, const char *what, double a, double b)
{
	checks++;
	if (!ok) {
		failures++;
		if (failures < 20)
			printf("FAIL %s: cuda %.9g, cpu %.9g\n", what, a, b);
	}
}

static bool
same_bits(float a, float b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

int
main(void)
{
	static const uint64_t keys[] = {0, 1, 0x64726f706f7574ull, 0xffffffffffffffffull};
	static const uint64_t starts[] = {0, 3, 1021, 0xfffffff0ull, 0x1234567890ull};
	for (uint64_t key : keys)
		for (uint64_t start : starts) {
			CpuRng r;
			cpu_rng_seed(&r, key);
			for (uint64_t i = start; i < start + 40; i++)
				check(philox_at(key, i) == cpu_rng_at(&r, i), "philox_at vs cpu_rng_at", philox_at(key, i),
					cpu_rng_at(&r, i));
		}

	enum { N = 64 };
	float a[N], b[N], cpu[N];
	for (int i = 0; i < N; i++) {
		a[i] = (float)((i * 37 % 29) - 10) * 0.75f; /* -7.5 .. 13.5, with 0 and 6 exactly */
		b[i] = (float)((i * 11 % 13) - 6) * 0.5f;
	}
	a[5] = 0.0f, a[6] = 6.0f, a[7] = 1e4f, a[8] = -1e4f;
	static const int ops[][2] = {{EW_RELU, CPU_EW_RELU}, {EW_RELU6, CPU_EW_RELU6}, {EW_GELU, CPU_EW_GELU},
		{EW_TANH, CPU_EW_TANH}, {EW_ADD, CPU_EW_ADD}, {EW_MUL, CPU_EW_MUL}, {EW_RELU_BWD, CPU_EW_RELU_BWD},
		{EW_RELU6_BWD, CPU_EW_RELU6_BWD}, {EW_GELU_BWD, CPU_EW_GELU_BWD}, {EW_TANH_BWD, CPU_EW_TANH_BWD}};
	for (const auto &op : ops) {
		cpu_ew_range_f32((CpuEw)op[1], a, b, cpu, 0, N);
		for (int i = 0; i < N; i++) {
			char what[64];
			snprintf(what, sizeof what, "ew1 op %d at %g, %g", op[0], a[i], b[i]);
			check(same_bits(ew1(op[0], a[i], b[i]), cpu[i]), what, ew1(op[0], a[i], b[i]), cpu[i]);
		}
	}
	for (int pro = 1; pro <= 2; pro++) {
		(pro == 1 ? cpu_relu_backward_f32 : cpu_relu6_backward_f32)(a, b, cpu, N);
		for (int i = 0; i < N; i++)
			check(same_bits(act_grad(b[i], a[i], pro), cpu[i]), "act_grad vs relu(6)_backward", act_grad(b[i], a[i], pro),
				cpu[i]);
		memcpy(cpu, a, sizeof cpu);
		cpu_act_f32(cpu, N, (CpuAct)pro);
		for (int i = 0; i < N; i++)
			check(same_bits(act(a[i], pro), cpu[i]), "act vs cpu_act", act(a[i], pro), cpu[i]);
	}

	for (int k = 1; k <= 5; k++)
		for (int s = 1; s <= 3; s++)
			for (int pad = 0; pad <= 2 && pad < k; pad++)
				for (int in = 1; in <= 9; in++) {
					int out = (in + 2 * pad - k) / s + 1;
					if (in + 2 * pad < k)
						continue;
					for (int i = 0; i < in; i++) {
						int lo, hi;
						windows_over(i, k, s, pad, out, &lo, &hi);
						for (int o = 0; o < out; o++) {
							bool covers = o * s - pad <= i && i < o * s - pad + k;
							check(covers == (o >= lo && o < hi), "windows_over vs brute force", o, covers);
						}
					}
				}
	printf("test_cuda_host: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
