/*
 * test_intake.c - work done during the upload (server/api/intake.c) gives the answer of the work
 * done at the end, bit for bit: a batch body is fed to the parser in small chunks, masks first,
 * logits first and interleaved, with PNG masks or one (N,H,W) .npy mask part, and with a params
 * part before, between or after the other parts, the intake's worker given time between chunks;
 * the answer and the statistics of evaluation_run with what the intake prepared must equal those
 * without it. Where the body lets it (masks first, any params part before the logits) the answer
 * must really have used every item but the last from the upload; where it does not (a params
 * part after the logits), none. A bad mask or params part found early is reported as without
 * the intake, also when it is met again and again while the upload goes on at full speed (run
 * under TSan, that shows the worker records its steps under the lock), and a params part that
 * comes after the intake gave up still keeps its items out. Logits longer than their
 * .npy header says leave the worker off the bytes the parser writes again (TSan).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/evaluate_parts.h"
#include "api/intake.h"
#include "api/result_json.h"
#include "http/multipart.h"
#include "png_fixture.h"
#include "testing.h"

#define N 4
#define C 5
#define H 48
#define W 40
#define CT "multipart/form-data; boundary=b0undary"
#define MAX_PARAMS_BYTES 4096
#define NPY_HEADER 128

/* A .npy of `data` bytes whose header (NPY_HEADER bytes, data 64-byte aligned) describes the
 * dtype and shape in `dict`; the data is left for the caller. */
static unsigned char *npy_file(const char *dict, size_t data, size_t *len)
{
    unsigned char *out = malloc(NPY_HEADER + data);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(NPY_HEADER - 10);
    out[9] = 0;
    memset(out + 10, ' ', NPY_HEADER - 10);
    memcpy(out + 10, dict, strlen(dict));
    out[NPY_HEADER - 1] = '\n';
    *len = NPY_HEADER + data;
    return out;
}

static unsigned char *npy_logits(size_t *len)
{
    char dict[118];
    snprintf(dict, sizeof dict,
             "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }", N, C, H, W);
    size_t data = (size_t)N * C * H * W * 4;
    unsigned char *out = npy_file(dict, data, len);
    uint32_t x = 12345;
    for (size_t i = 0; i < data / 4; i++) {
        x = x * 1664525u + 1013904223u;
        float v = (float)(x >> 8) / (float)(1u << 24) * 8.0f - 4.0f;
        memcpy(out + NPY_HEADER + 4 * i, &v, 4);
    }
    return out;
}

/* Item seed's labels: classes 0..C-1, C (out of range: ignored), and for item 2 one 255. */
static void mask_pixels(int seed, uint8_t *pixels)
{
    for (size_t i = 0; i < (size_t)H * W; i++)
        pixels[i] = (uint8_t)((i / 7 + (size_t)seed * 3 + i % 5) % (C + 1));
    if (seed == 2)
        pixels[0] = 255;
}

static unsigned char *png_mask(int seed, size_t *len)
{
    uint8_t pixels[H * W];
    mask_pixels(seed, pixels);
    uint8_t *png = NULL;
    char detail[128];
    if (segloss_png_encode(pixels, W, H, 1, &png, len, detail, sizeof detail) != 0)
        return NULL;
    return png;
}

/* Every item's labels as one int64 .npy (what the Python client sends for a torch tensor). */
static unsigned char *npy_labels(size_t *len)
{
    char dict[118];
    snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (%d, %d, %d), }",
             N, H, W);
    unsigned char *out = npy_file(dict, (size_t)N * H * W * 8, len);
    uint8_t pixels[H * W];
    for (int n = 0; n < N; n++) {
        mask_pixels(n, pixels);
        for (size_t i = 0; i < (size_t)H * W; i++) {
            int64_t v = pixels[i];
            memcpy(out + NPY_HEADER + ((size_t)n * H * W + i) * 8, &v, 8);
        }
    }
    return out;
}

/* The inputs every test posts: N images' logits, N PNG masks, the same labels as one .npy, and
 * room for a body of them. */
