/*
 * store_record.c - the record, written once for every backend (docs/ARCHITECTURE.md §3): what a
 * record must hold, when an Idempotency-Key replays the first answer, when an evaluation's stats
 * may merge into its (run, split, step) aggregate, what the history keeps and what retention
 * drops. The backend gives the transaction and its SQL steps (store_backend.h); the steps run
 * in one order in one transaction, and the whole of it runs again when the backend says so
 * (PostgreSQL: a serialization failure or deadlock, a connection lost before COMMIT).
 */
#include "store/store.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend/store_backend.h"

/* What one record's transaction works with. */
typedef struct record_ctx {
    store *s;
    const store_evaluation *ev;
    const char *split;
    char *loss_json; /* store_loss_params_json of ev */
    char *err;       /* the record's error buffer, also the transaction's */
    size_t err_len;
} record_ctx;

/* Refuses to merge stats made differently; says what differs. */
static int check_mergeable(const segloss_stats *have, const char *have_params, const record_ctx *r)
{
    const segloss_stats *add = r->ev->stats;
    const char *what = NULL;
    char buf[160];
    if (have->num_classes != add->num_classes) {
        snprintf(buf, sizeof buf, "%zu classes; this result has %zu", have->num_classes,
                 add->num_classes);
        what = buf;
    } else if (have->semantics != add->semantics) {
        snprintf(buf, sizeof buf, "\"%s\" semantics; this result has \"%s\"",
                 have->semantics == SEGLOSS_STANDARD ? "standard" : "seed",
                 add->semantics == SEGLOSS_STANDARD ? "standard" : "seed");
        what = buf;
    } else if (strcmp(have_params, r->loss_json) != 0) {
        what = "other loss parameters (class_weights, alpha, gamma, beta, smooth, threshold, "
               "main_loss or dice_loss differ)";
    }
    if (!what)
        return STORE_OK;
    snprintf(r->err, r->err_len,
             "run \"%s\" split \"%s\" step %" PRId64 " was recorded with %s; record it under "
             "another step or run",
             r->ev->run, r->split, r->ev->step, what);
    return STORE_CONFLICT;
}

/*
 * The record's Idempotency-Key: 0 when it is new (now written with this evaluation), 1 when it
 * was recorded before with this request (ev->replay holds the first answer; nothing is to be
 * written), or a negative status: STORE_KEY_REUSED when it was recorded with another request.
 */
static int claim_key(store_txn *t, const record_ctx *r)
{
    const store_evaluation *ev = r->ev;
    store_key_found found = {0};
    store_replay_clear(ev->replay);
    int rc = r->s->ops->record.claim_key(t, ev, &found);
    if (rc != 1)
        return rc;
    if (!found.hash_ok ||
        memcmp(found.request_hash, ev->request_hash, STORE_REQUEST_HASH_LEN) != 0) {
        snprintf(r->err, r->err_len,
                 "Idempotency-Key \"%s\" was used with another request (other data or "
                 "parameters); use a new key for a new request",
                 ev->idempotency_key);
        free(found.answer);
        return STORE_KEY_REUSED;
    }
    if (!found.answer) {
        snprintf(r->err, r->err_len, "runs store: out of memory");
        return STORE_FAILED;
    }
    ev->replay->answer = found.answer;
    ev->replay->answer_len = found.answer_len;
    ev->replay->replayed = true;
    return 1;
}

/*
 * The (run, split, step) aggregate with ev's stats merged in exactly, into *agg (caller frees).
 * *h and *w stay the mask size while every batch of the step has it, else become 0.
 */
static int merge_aggregate(store_txn *t, const record_ctx *r, segloss_stats **agg, size_t *h,
                           size_t *w)
{
    const store_evaluation *ev = r->ev;
    store_stored_aggregate have = {0};
    int rc = r->s->ops->record.load_aggregate(t, ev, r->split, r->loss_json, &have);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (!(*agg = segloss_stats_clone(ev->stats))) {
            snprintf(r->err, r->err_len, "runs store: out of memory");
            return STORE_FAILED;
        }
        return STORE_OK;
    }
    if (have.h != *h || have.w != *w)
        *h = *w = 0;
    if (!have.stats || !have.loss_params_json) {
        snprintf(r->err, r->err_len,
                 "runs store: the aggregate of run \"%s\" step %" PRId64 " is unreadable", ev->run,
                 ev->step);
        rc = STORE_FAILED;
    } else if ((rc = check_mergeable(have.stats, have.loss_params_json, r)) == STORE_OK &&
               segloss_stats_merge(have.stats, ev->stats) != 0) {
        snprintf(r->err, r->err_len, "runs store: merging into run \"%s\" step %" PRId64 " failed",
                 ev->run, ev->step);
        rc = STORE_CONFLICT;
    }
    if (rc == STORE_OK) {
        *agg = have.stats;
        have.stats = NULL;
    }
    segloss_stats_free(have.stats);
    free(have.loss_params_json);
    return rc;
}

