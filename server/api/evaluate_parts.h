/*
 * evaluate_parts.h - the parts of a POST /v1/evaluate body and what is answered about them.
 *
 * The body is multipart/form-data (multipart.h) with these parts: logits (exactly once; a .npy
 * file's bulk is copied without a boundary scan), mask (1 or more), image (0 or more), params
 * (at most once, at most max_params_bytes). The functions here drive the generic parser with
 * that list and turn its errors into the HTTP status and detail the route answers: 400
 * malformed, 413 over a limit, 415 not multipart/form-data, 503 out of memory.
 *
 * Ownership and threads as for the parser (multipart.h).
 */
#ifndef SERVER_EVALUATE_PARTS_H
#define SERVER_EVALUATE_PARTS_H

#include <stdbool.h>
#include <stddef.h>

#include "http/bufpool.h"
#include "http/multipart.h"
#include "service/evaluation.h"

/* A part's kind (multipart_part.kind). The numbers are part of a request's fingerprint
 * (request_hash.h): do not renumber. */
typedef enum evaluate_part {
    EVALUATE_PART_LOGITS = 0,
    EVALUATE_PART_MASK,
    EVALUATE_PART_IMAGE,
    EVALUATE_PART_PARAMS
} evaluate_part;

typedef struct evaluate_parts_limits {
    size_t max_body;         /* bytes of the whole body (--max-body-mb) */
    size_t max_parts;        /* --max-parts */
    size_t max_params_bytes; /* --max-params-bytes */
    bufpool *pool;           /* where part buffers come from and go back to; NULL: mmap */
} evaluate_parts_limits;

/* multipart_new for a /v1/evaluate body: 0 and *out, or the HTTP status with a detail. */
int evaluate_parts_new(const char *content_type, size_t body_len,
                       const evaluate_parts_limits *limits, multipart_parser **out, char *detail,
                       size_t detail_len);

/* multipart_feed: 0 or the HTTP status with a detail (the same again after an error). */
int evaluate_parts_feed(multipart_parser *parser, const void *data, size_t len, char *detail,
                        size_t detail_len);

/* The end of the body: 0 when the closing boundary was seen and the required parts are there
 * (logits once, at least one mask unless allow_no_mask), else the HTTP status with a detail. */
int evaluate_parts_finish(multipart_parser *parser, bool allow_no_mask, char *detail,
                          size_t detail_len);

/* The parts of one kind (masks, images) as the evaluation takes them, in body order: at most
 * max into out; returns how many. They borrow the parser's buffers. */
size_t evaluate_parts_blobs(const multipart_parser *parser, evaluate_part kind,
                            evaluation_blob *out, size_t max);

#endif
