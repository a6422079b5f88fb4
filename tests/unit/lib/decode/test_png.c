/*
 * test_png.c - PNG masks (lib/decode/png_mask.c): probe and decode.
 *
 * Fixtures are written with libpng (png_fixture.h) in every layout a mask may come in (grey and
 * palette at each bit depth, 16-bit, interlaced) and the ones it may not (RGB, RGBA, grey+alpha),
 * then damaged byte by byte for the CRC, truncation and size-limit cases.
 */
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "png_fixture.h"
#include "segloss/decode.h"
#include "segloss/errors.h"
#include "testing.h"

static unsigned pattern8(uint32_t x, uint32_t y, int c)
{
    return (x * 7 + y * 3 + (unsigned)c) % 256;
}

static unsigned pattern16(uint32_t x, uint32_t y, int c)
{
    (void)c;
    return (x * 977 + y * 4099) % 65536;
}

static int sample_depth;
static unsigned pattern_low(uint32_t x, uint32_t y, int c)
{
    (void)c;
    return (x + 2 * y) % (1u << sample_depth);
}

static char detail[256];
static segloss_limits limits;

static int decode_u8(const membuf *m, uint8_t *out, size_t n)
{
    detail[0] = '\0';
    return segloss_png_mask_decode(m->data, m->len, &limits, SEGLOSS_U8, out, n, detail,
                                   sizeof detail);
}

static int decode_u16(const membuf *m, uint16_t *out, size_t n)
{
    detail[0] = '\0';
    return segloss_png_mask_decode(m->data, m->len, &limits, SEGLOSS_U16, out, n * 2, detail,
                                   sizeof detail);
}

/* Decodes m as uint8 and uint16 and compares every pixel with want(x, y). */
static void check_mask(const membuf *m, uint32_t w, uint32_t h,
                       unsigned (*want)(uint32_t, uint32_t, int), const char *what)
{
    size_t n = (size_t)w * h;
    uint8_t *u8 = malloc(n);
    uint16_t *u16 = malloc(n * 2);
    segloss_png_info info;
    CHECK_EQ_INT(segloss_png_mask_probe(m->data, m->len, &limits, &info, detail, sizeof detail), 0);
    CHECK(info.width == w && info.height == h);
    int rc = decode_u16(m, u16, n);
    CHECK_MSG(rc == 0, "%s: %s", what, detail);
    size_t bad = 0;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            bad += u16[(size_t)y * w + x] != want(x, y, 0);
    CHECK_MSG(bad == 0, "%s: %zu uint16 pixels differ", what, bad);
    if (info.bit_depth <= 8) {
        rc = decode_u8(m, u8, n);
        CHECK_MSG(rc == 0, "%s: %s", what, detail);
        bad = 0;
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                bad += u8[(size_t)y * w + x] != want(x, y, 0);
        CHECK_MSG(bad == 0, "%s: %zu uint8 pixels differ", what, bad);
    } else {
        CHECK_EQ_INT(decode_u8(m, u8, n), SEGLOSS_EINVAL);
        CHECK(strstr(detail, "uint16") != NULL);
    }
    free(u8);
    free(u16);
}

static void test_grey8(void)
{
    membuf m = write_png(37, 23, PNG_COLOR_TYPE_GRAY, 8, 0, pattern8, 0);
    segloss_png_info info;
    CHECK_EQ_INT(segloss_png_mask_probe(m.data, m.len, &limits, &info, detail, sizeof detail), 0);
    CHECK(info.bit_depth == 8 && info.color_type == 0 && info.interlaced == 0);
    check_mask(&m, 37, 23, pattern8, "grey8");
    free(m.data);
}

static void test_palette_indices_not_colors(void)
{
    /* Every palette entry is the same red: expanding would lose all information. */
    membuf m = write_png(64, 33, PNG_COLOR_TYPE_PALETTE, 8, 0, pattern8, 0);
    check_mask(&m, 64, 33, pattern8, "palette8");
    free(m.data);
}

static void test_grey16(void)
{
    membuf m = write_png(31, 17, PNG_COLOR_TYPE_GRAY, 16, 0, pattern16, 0);
    check_mask(&m, 31, 17, pattern16, "grey16");
    free(m.data);
}

static void test_low_bit_depths(void)
{
    for (sample_depth = 1; sample_depth <= 4; sample_depth *= 2) {
        char what[32];
        membuf m = write_png(29, 11, PNG_COLOR_TYPE_GRAY, sample_depth, 0, pattern_low, 0);
        snprintf(what, sizeof what, "grey%d", sample_depth);
        check_mask(&m, 29, 11, pattern_low, what);
        free(m.data);
        m = write_png(29, 11, PNG_COLOR_TYPE_PALETTE, sample_depth, 0, pattern_low, 0);
        snprintf(what, sizeof what, "palette%d", sample_depth);
        check_mask(&m, 29, 11, pattern_low, what);
        free(m.data);
    }
}

