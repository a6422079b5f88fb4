/*
 * loss.h - the seed's losses and the segmentation metrics, in one pass over the logits.
 *
 * segloss_evaluate() turns logits (N,C,H,W) and labels (N,H,W) into every number of the
 * POST /v1/evaluate answer: cross-entropy, focal, Dice, f_score, the total loss, the confusion
 * matrix and the metrics derived from it. The semantics are those of docs/ARCHITECTURE.md §5:
 * "seed" reproduces the bubbliiiing training code with its quirks, "standard" fixes them.
 *
 * The evaluation first reduces the inputs to a segloss_stats: additive sums (integer counts and
 * 128-bit fixed-point sums, so adding is exact and associative). Merging the stats of K batches
 * and finalising gives bit-for-bit the answer of one request holding all K batches, whatever the
 * thread count and batch order. The runs store keeps stats, not results.
 *
 * Undefined numbers (e.g. cross-entropy when every pixel is ignored, a standard-semantics ratio
 * with a zero denominator) are NaN in the result; the JSON writer turns them into null.
 */
#ifndef SEGLOSS_LOSS_H
#define SEGLOSS_LOSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss/limits.h"
#include "segloss/tensor.h"

typedef enum segloss_semantics { SEGLOSS_SEED = 0, SEGLOSS_STANDARD = 1 } segloss_semantics;
typedef enum segloss_main_loss { SEGLOSS_MAIN_CE = 0, SEGLOSS_MAIN_FOCAL = 1 } segloss_main_loss;
typedef enum segloss_alpha_kind {
    SEGLOSS_ALPHA_NONE = 0,     /* JSON null: no alpha factor */
    SEGLOSS_ALPHA_SCALAR = 1,   /* one number for every class */
    SEGLOSS_ALPHA_PER_CLASS = 2 /* C numbers */
} segloss_alpha_kind;

/* Effective parameters. Arrays are borrowed for the duration of the call that takes them. */
typedef struct segloss_params {
    const double *class_weights; /* num_classes values >= 0, or NULL for all 1 */
    size_t class_weights_len;    /* must be C when class_weights is set */
    segloss_alpha_kind alpha_kind;
    double alpha;                  /* SEGLOSS_ALPHA_SCALAR */
    const double *alpha_per_class; /* SEGLOSS_ALPHA_PER_CLASS: alpha_len values */
    size_t alpha_len;
    double gamma;     /* >= 0 */
    double beta;      /* Dice and f_score beta, > 0 */
    double smooth;    /* >= 0 */
    double threshold; /* f_score: p > threshold counts as predicted */
    segloss_semantics semantics;
    segloss_main_loss main_loss;
    bool dice_loss; /* add the Dice loss to the total */
} segloss_params;

/* The defaults of docs/ARCHITECTURE.md §5.4: weights 1, alpha 0.5, gamma 2, beta 1, smooth 1e-5,
 * threshold 0.5, seed semantics, CE main loss, no Dice in the total. */
void segloss_params_default(segloss_params *params);

/*
 * Checks params against C (lengths, ranges, finiteness). Returns 0 or SEGLOSS_EPARAM /
 * SEGLOSS_EINVAL with a detail that names the field, e.g. "class_weights has 3 values; the
 * logits have 21 classes".
 */
int segloss_params_check(const segloss_params *params, size_t num_classes, char *detail,
                         size_t detail_len);

/* An exactly-addable sum: a signed 128-bit fixed-point number with 56 fraction bits
 * (SEGLOSS__SUM_FRAC_BITS; docs/ARCHITECTURE.md §4). */
typedef struct segloss_sum {
    uint64_t lo;
    int64_t hi;
} segloss_sum;

double segloss_sum_value(segloss_sum s);

/*
 * The additive statistics of one or more evaluations. Counts are exact integers; the sums of
 * reals are segloss_sum. Everything needed to finalise the answer is here, so a store can keep
 * this and nothing else. Stats are only mergeable when num_classes, semantics and the loss
 * parameters are the same (the caller's responsibility; the library checks C and semantics).
 */
typedef struct segloss_stats {
    size_t num_classes;          /* C */
    segloss_semantics semantics; /* seed stats count ignored pixels' probability mass */
    uint64_t batches;            /* images accumulated */
    uint64_t pixels_total;       /* N*H*W at mask resolution */
    uint64_t pixels_valid;       /* label < C */
    segloss_sum ce_num;          /* sum over valid pixels of w[y] * -log p[y] */
    segloss_sum ce_den;          /* sum over valid pixels of w[y] */
    segloss_sum focal_num;       /* sum of per-pixel focal terms (0 on ignored pixels) */
    segloss_sum *dice_tp;        /* [C] sum of p[k] where y == k */
    segloss_sum *dice_psum;      /* [C] sum of p[k] (seed: all pixels, standard: valid) */
    uint64_t *fscore_tp;         /* [C] count of p[k] > threshold where y == k */
    uint64_t *fscore_pos;        /* [C] count of p[k] > threshold (same pixels as dice_psum) */
    uint64_t *confusion;         /* [C*C] row = ground truth, column = argmax, valid only */
} segloss_stats;

