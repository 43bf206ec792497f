/*
** bench/bench_pgwire.c: single-node figures over the PostgreSQL wire.
**
**   bench_pgwire [--url URL [--url URL ...] | --start [--bin PATH]] [--clients N]
**                [--duration SECONDS] [--rows N] [--workload point-select|insert|all]
**                [--churn] [--wait-sample N]
**
** Several --url (the nodes of a cluster): client i connects to url i mod n;
** setup runs through the first.
**
** Setup creates bench_accounts (id INT PRIMARY KEY, balance INT) and loads
** --rows rows. Workloads, each for --duration with --clients threads, each
** thread on its own connection, one statement per transaction (autocommit):
**   point-select: SELECT balance FROM bench_accounts WHERE id = <random>
**   insert:       INSERT INTO bench_accounts VALUES (<unique id>, <n>)
**   transfer:     BEGIN; UPDATE -1 one account; UPDATE +1 another; COMMIT,
**                 both accounts in the lower half of the ids (one range)
**   transfer-2r:  the same with one account from each half; setup splits
**                 the table at the middle id (ALTER TABLE ... SPLIT AT), so
**                 on a cluster it is a two-range (two-phase) commit. A
**                 transfer that fails with 40001 is retried (counted), and
**                 its latency runs from the first BEGIN to the COMMIT.
** --churn (a cluster; issue 6): the transfer workload twice, quiet and then
** with a background client that every second either splits the table at a
** random id (ALTER TABLE ... SPLIT AT) or moves the lease of a random range
** of it to another of its voters (ALTER RANGE ... RELOCATE LEASE TO), then
** quiet again on the ranges the churn left (splits make transfers cross
** ranges: two-phase commits), so the cost of splits and lease moves under
** load is a number; it prints the three figures and what the churner did.
** Prints transactions/s and p50/p99 latency. For the writing workloads
** (insert, transfer, transfer-2r) it also prints the commit wait (issue 5):
** after 1 in --wait-sample (16; 0: never) committed transactions of each
** client, `SHOW commit_wait` on the same connection reads that commit's wait
** and the epsilon it waited out; the SHOW is outside the transaction's
** latency but its round trip takes a little of the client's time (about
** 1/16 of a transaction's), so txn/s is that much lower than without it.
** Timing never fails the run: the
** exit code is non-zero only when the node cannot be reached or set up.
** With --start it runs its own node (`meridian start`, temp store, free
** port) and stops it at the end.
** Limits: BENCH_CLIENTS_MAX threads; latencies in a histogram of
** BENCH_HIST_BUCKETS 10-microsecond buckets (slower ones share the last);
** commit waits and their epsilons in BENCH_WAIT_BUCKETS 1-microsecond
** buckets each (the same).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

#define BENCH_CLIENTS_MAX 256
#define BENCH_HIST_BUCKETS 100000 /* 10 us each: up to 1 s */
#define BENCH_BUCKET_NS 10000
#define BENCH_LOAD_BATCH 500
#define BENCH_URLS_MAX 16
#define BENCH_WAIT_BUCKETS 100000 /* 1 us each: up to 100 ms */

typedef enum { W_POINT_SELECT, W_INSERT, W_TRANSFER, W_TRANSFER_2R } workload;
static const char *workload_name(workload w) {
    switch (w) {
    case W_POINT_SELECT: return "point-select";
    case W_INSERT: return "insert";
    case W_TRANSFER: return "transfer";
    case W_TRANSFER_2R: return "transfer-2r";
    }
    return "?";
}

typedef struct client {
    pthread_t thread;
    int index;
    workload w;
    const char *url;
    int64_t deadline_ns;
    long rows;
    uint64_t seed;
    uint64_t done, errors, retries;
    uint32_t *hist; /* BENCH_HIST_BUCKETS */
    /* SHOW commit_wait samples (wait_sample > 0, a writing workload) */
    int wait_sample;
    uint32_t *wait_hist; /* 2 x BENCH_WAIT_BUCKETS (waits, epsilons), owned by run_workload */
    uint64_t waits, wait_us_sum, wait_us_max, eps_us_sum, eps_us_min, eps_us_max;
    uint64_t waits_unbounded, waits_capped, wait_unreadable;
    char first_error[256];
} client;

