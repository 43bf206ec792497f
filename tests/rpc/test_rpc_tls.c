/*
** tests/rpc/test_rpc_tls.c: rpc_uv over TLS on loopback (port 0), with
** certificates made by the sec_cert_* API in a temporary directory.
**   - requests and one-way messages (in order) between two TLS nodes, both
**     directions, and a request by address from a dial-only provisional id;
**   - large frames (8 MiB and the 16 MiB maximum, checksummed) and 5000
**     pipelined requests (batched: fewer writes than frames);
**   - refusals before any frame is read, each logged and counted
**     (tls_refused), the caller failing fast (UNREACHABLE, or HANDSHAKE by
**     address): a peer presenting a client (non-node) certificate, a node
**     of a foreign CA (both directions), a node whose certificate lacks the
**     IP it is dialed at, a plaintext node dialing a TLS node (it is told
**     why) and a TLS node dialing a plaintext one; a node certificate
**     without the address a known node id is registered at, claiming that
**     id (refused at the RPC handshake);
**   - admin tools (rpc_uv_config.client_methods, allow_peer_client): a
**     client certificate by address calls an allowed method and the
**     handler sees its user; a method not allowed, a one-way message and a
**     client certificate posing as a node id are refused (connection
**     closed, counted in client_refused) before any handler runs; node
**     peers are unaffected; without client_methods the handshake refuses;
**   - a PostgreSQL client on a TLS node's port is still handed over before
**     TLS; certificates reloaded (sec_tls_reload) while running: new
**     connections use the new ones; out of memory injected at a spread of
**     allocations with requests in flight (exactly-once, then recovery).
** No sleeps: every wait is on a condition with a bound (WAIT_MS).
*/
#define _GNU_SOURCE /* mkdtemp, nftw */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "base/base.h"
#include "rpc/rpc.h"
#include "security/security.h"

#define WAIT_MS 20000         /* bound on every wait */
#define LONG_DEADLINE_MS 30000 /* beyond every wait: a seen callback was not a timeout */
#define MAXN 8

#define M_SEQ 1  /* one-way: payload u64 sequence */
#define M_ECHO 2 /* request: echo the payload */
#define M_SUM 3  /* request: answer with the crc32c of the payload */

static uv_mutex_t mu;
static uv_cond_t cv;

static char root_dir[256];
static char certs[512];     /* the cluster CA, a node certificate (127.0.0.1), client.root */
static char ca_key[512];
static char foreign[512];   /* another CA and its node certificate */
static char foreign_key[512];
static char named[512];     /* the cluster CA, a node certificate for "localhost" only */
static char err[SEC_ERR_MSG_SIZE];

typedef struct tnode {
    rpc_uv *uv;
    rpc_transport *t;
    rpc_node_id id;
    int port;
    sec_tls_ctx *srv, *cli; /* owner: this node */
    hlc_manual_clock mc;
    hlc_clock *clock;
    /* guarded by mu */
    uint64_t seq_seen, seq_received, seq_out_of_order;
    int foreign;
    int echo_requests, sum_requests;
    int user_requests;                        /* requests with a peer_user */
    char last_user[SEC_USER_SIZE_MAX + 1];    /* of the latest one */
} tnode;

static tnode nodes[MAXN];

typedef struct tally {
    int calls, ok, unreachable, handshake, other;
    int bad;
    int last_other; /* the latest rc or status counted in other */
} tally;

static void lock(void) { uv_mutex_lock(&mu); }
static void unlock(void) { uv_mutex_unlock(&mu); }

static bool wait_for(bool (*pred)(void *), void *arg)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000;
    lock();
    bool ok;
    while (!(ok = pred(arg))) {
        uint64_t now = uv_hrtime();
        if (now >= deadline)
            break;
        uint64_t slice = deadline - now < 2000000 ? deadline - now : 2000000;
        uv_cond_timedwait(&cv, &mu, slice);
    }
    unlock();
    return ok;
}

static void on_reply(void *ctx, int rc, const rpc_message *m)
{
    (void)m;
    tally *t = ctx;
    lock();
    t->calls++;
    if (rc == RPC_OK && m->status == 0)
        t->ok++;
    else if (rc == RPC_ERR_UNREACHABLE)
        t->unreachable++;
    else if (rc == RPC_ERR_HANDSHAKE)
        t->handshake++;
    else {
        t->other++;
        t->last_other = rc != RPC_OK ? rc : m->status;
    }
    uv_cond_broadcast(&cv);
    unlock();
}

/* Echo requests carry their index; the answer must be the same. */
typedef struct echo_ctx {
    tally *tally;
    uint64_t index;
} echo_ctx;

