/*
 * result_json.h - the JSON body of a successful POST /v1/evaluate (docs/ARCHITECTURE.md §5.3).
 *
 * The same text is printed by `seglossd eval`, kept by the runs store for a recorded
 * evaluation, and its members (without "id" and "timing") describe a step's aggregate in
 * GET /v1/runs/{run}. Doubles are written with 17 significant digits
 * (exact float64 round trip); NaN (undefined) is null. `params` lists every effective parameter,
 * defaults included, so a stored answer says how it was computed.
 */
#ifndef SERVER_RESULT_JSON_H
#define SERVER_RESULT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "base/json_writer.h"
#include "segloss/loss.h"
#include "service/evaluation.h"
#include "service/params.h"

typedef struct result_timing {
    double decode_ms, compute_ms, total_ms;
} result_timing;

/* Returns the NUL-terminated body (caller frees) and its length; NULL on OOM. */
char *result_json(const segloss_result *result, const params_request *params, const char *id,
                  const result_timing *timing, size_t *len);

/*
 * As result_json, with an "items" array when item_counts (segloss_evaluate_items, N x 3 x C)
 * is not NULL: per batch item its valid pixels, accuracy, miou and mean_dice over its present
 * classes, the number of present classes and its per-class IoU (null for absent classes), as
 * segloss_item_figures_from_counts makes them. A recorded evaluation's answer has them.
 */
char *result_json_items(const segloss_result *result, const params_request *params, const char *id,
                        const result_timing *timing, const uint64_t *item_counts, size_t *len);

/*
 * The members of that answer, written into the object open in w: "id" when id is not NULL,
 * "timing" when timing is not NULL, "items" when item_counts is not NULL.
 */
void result_json_members(json_writer *w, const segloss_result *result, const params_request *params,
                         const char *id, const result_timing *timing, const uint64_t *item_counts);

/*
 * After evaluation_run (or evaluation_finish) returned 200: writes the answer into out->body,
 * unless out already holds the answer a record hook recorded, from the outcome's numbers,
 * timing and per-item counts and req's parameters and id. Out of memory makes out a 503.
 */
void evaluation_answer_json(evaluation_outcome *out, const evaluation_request *req);

/* The same answer for what a record hook is given: the text a store keeps and sends (caller
 * frees) and its length; NULL on OOM. */
char *evaluation_record_json(const evaluation_record *rec, size_t *len);

#endif