typedef struct batch {
    unsigned char *logits, *masks[N], *labels, *body;
    size_t llen, mlen[N], nlen;
} batch;

static void batch_make(batch *b)
{
    b->logits = npy_logits(&b->llen);
    for (int i = 0; i < N; i++)
        b->masks[i] = png_mask(i, &b->mlen[i]);
    b->labels = npy_labels(&b->nlen);
    b->body = malloc(b->llen + 1 + b->nlen + 64 * 1024);
}

static void batch_free(batch *b)
{
    for (int i = 0; i < N; i++)
        free(b->masks[i]);
    free(b->logits);
    free(b->labels);
    free(b->body);
}

typedef enum params_at { PARAMS_FIRST, PARAMS_BEFORE_LOGITS, PARAMS_LAST } params_at;

/* A body's parts and their order. */
typedef struct body_spec {
    int order;       /* 0 masks first, 1 logits first, 2 interleaved (mask 0, logits, the rest) */
    bool npy_labels; /* one .npy mask part instead of N PNGs (order 2 is then order 0) */
    const char *params; /* a params part's JSON (NULL: none), placed at params_at */
    params_at params_at;
} body_spec;

enum { PART_LOGITS = -1, PART_LABELS = -2, PART_PARAMS = -3 };

static size_t put_part(unsigned char *at, const char *head, const void *data, size_t len)
{
    size_t hl = strlen(head);
    memcpy(at, head, hl);
    memcpy(at + hl, data, len);
    memcpy(at + hl + len, "\r\n", 2);
    return hl + len + 2;
}

/* Writes the body s describes into b->body; returns its length. */
static size_t build(batch *b, const body_spec *s)
{
    const char *lh = "--b0undary\r\nContent-Disposition: form-data; name=\"logits\"; "
                     "filename=\"l.npy\"\r\n\r\n";
    const char *mh = "--b0undary\r\nContent-Disposition: form-data; name=\"mask\"; "
                     "filename=\"m.png\"\r\n\r\n";
    const char *ph = "--b0undary\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n";
    int seq[N + 3], k = 0;
    if (s->params && s->params_at == PARAMS_FIRST)
        seq[k++] = PART_PARAMS;
    int masks = s->npy_labels ? 1 : N;
    bool interleaved = s->order == 2 && !s->npy_labels;
    for (int i = 0; i < masks; i++) {
        if (i == 0 && s->order == 1)
            seq[k++] = PART_LOGITS;
        seq[k++] = s->npy_labels ? PART_LABELS : i;
        if (i == 0 && interleaved)
            seq[k++] = PART_LOGITS;
    }
    if (s->order != 1 && !interleaved) {
        if (s->params && s->params_at == PARAMS_BEFORE_LOGITS)
            seq[k++] = PART_PARAMS;
        seq[k++] = PART_LOGITS;
    }
    if (s->params && s->params_at == PARAMS_LAST)
        seq[k++] = PART_PARAMS;
    size_t n = 0;
    for (int j = 0; j < k; j++) {
        if (seq[j] == PART_LOGITS)
            n += put_part(b->body + n, lh, b->logits, b->llen);
        else if (seq[j] == PART_LABELS)
            n += put_part(b->body + n, mh, b->labels, b->nlen);
        else if (seq[j] == PART_PARAMS)
            n += put_part(b->body + n, ph, s->params, strlen(s->params));
        else
            n += put_part(b->body + n, mh, b->masks[seq[j]], b->mlen[seq[j]]);
    }
    memcpy(b->body + n, "--b0undary--\r\n", 14);
    return n + 14;
}

static segloss_ctx *ctx;
static intake_worker *w;

/* false: the chunks follow each other at once, so the upload thread publishes progress while the
 * worker is decoding (the race a worker that set its flags without the lock would lose). */
static bool napping = true;

/* The bytes fed to the parser at a time (the network's chunks). */
static size_t chunk_bytes = 4096;

static void nap(void)
{
    if (!napping)
        return;
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
}

