/*
 * evaluate_route.c - POST /v1/evaluate (see evaluate_route.h).
 *
 * The query string is checked before the body is read (a bad parameter refuses the upload),
 * and parsed a second time into the intake's own copy, whose item evaluations must use the
 * same parameters. An Idempotency-Key binds the request's fingerprint (request_hash.h) only
 * when a hook records the result.
 */
#include "api/evaluate_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/evaluate_parts.h"
#include "api/result_json.h"
#include "api/routes.h"
#include "base/metrics.h"
#include "base/request_hash.h"
#include "http/multipart.h"
#include "segloss/segloss.h"

#define JSON_TYPE "application/json"

typedef struct evaluate_upload {
    const routes *routes;
    const route_request *req; /* valid until free */
    multipart_parser *parser;
    intake *intake; /* work done while the body arrives, or NULL */
    params_request params;
    evaluation_blob *blobs; /* masks then images, pointing into the parser's parts */
    evaluation_outcome outcome;
    const char *idempotency_key; /* the header, or NULL */
    uint8_t request_hash[REQUEST_HASH_LEN];
} evaluate_upload;

static const char *header(const route_request *req, const char *name)
{
    return req->header ? req->header(req->header_arg, name) : NULL;
}

/* The headers are in: refuse what can be refused before reading the body. */
static int evaluate_begin(void *arg, const route_request *req, bool length_known, size_t length,
                          void **state, char *detail, size_t detail_len)
{
    const routes *r = arg;
    const server_config *cfg = r->cfg;
    evaluate_upload *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(detail, detail_len, "out of memory; retry later");
        return 503;
    }
    *state = u;
    u->routes = r;
    u->req = req;
    params_init(&u->params);
    u->params.max_classes = cfg->limits.max_classes;
    for (size_t i = 0; i < req->query_count; i++) {
        int qs = params_set_query(&u->params, req->query_list[i].key, req->query_list[i].value,
                                  detail, detail_len);
        if (qs)
            return qs;
    }
    u->idempotency_key = header(req, "Idempotency-Key");
    if (u->idempotency_key && !request_key_ok(u->idempotency_key)) {
        snprintf(detail, detail_len,
                 "Idempotency-Key must be 1 to 255 printable ASCII "
                 "characters without spaces (a UUID, say)");
        return 400;
    }
    evaluate_parts_limits limits = {cfg->max_body_bytes, cfg->max_parts, cfg->max_params_bytes,
                                    r->pool};
    int status = evaluate_parts_new(header(req, "Content-Type"), length_known ? length : 0, &limits,
                                    &u->parser, detail, detail_len);
    if (status)
        return status;
    u->intake = intake_new(r->intake, r->on_result != NULL, cfg->max_params_bytes);
    if (u->intake) { /* the same query, parsed again into the intake's own copy */
        char qdetail[ROUTE_DETAIL_MAX];
        params_request *again = intake_params(u->intake);
        again->max_classes = cfg->limits.max_classes;
        for (size_t i = 0; i < req->query_count; i++)
            params_set_query(again, req->query_list[i].key, req->query_list[i].value, qdetail,
                             sizeof qdetail);
    }
    return 0;
}

static int evaluate_feed(void *state, const char *data, size_t size, char *detail,
                         size_t detail_len)
{
    evaluate_upload *u = state;
    int status = evaluate_parts_feed(u->parser, data, size, detail, detail_len);
    if (!status)
        intake_progress(u->intake, u->parser);
    return status;
}

/* Gives back the parts and the intake that reads them on its worker: the intake first (a step
 * in progress waited for), then the parser whose buffers it reads. */
static void release_parts(evaluate_upload *u)
{
    intake_release(u->intake);
    u->intake = NULL;
    multipart_free(u->parser);
    u->parser = NULL;
}

static void evaluate_drop(void *state)
{
    release_parts(state);
}

