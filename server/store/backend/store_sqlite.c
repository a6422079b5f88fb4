/*
 * store_sqlite.c - the embedded runs store: SQLite in WAL mode at <data-dir>/segloss.db.
 *
 * Durability: journal_mode=WAL with synchronous=FULL, so COMMIT returns only after the WAL is
 * fsynced; store_record returns after COMMIT, and an answer sent after it survives kill -9 and
 * power loss. Concurrency: two connections, one for writes and one for reads, each behind its
 * own mutex. WAL lets the reader see the last committed state while a record is in progress, so
 * a polling dashboard never waits for an fsync. The busy timeout covers a second process (a
 * backup, the sqlite3 shell) holding a lock for a moment.
 *
 * Schema: versioned migrations (the `migrations` list below); schema_version holds the number
 * of migrations applied. A database newer than this binary is refused rather than guessed at.
 * Statements are prepared once per connection (SQLITE_PREPARE_PERSISTENT) and reset after use.
 * The record's sequence and rules are store_record.c's; this file gives its SQL steps
 * (store_backend.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/names.h"
#include "store/backend/store_backend.h"

/* A record waits this long for a lock held by another process before failing. */
#define SQLITE_BUSY_TIMEOUT_MS 5000
/* The database file inside the data directory. */
#define SQLITE_DB_NAME "segloss.db"

/* Each entry moves the schema one version up; never edit one that has shipped. */
static const char *const migrations[] = {
    /* 1: runs, evaluations with their overlay items, per-step aggregates, history. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta(key, value) VALUES('revision', 0);"
    "CREATE TABLE runs("
    "  name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    "  last_step INTEGER NOT NULL, evaluations INTEGER NOT NULL, revision INTEGER NOT NULL,"
    "  class_names TEXT);"
    "CREATE TABLE evaluations("
    "  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, run TEXT NOT NULL,"
    "  split TEXT NOT NULL, step INTEGER NOT NULL, timestamp_ms INTEGER NOT NULL,"
    "  n INTEGER NOT NULL, c INTEGER NOT NULL, h INTEGER NOT NULL, w INTEGER NOT NULL,"
    "  items INTEGER NOT NULL, answer TEXT NOT NULL);"
    "CREATE INDEX evaluations_run ON evaluations(run, seq);"
    "CREATE INDEX evaluations_split ON evaluations(run, split, seq);"
    "CREATE TABLE items("
    "  evaluation INTEGER NOT NULL, item INTEGER NOT NULL, prediction BLOB NOT NULL,"
    "  labels BLOB NOT NULL, image BLOB, PRIMARY KEY(evaluation, item)) WITHOUT ROWID;"
    "CREATE TABLE aggregates("
    "  run TEXT NOT NULL, split TEXT NOT NULL, step INTEGER NOT NULL, stats BLOB NOT NULL,"
    "  loss_params TEXT NOT NULL, evaluations INTEGER NOT NULL, h INTEGER NOT NULL,"
    "  w INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY(run, split, step));"
    "CREATE TABLE history("
    "  seq INTEGER PRIMARY KEY, run TEXT NOT NULL, split TEXT NOT NULL,"
    "  key INTEGER NOT NULL, step INTEGER NOT NULL, value REAL,"
    "  timestamp_ms INTEGER NOT NULL, UNIQUE(run, split, key, step));"
    "CREATE INDEX history_page ON history(run, split, step, seq);",
    /* 2: per-item figures of every batch item (GET /v1/runs/{run}/items); one self-contained
     * step: it only adds a table and an index. */
    "CREATE TABLE item_figures("
    "  evaluation INTEGER NOT NULL, item INTEGER NOT NULL, accuracy REAL, miou REAL,"
    "  mean_dice REAL, present INTEGER NOT NULL, iou TEXT NOT NULL,"
    "  PRIMARY KEY(evaluation, item)) WITHOUT ROWID;"
    "CREATE INDEX evaluations_step ON evaluations(run, split, step);",
    /* 3: Idempotency-Key: one row per key, written in the record's transaction; the request's
     * fingerprint tells a retry from a reuse, the answer is what a retry gets back. */
    "CREATE TABLE idempotency_keys("
    "  key TEXT PRIMARY KEY, run TEXT NOT NULL, request_hash BLOB NOT NULL,"
    "  evaluation TEXT NOT NULL, answer TEXT NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE INDEX idempotency_keys_run ON idempotency_keys(run);",
};
#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

