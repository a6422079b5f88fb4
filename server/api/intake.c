/*
 * intake.c - mask decoding and per-item evaluation during the upload (see intake.h).
 *
 * One lock (the worker's) guards every intake's shared fields: what the upload thread has
 * published (completed mask parts, logits bytes in) and the flags of the life cycle. The
 * worker decides a step under the lock, runs it without, and records it under the lock again;
 * intake_close waits while a step runs. An intake is freed when its last reference goes: the
 * request's, and the worker's while it is listed.
 */
#include "api/intake.h"

#include "api/evaluate_parts.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Masks followed at most: a batch is at most max_batch items (limits), and beyond that the
 * evaluation refuses the request anyway. */
#define INTAKE_MAX_MASKS 1024

struct intake {
    intake_worker *w;
    int refs;
    bool closed, running, listed, gave_up;
    bool ended; /* the body is complete: no step starts (what is left is the evaluation's, on
                   all the context's threads, so all the intake hands over was done during the
                   upload) */
    intake *next;
    bool want_argmax;
    params_request params; /* the query's; the worker adds the params part's (STEP_PARAMS) */
    size_t max_params_bytes;
    /* published by intake_progress */
    evaluation_blob masks_in[INTAKE_MAX_MASKS];
    size_t masks_complete;
    size_t params_parts;  /* params parts begun (the evaluation refuses a second one) */
    bool params_complete; /* the first one is whole: params_in */
    evaluation_blob params_in;
    const unsigned char *logits; /* the logits part's buffer (fixed), NULL until known */
    size_t logits_len; /* its bytes the parser will not write again (multipart_settled_len) */
    size_t logits_expected;
    /* the worker's */
    bool params_parsed; /* params_in is in params: items are evaluated with it */
    uint8_t *labels[INTAKE_MAX_MASKS];
    size_t masks_decoded;
    segloss_tensor label_array; /* a .npy mask part: all items' labels in place (data set) */
    size_t labelled; /* items whose labels are in: set under the lock after each mask step */
    uint32_t width, height;
    bool layout_known;
    segloss_tensor layout;
    size_t header_bytes, item_bytes;
    segloss_result **items;
    size_t items_done;
    uint16_t *argmax;
    evaluation_prepared prepared;
};

struct intake_worker {
    pthread_mutex_t lock;
    pthread_cond_t wake, idle;
    pthread_t thread;
    bool stop, started;
    intake *head, *tail;
    segloss_ctx *ctx;
    const segloss_limits *limits;
};

static void intake_destroy(intake *in)
{
    for (size_t i = 0; i < in->masks_decoded; i++)
        free(in->labels[i]);
    for (size_t i = 0; i < in->items_done; i++)
        segloss_result_free(in->items[i]);
    free(in->items);
    free(in->argmax);
    params_free(&in->params);
    free(in);
}

/* Drops a reference; the lock is held. Returns the intake to destroy (outside it) or NULL. */
static intake *unref(intake *in)
{
    return --in->refs == 0 ? in : NULL;
}

typedef enum step_kind { STEP_NONE, STEP_PARAMS, STEP_MASK, STEP_ITEM } step_kind;

/* Items may be evaluated with in->params: the body has no params part so far, or it has one and
 * it was parsed before the first item (a params part that comes after an item stops them; the
 * items done are then not handed over, see intake_close). */
static bool params_settled(const intake *in)
{
    return in->params_parts == 0 || (in->params_parts == 1 && in->params_parsed);
}

