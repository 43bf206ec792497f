/*
** tests/e2e/test_cluster_decommission.c: `meridian node decommission`,
** `recommission` and `drain` on real `meridian` processes (issue 6;
** docs/operations.md, "Drain" and "Decommission"). The group setup
** (e2e_cluster.h) starts four nodes and runs `meridian init`: every range
** has its three replicas on nodes 1, 2 and 3; node 4 holds none. In order:
**   - a table split into several ranges, a lease moved to node 3; node
**     status shows every node active and not draining; `decommission 4
**     --wait=none` makes node 4 decommissioning at once, `recommission 4`
**     active again; an unknown node and a bad id are refused;
**   - while a client writes through node 2 and the bank workload
**     (e2e_bank.h, issue 6 check (c)) runs through nodes 1 and 2,
**     `decommission 3`: it prints "replicas left: N" down to 0 and exits 0;
**     every acknowledged row is readable; SHOW RANGES shows no replica and no lease on node 3; node
**     status says decommissioned; the range event log has the moves with
**     reason "decommission node 3"; then node 3 is stopped (SIGTERM, exit
**     0) and writes through nodes 1, 2 and 4 work; the bank stops: its
**     clients saw no error but retryable ones, the total balance read
**     through nodes 1, 2 and 4 is constant, every acknowledged transfer is
**     in the log and the balances are what the log says; decommissioning
**     node 4 now is refused (two live nodes would be left of three wanted);
**   - node 1, holding leases, is drained while a client writes through node
**     2: "leases left: 0", exit 0; node status says draining with no lease;
**     the event log has lease transfers with reason "drain node 1";
**     a new SQL connection to node 1 is refused (57P01); then SIGTERM of
**     node 1 (exit 0): the client's writes go on with no error but
**     retryable ones (40001), and every acknowledged row is there.
** Figures printed: the decommission's and the drain's durations.
** Every process dies with the test (mtest: PR_SET_PDEATHSIG and atexit);
** every wait is bounded (generous bounds as timeouts, no timing asserts).
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#define NODES 4
#include "e2e_cluster.h"

/* the bank workload (e2e_bank.h) during the decommission: clients 1 and 2
** through nodes 1 and 2 (client i talks to node i % NODES), so none talks
** to node 3, which is stopped afterwards */
#define ACCOUNTS 20
#define INITIAL_BALANCE 100
#define TXN_TRIES_MAX 50
#define TRANSFERS_MAX 65536
#define BANK_STEP(prng) (1 + (int)(((prng) >> 32) % (ACCOUNTS - 1)))
#define BANK_CLIENTS 2
#define BANK_SPLITS "(7), (14)" /* acct in three ranges, each with a replica on node 3 */
#include "e2e_bank.h"

#define TOOL_MS (180 * 1000)      /* one decommission or drain command */
#define SETTLE_MS (60 * 1000)     /* node status / SHOW RANGES show what we wait for */
#define WRITES_MAX 100000
#define ROWS_MAX 64               /* SHOW RANGES rows */
#define SPLITS "(50), (100), (150), (200)"
#define FIRST_ROWS 250

/* ---- helpers ---------------------------------------------------------------------------- */

/* meridian <args...> --host 127.0.0.1:port; the exit status (-1: timed out). */
static int tool(const char *const *args, int port, char **out, char **err) {
    char host[32];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    const char *argv[16];
    int a = 0;
    argv[a++] = mtest_meridian_bin();
    for (int i = 0; args[i] != NULL && a < 13; i++) argv[a++] = args[i];
    argv[a++] = "--host";
    argv[a++] = host;
    argv[a] = NULL;
    return mtest_run(argv, NULL, TOOL_MS, out, err);
}

typedef struct member_row {
    unsigned long id;
    char liveness[32], membership[32], draining[8];
    int replicas, leases;
} member_row;

