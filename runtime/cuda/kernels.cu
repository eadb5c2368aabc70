/* The CUDA backend's own kernels (see kernels.cuh). Indexing: a tensor [n, c, hw] is NCHW, so
 * element e of channel ch in image img sits at (img * c + ch) * hw + e. Elementwise kernels use
 * a grid-stride loop, one thread per element. Per-channel reductions (batch norm) split each
 * channel's images over S blocks (bn_splits: enough blocks to fill the GPU even for 16
 * channels): in each, thread t sums elements t, t + blockDim, ... of its range in double and a
 * shared-memory tree adds those in a fixed order; the channel's last block to finish (an
 * arrival counter) combines the S parts in block order, so results repeat bit for bit
 * whatever order the blocks ran in. Per-row kernels (softmax,
 * cross-entropy) use one thread per row of k classes. Pooling backward gathers: one thread per
 * input element adds, in the CPU's scatter order (output windows in row-major order), the
 * gradients of the windows that select it, so no atomics are needed. The formulas follow
 * runtime/cpu/kernels_impl.h line by line, in float where the CPU computes in float (its math
 * functions follow the operand type through <tgmath.h>) and in double where it accumulates in
 * double (Acc); the scalar ones are in kernels_math.cuh, tested against the CPU on the host. */
#include "runtime/cuda/kernels.cuh"

#include <cuda_fp16.h>

#include "runtime/cuda/kernels_math.cuh"

namespace {

#define GRID_LOOP(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

__global__ void
k_ew(EwProgram p)
{
	GRID_LOOP(i, p.n)
		ew_at(p, i);
}

__global__ void
k_scale_copy(Buf x, Buf y, float s, long long n)
{
	GRID_LOOP(i, n)
	st(y, i, s == 1.0f ? ld(x, i) : s * ld(x, i));
}

/* y[(img * c + ch) * hw + e] = act(y + b[ch]) */
__global__ void
k_bias_act(Buf y, Buf b, long long n, int c, int hw, Epilogue a)
{
	GRID_LOOP(i, n)
	bias_act_at(y, b, c, hw, a, i);
}

/* ---- batch norm: per-channel reductions split over blocks (bn_splits) ---- */

__device__ double
block_sum(double v, double *sh)
{
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int w = blockDim.x / 2; w > 0; w /= 2) {
		if (threadIdx.x < w)
			sh[threadIdx.x] += sh[threadIdx.x + w];
		__syncthreads();
	}
	double t = sh[0];
	__syncthreads();
	return t;
}

/* True in every thread of the last block of channel ch's S to get here (its parts written by
 * thread 0 before the fence); that block resets the channel's counter for the next launch. */
__device__ bool
last_of_channel(unsigned *count, int S)
{
	__shared__ bool last;
	__threadfence();
	if (threadIdx.x == 0) {
		last = atomicAdd(count, 1u) == (unsigned)S - 1;
		if (last)
			*count = 0;
	}
	__syncthreads();
	return last;
}

/* Grid (S, c): block (s, ch) takes images split_range(s) of channel ch, element e of its range
 * being image i0 + e / hw, position e % hw. Each block stores (count, mean, M2) of its range
 * (two passes over it, which stay in cache); the channel's last block combines them
 * (chan_combine). */
__global__ void
k_bn_stats(Buf x, int n, int c, int hw, double eps, Buf stats, BnRunning run, BnScratch sc)
{
	__shared__ double sh[THREADS];
	int ch = blockIdx.y, S = gridDim.x, i0, i1;
	split_range(n, S, blockIdx.x, &i0, &i1);
	int cnt = (i1 - i0) * hw;
	double s = 0;
	for (int e = threadIdx.x; e < cnt; e += blockDim.x)
		s += ld(x, at(i0 + e / hw, ch, e % hw, c, hw));
	double m = cnt ? block_sum(s, sh) / cnt : 0;
	double q = 0;
	for (int e = threadIdx.x; e < cnt; e += blockDim.x) {
		double d = ld(x, at(i0 + e / hw, ch, e % hw, c, hw)) - m;
		q += d * d;
	}
	q = block_sum(q, sh);
	double *part = sc.part + (long long)ch * BN_MAX_SPLIT * 3;
	if (threadIdx.x == 0) {
		part[3 * blockIdx.x] = cnt;
		part[3 * blockIdx.x + 1] = m;
		part[3 * blockIdx.x + 2] = q;
	}
	if (!last_of_channel(sc.count + ch, S))
		return;
	for (int i = threadIdx.x; i < 3 * S; i += blockDim.x)
		sh[i] = __ldcg(part + i); /* past L1: other blocks wrote them */
	__syncthreads();
	if (threadIdx.x != 0)
		return;
	double count, mean, ss;
	chan_combine(sh, S, &count, &mean, &ss);
	st(stats, ch, (float)mean);
	st(stats, c + ch, (float)(1 / sqrt(ss / count + eps)));
	st(stats, 2 * c + ch, (float)(ss / (count - 1)));
	if (run.rm.p)
		bn_update_at(run.rm, run.rv, stats, c, run.momentum, ch);
}

