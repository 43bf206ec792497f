/*
** tests/e2e/test_cluster_rebalance.c: the allocator and rebalancer on real
** `meridian` processes (issue 6, check (b): "a 4th and a 5th node join and
** the rebalancer moves replicas onto them until every node holds a fair
** share"; docs/cluster.md, "Allocator and rebalancer").
**
** The group setup (e2e_cluster.h) starts three nodes and runs `meridian
** init`. Then:
**   - rebalance_cooldown = 5s (the default 60 s would make a range that
**     must move twice wait a minute), rebalance_leases = true (the
**     default, set anyway); a table `accounts` of ACCOUNTS rows,
**     split into 12 ranges (SPLIT AT), and a `transfers` log;
**   - the bank workload from two clients (through nodes 1 and 2): each
**     transfer moves an amount between two accounts and logs itself in one
**     transaction, retried on 40001;
**   - nodes 4 and 5 join (--join); the test waits (bounded by
**     REBALANCE_WAIT_MS, not a timing assertion) until SHOW RANGES shows
**     every node holding between floor(mean) - 1 and ceil(mean) + 1
**     voters, and prints the spread reached and the time it took; then
**     where it settles (no voter moved for SETTLED_MS, bounded) and the
**     leases per node then;
**   - the workload stops: the total balance is unchanged, every
**     acknowledged transfer is in the log, the clients saw no error but
**     retryable ones (40001), and the range event log has moves with a
**     "rebalance: node N has R replicas, mean M" reason.
** Every process dies with the test (mtest: PR_SET_PDEATHSIG and atexit);
** every wait is bounded.
*/
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#define NODES 3
#include "e2e_cluster.h"

#define ACCOUNTS 120
#define BALANCE 1000
#define SPLITS "(10), (20), (30), (40), (50), (60), (70), (80), (90), (100), (110)"
#define REBALANCE_WAIT_MS (75 * 1000) /* a generous bound, not an expectation */
#define SETTLE_MS (30 * 1000)
#define SETTLED_MS 8000               /* no voter moved for this long: settled */
#define CLIENTS 2
#define TRANSFERS_MAX 100000
#define ROWS_MAX 64
#define TOTAL_NODES 5

static mtest_node node5; /* the 5th node: e2e_cluster.h has one free slot (node 4) */
static int port5;

/* ---- the bank workload --------------------------------------------------------------------- */

typedef struct client {
    int node;                 /* index of the node it talks to */
    int id_base;              /* transfer ids: id_base + k */
    atomic_bool stop;
    atomic_int acked;
    atomic_int retryable;     /* 40001: retried */
    atomic_int other;         /* anything else */
    char other_text[256];
    int ids[TRANSFERS_MAX];   /* acknowledged transfer ids (its thread) */
    pthread_t thread;
} client;

static client clients[CLIENTS];

/* One transfer in one transaction; 1 committed, 0 retryable, -1 other. */
static int transfer(PGconn *c, int id, int from, int to, int amount, client *cl) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "BEGIN; UPDATE accounts SET balance = balance - %d WHERE id = %d; "
             "UPDATE accounts SET balance = balance + %d WHERE id = %d; "
             "INSERT INTO transfers VALUES (%d, %d, %d, %d); COMMIT",
             amount, from, amount, to, id, from, to, amount);
    PGresult *r = PQexec(c, sql);
    int rc = 1;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        rc = state != NULL && strcmp(state, "40001") == 0 ? 0 : -1;
        if (rc < 0 && atomic_fetch_add(&cl->other, 1) == 0)
            snprintf(cl->other_text, sizeof cl->other_text, "transfer %d: %s %s", id,
                     state ? state : "(no sqlstate)", PQresultErrorMessage(r));
        if (rc == 0) atomic_fetch_add(&cl->retryable, 1);
    }
    PQclear(r);
    if (rc != 1) {
        PGresult *rb = PQexec(c, "ROLLBACK"); /* the failed transaction, if still open */
        PQclear(rb);
        if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
    }
    return rc;
}

static void *client_main(void *arg) {
    client *cl = arg;
    PGconn *c = mtest_connect(&nodes[cl->node]);
    if (c == NULL) return NULL;
    unsigned seed = (unsigned)cl->id_base;
    for (int k = 0; !atomic_load(&cl->stop) && k < TRANSFERS_MAX; k++) {
        int from = 1 + (int)(rand_r(&seed) % ACCOUNTS), to = 1 + (int)(rand_r(&seed) % ACCOUNTS);
        if (to == from) to = to % ACCOUNTS + 1;
        int amount = 1 + (int)(rand_r(&seed) % 20), id = cl->id_base + k, rc;
        for (int attempt = 0; attempt < 50; attempt++) {
            if ((rc = transfer(c, id, from, to, amount, cl)) != 0) break;
            pause_ms(5);
        }
        if (rc == 1) {
            int n = atomic_load(&cl->acked);
            cl->ids[n] = id;
            atomic_store(&cl->acked, n + 1);
        }
    }
    PQfinish(c);
    return NULL;
}

/* ---- SHOW RANGES ------------------------------------------------------------------------- */

