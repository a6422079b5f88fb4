/*
 * test_oip.c - Open Inference Protocol v2 requests: JSON data flat and nested, the binary tensor
 * extension (in place when aligned, copied only when not), every datatype, the malformed
 * requests (header length past the body, binary_data_size against shape x datatype, unknown
 * datatype, missing input, shape/element mismatch, wrong types) and the answers (JSON, binary,
 * undefined numbers), against segloss_evaluate called directly.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/oip.h"
#include "testing.h"

static char detail[512];
static segloss_limits limits;
static segloss_ctx *ctx;

/* A 1x2x1x3 batch: logits as in the tiny worked example, labels 0, 1, 255 (ignored). */
static const float LOGITS[6] = {1, 2, 3, 3, 2, 1};
static const uint8_t LABELS[3] = {0, 1, 255};

static int parse_text(const char *text, oip_request *req)
{
    detail[0] = '\0';
    return oip_parse(text, strlen(text), NULL, &limits, 65536, req, detail, sizeof detail);
}

/* Builds a binary request in an aligned buffer at `offset` bytes past alignment. */
typedef struct bin_body {
    unsigned char *mem; /* free this */
    unsigned char *body;
    size_t len;
    char header_len[24];
} bin_body;

static bin_body make_binary(const char *json, const void *a, size_t alen, const void *b,
                            size_t blen, size_t offset)
{
    bin_body out;
    size_t jl = strlen(json);
    out.len = jl + alen + blen;
    out.mem = aligned_alloc(64, (out.len + offset + 64 + 63) / 64 * 64);
    out.body = out.mem + offset;
    memcpy(out.body, json, jl);
    if (alen)
        memcpy(out.body + jl, a, alen);
    if (blen)
        memcpy(out.body + jl + alen, b, blen);
    snprintf(out.header_len, sizeof out.header_len, "%zu", jl);
    return out;
}

static int parse_binary(const bin_body *b, oip_request *req)
{
    detail[0] = '\0';
    return oip_parse(b->body, b->len, b->header_len, &limits, 65536, req, detail, sizeof detail);
}

static const char JSON_FLAT[] =
    "{\"id\":\"r1\",\"inputs\":["
    "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],\"data\":[1,2,3,3,2,1]},"
    "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],\"data\":[0,1,255]}]}";

static void test_json_flat(void)
{
    oip_request req;
    CHECK_EQ_INT(parse_text(JSON_FLAT, &req), 0);
    CHECK(req.id && strcmp(req.id, "r1") == 0);
    CHECK_EQ_INT(req.logits.dtype, SEGLOSS_F32);
    CHECK_EQ_INT(req.logits.rank, 4);
    CHECK_EQ_INT(req.logits.shape[1], 2);
    CHECK(memcmp(req.logits.data, LOGITS, sizeof LOGITS) == 0);
    CHECK_EQ_INT(req.labels.dtype, SEGLOSS_U8);
    CHECK(memcmp(req.labels.data, LABELS, sizeof LABELS) == 0);
    CHECK_EQ_INT(req.output_count, 7);
    CHECK(!req.binary_output);
    oip_request_free(&req);
}

static void test_json_nested(void)
{
    oip_request req;
    const char *text =
        "{\"inputs\":["
        "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
        "\"data\":[[[[1,2,3]],[[3,2,1]]]]},"
        "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],\"data\":[[[0,1,255]]]}]}";
    CHECK_EQ_INT(parse_text(text, &req), 0);
    CHECK(req.id == NULL);
    CHECK(req.logits.data && memcmp(req.logits.data, LOGITS, sizeof LOGITS) == 0);
    CHECK(req.labels.data && memcmp(req.labels.data, LABELS, sizeof LABELS) == 0);
    oip_request_free(&req);
    /* Nesting that does not follow the shape, even with the right count. */
    text = "{\"inputs\":["
           "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
           "\"data\":[[[1,2,3],[3,2,1]]]},"
           "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],\"data\":[0,1,2]}]}";
    CHECK_EQ_INT(parse_text(text, &req), 400);
    CHECK_MSG(strstr(detail, "nested") != NULL, "%s", detail);
    oip_request_free(&req);
}

