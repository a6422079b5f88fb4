/*
 * runs_api.c - the runs, history and evaluations routes over the store (see runs_api.h).
 *
 * Each handler reads the revision first, builds the ETag from it and the normalised query, and
 * answers 304 before doing any work when the client already has that answer. The revision is
 * read before the data, so a body is never older than its ETag says.
 *
 * The aggregate of a step is written by result_json, the writer of the POST /v1/evaluate
 * answer, so both read the same; the members that make no sense for an aggregate ("id",
 * "timing") are cut from its text (split_json).
 */
#include "runs_api.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_writer.h"
#include "overlay.h"
#include "params.h"
#include "problem.h"
#include "result_json.h"

#define JSON_TYPE "application/json"
#define CSV_TYPE "text/csv; charset=utf-8"
#define PNG_TYPE "image/png"
/* Polling clients revalidate every time; 304 makes that cheap. */
#define CACHE_REVALIDATE "no-cache"
/* A segment of a path: a run name (128) or an evaluation id (32), percent-encoded at most 3x. */
#define RUNS_API_MAX_SEGMENT 400
/* Bump when an answer's shape changes, so old ETags stop matching. */
#define RUNS_API_ETAG_VERSION 1

/* --- small text buffer ----------------------------------------------------------------------- */

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

/* A JSON string value (through json_writer, for its escaping). */
static void sb_json_string(strbuf *b, const char *s)
{
    json_writer w;
    json_writer_init(&w);
    json_string(&w, s);
    size_t n;
    char *t = json_writer_finish(&w, &n);
    if (!t)
        b->failed = 1;
    else
        sb_add(b, t, n);
    free(t);
}

/* --- answers --------------------------------------------------------------------------------- */

static void answer_problem(const runs_api_request *req, runs_api_response *out, int status,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void answer_problem(const runs_api_request *req, runs_api_response *out, int status,
                           const char *fmt, ...)
{
    char detail[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    free(out->body);
    out->status = status;
    out->content_type = PROBLEM_CONTENT_TYPE;
    out->etag[0] = '\0';
    out->body = problem_json(status, detail, req->request_id, &out->body_len);
}

static void answer_store_error(const runs_api_request *req, runs_api_response *out, int rc,
                               const char *err)
{
    answer_problem(req, out, store_http_status(rc), "%s", err);
}

static void answer_body(runs_api_response *out, const char *type, char *body, size_t len)
{
    out->status = 200;
    out->content_type = type;
    out->body = body;
    out->body_len = len;
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
static void make_etag(runs_api_response *out, const char *tag, uint64_t revision,
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
static bool not_modified(const runs_api_request *req, runs_api_response *out)
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

/* --- parameters ------------------------------------------------------------------------------ */

static const char *query(const runs_api_request *req, const char *key)
{
    const char *v = req->query ? req->query(req->query_arg, key) : NULL;
    return v;
}

/* An integer parameter in [min, max]; absent leaves *v alone. false after answering 400. */
static bool int_param(const runs_api_request *req, runs_api_response *out, const char *key,
                      int64_t min, int64_t max, int64_t *v)
{
    const char *s = query(req, key);
    if (!s)
        return true;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno || x < min || x > max) {
        answer_problem(req, out, 400, "%s must be an integer from %" PRId64 " to %" PRId64
                       "; got \"%.64s\"", key, min, max, s);
        return false;
    }
    *v = x;
    return true;
}

static bool bool_param(const runs_api_request *req, runs_api_response *out, const char *key,
                       bool *v)
{
    const char *s = query(req, key);
    if (!s)
        return true;
    if (!strcmp(s, "true") || !strcmp(s, "1")) {
        *v = true;
    } else if (!strcmp(s, "false") || !strcmp(s, "0")) {
        *v = false;
    } else {
        answer_problem(req, out, 400, "%s must be true or false; got \"%.64s\"", key, s);
        return false;
    }
    return true;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 32);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %XX escapes of one path segment into out; false when malformed or too long. */
static bool decode_segment(const char *s, size_t n, char *out, size_t out_len)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (j + 1 >= out_len)
            return false;
        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        if (i + 2 >= n)
            return false;
        int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0)
            return false;
        out[j++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[j] = '\0';
    return true;
}

/* --- the routes ------------------------------------------------------------------------------ */

typedef enum route_id {
    R_NONE,
    R_RUNS,
    R_RUN,
    R_HISTORY,
    R_EVALUATION,
    R_OVERLAY
} route_id;

bool runs_api_owns_path(const char *path)
{
    return path && (strcmp(path, "/v1/runs") == 0 || strncmp(path, "/v1/runs/", 9) == 0 ||
                    strncmp(path, "/v1/evaluations/", 16) == 0);
}

/* Splits the path into a route and its one parameter (decoded). */
static route_id match(const char *path, char *param, size_t param_len, bool *bad_segment)
{
    *bad_segment = false;
    param[0] = '\0';
    if (strcmp(path, "/v1/runs") == 0 || strcmp(path, "/v1/runs/") == 0)
        return R_RUNS;
    const char *rest;
    bool runs = strncmp(path, "/v1/runs/", 9) == 0;
    if (runs)
        rest = path + 9;
    else if (strncmp(path, "/v1/evaluations/", 16) == 0)
        rest = path + 16;
    else
        return R_NONE;
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0)
        return R_NONE;
    if (!decode_segment(rest, n, param, param_len)) {
        *bad_segment = true;
        return R_NONE;
    }
    const char *tail = slash ? slash : "";
    if (runs)
        return !*tail ? R_RUN : strcmp(tail, "/history") == 0 ? R_HISTORY : R_NONE;
    return !*tail ? R_EVALUATION : strcmp(tail, "/overlay.png") == 0 ? R_OVERLAY : R_NONE;
}

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') ||
              (id[i] >= 'A' && id[i] <= 'F')))
            return false;
    return true;
}

