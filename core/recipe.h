/* Training recipes: every setting of a training run, with defaults, loadable from YAML
 * (`nnc compile --recipe R.yaml`), embedded in the plan, and overridable on any command line
 * with `--set KEY=VALUE`. One table (RECIPE_FIELDS) drives parsing, defaults, printing and the
 * list of keys, so a setting is added in one place.
 *
 * Compile-time settings (they shape the training graph): optimizer, decay_bn_and_bias,
 * shift_lr_scale, batch. Everything else is read by the runtime each step, so nnrun can override it freely. */
#ifndef NNC_RECIPE_H
#define NNC_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum { RECIPE_MAX_MILESTONES = 8, RECIPE_MAX_POINTS = 8 };

typedef struct Recipe {
	char optimizer[16];       /* sgd | adam | adamw */
	double lr;
	double momentum;
	bool nesterov;
	double weight_decay;
	bool decay_bn_and_bias;   /* apply weight decay to batch-norm parameters and biases too */
	double shift_lr_scale;    /* sgd: batch-norm shifts train at lr times this, with the same
	                           * decay per step (airbench's bias_scaler, 64) */
	double beta1, beta2, eps; /* adam, adamw */
	char schedule[16];        /* constant | step | cosine | linear | piecewise */
	double warmup_epochs;     /* linear warm-up from 0 over this many epochs */
	int milestones[RECIPE_MAX_MILESTONES]; /* step: epochs at which lr *= gamma */
	int nmilestones;
	double gamma;
	/* piecewise: lr times a factor interpolated linearly between points (fraction of the
	 * training after warm-up, factor), fractions rising from 0 to 1: [f0, v0, f1, v1, ...] */
	double lr_points[2 * RECIPE_MAX_POINTS];
	int nlr_points;           /* numbers in lr_points (twice the points) */
	int epochs;
	int batch;
	double label_smoothing;   /* < 0: keep the model's */
	int crop_padding;         /* random crop with this zero padding; 0: off */
	bool crop_reflect;        /* the crop's padding reflects the image instead of zeros */
	bool flip;                /* random horizontal flip */
	bool alternate_flip;      /* with flip: each image flipped in every other epoch (airbench) */
	int cutout;               /* cutout square size; 0: off */
	int tta;                  /* test-time augmentation at evaluation: 0 off, 1 flip, 2 flip and
	                           * one-pixel translations (airbench's levels; runtime/data.h) */
	long seed;
} Recipe;

void recipe_defaults(Recipe *r);
/* Sets one KEY (e.g. "lr", "augment.flip", "milestones") from text. Returns false with a
 * message in err naming the key and the accepted values. */
bool recipe_set(Recipe *r, const char *key, const char *value, char *err, size_t errlen);
/* Loads a YAML mapping of settings (nested `augment:` allowed). Returns false with
 * "file:line:col: error: ..." in err. */
bool recipe_load(Recipe *r, const char *path, char *err, size_t errlen);
/* The checks across settings, once all are set: schedule piecewise needs lr_points. Returns
 * false with a message naming the settings. */
bool recipe_check(const Recipe *r, char *err, size_t errlen);
/* Writes the recipe as "key: value" lines, each prefixed by INDENT. */
void recipe_print(FILE *out, const Recipe *r, const char *indent);
/* Learning rate at fractional epoch E (0 <= E <= epochs). */
double recipe_lr(const Recipe *r, double epoch);

#endif
