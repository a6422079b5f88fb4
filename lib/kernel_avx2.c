/*
 * kernel_avx2.c - the AVX2+FMA kernel: eight pixels per vector, float32 arithmetic, double
 * accumulation.
 *
 * Compiled with a target attribute rather than -mavx2, so the library runs on any x86-64 and the
 * context picks this kernel only after __builtin_cpu_supports says yes. Per group of 8 pixels:
 *   pass 1  max and first arg-max over the classes (and a NaN/infinity check);
 *   pass 2  e[k] = exp(x[k] - m) into L1 scratch; t = sum of e[k] off the arg-max; the label's
 *           x[y] - m and e[y] picked out on the way (no gather from the logits);
 *   per pixel  log p[y] = (x[y] - m) - log1p(t), CE and focal terms, accumulated in double;
 *   pass 3  p[k] = e[k] / (1 + t) into per-class Dice and f_score sums;
 * then a short scalar loop scatters the label-indexed parts (Dice tp, f_score tp, confusion).
 * The formulas are the scalar kernel's (kernel_scalar.c); tests hold the two together.
 */
#include "loss_internal.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <math.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

int segloss__cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
}

/* exp(x) for x <= 0 (Cephes expf, about 1 ulp); exactly 1 at 0, 0 below -87.3. */
static inline AVX2 __m256 exp_nonpositive(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)),
                                  23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(underflow, y);
}

/* log(x) for x > 0 and finite (Cephes logf, about 1 ulp). */
static inline AVX2 __m256 log_positive(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256i bits = _mm256_castps_si256(x);
    __m256i exp_bits = _mm256_srli_epi32(bits, 23);
    /* mantissa in [0.5, 1) */
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
    __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(exp_bits, _mm256_set1_epi32(126)));
    __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(one, small));
    m = _mm256_add_ps(m, _mm256_and_ps(m, small));
    m = _mm256_sub_ps(m, one);
    __m256 z = _mm256_mul_ps(m, m);
    __m256 y = _mm256_set1_ps(7.0376836292E-2f);
    y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.1514610310E-1f));
    y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.1676998740E-1f));
    y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.2420140846E-1f));
    y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.4249322787E-1f));
    y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.6668057665E-1f));
    y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(2.0000714765E-1f));
    y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-2.4999993993E-1f));
    y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(3.3333331174E-1f));
    y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
    __m256 r = _mm256_add_ps(m, y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), r);
}

/* log1p(t) for t >= 0, accurate for small t: log(u) * t / (u - 1) with u = 1 + t. */
static inline AVX2 __m256 log1p_nonnegative(__m256 t)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 u = _mm256_add_ps(one, t);
    __m256 d = _mm256_sub_ps(u, one);
    __m256 exact = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ);
    __m256 safe_d = _mm256_blendv_ps(d, one, exact);
    __m256 r = _mm256_div_ps(_mm256_mul_ps(log_positive(u), t), safe_d);
    return _mm256_blendv_ps(r, t, exact);
}

/* 1 - exp(e) for e <= 0, accurate for small |e| (Kahan's expm1 trick). */
static inline AVX2 __m256 one_minus_exp(__m256 e)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 u = exp_nonpositive(e);
    __m256 um1 = _mm256_sub_ps(u, one);
    __m256 is_one = _mm256_cmp_ps(um1, _mm256_setzero_ps(), _CMP_EQ_OQ);
    __m256 is_zero = _mm256_cmp_ps(u, _mm256_setzero_ps(), _CMP_EQ_OQ);
    __m256 safe_u = _mm256_blendv_ps(u, _mm256_set1_ps(0.5f), _mm256_or_ps(is_one, is_zero));
    __m256 r = _mm256_div_ps(_mm256_mul_ps(um1, e), log_positive(safe_u));
    r = _mm256_blendv_ps(r, e, is_one);     /* exp(e) rounds to 1: expm1(e) = e */
    r = _mm256_blendv_ps(r, _mm256_set1_ps(-1.0f), is_zero);
    return _mm256_sub_ps(_mm256_setzero_ps(), r);
}

/* q^gamma for q in [0, 1]; q^0 = 1 as in torch.pow. */
static inline AVX2 __m256 pow_unit(__m256 q, float gamma, int gamma_kind)
{
    switch (gamma_kind) {
    case 0: return _mm256_set1_ps(1.0f);
    case 1: return q;
    case 2: return _mm256_mul_ps(q, q);
    default: break;
    }
    __m256 zero = _mm256_cmp_ps(q, _mm256_setzero_ps(), _CMP_LE_OQ);
    __m256 safe = _mm256_blendv_ps(q, _mm256_set1_ps(1.0f), zero);
    __m256 r = exp_nonpositive(_mm256_mul_ps(_mm256_set1_ps(gamma), log_positive(safe)));
    return _mm256_andnot_ps(zero, r);
}

