/*
** tests/e2e/test_cluster_clock.c: the peer-measured clock bound, commit wait
** and clock safety on a 3-node cluster of real `meridian` processes (issue
** 5, docs/clocks.md). Every node runs with --max-offset 100ms.
**
**   - node 3's clock 5 ms ahead (--clock-offset, test-only): SQL through
**     every node works, and `SHOW commit_wait` after a write reports a wait
**     and an epsilon measured from the peers: more than node 3's offset on
**     the nodes that see it, far below the max offset; each node's
**     meridian_internal.node_metrics counts its commit waits and its ε;
**   - node 3 restarted 2 s behind: it cannot bound its clock against a
**     majority, logs why ("clock offset bound unavailable") and serves
**     nothing: SQL through it fails with 57P03 (its transaction layer
**     begins no transaction; restarted so, its SQL never opens and the
**     login's FATAL says the clock bound is unavailable) and SHOW RANGES through node 1 names it
**     leaseholder of no range (it hands its leases away), while SQL through
**     nodes 1 and 2 goes on (their epsilon is the max offset: node 3
**     counts as that much);
**   - node 3 restarted with a correct clock serves SQL again (it logs
**     "established" at info, below the tests' warn level).
** Every wait is bounded (CLOCK_*_MS); nothing asserts on durations.
*/
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>

#define NODES 3
#define CLOCK_WAIT_MS (45 * 1000)   /* a log line or an epsilon we poll for */
#define CLOCK_MAX_OFFSET_US 100000  /* --max-offset 100ms */

#include "e2e_cluster.h"

/* Start node i (store NULL: new) with its clock moved by offset ("" none). */
static int start_clock_node(int i, const char *store, const char *offset) {
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", ports[i]);
    const char *args[12];
    int a = 0;
    args[a++] = "--listen-addr";
    args[a++] = listen;
    args[a++] = "--join";
    args[a++] = join_list;
    args[a++] = "--insecure";
    args[a++] = "--max-offset";
    args[a++] = "100ms";
    if (offset[0] != '\0') {
        args[a++] = "--clock-offset";
        args[a++] = offset;
    }
    args[a] = NULL;
    return mtest_node_start_raw(&nodes[i], store, args);
}

static int clock_group_setup(void **state) {
    (void)state;
    if (free_ports(ports, NODES + 1) != 0) return -1;
    size_t pos = 0;
    for (int i = 0; i < NODES; i++)
        pos += (size_t)snprintf(join_list + pos, sizeof join_list - pos, "%s127.0.0.1:%d",
                                i ? "," : "", ports[i]);
    for (int i = 0; i < NODES; i++) {
        if (start_clock_node(i, NULL, i == 2 ? "5ms" : "") != 0) return -1;
    }
    char *out = NULL, *err = NULL;
    int st = run_tool("init", NULL, ports[0], &out, &err);
    printf("meridian init: exit %d\n%s%s", st, out ? out : "", err ? err : "");
    bool ok = st == 0;
    base_free(out);
    base_free(err);
    return ok ? 0 : -1;
}

/* The node's log contains needle (the file is read whole: tests are short). */
static bool log_has(int i, const char *needle) {
    char path[MTEST_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/logs/meridian.log", nodes[i].store);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    base_buf b = {0};
    char chunk[65536];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof chunk)) > 0) base_buf_append(&b, chunk, (size_t)got);
    close(fd);
    base_buf_append_byte(&b, 0);
    bool found = b.data != NULL && strstr((const char *)b.data, needle) != NULL;
    base_buf_free(&b);
    return found;
}

/* SHOW commit_wait: "<wait>us (epsilon <eps>us...)". */
static void show_commit_wait(PGconn *c, long long *wait_us, long long *eps_us, char *text,
                             size_t size) {
    PGresult *r = e2e_exec_status(c, "SHOW commit_wait", PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQfname(r, 0), "commit_wait");
    snprintf(text, size, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    assert_int_equal(sscanf(text, "%lldus (epsilon %lldus", wait_us, eps_us), 2);
}

/* A write through c, retried while the cluster moves leases (bounded). */
static void write_retrying(PGconn *c, const char *sql) {
    int64_t deadline = now_ms() + CLOCK_WAIT_MS;
    for (;;) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK) {
            PQclear(r);
            return;
        }
        if (now_ms() >= deadline) {
            print_error("%s: %s\n", sql, PQresultErrorMessage(r));
            PQclear(r);
            fail();
        }
        PQclear(r);
        pause_ms(200);
    }
}

