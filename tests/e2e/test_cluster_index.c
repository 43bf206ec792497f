/*
** tests/e2e/test_cluster_index.c: secondary indexes on a 3-node cluster of
** real `meridian` processes (issue 8; sql/index.c, docs/sql.md "Indexes").
**
** In order, on one cluster (e2e_cluster.h):
**   - a table filled through node 1 and split into two ranges (ALTER TABLE
**     ... SPLIT AT), so a row and its index entry may lie in different
**     ranges (their writes commit by two-phase commit);
**   - CREATE INDEX through node 2 while a client on node 3 keeps inserting
**     and updating rows (retrying 40001: the index's schema changes abort
**     transactions that overlap them); then, through every node, each
**     value finds through the index exactly the rows a full scan finds;
**   - CREATE UNIQUE INDEX through node 3, a duplicate through node 1
**     refused with 23505 and its DETAIL, NULLs accepted;
**   - psql's \di and \d t through node 1 list the indexes; one dropped
**     through node 2 is gone on node 3.
** Every wait is bounded (CLUSTER_*_MS, WRITER_RUN_MS, TXN_TRIES_MAX).
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>

#define NODES 3
#define ROWS 3000            /* rows of the table, ids 1..ROWS, b = id % MOD */
#define MOD 20
#define WRITER_RUN_MS 8000   /* the writer stops by then at the latest */
#define TXN_TRIES_MAX 50     /* attempts of one write */
#define E2E_CMD_TIMEOUT_MS (60 * 1000)

#include "e2e_cluster.h"

static const char *state_of(PGresult *r) {
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s != NULL ? s : "";
}

static bool retryable(const char *state) {
    return strcmp(state, "40001") == 0 || strcmp(state, "40003") == 0 ||
           strcmp(state, "57P03") == 0;
}

/* sql until it succeeds, retrying retryable failures (bounded). */
static bool exec_retry(PGconn *c, const char *sql, char *error, size_t size) {
    for (int attempt = 0; attempt < TXN_TRIES_MAX; attempt++) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        char state[8];
        snprintf(state, sizeof state, "%s", state_of(r));
        if (!ok && !retryable(state))
            snprintf(error, size, "%s: %s %s", sql, state, PQresultErrorMessage(r));
        PQclear(r);
        if (ok) return true;
        if (!retryable(state)) return false;
    }
    snprintf(error, size, "%s: still retrying after %d attempts", sql, TXN_TRIES_MAX);
    return false;
}

/* Through every node: each value of b finds through the index the rows a
** full scan (b + 0, which no index serves) finds. */
static void check_consistent(void) {
    for (int n = 0; n < NODES; n++) {
        PGconn *c = conn(n);
        for (int v = 0; v < MOD + 2; v++) {
            char q1[128], q2[128];
            snprintf(q1, sizeof q1, "SELECT id FROM t WHERE b = %d ORDER BY id", v);
            snprintf(q2, sizeof q2, "SELECT id FROM t WHERE b + 0 = %d ORDER BY id", v);
            char *a = e2e_rows(c, q1), *s = e2e_rows(c, q2);
            if (strcmp(a, s) != 0)
                print_error("node %d, b = %d:\nindex: %s\nscan: %s\n", n + 1, v, a, s);
            assert_string_equal(a, s);
            base_free(a);
            base_free(s);
        }
        PQfinish(c);
    }
}

/* ---- a writer on node 3 while the index is built --------------------------------- */

typedef struct writer {
    pthread_t thread;
    _Atomic int stop;
    int writes, retries;
    char error[512]; /* "" none; the main thread reports it */
} writer;

static void *writer_main(void *arg) {
    writer *w = arg;
    PGconn *c = mtest_connect(&nodes[2]);
    if (c == NULL) {
        snprintf(w->error, sizeof w->error, "cannot connect to node 3");
        return NULL;
    }
    int64_t stop_at = now_ms() + WRITER_RUN_MS;
    for (int i = 0; !w->stop && now_ms() < stop_at; i++) {
        char sql[160];
        if (i % 2 == 0)
            snprintf(sql, sizeof sql, "INSERT INTO t (id, b) VALUES (%d, %d)", 10000 + i,
                     i % (MOD + 2));
        else
            snprintf(sql, sizeof sql, "UPDATE t SET b = %d WHERE id = %d", (i * 7) % (MOD + 2),
                     1 + (i * 37) % ROWS);
        if (!exec_retry(c, sql, w->error, sizeof w->error)) break;
        w->writes++;
    }
    PQfinish(c);
    return NULL;
}

