/*
** tests/e2e/test_cluster_txn.c: transactions over several ranges on a
** 3-node cluster of real `meridian` processes (issue 5, step 1: two-phase
** commit; docs/txn.md).
**
** In order, on one cluster (e2e_cluster.h):
**   - a table split into 3 ranges (ALTER TABLE ... SPLIT AT): BEGIN;
**     UPDATE a; UPDATE b; COMMIT across ranges through every node, a
**     transaction over all three ranges, an implicit statement over two, a
**     rollback leaving nothing, and a read made stale by another session
**     on another node failing 40001 (its read refresh) with a message
**     naming the key; every node sees the same rows;
**   - BEGIN; CREATE TABLE t2 ...; INSERT INTO t2 ...; COMMIT (the catalog
**     and the rows are in different ranges: 0A000 before two-phase commit);
**   - a bank: 4 clients on different nodes transfer between accounts spread
**     over 3 ranges for about BANK_RUN_MS, each transfer recorded in a log
**     table in the same transaction and retried on 40001/40003/57P03 (an
**     id already logged means an earlier attempt committed); then the total
**     is unchanged through every node, every acknowledged transfer is in the
**     log, and every balance is its initial value plus its logged moves;
**   - sequences (sql/sequence.c): one client per node calls nextval at the
**     same time, on a CACHE 1 sequence and on a SERIAL column's (the node
**     blocks): every value is distinct cluster-wide and increasing within
**     each session.
**   - row locks: SELECT ... FOR UPDATE through node 1 holds back an UPDATE
**     of the row sent through node 2 (still busy after LOCK_NOT_YET_MS, a
**     "not yet" check) until COMMIT; then it completes over the holder's
**     write. A session that drops its socket mid-transaction (its lock
**     held) and, last, a transaction whose gateway (node 3) is killed -9
**     leave no lock behind: the waiter through node 1 gets the row within
**     LOCK_WAIT_MS and the row has the waiter's value, not the holder's.
** Every wait is bounded (CLUSTER_*_MS, BANK_RUN_MS, TXN_TRIES_MAX, LOCK_*).
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>

#define NODES 3
#define ACCOUNTS 12            /* ids 1..12; ranges [.., 5), [5, 9), [9, ..) */
#define INITIAL_BALANCE 100
#define CLIENTS 4
#define BANK_RUN_MS 5000       /* transfers are started for this long */
#define TXN_TRIES_MAX 50       /* attempts of one transfer */
#define TRANSFERS_MAX 4096     /* acknowledged transfers one client remembers */
/* the other end in another range: 4 accounts per range */
#define BANK_STEP(prng) (4 * (1 + (int)(((prng) >> 40) % 2)))
#define LOCK_WAIT_MS (90 * 1000)  /* a waiter gets a lock its holder left behind */
#define LOCK_NOT_YET_MS 1500      /* a blocked waiter is still busy after this */

#include "e2e_cluster.h"
#include "e2e_bank.h"

/* ---- helpers -------------------------------------------------------------------- */

/* run_block until it commits, retrying retryable failures (bounded). */
static void block_ok(PGconn *c, const char *const *sql, int n) {
    char state[8];
    for (int attempt = 0; attempt < TXN_TRIES_MAX; attempt++) {
        if (run_block(c, sql, n, state, sizeof state) == 0) return;
        if (!retryable(state)) break;
    }
    print_error("transaction starting with %s: failed with %s\n", sql[0], state);
    fail();
}

/* ---- a table over three ranges -------------------------------------------------- */

static void check_kv(const char *want) {
    for (int i = 0; i < NODES; i++) {
        PGconn *c = conn(i);
        e2e_rows_equal(c, "SELECT k, v FROM kv WHERE v <> 'init' ORDER BY k", want);
        e2e_rows_equal(c, "SELECT count(*) FROM kv", "30\n");
        PQfinish(c);
    }
}

