/* Checks the real CIFAR-10 in DIR (argv[1], normally data/cifar-10-batches-bin, which
 * scripts/get-cifar10.sh fills): the SHA-256 of the six files against the official values, then
 * loads them with the loader and checks the class counts (5000 per class in training, 1000 in
 * test) and that the per-channel pixel mean and standard deviation of the training set agree
 * with the CIFAR_MEAN_* and CIFAR_STD_* constants to the digits given. Exits 77 (CTest: skipped)
 * when DIR does not exist, so machines without the dataset pass. SHA-256 is the runtime's
 * (runtime/checkpoint.h), itself tested against the FIPS 180-4 vectors. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/checkpoint.h"
#include "runtime/data.h"

static int
sha_file(const char *path, char hex[65])
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	static uint8_t buf[1 << 16];
	Sha256 s;
	sha256_init(&s);
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		sha256_update(&s, buf, n);
	int bad = ferror(f);
	fclose(f);
	unsigned char digest[32];
	sha256_final(&s, digest);
	sha256_hex(digest, hex);
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
		const char *ci = getenv("CI");
		if (ci && strcmp(ci, "true") == 0) { /* the set-up fetched it: its absence is a failure */
			printf("FAIL: %s does not exist, and CI=true: scripts/setup.sh should have fetched CIFAR-10\n", dir);
			return 1;
		}
		printf("skipped: %s does not exist (scripts/get-cifar10.sh fetches CIFAR-10)\n", dir);
		return 77;
	}
	int failures = 0;
	char hex[65];
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
