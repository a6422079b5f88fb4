/*
 * http.c - request life cycle, framing, the memory budget and body intake on libmicrohttpd
 * 0.9.75, dispatching through the route table (see http.h, route.h).
 *
 * A request goes through phases. An upload route's body is RECEIVING: MHD hands it over in
 * chunks, each fed to the route (route_upload.feed). At the end of the body the request is
 * QUEUED: the connection is suspended and the route's job handed to a worker. The worker marks
 * the request DONE and resumes the connection; MHD calls us again and the route's answer is
 * sent. A route without a body is answered once the request is complete (HANDLER).
 *
 * MHD 0.9.75 cannot answer while a body is still arriving (MHD_queue_response fails then). So an
 * error found mid-body (a broken part, the upload deadline passed) is remembered, the rest of
 * the body is read and dropped (at most HTTP_MAX_DISCARD_BYTES, within HTTP_DISCARD_GRACE_S),
 * and the problem is answered when the body ends; a client that keeps sending past that is
 * disconnected. A Content-Length over the limit is answered before any of the body is read.
 * Other errors known from the headers (wrong Content-Type, bad query parameters, shutting down)
 * are too when the client waits for "100 Continue" or the body is larger than
 * HTTP_MAX_DISCARD_BYTES; otherwise the body is read and dropped first (refuse_upload), because
 * a client still sending when the server answers and closes gets a reset that can destroy the
 * answer before it is read (seen with curl posting a few KiB).
 *
 * Before any of that, every request passes request_head: the framing rules MHD does not enforce
 * (http_head.h; a failure is answered with Connection: close), then the path and query decoded
 * once. Bodies held at once are bounded by --max-inflight-mb: a declared body takes its share
 * before it is read (503 at once when it does not fit, whatever the client waits for), a
 * chunked one as it grows, and on_completed gives it back however the request ended.
 *
 * Every answer leaves through send_answer, which adds the headers all answers share.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/detail.h"
#include "base/ids.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/workqueue.h"
#include "http/auth.h"
#include "http/http_head.h"

/* After an error found mid-body, bytes still read and dropped so the client can get the
 * answer; beyond this the connection is closed instead. */
#define HTTP_MAX_DISCARD_BYTES ((size_t)64 << 20)
/* ... and seconds past the upload deadline that dropping may take. */
#define HTTP_DISCARD_GRACE_S 10.0
/* MHD's per-connection buffer: larger chunks mean fewer handler calls on big uploads. */
#define HTTP_CONNECTION_MEMORY ((size_t)256 << 10)
/* Seconds a client should wait before retrying after 503. */
#define HTTP_RETRY_AFTER_S 1
/* How often wait_idle looks at the in-flight count. */
#define HTTP_IDLE_POLL_NS 20000000L
/* A request path as kept for logs; longer paths are truncated there. */
#define HTTP_MAX_PATH_LOG 256
/* Framing headers (Content-Length, Transfer-Encoding, Host) looked at per request; a request
 * repeating them more often than this is refused as malformed, not searched further. */
#define HTTP_MAX_FRAMING_HEADERS 16

/* Every answer: browsers must not guess another type (a JSON detail read as HTML). */
#define HTTP_HEADER_NOSNIFF "X-Content-Type-Options"
/* HTML answers (the dashboard): its own scripts, styles and fetches only, never framed. */
#define HTTP_PAGE_CSP                                                                              \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"

typedef enum request_phase {
    PHASE_RECEIVING, /* an upload's body is arriving */
    PHASE_QUEUED,    /* with a worker; the connection is suspended */
    PHASE_DONE,      /* the worker's outcome is ready to send */
    PHASE_HANDLER,   /* a route without a body, answered once the request is complete (keeps
                        keep-alive) */
    PHASE_ANSWERED
} request_phase;