static void handle_runs(store *st, const runs_api_request *req, runs_api_response *out)
{
    char err[512];
    int64_t max = RUNS_API_DEFAULT_RUNS;
    if (!int_param(req, out, "max_results", 1, STORE_RUNS_MAX_RESULTS, &max))
        return;
    const char *token = query(req, "page_token");
    uint64_t rev;
    int rc = store_revision(st, NULL, &rev, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return;
    }
    char maxs[32];
    snprintf(maxs, sizeof maxs, "%" PRId64, max);
    const char *parts[] = {"runs", maxs, token && *token ? token : ""};
    make_etag(out, "l", rev, parts, 3);
    if (not_modified(req, out))
        return;
    store_run_list list;
    rc = store_list_runs(st, (size_t)max, token, &list, err, sizeof err);
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
        json_key(&w, "run");
        json_string(&w, r->name ? r->name : "");
        json_key(&w, "created_ms");
        json_int(&w, r->created_ms);
        json_key(&w, "updated_ms");
        json_int(&w, r->updated_ms);
        json_key(&w, "last_step");
        json_int(&w, r->last_step);
        json_key(&w, "evaluations");
        json_uint(&w, r->evaluations);
        json_key(&w, "revision");
        json_uint(&w, r->revision);
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
    json_key(&w, "next_page_token");
    if (list.next_page_token)
        json_string(&w, list.next_page_token);
    else
        json_null(&w);
    json_object_end(&w);
    store_run_list_free(&list);
    size_t len;
    char *body = json_writer_finish(&w, &len);
    if (!body)
        answer_problem(req, out, 503, "out of memory");
    else
        answer_body(out, JSON_TYPE, body, len);
}

/* Removes the member `"key":` ... up to the end of its object/array/scalar from a JSON text
 * written by json_writer (no whitespace). Only used on flat objects/values without braces in
 * strings, which is what result_json writes for "id" and "timing". */
static void cut_member(char *text, size_t *len, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *at = strstr(text, pat);
    if (!at)
        return;
    char *end = at + strlen(pat);
    if (*end == '{') {
        end = strchr(end, '}');
        if (!end)
            return;
        end++;
    } else if (*end == '"') {
        end = strchr(end + 1, '"');
        if (!end)
            return;
        end++;
    } else {
        while (*end && *end != ',' && *end != '}')
            end++;
    }
    /* take the comma after it, or else the one before it */
    char *start = at;
    if (*end == ',')
        end++;
    else if (start > text && start[-1] == ',')
        start--;
    memmove(start, end, (size_t)(text + *len - end) + 1);
    *len -= (size_t)(end - start);
}

