/*
 * routes.c - seglossd's route table and the routes too small for a file of their own: the
 * probes, GET /v1/info, GET /metrics and the dashboard's files (see routes.h).
 */
#include "api/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/assets.h"
#include "api/evaluate_route.h"
#include "api/oip_route.h"
#include "api/result_json.h"
#include "api/runs_api.h"
#include "base/json_writer.h"
#include "base/metrics.h"
#include "segloss/segloss.h"

#define JSON_TYPE "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- probes, info, metrics ----------------------------------------------------------- */

/* A fixed text as the answer; a 503 when out of memory. */
static void answer_text(route_response *out, int status, const char *type, const char *text)
{
    out->body = strdup(text);
    if (!out->body) {
        out->status = 503;
        snprintf(out->detail, sizeof out->detail, "out of memory; retry later");
        return;
    }
    out->status = status;
    out->content_type = type;
    out->body_len = strlen(text);
}

static route_status status_of(const route_request *req)
{
    route_status st = {.draining = false};
    if (req->host)
        req->host->status(req->host->impl, &st);
    return st;
}

static void handle_livez(void *arg, const route_request *req, route_response *out)
{
    (void)arg;
    (void)req;
    answer_text(out, 200, JSON_TYPE, "{\"status\":\"ok\"}\n");
}

static void handle_readyz(void *arg, const route_request *req, route_response *out)
{
    (void)arg;
    if (status_of(req).draining) {
        out->status = 503;
        snprintf(out->detail, sizeof out->detail,
                 "shutting down: finishing in-flight requests; "
                 "send new ones to another replica");
        return;
    }
    answer_text(out, 200, JSON_TYPE, "{\"status\":\"ready\"}\n");
}

/* Appends text to the body; left as it was when out of memory. */
static void append(route_response *out, const char *text)
{
    size_t n = strlen(text);
    char *joined = out->body ? realloc(out->body, out->body_len + n + 1) : NULL;
    if (joined) {
        memcpy(joined + out->body_len, text, n + 1);
        out->body = joined;
        out->body_len += n;
    }
}

static void handle_metrics(void *arg, const route_request *req, route_response *out)
{
    const routes *r = arg;
    route_status st = status_of(req);
    if (!req->host) {
        out->status = 503;
        snprintf(out->detail, sizeof out->detail, "no server to report on");
        return;
    }
    out->body =
        metrics_render(req->host->metrics, st.evaluations_waiting, st.draining, SEGLOSS_VERSION,
                       segloss_kernel_name(segloss_ctx_kernel(r->ctx)), &out->body_len);
    if (!out->body) {
        out->status = 503;
        snprintf(out->detail, sizeof out->detail, "out of memory; retry later");
        return;
    }
    out->status = 200;
    out->content_type = METRICS_TYPE;
    char budget[640]; /* the text below: 428 bytes with both numbers at 20 digits */
    snprintf(budget, sizeof budget,
             "# HELP segloss_inflight_body_bytes Bytes of request bodies held now (received or "
             "being evaluated), counted against --max-inflight-mb.\n"
             "# TYPE segloss_inflight_body_bytes gauge\n"
             "segloss_inflight_body_bytes %zu\n"
             "# HELP segloss_inflight_body_budget_bytes The memory budget for request bodies "
             "(--max-inflight-mb).\n"
             "# TYPE segloss_inflight_body_budget_bytes gauge\n"
             "segloss_inflight_body_budget_bytes %zu\n",
             st.body_bytes_held, st.body_budget_bytes);
    append(out, budget);
    /* the runs store's size on disk (database and journal files, or PostgreSQL's) */
    uint64_t bytes = 0;
    if (r->store && store_disk_bytes(r->store, &bytes) == 0) {
        char disk[256];
        snprintf(disk, sizeof disk,
                 "# HELP segloss_store_disk_bytes Bytes the runs store uses on disk.\n"
                 "# TYPE segloss_store_disk_bytes gauge\n"
                 "segloss_store_disk_bytes %llu\n",
                 (unsigned long long)bytes);
        append(out, disk);
    }
}