/* The same request with `outputs` set to what follows (JSON text). */
static int parse_outputs_text(const char *outputs_json, oip_request *req)
{
    char text[1024];
    snprintf(text, sizeof text, "%.*s,\"outputs\":%s}", (int)(sizeof JSON_FLAT - 2), JSON_FLAT,
             outputs_json);
    return parse_text(text, req);
}

static void test_outputs_list(void)
{
    oip_request req;
    /* Empty or null: the default outputs, as when absent (the fuzzer found an empty list
     * answering with no output at all). */
    const char *as_default[] = {"[]", "null"};
    for (size_t i = 0; i < sizeof as_default / sizeof as_default[0]; i++) {
        CHECK_EQ_INT(parse_outputs_text(as_default[i], &req), 0);
        CHECK_MSG(req.output_count == 7, "outputs %s: %zu outputs", as_default[i],
                  req.output_count);
        CHECK_EQ_INT(req.outputs[0], OIP_OUT_CE);
        CHECK_EQ_INT(req.outputs[6], OIP_OUT_F_SCORE_PER_CLASS);
        oip_request_free(&req);
    }
    /* A list: exactly those, in that order. */
    CHECK_EQ_INT(parse_outputs_text("[{\"name\":\"miou\"},{\"name\":\"ce\"}]", &req), 0);
    CHECK_EQ_INT(req.output_count, 2);
    CHECK_EQ_INT(req.outputs[0], OIP_OUT_MIOU);
    CHECK_EQ_INT(req.outputs[1], OIP_OUT_CE);
    oip_request_free(&req);
    CHECK_EQ_INT(parse_outputs_text("{}", &req), 400);
    CHECK_MSG(strstr(detail, "outputs must be a list") != NULL, "%s", detail);
    oip_request_free(&req);
}

static const char BIN_HEADER[] = "{\"inputs\":["
                                 "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
                                 "\"parameters\":{\"binary_data_size\":24}},"
                                 "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],"
                                 "\"parameters\":{\"binary_data_size\":3}}]}";

static void test_binary_in_place(void)
{
    /* The binary section starts aligned: the logits view points into the body. */
    size_t jl = strlen(BIN_HEADER);
    size_t offset = (64 - jl % 64) % 64;
    bin_body b = make_binary(BIN_HEADER, LOGITS, sizeof LOGITS, LABELS, sizeof LABELS, offset);
    oip_request req;
    CHECK_EQ_INT(parse_binary(&b, &req), 0);
    CHECK(req.logits.data == b.body + jl);
    CHECK(req.owned_logits == NULL);
    CHECK(req.labels.data == b.body + jl + sizeof LOGITS);
    oip_request_free(&req);
    free(b.mem);
}

static void test_binary_misaligned_is_copied(void)
{
    size_t jl = strlen(BIN_HEADER);
    size_t offset = (64 - jl % 64) % 64 + 1;
    bin_body b = make_binary(BIN_HEADER, LOGITS, sizeof LOGITS, LABELS, sizeof LABELS, offset);
    oip_request req;
    CHECK_EQ_INT(parse_binary(&b, &req), 0);
    CHECK(req.owned_logits != NULL && req.logits.data == req.owned_logits);
    CHECK((uintptr_t)req.logits.data % 4 == 0);
    CHECK(memcmp(req.logits.data, LOGITS, sizeof LOGITS) == 0);
    CHECK(req.labels.data == b.body + jl + sizeof LOGITS); /* bytes: never misaligned */
    oip_request_free(&req);
    free(b.mem);
}

/* ce of the 6-value batch under the given logits/labels datatypes, through oip_infer with
 * binary data, or NAN on failure. */
