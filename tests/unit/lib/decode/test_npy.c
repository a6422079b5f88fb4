/*
 * test_npy.c - the .npy decoder (lib/decode/npy.c) and the format dispatch in lib/decode/format.c.
 *
 * Fixtures are built byte by byte here, exactly as numpy.save lays them out (magic, version,
 * header length, dict literal padded to 64 bytes with spaces and a newline, data), so every
 * variant - versions, key orders, dtypes, lying headers - is one line of a test.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segloss/decode.h"
#include "segloss/errors.h"
#include "testing.h"

/* A .npy file in a buffer; `shift` bytes of slack in front let tests misalign the data. */
typedef struct npy_file {
    uint8_t *mem;
    uint8_t *bytes;
    size_t len;
} npy_file;

/*
 * Builds a .npy of the given version around dict (padded like numpy unless raw_len is set, in
 * which case the header length field says raw_len instead of the real length) and data.
 */
static npy_file make_npy_ex(int major, const char *dict, const void *data, size_t data_len,
                            size_t shift, int pad)
{
    npy_file f;
    size_t prefix = major == 1 ? 10 : 12;
    size_t dict_len = strlen(dict);
    size_t header = dict_len + 1;
    if (pad)
        header += (64 - (prefix + header) % 64) % 64;
    f.len = prefix + header + data_len;
    f.mem = calloc(1, f.len + shift + 64);
    /* malloc returns 16-aligned memory; shift moves the whole file off that alignment. */
    f.bytes = f.mem + shift;
    memcpy(f.bytes, "\x93NUMPY", 6);
    f.bytes[6] = (uint8_t)major;
    f.bytes[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++)
        f.bytes[8 + i] = (uint8_t)(header >> (8 * i));
    memcpy(f.bytes + prefix, dict, dict_len);
    memset(f.bytes + prefix + dict_len, ' ', header - dict_len - 1);
    f.bytes[prefix + header - 1] = '\n';
    if (data_len)
        memcpy(f.bytes + prefix + header, data, data_len);
    return f;
}

static npy_file make_npy(int major, const char *dict, const void *data, size_t data_len)
{
    return make_npy_ex(major, dict, data, data_len, 0, 1);
}

static char detail[256];
static segloss_limits limits;

static int decode(const npy_file *f, segloss_tensor_role role, segloss_tensor *t, void **owned)
{
    detail[0] = '\0';
    return segloss_npy_decode(f->bytes, f->len, role, &limits, t, owned, detail, sizeof detail);
}

/* Decodes and expects a failure with `code` whose detail contains `needle`. */
static void expect_fail(const char *dict, const void *data, size_t data_len,
                        segloss_tensor_role role, int code, const char *needle)
{
    npy_file f = make_npy(1, dict, data, data_len);
    segloss_tensor t;
    void *owned = (void *)&t;
    int rc = decode(&f, role, &t, &owned);
    CHECK_MSG(rc == code, "%s: got %d (%s), want %d", dict, rc, detail, code);
    CHECK(owned == NULL);
    CHECK(t.rank == 0);
    CHECK_MSG(strstr(detail, needle) != NULL, "detail '%s' lacks '%s'", detail, needle);
    free(f.mem);
}

static float floats[2 * 3 * 4 * 5];

static void fill_floats(void)
{
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        floats[i] = (float)i * 0.5f - 3.0f;
}

static void test_v1_logits_f32_no_copy(void)
{
    npy_file f = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4, 5), }",
                          floats, sizeof floats);
    segloss_tensor t;
    void *owned = (void *)&t;
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), 0);
    CHECK(owned == NULL);
    CHECK_EQ_INT(t.dtype, SEGLOSS_F32);
    CHECK_EQ_INT(t.rank, 4);
    CHECK(t.shape[0] == 2 && t.shape[1] == 3 && t.shape[2] == 4 && t.shape[3] == 5);
    CHECK(t.data == f.bytes + 128); /* 10 + 70-byte dict padded to 128 */
    CHECK(memcmp(t.data, floats, sizeof floats) == 0);
    free(f.mem);
}

