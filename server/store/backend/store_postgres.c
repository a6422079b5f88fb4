/*
 * store_postgres.c - the shared runs store: PostgreSQL through libpq, so several seglossd
 * replicas keep one history (`--store postgres://user:password@host/db`, issue 6).
 *
 * Same semantics as store_sqlite.c: one transaction per record, ids, history points and paging
 * tokens, revisions for ETags, retention and deletion behave alike. The record itself (its
 * order, the key replay, the merge) is store_record.c's; this file gives its SQL steps
 * (store_backend.h). The tables are prefixed `segloss_` (a database shared with other tools,
 * MLflow's `runs` say, stays readable) and are made in the first schema of the connection's
 * search_path, so `?options=-csearch_path%3Dname` in the URL gives a deployment, or a test, a
 * namespace of its own.
 *
 * Schema: versioned migrations as in SQLite, applied on open under a session-level advisory lock
 * (pg_advisory_lock on a key made of this file's constant and the schema's name), so replicas
 * that start together wait for the first one's migration instead of racing CREATE TABLE. A
 * schema newer than this binary is refused.
 *
 * Concurrency (why concurrent replicas never lose or double-count a batch). Every write runs in
 * one READ COMMITTED transaction and takes its row locks in one order:
 *   1. the run's row, by `INSERT ... ON CONFLICT (name) DO UPDATE` as the first statement: all
 *      records and the delete of one run are serialised from here to their COMMIT, whichever
 *      replica runs them (a concurrent first insert of the name waits for the other to commit);
 *   2. the evaluation row: its id is UNIQUE, so one evaluation is stored, and merged, at most
 *      once;
 *   3. the (run, split, step) aggregate: created empty by `INSERT ... ON CONFLICT DO NOTHING`,
 *      then read with `SELECT ... FOR UPDATE`, merged exactly (segloss_stats_merge) and written
 *      back in the same transaction. FOR UPDATE returns the newest committed version once the
 *      lock is granted, so no merge works on a stale row even without step 1;
 *   4. the run's revision: nextval of a sequence, taken while the run's row is locked, so a
 *      run's revisions grow in commit order and are never reused (not even by a deleted run's
 *      namesake).
 * Records share no lock beyond their run's, so commits of different runs go in parallel (and
 * share WAL flushes). The global revision is read, not written: the sum of the runs' revisions
 * plus a counter that a delete raises by the deleted run's revision and a fresh sequence value.
 * Every commit raises that sum (a record by its run's new minus old revision, a delete by the
 * fresh value), so it grows with every change a reader can see and never repeats; and it is
 * read from committed rows, so a reader that reads a revision and then the data never gets data
 * older than the revision says.
 * The fixed order means no deadlocks among these statements; a serialization failure or deadlock
 * (40001, 40P01) that a DBA's settings could still cause rolls the whole transaction back and it
 * is run again, which is safe because nothing of it was committed.
 *
 * Connections: a pool of PG_POOL_SIZE connections behind a mutex and a condition variable; a
 * call takes one for its whole transaction. A connection that failed is dropped and made again
 * by the next call. A call that fails because the server went away (a restart, a failover) is
 * tried once more on a fresh connection; if that cannot connect the call returns
 * STORE_UNAVAILABLE (HTTP 503), and reconnecting is retried at most every PG_RECONNECT_MS. A
 * record whose COMMIT got no answer may have committed: it is retried, and the retry finding
 * its evaluation id already stored reports success, so a 200 always means stored, once.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h> /* Debian's libpq-dev without -I/usr/include/postgresql */
#endif
#else
#include <libpq-fe.h>
#endif

#include "base/names.h"
#include "store/backend/store_backend.h"

/* Connections per store: the daemon's workers record while its HTTP threads answer GETs; a few
 * more than both is plenty, and PostgreSQL's default max_connections (100) fits many replicas. */
#define PG_POOL_SIZE 8
/* Seconds libpq waits for a connection (a URL's connect_timeout wins). */
#define PG_CONNECT_TIMEOUT "5"
/* A server that vanished without closing the connection (a host gone, a network cut) is noticed
 * within about 30 s instead of the kernel's ~15 minutes of retransmissions: TCP keepalives after
 * 10 s idle, every 5 s, 4 tries, and unacknowledged data given up after 30 s. The URL wins. */
#define PG_KEEPALIVES_IDLE "10"
#define PG_KEEPALIVES_INTERVAL "5"
#define PG_KEEPALIVES_COUNT "4"
#define PG_TCP_USER_TIMEOUT_MS "30000"
/* A statement that waits longer than this (a lock held by a stuck session, an overloaded
 * server) is cancelled and the call answers "unavailable, retry later" instead of holding a
 * worker indefinitely. Set on each new connection unless the URL (options=-c
 * statement_timeout=...) or the server already sets one; migrations, which may wait for another
 * replica's, run without it. */
#define PG_STATEMENT_TIMEOUT_MS "15000"
/* After a failed connect, calls fail at once for this long instead of each waiting to connect. */
#define PG_RECONNECT_MS 250
/* Runs of a transaction that hit a serialization failure or deadlock before giving up. */
#define PG_MAX_ATTEMPTS 5
/* First key of the migration advisory lock ("segl"); the second is the schema's hash. */
#define PG_MIGRATION_LOCK_KEY 0x7365676c
/* Parameters of one statement at most. */
#define PG_MAX_PARAMS 12

/* Each entry moves the schema one version up; never edit one that has shipped. */
static const char *const migrations[] = {
    /* 1: runs, evaluations with their overlay items, per-step aggregates, history. Names are
     * compared with the C collation, as SQLite compares bytes (run-list order, page tokens). */
    "CREATE TABLE segloss_meta(key text PRIMARY KEY, value bigint NOT NULL);"
    "INSERT INTO segloss_meta(key, value) VALUES('deleted', 0);"
    "CREATE SEQUENCE segloss_revisions;"
    "CREATE TABLE segloss_runs("
    "  name text COLLATE \"C\" PRIMARY KEY, created_ms bigint NOT NULL,"
    "  updated_ms bigint NOT NULL, last_step bigint NOT NULL, evaluations bigint NOT NULL,"
    "  revision bigint NOT NULL, class_names text);"
    "CREATE TABLE segloss_evaluations("
    "  seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, run text COLLATE \"C\" NOT NULL,"
    "  split text COLLATE \"C\" NOT NULL, step bigint NOT NULL, timestamp_ms bigint NOT NULL,"
    "  n bigint NOT NULL, c bigint NOT NULL, h bigint NOT NULL, w bigint NOT NULL,"
    "  items bigint NOT NULL, answer text NOT NULL);"
    "CREATE INDEX segloss_evaluations_run ON segloss_evaluations(run, seq);"
    "CREATE INDEX segloss_evaluations_split ON segloss_evaluations(run, split, seq);"
    "CREATE TABLE segloss_items("
    "  evaluation bigint NOT NULL REFERENCES segloss_evaluations(seq) ON DELETE CASCADE,"
    "  item integer NOT NULL, prediction bytea NOT NULL, labels bytea NOT NULL, image bytea,"
    "  PRIMARY KEY(evaluation, item));"
    "CREATE TABLE segloss_aggregates("
    "  run text COLLATE \"C\" NOT NULL, split text COLLATE \"C\" NOT NULL,"
    "  step bigint NOT NULL, stats bytea, loss_params text NOT NULL,"
    "  evaluations bigint NOT NULL, h bigint NOT NULL, w bigint NOT NULL,"
    "  updated_ms bigint NOT NULL, PRIMARY KEY(run, split, step));"
    "CREATE TABLE segloss_history("
    "  seq bigserial PRIMARY KEY, run text COLLATE \"C\" NOT NULL,"
    "  split text COLLATE \"C\" NOT NULL, key integer NOT NULL, step bigint NOT NULL,"
    "  value double precision, timestamp_ms bigint NOT NULL, UNIQUE(run, split, key, step));"
    "CREATE INDEX segloss_history_page ON segloss_history(run, split, step, seq);",
    /* 2: per-item figures of every batch item (GET /v1/runs/{run}/items); one self-contained
     * step: it only adds a table and an index. */
    "CREATE TABLE segloss_item_figures("
    "  evaluation bigint NOT NULL REFERENCES segloss_evaluations(seq) ON DELETE CASCADE,"
    "  item integer NOT NULL, accuracy double precision, miou double precision,"
    "  mean_dice double precision, present integer NOT NULL, iou text NOT NULL,"
    "  PRIMARY KEY(evaluation, item));"
    "CREATE INDEX segloss_evaluations_step ON segloss_evaluations(run, split, step);",
    /* 3: Idempotency-Key: one row per key, written in the record's transaction; its primary key
     * is what makes two replicas recording the same key record it once. */
    "CREATE TABLE segloss_idempotency_keys("
    "  key text COLLATE \"C\" PRIMARY KEY, run text COLLATE \"C\" NOT NULL,"
    "  request_hash bytea NOT NULL, evaluation text NOT NULL, answer text NOT NULL,"
    "  created_ms bigint NOT NULL);"
    "CREATE INDEX segloss_idempotency_keys_run ON segloss_idempotency_keys(run);",
};
#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