typedef enum stmt_id {
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_BUMP_REVISION,
    ST_GLOBAL_REVISION,
    ST_INSERT_EVALUATION,
    ST_INSERT_ITEM,
    ST_INSERT_FIGURES,
    ST_GET_AGGREGATE,
    ST_PUT_AGGREGATE,
    ST_PUT_HISTORY,
    ST_PUT_RUN,
    ST_RETAIN_FIND,
    ST_RETAIN_ITEMS,
    ST_RETAIN_FIGURES,
    ST_RETAIN_EVALUATIONS,
    ST_LIST_RUNS,
    ST_GET_RUN,
    ST_LATEST_AGGREGATES,
    ST_LATEST_EVALUATIONS,
    ST_HISTORY,
    ST_GET_ANSWER,
    ST_GET_ITEM,
    ST_ITEMS,
    ST_AGGREGATES,
    ST_EVALUATION_EXISTS,
    ST_DELETE_ITEMS,
    ST_DELETE_FIGURES,
    ST_DELETE_EVALUATIONS,
    ST_DELETE_AGGREGATES,
    ST_DELETE_HISTORY,
    ST_DELETE_KEYS,
    ST_DELETE_RUN,
    ST_GET_KEY,
    ST_PUT_KEY,
    ST_COUNT
} stmt_id;

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_BUMP_REVISION] = "UPDATE meta SET value = value + 1 WHERE key = 'revision' "
                         "RETURNING value",
    [ST_GLOBAL_REVISION] = "SELECT value FROM meta WHERE key = 'revision'",
    [ST_INSERT_EVALUATION] =
        "INSERT INTO evaluations(id, run, split, step, timestamp_ms, n, c, h, w, items, answer) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_INSERT_ITEM] = "INSERT INTO items(evaluation, item, prediction, labels, image) "
                       "VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_INSERT_FIGURES] = "INSERT INTO item_figures(evaluation, item, accuracy, miou, mean_dice, "
                          "present, iou) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_GET_AGGREGATE] = "SELECT stats, loss_params, h, w FROM aggregates "
                         "WHERE run = ?1 AND split = ?2 AND step = ?3",
    [ST_PUT_AGGREGATE] =
        "INSERT INTO aggregates(run, split, step, stats, loss_params, evaluations, h, w, "
        "updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8) "
        "ON CONFLICT(run, split, step) DO UPDATE SET stats = excluded.stats, "
        "evaluations = evaluations + 1, h = excluded.h, w = excluded.w, "
        "updated_ms = excluded.updated_ms",
    [ST_PUT_HISTORY] = "INSERT INTO history(run, split, key, step, value, timestamp_ms) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
                       "ON CONFLICT(run, split, key, step) DO UPDATE SET "
                       "value = excluded.value, timestamp_ms = excluded.timestamp_ms",
    [ST_PUT_RUN] =
        "INSERT INTO runs(name, created_ms, updated_ms, last_step, evaluations, revision, "
        "class_names) VALUES(?1, ?2, ?2, ?3, 1, ?4, ?5) "
        "ON CONFLICT(name) DO UPDATE SET updated_ms = excluded.updated_ms, "
        "last_step = max(last_step, excluded.last_step), evaluations = evaluations + 1, "
        "revision = excluded.revision, class_names = coalesce(excluded.class_names, class_names)",
    [ST_RETAIN_FIND] = "SELECT seq FROM evaluations WHERE run = ?1 ORDER BY seq DESC "
                       "LIMIT 1 OFFSET ?2",
    [ST_RETAIN_ITEMS] = "DELETE FROM items WHERE evaluation IN "
                        "(SELECT seq FROM evaluations WHERE run = ?1 AND seq <= ?2)",
    [ST_RETAIN_FIGURES] = "DELETE FROM item_figures WHERE evaluation IN "
                          "(SELECT seq FROM evaluations WHERE run = ?1 AND seq <= ?2)",
    [ST_RETAIN_EVALUATIONS] = "DELETE FROM evaluations WHERE run = ?1 AND seq <= ?2",
    [ST_LIST_RUNS] = "SELECT name, created_ms, updated_ms, last_step, evaluations, revision, "
                     "(SELECT group_concat(DISTINCT a.split) FROM aggregates a "
                     "WHERE a.run = runs.name) FROM runs WHERE name > ?1 ORDER BY name LIMIT ?2",
    [ST_GET_RUN] = "SELECT name, created_ms, updated_ms, last_step, evaluations, revision, "
                   "class_names FROM runs WHERE name = ?1",
    [ST_LATEST_AGGREGATES] =
        "SELECT a.split, a.step, a.stats, a.loss_params, a.evaluations, a.h, a.w, a.updated_ms "
        "FROM aggregates a WHERE a.run = ?1 AND a.step = "
        "(SELECT max(b.step) FROM aggregates b WHERE b.run = a.run AND b.split = a.split) "
        "ORDER BY a.split",
    [ST_LATEST_EVALUATIONS] = "SELECT id, step, timestamp_ms, n, items FROM evaluations "
                              "WHERE run = ?1 AND split = ?2 ORDER BY seq DESC LIMIT ?3",
    [ST_HISTORY] = "SELECT key, value, step, timestamp_ms, seq FROM history "
                   "WHERE run = ?1 AND split = ?2 AND step >= ?3 "
                   "AND (step > ?4 OR (step = ?4 AND seq > ?5)) "
                   "AND ((?6 >> key) & 1) = 1 ORDER BY step, seq LIMIT ?7",
    [ST_GET_ANSWER] = "SELECT answer FROM evaluations WHERE id = ?1",
    [ST_GET_ITEM] = "SELECT e.c, i.prediction, i.labels, i.image FROM evaluations e "
                    "JOIN items i ON i.evaluation = e.seq WHERE e.id = ?1 AND i.item = ?2",
    /* ?3 NULL: the split's latest step with figures; ?4 the sort column, ?5 +1 or -1 */
    [ST_ITEMS] =
        "WITH s(step) AS (SELECT coalesce(?3, (SELECT max(e.step) FROM evaluations e "
        "  WHERE e.run = ?1 AND e.split = ?2 AND EXISTS "
        "  (SELECT 1 FROM item_figures g WHERE g.evaluation = e.seq)))), "
        "f AS (SELECT e.id, g.item, e.items, g.accuracy, g.miou, g.mean_dice, g.present, g.iou, "
        "  e.step, e.seq, CASE ?4 WHEN 1 THEN g.accuracy WHEN 2 THEN g.mean_dice "
        "  ELSE g.miou END AS v FROM evaluations e JOIN item_figures g ON g.evaluation = e.seq "
        "  WHERE e.run = ?1 AND e.split = ?2 AND e.step = (SELECT step FROM s)) "
        "SELECT id, item, items, accuracy, miou, mean_dice, present, iou, step, "
        "(SELECT count(*) FROM f) FROM f ORDER BY v IS NULL, v * ?5, seq, item LIMIT ?6",
    [ST_AGGREGATES] = "SELECT step, stats, loss_params, evaluations, updated_ms FROM aggregates "
                      "WHERE run = ?1 AND split = ?2 AND step >= ?3 ORDER BY step LIMIT ?4",
    [ST_EVALUATION_EXISTS] = "SELECT n, items FROM evaluations WHERE id = ?1",
    [ST_DELETE_ITEMS] = "DELETE FROM items WHERE evaluation IN "
                        "(SELECT seq FROM evaluations WHERE run = ?1)",
    [ST_DELETE_FIGURES] = "DELETE FROM item_figures WHERE evaluation IN "
                          "(SELECT seq FROM evaluations WHERE run = ?1)",
    [ST_DELETE_EVALUATIONS] = "DELETE FROM evaluations WHERE run = ?1",
    [ST_DELETE_AGGREGATES] = "DELETE FROM aggregates WHERE run = ?1",
    [ST_DELETE_HISTORY] = "DELETE FROM history WHERE run = ?1",
    [ST_DELETE_KEYS] = "DELETE FROM idempotency_keys WHERE run = ?1",
    [ST_DELETE_RUN] = "DELETE FROM runs WHERE name = ?1",
    [ST_GET_KEY] = "SELECT request_hash, answer FROM idempotency_keys WHERE key = ?1",
    [ST_PUT_KEY] = "INSERT INTO idempotency_keys(key, run, request_hash, evaluation, answer, "
                   "created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
};

