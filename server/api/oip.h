/*
 * oip.h - the Open Inference Protocol v2 (KServe / Triton REST) front door onto the evaluation.
 *
 * A second way in for clients written for Triton or KServe: one model, "segloss", version "1",
 * whose inputs are the logits (FP32, FP16, BF16, FP64; [N,C,H,W] or [C,H,W]), the labels (UINT8,
 * INT8, UINT16, INT32, INT64; [N,H,W] or [H,W]) and optionally the class weights (FP32 or FP64
 * [C]), and whose outputs are the numbers of POST /v1/evaluate. The loss parameters of
 * docs/ARCHITECTURE.md §5.4 go in the request-level `parameters` object and are parsed by
 * params.c (same rules, same messages); `binary_data_output` is the one protocol key taken out
 * before that.
 *
 * Tensor data: JSON `data` (flat or nested row-major; element count = shape product; numbers
 * only; integer labels within their datatype's range) for small tensors, or Triton's binary
 * tensor extension: the body is a JSON header of Inference-Header-Content-Length bytes followed
 * by each binary input's raw little-endian row-major bytes, in input order, sized by the input's
 * parameters.binary_data_size (= shape product x datatype size; the sizes add up to exactly the
 * rest of the body). Binary tensors are used in place, as views into the body buffer; only data
 * that is not aligned to its element size is copied (into aligned memory). oip_route.c places
 * the body in its buffer so that the binary section starts 64-byte aligned, so that copy is
 * rare.
 *
 * Outputs: ce, focal, dice, total (FP32 [1]), dice_per_class, iou_per_class, f_score_per_class
 * (FP32 [C]) by default, confusion_matrix (INT64 [C,C]) when the parameter confusion_matrix is
 * true or it is listed in `outputs`, and on request precision_per_class, recall_per_class
 * (FP32 [C]), support_per_class (INT64 [C]), mean_dice, mean_f_score, miou, mpa, accuracy
 * (FP32 [1]). Listing `outputs` answers exactly those (in that order). FP32 outputs are the
 * library's float64 numbers rounded to float32. An undefined number (cross-entropy when every
 * pixel is ignored, a standard-semantics ratio with a zero denominator) is JSON null in JSON
 * outputs and NaN in binary ones. Binary outputs (request parameter binary_data_output, or
 * per output parameters.binary_data) follow the JSON header of the answer, whose length is the
 * answer's Inference-Header-Content-Length header.
 *
 * Errors are a status and a detail; every /v2 error is answered as application/json
 * {"error": detail} (oip_error_json, oip_route.h), the error object of the KServe and Triton
 * REST APIs.
 */
#ifndef SERVER_OIP_H
#define SERVER_OIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss/segloss.h"
#include "service/evaluation.h"
#include "service/params.h"

#define OIP_MODEL_NAME "segloss"
#define OIP_MODEL_VERSION "1"
/* The request header naming the JSON part's length (and the answer header, for binary). */
#define OIP_HEADER_LENGTH "Inference-Header-Content-Length"
#define OIP_BINARY_TYPE "application/octet-stream"
/* The JSON part of a request: tensor data in JSON costs a parser node (~64 bytes) per number,
 * so JSON is for small tensors; 16 MiB of JSON text is at most ~8 M numbers. Send real batches
 * with the binary extension, whose data is not parsed at all. */
#define OIP_MAX_JSON_BYTES ((size_t)16 << 20)
/* Aligning the binary section of a request body: the largest element (8 bytes) and a cache
 * line for the vector kernels. */
#define OIP_BODY_ALIGN 64

typedef enum oip_output {
    OIP_OUT_CE,
    OIP_OUT_FOCAL,
    OIP_OUT_DICE,
    OIP_OUT_TOTAL,
    OIP_OUT_DICE_PER_CLASS,
    OIP_OUT_IOU_PER_CLASS,
    OIP_OUT_F_SCORE_PER_CLASS,
    OIP_OUT_CONFUSION_MATRIX,
    OIP_OUT_PRECISION_PER_CLASS,
    OIP_OUT_RECALL_PER_CLASS,
    OIP_OUT_SUPPORT_PER_CLASS,
    OIP_OUT_MEAN_DICE,
    OIP_OUT_MEAN_F_SCORE,
    OIP_OUT_MIOU,
    OIP_OUT_MPA,
    OIP_OUT_ACCURACY,
    OIP_OUT_COUNT
} oip_output;