/* The object of one split: its bookkeeping, then the aggregate as result_json writes it. */
static int split_json(strbuf *b, const char *run, const store_split_summary *sp, bool cm,
                      char *err, size_t err_len)
{
    segloss_result *res = NULL;
    params_request p;
    params_init(&p);
    char *text = NULL;
    int rc = store_finalise(sp->stats, sp->loss_params_json, &res, err, err_len);
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
    res->n = (size_t)sp->stats->batches;
    res->c = sp->stats->num_classes;
    res->h = sp->h;
    res->w = sp->w;
    result_timing timing = {0, 0, 0};
    size_t len;
    text = result_json(res, &p, "", &timing, &len);
    if (!text || !p.run || !p.split || len < 2 || text[0] != '{') {
        snprintf(err, err_len, "out of memory");
        rc = STORE_FAILED;
        goto done;
    }
    cut_member(text, &len, "id");
    cut_member(text, &len, "timing");

    sb_str(b, "{\"split\":");
    sb_json_string(b, sp->split);
    sb_printf(b, ",\"step\":%" PRId64 ",\"timestamp\":%" PRId64 ",\"evaluations\":%" PRIu64
              ",\"batches\":%" PRIu64 ",\"latest_evaluations\":[",
              sp->step, sp->updated_ms, sp->evaluations, (uint64_t)sp->stats->batches);
    for (size_t i = 0; i < sp->latest_count; i++) {
        const store_evaluation_ref *e = &sp->latest[i];
        sb_str(b, i ? ",{\"id\":" : "{\"id\":");
        sb_json_string(b, e->id);
        sb_printf(b,
                  ",\"step\":%" PRId64 ",\"timestamp\":%" PRId64
                  ",\"n\":%zu,\"overlay_items\":%zu,\"has_overlay\":%s",
                  e->step, e->timestamp_ms, e->n, e->items, e->has_overlay ? "true" : "false");
        if (e->has_overlay)
            sb_printf(b, ",\"overlay\":\"/v1/evaluations/%s/overlay.png?item=0\"", e->id);
        sb_str(b, "}");
    }
    sb_str(b, "]");
    if (len > 2) {
        sb_str(b, ",");
        sb_add(b, text + 1, len - 1); /* the aggregate's members and the closing brace */
    } else {
        sb_str(b, "}");
    }
    rc = STORE_OK;
done:
    free(text);
    segloss_result_free(res);
    params_free(&p);
    return rc;
}

static void handle_run(store *st, const runs_api_request *req, runs_api_response *out,
                       const char *run)
{
    char err[512];
    bool cm = false;
    if (!bool_param(req, out, "confusion_matrix", &cm))
        return;
    uint64_t rev;
    int rc = store_revision(st, run, &rev, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return;
    }
    const char *parts[] = {"run", run, cm ? "cm" : ""};
    make_etag(out, "r", rev, parts, 3);
    if (not_modified(req, out))
        return;
    store_run_summary sum;
    rc = store_get_run(st, run, &sum, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return;
    }
    make_etag(out, "r", sum.info.revision, parts, 3);
    strbuf b = {0};
    sb_str(&b, "{\"run\":");
    sb_json_string(&b, sum.info.name);
    sb_printf(&b,
              ",\"created_ms\":%" PRId64 ",\"updated_ms\":%" PRId64 ",\"last_step\":%" PRId64
              ",\"evaluations\":%" PRIu64 ",\"revision\":%" PRIu64 ",\"class_names\":",
              sum.info.created_ms, sum.info.updated_ms, sum.info.last_step,
              sum.info.evaluations, sum.info.revision);
    sb_str(&b, sum.class_names_json ? sum.class_names_json : "null");
    sb_str(&b, ",\"splits\":{");
    for (size_t i = 0; i < sum.split_count && rc == STORE_OK; i++) {
        if (i)
            sb_str(&b, ",");
        sb_json_string(&b, sum.splits[i].split);
        sb_str(&b, ":");
        rc = split_json(&b, run, &sum.splits[i], cm, err, sizeof err);
    }
    sb_str(&b, "}}");
    store_run_summary_free(&sum);
    if (rc || b.failed) {
        free(b.p);
        answer_problem(req, out, 500, "%s", rc ? err : "out of memory");
        return;
    }
    answer_body(out, JSON_TYPE, b.p, b.len);
}

