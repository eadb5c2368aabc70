/* libFuzzer target for the front end: each input is the text of the root .nn file, compiled
 * through the public API (sema + every pass + the IR verifier after each), and on success also
 * printed as IR, dot, stats and YAML stats. Diagnostics go to /dev/null.
 *
 * What counts as a bug: any sanitizer report, a crash, a hang (-timeout), runaway memory
 * (-rss_limit_mb), an internal compiler error (NNC_EINTERNAL) or a failure with no diagnostic.
 *
 * Build:  CC=clang cmake -S . -B build-fuzz -DNNC_FUZZ=ON -DNNC_CUDA=OFF && cmake --build build-fuzz
 * Run:    scripts/test.sh does it (60 s, seeds from models/ and tests/golden/, dict tests/fuzz/nn.dict).
 *
 * The root file is called "fuzz.nn"; its text comes from memory, so no such file need exist.
 * `import` in an input resolves relative to the current directory: run the fuzzer from a
 * scratch directory (scripts/test.sh uses build-fuzz/run/, holding a copy of models/lib/ so the
 * seed models' imports resolve). The compiler refuses to import anything but regular files
 * under 64 MB, so /dev/zero or /dev/stdin end with an error; inputs naming proc or sys files
 * are skipped, since some of those pseudo-files are "regular" yet block when read (/proc/kmsg). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/irprint.h"
#include "compiler/stats.h"
#include "passes/pipeline.h"

#define FUZZ_PATH "fuzz.nn"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

/* memmem is a GNU/BSD extension; this keeps the target strict C11 + POSIX. */
static bool
contains(const uint8_t *data, size_t size, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= size; i++)
		if (data[i] == (uint8_t)needle[0] && memcmp(data + i, needle, n) == 0)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		if (!devnull) {
			perror("fuzz_frontend: /dev/null");
			abort();
		}
	}
	if (contains(data, size, "proc/") || contains(data, size, "sys/"))
		return -1; /* not added to the corpus */

	Arena arena = {0};
	Diag diag;
	diag_init(&diag, devnull);
	SemaOpts so = {
		.path = FUZZ_PATH,
		.source = (const char *)data,
		.source_len = size,
		.batch = 8,
	};
	PipelineOpts po = {.out = devnull};
	Recipe recipe;
	recipe_defaults(&recipe);
	Module m;
	int rc = pipeline_run(&arena, &diag, &so, &po, &recipe, &m);
	Graph *g = rc == NNC_OK ? m.main : NULL;

	switch (rc) {
	case NNC_OK:
		if (!g) {
			fprintf(stderr, "fuzz_frontend: pipeline_run returned NNC_OK without a graph\n");
			abort();
		}
		module_print(devnull, &m);
		ir_print_dot(devnull, g);
		stats_print(devnull, g);
		(void)graph_totals(g);
		if (!stats_print_yaml(devnull, g)) {
			fprintf(stderr, "fuzz_frontend: stats_print_yaml failed on a compiled graph\n");
			abort();
		}
		break;
	case NNC_EUSER:
		if (diag.nerrors == 0) {
			fprintf(stderr, "fuzz_frontend: pipeline_run failed (NNC_EUSER) without reporting an error\n");
			abort();
		}
		break;
	case NNC_EINTERNAL:
		fprintf(stderr, "fuzz_frontend: internal compiler error (NNC_EINTERNAL); %d error(s) reported\n",
			diag.nerrors);
		abort();
	default:
		fprintf(stderr, "fuzz_frontend: unexpected pipeline_run result %d\n", rc);
		abort();
	}
	arena_free(&arena);
	return 0;
}
