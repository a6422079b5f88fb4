/*
 * kernel_avx512.c - the AVX-512 kernel: sixteen pixels per vector, float32 arithmetic, double
 * accumulation.
 *
 * The AVX2 kernel's three passes (kernel_avx2.c) on 16 lanes, with the same per-pixel formulas
 * and the same exp/log approximations (the exp table is the AVX2 one, repeated in both halves
 * of a 16-entry vpermd), so every pixel's float terms are those of the AVX2 kernel and only the
 * order of the double sums differs. Opmask registers replace the AVX2 kernel's blends and
 * and-masks, and the valid-pixel masks are kept as bits, not as vectors in scratch.
 *
 * Every function here carries the target attribute and none is called unless
 * segloss__cpu_has_avx512() said yes (context.c), so a CPU without AVX-512 never executes one
 * of its instructions; the rest of the library is built for baseline x86-64.
 */
#include "loss/kernel_constants.h"
#include "loss/loss_internal.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <immintrin.h>
#include <math.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))

int segloss__cpu_has_avx512(void)
{
    unsigned eax, ebx, ecx, edx;
    /* OSXSAVE, then XCR0: SSE, AVX, opmask, ZMM0-15 upper halves, ZMM16-31 (bits 1,2,5,6,7) */
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27)))
        return 0;
    unsigned xcr0_lo, xcr0_hi;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0xe6u) != 0xe6u)
        return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return 0;
    /* leaf 7 EBX: F (16), DQ (17), BW (30), VL (31) */
    const unsigned need = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
    return (ebx & need) == need;
}

/* gcc's _mm512_setr_epi32 is a macro counting its arguments before expanding them: this
 * expands the table first. */
#define SETR16(...) _mm512_setr_epi32(__VA_ARGS__)

/* exp(x) for x <= 0: exp_nonpositive of kernel_avx2.c lane for lane (same constants, same
 * operations, the eight-entry table in both halves of the index vector), so the two kernels
 * agree bit for bit per pixel. NaN in, NaN out. */
static inline AVX512 __m512 exp_nonpositive(__m512 x)
{
    const __m512 magic = _mm512_set1_ps(SEGLOSS__EXP_MAGIC);
    const __m512i table = SETR16(SEGLOSS__EXP_TABLE, SEGLOSS__EXP_TABLE);
    x = _mm512_max_ps(_mm512_set1_ps(SEGLOSS__EXP_CLAMP), x); /* 2nd operand on NaN */
    __m512 tn = _mm512_fmadd_ps(x, _mm512_set1_ps(SEGLOSS__EXP_8_OVER_LN2), magic);
    __m512 r =
        _mm512_fnmadd_ps(_mm512_sub_ps(tn, magic), _mm512_set1_ps(SEGLOSS__EXP_LN2_OVER_8), x);
    __m512i bits = _mm512_castps_si512(tn);
    __m512i scale =
        _mm512_add_epi32(_mm512_permutexvar_epi32(bits, table), _mm512_slli_epi32(bits, 20));
    __m512 p = _mm512_fmadd_ps(r, _mm512_set1_ps(SEGLOSS__EXP_P3), _mm512_set1_ps(SEGLOSS__EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(scale));
}

/* log(x) for x > 0 and finite (Cephes logf, as in kernel_avx2.c). */
static inline AVX512 __m512 log_positive(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512i bits = _mm512_castps_si512(x);
    __m512i exp_bits = _mm512_srli_epi32(bits, 23);
    __m512 m = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f000000)));
    __m512 e = _mm512_cvtepi32_ps(_mm512_sub_epi32(exp_bits, _mm512_set1_epi32(126)));
    __mmask16 small = _mm512_cmp_ps_mask(m, _mm512_set1_ps(SEGLOSS__LOG_SQRTHF), _CMP_LT_OQ);
    e = _mm512_mask_sub_ps(e, small, e, one);
    m = _mm512_mask_add_ps(m, small, m, m);
    m = _mm512_sub_ps(m, one);
    __m512 z = _mm512_mul_ps(m, m);
    __m512 y = _mm512_set1_ps(segloss__log_poly[0]);
    for (int i = 1; i < SEGLOSS__LOG_POLY_LEN; i++)
        y = _mm512_fmadd_ps(y, m, _mm512_set1_ps(segloss__log_poly[i]));
    y = _mm512_mul_ps(_mm512_mul_ps(y, m), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(SEGLOSS__LOG_LN2_LO), y);
    y = _mm512_fnmadd_ps(z, _mm512_set1_ps(0.5f), y);
    __m512 r = _mm512_add_ps(m, y);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(SEGLOSS__LOG_LN2_HI), r);
}

