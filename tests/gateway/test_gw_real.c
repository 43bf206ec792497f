/*
** Gateway against the real SQL engine: sqlv on txn on the in-memory
** storage twin, driven over the wire with libpq. Also SQL on an RPC port:
** an rpc_uv listener handing PostgreSQL clients to a second gateway on the
** same engine (no listener of its own), while RPC requests use the port.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "gateway/gateway.h"
#include "rpc/rpc.h"
#include "gw_real_stack.h"
#include "gw_test_util.h"
#include "storage/storage.h"
#include "timestamp/timestamp.h"
#include "txn/txn.h"

static void expect_sqlstate(PGconn *c, const char *sql, const char *sqlstate)
{
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (got == NULL || strcmp(got, sqlstate) != 0)
        fail_msg("%s: want %s, got %s: %s", sql, sqlstate, got ? got : "(none)",
                 PQresultErrorMessage(r));
    PQclear(r);
}

static void test_accounts(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance INT)");
    tu_exec_ok(c, "INSERT INTO accounts VALUES (1, 'ada', 100), (2, 'bob', 50)");
    tu_exec_ok(c, "BEGIN; UPDATE accounts SET balance = balance - 10 WHERE id = 1; "
               "UPDATE accounts SET balance = balance + 10 WHERE id = 2; COMMIT;");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PGresult *r = PQexec(c, "SELECT * FROM accounts WHERE id BETWEEN 1 AND 2 ORDER BY id");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 2);
    assert_int_equal(PQnfields(r), 3);
    assert_string_equal(PQfname(r, 1), "owner");
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    assert_string_equal(PQgetvalue(r, 0, 1), "ada");
    assert_string_equal(PQgetvalue(r, 0, 2), "90");
    assert_string_equal(PQgetvalue(r, 1, 2), "60");
    PQclear(r);
    expect_sqlstate(c, "INSERT INTO accounts VALUES (1, 'dup', 0)", "23505");
    PQfinish(c);

    /* psql sees the same. */
    if (access("/usr/bin/psql", X_OK) != 0)
        return;
    tu_real_fixture *f = *state;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/psql 'postgresql://root@127.0.0.1:%d/defaultdb?connect_timeout=10' -X -A -t "
             "-v ON_ERROR_STOP=1 -c 'SELECT owner, balance FROM accounts ORDER BY id' 2>&1",
             gw_port(f->server));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[256] = {0};
    size_t n = fread(out, 1, sizeof out - 1, p);
    int status = pclose(p);
    out[n] = 0;
    if (status != 0 || strcmp(out, "ada|90\nbob|60\n") != 0)
        fail_msg("psql exited %d with: %s", status, out);
}

static void test_error_in_transaction_block(void **state)
{
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE t1 (k INT PRIMARY KEY, v TEXT)");
    tu_exec_ok(c, "BEGIN");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    tu_exec_ok(c, "INSERT INTO t1 VALUES (1, 'a')");
    expect_sqlstate(c, "INSERT INTO t1 VALUES (1, 'again')", "23505");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    expect_sqlstate(c, "SELECT * FROM t1", "25P02");
    tu_exec_ok(c, "ROLLBACK");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PGresult *r = PQexec(c, "SELECT count(*) FROM t1");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    PQfinish(c);
}

static void test_disconnect_rolls_back(void **state)
{
    PGconn *a = tu_real_connect(state);
    tu_exec_ok(a, "CREATE TABLE t2 (k INT PRIMARY KEY)");
    tu_exec_ok(a, "BEGIN; INSERT INTO t2 VALUES (7)");
    assert_int_equal(PQtransactionStatus(a), PQTRANS_INTRANS);
    PQfinish(a); /* never committed */
    PGconn *b = tu_real_connect(state);
    PGresult *r = PQexec(b, "SELECT count(*) FROM t2");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    PQfinish(b);
}

#define REAL_CLIENTS 8
#define REAL_ROWS_PER_CLIENT 20

typedef struct client_arg {
    int port;
    int id;
    int ok;
} client_arg;

