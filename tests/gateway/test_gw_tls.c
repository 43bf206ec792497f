/*
** Gateway with TLS (issue 9), against the fake engine: libpq verify-full
** (with and without a client certificate, a large result through the TLS
** stream), the refusals (plaintext startup -> FATAL 28000, bytes after the
** SSLRequest -> 08P01, requests inside TLS -> 08P01), GSSENCRequest 'N',
** and a handshake fuzz: garbage after 'S', garbled and truncated
** ClientHellos, garbage records after a good handshake. After each round a
** long-lived and a fresh TLS session must still work.
**
** Certificates are made with security/ into a mkdtemp dir. Seeded fuzz:
** MERIDIAN_SEED reproduces; bounded by TLS_FUZZ_ROUNDS_MAX and
** TLS_FUZZ_TIME_BUDGET_MS. Every socket read has TU_IO_TIMEOUT_MS.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_sql.h"
#include "gateway/gateway.h"
#include "gw_test_util.h"
#include "security/security.h"

#define TLS_FUZZ_ROUNDS_MAX 400
#define TLS_FUZZ_TIME_BUDGET_MS 3000
#define TLS_HANDSHAKE_ROUNDS_MAX 64
#define TLS_RECV_ROUNDS_MAX 1000
#define BIG_ROWS 20000 /* ~2.4 MB of DataRows: beyond GW_OUTPUT_LIMIT_BYTES */

static char g_dir[256];
static char g_conninfo[1024]; /* verify-full against g_dir/ca.crt */
static sec_tls_ctx *g_server_tls;
static sec_tls_ctx *g_client_tls; /* our own raw TLS client */
static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static uint32_t rnd_below(uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(rnd() % n);
}