/* log1p(t) from sum = 1 + t rounded and inv = 1 / sum (kernel_avx2.c). */
static inline AVX512 __m512 log1p_from_sum(__m512 t, __m512 sum, __m512 inv)
{
    __m512 lost = _mm512_sub_ps(t, _mm512_sub_ps(sum, _mm512_set1_ps(1.0f)));
    return _mm512_fmadd_ps(lost, inv, log_positive(sum));
}

/* 1 - exp(e) for e <= 0, accurate for small |e| (kernel_avx2.c). */
static inline AVX512 __m512 one_minus_exp(__m512 e)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 u = exp_nonpositive(e);
    __m512 um1 = _mm512_sub_ps(u, one);
    __mmask16 is_one = _mm512_cmp_ps_mask(um1, _mm512_setzero_ps(), _CMP_EQ_OQ);
    __mmask16 is_zero = _mm512_cmp_ps_mask(e, _mm512_set1_ps(-20.0f), _CMP_LT_OQ);
    __m512 safe_u = _mm512_mask_blend_ps((__mmask16)(is_one | is_zero), u, _mm512_set1_ps(0.5f));
    __m512 r = _mm512_div_ps(_mm512_mul_ps(um1, e), log_positive(safe_u));
    r = _mm512_mask_blend_ps(is_one, r, e);
    r = _mm512_mask_blend_ps(is_zero, r, _mm512_set1_ps(-1.0f));
    return _mm512_sub_ps(_mm512_setzero_ps(), r);
}

/* q^gamma for q in [0, 1]; q^0 = 1 as in torch.pow. */
static inline AVX512 __m512 pow_unit(__m512 q, float gamma, int gamma_kind)
{
    switch (gamma_kind) {
    case 0: return _mm512_set1_ps(1.0f);
    case 1: return q;
    case 2: return _mm512_mul_ps(q, q);
    default: break;
    }
    __mmask16 zero = _mm512_cmp_ps_mask(q, _mm512_setzero_ps(), _CMP_LE_OQ);
    __m512 safe = _mm512_mask_blend_ps(zero, q, _mm512_set1_ps(1.0f));
    __m512 r = exp_nonpositive(_mm512_mul_ps(_mm512_set1_ps(gamma), log_positive(safe)));
    return _mm512_maskz_mov_ps((__mmask16)~zero, r);
}

