/*
** Gateway authentication (issue 9), against the fake engine's users
** (fake_set_user): a hand-built SCRAM-SHA-256 client over the raw protocol
** (right password -> SASLFinal, AuthenticationOk, a working session;
** wrong password, unknown user and a user without a password -> the same
** messages and the same FATAL 28P01; NOLOGIN -> 28000 after the proof;
** what the server does after a failure and with a message out of turn,
** an oversized one, a wrong mechanism, a stalled login, a failed lookup),
** the rate limit of failed logins per address (the pure limiter with
** made-up times, then through the socket), trust mode, and libpq: SCRAM in
** the clear and over TLS ("y" gs2 header), client-certificate login (CN =
** user) and its fallback to SCRAM for another user. Host-based rules
** (security/sec_hba.c: the parser and matcher alone, then each method
** through libpq, root's certificate past a rule that rejects everyone) and
** a role's CONNECTION LIMIT.
**
** Every socket read is bounded by TU_IO_TIMEOUT_MS; no timing assertion.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_sql.h"
#include "gateway/gw_int.h"
#include "gw_test_util.h"
#include "security/security.h"

#define ATTEMPTS_MAX 40 /* failed logins tried before the limit must show */

static char g_dir[256];
static sec_tls_ctx *g_server_tls;
static char g_secret_verifier[SEC_SCRAM_VERIFIER_SIZE_MAX];

static gw_server *start_server(gw_auth_mode auth, sec_tls_ctx *tls, uint32_t startup_timeout_ms)
{
    gw_options o = {.host = "127.0.0.1",
                    .max_connections = 64,
                    .tls = tls,
                    .auth = auth,
                    .startup_timeout_ms = startup_timeout_ms};
    gw_server *s = NULL;
    assert_int_equal(gw_start(fake_engine(), &o, &s), GW_OK);
    return s;
}

