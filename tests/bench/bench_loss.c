/*
 * bench_loss.c - one round of the loss pass against its floors, every figure printed.
 *
 * N=8, C=21, 512x512 float32 logits (168 MiB) with random labels from a fixed seed. A round
 * times, one after the other so that drift and the machine's load hit them alike:
 *   floor         read the logits once (plain loads summed) on 1 and 2 threads: the memory bus
 *   fma loop      independent multiply-add chains on 1 and 2 threads, no memory: what these
 *                 cores give a second thread on pure arithmetic; once in plain vectors, and
 *                 run by run with each vector kernel in its own ISA's fused multiply-adds
 *                 (fma_avx2, fma_avx512), as long as the kernel's run
 *   <kernel>      each kernel the CPU has (scalar, avx2, avx512; the others print "skipped")
 *                 on 1 and 2 threads over the batch
 *   cached        the same pixels as 32 evaluations of one 256x256 image that stays in cache,
 *                 each vector kernel on 1 and 2 threads: the arithmetic without the memory
 *   fp16, resize  the batch as float16, and 128x128 logits at 512x512 masks, the default
 *                 kernel on 2 threads
 * Each figure is the median of RUNS timed runs after a warm-up (the scalar kernel: one run),
 * printed as a line `row <name> <ms> <cpu/wall>` where cpu/wall is the process CPU time over
 * the wall time: about the thread count when every thread ran all along, less when a thread
 * waited (for the pool, for the others, or for a CPU the machine's other load held).
 *
 * A vector kernel's 2-thread speed-up is measured run against run (time_scaling): SCALING_RUNS
 * runs of the kernel on 1 thread then on 2, alternating, then as many of its ISA's FMA loop on
 * 1 thread then on 2, the loop sized to last as long as the kernel's run. What a second CPU
 * gives drifts within a second on this kind of machine (the same FMA loop on 2 threads: 1.3x
 * one moment, 2.0x the next), so 1- and 2-thread figures taken a quarter of a second apart
 * measured the drift. Besides the four rows it prints
 * `scaling <kernel> <kernel's speed-up> <FMA loop's speed-up> <the first over the second>`,
 * each speed-up the median over the runs of that run's 1-thread time over its 2-thread time.
 * tests/bench/run_bench.sh runs several rounds and works out the ratios and their ranges.
 *
 * Usage: bench_loss [--dump DIR] [--round]. --dump writes the float32 batch as DIR/logits.npy
 * and DIR/labels.npy (for bench_torch.py) and stops unless --round is given too.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segloss/segloss.h"

#define RUNS 5
/* runs of the interleaved 1- and 2-thread scaling measurement (time_scaling) */
#define SCALING_RUNS 9
#define BN 8
#define BC 21
#define BH 512
#define BW 512
/* 1x21x256x256 evaluations that make the pixels of the BNxBCxBHxBW batch */
#define BATCH_IN_CACHE (BN * (BH / 256) * (BW / 256))
/* multiply-adds per plain FMA-loop run, split over the threads (about 10 ms on 1 thread here);
 * the ISA loops start from 4 times as many and are then sized to the kernel (time_scaling) */
#define FMA_STEPS (1u << 23)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A measured figure: median wall time and the CPU time over wall time of that run. */
typedef struct figure {
    double ms, busy;
} figure;

static figure median_of(double *wall, double *cpu, int n)
{
    double sorted[RUNS > SCALING_RUNS ? RUNS : SCALING_RUNS];
    memcpy(sorted, wall, (size_t)n * sizeof *wall);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    figure f = {sorted[n / 2], 0};
    for (int i = 0; i < n; i++)
        if (wall[i] == f.ms)
            f.busy = cpu[i] / wall[i];
    return f;
}

static void print_row(const char *name, figure f)
{
    printf("row %s %.3f %.2f\n", name, f.ms, f.busy);
    fflush(stdout);
}

/* Both the floor and the FMA loop run on a thread started per run besides the caller: thread
 * start-up costs tens of microseconds against runs of milliseconds. */
typedef struct part_arg {
    const float *p;
    size_t n;
    float out;
} part_arg;

typedef float v8f __attribute__((vector_size(32)));

/* Sum of n floats in four vector chains (the compiler's baseline SSE2 loads: the bus, not the
 * loads, is what limits it). */
static void *read_part(void *a)
{
    part_arg *r = a;
    v8f s[4] = {{0}};
    for (size_t i = 0; i + 32 <= r->n; i += 32)
        for (int j = 0; j < 4; j++) {
            v8f v;
            memcpy(&v, r->p + i + 8 * j, sizeof v);
            s[j] += v;
        }
    v8f t = s[0] + s[1] + s[2] + s[3];
    r->out = t[0] + t[7];
    return NULL;
}

