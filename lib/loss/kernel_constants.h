/*
 * kernel_constants.h - the numbers the vector kernels (kernel_avx2.c, kernel_avx512.c) compute
 * exp and log with. The kernels must agree bit for bit per pixel, so each constant is written
 * once here; the kernels differ only in vector width. Where they come from is said in
 * kernel_avx2.c (exp: tests/tools/fit_exp_poly.py; log: Cephes logf).
 */
#ifndef SEGLOSS_KERNEL_CONSTANTS_H
#define SEGLOSS_KERNEL_CONSTANTS_H

/* exp(x), x <= 0: the clamp, 1.5 * 2^23 (rounds x * 8/ln2 to an integer in the low mantissa
 * bits), 8/ln2 and ln2/8, and the degree-3 polynomial for e^r, highest degree first. */
#define SEGLOSS__EXP_CLAMP (-87.0f)
#define SEGLOSS__EXP_MAGIC 12582912.0f
#define SEGLOSS__EXP_8_OVER_LN2 11.541560173034668f
#define SEGLOSS__EXP_LN2_OVER_8 0.08664339780807495f
#define SEGLOSS__EXP_P3 0.16664297878742218f
#define SEGLOSS__EXP_P2 0.5000647902488708f
/* The bits of 2^(j/8), j = 0..7, less j << 20 (see exp_nonpositive in kernel_avx2.c). */
#define SEGLOSS__EXP_TABLE                                                                         \
    0x3f800000, 0x3f7b95c2, 0x3f7837f0, 0x3f75fed7, 0x3f7504f3, 0x3f75672a, 0x3f7744fd, 0x3f7ac0c7

/* log(x), x > 0: sqrt(1/2) (the mantissa's split), the polynomial, highest degree first, and
 * ln 2 in two parts (the low part first, as Cephes adds them). */
#define SEGLOSS__LOG_SQRTHF 0.707106781186547524f
#define SEGLOSS__LOG_POLY_LEN 9
static const float segloss__log_poly[SEGLOSS__LOG_POLY_LEN] = {
    7.0376836292E-2f,  -1.1514610310E-1f, 1.1676998740E-1f,  -1.2420140846E-1f, 1.4249322787E-1f,
    -1.6668057665E-1f, 2.0000714765E-1f,  -2.4999993993E-1f, 3.3333331174E-1f};
#define SEGLOSS__LOG_LN2_LO (-2.12194440e-4f)
#define SEGLOSS__LOG_LN2_HI 0.693359375f

#endif
