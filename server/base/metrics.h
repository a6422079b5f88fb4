/*
 * metrics.h - the daemon's Prometheus metrics (text exposition format 0.0.4).
 *
 * All names start with segloss_. Requests are counted by route and status; latency and body
 * size are histograms; the in-flight gauge, evaluation seconds, batch items by when they were
 * evaluated, rejections by reason and segloss_build_info complete the set. Routes are labelled by
 * their pattern (given at creation), never by the raw path, so a scanner probing random URLs cannot
 * blow up the series count: any unknown path is the one label "unmatched".
 *
 * Thread-safe: one mutex guards the counters (a few increments per request).
 */
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum metrics_reject {
    METRICS_REJECT_BODY_TOO_LARGE,
    METRICS_REJECT_UPLOAD_TIMEOUT,
    METRICS_REJECT_QUEUE_FULL,
    METRICS_REJECT_DRAINING,
    METRICS_REJECT_MALFORMED,          /* 400 */
    METRICS_REJECT_UNSUPPORTED,        /* 415 */
    METRICS_REJECT_INCONSISTENT,       /* 422 */
    METRICS_REJECT_NOT_FOUND,          /* 404 */
    METRICS_REJECT_INTERNAL,           /* 500 and out of memory */
    METRICS_REJECT_UNAUTHORIZED,       /* 401 / 403: no, a wrong or a read-only token */
    METRICS_REJECT_STORAGE,            /* 507: the runs store's disk is full */
    METRICS_REJECT_METHOD_NOT_ALLOWED, /* 405: a route asked with a method it does not take */
    METRICS_REJECT_COUNT
} metrics_reject;

typedef struct metrics metrics;

/* route_names[0..route_count) label the routes; index route_count is "unmatched".
 * The strings must outlive the metrics. NULL on OOM. */
metrics *metrics_new(const char *const *route_names, size_t route_count);
void metrics_free(metrics *m);

void metrics_request_started(metrics *m);
/* One finished request: route index (route_count for unmatched), status, seconds from its
 * first byte to its last, and body bytes received. */
void metrics_request_done(metrics *m, size_t route, int status, double seconds, size_t body);
void metrics_rejected(metrics *m, metrics_reject reason);
void metrics_evaluation(metrics *m, double seconds);
/* The batch items of one answered evaluation, during_upload of them evaluated while the body
 * was still arriving (POST /v1/evaluate's intake): whether clients' part order gets overlap. */
void metrics_batch_items(metrics *m, size_t items, size_t during_upload);

/* The reason a status is counted under, for error answers. */
metrics_reject metrics_reason_for_status(int status);

/* The exposition text (caller frees). queue_waiting and draining are sampled by the caller. */
char *metrics_render(metrics *m, size_t queue_waiting, bool draining, const char *version,
                     const char *kernel, size_t *len);

#endif
