/*
** tests/e2e/test_cluster_loadsplit.c: per-range load and load-based
** splitting on real `meridian` processes (issue 6; docs/range.md "Load",
** docs/operations.md "Automatic splits"). The group setup (e2e_cluster.h)
** starts three nodes and runs `meridian init`; split_qps_threshold is set
** to THRESHOLD (60: low enough that a single hot row stays over it for
** the sustain time even in a loaded sanitizer build, where it ran at 50-160
** qps and once stayed under 150). Then, in order:
**   - a single hot row: four libpq clients (one per node, two on node 1)
**     read and update row 7 of table hot (1000 rows) for HOT_MS; SHOW
**     RANGES shows the table's range over the threshold (reads/s and
**     writes/s), the leaseholder's log says the range had no key dividing
**     its load (the rule fired and declined), the table keeps one range
**     and no load split is logged: the finder never suggests the key all
**     the load is on;
**   - a skewed workload: the same clients on table skew, 80% of their
**     reads and updates on ids 1..100, the rest on 101..1000; the table's
**     range splits by load (bounded wait, no timing assertion) with the
**     event reason "load N qps > 60", the split key a whole row key, and
**     its two halves end with leases on different nodes.
** Every figure (rates, time to split) is printed, never asserted on time.
** Every process dies with the test (mtest: PR_SET_PDEATHSIG and atexit);
** every wait is bounded.
*/
#define _GNU_SOURCE

#define NODES 3
#include "e2e_cluster.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

#define THRESHOLD 60
#define CLIENTS 4
#define ROWS 1000
#define HOT_ROW 7
#define HOT_MS (22 * 1000)        /* > sustain (10 s) + a finder window + rounds */
#define SPLIT_WAIT_MS (40 * 1000) /* the skewed table has split by load */
#define SPREAD_WAIT_MS (20 * 1000) /* ... and its halves' leases are apart */
#define SETTLE_MS 5000            /* > 2 settings refreshes (2 s each) */
#define NO_KEY_LOG "has no key that divides its load"

static void pause_long(int ms) { /* pause_ms takes less than a second */
    for (; ms > 0; ms -= 500) pause_ms(ms < 500 ? ms : 500);
}

/* Whether node i's log holds needle (read whole: the test is short); with
** print, every line holding it is printed. */
static bool log_scan(int i, const char *needle, bool print) {
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
    bool found = false;
    for (char *line = (char *)b.data; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL) *nl = '\0';
        if (strstr(line, needle) != NULL) {
            found = true;
            if (print) printf("  node %d: %s\n", i + 1, line);
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    base_buf_free(&b);
    return found;
}

static bool log_has(int i, const char *needle) { return log_scan(i, needle, false); }

typedef struct client {
    pthread_t thread;
    int node;
    const char *table;
    bool skewed; /* else every request on HOT_ROW */
    uint64_t rng;
    atomic_bool stop;
    atomic_long done, failed;
} client;

static client clients[CLIENTS];

static uint64_t next_random(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Reads and updates until told to stop; errors (a retryable 40001 while a
** split or lease move is under way) are counted, never fatal. */
static void *client_main(void *arg) {
    client *cl = arg;
    PGconn *c = mtest_connect(&nodes[cl->node]);
    if (c == NULL) return NULL;
    char sql[160];
    while (!atomic_load(&cl->stop)) {
        uint64_t r = next_random(&cl->rng);
        int id = HOT_ROW;
        if (cl->skewed)
            id = r % 10 < 8 ? 1 + (int)((r >> 8) % 100) : 101 + (int)((r >> 8) % (ROWS - 100));
        if ((r >> 40) % 2 == 0)
            snprintf(sql, sizeof sql, "SELECT v FROM %s WHERE id = %d", cl->table, id);
        else
            snprintf(sql, sizeof sql, "UPDATE %s SET v = v + 1 WHERE id = %d", cl->table, id);
        PGresult *res = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) atomic_fetch_add(&cl->done, 1);
        else atomic_fetch_add(&cl->failed, 1);
        PQclear(res);
        if (PQstatus(c) != CONNECTION_OK) break;
    }
    PQfinish(c);
    return NULL;
}

static void clients_start(const char *table, bool skewed) {
    for (int i = 0; i < CLIENTS; i++) {
        memset(&clients[i], 0, sizeof clients[i]);
        clients[i].node = i % NODES;
        clients[i].table = table;
        clients[i].skewed = skewed;
        clients[i].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
        assert_int_equal(pthread_create(&clients[i].thread, NULL, client_main, &clients[i]), 0);
    }
}

static void clients_stop(long *done, long *failed) {
    *done = *failed = 0;
    for (int i = 0; i < CLIENTS; i++) atomic_store(&clients[i].stop, true);
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(clients[i].thread, NULL);
        *done += atomic_load(&clients[i].done);
        *failed += atomic_load(&clients[i].failed);
    }
}

