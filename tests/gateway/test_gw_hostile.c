/*
** Hostile input (issue 9) against the real stack (sql -> txn -> storage in
** memory): statement_timeout (57014 "statement timeout" on pg_sleep, the
** block aborted, the session usable; a CancelRequest still says "user
** request"), idle_in_transaction_session_timeout (FATAL 25P03, the
** transaction rolled back), the duration settings' validation, sessions per
** user (53300), a stalled startup and a stalled message (closed), a
** statement over GW_STATEMENT_MAX_BYTES (54000) and a result row over
** max_result_bytes (53200), both leaving the session usable;
** idle_session_timeout (FATAL 57P05, only outside a block), settings in
** the startup packet's options (applied; an unknown one FATAL 42704), and
** session_memory_limit (53200 for the statement over it, the session and
** another one unaffected).
**
** Timeouts are short (hundreds of ms) so the tests run in seconds; every
** socket read is bounded by TU_IO_TIMEOUT_MS; no timing assertion.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gw_int.h"
#include "gw_real_stack.h"
#include "gw_test_util.h"

/* The fixture with these gateway options (start_gw). */
static int setup(void **state)
{
    int rc = tu_real_setup(state);
    tu_real_fixture *f = *state;
    gw_stop(f->server); /* replaced by each test's own (start_gw) */
    f->server = NULL;
    return rc;
}

static int teardown(void **state)
{
    tu_real_fixture *f = *state;
    if (f->server == NULL) { /* tu_real_teardown stops one */
        gw_options go = {.host = "127.0.0.1", .port = 0};
        assert_int_equal(gw_start(f->engine, &go, &f->server), GW_OK);
    }
    return tu_real_teardown(state);
}

static int start_gw(void **state, const gw_options *o)
{
    tu_real_fixture *f = *state;
    if (f->server != NULL)
        gw_stop(f->server);
    f->server = NULL;
    assert_int_equal(gw_start(f->engine, o, &f->server), GW_OK);
    return gw_port(f->server);
}

static PGconn *pq(int port, const char *user)
{
    char extra[128];
    snprintf(extra, sizeof extra, "sslmode=disable user=%s", user);
    PGconn *c = tu_pq(port, extra);
    assert_non_null(c);
    return c;
}

static void want_error(PGconn *c, const char *sql, const char *state, const char *msg_part)
{
    PGresult *r = PQexec(c, sql);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (got == NULL || strcmp(got, state) != 0)
        fail_msg("%s: want %s, got %s %s", sql, state, got ? got : "(none)",
                 PQresultErrorMessage(r));
    if (msg_part != NULL && strstr(PQresultErrorMessage(r), msg_part) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", sql, PQresultErrorMessage(r), msg_part);
    PQclear(r);
}

static void want_value(PGconn *c, const char *sql, const char *want)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    assert_string_equal(PQgetvalue(r, 0, 0), want);
    PQclear(r);
}

