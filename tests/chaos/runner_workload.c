/*
** tests/chaos/runner_workload.c: the four workloads of the chaos runner.
**
**   bank      table bank(id, balance): transfers (BEGIN; read both
**             balances; two UPDATEs with the values computed by the client;
**             an INSERT of the transfer's row into bank_ledger(id, from_acct,
**             to_acct, amount), id unique per client and sequence number;
**             COMMIT) and whole-table reads. Checked: every ok read sums to
**             accounts * CRUN_BANK_INITIAL, none negative, all accounts; the
**             final reads (balances and ledger in one statement) hold the row
**             of every ok transfer, none of a failed one, and balances equal
**             CRUN_BANK_INITIAL plus the rows' effects.
**   register  table reg(k, v), rows created with v = 0: reads, writes
**             (UPDATE), compare-and-set (UPDATE ... WHERE v = old; one row
**             affected = success). Clients work on a group of
**             CRUN_REGISTER_GROUP keys at a time and move to the next group
**             after register_ops_per_key ops per key, so each key's history
**             stays small enough for the linearizability search.
**   set       table sset(v): INSERT of unique values; at the end a read of
**             the whole set through every node, each checked on its own:
**             every acknowledged insert must be there.
**   append    table lists(k, pos, v): transactions of 1-4 micro-ops, each a
**             read of a whole list (SELECT v ... ORDER BY pos) or an append
**             (INSERT ... SELECT k, max(pos) + 1, v); a key is retired after
**             append_writes_per_key appends. Checked Elle-style for strict
**             serializability (real-time edges on).
**
** Final reads: after the clients stopped and every fault healed, one read
** of everything through every node, invoked after every other operation
** completed; recorded as ok operations of processes CRUN_FINAL_PROCESS + i.
**
** The teeth check (--teeth) injects one known fault into a copy of the
** final reads, never into the database: bank one balance +1; register a
** value nobody wrote; set an acknowledged insert dropped; append an element
** an ok transaction appended dropped. The checker must call that invalid.
**
** Invariants: values appended or inserted are unique in the run (one
** atomic counter); acked[] holds only values of ok operations; every
** statement has the operation's deadline; the key pool and acked[] are
** changed only under wl->mu.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/chaos/runner.h"

#define CRUN_BANK_INITIAL 100          /* each account's first balance */
#define CRUN_BANK_TRANSFER_MAX 5       /* amounts 1..5 */
#define CRUN_LEDGER_ID_STRIDE 1000000000ll /* ledger id = client * stride + seq */
#define CRUN_ACCOUNTS_MAX 64
#define CRUN_REGISTER_GROUP 3          /* keys worked on at once */
#define CRUN_REGISTER_KEYS 3000        /* rows created; the last group stays */
#define CRUN_REGISTER_VALUES 5         /* values 0..4 */
#define CRUN_APPEND_ACTIVE 5           /* keys worked on at once */
#define CRUN_APPEND_MOPS_MAX 4         /* micro-ops per transaction */
#define CRUN_FINAL_PROCESS 1000000     /* process ids of the final reads */
#define CRUN_SETUP_MS (60 * 1000)      /* one setup statement, retried */
#define CRUN_INSERT_BATCH 250          /* rows per setup INSERT */
#define CRUN_TEETH_VALUE 1000000007    /* a register value nobody writes */
#define CRUN_FINAL_READS_MAX (CRUN_NODES_MAX * (CRUN_REGISTER_KEYS + 100000))

typedef struct final_read {
    int node;
    int64_t invoke_ns, complete_ns;
    int64_t key;                        /* register, append */
    bool nil;                           /* register: no row */
    int64_t *vals;                      /* owner: the final_read */
    size_t n;
    int64_t *ledger;                    /* bank: rows of 4 (id from to amount); owner: the final_read */
    size_t n_ledger;                    /* rows */
} final_read;

struct crun_wl {
    pthread_mutex_t mu;
    atomic_llong next_value;            /* set, append: unique values */
    atomic_llong reg_seq;               /* register: ops started */
    atomic_llong reg_keys_used;         /* register: highest key used + 1 */
    int64_t active[CRUN_APPEND_ACTIVE]; /* append: key pool (mu) */
    int writes[CRUN_APPEND_ACTIVE];
    int64_t next_key;
    int64_t *acked;                     /* set/append ok values (mu); owner: wl */
    size_t n_acked, cap_acked;
    final_read *finals;                 /* owner: wl */
    size_t n_finals, cap_finals;
};

const char *crun_workload_name(crun_workload w) {
    switch (w) {
    case CRUN_WL_BANK: return "bank";
    case CRUN_WL_REGISTER: return "register";
    case CRUN_WL_SET: return "set";
    case CRUN_WL_APPEND: return "append";
    }
    return "?";
}

static int64_t now_ns(void) { return base_monotonic_ns(); }

static void poll_step(void) { /* a bounded retry step between attempts */
    struct timespec ts = {0, 100 * 1000L * 1000L};
    nanosleep(&ts, NULL);
}

static void ack(struct crun_wl *wl, int64_t v) {
    pthread_mutex_lock(&wl->mu);
    if (wl->n_acked == wl->cap_acked) {
        size_t cap = wl->cap_acked ? wl->cap_acked * 2 : 1024;
        int64_t *p = base_realloc(wl->acked, cap * sizeof *p);
        if (p != NULL) {
            wl->acked = p;
            wl->cap_acked = cap;
        }
    }
    /* Out of memory: the value is not a teeth candidate; nothing else. */
    if (wl->n_acked < wl->cap_acked) wl->acked[wl->n_acked++] = v;
    pthread_mutex_unlock(&wl->mu);
}

/* One statement that must succeed during setup or the final reads, retried
** (reconnecting) until the deadline. ok_states: SQLSTATEs that count as
** done (a retry of a statement that did apply). Returns the result (owner:
** caller) or NULL. */
static PGresult *exec_retry(crun_client *c, const char *sql, const char *ok_states,
                            int64_t deadline_ns, char *why, size_t why_size) {
    while (now_ns() < deadline_ns) {
        if (c->pg == NULL && !crun_client_connect(c)) {
            snprintf(why, why_size, "no node accepts connections");
            poll_step();
            continue;
        }
        PGresult *r = NULL;
        int64_t stmt_deadline = BASE_MIN(deadline_ns, now_ns() + 10 * 1000000000ll);
        crun_exec_rc rc = crun_exec(c, sql, stmt_deadline, &r);
        if (rc == CRUN_EXEC_OK) {
            ExecStatusType st = PQresultStatus(r);
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ||
                (state != NULL && ok_states != NULL && strstr(ok_states, state) != NULL))
                return r;
            snprintf(why, why_size, "%s", PQresultErrorMessage(r));
            PQclear(r);
        } else {
            snprintf(why, why_size, "%s", rc == CRUN_EXEC_TIMEOUT ? "timeout" : "connection lost");
        }
        poll_step();
    }
    return NULL;
}