/* n multiply-adds per lane in 8 independent chains of 8 lanes; no memory traffic. */
static void *fma_part(void *a)
{
    part_arg *r = a;
    v8f x[8], m, c;
    for (int i = 0; i < 8; i++)
        m[i] = 0.999999f, c[i] = 1e-7f;
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 8; i++)
            x[j][i] = (float)(j + i);
    for (size_t s = 0; s < r->n; s += 8)
        for (int j = 0; j < 8; j++)
            x[j] = x[j] * m + c;
    r->out = x[0][0] + x[7][7];
    return NULL;
}

/* The same in the kernels' own instructions: 12 independent chains of 8- or 16-lane fused
 * multiply-adds, enough to fill the FMA units. Whether two threads of these run twice as fast
 * as one is what the machine gives a kernel's second thread (a virtual machine's two CPUs may
 * share a physical core's units), so each kernel's speed-up is read against its own ISA's.
 * n counts 8-lane multiply-adds, so both do the same arithmetic. */
#define FMA_CHAINS 12
__attribute__((target("avx2,fma"))) static void *fma_avx2_part(void *a)
{
    part_arg *r = a;
    __m256 x[FMA_CHAINS], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int j = 0; j < FMA_CHAINS; j++)
        x[j] = _mm256_set1_ps((float)j);
    for (size_t s = 0; s < r->n; s += FMA_CHAINS)
        for (int j = 0; j < FMA_CHAINS; j++)
            x[j] = _mm256_fmadd_ps(x[j], m, c);
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(x[0], x[FMA_CHAINS - 1]));
    r->out = out[0];
    return NULL;
}

__attribute__((target("avx512f"))) static void *fma_avx512_part(void *a)
{
    part_arg *r = a;
    __m512 x[FMA_CHAINS], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int j = 0; j < FMA_CHAINS; j++)
        x[j] = _mm512_set1_ps((float)j);
    for (size_t s = 0; s < r->n; s += 2 * FMA_CHAINS) /* 16 lanes: two 8-lane steps each */
        for (int j = 0; j < FMA_CHAINS; j++)
            x[j] = _mm512_fmadd_ps(x[j], m, c);
    r->out = _mm512_reduce_add_ps(_mm512_add_ps(x[0], x[FMA_CHAINS - 1]));
    return NULL;
}

/* One run of fn over n items split across `threads` threads, the calling thread doing the
 * first share as a pool's caller does: wall ms, CPU ms into *cpu. (Two fresh threads with the
 * caller asleep in pthread_join both start on the caller's CPU, and the scheduler spreads them
 * only milliseconds later: such a 10 ms run measured the spreading.) */
static double split_once(void *(*fn)(void *), const float *p, size_t n, int threads, double *cpu)
{
    pthread_t helper;
    part_arg args[2];
    double t0 = now_ms(), c0 = cpu_ms();
    for (int i = 0; i < threads; i++)
        args[i] =
            (part_arg){p ? p + (size_t)i * (n / (size_t)threads) : NULL, n / (size_t)threads, 0};
    if (threads == 2)
        pthread_create(&helper, NULL, fn, &args[1]);
    fn(&args[0]);
    if (threads == 2)
        pthread_join(helper, NULL);
    *cpu = cpu_ms() - c0;
    if (args[0].out == 12345.f)
        puts("");
    return now_ms() - t0;
}

static figure time_threads(void *(*fn)(void *), const float *p, size_t n, int threads)
{
    double wall[RUNS], cpu[RUNS], unused;
    split_once(fn, p, n, threads, &unused);
    for (int run = 0; run < RUNS; run++)
        wall[run] = split_once(fn, p, n, threads, &cpu[run]);
    return median_of(wall, cpu, RUNS);
}

/* One timed run of `repeat` evaluations on ctx: wall ms, and the CPU ms into *cpu. */
static double evals_once(segloss_ctx *ctx, const segloss_tensor *l, const segloss_tensor *m,
                         const segloss_params *p, int repeat, double *cpu)
{
    double t0 = now_ms(), c0 = cpu_ms();
    for (int i = 0; i < repeat; i++) {
        segloss_result *r = NULL;
        char detail[256];
        if (segloss_evaluate(ctx, l, m, p, &r, detail, sizeof detail)) {
            fprintf(stderr, "evaluate: %s\n", detail);
            exit(1);
        }
        segloss_result_free(r);
    }
    *cpu = cpu_ms() - c0;
    return now_ms() - t0;
}