/* How a statement failed. */
typedef enum pg_failure {
    PGF_NONE,
    PGF_GONE,   /* the connection or the server is gone (or refusing): 503, retry later */
    PGF_RETRY,  /* serialization failure or deadlock: run the transaction again */
    PGF_BUSY,   /* cancelled by statement_timeout or a lock timeout: 503, not retried here */
    PGF_UNIQUE, /* unique violation */
    PGF_OTHER   /* anything else: 500 */
} pg_failure;

typedef struct pg_store {
    store base;     /* first: a store * is a pg_store * */
    char *conninfo; /* the URL as given */
    char *shown;    /* the URL without its password, for messages */
    pthread_mutex_t mu;
    pthread_cond_t freed;
    PGconn *conns[PG_POOL_SIZE];
    bool busy[PG_POOL_SIZE];
    int64_t connect_after_ms; /* no new connection before this (after a failed one) */
    char last_connect_error[256];
} pg_store;

/* One transaction's connection and what went wrong in it. */
typedef struct pg_call {
    pg_store *s;
    int slot;
    PGconn *conn;
    pg_failure failure;
    bool retry_after_gone; /* this is the second try after the connection went away */
    char *err;
    size_t err_len;
} pg_call;

static const store_ops postgres_ops;

static pg_store *as_pg(store *s)
{
    return (pg_store *)s;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- URL and connections ------------------------------------------------------------------- */

/* The URL with the password of its user-info replaced by "***" (caller frees). */
static char *redact_url(const char *url)
{
    char *out = malloc(strlen(url) + 8);
    if (!out)
        return NULL;
    const char *scheme = strstr(url, "://");
    const char *info = scheme ? scheme + 3 : url;
    const char *at = strchr(info, '@');
    const char *slash = strchr(info, '/');
    const char *colon = strchr(info, ':');
    if (at && (!slash || at < slash) && colon && colon < at)
        snprintf(out, strlen(url) + 8, "%.*s:***%s", (int)(colon - url), url, at);
    else
        strcpy(out, url);
    return out;
}

/* libpq's messages end with a newline; a detail ends without one. */
static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like */
}

/* Gives a new connection PG_STATEMENT_TIMEOUT_MS unless it already has a statement timeout. */
static bool default_statement_timeout(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT current_setting('statement_timeout')");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    bool unset = ok && strcmp(PQgetvalue(r, 0, 0), "0") == 0;
    PQclear(r);
    if (ok && unset) {
        r = PQexec(c, "SET statement_timeout = " PG_STATEMENT_TIMEOUT_MS);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    return ok;
}

/* A new connection, or NULL with a detail in err. */
static PGconn *pg_connect(pg_store *s, char *err, size_t err_len)
{
    /* defaults first: with expand_dbname, what the URL says overrides them */
    const char *const keys[] = {
        "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
    const char *const values[] = {PG_CONNECT_TIMEOUT,  "seglossd",
                                  PG_KEEPALIVES_IDLE,  PG_KEEPALIVES_INTERVAL,
                                  PG_KEEPALIVES_COUNT, PG_TCP_USER_TIMEOUT_MS,
                                  s->conninfo,         NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    bool connected = c && PQstatus(c) == CONNECTION_OK;
    if (connected && default_statement_timeout(c)) {
        PQsetNoticeProcessor(c, ignore_notice, NULL);
        return c;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "%s%s", connected ? "setting statement_timeout: " : "",
             c ? PQerrorMessage(c) : "out of memory");
    trim(msg);
    snprintf(err, err_len, "runs store: cannot connect to PostgreSQL at %s: %s", s->shown, msg);
    PQfinish(c);
    return NULL;
}

/* Takes a pooled connection, connecting when it has none or when fresh is set (after a failure
 * the other pooled connections are likely dead too). STORE_UNAVAILABLE when the server cannot
 * be reached. */
static int pg_acquire(pg_store *s, pg_call *c, bool fresh, char *err, size_t err_len)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    c->err = err;
    c->err_len = err_len;
    pthread_mutex_lock(&s->mu);
    int slot = -1;
    for (;;) {
        /* a free slot with a live connection first, else any free slot */
        for (int i = 0; i < PG_POOL_SIZE; i++)
            if (!s->busy[i] && (slot < 0 || (s->conns[i] && !s->conns[slot])))
                slot = i;
        if (slot >= 0)
            break;
        pthread_cond_wait(&s->freed, &s->mu);
    }
    s->busy[slot] = true;
    PGconn *conn = s->conns[slot];
    if (fresh && conn) {
        s->conns[slot] = NULL;
        pthread_mutex_unlock(&s->mu);
        PQfinish(conn);
        conn = NULL;
        pthread_mutex_lock(&s->mu);
    }
    bool wait = !conn && now_ms() < s->connect_after_ms;
    char last[256];
    snprintf(last, sizeof last, "%s", s->last_connect_error);
    pthread_mutex_unlock(&s->mu);
    c->slot = slot;
    if (!conn && wait) {
        snprintf(err, err_len, "%s (PostgreSQL unavailable; retry later)", last);
        goto unavailable;
    }
    if (!conn) {
        conn = pg_connect(s, err, err_len);
        pthread_mutex_lock(&s->mu);
        if (!conn) {
            s->connect_after_ms = now_ms() + PG_RECONNECT_MS;
            snprintf(s->last_connect_error, sizeof s->last_connect_error, "%s", err);
        }
        s->conns[slot] = conn;
        pthread_mutex_unlock(&s->mu);
        if (!conn)
            goto unavailable;
    }
    c->conn = conn;
    return STORE_OK;
unavailable:
    pthread_mutex_lock(&s->mu);
    s->busy[slot] = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->mu);
    c->failure = PGF_GONE;
    return STORE_UNAVAILABLE;
}

/* Gives the connection back; drops it when it failed or was left inside a transaction. */
static void pg_release(pg_call *c)
{
    pg_store *s = c->s;
    bool drop = PQstatus(c->conn) != CONNECTION_OK ||
                PQtransactionStatus(c->conn) != PQTRANS_IDLE || c->failure == PGF_GONE;
    if (drop) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    pthread_mutex_lock(&s->mu);
    s->conns[c->slot] = c->conn;
    s->busy[c->slot] = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->mu);
}

/* --- statements ---------------------------------------------------------------------------- */

/* The parameters of one statement: text, or binary for bytea. */
typedef struct pg_params {
    int n;
    const char *values[PG_MAX_PARAMS];
    int lengths[PG_MAX_PARAMS];
    int formats[PG_MAX_PARAMS];
    char numbers[PG_MAX_PARAMS][24];
} pg_params;

static void p_text(pg_params *p, const char *v)
{
    p->values[p->n] = v;
    p->lengths[p->n] = 0;
    p->formats[p->n++] = 0;
}

static void p_int(pg_params *p, int64_t v)
{
    snprintf(p->numbers[p->n], sizeof p->numbers[p->n], "%" PRId64, v);
    p_text(p, p->numbers[p->n]);
}

static void p_bytes(pg_params *p, const void *v, size_t len)
{
    p->values[p->n] = v ? v : (len ? NULL : "");
    p->lengths[p->n] = (int)len;
    p->formats[p->n++] = 1;
}

static pg_failure classify(PGconn *conn, const PGresult *r)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return PGF_GONE;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return r ? PGF_OTHER : PGF_GONE;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return PGF_RETRY;
    if (strcmp(state, "23505") == 0)
        return PGF_UNIQUE;
    /* query_canceled (statement_timeout), lock_not_available (lock_timeout) */
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0)
        return PGF_BUSY;
    /* connection exceptions, shutting down, starting up, out of connections */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
        strncmp(state, "53", 2) == 0)
        return PGF_GONE;
    return PGF_OTHER;
}

/* Runs one statement; NULL on failure with c->failure and a detail set. */
static PGresult *run(pg_call *c, const char *what, const char *sql, const pg_params *p)
{
    PGresult *r = PQexecParams(c->conn, sql, p ? p->n : 0, NULL, p ? p->values : NULL,
                               p ? p->lengths : NULL, p ? p->formats : NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    c->failure = classify(c->conn, r);
    char msg[400];
    snprintf(msg, sizeof msg, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c->conn));
    if (!msg[0])
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c->conn));
    trim(msg);
    if (c->failure == PGF_GONE)
        snprintf(c->err, c->err_len, "runs store: PostgreSQL unavailable (%s): %s", what, msg);
    else if (c->failure == PGF_BUSY)
        snprintf(c->err, c->err_len,
                 "runs store: PostgreSQL did not answer in time (%s): %s; retry later", what, msg);
    else
        snprintf(c->err, c->err_len, "runs store: %s: %s", what, msg);
    PQclear(r);
    return NULL;
}

