/*
 * test_loss_properties.c - properties of the evaluation on random inputs, for every vector
 * kernel the CPU has (AVX2, AVX-512; the ones it lacks are reported as skipped): the kernel
 * agrees with the scalar one (normal, extreme and half-precision logits), split-then-merge and
 * batch order and thread count change no bit, standard focal with gamma 0 and alpha 1 is CE,
 * non-finite logits are named, bad shapes and parameters are refused. Also the kernel choice
 * (SEGLOSS_KERNEL, and what a CPU without AVX-512 or AVX2 answers).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loss/loss_internal.h"
#include "segloss/segloss.h"
#include "testing.h"

/* the scalar reference, and the vector kernel under test on 1, 2 and 7 threads */
static segloss_ctx *scalar1, *fast1, *fast2, *fast7;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_uniform(void)
{
    return (double)(rng_next() >> 11) * 0x1p-53;
}
static double rng_normal(void)
{
    double u = rng_uniform() + 1e-300, v = rng_uniform();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

typedef struct inputs {
    size_t n, c, h, w, mh, mw;
    segloss_dtype dtype;
    void *logits;
    uint8_t *labels;
    segloss_tensor lt, mt;
} inputs;

/* Random logits (scale sigma, plus `peak` on the label's class) and labels with ~5% ignored. */
static void make_inputs(inputs *in, size_t n, size_t c, size_t h, size_t w, size_t mh, size_t mw,
                        segloss_dtype dtype, double sigma, double peak)
{
    memset(in, 0, sizeof *in);
    *in = (inputs){.n = n, .c = c, .h = h, .w = w, .mh = mh, .mw = mw, .dtype = dtype};
    size_t count = n * c * h * w, esize = segloss_dtype_size(dtype);
    in->logits = aligned_alloc(64, (count * esize + 63) & ~(size_t)63);
    in->labels = malloc(n * mh * mw);
    for (size_t i = 0; i < n * mh * mw; i++) {
        double u = rng_uniform();
        in->labels[i] = u < 0.05 ? 255 : (uint8_t)(rng_next() % c);
    }
    for (size_t i = 0; i < count; i++) {
        size_t px = i % (h * w), k = (i / (h * w)) % c, img = i / (c * h * w);
        double v = rng_normal() * sigma;
        if (mh == h && mw == w && in->labels[img * h * w + px] == k)
            v += peak;
        switch (dtype) {
        case SEGLOSS_F32: ((float *)in->logits)[i] = (float)v; break;
        case SEGLOSS_F64: ((double *)in->logits)[i] = v; break;
        case SEGLOSS_F16:
            ((uint16_t *)in->logits)[i] = segloss_float_to_half((float)fmax(-6e4, fmin(6e4, v)));
            break;
        case SEGLOSS_BF16: {
            float f = (float)v;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            ((uint16_t *)in->logits)[i] = (uint16_t)(bits >> 16);
            break;
        }
        default: break;
        }
    }
    in->lt = (segloss_tensor){in->logits, dtype, 4, {n, c, h, w}};
    in->mt = (segloss_tensor){in->labels, SEGLOSS_U8, 3, {n, mh, mw}};
}

static void free_inputs(inputs *in)
{
    free(in->logits);
    free(in->labels);
}

static segloss_result *eval(segloss_ctx *ctx, const inputs *in, const segloss_params *p)
{
    segloss_result *r = NULL;
    char detail[256] = "";
    int rc = segloss_evaluate(ctx, &in->lt, &in->mt, p, &r, detail, sizeof detail);
    CHECK_MSG(rc == 0, "evaluate: %s", detail);
    return r;
}

static int close_rel(double a, double b, double rel)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return fabs(a - b) <= rel * fmax(fabs(b), 1e-3);
}

/* Every number of two results within rel; counts exactly, except the f_score's p > threshold
 * counts, which may flip for a probability within float rounding of the threshold. */
static void check_results_close(const segloss_result *a, const segloss_result *b, double rel)
{
    CHECK_MSG(close_rel(a->ce, b->ce, rel), "ce %.17g vs %.17g", a->ce, b->ce);
    CHECK_MSG(close_rel(a->focal, b->focal, rel), "focal %.17g vs %.17g", a->focal, b->focal);
    CHECK_MSG(close_rel(a->dice, b->dice, rel), "dice %.17g vs %.17g", a->dice, b->dice);
    CHECK_MSG(close_rel(a->total, b->total, rel), "total");
    CHECK_EQ_INT(a->pixels_valid, b->pixels_valid);
    for (size_t k = 0; k < a->num_classes; k++) {
        CHECK_MSG(close_rel(a->dice_per_class[k], b->dice_per_class[k], rel), "dice[%zu]", k);
        CHECK_MSG(close_rel(a->f_score[k], b->f_score[k], 1e-4), "f_score[%zu]", k);
        CHECK_MSG(close_rel(a->iou[k], b->iou[k], 0), "iou[%zu]", k);
    }
    size_t cc = a->num_classes * a->num_classes;
    CHECK(memcmp(a->stats->confusion, b->stats->confusion, cc * sizeof(uint64_t)) == 0);
}

