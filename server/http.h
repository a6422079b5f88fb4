/*
 * http.h - the HTTP side of seglossd: libmicrohttpd 0.9.75, the route table, body intake and
 * the hand-over of evaluations to worker threads.
 *
 * MHD runs a pool of polling threads (--threads). They only move bytes: a finished upload is
 * handed to the evaluation workers (workqueue) and its connection suspended
 * (MHD_ALLOW_SUSPEND_RESUME) until the answer is ready, so one heavy evaluation never stalls the
 * I/O of other connections. Bodies are parsed as they stream in (multipart.c); a Content-Length
 * over the limit is refused before the body is read.
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

#include <stddef.h>

#include "config.h"
#include "evaluation.h"
#include "params.h"

typedef struct http_server http_server;

/*
 * Called on a worker thread after every successful evaluation, before the answer is sent: the
 * seam for the runs store (it records results that carry params->run). May be NULL.
 */
typedef void (*http_result_hook)(void *arg, const params_request *params,
                                 const evaluation_outcome *outcome, const char *id);

/* Starts listening. Returns 0, or -1 with a message in err (e.g. the port is taken). The
 * config must outlive the server. */
int http_server_start(const server_config *cfg, http_server **out, char *err, size_t err_len);

void http_server_set_result_hook(http_server *s, http_result_hook hook, void *arg);

/* Stops accepting: /readyz answers 503 from now on. */
void http_server_drain(http_server *s);

/* Waits until no request is in flight or timeout_s passes. 0 when idle, -1 on timeout. */
int http_server_wait_idle(http_server *s, unsigned timeout_s);

/* Stops the workers and MHD and frees everything. Accepts NULL. */
void http_server_stop(http_server *s);

#endif
