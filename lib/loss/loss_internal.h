/*
 * loss_internal.h - what the evaluation's files share: the kernel interface, the per-thread
 * accumulator, and the exact fixed-point sums. Not installed; the public API is
 * include/segloss/loss.h.
 *
 * The evaluation cuts the output grid (N images x H rows at mask resolution) into fixed chunks
 * of whole rows of one image, whatever the thread count. A chunk is cut into blocks of at most
 * SEGLOSS__BLOCK pixels laid out planar (class k of pixel i at x[k * class_stride + i]) and a
 * kernel folds each block into a segloss__acc of doubles. At the end of a chunk the doubles are
 * rounded once into 128-bit fixed point and added to the thread's totals: integer addition is
 * associative, so the answer is bit-identical for any thread count, chunk order or batch split.
 */
#ifndef SEGLOSS_LOSS_INTERNAL_H
#define SEGLOSS_LOSS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "segloss/loss.h"

/* Pixels per kernel block, a multiple of every vector width. Small, so that the block's copy
 * of the logits and their exponentials (2 x 5 KiB for C = 21) leave most of L1 to the next
 * block's lines as they are prefetched, and reads of the input are spread evenly over the
 * computation: against 256, 64 took the N=8 C=21 512x512 pass from 20 to 16 ms on 2 threads
 * and from 29 to 25 ms on 1 (tests/bench/bench_loss.c, alternating runs), although on data
 * already in cache it costs about 10% more per pixel. */
#define SEGLOSS__BLOCK 64
/* Pixels per chunk (rounded to whole rows): large enough to amortise the per-chunk fixed-point
 * rounding and scheduling, small enough that 8 x 512 x 512 gives 128 chunks to balance. */
#define SEGLOSS__CHUNK_PIXELS 16384
/* Floats per converted-row buffer (two per worker) up to which a resize of non-float32 logits
 * keeps every class's source rows converted while output rows map to the same pair; larger
 * shapes convert one class's rows per block. 1 MiB: 21 classes of 12 483 columns. */
#define SEGLOSS__ROW_CACHE_FLOATS ((size_t)1 << 18)
/* Pixels a worker may count into its packed confusion matrix before unpacking it. */
#define SEGLOSS__CONFUSION_FOLD ((uint64_t)1 << 31)
/* Fraction bits of segloss_sum: resolution 1.4e-17, range +-2.4e21 (a dataset of 1e12 pixels
 * at a per-pixel loss of 1e9 still fits). */
#define SEGLOSS__SUM_FRAC_BITS 56

__extension__ typedef __int128 segloss__i128;

segloss__i128 segloss__sum_get(segloss_sum s);
segloss_sum segloss__sum_make(segloss__i128 v);
/* *s += x, rounding x once to the fixed-point grid. SEGLOSS_ELIMIT when out of range. */
int segloss__sum_add_double(segloss_sum *s, double x);
/* *s += t exactly. SEGLOSS_ELIMIT on overflow. */
int segloss__sum_add(segloss_sum *s, segloss_sum t);

/* Per-class tables the kernels index by label; entry C (the ignore class) is 0 everywhere. */
typedef struct segloss__kernel_params {
    size_t c;
    const double *ce_w;    /* [C+1] CE weight w[y] */
    const double *focal_e; /* [C+1] seed: w[y] (logpt = w*log p); standard: 1 */
    const double *focal_m; /* [C+1] seed: alpha[y]; standard: alpha[y] * w[y] */
    const float *ce_w_f, *focal_e_f, *focal_m_f; /* the same, in float, for vector kernels */
    double gamma, threshold;
    int seed;                /* 1: Dice/f_score probability sums include ignored pixels */
    int unit_focal_exponent; /* focal_e[k] = 1 for every class: p_t is the label's softmax */
    int uniform_tables;      /* and also ce_w[k] = 1 and one focal_m for every class */
} segloss__kernel_params;