static void on_echo(void *ctx, int rc, const rpc_message *m)
{
    echo_ctx *e = ctx;
    uint64_t v = 0;
    if (rc == RPC_OK && (m->payload_len != 8 || (memcpy(&v, m->payload, 8), v != e->index))) {
        lock();
        e->tally->bad++;
        unlock();
    }
    on_reply(e->tally, rc, m);
}

/* Sum requests: the answer must be the crc32c of what was sent. */
typedef struct sum_ctx {
    tally *tally;
    uint32_t want;
} sum_ctx;

static void on_sum(void *ctx, int rc, const rpc_message *m)
{
    sum_ctx *s = ctx;
    uint32_t got = 0;
    if (rc == RPC_OK && (m->payload_len != 4 || (memcpy(&got, m->payload, 4), got != s->want))) {
        lock();
        s->tally->bad++;
        unlock();
    }
    on_reply(s->tally, rc, m);
}

static void handler(void *ctx, rpc_transport *t, const rpc_message *m)
{
    tnode *n = ctx;
    switch (m->method) {
    case M_SEQ: {
        uint64_t seq = 0;
        if (m->payload_len == 8)
            memcpy(&seq, m->payload, 8);
        lock();
        n->seq_received++;
        if (seq != n->seq_seen + 1)
            n->seq_out_of_order++;
        n->seq_seen = seq;
        uv_cond_broadcast(&cv);
        unlock();
        break;
    }
    case M_ECHO:
        lock();
        n->echo_requests++;
        if (m->peer_user != NULL) {
            n->user_requests++;
            snprintf(n->last_user, sizeof(n->last_user), "%s", m->peer_user);
        }
        unlock();
        rpc_respond(t, m->from, m->request_id, 0, m->payload, m->payload_len);
        break;
    case M_SUM: {
        lock();
        n->sum_requests++;
        unlock();
        uint32_t sum = base_crc32c(0, m->payload, m->payload_len);
        rpc_respond(t, m->from, m->request_id, 0, &sum, 4);
        break;
    }
    default:
        break;
    }
}

static void on_foreign(void *ctx, int fd, const uint8_t *prefix, size_t len)
{
    tnode *n = ctx;
    (void)prefix;
    (void)len;
    close(fd);
    lock();
    n->foreign++;
    uv_cond_broadcast(&cv);
    unlock();
}

/* ---- certificates ----------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char from[1024], to[1024];
    snprintf(from, sizeof(from), "%s/%s", from_dir, name);
    snprintf(to, sizeof(to), "%s/%s", to_dir, name);
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, k, out), k);
    fclose(in);
    fclose(out);
}

static void check(int rc)
{
    if (rc != 0)
        fail_msg("rc %d (%s): %s", rc, sec_error_str(rc), err);
}

static int setup_all(void **state)
{
    (void)state;
    snprintf(root_dir, sizeof(root_dir), "/tmp/meridian-rpctls-XXXXXX");
    if (mkdtemp(root_dir) == NULL)
        return -1;
    snprintf(certs, sizeof(certs), "%s/certs", root_dir);
    snprintf(ca_key, sizeof(ca_key), "%s/ca.key", root_dir);
    snprintf(foreign, sizeof(foreign), "%s/foreign", root_dir);
    snprintf(foreign_key, sizeof(foreign_key), "%s/foreign-ca.key", root_dir);
    snprintf(named, sizeof(named), "%s/named", root_dir);
    static const char *const hosts[] = {"127.0.0.1", "localhost"};
    static const char *const name_only[] = {"localhost"};
    check(sec_cert_create_ca(certs, ca_key, NULL, err, sizeof(err)));
    check(sec_cert_create_node(certs, ca_key, hosts, 2, NULL, err, sizeof(err)));
    check(sec_cert_create_client(certs, ca_key, "root", NULL, err, sizeof(err)));
    check(sec_cert_create_ca(foreign, foreign_key, NULL, err, sizeof(err)));
    check(sec_cert_create_node(foreign, foreign_key, hosts, 2, NULL, err, sizeof(err)));
    if (mkdir(named, 0700) != 0)
        return -1;
    copy_file(certs, named, SEC_CA_CERT_FILE);
    check(sec_cert_create_node(named, ca_key, name_only, 1, NULL, err, sizeof(err)));
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    nftw(root_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- transports ----------------------------------------------------------------- */

typedef struct start_opts {
    const char *certs_dir;   /* NULL: plaintext */
    const char *client_cert; /* NULL: "node" */
    bool no_listener;
    bool foreign;            /* foreign_connection set */
    bool admin_clients;      /* server context allow_peer_client */
    bool echo_for_clients;   /* client_methods = {M_ECHO} */
} start_opts;

