/*
 * test_loss_golden.c - every golden case (tests/golden: PyTorch seed semantics;
 * tests/golden_extra: both semantics, every dtype) evaluated by the library directly, with the
 * scalar kernel on 1 thread and each vector kernel the CPU has (AVX2, AVX-512; the others are
 * reported as skipped) on 1, 2 and 7 threads. Every kernel must match PyTorch to 1e-6 and give
 * bit-identical stats whatever the thread count.
 */
#include "golden_case.h"
#include "testing.h"

static segloss_ctx *ctx_scalar, *ctx_fast1, *ctx_fast2, *ctx_fast7;
static int cases_failed;

static int evaluate_with(segloss_ctx *ctx, golden_case *g, segloss_result **r)
{
    char detail[512];
    int rc =
        segloss_evaluate(ctx, &g->logits, &g->labels, &g->params.loss, r, detail, sizeof detail);
    if (rc)
        fprintf(stderr, "  %s: %s (%s)\n", g->name, detail, segloss_error_name(rc));
    return rc;
}

static void one_case(const char *dir)
{
    golden_case g;
    int bad = golden_load(dir, &g) != 0;
    segloss_result *rs = NULL, *r1 = NULL, *r2 = NULL, *r7 = NULL;
    if (!bad) {
        if (ctx_scalar)
            bad |= evaluate_with(ctx_scalar, &g, &rs) != 0;
        bad |= evaluate_with(ctx_fast1, &g, &r1) != 0;
        bad |= evaluate_with(ctx_fast2, &g, &r2) != 0;
        bad |= evaluate_with(ctx_fast7, &g, &r7) != 0;
    }
    if (!bad) {
        if (rs && golden_compare(&g, rs)) {
            fprintf(stderr, "  %s: scalar kernel differs from PyTorch\n", g.name);
            bad = 1;
        }
        if (golden_compare(&g, r2)) {
            fprintf(stderr, "  %s: %s kernel differs from PyTorch\n", g.name,
                    segloss_kernel_name(segloss_ctx_kernel(ctx_fast2)));
            bad = 1;
        }
        if (!segloss_stats_equal(r1->stats, r2->stats) ||
            !segloss_stats_equal(r1->stats, r7->stats)) {
            fprintf(stderr, "  %s: 1, 2 and 7 threads are not bit-identical\n", g.name);
            bad = 1;
        }
    }
    printf("%s golden %s\n", bad ? "FAIL" : "ok  ", g.name);
    if (bad)
        cases_failed++;
    segloss_result_free(rs);
    segloss_result_free(r1);
    segloss_result_free(r2);
    segloss_result_free(r7);
    golden_free(&g);
}

static void golden_seed_cases(void)
{
    cases_failed = 0;
    CHECK(golden_for_each("tests/golden", one_case) >= 12);
    CHECK_EQ_INT(cases_failed, 0);
}

static void golden_extra_cases(void)
{
    cases_failed = 0;
    CHECK(golden_for_each("tests/golden_extra", one_case) >= 20);
    CHECK_EQ_INT(cases_failed, 0);
}

/* The cases with the scalar kernel checked once, alongside the first vector kernel. */
static void run_cases(void)
{
    RUN(golden_seed_cases);
    RUN(golden_extra_cases);
}

int main(void)
{
    static const segloss_kernel kernels[] = {SEGLOSS_KERNEL_AVX2, SEGLOSS_KERNEL_AVX512,
                                             SEGLOSS_KERNEL_SCALAR};
    int ran = 0;
    for (size_t i = 0; i < 3; i++) {
        segloss_kernel k = kernels[i];
        if (k == SEGLOSS_KERNEL_SCALAR && ran)
            break; /* scalar on several threads only where there is no vector kernel */
        if (!segloss_kernel_supported(k)) {
            printf("# %s kernel skipped: CPU has no %s\n", segloss_kernel_name(k),
                   k == SEGLOSS_KERNEL_AVX512 ? "AVX-512" : "AVX2");
            continue;
        }
        ctx_scalar = NULL;
        if ((!ran && segloss_ctx_new(&ctx_scalar, 1, SEGLOSS_KERNEL_SCALAR)) ||
            segloss_ctx_new(&ctx_fast1, 1, k) || segloss_ctx_new(&ctx_fast2, 2, k) ||
            segloss_ctx_new(&ctx_fast7, 7, k)) {
            fprintf(stderr, "cannot create contexts\n");
            return 1;
        }
        printf("# kernel: %s%s\n", segloss_kernel_name(k), ctx_scalar ? " (and scalar)" : "");
        run_cases();
        ran++;
        segloss_ctx_free(ctx_scalar);
        segloss_ctx_free(ctx_fast1);
        segloss_ctx_free(ctx_fast2);
        segloss_ctx_free(ctx_fast7);
    }
    return TESTS_DONE();
}
