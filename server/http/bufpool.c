/*
 * bufpool.c - the mapping cache (see bufpool.h): best fit on get, evict-smallest on put.
 */
#include "http/bufpool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Mappings of at least this many bytes are 2 MiB-aligned transparent huge pages (madvise mode
 * of THP): a fresh 1 GiB body then takes 512 page faults instead of 262144, measured 2.0-4.3 s
 * against 0.09 s to fill 1 GiB of new memory on this kind of virtual machine. Smaller ones
 * (masks, params) stay in 4 KiB pages, where a huge page would mostly be waste. */
#define BUFPOOL_HUGE_PAGE ((size_t)2 << 20)

typedef struct entry {
    void *mem;
    size_t cap;
    size_t faulted; /* bytes from the start known to be in memory (bufpool_put's word) */
} entry;

struct bufpool {
    pthread_mutex_t lock;
    size_t max_bytes, cached;
    entry entries[BUFPOOL_MAX_ENTRIES];
    size_t count;
};

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - page)
        return 0;
    return (n + page - 1) / page * page;
}

bufpool *bufpool_new(size_t max_bytes)
{
    bufpool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pthread_mutex_init(&pool->lock, NULL);
    pool->max_bytes = max_bytes;
    return pool;
}

void bufpool_free(bufpool *pool)
{
    if (!pool)
        return;
    for (size_t i = 0; i < pool->count; i++)
        munmap(pool->entries[i].mem, pool->entries[i].cap);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

/* A mapping of size rounded up to whole huge pages, on a huge-page boundary (mmap gives only
 * page alignment: map a huge page more and trim both ends), marked MADV_HUGEPAGE. The pages
 * are still faulted in only when written: an unwritten tail commits nothing. */
static void *map_huge(size_t size, size_t *cap)
{
    if (size > SIZE_MAX - 2 * BUFPOOL_HUGE_PAGE)
        return NULL;
    size = (size + BUFPOOL_HUGE_PAGE - 1) / BUFPOOL_HUGE_PAGE * BUFPOOL_HUGE_PAGE;
    size_t span = size + BUFPOOL_HUGE_PAGE;
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t at = ((uintptr_t)raw + BUFPOOL_HUGE_PAGE - 1) & ~(uintptr_t)(BUFPOOL_HUGE_PAGE - 1);
    char *mem = (char *)at;
    size_t head = (size_t)(mem - raw), tail = span - head - size;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap(mem + size, tail);
#ifdef MADV_HUGEPAGE
    (void)madvise(mem, size, MADV_HUGEPAGE);
#endif
    *cap = size;
    return mem;
}

/* The biggest cached buffer handed out for a need of size bytes. */
static size_t reuse_limit(size_t size)
{
    return size > (SIZE_MAX - BUFPOOL_HUGE_PAGE) / 2 ? SIZE_MAX : 2 * size + BUFPOOL_HUGE_PAGE;
}

void *bufpool_get(bufpool *pool, size_t need, size_t *cap, size_t *faulted)
{
    size_t unused;
    if (!faulted)
        faulted = &unused;
    *faulted = 0;
    size_t size = page_round(need);
    if (size == 0)
        return NULL;
    if (pool) {
        pthread_mutex_lock(&pool->lock);
        /* The smallest cached buffer that fits, and none more than twice the need (plus a huge
         * page of rounding): a 64 KiB mask part that took a cached body-sized buffer would send
         * the next body to fresh pages, which cost the host more than the copy itself. */
        size_t best = pool->count;
        for (size_t i = 0; i < pool->count; i++)
            if (pool->entries[i].cap >= size && pool->entries[i].cap <= reuse_limit(size) &&
                (best == pool->count || pool->entries[i].cap < pool->entries[best].cap))
                best = i;
        if (best < pool->count) {
            entry e = pool->entries[best];
            pool->entries[best] = pool->entries[--pool->count];
            pool->cached -= e.cap;
            pthread_mutex_unlock(&pool->lock);
            *cap = e.cap;
            *faulted = e.faulted;
            return e.mem;
        }
        pthread_mutex_unlock(&pool->lock);
    }
    if (size >= BUFPOOL_HUGE_PAGE)
        return map_huge(size, cap);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return NULL;
    *cap = size;
    return mem;
}

void *bufpool_grow(void *mem, size_t *cap, size_t need)
{
    size_t size = page_round(need);
    if (size == 0)
        return NULL;
    if (size <= *cap)
        return mem;
    void *moved = mremap(mem, *cap, size, MREMAP_MAYMOVE);
    if (moved == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (size >= BUFPOOL_HUGE_PAGE) /* a chunked body that outgrew small pages */
        (void)madvise(moved, size, MADV_HUGEPAGE);
#endif
    *cap = size;
    return moved;
}

void bufpool_put(bufpool *pool, void *mem, size_t cap, size_t faulted)
{
    if (!mem)
        return;
    if (pool && cap <= pool->max_bytes) {
        pthread_mutex_lock(&pool->lock);
        /* Make room by dropping the smallest entries: the large ones are the expensive ones. */
        while (pool->count > 0 &&
               (pool->count == BUFPOOL_MAX_ENTRIES || pool->cached + cap > pool->max_bytes)) {
            size_t smallest = 0;
            for (size_t i = 1; i < pool->count; i++)
                if (pool->entries[i].cap < pool->entries[smallest].cap)
                    smallest = i;
            if (pool->entries[smallest].cap > cap)
                break; /* everything cached is bigger: keep it, drop this one */
            entry e = pool->entries[smallest];
            pool->entries[smallest] = pool->entries[--pool->count];
            pool->cached -= e.cap;
            munmap(e.mem, e.cap);
        }
        if (pool->count < BUFPOOL_MAX_ENTRIES && pool->cached + cap <= pool->max_bytes) {
            pool->entries[pool->count++] = (entry){mem, cap, faulted < cap ? faulted : cap};
            pool->cached += cap;
            mem = NULL;
        }
        pthread_mutex_unlock(&pool->lock);
    }
    if (mem)
        munmap(mem, cap);
}

void bufpool_prefault(void *mem, size_t cap, size_t offset, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!mem || offset >= cap)
        return;
    size_t start = offset / page * page;
    size_t end = len > cap - offset ? cap : offset + len;
#ifdef MADV_POPULATE_WRITE
    if (end > start)
        (void)madvise((char *)mem + start, end - start, MADV_POPULATE_WRITE);
#else
    (void)start;
    (void)end;
#endif
}

size_t bufpool_cached_bytes(bufpool *pool)
{
    if (!pool)
        return 0;
    pthread_mutex_lock(&pool->lock);
    size_t n = pool->cached;
    pthread_mutex_unlock(&pool->lock);
    return n;
}