/* A statement whose rows are not needed; 0 or -1. */
static int exec(pg_call *c, const char *what, const char *sql, const pg_params *p)
{
    PGresult *r = run(c, what, sql, p);
    PQclear(r);
    return r ? 0 : -1;
}

/* The status a failed call returns. */
static int failed(const pg_call *c)
{
    switch (c->failure) {
    case PGF_GONE:
    case PGF_BUSY: return STORE_UNAVAILABLE;
    case PGF_UNIQUE: return STORE_CONFLICT;
    default: return STORE_FAILED;
    }
}

static void rollback(pg_call *c)
{
    if (PQstatus(c->conn) == CONNECTION_OK && PQtransactionStatus(c->conn) != PQTRANS_IDLE)
        PQclear(PQexec(c->conn, "ROLLBACK"));
}

/* The end of a read transaction that failed: its last result freed, the status of what failed
 * (a generic failure refined by the call's, e.g. the server gone), rolled back. */
static int read_failed(pg_call *c, PGresult *r, int rc)
{
    PQclear(r);
    if (rc == STORE_FAILED && c->failure != PGF_NONE)
        rc = failed(c);
    rollback(c);
    return rc;
}

static int64_t get_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static char *get_strdup(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* A bytea column (text format) into malloc'ed bytes; NULL for SQL NULL or OOM (*oom set). */
static uint8_t *get_bytes(const PGresult *r, int row, int col, size_t *len, int *oom)
{
    *len = 0;
    if (PQgetisnull(r, row, col))
        return NULL;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), len);
    uint8_t *out = raw ? malloc(*len ? *len : 1) : NULL;
    if (out)
        memcpy(out, raw, *len);
    else
        *oom = 1;
    PQfreemem(raw);
    return out;
}

/*
 * Runs fn in a pooled connection: again on a fresh connection once when the server went away,
 * and up to PG_MAX_ATTEMPTS times on serialization failures and deadlocks.
 */
typedef int (*pg_txn)(pg_call *c, void *arg);

static int with_connection(pg_store *s, pg_txn fn, void *arg, char *err, size_t err_len)
{
    bool gone_before = false;
    for (int attempt = 1;; attempt++) {
        pg_call c;
        int rc = pg_acquire(s, &c, gone_before, err, err_len);
        if (rc != STORE_OK) {
            if (rc == STORE_UNAVAILABLE && gone_before && strstr(err, "retry later") == NULL) {
                size_t n = strlen(err);
                snprintf(err + n, err_len - n, " (PostgreSQL unavailable; retry later)");
            }
            return rc;
        }
        c.retry_after_gone = gone_before;
        rc = fn(&c, arg);
        pg_failure f = rc == STORE_OK ? PGF_NONE : c.failure;
        if (rc != STORE_OK)
            rollback(&c);
        pg_release(&c);
        if (f == PGF_GONE && !gone_before) {
            gone_before = true;
            continue;
        }
        if (f == PGF_RETRY && attempt < PG_MAX_ATTEMPTS) {
            struct timespec pause = {0, (long)(1 + now_ms() % 10) * 1000000L * attempt};
            nanosleep(&pause, NULL);
            continue;
        }
        return rc;
    }
}

/* --- record -------------------------------------------------------------------------------- */

/* "{0,1,...}" and "{v0,v1,...}": the history keys and values as integer[] and float8[]
 * literals (NULL = undefined). */
static void history_values(const double values[STORE_HISTORY_KEY_COUNT], char *keys,
                           size_t keys_len, char *vals, size_t vals_len)
{
    size_t kn = 0, vn = 0;
    kn += (size_t)snprintf(keys + kn, keys_len - kn, "{");
    vn += (size_t)snprintf(vals + vn, vals_len - vn, "{");
    for (size_t k = 0; k < STORE_HISTORY_KEY_COUNT; k++) {
        double v = values[k];
        const char *sep = k ? "," : "";
        kn += (size_t)snprintf(keys + kn, keys_len - kn, "%s%zu", sep, k);
        if (isfinite(v))
            vn += (size_t)snprintf(vals + vn, vals_len - vn, "%s%.17g", sep, v);
        else
            vn += (size_t)snprintf(vals + vn, vals_len - vn, "%sNULL", sep);
    }
    snprintf(keys + kn, keys_len - kn, "}");
    snprintf(vals + vn, vals_len - vn, "}");
}

/* A growing string; failed once an allocation failed. */
typedef struct pg_text {
    char *p;
    size_t len, cap;
    bool failed;
} pg_text;

static void text_add(pg_text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *q = realloc(t->p, cap);
        if (!q) {
            t->failed = true;
            return;
        }
        t->p = q;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n + 1);
    t->len += n;
}

static void text_real(pg_text *t, double v)
{
    char num[32];
    if (isfinite(v))
        snprintf(num, sizeof num, "%.17g", v);
    else
        snprintf(num, sizeof num, "NULL");
    text_add(t, num);
}

/* The per-item figures as six array literals (item, accuracy, miou, mean_dice, present, iou)
 * for one INSERT ... unnest: one round trip for a whole batch. The IoU arrays hold digits,
 * commas, brackets and "null" only, so double quotes are all they need. */
static int figure_arrays(const store_item_figures *f, size_t n, char *out[6])
{
    pg_text t[6] = {{0}};
    for (int a = 0; a < 6; a++)
        text_add(&t[a], "{");
    for (size_t i = 0; i < n; i++) {
        char num[32];
        const char *sep = i ? "," : "";
        for (int a = 0; a < 6; a++)
            text_add(&t[a], sep);
        snprintf(num, sizeof num, "%zu", i);
        text_add(&t[0], num);
        text_real(&t[1], f[i].accuracy);
        text_real(&t[2], f[i].miou);
        text_real(&t[3], f[i].mean_dice);
        snprintf(num, sizeof num, "%zu", f[i].present);
        text_add(&t[4], num);
        text_add(&t[5], "\"");
        text_add(&t[5], f[i].iou_json ? f[i].iou_json : "[]");
        text_add(&t[5], "\"");
    }
    int rc = 0;
    for (int a = 0; a < 6; a++) {
        text_add(&t[a], "}");
        rc |= t[a].failed ? -1 : 0;
        out[a] = t[a].p;
    }
    return rc;
}

/* One record's transaction (store_backend.h): a pooled connection, from BEGIN to COMMIT. The
 * steps go in the order of the file comment's "Concurrency" and return failed(c) when a
 * statement fails, so that with_connection can tell a retry from a failure. */
struct store_txn {
    pg_call *c;
};

typedef struct record_arg {
    store_txn_body body;
    void *arg;
} record_arg;

static int record_in_call(pg_call *c, void *arg)
{
    const record_arg *a = arg;
    store_txn t = {.c = c};
    return a->body(&t, a->arg);
}

static int pg_record_transaction(store *base, store_txn_body body, void *arg, char *err,
                                 size_t err_len)
{
    record_arg a = {.body = body, .arg = arg};
    return with_connection(as_pg(base), record_in_call, &a, err, err_len);
}

/* A statement of a record step: STORE_OK, or the status its failure means. */
static int step_exec(pg_call *c, const char *what, const char *sql, const pg_params *p)
{
    return exec(c, what, sql, p) == 0 ? STORE_OK : failed(c);
}

/* 1. the run's row: created or updated, and locked until COMMIT */
static int pg_begin(store_txn *t, const store_evaluation *ev)
{
    pg_call *c = t->c;
    if (exec(c, "begin", "BEGIN", NULL) != 0)
        return failed(c);
    pg_params p = {0};
    p_text(&p, ev->run);
    p_int(&p, ev->timestamp_ms);
    p_int(&p, ev->step);
    p_text(&p, ev->class_names_json);
    if (exec(c, "run",
             "INSERT INTO segloss_runs(name, created_ms, updated_ms, last_step, evaluations, "
             "revision, class_names) VALUES($1, $2, $2, $3, 1, 0, $4) "
             "ON CONFLICT(name) DO UPDATE SET "
             "updated_ms = greatest(segloss_runs.updated_ms, excluded.updated_ms), "
             "last_step = greatest(segloss_runs.last_step, excluded.last_step), "
             "evaluations = segloss_runs.evaluations + 1, "
             "class_names = coalesce(excluded.class_names, segloss_runs.class_names)",
             &p) != 0) {
        int rc = failed(c);
        rollback(c);
        return rc;
    }
    return STORE_OK;
}

