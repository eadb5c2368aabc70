/* Training recipes (see recipe.h). The field table maps each key to its type and storage;
 * parsing, printing and "unknown key" suggestions all walk it. */
#include "core/recipe.h"
#include "core/file.h"
#include "core/types.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef enum { F_DOUBLE, F_INT, F_LONG, F_BOOL, F_CHOICE, F_INTLIST, F_POINTS, F_RGB } FieldType;

typedef struct {
	const char *key;
	FieldType type;
	size_t off;
	const char *choices; /* F_CHOICE: space-separated */
} Field;

#define FIELD(key, type, member, choices) {key, type, offsetof(Recipe, member), choices}
static const Field fields[] = {
	FIELD("optimizer", F_CHOICE, optimizer, "sgd adam adamw"),
	FIELD("optimizer.rounding", F_CHOICE, rounding, "nearest stochastic"),
	FIELD("lr", F_DOUBLE, lr, NULL),
	FIELD("momentum", F_DOUBLE, momentum, NULL),
	FIELD("nesterov", F_BOOL, nesterov, NULL),
	FIELD("weight_decay", F_DOUBLE, weight_decay, NULL),
	FIELD("decay_bn_and_bias", F_BOOL, decay_bn_and_bias, NULL),
	FIELD("shift_lr_scale", F_DOUBLE, shift_lr_scale, NULL),
	FIELD("beta1", F_DOUBLE, beta1, NULL),
	FIELD("beta2", F_DOUBLE, beta2, NULL),
	FIELD("eps", F_DOUBLE, eps, NULL),
	FIELD("schedule", F_CHOICE, schedule, "constant step cosine linear piecewise"),
	FIELD("warmup_epochs", F_DOUBLE, warmup_epochs, NULL),
	FIELD("milestones", F_INTLIST, milestones, NULL),
	FIELD("gamma", F_DOUBLE, gamma, NULL),
	FIELD("lr_points", F_POINTS, lr_points, NULL),
	FIELD("epochs", F_INT, epochs, NULL),
	FIELD("batch", F_INT, batch, NULL),
	FIELD("label_smoothing", F_DOUBLE, label_smoothing, NULL),
	FIELD("augment.crop_padding", F_INT, crop_padding, NULL),
	FIELD("augment.crop_reflect", F_BOOL, crop_reflect, NULL),
	FIELD("augment.flip", F_BOOL, flip, NULL),
	FIELD("augment.alternate_flip", F_BOOL, alternate_flip, NULL),
	FIELD("augment.cutout", F_INT, cutout, NULL),
	FIELD("normalize.mean", F_RGB, norm_mean, NULL),
	FIELD("normalize.std", F_RGB, norm_std, NULL),
	FIELD("tta", F_INT, tta, NULL),
	FIELD("seed", F_LONG, seed, NULL),
};
#undef FIELD

void
recipe_defaults(Recipe *r)
{
	memset(r, 0, sizeof *r);
	strcpy(r->optimizer, "sgd");
	strcpy(r->rounding, "nearest");
	r->lr = 0.1;
	r->momentum = 0.9;
	r->weight_decay = 5e-4;
	r->decay_bn_and_bias = true;
	r->shift_lr_scale = 1;
	r->beta1 = 0.9;
	r->beta2 = 0.999;
	r->eps = 1e-8;
	strcpy(r->schedule, "cosine");
	r->gamma = 0.1;
	r->epochs = 30;
	r->batch = 128;
	r->label_smoothing = -1;
	r->crop_padding = 4;
	r->flip = true;
	const double mean[3] = {CIFAR_MEAN_R, CIFAR_MEAN_G, CIFAR_MEAN_B}, sd[3] = {CIFAR_STD_R, CIFAR_STD_G, CIFAR_STD_B};
	memcpy(r->norm_mean, mean, sizeof mean);
	memcpy(r->norm_std, sd, sizeof sd);
	r->seed = 0;
}