static void vector_kernel_matches_scalar(void)
{
    static const struct {
        size_t n, c, h, w;
        segloss_dtype dtype;
        double sigma, peak;
        segloss_semantics sem;
        double gamma;
    } cfg[] = {
        {2, 21, 24, 40, SEGLOSS_F32, 3, 0, SEGLOSS_SEED, 2},
        {1, 5, 13, 17, SEGLOSS_F32, 3, 4, SEGLOSS_STANDARD, 0.7},
        {3, 2, 9, 11, SEGLOSS_F32, 1, 2, SEGLOSS_SEED, 1},
        {1, 1, 8, 8, SEGLOSS_F32, 1, 0, SEGLOSS_SEED, 2},
        {2, 37, 16, 16, SEGLOSS_F32, 0.1, 0, SEGLOSS_STANDARD, 2},
        {1, 4, 16, 24, SEGLOSS_F32, 1e4, 0, SEGLOSS_SEED, 2},     /* extreme logits */
        {1, 4, 16, 24, SEGLOSS_F32, 1e4, 0, SEGLOSS_STANDARD, 3}, /* extreme logits */
        {2, 21, 16, 32, SEGLOSS_F16, 3, 2, SEGLOSS_SEED, 2},
        {2, 21, 16, 32, SEGLOSS_BF16, 3, 2, SEGLOSS_STANDARD, 2},
        {1, 6, 20, 20, SEGLOSS_F64, 3, 1, SEGLOSS_SEED, 2},
        {1, 3, 32, 32, SEGLOSS_F32, 3, 12, SEGLOSS_SEED, 2}, /* confident pixels */
    };
    /* each configuration with and without class weights: the vector kernel has its own paths
     * for uniform tables (no lookups) and for a focal exponent of 1 (p_t is the softmax) */
    for (size_t run = 0; run < 2 * (sizeof cfg / sizeof cfg[0]); run++) {
        size_t i = run / 2;
        int weighted = (int)(run % 2);
        inputs in;
        make_inputs(&in, cfg[i].n, cfg[i].c, cfg[i].h, cfg[i].w, cfg[i].h, cfg[i].w, cfg[i].dtype,
                    cfg[i].sigma, cfg[i].peak);
        double weights[64], alpha[64];
        for (size_t k = 0; k < cfg[i].c; k++) {
            weights[k] = 0.5 + rng_uniform();
            alpha[k] = 0.1 + 0.8 * rng_uniform();
        }
        segloss_params p;
        segloss_params_default(&p);
        p.semantics = cfg[i].sem;
        p.gamma = cfg[i].gamma;
        if (weighted) {
            p.class_weights = weights;
            p.class_weights_len = cfg[i].c;
        }
        if (i % 2) {
            p.alpha_kind = SEGLOSS_ALPHA_PER_CLASS;
            p.alpha_per_class = alpha;
            p.alpha_len = cfg[i].c;
        }
        segloss_result *a = eval(scalar1, &in, &p), *b = eval(fast2, &in, &p);
        if (a && b) {
            check_results_close(b, a, 1e-6);
            if (testing_current_failed)
                fprintf(stderr, "  (configuration %zu, %s)\n", i,
                        weighted ? "class weights" : "no class weights");
        }
        segloss_result_free(a);
        segloss_result_free(b);
        free_inputs(&in);
    }
}

/* The vector bilinear row (a window load and permutes) gives the scalar row's bits, for up-
 * and down-sampling, widths that are not multiples of 8, and blocks starting mid-row. */
static void lerp_avx2_matches_scalar_bits(void)
{
    if (!segloss__cpu_has_avx2()) {
        printf("# lerp_avx2_matches_scalar_bits skipped: CPU has no AVX2\n");
        return;
    }
    static const size_t sizes[][2] = {{16, 61},  {128, 512}, {5, 8}, {3, 100},   {64, 64},
                                      {100, 37}, {9, 17},    {1, 9}, {512, 2048}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t w_in = sizes[i][0], w_out = sizes[i][1];
        size_t *c0 = malloc(w_out * sizeof *c0), *c1 = malloc(w_out * sizeof *c1);
        float *l1 = malloc(w_out * sizeof *l1), *s0 = malloc(w_in * sizeof *s0);
        float *s1 = malloc(w_in * sizeof *s1), *a = malloc(w_out * sizeof *a);
        float *b = malloc(w_out * sizeof *b);
        for (size_t j = 0; j < w_in; j++) {
            s0[j] = (float)(rng_normal() * 3.0);
            s1[j] = (float)(rng_normal() * 3.0);
        }
        segloss__resize_axis(w_in, w_out, c0, c1, l1);
        int32_t *storage = NULL;
        segloss__lerp_cols cols;
        CHECK_EQ_INT(segloss__lerp_cols_build(w_in, w_out, c0, c1, l1, &storage, &cols), 0);
        for (size_t start = 0; start < w_out; start += 20) {
            size_t count = w_out - start < 36 ? w_out - start : 36;
            segloss__lerp_scalar(s0, s1, 0.3125f, &cols, start, count, a + start);
            segloss__lerp_avx2(s0, s1, 0.3125f, &cols, start, count, b + start);
        }
        CHECK_MSG(memcmp(a, b, w_out * sizeof *a) == 0, "%zu -> %zu columns differ", w_in, w_out);
        free(storage);
        free(c0);
        free(c1);
        free(l1);
        free(s0);
        free(s1);
        free(a);
        free(b);
    }
}

static void resize_matches_scalar(void)
{
    inputs in;
    make_inputs(&in, 2, 21, 16, 12, 61, 45, SEGLOSS_F32, 3, 0);
    segloss_params p;
    segloss_params_default(&p);
    segloss_result *a = eval(scalar1, &in, &p), *b = eval(fast2, &in, &p);
    if (a && b) {
        check_results_close(b, a, 1e-6);
        CHECK_EQ_INT(b->h, 61);
        CHECK_EQ_INT(b->w, 45);
        CHECK_EQ_INT(b->pixels_total, 2 * 61 * 45);
    }
    segloss_result_free(a);
    segloss_result_free(b);
    free_inputs(&in);
}

