/*
 * result_json.h - the JSON body of a successful POST /v1/evaluate (DESIGN.md section 3).
 *
 * The same text is printed by `seglossd eval`. Doubles are written with 17 significant digits
 * (exact float64 round trip); NaN (undefined) is null. `params` lists every effective parameter,
 * defaults included, so a stored answer says how it was computed.
 */
#ifndef SERVER_RESULT_JSON_H
#define SERVER_RESULT_JSON_H

#include <stddef.h>

#include "params.h"
#include "segloss/loss.h"

typedef struct result_timing {
    double decode_ms, compute_ms, total_ms;
} result_timing;

/* Returns the NUL-terminated body (caller frees) and its length; NULL on OOM. */
char *result_json(const segloss_result *result, const params_request *params, const char *id,
                  const result_timing *timing, size_t *len);

#endif
