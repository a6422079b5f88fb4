/*
 * overlay.h - what the runs store keeps of a batch item for its overlay, and the overlay PNG.
 *
 * A recorded evaluation keeps, per batch item, the predicted class map (the first arg-max of the
 * logits at mask resolution), the ground-truth class map and, when the client sent one, the
 * input image made small. Never the logits. Class maps are PNGs: 8-bit grey when C <= 255
 * (values 0..C, C = ignored), otherwise RGB with the value split over red (high byte) and
 * green (low byte), since the library's encoder writes 8-bit samples only.
 *
 * overlay_render draws one item as three panels side by side, each with a caption:
 *   GROUND TRUTH  - class colours (VOC palette) over the image, class borders drawn in white
 *   PREDICTION    - the same for the arg-max
 *   ERRORS n.n%   - the image in grey; correctly classified pixels tinted with their class,
 *                   misclassified ones solid red; the caption gives the error rate
 * Ignored pixels (label >= C) are hatched dark grey in every panel. Small masks are enlarged
 * with crisp (nearest) pixels, large ones reduced, so a panel is 256 to 768 pixels on its
 * longest side. Without an image, the class colours sit on black (the usual VOC look).
 *
 * Thread-safe; every buffer returned is the caller's (free with free() or the _free below).
 */
#ifndef SERVER_OVERLAY_H
#define SERVER_OVERLAY_H

#include <stddef.h>
#include <stdint.h>

#include "segloss/tensor.h"
#include "store/store.h"

/* The longest side of an uploaded image as kept for overlays; more only costs disk. */
#define OVERLAY_IMAGE_MAX_SIDE 512
/* A JPEG up to this size whose sides are within OVERLAY_IMAGE_KEEP_SIDE is kept as sent
 * (re-encoding a photo as PNG usually makes it bigger). */
#define OVERLAY_JPEG_KEEP_BYTES (256 * 1024)
#define OVERLAY_IMAGE_KEEP_SIDE 1024
/* A panel's longest side after scaling (see the file comment). */
#define OVERLAY_PANEL_MIN 256
#define OVERLAY_PANEL_MAX 768

/* RGB of class k in the PASCAL VOC colour map (k >= 256 wraps onto distinct colours). */
void overlay_class_color(size_t k, uint8_t rgb[3]);

/* Encodes w*h class values (values > num_classes become num_classes) as a PNG. */
int overlay_encode_classmap(const uint16_t *map, uint32_t w, uint32_t h, size_t num_classes,
                            uint8_t **png, size_t *png_len, char *err, size_t err_len);

/*
 * Decodes a class-map PNG of overlay_encode_classmap into a new w*h array (free()).
 * Every function here that decodes takes the configured shape limits (NULL: the defaults of
 * segloss/limits.h), so what the daemon accepts and what it may decode agree.
 */
int overlay_decode_classmap(const uint8_t *png, size_t png_len, size_t num_classes,
                            const segloss_limits *limits, uint16_t **map, uint32_t *w, uint32_t *h,
                            char *err, size_t err_len);

/* The store items of one batch, with the bytes they point to. */
typedef struct overlay_items {
    store_item *items; /* count items */
    size_t count;
    uint8_t **owned; /* 3 * count buffers (NULL where nothing was allocated) */
} overlay_items;

/*
 * Builds the n store items of a batch: argmax holds n*h*w predicted classes, labels is the
 * (n,h,w) or (h,w) label tensor the evaluation used (any integer dtype; values < 0 or >= C are
 * ignored pixels), images[i] (image_lens[i] bytes, JPEG or PNG) the optional input images;
 * image_count may be 0 or less than n. An image that does not decode is left out (the answer
 * was already computed; the overlay then draws on black). Returns 0 or SEGLOSS_E* with err.
 */
int overlay_items_build(const uint16_t *argmax, const segloss_tensor *labels, size_t num_classes,
                        const segloss_limits *limits, const void *const *images,
                        const size_t *image_lens, size_t image_count, overlay_items *out, char *err,
                        size_t err_len);
void overlay_items_free(overlay_items *items);

/* Renders the overlay of one stored item as an RGB PNG. Returns 0 or SEGLOSS_E* with err. */
int overlay_render(const store_item *item, size_t num_classes, const segloss_limits *limits,
                   uint8_t **png, size_t *png_len, char *err, size_t err_len);

#endif
