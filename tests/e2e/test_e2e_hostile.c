/*
** Hostile input against a real node (issue 9): `meridian start --insecure
** --max-sql-connections 8 --max-sql-connections-per-user 5`, then with libpq
** and raw sockets:
**   - statement_timeout: SELECT pg_sleep(30) fails with 57014 "canceling
**     statement due to statement timeout", in a block the block is aborted,
**     the session stays usable;
**   - idle_in_transaction_session_timeout: a session idle in a block that
**     updated a row is terminated (FATAL 25P03), its transaction rolled
**     back; another session can then update the row (in a cluster it would
**     have waited on the row's lock until then);
**   - connection limits: the 6th session of one user gets 53300 "too many
**     connections for role", the 9th session of the node 53300 "too many
**     clients"; a session ended frees its slot;
**   - a startup packet that stalls is closed after the startup timeout
**     (10 s); garbage instead of a startup packet, and garbage after a
**     login, get 08P01 and are closed; the other sessions carry on;
**   - settings from PGOPTIONS (the startup packet's options): applied at the
**     login, an unknown one refused (FATAL 42704); session_memory_limit
**     from there fails a 20 MB aggregate with 53200 and the session goes
**     on; idle_session_timeout from there ends the idle session (FATAL
**     57P05). The node runs with --max-sql-memory 512MiB.
** Every wait is bounded; no timing assertion.
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "e2e_util.h"

#define IO_TIMEOUT_S 30 /* > the node's 10 s startup timeout */

static void fails_with(PGconn *c, const char *sql, const char *sqlstate, const char *part) {
    PGresult *r = PQexec(c, sql);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (got == NULL || strcmp(got, sqlstate) != 0 ||
        (part != NULL && strstr(PQresultErrorMessage(r), part) == NULL)) {
        print_error("%s: got %s %s, want %s \"%s\"\n", sql, got ? got : "(none)",
                    PQresultErrorMessage(r), sqlstate, part ? part : "");
        PQclear(r);
        fail();
    }
    PQclear(r);
}

/* A libpq session as user (no retries: a refusal is an answer). */
static PGconn *connect_as(const char *user) {
    char conninfo[700];
    snprintf(conninfo, sizeof conninfo, "%s%suser=%s", e2e_node.url,
             strchr(e2e_node.url, '?') ? "&" : "?", user);
    /* the URL form takes user= as a query parameter */
    PGconn *c = PQconnectdb(conninfo);
    assert_non_null(c);
    return c;
}

static int raw_connect(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e2e_node.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read until EOF (or an error/timeout); the bytes into buf (truncated).
** Returns true on EOF/reset, false on a timeout. */
static bool read_to_close(int fd, char *buf, size_t cap, size_t *got) {
    *got = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n == 0) return true;
        if (n < 0) return errno == ECONNRESET;
        size_t take = BASE_MIN((size_t)n, cap - *got);
        memcpy(buf + *got, tmp, take);
        *got += take;
    }
}

