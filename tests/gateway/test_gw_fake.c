/*
** Gateway tests against the fake SQL engine (fake_sql.c): libpq for normal
** flows, raw sockets for protocol-level cases.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_sql.h"
#include "gateway/gateway.h"
#include "gw_test_util.h"

static gw_server *start_server(int max_connections, uint32_t max_message_bytes)
{
    gw_options o = {.host = "127.0.0.1", .port = 0, .max_connections = max_connections,
                    .max_message_bytes = max_message_bytes};
    gw_server *s = NULL;
    assert_int_equal(gw_start(fake_engine(), &o, &s), GW_OK);
    assert_non_null(s);
    assert_true(gw_port(s) > 0);
    return s;
}

static int setup(void **state)
{
    base_log_set_level(BASE_LOG_WARN);
    *state = start_server(0, 1024 * 1024);
    return 0;
}

static int teardown(void **state)
{
    gw_stop(*state);
    assert_true(fake_wait_sessions_open(0, 5000));
    return 0;
}

static int port_of(void **state)
{
    return gw_port(*state);
}

/* ---- libpq ------------------------------------------------------------------ */

static void test_pq_select(void **state)
{
    /* Default sslmode=prefer: SSLRequest answered 'N', then plain startup. */
    PGconn *c = tu_pq(port_of(state), "");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_string_equal(PQparameterStatus(c, "server_encoding"), "UTF8");
    assert_string_equal(PQparameterStatus(c, "integer_datetimes"), "on");
    assert_non_null(PQparameterStatus(c, "server_version"));
    assert_true(PQbackendPID(c) > 0);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PGresult *r = PQexec(c, "SELECT 1");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(PQnfields(r), 1);
    assert_int_equal(PQftype(r, 0), 23);
    assert_string_equal(PQfname(r, 0), "?column?");
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    assert_string_equal(PQcmdStatus(r), "SELECT 1");
    PQclear(r);
    r = PQexec(c, "NULL");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(PQgetisnull(r, 0, 0));
    PQclear(r);
    r = PQexec(c, "  ");
    assert_int_equal(PQresultStatus(r), PGRES_EMPTY_QUERY);
    PQclear(r);
    PQfinish(c);
}

static void test_pq_multi_statement(void **state)
{
    PGconn *c = tu_pq(port_of(state), "sslmode=disable gssencmode=disable");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_int_equal(PQsendQuery(c, "BEGIN; SELECT 1; SELECT 1; COMMIT"), 1);
    ExecStatusType want[] = {PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_TUPLES_OK, PGRES_COMMAND_OK};
    int n = 0;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        assert_true(n < 4);
        assert_int_equal(PQresultStatus(r), want[n]);
        n++;
        PQclear(r);
    }
    assert_int_equal(n, 4);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PQfinish(c);
}

static void test_pq_error_and_txn_status(void **state)
{
    PGconn *c = tu_pq(port_of(state), "sslmode=disable");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "BEGIN");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    r = PQexec(c, "bogus statement");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42601");
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SEVERITY), "ERROR");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    r = PQexec(c, "SELECT 1");
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "25P02");
    PQclear(r);
    r = PQexec(c, "ROLLBACK");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    /* An error stops the rest of a multi-statement string. */
    r = PQexec(c, "bogus; SELECT 1");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    PQfinish(c);
}

static void notice_counter(void *arg, const PGresult *r)
{
    (*(int *)arg)++;
}

static void test_pq_notice(void **state)
{
    PGconn *c = tu_pq(port_of(state), "sslmode=disable");
    int notices = 0;
    PQsetNoticeReceiver(c, notice_counter, &notices);
    PGresult *r = PQexec(c, "NOTICE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    assert_int_equal(notices, 1);
    PQfinish(c);
}

static void test_pq_large_result(void **state)
{
    /* ~12 MB of rows: the worker hits the output limit and waits. */
    PGconn *c = tu_pq(port_of(state), "sslmode=disable");
    PGresult *r = PQexec(c, "ROWS 100000");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 100000);
    assert_string_equal(PQgetvalue(r, 99999, 0), "99999");
    assert_int_equal(PQgetlength(r, 5, 1), 100);
    PQclear(r);
    PQfinish(c);
}

#define CONCURRENT_CLIENTS 24
#define QUERIES_PER_CLIENT 30