typedef struct request {
    struct http_server *server;
    struct MHD_Connection *conn;
    const route_entry *route; /* NULL until routed */
    size_t metrics_route;     /* into server->labels; label_count: unmatched */
    const char *url;          /* the decoded path (path_buf) */
    char *path_buf;           /* the target's path, percent-decoded once; malloc'ed */
    route_query_param *query; /* the query, percent-decoded once; malloc'ed */
    char **query_mem;         /* each parameter's allocation (its key) */
    size_t query_count, query_cap;
    route_request in; /* what the route sees (lives as long as the request) */
    char segment[ROUTE_MAX_SEGMENT];
    void *upload;          /* the upload route's state */
    bool close_connection; /* the answer carries Connection: close (framing errors) */
    char id[IDS_MAX_CLIENT_LEN + 1];
    char eval_id[IDS_LEN + 1];
    char method[16];
    char path[HTTP_MAX_PATH_LOG];
    char remote[INET6_ADDRSTRLEN];
    double started;
    request_phase phase;
    size_t body_bytes, discarded;
    bool length_known; /* Content-Length given (else chunked) */
    size_t reserved;   /* bytes of the memory budget held (--max-inflight-mb) */
    int error_status;  /* a problem found mid-body, answered when the body ends */
    char error_detail[ROUTE_DETAIL_MAX];
    metrics_reject error_reason;
    int status; /* answered status, 0 when none was sent */
    size_t bytes_out;
    /* The problem detail for the log line, copied: callers pass details in buffers of their
     * own stack frames, long gone when on_completed writes the line. */
    char log_detail[ROUTE_DETAIL_MAX];
    const char *challenge; /* WWW-Authenticate of a 401/403 (static), or NULL */
} request;

struct http_server {
    const server_config *cfg;
    struct MHD_Daemon *daemon;
    workqueue *queue;
    metrics *metrics;
    route_host host; /* lent to every route */
    atomic_int draining;
    atomic_long in_flight;
    atomic_size_t inflight_bytes; /* the memory budget in use: bodies held (request.reserved) */
    const route_table *routes;
    auth *auth;               /* tokens; NULL when none are configured */
    char *tls_cert, *tls_key; /* PEM text for MHD (NUL-terminated), NULL without TLS */
    const char **labels;      /* the metrics route labels, each once, in table order */
    size_t label_count;
    size_t *route_label; /* per table entry: its index into labels, or label_count */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The metrics label of a route (NULL: unmatched). */
static size_t label_of(const http_server *s, const route_entry *e)
{
    return e ? s->route_label[e - s->routes->entries] : s->label_count;
}

/* ---- answers ------------------------------------------------------------------------- */

/* Whether a path needs a token (auth.h), the pages the route table marks included. */
static bool path_protected(const http_server *s, const char *path, const route_entry *path_route)
{
    return auth_path_protected(s->routes->auth, path) ||
           (path_route && (path_route->flags & ROUTE_PAGE));
}

/* Sends out (its body taken over) with the headers every answer carries. */
static enum MHD_Result send_answer(request *req, route_response *out)
{
    http_server *s = req->server;
    enum MHD_ResponseMemoryMode mode = out->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT;
    size_t len = out->body ? out->body_len : 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, out->body ? (void *)out->body : (void *)"", mode);
    if (!r) {
        route_response_free(out);
        return MHD_NO;
    }
    out->body = NULL; /* MHD's now */
    if (out->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, out->content_type);
    MHD_add_response_header(r, "X-Request-Id", req->id);
    /* With tokens on, what a token protects must not be kept in shared caches, and a
     * revalidated answer is kept by the browser only for its user. */
    const char *cache = out->cache_control ? out->cache_control : "no-store";
    if (s->auth && strcmp(cache, "no-cache") == 0 && req->url) {
        route_match m;
        route_find(s->routes, req->method, req->url, &m);
        if (path_protected(s, req->url, m.path_route))
            cache = "private, no-cache";
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
    MHD_add_response_header(r, HTTP_HEADER_NOSNIFF, "nosniff");
    if (out->content_type && strncmp(out->content_type, "text/html", 9) == 0) {
        MHD_add_response_header(r, "Content-Security-Policy", HTTP_PAGE_CSP);
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
    }
    if (out->etag[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, out->etag);
    if (out->header_name && out->header_value[0])
        MHD_add_response_header(r, out->header_name, out->header_value);
    if (req->challenge)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, req->challenge);
    if (out->status == 503) { /* when to come back */
        char secs[16];
        snprintf(secs, sizeof secs, "%d", HTTP_RETRY_AFTER_S);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    if (atomic_load(&s->draining) || req->close_connection)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)out->status, r);
    MHD_destroy_response(r);
    if (rc == MHD_YES) {
        req->status = out->status;
        req->bytes_out = len;
        req->phase = PHASE_ANSWERED;
        if (out->detail[0])
            snprintf(req->log_detail, sizeof req->log_detail, "%s", out->detail);
    }
    return rc;
}

/* An error of the server's own (framing, tokens, limits, routing), written in the format of
 * the path's routes (route_errors_for) and counted under reason. */
static enum MHD_Result respond_problem(request *req, int status, const char *detail,
                                       metrics_reject reason)
{
    http_server *s = req->server;
    metrics_rejected(s->metrics, reason);
    /* The decoded path when the head was read (an absolute-form target included), else the
     * raw one. */
    const char *path = req->url ? req->url : req->path;
    route_response out;
    memset(&out, 0, sizeof out);
    route_error(route_errors_for(s->routes, path), status, detail ? detail : "", req->id, &out);
    return send_answer(req, &out);
}