static void test_v2_v3_headers(void)
{
    for (int major = 2; major <= 3; major++) {
        npy_file f = make_npy(major,
                              "{'descr': '<f4', 'fortran_order': False, "
                              "'shape': (3, 4, 10), }",
                              floats, 3 * 4 * 10 * 4);
        segloss_tensor t;
        void *owned;
        CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), 0);
        CHECK_EQ_INT(t.rank, 3);
        CHECK(t.shape[0] == 3 && t.shape[1] == 4 && t.shape[2] == 10);
        CHECK(memcmp(t.data, floats, 480) == 0);
        free(owned);
        free(f.mem);
    }
    /* A 10,000-byte header (the most accepted) only fits a v2 file. */
    char *dict = malloc(10000);
    strcpy(dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2)}");
    memset(dict + strlen(dict), ' ', 9999 - strlen(dict) - 1);
    dict[9998] = '\0';
    uint8_t px[4] = {1, 2, 3, 4};
    npy_file f = make_npy_ex(2, dict, px, 4, 0, 0);
    segloss_tensor t;
    void *owned;
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LABELS, &t, &owned), 0);
    free(f.mem);
    free(dict);
}

static void test_unknown_version(void)
{
    npy_file f =
        make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), }", floats, 4);
    f.bytes[6] = 4;
    segloss_tensor t;
    void *owned;
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), SEGLOSS_EUNSUPPORTED);
    CHECK(strstr(detail, "version 4.0") != NULL);
    f.bytes[6] = 1;
    f.bytes[7] = 1;
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), SEGLOSS_EUNSUPPORTED);
    free(f.mem);
}

static void test_keys_any_order_and_spelling(void)
{
    static const char *const dicts[] = {
        "{'shape': (2, 2, 3), 'fortran_order': False, 'descr': '<f4'}",
        "{'fortran_order': False, 'shape': (2, 2, 3), 'descr': '<f4', }",
        "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 2, 3)}",
        "{'descr':'<f4','fortran_order':False,'shape':(2,2,3,)}",
        "{ 'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 2 , 2 , 3 ) , }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 2L, 3L), }",
    };
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
        npy_file f = make_npy(1, dicts[i], floats, 12 * 4);
        segloss_tensor t;
        void *owned;
        int rc = decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned);
        CHECK_MSG(rc == 0, "%s: %s", dicts[i], detail);
        CHECK(t.rank == 3 && t.shape[0] == 2 && t.shape[1] == 2 && t.shape[2] == 3);
        free(owned);
        free(f.mem);
    }
}

static void test_every_dtype(void)
{
    static const struct {
        const char *descr;
        segloss_dtype dtype;
        segloss_tensor_role role;
    } cases[] = {
        {"<f4", SEGLOSS_F32, SEGLOSS_ROLE_LOGITS}, {"<f2", SEGLOSS_F16, SEGLOSS_ROLE_LOGITS},
        {"<f8", SEGLOSS_F64, SEGLOSS_ROLE_LOGITS}, {"|u1", SEGLOSS_U8, SEGLOSS_ROLE_LABELS},
        {"|i1", SEGLOSS_I8, SEGLOSS_ROLE_LABELS},  {"<u2", SEGLOSS_U16, SEGLOSS_ROLE_LABELS},
        {"<i4", SEGLOSS_I32, SEGLOSS_ROLE_LABELS}, {"<i8", SEGLOSS_I64, SEGLOSS_ROLE_LABELS},
    };
    static uint8_t data[8 * 24];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dict[128];
        const char *shape = cases[i].role == SEGLOSS_ROLE_LOGITS ? "(2, 3, 4)" : "(6, 4)";
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                 cases[i].descr, shape);
        size_t n = 24 * segloss_dtype_size(cases[i].dtype);
        npy_file f = make_npy(1, dict, data, n);
        segloss_tensor t;
        void *owned;
        int rc = decode(&f, cases[i].role, &t, &owned);
        CHECK_MSG(rc == 0, "%s: %s", cases[i].descr, detail);
        CHECK_EQ_INT(t.dtype, cases[i].dtype);
        CHECK(t.data && memcmp(t.data, data, n) == 0);
        CHECK((uintptr_t)t.data % segloss_dtype_size(cases[i].dtype) == 0);
        free(owned);
        /* The other role refuses it, naming what it accepts. */
        segloss_tensor_role other =
            cases[i].role == SEGLOSS_ROLE_LOGITS ? SEGLOSS_ROLE_LABELS : SEGLOSS_ROLE_LOGITS;
        rc = decode(&f, other, &t, &owned);
        CHECK_EQ_INT(rc, SEGLOSS_EUNSUPPORTED);
        CHECK(strstr(detail, other == SEGLOSS_ROLE_LOGITS ? "logits must be float32"
                                                          : "masks must be integer") != NULL);
        free(f.mem);
    }
}