/* Does an ErrorResponse in buf[0..len) carry sqlstate? */
static bool has_sqlstate(const char *buf, size_t len, const char *sqlstate) {
    char field[8];
    snprintf(field, sizeof field, "C%s", sqlstate);
    return memmem(buf, len, field, strlen(field) + 1) != NULL;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* A raw session as root: startup, then read to ReadyForQuery. -1 on failure. */
static int raw_session(void) {
    int fd = raw_connect();
    if (fd < 0) return -1;
    uint8_t pkt[64];
    size_t n = 8;
    put_u32(pkt + 4, 196608);
    memcpy(pkt + n, "user\0root\0\0", 11);
    n += 11;
    put_u32(pkt, (uint32_t)n);
    if (send(fd, pkt, n, MSG_NOSIGNAL) != (ssize_t)n) goto fail;
    for (;;) { /* bounded by the receive timeout */
        uint8_t hdr[5];
        if (recv(fd, hdr, 5, MSG_WAITALL) != 5) goto fail;
        uint32_t len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
        if (len < 4 || len > 65536) goto fail;
        char body[65536];
        if (len > 4 && recv(fd, body, len - 4, MSG_WAITALL) != (ssize_t)(len - 4)) goto fail;
        if (hdr[0] == 'Z') return fd;
        if (hdr[0] == 'E') goto fail;
    }
fail:
    close(fd);
    return -1;
}

static void test_statement_timeout(void **state) {
    (void)state;
    PGconn *c = e2e_conn();
    e2e_ok(c, "CREATE TABLE hostile_st (k INT PRIMARY KEY, v INT)");
    e2e_ok(c, "SET statement_timeout = '500ms'");
    e2e_rows_equal(c, "SHOW statement_timeout", "500ms\n");
    fails_with(c, "SELECT pg_sleep(30)", "57014", "canceling statement due to statement timeout");
    e2e_rows_equal(c, "SELECT 1", "1\n");
    e2e_ok(c, "BEGIN");
    e2e_ok(c, "INSERT INTO hostile_st VALUES (1, 1)");
    fails_with(c, "SELECT pg_sleep(30)", "57014", "statement timeout");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INERROR);
    e2e_fails(c, "SELECT 1", "25P02");
    e2e_ok(c, "ROLLBACK");
    e2e_rows_equal(c, "SELECT count(*) FROM hostile_st", "0\n");
    e2e_fails(c, "SET statement_timeout = 'later'", "22023");
    e2e_ok(c, "SET statement_timeout = 0");
    e2e_rows_equal(c, "SELECT pg_sleep(0.6) IS NULL", "t\n");
    e2e_ok(c, "DROP TABLE hostile_st");
    PQfinish(c);
}

static void test_idle_in_transaction(void **state) {
    (void)state;
    PGconn *b = e2e_conn();
    e2e_ok(b, "CREATE TABLE hostile_it (k INT PRIMARY KEY, v INT)");
    e2e_ok(b, "INSERT INTO hostile_it VALUES (1, 0)");
    PGconn *a = e2e_conn();
    e2e_ok(a, "SET idle_in_transaction_session_timeout = '1s'");
    e2e_ok(a, "BEGIN");
    e2e_ok(a, "UPDATE hostile_it SET v = 1 WHERE k = 1");
    /* b's UPDATE may wait for a's lock; a is terminated after 1 s idle. */
    e2e_ok(b, "UPDATE hostile_it SET v = 2 WHERE k = 1");
    e2e_rows_equal(b, "SELECT v FROM hostile_it WHERE k = 1", "2\n");
    /* a is terminated after 1 s idle: wait (bounded) for its socket to
    ** become readable without sending anything (a statement would reset
    ** the idle clock), then libpq reads the FATAL. */
    struct pollfd p = {.fd = PQsocket(a), .events = POLLIN};
    assert_int_equal(poll(&p, 1, IO_TIMEOUT_S * 1000), 1);
    PGresult *r = PQexec(a, "SELECT 1");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    assert_int_equal(PQstatus(a), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(a), "idle-in-transaction timeout"));
    PQfinish(a);
    e2e_rows_equal(b, "SELECT v FROM hostile_it WHERE k = 1", "2\n");
    e2e_ok(b, "DROP TABLE hostile_it");
    PQfinish(b);
}

static void test_startup_options(void **state) {
    (void)state;
    setenv("PGOPTIONS", "-c no_such_setting=1", 1);
    PGconn *c = connect_as("root");
    assert_int_not_equal(PQstatus(c), CONNECTION_OK);
    assert_non_null(strstr(PQerrorMessage(c), "unrecognized configuration parameter"));
    PQfinish(c);
    setenv("PGOPTIONS", "-c session_memory_limit=8MiB --idle-session-timeout=1s", 1);
    c = connect_as("root");
    unsetenv("PGOPTIONS");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    e2e_rows_equal(c, "SHOW session_memory_limit", "8 MiB\n");
    static const char big[] =
        "SELECT length(group_concat(hex(zeroblob(500)), ',')) FROM generate_series(1, 20000)";
    fails_with(c, big, "53200", "session's memory limit");
    e2e_rows_equal(c, "SELECT 7", "7\n");
    PGconn *other = e2e_conn(); /* the default limit */
    e2e_rows_equal(other, big, "20019999\n");
    PQfinish(other);
    /* idle 1 s outside a block: the FATAL comes without a request (bounded
    ** wait for the socket to become readable), then libpq reads it. */
    struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
    assert_int_equal(poll(&p, 1, IO_TIMEOUT_S * 1000), 1);
    PGresult *r = PQexec(c, "SELECT 1");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(c), "idle-session timeout"));
    PQfinish(c);
}