static void test_statement_timeout(void **state)
{
    gw_options o = {.host = "127.0.0.1"};
    int port = start_gw(state, &o);
    PGconn *c = pq(port, "root");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    want_error(c, "SET statement_timeout = 'soon'", "22023", "statement_timeout");
    want_error(c, "SET statement_timeout = '-5s'", "22023", NULL);
    tu_exec_ok(c, "SET statement_timeout = 2000");
    want_value(c, "SHOW statement_timeout", "2s");
    tu_exec_ok(c, "SET statement_timeout = '250ms'");
    want_value(c, "SHOW statement_timeout", "250ms");
    want_value(c, "SELECT pg_sleep(0.01) IS NULL", "t");

    want_error(c, "SELECT pg_sleep(30)", "57014", "canceling statement due to statement timeout");
    want_value(c, "SELECT 1", "1"); /* the session goes on */

    /* In a block: the statement fails, the block is aborted (25P02 until
    ** ROLLBACK), as in PostgreSQL. */
    tu_exec_ok(c, "CREATE TABLE st (k INT PRIMARY KEY, v INT)");
    tu_exec_ok(c, "BEGIN");
    tu_exec_ok(c, "INSERT INTO st VALUES (1, 1)");
    want_error(c, "SELECT pg_sleep(30)", "57014", "statement timeout");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    want_error(c, "SELECT 1", "25P02", NULL);
    tu_exec_ok(c, "ROLLBACK");
    want_value(c, "SELECT count(*) FROM st", "0");

    /* Extended protocol: the same. */
    PGresult *r = PQexecParams(c, "SELECT pg_sleep($1::float)", 1, NULL,
                               (const char *const[]){"30"}, NULL, NULL, 0);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "57014");
    PQclear(r);

    /* Turned off: a short sleep completes; a CancelRequest says "user request". */
    tu_exec_ok(c, "RESET statement_timeout");
    want_value(c, "SHOW statement_timeout", "0");
    assert_int_equal(PQsendQuery(c, "SELECT pg_sleep(30)"), 1);
    usleep(100 * 1000); /* not a correctness wait: the cancel works either way */
    PGcancel *cancel = PQgetCancel(c);
    char err[256];
    assert_int_equal(PQcancel(cancel, err, sizeof err), 1);
    PQfreeCancel(cancel);
    bool saw = false;
    while ((r = PQgetResult(c)) != NULL) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (st != NULL && strcmp(st, "57014") == 0) {
            saw = true;
            assert_non_null(strstr(PQresultErrorMessage(r), "user request"));
        }
        PQclear(r);
    }
    assert_true(saw);
    want_value(c, "SELECT 2", "2");
    tu_exec_ok(c, "DROP TABLE st");
    PQfinish(c);
}

static void test_idle_in_transaction(void **state)
{
    gw_options o = {.host = "127.0.0.1"};
    int port = start_gw(state, &o);
    PGconn *a = pq(port, "root");
    tu_exec_ok(a, "CREATE TABLE it (k INT PRIMARY KEY, v INT)");
    tu_exec_ok(a, "INSERT INTO it VALUES (1, 0)");
    want_error(a, "SET idle_in_transaction_session_timeout = 'x'", "22023", NULL);
    tu_exec_ok(a, "SET idle_in_transaction_session_timeout = '300ms'");
    /* idle outside a block: nothing happens */
    usleep(500 * 1000);
    want_value(a, "SELECT v FROM it WHERE k = 1", "0");
    PQfinish(a);

    /* Raw socket: see the FATAL and the close. */
    int fd = tu_session(port, "root", NULL, NULL);
    assert_true(fd >= 0);
    base_buf b = {0};
    tu_query(&b, "SET idle_in_transaction_session_timeout = '300ms'; BEGIN; "
                 "UPDATE it SET v = 7 WHERE k = 1");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    char types[64], status = 0, sqlstate[6];
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, sqlstate), 0);
    assert_int_equal(status, 'T');
    assert_string_equal(sqlstate, "");
    char type = 0;
    base_buf body = {0};
    assert_int_equal(tu_read_msg(fd, &type, &body), 0); /* within TU_IO_TIMEOUT_MS */
    assert_int_equal(type, 'E');
    char field[128];
    tu_error_field(&body, 'C', field, sizeof field);
    assert_string_equal(field, "25P03");
    tu_error_field(&body, 'S', field, sizeof field);
    assert_string_equal(field, "FATAL");
    tu_error_field(&body, 'M', field, sizeof field);
    assert_string_equal(field, "terminating connection due to idle-in-transaction timeout");
    assert_true(tu_wait_closed(fd));
    close(fd);
    base_buf_free(&b);
    base_buf_free(&body);

    /* Rolled back: another session updates the row and sees the old value. */
    PGconn *c = pq(port, "root");
    want_value(c, "SELECT v FROM it WHERE k = 1", "0");
    tu_exec_ok(c, "UPDATE it SET v = 8 WHERE k = 1");
    want_value(c, "SELECT v FROM it WHERE k = 1", "8");
    /* A statement that runs is not idle; a block that ends is not idle. */
    tu_exec_ok(c, "SET idle_in_transaction_session_timeout = '200ms'");
    tu_exec_ok(c, "BEGIN");
    tu_exec_ok(c, "SELECT pg_sleep(0.4)");
    tu_exec_ok(c, "COMMIT");
    usleep(400 * 1000);
    want_value(c, "SELECT 3", "3");
    tu_exec_ok(c, "DROP TABLE it");
    PQfinish(c);
}

