/*
 * evaluate.c - one pass over the logits: shapes, chunking, dtype conversion, on-the-fly
 * resizing and the exact reduction; the arithmetic per pixel is the kernels'.
 *
 * Work is cut into chunks of whole mask rows of one image (SEGLOSS__CHUNK_PIXELS, rounded to
 * rows), the same whatever the thread count. Each worker pulls chunks from a shared counter,
 * feeds the kernel blocks of planar float logits (pointing straight into float32 input, or
 * converted / bilinearly interpolated into a small per-worker buffer), and folds each chunk's
 * double sums into its own exact totals. No full-size copy of the logits is ever made.
 */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_internal.h"
#include "loss/loss_internal.h"
#include "segloss/errors.h"

/* Cache-line aligned: each worker writes its own accumulators and labels every block, and two
 * workers must not share a line. The arrays it points to are written per pixel (the confusion
 * matrix, Dice tp, f-score tp) and get lines of their own too (segloss__zalloc_lines): calloc'ed
 * side by side by the calling thread, worker 1's shared lines with worker 0's, and worker 1 took
 * 0.25-0.34 ms per chunk against worker 0's 0.19-0.20 (8x21x512x512 on 2 threads, AVX-512), which
 * held 2 threads at 1.5-1.65x one; on lines of their own both take 0.20. */
typedef struct worker_state {
    _Alignas(SEGLOSS__CACHE_LINE) segloss_stats *totals;
    segloss__acc acc;
    double *chunk_sums;     /* 2(C+1): dice_tp, dice_psum of the current chunk */
    uint64_t *chunk_counts; /* 2(C+1): fscore_tp, fscore_pos of the current chunk */
    uint64_t *confusion;    /* (C+1) x C packed (loss_internal.h); row C: ignored pixels */
    uint64_t unfolded;      /* pixels counted into it since it was last unpacked */
    float *xbuf;            /* C * PLANE converted or interpolated logits */
    float *scratch;         /* SEGLOSS__SCRATCH_FLOATS(C) for the kernel */
    /* Source rows converted to float (resize, non-f32): both rows of every class, reused while
     * the output rows map to the same pair (rows_cached), or one class's at a time. */
    float *row0, *row1;
    int rows_cached, rows_valid;
    size_t rows_n, rows_r0, rows_r1;
    uint16_t labels[SEGLOSS__BLOCK];
    uint16_t argmax[SEGLOSS__BLOCK]; /* the block's predictions when the job keeps no map */
    uint64_t *item_acc;              /* 3C: the current chunk's item counts (item_counts != NULL) */
    int rc;
} worker_state;

typedef struct eval_job {
    const segloss_tensor *logits, *labels;
    size_t n, c, h, w; /* logits */
    size_t ht, wt;     /* labels: the grid the losses are evaluated on */
    int resize;
    segloss__kernel_params kp;
    segloss__kernel_fn kernel;
    segloss__convert_fn convert;
    uint16_t *argmax_map;  /* NULL, or N * ht * wt predicted classes */
    uint64_t *item_counts; /* NULL, or SEGLOSS_ITEM_COUNTS(N, C), added to atomically */
    size_t rows_per_chunk, chunks_per_image, total_chunks;
    atomic_size_t next_chunk;
    /* align_corners=True bilinear source positions, per output column and row */
    size_t *col0, *col1, *row0, *row1;
    float *col_l1, *row_l1;
    int32_t *col_tables; /* c0, c1, off0, off1 and window behind `cols` */
    segloss__lerp_cols cols;
    segloss__lerp_fn lerp;
    worker_state *workers;
} eval_job;