static const char *table_of(crun_workload w) {
    switch (w) {
    case CRUN_WL_BANK: return "bank";
    case CRUN_WL_REGISTER: return "reg";
    case CRUN_WL_SET: return "sset";
    case CRUN_WL_APPEND: return "lists";
    }
    return "?";
}

void crun_wl_split_sql(crun_ctx *ctx, uint64_t *rng, char *sql, size_t size) {
    const crun_config *cfg = ctx->cfg;
    int64_t hi;
    switch (cfg->workload) {
    case CRUN_WL_BANK: hi = cfg->accounts - 1; break;
    case CRUN_WL_REGISTER: hi = CRUN_REGISTER_KEYS - 1; break;
    case CRUN_WL_SET: hi = BASE_MAX(atomic_load(&ctx->wl->next_value), 2); break;
    default: { /* append: keys in use and a little ahead */
        pthread_mutex_lock(&ctx->wl->mu);
        hi = ctx->wl->next_key + CRUN_APPEND_ACTIVE;
        pthread_mutex_unlock(&ctx->wl->mu);
        break;
    }
    }
    int64_t k = crun_rand_range(rng, 1, BASE_MAX(hi, 1));
    snprintf(sql, size, "ALTER TABLE %s SPLIT AT VALUES (%" PRId64 ")", table_of(cfg->workload), k);
}

/* "{1,2,4}" into ids[0..max): how many, or -1. */
static int parse_id_set(const char *s, int64_t *ids, int max) {
    int n = 0;
    if (*s++ != '{') return -1;
    while (*s != '}' && *s != '\0') {
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        if (end == s || n == max) return -1;
        ids[n++] = v;
        s = *end == ',' ? end + 1 : end;
    }
    return *s == '}' ? n : -1;
}

int crun_wl_move_sql(crun_ctx *ctx, int via, uint64_t *rng, bool voters, const bool *live,
                     char *sql, size_t size, char *kind, char *why, size_t why_size) {
    crun_client admin = {.ctx = ctx, .index = -1, .node = via};
    admin.pg = crun_connect(ctx->cluster, via);
    if (admin.pg == NULL) {
        snprintf(why, why_size, "cannot connect to n%d", via + 1);
        return -1;
    }
    char q[128];
    snprintf(q, sizeof q, "SHOW RANGES FROM TABLE %s", table_of(ctx->cfg->workload));
    PGresult *r = NULL;
    int out = -1;
    crun_exec_rc rc = crun_exec(&admin, q, now_ns() + 10 * 1000000000ll, &r);
    if (rc != CRUN_EXEC_OK) {
        snprintf(why, why_size, "SHOW RANGES: %s", rc == CRUN_EXEC_TIMEOUT ? "timeout" : "connection lost");
        goto done;
    }
    int c_id = PQfnumber(r, "range_id"), c_rep = PQfnumber(r, "replicas"),
        c_lh = PQfnumber(r, "lease_holder");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || c_id < 0 || c_rep < 0 || c_lh < 0 ||
        PQntuples(r) == 0) {
        snprintf(why, why_size, "SHOW RANGES: %s", PQresultStatus(r) == PGRES_TUPLES_OK
                 ? "no ranges or unexpected columns" : PQresultErrorMessage(r));
        goto done;
    }
    int row = (int)crun_rand_range(rng, 0, PQntuples(r) - 1);
    int64_t range_id = strtoll(PQgetvalue(r, row, c_id), NULL, 10);
    int64_t reps[CRUN_NODES_MAX + 8];
    int n_reps = parse_id_set(PQgetvalue(r, row, c_rep), reps, CRUN_NODES_MAX + 8);
    int64_t lh = PQgetisnull(r, row, c_lh) ? 0 : strtoll(PQgetvalue(r, row, c_lh), NULL, 10);
    if (n_reps <= 0) {
        snprintf(why, why_size, "range %" PRId64 ": replicas \"%s\" not understood", range_id,
                 PQgetvalue(r, row, c_rep));
        goto done;
    }
    int n = ctx->cluster->n;
    int64_t outside[CRUN_NODES_MAX];
    int n_out = 0;
    for (int i = 0; i < n; i++) {
        bool is_rep = false;
        for (int k = 0; k < n_reps; k++) is_rep |= reps[k] == i + 1;
        if (!is_rep && live[i]) outside[n_out++] = i + 1;
    }
    if (voters && n_out > 0) {
        int64_t from = reps[crun_rand_range(rng, 0, n_reps - 1)];
        int64_t to = outside[crun_rand_range(rng, 0, n_out - 1)];
        snprintf(sql, size, "ALTER RANGE %" PRId64 " RELOCATE VOTERS FROM %" PRId64 " TO %" PRId64,
                 range_id, from, to);
        *kind = 'V';
    } else {
        int64_t cand[CRUN_NODES_MAX + 8];
        int n_cand = 0;
        for (int k = 0; k < n_reps; k++)
            if (reps[k] != lh) cand[n_cand++] = reps[k];
        if (n_cand == 0) {
            snprintf(why, why_size, "range %" PRId64 ": no replica but the leaseholder", range_id);
            goto done;
        }
        snprintf(sql, size, "ALTER RANGE %" PRId64 " RELOCATE LEASE TO %" PRId64, range_id,
                 cand[crun_rand_range(rng, 0, n_cand - 1)]);
        *kind = 'L';
    }
    out = 0;
done:
    PQclear(r);
    crun_client_disconnect(&admin);
    return out;
}

