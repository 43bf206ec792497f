/*
** tests/rpc/test_rpc_sim.c: the simulated twin. Determinism (same seed =>
** same delivery trace, different seed => different trace), FIFO per pair
** by default, symmetric and one-way partitions (and frames in flight lost
** when a partition starts), drop / duplicate / reorder statistics, request
** callbacks exactly once (responses, timeouts, duplicates, unknown peers,
** freeing the net), HLC update on delivery. Seeds are printed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "rpc/rpc.h"

#define NODES 3
#define METHOD_SEQ 1  /* one-way: payload = u64 sequence number */
#define METHOD_ECHO 2 /* request: answered with the same payload */
#define METHOD_HOLD 3 /* request: never answered */

typedef struct world {
    rpc_sim_net *net;
    rpc_transport *t[NODES + 1];
    uint64_t next_seq[NODES + 1][NODES + 1];  /* sender side */
    uint64_t last_seen[NODES + 1][NODES + 1]; /* receiver side */
    uint64_t received, out_of_order;
    uint64_t trace_hash, trace_events;
} world;

typedef struct reply {
    int calls;
    int rc;
    int32_t status;
    uint64_t value;
} reply;

static void on_reply(void *ctx, int rc, const rpc_message *m)
{
    reply *r = ctx;
    r->calls++;
    r->rc = rc;
    if (rc == RPC_OK) {
        r->status = m->status;
        if (m->payload_len == 8)
            memcpy(&r->value, m->payload, 8);
    }
}

static void handler(void *ctx, rpc_transport *t, const rpc_message *m)
{
    world *w = ctx;
    rpc_node_id self = rpc_node(t);
    if (m->method == METHOD_SEQ) {
        uint64_t seq;
        assert_int_equal(m->payload_len, 8);
        memcpy(&seq, m->payload, 8);
        w->received++;
        if (seq < w->last_seen[m->from][self])
            w->out_of_order++;
        else
            w->last_seen[m->from][self] = seq;
    } else if (m->method == METHOD_ECHO) {
        assert_int_equal(rpc_respond(t, m->from, m->request_id, 7, m->payload, m->payload_len), 0);
    }
}

static void on_trace(void *ctx, const rpc_sim_event *ev)
{
    world *w = ctx;
    uint64_t fields[7] = {(uint64_t)ev->time_ns, ev->kind, ev->from, ev->to,
                          (uint64_t)ev->frame_kind, ev->request_id, ev->payload_len};
    for (int i = 0; i < 7; i++) {
        w->trace_hash ^= fields[i];
        w->trace_hash *= 0x100000001B3ull; /* FNV-style mixing */
    }
    w->trace_events++;
}

static void world_init(world *w, const rpc_sim_config *cfg, hlc_clock **clocks)
{
    memset(w, 0, sizeof(*w));
    w->trace_hash = 0xCBF29CE484222325ull;
    assert_int_equal(rpc_sim_net_new(cfg, &w->net), 0);
    rpc_sim_set_trace(w->net, on_trace, w);
    for (rpc_node_id id = 1; id <= NODES; id++) {
        assert_int_equal(rpc_sim_add_node(w->net, id, clocks ? clocks[id] : NULL, &w->t[id]), 0);
        rpc_set_handler(w->t[id], handler, w);
        assert_true(rpc_node(w->t[id]) == id);
    }
}

static void send_seq(world *w, rpc_node_id from, rpc_node_id to)
{
    uint64_t seq = ++w->next_seq[from][to];
    assert_int_equal(rpc_send(w->t[from], to, METHOD_SEQ, &seq, 8), 0);
}

/* A fixed workload: messages among all pairs, requests, time advancing. */
static void workload(world *w, reply *replies, int nreplies)
{
    for (int round = 0; round < 200; round++) {
        for (rpc_node_id a = 1; a <= NODES; a++)
            for (rpc_node_id b = 1; b <= NODES; b++)
                if (a != b)
                    send_seq(w, a, b);
        if (round < nreplies) {
            uint64_t v = (uint64_t)round;
            assert_int_equal(rpc_request(w->t[1 + round % NODES], 1 + (round + 1) % NODES,
                                         METHOD_ECHO, &v, 8, 50, on_reply, &replies[round]),
                             0);
        }
        rpc_sim_run_until(w->net, rpc_sim_now_ns(w->net) + 1000000);
    }
    rpc_sim_run_until(w->net, rpc_sim_now_ns(w->net) + 1000000000LL);
    assert_int_equal(rpc_sim_pending(w->net), 0);
}

