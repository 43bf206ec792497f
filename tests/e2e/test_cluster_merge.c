/*
** tests/e2e/test_cluster_merge.c: manual split points, UNSPLIT and the
** merge queue on real `meridian` processes (issue 6: "a table is split into
** 20 ranges and then unsplit and merged back"; docs/operations.md "Splits
** and merges by hand", docs/range.md "Merge queue"). The group setup
** (e2e_cluster.h) starts three nodes and runs `meridian init`. Then, in
** order:
**   - the statements: SPLIT AT answers a row per point; UNSPLIT AT one row
**     per point removed (key, pretty), a key that is not a manual split
**     point is 22023 naming it ("could not UNSPLIT AT (15): ... not a
**     manual split point"), UNSPLIT ALL the rest and then nothing, 25001 in
**     a block, 42P01 for no table; the split ranges stay while their points
**     do (merge queue on, range_min_bytes high);
**   - under load: a bank table of ACCOUNTS accounts split into 20 ranges
**     (SPLIT AT, 19 points), CLIENTS clients on different nodes transfer
**     (each transfer logged in the same transaction, retried on
**     40001/40003/57P03), then UNSPLIT ALL with range_min_bytes high: the
**     merge queue folds the table back into one range within MERGE_WAIT_MS
**     (a generous bound that fails only when merging is stuck; progress
**     printed), the total balance read through the nodes all along is
**     constant, and at the end every acknowledged transfer is in the log,
**     every balance is its initial value plus its logged moves, clients saw
**     only retryable errors, and the event log has merges with their reason.
** Every process dies with the test (mtest: PR_SET_PDEATHSIG and atexit);
** every wait is bounded.
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define NODES 3
#define ACCOUNTS 40            /* ids 1..40; points at 3, 5, ..., 39: 20 ranges */
#define INITIAL_BALANCE 100
#define CLIENTS 3
#define TXN_TRIES_MAX 50       /* attempts of one transfer */
#define TRANSFERS_MAX 65536    /* acknowledged transfers one client remembers */
#define LOAD_FIRST_MS 2000     /* transfers before the unsplit */
#define MERGE_WAIT_MS (240 * 1000) /* the table is one range again: only fails when stuck */
#define STILL_SPLIT_MS 7000    /* > a merge queue round (5 s): points keep ranges apart */
#define SUM_TRIES_MAX 6        /* a sum(bal) read retried on a retryable error */
#define BANK_STEP(prng) (1 + (int)(((prng) >> 32) % (ACCOUNTS - 1))) /* any other account */

#include "e2e_cluster.h"
#include "e2e_bank.h"

/* ---- helpers -------------------------------------------------------------------- */

