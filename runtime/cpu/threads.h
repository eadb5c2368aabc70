/* The CPU backend's thread pool: one process-wide pool of pthreads, created once by
 * cpu_threads_init and used by every kernel through cpu_parallel_for.
 *
 * cpu_parallel_for(n, grain, fn, ctx) splits [0, n) into at most cpu_threads_count()
 * contiguous chunks (fewer when n / grain is smaller), runs chunk 0 on the calling thread and
 * the others on the workers, and returns when all are done. The pool itself promises nothing
 * about which thread runs which index; determinism is the kernels' job, and they keep it by
 * never letting a result depend on where a chunk boundary falls (see kernels_impl.h).
 *
 * Invariants: calls from inside a running task run inline (no nested parallelism); calls from
 * two application threads at once are serialized; without an initialized pool everything runs
 * inline on the caller. cpu_threads_init also sets OpenBLAS to one thread, because the kernels
 * issue their GEMMs from inside pool tasks and the pool is what supplies the parallelism; it
 * is process-wide, so call it once at start-up, before any kernel (without it the kernels run
 * on the caller and OpenBLAS keeps its own default threading). */
#ifndef NNC_CPU_THREADS_H
#define NNC_CPU_THREADS_H

#include <stddef.h>

enum { CPU_MAX_THREADS = 256 };

/* A task body: process indices [begin, end) of the range, reading arguments from ctx. */
typedef void CpuTask(void *ctx, size_t begin, size_t end);

/* Starts (or restarts, with a new size) the pool with nthreads threads, the caller included;
 * nthreads <= 0 means one per online CPU. Returns 0, or -1 if threads could not be created,
 * in which case the pool runs with as many as were started (at least the caller). */
int cpu_threads_init(int nthreads);

/* Joins the workers; afterwards cpu_parallel_for runs inline. Safe to call more than once. */
void cpu_threads_shutdown(void);

/* Returns the configured thread count (1 when no pool is running). */
int cpu_threads_count(void);

/* Runs fn over [0, n) in contiguous chunks of at least grain indices (grain 0 means 1). */
void cpu_parallel_for(size_t n, size_t grain, CpuTask *fn, void *ctx);

#endif
