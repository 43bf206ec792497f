/*
** tests/e2e/test_cluster_stop.c: a SIGTERM'd cluster node stops within a
** bound whatever its peers do (chaos finding "a node that did not stop
** within 30 s of SIGTERM", docs/chaos.md; docs/operations.md, "Stopping a
** node").
**
** On one 3-node cluster (e2e_cluster.h), through node 1:
**   - session A holds a row lock (BEGIN; UPDATE ... k = 1) long enough for
**     its record's heartbeats to start; then session B's UPDATE of the same
**     row waits behind it (sent asynchronously);
**   - nodes 2 and 3 are SIGSTOPped: they answer nothing and refuse nothing
**     (their sockets stay open), so every KV wait of node 1 runs to its
**     bound;
**   - node 1 gets SIGTERM and must exit (status 0) within STOP_BOUND_MS: a
**     bound for the test, several times the stop's grace (SRV_STOP_GRACE_MS,
**     1 s, plus one rpc attempt: ~2 s measured), and below the router's
**     10 s deadline that B's lock wait (sent just before) ran to before the
**     fix, like every other KV wait of the stop (B's lock wait, A's
**     heartbeat, the rollbacks' resolutions, the liveness heartbeat: a
**     chaos run's node took more than 30 s). B's statement ends too (an
**     error, or its connection closed: it was in flight);
**   - nodes 2 and 3 continue, node 1 restarts on its store, and every node
**     reads the row: A's +10 was never committed (B's +1 may have been: it
**     was in flight when node 1 stopped).
** Every wait is bounded (CLUSTER_*_MS, STOP_BOUND_MS); nodes never stay
** stopped (SIGCONT before any assertion can leave the test).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>

#define NODES 3
#define STOP_BOUND_MS (8 * 1000)   /* node 1 must exit within this after SIGTERM */
#define HEARTBEAT_START_MS 1500    /* A's record heartbeats start after 1 s */
#define B_START_MS 200             /* B's statement reaches its lock wait */
#define RESULT_BOUND_MS (10 * 1000) /* B's statement ends once node 1 is gone */

#include "e2e_cluster.h"

/* Has process pid exited (a zombie not reaped yet, or gone)? */
static bool exited(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Wait (bounded) for the result of the statement sent on c; true when it
** ended (any result, or the connection closed). */
static bool statement_ended(PGconn *c, int bound_ms) {
    int64_t deadline = now_ms() + bound_ms;
    while (now_ms() < deadline) {
        if (PQconsumeInput(c) == 0) return true; /* connection lost */
        if (!PQisBusy(c)) {
            PGresult *r;
            while ((r = PQgetResult(c)) != NULL) {
                printf("session B: %s %s", PQresStatus(PQresultStatus(r)),
                       PQresultErrorMessage(r));
                PQclear(r);
            }
            return true;
        }
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (pfd.fd < 0) return true;
        (void)poll(&pfd, 1, 100);
    }
    return false;
}

static void resume_peers(void) {
    for (int i = 1; i < NODES; i++)
        if (nodes[i].pid > 0) kill(nodes[i].pid, SIGCONT);
}

static void test_stop_while_peers_paused(void **state) {
    (void)state;
    PGconn *setup = conn(0);
    e2e_ok(setup, "CREATE TABLE t (k INT PRIMARY KEY, v INT NOT NULL)");
    e2e_ok(setup, "INSERT INTO t VALUES (1, 0), (2, 0)");
    e2e_fails(setup, "INSERT INTO t VALUES (1, 5)", "23505");
    e2e_rows_equal(setup, "SELECT k, v FROM t ORDER BY k", "1|0\n2|0\n");
    PQfinish(setup);

    PGconn *a = conn(0), *b = conn(0);
    e2e_ok(a, "BEGIN");
    e2e_ok(a, "UPDATE t SET v = v + 10 WHERE k = 1"); /* A holds the row's lock */
    /* not waits for a condition: A's record heartbeats are then in flight,
    ** and B's statement has begun its lock wait, the harshest moment */
    pause_ms(HEARTBEAT_START_MS);
    assert_int_equal(PQsendQuery(b, "UPDATE t SET v = v + 1 WHERE k = 1"), 1);
    pause_ms(B_START_MS);

    bool paused = true;
    for (int i = 1; i < NODES; i++) paused = kill(nodes[i].pid, SIGSTOP) == 0 && paused;
    int64_t t0 = now_ms();
    bool gone = paused && kill(nodes[0].pid, SIGTERM) == 0;
    while (gone && !exited(nodes[0].pid) && now_ms() - t0 < STOP_BOUND_MS) pause_ms(50);
    gone = gone && exited(nodes[0].pid);
    int64_t took = now_ms() - t0;
    bool b_ended = gone && statement_ended(b, RESULT_BOUND_MS);
    resume_peers();
    int st = mtest_node_stop(&nodes[0]); /* reaps it (or SIGKILLs a hung one) */
    printf("node 1 %s %lld ms after SIGTERM with nodes 2 and 3 stopped (exit status %d)\n",
           gone ? "exited" : "still ran", (long long)took, st);
    PQfinish(a);
    PQfinish(b);
    assert_true(paused);
    assert_true(gone);
    assert_int_equal(st, 0);
    assert_true(b_ended);

    /* The cluster goes on; A's uncommitted +10 is nowhere. */
    assert_int_equal(start_node(0, nodes[0].store), 0);
    for (int i = 0; i < NODES; i++) {
        PGconn *c = conn(i);
        PGresult *r = NULL;
        for (int64_t d = now_ms() + CLUSTER_READY_MS; now_ms() < d; pause_ms(200)) {
            r = PQexec(c, "SELECT v FROM t WHERE k = 1");
            if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) break;
            PQclear(r);
            r = NULL;
            if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
        }
        assert_non_null(r);
        int v = atoi(PQgetvalue(r, 0, 0));
        printf("node %d: v = %d\n", i + 1, v);
        assert_true(v == 0 || v == 1);
        PQclear(r);
        PQfinish(c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_while_peers_paused),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