static uint64_t run_seed(uint64_t seed, rpc_sim_stats *st)
{
    rpc_sim_config cfg;
    rpc_sim_config_init(&cfg, seed);
    cfg.drop_per_million = 50000;
    cfg.duplicate_per_million = 50000;
    cfg.reorder_per_million = 50000;
    world w;
    world_init(&w, &cfg, NULL);
    reply replies[100];
    memset(replies, 0, sizeof(replies));
    workload(&w, replies, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(replies[i].calls, 1); /* exactly once, even with dup/drop */
    if (st)
        rpc_sim_get_stats(w.net, st);
    uint64_t h = w.trace_hash ^ w.trace_events;
    rpc_sim_net_free(w.net);
    return h;
}

static void test_determinism(void **state)
{
    (void)state;
    uint64_t seed = 0x5EED0001;
    printf("rpc sim determinism: seed %llu\n", (unsigned long long)seed);
    uint64_t a = run_seed(seed, NULL);
    uint64_t b = run_seed(seed, NULL);
    uint64_t c = run_seed(seed + 1, NULL);
    assert_true(a == b);
    assert_true(a != c);
}

static void test_fifo_by_default(void **state)
{
    (void)state;
    rpc_sim_config cfg;
    rpc_sim_config_init(&cfg, 11);
    cfg.latency_min_ns = 100000;
    cfg.latency_max_ns = 9000000; /* wide: without the clamp it would reorder */
    world w;
    world_init(&w, &cfg, NULL);
    reply replies[50];
    memset(replies, 0, sizeof(replies));
    workload(&w, replies, 50);
    assert_int_equal(w.out_of_order, 0);
    assert_int_equal(w.received, 200 * NODES * (NODES - 1));
    for (int i = 0; i < 50; i++) {
        assert_int_equal(replies[i].calls, 1);
        assert_int_equal(replies[i].rc, RPC_OK);
        assert_int_equal(replies[i].status, 7);
        assert_true(replies[i].value == (uint64_t)i);
    }
    rpc_sim_stats st;
    rpc_sim_get_stats(w.net, &st);
    assert_true(st.dropped == 0 && st.duplicated == 0 && st.reordered == 0 && st.blocked == 0);
    assert_true(st.delivered == st.sent);
    rpc_sim_net_free(w.net);
}

static void test_statistics(void **state)
{
    (void)state;
    uint64_t seed = 0xD00D;
    printf("rpc sim statistics: seed %llu\n", (unsigned long long)seed);
    rpc_sim_config cfg;
    rpc_sim_config_init(&cfg, seed);
    cfg.drop_per_million = 100000;
    cfg.duplicate_per_million = 100000;
    cfg.reorder_per_million = 100000;
    world w;
    world_init(&w, &cfg, NULL);
    for (int i = 0; i < 10000; i++) {
        send_seq(&w, 1, 2);
        if (i % 10 == 0)
            rpc_sim_run_until(w.net, rpc_sim_now_ns(w.net) + 500000);
    }
    rpc_sim_run_until(w.net, rpc_sim_now_ns(w.net) + 1000000000LL);
    rpc_sim_stats st;
    rpc_sim_get_stats(w.net, &st);
    printf("  sent %llu delivered %llu dropped %llu duplicated %llu reordered %llu "
           "out-of-order seen %llu\n",
           (unsigned long long)st.sent, (unsigned long long)st.delivered,
           (unsigned long long)st.dropped, (unsigned long long)st.duplicated,
           (unsigned long long)st.reordered, (unsigned long long)w.out_of_order);
    assert_int_equal(st.sent, 10000);
    /* 10% each, binomial sd ~ 30: generous 700..1300 bounds */
    assert_in_range(st.dropped, 700, 1300);
    assert_in_range(st.duplicated, 700, 1300);
    assert_true(st.reordered > 500);
    assert_true(w.out_of_order > 0);
    assert_int_equal(st.delivered, st.sent - st.dropped + st.duplicated);
    assert_int_equal(st.delivered, w.received);
    rpc_sim_net_free(w.net);
}

static void test_partitions(void **state)
{
    (void)state;
    rpc_sim_config cfg;
    rpc_sim_config_init(&cfg, 3);
    world w;
    world_init(&w, &cfg, NULL);

    /* symmetric: nothing crosses either way; requests time out */
    rpc_sim_partition_pair(w.net, 1, 2, true);
    send_seq(&w, 1, 2);
    send_seq(&w, 2, 1);
    send_seq(&w, 1, 3);
    reply r1 = {0};
    uint64_t v = 5;
    assert_int_equal(rpc_request(w.t[1], 2, METHOD_ECHO, &v, 8, 100, on_reply, &r1), 0);
    assert_int_equal(r1.calls, 0); /* never inside rpc_request */
    rpc_sim_run_until(w.net, rpc_sim_now_ns(w.net) + 99000000);
    assert_int_equal(r1.calls, 0);
    rpc_sim_run_until(w.net, rpc_sim_now_ns(w.net) + 2000000);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.rc, RPC_ERR_TIMEOUT);
    assert_int_equal(w.received, 1); /* only 1 -> 3 */
    rpc_sim_stats st;
    rpc_sim_get_stats(w.net, &st);
    assert_int_equal(st.blocked, 3);
    assert_int_equal(st.timeouts, 1);

    /* one-way: 1 -> 2 blocked, 2 -> 1 open. A request 2 -> 1 reaches 1 but
    ** its answer is lost: timeout. Messages 2 -> 1 arrive. */
    rpc_sim_heal_all(w.net);
    rpc_sim_partition(w.net, 1, 2, true);
    send_seq(&w, 2, 1);
    send_seq(&w, 1, 2);
    reply r2 = {0};
    assert_int_equal(rpc_request(w.t[2], 1, METHOD_ECHO, &v, 8, 100, on_reply, &r2), 0);
    rpc_sim_run_until(w.net, rpc_sim_now_ns(w.net) + 200000000);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.rc, RPC_ERR_TIMEOUT);
    assert_int_equal(w.received, 2);

    /* frames in flight when a partition starts are lost */
    rpc_sim_heal_all(w.net);
    send_seq(&w, 3, 1);
    rpc_sim_isolate(w.net, 3, true);
    rpc_sim_run_until(w.net, rpc_sim_now_ns(w.net) + 100000000);
    assert_int_equal(w.received, 2);

    /* healed: everything works again */
    rpc_sim_heal_all(w.net);
    reply r3 = {0};
    assert_int_equal(rpc_request(w.t[3], 1, METHOD_ECHO, &v, 8, 100, on_reply, &r3), 0);
    send_seq(&w, 3, 1);
    while (rpc_sim_step(w.net)) {
    }
    assert_int_equal(r3.calls, 1);
    assert_int_equal(r3.rc, RPC_OK);
    assert_true(r3.value == 5);
    assert_int_equal(w.received, 3);
    rpc_sim_net_free(w.net);
}

