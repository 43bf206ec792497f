/*
** tests/rpc/test_rpc_uv.c: real transports on loopback (port 0).
** Two and three nodes exchanging requests and one-way messages (in order,
** thousands in flight, batched), simultaneous dials, a 16 MiB payload,
** request timeouts, unknown peers, a peer stopped (pending requests fail,
** reconnect with backoff works once it is back), HLC update on receive,
** handshake refusals (cluster id, wrong node), bounded queues with drops.
** Requests by address (rpc_uv_request_addr) from real and provisional node
** ids, their failures (refused, silent, self, other cluster, stop), the
** cluster id learnt late, a restart on the same port with a new node id,
** and PostgreSQL clients on the RPC port handed to foreign_connection.
** Failing fast (RPC_ERR_UNREACHABLE): nothing listening, a refused
** handshake, a peer killed mid-stream (written requests DISCONNECTED, even
** a half-written one; later ones UNREACHABLE), the peer back, and a seeded
** random mix checking exactly-once and "UNREACHABLE => never seen".
** No sleeps: every wait is on a condition with a bound (WAIT_MS).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "rpc/rpc_int.h" /* raw frames for a fake peer */

#define WAIT_MS 20000 /* bound on every wait: a hang becomes a failure */
/* A request deadline beyond every wait: a callback that a wait saw came
** before the deadline, so it was not the timeout. */
#define LONG_DEADLINE_MS 30000
#define MAXN 4

#define M_SEQ 1   /* one-way: payload u64 sequence */
#define M_ECHO 2  /* request: echo the payload */
#define M_HOLD 3  /* request: remembered, never answered */
#define M_SUM 4   /* request: answer with the crc32c of the payload */
#define M_DEFER 5 /* request: remembered in node.deferred, answered by the test */
#define M_MARK 6  /* request (random mix): token recorded as seen, maybe answered */
#define DEFER_MAX 64

/* State shared between the test thread and loop threads. */
static uv_mutex_t mu;
static uv_cond_t cv;

typedef struct node {
    rpc_uv *uv;
    rpc_transport *t;
    rpc_node_id id;
    int port;
    hlc_manual_clock mc;
    hlc_clock *clock;
    /* guarded by mu */
    uint64_t seq_next[MAXN + 1];  /* sender side, per destination */
    uint64_t seq_seen[MAXN + 1];  /* receiver side, per source */
    uint64_t seq_received, seq_out_of_order; /* out of order: gaps + backwards */
    uint64_t seq_backwards;
    uint64_t held;
    int ndeferred;
    rpc_node_id deferred_from[DEFER_MAX];
    uint64_t deferred_id[DEFER_MAX];
} node;

static node nodes[MAXN + 1];

typedef struct tally {
    int calls, ok, timeouts, disconnected, stopped, unknown, unreachable, other;
    int handshake, self, queue_full;
    int status_queue_full; /* answered with status RPC_ERR_QUEUE_FULL */
    int bad_echo;
    uint32_t last_sum;
    rpc_node_id last_from;
} tally;

static void lock(void) { uv_mutex_lock(&mu); }
static void unlock(void) { uv_mutex_unlock(&mu); }

/* Wait (bounded by WAIT_MS) until pred() holds; returns its final value.
** Callbacks broadcast cv; predicates on transport counters (not signalled)
** are re-checked at least every 2 ms. */
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
    tally *t = ctx;
    lock();
    t->calls++;
    switch (rc) {
    case RPC_OK: t->ok++; break;
    case RPC_ERR_TIMEOUT: t->timeouts++; break;
    case RPC_ERR_DISCONNECTED: t->disconnected++; break;
    case RPC_ERR_STOPPED: t->stopped++; break;
    case RPC_ERR_UNKNOWN_PEER: t->unknown++; break;
    case RPC_ERR_UNREACHABLE: t->unreachable++; break;
    case RPC_ERR_HANDSHAKE: t->handshake++; t->other++; break;
    case RPC_ERR_SELF: t->self++; t->other++; break;
    case RPC_ERR_QUEUE_FULL: t->queue_full++; t->other++; break;
    default: t->other++; break;
    }
    if (rc == RPC_OK && m->payload_len == 4)
        memcpy(&t->last_sum, m->payload, 4);
    if (rc == RPC_OK)
        t->last_from = m->from;
    if (rc == RPC_OK && m->status == RPC_ERR_QUEUE_FULL)
        t->status_queue_full++;
    uv_cond_broadcast(&cv);
    unlock();
}

/* Echo requests carry their index; the reply is checked against the ctx. */
typedef struct echo_ctx {
    tally *tally;
    uint64_t index;
} echo_ctx;

static void on_echo(void *ctx, int rc, const rpc_message *m)
{
    echo_ctx *e = ctx;
    if (rc == RPC_OK) {
        uint64_t v = 0;
        if (m->payload_len != 8 || (memcpy(&v, m->payload, 8), v != e->index) || m->status != 0) {
            lock();
            e->tally->bad_echo++;
            unlock();
        }
    }
    on_reply(e->tally, rc, m);
}

static void mix_handler(void *ctx, rpc_transport *t, const rpc_message *m);

static void handler(void *ctx, rpc_transport *t, const rpc_message *m)
{
    node *n = ctx;
    switch (m->method) {
    case M_MARK:
        mix_handler(ctx, t, m);
        break;
    case M_SEQ: {
        uint64_t seq = 0;
        if (m->payload_len == 8)
            memcpy(&seq, m->payload, 8);
        if (m->from > MAXN) /* only test nodes 1..MAXN send sequences */
            break;
        lock();
        n->seq_received++;
        if (seq != n->seq_seen[m->from] + 1)
            n->seq_out_of_order++;
        if (seq <= n->seq_seen[m->from])
            n->seq_backwards++;
        n->seq_seen[m->from] = seq;
        uv_cond_broadcast(&cv);
        unlock();
        break;
    }
    case M_ECHO:
        rpc_respond(t, m->from, m->request_id, 0, m->payload, m->payload_len);
        break;
    case M_HOLD:
        lock();
        n->held++;
        uv_cond_broadcast(&cv);
        unlock();
        break;
    case M_SUM: {
        uint32_t sum = base_crc32c(0, m->payload, m->payload_len);
        rpc_respond(t, m->from, m->request_id, 0, &sum, 4);
        break;
    }
    case M_DEFER:
        lock();
        if (n->ndeferred < DEFER_MAX) {
            n->deferred_from[n->ndeferred] = m->from;
            n->deferred_id[n->ndeferred] = m->request_id;
            n->ndeferred++;
        }
        uv_cond_broadcast(&cv);
        unlock();
        break;
    default:
        break;
    }
}

/* Start a transport in nodes[slot] with node id `id` (provisional ids
** too). cfg->listen_host NULL: no listener. */
static void slot_start(int slot, rpc_node_id id, int port, rpc_uv_config *cfg)
{
    node *n = &nodes[slot];
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->mc.now_ns = 1700000000000000000LL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&n->mc), HLC_DEFAULT_MAX_OFFSET_NS,
                                   &n->clock), 0);
    cfg->node_id = id;
    cfg->listen_port = port;
    cfg->clock = n->clock;
    cfg->handler = handler;
    cfg->handler_ctx = n;
    cfg->random_seed = id;
    rpc_uv_config def;
    rpc_uv_config_init(&def);
    if (cfg->reconnect_base_ms == def.reconnect_base_ms &&
        cfg->reconnect_max_ms == def.reconnect_max_ms) { /* not chosen by the test */
        cfg->reconnect_base_ms = 10;
        cfg->reconnect_max_ms = 100;
    }
    int rc = rpc_uv_start(cfg, &n->uv);
    assert_int_equal(rc, 0);
    n->t = rpc_uv_transport(n->uv);
    n->port = rpc_uv_listen_port(n->uv);
    assert_true(cfg->listen_host == NULL ? n->port == -1 : n->port > 0);
    assert_true(rpc_node(n->t) == id);
}

static void node_start_cfg(rpc_node_id id, int port, rpc_uv_config *cfg)
{
    cfg->listen_host = "127.0.0.1";
    slot_start((int)id, id, port, cfg);
}

static void node_start(rpc_node_id id)
{
    rpc_uv_config cfg;
    rpc_uv_config_init(&cfg);
    node_start_cfg(id, 0, &cfg);
}

static void node_stop(rpc_node_id id)
{
    node *n = &nodes[id];
    rpc_uv_free(n->uv);
    n->uv = NULL;
    n->t = NULL;
    hlc_clock_free(n->clock);
    n->clock = NULL;
}

static void mesh(int count)
{
    for (int a = 1; a <= count; a++)
        for (int b = 1; b <= count; b++)
            if (a != b)
                assert_int_equal(rpc_uv_add_peer(nodes[a].uv, (rpc_node_id)b, "127.0.0.1",
                                                 nodes[b].port), 0);
}

