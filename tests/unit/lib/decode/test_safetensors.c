/*
 * test_safetensors.c - the safetensors decoder (lib/decode/safetensors.c).
 *
 * Fixtures are built here: an 8-byte little-endian length, the JSON header padded with spaces
 * to a multiple of 8 (as the reference writer does), then the data section.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segloss/decode.h"
#include "segloss/errors.h"
#include "testing.h"

typedef struct st_file {
    uint8_t *mem;
    uint8_t *bytes;
    size_t len;
} st_file;

/* header JSON + data; pad rounds the header to 8 bytes; shift misaligns the whole file. */
static st_file make_st_ex(const char *json, const void *data, size_t data_len, int pad,
                          size_t shift)
{
    st_file f;
    size_t n = strlen(json);
    size_t header = pad ? (n + 7) / 8 * 8 : n;
    f.len = 8 + header + data_len;
    f.mem = calloc(1, f.len + shift + 1);
    f.bytes = f.mem + shift;
    for (int i = 0; i < 8; i++)
        f.bytes[i] = (uint8_t)((uint64_t)header >> (8 * i));
    memcpy(f.bytes + 8, json, n);
    memset(f.bytes + 8 + n, ' ', header - n);
    if (data_len)
        memcpy(f.bytes + 8 + header, data, data_len);
    return f;
}

static st_file make_st(const char *json, const void *data, size_t data_len)
{
    return make_st_ex(json, data, data_len, 1, 0);
}

static char detail[256];
static segloss_limits limits;
static uint8_t payload[4096];

static int decode(const st_file *f, segloss_tensor *lg, void **olg, segloss_tensor *lb, void **olb)
{
    detail[0] = '\0';
    return segloss_safetensors_decode(f->bytes, f->len, &limits, lg, olg, lb, olb, detail,
                                      sizeof detail);
}

static void expect_fail(const char *json, size_t data_len, int code, const char *needle)
{
    st_file f = make_st(json, payload, data_len);
    segloss_tensor lg, lb;
    void *olg = &lg, *olb = &lb;
    int rc = decode(&f, &lg, &olg, &lb, &olb);
    CHECK_MSG(rc == code, "%s: got %d (%s), want %d", json, rc, detail, code);
    CHECK(olg == NULL && olb == NULL && lg.rank == 0 && lb.rank == 0);
    CHECK_MSG(strstr(detail, needle) != NULL, "detail '%s' lacks '%s'", detail, needle);
    free(f.mem);
}

static void test_logits_every_dtype(void)
{
    static const struct {
        const char *name;
        segloss_dtype dtype;
    } cases[] = {
        {"F32", SEGLOSS_F32}, {"F16", SEGLOSS_F16}, {"BF16", SEGLOSS_BF16}, {"F64", SEGLOSS_F64}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];
        size_t n = 2 * 3 * 4 * segloss_dtype_size(cases[i].dtype);
        snprintf(json, sizeof json,
                 "{\"logits\":{\"dtype\":\"%s\",\"shape\":[2,3,4],\"data_offsets\":[0,%zu]}}",
                 cases[i].name, n);
        st_file f = make_st(json, payload, n);
        segloss_tensor lg;
        void *olg = &lg;
        int rc = decode(&f, &lg, &olg, NULL, NULL);
        CHECK_MSG(rc == 0, "%s: %s", cases[i].name, detail);
        CHECK(olg == NULL);
        CHECK_EQ_INT(lg.dtype, cases[i].dtype);
        CHECK(lg.rank == 3 && lg.shape[0] == 2 && lg.shape[1] == 3 && lg.shape[2] == 4);
        CHECK(lg.data != NULL && memcmp(lg.data, payload, n) == 0);
        free(f.mem);
    }
}

static void test_labels_every_dtype(void)
{
    static const struct {
        const char *name;
        segloss_dtype dtype;
    } cases[] = {{"U8", SEGLOSS_U8},
                 {"I8", SEGLOSS_I8},
                 {"U16", SEGLOSS_U16},
                 {"I32", SEGLOSS_I32},
                 {"I64", SEGLOSS_I64}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int use_labels = 0; use_labels < 2; use_labels++) {
            char json[512];
            size_t n = 2 * 4 * 4 * segloss_dtype_size(cases[i].dtype);
            /* Labels first, logits after them: order in the file is free. */
            snprintf(json, sizeof json,
                     "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"%s\":{\"dtype\":\"%s\",\"shape\":[2,4,4],\"data_offsets\":[0,%zu]},"
                     "\"logits\":{\"dtype\":\"F32\",\"shape\":[2,3,4,4],"
                     "\"data_offsets\":[%zu,%zu]}}",
                     use_labels ? "labels" : "mask", cases[i].name, n, n, n + 384);
            st_file f = make_st(json, payload, n + 384);
            segloss_tensor lg, lb;
            void *olg, *olb;
            int rc = decode(&f, &lg, &olg, &lb, &olb);
            CHECK_MSG(rc == 0, "%s: %s", cases[i].name, detail);
            CHECK_EQ_INT(lb.dtype, cases[i].dtype);
            CHECK(lb.rank == 3 && lb.shape[0] == 2 && lb.shape[2] == 4);
            CHECK(lg.rank == 4 && lg.shape[1] == 3);
            CHECK(memcmp(lb.data, payload, n) == 0);
            CHECK(memcmp(lg.data, payload + n, 384) == 0);
            free(olg);
            free(olb);
            /* Without a labels pointer the mask is ignored. */
            CHECK_EQ_INT(decode(&f, &lg, &olg, NULL, NULL), 0);
            free(olg);
            free(f.mem);
        }
    }
}