static void test_updates_across_ranges(void **state) {
    (void)state;
    PGconn *c1 = conn(0), *c2 = conn(1), *c3 = conn(2);
    e2e_ok(c1, "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)");
    e2e_ok(c1, "INSERT INTO kv SELECT g, 'init' FROM generate_series(1, 30) AS g");
    PGresult *r = e2e_exec_status(c2, "ALTER TABLE kv SPLIT AT VALUES (10), (20)",
                                  PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 2);
    PQclear(r);

    /* two ranges, through every node */
    const char *b1[] = {"UPDATE kv SET v = 'a5' WHERE k = 5",
                        "UPDATE kv SET v = 'a25' WHERE k = 25"};
    block_ok(c1, b1, 2);
    const char *b2[] = {"UPDATE kv SET v = 'b15' WHERE k = 15",
                        "UPDATE kv SET v = 'b6' WHERE k = 6"};
    block_ok(c2, b2, 2);
    const char *b3[] = {"UPDATE kv SET v = 'c26' WHERE k = 26",
                        "UPDATE kv SET v = 'c16' WHERE k = 16"};
    block_ok(c3, b3, 2);
    check_kv("5|a5\n6|b6\n15|b15\n16|c16\n25|a25\n26|c26\n");

    /* all three ranges in one block, and an implicit statement over two */
    const char *b4[] = {"UPDATE kv SET v = 'd1' WHERE k = 1",
                        "UPDATE kv SET v = 'd11' WHERE k = 11",
                        "UPDATE kv SET v = 'd21' WHERE k = 21"};
    block_ok(c2, b4, 3);
    e2e_ok(c3, "UPDATE kv SET v = 'e' WHERE k IN (2, 22)");
    check_kv("1|d1\n2|e\n5|a5\n6|b6\n11|d11\n15|b15\n16|c16\n21|d21\n22|e\n25|a25\n26|c26\n");

    /* a rollback leaves nothing */
    e2e_ok(c1, "BEGIN");
    e2e_ok(c1, "UPDATE kv SET v = 'gone' WHERE k = 3");
    e2e_ok(c1, "UPDATE kv SET v = 'gone' WHERE k = 23");
    e2e_ok(c1, "ROLLBACK");

    /* a read made stale across nodes: the transaction restarts, told why.
    ** (An UPDATE locks its rows and waits for their holder, docs/txn.md
    ** section 5; a plain SELECT does not: c3 commits over c1's read, and
    ** c1's next lock finds a newer version, whose read refresh fails.) */
    e2e_ok(c1, "BEGIN");
    e2e_rows_equal(c1, "SELECT v FROM kv WHERE k = 7", "init\n");
    const char *b5[] = {"UPDATE kv SET v = 'won' WHERE k = 7",
                        "UPDATE kv SET v = 'won' WHERE k = 27"};
    block_ok(c3, b5, 2);
    r = PQexec(c1, "UPDATE kv SET v = 'lost' WHERE k = 27");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(state_of(r), "40001");
    printf("stale read across ranges: %s", PQresultErrorMessage(r));
    assert_non_null(strstr(PQresultErrorMessage(r), "key"));
    PQclear(r);
    e2e_ok(c1, "ROLLBACK");
    check_kv("1|d1\n2|e\n5|a5\n6|b6\n7|won\n11|d11\n15|b15\n16|c16\n21|d21\n22|e\n25|a25\n"
             "26|c26\n27|won\n");
    PQfinish(c1);
    PQfinish(c2);
    PQfinish(c3);
}

/* The catalog (range 1) and the new table's rows in one block. */
static void test_create_table_in_block(void **state) {
    (void)state;
    PGconn *c = conn(2);
    e2e_ok(c, "BEGIN");
    e2e_ok(c, "CREATE TABLE t2 (id INT PRIMARY KEY, v TEXT)");
    e2e_ok(c, "INSERT INTO t2 VALUES (1, 'one'), (2, 'two')");
    e2e_ok(c, "COMMIT");
    e2e_fails(c, "INSERT INTO t2 VALUES (1, 'dup')", "23505");
    PQfinish(c);
    for (int i = 0; i < NODES; i++) {
        c = conn(i);
        e2e_rows_equal(c, "SELECT id, v FROM t2 ORDER BY id", "1|one\n2|two\n");
        PQfinish(c);
    }
}