static void send_seq(rpc_node_id from, rpc_node_id to)
{
    lock();
    uint64_t seq = ++nodes[from].seq_next[to];
    unlock();
    assert_int_equal(rpc_send(nodes[from].t, to, M_SEQ, &seq, 8), 0);
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
typedef struct seq_arg {
    node *n;
    uint64_t want;
} seq_arg;
static bool seq_reached(void *a)
{
    seq_arg *s = a;
    return s->n->seq_received >= s->want;
}
static bool held_reached(void *a)
{
    seq_arg *s = a;
    return s->n->held >= s->want;
}

static void wait_calls(tally *t, int want)
{
    calls_arg c = {t, want};
    bool ok = wait_for(calls_reached, &c);
    if (!ok) { /* what each transport saw, for the failure report */
        for (int i = 1; i <= MAXN; i++) {
            if (nodes[i].uv == NULL)
                continue;
            rpc_uv_stats st;
            rpc_uv_get_stats(nodes[i].uv, &st);
            printf("slot %d: sent %llu received %llu dropped %llu bad %llu\n", i,
                   (unsigned long long)st.frames_sent, (unsigned long long)st.frames_received,
                   (unsigned long long)st.messages_dropped, (unsigned long long)st.bad_frames);
        }
    }
    assert_true(ok);
}

static bool mesh_settled(void *a)
{
    int count = *(int *)a;
    for (int i = 1; i <= count; i++) {
        rpc_uv_stats st;
        rpc_uv_get_stats(nodes[i].uv, &st);
        if (st.peers_connected != (uint64_t)count - 1)
            return false;
    }
    return true;
}

/* ---- tests ------------------------------------------------------------------ */

#define PIPELINE 2000
#define MESSAGES 5000

static void test_two_nodes_pipelined(void **state)
{
    (void)state;
    node_start(1);
    node_start(2);
    mesh(2);
    tally t = {0};
    echo_ctx *ctx = calloc(PIPELINE, sizeof(*ctx));
    /* Interleave one-way messages and requests: all in flight at once. */
    for (int i = 0; i < PIPELINE; i++) {
        ctx[i].tally = &t;
        ctx[i].index = (uint64_t)i;
        uint64_t v = (uint64_t)i;
        assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, WAIT_MS, on_echo, &ctx[i]), 0);
        send_seq(1, 2);
        send_seq(1, 2);
        send_seq(2, 1);
    }
    for (int i = 0; i < MESSAGES - 2 * PIPELINE; i++)
        send_seq(1, 2);
    wait_calls(&t, PIPELINE);
    seq_arg s2 = {&nodes[2], MESSAGES}, s1 = {&nodes[1], PIPELINE};
    assert_true(wait_for(seq_reached, &s2));
    assert_true(wait_for(seq_reached, &s1));
    lock();
    assert_int_equal(t.ok, PIPELINE);
    assert_int_equal(t.bad_echo, 0);
    assert_int_equal(nodes[2].seq_out_of_order, 0);
    assert_int_equal(nodes[1].seq_out_of_order, 0);
    unlock();
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[1].uv, &st);
    printf("node 1: frames sent %llu in %llu writes, received %llu\n",
           (unsigned long long)st.frames_sent, (unsigned long long)st.writes,
           (unsigned long long)st.frames_received);
    assert_true(st.frames_sent >= PIPELINE + MESSAGES);
    assert_true(st.writes < st.frames_sent / 2); /* batching coalesced frames */
    assert_int_equal(st.bad_frames, 0);
    assert_int_equal(st.messages_dropped, 0);
    /* only one connection per pair, whoever dialed */
    rpc_uv_stats st2;
    rpc_uv_get_stats(nodes[2].uv, &st2);
    assert_int_equal(st.peers_connected, 1);
    assert_int_equal(st2.peers_connected, 1);
    free(ctx);
    node_stop(1);
    node_stop(2);
}

/* Three nodes, everyone talks to everyone at once (so pairs dial each other
** simultaneously). Round 1 may lose requests to the duplicate-connection
** tie-break (RPC_ERR_DISCONNECTED) but every callback runs once; round 2,
** on settled connections, must be all OK and in order. */
static void test_three_nodes(void **state)
{
    (void)state;
    for (rpc_node_id i = 1; i <= 3; i++)
        node_start(i);
    mesh(3);
    for (int round = 1; round <= 2; round++) {
        tally t = {0};
        int per_pair = 300, total = 0;
        echo_ctx *ctx = calloc(6 * (size_t)per_pair, sizeof(*ctx));
        for (int i = 0; i < per_pair; i++) {
            for (rpc_node_id a = 1; a <= 3; a++) {
                for (rpc_node_id b = 1; b <= 3; b++) {
                    if (a == b)
                        continue;
                    echo_ctx *e = &ctx[total++];
                    e->tally = &t;
                    e->index = (uint64_t)total;
                    assert_int_equal(rpc_request(nodes[a].t, b, M_ECHO, &e->index, 8, WAIT_MS,
                                                 on_echo, e), 0);
                    send_seq(a, b);
                }
            }
        }
        wait_calls(&t, total);
        lock();
        printf("round %d: %d ok, %d disconnected\n", round, t.ok, t.disconnected);
        assert_int_equal(t.calls, total);
        assert_int_equal(t.ok + t.disconnected, total);
        assert_int_equal(t.bad_echo, 0);
        if (round == 2)
            assert_int_equal(t.ok, total);
        unlock();
        free(ctx);
        int three = 3;
        assert_true(wait_for(mesh_settled, &three));
    }
    /* Messages never go backwards (losses, only at a connection switch in
    ** round 1, show up as gaps). */
    for (rpc_node_id b = 1; b <= 3; b++) {
        lock();
        assert_int_equal(nodes[b].seq_backwards, 0);
        unlock();
    }
    for (rpc_node_id i = 1; i <= 3; i++) {
        rpc_uv_stats st;
        rpc_uv_get_stats(nodes[i].uv, &st);
        assert_int_equal(st.bad_frames, 0);
        assert_int_equal(st.peers_connected, 2);
    }
    for (rpc_node_id i = 1; i <= 3; i++)
        node_stop(i);
}

static void test_large_payload(void **state)
{
    (void)state;
    node_start(1);
    node_start(2);
    mesh(2);
    size_t len = RPC_FRAME_PAYLOAD_MAX;
    uint8_t *big = malloc(len + 1);
    for (size_t i = 0; i < len + 1; i++)
        big[i] = (uint8_t)(i * 31 + (i >> 13));
    tally t = {0};
    assert_int_equal(rpc_request(nodes[1].t, 2, M_SUM, big, len, WAIT_MS, on_reply, &t), 0);
    assert_int_equal(rpc_request(nodes[1].t, 2, M_SUM, big, len + 1, WAIT_MS, on_reply, &t),
                     RPC_ERR_TOO_LARGE);
    assert_int_equal(rpc_send(nodes[1].t, 2, M_SEQ, big, len + 1), RPC_ERR_TOO_LARGE);
    wait_calls(&t, 1);
    lock();
    assert_int_equal(t.ok, 1);
    assert_int_equal(t.last_sum, base_crc32c(0, big, len));
    unlock();
    /* and a small one right behind it still works */
    tally t2 = {0};
    uint64_t v = 1;
    echo_ctx e = {&t2, 1};
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, WAIT_MS, on_echo, &e), 0);
    wait_calls(&t2, 1);
    assert_int_equal(t2.ok, 1);
    free(big);
    node_stop(1);
    node_stop(2);
}

static void test_timeouts_and_unknown_peer(void **state)
{
    (void)state;
    node_start(1);
    node_start(2);
    mesh(2);
    tally held = {0}, unknown = {0}, ok = {0};
    uint64_t v = 1;
    for (int i = 0; i < 10; i++)
        assert_int_equal(rpc_request(nodes[1].t, 2, M_HOLD, &v, 8, 30 + i * 10, on_reply, &held), 0);
    assert_int_equal(rpc_request(nodes[1].t, 9, M_ECHO, &v, 8, WAIT_MS, on_reply, &unknown), 0);
    echo_ctx e = {&ok, 1};
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, WAIT_MS, on_echo, &e), 0);
    /* bad arguments: no callback */
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, 0, on_reply, &held), RPC_ERR_INVALID);
    assert_int_equal(rpc_request(nodes[1].t, 1, M_ECHO, &v, 8, 10, on_reply, &held), RPC_ERR_INVALID);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 1, "127.0.0.1", 1), RPC_ERR_INVALID);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 5, "not-an-ip", 1), RPC_ERR_INVALID);
    wait_calls(&held, 10);
    wait_calls(&unknown, 1);
    wait_calls(&ok, 1);
    lock();
    assert_int_equal(held.timeouts, 10);
    assert_int_equal(unknown.unknown, 1);
    assert_int_equal(ok.ok, 1);
    unlock();
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[1].uv, &st);
    assert_int_equal(st.requests_timed_out, 10);
    node_stop(1);
    node_stop(2);
}

/* Echo `value` from slot `from` to node `to`, again while the answer is
** RPC_ERR_UNREACHABLE (the peer is coming back; its backoff elapses). Returns
** the first other result (0: answered, echo checked). Bounded by WAIT_MS. */
static int echo_until_ok(int from, rpc_node_id to, uint64_t value)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000;
    for (;;) {
        tally t = {0};
        echo_ctx e = {&t, value};
        assert_int_equal(rpc_request(nodes[from].t, to, M_ECHO, &value, 8, LONG_DEADLINE_MS,
                                     on_echo, &e), 0);
        wait_calls(&t, 1);
        lock();
        int rc = t.ok == 1 && t.bad_echo == 0 ? 0 : t.unreachable == 1 ? RPC_ERR_UNREACHABLE : -1;
        unlock();
        /* In the backoff each try fails at once: a spin bounded by the
        ** backoff (reconnect_max_ms, 100 ms in these tests) and WAIT_MS. */
        if (rc != RPC_ERR_UNREACHABLE || uv_hrtime() >= deadline)
            return rc;
    }
}

static bool dial_failed_twice(void *a)
{
    rpc_uv_stats st;
    rpc_uv_get_stats(a, &st);
    return st.dial_failures >= 2;
}

