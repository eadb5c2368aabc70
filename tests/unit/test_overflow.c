/* GradScaler's rule on the CPU executor, split or whole (no GPU, no CUDA build needed): for each
 * plan given, a training step run one step at a time with an inf planted in the first of its
 * grad_check chunks must change no weight and no optimizer state (tests/unit/overflow_replay.h).
 * Plans without loss scaling pass trivially; tests/cuda.sh gives mixed plans whose checks come
 * in several chunks (ResNet-20: 2). Catches `skip_update |= bad` turned into `= bad`.
 *   test_overflow PLAN... */
#include "tests/unit/overflow_replay.h"
#include "tests/unit/plan_arg.h"

static int
check_plan(const char *path, const Plan *p)
{
	int chunks = 0, rc = p->has_train ? split_overflow(path, p, NULL, &chunks) : 0;
	if (rc == 0)
		printf("%s: ok (%d check chunks)\n", path, chunks);
	return rc != 0;
}

int
main(int argc, char **argv)
{
	int failures = for_each_plan(argc, argv, check_plan);
	printf("test_overflow: %d plans, %d failed\n", argc - 1, failures);
	return failures != 0;
}
