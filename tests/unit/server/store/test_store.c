/*
 * test_store.c - the runs store on SQLite: the checks of store_scenarios.h (recording and
 * merging, exact aggregation of the golden batches split into single images, conflicts, history
 * paging while results arrive, revisions, retention, deletion, reopening) on a scratch data
 * directory, and what is SQLite's own: opening and creating the data directory, concurrent
 * writers on one file.
 *
 * Also the two halves of the kill -9 test (tests/e2e/test_store_crash.sh):
 *   test_store --crash-writer DIR      records until killed, printing each committed id
 *   test_store --crash-verify DIR FILE ROUNDS
 *                                      every id in FILE is stored; the aggregate, the run and
 *                                      the evaluations table agree with each other
 */
#include <pthread.h>
#include <sqlite3.h>

#include "store_scenarios.h"

/* ---- the backend of store_scenarios.h: a scratch directory ---------------------------------- */

static int sqlite_fresh(char *loc, size_t loc_len)
{
    char dir[64];
    if (fixture_tmpdir(dir) != 0)
        return -1;
    snprintf(loc, loc_len, "%s", dir);
    return 0;
}

static long long sqlite_number(const char *dir, const char *sql)
{
    char path[SCENARIO_LOC_MAX + 16];
    snprintf(path, sizeof path, "%s/segloss.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "  %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st); /* ends (and so commits) a statement that writes */
    sqlite3_close(db);
    return v;
}

static const store_backend sqlite_backend = {
    .fresh = sqlite_fresh,
    .discard = fixture_rmdir,
    .sql_number = sqlite_number,
    .table_prefix = "",
};

static void test_open_refuses_missing_dir(void)
{
    store_options opt = {.location = "/nonexistent/segloss/dir"};
    store *s = NULL;
    char err[512] = "";
    CHECK(store_open(&opt, &s, err, sizeof err) == STORE_FAILED);
    CHECK(s == NULL);
    CHECK(strstr(err, "/nonexistent/segloss/dir") != NULL);
    opt.location = "postgres://db/segloss";
    CHECK(store_open(&opt, &s, err, sizeof err) == STORE_FAILED);
    CHECK(strstr(err, "PostgreSQL") != NULL);
}

static void test_open_creates_data_dir(void)
{
    char dir[64], sub[128], err[512];
    CHECK(fixture_tmpdir(dir) == 0);
    snprintf(sub, sizeof sub, "%s/data", dir);
    store *s = scenario_open(sub, 0);
    CHECK(s != NULL);
    store_close(s);
    fixture_rmdir(sub);
    fixture_rmdir(dir);
    /* but not its parents */
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    store_options opt = {.location = sub};
    CHECK(store_open(&opt, &s, err, sizeof err) == STORE_FAILED);
}

static void test_names(void)
{
    CHECK(store_run_name_ok("exp-1.a_b"));
    CHECK(!store_run_name_ok(""));
    CHECK(!store_run_name_ok("a/b"));
    CHECK(!store_run_name_ok("a b"));
    CHECK(!store_run_name_ok("caf\xc3\xa9"));
    char long_name[200];
    memset(long_name, 'a', sizeof long_name);
    long_name[128] = '\0';
    CHECK(store_run_name_ok(long_name));
    long_name[128] = 'a';
    long_name[129] = '\0';
    CHECK(!store_run_name_ok(long_name));
}

typedef struct writer_arg {
    store *s;
    int index, failures;
} writer_arg;

static void *writer_thread(void *p)
{
    writer_arg *a = p;
    for (int i = 0; i < 25; i++)
        if (fixture_record(a->s, ctx, (uint64_t)(a->index * 1000 + i), 3, "busy", NULL, 1, NULL) !=
            0)
            a->failures++;
    return NULL;
}

static void test_concurrent_writers(void)
{
    char dir[64], err[512];
    CHECK(fixture_tmpdir(dir) == 0);
    store *s = scenario_open(dir, 0);
    if (!s)
        return;
    pthread_t t[4];
    writer_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (writer_arg){.s = s, .index = i};
        pthread_create(&t[i], NULL, writer_thread, &args[i]);
    }
    /* a reader polls meanwhile */
    scenario_poll_run(s, "busy");
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(args[i].failures, 0);
    }
    store_run_summary sum;
    CHECK(store_get_run(s, "busy", &sum, err, sizeof err) == 0);
    CHECK(sum.info.evaluations == 100);
    CHECK(sum.split_count == 1 && sum.splits[0].evaluations == 100 &&
          sum.splits[0].stats->batches == 100);
    store_run_summary_free(&sum);
    store_close(s);
    fixture_rmdir(dir);
}