static inline AVX2 double hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static inline AVX2 __m256d widen_sum(__m256d acc, __m256 v)
{
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

/* Float partial sums of p[k] are moved into double every this many groups, bounding their
 * rounding error to a few ulp. */
#define FLUSH_GROUPS 8

static AVX2 void flush_psum(float *psum_f, double *psum, size_t c)
{
    for (size_t k = 0; k < c; k++) {
        __m256 v = _mm256_load_ps(psum_f + 8 * k);
        psum[k] += hsum_pd(widen_sum(_mm256_setzero_pd(), v));
        _mm256_store_ps(psum_f + 8 * k, _mm256_setzero_ps());
    }
}

AVX2 void segloss__kernel_avx2(const segloss__kernel_params *kp, const segloss__block *b,
                               segloss__acc *acc, float *scratch)
{
    const size_t c = kp->c, cs = b->class_stride, groups = b->count / 8;
    const int gamma_kind = kp->gamma == 0 ? 0 : kp->gamma == 1 ? 1 : kp->gamma == 2 ? 2 : 3;
    const float gamma = (float)kp->gamma;
    const __m256 thr = _mm256_set1_ps((float)kp->threshold);
    const __m256i vc = _mm256_set1_epi32((int)c);
    /* scratch: e[k] of the group | float p[k] partial sums | int32 count of p[k] > thr */
    float *e_buf = scratch;
    float *psum_f = scratch + 8 * c;
    int32_t *pos_i = (int32_t *)(void *)(scratch + 16 * c);
    for (size_t k = 0; k < 8 * c; k++) {
        psum_f[k] = 0;
        pos_i[k] = 0;
    }
    __m256d ce_num = _mm256_setzero_pd(), ce_den = ce_num, focal = ce_num;
    __m256 bad = _mm256_setzero_ps();
    uint64_t valid_count = 0;

    for (size_t g = 0; g < groups; g++) {
        const float *x = b->x + 8 * g;
        __m256i y = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(b->labels + 8 * g)));
        __m256i valid_i = _mm256_cmpgt_epi32(vc, y);
        __m256 vmask = kp->seed ? _mm256_castsi256_ps(_mm256_set1_epi32(-1))
                                : _mm256_castsi256_ps(valid_i);

        /* pass 1: max, first arg-max, finiteness */
        __m256 m = _mm256_loadu_ps(x);
        __m256i am = _mm256_setzero_si256();
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(m, m), _mm256_setzero_ps(),
                                              _CMP_NEQ_UQ));
        for (size_t k = 1; k < c; k++) {
            __m256 v = _mm256_loadu_ps(x + k * cs);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(),
                                                  _CMP_NEQ_UQ));
            __m256 gt = _mm256_cmp_ps(v, m, _CMP_GT_OQ);
            m = _mm256_blendv_ps(m, v, gt);
            am = _mm256_blendv_epi8(am, _mm256_set1_epi32((int)k), _mm256_castps_si256(gt));
        }

        /* pass 2: exponentials, the sum off the arg-max, the label's terms */
        __m256 t = _mm256_setzero_ps(), dy = t, ey = t;
        for (size_t k = 0; k < c; k++) {
            __m256i kk = _mm256_set1_epi32((int)k);
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + k * cs), m);
            __m256 e = exp_nonpositive(d);
            _mm256_store_ps(e_buf + 8 * k, e);
            __m256 is_am = _mm256_castsi256_ps(_mm256_cmpeq_epi32(am, kk));
            __m256 is_y = _mm256_castsi256_ps(_mm256_cmpeq_epi32(y, kk));
            t = _mm256_add_ps(t, _mm256_andnot_ps(is_am, e));
            dy = _mm256_blendv_ps(dy, d, is_y);
            ey = _mm256_blendv_ps(ey, e, is_y);
        }
        const __m256 one = _mm256_set1_ps(1.0f);
        __m256 inv = _mm256_div_ps(one, _mm256_add_ps(one, t));
        __m256 lp = _mm256_sub_ps(dy, log1p_nonnegative(t));
        __m256i yc = _mm256_min_epi32(y, vc);
        __m256 wy = _mm256_i32gather_ps(kp->ce_w_f, yc, 4);
        __m256 fe = _mm256_i32gather_ps(kp->focal_e_f, yc, 4);
        __m256 fm = _mm256_i32gather_ps(kp->focal_m_f, yc, 4);
        __m256 validf = _mm256_castsi256_ps(valid_i);
        lp = _mm256_and_ps(lp, validf);
        ce_num = widen_sum(ce_num, _mm256_mul_ps(wy, _mm256_sub_ps(_mm256_setzero_ps(), lp)));
        ce_den = widen_sum(ce_den, wy);
        __m256 fexp = _mm256_mul_ps(fe, lp);
        __m256 q = one_minus_exp(fexp);
        __m256 term = _mm256_mul_ps(_mm256_mul_ps(fm, pow_unit(q, gamma, gamma_kind)), fexp);
        focal = widen_sum(focal, _mm256_sub_ps(_mm256_setzero_ps(), term));

        /* pass 3: probabilities into the per-class Dice and f_score sums */
        for (size_t k = 0; k < c; k++) {
            __m256 p = _mm256_mul_ps(_mm256_load_ps(e_buf + 8 * k), inv);
            __m256 ps = _mm256_add_ps(_mm256_load_ps(psum_f + 8 * k), _mm256_and_ps(p, vmask));
            _mm256_store_ps(psum_f + 8 * k, ps);
            __m256i gt = _mm256_castps_si256(_mm256_and_ps(_mm256_cmp_ps(p, thr, _CMP_GT_OQ),
                                                           vmask));
            __m256i cnt = _mm256_load_si256((const __m256i *)(void *)(pos_i + 8 * k));
            _mm256_store_si256((__m256i *)(void *)(pos_i + 8 * k), _mm256_sub_epi32(cnt, gt));
        }

        /* the label-indexed sums, one pixel at a time */
        int32_t ys[8], ams[8];
        float pys[8];
        _mm256_storeu_si256((__m256i *)(void *)ys, y);
        _mm256_storeu_si256((__m256i *)(void *)ams, am);
        _mm256_storeu_ps(pys, _mm256_mul_ps(ey, inv));
        for (int l = 0; l < 8; l++) {
            size_t yl = (size_t)ys[l];
            if (yl >= c)
                continue;
            acc->confusion[yl * c + (size_t)ams[l]]++;
            acc->dice_tp[yl] += (double)pys[l];
            acc->fscore_tp[yl] += pys[l] > (float)kp->threshold;
            valid_count++;
        }
        if ((g + 1) % FLUSH_GROUPS == 0)
            flush_psum(psum_f, acc->dice_psum, c);
    }
    flush_psum(psum_f, acc->dice_psum, c);
    for (size_t k = 0; k < c; k++) {
        __m256i v = _mm256_load_si256((const __m256i *)(void *)(pos_i + 8 * k));
        int32_t lanes[8];
        _mm256_storeu_si256((__m256i *)(void *)lanes, v);
        uint64_t s = 0;
        for (int l = 0; l < 8; l++)
            s += (uint64_t)lanes[l];
        acc->fscore_pos[k] += s;
    }
    acc->ce_num += hsum_pd(ce_num);
    acc->ce_den += hsum_pd(ce_den);
    acc->focal_num += hsum_pd(focal);
    acc->valid += valid_count;
    if (_mm256_movemask_ps(bad))
        acc->nonfinite = 1;

    if (b->count % 8) {
        segloss__block tail = *b;
        tail.x = b->x + 8 * groups;
        tail.labels = b->labels + 8 * groups;
        tail.count = b->count % 8;
        segloss__kernel_scalar(kp, &tail, acc, scratch);
    }
}

