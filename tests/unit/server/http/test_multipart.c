/*
 * test_multipart.c - the streaming multipart parser as POST /v1/evaluate drives it
 * (evaluate_parts.h): every chunk split, delimiter look-alikes inside data, truncation, header
 * and size limits, the answers, and the Content-Type boundary.
 */
#include <stdint.h>
#include <stdlib.h>

#include "api/evaluate_parts.h"
#include "http/multipart.h"
#include "testing.h"

#define CT "multipart/form-data; boundary=XyZ-123"

static const evaluate_parts_limits default_limits = {1 << 20, 16, 1024, NULL};

/* A body with tricky data: CRs, a delimiter prefix, "--XyZ-123" without CRLF. */
static const char logits_data[] = "\x93NUMPY\r\r\n--XyZ-12\r\n--XyZ-12x is not it\r\n--X\r\n-\r";
static const char mask_data[] = "\x89PNG\r\n\x1a\n--XyZ-123";

static size_t build_body(char *out, size_t cap, const char *params)
{
    size_t n = 0;
    n += (size_t)snprintf(out + n, cap - n,
                          "preamble to ignore\r\n--XyZ-123\r\n"
                          "Content-Disposition: form-data; name=\"logits\"; "
                          "filename=\"l.npy\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    memcpy(out + n, logits_data, sizeof logits_data - 1);
    n += sizeof logits_data - 1;
    n += (size_t)snprintf(out + n, cap - n,
                          "\r\n--XyZ-123\r\nContent-Disposition: form-data; name=\"mask\"; "
                          "filename=\"m.png\"\r\n\r\n");
    memcpy(out + n, mask_data, sizeof mask_data - 1);
    n += sizeof mask_data - 1;
    n += (size_t)snprintf(out + n, cap - n,
                          "\r\n--XyZ-123\r\ncontent-disposition: form-data; name=params\r\n"
                          "Content-Type: application/json\r\n\r\n%s\r\n--XyZ-123--\r\nepilogue",
                          params);
    return n;
}

static int feed_chunks(multipart_parser *p, const char *body, size_t len, size_t step, char *detail,
                       size_t dl)
{
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        int rc = evaluate_parts_feed(p, body + i, n, detail, dl);
        if (rc)
            return rc;
    }
    return 0;
}

static void check_parts(const multipart_parser *p)
{
    CHECK_EQ_INT(multipart_count(p), 3);
    const multipart_part *l = multipart_first(p, EVALUATE_PART_LOGITS);
    const multipart_part *m = multipart_first(p, EVALUATE_PART_MASK);
    const multipart_part *q = multipart_first(p, EVALUATE_PART_PARAMS);
    CHECK(l && m && q);
    if (!l || !m || !q)
        return;
    CHECK_EQ_INT(l->len, sizeof logits_data - 1);
    CHECK(memcmp(l->data, logits_data, l->len) == 0);
    CHECK(((uintptr_t)l->data % 64) == 0);
    CHECK(strcmp(l->filename, "l.npy") == 0);
    CHECK(strcmp(l->content_type, "application/octet-stream") == 0);
    CHECK_EQ_INT(m->len, sizeof mask_data - 1);
    CHECK(memcmp(m->data, mask_data, m->len) == 0);
    CHECK(((uintptr_t)m->data % 64) == 0);
    CHECK_EQ_INT(q->len, 12);
    CHECK(memcmp(q->data, "{\"gamma\": 1}", 12) == 0);
}

static void test_whole_body(void)
{
    char body[2048], detail[256] = "";
    size_t len = build_body(body, sizeof body, "{\"gamma\": 1}");
    multipart_parser *p = NULL;
    CHECK_EQ_INT(evaluate_parts_new(CT, len, &default_limits, &p, detail, sizeof detail), 0);
    CHECK_EQ_INT(evaluate_parts_feed(p, body, len, detail, sizeof detail), 0);
    CHECK_EQ_INT(evaluate_parts_finish(p, false, detail, sizeof detail), 0);
    CHECK_EQ_INT(multipart_bytes(p), len);
    check_parts(p);
    multipart_free(p);
}

