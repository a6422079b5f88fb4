/*
 * png_encode.c - packed 8-bit grey or RGB pixels to a PNG in memory.
 *
 * The overlay endpoint renders prediction against ground truth and answers with a PNG; the
 * tests build their mask fixtures with it too. Output goes into one growing heap buffer that
 * the caller takes over, so nothing touches the file system. A libpng failure (only out of
 * memory, in practice) longjmps back here and frees the partial buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "decode/decode_internal.h"
#include "segloss/decode.h"
#include "segloss/errors.h"

typedef struct png_sink {
    uint8_t *data;
    size_t len, cap;
    int out_of_memory;
    char message[160];
} png_sink;

static void png_write_error_fn(png_structp png, png_const_charp message)
{
    png_sink *sink = png_get_error_ptr(png);
    if (sink && message && !sink->message[0]) {
        strncpy(sink->message, message, sizeof sink->message - 1);
        sink->message[sizeof sink->message - 1] = '\0';
    }
    png_longjmp(png, 1);
}

static void png_write_warning_fn(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static void png_write_fn(png_structp png, png_bytep data, size_t length)
{
    png_sink *sink = png_get_io_ptr(png);
    if (length > sink->cap - sink->len) {
        size_t cap = sink->cap ? sink->cap : 4096;
        while (cap - sink->len < length) {
            if (cap > SIZE_MAX / 2) {
                sink->out_of_memory = 1;
                png_error(png, "PNG output too large");
            }
            cap *= 2;
        }
        uint8_t *grown = realloc(sink->data, cap);
        if (!grown) {
            sink->out_of_memory = 1;
            png_error(png, "out of memory");
        }
        sink->data = grown;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->len, data, length);
    sink->len += length;
}

static void png_flush_fn(png_structp png)
{
    (void)png;
}

/* The libpng calls, alone so that setjmp guards no changing local. Returns 0 or an error. */
static int write_png(png_sink *sink, png_structp png, png_infop info, uint32_t width,
                     uint32_t height, int channels, png_bytep *rows, char *detail,
                     size_t detail_len)
{
    if (setjmp(png_jmpbuf(png)))
        return segloss_fail(detail, detail_len,
                            sink->out_of_memory ? SEGLOSS_ENOMEM : SEGLOSS_EINTERNAL,
                            "PNG encoding failed: %s", sink->message);
    png_set_write_fn(png, sink, png_write_fn, png_flush_fn);
    /* Overlays are served once and thrown away: fast compression beats small files. */
    png_set_compression_level(png, 3);
    png_set_IHDR(png, info, width, height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return 0;
}

int segloss_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                       uint8_t **png_out, size_t *png_len, char *detail, size_t detail_len)
{
    png_sink sink;
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep *rows = NULL;
    int rc = 0;

    if (png_out)
        *png_out = NULL;
    if (png_len)
        *png_len = 0;
    if (!pixels || !png_out || !png_len)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "png_encode: NULL argument");
    if (channels != 1 && channels != 3)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "png_encode: %d channels; 1 (grey) or 3 (RGB) are supported", channels);
    if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "png_encode: invalid size %ux%u",
                            (unsigned)width, (unsigned)height);
    size_t stride = (size_t)width * (size_t)channels;
    rows = malloc((size_t)height * sizeof *rows);
    if (!rows)
        return segloss_fail(detail, detail_len, SEGLOSS_ENOMEM, "out of memory encoding a PNG");
    for (uint32_t y = 0; y < height; y++)
        rows[y] = (png_bytep)(uintptr_t)(pixels + (size_t)y * stride);

    memset(&sink, 0, sizeof sink);
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_write_error_fn,
                                  png_write_warning_fn);
    info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        rc = segloss_fail(detail, detail_len, SEGLOSS_ENOMEM,
                          "out of memory creating a PNG encoder");
        goto done;
    }
    rc = write_png(&sink, png, info, width, height, channels, rows, detail, detail_len);
    if (rc != 0)
        goto done;
    *png_out = sink.data;
    *png_len = sink.len;
    sink.data = NULL;

done:
    png_destroy_write_struct(&png, &info);
    free(sink.data);
    free(rows);
    return rc;
}
