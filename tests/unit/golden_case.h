/*
 * golden_case.h - loads a golden case folder (tests/golden/README.md) into tensors and params
 * through the real decoders and the server's params parser, and compares a result with
 * expected.json. Shared by the library's golden test and its properties test.
 */
#ifndef SEGLOSS_TESTS_GOLDEN_CASE_H
#define SEGLOSS_TESTS_GOLDEN_CASE_H

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segloss/segloss.h"
#include "service/params.h"

typedef struct golden_case {
    char name[256];
    void *logits_bytes, *mask_bytes[16], *logits_owned, *labels_owned, *labels_buf;
    size_t logits_len, mask_len[16], masks;
    segloss_tensor logits, labels;
    params_request params;
    cJSON *expected;
} golden_case;

static void *golden_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* 64-byte aligned, as the daemon's part buffers are */
    void *buf = aligned_alloc(64, ((size_t)size + 64) & ~(size_t)63);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static void golden_free(golden_case *g)
{
    free(g->logits_bytes);
    for (size_t i = 0; i < g->masks; i++)
        free(g->mask_bytes[i]);
    free(g->logits_owned);
    free(g->labels_owned);
    free(g->labels_buf);
    params_free(&g->params);
    cJSON_Delete(g->expected);
    memset(g, 0, sizeof *g);
}

/* Returns 0 and a loaded case, or -1 with a message on stderr. */
static int golden_load(const char *dir, golden_case *g)
{
    char path[1024], detail[512];
    segloss_limits lim;
    segloss_limits_default(&lim);
    memset(g, 0, sizeof *g);
    params_init(&g->params);
    const char *slash = strrchr(dir, '/');
    snprintf(g->name, sizeof g->name, "%s", slash ? slash + 1 : dir);

    snprintf(path, sizeof path, "%s/logits.npy", dir);
    g->logits_bytes = golden_read_file(path, &g->logits_len);
    if (!g->logits_bytes) {
        snprintf(path, sizeof path, "%s/logits.safetensors", dir);
        g->logits_bytes = golden_read_file(path, &g->logits_len);
    }
    if (!g->logits_bytes || segloss_logits_decode(g->logits_bytes, g->logits_len, &lim, &g->logits,
                                                  &g->logits_owned, detail, sizeof detail)) {
        fprintf(stderr, "%s: logits: %s\n", g->name, detail);
        return -1;
    }
    snprintf(path, sizeof path, "%s/mask.npy", dir);
    size_t len;
    void *npy = golden_read_file(path, &len);
    if (npy) {
        g->mask_bytes[g->masks] = npy;
        g->mask_len[g->masks++] = len;
        if (segloss_npy_decode(npy, len, SEGLOSS_ROLE_LABELS, &lim, &g->labels, &g->labels_owned,
                               detail, sizeof detail)) {
            fprintf(stderr, "%s: mask.npy: %s\n", g->name, detail);
            return -1;
        }
    } else {
        segloss_png_info info[16];
        int wide = 0;
        for (;;) {
            snprintf(path, sizeof path, "%s/mask_%zu.png", dir, g->masks);
            void *png = golden_read_file(path, &len);
            if (!png)
                break;
            g->mask_bytes[g->masks] = png;
            g->mask_len[g->masks] = len;
            if (segloss_png_mask_probe(png, len, &lim, &info[g->masks], detail, sizeof detail)) {
                fprintf(stderr, "%s: mask %zu: %s\n", g->name, g->masks, detail);
                g->masks++;
                return -1;
            }
            wide |= info[g->masks].bit_depth == 16;
            g->masks++;
        }
        if (!g->masks) {
            fprintf(stderr, "%s: no masks\n", g->name);
            return -1;
        }
        size_t plane = (size_t)info[0].width * info[0].height, esize = wide ? 2 : 1;
        g->labels_buf = malloc(plane * esize * g->masks);
        for (size_t i = 0; i < g->masks; i++)
            if (segloss_png_mask_decode(g->mask_bytes[i], g->mask_len[i], &lim,
                                        wide ? SEGLOSS_U16 : SEGLOSS_U8,
                                        (char *)g->labels_buf + i * plane * esize, plane * esize,
                                        detail, sizeof detail)) {
                fprintf(stderr, "%s: mask %zu: %s\n", g->name, i, detail);
                return -1;
            }
        g->labels = (segloss_tensor){.data = g->labels_buf,
                                     .dtype = wide ? SEGLOSS_U16 : SEGLOSS_U8,
                                     .rank = 3,
                                     .shape = {g->masks, info[0].height, info[0].width}};
    }
    snprintf(path, sizeof path, "%s/params.json", dir);
    char *json = golden_read_file(path, &len);
    int rc = json ? params_set_json(&g->params, json, len, 1 << 16, detail, sizeof detail) : -1;
    free(json);
    if (rc) {
        fprintf(stderr, "%s: params: %s\n", g->name, detail);
        return -1;
    }
    snprintf(path, sizeof path, "%s/expected.json", dir);
    json = golden_read_file(path, &len);
    g->expected = json ? cJSON_ParseWithLength(json, len) : NULL;
    free(json);
    if (!g->expected) {
        fprintf(stderr, "%s: expected.json unreadable\n", g->name);
        return -1;
    }
    return 0;
}