/* Two chunks, split at every byte position; with and without a known length. The parser says
 * it has ended exactly once the closing delimiter's "--" is in. */
static void test_every_split(void)
{
    char body[2048], detail[256] = "";
    size_t len = build_body(body, sizeof body, "{\"gamma\": 1}");
    const char *closing = "\r\n--XyZ-123--";
    size_t ends_at = (size_t)(strstr(body, closing) - body) + strlen(closing);
    int bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        for (int known = 0; known < 2; known++) {
            multipart_parser *p = NULL;
            int rc =
                evaluate_parts_new(CT, known ? len : 0, &default_limits, &p, detail, sizeof detail);
            rc = rc ? rc : evaluate_parts_feed(p, body, cut, detail, sizeof detail);
            if (!rc && multipart_ended(p) != (cut >= ends_at)) {
                bad++;
                fprintf(stderr, "  cut %zu: ended %d\n", cut, multipart_ended(p));
            }
            rc = rc ? rc : evaluate_parts_feed(p, body + cut, len - cut, detail, sizeof detail);
            if (!rc && !multipart_ended(p)) {
                bad++;
                fprintf(stderr, "  cut %zu: not ended after the whole body\n", cut);
            }
            rc = rc ? rc : evaluate_parts_finish(p, false, detail, sizeof detail);
            if (rc) {
                bad++;
                fprintf(stderr, "  cut %zu: %d %s\n", cut, rc, detail);
            } else {
                check_parts(p);
            }
            multipart_free(p);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* Byte by byte and in chunks of 3 and 7. */
static void test_small_chunks(void)
{
    char body[2048], detail[256] = "";
    size_t len = build_body(body, sizeof body, "{\"gamma\": 1}");
    size_t steps[] = {1, 3, 7, 64};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        multipart_parser *p = NULL;
        CHECK_EQ_INT(evaluate_parts_new(CT, len, &default_limits, &p, detail, sizeof detail), 0);
        CHECK_EQ_INT(feed_chunks(p, body, len, steps[s], detail, sizeof detail), 0);
        CHECK_EQ_INT(evaluate_parts_finish(p, false, detail, sizeof detail), 0);
        check_parts(p);
        multipart_free(p);
    }
}

static int parse_all(const char *ct, const char *body, size_t len, const evaluate_parts_limits *lim,
                     char *detail, size_t dl)
{
    multipart_parser *p = NULL;
    int rc = evaluate_parts_new(ct, len, lim, &p, detail, dl);
    rc = rc ? rc : evaluate_parts_feed(p, body, len, detail, dl);
    rc = rc ? rc : evaluate_parts_finish(p, false, detail, dl);
    multipart_free(p);
    return rc;
}

static void test_missing_final_boundary(void)
{
    char body[2048], detail[256] = "";
    (void)build_body(body, sizeof body, "{}");
    /* Cut before the closing "--XyZ-123--" at a few places. */
    const char *close = strstr(body, "\r\n--XyZ-123--");
    size_t at = (size_t)(close - body);
    for (size_t cut = at - 3; cut < at + 12; cut++) {
        CHECK_EQ_INT(parse_all(CT, body, cut, &default_limits, detail, sizeof detail), 400);
        CHECK(strstr(detail, "closing boundary") != NULL);
    }
    /* And a body with no boundary at all. */
    CHECK_EQ_INT(parse_all(CT, "just text", 9, &default_limits, detail, sizeof detail), 400);
}

static void test_header_limits(void)
{
    static char body[3 * MULTIPART_MAX_PART_HEADER];
    char detail[256] = "";
    size_t n = (size_t)snprintf(body, sizeof body, "--XyZ-123\r\nX-Long: ");
    memset(body + n, 'a', MULTIPART_MAX_PART_HEADER + 10);
    n += MULTIPART_MAX_PART_HEADER + 10;
    n += (size_t)snprintf(body + n, sizeof body - n, "\r\n\r\nx\r\n--XyZ-123--\r\n");
    CHECK_EQ_INT(parse_all(CT, body, n, &default_limits, detail, sizeof detail), 400);
    CHECK(strstr(detail, "headers longer") != NULL);

    const char no_disp[] = "--XyZ-123\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ-123--";
    CHECK_EQ_INT(parse_all(CT, no_disp, sizeof no_disp - 1, &default_limits, detail, sizeof detail),
                 400);
    CHECK(strstr(detail, "Content-Disposition") != NULL);

    const char nul[] = "--XyZ-123\r\nContent-Disposition: form-data; name=\"mask\0\"\r\n\r\n";
    CHECK_EQ_INT(parse_all(CT, nul, sizeof nul - 1, &default_limits, detail, sizeof detail), 400);

    const char bad_line[] = "--XyZ-123x\r\n";
    CHECK_EQ_INT(
        parse_all(CT, bad_line, sizeof bad_line - 1, &default_limits, detail, sizeof detail), 400);
}

static void test_part_rules(void)
{
    char detail[256] = "";
    const char unknown[] = "--XyZ-123\r\nContent-Disposition: form-data; name=\"logit\"\r\n\r\n"
                           "x\r\n--XyZ-123--\r\n";
    CHECK_EQ_INT(parse_all(CT, unknown, sizeof unknown - 1, &default_limits, detail, sizeof detail),
                 400);
    CHECK(strstr(detail, "unknown part 'logit'") != NULL);

    const char twice[] = "--XyZ-123\r\nContent-Disposition: form-data; name=\"logits\"\r\n\r\n"
                         "x\r\n--XyZ-123\r\nContent-Disposition: form-data; name=\"logits\"\r\n"
                         "\r\ny\r\n--XyZ-123--\r\n";
    CHECK_EQ_INT(parse_all(CT, twice, sizeof twice - 1, &default_limits, detail, sizeof detail),
                 400);
    CHECK(strstr(detail, "twice") != NULL);

    const char no_mask[] = "--XyZ-123\r\nContent-Disposition: form-data; name=\"logits\"\r\n\r\n"
                           "x\r\n--XyZ-123--\r\n";
    CHECK_EQ_INT(parse_all(CT, no_mask, sizeof no_mask - 1, &default_limits, detail, sizeof detail),
                 400);
    CHECK(strstr(detail, "mask") != NULL);

    const char no_logits[] = "--XyZ-123\r\nContent-Disposition: form-data; name=\"mask\"\r\n\r\n"
                             "x\r\n--XyZ-123--\r\n";
    CHECK_EQ_INT(
        parse_all(CT, no_logits, sizeof no_logits - 1, &default_limits, detail, sizeof detail),
        400);
    CHECK(strstr(detail, "logits part is missing") != NULL);

    /* An empty part is kept, with no buffer. */
    const char empty[] = "--XyZ-123\r\nContent-Disposition: form-data; name=\"logits\"\r\n\r\n"
                         "\r\n--XyZ-123\r\nContent-Disposition: form-data; name=\"mask\"\r\n\r\n"
                         "\r\n--XyZ-123--";
    multipart_parser *p = NULL;
    CHECK_EQ_INT(evaluate_parts_new(CT, 0, &default_limits, &p, detail, sizeof detail), 0);
    CHECK_EQ_INT(evaluate_parts_feed(p, empty, sizeof empty - 1, detail, sizeof detail), 0);
    CHECK_EQ_INT(evaluate_parts_finish(p, false, detail, sizeof detail), 0);
    CHECK_EQ_INT(multipart_count(p), 2);
    CHECK_EQ_INT(multipart_get(p, 0)->len, 0);
    multipart_free(p);
}

static void test_size_limits(void)
{
    char body[4096], detail[256] = "";
    /* params over its limit: 413 */
    evaluate_parts_limits small = {1 << 20, 16, 8, NULL};
    size_t len = build_body(body, sizeof body, "{\"gamma\": 1}");
    CHECK_EQ_INT(parse_all(CT, body, len, &small, detail, sizeof detail), 413);
    CHECK(strstr(detail, "params part") != NULL);

    /* too many parts: 413 */
    evaluate_parts_limits two = {1 << 20, 2, 1024, NULL};
    CHECK_EQ_INT(parse_all(CT, body, len, &two, detail, sizeof detail), 413);
    CHECK(strstr(detail, "parts") != NULL);

    /* the body over its limit, counted as it arrives (chunked: no length known): 413 */
    evaluate_parts_limits tiny = {100, 16, 1024, NULL};
    multipart_parser *p = NULL;
    CHECK_EQ_INT(evaluate_parts_new(CT, 0, &tiny, &p, detail, sizeof detail), 0);
    CHECK_EQ_INT(feed_chunks(p, body, len, 10, detail, sizeof detail), 413);
    /* sticky: later chunks answer the same */
    CHECK_EQ_INT(evaluate_parts_feed(p, "x", 1, detail, sizeof detail), 413);
    multipart_free(p);

    /* A large part grows across many chunks and stays intact. */
    size_t big = 3 * 1024 * 1024 + 17;
    size_t cap = big + 512;
    char *b = malloc(cap);
    CHECK(b != NULL);
    if (!b)
        return;
    size_t n = (size_t)snprintf(b, cap,
                                "--XyZ-123\r\nContent-Disposition: form-data; "
                                "name=\"mask\"\r\n\r\n");
    for (size_t i = 0; i < big; i++)
        b[n + i] = (char)(i * 7 + (i >> 9));
    size_t data_at = n;
    n += big;
    n += (size_t)snprintf(b + n, cap - n,
                          "\r\n--XyZ-123\r\nContent-Disposition: form-data; "
                          "name=logits\r\n\r\nL\r\n--XyZ-123--\r\n");
    evaluate_parts_limits lim = {64 << 20, 16, 1024, NULL};
    CHECK_EQ_INT(evaluate_parts_new(CT, 0, &lim, &p, detail, sizeof detail), 0);
    CHECK_EQ_INT(feed_chunks(p, b, n, 4093, detail, sizeof detail), 0);
    CHECK_EQ_INT(evaluate_parts_finish(p, false, detail, sizeof detail), 0);
    const multipart_part *m = multipart_first(p, EVALUATE_PART_MASK);
    CHECK(m && m->len == big && memcmp(m->data, b + data_at, big) == 0);
    multipart_free(p);
    free(b);
}

static void test_content_type(void)
{
    char out[MULTIPART_MAX_BOUNDARY + 1], detail[256];
    CHECK_EQ_INT(multipart_boundary("application/json", out, sizeof out, detail, sizeof detail),
                 MULTIPART_E_NOT_FORM);
    CHECK_EQ_INT(multipart_boundary(NULL, out, sizeof out, detail, sizeof detail),
                 MULTIPART_E_NOT_FORM);
    CHECK_EQ_INT(multipart_boundary("multipart/form-data", out, sizeof out, detail, sizeof detail),
                 MULTIPART_E_SYNTAX);
    CHECK_EQ_INT(multipart_boundary("multipart/form-data; boundary=", out, sizeof out, detail,
                                    sizeof detail),
                 MULTIPART_E_SYNTAX);
    CHECK_EQ_INT(multipart_boundary("multipart/form-data; boundary=a\rb", out, sizeof out, detail,
                                    sizeof detail),
                 MULTIPART_E_SYNTAX);
    CHECK_EQ_INT(multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b:c\"", out,
                                    sizeof out, detail, sizeof detail),
                 0);
    CHECK(strcmp(out, "a b:c") == 0);
    CHECK_EQ_INT(multipart_boundary("multipart/form-data;boundary=----WebKitFormBoundary7MA4", out,
                                    sizeof out, detail, sizeof detail),
                 0);
    CHECK(strcmp(out, "----WebKitFormBoundary7MA4") == 0);
    char long_ct[200];
    snprintf(long_ct, sizeof long_ct, "multipart/form-data; boundary=%071d", 0);
    CHECK_EQ_INT(multipart_boundary(long_ct, out, sizeof out, detail, sizeof detail),
                 MULTIPART_E_SYNTAX);
}

