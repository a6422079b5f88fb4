/*
 * exact_sum.c - 128-bit fixed-point sums, so that adding partial results is exact.
 *
 * Floating-point addition is not associative: summing batches in another order, or on another
 * number of threads, would change the last bits of every loss. Each chunk's double partial sum
 * is rounded once onto a fixed grid of 2^-56; from then on only integers are added.
 */
#include <math.h>

#include "loss/loss_internal.h"
#include "segloss/errors.h"

segloss__i128 segloss__sum_get(segloss_sum s)
{
    unsigned __int128 u = ((unsigned __int128)(uint64_t)s.hi << 64) | s.lo;
    return (segloss__i128)u;
}

segloss_sum segloss__sum_make(segloss__i128 v)
{
    unsigned __int128 u = (unsigned __int128)v;
    segloss_sum s = {(uint64_t)u, (int64_t)(uint64_t)(u >> 64)};
    return s;
}

int segloss__sum_add_double(segloss_sum *s, double x)
{
    double scaled = ldexp(x, SEGLOSS__SUM_FRAC_BITS);
    /* 2^126: the largest magnitude whose conversion cannot overflow __int128 */
    if (!(fabs(scaled) < 0x1p126))
        return SEGLOSS_ELIMIT;
    return segloss__sum_add(s, segloss__sum_make((segloss__i128)scaled));
}

int segloss__sum_add(segloss_sum *s, segloss_sum t)
{
    segloss__i128 r;
    if (__builtin_add_overflow(segloss__sum_get(*s), segloss__sum_get(t), &r))
        return SEGLOSS_ELIMIT;
    *s = segloss__sum_make(r);
    return 0;
}

double segloss_sum_value(segloss_sum s)
{
    segloss__i128 v = segloss__sum_get(s);
    /* split so that the conversion is correctly rounded enough for a double: hi part exact */
    int neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)(-v) : (unsigned __int128)v;
    double hi = ldexp((double)(uint64_t)(u >> 64), 64);
    double lo = (double)(uint64_t)u;
    double r = ldexp(hi + lo, -SEGLOSS__SUM_FRAC_BITS);
    return neg ? -r : r;
}
