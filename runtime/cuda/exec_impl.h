/* The CUDA executor's state, shared by exec.cu (loading a plan, running its programs) and
 * resident.cu (the device-resident training loop: dataset, step state, CUDA graph). Only
 * runtime/cuda/ includes it.
 *
 * Invariants: every device buffer here is allocated before the first step runs and freed in
 * nnc_cuda_exec_free; `run` holds the StepScalars the program kernels read (run->s), so an
 * eager run and a replayed graph launch the same kernels with the same arguments. */
#ifndef NNC_CUDA_EXEC_IMPL_H
#define NNC_CUDA_EXEC_IMPL_H

#include "runtime/cuda/algo_cache.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/resident_math.cuh"

extern "C" {
#include "runtime/plan.h"
}

/* A convolution step's cuDNN state. */
struct Conv {
	cudnnTensorDescriptor_t x = nullptr, y = nullptr;
	cudnnFilterDescriptor_t w = nullptr;
	cudnnConvolutionDescriptor_t c = nullptr;
	int algo = -1;
	size_t ws = 0;
	int math = -1;                /* the cudnnMathType_t the algorithm was measured in (-1: the step's) */
	int how = 0;                  /* CONV_HEURISTIC, CONV_MEASURED or CONV_CACHED */
	float ms = 0;                 /* its measured time */
	bool direct = false;          /* cuDNN offers nothing: nnc's direct kernels (conv_direct) */
	CpuConv geo = {};             /* the geometry, for those */
};

/* How a convolution's algorithm was chosen: cuDNN's heuristics (CudaOptions.heuristic_algos,
 * tests forcing an algorithm), measured now by cuDNN's find API, or read from the measurements
 * of an earlier run (algo_cache.h). */
enum { CONV_HEURISTIC, CONV_MEASURED, CONV_CACHED };

/* An algorithm chosen for a convolution shape, reused by steps of the same shape. */
struct AlgoCache {
	int key[ALGO_KEY];
	int algo;
	size_t ws;
	int math, how;
	float ms;
};

/* A multi-tensor launch standing for steps [first, last) of a program (kernels.cuh's MtTensor):
 * a run of two or more consecutive updates of one kind, or one grad_check's operands. The
 * table is built at load; the updates' recipe constants are filled in by exec_mt_fill. */
struct MtRun {
	Op op;
	int first, last;
	int ntensors;
	long long nchunks;
	MtTensor *host, *dev;
};

/* The resident training loop's device data and host-side mirror (resident.cu). */
struct Resident {
	DataDev d = {};               /* device pointers into `bytes` and the tables */
	unsigned char *bytes = nullptr; /* the dataset: images and labels of both splits */
	float *lut = nullptr;
	uint32_t *perm = nullptr;
	double *lr = nullptr;         /* the learning rate of every step since epoch 0 */
	float *eval_loss = nullptr;   /* scratch: one evaluation batch's mean loss */
	bool loaded = false, begun = false;
	uint64_t epoch = 0, position = 0; /* host mirror of run->epoch/position (same rule) */
	uint64_t perm_epoch = 0;
	bool perm_valid = false;
	int order_in_shared = 0;      /* the epoch's order fits one block's shared memory */
	int use_graph = 0;            /* 1: capture the step after the first and replay it */
	long steps = 0;               /* steps enqueued by this loop */
	cudaGraph_t graph = nullptr;  /* the training step */
	cudaGraphExec_t graph_exec = nullptr;
	cudaGraph_t eval_graph = nullptr; /* a full evaluation batch */
	cudaGraphExec_t eval_graph_exec = nullptr;
	long eval_batches = 0;        /* evaluation batches enqueued */
	char graph_note[512] = "";    /* why the step runs without a graph, when it does */
};

struct CudaExec {
	const Plan *p = nullptr;
	unsigned char *base[NARENA] = {};
	size_t bytes[NARENA] = {};
	void *ws = nullptr;
	size_t ws_bytes = 0;
	DevRun *run = nullptr;        /* the run's scalars on the device */
	CudaRunState conf = {};       /* the recipe's constants, as the last run or train_begin gave */
	cublasHandle_t blas = nullptr;
	void *blas_ws = nullptr;      /* cuBLAS's workspace, set once so graph capture allocates nothing */
	void *bn_mem = nullptr;       /* the per-channel reductions' scratch (kernels.cuh's BnScratch) */
	BnScratch bn = {};
	cudnnHandle_t dnn = nullptr;
	cudaStream_t st = nullptr;
	Conv *conv[2] = {};
	uint64_t *rng_off[2] = {};    /* per step: dropout elements drawn by earlier steps of the run */
	uint64_t rng_total[2] = {};   /* per run */
	MtRun *mt[2] = {};            /* per program: its multi-tensor launches */
	int nmt[2] = {};
	int *mt_at[2] = {};           /* per step: the launch that begins there, or -1 */
	int *pair[2] = {};            /* per step: the plan's group partner (a bn_stats's bn_update,
	                               * a bn_apply's add) and back, or -1 (group_links) */
	int *feed[2] = {};            /* per step: a widening cast's one reader, a bn_stats that
	                               * reads the cast's source itself (GROUP_BN_STATS), and back */
	CudaRunState mt_conf = {};    /* the constants the update tables hold */
	bool mt_filled = false;
	AlgoCache cache[256];
	int ncache = 0;
	bool measure = false;         /* choose convolution algorithms by measurement (find) */
	AlgoFile algos = {};          /* the measurements kept between runs (algo_cache.h) */
	bool deterministic = false;
	bool direct_conv = false;     /* CudaOptions.direct_conv: every convolution direct */
	long fail_step = 0;           /* CudaOptions.fail_step */
	int fwd_algo = 0;             /* CudaOptions.fwd_algo */
	bool ieee_overflow = false;   /* CudaOptions.ieee_overflow */
	char notes[2048] = "";        /* what the user should know (convolutions run direct) */
	size_t ws_max = 0;
	unsigned long long *nonfinite = nullptr; /* --check-numerics: per step of a program */
	unsigned long long *nonfinite_host = nullptr; /* their copy, read after each run */
	int nonfinite_n = 0;
	Resident res;
};

/* exec.cu: value V's storage as a kernel operand. */
Buf exec_buf(const CudaExec *e, int v);
/* Enqueues steps [first, last) of program G on e->st (and, with --check-numerics, the counts of
 * their non-finite results). Returns 0, or -1 naming the failing call and the step. */
int exec_enqueue(CudaExec *e, int g, int first, int last, ErrBuf eb);
/* After the stream is idle: with --check-numerics, fails naming the first step of [first,
 * last) of G that produced NaN/Inf; else 0. */
int exec_check_nonfinite(CudaExec *e, int g, int first, int last, ErrBuf eb);

/* Fills the update tables with e->conf's recipe constants when they differ from the last
 * fill (a synchronous copy: call before a run, never while capturing). */
int exec_mt_fill(CudaExec *e, ErrBuf eb);

/* resident.cu: frees what the resident loop allocated. */
void resident_free(CudaExec *e);

#endif