/*
 * 1b. the Idempotency-Key, after the run's row lock. The insert comes first: ON CONFLICT DO
 * NOTHING waits for a transaction (any replica) that inserted the same key and has not yet
 * committed, so the SELECT after it sees that key once it is committed, and the key's primary
 * key lets only one of them record.
 */
static int pg_claim_key(store_txn *t, const store_evaluation *ev, store_key_found *found)
{
    pg_call *c = t->c;
    pg_params p = {0};
    p_text(&p, ev->idempotency_key);
    p_text(&p, ev->run);
    p_bytes(&p, ev->request_hash, STORE_REQUEST_HASH_LEN);
    p_text(&p, ev->id);
    p_text(&p, ev->answer_json);
    p_int(&p, ev->timestamp_ms);
    PGresult *r = run(c, "idempotency key",
                      "INSERT INTO segloss_idempotency_keys(key, run, request_hash, evaluation, "
                      "answer, created_ms) VALUES($1, $2, $3, $4, $5, $6) "
                      "ON CONFLICT(key) DO NOTHING RETURNING key",
                      &p);
    if (!r)
        return failed(c);
    int inserted = PQntuples(r);
    PQclear(r);
    if (inserted == 1)
        return 0;
    p.n = 1;
    if (!(r = run(c, "idempotency key",
                  "SELECT request_hash, answer FROM segloss_idempotency_keys WHERE key = $1", &p)))
        return failed(c);
    if (PQntuples(r) != 1) {
        snprintf(c->err, c->err_len, "runs store: idempotency key \"%s\" vanished",
                 ev->idempotency_key);
        PQclear(r);
        return STORE_FAILED;
    }
    int oom = 0;
    size_t len = 0;
    uint8_t *hash = get_bytes(r, 0, 0, &len, &oom);
    found->hash_ok = hash && len == STORE_REQUEST_HASH_LEN;
    if (found->hash_ok)
        memcpy(found->request_hash, hash, STORE_REQUEST_HASH_LEN);
    found->answer = get_strdup(r, 0, 1);
    found->answer_len = found->answer ? strlen(found->answer) : 0;
    free(hash);
    PQclear(r);
    if (oom) {
        free(found->answer);
        found->answer = NULL;
        snprintf(c->err, c->err_len, "runs store: out of memory");
        return STORE_FAILED;
    }
    return 1;
}

/* 2. the evaluation; its id is unique */
static int pg_insert_evaluation(store_txn *t, const store_evaluation *ev, const char *split,
                                int64_t *seq)
{
    pg_call *c = t->c;
    pg_params p = {0};
    p_text(&p, ev->id);
    p_text(&p, ev->run);
    p_text(&p, split);
    p_int(&p, ev->step);
    p_int(&p, ev->timestamp_ms);
    p_int(&p, (int64_t)ev->n);
    p_int(&p, (int64_t)ev->c);
    p_int(&p, (int64_t)ev->h);
    p_int(&p, (int64_t)ev->w);
    p_int(&p, ev->items ? (int64_t)ev->item_count : 0);
    p_text(&p, ev->answer_json);
    PGresult *r = run(c, "evaluation",
                      "INSERT INTO segloss_evaluations(id, run, split, step, timestamp_ms, n, c, "
                      "h, w, items, answer) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                      "RETURNING seq",
                      &p);
    if (!r) {
        if (c->failure == PGF_UNIQUE && c->retry_after_gone) {
            /* the first try's COMMIT went through before the connection was lost */
            c->failure = PGF_NONE;
            return 1;
        }
        if (c->failure == PGF_UNIQUE)
            snprintf(c->err, c->err_len, "runs store: evaluation %s is stored already", ev->id);
        return failed(c);
    }
    *seq = get_i64(r, 0, 0);
    PQclear(r);
    return STORE_OK;
}

static int pg_insert_items(store_txn *t, int64_t seq, const store_evaluation *ev)
{
    pg_call *c = t->c;
    for (size_t i = 0; i < ev->item_count; i++) {
        const store_item *it = &ev->items[i];
        pg_params p = {0};
        p_int(&p, seq);
        p_int(&p, (int64_t)i);
        p_bytes(&p, it->prediction, it->prediction ? it->prediction_len : 0);
        p_bytes(&p, it->labels, it->labels ? it->labels_len : 0);
        if (it->image)
            p_bytes(&p, it->image, it->image_len);
        else
            p_text(&p, NULL);
        if (exec(c, "overlay item",
                 "INSERT INTO segloss_items(evaluation, item, prediction, labels, image) "
                 "VALUES($1, $2, $3, $4, $5)",
                 &p) != 0)
            return failed(c);
    }
    return STORE_OK;
}

static int pg_insert_figures(store_txn *t, int64_t seq, const store_evaluation *ev)
{
    pg_call *c = t->c;
    char *arrays[6] = {0};
    if (figure_arrays(ev->figures, ev->n, arrays) != 0) {
        for (int i = 0; i < 6; i++)
            free(arrays[i]);
        snprintf(c->err, c->err_len, "runs store: out of memory");
        return STORE_FAILED;
    }
    pg_params p = {0};
    p_int(&p, seq);
    for (int i = 0; i < 6; i++)
        p_text(&p, arrays[i]);
    int frc = exec(c, "item figures",
                   "INSERT INTO segloss_item_figures(evaluation, item, accuracy, miou, "
                   "mean_dice, present, iou) SELECT $1, t.* FROM unnest($2::integer[], "
                   "$3::float8[], $4::float8[], $5::float8[], $6::integer[], $7::text[]) "
                   "AS t",
                   &p);
    for (int i = 0; i < 6; i++)
        free(arrays[i]);
    return frc == 0 ? STORE_OK : failed(c);
}

/* 3. the aggregate of (run, split, step): created empty, locked, read */
static int pg_load_aggregate(store_txn *t, const store_evaluation *ev, const char *split,
                             const char *loss_params_json, store_stored_aggregate *out)
{
    pg_call *c = t->c;
    pg_params p = {0};
    p_text(&p, ev->run);
    p_text(&p, split);
    p_int(&p, ev->step);
    p_text(&p, loss_params_json);
    p_int(&p, (int64_t)ev->h);
    p_int(&p, (int64_t)ev->w);
    p_int(&p, ev->timestamp_ms);
    if (exec(c, "aggregate",
             "INSERT INTO segloss_aggregates(run, split, step, stats, loss_params, evaluations, "
             "h, w, updated_ms) VALUES($1, $2, $3, NULL, $4, 0, $5, $6, $7) "
             "ON CONFLICT(run, split, step) DO NOTHING",
             &p) != 0)
        return failed(c);
    p.n = 3;
    PGresult *r = run(c, "aggregate",
                      "SELECT stats, loss_params, h, w FROM segloss_aggregates "
                      "WHERE run = $1 AND split = $2 AND step = $3 FOR UPDATE",
                      &p);
    if (!r)
        return failed(c);
    int rc = 1;
    if (PQntuples(r) != 1) {
        snprintf(c->err, c->err_len, "runs store: the aggregate row of run \"%s\" vanished",
                 ev->run);
        rc = STORE_FAILED;
    } else if (PQgetisnull(r, 0, 0)) {
        rc = 0; /* made just now by this transaction */
    } else {
        int oom = 0;
        size_t len;
        uint8_t *bytes = get_bytes(r, 0, 0, &len, &oom);
        out->loss_params_json = get_strdup(r, 0, 1);
        out->h = (size_t)get_i64(r, 0, 2);
        out->w = (size_t)get_i64(r, 0, 3);
        if (bytes && segloss_stats_deserialize(bytes, len, &out->stats) != 0)
            out->stats = NULL;
        free(bytes);
    }
    PQclear(r);
    return rc;
}

/* 3b. merged (store_record.c) and written back */
static int pg_save_aggregate(store_txn *t, const store_evaluation *ev, const char *split,
                             const uint8_t *stats, size_t stats_len, const char *loss_params_json,
                             size_t h, size_t w)
{
    (void)loss_params_json; /* written with the row (pg_load_aggregate) */
    pg_call *c = t->c;
    pg_params p = {0};
    p_text(&p, ev->run);
    p_text(&p, split);
    p_int(&p, ev->step);
    p_bytes(&p, stats, stats_len);
    p_int(&p, (int64_t)h);
    p_int(&p, (int64_t)w);
    p_int(&p, ev->timestamp_ms);
    return step_exec(c, "aggregate",
                     "UPDATE segloss_aggregates SET stats = $4, evaluations = evaluations + 1, "
                     "h = $5, w = $6, updated_ms = $7 "
                     "WHERE run = $1 AND split = $2 AND step = $3",
                     &p);
}

