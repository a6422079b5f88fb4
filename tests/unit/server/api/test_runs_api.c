/*
 * test_runs_api.c - the runs routes called through the route table (routes.h, route_answer):
 * answers and their JSON, ETags and 304,
 * problem+json errors (404 for unknown runs, ids and items; 400 naming the bad parameter; 405),
 * history paging tokens and CSV, overlays, DELETE.
 */
#include <cjson/cJSON.h>

#include "api/routes.h"
#include "api/runs_api.h"
#include "store_fixture.h"
#include "testing.h"

static segloss_ctx *ctx;
static store *st;
static server_config cfg;
static routes *rt; /* seglossd's route table over st */

/* Query parameters as "k1", "v1", "k2", "v2", ..., NULL. */
static const char *lookup(void *arg, const char *key)
{
    const char *const *kv = arg;
    for (size_t i = 0; kv && kv[i]; i += 2)
        if (strcmp(kv[i], key) == 0)
            return kv[i + 1];
    return NULL;
}

static route_response call(const char *method, const char *path, const char *const *query,
                           const char *if_none_match)
{
    route_request req = {.method = method,
                         .path = path,
                         .query = lookup,
                         .query_arg = (void *)(uintptr_t)query,
                         .if_none_match = if_none_match,
                         .request_id = "req-1"};
    route_response res;
    rt->store = st;
    route_answer(routes_table(rt), &req, &res);
    return res;
}

static cJSON *body_json(const route_response *r)
{
    return r->body ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
}

/* A problem+json answer with this status whose detail contains want. */
static int is_problem(const route_response *r, int status, const char *want)
{
    cJSON *j = body_json(r);
    const cJSON *d = cJSON_GetObjectItem(j, "detail");
    const cJSON *s = cJSON_GetObjectItem(j, "status");
    int ok = r->status == status && r->content_type &&
             strcmp(r->content_type, "application/problem+json") == 0 && cJSON_IsString(d) &&
             strstr(d->valuestring, want) && cJSON_IsNumber(s) && s->valueint == status &&
             cJSON_GetObjectItem(j, "error") && cJSON_GetObjectItem(j, "request_id");
    if (!ok)
        fprintf(stderr, "  got %d %s\n", r->status, r->body ? r->body : "(no body)");
    cJSON_Delete(j);
    return ok;
}

static void test_runs_list_and_etag(void)
{
    route_response r = call("GET", "/v1/runs", NULL, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body && strcmp(r.body, "{\"runs\":[],\"next_page_token\":null}") == 0);
    CHECK(r.etag[0] == '"');
    CHECK(r.cache_control && strcmp(r.cache_control, "no-cache") == 0);
    char etag[96];
    strcpy(etag, r.etag);
    route_response_free(&r);

    r = call("GET", "/v1/runs", NULL, etag);
    CHECK_EQ_INT(r.status, 304);
    CHECK(r.body == NULL && strcmp(r.etag, etag) == 0);
    route_response_free(&r);
    char listed[200];
    snprintf(listed, sizeof listed, "\"x\", W/%s", etag);
    r = call("GET", "/v1/runs", NULL, listed);
    CHECK_EQ_INT(r.status, 304);
    route_response_free(&r);
    /* another query is another answer */
    const char *q1[] = {"max_results", "5", NULL};
    r = call("GET", "/v1/runs", q1, etag);
    CHECK_EQ_INT(r.status, 200);
    route_response_free(&r);

    CHECK(fixture_record(st, ctx, 1, 3, "alpha", NULL, 0, NULL) == 0);
    CHECK(fixture_record(st, ctx, 2, 3, "beta", "train", 0, NULL) == 0);
    r = call("GET", "/v1/runs", NULL, etag);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(r.etag, etag) != 0);
    cJSON *j = body_json(&r);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "runs")), 2);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "runs"), 0);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(first, "run")) &&
          strcmp(cJSON_GetObjectItem(first, "run")->valuestring, "alpha") == 0);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(first, "updated_ms")));
    const cJSON *splits = cJSON_GetObjectItem(first, "splits");
    CHECK(cJSON_GetArraySize(splits) == 1 &&
          strcmp(cJSON_GetArrayItem(splits, 0)->valuestring, "val") == 0);
    cJSON_Delete(j);
    route_response_free(&r);

    const char *q2[] = {"max_results", "1", NULL};
    r = call("GET", "/v1/runs", q2, NULL);
    j = body_json(&r);
    const cJSON *tok = cJSON_GetObjectItem(j, "next_page_token");
    CHECK(cJSON_IsString(tok));
    if (cJSON_IsString(tok)) {
        const char *q3[] = {"max_results", "1", "page_token", tok->valuestring, NULL};
        route_response r2 = call("GET", "/v1/runs", q3, NULL);
        CHECK(r2.body && strstr(r2.body, "\"beta\"") && strstr(r2.body, "\"train\"") &&
              strstr(r2.body, "\"next_page_token\":null"));
        route_response_free(&r2);
    }
    cJSON_Delete(j);
    route_response_free(&r);

    const char *bad1[] = {"max_results", "0", NULL};
    r = call("GET", "/v1/runs", bad1, NULL);
    CHECK(is_problem(&r, 400, "max_results"));
    route_response_free(&r);
    const char *bad2[] = {"page_token", "%%%", NULL};
    r = call("GET", "/v1/runs", bad2, NULL);
    CHECK(is_problem(&r, 400, "page_token"));
    route_response_free(&r);
}