static void test_interlaced(void)
{
    membuf m = write_png(13, 7, PNG_COLOR_TYPE_GRAY, 8, 1, pattern8, 0);
    segloss_png_info info;
    CHECK_EQ_INT(segloss_png_mask_probe(m.data, m.len, &limits, &info, detail, sizeof detail), 0);
    CHECK_EQ_INT(info.interlaced, 1);
    check_mask(&m, 13, 7, pattern8, "interlaced grey8");
    free(m.data);
    sample_depth = 4;
    m = write_png(21, 9, PNG_COLOR_TYPE_PALETTE, 4, 1, pattern_low, 0);
    check_mask(&m, 21, 9, pattern_low, "interlaced palette4");
    free(m.data);
    m = write_png(5, 3, PNG_COLOR_TYPE_GRAY, 16, 1, pattern16, 0);
    check_mask(&m, 5, 3, pattern16, "interlaced grey16");
    free(m.data);
}

static void test_ancillary_chunks_skipped(void)
{
    membuf m = write_png(16, 16, PNG_COLOR_TYPE_PALETTE, 8, 0, pattern8, 1);
    check_mask(&m, 16, 16, pattern8, "palette8 with zTXt");
    free(m.data);
}

static void test_color_images_refused(void)
{
    static const struct {
        int type;
        const char *name;
    } cases[] = {{PNG_COLOR_TYPE_RGB, "RGB"},
                 {PNG_COLOR_TYPE_RGBA, "RGBA"},
                 {PNG_COLOR_TYPE_GRAY_ALPHA, "grey+alpha"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[128];
        membuf m = write_png(8, 8, cases[i].type, 8, 0, pattern8, 0);
        segloss_png_info info;
        uint8_t out[64];
        snprintf(want, sizeof want, "PNG colour type %s; masks must be greyscale or palette images",
                 cases[i].name);
        CHECK_EQ_INT(segloss_png_mask_probe(m.data, m.len, &limits, &info, detail, sizeof detail),
                     SEGLOSS_EUNSUPPORTED);
        CHECK_MSG(strstr(detail, want) != NULL, "%s", detail);
        CHECK_EQ_INT(info.color_type, cases[i].type);
        CHECK_EQ_INT(decode_u8(&m, out, sizeof out), SEGLOSS_EUNSUPPORTED);
        CHECK_MSG(strstr(detail, want) != NULL, "%s", detail);
        free(m.data);
    }
}

/* Offset of the first chunk of the given type, or 0. */
static size_t find_chunk(const membuf *m, const char *type)
{
    size_t at = 8;
    while (at + 12 <= m->len) {
        size_t n = (size_t)m->data[at] << 24 | (size_t)m->data[at + 1] << 16 |
                   (size_t)m->data[at + 2] << 8 | m->data[at + 3];
        if (memcmp(m->data + at + 4, type, 4) == 0)
            return at;
        at += 12 + n;
    }
    return 0;
}

static void test_crc_errors(void)
{
    static const char *const chunks[] = {"IHDR", "PLTE", "tRNS", "zTXt", "IDAT", "IEND"};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        membuf m = write_png(16, 16, PNG_COLOR_TYPE_PALETTE, 8, 0, pattern8, 1);
        uint8_t out[256];
        size_t at = find_chunk(&m, chunks[i]);
        CHECK_MSG(at != 0, "no %s chunk", chunks[i]);
        size_t n = (size_t)m.data[at] << 24 | (size_t)m.data[at + 1] << 16 |
                   (size_t)m.data[at + 2] << 8 | m.data[at + 3];
        m.data[at + 8 + n] ^= 0x01; /* the stored CRC */
        int rc = decode_u8(&m, out, sizeof out);
        CHECK_MSG(rc == SEGLOSS_EFORMAT, "%s: %d %s", chunks[i], rc, detail);
        CHECK_MSG(strstr(detail, "CRC") != NULL, "%s: %s", chunks[i], detail);
        m.data[at + 8 + n] ^= 0x01;
        /* A damaged data byte is an error too, whatever libpng notices first. */
        if (n > 0) {
            m.data[at + 8 + n - 1] ^= 0x40;
            CHECK_EQ_INT(decode_u8(&m, out, sizeof out), SEGLOSS_EFORMAT);
        }
        free(m.data);
    }
}