/* A Content-Length that lies: the logits mapping is sized from it, but only what arrived (plus
 * the prefault window) is ever touched, so the lie commits no memory. */
static void test_lying_length(void)
{
    char detail[256];
    evaluate_parts_limits lim = {(size_t)2 << 30, 16, 1024, NULL};
    multipart_parser *p = NULL;
    CHECK_EQ_INT(evaluate_parts_new(CT, (size_t)1 << 30, &lim, &p, detail, sizeof detail), 0);
    const char head[] = "--XyZ-123\r\nContent-Disposition: form-data; name=\"logits\"\r\n\r\n";
    CHECK_EQ_INT(evaluate_parts_feed(p, head, sizeof head - 1, detail, sizeof detail), 0);
    CHECK_EQ_INT(evaluate_parts_feed(p, "abcdef", 6, detail, sizeof detail), 0);
    const multipart_part *l = multipart_first(p, EVALUATE_PART_LOGITS);
    CHECK(l && l->cap >= ((size_t)1 << 30) - 100); /* sized once, from the length */
    CHECK(l && l->prefaulted <= 6 + ((size_t)8 << 20));
    CHECK(l && l->len == 6);
    multipart_free(p);
}

/* What another thread may read of a part while the body goes on: an open part less the
 * delimiter's length but one ("\r\n--XyZ-123": 10 bytes), which the parser may parse again;
 * all of it once its delimiter is in. */
