/* Counter-based random numbers for the CPU backend: Philox4x32-10 (Salmon et al., "Parallel
 * random numbers: as easy as 1, 2, 3", SC 2011). Output number i of a generator is a pure
 * function of (key, i), so a range of outputs can be produced by any number of threads in any
 * order with identical results, and the whole state is two integers: saving and restoring a
 * CpuRng (e.g. in a checkpoint) resumes the stream bit-identically.
 *
 * Output i is lane i % 4 of the Philox block whose 128-bit counter is {i / 4 low word,
 * i / 4 high word, 0, 0}, under the 64-bit key split into {low word, high word}. */
#ifndef NNC_CPU_RNG_H
#define NNC_CPU_RNG_H

#include <stdint.h>

typedef struct {
	uint64_t key;     /* the seed */
	uint64_t counter; /* index of the next 32-bit output */
} CpuRng;

void cpu_rng_seed(CpuRng *r, uint64_t seed);

/* One Philox4x32-10 block: ten rounds of the counter under the key. */
void cpu_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The four outputs 4*block .. 4*block+3 of the stream (independent of r->counter). */
void cpu_rng_block(const CpuRng *r, uint64_t block, uint32_t out[4]);

/* Output r->counter + i, without advancing. */
uint32_t cpu_rng_at(const CpuRng *r, uint64_t i);

/* Returns the next output and advances by one. */
uint32_t cpu_rng_next(CpuRng *r);

/* Advances by n outputs, as if n were drawn. */
void cpu_rng_skip(CpuRng *r, uint64_t n);

/* A double uniform on [0, 1) with 53 random bits; consumes two outputs. */
double cpu_rng_uniform(CpuRng *r);

#endif