/* A zeroed stats for C classes (one allocation; free with segloss_stats_free). NULL on OOM. */
segloss_stats *segloss_stats_new(size_t num_classes, segloss_semantics semantics);
void segloss_stats_free(segloss_stats *stats);
segloss_stats *segloss_stats_clone(const segloss_stats *stats);

/* into += from, exactly. SEGLOSS_EINVAL when C or semantics differ. */
int segloss_stats_merge(segloss_stats *into, const segloss_stats *from);

/* 1 when every field is equal, bit for bit. */
int segloss_stats_equal(const segloss_stats *a, const segloss_stats *b);

/*
 * A portable byte form (little-endian, versioned) for stores. segloss_stats_serialize writes
 * into buf when buf_len is enough and always sets *needed. segloss_stats_deserialize checks
 * everything it reads and allocates *out (free with segloss_stats_free).
 */
int segloss_stats_serialize(const segloss_stats *stats, void *buf, size_t buf_len, size_t *needed);
int segloss_stats_deserialize(const void *buf, size_t len, segloss_stats **out);

/* The finalised answer. Owned by the caller; free with segloss_result_free. */
typedef struct segloss_result {
    size_t n, c, h, w; /* batch, classes, and the mask size the losses are evaluated at */
    size_t num_classes;
    uint64_t pixels_total, pixels_valid, pixels_ignored;
    double ce, focal, dice, total; /* NaN when undefined */
    double *dice_per_class;        /* [C] */
    double *f_score;               /* [C] */
    double *iou;                   /* [C] NaN = null (standard semantics) */
    double *precision;             /* [C] */
    double *recall;                /* [C] */
    uint64_t *support;             /* [C] ground-truth pixels per class */
    double mean_dice, mean_f_score, miou, mpa, accuracy;
    segloss_stats *stats; /* owned by the result; includes the confusion matrix */
} segloss_result;

/*
 * Finalises stats under params into a new result (shape fields are left 0 for the caller).
 * Does not take ownership of stats (it keeps a clone).
 */
int segloss_result_from_stats(const segloss_stats *stats, const segloss_params *params,
                              segloss_result **out, char *detail, size_t detail_len);
void segloss_result_free(segloss_result *result);

/* Kernel choice: the scalar reference kernel is always built; AVX2+FMA and AVX-512 are chosen
 * at run time when the CPU (and the OS) support them. */
typedef enum segloss_kernel {
    SEGLOSS_KERNEL_AUTO = 0,
    SEGLOSS_KERNEL_SCALAR = 1,
    SEGLOSS_KERNEL_AVX2 = 2,
    SEGLOSS_KERNEL_AVX512 = 3
} segloss_kernel;

typedef struct segloss_ctx segloss_ctx;

/*
 * Which kernel a context asked for `wanted` runs. An explicit kernel is taken as asked; AUTO
 * reads the environment variable SEGLOSS_KERNEL (scalar, avx2, avx512, or auto / unset / empty
 * for the fastest this CPU runs). Returns 0 and the kernel in *out, SEGLOSS_EKERNEL when the
 * CPU cannot run the kernel asked for, SEGLOSS_EINVAL when SEGLOSS_KERNEL names no kernel; the
 * detail says which and what the CPU can run. A library built with SEGLOSS_FORCE_SCALAR runs
 * only the scalar kernel. Thread-safe.
 */
int segloss_kernel_choose(segloss_kernel wanted, segloss_kernel *out, char *detail,
                          size_t detail_len);
/* 1 if this CPU (and build) can run `kernel`; AUTO always can. Thread-safe. */
int segloss_kernel_supported(segloss_kernel kernel);

/*
 * A context: a persistent pool of `threads` workers (0 = the number of online CPUs) and the
 * kernel chosen once by segloss_kernel_choose; its errors are returned here too (without the
 * detail). Thread-safe: concurrent evaluations on one context are serialised. Free with
 * segloss_ctx_free.
 */
int segloss_ctx_new(segloss_ctx **out, unsigned threads, segloss_kernel kernel);
void segloss_ctx_free(segloss_ctx *ctx);
unsigned segloss_ctx_threads(const segloss_ctx *ctx);
segloss_kernel segloss_ctx_kernel(const segloss_ctx *ctx);
const char *segloss_kernel_name(segloss_kernel kernel);

