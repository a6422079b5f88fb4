/*
 * store_types.c - the history keys and the functions that free what the store's queries give
 * (store_types.h): shared by the facade's callers and the backends' error paths.
 */
#include "store/backend/store_types.h"

#include <stdlib.h>
#include <string.h>

const char *const store_history_keys[STORE_HISTORY_KEY_COUNT] = {
    "loss.ce",           "loss.focal",      "loss.dice",   "loss.total",       "metrics.miou",
    "metrics.mean_dice", "metrics.f_score", "metrics.mpa", "metrics.accuracy",
};

void store_run_list_free(store_run_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++) {
        free(list->runs[i].name);
        free(list->runs[i].splits);
    }
    free(list->runs);
    free(list->next_page_token);
    memset(list, 0, sizeof *list);
}

void store_run_summary_free(store_run_summary *sum)
{
    if (!sum)
        return;
    free(sum->info.name);
    free(sum->class_names_json);
    for (size_t i = 0; i < sum->split_count; i++) {
        store_split_summary *sp = &sum->splits[i];
        free(sp->split);
        segloss_stats_free(sp->stats);
        free(sp->loss_params_json);
        free(sp->latest);
    }
    free(sum->splits);
    memset(sum, 0, sizeof *sum);
}

void store_history_free(store_history *h)
{
    if (!h)
        return;
    free(h->points);
    free(h->next_page_token);
    memset(h, 0, sizeof *h);
}

void store_overlay_input_free(store_overlay_input *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < 3; i++)
        free(in->owned[i]);
    memset(in, 0, sizeof *in);
}

void store_item_list_free(store_item_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->rows[i].iou_json);
    free(list->rows);
    memset(list, 0, sizeof *list);
}

void store_aggregate_list_free(store_aggregate_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++) {
        segloss_stats_free(list->rows[i].stats);
        free(list->rows[i].loss_params_json);
    }
    free(list->rows);
    memset(list, 0, sizeof *list);
}

void store_replay_clear(store_replay *replay)
{
    if (!replay)
        return;
    free(replay->answer);
    memset(replay, 0, sizeof *replay);
}