static double infer_ce(const char *ltype, const void *ldata, size_t lsize, const char *mtype,
                       const void *mdata, size_t msize, bool json)
{
    char header[1024];
    oip_outcome out;
    if (json) {
        /* The same values as JSON numbers (all exactly representable in every type). */
        snprintf(header, sizeof header,
                 "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"%s\",\"shape\":[1,2,1,3],"
                 "\"data\":[1,2,3,3,2,1]},{\"name\":\"labels\",\"datatype\":\"%s\","
                 "\"shape\":[1,1,3],\"data\":[0,1,%s]}],"
                 "\"outputs\":[{\"name\":\"ce\",\"parameters\":{\"binary_data\":true}}]}",
                 ltype, mtype, strcmp(mtype, "INT8") == 0 ? "-1" : "255");
        oip_infer_input in = {header, strlen(header), NULL, &limits, 65536, "e", 0, NULL, NULL};
        oip_infer(ctx, &in, &out);
    } else {
        snprintf(header, sizeof header,
                 "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"%s\",\"shape\":[1,2,1,3],"
                 "\"parameters\":{\"binary_data_size\":%zu}},{\"name\":\"labels\",\"datatype\":"
                 "\"%s\",\"shape\":[1,1,3],\"parameters\":{\"binary_data_size\":%zu}}],"
                 "\"outputs\":[{\"name\":\"ce\",\"parameters\":{\"binary_data\":true}}]}",
                 ltype, lsize, mtype, msize);
        bin_body b = make_binary(header, ldata, lsize, mdata, msize, 3);
        oip_infer_input in = {b.body, b.len, b.header_len, &limits, 65536, "e", 0, NULL, NULL};
        oip_infer(ctx, &in, &out);
        free(b.mem);
    }
    double ce = NAN;
    if (out.status == 200 && out.body_len == out.json_len + 4) {
        float f;
        memcpy(&f, out.body + out.json_len, 4);
        ce = (double)f;
    } else {
        fprintf(stderr, "  %s/%s: %d %s\n", ltype, mtype, out.status, out.detail);
    }
    oip_outcome_clear(&out);
    return ce;
}

static void test_every_datatype(void)
{
    float f32[6];
    double f64[6];
    uint16_t f16[6], bf16[6];
    for (int i = 0; i < 6; i++) {
        f32[i] = LOGITS[i];
        f64[i] = LOGITS[i];
        f16[i] = segloss_float_to_half(LOGITS[i]);
        uint32_t u;
        memcpy(&u, &f32[i], 4);
        bf16[i] = (uint16_t)(u >> 16); /* small integers are exact in bfloat16 */
    }
    uint8_t u8[3] = {0, 1, 255};
    int8_t i8[3] = {0, 1, -1};
    uint16_t u16[3] = {0, 1, 300};
    int32_t i32[3] = {0, 1, -5};
    int64_t i64[3] = {0, 1, 1000};
    double want = infer_ce("FP32", f32, sizeof f32, "UINT8", u8, sizeof u8, false);
    CHECK(isfinite(want) && want > 0);
    for (int json = 0; json < 2; json++) {
        CHECK_CLOSE(infer_ce("FP64", f64, sizeof f64, "UINT8", u8, 3, json), want, 1e-7, 1e-9);
        CHECK_CLOSE(infer_ce("FP16", f16, sizeof f16, "UINT8", u8, 3, json), want, 1e-7, 1e-9);
        CHECK_CLOSE(infer_ce("BF16", bf16, sizeof bf16, "UINT8", u8, 3, json), want, 1e-7, 1e-9);
        CHECK_CLOSE(infer_ce("FP32", f32, sizeof f32, "INT8", i8, 3, json), want, 1e-7, 1e-9);
        CHECK_CLOSE(infer_ce("FP32", f32, sizeof f32, "UINT16", u16, 6, json), want, 1e-7, 1e-9);
        CHECK_CLOSE(infer_ce("FP32", f32, sizeof f32, "INT32", i32, 12, json), want, 1e-7, 1e-9);
        CHECK_CLOSE(infer_ce("FP32", f32, sizeof f32, "INT64", i64, 24, json), want, 1e-7, 1e-9);
    }
}

/* Status of a JSON request, with the detail checked for a word. */
static void expect(const char *text, int status, const char *word)
{
    oip_request req;
    int got = parse_text(text, &req);
    CHECK_MSG(got == status, "%d != %d for %s (%s)", got, status, text, detail);
    if (word)
        CHECK_MSG(strstr(detail, word) != NULL, "'%s' not in '%s'", word, detail);
    oip_request_free(&req);
}

#define LABELS_OK "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],\"data\":[0,1,2]}"
#define LOGITS_OK                                                                                  \
    "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],\"data\":[1,2,3,3,2,1]}"

