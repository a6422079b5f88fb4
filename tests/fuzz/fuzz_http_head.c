/*
 * fuzz_http_head.c - libFuzzer harness for the request head checks and the percent-decoder
 * (server/http/http_head.c): what every request passes before a route sees it.
 *
 * fuzz-extra-src: server/http/http_head.c
 *
 * Input: a request head as sent, "METHOD TARGET VERSION\r\n" then "Name: value\r\n" lines (a
 * bare "\n" ends a line too, like MHD; a line without ':' is skipped; a NUL byte in a line cuts
 * it, as MHD's strings are C strings). The target is split at '?' into the path (through
 * http_target_path) and the query ('&'-separated, each split at the first '='), and every piece
 * is decoded with http_percent_decode.
 *
 * Checked: http_head_check returns 0, 400 or 501 with a NUL-terminated message when it refuses;
 * it never passes a head with both Content-Length and Transfer-Encoding, two Host headers, or
 * two different Content-Length values; http_target_path points into the target (or at "/");
 * a decoded piece is no longer than its input, holds no NUL, is NUL-terminated, decodes the
 * same in place, and re-encoding every byte then decoding gives it back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/http_head",
                                                "tests/crashers/http_head", NULL};

/* MHD keeps the head in its connection memory; this many lines is beyond any real request. */
#define FUZZ_MAX_HEADERS 64

/* Decodes in[0..len) and checks the invariants; the http_decode_result. */
static int decode_checked(const char *in, size_t len)
{
    char *out = malloc(len + 1);
    char *again = malloc(3 * len + 1);
    char *back = malloc(3 * len + 1);
    if (!out || !again || !back)
        abort();
    size_t n = (size_t)-1;
    http_decode_result rc = http_percent_decode(in, len, out, &n);
    if (rc == HTTP_DECODE_OK) {
        if (n > len || out[n] != '\0' || memchr(out, '\0', n))
            abort();
        /* every byte re-encoded as %XX decodes back to the same bytes */
        static const char hex[] = "0123456789ABCDEF";
        for (size_t i = 0; i < n; i++) {
            again[3 * i] = '%';
            again[3 * i + 1] = hex[(unsigned char)out[i] >> 4];
            again[3 * i + 2] = hex[(unsigned char)out[i] & 15];
        }
        size_t m = 0;
        if (http_percent_decode(again, 3 * n, back, &m) != HTTP_DECODE_OK || m != n ||
            memcmp(back, out, n) != 0)
            abort();
        /* the in-place form gives the same */
        memcpy(again, in, len);
        if (http_percent_decode(again, len, again, &m) != HTTP_DECODE_OK || m != n ||
            memcmp(again, out, n) != 0)
            abort();
    } else if (rc != HTTP_DECODE_MALFORMED && rc != HTTP_DECODE_NUL) {
        abort();
    }
    free(out);
    free(again);
    free(back);
    return rc;
}

/* Decodes every piece of a target; 0, or the first error. */
static int decode_target(const char *target)
{
    const char *path = http_target_path(target);
    if (!path || (path != target && strcmp(path, "/") != 0 &&
                  (path < target || path > target + strlen(target))))
        abort();
    const char *q = strchr(path, '?');
    size_t path_len = q ? (size_t)(q - path) : strlen(path);
    int rc = decode_checked(path, path_len);
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t pair_len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', pair_len);
        size_t key_len = eq ? (size_t)(eq - p) : pair_len;
        int k = decode_checked(p, key_len);
        int v = eq ? decode_checked(eq + 1, pair_len - key_len - 1) : 0;
        if (!rc)
            rc = k ? k : v;
        p = amp ? amp + 1 : NULL;
    }
    return rc;
}

static int run(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    http_header headers[FUZZ_MAX_HEADERS];
    size_t count = 0;
    char *line = text, *next;
    char *method = NULL, *target = NULL, *version = NULL;
    for (; line && count < FUZZ_MAX_HEADERS; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        if (!method) {
            method = line;
            target = strchr(line, ' ');
            if (target) {
                *target++ = '\0';
                version = strrchr(target, ' ');
                if (version)
                    *version++ = '\0';
            }
            continue;
        }
        if (!n)
            break; /* the end of the head */
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        headers[count++] = (http_header){line, value};
    }
    char detail[256];
    memset(detail, 'x', sizeof detail);
    int status = http_head_check(version ? version : "", headers, count, detail, sizeof detail);
    if (status != 0 && status != 400 && status != 501)
        abort();
    if (status && !memchr(detail, '\0', sizeof detail))
        abort();
    if (status == 0) {
        size_t lengths = 0, encodings = 0, hosts = 0;
        const char *first_length = NULL;
        for (size_t i = 0; i < count; i++) {
            if (strcasecmp(headers[i].name, "Content-Length") == 0) {
                if (lengths++ &&
                    strtoull(headers[i].value, NULL, 10) != strtoull(first_length, NULL, 10))
                    abort(); /* two different lengths passed */
                first_length = headers[i].value;
            }
            encodings += strcasecmp(headers[i].name, "Transfer-Encoding") == 0;
            hosts += strcasecmp(headers[i].name, "Host") == 0;
        }
        if ((lengths && encodings) || encodings > 1 || hosts > 1)
            abort();
    }
    int rc = target ? decode_target(target) : 0;
    free(text);
    return status ? -status : rc;
}

int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    return run(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)run(data, size);
    return 0;
}
