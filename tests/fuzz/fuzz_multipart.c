/*
 * fuzz_multipart.c - libFuzzer harness for the streaming multipart/form-data parser
 * (server/http/multipart.c) as POST /v1/evaluate drives it (server/api/evaluate_parts.c).
 *
 * fuzz-extra-src: server/http/multipart.c server/api/evaluate_parts.c server/base/detail.c
 * server/http/bufpool.c
 *
 * Input layout: byte 0 picks the chunking (the network may split a body anywhere, so the
 * parser must give the same answer whatever the split) and whether a Content-Length is
 * declared; then the Content-Type header up to the first '\n'; the rest is the body. The body
 * is parsed twice, in one piece and in chunks, and both runs must agree on the status, the
 * number of parts and every part's bytes (a state carried badly across chunks shows up here).
 * Every part's bytes are read (ASan checks them). Limits are small so a run stays cheap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/evaluate_parts.h"
#include "http/bufpool.h"
#include "http/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/multipart",
                                                "tests/crashers/multipart", NULL};

#define FUZZ_MAX_CTYPE 300
#define FUZZ_MAX_BODY ((size_t)1 << 20)

typedef struct parsed {
    int status;
    size_t parts;
    multipart_parser *parser;
} parsed;

/* Parses body in chunks of `chunk` bytes (0 = one piece). */
static parsed parse(const char *ctype, const uint8_t *body, size_t len, size_t chunk,
                    int declare_length, bufpool *pool)
{
    parsed out = {0, 0, NULL};
    char detail[256];
    evaluate_parts_limits limits = {FUZZ_MAX_BODY, 16, 4096, pool};
    out.status = evaluate_parts_new(ctype, declare_length ? len : 0, &limits, &out.parser, detail,
                                    sizeof detail);
    if (out.status) {
        if (out.parser || strnlen(detail, sizeof detail) == sizeof detail)
            abort();
        return out;
    }
    size_t off = 0;
    while (off < len && !out.status) {
        size_t n = chunk && chunk < len - off ? chunk : len - off;
        out.status = evaluate_parts_feed(out.parser, body + off, n, detail, sizeof detail);
        off += n;
    }
    if (!out.status)
        out.status = evaluate_parts_finish(out.parser, (len & 1) != 0, detail, sizeof detail);
    if (strnlen(detail, sizeof detail) == sizeof detail)
        abort();
    if (out.status != 0 && out.status != 400 && out.status != 413 && out.status != 415 &&
        out.status != 503)
        abort();
    out.parts = multipart_count(out.parser);
    size_t total = 0;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < out.parts; i++) {
        const multipart_part *p = multipart_get(out.parser, i);
        if (!p || (p->len && !p->data) || p->len > p->cap)
            abort();
        for (size_t k = 0; k < p->len; k++)
            sink ^= p->data[k];
        total += p->len;
    }
    (void)sink;
    if (total > len || multipart_bytes(out.parser) > len)
        abort();
    return out;
}

/* Splits the input; returns the body offset, or 0 when there is no content-type line. */
static size_t split_input(const uint8_t *data, size_t size, char *ctype)
{
    if (size < 2)
        return 0;
    const uint8_t *nl = memchr(data + 1, '\n', size - 1);
    size_t clen = nl ? (size_t)(nl - (data + 1)) : size - 1;
    if (clen >= FUZZ_MAX_CTYPE)
        clen = FUZZ_MAX_CTYPE - 1;
    memcpy(ctype, data + 1, clen);
    ctype[clen] = '\0';
    return nl ? (size_t)(nl - data) + 1 : size;
}

static const size_t chunk_sizes[8] = {1, 2, 3, 7, 64, 1000, 4096, 65536};

/* 0 when the whole body is accepted in one piece, else -(HTTP status). */
int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    char ctype[FUZZ_MAX_CTYPE];
    size_t off = split_input(data, size, ctype);
    if (!off)
        return -400;
    parsed one = parse(ctype, data + off, size - off, 0, data[0] & 0x80, NULL);
    multipart_free(one.parser);
    return one.status ? -one.status : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char ctype[FUZZ_MAX_CTYPE];
    size_t off = split_input(data, size, ctype);
    if (!off)
        return 0;
    const uint8_t *body = data + off;
    size_t len = size - off;
    int declare = data[0] & 0x80;
    bufpool *pool = bufpool_new((size_t)4 << 20);
    parsed one = parse(ctype, body, len, 0, declare, pool);
    parsed many = parse(ctype, body, len, chunk_sizes[data[0] & 7], declare, pool);
    if (one.status != many.status || one.parts != many.parts)
        abort();
    for (size_t i = 0; !one.status && i < one.parts; i++) {
        const multipart_part *a = multipart_get(one.parser, i);
        const multipart_part *b = multipart_get(many.parser, i);
        if (a->kind != b->kind || a->len != b->len ||
            (a->len && memcmp(a->data, b->data, a->len) != 0) ||
            strcmp(a->filename, b->filename) != 0)
            abort();
    }
    multipart_free(one.parser);
    multipart_free(many.parser);
    bufpool_free(pool);
    return 0;
}
