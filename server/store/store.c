/*
 * store.c - the backend-neutral half of the runs store: dispatch to the backend's table, the
 * free functions of query results, and the helpers every backend shares (names, the canonical
 * loss-parameter JSON, finalising an aggregate, the history keys).
 */
#include "store.h"
#include "request_hash.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_writer.h"
#include "params.h"

const char *const store_history_keys[STORE_HISTORY_KEY_COUNT] = {
    "loss.ce",          "loss.focal",      "loss.dice",
    "loss.total",       "metrics.miou",    "metrics.mean_dice",
    "metrics.f_score",  "metrics.mpa",     "metrics.accuracy",
};

int store_http_status(int status)
{
    switch (status) {
    case STORE_OK:
        return 200;
    case STORE_NOT_FOUND:
        return 404;
    case STORE_CONFLICT:
        return 409;
    case STORE_INVALID:
        return 400;
    case STORE_UNAVAILABLE:
        return 503;
    case STORE_FULL:
        return 507;
    case STORE_KEY_REUSED:
        return 422;
    default:
        return 500;
    }
}

int store_open(const store_options *opt, store **out, char *err, size_t err_len)
{
    *out = NULL;
    if (!opt || !opt->location || !*opt->location) {
        snprintf(err, err_len, "no data directory given for the runs store");
        return STORE_FAILED;
    }
    if (strncmp(opt->location, "postgres://", 11) == 0 ||
        strncmp(opt->location, "postgresql://", 13) == 0)
        return store_postgres_open(opt, out, err, err_len);
    return store_sqlite_open(opt, out, err, err_len);
}

void store_close(store *s)
{
    if (s)
        s->ops->close(s);
}

/* A JSON array of C strings (C = the stats' class count). */
static bool class_names_ok(const char *json, const segloss_stats *stats)
{
    cJSON *a = cJSON_Parse(json);
    bool ok = cJSON_IsArray(a) && stats &&
              (size_t)cJSON_GetArraySize(a) == stats->num_classes;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) ok = ok && cJSON_IsString(it);
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
        snprintf(err, err_len, "Idempotency-Key must be 1 to %d printable ASCII characters "
                 "without spaces", STORE_IDEMPOTENCY_KEY_MAX);
        return STORE_INVALID;
    }
    if (ev->replay)
        memset(ev->replay, 0, sizeof *ev->replay);
    if (ev->items && (ev->item_count > ev->n || ev->item_count > STORE_MAX_OVERLAY_ITEMS)) {
        snprintf(err, err_len, "store_record: %zu overlay items for a batch of %zu",
                 ev->item_count, ev->n);
        return STORE_INVALID;
    }
    return s->ops->record(s, ev, err, err_len);
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

void store_run_list_free(store_run_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++) {
        free(list->runs[i].name);
        free(list->runs[i].splits);
    }
    free(list->runs);
    free(list->next_page_token);
    memset(list, 0, sizeof *list);
}

int store_get_run(store *s, const char *run, store_run_summary *out, char *err,
                      size_t err_len)
{
    memset(out, 0, sizeof *out);
    return s->ops->run_summary(s, run, out, err, err_len);
}

void store_run_summary_free(store_run_summary *sum)
{
    if (!sum)
        return;
    free(sum->info.name);
    free(sum->class_names_json);
    for (size_t i = 0; i < sum->split_count; i++) {
        store_split_summary *sp = &sum->splits[i];
        free(sp->split);
        segloss_stats_free(sp->stats);
        free(sp->loss_params_json);
        free(sp->latest);
    }
    free(sum->splits);
    memset(sum, 0, sizeof *sum);
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

void store_history_free(store_history *h)
{
    if (!h)
        return;
    free(h->points);
    free(h->next_page_token);
    memset(h, 0, sizeof *h);
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

void store_overlay_input_free(store_overlay_input *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < 3; i++)
        free(in->owned[i]);
    memset(in, 0, sizeof *in);
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

static bool name_ok(const char *s, size_t max)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (n >= max || !(isalnum(ch) || ch == '.' || ch == '_' || ch == '-') || ch > 127)
            return false;
    }
    return true;
}

bool store_run_name_ok(const char *run)
{
    return name_ok(run, PARAMS_MAX_RUN_LEN);
}

