/*
 * http.h - the HTTP side of seglossd: libmicrohttpd 0.9.75, framing, the memory budget for
 * bodies, dispatch through the route table (route.h) and the hand-over of uploads to worker
 * threads.
 *
 * MHD runs a pool of polling threads (--threads). They only move bytes: a finished upload is
 * handed to the evaluation workers (workqueue) and its connection suspended
 * (MHD_ALLOW_SUSPEND_RESUME) until the answer is ready, so one heavy evaluation never stalls the
 * I/O of other connections. Bodies are handed to their route as they stream in; a
 * Content-Length over the limit, or over what the memory budget (--max-inflight-mb) has left,
 * is refused before the body is read. Ambiguous framing is refused before any route runs
 * (http_head.h).
 *
 * Routes: the table given at start (routes.h) holds every route; this side knows none by
 * name. It sends what a route answers with the headers every answer carries, and writes its
 * own errors (framing, tokens, 404, 405, limits) in the format of the path's routes.
 *
 * Shutdown: http_server_drain (readyz turns 503, the listening socket closes, keep-alive
 * answers carry Connection: close), http_server_wait_idle (in-flight requests finish), then
 * http_server_stop.
 *
 * Threads: start, drain, wait and stop are called from one thread (main); everything else runs
 * on MHD's and the workers' threads.
 */
#ifndef SERVER_HTTP_H
#define SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/config.h"
#include "http/route.h"

typedef struct http_server http_server;

/* Starts listening, answering every request through routes (route.h), which must outlive the
 * server. Returns 0, or -1 with a message in err (e.g. the port is taken). The config must
 * outlive the server. */
int http_server_start(const server_config *cfg, const route_table *routes, http_server **out,
                      char *err, size_t err_len);

/* Stops accepting: /readyz answers 503 from now on. */
void http_server_drain(http_server *s);

/* Waits until no request is in flight or timeout_s passes. 0 when idle, -1 on timeout. */
int http_server_wait_idle(http_server *s, unsigned timeout_s);

/* Stops the workers and MHD and frees everything. Accepts NULL. */
void http_server_stop(http_server *s);

#endif