/* Label of output pixel `index` of the labels tensor mapped to 0..C, C being "ignored". */
static void convert_labels(const segloss_tensor *t, size_t start, size_t count, size_t c,
                           uint16_t *out)
{
    const uint16_t ignore = (uint16_t)c;
    switch (t->dtype) {
    case SEGLOSS_U8: {
        const uint8_t *v = (const uint8_t *)t->data + start;
        for (size_t i = 0; i < count; i++)
            out[i] = v[i] < c ? v[i] : ignore;
        break;
    }
    case SEGLOSS_I8: {
        const int8_t *v = (const int8_t *)t->data + start;
        for (size_t i = 0; i < count; i++)
            out[i] = v[i] >= 0 && (size_t)v[i] < c ? (uint16_t)v[i] : ignore;
        break;
    }
    case SEGLOSS_U16: {
        const uint16_t *v = (const uint16_t *)t->data + start;
        for (size_t i = 0; i < count; i++)
            out[i] = v[i] < c ? v[i] : ignore;
        break;
    }
    case SEGLOSS_I32: {
        const int32_t *v = (const int32_t *)t->data + start;
        for (size_t i = 0; i < count; i++)
            out[i] = v[i] >= 0 && (size_t)v[i] < c ? (uint16_t)v[i] : ignore;
        break;
    }
    case SEGLOSS_I64: {
        const int64_t *v = (const int64_t *)t->data + start;
        for (size_t i = 0; i < count; i++)
            out[i] = v[i] >= 0 && (uint64_t)v[i] < c ? (uint16_t)v[i] : ignore;
        break;
    }
    default:
        for (size_t i = 0; i < count; i++)
            out[i] = ignore;
        break;
    }
}

/* Source plane (image n, class k) of the logits, as raw bytes. */
static const char *logits_plane(const eval_job *job, size_t n, size_t k)
{
    size_t esize = segloss_dtype_size(job->logits->dtype);
    return (const char *)job->logits->data + ((n * job->c + k) * job->h * job->w) * esize;
}

/* Source row r of a plane as float: a pointer into the input when it is float32, else
 * converted into buf. */
static const float *source_row(const eval_job *job, const char *plane, size_t r, float *buf)
{
    if (job->logits->dtype == SEGLOSS_F32)
        return (const float *)(const void *)plane + r * job->w;
    size_t esize = segloss_dtype_size(job->logits->dtype);
    job->convert(job->logits->dtype, plane + r * job->w * esize, job->w, buf);
    return buf;
}

/* Fills ws->xbuf (class stride PLANE) with the interpolated logits of output row `row`,
 * columns col..col+count-1 (the lerp kernels, loss_internal.h). */
static void interpolate_block(const eval_job *job, worker_state *ws, size_t n, size_t row,
                              size_t col, size_t count)
{
    size_t r0 = job->row0[row], r1 = job->row1[row];
    int reuse = ws->rows_cached && ws->rows_valid && ws->rows_n == n && ws->rows_r0 == r0 &&
                ws->rows_r1 == r1;
    for (size_t k = 0; k < job->c; k++) {
        const char *plane = logits_plane(job, n, k);
        size_t at = ws->rows_cached ? k * job->w : 0;
        const float *s0 = reuse ? ws->row0 + at : source_row(job, plane, r0, ws->row0 + at);
        const float *s1 = reuse ? ws->row1 + at : source_row(job, plane, r1, ws->row1 + at);
        job->lerp(s0, s1, job->row_l1[row], &job->cols, col, count, ws->xbuf + k * SEGLOSS__PLANE);
    }
    if (ws->rows_cached) {
        ws->rows_valid = 1;
        ws->rows_n = n;
        ws->rows_r0 = r0;
        ws->rows_r1 = r1;
    }
}

/* The block's ground truth, predictions and hits by class (valid pixels only) into acc's
 * three rows of C. */
static void count_item_block(size_t c, const segloss__block *b, uint64_t *acc)
{
    uint64_t *gt = acc, *pred = acc + c, *tp = acc + 2 * c;
    for (size_t i = 0; i < b->count; i++) {
        uint16_t y = b->labels[i], k = b->argmax[i];
        if (y >= c)
            continue;
        gt[y]++;
        pred[k]++;
        tp[y] += y == k;
    }
}

static void run_block(eval_job *job, worker_state *ws, size_t n, size_t offset, size_t count,
                      size_t chunk_end)
{
    segloss__block b = {.count = count, .labels = ws->labels};
    if (job->argmax_map)
        b.argmax = job->argmax_map + n * job->ht * job->wt + offset;
    else if (job->item_counts)
        b.argmax = ws->argmax;
    convert_labels(job->labels, n * job->ht * job->wt + offset, count, job->c, ws->labels);
    if (job->resize) {
        interpolate_block(job, ws, n, offset / job->wt, offset % job->wt, count);
        b.x = ws->xbuf;
        b.class_stride = SEGLOSS__PLANE;
    } else if (job->logits->dtype == SEGLOSS_F32) {
        b.x = (const float *)(const void *)logits_plane(job, n, 0) + offset;
        b.class_stride = job->h * job->w;
        if (offset + count < chunk_end)
            b.next_x = b.x + count;
    } else {
        size_t esize = segloss_dtype_size(job->logits->dtype);
        for (size_t k = 0; k < job->c; k++)
            job->convert(job->logits->dtype, logits_plane(job, n, k) + offset * esize, count,
                         ws->xbuf + k * SEGLOSS__PLANE);
        b.x = ws->xbuf;
        b.class_stride = SEGLOSS__PLANE;
    }
    job->kernel(&job->kp, &b, &ws->acc, ws->scratch);
    if (job->item_counts)
        count_item_block(job->c, &b, ws->item_acc);
}

