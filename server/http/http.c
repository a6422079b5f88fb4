/*
 * http.c - routes, request life cycle and body intake on libmicrohttpd 0.9.75 (see http.h).
 *
 * A request goes through phases. RECEIVING: MHD hands the body over in chunks; each is fed to
 * the multipart parser (one copy into the part's buffer). At the end of the body the request is
 * QUEUED: the connection is suspended and the evaluation handed to a worker. The worker writes
 * the outcome, marks the request DONE and resumes the connection; MHD calls us again and the
 * answer is queued.
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
 */
#include "http.h"

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

#include "auth.h"
#include "detail.h"
#include "http_head.h"
#include "ids.h"
#include "intake.h"
#include "json_writer.h"
#include "log.h"
#include "metrics.h"
#include "evaluate_parts.h"
#include "multipart.h"
#include "oip.h"
#include "problem.h"
#include "request_hash.h"
#include "result_json.h"
#include "segloss/segloss.h"
#include "workqueue.h"

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

#define JSON_TYPE "application/json"
/* Every answer: browsers must not guess another type (a JSON detail read as HTML). */
#define HTTP_HEADER_NOSNIFF "X-Content-Type-Options"
/* HTML answers (the dashboard): its own scripts, styles and fetches only, never framed. */
#define HTTP_PAGE_CSP                                                                         \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "        \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "           \
    "frame-ancestors 'none'"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct request request;

/* One query parameter, decoded (http_percent_decode); value NULL for a key without '='. */
typedef struct query_param {
    char *key;
    char *value;
} query_param;

/* ROUTE_OIP: POST /v2/.../infer, the whole body buffered and evaluated by oip.c */
typedef enum route_kind { ROUTE_GET, ROUTE_UPLOAD, ROUTE_OIP } route_kind;
/* A GET handler fills status, content type and body (malloc'ed; the caller sends and frees). */
typedef void (*route_get_fn)(http_server *s, request *req, int *status, const char **type,
                             char **body, size_t *len);

typedef struct route {
    const char *method;
    const char *pattern; /* "/v1/runs/{run}": a {name} segment matches one path segment */
    route_kind kind;
    route_get_fn get;
} route;

typedef enum request_phase {
    PHASE_RECEIVING, /* an upload's body is arriving */
    PHASE_QUEUED,    /* with a worker; the connection is suspended */
    PHASE_DONE,      /* the worker's outcome is ready to send */
    PHASE_GET,       /* a GET route, answered once the request is complete (keeps keep-alive) */
    PHASE_EXTENSION, /* an extension's path, answered once the request is complete */
    PHASE_ANSWERED
} request_phase;

struct request {
    http_server *server;
    struct MHD_Connection *conn;
    size_t route_index;         /* into routes[], then the extensions, then "unmatched" */
    size_t metrics_route;       /* into server->route_labels; route_label_count: unmatched */
    size_t extension;           /* PHASE_EXTENSION: index into server->ext.routes */
    const char *url;            /* the decoded path (path_buf) */
    char *path_buf;             /* the target's path, percent-decoded once; malloc'ed */
    query_param *query;         /* the query, percent-decoded once; malloc'ed */
    size_t query_count, query_cap;
    bool close_connection;      /* the answer carries Connection: close (framing errors) */
    char id[IDS_MAX_CLIENT_LEN + 1];
    char eval_id[IDS_LEN + 1];
    char method[16];
    char path[HTTP_MAX_PATH_LOG];
    char remote[INET6_ADDRSTRLEN];
    double started;
    request_phase phase;
    size_t body_bytes, discarded;
    bool length_known;          /* Content-Length given (else chunked) */
    size_t reserved;            /* bytes of the memory budget held (--max-inflight-mb) */
    int error_status;           /* a problem found mid-body, answered when the body ends */
    char error_detail[EVALUATION_DETAIL_MAX];
    metrics_reject error_reason;
    multipart_parser *parser;
    intake *intake;             /* work done while the body arrives, or NULL */
    params_request params;
    evaluation_blob *blobs;     /* masks then images, pointing into the parser's parts */
    evaluation_outcome outcome;
    int status;                 /* answered status, 0 when none was sent */
    size_t bytes_out;
    /* The problem detail for the log line, copied: callers pass details in buffers of their
     * own stack frames, long gone when on_completed writes the line. */
    char log_detail[EVALUATION_DETAIL_MAX];
    const char *challenge;      /* WWW-Authenticate of a 401/403 (static), or NULL */
    /* POST /v2/models/segloss/infer (oip.h): the whole body in one bufpool mapping, written
     * from oip_pad on so that its binary section (after the JSON header) starts aligned */
    bool oip;
    unsigned char *oip_buf;
    size_t oip_cap, oip_pad, oip_len, oip_prefaulted;
    const char *oip_header_len; /* Inference-Header-Content-Length (MHD's), or NULL */
    oip_outcome oip_out;
    char oip_answer_header[32]; /* the answer's Inference-Header-Content-Length, or "" */
    const char *idempotency_key; /* /v1/evaluate's Idempotency-Key (MHD's), or NULL */
    uint8_t request_hash[REQUEST_HASH_LEN];
};


static void handle_livez(http_server *s, request *req, int *status, const char **type,
                         char **body, size_t *len);
static void handle_readyz(http_server *s, request *req, int *status, const char **type,
                          char **body, size_t *len);
static void handle_metrics(http_server *s, request *req, int *status, const char **type,
                           char **body, size_t *len);
static void handle_info(http_server *s, request *req, int *status, const char **type,
                        char **body, size_t *len);
static void handle_v2(http_server *s, request *req, int *status, const char **type,
                      char **body, size_t *len);