static void test_malformed_json(void)
{
    expect("", 400, "empty");
    expect("{", 400, "not valid JSON");
    expect("[]", 400, "JSON object");
    expect("{\"inputs\":{}}", 400, "inputs must be a list");
    expect("{\"inputs\":[" LOGITS_OK "]}", 400, "labels is missing");
    expect("{\"inputs\":[" LABELS_OK "]}", 400, "logits is missing");
    expect("{\"inputs\":[" LOGITS_OK "," LABELS_OK "," LABELS_OK "]}", 400, "twice");
    expect("{\"inputs\":[" LOGITS_OK "," LABELS_OK ",{\"name\":\"image\",\"datatype\":\"UINT8\","
           "\"shape\":[1],\"data\":[1]}]}",
           400, "unknown input");
    /* datatypes */
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP33\",\"shape\":[1,2,1,3],"
           "\"data\":[1,2,3,3,2,1]}," LABELS_OK "]}",
           400, "unknown datatype");
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"INT32\",\"shape\":[1,2,1,3],"
           "\"data\":[1,2,3,3,2,1]}," LABELS_OK "]}",
           415, "FP32, FP16");
    expect("{\"inputs\":[" LOGITS_OK ",{\"name\":\"labels\",\"datatype\":\"FP32\","
           "\"shape\":[1,1,3],\"data\":[0,1,2]}]}",
           415, "UINT8");
    expect("{\"inputs\":[" LOGITS_OK ",{\"name\":\"labels\",\"shape\":[1,1,3],"
           "\"data\":[0,1,2]}]}",
           400, "no datatype");
    /* shapes and element counts */
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
           "\"data\":[1,2,3,3,2]}," LABELS_OK "]}",
           400, "needs 6");
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
           "\"data\":[1,2,3,3,2,1,0]}," LABELS_OK "]}",
           400, "more values");
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[6],"
           "\"data\":[1,2,3,3,2,1]}," LABELS_OK "]}",
           400, "dimensions");
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,-3],"
           "\"data\":[1,2,3,3,2,1]}," LABELS_OK "]}",
           400, "shape[3]");
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":\"1,2,1,3\","
           "\"data\":[1,2,3,3,2,1]}," LABELS_OK "]}",
           400, "no shape");
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3]}," LABELS_OK
           "]}",
           400, "no data");
    /* wrong types in data */
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
           "\"data\":[1,2,\"3\",3,2,1]}," LABELS_OK "]}",
           400, "data[2] must be a number");
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
           "\"data\":[1,2,true,3,2,1]}," LABELS_OK "]}",
           400, "true or false");
    expect("{\"inputs\":[" LOGITS_OK ",{\"name\":\"labels\",\"datatype\":\"UINT8\","
           "\"shape\":[1,1,3],\"data\":[0,1,256]}]}",
           400, "0 to 255");
    expect("{\"inputs\":[" LOGITS_OK ",{\"name\":\"labels\",\"datatype\":\"UINT8\","
           "\"shape\":[1,1,3],\"data\":[0,1.5,2]}]}",
           400, "integer");
    expect("{\"inputs\":[" LOGITS_OK ",{\"name\":\"labels\",\"datatype\":\"UINT8\","
           "\"shape\":[1,1,3],\"data\":[0,-1,2]}]}",
           400, "integer");
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
           "\"data\":\"AAAA\"}," LABELS_OK "]}",
           400, "list of numbers");
    /* binary data without the header */
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
           "\"parameters\":{\"binary_data_size\":24}}," LABELS_OK "]}",
           400, "Inference-Header-Content-Length");
    /* parameters: params.c's messages */
    expect("{\"inputs\":[" LOGITS_OK "," LABELS_OK "],\"parameters\":{\"gamma\":-1}}", 400,
           "gamma must be a number >= 0");
    expect("{\"inputs\":[" LOGITS_OK "," LABELS_OK "],\"parameters\":{\"gama\":1}}", 400,
           "unknown parameter 'gama'");
    expect("{\"inputs\":[" LOGITS_OK "," LABELS_OK "],\"parameters\":{\"main_loss\":1}}", 400,
           "main_loss must be");
    expect("{\"inputs\":[" LOGITS_OK "," LABELS_OK "],\"parameters\":{\"binary_data_output\":1}}",
           400, "binary_data_output");
    expect("{\"inputs\":[" LOGITS_OK "," LABELS_OK ",{\"name\":\"class_weights\",\"datatype\":"
           "\"FP32\",\"shape\":[2],\"data\":[1,2]}],\"parameters\":{\"class_weights\":[1,2]}}",
           400, "give it once");
    expect("{\"inputs\":[" LOGITS_OK "," LABELS_OK ",{\"name\":\"class_weights\",\"datatype\":"
           "\"FP32\",\"shape\":[2],\"data\":[1,-2]}]}",
           400, "class_weights[1]");
    /* outputs */
    expect("{\"inputs\":[" LOGITS_OK "," LABELS_OK "],\"outputs\":[{\"name\":\"loss\"}]}", 400,
           "unknown output");
    expect("{\"id\":5,\"inputs\":[" LOGITS_OK "," LABELS_OK "]}", 400, "id must be a string");
    /* limits */
    expect("{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,100000],"
           "\"data\":[1]}," LABELS_OK "]}",
           413, "per side");
}