static void test_index_under_writes(void **state) {
    (void)state;
    PGconn *c1 = conn(0), *c2 = conn(1);
    e2e_ok(c1, "CREATE TABLE t (id INT PRIMARY KEY, b INT, u TEXT)");
    char sql[128];
    snprintf(sql, sizeof sql,
             "INSERT INTO t SELECT g, g %% %d, NULL FROM generate_series(1, %d) AS g", MOD, ROWS);
    e2e_ok(c1, sql);
    PGresult *r = e2e_exec_status(c1, "ALTER TABLE t SPLIT AT VALUES (1500)", PGRES_TUPLES_OK);
    PQclear(r);

    writer w;
    memset(&w, 0, sizeof w);
    assert_int_equal(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    /* the writer gets going first, so the build overlaps its writes */
    int64_t deadline = now_ms() + CLUSTER_READY_MS;
    while (w.writes < 5 && w.error[0] == '\0' && now_ms() < deadline) pause_ms(20);
    int64_t t0 = now_ms();
    char error[512] = "";
    bool ok = exec_retry(c2, "CREATE INDEX t_b ON t (b)", error, sizeof error);
    printf("CREATE INDEX through node 2: %lld ms, %d writes by then\n",
           (long long)(now_ms() - t0), w.writes);
    pause_ms(300); /* some writes after the index is public */
    w.stop = 1;
    pthread_join(w.thread, NULL);
    printf("writer on node 3: %d writes\n", w.writes);
    if (!ok) print_error("%s\n", error);
    assert_true(ok);
    if (w.error[0]) print_error("writer: %s\n", w.error);
    assert_string_equal(w.error, "");
    check_consistent();
    PQfinish(c1);
    PQfinish(c2);
}

static void test_unique_across_nodes(void **state) {
    (void)state;
    PGconn *c1 = conn(0), *c3 = conn(2);
    char error[512] = "";
    e2e_ok(c3, "UPDATE t SET u = 'u' || id WHERE id <= 10");
    bool ok = exec_retry(c3, "CREATE UNIQUE INDEX t_u ON t (u)", error, sizeof error);
    if (!ok) print_error("%s\n", error);
    assert_true(ok);
    PGresult *r = PQexec(c1, "INSERT INTO t VALUES (20000, 1, 'u7')");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(state_of(r), "23505");
    printf("through node 1: %s", PQresultErrorMessage(r));
    assert_non_null(strstr(PQresultErrorMessage(r), "unique constraint \"t_u\""));
    assert_non_null(strstr(PQresultErrorMessage(r), "Key (u)=(u7) already exists."));
    PQclear(r);
    e2e_ok(c1, "INSERT INTO t VALUES (20001, 1, NULL), (20002, 1, NULL), (20003, 1, 'new')");
    e2e_fails(c1, "CREATE INDEX t_u ON t (b)", "42P07");
    for (int n = 0; n < NODES; n++) {
        PGconn *c = conn(n);
        e2e_rows_equal(c, "SELECT id FROM t WHERE u = 'new'", "20003\n");
        e2e_rows_equal(c, "SELECT id FROM t WHERE u = 'u7'", "7\n");
        PQfinish(c);
    }
    PQfinish(c1);
    PQfinish(c3);
}

/* psql -X -A -t URL -c ...: its stdout. owner: caller, base_free. */
static char *psql(const char *url, const char *const *cmds, bool tuples_only) {
    const char *argv[16];
    int n = 0;
    argv[n++] = "psql";
    argv[n++] = "-X";
    argv[n++] = "-A";
    if (tuples_only) argv[n++] = "-t";
    argv[n++] = "-v";
    argv[n++] = "ON_ERROR_STOP=1";
    argv[n++] = url;
    for (int i = 0; cmds[i] != NULL && n + 3 < (int)BASE_ARRAY_LEN(argv); i++) {
        argv[n++] = "-c";
        argv[n++] = cmds[i];
    }
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, E2E_CMD_TIMEOUT_MS, &out, &err);
    if (st != 0) print_error("psql exit %d\nstdout:\n%s\nstderr:\n%s\n", st, out, err);
    assert_int_equal(st, 0);
    base_free(err);
    return out;
}

static void expect_in(const char *out, const char *want) {
    if (strstr(out, want) == NULL) print_error("want %s in psql output:\n%s\n", want, out);
    assert_non_null(strstr(out, want));
}

static void test_psql(void **state) {
    (void)state;
    PGconn *c = conn(0);
    e2e_ok(c, "CREATE TABLE w (id INT PRIMARY KEY, a INT UNIQUE, b TEXT, c INT)");
    e2e_ok(c, "CREATE INDEX w_b_c ON w (b, c DESC)");
    PQfinish(c);
    const char *cmds[] = {"\\di", NULL};
    char *out = psql(nodes[0].url, cmds, true);
    expect_in(out, "public|t_b|index|root|t\npublic|t_pkey|index|root|t\n"
                   "public|t_u|index|root|t\npublic|w_a_key|index|root|w\n"
                   "public|w_b_c|index|root|w\npublic|w_pkey|index|root|w\n");
    base_free(out);
    const char *cmds2[] = {"\\d w", "\\d w_b_c", NULL};
    out = psql(nodes[0].url, cmds2, false);
    printf("%s", out);
    expect_in(out, "Indexes:\n"
                   "    \"w_pkey\" PRIMARY KEY, btree (id)\n"
                   "    \"w_a_key\" UNIQUE CONSTRAINT, btree (a)\n"
                   "    \"w_b_c\" btree (b, c DESC)\n");
    expect_in(out, "btree, for table \"public.w\"\n");
    base_free(out);
    /* dropped through node 2 (its entries in the same transaction): gone on
    ** node 3, and the rows are all still found */
    c = conn(1);
    e2e_ok(c, "INSERT INTO w VALUES (1, 1, 'x', 1), (2, 2, 'x', 2)");
    e2e_ok(c, "DROP INDEX w_b_c");
    PQfinish(c);
    const char *cmds3[] = {"\\di w*", "SELECT id FROM w WHERE b = 'x' ORDER BY id", NULL};
    out = psql(nodes[2].url, cmds3, true);
    expect_in(out, "public|w_a_key|index|root|w\npublic|w_pkey|index|root|w\n1\n2\n");
    base_free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_under_writes),
        cmocka_unit_test(test_unique_across_nodes),
        cmocka_unit_test(test_psql),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
