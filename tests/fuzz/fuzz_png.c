/*
 * fuzz_png.c - libFuzzer harness for PNG masks (lib/decode/png_mask.c), PNG images to RGB
 * (lib/decode/image_rgb.c) and, on every mask that decodes, a round trip through the encoder
 * (lib/decode/png_encode.c).
 *
 * The probe must agree with the decoder: the decoder never succeeds where the probe refused.
 * A decoded mask re-encoded as 8-bit grey must decode to the same indices. Limits are smaller
 * than the daemon's so one input cannot allocate more than a few megabytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segloss/decode.h"
#include "segloss/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/png", "tests/crashers/png",
                                                NULL};

static void fuzz_limits(segloss_limits *limits)
{
    segloss_limits_default(limits);
    limits->max_side = 4096;
    limits->max_pixels = (size_t)1 << 21;
}

static void roundtrip(const uint8_t *mask, uint32_t w, uint32_t h)
{
    uint8_t *png = NULL;
    size_t len = 0;
    char detail[256];
    segloss_limits limits;

    fuzz_limits(&limits);
    if (segloss_png_encode(mask, w, h, 1, &png, &len, detail, sizeof detail) != 0)
        abort();
    uint8_t *back = malloc((size_t)w * h);
    if (!back ||
        segloss_png_mask_decode(png, len, &limits, SEGLOSS_U8, back, (size_t)w * h, detail,
                                sizeof detail) != 0 ||
        memcmp(back, mask, (size_t)w * h) != 0)
        abort();
    free(back);
    free(png);
}

/* The uint16 mask decode's code (any bit depth fits uint16). */
int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    segloss_limits limits;
    segloss_png_info info;
    char detail[256];

    fuzz_limits(&limits);
    int probe = segloss_png_mask_probe(data, size, &limits, &info, detail, sizeof detail);
    size_t n = probe == 0 ? (size_t)info.width * info.height : 1;
    uint16_t *out = malloc(n * 2);
    if (!out)
        abort();
    int rc = segloss_png_mask_decode(data, size, &limits, SEGLOSS_U16, out, n * 2, detail,
                                     sizeof detail);
    if ((probe != 0 && rc == 0) || (probe != 0 && rc != probe))
        abort();
    if (rc == 0 && info.bit_depth <= 8) {
        uint8_t *u8 = malloc(n);
        if (!u8)
            abort();
        if (segloss_png_mask_decode(data, size, &limits, SEGLOSS_U8, u8, n, detail,
                                    sizeof detail) != 0)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (u8[i] != out[i])
                abort();
        }
        roundtrip(u8, info.width, info.height);
        free(u8);
    }
    free(out);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    segloss_limits limits;
    uint8_t *rgb = NULL;
    uint32_t w, h;
    char detail[256];
    volatile uint8_t sink = 0;

    (void)segloss_fuzz_decode(data, size);
    fuzz_limits(&limits);
    if (segloss_image_decode_rgb(data, size, &limits, &rgb, &w, &h, detail, sizeof detail) == 0) {
        for (size_t i = 0; i < (size_t)w * h * 3; i++)
            sink ^= rgb[i];
    } else if (rgb) {
        abort();
    }
    (void)sink;
    free(rgb);
    return 0;
}