static void test_connection_limits(void **state) {
    (void)state;
    PGconn *mine[8] = {0};
    int n = 0;
    for (; n < 5; n++) {
        mine[n] = connect_as("flood");
        assert_int_equal(PQstatus(mine[n]), CONNECTION_OK);
    }
    PGconn *extra = connect_as("flood");
    assert_int_equal(PQstatus(extra), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(extra), "too many connections for role \"flood\""));
    PQfinish(extra);
    for (; n < 8; n++) { /* the node's 8 */
        mine[n] = connect_as("other");
        assert_int_equal(PQstatus(mine[n]), CONNECTION_OK);
    }
    extra = connect_as("third");
    assert_int_equal(PQstatus(extra), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(extra), "too many clients"));
    PQfinish(extra);
    for (int i = 0; i < n; i++)
        PQfinish(mine[i]);
    /* The slots come back (the node frees them just after the close). */
    PGconn *c = mtest_connect(&e2e_node);
    assert_non_null(c);
    e2e_rows_equal(c, "SELECT 5", "5\n");
    PQfinish(c);
}

static void test_stalled_startup_and_garbage(void **state) {
    (void)state;
    PGconn *bystander = e2e_conn();
    char buf[4096];
    size_t got = 0;

    /* Half a startup packet, then silence: closed after the 10 s timeout. */
    int fd = raw_connect();
    assert_true(fd >= 0);
    const uint8_t half[] = {0, 0, 0, 40, 0, 3, 0};
    assert_int_equal(send(fd, half, sizeof half, MSG_NOSIGNAL), (ssize_t)sizeof half);
    assert_true(read_to_close(fd, buf, sizeof buf, &got));
    assert_true(has_sqlstate(buf, got, "08P01"));
    close(fd);

    /* Garbage instead of a startup packet. */
    fd = raw_connect();
    assert_true(fd >= 0);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, junk, sizeof junk - 1, MSG_NOSIGNAL), (ssize_t)(sizeof junk - 1));
    assert_true(read_to_close(fd, buf, sizeof buf, &got));
    assert_true(has_sqlstate(buf, got, "08P01"));
    close(fd);

    /* Garbage after a login: an unknown message type. */
    fd = raw_session();
    assert_true(fd >= 0);
    const uint8_t bad[] = {'~', 0, 0, 0, 8, 1, 2, 3, 4};
    assert_int_equal(send(fd, bad, sizeof bad, MSG_NOSIGNAL), (ssize_t)sizeof bad);
    assert_true(read_to_close(fd, buf, sizeof buf, &got));
    assert_true(has_sqlstate(buf, got, "08P01"));
    close(fd);

    /* An absurd message length after a login. */
    fd = raw_session();
    assert_true(fd >= 0);
    const uint8_t huge[] = {'Q', 0x7f, 0xff, 0xff, 0xff};
    assert_int_equal(send(fd, huge, sizeof huge, MSG_NOSIGNAL), (ssize_t)sizeof huge);
    assert_true(read_to_close(fd, buf, sizeof buf, &got));
    assert_true(has_sqlstate(buf, got, "08P01"));
    close(fd);

    e2e_rows_equal(bystander, "SELECT 6", "6\n"); /* not disturbed */
    PQfinish(bystander);
}

static int group_setup(void **state) {
    (void)state;
    const char *extra[] = {"--max-sql-connections", "8", "--max-sql-connections-per-user", "5",
                           "--max-sql-memory", "512MiB", NULL};
    return mtest_node_start(&e2e_node, NULL, extra) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement_timeout),
        cmocka_unit_test(test_idle_in_transaction),
        cmocka_unit_test(test_startup_options),
        cmocka_unit_test(test_connection_limits),
        cmocka_unit_test(test_stalled_startup_and_garbage),
    };
    return cmocka_run_group_tests(tests, group_setup, e2e_group_teardown);
}