static segloss_stats *stats_of(segloss_ctx *ctx, const segloss_tensor *l, const segloss_tensor *m,
                               const segloss_params *p)
{
    segloss_stats *s = NULL;
    char detail[256] = "";
    int rc = segloss_evaluate_stats(ctx, l, m, p, &s, detail, sizeof detail);
    CHECK_MSG(rc == 0, "%s", detail);
    return s;
}

/* Resizing float16 and bfloat16 logits (their source rows converted once per row pair and
 * reused, evaluate.c) gives exactly what the same values as float32 give, on every context. */
static void resized_half_precision_is_its_float32(void)
{
    static const segloss_dtype dtypes[] = {SEGLOSS_F16, SEGLOSS_BF16};
    for (size_t d = 0; d < 2; d++) {
        inputs in;
        make_inputs(&in, 3, 7, 10, 13, 37, 50, dtypes[d], 3, 0);
        size_t count = in.n * in.c * in.h * in.w;
        float *f = malloc(count * sizeof *f);
        for (size_t i = 0; i < count; i++) {
            uint16_t h = ((const uint16_t *)in.logits)[i];
            f[i] = dtypes[d] == SEGLOSS_F16 ? segloss_half_to_float(h) : segloss_bf16_to_float(h);
        }
        segloss_tensor lf = in.lt;
        lf.data = f;
        lf.dtype = SEGLOSS_F32;
        segloss_params p;
        segloss_params_default(&p);
        segloss_ctx *ctxs[] = {scalar1, fast1, fast7};
        for (size_t c = 0; c < 3; c++) {
            segloss_stats *a = stats_of(ctxs[c], &in.lt, &in.mt, &p);
            segloss_stats *b = stats_of(ctxs[c], &lf, &in.mt, &p);
            CHECK_MSG(a && b && segloss_stats_equal(a, b), "%s, context %zu",
                      segloss_dtype_name(dtypes[d]), c);
            segloss_stats_free(a);
            segloss_stats_free(b);
        }
        free(f);
        free_inputs(&in);
    }
}

/* Image i of a batch as its own (1, ...) tensors. */
static void slice(const inputs *in, size_t i, segloss_tensor *l, segloss_tensor *m)
{
    size_t plane = in->c * in->h * in->w * segloss_dtype_size(in->dtype);
    *l = in->lt;
    l->shape[0] = 1;
    l->data = (const char *)in->logits + i * plane;
    *m = in->mt;
    m->shape[0] = 1;
    m->data = in->labels + i * in->mh * in->mw;
}

static void split_merge_and_order_are_exact(void)
{
    for (int resize = 0; resize < 2; resize++) {
        for (int sem = 0; sem < 2; sem++) {
            inputs in;
            make_inputs(&in, 4, 7, 33, 29, resize ? 50 : 33, resize ? 41 : 29, SEGLOSS_F32, 3, 1);
            segloss_params p;
            segloss_params_default(&p);
            p.semantics = (segloss_semantics)sem;
            segloss_stats *whole = stats_of(fast2, &in.lt, &in.mt, &p);
            segloss_stats *merged = segloss_stats_new(7, p.semantics);
            segloss_stats *reversed = segloss_stats_new(7, p.semantics);
            for (size_t i = 0; i < 4; i++) {
                segloss_tensor l, m;
                slice(&in, i, &l, &m);
                segloss_stats *one = stats_of(fast7, &l, &m, &p);
                CHECK(one && segloss_stats_merge(merged, one) == 0);
                segloss_stats_free(one);
                slice(&in, 3 - i, &l, &m);
                one = stats_of(fast1, &l, &m, &p);
                CHECK(one && segloss_stats_merge(reversed, one) == 0);
                segloss_stats_free(one);
            }
            CHECK(whole && segloss_stats_equal(whole, merged));
            CHECK(whole && segloss_stats_equal(whole, reversed));
            segloss_stats_free(whole);
            segloss_stats_free(merged);
            segloss_stats_free(reversed);
            free_inputs(&in);
        }
    }
}

static void thread_counts_are_bit_identical(void)
{
    inputs in;
    make_inputs(&in, 3, 21, 64, 80, 64, 80, SEGLOSS_F32, 3, 1);
    segloss_params p;
    segloss_params_default(&p);
    segloss_stats *s1 = stats_of(fast1, &in.lt, &in.mt, &p);
    segloss_stats *s2 = stats_of(fast2, &in.lt, &in.mt, &p);
    segloss_stats *s7 = stats_of(fast7, &in.lt, &in.mt, &p);
    CHECK(s1 && s2 && s7 && segloss_stats_equal(s1, s2) && segloss_stats_equal(s1, s7));
    segloss_stats_free(s1);
    segloss_stats_free(s2);
    segloss_stats_free(s7);
    free_inputs(&in);
}

static void standard_focal_gamma0_alpha1_is_ce(void)
{
    inputs in;
    make_inputs(&in, 2, 9, 20, 24, 20, 24, SEGLOSS_F32, 3, 1);
    double weights[9] = {0.5, 1, 1.5, 2, 0.1, 3, 1, 1, 0.7};
    segloss_params p;
    segloss_params_default(&p);
    p.semantics = SEGLOSS_STANDARD;
    p.gamma = 0;
    p.alpha = 1;
    p.class_weights = weights;
    p.class_weights_len = 9;
    segloss_ctx *ctxs[2] = {scalar1, fast2};
    for (int i = 0; i < 2; i++) {
        segloss_result *r = eval(ctxs[i], &in, &p);
        if (r)
            CHECK_CLOSE(r->focal, r->ce, 1e-12, 1e-12);
        segloss_result_free(r);
    }
    free_inputs(&in);
}