static void test_small_offset_commit_wait(void **state) {
    (void)state;
    PGconn *c[NODES];
    for (int i = 0; i < NODES; i++) c[i] = conn(i);
    char text[128];
    long long wait_us, eps_us;
    char *before = e2e_rows(c[0], "SHOW commit_wait");
    assert_string_equal(before, "0us (no read-write commit yet)\n");
    base_free(before);
    e2e_fails(c[0], "SET commit_wait = '1us'", "55P02"); /* read-only */
    e2e_ok(c[0], "CREATE TABLE acct (id INT PRIMARY KEY, v INT)");
    for (int i = 0; i < NODES; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO acct VALUES (%d, %d)", i + 1, 10 * (i + 1));
        write_retrying(c[i], sql);
        show_commit_wait(c[i], &wait_us, &eps_us, text, sizeof text);
        printf("node %d: SHOW commit_wait = %s\n", i + 1, text);
        assert_null(strstr(text, "unbounded"));
        /* measured, not the configured bound; nodes 1 and 2 see node 3 5 ms off */
        assert_true(eps_us > 0 && eps_us < CLOCK_MAX_OFFSET_US);
        if (i < 2) assert_true(eps_us >= 5000);
        assert_true(wait_us >= 0);
    }
    /* the node's counters (meridian_internal.node_metrics, docs/operations.md
    ** "Metrics"): each node acknowledged a commit and bounds its clock */
    for (int i = 0; i < NODES; i++) {
        e2e_rows_equal(c[i],
                       "SELECT name, value > 0 FROM meridian_internal.node_metrics WHERE name IN "
                       "('txn.commit_waits', 'clock.epsilon_bounded') ORDER BY name",
                       "clock.epsilon_bounded|t\ntxn.commit_waits|t\n");
        e2e_rows_equal(c[i],
                       "SELECT count(*) FROM meridian_internal.node_metrics WHERE name = "
                       "'clock.epsilon_ns' AND value > 0 AND value < 100000000",
                       "1\n");
    }
    /* a write through node 3 (its clock ahead) is seen through node 1 */
    e2e_ok(c[2], "UPDATE acct SET v = 31 WHERE id = 3");
    e2e_rows_equal(c[0], "SELECT v FROM acct WHERE id = 3", "31\n");
    e2e_rows_equal(c[1], "SELECT count(*), sum(v) FROM acct", "3|61\n");
    for (int i = 0; i < NODES; i++) PQfinish(c[i]);
}