/* A route's answer: an error without a body is written in the route's format; errors are
 * counted as refused requests unless the route is a probe. */
static enum MHD_Result answer_route(request *req, route_response *out)
{
    http_server *s = req->server;
    const route_errors *errs = req->route->errors ? req->route->errors : &route_problem_errors;
    if (out->status < 100 || out->status > 599) {
        route_response_free(out);
        memset(out, 0, sizeof *out);
        route_error(errs, 500, "internal error: a route gave no status", req->id, out);
        metrics_rejected(s->metrics, METRICS_REJECT_INTERNAL);
        return send_answer(req, out);
    }
    if (out->status >= 400 && !out->body)
        route_error(errs, out->status, out->detail, req->id, out);
    if (out->status >= 400 && !(req->route->flags & ROUTE_PROBE))
        metrics_rejected(s->metrics, metrics_reason_for_status(out->status));
    return send_answer(req, out);
}

/* ---- the memory budget for bodies (--max-inflight-mb) ---------------------------------- */

/* Takes n more bytes of the budget for req; false (nothing taken) when they do not fit. */
static bool budget_take(request *req, size_t n)
{
    http_server *s = req->server;
    size_t budget = s->cfg->max_inflight_bytes;
    size_t used = atomic_load(&s->inflight_bytes);
    do {
        if (n > budget || used > budget - n)
            return false;
    } while (!atomic_compare_exchange_weak(&s->inflight_bytes, &used, used + n));
    req->reserved += n;
    return true;
}

/* Gives back everything req holds (every end of a request: answered, failed, aborted). */
static void budget_release(request *req)
{
    if (req->reserved)
        atomic_fetch_sub(&req->server->inflight_bytes, req->reserved);
    req->reserved = 0;
}

/* Remembers an error found mid-body; the first one wins. */
static void request_fail(request *req, int status, metrics_reject reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void request_fail(request *req, int status, metrics_reject reason, const char *fmt, ...)
{
    if (req->error_status)
        return;
    va_list ap;
    va_start(ap, fmt);
    req->error_status = detail_vfail(req->error_detail, sizeof req->error_detail, status, fmt, ap);
    va_end(ap);
    req->error_reason = reason;
}

/* ---- uploads ------------------------------------------------------------------------ */

/* Strict decimal Content-Length; false when absent. */
static bool content_length(struct MHD_Connection *conn, unsigned long long *out)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!v || !*v)
        return false;
    unsigned long long n = 0;
    for (const char *c = v; *c; c++) {
        if (*c < '0' || *c > '9' || n > (ULLONG_MAX - 9) / 10) {
            *out = ULLONG_MAX;
            return true;
        }
        n = n * 10 + (unsigned long long)(*c - '0');
    }
    *out = n;
    return true;
}

/* Refuses an upload for a reason known from its headers (see the top of the file): at once
 * when the client waits for 100 Continue or the body is too large to drop, else after the
 * body has been read and dropped. */
static enum MHD_Result refuse_upload(request *req, int status, const char *detail,
                                     metrics_reject reason)
{
    unsigned long long length = 0;
    const char *expect =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    if ((expect && strcasecmp(expect, "100-continue") == 0) ||
        !content_length(req->conn, &length) || length > HTTP_MAX_DISCARD_BYTES)
        return respond_problem(req, status, detail, reason);
    request_fail(req, status, reason, "%s", detail);
    budget_release(req); /* the body is dropped as it arrives, not held */
    return MHD_YES;
}

/* What refuses any upload from its headers: shutting down, or a declared Content-Length over
 * the limit. True when the request is answered, with what MHD gets in *result; else *known and
 * *length hold the declared length. */