static void *client_thread(void *arg)
{
    int port = *(int *)arg;
    long ok = 0;
    PGconn *c = tu_pq(port, "sslmode=disable");
    if (PQstatus(c) == CONNECTION_OK) {
        for (int i = 0; i < QUERIES_PER_CLIENT; i++) {
            PGresult *r = PQexec(c, (i % 3 == 0) ? "BEGIN; SELECT 1; COMMIT" : "SELECT 1");
            if (PQresultStatus(r) == ((i % 3 == 0) ? PGRES_COMMAND_OK : PGRES_TUPLES_OK))
                ok++;
            PQclear(r);
        }
    }
    PQfinish(c);
    return (void *)ok;
}

static void test_pq_concurrent(void **state)
{
    int port = port_of(state);
    pthread_t t[CONCURRENT_CLIENTS];
    for (int i = 0; i < CONCURRENT_CLIENTS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, client_thread, &port), 0);
    long total = 0;
    for (int i = 0; i < CONCURRENT_CLIENTS; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        total += (long)ok;
    }
    assert_int_equal(total, CONCURRENT_CLIENTS * QUERIES_PER_CLIENT);
}

static void test_pq_cancel(void **state)
{
    PGconn *c = tu_pq(port_of(state), "sslmode=disable");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_int_equal(PQsendQuery(c, "WAIT"), 1);
    assert_true(fake_wait_waiters(1, 5000));
    PGcancel *cancel = PQgetCancel(c);
    char err[256];
    assert_int_equal(PQcancel(cancel, err, sizeof err), 1);
    PQfreeCancel(cancel);
    PGresult *r = PQgetResult(c);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "57014");
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    /* The session still works. */
    r = PQexec(c, "SELECT 1");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);
}

static void test_pq_disconnect_mid_query(void **state)
{
    /* Sessions of earlier tests close asynchronously after PQfinish. */
    assert_true(fake_wait_sessions_open(0, 5000));
    int before = 0;
    PGconn *c = tu_pq(port_of(state), "sslmode=disable");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_int_equal(fake_sessions_open(), before + 1);
    assert_int_equal(PQsendQuery(c, "WAIT"), 1);
    assert_true(fake_wait_waiters(1, 5000));
    PQfinish(c); /* the gateway cancels the statement and closes the session */
    assert_true(fake_wait_sessions_open(before, 5000));
}

static void test_max_connections(void **state)
{
    gw_server *s = start_server(2, 0);
    int port = gw_port(s);
    PGconn *a = tu_pq(port, "sslmode=disable");
    PGconn *b = tu_pq(port, "sslmode=disable");
    assert_int_equal(PQstatus(a), CONNECTION_OK);
    assert_int_equal(PQstatus(b), CONNECTION_OK);
    PGconn *c = tu_pq(port, "sslmode=disable");
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(c), "too many clients"));
    PQfinish(c);
    /* A session that fails to open gets a FATAL error, not a hang. */
    PQfinish(b);
    int ok = 0;
    for (int i = 0; i < 2000 && !ok; i++) { /* the slot frees asynchronously */
        c = tu_pq(port, "sslmode=disable");
        ok = PQstatus(c) == CONNECTION_OK;
        PQfinish(c);
    }
    assert_true(ok);
    PQfinish(a);
    gw_stop(s);
}

static void test_session_open_failure(void **state)
{
    PGconn *c = tu_pq(port_of(state), "sslmode=disable user=nosession");
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(c), "could not open"));
    PQfinish(c);
}

static void test_stop_with_busy_sessions(void **state)
{
    assert_true(fake_wait_sessions_open(0, 5000));
    int before = 0;
    gw_server *s = start_server(0, 0);
    PGconn *a = tu_pq(gw_port(s), "sslmode=disable");
    PGconn *b = tu_pq(gw_port(s), "sslmode=disable");
    assert_int_equal(PQstatus(a), CONNECTION_OK);
    assert_int_equal(PQstatus(b), CONNECTION_OK);
    PGresult *r = PQexec(b, "BEGIN");
    PQclear(r);
    assert_int_equal(PQsendQuery(a, "WAIT"), 1);
    assert_true(fake_wait_waiters(1, 5000));
    gw_stop(s); /* cancels, closes sessions, joins workers */
    assert_int_equal(fake_sessions_open(), before);
    PQfinish(a);
    PQfinish(b);
}

