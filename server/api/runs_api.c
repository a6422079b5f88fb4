/*
 * runs_api.c - the runs, history and evaluations routes over the store (see runs_api.h).
 *
 * Each handler reads the revision first, builds the ETag from it and the normalised query, and
 * answers 304 before doing any work when the client already has that answer. The revision is
 * read before the data, so a body is never older than its ETag says.
 *
 * Every JSON answer is written with json_writer. The aggregate of a step is written by
 * result_json_members, the writer of the POST /v1/evaluate answer's members, so both read the
 * same; the members that make no sense for an aggregate ("id", "timing") are left out.
 */
#include "api/runs_api.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "api/overlay.h"
#include "api/result_json.h"
#include "base/detail.h"
#include "base/json_writer.h"
#include "base/problem.h"
#include "base/text.h"
#include "service/params.h"
#include "service/store_finalize.h"

#define JSON_TYPE "application/json"
#define CSV_TYPE "text/csv; charset=utf-8"
#define PNG_TYPE "image/png"
/* Polling clients revalidate every time; 304 makes that cheap. */
#define CACHE_REVALIDATE "no-cache"
/* A segment of a path: a run name (128) or an evaluation id (32); longer is no name at all. */
#define RUNS_API_MAX_SEGMENT ROUTE_MAX_SEGMENT
/* Bump when an answer's shape changes, so old ETags stop matching. */
#define RUNS_API_ETAG_VERSION 1

/* --- small text buffer (the CSV answer) ---------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(strbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(strbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->failed = 1;
    else
        sb_add(b, tmp, (size_t)n);
}

/* --- answers --------------------------------------------------------------------------------- */

static void answer_problem(const route_request *req, route_response *out, int status,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void answer_problem(const route_request *req, route_response *out, int status,
                           const char *fmt, ...)
{
    char detail[600];
    va_list ap;
    va_start(ap, fmt);
    out->status = detail_vfail(detail, sizeof detail, status, fmt, ap);
    va_end(ap);
    free(out->body);
    out->content_type = PROBLEM_CONTENT_TYPE;
    out->etag[0] = '\0';
    out->body = problem_json(status, detail, req->request_id, &out->body_len);
}

int runs_api_store_status(int rc)
{
    static const int status[] = {[-STORE_OK] = 200,       [-STORE_NOT_FOUND] = 404,
                                 [-STORE_CONFLICT] = 409, [-STORE_INVALID] = 400,
                                 [-STORE_FAILED] = 500,   [-STORE_UNAVAILABLE] = 503,
                                 [-STORE_FULL] = 507,     [-STORE_KEY_REUSED] = 422};
    return rc <= 0 && -rc < (int)(sizeof status / sizeof status[0]) ? status[-rc] : 500;
}

static void answer_store_error(const route_request *req, route_response *out, int rc,
                               const char *err)
{
    answer_problem(req, out, runs_api_store_status(rc), "%s", err);
}

static void answer_body(route_response *out, const char *type, char *body, size_t len)
{
    out->status = 200;
    out->content_type = type;
    out->body = body;
    out->body_len = len;
}

/* Answers the JSON w holds (a 503 when memory ran out writing it). */
static void answer_json(const route_request *req, route_response *out, json_writer *w)
{
    size_t len;
    char *body = json_writer_finish(w, &len);
    if (!body)
        answer_problem(req, out, 503, "out of memory");
    else
        answer_body(out, JSON_TYPE, body, len);
}

/* --- ETags ----------------------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ^ 0xff; /* separates ("ab","") from ("a","b") */
}

/* "<tag>-<revision>-<hash of the parts>" */
static void make_etag(route_response *out, const char *tag, uint64_t revision,
                      const char *const *parts, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = fnv1a(h, parts[i] ? parts[i] : "\x01");
    snprintf(out->etag, sizeof out->etag, "\"%s%d-%" PRIu64 "-%016" PRIx64 "\"", tag,
             RUNS_API_ETAG_VERSION, revision, h);
}

