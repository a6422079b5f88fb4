/*
 * test_store_postgres.c - the runs store on PostgreSQL (store_postgres.c): the checks of
 * store_scenarios.h that test_store.c runs on SQLite (recording, exact aggregation of the golden
 * batches split into single images, conflicts, history paging while results arrive, revisions,
 * retention, deletion, reopening, a newer schema refused), each in a fresh schema, and what only
 * a shared server has: two store handles ("replicas") and
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

#include "store_scenarios.h"

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

/* ---- the backend of store_scenarios.h: a fresh schema --------------------------------------- */

/* The schema named in a store URL made by new_schema. */
static const char *url_schema(const char *url)
{
    const char *at = strstr(url, "search_path%3D");
    return at ? at + strlen("search_path%3D") : "";
}

static int pg_fresh(char *url, size_t url_len)
{
    char schema[64];
    return new_schema(schema, sizeof schema, url, url_len);
}

static void pg_discard(const char *url)
{
    drop_schema(url_schema(url));
}

static long long pg_number(const char *url, const char *sql)
{
    return sql_number(url_schema(url), sql);
}

static const store_backend postgres_backend = {
    .fresh = pg_fresh,
    .discard = pg_discard,
    .sql_number = pg_number,
    .table_prefix = "segloss_",
};

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
    CHECK(runs_api_store_status(STORE_UNAVAILABLE) == 503);
    CHECK(strstr(err, "someone:***@127.0.0.1:1") != NULL);
    opt.location = "postgresql://127.0.0.1:1/segloss?nonsense=1";
    CHECK(store_open(&opt, &s, err, sizeof err) == STORE_FAILED);
    CHECK_MSG(strstr(err, "URL") != NULL, "%s", err);
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
    a->s = scenario_open(a->url, 0);
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
    scenario_poll_run(oa[1].s, "busy");
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
    store *s = scenario_open(url, 0);
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
    store *s = scenario_open(slow, 0);
    double waited = seconds_now() - t0;
    pthread_join(releaser, NULL);
    CHECK_MSG(s != NULL && waited > 0.7, "open took %.2f s", waited);
    if (!s) {
        PQfinish(other);
        return;
    }
    CHECK(fixture_record(s, ctx, 1, 3, "t", NULL, 1, NULL) == 0);

    snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE %s.segloss_runs IN ACCESS EXCLUSIVE MODE", schema);
    r = PQexec(other, sql);
    CHECK_MSG(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    fixture_eval f;
    CHECK(fixture_eval_make(ctx, &f, 2, 1, 3, 8, 8, "t", NULL, 2) == 0);
    t0 = seconds_now();
    int rc = store_record(s, &f.ev, err, sizeof err);
    double took = seconds_now() - t0;
    CHECK_EQ_INT(rc, STORE_UNAVAILABLE);
    CHECK_EQ_INT(runs_api_store_status(rc), 503);
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
    backend = &postgres_backend;
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
        run_store_scenarios();
        RUN(test_replicas_merge_exactly);
        RUN(test_connections_killed);
        RUN(test_statement_timeout);
    }
    PQfinish(admin);
    segloss_ctx_free(ctx);
    return TESTS_DONE();
}