static void test_labels_absent_gives_rank_zero(void)
{
    st_file f = make_st("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,4,4],"
                        "\"data_offsets\":[0,64]}}",
                        payload, 64);
    segloss_tensor lg, lb;
    void *olg, *olb;
    CHECK_EQ_INT(decode(&f, &lg, &olg, &lb, &olb), 0);
    CHECK_EQ_INT(lb.rank, 0);
    CHECK(olb == NULL);
    free(f.mem);
}

static void test_wrong_dtype_for_role(void)
{
    expect_fail("{\"logits\":{\"dtype\":\"I32\",\"shape\":[1,4,4],\"data_offsets\":[0,64]}}", 64,
                SEGLOSS_EUNSUPPORTED, "logits must be F32, F16, BF16 or F64");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]},"
                "\"mask\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]}}",
                32, SEGLOSS_EUNSUPPORTED, "masks must be U8");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]},"
                "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[2,2],\"data_offsets\":[16,20]}}",
                20, SEGLOSS_EUNSUPPORTED, "masks must be U8");
    expect_fail("{\"logits\":{\"dtype\":\"Q4\",\"shape\":[1,4,4],\"data_offsets\":[0,64]}}", 64,
                SEGLOSS_EUNSUPPORTED, "unknown dtype 'Q4'");
}

static void test_other_tensors_validated_too(void)
{
    /* An unused I16 tensor between the two is checked and skipped. */
    st_file f = make_st("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],"
                        "\"data_offsets\":[0,16]},"
                        "\"extra\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                        "\"mask\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[22,26]}}",
                        payload, 26);
    segloss_tensor lg, lb;
    void *olg, *olb;
    CHECK_EQ_INT(decode(&f, &lg, &olg, &lb, &olb), 0);
    CHECK(lb.data == f.bytes + f.len - 4 && memcmp(lb.data, payload + 22, 4) == 0);
    free(olg);
    free(olb);
    free(f.mem);
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]},"
                "\"extra\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[16,24]}}",
                24, SEGLOSS_EFORMAT, "'extra' has 8 bytes of data");
}

static void test_offsets_checked(void)
{
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]}}", 12,
                SEGLOSS_EFORMAT, "ends at byte 16 of a 12-byte data section");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]}}", 20,
                SEGLOSS_EFORMAT, "data section is 20 bytes but its tensors cover 16");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[4,20]}}", 20,
                SEGLOSS_EFORMAT, "starts at byte 4, expected 0 (tensors leave a hole)");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]},"
                "\"mask\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[12,16]}}",
                16, SEGLOSS_EFORMAT, "overlap");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,12]}}", 12,
                SEGLOSS_EFORMAT, "has 12 bytes of data; its shape of F32 needs 4 x 4");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[16,0]}}", 16,
                SEGLOSS_EFORMAT, "0 <= begin <= end");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0]}}", 16,
                SEGLOSS_EFORMAT, "data_offsets must be");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16.5]}}", 16,
                SEGLOSS_EFORMAT, "data_offsets must be");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],"
                "\"data_offsets\":[0,1e300]}}",
                16, SEGLOSS_EFORMAT, "data_offsets must be");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,-2,2],\"data_offsets\":[0,16]}}", 16,
                SEGLOSS_EFORMAT, "non-negative integers");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,\"2\",2],\"data_offsets\":[0,16]}}",
                16, SEGLOSS_EFORMAT, "non-negative integers");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                "\"data_offsets\":[0,16]}}",
                16, SEGLOSS_EFORMAT, "shape overflows");
}

