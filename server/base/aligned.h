/*
 * aligned.h - memory at an alignment the kernels and decoders want, for buffers the server
 * fills itself (a decoded mask batch, an OIP body's tensors, a file read by `seglossd eval`).
 * Thread-safe. (The library has its own, segloss__aligned_alloc: lib/ cannot use server code.)
 */
#ifndef SERVER_ALIGNED_H
#define SERVER_ALIGNED_H

#include <stddef.h>

/* At least bytes (0 counts as 1) at an align-byte boundary (a power of two), the size rounded
 * up to a multiple of align as aligned_alloc asks; the caller free()s it. NULL when out of
 * memory or when the rounding would overflow. */
void *aligned_buffer(size_t align, size_t bytes);

#endif
