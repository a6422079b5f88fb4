/*
 * metrics.c - counters and histograms behind GET /metrics.
 */
#include "base/metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>

/* The statuses the daemon answers; anything else is counted as "other". */
static const int status_codes[] = {200, 304, 400, 401, 403, 404, 405,
                                   408, 413, 415, 422, 500, 503, 507};
#define STATUS_SLOTS (sizeof status_codes / sizeof status_codes[0] + 1)

/* Seconds: from a health probe (~100 us) to a large upload over a slow link. */
static const double latency_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5,   1,     2.5,  5,     10,   30,  60};
#define LATENCY_BUCKETS (sizeof latency_bounds / sizeof latency_bounds[0])
/* Bytes: 1 KiB to 1 GiB in powers of 4. */
static const double body_bounds[] = {1024.0,     4096.0,      16384.0,     65536.0,
                                     262144.0,   1048576.0,   4194304.0,   16777216.0,
                                     67108864.0, 268435456.0, 1073741824.0};
#define BODY_BUCKETS (sizeof body_bounds / sizeof body_bounds[0])

static const char *const reject_names[METRICS_REJECT_COUNT] = {
    "body_too_large", "upload_timeout", "queue_full",   "draining",
    "malformed",      "unsupported",    "inconsistent", "not_found",
    "internal",       "unauthorized",   "storage_full", "method_not_allowed"};

typedef struct histogram {
    const double *bounds;
    size_t n;
    uint64_t *counts; /* n + 1, the last is +Inf */
    double sum;
    uint64_t total;
} histogram;

struct metrics {
    pthread_mutex_t lock;
    const char *const *routes;
    size_t route_count;
    uint64_t *requests; /* [(route_count + 1) * STATUS_SLOTS] */
    histogram *latency; /* [route_count + 1] */
    histogram body;
    histogram evaluation;
    uint64_t items_during_upload, items_after_upload;
    uint64_t rejected[METRICS_REJECT_COUNT];
    long in_flight;
};

static int histogram_init(histogram *h, const double *bounds, size_t n)
{
    h->bounds = bounds;
    h->n = n;
    h->counts = calloc(n + 1, sizeof *h->counts);
    return h->counts ? 0 : -1;
}

static void histogram_observe(histogram *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->total++;
}

metrics *metrics_new(const char *const *route_names, size_t route_count)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->routes = route_names;
    m->route_count = route_count;
    m->requests = calloc((route_count + 1) * STATUS_SLOTS, sizeof *m->requests);
    m->latency = calloc(route_count + 1, sizeof *m->latency);
    if (!m->requests || !m->latency)
        goto fail;
    for (size_t r = 0; r <= route_count; r++)
        if (histogram_init(&m->latency[r], latency_bounds, LATENCY_BUCKETS))
            goto fail;
    if (histogram_init(&m->body, body_bounds, BODY_BUCKETS) ||
        histogram_init(&m->evaluation, latency_bounds, LATENCY_BUCKETS))
        goto fail;
    return m;
fail:
    metrics_free(m);
    return NULL;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    if (m->latency)
        for (size_t r = 0; r <= m->route_count; r++)
            free(m->latency[r].counts);
    free(m->latency);
    free(m->requests);
    free(m->body.counts);
    free(m->evaluation.counts);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static size_t status_slot(int status)
{
    for (size_t i = 0; i < STATUS_SLOTS - 1; i++)
        if (status_codes[i] == status)
            return i;
    return STATUS_SLOTS - 1;
}