static void rm_certs(void)
{
    const char *names[] = {"ca.crt", "ca.key", "node.crt", "node.key", "client.root.crt",
                           "client.root.key"};
    char path[512];
    for (size_t i = 0; i < BASE_ARRAY_LEN(names); i++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, names[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

static int group_setup(void **state)
{
    (void)state;
    base_log_set_level(BASE_LOG_ERROR);
    snprintf(g_dir, sizeof g_dir, "/tmp/meridian-gwtls-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    char key[512], err[SEC_ERR_MSG_SIZE];
    snprintf(key, sizeof key, "%s/ca.key", g_dir);
    const char *hosts[] = {"127.0.0.1"};
    if (sec_cert_create_ca(g_dir, key, NULL, err, sizeof err) != 0 ||
        sec_cert_create_node(g_dir, key, hosts, 1, NULL, err, sizeof err) != 0 ||
        sec_cert_create_client(g_dir, key, "root", NULL, err, sizeof err) != 0 ||
        sec_tls_server_ctx_new(g_dir, NULL, &g_server_tls, err, sizeof err) != 0 ||
        sec_tls_client_ctx_new(g_dir, NULL, &g_client_tls, err, sizeof err) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    snprintf(g_conninfo, sizeof g_conninfo, "sslmode=verify-full sslrootcert=%s/ca.crt", g_dir);
    const char *env = getenv("MERIDIAN_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)base_realtime_ns();
    rng_state = seed ? seed : 1;
    printf("test_gw_tls: seed=%llu (MERIDIAN_SEED to reproduce)\n", (unsigned long long)seed);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sec_tls_ctx_free(g_client_tls);
    sec_tls_ctx_free(g_server_tls);
    rm_certs();
    return 0;
}

static gw_server *start_tls_server(void)
{
    /* TLS itself is tested here; authentication in test_gw_auth.c */
    gw_options o = {.host = "127.0.0.1", .max_connections = 64, .tls = g_server_tls,
                    .auth = GW_AUTH_TRUST};
    gw_server *s = NULL;
    assert_int_equal(gw_start(fake_engine(), &o, &s), GW_OK);
    return s;
}

static PGconn *pq_tls(int port, const char *more)
{
    char ci[2048];
    snprintf(ci, sizeof ci, "%s %s", g_conninfo, more ? more : "");
    return tu_pq(port, ci);
}

static bool query_ok(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT 1");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
              strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    return ok;
}

/* Send the SSLRequest and read the one-byte answer. */
static char ssl_request(int fd, uint32_t code)
{
    base_buf b = {0};
    tu_put_u32(&b, 8);
    tu_put_u32(&b, code);
    int rc = tu_send(fd, b.data, b.len);
    base_buf_free(&b);
    char answer = 0;
    if (rc != 0 || tu_read_exact(fd, &answer, 1) != 0)
        return 0;
    return answer;
}

/* Our own TLS client over a blocking socket. */
static void tls_push(int fd, sec_tls_conn *t)
{
    uint8_t buf[16384];
    for (int i = 0; i < TLS_RECV_ROUNDS_MAX && sec_tls_conn_pending_out(t) > 0; i++) {
        size_t n = sec_tls_conn_take_out(t, buf, sizeof buf);
        if (tu_send(fd, buf, n) != 0)
            return;
    }
}

/* One recv fed to t. 0, or -1 on EOF/error/timeout/TLS failure. */
static int tls_pull(int fd, sec_tls_conn *t)
{
    uint8_t buf[16384];
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0)
        return -1;
    int rc = sec_tls_conn_feed(t, buf, (size_t)r);
    tls_push(fd, t);
    return rc == 0 ? 0 : -1;
}

static sec_tls_conn *tls_handshake(int fd)
{
    sec_tls_conn *t = NULL;
    assert_int_equal(sec_tls_conn_new(g_client_tls, false, "127.0.0.1", &t), 0);
    tls_push(fd, t);
    for (int i = 0; i < TLS_HANDSHAKE_ROUNDS_MAX && !sec_tls_conn_handshake_done(t); i++) {
        if (tls_pull(fd, t) != 0)
            break;
    }
    if (!sec_tls_conn_handshake_done(t)) {
        print_error("handshake: %s\n", sec_tls_conn_error(t));
        sec_tls_conn_free(t);
        return NULL;
    }
    return t;
}

static int tls_send(int fd, sec_tls_conn *t, const base_buf *b)
{
    if (sec_tls_conn_write(t, b->data, b->len) != 0)
        return -1;
    tls_push(fd, t);
    return 0;
}

/* Read one protocol message from the TLS stream; acc keeps leftovers. */
static int tls_read_msg(int fd, sec_tls_conn *t, base_buf *acc, char *type, base_buf *body)
{
    for (int i = 0; i < TLS_RECV_ROUNDS_MAX; i++) {
        if (acc->len >= 5) {
            uint32_t len = ((uint32_t)acc->data[1] << 24) | ((uint32_t)acc->data[2] << 16) |
                           ((uint32_t)acc->data[3] << 8) | acc->data[4];
            if (len >= 4 && acc->len >= 1 + (size_t)len) {
                *type = (char)acc->data[0];
                base_buf_reset(body);
                base_buf_append(body, acc->data + 5, len - 4);
                memmove(acc->data, acc->data + 1 + len, acc->len - 1 - len);
                acc->len -= 1 + len;
                return 0;
            }
        }
        uint8_t plain[16384];
        size_t n = 0;
        int rc = sec_tls_conn_read(t, plain, sizeof plain, &n);
        if (rc != 0)
            return -1;
        if (n > 0) {
            base_buf_append(acc, plain, n);
            continue;
        }
        if (tls_pull(fd, t) != 0)
            return -1;
    }
    return -1;
}

/* ------------------------------------------------------------------------- */

static void test_libpq_verify_full(void **state)
{
    (void)state;
    gw_server *s = start_tls_server();
    int port = gw_port(s);
    PGconn *c = pq_tls(port, NULL);
    if (PQstatus(c) != CONNECTION_OK)
        print_error("%s\n", PQerrorMessage(c));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_true(PQsslInUse(c));
    assert_true(query_ok(c));
    /* A result larger than the output limit: backpressure through TLS. */
    char q[32];
    snprintf(q, sizeof q, "ROWS %d", BIG_ROWS);
    PGresult *r = PQexec(c, q);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), BIG_ROWS);
    PQclear(r);
    assert_true(query_ok(c));
    PQfinish(c);

    char more[1024];
    snprintf(more, sizeof more, "sslcert=%s/client.root.crt sslkey=%s/client.root.key", g_dir,
             g_dir);
    c = pq_tls(port, more);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_true(PQsslInUse(c));
    assert_true(query_ok(c));
    PQfinish(c);

    /* sslmode=prefer (libpq's default) takes TLS too. */
    c = tu_pq(port, "sslmode=prefer");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_true(PQsslInUse(c));
    PQfinish(c);
    gw_stop(s);
    assert_true(fake_wait_sessions_open(0, 5000));
}

static void test_plaintext_startup_refused(void **state)
{
    (void)state;
    gw_server *s = start_tls_server();
    int port = gw_port(s);
    int fd = tu_connect(port);
    assert_true(fd >= 0);
    base_buf b = {0};
    tu_startup(&b, "root", "defaultdb");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    char type = 0, code[8] = "", sev[16] = "";
    assert_int_equal(tu_read_msg(fd, &type, &b), 0);
    assert_int_equal(type, 'E');
    tu_error_field(&b, 'C', code, sizeof code);
    tu_error_field(&b, 'S', sev, sizeof sev);
    assert_string_equal(code, "28000");
    assert_string_equal(sev, "FATAL");
    assert_true(tu_wait_closed(fd));
    close(fd);

    /* libpq sslmode=disable: refused with the same message. */
    PGconn *c = tu_pq(port, "sslmode=disable");
    assert_int_not_equal(PQstatus(c), CONNECTION_OK);
    assert_non_null(strstr(PQerrorMessage(c), "connection requires SSL/TLS"));
    PQfinish(c);

    /* SSLRequest with the startup packet glued behind it: 08P01, no 'S'. */
    fd = tu_connect(port);
    assert_true(fd >= 0);
    base_buf_reset(&b);
    tu_put_u32(&b, 8);
    tu_put_u32(&b, 80877103u);
    tu_startup(&b, "root", "defaultdb");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    assert_int_equal(tu_read_msg(fd, &type, &b), 0);
    assert_int_equal(type, 'E');
    tu_error_field(&b, 'C', code, sizeof code);
    assert_string_equal(code, "08P01");
    assert_true(tu_wait_closed(fd));
    close(fd);

    /* GSSENCRequest: 'N'; then SSLRequest: 'S' (what libpq does). */
    fd = tu_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(ssl_request(fd, 80877104u), 'N');
    assert_int_equal(ssl_request(fd, 80877103u), 'S');
    close(fd);

    base_buf_free(&b);
    gw_stop(s);
    assert_true(fake_wait_sessions_open(0, 5000));
}

static void test_raw_tls_client(void **state)
{
    (void)state;
    gw_server *s = start_tls_server();
    int port = gw_port(s);

    /* A session by hand through our own TLS stream. */
    int fd = tu_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(ssl_request(fd, 80877103u), 'S');
    sec_tls_conn *t = tls_handshake(fd);
    assert_non_null(t);
    base_buf b = {0}, acc = {0}, body = {0};
    tu_startup(&b, "root", "defaultdb");
    tu_query(&b, "SELECT 1");
    assert_int_equal(tls_send(fd, t, &b), 0);
    char types[64] = "";
    size_t nt = 0;
    char type = 0;
    int queries_done = 0;
    while (queries_done < 2 && nt < sizeof types - 1 &&
           tls_read_msg(fd, t, &acc, &type, &body) == 0) {
        types[nt++] = type;
        if (type == 'Z')
            queries_done++;
    }
    types[nt] = '\0';
    assert_int_equal(queries_done, 2);
    assert_non_null(strstr(types, "TDCZ")); /* the query's answer */
    char code[8] = "";
    sec_tls_conn_free(t);
    close(fd);

    /* An SSLRequest as the first thing inside TLS (before the startup). */
    fd = tu_connect(port);
    assert_true(fd >= 0);
    assert_int_equal(ssl_request(fd, 80877103u), 'S');
    t = tls_handshake(fd);
    assert_non_null(t);
    base_buf_reset(&acc);
    base_buf_reset(&b);
    tu_put_u32(&b, 8);
    tu_put_u32(&b, 80877103u);
    assert_int_equal(tls_send(fd, t, &b), 0);
    assert_int_equal(tls_read_msg(fd, t, &acc, &type, &body), 0);
    assert_int_equal(type, 'E');
    tu_error_field(&body, 'C', code, sizeof code);
    assert_string_equal(code, "08P01");
    sec_tls_conn_free(t);
    close(fd);

    base_buf_free(&b);
    base_buf_free(&acc);
    base_buf_free(&body);
    gw_stop(s);
    assert_true(fake_wait_sessions_open(0, 5000));
}

/* One fuzz connection: SSLRequest, 'S', then something bad. */
static void fuzz_one(int port, base_buf *scratch)
{
    int fd = tu_connect(port);
    if (fd < 0)
        fail_msg("connect failed");
    if (ssl_request(fd, 80877103u) != 'S')
        fail_msg("no 'S'");
    base_buf_reset(scratch);
    int kind = (int)rnd_below(5);
    bool wait_close = true;
    if (kind == 0) { /* plain garbage */
        size_t n = 1 + rnd_below(4096);
        for (size_t i = 0; i < n; i++)
            base_buf_append_byte(scratch, (uint8_t)rnd());
        tu_send(fd, scratch->data, scratch->len);
    } else if (kind == 1 || kind == 2) { /* a real ClientHello, garbled or cut */
        sec_tls_conn *t = NULL;
        assert_int_equal(sec_tls_conn_new(g_client_tls, false, "127.0.0.1", &t), 0);
        size_t n = sec_tls_conn_pending_out(t);
        assert_int_equal(base_buf_reserve(scratch, n), 0);
        scratch->len = sec_tls_conn_take_out(t, scratch->data, n);
        sec_tls_conn_free(t);
        if (kind == 1) {
            for (int flips = 1 + (int)rnd_below(4); flips > 0; flips--)
                scratch->data[rnd_below((uint32_t)scratch->len)] ^= (uint8_t)(1 + rnd_below(255));
            tu_send(fd, scratch->data, scratch->len);
        } else {
            tu_send(fd, scratch->data, rnd_below((uint32_t)scratch->len));
            wait_close = false; /* the server waits for the rest: we leave */
        }
    } else if (kind == 3) { /* a good handshake, then garbage records */
        sec_tls_conn *t = tls_handshake(fd);
        if (t == NULL)
            fail_msg("handshake failed");
        size_t n = 5 + rnd_below(600);
        base_buf_append_byte(scratch, (uint8_t)(rnd_below(2) ? 23 : rnd()));
        base_buf_append_byte(scratch, 3);
        base_buf_append_byte(scratch, 3);
        for (size_t i = 3; i < n; i++)
            base_buf_append_byte(scratch, (uint8_t)rnd());
        tu_send(fd, scratch->data, scratch->len);
        sec_tls_conn_free(t);
    } else { /* a good handshake, then garbage protocol bytes inside TLS */
        sec_tls_conn *t = tls_handshake(fd);
        if (t == NULL)
            fail_msg("handshake failed");
        size_t n = 1 + rnd_below(64);
        for (size_t i = 0; i < n; i++)
            base_buf_append_byte(scratch, (uint8_t)rnd());
        /* A length that is surely invalid for a startup packet. */
        scratch->data[0] = 0xff;
        tls_send(fd, t, scratch);
        sec_tls_conn_free(t);
    }
    if (wait_close) {
        shutdown(fd, SHUT_WR);
        if (!tu_wait_closed(fd))
            fail_msg("kind %d: the server did not close the connection", kind);
    }
    close(fd);
}

static void test_handshake_fuzz(void **state)
{
    (void)state;
    gw_server *s = start_tls_server();
    int port = gw_port(s);
    PGconn *witness = pq_tls(port, NULL);
    assert_int_equal(PQstatus(witness), CONNECTION_OK);
    base_buf scratch = {0};
    int64_t start = base_monotonic_ns();
    int rounds = 0;
    for (; rounds < TLS_FUZZ_ROUNDS_MAX; rounds++) {
        if ((base_monotonic_ns() - start) / 1000000 > TLS_FUZZ_TIME_BUDGET_MS)
            break;
        fuzz_one(port, &scratch);
        if (rounds % 16 == 0) {
            if (!query_ok(witness))
                fail_msg("round %d: long-lived session broken", rounds);
            PGconn *fresh = pq_tls(port, NULL);
            if (PQstatus(fresh) != CONNECTION_OK || !query_ok(fresh))
                fail_msg("round %d: new session failed: %s", rounds, PQerrorMessage(fresh));
            PQfinish(fresh);
        }
    }
    printf("test_gw_tls: %d fuzz rounds\n", rounds);
    assert_true(query_ok(witness));
    base_buf_free(&scratch);
    PQfinish(witness);
    gw_stop(s);
    assert_true(fake_wait_sessions_open(0, 5000));
    assert_true(rounds > 0);
}

/* An insecure server keeps answering 'N' and serving plaintext. */
static void test_insecure_still_n(void **state)
{
    (void)state;
    gw_options o = {.host = "127.0.0.1"};
    gw_server *s = NULL;
    assert_int_equal(gw_start(fake_engine(), &o, &s), GW_OK);
    int fd = tu_connect(gw_port(s));
    assert_true(fd >= 0);
    assert_int_equal(ssl_request(fd, 80877103u), 'N');
    close(fd);
    PGconn *c = tu_pq(gw_port(s), "sslmode=prefer");
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_false(PQsslInUse(c));
    PQfinish(c);
    gw_stop(s);
    assert_true(fake_wait_sessions_open(0, 5000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libpq_verify_full),
        cmocka_unit_test(test_plaintext_startup_refused),
        cmocka_unit_test(test_raw_tls_client),
        cmocka_unit_test(test_handshake_fuzz),
        cmocka_unit_test(test_insecure_still_n),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