/* The route table: add a row for a new route (runs, tokens and /v2 go here). */
static const route routes[] = {
    {"POST", "/v1/evaluate", ROUTE_UPLOAD, NULL},
    {"GET", "/v1/info", ROUTE_GET, handle_info},
    {"GET", "/livez", ROUTE_GET, handle_livez},
    {"GET", "/healthz", ROUTE_GET, handle_livez},
    {"GET", "/readyz", ROUTE_GET, handle_readyz},
    {"GET", "/metrics", ROUTE_GET, handle_metrics},
    /* Open Inference Protocol v2 (KServe / Triton REST), oip.h */
    {"POST", "/v2/models/segloss/infer", ROUTE_OIP, NULL},
    {"POST", "/v2/models/segloss/versions/1/infer", ROUTE_OIP, NULL},
    {"GET", "/v2", ROUTE_GET, handle_v2},
    {"GET", "/v2/health/live", ROUTE_GET, handle_v2},
    {"GET", "/v2/health/ready", ROUTE_GET, handle_v2},
    {"GET", "/v2/models/segloss", ROUTE_GET, handle_v2},
    {"GET", "/v2/models/segloss/ready", ROUTE_GET, handle_v2},
    {"GET", "/v2/models/segloss/versions/1", ROUTE_GET, handle_v2},
    {"GET", "/v2/models/segloss/versions/1/ready", ROUTE_GET, handle_v2},
};
#define ROUTE_COUNT (sizeof routes / sizeof routes[0])

struct http_server {
    const server_config *cfg;
    struct MHD_Daemon *daemon;
    segloss_ctx *ctx;
    workqueue *queue;
    metrics *metrics;
    bufpool *pool;              /* part buffers reused across requests */
    intake_worker *intake;      /* decodes and evaluates during uploads (intake.h) */
    atomic_int draining;
    atomic_long in_flight;
    atomic_size_t inflight_bytes; /* the memory budget in use: bodies held (request.reserved) */
    http_extensions ext;        /* result hook and extension routes, copied at start */
    auth *auth;                 /* tokens; NULL when none are configured */
    char *tls_cert, *tls_key;   /* PEM text for MHD (NUL-terminated), NULL without TLS */
    /* metrics labels: the route patterns, then the extensions' labels */
    const char *route_labels[ROUTE_COUNT + HTTP_MAX_EXTENSIONS * HTTP_MAX_EXTENSION_LABELS];
    size_t route_label_count;
    size_t ext_label_base[HTTP_MAX_EXTENSIONS]; /* an extension's first label */
    char *info_body;            /* GET /v1/info, built once */
    size_t info_len;
};


/* ---- routing ------------------------------------------------------------------------- */

static bool route_matches(const char *pattern, const char *path)
{
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            if (!close)
                return false;
            pattern = close + 1;
            if (*path == '/')
                return false; /* an empty segment */
            while (*path && *path != '/')
                path++;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

/* Finds the route for method and path; *path_route is the first route of the path whatever
 * its method (ROUTE_COUNT: none, a 404), which tells 405 from 404 and labels a 405 in the
 * metrics; allow gets the methods the path takes ("GET, HEAD"). */
static size_t route_find(const char *method, const char *path, size_t *path_route, char *allow,
                         size_t allow_len)
{
    bool head = strcmp(method, "HEAD") == 0;
    size_t found = ROUTE_COUNT;
    *path_route = ROUTE_COUNT;
    allow[0] = '\0';
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (!route_matches(routes[i].pattern, path))
            continue;
        if (*path_route == ROUTE_COUNT)
            *path_route = i;
        size_t used = strlen(allow);
        snprintf(allow + used, allow_len - used, "%s%s%s", used ? ", " : "", routes[i].method,
                 strcmp(routes[i].method, "GET") == 0 ? ", HEAD" : "");
        if (found == ROUTE_COUNT && (strcmp(routes[i].method, method) == 0 ||
                                     (head && strcmp(routes[i].method, "GET") == 0)))
            found = i;
    }
    return found;
}

/* ---- answers ------------------------------------------------------------------------- */

/* Sends body (malloc'ed; taken over) with the common headers. */
static enum MHD_Result respond(request *req, int status, const char *type, char *body,
                               size_t len, const char *allow, bool retry_after)
{
    http_server *s = req->server;
    enum MHD_ResponseMemoryMode mode = body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (void *)"", mode);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "X-Request-Id", req->id);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, HTTP_HEADER_NOSNIFF, "nosniff");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (req->challenge)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, req->challenge);
    if (req->oip_answer_header[0])
        MHD_add_response_header(r, OIP_HEADER_LENGTH, req->oip_answer_header);
    if (retry_after) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", HTTP_RETRY_AFTER_S);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    if (atomic_load(&s->draining) || req->close_connection)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    if (rc == MHD_YES) {
        req->status = status;
        req->bytes_out = len;
        req->phase = PHASE_ANSWERED;
    }
    return rc;
}

