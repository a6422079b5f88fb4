/*
 * bufpool.h - a small cache of anonymous memory mappings for request bodies.
 *
 * Why: the first write to a fresh page is the dominant cost of taking in a large upload (the
 * kernel zeroes it, and on a virtual machine the host backs it too: measured 2.1 s to copy
 * 176 MiB into new pages against 0.05 s into pages written before). A training job posts
 * batches of the same size again and again, so the part buffers of one request are kept for the
 * next instead of being unmapped. The cache is bounded (--buffer-cache-mb); beyond it buffers
 * are unmapped as before.
 *
 * Buffers are page-aligned mappings, so they can grow with mremap. A reused buffer holds old
 * bytes; callers only read what they wrote. Thread-safe.
 */
#ifndef SERVER_BUFPOOL_H
#define SERVER_BUFPOOL_H

#include <stdbool.h>
#include <stddef.h>

/* Mappings kept at most, whatever their size: a request has a few large parts. */
#define BUFPOOL_MAX_ENTRIES 16

typedef struct bufpool bufpool;

/* A pool keeping at most max_bytes of mappings (0: keep none). NULL on OOM. */
bufpool *bufpool_new(size_t max_bytes);
/* Unmaps everything cached. Accepts NULL. */
void bufpool_free(bufpool *pool);

/*
 * A mapping of at least `need` bytes (rounded up to pages) into *cap; reuses a cached one when
 * one is large enough, and then sets *faulted (when not NULL) to the bytes from its start that
 * were in memory when it was given back (0 for a fresh mapping): they need no prefault. pool
 * may be NULL (plain mmap). Returns NULL on failure. Fresh pages cost
 * nothing until written: a mapping sized from a Content-Length the client never sends commits
 * no memory. Mappings of 2 MiB and more are 2 MiB-aligned and asked to be transparent huge
 * pages (MADV_HUGEPAGE), so filling them takes a fault per 2 MiB instead of per 4 KiB.
 */
void *bufpool_get(bufpool *pool, size_t need, size_t *cap, size_t *faulted);

/* Faults in [offset, offset + len) of a mapping in one call (MADV_POPULATE_WRITE), cheaper than
 * a fault per page as a copy touches them. Best effort: ignored where the kernel lacks it. Not
 * free for pages already in: the kernel still walks them (measured 15 % of the daemon's CPU for
 * 1 MiB bodies into a reused buffer), hence bufpool_get's *faulted. */
void bufpool_prefault(void *mem, size_t cap, size_t offset, size_t len);

/* Grows a mapping to at least `need` bytes (mremap: pages move, nothing is copied). Returns the
 * new address (and *cap) or NULL, in which case the old mapping is still valid. */
void *bufpool_grow(void *mem, size_t *cap, size_t need);

/* Gives a mapping back: cached when it fits under the bound, else unmapped. faulted: the bytes
 * from its start that were written or prefaulted (handed to the next bufpool_get). pool may be
 * NULL. */
void bufpool_put(bufpool *pool, void *mem, size_t cap, size_t faulted);

/* Bytes cached now (for /metrics and tests). */
size_t bufpool_cached_bytes(bufpool *pool);

#endif