/* Whether If-None-Match (a list, "*", W/ prefixes allowed) names etag. */
static bool etag_matches(const char *header, const char *etag)
{
    if (!header || !*etag)
        return false;
    size_t elen = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (strncmp(p, etag, elen) == 0 &&
            (p[elen] == '\0' || p[elen] == ',' || p[elen] == ' ' || p[elen] == '\t'))
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

/* 304 when the client has the answer already (the ETag stays set). */
static bool not_modified(const route_request *req, route_response *out)
{
    if (!etag_matches(req->if_none_match, out->etag))
        return false;
    out->status = 304;
    out->content_type = NULL;
    free(out->body);
    out->body = NULL;
    out->body_len = 0;
    return true;
}

/* Reads the revision (of run; of the run list when run is NULL) and sets the ETag made from it
 * and the parts. true when that answered the request: a store error, or 304. */
static bool answered_by_revision(store *st, const route_request *req, route_response *out,
                                 const char *run, const char *tag, const char *const *parts,
                                 size_t n)
{
    char err[512];
    uint64_t rev;
    int rc = store_revision(st, run, &rev, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return true;
    }
    make_etag(out, tag, rev, parts, n);
    return not_modified(req, out);
}

/* --- parameters ------------------------------------------------------------------------------ */

static const char *query(const route_request *req, const char *key)
{
    const char *v = req->query ? req->query(req->query_arg, key) : NULL;
    return v;
}

/* An integer parameter in [min, max]: an optional '-' and decimal digits, nothing else (no
 * blanks, '+' or hex, which strtoll would take). Absent leaves *v alone. false after answering
 * 400. */
/* The `split` query parameter into *split (NULL when absent); false, with the 400 answered,
 * when it is not a valid split name. */
static bool split_param(const route_request *req, route_response *out, const char **split)
{
    *split = query(req, "split");
    if (*split && !store_split_name_ok(*split)) {
        answer_problem(req, out, 400, "split must be 1 to %d characters of A-Z a-z 0-9 . _ -",
                       PARAMS_MAX_SPLIT_LEN);
        return false;
    }
    return true;
}

static bool int_param(const route_request *req, route_response *out, const char *key, int64_t min,
                      int64_t max, int64_t *v)
{
    const char *s = query(req, key);
    if (!s)
        return true;
    char *end;
    errno = 0;
    const char *digits = s + (s[0] == '-');
    long long x = *digits >= '0' && *digits <= '9' ? strtoll(s, &end, 10) : 0;
    if (*digits < '0' || *digits > '9' || *end || errno || x < min || x > max) {
        char echo[TEXT_ECHO_SIZE(TEXT_ECHO_MAX)];
        answer_problem(req, out, 400,
                       "%s must be an integer from %" PRId64 " to %" PRId64 "; got \"%s\"", key,
                       min, max, text_echo(echo, sizeof echo, s, TEXT_ECHO_MAX));
        return false;
    }
    *v = x;
    return true;
}

static bool bool_param(const route_request *req, route_response *out, const char *key, bool *v)
{
    const char *s = query(req, key);
    if (!s)
        return true;
    if (!strcmp(s, "true") || !strcmp(s, "1")) {
        *v = true;
    } else if (!strcmp(s, "false") || !strcmp(s, "0")) {
        *v = false;
    } else {
        char echo[TEXT_ECHO_SIZE(TEXT_ECHO_MAX)];
        answer_problem(req, out, 400, "%s must be true or false; got \"%s\"", key,
                       text_echo(echo, sizeof echo, s, TEXT_ECHO_MAX));
        return false;
    }
    return true;
}

/* --- the routes ------------------------------------------------------------------------------ */

/* Whether id is 1 to 64 hex digits; those are lowered in place, as the ids are stored
 * (ids.h: lowercase), so the check and the lookup agree: an id is case-insensitive. */
static bool id_ok(char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (id[i] >= 'A' && id[i] <= 'F')
            id[i] = (char)(id[i] - 'A' + 'a');
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    }
    return true;
}

/* The members a run's entry in the list and its own answer begin with. */
static void write_run_info(json_writer *w, const store_run_info *r)
{
    json_key(w, "run");
    json_string(w, r->name ? r->name : "");
    json_key(w, "created_ms");
    json_int(w, r->created_ms);
    json_key(w, "updated_ms");
    json_int(w, r->updated_ms);
    json_key(w, "last_step");
    json_int(w, r->last_step);
    json_key(w, "evaluations");
    json_uint(w, r->evaluations);
    json_key(w, "revision");
    json_uint(w, r->revision);
}

/* The "next_page_token" member of a page: the token, or null on the last page. */
static void write_page_token(json_writer *w, const char *token)
{
    json_key(w, "next_page_token");
    if (token)
        json_string(w, token);
    else
        json_null(w);
}

/* A JSON value the store keeps (written by this daemon, or checked when it was recorded),
 * written again: arrays of numbers, nulls and strings (an item's per-class IoU, the class
 * names). */
static void write_stored_value(json_writer *w, const cJSON *v)
{
    if (cJSON_IsArray(v)) {
        const cJSON *e;
        json_array_begin(w);
        cJSON_ArrayForEach (e, v)
            write_stored_value(w, e);
        json_array_end(w);
    } else if (cJSON_IsString(v)) {
        json_string(w, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        json_number(w, v->valuedouble);
    } else {
        json_null(w);
    }
}

/* The stored JSON text written again (null when there is none). */
static void write_stored_json(json_writer *w, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    write_stored_value(w, v);
    cJSON_Delete(v);
}

static void handle_runs(store *st, const route_request *req, route_response *out)
{
    char err[512];
    int64_t max = RUNS_API_DEFAULT_RUNS;
    if (!int_param(req, out, "max_results", 1, STORE_RUNS_MAX_RESULTS, &max))
        return;
    const char *token = query(req, "page_token");
    char maxs[32];
    snprintf(maxs, sizeof maxs, "%" PRId64, max);
    const char *parts[] = {"runs", maxs, token && *token ? token : ""};
    if (answered_by_revision(st, req, out, NULL, "l", parts, 3))
        return;
    store_run_list list;
    int rc = store_list_runs(st, (size_t)max, token, &list, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return;
    }
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "runs");
    json_array_begin(&w);
    for (size_t i = 0; i < list.count; i++) {
        const store_run_info *r = &list.runs[i];
        json_object_begin(&w);
        write_run_info(&w, r);
        json_key(&w, "splits");
        json_array_begin(&w);
        for (const char *p = r->splits; p && *p;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            char name[PARAMS_MAX_SPLIT_LEN + 1];
            n = n < PARAMS_MAX_SPLIT_LEN ? n : PARAMS_MAX_SPLIT_LEN;
            memcpy(name, p, n);
            name[n] = '\0';
            json_string(&w, name);
            p = comma ? comma + 1 : p + strlen(p);
        }
        json_array_end(&w);
        json_object_end(&w);
    }
    json_array_end(&w);
    write_page_token(&w, list.next_page_token);
    json_object_end(&w);
    store_run_list_free(&list);
    answer_json(req, out, &w);
}

