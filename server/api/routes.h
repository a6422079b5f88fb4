/*
 * routes.h - seglossd's route table (route.h): every route with its handler, built in the API
 * layer and handed to the HTTP server at start.
 *
 *   POST /v1/evaluate                      evaluate_route.c (an upload)
 *   GET  /v1/info, /livez, /healthz, /readyz, /metrics     routes.c
 *   POST /v2/models/segloss[/versions/1]/infer             oip_route.c (an upload)
 *   GET  /v2, /v2/health/..., /v2/models/segloss[...]      oip_route.c
 *   GET  /v1/runs..., DELETE /v1/runs/{run}, GET /v1/evaluations/...   runs_api.c
 *   GET  / and the dashboard's files        routes.c, from the embedded assets
 *
 * routes also owns what the evaluations run with (the loss library's context, the body buffer
 * pool, the intake thread) and the runs store, and records results that carry `run` in it
 * before their 200 is sent. main() opens it before the server starts and closes it after the
 * server has stopped.
 */
#ifndef SERVER_ROUTES_H
#define SERVER_ROUTES_H

#include <stddef.h>

#include "api/intake.h"
#include "base/config.h"
#include "http/bufpool.h"
#include "http/route.h"
#include "service/evaluation.h"
#include "store/store.h"

/* What the routes share; the handlers get it as their table's arg. */
typedef struct routes {
    const server_config *cfg;
    store *store;              /* the runs store, or NULL */
    bool own_store;            /* opened here, closed by routes_close */
    segloss_ctx *ctx;          /* the loss library: threads, kernel, limits */
    bufpool *pool;             /* body buffers reused across requests */
    intake_worker *intake;     /* decodes and evaluates during uploads (intake.h) */
    evaluation_hook on_result; /* results of the uploads go here (recorded), or NULL */
    void *on_result_arg;
    route_entry *entries;
    route_table table;
} routes;

typedef struct routes_options {
    store *store;              /* the runs store (not taken over), or NULL */
    evaluation_hook on_result; /* NULL: results that name a run are recorded in store */
    void *on_result_arg;
    const route_entry *extra; /* routes listed after seglossd's own (tests), or NULL */
    size_t extra_count;
} routes_options;

/* Opens the runs store (--store or --data-dir) and everything evaluations need. Returns 0, or
 * -1 with a message in err (the data directory is not writable, the CPU lacks a kernel...).
 * The config must outlive the routes. */
int routes_open(const server_config *cfg, routes **out, char *err, size_t err_len);

/* The same around a store opened elsewhere, or none (opt may be NULL). */
int routes_new(const server_config *cfg, const routes_options *opt, routes **out, char *err,
               size_t err_len);

/* The table for http_server_start; valid until routes_close. */
const route_table *routes_table(const routes *r);

/* Closes the store (when opened here) and frees everything. Call after http_server_stop.
 * Accepts NULL. */
void routes_close(routes *r);

/* The token policy of the route table (auth.h), for http_server_start and tests. */
extern const auth_policy routes_auth_policy;

#endif
