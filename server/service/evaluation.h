/*
 * evaluation.h - from uploaded bytes in memory to the outcome of POST /v1/evaluate.
 *
 * The one code path shared by the HTTP handler and `seglossd eval`: detect and decode the
 * logits, check the parameters against C, probe every mask (format, size, bit depth) before
 * decoding any, decode the masks into one contiguous N x H x W label buffer, evaluate, and hand
 * the result to the record hook. It writes no JSON: the caller writes the answer from the
 * outcome (result_json.h: evaluation_answer_json). Errors come back as an HTTP status and a
 * detail that names the part and says what to fix ("mask 2 is a JPEG; masks must be lossless
 * (PNG or .npy)").
 *
 * The library knows no HTTP, so the status of a library error comes from SEGLOSS_ERRORS via
 * problem_status_for_code. Thread-safe as long as each call has its own request and outcome (the
 * segloss_ctx serialises evaluations itself).
 */
#ifndef SERVER_EVALUATION_H
#define SERVER_EVALUATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss/segloss.h"
#include "service/params.h"

/* Room for a detail: the library's details plus a part prefix. */
#define EVALUATION_DETAIL_MAX 512

typedef struct evaluation_blob {
    const void *data;
    size_t len;
} evaluation_blob;

/* Filled by a hook that recorded the result: the answer it recorded (malloc'ed; the service
 * takes it over and it is sent) - the one it wrote, or the first answer when the request's
 * Idempotency-Key was recorded before. */
typedef struct evaluation_answer {
    char *answer;
    size_t answer_len;
} evaluation_answer;

/*
 * What a successful evaluation leaves for whoever records it (the runs store, overlays): all
 * borrowed, valid only during the hook call. labels are the N x H x W labels the losses were
 * computed on; images are the optional image parts in batch order. A hook that records the
 * result writes the answer it keeps (result_json.h: evaluation_record_json) and puts the
 * answer it recorded into *answer, to be sent.
 */
typedef struct evaluation_record {
    const char *id;
    const params_request *params;
    const segloss_result *result;
    double decode_ms, compute_ms, total_ms; /* the answer's timing */
    const segloss_tensor *labels;
    const uint16_t *argmax;      /* n*h*w predicted classes at mask resolution (the library's) */
    const uint64_t *item_counts; /* n x 3 x C per-item counts (segloss_evaluate_items) */
    const evaluation_blob *images;
    size_t image_count;
    const char *idempotency_key; /* the request's Idempotency-Key, or NULL */
    const uint8_t *request_hash; /* with a key: SHA-256 fingerprint of the request (32) */
    evaluation_answer *answer;   /* where the hook puts the answer it recorded */
} evaluation_record;

/*
 * Called after a successful evaluation, before the answer is sent (on the thread that ran the
 * evaluation). Returns 200, or the HTTP status to answer instead, with a detail: a client must
 * not see 200 for a result its store refused.
 */
typedef int (*evaluation_hook)(void *arg, const evaluation_record *record, char *detail,
                               size_t detail_len);

/*
 * Work done while the body was still arriving (intake.h), offered to the evaluation: PNG masks
 * 0..mask_count-1 decoded as 8-bit labels (NULL where not), and batch items
 * 0..item_count-1 evaluated on logits_data with the request's parameters (each result's stats
 * are merged exactly, so the answer is bit for bit the one of evaluating the batch whole).
 * Whatever does not match what the evaluation finds (other dtype, size, data, an error) is
 * ignored and done again, so errors are reported exactly as without it. All borrowed.
 */
typedef struct evaluation_prepared {
    size_t mask_count;
    uint8_t *const *mask_labels; /* [mask_count] width*height labels, or NULL entries */
    uint32_t width, height;
    const void *logits_data;      /* the logits the items were evaluated on */
    segloss_tensor logits_layout; /* their dtype and shape (data unused) */
    size_t item_count;
    segloss_result *const *items; /* [item_count] */
    const uint16_t *argmax;       /* item_count*height*width predicted classes, or NULL */
} evaluation_prepared;

typedef struct evaluation_request {
    evaluation_blob logits;
    const evaluation_blob *masks; /* in batch order; may be empty for safetensors with labels */
    size_t mask_count;
    const evaluation_blob *images; /* optional, one per batch item; kept for overlays */
    size_t image_count;
    const params_request *params;
    const char *id;       /* the evaluation id written into the answer */
    double started;       /* evaluation_now() when the request began (total_ms) */
    evaluation_hook hook; /* optional */
    void *hook_arg;
    const evaluation_prepared *prepared; /* optional: work done during the upload */
    const char *idempotency_key;         /* optional (with request_hash): record at most once */
    const uint8_t *request_hash;         /* 32 bytes: what a repeat of the key must match */
} evaluation_request;

typedef struct evaluation_outcome {
    int status; /* 200 or the error status */
    char *body; /* 200: the answer the hook recorded, or NULL until the
                   caller writes it (evaluation_answer_json); owned */
    size_t body_len;
    char detail[EVALUATION_DETAIL_MAX]; /* error: what went wrong and what to do */
    segloss_result *result;             /* 200: the numbers (owned) */
    uint64_t *item_counts;              /* 200, recorded requests: n x 3 x C per-item counts
                                           (segloss_evaluate_items), else NULL; owned */
    double decode_ms, compute_ms, total_ms;
    size_t items_during_upload; /* 200: batch items of req->prepared the answer used */
} evaluation_outcome;

/* Monotonic seconds. */
double evaluation_now(void);

/* Runs one evaluation; *out is always filled (status 200 or an error). Never crashes on bad
 * input. */
void evaluation_run(segloss_ctx *ctx, const segloss_limits *limits, const evaluation_request *req,
                    evaluation_outcome *out);

/*
 * The last step of every door (evaluation_run, the OIP v2 infer), once the logits and labels
 * are decoded and the parameters checked against C: evaluate, with the predicted-class map
 * and per-item counts when the hook will record the result; hand the result to the hook; keep
 * the numbers, the counts and the timing in *out, and the answer the hook recorded in
 * out->body. Of req it reads params, id, started, images and the hook (not the logits and mask
 * blobs). decode_started is evaluation_now() when decoding began (decode_ms). *out is always
 * filled; on an error it owns nothing.
 */
void evaluation_finish(segloss_ctx *ctx, const segloss_tensor *logits, const segloss_tensor *labels,
                       const evaluation_request *req, double decode_started,
                       evaluation_outcome *out);

/* Frees what an outcome owns and zeroes it. */
void evaluation_outcome_clear(evaluation_outcome *out);

#endif