__global__ void
k_bn_apply(Buf x, Buf stats, Buf w, Buf b, Buf y, long long total, int c, int hw, Epilogue a)
{
	GRID_LOOP(i, total)
		bn_apply_at(x, stats, w, b, y, c, hw, a, i);
}

__global__ void
k_bn_apply_add(Buf x, Buf stats, Buf w, Buf b, bool mid_f16, Buf other, Buf y, long long total, int c, int hw, Epilogue a)
{
	GRID_LOOP(i, total)
		bn_apply_add_at(x, stats, w, b, mid_f16, other, y, c, hw, a, i);
}

__global__ void
k_bn_infer(Buf x, Buf mean, Buf var, double eps, Buf w, Buf b, Buf y, long long total, int c, int hw, Epilogue a)
{
	GRID_LOOP(i, total)
		bn_infer_at(x, mean, var, eps, w, b, y, c, hw, a, i);
}

__global__ void
k_bn_update(Buf rm, Buf rv, Buf stats, int c, double momentum)
{
	GRID_LOOP(ch, c)
	bn_update_at(rm, rv, stats, c, momentum, ch);
}

/* bn_backward_channels: sums of g and g * (x - mean) over the channel, g = dz through the
 * prologue, split as k_bn_stats; the channel's last block adds the parts in block order, writes
 * dw = sdyx * invstd and db = sdy, and leaves dx's per-channel coefficients in sc.coef. */
__global__ void
k_bn_bwd_sums(Buf dz, Buf act_y, Epilogue pro, Buf x, Buf stats, Buf w, Buf dw, Buf db, int n, int c, int hw, BnScratch sc)
{
	__shared__ double sh[THREADS];
	int ch = blockIdx.y, S = gridDim.x, i0, i1;
	split_range(n, S, blockIdx.x, &i0, &i1);
	int cnt = (i1 - i0) * hw;
	double sdy = 0, sdyx = 0;
	bn_bwd_partial(dz, act_y, pro, x, stats, c, hw, ch, i0, cnt, threadIdx.x, blockDim.x, &sdy, &sdyx);
	sdy = block_sum(sdy, sh);
	sdyx = block_sum(sdyx, sh);
	double *part = sc.part + (long long)ch * BN_MAX_SPLIT * 3;
	if (threadIdx.x == 0) {
		part[3 * blockIdx.x] = sdy;
		part[3 * blockIdx.x + 1] = sdyx;
	}
	if (!last_of_channel(sc.count + ch, S) || threadIdx.x != 0)
		return;
	sdy = sdyx = 0;
	for (int b = 0; b < S; b++) {
		sdy += __ldcg(part + 3 * b);
		sdyx += __ldcg(part + 3 * b + 1);
	}
	bn_bwd_finish(sdy, sdyx, x.p != nullptr, stats, w, dw, db, sc.coef, n, c, hw, ch);
}

/* dx = (g - (x - mean) * proj - gmean) * gain, one thread per element. */
__global__ void
k_bn_bwd_dx(Buf dz, Buf act_y, Epilogue pro, Buf x, Buf stats, Buf dx, long long total, int c, int hw, BnScratch sc)
{
	GRID_LOOP(i, total)
		bn_bwd_dx_at(dz, act_y, pro, x, stats, sc.coef, dx, c, hw, i);
}

__global__ void
k_bn_fold_weight(Buf w, long long total, long long per_out, Buf var, double eps, Buf scale, Buf wf)
{
	GRID_LOOP(i, total)
	bn_fold_weight_at(w, per_out, var, eps, scale, wf, i);
}

