/*
 * common_internal.h - internal helpers that the decoders and the loss engine share (not part of
 * the public API; the prefix segloss__ says so).
 */
#ifndef SEGLOSS_COMMON_INTERNAL_H
#define SEGLOSS_COMMON_INTERNAL_H

#include <stddef.h>

/* At least bytes (0 counts as 1) at an align-byte boundary (a power of two), the size rounded
 * up to a multiple of align as aligned_alloc asks; the caller free()s it. NULL when out of
 * memory or when the rounding would overflow. */
void *segloss__aligned_alloc(size_t align, size_t bytes);

/* Bytes in a cache line of the x86-64 CPUs the kernels are written for. */
#define SEGLOSS__CACHE_LINE 64
/* At least bytes (0 counts as 1), zeroed, on cache lines of their own: aligned to a line and
 * rounded up to whole lines, so no other allocation shares one. For memory one thread writes
 * often while another thread writes its own (the evaluation's workers, evaluate.c says what a
 * shared line cost). The caller free()s it; NULL when out of memory. */
void *segloss__zalloc_lines(size_t bytes);

#endif