static char *build_info(const routes *r, size_t *len)
{
    const server_config *cfg = r->cfg;
    segloss_params d;
    segloss_params_default(&d);
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "service");
    json_string(&w, "seglossd");
    json_key(&w, "version");
    json_string(&w, SEGLOSS_VERSION);
    json_key(&w, "kernel");
    json_string(&w, segloss_kernel_name(segloss_ctx_kernel(r->ctx)));
    json_key(&w, "eval_threads");
    json_uint(&w, segloss_ctx_threads(r->ctx));
    json_key(&w, "limits");
    json_object_begin(&w);
    json_key(&w, "max_body_bytes");
    json_uint(&w, cfg->max_body_bytes);
    json_key(&w, "max_parts");
    json_uint(&w, cfg->max_parts);
    json_key(&w, "max_params_bytes");
    json_uint(&w, cfg->max_params_bytes);
    json_key(&w, "max_classes");
    json_uint(&w, cfg->limits.max_classes);
    json_key(&w, "max_side");
    json_uint(&w, cfg->limits.max_side);
    json_key(&w, "max_pixels");
    json_uint(&w, cfg->limits.max_pixels);
    json_key(&w, "max_batch");
    json_uint(&w, cfg->limits.max_batch);
    json_key(&w, "max_elements");
    json_uint(&w, cfg->limits.max_elements);
    json_key(&w, "upload_timeout_s");
    json_uint(&w, cfg->upload_timeout_s);
    json_key(&w, "idle_timeout_s");
    json_uint(&w, cfg->idle_timeout_s);
    json_object_end(&w);
    json_key(&w, "formats");
    json_object_begin(&w);
    json_key(&w, "logits");
    json_array_begin(&w);
    json_string(&w, "npy <f4 <f2 <f8, shape (N,C,H,W) or (C,H,W)");
    json_string(&w, "safetensors F32 F16 BF16 F64, tensor \"logits\"");
    json_array_end(&w);
    json_key(&w, "mask");
    json_array_begin(&w);
    json_string(&w, "png 8-bit grey");
    json_string(&w, "png 8-bit palette (index = class)");
    json_string(&w, "png 16-bit grey");
    json_string(&w, "npy integer (N,H,W) or (H,W)");
    json_array_end(&w);
    json_key(&w, "image");
    json_array_begin(&w);
    json_string(&w, "jpeg");
    json_string(&w, "png");
    json_array_end(&w);
    json_object_end(&w);
    json_key(&w, "defaults");
    json_object_begin(&w);
    json_key(&w, "class_weights");
    json_string(&w, "all 1");
    json_key(&w, "alpha");
    json_number(&w, d.alpha);
    json_key(&w, "gamma");
    json_number(&w, d.gamma);
    json_key(&w, "beta");
    json_number(&w, d.beta);
    json_key(&w, "smooth");
    json_number(&w, d.smooth);
    json_key(&w, "threshold");
    json_number(&w, d.threshold);
    json_key(&w, "main_loss");
    json_string(&w, d.main_loss == SEGLOSS_MAIN_FOCAL ? "focal" : "ce");
    json_key(&w, "dice_loss");
    json_bool(&w, d.dice_loss);
    json_key(&w, "num_classes");
    json_string(&w, "C of the logits");
    json_key(&w, "semantics");
    json_string(&w, d.semantics == SEGLOSS_STANDARD ? "standard" : "seed");
    json_key(&w, "confusion_matrix");
    json_bool(&w, false);
    json_object_end(&w);
    json_key(&w, "routes");
    json_array_begin(&w);
    for (size_t i = 0; i < r->table.count; i++) {
        const route_entry *e = &r->table.entries[i];
        if (!(e->flags & ROUTE_LISTED))
            continue;
        char line[128];
        snprintf(line, sizeof line, "%s %s", e->method, e->pattern);
        json_string(&w, line);
    }
    json_array_end(&w);
    json_object_end(&w);
    return json_writer_finish(&w, len);
}

static void handle_info(void *arg, const route_request *req, route_response *out)
{
    (void)req;
    out->body = build_info(arg, &out->body_len);
    out->status = out->body ? 200 : 503;
    out->content_type = out->body ? JSON_TYPE : NULL;
    if (!out->body)
        snprintf(out->detail, sizeof out->detail, "out of memory; retry later");
}

/* ---- the dashboard ------------------------------------------------------------------- */

static bool dashboard_has(const char *path)
{
    return asset_find(path) != NULL;
}

/* The dashboard's files, revalidated on every load (they change with the binary, and they are
 * small). */
static void handle_dashboard(void *arg, const route_request *req, route_response *out)
{
    (void)arg;
    const embedded_asset *a = asset_find(req->path);
    out->body = a ? malloc(a->size + 1) : NULL;
    if (!a || !out->body) {
        out->status = a ? 503 : 404;
        snprintf(out->detail, sizeof out->detail, "%s", a ? "out of memory" : "no such file");
        return;
    }
    memcpy(out->body, a->data, a->size);
    out->body_len = a->size;
    out->status = 200;
    out->content_type = a->content_type;
    out->cache_control = "no-cache";
}

