/*
** bench/bench_index.c: lookups by a non-key column over the PostgreSQL
** wire, without and with a secondary index (issue 8; docs/sql.md
** "Indexes").
**
**   bench_index [--url URL | --start [--bin PATH]] [--rows N] [--duration SECONDS]
**
** Setup creates bench_index (id INT PRIMARY KEY, email TEXT, grp INT) and
** loads --rows rows (email 'user<id>@example.com', grp id % 1000). Then,
** one client, one statement per transaction, each phase for --duration:
**   1. SELECT id FROM bench_index WHERE email = $1   (no index: a full scan)
**   2. CREATE UNIQUE INDEX ON bench_index (email)    (the online backfill, timed)
**   3. the same lookup (the index: one entry, one row)
**   4. SELECT count(*) ... WHERE grp = $1 without, then with an index on grp
**   5. INSERT rates without and with the two indexes (the writers' cost)
** Prints lookups/s and p50/p99 latency for each. Timing never fails the
** run: the exit code is non-zero only when the node cannot be reached or
** set up. With --start it runs its own node (`meridian start`, temp store,
** free port) and stops it at the end.
** Limits: BENCH_SAMPLES_MAX latencies kept per phase (later ones counted,
** not kept).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/base.h"
#include "bench/bench_util.h"

#define BENCH_LOAD_BATCH 500
#define BENCH_SAMPLES_MAX 1000000

static int64_t now_ns(void) { return base_monotonic_ns(); }

static bool ok_status(PGresult *r) {
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static int exec_ok(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    int rc = ok_status(r) ? 0 : -1;
    if (rc != 0) fprintf(stderr, "bench: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) { /* xorshift: the same keys every run */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

typedef enum { Q_EMAIL, Q_GROUP, Q_INSERT } query;

/* Run q for duration seconds (at least once); prints the rate. Returns the
** statements per second, or -1 when a statement failed. */
static double phase(PGconn *c, const char *label, query q, long rows, double duration,
                    long *next_id) {
    static const char *const sqls[] = {
        "SELECT id FROM bench_index WHERE email = $1",
        "SELECT count(*) FROM bench_index WHERE grp = $1",
        "INSERT INTO bench_index VALUES ($1, $2, $3)",
    };
    int64_t *lat = base_calloc(BENCH_SAMPLES_MAX, sizeof(*lat)); /* owner: this function */
    if (lat == NULL) return -1;
    long n = 0;
    int64_t t0 = now_ns(), end = t0 + (int64_t)(duration * 1e9);
    bool failed = false;
    do {
        char a[64], b[64], d[64];
        const char *params[3] = {a, b, d};
        int np = 1;
        long id = 1 + (long)(rnd() % (uint64_t)rows);
        if (q == Q_EMAIL) {
            snprintf(a, sizeof a, "user%ld@example.com", id);
        } else if (q == Q_GROUP) {
            snprintf(a, sizeof a, "%ld", id % 1000);
        } else {
            long nid = (*next_id)++;
            snprintf(a, sizeof a, "%ld", nid);
            snprintf(b, sizeof b, "user%ld@example.com", nid);
            snprintf(d, sizeof d, "%ld", nid % 1000);
            np = 3;
        }
        int64_t s = now_ns();
        PGresult *r = PQexecParams(c, sqls[q], np, NULL, params, NULL, NULL, 0);
        int64_t e = now_ns();
        if (!ok_status(r) || (q == Q_EMAIL && PQntuples(r) != 1)) {
            fprintf(stderr, "bench: %s: %s (%d rows)\n", sqls[q], PQresultErrorMessage(r),
                    PQntuples(r));
            failed = true;
        }
        PQclear(r);
        if (n < BENCH_SAMPLES_MAX) lat[n] = e - s;
        n++;
    } while (!failed && now_ns() < end);
    double secs = (double)(now_ns() - t0) / 1e9;
    long kept = n < BENCH_SAMPLES_MAX ? n : BENCH_SAMPLES_MAX;
    qsort(lat, (size_t)kept, sizeof(*lat), cmp_i64);
    double rate = (double)n / secs;
    printf("%-44s %10.1f /s   p50 %8.3f ms   p99 %8.3f ms   (%ld in %.1f s)\n", label, rate,
           (double)lat[kept / 2] / 1e6, (double)lat[kept * 99 / 100] / 1e6, n, secs);
    base_free(lat);
    return failed ? -1 : rate;
}