/* Adds the chunk's item counts to item n's (other workers may add to the same item: integer
 * adds, so the totals do not depend on the order) and clears them. */
static void fold_item_counts(eval_job *job, worker_state *ws, size_t n)
{
    size_t m = 3 * job->c;
    uint64_t *dst = job->item_counts + n * m;
    for (size_t i = 0; i < m; i++)
        if (ws->item_acc[i]) {
            __atomic_fetch_add(&dst[i], ws->item_acc[i], __ATOMIC_RELAXED);
            ws->item_acc[i] = 0;
        }
}

/* Rounds the chunk's double sums into the worker's exact totals and clears them. */
static int fold_chunk(eval_job *job, worker_state *ws)
{
    segloss__acc *a = &ws->acc;
    segloss_stats *t = ws->totals;
    size_t c = job->c;
    int rc = 0;
    rc |= segloss__sum_add_double(&t->ce_num, a->ce_num);
    rc |= segloss__sum_add_double(&t->ce_den, a->ce_den);
    rc |= segloss__sum_add_double(&t->focal_num, a->focal_num);
    for (size_t k = 0; k < c; k++) {
        rc |= segloss__sum_add_double(&t->dice_tp[k], a->dice_tp[k]);
        rc |= segloss__sum_add_double(&t->dice_psum[k], a->dice_psum[k]);
        t->fscore_tp[k] += a->fscore_tp[k];
        t->fscore_pos[k] += a->fscore_pos[k];
    }
    t->pixels_valid += a->valid;
    a->ce_num = a->ce_den = a->focal_num = 0;
    a->valid = 0;
    memset(ws->chunk_sums, 0, 2 * (c + 1) * sizeof(double));
    memset(ws->chunk_counts, 0, 2 * (c + 1) * sizeof(uint64_t));
    return rc ? SEGLOSS_ELIMIT : 0;
}

/* Unpacks the kernel's confusion matrix into the worker's exact totals: low halves are pixel
 * counts (row C, the ignored pixels, is dropped); high halves count arg-max probabilities over
 * the threshold, which are f_score positives of the predicted class and true positives on the
 * diagonal. */
static void fold_confusion(eval_job *job, worker_state *ws)
{
    size_t c = job->c;
    segloss_stats *t = ws->totals;
    for (size_t y = 0; y <= c; y++)
        for (size_t k = 0; k < c; k++) {
            uint64_t v = ws->confusion[y * c + k];
            if (!v)
                continue;
            uint64_t passed = v >> 32;
            if (y < c)
                t->confusion[y * c + k] += v & 0xffffffffu;
            t->fscore_pos[k] += passed;
            if (y == k)
                t->fscore_tp[k] += passed;
        }
    memset(ws->confusion, 0, (c + 1) * c * sizeof(uint64_t));
    ws->unfolded = 0;
}

static void eval_worker(void *arg, unsigned index)
{
    eval_job *job = arg;
    worker_state *ws = &job->workers[index];
    size_t chunk;
    while ((chunk = atomic_fetch_add(&job->next_chunk, 1)) < job->total_chunks) {
        size_t n = chunk / job->chunks_per_image;
        size_t r0 = (chunk % job->chunks_per_image) * job->rows_per_chunk;
        size_t r1 = r0 + job->rows_per_chunk < job->ht ? r0 + job->rows_per_chunk : job->ht;
        size_t end = r1 * job->wt;
        for (size_t off = r0 * job->wt; off < end;) {
            size_t count = end - off < SEGLOSS__BLOCK ? end - off : SEGLOSS__BLOCK;
            /* a resized block stays within one output row */
            if (job->resize && off / job->wt != (off + count - 1) / job->wt)
                count = job->wt - off % job->wt;
            run_block(job, ws, n, off, count, end);
            off += count;
        }
        if (job->item_counts)
            fold_item_counts(job, ws, n);
        int rc = fold_chunk(job, ws);
        if (rc && !ws->rc)
            ws->rc = rc;
        ws->unfolded += end - r0 * job->wt;
        if (ws->unfolded >= SEGLOSS__CONFUSION_FOLD)
            fold_confusion(job, ws);
    }
    fold_confusion(job, ws);
}

