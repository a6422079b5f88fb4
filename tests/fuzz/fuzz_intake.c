/*
 * fuzz_intake.c - libFuzzer harness for the work POST /v1/evaluate does while a body is still
 * arriving (server/api/intake.c): decoding masks, reading a .npy label part and a params part
 * early, and evaluating batch items on its own worker thread. The body is parsed in chunks with
 * an intake and evaluated with what it prepared, then parsed again without one; both must give
 * the same status and detail and, for a 200, the same answer bit for bit (its timing left out).
 * Whatever the bytes, the overlapped path may only be faster, never different.
 *
 * fuzz-extra-src: server/api/intake.c server/api/evaluate_parts.c server/http/multipart.c
 * server/http/bufpool.c server/service/evaluation.c server/service/params.c
 * server/api/result_json.c server/base/json_writer.c server/base/problem.c server/base/text.c
 * server/base/detail.c server/base/aligned.c server/base/names.c lib/loss/loss_params.c
 * lib/loss/evaluate.c lib/loss/resize.c lib/loss/exact_sum.c lib/loss/stats.c lib/loss/result.c
 * lib/loss/context.c lib/loss/thread_pool.c lib/loss/kernel_scalar.c lib/loss/kernel_avx2.c
 * lib/loss/kernel_avx512.c
 *
 * Input layout: byte 0 picks the chunk size (1 << (byte % 12) bytes: 1 byte to 2 KiB); the rest
 * is a multipart/form-data body with the boundary "b0undary" (the seeds are small batches:
 * PNG or .npy masks before or after the logits, with and without a params part).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/evaluate_parts.h"
#include "api/intake.h"
#include "api/result_json.h"
#include "http/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/intake", NULL};

#define FUZZ_CT "multipart/form-data; boundary=b0undary"
#define FUZZ_MAX_PARTS 16
#define FUZZ_MAX_PARAMS_BYTES 4096
/* Masks followed at most by one request here (a batch of the seeds' size). */
#define FUZZ_MAX_MASKS 16

static segloss_ctx *ctx;
static intake_worker *worker;
static segloss_limits limits;

typedef struct outcome {
    int status;
    char detail[EVALUATION_DETAIL_MAX];
    char *answer; /* 200: the answer without its timing */
} outcome;

/* The answer without "timing" (the one member that differs from run to run). */
static char *without_timing(const char *body)
{
    char *copy = strdup(body ? body : "");
    char *t = copy ? strstr(copy, "\"timing\"") : NULL;
    if (t) {
        char *end = strchr(t, '}');
        if (end)
            memmove(t, end + 1, strlen(end + 1) + 1);
    }
    return copy;
}

/* body in chunks of `chunk` bytes, with an intake when overlap is set, then evaluated as the
 * route does: the parts checked, the params part over the (empty) query, the evaluation. */
static outcome run(const uint8_t *body, size_t len, size_t chunk, bool overlap)
{
    outcome o = {0, "", NULL};
    evaluate_parts_limits pl = {len + 1, FUZZ_MAX_PARTS, FUZZ_MAX_PARAMS_BYTES, NULL};
    multipart_parser *p = NULL;
    o.status = evaluate_parts_new(FUZZ_CT, len, &pl, &p, o.detail, sizeof o.detail);
    if (o.status)
        return o;
    intake *in = overlap ? intake_new(worker, false, FUZZ_MAX_PARAMS_BYTES) : NULL;
    for (size_t off = 0; off < len && !o.status; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        o.status = evaluate_parts_feed(p, body + off, n, o.detail, sizeof o.detail);
        if (!o.status)
            intake_progress(in, p);
    }
    const multipart_part *l = multipart_first(p, EVALUATE_PART_LOGITS);
    bool safetensors = l && segloss_detect_format(l->data, l->len) == SEGLOSS_FORMAT_SAFETENSORS;
    if (!o.status)
        o.status = evaluate_parts_finish(p, safetensors, o.detail, sizeof o.detail);
    params_request params;
    params_init(&params);
    const multipart_part *pp = o.status ? NULL : multipart_first(p, EVALUATE_PART_PARAMS);
    if (pp)
        o.status = params_set_json(&params, (const char *)pp->data, pp->len, FUZZ_MAX_PARAMS_BYTES,
                                   o.detail, sizeof o.detail);
    const evaluation_prepared *prepared = intake_close(in);
    if (!o.status) {
        evaluation_blob masks[FUZZ_MAX_MASKS];
        size_t m = evaluate_parts_blobs(p, EVALUATE_PART_MASK, masks, FUZZ_MAX_MASKS);
        evaluation_request er = {
            .logits = {l->data, l->len},
            .masks = masks,
            .mask_count = m,
            .params = &params,
            .id = "fuzz",
            .prepared = prepared,
        };
        evaluation_outcome out = {0};
        evaluation_run(ctx, &limits, &er, &out);
        evaluation_answer_json(&out, &er);
        o.status = out.status;
        snprintf(o.detail, sizeof o.detail, "%s", out.detail);
        if (out.status == 200)
            o.answer = without_timing(out.body);
        evaluation_outcome_clear(&out);
    }
    params_free(&params);
    intake_release(in);
    multipart_free(p);
    return o;
}

static void setup(void)
{
    if (ctx)
        return;
    segloss_limits_default(&limits);
    if (segloss_ctx_new(&ctx, 2, SEGLOSS_KERNEL_AUTO) != 0)
        abort();
    worker = intake_worker_new(ctx, &limits);
    if (!worker)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    setup();
    size_t chunk = (size_t)1 << (data[0] % 12);
    outcome with = run(data + 1, size - 1, chunk, true);
    outcome without = run(data + 1, size - 1, size, false);
    if (with.status != without.status || strcmp(with.detail, without.detail) != 0) {
        fprintf(stderr, "with the intake: %d %s\nwithout: %d %s\n", with.status, with.detail,
                without.status, without.detail);
        abort();
    }
    if ((with.answer || without.answer) &&
        (!with.answer || !without.answer || strcmp(with.answer, without.answer) != 0)) {
        fprintf(stderr, "with the intake:\n%s\nwithout:\n%s\n", with.answer ? with.answer : "-",
                without.answer ? without.answer : "-");
        abort();
    }
    free(with.answer);
    free(without.answer);
    return 0;
}

/* For tests/crashers/intake files: negative when the body is refused. */
int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    if (size < 1)
        return -1;
    setup();
    outcome o = run(data + 1, size - 1, size, false);
    free(o.answer);
    return o.status == 200 ? 0 : -1;
}
