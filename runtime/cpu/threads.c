/* Thread pool (see threads.h). Workers sleep on a condition variable until the generation
 * counter moves, take the published job, run their chunk, and count themselves out; the caller
 * runs chunk 0 and waits for the count to reach zero. Chunk i of a job with k chunks over n
 * indices is [n*i/k, n*(i+1)/k), so chunks are contiguous, ordered and cover the range exactly.
 * Nothing is allocated: the worker handles live in a static array of CPU_MAX_THREADS.
 *
 * Built with OpenMP (-fopenmp: when oneDNN runs the convolutions, conv_dnnl.c), the pool is
 * OpenMP's own team instead, the one oneDNN's kernels run on: chunk i runs on thread i of a
 * parallel region, with the same chunks. Two pools would fight for the cores, OpenMP's threads
 * spinning after each oneDNN call while the pthreads wanted them (measured: 2-4x slower steps
 * on 2 cores). */
#include "runtime/cpu/threads.h"

#include <cblas.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t wake, done;
	pthread_mutex_t caller; /* one cpu_parallel_for at a time */
	pthread_t workers[CPU_MAX_THREADS];
	int nthreads; /* caller included */
	bool up, quit;
	unsigned long gen;
	int pending; /* workers yet to finish the current generation */
	CpuTask *fn;
	void *ctx;
	size_t n, nchunks;
} Pool;

static Pool pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.caller = PTHREAD_MUTEX_INITIALIZER,
	.nthreads = 1,
};

static _Thread_local bool inside_task;

static void
run_chunk(CpuTask *fn, void *ctx, size_t n, size_t nchunks, size_t i)
{
	if (i >= nchunks)
		return;
	size_t begin = n * i / nchunks, end = n * (i + 1) / nchunks;
	if (begin < end)
		fn(ctx, begin, end);
}

/* The thread count cpu_threads_init makes of its argument. */
static int
thread_count(int nthreads)
{
	if (nthreads <= 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu > 0 ? (int)ncpu : 1;
	}
	return nthreads > CPU_MAX_THREADS ? CPU_MAX_THREADS : nthreads;
}

#ifdef _OPENMP
void
cpu_threads_shutdown(void)
{
	pool.up = false;
	pool.nthreads = 1;
}

int
cpu_threads_init(int nthreads)
{
	nthreads = thread_count(nthreads);
	openblas_set_num_threads(1);
	omp_set_dynamic(0);
	omp_set_num_threads(nthreads);
	pool.nthreads = nthreads;
	pool.up = true;
	return 0;
}

/* Runs chunks [0, NCHUNKS) of the job, chunk i on thread i of an OpenMP team. */
static void
run_job(CpuTask *fn, void *ctx, size_t n, size_t nchunks)
{
#pragma omp parallel num_threads((int)nchunks)
	{
		inside_task = true;
		for (size_t i = (size_t)omp_get_thread_num(); i < nchunks; i += (size_t)omp_get_num_threads())
			run_chunk(fn, ctx, n, nchunks, i);
		inside_task = false;
	}
}
#else
static void *
worker_main(void *arg)
{
	size_t index = (size_t)arg;
	unsigned long seen = 0;
	inside_task = true;
	pthread_mutex_lock(&pool.mu);
	for (;;) {
		while (!pool.quit && pool.gen == seen)
			pthread_cond_wait(&pool.wake, &pool.mu);
		if (pool.quit)
			break;
		seen = pool.gen;
		CpuTask *fn = pool.fn;
		void *ctx = pool.ctx;
		size_t n = pool.n, nchunks = pool.nchunks;
		pthread_mutex_unlock(&pool.mu);
		run_chunk(fn, ctx, n, nchunks, index);
		pthread_mutex_lock(&pool.mu);
		if (--pool.pending == 0)
			pthread_cond_signal(&pool.done);
	}
	pthread_mutex_unlock(&pool.mu);
	return NULL;
}

void
cpu_threads_shutdown(void)
{
	if (!pool.up)
		return;
	pthread_mutex_lock(&pool.mu);
	pool.quit = true;
	pthread_cond_broadcast(&pool.wake);
	pthread_mutex_unlock(&pool.mu);
	for (int i = 1; i < pool.nthreads; i++)
		pthread_join(pool.workers[i], NULL);
	pool.up = false;
	pool.quit = false;
	pool.nthreads = 1;
}

int
cpu_threads_init(int nthreads)
{
	cpu_threads_shutdown();
	nthreads = thread_count(nthreads);
	openblas_set_num_threads(1);
	pool.gen = 0;
	pool.nthreads = 1;
	int rc = 0;
	for (int i = 1; i < nthreads; i++) {
		if (pthread_create(&pool.workers[i], NULL, worker_main, (void *)(size_t)i) != 0) {
			rc = -1;
			break;
		}
		pool.nthreads = i + 1;
	}
	pool.up = true;
	return rc;
}

/* Publishes the job to the workers, runs chunk 0 and waits for the others. */
static void
run_job(CpuTask *fn, void *ctx, size_t n, size_t nchunks)
{
	pthread_mutex_lock(&pool.mu);
	pool.fn = fn;
	pool.ctx = ctx;
	pool.n = n;
	pool.nchunks = nchunks;
	pool.pending = pool.nthreads - 1;
	pool.gen++;
	pthread_cond_broadcast(&pool.wake);
	pthread_mutex_unlock(&pool.mu);

	inside_task = true;
	run_chunk(fn, ctx, n, nchunks, 0);
	inside_task = false;

	pthread_mutex_lock(&pool.mu);
	while (pool.pending > 0)
		pthread_cond_wait(&pool.done, &pool.mu);
	pthread_mutex_unlock(&pool.mu);
}
#endif

int
cpu_threads_count(void)
{
	return pool.up ? pool.nthreads : 1;
}

void
cpu_parallel_for(size_t n, size_t grain, CpuTask *fn, void *ctx)
{
	if (n == 0)
		return;
	if (grain == 0)
		grain = 1;
	size_t nchunks = (n + grain - 1) / grain;
	if (!pool.up || inside_task || nchunks < 2 || pool.nthreads < 2) {
		fn(ctx, 0, n);
		return;
	}
	pthread_mutex_lock(&pool.caller);
	if (nchunks > (size_t)pool.nthreads)
		nchunks = (size_t)pool.nthreads;
	run_job(fn, ctx, n, nchunks);
	pthread_mutex_unlock(&pool.caller);
}