static void *aligned_floats(size_t count)
{
    return segloss__aligned_alloc(64, count * sizeof(float));
}

static void worker_free(worker_state *ws)
{
    segloss_stats_free(ws->totals);
    free(ws->chunk_sums);
    free(ws->chunk_counts);
    free(ws->confusion);
    free(ws->xbuf);
    free(ws->scratch);
    free(ws->row0);
    free(ws->row1);
    free(ws->item_acc);
}

static int worker_init(worker_state *ws, const eval_job *job, segloss_semantics semantics)
{
    size_t c = job->c;
    memset(ws, 0, sizeof *ws);
    ws->totals = segloss_stats_new(c, semantics);
    ws->chunk_sums = segloss__zalloc_lines(2 * (c + 1) * sizeof(double));
    ws->chunk_counts = segloss__zalloc_lines(2 * (c + 1) * sizeof(uint64_t));
    ws->confusion = segloss__zalloc_lines((c + 1) * c * sizeof(uint64_t));
    ws->xbuf = aligned_floats(c * SEGLOSS__PLANE);
    ws->scratch = aligned_floats(SEGLOSS__SCRATCH_FLOATS(c));
    /* an upsampled source row pair serves several output rows of several blocks each */
    ws->rows_cached = job->resize && job->logits->dtype != SEGLOSS_F32 &&
                      job->c * job->w <= SEGLOSS__ROW_CACHE_FLOATS;
    ws->row0 = aligned_floats(ws->rows_cached ? job->c * job->w : job->w);
    ws->row1 = aligned_floats(ws->rows_cached ? job->c * job->w : job->w);
    if (job->item_counts && !(ws->item_acc = segloss__zalloc_lines(3 * c * sizeof(uint64_t))))
        return SEGLOSS_ENOMEM;
    if (!ws->totals || !ws->chunk_sums || !ws->chunk_counts || !ws->confusion || !ws->xbuf ||
        !ws->scratch || !ws->row0 || !ws->row1)
        return SEGLOSS_ENOMEM;
    ws->acc.dice_tp = ws->chunk_sums;
    ws->acc.dice_psum = ws->chunk_sums + c + 1;
    ws->acc.fscore_tp = ws->chunk_counts;
    ws->acc.fscore_pos = ws->chunk_counts + c + 1;
    ws->acc.confusion = ws->confusion;
    return 0;
}

/* Names the first NaN, infinity or logit beyond +-SEGLOSS_MAX_LOGIT, in memory order. The
 * range is checked on the float32 value the kernels see (a float64 logit is rounded first),
 * the message shows the value sent. */
static int report_nonfinite(const segloss_tensor *t, char *detail, size_t detail_len)
{
    size_t count = 0;
    segloss_tensor_elements(t, &count);
    for (size_t i = 0; i < count; i++) {
        double v;
        float seen;
        switch (t->dtype) {
        case SEGLOSS_F32:
            seen = ((const float *)t->data)[i];
            v = (double)seen;
            break;
        case SEGLOSS_F64:
            v = ((const double *)t->data)[i];
            seen = (float)v;
            break;
        case SEGLOSS_F16:
            seen = segloss_half_to_float(((const uint16_t *)t->data)[i]);
            v = (double)seen;
            break;
        case SEGLOSS_BF16:
            seen = segloss_bf16_to_float(((const uint16_t *)t->data)[i]);
            v = (double)seen;
            break;
        default: return SEGLOSS_EINVAL;
        }
        if (fabsf(seen) <= (float)SEGLOSS_MAX_LOGIT)
            continue;
        char where[128];
        size_t rest = i, idx[SEGLOSS_MAX_RANK];
        for (int d = t->rank - 1; d >= 0; d--) {
            idx[d] = rest % t->shape[d];
            rest /= t->shape[d];
        }
        int len = snprintf(where, sizeof where, "logits[");
        for (int d = 0; d < t->rank; d++)
            len += snprintf(where + len, sizeof where - (size_t)len, d ? ", %zu" : "%zu", idx[d]);
        snprintf(where + len, sizeof where - (size_t)len, "]");
        if (isnan(v))
            return segloss_fail(detail, detail_len, SEGLOSS_ENONFINITE,
                                "%s is NaN; logits must be finite", where);
        if (isinf(v))
            return segloss_fail(detail, detail_len, SEGLOSS_ENONFINITE,
                                "%s is %sinfinity; logits must be finite", where,
                                v < 0 ? "-" : "+");
        return segloss_fail(detail, detail_len, SEGLOSS_ENONFINITE,
                            "%s is %g; logits must be within -%g to %g (a per-pixel loss must "
                            "stay summable exactly)",
                            where, v, SEGLOSS_MAX_LOGIT, SEGLOSS_MAX_LOGIT);
    }
    return 0;
}

