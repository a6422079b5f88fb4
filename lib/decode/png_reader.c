/*
 * png_reader.c - the libpng reader set-up the PNG decoders share (png_mask.c for masks,
 * image_rgb.c for input images), and the hand-read signature and IHDR check.
 *
 * Reading from memory, silent error and warning handlers that keep libpng's message, strict CRCs
 * on every chunk, ancillary chunks skipped unparsed, user limits and a chunk allocation cap in
 * place before a single pixel is inflated, and a cap on what the last row may read (see
 * segloss__png_begin_rows in decode_internal.h).
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "decode/decode_internal.h"
#include "segloss/decode.h"
#include "segloss/errors.h"

/* Known ancillary chunks a decoder here never uses: skipped unparsed (CRC still checked). */
static const png_byte skipped_chunks[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0"
                                         "pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0"
                                         "tRNS\0zTXt";
#define SKIPPED_CHUNK_COUNT 18

/* Ancillary chunks libpng may cache before giving up: a mask needs none. */
#define PNG_CHUNK_CACHE_MAX 64

static void png_read_error_fn(png_structp png, png_const_charp message)
{
    segloss__png_src *src = png_get_error_ptr(png);
    if (src && message) {
        if (!src->message[0]) {
            strncpy(src->message, message, sizeof src->message - 1);
            src->message[sizeof src->message - 1] = '\0';
        }
        if (strstr(message, "memory") || strstr(message, "Memory"))
            src->out_of_memory = 1;
    }
    png_longjmp(png, 1);
}

/* Warnings (bad sRGB profiles, extra compressed data) do not make pixels wrong: ignored. */
static void png_read_warning_fn(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void png_read_fn(png_structp png, png_bytep data, size_t length)
{
    segloss__png_src *src = png_get_io_ptr(png);
    if (length > src->len - src->pos) {
        src->truncated = 1;
        png_error(png, "truncated");
    }
    if (src->last_row && src->pos + length - src->last_row_pos > src->last_row_cap)
        png_error(png, "more compressed image data after the last row than an encoder leaves "
                       "(decompression bomb?)");
    memcpy(data, src->buf + src->pos, length);
    src->pos += length;
}

int segloss__png_read_create(segloss__png_src *src, const void *buf, size_t len,
                             const segloss_limits *limits, png_structp *png, png_infop *info,
                             char *detail, size_t detail_len)
{
    uint32_t side = limits->max_side > 0x7fffffffu ? 0x7fffffffu : (uint32_t)limits->max_side;

    memset(src, 0, sizeof *src);
    src->buf = buf;
    src->len = len;

    *png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, src, png_read_error_fn, png_read_warning_fn);
    *info = *png ? png_create_info_struct(*png) : NULL;
    if (!*png || !*info) {
        png_destroy_read_struct(png, info, NULL);
        return segloss_fail(detail, detail_len, SEGLOSS_ENOMEM,
                            "out of memory creating a PNG decoder");
    }
    /* None of these can longjmp: they only store settings. */
    png_set_read_fn(*png, src, png_read_fn);
    png_set_user_limits(*png, side, side);
    png_set_chunk_malloc_max(*png, SEGLOSS_PNG_CHUNK_MAX);
    png_set_chunk_cache_max(*png, PNG_CHUNK_CACHE_MAX);
    png_set_crc_action(*png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_set_keep_unknown_chunks(*png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(*png, PNG_HANDLE_CHUNK_NEVER, skipped_chunks, SKIPPED_CHUNK_COUNT);
    return 0;
}

/* libpng's row callback: runs after each row read (rows outside an interlace pass excluded). */
static void png_row_done_fn(png_structp png, png_uint_32 row, int pass)
{
    segloss__png_src *src = png_get_io_ptr(png);
    (void)row;
    (void)pass;
    if (src->rows_left > 0 && --src->rows_left == 1) {
        src->last_row = 1;
        src->last_row_pos = src->pos;
    }
}

void segloss__png_begin_rows(png_structp png, segloss__png_src *src, const segloss_png_info *info,
                             size_t row_bytes)
{
    uint32_t reads = info->height;
    if (info->interlaced) {
        /* libpng reads (and reports) only the rows of each pass that has pixels. */
        reads = 0;
        for (int pass = 0; pass < 7; pass++) {
            if (PNG_PASS_COLS(info->width, pass) > 0)
                reads += PNG_PASS_ROWS(info->height, pass);
        }
    }
    src->rows_left = reads;
    src->last_row = reads <= 1;
    src->last_row_pos = src->pos;
    src->last_row_cap = 2 * (row_bytes + 1) + SEGLOSS_PNG_TRAILING_IDAT_MAX;
    png_set_read_status_fn(png, png_row_done_fn);
}

void segloss__png_end_rows(segloss__png_src *src)
{
    src->last_row = 0;
}

int segloss__png_read_error(const segloss__png_src *src, char *detail, size_t detail_len)
{
    if (src->truncated)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "PNG is truncated after %zu bytes (incomplete upload?)", src->len);
    if (src->out_of_memory)
        return segloss_fail(detail, detail_len, SEGLOSS_ENOMEM, "out of memory decoding a PNG");
    return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT, "PNG is corrupt: %s",
                        src->message[0] ? src->message : "libpng error");
}

int segloss__png_read_ihdr(const void *buf, size_t len, segloss_png_info *info, char *detail,
                           size_t detail_len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = buf;

    memset(info, 0, sizeof *info);
    if (!buf || len < 8 || memcmp(b, sig, 8) != 0)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT, "not a PNG file (bad signature)");
    if (len < 33)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "PNG is truncated after %zu bytes, inside its IHDR header", len);
    if (be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) != 0)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "PNG does not start with a 13-byte IHDR chunk");
    if (crc32(0L, b + 12, 17) != be32(b + 29))
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "PNG is corrupt: IHDR: CRC "
                            "error");
    const uint8_t *h = b + 16;
    uint32_t w = be32(h), ht = be32(h + 4);
    int depth = h[8], type = h[9];
    if (w == 0 || ht == 0 || w > 0x7fffffffu || ht > 0x7fffffffu)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "PNG IHDR gives an invalid size %ux%u", (unsigned)w, (unsigned)ht);
    int depth_ok;
    switch (type) {
    case 0: depth_ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16; break;
    case 3: depth_ok = depth == 1 || depth == 2 || depth == 4 || depth == 8; break;
    case 2:
    case 4:
    case 6: depth_ok = depth == 8 || depth == 16; break;
    default:
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "PNG IHDR gives an invalid colour type %d", type);
    }
    if (!depth_ok)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "PNG IHDR gives bit depth %d, invalid for colour type %d", depth, type);
    if (h[10] != 0 || h[11] != 0 || h[12] > 1)
        return segloss_fail(detail, detail_len, SEGLOSS_EFORMAT,
                            "PNG IHDR gives an unknown compression, filter or interlace method");
    info->width = w;
    info->height = ht;
    info->bit_depth = depth;
    info->color_type = type;
    info->interlaced = h[12];
    return 0;
}

int segloss__check_image_size(const char *what, uint32_t width, uint32_t height,
                              const segloss_limits *limits, char *detail, size_t detail_len)
{
    size_t pixels;
    if (width > limits->max_side || height > limits->max_side)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT,
                            "%s is %ux%u; width and height are limited to %zu", what,
                            (unsigned)width, (unsigned)height, limits->max_side);
    if (segloss_mul_size(width, height, &pixels) != 0 || pixels > limits->max_pixels)
        return segloss_fail(detail, detail_len, SEGLOSS_ELIMIT,
                            "%s is %ux%u; an image is limited to %zu pixels", what, (unsigned)width,
                            (unsigned)height, limits->max_pixels);
    return 0;
}
