/*
 * store_scenarios.h - the checks every runs-store backend must pass, written once and run by
 * test_store.c (SQLite) and test_store_postgres.c (PostgreSQL) against their own backend:
 * recording and querying, conflicts, exact aggregation of every golden batch split into single
 * images, history paging while results arrive, retention, deletion, reopening and a schema from
 * a newer seglossd. A check that holds for one backend holds for the other: the daemon cannot
 * tell them apart, so neither may its tests.
 *
 * The including program sets ctx (its library context) and backend, then runs
 * run_store_scenarios().
 */
#ifndef SEGLOSS_TESTS_STORE_SCENARIOS_H
#define SEGLOSS_TESTS_STORE_SCENARIOS_H

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>

#include "api/runs_api.h"
#include "base/json_writer.h"
#include "golden_case.h"
#include "store_fixture.h"
#include "testing.h"

/* Where a scenario's store lives: a scratch directory, a fresh PostgreSQL schema. */
typedef struct store_backend {
    /* Makes an empty place for a store and writes its store_open location into loc: 0 or -1. */
    int (*fresh)(char *loc, size_t loc_len);
    /* Removes what fresh made and everything the store wrote there. */
    void (*discard)(const char *loc);
    /* One number from SQL run on the store's own database, -1 on an error. */
    long long (*sql_number)(const char *loc, const char *sql);
    /* What the backend's table names start with ("" for SQLite, "segloss_" for PostgreSQL):
     * scenario_number puts it where a query says $. */
    const char *table_prefix;
} store_backend;

static segloss_ctx *ctx;
static const store_backend *backend;

#define SCENARIO_LOC_MAX 1024

/* sql_number for a query naming its one table as "$table" (the prefix goes before it). */
static inline long long scenario_number(const char *loc, const char *query)
{
    char sql[512];
    const char *at = strchr(query, '$');
    if (!at || snprintf(sql, sizeof sql, "%.*s%s%s", (int)(at - query), query,
                        backend->table_prefix, at + 1) >= (int)sizeof sql)
        return -1;
    return backend->sql_number(loc, sql);
}

static inline store *scenario_open(const char *loc, size_t retain)
{
    store_options opt = {.location = loc, .retain_evaluations = retain};
    store *s = NULL;
    char err[512];
    if (store_open(&opt, &s, err, sizeof err) != 0)
        fprintf(stderr, "  store_open: %s\n", err);
    return s;
}

/* A fresh place and a store opened on it; NULL (a failed check) when either fails. */
static inline store *scenario_fresh_store(char *loc, size_t retain)
{
    if (backend->fresh(loc, SCENARIO_LOC_MAX) != 0) {
        CHECK_MSG(0, "no fresh place for a store");
        return NULL;
    }
    store *s = scenario_open(loc, retain);
    CHECK(s != NULL);
    if (!s)
        backend->discard(loc);
    return s;
}

/* Reads a run 50 times while writers record into it: each read finds it or finds it absent. */
static inline void scenario_poll_run(store *s, const char *run)
{
    char err[512];
    for (int i = 0; i < 50; i++) {
        store_run_summary sum;
        int rc = store_get_run(s, run, &sum, err, sizeof err);
        CHECK(rc == 0 || rc == STORE_NOT_FOUND);
        if (rc == 0)
            store_run_summary_free(&sum);
    }
}