/* ---- the runs API (runs_api.h) -------------------------------------------------------- */

#define RUNS_ROUTE(name, fn)                                                                       \
    static void name(void *arg, const route_request *req, route_response *out)                     \
    {                                                                                              \
        fn(((const routes *)arg)->store, req, out);                                                \
    }
RUNS_ROUTE(runs_list, runs_api_list)
RUNS_ROUTE(runs_run, runs_api_run)
RUNS_ROUTE(runs_delete, runs_api_delete_run)
RUNS_ROUTE(runs_history, runs_api_history)
RUNS_ROUTE(runs_items, runs_api_items)
RUNS_ROUTE(runs_evaluation, runs_api_evaluation)
RUNS_ROUTE(runs_overlay, runs_api_overlay)

/* The result hook: only results that name a run are recorded, with their /v1/evaluate answer
 * (whichever door the request came by); that answer, as recorded, is the one sent. */
static int record_result(void *arg, const evaluation_record *rec, char *detail, size_t detail_len)
{
    const routes *r = arg;
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
        .limits = &r->cfg->limits,
        .idempotency_key = rec->idempotency_key,
        .request_hash = rec->request_hash,
        .replay = rec->answer,
    };
    int status = runs_record(r->store, &in, detail, detail_len);
    if (status == 200 && !rec->answer->answer) { /* not a replay: the answer just recorded */
        rec->answer->answer = answer;
        rec->answer->answer_len = answer_len;
        answer = NULL;
    }
    free(answer);
    return status;
}

/* ---- the table ----------------------------------------------------------------------- */

#define V2 &oip_route_errors
#define LISTED ROUTE_LISTED
#define PROBE (ROUTE_LISTED | ROUTE_PROBE)
#define PAGE ROUTE_PAGE

/* The order is that of GET /v1/info; a path's first route labels its 405s. The metrics labels
 * are the tests' and dashboards' names: keep them. */
// clang-format off
/* The paths that need a token when tokens are on: the whole API, its roots and the Open
 * Inference Protocol's model routes (its /v2/health/... probes stay open like /livez and
 * /readyz); the pages say so per route (ROUTE_PAGE); /metrics takes the --metrics-token. A
 * prefix, not the routes' own list, so an unknown /v1 path asks for a token before it says 404. */
static const char *const protected_paths[] = {"/v1", "/v2", NULL};
static const char *const protected_prefixes[] = {"/v1/", "/v2/models/", NULL};
const auth_policy routes_auth_policy = {protected_paths, protected_prefixes, "/metrics"};

static const route_entry seglossd_routes[] = {
    /* method, pattern, label (NULL: the pattern), flags, errors (NULL: problem+json), accepts,
     * handler, upload */
    {"POST", "/v1/evaluate", NULL, LISTED, NULL, NULL, NULL, &evaluate_route},
    {"GET", "/v1/info", NULL, PROBE, NULL, NULL, handle_info, NULL},
    {"GET", "/livez", NULL, PROBE, NULL, NULL, handle_livez, NULL},
    {"GET", "/healthz", NULL, PROBE, NULL, NULL, handle_livez, NULL},
    {"GET", "/readyz", NULL, PROBE, NULL, NULL, handle_readyz, NULL},
    {"GET", "/metrics", NULL, PROBE, NULL, NULL, handle_metrics, NULL},
    /* Open Inference Protocol v2 (KServe / Triton REST), oip_route.h */
    {"POST", "/v2/models/segloss/infer", NULL, LISTED, V2, NULL, NULL, &oip_route_infer},
    {"POST", "/v2/models/segloss/versions/1/infer", NULL, LISTED, V2, NULL, NULL, &oip_route_infer},
    {"GET", "/v2", NULL, PROBE, V2, NULL, oip_route_get, NULL},
    {"GET", "/v2/health/live", NULL, PROBE, V2, NULL, oip_route_get, NULL},
    {"GET", "/v2/health/ready", NULL, PROBE, V2, NULL, oip_route_get, NULL},
    {"GET", "/v2/models/segloss", NULL, PROBE, V2, NULL, oip_route_get, NULL},
    {"GET", "/v2/models/segloss/ready", NULL, PROBE, V2, NULL, oip_route_get, NULL},
    {"GET", "/v2/models/segloss/versions/1", NULL, PROBE, V2, NULL, oip_route_get, NULL},
    {"GET", "/v2/models/segloss/versions/1/ready", NULL, PROBE, V2, NULL, oip_route_get, NULL},
    /* the runs API (runs_api.h); "/v1/runs/" is "/v1/runs", and the items are counted as
     * unmatched (they have no latency series of their own) */
    {"GET", "/v1/runs", NULL, LISTED, NULL, NULL, runs_list, NULL},
    {"GET", "/v1/runs/", "/v1/runs", 0, NULL, NULL, runs_list, NULL},
    {"GET", "/v1/runs/{run}", NULL, LISTED, NULL, NULL, runs_run, NULL},
    {"DELETE", "/v1/runs/{run}", NULL, LISTED, NULL, NULL, runs_delete, NULL},
    {"GET", "/v1/runs/{run}/history", NULL, LISTED, NULL, NULL, runs_history, NULL},
    {"GET", "/v1/runs/{run}/items", NULL, LISTED | ROUTE_UNLABELLED, NULL, NULL, runs_items, NULL},
    {"GET", "/v1/evaluations/{id}", NULL, LISTED, NULL, NULL, runs_evaluation, NULL},
    {"GET", "/v1/evaluations/{id}/overlay.png", NULL, LISTED, NULL, NULL, runs_overlay, NULL},
    /* the dashboard: GET / and its files */
    {"GET", "/", NULL, LISTED | PAGE, NULL, NULL, handle_dashboard, NULL},
    {"GET", "/{asset}", NULL, PAGE, NULL, dashboard_has, handle_dashboard, NULL},
};
// clang-format on
#define SEGLOSSD_ROUTE_COUNT (sizeof seglossd_routes / sizeof seglossd_routes[0])

