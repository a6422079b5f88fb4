/*
 * loss_params.c - default loss parameters and their validation against the number of classes.
 */
#include <math.h>

#include "segloss/errors.h"
#include "segloss/loss.h"

void segloss_params_default(segloss_params *params)
{
    *params = (segloss_params){
        .class_weights = NULL,
        .alpha_kind = SEGLOSS_ALPHA_SCALAR,
        .alpha = 0.5,
        .gamma = 2.0,
        .beta = 1.0,
        .smooth = 1e-5,
        .threshold = 0.5,
        .semantics = SEGLOSS_SEED,
        .main_loss = SEGLOSS_MAIN_CE,
        .dice_loss = false,
    };
}

static int check_per_class(const char *name, const double *values, size_t len, size_t c,
                           char *detail, size_t detail_len)
{
    if (len != c)
        return segloss_fail(detail, detail_len, SEGLOSS_EPARAM,
                            "%s has %zu values; the logits have %zu classes", name, len, c);
    for (size_t k = 0; k < len; k++)
        if (!isfinite(values[k]) || values[k] < 0 || values[k] > SEGLOSS_MAX_WEIGHT)
            return segloss_fail(detail, detail_len, SEGLOSS_EPARAM,
                                "%s[%zu] is %g; it must be a number from 0 to %g", name, k,
                                values[k], SEGLOSS_MAX_WEIGHT);
    return 0;
}

int segloss_params_check(const segloss_params *p, size_t c, char *detail, size_t detail_len)
{
    int rc;
    if (p->class_weights && (rc = check_per_class("class_weights", p->class_weights,
                                                  p->class_weights_len, c, detail, detail_len)))
        return rc;
    switch (p->alpha_kind) {
    case SEGLOSS_ALPHA_NONE: break;
    case SEGLOSS_ALPHA_SCALAR:
        if (!isfinite(p->alpha) || fabs(p->alpha) > SEGLOSS_MAX_WEIGHT)
            return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                                "alpha is %g; it must be a finite number within +-%g", p->alpha,
                                SEGLOSS_MAX_WEIGHT);
        break;
    case SEGLOSS_ALPHA_PER_CLASS:
        if (!p->alpha_per_class)
            return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "alpha array is missing");
        if ((rc =
                 check_per_class("alpha", p->alpha_per_class, p->alpha_len, c, detail, detail_len)))
            return rc;
        break;
    default: return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "alpha kind is unknown");
    }
    if (!isfinite(p->gamma) || p->gamma < 0 || p->gamma > 100)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "gamma is %g; it must be a number from 0 to 100", p->gamma);
    if (!isfinite(p->beta) || p->beta <= 0 || p->beta > 1e3)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "beta is %g; it must be a number above 0 and at most 1000", p->beta);
    if (!isfinite(p->smooth) || p->smooth < 0 || p->smooth > 1e6)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "smooth is %g; it must be a number from 0 to 1e6", p->smooth);
    if (!isfinite(p->threshold) || p->threshold < 0 || p->threshold > 1)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "threshold is %g; it must be a number from 0 to 1", p->threshold);
    if (p->semantics != SEGLOSS_SEED && p->semantics != SEGLOSS_STANDARD)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "semantics is unknown");
    if (p->main_loss != SEGLOSS_MAIN_CE && p->main_loss != SEGLOSS_MAIN_FOCAL)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL, "main_loss is unknown");
    return 0;
}
