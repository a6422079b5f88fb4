/*
 * test_limits.c - the shape limits live on the library's context (segloss_ctx_set_limits), so a
 * configured --max-classes, --max-side or --max-batch is what segloss_evaluate checks, not the
 * compiled-in defaults; and stats of up to SEGLOSS_MAX_CLASSES_CEILING classes serialise and
 * read back.
 */
#include <stdlib.h>

#include "segloss/segloss.h"
#include "testing.h"

/* Logits (1, c, h, w) that favour class (x + y) % c, and labels equal to that class. */
static void make_batch(size_t c, size_t h, size_t w, float **logits, uint8_t **labels16,
                       segloss_tensor *lt, segloss_tensor *mt)
{
    *logits = calloc(c * h * w, sizeof **logits);
    uint16_t *lab = calloc(h * w, sizeof *lab);
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            size_t k = (x + y) % c;
            (*logits)[(k * h + y) * w + x] = 4.0f;
            lab[y * w + x] = (uint16_t)k;
        }
    *labels16 = (uint8_t *)lab;
    *lt = (segloss_tensor){*logits, SEGLOSS_F32, 4, {1, c, h, w}};
    *mt = (segloss_tensor){lab, SEGLOSS_U16, 3, {1, h, w}};
}

static void test_classes_follow_the_context(void)
{
    segloss_ctx *ctx = NULL;
    CHECK(segloss_ctx_new(&ctx, 2, SEGLOSS_KERNEL_AUTO) == 0);
    float *logits;
    uint8_t *labels;
    segloss_tensor lt, mt;
    make_batch(2048, 4, 64, &logits, &labels, &lt, &mt);
    segloss_params p;
    segloss_params_default(&p);
    segloss_result *r = NULL;
    char detail[256] = "";
    /* the default context keeps SEGLOSS_MAX_CLASSES */
    CHECK(segloss_evaluate(ctx, &lt, &mt, &p, &r, detail, sizeof detail) == SEGLOSS_ELIMIT);
    CHECK_MSG(strstr(detail, "2048 classes") && strstr(detail, "1024"), "%s", detail);
    CHECK(r == NULL);
    segloss_limits lim;
    segloss_limits_default(&lim);
    lim.max_classes = 2048;
    CHECK(segloss_ctx_set_limits(ctx, &lim) == 0);
    CHECK(segloss_ctx_limits(ctx)->max_classes == 2048);
    CHECK_MSG(segloss_evaluate(ctx, &lt, &mt, &p, &r, detail, sizeof detail) == 0, "%s", detail);
    if (r) {
        CHECK(r->num_classes == 2048);
        CHECK(r->accuracy == 1.0);
        segloss_result_free(r);
        r = NULL;
    }
    /* and lowering a limit reaches the check too */
    lim.max_classes = 16;
    CHECK(segloss_ctx_set_limits(ctx, &lim) == 0);
    CHECK(segloss_evaluate(ctx, &lt, &mt, &p, &r, detail, sizeof detail) == SEGLOSS_ELIMIT);
    free(logits);
    free(labels);
    segloss_ctx_free(ctx);
}

static void test_side_and_batch_follow_the_context(void)
{
    segloss_ctx *ctx = NULL;
    CHECK(segloss_ctx_new(&ctx, 1, SEGLOSS_KERNEL_AUTO) == 0);
    float *logits;
    uint8_t *labels;
    segloss_tensor lt, mt;
    make_batch(3, 8, 40, &logits, &labels, &lt, &mt);
    segloss_params p;
    segloss_params_default(&p);
    segloss_result *r = NULL;
    char detail[256] = "";
    segloss_limits lim;
    segloss_limits_default(&lim);
    lim.max_side = 32;
    CHECK(segloss_ctx_set_limits(ctx, &lim) == 0);
    CHECK(segloss_evaluate(ctx, &lt, &mt, &p, &r, detail, sizeof detail) == SEGLOSS_ELIMIT);
    CHECK_MSG(strstr(detail, "32 x 32"), "%s", detail);
    lim.max_side = 40;
    CHECK(segloss_ctx_set_limits(ctx, &lim) == 0);
    CHECK_MSG(segloss_evaluate(ctx, &lt, &mt, &p, &r, detail, sizeof detail) == 0, "%s", detail);
    segloss_result_free(r);
    free(logits);
    free(labels);
    segloss_ctx_free(ctx);
}

static void test_bad_limits_refused(void)
{
    segloss_ctx *ctx = NULL;
    CHECK(segloss_ctx_new(&ctx, 1, SEGLOSS_KERNEL_AUTO) == 0);
    segloss_limits lim;
    segloss_limits_default(&lim);
    lim.max_classes = SEGLOSS_MAX_CLASSES_CEILING + 1;
    CHECK(segloss_ctx_set_limits(ctx, &lim) == SEGLOSS_EINVAL);
    segloss_limits_default(&lim);
    lim.max_batch = 0;
    CHECK(segloss_ctx_set_limits(ctx, &lim) == SEGLOSS_EINVAL);
    CHECK(segloss_ctx_limits(ctx)->max_classes == SEGLOSS_MAX_CLASSES); /* unchanged */
    segloss_ctx_free(ctx);
}

static void test_stats_up_to_the_ceiling(void)
{
    segloss_stats *s = segloss_stats_new(SEGLOSS_MAX_CLASSES_CEILING, SEGLOSS_SEED);
    CHECK(s != NULL);
    segloss_stats_free(s);
    CHECK(segloss_stats_new(SEGLOSS_MAX_CLASSES_CEILING + 1, SEGLOSS_SEED) == NULL);
}

int main(void)
{
    RUN(test_classes_follow_the_context);
    RUN(test_side_and_batch_follow_the_context);
    RUN(test_bad_limits_refused);
    RUN(test_stats_up_to_the_ceiling);
    return TESTS_DONE();
}
