/* nnc tune-precision: which layers of a trained network can run in pure fp16 and which must stay
 * in f32 to hold a budget on the predictions (docs/precision.md, "Tuning a policy"). The driver
 * (cli/nnc.c) parses the options; tune_precision runs the search and writes the policy and the
 * report. Only main exits: the result is an nnc exit code (NNC_OK, NNC_EUSER...). */
#ifndef NNC_TUNE_H
#define NNC_TUNE_H

#include "passes/pipeline.h"
#include "runtime/backend.h"

/* The budget, on the held-out images, against the f32 plan with the same weights. A limit < 0
 * is not set; a count limit with PCT set is a percentage of the images. */
enum { BUDGET_DELTA, BUDGET_VIOLATIONS, BUDGET_FLIPS, BUDGET_DROP, NBUDGET };
typedef struct {
	double limit[NBUDGET]; /* largest delta; images with Gamma < 2 delta; changed predictions;
	                          accuracy drop in percentage points */
	bool pct[NBUDGET];
} TuneBudget;

typedef struct {
	const char *model;          /* the .nn file */
	const SemaOpts *so;
	const PipelineOpts *po;     /* layout, fusion (its precision is ignored) */
	const Recipe *recipe;
	const Precision *start;     /* the pure-fp16 policy the search starts from */
	const char *weights, *data; /* a checkpoint or .safetensors; the CIFAR-10 folder */
	const char *output;         /* the policy file to write */
	const char *report;         /* per-layer CSV, or NULL */
	int holdout, threads, records;
	int train_limit;            /* the training set's first images only (0: all) */
	double confidence;          /* > 0: rates must hold at this confidence (default 0.95) */
	BackendOptions backend;
	TuneBudget budget;
	bool verbose;               /* every measurement on stderr */
} TuneOptions;

/* Parses one --budget value ("delta=0.01,violations=1%,drop=0.5") into B; false with a message
 * in ERR. */
bool tune_parse_budget(const char *s, TuneBudget *b, char *err, size_t errlen);
/* The one-sided upper confidence bound at level CONF of a rate seen K times in N trials
 * (exact, Clopper-Pearson). */
double tune_rate_bound(long k, long n, double conf);
/* Runs the search; messages on stderr, the summary on stdout. */
int tune_precision(const TuneOptions *o);

#endif