/* The next step of in, decided under the lock; a .npy header is read here (cheap). */
static step_kind next_step(intake *in)
{
    if (in->closed || in->ended || in->gave_up)
        return STEP_NONE;
    if (in->params_complete && !in->params_parsed && in->items_done == 0)
        return STEP_PARAMS;
    if (in->masks_decoded < in->masks_complete && in->masks_decoded < INTAKE_MAX_MASKS)
        return STEP_MASK;
    if (!in->layout_known && in->logits) {
        size_t total = 0;
        int rc = segloss_npy_probe(in->logits, in->logits_len, SEGLOSS_ROLE_LOGITS, in->w->limits,
                                   &in->header_bytes, &total, &in->layout);
        if (rc == 1)
            return STEP_NONE;
        if (rc != 0 || !in->layout.data || in->layout.rank != 4 || total != in->logits_expected) {
            in->gave_up = true;
            return STEP_NONE;
        }
        in->item_bytes = in->layout.shape[1] * in->layout.shape[2] * in->layout.shape[3] *
                         segloss_dtype_size(in->layout.dtype);
        in->items = calloc(in->layout.shape[0], sizeof *in->items);
        if (!in->items) {
            in->gave_up = true;
            return STEP_NONE;
        }
        in->layout_known = true;
    }
    size_t i = in->items_done;
    if (in->layout_known && params_settled(in) && i < in->layout.shape[0] && i < in->labelled &&
        in->logits_len >= in->header_bytes + (i + 1) * in->item_bytes)
        return STEP_ITEM;
    return STEP_NONE;
}

/* A .npy mask part, the only mask of the body: the (N,H,W) integer labels of every item, used
 * in place (the evaluation decodes the same bytes the same way, with the same limits). false
 * (give up) unless the array can be read in place. */
static bool take_label_array(const intake_worker *w, intake *in, evaluation_blob blob)
{
    size_t header = 0, total = 0;
    segloss_tensor t;
    if (segloss_npy_probe(blob.data, blob.len, SEGLOSS_ROLE_LABELS, w->limits, &header, &total,
                          &t) != 0 ||
        !t.data || t.rank != 3 || total != blob.len || t.shape[1] > UINT32_MAX ||
        t.shape[2] > UINT32_MAX)
        return false;
    in->label_array = t;
    in->height = (uint32_t)t.shape[1];
    in->width = (uint32_t)t.shape[2];
    return true;
}

/* Decodes mask masks_decoded; false (give up) on anything but an 8-bit PNG of the first one's
 * size, or one .npy part alone. Runs without the lock, so it leaves gave_up to the caller, who
 * holds it again. */
static bool decode_mask(intake_worker *w, intake *in, evaluation_blob blob)
{
    segloss_png_info info;
    size_t index = in->masks_decoded;
    uint8_t *labels = NULL;
    segloss_format format = segloss_detect_format(blob.data, blob.len);
    if (in->label_array.data) /* a second mask part after a .npy one: the evaluation's 422 */
        return false;
    if (format == SEGLOSS_FORMAT_NPY && index == 0)
        return take_label_array(w, in, blob);
    if (format != SEGLOSS_FORMAT_PNG ||
        segloss_png_mask_probe(blob.data, blob.len, w->limits, &info, NULL, 0) != 0 ||
        info.bit_depth > 8 || (index > 0 && (info.width != in->width || info.height != in->height)))
        goto fail;
    size_t bytes = (size_t)info.width * info.height;
    labels = malloc(bytes ? bytes : 1);
    if (!labels || segloss_png_mask_decode(blob.data, blob.len, w->limits, SEGLOSS_U8, labels,
                                           bytes, NULL, 0) != 0)
        goto fail;
    in->width = info.width;
    in->height = info.height;
    in->labels[index] = labels;
    return true;
fail:
    free(labels);
    return false;
}

/* Adds the params part to the query's parameters; false (give up: the evaluation answers the
 * error) when it does not parse. Runs without the lock, like decode_mask. */
static bool parse_params(intake *in, evaluation_blob blob)
{
    char detail[128];
    return params_set_json(&in->params, (const char *)blob.data, blob.len, in->max_params_bytes,
                           detail, sizeof detail) == 0;
}

/* Evaluates item items_done on its logits slice and mask; false (give up) on failure. Runs
 * without the lock, like decode_mask. */
