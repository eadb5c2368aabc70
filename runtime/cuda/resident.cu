/* The device-resident training loop (cuda_backend.h): the dataset in device memory, each
 * step's batch rendered there, the step's outcome folded into the run state there, and the
 * step after the first captured once as a CUDA graph and replayed.
 *
 * A training step is three things on the executor's stream: k_render (the batch the CPU
 * loader would deliver at run->epoch/position: resident_math.cuh's render_at, one thread per
 * input element), the training program (exec_enqueue, reading its scalars from run->s), and
 * k_end_step (one block: counts the batch's correct predictions, then end_step_scalars on one
 * thread). Nothing in it takes an argument that changes between steps, which is what lets one
 * captured graph stand for every step. The epoch's permutation (k_epoch_order: the
 * Fisher-Yates shuffle is sequential, one thread in shared memory) runs outside the graph when
 * the host's mirror of the order says an epoch begins; the mirror follows the same rule as the
 * device's and is compared with it at each read.
 *
 * Evaluation batches go the same way: render (test images from run->eval_first), the eval
 * program, and k_eval_sums; full batches are captured as a second graph after one eager
 * batch, the last partial batch runs eagerly.
 *
 * Capture uses cudaStreamCaptureModeThreadLocal, so a library call that is not capturable
 * fails the capture instead of running once outside it; the loop then runs eagerly and says
 * why (nnc_cuda_graph_note). With --check-numerics it always runs eagerly and checks each
 * step. */
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "runtime/cuda/exec_impl.h"

namespace {

/* One block: thread 0 shuffles (Fisher-Yates is sequential), in shared memory when the order
 * fits there (SHARED: 200 KB for CIFAR-10's 50,000 images, a tenth of global memory's latency
 * per swap), then the block copies it out. */
__global__ void
k_epoch_order(DataDev d, const DevRun *r, int shared)
{
	extern __shared__ uint32_t order[];
	uint32_t n = (uint32_t)d.n[0];
	if (threadIdx.x == 0)
		epoch_order(d.seed, r->epoch, d.shuffle, shared ? order : d.perm, n);
	if (!shared)
		return;
	__syncthreads();
	for (uint32_t i = threadIdx.x; i < n; i += blockDim.x)
		d.perm[i] = order[i];
}

/* Training: the batch at r's order; evaluation: test images from r->eval_first, VALID of them. */
__global__ void
k_render(DataDev d, const DevRun *r, int train, int valid, float *x, int32_t *y, long long n)
{
	uint64_t epoch = train ? r->epoch : 0, position = train ? r->position : 0;
	long long first = train ? 0 : r->eval_first;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
		render_at(d, train, 1, epoch, position, first, valid, x, y, i);
}

/* The rows of [0, rows) whose first maximum is their label, summed over the block. */
__device__ long long
block_correct(Buf logits, const int32_t *labels, int rows, int k)
{
	__shared__ long long sh[THREADS];
	long long c = 0;
	for (int r = threadIdx.x; r < rows; r += blockDim.x)
		c += row_argmax(logits, r, k) == labels[r];
	sh[threadIdx.x] = c;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s /= 2) {
		if ((int)threadIdx.x < s)
			sh[threadIdx.x] += sh[threadIdx.x + s];
		__syncthreads();
	}
	return sh[0];
}

__global__ void
k_end_step(DevRun *r, Buf loss, Buf logits, const int32_t *labels, int batch, int k, int n_train, const double *lr)
{
	long long c = block_correct(logits, labels, batch, k);
	if (threadIdx.x == 0)
		end_step_scalars(r, ld(loss, 0), c, batch, n_train, lr);
}

__global__ void
k_eval_sums(DevRun *r, const float *loss, Buf logits, const int32_t *labels, int valid, int k, int batch)
{
	long long c = block_correct(logits, labels, valid, k);
	if (threadIdx.x == 0) {
		r->eval_loss += (double)*loss * valid;
		r->eval_correct += c;
		r->eval_count += valid;
		r->eval_first += batch;
	}
}

/* Fails unless the dataset is on the device and, with BEGUN, the loop was started. */
int
need_loaded(const CudaExec *e, bool begun, ErrBuf eb)
{
	if (!e->res.loaded || (begun && !e->res.begun)) {
		snprintf(eb.msg, eb.len, "%s", !e->res.loaded ? "no dataset on the device (nnc_cuda_data)"
		                                               : "the resident training loop was not started (nnc_cuda_train_begin)");
		return -1;
	}
	return 0;
}

