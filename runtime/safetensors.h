/* Safetensors files (huggingface's format): headers written here, parsed by jansson.
 *
 * A file is: an 8-byte little-endian u64 N; N bytes of UTF-8 JSON, an object mapping each
 * tensor name to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets relative
 * to the first byte after the header), plus an optional "__metadata__" object of string ->
 * string; then the data section, little-endian and row-major.
 *
 * Writer invariants: the output is what the reference implementation (safetensors' Rust crate,
 * used by the Python package) writes for the same tensors and metadata. Tensors are laid out in
 * decreasing dtype order of StDtype below (so 8-byte types first), ties broken by name (bytewise),
 * contiguously from offset 0; the header lists "__metadata__" first (its keys sorted bytewise; the
 * reference's order is that of a hash map, so it matches byte for byte only with at most one
 * key), then the tensors in data order; the JSON is compact, escaped as serde_json does, and
 * padded with spaces so that N, and so the start of the data section, is a multiple of 8.
 * Every tensor is therefore aligned to its element size relative to the start of the file.
 * The header is written here, not by jansson, whose dumper escapes control characters as
 * \u001F where serde_json writes \u001f, and which could not say where each metadata value
 * lands (StHeader.meta_pos, which checkpoints need to patch their checksum in).
 *
 * Reader invariants: the whole file is read into memory; the header is parsed by jansson with
 * duplicate keys rejected (in any object: tensor names, fields, metadata keys), nothing after
 * the object but whitespace, no NUL byte anywhere, valid UTF-8 and no \u0000 in strings,
 * integers within int64 (exact: never through a double), nesting at most jansson's 2048 levels.
 * Then every value must have the type the format gives it (so true, false, null and fractions
 * are rejected where they appear) and the header is checked like the reference does: N <=
 * 100,000,000 and within the file, every tensor's offsets inside the data section, end - begin
 * == product(shape) * element size with no overflow, rank at most ST_MAX_RANK, known dtypes,
 * only the fields dtype, shape and data_offsets, and the tensors tiling the data section
 * exactly (no overlaps, no gaps, no trailing bytes). Errors are "PATH: problem"; JSON errors
 * give jansson's message and the file offset of the last byte it read, the end of the token it
 * quotes ("PATH: header JSON, byte 13: ':' expected near '1'"), or of the header when it ended
 * too soon. A hostile header at the size limit can make jansson allocate up to about 45 times
 * its size (measured: a 20 MB header of nested empty arrays took 950 MB); real headers are a
 * few kB.
 *
 * Tensor bytes are passed through untouched: nnc assumes a little-endian host.
 * Nothing here keeps global state; every function that can fail returns 0 or -1 and writes a
 * message into the caller's err buffer (which may be NULL). */
#ifndef NNC_SAFETENSORS_H
#define NNC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* Element types, in the reference implementation's order (increasing alignment). */
typedef enum {
	ST_BOOL,
	ST_U8,
	ST_I8,
	ST_F8_E5M2,
	ST_F8_E4M3,
	ST_I16,
	ST_U16,
	ST_F16,
	ST_BF16,
	ST_I32,
	ST_U32,
	ST_F32,
	ST_F64,
	ST_I64,
	ST_U64,
	ST_NDTYPE
} StDtype;

enum {
	ST_MAX_RANK = 64,             /* larger ranks are rejected on write and on read */
	ST_MAX_HEADER = 100000000,    /* the reference's limit on N */
};

/* "F32", "BF16", ...; NULL for a value out of range. */
const char *st_dtype_name(StDtype t);
/* Bytes per element; 0 for a value out of range. */
size_t st_dtype_size(StDtype t);
/* Looks up a dtype by its file name ("F32"); returns 0, or -1 if unknown. */
int st_dtype_parse(const char *name, StDtype *out);

/* One tensor. The writer reads name, dtype, rank, dims and data (product(dims) * size bytes;
 * may be NULL when that is 0) and ignores nbytes and offset. The reader fills every field;
 * its pointers point into the StFile and live until st_close. */
