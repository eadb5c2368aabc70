/* Checks the real CIFAR-10 in DIR (argv[1], normally data/cifar-10-batches-bin, which
 * scripts/get-cifar10.sh fills): the SHA-256 of the six files against the official values, then
 * loads them with the loader and checks the class counts (5000 per class in training, 1000 in
 * test) and that the per-channel pixel mean and standard deviation of the training set agree
 * with the CIFAR_MEAN_* and CIFAR_STD_* constants to the digits given. Exits 77 (CTest: skipped)
 * when DIR does not exist, so machines without the dataset pass. SHA-256 follows FIPS 180-4. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/data.h"

typedef struct {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t block[64];
	size_t used;
} Sha256;

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t
ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void
sha_block(Sha256 *s, const uint8_t *p)
{
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
		       p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
	uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	s->h[0] += a;
	s->h[1] += b;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
	s->h[5] += f;
	s->h[6] += g;
	s->h[7] += h;
}

static void
sha_init(Sha256 *s)
{
	static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(s->h, h0, sizeof h0);
	s->bytes = 0;
	s->used = 0;
}

static void
sha_update(Sha256 *s, const uint8_t *p, size_t n)
{
	s->bytes += n;
	while (n > 0) {
		if (s->used == 0 && n >= 64) {
			sha_block(s, p);
			p += 64;
			n -= 64;
			continue;
		}
		size_t k = 64 - s->used < n ? 64 - s->used : n;
		memcpy(s->block + s->used, p, k);
		s->used += k;
		p += k;
		n -= k;
		if (s->used == 64) {
			sha_block(s, s->block);
			s->used = 0;
		}
	}
}

static void
sha_hex(Sha256 *s, char hex[65])
{
	uint64_t bits = s->bytes * 8;
	uint8_t pad[72] = {0x80};
	size_t padlen = (s->used < 56 ? 56 : 120) - s->used;
	for (int i = 0; i < 8; i++)
		pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha_update(s, pad, padlen + 8);
	for (int i = 0; i < 8; i++)
		snprintf(hex + 8 * i, 9, "%08x", s->h[i]);
}

static int
sha_file(const char *path, char hex[65])
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	static uint8_t buf[1 << 16];
	Sha256 s;
	sha_init(&s);
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		sha_update(&s, buf, n);
	int bad = ferror(f);
	fclose(f);
	sha_hex(&s, hex);
	return bad ? -1 : 0;
}

static const struct {
	const char *name, *sha;
} official[] = {
	{"data_batch_1.bin", "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5"},
	{"data_batch_2.bin", "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed"},
	{"data_batch_3.bin", "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67"},
	{"data_batch_4.bin", "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48"},
	{"data_batch_5.bin", "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add"},
	{"test_batch.bin", "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b"},
};

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_data_real DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		printf("skipped: %s does not exist (scripts/get-cifar10.sh fetches CIFAR-10)\n", dir);
		return 77;
	}
	int failures = 0;
	char hex[65];
	Sha256 s;
	sha_init(&s);
	sha_update(&s, (const uint8_t *)"abc", 3);
	sha_hex(&s, hex);
	if (strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0) {
		fprintf(stderr, "FAIL: SHA-256 self-test: sha256(\"abc\") = %s\n", hex);
		return 1;
	}
	for (size_t i = 0; i < sizeof official / sizeof official[0]; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, official[i].name);
		if (sha_file(path, hex) != 0) {
			fprintf(stderr, "FAIL: %s: cannot read\n", path);
			failures++;
		} else if (strcmp(hex, official[i].sha) != 0) {
			fprintf(stderr, "FAIL: %s: SHA-256 %s, official %s\n", path, hex, official[i].sha);
			failures++;
		} else {
			printf("ok: %s %s\n", official[i].name, hex);
		}
	}
	if (failures)
		return 1;

	char err[512];
	CifarData d;
	if (cifar_open(&d, dir, NULL, err, sizeof err) != 0) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	for (int sp = 0; sp < 2; sp++) {
		int count[CIFAR_CLASSES] = {0};
		for (int i = 0; i < d.n[sp]; i++)
			count[d.labels[sp][i]]++;
		for (int c = 0; c < CIFAR_CLASSES; c++)
			if (count[c] != (sp == CIFAR_TRAIN ? 5000 : 1000)) {
				fprintf(stderr, "FAIL: %s split: class %d has %d images\n",
					sp == CIFAR_TRAIN ? "training" : "test", c, count[c]);
				failures++;
			}
	}
	const float mean[3] = {CIFAR_MEAN_R, CIFAR_MEAN_G, CIFAR_MEAN_B};
	const float sd[3] = {CIFAR_STD_R, CIFAR_STD_G, CIFAR_STD_B};
	for (int c = 0; c < 3; c++) {
		double sum = 0, sq = 0;
		uint64_t n = 0;
		for (int i = 0; i < d.n[CIFAR_TRAIN]; i++) {
			const uint8_t *p = d.images[CIFAR_TRAIN] + (size_t)i * CIFAR_IMAGE_BYTES + c * CIFAR_PIXELS;
			uint64_t s1 = 0, s2 = 0;
			for (int k = 0; k < CIFAR_PIXELS; k++) {
				s1 += p[k];
				s2 += (uint64_t)p[k] * p[k];
			}
			sum += (double)s1;
			sq += (double)s2;
			n += CIFAR_PIXELS;
		}
		double m = sum / (double)n / 255.0;
		double v = sq / (double)n / (255.0 * 255.0) - m * m;
		double sdv = sqrt(v);
		printf("channel %d: mean %.6f std %.6f\n", c, m, sdv);
		if (fabs(m - mean[c]) > 6e-5 || fabs(sdv - sd[c]) > 6e-5) {
			fprintf(stderr, "FAIL: channel %d: measured mean %.6f std %.6f, constants %.4f %.4f\n",
				c, m, sdv, mean[c], sd[c]);
			failures++;
		}
	}
	cifar_close(&d);
	printf("%s\n", failures ? "FAILED" : "real CIFAR-10 ok");
	return failures ? 1 : 0;
}
