/*
 * test_image.c - overlay images to RGB (lib/decode/image_rgb.c) and the PNG encoder
 * (lib/decode/png_encode.c).
 *
 * JPEG fixtures come from TurboJPEG's own compressor (baseline, progressive, greyscale), PNG
 * fixtures from segloss_png_encode and from libpng directly for palette and 16-bit RGBA.
 */
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "segloss/decode.h"
#include "segloss/errors.h"
#include "testing.h"

static char detail[256];
static segloss_limits limits;

/* A smooth RGB gradient: JPEG keeps it within a few levels. */
static uint8_t *gradient(uint32_t w, uint32_t h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *px = p + ((size_t)y * w + x) * 3;
            px[0] = (uint8_t)(x * 255 / (w - 1));
            px[1] = (uint8_t)(y * 255 / (h - 1));
            px[2] = 128;
        }
    return p;
}

static uint8_t *make_jpeg(const uint8_t *rgb, int w, int h, int subsamp, int flags,
                          unsigned long *len)
{
    tjhandle tj = tjInitCompress();
    uint8_t *jpeg = NULL;
    *len = 0;
    if (tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpeg, len, subsamp, 90, flags) != 0)
        fprintf(stderr, "tjCompress2: %s\n", tjGetErrorStr2(tj));
    tjDestroy(tj);
    return jpeg;
}

static int decode(const void *buf, size_t len, uint8_t **rgb, uint32_t *w, uint32_t *h)
{
    detail[0] = '\0';
    return segloss_image_decode_rgb(buf, len, &limits, rgb, w, h, detail, sizeof detail);
}

static int max_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        worst = d > worst ? d : worst;
    }
    return worst;
}

static void test_jpeg_baseline_and_progressive(void)
{
    static const int flags[] = {0, TJFLAG_PROGRESSIVE};
    uint8_t *src = gradient(64, 48);
    for (size_t i = 0; i < 2; i++) {
        unsigned long len;
        uint8_t *jpeg = make_jpeg(src, 64, 48, TJSAMP_444, flags[i], &len);
        uint8_t *rgb = NULL;
        uint32_t w, h;
        CHECK(jpeg != NULL);
        CHECK_EQ_INT(segloss_detect_format(jpeg, len), SEGLOSS_FORMAT_JPEG);
        int rc = decode(jpeg, len, &rgb, &w, &h);
        CHECK_MSG(rc == 0, "%s", detail);
        CHECK(w == 64 && h == 48);
        CHECK(rgb && max_diff(rgb, src, 64 * 48 * 3) <= 8);
        free(rgb);
        tjFree(jpeg);
    }
    free(src);
}

static void test_jpeg_gray_becomes_rgb(void)
{
    uint8_t *src = gradient(32, 32);
    unsigned long len;
    uint8_t *jpeg = make_jpeg(src, 32, 32, TJSAMP_GRAY, 0, &len);
    uint8_t *rgb = NULL;
    uint32_t w, h;
    CHECK_EQ_INT(decode(jpeg, len, &rgb, &w, &h), 0);
    CHECK(rgb && rgb[0] == rgb[1] && rgb[1] == rgb[2]);
    free(rgb);
    tjFree(jpeg);
    free(src);
}

static void test_jpeg_corrupt(void)
{
    uint8_t *src = gradient(64, 64);
    static const int flags[] = {0, TJFLAG_PROGRESSIVE};
    for (size_t f = 0; f < 2; f++) {
        unsigned long len;
        uint8_t *jpeg = make_jpeg(src, 64, 64, TJSAMP_420, flags[f], &len);
        uint8_t *rgb = (uint8_t *)1;
        uint32_t w, h;
        /* Truncated in the entropy-coded data: a warning in libjpeg, an error here. */
        CHECK_EQ_INT(decode(jpeg, len / 2, &rgb, &w, &h), SEGLOSS_EFORMAT);
        CHECK(rgb == NULL);
        CHECK_MSG(strstr(detail, "JPEG is corrupt") != NULL, "%s", detail);
        /* Truncated inside the headers. */
        CHECK_EQ_INT(decode(jpeg, 20, &rgb, &w, &h), SEGLOSS_EFORMAT);
        /* Every truncation fails; none returns a partial image. */
        size_t ok = 0;
        for (size_t n = 3; n + 2 < len; n += 7) {
            if (decode(jpeg, n, &rgb, &w, &h) == 0) {
                ok++;
                free(rgb);
            }
        }
        CHECK_EQ_INT(ok, 0);
        /* The SOF segment lies about its size. */
        for (size_t i = 2; i + 8 < len; i++) {
            if (jpeg[i] == 0xff && (jpeg[i + 1] == 0xc0 || jpeg[i + 1] == 0xc2)) {
                jpeg[i + 5] = 0;
                jpeg[i + 6] = 0; /* height 0 */
                CHECK(decode(jpeg, len, &rgb, &w, &h) < 0);
                break;
            }
        }
        tjFree(jpeg);
    }
    free(src);
}

