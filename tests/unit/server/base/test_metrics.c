/*
 * test_metrics.c - the Prometheus exposition: names, labels, cumulative buckets, rejections,
 * and the cap on route labels (unknown paths share one series).
 */
#include <stdlib.h>

#include "base/metrics.h"
#include "testing.h"

static const char *const routes[] = {"/v1/evaluate", "/livez"};

static void test_render(void)
{
    metrics *m = metrics_new(routes, 2);
    CHECK(m != NULL);
    if (!m)
        return;
    metrics_request_started(m);
    metrics_request_done(m, 0, 200, 0.02, 5000);
    metrics_request_started(m);
    metrics_request_done(m, 0, 422, 0.003, 100);
    metrics_request_started(m);
    metrics_request_done(m, 99, 404, 0.0001, 0); /* out of range: "unmatched" */
    metrics_request_started(m);                  /* still in flight */
    metrics_rejected(m, METRICS_REJECT_INCONSISTENT);
    metrics_rejected(m, metrics_reason_for_status(413));
    metrics_rejected(m, metrics_reason_for_status(405)); /* a method, not a missing route */
    metrics_evaluation(m, 0.015);
    size_t len = 0;
    char *text = metrics_render(m, 3, true, "9.9.9", "scalar", &len);
    CHECK(text != NULL && strlen(text) == len);
    if (text) {
        CHECK(strstr(text, "segloss_build_info{version=\"9.9.9\",kernel=\"scalar\"} 1\n"));
        CHECK(strstr(text, "segloss_http_requests_total{route=\"/v1/evaluate\","
                           "status=\"200\"} 1\n"));
        CHECK(strstr(text, "segloss_http_requests_total{route=\"/v1/evaluate\","
                           "status=\"422\"} 1\n"));
        CHECK(strstr(text, "segloss_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"));
        /* cumulative: 0.003 is under 0.005, 0.02 under 0.025 */
        CHECK(strstr(text, "segloss_http_request_duration_seconds_bucket{route=\"/v1/evaluate\","
                           "le=\"0.005\"} 1\n"));
        CHECK(strstr(text, "segloss_http_request_duration_seconds_bucket{route=\"/v1/evaluate\","
                           "le=\"0.025\"} 2\n"));
        CHECK(strstr(text, "segloss_http_request_duration_seconds_bucket{route=\"/v1/evaluate\","
                           "le=\"+Inf\"} 2\n"));
        CHECK(strstr(text, "segloss_http_request_duration_seconds_count{"
                           "route=\"/v1/evaluate\"} 2\n"));
        CHECK(strstr(text, "segloss_http_request_body_bytes_count 2\n"));
        CHECK(strstr(text, "segloss_evaluation_seconds_count 1\n"));
        CHECK(strstr(text, "segloss_http_requests_in_flight 1\n"));
        CHECK(strstr(text, "segloss_evaluation_queue_waiting 3\n"));
        CHECK(strstr(text, "segloss_draining 1\n"));
        CHECK(strstr(text, "segloss_rejections_total{reason=\"inconsistent\"} 1\n"));
        CHECK(strstr(text, "segloss_rejections_total{reason=\"body_too_large\"} 1\n"));
        CHECK(strstr(text, "# TYPE segloss_http_requests_total counter\n"));
        /* bounds as Prometheus clients print them: exact integers, no exponent */
        CHECK(strstr(text, "segloss_http_request_body_bytes_bucket{le=\"1048576\"} 2\n"));
        CHECK(strstr(text, "segloss_http_request_body_bytes_bucket{le=\"1073741824\"} 2\n"));
        CHECK(strstr(text, "segloss_http_request_body_bytes_bucket{le=\"4096\"} 1\n"));
        CHECK(!strstr(text, "e+"));
        CHECK(strstr(text, "segloss_http_request_duration_seconds_bucket{route=\"/v1/evaluate\","
                           "le=\"2.5\"} 2\n"));
        CHECK(strstr(text, "segloss_rejections_total{reason=\"method_not_allowed\"} 1\n"));
        CHECK(strstr(text, "segloss_rejections_total{reason=\"not_found\"} 0\n"));
        CHECK(text[len - 1] == '\n');
        free(text);
    }
    metrics_free(m);
}

int main(void)
{
    RUN(test_render);
    return TESTS_DONE();
}
