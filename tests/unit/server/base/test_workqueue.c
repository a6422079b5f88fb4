/*
 * test_workqueue.c - jobs run, a full queue refuses at once (the 503 path), stop runs what was
 * queued.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "base/workqueue.h"
#include "testing.h"

static atomic_int ran;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;

static void count_job(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
}

/* Blocks its worker until the gate opens. */
static void gated_job(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate);
    pthread_mutex_unlock(&gate);
    atomic_fetch_add(&ran, 1);
}

static void test_runs_jobs(void)
{
    atomic_store(&ran, 0);
    workqueue *q = workqueue_new(3, 64);
    CHECK(q != NULL);
    if (!q)
        return;
    for (int i = 0; i < 50; i++)
        CHECK_EQ_INT(workqueue_submit(q, count_job, NULL), 0);
    workqueue_free(q); /* runs what is queued */
    CHECK_EQ_INT(atomic_load(&ran), 50);
}

static void test_full_queue_refuses(void)
{
    atomic_store(&ran, 0);
    pthread_mutex_lock(&gate);
    workqueue *q = workqueue_new(1, 2);
    CHECK(q != NULL);
    if (!q) {
        pthread_mutex_unlock(&gate);
        return;
    }
    CHECK_EQ_INT(workqueue_submit(q, gated_job, NULL), 0);
    /* Wait until the worker has taken the first job, so the queue holds exactly 2 more. */
    for (int i = 0; i < 1000 && workqueue_waiting(q) != 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ_INT(workqueue_submit(q, gated_job, NULL), 0);
    CHECK_EQ_INT(workqueue_submit(q, gated_job, NULL), 0);
    CHECK_EQ_INT(workqueue_waiting(q), 2);
    CHECK_EQ_INT(workqueue_submit(q, gated_job, NULL), -1);
    pthread_mutex_unlock(&gate);
    workqueue_stop(q);
    CHECK_EQ_INT(atomic_load(&ran), 3);
    CHECK_EQ_INT(workqueue_submit(q, count_job, NULL), -1); /* stopped */
    workqueue_free(q);
}

static void test_bad_arguments(void)
{
    CHECK(workqueue_new(0, 4) == NULL);
    CHECK(workqueue_new(2, 0) == NULL);
    workqueue_free(NULL);
}

int main(void)
{
    RUN(test_runs_jobs);
    RUN(test_full_queue_refuses);
    RUN(test_bad_arguments);
    return TESTS_DONE();
}
