/* Tests of checkpoints (runtime/checkpoint.h): SHA-256 against the FIPS 180-4 example vectors
 * and against itself fed in pieces; a full round trip (tensors, epoch, step, RNG and data-order
 * words, caller metadata, copies into caller buffers); the checksum as documented, recomputed
 * here independently; every single-byte change to a checkpoint is caught; truncation, a wrong
 * version, a plan mismatch, missing tensors and shape or dtype mismatches are each reported
 * with their message, leaving the caller's buffers untouched; and atomicity: failed saves
 * (file-size limit hit mid-write, missing directory, rename refused, read-only directory when
 * not root) leave the old checkpoint intact and no temporary file, CKPT_KEEP_PREV keeps the
 * previous one, and a writer killed at random moments never leaves a torn checkpoint.
 * Deterministic in outcome; runs in about a second. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/checkpoint.h"

#include "tests/check.h"

static char dir[512]; /* this run's scratch directory */

#define MSG(msg, want) CHECK_MSG(msg, want)

static char *
path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
	return buf;
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
	*len = fread(b, 1, (size_t)n, f);
	fclose(f);
	return b;
}

static void
spit(const char *path, const void *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f) {
		CHECK(fwrite(b, 1, len, f) == len);
		fclose(f);
	}
}

/* Names of temporary files left in the scratch directory. */
static int
temp_files(void)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strlen(e->d_name) > 4 && strcmp(e->d_name + strlen(e->d_name) - 4, ".tmp") == 0)
			n++;
	if (d)
		closedir(d);
	return n;
}

/* ---- SHA-256 ------------------------------------------------------------------------------- */

static void
hash_hex(const void *p, size_t n, char hex[65])
{
	Sha256 s;
	unsigned char d[32];
	sha256_init(&s);
	sha256_update(&s, p, n);
	sha256_final(&s, d);
	sha256_hex(d, hex);
}

static void
test_sha256(void)
{
	char hex[65];
	hash_hex("", 0, hex);
	CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
	hash_hex("abc", 3, hex);
	CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	hash_hex(two, strlen(two), hex);
	CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
	/* One million 'a', fed in uneven pieces. */
	static char a[1000];
	memset(a, 'a', sizeof a);
	Sha256 s;
	unsigned char d[32];
	sha256_init(&s);
	for (size_t done = 0, k = 1; done < 1000000; done += k, k = k % 997 + 1) {
		if (done + k > 1000000)
			k = 1000000 - done;
		sha256_update(&s, a, k);
	}
	sha256_final(&s, d);
	sha256_hex(d, hex);
	CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
	/* Every length around the block and padding boundaries, whole versus in pieces. */
	unsigned char buf[300];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t n = 0; n <= sizeof buf; n++) {
		char whole[65], parts[65];
		hash_hex(buf, n, whole);
		for (size_t piece = 1; piece <= 65; piece += 16) {
			sha256_init(&s);
			for (size_t at = 0; at < n; at += piece)
				sha256_update(&s, buf + at, n - at < piece ? n - at : piece);
			sha256_final(&s, d);
			sha256_hex(d, parts);
			CHECK(strcmp(whole, parts) == 0);
		}
	}
	char c[65];
	CHECK(ckpt_checksum((const unsigned char *)"x", 1, 0, c) == -1);
}

/* ---- a model's worth of tensors ------------------------------------------------------------ */

enum { NT = 6 };

typedef struct {
	float conv[4 * 3 * 3 * 3], mean[4], var[4], mom[4 * 3 * 3 * 3];
	int64_t batches;
	uint16_t fc[10 * 4];
	StTensor t[NT];
	CkptExpect e[NT];
} Model;

static const int64_t d_conv[] = {4, 3, 3, 3}, d_bn[] = {4}, d_fc[] = {10, 4};
static const uint64_t rng_state[] = {1, 0xdeadbeefcafef00du, UINT64_MAX, 0};
static const uint64_t order_state[] = {42};
static const StMeta extra_meta[] = {{"model", "resnet20"}, {"precision", "pure fp16"}};