static enum MHD_Result respond_problem(request *req, int status, const char *detail,
                                       metrics_reject reason, const char *allow)
{
    size_t len = 0;
    metrics_rejected(req->server->metrics, reason);
    snprintf(req->log_detail, sizeof req->log_detail, "%s", detail ? detail : "");
    /* Under /v2 every error is the Open Inference Protocol's application/json {"error": ...}
     * (KServe's and Triton's clients read that member), 404s and 405s included. The decoded
     * path when the head was read (an absolute-form target included), else the raw one. */
    const char *path = req->url ? req->url : req->path;
    bool v2 = strncmp(path, "/v2", 3) == 0 &&
              (path[3] == '\0' || path[3] == '/' || path[3] == '?');
    char *body = v2 ? oip_error_json(detail, &len) : problem_json(status, detail, req->id, &len);
    return respond(req, status, v2 ? JSON_TYPE : PROBLEM_CONTENT_TYPE, body, len, allow,
                   status == 503);
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

/* ---- GET handlers -------------------------------------------------------------------- */

static char *dup_text(const char *text, size_t *len)
{
    *len = strlen(text);
    return strdup(text);
}

static void handle_livez(http_server *s, request *req, int *status, const char **type,
                         char **body, size_t *len)
{
    (void)s;
    (void)req;
    *status = 200;
    *type = JSON_TYPE;
    *body = dup_text("{\"status\":\"ok\"}\n", len);
}

static void handle_readyz(http_server *s, request *req, int *status, const char **type,
                          char **body, size_t *len)
{
    if (atomic_load(&s->draining)) {
        *status = 503;
        *type = PROBLEM_CONTENT_TYPE;
        *body = problem_json(503, "shutting down: finishing in-flight requests; send new ones "
                                  "to another replica",
                             req->id, len);
        return;
    }
    *status = 200;
    *type = JSON_TYPE;
    *body = dup_text("{\"status\":\"ready\"}\n", len);
}

static void handle_metrics(http_server *s, request *req, int *status, const char **type,
                           char **body, size_t *len)
{
    (void)req;
    *status = 200;
    *type = METRICS_TYPE;
    *body = metrics_render(s->metrics, workqueue_waiting(s->queue), atomic_load(&s->draining),
                           SEGLOSS_VERSION, segloss_kernel_name(segloss_ctx_kernel(s->ctx)), len);
    char *extra = *body && s->ext.metrics_extra ? s->ext.metrics_extra(s->ext.metrics_extra_arg)
                                                : NULL;
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
             atomic_load(&s->inflight_bytes), s->cfg->max_inflight_bytes);
    size_t budget_len = strlen(budget);
    char *with_budget = *body ? realloc(*body, *len + budget_len + 1) : NULL;
    if (with_budget) {
        memcpy(with_budget + *len, budget, budget_len + 1);
        *body = with_budget;
        *len += budget_len;
    }
    if (extra) {
        size_t extra_len = strlen(extra);
        char *joined = realloc(*body, *len + extra_len + 1);
        if (joined) {
            memcpy(joined + *len, extra, extra_len + 1);
            *body = joined;
            *len += extra_len;
        }
        free(extra);
    }
}

static void handle_info(http_server *s, request *req, int *status, const char **type,
                        char **body, size_t *len)
{
    (void)req;
    *status = 200;
    *type = JSON_TYPE;
    *body = malloc(s->info_len + 1);
    if (*body) {
        memcpy(*body, s->info_body, s->info_len + 1);
        *len = s->info_len;
    }
}

static char *build_info(const http_server *s, size_t *len)
{
    const server_config *cfg = s->cfg;
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
    json_string(&w, segloss_kernel_name(segloss_ctx_kernel(s->ctx)));
    json_key(&w, "eval_threads");
    json_uint(&w, segloss_ctx_threads(s->ctx));
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
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s %s", routes[i].method, routes[i].pattern);
        json_string(&w, line);
    }
    for (size_t i = 0; i < s->ext.route_count; i++)
        for (const char *const *line = s->ext.routes[i].describe; line && *line; line++)
            json_string(&w, *line);
    json_array_end(&w);
    json_object_end(&w);
    return json_writer_finish(&w, len);
}

/* ---- POST /v1/evaluate --------------------------------------------------------------- */

/* Strict decimal Content-Length; false when absent. */
static bool content_length(struct MHD_Connection *conn, unsigned long long *out)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH);
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
        return respond_problem(req, status, detail, reason, NULL);
    request_fail(req, status, reason, "%s", detail);
    budget_release(req); /* the body is dropped as it arrives, not held */
    return MHD_YES;
}

/* What refuses any upload, multipart or OIP, from its headers: shutting down, or a declared
 * Content-Length over the limit. True when the request is answered, with what MHD gets in
 * *result; else *known and *length hold the declared length. */
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
        char detail[EVALUATION_DETAIL_MAX];
        snprintf(detail, sizeof detail,
                 "the body is %llu bytes; the limit is %zu bytes (%zu MiB, --max-body-mb): "
                 "send a smaller batch",
                 *length, cfg->max_body_bytes, cfg->max_body_mb);
        *result = respond_problem(req, 413, detail, METRICS_REJECT_BODY_TOO_LARGE, NULL);
        return true;
    }
    req->length_known = *known;
    if (*known && *length > cfg->max_inflight_bytes) {
        char detail[EVALUATION_DETAIL_MAX];
        snprintf(detail, sizeof detail,
                 "the body is %llu bytes; this server holds at most %zu bytes of request "
                 "bodies at once (%zu MiB, --max-inflight-mb): send a smaller batch",
                 *length, cfg->max_inflight_bytes, cfg->max_inflight_mb);
        *result = respond_problem(req, 413, detail, METRICS_REJECT_BODY_TOO_LARGE, NULL);
        return true;
    }
    /* Refused before any of the body is read, whatever the client waits for: reading it
     * would be what the budget is there to prevent. */
    if (*known && !budget_take(req, (size_t)*length)) {
        char detail[EVALUATION_DETAIL_MAX];
        snprintf(detail, sizeof detail,
                 "busy: the bodies being received and evaluated fill the memory budget "
                 "(--max-inflight-mb %zu); retry in %d s",
                 cfg->max_inflight_mb, HTTP_RETRY_AFTER_S);
        req->close_connection = true;
        *result = respond_problem(req, 503, detail, METRICS_REJECT_QUEUE_FULL, NULL);
        return true;
    }
    return false;
}

/* A body with a Content-Encoding other than identity is refused (415), /v1 and /v2 alike: the
 * parsers read the bytes as sent. True when refused, with what MHD gets in *result. */