int crun_wl_merge_sql(crun_ctx *ctx, int via, uint64_t *rng, int all_one_in, char *sql,
                      size_t size, int *boundaries, char *why, size_t why_size) {
    const char *table = table_of(ctx->cfg->workload);
    *boundaries = 0;
    crun_client admin = {.ctx = ctx, .index = -1, .node = via};
    admin.pg = crun_connect(ctx->cluster, via);
    if (admin.pg == NULL) {
        snprintf(why, why_size, "cannot connect to n%d", via + 1);
        return -1;
    }
    char q[128], prefix[64];
    snprintf(q, sizeof q, "SHOW RANGES FROM TABLE %s", table);
    snprintf(prefix, sizeof prefix, "/Table/%s/", table);
    PGresult *r = NULL;
    int out = -1;
    crun_exec_rc rc = crun_exec(&admin, q, now_ns() + 10 * 1000000000ll, &r);
    if (rc != CRUN_EXEC_OK) {
        snprintf(why, why_size, "SHOW RANGES: %s", rc == CRUN_EXEC_TIMEOUT ? "timeout" : "connection lost");
        goto done;
    }
    int c_start = PQfnumber(r, "start_key");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || c_start < 0) {
        snprintf(why, why_size, "SHOW RANGES: %s", PQresultStatus(r) == PGRES_TUPLES_OK
                 ? "no start_key column" : PQresultErrorMessage(r));
        goto done;
    }
    /* split points: starts inside the table ("/Table/lists/5", values after
    ** the name; "/Table/lists" is the table's first key, which stays) */
    int rows[CRUN_RESULTS_MAX], n_rows = 0;
    for (int i = 0; i < PQntuples(r) && n_rows < CRUN_RESULTS_MAX; i++) {
        const char *start = PQgetvalue(r, i, c_start);
        if (strncmp(start, prefix, strlen(prefix)) == 0 && start[strlen(prefix)] != '\0')
            rows[n_rows++] = i;
    }
    *boundaries = n_rows;
    if (n_rows == 0) {
        snprintf(why, why_size, "no split point in table %s (%d ranges)", table, PQntuples(r));
        goto done;
    }
    if (all_one_in > 0 && crun_rand_range(rng, 1, all_one_in) == 1) {
        snprintf(sql, size, "ALTER TABLE %s UNSPLIT ALL", table);
        out = 0;
        goto done;
    }
    /* "/Table/lists/5/2" -> "(5, 2)": the split nemesis splits at integers */
    const char *values = PQgetvalue(r, rows[crun_rand_range(rng, 0, n_rows - 1)], c_start) +
                         strlen(prefix);
    char tuple[128];
    size_t used = 0;
    for (const char *p = values; *p != '\0' && used + 3 < sizeof tuple; p++) {
        if (*p == '/') {
            tuple[used++] = ',';
            tuple[used++] = ' ';
        } else if ((*p >= '0' && *p <= '9') || *p == '-') {
            tuple[used++] = *p;
        } else {
            snprintf(why, why_size, "split point \"%s\" is not a tuple of integers", values);
            goto done;
        }
    }
    tuple[used] = '\0';
    snprintf(sql, size, "ALTER TABLE %s UNSPLIT AT VALUES (%s)", table, tuple);
    out = 0;
done:
    PQclear(r);
    crun_client_disconnect(&admin);
    return out;
}

int crun_admin_query_int(crun_ctx *ctx, int i, const char *sql, int timeout_ms, int64_t *out,
                         char *why, size_t why_size) {
    crun_client admin = {.ctx = ctx, .index = -1, .node = i};
    admin.pg = crun_connect(ctx->cluster, i);
    if (admin.pg == NULL) {
        snprintf(why, why_size, "cannot connect to n%d", i + 1);
        return -1;
    }
    PGresult *r = NULL;
    crun_exec_rc rc = crun_exec(&admin, sql, now_ns() + (int64_t)timeout_ms * 1000000, &r);
    int ret = -1;
    if (rc != CRUN_EXEC_OK)
        snprintf(why, why_size, "%s", rc == CRUN_EXEC_TIMEOUT ? "timeout" : "connection lost");
    else if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1 || PQnfields(r) < 1 ||
             PQgetisnull(r, 0, 0))
        snprintf(why, why_size, "%s", PQresultStatus(r) == PGRES_TUPLES_OK ? "no value"
                 : PQresultErrorMessage(r));
    else {
        *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        ret = 0;
    }
    PQclear(r);
    crun_client_disconnect(&admin);
    return ret;
}

int crun_admin_exec(crun_ctx *ctx, int i, const char *sql, int timeout_ms, char *why,
                    size_t why_size) {
    crun_client admin = {.ctx = ctx, .index = -1, .node = i};
    admin.pg = crun_connect(ctx->cluster, i);
    if (admin.pg == NULL) {
        snprintf(why, why_size, "cannot connect to n%d", i + 1);
        return -1;
    }
    PGresult *r = NULL;
    crun_exec_rc rc = crun_exec(&admin, sql, now_ns() + (int64_t)timeout_ms * 1000000, &r);
    int out = -1;
    if (rc != CRUN_EXEC_OK)
        snprintf(why, why_size, "%s", rc == CRUN_EXEC_TIMEOUT ? "timeout" : "connection lost");
    else if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        snprintf(why, why_size, "%s", PQresultErrorMessage(r));
    else
        out = 0;
    PQclear(r);
    crun_client_disconnect(&admin);
    return out;
}

