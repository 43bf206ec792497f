/*
** SQL and RPC on one port (issue 4: `--listen-addr` without `--sql-addr`),
** against the fake engine: an rpc_uv listener whose foreign_connection
** hands PostgreSQL clients to a gateway started without a listener
** (GW_PORT_NONE) through gw_adopt_connection, as server/ wires them.
**   - libpq sslmode=disable and sslmode=prefer (SSLRequest -> 'N'), a raw
**     startup, PQcancel (a CancelRequest is a connection of its own), all
**     on the RPC port while RPC requests are in flight on it;
**   - garbage on the port is closed, and RPC and SQL keep working;
**   - TLS: verify-full through the RPC port, and plaintext refused (28000);
**   - gw_adopt_connection alone: bad arguments (fd closed), and a prefix
**     that is half a startup packet.
** Every wait is bounded (WAIT_MS, TU_IO_TIMEOUT_MS); no sleeps.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "fake_sql.h"
#include "gateway/gateway.h"
#include "gw_test_util.h"
#include "rpc/rpc.h"
#include "security/security.h"

#define WAIT_MS 20000 /* bound on every wait */
#define M_ECHO 1
#define RPC_IN_FLIGHT 500

typedef struct shared {
    gw_server *gw;
    rpc_uv *node1; /* listens: RPC and SQL */
    rpc_uv *node2; /* dials node 1 */
    int port;
} shared;

static uv_mutex_t mu;
static uv_cond_t cv;
static int replies_ok, replies_bad; /* guarded by mu */

/* server/'s wiring: the RPC loop hands PostgreSQL clients to the gateway. */
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

static void on_reply(void *ctx, int rc, const rpc_message *m)
{
    uint64_t want = (uint64_t)(uintptr_t)ctx, got = 0;
    bool ok = rc == RPC_OK && m->from == 1 && m->payload_len == 8;
    if (ok)
        memcpy(&got, m->payload, 8);
    uv_mutex_lock(&mu);
    if (ok && got == want)
        replies_ok++;
    else
        replies_bad++;
    uv_cond_broadcast(&cv);
    uv_mutex_unlock(&mu);
}

/* Send n echo requests from node 2 to node 1 (not waited for). */
static void rpc_burst(shared *sh, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t v = (uint64_t)i + 1;
        assert_int_equal(rpc_request(rpc_uv_transport(sh->node2), 1, M_ECHO, &v, 8, WAIT_MS,
                                     on_reply, (void *)(uintptr_t)v), 0);
    }
}

/* Wait (bounded) until `want` replies came back, all good. */
static void rpc_wait(int want)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000;
    uv_mutex_lock(&mu);
    while (replies_ok + replies_bad < want && uv_hrtime() < deadline)
        uv_cond_timedwait(&cv, &mu, 5000000);
    int ok = replies_ok, bad = replies_bad;
    uv_mutex_unlock(&mu);
    assert_int_equal(bad, 0);
    assert_int_equal(ok, want);
}

static void shared_start(shared *sh, sec_tls_ctx *tls)
{
    memset(sh, 0, sizeof(*sh));
    uv_mutex_lock(&mu);
    replies_ok = replies_bad = 0;
    uv_mutex_unlock(&mu);
    gw_options o = {.host = "127.0.0.1", .port = GW_PORT_NONE, .max_connections = 64,
                    .tls = tls, .auth = GW_AUTH_TRUST}; /* authentication: test_gw_auth.c */
    assert_int_equal(gw_start(fake_engine(), &o, &sh->gw), GW_OK);
    assert_int_equal(gw_port(sh->gw), GW_PORT_NONE);
    rpc_uv_config c;
    rpc_uv_config_init(&c);
    c.node_id = 1;
    c.handler = echo_handler;
    c.foreign_connection = on_foreign;
    c.foreign_ctx = sh->gw;
    assert_int_equal(rpc_uv_start(&c, &sh->node1), RPC_OK);
    sh->port = rpc_uv_listen_port(sh->node1);
    rpc_uv_config_init(&c);
    c.node_id = 2;
    c.listen_host = NULL;
    c.handler = echo_handler;
    assert_int_equal(rpc_uv_start(&c, &sh->node2), RPC_OK);
    assert_int_equal(rpc_uv_add_peer(sh->node2, 1, "127.0.0.1", sh->port), RPC_OK);
}