typedef struct conn {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *stmts[ST_COUNT];
} conn;

typedef struct sqlite_store {
    store base; /* first: a store * is a sqlite_store * */
    char path[1100];
    conn writer, reader;
} sqlite_store;

static sqlite_store *as_sqlite(store *s)
{
    return (sqlite_store *)s;
}

static int db_fail(conn *c, const char *what, char *err, size_t err_len)
{
    int code = sqlite3_extended_errcode(c->db) & 0xff;
    switch (code) {
    case SQLITE_FULL:
        snprintf(err, err_len,
                 "runs store: %s: the data directory's disk is full (%s); nothing was recorded, "
                 "retry once space is freed",
                 what, sqlite3_errmsg(c->db));
        return STORE_FULL;
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
        snprintf(err, err_len, "runs store: %s: %s; nothing was recorded, retry later", what,
                 sqlite3_errmsg(c->db));
        return STORE_UNAVAILABLE;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        /* Also what reads that fail with EIO look like (a disk going away): unavailable, not
         * an internal error; the file is not written to while this lasts. */
        snprintf(err, err_len,
                 "runs store: %s: %s (the data directory's disk may be failing); retry later",
                 what, sqlite3_errmsg(c->db));
        return STORE_UNAVAILABLE;
    default:
        snprintf(err, err_len, "runs store: %s: %s", what, sqlite3_errmsg(c->db));
        return code == SQLITE_CONSTRAINT ? STORE_CONFLICT : STORE_FAILED;
    }
}

/* The prepared statement, reset and with bindings cleared; NULL on failure. */
static sqlite3_stmt *stmt(conn *c, stmt_id id)
{
    if (!c->stmts[id] &&
        sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id],
                           NULL) != SQLITE_OK)
        return NULL;
    sqlite3_reset(c->stmts[id]);
    sqlite3_clear_bindings(c->stmts[id]);
    return c->stmts[id];
}

/* Runs a statement that returns no rows (or whose rows are ignored). */
static int exec_stmt(sqlite3_stmt *st)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int exec_simple(conn *c, stmt_id id)
{
    sqlite3_stmt *st = stmt(c, id);
    return st ? exec_stmt(st) : SQLITE_ERROR;
}

static void conn_close(conn *c)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    if (c->db)
        sqlite3_close(c->db);
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof *c);
}

static int conn_open(conn *c, const char *path, char *err, size_t err_len)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, err_len, "runs store: cannot open %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        return STORE_FAILED;
    }
    sqlite3_busy_timeout(c->db, SQLITE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(c->db, 1);
    char *msg = NULL;
    /* WAL: readers do not block the writer; FULL: a commit is fsynced before it returns. */
    if (sqlite3_exec(c->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                     "PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_len, "runs store: %s: %s", path, msg ? msg : "pragma failed");
        sqlite3_free(msg);
        return STORE_FAILED;
    }
    return STORE_OK;
}

static int schema_version(sqlite3 *db, int *version)
{
    sqlite3_stmt *st = NULL;
    *version = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                           "name='schema_version'",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int exists = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (!exists)
        return 0;
    if (sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Brings the schema up to MIGRATION_COUNT, one transaction per migration. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t err_len)
{
    char *msg = NULL;
    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)",
                     NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    for (;;) {
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
        int version;
        if (schema_version(db, &version) != 0) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            snprintf(err, err_len, "runs store: %s: cannot read schema_version", path);
            return STORE_FAILED;
        }
        if (version > MIGRATION_COUNT) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            snprintf(err, err_len,
                     "runs store: %s has schema version %d; this seglossd knows up to %d "
                     "(use a newer seglossd or another --data-dir)",
                     path, version, MIGRATION_COUNT);
            return STORE_FAILED;
        }
        if (version == MIGRATION_COUNT) {
            if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
                goto fail;
            return STORE_OK;
        }
        char bump[96];
        snprintf(bump, sizeof bump, "INSERT INTO schema_version(version) VALUES(%d)",
                 version + 1);
        if (sqlite3_exec(db, migrations[version], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, bump, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    }
fail:
    snprintf(err, err_len, "runs store: migrating %s: %s", path, msg ? msg : "failed");
    sqlite3_free(msg);
    return STORE_FAILED;
}


/* --- record -------------------------------------------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_blob(sqlite3_stmt *st, int i, const void *v, size_t len)
{
    if (v)
        sqlite3_bind_blob64(st, i, v, len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* A finite double, or NULL for NaN (undefined). */
static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static double column_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? (double)NAN : sqlite3_column_double(st, i);
}

/* One record's transaction (store_backend.h): the writer connection, locked throughout. */
struct store_txn {
    conn *c;
    char *err;
    size_t err_len;
};

static int txn_fail(store_txn *t, const char *what)
{
    return db_fail(t->c, what, t->err, t->err_len);
}

static int sq_record_transaction(store *base, store_txn_body body, void *arg, char *err,
                                 size_t err_len)
{
    store_txn t = {.c = &as_sqlite(base)->writer, .err = err, .err_len = err_len};
    pthread_mutex_lock(&t.c->mu);
    int rc = body(&t, arg);
    pthread_mutex_unlock(&t.c->mu);
    return rc;
}

/* BEGIN IMMEDIATE takes the database's write lock: no other record reads what this one has not
 * yet written (an Idempotency-Key, an aggregate) until COMMIT. */
static int sq_begin(store_txn *t, const store_evaluation *ev)
{
    (void)ev;
    return exec_simple(t->c, ST_BEGIN) == SQLITE_OK ? STORE_OK : txn_fail(t, "begin");
}

