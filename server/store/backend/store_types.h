/*
 * store_types.h - what the runs store takes and gives: the status codes, the limits, an
 * evaluation to record and the results of the queries, and the functions that free them.
 *
 * Shared by the facade's callers (through store.h) and the backends (through store_backend.h),
 * so that neither needs the other's header. Ownership: every pointer in a store_evaluation is
 * borrowed for the duration of store_record; query results are allocated by the store and
 * released with their matching _free function, which accepts NULL.
 */
#ifndef SERVER_STORE_TYPES_H
#define SERVER_STORE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segloss/loss.h"

typedef enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND = -1,
    STORE_CONFLICT = -2,
    STORE_INVALID = -3,
    STORE_FAILED = -4,
    STORE_UNAVAILABLE = -5, /* read-only, I/O error, locked, server away: retry later */
    STORE_FULL = -6,        /* no space left for the data: 507 until space is freed */
    STORE_KEY_REUSED = -7   /* an Idempotency-Key recorded with another request: 422 */
} store_status;

/* When no split is given, results are recorded under this one. */
#define STORE_DEFAULT_SPLIT "val"
/* The history keys written for every step, in this order. */
#define STORE_HISTORY_KEY_COUNT 9
extern const char *const store_history_keys[STORE_HISTORY_KEY_COUNT];
/* A history page holds at most this many points (MLflow's get-history page is 25000; a
 * dashboard polls often, so small pages keep each answer cheap). */
#define STORE_HISTORY_MAX_RESULTS 1000
/* How many of the latest evaluation ids a run summary lists per split. */
#define STORE_LATEST_IDS 8
/* Overlays are kept for the first this many items of a batch: a dashboard shows a few, and a
 * 4096-image batch would otherwise store thousands of maps per request. */
#define STORE_MAX_OVERLAY_ITEMS 64
/* A run list page holds at most this many runs. */
#define STORE_RUNS_MAX_RESULTS 1000
/* An Idempotency-Key is 1..255 printable ASCII characters (a UUID is 36; the bound keeps the
 * key table's index small and a hostile header cheap). */
#define STORE_IDEMPOTENCY_KEY_MAX 255
/* The bytes of a request fingerprint (SHA-256). */
#define STORE_REQUEST_HASH_LEN 32

/* What the overlay of one batch item needs. Bytes are borrowed (store_record) or owned by the
 * enclosing result (queries). */
typedef struct store_item {
    const uint8_t *prediction; /* the argmax map, encoded by overlay_encode_classmap */
    size_t prediction_len;
    const uint8_t *labels; /* the ground truth, same encoding (ignored pixels = C) */
    size_t labels_len;
    const uint8_t *image; /* the uploaded image (JPEG or PNG, small); NULL when none */
    size_t image_len;
} store_item;

/* The figures of one batch item (segloss_item_figures): NaN = undefined (no valid pixel). */
typedef struct store_item_figures {
    double accuracy, miou, mean_dice;
    size_t present;       /* classes with ground-truth pixels in the item */
    const char *iou_json; /* a JSON array of C IoUs, null for absent classes (borrowed) */
} store_item_figures;
/* What a record with an Idempotency-Key found: the key was recorded before with the same
 * request, so nothing was written and this is the original answer (malloc'ed; caller frees). */
typedef struct store_replay {
    bool replayed;
    char *answer;
    size_t answer_len;
} store_replay;

/* One evaluation to record. */
typedef struct store_evaluation {
    const char *id;             /* 32 hex digits (ids.h) */
    int64_t timestamp_ms;       /* Unix time in milliseconds */
    const char *run;            /* validated run name (store_run_name_ok) */
    const char *split;          /* NULL = STORE_DEFAULT_SPLIT */
    int64_t step;               /* 0 when the request gave none */
    size_t n, c, h, w;          /* the answer's shape */
    const segloss_params *loss; /* effective loss parameters (aggregates must agree) */
    const segloss_stats *stats; /* this evaluation's additive statistics */
    const char *answer_json;    /* the full 200 answer */
    size_t answer_len;
    const char *class_names_json; /* a JSON array of C strings, or NULL */
    const store_item *items;      /* the first item_count items (<= STORE_MAX_OVERLAY_ITEMS), or
                                   * NULL to keep no overlays */
    size_t item_count;
    const store_item_figures *figures; /* n per-item figures, or NULL to keep none */
    /* Exactly-once recording (optional): the request's Idempotency-Key (store_idempotency_key_ok)
     * and a fingerprint of the request. The key is stored with the evaluation in the same
     * transaction; a later record with the same key and fingerprint writes nothing and fills
     * *replay with the first answer, one with another fingerprint is STORE_KEY_REUSED. */
    const char *idempotency_key; /* NULL: none */
    const uint8_t *request_hash; /* STORE_REQUEST_HASH_LEN bytes, with a key */
    store_replay *replay;        /* with a key: where a replay goes */
} store_evaluation;

/* --- queries' results ------------------------------------------------------------------ */

typedef struct store_run_info {
    char *name;
    int64_t created_ms, updated_ms;
    int64_t last_step;
    uint64_t evaluations; /* recorded in all (retention does not lower it) */
    uint64_t revision;    /* changes whenever the run changes; never reused */
    char *splits;         /* list_runs only: its splits, comma-separated (NULL: none) */
} store_run_info;

