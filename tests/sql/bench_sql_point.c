/*
** tests/sql/bench_sql_point.c: the point-select rate of the sql/ engine
** alone (no wire, no gateway): what the per-transaction catalog version
** check costs. Not a test: it prints figures and never fails on timing.
**
**   sql_point_bench [--dir PATH] [--threads N] [--seconds S] [--rows N] [--ops N]
**                   [--mode simple|prepared]
**
** --dir: RocksDB store in PATH (default: the in-memory storage twin).
** Each thread owns one session and runs, for S seconds each:
**   simple:   sqlv_session_exec("SELECT balance FROM bench WHERE id = k")
**   prepared: Bind/Execute/Sync of a statement prepared once
** --ops N: N statements per thread and mode instead of S seconds (to count
** instructions under valgrind, stable where timing is not).
** Limits: BENCH_THREADS_MAX threads.
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "sql/sql.h"

#define BENCH_THREADS_MAX 64
#define BENCH_LOAD_BATCH 500

typedef struct worker {
    pthread_t thread;
    sqlv_engine *engine;
    int mode; /* 0 simple, 1 prepared */
    long rows;
    uint64_t seed;
    int64_t deadline_ns;
    uint64_t ops; /* 0: until the deadline */
    uint64_t done, errors;
} worker;

static int q_error(void *ctx, const char *state, const char *msg) {
    worker *w = ctx;
    if (w->errors++ == 0) fprintf(stderr, "error %s %s\n", state, msg);
    return 0;
}
static int q_ok2(void *ctx, int n, const sqlv_column *c) {
    (void)ctx, (void)n, (void)c;
    return 0;
}
static int q_row(void *ctx, int n, const sqlv_cell *c) {
    (void)ctx, (void)n, (void)c;
    return 0;
}
static int q_tag(void *ctx, const char *tag) {
    (void)ctx, (void)tag;
    return 0;
}

static uint64_t next_rand(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void *work(void *arg) {
    worker *w = arg;
    sqlv_session *s = NULL;
    sqlv_sink sink = {.ctx = w, .row_description = q_ok2, .data_row = q_row,
                      .command_complete = q_tag, .error = q_error};
    char q[128];
    if (sqlv_session_open(w->engine, "root", "defaultdb", &s) != SQLV_OK) {
        w->errors++;
        return NULL;
    }
    if (w->mode == 1) {
        const char *ps = "SELECT balance FROM bench WHERE id = $1";
        if (sqlv_session_prepare(s, "p", ps, strlen(ps), 0, NULL, &sink) != SQLV_OK) w->errors++;
    }
    while (w->ops ? w->done < w->ops : base_monotonic_ns() < w->deadline_ns) {
        for (int i = 0; i < 100; i++) {
            long k = (long)(next_rand(&w->seed) % (uint64_t)w->rows);
            if (w->mode == 0) {
                int n = snprintf(q, sizeof(q), "SELECT balance FROM bench WHERE id = %ld", k);
                sqlv_session_exec(s, q, (size_t)n, &sink);
            } else {
                int n = snprintf(q, sizeof(q), "%ld", k);
                sqlv_cell v = {q, (size_t)n};
                sqlv_session_bind(s, "", "p", 1, &v, 0, NULL, 0, NULL, &sink);
                sqlv_session_execute(s, "", 0, &sink);
                sqlv_session_sync(s, &sink);
            }
            w->done++;
        }
    }
    sqlv_session_close(s);
    return NULL;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    int threads = 1;
    double seconds = 3;
    long rows = 10000;
    uint64_t ops = 0;
    int only = -1; /* --mode: one of the two */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
        else if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--rows") == 0) rows = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--ops") == 0) ops = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--mode") == 0) only = strcmp(argv[i + 1], "prepared") == 0;
    }
    if (threads < 1 || threads > BENCH_THREADS_MAX || rows < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    base_log_set_level(BASE_LOG_WARN);
    hlc_clock *clock = NULL;
    storage_engine *st = NULL;
    txn_db *db = NULL;
    sqlv_engine *e = NULL;
    storage_options so = {.dir = dir, .create_if_missing = true};
    if (hlc_clock_new(hlc_system_clock(), HLC_DEFAULT_MAX_OFFSET_NS, &clock) != 0 ||
        storage_open(&so, &st) != STORAGE_OK) {
        fprintf(stderr, "cannot open storage\n");
        return 1;
    }
    txn_db_options o = {.engine = st, .clock = clock, .sync_commits = false};
    if (txn_db_open(&o, &db) != TXN_OK || sqlv_engine_open(db, &e) != SQLV_OK) {
        fprintf(stderr, "cannot open the engine\n");
        return 1;
    }
    /* setup: the table and its rows, BENCH_LOAD_BATCH per statement */
    {
        worker w0 = {0};
        sqlv_sink sink = {.ctx = &w0, .row_description = q_ok2, .data_row = q_row,
                          .command_complete = q_tag, .error = q_error};
        sqlv_session *s = NULL;
        base_buf q = {0};
        if (sqlv_session_open(e, "root", "defaultdb", &s) != SQLV_OK) return 1;
        const char *ddl = "DROP TABLE IF EXISTS bench; "
                          "CREATE TABLE bench (id INT PRIMARY KEY, balance INT)";
        sqlv_session_exec(s, ddl, strlen(ddl), &sink);
        for (long k = 0; k < rows; k += BENCH_LOAD_BATCH) {
            base_buf_reset(&q);
            base_buf_printf(&q, "INSERT INTO bench VALUES ");
            for (long j = k; j < k + BENCH_LOAD_BATCH && j < rows; j++)
                base_buf_printf(&q, "%s(%ld, %ld)", j > k ? "," : "", j, j * 10);
            sqlv_session_exec(s, (const char *)q.data, q.len, &sink);
        }
        base_buf_free(&q);
        sqlv_session_close(s);
        if (w0.errors) return 1;
    }
    static const char *const names[] = {"simple", "prepared"};
    for (int mode = 0; mode < 2; mode++) {
        if (only >= 0 && mode != only) continue;
        worker w[BENCH_THREADS_MAX];
        memset(w, 0, sizeof(w));
        int64_t start = base_monotonic_ns();
        for (int i = 0; i < threads; i++) {
            w[i].engine = e;
            w[i].mode = mode;
            w[i].rows = rows;
            w[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
            w[i].deadline_ns = start + (int64_t)(seconds * 1e9);
            w[i].ops = ops;
            pthread_create(&w[i].thread, NULL, work, &w[i]);
        }
        uint64_t done = 0, errors = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(w[i].thread, NULL);
            done += w[i].done;
            errors += w[i].errors;
        }
        double el = (double)(base_monotonic_ns() - start) / 1e9;
        printf("point-select %-8s threads=%d storage=%s: %.0f/s (%llu in %.2f s, %llu errors)\n",
               names[mode], threads, dir ? "rocksdb" : "memory", (double)done / el,
               (unsigned long long)done, el, (unsigned long long)errors);
    }
    sqlv_engine_close(e);
    txn_db_close(db);
    storage_close(st);
    hlc_clock_free(clock);
    return 0;
}
