/*
 * store.h - the runs store: durable evaluations, exact per-step aggregates and metric history.
 *
 * A result posted with `run` is recorded here (docs/ARCHITECTURE.md §6). One record is one
 * transaction: the evaluation row (its answer and what the overlay needs), the merge of its
 * additive statistics into the (run, split, step) aggregate, the run row, the finalised metrics
 * of that step in the history table, and the revision counters that ETags are made from. The
 * record call returns only after the commit is on disk, so an answer sent after it survives a
 * kill -9.
 *
 * The interface is backend-neutral: a `store` is an opaque handle. Callers use only the store_*
 * functions below (the data they take and give: store_types.h). store_record.c writes the record
 * once, as a sequence of SQL steps each backend provides; store.c checks the queries' arguments
 * and hands them to the backend. The backends (store_sqlite.c: SQLite in WAL mode under the data
 * directory; store_postgres.c: PostgreSQL for several replicas) implement store_backend.h and
 * never include this header.
 *
 * Ownership: every pointer in a store_evaluation is borrowed for the duration of store_record.
 * Query results are allocated by the store and released with their matching _free function,
 * which accepts NULL. Thread-safety: every function may be called from any thread at the same
 * time as any other, except store_close.
 *
 * Errors: functions return 0, STORE_NOT_FOUND, STORE_CONFLICT (the aggregate was made with other
 * classes, semantics or loss parameters), STORE_INVALID (a bad argument, e.g. a page token),
 * STORE_FAILED (I/O, disk full, corruption) or STORE_UNAVAILABLE (a database server cannot be
 * reached for now; retry later); a detail goes into the caller's buffer.
 */
#ifndef SERVER_STORE_H
#define SERVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss/loss.h"
#include "store/backend/store_types.h"

/* --- the calls --------------------------------------------------------------------------- */

/*
 * Opens (creating and migrating as needed) the store at opt->location: a directory (created
 * when missing, its parent is not) gets <dir>/segloss.db; a postgres:// URL gets the tables of
 * store_postgres.c in the URL's database (and the first schema of its search_path). Returns 0
 * and *out, or STORE_FAILED with a detail (e.g. the directory is not writable, the server cannot
 * be reached, the schema is newer than this binary).
 */
int store_open(const store_options *opt, store **out, char *err, size_t err_len);
/* Closes the store and frees it. Accepts NULL. No call may be in progress. */
void store_close(store *s);

/*
 * Records one evaluation (see the file comment). STORE_CONFLICT when the (run, split, step)
 * aggregate holds stats of another class count, semantics or loss parameters; nothing is
 * written then. With an idempotency key: STORE_OK with replay->replayed when the key was
 * recorded before with the same fingerprint (nothing written), STORE_KEY_REUSED when with
 * another. Concurrent records of one key (any replica) record once: the key is unique. Returns only
 * once the transaction is committed (or rolled back).
 */
int store_record(store *s, const store_evaluation *ev, char *err, size_t err_len);

/* Runs by name, max_results per page (1..STORE_RUNS_MAX_RESULTS). */
int store_list_runs(store *s, size_t max_results, const char *page_token, store_run_list *out,
                    char *err, size_t err_len);

/* The run and, per split, the aggregate of its latest step. STORE_NOT_FOUND for no run. */
int store_get_run(store *s, const char *run, store_run_summary *out, char *err, size_t err_len);

/*
 * A page of the run's metric history, ordered by step and then by when the point was first
 * written. A point is the finalised aggregate of its step, overwritten as more batches of that
 * step arrive. Paging is stable while results arrive: the token is the (step, row) of the last
 * point returned, so no point is returned twice and none that existed when the first page was
 * read is skipped. STORE_NOT_FOUND for no run, STORE_INVALID for a malformed token.
 */
int store_history_page(store *s, const store_history_query *q, store_history *out, char *err,
                       size_t err_len);

/* The stored 200 answer of an evaluation (caller frees *answer). STORE_NOT_FOUND when unknown
 * or removed by retention. */
int store_evaluation_answer(store *s, const char *id, char **answer, size_t *len, char *err,
                            size_t err_len);

/* What overlay_render needs for one batch item. STORE_NOT_FOUND for an unknown id or item. */
int store_overlay_input_get(store *s, const char *id, size_t item, store_overlay_input *out,
                            char *err, size_t err_len);

/* Deletes the run with its evaluations, aggregates and history. STORE_NOT_FOUND for no run. */
int store_delete_run(store *s, const char *run, char *err, size_t err_len);

/*
 * A revision for ETags: of one run (run != NULL; STORE_NOT_FOUND when there is none) or of the
 * whole store (run == NULL; changes when any run is recorded or deleted). Revisions only grow
 * and are never reused, even across a delete and a re-create of the same run name.
 */
int store_revision(store *s, const char *run, uint64_t *out, char *err, size_t err_len);

/*
 * The kept per-item figures of one step of a split, across the step's evaluations, ordered by
 * q->sort (ties: by evaluation, then item) and cut at q->limit; out->total counts them all.
 * STORE_NOT_FOUND for no run; a split or step without items is an empty list.
 */
int store_items(store *s, const store_items_query *q, store_item_list *out, char *err,
                size_t err_len);

/* The aggregates of a split with step >= q->from_step, by step, at most q->max_results.
 * STORE_NOT_FOUND for no run. */
int store_aggregates(store *s, const store_aggregate_query *q, store_aggregate_list *out, char *err,
                     size_t err_len);

/* Bytes the store uses on disk (SQLite: database, WAL and shared-memory files). */
int store_disk_bytes(store *s, uint64_t *out);

/* --- helpers for callers and the record ------------------------------------------------ */

/* A run name (names_run_ok): 1..128 characters of [A-Za-z0-9._-]. */
bool store_run_name_ok(const char *run);
/* A split (names_split_ok): 1..64 characters of [A-Za-z0-9._-]. */
bool store_split_name_ok(const char *split);
/* An Idempotency-Key: 1..STORE_IDEMPOTENCY_KEY_MAX characters from '!' to '~'. */
bool store_idempotency_key_ok(const char *key);

/*
 * The loss parameters as a canonical JSON object (keys of params_set_json, doubles with 17
 * digits): the aggregate keeps it to finalise later (store_finalize.h) and to refuse merging
 * stats made with other parameters. Caller frees. NULL on OOM.
 */
char *store_loss_params_json(const segloss_params *loss, size_t num_classes);

/* The value of history key i (store_history_keys) in a result; NaN when undefined. */
double store_history_value(const segloss_result *r, size_t key);

/* Index of a history key, or -1. */
int store_history_key_index(const char *key);

#endif
