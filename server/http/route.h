/*
 * route.h - one handler type and one route table for every route of seglossd, free of
 * libmicrohttpd so that handlers can be tested by calling them.
 *
 * The API layer (routes.c) writes the table: per route its method, path pattern, metrics
 * label, flags, error format and either a handler (answered once the request is complete) or
 * an upload (the body streamed into begin/feed/end, a job run on a worker thread, then the
 * answer). The transport (http.c) frames the request, finds its route here (route_find) and
 * sends whatever route_response it gets; it knows no route by name. route_answer runs a whole
 * request through the table the way http.c does, for handlers and tests.
 *
 * A pattern is a path whose "{name}" segments each match one non-empty segment; the first
 * such segment of a request reaches the handler decoded, as route_request.segment.
 *
 * Threads: a table is read-only once given to the server; handlers run on the server's
 * polling threads (run on a worker), concurrently for different requests.
 */
#ifndef SERVER_ROUTE_H
#define SERVER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "http/auth.h"
#include "segloss/limits.h"

/* The longest error detail a handler or the transport writes. */
#define ROUTE_DETAIL_MAX 512
/* The longest path segment a {name} takes (a run name is at most 128 bytes, an id 32). */
#define ROUTE_MAX_SEGMENT 400

typedef struct route_entry route_entry;

/* One query parameter, decoded once; value NULL for a key without '='. */
typedef struct route_query_param {
    const char *key;
    const char *value;
} route_query_param;

/* The transport's state, for the probes and GET /metrics. */
typedef struct route_status {
    bool draining;              /* shutting down: no new evaluations */
    size_t evaluations_waiting; /* jobs queued for the workers */
    size_t body_bytes_held;     /* bodies held now, against the memory budget */
    size_t body_budget_bytes;   /* --max-inflight-mb */
} route_status;

/* What the server lends every request (owned by it, valid while it runs). */
typedef struct route_host {
    struct metrics *metrics; /* metrics.h */
    void (*status)(void *impl, route_status *out);
    void *impl;
} route_host;

typedef struct route_request {
    const char *method;       /* "GET", "HEAD", "DELETE", ... */
    const char *path;         /* without the query string, percent-escapes decoded */
    const route_entry *route; /* the route the request was given to */
    const char *segment;      /* what the pattern's first {name} matched, decoded; or "" */
    const char *(*query)(void *arg, const char *key); /* decoded value or NULL; may be NULL */
    void *query_arg;
    const route_query_param *query_list; /* every parameter in order (uploads) */
    size_t query_count;
    const char *(*header)(void *arg, const char *name); /* a request header or NULL */
    void *header_arg;
    const char *if_none_match;    /* the header, or NULL */
    const char *request_id;       /* echoed in problem bodies; may be NULL */
    const char *evaluation_id;    /* uploads: the id the answer goes under, set before the job */
    double started;               /* monotonic seconds when the request arrived */
    const segloss_limits *limits; /* the configured shape limits; NULL: the defaults */
    const route_host *host;       /* NULL outside a server */
} route_request;

typedef struct route_response {
    int status;
    const char *content_type; /* static; NULL when there is no body */
    char *body;               /* malloc'ed, taken over by the server; NULL for none */
    size_t body_len;
    char etag[96];             /* with its quotes; "" for none */
    const char *cache_control; /* static; NULL for the default no-store */
    const char *header_name;   /* one extra header (Allow, X-Next-Page-Token...) or NULL */
    char header_value[128];
    /* An error status without a body: the route's error format writes it from this detail. */
    char detail[ROUTE_DETAIL_MAX];
} route_response;

/* Frees the body. Accepts NULL. */
void route_response_free(route_response *out);

/* Answers one request; *out is zeroed before the call and must be filled. arg is the table's. */
typedef void (*route_handle_fn)(void *arg, const route_request *req, route_response *out);

/* How a route writes an error: its content type and a body from status and detail. */
typedef struct route_errors {
    const char *content_type;
    char *(*body)(int status, const char *detail, const char *request_id, size_t *len);
} route_errors;