static void test_settled_len(void)
{
    char detail[256], data[100];
    multipart_parser *p = NULL;
    CHECK_EQ_INT(evaluate_parts_new(CT, 0, &default_limits, &p, detail, sizeof detail), 0);
    const char head[] = "--XyZ-123\r\nContent-Disposition: form-data; name=\"logits\"\r\n\r\n";
    CHECK_EQ_INT(evaluate_parts_feed(p, head, sizeof head - 1, detail, sizeof detail), 0);
    memset(data, 'a', sizeof data);
    CHECK_EQ_INT(evaluate_parts_feed(p, data, sizeof data, detail, sizeof detail), 0);
    CHECK_EQ_INT(multipart_get(p, 0)->len, 100);
    CHECK_EQ_INT(multipart_settled_len(p, 0), 90);
    CHECK_EQ_INT(multipart_settled_len(p, 1), 0);
    const char end[] = "\r\n--XyZ-123--\r\n";
    CHECK_EQ_INT(evaluate_parts_feed(p, end, sizeof end - 1, detail, sizeof detail), 0);
    CHECK_EQ_INT(multipart_settled_len(p, 0), 100);
    multipart_free(p);
}

/* A fixed-seed xorshift, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Mutated bodies in random chunks: every outcome is a status or parts that lie inside the
 * body's length, never a crash (the sanitizer builds check the memory side), and feeding the
 * same bytes in other chunks gives the same answer. */
