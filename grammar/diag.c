/* Diagnostics with source excerpts (see diag.h). The excerpt shows at most EXCERPT bytes of the
 * line, windowed around the caret, with non-printable bytes shown as '?', so binary input and
 * 10 MB single-line files print a short, aligned excerpt. */
#include "grammar/diag.h"

#include "core/file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { EXCERPT = 120 };

void
diag_init(Diag *d, FILE *out)
{
	memset(d, 0, sizeof *d);
	d->out = out;
}

static void
excerpt(Diag *d, Loc loc)
{
	const SrcFile *f = loc.file;
	if (!f || loc.off > f->len)
		return;
	size_t bol = loc.off, eol = loc.off;
	while (bol > 0 && f->text[bol - 1] != '\n')
		bol--;
	while (eol < f->len && f->text[eol] != '\n')
		eol++;
	size_t end = loc.end > eol ? eol : loc.end;
	if (end <= loc.off)
		end = loc.off + 1;
	/* Window: keep the caret visible in lines longer than EXCERPT. */
	size_t from = bol, to = eol;
	bool lcut = false, rcut = false;
	if (to - from > EXCERPT) {
		if (loc.off - from > EXCERPT / 2) {
			from = loc.off - EXCERPT / 2;
			lcut = true;
		}
		if (to - from > EXCERPT) {
			to = from + EXCERPT;
			rcut = true;
		}
	}
	char gutter[32];
	int gw = snprintf(gutter, sizeof gutter, "%5d", loc.line);
	fprintf(d->out, "%s | %s", gutter, lcut ? "..." : "");
	for (size_t i = from; i < to; i++) {
		unsigned char c = (unsigned char)f->text[i];
		fputc(c == '\t' ? ' ' : (c < 32 || c > 126) ? '?' : c, d->out);
	}
	fprintf(d->out, "%s\n%*s | %s", rcut ? "..." : "", gw, "", lcut ? "   " : "");
	for (size_t i = from; i < loc.off && i < to; i++)
		fputc(' ', d->out);
	fputc('^', d->out);
	for (size_t i = loc.off + 1; i < end && i < to; i++)
		fputc('~', d->out);
	fputc('\n', d->out);
}

typedef enum { K_ERROR, K_WARNING, K_NOTE, K_INTERNAL } Kind;

/* Counts and prints one diagnostic; errors past DIAG_MAX_ERRORS stop the engine. */
static void
report(Diag *d, Loc loc, Kind kind, const char *fmt, va_list ap)
{
	static const char *names[] = {"error", "warning", "note", "error: internal error"};
	if (d->stop)
		return;
	if ((kind == K_ERROR || kind == K_INTERNAL) && d->nerrors == DIAG_MAX_ERRORS) {
		fprintf(d->out, "nnc: too many errors (%d); stopping\n", DIAG_MAX_ERRORS);
		d->stop = true;
		return;
	}
	d->nerrors += kind == K_ERROR || kind == K_INTERNAL;
	d->ninternal += kind == K_INTERNAL;
	d->nwarnings += kind == K_WARNING;
	if (loc.file)
		fprintf(d->out, "%s:%d:%d: %s: ", loc.file->path, loc.line, loc.col, names[kind]);
	else
		fprintf(d->out, "nnc: %s: ", names[kind]);
	vfprintf(d->out, fmt, ap);
	fputc('\n', d->out);
	if (loc.file)
		excerpt(d, loc);
}

/* The three public entry points differ only in their kind. */
#define DIAG_ENTRY(name, kind)                                  \
	void name(Diag *d, Loc loc, const char *fmt, ...)           \
	{                                                           \
		va_list ap;                                             \
		va_start(ap, fmt);                                      \
		report(d, loc, kind, fmt, ap);                          \
		va_end(ap);                                             \
	}
DIAG_ENTRY(diag_error, K_ERROR)
DIAG_ENTRY(diag_warning, K_WARNING)
DIAG_ENTRY(diag_note, K_NOTE) /* notes attach to the diagnostic before them; not counted */
DIAG_ENTRY(diag_internal, K_INTERNAL)

void
diag_file_error(Diag *d, const char *path, const char *fmt, ...)
{
	if (d->stop)
		return;
	d->nerrors++;
	fprintf(d->out, "%s: error: ", path);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
}

SrcFile *
src_from_buffer(Arena *a, const char *path, const char *data, size_t len)
{
	SrcFile *f = arena_alloc(a, sizeof *f);
	f->path = arena_strdup(a, path);
	f->text = arena_strndup(a, data, len);
	f->len = len;
	return f;
}

SrcFile *
src_load(Arena *a, const char *path, const char **why)
{
	FILE *fp = file_fopen_regular(path, why);
	if (!fp)
		return NULL;
	size_t len = 0;
	char *buf = file_slurp(fp, SRC_MAX_BYTES, &len, why);
	fclose(fp);
	if (!buf)
		return NULL;
	SrcFile *f = src_from_buffer(a, path, buf, len);
	free(buf);
	return f;
}

Loc
loc_join(Loc a, Loc b)
{
	if (a.file == b.file && b.end > a.end)
		a.end = b.end;
	return a;
}