static void
model_init(Model *m, float scale)
{
	for (int i = 0; i < 108; i++) {
		m->conv[i] = scale * (float)i;
		m->mom[i] = -scale * (float)i;
	}
	for (int i = 0; i < 4; i++) {
		m->mean[i] = scale + (float)i;
		m->var[i] = scale * 2 + (float)i;
	}
	for (int i = 0; i < 40; i++)
		m->fc[i] = (uint16_t)(0x3f80 + i + (int)scale);
	m->batches = (int64_t)(1000 * scale);
	const StTensor t[NT] = {
		{.name = "conv1.weight", .dtype = ST_F32, .rank = 4, .dims = d_conv, .data = m->conv},
		{.name = "bn1.running_mean", .dtype = ST_F32, .rank = 1, .dims = d_bn, .data = m->mean},
		{.name = "bn1.running_var", .dtype = ST_F32, .rank = 1, .dims = d_bn, .data = m->var},
		{.name = "bn1.num_batches_tracked", .dtype = ST_I64, .rank = 0, .dims = NULL,
			.data = &m->batches},
		{.name = "optim.conv1.weight.momentum", .dtype = ST_F32, .rank = 4, .dims = d_conv,
			.data = m->mom},
		{.name = "fc.weight", .dtype = ST_BF16, .rank = 2, .dims = d_fc, .data = m->fc},
	};
	for (int i = 0; i < NT; i++) {
		m->t[i] = t[i];
		m->e[i] = (CkptExpect){t[i].name, t[i].dtype, t[i].rank, t[i].dims, NULL};
	}
}

static CkptInfo
info_for(const char *plan, uint64_t epoch)
{
	return (CkptInfo){.plan = plan, .epoch = epoch, .step = epoch * 391 + 5, .rng = rng_state,
		.nrng = 4, .data_order = order_state, .norder = 1, .extra = extra_meta, .nextra = 2};
}

static int
save(const char *path, float scale, uint64_t epoch, unsigned flags, char *err, size_t errlen)
{
	Model m;
	model_init(&m, scale);
	CkptInfo info = info_for("plan-A", epoch);
	return ckpt_save(path, m.t, NT, &info, flags, err, errlen);
}

/* Loads PATH expecting the model saved with SCALE at EPOCH. */
static void
check_load(const char *path, float scale, uint64_t epoch, int line)
{
	Model want, got;
	model_init(&want, scale);
	model_init(&got, -1);
	memset(got.conv, 0, sizeof got.conv);
	void *dst[NT] = {got.conv, got.mean, got.var, &got.batches, got.mom, got.fc};
	for (int i = 0; i < NT; i++)
		got.e[i].dst = dst[i];
	Ckpt c;
	char err[512] = "";
	int rc = ckpt_load(path, "plan-A", got.e, NT, &c, err, sizeof err);
	checks++;
	if (rc != 0) {
		failures++;
		fprintf(stderr, "%s:%d: load failed: %s\n", __FILE__, line, err);
		return;
	}
	CHECK(memcmp(got.conv, want.conv, sizeof want.conv) == 0);
	CHECK(memcmp(got.mean, want.mean, sizeof want.mean) == 0);
	CHECK(memcmp(got.var, want.var, sizeof want.var) == 0);
	CHECK(memcmp(got.mom, want.mom, sizeof want.mom) == 0);
	CHECK(memcmp(got.fc, want.fc, sizeof want.fc) == 0);
	CHECK(got.batches == want.batches);
	CHECK(c.epoch == epoch && c.step == epoch * 391 + 5);
	CHECK(strcmp(c.plan, "plan-A") == 0);
	CHECK(c.nrng == 4 && memcmp(c.rng, rng_state, sizeof rng_state) == 0);
	CHECK(c.norder == 1 && c.data_order[0] == 42);
	CHECK(strcmp(st_meta_get(c.file, "model"), "resnet20") == 0);
	CHECK(strcmp(st_meta_get(c.file, "precision"), "pure fp16") == 0);
	CHECK(strcmp(st_meta_get(c.file, "nnc.format"), CKPT_FORMAT) == 0);
	CHECK(st_count(c.file) == NT);
	ckpt_close(&c);
	CHECK(c.file == NULL && c.rng == NULL);
	ckpt_close(&c); /* twice is harmless */
}

