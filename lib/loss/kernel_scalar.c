/*
 * kernel_scalar.c - the reference kernel: one pixel at a time, all arithmetic in double.
 *
 * It is always built, it is what SEGLOSS_FORCE_SCALAR and CPUs without AVX2 run, and the tests
 * hold the vector kernel to it. Per pixel, with m the largest logit and a its first position:
 *
 *   t      = sum over k != a of exp(x[k] - m)      (the arg-max term is exactly 1)
 *   log p[y] = (x[y] - m) - log1p(t)               (log1p keeps confident pixels accurate)
 *   p[k]   = exp(x[k] - m) / (1 + t)
 *   focal  = -m_y * (-expm1(e))^gamma * e,  e = e_y * log p[y]   (tables in kernel params)
 */
#include <math.h>

#include "loss/loss_internal.h"

void segloss__kernel_scalar(const segloss__kernel_params *kp, const segloss__block *b,
                            segloss__acc *acc, float *scratch)
{
    (void)scratch;
    const size_t c = kp->c, cs = b->class_stride;
    for (size_t i = 0; i < b->count; i++) {
        const float *x = b->x + i;
        const unsigned y = b->labels[i];
        const int valid = y < c;
        float m = x[0];
        size_t am = 0;
        /* in range (limits.h); false for NaN */
        int finite = fabsf(m) <= (float)SEGLOSS_MAX_LOGIT;
        for (size_t k = 1; k < c; k++) {
            float v = x[k * cs];
            finite &= fabsf(v) <= (float)SEGLOSS_MAX_LOGIT;
            if (v > m) {
                m = v;
                am = k;
            }
        }
        if (!finite) {
            acc->nonfinite = 1;
            continue;
        }
        if (b->argmax)
            b->argmax[i] = (uint16_t)am;
        double t = 0;
        for (size_t k = 0; k < c; k++)
            if (k != am)
                t += exp((double)x[k * cs] - (double)m);
        const double inv = 1.0 / (1.0 + t);
        if (valid) {
            double lp = ((double)x[y * cs] - (double)m) - log1p(t);
            acc->ce_num += kp->ce_w[y] * -lp;
            acc->ce_den += kp->ce_w[y];
            double e = kp->focal_e[y] * lp;
            double q = -expm1(e);
            double f = kp->gamma == 0 ? 1.0 : pow(q, kp->gamma);
            acc->focal_num += -kp->focal_m[y] * f * e;
            acc->confusion[(size_t)y * c + am]++;
            acc->valid++;
        }
        if (!valid && !kp->seed)
            continue;
        for (size_t k = 0; k < c; k++) {
            double p = (k == am ? 1.0 : exp((double)x[k * cs] - (double)m)) * inv;
            int pos = p > kp->threshold;
            acc->dice_psum[k] += p;
            acc->fscore_pos[k] += (uint64_t)pos;
            if (k == y) {
                acc->dice_tp[k] += p;
                acc->fscore_tp[k] += (uint64_t)pos;
            }
        }
    }
}

void segloss__lerp_scalar(const float *s0, const float *s1, float l1y,
                          const segloss__lerp_cols *cols, size_t col, size_t count, float *dst)
{
    const float l0y = 1.0f - l1y;
    for (size_t p = 0; p < count; p++) {
        size_t j = col + p, c0 = (size_t)cols->c0[j], c1 = (size_t)cols->c1[j];
        float l1x = cols->l1[j], l0x = 1.0f - l1x;
        dst[p] = l0y * (l0x * s0[c0] + l1x * s0[c1]) + l1y * (l0x * s1[c0] + l1x * s1[c1]);
    }
}

void segloss__convert_scalar(segloss_dtype dtype, const void *src, size_t count, float *dst)
{
    switch (dtype) {
    case SEGLOSS_F16:
        for (size_t i = 0; i < count; i++)
            dst[i] = segloss_half_to_float(((const uint16_t *)src)[i]);
        break;
    case SEGLOSS_BF16:
        for (size_t i = 0; i < count; i++)
            dst[i] = segloss_bf16_to_float(((const uint16_t *)src)[i]);
        break;
    case SEGLOSS_F64:
        for (size_t i = 0; i < count; i++)
            dst[i] = (float)((const double *)src)[i];
        break;
    case SEGLOSS_F32:
        for (size_t i = 0; i < count; i++)
            dst[i] = ((const float *)src)[i];
        break;
    default: break;
    }
}