/* The "overlay" member: where the overlay of an evaluation's item is. */
static void write_overlay_url(json_writer *w, const char *id, size_t item)
{
    char url[160];
    snprintf(url, sizeof url, "/v1/evaluations/%s/overlay.png?item=%zu", id, item);
    json_key(w, "overlay");
    json_string(w, url);
}

/* The object of one split: its bookkeeping, then the members of a POST /v1/evaluate answer for
 * its aggregate (without "id" and "timing"). */
static int write_split(json_writer *w, const char *run, const store_split_summary *sp, bool cm,
                       char *err, size_t err_len)
{
    segloss_result *res = NULL;
    params_request p;
    params_init(&p);
    p.max_classes = SEGLOSS_MAX_CLASSES_CEILING; /* stored: checked when it was recorded */
    int rc = store_finalize(sp->stats, sp->loss_params_json, &res, err, err_len);
    if (rc)
        goto done;
    char detail[256];
    if (params_set_json(&p, sp->loss_params_json, strlen(sp->loss_params_json), (size_t)1 << 24,
                        detail, sizeof detail) != 0) {
        snprintf(err, err_len, "stored loss parameters unreadable: %s", detail);
        rc = STORE_FAILED;
        goto done;
    }
    p.confusion_matrix = cm;
    p.run = strdup(run);
    p.split = strdup(sp->split);
    p.has_step = true;
    p.step = sp->step;
    if (!p.run || !p.split) {
        snprintf(err, err_len, "out of memory");
        rc = STORE_FAILED;
        goto done;
    }
    res->n = (size_t)sp->stats->batches;
    res->c = sp->stats->num_classes;
    res->h = sp->h;
    res->w = sp->w;

    json_object_begin(w);
    json_key(w, "split");
    json_string(w, sp->split);
    json_key(w, "step");
    json_int(w, sp->step);
    json_key(w, "timestamp");
    json_int(w, sp->updated_ms);
    json_key(w, "evaluations");
    json_uint(w, sp->evaluations);
    json_key(w, "batches");
    json_uint(w, (uint64_t)sp->stats->batches);
    json_key(w, "latest_evaluations");
    json_array_begin(w);
    for (size_t i = 0; i < sp->latest_count; i++) {
        const store_evaluation_ref *e = &sp->latest[i];
        json_object_begin(w);
        json_key(w, "id");
        json_string(w, e->id);
        json_key(w, "step");
        json_int(w, e->step);
        json_key(w, "timestamp");
        json_int(w, e->timestamp_ms);
        json_key(w, "n");
        json_uint(w, e->n);
        json_key(w, "overlay_items");
        json_uint(w, e->items);
        json_key(w, "has_overlay");
        json_bool(w, e->has_overlay);
        if (e->has_overlay)
            write_overlay_url(w, e->id, 0);
        json_object_end(w);
    }
    json_array_end(w);
    result_json_members(w, res, &p, NULL, NULL, NULL);
    json_object_end(w);
    rc = STORE_OK;
done:
    segloss_result_free(res);
    params_free(&p);
    return rc;
}

/* Replaces each split's latest aggregate with its aggregate at `step`; a split without one
 * is left with no stats (and left out of the answer). */
static int splits_at_step(store *st, const char *run, store_run_summary *sum, int64_t step,
                          char *err, size_t err_len)
{
    for (size_t i = 0; i < sum->split_count; i++) {
        store_split_summary *sp = &sum->splits[i];
        if (sp->step == step)
            continue;
        store_aggregate_list list;
        store_aggregate_query q = {
            .run = run, .split = sp->split, .from_step = step, .max_results = 1};
        int rc = store_aggregates(st, &q, &list, err, err_len);
        if (rc)
            return rc;
        segloss_stats_free(sp->stats);
        sp->stats = NULL;
        if (list.count == 1 && list.rows[0].step == step) {
            store_aggregate *a = &list.rows[0];
            free(sp->loss_params_json);
            sp->stats = a->stats;
            sp->loss_params_json = a->loss_params_json;
            a->stats = NULL;
            a->loss_params_json = NULL;
            sp->step = a->step;
            sp->updated_ms = a->updated_ms;
            sp->evaluations = a->evaluations;
            sp->h = sp->w = 0; /* the mask size of that step is not kept apart */
        }
        store_aggregate_list_free(&list);
    }
    return 0;
}