/* Start a transport in nodes[slot] with node id `id`. */
static void start(int slot, rpc_node_id id, const start_opts *o)
{
    tnode *n = &nodes[slot];
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->mc.now_ns = 1700000000000000000LL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&n->mc),
                                   HLC_DEFAULT_MAX_OFFSET_NS, &n->clock), 0);
    if (o->certs_dir != NULL) {
        sec_tls_options so = {.require_peer_node = true, .allow_peer_client = o->admin_clients};
        sec_tls_options co = {.cert_name = o->client_cert ? o->client_cert : "node"};
        if (!o->no_listener)
            check(sec_tls_server_ctx_new(o->certs_dir, &so, &n->srv, err, sizeof(err)));
        check(sec_tls_client_ctx_new(o->certs_dir, &co, &n->cli, err, sizeof(err)));
    }
    rpc_uv_config cfg;
    rpc_uv_config_init(&cfg);
    cfg.node_id = id;
    cfg.listen_host = o->no_listener ? NULL : "127.0.0.1";
    cfg.clock = n->clock;
    cfg.handler = handler;
    cfg.handler_ctx = n;
    cfg.random_seed = id;
    cfg.reconnect_base_ms = 10;
    cfg.reconnect_max_ms = 100;
    cfg.tls_server = n->srv;
    cfg.tls_client = n->cli;
    if (o->foreign) {
        cfg.foreign_connection = on_foreign;
        cfg.foreign_ctx = n;
    }
    if (o->echo_for_clients) {
        cfg.client_methods[0] = M_ECHO;
        cfg.client_methods_count = 1;
    }
    assert_int_equal(rpc_uv_start(&cfg, &n->uv), 0);
    n->t = rpc_uv_transport(n->uv);
    n->port = rpc_uv_listen_port(n->uv);
}

static void stop(int slot)
{
    tnode *n = &nodes[slot];
    rpc_uv_free(n->uv);
    sec_tls_ctx_free(n->srv);
    sec_tls_ctx_free(n->cli);
    hlc_clock_free(n->clock);
    memset(n, 0, sizeof(*n));
}

static void add_peer(int from, int to)
{
    assert_int_equal(rpc_uv_add_peer(nodes[from].uv, nodes[to].id, "127.0.0.1", nodes[to].port),
                     0);
}

static rpc_uv_stats stats(int slot)
{
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[slot].uv, &st);
    return st;
}

typedef struct calls_arg {
    tally *t;
    int want;
} calls_arg;
static bool calls_reached(void *a)
{
    calls_arg *c = a;
    return c->t->calls >= c->want;
}
static void wait_calls(tally *t, int want)
{
    calls_arg c = {t, want};
    assert_true(wait_for(calls_reached, &c));
}

typedef struct seq_arg {
    tnode *n;
    uint64_t want;
} seq_arg;
static bool seq_reached(void *a)
{
    seq_arg *s = a;
    return s->n->seq_received >= s->want;
}

typedef struct refused_arg {
    int slot;
    uint64_t want;
} refused_arg;
static bool refused_reached(void *a)
{
    refused_arg *r = a;
    unlock(); /* stats need no lock; keep mu free for callbacks */
    bool ok = stats(r->slot).tls_refused >= r->want;
    lock();
    return ok;
}
static void wait_refused(int slot, uint64_t want)
{
    refused_arg r = {slot, want};
    assert_true(wait_for(refused_reached, &r));
}

/* One echo request from `from` to node id `to`; the tally's outcome. */
static tally one_request(int from, rpc_node_id to)
{
    tally t = {0};
    echo_ctx e = {&t, 7};
    uint64_t v = 7;
    assert_int_equal(rpc_request(nodes[from].t, to, M_ECHO, &v, 8, LONG_DEADLINE_MS, on_echo, &e),
                     0);
    wait_calls(&t, 1);
    assert_int_equal(t.bad, 0);
    return t;
}

/* ---- tests ---------------------------------------------------------------------- */

