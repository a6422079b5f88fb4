/*
 * result_json.c - writes a segloss_result as the answer of POST /v1/evaluate (see
 * result_json.h).
 */
#include "api/result_json.h"

#include <stdio.h>
#include <stdlib.h>

static void write_params(json_writer *w, const params_request *p, size_t c)
{
    const segloss_params *l = &p->loss;
    json_key(w, "params");
    json_object_begin(w);
    json_key(w, "class_weights");
    json_array_begin(w);
    for (size_t k = 0; k < c; k++)
        json_number(w, l->class_weights ? l->class_weights[k] : 1.0);
    json_array_end(w);
    json_key(w, "alpha");
    if (l->alpha_kind == SEGLOSS_ALPHA_NONE)
        json_null(w);
    else if (l->alpha_kind == SEGLOSS_ALPHA_SCALAR)
        json_number(w, l->alpha);
    else
        json_number_array(w, l->alpha_per_class, l->alpha_len);
    json_key(w, "gamma");
    json_number(w, l->gamma);
    json_key(w, "beta");
    json_number(w, l->beta);
    json_key(w, "smooth");
    json_number(w, l->smooth);
    json_key(w, "threshold");
    json_number(w, l->threshold);
    json_key(w, "main_loss");
    json_string(w, l->main_loss == SEGLOSS_MAIN_FOCAL ? "focal" : "ce");
    json_key(w, "dice_loss");
    json_bool(w, l->dice_loss);
    json_key(w, "num_classes");
    json_uint(w, c);
    json_key(w, "semantics");
    json_string(w, l->semantics == SEGLOSS_STANDARD ? "standard" : "seed");
    json_key(w, "confusion_matrix");
    json_bool(w, p->confusion_matrix);
    json_key(w, "run");
    if (p->run)
        json_string(w, p->run);
    else
        json_null(w);
    json_key(w, "step");
    if (p->has_step)
        json_int(w, p->step);
    else
        json_null(w);
    json_key(w, "split");
    if (p->split)
        json_string(w, p->split);
    else
        json_null(w);
    json_object_end(w);
}

char *result_json(const segloss_result *r, const params_request *params, const char *id,
                  const result_timing *timing, size_t *len)
{
    return result_json_items(r, params, id, timing, NULL, len);
}

/* The "items" member: the figures of each batch item from its own counts. */
static void write_items(json_writer *w, const uint64_t *counts, size_t n, size_t c)
{
    double *iou = malloc((c ? c : 1) * sizeof *iou);
    if (!iou) {
        w->failed = true; /* the answer fails as a whole (OOM) */
        return;
    }
    json_key(w, "items");
    json_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        segloss_item_figures f;
        segloss_item_figures_from_counts(counts + i * 3 * c, c, &f, iou);
        json_object_begin(w);
        json_key(w, "item");
        json_uint(w, i);
        json_key(w, "pixels");
        json_uint(w, f.valid);
        json_key(w, "accuracy");
        json_number(w, f.accuracy);
        json_key(w, "miou");
        json_number(w, f.miou);
        json_key(w, "mean_dice");
        json_number(w, f.mean_dice);
        json_key(w, "present");
        json_uint(w, f.present);
        json_key(w, "iou");
        json_number_array(w, iou, c);
        json_object_end(w);
    }
    json_array_end(w);
    free(iou);
}

void result_json_members(json_writer *w, const segloss_result *r, const params_request *params,
                         const char *id, const result_timing *timing, const uint64_t *item_counts)
{
    size_t c = r->num_classes;
    if (id) {
        json_key(w, "id");
        json_string(w, id);
    }

    json_key(w, "shape");
    json_object_begin(w);
    json_key(w, "n");
    json_uint(w, r->n);
    json_key(w, "c");
    json_uint(w, r->c);
    json_key(w, "h");
    json_uint(w, r->h);
    json_key(w, "w");
    json_uint(w, r->w);
    json_object_end(w);

    json_key(w, "num_classes");
    json_uint(w, c);

    json_key(w, "pixels");
    json_object_begin(w);
    json_key(w, "total");
    json_uint(w, r->pixels_total);
    json_key(w, "valid");
    json_uint(w, r->pixels_valid);
    json_key(w, "ignored");
    json_uint(w, r->pixels_ignored);
    json_object_end(w);

    json_key(w, "loss");
    json_object_begin(w);
    json_key(w, "ce");
    json_number(w, r->ce);
    json_key(w, "focal");
    json_number(w, r->focal);
    json_key(w, "dice");
    json_number(w, r->dice);
    json_key(w, "total");
    json_number(w, r->total);
    json_object_end(w);

    json_key(w, "per_class");
    json_object_begin(w);
    json_key(w, "dice");
    json_number_array(w, r->dice_per_class, c);
    json_key(w, "f_score");
    json_number_array(w, r->f_score, c);
    json_key(w, "iou");
    json_number_array(w, r->iou, c);
    json_key(w, "precision");
    json_number_array(w, r->precision, c);
    json_key(w, "recall");
    json_number_array(w, r->recall, c);
    json_key(w, "support");
    json_uint_array(w, r->support, c);
    json_object_end(w);

    json_key(w, "metrics");
    json_object_begin(w);
    json_key(w, "mean_dice");
    json_number(w, r->mean_dice);
    json_key(w, "f_score");
    json_number(w, r->mean_f_score);
    json_key(w, "miou");
    json_number(w, r->miou);
    json_key(w, "mpa");
    json_number(w, r->mpa);
    json_key(w, "accuracy");
    json_number(w, r->accuracy);
    json_object_end(w);

    write_params(w, params, c);

    if (timing) {
        json_key(w, "timing");
        json_object_begin(w);
        json_key(w, "decode_ms");
        json_number(w, timing->decode_ms);
        json_key(w, "compute_ms");
        json_number(w, timing->compute_ms);
        json_key(w, "total_ms");
        json_number(w, timing->total_ms);
        json_object_end(w);
    }

    if (params->confusion_matrix && r->stats && r->stats->confusion) {
        json_key(w, "confusion_matrix");
        json_array_begin(w);
        for (size_t row = 0; row < c; row++)
            json_uint_array(w, r->stats->confusion + row * c, c);
        json_array_end(w);
    }
    if (item_counts)
        write_items(w, item_counts, r->n, c);
}

char *result_json_items(const segloss_result *r, const params_request *params, const char *id,
                        const result_timing *timing, const uint64_t *item_counts, size_t *len)
{
    json_writer w;
    json_writer_init(&w);
    json_object_begin(&w);
    result_json_members(&w, r, params, id, timing, item_counts);
    json_object_end(&w);
    return json_writer_finish(&w, len);
}

void evaluation_answer_json(evaluation_outcome *out, const evaluation_request *req)
{
    if (out->status != 200 || out->body)
        return;
    result_timing timing = {out->decode_ms, out->compute_ms, out->total_ms};
    out->body = result_json_items(out->result, req->params, req->id, &timing, out->item_counts,
                                  &out->body_len);
    if (!out->body) {
        out->status = 503;
        snprintf(out->detail, sizeof out->detail, "out of memory writing the answer; retry later");
    }
}

char *evaluation_record_json(const evaluation_record *rec, size_t *len)
{
    result_timing timing = {rec->decode_ms, rec->compute_ms, rec->total_ms};
    return result_json_items(rec->result, rec->params, rec->id, &timing, rec->item_counts, len);
}
