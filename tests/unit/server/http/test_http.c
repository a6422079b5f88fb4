/*
 * test_http.c - the HTTP layer in-process: routes added to the table (route.h) get plain
 * request values and send ETag, Cache-Control and an extra header; the result hook sees every
 * successful evaluation and can turn it into an error; drain and stop.
 * The end-to-end behaviour of the daemon is tests/e2e/test_http.py.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "api/routes.h"
#include "base/log.h"
#include "http/http.h"
#include "testing.h"

static atomic_int hook_calls;

static void ext_handle(void *arg, const route_request *req, route_response *out)
{
    (void)arg;
    if (strcmp(req->path, "/x/cached") == 0 && req->if_none_match &&
        strcmp(req->if_none_match, "\"v1\"") == 0) {
        out->status = 304;
        snprintf(out->etag, sizeof out->etag, "\"v1\"");
        return;
    }
    const char *q = req->query ? req->query(req->query_arg, "q") : NULL;
    char text[256];
    int n = snprintf(text, sizeof text, "%s %s q=%s", req->method, req->path, q ? q : "-");
    out->status = 200;
    out->content_type = "text/plain";
    out->body = strdup(text);
    out->body_len = (size_t)n;
    snprintf(out->etag, sizeof out->etag, "\"v1\"");
    out->cache_control = "no-cache";
    out->header_name = "X-Next-Page-Token";
    snprintf(out->header_value, sizeof out->header_value, "tok");
}

static int result_hook(void *arg, const evaluation_record *rec, char *detail, size_t detail_len)
{
    (void)arg;
    atomic_fetch_add(&hook_calls, 1);
    if (!rec->result || !rec->labels || rec->labels->rank != 3 || !rec->answer)
        return 500;
    if (rec->params->run && strcmp(rec->params->run, "conflict") == 0) {
        snprintf(detail, detail_len, "step recorded with other parameters");
        return 409;
    }
    return 200;
}

static unsigned short free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* One HTTP/1.0 exchange; returns the whole response (caller frees) or NULL. */
static char *exchange(unsigned short port, const char *head, const void *body, size_t body_len,
                      size_t *out_len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    if (write(fd, head, strlen(head)) < 0 || (body_len && write(fd, body, body_len) < 0)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t n;
    while (buf && (n = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    close(fd);
    if (buf)
        buf[len] = '\0';
    *out_len = len;
    return buf;
}

static int status_of(const char *response)
{
    return response && strncmp(response, "HTTP/1.", 7) == 0 ? atoi(response + 9) : 0;
}

/* A (1,2,2,2) float32 .npy and a 2x2 grey PNG, as a multipart body. */
static size_t evaluate_body(char *out, size_t cap)
{
    unsigned char npy[128 + 32];
    const char header[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2, 2), }";
    memset(npy, ' ', 128);
    memcpy(npy, "\x93NUMPY\x01\x00\x76\x00", 10);
    memcpy(npy + 10, header, sizeof header - 1);
    npy[127] = '\n';
    for (int i = 0; i < 8; i++) {
        float v = (float)(i % 3) - 1.0f;
        memcpy(npy + 128 + 4 * i, &v, 4);
    }
    uint8_t pixels[4] = {0, 1, 1, 0};
    uint8_t *png = NULL;
    size_t png_len = 0;
    char detail[128];
    if (segloss_png_encode(pixels, 2, 2, 1, &png, &png_len, detail, sizeof detail) != 0)
        return 0;
    size_t n = (size_t)snprintf(out, cap,
                                "--bb\r\nContent-Disposition: form-data; "
                                "name=\"logits\"\r\n\r\n");
    memcpy(out + n, npy, sizeof npy);
    n += sizeof npy;
    n += (size_t)snprintf(out + n, cap - n,
                          "\r\n--bb\r\nContent-Disposition: form-data; name=\"mask\"\r\n\r\n");
    memcpy(out + n, png, png_len);
    n += png_len;
    n += (size_t)snprintf(out + n, cap - n, "\r\n--bb--\r\n");
    free(png);
    return n;
}

static void test_server(void)
{
    server_config cfg;
    config_defaults(&cfg);
    cfg.port = free_port();
    cfg.threads = 2;
    cfg.workers = 1;
    cfg.eval_threads = 1;
    static const route_entry x_routes[] = {
        {"GET", "/x/{thing}", "/x", ROUTE_LISTED, NULL, NULL, ext_handle, NULL},
        {"DELETE", "/x/{thing}", "/x", 0, NULL, NULL, ext_handle, NULL},
    };
    routes_options ro = {.on_result = result_hook, .extra = x_routes, .extra_count = 2};
    routes *rt = NULL;
    http_server *s = NULL;
    char err[256] = "";
    CHECK_MSG(routes_new(&cfg, &ro, &rt, err, sizeof err) == 0, "%s", err);
    if (!rt)
        return;
    CHECK_MSG(http_server_start(&cfg, routes_table(rt), &s, err, sizeof err) == 0, "%s", err);
    if (!s) {
        routes_close(rt);
        return;
    }
    size_t len = 0;
    char *r = exchange((unsigned short)cfg.port, "GET /x/abc?q=7 HTTP/1.0\r\n\r\n", NULL, 0, &len);
    CHECK_EQ_INT(status_of(r), 200);
    CHECK(r && strstr(r, "\r\n\r\nGET /x/abc q=7"));
    CHECK(r && strstr(r, "ETag: \"v1\"\r\n"));
    CHECK(r && strstr(r, "Cache-Control: no-cache\r\n"));
    CHECK(r && strstr(r, "X-Next-Page-Token: tok\r\n"));
    CHECK(r && strstr(r, "X-Request-Id: "));
    free(r);
    r = exchange((unsigned short)cfg.port,
                 "GET /x/cached HTTP/1.0\r\nIf-None-Match: \"v1\"\r\n\r\n", NULL, 0, &len);
    CHECK_EQ_INT(status_of(r), 304);
    free(r);
    r = exchange((unsigned short)cfg.port, "DELETE /x/y HTTP/1.0\r\n\r\n", NULL, 0, &len);
    CHECK(r && strstr(r, "DELETE /x/y q=-")); /* each method its route */
    free(r);
    r = exchange((unsigned short)cfg.port, "GET /v1/info HTTP/1.0\r\n\r\n", NULL, 0, &len);
    CHECK(r && strstr(r, "\"GET /x/{thing}\"") && strstr(r, "\"POST /v1/evaluate\""));
    free(r);
    r = exchange((unsigned short)cfg.port, "GET /y HTTP/1.0\r\n\r\n", NULL, 0, &len);
    CHECK_EQ_INT(status_of(r), 404);
    free(r);

    char body[4096], head[256];
    size_t blen = evaluate_body(body, sizeof body);
    CHECK(blen > 0);
    snprintf(head, sizeof head,
             "POST /v1/evaluate?run=ok HTTP/1.0\r\nContent-Type: multipart/form-data; "
             "boundary=bb\r\nContent-Length: %zu\r\n\r\n",
             blen);
    r = exchange((unsigned short)cfg.port, head, body, blen, &len);
    CHECK_EQ_INT(status_of(r), 200);
    CHECK(r && strstr(r, "\"run\":\"ok\""));
    free(r);
    snprintf(head, sizeof head,
             "POST /v1/evaluate?run=conflict HTTP/1.0\r\nContent-Type: multipart/form-data; "
             "boundary=bb\r\nContent-Length: %zu\r\n\r\n",
             blen);
    r = exchange((unsigned short)cfg.port, head, body, blen, &len);
    CHECK_EQ_INT(status_of(r), 409);
    CHECK(r && strstr(r, "application/problem+json") && strstr(r, "other parameters"));
    free(r);
    CHECK_EQ_INT(atomic_load(&hook_calls), 2);

    r = exchange((unsigned short)cfg.port, "GET /metrics HTTP/1.0\r\n\r\n", NULL, 0, &len);
    CHECK(r && strstr(r, "segloss_http_requests_total{route=\"/x\",status=\"200\"} 2"));
    CHECK(r && strstr(r, "segloss_http_requests_total{route=\"/x\",status=\"304\"} 1"));
    free(r);

    http_server_drain(s);
    CHECK_EQ_INT(http_server_wait_idle(s, 5), 0);
    r = exchange((unsigned short)cfg.port, "GET /livez HTTP/1.0\r\n\r\n", NULL, 0, &len);
    CHECK(r == NULL || len == 0); /* no longer listening */
    free(r);
    http_server_stop(s);
    routes_close(rt);
}

int main(void)
{
    /* The server logs one line per request; keep them out of the test's output. */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
        log_set_fd(devnull);
    RUN(test_server);
    return TESTS_DONE();
}
