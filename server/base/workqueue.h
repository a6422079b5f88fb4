/*
 * workqueue.h - a fixed set of worker threads and a bounded queue of jobs.
 *
 * The HTTP threads must never run an evaluation themselves (it would stall every connection
 * they poll), and must never wait for a worker either. So a finished upload is handed over with
 * workqueue_submit, which refuses at once when the queue is full: the caller answers 503 with
 * Retry-After instead of holding the request for an unbounded time.
 *
 * Thread-safe: submit from any thread. Stopping runs the jobs already queued, then joins.
 */
#ifndef SERVER_WORKQUEUE_H
#define SERVER_WORKQUEUE_H

#include <stddef.h>

typedef void (*workqueue_fn)(void *arg);
typedef struct workqueue workqueue;

/* Starts `workers` threads and a queue of `depth` waiting jobs. NULL on failure. */
workqueue *workqueue_new(unsigned workers, unsigned depth);

/* Queues fn(arg). Returns 0, or -1 when the queue is full or shutting down (fn is not run). */
int workqueue_submit(workqueue *q, workqueue_fn fn, void *arg);

/* Jobs waiting (not yet running), for /metrics. */
size_t workqueue_waiting(workqueue *q);

/* Refuses new jobs, runs what is queued and joins the threads. The queue stays valid (submit
 * fails, waiting answers 0) until workqueue_free. Call from one thread. */
void workqueue_stop(workqueue *q);

/* Stops (when not stopped yet) and frees. Accepts NULL. */
void workqueue_free(workqueue *q);

#endif