/* `meridian node status` through port: rows "id rpc sql liveness [(..)]
** membership draining replicas leases". Returns the count or -1. */
static int member_status(int port, member_row *rows, int max) {
    const char *args[] = {"node", "status", NULL};
    char *out = NULL, *err = NULL;
    int st = tool(args, port, &out, &err);
    int n = -1;
    if (st == 0) {
        n = 0;
        char *save = NULL;
        for (char *line = strtok_r(out, "\n", &save); line != NULL && n < max;
             line = strtok_r(NULL, "\n", &save)) {
            char *tok[16];
            int k = 0;
            char *s2 = NULL;
            for (char *t = strtok_r(line, " ", &s2); t != NULL && k < 16; t = strtok_r(NULL, " ", &s2))
                tok[k++] = t;
            if (k < 8 || tok[0][0] < '0' || tok[0][0] > '9') continue;
            member_row *r = &rows[n++];
            r->id = strtoul(tok[0], NULL, 10);
            snprintf(r->liveness, sizeof r->liveness, "%s", tok[3]);
            snprintf(r->membership, sizeof r->membership, "%s", tok[k - 4]);
            snprintf(r->draining, sizeof r->draining, "%s", tok[k - 3]);
            r->replicas = atoi(tok[k - 2]);
            r->leases = atoi(tok[k - 1]);
        }
    } else {
        print_error("node status via %d: exit %d: %s", port, st, err ? err : "");
    }
    base_free(out);
    base_free(err);
    return n;
}

static const member_row *member(const member_row *rows, int n, unsigned long id) {
    for (int i = 0; i < n; i++)
        if (rows[i].id == id) return &rows[i];
    return NULL;
}

static void print_members(const member_row *rows, int n) {
    for (int i = 0; i < n; i++)
        print_error("  node %lu: %s %s draining=%s replicas=%d leases=%d\n", rows[i].id,
                    rows[i].liveness, rows[i].membership, rows[i].draining, rows[i].replicas,
                    rows[i].leases);
}

typedef struct range_row {
    unsigned long id;
    char replicas[64];
    unsigned long lease; /* 0: NULL */
} range_row;

/* SHOW RANGES through node i; -1 on an error. */
static int show_ranges(int i, range_row *rows, int max) {
    PGconn *c = conn(i);
    PGresult *r = PQexec(c, "SHOW RANGES");
    int n = -1;
    int f_id = PQfnumber(r, "range_id"), f_rep = PQfnumber(r, "replicas");
    int f_lease = PQfnumber(r, "lease_holder");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && f_id >= 0 && f_rep >= 0 && f_lease >= 0) {
        n = 0;
        for (int k = 0; k < PQntuples(r) && n < max; k++, n++) {
            rows[n].id = strtoul(PQgetvalue(r, k, f_id), NULL, 10);
            snprintf(rows[n].replicas, sizeof rows[n].replicas, "%s", PQgetvalue(r, k, f_rep));
            rows[n].lease = PQgetisnull(r, k, f_lease) ? 0
                                                       : strtoul(PQgetvalue(r, k, f_lease), NULL, 10);
        }
    } else {
        print_error("SHOW RANGES through node %d: %s\n", i + 1, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
    return n;
}

/* Whether "{1,2,4}" lists node id. */
static bool lists(const char *replicas, unsigned long id) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", replicas);
    char *save = NULL;
    for (char *t = strtok_r(buf, "{},", &save); t != NULL; t = strtok_r(NULL, "{},", &save))
        if (strtoul(t, NULL, 10) == id) return true;
    return false;
}

/* ---- a client writing through one node ---------------------------------------------------- */

typedef struct writer {
    int node;                 /* index of the node written through */
    int next_id;
    atomic_bool stop;
    atomic_int acked;
    atomic_int retryable;     /* failures with SQLSTATE 40001 */
    atomic_int other;         /* any other failure */
    char other_text[256];     /* the first of those */
    int ids[WRITES_MAX];      /* acknowledged ids (writer thread) */
    pthread_t thread;
} writer;