static void test_malformed_binary(void)
{
    oip_request req;
    /* Header length past the body. */
    bin_body b = make_binary(BIN_HEADER, LOGITS, sizeof LOGITS, LABELS, sizeof LABELS, 0);
    detail[0] = '\0';
    CHECK_EQ_INT(oip_parse(b.body, b.len, "100000", &limits, 65536, &req, detail, sizeof detail),
                 400);
    CHECK_MSG(strstr(detail, "only") != NULL, "%s", detail);
    oip_request_free(&req);
    CHECK_EQ_INT(oip_parse(b.body, b.len, "12abc", &limits, 65536, &req, detail, sizeof detail),
                 400);
    oip_request_free(&req);
    /* The body has a byte more (or less) than the sizes add up to. */
    b.len += 1;
    CHECK_EQ_INT(parse_binary(&b, &req), 400);
    CHECK_MSG(strstr(detail, "add up") != NULL, "%s", detail);
    oip_request_free(&req);
    b.len -= 2;
    CHECK_EQ_INT(parse_binary(&b, &req), 400);
    CHECK_MSG(strstr(detail, "needs 3 bytes") != NULL, "%s", detail);
    oip_request_free(&req);
    free(b.mem);
    /* binary_data_size not shape x datatype size. */
    const char *wrong = "{\"inputs\":["
                        "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
                        "\"parameters\":{\"binary_data_size\":12}},"
                        "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],"
                        "\"parameters\":{\"binary_data_size\":3}}]}";
    b = make_binary(wrong, LOGITS, 12, LABELS, sizeof LABELS, 0);
    CHECK_EQ_INT(parse_binary(&b, &req), 400);
    CHECK_MSG(strstr(detail, "needs 24 bytes") != NULL, "%s", detail);
    oip_request_free(&req);
    free(b.mem);
    /* data and binary_data_size both. */
    const char *both =
        "{\"inputs\":["
        "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
        "\"data\":[1,2,3,3,2,1],\"parameters\":{\"binary_data_size\":24}}," LABELS_OK "]}";
    b = make_binary(both, LOGITS, sizeof LOGITS, NULL, 0, 0);
    CHECK_EQ_INT(parse_binary(&b, &req), 400);
    CHECK_MSG(strstr(detail, "both") != NULL, "%s", detail);
    oip_request_free(&req);
    free(b.mem);
}

