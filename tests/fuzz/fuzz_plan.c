/* libFuzzer target for the plan loader (nnrun's input): each input is the text of a plan file,
 * read as `nnrun --allow-edited` reads one (plan_parse: YAML, every field, then plan_validate's
 * consistency checks), so damaged fields reach the checks instead of stopping at the checksum.
 * A plan that loads is written back (plan_write) and must load again, checksum and all, from its
 * own text.
 *
 * What counts as a bug: any sanitizer report (an out-of-bounds read in read_program was the
 * first AFL++ found), a crash, a hang, runaway memory, a refusal without a message, or a loaded
 * plan whose own output does not load.
 *
 * Build:  CC=clang cmake -S . -B build-fuzz -DNNC_FUZZ=ON -DNNC_CUDA=OFF && cmake --build build-fuzz
 * Run:    scripts/test.sh (a short run), scripts/fuzz.sh plan SECONDS (a long one); seeds are plans
 *         of the models compiled in every precision, dictionary tests/fuzz/plan.dict. */
#define _XOPEN_SOURCE 700
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Arena a = {0};
	Plan p;
	char err[2048] = "";
	if (plan_parse((const char *)data, size, "fuzz.plan", &p, &a, true, err, sizeof err)) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (!f || !plan_write(f, &p) || fclose(f) != 0) {
			fprintf(stderr, "fuzz_plan: plan_write failed on a loaded plan\n");
			abort();
		}
		Arena b = {0};
		Plan q;
		if (!plan_parse(text, len, "written.plan", &q, &b, false, err, sizeof err)) {
			fprintf(stderr, "fuzz_plan: a loaded plan, written back, does not load: %s\n", err);
			abort();
		}
		arena_free(&b);
		free(text);
	} else if (!err[0]) {
		fprintf(stderr, "fuzz_plan: plan_parse failed without a message\n");
		abort();
	}
	arena_free(&a);
	return 0;
}