static writer w;

static void *writer_main(void *arg) {
    writer *wr = arg;
    PGconn *c = mtest_connect(&nodes[wr->node]);
    if (c == NULL) return NULL;
    for (int id = wr->next_id; !atomic_load(&wr->stop) && id < wr->next_id + WRITES_MAX; id++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, 'w')", id);
        PGresult *r = PQexec(c, sql);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (!ok && state != NULL && strcmp(state, "40001") == 0) {
            atomic_fetch_add(&wr->retryable, 1);
        } else if (!ok) {
            if (atomic_fetch_add(&wr->other, 1) == 0)
                snprintf(wr->other_text, sizeof wr->other_text, "id %d: %s %s", id,
                         state ? state : "(no sqlstate)", PQresultErrorMessage(r));
        }
        PQclear(r);
        if (!ok) {
            if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
            pause_ms(20);
            continue;
        }
        int k = atomic_load(&wr->acked);
        wr->ids[k] = id;
        atomic_store(&wr->acked, k + 1);
    }
    PQfinish(c);
    return NULL;
}

static void writer_start(int node, int first_id) {
    memset(&w, 0, sizeof w);
    w.node = node;
    w.next_id = first_id;
    assert_int_equal(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    for (int64_t d = now_ms() + SETTLE_MS; atomic_load(&w.acked) < 20 && now_ms() < d;)
        pause_ms(20);
    assert_true(atomic_load(&w.acked) >= 20);
}

/* Stop the writer after `more` further acknowledgements (bounded). */
static void writer_stop(int more) {
    int target = atomic_load(&w.acked) + more;
    for (int64_t d = now_ms() + SETTLE_MS; atomic_load(&w.acked) < target && now_ms() < d;)
        pause_ms(20);
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);
    printf("writer through node %d: %d acknowledged, %d retryable (40001), %d other failures%s%s\n",
           w.node + 1, atomic_load(&w.acked), atomic_load(&w.retryable), atomic_load(&w.other),
           atomic_load(&w.other) ? ": first " : "", w.other_text);
    assert_true(atomic_load(&w.acked) >= target);
}

/* Rows 1..FIRST_ROWS and every acknowledged write of the writer, through node i. */
static void check_acked(int i) {
    PGconn *c = conn(i);
    PGresult *r = NULL;
    for (int64_t d = now_ms() + SETTLE_MS; now_ms() < d; pause_ms(200)) {
        r = PQexec(c, "SELECT id FROM t ORDER BY id");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) break;
        PQclear(r);
        r = NULL;
        if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
    }
    assert_non_null(r);
    int rows_n = PQntuples(r), j = 0;
    for (int id = 1; id <= FIRST_ROWS; id++, j++)
        assert_true(j < rows_n && atoi(PQgetvalue(r, j, 0)) == id);
    int acked = atomic_load(&w.acked);
    for (int k = 0; k < acked; k++) { /* both ascending: merge */
        while (j < rows_n && atoi(PQgetvalue(r, j, 0)) < w.ids[k]) j++;
        if (j >= rows_n || atoi(PQgetvalue(r, j, 0)) != w.ids[k])
            print_error("node %d: acknowledged write %d missing\n", i + 1, w.ids[k]);
        assert_true(j < rows_n && atoi(PQgetvalue(r, j, 0)) == w.ids[k]);
    }
    printf("node %d: rows 1..%d and all %d acknowledged writes present (%d rows)\n", i + 1,
           FIRST_ROWS, acked, rows_n);
    PQclear(r);
    PQfinish(c);
}

/* ---- the tests ----------------------------------------------------------------------------- */