/* One training step on the stream: render, program, end of step. */
int
enqueue_step(CudaExec *e, int, ErrBuf eb)
{
	const Plan *p = e->p;
	long long n = (long long)p->batch * D_IMAGE;
	float *x = (float *)exec_buf(e, p->inputs[0].value).p;
	int32_t *y = (int32_t *)exec_buf(e, p->inputs[1].value).p;
	k_render<<<blocks_for(n), THREADS, 0, e->st>>>(e->res.d, e->run, 1, p->batch, x, y, n);
	CUDA_CHECK(cudaGetLastError());
	if (exec_enqueue(e, 0, 0, p->train.nsteps, eb) != 0)
		return -1;
	int k = (int)p->values[p->train.logits].dim[1];
	k_end_step<<<1, THREADS, 0, e->st>>>(e->run, exec_buf(e, p->train.loss), exec_buf(e, p->train.logits), y, p->batch,
		k, e->res.d.n[0], e->res.lr);
	CUDA_CHECK(cudaGetLastError());
	return 0;
}

/* One evaluation batch of VALID images from r->eval_first: render, eval program, the batch's
 * loss (the mean over its valid rows) and correct predictions into the sums. */
int
enqueue_eval(CudaExec *e, int valid, ErrBuf eb)
{
	const Plan *p = e->p;
	Resident *r = &e->res;
	long long elems = (long long)p->batch * D_IMAGE;
	float *x = (float *)exec_buf(e, p->inputs[0].value).p;
	int32_t *y = (int32_t *)exec_buf(e, p->inputs[1].value).p;
	int k = (int)p->values[p->eval.logits].dim[1];
	Buf logits = exec_buf(e, p->eval.logits);
	k_render<<<blocks_for(elems), THREADS, 0, e->st>>>(r->d, e->run, 0, valid, x, y, elems);
	CUDA_CHECK(cudaGetLastError());
	if (exec_enqueue(e, 1, 0, p->eval.nsteps, eb) != 0)
		return -1;
	CUDA_CHECK(xent_fwd(logits, y, valid, k, 0.0, Buf{r->eval_loss, false}, e->st));
	k_eval_sums<<<1, THREADS, 0, e->st>>>(e->run, r->eval_loss, logits, y, valid, k, p->batch);
	CUDA_CHECK(cudaGetLastError());
	return 0;
}

/* Captures what ENQUEUE(e, ARG) puts on the stream as a graph. Returns 0 with *EXEC set, or 1
 * with the reason in graph_note (the stream is left out of capture mode, nothing enqueued). */
int
capture(CudaExec *e, int (*enqueue)(CudaExec *, int, ErrBuf), int arg, cudaGraph_t *graph, cudaGraphExec_t *exec)
{
	Resident *r = &e->res;
	char msg[512] = "";
	ErrBuf sub = {msg, sizeof msg};
	cudaError_t ce = cudaStreamBeginCapture(e->st, cudaStreamCaptureModeThreadLocal);
	if (ce != cudaSuccess) {
		snprintf(r->graph_note, sizeof r->graph_note, "cudaStreamBeginCapture: %s", cudaGetErrorString(ce));
		return 1;
	}
	int rc = enqueue(e, arg, sub);
	cudaGraph_t g = nullptr;
	ce = cudaStreamEndCapture(e->st, &g);
	if (rc != 0 || ce != cudaSuccess || !g) {
		snprintf(r->graph_note, sizeof r->graph_note, "capturing the step failed: %.400s",
			rc != 0 ? msg : cudaGetErrorString(ce));
		if (g)
			cudaGraphDestroy(g);
		cudaGetLastError(); /* the capture's error is reported above, not by the next call */
		return 1;
	}
	ce = cudaGraphInstantiate(exec, g, 0);
	if (ce != cudaSuccess) {
		snprintf(r->graph_note, sizeof r->graph_note, "cudaGraphInstantiate: %s", cudaGetErrorString(ce));
		cudaGraphDestroy(g);
		*exec = nullptr;
		cudaGetLastError();
		return 1;
	}
	*graph = g;
	return 0;
}

/* Waits for the stream and copies the run state home. */
int
read_run(CudaExec *e, DevRun *h, ErrBuf eb)
{
	CUDA_CHECK(cudaStreamSynchronize(e->st));
	CUDA_CHECK(cudaMemcpy(h, e->run, sizeof *h, cudaMemcpyDeviceToHost));
	return 0;
}