static void test_record_and_query(void)
{
    char loc[SCENARIO_LOC_MAX], err[512], id[IDS_LEN + 1];
    store *s = scenario_fresh_store(loc, 0);
    if (!s)
        return;
    uint64_t g0, g1;
    CHECK(store_revision(s, NULL, &g0, err, sizeof err) == 0);
    CHECK(store_revision(s, "r1", &g1, err, sizeof err) == STORE_NOT_FOUND);

    fixture_eval f;
    CHECK(fixture_eval_make(ctx, &f, 1, 2, 4, 8, 8, "r1", NULL, 7) == 0);
    const char *names = "[\"bg\",\"cat\",\"dog\",\"car\"]";
    f.ev.class_names_json = names;
    CHECK(store_record(s, &f.ev, err, sizeof err) == 0);
    /* the same id twice is refused and changes nothing */
    CHECK(store_record(s, &f.ev, err, sizeof err) == STORE_CONFLICT);

    char *answer = NULL;
    size_t len = 0;
    CHECK(store_evaluation_answer(s, f.id, &answer, &len, err, sizeof err) == 0);
    CHECK(answer && len == f.answer_len && memcmp(answer, f.answer, len) == 0);
    free(answer);
    CHECK(store_evaluation_answer(s, "0123", &answer, &len, err, sizeof err) == STORE_NOT_FOUND);

    store_run_summary sum;
    CHECK(store_get_run(s, "r1", &sum, err, sizeof err) == 0);
    CHECK(sum.info.evaluations == 1);
    CHECK(sum.info.last_step == 7);
    CHECK(sum.class_names_json && strcmp(sum.class_names_json, names) == 0);
    CHECK_EQ_INT(sum.split_count, 1);
    if (sum.split_count == 1) {
        CHECK(strcmp(sum.splits[0].split, "val") == 0);
        CHECK(sum.splits[0].step == 7);
        CHECK(sum.splits[0].h == 8 && sum.splits[0].w == 8);
        CHECK(segloss_stats_equal(sum.splits[0].stats, f.result->stats));
        CHECK_EQ_INT(sum.splits[0].latest_count, 1);
        CHECK(strcmp(sum.splits[0].latest[0].id, f.id) == 0);
        CHECK(sum.splits[0].latest[0].has_overlay && sum.splits[0].latest[0].n == 2);
    }
    store_run_summary_free(&sum);
    CHECK(store_get_run(s, "nope", &sum, err, sizeof err) == STORE_NOT_FOUND);

    /* overlay inputs come back byte for byte */
    store_overlay_input in;
    CHECK(store_overlay_input_get(s, f.id, 1, &in, err, sizeof err) == 0);
    CHECK(in.num_classes == 4);
    CHECK(in.item.prediction_len == f.items.items[1].prediction_len &&
          memcmp(in.item.prediction, f.items.items[1].prediction, in.item.prediction_len) == 0);
    CHECK(in.item.labels_len == f.items.items[1].labels_len &&
          memcmp(in.item.labels, f.items.items[1].labels, in.item.labels_len) == 0);
    CHECK(in.item.image == NULL);
    store_overlay_input_free(&in);
    CHECK(store_overlay_input_get(s, f.id, 2, &in, err, sizeof err) == STORE_NOT_FOUND);
    CHECK(strstr(err, "item 2") != NULL);

    /* an image next to the maps comes back byte for byte too */
    fixture_eval fi;
    CHECK(fixture_eval_make(ctx, &fi, 9, 1, 4, 8, 8, "r1", NULL, 7) == 0);
    store_item item = fi.items.items[0];
    static const uint8_t image[] = {0x89, 'P', 'N', 'G', 0, 1, 2, 255};
    item.image = image;
    item.image_len = sizeof image;
    fi.ev.items = &item;
    CHECK(store_record(s, &fi.ev, err, sizeof err) == 0);
    CHECK(store_overlay_input_get(s, fi.id, 0, &in, err, sizeof err) == 0);
    CHECK(in.item.image_len == sizeof image && memcmp(in.item.image, image, sizeof image) == 0);
    store_overlay_input_free(&in);
    fixture_eval_free(&fi);

    /* bad class names and run names are refused */
    fixture_eval f2;
    CHECK(fixture_eval_make(ctx, &f2, 2, 1, 4, 8, 8, "r1", NULL, 7) == 0);
    f2.ev.class_names_json = "[\"a\",\"b\"]";
    CHECK(store_record(s, &f2.ev, err, sizeof err) == STORE_INVALID);
    f2.ev.class_names_json = NULL;
    f2.ev.run = "bad/run";
    CHECK(store_record(s, &f2.ev, err, sizeof err) == STORE_INVALID);
    fixture_eval_free(&f2);

    uint64_t r1a, r1b, g2;
    CHECK(store_revision(s, "r1", &r1a, err, sizeof err) == 0);
    CHECK(store_revision(s, NULL, &g2, err, sizeof err) == 0);
    CHECK(g2 > g0);
    CHECK(fixture_record(s, ctx, 3, 4, "r1", "test", 8, id) == 0);
    CHECK(store_revision(s, "r1", &r1b, err, sizeof err) == 0);
    CHECK(r1b > r1a);
    /* another run leaves r1's revision alone */
    CHECK(fixture_record(s, ctx, 4, 4, "r2", NULL, 1, NULL) == 0);
    uint64_t r1c;
    CHECK(store_revision(s, "r1", &r1c, err, sizeof err) == 0 && r1c == r1b);

    CHECK(store_get_run(s, "r1", &sum, err, sizeof err) == 0);
    CHECK_EQ_INT(sum.split_count, 2);
    CHECK(sum.info.evaluations == 3);
    CHECK(sum.class_names_json != NULL); /* kept when later results give none */
    store_run_summary_free(&sum);

    /* run names sort byte-wise, whatever the database's collation */
    CHECK(fixture_record(s, ctx, 5, 4, "R0", NULL, 1, NULL) == 0);
    store_run_list list;
    CHECK(store_list_runs(s, 1, NULL, &list, err, sizeof err) == 0);
    CHECK(list.count == 1 && strcmp(list.runs[0].name, "R0") == 0);
    store_run_list_free(&list);
    CHECK(store_list_runs(s, 2, NULL, &list, err, sizeof err) == 0);
    CHECK_EQ_INT(list.count, 2);
    CHECK(list.count == 2 && strcmp(list.runs[1].name, "r1") == 0);
    CHECK(list.count == 2 && list.runs[1].splits && strstr(list.runs[1].splits, "test") &&
          strstr(list.runs[1].splits, "val"));
    CHECK(list.next_page_token != NULL);
    char token[300];
    snprintf(token, sizeof token, "%s", list.next_page_token ? list.next_page_token : "");
    store_run_list_free(&list);
    CHECK(store_list_runs(s, 2, token, &list, err, sizeof err) == 0);
    CHECK(list.count == 1 && strcmp(list.runs[0].name, "r2") == 0);
    CHECK(list.next_page_token == NULL);
    store_run_list_free(&list);
    CHECK(store_list_runs(s, 10, "zz", &list, err, sizeof err) == STORE_INVALID);

    fixture_eval_free(&f);
    store_close(s);
    backend->discard(loc);
}

