/*
 * log.c - formats request and event lines and writes each with a single write(2).
 *
 * The format and the output are the process-wide state: set once at start, read afterwards.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/json_writer.h"

static config_log_format log_format = CONFIG_LOG_JSON;
static int log_fd = STDERR_FILENO;

void log_set_format(config_log_format format)
{
    log_format = format;
}

void log_set_fd(int fd)
{
    log_fd = fd;
}

static void timestamp(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03ldZ", base, ts.tv_nsec / 1000000);
}

static void emit(const char *s, size_t len)
{
    /* Best effort: a full disk must not take the daemon down. */
    while (len > 0) {
        ssize_t n = write(log_fd, s, len);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

void log_request(const log_request_line *l)
{
    char ts[48];
    timestamp(ts, sizeof ts);
    if (log_format == CONFIG_LOG_TEXT) {
        char line[1024];
        int n =
            snprintf(line, sizeof line, "%s %s %s %d %zuB in %zuB out %.3fms id=%s%s%s\n", ts,
                     l->method ? l->method : "-", l->path ? l->path : "-", l->status, l->bytes_in,
                     l->bytes_out, l->duration_ms, l->request_id ? l->request_id : "-",
                     l->detail ? " : " : "", l->detail ? l->detail : "");
        if (n > 0)
            emit(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        return;
    }
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "ts");
    json_string(&w, ts);
    json_key(&w, "level");
    json_string(&w, l->status >= 500 ? "error" : "info");
    json_key(&w, "msg");
    json_string(&w, "request");
    json_key(&w, "request_id");
    json_string(&w, l->request_id ? l->request_id : "");
    json_key(&w, "method");
    json_string(&w, l->method ? l->method : "");
    json_key(&w, "path");
    json_string(&w, l->path ? l->path : "");
    json_key(&w, "remote");
    json_string(&w, l->remote ? l->remote : "");
    json_key(&w, "status");
    json_int(&w, l->status);
    json_key(&w, "bytes_in");
    json_uint(&w, l->bytes_in);
    json_key(&w, "bytes_out");
    json_uint(&w, l->bytes_out);
    json_key(&w, "duration_ms");
    json_number_short(&w, l->duration_ms);
    if (l->evaluation_id) {
        json_key(&w, "evaluation_id");
        json_string(&w, l->evaluation_id);
    }
    if (l->detail) {
        json_key(&w, "detail");
        json_string(&w, l->detail);
    }
    json_object_end(&w);
    size_t len = 0;
    char *s = json_writer_finish(&w, &len);
    if (!s)
        return;
    s[len] = '\n'; /* overwrites the NUL: the writer always keeps one spare byte */
    emit(s, len + 1);
    free(s);
}

void log_event(const char *level, const char *fmt, ...)
{
    char msg[512], ts[48];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof ts);
    if (log_format == CONFIG_LOG_TEXT) {
        char line[640];
        int n = snprintf(line, sizeof line, "%s %s %s\n", ts, level, msg);
        if (n > 0)
            emit(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        return;
    }
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    json_key(&w, "ts");
    json_string(&w, ts);
    json_key(&w, "level");
    json_string(&w, level);
    json_key(&w, "msg");
    json_string(&w, msg);
    json_object_end(&w);
    size_t len = 0;
    char *s = json_writer_finish(&w, &len);
    if (!s)
        return;
    s[len] = '\n';
    emit(s, len + 1);
    free(s);
}