static void want_fatal(int fd, const char *sqlstate, const char *message)
{
    char type = 0, field[128];
    base_buf body = {0};
    assert_int_equal(tu_read_msg(fd, &type, &body), 0); /* within TU_IO_TIMEOUT_MS */
    assert_int_equal(type, 'E');
    tu_error_field(&body, 'C', field, sizeof field);
    assert_string_equal(field, sqlstate);
    tu_error_field(&body, 'S', field, sizeof field);
    assert_string_equal(field, "FATAL");
    tu_error_field(&body, 'M', field, sizeof field);
    assert_string_equal(field, message);
    assert_true(tu_wait_closed(fd));
    base_buf_free(&body);
}

static void test_idle_session(void **state)
{
    gw_options o = {.host = "127.0.0.1"};
    int port = start_gw(state, &o);
    PGconn *a = pq(port, "root");
    want_error(a, "SET idle_session_timeout = 'x'", "22023", NULL);
    tu_exec_ok(a, "SET idle_session_timeout = 5000");
    want_value(a, "SHOW idle_session_timeout", "5s");
    /* In a block the idle-session timer does not run (PostgreSQL's rule). */
    tu_exec_ok(a, "SET idle_session_timeout = '200ms'");
    tu_exec_ok(a, "BEGIN");
    usleep(400 * 1000);
    want_value(a, "SELECT 1", "1");
    tu_exec_ok(a, "RESET idle_session_timeout");
    tu_exec_ok(a, "COMMIT");
    PQfinish(a);

    /* Raw socket: idle outside a block, the FATAL and the close. */
    int fd = tu_session(port, "root", NULL, NULL);
    assert_true(fd >= 0);
    base_buf b = {0};
    tu_query(&b, "SET idle_session_timeout = '200ms'");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    char types[64], status = 0, sqlstate[6];
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, sqlstate), 0);
    assert_int_equal(status, 'I');
    want_fatal(fd, "57P05", "terminating connection due to idle-session timeout");
    close(fd);
    base_buf_free(&b);
}

