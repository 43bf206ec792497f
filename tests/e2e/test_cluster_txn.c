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
**     log, and every balance is its initial value plus its logged moves.
** Every wait is bounded (CLUSTER_*_MS, BANK_RUN_MS, TXN_TRIES_MAX).
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>

#define NODES 3
#define ACCOUNTS 12            /* ids 1..12; ranges [.., 5), [5, 9), [9, ..) */
#define INITIAL_BALANCE 100
#define CLIENTS 4
#define BANK_RUN_MS 5000       /* transfers are started for this long */
#define TXN_TRIES_MAX 50       /* attempts of one transfer */
#define TRANSFERS_MAX 4096     /* acknowledged transfers one client remembers */

#include "e2e_cluster.h"

/* ---- helpers -------------------------------------------------------------------- */

/* SQLSTATE of the last error of r, "" for none. */
static const char *state_of(PGresult *r) {
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s != NULL ? s : "";
}

static bool retryable(const char *state) {
    return strcmp(state, "40001") == 0 || strcmp(state, "40003") == 0 ||
           strcmp(state, "57P03") == 0;
}

/* Run statements as one transaction block (BEGIN ... COMMIT). Returns 0 on
** commit, else the failing statement's SQLSTATE copied into state (the
** block is rolled back). */
static int run_block(PGconn *c, const char *const *sql, int n, char *state, size_t state_size) {
    state[0] = '\0';
    PGresult *r = PQexec(c, "BEGIN");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) snprintf(state, state_size, "%s", state_of(r));
    PQclear(r);
    for (int i = 0; ok && i <= n; i++) {
        r = PQexec(c, i < n ? sql[i] : "COMMIT");
        ExecStatusType st = PQresultStatus(r);
        ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!ok) snprintf(state, state_size, "%s", state_of(r));
        PQclear(r);
    }
    if (!ok) {
        PQclear(PQexec(c, "ROLLBACK")); /* ends an aborted block; a no-op otherwise */
        if (state[0] == '\0') snprintf(state, state_size, "?????");
        return -1;
    }
    return 0;
}

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

/* ---- the bank ----------------------------------------------------------------- */

typedef struct transfer {
    int id, from, to, amount;
} transfer;

typedef struct client {
    int index;
    int node;
    pthread_t thread;
    transfer done[TRANSFERS_MAX]; /* acknowledged */
    int n_done;
    int attempts, retries, given_up;
    char error[256]; /* a failure the main thread reports ("" none) */
} client;

static int64_t bank_stop_ms;

/* Is transfer id in the log (an attempt of unknown outcome committed)? */
static int logged(PGconn *c, int id) {
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM xfer WHERE id = %d", id);
    PGresult *r = PQexec(c, sql);
    int n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0))
                                                                      : -1;
    PQclear(r);
    return n;
}

static void *client_main(void *arg) {
    client *cl = arg;
    PGconn *c = mtest_connect(&nodes[cl->node]);
    if (c == NULL) {
        snprintf(cl->error, sizeof cl->error, "client %d: no connection", cl->index);
        return NULL;
    }
    uint64_t prng = 0x9E3779B97F4A7C15ull * (uint64_t)(cl->index + 1);
    for (int seq = 1; now_ms() < bank_stop_ms && cl->n_done < TRANSFERS_MAX; seq++) {
        prng ^= prng << 13;
        prng ^= prng >> 7;
        prng ^= prng << 17;
        transfer t = {cl->index * 100000 + seq, (int)(prng % ACCOUNTS) + 1, 0,
                      (int)((prng >> 20) % 10) + 1};
        /* the other end in another range: 4 accounts per range */
        t.to = (t.from - 1 + 4 * (1 + (int)((prng >> 40) % 2))) % ACCOUNTS + 1;
        char s1[96], s2[96], s3[128];
        snprintf(s1, sizeof s1, "UPDATE acct SET bal = bal - %d WHERE id = %d", t.amount, t.from);
        snprintf(s2, sizeof s2, "UPDATE acct SET bal = bal + %d WHERE id = %d", t.amount, t.to);
        snprintf(s3, sizeof s3, "INSERT INTO xfer VALUES (%d, %d, %d, %d)", t.id, t.from, t.to,
                 t.amount);
        const char *sql[] = {s1, s2, s3};
        bool acked = false, unknown = false;
        char state[8] = "";
        for (int attempt = 0; attempt < TXN_TRIES_MAX && !acked; attempt++) {
            cl->attempts++;
            if (attempt > 0) cl->retries++;
            if (run_block(c, sql, 3, state, sizeof state) == 0) {
                acked = true;
                break;
            }
            if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
            if (strcmp(state, "40003") == 0) unknown = true;
            if (strcmp(state, "23505") == 0 && unknown) {
                acked = true; /* an earlier attempt of unknown outcome committed */
                break;
            }
            if (!retryable(state)) break;
        }
        if (!acked && unknown && logged(c, t.id) == 1) acked = true;
        if (acked) {
            cl->done[cl->n_done++] = t;
        } else {
            cl->given_up++;
            if (!retryable(state)) {
                snprintf(cl->error, sizeof cl->error, "client %d: transfer %d failed with %s",
                         cl->index, t.id, state);
                break;
            }
        }
    }
    PQfinish(c);
    return NULL;
}

