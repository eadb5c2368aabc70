/* For the test programs that take plan files on the command line: each plan read in turn and
 * handed to CHECK (a plan that cannot be read fails with "FAIL PATH: error: ..."). Returns the
 * number of plans that failed. */
#ifndef NNC_TESTS_PLAN_ARG_H
#define NNC_TESTS_PLAN_ARG_H

#include <stdio.h>

#include "runtime/plan.h"

static inline int
for_each_plan(int argc, char **argv, int (*check)(const char *path, const Plan *p))
{
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		Arena a = {0};
		Plan p;
		char err[2048];
		if (!plan_read(argv[i], &p, &a, false, err, sizeof err)) {
			printf("FAIL %s\n", err);
			failed++;
		} else {
			failed += check(argv[i], &p) != 0;
		}
		arena_free(&a);
	}
	return failed;
}

#endif