static void test_requests_edge_cases(void **state)
{
    (void)state;
    rpc_sim_config cfg;
    rpc_sim_config_init(&cfg, 5);
    cfg.duplicate_per_million = 1000000; /* every frame twice */
    world w;
    world_init(&w, &cfg, NULL);
    uint64_t v = 9;
    reply dup = {0}, unknown = {0}, held = {0}, nohandler = {0};
    assert_int_equal(rpc_request(w.t[1], 2, METHOD_ECHO, &v, 8, 1000, on_reply, &dup), 0);
    assert_int_equal(rpc_request(w.t[1], 42, METHOD_ECHO, &v, 8, 1000, on_reply, &unknown), 0);
    assert_int_equal(rpc_request(w.t[1], 2, METHOD_HOLD, &v, 8, 100000, on_reply, &held), 0);
    rpc_set_handler(w.t[3], NULL, NULL);
    assert_int_equal(rpc_request(w.t[1], 3, METHOD_ECHO, &v, 8, 1000, on_reply, &nohandler), 0);
    /* bad arguments never call back */
    assert_int_equal(rpc_request(w.t[1], 1, METHOD_ECHO, &v, 8, 1000, on_reply, &dup), RPC_ERR_INVALID);
    assert_int_equal(rpc_request(w.t[1], 2, METHOD_ECHO, &v, 8, 0, on_reply, &dup), RPC_ERR_INVALID);
    assert_int_equal(rpc_send(w.t[1], 0, METHOD_SEQ, &v, 8), RPC_ERR_INVALID);
    assert_int_equal(rpc_send(w.t[1], 2, METHOD_SEQ, NULL, (size_t)RPC_FRAME_PAYLOAD_MAX + 1),
                     RPC_ERR_INVALID);
    rpc_sim_run_until(w.net, rpc_sim_now_ns(w.net) + 2000000000LL);
    assert_int_equal(dup.calls, 1);
    assert_int_equal(dup.rc, RPC_OK);
    assert_int_equal(unknown.calls, 1);
    assert_int_equal(unknown.rc, RPC_ERR_UNKNOWN_PEER);
    assert_int_equal(nohandler.calls, 1);
    assert_int_equal(nohandler.rc, RPC_OK);
    assert_int_equal(nohandler.status, RPC_ERR_NO_HANDLER);
    assert_int_equal(held.calls, 0);
    rpc_sim_stats st;
    rpc_sim_get_stats(w.net, &st);
    assert_true(st.late_responses >= 3); /* duplicated answers ignored */
    rpc_sim_net_free(w.net);
    assert_int_equal(held.calls, 1);
    assert_int_equal(held.rc, RPC_ERR_STOPPED);
}