typedef struct segloss__block {
    const float *x; /* logits: x[k * class_stride + i] */
    size_t class_stride;
    size_t count;           /* pixels in the block, 1..SEGLOSS__BLOCK */
    const float *next_x;    /* NULL, or the next block's logits (same class stride): a kernel
                             * may prefetch them while it computes this one */
    const uint16_t *labels; /* count labels, the ignore class is C */
    uint16_t *argmax;       /* NULL, or where the count predicted classes go */
} segloss__block;

/* What a kernel adds to; the evaluation owns it and zeroes the sums per chunk. Every
 * per-class array has a spare entry C, and the confusion matrix a spare row C, so a vector
 * kernel can add an ignored pixel's (zero) terms there without a branch; they are dropped. */
typedef struct segloss__acc {
    double ce_num, ce_den, focal_num;
    double *dice_tp, *dice_psum;      /* [C+1] */
    uint64_t *fscore_tp, *fscore_pos; /* [C+1] */
    /* [(C+1)*C] row = label: pixel counts in the low 32 bits; a kernel may count, in the high
     * 32 bits, the pixels whose arg-max probability passes a threshold of 0.5 or more (then
     * the only class that can pass), instead of adding to fscore_tp / fscore_pos itself.
     * The evaluation unpacks it before the low half can overflow (SEGLOSS__CONFUSION_FOLD). */
    uint64_t *confusion;
    uint64_t valid;
    int nonfinite; /* set when the block held a NaN, an infinity or a logit beyond
                    * +-SEGLOSS_MAX_LOGIT */
} segloss__acc;

/* Class stride of planar buffers in scratch: one block plus a cache line, so that the C rows
 * of a block fall into different cache sets (a stride of exactly 1 KiB, like the 1 MiB planes
 * of a 512x512 input, maps every class onto the same few sets and thrashes L1 and L2). */
#define SEGLOSS__PLANE (SEGLOSS__BLOCK + 16)
/* Kernel scratch per worker, in floats (64-byte aligned): a copy of the block's logits, their
 * exponentials and a few per-pixel values. */
#define SEGLOSS__SCRATCH_FLOATS(c) ((2 * (c) + 6) * (size_t)SEGLOSS__PLANE)

typedef void (*segloss__kernel_fn)(const segloss__kernel_params *kp, const segloss__block *b,
                                   segloss__acc *acc, float *scratch);
/* Bilinear column tables for resizing (align_corners=True), by output column j: the two source
 * columns, the weight of the second, and, when the 8-column group holding j reads no source
 * column outside the 8 floats from window[j / 8] (any upsampling), the offsets of j's two
 * columns in that window; window is -1 for other groups. A vector kernel loads the window once
 * per group and permutes it instead of gathering. */
typedef struct segloss__lerp_cols {
    const int32_t *c0, *c1, *off0, *off1, *window;
    const float *l1;
} segloss__lerp_cols;

/* align_corners=True source positions of `out` points over `in` (PyTorch's scale and index):
 * the two neighbours and the weight of the second (resize.c). */
void segloss__resize_axis(size_t in, size_t out, size_t *i0, size_t *i1, float *l1);
/* The column tables for w_out output columns over w_in source columns from resize_axis's
 * output; the arrays live in *storage (one block, free() it, also on failure). Sides are far
 * below INT32_MAX (limits.h). */
int segloss__lerp_cols_build(size_t w_in, size_t w_out, const size_t *col0, const size_t *col1,
                             const float *l1, int32_t **storage, segloss__lerp_cols *out);

/* Output columns col..col+count-1 of one row between source rows s0 and s1 (weight of s1:
 * l1y) into dst, in PyTorch's upsample_bilinear2d order:
 * l0y * (l0x * v00 + l1x * v01) + l1y * (l0x * v10 + l1x * v11), no fused multiply-adds, so
 * every version gives the same bits. */