/* Loading PATH must fail with WANT in the message; the destination stays untouched. */
static void
load_fails(const char *path, const char *plan, const CkptExpect *e, size_t ne, const char *want,
	int line)
{
	Ckpt c;
	char err[512] = "";
	float dst[108];
	memset(dst, 0xaa, sizeof dst);
	CkptExpect ex[NT + 2] = {{0}};
	for (size_t i = 0; i < ne; i++) {
		ex[i] = e[i];
		ex[i].dst = strcmp(e[i].name, "conv1.weight") == 0 ? dst : NULL;
	}
	int rc = ckpt_load(path, plan, ex, ne, &c, err, sizeof err);
	checks++;
	if (rc != -1) {
		failures++;
		fprintf(stderr, "%s:%d: load of %s succeeded\n", __FILE__, line, path);
		ckpt_close(&c);
		return;
	}
	check_msg_at(err, want, __FILE__, line);
	CHECK(c.file == NULL && c.rng == NULL && c.data_order == NULL && c.plan == NULL);
	unsigned char aa[sizeof dst];
	memset(aa, 0xaa, sizeof aa);
	CHECK(memcmp(dst, aa, sizeof dst) == 0);
	ckpt_close(&c);
}
#define LOAD_FAILS(path, plan, e, ne, want) load_fails(path, plan, e, ne, want, __LINE__)

/* ---- tests --------------------------------------------------------------------------------- */

static void
test_roundtrip(void)
{
	char p[600], err[512] = "";
	path_in(p, sizeof p, "rt.ckpt");
	CHECK(save(p, 0.5f, 3, 0, err, sizeof err) == 0);
	check_load(p, 0.5f, 3, __LINE__);
	CHECK(temp_files() == 0);

	/* It is a plain safetensors file too. */
	StFile *f;
	CHECK(st_open(p, &f, err, sizeof err) == 0);
	if (f) {
		CHECK(st_find(f, "fc.weight") && st_find(f, "fc.weight")->dtype == ST_BF16);
		CHECK(strcmp(st_meta_get(f, "nnc.epoch"), "3") == 0);
		CHECK(strcmp(st_meta_get(f, "nnc.step"), "1178") == 0);
		CHECK(strcmp(st_meta_get(f, "nnc.rng"), "0000000000000001,deadbeefcafef00d,"
			"ffffffffffffffff,0000000000000000") == 0);
		CHECK(strcmp(st_meta_get(f, "nnc.data_order"), "000000000000002a") == 0);
		st_close(f);
	}

	/* The checksum, recomputed from its documented definition. */
	size_t len;
	unsigned char *b = slurp(p, &len);
	static const char key[] = "\"nnc.checksum\":\"sha256:";
	size_t at = 0, hits = 0;
	for (size_t i = 0; i + sizeof key - 1 <= len; i++)
		if (memcmp(b + i, key, sizeof key - 1) == 0)
			at = i + sizeof key - 1, hits++;
	CHECK(hits == 1);
	char stored[65], hex[65];
	memcpy(stored, b + at, 64);
	stored[64] = 0;
	memset(b + at, '0', 64);
	hash_hex(b, len, hex);
	CHECK(strcmp(hex, stored) == 0);
	CHECK(ckpt_checksum(b, len, at, hex) == 0 && strcmp(hex, stored) == 0);
	free(b);

	/* Empty state words, no extra metadata, no tensors at all. */
	CkptInfo bare = {.plan = "p"};
	CHECK(ckpt_save(p, NULL, 0, &bare, 0, err, sizeof err) == 0);
	Ckpt c;
	CHECK(ckpt_load(p, NULL, NULL, 0, &c, err, sizeof err) == 0);
	CHECK(c.nrng == 0 && c.rng == NULL && c.norder == 0 && c.epoch == 0 && c.step == 0);
	CHECK(st_count(c.file) == 0 && strcmp(c.plan, "p") == 0);
	ckpt_close(&c);

	/* A relative path (directory ".") works too. */
	char cwd[1024];
	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	CHECK(chdir(dir) == 0);
	CHECK(save("rel.ckpt", 1, 1, 0, err, sizeof err) == 0);
	check_load("rel.ckpt", 1, 1, __LINE__);
	unlink("rel.ckpt");
	CHECK(chdir(cwd) == 0);
	unlink(p);
}

