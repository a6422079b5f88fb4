/*
 * png_mask.c - ground-truth masks from PNG.
 *
 * A mask PNG carries one class index per pixel: 8-bit grey (VOC's SegmentationClassAug,
 * ADE20K), palette (VOC's SegmentationClass: the palette only colours the indices for people,
 * so the index is the class and the palette is never applied), 16-bit grey (datasets with more
 * than 256 classes) and 1/2/4-bit grey or palette (binary masks written by PIL). RGB, RGBA and
 * grey+alpha are refused: their colours would have to be mapped back to classes, which is the
 * client's job, not a guess the service should make.
 *
 * An upload is untrusted, so decoding is staged. segloss_png_mask_probe reads only the
 * signature and IHDR, by hand, to give width and height before any inflate; the caller compares
 * them with the logits. segloss_png_mask_decode then runs libpng with user limits and a chunk
 * allocation cap in place, CRC errors fatal on every chunk, ancillary chunks skipped, and reads
 * through IEND so a truncated file is an error rather than a mask with a missing tail.
 */
#include <stdlib.h>
#include <string.h>

#include "decode/decode_internal.h"
#include "segloss/decode.h"
#include "segloss/errors.h"

int segloss_png_mask_probe(const void *buf, size_t len, const segloss_limits *limits,
                           segloss_png_info *info, char *detail, size_t detail_len)
{
    static const char *const type_names[] = {"grey",       "?", "RGB", "palette",
                                             "grey+alpha", "?", "RGBA"};
    if (!info || !limits)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "png_mask_probe: NULL argument");
    int rc = segloss__png_read_ihdr(buf, len, info, detail, detail_len);
    if (rc != 0)
        return rc;
    if (info->color_type != PNG_COLOR_TYPE_GRAY && info->color_type != PNG_COLOR_TYPE_PALETTE)
        return segloss_fail(detail, detail_len, SEGLOSS_EUNSUPPORTED,
                            "PNG colour type %s; masks must be greyscale or palette images "
                            "holding class indices",
                            type_names[info->color_type]);
    return segloss__check_image_size("PNG mask", info->width, info->height, limits, detail,
                                     detail_len);
}

/* Widens n bytes at the start of buf to n uint16 in place, back to front. */
static void widen_u8_to_u16(void *buf, size_t n)
{
    const uint8_t *src = buf;
    uint16_t *dst = buf;
    while (n-- > 0)
        dst[n] = src[n];
}

/*
 * The libpng part of the mask decode, alone in a function so that setjmp guards no local that
 * changes: every resource belongs to the caller. Returns 0 or the error libpng raised.
 */
static int read_mask_rows(segloss__png_src *src, png_structp png, png_infop png_info,
                          const segloss_png_info *info, png_bytep *rows, size_t row_bytes,
                          char *detail, size_t detail_len)
{
    if (setjmp(png_jmpbuf(png)))
        return segloss__png_read_error(src, detail, detail_len);
    png_read_info(png, png_info);
    if (png_get_image_width(png, png_info) != info->width ||
        png_get_image_height(png, png_info) != info->height ||
        png_get_bit_depth(png, png_info) != info->bit_depth)
        png_error(png, "IHDR changed between probe and decode");
    if (info->bit_depth < 8)
        png_set_packing(png); /* one byte per index, values kept, never scaled */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (info->bit_depth == 16)
        png_set_swap(png); /* PNG stores big-endian samples */
#endif
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, png_info);
    if (png_get_rowbytes(png, png_info) != row_bytes || png_get_channels(png, png_info) != 1)
        png_error(png, "unexpected row layout after transforms");
    segloss__png_begin_rows(png, src, info, row_bytes);
    png_read_image(png, rows);
    segloss__png_end_rows(src);
    png_read_end(png, NULL); /* CRCs of the last IDAT and IEND, and truncation */
    return 0;
}

int segloss_png_mask_decode(const void *buf, size_t len, const segloss_limits *limits,
                            segloss_dtype out_dtype, void *out, size_t out_len, char *detail,
                            size_t detail_len)
{
    segloss_png_info info;
    segloss__png_src src;
    png_structp png = NULL;
    png_infop png_info = NULL;
    png_bytep *rows = NULL;
    size_t need, row_bytes;
    int rc;

    rc = segloss_png_mask_probe(buf, len, limits, &info, detail, detail_len);
    if (rc != 0)
        return rc;
    if (out_dtype != SEGLOSS_U8 && out_dtype != SEGLOSS_U16)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "png_mask_decode: output dtype must be uint8 or uint16");
    if (out_dtype == SEGLOSS_U8 && info.bit_depth == 16)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "png_mask_decode: a 16-bit PNG mask needs a uint16 output");
    /* out_len is in bytes: width x height x the output element size. */
    if (segloss_mul_size((size_t)info.width * info.height, segloss_dtype_size(out_dtype), &need) !=
            0 ||
        !out || out_len < need)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "png_mask_decode: output buffer of %zu bytes, %ux%u %s needs %zu",
                            out_len, (unsigned)info.width, (unsigned)info.height,
                            segloss_dtype_name(out_dtype), need);
    /* Row pointers before setjmp, so a longjmp never loses an allocation. */
    rows = malloc((size_t)info.height * sizeof *rows);
    if (!rows)
        return segloss_fail(detail, detail_len, SEGLOSS_ENOMEM,
                            "out of memory decoding a PNG mask");
    row_bytes = (size_t)info.width * (info.bit_depth == 16 ? 2 : 1);
    for (uint32_t y = 0; y < info.height; y++)
        rows[y] = (png_bytep)out + (size_t)y * row_bytes;

    rc = segloss__png_read_create(&src, buf, len, limits, &png, &png_info, detail, detail_len);
    if (rc != 0)
        goto done;
    rc = read_mask_rows(&src, png, png_info, &info, rows, row_bytes, detail, detail_len);
    if (rc != 0)
        goto done;
    if (out_dtype == SEGLOSS_U16 && info.bit_depth <= 8)
        widen_u8_to_u16(out, (size_t)info.width * info.height);

done:
    png_destroy_read_struct(&png, &png_info, NULL);
    free(rows);
    return rc;
}