static void handle_run(store *st, const route_request *req, route_response *out, const char *run)
{
    char err[512];
    bool cm = false;
    int64_t at_step = 0;
    bool has_step = query(req, "step") != NULL;
    if (!bool_param(req, out, "confusion_matrix", &cm) ||
        !int_param(req, out, "step", INT64_MIN, INT64_MAX, &at_step))
        return;
    char steps[32];
    snprintf(steps, sizeof steps, has_step ? "%" PRId64 : "latest", at_step);
    const char *parts[] = {"run", run, cm ? "cm" : "", steps};
    if (answered_by_revision(st, req, out, run, "r", parts, 4))
        return;
    store_run_summary sum;
    int rc = store_get_run(st, run, &sum, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return;
    }
    make_etag(out, "r", sum.info.revision, parts, 4);
    if (has_step && (rc = splits_at_step(st, run, &sum, at_step, err, sizeof err)) != 0) {
        store_run_summary_free(&sum);
        answer_store_error(req, out, rc, err);
        return;
    }
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    write_run_info(&w, &sum.info);
    json_key(&w, "class_names");
    write_stored_json(&w, sum.class_names_json);
    json_key(&w, "splits");
    json_object_begin(&w);
    for (size_t i = 0; i < sum.split_count && rc == STORE_OK; i++) {
        if (!sum.splits[i].stats)
            continue; /* no aggregate at the asked step */
        json_key(&w, sum.splits[i].split);
        rc = write_split(&w, run, &sum.splits[i], cm, err, sizeof err);
    }
    json_object_end(&w);
    json_object_end(&w);
    store_run_summary_free(&sum);
    size_t len;
    char *body = rc ? NULL : json_writer_finish(&w, &len);
    if (!body) {
        json_writer_free(&w);
        answer_problem(req, out, 500, "%s", rc ? err : "out of memory");
        return;
    }
    answer_body(out, JSON_TYPE, body, len);
}

/* Per-class history keys: per_class.<figure>.<class>, served from the step aggregates. */
#define CLASS_KEY_PREFIX "per_class."
/* Keys one per-class request may ask for (a few classes' Dice and IoU is what a chart draws). */
#define CLASS_KEYS_MAX 64

typedef enum class_figure {
    CF_DICE,
    CF_IOU,
    CF_F_SCORE,
    CF_PRECISION,
    CF_RECALL,
    CF_SUPPORT,
    CF_COUNT
} class_figure;
static const char *const class_figure_names[CF_COUNT] = {"dice",      "iou",    "f_score",
                                                         "precision", "recall", "support"};

typedef struct class_keys {
    size_t count;
    class_figure figure[CLASS_KEYS_MAX];
    size_t cls[CLASS_KEYS_MAX];
    char name[CLASS_KEYS_MAX][64];
} class_keys;

/* Parses key=per_class.iou.3,per_class.dice.3,...; false after answering 400. */
static bool parse_class_keys(const route_request *req, route_response *out, const char *keys,
                             class_keys *ck)
{
    const char *p = keys;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char key[48];
        bool ok = n < sizeof key && ck->count < CLASS_KEYS_MAX;
        if (ok) {
            memcpy(key, p, n);
            key[n] = '\0';
            ok = strncmp(key, CLASS_KEY_PREFIX, strlen(CLASS_KEY_PREFIX)) == 0;
        }
        if (ok) {
            char *fig = key + strlen(CLASS_KEY_PREFIX), *dot = strchr(fig, '.');
            ok = dot != NULL && dot[1] >= '0' && dot[1] <= '9';
            int f = -1;
            if (ok) {
                *dot = '\0';
                for (int i = 0; i < CF_COUNT; i++)
                    if (strcmp(fig, class_figure_names[i]) == 0)
                        f = i;
                char *end;
                unsigned long k = strtoul(dot + 1, &end, 10);
                ok = f >= 0 && !*end && k < SEGLOSS_MAX_CLASSES;
                if (ok) {
                    ck->figure[ck->count] = (class_figure)f;
                    ck->cls[ck->count] = (size_t)k;
                    snprintf(ck->name[ck->count], sizeof ck->name[0], "%s%.16s.%lu",
                             CLASS_KEY_PREFIX, fig, k);
                    ck->count++;
                }
            }
        }
        if (!ok) {
            answer_problem(req, out, 400,
                           "key \"%.*s\" is not a per-class key; per-class keys are "
                           "per_class.<dice|iou|f_score|precision|recall|support>.<class> "
                           "(at most %d, not mixed with the metric keys)",
                           (int)(n < 64 ? n : 64), p, CLASS_KEYS_MAX);
            return false;
        }
        p = comma ? comma + 1 : p + n;
    }
    return true;
}

static double class_value(const segloss_result *r, class_figure f, size_t k)
{
    if (k >= r->num_classes)
        return (double)NAN;
    switch (f) {
    case CF_DICE: return r->dice_per_class[k];
    case CF_IOU: return r->iou[k];
    case CF_F_SCORE: return r->f_score[k];
    case CF_PRECISION: return r->precision[k];
    case CF_RECALL: return r->recall[k];
    default: return (double)r->support[k];
    }
}