/* ---- life cycle ---------------------------------------------------------------------- */

int routes_new(const server_config *cfg, const routes_options *opt, routes **out, char *err,
               size_t err_len)
{
    *out = NULL;
    routes_options none = {.store = NULL};
    if (!opt)
        opt = &none;
    routes *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    r->cfg = cfg;
    r->store = opt->store;
    r->on_result = opt->on_result ? opt->on_result : opt->store ? record_result : NULL;
    r->on_result_arg = opt->on_result ? opt->on_result_arg : r;
    int rc = segloss_ctx_new(&r->ctx, cfg->eval_threads, SEGLOSS_KERNEL_AUTO);
    if (!rc)
        rc = segloss_ctx_set_limits(r->ctx, &cfg->limits);
    if (rc) {
        char why[256] = "";
        segloss_kernel unused;
        if (segloss_kernel_choose(SEGLOSS_KERNEL_AUTO, &unused, why, sizeof why) == 0)
            snprintf(why, sizeof why, "%s", segloss_strerror(rc));
        snprintf(err, err_len, "cannot start the loss library: %s", why);
        goto fail;
    }
    size_t count = SEGLOSSD_ROUTE_COUNT + opt->extra_count;
    r->entries = calloc(count, sizeof *r->entries);
    r->pool = bufpool_new(cfg->buffer_cache_mb << 20);
    r->intake = intake_worker_new(r->ctx, &cfg->limits);
    if (!r->entries || !r->pool || !r->intake) {
        snprintf(err, err_len, "out of memory or threads starting the workers");
        goto fail;
    }
    memcpy(r->entries, seglossd_routes, sizeof seglossd_routes);
    if (opt->extra_count)
        memcpy(r->entries + SEGLOSSD_ROUTE_COUNT, opt->extra,
               opt->extra_count * sizeof *r->entries);
    r->table = (route_table){r->entries, count, &routes_auth_policy, r};
    *out = r;
    return 0;
fail:
    routes_close(r);
    return -1;
}

int routes_open(const server_config *cfg, routes **out, char *err, size_t err_len)
{
    *out = NULL;
    const char *location = cfg->store[0] ? cfg->store : cfg->data_dir;
    store_options opt = {.location = location, .retain_evaluations = cfg->retain_evaluations};
    store *st = NULL;
    char detail[256] = "";
    if (store_open(&opt, &st, detail, sizeof detail) != 0) {
        /* the store's own detail names the location with its password hidden; a URL may
         * carry one, so it is not repeated here */
        snprintf(err, err_len, "cannot open the runs store (%s): %s",
                 cfg->store[0] ? "--store" : "--data-dir", detail);
        return -1;
    }
    routes_options ro = {.store = st};
    if (routes_new(cfg, &ro, out, err, err_len) != 0) {
        store_close(st);
        return -1;
    }
    (*out)->own_store = true;
    return 0;
}

const route_table *routes_table(const routes *r)
{
    return &r->table;
}

void routes_close(routes *r)
{
    if (!r)
        return;
    intake_worker_free(r->intake);
    bufpool_free(r->pool);
    segloss_ctx_free(r->ctx);
    if (r->own_store)
        store_close(r->store);
    free(r->entries);
    free(r);
}
