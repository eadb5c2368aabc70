/* The backend interface (runtime/backend.h) on the CPU, for each plan given: the choice of
 * device and its refusals, running a program through the interface against exec_run directly
 * (bit-identical parameters after a few steps), a resident loop the CPU does not have, and the
 * host-fed evaluation against a loop written out here. Needs no data files (a synthetic dataset
 * of random bytes) and no GPU; where a GPU is usable, the "no GPU" refusal is not checked.
 *   test_backend PLAN... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backend.h"
#include "runtime/backend_impl.h"
#include "tests/unit/plan_arg.h"

static int failures, checks;

#define CHECK(cond, ...)                                \
	do {                                                \
		checks++;                                       \
		if (!(cond)) {                                  \
			failures++;                                 \
			printf("FAIL %s: ", path);                  \
			printf(__VA_ARGS__);                        \
			printf("\n");                               \
		}                                               \
	} while (0)

/* Fills E's input batch with fixed pseudo-random images and labels. */
static void
fill_batch(const Plan *p, Exec *e, unsigned seed)
{
	float *x = exec_f32(e, p->inputs[0].value);
	for (int64_t i = 0; i < type_numel(&p->values[p->inputs[0].value]); i++) {
		seed = seed * 1103515245u + 12345u;
		x[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
	}
	for (int i = 0; p->inputs[1].value >= 0 && i < p->batch; i++)
		exec_i32(e, p->inputs[1].value)[i] = i % 10;
}

static int
check_plan(const char *path, const Plan *p)
{
	char err[2048], note[2048];
	int before = failures;
	Exec a, b;
	if (!exec_init(&a, p, 2, err, sizeof err) || !exec_init(&b, p, 2, err, sizeof err)) {
		printf("FAIL %s: %s\n", path, err);
		return 1;
	}
	exec_init_params(&a, 3);
	exec_init_params(&b, 3);

	/* the choice of device */
	BackendOptions cpu = {.device = "cpu"}, bad = {.device = "tpu"}, cuda = {.device = "cuda"};
	Backend *be = backend_open(&a, &cpu, note, sizeof note, err, sizeof err);
	CHECK(be && !strcmp(backend_name(be), "cpu") && !backend_resident(be) && note[0] == 0,
		"--device cpu gives the CPU backend with nothing to note");
	Backend *none = backend_open(&a, &bad, note, sizeof note, err, sizeof err);
	CHECK(!none && strstr(err, "unknown device 'tpu'"), "an unknown device is refused: %s", err);
	char msg[1024];
	if (backend_gpu_count(msg, sizeof msg) <= 0) {
		none = backend_open(&a, &cuda, note, sizeof note, err, sizeof err);
		CHECK(!none && strstr(err, "--device cuda: no usable GPU (") && strstr(err, "run with --device cpu"),
			"--device cuda without a GPU says so: %s", none ? "(opened)" : err);
		backend_close(none);
	}
	if (!be) {
		exec_free(&a);
		exec_free(&b);
		return 1;
	}

	/* the CPU has no resident loop: begin does nothing, and a step says why */
	CifarData d = {0};
	int n = 2 * p->batch;
	unsigned char *bytes = malloc((size_t)n * (CIFAR_IMAGE_BYTES + 1));
	for (size_t i = 0; bytes && i < (size_t)n * (CIFAR_IMAGE_BYTES + 1); i++)
		bytes[i] = (unsigned char)(i * 2654435761u >> 24);
	for (int i = 0; bytes && i < n; i++)
		bytes[(size_t)n * CIFAR_IMAGE_BYTES + i] = (unsigned char)(i % 10);
	d.images[CIFAR_TRAIN] = d.images[CIFAR_TEST] = bytes;
	d.labels[CIFAR_TRAIN] = d.labels[CIFAR_TEST] = bytes + (size_t)n * CIFAR_IMAGE_BYTES;
	d.n[CIFAR_TRAIN] = n;
	d.n[CIFAR_TEST] = n - 3; /* the last test batch is partial: padding rows must not count */
	CifarConfig cfg;
	cifar_config_default(&cfg, p->batch, 1);
	CifarLoader ld;
	if (!bytes || cifar_loader_init(&ld, &d, &cfg, err, sizeof err) != 0) {
		printf("FAIL %s: %s\n", path, bytes ? err : "out of memory");
		free(bytes);
		backend_close(be);
		exec_free(&a);
		exec_free(&b);
		return 1;
	}
	EpochSums sums = {0};
	CHECK(backend_train_begin(be, &a, &d, &ld, &sums, err, sizeof err) && !backend_resident(be),
		"train_begin on the CPU does nothing and succeeds");
	CHECK(!backend_train_step(be, err, sizeof err) && strstr(err, "not running the resident loop"),
		"a resident step on the CPU is refused: %s", err);

	/* host-fed training through the interface is exec_run, bit for bit */
	for (int s = 0; p->has_train && s < 3; s++) {
		fill_batch(p, &a, 7u + (unsigned)s);
		fill_batch(p, &b, 7u + (unsigned)s);
		a.lr = b.lr = 0.05;
		bool ok = backend_run(be, &a, &p->train, err, sizeof err) && exec_run(&b, &p->train, err, sizeof err);
		CHECK(ok, "step %d runs: %s", s, err);
	}
	CHECK(backend_sync(be, &a, err, sizeof err), "sync on the CPU succeeds");
	CHECK(memcmp(a.base[ARENA_PARAM], b.base[ARENA_PARAM], (size_t)p->arena_bytes[ARENA_PARAM]) == 0 && a.step == b.step,
		"the parameters after backend_run equal exec_run's, bit for bit");

	/* the host-fed evaluation against a loop written out here */
	Score sc;
	int nt = d.n[CIFAR_TEST];
	bool ok = backend_evaluate(be, &a, &ld, nt, &sc, err, sizeof err);
	CHECK(ok && sc.count == nt && isfinite(sc.loss) && sc.correct >= 0 && sc.correct <= nt,
		"evaluation scores every test image: %ld of %d, loss %g (%s)", sc.count, nt, sc.loss, ok ? "" : err);
	long correct = 0;
	for (int64_t first = 0; ok && first < nt; first += p->batch) {
		int32_t *y = exec_i32(&b, p->inputs[1].value);
		int32_t valid = cifar_eval_batch(&ld, CIFAR_TEST, first, exec_f32(&b, p->inputs[0].value), y);
		exec_run(&b, &p->eval, err, sizeof err);
		const float *z = exec_view_f32(&b, p->eval.logits);
		int k = (int)p->values[p->eval.logits].dim[1];
		for (int i = 0; i < valid; i++) {
			int best = 0;
			for (int j = 1; j < k; j++)
				best = z[i * k + j] > z[i * k + best] ? j : best;
			correct += best == y[i];
		}
	}
	CHECK(!ok || correct == sc.correct, "evaluation counts %ld correct, the loop here %ld", sc.correct, correct);

	cifar_loader_free(&ld);
	free(bytes);
	backend_close(be);
	exec_free(&a);
	exec_free(&b);
	return failures != before;
}

int
main(int argc, char **argv)
{
	int failed = for_each_plan(argc, argv, check_plan);
	printf("test_backend: %d plans, %d checks, %d failed\n", argc - 1, checks, failures);
	return failed != 0 || failures != 0 || argc < 2;
}