static void test_conflicts(void)
{
    char loc[SCENARIO_LOC_MAX], err[512];
    store *s = scenario_fresh_store(loc, 0);
    if (!s)
        return;
    CHECK(fixture_record(s, ctx, 1, 3, "c", NULL, 1, NULL) == 0);
    /* another class count at the same step */
    fixture_eval f;
    CHECK(fixture_eval_make(ctx, &f, 2, 1, 4, 8, 8, "c", NULL, 1) == 0);
    CHECK(store_record(s, &f.ev, err, sizeof err) == STORE_CONFLICT);
    CHECK(strstr(err, "3 classes") != NULL);
    fixture_eval_free(&f);
    /* other loss parameters at the same step */
    CHECK(fixture_eval_make(ctx, &f, 3, 1, 3, 8, 8, "c", NULL, 1) == 0);
    f.params.loss.gamma = 3;
    CHECK(store_record(s, &f.ev, err, sizeof err) == STORE_CONFLICT);
    CHECK(strstr(err, "loss parameters") != NULL);
    /* the refused records left nothing behind */
    char *answer;
    size_t len;
    CHECK(store_evaluation_answer(s, f.id, &answer, &len, err, sizeof err) == STORE_NOT_FOUND);
    /* ... and are fine at another step */
    f.ev.step = 2;
    CHECK(store_record(s, &f.ev, err, sizeof err) == 0);
    fixture_eval_free(&f);
    store_run_summary sum;
    CHECK(store_get_run(s, "c", &sum, err, sizeof err) == 0);
    CHECK(sum.info.evaluations == 2);
    CHECK(sum.split_count == 1 && sum.splits[0].step == 2 && sum.splits[0].evaluations == 1);
    store_run_summary_free(&sum);
    store_close(s);
    backend->discard(loc);
}

/* A slice [from, from+count) of a rank-4 logits / rank-3 labels tensor. */
static segloss_tensor scenario_slice(const segloss_tensor *t, size_t from, size_t count)
{
    segloss_tensor v = *t;
    size_t per = segloss_dtype_size(t->dtype);
    for (int i = 1; i < t->rank; i++)
        per *= t->shape[i];
    v.data = (const char *)t->data + from * per;
    v.shape[0] = count;
    return v;
}

static store *golden_store;
static int exact_cases;

/* One golden case, recorded one image at a time under its own run: the aggregate is the
 * whole batch's, bit for bit, and so is the history. */
static void check_exact_case(const char *dirname)
{
    golden_case g;
    char err[512], detail[256], run[64];
    if (golden_load(dirname, &g) != 0) {
        /* test_loss_golden reports cases the decoders refuse; here they prove nothing */
        fprintf(stderr, "  (skipped %s: it does not load)\n", dirname);
        golden_free(&g);
        return;
    }
    snprintf(run, sizeof run, "golden-%d", exact_cases++);
    bool batched = g.logits.rank == 4 && g.labels.rank == 3;
    size_t n = batched ? g.logits.shape[0] : 1, c = g.logits.shape[g.logits.rank == 4 ? 1 : 0];
    size_t h = g.labels.shape[g.labels.rank - 2], w = g.labels.shape[g.labels.rank - 1];
    segloss_result *whole = NULL;
    CHECK(segloss_evaluate(ctx, &g.logits, &g.labels, &g.params.loss, &whole, detail,
                           sizeof detail) == 0);
    /* one record per image, all under one (run, split, step) */
    for (size_t i = 0; whole && i < n; i++) {
        segloss_tensor lt = batched ? scenario_slice(&g.logits, i, 1) : g.logits;
        segloss_tensor mt = batched ? scenario_slice(&g.labels, i, 1) : g.labels;
        segloss_result *part = NULL;
        CHECK(segloss_evaluate(ctx, &lt, &mt, &g.params.loss, &part, detail, sizeof detail) == 0);
        if (!part)
            continue;
        char id[IDS_LEN + 1];
        ids_new(id);
        store_evaluation ev = {.id = id,
                               .timestamp_ms = 1000 + (int64_t)i,
                               .run = run,
                               .step = 5,
                               .n = 1,
                               .c = c,
                               .h = h,
                               .w = w,
                               .loss = &g.params.loss,
                               .stats = part->stats,
                               .answer_json = "{}",
                               .answer_len = 2};
        CHECK(store_record(golden_store, &ev, err, sizeof err) == 0);
        segloss_result_free(part);
    }
    store_run_summary sum;
    if (whole && store_get_run(golden_store, run, &sum, err, sizeof err) == 0) {
        CHECK(sum.split_count == 1);
        const store_split_summary *sp = &sum.splits[0];
        CHECK(sp->evaluations == n);
        CHECK_MSG(segloss_stats_equal(sp->stats, whole->stats), "%s: merged stats differ", g.name);
        segloss_result *agg = NULL;
        CHECK(store_finalize(sp->stats, sp->loss_params_json, &agg, err, sizeof err) == 0);
        if (agg) {
            /* bit-identical to the one request holding every image */
            CHECK(memcmp(&agg->ce, &whole->ce, sizeof agg->ce) == 0);
            CHECK(memcmp(&agg->focal, &whole->focal, sizeof agg->focal) == 0);
            CHECK(memcmp(&agg->dice, &whole->dice, sizeof agg->dice) == 0);
            CHECK(memcmp(&agg->total, &whole->total, sizeof agg->total) == 0);
            CHECK(memcmp(&agg->miou, &whole->miou, sizeof agg->miou) == 0);
            CHECK(memcmp(&agg->mean_dice, &whole->mean_dice, sizeof agg->mean_dice) == 0);
            CHECK(memcmp(agg->stats->confusion, whole->stats->confusion,
                         c * c * sizeof *agg->stats->confusion) == 0);
            CHECK(memcmp(agg->dice_per_class, whole->dice_per_class, c * sizeof(double)) == 0);
            /* and it matches PyTorch's numbers for the whole batch */
            agg->n = n;
            agg->c = c;
            agg->h = h;
            agg->w = w;
            CHECK_MSG(golden_compare(&g, agg) == 0, "%s: aggregate vs expected.json", g.name);
            /* the history holds the same numbers: doubles survive the round trip exactly */
            store_history hist;
            store_history_query q = {.run = run, .max_results = 100};
            CHECK(store_history_page(golden_store, &q, &hist, err, sizeof err) == 0);
            CHECK_EQ_INT(hist.count, STORE_HISTORY_KEY_COUNT);
            for (size_t k = 0; k < hist.count; k++) {
                int key = store_history_key_index(hist.points[k].key);
                double want = key >= 0 ? store_history_value(agg, (size_t)key) : 0;
                CHECK(hist.points[k].step == 5);
                CHECK_MSG(isnan(want) ? !hist.points[k].has_value
                                      : hist.points[k].has_value && hist.points[k].value == want,
                          "%s %s: %.17g vs %.17g", g.name, hist.points[k].key, hist.points[k].value,
                          want);
            }
            store_history_free(&hist);
        }
        segloss_result_free(agg);
        store_run_summary_free(&sum);
    } else {
        CHECK(0);
    }
    segloss_result_free(whole);
    golden_free(&g);
}

