/*
 * test_store_postgres.c - the runs store on PostgreSQL (store_postgres.c): the checks of
 * test_store.c (recording, exact aggregation of the golden batches split into single images,
 * conflicts, history paging while results arrive, revisions, retention, deletion, reopening, a
 * newer schema refused), and what only a shared server has: two store handles ("replicas") and
 * many threads merging into one (run, split, step) exactly, replicas migrating at once, and
 * connections killed under load without a batch lost or counted twice.
 *
 * Needs a server: SEGLOSS_TEST_POSTGRES=postgres://... names a database the tests may create
 * schemas in (each test gets a fresh schema through the URL's search_path and drops it).
 * tests/e2e/test_scale_out.sh starts one (tests/e2e/pg_cluster.sh) and runs this binary with
 * it; `tests/e2e/pg_cluster.sh build/tests/test_store_postgres` does the same by hand. Without
 * the variable only the checks that need no server run.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#if defined(__has_include)
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif
#else
#include <libpq-fe.h>
#endif

#include "golden_case.h"
#include "store_fixture.h"
#include "testing.h"

static segloss_ctx *ctx;
static const char *base_url;
static PGconn *admin;
static int schema_counter;

/* A fresh schema; its store URL is written into url. */
static int new_schema(char *name, size_t name_len, char *url, size_t url_len)
{
    snprintf(name, name_len, "segloss_t%d_%d", (int)getpid(), ++schema_counter);
    char sql[160];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", name, name);
    PGresult *r = PQexec(admin, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "  %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    snprintf(url, url_len, "%s%csslmode=disable&options=-csearch_path%%3D%s", base_url,
             strchr(base_url, '?') ? '&' : '?', name);
    return ok ? 0 : -1;
}

static void drop_schema(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", name);
    PQclear(PQexec(admin, sql));
}

/* A number from SQL run in a schema (-1 on error). */
static long long sql_number(const char *schema, const char *query)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SET search_path = %s; %s", schema, query);
    PGresult *r = PQexec(admin, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        fprintf(stderr, "  %s: %s", query, PQresultErrorMessage(r));
    PQclear(r);
    PQclear(PQexec(admin, "RESET search_path"));
    return v;
}

static store *open_url(const char *url, size_t retain)
{
    store_options opt = {.location = url, .retain_evaluations = retain};
    store *s = NULL;
    char err[512];
    if (store_open(&opt, &s, err, sizeof err) != 0)
        fprintf(stderr, "  store_open: %s\n", err);
    return s;
}

/* ---- without a server ----------------------------------------------------------------------- */

static void test_open_errors(void)
{
    char err[512] = "";
    store *s = NULL;
    store_options opt = {.location = "postgres://someone:s3cret@127.0.0.1:1/segloss"};
    CHECK(store_open(&opt, &s, err, sizeof err) == STORE_FAILED);
    CHECK(s == NULL);
    CHECK_MSG(strstr(err, "PostgreSQL") != NULL, "%s", err);
    CHECK_MSG(strstr(err, "s3cret") == NULL, "the password is in the message: %s", err);
    CHECK(store_http_status(STORE_UNAVAILABLE) == 503);
    CHECK(strstr(err, "someone:***@127.0.0.1:1") != NULL);
    opt.location = "postgresql://127.0.0.1:1/segloss?nonsense=1";
    CHECK(store_open(&opt, &s, err, sizeof err) == STORE_FAILED);
    CHECK_MSG(strstr(err, "URL") != NULL, "%s", err);
}

/* ---- the checks of test_store.c ------------------------------------------------------------- */