/* The golden tolerance: relative 1e-6, absolute 1e-9 near zero; NaN matches null only. */
static int golden_number_ok(const cJSON *want, double got)
{
    if (cJSON_IsNull(want))
        return got != got;
    if (!cJSON_IsNumber(want) || got != got)
        return 0;
    double w = want->valuedouble;
    return fabs(got - w) <= 1e-6 * fmax(fabs(w), 1e-3);
}

static int golden_count = 0;

static void golden_mismatch(const char *name, const char *what, size_t i, const cJSON *want,
                            double got)
{
    if (golden_count++ < 8)
        fprintf(stderr, "  %s: %s[%zu]: expected %.17g%s, got %.17g\n", name, what, i,
                want ? want->valuedouble : 0.0, cJSON_IsNull(want) ? " (null)" : "", got);
}

static int golden_check_scalar(const char *name, const cJSON *obj, const char *key, double got)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!want)
        return 0;
    if (!golden_number_ok(want, got)) {
        golden_mismatch(name, key, 0, want, got);
        return 1;
    }
    return 0;
}

static int golden_check_array(const char *name, const cJSON *obj, const char *key,
                              const double *got, const uint64_t *got_u, size_t n)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!want)
        return 0;
    if ((size_t)cJSON_GetArraySize(want) != n) {
        fprintf(stderr, "  %s: %s has %d values, result %zu\n", name, key, cJSON_GetArraySize(want),
                n);
        return 1;
    }
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double v = got ? got[i] : (double)got_u[i];
        if (!golden_number_ok(cJSON_GetArrayItem(want, (int)i), v)) {
            golden_mismatch(name, key, i, cJSON_GetArrayItem(want, (int)i), v);
            bad = 1;
        }
    }
    return bad;
}

/* 0 when the result matches expected.json; prints the first mismatches. */
static int golden_compare(const golden_case *g, const segloss_result *r)
{
    const cJSON *e = g->expected;
    const char *n = g->name;
    int bad = 0;
    const cJSON *shape = cJSON_GetObjectItem(e, "shape");
    bad |= golden_check_scalar(n, shape, "n", (double)r->n);
    bad |= golden_check_scalar(n, shape, "c", (double)r->c);
    bad |= golden_check_scalar(n, shape, "h", (double)r->h);
    bad |= golden_check_scalar(n, shape, "w", (double)r->w);
    bad |= golden_check_scalar(n, e, "num_classes", (double)r->num_classes);
    const cJSON *px = cJSON_GetObjectItem(e, "pixels");
    bad |= golden_check_scalar(n, px, "total", (double)r->pixels_total);
    bad |= golden_check_scalar(n, px, "valid", (double)r->pixels_valid);
    bad |= golden_check_scalar(n, px, "ignored", (double)r->pixels_ignored);
    const cJSON *loss = cJSON_GetObjectItem(e, "loss");
    bad |= golden_check_scalar(n, loss, "ce", r->ce);
    bad |= golden_check_scalar(n, loss, "focal", r->focal);
    bad |= golden_check_scalar(n, loss, "dice", r->dice);
    bad |= golden_check_scalar(n, loss, "total", r->total);
    const cJSON *pc = cJSON_GetObjectItem(e, "per_class");
    size_t c = r->num_classes;
    bad |= golden_check_array(n, pc, "dice", r->dice_per_class, NULL, c);
    bad |= golden_check_array(n, pc, "f_score", r->f_score, NULL, c);
    bad |= golden_check_array(n, pc, "iou", r->iou, NULL, c);
    bad |= golden_check_array(n, pc, "precision", r->precision, NULL, c);
    bad |= golden_check_array(n, pc, "recall", r->recall, NULL, c);
    bad |= golden_check_array(n, pc, "support", NULL, r->support, c);
    const cJSON *m = cJSON_GetObjectItem(e, "metrics");
    bad |= golden_check_scalar(n, m, "mean_dice", r->mean_dice);
    bad |= golden_check_scalar(n, m, "f_score", r->mean_f_score);
    bad |= golden_check_scalar(n, m, "miou", r->miou);
    bad |= golden_check_scalar(n, m, "mpa", r->mpa);
    bad |= golden_check_scalar(n, m, "accuracy", r->accuracy);
    const cJSON *cm = cJSON_GetObjectItem(e, "confusion_matrix");
    if (cm) {
        int row_bad = 0;
        for (size_t i = 0; i < c && !row_bad; i++) {
            const cJSON *row = cJSON_GetArrayItem(cm, (int)i);
            for (size_t j = 0; j < c; j++) {
                const cJSON *v = cJSON_GetArrayItem(row, (int)j);
                if (!v || v->valuedouble != (double)r->stats->confusion[i * c + j]) {
                    fprintf(stderr, "  %s: confusion_matrix[%zu][%zu] differs\n", n, i, j);
                    row_bad = 1;
                    break;
                }
            }
        }
        bad |= row_bad;
    }
    return bad;
}

/* Calls fn(dir) for each case folder under root, in name order. Returns the count. */
static int golden_for_each(const char *root, void (*fn)(const char *dir))
{
    struct dirent **names;
    int n = scandir(root, &names, NULL, alphasort), count = 0;
    for (int i = 0; i < n; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]->d_name);
        char probe[1100];
        snprintf(probe, sizeof probe, "%s/expected.json", dir);
        FILE *f = names[i]->d_name[0] != '.' ? fopen(probe, "r") : NULL;
        if (f) {
            fclose(f);
            fn(dir);
            count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

#endif