static void *client_main(void *p)
{
    client_arg *a = p;
    char conninfo[64];
    snprintf(conninfo, sizeof conninfo, "sslmode=disable application_name=c%d", a->id);
    PGconn *c = tu_pq(a->port, conninfo);
    for (int i = 0; PQstatus(c) == CONNECTION_OK && i < REAL_ROWS_PER_CLIENT; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t3 VALUES (%d, 'client %d')",
                 a->id * 1000 + i, a->id);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_COMMAND_OK)
            a->ok++;
        PQclear(r);
    }
    PQfinish(c);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    tu_real_fixture *f = *state;
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE t3 (k INT PRIMARY KEY, who TEXT)");
    pthread_t t[REAL_CLIENTS];
    client_arg args[REAL_CLIENTS];
    for (int i = 0; i < REAL_CLIENTS; i++) {
        args[i] = (client_arg){gw_port(f->server), i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, client_main, &args[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < REAL_CLIENTS; i++) {
        pthread_join(t[i], NULL);
        ok += args[i].ok;
    }
    /* Distinct keys: every insert commits (retrying on 40001 is the
    ** client's business, but disjoint keys must not conflict). */
    assert_int_equal(ok, REAL_CLIENTS * REAL_ROWS_PER_CLIENT);
    PGresult *r = PQexec(c, "SELECT count(*) FROM t3");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    char want[16];
    snprintf(want, sizeof want, "%d", REAL_CLIENTS * REAL_ROWS_PER_CLIENT);
    assert_string_equal(PQgetvalue(r, 0, 0), want);
    PQclear(r);
    PQfinish(c);
}

/* Random token soup and random bytes as queries: every one gets an answer
** (rows, a command tag or an error) and the session keeps working.
** MERIDIAN_SEED reproduces. */
#define REAL_FUZZ_QUERIES 300

static void test_random_queries(void **state)
{
    static const char *const tokens[] = {
        "SELECT", "INSERT", "INTO", "VALUES", "UPDATE", "SET", "DELETE", "FROM", "WHERE",
        "CREATE", "TABLE", "DROP", "BEGIN", "COMMIT", "ROLLBACK", "t4", "k", "v", "*", "(",
        ")", ",", ";", "=", "<", "1", "2", "-1", "'x'", "'", "NULL", "INT", "TEXT", "PRIMARY",
        "KEY", "ORDER", "BY", "LIMIT", "count(*)", "AND", "OR", "NOT", "9223372036854775807",
        "1e308", "\"", "--", "/*", "SAVEPOINT", "RELEASE", "s1",
    };
    const char *env = getenv("MERIDIAN_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)base_realtime_ns();
    if (seed == 0)
        seed = 1;
    uint64_t x = seed;
    printf("test_random_queries: seed=%llu\n", (unsigned long long)seed);
    PGconn *c = tu_real_connect(state);
    tu_exec_ok(c, "CREATE TABLE t4 (k INT PRIMARY KEY, v TEXT)");
    char q[512];
    for (int i = 0; i < REAL_FUZZ_QUERIES; i++) {
        size_t len = 0;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if (x % 5 == 0) { /* random bytes (no NUL: it would end the string) */
            size_t n = 1 + (x >> 8) % 64;
            for (size_t j = 0; j < n; j++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                q[len++] = (char)(1 + x % 255);
            }
        } else {
            size_t n = 1 + (x >> 8) % 12;
            for (size_t j = 0; j < n && len < sizeof q - 64; j++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                len += (size_t)snprintf(q + len, sizeof q - len, "%s ",
                                        tokens[x % BASE_ARRAY_LEN(tokens)]);
            }
        }
        q[len] = 0;
        PGresult *r = PQexec(c, q);
        if (r == NULL || PQstatus(c) != CONNECTION_OK)
            fail_msg("seed=%llu query %d <%s>: connection lost: %s", (unsigned long long)seed, i,
                     q, PQerrorMessage(c));
        PQclear(r);
        if (PQtransactionStatus(c) != PQTRANS_IDLE) {
            r = PQexec(c, "ROLLBACK");
            PQclear(r);
        }
    }
    PGresult *r = PQexec(c, "SELECT count(*) FROM t4");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("seed=%llu: session broken: %s", (unsigned long long)seed, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* ---- SQL on the RPC port ------------------------------------------------------ */

static uv_mutex_t rpc_mu;
static uv_cond_t rpc_cv;
static int rpc_ok, rpc_bad; /* guarded by rpc_mu */

static void on_foreign(void *ctx, int fd, const uint8_t *prefix, size_t len)
{
    (void)gw_adopt_connection(ctx, fd, prefix, len);
}

static void echo_handler(void *ctx, rpc_transport *t, const rpc_message *m)
{
    (void)ctx;
    if (m->request_id != 0)
        rpc_respond(t, m->from, m->request_id, 0, m->payload, m->payload_len);
}

static void on_echo(void *ctx, int rc, const rpc_message *m)
{
    (void)ctx;
    uv_mutex_lock(&rpc_mu);
    if (rc == RPC_OK && m->from == 1 && m->payload_len == 8)
        rpc_ok++;
    else
        rpc_bad++;
    uv_cond_broadcast(&rpc_cv);
    uv_mutex_unlock(&rpc_mu);
}

static void test_sql_on_rpc_port(void **state)
{
    tu_real_fixture *f = *state;
    uv_mutex_init(&rpc_mu);
    uv_cond_init(&rpc_cv);
    rpc_ok = rpc_bad = 0;
    gw_options go = {.host = "127.0.0.1", .port = GW_PORT_NONE};
    gw_server *gw = NULL;
    assert_int_equal(gw_start(f->engine, &go, &gw), GW_OK);
    rpc_uv_config c;
    rpc_uv_config_init(&c);
    c.node_id = 1;
    c.handler = echo_handler;
    c.foreign_connection = on_foreign;
    c.foreign_ctx = gw;
    rpc_uv *n1 = NULL, *n2 = NULL;
    assert_int_equal(rpc_uv_start(&c, &n1), RPC_OK);
    int port = rpc_uv_listen_port(n1);
    rpc_uv_config_init(&c);
    c.node_id = 2;
    c.listen_host = NULL;
    assert_int_equal(rpc_uv_start(&c, &n2), RPC_OK);
    assert_int_equal(rpc_uv_add_peer(n2, 1, "127.0.0.1", port), RPC_OK);
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        uint64_t v = (uint64_t)i;
        assert_int_equal(rpc_request(rpc_uv_transport(n2), 1, 1, &v, 8, 20000, on_echo, NULL), 0);
    }

    PGconn *c1 = tu_pq(port, "sslmode=prefer");
    assert_int_equal(PQstatus(c1), CONNECTION_OK);
    tu_exec_ok(c1, "CREATE TABLE shared_port (id INT PRIMARY KEY, v TEXT)");
    tu_exec_ok(c1, "INSERT INTO shared_port VALUES (1, 'one'), (2, 'two')");
    PGresult *r = PQexec(c1, "SELECT 1");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    /* the same key space through the fixture's own SQL port */
    PGconn *c2 = tu_real_connect(state);
    r = PQexec(c2, "SELECT v FROM shared_port ORDER BY id");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 2);
    assert_string_equal(PQgetvalue(r, 1, 0), "two");
    PQclear(r);

    uint64_t deadline = uv_hrtime() + 20000ull * 1000000;
    uv_mutex_lock(&rpc_mu);
    while (rpc_ok + rpc_bad < N && uv_hrtime() < deadline)
        uv_cond_timedwait(&rpc_cv, &rpc_mu, 5000000);
    assert_int_equal(rpc_bad, 0);
    assert_int_equal(rpc_ok, N);
    uv_mutex_unlock(&rpc_mu);
    PQfinish(c1);
    PQfinish(c2);
    rpc_uv_free(n2);
    rpc_uv_free(n1); /* the transport that hands connections over goes first */
    gw_stop(gw);
    uv_cond_destroy(&rpc_cv);
    uv_mutex_destroy(&rpc_mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accounts),
        cmocka_unit_test(test_error_in_transaction_block),
        cmocka_unit_test(test_disconnect_rolls_back),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_random_queries),
        cmocka_unit_test(test_sql_on_rpc_port),
    };
    return cmocka_run_group_tests(tests, tu_real_setup, tu_real_teardown);
}