/* A raw session of root whose startup packet carries options: the socket
** after the first ReadyForQuery, or -1. */
static int session_with_options(int port, const char *options)
{
    int fd = tu_connect(port);
    if (fd < 0)
        return -1;
    static const char pairs[] = "user\0root\0database\0defaultdb\0options";
    size_t olen = strlen(options);
    uint32_t len = (uint32_t)(8 + sizeof pairs + olen + 2);
    uint8_t pkt[512];
    assert_true(len <= sizeof pkt);
    uint8_t head[8] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                       (uint8_t)len, 0, 3, 0, 0};
    memcpy(pkt, head, 8);
    memcpy(pkt + 8, pairs, sizeof pairs); /* its NUL ends "options" */
    memcpy(pkt + 8 + sizeof pairs, options, olen + 1);
    pkt[len - 1] = 0;
    int rc = tu_send(fd, pkt, len);
    base_buf b = {0};
    for (int i = 0; rc == 0 && i < 100; i++) { /* a login sends a dozen messages */
        char type = 0;
        if (tu_read_msg(fd, &type, &b) != 0 || type == 'E')
            rc = -1;
        else if (type == 'Z')
            break;
    }
    base_buf_free(&b);
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The startup packet's options, as libpq's options= (PGOPTIONS) sends them. */
static void test_startup_options(void **state)
{
    gw_options o = {.host = "127.0.0.1"};
    int port = start_gw(state, &o);
    PGconn *c = tu_pq(port, "sslmode=disable options='-c statement_timeout=5s "
                            "--idle-in-transaction-session-timeout=2min -capplication_name=a\\\\ b'");
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("options: %s", PQerrorMessage(c));
    want_value(c, "SHOW statement_timeout", "5s");
    want_value(c, "SHOW idle_in_transaction_session_timeout", "2min");
    want_value(c, "SHOW application_name", "a b");
    assert_string_equal(PQparameterStatus(c, "application_name"), "a b");
    PQfinish(c);

    static const struct {
        const char *options, *message;
    } bad[] = {
        {"options='-c no_such_setting=1'", "unrecognized configuration parameter"},
        {"options='-c statement_timeout=soon'", "invalid value for parameter"},
        {"options='-c statement_timeout'", "requires a value"},
        {"options='-B 100'", "invalid command-line argument"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char extra[160];
        snprintf(extra, sizeof extra, "sslmode=disable %s", bad[i].options);
        c = tu_pq(port, extra);
        assert_int_not_equal(PQstatus(c), CONNECTION_OK);
        if (strstr(PQerrorMessage(c), bad[i].message) == NULL)
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].options, PQerrorMessage(c),
                     bad[i].message);
        PQfinish(c);
    }

    /* The idle-session timeout from the options: the session ends by itself. */
    int fd = session_with_options(port, "--idle_session_timeout=200ms");
    assert_true(fd >= 0);
    want_fatal(fd, "57P05", "terminating connection due to idle-session timeout");
    close(fd);

    /* Once logged in a good session is unaffected by the bad ones. */
    c = pq(port, "root");
    want_value(c, "SHOW statement_timeout", "0");
    PQfinish(c);
}

