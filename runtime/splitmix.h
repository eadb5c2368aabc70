/* The data order's randomness (runtime/data.c), as inline functions that C and CUDA code share,
 * so the GPU's resident loop (runtime/cuda/resident_math.cuh) draws exactly the CPU loader's
 * numbers. mix64 is splitmix64's output function (a bijection on 64 bits); a stream started at
 * state s yields the high 32 bits of mix64(s + k*GOLDEN) for k = 1, 2, ...; streams are keyed
 * by key3(a, b, c) = mix64(mix64(mix64(a) + b) + c). Bounded integers use Lemire's
 * multiply-and-reject method, so they are exactly uniform. */
#ifndef NNC_SPLITMIX_H
#define NNC_SPLITMIX_H

#include <stdint.h>

#ifdef __CUDACC__
#define NNC_HD __host__ __device__
#else
#define NNC_HD
#endif

#define NNC_GOLDEN 0x9e3779b97f4a7c15ULL
#define NNC_PERM_DOMAIN 0x7065726d75746531ULL /* "permute1" */
#define NNC_AUG_DOMAIN 0x6175676d656e7431ULL  /* "augment1" */
#define NNC_FLIP_DOMAIN 0x666c697068616c66ULL /* "fliphalf" */

static inline NNC_HD uint64_t
nnc_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline NNC_HD uint64_t
nnc_key3(uint64_t a, uint64_t b, uint64_t c)
{
	return nnc_mix64(nnc_mix64(nnc_mix64(a) + b) + c);
}

static inline NNC_HD uint32_t
nnc_rng_u32(uint64_t *s)
{
	*s += NNC_GOLDEN;
	return (uint32_t)(nnc_mix64(*s) >> 32);
}

/* Uniform in [0, n), n >= 1, without modulo bias. */
static inline NNC_HD uint32_t
nnc_rng_below(uint64_t *s, uint32_t n)
{
	uint64_t m = (uint64_t)nnc_rng_u32(s) * n;
	uint32_t lo = (uint32_t)m;
	if (lo < n) {
		uint32_t floor = (uint32_t)(0u - n) % n; /* 2^32 mod n */
		while (lo < floor) {
			m = (uint64_t)nnc_rng_u32(s) * n;
			lo = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

/* Epoch EPOCH's order of n images for SEED: Fisher-Yates from the stream at
 * key3(seed ^ PERM_DOMAIN, epoch, 0). Sequential. */
static inline NNC_HD void
nnc_epoch_order(uint64_t seed, uint64_t epoch, uint32_t *perm, uint32_t n)
{
	uint64_t s = nnc_key3(seed ^ NNC_PERM_DOMAIN, epoch, 0);
	for (uint32_t i = 0; i < n; i++)
		perm[i] = i;
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = nnc_rng_below(&s, i);
		uint32_t t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

/* The augmentation choices of one image. */
typedef struct {
	int dy, dx;  /* crop offset into the padded image, each in [0, 2P] */
	int flip;    /* 0 or 1 */
	int cy, cx;  /* cutout centre, each in [0, side) */
} NncAug;

/* The choices for the image at POSITION of EPOCH, from the stream at key3(seed ^ AUG_DOMAIN,
 * epoch, position), all drawn whatever is enabled, in the order of NncAug's fields (P =
 * crop_pad; offsets 0 without). */
static inline NNC_HD NncAug
nnc_aug_draw(uint64_t seed, int crop_pad, int side, uint64_t epoch, uint64_t position)
{
	uint64_t s = nnc_key3(seed ^ NNC_AUG_DOMAIN, epoch, position);
	uint32_t span = crop_pad > 0 ? 2u * (uint32_t)crop_pad + 1 : 1;
	NncAug a;
	a.dy = (int)nnc_rng_below(&s, span);
	a.dx = (int)nnc_rng_below(&s, span);
	a.flip = (int)(nnc_rng_u32(&s) >> 31);
	a.cy = (int)nnc_rng_below(&s, (uint32_t)side);
	a.cx = (int)nnc_rng_below(&s, (uint32_t)side);
	return a;
}

/* The source row or column of coordinate I of a padded crop (I may fall in the padding, at most
 * SIDE - 1 outside): I itself inside the image; in the padding -1 (the black pad value) or,
 * with REFLECT, the reflected coordinate (PyTorch's 'reflect': -1 reads 1, SIDE reads
 * SIDE - 2; airbench's translations). */
static inline NNC_HD int
nnc_crop_src(int i, int side, int reflect)
{
	if (i >= 0 && i < side)
		return i;
	if (!reflect)
		return -1;
	return i < 0 ? -i : 2 * side - 2 - i;
}

/* Whether training image IMAGE is flipped in EPOCH under flip MODE: 0 never; 1 the draw's bit
 * DRAWN (each image, each epoch, at random); 2 alternating (airbench's): a random half of the
 * images, fixed by the seed (the stream at key3(seed ^ FLIP_DOMAIN, 0, image)), in even
 * epochs and exactly the other half in odd ones, so that over any two epochs every image is
 * seen both ways. */
static inline NNC_HD int
nnc_flip_of(uint64_t seed, int mode, uint64_t epoch, uint64_t image, int drawn)
{
	if (mode == 2) {
		uint64_t s = nnc_key3(seed ^ NNC_FLIP_DOMAIN, 0, image);
		return (int)(nnc_rng_u32(&s) >> 31) ^ (int)(epoch & 1);
	}
	return mode ? drawn : 0;
}

#endif
