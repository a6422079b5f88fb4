/*
 * result.c - turns additive statistics into the finished answer: losses, per-class scores and
 * the metrics of compute_mIoU, in seed or standard semantics (docs/ARCHITECTURE.md §5).
 */
#include <math.h>
#include <stdlib.h>

#include "loss/loss_internal.h"
#include "segloss/errors.h"

void segloss_result_free(segloss_result *r)
{
    if (!r)
        return;
    free(r->dice_per_class);
    free(r->f_score);
    free(r->iou);
    free(r->precision);
    free(r->recall);
    free(r->support);
    segloss_stats_free(r->stats);
    free(r);
}

/* A ratio of the confusion matrix: seed divides by max(den, 1); standard leaves 0/0 undefined. */
static double confusion_ratio(double num, double den, int seed)
{
    if (seed)
        return num / fmax(den, 1.0);
    return den == 0 ? (double)NAN : num / den;
}

/* Mean of the defined values; NaN when none is. */
static double mean_defined(const double *v, size_t n)
{
    double sum = 0;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) {
            sum += v[i];
            count++;
        }
    return count ? sum / (double)count : (double)NAN;
}

static double mean_all(const double *v, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    return sum / (double)n;
}

/* The F-beta score of the seed's Dice_loss / f_score for one class. */
static double fbeta(double tp, double pos, double count, double beta, double smooth)
{
    double b2 = beta * beta;
    double fp = pos - tp, fn = count - tp;
    return ((1 + b2) * tp + smooth) / ((1 + b2) * tp + b2 * fn + fp + smooth);
}

int segloss_result_from_stats(const segloss_stats *stats, const segloss_params *params,
                              segloss_result **out, char *detail, size_t detail_len)
{
    size_t c = stats->num_classes;
    int seed = stats->semantics == SEGLOSS_SEED;
    *out = NULL;
    if ((int)params->semantics != (int)stats->semantics)
        return segloss_fail(detail, detail_len, SEGLOSS_EINVAL,
                            "the statistics were gathered under other semantics");
    segloss_result *r = calloc(1, sizeof *r);
    if (!r)
        return SEGLOSS_ENOMEM;
    r->dice_per_class = malloc(c * sizeof(double));
    r->f_score = malloc(c * sizeof(double));
    r->iou = malloc(c * sizeof(double));
    r->precision = malloc(c * sizeof(double));
    r->recall = malloc(c * sizeof(double));
    r->support = malloc(c * sizeof(uint64_t));
    r->stats = segloss_stats_clone(stats);
    if (!r->dice_per_class || !r->f_score || !r->iou || !r->precision || !r->recall ||
        !r->support || !r->stats) {
        segloss_result_free(r);
        return SEGLOSS_ENOMEM;
    }
    r->c = r->num_classes = c;
    r->pixels_total = stats->pixels_total;
    r->pixels_valid = stats->pixels_valid;
    r->pixels_ignored = stats->pixels_total - stats->pixels_valid;

    double ce_den = segloss_sum_value(stats->ce_den);
    r->ce = ce_den > 0 ? segloss_sum_value(stats->ce_num) / ce_den : (double)NAN;
    double focal_den = seed ? (double)stats->pixels_total : ce_den;
    r->focal = focal_den > 0 ? segloss_sum_value(stats->focal_num) / focal_den : (double)NAN;

    uint64_t diag_total = 0, all_total = 0;
    for (size_t k = 0; k < c; k++) {
        uint64_t row = 0, col = 0, diag = stats->confusion[k * c + k];
        for (size_t j = 0; j < c; j++) {
            row += stats->confusion[k * c + j];
            col += stats->confusion[j * c + k];
        }
        diag_total += diag;
        all_total += row;
        r->support[k] = row;
        double tp = segloss_sum_value(stats->dice_tp[k]);
        double psum = segloss_sum_value(stats->dice_psum[k]);
        r->dice_per_class[k] = fbeta(tp, psum, (double)row, params->beta, params->smooth);
        r->f_score[k] = fbeta((double)stats->fscore_tp[k], (double)stats->fscore_pos[k],
                              (double)row, params->beta, params->smooth);
        r->iou[k] = confusion_ratio((double)diag, (double)(row + col - diag), seed);
        r->recall[k] = confusion_ratio((double)diag, (double)row, seed);
        r->precision[k] = confusion_ratio((double)diag, (double)col, seed);
    }
    r->mean_dice = mean_all(r->dice_per_class, c);
    r->mean_f_score = mean_all(r->f_score, c);
    r->dice = 1.0 - r->mean_dice;
    r->miou = mean_defined(r->iou, c);
    r->mpa = mean_defined(r->recall, c);
    r->accuracy = (double)diag_total / (double)(all_total > 0 ? all_total : 1);
    r->total = (params->main_loss == SEGLOSS_MAIN_FOCAL ? r->focal : r->ce) +
               (params->dice_loss ? r->dice : 0.0);
    *out = r;
    return 0;
}

void segloss_item_figures_from_counts(const uint64_t *counts, size_t num_classes,
                                      segloss_item_figures *out, double *iou)
{
    const uint64_t *gt = counts, *pred = counts + num_classes, *tp = counts + 2 * num_classes;
    double iou_sum = 0, dice_sum = 0;
    uint64_t hits = 0;
    out->present = 0;
    out->valid = 0;
    for (size_t k = 0; k < num_classes; k++) {
        out->valid += gt[k];
        hits += tp[k];
        if (!gt[k]) {
            if (iou)
                iou[k] = (double)NAN;
            continue;
        }
        double v = (double)tp[k] / (double)(gt[k] + pred[k] - tp[k]);
        if (iou)
            iou[k] = v;
        iou_sum += v;
        dice_sum += 2.0 * (double)tp[k] / (double)(gt[k] + pred[k]);
        out->present++;
    }
    double p = (double)out->present;
    out->accuracy = out->valid ? (double)hits / (double)out->valid : (double)NAN;
    out->miou = out->present ? iou_sum / p : (double)NAN;
    out->mean_dice = out->present ? dice_sum / p : (double)NAN;
}