/* The body is complete: check it, then it goes to a worker. */
static int evaluate_end(void *state, char *detail, size_t detail_len)
{
    evaluate_upload *u = state;
    const multipart_part *logits = multipart_first(u->parser, EVALUATE_PART_LOGITS);
    bool safetensors =
        logits && segloss_detect_format(logits->data, logits->len) == SEGLOSS_FORMAT_SAFETENSORS;
    int status = evaluate_parts_finish(u->parser, safetensors, detail, detail_len);
    if (status)
        return status;
    const multipart_part *params = multipart_first(u->parser, EVALUATE_PART_PARAMS);
    if (params) {
        status = params_set_json(&u->params, (const char *)params->data, params->len,
                                 u->routes->cfg->max_params_bytes, detail, detail_len);
        if (status)
            return status;
    }
    /* Masks first, then images, each in body order. */
    size_t masks = multipart_count_kind(u->parser, EVALUATE_PART_MASK);
    size_t images = multipart_count_kind(u->parser, EVALUATE_PART_IMAGE);
    u->blobs = calloc(masks + images + 1, sizeof *u->blobs);
    if (!u->blobs) {
        snprintf(detail, detail_len, "out of memory; retry later");
        return 503;
    }
    evaluate_parts_blobs(u->parser, EVALUATE_PART_MASK, u->blobs, masks);
    evaluate_parts_blobs(u->parser, EVALUATE_PART_IMAGE, u->blobs + masks, images);
    return 0;
}

/* The fingerprint an Idempotency-Key is bound to (request_hash.h): the query parameters, then
 * each part's kind and bytes in body order. -1 when out of memory. */
static int hash_upload(evaluate_upload *u)
{
    request_hash *h = request_hash_new();
    if (!h)
        return -1;
    const route_request *req = u->req;
    for (size_t i = 0; i < req->query_count; i++) { /* decoded once, as params read them */
        const char *k = req->query_list[i].key, *v = req->query_list[i].value;
        request_hash_add(h, k, strlen(k));
        request_hash_add(h, v ? v : "", v ? strlen(v) : 0);
    }
    for (size_t i = 0; i < multipart_count(u->parser); i++) {
        const multipart_part *p = multipart_get(u->parser, i);
        uint8_t kind = (uint8_t)p->kind;
        request_hash_add(h, &kind, 1);
        request_hash_add(h, p->data, p->len);
    }
    request_hash_finish(h, u->request_hash);
    return 0;
}

/* On a worker thread. */
static void evaluate_run(void *state)
{
    evaluate_upload *u = state;
    const routes *r = u->routes;
    size_t masks = multipart_count_kind(u->parser, EVALUATE_PART_MASK);
    size_t images = multipart_count_kind(u->parser, EVALUATE_PART_IMAGE);
    const multipart_part *logits = multipart_first(u->parser, EVALUATE_PART_LOGITS);
    evaluation_request er = {
        .logits = {logits->data, logits->len},
        .masks = u->blobs,
        .mask_count = masks,
        .images = u->blobs + masks,
        .image_count = images,
        .params = &u->params,
        .id = u->req->evaluation_id,
        .started = u->req->started,
    };
    er.hook = r->on_result;
    er.hook_arg = r->on_result_arg;
    bool keyed = u->idempotency_key && u->params.run && er.hook;
    if (keyed && hash_upload(u) == 0) {
        er.idempotency_key = u->idempotency_key;
        er.request_hash = u->request_hash;
    }
    if (keyed && !er.idempotency_key) { /* never record a keyed request without its key */
        u->outcome.status = 503;
        snprintf(u->outcome.detail, sizeof u->outcome.detail, "out of memory; retry later");
    } else {
        er.prepared = intake_close(u->intake);
        evaluation_run(r->ctx, &r->cfg->limits, &er, &u->outcome);
        evaluation_answer_json(&u->outcome, &er);
    }
    if (u->req->host) {
        metrics_evaluation(u->req->host->metrics,
                           (u->outcome.decode_ms + u->outcome.compute_ms) * 1e-3);
        if (u->outcome.status == 200 && u->outcome.result)
            metrics_batch_items(u->req->host->metrics, u->outcome.result->n,
                                u->outcome.items_during_upload);
    }
    /* The parts are no longer needed: give their memory back before the answer is sent. */
    release_parts(u);
}

static void evaluate_answer(void *state, route_response *out)
{
    evaluate_upload *u = state;
    evaluation_outcome *o = &u->outcome;
    out->status = o->status;
    if (o->status != 200) {
        snprintf(out->detail, sizeof out->detail, "%s", o->detail);
        return;
    }
    out->content_type = JSON_TYPE;
    out->body = o->body;
    out->body_len = o->body_len;
    o->body = NULL;
}

static void evaluate_free(void *state)
{
    evaluate_upload *u = state;
    if (!u)
        return;
    release_parts(u);
    params_free(&u->params);
    evaluation_outcome_clear(&u->outcome);
    free(u->blobs);
    free(u);
}

const route_upload evaluate_route = {
    evaluate_begin, evaluate_feed,   evaluate_drop, evaluate_end,
    evaluate_run,   evaluate_answer, evaluate_free,
};