static int sq_claim_key(store_txn *t, const store_evaluation *ev, store_key_found *found)
{
    sqlite3_stmt *st = stmt(t->c, ST_GET_KEY);
    if (!st)
        return txn_fail(t, "idempotency key");
    bind_text(st, 1, ev->idempotency_key);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_ROW) {
        const void *hash = sqlite3_column_blob(st, 0);
        found->hash_ok = sqlite3_column_bytes(st, 0) == STORE_REQUEST_HASH_LEN && hash;
        if (found->hash_ok)
            memcpy(found->request_hash, hash, STORE_REQUEST_HASH_LEN);
        const char *answer = (const char *)sqlite3_column_text(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (answer && (found->answer = malloc(len + 1))) {
            memcpy(found->answer, answer, len + 1);
            found->answer_len = len;
        }
        sqlite3_reset(st);
        return 1;
    }
    sqlite3_reset(st);
    if (step_rc != SQLITE_DONE || !(st = stmt(t->c, ST_PUT_KEY)))
        return txn_fail(t, "idempotency key");
    bind_text(st, 1, ev->idempotency_key);
    bind_text(st, 2, ev->run);
    bind_blob(st, 3, ev->request_hash, STORE_REQUEST_HASH_LEN);
    bind_text(st, 4, ev->id);
    sqlite3_bind_text64(st, 5, ev->answer_json, ev->answer_len, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_int64(st, 6, ev->timestamp_ms);
    if (exec_stmt(st) != SQLITE_OK)
        return txn_fail(t, "idempotency key");
    return 0;
}

static int sq_insert_evaluation(store_txn *t, const store_evaluation *ev, const char *split,
                                int64_t *seq)
{
    sqlite3_stmt *st = stmt(t->c, ST_INSERT_EVALUATION);
    if (!st)
        return txn_fail(t, "record");
    bind_text(st, 1, ev->id);
    bind_text(st, 2, ev->run);
    bind_text(st, 3, split);
    sqlite3_bind_int64(st, 4, ev->step);
    sqlite3_bind_int64(st, 5, ev->timestamp_ms);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)ev->n);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)ev->c);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)ev->h);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)ev->w);
    sqlite3_bind_int64(st, 10, ev->items ? (sqlite3_int64)ev->item_count : 0);
    sqlite3_bind_text64(st, 11, ev->answer_json, ev->answer_len, SQLITE_STATIC, SQLITE_UTF8);
    if (exec_stmt(st) != SQLITE_OK)
        return txn_fail(t, "evaluation");
    *seq = sqlite3_last_insert_rowid(t->c->db);
    return STORE_OK;
}

static int sq_insert_items(store_txn *t, int64_t seq, const store_evaluation *ev)
{
    for (size_t i = 0; i < ev->item_count; i++) {
        const store_item *it = &ev->items[i];
        sqlite3_stmt *st = stmt(t->c, ST_INSERT_ITEM);
        if (!st)
            return txn_fail(t, "record");
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        bind_blob(st, 3, it->prediction ? (const void *)it->prediction : "", it->prediction_len);
        bind_blob(st, 4, it->labels ? (const void *)it->labels : "", it->labels_len);
        bind_blob(st, 5, it->image, it->image_len);
        if (exec_stmt(st) != SQLITE_OK)
            return txn_fail(t, "record");
    }
    return STORE_OK;
}

static int sq_insert_figures(store_txn *t, int64_t seq, const store_evaluation *ev)
{
    for (size_t i = 0; i < ev->n; i++) {
        const store_item_figures *f = &ev->figures[i];
        sqlite3_stmt *st = stmt(t->c, ST_INSERT_FIGURES);
        if (!st)
            return txn_fail(t, "record");
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        bind_real(st, 3, f->accuracy);
        bind_real(st, 4, f->miou);
        bind_real(st, 5, f->mean_dice);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)f->present);
        bind_text(st, 7, f->iou_json ? f->iou_json : "[]");
        if (exec_stmt(st) != SQLITE_OK)
            return txn_fail(t, "record");
    }
    return STORE_OK;
}

/* The write lock of BEGIN IMMEDIATE is the aggregate's lock too. */
static int sq_load_aggregate(store_txn *t, const store_evaluation *ev, const char *split,
                             const char *loss_params_json, store_stored_aggregate *out)
{
    (void)loss_params_json;
    sqlite3_stmt *st = stmt(t->c, ST_GET_AGGREGATE);
    if (!st)
        return txn_fail(t, "record");
    bind_text(st, 1, ev->run);
    bind_text(st, 2, split);
    sqlite3_bind_int64(st, 3, ev->step);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    if (step_rc != SQLITE_ROW)
        return txn_fail(t, "record");
    const void *bytes = sqlite3_column_blob(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    const char *p = (const char *)sqlite3_column_text(st, 1);
    out->loss_params_json = p ? strdup(p) : NULL;
    out->h = (size_t)sqlite3_column_int64(st, 2);
    out->w = (size_t)sqlite3_column_int64(st, 3);
    if (bytes && segloss_stats_deserialize(bytes, len, &out->stats) != 0)
        out->stats = NULL;
    sqlite3_reset(st);
    return 1;
}

static int sq_save_aggregate(store_txn *t, const store_evaluation *ev, const char *split,
                             const uint8_t *stats, size_t stats_len,
                             const char *loss_params_json, size_t h, size_t w)
{
    sqlite3_stmt *st = stmt(t->c, ST_PUT_AGGREGATE);
    if (!st)
        return txn_fail(t, "record");
    bind_text(st, 1, ev->run);
    bind_text(st, 2, split);
    sqlite3_bind_int64(st, 3, ev->step);
    bind_blob(st, 4, stats, stats_len);
    bind_text(st, 5, loss_params_json);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)h);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)w);
    sqlite3_bind_int64(st, 8, ev->timestamp_ms);
    return exec_stmt(st) == SQLITE_OK ? STORE_OK : txn_fail(t, "record");
}

static int sq_put_history(store_txn *t, const store_evaluation *ev, const char *split,
                          const double values[STORE_HISTORY_KEY_COUNT])
{
    for (size_t k = 0; k < STORE_HISTORY_KEY_COUNT; k++) {
        sqlite3_stmt *st = stmt(t->c, ST_PUT_HISTORY);
        if (!st)
            return txn_fail(t, "record");
        bind_text(st, 1, ev->run);
        bind_text(st, 2, split);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)k);
        sqlite3_bind_int64(st, 4, ev->step);
        bind_real(st, 5, values[k]);
        sqlite3_bind_int64(st, 6, ev->timestamp_ms);
        if (exec_stmt(st) != SQLITE_OK)
            return txn_fail(t, "record");
    }
    return STORE_OK;
}