static void test_psql(void **state)
{
    if (access("/usr/bin/psql", X_OK) != 0) {
        skip();
        return;
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/psql 'postgresql://root@127.0.0.1:%d/defaultdb?connect_timeout=10' "
             "-X -A -t -v ON_ERROR_STOP=1 -c 'SELECT 1' 2>&1",
             port_of(state));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[256] = {0};
    size_t n = fread(out, 1, sizeof out - 1, p);
    int status = pclose(p);
    out[n] = 0;
    if (status != 0 || strcmp(out, "1\n") != 0)
        fail_msg("psql exited %d with: %s", status, out);
}

/* ---- raw protocol ------------------------------------------------------------- */

static void test_raw_ssl_and_gss_requests(void **state)
{
    int port = port_of(state);
    for (int k = 0; k < 2; k++) {
        int fd = tu_connect(port);
        assert_true(fd >= 0);
        base_buf b = {0};
        tu_put_u32(&b, 8);
        tu_put_u32(&b, k == 0 ? 80877103u : 80877104u);
        assert_int_equal(tu_send(fd, b.data, b.len), 0);
        char n = 0;
        assert_int_equal(tu_read_exact(fd, &n, 1), 0);
        assert_int_equal(n, 'N');
        base_buf_reset(&b);
        tu_startup(&b, "root", NULL);
        tu_query(&b, "SELECT 1");
        assert_int_equal(tu_send(fd, b.data, b.len), 0);
        char types[64], status;
        assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, NULL), 0);
        assert_true(types[0] == 'R');
        assert_non_null(strchr(types, 'K'));
        assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, NULL), 0);
        assert_string_equal(types, "TDCZ");
        assert_int_equal(status, 'I');
        base_buf_reset(&b);
        tu_msg(&b, 'X', NULL, 0);
        assert_int_equal(tu_send(fd, b.data, b.len), 0);
        assert_true(tu_wait_closed(fd));
        close(fd);
        base_buf_free(&b);
    }
}

static void test_raw_extended_protocol(void **state)
{
    int fd = tu_session(port_of(state), "root", NULL, NULL);
    assert_true(fd >= 0);
    base_buf b = {0};
    tu_msg(&b, 'P', "\0SELECT 1\0\0\0", 12);
    tu_msg(&b, 'B', "\0\0\0\0\0\0\0\0", 8);
    tu_msg(&b, 'D', "P\0", 2);
    tu_msg(&b, 'E', "\0\0\0\0\0", 5);
    tu_msg(&b, 'S', NULL, 0);
    tu_msg(&b, 'S', NULL, 0); /* a lone Sync: just ReadyForQuery */
    tu_query(&b, "SELECT 1");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    char types[64], status, state5[6];
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, state5), 0);
    assert_string_equal(types, "12nCZ");
    assert_string_equal(state5, "");
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, NULL), 0);
    assert_string_equal(types, "Z");
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, NULL), 0);
    assert_string_equal(types, "TDCZ");
    /* A failing Parse: the rest up to Sync is discarded, then recovery. */
    base_buf_reset(&b);
    tu_msg(&b, 'P', "\0fail\0\0\0", 8);
    tu_msg(&b, 'B', "\0\0\0\0\0\0\0\0", 8);
    tu_msg(&b, 'E', "\0\0\0\0\0", 5);
    tu_msg(&b, 'H', NULL, 0);
    tu_msg(&b, 'S', NULL, 0);
    tu_msg(&b, 'P', "\0SELECT 1\0\0\0", 12);
    tu_msg(&b, 'S', NULL, 0);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, state5), 0);
    assert_string_equal(types, "EZ");
    assert_string_equal(state5, "42601");
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, state5), 0);
    assert_string_equal(types, "1Z");
    /* A malformed Bind (count larger than the message): 08P01, the
    ** connection survives. */
    base_buf_reset(&b);
    tu_msg(&b, 'B', "\0\0\0\0\0\5\0\0\0\7ab", 13);
    tu_msg(&b, 'S', NULL, 0);
    tu_query(&b, "SELECT 1");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, state5), 0);
    assert_string_equal(types, "EZ");
    assert_string_equal(state5, "08P01");
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, NULL), 0);
    assert_string_equal(types, "TDCZ");
    base_buf_free(&b);
    close(fd);
}

static void test_raw_pipelined_queries(void **state)
{
    int fd = tu_session(port_of(state), "root", NULL, NULL);
    assert_true(fd >= 0);
    base_buf b = {0};
    for (int i = 0; i < 50; i++)
        tu_query(&b, i % 2 ? "SELECT 1" : "BEGIN");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    for (int i = 0; i < 50; i++) {
        char types[16], status;
        assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, NULL), 0);
        assert_string_equal(types, i % 2 ? "TDCZ" : "CZ");
        assert_int_equal(status, 'T');
    }
    base_buf_free(&b);
    close(fd);
}