/* Requests both ways, one-way messages in order, a request by address
** from a dial-only provisional transport: all over TLS. */
static void test_tls_requests_and_messages(void **state)
{
    (void)state;
    start_opts o = {.certs_dir = certs};
    start(1, 1, &o);
    start(2, 2, &o);
    add_peer(1, 2);
    add_peer(2, 1);
    enum { N = 300, M = 2000 };
    tally t = {0};
    static echo_ctx ctx[2 * N];
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < 2; d++) {
            echo_ctx *e = &ctx[2 * i + d];
            e->tally = &t;
            e->index = (uint64_t)(2 * i + d);
            int from = d == 0 ? 1 : 2;
            rpc_node_id to = d == 0 ? 2 : 1;
            assert_int_equal(rpc_request(nodes[from].t, to, M_ECHO, &e->index, 8,
                                         LONG_DEADLINE_MS, on_echo, e), 0);
        }
    }
    for (uint64_t s = 1; s <= M; s++)
        assert_int_equal(rpc_send(nodes[1].t, 2, M_SEQ, &s, 8), 0);
    wait_calls(&t, 2 * N);
    assert_int_equal(t.ok, 2 * N);
    assert_int_equal(t.bad, 0);
    seq_arg sa = {&nodes[2], M};
    assert_true(wait_for(seq_reached, &sa));
    lock();
    assert_int_equal(nodes[2].seq_out_of_order, 0);
    unlock();
    rpc_uv_stats s1 = stats(1), s2 = stats(2);
    assert_true(s1.tls_handshakes >= 1 && s2.tls_handshakes >= 1);
    assert_int_equal(s1.tls_refused + s2.tls_refused, 0);
    assert_int_equal(s1.bad_frames + s2.bad_frames, 0);

    /* By address, from a provisional id without a listener (meridian init). */
    start_opts d = {.certs_dir = certs, .no_listener = true};
    start(3, RPC_NODE_ID_PROVISIONAL_MIN | 99, &d);
    tally a = {0};
    uint64_t v = 5;
    echo_ctx e = {&a, 5};
    assert_int_equal(rpc_uv_request_addr(nodes[3].uv, "127.0.0.1", nodes[2].port, M_ECHO, &v, 8,
                                         LONG_DEADLINE_MS, on_echo, &e), 0);
    wait_calls(&a, 1);
    assert_int_equal(a.ok, 1);
    assert_true(stats(3).tls_handshakes >= 1);
    stop(3);
    stop(2);
    stop(1);
}

/* Frames of 8 MiB and of the 16 MiB maximum (several TLS records and
** encryption chunks each), then 5000 pipelined small requests. */
static void test_tls_large_and_pipelined(void **state)
{
    (void)state;
    start_opts o = {.certs_dir = certs};
    start(1, 1, &o);
    start(2, 2, &o);
    add_peer(1, 2);
    size_t sizes[] = {8u << 20, RPC_FRAME_PAYLOAD_MAX, 100000, 3};
    enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
    uint8_t *big = base_malloc(RPC_FRAME_PAYLOAD_MAX);
    assert_non_null(big);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < RPC_FRAME_PAYLOAD_MAX; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        big[i] = (uint8_t)x;
    }
    tally t = {0};
    sum_ctx sc[NS];
    for (int i = 0; i < NS; i++) {
        sc[i].tally = &t;
        sc[i].want = base_crc32c(0, big, sizes[i]);
        assert_int_equal(rpc_request(nodes[1].t, 2, M_SUM, big, sizes[i], LONG_DEADLINE_MS,
                                     on_sum, &sc[i]), 0);
    }
    wait_calls(&t, NS);
    assert_int_equal(t.ok, NS);
    assert_int_equal(t.bad, 0);
    base_free(big);

    enum { P = 5000 };
    static echo_ctx ctx[P];
    tally p = {0};
    rpc_uv_stats before = stats(1);
    for (int i = 0; i < P; i++) {
        ctx[i].tally = &p;
        ctx[i].index = (uint64_t)i;
        assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &ctx[i].index, 8, LONG_DEADLINE_MS,
                                     on_echo, &ctx[i]), 0);
    }
    wait_calls(&p, P);
    assert_int_equal(p.ok, P);
    assert_int_equal(p.bad, 0);
    rpc_uv_stats after = stats(1);
    uint64_t frames = after.frames_sent - before.frames_sent;
    uint64_t writes = after.writes - before.writes;
    printf("5000 pipelined requests over TLS: %llu frames in %llu writes\n",
           (unsigned long long)frames, (unsigned long long)writes);
    assert_true(frames >= P);
    assert_true(writes < frames); /* batched */
    stop(2);
    stop(1);
}