/* ---- sequences ------------------------------------------------------------------ */

#define SEQ_CALLS 100 /* nextval calls of one client */

typedef struct seq_client {
    int node;
    const char *sql; /* one value per call */
    int64_t got[SEQ_CALLS];
    int n;
    char error[128];
} seq_client;

static void *seq_client_main(void *arg) {
    seq_client *sc = arg;
    PGconn *c = conn(sc->node);
    for (int i = 0; i < SEQ_CALLS && sc->error[0] == 0; i++) {
        for (int attempt = 0; attempt < TXN_TRIES_MAX; attempt++) {
            PGresult *r = PQexec(c, sc->sql);
            if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
                sc->got[sc->n++] = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
                PQclear(r);
                break;
            }
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (state == NULL || !retryable(state) || attempt + 1 == TXN_TRIES_MAX) {
                snprintf(sc->error, sizeof sc->error, "%s: %s", sc->sql, PQerrorMessage(c));
                PQclear(r);
                break;
            }
            PQclear(r);
        }
    }
    PQfinish(c);
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* One client per node runs sql SEQ_CALLS times at once: distinct values,
** increasing per client. */
static void seq_race(const char *sql) {
    static seq_client cl[NODES];
    static int64_t all[NODES * SEQ_CALLS];
    pthread_t th[NODES];
    int n = 0;
    for (int i = 0; i < NODES; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].node = i;
        cl[i].sql = sql;
        assert_int_equal(pthread_create(&th[i], NULL, seq_client_main, &cl[i]), 0);
    }
    for (int i = 0; i < NODES; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < NODES; i++) {
        assert_string_equal(cl[i].error, "");
        assert_int_equal(cl[i].n, SEQ_CALLS);
        for (int k = 0; k < cl[i].n; k++) {
            if (k > 0) assert_true(cl[i].got[k] > cl[i].got[k - 1]);
            all[n++] = cl[i].got[k];
        }
    }
    qsort(all, (size_t)n, sizeof(all[0]), cmp_i64);
    for (int i = 1; i < n; i++)
        if (all[i] == all[i - 1]) {
            print_error("%s: value %lld handed out twice\n", sql, (long long)all[i]);
            fail();
        }
}

static void test_sequences_across_nodes(void **state) {
    (void)state;
    PGconn *c = conn(0);
    e2e_ok(c, "CREATE SEQUENCE seq1 CACHE 1");
    e2e_ok(c, "CREATE TABLE sert (id SERIAL PRIMARY KEY, node INT)");
    PQfinish(c);
    /* CACHE 1: every value is a state write racing on one key; no gaps */
    seq_race("SELECT nextval('seq1')");
    c = conn(1);
    char want[32];
    snprintf(want, sizeof want, "%d\n", NODES * SEQ_CALLS + 1);
    e2e_rows_equal(c, "SELECT nextval('seq1')", want);
    PQfinish(c);
    /* SERIAL with the node blocks: every insert gets its own key (a 23505
    ** would fail the client); a retried ambiguous commit may add a row */
    seq_race("INSERT INTO sert (node) VALUES (0) RETURNING id");
    char q[96];
    snprintf(q, sizeof q, "SELECT count(*) >= %d FROM sert", NODES * SEQ_CALLS);
    for (int i = 0; i < NODES; i++) {
        c = conn(i);
        e2e_rows_equal(c, q, "t\n");
        PQfinish(c);
    }
}

/* ---- the bank (e2e_bank.h) ------------------------------------------------------- */