static void test_peer_stopped_then_back(void **state)
{
    (void)state;
    node_start(1);
    node_start(2);
    mesh(2);
    tally pending = {0};
    uint64_t v = 1;
    for (int i = 0; i < 5; i++)
        assert_int_equal(rpc_request(nodes[1].t, 2, M_HOLD, &v, 8, WAIT_MS, on_reply, &pending), 0);
    seq_arg h = {&nodes[2], 5};
    assert_true(wait_for(held_reached, &h));
    int port2 = nodes[2].port;
    node_stop(2);
    wait_calls(&pending, 5);
    lock();
    assert_int_equal(pending.disconnected, 5);
    unlock();

    /* While node 2 is down: a request fails RPC_ERR_UNREACHABLE as soon as
    ** the dial fails, well before its deadline; dials fail with backoff.
    ** Then node 2 comes back on the same port and requests go through. */
    tally early = {0};
    uint64_t six = 6;
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &six, 8, LONG_DEADLINE_MS, on_reply,
                                 &early), 0);
    wait_calls(&early, 1); /* bounded by WAIT_MS < LONG_DEADLINE_MS */
    assert_int_equal(early.unreachable, 1);
    /* Tries fail at once during the backoff (<= 100 ms here), then one
    ** dials again and fails; bounded by WAIT_MS. */
    uint64_t until = uv_hrtime() + (uint64_t)WAIT_MS * 1000000;
    while (!dial_failed_twice(nodes[1].uv)) {
        assert_true(uv_hrtime() < until);
        tally again = {0};
        assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &six, 8, LONG_DEADLINE_MS, on_reply,
                                     &again), 0);
        wait_calls(&again, 1);
        assert_int_equal(again.unreachable, 1);
    }
    rpc_uv_config cfg;
    rpc_uv_config_init(&cfg);
    node_start_cfg(2, port2, &cfg);
    assert_int_equal(echo_until_ok(1, 2, 7), 0);
    assert_int_equal(rpc_uv_add_peer(nodes[2].uv, 1, "127.0.0.1", nodes[1].port), 0);
    /* the other direction over the same connection (or a new one) */
    tally back = {0};
    echo_ctx e2 = {&back, 8};
    uint64_t eight = 8;
    assert_int_equal(rpc_request(nodes[2].t, 1, M_ECHO, &eight, 8, WAIT_MS, on_echo, &e2), 0);
    wait_calls(&back, 1);
    assert_int_equal(back.ok, 1);
    node_stop(1);
    node_stop(2);
}

static void test_stop_fails_pending(void **state)
{
    (void)state;
    node_start(1);
    node_start(2);
    mesh(2);
    tally t = {0};
    uint64_t v = 1;
    for (int i = 0; i < 20; i++)
        assert_int_equal(rpc_request(nodes[1].t, 2, M_HOLD, &v, 8, WAIT_MS, on_reply, &t), 0);
    seq_arg h = {&nodes[2], 20};
    assert_true(wait_for(held_reached, &h));
    rpc_transport *dead = nodes[1].t;
    node_stop(1);
    (void)dead;
    assert_int_equal(t.calls, 20);
    assert_int_equal(t.stopped, 20);
    node_stop(2);
}

static void test_hlc_update_on_receive(void **state)
{
    (void)state;
    rpc_uv_config c1, c2;
    rpc_uv_config_init(&c1);
    rpc_uv_config_init(&c2);
    /* clocks are fixed before the loop threads start */
    node_start_cfg(2, 0, &c2);
    node_start_cfg(1, 0, &c1);
    mesh(2);
    hlc_timestamp before2 = hlc_now(nodes[2].clock);
    /* node 1 is far ahead: push its HLC forward through a remote timestamp */
    hlc_timestamp ahead = {nodes[1].mc.now_ns + 10LL * 1000 * 1000 * 1000, 0};
    assert_int_equal(hlc_update(nodes[1].clock, ahead), HLC_ERR_REMOTE_AHEAD);
    send_seq(1, 2);
    seq_arg s = {&nodes[2], 1};
    assert_true(wait_for(seq_reached, &s));
    hlc_timestamp after2 = hlc_now(nodes[2].clock);
    assert_true(hlc_less(before2, after2));
    assert_true(hlc_less(ahead, after2)); /* Lamport: later than what node 1 sent */
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[2].uv, &st);
    assert_true(st.hlc_remote_ahead >= 1);
    node_stop(1);
    node_stop(2);
}

static bool handshake_failed(void *a)
{
    rpc_uv *uv = a;
    rpc_uv_stats st;
    rpc_uv_get_stats(uv, &st);
    return st.handshake_failures >= 1;
}

static void test_handshake_refusals(void **state)
{
    (void)state;
    rpc_uv_config c1, c2;
    rpc_uv_config_init(&c1);
    rpc_uv_config_init(&c2);
    c1.cluster_id = 0xAAAA;
    c2.cluster_id = 0xBBBB;
    node_start_cfg(1, 0, &c1);
    node_start_cfg(2, 0, &c2);
    mesh(2);
    tally t = {0};
    uint64_t v = 1;
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, LONG_DEADLINE_MS, on_reply, &t), 0);
    wait_calls(&t, 1);
    assert_int_equal(t.unreachable, 1); /* refused handshake: never sent, failed at once */
    assert_true(wait_for(handshake_failed, nodes[1].uv));
    assert_true(wait_for(handshake_failed, nodes[2].uv));
    node_stop(1);
    node_stop(2);

    /* Wrong node at an address: node 1 thinks node 3 lives at node 2's port. */
    node_start(1);
    node_start(2);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 3, "127.0.0.1", nodes[2].port), 0);
    tally t3 = {0};
    assert_int_equal(rpc_request(nodes[1].t, 3, M_ECHO, &v, 8, LONG_DEADLINE_MS, on_reply, &t3),
                     0);
    wait_calls(&t3, 1);
    assert_int_equal(t3.unreachable, 1); /* the wrong node answered: never sent */
    assert_true(wait_for(handshake_failed, nodes[2].uv));
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[2].uv, &st);
    assert_int_equal(st.handshakes_ok, 0);
    node_stop(1);
    node_stop(2);
}

static bool dropped_reached(void *a)
{
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[1].uv, &st);
    return st.messages_dropped >= *(uint64_t *)a;
}

/* Queue of 10 frames for a peer that is down: 100 one-way messages, 90
** dropped and counted. When the peer comes up it gets the 10 that were
** kept: the newest ones (DROP_OLDEST) or the first ones (DROP_NEWEST). */
static void bounded_queue(rpc_drop_policy policy)
{
    rpc_uv_config c1;
    rpc_uv_config_init(&c1);
    c1.peer_queue_frames_max = 10;
    c1.drop_policy = policy;
    node_start_cfg(1, 0, &c1);
    /* A port where nobody listens: reserve one with a second transport and
    ** stop it. */
    node_start(2);
    int dead_port = nodes[2].port;
    node_stop(2);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 2, "127.0.0.1", dead_port), 0);
    for (int i = 0; i < 100; i++)
        send_seq(1, 2);
    uint64_t want = 90;
    assert_true(wait_for(dropped_reached, &want));
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[1].uv, &st);
    assert_int_equal(st.messages_dropped, 90);
    /* requests are refused, not dropped silently */
    tally t = {0};
    uint64_t v = 1;
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, WAIT_MS, on_reply, &t), 0);
    wait_calls(&t, 1);
    /* RPC_ERR_QUEUE_FULL, or RPC_ERR_UNREACHABLE when the peer is in the
    ** backoff after a failed dial (checked first): both "never sent" */
    assert_int_equal(t.other + t.unreachable, 1);
    assert_int_equal(t.other, t.queue_full);
    /* the peer comes up on that port: the kept 10 arrive, in order */
    rpc_uv_config c2;
    rpc_uv_config_init(&c2);
    node_start_cfg(2, dead_port, &c2);
    seq_arg s = {&nodes[2], 10};
    assert_true(wait_for(seq_reached, &s));
    lock();
    assert_int_equal(nodes[2].seq_received, 10);
    assert_int_equal(nodes[2].seq_backwards, 0);
    if (policy == RPC_DROP_OLDEST) {
        assert_int_equal(nodes[2].seq_seen[1], 100);
        assert_int_equal(nodes[2].seq_out_of_order, 1); /* starts at 91 */
    } else {
        assert_int_equal(nodes[2].seq_seen[1], 10);
        assert_int_equal(nodes[2].seq_out_of_order, 0);
    }
    unlock();
    node_stop(1);
    node_stop(2);
}

static void test_bounded_queue_drop_oldest(void **state)
{
    (void)state;
    bounded_queue(RPC_DROP_OLDEST);
}

static void test_bounded_queue_drop_newest(void **state)
{
    (void)state;
    bounded_queue(RPC_DROP_NEWEST);
}

/* Out of memory injected after k more allocations (anywhere: callers'
** frames, the loop's requests, writes, read buffers), for a spread of k:
** calls fail with RPC_ERR_NOMEM or the callback reports an error, every
** accepted request calls back exactly once, nothing crashes or leaks, and
** after the injection stops the pair works again. */
static void test_out_of_memory(void **state)
{
    (void)state;
    static const long ks[] = {0, 1, 2, 3, 4, 5, 6, 8, 10, 13, 17, 21, 30, 40, 55, 80, 120};
    for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
        node_start(1);
        node_start(2);
        mesh(2);
        enum { N = 20 };
        tally t = {0};
        int accepted = 0;
        base_alloc_fail_after(ks[ki]);
        for (int i = 0; i < N; i++) {
            uint64_t v = (uint64_t)i;
            int rc = rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, 150, on_reply, &t);
            if (rc == RPC_OK)
                accepted++;
            else
                assert_int_equal(rc, RPC_ERR_NOMEM);
            rc = rpc_send(nodes[2].t, 1, M_SEQ, &v, 8);
            assert_true(rc == RPC_OK || rc == RPC_ERR_NOMEM);
        }
        {
            calls_arg c = {&t, accepted};
            bool done = wait_for(calls_reached, &c);
            if (!done)
                printf("k=%ld: %d of %d accepted requests called back\n", ks[ki], t.calls, accepted);
            assert_true(done);
        }
        base_alloc_fail_after(-1);
        lock();
        assert_int_equal(t.calls, accepted);
        unlock();
        /* recovered: a fresh request goes through (reconnecting if needed;
        ** a dial that failed for want of memory leaves a backoff in which
        ** requests fail UNREACHABLE: retried) */
        int after = echo_until_ok(1, 2, 99);
        if (after != 0)
            printf("k=%ld: the request after the injection failed: %d\n", ks[ki], after);
        assert_int_equal(after, 0);
        node_stop(1);
        node_stop(2);
        lock();
        assert_int_equal(t.calls, accepted); /* still exactly once */
        unlock();
    }
}