/*
 * A page of per-class history, made by finalising the split's step aggregates: every asked key
 * at each step, steps in order, whole steps per page (at least one). The page token is "pc"
 * and the next step. Key names point into ck, which must outlive hist.
 */
static int class_history_page(store *st, const store_history_query *q, const class_keys *ck,
                              store_history *hist, char *err, size_t err_len)
{
    memset(hist, 0, sizeof *hist);
    int64_t from = q->has_since_step ? q->since_step : INT64_MIN;
    if (q->page_token && *q->page_token) {
        char *end;
        errno = 0;
        long long t =
            strncmp(q->page_token, "pc", 2) == 0 ? strtoll(q->page_token + 2, &end, 10) : 0;
        if (strncmp(q->page_token, "pc", 2) != 0 || !q->page_token[2] || *end || errno) {
            snprintf(err, err_len, "page_token is not one this server gave out");
            return STORE_INVALID;
        }
        from = t > from ? t : from;
    }
    size_t steps = q->max_results / ck->count ? q->max_results / ck->count : 1;
    store_aggregate_list list;
    store_aggregate_query aq = {
        .run = q->run, .split = q->split, .from_step = from, .max_results = steps + 1};
    int rc = store_aggregates(st, &aq, &list, err, err_len);
    if (rc)
        return rc;
    size_t use = list.count < steps ? list.count : steps;
    hist->points = calloc(use * ck->count + 1, sizeof *hist->points);
    if (!hist->points)
        rc = STORE_FAILED;
    for (size_t i = 0; !rc && i < use; i++) {
        const store_aggregate *a = &list.rows[i];
        segloss_result *res = NULL;
        rc = store_finalize(a->stats, a->loss_params_json, &res, err, err_len);
        for (size_t j = 0; !rc && j < ck->count; j++) {
            double v = class_value(res, ck->figure[j], ck->cls[j]);
            hist->points[hist->count++] = (store_history_point){.key = ck->name[j],
                                                                .has_value = !isnan(v),
                                                                .value = v,
                                                                .step = a->step,
                                                                .timestamp_ms = a->updated_ms};
        }
        segloss_result_free(res);
    }
    if (!rc && list.count > steps) {
        char token[32];
        snprintf(token, sizeof token, "pc%" PRId64, list.rows[steps].step);
        if (!(hist->next_page_token = strdup(token)))
            rc = STORE_FAILED;
    }
    if (rc == STORE_FAILED && !err[0])
        snprintf(err, err_len, "out of memory");
    store_aggregate_list_free(&list);
    if (rc)
        store_history_free(hist);
    return rc;
}

/* Default items per answer of GET /v1/runs/{run}/items. */
#define RUNS_API_DEFAULT_ITEMS 20

static void handle_items(store *st, const route_request *req, route_response *out, const char *run)
{
    char err[512];
    store_items_query q = {.run = run, .limit = RUNS_API_DEFAULT_ITEMS};
    if (!split_param(req, out, &q.split))
        return;
    int64_t step = 0, limit = RUNS_API_DEFAULT_ITEMS;
    q.has_step = query(req, "step") != NULL;
    if (!int_param(req, out, "step", INT64_MIN, INT64_MAX, &step) ||
        !int_param(req, out, "limit", 1, STORE_ITEMS_MAX_RESULTS, &limit))
        return;
    q.step = step;
    q.limit = (size_t)limit;
    const char *sort = query(req, "sort"), *order = query(req, "order");
    static const char *const sorts[] = {"miou", "accuracy", "mean_dice"};
    if (sort) {
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(sort, sorts[i]) == 0)
                found = i;
        if (found < 0) {
            answer_problem(req, out, 400, "sort must be miou, accuracy or mean_dice; got \"%.32s\"",
                           sort);
            return;
        }
        q.sort = (store_item_sort)found;
    }
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        answer_problem(req, out, 400, "order must be asc or desc; got \"%.32s\"", order);
        return;
    }
    q.descending = order && strcmp(order, "desc") == 0;

    char steps[32], limits[32];
    snprintf(steps, sizeof steps, q.has_step ? "%" PRId64 : "latest", step);
    snprintf(limits, sizeof limits, "%" PRId64, limit);
    const char *parts[] = {"items", run,           q.split ? q.split : STORE_DEFAULT_SPLIT,
                           steps,   sorts[q.sort], q.descending ? "desc" : "asc",
                           limits};
    if (answered_by_revision(st, req, out, run, "i", parts, sizeof parts / sizeof parts[0]))
        return;
    store_item_list list;
    int rc = store_items(st, &q, &list, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return;
    }
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "run");
    json_string(&w, run);
    json_key(&w, "split");
    json_string(&w, q.split ? q.split : STORE_DEFAULT_SPLIT);
    json_key(&w, "step");
    if (list.has_step)
        json_int(&w, list.step);
    else
        json_null(&w);
    json_key(&w, "sort");
    json_string(&w, sorts[q.sort]);
    json_key(&w, "order");
    json_string(&w, q.descending ? "desc" : "asc");
    json_key(&w, "total");
    json_uint(&w, list.total);
    json_key(&w, "items");
    json_array_begin(&w);
    for (size_t i = 0; i < list.count; i++) {
        const store_item_row *r = &list.rows[i];
        json_object_begin(&w);
        json_key(&w, "evaluation");
        json_string(&w, r->id);
        json_key(&w, "item");
        json_uint(&w, r->item);
        json_key(&w, "accuracy");
        json_number(&w, r->accuracy);
        json_key(&w, "miou");
        json_number(&w, r->miou);
        json_key(&w, "mean_dice");
        json_number(&w, r->mean_dice);
        json_key(&w, "present");
        json_uint(&w, r->present);
        json_key(&w, "iou");
        write_stored_json(&w, r->iou_json);
        if (r->has_overlay) {
            write_overlay_url(&w, r->id, r->item);
        } else {
            json_key(&w, "overlay");
            json_null(&w);
        }
        json_object_end(&w);
    }
    json_array_end(&w);
    json_object_end(&w);
    store_item_list_free(&list);
    answer_json(req, out, &w);
}

