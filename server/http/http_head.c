/*
 * http_head.c - request head checks and the percent-decoder (see http_head.h).
 */
#include "http/http_head.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Content-Length digits beyond which a value cannot be a body this server reads (20 digits
 * overflow 64 bits); longer is refused as malformed rather than parsed. */
#define HTTP_HEAD_MAX_LENGTH_DIGITS 19

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* value without its leading and trailing spaces and tabs: *start, *len. */
static void trim(const char *value, const char **start, size_t *len)
{
    size_t n = strlen(value);
    while (n && is_ows(*value)) {
        value++;
        n--;
    }
    while (n && is_ows(value[n - 1]))
        n--;
    *start = value;
    *len = n;
}

/* A Content-Length value: 1 to HTTP_HEAD_MAX_LENGTH_DIGITS digits, nothing else (not a list,
 * no sign). */
static bool length_value(const char *value, unsigned long long *out)
{
    const char *v;
    size_t n;
    trim(value, &v, &n);
    if (n == 0 || n > HTTP_HEAD_MAX_LENGTH_DIGITS)
        return false;
    unsigned long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (unsigned long long)(v[i] - '0');
    }
    *out = x;
    return true;
}

/* The one transfer coding this server reads: exactly "chunked", in any case. */
static bool chunked_value(const char *value)
{
    const char *v;
    size_t n;
    trim(value, &v, &n);
    return n == 7 && strncasecmp(v, "chunked", 7) == 0;
}

int http_head_check(const char *version, const http_header *headers, size_t count, char *detail,
                    size_t detail_len)
{
    size_t lengths = 0, encodings = 0, hosts = 0;
    unsigned long long length = 0;
    const char *encoding = NULL;
    for (size_t i = 0; i < count; i++) {
        const char *name = headers[i].name ? headers[i].name : "";
        const char *value = headers[i].value ? headers[i].value : "";
        if (strcasecmp(name, "Content-Length") == 0) {
            unsigned long long n = 0;
            if (!length_value(value, &n)) {
                snprintf(detail, detail_len,
                         "Content-Length must be one decimal number, not \"%.40s\"", value);
                return 400;
            }
            if (lengths++ && n != length) {
                snprintf(detail, detail_len,
                         "two different Content-Length headers (%llu and %llu): the body's "
                         "length is ambiguous",
                         length, n);
                return 400;
            }
            length = n;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            encodings++;
            if (!encoding || !chunked_value(value))
                encoding = value;
        } else if (strcasecmp(name, "Host") == 0) {
            hosts++;
        }
    }
    if (encodings && lengths) {
        snprintf(detail, detail_len,
                 "both Content-Length and Transfer-Encoding: the body's length is ambiguous; "
                 "send one of them");
        return 400;
    }
    bool http10 = strcmp(version, "HTTP/1.0") == 0 || version[0] == '\0';
    if (encodings && http10) {
        snprintf(detail, detail_len, "Transfer-Encoding is not allowed in an HTTP/1.0 request");
        return 400;
    }
    if (encodings > 1 || (encodings && !chunked_value(encoding))) {
        snprintf(detail, detail_len,
                 "Transfer-Encoding \"%.40s\" is not supported: send the body with "
                 "Content-Length or as Transfer-Encoding: chunked alone",
                 encodings > 1 && chunked_value(encoding) ? "chunked, chunked" : encoding);
        return 501;
    }
    if (hosts > 1) {
        snprintf(detail, detail_len, "more than one Host header");
        return 400;
    }
    if (!hosts && !http10) {
        snprintf(detail, detail_len, "an %.16s request needs a Host header", version);
        return 400;
    }
    return 0;
}

const char *http_target_path(const char *target)
{
    const char *rest = NULL;
    if (strncasecmp(target, "http://", 7) == 0)
        rest = target + 7;
    else if (strncasecmp(target, "https://", 8) == 0)
        rest = target + 8;
    if (!rest)
        return target;
    const char *slash = strchr(rest, '/');
    return slash ? slash : "/";
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

http_decode_result http_percent_decode(const char *in, size_t len, char *out, size_t *out_len)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (len - i < 3)
                return HTTP_DECODE_MALFORMED;
            int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
            if (hi < 0 || lo < 0)
                return HTTP_DECODE_MALFORMED;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0')
            return HTTP_DECODE_NUL;
        out[j++] = c;
    }
    out[j] = '\0';
    *out_len = j;
    return HTTP_DECODE_OK;
}