/* ALTER ROLE ... SET: applied at each login of the role, before the
** startup options (which win); RESET and RESET ALL take them back. */
static void test_role_settings(void **state)
{
    gw_options o = {.host = "127.0.0.1"};
    int port = start_gw(state, &o);
    PGconn *c = pq(port, "root");
    tu_exec_ok(c, "CREATE USER rs_user");
    want_error(c, "ALTER ROLE rs_user SET no_such_setting = 1", "42704", NULL);
    want_error(c, "ALTER ROLE rs_user SET statement_timeout = 'soon'", "22023", NULL);
    want_error(c, "ALTER ROLE rs_user SET server_version = '1'", "55P02", NULL);
    want_error(c, "ALTER ROLE rs_user SET search_path = a, b", "0A000", NULL);
    want_error(c, "ALTER ROLE nobody_here SET statement_timeout = 1", "42704", NULL);
    tu_exec_ok(c, "ALTER ROLE rs_user SET statement_timeout = '7s'");
    tu_exec_ok(c, "ALTER USER rs_user SET idle_in_transaction_session_timeout TO 60000");
    tu_exec_ok(c, "ALTER ROLE rs_user SET app.flavour = 'mint'");
    tu_exec_ok(c, "ALTER ROLE rs_user SET statement_timeout = 8000"); /* replaces 7s */
    tu_exec_ok(c, "ALTER ROLE rs_user CONNECTION LIMIT 5"); /* keeps the settings */

    PGconn *u = pq(port, "rs_user");
    assert_int_equal(PQstatus(u), CONNECTION_OK);
    want_value(u, "SHOW statement_timeout", "8s");
    want_value(u, "SHOW idle_in_transaction_session_timeout", "1min");
    want_value(u, "SHOW app.flavour", "mint");
    PQfinish(u);
    /* the startup options win over the role's */
    u = tu_pq(port, "sslmode=disable user=rs_user options='-c statement_timeout=3s'");
    assert_int_equal(PQstatus(u), CONNECTION_OK);
    want_value(u, "SHOW statement_timeout", "3s");
    PQfinish(u);
    /* other roles are unaffected */
    want_value(c, "SHOW statement_timeout", "0");
    /* the GUC_REPORT ones are announced (ParameterStatus) with the value
    ** applied at the login: the role's, the options', the packet's own
    ** application_name (after the options, as in PostgreSQL) */
    tu_exec_ok(c, "ALTER ROLE rs_user SET application_name = 'from_role'");
    tu_exec_ok(c, "ALTER ROLE rs_user SET DateStyle = 'ISO, DMY'");
    static const struct {
        const char *extra, *app;
    } apps[] = {
        {"", "from_role"},
        {"options='-c application_name=from_options'", "from_options"},
        {"application_name=from_packet options='-c application_name=from_options'",
         "from_packet"},
    };
    for (size_t i = 0; i < sizeof apps / sizeof apps[0]; i++) {
        char extra[160];
        snprintf(extra, sizeof extra, "sslmode=disable user=rs_user %s", apps[i].extra);
        u = tu_pq(port, extra);
        if (PQstatus(u) != CONNECTION_OK)
            fail_msg("%s: %s", extra, PQerrorMessage(u));
        want_value(u, "SHOW application_name", apps[i].app);
        assert_string_equal(PQparameterStatus(u, "application_name"), apps[i].app);
        want_value(u, "SHOW DateStyle", "ISO, DMY");
        assert_string_equal(PQparameterStatus(u, "DateStyle"), "ISO, DMY");
        assert_string_equal(PQparameterStatus(u, "session_authorization"), "rs_user");
        PQfinish(u);
    }
    /* the packet's application_name is cut to 63 bytes, as PostgreSQL does */
    u = tu_pq(port, "sslmode=disable application_name="
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(PQstatus(u), CONNECTION_OK);
    assert_int_equal(strlen(PQparameterStatus(u, "application_name")), 63);
    want_value(u, "SELECT length(current_setting('application_name'))", "63");
    PQfinish(u);
    tu_exec_ok(c, "ALTER ROLE rs_user RESET application_name");
    tu_exec_ok(c, "ALTER ROLE rs_user RESET DateStyle");

    tu_exec_ok(c, "ALTER ROLE rs_user RESET statement_timeout");
    tu_exec_ok(c, "ALTER ROLE rs_user SET idle_in_transaction_session_timeout TO DEFAULT");
    u = pq(port, "rs_user");
    want_value(u, "SHOW statement_timeout", "0");
    want_value(u, "SHOW idle_in_transaction_session_timeout", "0");
    want_value(u, "SHOW app.flavour", "mint");
    /* a user may set their own; not another's */
    tu_exec_ok(u, "ALTER ROLE rs_user SET statement_timeout = '2s'");
    want_error(u, "ALTER ROLE root SET statement_timeout = '2s'", "42501", NULL);
    PQfinish(u);
    u = pq(port, "rs_user");
    want_value(u, "SHOW statement_timeout", "2s");
    PQfinish(u);
    tu_exec_ok(c, "ALTER ROLE rs_user RESET ALL");
    u = pq(port, "rs_user");
    want_value(u, "SHOW statement_timeout", "0");
    PQfinish(u);
    tu_exec_ok(c, "DROP USER rs_user");
    PQfinish(c);
}

/* session_memory_limit: SQLite's memory for one session. A statement past
** it fails with 53200 and the session goes on; another session (default
** limit) runs the same statement. */
static void test_session_memory(void **state)
{
    gw_options o = {.host = "127.0.0.1"};
    int port = start_gw(state, &o);
    PGconn *a = pq(port, "root"), *b = pq(port, "root");
    want_value(a, "SHOW session_memory_limit", "256 MiB");
    want_error(a, "SET session_memory_limit = '1KiB'", "22023", "at least 4 MiB");
    want_error(a, "SET session_memory_limit = 'lots'", "22023", NULL);
    tu_exec_ok(a, "SET session_memory_limit = '8MiB'");
    want_value(a, "SHOW session_memory_limit", "8 MiB");
    /* one 20 MB aggregate value: past 8 MiB */
    static const char *const big =
        "SELECT length(group_concat(hex(zeroblob(500)), ',')) FROM generate_series(1, 20000)";
    want_error(a, big, "53200", "session's memory limit of 8 MiB");
    want_value(a, "SELECT 1", "1");
    want_value(b, big, "20019999");
    /* A large sort spills to a temp file: within the limit. */
    want_value(a, "SELECT count(*) FROM (SELECT hex(randomblob(200)) AS x FROM "
                  "generate_series(1, 50000) ORDER BY x)", "50000");
    want_value(a, "SELECT count(DISTINCT hex(randomblob(200))) > 49000 FROM "
                  "generate_series(1, 50000)", "t");
    /* In a block: the block is aborted, as any failed statement does. */
    tu_exec_ok(a, "BEGIN");
    want_error(a, big, "53200", NULL);
    assert_int_equal(PQtransactionStatus(a), PQTRANS_INERROR);
    tu_exec_ok(a, "ROLLBACK");
    /* Extended protocol: the same. */
    PGresult *r = PQexecParams(a, big, 0, NULL, NULL, NULL, NULL, 0);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (st == NULL || strcmp(st, "53200") != 0)
        fail_msg("extended: %s %s", PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
    PQclear(r);
    tu_exec_ok(a, "RESET session_memory_limit");
    want_value(a, big, "20019999");
    tu_exec_ok(a, "SET session_memory_limit = 0"); /* off: the node's cap only */
    want_value(a, "SHOW session_memory_limit", "0");
    want_value(a, big, "20019999");

    /* The node's cap (every session's SQLite memory, --max-sql-memory):
    ** 53200 for the statement past it, the sessions go on. */
    int64_t was = sqlv_memory_node_limit();
    assert_true(was >= SQLV_MEMORY_NODE_LIMIT_MIN_BYTES);
    assert_int_equal(sqlv_memory_set_node_limit(16 * 1024 * 1024), SQLV_OK);
    want_error(a, big, "53200", "out of memory");
    want_value(a, "SELECT 5", "5");
    want_value(b, "SELECT 6", "6");
    assert_int_equal(sqlv_memory_set_node_limit(was), SQLV_OK);
    want_value(a, big, "20019999");
    PQfinish(a);
    PQfinish(b);
}

static void test_connections_per_user(void **state)
{
    gw_options o = {.host = "127.0.0.1", .max_connections = 8, .max_connections_per_user = 2};
    int port = start_gw(state, &o);
    PGconn *c1 = pq(port, "alice");
    PGconn *c2 = pq(port, "alice");
    assert_int_equal(PQstatus(c1), CONNECTION_OK);
    assert_int_equal(PQstatus(c2), CONNECTION_OK);
    PGconn *c3 = pq(port, "alice");
    assert_int_equal(PQstatus(c3), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(c3), "too many connections for role \"alice\""));
    PQfinish(c3);
    PGconn *other = pq(port, "bob"); /* another user is not held up */
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    PQfinish(c1);
    /* The slot comes back once the server freed the session: retry, bounded. */
    PGconn *c4 = NULL;
    for (int i = 0; i < 100; i++) {
        c4 = pq(port, "alice");
        if (PQstatus(c4) == CONNECTION_OK)
            break;
        PQfinish(c4);
        c4 = NULL;
        usleep(20 * 1000);
    }
    assert_non_null(c4);
    want_value(c4, "SELECT 1", "1");
    PQfinish(c4);
    PQfinish(c2);
    PQfinish(other);

    /* The node's limit: 53300 "too many clients". */
    gw_options o2 = {.host = "127.0.0.1", .max_connections = 2};
    port = start_gw(state, &o2);
    PGconn *d1 = pq(port, "root"), *d2 = pq(port, "root");
    PGconn *d3 = pq(port, "root");
    assert_int_equal(PQstatus(d3), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(d3), "too many clients"));
    PQfinish(d3);
    PQfinish(d1);
    PQfinish(d2);
}

