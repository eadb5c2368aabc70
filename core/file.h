/* Opening input files without hanging: every file nnc and nnrun read (model sources, recipes,
 * policies, plans, checkpoints, weights, CIFAR-10 files) must be a regular file. A FIFO given
 * as one would block open() until some writer appears, so the file is opened with O_NONBLOCK,
 * checked with fstat, and only then switched back to blocking reads; a directory, FIFO, device
 * or socket is refused with a reason that names what it is. */
#ifndef NNC_FILE_H
#define NNC_FILE_H

#include <stdbool.h>
#include <stdio.h>

/* Opens PATH read-only. Returns a descriptor, or -1 with *WHY set to a static description of
 * the problem ("is a FIFO (named pipe), not a regular file", or strerror's text). */
int file_open_regular(const char *path, const char **why);
/* The same as a stdio stream ("rb"). */
FILE *file_fopen_regular(const char *path, const char **why);
/* Reads the rest of F into a new NUL-terminated buffer (its length in *LEN), refusing more than
 * LIMIT bytes. Returns the buffer (the caller frees it), or NULL with *WHY saying why (too
 * large, out of memory, a read error). Does not close F. */
char *file_slurp(FILE *f, size_t limit, size_t *len, const char **why);

/* Whether PATH's name ends with SUFFIX (".jsonl", ".safetensors": the kind of file asked for). */
bool file_has_suffix(const char *path, const char *suffix);

#endif
