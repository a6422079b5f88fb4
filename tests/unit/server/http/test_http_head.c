/*
 * test_http_head.c - the request head checks and the percent-decoder (server/http/http_head.c).
 */
#include <string.h>

#include "http/http_head.h"
#include "testing.h"

#define H(n, v) ((http_header){(n), (v)})

static int check_head(const char *version, const http_header *h, size_t n)
{
    char detail[256] = "";
    int status = http_head_check(version, h, n, detail, sizeof detail);
    CHECK(status == 0 || detail[0]);
    return status;
}

static void test_plain_requests_pass(void)
{
    http_header get[] = {H("Host", "x")};
    CHECK_EQ_INT(check_head("HTTP/1.1", get, 1), 0);
    http_header post[] = {H("Host", "x"), H("Content-Length", "123")};
    CHECK_EQ_INT(check_head("HTTP/1.1", post, 2), 0);
    http_header chunked[] = {H("host", "x"), H("transfer-encoding", " CHUNKED ")};
    CHECK_EQ_INT(check_head("HTTP/1.1", chunked, 2), 0);
    http_header same[] = {H("Host", "x"), H("Content-Length", "5"), H("content-length", "5")};
    CHECK_EQ_INT(check_head("HTTP/1.1", same, 3), 0);
    CHECK_EQ_INT(check_head("HTTP/1.0", NULL, 0), 0); /* HTTP/1.0 needs no Host */
}

static void test_smuggling_refused(void)
{
    http_header clte[] = {H("Host", "x"), H("Content-Length", "5"),
                          H("Transfer-Encoding", "chunked")};
    CHECK_EQ_INT(check_head("HTTP/1.1", clte, 3), 400);
    http_header tecl[] = {H("Host", "x"), H("TRANSFER-ENCODING", "chunked"),
                          H("content-length", "0")};
    CHECK_EQ_INT(check_head("HTTP/1.1", tecl, 3), 400);
    http_header two[] = {H("Host", "x"), H("Content-Length", "5"), H("Content-Length", "6")};
    CHECK_EQ_INT(check_head("HTTP/1.1", two, 3), 400);
    const char *bad[] = {"5, 6", "5,5", "+5", "-1", "", " ", "0x10", "5 6", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_header h[] = {H("Host", "x"), H("Content-Length", bad[i])};
        CHECK_MSG(check_head("HTTP/1.1", h, 2) == 400, "Content-Length \"%s\"", bad[i]);
    }
    /* with an unknown coding too: the ambiguity is what matters */
    http_header gz[] = {H("Host", "x"), H("Transfer-Encoding", "gzip"), H("Content-Length", "3")};
    CHECK_EQ_INT(check_head("HTTP/1.1", gz, 3), 400);
}

static void test_transfer_codings(void)
{
    const char *bad[] = {
        "gzip", "xchunked", "chunked, identity", "identity", "gzip, chunked", "chunked;q=1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_header h[] = {H("Host", "x"), H("Transfer-Encoding", bad[i])};
        CHECK_MSG(check_head("HTTP/1.1", h, 2) == 501, "Transfer-Encoding \"%s\"", bad[i]);
    }
    http_header twice[] = {H("Host", "x"), H("Transfer-Encoding", "chunked"),
                           H("Transfer-Encoding", "chunked")};
    CHECK_EQ_INT(check_head("HTTP/1.1", twice, 3), 501);
    http_header later[] = {H("Host", "x"), H("Transfer-Encoding", "chunked"),
                           H("Transfer-Encoding", "gzip")};
    CHECK_EQ_INT(check_head("HTTP/1.1", later, 3), 501);
    http_header old[] = {H("Transfer-Encoding", "chunked")};
    CHECK_EQ_INT(check_head("HTTP/1.0", old, 1), 400);
}

static void test_host(void)
{
    CHECK_EQ_INT(check_head("HTTP/1.1", NULL, 0), 400);
    http_header other[] = {H("Hostname", "x")};
    CHECK_EQ_INT(check_head("HTTP/1.1", other, 1), 400);
    http_header two[] = {H("Host", "a"), H("HOST", "b")};
    CHECK_EQ_INT(check_head("HTTP/1.1", two, 2), 400);
}

static void test_target_path(void)
{
    CHECK(strcmp(http_target_path("/v1/info"), "/v1/info") == 0);
    CHECK(strcmp(http_target_path("http://host/v1/info"), "/v1/info") == 0);
    CHECK(strcmp(http_target_path("HTTPS://host:8080/v1/runs/a"), "/v1/runs/a") == 0);
    CHECK(strcmp(http_target_path("http://host"), "/") == 0);
    CHECK(strcmp(http_target_path("*"), "*") == 0);
    CHECK(strcmp(http_target_path("httpx://host/a"), "httpx://host/a") == 0);
}

static int decode(const char *in, char *out, size_t *n)
{
    return http_percent_decode(in, strlen(in), out, n);
}

static void test_percent_decode(void)
{
    char out[64];
    size_t n = 0;
    CHECK_EQ_INT(decode("dd%252ex", out, &n), HTTP_DECODE_OK);
    CHECK(strcmp(out, "dd%2ex") == 0 && n == 6); /* once, never twice */
    CHECK_EQ_INT(decode("a%2541", out, &n), HTTP_DECODE_OK);
    CHECK(strcmp(out, "a%41") == 0);
    CHECK_EQ_INT(decode("s%75m%2Fx%2fy+z", out, &n), HTTP_DECODE_OK);
    CHECK(strcmp(out, "sum/x/y+z") == 0);
    CHECK_EQ_INT(decode("", out, &n), HTTP_DECODE_OK);
    CHECK(n == 0 && out[0] == '\0');
    CHECK_EQ_INT(decode("nultest%00junk", out, &n), HTTP_DECODE_NUL);
    CHECK_EQ_INT(decode("%00", out, &n), HTTP_DECODE_NUL);
    CHECK_EQ_INT(decode("1%00", out, &n), HTTP_DECODE_NUL);
    CHECK_EQ_INT(http_percent_decode("a\0b", 3, out, &n), HTTP_DECODE_NUL);
    CHECK_EQ_INT(decode("%", out, &n), HTTP_DECODE_MALFORMED);
    CHECK_EQ_INT(decode("ab%4", out, &n), HTTP_DECODE_MALFORMED);
    CHECK_EQ_INT(decode("%zz", out, &n), HTTP_DECODE_MALFORMED);
    CHECK_EQ_INT(decode("%g0", out, &n), HTTP_DECODE_MALFORMED);
    /* in place */
    char buf[] = "a%41%42c";
    CHECK_EQ_INT(http_percent_decode(buf, strlen(buf), buf, &n), HTTP_DECODE_OK);
    CHECK(strcmp(buf, "aABc") == 0 && n == 4);
    /* bytes >= 0x80 pass through as bytes */
    CHECK_EQ_INT(decode("%C3%A9", out, &n), HTTP_DECODE_OK);
    CHECK(n == 2 && (unsigned char)out[0] == 0xC3 && (unsigned char)out[1] == 0xA9);
}

int main(void)
{
    RUN(test_plain_requests_pass);
    RUN(test_smuggling_refused);
    RUN(test_transfer_codings);
    RUN(test_host);
    RUN(test_target_path);
    RUN(test_percent_decode);
    return TESTS_DONE();
}