typedef struct answer {
    evaluation_outcome out;
    bool recorded;              /* the hook ran (a request with run=) */
    uint16_t argmax[N * H * W]; /* what the hook was given to store */
    uint64_t item_counts[N * 3 * C];
} answer;

/* The result hook of a recorded request: keeps what a store would get. */
static int keep_record(void *arg, const evaluation_record *rec, char *detail, size_t dl)
{
    (void)detail;
    (void)dl;
    answer *a = arg;
    a->recorded = rec->argmax && rec->item_counts;
    if (a->recorded) {
        memcpy(a->argmax, rec->argmax, sizeof a->argmax);
        memcpy(a->item_counts, rec->item_counts, sizeof a->item_counts);
    }
    return 200;
}

/* Parses body in chunks of chunk_bytes (with an intake unless worker is NULL) and evaluates it as
 * POST /v1/evaluate does: the params part, when there is one, over the query's parameters.
 * expect_items: before the last chunk, wait for the worker to have done N-1 items. */
static answer *run(intake_worker *worker, const unsigned char *body, size_t len, bool expect_items,
                   bool recorded)
{
    answer *a = calloc(1, sizeof *a);
    segloss_limits limits;
    segloss_limits_default(&limits);
    evaluate_parts_limits ml = {len, 16, MAX_PARAMS_BYTES, NULL};
    multipart_parser *p = NULL;
    char detail[256];
    CHECK_EQ_INT(evaluate_parts_new(CT, len, &ml, &p, detail, sizeof detail), 0);
    intake *in = worker ? intake_new(worker, recorded, MAX_PARAMS_BYTES) : NULL;
    CHECK(!worker || in);
    for (size_t off = 0; off < len; off += chunk_bytes) {
        size_t n = len - off < chunk_bytes ? len - off : chunk_bytes;
        /* before the last chunk, give the worker up to 20 s (a loaded machine) to catch up */
        for (int i = 0; in && expect_items && off + n == len && i < 10000; i++) {
            if (intake_items_done(in) >= N - 1)
                break;
            nap();
        }
        CHECK_EQ_INT(evaluate_parts_feed(p, body + off, n, detail, sizeof detail), 0);
        intake_progress(in, p);
        if (in)
            nap();
    }
    CHECK_EQ_INT(evaluate_parts_finish(p, false, detail, sizeof detail), 0);
    evaluation_blob blobs[N];
    size_t m = evaluate_parts_blobs(p, EVALUATE_PART_MASK, blobs, N);
    const multipart_part *l = multipart_first(p, EVALUATE_PART_LOGITS);
    const multipart_part *pp = multipart_first(p, EVALUATE_PART_PARAMS);
    params_request params;
    params_init(&params);
    if (recorded) /* a run makes the evaluation keep what a store needs */
        CHECK_EQ_INT(params_set_query(&params, "run", "t", detail, sizeof detail), 0);
    evaluation_request er = {
        .logits = {l->data, l->len},
        .masks = blobs,
        .mask_count = m,
        .params = &params,
        .id = "test",
        .prepared = intake_close(in),
        .hook = recorded ? keep_record : NULL,
        .hook_arg = a,
    };
    int status = pp ? params_set_json(&params, (const char *)pp->data, pp->len, MAX_PARAMS_BYTES,
                                      a->out.detail, sizeof a->out.detail)
                    : 0;
    if (status)
        a->out.status = status;
    else {
        evaluation_run(ctx, &limits, &er, &a->out);
        evaluation_answer_json(&a->out, &er);
    }
    params_free(&params);
    intake_release(in);
    multipart_free(p);
    return a;
}

static void answer_free(answer *a)
{
    evaluation_outcome_clear(&a->out);
    free(a);
}

/* The answer without "timing" (the one part that differs from run to run). */
static char *without_timing(const char *body)
{
    char *copy = strdup(body ? body : "");
    char *t = strstr(copy, "\"timing\"");
    if (t) {
        char *end = strchr(t, '}');
        if (end)
            memmove(t, end + 1, strlen(end + 1) + 1);
    }
    return copy;
}

