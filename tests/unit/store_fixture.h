/*
 * store_fixture.h - what the runs-store tests share: a scratch data directory and synthetic
 * evaluations recorded the way the daemon records them (evaluate with the arg-max map, write the
 * answer with result_json, keep the overlay items).
 */
#ifndef SEGLOSS_TESTS_STORE_FIXTURE_H
#define SEGLOSS_TESTS_STORE_FIXTURE_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "api/overlay.h"
#include "api/result_json.h"
#include "base/ids.h"
#include "segloss/segloss.h"
#include "service/params.h"
#include "service/store_finalize.h"
#include "store/store.h"

/* A new empty directory under /tmp; the path is written into dir (at least 64 bytes). */
static inline int fixture_tmpdir(char *dir)
{
    strcpy(dir, "/tmp/segloss_store_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes the files of a scratch directory and the directory. */
static inline void fixture_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static inline int64_t fixture_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Seeds from here on make batches whose every pixel is ignored (undefined CE: null). */
#define FIXTURE_ALL_IGNORED ((uint64_t)1 << 40)

typedef struct fixture_eval {
    char id[IDS_LEN + 1];
    float *logits;
    uint8_t *labels;
    uint16_t *argmax;
    segloss_tensor logits_view, labels_view;
    params_request params;
    segloss_result *result;
    char *answer;
    size_t answer_len;
    overlay_items items;
    store_evaluation ev;
} fixture_eval;

static inline void fixture_eval_free(fixture_eval *f)
{
    free(f->logits);
    free(f->labels);
    free(f->argmax);
    params_free(&f->params);
    segloss_result_free(f->result);
    free(f->answer);
    overlay_items_free(&f->items);
    memset(f, 0, sizeof *f);
}

/* A 64-bit LCG, so the same seed always gives the same batch. */
static inline uint32_t fixture_rand(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*state >> 33);
}

/*
 * Fills f with a synthetic batch (n, c, h, w), evaluates it and prepares f->ev for run, split
 * and step. About 1 pixel in 10 is ignored (255). Logits lean towards the label so metrics are
 * not trivial. Returns 0 or -1.
 */
static inline int fixture_eval_make(segloss_ctx *ctx, fixture_eval *f, uint64_t seed, size_t n,
                                    size_t c, size_t h, size_t w, const char *run,
                                    const char *split, int64_t step)
{
    memset(f, 0, sizeof *f);
    params_init(&f->params);
    size_t plane = h * w;
    f->logits = malloc(n * c * plane * sizeof *f->logits);
    f->labels = malloc(n * plane);
    f->argmax = malloc(n * plane * sizeof *f->argmax);
    if (!f->logits || !f->labels || !f->argmax)
        return -1;
    uint64_t st = seed * 2654435761u + 1;
    for (size_t i = 0; i < n * plane; i++) {
        uint32_t r = fixture_rand(&st);
        f->labels[i] = r % 10 == 0 || seed >= FIXTURE_ALL_IGNORED ? 255 : (uint8_t)((r >> 8) % c);
    }
    for (size_t b = 0; b < n; b++)
        for (size_t k = 0; k < c; k++)
            for (size_t p = 0; p < plane; p++) {
                float v = (float)(fixture_rand(&st) % 2000) / 500.0f - 2.0f;
                if (f->labels[b * plane + p] == k)
                    v += 1.5f;
                f->logits[(b * c + k) * plane + p] = v;
            }
    f->logits_view =
        (segloss_tensor){.data = f->logits, .dtype = SEGLOSS_F32, .rank = 4, .shape = {n, c, h, w}};
    f->labels_view =
        (segloss_tensor){.data = f->labels, .dtype = SEGLOSS_U8, .rank = 3, .shape = {n, h, w}};
    char detail[256];
    if (segloss_evaluate_with_argmax(ctx, &f->logits_view, &f->labels_view, &f->params.loss,
                                     f->argmax, &f->result, detail, sizeof detail) != 0) {
        fprintf(stderr, "fixture: %s\n", detail);
        return -1;
    }
    ids_new(f->id);
    result_timing timing = {1, 1, 2};
    f->answer = result_json(f->result, &f->params, f->id, &timing, &f->answer_len);
    if (!f->answer || overlay_items_build(f->argmax, &f->labels_view, c, NULL, NULL, NULL, 0,
                                          &f->items, detail, sizeof detail) != 0)
        return -1;
    f->ev = (store_evaluation){
        .id = f->id,
        .timestamp_ms = fixture_now_ms(),
        .run = run,
        .split = split,
        .step = step,
        .n = n,
        .c = c,
        .h = h,
        .w = w,
        .loss = &f->params.loss,
        .stats = f->result->stats,
        .answer_json = f->answer,
        .answer_len = f->answer_len,
        .items = f->items.items,
        .item_count = f->items.count,
    };
    return 0;
}

/* Makes and records one synthetic evaluation; returns the store's answer (0 = recorded). */
static inline int fixture_record(store *s, segloss_ctx *ctx, uint64_t seed, size_t c,
                                 const char *run, const char *split, int64_t step, char *id_out)
{
    fixture_eval f;
    char err[512];
    int rc = fixture_eval_make(ctx, &f, seed, 1, c, 8, 8, run, split, step);
    if (rc == 0) {
        rc = store_record(s, &f.ev, err, sizeof err);
        if (rc)
            fprintf(stderr, "  record: %s\n", err);
        if (id_out)
            strcpy(id_out, f.id);
    }
    fixture_eval_free(&f);
    return rc;
}

#endif
