/*
 * kernel_avx2.c - the AVX2+FMA kernel: eight pixels per vector, float32 arithmetic, double
 * accumulation.
 *
 * Compiled with a target attribute rather than -mavx2, so the library runs on any x86-64 and the
 * context picks this kernel only after CPUID says yes. A block goes through three loops:
 *   pass A   per pair of groups of 8 pixels: max and first arg-max over the classes (copying
 *            far-apart class rows into scratch and prefetching the next block as it reads),
 *            then e[k] = exp(x[k] - m) into scratch and t = their sum off the arg-max;
 *   labels   per group: log p[y] = (x[y] - m) - log1p(t), CE and focal, Dice tp and the
 *            confusion entries, one pixel at a time for the label-indexed parts;
 *   pass B   per class: p[k] = e[k] / (1 + t) into the Dice and f_score sums.
 * The formulas are the scalar kernel's (kernel_scalar.c); tests hold the two together. The
 * exponential is about a third of the time and the FMA ports are the first resource to run
 * out, which is what the choices below are made for.
 */
#include "loss/kernel_constants.h"
#include "loss/loss_internal.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <immintrin.h>
#include <math.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

int segloss__cpu_has_avx2(void)
{
    /* F16C from CPUID leaf 1 (ECX bit 29) and the OS saving YMM state (OSXSAVE + XCR0),
     * since clang's __builtin_cpu_supports knows no "f16c" */
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 29)) || !(ecx & (1u << 27)))
        return 0;
    unsigned xcr0_lo, xcr0_hi;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 6u) != 6u)
        return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* exp(x) for x <= 0: relative error below 2e-7 where e^x > 1e-4 and below 4e-7 down to the
 * clamp (measured over [-87, 0]); exactly 1 at 0. With n8 = round(x * 8/ln2),
 * x = n8 ln2/8 + r and |r| <= ln2/16, so e^x = 2^(n8 div 8) * 2^((n8 mod 8)/8) * e^r: an
 * eight-entry table in one register (vpermd), the exponent field, and a degree-3 minimax
 * polynomial for e^r (relative error 8e-8 in float, tests/tools/fit_exp_poly.py). This keeps
 * it to six multiply-adds: the FMA ports are what the kernel runs out of first. The one-step
 * reduction's error grows with |n8|, which is why the bound is looser for tiny results.
 * Below -87 the argument is clamped: 1.6e-38 instead of a denormal or 0, which nothing
 * downstream can tell apart, and the exponent stays normal. A NaN argument gives NaN (the
 * clamp keeps it and the result is a product with the polynomial), which is how the kernel
 * notices bad input. */
static inline AVX2 __m256 exp_nonpositive(__m256 x)
{
    /* 1.5 * 2^23: adding it rounds x * 8/ln2 to an integer n8 in the low mantissa bits */
    const __m256 magic = _mm256_set1_ps(SEGLOSS__EXP_MAGIC);
    /* The bits of 2^(j/8), j = 0..7, less j << 20: shifting n8 = 8n + j left by 20 gives
     * (n << 23) + (j << 20), so adding it to entry j (vpermd reads the low 3 bits of n8) makes
     * the bits of 2^(j/8) * 2^n with no masking. */
    const __m256i table = _mm256_setr_epi32(SEGLOSS__EXP_TABLE);
    x = _mm256_max_ps(_mm256_set1_ps(SEGLOSS__EXP_CLAMP), x); /* 2nd operand on NaN */
    __m256 tn = _mm256_fmadd_ps(x, _mm256_set1_ps(SEGLOSS__EXP_8_OVER_LN2), magic);
    __m256 r =
        _mm256_fnmadd_ps(_mm256_sub_ps(tn, magic), _mm256_set1_ps(SEGLOSS__EXP_LN2_OVER_8), x);
    __m256i bits = _mm256_castps_si256(tn);
    __m256i scale =
        _mm256_add_epi32(_mm256_permutevar8x32_epi32(table, bits), _mm256_slli_epi32(bits, 20));
    __m256 p = _mm256_fmadd_ps(r, _mm256_set1_ps(SEGLOSS__EXP_P3), _mm256_set1_ps(SEGLOSS__EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
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
    __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(SEGLOSS__LOG_SQRTHF), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(one, small));
    m = _mm256_add_ps(m, _mm256_and_ps(m, small));
    m = _mm256_sub_ps(m, one);
    __m256 z = _mm256_mul_ps(m, m);
    __m256 y = _mm256_set1_ps(segloss__log_poly[0]);
    for (int i = 1; i < SEGLOSS__LOG_POLY_LEN; i++)
        y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(segloss__log_poly[i]));
    y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(SEGLOSS__LOG_LN2_LO), y);
    y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
    __m256 r = _mm256_add_ps(m, y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(SEGLOSS__LOG_LN2_HI), r);
}

