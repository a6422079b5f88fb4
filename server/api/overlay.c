/*
 * overlay.c - class maps as PNGs for the runs store, and the prediction-vs-truth overlay.
 *
 * See overlay.h for the picture. Everything is drawn in one RGB buffer and encoded with the
 * library's PNG encoder; captions use a built-in 5x7 pixel font (the daemon loads no files).
 */
#include "api/overlay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "segloss/decode.h"
#include "segloss/errors.h"
#include "segloss/limits.h"

/* Layout of the overlay image, in output pixels. */
#define OVERLAY_MARGIN 6
#define OVERLAY_FONT_SCALE 2
#define OVERLAY_CAPTION_H (7 * OVERLAY_FONT_SCALE + 10)
/* Class colours over an image: opaque enough to read, thin enough to see the image. */
#define OVERLAY_CLASS_ALPHA 0.55
/* Correct pixels in the error panel: a hint of the class, so red errors stand out. */
#define OVERLAY_CORRECT_ALPHA 0.35
/* Class borders: white, strong enough to separate similar colours. */
#define OVERLAY_BORDER_ALPHA 0.7
/* No borders when more than 1 mask pixel in this many sits on a class edge. */
#define OVERLAY_BORDER_MAX_FRACTION 8

static const uint8_t background_rgb[3] = {24, 24, 24};
static const uint8_t error_rgb[3] = {235, 45, 45};
static const uint8_t border_rgb[3] = {255, 255, 255};
static const uint8_t caption_rgb[3] = {235, 235, 235};

void overlay_class_color(size_t k, uint8_t rgb[3])
{
    /* The VOC colour map spreads the bits of the index over the three channels. Indices past
     * 255 are folded onto 1..255 after a mixing step so neighbours still look different. */
    size_t id = k < 256 ? k : 1 + (k * 2654435761u >> 7) % 255;
    unsigned r = 0, g = 0, b = 0;
    for (int j = 0; j < 8; j++) {
        r |= (unsigned)((id >> 0) & 1) << (7 - j);
        g |= (unsigned)((id >> 1) & 1) << (7 - j);
        b |= (unsigned)((id >> 2) & 1) << (7 - j);
        id >>= 3;
    }
    rgb[0] = (uint8_t)r;
    rgb[1] = (uint8_t)g;
    rgb[2] = (uint8_t)b;
}

int overlay_encode_classmap(const uint16_t *map, uint32_t w, uint32_t h, size_t num_classes,
                            uint8_t **png, size_t *png_len, char *err, size_t err_len)
{
    *png = NULL;
    *png_len = 0;
    size_t n = (size_t)w * h;
    int channels = num_classes <= 255 ? 1 : 3;
    uint8_t *px = malloc(n * (size_t)channels + 1);
    if (!px)
        return detail_fail(err, err_len, SEGLOSS_ENOMEM, "out of memory encoding a class map");
    for (size_t i = 0; i < n; i++) {
        size_t v = map[i] > num_classes ? num_classes : map[i];
        if (channels == 1) {
            px[i] = (uint8_t)v;
        } else {
            px[3 * i] = (uint8_t)(v >> 8);
            px[3 * i + 1] = (uint8_t)v;
            px[3 * i + 2] = 0;
        }
    }
    int rc = segloss_png_encode(px, w, h, channels, png, png_len, err, err_len);
    free(px);
    return rc;
}

/* The configured limits, or the library's defaults in *fallback when none are given. */
static const segloss_limits *limits_or_default(const segloss_limits *limits,
                                               segloss_limits *fallback)
{
    if (limits)
        return limits;
    segloss_limits_default(fallback);
    return fallback;
}

