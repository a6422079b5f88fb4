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

#endif
