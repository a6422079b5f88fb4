/*
 * store.c - the runs store's facade: opens a backend, checks the queries' arguments and hands
 * them to the backend's table (store_backend.h), and the helpers of store.h (names, the
 * canonical loss-parameter JSON, the history values). The record is store_record.c.
 */
#include "store/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_writer.h"
#include "base/names.h"
#include "base/request_hash.h"
#include "store/backend/store_backend.h"

/* The backends store_open chooses from: the first that accepts the location. */
static const store_backend *const backends[] = {&store_postgres_backend, &store_sqlite_backend};

int store_open(const store_options *opt, store **out, char *err, size_t err_len)
{
    *out = NULL;
    if (!opt || !opt->location || !*opt->location) {
        snprintf(err, err_len, "no data directory given for the runs store");
        return STORE_FAILED;
    }
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (!backends[i]->accepts || backends[i]->accepts(opt->location))
            return backends[i]->open(opt, out, err, err_len);
    snprintf(err, err_len, "no runs store backend for this location");
    return STORE_FAILED;
}

void store_close(store *s)
{
    if (s)
        s->ops->close(s);
}

int store_list_runs(store *s, size_t max_results, const char *page_token, store_run_list *out,
                    char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (max_results < 1 || max_results > STORE_RUNS_MAX_RESULTS) {
        snprintf(err, err_len, "max_results must be from 1 to %d", STORE_RUNS_MAX_RESULTS);
        return STORE_INVALID;
    }
    return s->ops->list_runs(s, max_results, page_token, out, err, err_len);
}

int store_get_run(store *s, const char *run, store_run_summary *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    return s->ops->run_summary(s, run, out, err, err_len);
}

int store_history_page(store *s, const store_history_query *q, store_history *out, char *err,
                       size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (q->max_results < 1 || q->max_results > STORE_HISTORY_MAX_RESULTS) {
        snprintf(err, err_len, "max_results must be from 1 to %d", STORE_HISTORY_MAX_RESULTS);
        return STORE_INVALID;
    }
    return s->ops->history(s, q, out, err, err_len);
}

int store_evaluation_answer(store *s, const char *id, char **answer, size_t *len, char *err,
                            size_t err_len)
{
    *answer = NULL;
    *len = 0;
    return s->ops->evaluation(s, id, answer, len, err, err_len);
}

int store_overlay_input_get(store *s, const char *id, size_t item, store_overlay_input *out,
                            char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    return s->ops->overlay_input(s, id, item, out, err, err_len);
}

int store_delete_run(store *s, const char *run, char *err, size_t err_len)
{
    return s->ops->delete_run(s, run, err, err_len);
}

int store_revision(store *s, const char *run, uint64_t *out, char *err, size_t err_len)
{
    *out = 0;
    return s->ops->revision(s, run, out, err, err_len);
}

int store_disk_bytes(store *s, uint64_t *out)
{
    *out = 0;
    return s->ops->disk_bytes(s, out);
}

bool store_run_name_ok(const char *run)
{
    return names_run_ok(run);
}

bool store_split_name_ok(const char *split)
{
    return names_split_ok(split);
}

_Static_assert(STORE_IDEMPOTENCY_KEY_MAX == REQUEST_KEY_MAX, "one key limit");
_Static_assert(STORE_REQUEST_HASH_LEN == REQUEST_HASH_LEN, "one fingerprint size");

bool store_idempotency_key_ok(const char *key)
{
    return request_key_ok(key);
}

char *store_loss_params_json(const segloss_params *l, size_t c)
{
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "class_weights");
    json_array_begin(&w);
    for (size_t k = 0; k < c; k++)
        json_number(&w, l->class_weights ? l->class_weights[k] : 1.0);
    json_array_end(&w);
    json_key(&w, "alpha");
    if (l->alpha_kind == SEGLOSS_ALPHA_NONE)
        json_null(&w);
    else if (l->alpha_kind == SEGLOSS_ALPHA_SCALAR)
        json_number(&w, l->alpha);
    else
        json_number_array(&w, l->alpha_per_class, l->alpha_len);
    json_key(&w, "gamma");
    json_number(&w, l->gamma);
    json_key(&w, "beta");
    json_number(&w, l->beta);
    json_key(&w, "smooth");
    json_number(&w, l->smooth);
    json_key(&w, "threshold");
    json_number(&w, l->threshold);
    json_key(&w, "main_loss");
    json_string(&w, l->main_loss == SEGLOSS_MAIN_FOCAL ? "focal" : "ce");
    json_key(&w, "dice_loss");
    json_bool(&w, l->dice_loss);
    json_key(&w, "num_classes");
    json_uint(&w, c);
    json_key(&w, "semantics");
    json_string(&w, l->semantics == SEGLOSS_STANDARD ? "standard" : "seed");
    json_object_end(&w);
    return json_writer_finish(&w, NULL);
}

double store_history_value(const segloss_result *r, size_t key)
{
    switch (key) {
    case 0: return r->ce;
    case 1: return r->focal;
    case 2: return r->dice;
    case 3: return r->total;
    case 4: return r->miou;
    case 5: return r->mean_dice;
    case 6: return r->mean_f_score;
    case 7: return r->mpa;
    case 8: return r->accuracy;
    default: return NAN;
    }
}

int store_history_key_index(const char *key)
{
    for (int i = 0; i < STORE_HISTORY_KEY_COUNT; i++)
        if (strcmp(store_history_keys[i], key) == 0)
            return i;
    return -1;
}

int store_items(store *s, const store_items_query *q, store_item_list *out, char *err,
                size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (q->limit < 1 || q->limit > STORE_ITEMS_MAX_RESULTS) {
        snprintf(err, err_len, "limit must be from 1 to %d", STORE_ITEMS_MAX_RESULTS);
        return STORE_INVALID;
    }
    return s->ops->items(s, q, out, err, err_len);
}

int store_aggregates(store *s, const store_aggregate_query *q, store_aggregate_list *out, char *err,
                     size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (q->max_results < 1 || q->max_results > STORE_HISTORY_MAX_RESULTS + 1) {
        snprintf(err, err_len, "max_results must be from 1 to %d", STORE_HISTORY_MAX_RESULTS);
        return STORE_INVALID;
    }
    return s->ops->aggregates(s, q, out, err, err_len);
}