AVX2 void segloss__convert_avx2(segloss_dtype dtype, const void *src, size_t count, float *dst)
{
    size_t i = 0;
    switch (dtype) {
    case SEGLOSS_F16:
        for (; i + 8 <= count; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(
                                          (const __m128i *)((const uint16_t *)src + i))));
        break;
    case SEGLOSS_BF16:
        for (; i + 8 <= count; i += 8) {
            __m256i h = _mm256_cvtepu16_epi32(
                _mm_loadu_si128((const __m128i *)((const uint16_t *)src + i)));
            _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
        }
        break;
    case SEGLOSS_F64:
        for (; i + 4 <= count; i += 4)
            _mm_storeu_ps(dst + i, _mm256_cvtpd_ps(_mm256_loadu_pd((const double *)src + i)));
        break;
    default:
        break;
    }
    size_t esize = segloss_dtype_size(dtype);
    segloss__convert_scalar(dtype, (const char *)src + i * esize, count - i, dst + i);
}

#else

int segloss__cpu_has_avx2(void)
{
    return 0;
}

void segloss__kernel_avx2(const segloss__kernel_params *kp, const segloss__block *b,
                          segloss__acc *acc, float *scratch)
{
    segloss__kernel_scalar(kp, b, acc, scratch);
}

void segloss__convert_avx2(segloss_dtype dtype, const void *src, size_t count, float *dst)
{
    segloss__convert_scalar(dtype, src, count, dst);
}

#endif
