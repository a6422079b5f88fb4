/*
 * tensor.c - dtype facts, checked size arithmetic, aligned allocation and the exact
 * half/bfloat16 conversions that the scalar kernel, the decoders and the tests share.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common_internal.h"
#include "segloss/errors.h"
#include "segloss/limits.h"
#include "segloss/tensor.h"

size_t segloss_dtype_size(segloss_dtype dtype)
{
    switch (dtype) {
    case SEGLOSS_F32: return 4;
    case SEGLOSS_F16: return 2;
    case SEGLOSS_BF16: return 2;
    case SEGLOSS_F64: return 8;
    case SEGLOSS_U8: return 1;
    case SEGLOSS_I8: return 1;
    case SEGLOSS_U16: return 2;
    case SEGLOSS_I32: return 4;
    case SEGLOSS_I64: return 8;
    case SEGLOSS_DTYPE_NONE: break;
    }
    return 0;
}

const char *segloss_dtype_name(segloss_dtype dtype)
{
    switch (dtype) {
    case SEGLOSS_F32: return "float32";
    case SEGLOSS_F16: return "float16";
    case SEGLOSS_BF16: return "bfloat16";
    case SEGLOSS_F64: return "float64";
    case SEGLOSS_U8: return "uint8";
    case SEGLOSS_I8: return "int8";
    case SEGLOSS_U16: return "uint16";
    case SEGLOSS_I32: return "int32";
    case SEGLOSS_I64: return "int64";
    case SEGLOSS_DTYPE_NONE: break;
    }
    return "none";
}

int segloss_dtype_is_float(segloss_dtype dtype)
{
    return dtype == SEGLOSS_F32 || dtype == SEGLOSS_F16 || dtype == SEGLOSS_BF16 ||
           dtype == SEGLOSS_F64;
}

int segloss_mul_size(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return SEGLOSS_ELIMIT;
    *out = r;
    return 0;
}

void *segloss__aligned_alloc(size_t align, size_t bytes)
{
    size_t want = bytes ? bytes : 1;
    if (want > SIZE_MAX - (align - 1))
        return NULL;
    return aligned_alloc(align, (want + align - 1) & ~(align - 1));
}

void *segloss__zalloc_lines(size_t bytes)
{
    void *p = segloss__aligned_alloc(SEGLOSS__CACHE_LINE, bytes);
    if (p)
        memset(p, 0, bytes ? bytes : 1);
    return p;
}

int segloss_tensor_elements(const segloss_tensor *t, size_t *count)
{
    size_t n = 1;
    for (int i = 0; i < t->rank; i++)
        if (segloss_mul_size(n, t->shape[i], &n))
            return SEGLOSS_ELIMIT;
    *count = n;
    return 0;
}

static float float_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float segloss_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* inf or nan */
        return float_from_bits(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0)
            return float_from_bits(sign);
        /* subnormal: renormalise */
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400u));
        mant &= 0x3ffu;
        return float_from_bits(sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13));
    }
    return float_from_bits(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

float segloss_bf16_to_float(uint16_t b)
{
    return float_from_bits((uint32_t)b << 16);
}

uint16_t segloss_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf/nan */
        return (uint16_t)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
    if (abs >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (abs < 0x33000000u)
            return (uint16_t)sign;
        uint32_t e = abs >> 23;
        uint32_t m = (abs & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((abs >> 13) - ((127u - 15u) << 10));
    uint32_t rem = abs & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

void segloss_limits_default(segloss_limits *limits)
{
    limits->max_classes = SEGLOSS_MAX_CLASSES;
    limits->max_side = SEGLOSS_MAX_SIDE;
    limits->max_pixels = SEGLOSS_MAX_PIXELS;
    limits->max_batch = SEGLOSS_MAX_BATCH;
    limits->max_elements = SEGLOSS_MAX_ELEMENTS;
}