/* "<wait>us (epsilon <e>us[, unbounded: ...][, cut at the limit])" (sql/settings.c) */
static void sample_commit_wait(client *c, PGconn *conn) {
    PGresult *r = PQexec(conn, "SHOW commit_wait");
    long long wait_us = -1, eps_us = -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) < 1 ||
        sscanf(PQgetvalue(r, 0, 0), "%lldus (epsilon %lldus", &wait_us, &eps_us) != 2 ||
        wait_us < 0 || eps_us < 0) {
        c->wait_unreadable++;
        PQclear(r);
        return;
    }
    const char *text = PQgetvalue(r, 0, 0);
    if (strstr(text, "unbounded") != NULL) c->waits_unbounded++;
    if (strstr(text, "cut at the limit") != NULL) c->waits_capped++;
    PQclear(r);
    c->wait_hist[wait_us < BENCH_WAIT_BUCKETS ? wait_us : BENCH_WAIT_BUCKETS - 1]++;
    uint32_t *eps_hist = c->wait_hist + BENCH_WAIT_BUCKETS;
    eps_hist[eps_us < BENCH_WAIT_BUCKETS ? eps_us : BENCH_WAIT_BUCKETS - 1]++;
    c->waits++;
    c->wait_us_sum += (uint64_t)wait_us;
    if ((uint64_t)wait_us > c->wait_us_max) c->wait_us_max = (uint64_t)wait_us;
    c->eps_us_sum += (uint64_t)eps_us;
    if (c->waits == 1 || (uint64_t)eps_us < c->eps_us_min) c->eps_us_min = (uint64_t)eps_us;
    if ((uint64_t)eps_us > c->eps_us_max) c->eps_us_max = (uint64_t)eps_us;
}

/* After a committed transaction: 1 in wait_sample reads its commit wait. */
static void maybe_sample(client *c, PGconn *conn) {
    if (c->wait_hist != NULL && c->wait_sample > 0 && c->done % (uint64_t)c->wait_sample == 0)
        sample_commit_wait(c, conn);
}

static atomic_long next_insert_id;
static int wait_sample_every = 16; /* --wait-sample */

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One statement of a transfer: 0 ok, 1 retryable (40001: rolled back), -1 error. */
static int transfer_step(client *c, PGconn *conn, const char *sql) {
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int out = 0;
    if (st != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        out = state != NULL && strcmp(state, "40001") == 0 ? 1 : -1;
        if (out < 0 && c->errors == 0)
            snprintf(c->first_error, sizeof c->first_error, "%s: %s", PQresStatus(st),
                     PQresultErrorMessage(r));
    }
    PQclear(r);
    if (out != 0 && PQtransactionStatus(conn) != PQTRANS_IDLE) PQclear(PQexec(conn, "ROLLBACK"));
    return out;
}

/* A transfer between two accounts, retried on 40001 (bounded). true: committed. */
static bool transfer(client *c, PGconn *conn) {
    long half = c->rows / 2 > 1 ? c->rows / 2 : 1;
    long a = 1 + (long)(rnd(&c->seed) % (uint64_t)half), b;
    if (c->w == W_TRANSFER_2R) {
        b = half + 1 + (long)(rnd(&c->seed) % (uint64_t)(c->rows - half > 0 ? c->rows - half : 1));
    } else {
        b = 1 + (long)(rnd(&c->seed) % (uint64_t)half);
        if (b == a) b = a % half + 1;
    }
    char up1[128], up2[128];
    snprintf(up1, sizeof up1, "UPDATE bench_accounts SET balance = balance - 1 WHERE id = %ld", a);
    snprintf(up2, sizeof up2, "UPDATE bench_accounts SET balance = balance + 1 WHERE id = %ld", b);
    const char *steps[] = {"BEGIN", up1, up2, "COMMIT"};
    for (int attempt = 0; attempt < 100 && base_monotonic_ns() < c->deadline_ns; attempt++) {
        int rc = 0;
        for (int k = 0; k < 4 && rc == 0; k++) rc = transfer_step(c, conn, steps[k]);
        if (rc == 0) return true;
        if (rc < 0) {
            c->errors++;
            return false;
        }
        c->retries++;
    }
    return false;
}

