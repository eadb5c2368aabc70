/* Unit tests for the front end's building blocks: the arena and string map, the op table,
 * shape inference rules, and the IR verifier. The verifier tests corrupt a well-formed graph in
 * one way at a time and require that each corruption is caught, so a silent verifier fails here. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compiler/check.h"
#include "compiler/stats.h"
#include "compiler/verify.h"
#include "passes/pipeline.h"
#include "core/strmap.h"
#include "tests/check.h"


static void
test_arena_strmap(void)
{
	Arena a = {0};
	StrMap m;
	strmap_init(&m, &a);
	char key[32];
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CHECK(strmap_put(&m, key, (void *)(intptr_t)(i + 1)) == NULL || i < 0);
	}
	CHECK(m.n == 10000);
	CHECK(strmap_get(&m, "k0") == (void *)1);
	CHECK(strmap_get(&m, "k9999") == (void *)10000);
	CHECK(strmap_get(&m, "k10000") == NULL);
	CHECK(strmap_put(&m, "k5", (void *)7) == (void *)6);
	CHECK(strmap_get(&m, "k5") == (void *)7);
	CHECK(strcmp(m.keys[123], "k123") == 0); /* insertion order */
	char *big = arena_alloc(&a, 1 << 20);
	CHECK(big && ((uintptr_t)big & 15) == 0 && big[12345] == 0);
	CHECK(strcmp(arena_printf(&a, "%s-%d", "x", 42), "x-42") == 0);
	arena_free(&a);
	CHECK(a.head == NULL);
}

static void
test_op_table(void)
{
	CHECK(nnc_op_lookup("conv2d") == OP_conv2d);
	CHECK(nnc_op_lookup("param") == NOP); /* internal ops are not callable */
	CHECK(nnc_op_lookup("nope") == NOP);
	CHECK(nnc_attr_index(OP_conv2d, "kernel") == 1);
	CHECK(nnc_attr_index(OP_conv2d, "kernal") == -1);
	for (int i = 0; i < NOP; i++) {
		CHECK(nnc_ops[i].name && nnc_ops[i].nattrs <= NNC_MAXATTR);
		CHECK(nnc_ops[i].max_in < 0 || nnc_ops[i].max_in >= nnc_ops[i].min_in);
	}
}

/* Builds `x: image[C,H,W]` then one op on it, returning the op (not yet typed). */
static Inst *
one_op(Graph *g, Op op, int c, int h, int w)
{
	Inst *x = inst_new(g, OP_input, (Loc){0}, 0, (Type){0});
	inst_set_str(x, "name", "x");
	inst_set_str(x, "kind", "image");
	inst_set_int(x, "channels", c);
	inst_set_int(x, "height", h);
	inst_set_int(x, "width", w);
	inst_apply_defaults(x);
	InferResult r;
	CHECK(infer_inst(x, g->batch, &r));
	x->res->type = r.out;
	Inst *in = inst_new(g, op, (Loc){0}, 1, (Type){0});
	in->args = arena_alloc(g->arena, 8 * sizeof *in->args);
	in->args[0] = x->res;
	return in;
}

static void
test_infer(void)
{
	Arena a = {0};
	Graph *g = graph_new(&a, "t", 4);
	InferResult r;
	char b[96];

	Inst *c = one_op(g, OP_conv2d, 3, 32, 32);
	inst_set_int(c, "channels", 16);
	inst_set_int(c, "kernel", 3);
	inst_set_int(c, "stride", 2);
	inst_set_int(c, "padding", 1);
	inst_apply_defaults(c);
	CHECK(infer_inst(c, 4, &r));
	CHECK(strcmp(type_str(&r.out, b, sizeof b), "f32[4,16,16,16]") == 0);
	CHECK(r.nparams == 2 && strcmp(r.params[0].suffix, "weight") == 0);
	CHECK(strcmp(type_str(&r.params[0].type, b, sizeof b), "f32[16,3,3,3]") == 0);
	CHECK(r.macs == 16 * 3 * 9 * 16 * 16);

	/* depthwise: groups = channels */
	Inst *d = one_op(g, OP_conv2d, 32, 8, 8);
	inst_set_int(d, "channels", 32);
	inst_set_int(d, "kernel", 3);
	inst_set_int(d, "groups", 32);
	inst_set_bool(d, "bias", false);
	inst_apply_defaults(d);
	CHECK(infer_inst(d, 4, &r));
	CHECK(strcmp(type_str(&r.params[0].type, b, sizeof b), "f32[32,1,3,3]") == 0 && r.nparams == 1);
	inst_set_int(d, "groups", 5);
	CHECK(!infer_inst(d, 4, &r) && strstr(r.err, "groups=5 must divide"));

	Inst *bn = one_op(g, OP_batchnorm, 8, 4, 4);
	inst_set_bool(bn, "frozen_scale", true);
	inst_apply_defaults(bn);
	CHECK(infer_inst(bn, 4, &r));
	CHECK(r.nparams == 4 && !r.params[0].trainable && r.params[1].trainable && !r.params[2].trainable);

	Inst *p = one_op(g, OP_maxpool, 8, 5, 5);
	inst_set_int(p, "kernel", 3);
	inst_set_int(p, "stride", 2);
	inst_apply_defaults(p);
	CHECK(infer_inst(p, 4, &r) && r.out.dim[2] == 2 && r.out.dim[3] == 2);

	Inst *gp = one_op(g, OP_global_avgpool, 8, 5, 5);
	inst_apply_defaults(gp);
	CHECK(infer_inst(gp, 4, &r) && r.out.rank == 2 && r.out.dim[1] == 8 && r.out.layout == LY_NC);

	Inst *de = one_op(g, OP_dense, 8, 5, 5);
	inst_set_int(de, "units", 10);
	inst_apply_defaults(de);
	CHECK(!infer_inst(de, 4, &r) && strstr(r.err, "flatten() or global_avgpool()"));

	Inst *fl = one_op(g, OP_flatten, 8, 5, 5);
	inst_apply_defaults(fl);
	CHECK(infer_inst(fl, 4, &r) && r.out.dim[1] == 200);
	arena_free(&a);
}