static void test_stalls(void **state)
{
    gw_options o = {.host = "127.0.0.1", .startup_timeout_ms = 300, .message_timeout_ms = 300};
    int port = start_gw(state, &o);
    char type = 0, field[128];
    base_buf body = {0};

    /* Half a startup packet, then nothing: 08P01 and closed. */
    int fd = tu_connect(port);
    assert_true(fd >= 0);
    const uint8_t half[] = {0, 0, 0, 40, 0, 3};
    assert_int_equal(tu_send(fd, half, sizeof half), 0);
    assert_int_equal(tu_read_msg(fd, &type, &body), 0);
    assert_int_equal(type, 'E');
    tu_error_field(&body, 'C', field, sizeof field);
    assert_string_equal(field, "08P01");
    assert_true(tu_wait_closed(fd));
    close(fd);

    /* A session, then half a Query: 08P01 and closed. */
    fd = tu_session(port, "root", NULL, NULL);
    assert_true(fd >= 0);
    const uint8_t partial[] = {'Q', 0, 0, 0, 100, 'S', 'E', 'L'};
    assert_int_equal(tu_send(fd, partial, sizeof partial), 0);
    usleep(100 * 1000);
    assert_int_equal(tu_send(fd, "E", 1), 0); /* trickling does not help */
    assert_int_equal(tu_read_msg(fd, &type, &body), 0);
    assert_int_equal(type, 'E');
    tu_error_field(&body, 'C', field, sizeof field);
    assert_string_equal(field, "08P01");
    tu_error_field(&body, 'S', field, sizeof field);
    assert_string_equal(field, "FATAL");
    assert_true(tu_wait_closed(fd));
    close(fd);

    /* An idle session with nothing pending stays open. */
    fd = tu_session(port, "root", NULL, NULL);
    assert_true(fd >= 0);
    usleep(600 * 1000);
    base_buf q = {0};
    tu_query(&q, "SELECT 1");
    assert_int_equal(tu_send(fd, q.data, q.len), 0);
    char types[64], status = 0, sqlstate[6];
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &status, sqlstate), 0);
    assert_string_equal(sqlstate, "");
    close(fd);
    base_buf_free(&q);
    base_buf_free(&body);
}