static bool evaluate_item(intake_worker *w, intake *in)
{
    size_t i = in->items_done, plane = (size_t)in->width * in->height;
    size_t n = in->layout.shape[0];
    if (in->want_argmax && !in->argmax) {
        in->argmax = malloc(n * plane * sizeof *in->argmax + 1);
        if (!in->argmax)
            goto fail;
    }
    if (params_check_classes(&in->params, in->layout.shape[1], NULL, 0) != 0)
        goto fail;
    segloss_tensor logits = in->layout, labels = {0};
    logits.data = in->logits + in->header_bytes + i * in->item_bytes;
    logits.shape[0] = 1;
    if (in->label_array.data) {
        labels = in->label_array;
        labels.data =
            (const unsigned char *)labels.data + i * plane * segloss_dtype_size(labels.dtype);
    } else {
        labels.data = in->labels[i];
        labels.dtype = SEGLOSS_U8;
        labels.rank = 3;
        labels.shape[1] = in->height;
        labels.shape[2] = in->width;
    }
    labels.shape[0] = 1;
    if (segloss_evaluate_with_argmax(w->ctx, &logits, &labels, &in->params.loss,
                                     in->argmax ? in->argmax + i * plane : NULL, &in->items[i],
                                     NULL, 0) != 0)
        goto fail;
    return true;
fail:
    in->items[i] = NULL;
    return false;
}

/* Appends in to the work list (lock held); the list holds a reference. */
static void list(intake_worker *w, intake *in)
{
    if (in->listed || in->closed)
        return;
    in->listed = true;
    in->refs++;
    in->next = NULL;
    if (w->tail)
        w->tail->next = in;
    else
        w->head = in;
    w->tail = in;
    pthread_cond_signal(&w->wake);
}

static void *worker_main(void *arg)
{
    intake_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        intake *in = w->head;
        if (!in) {
            pthread_cond_wait(&w->wake, &w->lock);
            continue;
        }
        w->head = in->next;
        if (!w->head)
            w->tail = NULL;
        in->listed = false;
        step_kind step = next_step(in);
        if (step != STEP_NONE) {
            evaluation_blob blob = step == STEP_MASK     ? in->masks_in[in->masks_decoded]
                                   : step == STEP_PARAMS ? in->params_in
                                                         : (evaluation_blob){NULL, 0};
            in->running = true;
            pthread_mutex_unlock(&w->lock);
            bool ok = step == STEP_PARAMS ? parse_params(in, blob)
                      : step == STEP_MASK ? decode_mask(w, in, blob)
                                          : evaluate_item(w, in);
            pthread_mutex_lock(&w->lock);
            if (!ok)
                in->gave_up = true;
            if (step == STEP_PARAMS)
                in->params_parsed = ok;
            else if (step == STEP_MASK) {
                in->masks_decoded++;
                /* one per PNG mask, or the .npy array's first axis (read by next_step on the
                 * upload thread, so written here, under the lock, not in decode_mask) */
                in->labelled = in->label_array.data ? in->label_array.shape[0] : in->masks_decoded;
            } else if (ok)
                in->items_done++;
            in->running = false;
            pthread_cond_broadcast(&w->idle);
            if (next_step(in) != STEP_NONE)
                list(w, in); /* to the back: one step per request per turn */
        }
        intake *dead = unref(in);
        if (dead) {
            pthread_mutex_unlock(&w->lock);
            intake_destroy(dead);
            pthread_mutex_lock(&w->lock);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

intake_worker *intake_worker_new(segloss_ctx *ctx, const segloss_limits *limits)
{
    intake_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->idle, NULL);
    w->ctx = ctx;
    w->limits = limits;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        intake_worker_free(w);
        return NULL;
    }
    w->started = true;
    return w;
}