__global__ void
k_bn_fold_bias(int out, Buf mean, Buf var, double eps, Buf scale, Buf shift, Buf bias, Buf bf)
{
	GRID_LOOP(o, out)
	bn_fold_bias_at(mean, var, eps, scale, shift, bias, bf, o);
}

/* ---- direct convolution (the fallback): one thread per result element ---- */

__global__ void
k_conv_direct(CpuConv v, int pass, Buf a, Buf b, Buf out, long long total)
{
	GRID_LOOP(i, total)
	{
		if (pass == 0)
			conv_fwd_at(v, a, b, out, i);
		else if (pass == 1)
			conv_bwd_data_at(v, a, b, out, i);
		else
			conv_bwd_filter_at(v, a, b, out, i);
	}
}

/* ---- pooling: plane pl = img * c + ch ---- */

__global__ void
k_maxpool_fwd(Pool p, Buf x, Buf y)
{
	long long total = (long long)p.n * p.c * p.oh * p.ow;
	GRID_LOOP(i, total)
		maxpool_fwd_at(p, x, y, i);
}

__global__ void
k_maxpool_bwd(Pool p, Buf x, Buf dy, Buf dx)
{
	long long total = (long long)p.n * p.c * p.h * p.w;
	GRID_LOOP(i, total)
		maxpool_bwd_at(p, x, dy, dx, i);
}

__global__ void
k_maxpool_bwd_tile(Pool p, Buf x, Buf dy, Buf dx)
{
	long long total = (long long)p.n * p.c * p.oh * p.ow;
	GRID_LOOP(i, total)
		maxpool_bwd_tile_at(p, x, dy, dx, i);
}

__global__ void
k_avgpool_fwd(Pool p, Buf x, Buf y)
{
	long long total = (long long)p.n * p.c * p.oh * p.ow;
	GRID_LOOP(i, total)
		avgpool_fwd_at(p, x, y, i);
}

__global__ void
k_avgpool_bwd(Pool p, Buf dy, Buf dx)
{
	long long total = (long long)p.n * p.c * p.h * p.w;
	GRID_LOOP(i, total)
		avgpool_bwd_at(p, dy, dx, i);
}

__global__ void
k_gap_fwd(Buf x, long long planes, int hw, Buf y)
{
	GRID_LOOP(pl, planes)
	gap_fwd_at(x, hw, y, pl);
}

__global__ void
k_gap_bwd(Buf dy, long long total, int hw, Buf dx)
{
	GRID_LOOP(i, total)
	gap_bwd_at(dy, hw, dx, i);
}

__global__ void
k_gap_fwd_cl(Buf x, long long rows, int c, int hw, Buf y)
{
	GRID_LOOP(r, rows)
	gap_fwd_cl_at(x, c, hw, y, r);
}

__global__ void
k_gap_bwd_cl(Buf dy, long long total, int c, int hw, Buf dx)
{
	GRID_LOOP(i, total)
	gap_bwd_cl_at(dy, c, hw, dx, i);
}

__global__ void
k_relayout(Buf x, Buf y, long long total, int a, int b)
{
	GRID_LOOP(i, total)
	relayout_at(x, y, a, b, i);
}

/* ---- rows ---- */

__global__ void
k_softmax_fwd(Buf x, int n, int k, Buf y)
{
	GRID_LOOP(r, n)
	softmax_row_at(x, k, y, r);
}

__global__ void
k_softmax_bwd(Buf y, Buf dy, int n, int k, Buf dx)
{
	GRID_LOOP(r, n)
	softmax_bwd_row_at(y, dy, k, dx, r);
}

/* One block: thread t takes rows t, t + blockDim, ...; the row terms add up in a fixed tree. */
__global__ void
k_xent_fwd(Buf logits, const int32_t *labels, int n, int k, double eps, Buf loss)
{
	__shared__ double sh[THREADS];
	double total = 0;
	for (int r = threadIdx.x; r < n; r += blockDim.x)
		total += xent_row(logits, labels, k, eps, r);
	total = block_sum(total, sh);
	if (threadIdx.x == 0)
		st(loss, 0, (float)(total / n));
}

__global__ void
k_xent_bwd(Buf logits, const int32_t *labels, int n, int k, double eps, Buf seed, Buf dx)
{
	double scale = (double)ld(seed, 0) / n;
	GRID_LOOP(r, n)
	xent_bwd_row_at(logits, labels, k, eps, scale, dx, r);
}

/* ---- copies along channels ---- */

