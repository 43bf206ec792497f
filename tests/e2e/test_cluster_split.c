/*
** tests/e2e/test_cluster_split.c: range splits on a 3-node cluster of real
** `meridian` processes (issue 4, "Table boundaries and a manual split";
** docs/range.md, "Splits and addressing").
**
** In order, on one cluster (e2e_cluster.h):
**   - every CREATE TABLE puts its table in its own range: node status counts
**     one more replica per node for each table after the first (which
**     starts the bootstrap's second range);
**   - ALTER TABLE t SPLIT AT VALUES (...) with writes on both sides before
**     and after, through every node, and reads of everything through every
**     node; a split at an existing boundary is a no-op;
**   - a transaction writing two tables commits (two-phase commit); a
**     read-write transaction reading one table and writing another commits;
**   - a node restarted (SIGTERM, then kill -9) keeps both halves: it serves
**     reads and writes on both sides, and node status counts its replicas.
** Every wait is bounded (CLUSTER_*_MS).
*/
#define _GNU_SOURCE
#include <stdio.h>

#define NODES 3
#define SPLIT_STATUS_MS (30 * 1000) /* heartbeats show the new replica counts */

#include "e2e_cluster.h"

/* Wait until node status through port shows every node live with
** `replicas` replicas (heartbeats carry the counts every 1.5 s). */
static void wait_replicas(int port, int replicas) {
    status_row rows[8];
    int n = 0, ok = 0;
    for (int64_t deadline = now_ms() + SPLIT_STATUS_MS; now_ms() < deadline; pause_ms(200)) {
        n = node_status(port, rows, 8);
        ok = 0;
        for (int i = 0; i < n; i++)
            ok += strcmp(rows[i].state, "live") == 0 && rows[i].replicas == replicas;
        if (ok == NODES) break;
    }
    if (ok != NODES) {
        for (int i = 0; i < n; i++)
            print_error("node %lu: %s, %d replicas, %d leases\n", rows[i].id, rows[i].state,
                        rows[i].replicas, rows[i].leases);
        print_error("want %d live nodes with %d replicas each\n", NODES, replicas);
    }
    assert_int_equal(ok, NODES);
}

/* Retry a statement a bounded number of times while it fails with a
** retryable state (a restarted node still opening, 40001). */
static void ok_eventually(PGconn *c, const char *sql) {
    for (int64_t deadline = now_ms() + CLUSTER_READY_MS; now_ms() < deadline; pause_ms(100)) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool retry = st == PGRES_FATAL_ERROR && state != NULL &&
                     (strcmp(state, "40001") == 0 || strcmp(state, "57P03") == 0);
        PQclear(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
        if (!retry && PQstatus(c) != CONNECTION_BAD) break;
        if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
    }
    e2e_ok(c, sql); /* fails with the message */
}

static int replicas_now = 0; /* what node status should show after each step */

static void test_each_table_its_own_range(void **state) {
    (void)state;
    PGconn *c1 = conn(0);
    replicas_now = 2; /* bootstrap: range 1 (system keys, catalog) and range 2 */
    wait_replicas(ports[1], replicas_now);
    /* table id 100 starts range 2 already: no split */
    e2e_ok(c1, "CREATE TABLE a (id INT PRIMARY KEY, v TEXT)");
    wait_replicas(ports[1], replicas_now);
    /* every later table splits off its own range */
    e2e_ok(c1, "CREATE TABLE b (id INT PRIMARY KEY, v TEXT)");
    replicas_now++;
    wait_replicas(ports[2], replicas_now);
    e2e_ok(c1, "INSERT INTO a VALUES (1, 'a1'), (2, 'a2')");
    e2e_ok(c1, "INSERT INTO b VALUES (1, 'b1')");
    PQfinish(c1);
    for (int i = 0; i < NODES; i++) {
        PGconn *c = conn(i);
        e2e_rows_equal(c, "SELECT id, v FROM a ORDER BY id", "1|a1\n2|a2\n");
        e2e_rows_equal(c, "SELECT id, v FROM b ORDER BY id", "1|b1\n");
        PQfinish(c);
    }
}

static void insert_range(PGconn *c, int from, int to, const char *tag) {
    char sql[128];
    for (int k = from; k <= to; k++) {
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, '%s%d')", k, tag, k);
        e2e_ok(c, sql);
    }
}

/* Every row of t through node i: 1..40 with the expected values. */
static void check_t(int i) {
    PGconn *c = conn(i);
    base_buf want = {0};
    for (int k = 1; k <= 40; k++) {
        const char *tag = k <= 20 ? "before" : "after";
        if (k == 3 || k == 17) tag = "upd";
        base_buf_printf(&want, "%d|%s%d\n", k, tag, k);
    }
    base_buf_append_byte(&want, 0);
    e2e_rows_equal(c, "SELECT k, v FROM t ORDER BY k", (const char *)want.data);
    e2e_rows_equal(c, "SELECT count(*) FROM t WHERE k < 10", "9\n");
    e2e_rows_equal(c, "SELECT count(*) FROM t WHERE k >= 10", "31\n");
    base_buf_free(&want);
    PQfinish(c);
}

