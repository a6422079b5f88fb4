/*
 * store_backend.h - what a runs store backend implements: the queries, and the SQL steps the
 * record is made of (store_record.c strings them together, once for every backend).
 *
 * A backend's handle starts with struct store; its store_ops table answers the queries and
 * gives the record's transaction and steps. The record's rules (what is valid, when a key
 * replays, when stats may merge, what the history holds, what retention keeps) are the
 * caller's, store_record.c; a step only reads or writes what it is told. The facade (store.c)
 * opens a backend through its store_backend; the backends include this header and
 * store_types.h, never store.h.
 *
 * Errors: a step returns STORE_OK (or the positive value it documents) or a negative
 * store_status with a detail in the error buffer of its transaction (the one given to
 * record_transaction). Thread-safety: as store.h; one transaction is used by one thread.
 */
#ifndef SERVER_STORE_BACKEND_H
#define SERVER_STORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss/loss.h"
#include "store/backend/store_types.h"

/* One record's transaction, as the backend keeps it (its connection and error buffer). */
typedef struct store_txn store_txn;

/* The record's work inside a transaction (store_record.c): returns a store_status; it has
 * committed when it returns STORE_OK after commit, and rolled back otherwise. */
typedef int (*store_txn_body)(store_txn *t, void *arg);

/* An Idempotency-Key found recorded (claim_key): its request's fingerprint and first answer. */
typedef struct store_key_found {
    bool hash_ok; /* the fingerprint had the right length */
    uint8_t request_hash[STORE_REQUEST_HASH_LEN];
    char *answer; /* malloc'ed; NULL when out of memory */
    size_t answer_len;
} store_key_found;

/* The (run, split, step) aggregate as stored (load_aggregate). */
typedef struct store_stored_aggregate {
    segloss_stats *stats;   /* owned; NULL when unreadable */
    char *loss_params_json; /* owned; NULL when unreadable */
    size_t h, w;
} store_stored_aggregate;

/* The steps of one record, in the order store_record.c calls them; `split` is never NULL. */
typedef struct store_record_steps {
    /* Begins the transaction and takes the locks the record needs before it reads anything
     * (a failure leaves no transaction open). */
    int (*begin)(store_txn *t, const store_evaluation *ev);
    /* Writes ev's Idempotency-Key with its fingerprint and answer: 0 when it was written, 1 when
     * the key was there already (*found filled; the caller frees found->answer). */
    int (*claim_key)(store_txn *t, const store_evaluation *ev, store_key_found *found);
    /* The evaluation row; its row number in *seq. 1: this record's evaluation is stored
     * already, committed by an earlier try whose answer was lost (nothing else to do). */
    int (*insert_evaluation)(store_txn *t, const store_evaluation *ev, const char *split,
                             int64_t *seq);
    /* The overlay maps of ev->items[0 .. ev->item_count). */
    int (*insert_items)(store_txn *t, int64_t seq, const store_evaluation *ev);
    /* The figures of the ev->n items. */
    int (*insert_figures)(store_txn *t, int64_t seq, const store_evaluation *ev);
    /* Reads the (run, split, step) aggregate, locked until the transaction ends: 0 when there
     * is none yet (save_aggregate makes it), 1 when *out is filled (the caller frees it). */
    int (*load_aggregate)(store_txn *t, const store_evaluation *ev, const char *split,
                          const char *loss_params_json, store_stored_aggregate *out);
    /* Writes the aggregate, serialised (segloss_stats_serialize), with one more evaluation. */
    int (*save_aggregate)(store_txn *t, const store_evaluation *ev, const char *split,
                          const uint8_t *stats, size_t stats_len, const char *loss_params_json,
                          size_t h, size_t w);
    /* Writes or overwrites the step's history points (NaN: undefined). */
    int (*put_history)(store_txn *t, const store_evaluation *ev, const char *split,
                       const double values[STORE_HISTORY_KEY_COUNT]);
    /* Deletes the run's evaluations (with their items and figures) but the newest keep. */
    int (*retain)(store_txn *t, const char *run, size_t keep);
    /* The run's row with its new revision, which no run had before. */
    int (*finish_run)(store_txn *t, const store_evaluation *ev);
    int (*commit)(store_txn *t);
    void (*rollback)(store_txn *t);
} store_record_steps;

typedef struct store_ops {
    const char *name; /* "sqlite", "postgres" */
    void (*close)(store *s);
    /* Runs body in a new transaction and returns what it returns; a backend may run it again
     * (a serialization failure, a connection lost before COMMIT), so body must start afresh. */
    int (*record_transaction)(store *s, store_txn_body body, void *arg, char *err, size_t err_len);
    store_record_steps record;
    int (*list_runs)(store *s, size_t max_results, const char *page_token, store_run_list *out,
                     char *err, size_t err_len);
    int (*run_summary)(store *s, const char *run, store_run_summary *out, char *err,
                       size_t err_len);
    int (*history)(store *s, const store_history_query *q, store_history *out, char *err,
                   size_t err_len);
    int (*evaluation)(store *s, const char *id, char **answer, size_t *len, char *err,
                      size_t err_len);
    int (*overlay_input)(store *s, const char *id, size_t item, store_overlay_input *out, char *err,
                         size_t err_len);
    int (*delete_run)(store *s, const char *run, char *err, size_t err_len);
    int (*revision)(store *s, const char *run, uint64_t *out, char *err, size_t err_len);
    int (*disk_bytes)(store *s, uint64_t *out);
    int (*items)(store *s, const store_items_query *q, store_item_list *out, char *err,
                 size_t err_len);
    int (*aggregates)(store *s, const store_aggregate_query *q, store_aggregate_list *out,
                      char *err, size_t err_len);
} store_ops;

/* Every backend's handle starts with this. */
struct store {
    const store_ops *ops;
    size_t retain_evaluations; /* per run; 0 = keep all */
};

/* A backend that store_open can choose. */
typedef struct store_backend {
    const char *name;
    /* Whether opt->location is this backend's (a URL scheme); NULL: any location. */
    bool (*accepts)(const char *location);
    int (*open)(const store_options *opt, store **out, char *err, size_t err_len);
} store_backend;

extern const store_backend store_sqlite_backend;   /* store_sqlite.c: a data directory */
extern const store_backend store_postgres_backend; /* store_postgres.c: a postgres:// URL */

/* Shared by the backends (store__: internal to the store's files). Hex of n bytes into out
 * (2n + 1 bytes); its inverse (-1 unless exactly 2n hex digits); a history page token for the
 * (step, seq) of the last point returned, malloc'ed, and its parser (-1 when malformed). */
void store__hex_encode(const uint8_t *in, size_t n, char *out);
int store__hex_decode(const char *in, uint8_t *out, size_t n);
char *store__history_token(int64_t step, int64_t seq);
int store__history_token_parse(const char *token, int64_t *step, int64_t *seq);

#endif