static void test_jpeg_limits(void)
{
    uint8_t *src = gradient(64, 48);
    unsigned long len;
    uint8_t *jpeg = make_jpeg(src, 64, 48, TJSAMP_444, 0, &len);
    uint8_t *rgb = NULL;
    uint32_t w, h;
    segloss_limits saved = limits;
    limits.max_pixels = 64 * 48 - 1;
    CHECK_EQ_INT(decode(jpeg, len, &rgb, &w, &h), SEGLOSS_ELIMIT);
    CHECK(strstr(detail, "64x48") != NULL);
    limits = saved;
    limits.max_side = 63;
    CHECK_EQ_INT(decode(jpeg, len, &rgb, &w, &h), SEGLOSS_ELIMIT);
    limits = saved;
    tjFree(jpeg);
    free(src);
}

static void test_png_rgb_and_gray_roundtrip(void)
{
    uint8_t *src = gradient(40, 30);
    uint8_t *png = NULL, *rgb = NULL;
    size_t len = 0;
    uint32_t w, h;
    CHECK_EQ_INT(segloss_png_encode(src, 40, 30, 3, &png, &len, detail, sizeof detail), 0);
    CHECK_EQ_INT(segloss_detect_format(png, len), SEGLOSS_FORMAT_PNG);
    CHECK_EQ_INT(decode(png, len, &rgb, &w, &h), 0);
    CHECK(w == 40 && h == 30 && memcmp(rgb, src, 40 * 30 * 3) == 0);
    free(rgb);
    free(png);
    /* Grey: a mask-shaped image, also readable by the mask decoder. */
    uint8_t gray[40 * 30];
    for (size_t i = 0; i < sizeof gray; i++)
        gray[i] = (uint8_t)(i % 21);
    CHECK_EQ_INT(segloss_png_encode(gray, 40, 30, 1, &png, &len, detail, sizeof detail), 0);
    CHECK_EQ_INT(decode(png, len, &rgb, &w, &h), 0);
    for (size_t i = 0; i < sizeof gray; i++)
        CHECK(rgb[3 * i] == gray[i] && rgb[3 * i + 1] == gray[i] && rgb[3 * i + 2] == gray[i]);
    uint8_t back[40 * 30];
    CHECK_EQ_INT(segloss_png_mask_decode(png, len, &limits, SEGLOSS_U8, back, sizeof back, detail,
                                         sizeof detail),
                 0);
    CHECK(memcmp(back, gray, sizeof gray) == 0);
    free(rgb);
    free(png);
    free(src);
}

typedef struct memout {
    uint8_t *data;
    size_t len;
} memout;

static void mem_write(png_structp png, png_bytep data, size_t n)
{
    memout *m = png_get_io_ptr(png);
    m->data = realloc(m->data, m->len + n);
    memcpy(m->data + m->len, data, n);
    m->len += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

/* A 2x2 PNG of the given type written with libpng (16-bit RGBA or 2-bit palette). */
static uint8_t *write_small_png(int type, int depth, int interlace, size_t *len)
{
    memout m = {NULL, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    uint8_t row0[16] = {0}, row1[16] = {0};
    png_bytep rows[2] = {row0, row1};
    if (setjmp(png_jmpbuf(png)))
        abort();
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, 2, 2, depth, type, interlace, 0, 0);
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
        png_set_PLTE(png, info, pal, 4);
        png_byte trns[4] = {0, 255, 255, 255};
        png_set_tRNS(png, info, trns, 4, NULL);
        row0[0] = 0x1b; /* 2-bit indices 0 1 | 2 3 */
        row1[0] = 0xe4; /* 3 2 | 1 0 */
    } else {
        /* 16-bit RGBA: pixel (0,0) = (0xffff, 0x8000, 0, 0 alpha) */
        row0[0] = row0[1] = 0xff;
        row0[2] = 0x80;
    }
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *len = m.len;
    return m.data;
}

static void test_png_palette_and_16bit_rgba(void)
{
    size_t len;
    uint8_t *rgb = NULL;
    uint32_t w, h;
    for (int interlace = 0; interlace < 2; interlace++) {
        uint8_t *png = write_small_png(PNG_COLOR_TYPE_PALETTE, 2, interlace, &len);
        CHECK_EQ_INT(decode(png, len, &rgb, &w, &h), 0);
        static const uint8_t want[12] = {0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255};
        CHECK(w == 2 && h == 2);
        CHECK(rgb && memcmp(rgb, want, 3) == 0 && memcmp(rgb + 3, want + 3, 3) == 0);
        free(rgb);
        free(png);
    }
    uint8_t *png = write_small_png(PNG_COLOR_TYPE_RGBA, 16, 0, &len);
    CHECK_EQ_INT(decode(png, len, &rgb, &w, &h), 0);
    CHECK(rgb && rgb[0] == 255 && rgb[1] == 128 && rgb[2] == 0);
    free(rgb);
    /* Truncated and corrupt PNG images fail like masks do. */
    CHECK_EQ_INT(decode(png, len - 5, &rgb, &w, &h), SEGLOSS_EFORMAT);
    CHECK(rgb == NULL);
    png[len - 1] ^= 1;
    CHECK_EQ_INT(decode(png, len, &rgb, &w, &h), SEGLOSS_EFORMAT);
    free(png);
}

