/* Monotonic wall-clock seconds, for timings: a run's progress and speed (runtime/session.c),
 * the benchmarks and the tests that time themselves. Includers need POSIX's clock_gettime
 * (the build defines _POSIX_C_SOURCE or _DEFAULT_SOURCE). */
#ifndef NNC_CORE_CLOCK_H
#define NNC_CORE_CLOCK_H

#include <time.h>

static inline double
nnc_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#endif