int overlay_decode_classmap(const uint8_t *png, size_t png_len, size_t num_classes,
                            const segloss_limits *limits, uint16_t **map, uint32_t *w, uint32_t *h,
                            char *err, size_t err_len)
{
    segloss_limits fallback;
    const segloss_limits lim = *limits_or_default(limits, &fallback);
    *map = NULL;
    if (num_classes <= 255) {
        segloss_png_info info;
        int rc = segloss_png_mask_probe(png, png_len, &lim, &info, err, err_len);
        if (rc)
            return rc;
        size_t n = (size_t)info.width * info.height;
        uint16_t *out = malloc(n * sizeof *out + 1);
        if (!out)
            return detail_fail(err, err_len, SEGLOSS_ENOMEM, "out of memory decoding a class map");
        rc = segloss_png_mask_decode(png, png_len, &lim, SEGLOSS_U16, out, n * sizeof *out, err,
                                     err_len);
        if (rc) {
            free(out);
            return rc;
        }
        *map = out;
        *w = info.width;
        *h = info.height;
        return 0;
    }
    uint8_t *rgb = NULL;
    int rc = segloss_image_decode_rgb(png, png_len, &lim, &rgb, w, h, err, err_len);
    if (rc)
        return rc;
    size_t n = (size_t)*w * *h;
    uint16_t *out = malloc(n * sizeof *out + 1);
    if (!out) {
        free(rgb);
        return detail_fail(err, err_len, SEGLOSS_ENOMEM, "out of memory decoding a class map");
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (uint16_t)(rgb[3 * i] << 8 | rgb[3 * i + 1]);
    free(rgb);
    *map = out;
    return 0;
}

/* --- building the items of a batch ------------------------------------------------------- */

static size_t label_at(const segloss_tensor *t, size_t i, size_t num_classes)
{
    int64_t v;
    switch (t->dtype) {
    case SEGLOSS_U8: v = ((const uint8_t *)t->data)[i]; break;
    case SEGLOSS_I8: v = ((const int8_t *)t->data)[i]; break;
    case SEGLOSS_U16: v = ((const uint16_t *)t->data)[i]; break;
    case SEGLOSS_I32: v = ((const int32_t *)t->data)[i]; break;
    case SEGLOSS_I64: v = ((const int64_t *)t->data)[i]; break;
    default: v = -1;
    }
    return v < 0 || (uint64_t)v >= num_classes ? num_classes : (size_t)v;
}

/* Area-average reduction of packed RGB to dw x dh. */
static void rgb_reduce(const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw,
                       uint32_t dh)
{
    for (uint32_t y = 0; y < dh; y++) {
        size_t y0 = (size_t)y * sh / dh, y1 = ((size_t)y + 1) * sh / dh;
        if (y1 <= y0)
            y1 = y0 + 1;
        for (uint32_t x = 0; x < dw; x++) {
            size_t x0 = (size_t)x * sw / dw, x1 = ((size_t)x + 1) * sw / dw;
            if (x1 <= x0)
                x1 = x0 + 1;
            uint64_t sum[3] = {0, 0, 0}, count = (y1 - y0) * (x1 - x0);
            for (size_t yy = y0; yy < y1; yy++)
                for (size_t xx = x0; xx < x1; xx++)
                    for (int ch = 0; ch < 3; ch++)
                        sum[ch] += src[(yy * sw + xx) * 3 + (size_t)ch];
            for (int ch = 0; ch < 3; ch++)
                dst[((size_t)y * dw + x) * 3 + (size_t)ch] = (uint8_t)(sum[ch] / count);
        }
    }
}

/* The image as kept: the JPEG itself when small, else a reduced PNG. NULL when it does not
 * decode (the overlay is then drawn without it). */
static uint8_t *image_for_store(const void *bytes, size_t len, const segloss_limits *limits,
                                size_t *out_len)
{
    const segloss_limits lim = *limits;
    uint8_t *rgb = NULL, *small = NULL, *png = NULL;
    uint32_t w, h;
    char detail[256];
    *out_len = 0;
    if (!bytes || !len ||
        segloss_image_decode_rgb(bytes, len, &lim, &rgb, &w, &h, detail, sizeof detail) != 0)
        return NULL;
    uint32_t longest = w > h ? w : h;
    if (segloss_detect_format(bytes, len) == SEGLOSS_FORMAT_JPEG &&
        len <= OVERLAY_JPEG_KEEP_BYTES && longest <= OVERLAY_IMAGE_KEEP_SIDE) {
        free(rgb);
        uint8_t *copy = malloc(len);
        if (copy) {
            memcpy(copy, bytes, len);
            *out_len = len;
        }
        return copy;
    }
    uint32_t dw = w, dh = h;
    if (longest > OVERLAY_IMAGE_MAX_SIDE) {
        dw = (uint32_t)((uint64_t)w * OVERLAY_IMAGE_MAX_SIDE / longest);
        dh = (uint32_t)((uint64_t)h * OVERLAY_IMAGE_MAX_SIDE / longest);
        dw = dw ? dw : 1;
        dh = dh ? dh : 1;
        small = malloc((size_t)dw * dh * 3);
        if (!small)
            goto done;
        rgb_reduce(rgb, w, h, small, dw, dh);
    }
    if (segloss_png_encode(small ? small : rgb, dw, dh, 3, &png, out_len, detail, sizeof detail) !=
        0)
        png = NULL;
done:
    free(rgb);
    free(small);
    return png;
}

int overlay_items_build(const uint16_t *argmax, const segloss_tensor *labels, size_t num_classes,
                        const segloss_limits *limits, const void *const *images,
                        const size_t *image_lens, size_t image_count, overlay_items *out, char *err,
                        size_t err_len)
{
    segloss_limits fallback;
    limits = limits_or_default(limits, &fallback);
    memset(out, 0, sizeof *out);
    if (!argmax || !labels || (labels->rank != 2 && labels->rank != 3))
        return detail_fail(err, err_len, SEGLOSS_EINVAL,
                           "overlay items need the arg-max map and labels");
    size_t n = labels->rank == 3 ? labels->shape[0] : 1;
    size_t h = labels->shape[labels->rank - 2], w = labels->shape[labels->rank - 1];
    size_t plane = h * w;
    uint16_t *truth = malloc(plane * sizeof *truth + 1);
    out->items = calloc(n ? n : 1, sizeof *out->items);
    out->owned = calloc(3 * (n ? n : 1), sizeof *out->owned);
    out->count = n;
    int rc = 0;
    if (!truth || !out->items || !out->owned) {
        rc = detail_fail(err, err_len, SEGLOSS_ENOMEM, "out of memory keeping overlay data");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        store_item *it = &out->items[i];
        for (size_t p = 0; p < plane; p++)
            truth[p] = (uint16_t)label_at(labels, i * plane + p, num_classes);
        rc = overlay_encode_classmap(argmax + i * plane, (uint32_t)w, (uint32_t)h, num_classes,
                                     &out->owned[3 * i], &it->prediction_len, err, err_len);
        if (!rc)
            rc = overlay_encode_classmap(truth, (uint32_t)w, (uint32_t)h, num_classes,
                                         &out->owned[3 * i + 1], &it->labels_len, err, err_len);
        if (rc)
            goto done;
        it->prediction = out->owned[3 * i];
        it->labels = out->owned[3 * i + 1];
        if (images && i < image_count) {
            out->owned[3 * i + 2] =
                image_for_store(images[i], image_lens[i], limits, &it->image_len);
            it->image = out->owned[3 * i + 2];
        }
    }
done:
    free(truth);
    if (rc)
        overlay_items_free(out);
    return rc;
}

void overlay_items_free(overlay_items *items)
{
    if (!items)
        return;
    for (size_t i = 0; items->owned && i < 3 * items->count; i++)
        free(items->owned[i]);
    free(items->owned);
    free(items->items);
    memset(items, 0, sizeof *items);
}

/* --- drawing -------------------------------------------------------------------------------- */

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column. */
static const struct glyph {
    char ch;
    uint8_t rows[7];
} font[] = {
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
};

typedef struct canvas {
    uint8_t *px;
    size_t w, h;
} canvas;

static void put(canvas *c, size_t x, size_t y, const uint8_t rgb[3])
{
    if (x < c->w && y < c->h)
        memcpy(c->px + (y * c->w + x) * 3, rgb, 3);
}

/* Text clipped to max_x; unknown characters are blanks. */
static void draw_text(canvas *c, size_t x, size_t y, size_t max_x, const char *text,
                      const uint8_t rgb[3])
{
    for (; *text; text++, x += 6 * OVERLAY_FONT_SCALE) {
        const struct glyph *g = NULL;
        for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
            if (font[i].ch == *text)
                g = &font[i];
        if (x + 5 * OVERLAY_FONT_SCALE > max_x)
            return;
        if (!g)
            continue;
        for (size_t row = 0; row < 7; row++)
            for (size_t col = 0; col < 5; col++)
                if (g->rows[row] >> (4 - col) & 1)
                    for (size_t dy = 0; dy < OVERLAY_FONT_SCALE; dy++)
                        for (size_t dx = 0; dx < OVERLAY_FONT_SCALE; dx++)
                            put(c, x + col * OVERLAY_FONT_SCALE + dx,
                                y + row * OVERLAY_FONT_SCALE + dy, rgb);
    }
}

static void blend(uint8_t out[3], const uint8_t base[3], const uint8_t over[3], double a)
{
    for (int i = 0; i < 3; i++)
        out[i] = (uint8_t)lround(base[i] * (1.0 - a) + over[i] * a);
}

/* The "ignored" pattern: dark diagonal stripes. */
static void hatch(uint8_t out[3], size_t x, size_t y)
{
    uint8_t v = ((x + y) / 5) % 2 ? 62 : 40;
    out[0] = out[1] = out[2] = v;
}

/* Bilinear sample of packed RGB at the centre of output pixel (x, y) of an ow x oh grid. */
static void sample_bilinear(const uint8_t *img, uint32_t iw, uint32_t ih, size_t x, size_t y,
                            size_t ow, size_t oh, uint8_t out[3])
{
    double fx = ((double)x + 0.5) * iw / (double)ow - 0.5;
    double fy = ((double)y + 0.5) * ih / (double)oh - 0.5;
    fx = fx < 0 ? 0 : fx > iw - 1 ? iw - 1 : fx;
    fy = fy < 0 ? 0 : fy > ih - 1 ? ih - 1 : fy;
    size_t x0 = (size_t)fx, y0 = (size_t)fy;
    size_t x1 = x0 + 1 < iw ? x0 + 1 : x0, y1 = y0 + 1 < ih ? y0 + 1 : y0;
    double ax = fx - (double)x0, ay = fy - (double)y0;
    for (int ch = 0; ch < 3; ch++) {
        double top = img[(y0 * iw + x0) * 3 + (size_t)ch] * (1 - ax) +
                     img[(y0 * iw + x1) * 3 + (size_t)ch] * ax;
        double bottom = img[(y1 * iw + x0) * 3 + (size_t)ch] * (1 - ax) +
                        img[(y1 * iw + x1) * 3 + (size_t)ch] * ax;
        out[ch] = (uint8_t)lround(top * (1 - ay) + bottom * ay);
    }
}

typedef struct panel_geometry {
    size_t mw, mh; /* mask */
    size_t pw, ph; /* panel */
} panel_geometry;

static size_t mask_index(const panel_geometry *g, size_t x, size_t y)
{
    size_t mx = x * g->mw / g->pw, my = y * g->mh / g->ph;
    return my * g->mw + mx;
}

/* Whether the class at panel pixel (x, y) differs from its right or lower neighbour's. */
static int is_border(const panel_geometry *g, const uint16_t *map, size_t x, size_t y)
{
    uint16_t k = map[mask_index(g, x, y)];
    return (x + 1 < g->pw && map[mask_index(g, x + 1, y)] != k) ||
           (y + 1 < g->ph && map[mask_index(g, x, y + 1)] != k);
}

int overlay_render(const store_item *item, size_t num_classes, const segloss_limits *limits,
                   uint8_t **png, size_t *png_len, char *err, size_t err_len)
{
    uint16_t *pred = NULL, *truth = NULL;
    uint8_t *image = NULL, *base = NULL;
    canvas cv = {0};
    uint32_t pw32, ph32, tw, th, iw = 0, ih = 0;
    segloss_limits fallback;
    const segloss_limits lim = *limits_or_default(limits, &fallback);
    *png = NULL;
    *png_len = 0;
    int rc = overlay_decode_classmap(item->prediction, item->prediction_len, num_classes, &lim,
                                     &pred, &pw32, &ph32, err, err_len);
    if (!rc)
        rc = overlay_decode_classmap(item->labels, item->labels_len, num_classes, &lim, &truth, &tw,
                                     &th, err, err_len);
    if (rc)
        goto done;
    if (tw != pw32 || th != ph32 || !tw || !th) {
        rc = detail_fail(err, err_len, SEGLOSS_EFORMAT,
                         "stored prediction and labels differ in size");
        goto done;
    }
    if (item->image && item->image_len) {
        char detail[256];
        if (segloss_image_decode_rgb(item->image, item->image_len, &lim, &image, &iw, &ih, detail,
                                     sizeof detail) != 0)
            image = NULL; /* draw on black rather than fail */
    }

    panel_geometry g = {.mw = tw, .mh = th};
    size_t longest = tw > th ? tw : th;
    if (longest < OVERLAY_PANEL_MIN) {
        size_t f = (OVERLAY_PANEL_MIN + longest - 1) / longest;
        if (f * longest > OVERLAY_PANEL_MAX)
            f = OVERLAY_PANEL_MAX / longest;
        f = f ? f : 1;
        g.pw = tw * f;
        g.ph = th * f;
    } else if (longest > OVERLAY_PANEL_MAX) {
        g.pw = tw * OVERLAY_PANEL_MAX / longest;
        g.ph = th * OVERLAY_PANEL_MAX / longest;
    } else {
        g.pw = tw;
        g.ph = th;
    }
    g.pw = g.pw ? g.pw : 1;
    g.ph = g.ph ? g.ph : 1;

    cv.w = 3 * g.pw + 4 * OVERLAY_MARGIN;
    cv.h = OVERLAY_CAPTION_H + g.ph + OVERLAY_MARGIN;
    cv.px = malloc(cv.w * cv.h * 3);
    base = malloc(g.pw * g.ph * 3);
    if (!cv.px || !base) {
        rc = detail_fail(err, err_len, SEGLOSS_ENOMEM, "out of memory drawing an overlay");
        goto done;
    }
    for (size_t i = 0; i < cv.w * cv.h; i++)
        memcpy(cv.px + i * 3, background_rgb, 3);
    for (size_t y = 0; y < g.ph; y++)
        for (size_t x = 0; x < g.pw; x++) {
            uint8_t *b = base + (y * g.pw + x) * 3;
            if (image)
                sample_bilinear(image, iw, ih, x, y, g.pw, g.ph, b);
            else
                b[0] = b[1] = b[2] = 0;
        }

    /* Borders help on real masks; on speckled ones (a random test mask, an untrained net)
     * they would turn into a grid, so they are drawn only when regions are large. */
    size_t edges_t = 0, edges_p = 0;
    for (size_t y = 0; y < th; y++)
        for (size_t x = 0; x < tw; x++) {
            size_t i = y * tw + x;
            edges_t += (x + 1 < tw && truth[i + 1] != truth[i]) ||
                       (y + 1 < th && truth[i + tw] != truth[i]);
            edges_p +=
                (x + 1 < tw && pred[i + 1] != pred[i]) || (y + 1 < th && pred[i + tw] != pred[i]);
        }
    size_t max_edges = (size_t)tw * th / OVERLAY_BORDER_MAX_FRACTION;
    int borders_t = edges_t <= max_edges, borders_p = edges_p <= max_edges;

    uint64_t valid = 0, wrong = 0;
    size_t top = OVERLAY_CAPTION_H;
    for (size_t y = 0; y < g.ph; y++)
        for (size_t x = 0; x < g.pw; x++) {
            size_t m = mask_index(&g, x, y);
            size_t kt = truth[m], kp = pred[m] > num_classes ? num_classes : pred[m];
            int ignored = kt >= num_classes;
            const uint8_t *b = base + (y * g.pw + x) * 3;
            uint8_t color[3], out[3];
            double alpha = image ? OVERLAY_CLASS_ALPHA : 1.0;

            /* ground truth */
            if (ignored) {
                hatch(out, x, y);
            } else {
                overlay_class_color(kt, color);
                if (kt == 0 && image)
                    memcpy(out, b, 3);
                else
                    blend(out, b, color, alpha);
                if (borders_t && is_border(&g, truth, x, y))
                    blend(out, out, border_rgb, OVERLAY_BORDER_ALPHA);
            }
            put(&cv, OVERLAY_MARGIN + x, top + y, out);

            /* prediction: where the truth is ignored, shown through the hatch */
            overlay_class_color(kp, color);
            if (kp == 0 && image)
                memcpy(out, b, 3);
            else
                blend(out, b, color, alpha);
            if (borders_p && is_border(&g, pred, x, y))
                blend(out, out, border_rgb, OVERLAY_BORDER_ALPHA);
            if (ignored) {
                uint8_t h3[3];
                hatch(h3, x, y);
                blend(out, out, h3, 0.65);
            }
            put(&cv, 2 * OVERLAY_MARGIN + g.pw + x, top + y, out);

            /* errors */
            uint8_t gray = image ? (uint8_t)((b[0] * 30 + b[1] * 59 + b[2] * 11) / 200) : 20;
            uint8_t dim[3] = {gray, gray, gray};
            if (ignored) {
                hatch(out, x, y);
            } else if (kp != kt) {
                memcpy(out, error_rgb, 3);
            } else {
                overlay_class_color(kt, color);
                if (kt == 0)
                    memcpy(out, dim, 3);
                else
                    blend(out, dim, color, OVERLAY_CORRECT_ALPHA);
            }
            put(&cv, 3 * OVERLAY_MARGIN + 2 * g.pw + x, top + y, out);
        }
    /* the error rate counts mask pixels, not panel pixels */
    for (size_t i = 0; i < (size_t)tw * th; i++)
        if (truth[i] < num_classes) {
            valid++;
            wrong += pred[i] != truth[i];
        }

    char caption[32];
    size_t ty = (OVERLAY_CAPTION_H - 7 * OVERLAY_FONT_SCALE) / 2;
    draw_text(&cv, OVERLAY_MARGIN + 2, ty, OVERLAY_MARGIN + g.pw, "GROUND TRUTH", caption_rgb);
    draw_text(&cv, 2 * OVERLAY_MARGIN + g.pw + 2, ty, 2 * OVERLAY_MARGIN + 2 * g.pw, "PREDICTION",
              caption_rgb);
    if (valid)
        snprintf(caption, sizeof caption, "ERRORS %.1f%%", 100.0 * (double)wrong / (double)valid);
    else
        snprintf(caption, sizeof caption, "ERRORS -");
    draw_text(&cv, 3 * OVERLAY_MARGIN + 2 * g.pw + 2, ty, 3 * OVERLAY_MARGIN + 3 * g.pw, caption,
              error_rgb);

    rc = segloss_png_encode(cv.px, (uint32_t)cv.w, (uint32_t)cv.h, 3, png, png_len, err, err_len);
done:
    free(pred);
    free(truth);
    free(image);
    free(base);
    free(cv.px);
    return rc;
}
