/*
** tests/e2e/test_cluster_replicate.c: the replicate queue on real
** `meridian` processes (issue 4: "a 4th node joining and a dead node's
** replicas moving to it"; docs/cluster.md, "Replicate queue").
**
** Every node runs with --dead-after 3s. The group setup (e2e_cluster.h)
** starts three nodes and runs `meridian init`. Then, in order:
**   - two tables (three ranges: system, t, u) with rows, through node 1; a
**     4th node joins and gets no replica (every range has its three
**     replicas on live nodes);
**   - a client writes through node 2 the whole time; kill -9 of node 3 for
**     good: within REPLICATE_MOVE_MS node status shows node 3 dead with no
**     replica left in meta and nodes 1, 2 and 4 live with every range each;
**     the time the move took is printed;
**   - kill -9 of node 1 too: with replicas on {2, 4} of each range's
**     {1, 2, 4}, reads and writes through nodes 2 and 4 still work and
**     every acknowledged write is readable through both (the data moved).
** Every process dies with the test (mtest: PR_SET_PDEATHSIG and atexit);
** every wait is bounded.
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#define NODES 3
#define CLUSTER_EXTRA_ARGS "--dead-after", "3s",
#define REPLICATE_MOVE_MS (60 * 1000)   /* every range off the dead node */
#define REPLICATE_SERVE_MS (45 * 1000)  /* writes succeed after the second kill */
#define REPLICATE_RANGES 3              /* system keys, table t, table u */
#define WRITES_MAX 100000

#include "e2e_cluster.h"

/* The rows of node status by node id (1-based), or NULL. */
static const status_row *row_of(const status_row *rows, int n, unsigned long id) {
    for (int i = 0; i < n; i++)
        if (rows[i].id == id) return &rows[i];
    return NULL;
}

static bool row_is(const status_row *rows, int n, unsigned long id, const char *state,
                   int replicas) {
    const status_row *r = row_of(rows, n, id);
    return r != NULL && strcmp(r->state, state) == 0 && r->replicas == replicas;
}

static void print_rows(const status_row *rows, int n) {
    for (int i = 0; i < n; i++)
        print_error("  node %lu: %s, %d replicas, %d leases\n", rows[i].id, rows[i].state,
                    rows[i].replicas, rows[i].leases);
}

static void test_fourth_node_gets_nothing_to_do(void **state) {
    (void)state;
    PGconn *c = conn(0);
    /* the replicate queue alone: no rebalancer moves (docs/operations.md "Rebalancing") */
    e2e_ok(c, "SET CLUSTER SETTING rebalance_enabled = false");
    e2e_ok(c, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)");
    e2e_ok(c, "CREATE TABLE u (id INT PRIMARY KEY, v TEXT)"); /* splits its own range */
    e2e_ok(c, "INSERT INTO t SELECT g, 't' || g FROM generate_series(1, 50) AS g");
    e2e_ok(c, "INSERT INTO u VALUES (1, 'u1'), (2, 'u2')");
    PQfinish(c);

    assert_int_equal(start_node(NODES, NULL), 0);
    c = conn(NODES);
    e2e_rows_equal(c, "SELECT count(*) FROM t", "50\n");
    e2e_fails(c, "INSERT INTO t VALUES (1, 'again')", "23505"); /* written through node 1 */
    PQfinish(c);
    /* three live nodes with every range, the 4th live with none */
    status_row rows[8];
    int n = 0;
    bool ok = false;
    for (int64_t deadline = now_ms() + CLUSTER_STATUS_MS; !ok && now_ms() < deadline;) {
        n = node_status(ports[0], rows, 8);
        ok = n == 4;
        for (unsigned long id = 1; ok && id <= 3; id++)
            ok = row_is(rows, n, id, "live", REPLICATE_RANGES);
        ok = ok && row_is(rows, n, 4, "live", 0);
        if (!ok) pause_ms(200);
    }
    if (!ok) print_rows(rows, n);
    assert_true(ok);
}

/* ---- the move ---------------------------------------------------------------------------- */

typedef struct writer {
    int node;                 /* index of the node written through */
    atomic_bool stop;
    atomic_int acked;
    atomic_int failed;
    int ids[WRITES_MAX];      /* acknowledged ids (writer thread) */
    pthread_t thread;
} writer;

static writer w;
static int64_t kill3_ms;

static void *writer_main(void *arg) {
    writer *wr = arg;
    PGconn *c = mtest_connect(&nodes[wr->node]);
    if (c == NULL) return NULL;
    for (int id = 1000; !atomic_load(&wr->stop) && id < 1000 + WRITES_MAX; id++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, 'w')", id);
        PGresult *r = PQexec(c, sql);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            atomic_fetch_add(&wr->failed, 1);
            if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
            pause_ms(50);
            continue;
        }
        int k = atomic_load(&wr->acked);
        wr->ids[k] = id;
        atomic_store(&wr->acked, k + 1);
    }
    PQfinish(c);
    return NULL;
}

