/*
 * oip_route.c - the /v2 routes (see oip_route.h).
 *
 * The infer body goes into one bufpool mapping, written from `pad` on so that its binary
 * section (after the JSON header of Inference-Header-Content-Length bytes) starts
 * OIP_BODY_ALIGN-aligned and the tensors are used in place. A declared body gets its mapping at
 * once; a chunked one starts small and doubles up to --max-body-mb.
 */
#include "api/oip_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/oip.h"
#include "api/routes.h"
#include "base/metrics.h"

#define JSON_TYPE "application/json"
/* A chunked body starts in a mapping this large and doubles (mremap) up to --max-body-mb. */
#define OIP_ROUTE_CHUNKED_START ((size_t)1 << 20)
/* Pages are faulted in this far ahead of the copy, as multipart.c does for its parts (one
 * MADV_POPULATE_WRITE instead of a fault per page; never far beyond what has arrived, so a
 * lying Content-Length commits no memory). */
#define OIP_ROUTE_PREFAULT_WINDOW ((size_t)8 << 20)

typedef struct oip_upload {
    const routes *routes;
    const route_request *req; /* valid until free */
    unsigned char *buf;
    size_t cap, pad, len, prefaulted;
    const char *header_len; /* Inference-Header-Content-Length, or NULL */
    oip_outcome out;
} oip_upload;

static char *error_body(int status, const char *detail, const char *request_id, size_t *len)
{
    (void)status;
    (void)request_id;
    return oip_error_json(detail, len);
}

const route_errors oip_route_errors = {JSON_TYPE, error_body};

void oip_route_get(void *arg, const route_request *req, route_response *out)
{
    (void)arg;
    route_status st = {.draining = false};
    if (req->host)
        req->host->status(req->host->impl, &st);
    out->content_type = JSON_TYPE;
    if (!oip_get(req->route->pattern, st.draining, &out->status, &out->body, &out->body_len)) {
        out->status = 404;
        out->body = oip_error_json("no such /v2 resource", &out->body_len);
    }
}

/* The headers are in: map one buffer for the whole body. */
static int oip_begin(void *arg, const route_request *req, bool length_known, size_t length,
                     void **state, char *detail, size_t detail_len)
{
    const routes *r = arg;
    oip_upload *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(detail, detail_len, "out of memory for the body; retry later");
        return 503;
    }
    *state = u;
    u->routes = r;
    u->req = req;
    u->header_len = req->header ? req->header(req->header_arg, OIP_HEADER_LENGTH) : NULL;
    /* Where the JSON header ends, the binary tensors begin: put that on an aligned address. A
     * bad value is reported by oip_parse. */
    unsigned long long json_len = 0;
    for (const char *c = u->header_len; c && *c >= '0' && *c <= '9' && json_len < 1u << 30; c++)
        json_len = json_len * 10 + (unsigned long long)(*c - '0');
    u->pad = (OIP_BODY_ALIGN - (size_t)(json_len % OIP_BODY_ALIGN)) % OIP_BODY_ALIGN;
    size_t need = u->pad + (length_known ? length : OIP_ROUTE_CHUNKED_START) + 1;
    u->buf = bufpool_get(r->pool, need, &u->cap, &u->prefaulted);
    if (!u->buf) {
        snprintf(detail, detail_len, "out of memory for the body; retry later");
        return 503;
    }
    return 0;
}

/* Appends a chunk; a chunked body grows the mapping up to the body limit. */
static int oip_feed(void *state, const char *data, size_t size, char *detail, size_t dl)
{
    oip_upload *u = state;
    size_t max = u->routes->cfg->max_body_bytes;
    if (size > max - u->len) {
        snprintf(detail, dl,
                 "the body is over the limit of %zu bytes (--max-body-mb): send a "
                 "smaller batch",
                 max);
        return 413;
    }
    size_t need = u->pad + u->len + size;
    if (need > u->cap) {
        size_t want = u->cap * 2;
        if (want > u->pad + max)
            want = u->pad + max;
        if (want < need)
            want = need;
        void *grown = bufpool_grow(u->buf, &u->cap, want);
        if (!grown) {
            snprintf(detail, dl, "out of memory for the body; retry later");
            return 503;
        }
        u->buf = grown;
    }
    if (need > u->prefaulted) {
        size_t want = need + OIP_ROUTE_PREFAULT_WINDOW;
        bufpool_prefault(u->buf, u->cap, u->prefaulted, want - u->prefaulted);
        u->prefaulted = want < u->cap ? want : u->cap;
    }
    memcpy(u->buf + u->pad + u->len, data, size);
    u->len += size;
    return 0;
}

static void oip_drop(void *state)
{
    oip_upload *u = state;
    if (u->buf)
        bufpool_put(u->routes->pool, u->buf, u->cap, u->prefaulted);
    u->buf = NULL;
}

/* On a worker thread. */
static void oip_run(void *state)
{
    oip_upload *u = state;
    const routes *r = u->routes;
    oip_infer_input in = {
        .body = u->buf + u->pad,
        .len = u->len,
        .header_len = u->header_len,
        .limits = &r->cfg->limits,
        .max_params_bytes = r->cfg->max_params_bytes,
        .id = u->req->evaluation_id,
        .started = u->req->started,
        .hook = r->on_result,
        .hook_arg = r->on_result_arg,
    };
    oip_infer(r->ctx, &in, &u->out);
    if (u->req->host) {
        metrics_evaluation(u->req->host->metrics, (u->out.decode_ms + u->out.compute_ms) * 1e-3);
        if (u->out.status == 200)
            metrics_batch_items(u->req->host->metrics, u->out.items, 0);
    }
    oip_drop(u);
}

static void oip_answer(void *state, route_response *out)
{
    oip_upload *u = state;
    oip_outcome *o = &u->out;
    out->status = o->status;
    if (o->status != 200) {
        snprintf(out->detail, sizeof out->detail, "%s", o->detail);
        return;
    }
    bool binary = o->json_len < o->body_len;
    out->content_type = binary ? OIP_BINARY_TYPE : JSON_TYPE;
    out->body = o->body;
    out->body_len = o->body_len;
    o->body = NULL;
    if (binary) {
        out->header_name = OIP_HEADER_LENGTH;
        snprintf(out->header_value, sizeof out->header_value, "%zu", o->json_len);
    }
}

static void oip_free(void *state)
{
    oip_upload *u = state;
    if (!u)
        return;
    oip_drop(u);
    oip_outcome_clear(&u->out);
    free(u);
}

const route_upload oip_route_infer = {
    oip_begin, oip_feed, oip_drop, NULL, oip_run, oip_answer, oip_free,
};
