/*
 * limits.h - every size limit on untrusted input, with the reason for its number.
 *
 * Decoders check these before they allocate or decode a pixel, so a lying header or a
 * decompression bomb costs nothing. The daemon copies the defaults into a segloss_limits, lets
 * flags change them, and passes the struct down.
 */
#ifndef SEGLOSS_LIMITS_H
#define SEGLOSS_LIMITS_H

#include <stddef.h>

/* ADE20K-full has 847 classes; the confusion matrix is C*C 64-bit counters (8 MiB at 1024). */
#define SEGLOSS_MAX_CLASSES 1024
/* The most classes any configuration may allow (--max-classes): a 4096-class confusion matrix
 * is 128 MiB, held once per evaluation and once per stored aggregate, which is as far as one
 * request on a machine of a few GiB should go. Stats above it are refused when read back. */
#define SEGLOSS_MAX_CLASSES_CEILING 4096
/* One side of an image or logit map: 16384 covers every segmentation dataset in use (and is
 * libpng's own default user limit order of magnitude). */
#define SEGLOSS_MAX_SIDE 16384
/* Pixels of one mask or logit map: 64 Mpx (an 8K x 8K tile); more is a mistake or an attack. */
#define SEGLOSS_MAX_PIXELS ((size_t)64 << 20)
/* Batch items in one request. */
#define SEGLOSS_MAX_BATCH 4096
/* Elements of one tensor: 1 Gi elements (4 GiB of float32), above the default body limit. */
#define SEGLOSS_MAX_ELEMENTS ((size_t)1 << 30)
/* numpy writes headers of a few hundred bytes; its own reader refuses more than 10000. */
#define SEGLOSS_NPY_MAX_HEADER 10000
/* A safetensors header for a handful of tensors is well under 1 KiB; 1 MiB is generous. */
#define SEGLOSS_SAFETENSORS_MAX_HEADER ((size_t)1 << 20)
/* libpng ancillary chunk allocation cap (zTXt, iCCP, ...): masks need none of them. */
#define SEGLOSS_PNG_CHUNK_MAX ((size_t)1 << 20)
/* Compressed PNG data libpng may read once the last row is under way, beyond two rows' worth.
 * An encoder leaves a few bytes (end of stream, checksum) and libpng reads ahead 8 KiB;
 * without a cap libpng inflates any amount more, 1000x amplified, so 100 MB of deflated zeros
 * behind a 1x1 image would cost minutes of CPU. 16 KiB bounds that at ~17 MB of inflate. */
#define SEGLOSS_PNG_TRAILING_IDAT_MAX ((size_t)16 << 10)
/* A class weight or alpha above this is a typo; it would also overflow the exact sums. */
#define SEGLOSS_MAX_WEIGHT 1e6
/* Largest logit magnitude accepted (a NaN or infinity is refused as well). A pixel's
 * cross-entropy is at most the spread of its logits plus ln C, so at most 2e8 + 7: the exact
 * sums (range +-2.4e21) then hold a run of 1e12 pixels, and the float32 kernels never see an
 * infinite difference (which +-3.39e38 logits gave). float16 ends at 65504; real logits are
 * at most a few hundred. Exactly representable in float32, so every dtype is checked alike. */
#define SEGLOSS_MAX_LOGIT 1e8

typedef struct segloss_limits {
    size_t max_classes;
    size_t max_side;
    size_t max_pixels; /* H*W of one image */
    size_t max_batch;
    size_t max_elements; /* of one tensor */
} segloss_limits;

/* Fills *limits with the SEGLOSS_MAX_* defaults above. A segloss_ctx starts with them;
 * segloss_ctx_set_limits (loss.h) gives it the configured ones. */
void segloss_limits_default(segloss_limits *limits);

#endif