static inline AVX512 __m512d widen_sum(__m512d acc, __m512 v)
{
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(
        acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

/* Pass B's common case (every pixel counts, no per-class threshold): sum of e[k] * inv over
 * the block's groups in float (at most 4 terms per lane with 64-pixel blocks), then into
 * double. */
static inline AVX512 __attribute__((always_inline)) void
class_psum(const float *e, const float *inv, size_t groups, double *psum)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t g = 0;
    for (; g + 2 <= groups; g += 2) {
        s0 = _mm512_fmadd_ps(_mm512_load_ps(e + 16 * g), _mm512_load_ps(inv + 16 * g), s0);
        s1 =
            _mm512_fmadd_ps(_mm512_load_ps(e + 16 * g + 16), _mm512_load_ps(inv + 16 * g + 16), s1);
    }
    if (g < groups)
        s0 = _mm512_fmadd_ps(_mm512_load_ps(e + 16 * g), _mm512_load_ps(inv + 16 * g), s0);
    *psum += _mm512_reduce_add_pd(widen_sum(_mm512_setzero_pd(), _mm512_add_ps(s0, s1)));
}

/* Pass B's other cases for one class over the block (kernel_avx2.c class_sums): the sum of
 * p[k] over the pixels that count (`masks`, one bit per pixel, when `masked`) and, when
 * `count_positive`, the count of p[k] > threshold among them. */
static inline AVX512 __attribute__((always_inline)) void
class_sums(const float *e, const float *inv, const __mmask16 *masks, size_t groups,
           const int masked, const int count_positive, __m512 thr, double *psum, uint64_t *pos)
{
    __m512 part = _mm512_setzero_ps();
    unsigned cnt = 0;
    for (size_t g = 0; g < groups; g++) {
        __m512 p = _mm512_mul_ps(_mm512_load_ps(e + 16 * g), _mm512_load_ps(inv + 16 * g));
        __mmask16 mask = masked ? masks[g] : (__mmask16)0xffff;
        part = masked ? _mm512_mask_add_ps(part, mask, part, p) : _mm512_add_ps(part, p);
        if (count_positive)
            cnt += (unsigned)__builtin_popcount(
                (unsigned)_mm512_mask_cmp_ps_mask(mask, p, thr, _CMP_GT_OQ));
    }
    *psum += _mm512_reduce_add_pd(widen_sum(_mm512_setzero_pd(), part));
    if (count_positive)
        *pos += cnt;
}

/* All classes of a block through class_sums, with the flags made constant. */
static AVX512 void all_class_sums(const float *e_buf, const float *inv, const __mmask16 *masks,
                                  size_t c, size_t groups, int masked, int count_positive,
                                  __m512 thr, double *psum, uint64_t *pos)
{
#define CLASS_SUMS_LOOP(M, P)                                                                      \
    for (size_t k = 0; k < c; k++)                                                                 \
        class_sums(e_buf + k * SEGLOSS__PLANE, inv, masks, groups, M, P, thr, &psum[k], &pos[k]);
    if (masked && count_positive) {
        CLASS_SUMS_LOOP(1, 1)
    } else if (masked) {
        CLASS_SUMS_LOOP(1, 0)
    } else if (count_positive) {
        CLASS_SUMS_LOOP(0, 1)
    } else {
        for (size_t k = 0; k < c; k++)
            class_psum(e_buf + k * SEGLOSS__PLANE, inv, groups, &psum[k]);
    }
#undef CLASS_SUMS_LOOP
}

/* Groups of 16 pixels in a block. */
#define GROUPS_MAX (SEGLOSS__BLOCK / 16)

/* What the passes over a block share. */
typedef struct pass_state {
    const segloss__kernel_params *kp;
    const segloss__block *b;
    segloss__acc *acc;
    const float *src; /* the block's logits as given, class rows src_cs apart */
    const float *xb;  /* where the later passes read them: src, or their copy xs */
    float *xs;
    size_t c, src_cs, cs;
    const float *next; /* NULL, or the next block's logits to prefetch */
    float *e_buf, *inv_buf;
    float *t_buf, *m_buf;        /* per pixel: the sum t off the arg-max, the largest logit */
    int32_t *am_buf;             /* per pixel: the arg-max */
    __mmask16 valid[GROUPS_MAX]; /* per group: the pixels whose label is a class */
    int gamma_kind, argmax_threshold;
    float gamma, thr;
    __m512d ce_num, ce_den, focal;
    __mmask16 bad; /* set once a NaN or a logit beyond +-SEGLOSS_MAX_LOGIT was seen */
    __m512 max_logit;
    uint64_t valid_count;
} pass_state;

/* The lanes of v that are NaN or beyond +-SEGLOSS_MAX_LOGIT (limits.h): checked on every logit
 * as it is loaded, since a NaN at the arg-max or a +inf never reaches the sum t. */
static inline AVX512 __attribute__((always_inline)) __mmask16 out_of_range(const pass_state *st,
                                                                           __m512 v)
{
    return _mm512_cmp_ps_mask(_mm512_abs_ps(v), st->max_logit, _CMP_NLE_UQ);
}

/*
 * Pass A for NG (1 or 2) consecutive groups of 16 pixels from group g: max, first arg-max,
 * exponentials and their sum off the arg-max, kept per pixel for the label pass. Two groups
 * interleave so that one's loop-carried chains hide the other's latency.
 */
static inline AVX512 __attribute__((always_inline)) void
pass_a(pass_state *st, size_t g, const int NG, const int COPY, const int PREFETCH)
{
    const size_t c = st->c, cs = st->cs;
    const __m512i ione = _mm512_set1_epi32(1);
    const float *x[2], *src[2];
    float *dst[2];
    __m512i am[2];
    __m512 m[2], t[2];
    _Pragma("GCC unroll 2") for (int u = 0; u < NG; u++)
    {
        x[u] = st->xb + 16 * (g + (size_t)u);
        src[u] = st->src + 16 * (g + (size_t)u);
        dst[u] = st->xs + 16 * (g + (size_t)u);
        m[u] = _mm512_loadu_ps(src[u]);
        if (COPY)
            _mm512_store_ps(dst[u], m[u]);
        am[u] = _mm512_setzero_si512();
        st->bad |= out_of_range(st, m[u]);
    }
    /* the next block's two lines of each class that match this pair of groups */
    const float *ahead = PREFETCH ? st->next + 16 * g : NULL;
    if (PREFETCH) {
        _mm_prefetch((const char *)ahead, _MM_HINT_NTA);
        _mm_prefetch((const char *)(ahead + 16), _MM_HINT_NTA);
    }
    __m512i kvec = ione;
    _Pragma("GCC unroll 2") for (size_t k = 1; k < c; k++)
    {
        if (PREFETCH) {
            _mm_prefetch((const char *)(ahead + k * st->src_cs), _MM_HINT_NTA);
            _mm_prefetch((const char *)(ahead + k * st->src_cs + 16), _MM_HINT_NTA);
        }
        _Pragma("GCC unroll 2") for (int u = 0; u < NG; u++)
        {
            __m512 v = _mm512_loadu_ps(src[u] + k * st->src_cs);
            if (COPY)
                _mm512_store_ps(dst[u] + k * SEGLOSS__PLANE, v);
            st->bad |= out_of_range(st, v);
            __mmask16 gt = _mm512_cmp_ps_mask(v, m[u], _CMP_GT_OQ);
            m[u] = _mm512_max_ps(m[u], v);
            am[u] = _mm512_mask_mov_epi32(am[u], gt, kvec);
        }
        kvec = _mm512_add_epi32(kvec, ione);
    }
    _Pragma("GCC unroll 2") for (int u = 0; u < NG; u++) t[u] = _mm512_setzero_ps();
    kvec = _mm512_setzero_si512();
    _Pragma("GCC unroll 2") for (size_t k = 0; k < c; k++)
    {
        _Pragma("GCC unroll 2") for (int u = 0; u < NG; u++)
        {
            __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(x[u] + k * cs), m[u]));
            _mm512_store_ps(st->e_buf + k * SEGLOSS__PLANE + 16 * (g + (size_t)u), e);
            __mmask16 off_am = _mm512_cmpneq_epi32_mask(am[u], kvec);
            t[u] = _mm512_mask_add_ps(t[u], off_am, t[u], e);
        }
        kvec = _mm512_add_epi32(kvec, ione);
    }
    _Pragma("GCC unroll 2") for (int u = 0; u < NG; u++)
    {
        size_t gu = g + (size_t)u;
        _mm512_store_ps(st->t_buf + 16 * gu, t[u]);
        _mm512_store_ps(st->m_buf + 16 * gu, m[u]);
        _mm512_store_si512((void *)(st->am_buf + 16 * gu), am[u]);
    }
}

