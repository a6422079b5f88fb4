/*
 * test_intake.c - work done during the upload (server/api/intake.c) gives the answer of the work
 * done at the end, bit for bit: a batch body is fed to the parser in small chunks, masks first,
 * logits first and interleaved, with the intake's worker given time between chunks; the answer
 * and the statistics of evaluation_run with what the intake prepared must equal those without
 * it (and, masks first, the intake must really have evaluated every item but the last). A bad
 * mask found early is reported as without the intake, also when it is met again and again while
 * the upload goes on at full speed (run under TSan, that shows the worker records its failures
 * under the lock). Logits longer than their .npy header says leave the worker off the bytes the
 * parser writes again (TSan).
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
#include "testing.h"

#define N 4
#define C 5
#define H 48
#define W 40
#define CT "multipart/form-data; boundary=b0undary"

static unsigned char *npy_logits(size_t *len)
{
    char dict[118];
    int dl = snprintf(dict, sizeof dict,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }", N, C,
                      H, W);
    size_t header = 128, data = (size_t)N * C * H * W * 4;
    unsigned char *out = malloc(header + data);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(header - 10);
    out[9] = 0;
    memset(out + 10, ' ', header - 10);
    memcpy(out + 10, dict, (size_t)dl);
    out[header - 1] = '\n';
    uint32_t x = 12345;
    for (size_t i = 0; i < data / 4; i++) {
        x = x * 1664525u + 1013904223u;
        float v = (float)(x >> 8) / (float)(1u << 24) * 8.0f - 4.0f;
        memcpy(out + header + 4 * i, &v, 4);
    }
    *len = header + data;
    return out;
}

static unsigned char *png_mask(int seed, size_t *len)
{
    uint8_t pixels[H * W];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)((i / 7 + (size_t)seed * 3 + i % 5) % (C + 1)); /* C: ignored */
    if (seed == 2)
        pixels[0] = 255;
    uint8_t *png = NULL;
    char detail[128];
    if (segloss_png_encode(pixels, W, H, 1, &png, len, detail, sizeof detail) != 0)
        return NULL;
    return png;
}

/* order: 0 masks first, 1 logits first, 2 interleaved (mask 0, logits, the other masks). */
static size_t build(unsigned char *body, int order, const unsigned char *logits, size_t llen,
                    unsigned char *const *masks, const size_t *mlen)
{
    size_t n = 0;
    const char *lh = "--b0undary\r\nContent-Disposition: form-data; name=\"logits\"; "
                     "filename=\"l.npy\"\r\n\r\n";
    const char *mh = "--b0undary\r\nContent-Disposition: form-data; name=\"mask\"; "
                     "filename=\"m.png\"\r\n\r\n";
    int seq[N + 1], k = 0;
    if (order == 1)
        seq[k++] = -1;
    for (int i = 0; i < N; i++) {
        seq[k++] = i;
        if (order == 2 && i == 0)
            seq[k++] = -1;
    }
    if (order == 0)
        seq[k++] = -1;
    for (int j = 0; j < k; j++) {
        const char *hd = seq[j] < 0 ? lh : mh;
        memcpy(body + n, hd, strlen(hd));
        n += strlen(hd);
        const unsigned char *d = seq[j] < 0 ? logits : masks[seq[j]];
        size_t dl = seq[j] < 0 ? llen : mlen[seq[j]];
        memcpy(body + n, d, dl);
        n += dl;
        memcpy(body + n, "\r\n", 2);
        n += 2;
    }
    memcpy(body + n, "--b0undary--\r\n", 14);
    return n + 14;
}

static segloss_ctx *ctx;
static intake_worker *w;

/* false: the chunks follow each other at once, so the upload thread publishes progress while the
 * worker is decoding (the race a worker that set its flags without the lock would lose). */
static bool napping = true;

static void nap(void)
{
    if (!napping)
        return;
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
}

