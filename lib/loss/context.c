/*
 * context.c - the evaluation context: the worker pool and the kernel chosen once at start.
 *
 * The kernels are chosen at run time from what the CPU reports (never by compiling for the
 * build machine): AVX-512 (F, BW, DQ, VL) when the CPU and OS have it, else AVX2+FMA+F16C, else
 * the scalar reference kernel. SEGLOSS_KERNEL=scalar|avx2|avx512 asks for one, and asking for
 * one the CPU lacks is an error, not a quiet fallback; a SEGLOSS_FORCE_SCALAR build runs only
 * the scalar kernel.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loss/loss_internal.h"
#include "segloss/errors.h"

struct segloss_ctx {
    segloss__pool *pool;
    segloss_kernel kernel;
    segloss__kernel_fn kernel_fn;
    segloss__convert_fn convert_fn;
    segloss__lerp_fn lerp_fn;
    pthread_mutex_t lock;  /* one evaluation at a time uses the pool */
    segloss_limits limits; /* the shapes evaluations are checked against */
};

const char *segloss_kernel_name(segloss_kernel kernel)
{
    switch (kernel) {
    case SEGLOSS_KERNEL_SCALAR: return "scalar";
    case SEGLOSS_KERNEL_AVX2: return "avx2";
    case SEGLOSS_KERNEL_AVX512: return "avx512";
    case SEGLOSS_KERNEL_AUTO: break;
    }
    return "auto";
}

unsigned segloss__cpu_features(void)
{
#ifdef SEGLOSS_FORCE_SCALAR
    return 0;
#else
    unsigned f = 0;
    if (segloss__cpu_has_avx2()) {
        f |= SEGLOSS__CPU_AVX2;
        if (segloss__cpu_has_avx512())
            f |= SEGLOSS__CPU_AVX512;
    }
    return f;
#endif
}

static int kernel_runs_on(segloss_kernel k, unsigned cpu)
{
    switch (k) {
    case SEGLOSS_KERNEL_AUTO:
    case SEGLOSS_KERNEL_SCALAR: return 1;
    case SEGLOSS_KERNEL_AVX2: return (cpu & SEGLOSS__CPU_AVX2) != 0;
    case SEGLOSS_KERNEL_AVX512: return (cpu & SEGLOSS__CPU_AVX512) != 0;
    }
    return 0;
}

int segloss__kernel_resolve(segloss_kernel wanted, const char *env, unsigned cpu,
                            segloss_kernel *out, char *detail, size_t detail_len)
{
    static const segloss_kernel by_speed[] = {SEGLOSS_KERNEL_AVX512, SEGLOSS_KERNEL_AVX2,
                                              SEGLOSS_KERNEL_SCALAR};
    const char *asked_by = "the caller";
    *out = SEGLOSS_KERNEL_SCALAR;
    if (wanted == SEGLOSS_KERNEL_AUTO && env && env[0] && strcmp(env, "auto") != 0) {
        asked_by = "SEGLOSS_KERNEL";
        for (size_t i = 0; i < sizeof by_speed / sizeof by_speed[0]; i++)
            if (strcmp(env, segloss_kernel_name(by_speed[i])) == 0)
                wanted = by_speed[i];
        if (wanted == SEGLOSS_KERNEL_AUTO)
            return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                                "SEGLOSS_KERNEL=%.40s names no kernel; use scalar, avx2, avx512 "
                                "or auto",
                                env);
    }
    if (wanted != SEGLOSS_KERNEL_AUTO && wanted != SEGLOSS_KERNEL_SCALAR &&
        wanted != SEGLOSS_KERNEL_AVX2 && wanted != SEGLOSS_KERNEL_AVX512)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "kernel %d does not exist",
                            (int)wanted);
    if (wanted == SEGLOSS_KERNEL_AUTO) {
        for (size_t i = 0; i < sizeof by_speed / sizeof by_speed[0]; i++)
            if (kernel_runs_on(by_speed[i], cpu)) {
                *out = by_speed[i];
                break;
            }
        return 0;
    }
    if (!kernel_runs_on(wanted, cpu)) {
        const char *needs =
            wanted == SEGLOSS_KERNEL_AVX512 ? "AVX-512 (F, BW, DQ, VL)" : "AVX2, FMA and F16C";
        return segloss_fail(detail, detail_len, SEGLOSS_EKERNEL,
                            "%s asked for the %s kernel, but this CPU (or build) has no %s; it "
                            "can run: %s%s",
                            asked_by, segloss_kernel_name(wanted), needs,
                            cpu & SEGLOSS__CPU_AVX512 ? "avx512, " : "",
                            cpu & SEGLOSS__CPU_AVX2 ? "avx2, scalar" : "scalar");
    }
    *out = wanted;
    return 0;
}