/* a is ref, bit for bit: the answer, the statistics and what a store keeps. */
static void check_same(const answer *a, const answer *ref, const char *what)
{
    CHECK_MSG(a->out.status == ref->out.status, "%s: status %d, want %d (%s)", what, a->out.status,
              ref->out.status, a->out.detail);
    if (ref->out.status != 200) {
        CHECK_MSG(strcmp(a->out.detail, ref->out.detail) == 0, "%s: %s / %s", what, a->out.detail,
                  ref->out.detail);
        return;
    }
    char *got = without_timing(a->out.body), *want = without_timing(ref->out.body);
    CHECK_MSG(strcmp(got, want) == 0, "%s:\n%s\n%s", what, got, want);
    CHECK(a->out.result && ref->out.result &&
          segloss_stats_equal(a->out.result->stats, ref->out.result->stats));
    CHECK_MSG(a->recorded == ref->recorded, "%s", what);
    CHECK_MSG(memcmp(a->argmax, ref->argmax, sizeof a->argmax) == 0,
              "%s: the predicted classes differ", what);
    CHECK_MSG(memcmp(a->item_counts, ref->item_counts, sizeof a->item_counts) == 0,
              "%s: the item counts differ", what);
    free(got);
    free(want);
}

static void test_bit_identical_across_orders(void)
{
    batch b;
    batch_make(&b);
    for (int npy = 0; npy < 2; npy++) {
        for (int recorded = 0; recorded < 2; recorded++) {
            body_spec ref_spec = {.order = 1, .npy_labels = npy};
            answer *ref = run(NULL, b.body, build(&b, &ref_spec), false, recorded);
            CHECK_EQ_INT(ref->out.status, 200);
            CHECK(ref->recorded == (bool)recorded);
            for (int order = 0; order < 3; order++) {
                body_spec spec = {.order = order, .npy_labels = npy};
                size_t len = build(&b, &spec);
                for (int overlap = 0; overlap < 2; overlap++) {
                    char what[96];
                    snprintf(what, sizeof what, "npy %d recorded %d order %d overlap %d", npy,
                             recorded, order, overlap);
                    bool masks_first = order == 0 || (order == 2 && npy);
                    answer *a = run(overlap ? w : NULL, b.body, len, masks_first, recorded);
                    check_same(a, ref, what);
                    if (overlap && masks_first) /* every item but the last, at least */
                        CHECK_MSG(a->out.items_during_upload >= N - 1, "%s: %zu items", what,
                                  a->out.items_during_upload);
                    if (!overlap)
                        CHECK_EQ_INT((int)a->out.items_during_upload, 0);
                    answer_free(a);
                }
            }
            answer_free(ref);
        }
    }
    /* a broken mask (truncated PNG) met during the upload: the same status and detail */
    b.mlen[2] /= 2;
    body_spec spec = {.order = 0};
    size_t len = build(&b, &spec);
    answer *bad_ref = run(NULL, b.body, len, false, false);
    answer *bad = run(w, b.body, len, false, false);
    CHECK(bad_ref->out.status >= 400);
    check_same(bad, bad_ref, "broken mask");
    answer_free(bad_ref);
    answer_free(bad);
    batch_free(&b);
}

/* Loss parameters that change every figure of the answer (so items evaluated with the query's
 * parameters alone could not pass for these). */
static const char *const loss_params = "{\"class_weights\":[1,2,0.5,1,3],\"gamma\":1.5,\"beta\":2}";

/* A params part before the logits is parsed first and the items use it; one after them keeps
 * the items done during the upload out of the answer. */