typedef struct store_run_list {
    store_run_info *runs;
    size_t count;
    char *next_page_token; /* NULL on the last page */
} store_run_list;

/* A kept evaluation, as a summary lists it (for overlays: items = n). */
typedef struct store_evaluation_ref {
    char id[64];
    int64_t step;
    int64_t timestamp_ms;
    size_t n;         /* batch size */
    size_t items;     /* items with an overlay: 0 .. items-1 */
    bool has_overlay; /* items > 0 */
} store_evaluation_ref;

/* The latest aggregate of one split. */
typedef struct store_split_summary {
    char *split;
    int64_t step;
    int64_t updated_ms;
    uint64_t evaluations;   /* evaluations merged into this step */
    size_t h, w;            /* mask size when all batches agree, else 0 */
    segloss_stats *stats;   /* owned */
    char *loss_params_json; /* the loss parameters the stats were made with (params_set_json) */
    store_evaluation_ref *latest; /* newest first: kept evaluations of this split */
    size_t latest_count;
} store_split_summary;

typedef struct store_run_summary {
    store_run_info info;
    char *class_names_json; /* NULL when never given */
    store_split_summary *splits;
    size_t split_count;
} store_run_summary;

typedef struct store_history_point {
    const char *key; /* one of store_history_keys (static) */
    bool has_value;  /* false: the value was undefined (JSON null) */
    double value;
    int64_t step;
    int64_t timestamp_ms;
} store_history_point;

typedef struct store_history_query {
    const char *run;
    const char *split; /* NULL = STORE_DEFAULT_SPLIT */
    uint32_t key_mask; /* bit i = store_history_keys[i]; 0 = all keys */
    bool has_since_step;
    int64_t since_step;     /* points with step >= since_step */
    size_t max_results;     /* 1..STORE_HISTORY_MAX_RESULTS */
    const char *page_token; /* NULL or a next_page_token of an earlier page */
} store_history_query;

typedef struct store_history {
    store_history_point *points;
    size_t count;
    char *next_page_token; /* NULL when nothing more matched when the page was read */
} store_history;

/* How the items of a step are ordered (GET /v1/runs/{run}/items). */
typedef enum store_item_sort {
    STORE_SORT_MIOU = 0,
    STORE_SORT_ACCURACY = 1,
    STORE_SORT_MEAN_DICE = 2
} store_item_sort;
/* An items page holds at most this many items. */
#define STORE_ITEMS_MAX_RESULTS 1000

typedef struct store_items_query {
    const char *run;
    const char *split; /* NULL = STORE_DEFAULT_SPLIT */
    bool has_step;
    int64_t step; /* !has_step: the latest step of the split with kept items */
    store_item_sort sort;
    bool descending; /* undefined figures come last either way */
    size_t limit;    /* 1..STORE_ITEMS_MAX_RESULTS */
} store_items_query;

typedef struct store_item_row {
    char id[64];                      /* the evaluation */
    size_t item;                      /* index in its batch */
    bool has_overlay;                 /* item < the evaluation's overlay items */
    double accuracy, miou, mean_dice; /* NaN = null */
    size_t present;
    char *iou_json; /* owned */
} store_item_row;

typedef struct store_item_list {
    bool has_step; /* false: the split has no kept items */
    int64_t step;
    store_item_row *rows;
    size_t count;
    uint64_t total; /* items with figures at that step */
} store_item_list;

/* The aggregates of a split from a step on, by step (per-class history, a step's matrix). */
typedef struct store_aggregate_query {
    const char *run;
    const char *split;  /* NULL = STORE_DEFAULT_SPLIT */
    int64_t from_step;  /* steps >= from_step */
    size_t max_results; /* 1..STORE_HISTORY_MAX_RESULTS + 1 */
} store_aggregate_query;

typedef struct store_aggregate {
    int64_t step;
    int64_t updated_ms;
    uint64_t evaluations;
    segloss_stats *stats;   /* owned */
    char *loss_params_json; /* owned */
} store_aggregate;

typedef struct store_aggregate_list {
    store_aggregate *rows;
    size_t count;
} store_aggregate_list;

typedef struct store_overlay_input {
    size_t num_classes;
    store_item item; /* bytes owned by this struct */
    uint8_t *owned[3];
} store_overlay_input;

typedef struct store_options {
    const char *location;      /* a data directory (SQLite) or a postgres:// or postgresql://
                                * URL (libpq's syntax; PostgreSQL) */
    size_t retain_evaluations; /* 0 = keep every evaluation */
} store_options;

/* An open store (store_open; each backend's handle starts with struct store, store_backend.h). */
typedef struct store store;

/* --- freeing what queries give ----------------------------------------------------------- */

void store_run_list_free(store_run_list *list);
void store_run_summary_free(store_run_summary *summary);
void store_history_free(store_history *history);
void store_overlay_input_free(store_overlay_input *in);
void store_item_list_free(store_item_list *list);
void store_aggregate_list_free(store_aggregate_list *list);
/* Frees a replay's answer and zeroes it. */
void store_replay_clear(store_replay *replay);

#endif