static void test_big_statement_and_row(void **state)
{
    gw_options o = {.host = "127.0.0.1", .max_result_bytes = 1024 * 1024};
    int port = start_gw(state, &o);
    PGconn *c = pq(port, "root");
    size_t n = GW_STATEMENT_MAX_BYTES + 16;
    char *q = malloc(n + 1);
    assert_non_null(q);
    memcpy(q, "SELECT 1 -- ", 12);
    memset(q + 12, 'x', n - 12);
    q[n] = '\0';
    want_error(c, q, "54000", "statement too long");
    free(q);
    want_value(c, "SELECT 1", "1");

    /* A 2 MB row: 53200 for that statement, the session goes on. */
    want_error(c, "SELECT hex(zeroblob(1000000))", "53200", "result buffer");
    want_value(c, "SELECT length(hex(zeroblob(100000)))", "200000");
    want_error(c, "SELECT hex(zeroblob(600000)) FROM generate_series(1, 50)",
                 "53200", NULL);
    want_value(c, "SELECT 4", "4");
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement_timeout),
        cmocka_unit_test(test_idle_in_transaction),
        cmocka_unit_test(test_idle_session),
        cmocka_unit_test(test_startup_options),
        cmocka_unit_test(test_session_memory),
        cmocka_unit_test(test_role_settings),
        cmocka_unit_test(test_connections_per_user),
        cmocka_unit_test(test_stalls),
        cmocka_unit_test(test_big_statement_and_row),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