static int sq_retain(store_txn *t, const char *run, size_t keep)
{
    sqlite3_stmt *st = stmt(t->c, ST_RETAIN_FIND);
    if (!st)
        return txn_fail(t, "record");
    bind_text(st, 1, run);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)keep);
    int step_rc = sqlite3_step(st);
    int64_t oldest_dropped = step_rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (step_rc != SQLITE_ROW && step_rc != SQLITE_DONE)
        return txn_fail(t, "record");
    for (stmt_id id = ST_RETAIN_ITEMS; oldest_dropped >= 0 && id <= ST_RETAIN_EVALUATIONS; id++) {
        if (!(st = stmt(t->c, id)))
            return txn_fail(t, "record");
        bind_text(st, 1, run);
        sqlite3_bind_int64(st, 2, oldest_dropped);
        if (exec_stmt(st) != SQLITE_OK)
            return txn_fail(t, "record");
    }
    return STORE_OK;
}

/* The global revision goes up; the run takes its new value, so run revisions are never
 * reused. */
static int sq_finish_run(store_txn *t, const store_evaluation *ev)
{
    sqlite3_stmt *st = stmt(t->c, ST_BUMP_REVISION);
    if (!st || sqlite3_step(st) != SQLITE_ROW)
        return txn_fail(t, "revision");
    int64_t revision = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (!(st = stmt(t->c, ST_PUT_RUN)))
        return txn_fail(t, "record");
    bind_text(st, 1, ev->run);
    sqlite3_bind_int64(st, 2, ev->timestamp_ms);
    sqlite3_bind_int64(st, 3, ev->step);
    sqlite3_bind_int64(st, 4, revision);
    bind_text(st, 5, ev->class_names_json);
    return exec_stmt(st) == SQLITE_OK ? STORE_OK : txn_fail(t, "record");
}

static int sq_commit(store_txn *t)
{
    return exec_simple(t->c, ST_COMMIT) == SQLITE_OK ? STORE_OK : txn_fail(t, "record");
}

static void sq_rollback(store_txn *t)
{
    exec_simple(t->c, ST_ROLLBACK);
}

/* --- queries ------------------------------------------------------------------------------- */

static char *column_strdup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static void read_run_info(sqlite3_stmt *st, store_run_info *info)
{
    info->name = column_strdup(st, 0);
    info->created_ms = sqlite3_column_int64(st, 1);
    info->updated_ms = sqlite3_column_int64(st, 2);
    info->last_step = sqlite3_column_int64(st, 3);
    info->evaluations = (uint64_t)sqlite3_column_int64(st, 4);
    info->revision = (uint64_t)sqlite3_column_int64(st, 5);
}

static int sq_list_runs(store *base, size_t max_results, const char *page_token,
                        store_run_list *out, char *err, size_t err_len)
{
    conn *c = &as_sqlite(base)->reader;
    char after[NAMES_RUN_MAX + 1] = "";
    if (page_token && *page_token) {
        size_t n = strlen(page_token) / 2;
        if (n == 0 || n >= sizeof after || store__hex_decode(page_token, (uint8_t *)after, n) != 0 ||
            (after[n] = '\0', !names_run_ok(after))) {
            snprintf(err, err_len, "page_token is not one this server gave out");
            return STORE_INVALID;
        }
    }
    int rc = STORE_FAILED;
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st = stmt(c, ST_LIST_RUNS);
    if (!st) {
        rc = db_fail(c, "list runs", err, err_len);
        goto done;
    }
    bind_text(st, 1, after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max_results + 1);
    out->runs = calloc(max_results + 1, sizeof *out->runs);
    if (!out->runs) {
        snprintf(err, err_len, "runs store: out of memory");
        goto done;
    }
    int step_rc;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW && out->count < max_results + 1) {
        read_run_info(st, &out->runs[out->count]);
        out->runs[out->count++].splits = column_strdup(st, 6);
    }
    if (step_rc != SQLITE_DONE && step_rc != SQLITE_ROW) {
        rc = db_fail(c, "list runs", err, err_len);
        goto done;
    }
    if (out->count > max_results) {
        free(out->runs[max_results].name);
        free(out->runs[max_results].splits);
        out->count = max_results;
        const char *last = out->runs[max_results - 1].name;
        out->next_page_token = malloc(2 * strlen(last) + 1);
        if (out->next_page_token)
            store__hex_encode((const uint8_t *)last, strlen(last), out->next_page_token);
    }
    rc = STORE_OK;
done:
    if (st)
        sqlite3_reset(st);
    pthread_mutex_unlock(&c->mu);
    if (rc != STORE_OK)
        store_run_list_free(out);
    return rc;
}

static int sq_run_summary(store *base, const char *run, store_run_summary *out, char *err,
                          size_t err_len)
{
    conn *c = &as_sqlite(base)->reader;
    int rc = STORE_FAILED;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&c->mu);
    if (exec_simple(c, ST_BEGIN_READ) != SQLITE_OK) {
        rc = db_fail(c, "begin", err, err_len);
        goto unlock;
    }
    if (!(st = stmt(c, ST_GET_RUN)))
        goto db_error;
    bind_text(st, 1, run);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_DONE) {
        snprintf(err, err_len, "no run named \"%s\"", run);
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (step_rc != SQLITE_ROW)
        goto db_error;
    read_run_info(st, &out->info);
    out->class_names_json = column_strdup(st, 6);
    sqlite3_reset(st);

    if (!(st = stmt(c, ST_LATEST_AGGREGATES)))
        goto db_error;
    bind_text(st, 1, run);
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_split_summary *grown =
            realloc(out->splits, (out->split_count + 1) * sizeof *out->splits);
        if (!grown)
            goto oom;
        out->splits = grown;
        store_split_summary *sp = &out->splits[out->split_count++];
        memset(sp, 0, sizeof *sp);
        sp->split = column_strdup(st, 0);
        sp->step = sqlite3_column_int64(st, 1);
        const void *bytes = sqlite3_column_blob(st, 2);
        if (!bytes || segloss_stats_deserialize(bytes, (size_t)sqlite3_column_bytes(st, 2),
                                                &sp->stats) != 0) {
            snprintf(err, err_len, "runs store: the aggregate of run \"%s\" is unreadable", run);
            goto done;
        }
        sp->loss_params_json = column_strdup(st, 3);
        sp->evaluations = (uint64_t)sqlite3_column_int64(st, 4);
        sp->h = (size_t)sqlite3_column_int64(st, 5);
        sp->w = (size_t)sqlite3_column_int64(st, 6);
        sp->updated_ms = sqlite3_column_int64(st, 7);
        if (!sp->split || !sp->loss_params_json)
            goto oom;
    }
    if (step_rc != SQLITE_DONE)
        goto db_error;
    sqlite3_reset(st);

    for (size_t i = 0; i < out->split_count; i++) {
        store_split_summary *sp = &out->splits[i];
        sp->latest = calloc(STORE_LATEST_IDS, sizeof *sp->latest);
        if (!sp->latest || !(st = stmt(c, ST_LATEST_EVALUATIONS)))
            goto oom;
        bind_text(st, 1, run);
        bind_text(st, 2, sp->split);
        sqlite3_bind_int(st, 3, STORE_LATEST_IDS);
        while ((step_rc = sqlite3_step(st)) == SQLITE_ROW && sp->latest_count < STORE_LATEST_IDS) {
            store_evaluation_ref *ref = &sp->latest[sp->latest_count++];
            const unsigned char *id = sqlite3_column_text(st, 0);
            snprintf(ref->id, sizeof ref->id, "%s", id ? (const char *)id : "");
            ref->step = sqlite3_column_int64(st, 1);
            ref->timestamp_ms = sqlite3_column_int64(st, 2);
            ref->n = (size_t)sqlite3_column_int64(st, 3);
            ref->items = (size_t)sqlite3_column_int64(st, 4);
            ref->has_overlay = ref->items > 0;
        }
        if (step_rc != SQLITE_DONE && step_rc != SQLITE_ROW)
            goto db_error;
        sqlite3_reset(st);
    }
    rc = STORE_OK;
    goto done;