static bool refuse_content_encoding(request *req, enum MHD_Result *result)
{
    const char *enc = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (!enc || strcasecmp(enc, "identity") == 0)
        return false;
    char detail[EVALUATION_DETAIL_MAX];
    snprintf(detail, sizeof detail,
             "Content-Encoding %.32s is not supported; send the body uncompressed", enc);
    *result = refuse_upload(req, 415, detail, METRICS_REJECT_UNSUPPORTED);
    return true;
}

/* The headers of an upload are in: refuse what can be refused before reading the body. */
static enum MHD_Result upload_begin(request *req)
{
    http_server *s = req->server;
    const server_config *cfg = s->cfg;
    char detail[EVALUATION_DETAIL_MAX];
    unsigned long long length = 0;
    bool known = false;
    enum MHD_Result refused;
    if (refuse_any_upload(req, &known, &length, &refused) ||
        refuse_content_encoding(req, &refused))
        return refused;
    char qdetail[EVALUATION_DETAIL_MAX];
    for (size_t i = 0; i < req->query_count; i++) {
        int qs = params_set_query(&req->params, req->query[i].key, req->query[i].value,
                                  qdetail, sizeof qdetail);
        if (qs)
            return refuse_upload(req, qs, qdetail, metrics_reason_for_status(qs));
    }
    req->idempotency_key = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                       "Idempotency-Key");
    if (req->idempotency_key && !request_key_ok(req->idempotency_key))
        return refuse_upload(req, 400, "Idempotency-Key must be 1 to 255 printable ASCII "
                             "characters without spaces (a UUID, say)",
                             metrics_reason_for_status(400));
    const char *ctype = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE);
    evaluate_parts_limits limits = {cfg->max_body_bytes, cfg->max_parts, cfg->max_params_bytes,
                                    s->pool};
    int status = evaluate_parts_new(ctype, known ? (size_t)length : 0, &limits, &req->parser,
                                    detail, sizeof detail);
    if (status)
        return refuse_upload(req, status, detail, metrics_reason_for_status(status));
    req->intake = intake_new(s->intake, s->ext.on_result != NULL);
    if (req->intake) { /* the same query, parsed again into the intake's own copy */
        params_request *again = intake_params(req->intake);
        again->max_classes = cfg->limits.max_classes;
        for (size_t i = 0; i < req->query_count; i++)
            params_set_query(again, req->query[i].key, req->query[i].value, qdetail,
                             sizeof qdetail);
    }
    return MHD_YES;
}

static int oip_feed(request *req, const char *data, size_t size, char *detail, size_t dl);

/* Frees what a failed upload holds of its body and gives its budget back; the rest of the body
 * is read and dropped. */
static void request_drop_body(request *req)
{
    multipart_free(req->parser);
    req->parser = NULL;
    if (req->oip_buf)
        bufpool_put(req->server->pool, req->oip_buf, req->oip_cap);
    req->oip_buf = NULL;
    budget_release(req);
}

/* One chunk of the body. */
static enum MHD_Result upload_chunk(request *req, const char *data, size_t size)
{
    const server_config *cfg = req->server->cfg;
    double elapsed = evaluation_now() - req->started;
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
    char detail[EVALUATION_DETAIL_MAX];
    int status = req->oip ? oip_feed(req, data, size, detail, sizeof detail)
                          : evaluate_parts_feed(req->parser, data, size, detail, sizeof detail);
    if (status)
        request_fail(req, status, metrics_reason_for_status(status), "%s", detail);
    else if (!req->oip)
        intake_progress(req->intake, req->parser);
    return MHD_YES;
}

/* The fingerprint an Idempotency-Key is bound to (request_hash.h): the query parameters, then
 * each part's kind and bytes in body order. -1 when out of memory. */
static int hash_upload(request *req)
{
    request_hash *h = request_hash_new();
    if (!h)
        return -1;
    for (size_t i = 0; i < req->query_count; i++) { /* decoded once, as params read them */
        const char *v = req->query[i].value;
        request_hash_add(h, req->query[i].key, strlen(req->query[i].key));
        request_hash_add(h, v ? v : "", v ? strlen(v) : 0);
    }
    for (size_t i = 0; i < multipart_count(req->parser); i++) {
        const multipart_part *p = multipart_get(req->parser, i);
        uint8_t kind = (uint8_t)p->kind;
        request_hash_add(h, &kind, 1);
        request_hash_add(h, p->data, p->len);
    }
    request_hash_finish(h, req->request_hash);
    return 0;
}

/* Runs on a worker thread. After MHD_resume_connection the request may be freed at any time by
 * MHD's threads, so resuming is the last thing done here. */
static void evaluate_job(void *arg)
{
    request *req = arg;
    http_server *s = req->server;
    size_t masks = multipart_count_kind(req->parser, EVALUATE_PART_MASK);
    size_t images = multipart_count_kind(req->parser, EVALUATE_PART_IMAGE);
    const multipart_part *logits = multipart_first(req->parser, EVALUATE_PART_LOGITS);
    evaluation_request er = {
        .logits = {logits->data, logits->len},
        .masks = req->blobs,
        .mask_count = masks,
        .images = req->blobs + masks,
        .image_count = images,
        .params = &req->params,
        .id = req->eval_id,
        .started = req->started,
    };
    er.hook = s->ext.on_result;
    er.hook_arg = s->ext.on_result_arg;
    bool keyed = req->idempotency_key && req->params.run && er.hook;
    if (keyed && hash_upload(req) == 0) {
        er.idempotency_key = req->idempotency_key;
        er.request_hash = req->request_hash;
    }
    if (keyed && !er.idempotency_key) { /* never record a keyed request without its key */
        req->outcome.status = 503;
        snprintf(req->outcome.detail, sizeof req->outcome.detail, "out of memory; retry later");
    } else {
        er.prepared = intake_close(req->intake);
        evaluation_run(s->ctx, &s->cfg->limits, &er, &req->outcome);
        evaluation_answer_json(&req->outcome, &er);
    }
    intake_release(req->intake);
    req->intake = NULL;
    metrics_evaluation(s->metrics, (req->outcome.decode_ms + req->outcome.compute_ms) * 1e-3);
    /* The parts are no longer needed: give their memory back before the answer is sent. */
    multipart_free(req->parser);
    req->parser = NULL;
    req->phase = PHASE_DONE;
    MHD_resume_connection(req->conn);
}

