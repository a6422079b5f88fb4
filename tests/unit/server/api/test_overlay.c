/*
 * test_overlay.c - class maps as PNGs (8-bit and the split 16-bit form), the items kept for a
 * batch (labels of every dtype, images kept or reduced), and the rendered overlay: its layout,
 * palette colours, red errors, hatched ignored pixels, blending over an image.
 *
 * Writes build/tests/artifacts/overlay_*.png (BUILD may change build/) for a person to look at.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/overlay.h"
#include "golden_case.h"
#include "segloss/segloss.h"
#include "testing.h"

static void save_artifact(const char *name, const uint8_t *png, size_t len)
{
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char path[512];
    snprintf(path, sizeof path, "%s/tests/artifacts", build);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/tests/artifacts/%s", build, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(png, 1, len, f);
        fclose(f);
    }
}

static void test_palette(void)
{
    uint8_t rgb[3];
    overlay_class_color(0, rgb);
    CHECK(rgb[0] == 0 && rgb[1] == 0 && rgb[2] == 0);
    overlay_class_color(1, rgb);
    CHECK(rgb[0] == 128 && rgb[1] == 0 && rgb[2] == 0);
    overlay_class_color(15, rgb); /* person */
    CHECK(rgb[0] == 192 && rgb[1] == 128 && rgb[2] == 128);
    overlay_class_color(700, rgb);
    CHECK(rgb[0] || rgb[1] || rgb[2]);
}

static void roundtrip(size_t c)
{
    uint16_t map[6 * 5];
    for (size_t i = 0; i < 30; i++)
        map[i] = (uint16_t)(i * 37 % (c + 1));
    map[3] = (uint16_t)(c + 50); /* beyond C: stored as ignored */
    uint8_t *png = NULL;
    size_t len = 0;
    char err[256];
    CHECK(overlay_encode_classmap(map, 6, 5, c, &png, &len, err, sizeof err) == 0);
    uint16_t *back = NULL;
    uint32_t w = 0, h = 0;
    CHECK(overlay_decode_classmap(png, len, c, NULL, &back, &w, &h, err, sizeof err) == 0);
    CHECK(w == 6 && h == 5);
    for (size_t i = 0; back && i < 30; i++)
        CHECK_MSG(back[i] == (i == 3 ? c : map[i]), "C=%zu pixel %zu: %u", c, i, back[i]);
    free(png);
    free(back);
}

static void test_classmap_roundtrip(void)
{
    roundtrip(2);
    roundtrip(21);
    roundtrip(255);
    roundtrip(256);
    roundtrip(1024);
}

/* A 3-class 20x12 case: left half class 1, right half class 2, a band ignored, a wrong box. */
static void make_maps(uint16_t *pred, int32_t *labels)
{
    for (int y = 0; y < 12; y++)
        for (int x = 0; x < 20; x++) {
            int i = y * 20 + x;
            labels[i] = x < 10 ? 1 : 2;
            if (y == 11)
                labels[i] = y == 11 && x < 5 ? -1 : 255;
            pred[i] = (uint16_t)(x < 10 ? 1 : 2);
            if (x >= 2 && x < 6 && y >= 2 && y < 6)
                pred[i] = 0;
        }
}

static void pixel(const uint8_t *rgb, uint32_t w, size_t x, size_t y, uint8_t out[3])
{
    memcpy(out, rgb + (y * w + x) * 3, 3);
}