static void nonfinite_logits_are_named(void)
{
    inputs in;
    make_inputs(&in, 2, 3, 4, 5, 4, 5, SEGLOSS_F32, 1, 0);
    float *x = in.logits;
    x[((1 * 3 + 2) * 4 + 3) * 5 + 4] = NAN;
    x[((1 * 3 + 2) * 4 + 3) * 5 + 1] = INFINITY;
    segloss_params p;
    segloss_params_default(&p);
    segloss_ctx *ctxs[2] = {scalar1, fast2};
    for (int i = 0; i < 2; i++) {
        segloss_result *r = NULL;
        char detail[256] = "";
        int rc = segloss_evaluate(ctxs[i], &in.lt, &in.mt, &p, &r, detail, sizeof detail);
        CHECK_EQ_INT(rc, SEGLOSS_ENONFINITE);
        CHECK_MSG(strstr(detail, "logits[1, 2, 3, 1] is +infinity") != NULL, "%s", detail);
        CHECK(r == NULL);
    }
    /* -inf alone (it never turns a sum into NaN) */
    x[((1 * 3 + 2) * 4 + 3) * 5 + 4] = 0;
    x[((1 * 3 + 2) * 4 + 3) * 5 + 1] = 0;
    x[((0 * 3 + 1) * 4 + 2) * 5 + 3] = -INFINITY;
    for (int i = 0; i < 2; i++) {
        segloss_result *r = NULL;
        char detail[256] = "";
        CHECK_EQ_INT(segloss_evaluate(ctxs[i], &in.lt, &in.mt, &p, &r, detail, sizeof detail),
                     SEGLOSS_ENONFINITE);
        CHECK_MSG(strstr(detail, "logits[0, 1, 2, 3] is -infinity") != NULL, "%s", detail);
    }
    x[((0 * 3 + 1) * 4 + 2) * 5 + 3] = 0;
    x[((1 * 3 + 2) * 4 + 3) * 5 + 4] = NAN;
    /* with resizing, a NaN that no output pixel reads is still found */
    in.mt.shape[1] = 2;
    in.mt.shape[2] = 2;
    segloss_result *r = NULL;
    char detail[256] = "";
    CHECK_EQ_INT(segloss_evaluate(fast2, &in.lt, &in.mt, &p, &r, detail, sizeof detail),
                 SEGLOSS_ENONFINITE);
    CHECK_MSG(strstr(detail, "logits[1, 2, 3, 4] is NaN") != NULL, "%s", detail);
    free_inputs(&in);
}

/* Issue 12: +inf alone and NaN at the arg-max slipped past both kernels (the sums overflowed:
 * "out of range", 413); logits beyond +-SEGLOSS_MAX_LOGIT are refused by name in every dtype,
 * the bound itself is computed exactly, and sums beyond the exact range are a 422. */