static bool refuse_any_upload(request *req, bool *known, unsigned long long *length,
                              enum MHD_Result *result)
{
    const server_config *cfg = req->server->cfg;
    if (atomic_load(&req->server->draining)) {
        *result = refuse_upload(req, 503,
                                "shutting down: not taking new evaluations; retry against "
                                "another replica",
                                METRICS_REJECT_DRAINING);
        return true;
    }
    *known = content_length(req->conn, length);
    if (*known && *length > cfg->max_body_bytes) {
        char detail[ROUTE_DETAIL_MAX];
        snprintf(detail, sizeof detail,
                 "the body is %llu bytes; the limit is %zu bytes (%zu MiB, --max-body-mb): "
                 "send a smaller batch",
                 *length, cfg->max_body_bytes, cfg->max_body_mb);
        *result = respond_problem(req, 413, detail, METRICS_REJECT_BODY_TOO_LARGE);
        return true;
    }
    req->length_known = *known;
    if (*known && *length > cfg->max_inflight_bytes) {
        char detail[ROUTE_DETAIL_MAX];
        snprintf(detail, sizeof detail,
                 "the body is %llu bytes; this server holds at most %zu bytes of request "
                 "bodies at once (%zu MiB, --max-inflight-mb): send a smaller batch",
                 *length, cfg->max_inflight_bytes, cfg->max_inflight_mb);
        *result = respond_problem(req, 413, detail, METRICS_REJECT_BODY_TOO_LARGE);
        return true;
    }
    /* Refused before any of the body is read, whatever the client waits for: reading it
     * would be what the budget is there to prevent. */
    if (*known && !budget_take(req, (size_t)*length)) {
        char detail[ROUTE_DETAIL_MAX];
        snprintf(detail, sizeof detail,
                 "busy: the bodies being received and evaluated fill the memory budget "
                 "(--max-inflight-mb %zu); retry in %d s",
                 cfg->max_inflight_mb, HTTP_RETRY_AFTER_S);
        req->close_connection = true;
        *result = respond_problem(req, 503, detail, METRICS_REJECT_QUEUE_FULL);
        return true;
    }
    return false;
}

/* A body with a Content-Encoding other than identity is refused (415), on every route: the
 * routes read the bytes as sent. True when refused, with what MHD gets in *result. */
static bool refuse_content_encoding(request *req, enum MHD_Result *result)
{
    const char *enc =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (!enc || strcasecmp(enc, "identity") == 0)
        return false;
    char detail[ROUTE_DETAIL_MAX];
    snprintf(detail, sizeof detail,
             "Content-Encoding %.32s is not supported; send the body uncompressed", enc);
    *result = refuse_upload(req, 415, detail, METRICS_REJECT_UNSUPPORTED);
    return true;
}

/* The headers of an upload are in: refuse what can be refused before reading the body. */
static enum MHD_Result upload_begin(request *req)
{
    unsigned long long length = 0;
    bool known = false;
    enum MHD_Result refused;
    if (refuse_any_upload(req, &known, &length, &refused) || refuse_content_encoding(req, &refused))
        return refused;
    char detail[ROUTE_DETAIL_MAX];
    int status =
        req->route->upload->begin(req->server->routes->arg, &req->in, known,
                                  known ? (size_t)length : 0, &req->upload, detail, sizeof detail);
    if (status)
        return refuse_upload(req, status, detail, metrics_reason_for_status(status));
    return MHD_YES;
}

/* Frees what a failed upload holds of its body and gives its budget back; the rest of the body
 * is read and dropped. */
static void request_drop_body(request *req)
{
    if (req->upload)
        req->route->upload->drop(req->upload);
    budget_release(req);
}

/* One chunk of the body. */
static enum MHD_Result upload_chunk(request *req, const char *data, size_t size)
{
    const server_config *cfg = req->server->cfg;
    double elapsed = now_s() - req->started;
    req->body_bytes += size;
    if (elapsed > (double)cfg->upload_timeout_s)
        request_fail(req, 408, METRICS_REJECT_UPLOAD_TIMEOUT,
                     "the upload took longer than %u s (--upload-timeout); upload faster or "
                     "send smaller batches",
                     cfg->upload_timeout_s);
    if (req->error_status) {
        req->discarded += size;
        if (req->discarded > HTTP_MAX_DISCARD_BYTES ||
            elapsed > (double)cfg->upload_timeout_s + HTTP_DISCARD_GRACE_S)
            return MHD_NO; /* the client does not stop: close the connection */
        return MHD_YES;
    }
    if (!req->length_known && !budget_take(req, size)) {
        /* A chunked body outgrew the budget: what it holds is given back at once. */
        size_t budget = req->server->cfg->max_inflight_bytes;
        if (req->body_bytes > budget)
            request_fail(req, 413, METRICS_REJECT_BODY_TOO_LARGE,
                         "the chunked body is over %zu bytes, all this server holds of request "
                         "bodies at once (--max-inflight-mb): send a smaller batch",
                         budget);
        else
            request_fail(req, 503, METRICS_REJECT_QUEUE_FULL,
                         "busy: the bodies being received and evaluated fill the memory budget "
                         "(--max-inflight-mb %zu); retry in %d s",
                         req->server->cfg->max_inflight_mb, HTTP_RETRY_AFTER_S);
        request_drop_body(req);
        req->discarded += size;
        return MHD_YES;
    }
    char detail[ROUTE_DETAIL_MAX];
    int status = req->route->upload->feed(req->upload, data, size, detail, sizeof detail);
    if (status)
        request_fail(req, status, metrics_reason_for_status(status), "%s", detail);
    return MHD_YES;
}