static int pg_put_history(store_txn *t, const store_evaluation *ev, const char *split,
                          const double values[STORE_HISTORY_KEY_COUNT])
{
    pg_call *c = t->c;
    char keys[64], vals[STORE_HISTORY_KEY_COUNT * 32 + 8];
    history_values(values, keys, sizeof keys, vals, sizeof vals);
    pg_params p = {0};
    p_text(&p, ev->run);
    p_text(&p, split);
    p_int(&p, ev->step);
    p_int(&p, ev->timestamp_ms);
    p_text(&p, keys);
    p_text(&p, vals);
    return step_exec(c, "history",
                     "INSERT INTO segloss_history(run, split, key, step, value, timestamp_ms) "
                     "SELECT $1, $2, t.k, $3, t.v, $4 "
                     "FROM unnest($5::integer[], $6::float8[]) WITH ORDINALITY AS t(k, v, o) "
                     "ORDER BY t.o "
                     "ON CONFLICT(run, split, key, step) DO UPDATE SET value = excluded.value, "
                     "timestamp_ms = excluded.timestamp_ms",
                     &p);
}

/* Items and figures go with their evaluation (ON DELETE CASCADE). */
static int pg_retain(store_txn *t, const char *run_name, size_t keep)
{
    pg_call *c = t->c;
    pg_params p = {0};
    p_text(&p, run_name);
    p_int(&p, (int64_t)keep);
    return step_exec(c, "retention",
                     "DELETE FROM segloss_evaluations WHERE run = $1 AND seq <= "
                     "(SELECT seq FROM segloss_evaluations WHERE run = $1 ORDER BY seq DESC "
                     "LIMIT 1 OFFSET $2)",
                     &p);
}

/* 4. the run's revision, taken while its row is locked */
static int pg_finish_run(store_txn *t, const store_evaluation *ev)
{
    pg_call *c = t->c;
    pg_params p = {0};
    p_text(&p, ev->run);
    return step_exec(c, "revision",
                     "UPDATE segloss_runs SET revision = nextval('segloss_revisions') "
                     "WHERE name = $1",
                     &p);
}

static int pg_commit(store_txn *t)
{
    return step_exec(t->c, "commit", "COMMIT", NULL);
}

static void pg_rollback(store_txn *t)
{
    rollback(t->c);
}

/* --- queries ------------------------------------------------------------------------------- */

#define RUN_COLUMNS "name, created_ms, updated_ms, last_step, evaluations, revision"

static void read_run_info(const PGresult *r, int row, store_run_info *info)
{
    info->name = get_strdup(r, row, 0);
    info->created_ms = get_i64(r, row, 1);
    info->updated_ms = get_i64(r, row, 2);
    info->last_step = get_i64(r, row, 3);
    info->evaluations = (uint64_t)get_i64(r, row, 4);
    info->revision = (uint64_t)get_i64(r, row, 5);
}

typedef struct list_arg {
    const char *after;
    size_t max_results;
    store_run_list *out;
} list_arg;

static int list_txn(pg_call *c, void *arg)
{
    list_arg *a = arg;
    store_run_list_free(a->out);
    pg_params p = {0};
    p_text(&p, a->after);
    p_int(&p, (int64_t)a->max_results + 1);
    PGresult *r = run(c, "list runs",
                      "SELECT " RUN_COLUMNS ", (SELECT string_agg(DISTINCT g.split, ',') "
                      "FROM segloss_aggregates g WHERE g.run = r.name) "
                      "FROM segloss_runs r WHERE name > $1 ORDER BY name LIMIT $2",
                      &p);
    if (!r)
        return failed(c);
    int rows = PQntuples(r);
    store_run_list *out = a->out;
    out->runs = calloc(a->max_results + 1, sizeof *out->runs);
    if (!out->runs) {
        PQclear(r);
        snprintf(c->err, c->err_len, "runs store: out of memory");
        return STORE_FAILED;
    }
    for (int i = 0; i < rows && out->count < a->max_results; i++) {
        read_run_info(r, i, &out->runs[out->count]);
        out->runs[out->count++].splits = get_strdup(r, i, 6);
    }
    if ((size_t)rows > a->max_results) {
        const char *last = out->runs[a->max_results - 1].name;
        out->next_page_token = last ? malloc(2 * strlen(last) + 1) : NULL;
        if (out->next_page_token)
            store__hex_encode((const uint8_t *)last, strlen(last), out->next_page_token);
    }
    PQclear(r);
    return STORE_OK;
}

static int pg_list_runs(store *base, size_t max_results, const char *page_token,
                        store_run_list *out, char *err, size_t err_len)
{
    char after[NAMES_RUN_MAX + 1] = "";
    if (page_token && *page_token) {
        size_t n = strlen(page_token) / 2;
        if (n == 0 || n >= sizeof after ||
            store__hex_decode(page_token, (uint8_t *)after, n) != 0 ||
            (after[n] = '\0', !names_run_ok(after))) {
            snprintf(err, err_len, "page_token is not one this server gave out");
            return STORE_INVALID;
        }
    }
    list_arg a = {.after = after, .max_results = max_results, .out = out};
    int rc = with_connection(as_pg(base), list_txn, &a, err, err_len);
    if (rc != STORE_OK)
        store_run_list_free(out);
    return rc;
}

/* A consistent snapshot for the reads of one answer. */
#define BEGIN_READ "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

typedef struct summary_arg {
    const char *run;
    store_run_summary *out;
} summary_arg;

static int summary_txn(pg_call *c, void *arg)
{
    summary_arg *a = arg;
    store_run_summary *out = a->out;
    store_run_summary_free(out);
    PGresult *r = NULL;
    int rc = STORE_FAILED;
    if (exec(c, "begin", BEGIN_READ, NULL) != 0)
        goto fail;
    pg_params p = {0};
    p_text(&p, a->run);
    if (!(r = run(c, "run summary",
                  "SELECT " RUN_COLUMNS ", class_names FROM segloss_runs WHERE name = $1", &p)))
        goto fail;
    if (PQntuples(r) == 0) {
        snprintf(c->err, c->err_len, "no run named \"%s\"", a->run);
        rc = STORE_NOT_FOUND;
        goto fail;
    }
    read_run_info(r, 0, &out->info);
    out->class_names_json = get_strdup(r, 0, 6);
    PQclear(r);
    if (!(r = run(c, "run summary",
                  "SELECT DISTINCT ON (split) split, step, stats, loss_params, evaluations, h, w, "
                  "updated_ms FROM segloss_aggregates WHERE run = $1 AND stats IS NOT NULL "
                  "ORDER BY split, step DESC",
                  &p)))
        goto fail;
    int rows = PQntuples(r);
    out->splits = calloc((size_t)rows + 1, sizeof *out->splits);
    if (!out->splits)
        goto oom;
    for (int i = 0; i < rows; i++) {
        store_split_summary *sp = &out->splits[out->split_count++];
        int oom = 0;
        size_t len;
        sp->split = get_strdup(r, i, 0);
        sp->step = get_i64(r, i, 1);
        uint8_t *bytes = get_bytes(r, i, 2, &len, &oom);
        int bad = !bytes || segloss_stats_deserialize(bytes, len, &sp->stats) != 0;
        free(bytes);
        if (oom)
            goto oom;
        if (bad) {
            snprintf(c->err, c->err_len, "runs store: the aggregate of run \"%s\" is unreadable",
                     a->run);
            goto fail;
        }
        sp->loss_params_json = get_strdup(r, i, 3);
        sp->evaluations = (uint64_t)get_i64(r, i, 4);
        sp->h = (size_t)get_i64(r, i, 5);
        sp->w = (size_t)get_i64(r, i, 6);
        sp->updated_ms = get_i64(r, i, 7);
        if (!sp->split || !sp->loss_params_json)
            goto oom;
    }
    PQclear(r);
    r = NULL;
    for (size_t i = 0; i < out->split_count; i++) {
        store_split_summary *sp = &out->splits[i];
        sp->latest = calloc(STORE_LATEST_IDS, sizeof *sp->latest);
        if (!sp->latest)
            goto oom;
        p = (pg_params){0};
        p_text(&p, a->run);
        p_text(&p, sp->split);
        p_int(&p, STORE_LATEST_IDS);
        if (!(r = run(c, "run summary",
                      "SELECT id, step, timestamp_ms, n, items FROM segloss_evaluations "
                      "WHERE run = $1 AND split = $2 ORDER BY seq DESC LIMIT $3",
                      &p)))
            goto fail;
        for (int k = 0; k < PQntuples(r) && sp->latest_count < STORE_LATEST_IDS; k++) {
            store_evaluation_ref *ref = &sp->latest[sp->latest_count++];
            snprintf(ref->id, sizeof ref->id, "%s", PQgetvalue(r, k, 0));
            ref->step = get_i64(r, k, 1);
            ref->timestamp_ms = get_i64(r, k, 2);
            ref->n = (size_t)get_i64(r, k, 3);
            ref->items = (size_t)get_i64(r, k, 4);
            ref->has_overlay = ref->items > 0;
        }
        PQclear(r);
        r = NULL;
    }
    if (exec(c, "commit", "COMMIT", NULL) != 0)
        goto fail;
    return STORE_OK;
oom:
    snprintf(c->err, c->err_len, "runs store: out of memory");
fail:
    return read_failed(c, r, rc);
}