static void test_record_and_query(void)
{
    char schema[64], url[1024], err[512], id[IDS_LEN + 1];
    CHECK(new_schema(schema, sizeof schema, url, sizeof url) == 0);
    store *s = open_url(url, 0);
    CHECK(s != NULL);
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

    fixture_eval f2;
    CHECK(fixture_eval_make(ctx, &f2, 2, 1, 4, 8, 8, "r1", NULL, 7) == 0);
    f2.ev.class_names_json = "[\"a\",\"b\"]";
    CHECK(store_record(s, &f2.ev, err, sizeof err) == STORE_INVALID);
    fixture_eval_free(&f2);

    uint64_t r1a, r1b, g2;
    CHECK(store_revision(s, "r1", &r1a, err, sizeof err) == 0);
    CHECK(store_revision(s, NULL, &g2, err, sizeof err) == 0);
    CHECK(g2 > g0);
    CHECK(fixture_record(s, ctx, 3, 4, "r1", "test", 8, id) == 0);
    CHECK(store_revision(s, "r1", &r1b, err, sizeof err) == 0);
    CHECK(r1b > r1a);
    CHECK(fixture_record(s, ctx, 4, 4, "r2", NULL, 1, NULL) == 0);
    uint64_t r1c;
    CHECK(store_revision(s, "r1", &r1c, err, sizeof err) == 0 && r1c == r1b);

    CHECK(store_get_run(s, "r1", &sum, err, sizeof err) == 0);
    CHECK_EQ_INT(sum.split_count, 2);
    CHECK(sum.info.evaluations == 3);
    CHECK(sum.class_names_json != NULL);
    store_run_summary_free(&sum);

    /* run names sort byte-wise (as in SQLite), whatever the database's collation */
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
    drop_schema(schema);
}

static void test_conflicts(void)
{
    char schema[64], url[1024], err[512];
    CHECK(new_schema(schema, sizeof schema, url, sizeof url) == 0);
    store *s = open_url(url, 0);
    if (!s)
        return;
    CHECK(fixture_record(s, ctx, 1, 3, "c", NULL, 1, NULL) == 0);
    fixture_eval f;
    CHECK(fixture_eval_make(ctx, &f, 2, 1, 4, 8, 8, "c", NULL, 1) == 0);
    CHECK(store_record(s, &f.ev, err, sizeof err) == STORE_CONFLICT);
    CHECK(strstr(err, "3 classes") != NULL);
    fixture_eval_free(&f);
    CHECK(fixture_eval_make(ctx, &f, 3, 1, 3, 8, 8, "c", NULL, 1) == 0);
    f.params.loss.gamma = 3;
    CHECK(store_record(s, &f.ev, err, sizeof err) == STORE_CONFLICT);
    CHECK(strstr(err, "loss parameters") != NULL);
    char *answer;
    size_t len;
    CHECK(store_evaluation_answer(s, f.id, &answer, &len, err, sizeof err) == STORE_NOT_FOUND);
    f.ev.step = 2;
    CHECK(store_record(s, &f.ev, err, sizeof err) == 0);
    fixture_eval_free(&f);
    store_run_summary sum;
    CHECK(store_get_run(s, "c", &sum, err, sizeof err) == 0);
    CHECK(sum.info.evaluations == 2);
    CHECK(sum.split_count == 1 && sum.splits[0].step == 2 && sum.splits[0].evaluations == 1);
    store_run_summary_free(&sum);
    store_close(s);
    drop_schema(schema);
}