/* The transport that hands connections over stops before the gateway. */
static void shared_stop(shared *sh)
{
    rpc_uv_free(sh->node2);
    rpc_uv_free(sh->node1);
    gw_stop(sh->gw);
}

static void select_one(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT 1");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
}

static void test_sql_and_rpc_on_one_port(void **state)
{
    (void)state;
    shared sh;
    shared_start(&sh, NULL);
    rpc_burst(&sh, RPC_IN_FLIGHT); /* in flight while SQL clients connect */

    PGconn *plain = tu_pq(sh.port, "sslmode=disable");
    assert_int_equal(PQstatus(plain), CONNECTION_OK);
    select_one(plain);
    /* libpq's default: SSLRequest first, 'N' from an insecure node */
    PGconn *prefer = tu_pq(sh.port, "sslmode=prefer");
    assert_int_equal(PQstatus(prefer), CONNECTION_OK);
    assert_int_equal(PQsslInUse(prefer), 0);
    select_one(prefer);
    rpc_wait(RPC_IN_FLIGHT);

    /* a hand-built startup packet */
    uint32_t pid = 0, secret = 0;
    int raw = tu_session(sh.port, "raw", &pid, &secret);
    assert_true(raw >= 0);
    assert_true(pid != 0);
    base_buf b = {0};
    tu_query(&b, "SELECT 1");
    assert_int_equal(tu_send(raw, b.data, b.len), 0);
    base_buf_free(&b);
    char types[16], status = 0, sqlstate[6];
    assert_int_equal(tu_read_until_ready(raw, types, sizeof types, &status, sqlstate), 0);
    assert_string_equal(types, "TDCZ");
    assert_string_equal(sqlstate, "");

    /* PQcancel opens a connection of its own to the same port */
    assert_int_equal(PQsendQuery(plain, "WAIT"), 1);
    assert_true(fake_wait_waiters(1, WAIT_MS));
    PGcancel *cancel = PQgetCancel(plain);
    char err[256];
    assert_int_equal(PQcancel(cancel, err, sizeof err), 1);
    PQfreeCancel(cancel);
    PGresult *r = PQgetResult(plain);
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "57014");
    PQclear(r);
    while ((r = PQgetResult(plain)) != NULL)
        PQclear(r);
    select_one(plain);

    /* garbage on the shared port is closed; nothing else is disturbed */
    uint8_t junk[64];
    memset(junk, 0xEE, sizeof junk);
    int g = tu_connect(sh.port);
    assert_true(g >= 0);
    assert_int_equal(tu_send(g, junk, sizeof junk), 0);
    assert_true(tu_wait_closed(g));
    close(g);
    rpc_uv_stats st;
    rpc_uv_get_stats(sh.node1, &st);
    assert_true(st.bad_frames >= 1);
    assert_int_equal(st.foreign_connections, 4); /* plain, prefer, raw, cancel */

    rpc_burst(&sh, 100);
    select_one(prefer);
    select_one(plain);
    rpc_wait(RPC_IN_FLIGHT + 100);
    rpc_uv_get_stats(sh.node2, &st);
    assert_int_equal(st.handshakes_ok, 1); /* one RPC connection throughout */

    close(raw);
    PQfinish(plain);
    PQfinish(prefer);
    assert_true(fake_wait_sessions_open(0, WAIT_MS));
    shared_stop(&sh);
}

/* ---- TLS through the RPC port ----------------------------------------------- */

static char g_dir[256];

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