static const Field *
find(const char *key)
{
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

static bool
parse_number(const char *v, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(v, &end);
	return *v && !*end && errno == 0 && isfinite(*out);
}

/* A list of up to MAX finite numbers, "[a, b, c]" or "a,b,c", into OUT (*N of them); false
 * when an item is not a finite number or there are more. */
static bool
parse_list(const char *v, double *out, int max, int *n)
{
	*n = 0;
	for (const char *s = v; *s;) {
		while (*s == ' ' || *s == '[' || *s == ',' || *s == ']')
			s++;
		if (!*s)
			break;
		char *end;
		errno = 0;
		double x = strtod(s, &end);
		if (end == s || errno != 0 || !isfinite(x) || *n == max)
			return false;
		out[(*n)++] = x;
		s = end;
	}
	return true;
}

/* Range checks that make a recipe meaningful, per key. */
static const char *
check_range(const Recipe *r, const char *key)
{
	if (!strcmp(key, "lr") && !(r->lr >= 0))
		return "must be >= 0";
	if (!strcmp(key, "shift_lr_scale") && !(r->shift_lr_scale > 0))
		return "must be positive";
	if ((!strcmp(key, "momentum") && !(r->momentum >= 0 && r->momentum < 1)) ||
	    (!strcmp(key, "beta1") && !(r->beta1 >= 0 && r->beta1 < 1)) ||
	    (!strcmp(key, "beta2") && !(r->beta2 >= 0 && r->beta2 < 1)))
		return "must be in [0, 1)";
	if ((!strcmp(key, "weight_decay") && !(r->weight_decay >= 0)) || (!strcmp(key, "eps") && !(r->eps > 0)) ||
	    (!strcmp(key, "warmup_epochs") && !(r->warmup_epochs >= 0)) || (!strcmp(key, "gamma") && !(r->gamma > 0)))
		return "must be positive (or zero where that means off)";
	if ((!strcmp(key, "epochs") && r->epochs <= 0) || (!strcmp(key, "batch") && (r->batch <= 0 || r->batch > 65536)))
		return "must be a positive integer (batch at most 65536)";
	if (!strcmp(key, "tta") && (r->tta < 0 || r->tta > 2))
		return "must be 0 (off), 1 (flip) or 2 (flip and one-pixel translations)";
	if (!strcmp(key, "label_smoothing") && !(r->label_smoothing < 1))
		return "must be below 1 (negative: keep the model's)";
	if (!strcmp(key, "normalize.std") && !(r->norm_std[0] > 0 && r->norm_std[1] > 0 && r->norm_std[2] > 0))
		return "must be positive for every channel";
	if ((!strcmp(key, "augment.crop_padding") && (r->crop_padding < 0 || r->crop_padding > 16)) ||
	    (!strcmp(key, "augment.cutout") && (r->cutout < 0 || r->cutout > 32)))
		return "is out of range (crop_padding 0-16, cutout 0-32)";
	return NULL;
}

bool
recipe_set(Recipe *r, const char *key, const char *v, char *err, size_t errlen)
{
	const Field *f = find(key);
	if (!f) {
		int k = snprintf(err, errlen, "unknown recipe setting '%s' (settings:", key);
		for (size_t i = 0; i < sizeof fields / sizeof fields[0] && k > 0 && (size_t)k < errlen; i++)
			k += snprintf(err + k, errlen - (size_t)k, " %s", fields[i].key);
		if (k > 0 && (size_t)k < errlen)
			snprintf(err + k, errlen - (size_t)k, ")");
		return false;
	}
	void *p = (char *)r + f->off;
	double d;
	switch (f->type) {
	case F_DOUBLE:
		if (!parse_number(v, &d)) {
			snprintf(err, errlen, "recipe setting '%s' needs a number, got '%s'", key, v);
			return false;
		}
		*(double *)p = d;
		break;
	case F_INT:
	case F_LONG:
		if (!parse_number(v, &d) || d != floor(d) || fabs(d) > 2e9) {
			snprintf(err, errlen, "recipe setting '%s' needs an integer, got '%s'", key, v);
			return false;
		}
		if (f->type == F_INT)
			*(int *)p = (int)d;
		else
			*(long *)p = (long)d;
		break;
	case F_BOOL:
		if (strcmp(v, "true") && strcmp(v, "false")) {
			snprintf(err, errlen, "recipe setting '%s' needs true or false, got '%s'", key, v);
			return false;
		}
		*(bool *)p = v[0] == 't';
		break;
	case F_CHOICE: {
		size_t n = strlen(v);
		const char *c = strstr(f->choices, v);
		if (!n || n >= 16 || !c || (c != f->choices && c[-1] != ' ') || (c[n] != ' ' && c[n] != 0)) {
			snprintf(err, errlen, "recipe setting '%s' must be one of: %s; got '%s'", key, f->choices, v);
			return false;
		}
		strcpy((char *)p, v);
		break;
	}
	case F_INTLIST: {
		/* "30,60,90" or "[30, 60, 90]" */
		double x[RECIPE_MAX_MILESTONES];
		int n;
		bool ok = parse_list(v, x, RECIPE_MAX_MILESTONES, &n);
		for (int i = 0; ok && i < n; i++)
			ok = x[i] == floor(x[i]) && x[i] >= 0 && x[i] <= 100000;
		if (!ok) {
			snprintf(err, errlen, "recipe setting '%s' needs up to %d epoch numbers like [100, 150], got '%s'", key,
				RECIPE_MAX_MILESTONES, v);
			return false;
		}
		for (int i = 0; i < n; i++)
			r->milestones[i] = (int)x[i];
		r->nmilestones = n;
		break;
	}
	case F_POINTS: {
		/* "[0, 0.2, 0.23, 1, 1, 0.07]": (fraction, factor) pairs */
		double q[2 * RECIPE_MAX_POINTS];
		int n;
		bool ok = parse_list(v, q, 2 * RECIPE_MAX_POINTS, &n);
		for (int i = 0; ok && i < n; i++)
			ok = q[i] >= 0;
		for (int i = 0; ok && i < n; i += 2)
			ok = q[i] <= 1 && (i == 0 ? q[i] == 0 : q[i] > q[i - 2]);
		if (!ok || (n > 0 && (n < 4 || n % 2 || q[n - 2] != 1))) { /* [] : none */
			snprintf(err, errlen, "recipe setting '%s' needs 2 to %d (fraction, factor) pairs like [0, 0.2, 0.23, 1, 1, "
			                      "0.07]: fractions rising from 0 to 1, factors >= 0; got '%s'",
				key, RECIPE_MAX_POINTS, v);
			return false;
		}
		memcpy(r->lr_points, q, (size_t)n * sizeof *q);
		r->nlr_points = n;
		break;
	}
	case F_RGB: {
		/* "[0.5, 0.5, 0.5]" or "0.5,0.5,0.5": one number per channel, R G B */
		double x[3];
		int n;
		bool ok = parse_list(v, x, 3, &n);
		if (!ok || n != 3) {
			snprintf(err, errlen, "recipe setting '%s' needs three numbers (R, G, B) like [0.4914, 0.4822, 0.4465], got '%s'",
				key, v);
			return false;
		}
		memcpy(p, x, sizeof x);
		break;
	}
	}
	const char *bad = check_range(r, key);
	if (bad) {
		snprintf(err, errlen, "recipe setting '%s' = %s %s", key, v, bad);
		return false;
	}
	return true;
}

bool
recipe_check(const Recipe *r, char *err, size_t errlen)
{
	if (strcmp(r->optimizer, "sgd") && r->shift_lr_scale != 1) {
		snprintf(err, errlen, "recipe setting 'shift_lr_scale' is for optimizer sgd, not %s", r->optimizer);
		return false;
	}
	if (!strcmp(r->schedule, "piecewise") && r->nlr_points == 0) {
		snprintf(err, errlen, "recipe setting 'schedule' = piecewise needs 'lr_points', (fraction, factor) pairs like "
		                      "[0, 0.2, 0.23, 1, 1, 0.07]");
		return false;
	}
	return true;
}

void
recipe_print(FILE *out, const Recipe *r, const char *indent)
{
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		const Field *f = &fields[i];
		const void *p = (const char *)r + f->off;
		fprintf(out, "%s%s: ", indent, f->key);
		switch (f->type) {
		case F_DOUBLE: {
			char b[32];
			fputs(double_str(b, *(const double *)p), out);
			break;
		}
		case F_INT: fprintf(out, "%d", *(const int *)p); break;
		case F_LONG: fprintf(out, "%ld", *(const long *)p); break;
		case F_BOOL: fputs(*(const bool *)p ? "true" : "false", out); break;
		case F_CHOICE: fputs((const char *)p, out); break;
		case F_INTLIST:
			fputc('[', out);
			for (int k = 0; k < r->nmilestones; k++)
				fprintf(out, "%s%d", k ? ", " : "", r->milestones[k]);
			fputc(']', out);
			break;
		case F_POINTS: {
			char b[32];
			fputc('[', out);
			for (int k = 0; k < r->nlr_points; k++)
				fprintf(out, "%s%s", k ? ", " : "", double_str(b, r->lr_points[k]));
			fputc(']', out);
			break;
		}
		case F_RGB: {
			char b[32];
			fputc('[', out);
			for (int k = 0; k < 3; k++)
				fprintf(out, "%s%s", k ? ", " : "", double_str(b, ((const double *)p)[k]));
			fputc(']', out);
			break;
		}
		}
		fputc('\n', out);
	}
}