__global__ void
k_channels_copy(Buf x, int xc, int x0, Buf y, int yc, int y0, int cs, int n, int hw)
{
	long long total = (long long)n * cs * hw;
	GRID_LOOP(i, total)
		channels_copy_at(x, xc, x0, y, yc, y0, cs, hw, i);
}

/* ---- dropout: Philox4x32-10 (runtime/cpu/rng.c) ---- */

__global__ void
k_dropout_mask(uint64_t key, const StepScalars *s, uint64_t offset, uint64_t threshold, float keep, Buf mask,
	long long n, int c, int h, int w)
{
	uint64_t counter = s->rng_counter + offset;
	GRID_LOOP(i, n)
	{
		long long at = c ? nchw_index(i, c, h, w) : i;
		st(mask, i, philox_at(key, counter + (uint64_t)at) >= threshold ? keep : 0.0f);
	}
}

/* ---- optimizer (sgd_range, adam_range); each thread forms the step's scalars from S ---- */

__global__ void
k_sgd(SgdConf c, const StepScalars *s, Buf p, Buf g, Buf buf, long long n, bool unscale)
{
	if (unscale && s->bad)
		return;
	Sgd o = sgd_now(c, *s);
	float inv_scale = (float)(1.0 / s->loss_scale);
	GRID_LOOP(i, n)
	sgd_at(o, unscale, inv_scale, p, g, buf, i);
}

__global__ void
k_adam(AdamConf c, const StepScalars *s, Buf p, Buf g, Buf m, Buf v, long long n, bool unscale)
{
	if (unscale && s->bad)
		return;
	Adam o = adam_now(c, *s);
	float inv_scale = (float)(1.0 / s->loss_scale);
	GRID_LOOP(i, n)
	adam_at(o, unscale, inv_scale, p, g, m, v, i);
}

/* Multi-tensor kernels: block b takes chunks b, b + gridDim, ...; in a chunk, thread t takes
 * elements t, t + blockDim, ... of the chunk's MT_CHUNK. */
#define CHUNK_LOOP(ch, nchunks) for (long long ch = blockIdx.x; ch < (nchunks); ch += gridDim.x)
#define IN_CHUNK(i, m, ch)                                                                              \
	for (long long i = ((ch) - (m).chunk0) * MT_CHUNK + threadIdx.x,                                   \
		       end_ = ((ch) - (m).chunk0 + 1) * MT_CHUNK < (m).n ? ((ch) - (m).chunk0 + 1) * MT_CHUNK : (m).n; \
	     i < end_; i += blockDim.x)

template <Op OP>
__global__ void
k_multi(const MtTensor *t, int T, long long nchunks, StepScalars *s)
{
	float inv_scale = (float)(1.0 / s->loss_scale);
	CHUNK_LOOP(ch, nchunks)
	{
		const MtTensor &m = t[mt_locate(t, T, ch)];
		if (OP == OP_grad_check) {
			IN_CHUNK(i, m, ch)
			if (!isfinite(ld(m.g, i)))
				s->bad = 1; /* every writer writes the same value */
		} else if (OP == OP_cast) {
			IN_CHUNK(i, m, ch)
			st(m.p, i, ld(m.g, i));
		} else if (!(m.unscale && s->bad)) {
			if (OP == OP_sgd_update) {
				Sgd o = sgd_now(m.sgd, *s);
				IN_CHUNK(i, m, ch)
				sgd_at(o, m.unscale, inv_scale, m.p, m.g, m.s1, i);
			} else {
				Adam o = adam_now(m.adam, *s);
				IN_CHUNK(i, m, ch)
				adam_at(o, m.unscale, inv_scale, m.p, m.g, m.s1, m.s2, i);
			}
		}
	}
}

__global__ void
k_grad_check(Buf x, long long n, int *bad)
{
	GRID_LOOP(i, n)
	if (!isfinite(ld(x, i)))
		*bad = 1; /* every writer writes the same value */
}

__global__ void
k_count_nonfinite(Buf x, long long n, unsigned long long *count)
{
	unsigned long long c = 0;
	GRID_LOOP(i, n)
	c += !isfinite(ld(x, i));
	if (c)
		atomicAdd(count, c);
}

__global__ void
k_fill1(Buf y, float v)
{
	if (blockIdx.x == 0 && threadIdx.x == 0)
		st(y, 0, v);
}

