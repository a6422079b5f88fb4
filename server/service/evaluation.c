/*
 * evaluation.c - decode, check, evaluate, record (see evaluation.h).
 */
#include "service/evaluation.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/aligned.h"
#include "base/detail.h"
#include "base/problem.h"

/* Label buffers are aligned like the part buffers, for the vector kernels. */
#define EVALUATION_LABEL_ALIGN 64
/*
 * What decoding the image parts (kept for overlays when the result is recorded) may cost, in
 * pixels x scans (segloss_image_probe), for each mask pixel of the batch: an image at its
 * mask's size may be a progressive JPEG of up to 16 scans (libjpeg writes 10), a baseline one
 * 16 times the mask's pixels. Work in proportion to the evaluation's own, where 64 progressive
 * 8192x8192 JPEGs of 470 scans behind small masks held a worker for 18 s.
 */
#define EVALUATION_IMAGE_WORK_PER_MASK_PIXEL 16
/* ... and at least this much per request (a 4096x4096 baseline photo, about 0.1 s), whatever
 * the masks' size. */
#define EVALUATION_IMAGE_WORK_FLOOR ((uint64_t)16 << 20)

double evaluation_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void outcome_fail(evaluation_outcome *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void outcome_fail(evaluation_outcome *out, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out->status = detail_vfail(out->detail, sizeof out->detail, status, fmt, ap);
    va_end(ap);
}

void evaluation_outcome_clear(evaluation_outcome *out)
{
    free(out->body);
    segloss_result_free(out->result);
    free(out->item_counts);
    memset(out, 0, sizeof *out);
}

/* The decoded masks: one N x H x W buffer. */
typedef struct label_set {
    segloss_tensor tensor;
    void *buffer; /* from aligned_buffer (PNG masks) */
    void *owned;  /* decoder copy (.npy masks), or NULL */
} label_set;

/* Probes every PNG mask, checks their count and sizes, decodes all into one buffer. */
static int decode_png_masks(const evaluation_request *req, const segloss_limits *limits, size_t n,
                            label_set *labels, evaluation_outcome *out)
{
    char detail[EVALUATION_DETAIL_MAX - 32];
    segloss_png_info first = {0};
    bool wide = false;
    if (req->mask_count != n) {
        outcome_fail(out, 422,
                     "%zu mask parts for a batch of %zu logits; send one PNG mask per batch "
                     "item, in order",
                     req->mask_count, n);
        return -1;
    }
    for (size_t i = 0; i < req->mask_count; i++) {
        segloss_png_info info;
        int rc = segloss_png_mask_probe(req->masks[i].data, req->masks[i].len, limits, &info,
                                        detail, sizeof detail);
        if (rc) {
            outcome_fail(out, problem_status_for_code(rc), "mask %zu: %s", i, detail);
            return -1;
        }
        if (i == 0)
            first = info;
        else if (info.width != first.width || info.height != first.height) {
            outcome_fail(out, 422,
                         "mask %zu is %ux%u (width x height) but mask 0 is %ux%u; all masks "
                         "of a request must have the same size",
                         i, info.width, info.height, first.width, first.height);
            return -1;
        }
        wide |= info.bit_depth > 8;
    }
    segloss_dtype dtype = wide ? SEGLOSS_U16 : SEGLOSS_U8;
    size_t elem = segloss_dtype_size(dtype);
    size_t plane = 0, bytes = 0, all = 0;
    if (segloss_mul_size(first.width, first.height, &plane) ||
        segloss_mul_size(plane, elem, &bytes) || segloss_mul_size(bytes, n, &all) ||
        all > SIZE_MAX - EVALUATION_LABEL_ALIGN) {
        outcome_fail(out, 413, "the masks are too large to hold (%zu x %ux%u)", n, first.width,
                     first.height);
        return -1;
    }
    labels->buffer = aligned_buffer(EVALUATION_LABEL_ALIGN, all);
    if (!labels->buffer) {
        outcome_fail(out, 503, "out of memory for %zu bytes of masks; retry later", all);
        return -1;
    }
    const evaluation_prepared *prep = req->prepared;
    bool reuse =
        prep && dtype == SEGLOSS_U8 && prep->width == first.width && prep->height == first.height;
    for (size_t i = 0; i < n; i++) {
        unsigned char *into = (unsigned char *)labels->buffer + i * bytes;
        if (reuse && i < prep->mask_count && prep->mask_labels[i]) {
            memcpy(into, prep->mask_labels[i], bytes); /* decoded during the upload */
            continue;
        }
        int rc = segloss_png_mask_decode(req->masks[i].data, req->masks[i].len, limits, dtype, into,
                                         bytes, detail, sizeof detail);
        if (rc) {
            outcome_fail(out, problem_status_for_code(rc), "mask %zu: %s", i, detail);
            return -1;
        }
    }
    labels->tensor.data = labels->buffer;
    labels->tensor.dtype = dtype;
    labels->tensor.rank = 3;
    labels->tensor.shape[0] = n;
    labels->tensor.shape[1] = first.height;
    labels->tensor.shape[2] = first.width;
    return 0;
}

static int decode_masks(const evaluation_request *req, const segloss_limits *limits, size_t n,
                        label_set *labels, evaluation_outcome *out)
{
    char detail[EVALUATION_DETAIL_MAX - 32];
    segloss_format first = SEGLOSS_FORMAT_UNKNOWN;
    for (size_t i = 0; i < req->mask_count; i++) {
        if (req->masks[i].len == 0) {
            outcome_fail(out, 400, "mask %zu is empty (was the file path right?)", i);
            return -1;
        }
        segloss_format f = segloss_detect_format(req->masks[i].data, req->masks[i].len);
        if (f == SEGLOSS_FORMAT_JPEG) {
            outcome_fail(out, 415,
                         "mask %zu is a JPEG; masks must be lossless (PNG or .npy): JPEG "
                         "compression changes class indices",
                         i);
            return -1;
        }
        if (f != SEGLOSS_FORMAT_PNG && f != SEGLOSS_FORMAT_NPY) {
            outcome_fail(out, 415,
                         "mask %zu is not a PNG or .npy file (unrecognised first bytes); send "
                         "8-bit grey, palette or 16-bit grey PNGs, or one .npy integer array",
                         i);
            return -1;
        }
        if (i == 0)
            first = f;
        else if (f != first) {
            outcome_fail(out, 422,
                         "mask %zu is %s but mask 0 is %s; send PNGs only, or one .npy array", i,
                         segloss_format_name(f), segloss_format_name(first));
            return -1;
        }
    }
    if (first == SEGLOSS_FORMAT_PNG)
        return decode_png_masks(req, limits, n, labels, out);
    if (req->mask_count != 1) {
        outcome_fail(out, 422,
                     "%zu .npy mask parts; send one .npy array of shape (N,H,W) for the whole "
                     "batch",
                     req->mask_count);
        return -1;
    }
    int rc = segloss_npy_decode(req->masks[0].data, req->masks[0].len, SEGLOSS_ROLE_LABELS, limits,
                                &labels->tensor, &labels->owned, detail, sizeof detail);
    if (rc) {
        outcome_fail(out, problem_status_for_code(rc), "mask: %s", detail);
        return -1;
    }
    size_t mask_n = labels->tensor.rank == 3 ? labels->tensor.shape[0] : 1;
    if (mask_n != n) {
        outcome_fail(out, 422,
                     "the .npy mask holds %zu label maps but the logits a batch of %zu; the "
                     "mask must be (N,H,W) with the logits' N",
                     mask_n, n);
        return -1;
    }
    return 0;
}

/*
 * The images are decoded only for a recorded result (overlays): refuses, from their headers,
 * images whose decoding would cost more than EVALUATION_IMAGE_WORK_PER_MASK_PIXEL per mask
 * pixel (at least EVALUATION_IMAGE_WORK_FLOOR) in all. Returns 0 or -1 with *out filled.
 */
static int check_image_work(const evaluation_request *req, const segloss_tensor *labels,
                            evaluation_outcome *out)
{
    size_t mask_pixels = 0;
    segloss_tensor_elements(labels, &mask_pixels);
    uint64_t budget = (uint64_t)mask_pixels * EVALUATION_IMAGE_WORK_PER_MASK_PIXEL;
    if (budget < EVALUATION_IMAGE_WORK_FLOOR)
        budget = EVALUATION_IMAGE_WORK_FLOOR;
    uint64_t work = 0;
    for (size_t i = 0; i < req->image_count; i++) {
        char detail[EVALUATION_DETAIL_MAX - 32];
        uint32_t w, h, scans;
        if (segloss_image_probe(req->images[i].data, req->images[i].len, &w, &h, &scans, detail,
                                sizeof detail) != 0) {
            outcome_fail(out, 422, "image %zu: %s", i, detail);
            return -1;
        }
        /* at most 65535^2 x 2^32: no overflow in 128 bits, nor here once capped */
        uint64_t cost = (uint64_t)w * h * scans;
        work = cost > budget ? budget + 1 : work + cost;
        if (work > budget) {
            outcome_fail(out, 422,
                         "image %zu (%ux%u, %u scan%s) is too costly to decode for an "
                         "overlay: the images of a request may cost %d pixels x scans per "
                         "mask pixel (%" PRIu64 " here); send images at the masks' size, as "
                         "baseline JPEG or PNG",
                         i, w, h, scans, scans == 1 ? "" : "s",
                         EVALUATION_IMAGE_WORK_PER_MASK_PIXEL, budget);
            return -1;
        }
    }
    return 0;
}

/*
 * The buffer for the predicted-class map of a result that will be recorded (hook set and
 * params->run given): one uint16 per label element, malloc'ed, to pass to
 * segloss_evaluate_with_argmax. *map is NULL when nothing will be recorded. Returns 0, or -1
 * when memory ran out (answer 503).
 */
static int argmax_buffer(const segloss_tensor *labels, const params_request *params, bool recorded,
                         uint16_t **map)
{
    /* 2 bytes a mask pixel, written by the library during the same pass over the logits */
    *map = NULL;
    if (!recorded || !params->run)
        return 0;
    size_t pixels = 0;
    if (segloss_tensor_elements(labels, &pixels) == 0 && pixels <= SIZE_MAX / sizeof **map)
        *map = malloc(pixels * sizeof **map + 1);
    return *map ? 0 : -1;
}

void evaluation_run(segloss_ctx *ctx, const segloss_limits *limits, const evaluation_request *req,
                    evaluation_outcome *out)
{
    char detail[EVALUATION_DETAIL_MAX - 32] = "";
    segloss_tensor logits = {0};
    void *owned_logits = NULL;
    label_set labels = {0};
    memset(out, 0, sizeof *out);

    double t0 = evaluation_now();
    if (req->logits.len == 0) {
        outcome_fail(out, 400, "the logits part is empty (was the file path right?)");
        goto done;
    }
    segloss_format fmt = segloss_detect_format(req->logits.data, req->logits.len);
    int rc = 0;
    if (fmt == SEGLOSS_FORMAT_SAFETENSORS) {
        rc = segloss_safetensors_decode(req->logits.data, req->logits.len, limits, &logits,
                                        &owned_logits, req->mask_count ? NULL : &labels.tensor,
                                        req->mask_count ? NULL : &labels.owned, detail,
                                        sizeof detail);
    } else if (fmt == SEGLOSS_FORMAT_NPY) {
        rc = segloss_logits_decode(req->logits.data, req->logits.len, limits, &logits,
                                   &owned_logits, detail, sizeof detail);
    } else {
        outcome_fail(out, 415,
                     "the logits part is %s; logits must be a .npy array (numpy.save) or a "
                     "safetensors file with a tensor named \"logits\"",
                     fmt == SEGLOSS_FORMAT_UNKNOWN ? "not .npy or safetensors"
                                                   : segloss_format_name(fmt));
        goto done;
    }
    if (rc) {
        outcome_fail(out, problem_status_for_code(rc), "logits: %s", detail);
        goto done;
    }
    size_t l4 = logits.rank == 4;
    size_t n = l4 ? logits.shape[0] : 1;
    size_t c = logits.shape[l4];
    int status = params_check_classes(req->params, c, detail, sizeof detail);
    if (status) {
        outcome_fail(out, status, "%s", detail);
        goto done;
    }
    if (req->mask_count == 0) {
        if (labels.tensor.rank == 0) {
            outcome_fail(out, 400,
                         "no mask part; send one PNG per batch item (-F mask=@mask_0.png), "
                         "one .npy label array, or a tensor \"mask\" in the safetensors file");
            goto done;
        }
    } else if (decode_masks(req, limits, n, &labels, out) != 0) {
        goto done;
    }
    if (req->image_count != 0 && req->image_count != n) {
        outcome_fail(out, 422,
                     "%zu image parts for a batch of %zu; send one image per batch "
                     "item or none",
                     req->image_count, n);
        goto done;
    }
    for (size_t i = 0; i < req->image_count; i++) {
        segloss_format f = segloss_detect_format(req->images[i].data, req->images[i].len);
        if (f != SEGLOSS_FORMAT_JPEG && f != SEGLOSS_FORMAT_PNG) {
            outcome_fail(out, 415, "image %zu is not a JPEG or PNG file", i);
            goto done;
        }
    }
    if (req->hook && req->params->run && check_image_work(req, &labels.tensor, out) != 0)
        goto done;
    evaluation_finish(ctx, &logits, &labels.tensor, req, t0, out);
done:
    free(labels.buffer);
    free(labels.owned);
    free(owned_logits);
}

/*
 * The batch evaluated from the items done during the upload (req->prepared) and the rest in one
 * call, their stats merged exactly. Returns 0 and *out, or -1 when the prepared work does not
 * fit these logits and labels or anything fails: the caller then evaluates the batch whole,
 * which also gives any error its usual detail.
 */
static int evaluate_prepared(segloss_ctx *ctx, const segloss_tensor *logits,
                             const segloss_tensor *labels, const evaluation_request *req,
                             uint16_t *argmax, uint64_t *item_counts, segloss_result **out)
{
    const evaluation_prepared *prep = req->prepared;
    char detail[EVALUATION_DETAIL_MAX - 32];
    *out = NULL;
    if (!prep || prep->item_count == 0 || logits->rank != 4 || labels->rank != 3 ||
        logits->data != prep->logits_data || logits->dtype != prep->logits_layout.dtype ||
        prep->logits_layout.rank != 4 ||
        memcmp(logits->shape, prep->logits_layout.shape, 4 * sizeof logits->shape[0]) != 0 ||
        labels->shape[0] != logits->shape[0] || labels->shape[1] != prep->height ||
        labels->shape[2] != prep->width || prep->item_count > logits->shape[0] ||
        (argmax && !prep->argmax))
        return -1;
    size_t n = logits->shape[0], k = prep->item_count;
    size_t plane = labels->shape[1] * labels->shape[2];
    size_t item_bytes =
        logits->shape[1] * logits->shape[2] * logits->shape[3] * segloss_dtype_size(logits->dtype);
    size_t label_bytes = plane * segloss_dtype_size(labels->dtype);
    size_t c = logits->shape[1];
    segloss_stats *stats = segloss_stats_clone(prep->items[0]->stats);
    int rc = stats ? 0 : -1;
    /* the items done during the upload have their own stats: their counts come from those */
    for (size_t i = 0; i < k && rc == 0 && item_counts; i++)
        rc = segloss_stats_item_counts(prep->items[i]->stats,
                                       item_counts + SEGLOSS_ITEM_COUNTS(i, c));
    for (size_t i = 1; i < k && rc == 0; i++)
        rc = segloss_stats_merge(stats, prep->items[i]->stats);
    if (rc == 0 && k < n) {
        segloss_tensor rest_logits = *logits, rest_labels = *labels;
        rest_logits.data = (const char *)logits->data + k * item_bytes;
        rest_logits.shape[0] = n - k;
        rest_labels.data = (const char *)labels->data + k * label_bytes;
        rest_labels.shape[0] = n - k;
        segloss_result *rest = NULL;
        rc = segloss_evaluate_items(ctx, &rest_logits, &rest_labels, &req->params->loss,
                                    argmax ? argmax + k * plane : NULL,
                                    item_counts ? item_counts + SEGLOSS_ITEM_COUNTS(k, c) : NULL,
                                    &rest, detail, sizeof detail);
        if (rc == 0)
            rc = segloss_stats_merge(stats, rest->stats);
        segloss_result_free(rest);
    }
    if (rc == 0)
        rc = segloss_result_from_stats(stats, &req->params->loss, out, detail, sizeof detail);
    segloss_stats_free(stats);
    if (rc != 0)
        return -1;
    if (argmax)
        memcpy(argmax, prep->argmax, k * plane * sizeof *argmax);
    (*out)->n = n;
    (*out)->c = logits->shape[1];
    (*out)->h = labels->shape[1];
    (*out)->w = labels->shape[2];
    return 0;
}

void evaluation_finish(segloss_ctx *ctx, const segloss_tensor *logits, const segloss_tensor *labels,
                       const evaluation_request *req, double decode_started,
                       evaluation_outcome *out)
{
    char detail[EVALUATION_DETAIL_MAX - 32] = "";
    segloss_result *result = NULL;
    uint16_t *argmax = NULL;
    uint64_t *item_counts = NULL;
    evaluation_answer recorded = {0};
    out->status = 200;
    if (argmax_buffer(labels, req->params, req->hook != NULL, &argmax)) {
        outcome_fail(out, 503, "out of memory for the predicted-class map; retry later");
        goto done;
    }
    /* a recorded result keeps per-item figures, counted in the same pass */
    if (argmax) {
        size_t l4 = logits->rank == 4;
        size_t n = l4 ? logits->shape[0] : 1, c = logits->shape[l4];
        item_counts = calloc(SEGLOSS_ITEM_COUNTS(n, c) + 1, sizeof *item_counts);
        if (!item_counts) {
            outcome_fail(out, 503, "out of memory for the per-item counts; retry later");
            goto done;
        }
    }
    double t1 = evaluation_now();
    int rc = 0;
    if (evaluate_prepared(ctx, logits, labels, req, argmax, item_counts, &result) == 0)
        out->items_during_upload = req->prepared->item_count;
    else
        rc = segloss_evaluate_items(ctx, logits, labels, &req->params->loss, argmax, item_counts,
                                    &result, detail, sizeof detail);
    double t2 = evaluation_now();
    if (rc) {
        outcome_fail(out, problem_status_for_code(rc), "%s", detail);
        goto done;
    }
    out->decode_ms = (t1 - decode_started) * 1e3;
    out->compute_ms = (t2 - t1) * 1e3;
    out->total_ms = (t2 - req->started) * 1e3;
    if (req->hook) {
        evaluation_record record = {
            .id = req->id,
            .params = req->params,
            .result = result,
            .decode_ms = out->decode_ms,
            .compute_ms = out->compute_ms,
            .total_ms = out->total_ms,
            .labels = labels,
            .argmax = argmax,
            .item_counts = item_counts,
            .images = req->images,
            .image_count = req->image_count,
            .idempotency_key = req->idempotency_key,
            .request_hash = req->request_hash,
            .answer = &recorded,
        };
        detail[0] = '\0';
        int status = req->hook(req->hook_arg, &record, detail, sizeof detail);
        if (status != 200) {
            outcome_fail(out, status, "%s",
                         detail[0] ? detail : "the result could not be recorded; retry later");
            goto done;
        }
        /* the answer as recorded: the one the hook wrote, or, for a retry of a recorded
         * request, the first answer with its evaluation id */
        out->body = recorded.answer;
        out->body_len = recorded.answer_len;
        recorded.answer = NULL;
    }
    out->result = result;
    result = NULL;
    out->item_counts = item_counts;
    item_counts = NULL;
done:
    segloss_result_free(result);
    free(argmax);
    free(item_counts);
    free(recorded.answer);
}
