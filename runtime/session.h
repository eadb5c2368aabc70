/* A training session and the other whole runs nnrun makes (evaluation, timing), on either
 * backend (runtime/backend.h): the data, the device, epochs with their evaluation, per-epoch
 * metrics rows, checkpoints (each epoch, at a step limit and on an interruption) and resume.
 *
 * Ordering at an epoch's end, the invariant resume relies on: the epoch is evaluated, its metrics
 * row written and synced, and only then the checkpoint saved (atomically). A run killed between
 * the two repeats the epoch on --resume, whose metrics file is first cut back to the rows of the
 * epochs the checkpoint finished (runtime/runfiles.h). A stop that lands on an epoch's last step
 * finishes that epoch's evaluation, row and checkpoint first.
 *
 * Messages and progress go to SessionOptions.log; nothing here exits: the result is a
 * SessionStatus (nnrun's exit code). */
#ifndef NNC_SESSION_H
#define NNC_SESSION_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "runtime/backend.h"
#include "runtime/plan.h"

typedef enum {
	SESSION_OK = 0,
	SESSION_FAILED = 1,      /* bad input (plan, data, checkpoint) or a failed device; said on the log */
	SESSION_USAGE = 2,       /* a missing option; said on the log */
	SESSION_INTERRUPTED = 130 /* *interrupted was set; a checkpoint was saved */
} SessionStatus;

typedef struct SessionOptions {
	const char *plan_path; /* for messages, and the default checkpoint PLAN.ckpt */
	const char *data;      /* CIFAR-10 folder */
	const char *metrics;   /* per-epoch rows: .jsonl gives JSON Lines, else CSV (NULL: none) */
	const char *checkpoint, *resume, *weights;
	int threads, train_limit, test_limit, records;
	long max_steps;        /* stop (with a checkpoint) after this many steps (0: no limit) */
	bool quiet, check_numerics;
	BackendOptions backend;
	volatile sig_atomic_t *interrupted; /* set asynchronously (Ctrl-C): checkpoint and stop */
	/* test hook, called at points of each epoch's end ("epoch-evaluated": its row not yet
	 * written; "epoch-written": its checkpoint not yet saved); NULL: none */
	void (*fault)(const char *point, int epoch);
	FILE *log;             /* progress and messages */
} SessionOptions;

/* Whether PLAN's inputs take CIFAR-10 batches (an image input [B, 3, 32, 32]; labels [B] where
 * it trains): false with a message naming the shape otherwise. Every run below checks it
 * first (the loader would write 32x32 images into a smaller input). */
bool session_cifar_fits(const Plan *plan, char *err, size_t errlen);

/* Trains PLAN on O->data for the recipe's epochs. */
SessionStatus session_train(const Plan *plan, const SessionOptions *o);
/* Evaluates O->weights on the test set; the result goes to stdout. */
SessionStatus session_eval(const Plan *plan, const SessionOptions *o);
/* Times STEPS training steps (the evaluation program where PLAN has none) after 2 warm-up steps,
 * on fixed synthetic data; on the GPU, the resident loop over a synthetic dataset of 4 batches
 * rendered there with the recipe's augmentation, as training runs. The line goes to stdout. */
SessionStatus session_bench(const Plan *plan, const SessionOptions *o, long steps);

#endif