void
drop_graphs(Resident *r)
{
	cudaGraphExec_t *x[2] = {&r->graph_exec, &r->eval_graph_exec};
	cudaGraph_t *g[2] = {&r->graph, &r->eval_graph};
	for (int i = 0; i < 2; i++) {
		if (*x[i])
			cudaGraphExecDestroy(*x[i]);
		if (*g[i])
			cudaGraphDestroy(*g[i]);
		*x[i] = nullptr;
		*g[i] = nullptr;
	}
}

} // namespace

void
resident_free(CudaExec *e)
{
	Resident *r = &e->res;
	drop_graphs(r);
	cudaFree(r->bytes);
	cudaFree(r->lut);
	cudaFree(r->perm);
	cudaFree(r->lr);
	cudaFree(r->eval_loss);
	*r = Resident();
}

extern "C" int
nnc_cuda_data(CudaExec *e, const CudaDataset *d, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	const Plan *p = e->p;
	int xv = p->inputs[0].value, yv = p->inputs[1].value;
	if (xv < 0 || yv < 0 || p->values[xv].dtype != DT_F32 || type_numel(&p->values[xv]) != (int64_t)p->batch * D_IMAGE ||
	    p->values[yv].dtype != DT_I32 || type_numel(&p->values[yv]) != p->batch) {
		snprintf(err, errlen, "the plan's inputs are not a batch of %d f32 images of 3x32x32 and their i32 labels",
			p->batch);
		return -1;
	}
	if (d->n[0] < p->batch) {
		snprintf(err, errlen, "%d training images is fewer than the batch of %d", d->n[0], p->batch);
		return -1;
	}
	int k = (int)p->values[p->eval.logits].dim[1];
	for (int s = 0; s < 2; s++)
		for (int32_t i = 0; i < d->n[s]; i++)
			if (d->labels[s][i] >= k) {
				snprintf(err, errlen, "%s image %d has label %d, outside the model's %d classes", s ? "test" : "training",
					(int)i, d->labels[s][i], k);
				return -1;
			}
	resident_free(e);
	Resident *r = &e->res;
	size_t img[2] = {(size_t)d->n[0] * D_IMAGE, (size_t)d->n[1] * D_IMAGE};
	size_t total = img[0] + img[1] + (size_t)d->n[0] + (size_t)d->n[1];
	size_t free_b = 0, total_b = 0;
	CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
	if (total + (size_t)d->n[0] * 4 + 4096 > free_b) {
		snprintf(err, errlen, "out of GPU memory: the dataset needs %.1f MB, %.1f MB are free", total / 1e6, free_b / 1e6);
		return -1;
	}
	CUDA_CHECK(cudaMalloc((void **)&r->bytes, total));
	CUDA_CHECK(cudaMalloc((void **)&r->lut, 3 * 256 * sizeof(float)));
	CUDA_CHECK(cudaMalloc((void **)&r->perm, (size_t)d->n[0] * sizeof(uint32_t)));
	CUDA_CHECK(cudaMalloc((void **)&r->eval_loss, sizeof(float)));
	unsigned char *at = r->bytes;
	for (int s = 0; s < 2; s++) {
		CUDA_CHECK(cudaMemcpy(at, d->images[s], img[s], cudaMemcpyHostToDevice));
		r->d.images[s] = at;
		at += img[s];
	}
	for (int s = 0; s < 2; s++) {
		CUDA_CHECK(cudaMemcpy(at, d->labels[s], (size_t)d->n[s], cudaMemcpyHostToDevice));
		r->d.labels[s] = at;
		at += d->n[s];
		r->d.n[s] = d->n[s];
	}
	CUDA_CHECK(cudaMemcpy(r->lut, d->lut, 3 * 256 * sizeof(float), cudaMemcpyHostToDevice));
	r->d.lut = r->lut;
	r->d.perm = r->perm;
	int dev = 0, optin = 0;
	size_t order_bytes = (size_t)d->n[0] * sizeof(uint32_t);
	CUDA_CHECK(cudaGetDevice(&dev));
	CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
	r->order_in_shared = order_bytes <= (size_t)optin;
	if (r->order_in_shared)
		CUDA_CHECK(cudaFuncSetAttribute(k_epoch_order, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)order_bytes));
	r->d.seed = d->seed;
	r->d.shuffle = d->shuffle;
	r->d.crop_pad = d->crop_pad;
	r->d.crop_reflect = d->crop_reflect;
	r->d.flip = d->flip;
	r->d.cutout = d->cutout;
	r->loaded = true;
	return 0;
}

