/* CIFAR-10 for training: loads the official binary files once into memory (uint8), and fills
 * caller-provided batches (float NCHW images [B,3,32,32], int32 labels [B]) with normalized and,
 * for training, augmented images in a shuffled order.
 *
 * Invariants:
 *  - Nothing is allocated after cifar_loader_init: cifar_loader_next and cifar_eval_batch only
 *    write into the caller's buffers (and recompute the epoch order in place once per epoch).
 *  - Everything random is a pure function of the seed and the data order state (epoch,
 *    position): epoch e's order is a permutation computed from (seed, e); the augmentation of
 *    the image at position p of epoch e from (seed, e, p). A loader moved to a saved state with
 *    cifar_loader_seek therefore yields exactly the bytes an uninterrupted run yields from
 *    there, and the thread count never changes a result. The generator is the splitmix64 mix
 *    (see data.c); changing it changes every order, so do so only with a checkpoint format bump.
 *  - A training epoch is floor(N/B) full batches; the last N mod B images of an epoch's order
 *    are skipped (as PyTorch's drop_last=True), so every training batch holds B images.
 *    Evaluation visits every image once, in file order; the last batch may be partial.
 *  - Library code: failures return -1 with a message in the caller's buffer; nothing exits. */
#ifndef NNC_DATA_H
#define NNC_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/recipe.h" /* CIFAR_MEAN_*, CIFAR_STD_*: the standard normalization */

enum {
	CIFAR_SIDE = 32,
	CIFAR_CHANNELS = 3,
	CIFAR_PIXELS = 32 * 32,           /* 1024 per channel */
	CIFAR_IMAGE_BYTES = 3 * 32 * 32,  /* 3072 = also the floats per image in a batch */
	CIFAR_RECORD_BYTES = 1 + 3072,    /* label byte + R, G, B planes */
	CIFAR_FILE_RECORDS = 10000,       /* records in each official file */
	CIFAR_TRAIN_FILES = 5,            /* data_batch_1.bin .. data_batch_5.bin */
	CIFAR_CLASSES = 10,
	CIFAR_MAX_THREADS = 64
};

typedef enum { CIFAR_TRAIN = 0, CIFAR_TEST = 1 } CifarSplit;

/* The class name of label 0-9 ("airplane" ... "truck"), or "?" outside that range. */
const char *cifar_class_name(int label);

/* --- the dataset in memory ------------------------------------------------------------------ */

typedef struct {
	int32_t max_train;        /* load at most the first N training images; 0: all 50,000 */
	int32_t max_test;         /* at most the first N test images; 0: all 10,000 */
	int32_t records_per_file; /* 0: 10,000 (the official files); tests use tiny files */
} CifarOpenOptions;

typedef struct {
	uint8_t *images[2]; /* [split]: n[split] images of 3072 bytes, CHW as in the files */
	uint8_t *labels[2]; /* [split]: n[split] labels 0-9 */
	int32_t n[2];       /* images loaded per split (CIFAR_TRAIN, CIFAR_TEST) */
} CifarData;

/* Loads dir/data_batch_1.bin .. data_batch_5.bin and dir/test_batch.bin (or those inside
 * dir/cifar-10-batches-bin/ when that folder exists). With a limit, only the files holding the
 * first N images are opened and read. Every opened file must be exactly records_per_file x
 * 3073 bytes and every label read must be 0-9. opt may be NULL (everything, official sizes).
 * Returns 0, or -1 with d left empty and a message naming the file and the problem:
 *   "DIR/data_batch_3.bin: cannot open: No such file or directory"
 *   "DIR/test_batch.bin: truncated: expected 30730000 bytes (10000 records of 3073), got 3073"
 *   "DIR/test_batch.bin: wrong size: expected 30730000 bytes (10000 records of 3073), got ..."
 *   "DIR/data_batch_2.bin: record 17: label 10 is outside 0-9" */
int cifar_open(CifarData *d, const char *dir, const CifarOpenOptions *opt, char *err, size_t errlen);
void cifar_close(CifarData *d);

/* --- batches ------------------------------------------------------------------------------ */

typedef struct {
	int32_t batch;   /* B, images per batch; 1 <= B <= training images */
	uint64_t seed;   /* all order and augmentation randomness derives from it */
	int shuffle;     /* 1: a new permutation of the training set each epoch; 0: file order */
	float mean[3];   /* output = (pixel / 255 - mean[c]) / std[c]; mean 0 and std 1 give [0, 1] */
	float std[3];
	/* Training augmentation, applied in this order (evaluation batches get none of it): */
	int crop_pad;    /* P > 0: a random 32x32 crop of the image padded by P black pixels on
			    each side, as torchvision's RandomCrop(32, padding=P) (padding is in
			    pixel space: padded pixels normalize to (0 - mean) / std); 0: off */
	int crop_reflect; /* 1: the crop's padding reflects the image (nnc_crop_src) instead */
	int flip;        /* 1: horizontal flip with probability 0.5; 2: alternating (nnc_flip_of) */
	int cutout;      /* S > 0: after normalization, zero an S x S square (rows cy - S/2 to
			    cy - S/2 + S - 1, likewise columns) around a centre (cy, cx) uniform
			    over the 32x32 image, clipped at the borders (DeVries & Taylor 2017);
			    0 is the dataset mean colour after normalization. 0: off */
	int threads;     /* threads that fill a batch, the caller's included; 1..64 */
} CifarConfig;