/* The answer against segloss_evaluate called directly; JSON nulls and binary NaN. */
static void test_answers(void)
{
    segloss_tensor lt = {LOGITS, SEGLOSS_F32, 4, {1, 2, 1, 3}};
    segloss_tensor mt = {LABELS, SEGLOSS_U8, 3, {1, 1, 3}};
    segloss_params p;
    segloss_params_default(&p);
    double w[2] = {1, 2};
    p.class_weights = w;
    p.class_weights_len = 2;
    segloss_result *r = NULL;
    CHECK_EQ_INT(segloss_evaluate(ctx, &lt, &mt, &p, &r, detail, sizeof detail), 0);
    const char *text =
        "{\"id\":\"abc\",\"inputs\":["
        "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],\"data\":[1,2,3,3,2,1]},"
        "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],\"data\":[0,1,255]},"
        "{\"name\":\"class_weights\",\"datatype\":\"FP32\",\"shape\":[2],\"data\":[1,2]}],"
        "\"parameters\":{\"confusion_matrix\":true}}";
    oip_outcome out;
    oip_infer_input in = {text, strlen(text), NULL, &limits, 65536, "ev1", 0, NULL, NULL};
    oip_infer(ctx, &in, &out);
    CHECK_EQ_INT(out.status, 200);
    CHECK_EQ_INT(out.json_len, out.body_len);
    cJSON *root = cJSON_ParseWithLength(out.body ? out.body : "", out.body_len);
    CHECK(root != NULL);
    CHECK(strcmp(cJSON_GetObjectItem(root, "id")->valuestring, "abc") == 0);
    CHECK(strcmp(cJSON_GetObjectItem(root, "model_name")->valuestring, "segloss") == 0);
    const cJSON *outs = cJSON_GetObjectItem(root, "outputs");
    CHECK_EQ_INT(cJSON_GetArraySize(outs), 8);
    const cJSON *o;
    cJSON_ArrayForEach (o, outs) {
        const char *name = cJSON_GetObjectItem(o, "name")->valuestring;
        const cJSON *data = cJSON_GetObjectItem(o, "data");
        if (strcmp(name, "ce") == 0)
            CHECK_CLOSE(cJSON_GetArrayItem(data, 0)->valuedouble, r->ce, 1e-7, 1e-9);
        if (strcmp(name, "dice_per_class") == 0)
            CHECK_CLOSE(cJSON_GetArrayItem(data, 1)->valuedouble, r->dice_per_class[1], 1e-7, 1e-9);
        if (strcmp(name, "confusion_matrix") == 0) {
            CHECK(strcmp(cJSON_GetObjectItem(o, "datatype")->valuestring, "INT64") == 0);
            CHECK_EQ_INT(cJSON_GetArraySize(data), 4);
            CHECK_EQ_INT(cJSON_GetArrayItem(data, 1)->valueint, (int)r->stats->confusion[1]);
        }
    }
    cJSON_Delete(root);
    oip_outcome_clear(&out);
    segloss_result_free(r);

    /* Every pixel ignored: ce is undefined: null in JSON, NaN in binary. */
    const char *ignored =
        "{\"inputs\":["
        "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],\"data\":[1,2,3,3,2,1]},"
        "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],\"data\":[9,9,9]}],"
        "\"outputs\":[{\"name\":\"ce\"},{\"name\":\"focal\",\"parameters\":{\"binary_data\":true}},"
        "{\"name\":\"not_an_output\"}]}";
    oip_infer_input bad = {ignored, strlen(ignored), NULL, &limits, 65536, "ev2", 0, NULL, NULL};
    oip_infer(ctx, &bad, &out);
    CHECK_EQ_INT(out.status, 400);
    oip_outcome_clear(&out);
    ignored = "{\"inputs\":["
              "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
              "\"data\":[1,2,3,3,2,1]},"
              "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],\"data\":[9,9,9]}],"
              "\"parameters\":{\"binary_data_output\":true},"
              "\"outputs\":[{\"name\":\"ce\",\"parameters\":{\"binary_data\":false}},"
              "{\"name\":\"ce\"}]}"; /* twice */
    in = (oip_infer_input){ignored, strlen(ignored), NULL, &limits, 65536, "ev3", 0, NULL, NULL};
    oip_infer(ctx, &in, &out);
    CHECK_EQ_INT(out.status, 400);
    oip_outcome_clear(&out);
    ignored = "{\"inputs\":["
              "{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[1,2,1,3],"
              "\"data\":[1,2,3,3,2,1]},"
              "{\"name\":\"labels\",\"datatype\":\"UINT8\",\"shape\":[1,1,3],\"data\":[9,9,9]}],"
              "\"parameters\":{\"binary_data_output\":true},"
              "\"outputs\":[{\"name\":\"ce\",\"parameters\":{\"binary_data\":false}},"
              "{\"name\":\"total\"},{\"name\":\"support_per_class\"}]}";
    in = (oip_infer_input){ignored, strlen(ignored), NULL, &limits, 65536, "ev4", 0, NULL, NULL};
    oip_infer(ctx, &in, &out);
    CHECK_EQ_INT(out.status, 200);
    CHECK_EQ_INT(out.body_len, out.json_len + 4 + 16);
    if (out.status == 200) {
        root = cJSON_ParseWithLength(out.body, out.json_len);
        CHECK(root != NULL);
        const cJSON *ce = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "outputs"), 0);
        CHECK(cJSON_IsNull(cJSON_GetArrayItem(cJSON_GetObjectItem(ce, "data"), 0)));
        const cJSON *total = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "outputs"), 1);
        CHECK_EQ_INT(
            cJSON_GetObjectItem(cJSON_GetObjectItem(total, "parameters"), "binary_data_size")
                ->valueint,
            4);
        cJSON_Delete(root);
        float f;
        memcpy(&f, out.body + out.json_len, 4);
        CHECK(isnan(f));
        int64_t support[2];
        memcpy(support, out.body + out.json_len + 4, 16);
        CHECK(support[0] == 0 && support[1] == 0);
    }
    oip_outcome_clear(&out);
}

