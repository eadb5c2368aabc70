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
 *     their epilogues, batch-norm apply fused with the add after it, channel concatenation,
 *     and an elementwise chain in fp16 storage;
 *   - the resident training loop's logic (resident_math.cuh) against the CPU code it mirrors:
 *     epoch permutations and augmentation draws against runtime/data.c's; whole rendered
 *     training batches (crop, flip, cutout in several combinations, across epochs) and
 *     evaluation batches (with a padded last batch) against the CPU loader's; the end-of-step
 *     scalars over a pattern of skipped steps against exec_finish_step and the loader's order;
 *     and the argmax of rows with ties against cpu_count_correct;
 *   - the optimizer updates' per-element bodies against cpu_sgd_step and cpu_adam_step, and the
 *     multi-tensor launches' chunk lookup;
 *   - the batch-norm statistics split over blocks (bn_splits, split_range, chan_combine) against
 *     cpu_batchnorm_stats, and the running statistics' update against the CPU's;
 *   - the direct convolutions (cuDNN's fallback) against the CPU's forward, backward-data and
 *     backward-filter convolutions, on padded, strided, grouped and depthwise shapes;
 *   - softmax, the loss, global average pooling, batch-norm folding and the batch-norm backward
 *     as the device splits it (row_and_channel_checks). What runs only on a GPU: the block
 *     trees that add a block's partial sums, and cuDNN and cuBLAS. */
#include <algorithm>
#include <vector>
#include <cstdio>
#include <cstring>

#include "runtime/cuda/kernels_math.cuh"
#include "runtime/cuda/resident_math.cuh"
extern "C" {
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/rng.h"
#include "runtime/data.h"
#include "runtime/exec.h"
#include "core/half.h"
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

/* ---- the resident loop against runtime/data.c and exec.c ---- */

static uint32_t lcg = 12345;

static uint32_t
next_u32(void)
{
	lcg = lcg * 1664525u + 1013904223u;
	return lcg >> 8;
}

static void
resident_checks(void)
{
	for (uint32_t n : {1u, 2u, 7u, 1000u, 50000u})
		for (uint64_t epoch : {0ull, 1ull, 37ull}) {
			std::vector<uint32_t> cpu(n), dev(n);
			cifar_epoch_order(42, epoch, cpu.data(), n);
			epoch_order(42, epoch, 1, dev.data(), n);
			check(cpu == dev, "epoch_order vs cifar_epoch_order", n, (double)epoch);
		}
	for (int pad : {0, 2, 4})
		for (uint64_t pos = 0; pos < 300; pos += 7) {
			CifarConfig c;
			cifar_config_default(&c, 1, 9);
			c.crop_pad = pad;
			CifarAug a = cifar_aug_draw(&c, 3, pos);
			AugDraw b = aug_draw(9, pad, 3, pos);
			check(a.dy == b.dy && a.dx == b.dx && a.flip == b.flip && a.cy == b.cy && a.cx == b.cx,
				"aug_draw vs cifar_aug_draw", b.dy * 100 + b.dx, a.dy * 100 + a.dx);
		}

	/* a small dataset of random bytes; batches of 48 from 200 training images: 4 per epoch */
	enum { NTR = 200, NTE = 70, B = 48 };
	std::vector<uint8_t> img[2], lab[2];
	int nimg[2] = {NTR, NTE};
	for (int s = 0; s < 2; s++) {
		img[s].resize((size_t)nimg[s] * D_IMAGE);
		lab[s].resize(nimg[s]);
		for (auto &v : img[s])
			v = (uint8_t)next_u32();
		for (auto &v : lab[s])
			v = (uint8_t)(next_u32() % 10);
	}
	CifarData data = {};
	for (int s = 0; s < 2; s++) {
		data.images[s] = img[s].data();
		data.labels[s] = lab[s].data();
		data.n[s] = nimg[s];
	}
	struct {
		int crop, flip, cutout, reflect;
	} augs[] = {{0, 0, 0, 0}, {4, 1, 0, 0}, {2, 1, 8, 0}, {4, 1, 16, 0}, {0, 0, 5, 0}, {2, 2, 0, 1}, {4, 2, 8, 1}};
	std::vector<float> cx((size_t)B * D_IMAGE), gx(cx.size());
	std::vector<int32_t> cy(B), gy(B);
	std::vector<uint32_t> perm(NTR);
	for (auto a : augs) {
		CifarConfig cfg;
		cifar_config_default(&cfg, B, 1234);
		cfg.crop_pad = a.crop, cfg.flip = a.flip, cfg.cutout = a.cutout, cfg.crop_reflect = a.reflect;
		CifarLoader ld;
		char err[256];
		if (cifar_loader_init(&ld, &data, &cfg, err, sizeof err) != 0) {
			check(false, err, 0, 0);
			return;
		}
		DataDev d = {};
		d.images[0] = img[0].data(), d.images[1] = img[1].data();
		d.labels[0] = lab[0].data(), d.labels[1] = lab[1].data();
		d.n[0] = NTR, d.n[1] = NTE;
		d.lut = &ld.lut[0][0];
		d.perm = perm.data();
		d.seed = cfg.seed, d.shuffle = 1, d.crop_pad = a.crop, d.flip = a.flip, d.cutout = a.cutout;
		d.crop_reflect = a.reflect;
		DevRun r = {};
		uint64_t perm_epoch = ~0ull;
		for (int step = 0; step < 10; step++) {
			if (perm_epoch != r.epoch)
				epoch_order(d.seed, r.epoch, 1, d.perm, NTR);
			perm_epoch = r.epoch;
			for (long long i = 0; i < (long long)gx.size(); i++)
				render_at(d, 1, 1, r.epoch, r.position, 0, B, gx.data(), gy.data(), i);
			cifar_loader_next(&ld, cx.data(), cy.data());
			check(!memcmp(cx.data(), gx.data(), cx.size() * sizeof(float)) && cy == gy,
				"render_at (training batch) vs cifar_loader_next", step, a.crop * 100 + a.cutout);
			end_step_scalars(&r, 1.0f, 0, B, NTR, nullptr);
			check(r.epoch == ld.order.epoch && r.position == ld.order.position, "end_step_scalars order vs loader",
				(double)r.position, (double)ld.order.position);
		}
		for (long long first = 0; first < NTE; first += B) {
			int valid = cifar_eval_batch(&ld, CIFAR_TEST, first, cx.data(), cy.data());
			for (long long i = 0; i < (long long)gx.size(); i++)
				render_at(d, 0, 1, 0, 0, first, valid, gx.data(), gy.data(), i);
			bool labels = true;
			for (int b = 0; b < B; b++)
				labels &= gy[b] == (b < valid ? cy[b] : 0);
			check(!memcmp(cx.data(), gx.data(), cx.size() * sizeof(float)) && labels,
				"render_at (evaluation batch) vs cifar_eval_batch", (double)first, valid);
		}
		cifar_loader_free(&ld);
	}

	/* the end of a step against exec_finish_step: dynamic loss scaling, interval 3 */
	PlanStep steps[2] = {};
	steps[0].op = OP_loss_scale;
	steps[0].attr[nnc_attr_index(OP_loss_scale, "dynamic")].i[0] = 1;
	steps[0].attr[nnc_attr_index(OP_loss_scale, "interval")].i[0] = 3;
	steps[0].attr[nnc_attr_index(OP_loss_scale, "growth")].f = 2.0;
	steps[0].attr[nnc_attr_index(OP_loss_scale, "backoff")].f = 0.5;
	steps[1].op = OP_sgd_update;
	PlanProgram prog = {steps, 2, -1, -1};
	Exec ex;
	memset(&ex, 0, sizeof ex);
	ex.loss_scale = 65536;
	DevRun r = {};
	r.s.loss_scale = 65536;
	r.scaled = 1, r.updated = 1, r.interval = 3, r.growth = 2.0, r.backoff = 0.5;
	r.nonfinite_at = -1;
	r.rng_per_run = 11;
	enum { NB = NTR / B, STEPS = 40 };
	double lr[STEPS];
	for (int i = 0; i < STEPS; i++)
		lr[i] = 0.1 * (i + 1);
	r.nlr = STEPS;
	r.s.lr = lr[0];
	const float losses[] = {2.5f, 1.0f, NAN, 0.75f};
	double loss_sum = 0;
	for (int i = 0; i < STEPS; i++) {
		bool skip = i % 7 == 3 || i % 11 == 5;
		r.s.bad = skip;
		float loss = losses[i % 4];
		end_step_scalars(&r, loss, i, B, NTR, lr);
		exec_finish_step(&ex, &prog, skip);
		loss_sum += loss * B; /* nnrun's sum: float product, double sum */
		check(r.s.loss_scale == ex.loss_scale && r.s.step == ex.step && r.clean_steps == ex.clean_steps &&
				r.skipped_steps == ex.skipped_steps && r.s.bad == 0,
			"end_step_scalars vs exec_finish_step", r.s.loss_scale, ex.loss_scale);
		long long g = (long long)r.epoch * NB + (long long)(r.position / B);
		check(r.gstep == i + 1 && g == r.gstep && r.s.lr == lr[g < STEPS ? g : STEPS - 1],
			"end_step_scalars: next step's index and learning rate", (double)r.gstep, (double)g);
	}
	check(r.nonfinite_at == 2 && std::isnan(r.nonfinite_loss) && std::isnan(r.loss_sum) && std::isnan(loss_sum) &&
			r.seen == (long long)STEPS * B && r.correct == STEPS * (STEPS - 1) / 2 &&
			r.s.rng_counter == 11ull * STEPS,
		"end_step_scalars sums", (double)r.nonfinite_at, 2);

	/* argmax: ties (first maximum wins), NaN, negative rows */
	enum { ROWS = 64, K = 10 };
	std::vector<float> logits(ROWS * K);
	std::vector<int32_t> labels(ROWS);
	for (int i = 0; i < ROWS * K; i++)
		logits[i] = (float)((int)(next_u32() % 5) - 3);
	logits[5] = NAN;
	logits[K + 2] = NAN, logits[K] = NAN;
	long long correct = 0;
	for (int rr = 0; rr < ROWS; rr++) {
		labels[rr] = (int32_t)(next_u32() % K);
		correct += row_argmax(Buf{logits.data(), false}, rr, K) == labels[rr];
	}
	check(correct == cpu_count_correct_f32(logits.data(), labels.data(), ROWS, K), "row_argmax vs cpu_count_correct",
		(double)correct, (double)cpu_count_correct_f32(logits.data(), labels.data(), ROWS, K));
}

/* k_bn_stats's partition and combination, run block by block on the host (sums in sequence
 * instead of the device's tree), against cpu_batchnorm_stats: within 1e-6 relative. */
static void
split_stats_checks(void)
{
	struct {
		int n, c, hw;
	} shapes[] = {{128, 16, 1024}, {8, 3, 5}, {32, 64, 64}, {7, 1280, 1}, {2, 1, 1}, {128, 512, 16}};
	for (auto sh : shapes) {
		std::vector<float> x((size_t)sh.n * sh.c * sh.hw);
		for (auto &v : x)
			v = (float)(next_u32() % 2001) / 1000.0f - 0.3f + (float)(next_u32() % 3) * 100.0f;
		std::vector<float> mean(sh.c), inv(sh.c), var(sh.c);
		cpu_batchnorm_stats_f32(x.data(), sh.n, sh.c, sh.hw, 1e-5, mean.data(), inv.data(), var.data());
		int S = bn_splits(sh.n, sh.c, sh.hw);
		check(S >= 1 && S <= BN_MAX_SPLIT && S <= sh.n, "bn_splits in range", S, sh.n);
		double worst = 0;
		for (int ch = 0; ch < sh.c; ch++) {
			std::vector<double> part(3 * S);
			for (int s = 0; s < S; s++) {
				int i0, i1;
				split_range(sh.n, S, s, &i0, &i1);
				int cnt = (i1 - i0) * sh.hw;
				double sum = 0, q = 0;
				for (int e = 0; e < cnt; e++)
					sum += x[at(i0 + e / sh.hw, ch, e % sh.hw, sh.c, sh.hw)];
				double m = cnt ? sum / cnt : 0;
				for (int e = 0; e < cnt; e++) {
					double d = x[at(i0 + e / sh.hw, ch, e % sh.hw, sh.c, sh.hw)] - m;
					q += d * d;
				}
				part[3 * s] = cnt, part[3 * s + 1] = m, part[3 * s + 2] = q;
			}
			double count, m, ss;
			chan_combine(part.data(), S, &count, &m, &ss);
			double v = ss / (count - 1);
			check(count == (double)sh.n * sh.hw, "split ranges cover the channel once", count, (double)sh.n * sh.hw);
			double em = std::fabs(m - mean[ch]) / (std::fabs(mean[ch]) + 1e-3);
			double ev = std::fabs(v - var[ch]) / (std::fabs(var[ch]) + 1e-6);
			worst = std::fmax(worst, std::fmax(em, ev));
		}
		check(worst < 1e-6, "split batch-norm statistics vs cpu_batchnorm_stats", worst, 1e-6);
		/* the running statistics' update k_bn_stats does as it finishes (bn_update_at) */
		std::vector<float> stats(3 * sh.c), rm(sh.c), rv(sh.c);
		for (int ch = 0; ch < sh.c; ch++) {
			stats[ch] = mean[ch], stats[sh.c + ch] = inv[ch], stats[2 * sh.c + ch] = var[ch];
			rm[ch] = (float)(next_u32() % 1000) / 999.0f, rv[ch] = 1.0f + (float)(next_u32() % 1000) / 500.0f;
		}
		std::vector<float> grm = rm, grv = rv;
		cpu_batchnorm_update_running_f32(sh.c, 0.1, mean.data(), var.data(), rm.data(), rv.data());
		for (int ch = 0; ch < sh.c; ch++)
			bn_update_at(Buf{grm.data(), false}, Buf{grv.data(), false}, Buf{stats.data(), false}, sh.c, 0.1, ch);
		check(rm == grm && rv == grv, "bn_update_at vs cpu_batchnorm_update_running", sh.c, 0);
	}
}

/* The optimizer bodies (sgd_at, adam_at with the scalars of sgd_now, adam_now) against
 * cpu_sgd_step and cpu_adam_step, bit for bit over three steps, and the multi-tensor chunk
 * lookup (mt_locate) against a scan. */
static void
optimizer_checks(void)
{
	enum { N = 777 };
	std::vector<float> p0(N), g(N);
	for (int i = 0; i < N; i++) {
		p0[i] = (float)(next_u32() % 2001) / 1000.0f - 1.0f;
		g[i] = (float)(next_u32() % 2001) / 3000.0f - 0.33f;
	}
	for (int variant = 0; variant < 8; variant++) {
		/* with lr_scale (core/ops.h) as runtime/exec.c's k_sgd_update forms it */
		bool nesterov = variant & 1, decay = variant & 2;
		double scale = variant & 4 ? 64 : 1;
		CpuSgd c = {0.1 * scale, 0.9, decay ? 5e-4 / scale : 0.0, nesterov};
		SgdConf sc = {0.9, decay ? 5e-4 / scale : 0.0, nesterov, scale, false, 0, 0};
		std::vector<float> pc = p0, bc(N), pg = p0, bg(N);
		for (long t = 0; t < 3; t++) {
			cpu_sgd_step_f32(&c, t + 1, pc.data(), g.data(), bc.data(), N);
			StepScalars s = {0.1, 1.0, t, 0, 0, 0};
			Sgd o = sgd_now(sc, s);
			for (long long i = 0; i < N; i++)
				sgd_at(o, false, 1.0f, Buf{pg.data(), false}, Buf{g.data(), false}, Buf{bg.data(), false}, i);
		}
		check(!memcmp(pc.data(), pg.data(), N * sizeof(float)) && !memcmp(bc.data(), bg.data(), N * sizeof(float)),
			"sgd_at vs cpu_sgd_step", variant, 0);
	}
	for (int decoupled = 0; decoupled < 2; decoupled++) {
		CpuAdam c = {1e-3, 0.9, 0.999, 1e-8, 0.01, decoupled != 0};
		AdamConf ac = {0.9, 0.999, 1e-8, 0.01, decoupled != 0, false, 0, 0};
		std::vector<float> pc = p0, mc(N), vc(N), pg = p0, mg(N), vg(N);
		for (long t = 0; t < 3; t++) {
			cpu_adam_step_f32(&c, t + 1, pc.data(), g.data(), mc.data(), vc.data(), N);
			StepScalars s = {1e-3, 1.0, t, 0, 0, 0};
			Adam o = adam_now(ac, s);
			for (long long i = 0; i < N; i++)
				adam_at(o, false, 1.0f, Buf{pg.data(), false}, Buf{g.data(), false}, Buf{mg.data(), false},
					Buf{vg.data(), false}, i);
		}
		check(!memcmp(pc.data(), pg.data(), N * sizeof(float)) && !memcmp(mc.data(), mg.data(), N * sizeof(float)) &&
				!memcmp(vc.data(), vg.data(), N * sizeof(float)),
			"adam_at vs cpu_adam_step", decoupled, 0);
	}
	/* stochastic rounding of fp16 parameters (optimizer.rounding): sgd_at and adam_at store
	 * exactly what the CPU does -- its f32 step, then nnc_round_stochastic_f16 with the draw
	 * for (seed, updates done, plan value, element) (runtime/exec.c: round_update) */
	for (int adam = 0; adam < 2; adam++) {
		std::vector<float> pc = p0, bc(N), mc(N), vc(N), bg(N), mg(N), vg(N);
		std::vector<__half> pg(N);
		for (int i = 0; i < N; i++) {
			pc[i] = half_to_float(half_from_float(p0[i]));
			pg[i] = __float2half_rn(pc[i]);
		}
		CpuSgd c = {0.1, 0.9, 5e-4, false};
		CpuAdam ca = {1e-3, 0.9, 0.999, 1e-8, 0.01, false};
		SgdConf sc = {0.9, 5e-4, false, 1, true, 12345, 7};
		AdamConf ac = {0.9, 0.999, 1e-8, 0.01, false, true, 12345, 7};
		bool differs = false;
		for (long t = 0; t < 3; t++) {
			std::vector<float> before = pc;
			if (adam)
				cpu_adam_step_f32(&ca, t + 1, pc.data(), g.data(), mc.data(), vc.data(), N);
			else
				cpu_sgd_step_f32(&c, t + 1, pc.data(), g.data(), bc.data(), N);
			uint64_t key = nnc_sround_key(12345, (uint64_t)t, 7);
			for (int i = 0; i < N; i++) {
				float nearest = half_to_float(half_from_float(pc[i]));
				pc[i] = half_to_float(half_from_float(nnc_round_stochastic_f16(pc[i], nnc_sround_bits(key, (uint64_t)i))));
				differs |= pc[i] != nearest;
			}
			StepScalars s = {adam ? 1e-3 : 0.1, 1.0, t, 0, 0, 0};
			for (long long i = 0; i < N; i++) {
				if (adam)
					adam_at(adam_now(ac, s), false, 1.0f, Buf{pg.data(), true}, Buf{g.data(), false}, Buf{mg.data(), false},
						Buf{vg.data(), false}, i);
				else
					sgd_at(sgd_now(sc, s), false, 1.0f, Buf{pg.data(), true}, Buf{g.data(), false}, Buf{bg.data(), false}, i);
			}
		}
		bool same = true;
		for (int i = 0; i < N; i++)
			same &= __half2float(pg[i]) == pc[i];
		check(same && differs, adam ? "adam_at stochastic rounding vs the CPU's" : "sgd_at stochastic rounding vs the CPU's",
			adam, 0);
	}
	const long long sizes[] = {1, MT_CHUNK, MT_CHUNK + 1, 3, 5 * MT_CHUNK, 17, 2 * MT_CHUNK - 1};
	std::vector<MtTensor> t(sizeof sizes / sizeof sizes[0]);
	long long chunks = 0;
	for (size_t k = 0; k < t.size(); k++) {
		t[k].n = sizes[k];
		t[k].chunk0 = chunks;
		chunks += (sizes[k] + MT_CHUNK - 1) / MT_CHUNK;
	}
	bool ok = true;
	for (long long ch = 0; ch < chunks; ch++) {
		int want = 0;
		while (want + 1 < (int)t.size() && t[want + 1].chunk0 <= ch)
			want++;
		ok &= mt_locate(t.data(), (int)t.size(), ch) == want;
	}
	check(ok, "mt_locate vs a scan", (double)chunks, 0);
}

/* The direct convolutions (cuDNN's fallback) against the CPU's convolutions: within 1e-5 of
 * the largest magnitude (the CPU sums in float through GEMMs, these in double). */
/* fp16 overflow in a convolution (issue 13's ResNet-110 evaluation): a result whose exact value
 * is beyond fp16's range must come out +-inf, as IEEE rounding gives (|x| >= 65520 rounds to
 * inf), from the CPU's path (an f32 convolution, rounded as stored) and from nnc's direct
 * kernel; -65504, the largest finite fp16, stays finite. test_cuda_vs_cpu relies on this when
 * it judges cuDNN's finite results there against the exact value. */
static void
fp16_overflow_checks(void)
{
	const float second[] = {25504.0f, 25520.0f, 25824.0f}; /* 40000 + these, times -1 */
	const bool inf[] = {false, true, true};
	for (int k = 0; k < 3; k++) {
		CpuConv v = {1, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, false};
		check(cpu_conv_setup(&v) == 0, "cpu_conv_setup for the overflow check", 0, 0);
		float x[2] = {40000.0f, second[k]}, w[2] = {-1.0f, -1.0f}, y = 0;
		std::vector<unsigned char> work(cpu_conv2d_workspace_f32(&v, CPU_CONV_FORWARD, 1) + 64);
		check(cpu_conv2d_forward_f32(&v, x, w, nullptr, &y, work.data(), work.size()) == 0, "the CPU convolution ran", 0, 0);
		float cpu = half_to_float(half_from_float(y));
		__half hx[2] = {__float2half_rn(x[0]), __float2half_rn(x[1])}, hw[2] = {__float2half_rn(-1.0f), __float2half_rn(-1.0f)},
		       hy;
		conv_fwd_at(v, Buf{hx, true}, Buf{hw, true}, Buf{&hy, true}, 0);
		float dev = __half2float(hy);
		char what[96];
		snprintf(what, sizeof what, "fp16 convolution of exact value %.0f: %s", -40000.0 - second[k],
			inf[k] ? "-inf on the CPU and in conv_fwd_at" : "finite on the CPU and in conv_fwd_at");
		check(inf[k] ? (std::isinf(cpu) && cpu < 0 && std::isinf(dev) && dev < 0) : (cpu == -65504.0f && dev == -65504.0f),
			what, cpu, dev);
	}
}

/* [n][c][hw] -> [n][hw][c] */
static std::vector<float>
to_nhwc(const std::vector<float> &x, int n, int c, int hw)
{
	std::vector<float> y(x.size());
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < c; ch++)
			for (int e = 0; e < hw; e++)
				y[((size_t)i * hw + e) * c + ch] = x[((size_t)i * c + ch) * hw + e];
	return y;
}

/* OIHW [k][cg][kh*kw] -> OHWI [k][kh*kw][cg] */
static std::vector<float>
to_ohwi(const std::vector<float> &w, int k, int cg, int khw)
{
	return to_nhwc(w, k, cg, khw);
}

/* The three direct-convolution bodies over whole tensors: y, dx and dw from x, w and dy. */
static void
direct_all(const CpuConv &v, std::vector<float> &x, std::vector<float> &w, std::vector<float> &dy,
	std::vector<float> &y, std::vector<float> &dx, std::vector<float> &dw)
{
	for (long long i = 0; i < (long long)y.size(); i++)
		conv_fwd_at(v, Buf{x.data(), false}, Buf{w.data(), false}, Buf{y.data(), false}, i);
	for (long long i = 0; i < (long long)dx.size(); i++)
		conv_bwd_data_at(v, Buf{dy.data(), false}, Buf{w.data(), false}, Buf{dx.data(), false}, i);
	for (long long i = 0; i < (long long)dw.size(); i++)
		conv_bwd_filter_at(v, Buf{x.data(), false}, Buf{dy.data(), false}, Buf{dw.data(), false}, i);
}

static void
direct_conv_checks(void)
{
	CpuConv shapes[] = {
		{2, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1, 1, 0, 0, false},  /* 3x3, padding 1 */
		{2, 4, 8, 8, 6, 3, 3, 2, 2, 1, 1, 2, 0, 0, false},  /* stride 2, 2 groups */
		{3, 6, 7, 7, 6, 3, 3, 1, 1, 1, 1, 6, 0, 0, false},  /* depthwise */
		{2, 5, 6, 6, 3, 1, 1, 1, 1, 0, 0, 1, 0, 0, false},  /* 1x1 */
		{1, 3, 10, 11, 2, 2, 3, 3, 2, 0, 1, 1, 0, 0, false}, /* uneven kernel, strides and padding */
	};
	for (CpuConv v : shapes) {
		if (cpu_conv_setup(&v) != 0) {
			check(false, "cpu_conv_setup rejected a test shape", v.k, v.c);
			continue;
		}
		size_t nx = (size_t)v.n * v.c * v.h * v.w, nw = (size_t)v.k * (v.c / v.groups) * v.kh * v.kw;
		size_t ny = (size_t)v.n * v.k * v.oh * v.ow;
		std::vector<float> x(nx), w(nw), dy(ny), y(ny), dx(nx), dw(nw), gy(ny), gdx(nx), gdw(nw);
		for (auto *t : {&x, &w, &dy})
			for (auto &e : *t)
				e = (float)(next_u32() % 2001) / 1000.0f - 1.0f;
		size_t ws = 0;
		for (CpuConvPass pass : {CPU_CONV_FORWARD, CPU_CONV_BACKWARD_DATA, CPU_CONV_BACKWARD_FILTER})
			ws = std::max(ws, cpu_conv2d_workspace_f32(&v, pass, 1));
		std::vector<unsigned char> work(ws + 64);
		bool ok = cpu_conv2d_forward_f32(&v, x.data(), w.data(), nullptr, y.data(), work.data(), work.size()) == 0 &&
		          cpu_conv2d_backward_data_f32(&v, dy.data(), w.data(), dx.data(), work.data(), work.size()) == 0 &&
		          cpu_conv2d_backward_filter_f32(&v, x.data(), dy.data(), dw.data(), work.data(), work.size()) == 0;
		check(ok, "the CPU convolutions ran", v.k, v.c);
		direct_all(v, x, w, dy, gy, gdx, gdw);
		const char *what[] = {"conv_fwd_at vs cpu_conv2d_forward", "conv_bwd_data_at vs cpu_conv2d_backward_data",
			"conv_bwd_filter_at vs cpu_conv2d_backward_filter"};
		const std::vector<float> *cpu[] = {&y, &dx, &dw}, *gpu[] = {&gy, &gdx, &gdw};
		for (int k = 0; k < 3; k++) {
			double worst = 0, big = 1e-30;
			for (size_t i = 0; i < cpu[k]->size(); i++) {
				worst = std::fmax(worst, std::fabs((double)(*cpu[k])[i] - (*gpu[k])[i]));
				big = std::fmax(big, std::fabs((double)(*cpu[k])[i]));
			}
			check(worst <= 1e-5 * big, what[k], worst / big, 1e-5);
		}
		/* channels-last (NHWC activations, OHWI filters): the same sums, transposed */
		CpuConv c = v;
		c.nhwc = true;
		std::vector<float> xt = to_nhwc(x, v.n, v.c, v.h * v.w), wt = to_ohwi(w, v.k, v.c / v.groups, v.kh * v.kw);
		std::vector<float> dyt = to_nhwc(dy, v.n, v.k, v.oh * v.ow), ty(ny), tdx(nx), tdw(nw);
		direct_all(c, xt, wt, dyt, ty, tdx, tdw);
		check(ty == to_nhwc(gy, v.n, v.k, v.oh * v.ow), "conv_fwd_at nhwc", v.k, v.c);
		check(tdx == to_nhwc(gdx, v.n, v.c, v.h * v.w), "conv_bwd_data_at nhwc", v.k, v.c);
		check(tdw == to_ohwi(gdw, v.k, v.c / v.groups, v.kh * v.kw), "conv_bwd_filter_at nhwc", v.k, v.c);
	}
}

static void
rand_fill(std::vector<float> &v, float lo, float hi)
{
	for (auto &e : v)
		e = lo + (hi - lo) * (float)(next_u32() % 100001) / 100000.0f;
}

/* The largest |a - b| over the largest |b|. */
static double
rel_err(const std::vector<float> &a, const std::vector<float> &b)
{
	double worst = 0, big = 1e-30;
	for (size_t i = 0; i < b.size(); i++) {
		worst = std::fmax(worst, std::fabs((double)a[i] - b[i]));
		big = std::fmax(big, std::fabs((double)b[i]));
	}
	return worst / big;
}

/* The rest of the kernels' bodies against their CPU twins: softmax and the loss forward and
 * backward (rows summed in order here, as the CPU does; the device adds them in a tree), global
 * average pooling, batch-norm folding, and the batch-norm backward as the device splits it
 * (each block's sums, then the channel's finish and dx), with and without a relu prologue and
 * as a bias gradient. */
static void
row_and_channel_checks(void)
{
	enum { N = 37, K = 10 };
	std::vector<float> x(N * K), dy(N * K), yc(N * K), yg(N * K), dxc(N * K), dxg(N * K);
	rand_fill(x, -6, 6);
	rand_fill(dy, -1, 1);
	std::vector<int32_t> lab(N);
	for (auto &l : lab)
		l = (int32_t)(next_u32() % K);
	Buf bx = {x.data(), false}, bdy = {dy.data(), false};
	cpu_softmax_forward_f32(x.data(), N, K, yc.data());
	for (long long r = 0; r < N; r++)
		softmax_row_at(bx, K, Buf{yg.data(), false}, r);
	check(yc == yg, "softmax_row_at vs cpu_softmax_forward", rel_err(yg, yc), 0);
	cpu_softmax_backward_f32(yc.data(), dy.data(), N, K, dxc.data());
	for (long long r = 0; r < N; r++)
		softmax_bwd_row_at(Buf{yc.data(), false}, bdy, K, Buf{dxg.data(), false}, r);
	check(dxc == dxg, "softmax_bwd_row_at vs cpu_softmax_backward", rel_err(dxg, dxc), 0);
	for (double eps : {0.0, 0.1}) {
		float lc = 0;
		cpu_softmax_xent_forward_f32(x.data(), lab.data(), N, K, eps, &lc);
		double total = 0;
		for (long long r = 0; r < N; r++)
			total += xent_row(bx, lab.data(), K, eps, r);
		float lg = (float)(total / N);
		check(std::fabs(lg - lc) <= 1e-6f * std::fabs(lc), "xent_row vs cpu_softmax_xent_forward", lg, lc);
		cpu_softmax_xent_backward_f32(x.data(), lab.data(), N, K, eps, 2.0, dxc.data());
		for (long long r = 0; r < N; r++)
			xent_bwd_row_at(bx, lab.data(), K, eps, 2.0 / N, Buf{dxg.data(), false}, r);
		check(rel_err(dxg, dxc) <= 1e-6, "xent_bwd_row_at vs cpu_softmax_xent_backward", rel_err(dxg, dxc), 1e-6);
	}

	enum { GN = 3, GC = 5, GHW = 49 };
	std::vector<float> gx(GN * GC * GHW), gyc(GN * GC), gyg(GN * GC), gdxc(gx.size()), gdxg(gx.size());
	rand_fill(gx, -3, 3);
	cpu_global_avgpool_forward_f32(gx.data(), GN, GC, GHW, gyc.data());
	for (long long pl = 0; pl < GN * GC; pl++)
		gap_fwd_at(Buf{gx.data(), false}, GHW, Buf{gyg.data(), false}, pl);
	check(rel_err(gyg, gyc) <= 1e-6, "gap_fwd_at vs cpu_global_avgpool_forward", rel_err(gyg, gyc), 1e-6);
	cpu_global_avgpool_backward_f32(gyc.data(), GN, GC, GHW, gdxc.data());
	for (long long i = 0; i < (long long)gx.size(); i++)
		gap_bwd_at(Buf{gyc.data(), false}, GHW, Buf{gdxg.data(), false}, i);
	check(gdxc == gdxg, "gap_bwd_at vs cpu_global_avgpool_backward", rel_err(gdxg, gdxc), 0);

	enum { FO = 6, FP = 27 };
	std::vector<float> fw(FO * FP), fm(FO), fv(FO), fs(FO), fb(FO), fbias(FO), wfc(fw.size()), wfg(fw.size()), bfc(FO),
		bfg(FO);
	rand_fill(fw, -1, 1), rand_fill(fm, -1, 1), rand_fill(fv, 0.1f, 3), rand_fill(fs, 0.5f, 2), rand_fill(fb, -1, 1);
	rand_fill(fbias, -1, 1);
	cpu_batchnorm_fold_weight_f32(fw.data(), FO, FP, fv.data(), 1e-5, fs.data(), wfc.data());
	for (long long i = 0; i < (long long)fw.size(); i++)
		bn_fold_weight_at(Buf{fw.data(), false}, FP, Buf{fv.data(), false}, 1e-5, Buf{fs.data(), false},
			Buf{wfg.data(), false}, i);
	check(wfc == wfg, "bn_fold_weight_at vs cpu_batchnorm_fold_weight", rel_err(wfg, wfc), 0);
	cpu_batchnorm_fold_bias_f32(FO, fm.data(), fv.data(), 1e-5, fs.data(), fb.data(), fbias.data(), bfc.data());
	for (long long o = 0; o < FO; o++)
		bn_fold_bias_at(Buf{fm.data(), false}, Buf{fv.data(), false}, 1e-5, Buf{fs.data(), false},
			Buf{fb.data(), false}, Buf{fbias.data(), false}, Buf{bfg.data(), false}, o);
	check(bfc == bfg, "bn_fold_bias_at vs cpu_batchnorm_fold_bias", rel_err(bfg, bfc), 0);

	enum { BN = 16, BC = 6, BHW = 64 };
	size_t total = (size_t)BN * BC * BHW;
	std::vector<float> bx2(total), bdz(total), bact(total), bw(BC), st(3 * BC);
	rand_fill(bx2, -2, 3), rand_fill(bdz, -1, 1), rand_fill(bact, -1, 7), rand_fill(bw, 0.5f, 1.5f);
	cpu_batchnorm_stats_f32(bx2.data(), BN, BC, BHW, 1e-5, st.data(), st.data() + BC, st.data() + 2 * BC);
	for (int pro : {0, 1, 2}) {
		for (int bias_only = 0; bias_only < 2; bias_only++) {
			std::vector<float> dxc(total), dwc(BC), dbc(BC), dxg(total), dwg(BC), dbg(BC), coef(3 * BC);
			Buf bxx = bias_only ? Buf{nullptr, false} : Buf{bx2.data(), false};
			if (bias_only)
				cpu_bias_backward_pro_f32(bdz.data(), pro ? bact.data() : nullptr, (Epilogue)pro, BN, BC, BHW, dbc.data());
			else
				cpu_batchnorm_backward_data_pro_f32(bdz.data(), pro ? bact.data() : nullptr, (Epilogue)pro, bx2.data(), BN, BC,
					BHW, st.data(), st.data() + BC, bw.data(), dxc.data(), dwc.data(), dbc.data());
			int S = bn_splits(BN, BC, BHW);
			for (int ch = 0; ch < BC; ch++) {
				double sdy = 0, sdyx = 0;
				for (int b = 0; b < S; b++) {
					int i0, i1;
					split_range(BN, S, b, &i0, &i1);
					double py = 0, pyx = 0;
					bn_bwd_partial(Buf{bdz.data(), false}, Buf{bact.data(), false}, (Epilogue)pro, bxx, Buf{st.data(), false}, BC, BHW,
						ch, i0, (i1 - i0) * BHW, 0, 1, &py, &pyx);
					sdy += py, sdyx += pyx;
				}
				bn_bwd_finish(sdy, sdyx, !bias_only, Buf{st.data(), false}, Buf{bw.data(), false},
					bias_only ? Buf{nullptr, false} : Buf{dwg.data(), false}, Buf{dbg.data(), false}, coef.data(), BN, BC,
					BHW, ch);
			}
			check(rel_err(dbg, dbc) <= 1e-6, "bn backward db vs the CPU's", rel_err(dbg, dbc), pro * 10 + bias_only);
			if (bias_only)
				continue;
			for (long long i = 0; i < (long long)total; i++)
				bn_bwd_dx_at(Buf{bdz.data(), false}, Buf{bact.data(), false}, (Epilogue)pro, bxx, Buf{st.data(), false}, coef.data(),
					Buf{dxg.data(), false}, BC, BHW, i);
			check(rel_err(dwg, dwc) <= 1e-6 && rel_err(dxg, dxc) <= 1e-5, "bn backward dw, dx vs the CPU's",
				rel_err(dxg, dxc), pro);
		}
	}
}

int
main(void)
{
	resident_checks();
	row_and_channel_checks();
	direct_conv_checks();
	fp16_overflow_checks();
	optimizer_checks();
	split_stats_checks();
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
	for (int k = 0; k < NEW; k++) { /* one formula (runtime/ew.h), two math libraries' calls */
		Elementwise op = (Elementwise)k;
		cpu_ew_range_f32(op, a, b, cpu, 0, N);
		for (int i = 0; i < N; i++) {
			char what[64];
			snprintf(what, sizeof what, "ew1 op %d at %g, %g", k, a[i], b[i]);
			check(same_bits(ew1(op, a[i], b[i]), cpu[i]), what, ew1(op, a[i], b[i]), cpu[i]);
		}
	}
	for (int pro = 1; pro <= 2; pro++) {
		(pro == 1 ? cpu_relu_backward_f32 : cpu_relu6_backward_f32)(a, b, cpu, N);
		for (int i = 0; i < N; i++)
			check(same_bits(act_grad(b[i], a[i], (Epilogue)pro), cpu[i]), "act_grad vs relu(6)_backward", act_grad(b[i], a[i], (Epilogue)pro),
				cpu[i]);
		memcpy(cpu, a, sizeof cpu);
		cpu_act_f32(cpu, N, (Epilogue)pro);
		for (int i = 0; i < N; i++)
			check(same_bits(act(a[i], (Epilogue)pro), cpu[i]), "act vs cpu_act", act(a[i], (Epilogue)pro), cpu[i]);
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
		CpuPool cp = {2, 3, 7, 6, g[0], g[1], g[2], g[3], g[4], g[5], 0, 0, false};
		if (cpu_pool_setup(&cp) != 0) {
			check(false, "cpu_pool_setup", 0, 0);
			continue;
		}
		Pool p = {cp.n, cp.c, cp.h, cp.w, cp.kh, cp.kw, cp.sh, cp.sw, cp.ph, cp.pw, cp.oh, cp.ow, false};
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
			/* channels-last: the same results, transposed */
			Pool q = p;
			q.nhwc = true;
			std::vector<float> xt = to_nhwc(x, cp.n, cp.c, cp.h * cp.w), dyt = to_nhwc(dy, cp.n, cp.c, cp.oh * cp.ow);
			std::vector<float> yt(nout), dxt(nin);
			Buf btx = {xt.data(), false}, btdy = {dyt.data(), false}, bty = {yt.data(), false}, btdx = {dxt.data(), false};
			for (size_t i = 0; i < nout; i++)
				kind ? avgpool_fwd_at(q, btx, bty, (long long)i) : maxpool_fwd_at(q, btx, bty, (long long)i);
			check(yt == to_nhwc(yc, cp.n, cp.c, cp.oh * cp.ow), kind ? "avgpool nhwc" : "maxpool nhwc", 0, 0);
			for (size_t i = 0; i < nin; i++)
				kind ? avgpool_bwd_at(q, btdy, btdx, (long long)i) : maxpool_bwd_at(q, btx, btdy, btdx, (long long)i);
			check(dxt == to_nhwc(dxc, cp.n, cp.c, cp.h * cp.w), kind ? "avgpool_bwd nhwc" : "maxpool_bwd nhwc", 0, 0);
		}
	}
	/* maxpool backward one window at a time (pool_tiles: 2x2 stride 2 over 8x6, 3x3 over 6x6),
	 * ties and a NaN included, both layouts, against the CPU's */
	static const int tiles[][3] = {{2, 8, 6}, {3, 6, 6}};
	for (const auto &g : tiles)
		for (int cl = 0; cl < 2; cl++) {
			CpuPool cp = {2, 3, g[1], g[2], g[0], g[0], g[0], g[0], 0, 0, 0, 0, false};
			if (cpu_pool_setup(&cp) != 0) {
				check(false, "cpu_pool_setup", 0, 0);
				continue;
			}
			Pool p = {cp.n, cp.c, cp.h, cp.w, cp.kh, cp.kw, cp.sh, cp.sw, cp.ph, cp.pw, cp.oh, cp.ow, cl == 1};
			check(pool_tiles(p), "pool_tiles", 0, 0);
			size_t nin = (size_t)cp.n * cp.c * cp.h * cp.w, nout = (size_t)cp.n * cp.c * cp.oh * cp.ow;
			std::vector<float> x(nin), dy(nout), dxc(nin), dxg(nin, 99.0f);
			for (size_t i = 0; i < nin; i++)
				x[i] = (float)((i * 7 + 3) % 4);
			x[5] = NAN;
			for (size_t i = 0; i < nout; i++)
				dy[i] = (float)((int)(i % 9) - 4) * 0.25f;
			cpu_maxpool2d_backward_f32(&cp, x.data(), dy.data(), dxc.data());
			if (cl) {
				x = to_nhwc(x, cp.n, cp.c, cp.h * cp.w);
				dy = to_nhwc(dy, cp.n, cp.c, cp.oh * cp.ow);
				dxc = to_nhwc(dxc, cp.n, cp.c, cp.h * cp.w);
			}
			for (size_t i = 0; i < nout; i++)
				maxpool_bwd_tile_at(p, Buf{x.data(), false}, Buf{dy.data(), false}, Buf{dxg.data(), false}, (long long)i);
			check(memcmp(dxc.data(), dxg.data(), nin * sizeof(float)) == 0, cl ? "maxpool_bwd_tile nhwc" : "maxpool_bwd_tile",
				0, 0);
		}
	{ /* not tiling: overlapping windows, padding, a remainder row */
		Pool a = {1, 1, 7, 6, 2, 2, 2, 2, 0, 0, 3, 3, false}, b = {1, 1, 6, 6, 3, 3, 2, 2, 1, 1, 3, 3, false};
		check(!pool_tiles(a) && !pool_tiles(b), "pool_tiles refuses", 0, 0);
	}
	/* the global average pool, relayout and the dropout mask's logical index, channels-last */
	{
		enum { GN = 2, GC = 5, GHW = 6 };
		std::vector<float> x(GN * GC * GHW), y(GN * GC), yt(GN * GC), dy(GN * GC), dx(x.size()), dxt(x.size());
		rand_fill(x, -1, 1);
		rand_fill(dy, -1, 1);
		std::vector<float> xt = to_nhwc(x, GN, GC, GHW);
		for (long long r = 0; r < GN * GC; r++) {
			gap_fwd_at(Buf{x.data(), false}, GHW, Buf{y.data(), false}, r);
			gap_fwd_cl_at(Buf{xt.data(), false}, GC, GHW, Buf{yt.data(), false}, r);
		}
		check(y == yt, "gap_fwd_cl_at vs gap_fwd_at", 0, 0);
		for (long long i = 0; i < (long long)x.size(); i++) {
			gap_bwd_at(Buf{dy.data(), false}, GHW, Buf{dx.data(), false}, i);
			gap_bwd_cl_at(Buf{dy.data(), false}, GC, GHW, Buf{dxt.data(), false}, i);
		}
		check(dxt == to_nhwc(dx, GN, GC, GHW), "gap_bwd_cl_at vs gap_bwd_at", 0, 0);
		std::vector<float> r1(x.size()), r2(x.size());
		for (long long i = 0; i < (long long)x.size(); i++)
			relayout_at(Buf{x.data(), false}, Buf{r1.data(), false}, GC, GHW, i);
		check(r1 == xt, "relayout_at nchw -> nhwc", 0, 0);
		for (long long i = 0; i < (long long)x.size(); i++)
			relayout_at(Buf{r1.data(), false}, Buf{r2.data(), false}, GHW, GC, i);
		check(r2 == x, "relayout_at nhwc -> nchw", 0, 0);
		/* element i of an NHWC tensor is element nchw_index(i) of the NCHW one */
		bool same = true;
		for (long long i = 0; i < (long long)x.size(); i++)
			same &= xt[(size_t)i] == x[(size_t)nchw_index(i, GC, 2, 3)];
		check(same, "nchw_index", 0, 0);
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
		cpu_batchnorm_apply_f32(x, BN, BC, BHW, st, st + BC, w, b, yc, EPI_RELU6);
		for (int i = 0; i < BT; i++)
			bn_apply_at(bx, bs, bw, bb, by, BC, BHW, EPI_RELU6, i);
		check(memcmp(yc, yg, sizeof yc) == 0, "bn_apply+relu6", 0, 0);
		Buf bm = {rm, false}, bv = {rv, false};
		cpu_batchnorm_inference_f32(x, BN, BC, BHW, rm, rv, 1e-3, w, b, yc, EPI_RELU);
		for (int i = 0; i < BT; i++)
			bn_infer_at(bx, bm, bv, 1e-3, bw, bb, by, BC, BHW, EPI_RELU, i);
		check(memcmp(yc, yg, sizeof yc) == 0, "batchnorm inference+relu", 0, 0);
		/* bn_apply then add+relu in one pass, against the two steps it replaces, with the batch
		 * norm's result stored in f32 and in f16 */
		for (int f16 = 0; f16 < 2; f16++) {
			float other[BT], mid[BT], two[BT], one[BT];
			__half midh[BT];
			for (int i = 0; i < BT; i++)
				other[i] = (float)((i * 7 % 13) - 6) * 0.3f;
			Buf bmid = {f16 ? (void *)midh : (void *)mid, f16 != 0}, bo = {other, false};
			for (int i = 0; i < BT; i++)
				bn_apply_at(bx, bs, bw, bb, bmid, BC, BHW, EPI_NONE, i);
			EwProgram ew = {};
			ew.nops = 1;
			ew.op[0] = EW_add, ew.a[0] = 0, ew.b[0] = 1;
			ew.in[0] = bo, ew.in[1] = bmid; /* the add takes the batch norm's result second */
			ew.out = {two, false};
			ew.act = EPI_RELU;
			ew.n = BT;
			for (long long i = 0; i < BT; i++)
				ew_at(ew, i);
			for (int i = 0; i < BT; i++)
				bn_apply_add_at(bx, bs, bw, bb, f16 != 0, bo, Buf{one, false}, BC, BHW, EPI_RELU, i);
			check(memcmp(one, two, sizeof one) == 0, "bn_apply_add vs bn_apply then add+relu", f16, 0);
		}
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