/* A transport presenting a client certificate (CN=root, clientAuth only)
** is refused by the node before any frame; its request fails fast. */
static void test_tls_client_cert_refused(void **state)
{
    (void)state;
    start_opts o = {.certs_dir = certs};
    start_opts c = {.certs_dir = certs, .client_cert = "client.root", .no_listener = true};
    start(1, 1, &o);
    start(2, 2, &c);
    add_peer(2, 1);
    tally t = one_request(2, 1);
    assert_int_equal(t.unreachable, 1);
    wait_refused(1, 1);
    assert_int_equal(stats(1).frames_received, 0); /* nothing read from it */
    assert_int_equal(stats(1).handshakes_ok, 0);
    /* The same by address: the caller sees the handshake refused. */
    tally a = {0};
    uint64_t v = 1;
    echo_ctx e = {&a, 1};
    assert_int_equal(rpc_uv_request_addr(nodes[2].uv, "127.0.0.1", nodes[1].port, M_ECHO, &v, 8,
                                         LONG_DEADLINE_MS, on_echo, &e), 0);
    wait_calls(&a, 1);
    assert_int_equal(a.ok, 0);
    assert_true(a.handshake == 1 || a.other == 1);
    assert_int_equal(stats(1).frames_received, 0);
    stop(2);
    stop(1);
}

typedef struct client_refused_arg {
    int slot;
    uint64_t want;
} client_refused_arg;
static bool client_refused_reached(void *a)
{
    client_refused_arg *r = a;
    unlock(); /* stats need no lock */
    bool ok = stats(r->slot).client_refused >= r->want;
    lock();
    return ok;
}

/* One request by address from slot `from` to slot `to`: its outcome. */
static tally addr_request(int from, int to, uint32_t method)
{
    tally t = {0};
    uint64_t v = 5;
    echo_ctx e = {&t, 5};
    sum_ctx sc = {&t, base_crc32c(0, &v, 8)};
    assert_int_equal(rpc_uv_request_addr(nodes[from].uv, "127.0.0.1", nodes[to].port, method, &v,
                                         8, LONG_DEADLINE_MS,
                                         method == M_ECHO ? on_echo : on_sum,
                                         method == M_ECHO ? (void *)&e : (void *)&sc), 0);
    wait_calls(&t, 1);
    assert_int_equal(t.bad, 0);
    return t;
}

/* Admin tools: a node that takes client certificates for M_ECHO only. A
** tool with client.root calls M_ECHO by address (the handler sees "root");
** M_SUM (not allowed) and a one-way message close its connection before
** any handler runs; a client certificate claiming a real node id is
** refused at the RPC handshake; node peers work as before, with no user. */
static void test_tls_client_cert_admin_methods_only(void **state)
{
    (void)state;
    start_opts adm = {.certs_dir = certs, .admin_clients = true, .echo_for_clients = true};
    start_opts tool = {.certs_dir = certs, .client_cert = "client.root", .no_listener = true};
    start_opts node = {.certs_dir = certs};
    start(1, 1, &adm);
    start(2, RPC_NODE_ID_PROVISIONAL_MIN | 77, &tool);
    start(3, 3, &node);

    tally t = addr_request(2, 1, M_ECHO);
    assert_int_equal(t.ok, 1);
    lock();
    assert_int_equal(nodes[1].user_requests, 1);
    assert_string_equal(nodes[1].last_user, "root");
    unlock();
    assert_int_equal(stats(1).client_connections, 1);

    /* A method not allowed: the connection closes, the handler never runs. */
    t = addr_request(2, 1, M_SUM);
    assert_int_equal(t.ok, 0);
    client_refused_arg r = {1, 1};
    assert_true(wait_for(client_refused_reached, &r));
    lock();
    assert_int_equal(nodes[1].sum_requests, 0);
    unlock();

    /* A one-way message (as Raft traffic is), by node id from the tool's
    ** provisional id: a side connection, then closed at the message. */
    add_peer(2, 1);
    uint64_t seq = 1;
    assert_int_equal(rpc_send(nodes[2].t, 1, M_SEQ, &seq, 8), 0);
    r.want = 2;
    assert_true(wait_for(client_refused_reached, &r));
    lock();
    assert_int_equal(nodes[1].seq_received, 0);
    unlock();

    /* Allowed again on a fresh connection: the refusals closed only theirs. */
    t = addr_request(2, 1, M_ECHO);
    assert_int_equal(t.ok, 1);

    /* A node peer: everything as before, and no user. */
    add_peer(3, 1);
    t = one_request(3, 1);
    assert_int_equal(t.ok, 1);
    lock();
    assert_int_equal(nodes[1].echo_requests, 3);
    assert_int_equal(nodes[1].user_requests, 2);
    unlock();
    stop(2);

    /* A client certificate posing as node 2 (a real id: it would be that
    ** node's own connection, carrying Raft and KV): refused at the RPC
    ** handshake; its request never reaches the handler. */
    start(2, 2, &tool);
    add_peer(2, 1);
    t = one_request(2, 1);
    assert_int_equal(t.ok, 0);
    r.want = 3;
    assert_true(wait_for(client_refused_reached, &r));
    lock();
    assert_int_equal(nodes[1].echo_requests, 3);
    unlock();
    stop(2);
    stop(3);
    stop(1);

    /* A server context that takes client certificates on a transport with
    ** no client_methods: refused at the TLS layer, as a node-only port. */
    start_opts no_methods = {.certs_dir = certs, .admin_clients = true};
    start(1, 1, &no_methods);
    start(2, RPC_NODE_ID_PROVISIONAL_MIN | 78, &tool);
    t = addr_request(2, 1, M_ECHO);
    assert_int_equal(t.ok, 0);
    wait_refused(1, 1);
    assert_int_equal(stats(1).frames_received, 0);
    lock();
    assert_int_equal(nodes[1].echo_requests, 0);
    unlock();
    stop(2);
    stop(1);
}