/* SHOW RANGES FROM TABLE t through node i: the count, -1 on failure. */
static int table_ranges(int i, const char *t) {
    char sql[96];
    snprintf(sql, sizeof sql, "SHOW RANGES FROM TABLE %s", t);
    PGconn *c = conn(i);
    PGresult *r = PQexec(c, sql);
    int n = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : -1;
    if (n < 0) print_error("%s through node %d: %s\n", sql, i + 1, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return n;
}

/* Run sql expecting tuples; returns how many. */
static int tuples(PGconn *c, const char *sql) {
    PGresult *r = e2e_exec_status(c, sql, PGRES_TUPLES_OK);
    int n = PQntuples(r);
    PQclear(r);
    return n;
}

/* ---- the statements ------------------------------------------------------------- */

static void test_unsplit_statements(void **state) {
    (void)state;
    PGconn *c = conn(0);
    e2e_ok(c, "SET CLUSTER SETTING range_min_bytes = '256MiB'"); /* every small range may merge */
    e2e_ok(c, "CREATE TABLE us (k INT PRIMARY KEY, v INT)");
    e2e_ok(c, "INSERT INTO us SELECT g, g FROM generate_series(1, 30) AS g");
    assert_int_equal(tuples(c, "ALTER TABLE us SPLIT AT VALUES (10), (20)"), 2);
    PQfinish(c);
    assert_int_equal(table_ranges(1, "us"), 3);
    /* the points keep the ranges apart through merge queue rounds */
    pause_ms(STILL_SPLIT_MS);
    assert_int_equal(table_ranges(2, "us"), 3);
    c = conn(1);
    /* one row per point removed, CockroachDB's columns */
    PGresult *r = e2e_exec_status(c, "ALTER TABLE us UNSPLIT AT VALUES (10)", PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(PQnfields(r), 2);
    assert_string_equal(PQfname(r, 0), "key");
    assert_string_equal(PQfname(r, 1), "pretty");
    printf("UNSPLIT AT VALUES (10): key %s pretty %s\n", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    assert_string_equal(PQgetvalue(r, 0, 1), "/Table/us/10"); /* as SHOW RANGES prints it */
    PQclear(r);
    /* not a manual split point (any more) */
    r = PQexec(c, "ALTER TABLE us UNSPLIT AT VALUES (10)");
    assert_string_equal(state_of(r), "22023");
    printf("UNSPLIT AT VALUES (10) again: %s", PQresultErrorMessage(r));
    assert_non_null(strstr(PQresultErrorMessage(r), "could not UNSPLIT AT (10)"));
    assert_non_null(strstr(PQresultErrorMessage(r), "not a manual split point"));
    PQclear(r);
    e2e_fails(c, "ALTER TABLE us UNSPLIT AT VALUES (15)", "22023");
    e2e_fails(c, "ALTER TABLE nope UNSPLIT ALL", "42P01");
    e2e_fails(c, "ALTER TABLE us UNSPLIT AT VALUES (1, 2)", "42601");
    e2e_ok(c, "BEGIN");
    e2e_fails(c, "ALTER TABLE us UNSPLIT ALL", "25001");
    e2e_ok(c, "ROLLBACK");
    PQfinish(c);
    c = conn(2);
    r = e2e_exec_status(c, "ALTER TABLE us UNSPLIT ALL", PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_non_null(strstr(PQgetvalue(r, 0, 1), "/20"));
    PQclear(r);
    assert_int_equal(tuples(c, "ALTER TABLE us UNSPLIT ALL"), 0);
    e2e_rows_equal(c, "SELECT count(*), sum(v) FROM us", "30|465\n");
    PQfinish(c);
}

/* ---- the bank under merges ------------------------------------------------------ */

/* sum(bal) through node i, retried on retryable errors; -1 when it never
** answered (printed). */
static long long total_balance(int i) {
    PGconn *c = conn(i);
    long long sum = -1;
    for (int attempt = 0; attempt < SUM_TRIES_MAX && sum < 0; attempt++) {
        PGresult *r = PQexec(c, "SELECT sum(bal) FROM acct");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            sum = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else if (!retryable(state_of(r)) || attempt + 1 == SUM_TRIES_MAX)
            print_error("sum(bal) through node %d: %s\n", i + 1, PQresultErrorMessage(r));
        bool stop = sum < 0 && !retryable(state_of(r));
        PQclear(r);
        if (stop) break;
    }
    PQfinish(c);
    return sum;
}

static void test_merge_under_load(void **state) {
    (void)state;
    const long long total = (long long)INITIAL_BALANCE * ACCOUNTS;
    PGconn *c = conn(0);
    bank_create(c);
    char sql[512];
    size_t pos = (size_t)snprintf(sql, sizeof sql, "ALTER TABLE acct SPLIT AT VALUES ");
    for (int k = 3; k < ACCOUNTS; k += 2)
        pos += (size_t)snprintf(sql + pos, sizeof sql - pos, "%s(%d)", k > 3 ? ", " : "", k);
    assert_int_equal(tuples(c, sql), ACCOUNTS / 2 - 1);
    PQfinish(c);
    int n = table_ranges(0, "acct");
    printf("acct split into %d ranges\n", n);
    assert_int_equal(n, ACCOUNTS / 2);

    static client clients[CLIENTS];
    atomic_store(&bank_stop, false);
    bank_clients_start(clients, CLIENTS, 1000000);
    pause_ms(LOAD_FIRST_MS);

    /* unsplit: every range of acct may merge now */
    c = conn(1);
    e2e_ok(c, "SET CLUSTER SETTING range_min_bytes = '256MiB'");
    assert_int_equal(tuples(c, "ALTER TABLE acct UNSPLIT ALL"), ACCOUNTS / 2 - 1);
    PQfinish(c);
    int64_t t0 = now_ms();
    int printed = n, sums = 0;
    bool sums_ok = true;
    while (n != 1 && now_ms() - t0 < MERGE_WAIT_MS) {
        pause_ms(500);
        int node = sums % NODES;
        long long sum = total_balance(node);
        sums++;
        if (sum != total) {
            print_error("sum(bal) through node %d during the merges: %lld, want %lld\n", node + 1,
                        sum, total);
            sums_ok = false;
            break;
        }
        int got = table_ranges((node + 1) % NODES, "acct");
        if (got > 0) n = got;
        if (n != printed) {
            printf("  %lld ms after UNSPLIT ALL: %d ranges\n", (long long)(now_ms() - t0), n);
            fflush(stdout);
            printed = n;
        }
    }
    int64_t merged_ms = now_ms() - t0;
    atomic_store(&bank_stop, true);
    bank_clients_join(clients, CLIENTS);
    printf("acct: %d range(s) %lld ms after UNSPLIT ALL (%d balance checks on the way)\n", n,
           (long long)merged_ms, sums);
    assert_true(sums_ok);

    bank_tally sum = bank_sum(clients, CLIENTS);
    int given_up = sum.given_up;
    printf("bank: %d transfers acknowledged in %d attempts (%d retries, %d given up) by %d "
           "clients\n", sum.acked, sum.attempts, sum.retries, given_up, CLIENTS);
    for (int i = 0; i < CLIENTS; i++) assert_string_equal(clients[i].error, "");
    assert_true(sum.acked > 0);
    if (n != 1) print_error("acct still has %d ranges %d s after UNSPLIT ALL\n", n,
                            MERGE_WAIT_MS / 1000);
    assert_int_equal(n, 1);

    /* the expected balances from the acknowledged transfers */
    base_buf want = {0};
    bank_expected_rows(clients, CLIENTS, &want);
    char want_total[32];
    snprintf(want_total, sizeof want_total, "%lld\n", total);
    for (int node = 0; node < NODES; node++) {
        c = conn(node);
        e2e_rows_equal(c, "SELECT sum(bal) FROM acct", want_total);
        /* every acknowledged transfer is logged; nothing else moved money */
        bank_assert_logged(c, clients, CLIENTS);
        char *got = e2e_rows(c, "SELECT id, bal FROM acct ORDER BY id");
        if (strcmp(got, (const char *)want.data) != 0) /* a given-up transfer of unknown
                                                          outcome committed: the log says */
            printf("balances through node %d differ from the acknowledged transfers alone "
                   "(given up: %d)\n", node + 1, given_up);
        base_free(got);
        PQfinish(c);
    }
    /* the balances are exactly what the log says (an unknown outcome that
    ** committed included) */
    c = conn(2);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM acct a WHERE a.bal <> %d "
             "- coalesce((SELECT sum(amt) FROM xfer WHERE src = a.id), 0) "
             "+ coalesce((SELECT sum(amt) FROM xfer WHERE dst = a.id), 0)",
             INITIAL_BALANCE);
    e2e_rows_equal(c, sql, "0\n");
    char *ev = e2e_rows(c, "SELECT count(*) FROM meridian_internal.range_events WHERE event = "
                           "'merge' AND reason LIKE 'size %'");
    int merges = atoi(ev);
    base_free(ev);
    char *sample = e2e_rows(c, "SELECT range_id, other_range_id, reason, recorded_by FROM "
                               "meridian_internal.range_events WHERE event = 'merge' "
                               "ORDER BY ts LIMIT 3");
    printf("merges logged: %d; the first:\n%s", merges, sample);
    base_free(sample);
    assert_true(merges >= 1);
    PQfinish(c);
    base_buf_free(&want);
    bank_clients_free(clients, CLIENTS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsplit_statements),
        cmocka_unit_test(test_merge_under_load),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