/* One record in the backend's transaction: every step, then COMMIT; ROLLBACK on any failure. */
static int record_txn(store_txn *t, void *arg)
{
    const record_ctx *r = arg;
    const store_record_steps *op = &r->s->ops->record;
    const store_evaluation *ev = r->ev;
    segloss_stats *agg = NULL;
    segloss_result *res = NULL;
    uint8_t *blob = NULL;
    int64_t seq = 0;
    int rc = op->begin(t, ev);
    if (rc != STORE_OK)
        return rc;

    if (ev->idempotency_key && (rc = claim_key(t, r)) != 0) {
        if (rc > 0) /* the same request again: its first answer, nothing written */
            rc = STORE_OK;
        goto rollback;
    }
    if ((rc = op->insert_evaluation(t, ev, r->split, &seq)) != 0) {
        if (rc > 0) /* committed by an earlier try of this record */
            rc = STORE_OK;
        goto rollback;
    }
    if (ev->items && ev->item_count && (rc = op->insert_items(t, seq, ev)) != STORE_OK)
        goto rollback;
    if (ev->figures && ev->n && (rc = op->insert_figures(t, seq, ev)) != STORE_OK)
        goto rollback;

    size_t h = ev->h, w = ev->w, need = 0;
    if ((rc = merge_aggregate(t, r, &agg, &h, &w)) != STORE_OK)
        goto rollback;
    segloss_stats_serialize(agg, NULL, 0, &need);
    blob = malloc(need ? need : 1);
    if (!blob || segloss_stats_serialize(agg, blob, need, &need) != 0) {
        snprintf(r->err, r->err_len, "runs store: out of memory");
        rc = STORE_FAILED;
        goto rollback;
    }
    if ((rc = op->save_aggregate(t, ev, r->split, blob, need, r->loss_json, h, w)) != STORE_OK)
        goto rollback;

    /* The step's finalised numbers, overwritten as more batches of the step arrive. */
    char detail[256];
    if (segloss_result_from_stats(agg, ev->loss, &res, detail, sizeof detail) != 0) {
        snprintf(r->err, r->err_len, "runs store: finalising the aggregate: %s", detail);
        rc = STORE_FAILED;
        goto rollback;
    }
    double values[STORE_HISTORY_KEY_COUNT];
    for (size_t k = 0; k < STORE_HISTORY_KEY_COUNT; k++)
        values[k] = store_history_value(res, k);
    if ((rc = op->put_history(t, ev, r->split, values)) != STORE_OK)
        goto rollback;

    if (r->s->retain_evaluations > 0 &&
        (rc = op->retain(t, ev->run, r->s->retain_evaluations)) != STORE_OK)
        goto rollback;
    if ((rc = op->finish_run(t, ev)) != STORE_OK || (rc = op->commit(t)) != STORE_OK)
        goto rollback;
    goto done;

rollback:
    op->rollback(t);
done:
    segloss_stats_free(agg);
    segloss_result_free(res);
    free(blob);
    return rc;
}

/* A JSON array of C strings (C = the stats' class count). */
static bool class_names_ok(const char *json, const segloss_stats *stats)
{
    cJSON *a = cJSON_Parse(json);
    bool ok = cJSON_IsArray(a) && stats && (size_t)cJSON_GetArraySize(a) == stats->num_classes;
    const cJSON *it;
    cJSON_ArrayForEach (it, a)
        ok = ok && cJSON_IsString(it);
    cJSON_Delete(a);
    return ok;
}

int store_record(store *s, const store_evaluation *ev, char *err, size_t err_len)
{
    if (!ev->id || !ev->run || !store_run_name_ok(ev->run)) {
        snprintf(err, err_len, "run must be 1 to 128 characters of A-Z a-z 0-9 . _ -");
        return STORE_INVALID;
    }
    if (ev->split && !store_split_name_ok(ev->split)) {
        snprintf(err, err_len, "split must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
        return STORE_INVALID;
    }
    if (ev->class_names_json && !class_names_ok(ev->class_names_json, ev->stats)) {
        snprintf(err, err_len, "class_names must be a JSON array of one string per class");
        return STORE_INVALID;
    }
    if (!ev->stats || !ev->loss || !ev->answer_json) {
        snprintf(err, err_len, "store_record: stats, loss parameters and answer are required");
        return STORE_INVALID;
    }
    if (ev->idempotency_key &&
        (!store_idempotency_key_ok(ev->idempotency_key) || !ev->request_hash || !ev->replay)) {
        snprintf(err, err_len,
                 "Idempotency-Key must be 1 to %d printable ASCII characters "
                 "without spaces",
                 STORE_IDEMPOTENCY_KEY_MAX);
        return STORE_INVALID;
    }
    if (ev->replay)
        memset(ev->replay, 0, sizeof *ev->replay);
    if (ev->items && (ev->item_count > ev->n || ev->item_count > STORE_MAX_OVERLAY_ITEMS)) {
        snprintf(err, err_len, "store_record: %zu overlay items for a batch of %zu", ev->item_count,
                 ev->n);
        return STORE_INVALID;
    }
    record_ctx r = {.s = s,
                    .ev = ev,
                    .split = ev->split ? ev->split : STORE_DEFAULT_SPLIT,
                    .loss_json = store_loss_params_json(ev->loss, ev->stats->num_classes),
                    .err = err,
                    .err_len = err_len};
    if (!r.loss_json) {
        snprintf(err, err_len, "runs store: out of memory");
        return STORE_FAILED;
    }
    int rc = s->ops->record_transaction(s, record_txn, &r, err, err_len);
    free(r.loss_json);
    return rc;
}