const char *
recipe_value(const Recipe *r, const char *key, char *buf, size_t n)
{
	char text[4096] = "";
	FILE *f = fmemopen(text, sizeof text - 1, "w");
	buf[0] = 0;
	if (!f)
		return buf;
	recipe_print(f, r, "");
	fclose(f);
	size_t k = strlen(key);
	for (const char *l = text; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
		if (!strncmp(l, key, k) && l[k] == ':' && l[k + 1] == ' ') {
			size_t len = strcspn(l + k + 2, "\n");
			snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), l + k + 2);
			break;
		}
	return buf;
}

double
recipe_lr(const Recipe *r, double e)
{
	if (r->warmup_epochs > 0 && e < r->warmup_epochs)
		return r->lr * e / r->warmup_epochs;
	double span = r->epochs - r->warmup_epochs, t = span > 0 ? (e - r->warmup_epochs) / span : 1;
	if (t > 1)
		t = 1;
	if (!strcmp(r->schedule, "cosine"))
		return r->lr * 0.5 * (1 + cos(M_PI * t));
	if (!strcmp(r->schedule, "linear"))
		return r->lr * (1 - t);
	if (!strcmp(r->schedule, "piecewise") && r->nlr_points >= 4) {
		const double *q = r->lr_points;
		int i = 0;
		while (i + 4 < r->nlr_points && t > q[i + 2])
			i += 2;
		double u = (t - q[i]) / (q[i + 2] - q[i]);
		return r->lr * (q[i + 1] + (q[i + 3] - q[i + 1]) * (u < 0 ? 0 : u > 1 ? 1 : u));
	}
	if (!strcmp(r->schedule, "step")) {
		double lr = r->lr;
		for (int i = 0; i < r->nmilestones; i++)
			if (e >= r->milestones[i])
				lr *= r->gamma;
		return lr;
	}
	return r->lr;
}

