/*
 * extensions.c - the glue between http.c's seams and the runs store, runs API and dashboard.
 */
#include "extensions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assets.h"
#include "problem.h"
#include "result_json.h"
#include "runs_api.h"
#include "store.h"

struct extensions {
    store *store;
    segloss_limits limits; /* the configured shape limits, for overlays */
};

/* What GET /v1/info lists for them (docs/ARCHITECTURE.md §6). */
static const char *const runs_routes[] = {
    "GET /v1/runs",
    "GET /v1/runs/{run}",
    "DELETE /v1/runs/{run}",
    "GET /v1/runs/{run}/history",
    "GET /v1/runs/{run}/items",
    "GET /v1/evaluations/{id}",
    "GET /v1/evaluations/{id}/overlay.png",
    NULL,
};
static const char *const dashboard_routes[] = {"GET /", NULL};

/* Their metrics route labels, one per route template: a cheap list and a CSV export are
 * different latency series. */
enum { LABEL_RUNS, LABEL_RUN, LABEL_HISTORY, LABEL_EVALUATION, LABEL_OVERLAY };
static const char *const runs_labels[] = {
    "/v1/runs", "/v1/runs/{run}", "/v1/runs/{run}/history", "/v1/evaluations/{id}",
    "/v1/evaluations/{id}/overlay.png", NULL,
};
static const char *const dashboard_labels[] = {"/", "/{asset}", NULL};

/* Which template path fits, by its shape alone (runs_api.c decides what the segment holds). */
static size_t runs_label(void *arg, const char *path)
{
    (void)arg;
    if (strcmp(path, "/v1/runs") == 0 || strcmp(path, "/v1/runs/") == 0)
        return LABEL_RUNS;
    bool runs = strncmp(path, "/v1/runs/", 9) == 0;
    const char *rest = path + (runs ? 9 : 16);
    if (!runs && strncmp(path, "/v1/evaluations/", 16) != 0)
        return HTTP_LABEL_UNMATCHED;
    const char *slash = strchr(rest, '/');
    if (slash == rest)
        return HTTP_LABEL_UNMATCHED;
    if (!slash)
        return runs ? LABEL_RUN : LABEL_EVALUATION;
    if (strcmp(slash, runs ? "/history" : "/overlay.png") == 0)
        return runs ? LABEL_HISTORY : LABEL_OVERLAY;
    return HTTP_LABEL_UNMATCHED;
}

static size_t dashboard_label(void *arg, const char *path)
{
    (void)arg;
    return strcmp(path, "/") == 0 ? 0 : 1;
}

/* The result hook: only results that name a run are recorded, with their /v1/evaluate answer
 * (whichever door the request came by); that answer, as recorded, is the one sent. */
static int record_result(void *arg, const evaluation_record *rec, char *detail,
                         size_t detail_len)
{
    extensions *x = arg;
    const params_request *p = rec->params;
    if (!p->run)
        return 200;
    size_t answer_len;
    char *answer = evaluation_record_json(rec, &answer_len);
    if (!answer) {
        snprintf(detail, detail_len, "out of memory writing the answer; retry later");
        return 503;
    }
    runs_record_input in = {
        .id = rec->id,
        .run = p->run,
        .split = p->split,
        .has_step = p->has_step,
        .step = p->step,
        .loss = &p->loss,
        .result = rec->result,
        .answer = answer,
        .answer_len = answer_len,
        .class_names_json = p->class_names_json,
        .labels = rec->labels,
        .argmax = rec->argmax,
        .item_counts = rec->item_counts,
        .images = rec->images,
        .image_count = rec->image_count,
        .limits = &x->limits,
        .idempotency_key = rec->idempotency_key,
        .request_hash = rec->request_hash,
        .replay = rec->answer,
    };
    int status = runs_record(x->store, &in, detail, detail_len);
    if (status == 200 && !rec->answer->answer) { /* not a replay: the answer just recorded */
        rec->answer->answer = answer;
        rec->answer->answer_len = answer_len;
        answer = NULL;
    }
    free(answer);
    return status;
}

static bool runs_owns(void *arg, const char *path)
{
    (void)arg;
    return runs_api_owns_path(path);
}