__global__ void
k_fill_scale(Buf y, const StepScalars *s)
{
	if (blockIdx.x == 0 && threadIdx.x == 0)
		st(y, 0, (float)s->loss_scale);
}

} // namespace

/* ---- launchers ---- */

cudaError_t
ew_run(const EwProgram &p, cudaStream_t st)
{
	k_ew<<<blocks_for(p.n), THREADS, 0, st>>>(p);
	return cudaGetLastError();
}

cudaError_t
scale_copy(Buf x, Buf y, float s, long long n, cudaStream_t st)
{
	k_scale_copy<<<blocks_for(n), THREADS, 0, st>>>(x, y, s, n);
	return cudaGetLastError();
}

cudaError_t
bias_act(Buf y, Buf b, long long n, int c, int hw, Epilogue a, cudaStream_t st)
{
	k_bias_act<<<blocks_for(n), THREADS, 0, st>>>(y, b, n, c, hw, a);
	return cudaGetLastError();
}

size_t
bn_scratch_bytes(int max_c)
{
	return (size_t)max_c * (BN_MAX_SPLIT * 3 * sizeof(double) + sizeof(unsigned) + 3 * sizeof(float)) + 64;
}

BnScratch
bn_scratch_at(void *mem, int max_c)
{
	BnScratch s;
	s.part = static_cast<double *>(mem);
	s.count = reinterpret_cast<unsigned *>(s.part + (size_t)max_c * BN_MAX_SPLIT * 3);
	s.coef = reinterpret_cast<float *>(s.count + max_c);
	return s;
}

cudaError_t
bn_stats(Buf x, int n, int c, int hw, double eps, Buf stats, BnRunning run, BnScratch sc, cudaStream_t st)
{
	k_bn_stats<<<dim3(bn_splits(n, c, hw), c), THREADS, 0, st>>>(x, n, c, hw, eps, stats, run, sc);
	return cudaGetLastError();
}

cudaError_t
bn_apply(Buf x, Buf stats, Buf w, Buf b, Buf y, int n, int c, int hw, Epilogue a, cudaStream_t st)
{
	long long total = (long long)n * c * hw;
	k_bn_apply<<<blocks_for(total), THREADS, 0, st>>>(x, stats, w, b, y, total, c, hw, a);
	return cudaGetLastError();
}

cudaError_t
bn_apply_add(Buf x, Buf stats, Buf w, Buf b, bool mid_f16, Buf other, Buf y, int n, int c, int hw, Epilogue a,
	cudaStream_t st)
{
	long long total = (long long)n * c * hw;
	k_bn_apply_add<<<blocks_for(total), THREADS, 0, st>>>(x, stats, w, b, mid_f16, other, y, total, c, hw, a);
	return cudaGetLastError();
}

cudaError_t
bn_infer(Buf x, Buf mean, Buf var, double eps, Buf w, Buf b, Buf y, int n, int c, int hw, Epilogue a, cudaStream_t st)
{
	long long total = (long long)n * c * hw;
	k_bn_infer<<<blocks_for(total), THREADS, 0, st>>>(x, mean, var, eps, w, b, y, total, c, hw, a);
	return cudaGetLastError();
}

cudaError_t
bn_update(Buf rm, Buf rv, Buf stats, int c, double momentum, cudaStream_t st)
{
	k_bn_update<<<blocks_for(c), THREADS, 0, st>>>(rm, rv, stats, c, momentum);
	return cudaGetLastError();
}

cudaError_t
bn_backward(Buf dz, Buf act_y, Epilogue pro, Buf x, Buf stats, Buf w, Buf dx, Buf dw, Buf db, int n, int c, int hw,
	BnScratch sc, cudaStream_t st)
{
	k_bn_bwd_sums<<<dim3(bn_splits(n, c, hw), c), THREADS, 0, st>>>(dz, act_y, pro, x, stats, w, dw, db, n, c, hw, sc);
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess || !dx.p)
		return e;
	long long total = (long long)n * c * hw;
	k_bn_bwd_dx<<<blocks_for(total), THREADS, 0, st>>>(dz, act_y, pro, x, stats, dx, total, c, hw, sc);
	return cudaGetLastError();
}

cudaError_t
bn_fold_weight(Buf w, int out, long long per_out, Buf var, double eps, Buf scale, Buf wf, cudaStream_t st)
{
	long long total = (long long)out * per_out;
	k_bn_fold_weight<<<blocks_for(total), THREADS, 0, st>>>(w, total, per_out, var, eps, scale, wf);
	return cudaGetLastError();
}