static Graph *
build(Arena *a, Diag *d, const char *src)
{
	SemaOpts so = {.path = "unit.nn", .source = src, .source_len = strlen(src), .batch = 2};
	PipelineOpts po = {.out = stdout};
	static Recipe recipe;
	recipe_defaults(&recipe);
	Module m;
	int rc = pipeline_run(a, d, &so, &po, &recipe, &m);
	return rc == NNC_OK ? (m.network ? m.network : m.eval ? m.eval : m.main) : NULL;
}

static const char *model_src =
	"model m {\n"
	"    input x: image[3, 8, 8]\n"
	"    input y: labels[10]\n"
	"    h = conv2d(x, 4, kernel=3, padding=1) as c\n"
	"    h = relu(batchnorm(h) as bn)\n"
	"    logits = dense(flatten(h), 10) as fc\n"
	"    loss = softmax_cross_entropy(logits, y)\n"
	"    output logits, loss\n"
	"}\n";

static Inst *
find(Graph *g, Op op)
{
	for (Inst *in = g->first; in; in = in->next)
		if (in->op == op)
			return in;
	return NULL;
}

/* Each corruption must make the verifier fail. */
static void
test_verifier(void)
{
	for (int k = 0; k < 7; k++) {
		Arena a = {0};
		Diag d;
		FILE *sink = fopen("/dev/null", "w");
		diag_init(&d, sink);
		Graph *g = build(&a, &d, model_src);
		CHECK(g != NULL);
		if (!g) {
			fclose(sink);
			arena_free(&a);
			continue;
		}
		CHECK(ir_verify(g, &d, "unit"));
		Inst *conv = find(g, OP_conv2d), *dense = find(g, OP_dense);
		switch (k) {
		case 0: conv->res->type.dim[1] = 5; break;                 /* wrong result type */
		case 1: conv->args[0] = dense->res; break;                  /* use before definition */
		case 2: conv->nargs--; break;                               /* missing parameter operand */
		case 3: conv->attr[nnc_attr_index(OP_conv2d, "kernel")].set = false; break; /* unset attribute */
		case 4: inst_set_str(find(g, OP_param)->next->next, "name", attr_s(find(g, OP_param), "name")); break;
		case 5: inst_remove(g, find(g, OP_output)); inst_remove(g, find(g, OP_output)); break; /* no outputs */
		case 6: find(g, OP_flatten)->epi = EPI_RELU; break;        /* an epilogue flatten has not */
		}
		CHECK(!ir_verify(g, &d, "unit"));
		fclose(sink);
		arena_free(&a);
	}
}

/* The op table's CHAIN flag and the elementwise formulas (NNC_EW) name the same ops: a flagged
 * op every backend cannot run as a chain link, or a formula no chain may use, is a bug. */
static void
test_elementwise_table(void)
{
	for (int op = 0; op < NOP; op++)
		CHECK(((nnc_ops[op].flags & OPF_CHAIN) != 0) == (nnc_ew_of((Op)op, NULL) >= 0));
	bool swap = false;
	CHECK(nnc_ew_of(OP_relu_bwd, &swap) == EW_relu_bwd && swap);
	CHECK(nnc_ew_of(OP_add, &swap) == EW_add && !swap);
}

static void
test_sema_api(void)
{
	Arena a = {0};
	Diag d;
	FILE *sink = fopen("/dev/null", "w");
	diag_init(&d, sink);
	Graph *g = build(&a, &d, model_src);
	CHECK(g && d.nerrors == 0);
	if (g) {
		GraphTotals t = graph_totals(g);
		/* conv 3*4*9+4, bn 4+4, dense 256*10+10 */
		CHECK(t.params == 112 + 8 + 2570);
		CHECK(t.frozen == 8);
		CHECK(t.macs == 4 * 3 * 9 * 64 + 2560);
		Inst *p = find(g, OP_param);
		CHECK(p && strcmp(attr_s(p, "name"), "c.weight") == 0 && strcmp(attr_s(p, "init"), "he_normal") == 0);
	}
	arena_free(&a);

	/* Errors are counted, not printed to stdout, and no graph comes back. */
	diag_init(&d, sink);
	g = build(&a, &d, "model m {\n input x: image[3, 8, 8]\n h = conv2d(x, 4)\n output h\n}\n");
	CHECK(g == NULL && d.nerrors == 1);
	arena_free(&a);

	/* Compile-time arithmetic follows Python's floor semantics. */
	diag_init(&d, sink);
	g = build(&a, &d,
		"a = -7 // 2\nb = -7 % 3\nc = 7.0 / 2\n"
		"model m {\n input x: image[3, 8, 8]\n assert a == -4 and b == 2 and c == 3.5, \"arith\"\n output x\n}\n");
	CHECK(g != NULL && d.nerrors == 0);
	arena_free(&a);
	fclose(sink);
}

int
main(void)
{
	test_arena_strmap();
	test_op_table();
	test_infer();
	test_verifier();
	test_sema_api();
	test_elementwise_table();
	return check_exit("unit_frontend");
}