/* ---- requests by address, provisional ids, shared port ---------------------- */

#define PROV_A (RPC_NODE_ID_PROVISIONAL_MIN | 0x5EED01u)
#define PROV_B (RPC_NODE_ID_PROVISIONAL_MIN | 0x5EED02u)

static bool deferred_reached(void *a)
{
    seq_arg *s = a;
    return s->n->ndeferred >= (int)s->want;
}

/* Wait for the n-th deferred request on slot and answer it from this (the
** test) thread, i.e. through the submit queue, not from the handler. */
static rpc_node_id answer_deferred(int slot, int n, int32_t status)
{
    seq_arg d = {&nodes[slot], (uint64_t)n};
    assert_true(wait_for(deferred_reached, &d));
    lock();
    rpc_node_id from = nodes[slot].deferred_from[n - 1];
    uint64_t id = nodes[slot].deferred_id[n - 1];
    unlock();
    assert_int_equal(rpc_respond(nodes[slot].t, from, id, status, "late", 4), 0);
    return from;
}

static rpc_uv_stats stats_of(int slot)
{
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[slot].uv, &st);
    return st;
}

/* A provisional caller without a listener (what `meridian init` is) asks
** node 1 by address: pipelined, one side connection, `from` names node 1,
** answers from a handler and from another thread. Node 1 cannot address
** the provisional id, yet answers it. The provisional caller dialing by id
** is a side connection on node 1 too. Node 2, which has the pair's own
** connection, asks by address as well: answers go back on the side
** connection and the pair's connection is undisturbed. */
static void test_request_addr(void **state)
{
    (void)state;
    node_start(1);
    node_start(2);
    mesh(2);
    tally warm = {0};
    uint64_t v = 42;
    echo_ctx w = {&warm, 42};
    assert_int_equal(rpc_request(nodes[2].t, 1, M_ECHO, &v, 8, WAIT_MS, on_echo, &w), 0);
    wait_calls(&warm, 1);
    assert_int_equal(warm.ok, 1);

    rpc_uv_config pc;
    rpc_uv_config_init(&pc);
    pc.listen_host = NULL;
    slot_start(3, PROV_A, 0, &pc);
    enum { N = 200 };
    tally t = {0};
    echo_ctx *ctx = calloc(N, sizeof(*ctx));
    for (int i = 0; i < N; i++) {
        ctx[i].tally = &t;
        ctx[i].index = (uint64_t)i;
        uint64_t x = (uint64_t)i;
        assert_int_equal(rpc_uv_request_addr(nodes[3].uv, "127.0.0.1", nodes[1].port, M_ECHO, &x,
                                             8, WAIT_MS, on_echo, &ctx[i]), 0);
    }
    wait_calls(&t, N);
    lock();
    assert_int_equal(t.ok, N);
    assert_int_equal(t.bad_echo, 0);
    assert_true(t.last_from == 1);
    unlock();
    free(ctx);
    assert_int_equal(stats_of(3).side_connections, 1); /* one connection, reused */
    assert_int_equal(stats_of(3).peers_connected, 0);

    /* answered later, from another thread */
    tally d = {0};
    assert_int_equal(rpc_uv_request_addr(nodes[3].uv, "127.0.0.1", nodes[1].port, M_DEFER, &v, 8,
                                         WAIT_MS, on_reply, &d), 0);
    assert_true(answer_deferred(1, 1, 7) == PROV_A);
    wait_calls(&d, 1);
    assert_int_equal(d.ok, 1);
    assert_true(d.last_from == 1);

    /* node 1 cannot address a provisional id by itself */
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, PROV_A, "127.0.0.1", 1), RPC_ERR_INVALID);
    tally u = {0};
    assert_int_equal(rpc_request(nodes[1].t, PROV_A, M_ECHO, &v, 8, WAIT_MS, on_reply, &u), 0);
    wait_calls(&u, 1);
    assert_int_equal(u.unknown, 1);

    /* the provisional caller dialing node 1 by id: a side connection there */
    assert_int_equal(rpc_uv_add_peer(nodes[3].uv, 1, "127.0.0.1", nodes[1].port), 0);
    tally b = {0};
    echo_ctx eb = {&b, 42};
    assert_int_equal(rpc_request(nodes[3].t, 1, M_ECHO, &v, 8, WAIT_MS, on_echo, &eb), 0);
    wait_calls(&b, 1);
    assert_int_equal(b.ok, 1);
    assert_int_equal(b.bad_echo, 0);
    assert_true(b.last_from == 1);

    /* node 2 asks by address too, beside the pair's own connection */
    tally a2 = {0};
    echo_ctx e2 = {&a2, 42};
    assert_int_equal(rpc_uv_request_addr(nodes[2].uv, "127.0.0.1", nodes[1].port, M_ECHO, &v, 8,
                                         WAIT_MS, on_echo, &e2), 0);
    wait_calls(&a2, 1);
    assert_int_equal(a2.ok, 1);
    assert_true(a2.last_from == 1);
    tally d2 = {0};
    assert_int_equal(rpc_uv_request_addr(nodes[2].uv, "127.0.0.1", nodes[1].port, M_DEFER, &v, 8,
                                         WAIT_MS, on_reply, &d2), 0);
    assert_true(answer_deferred(1, 2, 0) == 2);
    wait_calls(&d2, 1);
    assert_int_equal(d2.ok, 1);
    /* and the pair's connection still carries requests by id */
    tally after = {0};
    echo_ctx ea = {&after, 42};
    assert_int_equal(rpc_request(nodes[2].t, 1, M_ECHO, &v, 8, WAIT_MS, on_echo, &ea), 0);
    wait_calls(&after, 1);
    assert_int_equal(after.ok, 1);

    rpc_uv_stats s1 = stats_of(1), s2 = stats_of(2);
    assert_int_equal(s1.peers_connected, 1); /* node 2 only: no provisional peer */
    assert_int_equal(s1.side_connections, 3);
    assert_int_equal(s1.duplicate_connections_closed, 0);
    assert_int_equal(s1.bad_frames, 0);
    assert_int_equal(s2.peers_connected, 1);
    assert_int_equal(s2.side_connections, 1);
    assert_int_equal(s2.duplicate_connections_closed, 0);
    assert_int_equal(stats_of(3).peers_connected, 1); /* its own dial to node 1 */
    node_stop(3);
    node_stop(1);
    node_stop(2);
}

/* A listening socket that never speaks (TCP connects, no handshake). */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Every way a request by address fails calls back exactly once: nobody
** listening, a silent listener (deadline), our own address, another
** cluster (then the cluster id set late), bad arguments (no callback),
** and stopping the transport. */
static void test_request_addr_failures(void **state)
{
    (void)state;
    uint64_t v = 1;
    node_start(1);
    node_start(2);
    int dead = nodes[2].port;
    node_stop(2);
    tally refused = {0};
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", dead, M_ECHO, &v, 8, WAIT_MS,
                                         on_reply, &refused), 0);
    wait_calls(&refused, 1);
    assert_int_equal(refused.disconnected, 1); /* at once, not at the deadline */

    int silent_port = 0;
    int lfd = silent_listener(&silent_port);
    tally silent = {0};
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", silent_port, M_ECHO, &v, 8,
                                         200, on_reply, &silent), 0);
    wait_calls(&silent, 1);
    assert_int_equal(silent.timeouts, 1);

    tally self = {0};
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", nodes[1].port, M_ECHO, &v, 8,
                                         WAIT_MS, on_reply, &self), 0);
    wait_calls(&self, 1);
    assert_int_equal(self.self, 1);

    rpc_uv_config c3, c4;
    rpc_uv_config_init(&c3);
    rpc_uv_config_init(&c4);
    c3.cluster_id = 0xAAAA;
    c4.cluster_id = 0xBBBB;
    node_start_cfg(3, 0, &c3);
    node_start_cfg(4, 0, &c4);
    tally other = {0};
    assert_int_equal(rpc_uv_request_addr(nodes[4].uv, "127.0.0.1", nodes[3].port, M_ECHO, &v, 8,
                                         WAIT_MS, on_reply, &other), 0);
    wait_calls(&other, 1);
    assert_int_equal(other.handshake, 1);
    /* node 4 learns it belongs to cluster AAAA */
    assert_int_equal(rpc_uv_set_cluster_id(nodes[4].uv, 0xAAAA), 0);
    tally joined = {0};
    echo_ctx ej = {&joined, 1};
    assert_int_equal(rpc_uv_request_addr(nodes[4].uv, "127.0.0.1", nodes[3].port, M_ECHO, &v, 8,
                                         WAIT_MS, on_echo, &ej), 0);
    wait_calls(&joined, 1);
    assert_int_equal(joined.ok, 1);
    assert_true(joined.last_from == 3);
    /* cluster id 0 (a node not yet initialized) talks to anyone */
    tally any = {0};
    echo_ctx eany = {&any, 1};
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", nodes[3].port, M_ECHO, &v, 8,
                                         WAIT_MS, on_echo, &eany), 0);
    wait_calls(&any, 1);
    assert_int_equal(any.ok, 1);

    tally never = {0};
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "not-an-ip", 5, M_ECHO, &v, 8, WAIT_MS,
                                         on_reply, &never), RPC_ERR_INVALID);
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", 0, M_ECHO, &v, 8, WAIT_MS,
                                         on_reply, &never), RPC_ERR_INVALID);
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", dead, M_ECHO, &v, 8, 0,
                                         on_reply, &never), RPC_ERR_INVALID);
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", dead, M_ECHO, &v, 8, WAIT_MS,
                                         NULL, &never), RPC_ERR_INVALID);
    static uint8_t big[RPC_FRAME_PAYLOAD_MAX + 1];
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", dead, M_ECHO, big,
                                         sizeof(big), WAIT_MS, on_reply, &never),
                     RPC_ERR_TOO_LARGE);

    /* pending on a silent address when the transport stops */
    tally stopped = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", silent_port, M_ECHO, &v,
                                             8, WAIT_MS, on_reply, &stopped), 0);
    node_stop(1);
    lock();
    assert_int_equal(stopped.calls, 3);
    assert_int_equal(stopped.stopped, 3);
    /* exactly once: nothing called back twice meanwhile */
    assert_int_equal(refused.calls, 1);
    assert_int_equal(silent.calls, 1);
    assert_int_equal(self.calls, 1);
    assert_int_equal(other.calls, 1);
    assert_int_equal(joined.calls, 1);
    assert_int_equal(any.calls, 1);
    assert_int_equal(never.calls, 0);
    unlock();
    node_stop(3);
    node_stop(4);
    close(lfd);
}

