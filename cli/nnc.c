/* nnc: the compiler driver. Parses options, runs the pass pipeline on one .nn file and maps the
 * outcome to exit codes: 0 success, 1 errors in the model or its files, 2 bad usage, 3 internal
 * compiler error. Only this file exits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/irprint.h"
#include "compiler/lower.h"
#include "compiler/stats.h"
#include "cli/tune.h"
#include "core/num.h"
#include "passes/pipeline.h"

#include "runtime/backend.h"

#define NNC_VERSION "0.1.0"

static const char usage_main[] =
	"usage: nnc COMMAND [options] FILE.nn\n"
	"\n"
	"Compiles neural networks written in the .nn language.\n"
	"\n"
	"commands:\n"
	"  check     parse and type-check a model; report every error\n"
	"  compile   run the whole pass pipeline (dump the IR after any pass)\n"
	"  stats     per-layer table: output shape, parameters, MACs, activation bytes\n"
	"  tune-precision\n"
	"            which layers of a trained network can stay in pure fp16 under a budget on\n"
	"            its predictions: writes a policy file for compile --precision\n"
	"  passes    list the passes of the pipeline\n"
	"  ops       list the ops callable from .nn files, with their arguments\n"
	"  version   print the version and the backends built in\n"
	"  help      show this help, or `nnc help COMMAND`\n"
	"\n"
	"Run `nnc COMMAND --help` for the options of a command.\n";

static const char usage_common[] =
	"  -b, --batch N        batch size of the graph (default 128)\n"
	"  -m, --model NAME     the model to build when the file defines several\n"
	"  -I DIR               also search DIR for imports\n"
	"  -h, --help           show this help\n";

static const char usage_check[] = "usage: nnc check [options] FILE.nn\n\nParses and type-checks FILE; prints nothing on success.\n\noptions:\n";
static const char usage_compile[] =
	"usage: nnc compile [options] FILE.nn\n\nRuns every pass on FILE, verifying the IR after each.\n\noptions:\n"
	"  -o FILE.plan                   write the execution plan for nnrun\n"
	"  --no-reuse                     give every value its own memory (no memory reuse)\n"
	"  --no-fuse                      no fusion: every op its own kernel, no batch-norm folding\n"
	"  --layout nchw|nhwc|auto        memory order of images and filters (default auto)\n"
	"  --recipe R.yaml                training settings (optimizer, schedule, epochs...)\n"
	"  --precision fp32|fp16|mixed|POLICY.yaml\n"
	"                                 storage and accumulation dtypes (default fp32)\n"
	"  --set KEY=VALUE                override one recipe setting (repeatable)\n"
	"  --dump-ir=PASS[,PASS...]|all   print the IR after these passes to stdout\n"
	"  --dump-dir DIR                 write the IR after every pass to DIR/NN-PASS.ir\n"
	"  --dump-dot FILE                write the final graph in Graphviz dot form to FILE\n";
static const char usage_tune[] =
	"usage: nnc tune-precision [options] FILE.nn --weights W --data DIR -o POLICY.yaml\n\n"
	"Starting from pure fp16, keeps in f32 the fewest layers (by their share of the work) that\n"
	"hold the budget on held-out training images, measured against the f32 plan with the same\n"
	"weights (Lemma 3.3 of arXiv 2305.10947: delta = max |p32 - p16|, Gamma = top-1 - top-2 of\n"
	"p32; an image with Gamma < 2 delta is a violation: its class is no longer guaranteed).\n\n"
	"options:\n"
	"  -o POLICY.yaml                 the policy to write (base fp16 with layers: overrides)\n"
	"  --weights FILE                 trained weights: a checkpoint or .safetensors\n"
	"  --data DIR                     CIFAR-10 binary files\n"
	"  --budget KEY=VALUE[,...]       limits, any of: delta=X (largest delta), violations=N|P%,\n"
	"                                 flips=N|P% (changed predictions), drop=X (accuracy,\n"
	"                                 percentage points); repeatable (default violations=1%)\n"
	"  --confidence C                 a percentage limit must hold for the rate's upper\n"
	"                                 confidence bound at level C (default 0.95; 0: the count\n"
	"                                 seen on the held-out images is enough)\n"
	"  --holdout N                    measure on the last N training images (default 1000)\n"
	"  --train-limit T                of the first T (default: all 50,000)\n"
	"  --report FILE.csv              per-layer sensitivity, cost and result\n"
	"                                 (tools/plot_tune.py draws it)\n"
	"  --precision fp16|POLICY.yaml   the pure-fp16 policy to start from (default fp16)\n"
	"  --device cpu|cuda              where the plans run (default: a usable GPU, else the CPU)\n"
	"  --threads N                    CPU worker threads (default: all cores)\n"
	"  --records-per-file N           CIFAR-10 files of N images each (a subset, as nnrun's)\n"
	"  --verbose                      every measurement on stderr\n"
	"  --layout nchw|nhwc|auto, --no-fuse, --recipe R.yaml, --set KEY=VALUE: as for compile\n";
static const char usage_stats[] =
	"usage: nnc stats [options] FILE.nn\n\nPrints a per-layer table and totals.\n\noptions:\n"
	"  --yaml               print the statistics as YAML\n";

typedef struct {
	const char *cmd;
	const char *file;
	SemaOpts so;
	PipelineOpts po;
	const char *dump_dot;
	const char *output;
	bool yaml;
	const char *incdirs[64];
	Recipe recipe;
	Precision precision;
	Arena *arena;
	bool batch_given;
	TuneOptions tune;
	bool budget_given;
} Options;

static int
usage_error(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "nnc %s: ", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry `nnc %s --help`.\n", cmd);
	return NNC_EUSAGE;
}

static void
print_usage(FILE *out, const char *cmd)
{
	if (strcmp(cmd, "check") == 0)
		fprintf(out, "%s%s", usage_check, usage_common);
	else if (strcmp(cmd, "compile") == 0)
		fprintf(out, "%s%s", usage_compile, usage_common);
	else if (strcmp(cmd, "stats") == 0)
		fprintf(out, "%s%s", usage_stats, usage_common);
	else if (strcmp(cmd, "tune-precision") == 0)
		fprintf(out, "%s%s", usage_tune, usage_common);
	else
		fputs(usage_main, out);
}

/* Matches option LONGNAME (or SHORTNAME) at argv[*i], as "--opt VALUE" or "--opt=VALUE".
 * Returns 1 and sets *val on a match, 0 if argv[*i] is another option, -1 if the value is missing. */