static void handle_history(store *st, const runs_api_request *req, runs_api_response *out,
                           const char *run)
{
    char err[512];
    store_history_query q = {.run = run, .max_results = STORE_HISTORY_MAX_RESULTS};
    const char *keys = query(req, "key");
    if (keys && *keys) {
        const char *p = keys;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            char key[64];
            int k = -1;
            if (n < sizeof key) {
                memcpy(key, p, n);
                key[n] = '\0';
                k = store_history_key_index(key);
            }
            if (k < 0) {
                answer_problem(req, out, 400,
                               "key \"%.*s\" is not recorded; keys are loss.ce, loss.focal, "
                               "loss.dice, loss.total, metrics.miou, metrics.mean_dice, "
                               "metrics.f_score, metrics.mpa, metrics.accuracy",
                               (int)(n < 64 ? n : 64), p);
                return;
            }
            q.key_mask |= 1u << k;
            p = comma ? comma + 1 : p + n;
        }
    }
    q.split = query(req, "split");
    if (q.split && !store_split_name_ok(q.split)) {
        answer_problem(req, out, 400, "split must be 1 to %d characters of A-Z a-z 0-9 . _ -",
                       PARAMS_MAX_SPLIT_LEN);
        return;
    }
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
        answer_problem(req, out, 400, "format must be json or csv; got \"%.32s\"", format);
        return;
    }

    uint64_t rev;
    int rc = store_revision(st, run, &rev, err, sizeof err);
    if (rc) {
        answer_store_error(req, out, rc, err);
        return;
    }
    char mask[16], sinces[32], maxs[32];
    snprintf(mask, sizeof mask, "%" PRIu32, q.key_mask);
    snprintf(sinces, sizeof sinces, "%s%" PRId64, q.has_since_step ? "s" : "", since);
    snprintf(maxs, sizeof maxs, "%" PRId64, max);
    const char *parts[] = {"history", run,   mask, q.split ? q.split : STORE_DEFAULT_SPLIT,
                           sinces,    maxs,  q.page_token ? q.page_token : "",
                           csv ? "csv" : "json"};
    make_etag(out, "h", rev, parts, sizeof parts / sizeof parts[0]);
    if (not_modified(req, out))
        return;

    store_history hist;
    rc = store_history_page(st, &q, &hist, err, sizeof err);
    if (rc) {
        if (rc == STORE_INVALID)
            answer_problem(req, out, 400, "%s", err);
        else
            answer_store_error(req, out, rc, err);
        return;
    }
    char *body = NULL;
    size_t len = 0;
    if (csv) {
        strbuf b = {0};
        sb_str(&b, "key,value,step,timestamp\n");
        for (size_t i = 0; i < hist.count; i++) {
            const store_history_point *pt = &hist.points[i];
            if (pt->has_value)
                sb_printf(&b, "%s,%.17g,%" PRId64 ",%" PRId64 "\n", pt->key, pt->value,
                          pt->step, pt->timestamp_ms);
            else
                sb_printf(&b, "%s,,%" PRId64 ",%" PRId64 "\n", pt->key, pt->step,
                          pt->timestamp_ms);
        }
        if (hist.next_page_token) {
            out->header_name = "X-Next-Page-Token";
            snprintf(out->header_value, sizeof out->header_value, "%s", hist.next_page_token);
        }
        body = b.failed ? (free(b.p), NULL) : b.p;
        len = b.len;
    } else {
        json_writer w;
        json_writer_init(&w);
        json_object_begin(&w);
        json_key(&w, "metrics");
        json_array_begin(&w);
        for (size_t i = 0; i < hist.count; i++) {
            const store_history_point *pt = &hist.points[i];
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
        json_key(&w, "next_page_token");
        if (hist.next_page_token)
            json_string(&w, hist.next_page_token);
        else
            json_null(&w);
        json_object_end(&w);
        body = json_writer_finish(&w, &len);
    }
    store_history_free(&hist);
    if (!body)
        answer_problem(req, out, 503, "out of memory");
    else
        answer_body(out, csv ? CSV_TYPE : JSON_TYPE, body, len);
}

