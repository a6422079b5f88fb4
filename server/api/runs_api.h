/*
 * runs_api.h - the runs, history and evaluations routes (docs/ARCHITECTURE.md §6), free of HTTP
 * library types so they can be tested by calling them.
 *
 * Each route is one function taking a route_request (route.h: the path's run name or id, a
 * getter for decoded query parameters, the If-None-Match header) and filling a route_response
 * (a status, a content type, a body, an ETag and at most one extra header) that the server
 * sends as it is; the route table (routes.c) lists them.
 *
 *   GET    /v1/runs                      ?max_results=1..1000 (100) &page_token=
 *   GET    /v1/runs/{run}                ?confusion_matrix=true
 *   DELETE /v1/runs/{run}                204
 *   GET    /v1/runs/{run}/history        ?key=loss.total[,metrics.miou...] (all) &split=val
 *                                        &since_step=N &max_results=1..1000 (1000)
 *                                        &page_token= &format=json|csv
 *   GET    /v1/evaluations/{id}          the stored 200 answer
 *   GET    /v1/evaluations/{id}/overlay.png ?item=0..N-1 (0)
 *
 * Answers (JSON):
 *   /v1/runs: {"runs":[{"run","created_ms","updated_ms","last_step","evaluations","revision",
 *              "splits":["val",...]}],"next_page_token":null|"..."}
 *   /v1/runs/{run}: {"run","created_ms","updated_ms","last_step","evaluations","revision",
 *              "class_names":[...]|null,"splits":{"val":{"split","step","timestamp",
 *              "evaluations","batches","latest_evaluations":[{"id","step","timestamp","n",
 *              "overlay_items","has_overlay","overlay"}], then the members of a POST
 *              /v1/evaluate answer for the step's aggregate: "shape","num_classes",
 *              "pixels","loss","per_class","metrics","params"[,"confusion_matrix"]}}}
 *   history: {"metrics":[{"key","value","step","timestamp"}],"next_page_token":null|"..."}
 *              (MLflow's get-history shape; value null when undefined; timestamp in ms); CSV:
 *              header key,value,step,timestamp, and the next token in X-Next-Page-Token.
 *
 * Every GET answer carries an ETag made from the store's revision and the query, and a matching
 * If-None-Match gives 304 with no body (ETags are strong; W/ prefixes and lists are accepted).
 * Errors are problem+json: 400 naming the bad parameter, 404 for an unknown run, id or item,
 * 409/500 from the store (404 and 405 for unknown routes and methods come from the table).
 *
 * Thread-safe (the store is); one call per request.
 */
#ifndef SERVER_RUNS_API_H
#define SERVER_RUNS_API_H

#include <stdbool.h>
#include <stddef.h>

#include "http/route.h"
#include "segloss/loss.h"
#include "segloss/tensor.h"
#include "service/evaluation.h"
#include "store/store.h"

/* Runs listed per page when max_results is not given. */
#define RUNS_API_DEFAULT_RUNS 100

/* --- the write side: one call from the daemon's result hook --------------------------------- */

/* What the daemon has at hand after a 200 with `run`; pointers are borrowed for the call. */
typedef struct runs_record_input {
    const char *id;    /* the evaluation id of the answer */
    const char *run;   /* params->run */
    const char *split; /* params->split, NULL = "val" */
    bool has_step;
    int64_t step;                 /* params->step; 0 when not given */
    const segloss_params *loss;   /* &params->loss */
    const segloss_result *result; /* the outcome's result (stats, shape) */
    const char *answer;           /* the 200 body */
    size_t answer_len;
    const char *class_names_json; /* a JSON array of C names, or NULL */
    /* overlays (all optional): the labels the evaluation used (n,h,w), the predicted-class map
     * (n*h*w) from segloss_evaluate_with_argmax, and the uploaded images in batch order */
    const segloss_tensor *labels;
    const uint16_t *argmax;
    const evaluation_blob *images;
    size_t image_count;
    const segloss_limits *limits; /* the configured shape limits; NULL: the defaults */
    /* per-item counts (segloss_evaluate_items, n x 3 x C), or NULL to keep no figures */
    const uint64_t *item_counts;
    /* exactly once (optional): the Idempotency-Key, the request's fingerprint (32 bytes), and
     * where the first answer goes when the key was recorded before (nothing is written then) */
    const char *idempotency_key;
    const uint8_t *request_hash;
    evaluation_answer *replay;
} runs_record_input;

/*
 * Records one answered evaluation in the store and returns only after it is committed.
 * Returns 200, or the HTTP status to answer instead (400 a bad run or split name, 409 the step
 * was recorded with other classes, semantics or loss parameters, 422 the Idempotency-Key was
 * recorded with another request, 500 the disk failed) with a
 * detail in err. The daemon should send that status (as problem+json) instead of the 200, so a
 * client never sees a 200 for a result that is not stored.
 */
int runs_record(store *st, const runs_record_input *in, char *err, size_t err_len);

/* The HTTP status of a store_status: 200, 404, 409, 400, 500, 503, 507, 422. */
int runs_api_store_status(int rc);

/*
 * The routes, one function each, for the route table (routes.c). The request's segment is the
 * run name or the evaluation id of the path; *out is filled (free with route_response_free).
 * Each answers 503 when st is NULL (the store is not open).
 */
void runs_api_list(store *st, const route_request *req, route_response *out);
void runs_api_run(store *st, const route_request *req, route_response *out);
void runs_api_delete_run(store *st, const route_request *req, route_response *out);
void runs_api_history(store *st, const route_request *req, route_response *out);
void runs_api_items(store *st, const route_request *req, route_response *out);
void runs_api_evaluation(store *st, const route_request *req, route_response *out);
void runs_api_overlay(store *st, const route_request *req, route_response *out);

#endif