static void test_run_summary(void)
{
    fixture_eval a, b;
    char err[256];
    CHECK(fixture_eval_make(ctx, &a, 10, 2, 3, 8, 8, "sum", NULL, 4) == 0);
    CHECK(fixture_eval_make(ctx, &b, 11, 1, 3, 8, 8, "sum", NULL, 4) == 0);
    a.ev.class_names_json = "[\"bg\",\"road\",\"car\"]";
    CHECK(store_record(st, &a.ev, err, sizeof err) == 0);
    CHECK(store_record(st, &b.ev, err, sizeof err) == 0);
    segloss_stats *merged = segloss_stats_clone(a.result->stats);
    CHECK(merged && segloss_stats_merge(merged, b.result->stats) == 0);
    segloss_result *want = NULL;
    CHECK(segloss_result_from_stats(merged, &a.params.loss, &want, err, sizeof err) == 0);

    route_response r = call("GET", "/v1/runs/sum", NULL, NULL);
    CHECK_EQ_INT(r.status, 200);
    cJSON *j = body_json(&r);
    CHECK(j != NULL);
    CHECK(cJSON_GetObjectItem(j, "evaluations")->valueint == 2);
    const cJSON *names = cJSON_GetObjectItem(j, "class_names");
    CHECK(cJSON_GetArraySize(names) == 3 &&
          strcmp(cJSON_GetArrayItem(names, 2)->valuestring, "car") == 0);
    const cJSON *val = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "splits"), "val");
    CHECK(val != NULL);
    if (val && want) {
        CHECK(cJSON_GetObjectItem(val, "step")->valueint == 4);
        CHECK(cJSON_GetObjectItem(val, "evaluations")->valueint == 2);
        CHECK(cJSON_GetObjectItem(val, "batches")->valueint == 3);
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(val, "timestamp")));
        /* the aggregate, written as a POST /v1/evaluate answer is, minus id and timing */
        CHECK(cJSON_GetObjectItem(val, "id") == NULL);
        CHECK(cJSON_GetObjectItem(val, "timing") == NULL);
        const cJSON *metrics = cJSON_GetObjectItem(val, "metrics");
        CHECK(cJSON_GetObjectItem(metrics, "miou")->valuedouble == want->miou);
        CHECK(cJSON_GetObjectItem(metrics, "mean_dice")->valuedouble == want->mean_dice);
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(val, "loss"), "total")->valuedouble ==
              want->total);
        CHECK(cJSON_GetArraySize(
                  cJSON_GetObjectItem(cJSON_GetObjectItem(val, "per_class"), "dice")) == 3);
        const cJSON *shape = cJSON_GetObjectItem(val, "shape");
        CHECK(cJSON_GetObjectItem(shape, "n")->valueint == 3);
        CHECK(cJSON_GetObjectItem(shape, "h")->valueint == 8);
        const cJSON *params = cJSON_GetObjectItem(val, "params");
        CHECK(strcmp(cJSON_GetObjectItem(params, "run")->valuestring, "sum") == 0);
        CHECK(cJSON_GetObjectItem(params, "step")->valueint == 4);
        CHECK(cJSON_GetObjectItem(val, "confusion_matrix") == NULL);
        const cJSON *latest = cJSON_GetObjectItem(val, "latest_evaluations");
        CHECK(cJSON_GetArraySize(latest) == 2);
        const cJSON *l0 = cJSON_GetArrayItem(latest, 0);
        CHECK(l0 && strcmp(cJSON_GetObjectItem(l0, "id")->valuestring, b.id) == 0);
        CHECK(l0 && cJSON_IsTrue(cJSON_GetObjectItem(l0, "has_overlay")));
        CHECK(l0 && strstr(cJSON_GetObjectItem(l0, "overlay")->valuestring, b.id));
    }
    cJSON_Delete(j);
    char etag[96];
    strcpy(etag, r.etag);
    route_response_free(&r);

    r = call("GET", "/v1/runs/sum", NULL, etag);
    CHECK_EQ_INT(r.status, 304);
    route_response_free(&r);
    const char *cm[] = {"confusion_matrix", "true", NULL};
    r = call("GET", "/v1/runs/sum", cm, etag);
    CHECK_EQ_INT(r.status, 200);
    j = body_json(&r);
    const cJSON *matrix = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "splits"), "val"), "confusion_matrix");
    CHECK(cJSON_GetArraySize(matrix) == 3);
    CHECK(matrix && cJSON_GetArrayItem(cJSON_GetArrayItem(matrix, 1), 1)->valuedouble ==
                        (double)merged->confusion[4]);
    cJSON_Delete(j);
    route_response_free(&r);
    /* a record elsewhere leaves this run's ETag valid; one here does not */
    CHECK(fixture_record(st, ctx, 12, 3, "elsewhere", NULL, 0, NULL) == 0);
    r = call("GET", "/v1/runs/sum", NULL, etag);
    CHECK_EQ_INT(r.status, 304);
    route_response_free(&r);
    CHECK(fixture_record(st, ctx, 13, 3, "sum", NULL, 5, NULL) == 0);
    r = call("GET", "/v1/runs/sum", NULL, etag);
    CHECK_EQ_INT(r.status, 200);
    route_response_free(&r);

    const char *badcm[] = {"confusion_matrix", "maybe", NULL};
    r = call("GET", "/v1/runs/sum", badcm, NULL);
    CHECK(is_problem(&r, 400, "confusion_matrix"));
    route_response_free(&r);
    r = call("GET", "/v1/runs/nosuchrun", NULL, NULL);
    CHECK(is_problem(&r, 404, "nosuchrun"));
    route_response_free(&r);
    /* The path arrives decoded (http.c decodes it once): a '%' left in it is part of the
     * name, never decoded a second time. */
    r = call("GET", "/v1/runs/bad%2Fname", NULL, NULL);
    CHECK(is_problem(&r, 404, "bad%2Fname"));
    route_response_free(&r);
    r = call("GET", "/v1/runs/%zz", NULL, NULL);
    CHECK(is_problem(&r, 404, "%zz"));
    route_response_free(&r);
    r = call("GET", "/v1/runs/s%75m", NULL, NULL);
    CHECK(is_problem(&r, 404, "s%75m"));
    route_response_free(&r);
    r = call("DELETE", "/v1/runs/s%75m", NULL, NULL);
    CHECK(is_problem(&r, 404, "s%75m"));
    route_response_free(&r);
    r = call("GET", "/v1/runs/sum", NULL, NULL);
    CHECK_EQ_INT(r.status, 200);
    route_response_free(&r);
    r = call("GET", "/v1/runs/sum/nothing", NULL, NULL);
    CHECK(is_problem(&r, 404, "route"));
    route_response_free(&r);
    r = call("POST", "/v1/runs/sum", NULL, NULL);
    CHECK(is_problem(&r, 405, "POST"));
    CHECK(r.header_name && strcmp(r.header_name, "Allow") == 0 && strstr(r.header_value, "DELETE"));
    route_response_free(&r);

    segloss_result_free(want);
    segloss_stats_free(merged);
    fixture_eval_free(&a);
    fixture_eval_free(&b);
}