/* A history page as CSV (key,value,step,timestamp); the next token in X-Next-Page-Token. */
static void answer_history_csv(const route_request *req, route_response *out,
                               const store_history *hist)
{
    strbuf b = {0};
    sb_str(&b, "key,value,step,timestamp\n");
    for (size_t i = 0; i < hist->count; i++) {
        const store_history_point *pt = &hist->points[i];
        if (pt->has_value)
            sb_printf(&b, "%s,%.17g,%" PRId64 ",%" PRId64 "\n", pt->key, pt->value, pt->step,
                      pt->timestamp_ms);
        else
            sb_printf(&b, "%s,,%" PRId64 ",%" PRId64 "\n", pt->key, pt->step, pt->timestamp_ms);
    }
    if (hist->next_page_token) {
        out->header_name = "X-Next-Page-Token";
        snprintf(out->header_value, sizeof out->header_value, "%s", hist->next_page_token);
    }
    if (b.failed) {
        free(b.p);
        answer_problem(req, out, 503, "out of memory");
    } else {
        answer_body(out, CSV_TYPE, b.p, b.len);
    }
}

/* A history page in MLflow's get-history shape. */
static void answer_history_json(const route_request *req, route_response *out,
                                const store_history *hist)
{
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "metrics");
    json_array_begin(&w);
    for (size_t i = 0; i < hist->count; i++) {
        const store_history_point *pt = &hist->points[i];
        json_object_begin(&w);
        json_key(&w, "key");
        json_string(&w, pt->key);
        json_key(&w, "value");
        if (pt->has_value)
            json_number(&w, pt->value);
        else
            json_null(&w);
        json_key(&w, "step");
        json_int(&w, pt->step);
        json_key(&w, "timestamp");
        json_int(&w, pt->timestamp_ms);
        json_object_end(&w);
    }
    json_array_end(&w);
    write_page_token(&w, hist->next_page_token);
    json_object_end(&w);
    answer_json(req, out, &w);
}

static void handle_history(store *st, const route_request *req, route_response *out,
                           const char *run)
{
    char err[512];
    store_history_query q = {.run = run, .max_results = STORE_HISTORY_MAX_RESULTS};
    const char *keys = query(req, "key");
    class_keys ck = {0};
    if (keys && strncmp(keys, CLASS_KEY_PREFIX, strlen(CLASS_KEY_PREFIX)) == 0) {
        if (!parse_class_keys(req, out, keys, &ck))
            return;
    } else if (keys && *keys) {
        const char *p = keys;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            char key[TEXT_ECHO_MAX + 2];
            size_t kept = n < sizeof key - 1 ? n : sizeof key - 1;
            memcpy(key, p, kept);
            key[kept] = '\0';
            int k = n < sizeof key - 1 ? store_history_key_index(key) : -1;
            if (k < 0) {
                char echo[TEXT_ECHO_SIZE(TEXT_ECHO_MAX)];
                answer_problem(req, out, 400,
                               "key \"%s\" is not recorded; keys are loss.ce, loss.focal, "
                               "loss.dice, loss.total, metrics.miou, metrics.mean_dice, "
                               "metrics.f_score, metrics.mpa, metrics.accuracy",
                               text_echo(echo, sizeof echo, key, TEXT_ECHO_MAX));
                return;
            }
            q.key_mask |= 1u << k;
            p = comma ? comma + 1 : p + n;
        }
    }
    if (!split_param(req, out, &q.split))
        return;
    int64_t since = 0, max = STORE_HISTORY_MAX_RESULTS;
    q.has_since_step = query(req, "since_step") != NULL;
    if (!int_param(req, out, "since_step", INT64_MIN, INT64_MAX, &since) ||
        !int_param(req, out, "max_results", 1, STORE_HISTORY_MAX_RESULTS, &max))
        return;
    q.since_step = since;
    q.max_results = (size_t)max;
    q.page_token = query(req, "page_token");
    const char *format = query(req, "format");
    bool csv = false;
    if (format && strcmp(format, "csv") == 0) {
        csv = true;
    } else if (format && strcmp(format, "json") != 0) {
        char echo[TEXT_ECHO_SIZE(32)];
        answer_problem(req, out, 400, "format must be json or csv; got \"%s\"",
                       text_echo(echo, sizeof echo, format, 32));
        return;
    }

    char mask[16], sinces[32], maxs[32];
    snprintf(mask, sizeof mask, "%" PRIu32, q.key_mask);
    if (ck.count)
        snprintf(mask, sizeof mask, "pc");
    snprintf(sinces, sizeof sinces, "%s%" PRId64, q.has_since_step ? "s" : "", since);
    snprintf(maxs, sizeof maxs, "%" PRId64, max);
    const char *parts[] = {"history",
                           run,
                           mask,
                           q.split ? q.split : STORE_DEFAULT_SPLIT,
                           sinces,
                           maxs,
                           q.page_token ? q.page_token : "",
                           csv ? "csv" : "json",
                           ck.count ? keys : ""};
    if (answered_by_revision(st, req, out, run, "h", parts, sizeof parts / sizeof parts[0]))
        return;

    store_history hist;
    int rc = ck.count ? class_history_page(st, &q, &ck, &hist, err, sizeof err)
                      : store_history_page(st, &q, &hist, err, sizeof err);
    if (rc) {
        if (rc == STORE_INVALID)
            answer_problem(req, out, 400, "%s", err);
        else
            answer_store_error(req, out, rc, err);
        return;
    }
    if (csv)
        answer_history_csv(req, out, &hist);
    else
        answer_history_json(req, out, &hist);
    store_history_free(&hist);
}