/* Every golden case, its batch posted one image at a time. */
static void test_exact_golden_split(void)
{
    char loc[SCENARIO_LOC_MAX];
    golden_store = scenario_fresh_store(loc, 0);
    if (!golden_store)
        return;
    exact_cases = 0;
    golden_for_each("tests/golden", check_exact_case);
    golden_for_each("tests/golden_extra", check_exact_case);
    CHECK(exact_cases >= 30);
    store_close(golden_store);
    golden_store = NULL;
    backend->discard(loc);
}

/* Pages through loss.total (or every key) while new steps and batches keep arriving. */
static void test_history_paging_stable(void)
{
    char loc[SCENARIO_LOC_MAX], err[512];
    store *s = scenario_fresh_store(loc, 0);
    if (!s)
        return;
    for (int64_t step = 0; step < 10; step++)
        CHECK(fixture_record(s, ctx, (uint64_t)step, 3, "p", NULL, step * 10, NULL) == 0);

    int64_t seen[200];
    size_t nseen = 0, pages = 0;
    char token[128] = "";
    uint64_t seed = 100;
    for (;;) {
        store_history_query q = {.run = "p",
                                 .key_mask = 1u << 3,
                                 .max_results = 3,
                                 .page_token = token[0] ? token : NULL};
        store_history hist;
        CHECK(store_history_page(s, &q, &hist, err, sizeof err) == 0);
        for (size_t i = 0; i < hist.count && nseen < 200; i++) {
            CHECK(strcmp(hist.points[i].key, "loss.total") == 0);
            seen[nseen++] = hist.points[i].step;
        }
        pages++;
        int more = hist.next_page_token != NULL;
        if (more)
            snprintf(token, sizeof token, "%s", hist.next_page_token);
        store_history_free(&hist);
        if (!more || pages > 50)
            break;
        /* meanwhile: a new step at the end, another batch of an early step, a step between */
        CHECK(fixture_record(s, ctx, seed++, 3, "p", NULL, 1000 + (int64_t)pages, NULL) == 0);
        CHECK(fixture_record(s, ctx, seed++, 3, "p", NULL, 10, NULL) == 0);
        CHECK(fixture_record(s, ctx, seed++, 3, "p", NULL, 15, NULL) == 0);
    }
    /* strictly increasing (no point twice), and every step that existed at the start is there */
    for (size_t i = 1; i < nseen; i++)
        CHECK_MSG(seen[i] > seen[i - 1], "page order %" PRId64 " after %" PRId64, seen[i],
                  seen[i - 1]);
    for (int64_t step = 0; step < 10; step++) {
        int found = 0;
        for (size_t i = 0; i < nseen; i++)
            found |= seen[i] == step * 10;
        CHECK_MSG(found, "step %" PRId64 " missing", step * 10);
    }
    CHECK(pages >= 4);

    /* every key, small pages: 9 points per step, none twice */
    size_t total = 0;
    token[0] = '\0';
    for (int guard = 0; guard < 100; guard++) {
        store_history_query q = {.run = "p",
                                 .max_results = 4,
                                 .page_token = token[0] ? token : NULL,
                                 .has_since_step = true,
                                 .since_step = 20};
        store_history hist;
        CHECK(store_history_page(s, &q, &hist, err, sizeof err) == 0);
        for (size_t i = 0; i < hist.count; i++)
            CHECK(hist.points[i].step >= 20);
        total += hist.count;
        int more = hist.next_page_token != NULL;
        if (more)
            snprintf(token, sizeof token, "%s", hist.next_page_token);
        store_history_free(&hist);
        if (!more)
            break;
    }
    /* steps >= 20: 20..90 (8) + the 1000+pages steps */
    CHECK_EQ_INT(total, STORE_HISTORY_KEY_COUNT * (8 + (pages - 1)));

    store_history hist;
    store_history_query bad = {.run = "p", .max_results = 4, .page_token = "nonsense"};
    CHECK(store_history_page(s, &bad, &hist, err, sizeof err) == STORE_INVALID);
    bad.page_token = NULL;
    bad.run = "none";
    CHECK(store_history_page(s, &bad, &hist, err, sizeof err) == STORE_NOT_FOUND);
    bad.run = "p";
    bad.max_results = 0;
    CHECK(store_history_page(s, &bad, &hist, err, sizeof err) == STORE_INVALID);
    bad.max_results = 10;
    bad.split = "train";
    CHECK(store_history_page(s, &bad, &hist, err, sizeof err) == 0 && hist.count == 0);
    store_history_free(&hist);
    store_close(s);
    backend->discard(loc);
}