static void test_history_json_csv_paging(void)
{
    for (int64_t step = 0; step < 5; step++)
        CHECK(fixture_record(st, ctx, 100 + (uint64_t)step, 3, "hist", NULL, step, NULL) == 0);
    CHECK(fixture_record(st, ctx, FIXTURE_ALL_IGNORED, 3, "hist", NULL, 9, NULL) == 0);

    const char *all[] = {NULL};
    route_response r = call("GET", "/v1/runs/hist/history", all, NULL);
    CHECK_EQ_INT(r.status, 200);
    cJSON *j = body_json(&r);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "metrics")),
                 6 * STORE_HISTORY_KEY_COUNT);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "next_page_token")));
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "metrics"), 0);
    CHECK(p0 && strcmp(cJSON_GetObjectItem(p0, "key")->valuestring, "loss.ce") == 0);
    CHECK(p0 && cJSON_IsNumber(cJSON_GetObjectItem(p0, "value")) &&
          cJSON_GetObjectItem(p0, "step")->valueint == 0 &&
          cJSON_IsNumber(cJSON_GetObjectItem(p0, "timestamp")));
    cJSON_Delete(j);
    route_response_free(&r);

    /* loss.total two at a time: 3 pages, steps in order */
    int64_t steps[16];
    size_t nsteps = 0;
    char token[128] = "";
    for (int page = 0; page < 5; page++) {
        const char *q[] = {"key", "loss.total", "max_results", "2", "page_token", token, NULL};
        if (!token[0])
            q[4] = NULL;
        r = call("GET", "/v1/runs/hist/history", q, NULL);
        CHECK_EQ_INT(r.status, 200);
        j = body_json(&r);
        const cJSON *pt;
        cJSON_ArrayForEach (pt, cJSON_GetObjectItem(j, "metrics")) {
            if (nsteps < 16)
                steps[nsteps++] = (int64_t)cJSON_GetObjectItem(pt, "step")->valuedouble;
        }
        const cJSON *tok = cJSON_GetObjectItem(j, "next_page_token");
        int more = cJSON_IsString(tok);
        if (more)
            snprintf(token, sizeof token, "%s", tok->valuestring);
        cJSON_Delete(j);
        route_response_free(&r);
        if (!more)
            break;
    }
    CHECK_EQ_INT(nsteps, 6);
    for (size_t i = 1; i < nsteps; i++)
        CHECK(steps[i] > steps[i - 1]);

    /* since_step and several keys */
    const char *q2[] = {"key", "metrics.miou,loss.ce", "since_step", "3", NULL};
    r = call("GET", "/v1/runs/hist/history", q2, NULL);
    j = body_json(&r);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "metrics")), 6);
    /* the all-ignored step: CE undefined, null */
    const cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "metrics"), 4);
    CHECK(last && cJSON_GetObjectItem(last, "step")->valueint == 9 &&
          strcmp(cJSON_GetObjectItem(last, "key")->valuestring, "loss.ce") == 0 &&
          cJSON_IsNull(cJSON_GetObjectItem(last, "value")));
    cJSON_Delete(j);
    char etag[96];
    strcpy(etag, r.etag);
    route_response_free(&r);
    r = call("GET", "/v1/runs/hist/history", q2, etag);
    CHECK_EQ_INT(r.status, 304);
    route_response_free(&r);
    const char *q2b[] = {"key", "metrics.miou,loss.ce", "since_step", "4", NULL};
    r = call("GET", "/v1/runs/hist/history", q2b, etag);
    CHECK_EQ_INT(r.status, 200);
    route_response_free(&r);

    /* CSV */
    const char *q3[] = {"key", "loss.ce", "format", "csv", "max_results", "4", NULL};
    r = call("GET", "/v1/runs/hist/history", q3, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.content_type && strncmp(r.content_type, "text/csv", 8) == 0);
    CHECK(r.body && strncmp(r.body, "key,value,step,timestamp\nloss.ce,", 33) == 0);
    size_t lines = 0;
    for (size_t i = 0; r.body && i < r.body_len; i++)
        lines += r.body[i] == '\n';
    CHECK_EQ_INT(lines, 5);
    CHECK(r.header_name && strcmp(r.header_name, "X-Next-Page-Token") == 0);
    if (r.header_name) {
        const char *q4[] = {"key", "loss.ce",    "format",       "csv", "max_results",
                            "4",   "page_token", r.header_value, NULL};
        route_response r2 = call("GET", "/v1/runs/hist/history", q4, NULL);
        /* steps 4 and 9; 9's CE is empty */
        CHECK(r2.body && strstr(r2.body, "\nloss.ce,,9,"));
        CHECK(r2.header_name == NULL);
        route_response_free(&r2);
    }
    route_response_free(&r);

    struct {
        const char *key, *value, *want;
    } bad[] = {
        {"key", "loss.nope", "loss.nope"},   {"max_results", "1001", "max_results"},
        {"max_results", "x", "max_results"}, {"since_step", "1.5", "since_step"},
        {"page_token", "abc", "page_token"}, {"format", "xml", "format"},
        {"split", "a/b", "split"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *q[] = {bad[i].key, bad[i].value, NULL};
        r = call("GET", "/v1/runs/hist/history", q, NULL);
        CHECK_MSG(is_problem(&r, 400, bad[i].want), "%s=%s", bad[i].key, bad[i].value);
        route_response_free(&r);
    }
    r = call("GET", "/v1/runs/nohist/history", NULL, NULL);
    CHECK(is_problem(&r, 404, "nohist"));
    route_response_free(&r);
}