/* A node starts with a provisional id, is asked by address, then gets its
** real id: it restarts its transport on the same port (the port re-binds
** at once) and answers as node 2, by address and by id. */
static void test_restart_with_real_id(void **state)
{
    (void)state;
    uint64_t v = 5;
    node_start(1);
    rpc_uv_config pc;
    rpc_uv_config_init(&pc);
    pc.listen_host = "127.0.0.1";
    slot_start(2, PROV_B, 0, &pc);
    int port = nodes[2].port;
    tally a = {0};
    echo_ctx ea = {&a, 5};
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", port, M_ECHO, &v, 8, WAIT_MS,
                                         on_echo, &ea), 0);
    wait_calls(&a, 1);
    assert_int_equal(a.ok, 1);
    assert_true(a.last_from == PROV_B);
    node_stop(2);
    rpc_uv_config rc;
    rpc_uv_config_init(&rc);
    node_start_cfg(2, port, &rc);
    /* The first try may still meet the old side connection before its EOF
    ** is seen (RPC_ERR_DISCONNECTED); bounded retries. */
    bool ok = false;
    for (int attempt = 0; attempt < 10 && !ok; attempt++) {
        tally b = {0};
        echo_ctx eb = {&b, 5};
        assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", port, M_ECHO, &v, 8,
                                             WAIT_MS, on_echo, &eb), 0);
        wait_calls(&b, 1);
        lock();
        ok = b.ok == 1 && b.last_from == 2;
        assert_true(ok || b.disconnected == 1);
        unlock();
    }
    assert_true(ok);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 2, "127.0.0.1", port), 0);
    tally c = {0};
    echo_ctx ec = {&c, 5};
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, WAIT_MS, on_echo, &ec), 0);
    wait_calls(&c, 1);
    assert_int_equal(c.ok, 1);
    node_stop(1);
    node_stop(2);
}

/* More unanswered requests on one side connection than it keeps routes
** for: the excess is answered at once with status RPC_ERR_QUEUE_FULL; the
** rest fail with RPC_ERR_STOPPED when the caller stops. */
static void test_side_route_limit(void **state)
{
    (void)state;
    enum { LIMIT = 1024, EXTRA = 6 }; /* RPC_SIDE_ROUTES_MAX in rpc_uv.c */
    node_start(1);
    rpc_uv_config pc;
    rpc_uv_config_init(&pc);
    pc.listen_host = NULL;
    slot_start(3, PROV_A, 0, &pc);
    tally t = {0};
    uint64_t v = 3;
    for (int i = 0; i < LIMIT + EXTRA; i++)
        assert_int_equal(rpc_uv_request_addr(nodes[3].uv, "127.0.0.1", nodes[1].port, M_DEFER,
                                             &v, 8, WAIT_MS, on_reply, &t), 0);
    wait_calls(&t, EXTRA);
    lock();
    assert_int_equal(t.status_queue_full, EXTRA);
    unlock();
    node_stop(3);
    lock();
    assert_int_equal(t.calls, LIMIT + EXTRA);
    assert_int_equal(t.stopped, LIMIT);
    unlock();
    node_stop(1);
}

/* Out of memory injected after k allocations while a provisional caller
** asks by address: every accepted request calls back exactly once, and
** once the injection stops requests by address work again. */
static void test_request_addr_out_of_memory(void **state)
{
    (void)state;
    static const long ks[] = {0, 1, 2, 3, 4, 5, 6, 8, 10, 13, 17, 21, 30, 40, 55, 80, 120};
    for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
        node_start(1);
        rpc_uv_config pc;
        rpc_uv_config_init(&pc);
        pc.listen_host = NULL;
        slot_start(3, PROV_A, 0, &pc);
        enum { N = 20 };
        tally t = {0};
        int accepted = 0;
        base_alloc_fail_after(ks[ki]);
        for (int i = 0; i < N; i++) {
            uint64_t v = (uint64_t)i;
            int rc = rpc_uv_request_addr(nodes[3].uv, "127.0.0.1", nodes[1].port, M_ECHO, &v, 8,
                                         150, on_reply, &t);
            if (rc == RPC_OK)
                accepted++;
            else
                assert_int_equal(rc, RPC_ERR_NOMEM);
        }
        calls_arg c = {&t, accepted};
        bool done = wait_for(calls_reached, &c);
        base_alloc_fail_after(-1);
        if (!done)
            printf("k=%ld: %d of %d accepted requests called back\n", ks[ki], t.calls, accepted);
        assert_true(done);
        bool ok = false;
        for (int attempt = 0; attempt < 5 && !ok; attempt++) { /* a side connection may
                                                                  be closing */
            tally after = {0};
            uint64_t v = 99;
            echo_ctx e = {&after, 99};
            assert_int_equal(rpc_uv_request_addr(nodes[3].uv, "127.0.0.1", nodes[1].port, M_ECHO,
                                                 &v, 8, WAIT_MS, on_echo, &e), 0);
            wait_calls(&after, 1);
            lock();
            ok = after.ok == 1;
            unlock();
        }
        assert_true(ok);
        node_stop(3);
        node_stop(1);
        lock();
        assert_int_equal(t.calls, accepted); /* still exactly once */
        unlock();
    }
}

/* A side connection dialed by address closes once idle (addr_idle_ms), on
** both ends; the next request by address dials a new one. */
static bool side_open_is(void *a)
{
    int *want = a; /* slot, count */
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[want[0]].uv, &st);
    return st.side_connections_open == (uint64_t)want[1];
}

static void test_side_connection_idle_close(void **state)
{
    (void)state;
    node_start(1);
    rpc_uv_config pc;
    rpc_uv_config_init(&pc);
    pc.listen_host = NULL;
    pc.addr_idle_ms = 50;
    slot_start(3, PROV_A, 0, &pc);
    for (int round = 1; round <= 2; round++) {
        tally t = {0};
        uint64_t v = 4;
        echo_ctx e = {&t, 4};
        assert_int_equal(rpc_uv_request_addr(nodes[3].uv, "127.0.0.1", nodes[1].port, M_ECHO,
                                             &v, 8, WAIT_MS, on_echo, &e), 0);
        wait_calls(&t, 1);
        assert_int_equal(t.ok, 1);
        assert_int_equal(stats_of(3).side_connections, (uint64_t)round);
        int closed3[2] = {3, 0}, closed1[2] = {1, 0};
        assert_true(wait_for(side_open_is, closed3));
        assert_true(wait_for(side_open_is, closed1));
    }
    node_stop(3);
    node_stop(1);
}

/* ---- PostgreSQL clients on the RPC port -------------------------------------- */

typedef struct foreign_got {
    int calls;
    int fd;
    uint8_t prefix[64];
    size_t len;
} foreign_got;
static foreign_got got; /* guarded by mu */

static void on_foreign(void *ctx, int fd, const uint8_t *prefix, size_t len)
{
    (void)ctx;
    lock();
    got.calls++;
    if (got.fd < 0 && len <= sizeof(got.prefix)) {
        got.fd = fd;
        memcpy(got.prefix, prefix, len);
        got.len = len;
    } else {
        close(fd);
    }
    uv_cond_broadcast(&cv);
    unlock();
}