/* log1p(t) for t >= 0 given sum = 1 + t rounded and inv = 1 / sum: log(sum) corrected by the
 * rounding of the sum to first order, (t - (sum - 1)) / sum, which keeps small t accurate. */
static inline AVX2 __m256 log1p_from_sum(__m256 t, __m256 sum, __m256 inv)
{
    __m256 lost = _mm256_sub_ps(t, _mm256_sub_ps(sum, _mm256_set1_ps(1.0f)));
    return _mm256_fmadd_ps(lost, inv, log_positive(sum));
}

/* 1 - exp(e) for e <= 0, accurate for small |e| (Kahan's expm1 trick). */
static inline AVX2 __m256 one_minus_exp(__m256 e)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 u = exp_nonpositive(e);
    __m256 um1 = _mm256_sub_ps(u, one);
    __m256 is_one = _mm256_cmp_ps(um1, _mm256_setzero_ps(), _CMP_EQ_OQ);
    /* below -20, 1 - exp(e) is 1 in float (and exp_nonpositive clamps at -87.3) */
    __m256 is_zero = _mm256_cmp_ps(e, _mm256_set1_ps(-20.0f), _CMP_LT_OQ);
    __m256 safe_u = _mm256_blendv_ps(u, _mm256_set1_ps(0.5f), _mm256_or_ps(is_one, is_zero));
    __m256 r = _mm256_div_ps(_mm256_mul_ps(um1, e), log_positive(safe_u));
    r = _mm256_blendv_ps(r, e, is_one); /* exp(e) rounds to 1: expm1(e) = e */
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

/* Pass B's common case (every pixel counts, no per-class threshold): sum of e[k] * inv over
 * the block in four float chains of at most 8 terms each, then once into double. */
static inline AVX2 __attribute__((always_inline)) void class_psum(const float *e, const float *inv,
                                                                  size_t groups, double *psum)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t g = 0;
    for (; g + 4 <= groups; g += 4) {
        s0 = _mm256_fmadd_ps(_mm256_load_ps(e + 8 * g), _mm256_load_ps(inv + 8 * g), s0);
        s1 = _mm256_fmadd_ps(_mm256_load_ps(e + 8 * g + 8), _mm256_load_ps(inv + 8 * g + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_load_ps(e + 8 * g + 16), _mm256_load_ps(inv + 8 * g + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_load_ps(e + 8 * g + 24), _mm256_load_ps(inv + 8 * g + 24), s3);
    }
    for (; g < groups; g++)
        s0 = _mm256_fmadd_ps(_mm256_load_ps(e + 8 * g), _mm256_load_ps(inv + 8 * g), s0);
    __m256d wide =
        widen_sum(widen_sum(_mm256_setzero_pd(), _mm256_add_ps(s0, s1)), _mm256_add_ps(s2, s3));
    *psum += hsum_pd(wide);
}

/*
 * Pass B's other cases, for one class over the block: sum of p[k] = e[k] * inv into psum for
 * the pixels that count (`masks`: the valid ones, in standard semantics) and, when the
 * threshold is below 0.5 (several classes may pass it), the count of p[k] > threshold. The
 * flags are compile-time constants at each call, so every variant is its own tight loop.
 */
static inline AVX2 __attribute__((always_inline)) void
class_sums(const float *e, const float *inv, const float *masks, size_t groups, const int masked,
           const int count_positive, __m256 thr, double *psum, uint64_t *pos)
{
    __m256d wide = _mm256_setzero_pd();
    __m256i cnt = _mm256_setzero_si256();
    size_t g = 0;
    while (g < groups) {
        /* float partial sums over at most FLUSH_GROUPS groups, then into double */
        size_t end = g + FLUSH_GROUPS < groups ? g + FLUSH_GROUPS : groups;
        __m256 part = _mm256_setzero_ps();
        for (; g < end; g++) {
            __m256 ev = _mm256_load_ps(e + 8 * g), iv = _mm256_load_ps(inv + 8 * g);
            __m256 p = _mm256_mul_ps(ev, iv);
            __m256 mask =
                masked ? _mm256_load_ps(masks + 8 * g) : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
            part = _mm256_add_ps(part, masked ? _mm256_and_ps(p, mask) : p);
            if (count_positive)
                cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_and_ps(
                                                _mm256_cmp_ps(p, thr, _CMP_GT_OQ), mask)));
        }
        wide = widen_sum(wide, part);
    }
    *psum += hsum_pd(wide);
    if (count_positive) {
        int32_t lanes[8];
        _mm256_storeu_si256((__m256i *)(void *)lanes, cnt);
        uint64_t s = 0;
        for (int l = 0; l < 8; l++)
            s += (uint64_t)lanes[l];
        *pos += s;
    }
}

