/*
 * image_rgb.c - the optional input image behind an overlay, decoded to packed 8-bit RGB.
 *
 * Clients send the photo the network saw, usually a JPEG, sometimes a PNG. Either is decoded
 * into one w x h x 3 buffer; its pixels are only ever drawn on, so colour management, gamma and
 * transparency are dropped. JPEG goes through libjpeg-turbo's TurboJPEG 2.1 API with
 * TJFLAG_STOPONWARNING (a corrupt stream is an error, not a grey half-image) and
 * TJFLAG_LIMITSCANS (a progressive JPEG with thousands of scans, a known CPU bomb, is refused).
 * The size is read from the header and checked against the limits before the output is
 * allocated, for both formats.
 */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "decode/decode_internal.h"
#include "segloss/decode.h"
#include "segloss/errors.h"

static int decode_jpeg(const uint8_t *buf, size_t len, const segloss_limits *limits, uint8_t **rgb,
                       uint32_t *width, uint32_t *height, char *detail, size_t detail_len)
{
    tjhandle tj = NULL;
    uint8_t *pixels = NULL;
    int w = 0, h = 0, subsamp = 0, colorspace = 0, rc = 0;

    if (len > (unsigned long)-1)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT, "JPEG is too large");
    tj = tjInitDecompress();
    if (!tj)
        return segloss_fail(detail, detail_len, SEGLOSS_ENOMEM,
                            "out of memory creating a JPEG decoder");
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp, &colorspace) != 0) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_EFORMAT, "JPEG is corrupt: %s",
                          tjGetErrorStr2(tj));
        goto done;
    }
    if (w <= 0 || h <= 0) {
        rc =
            segloss_fail(detail, detail_len, SEGLOSS_EFORMAT, "JPEG has an empty size %dx%d", w, h);
        goto done;
    }
    if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                          "JPEG is CMYK; save the image as RGB or greyscale");
        goto done;
    }
    rc = segloss__check_image_size("JPEG image", (uint32_t)w, (uint32_t)h, limits, detail,
                                   detail_len);
    if (rc != 0)
        goto done;
    pixels = malloc((size_t)w * (size_t)h * 3);
    if (!pixels) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_ENOMEM, "out of memory decoding a %dx%d JPEG",
                          w, h);
        goto done;
    }
    if (tjDecompress2(tj, buf, (unsigned long)len, pixels, w, 0, h, TJPF_RGB,
                      TJFLAG_LIMITSCANS | TJFLAG_STOPONWARNING) != 0) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_EFORMAT, "JPEG is corrupt: %s",
                          tjGetErrorStr2(tj));
        goto done;
    }
    *rgb = pixels;
    pixels = NULL;
    *width = (uint32_t)w;
    *height = (uint32_t)h;

done:
    free(pixels);
    tjDestroy(tj);
    return rc;
}

/*
 * The libpng part of decode_png, alone in a function so that setjmp guards no local that
 * changes: every resource belongs to the caller. Returns 0 or the error libpng raised.
 */
static int read_rgb_rows(segloss__png_src *src, png_structp png, png_infop png_info,
                         const segloss_png_info *info, png_bytep *rows, size_t stride, char *detail,
                         size_t detail_len)
{
    if (setjmp(png_jmpbuf(png)))
        return segloss__png_read_error(src, detail, detail_len);
    png_read_info(png, png_info);
    if (png_get_image_width(png, png_info) != info->width ||
        png_get_image_height(png, png_info) != info->height)
        png_error(png, "IHDR changed between probe and decode");
    /* tRNS is skipped when reading, so these yield RGB (or grey) without alpha. */
    png_set_expand(png); /* palette to RGB, 1/2/4-bit grey to 8-bit */
    png_set_scale_16(png);
    png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, png_info);
    if (png_get_rowbytes(png, png_info) != stride)
        png_error(png, "unexpected row layout after transforms");
    segloss__png_begin_rows(png, src, info, stride);
    png_read_image(png, rows);
    segloss__png_end_rows(src);
    png_read_end(png, NULL);
    return 0;
}

