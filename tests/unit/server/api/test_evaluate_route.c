/*
 * test_evaluate_route.c - POST /v1/evaluate's upload (server/api/evaluate_route.c) as the HTTP
 * layer drives it: a chunked body whose masks come first is dropped mid-body (what http.c does
 * when it outgrows --max-inflight-mb), and the next request takes the dropped buffers from the
 * pool and writes into them at once. The intake must be done with those buffers before they go
 * back: run under TSan, a worker still decoding a mask of the dropped body is reported.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/evaluate_route.h"
#include "api/routes.h"
#include "http/bufpool.h"
#include "testing.h"

#define MASKS 6
#define SIDE 1024
#define CT "multipart/form-data; boundary=b0undary"

static const char *header(void *arg, const char *name)
{
    (void)arg;
    return strcasecmp(name, "Content-Type") == 0 ? CT : NULL;
}

/* A mask of noise (it compresses badly, so it takes a while to decode). */
static unsigned char *png_noise(uint32_t seed, size_t *len)
{
    uint8_t *pixels = malloc((size_t)SIDE * SIDE);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)SIDE * SIDE; i++) {
        x = x * 1664525u + 1013904223u;
        pixels[i] = (uint8_t)((x >> 24) % 5);
    }
    uint8_t *png = NULL;
    char detail[128];
    int rc = segloss_png_encode(pixels, SIDE, SIDE, 1, &png, len, detail, sizeof detail);
    free(pixels);
    return rc == 0 ? png : NULL;
}

/* The masks as parts, then the start of a logits part (so the last mask is complete). */
static unsigned char *masks_body(size_t *len)
{
    const char *mh = "--b0undary\r\nContent-Disposition: form-data; name=\"mask\"; "
                     "filename=\"m.png\"\r\n\r\n";
    const char *lh = "--b0undary\r\nContent-Disposition: form-data; name=\"logits\"; "
                     "filename=\"l.npy\"\r\n\r\n\x93NUMPY";
    unsigned char *pngs[MASKS];
    size_t plen[MASKS], total = strlen(lh);
    for (int i = 0; i < MASKS; i++) {
        pngs[i] = png_noise((uint32_t)i, &plen[i]);
        if (!pngs[i])
            return NULL;
        total += strlen(mh) + plen[i] + 2;
    }
    unsigned char *body = malloc(total);
    size_t n = 0;
    for (int i = 0; i < MASKS; i++) {
        memcpy(body + n, mh, strlen(mh));
        n += strlen(mh);
        memcpy(body + n, pngs[i], plen[i]);
        n += plen[i];
        memcpy(body + n, "\r\n", 2);
        n += 2;
        free(pngs[i]);
    }
    memcpy(body + n, lh, strlen(lh));
    *len = n + strlen(lh);
    return body;
}

/* Dropped mid-body with masks still to decode: the buffers the pool gets back are written by
 * the next request while nothing of the dropped one reads them. */
static void test_drop_while_the_intake_decodes(void)
{
    server_config cfg;
    config_defaults(&cfg);
    cfg.eval_threads = 1;
    routes *r = NULL;
    char err[256] = "";
    CHECK_MSG(routes_new(&cfg, NULL, &r, err, sizeof err) == 0, "%s", err);
    if (!r)
        return;
    size_t len = 0;
    unsigned char *body = masks_body(&len);
    CHECK(body != NULL);
    for (int round = 0; body && round < 3; round++) {
        route_request req = {.method = "POST", .path = "/v1/evaluate", .header = header};
        void *state = NULL;
        char detail[256];
        CHECK_EQ_INT(evaluate_route.begin(r, &req, false, 0, &state, detail, sizeof detail), 0);
        for (size_t off = 0; off < len; off += 64 * 1024) {
            size_t n = len - off < 64 * 1024 ? len - off : 64 * 1024;
            CHECK_EQ_INT(
                evaluate_route.feed(state, (const char *)body + off, n, detail, sizeof detail), 0);
        }
        evaluate_route.drop(state); /* the budget ran out: the body is dropped */
        /* the next request: its parts take the cached buffers and fill them */
        void *taken[MASKS];
        size_t caps[MASKS], got = 0;
        for (int i = 0; i < MASKS; i++) {
            taken[got] = bufpool_get(r->pool, 1, &caps[got], NULL);
            if (taken[got]) {
                memset(taken[got], 0xee, caps[got]);
                got++;
            }
        }
        for (size_t i = 0; i < got; i++)
            bufpool_put(r->pool, taken[i], caps[i], 0);
        evaluate_route.free(state); /* the connection ends */
    }
    free(body);
    routes_close(r);
}

int main(void)
{
    RUN(test_drop_while_the_intake_decodes);
    return TESTS_DONE();
}
