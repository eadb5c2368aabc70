/* nnrun: runs execution plans written by `nnc compile`.
 *
 *   nnrun info PLAN                 validate a plan and summarize it
 *   nnrun train PLAN --data DIR     train on CIFAR-10 (progress, metrics, checkpoints, resume)
 *   nnrun eval PLAN --weights W     evaluate a checkpoint or safetensors file on the test set
 *   nnrun import-weights PLAN SRC -o W.safetensors [--rules R.yaml]
 *                                   another tool's weights under the plan's names
 *   nnrun export PLAN --weights CKPT -o W.safetensors
 *                                   write the model's weights (PyTorch names) for other tools
 *   nnrun export PLAN --weights CKPT -o M.onnx
 *                                   write the evaluation graph with its weights as ONNX
 *
 * Exit codes: 0 success, 1 bad input (plan, data, checkpoint), 2 bad usage, 130 interrupted
 * (a checkpoint was saved). Only this file exits. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "core/num.h"
#include "runtime/backend.h"
#include "runtime/data.h"
#include "runtime/exec.h"
#include "runtime/import.h"
#include "runtime/onnx.h"
#include "runtime/session.h"
#include "runtime/tolerance.h"
#include "runtime/weights.h"

enum { EXIT_USER = 1, EXIT_USAGE = 2 }; /* 130, interrupted, comes from the session (SessionStatus) */

/* Two strings: ISO C's minimum for a string literal is 4095 bytes. */
static const char usage_commands[] =
	"usage: nnrun COMMAND PLAN [options]\n"
	"\n"
	"commands:\n"
	"  info PLAN                       validate the plan and summarize it (with --device cuda: also\n"
	"                                  how each convolution runs on the GPU)\n"
	"  train PLAN --data DIR           train on CIFAR-10\n"
	"  eval PLAN --weights FILE --data DIR\n"
	"                                  test accuracy and loss of a checkpoint or .safetensors\n"
	"       [--logits OUT.safetensors] instead: input, label and logits of the evaluation program\n"
	"                                  on the CPU (no test-time augmentation)\n"
	"  export PLAN --weights CKPT -o OUT.safetensors|OUT.onnx\n"
	"                                  the model's parameters under their PyTorch-style names, or\n"
	"                                  its inference graph with them as ONNX (docs/runtime.md)\n"
	"  import-weights PLAN SRC.safetensors -o OUT.safetensors [--rules R.yaml]\n"
	"                                  weights saved under other names (a PyTorch state_dict)\n"
	"                                  renamed to the plan's: by --rules (a YAML list of\n"
	"                                  {match: REGEX, replace: TEXT}), by name, then by\n"
	"                                  structure (modules of equal tensors, in order); prints\n"
	"                                  the map, refuses gaps and ambiguity\n"
	"  compare A.plan B.plan --weights W --data DIR [--csv FILE] [--holdout N]\n"
	"                                  the same weights through two plans (e.g. fp32 and fp16)\n"
	"                                  on the test set (or the last N training images, of the\n"
	"                                  first --train-limit): per image\n"
	"                                  delta = max |pA - pB| and Gamma = top-1 - top-2 of pA;\n"
	"                                  Lemma 3.3 of the paper says Gamma >= 2 delta guarantees\n"
	"                                  the same prediction\n"
	"  bench PLAN [--steps N]          time N training steps on synthetic data (after 2 warm-up\n"
	"                                  steps): milliseconds per step and images per second\n"
	"  step PLAN --weights W --input BATCH.safetensors -o OUT.safetensors [--steps N]\n"
	"       [--optimizer-step K]      N training steps on one given batch, as update K+1...;\n"
	"                                  writes the first step's loss, logits and gradients\n"
	"                                  (grad.NAME) and every parameter and optimizer state\n"
	"                                  after N steps (for checks against PyTorch)\n"
	"\n";
static const char usage_options[] =
	"options:\n"
	"  --data DIR            CIFAR-10 binary files (scripts/setup.sh puts them in data/)\n"
	"  --set KEY=VALUE       override a recipe setting (lr, epochs, seed, augment.flip...)\n"
	"  --epochs N, --lr X, --seed N   shorthands for --set\n"
	"  --threads N           worker threads (default: all cores)\n"
	"  --device cpu|cuda     where train, eval and bench run (default: cuda when a usable GPU is\n"
	"                        present, else cpu; the NNC_DEVICE environment variable sets it too)\n"
	"  --deterministic       on the GPU, only deterministic cuDNN algorithms (bit-identical repeats)\n"
	"  --no-graph            on the GPU, launch each training step's kernels instead of replaying\n"
	"                        the step captured as a CUDA graph\n"
	"  --host-data           on the GPU, render batches on the host and copy each one over,\n"
	"                        instead of keeping the dataset on the GPU\n"
	"  --metrics FILE        per-epoch metrics; .jsonl gives JSON Lines, else CSV\n"
	"  --checkpoint FILE     where to save checkpoints (default: PLAN.ckpt), each epoch and on Ctrl-C\n"
	"  --resume FILE         continue a run from its checkpoint (bit-identical on the CPU)\n"
	"  --weights FILE        start from these weights (.safetensors or a checkpoint)\n"
	"  --train-limit N       use only the first N training images (quick runs, tests)\n"
	"  --test-limit N        evaluate on the first N test images only\n"
	"  --records-per-file N  the data files hold N images each (a subset cut from the official\n"
	"                        files of 10000, as scripts/device-pack.sh makes)\n"
	"  --steps N             stop after N training steps (tests); a checkpoint is saved\n"
	"  --format safetensors|onnx   export's file (default: by the -o name's suffix)\n"
	"  --quiet               no progress output\n"
	"  --allow-edited        load a hand-edited plan (it is still fully validated)\n"
	"  --check-numerics      count NaN/Inf, fp16 overflow and underflow per op; stop at the\n"
	"                        first NaN/Inf with the op and its .nn source line\n"
	"  -h, --help            this help\n";

