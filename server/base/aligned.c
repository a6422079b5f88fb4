/*
 * aligned.c - aligned buffers (see aligned.h).
 */
#include "base/aligned.h"

#include <stdint.h>
#include <stdlib.h>

void *aligned_buffer(size_t align, size_t bytes)
{
    size_t want = bytes ? bytes : 1;
    if (want > SIZE_MAX - (align - 1))
        return NULL;
    return aligned_alloc(align, (want + align - 1) / align * align);
}