void intake_worker_free(intake_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (w->started)
        pthread_join(w->thread, NULL);
    while (w->head) {
        intake *in = w->head;
        w->head = in->next;
        in->listed = false;
        if (unref(in))
            intake_destroy(in);
    }
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

intake *intake_new(intake_worker *w, bool want_argmax, size_t max_params_bytes)
{
    const char *env = getenv("SEGLOSS_OVERLAP");
    if (!w || (env && strcmp(env, "0") == 0))
        return NULL;
    intake *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->w = w;
    in->refs = 1;
    in->want_argmax = want_argmax;
    in->max_params_bytes = max_params_bytes;
    params_init(&in->params);
    return in;
}

params_request *intake_params(intake *in)
{
    return &in->params;
}

void intake_progress(intake *in, const multipart_parser *parser)
{
    if (!in)
        return;
    intake_worker *w = in->w;
    size_t complete = multipart_complete_count(parser);
    size_t count = multipart_count(parser);
    pthread_mutex_lock(&w->lock);
    /* After giving up the parts are still followed: a params part coming now must keep the
     * items done so far from being handed over (intake_close). */
    if (in->closed) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    size_t masks = 0, params_parts = 0;
    for (size_t i = 0; i < count; i++) {
        const multipart_part *p = multipart_get(parser, i);
        if (p->kind == EVALUATE_PART_PARAMS && params_parts++ == 0 && i < complete &&
            !in->params_complete) {
            in->params_in = (evaluation_blob){p->data, p->len};
            in->params_complete = true;
        }
        if (p->kind == EVALUATE_PART_LOGITS && p->fixed && p->expected && !in->logits_expected) {
            in->logits = p->data;
            in->logits_expected = p->expected;
        }
        if (p->kind == EVALUATE_PART_LOGITS && p->data == in->logits)
            in->logits_len = multipart_settled_len(parser, i);
        if (p->kind != EVALUATE_PART_MASK || i >= complete)
            continue;
        if (masks >= in->masks_complete && masks < INTAKE_MAX_MASKS)
            in->masks_in[masks] = (evaluation_blob){p->data, p->len};
        masks++;
    }
    in->params_parts = params_parts;
    in->ended = multipart_ended(parser);
    if (masks > in->masks_complete)
        in->masks_complete = masks < INTAKE_MAX_MASKS ? masks : INTAKE_MAX_MASKS;
    if (!in->running && next_step(in) != STEP_NONE)
        list(w, in);
    pthread_mutex_unlock(&w->lock);
}

size_t intake_items_done(intake *in)
{
    pthread_mutex_lock(&in->w->lock);
    size_t n = in->items_done;
    pthread_mutex_unlock(&in->w->lock);
    return n;
}

const evaluation_prepared *intake_close(intake *in)
{
    if (!in)
        return NULL;
    intake_worker *w = in->w;
    pthread_mutex_lock(&w->lock);
    in->closed = true;
    while (in->running)
        pthread_cond_wait(&w->idle, &w->lock);
    pthread_mutex_unlock(&w->lock);
    /* Nothing touches the fields below any more but this thread. */
    evaluation_prepared *p = &in->prepared;
    memset(p, 0, sizeof *p);
    p->mask_count = in->label_array.data ? 0 : in->masks_decoded; /* PNGs decoded */
    p->mask_labels = in->labels;
    p->width = in->width;
    p->height = in->height;
    /* items count only if evaluated with the params the evaluation will use */
    if (in->layout_known && params_settled(in)) {
        p->logits_data = in->layout.data;
        p->logits_layout = in->layout;
        p->item_count = in->items_done;
        p->items = in->items;
        p->argmax = in->argmax;
    }
    return p;
}

void intake_release(intake *in)
{
    if (!in)
        return;
    intake_worker *w = in->w;
    pthread_mutex_lock(&w->lock);
    in->closed = true;
    while (in->running)
        pthread_cond_wait(&w->idle, &w->lock);
    intake *dead = unref(in);
    pthread_mutex_unlock(&w->lock);
    if (dead)
        intake_destroy(dead);
}
