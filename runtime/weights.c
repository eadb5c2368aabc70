/* Checkpoints and weights of an Exec (runtime/weights.h). A checkpoint is a safetensors file
 * (runtime/checkpoint.c: SHA-256 over its payload, the plan's identity, RNG and data order)
 * whose metadata also holds the run state "run.*" (the epoch's sums in C99 hex floats, so a
 * resumed epoch's metrics are bit-identical). */
#include "runtime/weights.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "runtime/checkpoint.h"
#include "core/half.h"

const char *
weights_plan_identity(const Plan *p, char *buf, size_t n)
{
	uint64_t h = PLAN_HASH_INIT;
	for (int i = 0; i < p->nparams; i++) {
		const Type *t = &p->values[p->params[i].value];
		h = plan_hash(h, p->params[i].name, strlen(p->params[i].name) + 1);
		h = plan_hash(h, t->dim, (size_t)t->rank * sizeof t->dim[0]);
	}
	snprintf(buf, n, "%s/%016" PRIx64, p->model, h);
	return buf;
}

StTensor *
weights_tensors(const Exec *e, bool all, size_t *n, void **owned)
{
	const Plan *p = e->plan;
	size_t bytes = 0;
	for (int i = 0; i < p->nparams; i++) {
		const Type *ty = &p->values[p->params[i].value];
		if (type_channels_last(ty))
			bytes += (size_t)type_numel(ty) * dtype_size(ty->dtype);
	}
	StTensor *t = calloc((size_t)p->nparams + 1, sizeof *t);
	unsigned char *copies = bytes ? malloc(bytes) : NULL;
	*owned = copies;
	if (!t || (bytes && !copies)) {
		free(t);
		free(copies);
		*owned = NULL;
		return NULL;
	}
	int k = 0;
	for (int i = 0; i < p->nparams; i++) {
		if (!all && !strncmp(p->params[i].name, "optim.", 6))
			continue;
		const Type *ty = &p->values[p->params[i].value];
		const void *data = exec_f32(e, p->params[i].value);
		if (type_channels_last(ty)) {
			exec_copy_torch(ty, data, copies, true);
			data = copies;
			copies += (size_t)type_numel(ty) * dtype_size(ty->dtype);
		}
		t[k++] = (StTensor){.name = p->params[i].name, .dtype = ty->dtype == DT_F16 ? ST_F16 : ST_F32,
			.rank = ty->rank, .dims = ty->dim, .data = data};
	}
	*n = (size_t)k;
	return t;
}

/* Puts every channels-last filter of E, just read in PyTorch's layout, into its own. */
static bool
from_torch(Exec *e, const char *path, char *err, size_t errlen)
{
	const Plan *p = e->plan;
	for (int i = 0; i < p->nparams; i++) {
		const Type *ty = &p->values[p->params[i].value];
		if (!type_channels_last(ty))
			continue;
		size_t bytes = (size_t)type_numel(ty) * dtype_size(ty->dtype);
		void *tmp = malloc(bytes), *v = exec_f32(e, p->params[i].value);
		if (!tmp) {
			snprintf(err, errlen, "%s: out of memory", path);
			return false;
		}
		memcpy(tmp, v, bytes);
		exec_copy_torch(ty, tmp, v, false);
		free(tmp);
	}
	return true;
}

bool
weights_save_checkpoint(const Exec *e, const char *path, const RunState *rs, char *err, size_t errlen)
{
	char id[256];
	size_t nt;
	void *owned;
	StTensor *t = weights_tensors(e, true, &nt, &owned);
	if (!t) {
		snprintf(err, errlen, "%s: out of memory", path);
		return false;
	}
	uint64_t rng[2] = {e->rng.key, e->rng.counter}, order[2] = {rs->epoch, rs->position};
	char sums[7][40];
	snprintf(sums[0], sizeof sums[0], "%a", rs->sums.loss_sum);
	snprintf(sums[1], sizeof sums[1], "%ld", rs->sums.correct);
	snprintf(sums[2], sizeof sums[2], "%ld", rs->sums.seen);
	snprintf(sums[3], sizeof sums[3], "%a", rs->seconds);
	snprintf(sums[4], sizeof sums[4], "%a", e->loss_scale);
	snprintf(sums[5], sizeof sums[5], "%ld", e->clean_steps);
	snprintf(sums[6], sizeof sums[6], "%ld", e->skipped_steps);
	char limits[3][24], recipe[4096] = "";
	snprintf(limits[0], sizeof limits[0], "%d", rs->train_limit);
	snprintf(limits[1], sizeof limits[1], "%d", rs->test_limit);
	snprintf(limits[2], sizeof limits[2], "%d", rs->records);
	FILE *rf = fmemopen(recipe, sizeof recipe - 1, "w");
	if (rf) {
		recipe_print(rf, &e->recipe, "");
		fclose(rf);
	}
	StMeta extra[11] = {{"run.loss_sum", sums[0]}, {"run.correct", sums[1]}, {"run.seen", sums[2]},
		{"run.seconds", sums[3]}, {"run.loss_scale", sums[4]}, {"run.clean_steps", sums[5]},
		{"run.skipped_steps", sums[6]}, {"run.recipe", recipe}, {"run.train_limit", limits[0]},
		{"run.test_limit", limits[1]}, {"run.records", limits[2]}};
	CkptInfo info = {.plan = weights_plan_identity(e->plan, id, sizeof id), .epoch = rs->epoch, .step = (uint64_t)e->step,
		.rng = rng, .nrng = 2, .data_order = order, .norder = 2, .extra = extra, .nextra = 11};
	int rc = ckpt_save(path, t, nt, &info, 0, err, errlen);
	free(t);
	free(owned);
	return rc == 0;
}