static void test_bank(void **state) {
    (void)state;
    PGconn *c = conn(0);
    bank_create(c);
    PGresult *r = e2e_exec_status(c, "ALTER TABLE acct SPLIT AT VALUES (5), (9)", PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);

    static client clients[CLIENTS];
    bank_stop_ms = now_ms() + BANK_RUN_MS;
    bank_clients_start(clients, CLIENTS, 100000);
    bank_clients_join(clients, CLIENTS);
    bank_tally sum = bank_sum(clients, CLIENTS);
    for (int i = 0; i < CLIENTS; i++) assert_string_equal(clients[i].error, "");
    int acked = sum.acked;
    printf("bank: %d transfers acknowledged in %d attempts (%d retries, %d given up) by %d "
           "clients in %d ms\n",
           acked, sum.attempts, sum.retries, sum.given_up, CLIENTS, BANK_RUN_MS);
    assert_true(acked > 0);

    /* the expected balances from the acknowledged transfers */
    base_buf want = {0};
    bank_expected_rows(clients, CLIENTS, &want);
    char total[32];
    snprintf(total, sizeof total, "%d\n", INITIAL_BALANCE * ACCOUNTS);
    for (int n = 0; n < NODES; n++) {
        c = conn(n);
        e2e_rows_equal(c, "SELECT sum(bal) FROM acct", total);
        /* every acknowledged transfer is logged, and nothing else */
        char count[32];
        snprintf(count, sizeof count, "%d\n", acked);
        e2e_rows_equal(c, "SELECT count(*) FROM xfer", count);
        bank_assert_logged(c, clients, CLIENTS);
        /* and the balances are exactly what the log says */
        e2e_rows_equal(c, "SELECT id, bal FROM acct ORDER BY id", (const char *)want.data);
        PQfinish(c);
    }
    base_buf_free(&want);
    bank_clients_free(clients, CLIENTS);
}

/* ---- row locks ------------------------------------------------------------------ */

/* Wait up to ms for the answer to a query sent with PQsendQuery: true once
** PQgetResult will not block (an answer or a broken connection). */
static bool sent_done(PGconn *c, int ms) {
    int64_t deadline = now_ms() + ms;
    for (;;) {
        if (!PQconsumeInput(c) || !PQisBusy(c)) return true;
        if (now_ms() >= deadline) return false;
        pause_ms(20);
    }
}

/* Drain a sent query's results (sent_done first): the last status, and its
** SQLSTATE and message into state/msg. */
static ExecStatusType sent_result(PGconn *c, char *state, size_t state_size, char *msg,
                                  size_t msg_size) {
    ExecStatusType last = PGRES_FATAL_ERROR;
    PGresult *r;
    snprintf(state, state_size, "%s", "");
    snprintf(msg, msg_size, "%s", PQerrorMessage(c));
    while ((r = PQgetResult(c)) != NULL) {
        last = PQresultStatus(r);
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(state, state_size, "%s", st ? st : "");
        snprintf(msg, msg_size, "%s", PQresultErrorMessage(r));
        PQclear(r);
    }
    return last;
}

/* Run sql through c until it succeeds, up to LOCK_WAIT_MS, retrying
** retryable errors (a lease moving, a restart); fails the test on anything
** else or when the bound passes with the statement still blocked. */
static void exec_within(PGconn *c, const char *sql) {
    int64_t deadline = now_ms() + LOCK_WAIT_MS;
    char state[8], msg[256];
    for (;;) {
        assert_int_equal(PQsendQuery(c, sql), 1);
        int64_t left = deadline - now_ms();
        if (!sent_done(c, left > 0 ? (int)left : 0)) {
            print_error("%s: still blocked after %d ms\n", sql, LOCK_WAIT_MS);
            fail();
        }
        ExecStatusType st = sent_result(c, state, sizeof state, msg, sizeof msg);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
        if (!retryable(state) || now_ms() >= deadline) {
            print_error("%s: %s %s: %s\n", sql, PQresStatus(st), state, msg);
            fail();
        }
        printf("%s: retrying after %s: %s", sql, state, msg);
        pause_ms(200);
    }
}

