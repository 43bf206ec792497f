/*
** tests/e2e/test_cluster_stale.c: stale reads on real `meridian` processes
** (issue 5; docs/txn.md section 8, docs/sql.md "Stale reads"). The group
** setup (e2e_cluster.h) starts three nodes and runs `meridian init`. Then:
**   - a table gets its own range; rows 1..5 are written, `t_abs` taken just
**     after; once a node G that does not hold the lease serves an AS OF
**     SYSTEM TIME read at t_abs itself (its follower-read counter moves:
**     the leaseholder's closed timestamp, published to G, passed t_abs), and
**     4 s have passed since the rows, row 100 is written: `SELECT ... AS OF
**     SYSTEM TIME '-4s'` through G sees exactly rows 1..5, and so does the
**     absolute t_abs (a decimal HLC timestamp and a timestamp string);
**   - a writer holds the lock of row 1 (BEGIN; UPDATE ... open): the stale
**     read through G returns row 1's old value while the writer waits, i.e.
**     without waiting for the lock;
**   - the leaseholder's process is SIGSTOPped: the read at t_abs through G
**     still returns rows 1..5, served by G's own replica (its counter
**     moves); the process is continued (also in the teardown on failure).
** The counters (SHOW follower_reads through G) are printed. Every wait is
** bounded; no assertion is on time.
*/
#define _GNU_SOURCE

#define NODES 3
#include "e2e_cluster.h"

#include <signal.h>

#define STALE_WAIT_MS (30 * 1000) /* a condition the test waits for */
#define ROWS_BEFORE "1|a\n2|b\n3|c\n4|d\n5|e\n"

static pid_t stopped_pid; /* a SIGSTOPped node: continued in the teardown */

static int teardown(void **state) {
    if (stopped_pid > 0) kill(stopped_pid, SIGCONT);
    stopped_pid = 0;
    return cluster_group_teardown(state);
}

/* The table's range's leaseholder (SHOW RANGES FROM TABLE s through node 0),
** waited for (bounded); 0 on failure. */
static unsigned long table_leaseholder(void) {
    int64_t deadline = now_ms() + STALE_WAIT_MS;
    while (now_ms() < deadline) {
        PGconn *c = conn(0);
        PGresult *r = PQexec(c, "SHOW RANGES FROM TABLE s");
        unsigned long lease = 0;
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) >= 6 &&
            !PQgetisnull(r, 0, 5))
            lease = strtoul(PQgetvalue(r, 0, 5), NULL, 10);
        PQclear(r);
        PQfinish(c);
        if (lease != 0) return lease;
        pause_ms(200);
    }
    return 0;
}

/* SHOW follower_reads through c: the "served here as a follower" count. */
static unsigned long long follower_reads(PGconn *c, bool print) {
    PGresult *r = e2e_exec_status(c, "SHOW follower_reads", PGRES_TUPLES_OK);
    const char *v = PQgetvalue(r, 0, 0);
    const char *p = strstr(v, "follower: ");
    unsigned long long n = p != NULL ? strtoull(p + 10, NULL, 10) : 0;
    if (print) printf("SHOW follower_reads: %s\n", v);
    assert_non_null(p);
    PQclear(r);
    return n;
}