static bool foreign_reached(void *a)
{
    return got.calls >= *(int *)a;
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {WAIT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* True when the peer closes (EOF or reset) within the receive timeout. */
static bool raw_closed(int fd)
{
    uint8_t b[256];
    for (int i = 0; i < 1000; i++) { /* bounded: each round reads or ends */
        ssize_t r = recv(fd, b, sizeof(b), 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
        if (r < 0)
            return false; /* timeout */
    }
    return false;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An SSLRequest, split in two sends, reaches foreign_connection with its 8
** bytes; the handed socket is alive both ways and the transport no longer
** reads it. RPC on the same port keeps working; garbage is closed; a
** PostgreSQL client at a transport without foreign_connection is closed. */
static void test_foreign_connection(void **state)
{
    (void)state;
    lock();
    memset(&got, 0, sizeof(got));
    got.fd = -1;
    unlock();
    rpc_uv_config c1;
    rpc_uv_config_init(&c1);
    c1.foreign_connection = on_foreign;
    node_start_cfg(1, 0, &c1);
    node_start(2);
    mesh(2);

    uint8_t ssl[8];
    put_u32(ssl, 8);
    put_u32(ssl + 4, 80877103u);
    int cfd = raw_connect(nodes[1].port);
    assert_int_equal(send(cfd, ssl, 4, MSG_NOSIGNAL), 4);
    /* an RPC request in between, on the same port */
    tally t = {0};
    uint64_t v = 9;
    echo_ctx e = {&t, 9};
    assert_int_equal(rpc_request(nodes[2].t, 1, M_ECHO, &v, 8, WAIT_MS, on_echo, &e), 0);
    wait_calls(&t, 1);
    assert_int_equal(t.ok, 1);
    assert_int_equal(send(cfd, ssl + 4, 4, MSG_NOSIGNAL), 4);
    int one = 1;
    assert_true(wait_for(foreign_reached, &one));
    lock();
    int hfd = got.fd;
    assert_true(hfd >= 0);
    assert_int_equal(got.len, 8);
    assert_memory_equal(got.prefix, ssl, 8);
    unlock();
    /* the handed socket works both ways */
    assert_int_equal(write(hfd, "N", 1), 1);
    char answer = 0;
    assert_int_equal(recv(cfd, &answer, 1, 0), 1);
    assert_int_equal(answer, 'N');
    assert_int_equal(send(cfd, "hello", 5, MSG_NOSIGNAL), 5);
    char buf[8] = {0};
    size_t have = 0;
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000;
    while (have < 5 && uv_hrtime() < deadline) { /* the fd is non-blocking */
        ssize_t r = read(hfd, buf + have, 5 - have);
        if (r > 0) {
            have += (size_t)r;
        } else {
            assert_true(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
            lock();
            uv_cond_timedwait(&cv, &mu, 1000000);
            unlock();
        }
    }
    assert_int_equal(have, 5);
    assert_memory_equal(buf, "hello", 5);
    close(hfd);
    assert_true(raw_closed(cfd));
    close(cfd);

    /* garbage on the shared port: closed and counted */
    uint8_t junk[64];
    memset(junk, 0xEE, sizeof(junk));
    int gfd = raw_connect(nodes[1].port);
    assert_int_equal(send(gfd, junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
    assert_true(raw_closed(gfd));
    close(gfd);
    assert_true(stats_of(1).bad_frames >= 1);

    /* a PostgreSQL startup at a transport that serves no SQL: closed */
    uint8_t startup[8];
    put_u32(startup, 8);
    put_u32(startup + 4, 196608u);
    int pfd = raw_connect(nodes[2].port);
    assert_int_equal(send(pfd, startup, 8, MSG_NOSIGNAL), 8);
    assert_true(raw_closed(pfd));
    close(pfd);
    assert_true(stats_of(2).bad_frames >= 1);
    assert_int_equal(stats_of(2).foreign_connections, 0);

    /* still serving RPC */
    tally t2 = {0};
    echo_ctx e2 = {&t2, 9};
    assert_int_equal(rpc_request(nodes[2].t, 1, M_ECHO, &v, 8, WAIT_MS, on_echo, &e2), 0);
    wait_calls(&t2, 1);
    assert_int_equal(t2.ok, 1);
    assert_int_equal(stats_of(1).foreign_connections, 1);
    lock();
    assert_int_equal(got.calls, 1);
    unlock();
    node_stop(1);
    node_stop(2);
}

/* ---- failing fast: RPC_ERR_UNREACHABLE ---------------------------------------- */

/* A port where nobody listens: reserve one with a transport and stop it. */
static int dead_port(void)
{
    node_start(2);
    int port = nodes[2].port;
    node_stop(2);
    return port;
}

/* A registered peer with nothing listening: the request fails UNREACHABLE
** when the dial fails, long before its deadline. While the peer is in the
** backoff after that failure, new requests fail at once, without a dial;
** one-way messages are kept (today's semantics). A new address resets the
** backoff: the peer, now up, answers, and the kept messages arrive. */
static void test_unreachable_fails_fast(void **state)
{
    (void)state;
    int port2 = dead_port();
    rpc_uv_config c1;
    rpc_uv_config_init(&c1);
    c1.reconnect_base_ms = 60000; /* the backoff outlasts the test */
    c1.reconnect_max_ms = 60000;
    node_start_cfg(1, 0, &c1);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 2, "127.0.0.1", port2), 0);
    tally first = {0};
    uint64_t v = 1;
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, LONG_DEADLINE_MS, on_reply,
                                 &first), 0);
    wait_calls(&first, 1); /* bounded by WAIT_MS < LONG_DEADLINE_MS */
    assert_int_equal(first.unreachable, 1);
    rpc_uv_stats st = stats_of(1);
    assert_int_equal(st.dial_failures, 1);
    assert_int_equal(st.requests_unreachable, 1);
    assert_int_equal(st.requests_timed_out, 0);

    enum { IN_BACKOFF = 10 };
    tally later = {0};
    for (int i = 0; i < IN_BACKOFF; i++)
        assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, LONG_DEADLINE_MS, on_reply,
                                     &later), 0);
    for (int i = 0; i < 3; i++)
        send_seq(1, 2);
    wait_calls(&later, IN_BACKOFF);
    assert_int_equal(later.unreachable, IN_BACKOFF);
    st = stats_of(1);
    assert_int_equal(st.dial_failures, 1); /* no dial during the backoff */
    assert_int_equal(st.requests_unreachable, 1 + IN_BACKOFF);
    assert_int_equal(st.messages_dropped, 0);

    rpc_uv_config c2;
    rpc_uv_config_init(&c2);
    node_start_cfg(2, port2, &c2);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 2, "127.0.0.1", port2), 0);
    tally back = {0};
    echo_ctx e = {&back, 5};
    uint64_t five = 5;
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &five, 8, LONG_DEADLINE_MS, on_echo, &e),
                     0);
    wait_calls(&back, 1);
    assert_int_equal(back.ok, 1);
    assert_int_equal(back.bad_echo, 0);
    seq_arg s = {&nodes[2], 3};
    assert_true(wait_for(seq_reached, &s));
    lock();
    assert_int_equal(nodes[2].seq_out_of_order, 0);
    unlock();
    node_stop(1);
    node_stop(2);
}

/* A fake node 2 on a raw socket: it handshakes, reads only the first bytes
** of the next frame (a 16 MiB request: half written), then resets the
** connection and stops listening. */
typedef struct fake_peer {
    int listen_fd;
    int port;
    /* guarded by mu */
    bool done;
    const char *error;
    ssize_t request_bytes_read; /* of the frame after the handshake */
    uint8_t request_kind;
} fake_peer;

static bool read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) { /* bounded: SO_RCVTIMEO on fd */
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

static void fake_peer_main(void *arg)
{
    fake_peer *f = arg;
    const char *error = NULL;
    ssize_t n = -1;
    uint8_t buf[RPC_FRAME_HEADER_SIZE + RPC_HANDSHAKE_SIZE];
    int fd = accept(f->listen_fd, NULL, NULL); /* bounded: SO_RCVTIMEO */
    if (fd < 0) {
        error = "accept";
        goto out;
    }
    struct timeval tv = {WAIT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (!read_full(fd, buf, sizeof(buf))) {
        error = "reading the handshake";
        goto out_fd;
    }
    uint8_t hs[RPC_HANDSHAKE_SIZE];
    rpc__handshake h = {RPC_PROTOCOL_VERSION, 0, 2, 1};
    rpc__handshake_encode(&h, hs);
    rpc__header fh = {0};
    fh.version = RPC_PROTOCOL_VERSION;
    fh.kind = RPC_FRAME_HANDSHAKE;
    fh.sender = 2;
    fh.payload_len = RPC_HANDSHAKE_SIZE;
    rpc__frame_encode(&fh, hs, sizeof(hs), buf);
    if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf)) {
        error = "sending the handshake";
        goto out_fd;
    }
    n = recv(fd, buf, 16, 0); /* the first bytes of the request, no more */
    if (n <= 0)
        error = "reading the request";
out_fd:;
    struct linger lg = {1, 0}; /* close with a reset, like a killed process */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
out:
    close(f->listen_fd); /* nobody listens any more: redials fail */
    lock();
    f->done = true;
    f->error = error;
    f->request_bytes_read = n;
    f->request_kind = n >= 6 ? buf[5] : 0;
    uv_cond_broadcast(&cv);
    unlock();
}

static bool fake_done(void *a)
{
    return ((fake_peer *)a)->done;
}

static void fake_peer_listen(fake_peer *f)
{
    memset(f, 0, sizeof(*f));
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->listen_fd >= 0);
    int one = 1;
    setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct timeval tv = {WAIT_MS / 1000, 0};
    setsockopt(f->listen_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->listen_fd, 4), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
}