static void test_random_mutations(void)
{
    char body[2048], copy[2048], detail[256];
    size_t len = build_body(body, sizeof body, "{\"gamma\": 1}");
    int inconsistent = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(copy, body, len);
        size_t cut = len - rng() % 40;
        int edits = 1 + (int)(rng() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = rng() % cut;
            copy[at] = (char)(rng() % 4 == 0 ? "\r\n-\""[rng() % 4] : (char)rng());
        }
        int results[2];
        size_t counts[2];
        for (int pass = 0; pass < 2; pass++) {
            multipart_parser *p = NULL;
            int rc =
                evaluate_parts_new(CT, pass ? cut : 0, &default_limits, &p, detail, sizeof detail);
            for (size_t i = 0; rc == 0 && i < cut;) {
                size_t step = pass ? 1 + rng() % 64 : cut;
                if (step > cut - i)
                    step = cut - i;
                rc = evaluate_parts_feed(p, copy + i, step, detail, sizeof detail);
                i += step;
            }
            rc = rc ? rc : evaluate_parts_finish(p, false, detail, sizeof detail);
            results[pass] = rc;
            counts[pass] = p ? multipart_count(p) : 0;
            size_t total = 0;
            for (size_t k = 0; p && k < multipart_count(p); k++)
                total += multipart_get(p, k)->len;
            if (total > cut)
                inconsistent++;
            multipart_free(p);
        }
        if (results[0] != results[1] || (results[0] == 0 && counts[0] != counts[1]))
            inconsistent++;
    }
    CHECK_EQ_INT(inconsistent, 0);
}

