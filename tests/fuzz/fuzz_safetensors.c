/* libFuzzer target for the safetensors reader (runtime/safetensors.c: jansson's parse, then
 * nnc's checks): each input is a whole file, read as st_parse reads one. A file that loads must
 * be consistent with itself: every metadata value's raw span (st_meta_span, found by scanning
 * the header's string tokens, not by jansson) lies between quotes in the header and decodes to
 * the value; every tensor's bytes lie in the file; and the tensors and metadata, written back
 * with st_serialize, load again to the same names, dtypes, shapes, bytes and metadata.
 *
 * What counts as a bug: any sanitizer report, a crash, a hang, runaway memory, a refusal
 * without a message, or a loaded file that breaks the properties above.
 *
 * Build:  CC=clang cmake -S . -B build-fuzz -DNNC_FUZZ=ON -DNNC_CUDA=OFF && cmake --build build-fuzz
 * Run:    scripts/fuzz.sh safetensors SECONDS; seeds are io_tool's sample file and sample
 *         checkpoint, dictionary tests/fuzz/safetensors.dict. */
#define _XOPEN_SOURCE 700
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
bug(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_safetensors: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	abort();
}

static void
check_spans(const StFile *f)
{
	size_t len;
	const unsigned char *b = st_file_bytes(f, &len);
	for (size_t j = 0; j < st_meta_count(f); j++) {
		const StMeta *m = st_meta_at(f, j);
		uint64_t off, n;
		if (st_meta_span(f, m->key, &off, &n) < 0)
			bug("a metadata key has no span", m->key);
		if (off < 9 || off + n >= len || b[off - 1] != '"' || b[off + n] != '"')
			bug("a metadata span is not a quoted string in the file", m->key);
		json_t *v = json_loadb((const char *)b + off - 1, (size_t)n + 2, JSON_DECODE_ANY, NULL);
		if (!json_is_string(v) || strcmp(json_string_value(v), m->value) != 0)
			bug("a metadata span does not decode to its value", m->key);
		json_decref(v);
	}
	for (size_t i = 0; i < st_count(f); i++) {
		const StTensor *t = st_tensor_at(f, i);
		if (t->offset > len || t->nbytes > len - t->offset ||
			(const unsigned char *)t->data != b + t->offset)
			bug("a tensor's bytes are not inside the file", t->name);
	}
}

static void
check_rewrite(const StFile *f)
{
	size_t nt = st_count(f), nm = st_meta_count(f);
	StTensor *t = malloc((nt ? nt : 1) * sizeof *t);
	StMeta *m = malloc((nm ? nm : 1) * sizeof *m);
	if (!t || !m)
		bug("out of memory", NULL);
	for (size_t i = 0; i < nt; i++)
		t[i] = *st_tensor_at(f, i);
	for (size_t j = 0; j < nm; j++)
		m[j] = *st_meta_at(f, j);
	unsigned char *out;
	size_t len;
	char err[1024] = "";
	if (st_serialize(t, nt, m, nm, &out, &len, err, sizeof err) < 0)
		bug("a loaded file cannot be written back", err);
	StFile *g;
	if (st_parse(out, len, "rewritten.safetensors", &g, err, sizeof err) < 0)
		bug("a loaded file, written back, does not load", err);
	if (st_count(g) != nt || st_meta_count(g) != nm)
		bug("the rewritten file has other tensors or metadata", NULL);
	for (size_t i = 0; i < nt; i++) {
		const StTensor *a = &t[i], *c = st_find(g, a->name);
		if (!c || c->dtype != a->dtype || c->rank != a->rank || c->nbytes != a->nbytes ||
			(a->rank && memcmp(c->dims, a->dims, (size_t)a->rank * sizeof *a->dims) != 0) ||
			(a->nbytes && memcmp(c->data, a->data, (size_t)a->nbytes) != 0))
			bug("a tensor changed in the rewritten file", a->name);
	}
	for (size_t j = 0; j < nm; j++) {
		const char *v = st_meta_get(g, m[j].key);
		if (!v || strcmp(v, m[j].value) != 0)
			bug("a metadata value changed in the rewritten file", m[j].key);
	}
	st_close(g);
	free(out);
	free(t);
	free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	StFile *f;
	char err[1024] = "";
	if (st_parse(data, size, "fuzz.safetensors", &f, err, sizeof err) < 0) {
		if (!err[0])
			bug("a file was refused without a message", NULL);
		return 0;
	}
	check_spans(f);
	check_rewrite(f);
	st_close(f);
	return 0;
}