/* Ranges SHOW RANGES (through c) names node `node` leaseholder of; -1 when
** SHOW RANGES failed. */
static int leases_of(PGconn *c, const char *node) {
    PGresult *r = PQexec(c, "SHOW RANGES");
    int col = PQfnumber(r, "lease_holder"), n = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || col < 0) {
        printf("SHOW RANGES: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    for (int i = 0; i < PQntuples(r); i++)
        n += !PQgetisnull(r, i, col) && strcmp(PQgetvalue(r, i, col), node) == 0;
    PQclear(r);
    return n;
}

/* Node i, its clock unbounded, refuses SQL with 57P03: a statement's error,
** or (a node restarted so: its SQL never opens) the login's, whose message
** names the clock (polled: the node may still be starting). */
static void assert_refuses_sql(int i) {
    int64_t deadline = now_ms() + CLOCK_WAIT_MS;
    char last[512] = "";
    for (;;) {
        PGconn *c = PQconnectdb(nodes[i].url);
        if (PQstatus(c) == CONNECTION_OK) {
            PGresult *r = PQexec(c, "SELECT v FROM acct WHERE id = 1");
            const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(last, sizeof last, "%s %s: %s", PQresStatus(PQresultStatus(r)),
                     st ? st : "", PQresultErrorMessage(r));
            bool refused = PQresultStatus(r) == PGRES_FATAL_ERROR && st != NULL &&
                           strcmp(st, "57P03") == 0;
            PQclear(r);
            if (refused) {
                printf("node %d with an unbounded clock: %s", i + 1, last);
                PQfinish(c);
                return;
            }
        } else {
            /* a restarted node never opens SQL while unbounded: the login's
            ** FATAL 57P03 (libpq keeps only its text) names the clock */
            snprintf(last, sizeof last, "connect: %s", PQerrorMessage(c));
            if (strstr(last, "clock offset bound is unavailable") != NULL) {
                printf("node %d with an unbounded clock: %s", i + 1, last);
                PQfinish(c);
                return;
            }
        }
        PQfinish(c);
        if (now_ms() >= deadline) break;
        pause_ms(200);
    }
    print_error("SQL through node %d with an unbounded clock, want 57P03: %s\n", i + 1, last);
    fail();
}

static void test_far_offset_stops_serving(void **state) {
    (void)state;
    assert_int_equal(mtest_node_stop(&nodes[2]), 0);
    assert_int_equal(start_clock_node(2, nodes[2].store, "-2s"), 0);
    /* node 3 says why it does not serve */
    int64_t deadline = now_ms() + CLOCK_WAIT_MS;
    while (!log_has(2, "clock offset bound unavailable") && now_ms() < deadline) pause_ms(200);
    assert_true(log_has(2, "clock offset bound unavailable"));
    assert_true(log_has(2, "beyond --max-offset") || log_has(2, "a majority"));
    /* it serves no SQL, and holds no lease (polled until it handed the
    ** last one away; SHOW RANGES may name it again for a moment while a
    ** lease it refuses to serve is taken over, seen once in CI: not
    ** asserted, the refusal above is what keeps reads safe) */
    assert_refuses_sql(2);
    {
        PGconn *c1 = conn(0);
        int held = -1;
        deadline = now_ms() + CLOCK_WAIT_MS;
        while ((held = leases_of(c1, "3")) != 0 && now_ms() < deadline) pause_ms(200);
        if (held != 0) print_error("node 3 still leaseholder of %d range(s)\n", held);
        assert_int_equal(held, 0);
        PQfinish(c1);
    }
    /* nodes 1 and 2 keep serving SQL; once they measured node 3 their
    ** epsilon is the max offset (node 3 counts as that much) */
    PGconn *c1 = conn(0), *c2 = conn(1);
    char text[128];
    long long wait_us = 0, eps_us = 0;
    int k = 10;
    deadline = now_ms() + CLOCK_WAIT_MS;
    for (;;) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO acct VALUES (%d, 1)", k++);
        write_retrying(c1, sql);
        show_commit_wait(c1, &wait_us, &eps_us, text, sizeof text);
        if (eps_us == CLOCK_MAX_OFFSET_US || now_ms() >= deadline) break;
        pause_ms(200);
    }
    printf("node 1 with node 3 2 s behind: SHOW commit_wait = %s\n", text);
    assert_int_equal(eps_us, CLOCK_MAX_OFFSET_US);
    write_retrying(c2, "UPDATE acct SET v = v + 1 WHERE id = 1");
    e2e_rows_equal(c1, "SELECT v FROM acct WHERE id = 1", "11\n");
    /* every write acknowledged through node 1 is seen through node 2 */
    char *got = e2e_rows(c2, "SELECT count(*) FROM acct WHERE id >= 10");
    assert_int_equal(atoi(got), k - 10);
    base_free(got);
    PQfinish(c1);
    PQfinish(c2);
}

static void test_correct_clock_serves_again(void **state) {
    (void)state;
    assert_int_equal(mtest_node_stop(&nodes[2]), 0);
    assert_int_equal(start_clock_node(2, nodes[2].store, ""), 0);
    PGconn *c3 = conn(2);
    write_retrying(c3, "UPDATE acct SET v = v + 1 WHERE id = 2");
    e2e_rows_equal(c3, "SELECT v FROM acct WHERE id = 2", "21\n");
    char text[128];
    long long wait_us, eps_us;
    show_commit_wait(c3, &wait_us, &eps_us, text, sizeof text);
    printf("node 3 with every clock right: SHOW commit_wait = %s\n", text);
    assert_true(eps_us > 0 && eps_us < CLOCK_MAX_OFFSET_US);
    PQfinish(c3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_offset_commit_wait),
        cmocka_unit_test(test_far_offset_stops_serving),
        cmocka_unit_test(test_correct_clock_serves_again),
    };
    (void)cluster_group_setup; /* e2e_cluster.h's; this binary starts its own nodes */
    return cmocka_run_group_tests(tests, clock_group_setup, cluster_group_teardown);
}
