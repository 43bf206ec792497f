/*
** tests/e2e/test_cluster_ranges.c: operators see and steer ranges on real
** `meridian` processes (issue 6; docs/operations.md). The group setup
** (e2e_cluster.h) starts three nodes and runs `meridian init`. Then, in
** order:
**   - a table split at (1000) and (2000): SHOW RANGES FROM TABLE (through
**     every node) shows three ranges with those boundaries, three replicas
**     each and a leaseholder; SHOW RANGE ... FOR ROW finds the right one;
**     the middle range, read 20 times, shows reads/s at its leaseholder;
**     SHOW RANGES lists the system range too;
**   - ALTER RANGE <middle> RELOCATE LEASE TO <another voter>: SHOW RANGES
**     names the new holder (through two nodes); refusals: an unknown
**     range (42704), an unknown node (42704), a node that is no voter
**     (22023, after node 4 joined);
**   - a 4th node joins; ALTER RANGE <middle> RELOCATE VOTERS FROM 1 TO 4:
**     SHOW RANGES shows {2,3,4}, the rows are still there (through node 4,
**     which now holds them, and node 1, which does not); refusals: node 1
**     is no voter any more, node 3 already is one;
**   - the range event log has both splits, the lease transfer and the
**     replica change, with their reasons;
**   - `meridian ranges --host ...` prints the same overview;
**   - node 4 killed: once it is no longer live, a lease transfer to it is
**     refused (55000) without being tried; once it is dead (--dead-after
**     8s) the replicate queue moves the middle range's replica back to
**     node 1, and the event log says so ("replace dead node 4").
** Every process dies with the test (mtest: PR_SET_PDEATHSIG and atexit);
** every wait is bounded.
*/
#define _GNU_SOURCE

#define NODES 3
/* a killed node is dead after 8 s: the replicate queue then replaces it */
#define CLUSTER_EXTRA_ARGS "--dead-after", "8s",
#include "e2e_cluster.h"

#define RANGES_WAIT_MS (30 * 1000) /* SHOW RANGES shows what a test waits for */
#define REPLACE_WAIT_MS (90 * 1000) /* a dead node's replica replaced and logged */
#define RANGES_ROWS_MAX 16

typedef struct range_row {
    unsigned long id;
    char start[64], end[64], table[32], replicas[32];
    unsigned long lease; /* 0: NULL */
    double reads, writes; /* reads_per_second, writes_per_second; -1: NULL */
} range_row;