static void *client_main(void *arg) {
    client *c = arg;
    PGconn *conn = PQconnectdb(c->url);
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(c->first_error, sizeof c->first_error, "connect: %s", PQerrorMessage(conn));
        c->errors++;
        PQfinish(conn);
        return NULL;
    }
    char sql[160];
    while (base_monotonic_ns() < c->deadline_ns) {
        if (c->w == W_TRANSFER || c->w == W_TRANSFER_2R) {
            int64_t t0 = base_monotonic_ns();
            if (transfer(c, conn)) {
                int64_t b = (base_monotonic_ns() - t0) / BENCH_BUCKET_NS;
                c->hist[b < BENCH_HIST_BUCKETS ? b : BENCH_HIST_BUCKETS - 1]++;
                c->done++;
                maybe_sample(c, conn); /* after the latency was taken */
            }
            if (PQstatus(conn) != CONNECTION_OK) break;
            continue;
        }
        if (c->w == W_POINT_SELECT) {
            long id = 1 + (long)(rnd(&c->seed) % (uint64_t)c->rows);
            snprintf(sql, sizeof sql, "SELECT balance FROM bench_accounts WHERE id = %ld", id);
        } else {
            long id = atomic_fetch_add(&next_insert_id, 1);
            snprintf(sql, sizeof sql, "INSERT INTO bench_accounts VALUES (%ld, %ld)", id,
                     id % 1000);
        }
        int64_t t0 = base_monotonic_ns();
        PGresult *r = PQexec(conn, sql);
        int64_t dt = base_monotonic_ns() - t0;
        ExecStatusType st = PQresultStatus(r);
        bool ok = c->w == W_POINT_SELECT ? (st == PGRES_TUPLES_OK && PQntuples(r) == 1)
                                         : st == PGRES_COMMAND_OK;
        if (ok) {
            int64_t b = dt / BENCH_BUCKET_NS;
            c->hist[b < BENCH_HIST_BUCKETS ? b : BENCH_HIST_BUCKETS - 1]++;
            c->done++;
        } else {
            if (c->errors == 0)
                snprintf(c->first_error, sizeof c->first_error, "%s: %s", PQresStatus(st),
                         PQresultErrorMessage(r));
            c->errors++;
        }
        PQclear(r);
        if (ok) maybe_sample(c, conn); /* no-op for point-select (no wait_hist) */
        if (PQstatus(conn) != CONNECTION_OK) break;
    }
    PQfinish(conn);
    return NULL;
}

/* ---- --churn: splits and lease moves in the background -------------------------------- */

typedef struct churner {
    pthread_t thread;
    const char *url;
    long rows;
    uint64_t seed;
    atomic_bool stop;
    uint64_t splits, moves, failures;
    char first_error[256];
} churner;

static void churn_failed(churner *ch, PGresult *r) {
    if (ch->failures++ == 0)
        snprintf(ch->first_error, sizeof ch->first_error, "%s", PQresultErrorMessage(r));
}

/* Move the lease of a random range of the table to another of its voters. */
static void churn_move(churner *ch, PGconn *conn) {
    PGresult *r = PQexec(conn, "SHOW RANGES FROM TABLE bench_accounts");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0 || PQnfields(r) < 6) {
        churn_failed(ch, r);
        PQclear(r);
        return;
    }
    int row = (int)(rnd(&ch->seed) % (uint64_t)PQntuples(r));
    long range_id = atol(PQgetvalue(r, row, 0));
    long lease = PQgetisnull(r, row, 5) ? 0 : atol(PQgetvalue(r, row, 5));
    long voters[16];
    int n = 0;
    for (const char *p = PQgetvalue(r, row, 4); *p && n < 16; p++) /* "{1,2,3}" */
        if (*p >= '0' && *p <= '9') {
            char *end = NULL;
            long v = strtol(p, &end, 10);
            if (v != lease) voters[n++] = v;
            p = end - 1;
        }
    PQclear(r);
    if (n == 0) return;
    char sql[128];
    snprintf(sql, sizeof sql, "ALTER RANGE %ld RELOCATE LEASE TO %ld", range_id,
             voters[rnd(&ch->seed) % (uint64_t)n]);
    r = PQexec(conn, sql);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) ch->moves++;
    else churn_failed(ch, r);
    PQclear(r);
}