static void test_params_part_anywhere(void)
{
    batch b;
    batch_make(&b);
    body_spec plain = {.order = 0};
    answer *without = run(NULL, b.body, build(&b, &plain), false, false);
    for (int npy = 0; npy < 2; npy++) {
        body_spec ref_spec = {
            .order = 1, .npy_labels = npy, .params = loss_params, .params_at = PARAMS_LAST};
        answer *ref = run(NULL, b.body, build(&b, &ref_spec), false, false);
        CHECK_EQ_INT(ref->out.status, 200);
        char *a1 = without_timing(ref->out.body), *a2 = without_timing(without->out.body);
        CHECK_MSG(strcmp(a1, a2) != 0, "the params part changed nothing");
        free(a1);
        free(a2);
        for (params_at at = PARAMS_FIRST; at <= PARAMS_LAST; at++) {
            body_spec spec = {
                .order = 0, .npy_labels = npy, .params = loss_params, .params_at = at};
            char what[64];
            snprintf(what, sizeof what, "npy %d params at %d", npy, (int)at);
            answer *a = run(w, b.body, build(&b, &spec), at != PARAMS_LAST, false);
            check_same(a, ref, what);
            if (at == PARAMS_LAST)
                CHECK_MSG(a->out.items_during_upload == 0, "%s: %zu items used", what,
                          a->out.items_during_upload);
            else
                CHECK_MSG(a->out.items_during_upload >= N - 1, "%s: %zu items", what,
                          a->out.items_during_upload);
            answer_free(a);
        }
        answer_free(ref);
    }
    answer_free(without);
    batch_free(&b);
}

static uint8_t wide_pixels[H * W];

static unsigned wide_sample(uint32_t x, uint32_t y, int c)
{
    (void)c;
    return wide_pixels[(size_t)y * W + x];
}

/* Mask 1 a 16-bit PNG (the evaluation takes it, the intake gives up on it) after item 0 was
 * evaluated, then a params part: the intake still counts that part after giving up, so item 0,
 * evaluated without it, is not handed over. */
static void test_params_part_after_giving_up(void)
{
    batch b;
    batch_make(&b);
    mask_pixels(1, wide_pixels);
    membuf wide = write_png(W, H, PNG_COLOR_TYPE_GRAY, 16, 0, wide_sample, 0);
    free(b.masks[1]);
    b.masks[1] = wide.data;
    b.mlen[1] = wide.len;
    body_spec spec = {.order = 2, .params = loss_params, .params_at = PARAMS_LAST};
    size_t len = build(&b, &spec);
    answer *ref = run(NULL, b.body, len, false, false);
    CHECK_EQ_INT(ref->out.status, 200);
    chunk_bytes = 512; /* the worker gives up before the params part is in */
    for (int round = 0; round < 3; round++) {
        answer *a = run(w, b.body, len, false, false);
        check_same(a, ref, "a 16-bit mask, then the params part");
        CHECK_MSG(a->out.items_during_upload == 0, "%zu items used", a->out.items_during_upload);
        answer_free(a);
    }
    chunk_bytes = 4096;
    answer_free(ref);
    batch_free(&b);
}

/* A params part that the evaluation refuses, first in the body: a type error (400), a
 * num_classes or class_weights that does not fit the logits (422, found when the first item is
 * evaluated), JSON cut short (400). Each is answered as without the intake, with pauses and at
 * full speed, many times over. */
static void test_bad_params_part_first(void)
{
    static const char *const bad[] = {"{\"gamma\":\"x\"}", "{\"num_classes\":7}",
                                      "{\"class_weights\":[1,2]}", "{"};
    batch b;
    batch_make(&b);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        body_spec spec = {
            .order = 0, .npy_labels = k % 2, .params = bad[k], .params_at = PARAMS_FIRST};
        size_t len = build(&b, &spec);
        answer *ref = run(NULL, b.body, len, false, false);
        CHECK_MSG(ref->out.status >= 400, "%s: %d", bad[k], ref->out.status);
        napping = k % 2 == 0;
        for (int round = 0; round < 20; round++) {
            answer *a = run(w, b.body, len, false, round % 2);
            check_same(a, ref, bad[k]);
            answer_free(a);
        }
        napping = true;
        answer_free(ref);
    }
    batch_free(&b);
}

/* body, rounds times with the intake and no pause between chunks (the upload thread publishes
 * while the worker runs: TSan's case), each answer ref's; every other round recorded when
 * vary_recorded. */