/* application/problem+json (RFC 9457, problem.h), the default. */
extern const route_errors route_problem_errors;

/*
 * A route that takes a body, streamed. The callbacks return 0, or the status to answer with a
 * detail written (written by the route's error format; the transport decides when it can be
 * sent). state is the upload's own, made by begin; the transport calls free once however the
 * request ends, begin failed or not.
 *
 *   begin   the headers are in and the transport's checks passed (length and budget, draining,
 *           Content-Encoding); length is the declared Content-Length, 0 when chunked
 *   feed    one chunk of the body, in order
 *   drop    the request failed mid-body: free what the body holds (the rest is dropped)
 *   end     the body is complete: 0 hands the upload to a worker (NULL: nothing to check)
 *   run     on a worker thread: the job; returns when the answer is ready
 *   answer  after run: the answer
 */
typedef struct route_upload {
    int (*begin)(void *arg, const route_request *req, bool length_known, size_t length,
                 void **state, char *detail, size_t detail_len);
    int (*feed)(void *state, const char *data, size_t size, char *detail, size_t detail_len);
    void (*drop)(void *state);
    int (*end)(void *state, char *detail, size_t detail_len);
    void (*run)(void *state);
    void (*answer)(void *state, route_response *out);
    void (*free)(void *state);
} route_upload;

enum route_flags {
    ROUTE_LISTED = 1,     /* listed by GET /v1/info ("GET /v1/runs") */
    ROUTE_PROBE = 2,      /* its answers (a 503 of readyz too) are states, not refused requests */
    ROUTE_PAGE = 4,       /* a page a browser opens: needs a token (when tokens are on), asked for
                             with the browser's own login prompt */
    ROUTE_UNLABELLED = 8, /* counted in the metrics as unmatched, under no label of its own */
};

struct route_entry {
    const char *method;                /* "GET" (HEAD too), "POST", "DELETE" */
    const char *pattern;               /* "/v1/runs/{run}" */
    const char *label;                 /* the metrics route label; NULL: the pattern */
    unsigned flags;                    /* route_flags */
    const route_errors *errors;        /* NULL: route_problem_errors */
    bool (*accepts)(const char *path); /* NULL, or whether a path the pattern fits is this
                                          route's (the dashboard's files) */
    route_handle_fn handle;            /* a route without a body ... */
    const route_upload *upload;        /* ... or an upload */
};

typedef struct route_table {
    const route_entry *entries;
    size_t count;
    const auth_policy *auth; /* which paths need a token (auth.h); NULL: none */
    void *arg;               /* handed to every handler and upload begin */
} route_table;

/* What route_find found for a method and a path. */
typedef struct route_match {
    const route_entry *route;      /* NULL: no route takes this method here */
    const route_entry *path_route; /* the first route of the path whatever its method, or NULL
                                      (a 404); labels a 405 */
    const char *segment;           /* in the path: the first {name}'s segment ... */
    size_t segment_len;            /* ... and its length (0: none) */
    char allow[128];               /* the methods the path takes ("GET, HEAD, DELETE") */
} route_match;

/* Finds the route of method (HEAD finds GET routes) and path. */
void route_find(const route_table *t, const char *method, const char *path, route_match *m);

/* The error format of a path: its route's, or for a path no route takes, that of the routes
 * sharing most leading segments with it (so /v2/nothing answers as the /v2 routes do). */
const route_errors *route_errors_for(const route_table *t, const char *path);

/* Fills out with an error answer in errs' format (body NULL when out of memory). */
void route_error(const route_errors *errs, int status, const char *detail, const char *request_id,
                 route_response *out);

/* The 404 and 405 answers of a path no route takes for a method (m from route_find). */
void route_not_found(const route_table *t, const char *method, const char *path,
                     const route_match *m, const char *request_id, route_response *out);

/* One request without a body run through the table: 404, 405 or its handler's answer, an
 * error without a body written in the route's format. req->route and req->segment are set
 * here. For handlers and tests; an upload route answers 500. */
void route_answer(const route_table *t, const route_request *req, route_response *out);

#endif
