/*
 * http.h - the HTTP side of seglossd: libmicrohttpd 0.9.75, the route table, body intake and
 * the hand-over of evaluations to worker threads.
 *
 * MHD runs a pool of polling threads (--threads). They only move bytes: a finished upload is
 * handed to the evaluation workers (workqueue) and its connection suspended
 * (MHD_ALLOW_SUSPEND_RESUME) until the answer is ready, so one heavy evaluation never stalls the
 * I/O of other connections. Bodies are parsed as they stream in (multipart.c); a Content-Length
 * over the limit, or over what the memory budget (--max-inflight-mb) has left, is refused
 * before the body is read. Ambiguous framing is refused before any route runs (http_head.h).
 *
 * Routes: the built-in table in http.c (evaluate, info, probes, metrics) first, then the
 * extensions given at start, each owning a set of paths (the runs API, the dashboard).
 *
 * Shutdown: http_server_drain (readyz turns 503, the listening socket closes, keep-alive
 * answers carry Connection: close), http_server_wait_idle (in-flight requests finish), then
 * http_server_stop.
 *
 * Threads: start, drain, wait and stop are called from one thread (main); everything else runs
 * on MHD's and the workers' threads.
 */
#ifndef SERVER_HTTP_H
#define SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "evaluation.h"
#include "params.h"

typedef struct http_server http_server;

/* Extension routes get the request as plain values, so they know nothing of libmicrohttpd and
 * can be tested by calling them. */
typedef const char *(*http_query_fn)(void *arg, const char *key); /* decoded value or NULL */

typedef struct http_route_request {
    const char *method;        /* "GET", "HEAD", "DELETE", ... */
    const char *path;          /* without the query string, percent-escapes decoded */
    http_query_fn query;
    void *query_arg;
    const char *if_none_match; /* the header, or NULL */
    const char *request_id;
} http_route_request;

typedef struct http_route_response {
    int status;
    const char *content_type;  /* static; NULL when there is no body */
    char *body;                /* malloc'ed, taken over by the server; NULL for none */
    size_t body_len;
    char etag[96];             /* with its quotes; "" for none */
    const char *cache_control; /* static; NULL for the default no-store */
    const char *header_name;   /* one extra header (Allow, X-Next-Page-Token...) or NULL */
    char header_value[128];
} http_route_response;

/* Whether an extension answers this path (every method of it: it answers 405 itself). */
typedef bool (*http_owns_fn)(void *arg, const char *path);
/* Answers one request; *out is zeroed before the call and must be filled. */
typedef void (*http_handle_fn)(void *arg, const http_route_request *req,
                               http_route_response *out);

/* Extensions registered beyond the built-in routes (runs, dashboard, /v2...). */
#define HTTP_MAX_EXTENSIONS 8

/* The metrics route labels an extension's paths are counted under, at most this many. */
#define HTTP_MAX_EXTENSION_LABELS 8

/* Which of an extension's labels a request is counted under: an index into its labels, or
 * HTTP_LABEL_UNMATCHED for a path it owns but no route of it takes (a 404). */
#define HTTP_LABEL_UNMATCHED ((size_t)-1)
typedef size_t (*http_label_fn)(void *arg, const char *path);

typedef struct http_extension {
    const char *label; /* the metrics route label, e.g. "/v1/runs" (static), when no labels */
    http_owns_fn owns;
    http_handle_fn handle;
    void *arg;
    const char *const *describe; /* "GET /v1/runs/{run}"... for GET /v1/info; NULL-ended */
    /* One metrics label per route template ("/v1/runs/{run}/history"...), NULL-ended, and
     * label_of to pick one for a path; both NULL: every path is counted under `label`. */
    const char *const *labels;
    http_label_fn label_of;
} http_extension;

typedef struct http_extensions {
    evaluation_hook on_result; /* e.g. record results that carry params->run; may be NULL */
    void *on_result_arg;
    http_extension routes[HTTP_MAX_EXTENSIONS];
    size_t route_count;
    /* Extra Prometheus lines appended to GET /metrics (malloc'ed text, or NULL); may be NULL.
     * The runs store reports its disk use through it. */
    char *(*metrics_extra)(void *arg);
    void *metrics_extra_arg;
} http_extensions;

/* Starts listening. ext may be NULL; it is copied. Returns 0, or -1 with a message in err (e.g.
 * the port is taken). The config must outlive the server. */
int http_server_start(const server_config *cfg, const http_extensions *ext, http_server **out,
                      char *err, size_t err_len);

/* Stops accepting: /readyz answers 503 from now on. */
void http_server_drain(http_server *s);

/* Waits until no request is in flight or timeout_s passes. 0 when idle, -1 on timeout. */
int http_server_wait_idle(http_server *s, unsigned timeout_s);

/* Stops the workers and MHD and frees everything. Accepts NULL. */
void http_server_stop(http_server *s);

#endif
