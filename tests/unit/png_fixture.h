/*
 * png_fixture.h - PNGs written with libpng in any layout, for tests that need one the library's
 * own encoder does not write (16-bit grey, palette at every depth, interlaced, with text).
 * Static functions: include it in one test file each.
 */
#ifndef TESTS_PNG_FIXTURE_H
#define TESTS_PNG_FIXTURE_H

#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
} membuf;

static void mem_write(png_structp png, png_bytep data, size_t n)
{
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->data = realloc(m->data, m->cap);
    }
    memcpy(m->data + m->len, data, n);
    m->len += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

/*
 * Writes a PNG whose samples come from sample(x, y, channel). Palette images get a palette of
 * palette_len entries that are all the same colour, so only the index can tell them apart.
 */
static membuf write_png(uint32_t w, uint32_t h, int color_type, int depth, int interlace,
                        unsigned (*sample)(uint32_t, uint32_t, int), int with_text)
{
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int channels = color_type == 2 ? 3 : color_type == 4 ? 2 : color_type == 6 ? 4 : 1;
    size_t bps = depth == 16 ? 2 : 1;
    uint8_t *pixels = calloc((size_t)w * h * channels * bps, 1);
    png_bytep *rows = malloc(h * sizeof *rows);
    for (uint32_t y = 0; y < h; y++) {
        rows[y] = pixels + (size_t)y * w * channels * bps;
        for (uint32_t x = 0; x < w; x++) {
            for (int c = 0; c < channels; c++) {
                unsigned v = sample(x, y, c);
                uint8_t *p = rows[y] + ((size_t)x * channels + c) * bps;
                if (bps == 2) {
                    p[0] = (uint8_t)(v >> 8);
                    p[1] = (uint8_t)v;
                } else {
                    p[0] = (uint8_t)v;
                }
            }
        }
    }
    if (setjmp(png_jmpbuf(png)))
        abort();
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, w, h, depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color palette[256];
        for (int i = 0; i < 256; i++)
            palette[i] = (png_color){128, 0, 0};
        png_set_PLTE(png, info, palette, 1 << depth);
        png_byte trns[1] = {0};
        png_set_tRNS(png, info, trns, 1, NULL);
    }
    if (with_text) {
        png_text text = {0};
        text.compression = PNG_TEXT_COMPRESSION_zTXt;
        text.key = (png_charp) "Comment";
        text.text = (png_charp) "a mask with a compressed comment that is ignored";
        png_set_text(png, info, &text, 1);
    }
    png_write_info(png, info);
    if (depth < 8)
        png_set_packing(png);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(pixels);
    return m;
}

#endif