static void rm_certs(void)
{
    const char *names[] = {"ca.crt", "ca.key", "node.crt", "node.key", "client.root.crt",
                           "client.root.key", "client.app.crt", "client.app.key"};
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
    snprintf(g_dir, sizeof g_dir, "/tmp/meridian-gwauth-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    char key[512], err[SEC_ERR_MSG_SIZE];
    snprintf(key, sizeof key, "%s/ca.key", g_dir);
    const char *hosts[] = {"127.0.0.1"};
    if (sec_cert_create_ca(g_dir, key, NULL, err, sizeof err) != 0 ||
        sec_cert_create_node(g_dir, key, hosts, 1, NULL, err, sizeof err) != 0 ||
        sec_cert_create_client(g_dir, key, "root", NULL, err, sizeof err) != 0 ||
        sec_cert_create_client(g_dir, key, "app", NULL, err, sizeof err) != 0 ||
        sec_tls_server_ctx_new(g_dir, NULL, &g_server_tls, err, sizeof err) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    if (sec_scram_verifier_new("secret", g_secret_verifier, sizeof g_secret_verifier) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sec_tls_ctx_free(g_server_tls);
    rm_certs();
    return 0;
}

static int reset_users(void **state)
{
    (void)state;
    fake_clear_users();
    fake_fail_lookups(false);
    fake_set_user("root", "", true, true);
    fake_set_user("app", g_secret_verifier, true, false);
    fake_set_user("nopw", "", true, false);
    fake_set_user("reader", g_secret_verifier, false, false); /* NOLOGIN */
    return 0;
}

/* ---- a hand-built SCRAM client ---------------------------------------------------- */

typedef struct login {
    char types[32];       /* message types received, in order */
    size_t lengths[32];   /* their body lengths */
    int n;
    char sqlstate[6];     /* of the ErrorResponse, "" if none */
    char message[256];
    bool ready;           /* ReadyForQuery reached */
    bool server_verified; /* the SASLFinal signature checked out */
    char superuser[8];    /* the is_superuser parameter */
} login;

static void record(login *l, char t, const base_buf *body)
{
    if (l->n + 1 < (int)sizeof l->types) {
        l->types[l->n] = t;
        l->lengths[l->n] = body->len;
        l->n++;
        l->types[l->n] = 0;
    }
    if (t == 'E' && l->sqlstate[0] == 0) {
        tu_error_field(body, 'C', l->sqlstate, sizeof l->sqlstate);
        tu_error_field(body, 'M', l->message, sizeof l->message);
    }
    if (t == 'S' && strcmp((const char *)body->data, "is_superuser") == 0)
        base_strlcpy(l->superuser, (const char *)body->data + strlen("is_superuser") + 1,
                     sizeof l->superuser);
}

static uint32_t auth_code(const base_buf *body)
{
    return body->len >= 4 ? gw_get_u32(body->data) : 0xffffffffu;
}

/* Log in as user with password on fd (connected, nothing sent yet); what
** came back goes to *l. The caller closes fd. */
static void scram_exchange(int fd, const char *user, const char *password, login *l)
{
    base_buf b = {0}, body = {0}, out = {0};
    sec_scram_client cli;
    char t = 0;
    memset(l, 0, sizeof *l);
    tu_startup(&b, user, "defaultdb");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    assert_int_equal(sec_scram_client_init(&cli, "", password, "bm9uY2Vub25jZW5vbmNl"), 0);
    int step = 0;
    for (int i = 0; i < 64; i++) {
        if (tu_read_msg(fd, &t, &body) != 0)
            break;
        record(l, t, &body);
        if (t == 'Z') {
            l->ready = true;
            break;
        }
        if (t == 'E')
            break;
        if (t != 'R')
            continue;
        uint32_t code = auth_code(&body);
        base_buf_reset(&out);
        base_buf_reset(&b);
        if (code == 10) { /* AuthenticationSASL: the mechanisms */
            assert_string_equal((const char *)body.data + 4, SEC_SCRAM_MECHANISM);
            assert_int_equal(body.len, 4 + strlen(SEC_SCRAM_MECHANISM) + 2);
            assert_int_equal(sec_scram_client_step(&cli, NULL, 0, &out), SEC_SCRAM_CONTINUE);
            base_buf msg = {0};
            base_buf_append(&msg, SEC_SCRAM_MECHANISM, strlen(SEC_SCRAM_MECHANISM) + 1);
            tu_put_u32(&msg, (uint32_t)out.len);
            base_buf_append(&msg, out.data, out.len);
            tu_msg(&b, 'p', msg.data, msg.len);
            base_buf_free(&msg);
            assert_int_equal(tu_send(fd, b.data, b.len), 0);
            step = 1;
        } else if (code == 11 && step == 1) { /* SASLContinue: server-first */
            assert_int_equal(sec_scram_client_step(&cli, body.data + 4, body.len - 4, &out),
                             SEC_SCRAM_CONTINUE);
            tu_msg(&b, 'p', out.data, out.len);
            assert_int_equal(tu_send(fd, b.data, b.len), 0);
            step = 2;
        } else if (code == 12 && step == 2) { /* SASLFinal: the server's proof */
            l->server_verified =
                sec_scram_client_step(&cli, body.data + 4, body.len - 4, NULL) == 0;
        }
    }
    sec_scram_client_clear(&cli);
    base_buf_free(&b);
    base_buf_free(&body);
    base_buf_free(&out);
}

static login login_as(int port, const char *user, const char *password)
{
    login l;
    int fd = tu_connect(port);
    assert_true(fd >= 0);
    scram_exchange(fd, user, password, &l);
    close(fd);
    return l;
}

/* ---- the limiter, with made-up times ------------------------------------------------ */

static void test_limiter(void **state)
{
    (void)state;
    gw_auth_limiter l;
    assert_int_equal(gw_auth_limiter_init(&l), GW_OK);
    int64_t now = 1000000;
    for (int i = 0; i < GW_AUTH_FAILURES_BURST; i++) {
        assert_false(gw_auth_limited(&l, "10.0.0.1", now));
        gw_auth_failed(&l, "10.0.0.1", now);
    }
    assert_true(gw_auth_limited(&l, "10.0.0.1", now));
    assert_false(gw_auth_limited(&l, "10.0.0.2", now)); /* per address */
    assert_true(gw_auth_limited(&l, "10.0.0.1", now + GW_AUTH_REFILL_MS - 1));
    now += GW_AUTH_REFILL_MS; /* one attempt back */
    assert_false(gw_auth_limited(&l, "10.0.0.1", now));
    gw_auth_failed(&l, "10.0.0.1", now);
    assert_true(gw_auth_limited(&l, "10.0.0.1", now));
    now += (int64_t)GW_AUTH_FAILURES_BURST * GW_AUTH_REFILL_MS; /* all forgiven */
    assert_false(gw_auth_limited(&l, "10.0.0.1", now));
    /* "" (unknown) is one address too */
    for (int i = 0; i < GW_AUTH_FAILURES_BURST; i++)
        gw_auth_failed(&l, "", now);
    assert_true(gw_auth_limited(&l, "", now));
    /* more addresses than the table: bounded, the newest still limited */
    char addr[GW_AUTH_ADDR_SIZE];
    for (int a = 0; a < GW_AUTH_SOURCES_MAX + 100; a++) {
        snprintf(addr, sizeof addr, "fd00::%x", a);
        for (int i = 0; i < GW_AUTH_FAILURES_BURST; i++)
            gw_auth_failed(&l, addr, now + a);
    }
    assert_true(gw_auth_limited(&l, addr, now + GW_AUTH_SOURCES_MAX + 100));
    gw_auth_limiter_free(&l);
}

/* ---- the exchange ------------------------------------------------------------------- */

static void test_right_password(void **state)
{
    (void)state;
    gw_server *s = start_server(GW_AUTH_REQUIRED, NULL, 0);
    int fd = tu_connect(gw_port(s));
    assert_true(fd >= 0);
    login l;
    scram_exchange(fd, "app", "secret", &l);
    assert_true(l.ready);
    assert_true(l.server_verified);
    assert_string_equal(l.sqlstate, "");
    assert_string_equal(l.superuser, "off");
    assert_int_equal(strncmp(l.types, "RRRR", 4), 0); /* SASL, Continue, Final, Ok */
    /* the session works */
    base_buf b = {0};
    tu_query(&b, "SELECT 1");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    char types[16], st = 0, code[6];
    assert_int_equal(tu_read_until_ready(fd, types, sizeof types, &st, code), 0);
    assert_string_equal(types, "TDCZ");
    base_buf_free(&b);
    close(fd);
    l = login_as(gw_port(s), "root", "anything"); /* root without a password: no */
    assert_string_equal(l.sqlstate, "28P01");
    gw_stop(s);
}

static void test_same_failure(void **state)
{
    (void)state;
    gw_server *s = start_server(GW_AUTH_REQUIRED, NULL, 0);
    int port = gw_port(s);
    /* The user names have one length, so every message has one length. */
    login wrong = login_as(port, "app", "Secret");
    login ghost = login_as(port, "gho", "secret");
    login nopw = login_as(port, "nop", "secret");
    fake_set_user("nop", "", true, false);
    login nopw2 = login_as(port, "nop", "");
    const login *all[] = {&wrong, &ghost, &nopw, &nopw2};
    for (size_t i = 0; i < BASE_ARRAY_LEN(all); i++) {
        const login *l = all[i];
        assert_false(l->ready);
        assert_string_equal(l->sqlstate, "28P01");
        assert_string_equal(l->types, "RRE");
        assert_int_equal(l->lengths[0], wrong.lengths[0]);
        assert_int_equal(l->lengths[1], wrong.lengths[1]); /* server-first: salt, nonce */
        assert_int_equal(l->lengths[2], wrong.lengths[2]);
    }
    assert_string_equal(wrong.message, "password authentication failed for user \"app\"");
    assert_string_equal(ghost.message, "password authentication failed for user \"gho\"");
    gw_stop(s); /* 4 failures: below the limit; a new gateway, a new count */
    s = start_server(GW_AUTH_REQUIRED, NULL, 0);
    port = gw_port(s);
    login ghost2 = login_as(port, "gho", "other");
    assert_string_equal(ghost2.types, "RRE");
    /* NOLOGIN: refused after a right proof, with 28000 */
    login reader = login_as(port, "reader", "secret");
    assert_string_equal(reader.sqlstate, "28000");
    assert_string_equal(reader.message, "role \"reader\" is not permitted to log in");
    login reader_wrong = login_as(port, "reader", "nope");
    assert_string_equal(reader_wrong.sqlstate, "28P01");
    gw_stop(s);
}

/* Read the first message after the startup: the FATAL's SQLSTATE. */
static void expect_fatal_then_closed(int fd, const char *sqlstate)
{
    base_buf body = {0};
    char t = 0, code[6] = "";
    for (int i = 0; i < 8; i++) {
        assert_int_equal(tu_read_msg(fd, &t, &body), 0);
        if (t == 'E')
            break;
    }
    assert_int_equal(t, 'E');
    tu_error_field(&body, 'C', code, sizeof code);
    assert_string_equal(code, sqlstate);
    base_buf_free(&body);
    assert_true(tu_wait_closed(fd));
}

static void test_out_of_turn(void **state)
{
    (void)state;
    gw_server *s = start_server(GW_AUTH_REQUIRED, NULL, 0);
    int port = gw_port(s);
    base_buf b = {0}, body = {0};
    char t = 0;
    /* after a failure: nothing more is read, the connection closes */
    int fd = tu_connect(port);
    login l;
    scram_exchange(fd, "app", "wrong", &l);
    assert_string_equal(l.sqlstate, "28P01");
    tu_query(&b, "SELECT 1");
    (void)tu_send(fd, b.data, b.len);
    assert_true(tu_wait_closed(fd));
    close(fd);
    /* a Query instead of the SASL response */
    fd = tu_connect(port);
    base_buf_reset(&b);
    tu_startup(&b, "app", "defaultdb");
    tu_query(&b, "SELECT 1");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    assert_int_equal(tu_read_msg(fd, &t, &body), 0);
    assert_int_equal(t, 'R');
    expect_fatal_then_closed(fd, "08P01");
    close(fd);
    /* an oversized SASL message: refused before it is buffered */
    fd = tu_connect(port);
    base_buf_reset(&b);
    tu_startup(&b, "app", "defaultdb");
    uint8_t hdr[5] = {'p', 0, 0x10, 0, 0}; /* 1 MiB */
    base_buf_append(&b, hdr, sizeof hdr);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    assert_int_equal(tu_read_msg(fd, &t, &body), 0);
    assert_int_equal(t, 'R');
    expect_fatal_then_closed(fd, "08P01");
    close(fd);
    /* another mechanism, and a malformed SASLInitialResponse */
    const char *bodies[] = {"SCRAM-SHA-256-PLUS\0\0\0\0\0", "SCRAM-SHA-256\0\0\0\0\x09n,,"};
    const size_t lens[] = {24, 21};
    for (int k = 0; k < 2; k++) {
        fd = tu_connect(port);
        base_buf_reset(&b);
        tu_startup(&b, "app", "defaultdb");
        tu_msg(&b, 'p', bodies[k], lens[k]);
        assert_int_equal(tu_send(fd, b.data, b.len), 0);
        expect_fatal_then_closed(fd, "08P01");
        close(fd);
    }
    /* garbage as client-first */
    fd = tu_connect(port);
    base_buf_reset(&b);
    tu_startup(&b, "app", "defaultdb");
    base_buf msg = {0};
    base_buf_append(&msg, SEC_SCRAM_MECHANISM, strlen(SEC_SCRAM_MECHANISM) + 1);
    tu_put_u32(&msg, 5);
    base_buf_append(&msg, "p=x,,", 5); /* channel binding: refused */
    tu_msg(&b, 'p', msg.data, msg.len);
    base_buf_free(&msg);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    expect_fatal_then_closed(fd, "08P01");
    close(fd);
    /* Terminate during the login: closed quietly */
    fd = tu_connect(port);
    base_buf_reset(&b);
    tu_startup(&b, "app", "defaultdb");
    tu_msg(&b, 'X', NULL, 0);
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    assert_true(tu_wait_closed(fd));
    close(fd);
    base_buf_free(&b);
    base_buf_free(&body);
    gw_stop(s);
}

static void test_stalled_and_failed_lookup(void **state)
{
    (void)state;
    gw_server *s = start_server(GW_AUTH_REQUIRED, NULL, 300);
    int port = gw_port(s);
    base_buf b = {0}, body = {0};
    char t = 0;
    /* a client that never answers the SASL request */
    int fd = tu_connect(port);
    tu_startup(&b, "app", "defaultdb");
    assert_int_equal(tu_send(fd, b.data, b.len), 0);
    assert_int_equal(tu_read_msg(fd, &t, &body), 0);
    assert_int_equal(t, 'R');
    expect_fatal_then_closed(fd, "57014");
    close(fd);
    /* the users cannot be read: 57P03, and no failure is counted */
    fake_fail_lookups(true);
    for (int i = 0; i < GW_AUTH_FAILURES_BURST + 1; i++) {
        fd = tu_connect(port);
        assert_int_equal(tu_send(fd, b.data, b.len), 0);
        expect_fatal_then_closed(fd, "57P03");
        close(fd);
    }
    fake_fail_lookups(false);
    login l = login_as(port, "app", "secret");
    assert_true(l.ready);
    base_buf_free(&b);
    base_buf_free(&body);
    gw_stop(s);
}

static void test_rate_limit(void **state)
{
    (void)state;
    gw_server *s = start_server(GW_AUTH_REQUIRED, NULL, 0);
    int port = gw_port(s);
    int failures = 0;
    login l;
    for (int i = 0; i < ATTEMPTS_MAX; i++) {
        l = login_as(port, "app", "guess");
        if (l.types[0] == 'E') /* refused at the startup packet */
            break;
        assert_string_equal(l.sqlstate, "28P01");
        failures++;
    }
    assert_true(failures >= GW_AUTH_FAILURES_BURST);
    assert_true(failures < ATTEMPTS_MAX);
    assert_string_equal(l.types, "E");
    assert_string_equal(l.sqlstate, "28000");
    assert_non_null(strstr(l.message, "too many failed authentication attempts"));
    /* the right password too, while the address is limited; no lookup */
    int before = fake_lookups();
    l = login_as(port, "app", "secret");
    assert_string_equal(l.sqlstate, "28000");
    assert_int_equal(fake_lookups(), before);
    gw_stop(s);
    /* another gateway: its own table */
    s = start_server(GW_AUTH_REQUIRED, NULL, 0);
    l = login_as(gw_port(s), "app", "secret");
    assert_true(l.ready);
    gw_stop(s);
}

static void test_trust(void **state)
{
    (void)state;
    int before = fake_lookups();
    gw_server *s = start_server(GW_AUTH_DEFAULT, NULL, 0); /* no TLS: trust */
    login l = login_as(gw_port(s), "nobody", "");
    assert_true(l.ready);
    assert_int_equal(l.types[0], 'R');
    assert_string_equal(l.superuser, "on");
    assert_int_equal(fake_lookups(), before);
    gw_stop(s);
}

/* ---- libpq -------------------------------------------------------------------------- */

/* snprintf into an array, failing the test on truncation. */
#define FMT(buf, ...) assert_in_range(snprintf((buf), sizeof(buf), __VA_ARGS__), 1, sizeof(buf) - 1)

static PGconn *pq(int port, const char *extra)
{
    char ci[4096];
    FMT(ci, "host=127.0.0.1 port=%d dbname=defaultdb connect_timeout=10 %s", port, extra);
    return PQconnectdb(ci);
}

static bool pq_ok(PGconn *c)
{
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, "SELECT 1");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    } else {
        print_message("libpq: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok;
}

static bool pq_fails_with(PGconn *c, const char *text)
{
    bool ok = PQstatus(c) != CONNECTION_OK && strstr(PQerrorMessage(c), text) != NULL;
    if (!ok)
        print_message("libpq: %s", PQerrorMessage(c));
    PQfinish(c);
    return ok;
}

static void test_libpq(void **state)
{
    (void)state;
    gw_server *s = start_server(GW_AUTH_REQUIRED, NULL, 0);
    assert_true(pq_ok(pq(gw_port(s), "user=app password=secret sslmode=disable")));
    assert_true(pq_fails_with(pq(gw_port(s), "user=app password=nope sslmode=disable"),
                              "password authentication failed for user \"app\""));
    assert_true(pq_fails_with(pq(gw_port(s), "user=ghost password=nope sslmode=disable"),
                              "password authentication failed for user \"ghost\""));
    /* libpq refuses to send a password to a server that asks none: here it
    ** must be asked (require_auth is libpq 16+, so: no password given) */
    assert_true(pq_fails_with(pq(gw_port(s), "user=app sslmode=disable"), "password"));
    gw_stop(s);

    /* over TLS: the default mode requires authentication */
    s = start_server(GW_AUTH_DEFAULT, g_server_tls, 0);
    char base[1024], ci[2048];
    FMT(base, "sslmode=verify-full sslrootcert=%s/ca.crt", g_dir);
    FMT(ci, "%s user=app password=secret", base); /* gs2 "y" */
    assert_true(pq_ok(pq(gw_port(s), ci)));
    FMT(ci, "%s user=root sslcert=%s/client.root.crt sslkey=%s/client.root.key",
             base, g_dir, g_dir);
    assert_true(pq_ok(pq(gw_port(s), ci)));
    FMT(ci, "%s user=root", base); /* no certificate, no password */
    assert_true(pq_fails_with(pq(gw_port(s), ci), "password"));
    FMT(ci, "%s user=app sslcert=%s/client.app.crt sslkey=%s/client.app.key",
             base, g_dir, g_dir);
    assert_true(pq_ok(pq(gw_port(s), ci)));
    /* root's certificate for another user: SCRAM then */
    snprintf(ci, sizeof ci,
             "%s user=app password=secret sslcert=%s/client.root.crt sslkey=%s/client.root.key",
             base, g_dir, g_dir);
    assert_true(pq_ok(pq(gw_port(s), ci)));
    snprintf(ci, sizeof ci,
             "%s user=app password=nope sslcert=%s/client.root.crt sslkey=%s/client.root.key",
             base, g_dir, g_dir);
    assert_true(pq_fails_with(pq(gw_port(s), ci), "password authentication failed"));
    /* a certificate for a role that is not permitted to log in */
    fake_set_user("app", g_secret_verifier, false, false);
    FMT(ci, "%s user=app sslcert=%s/client.app.crt sslkey=%s/client.app.key",
             base, g_dir, g_dir);
    assert_true(pq_fails_with(pq(gw_port(s), ci), "not permitted to log in"));
    /* an address over its limit: a certificate login still gets in */
    fake_set_user("app", g_secret_verifier, true, false);
    FMT(ci, "%s user=app password=guess", base);
    bool limited = false;
    for (int i = 0; i < ATTEMPTS_MAX && !limited; i++) {
        PGconn *c = pq(gw_port(s), ci);
        limited = strstr(PQerrorMessage(c), "too many failed authentication attempts") != NULL;
        PQfinish(c);
    }
    assert_true(limited);
    FMT(ci, "%s user=app sslcert=%s/client.app.crt sslkey=%s/client.app.key",
             base, g_dir, g_dir);
    assert_true(pq_ok(pq(gw_port(s), ci)));
    snprintf(ci, sizeof ci,
             "%s user=app password=secret sslcert=%s/client.root.crt sslkey=%s/client.root.key",
             base, g_dir, g_dir); /* a certificate of another user does not */
    assert_true(pq_fails_with(pq(gw_port(s), ci), "too many failed authentication attempts"));
    gw_stop(s);
    s = start_server(GW_AUTH_DEFAULT, g_server_tls, 0);
    /* a certificate of a user that does not exist: SCRAM, then 28P01 */
    fake_clear_users();
    snprintf(ci, sizeof ci,
             "%s user=app password=secret sslcert=%s/client.app.crt sslkey=%s/client.app.key",
             base, g_dir, g_dir);
    assert_true(pq_fails_with(pq(gw_port(s), ci), "password authentication failed"));
    gw_stop(s);
}

/* ---- host-based rules ------------------------------------------------------------ */

static int hba_check(const char *text, char *err, size_t size)
{
    sec_hba *h = NULL;
    int rc = sec_hba_parse(text, &h, err, size);
    sec_hba_free(h);
    return rc;
}

static void test_hba_parse(void **state)
{
    (void)state;
    char err[256];
    sec_hba *h = NULL;
    assert_int_equal(sec_hba_parse("# only a comment\n\n   \n", &h, err, sizeof err), SEC_OK);
    assert_int_equal(h->n, 0);
    sec_hba_free(h);
    const char *conf = "host all root all cert  # root by certificate\n"
                       "hostssl defaultdb app,web 10.1.0.0/16 password\n"
                       "hostnossl all all 127.0.0.1 trust\n"
                       "host all all ::1/128 cert-password\n"
                       "local all all reject\n"
                       "host all all all reject\n";
    assert_int_equal(sec_hba_parse(conf, &h, err, sizeof err), SEC_OK);
    assert_int_equal(h->n, 6);
    assert_int_equal(h->rules[1].method, SEC_HBA_PASSWORD);
    assert_int_equal(h->rules[1].line, 2);
    assert_string_equal(sec_hba_method_name(h->rules[3].method), "cert-password");
    sec_hba_conn c = {.tls = true, .database = "defaultdb", .user = "root", .addr = "1.2.3.4"};
    assert_int_equal(sec_hba_match(h, &c), 0);
    c.user = "web";
    c.addr = "10.1.200.3";
    assert_int_equal(sec_hba_match(h, &c), 1);
    c.addr = "::ffff:10.1.0.1"; /* IPv4 through an IPv6 socket */
    assert_int_equal(sec_hba_match(h, &c), 1);
    c.addr = "10.2.0.1";
    assert_int_equal(sec_hba_match(h, &c), 5);
    c.tls = false;
    c.addr = "127.0.0.1";
    assert_int_equal(sec_hba_match(h, &c), 2);
    c.addr = "::1";
    assert_int_equal(sec_hba_match(h, &c), 3);
    c.database = "other";
    c.addr = "10.1.0.1";
    c.tls = true;
    assert_int_equal(sec_hba_match(h, &c), 5);
    c.local = true;
    assert_int_equal(sec_hba_match(h, &c), 4);
    sec_hba_free(h);
    assert_int_equal(sec_hba_parse("host all all 10.0.0.0/8 cert\n", &h, err, sizeof err), 0);
    c = (sec_hba_conn){.tls = true, .database = "d", .user = "u", .addr = "11.0.0.1"};
    assert_int_equal(sec_hba_match(h, &c), -1);
    c.addr = "";
    assert_int_equal(sec_hba_match(h, &c), -1); /* unknown: only "all" matches it */
    sec_hba_free(h);

    /* every error names its line */
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"host all all all foo", "line 1 (host all all all foo): unknown authentication method"},
        {"\nhst all all all cert", "line 2 (hst all all all cert): unknown connection type"},
        {"host all all cert", "needs 5 fields"},
        {"local all all all cert", "too many fields"},
        {"host all all all cert map=x", "too many fields"},
        {"host all all 10.0.0.0/33 cert", "invalid address"},
        {"host all all 300.1.1.1 cert", "invalid address"},
        {"host all all 10.0.0.0/ cert", "invalid address"},
        {"host all +admins all cert", "group (+role)"},
        {"host a,,b all all cert", "an empty name"},
        {"host \"x\" all all cert", "quoted names"},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(bad); i++) {
        assert_int_equal(hba_check(bad[i].text, err, sizeof err), SEC_ERR_INVALID);
        if (strstr(err, bad[i].want) == NULL)
            fail_msg("%s: got \"%s\"", bad[i].text, err);
    }
    /* the bounds: rules and bytes */
    base_buf big = {0};
    for (int i = 0; i <= SEC_HBA_RULES_MAX; i++)
        assert_int_equal(base_buf_printf(&big, "host all all all cert\n"), 0);
    assert_int_equal(base_buf_append(&big, "", 1), 0);
    assert_int_equal(hba_check((const char *)big.data, err, sizeof err), SEC_ERR_INVALID);
    assert_non_null(strstr(err, "too many rules"));
    base_buf_reset(&big);
    for (int i = 0; i <= SEC_HBA_TEXT_BYTES_MAX / 10; i++)
        assert_int_equal(base_buf_printf(&big, "#........\n"), 0);
    assert_int_equal(base_buf_append(&big, "", 1), 0);
    assert_int_equal(hba_check((const char *)big.data, err, sizeof err), SEC_ERR_INVALID);
    assert_non_null(strstr(err, "too long"));
    base_buf_free(&big);
}

static void test_hba_logins(void **state)
{
    (void)state;
    gw_server *s = start_server(GW_AUTH_DEFAULT, g_server_tls, 0);
    char base[1024], ci[2048], root_cert[1024], app_cert[1024];
    FMT(base, "sslmode=verify-full sslrootcert=%s/ca.crt", g_dir);
    FMT(root_cert, "user=root sslcert=%s/client.root.crt sslkey=%s/client.root.key", g_dir, g_dir);
    FMT(app_cert, "user=app sslcert=%s/client.app.crt sslkey=%s/client.app.key", g_dir, g_dir);

    /* reject everyone: root's certificate still logs in (the lockout guard) */
    fake_set_hba("host all all all reject\n");
    FMT(ci, "%s user=app password=secret", base);
    assert_true(pq_fails_with(pq(gw_port(s), ci), "rejected by rule 1"));
    FMT(ci, "%s %s", base, app_cert);
    assert_true(pq_fails_with(pq(gw_port(s), ci), "rejected by rule 1"));
    FMT(ci, "%s %s", base, root_cert);
    assert_true(pq_ok(pq(gw_port(s), ci)));

    /* password for app (its certificate is not enough), certificates for the rest */
    fake_set_hba("host all app 127.0.0.1/32 password\nhost all all all cert\n");
    FMT(ci, "%s user=app password=secret", base);
    assert_true(pq_ok(pq(gw_port(s), ci)));
    FMT(ci, "%s %s", base, app_cert);
    assert_true(pq_fails_with(pq(gw_port(s), ci), "password"));
    FMT(ci, "%s user=nopw", base);
    assert_true(pq_fails_with(pq(gw_port(s), ci), "certificate authentication failed"));
    FMT(ci, "%s %s", base, root_cert);
    assert_true(pq_ok(pq(gw_port(s), ci)));

    /* no rule for this address */
    fake_set_hba("host all all 10.0.0.0/8 cert-password\n");
    FMT(ci, "%s user=app password=secret", base);
    assert_true(pq_fails_with(pq(gw_port(s), ci), "no pg_hba entry for host \"127.0.0.1\""));
    /* hostnossl does not match a TLS client */
    fake_set_hba("hostnossl all all all trust\n");
    assert_true(pq_fails_with(pq(gw_port(s), ci), "no pg_hba entry"));
    /* cert-password is today's rule */
    fake_set_hba("hostssl all all all cert-password\n");
    assert_true(pq_ok(pq(gw_port(s), ci)));
    FMT(ci, "%s %s", base, app_cert);
    assert_true(pq_ok(pq(gw_port(s), ci)));
    gw_stop(s);

    /* trust (a node without TLS that still authenticates: tests only) */
    s = start_server(GW_AUTH_REQUIRED, NULL, 0);
    fake_set_hba("hostnossl all app,nopw all trust\nhost all all all password\n");
    assert_true(pq_ok(pq(gw_port(s), "user=nopw sslmode=disable")));
    assert_true(pq_ok(pq(gw_port(s), "user=app sslmode=disable")));
    assert_true(pq_fails_with(pq(gw_port(s), "user=reader sslmode=disable"), "password"));
    fake_set_hba("hostnossl all all all trust\n");
    assert_true(pq_fails_with(pq(gw_port(s), "user=ghost sslmode=disable"),
                              "role \"ghost\" does not exist"));
    assert_true(pq_fails_with(pq(gw_port(s), "user=reader sslmode=disable"),
                              "not permitted to log in"));
    fake_set_hba("");
    assert_true(pq_fails_with(pq(gw_port(s), "user=nopw password=x sslmode=disable"),
                              "password authentication failed"));
    gw_stop(s);
}

static void test_connection_limit(void **state)
{
    (void)state;
    gw_server *s = start_server(GW_AUTH_REQUIRED, NULL, 0);
    fake_set_conn_limit("app", 1);
    PGconn *first = pq(gw_port(s), "user=app password=secret sslmode=disable");
    assert_int_equal(PQstatus(first), CONNECTION_OK);
    assert_true(pq_fails_with(pq(gw_port(s), "user=app password=secret sslmode=disable"),
                              "too many connections for role \"app\""));
    PQfinish(first);
    fake_set_conn_limit("app", 0); /* nobody, whatever the count */
    assert_true(pq_fails_with(pq(gw_port(s), "user=app password=secret sslmode=disable"),
                              "too many connections for role \"app\""));
    fake_set_user("root", g_secret_verifier, true, true);
    fake_set_conn_limit("root", 0); /* superusers have no role limit */
    assert_true(pq_ok(pq(gw_port(s), "user=root password=secret sslmode=disable")));
    gw_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limiter),
        cmocka_unit_test_setup(test_right_password, reset_users),
        cmocka_unit_test_setup(test_same_failure, reset_users),
        cmocka_unit_test_setup(test_out_of_turn, reset_users),
        cmocka_unit_test_setup(test_stalled_and_failed_lookup, reset_users),
        cmocka_unit_test_setup(test_rate_limit, reset_users),
        cmocka_unit_test_setup(test_trust, reset_users),
        cmocka_unit_test_setup(test_libpq, reset_users),
        cmocka_unit_test(test_hba_parse),
        cmocka_unit_test_setup(test_hba_logins, reset_users),
        cmocka_unit_test_setup(test_connection_limit, reset_users),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