/* Median of `runs` timed runs (after a warm-up when warm) of `repeat` evaluations each. */
static figure time_evals(segloss_ctx *ctx, const segloss_tensor *l, const segloss_tensor *m,
                         const segloss_params *p, int repeat, int runs, int warm)
{
    double wall[RUNS], cpu[RUNS], unused;
    if (warm)
        evals_once(ctx, l, m, p, repeat, &unused);
    for (int run = 0; run < runs; run++)
        wall[run] = evals_once(ctx, l, m, p, repeat, &cpu[run]);
    return median_of(wall, cpu, runs);
}

/* The 2-thread scaling of kernel `name` (the file's head comment): ctx1 and ctx2 run it on 1
 * and 2 threads, fma is its ISA's loop. Prints the rows fma_<name>_1t/_2t and <name>_1t/_2t
 * and the `scaling` line. */
static void time_scaling(const char *name, segloss_ctx *ctx1, segloss_ctx *ctx2,
                         void *(*fma)(void *), const segloss_tensor *l, const segloss_tensor *m,
                         const segloss_params *p)
{
    enum { FMA1, K1, FMA2, K2, SERIES };
    double wall[SERIES][SCALING_RUNS], cpu[SERIES][SCALING_RUNS];
    double kernel_up[SCALING_RUNS], fma_up[SCALING_RUNS], unused;
    size_t steps = FMA_STEPS * 4;
    evals_once(ctx1, l, m, p, 1, &unused); /* warm-up: the pools, the scratch's pages */
    evals_once(ctx2, l, m, p, 1, &unused);
    for (int run = 0; run < SCALING_RUNS; run++) {
        wall[K1][run] = evals_once(ctx1, l, m, p, 1, &cpu[K1][run]);
        wall[K2][run] = evals_once(ctx2, l, m, p, 1, &cpu[K2][run]);
    }
    /* the loop as long as the kernel's median run on 1 thread */
    double kernel_ms = median_of(wall[K1], cpu[K1], SCALING_RUNS).ms;
    double fma_ms = split_once(fma, NULL, steps, 1, &unused);
    steps = (size_t)((double)steps * kernel_ms / fma_ms) / 64 * 64 + 64;
    for (int run = 0; run < SCALING_RUNS; run++) {
        wall[FMA1][run] = split_once(fma, NULL, steps, 1, &cpu[FMA1][run]);
        wall[FMA2][run] = split_once(fma, NULL, steps, 2, &cpu[FMA2][run]);
    }
    for (int run = 0; run < SCALING_RUNS; run++) {
        kernel_up[run] = wall[K1][run] / wall[K2][run];
        fma_up[run] = wall[FMA1][run] / wall[FMA2][run];
    }
    static const char *const prefix[SERIES] = {"fma_", "", "fma_", ""};
    static const char *const suffix[SERIES] = {"_1t", "_1t", "_2t", "_2t"};
    for (int series = 0; series < SERIES; series++) {
        char row[64];
        snprintf(row, sizeof row, "%s%s%s", prefix[series], name, suffix[series]);
        print_row(row, median_of(wall[series], cpu[series], SCALING_RUNS));
    }
    qsort(kernel_up, SCALING_RUNS, sizeof *kernel_up, cmp_double);
    qsort(fma_up, SCALING_RUNS, sizeof *fma_up, cmp_double);
    double kernel_median = kernel_up[SCALING_RUNS / 2], fma_median = fma_up[SCALING_RUNS / 2];
    printf("scaling %s %.3f %.3f %.3f\n", name, kernel_median, fma_median,
           kernel_median / fma_median);
    fflush(stdout);
}

static void write_npy(const char *path, const char *descr, const size_t *shape, int rank,
                      const void *data, size_t bytes)
{
    char header[256];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       descr);
    for (int i = 0; i < rank; i++)
        len += snprintf(header + len, sizeof header - (size_t)len, "%zu, ", shape[i]);
    len += snprintf(header + len, sizeof header - (size_t)len, "), }");
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    unsigned short hlen = (unsigned short)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hlen, 2, 1, f);
    fwrite(header, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, bytes, f);
    fclose(f);
}