static void handle_evaluation(store *st, const route_request *req, route_response *out, char *id)
{
    char err[512];
    if (!id_ok(id)) {
        char echo[TEXT_ECHO_SIZE(TEXT_ECHO_MAX)];
        answer_problem(req, out, 404, "no evaluation with id \"%s\" is stored (ids are hex digits)",
                       text_echo(echo, sizeof echo, id, TEXT_ECHO_MAX));
        return;
    }
    char *answer;
    size_t len;
    int rc = store_evaluation_answer(st, id, &answer, &len, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return;
    }
    const char *parts[] = {"evaluation", id};
    make_etag(out, "e", 0, parts, 2);
    answer_body(out, JSON_TYPE, answer, len);
    not_modified(req, out);
}

static void handle_overlay(store *st, const route_request *req, route_response *out, char *id)
{
    char err[512];
    int64_t item = 0;
    if (!int_param(req, out, "item", 0, SEGLOSS_MAX_BATCH - 1, &item))
        return;
    if (!id_ok(id)) {
        char echo[TEXT_ECHO_SIZE(TEXT_ECHO_MAX)];
        answer_problem(req, out, 404, "no evaluation with id \"%s\" is stored (ids are hex digits)",
                       text_echo(echo, sizeof echo, id, TEXT_ECHO_MAX));
        return;
    }
    store_overlay_input in;
    int rc = store_overlay_input_get(st, id, (size_t)item, &in, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return;
    }
    char items[32];
    snprintf(items, sizeof items, "%" PRId64, item);
    const char *parts[] = {"overlay", id, items};
    make_etag(out, "o", 0, parts, 3);
    if (!not_modified(req, out)) {
        uint8_t *png;
        size_t len;
        rc = overlay_render(&in.item, in.num_classes, req->limits, &png, &len, err, sizeof err);
        if (rc)
            answer_problem(req, out, 500, "rendering the overlay: %s", err);
        else
            answer_body(out, PNG_TYPE, (char *)png, len);
    }
    store_overlay_input_free(&in);
}

/* What every route does first: the answers revalidate, a run name is checked (a 404 naming
 * it) and the store must be open. The path's segment is copied into param (an id is lowered
 * there). false when answered. */
static bool route_begin(store *st, const route_request *req, route_response *out, bool run,
                        char *param, size_t param_len)
{
    memset(out, 0, sizeof *out);
    out->cache_control = CACHE_REVALIDATE;
    snprintf(param, param_len, "%s", req->segment ? req->segment : "");
    if (run && !store_run_name_ok(param)) {
        char echo[TEXT_ECHO_SIZE(PARAMS_MAX_RUN_LEN + 12)];
        answer_problem(req, out, 404,
                       "no run named \"%s\" (run names are 1 to %d characters of A-Z a-z "
                       "0-9 . _ -)",
                       text_echo(echo, sizeof echo, param, PARAMS_MAX_RUN_LEN + 12),
                       PARAMS_MAX_RUN_LEN);
        return false;
    }
    if (!st) {
        answer_problem(req, out, 503, "the runs store is not open");
        return false;
    }
    return true;
}

/* A route's entry: the common checks (route_begin), then its handler with the path's segment. */
#define RUNS_API_ENTRY(name, takes_run, handler)                                                   \
    void name(store *st, const route_request *req, route_response *out)                            \
    {                                                                                              \
        char param[RUNS_API_MAX_SEGMENT];                                                          \
        if (route_begin(st, req, out, takes_run, param, sizeof param))                             \
            handler(st, req, out, param);                                                          \
    }