/* The body is complete: check it, then hand it to a worker. */
static enum MHD_Result oip_end(request *req);

/*
 * Hands a complete upload to a worker (/v1 and /v2 alike): a new evaluation id, the
 * connection suspended before submitting (the worker may finish and resume at once), and a
 * full queue turned into a 503 outcome at once. status/detail are the outcome's own fields.
 */
static enum MHD_Result queue_evaluation(request *req, workqueue_fn job, int *status,
                                        char *detail, size_t detail_len)
{
    http_server *s = req->server;
    ids_new(req->eval_id);
    req->phase = PHASE_QUEUED;
    MHD_suspend_connection(req->conn);
    if (workqueue_submit(s->queue, job, req) != 0) {
        *status = 503;
        snprintf(detail, detail_len,
                 "overloaded: %u evaluations are already waiting; retry in %d s",
                 s->cfg->queue_depth, HTTP_RETRY_AFTER_S);
        req->error_reason = METRICS_REJECT_QUEUE_FULL;
        req->phase = PHASE_DONE;
        MHD_resume_connection(req->conn);
    }
    return MHD_YES;
}

/* The /metrics rejection reason of a failed outcome: a full queue is counted as such. */
static metrics_reject outcome_reject_reason(const request *req, int status)
{
    return status == 503 && req->error_reason == METRICS_REJECT_QUEUE_FULL
               ? METRICS_REJECT_QUEUE_FULL
               : metrics_reason_for_status(status);
}

static enum MHD_Result upload_end(request *req)
{
    http_server *s = req->server;
    char detail[EVALUATION_DETAIL_MAX];
    if (req->oip)
        return oip_end(req);
    if (req->error_status)
        return respond_problem(req, req->error_status, req->error_detail, req->error_reason,
                               NULL);
    const multipart_part *logits = multipart_first(req->parser, EVALUATE_PART_LOGITS);
    bool safetensors = logits && segloss_detect_format(logits->data, logits->len) ==
                                     SEGLOSS_FORMAT_SAFETENSORS;
    int status = evaluate_parts_finish(req->parser, safetensors, detail, sizeof detail);
    if (status)
        return respond_problem(req, status, detail, metrics_reason_for_status(status), NULL);
    const multipart_part *params = multipart_first(req->parser, EVALUATE_PART_PARAMS);
    if (params) {
        status = params_set_json(&req->params, (const char *)params->data, params->len,
                                 s->cfg->max_params_bytes, detail, sizeof detail);
        if (status)
            return respond_problem(req, status, detail, metrics_reason_for_status(status),
                                   NULL);
    }
    /* Masks first, then images, each in body order. */
    size_t masks = multipart_count_kind(req->parser, EVALUATE_PART_MASK);
    size_t images = multipart_count_kind(req->parser, EVALUATE_PART_IMAGE);
    req->blobs = calloc(masks + images + 1, sizeof *req->blobs);
    if (!req->blobs)
        return respond_problem(req, 503, "out of memory; retry later", METRICS_REJECT_INTERNAL,
                               NULL);
    size_t mi = 0, ii = masks;
    for (size_t i = 0; i < multipart_count(req->parser); i++) {
        const multipart_part *p = multipart_get(req->parser, i);
        if (p->kind == EVALUATE_PART_MASK)
            req->blobs[mi++] = (evaluation_blob){p->data, p->len};
        else if (p->kind == EVALUATE_PART_IMAGE)
            req->blobs[ii++] = (evaluation_blob){p->data, p->len};
    }
    return queue_evaluation(req, evaluate_job, &req->outcome.status, req->outcome.detail,
                            sizeof req->outcome.detail);
}

static enum MHD_Result upload_answer(request *req)
{
    evaluation_outcome *o = &req->outcome;
    if (o->status != 200)
        return respond_problem(req, o->status, o->detail, outcome_reject_reason(req, o->status),
                               NULL);
    char *body = o->body;
    o->body = NULL;
    return respond(req, 200, JSON_TYPE, body, o->body_len, NULL, false);
}

/* ---- POST /v2/models/segloss/infer (oip.h) ------------------------------------------- */

/* A chunked body starts in a mapping this large and doubles (mremap) up to --max-body-mb. */
#define HTTP_OIP_CHUNKED_START ((size_t)1 << 20)
/* Pages are faulted in this far ahead of the copy, as multipart.c does for its parts (one
 * MADV_POPULATE_WRITE instead of a fault per page; never far beyond what has arrived, so a
 * lying Content-Length commits no memory). */
#define HTTP_OIP_PREFAULT_WINDOW ((size_t)8 << 20)

static void handle_v2(http_server *s, request *req, int *status, const char **type,
                      char **body, size_t *len)
{
    *type = JSON_TYPE;
    if (!oip_get(routes[req->route_index].pattern, atomic_load(&s->draining), status, body,
                 len)) {
        *status = 404;
        *body = oip_error_json("no such /v2 resource", len);
    }
}