static segloss_ctx *context(unsigned threads, segloss_kernel k)
{
    segloss_ctx *ctx = NULL;
    if (segloss_ctx_new(&ctx, threads, k)) {
        fprintf(stderr, "cannot make a %s context\n", segloss_kernel_name(k));
        exit(1);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    const char *dump = NULL;
    int round = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            dump = argv[++i];
        else if (strcmp(argv[i], "--round") == 0)
            round = 1;
        else {
            fprintf(stderr, "usage: bench_loss [--dump DIR] [--round]\n");
            return 2;
        }
    }
    if (!dump)
        round = 1;
    size_t count = (size_t)BN * BC * BH * BW, pixels = (size_t)BN * BH * BW;
    float *logits = aligned_alloc(64, count * sizeof(float));
    uint16_t *half = aligned_alloc(64, count * sizeof(uint16_t));
    uint8_t *labels = malloc(pixels);
    if (!logits || !half || !labels)
        return 1;
    uint64_t s = 42;
    for (size_t i = 0; i < count; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        logits[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 8.0 - 4.0);
        half[i] = segloss_float_to_half(logits[i]);
    }
    for (size_t i = 0; i < pixels; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        unsigned v = (unsigned)(s >> 33) % 23;
        labels[i] = v >= BC ? 255 : (uint8_t)v;
    }
    if (dump) {
        char path[1024];
        size_t ls[4] = {BN, BC, BH, BW}, ms[3] = {BN, BH, BW};
        snprintf(path, sizeof path, "%s/logits.npy", dump);
        write_npy(path, "<f4", ls, 4, logits, count * 4);
        snprintf(path, sizeof path, "%s/labels.npy", dump);
        write_npy(path, "|u1", ms, 3, labels, pixels);
    }
    if (!round)
        return 0;
    segloss_tensor lt = {logits, SEGLOSS_F32, 4, {BN, BC, BH, BW}};
    segloss_tensor ht = {half, SEGLOSS_F16, 4, {BN, BC, BH, BW}};
    segloss_tensor mt = {labels, SEGLOSS_U8, 3, {BN, BH, BW}};
    segloss_tensor small = {logits, SEGLOSS_F32, 4, {BN, BC, 128, 128}};
    segloss_tensor small_half = {half, SEGLOSS_F16, 4, {BN, BC, 128, 128}};
    segloss_tensor cached = {logits, SEGLOSS_F32, 4, {1, BC, 256, 256}};
    segloss_tensor cached_mask = {labels, SEGLOSS_U8, 3, {1, 256, 256}};
    segloss_params p;
    segloss_params_default(&p);
    p.dice_loss = true;

    printf("batch N=%d C=%d %dx%d float32 (%.0f MiB), median of %d after a warm-up\n", BN, BC, BH,
           BW, (double)(count * 4) / (1 << 20), RUNS);
    print_row("floor_1t", time_threads(read_part, logits, count, 1));
    print_row("floor_2t", time_threads(read_part, logits, count, 2));
    print_row("fma_1t", time_threads(fma_part, NULL, FMA_STEPS, 1));
    print_row("fma_2t", time_threads(fma_part, NULL, FMA_STEPS, 2));
    static const segloss_kernel kernels[] = {SEGLOSS_KERNEL_SCALAR, SEGLOSS_KERNEL_AVX2,
                                             SEGLOSS_KERNEL_AVX512};
    for (size_t i = 0; i < 3; i++) {
        segloss_kernel k = kernels[i];
        const char *name = segloss_kernel_name(k);
        if (!segloss_kernel_supported(k)) {
            printf("skipped %s: CPU has no %s\n", name,
                   k == SEGLOSS_KERNEL_AVX512 ? "AVX-512" : "AVX2");
            continue;
        }
        segloss_ctx *ctx[2] = {context(1, k), context(2, k)};
        if (k == SEGLOSS_KERNEL_SCALAR) { /* one run each: a second apiece */
            print_row("scalar_1t", time_evals(ctx[0], &lt, &mt, &p, 1, 1, 0));
            print_row("scalar_2t", time_evals(ctx[1], &lt, &mt, &p, 1, 1, 0));
        } else {
            time_scaling(name, ctx[0], ctx[1],
                         k == SEGLOSS_KERNEL_AVX512 ? fma_avx512_part : fma_avx2_part, &lt, &mt,
                         &p);
            for (unsigned t = 1; t <= 2; t++) {
                char row[64];
                snprintf(row, sizeof row, "%s_cached_%ut", name, t);
                print_row(row, time_evals(ctx[t - 1], &cached, &cached_mask, &p, BATCH_IN_CACHE,
                                          RUNS, 1));
            }
        }
        segloss_ctx_free(ctx[0]);
        segloss_ctx_free(ctx[1]);
    }
    segloss_ctx *def = context(2, SEGLOSS_KERNEL_AUTO);
    printf("default kernel: %s\n", segloss_kernel_name(segloss_ctx_kernel(def)));
    print_row("default_fp16_2t", time_evals(def, &ht, &mt, &p, 1, RUNS, 1));
    print_row("default_resize_2t", time_evals(def, &small, &mt, &p, 1, RUNS, 1));
    print_row("default_resize_fp16_2t", time_evals(def, &small_half, &mt, &p, 1, RUNS, 1));
    segloss_ctx_free(def);
    free(logits);
    free(half);
    free(labels);
    return 0;
}