cudaError_t
bn_fold_bias(int out, Buf mean, Buf var, double eps, Buf scale, Buf shift, Buf bias, Buf bf, cudaStream_t st)
{
	k_bn_fold_bias<<<blocks_for(out), THREADS, 0, st>>>(out, mean, var, eps, scale, shift, bias, bf);
	return cudaGetLastError();
}

cudaError_t
maxpool_fwd(const Pool &p, Buf x, Buf y, cudaStream_t st)
{
	k_maxpool_fwd<<<blocks_for((long long)p.n * p.c * p.oh * p.ow), THREADS, 0, st>>>(p, x, y);
	return cudaGetLastError();
}

cudaError_t
maxpool_bwd(const Pool &p, Buf x, Buf dy, Buf dx, cudaStream_t st)
{
	if (pool_tiles(p))
		k_maxpool_bwd_tile<<<blocks_for((long long)p.n * p.c * p.oh * p.ow), THREADS, 0, st>>>(p, x, dy, dx);
	else
		k_maxpool_bwd<<<blocks_for((long long)p.n * p.c * p.h * p.w), THREADS, 0, st>>>(p, x, dy, dx);
	return cudaGetLastError();
}

cudaError_t
avgpool_fwd(const Pool &p, Buf x, Buf y, cudaStream_t st)
{
	k_avgpool_fwd<<<blocks_for((long long)p.n * p.c * p.oh * p.ow), THREADS, 0, st>>>(p, x, y);
	return cudaGetLastError();
}

cudaError_t
avgpool_bwd(const Pool &p, Buf dy, Buf dx, cudaStream_t st)
{
	k_avgpool_bwd<<<blocks_for((long long)p.n * p.c * p.h * p.w), THREADS, 0, st>>>(p, dy, dx);
	return cudaGetLastError();
}

cudaError_t
gap_fwd(Buf x, int n, int c, int hw, bool nhwc, Buf y, cudaStream_t st)
{
	if (nhwc)
		k_gap_fwd_cl<<<blocks_for((long long)n * c), THREADS, 0, st>>>(x, (long long)n * c, c, hw, y);
	else
		k_gap_fwd<<<blocks_for((long long)n * c), THREADS, 0, st>>>(x, (long long)n * c, hw, y);
	return cudaGetLastError();
}

cudaError_t
gap_bwd(Buf dy, int n, int c, int hw, bool nhwc, Buf dx, cudaStream_t st)
{
	long long total = (long long)n * c * hw;
	if (nhwc)
		k_gap_bwd_cl<<<blocks_for(total), THREADS, 0, st>>>(dy, total, c, hw, dx);
	else
		k_gap_bwd<<<blocks_for(total), THREADS, 0, st>>>(dy, total, hw, dx);
	return cudaGetLastError();
}

cudaError_t
relayout(Buf x, Buf y, long long planes, int a, int b, cudaStream_t st)
{
	long long total = planes * a * b;
	k_relayout<<<blocks_for(total), THREADS, 0, st>>>(x, y, total, a, b);
	return cudaGetLastError();
}

cudaError_t
softmax_fwd(Buf x, int n, int k, Buf y, cudaStream_t st)
{
	k_softmax_fwd<<<blocks_for(n), THREADS, 0, st>>>(x, n, k, y);
	return cudaGetLastError();
}

cudaError_t
softmax_bwd(Buf y, Buf dy, int n, int k, Buf dx, cudaStream_t st)
{
	k_softmax_bwd<<<blocks_for(n), THREADS, 0, st>>>(y, dy, n, k, dx);
	return cudaGetLastError();
}

cudaError_t
xent_fwd(Buf logits, const int32_t *labels, int n, int k, double eps, Buf loss, cudaStream_t st)
{
	k_xent_fwd<<<1, THREADS, 0, st>>>(logits, labels, n, k, eps, loss);
	return cudaGetLastError();
}

cudaError_t
xent_bwd(Buf logits, const int32_t *labels, int n, int k, double eps, Buf seed, Buf dx, cudaStream_t st)
{
	k_xent_bwd<<<blocks_for(n), THREADS, 0, st>>>(logits, labels, n, k, eps, seed, dx);
	return cudaGetLastError();
}