static void test_evaluations_and_overlay(void)
{
    fixture_eval f;
    char err[256];
    CHECK(fixture_eval_make(ctx, &f, 200, 2, 4, 16, 12, "ev", NULL, 1) == 0);
    CHECK(store_record(st, &f.ev, err, sizeof err) == 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/evaluations/%s", f.id);
    route_response r = call("GET", path, NULL, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body_len == f.answer_len && memcmp(r.body, f.answer, f.answer_len) == 0);
    CHECK(r.etag[0]);
    char etag[96];
    strcpy(etag, r.etag);
    route_response_free(&r);
    r = call("GET", path, NULL, etag);
    CHECK_EQ_INT(r.status, 304);
    route_response_free(&r);

    snprintf(path, sizeof path, "/v1/evaluations/%s/overlay.png", f.id);
    const char *item1[] = {"item", "1", NULL};
    r = call("GET", path, item1, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.content_type && strcmp(r.content_type, "image/png") == 0);
    CHECK(r.body_len > 8 && memcmp(r.body, "\x89PNG", 4) == 0);
    segloss_limits lim;
    segloss_limits_default(&lim);
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    CHECK(segloss_image_decode_rgb(r.body, r.body_len, &lim, &rgb, &w, &h, err, sizeof err) == 0);
    CHECK(w > 3 * 12 && h > 16);
    free(rgb);
    strcpy(etag, r.etag);
    route_response_free(&r);
    r = call("GET", path, item1, etag);
    CHECK_EQ_INT(r.status, 304);
    route_response_free(&r);
    r = call("GET", path, NULL, etag); /* item 0 is another picture */
    CHECK_EQ_INT(r.status, 200);
    route_response_free(&r);

    const char *item2[] = {"item", "2", NULL};
    r = call("GET", path, item2, NULL);
    CHECK(is_problem(&r, 404, "item 2"));
    route_response_free(&r);
    const char *neg[] = {"item", "-1", NULL};
    r = call("GET", path, neg, NULL);
    CHECK(is_problem(&r, 400, "item"));
    route_response_free(&r);
    r = call("GET", "/v1/evaluations/0123456789abcdef0123456789abcdef", NULL, NULL);
    CHECK(is_problem(&r, 404, "0123456789abcdef"));
    route_response_free(&r);
    r = call("GET", "/v1/evaluations/not-an-id/overlay.png", NULL, NULL);
    CHECK(is_problem(&r, 404, "not-an-id"));
    route_response_free(&r);
    r = call("DELETE", "/v1/evaluations/abc", NULL, NULL);
    CHECK(is_problem(&r, 405, "DELETE"));
    route_response_free(&r);

    /* DELETE the run: its evaluations go too */
    r = call("DELETE", "/v1/runs/ev", NULL, NULL);
    CHECK_EQ_INT(r.status, 204);
    CHECK(r.body == NULL);
    route_response_free(&r);
    r = call("DELETE", "/v1/runs/ev", NULL, NULL);
    CHECK(is_problem(&r, 404, "ev"));
    route_response_free(&r);
    snprintf(path, sizeof path, "/v1/evaluations/%s", f.id);
    r = call("GET", path, NULL, NULL);
    CHECK_EQ_INT(r.status, 404);
    route_response_free(&r);
    fixture_eval_free(&f);
}

/* The daemon's one call after a 200. */
static void test_runs_record(void)
{
    fixture_eval f;
    char err[256];
    CHECK(fixture_eval_make(ctx, &f, 300, 2, 3, 8, 8, "hook", NULL, 0) == 0);
    runs_record_input in = {.id = f.id,
                            .run = "hook",
                            .has_step = true,
                            .step = 3,
                            .loss = &f.params.loss,
                            .result = f.result,
                            .answer = f.answer,
                            .answer_len = f.answer_len,
                            .argmax = f.argmax,
                            .labels = &f.labels_view,
                            .class_names_json = "[\"a\",\"b\",\"c\"]"};
    CHECK_EQ_INT(runs_record(st, &in, err, sizeof err), 200);
    char path[128];
    snprintf(path, sizeof path, "/v1/evaluations/%s/overlay.png", f.id);
    const char *item1[] = {"item", "1", NULL};
    route_response r = call("GET", path, item1, NULL);
    CHECK_EQ_INT(r.status, 200);
    route_response_free(&r);
    r = call("GET", "/v1/runs/hook", NULL, NULL);
    CHECK(r.status == 200 && strstr(r.body, "\"step\":3") && strstr(r.body, "\"c\"]"));
    route_response_free(&r);
    /* the same step with other parameters: 409, nothing stored */
    char id2[IDS_LEN + 1];
    ids_new(id2);
    in.id = id2;
    segloss_params other = f.params.loss;
    other.threshold = 0.7;
    in.loss = &other;
    CHECK_EQ_INT(runs_record(st, &in, err, sizeof err), 409);
    CHECK(strstr(err, "step 3") != NULL);
    in.loss = &f.params.loss;
    in.run = "no spaces";
    CHECK_EQ_INT(runs_record(st, &in, err, sizeof err), 400);
    /* with an image part (the arg-max map is the library's, from segloss_evaluate_with_argmax) */
    char id3[IDS_LEN + 1];
    ids_new(id3);
    uint8_t rgb[8 * 8 * 3];
    memset(rgb, 120, sizeof rgb);
    uint8_t *png = NULL;
    size_t png_len = 0;
    CHECK(segloss_png_encode(rgb, 8, 8, 3, &png, &png_len, err, sizeof err) == 0);
    evaluation_blob images[1] = {{png, png_len}};
    runs_record_input in3 = in;
    in3.id = id3;
    in3.run = "hook";
    in3.loss = &f.params.loss;
    in3.images = images;
    in3.image_count = 1;
    CHECK_EQ_INT(runs_record(st, &in3, err, sizeof err), 200);
    store_overlay_input oi;
    CHECK(store_overlay_input_get(st, id3, 0, &oi, err, sizeof err) == 0);
    CHECK(oi.item.image != NULL);
    if (oi.item.prediction) {
        /* the stored map is the one given */
        uint16_t *map = NULL;
        uint32_t w = 0, h = 0;
        CHECK(overlay_decode_classmap(oi.item.prediction, oi.item.prediction_len, 3, NULL, &map, &w,
                                      &h, err, sizeof err) == 0);
        CHECK(map && w == 8 && h == 8 && memcmp(map, f.argmax, 64 * sizeof *map) == 0);
        free(map);
    }
    store_overlay_input_free(&oi);
    CHECK(store_overlay_input_get(st, id3, 1, &oi, err, sizeof err) == 0);
    CHECK(oi.item.image == NULL); /* one image for a batch of two */
    store_overlay_input_free(&oi);
    free(png);
    /* without overlay inputs the evaluation is kept without items */
    in.run = "hook";
    in.argmax = NULL;
    CHECK_EQ_INT(runs_record(st, &in, err, sizeof err), 200);
    snprintf(path, sizeof path, "/v1/evaluations/%s/overlay.png", id2);
    r = call("GET", path, NULL, NULL);
    CHECK(is_problem(&r, 404, "no overlay"));
    route_response_free(&r);
    CHECK_EQ_INT(runs_record(NULL, &in, err, sizeof err), 503);
    fixture_eval_free(&f);

    /* a big batch keeps overlays for its first STORE_MAX_OVERLAY_ITEMS items */
    fixture_eval big;
    CHECK(fixture_eval_make(ctx, &big, 400, STORE_MAX_OVERLAY_ITEMS + 6, 3, 4, 4, "big", NULL, 0) ==
          0);
    runs_record_input bin = {.id = big.id,
                             .run = "big",
                             .loss = &big.params.loss,
                             .result = big.result,
                             .answer = big.answer,
                             .answer_len = big.answer_len,
                             .argmax = big.argmax,
                             .labels = &big.labels_view};
    CHECK_EQ_INT(runs_record(st, &bin, err, sizeof err), 200);
    snprintf(path, sizeof path, "/v1/evaluations/%s/overlay.png", big.id);
    char last[16], beyond[16];
    snprintf(last, sizeof last, "%d", STORE_MAX_OVERLAY_ITEMS - 1);
    snprintf(beyond, sizeof beyond, "%d", STORE_MAX_OVERLAY_ITEMS);
    const char *ql[] = {"item", last, NULL}, *qb[] = {"item", beyond, NULL};
    r = call("GET", path, ql, NULL);
    CHECK_EQ_INT(r.status, 200);
    route_response_free(&r);
    r = call("GET", path, qb, NULL);
    CHECK(is_problem(&r, 404, "items 0 to 63"));
    route_response_free(&r);
    r = call("GET", "/v1/runs/big", NULL, NULL);
    CHECK(r.body && strstr(r.body, "\"n\":70,\"overlay_items\":64,"));
    route_response_free(&r);
    fixture_eval_free(&big);
}

/* Records a synthetic batch under run "figs" with its per-item counts, as the daemon does. */
static int record_with_items(uint64_t seed, size_t n, int64_t step, fixture_eval *f,
                             uint64_t **counts)
{
    char err[256], detail[256];
    if (fixture_eval_make(ctx, f, seed, n, 3, 8, 8, "figs", NULL, step) != 0)
        return -1;
    *counts = calloc(SEGLOSS_ITEM_COUNTS(n, 3), sizeof **counts);
    segloss_result *again = NULL;
    if (!*counts || segloss_evaluate_items(ctx, &f->logits_view, &f->labels_view, &f->params.loss,
                                           NULL, *counts, &again, detail, sizeof detail) != 0)
        return -1;
    segloss_result_free(again);
    runs_record_input in = {.id = f->id,
                            .run = "figs",
                            .has_step = true,
                            .step = step,
                            .loss = &f->params.loss,
                            .result = f->result,
                            .answer = f->answer,
                            .answer_len = f->answer_len,
                            .argmax = f->argmax,
                            .labels = &f->labels_view,
                            .item_counts = *counts};
    return runs_record(st, &in, err, sizeof err) == 200 ? 0 : -1;
}

/* GET /v1/runs/{run}/items: a step's items across its evaluations, sorted by the chosen
 * figure, each as the library counts it; the latest step by default; ETag; bad parameters. */
static void test_items_route(void)
{
    fixture_eval f[3];
    uint64_t *counts[3] = {0};
    CHECK(record_with_items(700, 3, 1, &f[0], &counts[0]) == 0);
    CHECK(record_with_items(701, 4, 2, &f[1], &counts[1]) == 0);
    CHECK(record_with_items(702, 2, 2, &f[2], &counts[2]) == 0);
    const char *q[] = {"sort", "accuracy", "order", "asc", "limit", "5", NULL};
    route_response r = call("GET", "/v1/runs/figs/items", q, NULL);
    CHECK_EQ_INT(r.status, 200);
    cJSON *j = body_json(&r);
    const cJSON *items = cJSON_GetObjectItem(j, "items");
    CHECK(cJSON_GetObjectItem(j, "step") && cJSON_GetObjectItem(j, "step")->valueint == 2);
    CHECK(cJSON_GetObjectItem(j, "total") && cJSON_GetObjectItem(j, "total")->valueint == 6);
    CHECK_EQ_INT(cJSON_GetArraySize(items), 5);
    double prev = -1;
    const cJSON *it;
    cJSON_ArrayForEach (it, items) {
        const char *id = cJSON_GetObjectItem(it, "evaluation")->valuestring;
        int e = strcmp(id, f[1].id) == 0 ? 1 : strcmp(id, f[2].id) == 0 ? 2 : -1;
        CHECK(e > 0);
        if (e < 0)
            continue;
        size_t i = (size_t)cJSON_GetObjectItem(it, "item")->valueint;
        segloss_item_figures want;
        double iou[3];
        segloss_item_figures_from_counts(counts[e] + i * 9, 3, &want, iou);
        double acc = cJSON_GetObjectItem(it, "accuracy")->valuedouble;
        CHECK(acc == want.accuracy && acc >= prev);
        prev = acc;
        CHECK(cJSON_GetObjectItem(it, "miou")->valuedouble == want.miou);
        CHECK(cJSON_GetObjectItem(it, "mean_dice")->valuedouble == want.mean_dice);
        CHECK((size_t)cJSON_GetObjectItem(it, "present")->valueint == want.present);
        const cJSON *ious = cJSON_GetObjectItem(it, "iou");
        CHECK_EQ_INT(cJSON_GetArraySize(ious), 3);
        for (int k = 0; k < 3 && cJSON_GetArraySize(ious) == 3; k++) {
            const cJSON *v = cJSON_GetArrayItem(ious, k);
            CHECK(isnan(iou[k]) ? cJSON_IsNull(v) : v->valuedouble == iou[k]);
        }
        const cJSON *ov = cJSON_GetObjectItem(it, "overlay");
        CHECK(cJSON_IsString(ov) && strstr(ov->valuestring, id));
    }
    cJSON_Delete(j);
    char etag[96];
    strcpy(etag, r.etag);
    route_response_free(&r);
    r = call("GET", "/v1/runs/figs/items", q, etag);
    CHECK_EQ_INT(r.status, 304);
    route_response_free(&r);
    /* step 1, highest mIoU first */
    const char *q1[] = {"step", "1", "sort", "miou", "order", "desc", NULL};
    r = call("GET", "/v1/runs/figs/items", q1, NULL);
    j = body_json(&r);
    items = cJSON_GetObjectItem(j, "items");
    CHECK(r.status == 200 && cJSON_GetArraySize(items) == 3);
    for (int i = 1; i < cJSON_GetArraySize(items); i++)
        CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(items, i - 1), "miou")->valuedouble >=
              cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), "miou")->valuedouble);
    cJSON_Delete(j);
    route_response_free(&r);
    /* the stored answer has the same figures */
    char path[128];
    snprintf(path, sizeof path, "/v1/evaluations/%s", f[0].id);
    r = call("GET", path, NULL, NULL);
    CHECK(r.status == 200 && r.body && !strstr(r.body, "\"items\"")); /* fixture: no counts */
    route_response_free(&r);
    const char *bad1[] = {"sort", "loss", NULL}, *bad2[] = {"order", "up", NULL},
               *bad3[] = {"limit", "0", NULL};
    r = call("GET", "/v1/runs/figs/items", bad1, NULL);
    CHECK(is_problem(&r, 400, "sort must be"));
    route_response_free(&r);
    r = call("GET", "/v1/runs/figs/items", bad2, NULL);
    CHECK(is_problem(&r, 400, "order must be"));
    route_response_free(&r);
    r = call("GET", "/v1/runs/figs/items", bad3, NULL);
    CHECK(is_problem(&r, 400, "limit"));
    route_response_free(&r);
    const char *bad4[] = {"split", "a/b", NULL};
    r = call("GET", "/v1/runs/figs/items", bad4, NULL);
    CHECK(is_problem(&r, 400, "split must be"));
    route_response_free(&r);
    r = call("GET", "/v1/runs/nosuch/items", NULL, NULL);
    CHECK(is_problem(&r, 404, "nosuch"));
    route_response_free(&r);

    /* per-class history: the finalised aggregate of each step, class by class */
    const char *qc[] = {"key", "per_class.iou.1,per_class.support.2", NULL};
    r = call("GET", "/v1/runs/figs/history", qc, NULL);
    j = body_json(&r);
    const cJSON *m = cJSON_GetObjectItem(j, "metrics");
    CHECK(r.status == 200 && cJSON_GetArraySize(m) == 4);
    store_run_summary sum;
    char err[256];
    CHECK(store_get_run(st, "figs", &sum, err, sizeof err) == 0);
    segloss_result *agg = NULL;
    CHECK(sum.split_count == 1 &&
          store_finalize(sum.splits[0].stats, sum.splits[0].loss_params_json, &agg, err,
                         sizeof err) == 0);
    if (agg && cJSON_GetArraySize(m) == 4) {
        const cJSON *p2 = cJSON_GetArrayItem(m, 2), *p3 = cJSON_GetArrayItem(m, 3);
        CHECK(strcmp(cJSON_GetObjectItem(p2, "key")->valuestring, "per_class.iou.1") == 0);
        CHECK(cJSON_GetObjectItem(p2, "step")->valueint == 2);
        CHECK(cJSON_GetObjectItem(p2, "value")->valuedouble == agg->iou[1]);
        CHECK(cJSON_GetObjectItem(p3, "value")->valuedouble == (double)agg->support[2]);
    }
    segloss_result_free(agg);
    store_run_summary_free(&sum);
    cJSON_Delete(j);
    route_response_free(&r);
    /* one key per page: two pages, the token says where the second starts */
    const char *qp[] = {"key", "per_class.dice.0", "max_results", "1", NULL};
    r = call("GET", "/v1/runs/figs/history", qp, NULL);
    j = body_json(&r);
    const cJSON *tok = cJSON_GetObjectItem(j, "next_page_token");
    CHECK(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(j, "metrics")) == 1 &&
          cJSON_IsString(tok));
    char token[64] = "";
    if (cJSON_IsString(tok))
        snprintf(token, sizeof token, "%s", tok->valuestring);
    cJSON_Delete(j);
    route_response_free(&r);
    const char *qn[] = {"key", "per_class.dice.0", "max_results", "1", "page_token", token, NULL};
    r = call("GET", "/v1/runs/figs/history", qn, NULL);
    j = body_json(&r);
    m = cJSON_GetObjectItem(j, "metrics");
    CHECK(r.status == 200 && cJSON_GetArraySize(m) == 1 &&
          cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "step")->valueint == 2 &&
          cJSON_IsNull(cJSON_GetObjectItem(j, "next_page_token")));
    cJSON_Delete(j);
    route_response_free(&r);
    const char *qb1[] = {"key", "per_class.iou.1,loss.total", NULL},
               *qb2[] = {"key", "per_class.bogus.1", NULL};
    r = call("GET", "/v1/runs/figs/history", qb1, NULL);
    CHECK(is_problem(&r, 400, "per-class key"));
    route_response_free(&r);
    r = call("GET", "/v1/runs/figs/history", qb2, NULL);
    CHECK(is_problem(&r, 400, "per-class key"));
    route_response_free(&r);

    /* a run at an earlier step: its aggregate, confusion matrix included */
    const char *qs[] = {"step", "1", "confusion_matrix", "true", NULL};
    r = call("GET", "/v1/runs/figs", qs, NULL);
    j = body_json(&r);
    const cJSON *val = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "splits"), "val");
    CHECK(r.status == 200 && cJSON_GetObjectItem(val, "step") &&
          cJSON_GetObjectItem(val, "step")->valueint == 1 &&
          cJSON_GetObjectItem(val, "batches")->valueint == 3 &&
          cJSON_GetArraySize(cJSON_GetObjectItem(val, "confusion_matrix")) == 3);
    cJSON_Delete(j);
    route_response_free(&r);
    const char *qs9[] = {"step", "9", NULL};
    r = call("GET", "/v1/runs/figs", qs9, NULL);
    CHECK(r.status == 200 && strstr(r.body, "\"splits\":{}"));
    route_response_free(&r);
    for (int e = 0; e < 3; e++) {
        fixture_eval_free(&f[e]);
        free(counts[e]);
    }
}

