/*
 * fuzz_params.c - libFuzzer harness for the evaluation parameters (server/service/params.c): the
 * `params` JSON part and the query string, as POST /v1/evaluate reads them.
 *
 * fuzz-extra-src: server/service/params.c server/base/text.c lib/loss/loss_params.c
 * server/base/detail.c server/base/names.c
 *
 * Input layout: byte 0 picks the class count C for params_check_classes (1..64) and whether
 * the query part comes first; then the query string up to the first '\n' ("a=1&b=x,y", split
 * on '&' and the first '=' like MHD does, without percent-decoding); the rest is the JSON part.
 * Every status must be 0, 400, 413 or 422 with a NUL-terminated detail; a key given both ways
 * must be refused; params_free must release everything (LeakSanitizer checks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

const char *const segloss_fuzz_corpus_dirs[] = {"tests/fuzz/corpus/params", "tests/crashers/params",
                                                NULL};

#define FUZZ_MAX_QUERY 4096
#define FUZZ_MAX_PARAMS_BYTES 65536

static void status_ok(int status, const char *detail, size_t detail_len)
{
    if (status != 0 && status != 400 && status != 413 && status != 422)
        abort();
    if (strnlen(detail, detail_len) == detail_len)
        abort();
}

static int apply_query(params_request *p, char *query)
{
    char detail[256] = "";
    for (char *pair = query, *next; pair && *pair; pair = next) {
        next = strchr(pair, '&');
        if (next)
            *next++ = '\0';
        char *eq = strchr(pair, '=');
        const char *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        int status = params_set_query(p, pair, value, detail, sizeof detail);
        status_ok(status, detail, sizeof detail);
        if (status)
            return status;
    }
    return 0;
}

/* Runs the request; 0 when every step accepts it, else the first status. */
static int run(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 400;
    char *query = calloc(1, FUZZ_MAX_QUERY + 1);
    if (!query)
        return 503;
    const uint8_t *nl = memchr(data + 1, '\n', size - 1);
    size_t qlen = nl ? (size_t)(nl - (data + 1)) : 0;
    if (qlen > FUZZ_MAX_QUERY)
        qlen = FUZZ_MAX_QUERY;
    memcpy(query, data + 1, qlen);
    for (size_t i = 0; i < qlen; i++)
        if (!query[i])
            query[i] = '_'; /* MHD's values are C strings */
    const char *json = nl ? (const char *)nl + 1 : (const char *)data + 1;
    size_t json_len = size - (size_t)((const uint8_t *)json - data);
    size_t classes = 1 + (data[0] & 63);
    bool query_first = data[0] & 64;
    char detail[256] = "";
    params_request p;
    params_init(&p);
    int status = query_first ? apply_query(&p, query) : 0;
    if (!status && json_len) {
        status = params_set_json(&p, json, json_len, FUZZ_MAX_PARAMS_BYTES, detail, sizeof detail);
        status_ok(status, detail, sizeof detail);
    }
    if (!status && !query_first)
        status = apply_query(&p, query);
    if (!status) {
        if (p.given_json & p.given_query)
            abort(); /* a key given both ways was accepted */
        status = params_check_classes(&p, classes, detail, sizeof detail);
        status_ok(status, detail, sizeof detail);
    }
    if (!status) {
        if (p.class_weights && p.class_weights_len != classes)
            abort();
        if (p.run && strlen(p.run) > PARAMS_MAX_RUN_LEN)
            abort();
        if (p.split && strlen(p.split) > PARAMS_MAX_SPLIT_LEN)
            abort();
    }
    params_free(&p);
    free(query);
    return status;
}

int segloss_fuzz_decode(const uint8_t *data, size_t size)
{
    int status = run(data, size);
    return status ? -status : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)run(data, size);
    return 0;
}