static void extreme_logits_are_named_or_computed(void)
{
    segloss_ctx *ctxs[2] = {scalar1, fast1};
    segloss_params p;
    segloss_params_default(&p);
    static const struct {
        size_t at; /* flat index into (1, 3, 4, 20) */
        float value;
        const char *name;
    } bad[] = {
        {0, INFINITY, "logits[0, 0, 0, 0] is +infinity"},
        {0, NAN, "logits[0, 0, 0, 0] is NaN"},
        {80 + 17, INFINITY, "logits[0, 1, 0, 17] is +infinity"},
        {160 + 79, NAN, "logits[0, 2, 3, 19] is NaN"},
        {3, 3.39e38f, "logits[0, 0, 0, 3] is 3.39e+38; logits must be within -1e+08 to 1e+08"},
        {5, -3.39e38f, "logits[0, 0, 0, 5] is -3.39e+38; logits must be within"},
        {6, 1.0001e8f, "logits[0, 0, 0, 6] is 1.0001e+08"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        for (int dt = 0; dt < 2; dt++) {
            if (dt && bad[b].value == 1.0001e8f)
                continue; /* not a bfloat16 value */
            inputs in;
            make_inputs(&in, 1, 3, 4, 20, 4, 20, dt ? SEGLOSS_BF16 : SEGLOSS_F32, 1, 0);
            float v = bad[b].value;
            if (dt) {
                uint32_t bits;
                memcpy(&bits, &v, 4);
                ((uint16_t *)in.logits)[bad[b].at] = (uint16_t)(bits >> 16);
            } else {
                ((float *)in.logits)[bad[b].at] = v;
            }
            for (int i = 0; i < 2; i++) {
                segloss_result *r = NULL;
                char detail[256] = "";
                int rc = segloss_evaluate(ctxs[i], &in.lt, &in.mt, &p, &r, detail, sizeof detail);
                CHECK_MSG(rc == SEGLOSS_ENONFINITE, "%s (%s, kernel %d): %d %s", bad[b].name,
                          dt ? "bf16" : "f32", i, rc, detail);
                CHECK_MSG(
                    strstr(detail, dt && bad[b].value == 3.39e38f    ? "logits[0, 0, 0, 3] is 3.38"
                                   : dt && bad[b].value == -3.39e38f ? "logits[0, 0, 0, 5] is -3.38"
                                                                     : bad[b].name) != NULL,
                    "%s", detail);
                CHECK(r == NULL);
            }
            free_inputs(&in);
        }
    }
    /* The bound is accepted and computed: class 0 at 1e8, class 1 (the label) at -1e8, class
     * 2 at 0; in float64 (PyTorch in double) every pixel's CE is exactly 2e8. */
    inputs in;
    make_inputs(&in, 1, 3, 4, 20, 4, 20, SEGLOSS_F32, 1, 0);
    for (size_t i = 0; i < 80; i++) {
        ((float *)in.logits)[i] = 1e8f;
        ((float *)in.logits)[80 + i] = -1e8f;
        ((float *)in.logits)[160 + i] = 0;
        in.labels[i] = 1;
    }
    for (int i = 0; i < 2; i++) {
        segloss_result *r = eval(ctxs[i], &in, &p);
        CHECK(r != NULL);
        if (r)
            CHECK_CLOSE(r->ce, 2e8, 1e-7, 0);
        segloss_result_free(r);
    }
    /* Maximal weights on maximal logits: the sums leave the exact range, which is a 422
     * naming what to lower, not a 413 (a size) */
    double weights[3] = {SEGLOSS_MAX_WEIGHT, SEGLOSS_MAX_WEIGHT, SEGLOSS_MAX_WEIGHT};
    p.class_weights = weights;
    p.class_weights_len = 3;
    p.alpha = SEGLOSS_MAX_WEIGHT;
    p.semantics = SEGLOSS_SEED;
    p.gamma = 0;
    for (int i = 0; i < 2; i++) {
        segloss_result *r = NULL;
        char detail[256] = "";
        int rc = segloss_evaluate(ctxs[i], &in.lt, &in.mt, &p, &r, detail, sizeof detail);
        CHECK_MSG(rc == SEGLOSS_EPARAM, "%d %s", rc, detail);
        CHECK_MSG(strstr(detail, "lower class_weights or alpha") != NULL, "%s", detail);
    }
    free_inputs(&in);
}

static void shapes_and_params_are_checked(void)
{
    inputs in;
    make_inputs(&in, 2, 3, 4, 5, 4, 5, SEGLOSS_F32, 1, 0);
    segloss_params p;
    segloss_params_default(&p);
    segloss_result *r = NULL;
    char detail[256] = "";
    in.mt.shape[0] = 3;
    CHECK_EQ_INT(segloss_evaluate(fast2, &in.lt, &in.mt, &p, &r, detail, sizeof detail),
                 SEGLOSS_ESHAPE);
    CHECK(strstr(detail, "2 images but there are 3 masks") != NULL);
    in.mt.shape[0] = 2;
    double w[2] = {1, 2};
    p.class_weights = w;
    p.class_weights_len = 2;
    CHECK_EQ_INT(segloss_evaluate(fast2, &in.lt, &in.mt, &p, &r, detail, sizeof detail),
                 SEGLOSS_EPARAM);
    CHECK(strstr(detail, "class_weights has 2 values; the logits have 3 classes") != NULL);
    double wneg[3] = {1, -2, 1};
    p.class_weights = wneg;
    p.class_weights_len = 3;
    CHECK_EQ_INT(segloss_evaluate(fast2, &in.lt, &in.mt, &p, &r, detail, sizeof detail),
                 SEGLOSS_EPARAM);
    CHECK(r == NULL);
    free_inputs(&in);
}

static void all_ignored_is_undefined_ce(void)
{
    inputs in;
    make_inputs(&in, 1, 3, 8, 8, 8, 8, SEGLOSS_F32, 1, 0);
    memset(in.labels, 255, 64);
    segloss_params p;
    segloss_params_default(&p);
    segloss_result *r = eval(fast2, &in, &p);
    if (r) {
        CHECK(isnan(r->ce));
        CHECK(isnan(r->total));
        CHECK(r->focal == 0);
        CHECK_EQ_INT(r->pixels_valid, 0);
        CHECK_EQ_INT(r->pixels_ignored, 64);
        CHECK(r->accuracy == 0);
    }
    segloss_result_free(r);
    free_inputs(&in);
}

static void stats_serialize_round_trip(void)
{
    inputs in;
    make_inputs(&in, 2, 5, 8, 8, 8, 8, SEGLOSS_F32, 2, 1);
    segloss_params p;
    segloss_params_default(&p);
    segloss_stats *s = stats_of(fast2, &in.lt, &in.mt, &p), *back = NULL;
    size_t need = 0;
    CHECK(segloss_stats_serialize(s, NULL, 0, &need) == SEGLOSS_EINVAL && need > 0);
    unsigned char *buf = malloc(need);
    CHECK(segloss_stats_serialize(s, buf, need, &need) == 0);
    CHECK(segloss_stats_deserialize(buf, need, &back) == 0);
    CHECK(back && segloss_stats_equal(s, back));
    segloss_stats_free(back);
    CHECK(segloss_stats_deserialize(buf, need - 1, &back) == SEGLOSS_EFORMAT);
    buf[0] = 'X';
    CHECK(segloss_stats_deserialize(buf, need, &back) == SEGLOSS_EFORMAT);
    free(buf);
    segloss_stats_free(s);
    free_inputs(&in);
}

/* The predicted-class map is the first arg-max of every pixel, from both kernels. */
static void argmax_map_is_first_maximum(void)
{
    inputs in;
    make_inputs(&in, 2, 6, 9, 13, 9, 13, SEGLOSS_F32, 2, 0);
    float *x = in.logits;
    x[(0 * 6 + 4) * 117 + 5] = x[(0 * 6 + 2) * 117 + 5] = 50; /* a tie: class 2 wins */
    segloss_params p;
    segloss_params_default(&p);
    uint16_t *map = calloc(2 * 117, sizeof(uint16_t));
    segloss_ctx *ctxs[2] = {scalar1, fast2};
    for (int i = 0; i < 2; i++) {
        segloss_result *r = NULL;
        char detail[256] = "";
        CHECK(segloss_evaluate_with_argmax(ctxs[i], &in.lt, &in.mt, &p, map, &r, detail,
                                           sizeof detail) == 0);
        int wrong = 0;
        for (size_t n = 0; n < 2; n++)
            for (size_t px = 0; px < 117; px++) {
                size_t best = 0;
                for (size_t k = 1; k < 6; k++)
                    if (x[(n * 6 + k) * 117 + px] > x[(n * 6 + best) * 117 + px])
                        best = k;
                wrong += map[n * 117 + px] != best;
            }
        CHECK_EQ_INT(wrong, 0);
        CHECK_EQ_INT(map[5], 2);
        segloss_result_free(r);
    }
    free(map);
    free_inputs(&in);
}

/* The kernel choice, on this CPU and on CPUs made up by passing their features in. */
static void kernel_choice(void)
{
    const unsigned both = SEGLOSS__CPU_AVX2 | SEGLOSS__CPU_AVX512;
    segloss_kernel k = SEGLOSS_KERNEL_AUTO;
    char detail[256] = "";
    /* auto (unset, empty, "auto"): the fastest the CPU runs */
    CHECK(segloss__kernel_resolve(SEGLOSS_KERNEL_AUTO, NULL, both, &k, NULL, 0) == 0 &&
          k == SEGLOSS_KERNEL_AVX512);
    CHECK(segloss__kernel_resolve(SEGLOSS_KERNEL_AUTO, "", SEGLOSS__CPU_AVX2, &k, NULL, 0) == 0 &&
          k == SEGLOSS_KERNEL_AVX2);
    CHECK(segloss__kernel_resolve(SEGLOSS_KERNEL_AUTO, "auto", 0, &k, NULL, 0) == 0 &&
          k == SEGLOSS_KERNEL_SCALAR);
    /* SEGLOSS_KERNEL picks one; an explicit kernel from the caller wins over it */
    CHECK(segloss__kernel_resolve(SEGLOSS_KERNEL_AUTO, "scalar", both, &k, NULL, 0) == 0 &&
          k == SEGLOSS_KERNEL_SCALAR);
    CHECK(segloss__kernel_resolve(SEGLOSS_KERNEL_AUTO, "avx2", both, &k, NULL, 0) == 0 &&
          k == SEGLOSS_KERNEL_AVX2);
    CHECK(segloss__kernel_resolve(SEGLOSS_KERNEL_AVX2, "scalar", both, &k, NULL, 0) == 0 &&
          k == SEGLOSS_KERNEL_AVX2);
    /* a kernel the CPU lacks is an error that says so, never a quiet fallback */
    CHECK_EQ_INT(segloss__kernel_resolve(SEGLOSS_KERNEL_AUTO, "avx512", SEGLOSS__CPU_AVX2, &k,
                                         detail, sizeof detail),
                 SEGLOSS_EKERNEL);
    CHECK_MSG(strstr(detail, "SEGLOSS_KERNEL asked for the avx512 kernel, but this CPU (or "
                             "build) has no AVX-512") != NULL &&
                  strstr(detail, "it can run: avx2, scalar") != NULL,
              "%s", detail);
    CHECK_EQ_INT(segloss__kernel_resolve(SEGLOSS_KERNEL_AVX512, NULL, SEGLOSS__CPU_AVX2, &k, detail,
                                         sizeof detail),
                 SEGLOSS_EKERNEL);
    CHECK_EQ_INT(segloss__kernel_resolve(SEGLOSS_KERNEL_AUTO, "avx2", 0, &k, detail, sizeof detail),
                 SEGLOSS_EKERNEL);
    CHECK_MSG(strstr(detail, "has no AVX2, FMA and F16C; it can run: scalar") != NULL, "%s",
              detail);
    CHECK_EQ_INT(
        segloss__kernel_resolve(SEGLOSS_KERNEL_AUTO, "avx9", both, &k, detail, sizeof detail),
        SEGLOSS_EINVAL);
    CHECK_MSG(strstr(detail, "SEGLOSS_KERNEL=avx9 names no kernel") != NULL, "%s", detail);
    CHECK_EQ_INT(segloss__kernel_resolve((segloss_kernel)9, NULL, both, &k, NULL, 0),
                 SEGLOSS_EINVAL);

    /* the same through the public calls on this CPU: a context for AVX-512 exists exactly when
     * the CPU has it, and SEGLOSS_KERNEL=avx512 fails the same way */
    int has512 = segloss_kernel_supported(SEGLOSS_KERNEL_AVX512);
    CHECK(segloss_kernel_supported(SEGLOSS_KERNEL_SCALAR));
    CHECK(!has512 || segloss_kernel_supported(SEGLOSS_KERNEL_AVX2));
    segloss_ctx *ctx = NULL;
    int rc = segloss_ctx_new(&ctx, 1, SEGLOSS_KERNEL_AVX512);
    CHECK_EQ_INT(rc, has512 ? 0 : SEGLOSS_EKERNEL);
    CHECK(has512 ? ctx && segloss_ctx_kernel(ctx) == SEGLOSS_KERNEL_AVX512 : ctx == NULL);
    segloss_ctx_free(ctx);
    const char *saved = getenv("SEGLOSS_KERNEL");
    char saved_copy[64] = "";
    if (saved)
        snprintf(saved_copy, sizeof saved_copy, "%s", saved);
    setenv("SEGLOSS_KERNEL", "avx512", 1);
    ctx = NULL;
    CHECK_EQ_INT(segloss_ctx_new(&ctx, 1, SEGLOSS_KERNEL_AUTO), has512 ? 0 : SEGLOSS_EKERNEL);
    segloss_ctx_free(ctx);
    setenv("SEGLOSS_KERNEL", "nonsense", 1);
    ctx = NULL;
    CHECK_EQ_INT(segloss_ctx_new(&ctx, 1, SEGLOSS_KERNEL_AUTO), SEGLOSS_EINVAL);
    CHECK(ctx == NULL);
    setenv("SEGLOSS_KERNEL", "scalar", 1);
    CHECK(segloss_ctx_new(&ctx, 1, SEGLOSS_KERNEL_AUTO) == 0 &&
          segloss_ctx_kernel(ctx) == SEGLOSS_KERNEL_SCALAR);
    segloss_ctx_free(ctx);
    if (saved)
        setenv("SEGLOSS_KERNEL", saved_copy, 1);
    else
        unsetenv("SEGLOSS_KERNEL");
    printf("# this CPU runs: %s%sscalar\n", has512 ? "avx512, " : "",
           segloss_kernel_supported(SEGLOSS_KERNEL_AVX2) ? "avx2, " : "");
}

/* The AVX-512 and AVX2 kernels compute every pixel's float terms with the same operations; only
 * the order of their float partial sums differs, so they agree ten times closer (1e-7) than
 * either must with the double-precision scalar kernel (1e-6). */
static void avx512_matches_avx2(void)
{
    if (!segloss_kernel_supported(SEGLOSS_KERNEL_AVX512)) {
        printf("# avx512_matches_avx2 skipped: CPU has no AVX-512\n");
        return;
    }
    segloss_ctx *a2 = NULL, *a5 = NULL;
    CHECK(segloss_ctx_new(&a2, 1, SEGLOSS_KERNEL_AVX2) == 0);
    CHECK(segloss_ctx_new(&a5, 1, SEGLOSS_KERNEL_AVX512) == 0);
    for (int sem = 0; sem < 2 && a2 && a5; sem++) {
        inputs in;
        make_inputs(&in, 2, 21, 24, 56, 24, 56, SEGLOSS_F32, 3, 1);
        segloss_params p;
        segloss_params_default(&p);
        p.semantics = (segloss_semantics)sem;
        p.gamma = 1.5;
        segloss_result *x = eval(a2, &in, &p), *y = eval(a5, &in, &p);
        if (x && y)
            check_results_close(y, x, 1e-7);
        segloss_result_free(x);
        segloss_result_free(y);
        free_inputs(&in);
    }
    segloss_ctx_free(a2);
    segloss_ctx_free(a5);
}

/* Polls until the pool has `want` parked workers (or, when prewoken is set, until that many
 * prewake get-ups); 1 if it got there within 5 s. */
static int wait_pool(segloss__pool *pool, unsigned want, int prewoken)
{
    for (int i = 0; i < 5000; i++) {
        if ((prewoken ? segloss__pool_prewoken(pool) : segloss__pool_parked(pool)) == want)
            return 1;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return 0;
}

static void mark_worker(void *arg, unsigned worker)
{
    ((volatile int *)arg)[worker] = 1;
}

/* A prewake gets each parked worker off the condition variable before the job is posted (the
 * wake-up then overlaps the evaluation's set-up); they run the job that follows, and park
 * again by themselves when none follows. */
static void pool_prewake_wakes_parked_workers(void)
{
    segloss__pool *pool = NULL;
    CHECK(segloss__pool_new(&pool, 3) == 0);
    if (!pool)
        return;
    CHECK_MSG(wait_pool(pool, 2, 0), "the idle workers never parked");
    segloss__pool_prewake(pool);
    CHECK_MSG(wait_pool(pool, 2, 1), "a prewake woke %u of 2 parked workers",
              (unsigned)segloss__pool_prewoken(pool));
    int ran[3] = {0, 0, 0};
    segloss__pool_run(pool, mark_worker, ran);
    CHECK(ran[0] && ran[1] && ran[2]);
    CHECK_MSG(wait_pool(pool, 2, 0), "the workers kept spinning after the job");
    segloss__pool_prewake(pool);
    CHECK_MSG(wait_pool(pool, 4, 1), "a second prewake woke %u of 4",
              (unsigned)segloss__pool_prewoken(pool));
    CHECK_MSG(wait_pool(pool, 2, 0), "a prewake with no job after it kept workers awake");
    segloss__pool_free(pool);
}

/* Per-item counts (segloss_evaluate_items): the same whatever the kernel, thread count or
 * whether an arg-max map is kept, with resizing too; they sum to the batch's confusion matrix
 * (row sums, column sums, diagonal); each item's equal its own evaluation's. */
static void item_counts_are_the_items_confusion(void)
{
    for (int resize = 0; resize < 2; resize++) {
        inputs in;
        size_t n = 5, c = 7;
        make_inputs(&in, n, c, 31, 45, resize ? 62 : 31, resize ? 40 : 45, SEGLOSS_F32, 2, 1);
        segloss_params p;
        segloss_params_default(&p);
        size_t m = SEGLOSS_ITEM_COUNTS(n, c);
        uint64_t *counts[4];
        segloss_ctx *ctxs[4] = {scalar1, fast1, fast2, fast7};
        uint16_t *map = malloc(n * in.mh * in.mw * sizeof *map);
        segloss_result *whole = NULL;
        for (int i = 0; i < 4; i++) {
            counts[i] = malloc(m * sizeof(uint64_t));
            memset(counts[i], 0xab, m * sizeof(uint64_t)); /* overwritten, not added to */
            segloss_result *r = NULL;
            char detail[256] = "";
            CHECK(segloss_evaluate_items(ctxs[i], &in.lt, &in.mt, &p, i == 2 ? map : NULL,
                                         counts[i], &r, detail, sizeof detail) == 0);
            if (i == 0)
                whole = r;
            else
                segloss_result_free(r);
            CHECK(memcmp(counts[i], counts[0], m * sizeof(uint64_t)) == 0);
        }
        for (size_t k = 0; whole && k < c; k++) {
            uint64_t gt = 0, pred = 0, tp = 0, col = 0;
            for (size_t i = 0; i < n; i++) {
                gt += counts[0][(i * 3 + 0) * c + k];
                pred += counts[0][(i * 3 + 1) * c + k];
                tp += counts[0][(i * 3 + 2) * c + k];
            }
            for (size_t y = 0; y < c; y++)
                col += whole->stats->confusion[y * c + k];
            CHECK(gt == whole->support[k] && pred == col &&
                  tp == whole->stats->confusion[k * c + k]);
        }
        for (size_t i = 0; i < n; i++) {
            segloss_tensor l, mt;
            slice(&in, i, &l, &mt);
            uint64_t one[3 * 7];
            segloss_result *r = NULL;
            char detail[256] = "";
            CHECK(segloss_evaluate_items(fast2, &l, &mt, &p, NULL, one, &r, detail,
                                         sizeof detail) == 0);
            CHECK(memcmp(one, counts[0] + i * 3 * c, sizeof one) == 0);
            /* and the counts of an item's own stats, as the overlapped intake takes them */
            uint64_t from_stats[3 * 7];
            CHECK(r && segloss_stats_item_counts(r->stats, from_stats) == 0 &&
                  memcmp(from_stats, one, sizeof one) == 0);
            segloss_result_free(r);
        }
        segloss_result_free(whole);
        for (int i = 0; i < 4; i++)
            free(counts[i]);
        free(map);
        free_inputs(&in);
    }
}

/* The figures of an item from its counts: present classes only, undefined without pixels. */
static void item_figures_from_counts(void)
{
    /* 3 classes: class 0 has 4 pixels (3 right, 1 taken for class 1), class 1 has 2 (both
     * right), class 2 none but 1 pixel predicted as it */
    const uint64_t counts[9] = {4, 2, 0, /* gt */ 3, 3, 0, /* pred */ 3, 2, 0 /* tp */};
    double iou[3];
    segloss_item_figures f;
    segloss_item_figures_from_counts(counts, 3, &f, iou);
    CHECK(f.present == 2 && f.valid == 6);
    CHECK(iou[0] == 3.0 / 4.0 && iou[1] == 2.0 / 3.0 && isnan(iou[2]));
    CHECK(f.miou == (3.0 / 4.0 + 2.0 / 3.0) / 2);
    CHECK(f.mean_dice == (6.0 / 7.0 + 4.0 / 5.0) / 2);
    CHECK(f.accuracy == 5.0 / 6.0);
    const uint64_t none[9] = {0};
    segloss_item_figures_from_counts(none, 3, &f, NULL);
    CHECK(f.present == 0 && isnan(f.miou) && isnan(f.mean_dice) && isnan(f.accuracy));
}

int main(void)
{
    if (segloss_ctx_new(&scalar1, 1, SEGLOSS_KERNEL_SCALAR))
        return 1;
    RUN(kernel_choice);
    RUN(lerp_avx2_matches_scalar_bits);
    RUN(avx512_matches_avx2);
    RUN(pool_prewake_wakes_parked_workers);
    RUN(item_figures_from_counts);
    /* every property per vector kernel the CPU has; the scalar kernel stands in when it has
     * none, so the thread-count and merge properties still run */
    static const segloss_kernel kernels[] = {SEGLOSS_KERNEL_AVX2, SEGLOSS_KERNEL_AVX512};
    int ran = 0;
    for (size_t i = 0; i < 2 + 1; i++) {
        segloss_kernel k = i < 2 ? kernels[i] : SEGLOSS_KERNEL_SCALAR;
        if (i == 2 && ran)
            break;
        if (!segloss_kernel_supported(k)) {
            printf("# %s kernel skipped: CPU has no %s\n", segloss_kernel_name(k),
                   k == SEGLOSS_KERNEL_AVX512 ? "AVX-512" : "AVX2");
            continue;
        }
        if (segloss_ctx_new(&fast1, 1, k) || segloss_ctx_new(&fast2, 2, k) ||
            segloss_ctx_new(&fast7, 7, k))
            return 1;
        printf("# kernel: %s\n", segloss_kernel_name(k));
        ran++;
        RUN(vector_kernel_matches_scalar);
        RUN(resize_matches_scalar);
        RUN(resized_half_precision_is_its_float32);
        RUN(split_merge_and_order_are_exact);
        RUN(thread_counts_are_bit_identical);
        RUN(standard_focal_gamma0_alpha1_is_ce);
        RUN(nonfinite_logits_are_named);
        RUN(extreme_logits_are_named_or_computed);
        RUN(shapes_and_params_are_checked);
        RUN(all_ignored_is_undefined_ce);
        RUN(item_counts_are_the_items_confusion);
        RUN(stats_serialize_round_trip);
        RUN(argmax_map_is_first_maximum);
        segloss_ctx_free(fast1);
        segloss_ctx_free(fast2);
        segloss_ctx_free(fast7);
    }
    segloss_ctx_free(scalar1);
    return TESTS_DONE();
}