void metrics_request_started(metrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->in_flight++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_request_done(metrics *m, size_t route, int status, double seconds, size_t body)
{
    if (route > m->route_count)
        route = m->route_count;
    pthread_mutex_lock(&m->lock);
    m->in_flight--;
    m->requests[route * STATUS_SLOTS + status_slot(status)]++;
    histogram_observe(&m->latency[route], seconds);
    if (body > 0)
        histogram_observe(&m->body, (double)body);
    pthread_mutex_unlock(&m->lock);
}

void metrics_rejected(metrics *m, metrics_reject reason)
{
    if ((unsigned)reason >= METRICS_REJECT_COUNT)
        return;
    pthread_mutex_lock(&m->lock);
    m->rejected[reason]++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_evaluation(metrics *m, double seconds)
{
    pthread_mutex_lock(&m->lock);
    histogram_observe(&m->evaluation, seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_batch_items(metrics *m, size_t items, size_t during_upload)
{
    if (during_upload > items)
        during_upload = items;
    pthread_mutex_lock(&m->lock);
    m->items_during_upload += during_upload;
    m->items_after_upload += items - during_upload;
    pthread_mutex_unlock(&m->lock);
}

metrics_reject metrics_reason_for_status(int status)
{
    switch (status) {
    case 408: return METRICS_REJECT_UPLOAD_TIMEOUT;
    case 413: return METRICS_REJECT_BODY_TOO_LARGE;
    case 415: return METRICS_REJECT_UNSUPPORTED;
    case 422: return METRICS_REJECT_INCONSISTENT;
    case 404: return METRICS_REJECT_NOT_FOUND;
    case 405: return METRICS_REJECT_METHOD_NOT_ALLOWED;
    case 503: return METRICS_REJECT_QUEUE_FULL;
    case 400: return METRICS_REJECT_MALFORMED;
    case 401:
    case 403: return METRICS_REJECT_UNAUTHORIZED;
    case 507: return METRICS_REJECT_STORAGE;
    default: return METRICS_REJECT_INTERNAL;
    }
}

/* A growing text buffer for the exposition. */
typedef struct text {
    char *buf;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->buf && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 8192;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            t->failed = 1;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
}

/* A bucket bound as Prometheus clients print it: whole numbers exactly ("1048576", never
 * "1.04858e+06"), fractions with the digits they need ("0.005"). */
static void format_bound(char *buf, size_t len, double bound)
{
    if (bound == (double)(long long)bound && bound < 9007199254740992.0)
        snprintf(buf, len, "%lld", (long long)bound);
    else
        snprintf(buf, len, "%.17g", bound);
    /* %.17g of 0.005 is 0.0050000000000000001: take the shortest text that reads back */
    for (int digits = 1; digits <= 17 && bound != (double)(long long)bound; digits++) {
        snprintf(buf, len, "%.*g", digits, bound);
        if (strtod(buf, NULL) == bound)
            break;
    }
}

static void put_histogram(text *t, const char *name, const char *labels, const histogram *h)
{
    uint64_t cumulative = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < h->n; i++) {
        cumulative += h->counts[i];
        char le[32];
        format_bound(le, sizeof le, h->bounds[i]);
        put(t, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, le,
            (unsigned long long)cumulative);
    }
    cumulative += h->counts[h->n];
    put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cumulative);
    put(t, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", h->sum);
    put(t, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        (unsigned long long)h->total);
}

char *metrics_render(metrics *m, size_t queue_waiting, bool draining, const char *version,
                     const char *kernel, size_t *len)
{
    text t = {0};
    pthread_mutex_lock(&m->lock);
    put(&t,
        "# HELP segloss_build_info Version of the running seglossd and its loss kernel.\n"
        "# TYPE segloss_build_info gauge\n"
        "segloss_build_info{version=\"%s\",kernel=\"%s\"} 1\n",
        version, kernel);
    put(&t, "# HELP segloss_http_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE segloss_http_requests_total counter\n");
    for (size_t r = 0; r <= m->route_count; r++) {
        const char *route = r < m->route_count ? m->routes[r] : "unmatched";
        for (size_t s = 0; s < STATUS_SLOTS; s++) {
            uint64_t v = m->requests[r * STATUS_SLOTS + s];
            if (!v)
                continue;
            if (s < STATUS_SLOTS - 1)
                put(&t, "segloss_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", route,
                    status_codes[s], (unsigned long long)v);
            else
                put(&t, "segloss_http_requests_total{route=\"%s\",status=\"other\"} %llu\n", route,
                    (unsigned long long)v);
        }
    }
    put(&t, "# HELP segloss_http_request_duration_seconds Time from a request's first byte to "
            "its answer.\n# TYPE segloss_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= m->route_count; r++) {
        if (!m->latency[r].total)
            continue;
        char labels[128];
        snprintf(labels, sizeof labels, "route=\"%s\"",
                 r < m->route_count ? m->routes[r] : "unmatched");
        put_histogram(&t, "segloss_http_request_duration_seconds", labels, &m->latency[r]);
    }
    put(&t, "# HELP segloss_http_request_body_bytes Request body sizes.\n"
            "# TYPE segloss_http_request_body_bytes histogram\n");
    put_histogram(&t, "segloss_http_request_body_bytes", "", &m->body);
    put(&t, "# HELP segloss_evaluation_seconds Decode and compute time of one evaluation.\n"
            "# TYPE segloss_evaluation_seconds histogram\n");
    put_histogram(&t, "segloss_evaluation_seconds", "", &m->evaluation);
    put(&t,
        "# HELP segloss_batch_items_total Batch items of answered evaluations, by when they were "
        "evaluated: during_upload while the body was still arriving, after_upload once it "
        "had.\n"
        "# TYPE segloss_batch_items_total counter\n"
        "segloss_batch_items_total{evaluated=\"during_upload\"} %llu\n"
        "segloss_batch_items_total{evaluated=\"after_upload\"} %llu\n",
        (unsigned long long)m->items_during_upload, (unsigned long long)m->items_after_upload);
    put(&t,
        "# HELP segloss_http_requests_in_flight Requests being received, queued or "
        "evaluated.\n# TYPE segloss_http_requests_in_flight gauge\n"
        "segloss_http_requests_in_flight %ld\n",
        m->in_flight);
    put(&t,
        "# HELP segloss_evaluation_queue_waiting Uploaded requests waiting for a worker.\n"
        "# TYPE segloss_evaluation_queue_waiting gauge\n"
        "segloss_evaluation_queue_waiting %zu\n",
        queue_waiting);
    put(&t,
        "# HELP segloss_draining 1 after SIGTERM while in-flight requests finish.\n"
        "# TYPE segloss_draining gauge\nsegloss_draining %d\n",
        draining ? 1 : 0);
    put(&t, "# HELP segloss_rejections_total Requests refused, by reason.\n"
            "# TYPE segloss_rejections_total counter\n");
    for (size_t i = 0; i < METRICS_REJECT_COUNT; i++)
        put(&t, "segloss_rejections_total{reason=\"%s\"} %llu\n", reject_names[i],
            (unsigned long long)m->rejected[i]);
    pthread_mutex_unlock(&m->lock);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    if (len)
        *len = t.len;
    return t.buf;
}