static void check_lk(const char *sql, const char *want) {
    for (int i = 0; i < NODES; i++) {
        if (nodes[i].pid <= 0) continue;
        PGconn *c = conn(i);
        e2e_rows_equal(c, sql, want);
        PQfinish(c);
    }
}

static void test_for_update_blocks_writer(void **state) {
    (void)state;
    PGconn *a = conn(0), *b = conn(1);
    e2e_ok(a, "CREATE TABLE lk (id INT PRIMARY KEY, v INT)");
    e2e_ok(a, "INSERT INTO lk VALUES (1, 10), (2, 20)");
    e2e_ok(a, "BEGIN");
    e2e_rows_equal(a, "SELECT id, v FROM lk WHERE id = 1 FOR UPDATE", "1|10\n");
    assert_int_equal(PQsendQuery(b, "UPDATE lk SET v = v + 1 WHERE id = 1"), 1);
    /* not yet: A holds the row's lock */
    assert_false(sent_done(b, LOCK_NOT_YET_MS));
    e2e_ok(a, "UPDATE lk SET v = v + 5 WHERE id = 1");
    e2e_ok(a, "COMMIT");
    if (!sent_done(b, LOCK_WAIT_MS)) {
        print_error("UPDATE behind a FOR UPDATE lock: still blocked %d ms after COMMIT\n",
                    LOCK_WAIT_MS);
        fail();
    }
    char st[8], msg[256];
    ExecStatusType es = sent_result(b, st, sizeof st, msg, sizeof msg);
    if (es != PGRES_COMMAND_OK) print_error("B's UPDATE: %s %s: %s\n", PQresStatus(es), st, msg);
    assert_int_equal(es, PGRES_COMMAND_OK);
    check_lk("SELECT v FROM lk WHERE id = 1", "16\n"); /* 10 + 5 (A) + 1 (B) */
    PQfinish(a);
    PQfinish(b);
}

static void test_dropped_session_leaves_no_lock(void **state) {
    (void)state;
    PGconn *a = conn(2), *b = conn(0);
    e2e_ok(a, "BEGIN");
    e2e_ok(a, "UPDATE lk SET v = 99 WHERE id = 2");
    /* abrupt: no COMMIT, no Terminate message reaches the node */
    assert_int_equal(shutdown(PQsocket(a), SHUT_RDWR), 0);
    PQfinish(a);
    exec_within(b, "UPDATE lk SET v = 21 WHERE id = 2");
    check_lk("SELECT v FROM lk WHERE id = 2", "21\n");
    PQfinish(b);
}

/* Last: node 3 stays down (the teardown skips it). */
static void test_killed_gateway_leaves_no_lock(void **state) {
    (void)state;
    PGconn *a = conn(2), *b = conn(0);
    e2e_ok(a, "BEGIN");
    e2e_ok(a, "UPDATE lk SET v = 77 WHERE id = 1");
    assert_int_equal(mtest_node_kill9(&nodes[2]), 0);
    PQfinish(a);
    int64_t t0 = now_ms();
    exec_within(b, "UPDATE lk SET v = v + 100 WHERE id = 1");
    printf("lock of a transaction whose gateway was killed -9: taken over %lld ms later\n",
           (long long)(now_ms() - t0));
    check_lk("SELECT v FROM lk WHERE id = 1", "116\n"); /* 16 + 100, not 77 + 100 */
    PQfinish(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_updates_across_ranges),
        cmocka_unit_test(test_create_table_in_block),
        cmocka_unit_test(test_sequences_across_nodes),
        cmocka_unit_test(test_bank),
        cmocka_unit_test(test_for_update_blocks_writer),
        cmocka_unit_test(test_dropped_session_leaves_no_lock),
        cmocka_unit_test(test_killed_gateway_leaves_no_lock),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