static void runs_handle(void *arg, const http_route_request *req, http_route_response *out)
{
    extensions *x = arg;
    runs_api_request in = {
        .method = req->method,
        .path = req->path,
        .query = req->query,
        .query_arg = req->query_arg,
        .if_none_match = req->if_none_match,
        .request_id = req->request_id,
        .limits = &x->limits,
    };
    runs_api_response r;
    memset(&r, 0, sizeof r);
    runs_api_handle(x->store, &in, &r);
    out->status = r.status;
    out->content_type = r.content_type;
    out->body = r.body; /* taken over: the server frees it */
    out->body_len = r.body_len;
    r.body = NULL;
    snprintf(out->etag, sizeof out->etag, "%s", r.etag);
    out->cache_control = r.cache_control;
    out->header_name = r.header_name;
    snprintf(out->header_value, sizeof out->header_value, "%s", r.header_value);
    runs_api_response_free(&r);
}

static bool dashboard_owns(void *arg, const char *path)
{
    (void)arg;
    return asset_find(path) != NULL;
}

/* The dashboard's files: GET and HEAD only, revalidated on every load (they change with the
 * binary, and they are small). */
static void dashboard_handle(void *arg, const http_route_request *req, http_route_response *out)
{
    (void)arg;
    const embedded_asset *a = asset_find(req->path);
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        char detail[160];
        snprintf(detail, sizeof detail, "%.100s takes GET, HEAD", req->path);
        out->status = 405;
        out->content_type = PROBLEM_CONTENT_TYPE;
        out->body = problem_json(405, detail, req->request_id, &out->body_len);
        out->header_name = "Allow";
        snprintf(out->header_value, sizeof out->header_value, "GET, HEAD");
        return;
    }
    out->body = a ? malloc(a->size + 1) : NULL;
    if (!a || !out->body) {
        out->status = a ? 503 : 404;
        out->content_type = PROBLEM_CONTENT_TYPE;
        out->body = problem_json(out->status, a ? "out of memory" : "no such file",
                                 req->request_id, &out->body_len);
        return;
    }
    memcpy(out->body, a->data, a->size);
    out->body_len = a->size;
    out->status = 200;
    out->content_type = a->content_type;
    out->cache_control = "no-cache";
}

/* GET /metrics: the runs store's size on disk (database and journal files, or PostgreSQL's). */
static char *store_metrics(void *arg)
{
    extensions *x = arg;
    uint64_t bytes = 0;
    if (store_disk_bytes(x->store, &bytes) != 0)
        return NULL;
    char *text = malloc(256);
    if (text)
        snprintf(text, 256,
                 "# HELP segloss_store_disk_bytes Bytes the runs store uses on disk.\n"
                 "# TYPE segloss_store_disk_bytes gauge\n"
                 "segloss_store_disk_bytes %llu\n",
                 (unsigned long long)bytes);
    return text;
}

int extensions_open(const server_config *cfg, extensions **out, http_extensions *ext, char *err,
                    size_t err_len)
{
    *out = NULL;
    memset(ext, 0, sizeof *ext);
    extensions *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    x->limits = cfg->limits;
    const char *location = cfg->store[0] ? cfg->store : cfg->data_dir;
    store_options opt = {.location = location,
                         .retain_evaluations = cfg->retain_evaluations};
    char detail[256] = "";
    if (store_open(&opt, &x->store, detail, sizeof detail) != 0) {
        /* the store's own detail names the location with its password hidden; a URL may
         * carry one, so it is not repeated here */
        snprintf(err, err_len, "cannot open the runs store (%s): %s",
                 cfg->store[0] ? "--store" : "--data-dir", detail);
        free(x);
        return -1;
    }
    ext->on_result = record_result;
    ext->on_result_arg = x;
    ext->metrics_extra = store_metrics;
    ext->metrics_extra_arg = x;
    ext->routes[0] = (http_extension){"/v1/runs", runs_owns,   runs_handle,
                                      x,          runs_routes, runs_labels,
                                      runs_label};
    ext->routes[1] = (http_extension){"/dashboard",      dashboard_owns,   dashboard_handle,
                                      NULL,              dashboard_routes, dashboard_labels,
                                      dashboard_label};
    ext->route_count = 2;
    *out = x;
    return 0;
}

void extensions_close(extensions *x)
{
    if (!x)
        return;
    store_close(x->store);
    free(x);
}