/* The weighted loss sums left the exact sums' range (exact_sum.c): 422, naming what to lower. */
static int sums_out_of_range(char *detail, size_t detail_len)
{
    return segloss_fail(detail, detail_len, SEGLOSS_EPARAM,
                        "the weighted loss sums exceed the exact range of +-2.4e21; lower "
                        "class_weights or alpha, or send fewer pixels per request");
}

static int check_shapes(const segloss_limits *limits, const segloss_tensor *logits,
                        const segloss_tensor *labels, eval_job *job, char *detail,
                        size_t detail_len)
{
    const segloss_limits lim = *limits;
    if (!logits || !logits->data || (logits->rank != 3 && logits->rank != 4))
        return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE,
                            "logits must have shape (N, C, H, W) or (C, H, W)");
    if (!segloss_dtype_is_float(logits->dtype))
        return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                            "logits are %s; they must be float32, float16, bfloat16 or float64",
                            segloss_dtype_name(logits->dtype));
    if (!labels || !labels->data || (labels->rank != 2 && labels->rank != 3))
        return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE,
                            "labels must have shape (N, H, W) or (H, W)");
    if (segloss_dtype_is_float(labels->dtype) || labels->dtype == SEGLOSS_DTYPE_NONE)
        return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                            "labels are %s; they must be integers",
                            segloss_dtype_name(labels->dtype));
    int l4 = logits->rank == 4, m3 = labels->rank == 3;
    job->n = l4 ? logits->shape[0] : 1;
    job->c = logits->shape[l4];
    job->h = logits->shape[l4 + 1];
    job->w = logits->shape[l4 + 2];
    size_t mn = m3 ? labels->shape[0] : 1;
    job->ht = labels->shape[m3];
    job->wt = labels->shape[m3 + 1];
    if (!job->n || !job->c || !job->h || !job->w || !job->ht || !job->wt)
        return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE,
                            "a dimension is 0: logits (%zu, %zu, %zu, %zu), labels (%zu, %zu, "
                            "%zu)",
                            job->n, job->c, job->h, job->w, mn, job->ht, job->wt);
    if (mn != job->n)
        return segloss_fail(detail, detail_len, SEGLOSS_ESHAPE,
                            "logits hold %zu images but there are %zu masks", job->n, mn);
    if (job->c > lim.max_classes)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT,
                            "logits have %zu classes; at most %zu are supported", job->c,
                            lim.max_classes);
    if (job->n > lim.max_batch || job->ht > lim.max_side || job->wt > lim.max_side ||
        job->h > lim.max_side || job->w > lim.max_side || job->ht * job->wt > lim.max_pixels)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT,
                            "shape over the limits: at most %zu images of %zu x %zu and %zu "
                            "pixels",
                            lim.max_batch, lim.max_side, lim.max_side, lim.max_pixels);
    job->resize = job->h != job->ht || job->w != job->wt;
    return 0;
}