extern "C" int
nnc_cuda_train_begin(CudaExec *e, const CudaRunState *st, const CudaTrainState *in, const double *lr, long nlr,
	int graph, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	const Plan *p = e->p;
	Resident *r = &e->res;
	if (need_loaded(e, false, eb) != 0)
		return -1;
	if (!p->has_train || p->train.loss < 0 || p->train.logits < 0) {
		snprintf(err, errlen, "the plan has no training program with a loss and logits");
		return -1;
	}
	drop_graphs(r);
	r->graph_note[0] = 0;
	e->conf = *st;
	if (exec_mt_fill(e, eb) != 0)
		return -1;
	long nb = r->d.n[0] / p->batch;
	DevRun h = {};
	h.s.loss_scale = in->loss_scale;
	h.s.step = in->step;
	h.s.rng_counter = in->rng_counter;
	for (int i = 0; i < p->train.nsteps; i++) {
		const PlanStep *s = &p->train.steps[i];
		h.updated |= s->op == OP_sgd_update || s->op == OP_adam_update;
		if (s->op != OP_loss_scale)
			continue;
		h.scaled |= s->attr[nnc_attr_index(OP_loss_scale, "dynamic")].i[0] != 0;
		h.interval = (int)s->attr[nnc_attr_index(OP_loss_scale, "interval")].i[0];
		h.growth = s->attr[nnc_attr_index(OP_loss_scale, "growth")].f;
		h.backoff = s->attr[nnc_attr_index(OP_loss_scale, "backoff")].f;
	}
	h.clean_steps = in->clean_steps;
	h.skipped_steps = in->skipped_steps;
	h.gstep = (long long)in->epoch * nb + (long long)(in->position / (uint64_t)p->batch);
	h.nlr = nlr;
	h.s.lr = nlr > 0 ? lr[h.gstep < nlr ? h.gstep : nlr - 1] : 0;
	h.rng_per_run = e->rng_total[0];
	h.epoch = in->epoch;
	h.position = in->position;
	h.loss_sum = in->loss_sum;
	h.correct = in->correct;
	h.seen = in->seen;
	h.nonfinite_at = -1;
	cudaFree(r->lr);
	r->lr = nullptr;
	if (nlr > 0) {
		CUDA_CHECK(cudaMalloc((void **)&r->lr, (size_t)nlr * sizeof *lr));
		CUDA_CHECK(cudaMemcpy(r->lr, lr, (size_t)nlr * sizeof *lr, cudaMemcpyHostToDevice));
	}
	CUDA_CHECK(cudaStreamSynchronize(e->st));
	CUDA_CHECK(cudaMemcpy(e->run, &h, sizeof h, cudaMemcpyHostToDevice));
	r->epoch = in->epoch;
	r->position = in->position;
	r->perm_valid = false;
	r->use_graph = graph && !e->nonfinite;
	r->steps = 0;
	r->begun = true;
	return 0;
}

extern "C" int
nnc_cuda_train_step(CudaExec *e, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	if (need_loaded(e, true, eb) != 0)
		return -1;
	Resident *r = &e->res;
	const Plan *p = e->p;
	if (e->fail_step > 0 && r->steps + 1 == e->fail_step) {
		snprintf(err, errlen, "training step %ld failed: an injected CUDA error (NNC_CUDA_FAIL_STEP=%ld)",
			e->fail_step, e->fail_step);
		return -1;
	}
	if (!r->perm_valid || (r->d.shuffle && r->perm_epoch != r->epoch)) {
		size_t smem = r->order_in_shared ? (size_t)r->d.n[0] * sizeof(uint32_t) : 0;
		k_epoch_order<<<1, THREADS, smem, e->st>>>(r->d, e->run, r->order_in_shared);
		CUDA_CHECK(cudaGetLastError());
		r->perm_epoch = r->epoch;
		r->perm_valid = true;
	}
	if (!r->graph_exec && r->use_graph && r->steps >= 1 && !r->graph_note[0])
		capture(e, enqueue_step, 0, &r->graph, &r->graph_exec);
	if (r->graph_exec)
		CUDA_CHECK(cudaGraphLaunch(r->graph_exec, e->st));
	else if (enqueue_step(e, 0, eb) != 0)
		return -1;
	if (e->nonfinite) {
		CUDA_CHECK(cudaStreamSynchronize(e->st));
		if (exec_check_nonfinite(e, 0, 0, p->train.nsteps, eb) != 0)
			return -1;
	}
	r->position += (uint64_t)p->batch;
	if (r->position + (uint64_t)p->batch > (uint64_t)r->d.n[0]) {
		r->epoch++;
		r->position = 0;
	}
	r->steps++;
	return 0;
}