static void
print_usage(FILE *f)
{
	fputs(usage_commands, f);
	fputs(usage_options, f);
}

typedef struct {
	const char *cmd, *plan_b, *output, *rules, *input, *csv, *format, *logits;
	long optimizer_step, holdout;
	bool allow_edited;
	const char *sets[64];
	int nsets;
	SessionOptions s; /* what the runs of runtime/session.h take */
} Opts;

static volatile sig_atomic_t interrupted;

static void
on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int
usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "nnrun: ");
	fprintf(stderr, msg, arg);
	fprintf(stderr, "\nTry `nnrun --help`.\n");
	return EXIT_USAGE;
}

/* Where the value of option A goes, for the options that take a string as it is; NULL for others. */
static const char **
string_option(const char *a, Opts *o)
{
	const struct {
		const char *flag;
		const char **to;
	} opts[] = {{"--data", &o->s.data}, {"--metrics", &o->s.metrics}, {"--checkpoint", &o->s.checkpoint},
		{"--resume", &o->s.resume}, {"--weights", &o->s.weights}, {"--logits", &o->logits}, {"--rules", &o->rules},
		{"--csv", &o->csv}, {"--input", &o->input}, {"-o", &o->output}, {"--output", &o->output}};
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (!strcmp(a, opts[i].flag))
			return opts[i].to;
	return NULL;
}

/* Returns -1 to go on, or an exit code. */
static int
parse_opts(Opts *o, int argc, char **argv)
{
	o->s.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (o->s.threads < 1)
		o->s.threads = 1;
	o->s.backend.device = getenv("NNC_DEVICE");
	if (o->s.backend.device && strcmp(o->s.backend.device, "cpu") && strcmp(o->s.backend.device, "cuda"))
		return usage_error("NNC_DEVICE must be cpu or cuda, got '%s'", o->s.backend.device);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		long n;
#define VALUE()                                            \
	do {                                                   \
		if (!v)                                            \
			return usage_error("%s needs a value", a);      \
		i++;                                               \
	} while (0)
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			print_usage(stdout);
			return 0;
		} else if (string_option(a, o)) {
			VALUE();
			*string_option(a, o) = v;
		} else if (!strcmp(a, "--format")) {
			VALUE();
			if (strcmp(v, "safetensors") && strcmp(v, "onnx"))
				return usage_error("--format must be safetensors or onnx, got '%s'", v);
			o->format = v;
		} else if (!strcmp(a, "--set") || !strcmp(a, "--epochs") || !strcmp(a, "--lr") || !strcmp(a, "--seed")) {
			VALUE();
			if (o->nsets == 64)
				return usage_error("too many --set options%s", "");
			o->sets[o->nsets++] = !strcmp(a, "--set") ? v : NULL;
			if (strcmp(a, "--set") != 0) {
				static char buf[64][128];
				snprintf(buf[o->nsets - 1], sizeof buf[0], "%s=%s", a + 2, v);
				o->sets[o->nsets - 1] = buf[o->nsets - 1];
			}
		} else if (!strcmp(a, "--device")) {
			VALUE();
			if (strcmp(v, "cpu") && strcmp(v, "cuda"))
				return usage_error("--device must be cpu or cuda, got '%s'", v);
			o->s.backend.device = v;
		} else if (!strcmp(a, "--deterministic")) {
			o->s.backend.deterministic = true;
		} else if (!strcmp(a, "--no-graph")) {
			o->s.backend.no_graph = true;
		} else if (!strcmp(a, "--host-data")) {
			o->s.backend.host_data = true;
		} else if (!strcmp(a, "--threads")) {
			VALUE();
			if (!num_parse(v, 1, 256, &n))
				return usage_error("--threads needs a number from 1 to 256, got '%s'", v);
			o->s.threads = (int)n;
		} else if (!strcmp(a, "--train-limit") || !strcmp(a, "--test-limit")) {
			VALUE();
			if (!num_parse(v, 1, 50000, &n))
				return usage_error("the limit needs a number from 1 to 50000, got '%s'", v);
			*(a[2] == 't' && a[3] == 'r' ? &o->s.train_limit : &o->s.test_limit) = (int)n;
		} else if (!strcmp(a, "--holdout")) {
			VALUE();
			if (!num_parse(v, 1, 50000, &n))
				return usage_error("--holdout needs a number from 1 to 50000, got '%s'", v);
			o->holdout = n;
		} else if (!strcmp(a, "--records-per-file")) {
			VALUE();
			if (!num_parse(v, 1, 10000, &n))
				return usage_error("--records-per-file needs a number from 1 to 10000, got '%s'", v);
			o->s.records = (int)n;
		} else if (!strcmp(a, "--steps")) {
			VALUE();
			if (!num_parse(v, 1, 1L << 40, &n))
				return usage_error("--steps needs a positive number, got '%s'", v);
			o->s.max_steps = n;
		} else if (!strcmp(a, "--optimizer-step")) {
			VALUE();
			if (!num_parse(v, 0, 1L << 40, &n))
				return usage_error("--optimizer-step needs a number >= 0, got '%s'", v);
			o->optimizer_step = n;
		} else if (!strcmp(a, "--quiet")) {
			o->s.quiet = true;
		} else if (!strcmp(a, "--check-numerics")) {
			o->s.check_numerics = true;
		} else if (!strcmp(a, "--allow-edited")) {
			o->allow_edited = true;
		} else if (a[0] == '-') {
			return usage_error("unknown option '%s'", a);
		} else if (o->s.plan_path && (!strcmp(o->cmd, "compare") || !strcmp(o->cmd, "import-weights")) && !o->plan_b) {
			o->plan_b = a;
		} else if (o->s.plan_path) {
			return usage_error("more than one plan ('%s')", a);
		} else {
			o->s.plan_path = a;
		}