/* Per-class tables with the ignore class C at the end, all zero there. */
static int build_tables(eval_job *job, const segloss_params *p, double **dtab, float **ftab)
{
    size_t c = job->c, n = c + 1;
    *dtab = calloc(3 * n, sizeof(double));
    *ftab = calloc(3 * n, sizeof(float));
    if (!*dtab || !*ftab)
        return SEGLOSS_ENOMEM;
    double *ce_w = *dtab, *fe = ce_w + n, *fm = fe + n;
    int seed = p->semantics == SEGLOSS_SEED;
    for (size_t k = 0; k < c; k++) {
        double w = p->class_weights ? p->class_weights[k] : 1.0;
        double a = p->alpha_kind == SEGLOSS_ALPHA_NONE     ? 1.0
                   : p->alpha_kind == SEGLOSS_ALPHA_SCALAR ? p->alpha
                                                           : p->alpha_per_class[k];
        ce_w[k] = w;
        fe[k] = seed ? w : 1.0;
        fm[k] = seed ? a : a * w;
    }
    for (size_t i = 0; i < 3 * n; i++)
        (*ftab)[i] = (float)(*dtab)[i];
    /* what lets a vector kernel skip table lookups and the general focal formula */
    int unit_exponent = 1, uniform = 1;
    for (size_t k = 0; k < c; k++) {
        unit_exponent &= fe[k] == 1.0;
        uniform &= ce_w[k] == 1.0 && fm[k] == fm[0];
    }
    job->kp = (segloss__kernel_params){
        .c = c,
        .ce_w = ce_w,
        .focal_e = fe,
        .focal_m = fm,
        .ce_w_f = *ftab,
        .focal_e_f = *ftab + n,
        .focal_m_f = *ftab + 2 * n,
        .gamma = p->gamma,
        .threshold = p->threshold,
        .seed = seed,
        .unit_focal_exponent = unit_exponent,
        .uniform_tables = unit_exponent && uniform,
    };
    return 0;
}

static int build_resize(eval_job *job)
{
    job->col0 = malloc(job->wt * sizeof(size_t));
    job->col1 = malloc(job->wt * sizeof(size_t));
    job->col_l1 = malloc(job->wt * sizeof(float));
    job->row0 = malloc(job->ht * sizeof(size_t));
    job->row1 = malloc(job->ht * sizeof(size_t));
    job->row_l1 = malloc(job->ht * sizeof(float));
    if (!job->col0 || !job->col1 || !job->col_l1 || !job->row0 || !job->row1 || !job->row_l1)
        return SEGLOSS_ENOMEM;
    segloss__resize_axis(job->w, job->wt, job->col0, job->col1, job->col_l1);
    segloss__resize_axis(job->h, job->ht, job->row0, job->row1, job->row_l1);
    return segloss__lerp_cols_build(job->w, job->wt, job->col0, job->col1, job->col_l1,
                                    &job->col_tables, &job->cols);
}

