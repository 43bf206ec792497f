/*
** examples/c/bank.c: an app on Meridian through libpq, the way any
** PostgreSQL C program talks to it.
**
**   - PQprepare + PQexecPrepared: named prepared statements, parsed once per
**     connection, with parameters in binary (int8 in network byte order) and
**     in text;
**   - PQexecParams: one-shot parameterized statements, text and binary
**     parameters, a binary result column;
**   - a multi-key transaction (a bank transfer: two balances and a history
**     row) with the retry loop every app needs against a serializable
**     database: SQLSTATE 40001 means "run the whole transaction again", after
**     a short randomized backoff, a bounded number of times;
**   - the same transfer through CockroachDB's SAVEPOINT cockroach_restart
**     protocol (ROLLBACK TO the savepoint, instead of a new BEGIN).
**
** To show the retry path every run, one transfer is made to conflict on
** purpose: between its read and its writes a second connection commits a
** transfer touching the same account.
**
** Usage: bank [conninfo]   (default: $DATABASE_URL, else the local node)
** Prints "bank: ok ..." and exits 0 when the money adds up.
*/
#define _DEFAULT_SOURCE /* htobe64, be64toh */
#include <endian.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define ACCOUNTS 10
#define INITIAL_BALANCE 1000
#define TRANSFERS 40
#define RETRIES_MAX 25          /* attempts of one transaction before giving up */
#define BACKOFF_MIN_US 1000     /* first pause after a 40001 ... */
#define BACKOFF_MAX_US 200000   /* ... doubling up to this */

static int retries_total;
static int rivals_committed;

/* ---- small helpers -------------------------------------------------------- */

static void die(PGconn *c, const char *what)
{
    fprintf(stderr, "bank: %s: %s", what, c ? PQerrorMessage(c) : "\n");
    exit(1);
}

/* The SQLSTATE of a failed result ("" when it succeeded). */
static const char *sqlstate(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return "";
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s ? s : "XX000";
}