static void test_setup_and_refusals(void **state) {
    (void)state;
    PGconn *c = conn(0);
    /* placements are the test's own: no rebalancer moves (docs/operations.md "Rebalancing") */
    e2e_ok(c, "SET CLUSTER SETTING rebalance_enabled = false");
    e2e_ok(c, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)");
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO t SELECT g, 'r' || g FROM generate_series(1, %d) AS g",
             FIRST_ROWS);
    e2e_ok(c, sql);
    e2e_ok(c, "ALTER TABLE t SPLIT AT VALUES " SPLITS);
    PQfinish(c);
    range_row rows[ROWS_MAX];
    int n = show_ranges(0, rows, ROWS_MAX);
    assert_true(n >= 6); /* system ranges and t's five */
    /* node 3 holds a lease too: the decommission hands it away first */
    unsigned long moved = rows[n - 1].id;
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE LEASE TO 3", moved);
    c = conn(0);
    e2e_ok(c, sql);
    e2e_fails(c, "ALTER RANGE 99999 RELOCATE LEASE TO 3", "42704");
    PQfinish(c);
    for (int i = 0; i < n; i++) printf("  range %lu: replicas %s, lease %lu\n", rows[i].id,
                                       rows[i].replicas, rows[i].lease);

    member_row m[8];
    int k = member_status(ports[0], m, 8);
    assert_int_equal(k, 4);
    for (int i = 0; i < k; i++) {
        assert_string_equal(m[i].membership, "active");
        assert_string_equal(m[i].draining, "no");
    }

    /* --wait=none: decommissioning at once; recommission undoes it */
    char *out = NULL, *err = NULL;
    const char *none[] = {"node", "decommission", "4", "--wait=none", NULL};
    int st = tool(none, ports[1], &out, &err);
    printf("decommission 4 --wait=none: exit %d: %s%s", st, out ? out : "", err ? err : "");
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "decommissioning"));
    base_free(out);
    base_free(err);
    k = member_status(ports[2], m, 8);
    assert_non_null(member(m, k, 4));
    assert_string_equal(member(m, k, 4)->membership, "decommissioning");
    const char *back[] = {"node", "recommission", "4", NULL};
    st = tool(back, ports[0], &out, &err);
    printf("recommission 4: exit %d: %s%s", st, out ? out : "", err ? err : "");
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "active"));
    base_free(out);
    base_free(err);
    k = member_status(ports[0], m, 8);
    assert_string_equal(member(m, k, 4)->membership, "active");

    const char *unknown[] = {"node", "decommission", "9", NULL};
    st = tool(unknown, ports[0], &out, &err);
    printf("decommission 9: exit %d: %s", st, err ? err : "");
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "does not exist"));
    base_free(out);
    base_free(err);
    const char *bad[] = {"node", "decommission", "x3", NULL};
    assert_int_equal(tool(bad, ports[0], NULL, NULL), 2);
}

/* The bank after the decommission and node 3's stop: no client error but
** retryable ones, the total constant and every acknowledged transfer
** logged through each live node, the balances what the log says. */
static void bank_check(client *clients) {
    atomic_store(&bank_stop, true);
    bank_clients_join(clients, BANK_CLIENTS);
    bank_tally sum = bank_sum(clients, BANK_CLIENTS);
    printf("bank: %d transfers acknowledged in %d attempts (%d retries, %d given up) by %d "
           "clients\n", sum.acked, sum.attempts, sum.retries, sum.given_up, BANK_CLIENTS);
    for (int i = 0; i < BANK_CLIENTS; i++) assert_string_equal(clients[i].error, "");
    assert_true(sum.acked > 0);
    char want_total[32], sql[320];
    snprintf(want_total, sizeof want_total, "%d\n", INITIAL_BALANCE * ACCOUNTS);
    base_buf want = {0}; /* owner: here */
    bank_expected_rows(clients, BANK_CLIENTS, &want);
    const int live[] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        PGconn *c = conn(live[k]);
        e2e_rows_equal(c, "SELECT sum(bal) FROM acct", want_total);
        bank_assert_logged(c, clients, BANK_CLIENTS);
        char *got = e2e_rows(c, "SELECT id, bal FROM acct ORDER BY id");
        if (strcmp(got, (const char *)want.data) != 0) /* a given-up transfer of unknown
                                                          outcome committed: the log says */
            printf("balances through node %d differ from the acknowledged transfers alone "
                   "(given up: %d)\n", live[k] + 1, sum.given_up);
        base_free(got);
        PQfinish(c);
    }
    PGconn *c = conn(3);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM acct a WHERE a.bal <> %d "
             "- coalesce((SELECT sum(amt) FROM xfer WHERE src = a.id), 0) "
             "+ coalesce((SELECT sum(amt) FROM xfer WHERE dst = a.id), 0)",
             INITIAL_BALANCE);
    e2e_rows_equal(c, sql, "0\n");
    PQfinish(c);
    base_buf_free(&want);
    bank_clients_free(clients, BANK_CLIENTS);
}

