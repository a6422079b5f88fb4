/*
 * fuzz_jpeg.c - libFuzzer harness for JPEG images to RGB (lib/decode/image_rgb.c, libjpeg-turbo),
 * and for segloss_image_probe, which reads an overlay image's size and scan count from its markers
 * before anything is decoded.
 *
 * A success must return a w x h x 3 buffer whose every byte is readable; a failure must return
 * no buffer and a NUL-terminated detail. Limits are small so that one input stays cheap. The
 * probe must end with a NUL-terminated detail when it refuses, and when both it and the decoder
 * accept an image they must agree on its width and height.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segloss/decode.h"
#include "segloss/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/jpeg", "tests/crashers/jpeg",
                                                NULL};

int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    segloss_limits limits;
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    char detail[256];
    volatile uint8_t sink = 0;

    uint32_t pw = 0, ph = 0, scans = 0;
    char probe_detail[256];
    int probed =
        segloss_image_probe(data, size, &pw, &ph, &scans, probe_detail, sizeof probe_detail);
    if (probed != 0 && strnlen(probe_detail, sizeof probe_detail) == sizeof probe_detail)
        abort();
    segloss_limits_default(&limits);
    limits.max_side = 4096;
    limits.max_pixels = (size_t)1 << 21;
    int rc = segloss_image_decode_rgb(data, size, &limits, &rgb, &w, &h, detail, sizeof detail);
    if (rc == 0) {
        if (!rgb || w == 0 || h == 0)
            abort();
        for (size_t i = 0; i < (size_t)w * h * 3; i++)
            sink ^= rgb[i];
        if (probed == 0 && (pw != w || ph != h))
            abort();
    } else if (rgb || strnlen(detail, sizeof detail) == sizeof detail) {
        abort();
    }
    (void)sink;
    free(rgb);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)segloss_fuzz_decode(data, size);
    return 0;
}