static void same_at_full_speed(const unsigned char *body, size_t len, const answer *ref, int rounds,
                               bool vary_recorded)
{
    napping = false;
    for (int round = 0; round < rounds; round++) {
        answer *a = run(w, body, len, false, vary_recorded && round % 2);
        char what[32];
        snprintf(what, sizeof what, "round %d", round);
        check_same(a, ref, what);
        answer_free(a);
    }
    napping = true;
}

/* A broken first mask, many times, with no pause between chunks: the worker gives up while the
 * upload thread keeps publishing; every answer is the one without the intake. */
static void test_broken_mask_at_full_speed(void)
{
    batch b;
    batch_make(&b);
    b.mlen[0] /= 2;
    body_spec spec = {.order = 0};
    size_t len = build(&b, &spec);
    answer *ref = run(NULL, b.body, len, false, false);
    CHECK(ref->out.status >= 400);
    same_at_full_speed(b.body, len, ref, 200, true);
    answer_free(ref);
    batch_free(&b);
}

/* Params first, .npy labels, at full speed: the worker parses the params part while the upload
 * thread publishes the next chunks (TSan); every answer is the reference's. */
static void test_params_first_at_full_speed(void)
{
    batch b;
    batch_make(&b);
    body_spec spec = {
        .order = 0, .npy_labels = true, .params = loss_params, .params_at = PARAMS_FIRST};
    size_t len = build(&b, &spec);
    answer *ref = run(NULL, b.body, len, false, false);
    CHECK_EQ_INT(ref->out.status, 200);
    same_at_full_speed(b.body, len, ref, 100, false);
    answer_free(ref);
    batch_free(&b);
}

/* Logits one byte longer than their .npy header says, masks first: the parser finds out only
 * after the last item's bytes were handed to the worker, and parses the part's last bytes again
 * (multipart.c, unskip). The worker may be evaluating that item meanwhile. */
static void test_logits_longer_than_their_header(void)
{
    batch b;
    batch_make(&b);
    b.logits = realloc(b.logits, b.llen + 1);
    b.logits[b.llen] = 'x';
    size_t exact = b.llen++;
    body_spec spec = {.order = 0};
    size_t len = build(&b, &spec);
    size_t split = (size_t)((unsigned char *)memmem(b.body, len, b.logits, exact) - b.body) + exact;
    for (int round = 0; round < 20; round++) {
        evaluate_parts_limits ml = {len, 16, MAX_PARAMS_BYTES, NULL};
        multipart_parser *p = NULL;
        char detail[256];
        CHECK_EQ_INT(evaluate_parts_new(CT, len, &ml, &p, detail, sizeof detail), 0);
        intake *in = intake_new(w, false, MAX_PARAMS_BYTES);
        for (size_t off = 0; off < split; off += 4096) {
            size_t n = split - off < 4096 ? split - off : 4096;
            CHECK_EQ_INT(evaluate_parts_feed(p, b.body + off, n, detail, sizeof detail), 0);
            intake_progress(in, p);
        }
        for (int i = 0; i < 10000 && intake_items_done(in) < N - 1; i++)
            nap();
        evaluate_parts_feed(p, b.body + split, len - split, detail, sizeof detail);
        intake_progress(in, p);
        evaluate_parts_finish(p, false, detail, sizeof detail);
        intake_close(in);
        intake_release(in);
        multipart_free(p);
    }
    batch_free(&b);
}

int main(void)
{
    segloss_limits limits;
    segloss_limits_default(&limits);
    if (segloss_ctx_new(&ctx, 2, SEGLOSS_KERNEL_AUTO) != 0)
        return 1;
    w = intake_worker_new(ctx, &limits);
    if (!w)
        return 1;
    RUN(test_bit_identical_across_orders);
    RUN(test_params_part_anywhere);
    RUN(test_bad_params_part_first);
    RUN(test_params_part_after_giving_up);
    RUN(test_broken_mask_at_full_speed);
    RUN(test_params_first_at_full_speed);
    RUN(test_logits_longer_than_their_header);
    intake_worker_free(w);
    segloss_ctx_free(ctx);
    return TESTS_DONE();
}