static int
take(Options *o, int argc, char **argv, int *i, const char **val, const char *longname, const char *shortname)
{
	const char *a = argv[*i];
	size_t n = strlen(longname);
	if (strcmp(a, longname) == 0 || (shortname && strcmp(a, shortname) == 0)) {
		if (*i + 1 >= argc) {
			usage_error(o->cmd, "%s needs a value", a);
			return -1;
		}
		*val = argv[++*i];
		return 1;
	}
	if (strncmp(a, longname, n) == 0 && a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	return 0;
}

/* Whether the command compiles plans: compile, and tune-precision (which compiles many). */
static bool
compiles(const Options *o)
{
	return strcmp(o->cmd, "compile") == 0 || strcmp(o->cmd, "tune-precision") == 0;
}

static bool
tuning(const Options *o)
{
	return strcmp(o->cmd, "tune-precision") == 0;
}

/* Matches one of tune-precision's whole-number options at argv[*i] (take's forms) and stores
 * its value: 1 done, 0 another option, -1 a missing or bad value (said). */
static int
take_int(Options *o, int argc, char **argv, int *i)
{
	const struct {
		const char *flag;
		long lo, hi;
		int *to;
	} opts[] = {{"--holdout", 1, 50000, &o->tune.holdout}, {"--train-limit", 1, 50000, &o->tune.train_limit},
		{"--records-per-file", 1, 10000, &o->tune.records}, {"--threads", 1, 256, &o->tune.threads}};
	for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
		const char *val;
		int t = take(o, argc, argv, i, &val, opts[k].flag, NULL);
		long v;
		if (t == 0)
			continue;
		if (t < 0)
			return -1;
		if (!num_parse(val, opts[k].lo, opts[k].hi, &v)) {
			char msg[128];
			snprintf(msg, sizeof msg, "%s needs a number from %ld to %ld, got '%%s'", opts[k].flag, opts[k].lo, opts[k].hi);
			usage_error(o->cmd, msg, val);
			return -1;
		}
		*opts[k].to = (int)v;
		return 1;
	}
	return 0;
}