static void test_shapes_and_limits(void)
{
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
                SEGLOSS_ESHAPE, "logits must be (N, C, H, W) or (C, H, W)");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,1,1,2,2],\"data_offsets\":[0,16]}}",
                16, SEGLOSS_ESHAPE, "has 5 dimensions");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]},"
                "\"labels\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[16,20]}}",
                20, SEGLOSS_ESHAPE, "masks must be (N, H, W) or (H, W)");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[0,2,2],\"data_offsets\":[0,0]}}", 0,
                SEGLOSS_ESHAPE, "at least 1");
    segloss_limits saved = limits;
    limits.max_side = 3;
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,1,4],\"data_offsets\":[0,16]}}", 16,
                SEGLOSS_ELIMIT, "height and width are limited to 3");
    limits = saved;
    limits.max_classes = 2;
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[3,1,1],\"data_offsets\":[0,12]}}", 12,
                SEGLOSS_ELIMIT, "at most 2 classes");
    limits = saved;
}

static void test_header_checks(void)
{
    /* header length over the cap, and beyond the file */
    st_file f = make_st("{}", NULL, 0);
    segloss_tensor lg, lb;
    void *olg, *olb;
    f.bytes[2] = 0x20; /* 2 MiB */
    CHECK_EQ_INT(decode(&f, &lg, &olg, &lb, &olb), SEGLOSS_EFORMAT);
    CHECK(strstr(detail, "at most 1048576") != NULL);
    f.bytes[2] = 0;
    f.bytes[0] = 100;
    CHECK_EQ_INT(decode(&f, &lg, &olg, &lb, &olb), SEGLOSS_EFORMAT);
    CHECK(strstr(detail, "says 100 bytes but only 8 follow") != NULL);
    f.bytes[7] = 0x80;
    CHECK_EQ_INT(decode(&f, &lg, &olg, &lb, &olb), SEGLOSS_EFORMAT);
    free(f.mem);
    CHECK_EQ_INT(segloss_safetensors_decode("\x01\x00", 2, &limits, &lg, &olg, NULL, NULL, detail,
                                            sizeof detail),
                 SEGLOSS_EFORMAT);

    expect_fail("{}", 0, SEGLOSS_EFORMAT, "no tensor named 'logits' (0 other tensors)");
    expect_fail("{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                SEGLOSS_EFORMAT, "(1 other tensor)");
    expect_fail("[1,2]", 0, SEGLOSS_EFORMAT, "not a JSON object");
    expect_fail("{\"logits\":", 0, SEGLOSS_EFORMAT, "not a JSON object");
    expect_fail("{} x", 0, SEGLOSS_EFORMAT, "bytes after its JSON object");
    expect_fail("{\"logits\":5}", 0, SEGLOSS_EFORMAT, "lacks a string 'dtype'");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]},"
                "\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[16,32]}}",
                32, SEGLOSS_EFORMAT, "names 'logits' more than once");
    expect_fail("{\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]},"
                "\"mask\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[16,20]},"
                "\"labels\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[20,24]}}",
                24, SEGLOSS_EFORMAT, "more than once");
    /* __metadata__ of any shape is ignored. */
    f = make_st("{\"__metadata__\":{\"a\":\"b\",\"n\":[1,2]},"
                "\"logits\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[0,16]}}",
                payload, 16);
    CHECK_EQ_INT(decode(&f, &lg, &olg, &lb, &olb), 0);
    free(f.mem);
    /* An unpadded header is accepted. */
    f = make_st_ex("{\"logits\":{\"dtype\":\"U8\",\"shape\":[1,2,2],\"data_offsets\":[0,4]}}",
                   payload, 4, 0, 0);
    CHECK_EQ_INT(decode(&f, &lg, &olg, &lb, &olb), SEGLOSS_EUNSUPPORTED);
    free(f.mem);
}

static void test_misaligned_copy(void)
{
    float values[12];
    for (int i = 0; i < 12; i++)
        values[i] = (float)i - 5.5f;
    for (size_t shift = 1; shift < 4; shift++) {
        st_file f = make_st_ex("{\"logits\":{\"dtype\":\"F32\",\"shape\":[3,2,2],"
                               "\"data_offsets\":[0,48]}}",
                               values, 48, 1, shift);
        segloss_tensor lg;
        void *olg = NULL;
        CHECK_EQ_INT(decode(&f, &lg, &olg, NULL, NULL), 0);
        CHECK(olg != NULL && lg.data == olg && (uintptr_t)olg % 64 == 0);
        CHECK(memcmp(lg.data, values, 48) == 0);
        free(olg);
        free(f.mem);
    }
}

int main(void)
{
    segloss_limits_default(&limits);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 13 + 5);
    RUN(test_logits_every_dtype);
    RUN(test_labels_every_dtype);
    RUN(test_labels_absent_gives_rank_zero);
    RUN(test_wrong_dtype_for_role);
    RUN(test_other_tensors_validated_too);
    RUN(test_offsets_checked);
    RUN(test_shapes_and_limits);
    RUN(test_header_checks);
    RUN(test_misaligned_copy);
    return TESTS_DONE();
}