/* Send raw bytes on a fresh connection and expect an error with sqlstate
** then a closed connection. */
static void expect_fatal(int port, bool with_session, const base_buf *bytes, const char *sqlstate)
{
    int fd = with_session ? tu_session(port, "root", NULL, NULL) : tu_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(tu_send(fd, bytes->data, bytes->len), 0);
    base_buf body = {0};
    char t = 0;
    assert_int_equal(tu_read_msg(fd, &t, &body), 0);
    assert_int_equal(t, 'E');
    char code[6];
    tu_error_field(&body, 'C', code, sizeof code);
    assert_string_equal(code, sqlstate);
    tu_error_field(&body, 'S', code, sizeof code);
    assert_string_equal(code, "FATAL");
    assert_true(tu_wait_closed(fd));
    close(fd);
    base_buf_free(&body);
}

static void test_raw_bad_input(void **state)
{
    int port = port_of(state);
    base_buf b = {0};
    /* startup length too small */
    tu_put_u32(&b, 4);
    expect_fatal(port, false, &b, "08P01");
    /* startup length too big */
    base_buf_reset(&b);
    tu_put_u32(&b, 10001);
    expect_fatal(port, false, &b, "08P01");
    /* protocol 2.0 */
    base_buf_reset(&b);
    tu_put_u32(&b, 8);
    tu_put_u32(&b, 2u << 16);
    expect_fatal(port, false, &b, "0A000");
    /* no user */
    base_buf_reset(&b);
    tu_startup(&b, NULL, "db");
    expect_fatal(port, false, &b, "08P01");
    /* parameters missing their terminators */
    base_buf_reset(&b);
    tu_put_u32(&b, 16);
    tu_put_u32(&b, 196608);
    base_buf_append(&b, "userroot", 8);
    expect_fatal(port, false, &b, "08P01");
    /* cancel request of the wrong length */
    base_buf_reset(&b);
    tu_put_u32(&b, 12);
    tu_put_u32(&b, 80877102u);
    tu_put_u32(&b, 1);
    expect_fatal(port, false, &b, "08P01");
    /* message length < 4 */
    base_buf_reset(&b);
    base_buf_append(&b, "Q\0\0\0\3", 5);
    expect_fatal(port, true, &b, "08P01");
    /* message longer than max_message_bytes (1 MiB here) */
    base_buf_reset(&b);
    base_buf_append(&b, "Q\x7f\xff\xff\xff", 5);
    expect_fatal(port, true, &b, "08P01");
    /* query without its NUL */
    base_buf_reset(&b);
    tu_msg(&b, 'Q', "SELECT 1", 8);
    expect_fatal(port, true, &b, "08P01");
    /* unknown message type */
    base_buf_reset(&b);
    tu_msg(&b, 'y', "abc", 3);
    expect_fatal(port, true, &b, "08P01");
    base_buf_free(&b);
    /* And the server still serves. */
    PGconn *c = tu_pq(port, "sslmode=disable");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQfinish(c);
}

static void test_slow_reader_does_not_block_others(void **state)
{
    /* A client that does not read its 200000-row result: its worker stops
    ** at the output limit while the socket buffers are full; other
    ** sessions keep being served; then the client reads everything. */
    int fd = tu_session(port_of(state), "root", NULL, NULL);
    assert_true(fd >= 0);
    base_buf b = {0};
    tu_query(&b, "ROWS 200000");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    PGconn *other = tu_pq(port_of(state), "sslmode=disable");
    for (int i = 0; i < 20; i++) {
        PGresult *r = PQexec(other, "SELECT 1");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
    }
    PQfinish(other);
    long rows = 0;
    char t = 0;
    for (long i = 0; i < 300000; i++) {
        assert_int_equal(tu_read_msg(fd, &t, &b), 0);
        if (t == 'D')
            rows++;
        if (t == 'Z')
            break;
    }
    assert_int_equal(t, 'Z');
    assert_int_equal(rows, 200000);
    base_buf_free(&b);
    close(fd);
}