static int pg_run_summary(store *base, const char *run_name, store_run_summary *out, char *err,
                          size_t err_len)
{
    summary_arg a = {.run = run_name, .out = out};
    int rc = with_connection(as_pg(base), summary_txn, &a, err, err_len);
    if (rc != STORE_OK)
        store_run_summary_free(out);
    return rc;
}

typedef struct history_arg {
    const store_history_query *q;
    int64_t after_step, after_seq;
    store_history *out;
} history_arg;

static int history_txn(pg_call *c, void *arg)
{
    history_arg *a = arg;
    const store_history_query *q = a->q;
    store_history *out = a->out;
    store_history_free(out);
    PGresult *r = NULL;
    int rc = STORE_FAILED;
    uint32_t mask = q->key_mask ? q->key_mask : (1u << STORE_HISTORY_KEY_COUNT) - 1;
    if (exec(c, "begin", BEGIN_READ, NULL) != 0)
        goto fail;
    pg_params p = {0};
    p_text(&p, q->run);
    if (!(r = run(c, "history", "SELECT 1 FROM segloss_runs WHERE name = $1", &p)))
        goto fail;
    if (PQntuples(r) == 0) {
        snprintf(c->err, c->err_len, "no run named \"%s\"", q->run);
        rc = STORE_NOT_FOUND;
        goto fail;
    }
    PQclear(r);
    p_text(&p, q->split ? q->split : STORE_DEFAULT_SPLIT);
    p_int(&p, q->has_since_step ? q->since_step : INT64_MIN);
    p_int(&p, a->after_step);
    p_int(&p, a->after_seq);
    p_int(&p, mask);
    p_int(&p, (int64_t)q->max_results + 1);
    if (!(r = run(c, "history",
                  "SELECT key, value, step, timestamp_ms, seq FROM segloss_history "
                  "WHERE run = $1 AND split = $2 AND step >= $3 "
                  "AND (step > $4 OR (step = $4 AND seq > $5)) "
                  "AND (($6::bigint >> key) & 1) = 1 ORDER BY step, seq LIMIT $7",
                  &p)))
        goto fail;
    out->points = calloc(q->max_results + 1, sizeof *out->points);
    if (!out->points)
        goto oom;
    int rows = PQntuples(r);
    int64_t last_seq = -1;
    for (int i = 0; i < rows; i++) {
        if (out->count == q->max_results) {
            out->next_page_token = store__history_token(out->points[out->count - 1].step, last_seq);
            if (!out->next_page_token)
                goto oom;
            break;
        }
        int key = (int)get_i64(r, i, 0);
        store_history_point *pt = &out->points[out->count++];
        pt->key = key >= 0 && key < STORE_HISTORY_KEY_COUNT ? store_history_keys[key] : "?";
        pt->has_value = !PQgetisnull(r, i, 1);
        pt->value = pt->has_value ? strtod(PQgetvalue(r, i, 1), NULL) : (double)NAN;
        pt->step = get_i64(r, i, 2);
        pt->timestamp_ms = get_i64(r, i, 3);
        last_seq = get_i64(r, i, 4);
    }
    PQclear(r);
    r = NULL;
    if (exec(c, "commit", "COMMIT", NULL) != 0)
        goto fail;
    return STORE_OK;
oom:
    snprintf(c->err, c->err_len, "runs store: out of memory");
fail:
    return read_failed(c, r, rc);
}

static int pg_history(store *base, const store_history_query *q, store_history *out, char *err,
                      size_t err_len)
{
    history_arg a = {.q = q, .after_step = INT64_MIN, .after_seq = -1, .out = out};
    if (q->page_token && *q->page_token &&
        store__history_token_parse(q->page_token, &a.after_step, &a.after_seq) != 0) {
        snprintf(err, err_len, "page_token is not one this server gave out");
        return STORE_INVALID;
    }
    int rc = with_connection(as_pg(base), history_txn, &a, err, err_len);
    if (rc != STORE_OK)
        store_history_free(out);
    return rc;
}

static double get_real(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? (double)NAN : strtod(PQgetvalue(r, row, col), NULL);
}

typedef struct items_arg {
    const store_items_query *q;
    store_item_list *out;
} items_arg;

static int items_txn(pg_call *c, void *arg)
{
    items_arg *a = arg;
    const store_items_query *q = a->q;
    store_item_list *out = a->out;
    store_item_list_free(out);
    PGresult *r = NULL;
    int rc = STORE_FAILED;
    if (exec(c, "begin", BEGIN_READ, NULL) != 0)
        goto fail;
    pg_params p = {0};
    p_text(&p, q->run);
    if (!(r = run(c, "items", "SELECT 1 FROM segloss_runs WHERE name = $1", &p)))
        goto fail;
    if (PQntuples(r) == 0) {
        snprintf(c->err, c->err_len, "no run named \"%s\"", q->run);
        rc = STORE_NOT_FOUND;
        goto fail;
    }
    PQclear(r);
    p_text(&p, q->split ? q->split : STORE_DEFAULT_SPLIT);
    if (q->has_step)
        p_int(&p, q->step);
    else
        p_text(&p, NULL);
    p_int(&p, (int64_t)q->sort);
    p_int(&p, q->descending ? -1 : 1);
    p_int(&p, (int64_t)q->limit);
    /* $3 NULL: the split's latest step with figures; $4 the sort column, $5 +1 or -1 */
    if (!(r = run(c, "items",
                  "WITH s(step) AS (SELECT coalesce($3::bigint, (SELECT max(e.step) FROM "
                  "  segloss_evaluations e WHERE e.run = $1 AND e.split = $2 AND EXISTS "
                  "  (SELECT 1 FROM segloss_item_figures g WHERE g.evaluation = e.seq)))), "
                  "f AS (SELECT e.id, g.item, e.items, g.accuracy, g.miou, g.mean_dice, "
                  "  g.present, g.iou, e.step, e.seq, CASE $4::integer WHEN 1 THEN g.accuracy "
                  "  WHEN 2 THEN g.mean_dice ELSE g.miou END AS v FROM segloss_evaluations e "
                  "  JOIN segloss_item_figures g ON g.evaluation = e.seq WHERE e.run = $1 "
                  "  AND e.split = $2 AND e.step = (SELECT step FROM s)) "
                  "SELECT id, item, items, accuracy, miou, mean_dice, present, iou, step, "
                  "(SELECT count(*) FROM f) FROM f "
                  "ORDER BY v IS NULL, v * $5::integer, seq, item LIMIT $6",
                  &p)))
        goto fail;
    int rows = PQntuples(r);
    out->rows = calloc(q->limit, sizeof *out->rows);
    if (!out->rows)
        goto oom;
    if (q->has_step) {
        out->has_step = true;
        out->step = q->step;
    }
    for (int i = 0; i < rows && out->count < q->limit; i++) {
        store_item_row *row = &out->rows[out->count];
        snprintf(row->id, sizeof row->id, "%s", PQgetvalue(r, i, 0));
        row->item = (size_t)get_i64(r, i, 1);
        row->has_overlay = (int64_t)row->item < get_i64(r, i, 2);
        row->accuracy = get_real(r, i, 3);
        row->miou = get_real(r, i, 4);
        row->mean_dice = get_real(r, i, 5);
        row->present = (size_t)get_i64(r, i, 6);
        if (!(row->iou_json = get_strdup(r, i, 7)))
            goto oom;
        out->count++;
        out->has_step = true;
        out->step = get_i64(r, i, 8);
        out->total = (uint64_t)get_i64(r, i, 9);
    }
    PQclear(r);
    r = NULL;
    if (exec(c, "commit", "COMMIT", NULL) != 0)
        goto fail;
    return STORE_OK;
oom:
    snprintf(c->err, c->err_len, "runs store: out of memory");
fail:
    return read_failed(c, r, rc);
}

static int pg_items(store *base, const store_items_query *q, store_item_list *out, char *err,
                    size_t err_len)
{
    items_arg a = {.q = q, .out = out};
    int rc = with_connection(as_pg(base), items_txn, &a, err, err_len);
    if (rc != STORE_OK)
        store_item_list_free(out);
    return rc;
}

typedef struct aggregates_arg {
    const store_aggregate_query *q;
    store_aggregate_list *out;
} aggregates_arg;