/* A node of a foreign CA cannot talk to ours, dialing or dialed. */
static void test_tls_foreign_ca_refused(void **state)
{
    (void)state;
    start_opts o = {.certs_dir = certs};
    start_opts f = {.certs_dir = foreign};
    start(1, 1, &o);
    start(2, 2, &f);
    add_peer(2, 1);
    add_peer(1, 2);
    tally t = one_request(2, 1); /* it dials us: our server refuses its certificate */
    assert_int_equal(t.unreachable, 1);
    wait_refused(1, 1);
    t = one_request(1, 2); /* we dial it: our client refuses its certificate */
    assert_int_equal(t.unreachable, 1);
    assert_int_equal(stats(1).frames_received, 0);
    assert_int_equal(stats(2).frames_received, 0);
    assert_int_equal(stats(1).handshakes_ok + stats(2).handshakes_ok, 0);
    stop(2);
    stop(1);
}

/* A node whose certificate names "localhost" only is refused when dialed
** at 127.0.0.1: the dialer checks the IP it dialed against the SAN. */
static void test_tls_wrong_address_refused(void **state)
{
    (void)state;
    start_opts o = {.certs_dir = certs};
    start_opts n = {.certs_dir = named};
    start(1, 1, &o);
    start(2, 2, &n);
    add_peer(1, 2);
    tally t = one_request(1, 2);
    assert_int_equal(t.unreachable, 1);
    wait_refused(1, 1);
    assert_int_equal(stats(2).frames_received, 0);
    stop(2);
    stop(1);
}

/* Node identity bound by address: node 1 knows node 2 at 127.0.0.1, so a
** node certificate naming "localhost" only cannot act as node 2 towards
** it (refused at the RPC handshake, no handler runs, logged and counted),
** while the same certificate claiming an id node 1 has no address for (a
** node that just joined) passes: the binding covers known nodes only. */
static void test_tls_node_id_bound_to_address(void **state)
{
    (void)state;
    start_opts o = {.certs_dir = certs};
    start_opts n = {.certs_dir = named};
    start(1, 1, &o);
    start(2, 2, &n);
    start(3, 3, &n);
    add_peer(1, 2);
    add_peer(2, 1);
    add_peer(3, 1);
    uint64_t failures = stats(1).handshake_failures;
    tally t = one_request(2, 1);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.unreachable, 1);
    assert_true(stats(1).handshake_failures > failures);
    lock();
    assert_int_equal(nodes[1].echo_requests, 0);
    unlock();
    t = one_request(3, 1);
    assert_int_equal(t.ok, 1);
    lock();
    assert_int_equal(nodes[1].echo_requests, 1);
    unlock();
    stop(3);
    stop(2);
    stop(1);
}

/* The binding holds on side connections too (a request on one reaches the
** handler with from = the claimed id): node 2's certificate ("localhost"
** only) asking node 1 by address (target 0) as node 2 is refused at the RPC
** handshake, no handler runs; as node 3 (no address at node 1) or as a
** provisional id it passes. And the answerer of a dial by address cannot
** claim a node known elsewhere: node 1 knows node 4 at 127.0.0.2, so a
** transport claiming id 4 at 127.0.0.1 is refused (RPC_ERR_HANDSHAKE). */
static void test_tls_side_connection_node_id_bound(void **state)
{
    (void)state;
    start_opts o = {.certs_dir = certs};
    start_opts n = {.certs_dir = named};
    start(1, 1, &o);
    start(2, 2, &n);
    start(3, 3, &n);
    start(4, RPC_NODE_ID_PROVISIONAL_MIN | 79, &n);
    add_peer(1, 2);
    uint64_t failures = stats(1).handshake_failures;
    tally t = addr_request(2, 1, M_ECHO);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.handshake, 1);
    assert_true(stats(1).handshake_failures > failures);
    lock();
    assert_int_equal(nodes[1].echo_requests, 0);
    unlock();
    t = addr_request(3, 1, M_ECHO);
    assert_int_equal(t.ok, 1);
    t = addr_request(4, 1, M_ECHO);
    assert_int_equal(t.ok, 1);
    lock();
    assert_int_equal(nodes[1].echo_requests, 2);
    unlock();
    stop(4);
    stop(3);
    stop(2);

    start(2, 4, &o);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 4, "127.0.0.2", nodes[2].port), 0);
    failures = stats(1).handshake_failures;
    t = addr_request(1, 2, M_ECHO);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.handshake, 1);
    assert_true(stats(1).handshake_failures > failures);
    lock();
    assert_int_equal(nodes[2].echo_requests, 0);
    unlock();
    stop(2);
    stop(1);
}

