/*
 * json_writer.c - appends JSON text to a growing buffer (see json_writer.h for why not cJSON).
 */
#include "base/json_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

/* First allocation: most answers (C up to ~30) fit in 4 KiB. */
#define JSON_WRITER_INITIAL_CAP 4096

void json_writer_init(json_writer *w)
{
    memset(w, 0, sizeof *w);
    w->first[0] = true;
}

void json_writer_free(json_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

static void reserve(json_writer *w, size_t more)
{
    if (w->failed)
        return;
    if (more > SIZE_MAX - w->len - 1) {
        w->failed = true;
        return;
    }
    size_t need = w->len + more + 1;
    if (need <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : JSON_WRITER_INITIAL_CAP;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *nb = realloc(w->buf, cap);
    if (!nb) {
        w->failed = true;
        return;
    }
    w->buf = nb;
    w->cap = cap;
}

static void append(json_writer *w, const char *s, size_t n)
{
    reserve(w, n);
    if (w->failed)
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* The comma before a value (not after a key: the key wrote it). */
static void separate(json_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        append(w, ",", 1);
    w->first[w->depth] = false;
}

static void open_level(json_writer *w, char c)
{
    separate(w);
    append(w, &c, 1);
    if (w->depth + 1 >= JSON_WRITER_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    w->depth++;
    w->first[w->depth] = true;
}

static void close_level(json_writer *w, char c)
{
    append(w, &c, 1);
    if (w->depth > 0)
        w->depth--;
}

void json_object_begin(json_writer *w)
{
    open_level(w, '{');
}

void json_object_end(json_writer *w)
{
    close_level(w, '}');
}

void json_array_begin(json_writer *w)
{
    open_level(w, '[');
}

void json_array_end(json_writer *w)
{
    close_level(w, ']');
}

/* s as a JSON string. Text a client sent may be any bytes: well-formed UTF-8 characters pass,
 * any other byte becomes U+FFFD, so the output is always valid JSON in UTF-8. */
static void quoted(json_writer *w, const char *s)
{
    append(w, "\"", 1);
    const unsigned char *end = (const unsigned char *)s + strlen(s);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': append(w, "\\\"", 2); break;
        case '\\': append(w, "\\\\", 2); break;
        case '\n': append(w, "\\n", 2); break;
        case '\r': append(w, "\\r", 2); break;
        case '\t': append(w, "\\t", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                append(w, esc, 6);
            } else if (*p < 0x80) {
                append(w, (const char *)p, 1);
            } else {
                size_t n = text_utf8_sequence(p, (size_t)(end - p));
                if (n) {
                    append(w, (const char *)p, n);
                    p += n - 1;
                } else {
                    append(w, "\\ufffd", 6);
                }
            }
        }
    }
    append(w, "\"", 1);
}

void json_key(json_writer *w, const char *key)
{
    separate(w);
    quoted(w, key);
    append(w, ":", 1);
    w->after_key = true;
}

void json_string(json_writer *w, const char *s)
{
    separate(w);
    quoted(w, s ? s : "");
}

void json_number(json_writer *w, double v)
{
    separate(w);
    if (!isfinite(v)) {
        append(w, "null", 4);
        return;
    }
    char num[40];
    int n = snprintf(num, sizeof num, "%.17g", v);
    append(w, num, (size_t)n);
}

void json_number_short(json_writer *w, double v)
{
    separate(w);
    if (!isfinite(v)) {
        append(w, "null", 4);
        return;
    }
    char num[32];
    int n = snprintf(num, sizeof num, "%.6g", v);
    append(w, num, (size_t)n);
}

void json_uint(json_writer *w, uint64_t v)
{
    separate(w);
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    append(w, num, (size_t)n);
}

void json_int(json_writer *w, int64_t v)
{
    separate(w);
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);
    append(w, num, (size_t)n);
}

void json_bool(json_writer *w, bool v)
{
    separate(w);
    append(w, v ? "true" : "false", v ? 4 : 5);
}

void json_null(json_writer *w)
{
    separate(w);
    append(w, "null", 4);
}

void json_number_array(json_writer *w, const double *v, size_t n)
{
    json_array_begin(w);
    for (size_t i = 0; i < n; i++)
        json_number(w, v[i]);
    json_array_end(w);
}

void json_uint_array(json_writer *w, const uint64_t *v, size_t n)
{
    json_array_begin(w);
    for (size_t i = 0; i < n; i++)
        json_uint(w, v[i]);
    json_array_end(w);
}

char *json_writer_finish(json_writer *w, size_t *len)
{
    if (w->failed || !w->buf) {
        json_writer_free(w);
        return NULL;
    }
    char *out = w->buf;
    if (len)
        *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return out;
}