/* Returns -1 to go on, or an exit code. */
static int
parse_args(Options *o, int argc, char **argv)
{
	recipe_defaults(&o->recipe);
	o->so.incdirs = o->incdirs;
	o->po.out = stdout;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		int t;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			print_usage(stdout, o->cmd);
			return 0;
		} else if ((t = take(o, argc, argv, &i, &val, "--batch", "-b"))) {
			if (t < 0)
				return NNC_EUSAGE;
			char *end;
			errno = 0;
			long b = strtol(val, &end, 10);
			if (*end || errno || b <= 0 || b > 1 << 20)
				return usage_error(o->cmd, "--batch must be an integer from 1 to 1048576, got '%s'", val);
			o->so.batch = (int)b;
			o->batch_given = true;
		} else if (compiles(o) && (t = take(o, argc, argv, &i, &val, "--output", "-o"))) {
			if (t < 0)
				return NNC_EUSAGE;
			o->output = val;
		} else if (compiles(o) && (t = take(o, argc, argv, &i, &val, "--precision", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			char err[1024];
			if (!precision_parse(val, &o->precision, o->arena, err, sizeof err)) {
				fprintf(stderr, "%s\n", err);
				return NNC_EUSER;
			}
			o->po.precision = &o->precision;
		} else if (compiles(o) && (t = take(o, argc, argv, &i, &val, "--layout", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			if (strcmp(val, "nchw") == 0)
				o->po.layout = LAYOUT_NCHW;
			else if (strcmp(val, "nhwc") == 0)
				o->po.layout = LAYOUT_NHWC;
			else if (strcmp(val, "auto") == 0)
				o->po.layout = LAYOUT_AUTO;
			else
				return usage_error(o->cmd, "--layout must be nchw, nhwc or auto, got '%s'", val);
		} else if (compiles(o) && (t = take(o, argc, argv, &i, &val, "--recipe", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			char err[1024];
			if (!recipe_load(&o->recipe, val, err, sizeof err)) {
				fprintf(stderr, "%s\n", err);
				return NNC_EUSER;
			}
		} else if (compiles(o) && (t = take(o, argc, argv, &i, &val, "--set", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			char err[1024], key[128];
			const char *eq = strchr(val, '=');
			if (!eq || eq == val || (size_t)(eq - val) >= sizeof key)
				return usage_error(o->cmd, "--set needs KEY=VALUE, got '%s'", val);
			snprintf(key, sizeof key, "%.*s", (int)(eq - val), val);
			if (!recipe_set(&o->recipe, key, eq + 1, err, sizeof err))
				return usage_error(o->cmd, "%s", err);
		} else if ((t = take(o, argc, argv, &i, &val, "--model", "-m"))) {
			if (t < 0)
				return NNC_EUSAGE;
			o->so.model = val;
		} else if ((t = take(o, argc, argv, &i, &val, "-I", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			if (o->so.nincdirs == 64)
				return usage_error(o->cmd, "too many -I directories%s", "");
			o->incdirs[o->so.nincdirs++] = val;
		} else if (strcmp(o->cmd, "compile") == 0 && (t = take(o, argc, argv, &i, &val, "--dump-ir", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			char err[512];
			if (!pipeline_check_dump_list(val, err, sizeof err))
				return usage_error(o->cmd, "%s", err);
			o->po.dump_ir = val;
		} else if (strcmp(o->cmd, "compile") == 0 && (t = take(o, argc, argv, &i, &val, "--dump-dir", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			o->po.dump_dir = val;
		} else if (strcmp(o->cmd, "compile") == 0 && (t = take(o, argc, argv, &i, &val, "--dump-dot", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			o->dump_dot = val;
		} else if (tuning(o) && (t = take(o, argc, argv, &i, &val, "--weights", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			o->tune.weights = val;
		} else if (tuning(o) && (t = take(o, argc, argv, &i, &val, "--data", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			o->tune.data = val;
		} else if (tuning(o) && (t = take(o, argc, argv, &i, &val, "--report", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			o->tune.report = val;
		} else if (tuning(o) && (t = take(o, argc, argv, &i, &val, "--budget", NULL))) {
			char err[512];
			if (t < 0)
				return NNC_EUSAGE;
			if (!tune_parse_budget(val, &o->tune.budget, err, sizeof err))
				return usage_error(o->cmd, "%s", err);
			o->budget_given = true;
		} else if (tuning(o) && (t = take_int(o, argc, argv, &i))) {
			if (t < 0)
				return NNC_EUSAGE;
		} else if (tuning(o) && (t = take(o, argc, argv, &i, &val, "--device", NULL))) {
			if (t < 0)
				return NNC_EUSAGE;
			if (strcmp(val, "cpu") != 0 && strcmp(val, "cuda") != 0)
				return usage_error(o->cmd, "--device must be cpu or cuda, got '%s'", val);
			o->tune.backend.device = val;
		} else if (tuning(o) && (t = take(o, argc, argv, &i, &val, "--confidence", NULL))) {
			char *end;
			if (t < 0)
				return NNC_EUSAGE;
			errno = 0;
			o->tune.confidence = strtod(val, &end);
			if (*end || errno || !(o->tune.confidence >= 0 && o->tune.confidence < 1))
				return usage_error(o->cmd, "--confidence needs a level from 0 to below 1 (0: the count seen), got '%s'",
					val);
		} else if (tuning(o) && strcmp(a, "--verbose") == 0) {
			o->tune.verbose = true;
		} else if (strcmp(a, "--no-reuse") == 0 && strcmp(o->cmd, "check") != 0) {
			o->po.no_reuse = true;
		} else if (strcmp(a, "--no-fuse") == 0 && strcmp(o->cmd, "check") != 0) {
			o->po.no_fuse = true;
		} else if (strcmp(o->cmd, "stats") == 0 && strcmp(a, "--yaml") == 0) {
			o->yaml = true;
		} else if (a[0] == '-' && a[1]) {
			return usage_error(o->cmd, "unknown option '%s'", a);
		} else if (o->file) {
			return usage_error(o->cmd, "more than one input file ('%s')", a);
		} else {
			o->file = a;
		}
	}
	if (!o->file)
		return usage_error(o->cmd, "no input file%s", "");
	if (tuning(o) && (!o->tune.weights || !o->tune.data || !o->output))
		return usage_error(o->cmd, "tune-precision needs --weights W, --data DIR and -o POLICY.yaml%s", "");
	o->so.path = o->file;
	if (o->batch_given)
		o->recipe.batch = o->so.batch;
	o->so.batch = o->recipe.batch;
	return -1;
}

/* The op reference, straight from the op table. */
static int
cmd_ops(void)
{
	for (int i = 0; i < NOP; i++) {
		const OpInfo *oi = &nnc_ops[i];
		if (!(oi->flags & OPF_USER))
			continue;
		printf("%s(", oi->name);
		if (oi->max_in < 0)
			printf("x1, x2, ...");
		else
			for (int k = 0; k < oi->max_in; k++)
				printf("%sx%d", k ? ", " : "", k + 1);
		for (int k = 0; k < oi->nattrs; k++) {
			const AttrSpec *a = &oi->attrs[k];
			printf(", %s", a->name);
			if (a->required)
				continue;
			switch (a->kind) {
			case AK_STR: printf("=\"%s\"", a->str); break;
			case AK_DTYPE: printf("=\"%s\"", dtype_name((DType)a->num)); break;
			case AK_BOOL: printf("=%s", a->num != 0 ? "true" : "false"); break;
			case AK_FLOAT: printf("=%g", a->num); break;
			default: printf("=%lld", (long long)a->num); break;
			}
		}
		printf(")\n");
	}
	return 0;
}

static int
cmd_version(void)
{
	char gpu[1200];
	printf("nnc %s\nbackends: cpu, %s\n", NNC_VERSION, backend_gpu_describe(gpu, sizeof gpu));
	return 0;
}

/* Writes the plan next to its final name and renames it into place, so a failed or
 * interrupted compile never leaves a truncated plan behind. */
static int
write_plan(const Module *m, const Options *o, Diag *d)
{
	Plan plan;
	if (!lower_module(m, o->file, &plan, d))
		return NNC_EINTERNAL;
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", o->output);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "%s: error: cannot write plan: %s\n", o->output, strerror(errno));
		return NNC_EUSAGE;
	}
	bool ok = plan_write(f, &plan);
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, o->output) != 0) {
		fprintf(stderr, "%s: error: cannot write plan: %s\n", o->output, strerror(errno));
		remove(tmp);
		return NNC_EUSAGE;
	}
	return NNC_OK;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return NNC_EUSAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		print_usage(stdout, argc > 2 ? argv[2] : "");
		return 0;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
		return cmd_version();
	if (strcmp(cmd, "ops") == 0)
		return cmd_ops();
	if (strcmp(cmd, "passes") == 0) {
		for (int i = 0; i < nnc_npasses; i++)
			printf("%-8s %s\n", nnc_passes[i].name, nnc_passes[i].doc);
		return 0;
	}
	if (strcmp(cmd, "check") != 0 && strcmp(cmd, "compile") != 0 && strcmp(cmd, "stats") != 0 &&
	    strcmp(cmd, "tune-precision") != 0) {
		fprintf(stderr, "nnc: unknown command '%s'\n\n%s", cmd, usage_main);
		return NNC_EUSAGE;
	}
	Arena arena = {0};
	Options o = {.cmd = cmd, .arena = &arena, .tune = {.holdout = 1000, .confidence = 0.95}};
	for (int k = 0; k < NBUDGET; k++)
		o.tune.budget.limit[k] = -1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	o.tune.threads = ncpu >= 1 && ncpu <= 256 ? (int)ncpu : 1;
	int rc = parse_args(&o, argc, argv);
	if (rc >= 0) {
		arena_free(&arena);
		return rc;
	}
	char rerr[256];
	if (!recipe_check(&o.recipe, rerr, sizeof rerr)) {
		fprintf(stderr, "nnc: error: %s\n", rerr);
		arena_free(&arena);
		return NNC_EUSER;
	}
	if (tuning(&o)) {
		char err[1024];
		if (!o.po.precision && !precision_parse("fp16", &o.precision, &arena, err, sizeof err)) {
			fprintf(stderr, "%s\n", err);
			arena_free(&arena);
			return NNC_EINTERNAL;
		}
		if (!o.budget_given) {
			o.tune.budget.limit[BUDGET_VIOLATIONS] = 1;
			o.tune.budget.pct[BUDGET_VIOLATIONS] = true;
		}
		/* the same measurement every time: only deterministic cuDNN algorithms on a GPU */
		o.tune.backend.deterministic = true;
		o.tune.model = o.file;
		o.tune.so = &o.so;
		o.tune.po = &o.po;
		o.tune.recipe = &o.recipe;
		o.tune.start = &o.precision;
		o.tune.output = o.output;
		rc = tune_precision(&o.tune);
		arena_free(&arena);
		return rc;
	}

	Diag diag;
	diag_init(&diag, stderr);
	Module m;
	rc = pipeline_run(&arena, &diag, &o.so, &o.po, &o.recipe, &m);
	/* Statistics describe the network (the inference graph), not the training step. */
	Graph *g = m.network ? m.network : m.eval ? m.eval : m.main;
	if (rc == NNC_OK && strcmp(cmd, "stats") == 0) {
		if (o.yaml) {
			if (!stats_print_yaml(stdout, g))
				rc = NNC_EINTERNAL;
		} else {
			stats_print(stdout, g);
			const Graph *gs[2] = {m.training ? m.main : NULL, m.eval ? m.eval : m.main};
			for (int i = 0; i < 2; i++)
				if (gs[i])
					printf("%-24s param %.2f MB, io %.2f MB, act %.2f MB (most alive at once %.2f MB, without reuse "
					       "%.2f MB)\n",
						i == 0 ? "memory, training step:" : "memory, inference:", gs[i]->arena_bytes[ARENA_PARAM] / 1e6,
						gs[i]->arena_bytes[ARENA_IO] / 1e6, gs[i]->arena_bytes[ARENA_ACT] / 1e6, gs[i]->live_peak / 1e6,
						gs[i]->naive_bytes / 1e6);
		}
	}
	if (rc == NNC_OK && o.dump_dot) {
		FILE *f = fopen(o.dump_dot, "w");
		if (!f) {
			fprintf(stderr, "%s: error: cannot write: %s\n", o.dump_dot, strerror(errno));
			rc = NNC_EUSAGE;
		} else {
			ir_print_dot(f, m.main);
			if (fclose(f) != 0) {
				fprintf(stderr, "%s: error: cannot write: %s\n", o.dump_dot, strerror(errno));
				rc = NNC_EUSAGE;
			}
		}
	}
	if (rc == NNC_OK && o.output)
		rc = write_plan(&m, &o, &diag);
	if (rc == NNC_OK && strcmp(cmd, "compile") == 0) {
		GraphTotals t = graph_totals(g), all = graph_totals(m.main);
		fprintf(stderr, "nnc: compiled model '%.*s': %d ops, %lld trainable parameters, %.1fM MACs per image",
			(int)strcspn(m.main->name, "."), m.main->name, t.nops, (long long)t.params, (double)t.macs / 1e6);
		if (m.training)
			fprintf(stderr, "; training step: %d ops", all.nops);
		fputc('\n', stderr);
	}
	if (rc == NNC_OK && fflush(stdout) != 0) {
		fprintf(stderr, "nnc: error writing output: %s\n", strerror(errno));
		rc = NNC_EUSAGE;
	}
	if (diag.nerrors && rc == NNC_OK)
		rc = NNC_EUSER;
	if (diag.nerrors > 0)
		fprintf(stderr, "%d error%s generated.\n", diag.nerrors, diag.nerrors == 1 ? "" : "s");
	arena_free(&arena);
	return rc;
}