/* Runs on a worker thread. After MHD_resume_connection the request may be freed at any time by
 * MHD's threads, so resuming is the last thing done here. */
static void upload_job(void *arg)
{
    request *req = arg;
    req->route->upload->run(req->upload);
    req->phase = PHASE_DONE;
    MHD_resume_connection(req->conn);
}

/* The body is complete: check it, then hand the job to a worker with a new evaluation id, the
 * connection suspended before submitting (the worker may finish and resume at once); a full
 * queue is a 503, answered once the connection is resumed. */
static enum MHD_Result upload_end(request *req)
{
    http_server *s = req->server;
    if (req->error_status)
        return respond_problem(req, req->error_status, req->error_detail, req->error_reason);
    char detail[ROUTE_DETAIL_MAX];
    int status =
        req->route->upload->end ? req->route->upload->end(req->upload, detail, sizeof detail) : 0;
    if (status)
        return respond_problem(req, status, detail, metrics_reason_for_status(status));
    ids_new(req->eval_id);
    req->phase = PHASE_QUEUED;
    MHD_suspend_connection(req->conn);
    if (workqueue_submit(s->queue, upload_job, req) != 0) {
        req->error_status = 503;
        snprintf(req->error_detail, sizeof req->error_detail,
                 "overloaded: %u evaluations are already waiting; retry in %d s",
                 s->cfg->queue_depth, HTTP_RETRY_AFTER_S);
        req->error_reason = METRICS_REJECT_QUEUE_FULL;
        req->phase = PHASE_DONE;
        MHD_resume_connection(req->conn);
    }
    return MHD_YES;
}

static enum MHD_Result upload_answer(request *req)
{
    if (req->error_status) /* the queue was full */
        return respond_problem(req, req->error_status, req->error_detail, req->error_reason);
    route_response out;
    memset(&out, 0, sizeof out);
    req->route->upload->answer(req->upload, &out);
    return answer_route(req, &out);
}

/* A route without a body. */
static enum MHD_Result answer_handler(request *req)
{
    route_response out;
    memset(&out, 0, sizeof out);
    req->route->handle(req->server->routes->arg, &req->in, &out);
    return answer_route(req, &out);
}

/* ---- MHD callbacks ------------------------------------------------------------------- */

static request *request_new(http_server *s, struct MHD_Connection *conn, const char *method,
                            const char *url)
{
    request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->server = s;
    req->conn = conn;
    req->started = now_s();
    req->metrics_route = s->label_count;
    snprintf(req->method, sizeof req->method, "%s", method);
    snprintf(req->path, sizeof req->path, "%s", url);
    req->url = url;
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (ids_client_ok(rid))
        snprintf(req->id, sizeof req->id, "%s", rid);
    else
        ids_new(req->id);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                      req->remote, sizeof req->remote);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      req->remote, sizeof req->remote);
    }
    atomic_fetch_add(&s->in_flight, 1);
    metrics_request_started(s->metrics);
    return req;
}

/* MHD's unescaper, replaced: the path and the query reach the handler as sent, and
 * request_head decodes each exactly once (http_percent_decode), refusing a NUL. */
static size_t unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

typedef struct framing_walk {
    http_header headers[HTTP_MAX_FRAMING_HEADERS];
    size_t count;
    bool overflow;
} framing_walk;

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    framing_walk *w = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0 &&
        strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) != 0 &&
        strcasecmp(key, MHD_HTTP_HEADER_HOST) != 0)
        return MHD_YES;
    if (w->count == HTTP_MAX_FRAMING_HEADERS) {
        w->overflow = true;
        return MHD_NO;
    }
    w->headers[w->count++] = (http_header){key, value};
    return MHD_YES;
}

typedef struct query_walk_decode {
    request *req;
    http_decode_result failed;
    const char *failed_key; /* as sent */
} query_walk_decode;

