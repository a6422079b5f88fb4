/*
 * workqueue.c - worker threads fed from a ring buffer under one mutex.
 */
#include "base/workqueue.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct job {
    workqueue_fn fn;
    void *arg;
} job;

struct workqueue {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    job *ring;
    size_t depth, head, count;
    bool stopping;
    pthread_t *threads;
    unsigned started;
};

static void *worker_main(void *arg)
{
    workqueue *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->count == 0 && !q->stopping)
            pthread_cond_wait(&q->ready, &q->lock);
        if (q->count == 0)
            break; /* stopping and drained */
        job j = q->ring[q->head];
        q->head = (q->head + 1) % q->depth;
        q->count--;
        pthread_mutex_unlock(&q->lock);
        j.fn(j.arg);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

workqueue *workqueue_new(unsigned workers, unsigned depth)
{
    if (workers == 0 || depth == 0)
        return NULL;
    workqueue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->ready, NULL);
    q->depth = depth;
    q->ring = calloc(depth, sizeof *q->ring);
    q->threads = calloc(workers, sizeof *q->threads);
    if (!q->ring || !q->threads)
        goto fail;
    for (; q->started < workers; q->started++)
        if (pthread_create(&q->threads[q->started], NULL, worker_main, q) != 0)
            goto fail;
    return q;
fail:
    workqueue_free(q);
    return NULL;
}

int workqueue_submit(workqueue *q, workqueue_fn fn, void *arg)
{
    int rc = -1;
    pthread_mutex_lock(&q->lock);
    if (!q->stopping && q->count < q->depth) {
        q->ring[(q->head + q->count) % q->depth] = (job){fn, arg};
        q->count++;
        pthread_cond_signal(&q->ready);
        rc = 0;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

size_t workqueue_waiting(workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void workqueue_stop(workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->lock);
    for (unsigned i = 0; i < q->started; i++)
        pthread_join(q->threads[i], NULL);
    q->started = 0;
}

void workqueue_free(workqueue *q)
{
    if (!q)
        return;
    workqueue_stop(q);
    pthread_cond_destroy(&q->ready);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    free(q->ring);
    free(q);
}