static void handle_evaluation(store *st, const runs_api_request *req, runs_api_response *out,
                              const char *id)
{
    char err[512];
    if (!id_ok(id)) {
        answer_problem(req, out, 404, "no evaluation with id \"%.64s\" is stored", id);
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

static void handle_overlay(store *st, const runs_api_request *req, runs_api_response *out,
                           const char *id)
{
    char err[512];
    int64_t item = 0;
    if (!int_param(req, out, "item", 0, SEGLOSS_MAX_BATCH - 1, &item))
        return;
    if (!id_ok(id)) {
        answer_problem(req, out, 404, "no evaluation with id \"%.64s\" is stored", id);
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
        rc = overlay_render(&in.item, in.num_classes, &png, &len, err, sizeof err);
        if (rc)
            answer_problem(req, out, 500, "rendering the overlay: %s", err);
        else
            answer_body(out, PNG_TYPE, (char *)png, len);
    }
    store_overlay_input_free(&in);
}

void runs_api_handle(store *st, const runs_api_request *req, runs_api_response *out)
{
    memset(out, 0, sizeof *out);
    out->cache_control = CACHE_REVALIDATE;
    char param[RUNS_API_MAX_SEGMENT];
    bool bad;
    route_id r = match(req->path ? req->path : "", param, sizeof param, &bad);
    if (r == R_NONE) {
        answer_problem(req, out, 404, bad ? "malformed percent-escape in the path"
                                          : "no such route; see GET /v1/info");
        return;
    }
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool del = strcmp(req->method, "DELETE") == 0;
    if (!get && !(del && r == R_RUN)) {
        out->header_name = "Allow";
        snprintf(out->header_value, sizeof out->header_value, "%s",
                 r == R_RUN ? "GET, HEAD, DELETE" : "GET, HEAD");
        answer_problem(req, out, 405, "%s is not allowed here; allowed: %s", req->method,
                       out->header_value);
        return;
    }
    if ((r == R_RUN || r == R_HISTORY) && !store_run_name_ok(param)) {
        answer_problem(req, out, 404,
                       "no run named \"%.140s\" (run names are 1 to %d characters of A-Z a-z "
                       "0-9 . _ -)",
                       param, PARAMS_MAX_RUN_LEN);
        return;
    }
    if (!st) {
        answer_problem(req, out, 503, "the runs store is not open");
        return;
    }
    switch (r) {
    case R_RUNS:
        handle_runs(st, req, out);
        break;
    case R_RUN:
        if (del) {
            char err[512];
            int rc = store_delete_run(st, param, err, sizeof err);
            if (rc)
                answer_store_error(req, out, rc, err);
            else
                out->status = 204;
        } else {
            handle_run(st, req, out, param);
        }
        break;
    case R_HISTORY:
        handle_history(st, req, out, param);
        break;
    case R_EVALUATION:
        handle_evaluation(st, req, out, param);
        break;
    case R_OVERLAY:
        handle_overlay(st, req, out, param);
        break;
    default:
        break;
    }
}

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
            overlay_items_build(in->argmax, &first, r->num_classes, datas, lens,
                                in->image_count, &items, detail, sizeof detail) != 0)
            memset(&items, 0, sizeof items);
        free(datas);
        free(lens);
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
    };
    store_replay replay = {0};
    if (in->idempotency_key && in->request_hash && in->replay) {
        ev.idempotency_key = in->idempotency_key;
        ev.request_hash = in->request_hash;
        ev.replay = &replay;
    }
    int rc = store_record(st, &ev, err, err_len);
    overlay_items_free(&items);
    if (rc == STORE_OK && replay.replayed) {
        in->replay->answer = replay.answer;
        in->replay->answer_len = replay.answer_len;
        replay.answer = NULL;
    }
    store_replay_clear(&replay);
    return rc == STORE_OK ? 200 : store_http_status(rc);
}

void runs_api_response_free(runs_api_response *out)
{
    if (!out)
        return;
    free(out->body);
    out->body = NULL;
    out->body_len = 0;
}