/* Decodes one query parameter into req->query. */
static enum MHD_Result query_decode_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    (void)kind;
    query_walk_decode *w = cls;
    request *req = w->req;
    if (req->query_count == req->query_cap) {
        size_t cap = req->query_cap ? 2 * req->query_cap : 8;
        route_query_param *grown = realloc(req->query, cap * sizeof *grown);
        if (grown)
            req->query = grown;
        char **mem = grown ? realloc(req->query_mem, cap * sizeof *mem) : NULL;
        if (!mem)
            return MHD_NO;
        req->query_mem = mem;
        req->query_cap = cap;
    }
    size_t key_len = strlen(key), value_len = value ? strlen(value) : 0;
    char *key_out = malloc(key_len + 1 + (value ? value_len + 1 : 0));
    if (!key_out)
        return MHD_NO;
    char *value_out = value ? key_out + key_len + 1 : NULL;
    size_t n;
    http_decode_result rc = http_percent_decode(key, key_len, key_out, &n);
    if (rc == HTTP_DECODE_OK && value)
        rc = http_percent_decode(value, value_len, value_out, &n);
    if (rc != HTTP_DECODE_OK) {
        free(key_out);
        w->failed = rc;
        w->failed_key = key;
        return MHD_NO;
    }
    req->query_mem[req->query_count] = key_out;
    req->query[req->query_count++] = (route_query_param){key_out, value_out};
    return MHD_YES;
}

/*
 * What every request passes before authentication or a route sees it: the framing headers
 * (http_head_check; a failure also closes the connection), then the target's path (origin- or
 * absolute-form) and the query, each percent-decoded once. Returns 0, or the status to answer
 * with a message in detail.
 */
static int request_head(request *req, const char *version, const char *url, char *detail,
                        size_t detail_len)
{
    framing_walk fw = {.count = 0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, framing_header, &fw);
    int status =
        fw.overflow ? 400 : http_head_check(version, fw.headers, fw.count, detail, detail_len);
    if (fw.overflow)
        snprintf(detail, detail_len,
                 "more than %d Content-Length, Transfer-Encoding and Host "
                 "headers",
                 HTTP_MAX_FRAMING_HEADERS);
    if (status) {
        req->close_connection = true;
        return status;
    }
    const char *path = http_target_path(url);
    size_t len = strlen(path), n;
    req->path_buf = malloc(len + 1);
    if (!req->path_buf) {
        snprintf(detail, detail_len, "out of memory; retry later");
        return 503;
    }
    http_decode_result rc = http_percent_decode(path, len, req->path_buf, &n);
    if (rc != HTTP_DECODE_OK) {
        req->path_buf[0] = '\0';
        snprintf(detail, detail_len,
                 rc == HTTP_DECODE_NUL ? "the path holds a NUL (%%00), which no name may hold"
                                       : "malformed percent-escape in the path: '%%' must be "
                                         "followed by two hex digits");
        return 400;
    }
    req->url = req->path_buf;
    query_walk_decode qw = {.req = req, .failed = HTTP_DECODE_OK};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_decode_one, &qw);
    if (qw.failed != HTTP_DECODE_OK) {
        snprintf(detail, detail_len,
                 qw.failed == HTTP_DECODE_NUL
                     ? "the query parameter \"%.64s\" holds a NUL (%%00), which no value may hold"
                     : "malformed percent-escape in the query parameter \"%.64s\"",
                 qw.failed_key);
        return 400;
    }
    return 0;
}

/* The decoded value of a query parameter (the first of that name), or NULL. */
static const char *request_query(void *arg, const char *key)
{
    const request *req = arg;
    for (size_t i = 0; i < req->query_count; i++)
        if (strcmp(req->query[i].key, key) == 0)
            return req->query[i].value;
    return NULL;
}