static void
test_every_byte(void)
{
	char p[600], q[600], err[512];
	path_in(p, sizeof p, "flip.ckpt");
	path_in(q, sizeof q, "flipped.ckpt");
	CHECK(save(p, 2, 9, 0, err, sizeof err) == 0);
	size_t len;
	unsigned char *b = slurp(p, &len);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | b[i];
	int mismatches = 0;
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			b[i] ^= (unsigned char)(1u << bit);
			spit(q, b, len);
			b[i] ^= (unsigned char)(1u << bit);
			Ckpt c;
			int rc = ckpt_load(q, "plan-A", NULL, 0, &c, err, sizeof err);
			checks++;
			if (rc == 0) {
				failures++;
				fprintf(stderr, "byte %zu bit %d flipped: not detected\n", i, bit);
				ckpt_close(&c);
				continue;
			}
			if (strstr(err, "checksum mismatch"))
				mismatches++;
			if (i >= 8 + hlen)
				MSG(err, "flipped.ckpt: checksum mismatch: the file is corrupt (stored sha256 ");
		}
	}
	CHECK(mismatches > (int)len); /* most changes survive parsing and are caught by the hash */
	free(b);
	unlink(p);
	unlink(q);
}

static void
test_truncated(void)
{
	char p[600], q[600], err[512];
	path_in(p, sizeof p, "trunc.ckpt");
	path_in(q, sizeof q, "truncated.ckpt");
	CHECK(save(p, 1, 1, 0, err, sizeof err) == 0);
	size_t len;
	unsigned char *b = slurp(p, &len);
	size_t cuts[] = {0, 1, 7, 8, 9, 100, len / 2, len - 100, len - 5, len - 1};
	for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
		spit(q, b, cuts[i]);
		LOAD_FAILS(q, "plan-A", NULL, 0, "truncated");
	}
	/* Extra bytes at the end are corruption too. */
	unsigned char *longer = malloc(len + 1);
	memcpy(longer, b, len);
	longer[len] = 0;
	spit(q, longer, len + 1);
	LOAD_FAILS(q, "plan-A", NULL, 0, "1 trailing bytes");
	free(longer);
	free(b);
	LOAD_FAILS("/nonexistent/x.ckpt", NULL, NULL, 0, "/nonexistent/x.ckpt: cannot open");
	unlink(p);
	unlink(q);
}

/* Writes a safetensors file with metadata META and, if it has "nnc.checksum", a valid one. */
static void
forge(const char *path, const StMeta *meta, size_t nmeta)
{
	static const float v[2] = {1, 2};
	static const int64_t d[] = {2};
	StTensor t = {.name = "w", .dtype = ST_F32, .rank = 1, .dims = d, .data = v};
	StHeader h;
	char err[512];
	CHECK(st_header_build(path, &t, 1, meta, nmeta, &h, err, sizeof err) == 0);
	size_t len = h.len + 8;
	unsigned char *b = malloc(len);
	memcpy(b, h.bytes, h.len);
	memcpy(b + h.len, v, 8);
	for (size_t j = 0; j < nmeta; j++)
		if (strcmp(meta[j].key, "nnc.checksum") == 0 && strlen(meta[j].value) == 71) {
			char hex[65];
			CHECK(ckpt_checksum(b, len, h.meta_pos[j] + 7, hex) == 0);
			memcpy(b + h.meta_pos[j] + 7, hex, 64);
		}
	spit(path, b, len);
	free(b);
	st_header_free(&h);
}

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