static void test_tls_on_shared_port(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/meridian-gwshared-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    char key[512], err[SEC_ERR_MSG_SIZE];
    snprintf(key, sizeof key, "%s/ca.key", g_dir);
    const char *hosts[] = {"127.0.0.1"};
    sec_tls_ctx *tls = NULL;
    if (sec_cert_create_ca(g_dir, key, NULL, err, sizeof err) != 0 ||
        sec_cert_create_node(g_dir, key, hosts, 1, NULL, err, sizeof err) != 0 ||
        sec_tls_server_ctx_new(g_dir, NULL, &tls, err, sizeof err) != 0) {
        rm_certs();
        fail_msg("certificates: %s", err);
    }
    shared sh;
    shared_start(&sh, tls);
    rpc_burst(&sh, 100);
    char ci[1024];
    snprintf(ci, sizeof ci, "sslmode=verify-full sslrootcert=%s/ca.crt", g_dir);
    PGconn *c = tu_pq(sh.port, ci);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("TLS connect: %s", PQerrorMessage(c));
    assert_int_equal(PQsslInUse(c), 1);
    select_one(c);
    /* plaintext on a secure node: refused, as on a port of its own */
    PGconn *p = tu_pq(sh.port, "sslmode=disable");
    assert_int_equal(PQstatus(p), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(p), "SSL"));
    PQfinish(p);
    rpc_wait(100);
    select_one(c);
    PQfinish(c);
    assert_true(fake_wait_sessions_open(0, WAIT_MS));
    shared_stop(&sh);
    sec_tls_ctx_free(tls);
    rm_certs();
}

/* ---- gw_adopt_connection alone ---------------------------------------------- */

static void test_adopt_connection(void **state)
{
    (void)state;
    gw_options o = {.host = "127.0.0.1", .port = GW_PORT_NONE};
    gw_server *gw = NULL;
    assert_int_equal(gw_start(fake_engine(), &o, &gw), GW_OK);
    assert_int_equal(gw_adopt_connection(gw, -1, NULL, 0), GW_ERR_INVALID);
    /* a prefix over the limit: refused, and the fd is closed all the same */
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    static uint8_t big[GW_ADOPT_PREFIX_MAX_BYTES + 1];
    assert_int_equal(gw_adopt_connection(gw, pair[0], big, sizeof big), GW_ERR_INVALID);
    errno = 0;
    assert_int_equal(fcntl(pair[0], F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    close(pair[1]);

    /* A TCP socket accepted here, handed over with the first half of a
    ** startup packet already read; the client sends the rest. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    int client = tu_connect(ntohs(a.sin_port));
    assert_true(client >= 0);
    int server_fd = accept(lfd, NULL, NULL);
    assert_true(server_fd >= 0);
    close(lfd);
    base_buf b = {0};
    tu_startup(&b, "adopted", "defaultdb");
    size_t half = b.len / 2;
    assert_int_equal(tu_send(client, b.data, half), 0);
    uint8_t prefix[512];
    assert_true(half <= sizeof prefix);
    assert_int_equal(tu_read_exact(server_fd, prefix, half), 0);
    assert_int_equal(gw_adopt_connection(gw, server_fd, prefix, half), GW_OK);
    assert_int_equal(tu_send(client, b.data + half, b.len - half), 0);
    char types[16], status = 0, sqlstate[6];
    assert_int_equal(tu_read_until_ready(client, types, sizeof types, &status, sqlstate), 0);
    assert_int_equal(status, 'I');
    assert_string_equal(sqlstate, "");
    base_buf_reset(&b);
    tu_query(&b, "SELECT 1");
    assert_int_equal(tu_send(client, b.data, b.len), 0);
    assert_int_equal(tu_read_until_ready(client, types, sizeof types, &status, sqlstate), 0);
    assert_string_equal(types, "TDCZ");
    base_buf_free(&b);
    close(client);
    assert_true(fake_wait_sessions_open(0, WAIT_MS));
    gw_stop(gw);
}

int main(void)
{
    uv_mutex_init(&mu);
    uv_cond_init(&cv);
    base_log_set_level(getenv("GW_TEST_DEBUG") ? BASE_LOG_DEBUG : BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sql_and_rpc_on_one_port),
        cmocka_unit_test(test_tls_on_shared_port),
        cmocka_unit_test(test_adopt_connection),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    uv_cond_destroy(&cv);
    uv_mutex_destroy(&mu);
    return rc;
}