/*
 * The shape limits evaluations on ctx are checked against (classes, sides, pixels, batch), so a
 * configuration that raises or lowers them reaches the library: a context starts with
 * segloss_limits_default(). Returns 0, or SEGLOSS_EINVAL when a limit is 0 or max_classes is
 * above SEGLOSS_MAX_CLASSES_CEILING (the limits are then unchanged). Call before evaluations
 * start; not synchronised with evaluations running on ctx.
 */
int segloss_ctx_set_limits(segloss_ctx *ctx, const segloss_limits *limits);
const segloss_limits *segloss_ctx_limits(const segloss_ctx *ctx);

/*
 * Evaluates logits (rank 4 N,C,H,W or rank 3 C,H,W; f32/f16/bf16/f64) against labels (rank 3
 * N,H,W or rank 2 H,W; u8/i8/u16/i32/i64; values >= C or < 0 are ignored pixels). When the
 * labels' H,W differ from the logits', the logits are resized on the fly (bilinear,
 * align_corners=True). Returns 0 and a new result, or SEGLOSS_ESHAPE, SEGLOSS_ENONFINITE (the
 * detail names the first offending element as logits[n,c,h,w]), SEGLOSS_EPARAM, SEGLOSS_ELIMIT,
 * SEGLOSS_ENOMEM.
 */
int segloss_evaluate(segloss_ctx *ctx, const segloss_tensor *logits, const segloss_tensor *labels,
                     const segloss_params *params, segloss_result **out, char *detail,
                     size_t detail_len);

/*
 * As segloss_evaluate, and also writes the predicted class (first arg-max of the logits, at
 * mask resolution) of every pixel into argmax_map, which holds N*H*W values, when it is not
 * NULL. The overlays of the dashboard are drawn from it.
 */
int segloss_evaluate_with_argmax(segloss_ctx *ctx, const segloss_tensor *logits,
                                 const segloss_tensor *labels, const segloss_params *params,
                                 uint16_t *argmax_map, segloss_result **out, char *detail,
                                 size_t detail_len);

/*
 * Per batch item, the counts its own figures are made of, gathered in the same pass: for item
 * i and class k, item_counts[(i * 3 + 0) * C + k] ground-truth pixels, [(i * 3 + 1) * C + k]
 * valid pixels predicted as k (first arg-max), [(i * 3 + 2) * C + k] pixels both. Ignored
 * pixels count nowhere, so these are the row sums, column sums and diagonal of the item's own
 * confusion matrix, and the sums over the items are those of the batch.
 */
#define SEGLOSS_ITEM_COUNTS(n, c) ((size_t)(n)*3 * (size_t)(c))

/*
 * The per-item counts of SEGLOSS_ITEM_COUNTS(1, C) values (ground truth, predicted, both, per
 * class) of stats that hold one item only, from its confusion matrix: what
 * segloss_evaluate_items gives for that item alone. Returns 0 or SEGLOSS_EINVAL.
 */
int segloss_stats_item_counts(const segloss_stats *stats, uint64_t *counts);

/*
 * As segloss_evaluate_with_argmax, and also fills item_counts (SEGLOSS_ITEM_COUNTS(N, C)
 * values, overwritten) when it is not NULL. The caller owns both buffers.
 */
int segloss_evaluate_items(segloss_ctx *ctx, const segloss_tensor *logits,
                           const segloss_tensor *labels, const segloss_params *params,
                           uint16_t *argmax_map, uint64_t *item_counts, segloss_result **out,
                           char *detail, size_t detail_len);

/*
 * The figures of one item from its counts (3 x C values of segloss_evaluate_items): a class is
 * present when it has ground-truth pixels; its IoU is tp / (gt + pred - tp) and its Dice
 * 2 tp / (gt + pred) (the hard, arg-max Dice of MMSegmentation's mDice, not the soft Dice of
 * the losses). mIoU and mean Dice average the present classes only, so an item is not marked
 * down for the classes it does not show; accuracy is tp / gt over all classes. With no valid
 * pixel every figure is NaN. iou (C values, or NULL) gets each class's IoU, NaN when absent.
 */
typedef struct segloss_item_figures {
    double accuracy, miou, mean_dice;
    size_t present; /* classes with ground-truth pixels */
    uint64_t valid; /* pixels with a label < C */
} segloss_item_figures;

void segloss_item_figures_from_counts(const uint64_t *counts, size_t num_classes,
                                      segloss_item_figures *out, double *iou);

/* As segloss_evaluate, but stops at the additive stats (for stores and tests). */
int segloss_evaluate_stats(segloss_ctx *ctx, const segloss_tensor *logits,
                           const segloss_tensor *labels, const segloss_params *params,
                           segloss_stats **out, char *detail, size_t detail_len);

#endif