static void test_stale_reads(void **state) {
    (void)state;
    PGconn *c1 = conn(0);
    e2e_ok(c1, "CREATE TABLE s (k INT PRIMARY KEY, v TEXT)");
    e2e_ok(c1, "INSERT INTO s VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e')");
    /* acknowledged after commit wait: its timestamp is below our clock now */
    int64_t t_abs = base_realtime_ns();
    int64_t rows_ms = now_ms();
    unsigned long lh = table_leaseholder();
    assert_true(lh >= 1 && lh <= NODES);
    int g = (int)(lh % NODES); /* index of a node that does not hold the lease */
    printf("table s: leaseholder node %lu, gateway node %d\n", lh, g + 1);
    PGconn *cg = conn(g);
    char q[256];
    snprintf(q, sizeof q, "SELECT k, v FROM s AS OF SYSTEM TIME '%lld.0' ORDER BY k",
             (long long)t_abs);

    /* until G's closed timestamp passes t_abs its reads go on to the
    ** leaseholder (same rows); then G serves them */
    unsigned long long before = follower_reads(cg, true);
    int64_t deadline = now_ms() + STALE_WAIT_MS;
    int polls = 0;
    for (;;) {
        e2e_rows_equal(cg, q, ROWS_BEFORE);
        polls++;
        if (follower_reads(cg, false) > before) break;
        assert_true(now_ms() < deadline);
        pause_ms(100);
    }
    printf("G served the read at t_abs itself %lld ms after the rows (%d polls)\n",
           (long long)(now_ms() - rows_ms), polls);
    while (now_ms() < rows_ms + 4500) pause_ms(50); /* '-4s' must reach past the rows */
    e2e_ok(c1, "INSERT INTO s VALUES (100, 'late')");
    before = follower_reads(cg, false);
    e2e_rows_equal(cg, "SELECT k, v FROM s AS OF SYSTEM TIME '-4s' ORDER BY k", ROWS_BEFORE);
    unsigned long long after = follower_reads(cg, false);
    printf("'-4s' through G: %llu follower read(s)\n", after - before);
    e2e_rows_equal(cg, q, ROWS_BEFORE);
    /* the same instant as a timestamp string (UTC, microseconds: at or
    ** below t_abs, above the rows' commit) */
    time_t sec = (time_t)(t_abs / 1000000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char stamp[64], q2[256];
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%06lld+00", (long long)(t_abs % 1000000000) / 1000);
    snprintf(q2, sizeof q2, "SELECT k, v FROM s AS OF SYSTEM TIME '%s' ORDER BY k", stamp);
    e2e_rows_equal(cg, q2, ROWS_BEFORE);
    /* now, the late row is there; the future is refused */
    e2e_rows_equal(cg, "SELECT count(*) FROM s", "6\n");
    e2e_fails(cg, "SELECT * FROM s AS OF SYSTEM TIME '10s'", "22008");
    /* a block at t_abs, read-only */
    snprintf(q2, sizeof q2, "BEGIN AS OF SYSTEM TIME '%lld.0'", (long long)t_abs);
    e2e_ok(cg, q2);
    e2e_rows_equal(cg, "SELECT count(*) FROM s", "5\n");
    e2e_fails(cg, "INSERT INTO s VALUES (7, 'g')", "25006");
    e2e_ok(cg, "ROLLBACK");

    /* a writer holding row 1's lock does not hold the stale read up */
    int w = (g + 1) % NODES;
    PGconn *cw = conn(w);
    e2e_ok(cw, "BEGIN");
    e2e_ok(cw, "UPDATE s SET v = 'locked' WHERE k = 1");
    int64_t t0 = now_ms();
    e2e_rows_equal(cg, "SELECT v FROM s AS OF SYSTEM TIME '-4s' WHERE k = 1", "a\n");
    printf("stale read of row 1 while node %d's writer holds its lock: %lld ms\n", w + 1,
           (long long)(now_ms() - t0));
    e2e_ok(cw, "COMMIT");
    e2e_rows_equal(cg, "SELECT v FROM s WHERE k = 1", "locked\n");
    e2e_rows_equal(cg, q, ROWS_BEFORE);
    PQfinish(cw);

    /* the leaseholder stops: G still answers at t_abs, itself */
    mtest_node *ln = &nodes[lh - 1];
    assert_true(ln->pid > 0);
    before = follower_reads(cg, false);
    stopped_pid = ln->pid;
    assert_int_equal(kill(ln->pid, SIGSTOP), 0);
    t0 = now_ms();
    e2e_rows_equal(cg, q, ROWS_BEFORE);
    int64_t took = now_ms() - t0;
    after = follower_reads(cg, true);
    printf("with node %lu stopped: the read at t_abs through G took %lld ms, %llu follower "
           "read(s)\n", lh, (long long)took, after - before);
    assert_true(after > before);
    assert_int_equal(kill(ln->pid, SIGCONT), 0);
    stopped_pid = 0;
    e2e_rows_equal(cg, q, ROWS_BEFORE);
    PQfinish(cg);
    PQfinish(c1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_reads),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, teardown);
}