/* A peer killed mid-stream. Requests written on the connection fail
** DISCONNECTED ("maybe sent"), also one the peer got only the first bytes
** of; a request made after the kill fails UNREACHABLE (the redial finds
** nobody) long before its deadline; the peer comes back on its port and
** requests succeed again after the backoff. */
static void test_peer_killed_mid_stream(void **state)
{
    (void)state;
    fake_peer f;
    fake_peer_listen(&f);
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, fake_peer_main, &f), 0);
    node_start(1);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 2, "127.0.0.1", f.port), 0);
    size_t big_len = RPC_FRAME_PAYLOAD_MAX;
    uint8_t *big = calloc(1, big_len);
    assert_non_null(big);
    tally half = {0};
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, big, big_len, LONG_DEADLINE_MS, on_reply,
                                 &half), 0);
    free(big); /* copied by rpc_request */
    assert_true(wait_for(fake_done, &f));
    uv_thread_join(&th);
    lock();
    if (f.error)
        printf("fake peer: %s\n", f.error);
    assert_null(f.error);
    assert_true(f.request_bytes_read > 0); /* the peer saw part of the frame... */
    assert_int_equal(f.request_kind, RPC_FRAME_REQUEST);
    unlock();
    wait_calls(&half, 1);
    assert_int_equal(half.disconnected, 1); /* ...so it is "maybe sent" */
    assert_int_equal(half.unreachable, 0);

    tally after = {0};
    uint64_t v = 3;
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, LONG_DEADLINE_MS, on_reply, &after),
                     0);
    wait_calls(&after, 1);
    assert_int_equal(after.unreachable, 1);

    /* A real node 2 on that port: written requests it held fail
    ** DISCONNECTED when it is stopped, later ones UNREACHABLE. */
    rpc_uv_config c2;
    rpc_uv_config_init(&c2);
    node_start_cfg(2, f.port, &c2);
    assert_int_equal(echo_until_ok(1, 2, 4), 0);
    tally held = {0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(rpc_request(nodes[1].t, 2, M_HOLD, &v, 8, LONG_DEADLINE_MS, on_reply,
                                     &held), 0);
    seq_arg h = {&nodes[2], 5};
    assert_true(wait_for(held_reached, &h));
    node_stop(2);
    wait_calls(&held, 5);
    assert_int_equal(held.disconnected, 5);
    tally later = {0};
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, LONG_DEADLINE_MS, on_reply, &later),
                     0);
    wait_calls(&later, 1);
    assert_int_equal(later.unreachable, 1);
    /* back again */
    node_start_cfg(2, f.port, &c2);
    assert_int_equal(echo_until_ok(1, 2, 8), 0);
    rpc_uv_stats st = stats_of(1);
    assert_int_equal(st.requests_timed_out, 0);
    assert_int_equal(st.requests_disconnected, 6);
    node_stop(1);
    node_stop(2);
}

/* A seeded random mix: bursts of requests to a stable node 3, to node 2
** which is stopped and restarted on its port at random, and to a node 4
** where nobody listens; one-way messages; short and long deadlines;
** requests never answered (held); node 2's address re-registered; waits
** that let traffic drain. Checks: every callback runs exactly once; a
** request that failed UNREACHABLE was never seen by any handler, one
** answered OK was; no answerable request waits for a long deadline. The
** end stops the nodes in a random order (held requests fail STOPPED or
** DISCONNECTED). MERIDIAN_SEED replays the choices (thread timing varies).
** Bounded: MIX_STEPS steps of at most MIX_BURST_MAX requests. */
#define MIX_STEPS 3000
#define MIX_BURST_MAX 8
#define MIX_REQS_MAX (MIX_STEPS * MIX_BURST_MAX)
#define MIX_CHECK_EVERY 100

typedef struct mix_req {
    uint64_t token;
    bool hold, short_deadline;
    rpc_node_id to;
    int calls; /* guarded by mu */
    int rc;
} mix_req;

/* guarded by mu */
static uint8_t mix_seen[MIX_REQS_MAX]; /* token seen by a handler */
static int mix_answerable_done;        /* callbacks of requests not held */
static int mix_short_done;             /* callbacks of short-deadline requests */

static void mix_handler(void *ctx, rpc_transport *t, const rpc_message *m)
{
    (void)ctx;
    if (m->request_id == 0 || m->payload_len != 9)
        return;
    uint64_t token = 0;
    memcpy(&token, m->payload, 8);
    bool hold = m->payload[8] != 0;
    lock();
    if (token < MIX_REQS_MAX)
        mix_seen[token] = 1;
    unlock();
    if (!hold)
        rpc_respond(t, m->from, m->request_id, 0, &token, 8);
}

static void mix_on_reply(void *ctx, int rc, const rpc_message *m)
{
    mix_req *q = ctx;
    lock();
    q->calls++;
    q->rc = rc;
    if (rc == RPC_OK) {
        uint64_t got = UINT64_MAX;
        if (m->payload_len == 8)
            memcpy(&got, m->payload, 8);
        if (got != q->token)
            q->rc = -1; /* a wrong answer */
    }
    if (!q->hold)
        mix_answerable_done++;
    if (q->short_deadline)
        mix_short_done++;
    uv_cond_broadcast(&cv);
    unlock();
}

static bool mix_answerable_caught_up(void *a)
{
    return mix_answerable_done >= *(int *)a;
}

static bool mix_short_caught_up(void *a)
{
    return mix_short_done >= *(int *)a;
}

static void mix_start(int slot, int port)
{
    rpc_uv_config c;
    rpc_uv_config_init(&c);
    c.listen_host = "127.0.0.1";
    slot_start(slot, (rpc_node_id)slot, port, &c);
}

static void test_random_mix_exactly_once(void **state)
{
    (void)state;
    uint64_t seed = getenv("MERIDIAN_SEED") ? strtoull(getenv("MERIDIAN_SEED"), NULL, 0)
                                            : uv_hrtime();
    printf("test_random_mix_exactly_once: MERIDIAN_SEED=%llu\n", (unsigned long long)seed);
    uint64_t rng = seed;
    int port4 = dead_port();
    mix_start(1, 0);
    mix_start(2, 0);
    mix_start(3, 0);
    int port2 = nodes[2].port;
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 2, "127.0.0.1", port2), 0);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 3, "127.0.0.1", nodes[3].port), 0);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 4, "127.0.0.1", port4), 0);
    mix_req *reqs = calloc(MIX_REQS_MAX, sizeof(*reqs));
    assert_non_null(reqs);
    lock();
    memset(mix_seen, 0, sizeof(mix_seen));
    mix_answerable_done = mix_short_done = 0;
    unlock();
    bool up2 = true;
    int nreq = 0, answerable = 0, shorts = 0, restarts = 0;
    for (int i = 0; i < MIX_STEPS; i++) {
        unsigned r = (unsigned)(rpc__splitmix64(&rng) % 100);
        if (r < 60) {
            int burst = 1 + (int)(rpc__splitmix64(&rng) % MIX_BURST_MAX);
            for (int b = 0; b < burst; b++) {
                mix_req *q = &reqs[nreq];
                q->token = (uint64_t)nreq;
                unsigned d = (unsigned)(rpc__splitmix64(&rng) % 100);
                q->to = d < 45 ? 2 : d < 80 ? 3 : 4;
                q->hold = rpc__splitmix64(&rng) % 10 == 0;
                q->short_deadline = rpc__splitmix64(&rng) % 4 == 0;
                int64_t deadline = q->short_deadline
                                       ? 20 + (int64_t)(rpc__splitmix64(&rng) % 80)
                                       : LONG_DEADLINE_MS;
                uint8_t payload[9];
                memcpy(payload, &q->token, 8);
                payload[8] = q->hold;
                answerable += !q->hold;
                shorts += q->short_deadline;
                nreq++;
                assert_int_equal(rpc_request(nodes[1].t, q->to, M_MARK, payload, 9, deadline,
                                             mix_on_reply, q), 0);
            }
        } else if (r < 70) {
            uint64_t v = (uint64_t)i;
            assert_int_equal(rpc_send(nodes[1].t, 2 + rpc__splitmix64(&rng) % 3, M_SEQ, &v, 8), 0);
        } else if (r < 76) {
            if (up2) {
                node_stop(2);
            } else {
                mix_start(2, port2);
                restarts++;
            }
            up2 = !up2;
        } else if (r < 79) {
            assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 2, "127.0.0.1", port2), 0);
        } else if (r < 85) {
            assert_true(wait_for(mix_answerable_caught_up, &answerable));
        }
        if (i % MIX_CHECK_EVERY == MIX_CHECK_EVERY - 1) {
            /* Nothing answerable waits for a long deadline: it is answered,
            ** fails at once, or its short deadline passes. */
            bool ok = wait_for(mix_answerable_caught_up, &answerable);
            if (!ok)
                printf("seed %llu: step %d: %d of %d answerable requests called back\n",
                       (unsigned long long)seed, i, mix_answerable_done, answerable);
            assert_true(ok);
        }
    }
    assert_true(wait_for(mix_short_caught_up, &shorts));
    /* Stop in a random order: held requests fail STOPPED (node 1 first) or
    ** DISCONNECTED (their node first). */
    bool one_first = rpc__splitmix64(&rng) % 2 == 0;
    if (one_first)
        node_stop(1);
    if (up2)
        node_stop(2);
    node_stop(3);
    if (!one_first)
        node_stop(1);
    int counts[6] = {0}; /* ok, timeout, disconnected, unreachable, stopped, other */
    int by_target[3][6] = {{0}};
    lock();
    for (int i = 0; i < nreq; i++) {
        mix_req *q = &reqs[i];
        if (q->calls != 1 || (q->rc == RPC_ERR_UNREACHABLE && mix_seen[q->token]) ||
            (q->rc == RPC_OK && !mix_seen[q->token]) || (q->hold && q->rc == RPC_OK) ||
            (q->to == 4 && q->rc != RPC_ERR_UNREACHABLE && q->rc != RPC_ERR_TIMEOUT))
            printf("seed %llu: request %d to node %llu (hold %d): %d calls, rc %s, seen %d\n",
                   (unsigned long long)seed, i, (unsigned long long)q->to, q->hold, q->calls,
                   rpc_strerror(q->rc), mix_seen[q->token]);
        assert_int_equal(q->calls, 1);
        if (q->rc == RPC_ERR_UNREACHABLE)
            assert_int_equal(mix_seen[q->token], 0); /* never sent means never seen */
        if (q->rc == RPC_OK)
            assert_int_equal(mix_seen[q->token], 1);
        if (q->hold)
            assert_true(q->rc != RPC_OK);
        if (q->to == 4) /* nobody there: fails fast (or its short deadline first) */
            assert_true(q->rc == RPC_ERR_UNREACHABLE || q->rc == RPC_ERR_TIMEOUT);
        int k = q->rc == RPC_OK                 ? 0
                : q->rc == RPC_ERR_TIMEOUT      ? 1
                : q->rc == RPC_ERR_DISCONNECTED ? 2
                : q->rc == RPC_ERR_UNREACHABLE  ? 3
                : q->rc == RPC_ERR_STOPPED      ? 4
                                                : 5;
        counts[k]++;
        by_target[q->to - 2][k]++;
    }
    unlock();
    printf("mix: %d requests, node 2 restarted %d times, node %d stopped first\n", nreq,
           restarts, one_first ? 1 : 3);
    for (int i = 0; i < 3; i++)
        printf("  to node %d: ok %d timeout %d disconnected %d unreachable %d stopped %d\n", i + 2,
               by_target[i][0], by_target[i][1], by_target[i][2], by_target[i][3],
               by_target[i][4]);
    assert_int_equal(counts[5], 0);
    assert_true(counts[0] > 0 && counts[3] > 0);
    free(reqs);
}

