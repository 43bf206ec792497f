/*
** tests/e2e/e2e_bank.h: the bank workload of the cluster e2e tests
** (header-only; include it once, after e2e_cluster.h). Shared by
** test_cluster_txn.c and test_cluster_merge.c.
**
** Tables: acct (id INT PRIMARY KEY, bal INT NOT NULL), ids 1..ACCOUNTS at
** INITIAL_BALANCE, and xfer (id INT PRIMARY KEY, src INT, dst INT, amt INT).
** A client thread moves an amount between two accounts and logs the move in
** xfer in the same transaction block, retrying 40001/40003/57P03 up to
** TXN_TRIES_MAX times (after a 40003 an id already logged means an earlier
** attempt committed). It stops at bank_stop_ms (0: no deadline), when
** bank_stop is set (a transfer in retries is then given up) or after
** TRANSFERS_MAX acknowledged transfers.
**
** The test defines, before including: ACCOUNTS, INITIAL_BALANCE,
** TXN_TRIES_MAX, TRANSFERS_MAX and BANK_STEP(prng), how far (1 ..
** ACCOUNTS - 1, mod ACCOUNTS) the receiving account lies from the paying one.
*/
#ifndef MERIDIAN_E2E_BANK_H
#define MERIDIAN_E2E_BANK_H

#include <pthread.h>
#include <stdatomic.h>

#ifndef MERIDIAN_E2E_CLUSTER_H
#error "include e2e_cluster.h before e2e_bank.h"
#endif
#if !defined(ACCOUNTS) || !defined(INITIAL_BALANCE) || !defined(TXN_TRIES_MAX) || \
    !defined(TRANSFERS_MAX) || !defined(BANK_STEP)
#error "define ACCOUNTS, INITIAL_BALANCE, TXN_TRIES_MAX, TRANSFERS_MAX and BANK_STEP first"
#endif

/* SQLSTATE of the last error of r, "" for none. */
static const char *state_of(PGresult *r) {
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s != NULL ? s : "";
}

static bool retryable(const char *state) {
    return strcmp(state, "40001") == 0 || strcmp(state, "40003") == 0 ||
           strcmp(state, "57P03") == 0;
}

/* Run statements as one transaction block (BEGIN ... COMMIT). Returns 0 on
** commit, else the failing statement's SQLSTATE copied into state (the
** block is rolled back). */
static int run_block(PGconn *c, const char *const *sql, int n, char *state, size_t state_size) {
    state[0] = '\0';
    PGresult *r = PQexec(c, "BEGIN");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) snprintf(state, state_size, "%s", state_of(r));
    PQclear(r);
    for (int i = 0; ok && i <= n; i++) {
        r = PQexec(c, i < n ? sql[i] : "COMMIT");
        ExecStatusType st = PQresultStatus(r);
        ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!ok) snprintf(state, state_size, "%s", state_of(r));
        PQclear(r);
    }
    if (!ok) {
        PQclear(PQexec(c, "ROLLBACK")); /* ends an aborted block; a no-op otherwise */
        if (state[0] == '\0') snprintf(state, state_size, "?????");
        return -1;
    }
    return 0;
}

typedef struct transfer {
    int id, from, to, amount;
} transfer;

typedef struct client {
    int index;
    int node;
    int id_base;    /* transfer ids: id_base + seq */
    pthread_t thread;
    transfer *done; /* acknowledged; owner: the client (bank_clients_free) */
    int n_done;
    int attempts, retries, given_up;
    char error[256]; /* a failure the main thread reports ("" none) */
} client;

static int64_t bank_stop_ms; /* 0: no deadline */
static atomic_bool bank_stop;

/* Is transfer id in the log (-1: could not tell)? */
static int logged(PGconn *c, int id) {
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM xfer WHERE id = %d", id);
    PGresult *r = PQexec(c, sql);
    int n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0))
                                                                      : -1;
    PQclear(r);
    return n;
}

static bool bank_stopping(void) {
    return atomic_load(&bank_stop) || (bank_stop_ms != 0 && now_ms() >= bank_stop_ms);
}

