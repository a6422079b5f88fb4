/*
 * multipart.h - a streaming multipart/form-data parser for POST /v1/evaluate.
 *
 * Fed the body in whatever chunks the network delivers, it copies each part's bytes once, into a
 * buffer of its own (page-aligned, so at least 64-byte aligned for the kernels), and keeps only
 * a few bytes of state between chunks. Why not MHD's post processor: it hands file parts out in
 * small pieces and would force a second copy into a growing buffer; here the logits part is sized
 * once from the Content-Length (what is left of the body bounds it; untouched pages cost no
 * memory, so a Content-Length that lies commits nothing) and written exactly once.
 * Parts of unknown size grow with mremap, which moves pages instead of copying them. Buffers
 * come from a bufpool, so a stream of same-sized requests reuses warm pages.
 *
 * Accepted parts: logits (exactly once), mask (1 or more), image (0 or more), params (at most
 * once, at most max_params_bytes). Errors carry the HTTP status to answer: 400 malformed, 413 over
 * a limit, 415 not multipart/form-data.
 *
 * Ownership: the parser owns the part buffers until multipart_free. Not thread-safe; one parser
 * per request.
 */
#ifndef SERVER_MULTIPART_H
#define SERVER_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "bufpool.h"

/* RFC 2046: a boundary is 1 to 70 characters. */
#define MULTIPART_MAX_BOUNDARY 70
/* The header block of one part (Content-Disposition, Content-Type, ...): curl writes under 200
 * bytes; 8 KiB allows long file names and stops a header that never ends. */
#define MULTIPART_MAX_PART_HEADER 8192
/* A part's name, file name and content type as kept (longer values are truncated when kept). */
#define MULTIPART_MAX_NAME 256

typedef enum multipart_kind {
    MULTIPART_LOGITS = 0,
    MULTIPART_MASK,
    MULTIPART_IMAGE,
    MULTIPART_PARAMS
} multipart_kind;

typedef struct multipart_part {
    multipart_kind kind;
    char filename[MULTIPART_MAX_NAME];
    char content_type[MULTIPART_MAX_NAME];
    unsigned char *data; /* page-aligned; NULL when the part is empty */
    size_t len;
    size_t cap;          /* bytes mapped */
    size_t prefaulted;   /* bytes of the mapping faulted in ahead of the copy */
    size_t expected;     /* the length its own header declares (.npy logits), 0 when unknown */
    bool fixed;          /* data never moves: mapped once for all the body can hold */
} multipart_part;

typedef struct multipart_limits {
    size_t max_body;         /* bytes of the whole body */
    size_t max_parts;
    size_t max_params_bytes;
    bufpool *pool;           /* where part buffers come from and go back to; NULL: mmap */
} multipart_limits;

typedef struct multipart_parser multipart_parser;

/*
 * A parser for a request whose Content-Type header is content_type (the boundary is read from
 * it). body_len is the Content-Length, or 0 when unknown (chunked). Returns 0 and *out, or the
 * HTTP status (415 not multipart, 400 bad boundary, 503 out of memory) with a detail.
 */
int multipart_new(const char *content_type, size_t body_len, const multipart_limits *limits,
                  multipart_parser **out, char *detail, size_t detail_len);
void multipart_free(multipart_parser *parser);

/* The next chunk of the body. Returns 0 or an HTTP status with a detail; after an error the
 * parser refuses further input with the same status. */
int multipart_feed(multipart_parser *parser, const void *data, size_t len, char *detail,
                   size_t detail_len);

/* The end of the body: 0 when the closing boundary was seen and the required parts are there
 * (logits once, at least one mask unless allow_no_mask), else 400 with a detail. */
int multipart_finish(multipart_parser *parser, bool allow_no_mask, char *detail,
                     size_t detail_len);

/* Bytes fed so far. */
size_t multipart_bytes(const multipart_parser *parser);

/* Of those, the bytes copied without a boundary scan (the bulk of a .npy logits part). */
size_t multipart_bytes_unscanned(const multipart_parser *parser);

/* How many of the parts (from the first) are complete: their bytes will not change again and
 * their buffers not move. None after an error. */
size_t multipart_complete_count(const multipart_parser *parser);

/* The parts in body order; valid until multipart_free. */
size_t multipart_count(const multipart_parser *parser);
const multipart_part *multipart_get(const multipart_parser *parser, size_t index);

/* The first part of a kind, NULL when absent; and how many parts of that kind. */
const multipart_part *multipart_first(const multipart_parser *parser, multipart_kind kind);
size_t multipart_count_kind(const multipart_parser *parser, multipart_kind kind);

/* Extracts the boundary parameter of a multipart/form-data Content-Type into out (NUL-terminated).
 * Returns 0, 415 when the type is not multipart/form-data, 400 when the boundary is bad. */
int multipart_boundary(const char *content_type, char *out, size_t out_len, char *detail,
                       size_t detail_len);

#endif