static void test_bank(void **state) {
    (void)state;
    PGconn *c = conn(0);
    e2e_ok(c, "CREATE TABLE acct (id INT PRIMARY KEY, bal INT NOT NULL)");
    e2e_ok(c, "CREATE TABLE xfer (id INT PRIMARY KEY, src INT, dst INT, amt INT)");
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO acct SELECT g, %d FROM generate_series(1, %d) AS g",
             INITIAL_BALANCE, ACCOUNTS);
    e2e_ok(c, sql);
    PGresult *r = e2e_exec_status(c, "ALTER TABLE acct SPLIT AT VALUES (5), (9)", PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);

    static client clients[CLIENTS];
    bank_stop_ms = now_ms() + BANK_RUN_MS;
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (client){.index = i + 1, .node = i % NODES};
        assert_int_equal(pthread_create(&clients[i].thread, NULL, client_main, &clients[i]), 0);
    }
    int acked = 0, attempts = 0, retries = 0, given_up = 0;
    for (int i = 0; i < CLIENTS; i++) pthread_join(clients[i].thread, NULL);
    for (int i = 0; i < CLIENTS; i++) {
        if (clients[i].error[0] != '\0') print_error("%s\n", clients[i].error);
        assert_string_equal(clients[i].error, "");
        acked += clients[i].n_done;
        attempts += clients[i].attempts;
        retries += clients[i].retries;
        given_up += clients[i].given_up;
    }
    printf("bank: %d transfers acknowledged in %d attempts (%d retries, %d given up) by %d "
           "clients in %d ms\n",
           acked, attempts, retries, given_up, CLIENTS, BANK_RUN_MS);
    assert_true(acked > 0);

    /* the expected balances from the acknowledged transfers */
    int expect[ACCOUNTS + 1];
    for (int a = 1; a <= ACCOUNTS; a++) expect[a] = INITIAL_BALANCE;
    for (int i = 0; i < CLIENTS; i++)
        for (int k = 0; k < clients[i].n_done; k++) {
            const transfer *t = &clients[i].done[k];
            expect[t->from] -= t->amount;
            expect[t->to] += t->amount;
        }
    char total[32];
    snprintf(total, sizeof total, "%d\n", INITIAL_BALANCE * ACCOUNTS);
    for (int n = 0; n < NODES; n++) {
        c = conn(n);
        e2e_rows_equal(c, "SELECT sum(bal) FROM acct", total);
        /* every acknowledged transfer is logged, and nothing else */
        char count[32];
        snprintf(count, sizeof count, "%d\n", acked);
        e2e_rows_equal(c, "SELECT count(*) FROM xfer", count);
        for (int i = 0; i < CLIENTS; i++)
            for (int k = 0; k < clients[i].n_done; k++)
                assert_int_equal(logged(c, clients[i].done[k].id), 1);
        /* and the balances are exactly what the log says */
        base_buf want = {0};
        for (int a = 1; a <= ACCOUNTS; a++) base_buf_printf(&want, "%d|%d\n", a, expect[a]);
        base_buf_append_byte(&want, 0);
        e2e_rows_equal(c, "SELECT id, bal FROM acct ORDER BY id", (const char *)want.data);
        base_buf_free(&want);
        PQfinish(c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_updates_across_ranges),
        cmocka_unit_test(test_create_table_in_block),
        cmocka_unit_test(test_bank),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
