/*
 * test_evaluation.c - the bytes-to-answer path shared by HTTP and `seglossd eval`, on inputs
 * built in memory: a good request and its JSON keys, mask checks (JPEG, count, sizes, 16-bit),
 * parameter checks against C, and the statuses of decoder errors.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "api/result_json.h"
#include "service/evaluation.h"
#include "testing.h"

static segloss_ctx *ctx;
static segloss_limits limits;

/* A little-endian float32 .npy of shape (n,c,h,w); data starts at byte 128. */
static unsigned char *make_npy(size_t n, size_t c, size_t h, size_t w, size_t *len)
{
    char header[128];
    int hl = snprintf(header, sizeof header,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu, %zu, %zu), }",
                      n, c, h, w);
    size_t header_len = 128 - 10;
    CHECK(hl > 0 && (size_t)hl < header_len);
    memset(header + hl, ' ', header_len - (size_t)hl - 1);
    header[header_len - 1] = '\n';
    size_t count = n * c * h * w;
    *len = 128 + count * 4;
    unsigned char *buf = malloc(*len);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)header_len;
    buf[9] = 0;
    memcpy(buf + 10, header, header_len);
    for (size_t i = 0; i < count; i++) {
        float v = (float)((i * 7) % 5) - 2.0f;
        memcpy(buf + 128 + 4 * i, &v, 4);
    }
    return buf;
}

static unsigned char *make_png(uint32_t w, uint32_t h, size_t *len)
{
    uint8_t *pixels = malloc((size_t)w * h);
    for (size_t i = 0; i < (size_t)w * h; i++)
        pixels[i] = (uint8_t)(i % 3);
    uint8_t *png = NULL;
    char detail[128];
    CHECK_EQ_INT(segloss_png_encode(pixels, w, h, 1, &png, len, detail, sizeof detail), 0);
    free(pixels);
    return png;
}

static void run(const evaluation_blob *logits, const evaluation_blob *masks, size_t mask_count,
                params_request *params, evaluation_outcome *out)
{
    evaluation_request req = {
        .logits = *logits,
        .masks = masks,
        .mask_count = mask_count,
        .params = params,
        .id = "test-id",
        .started = evaluation_now(),
    };
    evaluation_run(ctx, &limits, &req, out);
    evaluation_answer_json(out, &req);
}

static void test_good_request(void)
{
    size_t nl, nm;
    unsigned char *npy = make_npy(2, 3, 4, 5, &nl);
    unsigned char *png = make_png(5, 4, &nm);
    evaluation_blob logits = {npy, nl};
    evaluation_blob masks[2] = {{png, nm}, {png, nm}};
    params_request p;
    params_init(&p);
    p.confusion_matrix = true;
    evaluation_outcome out;
    run(&logits, masks, 2, &p, &out);
    CHECK_MSG(out.status == 200, "%d %s", out.status, out.detail);
    CHECK(out.result != NULL);
    cJSON *doc = out.body ? cJSON_Parse(out.body) : NULL;
    CHECK(doc != NULL);
    if (doc) {
        static const char *const keys[] = {"id",     "shape",           "num_classes", "pixels",
                                           "loss",   "per_class",       "metrics",     "params",
                                           "timing", "confusion_matrix"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            CHECK_MSG(cJSON_GetObjectItem(doc, keys[i]) != NULL, "%s", keys[i]);
        const cJSON *shape = cJSON_GetObjectItem(doc, "shape");
        CHECK_EQ_INT(cJSON_GetObjectItem(shape, "n")->valueint, 2);
        CHECK_EQ_INT(cJSON_GetObjectItem(shape, "c")->valueint, 3);
        CHECK_EQ_INT(cJSON_GetObjectItem(shape, "h")->valueint, 4);
        CHECK_EQ_INT(cJSON_GetObjectItem(shape, "w")->valueint, 5);
        CHECK(strcmp(cJSON_GetObjectItem(doc, "id")->valuestring, "test-id") == 0);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "confusion_matrix")), 3);
        cJSON_Delete(doc);
    }
    evaluation_outcome_clear(&out);
    params_free(&p);
    free(npy);
    free(png);
}

static void test_mask_checks(void)
{
    size_t nl, nm, nm2;
    unsigned char *npy = make_npy(2, 3, 4, 5, &nl);
    unsigned char *png = make_png(5, 4, &nm);
    unsigned char *other = make_png(6, 4, &nm2);
    static const unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0};
    evaluation_blob logits = {npy, nl};
    params_request p;
    params_init(&p);
    evaluation_outcome out;

    evaluation_blob one[1] = {{png, nm}};
    run(&logits, one, 1, &p, &out);
    CHECK_EQ_INT(out.status, 422);
    CHECK(strstr(out.detail, "1 mask parts for a batch of 2") != NULL);
    evaluation_outcome_clear(&out);

    evaluation_blob sizes[2] = {{png, nm}, {other, nm2}};
    run(&logits, sizes, 2, &p, &out);
    CHECK_EQ_INT(out.status, 422);
    CHECK(strstr(out.detail, "mask 1 is 6x4") != NULL);
    evaluation_outcome_clear(&out);

    evaluation_blob jpegs[2] = {{png, nm}, {jpeg, sizeof jpeg}};
    run(&logits, jpegs, 2, &p, &out);
    CHECK_EQ_INT(out.status, 415);
    CHECK(strstr(out.detail, "masks must be lossless (PNG or .npy)") != NULL);
    evaluation_outcome_clear(&out);

    evaluation_blob none[1] = {{NULL, 0}};
    run(&logits, none, 0, &p, &out);
    CHECK_EQ_INT(out.status, 400);
    evaluation_outcome_clear(&out);

    params_free(&p);
    free(npy);
    free(png);
    free(other);
}

static void test_params_against_classes(void)
{
    size_t nl, nm;
    unsigned char *npy = make_npy(1, 3, 4, 5, &nl);
    unsigned char *png = make_png(5, 4, &nm);
    evaluation_blob logits = {npy, nl};
    evaluation_blob masks[1] = {{png, nm}};
    params_request p;
    params_init(&p);
    char detail[256];
    CHECK_EQ_INT(params_set_json(&p, "{\"num_classes\": 4}", 18, 1024, detail, sizeof detail), 0);
    evaluation_outcome out;
    run(&logits, masks, 1, &p, &out);
    CHECK_EQ_INT(out.status, 422);
    CHECK(strstr(out.detail, "num_classes is 4") != NULL);
    evaluation_outcome_clear(&out);
    params_free(&p);

    /* Logits that are not logits. */
    params_init(&p);
    evaluation_blob png_logits = {png, nm};
    run(&png_logits, masks, 1, &p, &out);
    CHECK_EQ_INT(out.status, 415);
    evaluation_outcome_clear(&out);
    evaluation_blob truncated = {npy, nl - 3};
    run(&truncated, masks, 1, &p, &out);
    CHECK_EQ_INT(out.status, 400);
    CHECK(strstr(out.detail, "logits: ") == out.detail);
    evaluation_outcome_clear(&out);
    params_free(&p);
    free(npy);
    free(png);
}

int main(void)
{
    segloss_limits_default(&limits);
    if (segloss_ctx_new(&ctx, 2, SEGLOSS_KERNEL_AUTO) != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_good_request);
    RUN(test_mask_checks);
    RUN(test_params_against_classes);
    segloss_ctx_free(ctx);
    return TESTS_DONE();
}