static void test_decommission_under_writes(void **state) {
    (void)state;
    static client clients[BANK_CLIENTS];
    PGconn *bc = conn(0);
    bank_create(bc);
    e2e_ok(bc, "ALTER TABLE acct SPLIT AT VALUES " BANK_SPLITS);
    PQfinish(bc);
    atomic_store(&bank_stop, false);
    bank_clients_start(clients, BANK_CLIENTS, 1000000);
    writer_start(1, 100000); /* through node 2 */
    range_row rows[ROWS_MAX];
    int n_ranges = show_ranges(0, rows, ROWS_MAX);
    int64_t t0 = now_ms();
    char *out = NULL, *err = NULL;
    const char *args[] = {"node", "decommission", "3", "--timeout", "150s", NULL};
    int st = tool(args, ports[0], &out, &err);
    int64_t took = now_ms() - t0;
    printf("decommission 3: exit %d in %lld ms:\n%s%s", st, (long long)took, out ? out : "",
           err ? err : "");
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "replicas left: 0"));
    assert_non_null(strstr(out, "node 3 decommissioned"));
    base_free(out);
    base_free(err);
    printf("DECOMMISSION: %d ranges off node 3 in %lld ms (4 nodes, under writes)\n",
           n_ranges, (long long)took);
    writer_stop(20);
    assert_int_equal(atomic_load(&w.other), 0);
    check_acked(0);

    /* no replica, no lease on node 3 (newest descriptors from every node) */
    int n = 0;
    bool clean = false;
    for (int64_t d = now_ms() + SETTLE_MS; !clean && now_ms() < d;) {
        n = show_ranges(0, rows, ROWS_MAX);
        clean = n > 0;
        for (int i = 0; clean && i < n; i++)
            clean = !lists(rows[i].replicas, 3) && rows[i].lease != 3;
        if (!clean) pause_ms(200);
    }
    for (int i = 0; i < n; i++) printf("  range %lu: replicas %s, lease %lu\n", rows[i].id,
                                       rows[i].replicas, rows[i].lease);
    assert_true(clean);
    member_row m[8];
    int k = member_status(ports[1], m, 8);
    const member_row *m3 = member(m, k, 3);
    assert_non_null(m3);
    assert_string_equal(m3->membership, "decommissioned");
    assert_int_equal(m3->replicas, 0);

    PGconn *c = conn(1);
    char *count = e2e_rows(c, "SELECT count(*) FROM meridian_internal.range_events "
                              "WHERE reason = 'decommission node 3'");
    printf("range events with reason \"decommission node 3\": %s", count);
    assert_true(atoi(count) >= 2 * 2); /* an add and a remove per range moved, several ranges */
    base_free(count);
    PQfinish(c);

    /* stopped: no range loses its quorum */
    assert_int_equal(mtest_node_stop(&nodes[2]), 0);
    printf("node 3 stopped\n");
    for (int i = 0; i < NODES; i++) {
        if (i == 2) continue;
        c = conn(i);
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, 'after')", 300000 + i);
        e2e_ok(c, sql);
        PQfinish(c);
    }
    c = conn(3);
    e2e_rows_equal(c, "SELECT id, v FROM t WHERE id >= 300000 ORDER BY id",
                   "300000|after\n300001|after\n300003|after\n");
    PQfinish(c);
    bank_check(clients);
    /* two live, active nodes would be left of three wanted */
    const char *four[] = {"node", "decommission", "4", NULL};
    st = tool(four, ports[1], &out, &err);
    printf("decommission 4: exit %d: %s", st, err ? err : "");
    assert_int_equal(st, 1);
    assert_non_null(strstr(err, "replication factor"));
    base_free(out);
    base_free(err);
}