static void *churn_main(void *arg) {
    churner *ch = arg;
    PGconn *conn = PQconnectdb(ch->url);
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(ch->first_error, sizeof ch->first_error, "connect: %s", PQerrorMessage(conn));
        ch->failures++;
        PQfinish(conn);
        return NULL;
    }
    for (uint64_t tick = 0; !atomic_load(&ch->stop) && PQstatus(conn) == CONNECTION_OK; tick++) {
        if (tick % 2 == 0) {
            char sql[128];
            snprintf(sql, sizeof sql, "ALTER TABLE bench_accounts SPLIT AT VALUES (%ld)",
                     2 + (long)(rnd(&ch->seed) % (uint64_t)(ch->rows > 2 ? ch->rows - 1 : 1)));
            PGresult *r = PQexec(conn, sql);
            if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
                ch->splits++;
            else
                churn_failed(ch, r);
            PQclear(r);
        } else {
            churn_move(ch, conn);
        }
        for (int k = 0; k < 10 && !atomic_load(&ch->stop); k++) { /* a second, in steps */
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    PQfinish(conn);
    return NULL;
}

static double percentile_ms(const uint64_t *hist, uint64_t total, double p) {
    if (total == 0) return 0;
    uint64_t want = (uint64_t)(p * (double)total), seen = 0;
    if (want == 0) want = 1;
    for (int b = 0; b < BENCH_HIST_BUCKETS; b++) {
        seen += hist[b];
        if (seen >= want) return (double)(b + 1) * BENCH_BUCKET_NS / 1e6;
    }
    return (double)BENCH_HIST_BUCKETS * BENCH_BUCKET_NS / 1e6;
}

/* Commit waits are whole microseconds (SHOW rounds up): bucket b is b us. */
static uint64_t wait_percentile_us(const uint64_t *hist, uint64_t total, double p) {
    if (total == 0) return 0;
    uint64_t want = (uint64_t)(p * (double)total), seen = 0;
    if (want == 0) want = 1;
    for (int b = 0; b < BENCH_WAIT_BUCKETS; b++) {
        seen += hist[b];
        if (seen >= want) return (uint64_t)b;
    }
    return BENCH_WAIT_BUCKETS - 1;
}

/* The commit-wait line of a writing workload, from the clients' samples. */
static void print_commit_waits(const client *cs, int started) {
    uint64_t *hist = base_calloc(2 * BENCH_WAIT_BUCKETS, sizeof *hist); /* owned here */
    if (hist == NULL) return;
    uint64_t n = 0, sum = 0, max = 0, eps_sum = 0, eps_min = 0, eps_max = 0;
    uint64_t unbounded = 0, capped = 0, unreadable = 0;
    for (int i = 0; i < started; i++) {
        const client *c = &cs[i];
        if (c->wait_hist == NULL) continue;
        for (int b = 0; b < 2 * BENCH_WAIT_BUCKETS; b++) hist[b] += c->wait_hist[b];
        if (c->waits > 0 && (n == 0 || c->eps_us_min < eps_min)) eps_min = c->eps_us_min;
        n += c->waits;
        sum += c->wait_us_sum;
        eps_sum += c->eps_us_sum;
        if (c->wait_us_max > max) max = c->wait_us_max;
        if (c->eps_us_max > eps_max) eps_max = c->eps_us_max;
        unbounded += c->waits_unbounded;
        capped += c->waits_capped;
        unreadable += c->wait_unreadable;
    }
    if (n == 0) { /* each client samples its 16th, 32nd, ... commit */
        printf("  commit wait: no sample (no client committed %d; unreadable %llu)\n",
               wait_sample_every, (unsigned long long)unreadable);
        base_free(hist);
        return;
    }
    printf("  commit wait (SHOW commit_wait after 1 in %d commits, %llu samples): mean %.0f us"
           "  p50 %llu us  p99 %llu us  max %llu us; epsilon mean %.0f us  p50 %llu us"
           "  p99 %llu us (%llu-%llu us)",
           wait_sample_every, (unsigned long long)n, (double)sum / (double)n,
           (unsigned long long)wait_percentile_us(hist, n, 0.50),
           (unsigned long long)wait_percentile_us(hist, n, 0.99), (unsigned long long)max,
           (double)eps_sum / (double)n,
           (unsigned long long)wait_percentile_us(hist + BENCH_WAIT_BUCKETS, n, 0.50),
           (unsigned long long)wait_percentile_us(hist + BENCH_WAIT_BUCKETS, n, 0.99),
           (unsigned long long)eps_min,
           (unsigned long long)eps_max);
    if (unbounded || capped || unreadable)
        printf("; unbounded %llu, cut at the limit %llu, unreadable %llu",
               (unsigned long long)unbounded, (unsigned long long)capped,
               (unsigned long long)unreadable);
    printf("\n");
    base_free(hist);
}

static int run_workload(const char *const *urls, int n_urls, workload w, int nclients, double duration_s, long rows) {
    client *cs = base_calloc((size_t)nclients, sizeof *cs);
    uint64_t *hist = base_calloc(BENCH_HIST_BUCKETS, sizeof *hist);
    if (cs == NULL || hist == NULL) {
        base_free(cs);
        base_free(hist);
        return -1;
    }
    int64_t start = base_monotonic_ns();
    int started = 0;
    for (int i = 0; i < nclients; i++) {
        cs[i] = (client){.index = i, .w = w, .url = urls[i % n_urls], .rows = rows,
                         .deadline_ns = start + (int64_t)(duration_s * 1e9),
                         .seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1)};
        cs[i].hist = base_calloc(BENCH_HIST_BUCKETS, sizeof(uint32_t));
        cs[i].wait_sample = wait_sample_every;
        bool waits = w != W_POINT_SELECT && wait_sample_every > 0; /* read-write commits */
        if (waits) cs[i].wait_hist = base_calloc(2 * BENCH_WAIT_BUCKETS, sizeof(uint32_t));
        if (cs[i].hist == NULL || (waits && cs[i].wait_hist == NULL) ||
            pthread_create(&cs[i].thread, NULL, client_main, &cs[i]) != 0) {
            base_free(cs[i].hist);
            base_free(cs[i].wait_hist);
            cs[i].hist = NULL;
            cs[i].wait_hist = NULL;
            break;
        }
        started++;
    }
    uint64_t done = 0, errors = 0, retries = 0;
    const char *err = NULL;
    for (int i = 0; i < started; i++) {
        pthread_join(cs[i].thread, NULL);
        done += cs[i].done;
        errors += cs[i].errors;
        retries += cs[i].retries;
        if (err == NULL && cs[i].first_error[0]) err = cs[i].first_error;
        for (int b = 0; b < BENCH_HIST_BUCKETS; b++) hist[b] += cs[i].hist[b];
    }
    double elapsed = (double)(base_monotonic_ns() - start) / 1e9;
    printf("%-13s clients %3d  %6.1f s  %9llu txn  %10.1f txn/s  p50 %8.3f ms  p99 %8.3f ms"
           "  errors %llu  retries(40001) %llu\n",
           workload_name(w), started, elapsed,
           (unsigned long long)done, elapsed > 0 ? (double)done / elapsed : 0.0,
           percentile_ms(hist, done, 0.50), percentile_ms(hist, done, 0.99),
           (unsigned long long)errors, (unsigned long long)retries);
    if (err != NULL) printf("  first error: %s\n", err);
    if (w != W_POINT_SELECT && wait_sample_every > 0) print_commit_waits(cs, started);
    fflush(stdout);
    for (int i = 0; i < started; i++) {
        base_free(cs[i].hist);
        base_free(cs[i].wait_hist);
    }
    base_free(cs);
    base_free(hist);
    return 0;
}

