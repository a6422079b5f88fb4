/*
 * test_bufpool.c - the mapping cache: reuse of a large enough mapping (and of the word on how
 * much of it is in memory), growth without copying
 * the contents away, the byte bound, and a NULL pool behaving as plain mmap.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http/bufpool.h"
#include "testing.h"

static void test_reuse(void)
{
    bufpool *pool = bufpool_new((size_t)8 << 20);
    size_t cap = 0, faulted = 1;
    unsigned char *a = bufpool_get(pool, 100000, &cap, &faulted);
    CHECK_EQ_INT(faulted, 0); /* a fresh mapping: nothing in memory yet */
    bufpool_prefault(a, cap, 0, cap);
    CHECK(a != NULL && cap >= 100000 && (uintptr_t)a % 4096 == 0);
    if (!a)
        return;
    a[99999] = 7;
    bufpool_put(pool, a, cap, 100000);
    CHECK_EQ_INT(bufpool_cached_bytes(pool), cap);
    size_t cap2 = 0;
    unsigned char *b = bufpool_get(pool, 50000, &cap2, &faulted);
    CHECK(b == a && cap2 == cap);  /* the warm mapping comes back */
    CHECK_EQ_INT(faulted, 100000); /* with what its last user had in memory */
    CHECK_EQ_INT(bufpool_cached_bytes(pool), 0);
    bufpool_put(pool, b, cap2, SIZE_MAX); /* never more than the mapping */
    b = bufpool_get(pool, 50000, &cap2, &faulted);
    CHECK_EQ_INT(faulted, cap2);
    bufpool_put(pool, b, cap2, 0);
    bufpool_free(pool);
}

/* A small need does not take a cached buffer many times its size: the next big body would then
 * have to map fresh pages (the masks of a masks-first upload before its logits). */
static void test_small_need_leaves_big_buffer(void)
{
    bufpool *pool = bufpool_new((size_t)64 << 20);
    size_t big_cap = 0, small_cap = 0, again_cap = 0;
    void *big = bufpool_get(pool, (size_t)16 << 20, &big_cap, NULL);
    CHECK(big != NULL);
    bufpool_put(pool, big, big_cap, 0);
    void *small = bufpool_get(pool, (size_t)64 << 10, &small_cap, NULL);
    CHECK(small != NULL && small != big);
    CHECK(small_cap < big_cap);
    CHECK_EQ_INT(bufpool_cached_bytes(pool), big_cap);
    void *again = bufpool_get(pool, (size_t)15 << 20, &again_cap, NULL);
    CHECK(again == big && again_cap == big_cap);
    bufpool_put(pool, small, small_cap, 0);
    bufpool_put(pool, again, again_cap, 0);
    bufpool_free(pool);
}

static void test_grow_keeps_contents(void)
{
    size_t cap = 0;
    unsigned char *a = bufpool_get(NULL, 4096, &cap, NULL);
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
    bufpool_put(NULL, b, cap, 0);
}

static void test_bound(void)
{
    bufpool *pool = bufpool_new((size_t)1 << 20);
    size_t c1 = 0, c2 = 0, c3 = 0;
    void *big = bufpool_get(pool, (size_t)2 << 20, &c1, NULL);
    void *a = bufpool_get(pool, (size_t)600 << 10, &c2, NULL);
    void *b = bufpool_get(pool, (size_t)600 << 10, &c3, NULL);
    bufpool_put(pool, big, c1, 0); /* over the bound: unmapped */
    CHECK_EQ_INT(bufpool_cached_bytes(pool), 0);
    bufpool_put(pool, a, c2, 0);
    bufpool_put(pool, b, c3, 0); /* both do not fit: one is dropped */
    CHECK(bufpool_cached_bytes(pool) <= ((size_t)1 << 20));
    CHECK(bufpool_cached_bytes(pool) > 0);
    bufpool_free(pool);

    bufpool *none = bufpool_new(0);
    void *x = bufpool_get(none, 10, &c1, NULL);
    bufpool_put(none, x, c1, 0);
    CHECK_EQ_INT(bufpool_cached_bytes(none), 0);
    bufpool_free(none);
    bufpool_free(NULL);
}

/* The VmFlags line of the /proc/self/smaps entry that starts at addr ("" when not found). */
static void vm_flags(const void *addr, char *out, size_t out_len)
{
    char line[512];
    char start[32];
    snprintf(start, sizeof start, "%lx-", (unsigned long)(uintptr_t)addr);
    out[0] = '\0';
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return;
    int in_entry = 0;
    while (fgets(line, sizeof line, f)) {
        size_t word = strcspn(line, " ");
        if (word > 0 && line[word - 1] != ':') /* "start-end perms ...", not "Key: value" */
            in_entry = strncmp(line, start, strlen(start)) == 0;
        if (in_entry && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, out_len, "%.200s", line + 8);
            break;
        }
    }
    fclose(f);
}

/* A large body buffer is on a 2 MiB boundary, a whole number of 2 MiB pages, and marked for
 * transparent huge pages (smaps VmFlags "hg"); a small one is not. */
static void test_large_buffers_are_huge_pages(void)
{
    size_t cap = 0;
    unsigned char *a = bufpool_get(NULL, ((size_t)5 << 20) + 1, &cap, NULL);
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK((uintptr_t)a % ((size_t)2 << 20) == 0);
    CHECK_EQ_INT(cap, (size_t)6 << 20);
    a[0] = a[cap - 1] = 1;
    char flags[256];
    vm_flags(a, flags, sizeof flags);
    CHECK(flags[0] != '\0');
    CHECK(strstr(flags, " hg") != NULL);
    bufpool_put(NULL, a, cap, 0);

    unsigned char *b = bufpool_get(NULL, 100000, &cap, NULL);
    CHECK(b != NULL);
    if (!b)
        return;
    b[0] = 1;
    vm_flags(b, flags, sizeof flags);
    CHECK(strstr(flags, " hg") == NULL);
    bufpool_put(NULL, b, cap, 0);
}

int main(void)
{
    RUN(test_reuse);
    RUN(test_small_need_leaves_big_buffer);
    RUN(test_grow_keeps_contents);
    RUN(test_bound);
    RUN(test_large_buffers_are_huge_pages);
    return TESTS_DONE();
}