static void test_hlc_on_delivery(void **state)
{
    (void)state;
    hlc_manual_clock mc[NODES + 1];
    hlc_clock *clocks[NODES + 1] = {0};
    for (int i = 1; i <= NODES; i++) {
        mc[i].now_ns = 1700000000000000000LL;
        assert_int_equal(hlc_clock_new(hlc_manual_clock_as_physical(&mc[i]),
                                       HLC_DEFAULT_MAX_OFFSET_NS, &clocks[i]), 0);
    }
    mc[1].now_ns += 10LL * 1000 * 1000 * 1000; /* node 1 is 10 s ahead */
    rpc_sim_config cfg;
    rpc_sim_config_init(&cfg, 8);
    world w;
    world_init(&w, &cfg, clocks);
    hlc_timestamp before = hlc_now(clocks[1]);
    send_seq(&w, 1, 2);
    while (rpc_sim_step(w.net)) {
    }
    assert_true(hlc_less(before, hlc_now(clocks[2])));
    assert_false(hlc_less(before, hlc_now(clocks[3]))); /* untouched */
    rpc_sim_net_free(w.net);
    for (int i = 1; i <= NODES; i++)
        hlc_clock_free(clocks[i]);
}

/* Out of memory injected at every allocation of a small scenario in turn:
** calls fail with RPC_ERR_NOMEM (or the frame is lost), nothing crashes or
** leaks (ASan), and every accepted request still calls back exactly once. */
static void oom_handler(void *ctx, rpc_transport *t, const rpc_message *m)
{
    (void)ctx;
    if (m->request_id)
        (void)rpc_respond(t, m->from, m->request_id, 0, m->payload, m->payload_len);
}

static void test_out_of_memory_everywhere(void **state)
{
    (void)state;
    int completed_without_failure = 0;
    for (long k = 0; k < 400 && !completed_without_failure; k++) {
        base_alloc_fail_after(k);
        rpc_sim_config cfg;
        rpc_sim_config_init(&cfg, 77);
        cfg.duplicate_per_million = 300000;
        rpc_sim_net *net = NULL;
        if (rpc_sim_net_new(&cfg, &net) != RPC_OK) {
            base_alloc_fail_after(-1);
            continue;
        }
        rpc_transport *t[3] = {0};
        bool ok = true;
        for (int i = 1; i <= 2 && ok; i++) {
            ok = rpc_sim_add_node(net, (rpc_node_id)i, NULL, &t[i]) == RPC_OK;
            if (ok)
                rpc_set_handler(t[i], oom_handler, NULL);
        }
        reply replies[20];
        memset(replies, 0, sizeof(replies));
        bool accepted[20] = {false};
        int failures = ok ? 0 : 1;
        for (int i = 0; i < 20 && ok; i++) {
            uint64_t v = (uint64_t)i;
            int rc = rpc_request(t[1], 2, METHOD_ECHO, &v, 8, 100, on_reply, &replies[i]);
            accepted[i] = rc == RPC_OK;
            if (rc != RPC_OK) {
                assert_int_equal(rc, RPC_ERR_NOMEM);
                failures++;
            }
            rc = rpc_send(t[2], 1, METHOD_HOLD, &v, 8);
            assert_true(rc == RPC_OK || rc == RPC_ERR_NOMEM);
            failures += rc != RPC_OK;
            rpc_sim_run_until(net, rpc_sim_now_ns(net) + 1000000);
        }
        if (ok)
            rpc_sim_run_until(net, rpc_sim_now_ns(net) + 1000000000LL);
        rpc_sim_net_free(net);
        base_alloc_fail_after(-1);
        for (int i = 0; i < 20; i++)
            assert_int_equal(replies[i].calls, accepted[i] ? 1 : 0);
        if (ok && failures == 0) {
            bool all_ok = true;
            for (int i = 0; i < 20; i++)
                all_ok = all_ok && replies[i].rc == RPC_OK;
            completed_without_failure = all_ok;
        }
    }
    assert_true(completed_without_failure); /* the loop reached the end of the scenario */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_fifo_by_default),
        cmocka_unit_test(test_statistics),
        cmocka_unit_test(test_partitions),
        cmocka_unit_test(test_requests_edge_cases),
        cmocka_unit_test(test_hlc_on_delivery),
        cmocka_unit_test(test_out_of_memory_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
