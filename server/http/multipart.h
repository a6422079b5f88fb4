/*
 * multipart.h - a streaming multipart/form-data parser.
 *
 * Fed the body in whatever chunks the network delivers, it copies each part's bytes once, into a
 * buffer of its own (page-aligned, so at least 64-byte aligned for the kernels), and keeps only
 * a few bytes of state between chunks. Why not MHD's post processor: it hands file parts out in
 * small pieces and would force a second copy into a growing buffer; here a bulk part (the
 * logits of POST /v1/evaluate) is sized once from the Content-Length (what is left of the body
 * bounds it; untouched pages cost no memory, so a Content-Length that lies commits nothing) and
 * written exactly once. Parts of unknown size grow with mremap, which moves pages instead of
 * copying them. Buffers come from a bufpool, so a stream of same-sized requests reuses warm
 * pages.
 *
 * The parser knows no form: the caller lists the part names it accepts (multipart_field) and
 * each part's kind is the index of its name in that list. Errors are the parser's own codes
 * (multipart_error) with a detail; what to answer for them is the caller's business (POST
 * /v1/evaluate's parts and answers are in evaluate_parts.h).
 *
 * Ownership: the parser owns the part buffers until multipart_free. Not thread-safe; one parser
 * per request.
 */
#ifndef SERVER_MULTIPART_H
#define SERVER_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "http/bufpool.h"

/* RFC 2046: a boundary is 1 to 70 characters. */
#define MULTIPART_MAX_BOUNDARY 70
/* The header block of one part (Content-Disposition, Content-Type, ...): curl writes under 200
 * bytes; 8 KiB allows long file names and stops a header that never ends. */
#define MULTIPART_MAX_PART_HEADER 8192
/* A part's name, file name and content type as kept (longer values are truncated when kept). */
#define MULTIPART_MAX_NAME 256

/* The field names a parser accepts, at most. */
#define MULTIPART_MAX_FIELDS 8

/* What went wrong (0 is success). The detail says where; the codes say what to answer. */
typedef enum multipart_error {
    MULTIPART_E_NOT_FORM = -1,   /* the Content-Type is not multipart/form-data */
    MULTIPART_E_SYNTAX = -2,     /* a bad boundary parameter, delimiter line or part header */
    MULTIPART_E_UNKNOWN = -3,    /* a part whose name is none of the fields ("unknown part 'x'") */
    MULTIPART_E_REPEATED = -4,   /* a second part of a field that is taken once */
    MULTIPART_E_TRUNCATED = -5,  /* the body ended before its closing delimiter */
    MULTIPART_E_BODY_LIMIT = -6, /* the body is over max_body */
    MULTIPART_E_PART_LIMIT = -7, /* a part is over its field's max_bytes */
    MULTIPART_E_PART_COUNT = -8, /* more than max_parts parts */
    MULTIPART_E_NOMEM = -9       /* out of memory */
} multipart_error;

/*
 * Reads a part's own length from its first len bytes (a file format's header): 0 and *total
 * when it is known, 1 and *need (> len) when more bytes are needed, -1 when it says none.
 */
typedef int (*multipart_length_fn)(const unsigned char *data, size_t len, size_t *need,
                                   size_t *total);

/* A part name the caller accepts. */
typedef struct multipart_field {
    const char *name; /* static (outlives the parser) */
    bool once;        /* a second part of this name is MULTIPART_E_REPEATED */
    size_t max_bytes; /* a longer part is MULTIPART_E_PART_LIMIT; 0: only the body limit */
    /* Most of the body: with a known Content-Length, one mapping for what is left of it. */
    bool bulk;
    /* When set, called once first_bytes of the part are in: the bytes up to the length it
     * reads are copied without a boundary scan (RFC 2046 forbids the delimiter inside). */
    multipart_length_fn own_length;
    size_t first_bytes;
} multipart_field;

typedef struct multipart_part {
    size_t kind; /* the index of its name in the fields */
    char filename[MULTIPART_MAX_NAME];
    char content_type[MULTIPART_MAX_NAME];
    unsigned char *data; /* page-aligned; NULL when the part is empty */
    size_t len;
    size_t cap;        /* bytes mapped */
    size_t prefaulted; /* bytes of the mapping in memory: faulted in ahead of the copy, or when
                          a reused mapping was last used (bufpool_get) */
    size_t expected;   /* the length its own bytes declare (own_length), 0 when unknown */
    bool fixed;        /* data never moves: mapped once for all the body can hold */
} multipart_part;

typedef struct multipart_limits {
    size_t max_body; /* bytes of the whole body */
    size_t max_parts;
    bufpool *pool;                 /* where part buffers come from and go back to; NULL: mmap */
    const multipart_field *fields; /* copied by multipart_new */
    size_t field_count;            /* at most MULTIPART_MAX_FIELDS */
} multipart_limits;

typedef struct multipart_parser multipart_parser;

/*
 * A parser for a request whose Content-Type header is content_type (the boundary is read from
 * it). body_len is the Content-Length, or 0 when unknown (chunked). Returns 0 and *out, or
 * MULTIPART_E_NOT_FORM, MULTIPART_E_SYNTAX (bad boundary) or MULTIPART_E_NOMEM with a detail.
 */
int multipart_new(const char *content_type, size_t body_len, const multipart_limits *limits,
                  multipart_parser **out, char *detail, size_t detail_len);
void multipart_free(multipart_parser *parser);

/* The next chunk of the body. Returns 0 or a multipart_error with a detail; after an error the
 * parser refuses further input with the same code and detail. */
int multipart_feed(multipart_parser *parser, const void *data, size_t len, char *detail,
                   size_t detail_len);

/* The end of the body: 0 when the closing boundary was seen, else the error (a sticky one, or
 * MULTIPART_E_TRUNCATED) with a detail. Which parts must be there is the caller's to check. */
int multipart_finish(multipart_parser *parser, char *detail, size_t detail_len);

/* Bytes fed so far. */
size_t multipart_bytes(const multipart_parser *parser);

/* Of those, the bytes copied without a boundary scan (own_length). */
size_t multipart_bytes_unscanned(const multipart_parser *parser);

/* Whether the closing delimiter has been read (the body's parts are all in). */
bool multipart_ended(const multipart_parser *parser);

/* How many of the parts (from the first) are complete: their bytes will not change again and
 * their buffers not move. None after an error. */
size_t multipart_complete_count(const multipart_parser *parser);

/* Bytes of part index that the parser will not write again: all of a complete part; of the
 * part still open, all but its last delimiter length less one, which the parser parses again in
 * place when the part turns out longer than its own header said (multipart.c, unskip). Another
 * thread may read that many bytes while the body goes on. 0 after an error. */
size_t multipart_settled_len(const multipart_parser *parser, size_t index);

/* The parts in body order; valid until multipart_free. */
size_t multipart_count(const multipart_parser *parser);
const multipart_part *multipart_get(const multipart_parser *parser, size_t index);

/* The first part of a kind, NULL when absent; and how many parts of that kind. */
const multipart_part *multipart_first(const multipart_parser *parser, size_t kind);
size_t multipart_count_kind(const multipart_parser *parser, size_t kind);

/* Extracts the boundary parameter of a multipart/form-data Content-Type into out (NUL-terminated).
 * Returns 0, MULTIPART_E_NOT_FORM when the type is not multipart/form-data, MULTIPART_E_SYNTAX
 * when the boundary is bad. */
int multipart_boundary(const char *content_type, char *out, size_t out_len, char *detail,
                       size_t detail_len);

#endif