extern "C" int
nnc_cuda_train_read(CudaExec *e, CudaTrainState *out, int reset_sums, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	if (need_loaded(e, true, eb) != 0)
		return -1;
	DevRun h;
	if (read_run(e, &h, eb) != 0)
		return -1;
	if (h.epoch != e->res.epoch || h.position != e->res.position) {
		snprintf(err, errlen, "internal error: the device's data order (epoch %llu, image %llu) differs from the host's "
		                      "(epoch %llu, image %llu)", (unsigned long long)h.epoch, (unsigned long long)h.position,
			(unsigned long long)e->res.epoch, (unsigned long long)e->res.position);
		return -1;
	}
	out->step = (long)h.s.step;
	out->skipped_steps = (long)h.skipped_steps;
	out->clean_steps = h.clean_steps;
	out->loss_scale = h.s.loss_scale;
	out->lr = h.s.lr;
	out->rng_counter = h.s.rng_counter;
	out->epoch = h.epoch;
	out->position = h.position;
	out->loss_sum = h.loss_sum;
	out->correct = (long)h.correct;
	out->seen = (long)h.seen;
	out->nonfinite_at = (long)h.nonfinite_at;
	out->nonfinite_loss = h.nonfinite_loss;
	if (reset_sums) {
		size_t a = offsetof(DevRun, loss_sum), b = offsetof(DevRun, nonfinite_at);
		CUDA_CHECK(cudaMemsetAsync((unsigned char *)e->run + a, 0, b - a, e->st));
	}
	return 0;
}

extern "C" const char *
nnc_cuda_graph_note(const CudaExec *e)
{
	return e->res.graph_note;
}

extern "C" int
nnc_cuda_graph_nodes(const CudaExec *e)
{
	size_t n = 0;
	if (!e->res.graph || cudaGraphGetNodes(e->res.graph, nullptr, &n) != cudaSuccess)
		return 0;
	return (int)n;
}

extern "C" int
nnc_cuda_evaluate(CudaExec *e, long n, double *loss_sum, long *correct, long *count, char *err, size_t errlen)
{
	ErrBuf eb = {err, errlen};
	const Plan *p = e->p;
	Resident *r = &e->res;
	if (need_loaded(e, false, eb) != 0)
		return -1;
	if (p->eval.logits < 0) {
		snprintf(err, errlen, "the plan's eval program has no logits");
		return -1;
	}
	if (n > r->d.n[1])
		n = r->d.n[1];
	size_t a = offsetof(DevRun, eval_loss);
	CUDA_CHECK(cudaMemsetAsync((unsigned char *)e->run + a, 0, sizeof(DevRun) - a, e->st));
	for (long first = 0; first < n; first += p->batch) {
		int valid = n - first < p->batch ? (int)(n - first) : p->batch;
		/* a full batch: after one eager batch, captured once and replayed (as training steps) */
		bool graph = valid == p->batch && r->use_graph;
		if (graph && !r->eval_graph_exec && r->eval_batches >= 1 && !r->graph_note[0])
			capture(e, enqueue_eval, p->batch, &r->eval_graph, &r->eval_graph_exec);
		if (graph && r->eval_graph_exec)
			CUDA_CHECK(cudaGraphLaunch(r->eval_graph_exec, e->st));
		else if (enqueue_eval(e, valid, eb) != 0)
			return -1;
		r->eval_batches++;
		if (e->nonfinite) {
			CUDA_CHECK(cudaStreamSynchronize(e->st));
			if (exec_check_nonfinite(e, 1, 0, p->eval.nsteps, eb) != 0)
				return -1;
		}
	}
	DevRun h;
	if (read_run(e, &h, eb) != 0)
		return -1;
	*loss_sum = h.eval_loss;
	*correct = (long)h.eval_correct;
	*count = (long)h.eval_count;
	return 0;
}
