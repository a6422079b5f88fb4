/*
 * thread_pool.c - a persistent pool of worker threads that run one job at a time.
 *
 * Starting threads per evaluation would cost more than a small evaluation itself, so a context
 * keeps its workers parked on a condition variable. A job runs on every worker at once (worker 0
 * is the caller's own thread); the job itself pulls fixed chunks from a shared counter, which is
 * what keeps the answer independent of how many workers there are.
 *
 * Waking a parked thread takes 20-150 us on this kind of VM, as long as a 512x512 image's share
 * of work: a worker that finishes a job, and a caller waiting for the workers, first spin for a
 * short while (SEGLOSS__POOL_SPIN_ROUNDS) on the job counters before they sleep, so jobs that
 * follow each other, and workers that finish within moments of the caller, skip the wake-up.
 * And since an evaluation knows a job is coming before it has set the job up (shapes, tables,
 * per-worker buffers), it calls segloss__pool_prewake first: parked workers start waking then,
 * and spin (SEGLOSS__POOL_PREWAKE_ROUNDS) until the job arrives, so their wake-up overlaps the
 * set-up instead of delaying the second thread's start (measured: 20-60 us late on a 0.4 ms
 * evaluation of a 256x256 image, which with its 4 chunks left one thread 3 of them).
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "loss/loss_internal.h"
#include "segloss/errors.h"

/* Pause-loop rounds a thread spins before it sleeps on a condition variable: about 50 us. */
#define SEGLOSS__POOL_SPIN_ROUNDS 2000
/* Rounds a worker woken by segloss__pool_prewake spins for the job before it parks again:
 * about 0.5 ms, far more than an evaluation's set-up. */
#define SEGLOSS__POOL_PREWAKE_ROUNDS 20000

/* The counters are written under the lock and read without it while spinning. */
struct segloss__pool {
    unsigned threads;   /* including the caller */
    pthread_t *workers; /* threads - 1 */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    atomic_uint_fast64_t generation; /* bumped per job; workers run each generation once */
    atomic_uint running;             /* workers still busy with the current job */
    atomic_uint parked;              /* workers waiting on `wake` */
    atomic_uint_fast64_t prewakes;   /* bumped by segloss__pool_prewake */
    atomic_uint_fast64_t prewoken;   /* times a parked worker got up for a prewake */
    atomic_int stopping;
    segloss__job_fn fn;
    void *arg;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

/* Spins `rounds` times at most until the job counter moves past `seen` or the pool stops; 1 if
 * it did. */
static int spin_for_job(segloss__pool *pool, uint64_t seen, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        if (atomic_load(&pool->generation) != seen || atomic_load(&pool->stopping))
            return 1;
        cpu_relax();
    }
    return 0;
}

typedef struct worker_start {
    segloss__pool *pool;
    unsigned index;
} worker_start;

static void *worker_main(void *p)
{
    worker_start start = *(worker_start *)p;
    free(p);
    segloss__pool *pool = start.pool;
    uint64_t seen = 0;
    for (;;) {
        spin_for_job(pool, seen, SEGLOSS__POOL_SPIN_ROUNDS);
        pthread_mutex_lock(&pool->lock);
        while (!pool->stopping && pool->generation == seen) {
            uint64_t prewakes = pool->prewakes;
            pool->parked++;
            pthread_cond_wait(&pool->wake, &pool->lock);
            pool->parked--;
            if (pool->prewakes != prewakes && !pool->stopping && pool->generation == seen) {
                /* a job is on its way: wait for it awake */
                pool->prewoken++;
                pthread_mutex_unlock(&pool->lock);
                spin_for_job(pool, seen, SEGLOSS__POOL_PREWAKE_ROUNDS);
                pthread_mutex_lock(&pool->lock);
            }
        }
        if (pool->stopping)
            break;
        seen = pool->generation;
        segloss__job_fn fn = pool->fn;
        void *arg = pool->arg;
        pthread_mutex_unlock(&pool->lock);
        fn(arg, start.index);
        pthread_mutex_lock(&pool->lock);
        if (--pool->running == 0)
            pthread_cond_signal(&pool->done);
        pthread_mutex_unlock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

int segloss__pool_new(segloss__pool **out, unsigned threads)
{
    *out = NULL;
    if (threads == 0)
        threads = 1;
    segloss__pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return SEGLOSS_ENOMEM;
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->running, 0);
    atomic_init(&pool->parked, 0);
    atomic_init(&pool->prewakes, 0);
    atomic_init(&pool->prewoken, 0);
    atomic_init(&pool->stopping, 0);
    pool->threads = 1;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    pool->workers = calloc(threads, sizeof(pthread_t));
    if (!pool->workers)
        goto fail;
    for (unsigned i = 1; i < threads; i++) {
        worker_start *start = malloc(sizeof *start);
        if (!start)
            goto fail;
        *start = (worker_start){pool, i};
        if (pthread_create(&pool->workers[i - 1], NULL, worker_main, start) != 0) {
            free(start);
            goto fail;
        }
        pool->threads = i + 1;
    }
    *out = pool;
    return 0;
fail:
    segloss__pool_free(pool);
    return SEGLOSS_ENOMEM;
}

void segloss__pool_free(segloss__pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 1; i < pool->threads; i++)
        pthread_join(pool->workers[i - 1], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    pthread_mutex_destroy(&pool->lock);
    free(pool->workers);
    free(pool);
}

unsigned segloss__pool_threads(const segloss__pool *pool)
{
    return pool->threads;
}

unsigned segloss__pool_parked(segloss__pool *pool)
{
    return atomic_load(&pool->parked);
}

uint64_t segloss__pool_prewoken(segloss__pool *pool)
{
    return atomic_load(&pool->prewoken);
}

void segloss__pool_prewake(segloss__pool *pool)
{
    if (pool->threads < 2 || atomic_load(&pool->parked) == 0)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->prewakes++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
}

void segloss__pool_run(segloss__pool *pool, segloss__job_fn fn, void *arg)
{
    if (pool->threads > 1) {
        pthread_mutex_lock(&pool->lock);
        pool->fn = fn;
        pool->arg = arg;
        pool->running = pool->threads - 1;
        pool->generation++;
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);
    }
    fn(arg, 0);
    if (pool->threads > 1) {
        for (int i = 0; i < SEGLOSS__POOL_SPIN_ROUNDS && atomic_load(&pool->running) > 0; i++)
            cpu_relax();
        pthread_mutex_lock(&pool->lock);
        while (pool->running > 0)
            pthread_cond_wait(&pool->done, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
}
