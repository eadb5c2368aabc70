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

/* The default input normalization (recipe keys normalize.mean, normalize.std), the standard
 * CIFAR-10 one: per-channel mean and standard deviation of the 50,000 training images' pixels
 * scaled to [0, 1] (R, G, B). Measured on the official files (and checked by
 * tests/data/test_data_real.c): mean 0.491400 0.482158 0.446531, std 0.247032 0.243485
 * 0.261588. (The often-copied std 0.2023 0.1994 0.2010 is close to the average of the
 * per-image deviations, 0.2022 0.1993 0.2009 measured, not the pixel std.) */
#define CIFAR_MEAN_R 0.4914
#define CIFAR_MEAN_G 0.4822
#define CIFAR_MEAN_B 0.4465
#define CIFAR_STD_R 0.2470
#define CIFAR_STD_G 0.2435
#define CIFAR_STD_B 0.2616

typedef struct Recipe {
	char optimizer[16];       /* sgd | adam | adamw */
	char rounding[16];        /* optimizer.rounding: nearest | stochastic, how updated fp16
	                           * weights are stored (runtime/sround.h) */
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
	double norm_mean[3];      /* input normalization: (pixel / 255 - mean[c]) / std[c], R G B */
	double norm_std[3];
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
/* KEY's value as recipe_print writes it (and recipe_set reads it back), into BUF (N bytes),
 * which is returned; "" for an unknown key. */
const char *recipe_value(const Recipe *r, const char *key, char *buf, size_t n);
/* Learning rate at fractional epoch E (0 <= E <= epochs). */
double recipe_lr(const Recipe *r, double epoch);

#endif