static bool fault_dropped_at_least(void *a)
{
    uint64_t *want = a;
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[2].uv, &st);
    return st.fault_dropped >= *want;
}

static bool fault_delayed_at_least(void *a)
{
    uint64_t *want = a;
    rpc_uv_stats st;
    rpc_uv_get_stats(nodes[2].uv, &st);
    return st.fault_delayed >= *want;
}

/* Test faults (rpc_uv_set_fault): loss of messages and requests (they time
** out), side connections untouched, delayed frames delivered in order,
** delayed responses, per-peer settings, the limits, and a stop with frames
** held (freed: ASan). */
static void test_injected_faults(void **state)
{
    (void)state;
    node_start(1);
    node_start(2);
    node_start(3);
    mesh(3);
    uint64_t v = 7;
    tally warm = {0};
    echo_ctx w = {&warm, 7};
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, WAIT_MS, on_echo, &w), 0);
    wait_calls(&warm, 1);
    assert_int_equal(warm.ok, 1);

    /* bad settings */
    rpc_uv_fault bad = {.delay_ms = RPC_FAULT_DELAY_MS_MAX + 1};
    assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &bad), RPC_ERR_INVALID);
    bad = (rpc_uv_fault){.loss_per_million = 1000001};
    assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &bad), RPC_ERR_INVALID);
    bad = (rpc_uv_fault){.peer = PROV_A, .delay_ms = 1};
    assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &bad), RPC_ERR_INVALID);
    for (int i = 0; i < RPC_FAULTS_MAX; i++) {
        rpc_uv_fault f = {.peer = 100 + (rpc_node_id)i, .delay_ms = 1};
        assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &f), 0);
    }
    rpc_uv_fault more = {.peer = 99, .delay_ms = 1};
    assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &more), RPC_ERR_QUEUE_FULL);
    rpc_uv_fault f0 = {.peer = 100}; /* all zero: removes peer 100's */
    assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &f0), 0);
    assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &more), 0);
    rpc_uv_fault got[RPC_FAULTS_MAX];
    assert_int_equal(rpc_uv_get_faults(nodes[2].uv, got, RPC_FAULTS_MAX), RPC_FAULTS_MAX);
    rpc_uv_clear_faults(nodes[2].uv);
    assert_int_equal(rpc_uv_get_faults(nodes[2].uv, got, RPC_FAULTS_MAX), 0);

    /* Everything node 2 receives from node 1 is lost: messages vanish,
    ** requests time out; node 3 and requests by address still get through. */
    rpc_uv_fault loss = {.peer = 1, .loss_per_million = 1000000};
    assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &loss), 0);
    lock();
    uint64_t received0 = nodes[2].seq_received;
    unlock();
    for (int i = 0; i < 100; i++)
        send_seq(1, 2);
    tally lost = {0};
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, 200, on_reply, &lost), 0);
    wait_calls(&lost, 1);
    assert_int_equal(lost.timeouts, 1);
    uint64_t want_dropped = 101;
    assert_true(wait_for(fault_dropped_at_least, &want_dropped));
    lock();
    assert_int_equal(nodes[2].seq_received, received0);
    unlock();
    tally other = {0};
    echo_ctx o = {&other, 7};
    assert_int_equal(rpc_request(nodes[3].t, 2, M_ECHO, &v, 8, WAIT_MS, on_echo, &o), 0);
    tally side = {0};
    echo_ctx sd = {&side, 7};
    assert_int_equal(rpc_uv_request_addr(nodes[1].uv, "127.0.0.1", nodes[2].port, M_ECHO, &v, 8,
                                         WAIT_MS, on_echo, &sd), 0);
    wait_calls(&other, 1);
    wait_calls(&side, 1);
    assert_int_equal(other.ok, 1);
    assert_int_equal(side.ok, 1);

    /* Cleared: node 1's next message arrives (after a gap, counted once). */
    rpc_uv_clear_faults(nodes[2].uv);
    send_seq(1, 2);
    seq_arg one = {&nodes[2], received0 + 1};
    assert_true(wait_for(seq_reached, &one));
    lock();
    uint64_t disorder0 = nodes[2].seq_out_of_order;
    unlock();

    /* Delay with jitter: every frame arrives, in order, requests answered;
    ** a delay on node 1 holds the responses it receives. */
    rpc_uv_fault slow = {.delay_ms = 5, .jitter_ms = 20};
    assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &slow), 0);
    assert_int_equal(rpc_uv_set_fault(nodes[1].uv, &slow), 0);
    enum { N = 500 };
    tally echoes = {0};
    echo_ctx *ctx = calloc(N, sizeof(*ctx));
    for (int i = 0; i < N; i++) {
        send_seq(1, 2);
        ctx[i].tally = &echoes;
        ctx[i].index = (uint64_t)i;
        uint64_t x = (uint64_t)i;
        assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &x, 8, LONG_DEADLINE_MS, on_echo,
                                     &ctx[i]), 0);
    }
    wait_calls(&echoes, N);
    seq_arg all = {&nodes[2], received0 + 1 + N};
    assert_true(wait_for(seq_reached, &all));
    lock();
    assert_int_equal(echoes.ok, N);
    assert_int_equal(echoes.bad_echo, 0);
    assert_int_equal(nodes[2].seq_out_of_order, disorder0);
    unlock();
    free(ctx);
    assert_true(stats_of(2).fault_delayed >= 2 * N);
    assert_true(stats_of(1).fault_delayed >= N); /* the responses */
    rpc_uv_clear_faults(nodes[1].uv);

    /* Stop with frames held a minute: discarded, nothing leaks. */
    rpc_uv_fault stuck = {.delay_ms = RPC_FAULT_DELAY_MS_MAX};
    assert_int_equal(rpc_uv_set_fault(nodes[2].uv, &stuck), 0);
    uint64_t delayed0 = stats_of(2).fault_delayed;
    for (int i = 0; i < 10; i++)
        send_seq(1, 2);
    tally held = {0};
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, 100, on_reply, &held), 0);
    wait_calls(&held, 1);
    assert_int_equal(held.timeouts, 1);
    uint64_t want_delayed = delayed0 + 11;
    assert_true(wait_for(fault_delayed_at_least, &want_delayed));
    node_stop(1);
    node_stop(2);
    node_stop(3);
}

int main(void)
{
    uv_mutex_init(&mu);
    uv_cond_init(&cv);
    base_log_set_level(getenv("RPC_TEST_DEBUG") ? BASE_LOG_DEBUG : BASE_LOG_WARN);
    if (getenv("RPC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RPC_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes_pipelined),
        cmocka_unit_test(test_three_nodes),
        cmocka_unit_test(test_large_payload),
        cmocka_unit_test(test_timeouts_and_unknown_peer),
        cmocka_unit_test(test_peer_stopped_then_back),
        cmocka_unit_test(test_stop_fails_pending),
        cmocka_unit_test(test_hlc_update_on_receive),
        cmocka_unit_test(test_handshake_refusals),
        cmocka_unit_test(test_bounded_queue_drop_oldest),
        cmocka_unit_test(test_bounded_queue_drop_newest),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_request_addr),
        cmocka_unit_test(test_request_addr_failures),
        cmocka_unit_test(test_restart_with_real_id),
        cmocka_unit_test(test_side_route_limit),
        cmocka_unit_test(test_side_connection_idle_close),
        cmocka_unit_test(test_request_addr_out_of_memory),
        cmocka_unit_test(test_foreign_connection),
        cmocka_unit_test(test_unreachable_fails_fast),
        cmocka_unit_test(test_peer_killed_mid_stream),
        cmocka_unit_test(test_random_mix_exactly_once),
        cmocka_unit_test(test_injected_faults),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    uv_cond_destroy(&cv);
    uv_mutex_destroy(&mu);
    return rc;
}