typedef struct range_row {
    char start[96];
    long lease;      /* 0: NULL */
    double reads, writes; /* -1: NULL */
} range_row;

/* SHOW RANGES FROM TABLE t through node i: the number of ranges (-1: the
** statement failed), the first max of them in out. */
static int show_ranges(int i, const char *t, range_row *out, int max) {
    char sql[96];
    snprintf(sql, sizeof sql, "SHOW RANGES FROM TABLE %s", t);
    PGconn *c = conn(i);
    PGresult *r = PQexec(c, sql);
    int n = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) == 10) {
        n = PQntuples(r);
        for (int row = 0; row < n && row < max; row++) {
            snprintf(out[row].start, sizeof out[row].start, "%s", PQgetvalue(r, row, 1));
            out[row].lease = PQgetisnull(r, row, 5) ? 0 : atol(PQgetvalue(r, row, 5));
            out[row].reads = PQgetisnull(r, row, 8) ? -1 : atof(PQgetvalue(r, row, 8));
            out[row].writes = PQgetisnull(r, row, 9) ? -1 : atof(PQgetvalue(r, row, 9));
        }
    } else {
        print_error("%s through node %d: %s\n", sql, i + 1, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
    return n;
}

static int load_split_events(void) {
    PGconn *c = conn(0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM meridian_internal.range_events WHERE "
             "event = 'split' AND reason LIKE 'load %% qps > %d'", THRESHOLD);
    char *ev = e2e_rows(c, sql);
    int n = atoi(ev);
    base_free(ev);
    PQfinish(c);
    return n;
}

static void create_table(const char *t) {
    PGconn *c = conn(0);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE TABLE %s (id INT PRIMARY KEY, v INT)", t);
    e2e_ok(c, sql);
    snprintf(sql, sizeof sql, "INSERT INTO %s SELECT g, 0 FROM generate_series(1, %d) AS g", t,
             ROWS);
    e2e_ok(c, sql);
    PQfinish(c);
}

static void test_threshold(void **state) {
    (void)state;
    PGconn *c = conn(0);
    e2e_fails(c, "SET CLUSTER SETTING split_qps_threshold = 0", "22023"); /* floor: 1 */
    char sql[96], want[16];
    snprintf(sql, sizeof sql, "SET CLUSTER SETTING split_qps_threshold = %d", THRESHOLD);
    snprintf(want, sizeof want, "%d\n", THRESHOLD);
    e2e_ok(c, sql);
    e2e_rows_equal(c, "SHOW CLUSTER SETTING split_qps_threshold", want);
    PQfinish(c);
    pause_long(SETTLE_MS); /* every node's split queue has read it */
}

/* A single hot row: over the threshold, never split. */
static void test_hot_row_never_splits(void **state) {
    (void)state;
    create_table("hot");
    int events0 = load_split_events();
    clients_start("hot", false);
    range_row rows[8];
    double peak = 0;
    for (int64_t end = now_ms() + HOT_MS; now_ms() < end;) {
        pause_long(2000);
        int n = show_ranges(1, "hot", rows, 8);
        if (n >= 1 && rows[0].reads >= 0) {
            double qps = rows[0].reads + rows[0].writes;
            if (qps > peak) peak = qps;
            printf("  hot row: %d range(s); the first at %.0f reads/s + %.0f writes/s "
                   "(leaseholder node %ld)\n", n, rows[0].reads, rows[0].writes, rows[0].lease);
        }
    }
    long done = 0, failed = 0;
    clients_stop(&done, &failed);
    int n = show_ranges(0, "hot", rows, 8);
    int events = load_split_events() - events0;
    bool declined = false;
    for (int i = 0; i < NODES; i++) declined = declined || log_has(i, NO_KEY_LOG);
    printf("single hot row for %d s: %ld statements (%ld failed), peak %.0f qps at the "
           "leaseholder; table hot has %d range(s), %d load split(s) logged; \"%s\" %s in "
           "a log\n", HOT_MS / 1000, done, failed, peak, n, events, NO_KEY_LOG,
           declined ? "found" : "NOT found");
    if (!declined)
        for (int i = 0; i < NODES; i++) (void)log_scan(i, "split queue", true);
    if (peak <= THRESHOLD)
        print_error("the hot row's range never went over %d qps: the check proves little\n",
                    THRESHOLD);
    assert_true(peak > THRESHOLD);
    assert_true(declined);
    assert_int_equal(n, 1);
    assert_int_equal(events, 0);
}

/* A skewed workload: split by load, halves' leases on different nodes. */
static void test_skewed_splits_and_spreads(void **state) {
    (void)state;
    create_table("skew");
    int events0 = load_split_events();
    clients_start("skew", true);
    range_row rows[8];
    int n = 0;
    int64_t t0 = now_ms(), split_ms = -1, spread_ms = -1;
    bool spread = false;
    for (int64_t end = t0 + SPLIT_WAIT_MS; now_ms() < end && !spread;) {
        pause_long(1000);
        n = show_ranges(2, "skew", rows, 8);
        if (n >= 1)
            printf("  %lld ms: %d range(s), the first at %.0f reads/s + %.0f writes/s\n",
                   (long long)(now_ms() - t0), n, rows[0].reads, rows[0].writes);
        if (n >= 2 && split_ms < 0) {
            split_ms = now_ms() - t0;
            end = now_ms() + SPREAD_WAIT_MS; /* from the split on: the lease move */
        }
        for (int a = 0; n >= 2 && a < n && a < 8 && !spread; a++)
            for (int b = a + 1; b < n && b < 8 && !spread; b++)
                spread = rows[a].lease != 0 && rows[b].lease != 0 && rows[a].lease != rows[b].lease;
        if (spread) spread_ms = now_ms() - t0;
    }
    long done = 0, failed = 0;
    clients_stop(&done, &failed);
    int events = load_split_events() - events0;
    PGconn *c = conn(0);
    char *sample = e2e_rows(c, "SELECT event, range_id, other_range_id, node_id, reason FROM "
                               "meridian_internal.range_events WHERE reason LIKE 'load%' "
                               "ORDER BY ts LIMIT 4");
    printf("skewed workload: %ld statements (%ld failed); split at %lld ms, leases apart at "
           "%lld ms; %d range(s), %d load split(s) logged:\n%s", done, failed,
           (long long)split_ms, (long long)spread_ms, n, events, sample);
    base_free(sample);
    for (int i = 0; i < n && i < 8; i++) printf("  %s (lease %ld)\n", rows[i].start, rows[i].lease);
    assert_true(n >= 2);
    assert_true(events >= 1);
    assert_true(spread);
    /* split keys inside the table are whole row keys: /Table/skew/<id> (the
    ** first range may start before the table) */
    for (int i = 0; i < n && i < 8; i++) {
        const char *s = rows[i].start;
        bool ok = strncmp(s, "/Table/skew", 11) != 0 || s[11] == '\0';
        if (!ok && strncmp(s, "/Table/skew/", 12) == 0) {
            char *e = NULL;
            ok = strtol(s + 12, &e, 10) > 0 && *e == '\0';
        }
        if (!ok) print_error("a range of skew starts at %s: not a whole row key\n", s);
        assert_true(ok);
    }
    /* every row still there */
    char *sum = e2e_rows(c, "SELECT count(*) FROM skew");
    assert_string_equal(sum, "1000\n");
    base_free(sum);
    PQfinish(c);
}

int main(void) {
    setenv("MTEST_LOG_LEVEL", "info", 0); /* the split queue's INFO lines (NO_KEY_LOG) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_hot_row_never_splits),
        cmocka_unit_test(test_skewed_splits_and_spreads),
    };
    return cmocka_run_group_tests(tests, cluster_group_setup, cluster_group_teardown);
}