/* Mixed clusters never downgrade: a plaintext node dialing a TLS node is
** refused (and told why: a refused handshake), a TLS node dialing a
** plaintext node is refused by it. */
static void test_tls_plaintext_peer_refused(void **state)
{
    (void)state;
    start_opts s = {.certs_dir = certs};
    start_opts p = {0};
    start(1, 1, &s);
    start(2, 2, &p);
    add_peer(2, 1);
    add_peer(1, 2);
    tally t = one_request(2, 1);
    assert_int_equal(t.unreachable, 1);
    wait_refused(1, 1);
    assert_int_equal(stats(1).frames_received, 0);
    assert_true(stats(2).handshake_failures >= 1); /* it read our refusal */
    t = one_request(1, 2);
    assert_int_equal(t.unreachable, 1);
    wait_refused(2, 1);
    assert_int_equal(stats(2).frames_received, 1); /* only the refusal it read earlier */
    assert_int_equal(stats(1).handshakes_ok + stats(2).handshakes_ok, 0);
    stop(2);
    stop(1);
}

/* A PostgreSQL client on a TLS node's port is handed over before TLS. */
static bool foreign_seen(void *a)
{
    return ((tnode *)a)->foreign >= 1;
}

static void test_tls_postgres_handoff(void **state)
{
    (void)state;
    start_opts o = {.certs_dir = certs, .foreign = true};
    start(1, 1, &o);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)nodes[1].port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const uint8_t ssl_request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
    assert_int_equal(send(fd, ssl_request, 8, MSG_NOSIGNAL), 8);
    assert_true(wait_for(foreign_seen, &nodes[1]));
    close(fd);
    assert_int_equal(stats(1).tls_refused, 0);
    assert_int_equal(stats(1).foreign_connections, 1);
    stop(1);
}

/* sec_tls_reload on the running contexts: connections made after it work
** (the same files: what matters is that the swap is safe under traffic). */
static void test_tls_reload(void **state)
{
    (void)state;
    start_opts o = {.certs_dir = certs};
    start(1, 1, &o);
    start(2, 2, &o);
    add_peer(1, 2);
    tally t = one_request(1, 2);
    assert_int_equal(t.ok, 1);
    check(sec_tls_reload(nodes[2].srv, err, sizeof(err)));
    check(sec_tls_reload(nodes[2].cli, err, sizeof(err)));
    start(3, 3, &o);
    add_peer(3, 2);
    t = one_request(3, 2); /* a new connection, after the reload */
    assert_int_equal(t.ok, 1);
    t = one_request(1, 2); /* the old one still works */
    assert_int_equal(t.ok, 1);
    stop(3);
    stop(2);
    stop(1);
}

/* An echo request until it succeeds, retried while it fails UNREACHABLE (a
** dial that failed leaves a backoff of at most reconnect_max_ms) or
** DISCONNECTED (a connection an injected failure closed on the other side
** just before the request went out on it): 0, or the error that stopped
** it. Bounded by WAIT_MS. */
static int echo_until_ok(int from, rpc_node_id to)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000;
    for (;;) {
        tally t = one_request(from, to);
        if (t.ok == 1)
            return 0;
        int rc = t.unreachable == 1 ? RPC_ERR_UNREACHABLE : t.last_other;
        if ((rc != RPC_ERR_UNREACHABLE && rc != RPC_ERR_DISCONNECTED) ||
            uv_hrtime() >= deadline)
            return rc;
    }
}