typedef struct {
	const char *name;
	StDtype dtype;
	int rank;
	const int64_t *dims;
	const void *data;
	uint64_t nbytes;  /* reader: product(dims) * element size */
	uint64_t offset;  /* reader: file offset of the first data byte */
} StTensor;

/* One metadata entry (a "__metadata__" key and its string value). */
typedef struct {
	const char *key;
	const char *value;
} StMeta;

/* ---- writing ------------------------------------------------------------------------------- */

/* A serialized header, ready to be followed by the tensors' data. */
typedef struct {
	unsigned char *bytes; /* 8-byte length prefix, JSON, space padding; len is a multiple of 8 */
	size_t len;
	size_t nt;            /* tensors */
	size_t *order;        /* order[i]: caller's index of the i-th tensor in the data section */
	size_t *meta_pos;     /* meta_pos[j]: file offset of the first character of the caller's
	                         metadata value j (just after its opening quote); for a value with
	                         nothing to escape, its bytes follow verbatim */
	uint64_t data_len;    /* size of the data section */
} StHeader;

/* Validates the tensors and metadata (names and strings valid UTF-8 without NUL, tensor names
 * unique and not "__metadata__", metadata keys unique, known dtypes, 0 <= rank <= ST_MAX_RANK,
 * dims >= 0, sizes without overflow, data non-NULL when needed) and builds the header.
 * nmeta == 0 writes no "__metadata__". PATH only names the file in messages (may be NULL).
 * On success the caller frees H with st_header_free; on failure H needs no freeing. */
int st_header_build(const char *path, const StTensor *t, size_t nt, const StMeta *meta,
	size_t nmeta, StHeader *h, char *err, size_t errlen);
void st_header_free(StHeader *h);

/* Called with every byte written, in order (e.g. to hash a file while writing it). */
typedef void StObserver(void *ctx, const void *p, size_t n);

/* Writes H and then the data of T (the same array H was built from) to FD at its current
 * position. OBSERVE may be NULL. PATH names the file in messages. Does not close or sync FD. */
int st_write_fd(int fd, const char *path, const StHeader *h, const StTensor *t,
	StObserver *observe, void *ctx, char *err, size_t errlen);

/* Writes a complete file at PATH (created or truncated, mode 0666 & ~umask). Not atomic: on
 * failure the partial file is removed. Use ckpt_save (checkpoint.h) for crash safety. */
int st_write(const char *path, const StTensor *t, size_t nt, const StMeta *meta, size_t nmeta,
	char *err, size_t errlen);

/* Serializes a complete file into a malloc'd buffer *OUT of *LEN bytes (caller frees). */
int st_serialize(const StTensor *t, size_t nt, const StMeta *meta, size_t nmeta,
	unsigned char **out, size_t *len, char *err, size_t errlen);

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct StFile StFile;

/* Reads and validates the file at PATH. On success *OUT owns the file's bytes, tensors and
 * metadata until st_close. */
int st_open(const char *path, StFile **out, char *err, size_t errlen);
/* The same from LEN bytes at BUF, which are copied; LABEL names them in messages. */
int st_parse(const void *buf, size_t len, const char *label, StFile **out, char *err,
	size_t errlen);
void st_close(StFile *f);

/* Tensors in data-section order (increasing offset). */
size_t st_count(const StFile *f);
const StTensor *st_tensor_at(const StFile *f, size_t i);
/* The tensor called NAME, or NULL. */
const StTensor *st_find(const StFile *f, const char *name);

/* Metadata entries sorted by key; st_meta_get returns NULL for a missing key. */
size_t st_meta_count(const StFile *f);
const StMeta *st_meta_at(const StFile *f, size_t i);
const char *st_meta_get(const StFile *f, const char *key);
/* The file offset and length of KEY's value as it appears in the file (the raw JSON text
 * between its quotes, escapes undecoded). Returns 0, or -1 if KEY is absent. */
int st_meta_span(const StFile *f, const char *key, uint64_t *off, uint64_t *len);

/* The whole file as read, and the name it was opened under. */
const unsigned char *st_file_bytes(const StFile *f, size_t *len);
const char *st_file_path(const StFile *f);

#endif