static void test_unsupported_dtypes(void)
{
    static const char *const refused[] = {"<u4", "<i2",  "|b1", "<c8", "<U8",
                                          "|O",  "<f4 ", "=f4", "<u1"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (4, 4)}",
                 refused[i]);
        expect_fail(dict, floats, 64, SEGLOSS_ROLE_LABELS, SEGLOSS_EUNSUPPORTED,
                    "is not supported");
    }
    expect_fail("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1, 1, 1)}", floats, 4,
                SEGLOSS_ROLE_LOGITS, SEGLOSS_EUNSUPPORTED, "structured");
}

static void test_shapes_per_role(void)
{
    uint8_t data[64] = {0};
    segloss_tensor t;
    void *owned;
    /* labels: (H, W) and (N, H, W) */
    npy_file f =
        make_npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (8, 8), }", data, 64);
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LABELS, &t, &owned), 0);
    CHECK(t.rank == 2 && t.shape[0] == 8 && t.shape[1] == 8);
    free(f.mem);
    f = make_npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 4, 4), }", data, 64);
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LABELS, &t, &owned), 0);
    CHECK_EQ_INT(t.rank, 3);
    free(f.mem);

    expect_fail("{'descr': '|u1', 'fortran_order': False, 'shape': (64,), }", data, 64,
                SEGLOSS_ROLE_LABELS, SEGLOSS_ESHAPE, "has shape (64,); masks must be");
    expect_fail("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 4, 4, 4), }", data, 64,
                SEGLOSS_ROLE_LABELS, SEGLOSS_ESHAPE, "(N, H, W) or (H, W)");
    expect_fail("{'descr': '|u1', 'fortran_order': False, 'shape': (), }", data, 1,
                SEGLOSS_ROLE_LABELS, SEGLOSS_ESHAPE, "has shape ()");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", floats, 64,
                SEGLOSS_ROLE_LOGITS, SEGLOSS_ESHAPE, "(N, C, H, W) or (C, H, W)");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 4, 4), }", floats, 64,
                SEGLOSS_ROLE_LOGITS, SEGLOSS_ESHAPE, "more than 4 dimensions");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3, 4, 4), }", floats, 0,
                SEGLOSS_ROLE_LOGITS, SEGLOSS_ESHAPE, "at least 1");
}

static void test_exact_data_length(void)
{
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3, 4), }", floats, 92,
                SEGLOSS_ROLE_LOGITS, SEGLOSS_EFORMAT,
                ".npy data is 92 bytes; shape (1, 2, 3, 4) of float32 needs 96");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3, 4), }", floats, 100,
                SEGLOSS_ROLE_LOGITS, SEGLOSS_EFORMAT,
                ".npy data is 100 bytes; shape (1, 2, 3, 4) of float32 needs 96");
    expect_fail("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", floats, 0,
                SEGLOSS_ROLE_LABELS, SEGLOSS_EFORMAT, "needs 48 (truncated upload?)");
}

