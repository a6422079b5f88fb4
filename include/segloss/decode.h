/*
 * decode.h - strict, bounded decoders for everything a client uploads.
 *
 * Every function here reads untrusted bytes. Limits (segloss_limits) are checked before any
 * allocation or pixel decode; every failure returns a negative SEGLOSS_E* code and writes a
 * detail a person can act on into the caller's buffer, e.g.
 * "PNG colour type RGB; masks must be greyscale or palette images". The caller prefixes which
 * part it was ("mask 2: ..."). No function keeps global state; all are thread-safe.
 *
 * Ownership: tensor views point into the caller's buffer when the data there is usable as is
 * (little-endian, C order, aligned to the element size). When it is not aligned, the decoder
 * copies the data into aligned memory, sets *owned to that allocation and points the view at it;
 * the caller frees *owned with free() after the last use of the view. *owned is NULL otherwise.
 *
 * Decisions: big-endian .npy data ('>f4') is byte-swapped and fortran_order True (numpy.save of
 * a transposed array) is reordered into C order, both in one copy handed back through *owned.
 */
#ifndef SEGLOSS_DECODE_H
#define SEGLOSS_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "segloss/limits.h"
#include "segloss/tensor.h"

typedef enum segloss_format {
    SEGLOSS_FORMAT_UNKNOWN = 0,
    SEGLOSS_FORMAT_NPY,
    SEGLOSS_FORMAT_SAFETENSORS,
    SEGLOSS_FORMAT_PNG,
    SEGLOSS_FORMAT_JPEG
} segloss_format;

/* Detects the format from the first bytes (never from a file name). */
segloss_format segloss_detect_format(const void *buf, size_t len);
const char *segloss_format_name(segloss_format format);

/* What a tensor is for: decides the accepted dtypes and ranks. */
typedef enum segloss_tensor_role {
    SEGLOSS_ROLE_LOGITS = 0, /* f4 f2 f8 (npy) / F32 F16 BF16 F64 (safetensors); rank 3 or 4 */
    SEGLOSS_ROLE_LABELS = 1  /* u1 i1 u2 i4 i8 / U8 I8 U16 I32 I64; rank 2 or 3 */
} segloss_tensor_role;

/*
 * .npy v1.0, v2.0, v3.0. The header (at most SEGLOSS_NPY_MAX_HEADER bytes) is parsed without
 * trusting it: keys in any order, exact data length required.
 */
int segloss_npy_decode(const void *buf, size_t len, segloss_tensor_role role,
                       const segloss_limits *limits, segloss_tensor *out, void **owned,
                       char *detail, size_t detail_len);

/*
 * Where a .npy file ends, from its first bytes, without reading its data: for a reader that
 * receives the file in pieces and wants to copy its bulk without looking at it. Returns 0 when
 * the header is complete within len, with *header_bytes (magic, version, length and header) and
 * *total_bytes (header plus the data the shape and dtype call for; the same checks as
 * segloss_npy_decode, limits NULL meaning the defaults); 1 when more bytes are needed, at least
 * *header_bytes in all; or a negative SEGLOSS_E... code when the bytes are not such a file.
 * layout, when not NULL, gets the dtype, rank and shape, and a data pointer (buf +
 * *header_bytes) only when segloss_npy_decode would use the data in place (little-endian, C
 * order, aligned), else NULL.
 */
int segloss_npy_probe(const void *buf, size_t len, segloss_tensor_role role,
                      const segloss_limits *limits, size_t *header_bytes, size_t *total_bytes,
                      segloss_tensor *layout);

/*
 * safetensors: the tensor named "logits" into *logits (required) and, when labels is not NULL,
 * a tensor named "mask" or "labels" into *labels (rank 0 when absent). Offsets are checked:
 * inside the buffer, not overlapping, length = elements x dtype size. __metadata__ is ignored.
 * *owned_logits / *owned_labels as described above.
 */
int segloss_safetensors_decode(const void *buf, size_t len, const segloss_limits *limits,
                               segloss_tensor *logits, void **owned_logits, segloss_tensor *labels,
                               void **owned_labels, char *detail, size_t detail_len);

/* Logits from either format, detected from the bytes (labels in a safetensors file ignored). */
int segloss_logits_decode(const void *buf, size_t len, const segloss_limits *limits,
                          segloss_tensor *out, void **owned, char *detail, size_t detail_len);

/* PNG header facts, read from IHDR alone. */
typedef struct segloss_png_info {
    uint32_t width, height;
    int bit_depth;  /* 1, 2, 4, 8, 16 */
    int color_type; /* PNG colour type: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA */
    int interlaced;
} segloss_png_info;

/*
 * Reads the PNG signature and IHDR only (cheap: no inflate), checks the size against limits and
 * that the image can be a mask (grey or palette; RGB, RGBA and grey+alpha are refused with
 * SEGLOSS_EUNSUPPORTED). Use it to check width and height against the logits before decoding.
 */
int segloss_png_mask_probe(const void *buf, size_t len, const segloss_limits *limits,
                           segloss_png_info *info, char *detail, size_t detail_len);

/*
 * Decodes a mask PNG into the caller's buffer (out_len is in bytes) of width*height elements of
 * out_dtype
 * (SEGLOSS_U8 needs bit depth <= 8; SEGLOSS_U16 takes any depth). Palette indices are class
 * indices, never expanded to colours; 1/2/4-bit images are unpacked; interlacing is handled.
 * CRC errors and truncation are errors; nothing partial is returned as success.
 */
int segloss_png_mask_decode(const void *buf, size_t len, const segloss_limits *limits,
                            segloss_dtype out_dtype, void *out, size_t out_len, char *detail,
                            size_t detail_len);

/*
 * An image for overlays (JPEG via libjpeg-turbo, or PNG of any colour type) decoded to packed
 * 8-bit RGB. *rgb is allocated (free with free()); limits->max_pixels bounds width*height before
 * decoding; libjpeg warnings are errors; progressive scans are limited.
 */
int segloss_image_decode_rgb(const void *buf, size_t len, const segloss_limits *limits,
                             uint8_t **rgb, uint32_t *width, uint32_t *height, char *detail,
                             size_t detail_len);

/*
 * What decoding an overlay image would cost, from its headers alone (no pixel is decoded):
 * its size and its number of scans (the SOS markers of a JPEG, each a pass over the whole
 * image in a progressive one; 1 for a PNG). A decoder's work is about width * height * scans,
 * which lets a caller refuse a CPU bomb (a huge progressive JPEG of hundreds of scans) before
 * decoding. Returns 0, or SEGLOSS_EFORMAT / SEGLOSS_EUNSUPPORTED with a detail.
 */
int segloss_image_probe(const void *buf, size_t len, uint32_t *width, uint32_t *height,
                        uint32_t *scans, char *detail, size_t detail_len);

/*
 * Encodes packed 8-bit RGB (or grey when channels == 1, palette-free) as a PNG in memory.
 * *png is allocated (free with free()).
 */
int segloss_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                       uint8_t **png, size_t *png_len, char *detail, size_t detail_len);

#endif