static void test_every_truncation_fails(void)
{
    membuf m = write_png(16, 16, PNG_COLOR_TYPE_GRAY, 8, 1, pattern8, 0);
    uint8_t out[256];
    size_t failures = 0;
    for (size_t n = 0; n < m.len; n++) {
        int rc = segloss_png_mask_decode(m.data, n, &limits, SEGLOSS_U8, out, sizeof out, detail,
                                         sizeof detail);
        failures += rc == SEGLOSS_EFORMAT;
    }
    CHECK_EQ_INT(failures, m.len);
    segloss_png_mask_decode(m.data, m.len - 1, &limits, SEGLOSS_U8, out, sizeof out, detail,
                            sizeof detail);
    CHECK_MSG(strstr(detail, "truncated") != NULL, "%s", detail);
    free(m.data);
}

/* The PNG chunk CRC (zlib's crc32, which the Makefile does not link directly). */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* A signature and a valid IHDR only: enough for the probe, nothing to inflate. */
static membuf ihdr_only(uint32_t w, uint32_t h, int depth, int type)
{
    membuf full = write_png(1, 1, PNG_COLOR_TYPE_GRAY, 8, 0, pattern8, 0);
    full.len = 33;
    uint8_t *p = full.data + 16;
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(w >> (24 - 8 * i));
        p[4 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    p[8] = (uint8_t)depth;
    p[9] = (uint8_t)type;
    uint32_t crc = crc32_of(full.data + 12, 17);
    for (int i = 0; i < 4; i++)
        full.data[29 + i] = (uint8_t)(crc >> (24 - 8 * i));
    return full;
}

static void test_limits_before_decode(void)
{
    segloss_png_info info;
    uint8_t out[16];
    membuf m = ihdr_only(100000, 100000, 8, 0);
    CHECK_EQ_INT(segloss_png_mask_probe(m.data, m.len, &limits, &info, detail, sizeof detail),
                 SEGLOSS_ELIMIT);
    CHECK(strstr(detail, "100000x100000") != NULL);
    CHECK(info.width == 100000 && info.height == 100000);
    CHECK_EQ_INT(decode_u8(&m, out, sizeof out), SEGLOSS_ELIMIT);
    free(m.data);
    m = ihdr_only(16000, 16000, 8, 3); /* under max_side, over max_pixels */
    CHECK_EQ_INT(segloss_png_mask_probe(m.data, m.len, &limits, &info, detail, sizeof detail),
                 SEGLOSS_ELIMIT);
    CHECK(strstr(detail, "pixels") != NULL);
    free(m.data);
    m = ihdr_only(4000, 3000, 8, 3); /* probe passes: the caller compares with logits */
    CHECK_EQ_INT(segloss_png_mask_probe(m.data, m.len, &limits, &info, detail, sizeof detail), 0);
    CHECK(info.width == 4000 && info.height == 3000 && info.color_type == 3);
    free(m.data);
    /* The caller's limits, not only the defaults. */
    segloss_limits small = limits;
    small.max_side = 15;
    m = write_png(16, 16, PNG_COLOR_TYPE_GRAY, 8, 0, pattern8, 0);
    CHECK_EQ_INT(segloss_png_mask_probe(m.data, m.len, &small, &info, detail, sizeof detail),
                 SEGLOSS_ELIMIT);
    free(m.data);
}

static void test_bad_headers(void)
{
    segloss_png_info info;
    static const struct {
        uint32_t w, h;
        int depth, type;
        const char *needle;
    } cases[] = {{0, 5, 8, 0, "invalid size"},           {5, 0x80000000u, 8, 0, "invalid size"},
                 {5, 5, 16, 3, "bit depth 16, invalid"}, {5, 5, 4, 2, "bit depth 4, invalid"},
                 {5, 5, 8, 5, "colour type 5"},          {5, 5, 3, 0, "bit depth 3"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        membuf m = ihdr_only(cases[i].w, cases[i].h, cases[i].depth, cases[i].type);
        CHECK_EQ_INT(segloss_png_mask_probe(m.data, m.len, &limits, &info, detail, sizeof detail),
                     SEGLOSS_EFORMAT);
        CHECK_MSG(strstr(detail, cases[i].needle) != NULL, "%s", detail);
        free(m.data);
    }
    CHECK_EQ_INT(segloss_png_mask_probe("GIF89a", 6, &limits, &info, detail, sizeof detail),
                 SEGLOSS_EFORMAT);
    CHECK_EQ_INT(segloss_png_mask_probe(NULL, 0, &limits, &info, detail, sizeof detail),
                 SEGLOSS_EFORMAT);
}

/* Appends a PNG chunk with its CRC. */
static void put_chunk(membuf *m, const char *type, const uint8_t *data, size_t n)
{
    m->data = realloc(m->data, m->len + n + 12);
    uint8_t *p = m->data + m->len;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(n >> (24 - 8 * i));
    memcpy(p + 4, type, 4);
    if (n)
        memcpy(p + 8, data, n);
    uint32_t crc = crc32_of(p + 4, n + 4);
    for (int i = 0; i < 4; i++)
        p[8 + n + i] = (uint8_t)(crc >> (24 - 8 * i));
    m->len += n + 12;
}

/*
 * A 1x1 grey PNG whose zlib stream (stored blocks: no zlib needed here) carries `extra` bytes
 * after the one row. libpng would inflate them all in png_read_end.
 */
static membuf trailing_data_png(size_t extra)
{
    membuf m = ihdr_only(1, 1, 8, 0);
    size_t raw_len = 2 + extra, blocks = (raw_len + 65534) / 65535;
    uint8_t *z = calloc(1, 2 + raw_len + 5 * blocks + 4);
    uint8_t *raw = calloc(1, raw_len);
    size_t zn = 0;
    uint32_t a = 1, b = 0;
    raw[1] = 7;
    z[zn++] = 0x78;
    z[zn++] = 0x01;
    for (size_t at = 0; at < raw_len; at += 65535) {
        size_t n = raw_len - at < 65535 ? raw_len - at : 65535;
        z[zn++] = at + n == raw_len ? 1 : 0;
        z[zn++] = (uint8_t)n;
        z[zn++] = (uint8_t)(n >> 8);
        z[zn++] = (uint8_t)~n;
        z[zn++] = (uint8_t)(~n >> 8);
        memcpy(z + zn, raw + at, n);
        zn += n;
    }
    for (size_t i = 0; i < raw_len; i++) {
        a = (a + raw[i]) % 65521;
        b = (b + a) % 65521;
    }
    uint32_t adler = b << 16 | a;
    for (int i = 0; i < 4; i++)
        z[zn++] = (uint8_t)(adler >> (24 - 8 * i));
    put_chunk(&m, "IDAT", z, zn);
    put_chunk(&m, "IEND", NULL, 0);
    free(z);
    free(raw);
    return m;
}

static void test_trailing_image_data_bounded(void)
{
    uint8_t out[2];
    membuf m = trailing_data_png(0);
    CHECK_EQ_INT(decode_u8(&m, out, 1), 0);
    CHECK_EQ_INT(out[0], 7);
    free(m.data);
    m = trailing_data_png(1000); /* "Too much image data": a warning, pixels are complete */
    CHECK_EQ_INT(decode_u8(&m, out, 1), 0);
    free(m.data);
    m = trailing_data_png(200000);
    CHECK_EQ_INT(decode_u8(&m, out, 1), SEGLOSS_EFORMAT);
    CHECK_MSG(strstr(detail, "decompression bomb") != NULL, "%s", detail);
    uint8_t *rgb = NULL;
    uint32_t w, h;
    CHECK_EQ_INT(
        segloss_image_decode_rgb(m.data, m.len, &limits, &rgb, &w, &h, detail, sizeof detail),
        SEGLOSS_EFORMAT);
    CHECK(rgb == NULL);
    free(m.data);
}

static void test_output_buffer_checked(void)
{
    membuf m = write_png(8, 8, PNG_COLOR_TYPE_GRAY, 8, 0, pattern8, 0);
    uint8_t out[128];
    CHECK_EQ_INT(decode_u8(&m, out, 63), SEGLOSS_EINVAL);
    CHECK_EQ_INT(segloss_png_mask_decode(m.data, m.len, &limits, SEGLOSS_U16, out, 127, detail,
                                         sizeof detail),
                 SEGLOSS_EINVAL);
    CHECK_EQ_INT(segloss_png_mask_decode(m.data, m.len, &limits, SEGLOSS_I32, out, 128, detail,
                                         sizeof detail),
                 SEGLOSS_EINVAL);
    CHECK_EQ_INT(decode_u8(&m, out, 64), 0);
    free(m.data);
}

int main(void)
{
    segloss_limits_default(&limits);
    RUN(test_grey8);
    RUN(test_palette_indices_not_colors);
    RUN(test_grey16);
    RUN(test_low_bit_depths);
    RUN(test_interlaced);
    RUN(test_ancillary_chunks_skipped);
    RUN(test_color_images_refused);
    RUN(test_crc_errors);
    RUN(test_every_truncation_fails);
    RUN(test_limits_before_decode);
    RUN(test_bad_headers);
    RUN(test_trailing_image_data_bounded);
    RUN(test_output_buffer_checked);
    return TESTS_DONE();
}