oom:
    snprintf(err, err_len, "runs store: out of memory");
    goto done;
db_error:
    rc = db_fail(c, "run summary", err, err_len);
done:
    if (st)
        sqlite3_reset(st);
    exec_simple(c, ST_COMMIT);
unlock:
    pthread_mutex_unlock(&c->mu);
    if (rc != STORE_OK)
        store_run_summary_free(out);
    return rc;
}

/* 1 when the run exists, 0 when not, -1 on a database error (reader lock held). */
static int run_exists(conn *c, const char *run)
{
    sqlite3_stmt *st = stmt(c, ST_GET_RUN);
    if (!st)
        return -1;
    bind_text(st, 1, run);
    int step_rc = sqlite3_step(st);
    sqlite3_reset(st);
    return step_rc == SQLITE_ROW ? 1 : step_rc == SQLITE_DONE ? 0 : -1;
}

static int sq_history(store *base, const store_history_query *q, store_history *out, char *err,
                      size_t err_len)
{
    conn *c = &as_sqlite(base)->reader;
    int64_t after_step = INT64_MIN, after_seq = -1;
    if (q->page_token && *q->page_token &&
        store__history_token_parse(q->page_token, &after_step, &after_seq) != 0) {
        snprintf(err, err_len, "page_token is not one this server gave out");
        return STORE_INVALID;
    }
    uint32_t mask = q->key_mask ? q->key_mask : (1u << STORE_HISTORY_KEY_COUNT) - 1;
    int rc = STORE_FAILED;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&c->mu);
    if (exec_simple(c, ST_BEGIN_READ) != SQLITE_OK) {
        rc = db_fail(c, "begin", err, err_len);
        goto unlock;
    }
    int exists = run_exists(c, q->run);
    if (exists < 0)
        goto db_error;
    if (!exists) {
        snprintf(err, err_len, "no run named \"%s\"", q->run);
        rc = STORE_NOT_FOUND;
        goto done;
    }
    out->points = calloc(q->max_results + 1, sizeof *out->points);
    if (!out->points || !(st = stmt(c, ST_HISTORY))) {
        snprintf(err, err_len, "runs store: out of memory");
        goto done;
    }
    bind_text(st, 1, q->run);
    bind_text(st, 2, q->split ? q->split : STORE_DEFAULT_SPLIT);
    sqlite3_bind_int64(st, 3, q->has_since_step ? q->since_step : INT64_MIN);
    sqlite3_bind_int64(st, 4, after_step);
    sqlite3_bind_int64(st, 5, after_seq);
    sqlite3_bind_int64(st, 6, mask);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)q->max_results + 1);
    int step_rc;
    int64_t last_seq = -1;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->count == q->max_results) {
            out->next_page_token =
                store__history_token(out->points[out->count - 1].step, last_seq);
            if (!out->next_page_token) {
                snprintf(err, err_len, "runs store: out of memory");
                goto done;
            }
            break;
        }
        int key = sqlite3_column_int(st, 0);
        store_history_point *pt = &out->points[out->count++];
        pt->key = key >= 0 && key < STORE_HISTORY_KEY_COUNT ? store_history_keys[key] : "?";
        pt->has_value = sqlite3_column_type(st, 1) != SQLITE_NULL;
        pt->value = pt->has_value ? sqlite3_column_double(st, 1) : (double)NAN;
        pt->step = sqlite3_column_int64(st, 2);
        pt->timestamp_ms = sqlite3_column_int64(st, 3);
        last_seq = sqlite3_column_int64(st, 4);
    }
    if (step_rc != SQLITE_DONE && step_rc != SQLITE_ROW)
        goto db_error;
    rc = STORE_OK;
    goto done;
db_error:
    rc = db_fail(c, "history", err, err_len);
done:
    if (st)
        sqlite3_reset(st);
    exec_simple(c, ST_COMMIT);
unlock:
    pthread_mutex_unlock(&c->mu);
    if (rc != STORE_OK)
        store_history_free(out);
    return rc;
}

static int sq_evaluation(store *base, const char *id, char **answer, size_t *len, char *err,
                         size_t err_len)
{
    conn *c = &as_sqlite(base)->reader;
    int rc = STORE_FAILED;
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st = stmt(c, ST_GET_ANSWER);
    if (!st) {
        rc = db_fail(c, "evaluation", err, err_len);
        goto done;
    }
    bind_text(st, 1, id);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const unsigned char *text = sqlite3_column_text(st, 0);
        *answer = malloc(n + 1);
        if (!*answer || !text) {
            snprintf(err, err_len, "runs store: out of memory");
            goto done;
        }
        memcpy(*answer, text, n);
        (*answer)[n] = '\0';
        *len = n;
        rc = STORE_OK;
    } else if (step_rc == SQLITE_DONE) {
        snprintf(err, err_len, "no evaluation with id \"%s\" is stored", id);
        rc = STORE_NOT_FOUND;
    } else {
        rc = db_fail(c, "evaluation", err, err_len);
    }