/* All classes of a block through class_sums, with the flags made constant. */
static AVX2 void all_class_sums(const float *e_buf, const float *inv, const float *masks, size_t c,
                                size_t groups, int masked, int count_positive, __m256 thr,
                                double *psum, uint64_t *pos)
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

/* What the passes over a block share. */
typedef struct pass_a_state {
    const segloss__kernel_params *kp;
    const segloss__block *b;
    segloss__acc *acc;
    const float *src; /* the block's logits as given, class rows src_cs apart */
    const float *xb;  /* where pass 2 reads them: src, or their copy xs in scratch */
    float *xs;
    size_t c, src_cs, cs;
    const float *next; /* NULL, or the next block's logits to prefetch */
    float *e_buf, *inv_buf, *mask_buf;
    float *t_buf, *m_buf; /* per pixel: the sum t off the arg-max, the largest logit */
    int32_t *am_buf;      /* per pixel: the arg-max */
    int gamma_kind, argmax_threshold;
    float gamma, thr;
    __m256 thr_v;
    __m256d ce_num, ce_den, focal;
    __m256 bad; /* set once a NaN or a logit beyond +-SEGLOSS_MAX_LOGIT was seen */
    __m256 abs_mask, max_logit;
    uint64_t valid_count;
} pass_a_state;

/* All ones in the lanes of v that are NaN or beyond +-SEGLOSS_MAX_LOGIT (limits.h): checked
 * on every logit as it is loaded, since a NaN at the arg-max or a +inf never reaches t. */
static inline AVX2 __attribute__((always_inline)) __m256 out_of_range(const pass_a_state *st,
                                                                      __m256 v)
{
    return _mm256_cmp_ps(_mm256_and_ps(v, st->abs_mask), st->max_logit, _CMP_NLE_UQ);
}

/*
 * Pass A for NG (1 or 2) consecutive groups of 8 pixels starting at group g: max, arg-max,
 * exponentials and their sum, kept per pixel for the label pass. Two groups are interleaved
 * so that the loop-carried chains (running max, arg-max, sum) of one hide the latency of the
 * other's.
 */
static inline AVX2 __attribute__((always_inline)) void
pass_a(pass_a_state *st, size_t g, const int NG, const int COPY, const int PREFETCH)
{
    const size_t c = st->c, cs = st->cs;
    const __m256 zero = _mm256_setzero_ps();
    const __m256i ione = _mm256_set1_epi32(1);
    const float *x[2], *src[2];
    float *dst[2];
    __m256i ami[2];
    __m256 m[2], am[2], t[2];
#pragma GCC unroll 2
    for (int u = 0; u < NG; u++) {
        x[u] = st->xb + 8 * (g + (size_t)u);
        src[u] = st->src + 8 * (g + (size_t)u);
        dst[u] = st->xs + 8 * (g + (size_t)u);
        /* max, first arg-max (strictly greater moves it), finiteness probe */
        m[u] = _mm256_loadu_ps(src[u]);
        if (COPY)
            _mm256_store_ps(dst[u], m[u]);
        am[u] = zero; /* int32 lanes held in a float register */
        st->bad = _mm256_or_ps(st->bad, out_of_range(st, m[u]));
    }
    /* The next block's line of each class that matches this pair of groups is requested now,
     * so it is there when that block starts (one line per class per pair: 64 bytes = 16
     * floats). The hardware prefetcher does not follow 21 streams 1 MiB apart on its own. */
    const float *ahead = PREFETCH ? st->next + 8 * g : NULL;
    if (PREFETCH)
        _mm_prefetch((const char *)ahead, _MM_HINT_NTA);
    __m256i kvec = ione;
#pragma GCC unroll 2
    for (size_t k = 1; k < c; k++) {
        if (PREFETCH)
            _mm_prefetch((const char *)(ahead + k * st->src_cs), _MM_HINT_NTA);
#pragma GCC unroll 2
        for (int u = 0; u < NG; u++) {
            __m256 v = _mm256_loadu_ps(src[u] + k * st->src_cs);
            if (COPY)
                _mm256_store_ps(dst[u] + k * SEGLOSS__PLANE, v);
            st->bad = _mm256_or_ps(st->bad, out_of_range(st, v));
            __m256 gt = _mm256_cmp_ps(v, m[u], _CMP_GT_OQ);
            m[u] = _mm256_max_ps(m[u], v);
            am[u] = _mm256_blendv_ps(am[u], _mm256_castsi256_ps(kvec), gt);
        }
        kvec = _mm256_add_epi32(kvec, ione);
    }
/* exponentials and their sum off the arg-max (whose term is exactly 1) */
#pragma GCC unroll 2
    for (int u = 0; u < NG; u++) {
        ami[u] = _mm256_castps_si256(am[u]);
        t[u] = zero;
    }
    kvec = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (size_t k = 0; k < c; k++) {
#pragma GCC unroll 2
        for (int u = 0; u < NG; u++) {
            __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x[u] + k * cs), m[u]));
            _mm256_store_ps(st->e_buf + k * SEGLOSS__PLANE + 8 * (g + (size_t)u), e);
            __m256 is_am = _mm256_castsi256_ps(_mm256_cmpeq_epi32(ami[u], kvec));
            t[u] = _mm256_add_ps(t[u], _mm256_andnot_ps(is_am, e));
        }
        kvec = _mm256_add_epi32(kvec, ione);
    }
