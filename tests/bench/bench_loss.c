/*
 * bench_loss.c - the loss pass against the memory floor, measured in one run.
 *
 * N=8, C=21, 512x512 float32 logits (176 MiB) with random labels. Each figure is the median of
 * RUNS timed runs after one warm-up run:
 *   floor        read the logits once (AVX2 loads summed, 1 and 2 threads): the memory bus
 *   scalar       the reference kernel, 1 thread
 *   avx2 1t/2t   the vector kernel on 1 and 2 threads
 *   fp16         the same batch as float16, avx2 on 2 threads
 *   resize       128x128 logits evaluated at 512x512 masks, avx2 on 2 threads (float32 and
 *                float16)
 *   from cache   the same number of pixels as 32 evaluations of one 256x256 image that stays
 *                in cache: the arithmetic without the memory traffic, avx2 on 1 and 2 threads
 * With --dump DIR it also writes the float32 batch as DIR/logits.npy and DIR/labels.npy, so
 * bench_torch.py can time the PyTorch seed functions on the same data.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segloss/segloss.h"

#define RUNS 7
#define BN 8
#define BC 21
#define BH 512
#define BW 512
/* 1x21x256x256 evaluations that make the pixels of the BNxBCxBHxBW batch */
#define BATCH_IN_CACHE (BN * (BH / 256) * (BW / 256))

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

typedef struct read_arg {
    const float *p;
    size_t n;
    float sum;
} read_arg;

