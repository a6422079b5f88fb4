/*
 * decode_internal.h - helpers the decoders in lib/ share and nobody else sees.
 *
 * The tensor decoders (npy.c, safetensors.c) share the role checks (which dtypes and ranks a
 * logits or labels tensor may have, and the size limits on its shape) and the "view or aligned
 * copy" step, defined in tensor_checks.c. The PNG decoders (png_mask.c, image_rgb.c) share one
 * libpng reader set-up, defined in png_reader.c: a memory cursor, error and warning handlers
 * that never print, and the limits that must be in place before a single pixel is inflated.
 * Both helper files sit below the decoders that use them (and format.c, the dispatcher, above
 * those), so the decoders' files form no cycle.
 */
#ifndef SEGLOSS_DECODE_INTERNAL_H
#define SEGLOSS_DECODE_INTERNAL_H

#include <png.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss/decode.h"
#include "segloss/limits.h"
#include "segloss/tensor.h"

/* Alignment of the copies made for misaligned data: a cache line, enough for any SIMD load. */
#define SEGLOSS__COPY_ALIGN 64

/*
 * Checks a decoded shape against the role (rank 3/4 for logits, 2/3 for labels, no zero
 * dimension) and the limits (sides, pixels per image, batch, classes, elements). `what` names
 * the container in the detail (".npy", "safetensors tensor 'logits'"). Returns 0, SEGLOSS_ESHAPE
 * or SEGLOSS_ELIMIT; *elements receives the element count on success.
 */
int segloss__check_shape(const char *what, segloss_tensor_role role, const size_t *shape, int rank,
                         const segloss_limits *limits, size_t *elements, char *detail,
                         size_t detail_len);

/*
 * Formats a shape as Python prints a tuple, "(1, 2, 3)" or "(5,)", into buf (always
 * NUL-terminated, truncated when short). Returns buf.
 */
char *segloss__format_shape(const size_t *shape, int rank, char *buf, size_t buf_len);

/*
 * Points *view at data when it is aligned to elem_size; otherwise copies nbytes into a new
 * SEGLOSS__COPY_ALIGN-aligned allocation, points *view at it and hands it to the caller through
 * *owned (free() it). *owned is NULL when nothing was copied. Returns 0 or SEGLOSS_ENOMEM.
 */
int segloss__view_or_copy(const void *data, size_t nbytes, size_t elem_size, const void **view,
                          void **owned, char *detail, size_t detail_len);

/* The state behind one libpng read from memory; segloss__png_read_create fills it in. */
typedef struct segloss__png_src {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    uint32_t rows_left;  /* row reads still to come, counted by the row callback */
    int last_row;        /* the last row is being read: reads are capped from here */
    size_t last_row_pos; /* pos when the last row began */
    size_t last_row_cap; /* bytes the last row (and the end of the stream) may read */
    int truncated;       /* the read callback ran out of bytes */
    int out_of_memory;   /* libpng's allocation failed (its message says so) */
    char message[160];   /* libpng's error message, when it raised one */
} segloss__png_src;

/*
 * Creates a libpng read struct and info struct reading buf[0..len) through src (which it
 * initialises), with silent error and warning handlers, strict CRC checks on every chunk,
 * ancillary chunks the decoders never use skipped unparsed (so no zTXt/iCCP is inflated),
 * png_set_user_limits from limits->max_side and png_set_chunk_malloc_max(SEGLOSS_PNG_CHUNK_MAX).
 * The caller must setjmp(png_jmpbuf(*png)) before calling any other libpng function, and
 * release both with png_destroy_read_struct.
 * Returns 0 or SEGLOSS_ENOMEM (nothing to release then).
 */
int segloss__png_read_create(segloss__png_src *src, const void *buf, size_t len,
                             const segloss_limits *limits, png_structp *png, png_infop *info,
                             char *detail, size_t detail_len);

/*
 * Call after png_read_update_info, before png_read_image. Counts rows as libpng reads them and,
 * from the last row on, caps what the read callback hands out at two rows' worth plus
 * SEGLOSS_PNG_TRAILING_IDAT_MAX: libpng inflates whatever compressed data follows the last
 * row to nowhere, so without the cap a 1x1 image followed by 100 MB of deflated zeros would
 * cost minutes of CPU. row_bytes is png_get_rowbytes after the transforms.
 */
void segloss__png_begin_rows(png_structp png, segloss__png_src *src, const segloss_png_info *info,
                             size_t row_bytes);

/* Call after png_read_image: ends the cap (png_read_end reads only small chunks). */
void segloss__png_end_rows(segloss__png_src *src);

int segloss__png_read_error(const segloss__png_src *src, char *detail, size_t detail_len);

/*
 * Reads the signature and IHDR by hand (no libpng, no inflate) and validates them as the PNG
 * specification does, the IHDR CRC included. Returns 0 or SEGLOSS_EFORMAT. Limits and colour
 * types are left to the caller.
 */
int segloss__png_read_ihdr(const void *buf, size_t len, segloss_png_info *info, char *detail,
                           size_t detail_len);

/* Checks width and height against limits->max_side and max_pixels: 0 or SEGLOSS_ELIMIT. */
int segloss__check_image_size(const char *what, uint32_t width, uint32_t height,
                              const segloss_limits *limits, char *detail, size_t detail_len);

#endif