static void
test_format_checks(void)
{
	char p[600];
	path_in(p, sizeof p, "forged.ckpt");
	StMeta m[] = {
		{"nnc.format", "nnc-checkpoint 2"}, {"nnc.plan", "plan-A"}, {"nnc.epoch", "1"},
		{"nnc.step", "2"}, {"nnc.rng", ""}, {"nnc.data_order", ""},
		{"nnc.checksum", "sha256:" ZEROS},
	};
	forge(p, m, 7);
	LOAD_FAILS(p, "plan-A", NULL, 0, "forged.ckpt: unsupported checkpoint format "
		"'nnc-checkpoint 2' (this build reads 'nnc-checkpoint 1')");
	m[0].value = CKPT_FORMAT;
	forge(p, m, 7);
	Ckpt c;
	char err[512];
	CHECK(ckpt_load(p, "plan-A", NULL, 0, &c, err, sizeof err) == 0); /* the forgery is valid */
	CHECK(c.epoch == 1 && c.step == 2 && c.nrng == 0 && c.norder == 0);
	ckpt_close(&c);

	/* A plain safetensors file, and missing or malformed nnc.* entries. */
	forge(p, NULL, 0);
	LOAD_FAILS(p, NULL, NULL, 0, "forged.ckpt: not an nnc checkpoint (no nnc.format in its metadata)");
	forge(p, m, 6);
	LOAD_FAILS(p, NULL, NULL, 0, "forged.ckpt: corrupt checkpoint: nnc.checksum is missing or malformed");
	m[6].value = "sha256:" "ABCDEF" ZEROS;
	m[6].value += 6; /* still 71 characters, but "sha256:" is gone */
	forge(p, m, 7);
	LOAD_FAILS(p, NULL, NULL, 0, "nnc.checksum is missing or malformed");
	m[6].value = "sha256:" ZEROS;
	static const struct {
		int idx;
		const char *value, *want;
	} bad[] = {
		{2, "", "corrupt checkpoint: nnc.epoch is missing or malformed"},
		{2, "-1", "nnc.epoch is missing or malformed"},
		{2, "18446744073709551616", "nnc.epoch is missing or malformed"},
		{3, "1x", "nnc.step is missing or malformed"},
		{4, "123", "nnc.rng is missing or malformed"},
		{4, "000000000000000g", "nnc.rng is missing or malformed"},
		{4, "0000000000000001;0000000000000002", "nnc.rng is missing or malformed"},
		{4, "0000000000000001,", "nnc.rng is missing or malformed"},
		{4, "000000000000000A", "nnc.rng is missing or malformed"},
		{5, "x", "nnc.data_order is missing or malformed"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		StMeta mm[7];
		memcpy(mm, m, sizeof mm);
		mm[bad[i].idx].value = bad[i].value;
		forge(p, mm, 7);
		LOAD_FAILS(p, NULL, NULL, 0, bad[i].want);
	}
	StMeta noplan[6] = {m[0], m[2], m[3], m[4], m[5], m[6]};
	forge(p, noplan, 6);
	LOAD_FAILS(p, NULL, NULL, 0, "nnc.plan is missing or malformed");
	unlink(p);
}

static void
test_plan_and_tensors(void)
{
	char p[600], err[512];
	path_in(p, sizeof p, "plan.ckpt");
	CHECK(save(p, 1, 4, 0, err, sizeof err) == 0);
	Model m;
	model_init(&m, 1);

	LOAD_FAILS(p, "plan-B", m.e, NT, "plan.ckpt: plan mismatch: the checkpoint was written for "
		"plan 'plan-A', this run's plan is 'plan-B'");
	Ckpt c;
	CHECK(ckpt_load(p, NULL, m.e, NT, &c, err, sizeof err) == 0); /* NULL: any plan */
	ckpt_close(&c);

	static const int64_t d10[] = {10}, d8[] = {10, 8};
	CkptExpect e[NT + 2];
	memcpy(e, m.e, sizeof m.e);
	e[NT] = (CkptExpect){"fc.bias", ST_F32, 1, d10, NULL};
	LOAD_FAILS(p, "plan-A", e, NT + 1, "plan.ckpt: missing tensor 'fc.bias' (expected F32 [10])");
	e[NT + 1] = (CkptExpect){"fc2.bias", ST_F32, 1, d10, NULL};
	LOAD_FAILS(p, "plan-A", e, NT + 2, "missing tensor 'fc.bias' (expected F32 [10]) (and 1 more missing)");

	memcpy(e, m.e, sizeof m.e);
	e[5].dims = d8;
	LOAD_FAILS(p, "plan-A", e, NT, "plan.ckpt: shape mismatch: tensor 'fc.weight' is BF16 [10, 4] "
		"in the checkpoint, expected BF16 [10, 8]");
	memcpy(e, m.e, sizeof m.e);
	e[5].dtype = ST_F16;
	LOAD_FAILS(p, "plan-A", e, NT, "tensor 'fc.weight' is BF16 [10, 4] in the checkpoint, expected F16 [10, 4]");
	memcpy(e, m.e, sizeof m.e);
	e[3].rank = 1;
	e[3].dims = d10;
	LOAD_FAILS(p, "plan-A", e, NT, "tensor 'bn1.num_batches_tracked' is I64 [] in the checkpoint, "
		"expected I64 [10]");
	memcpy(e, m.e, sizeof m.e);
	e[0].dims = NULL;
	LOAD_FAILS(p, "plan-A", e, NT, "expectation 0 is invalid");

	/* A subset of the tensors may be asked for. */
	CHECK(ckpt_load(p, "plan-A", m.e + 2, 2, &c, err, sizeof err) == 0);
	ckpt_close(&c);
	unlink(p);
}

static void
test_save_errors(void)
{
	char p[600], err[512];
	path_in(p, sizeof p, "err.ckpt");
	CHECK(save(p, 1, 1, 0, err, sizeof err) == 0);
	Model m;
	model_init(&m, 7);
	CkptInfo info = info_for("plan-A", 7);

	/* Rejected before anything is written. */
	CkptInfo bad = info;
	bad.plan = NULL;
	CHECK(ckpt_save(p, m.t, NT, &bad, 0, err, sizeof err) == -1);
	MSG(err, "err.ckpt: cannot save checkpoint: no plan identity given");
	bad = info;
	StMeta reserved[] = {{"nnc.format", "mine"}};
	bad.extra = reserved;
	bad.nextra = 1;
	CHECK(ckpt_save(p, m.t, NT, &bad, 0, err, sizeof err) == -1);
	MSG(err, "metadata key 'nnc.format' is reserved");
	bad = info;
	bad.rng = NULL;
	CHECK(ckpt_save(p, m.t, NT, &bad, 0, err, sizeof err) == -1);
	MSG(err, "NULL rng, data_order or extra array with a non-zero count");
	CHECK(ckpt_save(p, m.t, NT, &info, 4, err, sizeof err) == -1);
	MSG(err, "unknown flags 0x4");
	StTensor dup[2] = {m.t[0], m.t[0]};
	CHECK(ckpt_save(p, dup, 2, &info, 0, err, sizeof err) == -1);
	MSG(err, "err.ckpt: duplicate tensor name 'conv1.weight'");
	check_load(p, 1, 1, __LINE__);
	CHECK(temp_files() == 0);

	/* The disk fills up (the file-size limit is hit) in the middle of the data. */
	struct rlimit old, lim;
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 1000;
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	int rc = ckpt_save(p, m.t, NT, &info, 0, err, sizeof err);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, oldsig);
	CHECK(rc == -1);
	MSG(err, "err.ckpt: cannot save checkpoint: ");
	MSG(err, "err.ckpt.tmp");
	MSG(err, "File too large; the previous checkpoint is unchanged");
	check_load(p, 1, 1, __LINE__);
	CHECK(temp_files() == 0);

	/* The directory does not exist. */
	char q[600];
	path_in(q, sizeof q, "missing/dir/x.ckpt");
	CHECK(ckpt_save(q, m.t, NT, &info, 0, err, sizeof err) == -1);
	MSG(err, "missing/dir/x.ckpt: cannot save checkpoint: cannot create ");
	MSG(err, "No such file or directory");

	/* PATH is a non-empty directory: everything is written, then the rename is refused. */
	path_in(q, sizeof q, "isdir.ckpt");
	char inner[700];
	snprintf(inner, sizeof inner, "%s/keep", q);
	CHECK(mkdir(q, 0755) == 0);
	spit(inner, "x", 1);
	CHECK(ckpt_save(q, m.t, NT, &info, 0, err, sizeof err) == -1);
	MSG(err, "isdir.ckpt: cannot save checkpoint: cannot rename ");
	MSG(err, "; the previous checkpoint is unchanged");
	CHECK(temp_files() == 0);
	unlink(inner);
	rmdir(q);

	/* A read-only directory (meaningless as root, who may write anyway). */
	if (geteuid() != 0) {
		path_in(q, sizeof q, "ro");
		CHECK(mkdir(q, 0755) == 0);
		snprintf(inner, sizeof inner, "%s/x.ckpt", q);
		CHECK(save(inner, 1, 1, 0, err, sizeof err) == 0);
		CHECK(chmod(q, 0555) == 0);
		CHECK(save(inner, 2, 2, 0, err, sizeof err) == -1);
		MSG(err, "cannot create ");
		MSG(err, "Permission denied");
		check_load(inner, 1, 1, __LINE__);
		CHECK(chmod(q, 0755) == 0);
		unlink(inner);
		rmdir(q);
	}
	unlink(p);
}

