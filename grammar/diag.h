/* Source files and diagnostics. Every user-facing error goes through diag_error, which prints
 * "file:line:col: error: message", the source line and a caret under the span (clang style),
 * and counts it; the caller decides whether to go on. After DIAG_MAX_ERRORS the engine prints
 * one "too many errors" line and sets `stop`, which the parser and sema poll to bail out. */
#ifndef NNC_DIAG_H
#define NNC_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/arena.h"

typedef struct {
	const char *path; /* as the user (or the importing file) named it */
	const char *text; /* NUL-terminated copy; may contain other NULs from binary input */
	size_t len;
} SrcFile;

/* A span in one file: [off, end) in bytes; line and col are 1-based, of the start. */
typedef struct {
	const SrcFile *file;
	size_t off, end;
	int line, col;
} Loc;

enum { DIAG_MAX_ERRORS = 20 };

typedef struct {
	FILE *out;
	int nerrors, nwarnings;
	int ninternal; /* errors that are compiler bugs (counted in nerrors too) */
	bool stop;
} Diag;

void diag_init(Diag *d, FILE *out);
void diag_error(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A compiler bug, not the user's: "internal error: ..." at LOC; the driver exits 3. */
void diag_internal(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An error about a whole file (cannot open, not text...): "path: error: message". */
void diag_file_error(Diag *d, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Source files larger than this are refused (also while reading, for files whose size lies). */
enum { SRC_MAX_BYTES = 64 << 20 };

/* Loads PATH into the arena. Returns NULL with *WHY saying why if it cannot be read (not a
 * regular file: core/file.h; "File too large" past SRC_MAX_BYTES). */
SrcFile *src_load(Arena *a, const char *path, const char **why);
SrcFile *src_from_buffer(Arena *a, const char *path, const char *data, size_t len);
/* The span from the start of A to the end of B. */
Loc loc_join(Loc a, Loc b);

#endif