static void test_retention(void)
{
    char loc[SCENARIO_LOC_MAX], err[512], ids[6][IDS_LEN + 1];
    store *s = scenario_fresh_store(loc, 3);
    if (!s)
        return;
    for (int i = 0; i < 6; i++)
        CHECK(fixture_record(s, ctx, (uint64_t)i, 3, "keep", NULL, i < 4 ? 1 : 2, ids[i]) == 0);
    CHECK(fixture_record(s, ctx, 99, 3, "other", NULL, 1, NULL) == 0);
    for (int i = 0; i < 6; i++) {
        char *answer = NULL;
        size_t len;
        int rc = store_evaluation_answer(s, ids[i], &answer, &len, err, sizeof err);
        CHECK_MSG(rc == (i < 3 ? STORE_NOT_FOUND : 0), "evaluation %d: %d", i, rc);
        free(answer);
    }
    store_overlay_input in;
    CHECK(store_overlay_input_get(s, ids[0], 0, &in, err, sizeof err) == STORE_NOT_FOUND);
    /* the overlay items went with their evaluations: 3 of "keep", 1 of "other" */
    CHECK_EQ_INT(scenario_number(loc, "SELECT count(*) FROM $items"), 4);
    /* aggregates and history keep everything */
    store_run_summary sum;
    CHECK(store_get_run(s, "keep", &sum, err, sizeof err) == 0);
    CHECK(sum.info.evaluations == 6);
    CHECK(sum.split_count == 1 && sum.splits[0].step == 2 && sum.splits[0].evaluations == 2);
    CHECK(sum.split_count == 1 && sum.splits[0].latest_count == 3);
    store_run_summary_free(&sum);
    store_history hist;
    store_history_query q = {.run = "keep", .key_mask = 1, .max_results = 10};
    CHECK(store_history_page(s, &q, &hist, err, sizeof err) == 0);
    CHECK_EQ_INT(hist.count, 2);
    store_history_free(&hist);
    uint64_t bytes = 0;
    CHECK(store_disk_bytes(s, &bytes) == 0 && bytes > 4096);
    store_close(s);
    backend->discard(loc);
}

static void test_delete_and_reopen(void)
{
    char loc[SCENARIO_LOC_MAX], err[512], id[IDS_LEN + 1];
    store *s = scenario_fresh_store(loc, 0);
    if (!s)
        return;
    CHECK(fixture_record(s, ctx, 1, 3, "gone", NULL, 1, id) == 0);
    CHECK(fixture_record(s, ctx, 2, 3, "stays", NULL, 1, NULL) == 0);
    uint64_t before, g_before, after, g_after;
    CHECK(store_revision(s, "gone", &before, err, sizeof err) == 0);
    CHECK(store_revision(s, NULL, &g_before, err, sizeof err) == 0);
    CHECK(store_delete_run(s, "gone", err, sizeof err) == 0);
    CHECK(store_delete_run(s, "gone", err, sizeof err) == STORE_NOT_FOUND);
    CHECK(store_revision(s, NULL, &g_after, err, sizeof err) == 0 && g_after > g_before);
    CHECK(store_revision(s, "gone", &after, err, sizeof err) == STORE_NOT_FOUND);
    char *answer;
    size_t len;
    CHECK(store_evaluation_answer(s, id, &answer, &len, err, sizeof err) == STORE_NOT_FOUND);
    store_history hist;
    store_history_query q = {.run = "gone", .max_results = 10};
    CHECK(store_history_page(s, &q, &hist, err, sizeof err) == STORE_NOT_FOUND);
    /* its overlay items went too: only "stays" has one */
    CHECK_EQ_INT(scenario_number(loc, "SELECT count(*) FROM $items"), 1);
    /* a new run of the same name never reuses an old revision (ETags stay honest) */
    CHECK(fixture_record(s, ctx, 3, 3, "gone", NULL, 1, NULL) == 0);
    CHECK(store_revision(s, "gone", &after, err, sizeof err) == 0 && after > before);
    store_close(s);

    s = scenario_open(loc, 0);
    CHECK(s != NULL);
    if (!s) {
        backend->discard(loc);
        return;
    }
    store_run_list list;
    CHECK(store_list_runs(s, 10, NULL, &list, err, sizeof err) == 0);
    CHECK_EQ_INT(list.count, 2);
    store_run_list_free(&list);
    uint64_t g_reopen;
    CHECK(store_revision(s, NULL, &g_reopen, err, sizeof err) == 0 && g_reopen > g_after);
    store_close(s);
    /* reopening migrated nothing twice */
    long long versions = scenario_number(loc, "SELECT max(version) FROM $schema_version");
    CHECK(versions >= 3); /* 2: per-item figures, 3: Idempotency-Key */
    CHECK_EQ_INT(scenario_number(loc, "SELECT count(*) FROM $schema_version"), versions);

    /* a database from a newer seglossd is refused, not guessed at */
    CHECK(scenario_number(loc, "INSERT INTO $schema_version(version) VALUES(99) RETURNING 1") == 1);
    store_options opt = {.location = loc};
    CHECK(store_open(&opt, &s, err, sizeof err) == STORE_FAILED);
    CHECK_MSG(strstr(err, "schema version 99") != NULL, "%s", err);
    backend->discard(loc);
}

static store *figures_store;
static int figure_cases;