/* The headers are in: refuse what can be refused, then map one buffer for the whole body. */
static enum MHD_Result oip_begin(request *req)
{
    http_server *s = req->server;
    req->oip = true;
    unsigned long long length = 0;
    bool known = false;
    enum MHD_Result refused;
    if (refuse_any_upload(req, &known, &length, &refused) ||
        refuse_content_encoding(req, &refused))
        return refused;
    req->oip_header_len = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                      OIP_HEADER_LENGTH);
    /* Where the JSON header ends, the binary tensors begin: put that on an aligned address. A
     * bad value is reported by oip_parse. */
    unsigned long long json_len = 0;
    for (const char *c = req->oip_header_len; c && *c >= '0' && *c <= '9' && json_len < 1u << 30;
         c++)
        json_len = json_len * 10 + (unsigned long long)(*c - '0');
    req->oip_pad = (OIP_BODY_ALIGN - (size_t)(json_len % OIP_BODY_ALIGN)) % OIP_BODY_ALIGN;
    size_t need = req->oip_pad + (known ? (size_t)length : HTTP_OIP_CHUNKED_START) + 1;
    req->oip_buf = bufpool_get(s->pool, need, &req->oip_cap);
    if (!req->oip_buf)
        return respond_problem(req, 503, "out of memory for the body; retry later",
                               METRICS_REJECT_INTERNAL, NULL);
    return MHD_YES;
}

/* Appends a chunk; a chunked body grows the mapping up to the body limit. */
static int oip_feed(request *req, const char *data, size_t size, char *detail, size_t dl)
{
    size_t max = req->server->cfg->max_body_bytes;
    if (size > max - req->oip_len) {
        snprintf(detail, dl, "the body is over the limit of %zu bytes (--max-body-mb): send a "
                             "smaller batch", max);
        return 413;
    }
    size_t need = req->oip_pad + req->oip_len + size;
    if (need > req->oip_cap) {
        size_t want = req->oip_cap * 2;
        if (want > req->oip_pad + max)
            want = req->oip_pad + max;
        if (want < need)
            want = need;
        void *grown = bufpool_grow(req->oip_buf, &req->oip_cap, want);
        if (!grown) {
            snprintf(detail, dl, "out of memory for the body; retry later");
            return 503;
        }
        req->oip_buf = grown;
    }
    if (need > req->oip_prefaulted) {
        size_t want = need + HTTP_OIP_PREFAULT_WINDOW;
        bufpool_prefault(req->oip_buf, req->oip_cap, req->oip_prefaulted,
                         want - req->oip_prefaulted);
        req->oip_prefaulted = want < req->oip_cap ? want : req->oip_cap;
    }
    memcpy(req->oip_buf + req->oip_pad + req->oip_len, data, size);
    req->oip_len += size;
    return 0;
}

/* Runs on a worker thread; resuming is the last thing done (see evaluate_job). */
static void oip_job(void *arg)
{
    request *req = arg;
    http_server *s = req->server;
    oip_infer_input in = {
        .body = req->oip_buf + req->oip_pad,
        .len = req->oip_len,
        .header_len = req->oip_header_len,
        .limits = &s->cfg->limits,
        .max_params_bytes = s->cfg->max_params_bytes,
        .id = req->eval_id,
        .started = req->started,
        .hook = s->ext.on_result,
        .hook_arg = s->ext.on_result_arg,
    };
    oip_infer(s->ctx, &in, &req->oip_out);
    metrics_evaluation(s->metrics, (req->oip_out.decode_ms + req->oip_out.compute_ms) * 1e-3);
    bufpool_put(s->pool, req->oip_buf, req->oip_cap);
    req->oip_buf = NULL;
    req->phase = PHASE_DONE;
    MHD_resume_connection(req->conn);
}

static enum MHD_Result oip_end(request *req)
{
    if (req->error_status)
        return respond_problem(req, req->error_status, req->error_detail, req->error_reason,
                               NULL);
    return queue_evaluation(req, oip_job, &req->oip_out.status, req->oip_out.detail,
                            sizeof req->oip_out.detail);
}

