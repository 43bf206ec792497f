/*
** tests/rpc/test_rpc_uv.c: real transports on loopback (port 0).
** Two and three nodes exchanging requests and one-way messages (in order,
** thousands in flight, batched), simultaneous dials, a 16 MiB payload,
** request timeouts, unknown peers, a peer stopped (pending requests fail,
** reconnect with backoff works once it is back), HLC update on receive,
** handshake refusals (cluster id, wrong node), bounded queues with drops.
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
#include <uv.h>

#include "base/base.h"
#include "rpc/rpc.h"

#define WAIT_MS 20000 /* bound on every wait: a hang becomes a failure */
#define MAXN 4

#define M_SEQ 1   /* one-way: payload u64 sequence */
#define M_ECHO 2  /* request: echo the payload */
#define M_HOLD 3  /* request: remembered, never answered */
#define M_SUM 4   /* request: answer with the crc32c of the payload */

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
} node;

static node nodes[MAXN + 1];

typedef struct tally {
    int calls, ok, timeouts, disconnected, stopped, unknown, other;
    int bad_echo;
    uint32_t last_sum;
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
    default: t->other++; break;
    }
    if (rc == RPC_OK && m->payload_len == 4)
        memcpy(&t->last_sum, m->payload, 4);
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

static void handler(void *ctx, rpc_transport *t, const rpc_message *m)
{
    node *n = ctx;
    switch (m->method) {
    case M_SEQ: {
        uint64_t seq = 0;
        if (m->payload_len == 8)
            memcpy(&seq, m->payload, 8);
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
    default:
        break;
    }
}

static void node_start_cfg(rpc_node_id id, int port, rpc_uv_config *cfg)
{
    node *n = &nodes[id];
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->mc.now_ns = 1700000000000000000LL;
    assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&n->mc), HLC_DEFAULT_MAX_OFFSET_NS,
                                   &n->clock), 0);
    cfg->node_id = id;
    cfg->listen_host = "127.0.0.1";
    cfg->listen_port = port;
    cfg->clock = n->clock;
    cfg->handler = handler;
    cfg->handler_ctx = n;
    cfg->random_seed = id;
    cfg->reconnect_base_ms = 10;
    cfg->reconnect_max_ms = 100;
    int rc = rpc_uv_start(cfg, &n->uv);
    assert_int_equal(rc, 0);
    n->t = rpc_uv_transport(n->uv);
    n->port = rpc_uv_listen_port(n->uv);
    assert_true(n->port > 0);
    assert_true(rpc_node(n->t) == id);
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
    assert_true(wait_for(calls_reached, &c));
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

    /* While node 2 is down: a request waits in the queue, dials fail with
    ** backoff. Then node 2 comes back on the same port and it goes through. */
    tally later = {0};
    echo_ctx e = {&later, 7};
    uint64_t seven = 7;
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &seven, 8, WAIT_MS, on_echo, &e), 0);
    assert_true(wait_for(dial_failed_twice, nodes[1].uv));
    rpc_uv_config cfg;
    rpc_uv_config_init(&cfg);
    node_start_cfg(2, port2, &cfg);
    wait_calls(&later, 1);
    lock();
    assert_int_equal(later.ok, 1);
    assert_int_equal(later.bad_echo, 0);
    unlock();
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
    assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, 300, on_reply, &t), 0);
    wait_calls(&t, 1);
    assert_int_equal(t.timeouts, 1); /* never connected: waited in the queue */
    assert_true(wait_for(handshake_failed, nodes[1].uv));
    assert_true(wait_for(handshake_failed, nodes[2].uv));
    node_stop(1);
    node_stop(2);

    /* Wrong node at an address: node 1 thinks node 3 lives at node 2's port. */
    node_start(1);
    node_start(2);
    assert_int_equal(rpc_uv_add_peer(nodes[1].uv, 3, "127.0.0.1", nodes[2].port), 0);
    tally t3 = {0};
    assert_int_equal(rpc_request(nodes[1].t, 3, M_ECHO, &v, 8, 300, on_reply, &t3), 0);
    wait_calls(&t3, 1);
    assert_int_equal(t3.timeouts, 1);
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
    assert_int_equal(t.other, 1); /* RPC_ERR_QUEUE_FULL */
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
        /* recovered: a fresh request goes through (reconnecting if needed) */
        tally after = {0};
        uint64_t v = 99;
        echo_ctx e = {&after, 99};
        assert_int_equal(rpc_request(nodes[1].t, 2, M_ECHO, &v, 8, WAIT_MS, on_echo, &e), 0);
        {
            calls_arg c = {&after, 1};
            bool done = wait_for(calls_reached, &c);
            if (!done)
                printf("k=%ld: the request after the injection did not complete\n", ks[ki]);
            assert_true(done);
        }
        lock();
        if (after.ok != 1)
            printf("k=%ld: after injection: timeouts %d disconnected %d unknown %d other %d\n",
                   ks[ki], after.timeouts, after.disconnected, after.unknown, after.other);
        assert_int_equal(after.ok, 1);
        unlock();
        node_stop(1);
        node_stop(2);
        lock();
        assert_int_equal(t.calls, accepted); /* still exactly once */
        unlock();
    }
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
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    uv_cond_destroy(&cv);
    uv_mutex_destroy(&mu);
    return rc;
}
