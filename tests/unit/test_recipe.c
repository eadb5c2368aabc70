/* Recipes (core/recipe.h): the learning-rate schedules recipe_lr gives, the piecewise schedule's
 * (fraction, factor) points and their refusals, and printing that reads back as the same
 * recipe (plans embed recipes as printed); the input normalization's three-number settings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/recipe.h"
#include "tests/check.h"

static bool
near(double a, double b)
{
	return fabs(a - b) <= 1e-12 * (fabs(b) > 1 ? fabs(b) : 1);
}

static void
set(Recipe *r, const char *key, const char *value)
{
	char err[512];
	if (!recipe_set(r, key, value, err, sizeof err))
		check_fail("%s = %s: %s", key, value, err);
}

int
main(void)
{
	char err[512];
	Recipe r;
	recipe_defaults(&r);
	CHECK(near(recipe_lr(&r, 0), 0.1) && near(recipe_lr(&r, 15), 0.05) && near(recipe_lr(&r, 30), 0));

	/* airbench's triangle: 0.2 at the start, 1 at 23% of training, 0.07 at the end */
	set(&r, "schedule", "piecewise");
	set(&r, "lr_points", "[0, 0.2, 0.23, 1, 1, 0.07]");
	set(&r, "epochs", "10");
	set(&r, "lr", "2");
	CHECK(r.nlr_points == 6);
	CHECK(near(recipe_lr(&r, 0), 0.4));
	CHECK(near(recipe_lr(&r, 1.15), 2 * (0.2 + 0.8 * 0.5)));
	CHECK(near(recipe_lr(&r, 2.3), 2));
	CHECK(near(recipe_lr(&r, 2.3 + 7.7 / 2), 2 * (1 - 0.93 / 2)));
	CHECK(near(recipe_lr(&r, 10), 0.14));
	CHECK(near(recipe_lr(&r, 11), 0.14)); /* past the end: the last factor */
	/* after a warm-up from 0, the points span the rest */
	set(&r, "warmup_epochs", "2");
	CHECK(near(recipe_lr(&r, 1), 1) && near(recipe_lr(&r, 2), 0.4) && near(recipe_lr(&r, 10), 0.14));

	/* printed, then read back key by key: the same schedule */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	recipe_print(f, &r, "");
	fclose(f);
	CHECK(strstr(text, "lr_points: [0, 0.2, 0.23, 1, 1, 0.07]\n") != NULL);
	Recipe back;
	recipe_defaults(&back);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *colon = strstr(line, ": ");
		if (!colon)
			continue;
		*colon = 0;
		set(&back, line, colon + 2);
	}
	free(text);
	for (double e = 0; e <= 10; e += 0.37)
		CHECK(recipe_lr(&back, e) == recipe_lr(&r, e));
	CHECK(back.norm_mean[1] == r.norm_mean[1] && back.norm_std[2] == r.norm_std[2]);

	/* the input normalization: CIFAR-10's by default, three numbers per key, std positive */
	Recipe n;
	recipe_defaults(&n);
	CHECK(n.norm_mean[0] == 0.4914 && n.norm_mean[2] == 0.4465 && n.norm_std[1] == 0.2435);
	char v[128];
	CHECK(!strcmp(recipe_value(&n, "normalize.std", v, sizeof v), "[0.247, 0.2435, 0.2616]"));
	set(&n, "normalize.mean", "[0.5, 0.25, 0.125]");
	set(&n, "normalize.std", "1,2,3");
	CHECK(n.norm_mean[0] == 0.5 && n.norm_mean[1] == 0.25 && n.norm_mean[2] == 0.125);
	CHECK(n.norm_std[0] == 1 && n.norm_std[1] == 2 && n.norm_std[2] == 3);
	CHECK(!strcmp(recipe_value(&n, "normalize.mean", v, sizeof v), "[0.5, 0.25, 0.125]"));
	static const char *const bad3[] = {"[0.5, 0.5]", "0.5,0.5,0.5,0.5", "[0.5, x, 0.5]", "[]", "[nan, 1, 1]"};
	for (size_t i = 0; i < sizeof bad3 / sizeof bad3[0]; i++) {
		CHECK(!recipe_set(&n, "normalize.mean", bad3[i], err, sizeof err));
		CHECK_MSG(err, "recipe setting 'normalize.mean' needs three numbers (R, G, B)");
	}
	CHECK(!recipe_set(&n, "normalize.std", "[1, 0, 1]", err, sizeof err));
	CHECK_MSG(err, "'normalize.std' = [1, 0, 1] must be positive for every channel");

	static const char *const bad[] = {"[0, 1]", "[0, 1, 0.5]", "[0.1, 1, 1, 0]", "[0, 1, 0.5, 1, 0.4, 1, 1, 0]",
		"[0, 1, 0.9, 1]", "[0, -1, 1, 0]", "[0, 1, 1, x]", "[0, 1, 1.5, 0]",
		"[0,1, 0.1,1, 0.2,1, 0.3,1, 0.4,1, 0.5,1, 0.6,1, 0.7,1, 1,0]"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		Recipe t;
		recipe_defaults(&t);
		CHECK(!recipe_set(&t, "lr_points", bad[i], err, sizeof err));
		CHECK_MSG(err, "recipe setting 'lr_points' needs 2 to 8 (fraction, factor) pairs");
	}
	/* the empty list, which every plan without the schedule carries */
	Recipe e;
	recipe_defaults(&e);
	CHECK(recipe_set(&e, "lr_points", "[]", err, sizeof err) && e.nlr_points == 0);
	CHECK(recipe_check(&r, err, sizeof err) && recipe_check(&e, err, sizeof err));
	CHECK(recipe_set(&e, "schedule", "piecewise", err, sizeof err) && !recipe_check(&e, err, sizeof err));
	CHECK_MSG(err, "'schedule' = piecewise needs 'lr_points'");
	/* milestones: up to 8 whole epoch numbers */
	Recipe ms;
	recipe_defaults(&ms);
	set(&ms, "milestones", "[100, 150]");
	CHECK(ms.nmilestones == 2 && ms.milestones[0] == 100 && ms.milestones[1] == 150);
	set(&ms, "milestones", "3,4,5");
	CHECK(ms.nmilestones == 3 && ms.milestones[2] == 5);
	CHECK(!strcmp(recipe_value(&ms, "milestones", v, sizeof v), "[3, 4, 5]"));
	static const char *const badm[] = {"[1.5]", "[-1]", "[100001]", "[1, x]", "1,2,3,4,5,6,7,8,9"};
	for (size_t i = 0; i < sizeof badm / sizeof badm[0]; i++) {
		CHECK(!recipe_set(&ms, "milestones", badm[i], err, sizeof err));
		CHECK_MSG(err, "recipe setting 'milestones' needs up to 8 epoch numbers like [100, 150]");
	}
	CHECK(ms.nmilestones == 3 && ms.milestones[0] == 3); /* a refused value changes nothing */
	CHECK(!recipe_set(&r, "schedule", "triangle", err, sizeof err));
	CHECK_MSG(err, "must be one of: constant step cosine linear piecewise");
	return check_exit("recipe");
}