done:
    if (st)
        sqlite3_reset(st);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static uint8_t *column_blob_dup(sqlite3_stmt *st, int i, size_t *len, int *oom)
{
    const void *b = sqlite3_column_blob(st, i);
    *len = (size_t)sqlite3_column_bytes(st, i);
    if (!b)
        return NULL;
    uint8_t *out = malloc(*len ? *len : 1);
    if (!out) {
        *oom = 1;
        return NULL;
    }
    memcpy(out, b, *len);
    return out;
}

static int sq_overlay_input(store *base, const char *id, size_t item, store_overlay_input *out,
                            char *err, size_t err_len)
{
    conn *c = &as_sqlite(base)->reader;
    int rc = STORE_FAILED, oom = 0;
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st = stmt(c, ST_GET_ITEM);
    if (!st)
        goto db_error;
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)item);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_ROW) {
        out->num_classes = (size_t)sqlite3_column_int64(st, 0);
        out->owned[0] = column_blob_dup(st, 1, &out->item.prediction_len, &oom);
        out->owned[1] = column_blob_dup(st, 2, &out->item.labels_len, &oom);
        out->owned[2] = column_blob_dup(st, 3, &out->item.image_len, &oom);
        out->item.prediction = out->owned[0];
        out->item.labels = out->owned[1];
        out->item.image = out->owned[2];
        if (oom) {
            snprintf(err, err_len, "runs store: out of memory");
            goto done;
        }
        rc = STORE_OK;
        goto done;
    }
    if (step_rc != SQLITE_DONE)
        goto db_error;
    sqlite3_reset(st);
    /* Say whether the id or the item is what is missing. */
    if (!(st = stmt(c, ST_EVALUATION_EXISTS)))
        goto db_error;
    bind_text(st, 1, id);
    step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_ROW && sqlite3_column_int64(st, 1) == 0)
        snprintf(err, err_len, "evaluation \"%s\" kept no overlay data", id);
    else if (step_rc == SQLITE_ROW)
        snprintf(err, err_len,
                 "evaluation \"%s\" has overlays for items 0 to %lld; item %zu has none", id,
                 (long long)sqlite3_column_int64(st, 1) - 1, item);
    else
        snprintf(err, err_len, "no evaluation with id \"%s\" is stored", id);
    rc = STORE_NOT_FOUND;
    goto done;
db_error:
    rc = db_fail(c, "overlay", err, err_len);
done:
    if (st)
        sqlite3_reset(st);
    pthread_mutex_unlock(&c->mu);
    if (rc != STORE_OK)
        store_overlay_input_free(out);
    return rc;
}

static int sq_delete_run(store *base, const char *run, char *err, size_t err_len)
{
    conn *c = &as_sqlite(base)->writer;
    int rc = STORE_FAILED;
    sqlite3_stmt *st;
    pthread_mutex_lock(&c->mu);
    if (exec_simple(c, ST_BEGIN) != SQLITE_OK) {
        rc = db_fail(c, "begin", err, err_len);
        goto unlock;
    }
    int exists = run_exists(c, run);
    if (exists < 0)
        goto db_error;
    if (!exists) {
        snprintf(err, err_len, "no run named \"%s\"", run);
        rc = STORE_NOT_FOUND;
        goto rollback;
    }
    for (stmt_id id = ST_DELETE_ITEMS; id <= ST_DELETE_RUN; id++) {
        if (!(st = stmt(c, id)))
            goto db_error;
        bind_text(st, 1, run);
        if (exec_stmt(st) != SQLITE_OK)
            goto db_error;
    }
    if (exec_simple(c, ST_BUMP_REVISION) != SQLITE_OK || exec_simple(c, ST_COMMIT) != SQLITE_OK)
        goto db_error;
    rc = STORE_OK;
    goto unlock;
db_error:
    rc = db_fail(c, "delete run", err, err_len);
rollback:
    exec_simple(c, ST_ROLLBACK);
unlock:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int sq_items(store *base, const store_items_query *q, store_item_list *out, char *err,
                    size_t err_len)
{
    conn *c = &as_sqlite(base)->reader;
    int rc = STORE_FAILED;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&c->mu);
    if (exec_simple(c, ST_BEGIN_READ) != SQLITE_OK) {
        rc = db_fail(c, "begin", err, err_len);
        goto unlock;
    }
    int exists = run_exists(c, q->run);
    if (exists < 0)
        goto db_error;
    if (!exists) {
        snprintf(err, err_len, "no run named \"%s\"", q->run);
        rc = STORE_NOT_FOUND;
        goto done;
    }
    out->rows = calloc(q->limit, sizeof *out->rows);
    if (!out->rows || !(st = stmt(c, ST_ITEMS))) {
        snprintf(err, err_len, "runs store: out of memory");
        goto done;
    }
    bind_text(st, 1, q->run);
    bind_text(st, 2, q->split ? q->split : STORE_DEFAULT_SPLIT);
    if (q->has_step) {
        sqlite3_bind_int64(st, 3, q->step);
        out->has_step = true;
        out->step = q->step;
    }
    sqlite3_bind_int(st, 4, (int)q->sort);
    sqlite3_bind_int(st, 5, q->descending ? -1 : 1);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)q->limit);
    int step_rc;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW && out->count < q->limit) {
        store_item_row *r = &out->rows[out->count];
        const unsigned char *id = sqlite3_column_text(st, 0);
        snprintf(r->id, sizeof r->id, "%s", id ? (const char *)id : "");
        r->item = (size_t)sqlite3_column_int64(st, 1);
        r->has_overlay = (int64_t)r->item < sqlite3_column_int64(st, 2);
        r->accuracy = column_real(st, 3);
        r->miou = column_real(st, 4);
        r->mean_dice = column_real(st, 5);
        r->present = (size_t)sqlite3_column_int64(st, 6);
        if (!(r->iou_json = column_strdup(st, 7))) {
            snprintf(err, err_len, "runs store: out of memory");
            goto done;
        }
        out->count++;
        out->has_step = true;
        out->step = sqlite3_column_int64(st, 8);
        out->total = (uint64_t)sqlite3_column_int64(st, 9);
    }
    if (step_rc != SQLITE_DONE && step_rc != SQLITE_ROW)
        goto db_error;
    rc = STORE_OK;
    goto done;
db_error:
    rc = db_fail(c, "items", err, err_len);
done:
    if (st)
        sqlite3_reset(st);
    exec_simple(c, ST_COMMIT);
