/* Training checkpoints: named tensors (weights, optimizer state, batch-norm running statistics:
 * whatever the caller passes) plus the state needed to resume, in one file that is written
 * atomically and verified when read.
 *
 * Format. A checkpoint is a safetensors file (safetensors.h), so any safetensors reader loads its
 * tensors. Its "__metadata__" holds the caller's own entries (keys must not start with "nnc.")
 * and these, all strings:
 *   nnc.format      "nnc-checkpoint 1" (CKPT_FORMAT)
 *   nnc.plan        the plan identity the caller gave (e.g. a hash of the plan file)
 *   nnc.epoch       decimal u64
 *   nnc.step        decimal u64
 *   nnc.rng         the RNG state, opaque u64 words, each as 16 lower-case hex digits,
 *                   comma-separated ("" for none); kept as metadata, not as U64 tensors,
 *                   so readers whose frameworks lack uint64 (torch < 2.3) still load the file
 *   nnc.data_order  the data-order state, the same way
 *   nnc.checksum    "sha256:" followed by 64 lower-case hex digits
 *
 * Checksum. SHA-256 (FIPS 180-4; nettle's) of every byte of the file, from the 8-byte header
 * length through the header (all metadata, the tensor table, the padding) to the end of the
 * data section, computed with the 64 hex digits of the nnc.checksum value replaced by 64 ASCII
 * '0' characters. The writer hashes the file as it writes it with those zeros, then
 * overwrites them with the digest. To check one by hand (Python):
 *     b = bytearray(open(path, "rb").read())
 *     i = b.index(b'"nnc.checksum":"sha256:') + 23
 *     stored, b[i:i + 64] = bytes(b[i:i + 64]), b"0" * 64
 *     assert hashlib.sha256(b).hexdigest().encode() == stored
 *
 * Atomic writes. ckpt_save writes PATH.tmp in PATH's directory, fsyncs it, renames it over
 * PATH and fsyncs the directory; a crash at any point leaves the old checkpoint or the new one,
 * never a torn file (at worst a stale PATH.tmp, which readers never look at and which the next
 * save of PATH removes first). On any error the temporary file is removed and PATH is
 * untouched. The file is written with write(2), not stdio, so there is no user-space buffer to
 * flush before fsync. One writer per PATH at a time: the caller excludes others (nnrun holds
 * PATH's lock, runtime/runfiles.h), so the temporary name is fixed and a killed run leaves at
 * most one, which its successor reuses.
 * With CKPT_KEEP_PREV, the checkpoint being replaced is kept as PATH.prev (a hard link made
 * just before the rename, so PATH itself exists at every instant): a guard against a
 * checkpoint that is intact but bad (say, weights gone NaN), at the cost of twice the disk.
 * It is off by default because the rename alone already guarantees an intact checkpoint;
 * ckpt_load never falls back to PATH.prev on its own.
 *
 * Reading. ckpt_load checks, in order, and reports the first failure as "PATH: problem": the
 * file parses as safetensors (a short file reads "truncated"); nnc.format is present; the
 * checksum, if nnc.checksum has the sha256 form, matches ("checksum mismatch: the file is
 * corrupt"); the format is CKPT_FORMAT ("unsupported checkpoint format"); nnc.checksum is
 * present and well formed; the other nnc.* entries are well formed; the plan identity
 * matches ("plan mismatch"); every expected tensor is present ("missing tensor") with the
 * expected dtype and shape ("shape mismatch"). Tensors not in the expectation list are
 * allowed. Only after every check passes are expected tensors copied to their destinations.
 *
 * No global state; every function that can fail returns 0 or -1 with a message in err. */
#ifndef NNC_CHECKPOINT_H
#define NNC_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

/* nettle's header defines sha256_init and sha256_update as macros naming its own functions
 * (nettle_sha256_init, ...); they are undefined so that these two names stay nnc's below. */
#include <nettle/sha2.h>
#undef sha256_init
#undef sha256_update

#include "runtime/safetensors.h"

#define CKPT_FORMAT "nnc-checkpoint 1"

/* What a checkpoint records besides its tensors. All pointers are borrowed for the call. */
typedef struct {
	const char *plan;            /* required, non-empty, valid UTF-8 */
	uint64_t epoch, step;
	const uint64_t *rng;         /* nrng words (may be NULL when nrng is 0) */
	size_t nrng;
	const uint64_t *data_order;  /* norder words */
	size_t norder;
	const StMeta *extra;         /* caller metadata; keys must not start with "nnc." */
	size_t nextra;
} CkptInfo;

enum { CKPT_KEEP_PREV = 1 << 0 };

/* Writes the tensors T (see StTensor: name, dtype, rank, dims, data) and INFO to PATH
 * atomically. FLAGS: 0 or CKPT_KEEP_PREV. */
int ckpt_save(const char *path, const StTensor *t, size_t nt, const CkptInfo *info,
	unsigned flags, char *err, size_t errlen);

/* One tensor the caller requires. If DST is not NULL it receives the tensor's bytes
 * (product(dims) * element size of them) once every check has passed. */
typedef struct {
	const char *name;
	StDtype dtype;
	int rank;
	const int64_t *dims;
	void *dst;
} CkptExpect;

/* A loaded, verified checkpoint. Everything here, and every tensor reached through file
 * (st_find, st_tensor_at, st_meta_get for the caller's own metadata), lives until ckpt_close. */
typedef struct {
	StFile *file;
	const char *plan;
	uint64_t epoch, step;
	uint64_t *rng;
	size_t nrng;
	uint64_t *data_order;
	size_t norder;
} Ckpt;

/* Loads and verifies PATH. PLAN: the identity this run's plan must match, or NULL to accept any.
 * EXPECT: NEXPECT required tensors (may be NULL when NEXPECT is 0). On failure *OUT is left
 * empty (ckpt_close on it is harmless). */
int ckpt_load(const char *path, const char *plan, const CkptExpect *expect, size_t nexpect,
	Ckpt *out, char *err, size_t errlen);
void ckpt_close(Ckpt *c);

/* The checksum of a complete checkpoint image of LEN bytes whose 64 checksum digits start at
 * offset DIGITS (the digits' current contents are ignored): 64 lower-case hex digits and a NUL.
 * Returns -1 if the 64 digits do not lie inside the image. */
int ckpt_checksum(const unsigned char *bytes, size_t len, size_t digits, char hex[65]);

/* SHA-256, incremental, on nettle's (docs/runtime.md says why nettle). */
typedef struct {
	struct sha256_ctx ctx;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *p, size_t n);
void sha256_final(Sha256 *s, unsigned char digest[32]);
/* 64 lower-case hex digits and a NUL. */
void sha256_hex(const unsigned char digest[32], char hex[65]);

#endif