/* ---- the kill -9 test's two halves ---------------------------------------------------------- */

static int crash_writer(const char *dir)
{
    store *s = scenario_open(dir, 0);
    if (!s)
        return 2;
    char err[512];
    for (uint64_t i = 0;; i++) {
        fixture_eval f;
        if (fixture_eval_make(ctx, &f, i, 2, 21, 32, 32, "crash", NULL, 0) != 0)
            return 2;
        int rc = store_record(s, &f.ev, err, sizeof err);
        if (rc) {
            fprintf(stderr, "record: %s\n", err);
            return 2;
        }
        /* printed only after the commit: the daemon answers 200 at this point */
        printf("%s\n", f.id);
        fflush(stdout);
        fixture_eval_free(&f);
    }
}

static int crash_verify(const char *dir, const char *ids_file, long rounds)
{
    char err[512], line[128];
    store *s = scenario_open(dir, 0);
    CHECK(s != NULL);
    if (!s)
        return TESTS_DONE();
    FILE *f = fopen(ids_file, "r");
    CHECK(f != NULL);
    long printed = 0, missing = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strlen(line) != IDS_LEN)
            continue; /* a line cut by the kill */
        printed++;
        char *answer = NULL;
        size_t len;
        if (store_evaluation_answer(s, line, &answer, &len, err, sizeof err) != 0) {
            missing++;
            fprintf(stderr, "  committed id %s is missing\n", line);
        }
        free(answer);
    }
    if (f)
        fclose(f);
    CHECK_EQ_INT(missing, 0);
    CHECK(printed > 0);
    store_run_summary sum;
    CHECK(store_get_run(s, "crash", &sum, err, sizeof err) == 0);
    if (sum.split_count == 1) {
        long recorded = (long)sum.info.evaluations;
        /* each round's last record may have committed without being printed */
        CHECK_MSG(recorded >= printed && recorded <= printed + rounds, "%ld recorded, %ld printed",
                  recorded, printed);
        CHECK_EQ_INT(sum.splits[0].evaluations, recorded);
        CHECK_EQ_INT(sum.splits[0].stats->batches, 2 * recorded);
        /* the evaluations table agrees: record is one transaction */
        char path[1100];
        snprintf(path, sizeof path, "%s/segloss.db", dir);
        sqlite3 *db;
        sqlite3_stmt *st;
        CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        CHECK(sqlite3_prepare_v2(db,
                                 "SELECT count(*), (SELECT count(*) FROM items) FROM "
                                 "evaluations",
                                 -1, &st, NULL) == SQLITE_OK);
        CHECK(sqlite3_step(st) == SQLITE_ROW);
        CHECK_EQ_INT(sqlite3_column_int64(st, 0), recorded);
        CHECK_EQ_INT(sqlite3_column_int64(st, 1), 2 * recorded);
        sqlite3_finalize(st);
        sqlite3_close(db);
        printf("%ld ids printed, %ld recorded\n", printed, recorded);
    } else {
        CHECK(0);
    }
    store_run_summary_free(&sum);
    store_close(s);
    testing_passed += 0;
    RUN(test_names); /* keeps the summary line meaningful: at least one test ran */
    return TESTS_DONE();
}

int main(int argc, char **argv)
{
    if (segloss_ctx_new(&ctx, 2, SEGLOSS_KERNEL_AUTO) != 0)
        return 2;
    backend = &sqlite_backend;
    if (argc == 3 && strcmp(argv[1], "--crash-writer") == 0)
        return crash_writer(argv[2]);
    if (argc == 5 && strcmp(argv[1], "--crash-verify") == 0) {
        int rc = crash_verify(argv[2], argv[3], strtol(argv[4], NULL, 10));
        segloss_ctx_free(ctx);
        return rc;
    }
    RUN(test_open_refuses_missing_dir);
    RUN(test_open_creates_data_dir);
    RUN(test_names);
    run_store_scenarios();
    RUN(test_concurrent_writers);
    segloss_ctx_free(ctx);
    return TESTS_DONE();
}