unlock:
    pthread_mutex_unlock(&c->mu);
    if (rc != STORE_OK)
        store_item_list_free(out);
    return rc;
}

static int sq_aggregates(store *base, const store_aggregate_query *q, store_aggregate_list *out,
                         char *err, size_t err_len)
{
    conn *c = &as_sqlite(base)->reader;
    int rc = STORE_FAILED;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&c->mu);
    if (exec_simple(c, ST_BEGIN_READ) != SQLITE_OK) {
        rc = db_fail(c, "begin", err, err_len);
        goto unlock;
    }
    int exists = run_exists(c, q->run);
    if (exists < 0)
        goto db_error;
    if (!exists) {
        snprintf(err, err_len, "no run named \"%s\"", q->run);
        rc = STORE_NOT_FOUND;
        goto done;
    }
    out->rows = calloc(q->max_results, sizeof *out->rows);
    if (!out->rows || !(st = stmt(c, ST_AGGREGATES))) {
        snprintf(err, err_len, "runs store: out of memory");
        goto done;
    }
    bind_text(st, 1, q->run);
    bind_text(st, 2, q->split ? q->split : STORE_DEFAULT_SPLIT);
    sqlite3_bind_int64(st, 3, q->from_step);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)q->max_results);
    int step_rc;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW && out->count < q->max_results) {
        store_aggregate *a = &out->rows[out->count];
        a->step = sqlite3_column_int64(st, 0);
        const void *bytes = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        a->loss_params_json = column_strdup(st, 2);
        a->evaluations = (uint64_t)sqlite3_column_int64(st, 3);
        a->updated_ms = sqlite3_column_int64(st, 4);
        out->count++;
        if (!bytes || !a->loss_params_json ||
            segloss_stats_deserialize(bytes, len, &a->stats) != 0) {
            snprintf(err, err_len, "runs store: the aggregate of run \"%s\" step %" PRId64
                     " is unreadable", q->run, a->step);
            goto done;
        }
    }
    if (step_rc != SQLITE_DONE && step_rc != SQLITE_ROW)
        goto db_error;
    rc = STORE_OK;
    goto done;
db_error:
    rc = db_fail(c, "aggregates", err, err_len);
done:
    if (st)
        sqlite3_reset(st);
    exec_simple(c, ST_COMMIT);
unlock:
    pthread_mutex_unlock(&c->mu);
    if (rc != STORE_OK)
        store_aggregate_list_free(out);
    return rc;
}

static int sq_revision(store *base, const char *run, uint64_t *out, char *err, size_t err_len)
{
    conn *c = &as_sqlite(base)->reader;
    int rc = STORE_FAILED;
    pthread_mutex_lock(&c->mu);
    sqlite3_stmt *st = stmt(c, run ? ST_GET_RUN : ST_GLOBAL_REVISION);
    if (!st) {
        rc = db_fail(c, "revision", err, err_len);
        goto done;
    }
    if (run)
        bind_text(st, 1, run);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_ROW) {
        *out = (uint64_t)sqlite3_column_int64(st, run ? 5 : 0);
        rc = STORE_OK;
    } else if (step_rc == SQLITE_DONE) {
        snprintf(err, err_len, "no run named \"%s\"", run ? run : "");
        rc = STORE_NOT_FOUND;
    } else {
        rc = db_fail(c, "revision", err, err_len);
    }
done:
    if (st)
        sqlite3_reset(st);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int sq_disk_bytes(store *base, uint64_t *out)
{
    sqlite_store *s = as_sqlite(base);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    *out = 0;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char path[1200];
        struct stat sb;
        snprintf(path, sizeof path, "%s%s", s->path, suffixes[i]);
        if (stat(path, &sb) == 0)
            *out += (uint64_t)sb.st_size;
    }
    return STORE_OK;
}

static void sq_close(store *base)
{
    sqlite_store *s = as_sqlite(base);
    conn_close(&s->reader);
    conn_close(&s->writer);
    free(s);
}

static const store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .record_transaction = sq_record_transaction,
    .record = {.begin = sq_begin,
               .claim_key = sq_claim_key,
               .insert_evaluation = sq_insert_evaluation,
               .insert_items = sq_insert_items,
               .insert_figures = sq_insert_figures,
               .load_aggregate = sq_load_aggregate,
               .save_aggregate = sq_save_aggregate,
               .put_history = sq_put_history,
               .retain = sq_retain,
               .finish_run = sq_finish_run,
               .commit = sq_commit,
               .rollback = sq_rollback},
    .list_runs = sq_list_runs,
    .run_summary = sq_run_summary,
    .history = sq_history,
    .evaluation = sq_evaluation,
    .overlay_input = sq_overlay_input,
    .delete_run = sq_delete_run,
    .revision = sq_revision,
    .disk_bytes = sq_disk_bytes,
    .items = sq_items,
    .aggregates = sq_aggregates,
};

static int sq_open(const store_options *opt, store **out, char *err, size_t err_len)
{
    *out = NULL;
    sqlite_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_len, "runs store: out of memory");
        return STORE_FAILED;
    }
    s->base.ops = &sqlite_ops;
    s->base.retain_evaluations = opt->retain_evaluations;
    int n = snprintf(s->path, sizeof s->path, "%s/%s", opt->location, SQLITE_DB_NAME);
    if (n < 0 || (size_t)n >= sizeof s->path) {
        snprintf(err, err_len, "runs store: data directory path too long");
        free(s);
        return STORE_FAILED;
    }
    struct stat sb;
    errno = 0;
    if (mkdir(opt->location, 0750) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "runs store: cannot create data directory %s: %s", opt->location,
                 strerror(errno));
        free(s);
        return STORE_FAILED;
    }
    errno = 0;
    if (stat(opt->location, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, err_len, "runs store: data directory %s: %s", opt->location,
                 errno ? strerror(errno) : "not a directory");
        free(s);
        return STORE_FAILED;
    }
    int rc = conn_open(&s->writer, s->path, err, err_len);
    if (rc == STORE_OK)
        rc = migrate(s->writer.db, s->path, err, err_len);
    if (rc == STORE_OK)
        rc = conn_open(&s->reader, s->path, err, err_len);
    if (rc != STORE_OK) {
        sq_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return STORE_OK;
}

/* Any location that no other backend takes: a data directory. */
const store_backend store_sqlite_backend = {.name = "sqlite", .accepts = NULL, .open = sq_open};