typedef struct answer {
    evaluation_outcome out;
    size_t items_prepared;
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

/* Parses body in 4 KiB chunks (with an intake unless w is NULL) and evaluates it. */
static answer *run(intake_worker *worker, const unsigned char *body, size_t len, bool masks_first,
                   bool recorded)
{
    answer *a = calloc(1, sizeof *a);
    segloss_limits limits;
    segloss_limits_default(&limits);
    evaluate_parts_limits ml = {len, 16, 4096, NULL};
    multipart_parser *p = NULL;
    char detail[256];
    CHECK_EQ_INT(evaluate_parts_new(CT, len, &ml, &p, detail, sizeof detail), 0);
    intake *in = worker ? intake_new(worker, recorded) : NULL;
    CHECK(!worker || in);
    for (size_t off = 0; off < len; off += 4096) {
        size_t n = len - off < 4096 ? len - off : 4096;
        /* before the last chunk, give the worker up to 20 s (a loaded machine) to catch up */
        for (int i = 0; in && masks_first && off + n == len && i < 10000; i++) {
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
    size_t m = 0;
    for (size_t i = 0; i < multipart_count(p); i++)
        if (multipart_get(p, i)->kind == EVALUATE_PART_MASK)
            blobs[m++] = (evaluation_blob){multipart_get(p, i)->data, multipart_get(p, i)->len};
    const multipart_part *l = multipart_first(p, EVALUATE_PART_LOGITS);
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
    a->items_prepared = er.prepared ? er.prepared->item_count : 0;
    evaluation_run(ctx, &limits, &er, &a->out);
    evaluation_answer_json(&a->out, &er);
    params_free(&params);
    intake_release(in);
    multipart_free(p);
    return a;
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

/* The inputs every test posts: N images' logits, N masks, and room for a body of them. */
typedef struct batch {
    unsigned char *logits, *masks[N], *body;
    size_t llen, mlen[N];
} batch;

static void batch_make(batch *b)
{
    b->logits = npy_logits(&b->llen);
    for (int i = 0; i < N; i++)
        b->masks[i] = png_mask(i, &b->mlen[i]);
    b->body = malloc(b->llen + 64 * 1024);
}

static void batch_free(batch *b)
{
    for (int i = 0; i < N; i++)
        free(b->masks[i]);
    free(b->logits);
    free(b->body);
}

static void test_bit_identical_across_orders(void)
{
    batch b;
    batch_make(&b);
    size_t len;
    for (int recorded = 0; recorded < 2; recorded++) {
        len = build(b.body, 1, b.logits, b.llen, b.masks, b.mlen);
        answer *ref = run(NULL, b.body, len, false, recorded);
        CHECK_EQ_INT(ref->out.status, 200);
        CHECK(ref->recorded == (bool)recorded);
        char *want = without_timing(ref->out.body);
        for (int order = 0; order < 3; order++) {
            len = build(b.body, order, b.logits, b.llen, b.masks, b.mlen);
            for (int overlap = 0; overlap < 2; overlap++) {
                answer *a = run(overlap ? w : NULL, b.body, len, order == 0, recorded);
                CHECK_EQ_INT(a->out.status, 200);
                char *got = without_timing(a->out.body);
                CHECK_MSG(strcmp(got, want) == 0, "order %d overlap %d recorded %d:\n%s\n%s", order,
                          overlap, recorded, got, want);
                CHECK(a->out.result && ref->out.result &&
                      segloss_stats_equal(a->out.result->stats, ref->out.result->stats));
                /* what a store keeps: the predicted classes and the per-item counts */
                CHECK_MSG(a->recorded == (bool)recorded, "order %d overlap %d", order, overlap);
                CHECK_MSG(memcmp(a->argmax, ref->argmax, sizeof a->argmax) == 0,
                          "order %d overlap %d recorded %d: the predicted classes differ", order,
                          overlap, recorded);
                CHECK_MSG(memcmp(a->item_counts, ref->item_counts, sizeof a->item_counts) == 0,
                          "order %d overlap %d recorded %d: the item counts differ", order, overlap,
                          recorded);
                if (overlap && order == 0) /* masks first: every item but the last, at least */
                    CHECK_MSG(a->items_prepared >= N - 1, "%zu items prepared", a->items_prepared);
                free(got);
                evaluation_outcome_clear(&a->out);
                free(a);
            }
        }
        free(want);
        evaluation_outcome_clear(&ref->out);
        free(ref);
    }
    /* a broken mask (truncated PNG) met during the upload: the same status and detail */
    b.mlen[2] /= 2;
    len = build(b.body, 0, b.logits, b.llen, b.masks, b.mlen);
    answer *bad_ref = run(NULL, b.body, len, false, false);
    answer *bad = run(w, b.body, len, false, false);
    CHECK(bad_ref->out.status >= 400 && bad->out.status == bad_ref->out.status);
    CHECK_MSG(strcmp(bad->out.detail, bad_ref->out.detail) == 0, "%s / %s", bad->out.detail,
              bad_ref->out.detail);
    evaluation_outcome_clear(&bad_ref->out);
    evaluation_outcome_clear(&bad->out);
    free(bad_ref);
    free(bad);
    batch_free(&b);
}

/* A broken first mask, many times, with no pause between chunks: the worker gives up while the
 * upload thread keeps publishing; every answer is the one without the intake. */
static void test_broken_mask_at_full_speed(void)
{
    batch b;
    batch_make(&b);
    b.mlen[0] /= 2;
    size_t len = build(b.body, 0, b.logits, b.llen, b.masks, b.mlen);
    answer *ref = run(NULL, b.body, len, false, false);
    CHECK(ref->out.status >= 400);
    napping = false;
    for (int round = 0; round < 200; round++) {
        answer *a = run(w, b.body, len, false, round % 2);
        CHECK_MSG(a->out.status == ref->out.status && strcmp(a->out.detail, ref->out.detail) == 0,
                  "round %d: %d %s / %d %s", round, a->out.status, a->out.detail, ref->out.status,
                  ref->out.detail);
        evaluation_outcome_clear(&a->out);
        free(a);
    }
    napping = true;
    evaluation_outcome_clear(&ref->out);
    free(ref);
    batch_free(&b);
}

/* Logits one byte longer than their .npy header says, masks first: the parser finds out only
 * after the last item's bytes were handed to the worker, and parses the part's last bytes again
 * (multipart.c, unskip). The worker may be evaluating that item meanwhile. */
static void test_logits_longer_than_their_header(void)
{
    batch b;
    batch_make(&b);
    unsigned char *longer = malloc(b.llen + 1);
    memcpy(longer, b.logits, b.llen);
    longer[b.llen] = 'x';
    size_t len = build(b.body, 0, longer, b.llen + 1, b.masks, b.mlen);
    size_t split =
        (size_t)((unsigned char *)memmem(b.body, len, b.logits, b.llen) - b.body) + b.llen;
    for (int round = 0; round < 20; round++) {
        evaluate_parts_limits ml = {len, 16, 4096, NULL};
        multipart_parser *p = NULL;
        char detail[256];
        CHECK_EQ_INT(evaluate_parts_new(CT, len, &ml, &p, detail, sizeof detail), 0);
        intake *in = intake_new(w, false);
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
    free(longer);
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
    RUN(test_broken_mask_at_full_speed);
    RUN(test_logits_longer_than_their_header);
    intake_worker_free(w);
    segloss_ctx_free(ctx);
    return TESTS_DONE();
}