/* SHOW RANGES[ FROM TABLE accounts] through node i, parsed; -1 on an error. */
static int show_ranges(int i, const char *sql, range_row *rows, int max) {
    PGconn *c = conn(i);
    PGresult *r = PQexec(c, sql);
    int n = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) == 10) {
        n = 0;
        for (int k = 0; k < PQntuples(r) && n < max; k++, n++) {
            range_row *x = &rows[n];
            memset(x, 0, sizeof *x);
            x->id = strtoul(PQgetvalue(r, k, 0), NULL, 10);
            snprintf(x->start, sizeof x->start, "%s", PQgetvalue(r, k, 1));
            snprintf(x->end, sizeof x->end, "%s", PQgetvalue(r, k, 2));
            snprintf(x->table, sizeof x->table, "%s",
                     PQgetisnull(r, k, 3) ? "NULL" : PQgetvalue(r, k, 3));
            snprintf(x->replicas, sizeof x->replicas, "%s", PQgetvalue(r, k, 4));
            x->lease = PQgetisnull(r, k, 5) ? 0 : strtoul(PQgetvalue(r, k, 5), NULL, 10);
            x->reads = PQgetisnull(r, k, 8) ? -1 : atof(PQgetvalue(r, k, 8));
            x->writes = PQgetisnull(r, k, 9) ? -1 : atof(PQgetvalue(r, k, 9));
        }
    } else {
        print_error("%s through node %d: %s\n", sql, i + 1, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
    return n;
}

static void print_rows(const range_row *rows, int n) {
    for (int i = 0; i < n; i++)
        print_error("  r%lu [%s, %s) %s replicas %s lease %lu\n", rows[i].id, rows[i].start,
                    rows[i].end, rows[i].table, rows[i].replicas, rows[i].lease);
}

static unsigned long middle; /* the range [/Table/accounts/1000, /Table/accounts/2000) */
static unsigned long lease_target;

/* Wait (bounded) until SHOW RANGES FROM TABLE accounts through node i has
** the three ranges, `middle_replicas` on the middle one (NULL: {1,2,3}),
** every range with a leaseholder, and the middle one's on `lease` (0: any). */
static void wait_accounts(int i, const char *middle_replicas, unsigned long lease,
                          range_row *rows, int *n_out) {
    const char *want_mid = middle_replicas ? middle_replicas : "{1,2,3}";
    int n = 0;
    bool ok = false;
    for (int64_t deadline = now_ms() + RANGES_WAIT_MS; !ok && now_ms() < deadline;) {
        n = show_ranges(i, "SHOW RANGES FROM TABLE accounts", rows, RANGES_ROWS_MAX);
        ok = n == 3 && strcmp(rows[0].start, "/Table/accounts") == 0 &&
             strcmp(rows[0].end, "/Table/accounts/1000") == 0 &&
             strcmp(rows[1].start, "/Table/accounts/1000") == 0 &&
             strcmp(rows[1].end, "/Table/accounts/2000") == 0 &&
             strcmp(rows[2].start, "/Table/accounts/2000") == 0 &&
             (strcmp(rows[2].end, "/Max") == 0 || /* until test_event_log's next table */
              strcmp(rows[2].end, "/Table/other") == 0) &&
             strcmp(rows[0].replicas, "{1,2,3}") == 0 &&
             strcmp(rows[1].replicas, want_mid) == 0 && strcmp(rows[2].replicas, "{1,2,3}") == 0;
        for (int k = 0; ok && k < 3; k++)
            ok = rows[k].lease != 0 && strcmp(rows[k].table, "accounts") == 0;
        if (ok && lease != 0) ok = rows[1].lease == lease;
        if (!ok) pause_ms(200);
    }
    if (!ok) {
        print_error("SHOW RANGES FROM TABLE accounts through node %d (want middle %s, lease "
                    "%lu):\n", i + 1, want_mid, lease);
        print_rows(rows, n);
    }
    assert_true(ok);
    *n_out = n;
}

static void test_split_and_show(void **state) {
    (void)state;
    PGconn *c = conn(0);
    /* placements are the test's own: no rebalancer moves (docs/operations.md "Rebalancing") */
    e2e_ok(c, "SET CLUSTER SETTING rebalance_enabled = false");
    e2e_ok(c, "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT)");
    e2e_ok(c, "INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 3000) AS g");
    PGresult *r = e2e_exec_status(c, "ALTER TABLE accounts SPLIT AT VALUES (1000), (2000)",
                                  PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 2);
    PQclear(r);
    range_row rows[RANGES_ROWS_MAX];
    int n = 0;
    for (int i = 0; i < NODES; i++) wait_accounts(i, NULL, 0, rows, &n);
    middle = rows[1].id;
    printf("accounts: r%lu, r%lu (middle), r%lu; leases on %lu, %lu, %lu\n", rows[0].id, middle,
           rows[2].id, rows[0].lease, rows[1].lease, rows[2].lease);
    /* the range holding a row */
    char sql[128];
    e2e_rows_equal(c, "SELECT count(*) FROM accounts", "3000\n");
    r = e2e_exec_status(c, "SHOW RANGE FROM TABLE accounts FOR ROW (1500)", PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(strtoul(PQgetvalue(r, 0, 0), NULL, 10), middle);
    PQclear(r);
    r = e2e_exec_status(c, "SHOW RANGE FROM TABLE accounts FOR ROW (999)", PGRES_TUPLES_OK);
    assert_int_equal(strtoul(PQgetvalue(r, 0, 0), NULL, 10), rows[0].id);
    PQclear(r);
    /* the middle range was read (the count, FOR ROW's lookups do not read
    ** it): its leaseholder reports reads/s (issue 6, docs/range.md "Load") */
    for (int k = 0; k < 20; k++) e2e_rows_equal(c, "SELECT balance FROM accounts WHERE id = 1500",
                                                "100\n");
    n = show_ranges(2, "SHOW RANGES FROM TABLE accounts", rows, RANGES_ROWS_MAX);
    assert_int_equal(n, 3);
    printf("after 20 reads of row 1500: the middle range at %.1f reads/s, %.1f writes/s\n",
           rows[1].reads, rows[1].writes);
    assert_true(rows[1].reads > 0 && rows[1].writes >= 0);
    /* every range: the system range first, from /Min */
    int64_t t0 = now_ms();
    n = show_ranges(1, "SHOW RANGES", rows, RANGES_ROWS_MAX);
    printf("SHOW RANGES through node 2: %d ranges in %lld ms (with the connection)\n", n,
           (long long)(now_ms() - t0));
    assert_true(n >= 4);
    assert_string_equal(rows[0].start, "/Min");
    assert_string_equal(rows[0].table, "NULL");
    assert_string_equal(rows[n - 1].end, "/Max");
    for (int i = 1; i < n; i++) assert_string_equal(rows[i].start, rows[i - 1].end); /* no gap */
    snprintf(sql, sizeof sql, "SHOW RANGE FROM TABLE nosuch FOR ROW (1)");
    e2e_fails(c, sql, "42P01");
    PQfinish(c);
}

static void test_relocate_lease(void **state) {
    (void)state;
    range_row rows[RANGES_ROWS_MAX];
    int n = 0;
    wait_accounts(0, NULL, 0, rows, &n);
    unsigned long holder = rows[1].lease;
    lease_target = holder == 2 ? 3 : 2;
    PGconn *c = conn(0);
    char sql[128];
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE LEASE TO %lu", middle, lease_target);
    int64_t t0 = now_ms();
    e2e_ok(c, sql);
    printf("lease of r%lu: node %lu -> node %lu in %lld ms\n", middle, holder, lease_target,
           (long long)(now_ms() - t0));
    wait_accounts(0, NULL, lease_target, rows, &n);
    wait_accounts(2, NULL, lease_target, rows, &n);
    /* again: already there, a no-op */
    e2e_ok(c, sql);
    /* refusals */
    e2e_fails(c, "ALTER RANGE 999999 RELOCATE LEASE TO 2", "42704");
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE LEASE TO 9", middle);
    e2e_fails(c, sql, "42704"); /* no such node (named so, not "not a voter") */
    e2e_fails(c, "BEGIN; ALTER RANGE 1 RELOCATE LEASE TO 2", "25001");
    e2e_ok(c, "ROLLBACK");
    PQfinish(c);
}

static void test_relocate_voters(void **state) {
    (void)state;
    assert_int_equal(start_node(NODES, NULL), 0); /* node 4 */
    status_row st[8];
    int ns = 0;
    wait_live(ports[0], 4, st, &ns);
    PGconn *c = conn(0);
    char sql[128];
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE VOTERS FROM 4 TO 1", middle);
    e2e_fails(c, sql, "22023"); /* node 4 holds none: nothing to move */
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE LEASE TO 4", middle);
    e2e_fails(c, sql, "22023"); /* node 4 is no voter of it */
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE VOTERS FROM 9 TO 4", middle);
    e2e_fails(c, sql, "42704"); /* no node 9 */
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE VOTERS FROM 1 TO 4", middle);
    int64_t t0 = now_ms();
    e2e_ok(c, sql);
    printf("voter of r%lu: node 1 -> node 4 in %lld ms\n", middle, (long long)(now_ms() - t0));
    range_row rows[RANGES_ROWS_MAX];
    int n = 0;
    wait_accounts(0, "{2,3,4}", 0, rows, &n);
    wait_accounts(3, "{2,3,4}", 0, rows, &n);
    e2e_fails(c, sql, "22023");                    /* node 1 is no voter any more */
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE VOTERS FROM 2 TO 3", middle);
    e2e_fails(c, sql, "22023");                    /* node 3 is one already */
    /* the rows moved with the replica */
    e2e_rows_equal(c, "SELECT count(*), sum(balance) FROM accounts WHERE id BETWEEN 1000 AND 1999",
                   "1000|100000\n");
    PQfinish(c);
    c = conn(3);
    e2e_rows_equal(c, "SELECT count(*) FROM accounts", "3000\n");
    e2e_ok(c, "UPDATE accounts SET balance = balance + 1 WHERE id = 1500");
    e2e_rows_equal(c, "SELECT balance FROM accounts WHERE id = 1500", "101\n");
    PQfinish(c);
}

static void test_event_log(void **state) {
    (void)state;
    PGconn *c = conn(1);
    char *got = e2e_rows(c, "SELECT event, range_id, reason, node_id, recorded_by "
                            "FROM meridian_internal.range_events ORDER BY ts DESC");
    printf("range events, newest first:\n%s", got);
    char want[256];
    bool ok = strstr(got, "|manual split at (1000)|NULL|1\n") != NULL &&
              strstr(got, "|manual split at (2000)|NULL|1\n") != NULL &&
              strstr(got, "split|") != NULL;
    snprintf(want, sizeof want, "lease_transfer|%lu|manual relocate|%lu|1\n", middle, lease_target);
    ok = ok && strstr(got, want) != NULL;
    snprintf(want, sizeof want, "add_replica|%lu|manual relocate|4|1\n", middle);
    ok = ok && strstr(got, want) != NULL;
    snprintf(want, sizeof want, "remove_replica|%lu|manual relocate|1|1\n", middle);
    ok = ok && strstr(got, want) != NULL;
    /* newest first: the replica change, then the lease transfer */
    char *rm = strstr(got, "remove_replica|"), *lt = strstr(got, "lease_transfer|");
    ok = ok && rm != NULL && lt != NULL && rm < lt;
    base_free(got);
    assert_true(ok);
    /* a second table splits off its own range at CREATE TABLE (accounts, the
    ** first user table, starts where the initial user range starts: no split) */
    e2e_ok(c, "CREATE TABLE other (id INT PRIMARY KEY)");
    e2e_rows_equal(c,
                   "SELECT count(*) FROM meridian_internal.range_events WHERE event = 'split' "
                   "AND reason LIKE 'new table (id %)' AND recorded_by = 2",
                   "1\n");
    PQfinish(c);
}

static void test_cli_ranges(void **state) {
    (void)state;
    char host[32];
    snprintf(host, sizeof host, "127.0.0.1:%d", ports[2]);
    const char *argv[] = {mtest_meridian_bin(), "ranges", "--host", host, "--insecure", NULL};
    char *out = NULL, *err = NULL;
    int st = mtest_run(argv, NULL, CLUSTER_CMD_MS, &out, &err);
    printf("meridian ranges: exit %d\n%s%s", st, out ? out : "", err ? err : "");
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "range_id"));
    assert_non_null(strstr(out, "lease_holder"));
    assert_non_null(strstr(out, "/Table/accounts/1000"));
    assert_non_null(strstr(out, "{2,3,4}"));
    assert_non_null(strstr(out, "/Min"));
    base_free(out);
    base_free(err);
    const char *argv2[] = {mtest_meridian_bin(), "ranges", "--host", host, "--insecure",
                           "--table", "accounts", NULL};
    out = err = NULL;
    st = mtest_run(argv2, NULL, CLUSTER_CMD_MS, &out, &err);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "(3 rows)"));
    assert_null(strstr(out, "/Min"));
    base_free(out);
    base_free(err);
    const char *argv3[] = {mtest_meridian_bin(), "ranges", "--bogus", NULL};
    assert_int_equal(mtest_run(argv3, NULL, CLUSTER_CMD_MS, NULL, NULL), 2);
}