static void *client_main(void *arg) {
    client *cl = arg;
    PGconn *c = mtest_connect(&nodes[cl->node]);
    if (c == NULL) {
        snprintf(cl->error, sizeof cl->error, "client %d: no connection", cl->index);
        return NULL;
    }
    uint64_t prng = 0x9E3779B97F4A7C15ull * (uint64_t)(cl->index + 1);
    for (int seq = 1; !bank_stopping() && cl->n_done < TRANSFERS_MAX; seq++) {
        prng ^= prng << 13;
        prng ^= prng >> 7;
        prng ^= prng << 17;
        transfer t = {cl->id_base + seq, (int)(prng % ACCOUNTS) + 1, 0,
                      (int)((prng >> 20) % 10) + 1};
        t.to = (t.from - 1 + (BANK_STEP(prng))) % ACCOUNTS + 1;
        char s1[96], s2[96], s3[128];
        snprintf(s1, sizeof s1, "UPDATE acct SET bal = bal - %d WHERE id = %d", t.amount, t.from);
        snprintf(s2, sizeof s2, "UPDATE acct SET bal = bal + %d WHERE id = %d", t.amount, t.to);
        snprintf(s3, sizeof s3, "INSERT INTO xfer VALUES (%d, %d, %d, %d)", t.id, t.from, t.to,
                 t.amount);
        const char *sql[] = {s1, s2, s3};
        bool acked = false, unknown = false;
        char state[8] = "";
        /* at bank_stop, a transfer in retries is given up (counted) */
        for (int attempt = 0; attempt < TXN_TRIES_MAX && !acked &&
                              (attempt == 0 || !atomic_load(&bank_stop));
             attempt++) {
            cl->attempts++;
            if (attempt > 0) cl->retries++;
            if (run_block(c, sql, 3, state, sizeof state) == 0) {
                acked = true;
                break;
            }
            if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
            if (strcmp(state, "40003") == 0) unknown = true;
            if (strcmp(state, "23505") == 0 && unknown) {
                acked = true; /* an earlier attempt of unknown outcome committed */
                break;
            }
            if (!retryable(state)) break;
        }
        if (!acked && unknown && logged(c, t.id) == 1) acked = true;
        if (acked) {
            cl->done[cl->n_done++] = t;
        } else {
            cl->given_up++;
            if (!retryable(state)) {
                snprintf(cl->error, sizeof cl->error, "client %d: transfer %d failed with %s",
                         cl->index, t.id, state);
                break;
            }
        }
    }
    PQfinish(c);
    return NULL;
}

/* Create acct and xfer through c and fill acct. */
static void bank_create(PGconn *c) {
    e2e_ok(c, "CREATE TABLE acct (id INT PRIMARY KEY, bal INT NOT NULL)");
    e2e_ok(c, "CREATE TABLE xfer (id INT PRIMARY KEY, src INT, dst INT, amt INT)");
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO acct SELECT g, %d FROM generate_series(1, %d) AS g",
             INITIAL_BALANCE, ACCOUNTS);
    e2e_ok(c, sql);
}

/* Start n clients, client i (0-based) on node i % NODES with transfer ids
** from (i + 1) * id_stride. */
static void bank_clients_start(client *cl, int n, int id_stride) {
    for (int i = 0; i < n; i++) {
        cl[i] = (client){.index = i + 1, .node = i % NODES, .id_base = (i + 1) * id_stride};
        cl[i].done = base_calloc(TRANSFERS_MAX, sizeof *cl[i].done);
        assert_non_null(cl[i].done);
        assert_int_equal(pthread_create(&cl[i].thread, NULL, client_main, &cl[i]), 0);
    }
}

static void bank_clients_join(client *cl, int n) {
    for (int i = 0; i < n; i++) pthread_join(cl[i].thread, NULL);
}

static void bank_clients_free(client *cl, int n) {
    for (int i = 0; i < n; i++) {
        base_free(cl[i].done);
        cl[i].done = NULL;
    }
}

typedef struct bank_tally {
    int acked, attempts, retries, given_up;
} bank_tally;

/* The clients' counts summed; every client error printed. */
static bank_tally bank_sum(const client *cl, int n) {
    bank_tally t = {0};
    for (int i = 0; i < n; i++) {
        if (cl[i].error[0] != '\0') print_error("%s\n", cl[i].error);
        t.acked += cl[i].n_done;
        t.attempts += cl[i].attempts;
        t.retries += cl[i].retries;
        t.given_up += cl[i].given_up;
    }
    return t;
}

/* "1|b1\n2|b2\n...", the balances the acknowledged transfers alone give
** (owner: caller, base_buf_free). */
static void bank_expected_rows(const client *cl, int n, base_buf *out) {
    int expect[ACCOUNTS + 1];
    for (int a = 1; a <= ACCOUNTS; a++) expect[a] = INITIAL_BALANCE;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < cl[i].n_done; k++) {
            const transfer *t = &cl[i].done[k];
            expect[t->from] -= t->amount;
            expect[t->to] += t->amount;
        }
    for (int a = 1; a <= ACCOUNTS; a++) base_buf_printf(out, "%d|%d\n", a, expect[a]);
    base_buf_append_byte(out, 0);
}

/* Every acknowledged transfer is in the log read through c. */
static void bank_assert_logged(PGconn *c, const client *cl, int n) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < cl[i].n_done; k++) assert_int_equal(logged(c, cl[i].done[k].id), 1);
}

#endif