/* The same double, bit for bit, or both undefined. */
static bool same_figure(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/*
 * One golden case: the per-item figures of the whole batch (one pass) equal those of each item
 * evaluated alone through the library (its accuracy, its IoU per present class, their mean, and
 * the Dice of its own confusion matrix), survive the store, and come back ordered by mIoU.
 */
static void check_item_figures_case(const char *dirname)
{
    golden_case g;
    char err[512], detail[256], run[64];
    if (golden_load(dirname, &g) != 0) {
        golden_free(&g);
        return;
    }
    snprintf(run, sizeof run, "items-%d", figure_cases++);
    bool batched = g.logits.rank == 4 && g.labels.rank == 3;
    size_t n = batched ? g.logits.shape[0] : 1, c = g.logits.shape[g.logits.rank == 4 ? 1 : 0];
    uint64_t *counts = calloc(SEGLOSS_ITEM_COUNTS(n, c), sizeof *counts);
    store_item_figures *figs = calloc(n, sizeof *figs);
    char **texts = calloc(n, sizeof *texts);
    double *iou = malloc(c * sizeof *iou);
    segloss_result *whole = NULL;
    CHECK(counts && figs && texts && iou);
    CHECK(counts && segloss_evaluate_items(ctx, &g.logits, &g.labels, &g.params.loss, NULL, counts,
                                           &whole, detail, sizeof detail) == 0);
    for (size_t i = 0; whole && figs && texts && iou && i < n; i++) {
        const uint64_t *ic = counts + i * 3 * c;
        segloss_item_figures f;
        segloss_item_figures_from_counts(ic, c, &f, iou);
        segloss_tensor lt = batched ? scenario_slice(&g.logits, i, 1) : g.logits;
        segloss_tensor mt = batched ? scenario_slice(&g.labels, i, 1) : g.labels;
        segloss_result *alone = NULL;
        CHECK(segloss_evaluate(ctx, &lt, &mt, &g.params.loss, &alone, detail, sizeof detail) == 0);
        if (alone) {
            const uint64_t *cm = alone->stats->confusion;
            double iou_sum = 0, dice_sum = 0;
            size_t present = 0;
            for (size_t k = 0; k < c; k++) {
                uint64_t col = 0;
                for (size_t j = 0; j < c; j++)
                    col += cm[j * c + k];
                /* the item's own counts are its confusion matrix's sums */
                CHECK_MSG(ic[k] == alone->support[k] && ic[c + k] == col &&
                              ic[2 * c + k] == cm[k * c + k],
                          "%s item %zu class %zu: counts differ", g.name, i, k);
                if (!alone->support[k]) {
                    CHECK(isnan(iou[k]));
                    continue;
                }
                CHECK_MSG(same_figure(iou[k], alone->iou[k]),
                          "%s item %zu class %zu: %.17g vs "
                          "%.17g",
                          g.name, i, k, iou[k], alone->iou[k]);
                iou_sum += alone->iou[k];
                dice_sum += 2.0 * (double)cm[k * c + k] / (double)(alone->support[k] + col);
                present++;
            }
            double p = (double)present;
            CHECK_EQ_INT(f.present, present);
            CHECK_MSG(same_figure(f.miou, present ? iou_sum / p : (double)NAN),
                      "%s item %zu: miou %.17g", g.name, i, f.miou);
            CHECK_MSG(same_figure(f.mean_dice, present ? dice_sum / p : (double)NAN),
                      "%s item %zu: mean dice %.17g", g.name, i, f.mean_dice);
            CHECK_MSG(alone->pixels_valid == 0 ? isnan(f.accuracy)
                                               : same_figure(f.accuracy, alone->accuracy),
                      "%s item %zu: accuracy %.17g vs %.17g", g.name, i, f.accuracy,
                      alone->accuracy);
        }
        segloss_result_free(alone);
        json_writer w;
        json_writer_init(&w);
        json_number_array(&w, iou, c);
        size_t len;
        texts[i] = json_writer_finish(&w, &len);
        figs[i] = (store_item_figures){.accuracy = f.accuracy,
                                       .miou = f.miou,
                                       .mean_dice = f.mean_dice,
                                       .present = f.present,
                                       .iou_json = texts[i]};
    }
    /* recorded with the batch, and read back ordered by mIoU, lowest first */
    if (whole && figs && texts) {
        char id[IDS_LEN + 1];
        ids_new(id);
        store_evaluation ev = {.id = id,
                               .timestamp_ms = 1000,
                               .run = run,
                               .step = 3,
                               .n = n,
                               .c = c,
                               .h = whole->h,
                               .w = whole->w,
                               .loss = &g.params.loss,
                               .stats = whole->stats,
                               .answer_json = "{}",
                               .answer_len = 2,
                               .figures = figs};
        CHECK(store_record(figures_store, &ev, err, sizeof err) == 0);
        store_item_list list;
        store_items_query q = {.run = run, .sort = STORE_SORT_MIOU, .limit = 1000};
        CHECK(store_items(figures_store, &q, &list, err, sizeof err) == 0);
        CHECK(list.has_step && list.step == 3 && list.count == n && list.total == n);
        for (size_t j = 0; j < list.count; j++) {
            const store_item_row *r = &list.rows[j];
            CHECK(strcmp(r->id, id) == 0 && r->item < n && !r->has_overlay);
            if (r->item >= n)
                continue;
            const store_item_figures *f = &figs[r->item];
            CHECK_MSG(same_figure(r->miou, f->miou) && same_figure(r->accuracy, f->accuracy) &&
                          same_figure(r->mean_dice, f->mean_dice) && r->present == f->present,
                      "%s item %zu: stored figures differ", g.name, r->item);
            CHECK_MSG(strcmp(r->iou_json, f->iou_json) == 0, "%s item %zu: %s vs %s", g.name,
                      r->item, r->iou_json, f->iou_json);
            if (j > 0 && !isnan(r->miou))
                CHECK(!isnan(list.rows[j - 1].miou) && list.rows[j - 1].miou <= r->miou);
        }
        store_item_list_free(&list);
    }
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(figs);
    free(iou);
    free(counts);
    segloss_result_free(whole);
    golden_free(&g);
}

/* Per-item figures of every golden case against each item alone through the library. */
static void test_item_figures_golden(void)
{
    char loc[SCENARIO_LOC_MAX];
    figures_store = scenario_fresh_store(loc, 0);
    if (!figures_store)
        return;
    figure_cases = 0;
    golden_for_each("tests/golden", check_item_figures_case);
    golden_for_each("tests/golden_extra", check_item_figures_case);
    CHECK(figure_cases >= 30);
    store_close(figures_store);
    figures_store = NULL;
    backend->discard(loc);
}

/* Items across a step's evaluations: sorted either way, limited, other steps and splits apart,
 * the latest step by default, dropped by retention and with their run; per-step aggregates. */
static void test_items_query(void)
{
    char loc[SCENARIO_LOC_MAX], err[512];
    store *s = scenario_fresh_store(loc, 2);
    if (!s)
        return;
    /* three evaluations of 2 items at step 7, one at step 8 of another split */
    fixture_eval f[4];
    double accs[4][2];
    for (int e = 0; e < 4; e++) {
        CHECK(fixture_eval_make(ctx, &f[e], 900 + (uint64_t)e, 2, 4, 6, 6, "it",
                                e == 3 ? "train" : "val", e == 3 ? 8 : 7) == 0);
        store_item_figures figs[2];
        for (int i = 0; i < 2; i++) {
            figs[i] = (store_item_figures){.accuracy = 0.1 * (e * 2 + i),
                                           .miou = 1.0 - 0.1 * e,
                                           .mean_dice = i ? (double)NAN : 0.5,
                                           .present = 4,
                                           .iou_json = "[0.5,null,1,0]"};
            accs[e][i] = figs[i].accuracy;
        }
        f[e].ev.figures = figs;
        CHECK(store_record(s, &f[e].ev, err, sizeof err) == 0);
    }
    store_item_list list;
    store_items_query q = {.run = "it",
                           .has_step = true,
                           .step = 7,
                           .sort = STORE_SORT_ACCURACY,
                           .descending = true,
                           .limit = 4};
    /* retention keeps 2 evaluations per run: the first of step 7 is gone */
    CHECK(store_items(s, &q, &list, err, sizeof err) == 0);
    CHECK(list.has_step && list.step == 7 && list.count == 2 && list.total == 2);
    if (list.count == 2) {
        CHECK(strcmp(list.rows[0].id, f[2].id) == 0 && list.rows[0].item == 1);
        CHECK(list.rows[0].accuracy == accs[2][1] && list.rows[1].accuracy == accs[2][0]);
    }
    store_item_list_free(&list);
    CHECK_EQ_INT(scenario_number(loc, "SELECT count(*) FROM $item_figures"), 4);
    q.split = "train";
    q.has_step = false;
    CHECK(store_items(s, &q, &list, err, sizeof err) == 0);
    CHECK(list.has_step && list.step == 8 && list.count == 2 && list.total == 2);
    if (list.count == 2) {
        CHECK(list.rows[0].accuracy == accs[3][1] && list.rows[1].accuracy == accs[3][0]);
        CHECK(strcmp(list.rows[0].iou_json, "[0.5,null,1,0]") == 0);
        CHECK(list.rows[0].has_overlay);
    }
    store_item_list_free(&list);
    /* NaN figures sort last, ascending or descending */
    q.sort = STORE_SORT_MEAN_DICE;
    for (int d = 0; d < 2; d++) {
        q.descending = d;
        CHECK(store_items(s, &q, &list, err, sizeof err) == 0);
        CHECK(list.count == 2 && list.rows[0].mean_dice == 0.5 && isnan(list.rows[1].mean_dice));
        store_item_list_free(&list);
    }
    q.split = "nosuch";
    CHECK(store_items(s, &q, &list, err, sizeof err) == 0);
    CHECK(!list.has_step && list.count == 0 && list.total == 0);
    store_item_list_free(&list);
    q.run = "nosuch";
    CHECK(store_items(s, &q, &list, err, sizeof err) == STORE_NOT_FOUND);
    q.run = "it";
    q.limit = 0;
    CHECK(store_items(s, &q, &list, err, sizeof err) == STORE_INVALID);
    /* aggregates by step */
    store_aggregate_list al;
    store_aggregate_query aq = {.run = "it", .split = "val", .from_step = 0, .max_results = 5};
    CHECK(store_aggregates(s, &aq, &al, err, sizeof err) == 0);
    CHECK(al.count == 1 && al.rows[0].step == 7 && al.rows[0].evaluations == 3 &&
          al.rows[0].stats && al.rows[0].stats->batches == 6);
    store_aggregate_list_free(&al);
    aq.from_step = 8;
    CHECK(store_aggregates(s, &aq, &al, err, sizeof err) == 0 && al.count == 0);
    store_aggregate_list_free(&al);
    /* figures go with their run */
    CHECK(store_delete_run(s, "it", err, sizeof err) == 0);
    CHECK(scenario_number(loc, "SELECT count(*) FROM $item_figures") == 0);
    for (int e = 0; e < 4; e++)
        fixture_eval_free(&f[e]);
    store_close(s);
    backend->discard(loc);
}

/* One record of the Idempotency-Key scenario: a fresh evaluation (new id) of the same batch. */
typedef struct scenario_keyed {
    store *s;
    const char *key;
    const uint8_t *hash;
    int rc;
    bool replayed;
    char id[IDS_LEN + 1];
    char *answer; /* what the store answered: the replay, or our own answer */
} scenario_keyed;

static void *scenario_keyed_record(void *arg)
{
    scenario_keyed *k = arg;
    fixture_eval f;
    char err[512];
    store_replay replay = {0};
    k->rc = fixture_eval_make(ctx, &f, 77, 1, 3, 8, 8, "idem", NULL, 1);
    if (k->rc == 0) {
        f.ev.idempotency_key = k->key;
        f.ev.request_hash = k->hash;
        f.ev.replay = &replay;
        k->rc = store_record(k->s, &f.ev, err, sizeof err);
        k->replayed = replay.replayed;
        strcpy(k->id, f.id);
        k->answer = replay.replayed ? replay.answer : strdup(f.answer);
        replay.answer = NULL;
        if (k->rc == STORE_KEY_REUSED && !strstr(err, "another request"))
            k->rc = -100;
    }
    store_replay_clear(&replay);
    fixture_eval_free(&f);
    return NULL;
}

/* The evaluations merged into run "idem" (-1 when it has none). */
static long long scenario_idem_evaluations(store *s)
{
    char err[512];
    store_run_summary sum;
    if (store_get_run(s, "idem", &sum, err, sizeof err) != 0)
        return -1;
    long long n = sum.split_count == 1 ? (long long)sum.splits[0].evaluations : -2;
    store_run_summary_free(&sum);
    return n;
}

/* Exactly once: a key records once; its repeats (also concurrent ones, also after a reopen)
 * get the first answer and merge nothing; the key with another fingerprint is refused. */
static void test_idempotency_key(void)
{
    char loc[SCENARIO_LOC_MAX], err[512];
    store *s = scenario_fresh_store(loc, 0);
    if (!s)
        return;
    uint8_t h1[STORE_REQUEST_HASH_LEN], h2[STORE_REQUEST_HASH_LEN];
    memset(h1, 0x11, sizeof h1);
    memset(h2, 0x11, sizeof h2);
    h2[31] = 0x12;
    scenario_keyed first = {.s = s, .key = "key-1", .hash = h1};
    scenario_keyed_record(&first);
    CHECK(first.rc == 0 && !first.replayed);
    scenario_keyed again = {.s = s, .key = "key-1", .hash = h1};
    scenario_keyed_record(&again);
    CHECK(again.rc == 0 && again.replayed);
    CHECK(again.answer && first.answer && strcmp(again.answer, first.answer) == 0);
    char *answer = NULL;
    size_t len;
    CHECK(store_evaluation_answer(s, again.id, &answer, &len, err, sizeof err) == STORE_NOT_FOUND);
    CHECK_EQ_INT(scenario_idem_evaluations(s), 1);
    scenario_keyed other = {.s = s, .key = "key-1", .hash = h2};
    scenario_keyed_record(&other);
    CHECK_MSG(other.rc == STORE_KEY_REUSED, "rc %d", other.rc);
    CHECK_EQ_INT(runs_api_store_status(STORE_KEY_REUSED), 422);
    CHECK_EQ_INT(scenario_idem_evaluations(s), 1);
    /* a key that is not a key */
    scenario_keyed bad = {.s = s, .key = "has space", .hash = h1};
    scenario_keyed_record(&bad);
    CHECK(bad.rc == STORE_INVALID);

    /* eight writers of one new key at once: one records, seven get its answer */
    scenario_keyed racers[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        racers[i] = (scenario_keyed){.s = s, .key = "key-race", .hash = h1};
        pthread_create(&t[i], NULL, scenario_keyed_record, &racers[i]);
    }
    int recorded = 0, same = 0;
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++) {
        CHECK_MSG(racers[i].rc == 0, "racer %d: rc %d", i, racers[i].rc);
        recorded += !racers[i].replayed;
    }
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++)
            same += !racers[j].replayed && racers[i].answer && racers[j].answer &&
                    strcmp(racers[i].answer, racers[j].answer) == 0;
    CHECK_EQ_INT(recorded, 1);
    CHECK_EQ_INT(same, 8);
    CHECK_EQ_INT(scenario_idem_evaluations(s), 2);
    store_close(s);

    /* the key survives a restart */
    s = scenario_open(loc, 0);
    CHECK(s != NULL);
    if (s) {
        scenario_keyed later = {.s = s, .key = "key-1", .hash = h1};
        scenario_keyed_record(&later);
        CHECK(later.rc == 0 && later.replayed && later.answer && first.answer &&
              strcmp(later.answer, first.answer) == 0);
        CHECK_EQ_INT(scenario_idem_evaluations(s), 2);
        free(later.answer);
        /* deleting the run forgets its keys: the key records anew */
        CHECK(store_delete_run(s, "idem", err, sizeof err) == 0);
        CHECK_EQ_INT(scenario_number(loc, "SELECT count(*) FROM $idempotency_keys"), 0);
        scenario_keyed fresh = {.s = s, .key = "key-1", .hash = h2};
        scenario_keyed_record(&fresh);
        CHECK(fresh.rc == 0 && !fresh.replayed);
        CHECK_EQ_INT(scenario_idem_evaluations(s), 1);
        free(fresh.answer);
        store_close(s);
    }
    for (int i = 0; i < 8; i++)
        free(racers[i].answer);
    free(first.answer);
    free(again.answer);
    free(other.answer);
    free(bad.answer);
    backend->discard(loc);
}

/* RUN()s every scenario above, so a scenario added here runs on every backend. */
static inline void run_store_scenarios(void)
{
    RUN(test_record_and_query);
    RUN(test_conflicts);
    RUN(test_exact_golden_split);
    RUN(test_history_paging_stable);
    RUN(test_retention);
    RUN(test_delete_and_reopen);
    RUN(test_item_figures_golden);
    RUN(test_items_query);
    RUN(test_idempotency_key);
}

#endif