static int aggregates_txn(pg_call *c, void *arg)
{
    aggregates_arg *a = arg;
    const store_aggregate_query *q = a->q;
    store_aggregate_list *out = a->out;
    store_aggregate_list_free(out);
    PGresult *r = NULL;
    int rc = STORE_FAILED;
    if (exec(c, "begin", BEGIN_READ, NULL) != 0)
        goto fail;
    pg_params p = {0};
    p_text(&p, q->run);
    if (!(r = run(c, "aggregates", "SELECT 1 FROM segloss_runs WHERE name = $1", &p)))
        goto fail;
    if (PQntuples(r) == 0) {
        snprintf(c->err, c->err_len, "no run named \"%s\"", q->run);
        rc = STORE_NOT_FOUND;
        goto fail;
    }
    PQclear(r);
    p_text(&p, q->split ? q->split : STORE_DEFAULT_SPLIT);
    p_int(&p, q->from_step);
    p_int(&p, (int64_t)q->max_results);
    if (!(r = run(c, "aggregates",
                  "SELECT step, stats, loss_params, evaluations, updated_ms FROM "
                  "segloss_aggregates WHERE run = $1 AND split = $2 AND step >= $3 "
                  "AND stats IS NOT NULL ORDER BY step LIMIT $4",
                  &p)))
        goto fail;
    int rows = PQntuples(r);
    out->rows = calloc(q->max_results, sizeof *out->rows);
    if (!out->rows)
        goto oom;
    for (int i = 0; i < rows && out->count < q->max_results; i++) {
        store_aggregate *ag = &out->rows[out->count++];
        int oom = 0;
        size_t len;
        ag->step = get_i64(r, i, 0);
        uint8_t *bytes = get_bytes(r, i, 1, &len, &oom);
        ag->loss_params_json = get_strdup(r, i, 2);
        ag->evaluations = (uint64_t)get_i64(r, i, 3);
        ag->updated_ms = get_i64(r, i, 4);
        int bad = !bytes || !ag->loss_params_json ||
                  segloss_stats_deserialize(bytes, len, &ag->stats) != 0;
        free(bytes);
        if (oom)
            goto oom;
        if (bad) {
            snprintf(c->err, c->err_len,
                     "runs store: the aggregate of run \"%s\" step %" PRId64 " is unreadable",
                     q->run, ag->step);
            goto fail;
        }
    }
    PQclear(r);
    r = NULL;
    if (exec(c, "commit", "COMMIT", NULL) != 0)
        goto fail;
    return STORE_OK;
oom:
    snprintf(c->err, c->err_len, "runs store: out of memory");
fail:
    return read_failed(c, r, rc);
}

static int pg_aggregates(store *base, const store_aggregate_query *q, store_aggregate_list *out,
                         char *err, size_t err_len)
{
    aggregates_arg a = {.q = q, .out = out};
    int rc = with_connection(as_pg(base), aggregates_txn, &a, err, err_len);
    if (rc != STORE_OK)
        store_aggregate_list_free(out);
    return rc;
}

typedef struct answer_arg {
    const char *id;
    char **answer;
    size_t *len;
} answer_arg;