bool store_split_name_ok(const char *split)
{
    return name_ok(split, PARAMS_MAX_SPLIT_LEN);
}

_Static_assert(STORE_IDEMPOTENCY_KEY_MAX == REQUEST_KEY_MAX, "one key limit");
_Static_assert(STORE_REQUEST_HASH_LEN == REQUEST_HASH_LEN, "one fingerprint size");

bool store_idempotency_key_ok(const char *key)
{
    return request_key_ok(key);
}

void store_replay_clear(store_replay *replay)
{
    if (!replay)
        return;
    free(replay->answer);
    memset(replay, 0, sizeof *replay);
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

int store_finalise(const segloss_stats *stats, const char *loss_params_json,
                   segloss_result **out, char *err, size_t err_len)
{
    params_request p;
    params_init(&p);
    /* what was stored passed the configured limit when it was recorded; reading it back must
     * not depend on today's --max-classes */
    p.max_classes = SEGLOSS_MAX_CLASSES_CEILING;
    *out = NULL;
    int rc = STORE_FAILED;
    char detail[256];
    if (params_set_json(&p, loss_params_json, strlen(loss_params_json), (size_t)1 << 24,
                        detail, sizeof detail) != 0) {
        snprintf(err, err_len, "stored loss parameters unreadable: %s", detail);
        goto done;
    }
    if (segloss_result_from_stats(stats, &p.loss, out, detail, sizeof detail) != 0) {
        snprintf(err, err_len, "finalising the aggregate: %s", detail);
        goto done;
    }
    (*out)->c = (*out)->num_classes = stats->num_classes;
    rc = STORE_OK;
done:
    params_free(&p);
    return rc;
}

double store_history_value(const segloss_result *r, size_t key)
{
    switch (key) {
    case 0:
        return r->ce;
    case 1:
        return r->focal;
    case 2:
        return r->dice;
    case 3:
        return r->total;
    case 4:
        return r->miou;
    case 5:
        return r->mean_dice;
    case 6:
        return r->mean_f_score;
    case 7:
        return r->mpa;
    case 8:
        return r->accuracy;
    default:
        return NAN;
    }
}

int store_history_key_index(const char *key)
{
    for (int i = 0; i < STORE_HISTORY_KEY_COUNT; i++)
        if (strcmp(store_history_keys[i], key) == 0)
            return i;
    return -1;
}

/* --- page tokens, shared by the backends so a token means the same everywhere --------- */

void store__hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Decodes exactly n bytes from 2n hex digits; -1 when the text is anything else. */
int store__hex_decode(const char *in, uint8_t *out, size_t n)
{
    if (strlen(in) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* A history page token: the (step, seq) of the last point returned, 32 hex digits. */
char *store__history_token(int64_t step, int64_t seq)
{
    uint8_t raw[16];
    put_u64(raw, (uint64_t)step);
    put_u64(raw + 8, (uint64_t)seq);
    char *out = malloc(33);
    if (out)
        store__hex_encode(raw, 16, out);
    return out;
}

int store__history_token_parse(const char *token, int64_t *step, int64_t *seq)
{
    uint8_t raw[16];
    if (store__hex_decode(token, raw, 16) != 0)
        return -1;
    *step = (int64_t)get_u64(raw);
    *seq = (int64_t)get_u64(raw + 8);
    return *seq >= 0 ? 0 : -1;
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

void store_item_list_free(store_item_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->rows[i].iou_json);
    free(list->rows);
    memset(list, 0, sizeof *list);
}

int store_aggregates(store *s, const store_aggregate_query *q, store_aggregate_list *out,
                     char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (q->max_results < 1 || q->max_results > STORE_HISTORY_MAX_RESULTS + 1) {
        snprintf(err, err_len, "max_results must be from 1 to %d", STORE_HISTORY_MAX_RESULTS);
        return STORE_INVALID;
    }
    return s->ops->aggregates(s, q, out, err, err_len);
}

void store_aggregate_list_free(store_aggregate_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++) {
        segloss_stats_free(list->rows[i].stats);
        free(list->rows[i].loss_params_json);
    }
    free(list->rows);
    memset(list, 0, sizeof *list);
}