/* Voters (or, leases, leaseholders) per node (1-based) from SHOW RANGES
** through node i: the range count, or -1. */
static int range_counts(int i, int *count, int max_id, bool leases) {
    PGconn *c = mtest_connect(&nodes[i]);
    if (c == NULL) return -1;
    PGresult *r = PQexec(c, "SHOW RANGES");
    int n = -1, f_rep = PQfnumber(r, leases ? "lease_holder" : "replicas");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && f_rep >= 0) {
        n = PQntuples(r);
        for (int id = 0; id <= max_id; id++) count[id] = 0;
        for (int k = 0; k < n; k++) {
            if (PQgetisnull(r, k, f_rep)) continue;
            char buf[128], *save = NULL;
            snprintf(buf, sizeof buf, "%s", PQgetvalue(r, k, f_rep));
            for (char *t = strtok_r(buf, "{},", &save); t != NULL; t = strtok_r(NULL, "{},", &save)) {
                int id = atoi(t);
                if (id >= 1 && id <= max_id) count[id]++;
            }
        }
    }
    PQclear(r);
    PQfinish(c);
    return n;
}

static int voter_counts(int i, int *count, int max_id) {
    return range_counts(i, count, max_id, false);
}

static void spread_text(const int *count, char *buf, size_t size) {
    size_t o = 0;
    for (int id = 1; id <= TOTAL_NODES && o < size; id++)
        o += (size_t)snprintf(buf + o, size - o, "%snode %d: %d", id > 1 ? ", " : "", id,
                              count[id]);
}

/* ---- the test ------------------------------------------------------------------------------ */