static void test_dead_target_refused(void **state) {
    (void)state;
    assert_int_equal(mtest_node_kill9(&nodes[3]), 0);
    status_row st[8];
    bool gone = false;
    for (int64_t deadline = now_ms() + CLUSTER_STATUS_MS; !gone && now_ms() < deadline;) {
        int n = node_status(ports[0], st, 8);
        for (int i = 0; i < n; i++)
            if (st[i].id == 4) gone = strcmp(st[i].state, "live") != 0;
        if (!gone) pause_ms(200);
    }
    assert_true(gone);
    PGconn *c = conn(0);
    char sql[128];
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE LEASE TO 4", middle);
    int64_t t0 = now_ms();
    e2e_fails(c, sql, "55000");
    printf("lease transfer to killed node 4 refused in %lld ms\n", (long long)(now_ms() - t0));
    PQfinish(c);
}

static void test_dead_node_replaced_logged(void **state) {
    (void)state;
    PGconn *c = conn(1);
    char add[128], rm[128];
    snprintf(add, sizeof add, "add_replica|%lu|replace dead node 4|1\n", middle);
    snprintf(rm, sizeof rm, "remove_replica|%lu|replace dead node 4|4\n", middle);
    bool ok = false;
    int64_t t0 = now_ms();
    char *got = NULL;
    for (int64_t deadline = t0 + REPLACE_WAIT_MS; !ok && now_ms() < deadline;) {
        base_free(got);
        got = e2e_rows(c, "SELECT event, range_id, reason, node_id FROM "
                          "meridian_internal.range_events WHERE reason LIKE 'replace%' "
                          "ORDER BY ts");
        ok = strstr(got, add) != NULL && strstr(got, rm) != NULL &&
             strstr(got, add) < strstr(got, rm);
        if (!ok) pause_ms(500);
    }
    if (!ok)
        print_error("replicate queue events after %lld ms:\n%s", (long long)(now_ms() - t0), got);
    base_free(got);
    PQfinish(c);
    assert_true(ok);
    printf("the replicate queue's replacement of node 4 in r%lu logged %lld ms after the "
           "refusal test\n", middle, (long long)(now_ms() - t0));
    range_row rows[RANGES_ROWS_MAX];
    int n = 0;
    wait_accounts(1, "{1,2,3}", 0, rows, &n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_and_show),  cmocka_unit_test(test_relocate_lease),
        cmocka_unit_test(test_relocate_voters), cmocka_unit_test(test_event_log),
        cmocka_unit_test(test_cli_ranges),      cmocka_unit_test(test_dead_target_refused),
        cmocka_unit_test(test_dead_node_replaced_logged),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