static int decode_png(const uint8_t *buf, size_t len, const segloss_limits *limits, uint8_t **rgb,
                      uint32_t *width, uint32_t *height, char *detail, size_t detail_len)
{
    segloss_png_info info;
    segloss__png_src src;
    png_structp png = NULL;
    png_infop png_info = NULL;
    png_bytep *rows = NULL;
    uint8_t *pixels = NULL;
    int rc;

    rc = segloss__png_read_ihdr(buf, len, &info, detail, detail_len);
    if (rc == 0)
        rc = segloss__check_image_size("PNG image", info.width, info.height, limits, detail,
                                       detail_len);
    if (rc != 0)
        return rc;
    /* Both allocations before setjmp: a longjmp then cannot leak them. */
    size_t stride = (size_t)info.width * 3;
    pixels = malloc(stride * info.height);
    rows = malloc((size_t)info.height * sizeof *rows);
    if (!pixels || !rows) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_ENOMEM, "out of memory decoding a %ux%u PNG",
                          (unsigned)info.width, (unsigned)info.height);
        goto done;
    }
    for (uint32_t y = 0; y < info.height; y++)
        rows[y] = pixels + (size_t)y * stride;

    rc = segloss__png_read_create(&src, buf, len, limits, &png, &png_info, detail, detail_len);
    if (rc != 0)
        goto done;
    rc = read_rgb_rows(&src, png, png_info, &info, rows, stride, detail, detail_len);
    if (rc != 0)
        goto done;
    *rgb = pixels;
    pixels = NULL;
    *width = info.width;
    *height = info.height;

done:
    png_destroy_read_struct(&png, &png_info, NULL);
    free(rows);
    free(pixels);
    return rc;
}

/* JPEG markers that start a frame and hold its size (SOF0-3, 5-7, 9-11, 13-15). */
static int is_sof(uint8_t m)
{
    return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

/* Walks the JPEG's markers: the frame size and the number of SOS (scans). The entropy-coded
 * data after each SOS is skipped byte by byte up to the next marker that is not a stuffed
 * 0xFF00 or a restart marker. */
static int probe_jpeg(const uint8_t *b, size_t len, uint32_t *width, uint32_t *height,
                      uint32_t *scans, char *detail, size_t detail_len)
{
    size_t i = 2; /* after SOI */
    int have_size = 0;
    *scans = 0;
    while (i + 1 < len) {
        if (b[i] != 0xff) {
            i++; /* entropy-coded data, or junk a decoder skips too */
            continue;
        }
        uint8_t m = b[i + 1];
        if (m == 0xff) {
            i++; /* fill byte */
            continue;
        }
        if (m == 0x00 || (m >= 0xd0 && m <= 0xd7)) {
            i += 2; /* stuffed byte, restart marker */
            continue;
        }
        if (m == 0xd9)
            break; /* EOI */
        if (i + 3 >= len)
            break;
        size_t seg = ((size_t)b[i + 2] << 8) | b[i + 3];
        if (seg < 2 || i + 2 + seg > len)
            break;
        if (is_sof(m) && seg >= 7) {
            *height = ((uint32_t)b[i + 5] << 8) | b[i + 6];
            *width = ((uint32_t)b[i + 7] << 8) | b[i + 8];
            have_size = 1;
        } else if (m == 0xda) {
            ++*scans;
        }
        i += 2 + seg;
    }
    if (!have_size || !*scans)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "JPEG is corrupt: no frame header or no scan");
    return 0;
}

int segloss_image_probe(const void *buf, size_t len, uint32_t *width, uint32_t *height,
                        uint32_t *scans, char *detail, size_t detail_len)
{
    *width = *height = *scans = 0;
    if (!buf)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "image_probe: NULL argument");
    switch (segloss_detect_format(buf, len)) {
    case SEGLOSS_FORMAT_JPEG: return probe_jpeg(buf, len, width, height, scans, detail, detail_len);
    case SEGLOSS_FORMAT_PNG: {
        segloss_png_info info;
        int rc = segloss__png_read_ihdr(buf, len, &info, detail, detail_len);
        if (rc)
            return rc;
        *width = info.width;
        *height = info.height;
        *scans = 1;
        return 0;
    }
    default:
        return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                            "image is neither JPEG nor PNG");
    }
}

int segloss_image_decode_rgb(const void *buf, size_t len, const segloss_limits *limits,
                             uint8_t **rgb, uint32_t *width, uint32_t *height, char *detail,
                             size_t detail_len)
{
    if (rgb)
        *rgb = NULL;
    if (!rgb || !width || !height || !limits || (!buf && len))
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "image_decode_rgb: NULL "
                            "argument");
    *width = *height = 0;
    switch (segloss_detect_format(buf, len)) {
    case SEGLOSS_FORMAT_JPEG:
        return decode_jpeg(buf, len, limits, rgb, width, height, detail, detail_len);
    case SEGLOSS_FORMAT_PNG:
        return decode_png(buf, len, limits, rgb, width, height, detail, detail_len);
    default:
        return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                            "image is neither JPEG nor PNG");
    }
}