static int setup(const char *url, long rows) {
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench: cannot connect to %s: %s", url, PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PQclear(PQexec(c, "DROP TABLE bench_accounts")); /* may not exist */
    PGresult *r = PQexec(c, "CREATE TABLE bench_accounts (id INT PRIMARY KEY, balance INT)");
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0) fprintf(stderr, "bench: create table: %s", PQresultErrorMessage(r));
    PQclear(r);
    base_buf b = {0};
    int64_t t0 = base_monotonic_ns();
    for (long id = 1; rc == 0 && id <= rows; id += BENCH_LOAD_BATCH) {
        base_buf_reset(&b);
        base_buf_printf(&b, "INSERT INTO bench_accounts VALUES ");
        for (long k = id; k < id + BENCH_LOAD_BATCH && k <= rows; k++)
            base_buf_printf(&b, "%s(%ld, %ld)", k == id ? "" : ", ", k, k % 1000);
        base_buf_append_byte(&b, 0);
        r = PQexec(c, (const char *)b.data);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "bench: load: %s", PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    if (rc == 0)
        printf("setup: loaded %ld rows in %.2f s\n", rows,
               (double)(base_monotonic_ns() - t0) / 1e9);
    if (rc == 0 && rows >= 2) { /* transfer-2r: two ranges on a cluster */
        char sql[128];
        snprintf(sql, sizeof sql, "ALTER TABLE bench_accounts SPLIT AT VALUES (%ld)", rows / 2 + 1);
        r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r); /* SPLIT AT answers rows */
        printf("setup: %s: %s", sql,
               st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? "done\n"
                                                               : PQresultErrorMessage(r));
        PQclear(r);
    }
    base_buf_free(&b);
    PQfinish(c);
    return rc;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_pgwire [--url URL [--url URL ...] | --start [--bin PATH]]\n"
                    "                    [--clients N]\n"
                    "                    [--duration SECONDS] [--rows N]\n"
                    "                    [--workload point-select|insert|transfer|transfer-2r|all]\n"
                    "                    [--churn] [--wait-sample N]\n");
}