/* Out of memory at the N-th allocation, for every N in turn, while a client
** connects and queries: no crash, no leak, no hang, and once memory is
** back the same server serves normally. Threads allocate concurrently, so
** the failing site varies between runs; every run must pass. */
static void test_out_of_memory(void **state)
{
    int served = 0;
    for (long n = 0; n < 120; n++) {
        gw_options o = {.host = "127.0.0.1"};
        gw_server *s = NULL;
        base_alloc_fail_after(n);
        int rc = gw_start(fake_engine(), &o, &s);
        if (rc != GW_OK) {
            base_alloc_fail_after(-1);
            assert_int_equal(rc, GW_ERR_NOMEM);
            continue;
        }
        PGconn *c = tu_pq(gw_port(s), "sslmode=disable");
        if (PQstatus(c) == CONNECTION_OK) {
            PGresult *r = PQexec(c, "SELECT 1; ROWS 20; bogus");
            if (PQresultStatus(r) == PGRES_FATAL_ERROR && PQresultErrorField(r, PG_DIAG_SQLSTATE) &&
                strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42601") == 0)
                served++;
            PQclear(r);
        }
        PQfinish(c);
        base_alloc_fail_after(-1);
        c = tu_pq(gw_port(s), "sslmode=disable");
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PGresult *r = PQexec(c, "SELECT 1");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
        PQfinish(c);
        gw_stop(s);
        assert_true(fake_wait_sessions_open(0, 5000));
    }
    assert_true(served > 0); /* the later injection points let it all through */
}

static void test_startup_timeout(void **state)
{
    gw_options o = {.host = "127.0.0.1", .startup_timeout_ms = 50};
    gw_server *s = NULL;
    assert_int_equal(gw_start(fake_engine(), &o, &s), GW_OK);
    for (int k = 0; k < 2; k++) {
        int fd = tu_connect(gw_port(s));
        assert_true(fd >= 0);
        if (k == 1) /* half a startup packet */
            assert_int_equal(tu_send(fd, "\0\0\0\50\0\3", 6), 0);
        base_buf body = {0};
        char t = 0;
        assert_int_equal(tu_read_msg(fd, &t, &body), 0);
        assert_int_equal(t, 'E');
        char code[6];
        tu_error_field(&body, 'C', code, sizeof code);
        assert_string_equal(code, "08P01");
        assert_true(tu_wait_closed(fd));
        close(fd);
        base_buf_free(&body);
    }
    /* A session that did start is not timed out. */
    int fd = tu_session(gw_port(s), "root", NULL, NULL);
    assert_true(fd >= 0);
    base_buf b = {0};
    tu_query(&b, "WAIT");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    assert_true(fake_wait_waiters(1, 5000));
    gw_stop(s); /* cancels the WAIT, closes the socket */
    assert_true(tu_wait_closed(fd));
    close(fd);
    base_buf_free(&b);
}

static void test_raw_cancel_unknown_key(void **state)
{
    int port = port_of(state);
    uint32_t pid = 0, secret = 0;
    int s = tu_session(port, "root", &pid, &secret);
    assert_true(s >= 0);
    assert_true(pid > 0);
    /* Wrong secret: ignored; the cancel connection is closed silently. */
    int fd = tu_connect(port);
    base_buf b = {0};
    tu_put_u32(&b, 16);
    tu_put_u32(&b, 80877102u);
    tu_put_u32(&b, pid);
    tu_put_u32(&b, secret + 1);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    char x;
    assert_int_equal(recv(fd, &x, 1, 0), 0);
    close(fd);
    /* The session is unaffected. */
    base_buf_reset(&b);
    tu_query(&b, "SELECT 1");
    assert_int_equal(tu_send(s, b.data, b.len), 0);
    char types[16];
    assert_int_equal(tu_read_until_ready(s, types, sizeof types, NULL, NULL), 0);
    assert_string_equal(types, "TDCZ");
    close(s);
    base_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pq_select),
        cmocka_unit_test(test_pq_multi_statement),
        cmocka_unit_test(test_pq_error_and_txn_status),
        cmocka_unit_test(test_pq_notice),
        cmocka_unit_test(test_pq_large_result),
        cmocka_unit_test(test_pq_concurrent),
        cmocka_unit_test(test_pq_cancel),
        cmocka_unit_test(test_pq_disconnect_mid_query),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_session_open_failure),
        cmocka_unit_test(test_stop_with_busy_sessions),
        cmocka_unit_test(test_psql),
        cmocka_unit_test(test_raw_ssl_and_gss_requests),
        cmocka_unit_test(test_raw_extended_protocol),
        cmocka_unit_test(test_raw_pipelined_queries),
        cmocka_unit_test(test_raw_bad_input),
        cmocka_unit_test(test_raw_cancel_unknown_key),
        cmocka_unit_test(test_startup_timeout),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_slow_reader_does_not_block_others),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
