/*
 * tensor.h - borrowed views of dense, C-ordered arrays.
 *
 * A segloss_tensor never owns its data: whoever filled it in (a decoder, the caller) keeps the
 * buffer alive for as long as the view is used. Shapes are stored outermost first, exactly as in
 * the file they came from; the evaluation accepts logits of rank 3 (C,H,W) or 4 (N,C,H,W) and
 * labels of rank 2 (H,W) or 3 (N,H,W).
 */
#ifndef SEGLOSS_TENSOR_H
#define SEGLOSS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum segloss_dtype {
    SEGLOSS_DTYPE_NONE = 0,
    SEGLOSS_F32,
    SEGLOSS_F16,
    SEGLOSS_BF16,
    SEGLOSS_F64,
    SEGLOSS_U8,
    SEGLOSS_I8,
    SEGLOSS_U16,
    SEGLOSS_I32,
    SEGLOSS_I64
} segloss_dtype;

#define SEGLOSS_MAX_RANK 4

typedef struct segloss_tensor {
    const void *data; /* borrowed; aligned to the element size at least */
    segloss_dtype dtype;
    int rank; /* 0 means "no tensor" */
    size_t shape[SEGLOSS_MAX_RANK];
} segloss_tensor;

/* Bytes per element, 0 for SEGLOSS_DTYPE_NONE. */
size_t segloss_dtype_size(segloss_dtype dtype);

/* A short name as numpy spells it ("float32", "uint8", ...). */
const char *segloss_dtype_name(segloss_dtype dtype);

/* 1 for the floating-point dtypes (logits), 0 otherwise. */
int segloss_dtype_is_float(segloss_dtype dtype);

/* Product of the shape into *count; SEGLOSS_ELIMIT when it overflows size_t. */
int segloss_tensor_elements(const segloss_tensor *t, size_t *count);

/* Checked a*b into *out: 0, or SEGLOSS_ELIMIT on overflow. */
int segloss_mul_size(size_t a, size_t b, size_t *out);

/* IEEE half and bfloat16 to float, exactly (scalar helpers shared by kernels and tests). */
float segloss_half_to_float(uint16_t h);
float segloss_bf16_to_float(uint16_t b);
uint16_t segloss_float_to_half(float f); /* round to nearest even; for tests and fixtures */

#endif