int main(int argc, char **argv) {
    const char *url = "postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable";
    const char *urls[BENCH_URLS_MAX];
    int n_urls = 0;
    const char *bin = getenv("MERIDIAN_BIN") ? getenv("MERIDIAN_BIN") : "./build/meridian";
    const char *wl = "all";
    bool start = false, churn = false;
    int clients = 8;
    double duration = 10;
    long rows = 10000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--start") == 0) { start = true; continue; }
        if (strcmp(a, "--churn") == 0) { churn = true; continue; }
        if (v == NULL) { usage(); return 2; }
        if (strcmp(a, "--url") == 0) {
            if (n_urls == BENCH_URLS_MAX) { usage(); return 2; }
            urls[n_urls++] = v;
        }
        else if (strcmp(a, "--bin") == 0) bin = v;
        else if (strcmp(a, "--clients") == 0) clients = atoi(v);
        else if (strcmp(a, "--duration") == 0) duration = atof(v);
        else if (strcmp(a, "--rows") == 0) rows = atol(v);
        else if (strcmp(a, "--workload") == 0) wl = v;
        else if (strcmp(a, "--wait-sample") == 0) wait_sample_every = atoi(v);
        else { usage(); return 2; }
        i++;
    }
    if (clients < 1 || clients > BENCH_CLIENTS_MAX || duration <= 0 || rows < 1 ||
        wait_sample_every < 0 ||
        (strcmp(wl, "all") && strcmp(wl, "point-select") && strcmp(wl, "insert") &&
         strcmp(wl, "transfer") && strcmp(wl, "transfer-2r"))) {
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
    if (n_urls == 0 || start) {
        urls[0] = url;
        n_urls = 1;
    }
    url = urls[0];
    int rc = setup(url, rows);
    if (rc == 0) {
        atomic_store(&next_insert_id, rows + 1);
        printf("workloads: %d clients over %d node(s), %.1f s each\n", clients, n_urls, duration);
        bool all = strcmp(wl, "all") == 0 && !churn;
        if (churn) {
            printf("transfer, quiet:\n");
            run_workload(urls, n_urls, W_TRANSFER, clients, duration, rows);
            churner ch = {.url = urls[0], .rows = rows, .seed = 0x2545F4914F6CDD1DULL};
            bool churning = pthread_create(&ch.thread, NULL, churn_main, &ch) == 0;
            printf("transfer, with a split or a lease move every second:\n");
            run_workload(urls, n_urls, W_TRANSFER, clients, duration, rows);
            if (churning) {
                atomic_store(&ch.stop, true);
                pthread_join(ch.thread, NULL);
            }
            printf("  churn: %llu splits, %llu lease moves, %llu refused%s%s",
                   (unsigned long long)ch.splits, (unsigned long long)ch.moves,
                   (unsigned long long)ch.failures, ch.first_error[0] ? "; first: " : "\n",
                   ch.first_error);
            if (ch.first_error[0] && ch.first_error[strlen(ch.first_error) - 1] != '\n')
                printf("\n");
            /* the table now has the churn's ranges: quiet again on that shape tells
            ** the cost of the moves from the cost of more (cross-range) ranges */
            printf("transfer, quiet again (the ranges the churn left):\n");
            run_workload(urls, n_urls, W_TRANSFER, clients, duration, rows);
            wl = "none";
        }
        if (all || strcmp(wl, "point-select") == 0)
            run_workload(urls, n_urls, W_POINT_SELECT, clients, duration, rows);
        if (all || strcmp(wl, "insert") == 0)
            run_workload(urls, n_urls, W_INSERT, clients, duration, rows);
        if (all || strcmp(wl, "transfer") == 0)
            run_workload(urls, n_urls, W_TRANSFER, clients, duration, rows);
        if (all || strcmp(wl, "transfer-2r") == 0)
            run_workload(urls, n_urls, W_TRANSFER_2R, clients, duration, rows);
    }
    if (node > 0) bench_stop_node(node, dir);
    return rc == 0 ? 0 : 1;
}