int segloss_kernel_choose(segloss_kernel wanted, segloss_kernel *out, char *detail,
                          size_t detail_len)
{
    return segloss__kernel_resolve(wanted, getenv("SEGLOSS_KERNEL"), segloss__cpu_features(), out,
                                   detail, detail_len);
}

int segloss_kernel_supported(segloss_kernel kernel)
{
    return kernel_runs_on(kernel, segloss__cpu_features());
}

int segloss_ctx_new(segloss_ctx **out, unsigned threads, segloss_kernel kernel)
{
    *out = NULL;
    if (threads == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        threads = online > 0 ? (unsigned)online : 1;
    }
    if (threads > 256)
        threads = 256;
    segloss_kernel kernel_chosen;
    int rc = segloss_kernel_choose(kernel, &kernel_chosen, NULL, 0);
    if (rc)
        return rc;
    segloss_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return SEGLOSS_ENOMEM;
    rc = segloss__pool_new(&ctx->pool, threads);
    if (rc) {
        free(ctx);
        return rc;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    segloss_limits_default(&ctx->limits);
    ctx->kernel = kernel_chosen;
    ctx->kernel_fn = segloss__kernel_scalar;
    ctx->convert_fn = segloss__convert_scalar;
    ctx->lerp_fn = segloss__lerp_scalar;
#ifndef SEGLOSS_FORCE_SCALAR
    if (ctx->kernel == SEGLOSS_KERNEL_AVX2) {
        ctx->kernel_fn = segloss__kernel_avx2;
        ctx->convert_fn = segloss__convert_avx2;
        ctx->lerp_fn = segloss__lerp_avx2;
    }
    if (ctx->kernel == SEGLOSS_KERNEL_AVX512) {
        /* conversion and resizing stay AVX2's (an AVX-512 CPU has AVX2 too) */
        ctx->kernel_fn = segloss__kernel_avx512;
        ctx->convert_fn = segloss__convert_avx2;
        ctx->lerp_fn = segloss__lerp_avx2;
    }
#endif
    *out = ctx;
    return 0;
}

int segloss_ctx_set_limits(segloss_ctx *ctx, const segloss_limits *limits)
{
    if (!ctx || !limits || !limits->max_classes || !limits->max_side || !limits->max_pixels ||
        !limits->max_batch || !limits->max_elements ||
        limits->max_classes > SEGLOSS_MAX_CLASSES_CEILING)
        return SEGLOSS_EINVAL;
    ctx->limits = *limits;
    return 0;
}

const segloss_limits *segloss_ctx_limits(const segloss_ctx *ctx)
{
    return &ctx->limits;
}

void segloss_ctx_free(segloss_ctx *ctx)
{
    if (!ctx)
        return;
    segloss__pool_free(ctx->pool);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

unsigned segloss_ctx_threads(const segloss_ctx *ctx)
{
    return segloss__pool_threads(ctx->pool);
}

segloss_kernel segloss_ctx_kernel(const segloss_ctx *ctx)
{
    return ctx->kernel;
}

segloss__pool *segloss__ctx_pool(segloss_ctx *ctx)
{
    return ctx->pool;
}

segloss__kernel_fn segloss__ctx_kernel_fn(const segloss_ctx *ctx)
{
    return ctx->kernel_fn;
}

segloss__convert_fn segloss__ctx_convert_fn(const segloss_ctx *ctx)
{
    return ctx->convert_fn;
}

segloss__lerp_fn segloss__ctx_lerp_fn(const segloss_ctx *ctx)
{
    return ctx->lerp_fn;
}

void segloss__ctx_lock(segloss_ctx *ctx)
{
    pthread_mutex_lock(&ctx->lock);
}

void segloss__ctx_unlock(segloss_ctx *ctx)
{
    pthread_mutex_unlock(&ctx->lock);
}