int crun_wl_setup(crun_ctx *ctx) {
    const crun_config *cfg = ctx->cfg;
    struct crun_wl *wl = base_calloc(1, sizeof *wl);
    if (wl == NULL) return -1;
    pthread_mutex_init(&wl->mu, NULL);
    for (int i = 0; i < CRUN_APPEND_ACTIVE; i++) wl->active[i] = i;
    wl->next_key = CRUN_APPEND_ACTIVE;
    ctx->wl = wl;

    crun_client admin = {.ctx = ctx, .index = -1, .node = 0};
    char why[512] = "", sql[256];
    int rc = -1;
    int64_t deadline = now_ns() + (int64_t)CRUN_SETUP_MS * 1000000;
    base_buf stmts = {0}; /* NUL-separated statements */
    switch (cfg->workload) {
    case CRUN_WL_BANK: {
        base_buf_printf(&stmts, "CREATE TABLE bank (id INT PRIMARY KEY, balance INT NOT NULL)%c", 0);
        base_buf_printf(&stmts, "CREATE TABLE bank_ledger (id BIGINT PRIMARY KEY, from_acct INT NOT NULL, "
                                "to_acct INT NOT NULL, amount INT NOT NULL)%c", 0);
        base_buf_printf(&stmts, "INSERT INTO bank VALUES ");
        for (int a = 0; a < cfg->accounts; a++)
            base_buf_printf(&stmts, "%s(%d, %d)", a ? ", " : "", a, CRUN_BANK_INITIAL);
        base_buf_append_byte(&stmts, 0);
        break;
    }
    case CRUN_WL_REGISTER:
        base_buf_printf(&stmts, "CREATE TABLE reg (k INT PRIMARY KEY, v INT NOT NULL)%c", 0);
        for (int k = 0; k < CRUN_REGISTER_KEYS; k += CRUN_INSERT_BATCH) {
            base_buf_printf(&stmts, "INSERT INTO reg VALUES ");
            for (int j = k; j < k + CRUN_INSERT_BATCH && j < CRUN_REGISTER_KEYS; j++)
                base_buf_printf(&stmts, "%s(%d, 0)", j > k ? ", " : "", j);
            base_buf_append_byte(&stmts, 0);
        }
        break;
    case CRUN_WL_SET:
        base_buf_printf(&stmts, "CREATE TABLE sset (v INT PRIMARY KEY)%c", 0);
        break;
    case CRUN_WL_APPEND:
        base_buf_printf(&stmts, "CREATE TABLE lists (k INT NOT NULL, pos INT NOT NULL, "
                                "v INT NOT NULL, PRIMARY KEY (k, pos))%c", 0);
        break;
    }
    if (stmts.data == NULL) goto cleanup;
    for (size_t off = 0; off < stmts.len; off += strlen((char *)stmts.data + off) + 1) {
        /* 42P07: the table exists, 23505: the rows exist (a retry of a
        ** statement whose first answer was lost). */
        PGresult *r = exec_retry(&admin, (char *)stmts.data + off, "42P07 23505", deadline, why,
                                 sizeof why);
        if (r == NULL) {
            fprintf(stderr, "chaos: setup: %.80s...: %s\n", (char *)stmts.data + off, why);
            goto cleanup;
        }
        PQclear(r);
    }
    /* Every node sees the table (its catalog may lag behind node 1's);
    ** bank: both tables. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s%s", table_of(cfg->workload),
             cfg->workload == CRUN_WL_BANK ? ", bank_ledger" : "");
    for (int i = 0; i < ctx->cluster->n; i++) {
        crun_client probe = {.ctx = ctx, .index = -1, .node = i};
        probe.pg = crun_connect(ctx->cluster, i);
        PGresult *r = NULL;
        while (probe.pg != NULL && now_ns() < deadline) {
            if (crun_exec(&probe, sql, now_ns() + 10 * 1000000000ll, &r) == CRUN_EXEC_OK &&
                PQresultStatus(r) == PGRES_TUPLES_OK)
                break;
            snprintf(why, sizeof why, "%s", r ? PQresultErrorMessage(r) : "connection lost");
            PQclear(r);
            r = NULL;
            if (probe.pg == NULL) probe.pg = crun_connect(ctx->cluster, i);
            poll_step();
        }
        bool ok = r != NULL;
        PQclear(r);
        if (probe.pg != NULL) PQfinish(probe.pg);
        if (!ok) {
            fprintf(stderr, "chaos: node %d never saw table %s: %s\n", i + 1,
                    table_of(cfg->workload), why);
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    base_buf_free(&stmts);
    if (admin.pg != NULL) PQfinish(admin.pg);
    return rc;
}

/* ---- one operation ---------------------------------------------------------- */

/* Roll back an open transaction after a failure (best effort: a broken
** connection has rolled it back already). */
static void rollback(crun_client *c, int64_t deadline_ns) {
    if (c->pg == NULL) return;
    PGresult *r = NULL;
    if (crun_exec(c, "ROLLBACK", deadline_ns, &r) == CRUN_EXEC_OK &&
        PQresultStatus(r) != PGRES_COMMAND_OK)
        crun_client_disconnect(c); /* unknown session state: start afresh */
    PQclear(r);
}

/* A statement inside an operation: its outcome (commit_point as in
** crun_classify); *res set only when ok (owner: caller). */
static crun_outcome step(crun_client *c, const char *sql, int64_t deadline_ns, bool commit_point,
                         PGresult **res) {
    PGresult *r = NULL;
    crun_exec_rc rc = crun_exec(c, sql, deadline_ns, &r);
    crun_outcome o = crun_classify(c, rc, r, commit_point);
    if (o == CRUN_OK && res != NULL) {
        *res = r;
        return o;
    }
    PQclear(r);
    return o;
}

/* COMMIT: ok only when the server says COMMIT (PostgreSQL answers ROLLBACK
** to a COMMIT of an aborted transaction). */
static crun_outcome commit(crun_client *c, int64_t deadline_ns) {
    PGresult *r = NULL;
    crun_outcome o = step(c, "COMMIT", deadline_ns, true, &r);
    if (o == CRUN_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        crun_history_count_state(c->ctx->history, "rlbck");
        o = CRUN_FAIL;
    }
    PQclear(r);
    return o;
}

static int64_t affected(const PGresult *r) { return strtoll(PQcmdTuples((PGresult *)r), NULL, 10); }

static crun_outcome bank_op(crun_client *c, int64_t invoke, int64_t deadline) {
    const crun_config *cfg = c->ctx->cfg;
    char mops[CRUN_ACCOUNTS_MAX * 48], sql[256];
    size_t used = 0;
    PGresult *r = NULL;
    crun_outcome o;
    if (crun_rand(&c->rng) % 2 == 0) { /* read all */
        o = step(c, "SELECT id, balance FROM bank ORDER BY id", deadline, false, &r);
        if (o == CRUN_OK) {
            for (int i = 0; i < PQntuples(r) && i < CRUN_ACCOUNTS_MAX; i++)
                used += (size_t)snprintf(mops + used, sizeof mops - used, "%sbalance %s %s",
                                         i ? "; " : "", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
            if (PQntuples(r) == 0) { /* not even one account: cannot be a read-all */
                crun_history_oddity(c->ctx->history, "bank read returned no rows");
                o = CRUN_FAIL;
            }
        }
        if (o != CRUN_OK) {
            used = 0;
            for (int a = 0; a < cfg->accounts; a++)
                used += (size_t)snprintf(mops + used, sizeof mops - used, "%sbalance %d ?",
                                         a ? "; " : "", a);
        }
        PQclear(r);
        crun_history_add(c->ctx->history, c->process, o, invoke, now_ns(), mops);
        return o;
    }
    int from = (int)crun_rand_range(&c->rng, 0, cfg->accounts - 1);
    int to = (int)crun_rand_range(&c->rng, 0, cfg->accounts - 2);
    if (to >= from) to++;
    int amount = (int)crun_rand_range(&c->rng, 1, CRUN_BANK_TRANSFER_MAX);
    int64_t id = (int64_t)c->index * CRUN_LEDGER_ID_STRIDE + ++c->seq;
    snprintf(mops, sizeof mops, "transfer %d %d %d %" PRId64, from, to, amount, id);
    o = step(c, "BEGIN", deadline, false, NULL);
    if (o != CRUN_OK) goto done;
    snprintf(sql, sizeof sql, "SELECT id, balance FROM bank WHERE id IN (%d, %d)", from, to);
    o = step(c, sql, deadline, false, &r);
    if (o != CRUN_OK) goto abort;
    int64_t bal_from = INT64_MIN, bal_to = INT64_MIN;
    for (int i = 0; i < PQntuples(r); i++) {
        int id = atoi(PQgetvalue(r, i, 0));
        int64_t b = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        if (id == from) bal_from = b;
        if (id == to) bal_to = b;
    }
    PQclear(r);
    r = NULL;
    if (bal_from == INT64_MIN || bal_to == INT64_MIN) {
        crun_history_oddity(c->ctx->history, "transfer %d->%d: account row missing", from, to);
        o = CRUN_FAIL;
        goto abort;
    }
    if (bal_from < amount) { /* insufficient funds: a transfer that does nothing */
        crun_history_count_state(c->ctx->history, "funds");
        o = CRUN_FAIL;
        goto abort;
    }
    snprintf(sql, sizeof sql, "UPDATE bank SET balance = %" PRId64 " WHERE id = %d",
             bal_from - amount, from);
    o = step(c, sql, deadline, false, &r);
    if (o == CRUN_OK && affected(r) != 1) {
        crun_history_oddity(c->ctx->history, "%s: %s", sql, PQcmdStatus(r));
        o = CRUN_FAIL;
    }
    PQclear(r);
    r = NULL;
    if (o != CRUN_OK) goto abort;
    snprintf(sql, sizeof sql, "UPDATE bank SET balance = %" PRId64 " WHERE id = %d",
             bal_to + amount, to);
    o = step(c, sql, deadline, false, &r);
    if (o == CRUN_OK && affected(r) != 1) {
        crun_history_oddity(c->ctx->history, "%s: %s", sql, PQcmdStatus(r));
        o = CRUN_FAIL;
    }
    PQclear(r);
    r = NULL;
    if (o != CRUN_OK) goto abort;
    snprintf(sql, sizeof sql, "INSERT INTO bank_ledger VALUES (%" PRId64 ", %d, %d, %d)", id, from,
             to, amount);
    o = step(c, sql, deadline, false, &r);
    if (o == CRUN_OK && affected(r) != 1) {
        crun_history_oddity(c->ctx->history, "%s: %s", sql, PQcmdStatus(r));
        o = CRUN_FAIL;
    }
    PQclear(r);
    r = NULL;
    if (o != CRUN_OK) goto abort;
    o = commit(c, deadline);
    goto done;
abort:
    rollback(c, deadline);
done:
    crun_history_add(c->ctx->history, c->process, o, invoke, now_ns(), mops);
    return o;
}

static crun_outcome register_op(crun_client *c, int64_t invoke, int64_t deadline) {
    struct crun_wl *wl = c->ctx->wl;
    int64_t per_group = (int64_t)c->ctx->cfg->register_ops_per_key * CRUN_REGISTER_GROUP;
    int64_t seq = atomic_fetch_add(&wl->reg_seq, 1);
    int64_t group = BASE_MIN(seq / per_group, CRUN_REGISTER_KEYS / CRUN_REGISTER_GROUP - 1);
    int64_t key = group * CRUN_REGISTER_GROUP + crun_rand_range(&c->rng, 0, CRUN_REGISTER_GROUP - 1);
    for (int64_t seen = atomic_load(&wl->reg_keys_used); seen < key + 1;) {
        if (atomic_compare_exchange_weak(&wl->reg_keys_used, &seen, key + 1)) break;
    }
    char mops[128], sql[256];
    PGresult *r = NULL;
    crun_outcome o;
    uint64_t kind = crun_rand(&c->rng) % 10;
    if (kind < 4) {
        snprintf(sql, sizeof sql, "SELECT v FROM reg WHERE k = %" PRId64, key);
        o = step(c, sql, deadline, false, &r);
        if (o == CRUN_OK && PQntuples(r) == 1)
            snprintf(mops, sizeof mops, "read %" PRId64 " %s", key, PQgetvalue(r, 0, 0));
        else if (o == CRUN_OK) /* the row exists from setup on: the checker will say */
            snprintf(mops, sizeof mops, "read %" PRId64 " nil", key);
        else
            snprintf(mops, sizeof mops, "read %" PRId64 " ?", key);
    } else if (kind < 7) {
        int64_t v = crun_rand_range(&c->rng, 0, CRUN_REGISTER_VALUES - 1);
        snprintf(mops, sizeof mops, "write %" PRId64 " %" PRId64, key, v);
        snprintf(sql, sizeof sql, "UPDATE reg SET v = %" PRId64 " WHERE k = %" PRId64, v, key);
        o = step(c, sql, deadline, true, &r);
        if (o == CRUN_OK && affected(r) != 1) {
            crun_history_oddity(c->ctx->history, "%s: %s (the row exists)", sql, PQcmdStatus(r));
            o = CRUN_INFO;
        }
    } else {
        int64_t old = crun_rand_range(&c->rng, 0, CRUN_REGISTER_VALUES - 1);
        int64_t v = crun_rand_range(&c->rng, 0, CRUN_REGISTER_VALUES - 1);
        snprintf(mops, sizeof mops, "cas %" PRId64 " %" PRId64 " %" PRId64, key, old, v);
        snprintf(sql, sizeof sql,
                 "UPDATE reg SET v = %" PRId64 " WHERE k = %" PRId64 " AND v = %" PRId64, v, key,
                 old);
        o = step(c, sql, deadline, true, &r);
        if (o == CRUN_OK && affected(r) != 1) { /* the compare failed */
            crun_history_count_state(c->ctx->history, "nocas");
            o = CRUN_FAIL;
        }
    }
    PQclear(r);
    crun_history_add(c->ctx->history, c->process, o, invoke, now_ns(), mops);
    return o;
}

static crun_outcome set_op(crun_client *c, int64_t invoke, int64_t deadline) {
    int64_t v = atomic_fetch_add(&c->ctx->wl->next_value, 1);
    char mops[64], sql[128];
    snprintf(mops, sizeof mops, "add %" PRId64, v);
    snprintf(sql, sizeof sql, "INSERT INTO sset VALUES (%" PRId64 ")", v);
    crun_outcome o = step(c, sql, deadline, true, NULL);
    crun_history_add(c->ctx->history, c->process, o, invoke, now_ns(), mops);
    if (o == CRUN_OK) ack(c->ctx->wl, v);
    return o;
}

typedef struct append_mop {
    bool append;
    int64_t key, value;
    base_buf list;                      /* read: " 1 2 3" */
} append_mop;

/* A key of the pool; for an append, counts it and retires a full key. */
static int64_t append_key(crun_client *c, bool append) {
    struct crun_wl *wl = c->ctx->wl;
    int slot = (int)crun_rand_range(&c->rng, 0, CRUN_APPEND_ACTIVE - 1);
    pthread_mutex_lock(&wl->mu);
    int64_t key = wl->active[slot];
    if (append && ++wl->writes[slot] >= c->ctx->cfg->append_writes_per_key) {
        wl->active[slot] = wl->next_key++;
        wl->writes[slot] = 0;
    }
    pthread_mutex_unlock(&wl->mu);
    return key;
}

static crun_outcome append_op(crun_client *c, int64_t invoke, int64_t deadline) {
    append_mop m[CRUN_APPEND_MOPS_MAX];
    int n = (int)crun_rand_range(&c->rng, 1, CRUN_APPEND_MOPS_MAX);
    for (int i = 0; i < n; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].append = crun_rand(&c->rng) % 2 == 0;
        m[i].key = append_key(c, m[i].append);
        if (m[i].append) m[i].value = atomic_fetch_add(&c->ctx->wl->next_value, 1);
    }
    bool txn = n > 1;
    crun_outcome o = CRUN_OK;
    if (txn) o = step(c, "BEGIN", deadline, false, NULL);
    for (int i = 0; i < n && o == CRUN_OK; i++) {
        char sql[256];
        PGresult *r = NULL;
        if (m[i].append) {
            snprintf(sql, sizeof sql,
                     "INSERT INTO lists (k, pos, v) SELECT %" PRId64 ", coalesce(max(pos), 0) + 1, "
                     "%" PRId64 " FROM lists WHERE k = %" PRId64,
                     m[i].key, m[i].value, m[i].key);
            o = step(c, sql, deadline, !txn, &r);
            if (o == CRUN_OK && affected(r) != 1) {
                crun_history_oddity(c->ctx->history, "%s: %s", sql, PQcmdStatus(r));
                o = txn ? CRUN_FAIL : CRUN_INFO;
            }
        } else {
            snprintf(sql, sizeof sql, "SELECT v FROM lists WHERE k = %" PRId64 " ORDER BY pos",
                     m[i].key);
            o = step(c, sql, deadline, false, &r);
            for (int row = 0; o == CRUN_OK && row < PQntuples(r); row++)
                base_buf_printf(&m[i].list, " %s", PQgetvalue(r, row, 0));
        }
        PQclear(r);
    }
    if (txn && o == CRUN_OK) o = commit(c, deadline);
    else if (txn && o != CRUN_OK) rollback(c, deadline);
    base_buf mops = {0};
    for (int i = 0; i < n; i++) {
        if (m[i].append)
            base_buf_printf(&mops, "%sappend %" PRId64 " %" PRId64, i ? "; " : "", m[i].key,
                            m[i].value);
        else if (o == CRUN_OK)
            base_buf_printf(&mops, "%sread %" PRId64 " [%.*s ]", i ? "; " : "", m[i].key,
                            (int)m[i].list.len, m[i].list.data ? (char *)m[i].list.data : "");
        else
            base_buf_printf(&mops, "%sread %" PRId64 " ?", i ? "; " : "", m[i].key);
        base_buf_free(&m[i].list);
    }
    base_buf_append_byte(&mops, 0);
    if (mops.data != NULL)
        crun_history_add(c->ctx->history, c->process, o, invoke, now_ns(), (char *)mops.data);
    base_buf_free(&mops);
    for (int i = 0; o == CRUN_OK && i < n; i++) {
        if (m[i].append) ack(c->ctx->wl, m[i].value);
    }
    return o;
}

crun_outcome crun_wl_op(crun_client *c) {
    int64_t invoke = now_ns();
    int64_t deadline = invoke + (int64_t)c->ctx->cfg->op_timeout_ms * 1000000;
    switch (c->ctx->cfg->workload) {
    case CRUN_WL_BANK: return bank_op(c, invoke, deadline);
    case CRUN_WL_REGISTER: return register_op(c, invoke, deadline);
    case CRUN_WL_SET: return set_op(c, invoke, deadline);
    case CRUN_WL_APPEND: return append_op(c, invoke, deadline);
    }
    return CRUN_FAIL;
}

/* ---- final reads -------------------------------------------------------------- */

static final_read *final_add(struct crun_wl *wl) {
    if (wl->n_finals >= CRUN_FINAL_READS_MAX) return NULL;
    if (wl->n_finals == wl->cap_finals) {
        size_t cap = wl->cap_finals ? wl->cap_finals * 2 : 64;
        final_read *p = base_realloc(wl->finals, cap * sizeof *p);
        if (p == NULL) return NULL;
        wl->finals = p;
        wl->cap_finals = cap;
    }
    final_read *f = &wl->finals[wl->n_finals++];
    memset(f, 0, sizeof *f);
    return f;
}

/* Column col of rows [from, to) of r as int64s (owner: caller). */
static int64_t *column(const PGresult *r, int col, int from, int to) {
    int64_t *v = base_malloc((size_t)BASE_MAX(to - from, 1) * sizeof *v);
    if (v == NULL) return NULL;
    for (int i = from; i < to; i++) v[i - from] = strtoll(PQgetvalue(r, i, col), NULL, 10);
    return v;
}

/* The final read through node i: one query, split into final_reads. */
static int final_node(crun_ctx *ctx, int i, int64_t deadline) {
    struct crun_wl *wl = ctx->wl;
    crun_client c = {.ctx = ctx, .index = -1, .node = i};
    char sql[256], why[512] = "";
    int64_t keys = 0;
    switch (ctx->cfg->workload) {
    case CRUN_WL_BANK: /* one statement: balances and ledger from one snapshot */
        snprintf(sql, sizeof sql, "SELECT 0, id, balance, 0, 0 FROM bank UNION ALL "
                                  "SELECT 1, id, from_acct, to_acct, amount FROM bank_ledger ORDER BY 1, 2");
        break;
    case CRUN_WL_REGISTER:
        keys = atomic_load(&wl->reg_keys_used);
        snprintf(sql, sizeof sql, "SELECT k, v FROM reg WHERE k < %" PRId64 " ORDER BY k", keys);
        break;
    case CRUN_WL_SET: snprintf(sql, sizeof sql, "SELECT v FROM sset ORDER BY v"); break;
    case CRUN_WL_APPEND:
        pthread_mutex_lock(&wl->mu);
        keys = wl->next_key;
        pthread_mutex_unlock(&wl->mu);
        snprintf(sql, sizeof sql, "SELECT k, v FROM lists ORDER BY k, pos");
        break;
    }
    /* Only through node i: a read through another node proves nothing
    ** about i. Reconnects go to i again. */
    int64_t invoke = 0;
    PGresult *r = NULL;
    while (r == NULL && now_ns() < deadline) {
        c.node = i;
        if (c.pg == NULL) c.pg = crun_connect(ctx->cluster, i);
        if (c.pg == NULL) {
            snprintf(why, sizeof why, "cannot connect");
            poll_step();
            continue;
        }
        invoke = now_ns();
        crun_exec_rc rc = crun_exec(&c, sql, BASE_MIN(deadline, invoke + 10 * 1000000000ll), &r);
        if (rc == CRUN_EXEC_OK && PQresultStatus(r) == PGRES_TUPLES_OK) break;
        snprintf(why, sizeof why, "%s",
                 rc != CRUN_EXEC_OK ? "connection lost or timeout" : PQresultErrorMessage(r));
        PQclear(r);
        r = NULL;
        poll_step();
    }
    if (c.pg != NULL) PQfinish(c.pg);
    if (r == NULL) {
        fprintf(stderr, "chaos: final read through node %d failed: %s\n", i + 1, why);
        return -1;
    }
    int64_t complete = now_ns();
    int rows = PQntuples(r), rc = -1;
    switch (ctx->cfg->workload) {
    case CRUN_WL_BANK: {
        final_read *f = final_add(wl);
        if (f == NULL) goto cleanup;
        f->node = i;
        f->invoke_ns = invoke;
        f->complete_ns = complete;
        int accounts = 0; /* rows tagged 0 (bank) come first: ORDER BY 1 */
        while (accounts < rows && strtoll(PQgetvalue(r, accounts, 0), NULL, 10) == 0) accounts++;
        f->vals = column(r, 2, 0, accounts);
        if (f->vals == NULL) goto cleanup;
        f->n = (size_t)accounts;
        f->n_ledger = (size_t)(rows - accounts);
        f->ledger = base_malloc(BASE_MAX(f->n_ledger, 1) * 4 * sizeof *f->ledger);
        if (f->ledger == NULL) goto cleanup;
        for (int row = accounts; row < rows; row++)
            for (int col = 0; col < 4; col++)
                f->ledger[(size_t)(row - accounts) * 4 + (size_t)col] =
                    strtoll(PQgetvalue(r, row, col + 1), NULL, 10);
        if (accounts != ctx->cfg->accounts)
            crun_history_oddity(ctx->history, "final bank read through n%d: %d rows", i + 1, accounts);
        break;
    }
    case CRUN_WL_SET: {
        final_read *f = final_add(wl);
        if (f == NULL) goto cleanup;
        f->node = i;
        f->invoke_ns = invoke;
        f->complete_ns = complete;
        f->vals = column(r, 0, 0, rows);
        if (f->vals == NULL) goto cleanup;
        f->n = (size_t)rows;
        break;
    }
    case CRUN_WL_REGISTER:
    case CRUN_WL_APPEND: {
        int row = 0;
        for (int64_t k = 0; k < keys; k++) {
            int end = row;
            while (end < rows && strtoll(PQgetvalue(r, end, 0), NULL, 10) == k) end++;
            final_read *f = final_add(wl);
            if (f == NULL) goto cleanup;
            f->node = i;
            f->invoke_ns = invoke;
            f->complete_ns = complete;
            f->key = k;
            f->vals = column(r, 1, row, end);
            if (f->vals == NULL) goto cleanup;
            f->n = (size_t)(end - row);
            f->nil = end == row;
            row = end;
            /* rows of keys below k that the order skipped: impossible with
            ** ORDER BY k unless the database returned garbage */
            if (row < rows && strtoll(PQgetvalue(r, row, 0), NULL, 10) < k) {
                crun_history_oddity(ctx->history, "final read through n%d not ordered", i + 1);
                goto cleanup;
            }
        }
        if (row < rows && ctx->cfg->workload == CRUN_WL_APPEND)
            crun_history_oddity(ctx->history, "final read through n%d: rows of unused key %s",
                                i + 1, PQgetvalue(r, row, 0));
        break;
    }
    }
    rc = 0;
cleanup:
    PQclear(r);
    return rc;
}

int crun_wl_final(crun_ctx *ctx) {
    int64_t deadline = now_ns() + (int64_t)CRUN_RECOVER_MS * 1000000;
    int rc = 0;
    for (int i = 0; i < ctx->cluster->n; i++) {
        if (final_node(ctx, i, deadline) != 0) rc = -1;
    }
    return rc;
}

/* ---- checking ----------------------------------------------------------------- */

static void final_line(const crun_ctx *ctx, const final_read *f, base_buf *out) {
    int64_t t0 = ctx->history->t0_ns;
    base_buf_printf(out, "%d ok %" PRId64 " %" PRId64 " ", CRUN_FINAL_PROCESS + f->node,
                    f->invoke_ns - t0, f->complete_ns - t0);
    switch (ctx->cfg->workload) {
    case CRUN_WL_BANK:
        for (size_t a = 0; a < f->n; a++)
            base_buf_printf(out, "%sbalance %zu %" PRId64, a ? "; " : "", a, f->vals[a]);
        base_buf_printf(out, "%sledger [", f->n ? "; " : "");
        for (size_t j = 0; j < f->n_ledger * 4; j++) base_buf_printf(out, " %" PRId64, f->ledger[j]);
        base_buf_printf(out, " ]");
        break;
    case CRUN_WL_REGISTER:
        if (f->nil) base_buf_printf(out, "read %" PRId64 " nil", f->key);
        else base_buf_printf(out, "read %" PRId64 " %" PRId64, f->key, f->vals[0]);
        break;
    case CRUN_WL_SET:
    case CRUN_WL_APPEND:
        if (ctx->cfg->workload == CRUN_WL_SET) base_buf_printf(out, "members [");
        else base_buf_printf(out, "read %" PRId64 " [", f->key);
        for (size_t j = 0; j < f->n; j++) base_buf_printf(out, " %" PRId64, f->vals[j]);
        base_buf_printf(out, " ]");
        break;
    }
    base_buf_append_byte(out, '\n');
}

int crun_wl_final_text(crun_ctx *ctx, base_buf *out) {
    struct crun_wl *wl = ctx->wl;
    base_buf_printf(out, "# final reads, through every node after healing\n");
    for (size_t i = 0; i < wl->n_finals; i++) final_line(ctx, &wl->finals[i], out);
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Inject the workload's fault into a copy of the final reads. Returns the
** copy (owner: caller, vals shared with wl except the mutated one, which
** *own points at: base_free it) or NULL when nothing can be mutated. */
static final_read *mutate(crun_ctx *ctx, int64_t **own, char *what, size_t what_size) {
    struct crun_wl *wl = ctx->wl;
    *own = NULL;
    if (wl->n_finals == 0) return NULL;
    final_read *copy = base_malloc(wl->n_finals * sizeof *copy);
    if (copy == NULL) return NULL;
    memcpy(copy, wl->finals, wl->n_finals * sizeof *copy);
    pthread_mutex_lock(&wl->mu);
    if (wl->n_acked > 0) qsort(wl->acked, wl->n_acked, sizeof *wl->acked, cmp_i64);
    pthread_mutex_unlock(&wl->mu);
    for (size_t i = 0; i < wl->n_finals; i++) {
        final_read *f = &copy[i];
        if (f->n == 0) continue;
        int64_t *v = base_malloc(f->n * sizeof *v);
        if (v == NULL) break;
        memcpy(v, f->vals, f->n * sizeof *v);
        switch (ctx->cfg->workload) {
        case CRUN_WL_BANK:
            v[0] += 1;
            snprintf(what, what_size, "account 0's balance +1 in n%d's final read", f->node + 1);
            break;
        case CRUN_WL_REGISTER:
            snprintf(what, what_size, "n%d's final read of key %" PRId64 " says %d (never written)",
                     f->node + 1, f->key, CRUN_TEETH_VALUE);
            v[0] = CRUN_TEETH_VALUE;
            break;
        case CRUN_WL_SET:
        case CRUN_WL_APPEND: {
            size_t j = 0;
            while (j < f->n && bsearch(&v[j], wl->acked, wl->n_acked, sizeof *v, cmp_i64) == NULL)
                j++;
            if (j == f->n) { /* no acknowledged value here: try the next read */
                base_free(v);
                continue;
            }
            if (ctx->cfg->workload == CRUN_WL_SET)
                snprintf(what, what_size, "acknowledged insert %" PRId64 " dropped from n%d's final read",
                         v[j], f->node + 1);
            else
                snprintf(what, what_size, "element %" PRId64 " (appended by an ok transaction) "
                         "dropped from n%d's final read of key %" PRId64, v[j], f->node + 1, f->key);
            memmove(v + j, v + j + 1, (f->n - j - 1) * sizeof *v);
            f->n--;
            break;
        }
        }
        f->vals = v;
        *own = v;
        return copy;
    }
    base_free(copy);
    return NULL;
}

static int run_checker(crun_ctx *ctx, const char *text, size_t len, chaos_result *res,
                       base_buf *report) {
    char err[512];
    chaos_history *h = NULL;
    int rc = chaos_history_parse(text, len, &h, err, sizeof err);
    if (rc != 0) {
        base_buf_printf(report, "history does not parse: %s\n",
                        rc == CHAOS_ENOMEM ? "out of memory" : err);
        return -1;
    }
    switch (ctx->cfg->workload) {
    case CRUN_WL_BANK: {
        chaos_bank_opts o = {.total = (int64_t)ctx->cfg->accounts * CRUN_BANK_INITIAL,
                             .accounts = (size_t)ctx->cfg->accounts};
        rc = chaos_check_bank(h, &o, res);
        break;
    }
    case CRUN_WL_REGISTER: {
        chaos_register_opts o = {.initial = 0};
        rc = chaos_check_register(h, &o, res);
        break;
    }
    case CRUN_WL_SET: rc = chaos_check_set(h, res); break;
    case CRUN_WL_APPEND: {
        chaos_append_opts o = {.realtime = true};
        rc = chaos_check_list_append(h, &o, res);
        break;
    }
    }
    chaos_history_free(h);
    if (res->report.data != NULL) base_buf_printf(report, "%s", (char *)res->report.data);
    if (rc != 0) {
        base_buf_printf(report, "checker error %d\n", rc);
        return -1;
    }
    return (int)res->verdict;
}

int crun_wl_check(crun_ctx *ctx, bool mutate_finals, base_buf *report, char *mutation,
                  size_t mutation_size) {
    struct crun_wl *wl = ctx->wl;
    int64_t *own = NULL;
    final_read *finals = wl->finals;
    if (mutate_finals) {
        finals = mutate(ctx, &own, mutation, mutation_size);
        if (finals == NULL) {
            snprintf(mutation, mutation_size, "nothing to mutate (no final read with an "
                     "acknowledged value)");
            return -1;
        }
    }
    base_buf text = {0};
    int verdict = -1;
    pthread_mutex_lock(&ctx->history->mu);
    int e = base_buf_append(&text, ctx->history->text.data, ctx->history->text.len);
    pthread_mutex_unlock(&ctx->history->mu);
    if (e != 0) goto cleanup;
    size_t base_len = text.len;
    if (ctx->cfg->workload != CRUN_WL_SET) {
        for (size_t i = 0; i < wl->n_finals; i++) final_line(ctx, &finals[i], &text);
        chaos_result res = {0};
        verdict = run_checker(ctx, (char *)text.data, text.len, &res, report);
        chaos_result_free(&res);
        goto cleanup;
    }
    /* set: the checker judges one final read; judge each node's. */
    verdict = CHAOS_VALID;
    for (size_t i = 0; i < wl->n_finals; i++) {
        text.len = base_len;
        final_line(ctx, &finals[i], &text);
        base_buf_printf(report, "final read through n%d:\n", finals[i].node + 1);
        chaos_result res = {0};
        int v = run_checker(ctx, (char *)text.data, text.len, &res, report);
        chaos_result_free(&res);
        if (v < 0) {
            verdict = -1;
            break;
        }
        if (v == CHAOS_INVALID || (v == CHAOS_UNKNOWN && verdict == CHAOS_VALID)) verdict = v;
    }
cleanup:
    base_buf_free(&text);
    base_free(own);
    if (finals != wl->finals) base_free(finals);
    return verdict;
}

void crun_wl_free(crun_ctx *ctx) {
    struct crun_wl *wl = ctx->wl;
    if (wl == NULL) return;
    for (size_t i = 0; i < wl->n_finals; i++) {
        base_free(wl->finals[i].vals);
        base_free(wl->finals[i].ledger);
    }
    base_free(wl->finals);
    base_free(wl->acked);
    pthread_mutex_destroy(&wl->mu);
    base_free(wl);
    ctx->wl = NULL;
}