/* The label pass for group g (kernel_avx2.c label_terms): CE, focal, Dice tp and the
 * confusion entries of its 16 pixels. */
static inline AVX512 __attribute__((always_inline)) void label_terms(pass_state *st, size_t g)
{
    const size_t c = st->c, cs = st->cs;
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    const __m512i vc = _mm512_set1_epi32((int)c), vcm1 = _mm512_set1_epi32((int)c - 1);
    const __m512i lane_off =
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const float *x = st->xb + 16 * g;
    const __m512i y = _mm512_cvtepu16_epi32(
        _mm256_loadu_si256((const __m256i *)(const void *)(st->b->labels + 16 * g)));
    const __mmask16 valid = _mm512_cmplt_epi32_mask(y, vc);
    const __m512 t = _mm512_load_ps(st->t_buf + 16 * g), m = _mm512_load_ps(st->m_buf + 16 * g);
    const __m512i ami = _mm512_load_si512((const void *)(st->am_buf + 16 * g));
    /* a NaN logit makes its exponential NaN; +inf makes x - m NaN for its class */
    __m512 sum = _mm512_add_ps(one, t);
    __m512 inv = _mm512_div_ps(one, sum);
    _mm512_store_ps(st->inv_buf + 16 * g, inv);
    st->valid[g] = valid;
    __m512i yc = _mm512_min_epi32(y, vcm1);
    __m512 dy = _mm512_sub_ps(
        _mm512_i32gather_ps(
            _mm512_add_epi32(_mm512_mullo_epi32(yc, _mm512_set1_epi32((int)cs)), lane_off), x, 4),
        m);
    __m512 ey = _mm512_i32gather_ps(
        _mm512_add_epi32(_mm512_mullo_epi32(yc, _mm512_set1_epi32(SEGLOSS__PLANE)), lane_off),
        st->e_buf + 16 * g, 4);
    __m512 lp = _mm512_maskz_sub_ps(valid, dy, log1p_from_sum(t, sum, inv));
    __m512 wy, fexp, fm, q;
    if (st->kp->uniform_tables) {
        wy = _mm512_maskz_mov_ps(valid, one);
        fm = _mm512_set1_ps(st->kp->focal_m_f[0]);
    } else {
        __m512i yt = _mm512_min_epi32(y, vc);
        wy = _mm512_i32gather_ps(yt, st->kp->ce_w_f, 4);
        fm = _mm512_i32gather_ps(yt, st->kp->focal_m_f, 4);
    }
    if (st->kp->unit_focal_exponent) {
        /* 1 - p_t without cancellation: t when y is the arg-max, else 1 + (t - e[y]) */
        fexp = lp;
        __m512 rest = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(yc, ami),
                                           _mm512_add_ps(one, _mm512_sub_ps(t, ey)), t);
        q = _mm512_mul_ps(rest, inv);
    } else {
        __m512i yt = _mm512_min_epi32(y, vc);
        fexp = _mm512_mul_ps(_mm512_i32gather_ps(yt, st->kp->focal_e_f, 4), lp);
        q = one_minus_exp(fexp);
    }
    st->ce_num = widen_sum(st->ce_num, _mm512_mul_ps(wy, _mm512_sub_ps(zero, lp)));
    st->ce_den = widen_sum(st->ce_den, wy);
    __m512 term = _mm512_mul_ps(_mm512_mul_ps(fm, pow_unit(q, st->gamma, st->gamma_kind)), fexp);
    st->focal = widen_sum(st->focal, _mm512_sub_ps(zero, term));

    /* the label-indexed sums, one pixel at a time and without branches (ignored pixels land
     * in the spare row C with zero terms); with a threshold of 0.5 or more the arg-max's
     * count rides in the high half of the confusion entry (loss_internal.h) */
    __m512 py = _mm512_maskz_mul_ps(valid, ey, inv);
    __m512i cell = _mm512_add_epi32(_mm512_mullo_epi32(y, vc), ami);
    __mmask16 passed = 0;
    if (st->argmax_threshold)
        passed = _mm512_mask_cmp_ps_mask(st->kp->seed ? (__mmask16)0xffff : valid, inv,
                                         _mm512_set1_ps(st->thr), _CMP_GT_OQ);
    const __m512i one64 = _mm512_set1_epi64(1);
    const __m512i one64_passed = _mm512_set1_epi64((int64_t)1 | ((int64_t)1 << 32));
    int32_t cells[16], ys[16];
    uint64_t incs[16];
    double pyd[16];
    _mm512_storeu_si512((void *)cells, cell);
    _mm512_storeu_si512((void *)ys, y);
    _mm512_storeu_si512((void *)incs, _mm512_mask_mov_epi64(one64, (__mmask8)passed, one64_passed));
    _mm512_storeu_si512((void *)(incs + 8),
                        _mm512_mask_mov_epi64(one64, (__mmask8)(passed >> 8), one64_passed));
    _mm512_storeu_pd(pyd, _mm512_cvtps_pd(_mm512_castps512_ps256(py)));
    _mm512_storeu_pd(pyd + 8, _mm512_cvtps_pd(_mm256_castpd_ps(
                                  _mm512_extractf64x4_pd(_mm512_castps_pd(py), 1))));
    if (st->b->argmax)
        _mm256_storeu_si256((__m256i *)(void *)(st->b->argmax + 16 * g),
                            _mm512_cvtepi32_epi16(ami));
    segloss__acc *acc = st->acc;
    _Pragma("GCC unroll 16") for (int l = 0; l < 16; l++)
    {
        acc->confusion[cells[l]] += incs[l];
        acc->dice_tp[ys[l]] += pyd[l];
    }
    if (!st->argmax_threshold) {
        uint32_t over = _mm512_cmp_ps_mask(py, _mm512_set1_ps(st->thr), _CMP_GT_OQ);
        for (int l = 0; l < 16; l++)
            acc->fscore_tp[ys[l]] += (over >> l) & 1u;
    }
    st->valid_count += (uint64_t)__builtin_popcount((unsigned)valid);
}