#pragma GCC unroll 2
    for (int u = 0; u < NG; u++) {
        size_t gu = g + (size_t)u;
        _mm256_store_ps(st->t_buf + 8 * gu, t[u]);
        _mm256_store_ps(st->m_buf + 8 * gu, m[u]);
        _mm256_store_si256((__m256i *)(void *)(st->am_buf + 8 * gu), ami[u]);
    }
}

/*
 * The label pass for group g, after pass A of the whole block: CE, focal, Dice tp and the
 * confusion entries of its 8 pixels. Run as its own loop, the groups are independent work
 * that overlaps freely, where inside pass A its long dependency chain (divide, log) stalled
 * the next group's start.
 */
static inline AVX2 __attribute__((always_inline)) void label_terms(pass_a_state *st, size_t g)
{
    const size_t c = st->c, cs = st->cs;
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    const __m256i vc = _mm256_set1_epi32((int)c), vcm1 = _mm256_set1_epi32((int)c - 1);
    const __m256i lane_off = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const float *x = st->xb + 8 * g;
    const __m256i y =
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(st->b->labels + 8 * g)));
    const __m256 validf = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vc, y));
    const __m256 t = _mm256_load_ps(st->t_buf + 8 * g), m = _mm256_load_ps(st->m_buf + 8 * g);
    const __m256i ami = _mm256_load_si256((const __m256i *)(const void *)(st->am_buf + 8 * g));
    __m256 sum = _mm256_add_ps(one, t);
    __m256 inv = _mm256_div_ps(one, sum);
    _mm256_store_ps(st->inv_buf + 8 * g, inv);
    _mm256_store_ps(st->mask_buf + 8 * g, validf);
    /* the label's terms: log p[y] = (x[y] - m) - log1p(t); CE and focal */
    __m256i yc = _mm256_min_epi32(y, vcm1);
    __m256 dy = _mm256_sub_ps(
        _mm256_i32gather_ps(
            x, _mm256_add_epi32(_mm256_mullo_epi32(yc, _mm256_set1_epi32((int)cs)), lane_off), 4),
        m);
    __m256 ey = _mm256_i32gather_ps(
        st->e_buf + 8 * g,
        _mm256_add_epi32(_mm256_mullo_epi32(yc, _mm256_set1_epi32(SEGLOSS__PLANE)), lane_off), 4);
    __m256 lp = _mm256_and_ps(_mm256_sub_ps(dy, log1p_from_sum(t, sum, inv)), validf);
    __m256 wy, fexp, fm, q;
    if (st->kp->uniform_tables) {
        wy = _mm256_and_ps(validf, one);
        fm = _mm256_set1_ps(st->kp->focal_m_f[0]);
    } else {
        __m256i yt = _mm256_min_epi32(y, vc);
        wy = _mm256_i32gather_ps(st->kp->ce_w_f, yt, 4);
        fm = _mm256_i32gather_ps(st->kp->focal_m_f, yt, 4);
    }
    if (st->kp->unit_focal_exponent) {
        /* p_t = p[y], so 1 - p_t is the sum of the other classes' exponentials over the
         * whole sum, with no cancellation: t when y is the arg-max, else 1 + (t - e[y]) */
        fexp = lp;
        __m256 rest = _mm256_blendv_ps(_mm256_add_ps(one, _mm256_sub_ps(t, ey)), t,
                                       _mm256_castsi256_ps(_mm256_cmpeq_epi32(yc, ami)));
        q = _mm256_mul_ps(rest, inv);
    } else {
        __m256i yt = _mm256_min_epi32(y, vc);
        fexp = _mm256_mul_ps(_mm256_i32gather_ps(st->kp->focal_e_f, yt, 4), lp);
        q = one_minus_exp(fexp);
    }
    st->ce_num = widen_sum(st->ce_num, _mm256_mul_ps(wy, _mm256_sub_ps(zero, lp)));
    st->ce_den = widen_sum(st->ce_den, wy);
    __m256 term = _mm256_mul_ps(_mm256_mul_ps(fm, pow_unit(q, st->gamma, st->gamma_kind)), fexp);
    st->focal = widen_sum(st->focal, _mm256_sub_ps(zero, term));

    /* the label-indexed sums, one pixel at a time and without branches: an ignored pixel
     * (label C) lands in the spare row and entries, with zero terms. With a threshold of
     * 0.5 or more, "p > threshold" can only hold for the arg-max class (p = 1 / sum): its
     * count rides in the high half of the pixel's confusion entry (loss_internal.h). */
    __m256 py = _mm256_and_ps(_mm256_mul_ps(ey, inv), validf);
    __m256i cell = _mm256_add_epi32(_mm256_mullo_epi32(y, vc), ami);
    __m256i passed = _mm256_setzero_si256();
    if (st->argmax_threshold) {
        __m256 counted = st->kp->seed ? inv : _mm256_and_ps(inv, validf);
        passed = _mm256_srli_epi32(
            _mm256_castps_si256(_mm256_cmp_ps(counted, st->thr_v, _CMP_GT_OQ)), 31);
    }
    const __m256i one64 = _mm256_set1_epi64x(1);
    int32_t cells[8], ys[8];
    uint64_t incs[8];
    double pyd[8];
    _mm256_storeu_si256((__m256i *)(void *)cells, cell);
    _mm256_storeu_si256((__m256i *)(void *)ys, y);
    _mm256_storeu_si256(
        (__m256i *)(void *)incs,
        _mm256_or_si256(
            one64, _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(passed)), 32)));
    _mm256_storeu_si256(
        (__m256i *)(void *)(incs + 4),
        _mm256_or_si256(
            one64,
            _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(passed, 1)), 32)));
    _mm256_storeu_pd(pyd, _mm256_cvtps_pd(_mm256_castps256_ps128(py)));
    _mm256_storeu_pd(pyd + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(py, 1)));
    if (st->b->argmax)
        _mm_storeu_si128(
            (__m128i *)(void *)(st->b->argmax + 8 * g),
            _mm_packus_epi32(_mm256_castsi256_si128(ami), _mm256_extracti128_si256(ami, 1)));
    segloss__acc *acc = st->acc;
    _Pragma("GCC unroll 8") for (int l = 0; l < 8; l++)
    {
        acc->confusion[cells[l]] += incs[l];
        acc->dice_tp[ys[l]] += pyd[l];
    }
    if (!st->argmax_threshold) {
        float pys[8];
        _mm256_storeu_ps(pys, py);
        for (int l = 0; l < 8; l++)
            acc->fscore_tp[ys[l]] += pys[l] > st->thr;
    }
    st->valid_count += (uint64_t)__builtin_popcount((unsigned)_mm256_movemask_ps(validf));
}