static void test_new_nodes_get_a_fair_share(void **state) {
    (void)state;
    PGconn *c = conn(0);
    e2e_fails(c, "SET CLUSTER SETTING rebalance_cooldown = 'soon'", "22023");
    e2e_ok(c, "SET CLUSTER SETTING rebalance_cooldown = '5s'");
    e2e_ok(c, "SET CLUSTER SETTING rebalance_leases = true");
    e2e_ok(c, "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL)");
    e2e_ok(c, "CREATE TABLE transfers (id INT PRIMARY KEY, src INT, dst INT, amount INT)");
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO accounts SELECT g, %d FROM generate_series(1, %d) AS g", BALANCE,
             ACCOUNTS);
    e2e_ok(c, sql);
    e2e_ok(c, "ALTER TABLE accounts SPLIT AT VALUES " SPLITS);
    PQfinish(c);
    int count[TOTAL_NODES + 1];
    int n_ranges = voter_counts(0, count, TOTAL_NODES);
    printf("%d ranges before the joins\n", n_ranges);
    assert_true(n_ranges >= 12);

    for (int i = 0; i < CLIENTS; i++) {
        memset(&clients[i], 0, sizeof clients[i]);
        clients[i].node = i;
        clients[i].id_base = (i + 1) * 1000000;
        assert_int_equal(pthread_create(&clients[i].thread, NULL, client_main, &clients[i]), 0);
    }
    for (int64_t d = now_ms() + SETTLE_MS;
         (atomic_load(&clients[0].acked) < 10 || atomic_load(&clients[1].acked) < 10) &&
         now_ms() < d;)
        pause_ms(20);

    /* nodes 4 and 5 join */
    int64_t t0 = now_ms();
    assert_int_equal(start_node(NODES, NULL), 0);
    int extra[1];
    assert_int_equal(free_ports(extra, 1), 0);
    port5 = extra[0];
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port5);
    const char *args[] = {"--listen-addr", listen, "--join", join_list, "--insecure", NULL};
    assert_int_equal(mtest_node_start_raw(&node5, NULL, args), 0);
    PGconn *c5 = mtest_connect(&node5);
    assert_non_null(c5);
    PQfinish(c5);
    printf("nodes 4 and 5 joined in %lld ms\n", (long long)(now_ms() - t0));

    /* every node a fair share (bounded wait; the figure is printed, not asserted) */
    bool fair = false;
    double mean = 0;
    char spread[256] = "";
    int64_t fair_ms = -1;
    int64_t next_print = now_ms();
    for (int64_t d = now_ms() + REBALANCE_WAIT_MS; !fair && now_ms() < d;) {
        int n = voter_counts(0, count, TOTAL_NODES);
        if (n > 0) {
            int total = 0;
            for (int id = 1; id <= TOTAL_NODES; id++) total += count[id];
            mean = (double)total / TOTAL_NODES;
            int floor_mean = total / TOTAL_NODES;
            int ceil_mean = floor_mean + (total % TOTAL_NODES != 0);
            fair = true;
            for (int id = 1; id <= TOTAL_NODES; id++)
                fair = fair && count[id] >= floor_mean - 1 && count[id] <= ceil_mean + 1;
            spread_text(count, spread, sizeof spread);
            if (fair) fair_ms = now_ms() - t0;
            if (now_ms() >= next_print || fair) {
                printf("  +%lld ms: %d ranges, voters %s (mean %.1f)\n",
                       (long long)(now_ms() - t0), n, spread, mean);
                next_print = now_ms() + 5000;
            }
        }
        if (!fair) pause_ms(1000);
    }
    int lo = count[1], hi = count[1];
    for (int id = 2; id <= TOTAL_NODES; id++) {
        lo = count[id] < lo ? count[id] : lo;
        hi = count[id] > hi ? count[id] : hi;
    }
    printf("REBALANCE: %s: voters per node %d..%d, mean %.1f (%s), %lld ms after node 4 "
           "started (5 nodes, ASan build, bank workload running)\n",
           fair ? "fair share reached" : "NOT reached", lo, hi, mean, spread,
           (long long)fair_ms);
    assert_true(fair);

    /* where it settles: no voter moved for SETTLED_MS (bounded by SETTLE_MS) */
    int last[TOTAL_NODES + 1];
    memcpy(last, count, sizeof last);
    int64_t same_since = now_ms(), settled_ms = -1;
    for (int64_t d = now_ms() + SETTLE_MS; settled_ms < 0 && now_ms() < d;) {
        pause_ms(1000);
        if (voter_counts(0, count, TOTAL_NODES) <= 0) continue;
        if (memcmp(last, count, sizeof last) != 0) {
            memcpy(last, count, sizeof last);
            same_since = now_ms();
        } else if (now_ms() - same_since >= SETTLED_MS) {
            settled_ms = same_since - t0;
        }
    }
    lo = hi = last[1];
    for (int id = 2; id <= TOTAL_NODES; id++) {
        lo = last[id] < lo ? last[id] : lo;
        hi = last[id] > hi ? last[id] : hi;
    }
    spread_text(last, spread, sizeof spread);
    printf("REBALANCE: %s: voters per node %d..%d (%s), last move %lld ms after node 4 "
           "started\n", settled_ms >= 0 ? "settled" : "still moving", lo, hi, spread,
           (long long)(settled_ms >= 0 ? settled_ms : same_since - t0));
    if (range_counts(0, count, TOTAL_NODES, true) > 0) {
        spread_text(count, spread, sizeof spread);
        printf("leases then: %s\n", spread);
    }

    /* the workload: a few more transfers, then stop */
    int more = atomic_load(&clients[0].acked) + 10;
    for (int64_t d = now_ms() + SETTLE_MS; atomic_load(&clients[0].acked) < more && now_ms() < d;)
        pause_ms(20);
    for (int i = 0; i < CLIENTS; i++) atomic_store(&clients[i].stop, true);
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(clients[i].thread, NULL);
        printf("client through node %d: %d transfers acknowledged, %d retried (40001), %d other "
               "errors%s%s\n", i + 1, atomic_load(&clients[i].acked),
               atomic_load(&clients[i].retryable), atomic_load(&clients[i].other),
               atomic_load(&clients[i].other) ? ": first " : "", clients[i].other_text);
        assert_int_equal(atomic_load(&clients[i].other), 0);
        assert_true(atomic_load(&clients[i].acked) > 0);
    }

    /* the total is unchanged; every acknowledged transfer is there (through node 5) */
    c = mtest_connect(&node5);
    assert_non_null(c);
    char want[64];
    snprintf(want, sizeof want, "%d\n", ACCOUNTS * BALANCE);
    e2e_rows_equal(c, "SELECT sum(balance) FROM accounts", want);
    PGresult *r = PQexec(c, "SELECT id FROM transfers ORDER BY id");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int rows = PQntuples(r), acked_total = 0;
    for (int i = 0; i < CLIENTS; i++) {
        int j = 0;
        for (int k = 0; k < atomic_load(&clients[i].acked); k++, acked_total++) {
            while (j < rows && atoi(PQgetvalue(r, j, 0)) < clients[i].ids[k]) j++;
            if (j >= rows || atoi(PQgetvalue(r, j, 0)) != clients[i].ids[k])
                print_error("acknowledged transfer %d missing\n", clients[i].ids[k]);
            assert_true(j < rows && atoi(PQgetvalue(r, j, 0)) == clients[i].ids[k]);
        }
    }
    PQclear(r);
    printf("total balance %d unchanged; all %d acknowledged transfers present (%d logged)\n",
           ACCOUNTS * BALANCE, acked_total, rows);
    char *moves = e2e_rows(c, "SELECT count(*) FROM meridian_internal.range_events "
                              "WHERE reason LIKE 'rebalance: node % replicas, mean %'");
    char *sample = e2e_rows(c, "SELECT reason FROM meridian_internal.range_events "
                               "WHERE reason LIKE 'rebalance:%' LIMIT 1");
    printf("range events of the rebalancer: %s(for example \"%.*s\")\n", moves,
           (int)strcspn(sample, "\n"), sample);
    assert_true(atoi(moves) >= 2);
    base_free(moves);
    base_free(sample);
    PQfinish(c);
}

static int group_teardown(void **state) {
    int bad = 0;
    if (node5.pid > 0 && mtest_node_stop(&node5) != 0) {
        fprintf(stderr, "node 5 exit status after SIGTERM: not 0\n");
        bad = 1;
    }
    mtest_node_destroy(&node5);
    return cluster_group_teardown(state) != 0 || bad ? -1 : 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_nodes_get_a_fair_share),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, group_teardown);
}
