/*
 * bench_decode.c - how long a 512x512 palette PNG mask takes to decode.
 *
 * The mask is built once, deterministically: 21 VOC-like classes in rectangular regions with a
 * 3-pixel border of 255 (VOC's "ignore") around each, written as an 8-bit palette PNG by
 * libpng at its default settings, the way PIL saves VOC masks. The decode into a uint8 buffer
 * (probe included, as the server does it) is run 5 times to warm caches, then timed RUNS
 * times; the median is printed. A noise mask (every pixel a random class: nothing for zlib to
 * find) is timed the same way as the worst case.
 */
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segloss/decode.h"
#include "segloss/errors.h"

#define SIDE 512
#define WARMUP 5
#define RUNS 21

typedef struct membuf {
    uint8_t *data;
    size_t len;
} membuf;

static void mem_write(png_structp png, png_bytep data, size_t n)
{
    membuf *m = png_get_io_ptr(png);
    uint8_t *grown = realloc(m->data, m->len + n);
    if (!grown)
        abort();
    m->data = grown;
    memcpy(m->data + m->len, data, n);
    m->len += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

static membuf write_palette_png(const uint8_t *index)
{
    membuf m = {NULL, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytep rows[SIDE];
    png_color palette[256];
    if (!png || !info || setjmp(png_jmpbuf(png)))
        abort();
    for (int i = 0; i < 256; i++)
        palette[i] = (png_color){(png_byte)(i * 37), (png_byte)(i * 91), (png_byte)(i * 53)};
    for (int y = 0; y < SIDE; y++)
        rows[y] = (png_bytep)(uintptr_t)(index + (size_t)y * SIDE);
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, SIDE, SIDE, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_PLTE(png, info, palette, 256);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return m;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median milliseconds of probe + decode; exits on a decode error. */
static double time_decode(const membuf *png, uint8_t *out)
{
    segloss_limits limits;
    segloss_png_info info;
    char detail[256];
    double times[RUNS];

    segloss_limits_default(&limits);
    for (int i = 0; i < WARMUP + RUNS; i++) {
        double t0 = now_ms();
        int rc = segloss_png_mask_probe(png->data, png->len, &limits, &info, detail, sizeof detail);
        if (rc == 0)
            rc = segloss_png_mask_decode(png->data, png->len, &limits, SEGLOSS_U8, out,
                                         (size_t)SIDE * SIDE, detail, sizeof detail);
        double t1 = now_ms();
        if (rc != 0) {
            fprintf(stderr, "decode failed: %s\n", detail);
            exit(1);
        }
        if (i >= WARMUP)
            times[i - WARMUP] = t1 - t0;
    }
    qsort(times, RUNS, sizeof times[0], compare_double);
    return times[RUNS / 2];
}

int main(void)
{
    uint8_t *index = malloc((size_t)SIDE * SIDE);
    uint8_t *out = malloc((size_t)SIDE * SIDE);
    uint32_t seed = 12345;
    if (!index || !out)
        return 1;

    for (int y = 0; y < SIDE; y++) {
        for (int x = 0; x < SIDE; x++) {
            int rx = x % 96, ry = y % 80;
            int border = rx < 3 || rx >= 93 || ry < 3 || ry >= 77;
            index[y * SIDE + x] = border ? 255 : (uint8_t)((x / 96 + (y / 80) * 5) % 21);
        }
    }
    membuf regions = write_palette_png(index);
    double regions_ms = time_decode(&regions, out);
    if (memcmp(out, index, (size_t)SIDE * SIDE) != 0) {
        fprintf(stderr, "decoded mask differs from the original\n");
        return 1;
    }

    for (size_t i = 0; i < (size_t)SIDE * SIDE; i++) {
        seed = seed * 1664525u + 1013904223u;
        index[i] = (uint8_t)((seed >> 24) % 21);
    }
    membuf noise = write_palette_png(index);
    double noise_ms = time_decode(&noise, out);

    printf("png_mask_decode_512x512_palette: median %.3f ms (%d runs, %zu-byte file)\n", regions_ms,
           RUNS, regions.len);
    printf("png_mask_decode_512x512_palette_noise: median %.3f ms (%d runs, %zu-byte file)\n",
           noise_ms, RUNS, noise.len);
    free(regions.data);
    free(noise.data);
    free(index);
    free(out);
    return 0;
}