__attribute__((target("avx2"))) static void *read_part(void *a)
{
    read_arg *r = a;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= r->n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(r->p + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(r->p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(r->p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(r->p + i + 24));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    r->sum = out[0] + out[7];
    return NULL;
}

static double time_read(const float *p, size_t n, int threads)
{
    double t[RUNS + 1];
    for (int run = 0; run <= RUNS; run++) {
        pthread_t th[2];
        read_arg args[2];
        double t0 = now_ms();
        for (int i = 0; i < threads; i++) {
            args[i] = (read_arg){p + i * (n / (size_t)threads), n / (size_t)threads, 0};
            pthread_create(&th[i], NULL, read_part, &args[i]);
        }
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        t[run] = now_ms() - t0;
        if (args[0].sum == 12345.f)
            puts("");
    }
    return median(t + 1, RUNS);
}

/* Median time of `repeat` back-to-back evaluations. */
static double time_evals(segloss_ctx *ctx, const segloss_tensor *l, const segloss_tensor *m,
                         const segloss_params *p, int repeat, double *ce)
{
    double t[RUNS + 1];
    for (int run = 0; run <= RUNS; run++) {
        double t0 = now_ms();
        for (int i = 0; i < repeat; i++) {
            segloss_result *r = NULL;
            char detail[256];
            if (segloss_evaluate(ctx, l, m, p, &r, detail, sizeof detail)) {
                fprintf(stderr, "evaluate: %s\n", detail);
                exit(1);
            }
            *ce = r->ce;
            segloss_result_free(r);
        }
        t[run] = now_ms() - t0;
    }
    return median(t + 1, RUNS);
}

static double time_eval(segloss_ctx *ctx, const segloss_tensor *l, const segloss_tensor *m,
                        const segloss_params *p, double *ce)
{
    return time_evals(ctx, l, m, p, 1, ce);
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

int main(int argc, char **argv)
{
    const char *dump = argc > 2 && strcmp(argv[1], "--dump") == 0 ? argv[2] : NULL;
    size_t count = (size_t)BN * BC * BH * BW, pixels = (size_t)BN * BH * BW;
    float *logits = aligned_alloc(64, count * sizeof(float));
    uint16_t *half = aligned_alloc(64, count * sizeof(uint16_t));
    uint8_t *labels = malloc(pixels);
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
    segloss_tensor lt = {logits, SEGLOSS_F32, 4, {BN, BC, BH, BW}};
    segloss_tensor ht = {half, SEGLOSS_F16, 4, {BN, BC, BH, BW}};
    segloss_tensor mt = {labels, SEGLOSS_U8, 3, {BN, BH, BW}};
    /* the resize case: 128x128 logits, the first 8*21*128*128 floats of the batch */
    segloss_tensor small = {logits, SEGLOSS_F32, 4, {BN, BC, 128, 128}};
    segloss_tensor small_half = {half, SEGLOSS_F16, 4, {BN, BC, 128, 128}};
    /* the arithmetic alone: the same pixel count as BATCH_IN_CACHE calls on one 256x256 image
     * (5.25 MiB of logits), which stays in cache from one call to the next */
    segloss_tensor cached = {logits, SEGLOSS_F32, 4, {1, BC, 256, 256}};
    segloss_tensor cached_mask = {labels, SEGLOSS_U8, 3, {1, 256, 256}};
    segloss_params p;
    segloss_params_default(&p);
    p.dice_loss = true;

    segloss_ctx *scalar, *avx1, *avx2;
    if (segloss_ctx_new(&scalar, 1, SEGLOSS_KERNEL_SCALAR) ||
        segloss_ctx_new(&avx1, 1, SEGLOSS_KERNEL_AUTO) ||
        segloss_ctx_new(&avx2, 2, SEGLOSS_KERNEL_AUTO))
        return 1;
    double ce;
    double floor1 = time_read(logits, count, 1), floor2 = time_read(logits, count, 2);
    double floor = floor1 < floor2 ? floor1 : floor2;
    double t_scalar = time_eval(scalar, &lt, &mt, &p, &ce);
    double t_avx1 = time_eval(avx1, &lt, &mt, &p, &ce);
    double t_avx2 = time_eval(avx2, &lt, &mt, &p, &ce);
    double t_half = time_eval(avx2, &ht, &mt, &p, &ce);
    double t_resize = time_eval(avx2, &small, &mt, &p, &ce);
    double t_resize_half = time_eval(avx2, &small_half, &mt, &p, &ce);
    double t_cached1 = time_evals(avx1, &cached, &cached_mask, &p, BATCH_IN_CACHE, &ce);
    double t_cached2 = time_evals(avx2, &cached, &cached_mask, &p, BATCH_IN_CACHE, &ce);
    double mib = (double)(count * 4) / (1 << 20);
    printf("loss pass, N=%d C=%d %dx%d float32 (%.0f MiB), median of %d after a warm-up; "
           "kernel %s\n", BN, BC, BH, BW, mib, RUNS,
           segloss_kernel_name(segloss_ctx_kernel(avx2)));
    printf("| case | median ms | GB/s of logits | x floor |\n|---|---:|---:|---:|\n");
#define ROW(name, t, bytes)                                                                  \
    printf("| %s | %.1f | %.1f | %.2f |\n", name, t, (double)(bytes) / (t) / 1e6, (t) / floor)
    ROW("memory floor: read logits once, 1 thread", floor1, count * 4);
    ROW("memory floor: read logits once, 2 threads", floor2, count * 4);
    ROW("scalar kernel, 1 thread", t_scalar, count * 4);
    ROW("avx2 kernel, 1 thread", t_avx1, count * 4);
    ROW("avx2 kernel, 2 threads", t_avx2, count * 4);
    ROW("avx2, float16 logits, 2 threads", t_half, count * 2);
    ROW("avx2, 128x128 -> 512x512 resize, 2 threads", t_resize, (size_t)BN * BC * 128 * 128 * 4);
    ROW("avx2, float16 128x128 -> 512x512 resize, 2 threads", t_resize_half,
        (size_t)BN * BC * 128 * 128 * 2);
    ROW("avx2, same pixels from cache (32 x 1x21x256x256), 1 thread", t_cached1, count * 4);
    ROW("avx2, same pixels from cache (32 x 1x21x256x256), 2 threads", t_cached2, count * 4);
    printf("target: avx2 on 2 threads within 2.5x the floor: %.2fx, %s\n", t_avx2 / floor,
           t_avx2 <= 2.5 * floor ? "met" : "not met");
    printf("segloss_avx2_2t_ms=%.3f\nsegloss_avx2_1t_ms=%.3f\nfloor_ms=%.3f\n", t_avx2, t_avx1,
           floor);
    segloss_ctx_free(scalar);
    segloss_ctx_free(avx1);
    segloss_ctx_free(avx2);
    free(logits);
    free(half);
    free(labels);
    return 0;
}