/* Run sql (no parameters); exit on failure. */
static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (sqlstate(r)[0] != 0) {
        fprintf(stderr, "bank: %s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

/* Randomized exponential backoff: attempt 1 waits up to 1ms, then 2, 4... */
static void backoff(int attempt)
{
    long cap = BACKOFF_MIN_US;
    for (int i = 1; i < attempt && cap < BACKOFF_MAX_US; i++)
        cap *= 2;
    if (cap > BACKOFF_MAX_US)
        cap = BACKOFF_MAX_US;
    long us = cap / 2 + rand() % (cap / 2 + 1);
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* An int8 parameter in binary format: 8 bytes, network byte order. */
typedef struct int8_param {
    uint64_t be;
} int8_param;

static int8_param int8_binary(int64_t v)
{
    return (int8_param){htobe64((uint64_t)v)};
}

/* ---- the schema and the prepared statements ------------------------------ */

static void prepare(PGconn *c, const char *name, const char *sql, int n, const Oid *types)
{
    PGresult *r = PQprepare(c, name, sql, n, types);
    if (sqlstate(r)[0] != 0) {
        fprintf(stderr, "bank: prepare %s: %s", name, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

#define INT8OID 20
#define TEXTOID 25

static void prepare_all(PGconn *c)
{
    const Oid one[] = {INT8OID};
    const Oid two[] = {INT8OID, INT8OID};
    const Oid acct[] = {INT8OID, TEXTOID, INT8OID};
    prepare(c, "balance", "SELECT balance FROM bank_accounts WHERE id = $1", 1, one);
    prepare(c, "debit", "UPDATE bank_accounts SET balance = balance - $2 WHERE id = $1", 2, two);
    prepare(c, "credit", "UPDATE bank_accounts SET balance = balance + $2 WHERE id = $1", 2, two);
    prepare(c, "open", "INSERT INTO bank_accounts (id, owner, balance) VALUES ($1, $2, $3)", 3,
            acct);
}

static void create_schema(PGconn *c)
{
    exec_ok(c, "DROP TABLE IF EXISTS bank_accounts, bank_transfers");
    exec_ok(c, "CREATE TABLE bank_accounts (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, "
               "balance BIGINT NOT NULL)");
    exec_ok(c, "CREATE TABLE bank_transfers (id BIGINT PRIMARY KEY, from_id BIGINT NOT NULL, "
               "to_id BIGINT NOT NULL, amount BIGINT NOT NULL, via TEXT)");
}

/* PQexecPrepared "open": id and balance binary, owner text. */
static void open_accounts(PGconn *c)
{
    exec_ok(c, "BEGIN");
    for (int64_t id = 1; id <= ACCOUNTS; id++) {
        char owner[32];
        snprintf(owner, sizeof owner, "owner-%" PRId64, id);
        int8_param pid = int8_binary(id), pbal = int8_binary(INITIAL_BALANCE);
        const char *values[] = {(const char *)&pid, owner, (const char *)&pbal};
        const int lengths[] = {8, 0, 8};
        const int formats[] = {1, 0, 1};
        PGresult *r = PQexecPrepared(c, "open", 3, values, lengths, formats, 0);
        if (sqlstate(r)[0] != 0) {
            fprintf(stderr, "bank: open account: %s", PQresultErrorMessage(r));
            exit(1);
        }
        PQclear(r);
    }
    exec_ok(c, "COMMIT");
}

/* ---- one transfer --------------------------------------------------------- */

/* Called between the transfer's read and its writes (once): a test hook. */
typedef void (*between_fn)(void *arg);

/* The statements of a transfer, inside an open transaction. Returns the
** SQLSTATE of the first failure ("" on success, "insufficient" when the
** balance is too low: no writes). */
static const char *transfer_body(PGconn *c, int64_t from, int64_t to, int64_t amount,
                                 const char *via, int64_t transfer_id, between_fn between,
                                 void *arg, char *state, size_t state_size)
{
    /* the balance, asked for in binary: 8 bytes big-endian */
    int8_param pfrom = int8_binary(from);
    const char *v1[] = {(const char *)&pfrom};
    const int l1[] = {8}, f1[] = {1};
    PGresult *r = PQexecPrepared(c, "balance", 1, v1, l1, f1, 1);
    snprintf(state, state_size, "%s", sqlstate(r));
    if (state[0] != 0 || PQntuples(r) != 1 || PQgetlength(r, 0, 0) != 8) {
        if (state[0] == 0)
            snprintf(state, state_size, "no such account");
        PQclear(r);
        return state;
    }
    uint64_t be;
    memcpy(&be, PQgetvalue(r, 0, 0), 8);
    int64_t balance = (int64_t)be64toh(be);
    PQclear(r);
    if (balance < amount) {
        snprintf(state, state_size, "insufficient");
        return state;
    }
    if (between)
        between(arg);
    /* the writes: prepared, parameters in text this time */
    char sfrom[24], sto[24], samount[24], sid[24];
    snprintf(sfrom, sizeof sfrom, "%" PRId64, from);
    snprintf(sto, sizeof sto, "%" PRId64, to);
    snprintf(samount, sizeof samount, "%" PRId64, amount);
    snprintf(sid, sizeof sid, "%" PRId64, transfer_id);
    const char *debit[] = {sfrom, samount}, *credit[] = {sto, samount};
    r = PQexecPrepared(c, "debit", 2, debit, NULL, NULL, 0);
    snprintf(state, state_size, "%s", sqlstate(r));
    PQclear(r);
    if (state[0] != 0)
        return state;
    r = PQexecPrepared(c, "credit", 2, credit, NULL, NULL, 0);
    snprintf(state, state_size, "%s", sqlstate(r));
    PQclear(r);
    if (state[0] != 0)
        return state;
    /* the history row: PQexecParams, id binary, the rest text */
    int8_param pid = int8_binary(transfer_id);
    const char *hv[] = {(const char *)&pid, sfrom, sto, samount, via};
    const int hl[] = {8, 0, 0, 0, 0}, hf[] = {1, 0, 0, 0, 0};
    const Oid ht[] = {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID};
    r = PQexecParams(c,
                     "INSERT INTO bank_transfers (id, from_id, to_id, amount, via) "
                     "VALUES ($1, $2, $3, $4, $5)",
                     5, ht, hv, hl, hf, 0);
    snprintf(state, state_size, "%s", sqlstate(r));
    PQclear(r);
    return state;
}

/* A transfer as a whole transaction, retried on 40001: BEGIN, the body,
** COMMIT; on 40001 anywhere (a statement or the COMMIT itself) ROLLBACK,
** back off, start over. Returns true when it committed (false: too little
** money). Any other error is fatal here: a real app reports it. */
static bool transfer(PGconn *c, int64_t from, int64_t to, int64_t amount, int64_t id,
                     between_fn between, void *arg)
{
    char state[64];
    for (int attempt = 1; attempt <= RETRIES_MAX; attempt++) {
        exec_ok(c, "BEGIN");
        transfer_body(c, from, to, amount, "begin-commit", id, attempt == 1 ? between : NULL, arg,
                      state, sizeof state);
        if (state[0] == 0) {
            PGresult *r = PQexec(c, "COMMIT");
            snprintf(state, sizeof state, "%s", sqlstate(r));
            PQclear(r);
            if (state[0] == 0)
                return true;
        }
        /* after a failed COMMIT the transaction is already over: ROLLBACK
        ** then only warns */
        PQclear(PQexec(c, "ROLLBACK"));
        if (strcmp(state, "insufficient") == 0)
            return false;
        if (strcmp(state, "40001") != 0) {
            fprintf(stderr, "bank: transfer %" PRId64 ": SQLSTATE %s: %s", id, state,
                    PQerrorMessage(c));
            exit(1);
        }
        retries_total++;
        backoff(attempt);
    }
    fprintf(stderr, "bank: transfer %" PRId64 ": still 40001 after %d attempts\n", id,
            RETRIES_MAX);
    exit(1);
}

/* The same through CockroachDB's client-side retry protocol: one BEGIN,
** SAVEPOINT cockroach_restart, and on 40001 ROLLBACK TO SAVEPOINT
** cockroach_restart (the transaction restarts at a new timestamp); RELEASE
** SAVEPOINT cockroach_restart commits, then COMMIT ends the block. */
static bool transfer_savepoint(PGconn *c, int64_t from, int64_t to, int64_t amount, int64_t id,
                               between_fn between, void *arg)
{
    char state[64];
    exec_ok(c, "BEGIN");
    exec_ok(c, "SAVEPOINT cockroach_restart");
    for (int attempt = 1; attempt <= RETRIES_MAX; attempt++) {
        transfer_body(c, from, to, amount, "savepoint", id, attempt == 1 ? between : NULL, arg,
                      state, sizeof state);
        if (state[0] == 0) {
            PGresult *r = PQexec(c, "RELEASE SAVEPOINT cockroach_restart");
            snprintf(state, sizeof state, "%s", sqlstate(r));
            PQclear(r);
            if (state[0] == 0) {
                exec_ok(c, "COMMIT");
                return true;
            }
        }
        if (strcmp(state, "insufficient") == 0) {
            exec_ok(c, "ROLLBACK");
            return false;
        }
        if (strcmp(state, "40001") != 0) {
            fprintf(stderr, "bank: transfer %" PRId64 ": SQLSTATE %s: %s", id, state,
                    PQerrorMessage(c));
            exit(1);
        }
        retries_total++;
        backoff(attempt);
        exec_ok(c, "ROLLBACK TO SAVEPOINT cockroach_restart");
    }
    fprintf(stderr, "bank: transfer %" PRId64 ": still 40001 after %d attempts\n", id,
            RETRIES_MAX);
    exit(1);
}

/* The conflicting writer: another connection moves money out of account 1
** and commits while the first transfer sits between its read and writes. */
typedef struct rival {
    PGconn *c;
    int64_t id;
} rival;

static void rival_commits(void *arg)
{
    rival *rv = arg;
    if (!transfer(rv->c, 1, 2, 1, rv->id, NULL, NULL)) {
        fprintf(stderr, "bank: the rival transfer found no money\n");
        exit(1);
    }
    rivals_committed++;
}

/* ---- main ----------------------------------------------------------------- */

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : getenv("DATABASE_URL");
    if (url == NULL)
        url = "postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable";
    srand((unsigned)time(NULL));
    PGconn *c = PQconnectdb(url), *c2 = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        die(c, "connect");
    if (PQstatus(c2) != CONNECTION_OK)
        die(c2, "connect");
    /* NOTICEs (DROP ... IF EXISTS, ROLLBACK after a failed COMMIT) are noise here */
    PQsetNoticeProcessor(c, quiet, NULL);
    PQsetNoticeProcessor(c2, quiet, NULL);
    create_schema(c);
    prepare_all(c);
    prepare_all(c2);
    open_accounts(c);

    /* one-shot PQexecParams: a text parameter, the count back in binary */
    const char *owner[] = {"owner-3"};
    PGresult *r = PQexecParams(c, "SELECT count(*) FROM bank_accounts WHERE owner = $1", 1, NULL,
                               owner, NULL, NULL, 1);
    if (sqlstate(r)[0] != 0 || PQntuples(r) != 1 || PQgetlength(r, 0, 0) != 8)
        die(c, "count by owner");
    uint64_t be;
    memcpy(&be, PQgetvalue(r, 0, 0), 8);
    PQclear(r);
    if (be64toh(be) != 1) {
        fprintf(stderr, "bank: count by owner: %" PRIu64 ", want 1\n", be64toh(be));
        return 1;
    }

    /* transfers; the first of each kind collides with a rival on purpose */
    int64_t next_id = 1;
    int committed = 0;
    rival rv = {c2, 0};
    for (int i = 0; i < TRANSFERS; i++) {
        int64_t from = 1 + rand() % ACCOUNTS, to = 1 + rand() % ACCOUNTS;
        if (to == from)
            to = 1 + to % ACCOUNTS;
        int64_t amount = 1 + rand() % 300;
        bool collide = i == 0 || i == TRANSFERS / 2;
        if (collide) {
            from = 1;
            to = 3;
            rv.id = next_id++;
        }
        bool savepoint = i >= TRANSFERS / 2;
        int64_t id = next_id++;
        bool ok = savepoint ? transfer_savepoint(c, from, to, amount, id,
                                                 collide ? rival_commits : NULL, &rv)
                            : transfer(c, from, to, amount, id, collide ? rival_commits : NULL,
                                       &rv);
        committed += ok;
    }

    /* the money adds up, and every committed transfer left its row */
    r = PQexec(c, "SELECT sum(balance), count(*), min(balance) FROM bank_accounts");
    if (sqlstate(r)[0] != 0)
        die(c, "sum");
    long long sum = atoll(PQgetvalue(r, 0, 0)), n = atoll(PQgetvalue(r, 0, 1));
    long long min = atoll(PQgetvalue(r, 0, 2));
    PQclear(r);
    r = PQexec(c, "SELECT count(*) FROM bank_transfers");
    if (sqlstate(r)[0] != 0)
        die(c, "transfers");
    long long rows = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    int rivals = rivals_committed; /* the rivals committed too, one row each */
    if (sum != (long long)ACCOUNTS * INITIAL_BALANCE || n != ACCOUNTS || min < 0 ||
        rows != committed + rivals) {
        fprintf(stderr, "bank: FAILED: sum %lld (want %d), accounts %lld, min %lld, transfers %lld "
                        "(want %d)\n",
                sum, ACCOUNTS * INITIAL_BALANCE, n, min, rows, committed + rivals);
        return 1;
    }
    printf("bank: ok: %d transfers committed, %d retries after 40001, total %lld\n",
           committed + rivals, retries_total, sum);
    PQfinish(c2);
    PQfinish(c);
    return 0;
}