static void test_misaligned_data_is_copied(void)
{
    for (size_t shift = 1; shift < 8; shift++) {
        npy_file f = make_npy_ex(1,
                                 "{'descr': '<f8', 'fortran_order': False, "
                                 "'shape': (1, 2, 3, 5), }",
                                 floats, 240, shift, 1);
        segloss_tensor t;
        void *owned = NULL;
        CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), 0);
        CHECK(owned != NULL);
        CHECK(t.data == owned);
        CHECK((uintptr_t)t.data % 64 == 0);
        CHECK(memcmp(t.data, floats, 240) == 0);
        free(owned);
        free(f.mem);
    }
    /* Single bytes are never misaligned: no copy for a shifted uint8 mask. */
    npy_file f = make_npy_ex(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 4), }",
                             floats, 16, 3, 1);
    segloss_tensor t;
    void *owned = (void *)&t;
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LABELS, &t, &owned), 0);
    CHECK(owned == NULL);
    free(f.mem);
    /* An unpadded header puts float data at an odd offset even in aligned memory. */
    f = make_npy_ex(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 3), }", floats, 12,
                    0, 0);
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), 0);
    CHECK(owned != NULL && memcmp(t.data, floats, 12) == 0);
    free(owned);
    free(f.mem);
}

/* Big-endian data is byte-swapped and Fortran-ordered data reordered, in one owned copy. */
static void test_big_endian_and_fortran_converted(void)
{
    /* (1, 2, 3, 4) float32, big-endian: the bytes of floats[] reversed per element */
    uint8_t be[96];
    for (size_t i = 0; i < 24; i++)
        for (size_t k = 0; k < 4; k++)
            be[4 * i + k] = ((const uint8_t *)&floats[i])[3 - k];
    npy_file f = make_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2, 3, 4), }",
                          be, sizeof be);
    segloss_tensor t;
    void *owned = NULL;
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), 0);
    CHECK(owned != NULL && t.data == owned && t.dtype == SEGLOSS_F32);
    CHECK(owned && memcmp(t.data, floats, 96) == 0);
    free(owned);
    free(f.mem);

    /* int64 labels, big-endian */
    int64_t want[6] = {0, 1, 2, 255, -1, 70000};
    uint8_t be8[48];
    for (size_t i = 0; i < 6; i++)
        for (size_t k = 0; k < 8; k++)
            be8[8 * i + k] = (uint8_t)((uint64_t)want[i] >> (8 * (7 - k)));
    f = make_npy(1, "{'descr': '>i8', 'fortran_order': False, 'shape': (2, 3), }", be8, 48);
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LABELS, &t, &owned), 0);
    CHECK(owned && memcmp(t.data, want, 48) == 0);
    free(owned);
    free(f.mem);

    /* Fortran order: element (i0, i1, i2, i3) of shape (1, 2, 3, 4) is stored at
     * i0 + 1 * (i1 + 2 * (i2 + 3 * i3)) */
    float fortran[24], c_order[24];
    for (size_t i1 = 0; i1 < 2; i1++)
        for (size_t i2 = 0; i2 < 3; i2++)
            for (size_t i3 = 0; i3 < 4; i3++) {
                float v = (float)(100 * i1 + 10 * i2 + i3);
                c_order[(i1 * 3 + i2) * 4 + i3] = v;
                fortran[i1 + 2 * (i2 + 3 * i3)] = v;
            }
    f = make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2, 3, 4), }", fortran,
                 sizeof fortran);
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), 0);
    CHECK(owned && memcmp(t.data, c_order, sizeof c_order) == 0);
    CHECK(t.rank == 4 && t.shape[1] == 2 && t.shape[2] == 3 && t.shape[3] == 4);
    free(owned);
    free(f.mem);
}