AVX512 void segloss__kernel_avx512(const segloss__kernel_params *kp, const segloss__block *b,
                                   segloss__acc *acc, float *scratch)
{
    const size_t c = kp->c, groups = b->count / 16;
    pass_state st = {
        .kp = kp,
        .b = b,
        .acc = acc,
        .c = c,
        /* scratch: logits copy | e[k] (both class-major, PLANE apart) | 1 / sum | t | m | am */
        .e_buf = scratch + c * SEGLOSS__PLANE,
        .gamma_kind = kp->gamma == 0   ? 0
                      : kp->gamma == 1 ? 1
                      : kp->gamma == 2 ? 2
                                       : 3,
        .argmax_threshold = kp->threshold >= 0.5,
        .gamma = (float)kp->gamma,
        .thr = (float)kp->threshold,
        .ce_num = _mm512_setzero_pd(),
        .ce_den = _mm512_setzero_pd(),
        .focal = _mm512_setzero_pd(),
        .max_logit = _mm512_set1_ps((float)SEGLOSS_MAX_LOGIT),
    };
    st.inv_buf = st.e_buf + c * SEGLOSS__PLANE;
    st.t_buf = st.inv_buf + SEGLOSS__PLANE;
    st.m_buf = st.t_buf + SEGLOSS__PLANE;
    st.am_buf = (int32_t *)(void *)(st.m_buf + SEGLOSS__PLANE);
    /* far-apart class rows are copied into scratch as pass A reads them (kernel_avx2.c) */
    const int copy = b->class_stride > SEGLOSS__PLANE;
    st.src = b->x;
    st.src_cs = b->class_stride;
    st.xs = scratch;
    st.xb = copy ? scratch : b->x;
    st.cs = copy ? SEGLOSS__PLANE : b->class_stride;
    st.next = b->next_x;

    size_t g = 0;
    if (copy && st.next) {
        for (; g + 2 <= groups; g += 2)
            pass_a(&st, g, 2, 1, 1);
    } else if (copy) {
        for (; g + 2 <= groups; g += 2)
            pass_a(&st, g, 2, 1, 0);
    } else {
        for (; g + 2 <= groups; g += 2)
            pass_a(&st, g, 2, 0, 0);
    }
    if (g < groups)
        pass_a(&st, g, 1, copy, 0);
    for (g = 0; g < groups; g++)
        label_terms(&st, g);

    all_class_sums(st.e_buf, st.inv_buf, st.valid, c, groups, !kp->seed, !st.argmax_threshold,
                   _mm512_set1_ps(st.thr), acc->dice_psum, acc->fscore_pos);

    acc->ce_num += _mm512_reduce_add_pd(st.ce_num);
    acc->ce_den += _mm512_reduce_add_pd(st.ce_den);
    acc->focal_num += _mm512_reduce_add_pd(st.focal);
    acc->valid += st.valid_count;
    if (st.bad)
        acc->nonfinite = 1;

    if (b->count % 16) {
        segloss__block tail = *b;
        tail.x = b->x + 16 * groups;
        tail.labels = b->labels + 16 * groups;
        tail.argmax = b->argmax ? b->argmax + 16 * groups : NULL;
        tail.count = b->count % 16;
        tail.next_x = NULL;
        segloss__kernel_scalar(kp, &tail, acc, scratch);
    }
}

#else

int segloss__cpu_has_avx512(void)
{
    return 0;
}

void segloss__kernel_avx512(const segloss__kernel_params *kp, const segloss__block *b,
                            segloss__acc *acc, float *scratch)
{
    segloss__kernel_scalar(kp, b, acc, scratch);
}

#endif
