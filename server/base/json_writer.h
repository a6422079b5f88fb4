/*
 * json_writer.h - a small append-only JSON writer for the daemon's answers.
 *
 * Why not cJSON's printer: the answer must print every double with 17 significant digits (so a
 * client reading it back gets the exact float64 the library computed) and NaN or Inf as null;
 * cJSON does neither exactly. Parsing (the params part) does use cJSON.
 *
 * A json_writer owns one growing buffer. Calls append; a failed allocation sets a sticky flag and
 * later calls do nothing, so callers check once at the end (json_writer_finish). Commas between
 * members and elements are inserted automatically. Not thread-safe; one writer per answer.
 */
#ifndef SERVER_JSON_WRITER_H
#define SERVER_JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting the writer tracks; the answers are four levels deep. */
#define JSON_WRITER_MAX_DEPTH 16

typedef struct json_writer {
    char *buf;
    size_t len, cap;
    bool failed;
    int depth;
    bool first[JSON_WRITER_MAX_DEPTH]; /* nothing written yet at this level */
    bool after_key;
} json_writer;

void json_writer_init(json_writer *w);
/* Releases the buffer (when json_writer_finish did not take it). */
void json_writer_free(json_writer *w);
/* Returns the NUL-terminated text (the caller frees it) and its length, or NULL on OOM. */
char *json_writer_finish(json_writer *w, size_t *len);

void json_object_begin(json_writer *w);
void json_object_end(json_writer *w);
void json_array_begin(json_writer *w);
void json_array_end(json_writer *w);
void json_key(json_writer *w, const char *key);
/* A NUL-terminated string; bytes that are not well-formed UTF-8 are written as U+FFFD. */
void json_string(json_writer *w, const char *s);
/* %.17g; NaN and +-Inf become null. */
void json_number(json_writer *w, double v);
/* %.6g, for figures a person reads (log durations); NaN and +-Inf become null. */
void json_number_short(json_writer *w, double v);
void json_uint(json_writer *w, uint64_t v);
void json_int(json_writer *w, int64_t v);
void json_bool(json_writer *w, bool v);
void json_null(json_writer *w);
/* Arrays of doubles / counts in one call. */
void json_number_array(json_writer *w, const double *v, size_t n);
void json_uint_array(json_writer *w, const uint64_t *v, size_t n);

#endif