static enum MHD_Result oip_answer(request *req)
{
    oip_outcome *o = &req->oip_out;
    if (o->status != 200)
        return respond_problem(req, o->status, o->detail, outcome_reject_reason(req, o->status),
                               NULL);
    char *body = o->body;
    o->body = NULL;
    bool binary = o->json_len < o->body_len;
    if (binary)
        snprintf(req->oip_answer_header, sizeof req->oip_answer_header, "%zu", o->json_len);
    return respond(req, 200, binary ? OIP_BINARY_TYPE : JSON_TYPE, body, o->body_len, NULL,
                   false);
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
    req->started = evaluation_now();
    req->route_index = ROUTE_COUNT;
    req->metrics_route = s->route_label_count;
    params_init(&req->params);
    req->params.max_classes = s->cfg->limits.max_classes;
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

static enum MHD_Result answer_get(request *req);
static enum MHD_Result answer_extension(request *req);

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
        query_param *grown = realloc(req->query, cap * sizeof *grown);
        if (!grown)
            return MHD_NO;
        req->query = grown;
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
    req->query[req->query_count++] = (query_param){key_out, value_out};
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
    int status = fw.overflow ? 400
                             : http_head_check(version, fw.headers, fw.count, detail, detail_len);
    if (fw.overflow)
        snprintf(detail, detail_len, "more than %d Content-Length, Transfer-Encoding and Host "
                                     "headers", HTTP_MAX_FRAMING_HEADERS);
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
static const char *request_query(const request *req, const char *key)
{
    for (size_t i = 0; i < req->query_count; i++)
        if (strcmp(req->query[i].key, key) == 0)
            return req->query[i].value;
    return NULL;
}

/* The metrics label of a path extension i owns: one of its labels, or unmatched. */
static size_t extension_label(const http_server *s, size_t i, const char *path)
{
    const http_extension *e = &s->ext.routes[i];
    if (!e->labels || !e->label_of)
        return s->ext_label_base[i];
    size_t k = e->label_of(e->arg, path), count = 0;
    while (count < HTTP_MAX_EXTENSION_LABELS && e->labels[count])
        count++;
    return k < count ? s->ext_label_base[i] + k : s->route_label_count;
}

/* The metrics label of a path whatever the method (a refused token is counted there). */
static size_t path_label(const http_server *s, const char *path)
{
    char allow[128];
    size_t path_route = ROUTE_COUNT;
    route_find("", path, &path_route, allow, sizeof allow);
    if (path_route < ROUTE_COUNT)
        return path_route;
    for (size_t i = 0; i < s->ext.route_count; i++)
        if (s->ext.routes[i].owns(s->ext.routes[i].arg, path))
            return extension_label(s, i, path);
    return s->route_label_count;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    http_server *s = cls;
    request *req = *con_cls;
    if (!req) {
        req = request_new(s, conn, method, url);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        char head_detail[EVALUATION_DETAIL_MAX];
        int head_status = request_head(req, version, url, head_detail, sizeof head_detail);
        if (head_status)
            return respond_problem(req, head_status, head_detail,
                                   metrics_reason_for_status(head_status), NULL);
        url = req->url;
        /* Tokens first, by path prefix (auth.h), before any route sees the request. */
        auth_verdict v = auth_check(
            s->auth, method, url,
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
        if (v.status) {
            req->challenge = v.challenge;
            req->metrics_route = path_label(s, url);
            return respond_problem(req, v.status, v.detail, METRICS_REJECT_UNAUTHORIZED, NULL);
        }
        char allow[128];
        size_t path_route = ROUTE_COUNT;
        req->route_index = route_find(method, url, &path_route, allow, sizeof allow);
        req->metrics_route = req->route_index;
        if (req->route_index == ROUTE_COUNT && path_route == ROUTE_COUNT) {
            for (size_t i = 0; i < s->ext.route_count; i++) {
                if (s->ext.routes[i].owns(s->ext.routes[i].arg, url)) {
                    req->extension = i;
                    req->route_index = ROUTE_COUNT + i;
                    req->metrics_route = extension_label(s, i, url);
                    req->phase = PHASE_EXTENSION;
                    return MHD_YES;
                }
            }
            req->route_index = ROUTE_COUNT + s->ext.route_count; /* unmatched */
            req->metrics_route = s->route_label_count;
        }
        if (req->route_index >= ROUTE_COUNT) {
            char detail[EVALUATION_DETAIL_MAX];
            if (path_route == ROUTE_COUNT) {
                snprintf(detail, sizeof detail,
                         "no route %.200s; see GET /v1/info for the routes", url);
                return respond_problem(req, 404, detail, METRICS_REJECT_NOT_FOUND, NULL);
            }
            /* counted under the path's own route, as a method not allowed */
            req->metrics_route = path_route;
            snprintf(detail, sizeof detail, "%.200s takes %s, not %.16s", url, allow, method);
            return respond_problem(req, 405, detail, METRICS_REJECT_METHOD_NOT_ALLOWED, allow);
        }
        if (routes[req->route_index].kind == ROUTE_UPLOAD)
            return upload_begin(req);
        if (routes[req->route_index].kind == ROUTE_OIP)
            return oip_begin(req);
        /* Answering now, before MHD has seen the whole request, would cost the keep-alive. */
        req->phase = PHASE_GET;
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
    case PHASE_DONE:
        return req->oip ? oip_answer(req) : upload_answer(req);
    case PHASE_QUEUED:
        return MHD_YES; /* not reached: the connection is suspended */
    case PHASE_GET:
    case PHASE_EXTENSION:
        if (*upload_data_size) {
            req->body_bytes += *upload_data_size;
            *upload_data_size = 0; /* these routes take no body: it is ignored */
            return MHD_YES;
        }
        return req->phase == PHASE_GET ? answer_get(req) : answer_extension(req);
    case PHASE_ANSWERED:
    default:
        /* A body after an early answer (413 from Content-Length): drop it. */
        *upload_data_size = 0;
        return MHD_YES;
    }
}

static enum MHD_Result answer_get(request *req)
{
    http_server *s = req->server;
    const route *r = &routes[req->route_index];
    int status = 500;
    const char *type = JSON_TYPE;
    char *body = NULL;
    size_t len = 0;
    r->get(s, req, &status, &type, &body, &len);
    if (!body)
        return respond_problem(req, 503, "out of memory; retry later", METRICS_REJECT_INTERNAL,
                               NULL);
    return respond(req, status, type, body, len, NULL, status == 503);
}

static const char *extension_query(void *arg, const char *key)
{
    return request_query(arg, key);
}

static enum MHD_Result answer_extension(request *req)
{
    http_server *s = req->server;
    const http_extension *e = &s->ext.routes[req->extension];
    http_route_request in = {
        .method = req->method,
        .path = req->url,
        .query = extension_query,
        .query_arg = req,
        .if_none_match = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_IF_NONE_MATCH),
        .request_id = req->id,
    };
    http_route_response out;
    memset(&out, 0, sizeof out);
    e->handle(e->arg, &in, &out);
    if (out.status < 100 || out.status > 599) {
        free(out.body);
        return respond_problem(req, 500, "internal error: a route gave no status",
                               METRICS_REJECT_INTERNAL, NULL);
    }
    enum MHD_ResponseMemoryMode mode = out.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT;
    size_t len = out.body ? out.body_len : 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, out.body ? (void *)out.body : (void *)"", mode);
    if (!r) {
        free(out.body);
        return MHD_NO;
    }
    if (out.content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, out.content_type);
    MHD_add_response_header(r, "X-Request-Id", req->id);
    /* With tokens on, what a token protects must not be kept in shared caches, and a
     * revalidated answer is kept by the browser only for its user. */
    const char *cache = out.cache_control ? out.cache_control : "no-store";
    if (s->auth && auth_path_protected(req->url) && strcmp(cache, "no-cache") == 0)
        cache = "private, no-cache";
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
    MHD_add_response_header(r, HTTP_HEADER_NOSNIFF, "nosniff");
    if (out.content_type && strncmp(out.content_type, "text/html", 9) == 0) {
        MHD_add_response_header(r, "Content-Security-Policy", HTTP_PAGE_CSP);
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
    }
    if (out.etag[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, out.etag);
    if (out.header_name && out.header_value[0])
        MHD_add_response_header(r, out.header_name, out.header_value);
    if (out.status == 503) { /* as every other 503: when to come back */
        char secs[16];
        snprintf(secs, sizeof secs, "%d", HTTP_RETRY_AFTER_S);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    if (atomic_load(&s->draining) || req->close_connection)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)out.status, r);
    MHD_destroy_response(r);
    if (rc == MHD_YES) {
        req->status = out.status;
        req->bytes_out = len;
        req->phase = PHASE_ANSWERED;
        if (out.status >= 400)
            metrics_rejected(s->metrics, metrics_reason_for_status(out.status));
    }
    return rc;
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
    double seconds = evaluation_now() - req->started;
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
    intake_release(req->intake); /* before the parser it reads */
    multipart_free(req->parser);
    params_free(&req->params);
    evaluation_outcome_clear(&req->outcome);
    if (req->oip_buf)
        bufpool_put(s->pool, req->oip_buf, req->oip_cap);
    oip_outcome_clear(&req->oip_out);
    free(req->blobs);
    for (size_t i = 0; i < req->query_count; i++)
        free(req->query[i].key);
    free(req->query);
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

int http_server_start(const server_config *cfg, const http_extensions *ext, http_server **out,
                      char *err, size_t err_len)
{
    *out = NULL;
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    s->cfg = cfg;
    if (ext) {
        if (ext->route_count > HTTP_MAX_EXTENSIONS) {
            snprintf(err, err_len, "more than %d extension routes", HTTP_MAX_EXTENSIONS);
            goto fail;
        }
        s->ext = *ext;
    }
    struct sockaddr_storage bind_addr;
    socklen_t bind_len;
    if (config_socket_address(cfg->bind, cfg->port, &bind_addr, &bind_len) != 0) {
        snprintf(err, err_len, "--bind '%s' is not an IPv4 or IPv6 address", cfg->bind);
        goto fail;
    }
    const struct sockaddr *addr = (const struct sockaddr *)&bind_addr;
    unsigned ipv6 = bind_addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0;
    int rc = segloss_ctx_new(&s->ctx, cfg->eval_threads, SEGLOSS_KERNEL_AUTO);
    if (!rc)
        rc = segloss_ctx_set_limits(s->ctx, &cfg->limits);
    if (rc) {
        char why[256] = "";
        segloss_kernel unused;
        if (segloss_kernel_choose(SEGLOSS_KERNEL_AUTO, &unused, why, sizeof why) == 0)
            snprintf(why, sizeof why, "%s", segloss_strerror(rc));
        snprintf(err, err_len, "cannot start the loss library: %s", why);
        goto fail;
    }
    if (auth_load(cfg->token_file, cfg->metrics_token, &s->auth, err, err_len) != 0)
        goto fail;
    if (cfg->tls_cert[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, err_len, "--tls-cert: this libmicrohttpd was built without TLS "
                                   "(GnuTLS); terminate TLS in a proxy instead");
            goto fail;
        }
        if (read_pem(cfg->tls_cert, "--tls-cert", &s->tls_cert, err, err_len) != 0 ||
            read_pem(cfg->tls_key, "--tls-key", &s->tls_key, err, err_len) != 0)
            goto fail;
    }
    s->queue = workqueue_new(cfg->workers, cfg->queue_depth);
    size_t labels = 0;
    for (size_t i = 0; i < ROUTE_COUNT; i++)
        s->route_labels[labels++] = routes[i].pattern;
    for (size_t i = 0; i < s->ext.route_count; i++) {
        const http_extension *e = &s->ext.routes[i];
        s->ext_label_base[i] = labels;
        if (!e->labels || !e->label_of) {
            s->route_labels[labels++] = e->label;
            continue;
        }
        for (size_t k = 0; e->labels[k] && k < HTTP_MAX_EXTENSION_LABELS; k++)
            s->route_labels[labels++] = e->labels[k];
    }
    s->route_label_count = labels;
    s->metrics = metrics_new(s->route_labels, labels);
    s->pool = bufpool_new(cfg->buffer_cache_mb << 20);
    s->info_body = build_info(s, &s->info_len);
    s->intake = intake_worker_new(s->ctx, &cfg->limits);
    if (!s->queue || !s->metrics || !s->pool || !s->info_body || !s->intake) {
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
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, s, MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        HTTP_CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_ARRAY,
        tls, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, err_len, "cannot listen on %s port %u (in use, or not allowed?%s)",
                 cfg->bind, cfg->port,
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
    double deadline = evaluation_now() + (double)timeout_s;
    while (atomic_load(&s->in_flight) > 0) {
        if (evaluation_now() >= deadline)
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
    /* Workers first: they finish queued evaluations and resume their connections (MHD must
     * not be stopped while a connection is suspended). The queue itself stays valid until MHD
     * has stopped, for a last /metrics. */
    if (s->queue)
        workqueue_stop(s->queue);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    intake_worker_free(s->intake);
    workqueue_free(s->queue);
    bufpool_free(s->pool);
    segloss_ctx_free(s->ctx);
    metrics_free(s->metrics);
    free(s->info_body);
    auth_free(s->auth);
    free_pem(s->tls_cert);
    free_pem(s->tls_key);
    free(s);
}