/* The list route has no segment; the wrapper gives handle_runs the entry's shape. */
static void handle_list(store *st, const route_request *req, route_response *out, const char *param)
{
    (void)param;
    handle_runs(st, req, out);
}

static void handle_delete_run(store *st, const route_request *req, route_response *out,
                              const char *run)
{
    char err[512];
    int rc = store_delete_run(st, run, err, sizeof err);
    if (rc)
        answer_store_error(req, out, rc, err);
    else
        out->status = 204;
}

RUNS_API_ENTRY(runs_api_list, false, handle_list)
RUNS_API_ENTRY(runs_api_run, true, handle_run)
RUNS_API_ENTRY(runs_api_delete_run, true, handle_delete_run)
RUNS_API_ENTRY(runs_api_history, true, handle_history)
RUNS_API_ENTRY(runs_api_items, true, handle_items)
RUNS_API_ENTRY(runs_api_evaluation, false, handle_evaluation)
RUNS_API_ENTRY(runs_api_overlay, false, handle_overlay)

int runs_record(store *st, const runs_record_input *in, char *err, size_t err_len)
{
    const segloss_result *r = in->result;
    if (!st || !r || !r->stats) {
        snprintf(err, err_len, "the runs store is not open");
        return 503;
    }
    /* The answer is already computed: an overlay that cannot be kept costs the overlay only,
     * never the record. */
    overlay_items items = {0};
    const segloss_tensor *lt = in->labels;
    if (lt && (lt->rank == 2 || lt->rank == 3) && in->argmax) {
        char detail[256];
        size_t n = lt->rank == 3 ? lt->shape[0] : 1;
        /* overlays for the first STORE_MAX_OVERLAY_ITEMS items only */
        segloss_tensor first = *lt;
        if (n > STORE_MAX_OVERLAY_ITEMS) {
            first.rank = 3;
            first.shape[0] = STORE_MAX_OVERLAY_ITEMS;
        }
        const void **datas = calloc(in->image_count + 1, sizeof *datas);
        size_t *lens = calloc(in->image_count + 1, sizeof *lens);
        for (size_t i = 0; datas && lens && i < in->image_count; i++) {
            datas[i] = in->images[i].data;
            lens[i] = in->images[i].len;
        }
        if (datas && lens &&
            overlay_items_build(in->argmax, &first, r->num_classes, in->limits, datas, lens,
                                in->image_count, &items, detail, sizeof detail) != 0)
            memset(&items, 0, sizeof items);
        free(datas);
        free(lens);
    }
    /* The per-item figures; without memory for them the record keeps none. */
    store_item_figures *figures = NULL;
    char **iou_texts = NULL;
    size_t c = r->num_classes, nf = in->item_counts ? r->n : 0;
    double *iou = nf ? malloc(c * sizeof *iou) : NULL;
    if (iou) {
        figures = calloc(nf, sizeof *figures);
        iou_texts = calloc(nf, sizeof *iou_texts);
    }
    for (size_t i = 0; figures && iou_texts && i < nf; i++) {
        segloss_item_figures f;
        segloss_item_figures_from_counts(in->item_counts + i * 3 * c, c, &f, iou);
        json_writer w;
        json_writer_init(&w);
        json_number_array(&w, iou, c);
        size_t len;
        iou_texts[i] = json_writer_finish(&w, &len);
        figures[i] = (store_item_figures){.accuracy = f.accuracy,
                                          .miou = f.miou,
                                          .mean_dice = f.mean_dice,
                                          .present = f.present,
                                          .iou_json = iou_texts[i]};
        if (!iou_texts[i]) {
            free(figures);
            figures = NULL;
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    store_evaluation ev = {
        .id = in->id,
        .timestamp_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
        .run = in->run,
        .split = in->split,
        .step = in->has_step ? in->step : 0,
        .n = r->n,
        .c = r->c,
        .h = r->h,
        .w = r->w,
        .loss = in->loss,
        .stats = r->stats,
        .answer_json = in->answer,
        .answer_len = in->answer_len,
        .class_names_json = in->class_names_json,
        .items = items.count ? items.items : NULL,
        .item_count = items.count,
        .figures = iou_texts ? figures : NULL,
    };
    store_replay replay = {0};
    if (in->idempotency_key && in->request_hash && in->replay) {
        ev.idempotency_key = in->idempotency_key;
        ev.request_hash = in->request_hash;
        ev.replay = &replay;
    }
    int rc = store_record(st, &ev, err, err_len);
    overlay_items_free(&items);
    for (size_t i = 0; iou_texts && i < nf; i++)
        free(iou_texts[i]);
    free(iou_texts);
    free(figures);
    free(iou);
    if (rc == STORE_OK && replay.replayed) {
        in->replay->answer = replay.answer;
        in->replay->answer_len = replay.answer_len;
        replay.answer = NULL;
    }
    store_replay_clear(&replay);
    return rc == STORE_OK ? 200 : runs_api_store_status(rc);
}