/* A .npy file of `declared` float32 values whose data is `actual` bytes, full of CRs and
 * delimiter prefixes; when `embed` the data also holds a whole delimiter and a mask part's
 * headers (which RFC 2046 forbids, and a scan ends the part at). Returns its length. */
static size_t npy_part(unsigned char *out, size_t declared, size_t actual, int embed)
{
    char dict[128];
    int dl = snprintf(dict, sizeof dict,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': "
                      "(1, 1, 1, %zu), }",
                      declared);
    size_t header = 10 + (size_t)dl + 1;
    size_t pad = (64 - header % 64) % 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)((size_t)dl + 1 + pad);
    out[9] = (unsigned char)(((size_t)dl + 1 + pad) >> 8);
    memcpy(out + 10, dict, (size_t)dl);
    memset(out + 10 + dl, ' ', pad);
    out[10 + (size_t)dl + pad] = '\n';
    size_t n = header + pad;
    static const char noise[] = "ab\r\n--XyZ-12\r\r\n-\r\n--XyZ-12x";
    for (size_t i = 0; i < actual; i++)
        out[n + i] = (unsigned char)noise[i % (sizeof noise - 1)];
    if (embed && actual > 200) {
        static const char part[] = "\r\n--XyZ-123\r\nContent-Disposition: form-data; "
                                   "name=\"mask\"\r\n\r\nMMMM";
        memcpy(out + n + actual / 2, part, sizeof part - 1);
    }
    return n + actual;
}

/* logits (the .npy part), then a mask and the closing delimiter. */
static size_t npy_body(unsigned char *out, size_t declared, size_t actual, int embed)
{
    size_t n = (size_t)sprintf((char *)out, "--XyZ-123\r\nContent-Disposition: form-data; "
                                            "name=\"logits\"\r\n\r\n");
    n += npy_part(out + n, declared, actual, embed);
    n += (size_t)sprintf((char *)out + n, "\r\n--XyZ-123\r\nContent-Disposition: form-data; "
                                          "name=\"mask\"\r\n\r\n\x89PNG\r\n--XyZ-123--\r\n");
    return n;
}

typedef struct parse_result {
    int status;
    size_t parts, unscanned;
    size_t len[4];
    unsigned char *data[4];
    multipart_parser *parser;
} parse_result;

static parse_result parse_in_steps(const unsigned char *body, size_t len, size_t step)
{
    parse_result r;
    char detail[256];
    memset(&r, 0, sizeof r);
    evaluate_parts_limits limits = {8 << 20, 16, 1024, NULL};
    r.status = evaluate_parts_new(CT, len, &limits, &r.parser, detail, sizeof detail);
    for (size_t i = 0; i < len && !r.status; i += step)
        r.status = evaluate_parts_feed(r.parser, body + i, len - i < step ? len - i : step, detail,
                                       sizeof detail);
    if (!r.status)
        r.status = evaluate_parts_finish(r.parser, true, detail, sizeof detail);
    r.parts = multipart_count(r.parser);
    r.unscanned = multipart_bytes_unscanned(r.parser);
    for (size_t i = 0; i < r.parts && i < 4; i++) {
        r.len[i] = multipart_get(r.parser, i)->len;
        r.data[i] = multipart_get(r.parser, i)->data;
    }
    return r;
}