/* Whether the table gives GET path to a route of the runs API. */
static bool runs_route(const char *path)
{
    route_match m;
    route_find(routes_table(rt), "GET", path, &m);
    return m.route && (strncmp(m.route->pattern, "/v1/runs", 8) == 0 ||
                       strncmp(m.route->pattern, "/v1/evaluations/", 16) == 0);
}

static void test_routes_and_no_store(void)
{
    CHECK(runs_route("/v1/runs"));
    CHECK(runs_route("/v1/runs/x/history"));
    CHECK(runs_route("/v1/evaluations/abc"));
    CHECK(!runs_route("/v1/evaluate"));
    CHECK(!runs_route("/v1/runsx"));
    store *keep = st;
    st = NULL;
    route_response r = call("GET", "/v1/runs", NULL, NULL);
    CHECK(is_problem(&r, 503, "store"));
    route_response_free(&r);
    st = keep;
}

int main(void)
{
    char dir[64], err[512];
    if (segloss_ctx_new(&ctx, 2, SEGLOSS_KERNEL_AUTO) != 0 || fixture_tmpdir(dir) != 0)
        return 2;
    store_options opt = {.location = dir};
    if (store_open(&opt, &st, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    config_defaults(&cfg);
    cfg.eval_threads = 1;
    routes_options ro = {.store = st};
    if (routes_new(&cfg, &ro, &rt, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    RUN(test_runs_list_and_etag);
    RUN(test_run_summary);
    RUN(test_history_json_csv_paging);
    RUN(test_evaluations_and_overlay);
    RUN(test_runs_record);
    RUN(test_routes_and_no_store);
    RUN(test_items_route);
    routes_close(rt);
    store_close(st);
    fixture_rmdir(dir);
    segloss_ctx_free(ctx);
    return TESTS_DONE();
}