/* --- YAML loading ------------------------------------------------------------------------------ */

static bool
yaml_fail(char *err, size_t errlen, const char *path, yaml_mark_t m, const char *msg)
{
	snprintf(err, errlen, "%s:%zu:%zu: error: %s", path, m.line + 1, m.column + 1, msg);
	return false;
}

bool
recipe_load(Recipe *r, const char *path, char *err, size_t errlen)
{
	const char *why;
	FILE *f = file_fopen_regular(path, &why);
	if (!f) {
		snprintf(err, errlen, "%s: error: cannot open recipe: %s", path, why);
		return false;
	}
	yaml_parser_t p;
	yaml_document_t doc;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	bool ok = yaml_parser_load(&p, &doc);
	if (!ok) {
		char msg[256];
		snprintf(msg, sizeof msg, "invalid YAML: %s", p.problem ? p.problem : "parse error");
		yaml_fail(err, errlen, path, p.problem_mark, msg);
		yaml_parser_delete(&p);
		fclose(f);
		return false;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		ok = root ? yaml_fail(err, errlen, path, root->start_mark, "a recipe is a mapping of settings (key: value)")
		          : yaml_fail(err, errlen, path, p.mark, "empty recipe");
	}
	/* Walk one level, and one nested level for `augment:`. */
	for (yaml_node_pair_t *pr = ok ? root->data.mapping.pairs.start : NULL; ok && pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(&doc, pr->key), *v = yaml_document_get_node(&doc, pr->value);
		if (k->type != YAML_SCALAR_NODE) {
			ok = yaml_fail(err, errlen, path, k->start_mark, "setting names must be plain words");
			break;
		}
		const char *key = (const char *)k->data.scalar.value;
		yaml_node_pair_t *inner = NULL, *inner_end = NULL;
		yaml_node_pair_t one = *pr;
		if (v->type == YAML_MAPPING_NODE) {
			inner = v->data.mapping.pairs.start;
			inner_end = v->data.mapping.pairs.top;
		} else {
			inner = &one;
			inner_end = &one + 1;
		}
		for (yaml_node_pair_t *q = inner; ok && q < inner_end; q++) {
			yaml_node_t *kk = yaml_document_get_node(&doc, q->key), *vv = yaml_document_get_node(&doc, q->value);
			char full[128], val[512];
			if (v->type == YAML_MAPPING_NODE)
				snprintf(full, sizeof full, "%s.%s", key, (const char *)kk->data.scalar.value);
			else
				snprintf(full, sizeof full, "%s", key);
			if (vv->type == YAML_SCALAR_NODE) {
				snprintf(val, sizeof val, "%s", (const char *)vv->data.scalar.value);
			} else if (vv->type == YAML_SEQUENCE_NODE) {
				size_t n = 0;
				val[0] = 0;
				for (yaml_node_item_t *it = vv->data.sequence.items.start; it < vv->data.sequence.items.top; it++) {
					yaml_node_t *e = yaml_document_get_node(&doc, *it);
					if (e->type == YAML_SCALAR_NODE && n < sizeof val)
						n += (size_t)snprintf(val + n, sizeof val - n, "%s%s", n ? "," : "", (const char *)e->data.scalar.value);
				}
			} else {
				ok = yaml_fail(err, errlen, path, vv->start_mark, "expected a value");
				break;
			}
			char msg[768];
			if (!recipe_set(r, full, val, msg, sizeof msg))
				ok = yaml_fail(err, errlen, path, vv->start_mark, msg);
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	fclose(f);
	return ok;
}