typedef void (*segloss__lerp_fn)(const float *s0, const float *s1, float l1y,
                                 const segloss__lerp_cols *cols, size_t col, size_t count,
                                 float *dst);
/* Converts count logits of a non-f32 dtype to float. */
typedef void (*segloss__convert_fn)(segloss_dtype dtype, const void *src, size_t count, float *dst);

void segloss__kernel_scalar(const segloss__kernel_params *kp, const segloss__block *b,
                            segloss__acc *acc, float *scratch);
void segloss__convert_scalar(segloss_dtype dtype, const void *src, size_t count, float *dst);
void segloss__lerp_scalar(const float *s0, const float *s1, float l1y,
                          const segloss__lerp_cols *cols, size_t col, size_t count, float *dst);
/* Defined only when the compiler can target AVX2; callers check segloss__cpu_has_avx2(). */
void segloss__kernel_avx2(const segloss__kernel_params *kp, const segloss__block *b,
                          segloss__acc *acc, float *scratch);
void segloss__convert_avx2(segloss_dtype dtype, const void *src, size_t count, float *dst);
void segloss__lerp_avx2(const float *s0, const float *s1, float l1y, const segloss__lerp_cols *cols,
                        size_t col, size_t count, float *dst);
int segloss__cpu_has_avx2(void);
/* Same interface, 16 pixels per vector; callers check segloss__cpu_has_avx512(). */
void segloss__kernel_avx512(const segloss__kernel_params *kp, const segloss__block *b,
                            segloss__acc *acc, float *scratch);
/* AVX-512 F, BW, DQ and VL, with the OS saving the opmask and ZMM state. */
int segloss__cpu_has_avx512(void);

/* What segloss__cpu_features reports: the vector kernels this CPU can run (0 for a
 * SEGLOSS_FORCE_SCALAR build). */
#define SEGLOSS__CPU_AVX2 1u
#define SEGLOSS__CPU_AVX512 2u
unsigned segloss__cpu_features(void);
/* segloss_kernel_choose with the environment value and the CPU's features given, so tests can
 * ask what a CPU without AVX-512 (or AVX2) would answer. */
int segloss__kernel_resolve(segloss_kernel wanted, const char *env, unsigned cpu,
                            segloss_kernel *out, char *detail, size_t detail_len);

/* The persistent worker pool behind a context. */
typedef struct segloss__pool segloss__pool;
typedef void (*segloss__job_fn)(void *arg, unsigned worker);
int segloss__pool_new(segloss__pool **out, unsigned threads);
void segloss__pool_free(segloss__pool *pool);
unsigned segloss__pool_threads(const segloss__pool *pool);
/* Runs fn(arg, w) for w = 0..threads-1 concurrently (w = 0 on the calling thread); returns
 * when all are done. Not reentrant: the context serialises calls. */
void segloss__pool_run(segloss__pool *pool, segloss__job_fn fn, void *arg);
/* A hint that segloss__pool_run follows shortly: parked workers wake now and wait for the job
 * spinning, so the wake-up overlaps the caller's set-up. Thread-safe. */
void segloss__pool_prewake(segloss__pool *pool);
/* For tests: the workers parked on the condition variable right now, and how many times in
 * all a parked worker got up because of a prewake. */
unsigned segloss__pool_parked(segloss__pool *pool);
uint64_t segloss__pool_prewoken(segloss__pool *pool);

/* Context internals the evaluation reads. */
segloss__pool *segloss__ctx_pool(segloss_ctx *ctx);
segloss__kernel_fn segloss__ctx_kernel_fn(const segloss_ctx *ctx);
segloss__convert_fn segloss__ctx_convert_fn(const segloss_ctx *ctx);
segloss__lerp_fn segloss__ctx_lerp_fn(const segloss_ctx *ctx);
void segloss__ctx_lock(segloss_ctx *ctx);
void segloss__ctx_unlock(segloss_ctx *ctx);

#endif