static segloss_tensor slice(const segloss_tensor *t, size_t from, size_t count)
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
    for (size_t i = 0; whole && i < n; i++) {
        segloss_tensor lt = batched ? slice(&g.logits, i, 1) : g.logits;
        segloss_tensor mt = batched ? slice(&g.labels, i, 1) : g.labels;
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
        CHECK(store_finalise(sp->stats, sp->loss_params_json, &agg, err, sizeof err) == 0);
        if (agg) {
            agg->n = n;
            agg->c = c;
            agg->h = h;
            agg->w = w;
            CHECK_MSG(golden_compare(&g, agg) == 0, "%s: aggregate vs expected.json", g.name);
            store_history hist;
            store_history_query q = {.run = run, .max_results = 100};
            CHECK(store_history_page(golden_store, &q, &hist, err, sizeof err) == 0);
            CHECK_EQ_INT(hist.count, STORE_HISTORY_KEY_COUNT);
            for (size_t k = 0; k < hist.count; k++) {
                int key = store_history_key_index(hist.points[k].key);
                double want = key >= 0 ? store_history_value(agg, (size_t)key) : 0;
                CHECK(hist.points[k].step == 5);
                /* doubles survive the text round trip exactly */
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

static void test_exact_golden_split(void)
{
    char schema[64], url[1024];
    CHECK(new_schema(schema, sizeof schema, url, sizeof url) == 0);
    golden_store = open_url(url, 0);
    if (!golden_store)
        return;
    exact_cases = 0;
    golden_for_each("tests/golden", check_exact_case);
    golden_for_each("tests/golden_extra", check_exact_case);
    CHECK(exact_cases >= 30);
    store_close(golden_store);
    drop_schema(schema);
}

static void test_history_paging_stable(void)
{
    char schema[64], url[1024], err[512];
    CHECK(new_schema(schema, sizeof schema, url, sizeof url) == 0);
    store *s = open_url(url, 0);
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
        CHECK(fixture_record(s, ctx, seed++, 3, "p", NULL, 1000 + (int64_t)pages, NULL) == 0);
        CHECK(fixture_record(s, ctx, seed++, 3, "p", NULL, 10, NULL) == 0);
        CHECK(fixture_record(s, ctx, seed++, 3, "p", NULL, 15, NULL) == 0);
    }
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
    CHECK_EQ_INT(total, STORE_HISTORY_KEY_COUNT * (8 + (pages - 1)));
    store_history hist;
    store_history_query bad = {.run = "p", .max_results = 4, .page_token = "nonsense"};
    CHECK(store_history_page(s, &bad, &hist, err, sizeof err) == STORE_INVALID);
    bad.page_token = NULL;
    bad.run = "none";
    CHECK(store_history_page(s, &bad, &hist, err, sizeof err) == STORE_NOT_FOUND);
    bad.run = "p";
    bad.max_results = 10;
    bad.split = "train";
    CHECK(store_history_page(s, &bad, &hist, err, sizeof err) == 0 && hist.count == 0);
    store_history_free(&hist);
    store_close(s);
    drop_schema(schema);
}

static void test_retention(void)
{
    char schema[64], url[1024], err[512], ids[6][IDS_LEN + 1];
    CHECK(new_schema(schema, sizeof schema, url, sizeof url) == 0);
    store *s = open_url(url, 3);
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
    /* the overlay items went with their evaluations */
    CHECK_EQ_INT(sql_number(schema, "SELECT count(*) FROM segloss_items"), 4);
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
    drop_schema(schema);
}

static void test_delete_and_reopen(void)
{
    char schema[64], url[1024], err[512], id[IDS_LEN + 1];
    CHECK(new_schema(schema, sizeof schema, url, sizeof url) == 0);
    store *s = open_url(url, 0);
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
    CHECK_EQ_INT(sql_number(schema, "SELECT count(*) FROM segloss_items"), 1);
    CHECK(fixture_record(s, ctx, 3, 3, "gone", NULL, 1, NULL) == 0);
    CHECK(store_revision(s, "gone", &after, err, sizeof err) == 0 && after > before);
    store_close(s);

    s = open_url(url, 0);
    CHECK(s != NULL);
    if (!s)
        return;
    store_run_list list;
    CHECK(store_list_runs(s, 10, NULL, &list, err, sizeof err) == 0);
    CHECK_EQ_INT(list.count, 2);
    store_run_list_free(&list);
    uint64_t g_reopen;
    CHECK(store_revision(s, NULL, &g_reopen, err, sizeof err) == 0 && g_reopen > g_after);
    store_close(s);
    CHECK_EQ_INT(sql_number(schema, "SELECT max(version) FROM segloss_schema_version"), 1);

    /* a schema from a newer seglossd is refused, not guessed at */
    CHECK(sql_number(schema, "INSERT INTO segloss_schema_version VALUES(99) RETURNING 1") == 1);
    store_options opt = {.location = url};
    CHECK(store_open(&opt, &s, err, sizeof err) == STORE_FAILED);
    CHECK_MSG(strstr(err, "schema version 99") != NULL, "%s", err);
    drop_schema(schema);
}

/* ---- what a shared server adds --------------------------------------------------------------- */

#define REPLICAS 2
#define THREADS_PER_REPLICA 4
#define RECORDS_PER_THREAD 25

typedef struct writer_arg {
    store *s;
    int index, failures, recorded, unavailable;
    segloss_stats *sum; /* the stats of this thread's recorded evaluations */
    const char *run;
    char (*ids)[IDS_LEN + 1]; /* ids answered 0, RECORDS_PER_THREAD of them at most */
    atomic_int *stop;         /* when set: record until it is set, tolerate 503s */
} writer_arg;

static void *writer_thread(void *p)
{
    writer_arg *a = p;
    char err[512];
    for (int i = 0; a->stop ? !atomic_load(a->stop) && i < 10000 : i < RECORDS_PER_THREAD; i++) {
        fixture_eval f;
        if (fixture_eval_make(ctx, &f, (uint64_t)(a->index * 100000 + i), 1, 3, 8, 8, a->run, NULL,
                              1) != 0) {
            a->failures++;
            break;
        }
        int rc = store_record(a->s, &f.ev, err, sizeof err);
        if (rc == 0) {
            if (a->ids && a->recorded < RECORDS_PER_THREAD * 40)
                strcpy(a->ids[a->recorded], f.id);
            a->recorded++;
            if (!a->sum)
                a->sum = segloss_stats_clone(f.result->stats);
            else
                segloss_stats_merge(a->sum, f.result->stats);
        } else if (a->stop && rc == STORE_UNAVAILABLE) {
            a->unavailable++;
        } else {
            fprintf(stderr, "  writer %d: %s\n", a->index, err);
            a->failures++;
        }
        fixture_eval_free(&f);
    }
    return NULL;
}

typedef struct opener_arg {
    const char *url;
    store *s;
} opener_arg;

static void *opener_thread(void *p)
{
    opener_arg *a = p;
    a->s = open_url(a->url, 0);
    return NULL;
}

/* Two replicas start at once on an empty schema (the advisory lock orders the migration), then
 * 8 threads between them post into one (run, split, step): nothing lost, nothing twice, and the
 * merged stats are exactly those of the batches recorded. */
static void test_replicas_merge_exactly(void)
{
    char schema[64], url[1024], err[512];
    CHECK(new_schema(schema, sizeof schema, url, sizeof url) == 0);
    pthread_t ot[REPLICAS * 2];
    opener_arg oa[REPLICAS * 2];
    for (int i = 0; i < REPLICAS * 2; i++) {
        oa[i] = (opener_arg){.url = url};
        pthread_create(&ot[i], NULL, opener_thread, &oa[i]);
    }
    for (int i = 0; i < REPLICAS * 2; i++) {
        pthread_join(ot[i], NULL);
        CHECK(oa[i].s != NULL);
    }
    for (int i = REPLICAS; i < REPLICAS * 2; i++)
        store_close(oa[i].s);
    if (!oa[0].s || !oa[1].s)
        return;
    pthread_t t[REPLICAS * THREADS_PER_REPLICA];
    writer_arg args[REPLICAS * THREADS_PER_REPLICA];
    for (int i = 0; i < REPLICAS * THREADS_PER_REPLICA; i++) {
        args[i] = (writer_arg){.s = oa[i % REPLICAS].s, .index = i, .run = "busy"};
        pthread_create(&t[i], NULL, writer_thread, &args[i]);
    }
    for (int i = 0; i < 50; i++) {
        store_run_summary sum;
        int rc = store_get_run(oa[1].s, "busy", &sum, err, sizeof err);
        CHECK(rc == 0 || rc == STORE_NOT_FOUND);
        if (rc == 0)
            store_run_summary_free(&sum);
    }
    segloss_stats *want = NULL;
    for (int i = 0; i < REPLICAS * THREADS_PER_REPLICA; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(args[i].failures, 0);
        if (!want)
            want = args[i].sum;
        else if (args[i].sum)
            segloss_stats_merge(want, args[i].sum);
        if (args[i].sum != want)
            segloss_stats_free(args[i].sum);
    }
    const int total = REPLICAS * THREADS_PER_REPLICA * RECORDS_PER_THREAD;
    store_run_summary sum;
    CHECK(store_get_run(oa[0].s, "busy", &sum, err, sizeof err) == 0);
    CHECK_EQ_INT(sum.info.evaluations, total);
    CHECK(sum.split_count == 1);
    if (sum.split_count == 1) {
        CHECK_EQ_INT(sum.splits[0].evaluations, total);
        CHECK_EQ_INT(sum.splits[0].stats->batches, total);
        CHECK(want && segloss_stats_equal(sum.splits[0].stats, want));
    }
    store_run_summary_free(&sum);
    /* each commit took a new revision; the run holds the last (one run: the global sum too) */
    uint64_t rev_run, rev_all;
    CHECK(store_revision(oa[1].s, "busy", &rev_run, err, sizeof err) == 0);
    CHECK(store_revision(oa[1].s, NULL, &rev_all, err, sizeof err) == 0);
    CHECK(rev_run >= (uint64_t)total);
    CHECK_EQ_INT(rev_all, rev_run);
    CHECK_EQ_INT(sql_number(schema, "SELECT count(*) FROM segloss_evaluations"), total);
    segloss_stats_free(want);
    for (int i = 0; i < REPLICAS; i++)
        store_close(oa[i].s);
    drop_schema(schema);
}

/* Kills every connection of the stores to this database; returns how many. */
static int terminate_store_connections(void)
{
    PGresult *r = PQexec(admin, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = 'seglossd' AND "
                                "datname = current_database()");
    int n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return n;
}

/* Connections killed by the server between and during records (as in a PostgreSQL restart or
 * failover): calls on a dead pooled connection reconnect, and while writers keep recording
 * every record answered 0 is stored, and the aggregate counts exactly the stored ones. */
static void test_connections_killed(void)
{
    char schema[64], url[1024], err[512];
    CHECK(new_schema(schema, sizeof schema, url, sizeof url) == 0);
    store *s = open_url(url, 0);
    if (!s)
        return;
    CHECK(fixture_record(s, ctx, 1, 3, "k", NULL, 1, NULL) == 0);
    CHECK(terminate_store_connections() >= 1);
    usleep(50000);
    /* the pooled connection is dead; the call reconnects and succeeds */
    CHECK(fixture_record(s, ctx, 2, 3, "k", NULL, 1, NULL) == 0);
    CHECK(terminate_store_connections() >= 1);
    usleep(50000);
    uint64_t rev;
    CHECK(store_revision(s, "k", &rev, err, sizeof err) == 0);
    CHECK(terminate_store_connections() >= 1);
    usleep(50000);
    store_run_summary sum;
    CHECK(store_get_run(s, "k", &sum, err, sizeof err) == 0 && sum.info.evaluations == 2);
    store_run_summary_free(&sum);

    atomic_int stop = 0;
    enum { WRITERS = 4 };
    pthread_t t[WRITERS];
    writer_arg args[WRITERS];
    static char ids[WRITERS][RECORDS_PER_THREAD * 40][IDS_LEN + 1];
    for (int i = 0; i < WRITERS; i++) {
        args[i] = (writer_arg){.s = s, .index = i, .run = "kill", .ids = ids[i], .stop = &stop};
        pthread_create(&t[i], NULL, writer_thread, &args[i]);
    }
    int killed = 0;
    /* a new connection takes PostgreSQL a fork and some reading: give each round time */
    for (int round = 0; round < 5; round++) {
        usleep(400000);
        int n = terminate_store_connections();
        killed += n > 0 ? n : 0;
    }
    usleep(400000);
    atomic_store(&stop, 1);
    int recorded = 0, unavailable = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(args[i].failures, 0);
        recorded += args[i].recorded;
        unavailable += args[i].unavailable;
        segloss_stats_free(args[i].sum);
    }
    CHECK(killed >= 4);
    CHECK(recorded >= 10);
    int missing = 0;
    for (int i = 0; i < WRITERS; i++)
        for (int k = 0; k < args[i].recorded && k < RECORDS_PER_THREAD * 40; k++) {
            char *answer = NULL;
            size_t len;
            if (store_evaluation_answer(s, ids[i][k], &answer, &len, err, sizeof err) != 0)
                missing++;
            free(answer);
        }
    CHECK_EQ_INT(missing, 0);
    long long stored = sql_number(schema, "SELECT count(*) FROM segloss_evaluations "
                                          "WHERE run = 'kill'");
    CHECK(stored >= recorded);
    CHECK(store_get_run(s, "kill", &sum, err, sizeof err) == 0);
    if (sum.split_count == 1) {
        CHECK_EQ_INT(sum.info.evaluations, stored);
        CHECK_EQ_INT(sum.splits[0].evaluations, stored);
        CHECK_EQ_INT(sum.splits[0].stats->batches, stored);
    } else {
        CHECK(0);
    }
    store_run_summary_free(&sum);
    printf("     %d records answered 0 (%d unavailable) while %d connections were killed; "
           "%lld stored\n",
           recorded, unavailable, killed, stored);
    store_close(s);
    drop_schema(schema);
}

typedef struct held_lock {
    PGconn *conn;
    useconds_t hold_us;
} held_lock;

static void *release_later(void *p)
{
    held_lock *h = p;
    usleep(h->hold_us);
    PQclear(PQexec(h->conn, "SELECT pg_advisory_unlock_all()"));
    return NULL;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A statement stuck behind another session's lock is cancelled by statement_timeout (here the
 * URL's 300 ms; the store sets PG_STATEMENT_TIMEOUT_MS on every connection that has none, the
 * path every other test's connections go through) and answered as unavailable, not left
 * hanging; the store works again once the lock is gone. Opening a store waits for another
 * replica's migration lock past that timeout. */
static void test_statement_timeout(void)
{
    char schema[64], url[1024], slow[1100], err[512];
    CHECK(new_schema(schema, sizeof schema, url, sizeof url) == 0);
    snprintf(slow, sizeof slow, "%s%%20-cstatement_timeout%%3D300", url);

    /* another "replica" holds the migration lock for 0.8 s */
    PGconn *other = PQconnectdb(base_url);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SET search_path = %s; SELECT pg_advisory_lock(%d, hashtext(current_schema()))",
             schema, 0x7365676c);
    PGresult *r = PQexec(other, sql);
    CHECK_MSG(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    held_lock h = {other, 800000};
    pthread_t releaser;
    pthread_create(&releaser, NULL, release_later, &h);
    double t0 = seconds_now();
    store *s = open_url(slow, 0);
    double waited = seconds_now() - t0;
    pthread_join(releaser, NULL);
    CHECK_MSG(s != NULL && waited > 0.7, "open took %.2f s", waited);
    if (!s) {
        PQfinish(other);
        return;
    }
    CHECK(fixture_record(s, ctx, 1, 3, "t", NULL, 1, NULL) == 0);

    snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE %s.segloss_runs IN ACCESS EXCLUSIVE MODE",
             schema);
    r = PQexec(other, sql);
    CHECK_MSG(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    fixture_eval f;
    CHECK(fixture_eval_make(ctx, &f, 2, 1, 3, 8, 8, "t", NULL, 2) == 0);
    t0 = seconds_now();
    int rc = store_record(s, &f.ev, err, sizeof err);
    double took = seconds_now() - t0;
    CHECK_EQ_INT(rc, STORE_UNAVAILABLE);
    CHECK_EQ_INT(store_http_status(rc), 503);
    CHECK_MSG(strstr(err, "did not answer in time") && strstr(err, "retry later"), "%s", err);
    CHECK_MSG(took < 5.0, "the refused record took %.2f s", took);
    PQclear(PQexec(other, "ROLLBACK"));
    CHECK(store_record(s, &f.ev, err, sizeof err) == 0);
    store_run_summary sum;
    CHECK(store_get_run(s, "t", &sum, err, sizeof err) == 0 && sum.info.evaluations == 2);
    store_run_summary_free(&sum);
    fixture_eval_free(&f);
    store_close(s);
    PQfinish(other);
    drop_schema(schema);
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "drop cascades to ..." */
}

int main(void)
{
    if (segloss_ctx_new(&ctx, 2, SEGLOSS_KERNEL_AUTO) != 0)
        return 2;
    RUN(test_open_errors);
    base_url = getenv("SEGLOSS_TEST_POSTGRES");
    if (!base_url || !*base_url) {
        printf("skipped: no SEGLOSS_TEST_POSTGRES (tests/e2e/test_scale_out.sh starts a "
               "PostgreSQL and runs this binary with it)\n");
        segloss_ctx_free(ctx);
        return TESTS_DONE();
    }
    admin = PQconnectdb(base_url);
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to SEGLOSS_TEST_POSTGRES: %s", PQerrorMessage(admin));
        testing_failed++;
    } else {
        PQsetNoticeProcessor(admin, quiet, NULL);
        RUN(test_record_and_query);
        RUN(test_conflicts);
        RUN(test_exact_golden_split);
        RUN(test_history_paging_stable);
        RUN(test_retention);
        RUN(test_delete_and_reopen);
        RUN(test_replicas_merge_exactly);
        RUN(test_connections_killed);
        RUN(test_statement_timeout);
    }
    PQfinish(admin);
    segloss_ctx_free(ctx);
    return TESTS_DONE();
}
