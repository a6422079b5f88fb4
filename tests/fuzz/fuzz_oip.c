/*
 * fuzz_oip.c - libFuzzer harness for Open Inference Protocol v2 requests (server/api/oip.c): the
 * JSON request, JSON tensor data (flat and nested) and the binary tensor extension, as
 * POST /v2/models/segloss/infer reads them.
 *
 * fuzz-extra-src: server/api/oip.c server/service/params.c server/base/text.c
 * lib/loss/loss_params.c server/base/json_writer.c server/base/problem.c server/api/result_json.c
 * server/service/evaluation.c lib/loss/evaluate.c lib/loss/resize.c lib/loss/exact_sum.c
 * lib/loss/stats.c lib/loss/result.c lib/loss/context.c lib/loss/thread_pool.c
 * lib/loss/kernel_scalar.c lib/loss/kernel_avx2.c lib/loss/kernel_avx512.c server/base/detail.c
 * server/base/aligned.c server/base/names.c
 *
 * Input layout: byte 0 bit 0 says whether an Inference-Header-Content-Length is given, bits
 * 1-6 the body's offset from 64-byte alignment; bytes 1-4 the header length (little-endian,
 * taken modulo the body length + 8, so it can also point past the body); the rest is the body.
 * Every status must be 0, 400, 413, 415 or 503 with a NUL-terminated detail; on 0 the tensors
 * must be of a rank and datatype the evaluation takes, their data aligned to the element size
 * and inside the body or the request's own copies; oip_request_free must release everything
 * (LeakSanitizer checks).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/oip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/oip", "tests/crashers/oip",
                                                NULL};

static bool inside(const void *p, size_t bytes, const uint8_t *body, size_t len, const void *owned)
{
    const uint8_t *q = p;
    if (owned && q == owned)
        return true;
    return q >= body && bytes <= len && (size_t)(q - body) <= len - bytes;
}

static void tensor_ok(const segloss_tensor *t, int lo, int hi, const uint8_t *body, size_t len,
                      const void *owned)
{
    size_t elements = 0, elem = segloss_dtype_size(t->dtype);
    if (t->rank < lo || t->rank > hi || !t->data || elem == 0)
        abort();
    if (segloss_tensor_elements(t, &elements) != 0)
        abort();
    if ((uintptr_t)t->data % elem)
        abort();
    if (!inside(t->data, elements * elem, body, len, owned))
        abort();
}

static int run(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 400;
    size_t len = size - 5;
    size_t offset = (data[0] >> 1) & 63;
    uint32_t hl;
    memcpy(&hl, data + 1, 4);
    char header[24];
    snprintf(header, sizeof header, "%zu", (size_t)hl % (len + 8));
    uint8_t *mem = aligned_alloc(64, (len + offset + 64) / 64 * 64 + 64);
    if (!mem)
        return 503;
    uint8_t *body = mem + offset;
    memcpy(body, data + 5, len);
    segloss_limits limits;
    segloss_limits_default(&limits);
    limits.max_elements = (size_t)1 << 20; /* keep JSON tensors small */
    char detail[EVALUATION_DETAIL_MAX];
    memset(detail, 'x', sizeof detail);
    oip_request req;
    int status = oip_parse(body, len, (data[0] & 1) ? header : NULL, &limits, 65536, &req, detail,
                           sizeof detail);
    if (status != 0 && status != 400 && status != 413 && status != 415 && status != 503)
        abort();
    if (status && strnlen(detail, sizeof detail) == sizeof detail)
        abort();
    if (status == 0) {
        tensor_ok(&req.logits, 3, 4, body, len, req.owned_logits);
        tensor_ok(&req.labels, 2, 3, body, len, req.owned_labels);
        if (!segloss_dtype_is_float(req.logits.dtype) || segloss_dtype_is_float(req.labels.dtype))
            abort();
        if (req.output_count == 0 || req.output_count > OIP_OUT_COUNT)
            abort();
    }
    oip_request_free(&req);
    free(mem);
    return status;
}

int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    int status = run(data, size);
    return status ? -status : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)run(data, size);
    return 0;
}