static void test_image_other_formats_refused(void)
{
    uint8_t *rgb = NULL;
    uint32_t w, h;
    CHECK_EQ_INT(decode("GIF89a....", 10, &rgb, &w, &h), SEGLOSS_EUNSUPPORTED);
    CHECK_EQ_INT(decode(NULL, 0, &rgb, &w, &h), SEGLOSS_EUNSUPPORTED);
    CHECK_EQ_INT(segloss_image_decode_rgb("x", 1, &limits, NULL, &w, &h, detail, sizeof detail),
                 SEGLOSS_EINVAL);
}

static void test_png_encode_arguments(void)
{
    uint8_t px[12] = {0};
    uint8_t *png = (uint8_t *)1;
    size_t len = 7;
    CHECK_EQ_INT(segloss_png_encode(px, 2, 2, 2, &png, &len, detail, sizeof detail),
                 SEGLOSS_EINVAL);
    CHECK(png == NULL && len == 0);
    CHECK_EQ_INT(segloss_png_encode(px, 0, 2, 3, &png, &len, detail, sizeof detail),
                 SEGLOSS_EINVAL);
    CHECK_EQ_INT(segloss_png_encode(NULL, 2, 2, 3, &png, &len, detail, sizeof detail),
                 SEGLOSS_EINVAL);
    CHECK_EQ_INT(segloss_png_encode(px, 2, 2, 3, &png, &len, detail, sizeof detail), 0);
    CHECK(png != NULL && len > 8);
    free(png);
}

/* segloss_image_probe: size and scans from the headers alone (issue 12, overlay CPU budget). */
static void test_image_probe(void)
{
    uint8_t *rgb = gradient(40, 24);
    uint32_t w, h, scans;
    unsigned long len = 0;
    uint8_t *base = make_jpeg(rgb, 40, 24, TJSAMP_420, 0, &len);
    CHECK_EQ_INT(segloss_image_probe(base, len, &w, &h, &scans, detail, sizeof detail), 0);
    CHECK(w == 40 && h == 24 && scans == 1);
    /* libjpeg's progression for YCbCr: 10 scans */
    unsigned long plen = 0;
    uint8_t *prog = make_jpeg(rgb, 40, 24, TJSAMP_420, TJFLAG_PROGRESSIVE, &plen);
    CHECK_EQ_INT(segloss_image_probe(prog, plen, &w, &h, &scans, detail, sizeof detail), 0);
    CHECK_MSG(w == 40 && h == 24 && scans == 10, "%ux%u, %u scans", w, h, scans);
    /* a PNG is one pass */
    uint8_t *png = NULL;
    size_t png_len = 0;
    CHECK_EQ_INT(segloss_png_encode(rgb, 40, 24, 3, &png, &png_len, detail, sizeof detail), 0);
    CHECK_EQ_INT(segloss_image_probe(png, png_len, &w, &h, &scans, detail, sizeof detail), 0);
    CHECK(w == 40 && h == 24 && scans == 1);
    /* headers cut before the first scan */
    size_t sos = 0;
    for (size_t i = 0; i + 1 < len; i++)
        if (base[i] == 0xff && base[i + 1] == 0xda) {
            sos = i;
            break;
        }
    CHECK(sos > 0);
    CHECK_EQ_INT(segloss_image_probe(base, sos, &w, &h, &scans, detail, sizeof detail),
                 SEGLOSS_EFORMAT);
    CHECK_EQ_INT(segloss_image_probe("GIF89a", 6, &w, &h, &scans, detail, sizeof detail),
                 SEGLOSS_EUNSUPPORTED);
    free(png);
    tjFree(base);
    tjFree(prog);
    free(rgb);
}

int main(void)
{
    segloss_limits_default(&limits);
    RUN(test_jpeg_baseline_and_progressive);
    RUN(test_jpeg_gray_becomes_rgb);
    RUN(test_jpeg_corrupt);
    RUN(test_jpeg_limits);
    RUN(test_png_rgb_and_gray_roundtrip);
    RUN(test_png_palette_and_16bit_rgba);
    RUN(test_image_other_formats_refused);
    RUN(test_png_encode_arguments);
    RUN(test_image_probe);
    return TESTS_DONE();
}