AVX2 void segloss__kernel_avx2(const segloss__kernel_params *kp, const segloss__block *b,
                               segloss__acc *acc, float *scratch)
{
    const size_t c = kp->c, groups = b->count / 8;
    pass_a_state st = {
        .kp = kp,
        .b = b,
        .acc = acc,
        .c = c,
        /* scratch: logits copy | e[k] (both class-major, PLANE apart) | 1 / sum | mask */
        .e_buf = scratch + c * SEGLOSS__PLANE,
        .gamma_kind = kp->gamma == 0   ? 0
                      : kp->gamma == 1 ? 1
                      : kp->gamma == 2 ? 2
                                       : 3,
        /* With a threshold of at least 0.5 only the arg-max class can pass it (probabilities
         * sum to 1): f_score's positive count is one check per pixel, not one per class. */
        .argmax_threshold = kp->threshold >= 0.5,
        .gamma = (float)kp->gamma,
        .thr = (float)kp->threshold,
        .thr_v = _mm256_set1_ps((float)kp->threshold),
        .ce_num = _mm256_setzero_pd(),
        .ce_den = _mm256_setzero_pd(),
        .focal = _mm256_setzero_pd(),
        .bad = _mm256_setzero_ps(),
        .abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)),
        .max_logit = _mm256_set1_ps((float)SEGLOSS_MAX_LOGIT),
    };
    st.inv_buf = st.e_buf + c * SEGLOSS__PLANE;
    st.mask_buf = st.inv_buf + SEGLOSS__PLANE;
    st.t_buf = st.mask_buf + SEGLOSS__PLANE;
    st.m_buf = st.t_buf + SEGLOSS__PLANE;
    st.am_buf = (int32_t *)(void *)(st.m_buf + SEGLOSS__PLANE);
    /* Pass 1 copies logits whose class rows are far apart (the 1 MiB planes of a 512x512
     * input, which would thrash L1 and L2 if pass 2 walked them class by class per group) into
     * scratch rows PLANE apart as it reads them; small or converted blocks are used in place. */
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

    /* pass B, per class over the whole block: probabilities into Dice / f_score sums */
    all_class_sums(st.e_buf, st.inv_buf, st.mask_buf, c, groups, !kp->seed, !st.argmax_threshold,
                   _mm256_set1_ps(st.thr), acc->dice_psum, acc->fscore_pos);

    acc->ce_num += hsum_pd(st.ce_num);
    acc->ce_den += hsum_pd(st.ce_den);
    acc->focal_num += hsum_pd(st.focal);
    acc->valid += st.valid_count;
    if (_mm256_movemask_ps(st.bad))
        acc->nonfinite = 1;

    if (b->count % 8) {
        segloss__block tail = *b;
        tail.x = b->x + 8 * groups;
        tail.labels = b->labels + 8 * groups;
        tail.argmax = b->argmax ? b->argmax + 8 * groups : NULL;
        tail.count = b->count % 8;
        segloss__kernel_scalar(kp, &tail, acc, scratch);
    }
}

