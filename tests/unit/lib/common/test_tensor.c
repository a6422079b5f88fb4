/*
 * test_tensor.c - the allocation helpers of lib/common/tensor.c that the evaluation's workers
 * stand on: segloss__zalloc_lines gives zeroed memory on cache lines no other allocation
 * shares, whatever its size, so two threads writing their own counters never write one line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_internal.h"
#include "segloss/segloss.h"
#include "testing.h"

/* The sizes the evaluation asks for with C = 21 (chunk sums, the confusion matrix, the item
 * counts) and the edges of a line. */
static const size_t SIZES[] = {0, 1, 63, 64, 65, 352, 504, 3696, 4096, 100000};
#define SIZE_COUNT (sizeof SIZES / sizeof SIZES[0])
/* Small allocations made after each helper allocation: where malloc puts its next chunks. */
#define NEIGHBOURS 64

static size_t lines_of(size_t bytes)
{
    size_t want = bytes ? bytes : 1;
    return (want + SEGLOSS__CACHE_LINE - 1) / SEGLOSS__CACHE_LINE * SEGLOSS__CACHE_LINE;
}

static void test_zeroed_and_aligned(void)
{
    for (size_t i = 0; i < SIZE_COUNT; i++) {
        /* dirty the heap first, so zeroing is not the fresh pages' doing */
        unsigned char *dirt = malloc(SIZES[i] + 64);
        CHECK(dirt != NULL);
        memset(dirt, 0xa5, SIZES[i] + 64);
        free(dirt);
        unsigned char *p = segloss__zalloc_lines(SIZES[i]);
        CHECK_MSG(p != NULL, "size %zu", SIZES[i]);
        if (!p)
            continue;
        CHECK_MSG((uintptr_t)p % SEGLOSS__CACHE_LINE == 0, "size %zu at %p", SIZES[i], (void *)p);
        size_t nonzero = 0;
        for (size_t b = 0; b < SIZES[i]; b++)
            nonzero += p[b] != 0;
        CHECK_MSG(nonzero == 0, "size %zu: %zu bytes not zero", SIZES[i], nonzero);
        free(p);
    }
}

/* No allocation made after it starts on one of its lines: with calloc's 16-byte granularity a
 * 352-byte block ends mid-line and the next small block starts on that line. */
static void test_no_neighbour_on_its_lines(void)
{
    for (size_t i = 0; i < SIZE_COUNT; i++) {
        unsigned char *p = segloss__zalloc_lines(SIZES[i]);
        CHECK(p != NULL);
        if (!p)
            continue;
        unsigned char *end = p + lines_of(SIZES[i]);
        void *near[NEIGHBOURS];
        size_t inside = 0;
        for (int n = 0; n < NEIGHBOURS; n++) {
            near[n] = malloc((size_t)(8 + 8 * n));
            unsigned char *q = near[n];
            CHECK(q != NULL);
            /* a neighbour's first or last byte on one of p's lines */
            if ((q >= p && q < end) || (q + 8 + 8 * n - 1 >= p && q + 8 + 8 * n - 1 < end))
                inside++;
        }
        CHECK_MSG(inside == 0, "size %zu: %zu allocations on its lines", SIZES[i], inside);
        for (int n = 0; n < NEIGHBOURS; n++)
            free(near[n]);
        free(p);
    }
}

static void test_stats_on_their_own_lines(void)
{
    segloss_stats *s = segloss_stats_new(21, SEGLOSS_SEED);
    CHECK(s != NULL);
    CHECK((uintptr_t)s % SEGLOSS__CACHE_LINE == 0);
    segloss_stats_free(s);
}

int main(void)
{
    RUN(test_zeroed_and_aligned);
    RUN(test_no_neighbour_on_its_lines);
    RUN(test_stats_on_their_own_lines);
    return TESTS_DONE();
}