static void test_render_without_image(void)
{
    uint16_t pred[240];
    int32_t labels[240];
    make_maps(pred, labels);
    segloss_tensor lt = {.data = labels, .dtype = SEGLOSS_I32, .rank = 3, .shape = {1, 12, 20}};
    overlay_items items;
    char err[256];
    CHECK(overlay_items_build(pred, &lt, 3, NULL, NULL, NULL, 0, &items, err, sizeof err) == 0);
    CHECK(items.count == 1 && items.items[0].image == NULL);
    uint8_t *png = NULL;
    size_t len = 0;
    CHECK(overlay_render(&items.items[0], 3, NULL, &png, &len, err, sizeof err) == 0);
    segloss_limits lim;
    segloss_limits_default(&lim);
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    CHECK(png && segloss_image_decode_rgb(png, len, &lim, &rgb, &w, &h, err, sizeof err) == 0);
    /* 20x12 grows by 13 to 260x156 per panel: 3 panels, 4 margins; caption and bottom margin */
    CHECK_EQ_INT(w, 3 * 260 + 4 * 6);
    CHECK_EQ_INT(h, 7 * 2 + 10 + 156 + 6);
    if (rgb && w == 3 * 260 + 24) {
        size_t top = 24, f = 13;
        uint8_t p[3];
        /* ground truth, class 1 inside the left half: VOC maroon */
        pixel(rgb, w, 6 + 4 * f + 3, top + 8 * f + 3, p);
        CHECK(p[0] == 128 && p[1] == 0 && p[2] == 0);
        /* prediction, the wrong box (class 0): black */
        pixel(rgb, w, 6 + 260 + 6 + 3 * f + 3, top + 3 * f + 3, p);
        CHECK(p[0] == 0 && p[1] == 0 && p[2] == 0);
        /* errors: the wrong box is red */
        pixel(rgb, w, 6 + 2 * (260 + 6) + 3 * f + 3, top + 3 * f + 3, p);
        CHECK(p[0] == 235 && p[1] == 45 && p[2] == 45);
        /* errors: a correct pixel is not red */
        pixel(rgb, w, 6 + 2 * (260 + 6) + 15 * f + 3, top + 8 * f + 3, p);
        CHECK(!(p[0] == 235 && p[1] == 45));
        /* ignored row: grey hatch in the truth and error panels, the prediction dimmed */
        for (int panel = 0; panel < 3; panel += 2) {
            pixel(rgb, w, 6 + (size_t)panel * (260 + 6) + 12 * f + 3, top + 11 * f + 5, p);
            CHECK(p[0] == p[1] && p[1] == p[2] && p[0] >= 30 && p[0] <= 70);
        }
        pixel(rgb, w, 6 + 266 + 12 * f + 3, top + 11 * f + 5, p);
        CHECK(p[0] < 100 && p[1] < 100 && p[2] < 100);
        /* the error caption is drawn in red somewhere in the caption strip */
        int red = 0;
        for (size_t x = 6 + 2 * 266; x < w; x++)
            for (size_t y = 0; y < top; y++) {
                pixel(rgb, w, x, y, p);
                red |= p[0] == 235 && p[1] == 45;
            }
        CHECK(red);
    }
    save_artifact("overlay_no_image.png", png, len);
    free(rgb);
    free(png);
    overlay_items_free(&items);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len);
    if (buf && fread(buf, 1, *len, f) != *len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static void test_images_kept_or_reduced(void)
{
    uint16_t pred[240];
    int32_t labels[240];
    make_maps(pred, labels);
    int32_t labels2[480];
    uint16_t pred2[480];
    memcpy(labels2, labels, sizeof labels);
    memcpy(labels2 + 240, labels, sizeof labels);
    memcpy(pred2, pred, sizeof pred);
    memcpy(pred2 + 240, pred, sizeof pred);
    segloss_tensor lt = {.data = labels2, .dtype = SEGLOSS_I32, .rank = 3, .shape = {2, 12, 20}};
    size_t jpeg_len = 0;
    uint8_t *jpeg = read_file("tests/fuzz/corpus/jpeg/baseline420_24x16.jpg", &jpeg_len);
    CHECK(jpeg != NULL);
    /* a big PNG photo stand-in: 1200x700 gradient */
    uint32_t bw = 1200, bh = 700;
    uint8_t *big = malloc((size_t)bw * bh * 3), *big_png = NULL;
    size_t big_len = 0;
    char err[256];
    for (size_t i = 0; big && i < (size_t)bw * bh; i++) {
        big[3 * i] = (uint8_t)(i % bw * 255 / bw);
        big[3 * i + 1] = (uint8_t)(i / bw * 255 / bh);
        big[3 * i + 2] = 90;
    }
    CHECK(big && segloss_png_encode(big, bw, bh, 3, &big_png, &big_len, err, sizeof err) == 0);
    const void *images[2] = {jpeg, big_png};
    size_t lens[2] = {jpeg_len, big_len};
    overlay_items items;
    CHECK(overlay_items_build(pred2, &lt, 3, NULL, images, lens, 2, &items, err, sizeof err) == 0);
    if (items.count == 2) {
        /* the small JPEG as sent */
        CHECK(items.items[0].image_len == jpeg_len &&
              memcmp(items.items[0].image, jpeg, jpeg_len) == 0);
        /* the big image reduced to 512 on its longest side */
        segloss_limits lim;
        segloss_limits_default(&lim);
        uint8_t *rgb = NULL;
        uint32_t w = 0, h = 0;
        CHECK(items.items[1].image &&
              segloss_image_decode_rgb(items.items[1].image, items.items[1].image_len, &lim, &rgb,
                                       &w, &h, err, sizeof err) == 0);
        CHECK(w == 512 && h == 298);
        free(rgb);
        uint8_t *png = NULL;
        size_t len = 0;
        CHECK(overlay_render(&items.items[1], 3, NULL, &png, &len, err, sizeof err) == 0);
        save_artifact("overlay_big_image.png", png, len);
        free(png);
    }
    overlay_items_free(&items);
    /* an image that does not decode is left out, the rest is kept */
    const void *junk[1] = {"not an image"};
    size_t junk_len[1] = {12};
    CHECK(overlay_items_build(pred2, &lt, 3, NULL, junk, junk_len, 1, &items, err, sizeof err) ==
          0);
    CHECK(items.count == 2 && items.items[0].image == NULL && items.items[0].labels != NULL);
    overlay_items_free(&items);
    free(jpeg);
    free(big);
    free(big_png);
}

/* The golden VOC case, drawn over a synthetic photo: the picture a person checks by eye. */
static void test_render_golden_over_image(void)
{
    golden_case g;
    if (golden_load("tests/golden/voc_palette_weighted", &g) != 0) {
        CHECK(0);
        return;
    }
    segloss_ctx *ctx = NULL;
    CHECK(segloss_ctx_new(&ctx, 1, SEGLOSS_KERNEL_AUTO) == 0);
    size_t n = g.logits.shape[0], h = g.labels.shape[1], w = g.labels.shape[2];
    uint16_t *argmax = malloc(n * h * w * sizeof *argmax);
    segloss_result *r = NULL;
    char err[256];
    CHECK(segloss_evaluate_with_argmax(ctx, &g.logits, &g.labels, &g.params.loss, argmax, &r, err,
                                       sizeof err) == 0);
    /* a 300x300 "photo": sky, ground and a sun */
    uint32_t iw = 300, ih = 300;
    uint8_t *img = malloc((size_t)iw * ih * 3), *png_img = NULL;
    size_t png_img_len = 0;
    for (uint32_t y = 0; y < ih; y++)
        for (uint32_t x = 0; x < iw; x++) {
            uint8_t *p = img + ((size_t)y * iw + x) * 3;
            int dx = (int)x - 210, dy = (int)y - 80;
            if (dx * dx + dy * dy < 900) {
                p[0] = 250, p[1] = 220, p[2] = 90;
            } else if (y < 170) {
                p[0] = (uint8_t)(90 + y / 3), p[1] = (uint8_t)(150 + y / 4), p[2] = 230;
            } else {
                p[0] = (uint8_t)(70 + x / 6), p[1] = (uint8_t)(110 + (x * y) % 30), p[2] = 60;
            }
        }
    CHECK(segloss_png_encode(img, iw, ih, 3, &png_img, &png_img_len, err, sizeof err) == 0);
    const void *images[1] = {png_img};
    size_t lens[1] = {png_img_len};
    overlay_items items;
    CHECK(overlay_items_build(argmax, &g.labels, g.logits.shape[1], NULL, images, lens, 1, &items,
                              err, sizeof err) == 0);
    for (size_t i = 0; i < items.count; i++) {
        uint8_t *png = NULL;
        size_t len = 0;
        CHECK(overlay_render(&items.items[i], g.logits.shape[1], NULL, &png, &len, err,
                             sizeof err) == 0);
        char name[64];
        snprintf(name, sizeof name, "overlay_golden_%zu%s.png", i, i < 1 ? "_image" : "");
        if (png)
            save_artifact(name, png, len);
        free(png);
    }
    CHECK(items.count == n && items.items[0].image != NULL && items.items[1].image == NULL);
    overlay_items_free(&items);
    segloss_result_free(r);
    segloss_ctx_free(ctx);
    free(argmax);
    free(img);
    free(png_img);
    golden_free(&g);
}

/* A smooth scene (sky, road, a car, a person, a dog) and a prediction that is a bit off. */
static void test_render_scene(void)
{
    enum { W = 160, H = 96, C = 21 };
    static uint16_t pred[W * H];
    static uint8_t truth[W * H], img[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int i = y * W + x;
            uint8_t k = 0;
            uint8_t *p = img + (size_t)i * 3;
            p[0] = (uint8_t)(120 + y), p[1] = (uint8_t)(160 + y / 2), p[2] = 220;
            if (y > 60) {
                p[0] = p[1] = p[2] = (uint8_t)(90 + (x * 7 + y * 3) % 20);
            }
            if (x > 20 && x < 75 && y > 45 && y < 80) { /* car */
                k = 7;
                p[0] = 200, p[1] = 40, p[2] = 40;
            }
            int dx = x - 110, dy = y - 50;
            if ((dx * dx) / 4 + dy * dy / 9 < 60) { /* person */
                k = 15;
                p[0] = 230, p[1] = 190, p[2] = 150;
            }
            if (x > 130 && x < 150 && y > 70 && y < 86) { /* dog */
                k = 12;
                p[0] = 150, p[1] = 100, p[2] = 60;
            }
            if ((k == 7 || k == 15) && (x + y) % 37 == 0)
                k = 255; /* a few void pixels, as VOC draws them along edges */
            truth[i] = k;
            uint16_t q = k == 255 ? (uint16_t)(x < 75 ? 7 : 15) : k;
            if (x > 20 && x < 28 && y > 45 && y < 80)
                q = 0; /* missed the car's back */
            if (x > 146 && x < 156 && y > 66 && y < 90)
                q = 8; /* dog bleeds into a cat */
            pred[i] = q;
        }
    uint8_t *png_img = NULL;
    size_t png_img_len = 0;
    char err[256];
    CHECK(segloss_png_encode(img, W, H, 3, &png_img, &png_img_len, err, sizeof err) == 0);
    segloss_tensor lt = {.data = truth, .dtype = SEGLOSS_U8, .rank = 2, .shape = {H, W}};
    const void *images[1] = {png_img};
    size_t lens[1] = {png_img_len};
    overlay_items items;
    CHECK(overlay_items_build(pred, &lt, C, NULL, images, lens, 1, &items, err, sizeof err) == 0);
    for (int with_image = 0; with_image < 2 && items.count == 1; with_image++) {
        store_item it = items.items[0];
        if (!with_image)
            it.image = NULL;
        uint8_t *png = NULL;
        size_t len = 0;
        CHECK(overlay_render(&it, C, NULL, &png, &len, err, sizeof err) == 0);
        save_artifact(with_image ? "overlay_scene_image.png" : "overlay_scene.png", png, len);
        free(png);
    }
    overlay_items_free(&items);
    free(png_img);
}

static void test_render_refuses_mismatch(void)
{
    uint16_t a[4] = {0, 1, 1, 0}, b[6] = {0, 1, 1, 0, 0, 0};
    uint8_t *pa = NULL, *pb = NULL, *png = NULL;
    size_t la, lb, len;
    char err[256];
    CHECK(overlay_encode_classmap(a, 2, 2, 2, &pa, &la, err, sizeof err) == 0);
    CHECK(overlay_encode_classmap(b, 3, 2, 2, &pb, &lb, err, sizeof err) == 0);
    store_item it = {.prediction = pa, .prediction_len = la, .labels = pb, .labels_len = lb};
    CHECK(overlay_render(&it, 2, NULL, &png, &len, err, sizeof err) != 0);
    CHECK(png == NULL);
    it.labels = (const uint8_t *)"junk";
    it.labels_len = 4;
    CHECK(overlay_render(&it, 2, NULL, &png, &len, err, sizeof err) != 0);
    free(pa);
    free(pb);
}

int main(void)
{
    (void)golden_for_each; /* golden_case.h helpers this file does not need */
    (void)golden_compare;
    RUN(test_palette);
    RUN(test_classmap_roundtrip);
    RUN(test_render_without_image);
    RUN(test_images_kept_or_reduced);
    RUN(test_render_golden_over_image);
    RUN(test_render_scene);
    RUN(test_render_refuses_mismatch);
    return TESTS_DONE();
}