/*
 * The bulk of a .npy logits part is copied without a boundary scan, and the outcome is the one
 * of a scan of every byte whatever the chunking: the reference is the same body with the .npy
 * magic broken (nothing to probe, so every byte is scanned), for a part as long as its header
 * says, shorter (truncated), longer, and hiding a delimiter that a scan ends the part at. The
 * one difference, by design: a part exactly as long as its header says, followed by the
 * delimiter, is taken whole even when the delimiter also occurs inside it (which RFC 2046
 * forbids a client to send), where a scan would have cut it there.
 */
static void test_npy_bulk_unscanned(void)
{
    static const struct {
        size_t declared, actual; /* float32 elements in the header, bytes of data */
        int embed;
    } cases[] = {{4096, 16384, 0},
                 {4096, 4000, 0},
                 {100, 800, 0},
                 {4096, 16384, 1},
                 {4096, 8000, 1},
                 {4096, 20000, 1},
                 /* a few bytes shorter than its header: the copy runs into "\r\n--boundary",
                  * which the bytes after it complete (fuzz_multipart found it) */
                 {1024, 4094, 0},
                 {1024, 4091, 0}};
    static const size_t steps[] = {1, 2, 5, 13, 64, 1000, 100000};
    size_t cap = 64 << 10;
    unsigned char *body = malloc(cap), *plain = malloc(cap);
    if (!body || !plain)
        return;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t len = npy_body(body, cases[c].declared, cases[c].actual, cases[c].embed);
        memcpy(plain, body, len);
        unsigned char *magic = memchr(plain, 0x93, len);
        *magic = 'X';
        parse_result ref = parse_in_steps(plain, len, len);
        CHECK_EQ_INT(ref.unscanned, 0);
        if (c == 3) {
            for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
                parse_result r = parse_in_steps(body, len, steps[s]);
                CHECK(r.status == 0 && r.parts == 2 && ref.parts == 3);
                CHECK_EQ_INT(r.len[0], npy_part(plain, 4096, 16384, 1));
                multipart_free(r.parser);
            }
            multipart_free(ref.parser);
            continue;
        }
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            parse_result r = parse_in_steps(body, len, steps[s]);
            CHECK_MSG(r.status == ref.status && r.parts == ref.parts,
                      "case %zu step %zu: status %d/%d parts %zu/%zu", c, steps[s], r.status,
                      ref.status, r.parts, ref.parts);
            for (size_t i = 0; i < r.parts && i < ref.parts && i < 4; i++) {
                CHECK_EQ_INT(r.len[i], ref.len[i]);
                if (r.len[i] == ref.len[i] && r.len[i] > 0) {
                    /* byte 0 of the logits is the broken magic in the reference */
                    CHECK(memcmp(r.data[i] + 1, ref.data[i] + 1, r.len[i] - 1) == 0);
                    CHECK(i != 0 || r.data[0][0] == 0x93);
                }
            }
            if (c == 0) /* all but the 64-byte header went by unscanned */
                CHECK_EQ_INT(r.unscanned, 16384);
            multipart_free(r.parser);
        }
        multipart_free(ref.parser);
    }
    free(body);
    free(plain);
}

int main(void)
{
    RUN(test_whole_body);
    RUN(test_every_split);
    RUN(test_small_chunks);
    RUN(test_missing_final_boundary);
    RUN(test_header_limits);
    RUN(test_part_rules);
    RUN(test_size_limits);
    RUN(test_content_type);
    RUN(test_random_mutations);
    RUN(test_lying_length);
    RUN(test_settled_len);
    RUN(test_npy_bulk_unscanned);
    return TESTS_DONE();
}
