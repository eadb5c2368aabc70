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
 *     window contains the input position;
 *   - the per-element bodies of the grid-stride kernels, run here for every element, against
 *     the CPU kernels on whole tensors: max and average pooling forward and backward (with
 *     ties, padding, overlapping and strided windows), batch-norm apply and inference with
 *     their epilogues, channel concatenation, and an elementwise chain in fp16 storage. */
#include <vector>
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
	for (int op = 0; op < NEW; op++) { /* CpuEw numbers the formulas as Elementwise (exec.c) */
		cpu_ew_range_f32((CpuEw)op, a, b, cpu, 0, N);
		for (int i = 0; i < N; i++) {
			char what[64];
			snprintf(what, sizeof what, "ew1 op %d at %g, %g", op, a[i], b[i]);
			check(same_bits(ew1(op, a[i], b[i]), cpu[i]), what, ew1(op, a[i], b[i]), cpu[i]);
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
	/* pooling bodies over whole tensors, integer-valued data so windows tie */
	static const int geo[][6] = {{2, 2, 2, 2, 0, 0}, {3, 3, 2, 2, 1, 1}, {3, 3, 1, 1, 1, 1}, {3, 2, 2, 1, 0, 1},
		{2, 2, 1, 1, 0, 0}};
	for (const auto &g : geo) {
		CpuPool cp = {2, 3, 7, 6, g[0], g[1], g[2], g[3], g[4], g[5], 0, 0};
		if (cpu_pool_setup(&cp) != 0) {
			check(false, "cpu_pool_setup", 0, 0);
			continue;
		}
		Pool p = {cp.n, cp.c, cp.h, cp.w, cp.kh, cp.kw, cp.sh, cp.sw, cp.ph, cp.pw, cp.oh, cp.ow};
		size_t nin = (size_t)cp.n * cp.c * cp.h * cp.w, nout = (size_t)cp.n * cp.c * cp.oh * cp.ow;
		std::vector<float> x(nin), dy(nout), yc(nout), yg(nout), dxc(nin), dxg(nin);
		for (size_t i = 0; i < nin; i++)
			x[i] = (float)((i * 7 + 3) % 5);
		for (size_t i = 0; i < nout; i++)
			dy[i] = (float)((int)(i % 9) - 4) * 0.25f;
		Buf bx = {x.data(), false}, bdy = {dy.data(), false}, byg = {yg.data(), false}, bdx = {dxg.data(), false};
		for (int kind = 0; kind < 2; kind++) {
			const char *name = kind ? "avgpool" : "maxpool";
			(kind ? cpu_avgpool2d_forward_f32 : cpu_maxpool2d_forward_f32)(&cp, x.data(), yc.data());
			for (size_t i = 0; i < nout; i++)
				kind ? avgpool_fwd_at(p, bx, byg, (long long)i) : maxpool_fwd_at(p, bx, byg, (long long)i);
			check(memcmp(yc.data(), yg.data(), nout * sizeof(float)) == 0, name, 0, 0);
			if (kind)
				cpu_avgpool2d_backward_f32(&cp, dy.data(), dxc.data());
			else
				cpu_maxpool2d_backward_f32(&cp, x.data(), dy.data(), dxc.data());
			for (size_t i = 0; i < nin; i++)
				kind ? avgpool_bwd_at(p, bdy, bdx, (long long)i) : maxpool_bwd_at(p, bx, bdy, bdx, (long long)i);
			check(memcmp(dxc.data(), dxg.data(), nin * sizeof(float)) == 0, kind ? "avgpool_bwd" : "maxpool_bwd", 0, 0);
		}
	}

	/* batch norm bodies: apply (training) and inference, with relu6 */
	{
		enum { BN = 2, BC = 3, BHW = 5, BT = BN * BC * BHW };
		float x[BT], st[3 * BC], w[BC] = {0.5f, 1.5f, -1}, b[BC] = {0.25f, -1, 2}, rm[BC] = {0.1f, -0.2f, 3},
			rv[BC] = {1, 0.5f, 2}, yc[BT], yg[BT];
		for (int i = 0; i < BT; i++)
			x[i] = (float)((i * 5 % 11) - 3) * 0.7f;
		cpu_batchnorm_stats_f32(x, BN, BC, BHW, 1e-5, st, st + BC, st + 2 * BC);
		Buf bx = {x, false}, bs = {st, false}, bw = {w, false}, bb = {b, false}, by = {yg, false};
		cpu_batchnorm_apply_f32(x, BN, BC, BHW, st, st + BC, w, b, yc, CPU_ACT_RELU6);
		for (int i = 0; i < BT; i++)
			bn_apply_at(bx, bs, bw, bb, by, BC, BHW, 2, i);
		check(memcmp(yc, yg, sizeof yc) == 0, "bn_apply+relu6", 0, 0);
		Buf bm = {rm, false}, bv = {rv, false};
		cpu_batchnorm_inference_f32(x, BN, BC, BHW, rm, rv, 1e-3, w, b, yc, CPU_ACT_RELU);
		for (int i = 0; i < BT; i++)
			bn_infer_at(bx, bm, bv, 1e-3, bw, bb, by, BC, BHW, 1, i);
		check(memcmp(yc, yg, sizeof yc) == 0, "batchnorm inference+relu", 0, 0);
	}

	/* concat of two inputs along channels through channels_copy */
	{
		enum { CN = 2, CHW = 4 };
		float x0[CN * 2 * CHW], x1[CN * 3 * CHW], yc[CN * 5 * CHW], yg[CN * 5 * CHW];
		for (int i = 0; i < CN * 2 * CHW; i++)
			x0[i] = (float)i;
		for (int i = 0; i < CN * 3 * CHW; i++)
			x1[i] = (float)(100 + i);
		const float *xs[2] = {x0, x1};
		int cs[2] = {2, 3};
		cpu_concat_forward_f32(2, xs, cs, CN, CHW, yc);
		Buf b0 = {x0, false}, b1 = {x1, false}, by = {yg, false};
		for (long long i = 0; i < CN * 2 * CHW; i++)
			channels_copy_at(b0, 2, 0, by, 5, 0, 2, CHW, i);
		for (long long i = 0; i < CN * 3 * CHW; i++)
			channels_copy_at(b1, 3, 0, by, 5, 2, 3, CHW, i);
		check(memcmp(yc, yg, sizeof yc) == 0, "concat through channels_copy", 0, 0);
	}

	/* an elementwise chain in fp16 storage: relu_bwd(add(a, b), y) with the intermediate sum
	 * rounded to fp16, as the unfused plan stores it */
	{
		enum { EN = 64 };
		std::vector<__half> ha(EN), hb(EN), hy(EN), out(EN);
		for (int i = 0; i < EN; i++) {
			ha[i] = __float2half_rn(a[i] * 0.37f);
			hb[i] = __float2half_rn(b[i] * 1.3f);
			hy[i] = __float2half_rn(a[(i * 7) % EN]);
		}
		EwProgram p = {};
		p.nops = 2;
		p.op[0] = EW_add, p.a[0] = 0, p.b[0] = 1;
		p.op[1] = EW_relu_bwd, p.a[1] = 2, p.b[1] = EW_PREV; /* kernel (saved, dy) */
		p.in[0] = {ha.data(), true}, p.in[1] = {hb.data(), true}, p.in[2] = {hy.data(), true};
		p.out = {out.data(), true};
		p.n = EN;
		for (long long i = 0; i < EN; i++)
			ew_at(p, i);
		for (int i = 0; i < EN; i++) {
			float sum = __half2float(__float2half_rn(__half2float(ha[i]) + __half2float(hb[i])));
			float want = __half2float(__float2half_rn(__half2float(hy[i]) > 0 ? sum : 0.0f));
			check(same_bits(__half2float(out[i]), want), "fp16 chain add+relu_bwd", __half2float(out[i]), want);
		}
	}

	printf("test_cuda_host: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