static int evaluate_stats(segloss_ctx *ctx, const segloss_tensor *logits,
                          const segloss_tensor *labels, const segloss_params *params,
                          uint16_t *argmax_map, uint64_t *item_counts, segloss_stats **out,
                          char *detail, size_t detail_len)
{
    /* On lines of its own, not on this thread's stack: every worker reads its fields every
     * block, and this thread, worker 0, writes the stack below it (calls, locals) every block.
     * On the stack, worker 1 took a median 1.61x worker 0's time per chunk (AVX-512, 8x21x512x512,
     * bench_loss's 27 two-thread runs); here the slower of the two takes 1.11x the other's. */
    eval_job *job = segloss__zalloc_lines(sizeof *job);
    double *dtab = NULL;
    float *ftab = NULL;
    unsigned threads = segloss_ctx_threads(ctx);
    int rc;
    *out = NULL;
    /* the workers' wake-up overlaps the checks and set-up below (thread_pool.c) */
    segloss__pool_prewake(segloss__ctx_pool(ctx));
    if (!job)
        return SEGLOSS_ENOMEM;
    job->logits = logits;
    job->labels = labels;
    job->argmax_map = argmax_map;
    job->item_counts = item_counts;
    if ((rc = check_shapes(segloss_ctx_limits(ctx), logits, labels, job, detail, detail_len)))
        goto done;
    if (item_counts)
        memset(item_counts, 0, SEGLOSS_ITEM_COUNTS(job->n, job->c) * sizeof *item_counts);
    if ((rc = segloss_params_check(params, job->c, detail, detail_len)))
        goto done;
    /* With resizing some source logits may never be read: check them all up front. */
    if (job->resize && (rc = report_nonfinite(logits, detail, detail_len)))
        goto done;
    if ((rc = build_tables(job, params, &dtab, &ftab)))
        goto done;
    if (job->resize && (rc = build_resize(job)))
        goto done;
    job->kernel = segloss__ctx_kernel_fn(ctx);
    job->convert = segloss__ctx_convert_fn(ctx);
    job->lerp = segloss__ctx_lerp_fn(ctx);
    job->rows_per_chunk = SEGLOSS__CHUNK_PIXELS / job->wt ? SEGLOSS__CHUNK_PIXELS / job->wt : 1;
    job->chunks_per_image = (job->ht + job->rows_per_chunk - 1) / job->rows_per_chunk;
    job->total_chunks = job->n * job->chunks_per_image;
    atomic_init(&job->next_chunk, 0);
    job->workers = segloss__zalloc_lines(threads * sizeof(worker_state));
    if (!job->workers) {
        rc = SEGLOSS_ENOMEM;
        goto done;
    }
    for (unsigned i = 0; i < threads; i++)
        if ((rc = worker_init(&job->workers[i], job, params->semantics)))
            goto done;

    segloss__ctx_lock(ctx);
    segloss__pool_run(segloss__ctx_pool(ctx), eval_worker, job);
    segloss__ctx_unlock(ctx);

    int nonfinite = 0;
    for (unsigned i = 0; i < threads; i++) {
        nonfinite |= job->workers[i].acc.nonfinite;
        if (job->workers[i].rc && !rc)
            rc = job->workers[i].rc;
    }
    if (nonfinite) {
        rc = report_nonfinite(logits, detail, detail_len);
        if (!rc)
            rc = segloss_fail(detail, detail_len, SEGLOSS_ENONFINITE, "logits are not finite");
        goto done;
    }
    if (rc) {
        /* With logits in range only weights or alpha near their maximum get here: not a size */
        rc = sums_out_of_range(detail, detail_len);
        goto done;
    }
    segloss_stats *stats = segloss_stats_new(job->c, params->semantics);
    if (!stats) {
        rc = SEGLOSS_ENOMEM;
        goto done;
    }
    for (unsigned i = 0; i < threads && !rc; i++) {
        rc = segloss_stats_merge(stats, job->workers[i].totals);
    }
    stats->batches = job->n;
    stats->pixels_total = (uint64_t)job->n * job->ht * job->wt;
    if (rc) {
        segloss_stats_free(stats);
        rc = sums_out_of_range(detail, detail_len);
        goto done;
    }
    *out = stats;
done:
    if (job->workers)
        for (unsigned i = 0; i < threads; i++)
            worker_free(&job->workers[i]);
    free(job->workers);
    free(job->col0);
    free(job->col1);
    free(job->col_l1);
    free(job->col_tables);
    free(job->row0);
    free(job->row1);
    free(job->row_l1);
    free(dtab);
    free(ftab);
    free(job);
    return rc;
}

int segloss_evaluate_stats(segloss_ctx *ctx, const segloss_tensor *logits,
                           const segloss_tensor *labels, const segloss_params *params,
                           segloss_stats **out, char *detail, size_t detail_len)
{
    return evaluate_stats(ctx, logits, labels, params, NULL, NULL, out, detail, detail_len);
}

int segloss_evaluate(segloss_ctx *ctx, const segloss_tensor *logits, const segloss_tensor *labels,
                     const segloss_params *params, segloss_result **out, char *detail,
                     size_t detail_len)
{
    return segloss_evaluate_with_argmax(ctx, logits, labels, params, NULL, out, detail, detail_len);
}

int segloss_evaluate_with_argmax(segloss_ctx *ctx, const segloss_tensor *logits,
                                 const segloss_tensor *labels, const segloss_params *params,
                                 uint16_t *argmax_map, segloss_result **out, char *detail,
                                 size_t detail_len)
{
    return segloss_evaluate_items(ctx, logits, labels, params, argmax_map, NULL, out, detail,
                                  detail_len);
}

int segloss_evaluate_items(segloss_ctx *ctx, const segloss_tensor *logits,
                           const segloss_tensor *labels, const segloss_params *params,
                           uint16_t *argmax_map, uint64_t *item_counts, segloss_result **out,
                           char *detail, size_t detail_len)
{
    segloss_stats *stats = NULL;
    *out = NULL;
    int rc = evaluate_stats(ctx, logits, labels, params, argmax_map, item_counts, &stats, detail,
                            detail_len);
    if (rc)
        return rc;
    rc = segloss_result_from_stats(stats, params, out, detail, detail_len);
    segloss_stats_free(stats);
    if (rc)
        return rc;
    int l4 = logits->rank == 4;
    (*out)->n = l4 ? logits->shape[0] : 1;
    (*out)->c = logits->shape[l4];
    (*out)->h = labels->shape[labels->rank - 2];
    (*out)->w = labels->shape[labels->rank - 1];
    return 0;
}
