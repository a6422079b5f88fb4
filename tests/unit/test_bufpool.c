/*
 * test_bufpool.c - the mapping cache: reuse of a large enough mapping, growth without copying
 * the contents away, the byte bound, and a NULL pool behaving as plain mmap.
 */
#include <stdint.h>

#include "bufpool.h"
#include "testing.h"

static void test_reuse(void)
{
    bufpool *pool = bufpool_new((size_t)8 << 20);
    size_t cap = 0;
    unsigned char *a = bufpool_get(pool, 100000, &cap);
    bufpool_prefault(a, cap, 0, cap);
    CHECK(a != NULL && cap >= 100000 && (uintptr_t)a % 4096 == 0);
    if (!a)
        return;
    a[99999] = 7;
    bufpool_put(pool, a, cap);
    CHECK_EQ_INT(bufpool_cached_bytes(pool), cap);
    size_t cap2 = 0;
    unsigned char *b = bufpool_get(pool, 50000, &cap2);
    CHECK(b == a && cap2 == cap); /* the warm mapping comes back */
    CHECK_EQ_INT(bufpool_cached_bytes(pool), 0);
    bufpool_put(pool, b, cap2);
    bufpool_free(pool);
}

static void test_grow_keeps_contents(void)
{
    size_t cap = 0;
    unsigned char *a = bufpool_get(NULL, 4096, &cap);
    CHECK(a != NULL);
    if (!a)
        return;
    for (size_t i = 0; i < cap; i++)
        a[i] = (unsigned char)i;
    unsigned char *b = bufpool_grow(a, &cap, (size_t)3 << 20);
    CHECK(b != NULL && cap >= ((size_t)3 << 20));
    if (!b)
        return;
    int same = 1;
    for (size_t i = 0; i < 4096; i++)
        same &= b[i] == (unsigned char)i;
    CHECK(same);
    b[cap - 1] = 1;
    bufpool_put(NULL, b, cap);
}

static void test_bound(void)
{
    bufpool *pool = bufpool_new((size_t)1 << 20);
    size_t c1 = 0, c2 = 0, c3 = 0;
    void *big = bufpool_get(pool, (size_t)2 << 20, &c1);
    void *a = bufpool_get(pool, (size_t)600 << 10, &c2);
    void *b = bufpool_get(pool, (size_t)600 << 10, &c3);
    bufpool_put(pool, big, c1); /* over the bound: unmapped */
    CHECK_EQ_INT(bufpool_cached_bytes(pool), 0);
    bufpool_put(pool, a, c2);
    bufpool_put(pool, b, c3); /* both do not fit: one is dropped */
    CHECK(bufpool_cached_bytes(pool) <= ((size_t)1 << 20));
    CHECK(bufpool_cached_bytes(pool) > 0);
    bufpool_free(pool);

    bufpool *none = bufpool_new(0);
    void *x = bufpool_get(none, 10, &c1);
    bufpool_put(none, x, c1);
    CHECK_EQ_INT(bufpool_cached_bytes(none), 0);
    bufpool_free(none);
    bufpool_free(NULL);
}

int main(void)
{
    RUN(test_reuse);
    RUN(test_grow_keeps_contents);
    RUN(test_bound);
    return TESTS_DONE();
}