static void test_header_limits(void)
{
    /* header_len field 10001 in a v2 file: refused before it is read. */
    npy_file f =
        make_npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), }", floats, 4);
    f.bytes[8] = 0x11;
    f.bytes[9] = 0x27;
    f.bytes[10] = 0;
    f.bytes[11] = 0;
    segloss_tensor t;
    void *owned;
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), SEGLOSS_EFORMAT);
    CHECK(strstr(detail, "10001 bytes; at most 10000") != NULL);
    /* header_len beyond the end of the file */
    f.bytes[8] = 0x00;
    f.bytes[9] = 0x01;
    CHECK_EQ_INT(decode(&f, SEGLOSS_ROLE_LOGITS, &t, &owned), SEGLOSS_EFORMAT);
    CHECK(strstr(detail, "truncated") != NULL);
    free(f.mem);
    /* too short for the header length at all */
    uint8_t tiny[9] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 5};
    CHECK_EQ_INT(segloss_npy_decode(tiny, sizeof tiny, SEGLOSS_ROLE_LOGITS, &limits, &t, &owned,
                                    detail, sizeof detail),
                 SEGLOSS_EFORMAT);
    CHECK_EQ_INT(segloss_npy_decode("\x93NUMPZ\x01\x00\x00\x00", 10, SEGLOSS_ROLE_LOGITS, &limits,
                                    &t, &owned, detail, sizeof detail),
                 SEGLOSS_EFORMAT);
    CHECK_EQ_INT(segloss_npy_decode(NULL, 0, SEGLOSS_ROLE_LOGITS, &limits, &t, &owned, detail,
                                    sizeof detail),
                 SEGLOSS_EFORMAT);
}

static void test_lying_headers(void)
{
    static const struct {
        const char *dict;
        int code;
        const char *needle;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), 'descr': '<f4'}",
         SEGLOSS_EFORMAT, "twice"},
        {"{'descr': '<f4', 'fortran_order': False}", SEGLOSS_EFORMAT, "lacks 'shape'"},
        {"{'descr': '<f4', 'shape': (1, 1, 1)}", SEGLOSS_EFORMAT, "lacks 'fortran_order'"},
        {"{'fortran_order': False, 'shape': (1, 1, 1)}", SEGLOSS_EFORMAT, "lacks 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), 'x': 1}", SEGLOSS_EFORMAT,
         "unexpected key 'x'"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1, 1, 1)}", SEGLOSS_EFORMAT,
         "neither True nor False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [1, 1, 1]}", SEGLOSS_EFORMAT,
         "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, -1, 1)}", SEGLOSS_EFORMAT,
         "non-negative integers"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1.5, 1)}", SEGLOSS_EFORMAT,
         "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1)", SEGLOSS_EFORMAT,
         "expected ','"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1)} junk", SEGLOSS_EFORMAT,
         "after the dict"},
        {"['descr', '<f4']", SEGLOSS_EFORMAT, "not a Python dict"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1, 1, 1)}", SEGLOSS_EUNSUPPORTED,
         "simple dtype string"},
        {"{'descr': '<f4', 'fortran_order': False, "
         "'shape': (99999999999999999999999, 1, 1)}",
         SEGLOSS_EFORMAT, "non-negative integers"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536, 65536, 65536)}",
         SEGLOSS_ELIMIT, "limited to"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 4, 4)}", SEGLOSS_EFORMAT,
         "needs 192"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 20000, 4)}", SEGLOSS_ELIMIT,
         "limited to 16384"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2000, 4, 4)}", SEGLOSS_ELIMIT,
         "1024 classes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5000, 2, 4, 4)}", SEGLOSS_ELIMIT,
         "4096 images"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_fail(cases[i].dict, floats, 16, SEGLOSS_ROLE_LOGITS, cases[i].code, cases[i].needle);
    /* The pixel limit from the caller's limits, not only the default. */
    segloss_limits saved = limits;
    limits.max_pixels = 15;
    expect_fail("{'descr': '|u1', 'fortran_order': False, 'shape': (4, 4)}", floats, 16,
                SEGLOSS_ROLE_LABELS, SEGLOSS_ELIMIT, "limited to 15 pixels");
    limits = saved;
    limits.max_elements = 15;
    expect_fail("{'descr': '|u1', 'fortran_order': False, 'shape': (4, 4)}", floats, 16,
                SEGLOSS_ROLE_LABELS, SEGLOSS_ELIMIT, "limited to 15 elements");
    limits = saved;
}