/* A parsed inference request. Tensor views point into the body (binary data used in place) or
 * into the owned_* copies. */
typedef struct oip_request {
    char *id; /* the request's "id", echoed; NULL when absent */
    segloss_tensor logits, labels;
    void *owned_logits, *owned_labels; /* aligned copies (JSON data, misaligned binary) */
    params_request params;             /* parameters (and the class_weights input) */
    bool binary_output;                /* parameters.binary_data_output */
    size_t output_count;               /* answered outputs, in order */
    oip_output outputs[OIP_OUT_COUNT];
    bool output_binary[OIP_OUT_COUNT];
} oip_request;

/*
 * Parses body (len bytes). header_len is the Inference-Header-Content-Length value (NULL when
 * the header is absent: the whole body is JSON). Checks the tensors against limits and the
 * parameters with params.c (not yet against C: oip_infer does that). Returns 0, or a 4xx status
 * with a detail that names the input and what to fix (413 for a size over a limit or JSON over
 * OIP_MAX_JSON_BYTES, 415 for a datatype the input does not take, 400 for the rest). *out is
 * always initialised; free it with oip_request_free.
 */
int oip_parse(const void *body, size_t len, const char *header_len, const segloss_limits *limits,
              size_t max_params_bytes, oip_request *out, char *detail, size_t detail_len);
void oip_request_free(oip_request *req);

/*
 * Writes the answer for a result: JSON, or the JSON header followed by the binary outputs.
 * Returns the malloc'ed body, its length in *len and the JSON part's length in *json_len
 * (== *len when no output is binary); NULL on OOM.
 */
char *oip_response(const oip_request *req, const segloss_result *result, const char *eval_id,
                   size_t *len, size_t *json_len);

typedef struct oip_infer_input {
    const void *body;
    size_t len;
    const char *header_len; /* the request's Inference-Header-Content-Length, or NULL */
    const segloss_limits *limits;
    size_t max_params_bytes;
    const char *id;       /* the evaluation id (runs store, logs) */
    double started;       /* evaluation_now() at the start of the request */
    evaluation_hook hook; /* as for /v1/evaluate: results carrying `run` are recorded */
    void *hook_arg;
} oip_infer_input;

typedef struct oip_outcome {
    int status; /* 200 or the error status */
    char *body; /* 200: the answer (owned; oip_outcome_clear) */
    size_t body_len;
    size_t json_len; /* < body_len when binary outputs follow the JSON */
    char detail[EVALUATION_DETAIL_MAX];
    double decode_ms, compute_ms;
    size_t items; /* 200: batch items evaluated (all after the upload: no intake here) */
} oip_outcome;

/* Parses, evaluates (the library call of /v1/evaluate, same params), answers. *out is always
 * filled. Thread-safe as evaluation_run is. */
void oip_infer(segloss_ctx *ctx, const oip_infer_input *in, oip_outcome *out);
void oip_outcome_clear(oip_outcome *out);

/* GET /v2 and GET /v2/models/segloss bodies (malloc'ed JSON; NULL on OOM). */
char *oip_server_metadata(size_t *len);
char *oip_model_metadata(size_t *len);

/*
 * The GET routes of /v2, for the route table (oip_route.c): fills status and body for path
 * (draining: the server is shutting down, so ready answers 503). Health and ready answers are
 * {"live": true} and {"ready": true} ({"ready": false} with the 503). Returns false when the path
 * is not one of them.
 */
bool oip_get(const char *path, bool draining, int *status, char **body, size_t *len);

/* The error body of every /v2 answer that is not a 2xx: {"error": detail} (malloc'ed JSON;
 * NULL on OOM). */
char *oip_error_json(const char *detail, size_t *len);

/* Rewrites a detail written for /v1/evaluate (a params part, masks) in the protocol's words
 * (parameters, labels) in place; names the client sent, in single quotes, are left alone. */
void oip_speak_v2(char *detail, size_t detail_len);

#endif
