/*
 * log.h - one line per request (and per daemon event) on stderr.
 *
 * JSON lines by default, so a log shipper can index them without parsing rules; `--log-format
 * text` prints the same facts for a person at a terminal. Each line is written with one write()
 * so lines from different threads never interleave. Thread-safe.
 */
#ifndef SERVER_LOG_H
#define SERVER_LOG_H

#include <stddef.h>

#include "base/config.h"

typedef struct log_request_line {
    const char *request_id;
    const char *method;
    const char *path;
    const char *remote;
    int status;
    size_t bytes_in, bytes_out;
    double duration_ms;
    const char *detail;        /* the problem detail of an error answer, or NULL */
    const char *evaluation_id; /* the id of a successful evaluation, or NULL */
} log_request_line;

void log_set_format(config_log_format format);
/* Where lines go: stderr unless changed (tests send them elsewhere). */
void log_set_fd(int fd);
void log_request(const log_request_line *line);
/* A daemon event ("listening", "draining", ...): level is "info", "warn" or "error". */
void log_event(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