static void test_drain_then_stop(void **state) {
    (void)state;
    /* node 1 holds at least one lease */
    range_row rows[ROWS_MAX];
    int n = show_ranges(1, rows, ROWS_MAX);
    assert_true(n > 0);
    char sql[128];
    snprintf(sql, sizeof sql, "ALTER RANGE %lu RELOCATE LEASE TO 1", rows[n - 1].id);
    PGconn *c = conn(1);
    e2e_ok(c, sql);
    PQfinish(c);
    int held = 0;
    for (int i = 0; i < (n = show_ranges(1, rows, ROWS_MAX)); i++) held += rows[i].lease == 1;
    printf("node 1 holds %d of %d leases before the drain\n", held, n);
    assert_true(held >= 1);

    writer_start(1, 200000); /* through node 2 */
    int64_t t0 = now_ms();
    char *out = NULL, *err = NULL;
    const char *args[] = {"node", "drain", "--timeout", "150s", NULL};
    int st = tool(args, ports[0], &out, &err);
    int64_t took = now_ms() - t0;
    printf("drain node 1: exit %d in %lld ms:\n%s%s", st, (long long)took, out ? out : "",
           err ? err : "");
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "leases left: 0"));
    base_free(out);
    base_free(err);
    printf("DRAIN: %d lease(s) off node 1 in %lld ms\n", held, (long long)took);

    member_row m[8];
    int k = 0;
    bool ok = false;
    for (int64_t d = now_ms() + SETTLE_MS; !ok && now_ms() < d;) {
        k = member_status(ports[1], m, 8);
        const member_row *m1 = member(m, k, 1);
        ok = m1 != NULL && strcmp(m1->draining, "yes") == 0 && m1->leases == 0;
        if (!ok) pause_ms(200);
    }
    if (!ok) print_members(m, k);
    assert_true(ok);

    /* the hand-offs are in the event log (posted by node 1, written by its
    ** periodic thread: bounded wait; at least one, as a lease may also have
    ** left by an election) */
    c = conn(1);
    int n_logged = 0;
    for (int64_t d = now_ms() + SETTLE_MS; n_logged < 1 && now_ms() < d; pause_ms(200)) {
        char *count = e2e_rows(c, "SELECT count(*) FROM meridian_internal.range_events "
                                  "WHERE event = 'lease_transfer' AND reason = 'drain node 1'");
        n_logged = atoi(count);
        base_free(count);
    }
    printf("lease transfers with reason \"drain node 1\": %d (%d held)\n", n_logged, held);
    assert_true(n_logged >= 1);
    PQfinish(c);

    /* a new SQL session on the drained node is refused */
    PGconn *fresh = PQconnectdb(nodes[0].url);
    printf("a new connection to node 1: %s", PQerrorMessage(fresh));
    assert_int_equal(PQstatus(fresh), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(fresh), "draining"));
    PQfinish(fresh);

    assert_int_equal(mtest_node_stop(&nodes[0]), 0);
    printf("node 1 stopped (SIGTERM) after the drain\n");
    writer_stop(50);
    assert_int_equal(atomic_load(&w.other), 0);
    check_acked(3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_and_refusals),
        cmocka_unit_test(test_decommission_under_writes),
        cmocka_unit_test(test_drain_then_stop),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