static void
test_keep_prev(void)
{
	char p[600], prev[700], err[512];
	path_in(p, sizeof p, "keep.ckpt");
	snprintf(prev, sizeof prev, "%s.prev", p);
	CHECK(save(p, 1, 1, CKPT_KEEP_PREV, err, sizeof err) == 0); /* nothing to keep yet */
	CHECK(access(prev, F_OK) == -1);
	CHECK(save(p, 2, 2, CKPT_KEEP_PREV, err, sizeof err) == 0);
	check_load(p, 2, 2, __LINE__);
	check_load(prev, 1, 1, __LINE__);
	CHECK(save(p, 3, 3, CKPT_KEEP_PREV, err, sizeof err) == 0);
	check_load(p, 3, 3, __LINE__);
	check_load(prev, 2, 2, __LINE__);
	CHECK(save(p, 4, 4, 0, err, sizeof err) == 0); /* without the flag .prev is left alone */
	check_load(p, 4, 4, __LINE__);
	check_load(prev, 2, 2, __LINE__);
	CHECK(temp_files() == 0);
	unlink(p);
	unlink(prev);
}

/* A writer is killed at arbitrary moments; PATH is always a complete checkpoint. */
static void
test_crash(void)
{
	char p[600], err[512];
	path_in(p, sizeof p, "crash.ckpt");
	CHECK(save(p, 1, 1, 0, err, sizeof err) == 0);
	enum { BIG = 1 << 20 };
	static const int64_t dbig[] = {BIG / 4};
	uint64_t last = 1;
	for (int round = 0; round < 12; round++) {
		pid_t pid = fork();
		if (pid == 0) {
			float *big = calloc(BIG / 4, sizeof *big);
			Model m;
			model_init(&m, 1);
			StTensor t[NT + 1];
			memcpy(t, m.t, sizeof m.t);
			t[NT] = (StTensor){.name = "big", .dtype = ST_F32, .rank = 1, .dims = dbig, .data = big};
			for (uint64_t e = 1000 * (uint64_t)(round + 1);; e++) {
				CkptInfo info = info_for("plan-A", e);
				char cerr[512];
				if (ckpt_save(p, t, NT + 1, &info, 0, cerr, sizeof cerr) < 0)
					_exit(3);
			}
		}
		struct timespec ts = {0, 50000L << round}; /* 50 us to 100 ms: before, during, after */
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		Model m;
		model_init(&m, 1);
		Ckpt c;
		int rc = ckpt_load(p, "plan-A", m.e, NT, &c, err, sizeof err);
		checks++;
		if (rc != 0) {
			failures++;
			fprintf(stderr, "after a crash in round %d: %s\n", round, err);
			continue;
		}
		CHECK(c.epoch == last || c.epoch >= 1000 * (uint64_t)(round + 1));
		last = c.epoch;
		ckpt_close(&c);
		/* A crash may leave the killed writer's temporary file, PATH.tmp; the next save removes it. */
		CHECK(temp_files() <= 1);
	}
	Model m;
	model_init(&m, 1);
	CkptInfo info = info_for("plan-A", 1);
	CHECK(ckpt_save(p, m.t, NT, &info, 0, err, sizeof err) == 0);
	CHECK(temp_files() == 0);
	unlink(p);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/nnc-io-ckpt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_sha256();
	test_roundtrip();
	test_every_byte();
	test_truncated();
	test_format_checks();
	test_plan_and_tensors();
	test_save_errors();
	test_keep_prev();
	test_crash();
	if (rmdir(dir) < 0) {
		fprintf(stderr, "rmdir %s: %s (files left behind?)\n", dir, strerror(errno));
		failures++;
	}
	if (failures) {
		fprintf(stderr, "%d of %d checks failed\n", failures, checks);
		return 1;
	}
	printf("checkpoint: %d checks passed\n", checks);
	return 0;
}