static void test_dead_node_replicas_move(void **state) {
    (void)state;
    memset(&w, 0, sizeof w);
    w.node = 1; /* node 2 */
    assert_int_equal(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    for (int64_t d = now_ms() + CLUSTER_STATUS_MS; atomic_load(&w.acked) < 20 && now_ms() < d;)
        pause_ms(20);
    assert_true(atomic_load(&w.acked) >= 20);

    kill3_ms = now_ms();
    assert_int_equal(mtest_node_kill9(&nodes[2]), 0);
    printf("kill -9 of node 3 (%d writes acknowledged so far)\n", atomic_load(&w.acked));
    status_row rows[8];
    int n = 0;
    int64_t dead_ms = 0, done_ms = 0;
    for (int64_t deadline = kill3_ms + REPLICATE_MOVE_MS; done_ms == 0 && now_ms() < deadline;) {
        n = node_status(ports[0], rows, 8);
        const status_row *r3 = row_of(rows, n, 3);
        if (dead_ms == 0 && r3 != NULL && strcmp(r3->state, "dead") == 0) dead_ms = now_ms();
        bool ok = n == 4 && row_is(rows, n, 3, "dead", 0);
        for (unsigned long id = 1; ok && id <= 4; id++)
            ok = id == 3 || row_is(rows, n, id, "live", REPLICATE_RANGES);
        if (ok) done_ms = now_ms();
        else pause_ms(200);
    }
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);
    if (done_ms == 0) {
        print_error("the replicas did not leave node 3 within %d ms:\n", REPLICATE_MOVE_MS);
        print_rows(rows, n);
    }
    assert_true(done_ms != 0);
    printf("MOVE: every range on nodes 1, 2, 4 %lld ms after kill -9 of node 3 (node status "
           "said dead after %lld ms; --dead-after 3s); %d writes through node 2 acknowledged, "
           "%d failed attempts\n",
           (long long)(done_ms - kill3_ms), (long long)(dead_ms ? dead_ms - kill3_ms : -1),
           atomic_load(&w.acked), atomic_load(&w.failed));
    char *out = NULL;
    assert_int_equal(run_tool("node", "status", ports[3], &out, NULL), 0);
    printf("%s", out);
    base_free(out);
}

/* Through node i: run sql until it succeeds (the ranges fail over), bounded. */
static void exec_until_ok(int i, const char *sql) {
    PGconn *c = conn(i);
    bool ok = false;
    char last[512] = "";
    for (int64_t d = now_ms() + REPLICATE_SERVE_MS; !ok && now_ms() < d;) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!ok) snprintf(last, sizeof last, "%s", PQresultErrorMessage(r));
        PQclear(r);
        if (!ok) {
            if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
            pause_ms(100);
        }
    }
    if (!ok) print_error("node %d: %s: %s\n", i + 1, sql, last);
    assert_true(ok);
    PQfinish(c);
}

/* Every acknowledged write of the writer (and rows 1..50) through node i. */
static void check_acked(int i) {
    PGconn *c = conn(i);
    PGresult *r = NULL;
    for (int64_t d = now_ms() + REPLICATE_SERVE_MS; now_ms() < d; pause_ms(200)) {
        r = PQexec(c, "SELECT id FROM t ORDER BY id");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) break;
        PQclear(r);
        r = NULL;
        if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
    }
    assert_non_null(r);
    int rows_n = PQntuples(r), j = 0;
    int acked = atomic_load(&w.acked);
    for (int id = 1; id <= 50; id++) {
        assert_true(j < rows_n && atoi(PQgetvalue(r, j, 0)) == id);
        j++;
    }
    for (int k = 0; k < acked; k++) { /* both ascending: merge */
        while (j < rows_n && atoi(PQgetvalue(r, j, 0)) < w.ids[k]) j++;
        if (j >= rows_n || atoi(PQgetvalue(r, j, 0)) != w.ids[k])
            print_error("node %d: acknowledged write %d missing\n", i + 1, w.ids[k]);
        assert_true(j < rows_n && atoi(PQgetvalue(r, j, 0)) == w.ids[k]);
    }
    printf("node %d: rows 1..50 and all %d acknowledged writes present (%d rows)\n", i + 1,
           acked, rows_n);
    PQclear(r);
    PQfinish(c);
}

static void test_second_kill_leaves_a_quorum(void **state) {
    (void)state;
    int64_t t0 = now_ms();
    assert_int_equal(mtest_node_kill9(&nodes[0]), 0);
    printf("kill -9 of node 1: each range keeps nodes 2 and 4 of {1, 2, 4}\n");
    exec_until_ok(1, "INSERT INTO t VALUES (100001, 'via node 2')");
    printf("a write through node 2 succeeds %lld ms after kill -9 of node 1\n",
           (long long)(now_ms() - t0));
    exec_until_ok(3, "INSERT INTO u VALUES (100002, 'via node 4')");
    check_acked(1);
    check_acked(3);
    PGconn *c = conn(1);
    e2e_rows_equal(c, "SELECT id, v FROM u ORDER BY id", "1|u1\n2|u2\n100002|via node 4\n");
    PQfinish(c);
    c = conn(3);
    e2e_rows_equal(c, "SELECT v FROM t WHERE id = 100001", "via node 2\n");
    PQfinish(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fourth_node_gets_nothing_to_do),
        cmocka_unit_test(test_dead_node_replicas_move),
        cmocka_unit_test(test_second_kill_leaves_a_quorum),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
