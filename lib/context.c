/*
 * context.c - the evaluation context: the worker pool and the kernel chosen once at start.
 *
 * The AVX2+FMA kernel is picked when the CPU reports AVX2, FMA and F16C at run time (never by
 * compiling for the build machine), unless the build forces the scalar reference kernel
 * (SEGLOSS_FORCE_SCALAR) or the environment asks for it (SEGLOSS_KERNEL=scalar).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loss_internal.h"
#include "segloss/errors.h"

struct segloss_ctx {
    segloss__pool *pool;
    segloss_kernel kernel;
    segloss__kernel_fn kernel_fn;
    segloss__convert_fn convert_fn;
    segloss__lerp_fn lerp_fn;
    pthread_mutex_t lock; /* one evaluation at a time uses the pool */
    segloss_limits limits; /* the shapes evaluations are checked against */
};

const char *segloss_kernel_name(segloss_kernel kernel)
{
    switch (kernel) {
    case SEGLOSS_KERNEL_SCALAR: return "scalar";
    case SEGLOSS_KERNEL_AVX2: return "avx2";
    case SEGLOSS_KERNEL_AUTO: break;
    }
    return "auto";
}

static segloss_kernel resolve_kernel(segloss_kernel wanted)
{
#ifdef SEGLOSS_FORCE_SCALAR
    (void)wanted;
    return SEGLOSS_KERNEL_SCALAR;
#else
    if (wanted == SEGLOSS_KERNEL_AUTO) {
        const char *env = getenv("SEGLOSS_KERNEL");
        if (env && strcmp(env, "scalar") == 0)
            return SEGLOSS_KERNEL_SCALAR;
        wanted = SEGLOSS_KERNEL_AVX2;
    }
    if (wanted == SEGLOSS_KERNEL_AVX2 && segloss__cpu_has_avx2())
        return SEGLOSS_KERNEL_AVX2;
    return SEGLOSS_KERNEL_SCALAR;
#endif
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
    segloss_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return SEGLOSS_ENOMEM;
    int rc = segloss__pool_new(&ctx->pool, threads);
    if (rc) {
        free(ctx);
        return rc;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    segloss_limits_default(&ctx->limits);
    ctx->kernel = resolve_kernel(kernel);
    ctx->kernel_fn = segloss__kernel_scalar;
    ctx->convert_fn = segloss__convert_scalar;
    ctx->lerp_fn = segloss__lerp_scalar;
#ifndef SEGLOSS_FORCE_SCALAR
    if (ctx->kernel == SEGLOSS_KERNEL_AVX2) {
        ctx->kernel_fn = segloss__kernel_avx2;
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