static void test_check_classes(void)
{
    const char *text = "{\"inputs\":[" LOGITS_OK "," LABELS_OK "],"
                       "\"parameters\":{\"num_classes\":3}}";
    oip_outcome out;
    oip_infer_input in = {text, strlen(text), NULL, &limits, 65536, "ev", 0, NULL, NULL};
    oip_infer(ctx, &in, &out);
    CHECK_EQ_INT(out.status, 422);
    CHECK_MSG(strstr(out.detail, "num_classes is 3") != NULL, "%s", out.detail);
    oip_outcome_clear(&out);
    text = "{\"inputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\",\"shape\":[2,2,1,3],"
           "\"data\":[1,2,3,3,2,1,1,2,3,3,2,1]}," LABELS_OK "]}";
    in = (oip_infer_input){text, strlen(text), NULL, &limits, 65536, "ev", 0, NULL, NULL};
    oip_infer(ctx, &in, &out);
    CHECK_EQ_INT(out.status, 422);
    oip_outcome_clear(&out);
}

static void test_metadata(void)
{
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    CHECK(oip_get("/v2", false, &status, &body, &len));
    CHECK_EQ_INT(status, 200);
    CHECK(body && strstr(body, "\"binary_tensor_data\""));
    free(body);
    CHECK(oip_get("/v2/health/ready", true, &status, &body, &len));
    CHECK_EQ_INT(status, 503);
    CHECK(body && strcmp(body, "{\"ready\":false}") == 0 && len == strlen(body));
    free(body);
    CHECK(oip_get("/v2/health/live", true, &status, &body, &len));
    CHECK_EQ_INT(status, 200);
    CHECK(body && strcmp(body, "{\"live\":true}") == 0);
    free(body);
    CHECK(oip_get("/v2/models/segloss/versions/1/ready", false, &status, &body, &len));
    CHECK_EQ_INT(status, 200);
    CHECK(body && strcmp(body, "{\"ready\":true}") == 0);
    free(body);
    body = oip_error_json("a \"quoted\" detail", &len);
    CHECK(body && strcmp(body, "{\"error\":\"a \\\"quoted\\\" detail\"}") == 0);
    free(body);
    char words[128] = "unknown parameter 'masks' in params; known: a";
    oip_speak_v2(words, sizeof words);
    CHECK(strcmp(words, "unknown parameter 'masks' in parameters; known: a") == 0);
    snprintf(words, sizeof words, "logits hold 2 images but there are 1 masks");
    oip_speak_v2(words, sizeof words);
    CHECK(strcmp(words, "logits hold 2 images but labels hold 1 images") == 0);
    CHECK(oip_get("/v2/models/segloss", false, &status, &body, &len));
    CHECK(body && strstr(body, "{\"name\":\"confusion_matrix\",\"datatype\":\"INT64\","
                               "\"shape\":[-1,-1]}"));
    CHECK(body && strstr(body, "{\"name\":\"logits\",\"datatype\":\"FP32\","
                               "\"shape\":[-1,-1,-1,-1]}"));
    free(body);
    CHECK(!oip_get("/v2/models/other", false, &status, &body, &len));
}

int main(void)
{
    segloss_limits_default(&limits);
    if (segloss_ctx_new(&ctx, 2, SEGLOSS_KERNEL_AUTO) != 0)
        return 1;
    RUN(test_json_flat);
    RUN(test_json_nested);
    RUN(test_outputs_list);
    RUN(test_binary_in_place);
    RUN(test_binary_misaligned_is_copied);
    RUN(test_every_datatype);
    RUN(test_malformed_json);
    RUN(test_malformed_binary);
    RUN(test_answers);
    RUN(test_check_classes);
    RUN(test_metadata);
    segloss_ctx_free(ctx);
    return TESTS_DONE();
}