static const char *request_header(void *arg, const char *name)
{
    const request *req = arg;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* The request as its route sees it. */
static void request_route(request *req, const route_match *m)
{
    req->route = m->route;
    memcpy(req->segment, m->segment ? m->segment : "", m->segment_len);
    req->segment[m->segment_len] = '\0';
    req->in = (route_request){
        .method = req->method,
        .path = req->url,
        .route = m->route,
        .segment = req->segment,
        .query = request_query,
        .query_arg = req,
        .query_list = req->query,
        .query_count = req->query_count,
        .header = request_header,
        .header_arg = req,
        .if_none_match = request_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH),
        .request_id = req->id,
        .evaluation_id = req->eval_id,
        .started = req->started,
        .limits = &req->server->cfg->limits,
        .host = &req->server->host,
    };
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_server *s = cls;
    request *req = *con_cls;
    if (!req) {
        req = request_new(s, conn, method, url);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        char detail[ROUTE_DETAIL_MAX];
        int head_status = request_head(req, version, url, detail, sizeof detail);
        if (head_status)
            return respond_problem(req, head_status, detail,
                                   metrics_reason_for_status(head_status));
        url = req->url;
        route_match m;
        route_find(s->routes, method, url, &m);
        /* counted under the path's route whatever the method (a 405, a refused token) */
        req->metrics_route = label_of(s, m.route ? m.route : m.path_route);
        /* Tokens first (auth.h), before any route sees the request. */
        auth_verdict v = auth_check(
            s->auth, s->routes->auth, method, url,
            m.path_route && (m.path_route->flags & ROUTE_PAGE),
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
        if (v.status) {
            req->challenge = v.challenge;
            return respond_problem(req, v.status, v.detail, METRICS_REJECT_UNAUTHORIZED);
        }
        if (!m.route) { /* 404, or 405 under the path's route */
            route_response out;
            memset(&out, 0, sizeof out);
            route_not_found(s->routes, method, url, &m, req->id, &out);
            metrics_rejected(s->metrics, m.path_route ? METRICS_REJECT_METHOD_NOT_ALLOWED
                                                      : METRICS_REJECT_NOT_FOUND);
            return send_answer(req, &out);
        }
        if (m.segment_len >= ROUTE_MAX_SEGMENT)
            return respond_problem(req, 404, "the name in the path is too long",
                                   METRICS_REJECT_NOT_FOUND);
        request_route(req, &m);
        if (m.route->upload)
            return upload_begin(req);
        /* Answering now, before MHD has seen the whole request, would cost the keep-alive. */
        req->phase = PHASE_HANDLER;
        return MHD_YES;
    }
    switch (req->phase) {
    case PHASE_RECEIVING:
        if (*upload_data_size) {
            enum MHD_Result rc = upload_chunk(req, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return rc;
        }
        return upload_end(req);
    case PHASE_DONE: return upload_answer(req);
    case PHASE_QUEUED: return MHD_YES; /* not reached: the connection is suspended */
    case PHASE_HANDLER:
        if (*upload_data_size) {
            req->body_bytes += *upload_data_size;
            *upload_data_size = 0; /* these routes take no body: it is ignored */
            return MHD_YES;
        }
        return answer_handler(req);
    case PHASE_ANSWERED:
    default:
        /* A body after an early answer (413 from Content-Length): drop it. */
        *upload_data_size = 0;
        return MHD_YES;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    http_server *s = cls;
    request *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    double seconds = now_s() - req->started;
    log_request_line line = {
        .request_id = req->id,
        .method = req->method,
        .path = req->path,
        .remote = req->remote,
        .status = req->status,
        .bytes_in = req->body_bytes,
        .bytes_out = req->bytes_out,
        .duration_ms = seconds * 1e3,
        .evaluation_id = req->status == 200 && req->eval_id[0] ? req->eval_id : NULL,
        .detail = req->status ? (req->log_detail[0] ? req->log_detail : NULL)
                              : (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
                                     ? "connection timed out (--idle-timeout)"
                                     : "connection closed before an answer was sent"),
    };
    log_request(&line);
    if (!req->status && toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        metrics_rejected(s->metrics, METRICS_REJECT_UPLOAD_TIMEOUT);
    metrics_request_done(s->metrics, req->metrics_route, req->status, seconds, req->body_bytes);
    if (req->route && req->route->upload)
        req->route->upload->free(req->upload);
    for (size_t i = 0; i < req->query_count; i++)
        free(req->query_mem[i]);
    free(req->query);
    free(req->query_mem);
    free(req->path_buf);
    budget_release(req);
    free(req);
    atomic_fetch_sub(&s->in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_event("warn", "libmicrohttpd: %s", msg);
}

/* ---- life cycle ---------------------------------------------------------------------- */

/* A PEM file read whole into a NUL-terminated buffer; 0, or -1 with a message. */
#define HTTP_MAX_PEM_BYTES ((long)1 << 20) /* a long certificate chain is a few tens of KiB */
static int read_pem(const char *path, const char *flag, char **out, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    long size = -1;
    char *buf = NULL;
    if (!f) {
        snprintf(err, err_len, "%s %s cannot be read: %s", flag, path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size <= 0 || size > HTTP_MAX_PEM_BYTES || fseek(f, 0, SEEK_SET) != 0 ||
        !(buf = malloc((size_t)size + 1)) || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, err_len, "%s %s: cannot read it (empty, over 1 MiB, or unreadable)", flag,
                 path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[size] = '\0';
    if (!strstr(buf, "-----BEGIN ")) {
        snprintf(err, err_len, "%s %s is not a PEM file", flag, path);
        memset(buf, 0, (size_t)size);
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* Wipes (a private key) and frees. */
static void free_pem(char *pem)
{
    if (!pem)
        return;
    memset(pem, 0, strlen(pem));
    free(pem);
}

static void host_status(void *impl, route_status *out)
{
    http_server *s = impl;
    out->draining = atomic_load(&s->draining) != 0;
    out->evaluations_waiting = workqueue_waiting(s->queue);
    out->body_bytes_held = atomic_load(&s->inflight_bytes);
    out->body_budget_bytes = s->cfg->max_inflight_bytes;
}

/* The metrics labels: each route's label once, in table order. */
static int make_labels(http_server *s)
{
    const route_table *t = s->routes;
    s->labels = calloc(t->count + 1, sizeof *s->labels);
    s->route_label = calloc(t->count + 1, sizeof *s->route_label);
    if (!s->labels || !s->route_label)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < t->count; i++) {
        const route_entry *e = &t->entries[i];
        const char *label = (e->flags & ROUTE_UNLABELLED) ? NULL : e->label ? e->label : e->pattern;
        size_t k = 0;
        while (label && k < n && strcmp(s->labels[k], label) != 0)
            k++;
        if (label && k == n)
            s->labels[n++] = label;
        s->route_label[i] = label ? k : SIZE_MAX;
    }
    s->label_count = n;
    for (size_t i = 0; i < t->count; i++)
        if (s->route_label[i] == SIZE_MAX)
            s->route_label[i] = n; /* unmatched */
    return 0;
}

int http_server_start(const server_config *cfg, const route_table *routes, http_server **out,
                      char *err, size_t err_len)
{
    *out = NULL;
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    s->cfg = cfg;
    s->routes = routes;
    struct sockaddr_storage bind_addr;
    socklen_t bind_len;
    if (config_socket_address(cfg->bind, cfg->port, &bind_addr, &bind_len) != 0) {
        snprintf(err, err_len, "--bind '%s' is not an IPv4 or IPv6 address", cfg->bind);
        goto fail;
    }
    const struct sockaddr *addr = (const struct sockaddr *)&bind_addr;
    unsigned ipv6 = bind_addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0;
    if (auth_load(cfg->token_file, cfg->metrics_token, &s->auth, err, err_len) != 0)
        goto fail;
    if (cfg->tls_cert[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, err_len,
                     "--tls-cert: this libmicrohttpd was built without TLS "
                     "(GnuTLS); terminate TLS in a proxy instead");
            goto fail;
        }
        if (read_pem(cfg->tls_cert, "--tls-cert", &s->tls_cert, err, err_len) != 0 ||
            read_pem(cfg->tls_key, "--tls-key", &s->tls_key, err, err_len) != 0)
            goto fail;
    }
    s->queue = workqueue_new(cfg->workers, cfg->queue_depth);
    if (make_labels(s) == 0)
        s->metrics = metrics_new(s->labels, s->label_count);
    s->host = (route_host){s->metrics, host_status, s};
    if (!s->queue || !s->metrics) {
        snprintf(err, err_len, "out of memory or threads starting the workers");
        goto fail;
    }
    unsigned threads = cfg->threads ? cfg->threads : config_cpu_count();
    /* poll(), not epoll: MHD 0.9.75's edge-triggered epoll loses a FIN that arrives with the
     * last bytes of a read, so a client that half-closes mid-body kept its connection until
     * --idle-timeout; level-triggered poll sees it on the next round. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG | ipv6 | (s->tls_cert ? MHD_USE_TLS : 0);
    struct MHD_OptionItem tls[] = {
        {s->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    /* The logger first, so MHD reports nothing through its own stderr printer. */
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        s, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, err_len, "cannot listen on %s port %u (in use, or not allowed?%s)", cfg->bind,
                 cfg->port,
                 s->tls_cert ? " or --tls-cert/--tls-key are not a matching PEM pair" : "");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    http_server_stop(s);
    return -1;
}

void http_server_drain(http_server *s)
{
    atomic_store(&s->draining, 1);
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int http_server_wait_idle(http_server *s, unsigned timeout_s)
{
    double deadline = now_s() + (double)timeout_s;
    while (atomic_load(&s->in_flight) > 0) {
        if (now_s() >= deadline)
            return -1;
        struct timespec ts = {0, HTTP_IDLE_POLL_NS};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    /* Workers first: they finish queued jobs and resume their connections (MHD must not be
     * stopped while a connection is suspended). The queue itself stays valid until MHD has
     * stopped, for a last /metrics. */
    if (s->queue)
        workqueue_stop(s->queue);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    workqueue_free(s->queue);
    metrics_free(s->metrics);
    free(s->labels);
    free(s->route_label);
    auth_free(s->auth);
    free_pem(s->tls_cert);
    free_pem(s->tls_key);
    free(s);
}
