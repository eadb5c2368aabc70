/* Philox4x32-10 (see rng.h). Each round multiplies counter words 0 and 2 by fixed odd
 * constants, and mixes the high halves of the products with words 1 and 3 and the round key;
 * the key is bumped by two Weyl constants between rounds. */
#include "runtime/cpu/rng.h"

enum {
	ROUNDS = 10,
};

static const uint32_t MUL0 = 0xD2511F53u, MUL1 = 0xCD9E8D57u;
static const uint32_t WEYL0 = 0x9E3779B9u, WEYL1 = 0xBB67AE85u;

void
cpu_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
	uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
	uint32_t k0 = key[0], k1 = key[1];
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t p0 = (uint64_t)MUL0 * c0, p1 = (uint64_t)MUL1 * c2;
		uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
		uint32_t n1 = (uint32_t)p1;
		uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
		uint32_t n3 = (uint32_t)p0;
		c0 = n0, c1 = n1, c2 = n2, c3 = n3;
		k0 += WEYL0;
		k1 += WEYL1;
	}
	out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void
cpu_rng_seed(CpuRng *r, uint64_t seed)
{
	r->key = seed;
	r->counter = 0;
}

void
cpu_rng_block(const CpuRng *r, uint64_t block, uint32_t out[4])
{
	uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), 0, 0};
	uint32_t key[2] = {(uint32_t)r->key, (uint32_t)(r->key >> 32)};
	cpu_philox4x32_10(ctr, key, out);
}

uint32_t
cpu_rng_at(const CpuRng *r, uint64_t i)
{
	uint64_t idx = r->counter + i;
	uint32_t out[4];
	cpu_rng_block(r, idx >> 2, out);
	return out[idx & 3];
}

uint32_t
cpu_rng_next(CpuRng *r)
{
	uint32_t v = cpu_rng_at(r, 0);
	r->counter++;
	return v;
}

void
cpu_rng_skip(CpuRng *r, uint64_t n)
{
	r->counter += n;
}

double
cpu_rng_uniform(CpuRng *r)
{
	uint64_t hi = cpu_rng_next(r) >> 5, lo = cpu_rng_next(r) >> 6; /* 27 + 26 bits */
	return (double)(hi << 26 | lo) * 0x1p-53;
}