/* Out of memory injected after k allocations (the TLS stream's, the
** ciphertext buffers, the staging buffer...) with small and multi-record
** requests in flight: every callback runs exactly once and the pair
** recovers once memory is back. */
static void test_tls_out_of_memory(void **state)
{
    (void)state;
    static const long ks[] = {0, 1, 2, 3, 4, 5, 6, 8, 10, 13, 17, 21, 27, 34, 44, 55, 70,
                              89, 110, 144, 180, 233};
    static uint8_t payload[40000]; /* > one TLS record */
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 31);
    start_opts o = {.certs_dir = certs};
    for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
        start(1, 1, &o);
        start(2, 2, &o);
        add_peer(1, 2);
        add_peer(2, 1);
        if (ki % 2 == 1) { /* connected first: the failures hit the TLS stream paths */
            assert_int_equal(one_request(1, 2).ok, 1);
            assert_int_equal(one_request(2, 1).ok, 1);
        }
        enum { N = 20 };
        tally t = {0};
        int accepted = 0;
        sum_ctx sc = {&t, base_crc32c(0, payload, sizeof(payload))};
        base_alloc_fail_after(ks[ki]);
        for (int i = 0; i < N; i++) {
            size_t len = i % 2 ? sizeof(payload) : 8;
            sum_ctx *c = i % 2 ? &sc : NULL;
            int rc = c ? rpc_request(nodes[1].t, 2, M_SUM, payload, len, 2000, on_sum, c)
                       : rpc_request(nodes[1].t, 2, M_ECHO, payload, len, 2000, on_reply, &t);
            if (rc == RPC_OK)
                accepted++;
            else
                assert_int_equal(rc, RPC_ERR_NOMEM);
            uint64_t v = (uint64_t)i + 1;
            rc = rpc_send(nodes[2].t, 1, M_SEQ, &v, 8);
            assert_true(rc == RPC_OK || rc == RPC_ERR_NOMEM);
        }
        wait_calls(&t, accepted);
        base_alloc_fail_after(-1);
        lock();
        assert_int_equal(t.calls, accepted);
        assert_int_equal(t.bad, 0);
        printf("k=%ld: %d accepted: %d ok, %d unreachable, %d other (%s)\n", ks[ki], accepted,
               t.ok, t.unreachable, t.other, t.other ? rpc_strerror(t.last_other) : "-");
        unlock();
        int after = echo_until_ok(1, 2);
        if (after != 0)
            fail_msg("k=%ld: no recovery after the injection: %s", ks[ki], rpc_strerror(after));
        stop(2);
        stop(1);
        lock();
        assert_int_equal(t.calls, accepted); /* still exactly once */
        unlock();
    }
}

/* rpc_uv_start refuses half a TLS configuration. */
static void test_tls_config_checked(void **state)
{
    (void)state;
    sec_tls_ctx *srv = NULL, *cli = NULL;
    sec_tls_options so = {.require_peer_node = true};
    sec_tls_options co = {.cert_name = "node"};
    check(sec_tls_server_ctx_new(certs, &so, &srv, err, sizeof(err)));
    check(sec_tls_client_ctx_new(certs, &co, &cli, err, sizeof(err)));
    rpc_uv_config cfg;
    rpc_uv_config_init(&cfg);
    cfg.node_id = 1;
    rpc_uv *uv = NULL;
    cfg.tls_server = srv; /* no client */
    assert_int_equal(rpc_uv_start(&cfg, &uv), RPC_ERR_INVALID);
    cfg.tls_server = NULL;
    cfg.tls_client = cli; /* a listener and no server */
    assert_int_equal(rpc_uv_start(&cfg, &uv), RPC_ERR_INVALID);
    assert_null(uv);
    sec_tls_ctx_free(srv);
    sec_tls_ctx_free(cli);
}

int main(void)
{
    uv_mutex_init(&mu);
    uv_cond_init(&cv);
    base_log_set_level(getenv("RPC_TEST_DEBUG") ? BASE_LOG_DEBUG : BASE_LOG_WARN);
    if (getenv("RPC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RPC_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_requests_and_messages),
        cmocka_unit_test(test_tls_large_and_pipelined),
        cmocka_unit_test(test_tls_client_cert_refused),
        cmocka_unit_test(test_tls_client_cert_admin_methods_only),
        cmocka_unit_test(test_tls_foreign_ca_refused),
        cmocka_unit_test(test_tls_wrong_address_refused),
        cmocka_unit_test(test_tls_node_id_bound_to_address),
        cmocka_unit_test(test_tls_side_connection_node_id_bound),
        cmocka_unit_test(test_tls_plaintext_peer_refused),
        cmocka_unit_test(test_tls_postgres_handoff),
        cmocka_unit_test(test_tls_reload),
        cmocka_unit_test(test_tls_out_of_memory),
        cmocka_unit_test(test_tls_config_checked),
    };
    int rc = cmocka_run_group_tests(tests, setup_all, teardown_all);
    uv_cond_destroy(&cv);
    uv_mutex_destroy(&mu);
    return rc;
}