static void test_split_at_with_writes(void **state) {
    (void)state;
    PGconn *c1 = conn(0), *c2 = conn(1), *c3 = conn(2);
    e2e_ok(c1, "CREATE TABLE t (k INT PRIMARY KEY, v TEXT)");
    replicas_now++;
    /* writes on both sides of the coming split point, through two nodes */
    insert_range(c1, 1, 10, "before");
    insert_range(c2, 11, 20, "before");
    /* the split, through the third node: one row per point, CockroachDB's form */
    PGresult *r = e2e_exec_status(c3, "ALTER TABLE t SPLIT AT VALUES (10)", PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(PQnfields(r), 2);
    assert_string_equal(PQfname(r, 0), "key");
    assert_string_equal(PQfname(r, 1), "pretty");
    char *pretty = PQgetvalue(r, 0, 1);
    assert_string_equal(pretty, "/Table/t/10"); /* as SHOW RANGES prints a range's start */
    assert_true(strncmp(PQgetvalue(r, 0, 0), "\\x", 2) == 0);
    PQclear(r);
    replicas_now++;
    wait_replicas(ports[0], replicas_now);
    /* writes on both sides after it, through every node */
    insert_range(c3, 21, 30, "after");
    insert_range(c1, 31, 40, "after");
    e2e_ok(c2, "UPDATE t SET v = 'upd3' WHERE k = 3");   /* left */
    e2e_ok(c3, "UPDATE t SET v = 'upd17' WHERE k = 17"); /* right */
    e2e_fails(c1, "INSERT INTO t VALUES (9, 'dup')", "23505");
    e2e_fails(c2, "INSERT INTO t VALUES (12, 'dup')", "23505");
    /* a scan across the boundary, and both halves, through every node */
    for (int i = 0; i < NODES; i++) check_t(i);
    /* the same point again: a no-op; two more points in one statement */
    r = e2e_exec_status(c1, "ALTER TABLE t SPLIT AT VALUES (10)", PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    PQclear(r);
    r = e2e_exec_status(c2, "ALTER TABLE t SPLIT AT VALUES (5), (30)", PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 2);
    PQclear(r);
    replicas_now += 2;
    wait_replicas(ports[2], replicas_now);
    for (int i = 0; i < NODES; i++) check_t(i);
    /* refusals: too many values, a block, a table that does not exist */
    e2e_fails(c1, "ALTER TABLE t SPLIT AT VALUES (1, 2)", "42601");
    e2e_fails(c1, "ALTER TABLE nope SPLIT AT VALUES (1)", "42P01");
    e2e_ok(c1, "BEGIN");
    e2e_fails(c1, "ALTER TABLE t SPLIT AT VALUES (7)", "25001");
    e2e_ok(c1, "ROLLBACK");
    PQfinish(c1);
    PQfinish(c2);
    PQfinish(c3);
}

static void test_cross_table_transactions(void **state) {
    (void)state;
    PGconn *c = conn(1);
    /* writes in two tables: two ranges, one two-phase commit */
    e2e_ok(c, "BEGIN");
    e2e_ok(c, "INSERT INTO a VALUES (10, 'a10')");
    e2e_ok(c, "INSERT INTO b VALUES (10, 'b10')");
    e2e_ok(c, "COMMIT");
    e2e_rows_equal(c, "SELECT count(*) FROM a WHERE id = 10", "1\n");
    e2e_rows_equal(c, "SELECT count(*) FROM b WHERE id = 10", "1\n");
    /* reads in one table, writes in another: one transaction */
    e2e_ok(c, "BEGIN");
    e2e_rows_equal(c, "SELECT v FROM a WHERE id = 1", "a1\n");
    e2e_rows_equal(c, "SELECT count(*) FROM t", "40\n");
    e2e_ok(c, "INSERT INTO b SELECT id + 100, v FROM a WHERE id < 10");
    e2e_ok(c, "COMMIT");
    PQfinish(c);
    c = conn(2);
    e2e_rows_equal(c, "SELECT id, v FROM b ORDER BY id", "1|b1\n10|b10\n101|a1\n102|a2\n");
    PQfinish(c);
}

/* Node i comes back with its store: both halves of t are served through it. */
static void check_restarted(int i, int round) {
    PGconn *c = conn(i);
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, 'r')", 100 + round); /* right */
    ok_eventually(c, sql);
    snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, 'r')", -round); /* left */
    ok_eventually(c, sql);
    char want[32];
    snprintf(want, sizeof want, "%d\n", 40 + 2 * round);
    e2e_rows_equal(c, "SELECT count(*) FROM t", want);
    PQfinish(c);
    for (int k = 0; k < NODES; k++) {
        c = conn(k);
        e2e_rows_equal(c, "SELECT count(*) FROM t", want);
        PQfinish(c);
    }
    wait_replicas(ports[(i + 1) % NODES], replicas_now);
}

static void test_restart_keeps_both_halves(void **state) {
    (void)state;
    /* a clean stop and start */
    assert_int_equal(mtest_node_stop(&nodes[1]), 0);
    assert_int_equal(start_node(1, nodes[1].store), 0);
    check_restarted(1, 1);
    /* kill -9 (applies since the last sync may be lost: replayed) */
    assert_int_equal(mtest_node_kill9(&nodes[2]), 0);
    assert_int_equal(start_node(2, nodes[2].store), 0);
    check_restarted(2, 2);
    for (int i = 0; i < NODES; i++) {
        PGconn *c = conn(i);
        e2e_rows_equal(c, "SELECT k FROM t WHERE k < 0 OR k > 100 ORDER BY k",
                       "-2\n-1\n101\n102\n");
        PQfinish(c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_table_its_own_range),
        cmocka_unit_test(test_split_at_with_writes),
        cmocka_unit_test(test_cross_table_transactions),
        cmocka_unit_test(test_restart_keeps_both_halves),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