static int answer_txn(pg_call *c, void *arg)
{
    answer_arg *a = arg;
    pg_params p = {0};
    p_text(&p, a->id);
    PGresult *r = run(c, "evaluation", "SELECT answer FROM segloss_evaluations WHERE id = $1", &p);
    if (!r)
        return failed(c);
    int rc = STORE_OK;
    if (PQntuples(r) == 0) {
        snprintf(c->err, c->err_len, "no evaluation with id \"%s\" is stored", a->id);
        rc = STORE_NOT_FOUND;
    } else {
        size_t n = (size_t)PQgetlength(r, 0, 0);
        free(*a->answer);
        *a->answer = malloc(n + 1);
        if (*a->answer) {
            memcpy(*a->answer, PQgetvalue(r, 0, 0), n);
            (*a->answer)[n] = '\0';
            *a->len = n;
        } else {
            snprintf(c->err, c->err_len, "runs store: out of memory");
            rc = STORE_FAILED;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_evaluation(store *base, const char *id, char **answer, size_t *len, char *err,
                         size_t err_len)
{
    answer_arg a = {.id = id, .answer = answer, .len = len};
    return with_connection(as_pg(base), answer_txn, &a, err, err_len);
}

typedef struct overlay_arg {
    const char *id;
    size_t item;
    store_overlay_input *out;
} overlay_arg;

static int overlay_txn(pg_call *c, void *arg)
{
    overlay_arg *a = arg;
    store_overlay_input *out = a->out;
    store_overlay_input_free(out);
    pg_params p = {0};
    p_text(&p, a->id);
    p_int(&p, (int64_t)a->item);
    PGresult *r = run(c, "overlay",
                      "SELECT e.c, i.prediction, i.labels, i.image FROM segloss_evaluations e "
                      "JOIN segloss_items i ON i.evaluation = e.seq "
                      "WHERE e.id = $1 AND i.item = $2",
                      &p);
    if (!r)
        return failed(c);
    int rc = STORE_OK, oom = 0;
    if (PQntuples(r) == 1) {
        out->num_classes = (size_t)get_i64(r, 0, 0);
        out->owned[0] = get_bytes(r, 0, 1, &out->item.prediction_len, &oom);
        out->owned[1] = get_bytes(r, 0, 2, &out->item.labels_len, &oom);
        out->owned[2] = get_bytes(r, 0, 3, &out->item.image_len, &oom);
        out->item.prediction = out->owned[0];
        out->item.labels = out->owned[1];
        out->item.image = out->owned[2];
        if (oom) {
            snprintf(c->err, c->err_len, "runs store: out of memory");
            rc = STORE_FAILED;
        }
        PQclear(r);
        return rc;
    }
    PQclear(r);
    /* say whether the id or the item is what is missing */
    p.n = 1;
    if (!(r = run(c, "overlay", "SELECT n, items FROM segloss_evaluations WHERE id = $1", &p)))
        return failed(c);
    if (PQntuples(r) == 1 && get_i64(r, 0, 1) == 0)
        snprintf(c->err, c->err_len, "evaluation \"%s\" kept no overlay data", a->id);
    else if (PQntuples(r) == 1)
        snprintf(c->err, c->err_len,
                 "evaluation \"%s\" has overlays for items 0 to %" PRId64 "; item %zu has none",
                 a->id, get_i64(r, 0, 1) - 1, a->item);
    else
        snprintf(c->err, c->err_len, "no evaluation with id \"%s\" is stored", a->id);
    PQclear(r);
    return STORE_NOT_FOUND;
}

static int pg_overlay_input(store *base, const char *id, size_t item, store_overlay_input *out,
                            char *err, size_t err_len)
{
    overlay_arg a = {.id = id, .item = item, .out = out};
    int rc = with_connection(as_pg(base), overlay_txn, &a, err, err_len);
    if (rc != STORE_OK)
        store_overlay_input_free(out);
    return rc;
}

static int delete_txn(pg_call *c, void *arg)
{
    const char *run_name = arg;
    int rc = STORE_FAILED;
    PGresult *r = NULL;
    pg_params p = {0};
    p_text(&p, run_name);
    if (exec(c, "begin", "BEGIN", NULL) != 0)
        goto fail;
    /* the run's row first, as a record takes it: deletes and records of a run serialise */
    if (!(r = run(c, "delete run", "DELETE FROM segloss_runs WHERE name = $1 RETURNING revision",
                  &p)))
        goto fail;
    if (PQntuples(r) == 0) {
        snprintf(c->err, c->err_len, "no run named \"%s\"", run_name);
        rc = STORE_NOT_FOUND;
        goto fail;
    }
    pg_params rev = {0};
    p_int(&rev, get_i64(r, 0, 0));
    /* the global revision (a sum over the runs) must still grow: see the file comment */
    if (exec(c, "delete run", "DELETE FROM segloss_evaluations WHERE run = $1", &p) != 0 ||
        exec(c, "delete run", "DELETE FROM segloss_aggregates WHERE run = $1", &p) != 0 ||
        exec(c, "delete run", "DELETE FROM segloss_history WHERE run = $1", &p) != 0 ||
        exec(c, "delete run", "DELETE FROM segloss_idempotency_keys WHERE run = $1", &p) != 0 ||
        exec(c, "revision",
             "UPDATE segloss_meta SET value = value + $1 + nextval('segloss_revisions') "
             "WHERE key = 'deleted'",
             &rev) != 0 ||
        exec(c, "commit", "COMMIT", NULL) != 0)
        goto fail;
    PQclear(r);
    return STORE_OK;
fail:
    return read_failed(c, r, rc);
}

static int pg_delete_run(store *base, const char *run_name, char *err, size_t err_len)
{
    return with_connection(as_pg(base), delete_txn, (void *)(uintptr_t)run_name, err, err_len);
}

typedef struct revision_arg {
    const char *run;
    uint64_t *out;
} revision_arg;

static int revision_txn(pg_call *c, void *arg)
{
    revision_arg *a = arg;
    pg_params p = {0};
    p_text(&p, a->run);
    PGresult *r = a->run
                      ? run(c, "revision", "SELECT revision FROM segloss_runs WHERE name = $1", &p)
                      : run(c, "revision",
                            "SELECT value + (SELECT coalesce(sum(revision), 0)::bigint "
                            "FROM segloss_runs) FROM segloss_meta WHERE key = 'deleted'",
                            NULL);
    if (!r)
        return failed(c);
    int rc = STORE_OK;
    if (PQntuples(r) == 1) {
        *a->out = (uint64_t)get_i64(r, 0, 0);
    } else {
        snprintf(c->err, c->err_len, "no run named \"%s\"", a->run ? a->run : "");
        rc = STORE_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

static int pg_revision(store *base, const char *run_name, uint64_t *out, char *err, size_t err_len)
{
    revision_arg a = {.run = run_name, .out = out};
    return with_connection(as_pg(base), revision_txn, &a, err, err_len);
}

static int disk_txn(pg_call *c, void *arg)
{
    uint64_t *out = arg;
    PGresult *r = run(c, "disk bytes",
                      "SELECT pg_total_relation_size('segloss_meta') + "
                      "pg_total_relation_size('segloss_runs') + "
                      "pg_total_relation_size('segloss_evaluations') + "
                      "pg_total_relation_size('segloss_items') + "
                      "pg_total_relation_size('segloss_aggregates') + "
                      "pg_total_relation_size('segloss_history')",
                      NULL);
    if (!r)
        return failed(c);
    *out = (uint64_t)get_i64(r, 0, 0);
    PQclear(r);
    return STORE_OK;
}

/* Bytes of the store's tables with their indexes and TOAST (not the whole database's). */
static int pg_disk_bytes(store *base, uint64_t *out)
{
    char err[256];
    return with_connection(as_pg(base), disk_txn, out, err, sizeof err);
}

static void pg_close(store *base)
{
    pg_store *s = as_pg(base);
    for (int i = 0; i < PG_POOL_SIZE; i++)
        PQfinish(s->conns[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->freed);
    free(s->conninfo);
    free(s->shown);
    free(s);
}

/* --- open and migrate --------------------------------------------------------------------- */

/* Brings the schema up to MIGRATION_COUNT, one transaction per migration, under the lock. */
static int migrate_txn(pg_call *c, void *arg)
{
    (void)arg;
    PGresult *r = NULL;
    int rc = STORE_FAILED;
    bool locked = false, untimed = false;
    char lock_sql[128], unlock_sql[128], timeout[32];
    snprintf(lock_sql, sizeof lock_sql,
             "SELECT pg_advisory_lock(%d, hashtext(coalesce(current_schema(), '')))",
             PG_MIGRATION_LOCK_KEY);
    snprintf(unlock_sql, sizeof unlock_sql,
             "SELECT pg_advisory_unlock(%d, hashtext(coalesce(current_schema(), '')))",
             PG_MIGRATION_LOCK_KEY);
    /* the lock may be held by another replica that is migrating: wait for it, and migrate, with
     * no statement timeout; the connection's own is put back afterwards */
    if (!(r = run(c, "statement timeout", "SELECT current_setting('statement_timeout')", NULL)))
        goto fail;
    snprintf(timeout, sizeof timeout, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;
    if (exec(c, "statement timeout", "SET statement_timeout = 0", NULL) != 0)
        goto fail;
    untimed = true;
    if (exec(c, "migration lock", lock_sql, NULL) != 0)
        goto fail;
    locked = true;
    if (exec(c, "schema",
             "CREATE TABLE IF NOT EXISTS segloss_schema_version("
             "version integer NOT NULL)",
             NULL) != 0)
        goto fail;
    for (;;) {
        if (exec(c, "begin", "BEGIN", NULL) != 0)
            goto fail;
        if (!(r = run(c, "schema", "SELECT coalesce(max(version), 0) FROM segloss_schema_version",
                      NULL)))
            goto fail;
        int version = (int)get_i64(r, 0, 0);
        PQclear(r);
        r = NULL;
        if (version > MIGRATION_COUNT) {
            snprintf(c->err, c->err_len,
                     "runs store: PostgreSQL at %s has schema version %d; this seglossd knows up "
                     "to %d (use a newer seglossd or another database or schema)",
                     c->s->shown, version, MIGRATION_COUNT);
            goto fail;
        }
        if (version == MIGRATION_COUNT)
            break;
        char bump[96];
        snprintf(bump, sizeof bump, "INSERT INTO segloss_schema_version(version) VALUES(%d)",
                 version + 1);
        /* several statements in one string: the simple query protocol, no parameters */
        PGresult *m = PQexec(c->conn, migrations[version]);
        if (PQresultStatus(m) != PGRES_COMMAND_OK) {
            c->failure = classify(c->conn, m);
            snprintf(c->err, c->err_len, "runs store: migrating to version %d: %s", version + 1,
                     PQresultErrorMessage(m));
            trim(c->err);
            PQclear(m);
            goto fail;
        }
        PQclear(m);
        if (exec(c, "schema", bump, NULL) != 0 || exec(c, "commit", "COMMIT", NULL) != 0)
            goto fail;
    }
    if (exec(c, "commit", "COMMIT", NULL) != 0 || exec(c, "migration lock", unlock_sql, NULL) != 0)
        goto fail;
    pg_params p = {0};
    p_text(&p, timeout);
    if (exec(c, "statement timeout", "SELECT set_config('statement_timeout', $1, false)", &p) != 0)
        goto fail;
    return STORE_OK;
fail:
    PQclear(r);
    if (c->failure == PGF_GONE)
        rc = STORE_UNAVAILABLE;
    rollback(c);
    if (locked && PQstatus(c->conn) == CONNECTION_OK)
        PQclear(PQexec(c->conn, unlock_sql));
    if (untimed && PQstatus(c->conn) == CONNECTION_OK) {
        /* a connection left without its timeout is not given back to the pool */
        PQfinish(c->conn);
        c->conn = NULL;
    }
    return rc;
}

static int pg_open(const store_options *opt, store **out, char *err, size_t err_len)
{
    *out = NULL;
    pg_store *s = calloc(1, sizeof *s);
    if (!s || !(s->conninfo = strdup(opt->location)) || !(s->shown = redact_url(opt->location))) {
        if (s) {
            free(s->conninfo);
            free(s);
        }
        snprintf(err, err_len, "runs store: out of memory");
        return STORE_FAILED;
    }
    s->base.ops = NULL;
    s->base.retain_evaluations = opt->retain_evaluations;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->freed, NULL);
    /* a bad URL is refused here rather than by each later connect */
    char *parse_err = NULL;
    PQconninfoOption *parsed = PQconninfoParse(opt->location, &parse_err);
    if (!parsed) {
        snprintf(err, err_len, "runs store: bad PostgreSQL URL %s: %s", s->shown,
                 parse_err ? parse_err : "out of memory");
        trim(err);
        PQfreemem(parse_err);
        pg_close(&s->base);
        return STORE_FAILED;
    }
    PQconninfoFree(parsed);
    s->base.ops = &postgres_ops;
    int rc = with_connection(s, migrate_txn, NULL, err, err_len);
    if (rc != STORE_OK) {
        pg_close(&s->base);
        /* the daemon cannot start without its store; say so rather than 503 forever */
        return STORE_FAILED;
    }
    *out = &s->base;
    return STORE_OK;
}

static const store_ops postgres_ops = {
    .name = "postgres",
    .close = pg_close,
    .record_transaction = pg_record_transaction,
    .record = {.begin = pg_begin,
               .claim_key = pg_claim_key,
               .insert_evaluation = pg_insert_evaluation,
               .insert_items = pg_insert_items,
               .insert_figures = pg_insert_figures,
               .load_aggregate = pg_load_aggregate,
               .save_aggregate = pg_save_aggregate,
               .put_history = pg_put_history,
               .retain = pg_retain,
               .finish_run = pg_finish_run,
               .commit = pg_commit,
               .rollback = pg_rollback},
    .list_runs = pg_list_runs,
    .run_summary = pg_run_summary,
    .history = pg_history,
    .evaluation = pg_evaluation,
    .overlay_input = pg_overlay_input,
    .delete_run = pg_delete_run,
    .revision = pg_revision,
    .disk_bytes = pg_disk_bytes,
    .items = pg_items,
    .aggregates = pg_aggregates,
};

static bool pg_accepts(const char *location)
{
    return strncmp(location, "postgres://", 11) == 0 || strncmp(location, "postgresql://", 13) == 0;
}

const store_backend store_postgres_backend = {
    .name = "postgres", .accepts = pg_accepts, .open = pg_open};