AVX2 void segloss__lerp_avx2(const float *s0, const float *s1, float l1y,
                             const segloss__lerp_cols *cols, size_t col, size_t count, float *dst)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 vl1y = _mm256_set1_ps(l1y), vl0y = _mm256_set1_ps(1.0f - l1y);
    size_t p = 0;
    for (; p + 8 <= count; p += 8) {
        size_t j = col + p;
        int32_t window = j % 8 ? -1 : cols->window[j / 8];
        if (window < 0) {
            segloss__lerp_scalar(s0, s1, l1y, cols, j, 8, dst + p);
            continue;
        }
        __m256i i0 = _mm256_loadu_si256((const __m256i *)(const void *)(cols->off0 + j));
        __m256i i1 = _mm256_loadu_si256((const __m256i *)(const void *)(cols->off1 + j));
        __m256 l1x = _mm256_loadu_ps(cols->l1 + j), l0x = _mm256_sub_ps(one, l1x);
        __m256 w0 = _mm256_loadu_ps(s0 + window), w1 = _mm256_loadu_ps(s1 + window);
        __m256 top = _mm256_add_ps(_mm256_mul_ps(l0x, _mm256_permutevar8x32_ps(w0, i0)),
                                   _mm256_mul_ps(l1x, _mm256_permutevar8x32_ps(w0, i1)));
        __m256 bottom = _mm256_add_ps(_mm256_mul_ps(l0x, _mm256_permutevar8x32_ps(w1, i0)),
                                      _mm256_mul_ps(l1x, _mm256_permutevar8x32_ps(w1, i1)));
        _mm256_storeu_ps(dst + p,
                         _mm256_add_ps(_mm256_mul_ps(vl0y, top), _mm256_mul_ps(vl1y, bottom)));
    }
    segloss__lerp_scalar(s0, s1, l1y, cols, col + p, count - p, dst + p);
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
    default: break;
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

void segloss__lerp_avx2(const float *s0, const float *s1, float l1y, const segloss__lerp_cols *cols,
                        size_t col, size_t count, float *dst)
{
    segloss__lerp_scalar(s0, s1, l1y, cols, col, count, dst);
}

#endif