static int setup(PGconn *c, long rows) {
    base_buf b = {0};
    int rc = exec_ok(c, "DROP TABLE IF EXISTS bench_index");
    if (rc == 0)
        rc = exec_ok(c, "CREATE TABLE bench_index (id INT PRIMARY KEY, email TEXT, grp INT)");
    int64_t t0 = now_ns();
    for (long id = 1; rc == 0 && id <= rows; id += BENCH_LOAD_BATCH) {
        base_buf_reset(&b);
        base_buf_printf(&b, "INSERT INTO bench_index VALUES ");
        for (long k = id; k < id + BENCH_LOAD_BATCH && k <= rows; k++)
            base_buf_printf(&b, "%s(%ld, 'user%ld@example.com', %ld)", k == id ? "" : ", ", k, k,
                            k % 1000);
        base_buf_append_byte(&b, 0);
        rc = exec_ok(c, (const char *)b.data);
    }
    if (rc == 0)
        printf("setup: loaded %ld rows in %.2f s\n", rows, (double)(now_ns() - t0) / 1e9);
    base_buf_free(&b);
    return rc;
}

static int timed(PGconn *c, const char *sql) {
    int64_t t0 = now_ns();
    int rc = exec_ok(c, sql);
    if (rc == 0) printf("%-44s %10.3f s\n", sql, (double)(now_ns() - t0) / 1e9);
    return rc;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_index [--url URL | --start [--bin PATH]] [--rows N]\n"
                    "                   [--duration SECONDS]\n");
}

int main(int argc, char **argv) {
    const char *url = "postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable";
    const char *bin = getenv("MERIDIAN_BIN") ? getenv("MERIDIAN_BIN") : "./build/meridian";
    long rows = 20000;
    double duration = 3;
    bool start = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--start") == 0) {
            start = true;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--url") == 0)
            url = v;
        else if (strcmp(a, "--bin") == 0)
            bin = v;
        else if (strcmp(a, "--rows") == 0)
            rows = atol(v);
        else if (strcmp(a, "--duration") == 0)
            duration = atof(v);
        else {
            usage();
            return 2;
        }
    }
    if (rows < 1 || duration <= 0) {
        usage();
        return 2;
    }
    char dir[256] = "", started_url[512];
    pid_t node = -1;
    if (start) {
        node = bench_start_node(bin, dir, sizeof dir, started_url, sizeof started_url);
        if (node < 0) {
            fprintf(stderr, "bench: could not start %s\n", bin);
            return 1;
        }
        url = started_url;
        printf("started node pid %d at %s (store %s)\n", (int)node, url, dir);
    }
    PGconn *c = PQconnectdb(url);
    int rc = PQstatus(c) == CONNECTION_OK ? 0 : -1;
    if (rc != 0) fprintf(stderr, "bench: connect %s: %s", url, PQerrorMessage(c));
    if (rc == 0) rc = setup(c, rows);
    long next_id = rows + 1;
    if (rc == 0) {
        printf("one client, %.1f s per phase, %ld rows\n", duration, rows);
        double a = phase(c, "lookup by email, no index (full scan)", Q_EMAIL, rows, duration,
                         &next_id);
        double ia = phase(c, "insert, no secondary index", Q_INSERT, rows, duration, &next_id);
        rc = timed(c, "CREATE UNIQUE INDEX bench_email ON bench_index (email)");
        double b = rc == 0 ? phase(c, "lookup by email, unique index", Q_EMAIL, rows, duration,
                                   &next_id)
                           : -1;
        double g = phase(c, "count by grp (~rows/1000), no index", Q_GROUP, rows, duration,
                         &next_id);
        if (rc == 0) rc = timed(c, "CREATE INDEX bench_grp ON bench_index (grp)");
        double h = rc == 0 ? phase(c, "count by grp (~rows/1000), index", Q_GROUP, rows,
                                   duration, &next_id)
                           : -1;
        double ib = phase(c, "insert, two secondary indexes", Q_INSERT, rows, duration,
                          &next_id);
        if (a > 0 && b > 0) printf("email lookups: %.0fx faster with the index\n", b / a);
        if (g > 0 && h > 0) printf("grp counts:    %.0fx faster with the index\n", h / g);
        if (ia > 0 && ib > 0) printf("inserts:       %.2fx the rate without indexes\n", ib / ia);
        if (a < 0 || b < 0 || g < 0 || h < 0 || ia < 0 || ib < 0) rc = -1;
    }
    PQfinish(c);
    if (node > 0) bench_stop_node(node, dir);
    return rc == 0 ? 0 : 1;
}