bool
weights_run_options(const char *path, RunOptions *ro, char *err, size_t errlen)
{
	*ro = (RunOptions){0};
	StFile *f;
	if (st_open(path, &f, err, errlen) != 0)
		return false;
	const char *r = st_meta_get(f, "run.recipe"), *a = st_meta_get(f, "run.train_limit"),
		   *b = st_meta_get(f, "run.test_limit"), *c = st_meta_get(f, "run.records");
	if (r && a && b && c && strlen(r) < sizeof ro->recipe) {
		ro->has = true;
		strcpy(ro->recipe, r);
		ro->train_limit = atoi(a);
		ro->test_limit = atoi(b);
		ro->records = atoi(c);
	}
	st_close(f);
	return true;
}

bool
weights_normalization(const char *path, Recipe *r, bool *has, char *err, size_t errlen)
{
	*has = false;
	StFile *f;
	if (st_open(path, &f, err, errlen) != 0)
		return false;
	static const char *const keys[2] = {"normalize.mean", "normalize.std"};
	char val[2][128] = {"", ""};
	const char *run = st_meta_get(f, "run.recipe"); /* a checkpoint: "key: value" lines */
	for (int i = 0; i < 2; i++) {
		char meta[32];
		snprintf(meta, sizeof meta, "nnc.%s", keys[i]);
		const char *v = st_meta_get(f, meta);
		size_t k = strlen(keys[i]);
		for (const char *l = run; !v && l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
			if (!strncmp(l, keys[i], k) && l[k] == ':' && l[k + 1] == ' ')
				v = l + k + 2;
		if (v)
			snprintf(val[i], sizeof val[i], "%.*s", (int)strcspn(v, "\n"), v);
	}
	bool ok = true;
	if (val[0][0] && val[1][0]) {
		char msg[512];
		ok = recipe_set(r, keys[0], val[0], msg, sizeof msg) && recipe_set(r, keys[1], val[1], msg, sizeof msg);
		if (!ok)
			snprintf(err, errlen, "%s: metadata: %s", path, msg);
		*has = ok;
	}
	st_close(f);
	return ok;
}

bool
weights_load(Exec *e, const char *path, bool resume, RunState *rs, char *err, size_t errlen)
{
	const Plan *p = e->plan;
	char id[256];
	if (resume || !file_has_suffix(path, ".safetensors")) {
		CkptExpect *ex = calloc((size_t)p->nparams + 1, sizeof *ex);
		if (!ex) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		for (int i = 0; i < p->nparams; i++) {
			const Type *t = &p->values[p->params[i].value];
			ex[i] = (CkptExpect){p->params[i].name, t->dtype == DT_F16 ? ST_F16 : ST_F32, t->rank, t->dim,
				exec_f32(e, p->params[i].value)};
		}
		Ckpt c = {0};
		int rc = ckpt_load(path, weights_plan_identity(p, id, sizeof id), ex, (size_t)p->nparams, &c, err, errlen);
		free(ex);
		if (rc != 0)
			return false;
		if (!from_torch(e, path, err, errlen)) {
			ckpt_close(&c);
			return false;
		}
		if (resume) {
			if (c.nrng != 2 || c.norder != 2) {
				snprintf(err, errlen, "%s: the checkpoint lacks the RNG or data-order state needed to resume", path);
				ckpt_close(&c);
				return false;
			}
			e->rng.key = c.rng[0];
			e->rng.counter = c.rng[1];
			e->step = (long)c.step;
			rs->epoch = c.data_order[0];
			rs->position = c.data_order[1];
			const char *v;
			if ((v = st_meta_get(c.file, "run.loss_sum")))
				rs->sums.loss_sum = strtod(v, NULL);
			if ((v = st_meta_get(c.file, "run.correct")))
				rs->sums.correct = strtol(v, NULL, 10);
			if ((v = st_meta_get(c.file, "run.seen")))
				rs->sums.seen = strtol(v, NULL, 10);
			if ((v = st_meta_get(c.file, "run.seconds")))
				rs->seconds = strtod(v, NULL);
			if ((v = st_meta_get(c.file, "run.loss_scale")))
				e->loss_scale = strtod(v, NULL);
			if ((v = st_meta_get(c.file, "run.clean_steps")))
				e->clean_steps = strtol(v, NULL, 10);
			if ((v = st_meta_get(c.file, "run.skipped_steps")))
				e->skipped_steps = strtol(v, NULL, 10);
		}
		ckpt_close(&c);
		return true;
	}
	StFile *f;
	if (st_open(path, &f, err, errlen) != 0)
		return false;
	/* Every problem at once: each missing tensor, then each one of another shape or dtype, the
	 * file's beside the model's; nothing is loaded unless all are right. */
	size_t at = (size_t)snprintf(err, errlen, "%s:", path);
	int missing = 0, wrong = 0;
	for (int i = 0; i < p->nparams; i++) {
		const PlanParam *q = &p->params[i];
		const StTensor *t = st_find(f, q->name);
		const Type *ty = &p->values[q->value];
		bool same = t && (t->dtype == ST_F32 || t->dtype == ST_F16) && t->rank == ty->rank;
		for (int k = 0; same && k < ty->rank; k++)
			same = t->dims[k] == ty->dim[k];
		if (same || (!t && strncmp(q->name, "optim.", 6) == 0))
			continue;
		char line[512], mine[96] = "", dims[96] = "";
		for (int k = 0, d = 0; k < ty->rank && d < (int)sizeof mine; k++)
			d += snprintf(mine + d, sizeof mine - (size_t)d, "%s%lld", k ? ", " : "", (long long)ty->dim[k]);
		if (!t) {
			snprintf(line, sizeof line, "%s no tensor '%s' (the model's [%s])", missing + wrong ? ";" : "", q->name, mine);
			missing++;
		} else {
			for (int k = 0, d = 0; k < t->rank && d < (int)sizeof dims; k++)
				d += snprintf(dims + d, sizeof dims - (size_t)d, "%s%lld", k ? ", " : "", (long long)t->dims[k]);
			snprintf(line, sizeof line, "%s tensor '%s' is %s [%s] in the file; the model needs F32 or F16 [%s]",
				missing + wrong ? ";" : "", q->name, st_dtype_name(t->dtype), dims, mine);
			wrong++;
		}
		if (at < errlen)
			at += (size_t)snprintf(err + at, errlen - at, "%s", line);
	}
	if (missing + wrong) {
		if (at >= errlen && errlen > 4)
			strcpy(err + errlen - 5, "...");
		st_close(f);
		return false;
	}
	int loaded = 0;
	for (int i = 0; i < p->nparams; i++) {
		const PlanParam *q = &p->params[i];
		const StTensor *t = st_find(f, q->name);
		if (!t)
			continue;
		const Type *ty = &p->values[q->value];
		/* Weights convert to the plan's storage dtype (f32 <-> f16, rounding to nearest even). */
		size_t n = (size_t)type_numel(ty);
		void *dst = exec_f32(e, q->value);
		if ((t->dtype == ST_F16) == (ty->dtype == DT_F16))
			memcpy(dst, t->data, (size_t)t->nbytes);
		else if (ty->dtype == DT_F16)
			half_from_float_n(t->data, dst, n);
		else
			half_to_float_n(t->data, dst, n);
		loaded++;
	}
	st_close(f);
	if (!e->plan->nparams || !loaded) {
		snprintf(err, errlen, "%s: no parameters loaded", path);
		return false;
	}
	return from_torch(e, path, err, errlen);
}

bool
weights_export(const Exec *e, const char *path, char *err, size_t errlen)
{
	size_t nt;
	void *owned;
	StTensor *t = weights_tensors(e, false, &nt, &owned);
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	char norm[2][128];
	recipe_value(&e->recipe, "normalize.mean", norm[0], sizeof norm[0]);
	recipe_value(&e->recipe, "normalize.std", norm[1], sizeof norm[1]);
	StMeta meta[4] = {{"format", "pt"}, {"nnc.model", e->plan->model}, {"nnc.normalize.mean", norm[0]},
		{"nnc.normalize.std", norm[1]}};
	bool ok = st_write(path, t, nt, meta, 4, err, errlen) == 0;
	free(t);
	free(owned);
	return ok;
}
