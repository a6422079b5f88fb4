/*
 * store_finalize.h - the numbers of a stored aggregate: its exact stats finalised with the loss
 * parameters it was recorded with.
 *
 * The store keeps statistics, never results (docs/ARCHITECTURE.md §4), and their loss
 * parameters as the JSON object store_loss_params_json writes. Reading that object back is the
 * evaluation parameters' business (params_set_json), so finalising lives here, above the store,
 * for the runs API and the tests that read aggregates.
 */
#ifndef SERVER_STORE_FINALIZE_H
#define SERVER_STORE_FINALIZE_H

#include <stddef.h>

#include "segloss/loss.h"
#include "store/store.h"

/*
 * Finalises stats made with loss parameters loss_params_json (store_loss_params_json) into a
 * result (caller frees with segloss_result_free). Returns 0 or STORE_FAILED with a detail.
 */
int store_finalize(const segloss_stats *stats, const char *loss_params_json, segloss_result **out,
                   char *err, size_t err_len);

#endif