#undef VALUE
	}
	if (!o->s.plan_path)
		return usage_error("no plan given%s", "");
	if (o->format && strcmp(o->cmd, "export"))
		return usage_error("--format is an option of export, not of %s", o->cmd);
	if (o->holdout && strcmp(o->cmd, "compare"))
		return usage_error("--holdout is an option of compare, not of %s", o->cmd);
	if (o->logits && strcmp(o->cmd, "eval"))
		return usage_error("--logits is an option of eval, not of %s", o->cmd);
	return -1;
}

/* --- commands ------------------------------------------------------------------------------------ */

static bool
load_plan(const Opts *o, Plan *plan, Arena *a)
{
	char err[2048];
	if (!plan_read(o->s.plan_path, plan, a, o->allow_edited, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return false;
	}
	for (int i = 0; i < o->nsets; i++) {
		char key[128];
		const char *eq = strchr(o->sets[i], '=');
		if (!eq || eq == o->sets[i] || (size_t)(eq - o->sets[i]) >= sizeof key) {
			fprintf(stderr, "nnrun: --set needs KEY=VALUE, got '%s'\n", o->sets[i]);
			return false;
		}
		snprintf(key, sizeof key, "%.*s", (int)(eq - o->sets[i]), o->sets[i]);
		if (!strcmp(key, "optimizer") || !strcmp(key, "batch") || !strcmp(key, "decay_bn_and_bias") ||
		    !strcmp(key, "shift_lr_scale")) {
			fprintf(stderr, "nnrun: '%s' is fixed when the plan is compiled; use nnc compile --set %s\n", key, o->sets[i]);
			return false;
		}
		if (!recipe_set(&plan->recipe, key, eq + 1, err, sizeof err)) {
			fprintf(stderr, "nnrun: %s\n", err);
			return false;
		}
	}
	if (!recipe_check(&plan->recipe, err, sizeof err)) {
		fprintf(stderr, "nnrun: %s\n", err);
		return false;
	}
	return true;
}

/* nnrun info --device cuda: the plan opened on the GPU, and how each convolution runs there
 * (cuDNN's algorithm, measured now, measured by an earlier run, or cuDNN's heuristic guess). */
static int
info_gpu(const Opts *o, const Plan *p)
{
	char err[2048], note[2048];
	Exec e;
	if (!exec_init(&e, p, o->s.threads, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", o->s.plan_path, err);
		return EXIT_USER;
	}
	Backend *b = backend_open(&e, &o->s.backend, note, sizeof note, err, sizeof err);
	if (!b) {
		fprintf(stderr, "nnrun: error: %s\n", err);
		exec_free(&e);
		return EXIT_USER;
	}
	if (note[0])
		printf("  %s\n", note);
	for (int g = 0; g < 2; g++) {
		const PlanProgram *prog = g ? &p->eval : &p->train;
		bool any = false;
		for (int i = 0; i < prog->nsteps && (g || p->has_train); i++) {
			const char *how = backend_conv_algo(b, g, i);
			if (!how)
				continue;
			if (!any)
				printf("  cuda convolutions of the %s program:\n", g ? "eval" : "train");
			any = true;
			const PlanStep *s = &prog->steps[i];
			printf("    step %d %s%s%s: %s\n", i, nnc_ops[s->op].name, s->name[0] ? " " : "", s->name, how);
		}
	}
	backend_close(b);
	exec_free(&e);
	return 0;
}

static int
cmd_info(const Opts *o)
{
	Arena a = {0};
	Plan p;
	if (!load_plan(o, &p, &a)) {
		arena_free(&a);
		return EXIT_USER;
	}
	size_t bytes = 0, params = 0;
	for (int i = 0; i < p.nvalues; i++)
		bytes += (size_t)type_numel(&p.values[i]) * dtype_size(p.values[i].dtype);
	for (int i = 0; i < p.nparams; i++)
		params += p.params[i].trainable ? (size_t)type_numel(&p.values[p.params[i].value]) : 0;
	printf("plan %s: model %s from %s, batch %d\n", o->s.plan_path, p.model, p.source, p.batch);
	printf("  %d values, %d parameters and state tensors, %zu trainable parameters\n", p.nvalues, p.nparams, params);
	printf("  memory: param %.2f MB, io %.2f MB, act %.2f MB (one buffer per value: %.1f MB)\n", p.arena_bytes[ARENA_PARAM] / 1e6,
		p.arena_bytes[ARENA_IO] / 1e6, p.arena_bytes[ARENA_ACT] / 1e6, (double)bytes / 1e6);
	int threads = o->s.threads > 0 ? o->s.threads : 1;
	ExecWorkspace w = exec_workspace(&p, threads);
	printf("  cpu workspace with %d threads: %.2f MB (convolution %.2f, fp16 widening %.2f, value view %.2f, "
	       "per-channel %.3f, nchw copies %.2f, channels-last sums %.3f)\n",
		threads, w.total / 1e6, w.conv / 1e6, w.wide / 1e6, w.view / 1e6, w.scratch / 1e6, w.lay / 1e6, w.part / 1e6);
	int cl = 0;
	for (int v = 0; v < p.nvalues; v++)
		cl += type_channels_last(&p.values[v]);
	printf("  layout: %s (%d of %d values channels-last)\n", cl ? "nhwc" : "nchw", cl, p.nvalues);
	if (p.has_train)
		printf("  train program: %d steps; eval program: %d steps\n", p.train.nsteps, p.eval.nsteps);
	int kernels[2] = {p.has_train ? exec_kernel_count(&p.train) : 0, exec_kernel_count(&p.eval)};
	if (!p.has_train)
		printf("  eval program: %d steps (no training program: the model has no scalar loss output)\n", p.eval.nsteps);
	printf("  cpu kernels per run (a backward group counts once, a cast its statistics read through none): train %d, eval %d\n",
		kernels[0], kernels[1]);
	int dnnl, im2col;
	const char *impl;
	exec_conv_kinds(&p, threads, &dnnl, &im2col, &impl);
	if (dnnl + im2col)
		printf("  cpu convolution passes with %d threads: %d through oneDNN%s%s%s, %d through im2col\n", threads, dnnl,
			impl ? " (" : "", impl ? impl : "", impl ? ")" : "", im2col);
	for (int g = 0; g < 2; g++) {
		int raw, widened;
		exec_f16_kinds(&p, g ? &p.eval : &p.train, &raw, &widened);
		if (raw + widened && (g || p.has_train))
			printf("  cpu %s steps with fp16 values: %d convert them in their kernels, %d take f32 copies\n",
				g ? "eval" : "train", raw, widened);
	}
	int lib[2], own[2];
	if (backend_gpu_launches(&p, 0, &lib[0], &own[0]) && backend_gpu_launches(&p, 1, &lib[1], &own[1]))
		printf("  GPU launches per run (multi-tensor updates and checks as one): train %d (%d cuDNN/cuBLAS calls, %d "
		       "nnc kernels), eval %d (%d, %d)\n",
			lib[0] + own[0], lib[0], own[0], lib[1] + own[1], lib[1], own[1]);
	for (int g = 0; g < 2; g++) {
		const PlanProgram *prog = g ? &p.eval : &p.train;
		if (!g && !p.has_train)
			continue;
		double flops = 0, bytes = 0;
		plan_program_cost(&p, prog, &flops, &bytes);
		printf("  %s run: %.2f GFLOP in convolutions and dense layers, %.1f MB moved by its kernels (each operand\n"
		       "    read and each result written once)\n",
			g ? "eval" : "train", flops / 1e9, bytes / 1e6);
	}
	printf("  recipe:\n");
	recipe_print(stdout, &p.recipe, "    ");
	int rc = o->s.backend.device && !strcmp(o->s.backend.device, "cuda") ? info_gpu(o, &p) : 0;
	arena_free(&a);
	return rc;
}

/* Fault injection for the tests (NNC_FAULT=NAME:EPOCH): the process dies at once, as kill -9
 * would, at point NAME of epoch EPOCH (1-based) of a training session (runtime/session.h). */
static void
fault_point(const char *name, int epoch)
{
	const char *f = getenv("NNC_FAULT");
	size_t n = strlen(name);
	if (f && strncmp(f, name, n) == 0 && f[n] == ':' && atoi(f + n + 1) == epoch)
		_exit(137);
}

/* The input normalization WEIGHTS were trained with (recorded in checkpoints and exports): eval
 * and compare (NORM_ADOPT) normalize as the training did, unless --set normalize.* says
 * otherwise, and say so when it differs from the plan's; export (NORM_KEEP) records it silently;
 * train --weights (NORM_NOTE) keeps the plan's recipe and notes the difference. Files without
 * the record (older ones, PyTorch's) use the plan's. */
enum { NORM_NOTE, NORM_ADOPT, NORM_KEEP };
static bool
weights_normalize(const Opts *o, Plan *p, const char *weights, int mode)
{
	Recipe r = p->recipe;
	bool has;
	char err[2048], now[2][128], was[2][128];
	if (!weights_normalization(weights, &r, &has, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return false;
	}
	for (int i = 0; i < o->nsets; i++)
		if (!strncmp(o->sets[i], "normalize.", 10))
			return true;
	static const char *const keys[2] = {"normalize.mean", "normalize.std"};
	for (int k = 0; k < 2; k++) {
		recipe_value(&p->recipe, keys[k], now[k], sizeof now[k]);
		recipe_value(&r, keys[k], was[k], sizeof was[k]);
	}
	if (!has || (!strcmp(now[0], was[0]) && !strcmp(now[1], was[1])))
		return true;
	if (mode != NORM_NOTE) {
		if (mode == NORM_ADOPT)
			fprintf(stderr, "nnrun: note: inputs normalized as %s was trained: mean %s, std %s (the plan's: mean %s, std %s)\n",
				weights, was[0], was[1], now[0], now[1]);
		memcpy(p->recipe.norm_mean, r.norm_mean, sizeof r.norm_mean);
		memcpy(p->recipe.norm_std, r.norm_std, sizeof r.norm_std);
	} else {
		fprintf(stderr, "nnrun: note: %s was trained with inputs normalized by mean %s, std %s; this run uses the plan's, "
		                "mean %s, std %s (--set normalize.mean=... to change)\n",
			weights, was[0], was[1], now[0], now[1]);
	}
	return true;
}

/* nnrun train --resume: the run continues as the checkpoint's run went, with its recipe (the
 * settings read at run time; the plan fixes the others) and its data options, unless this
 * command line sets one, which is then said. A checkpoint from before these were recorded
 * resumes with this command line's settings, as before. */
static bool
resume_options(Opts *o, Plan *p)
{
	RunOptions ro;
	char err[2048];
	if (!weights_run_options(o->s.resume, &ro, err, sizeof err) || !ro.has)
		return true; /* weights_load reports an unreadable checkpoint */
	static const char *const fixed[] = {"optimizer", "batch", "decay_bn_and_bias", "shift_lr_scale"};
	for (char *line = strtok(ro.recipe, "\n"); line; line = strtok(NULL, "\n")) {
		char *colon = strstr(line, ": ");
		if (!colon)
			continue;
		*colon = 0;
		const char *key = line, *was = colon + 2;
		bool skip = false, set = false;
		for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
			skip |= !strcmp(key, fixed[i]);
		for (int i = 0; i < o->nsets; i++)
			set |= !strncmp(o->sets[i], key, strlen(key)) && o->sets[i][strlen(key)] == '=';
		char now[256];
		recipe_value(&p->recipe, key, now, sizeof now);
		if (skip || !strcmp(now, was))
			continue;
		if (set)
			fprintf(stderr, "nnrun: note: resuming with %s: %s (set here); the checkpoint's run had %s\n", key, now, was);
		else if (!recipe_set(&p->recipe, key, was, err, sizeof err)) {
			fprintf(stderr, "%s: %s\n", o->s.resume, err);
			return false;
		}
	}
	int *mine[3] = {&o->s.train_limit, &o->s.test_limit, &o->s.records};
	const int theirs[3] = {ro.train_limit, ro.test_limit, ro.records};
	static const char *const flag[3] = {"--train-limit", "--test-limit", "--records-per-file"};
	for (int i = 0; i < 3; i++) {
		if (*mine[i] == 0)
			*mine[i] = theirs[i];
		else if (*mine[i] != theirs[i])
			fprintf(stderr, "nnrun: note: resuming with %s %d; the checkpoint's run had %d (0: all)\n", flag[i],
				*mine[i], theirs[i]);
	}
	if (!recipe_check(&p->recipe, err, sizeof err)) {
		fprintf(stderr, "nnrun: %s\n", err);
		return false;
	}
	return true;
}

/* nnrun eval --logits OUT: the evaluation program run on the CPU over the first test images (no
 * test-time augmentation: the network's own output), written with the images as it read them
 * and their labels, for checking other implementations of the model (tests/onnx.sh). */
static int
eval_logits(const Opts *o, const Plan *p)
{
	char err[2048] = "";
	if (!o->s.weights || !o->s.data)
		return usage_error("eval needs --weights FILE and --data DIR%s", "");
	if (!session_cifar_fits(p, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", o->s.plan_path, err);
		return EXIT_USER;
	}
	CifarData data;
	CifarOpenOptions oo = {.max_train = p->batch, .max_test = o->s.test_limit, .records_per_file = o->s.records};
	if (cifar_open(&data, o->s.data, &oo, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USER;
	}
	int n = data.n[CIFAR_TEST], k = (int)p->values[p->eval.logits].dim[1], rc = EXIT_USER;
	CifarConfig cfg;
	cifar_config_recipe(&cfg, &p->recipe, p->batch, false);
	CifarLoader ld;
	Exec e;
	RunState rs;
	float *x = malloc((size_t)n * CIFAR_IMAGE_BYTES * sizeof *x), *z = malloc((size_t)n * k * sizeof *z);
	int32_t *y = malloc((size_t)n * sizeof *y), *yb = malloc((size_t)p->batch * sizeof *yb);
	if (!x || !z || !y || !yb || cifar_loader_init(&ld, &data, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "nnrun: %s\n", err[0] ? err : "out of memory");
		goto out;
	}
	bool made = exec_init(&e, p, o->s.threads, err, sizeof err);
	bool ok = made && weights_load(&e, o->s.weights, false, &rs, err, sizeof err);
	float *in = ok ? exec_f32(&e, p->inputs[0].value) : NULL;
	for (int first = 0; ok && first < n; first += p->batch) {
		int32_t valid = cifar_eval_batch(&ld, CIFAR_TEST, first, in, yb);
		if (p->inputs[1].value >= 0)
			for (int32_t i = 0; i < p->batch; i++)
				exec_i32(&e, p->inputs[1].value)[i] = i < valid ? yb[i] : 0;
		if (!(ok = exec_run(&e, &p->eval, err, sizeof err)))
			break;
		memcpy(x + (size_t)first * CIFAR_IMAGE_BYTES, in, (size_t)valid * CIFAR_IMAGE_BYTES * sizeof *x);
		memcpy(z + (size_t)first * k, exec_view_f32(&e, p->eval.logits), (size_t)valid * k * sizeof *z);
		memcpy(y + first, yb, (size_t)valid * sizeof *y);
	}
	if (ok) {
		const int64_t dx[4] = {n, CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE}, dy[1] = {n}, dz[2] = {n, k};
		StTensor t[3] = {{.name = "input", .dtype = ST_F32, .rank = 4, .dims = dx, .data = x},
			{.name = "label", .dtype = ST_I32, .rank = 1, .dims = dy, .data = y},
			{.name = "logits", .dtype = ST_F32, .rank = 2, .dims = dz, .data = z}};
		ok = st_write(o->logits, t, 3, NULL, 0, err, sizeof err) == 0;
		if (ok) {
			printf("wrote the logits of %d test images to %s\n", n, o->logits);
			rc = 0;
		}
	}
	if (!ok)
		fprintf(stderr, "nnrun: %s\n", err);
	if (made)
		exec_free(&e);
	cifar_loader_free(&ld);
out:
	free(x);
	free(y);
	free(z);
	free(yb);
	cifar_close(&data);
	return rc;
}

/* train, eval and bench: a session (runtime/session.c) on the loaded plan. */
static int
cmd_session(Opts *o)
{
	Arena a = {0};
	Plan p;
	bool train = !strcmp(o->cmd, "train");
	if (!load_plan(o, &p, &a) || (train && o->s.resume && !resume_options(o, &p)) ||
	    (!o->s.resume && o->s.weights && !weights_normalize(o, &p, o->s.weights, train ? NORM_NOTE : NORM_ADOPT))) {
		arena_free(&a);
		return EXIT_USER;
	}
	int rc;
	if (!strcmp(o->cmd, "train")) {
		struct sigaction sa = {.sa_handler = on_sigint};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		rc = (int)session_train(&p, &o->s);
	} else if (!strcmp(o->cmd, "eval")) {
		rc = o->logits ? eval_logits(o, &p) : (int)session_eval(&p, &o->s);
	} else {
		rc = (int)session_bench(&p, &o->s, o->s.max_steps ? o->s.max_steps : 20);
	}
	arena_free(&a);
	return rc;
}

static int
cmd_export(const Opts *o)
{
	char err[2048];
	Arena a = {0};
	Plan p;
	int rc = EXIT_USER;
	if (!o->s.weights || !o->output)
		return usage_error("export needs --weights CKPT and -o OUT.safetensors (or OUT.onnx)%s", "");
	bool onnx = o->format ? !strcmp(o->format, "onnx") : file_has_suffix(o->output, ".onnx");
	if (!load_plan(o, &p, &a) || !weights_normalize(o, &p, o->s.weights, NORM_KEEP))
		goto out;
	Exec e;
	RunState rs;
	if (!exec_init(&e, &p, 1, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", o->s.plan_path, err);
		goto out;
	}
	if (weights_load(&e, o->s.weights, false, &rs, err, sizeof err) &&
	    (onnx ? onnx_export(&e, o->output, err, sizeof err) : weights_export(&e, o->output, err, sizeof err)))
		rc = 0;
	else
		fprintf(stderr, "%s\n", err);
	exec_free(&e);
out:
	arena_free(&a);
	return rc;
}

/* nnrun import-weights PLAN SRC -o OUT [--rules R]: runtime/import.h. */
static int
cmd_import(const Opts *o)
{
	if (!o->plan_b || !o->output)
		return usage_error("import-weights needs PLAN SRC.safetensors -o OUT.safetensors%s", "");
	Arena a = {0};
	Plan p;
	int rc = EXIT_USER;
	static char err[65536];
	if (load_plan(o, &p, &a)) {
		if (weights_import(&p, o->plan_b, o->rules, o->output, stdout, err, sizeof err))
			rc = 0;
		else
			fprintf(stderr, "%s\nnothing written\n", err);
	}
	arena_free(&a);
	return rc;
}

/* Copies input tensor NAME (dtype DT, the value's shape) from F into the executor. */
static bool
load_input(Exec *e, StFile *f, const PlanInput *in, StDtype dt, char *err, size_t errlen)
{
	const Type *ty = &e->plan->values[in->value];
	const StTensor *t = st_find(f, in->name);
	bool ok = t && t->dtype == dt && t->rank == ty->rank;
	for (int k = 0; ok && k < ty->rank; k++)
		ok = t->dims[k] == ty->dim[k];
	if (!ok) {
		char b[96];
		snprintf(err, errlen, "%s: needs tensor '%s' of shape %s", st_file_path(f), in->name, type_str(ty, b, sizeof b));
		return false;
	}
	memcpy(exec_f32(e, in->value), t->data, (size_t)t->nbytes);
	return true;
}

static int
cmd_step(const Opts *o)
{
	char err[2048];
	Arena a = {0};
	Plan p;
	int rc = EXIT_USER;
	if (!o->s.weights || !o->input || !o->output)
		return usage_error("step needs --weights W, --input BATCH.safetensors and -o OUT.safetensors%s", "");
	if (!load_plan(o, &p, &a))
		goto out;
	if (!p.has_train) {
		fprintf(stderr, "%s: error: the plan has no training program\n", o->s.plan_path);
		goto out;
	}
	Exec e;
	RunState rs;
	if (!exec_init(&e, &p, o->s.threads, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", o->s.plan_path, err);
		goto out;
	}
	StFile *in = NULL;
	StTensor *t = calloc((size_t)(3 * p.nparams + 4), sizeof *t);
	float *saved = NULL;
	size_t nsaved = 0;
	for (int i = 0; i < p.train.nsteps; i++)
		if (p.train.steps[i].op == OP_sgd_update || p.train.steps[i].op == OP_adam_update)
			nsaved += (size_t)type_numel(&p.values[p.train.steps[i].in[1]]);
	nsaved += (size_t)type_numel(&p.values[p.train.logits]) + 1;
	saved = malloc(nsaved * sizeof *saved);
	if (!t || !saved || !weights_load(&e, o->s.weights, false, &rs, err, sizeof err) ||
	    st_open(o->input, &in, err, sizeof err) != 0 || !load_input(&e, in, &p.inputs[0], ST_F32, err, sizeof err) ||
	    !load_input(&e, in, &p.inputs[1], ST_I32, err, sizeof err)) {
		fprintf(stderr, "%s\n", t && saved ? err : "out of memory");
		goto done;
	}
	long steps = o->s.max_steps ? o->s.max_steps : 1;
	size_t nt = 0, at = 0;
	e.step = o->optimizer_step;
	for (long s = 0; s < steps; s++) {
		e.lr = p.recipe.lr;
		double scale = e.loss_scale; /* gradients are reported unscaled */
		if (!exec_run(&e, &p.train, err, sizeof err)) {
			fprintf(stderr, "nnrun: error: %s\n", err);
			goto done;
		}
		if (s > 0)
			continue;
		/* After the first step: the loss, the logits and every gradient, copied before they change. */
		static const int64_t scalar_dims[1];
		saved[at] = *exec_view_f32(&e, p.train.loss);
		t[nt++] = (StTensor){.name = "loss", .dtype = ST_F32, .rank = 0, .dims = scalar_dims, .data = &saved[at++]};
		const Type *lt = &p.values[p.train.logits];
		memcpy(saved + at, exec_view_f32(&e, p.train.logits), (size_t)type_numel(lt) * sizeof *saved);
		t[nt++] = (StTensor){.name = "logits", .dtype = ST_F32, .rank = lt->rank, .dims = lt->dim, .data = saved + at};
		at += (size_t)type_numel(lt);
		for (int i = 0; i < p.train.nsteps; i++) {
			const PlanStep *u = &p.train.steps[i];
			if (u->op != OP_sgd_update && u->op != OP_adam_update)
				continue;
			const Type *gt = &p.values[u->in[1]];
			const char *name = "?";
			for (int k = 0; k < p.nparams; k++)
				if (p.params[k].value == u->in[0])
					name = p.params[k].name;
			Type g32 = *gt; /* widened by the view; in PyTorch's layout */
			g32.dtype = DT_F32;
			exec_copy_torch(&g32, exec_view_f32(&e, u->in[1]), saved + at, true);
			for (int64_t j = 0; scale != 1 && j < type_numel(gt); j++)
				saved[at + (size_t)j] = (float)(saved[at + (size_t)j] / scale);
			t[nt++] = (StTensor){.name = arena_printf(&a, "grad.%s", name), .dtype = ST_F32, .rank = gt->rank,
				.dims = gt->dim, .data = saved + at};
			at += (size_t)type_numel(gt);
		}
	}
	size_t np;
	void *owned = NULL;
	StTensor *params = weights_tensors(&e, true, &np, &owned);
	if (!params) {
		fprintf(stderr, "out of memory\n");
		goto done;
	}
	memcpy(t + nt, params, np * sizeof *params);
	nt += np;
	if (st_write(o->output, t, nt, NULL, 0, err, sizeof err) == 0)
		rc = 0;
	else
		fprintf(stderr, "%s\n", err);
	free(params);
	free(owned);
done:
	if (in)
		st_close(in);
	free(t);
	free(saved);
	exec_free(&e);
out:
	arena_free(&a);
	return rc;
}

/* The tolerance analysis of Lemma 3.3 (runtime/tolerance.h) of two plans with the same weights,
 * on the test set or, with --holdout N, on the last N training images (the slice nnc
 * tune-precision measures on). A disagreement despite Gamma >= 2 delta would be a bug, and
 * fails the command. */
static int
cmd_compare(const Opts *o)
{
	char err[2048];
	Arena a = {0};
	Plan pa, pb;
	int rc = EXIT_USER;
	if (!o->plan_b || !o->s.weights || !o->s.data)
		return usage_error("compare needs two plans, --weights W and --data DIR%s", "");
	Opts ob = *o;
	ob.s.plan_path = o->plan_b;
	if (!load_plan(o, &pa, &a) || !load_plan(&ob, &pb, &a) || !weights_normalize(o, &pa, o->s.weights, NORM_ADOPT) ||
	    !weights_normalize(o, &pb, o->s.weights, NORM_KEEP))
		goto out;
	const Plan *plans[2] = {&pa, &pb};
	for (int i = 0; i < 2; i++)
		if (!session_cifar_fits(plans[i], err, sizeof err)) {
			fprintf(stderr, "%s: error: %s\n", i ? o->plan_b : o->s.plan_path, err);
			goto out;
		}
	char ida[256], idb[256];
	if (strcmp(weights_plan_identity(&pa, ida, sizeof ida), weights_plan_identity(&pb, idb, sizeof idb)) != 0) {
		fprintf(stderr, "nnrun: %s and %s are not the same network (parameters differ)\n", o->s.plan_path, o->plan_b);
		goto out;
	}
	int k = (int)pa.values[pa.eval.logits].dim[1];
	CifarData data;
	int maxb = pa.batch > pb.batch ? pa.batch : pb.batch;
	/* The loader needs a training set at least one batch long; --holdout reads the whole of it
	 * (or its first --train-limit images). */
	CifarOpenOptions oo = {.max_train = o->holdout ? o->s.train_limit : maxb, .max_test = o->s.test_limit,
		.records_per_file = o->s.records};
	if (cifar_open(&data, o->s.data, &oo, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	TolSlice slice = {CIFAR_TEST, 0, data.n[CIFAR_TEST]};
	if (o->holdout)
		slice = (TolSlice){CIFAR_TRAIN, data.n[CIFAR_TRAIN] - o->holdout, o->holdout};
	if (!tol_slice_fits(&data, slice, err, sizeof err)) {
		fprintf(stderr, "nnrun: --holdout %ld: %s\n", o->holdout, err);
		cifar_close(&data);
		goto out;
	}
	int64_t n = slice.count;
	double *prob[2] = {malloc((size_t)n * k * sizeof(double)), malloc((size_t)n * k * sizeof(double))};
	int32_t *labels = malloc((size_t)n * sizeof *labels);
	bool ok = prob[0] && prob[1] && labels;
	err[0] = 0;
	for (int w = 0; ok && w < 2; w++)
		ok = tol_probs(plans[w], o->s.weights, &data, slice, &o->s.backend, o->s.threads, prob[w], w ? NULL : labels,
			NULL, 0, err, sizeof err);
	if (!ok) {
		fprintf(stderr, "nnrun: %s\n", err[0] ? err : "out of memory");
		goto done;
	}
	FILE *csv = o->csv ? fopen(o->csv, "w") : NULL;
	if (o->csv && !csv) {
		fprintf(stderr, "%s: error: cannot write: %s\n", o->csv, strerror(errno));
		goto done;
	}
	if (csv)
		fprintf(csv, "image,label,pred_a,pred_b,gamma,delta,guaranteed\n");
	TolSummary sum = {0};
	for (int64_t i = 0; i < n; i++) {
		TolImage t = tol_image(prob[0] + i * k, prob[1] + i * k, k);
		tol_add(&sum, &t, labels[i]);
		if (csv)
			fprintf(csv, "%lld,%d,%d,%d,%.9g,%.9g,%d\n", (long long)(slice.first + i), labels[i], t.pred_a, t.pred_b,
				t.gamma, t.delta, t.guaranteed);
	}
	if (csv && fclose(csv) != 0) {
		fprintf(stderr, "%s: error: cannot write: %s\n", o->csv, strerror(errno));
		goto done;
	}
	if (o->holdout)
		printf("compare %s (A) with %s (B) on the last %lld training images (held out), same weights (%s)\n",
			o->s.plan_path, o->plan_b, (long long)n, o->s.weights);
	else
		printf("compare %s (A) with %s (B) on %lld test images, same weights (%s)\n", o->s.plan_path, o->plan_b,
			(long long)n, o->s.weights);
	printf("  accuracy A %.2f%%, B %.2f%%; largest delta %.3g\n", 100.0 * sum.correct_a / n, 100.0 * sum.correct_b / n,
		sum.max_delta);
	if (sum.nonfinite_a || sum.nonfinite_b)
		printf("  images with NaN or Inf outputs: A %ld, B %ld (run `nnrun eval --check-numerics` to find the op)\n",
			sum.nonfinite_a, sum.nonfinite_b);
	printf("  Gamma >= 2 delta (same class guaranteed): %ld (%.2f%%)\n", sum.guaranteed, 100.0 * sum.guaranteed / n);
	printf("  predictions agree: %ld (%.2f%%), disagree: %lld\n", sum.agree, 100.0 * sum.agree / n,
		(long long)n - sum.agree);
	printf("  disagree despite Gamma >= 2 delta: %ld%s\n", sum.impossible,
		sum.impossible ? "  <-- impossible by Lemma 3.3: a bug" : "");
	rc = sum.impossible ? EXIT_USER : 0;
done:
	free(prob[0]);
	free(prob[1]);
	free(labels);
	cifar_close(&data);
out:
	arena_free(&a);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		print_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	Opts o = {.cmd = argv[1], .s = {.interrupted = &interrupted, .fault = fault_point, .log = stderr}};
	int rc = parse_opts(&o, argc, argv);
	if (rc >= 0)
		return rc;
	if (!strcmp(o.cmd, "info"))
		return cmd_info(&o);
	if (!strcmp(o.cmd, "train") || !strcmp(o.cmd, "eval") || !strcmp(o.cmd, "bench"))
		return cmd_session(&o);
	if (!strcmp(o.cmd, "export"))
		return cmd_export(&o);
	if (!strcmp(o.cmd, "step"))
		return cmd_step(&o);
	if (!strcmp(o.cmd, "import-weights"))
		return cmd_import(&o);
	if (!strcmp(o.cmd, "compare"))
		return cmd_compare(&o);
	fprintf(stderr, "nnrun: unknown command '%s'\n\n", o.cmd);
	print_usage(stderr);
	return EXIT_USAGE;
}