/* Sets c to: batch B, the given seed, shuffling on, the standard mean/std (core/recipe.h), no
 * augmentation, one thread. Typical training adds crop_pad = 4 and flip = 1. */
void cifar_config_default(CifarConfig *c, int32_t batch, uint64_t seed);

/* Sets c as a run of recipe R renders batches: its normalization and seed, and with TRAIN its
 * augmentation (crop, reflection, flip, cutout); evaluation batches get none. */
void cifar_config_recipe(CifarConfig *c, const Recipe *r, int32_t batch, bool train);

/* The data order state, all a checkpoint needs to resume the batch stream exactly. */
typedef struct {
	uint64_t epoch;    /* epochs completed */
	uint64_t position; /* images of this epoch's order already delivered (a multiple of B in
			      an uninterrupted run); always <= N - B */
} CifarOrder;

/* The random choices for one training image. */
typedef struct {
	int dy, dx;  /* crop offset into the padded image, each in [0, 2P] */
	int flip;    /* 0 or 1 */
	int cy, cx;  /* cutout centre, each in [0, 31] */
} CifarAug;

typedef struct CifarPool CifarPool;

typedef struct {
	const CifarData *data;  /* borrowed; must outlive the loader */
	CifarConfig cfg;
	CifarOrder order;       /* where the next training batch starts */
	uint32_t *perm;         /* the order of epoch perm_epoch (data->n[CIFAR_TRAIN] entries) */
	uint64_t perm_epoch;
	int perm_valid;
	float lut[3][256];      /* normalized value of each pixel byte, per channel */
	CifarPool *pool;        /* helper threads when cfg.threads > 1 */
} CifarLoader;

/* Checks cfg against the data and prepares the loader at order (0, 0). Returns 0, or -1 with a
 * message (bad batch size, crop padding, cutout size, std, thread count; out of memory;
 * threads that cannot be started). */
int cifar_loader_init(CifarLoader *l, const CifarData *d, const CifarConfig *cfg, char *err,
		      size_t errlen);
void cifar_loader_free(CifarLoader *l);

/* Training batches per epoch: floor(N / B). */
int64_t cifar_batches_per_epoch(const CifarLoader *l);

/* Fills x [B,3,32,32] and y [B] with the training batch at l->order, then advances the order
 * by B images (to (epoch + 1, 0) when fewer than B images of the epoch remain). */
void cifar_loader_next(CifarLoader *l, float *x, int32_t *y);

/* Moves the order past one training batch without rendering it: what cifar_loader_next does
 * to the order, for a run whose batches are rendered elsewhere (the GPU's resident loop). */
void cifar_loader_advance(CifarLoader *l);

/* Moves to a saved order state. position may be any value 0..N; a position with fewer than B
 * images left means the start of the next epoch. Returns 0, or -1 with a message. */
int cifar_loader_seek(CifarLoader *l, CifarOrder o, char *err, size_t errlen);

/* Fills x and y with images first .. first + B - 1 of a split, in file order, normalized and not
 * augmented. Returns how many are valid: B, fewer for the last batch, 0 once first >= N; the
 * slots past them are zeroed, with label -1. Loop: for (f = 0; (k = cifar_eval_batch(..f..));
 * f += k). */
int32_t cifar_eval_batch(CifarLoader *l, CifarSplit split, int64_t first, float *x, int32_t *y);

/* Test-time augmentation (airbench's, recipe tta): view VIEW of N rendered images X
 * [n, 3, 32, 32] into OUT: 0 the images, 1 mirrored; 2 translated by one pixel down and right
 * (the image reflect-padded by one pixel, PyTorch's 'reflect' without the edge pixel repeated,
 * and cropped at its top-left corner), 3 that mirrored; 4 translated up and left (cropped at
 * the bottom-right corner), 5 that mirrored. Level 1 averages views 0-1, level 2 weighs views
 * 0-1 by 1/4 and 2-5 by 1/8 (cifar_tta_weight); cifar_tta_views gives the count. */
enum { CIFAR_TTA_MAX_VIEWS = 6 };
void cifar_tta_view(const float *x, int32_t n, int view, float *out);
int cifar_tta_views(int level);
double cifar_tta_weight(int level, int view);

/* The building blocks, exposed for tests and tools. */

/* Epoch `epoch`'s order of n images for `seed`: a uniformly random permutation (Fisher-Yates). */
void cifar_epoch_order(uint64_t seed, uint64_t epoch, uint32_t *perm, uint32_t n);

/* The augmentation choices for the image at `position` of `epoch` (all drawn whatever cfg
 * enables, so turning one augmentation off leaves the others' choices unchanged). */
CifarAug cifar_aug_draw(const CifarConfig *cfg, uint64_t epoch, uint64_t position);

/* Renders one image (3072 bytes, CHW) into out [3,32,32] with l's normalization and the
 * augmentations that l's configuration enables, using the choices in a (NULL: none). */
void cifar_render(const CifarLoader *l, const uint8_t *image, const CifarAug *a, float *out);

#endif