static void test_detect_format(void)
{
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0};
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0};
    static const uint8_t st[] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK_EQ_INT(segloss_detect_format("\x93NUMPY\x01\x00", 8), SEGLOSS_FORMAT_NPY);
    CHECK_EQ_INT(segloss_detect_format(png, sizeof png), SEGLOSS_FORMAT_PNG);
    CHECK_EQ_INT(segloss_detect_format(jpeg, sizeof jpeg), SEGLOSS_FORMAT_JPEG);
    CHECK_EQ_INT(segloss_detect_format(st, sizeof st), SEGLOSS_FORMAT_SAFETENSORS);
    CHECK_EQ_INT(segloss_detect_format(st, 8), SEGLOSS_FORMAT_UNKNOWN);
    CHECK_EQ_INT(segloss_detect_format("hello world", 11), SEGLOSS_FORMAT_UNKNOWN);
    CHECK_EQ_INT(segloss_detect_format(NULL, 0), SEGLOSS_FORMAT_UNKNOWN);
    CHECK(strcmp(segloss_format_name(SEGLOSS_FORMAT_NPY), "npy") == 0);
    CHECK(strcmp(segloss_format_name(SEGLOSS_FORMAT_SAFETENSORS), "safetensors") == 0);
    CHECK(strcmp(segloss_format_name(SEGLOSS_FORMAT_PNG), "png") == 0);
    CHECK(strcmp(segloss_format_name(SEGLOSS_FORMAT_JPEG), "jpeg") == 0);
    CHECK(strcmp(segloss_format_name(SEGLOSS_FORMAT_UNKNOWN), "unknown") == 0);
}

static void test_logits_decode_dispatch(void)
{
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0};
    npy_file f =
        make_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2, 2)}", floats, 16);
    segloss_tensor t;
    void *owned;
    CHECK_EQ_INT(segloss_logits_decode(f.bytes, f.len, &limits, &t, &owned, detail, sizeof detail),
                 0);
    CHECK_EQ_INT(t.dtype, SEGLOSS_F16);
    free(owned);
    free(f.mem);
    CHECK_EQ_INT(segloss_logits_decode(png, sizeof png, &limits, &t, &owned, detail, sizeof detail),
                 SEGLOSS_EUNSUPPORTED);
    CHECK(strstr(detail, "PNG image") != NULL);
    CHECK_EQ_INT(segloss_logits_decode("garbage!!", 9, &limits, &t, &owned, detail, sizeof detail),
                 SEGLOSS_EUNSUPPORTED);
    CHECK(owned == NULL && t.rank == 0);
}

int main(void)
{
    segloss_limits_default(&limits);
    fill_floats();
    RUN(test_v1_logits_f32_no_copy);
    RUN(test_v2_v3_headers);
    RUN(test_unknown_version);
    RUN(test_keys_any_order_and_spelling);
    RUN(test_every_dtype);
    RUN(test_unsupported_dtypes);
    RUN(test_shapes_per_role);
    RUN(test_exact_data_length);
    RUN(test_misaligned_data_is_copied);
    RUN(test_big_endian_and_fortran_converted);
    RUN(test_header_limits);
    RUN(test_lying_headers);
    RUN(test_detect_format);
    RUN(test_logits_decode_dispatch);
    return TESTS_DONE();
}