cudaError_t
concat(const Buf *xs, const int *cs, int m, int n, int hw, Buf y, cudaStream_t st)
{
	int yc = 0;
	for (int i = 0; i < m; i++)
		yc += cs[i];
	for (int i = 0, off = 0; i < m; off += cs[i], i++) {
		k_channels_copy<<<blocks_for((long long)n * cs[i] * hw), THREADS, 0, st>>>(xs[i], cs[i], 0, y, yc, off, cs[i], n,
			hw);
		cudaError_t e = cudaGetLastError();
		if (e != cudaSuccess)
			return e;
	}
	return cudaSuccess;
}

cudaError_t
slice(Buf x, int n, int c, int hw, int start, int size, Buf y, cudaStream_t st)
{
	k_channels_copy<<<blocks_for((long long)n * size * hw), THREADS, 0, st>>>(x, c, start, y, size, 0, size, n, hw);
	return cudaGetLastError();
}

cudaError_t
dropout_mask(uint64_t key, const StepScalars *s, uint64_t offset, double p, Buf mask, long long n, const int *shape,
	cudaStream_t st)
{
	uint64_t threshold;
	float keep;
	if (p >= 1) {
		threshold = (uint64_t)1 << 32;
		keep = 0;
	} else {
		threshold = p > 0 ? (uint64_t)(p * 4294967296.0) : 0;
		keep = (float)(1 / (1 - (p > 0 ? p : 0)));
	}
	k_dropout_mask<<<blocks_for(n), THREADS, 0, st>>>(key, s, offset, threshold, keep, mask, n, shape ? shape[0] : 0,
		shape ? shape[1] : 0, shape ? shape[2] : 0);
	return cudaGetLastError();
}

cudaError_t
sgd(const SgdConf &o, const StepScalars *s, Buf p, Buf g, Buf buf, long long n, bool unscale, cudaStream_t st)
{
	k_sgd<<<blocks_for(n), THREADS, 0, st>>>(o, s, p, g, buf, n, unscale);
	return cudaGetLastError();
}

cudaError_t
adam(const AdamConf &o, const StepScalars *s, Buf p, Buf g, Buf m, Buf v, long long n, bool unscale, cudaStream_t st)
{
	k_adam<<<blocks_for(n), THREADS, 0, st>>>(o, s, p, g, m, v, n, unscale);
	return cudaGetLastError();
}

cudaError_t
multi_tensor(Op op, const MtTensor *t, int ntensors, long long nchunks, StepScalars *s, cudaStream_t st)
{
	int blocks = (int)(nchunks < 1 ? 1 : nchunks > 4096 ? 4096 : nchunks);
	if (op == OP_grad_check)
		k_multi<OP_grad_check><<<blocks, THREADS, 0, st>>>(t, ntensors, nchunks, s);
	else if (op == OP_cast)
		k_multi<OP_cast><<<blocks, THREADS, 0, st>>>(t, ntensors, nchunks, s);
	else if (op == OP_sgd_update)
		k_multi<OP_sgd_update><<<blocks, THREADS, 0, st>>>(t, ntensors, nchunks, s);
	else
		k_multi<OP_adam_update><<<blocks, THREADS, 0, st>>>(t, ntensors, nchunks, s);
	return cudaGetLastError();
}

cudaError_t
grad_check(Buf x, long long n, int *bad, cudaStream_t st)
{
	k_grad_check<<<blocks_for(n), THREADS, 0, st>>>(x, n, bad);
	return cudaGetLastError();
}

cudaError_t
count_nonfinite(Buf x, long long n, unsigned long long *count, cudaStream_t st)
{
	k_count_nonfinite<<<blocks_for(n), THREADS, 0, st>>>(x, n, count);
	return cudaGetLastError();
}

cudaError_t
fill1(Buf y, float v, cudaStream_t st)
{
	k_fill1<<<1, 1, 0, st>>>(y, v);
	return cudaGetLastError();
}

cudaError_t
fill_scale(Buf y, const StepScalars *s, cudaStream_t st)
{
	k_fill_scale<<<1, 1, 0, st>>>(y, s);
	return cudaGetLastError();
}

cudaError_t
conv_direct(const CpuConv &geometry, int pass, Buf a, Buf b, Buf out, long long total, cudaStream_t st)
{
	k_conv_direct<<<blocks_for(total), THREADS, 0, st>>>(geometry, pass, a, b, out, total);
	return cudaGetLastError();
}
