/*
** tests/server/test_srv_rebalance.c: the rebalancer's pure parts
** (server/srv_rebalance.c): the planner srv__rebal_plan on table-driven
** cases (new empty nodes fill up, leases spread, repair left to the
** replicate queue, resting ranges, the snapshot limit, draining and leaving
** nodes, the threshold), the balance rule srv__rebal_unbalanced, the
** election lease's codec and srv__rebal_may_take, the cooldown table; and
** seeded random clusters played to the end: every move keeps its rules
** (the source a voter, the target none and usable, each range once per
** plan, quorum) and the counts end within [floor(mean) - 1, ceil(mean) + 1].
** MERIDIAN_SEED=N replays one seed.
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "server/srv_rebalance.h"

#define RANGES_MAX 64
#define NODES_MAX 8
#define RANDOM_SEEDS 300

/* ---- building clusters ----------------------------------------------------------------- */

typedef struct cluster {
    srv__rebal_node nodes[NODES_MAX];
    size_t n_nodes;
    srv__rebal_range ranges[RANGES_MAX];
    size_t n_ranges;
} cluster;

static void add_node(cluster *c, uint64_t id, const char *state) {
    srv__rebal_node *x = &c->nodes[c->n_nodes++];
    *x = (srv__rebal_node){.node_id = id, .live = true, .usable = true};
    if (strcmp(state, "dead") == 0) *x = (srv__rebal_node){.node_id = id};
    if (strcmp(state, "draining") == 0) x->usable = false, x->draining = true;
    if (strcmp(state, "leaving") == 0) x->usable = false; /* decommissioning */
}

/* n ranges (ids from first) on voters a, b, c (c 0: two voters), lease on `lease`. */
static void add_ranges(cluster *c, size_t n, uint64_t first, uint64_t a, uint64_t b, uint64_t v3,
                       uint64_t lease) {
    for (size_t i = 0; i < n; i++) {
        srv__rebal_range *r = &c->ranges[c->n_ranges++];
        *r = (srv__rebal_range){.range_id = first + i, .voters = {a, b, v3},
                                .n_voters = v3 ? 3 : 2, .settled = true, .lease_holder = lease,
                                .size_bytes = 1000};
    }
}

static size_t plan(cluster *c, srv__rebal_move *out, size_t max, srv__rebal_stats *st) {
    srv__rebal_params p = {.replication = 3, .threshold_pct = 10, .replica_moves_max = 4,
                           .lease_moves_max = 4, .snapshots_per_node = 2};
    return srv__rebal_plan(c->nodes, c->n_nodes, c->ranges, c->n_ranges, &p, out, max, st);
}

static void expect_moves(const srv__rebal_move *m, size_t n, srv__rebal_kind kind,
                         const uint64_t (*from_to)[2], size_t want) {
    for (size_t i = 0; i < n; i++)
        printf("  move %zu: %s r%llu %llu -> %llu (%s)\n", i,
               m[i].kind == SRV_REBAL_LEASE ? "lease" : "replica",
               (unsigned long long)m[i].range_id, (unsigned long long)m[i].from,
               (unsigned long long)m[i].to, m[i].reason);
    assert_int_equal(n, want);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(m[i].kind, kind);
        assert_int_equal(m[i].from, from_to[i][0]);
        assert_int_equal(m[i].to, from_to[i][1]);
        for (size_t j = 0; j < i; j++) assert_true(m[j].range_id != m[i].range_id);
    }
}

/* ---- table-driven cases ------------------------------------------------------------------- */

static void test_new_nodes_fill_up(void **state) {
    (void)state;
    cluster c = {0};
    for (uint64_t id = 1; id <= 5; id++) add_node(&c, id, "live");
    add_ranges(&c, 12, 10, 1, 2, 3, 1);
    srv__rebal_move m[8];
    srv__rebal_stats st;
    size_t n = plan(&c, m, 8, &st);
    /* mean 36 / 5 = 7.2: the fullest gives to the emptiest, two snapshots
    ** per receiver at most */
    const uint64_t want[][2] = {{1, 4}, {2, 5}, {3, 4}, {1, 5}};
    expect_moves(m, n, SRV_REBAL_REPLICA, want, 4);
    assert_int_equal(st.usable, 5);
    assert_true(fabs(st.replica_mean - 7.2) < 1e-9);
    assert_int_equal(st.replicas_min, 0);
    assert_int_equal(st.replicas_max, 12);
    assert_string_equal(m[0].reason, "rebalance: node 1 has 12 replicas, mean 7.2");
    /* every lease is on node 1: its ranges keep it, the others move first */
    assert_int_equal(m[0].range_id, 10); /* no choice: all have the lease on 1 */
    for (size_t i = 1; i < n; i++)
        if (m[i].from != 1) assert_true(m[i].range_id != 10);
}

static void test_prefers_lease_elsewhere(void **state) {
    (void)state;
    cluster c = {0};
    for (uint64_t id = 1; id <= 4; id++) add_node(&c, id, "live");
    add_ranges(&c, 3, 10, 1, 2, 3, 1);
    add_ranges(&c, 1, 20, 1, 2, 3, 2); /* r20: lease not on node 1 */
    add_ranges(&c, 2, 30, 1, 2, 3, 1);
    srv__rebal_move m[8];
    size_t n = plan(&c, m, 1, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].from, 1);
    assert_int_equal(m[0].to, 4);
    assert_int_equal(m[0].range_id, 20);
}

static void test_leases_spread(void **state) {
    (void)state;
    cluster c = {0};
    for (uint64_t id = 1; id <= 3; id++) add_node(&c, id, "live");
    add_ranges(&c, 12, 10, 1, 2, 3, 1);
    srv__rebal_move m[8];
    size_t n = plan(&c, m, 8, NULL);
    /* replicas balanced (12 each): leases from node 1 (12, mean 4) to the
    ** voter with the fewest */
    const uint64_t want[][2] = {{1, 2}, {1, 3}, {1, 2}, {1, 3}};
    expect_moves(m, n, SRV_REBAL_LEASE, want, 4);
    assert_string_equal(m[0].reason, "rebalance: node 1 holds 12 leases, mean 4.0");
    /* balanced leases: nothing */
    for (size_t i = 0; i < 12; i++) c.ranges[i].lease_holder = 1 + i % 3;
    assert_int_equal(plan(&c, m, 8, NULL), 0);
}

static void test_repair_first(void **state) {
    (void)state;
    cluster c = {0};
    add_node(&c, 1, "live");
    add_node(&c, 2, "live");
    add_node(&c, 3, "live");
    add_node(&c, 4, "live");
    add_node(&c, 5, "dead");
    add_node(&c, 6, "leaving");
    add_ranges(&c, 1, 10, 1, 2, 0, 1);   /* under-replicated */
    add_ranges(&c, 1, 11, 1, 2, 5, 1);   /* a voter on a dead node */
    add_ranges(&c, 1, 12, 1, 2, 6, 1);   /* a voter on a leaving node */
    add_ranges(&c, 1, 13, 1, 2, 3, 1);
    c.ranges[3].settled = false;         /* a change under way */
    add_ranges(&c, 4, 14, 1, 2, 3, 1);
    for (size_t i = 4; i < 8; i++) c.ranges[i].resting = true; /* moved a moment ago */
    srv__rebal_move m[8];
    srv__rebal_stats st;
    size_t n = plan(&c, m, 8, &st);
    assert_int_equal(n, 0);
    assert_int_equal(st.unsettled, 4);
    /* one range neither resting nor under repair: it moves */
    c.ranges[7].resting = false;
    n = plan(&c, m, 8, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].range_id, 17);
    assert_int_equal(m[0].to, 4);
}

static void test_snapshot_limit_and_targets(void **state) {
    (void)state;
    cluster c = {0};
    for (uint64_t id = 1; id <= 5; id++) add_node(&c, id, "live");
    c.nodes[3].snapshots = 2; /* node 4 receives two snapshots already */
    add_ranges(&c, 12, 10, 1, 2, 3, 2);
    srv__rebal_move m[8];
    size_t n = plan(&c, m, 8, NULL);
    const uint64_t want[][2] = {{1, 5}, {2, 5}};
    expect_moves(m, n, SRV_REBAL_REPLICA, want, 2);
    /* a node holding a voter of every range is no target of any */
    cluster d = {0};
    for (uint64_t id = 1; id <= 4; id++) add_node(&d, id, "live");
    add_ranges(&d, 6, 10, 1, 2, 4, 2);
    add_ranges(&d, 6, 20, 1, 3, 4, 3);
    n = plan(&d, m, 8, NULL);
    for (size_t i = 0; i < n; i++) {
        const srv__rebal_range *r = NULL;
        for (size_t k = 0; k < d.n_ranges; k++)
            if (d.ranges[k].range_id == m[i].range_id) r = &d.ranges[k];
        assert_non_null(r);
        for (size_t v = 0; v < r->n_voters; v++) assert_true(r->voters[v] != m[i].to);
    }
}

static void test_draining_stays(void **state) {
    (void)state;
    cluster c = {0};
    add_node(&c, 1, "live");
    add_node(&c, 2, "live");
    add_node(&c, 3, "draining");
    add_node(&c, 4, "live");
    add_ranges(&c, 6, 10, 1, 2, 3, 1);
    srv__rebal_move m[8];
    srv__rebal_stats st;
    size_t n = plan(&c, m, 8, &st);
    assert_int_equal(st.usable, 3); /* 1, 2, 4: mean 4 */
    assert_int_equal(st.unsettled, 0);
    for (size_t i = 0; i < n; i++) {
        assert_true(m[i].from != 3 && m[i].to != 3);
        if (m[i].kind == SRV_REBAL_REPLICA) assert_int_equal(m[i].to, 4);
    }
    assert_true(n >= 1);
}

static void test_threshold(void **state) {
    (void)state;
    static const struct {
        double mean;
        uint32_t hi, lo;
        bool want;
    } cases[] = {
        {8.4, 9, 8, false},  /* within mean + 1 and mean - 1 */
        {8.4, 9, 7, true},   /* below min(7.56, 7.4), the giver above the mean */
        {8.4, 10, 7, true},  /* above max(9.24, 9.4) */
        {8.4, 10, 9, false}, /* the receiver is not below the mean */
        {8.4, 9, 6, true},
        {8.4, 8, 6, false},  /* the giver not above the mean */
        {12, 12, 0, false},  /* hi not above the mean */
        {7.2, 12, 0, true},
        {4, 5, 4, false},    /* a move would only swap them */
        {100, 109, 95, false}, /* 10 %: 110 */
        {100, 111, 95, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = srv__rebal_unbalanced(cases[i].mean, 10, cases[i].hi, cases[i].lo);
        if (got != cases[i].want)
            printf("case %zu: mean %.1f hi %u lo %u: got %d\n", i, cases[i].mean, cases[i].hi,
                   cases[i].lo, got);
        assert_int_equal(got, cases[i].want);
    }
}

static void test_lease_codec_and_election(void **state) {
    (void)state;
    base_buf b = {0};
    srv__rebal_lease l = {.node_id = 4, .expiry_wall_ns = 1700000000123456789LL}, got;
    assert_int_equal(srv__rebal_lease_encode(&l, &b), SRV_OK);
    assert_int_equal(srv__rebal_lease_decode(b.data, b.len, &got), SRV_OK);
    assert_int_equal(got.node_id, 4);
    assert_true(got.expiry_wall_ns == l.expiry_wall_ns);
    assert_int_equal(srv__rebal_lease_decode(b.data, b.len - 1, &got), SRV_ERR_CORRUPT);
    b.data[0] = 9; /* unknown version */
    assert_int_equal(srv__rebal_lease_decode(b.data, b.len, &got), SRV_ERR_CORRUPT);
    base_buf_reset(&b);
    srv__rebal_lease zero = {.node_id = 0, .expiry_wall_ns = 5};
    assert_int_equal(srv__rebal_lease_encode(&zero, &b), SRV_OK);
    assert_int_equal(srv__rebal_lease_decode(b.data, b.len, &got), SRV_ERR_CORRUPT);
    base_buf_free(&b);
    uint8_t key[SRV_KEY_SIZE_MAX];
    size_t kl = srv__rebal_lease_key(key);
    assert_true(kl > SRV_SYS_PREFIX_LEN);
    assert_memory_equal(key, SRV_SYS_PREFIX, SRV_SYS_PREFIX_LEN);

    static const struct {
        bool present;
        uint64_t holder;
        int64_t expiry, now;
        uint64_t self;
        bool want;
    } cases[] = {
        {false, 0, 0, 100, 1, true},   /* none stored */
        {true, 2, 200, 100, 1, false}, /* another's, not expired */
        {true, 2, 200, 200, 1, true},  /* another's, expired */
        {true, 1, 200, 100, 1, true},  /* ours: renewed */
        {true, 1, 50, 100, 1, true},   /* ours, expired */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        srv__rebal_lease cur = {.node_id = cases[i].holder, .expiry_wall_ns = cases[i].expiry};
        assert_int_equal(srv__rebal_may_take(cases[i].present ? &cur : NULL, cases[i].self,
                                             cases[i].now),
                         cases[i].want);
    }
}

static void test_cooldown_table(void **state) {
    (void)state;
    srv__rebal *r = calloc(1, sizeof *r);
    assert_non_null(r);
    srv__rebal_init(r);
    int64_t s = 1000000000LL;
    srv__rebal_note_moved(r, 7, 10 * s);
    assert_true(srv__rebal_resting(r, 7, 10 * s + s, 60000));
    assert_false(srv__rebal_resting(r, 7, 71 * s, 60000));
    assert_false(srv__rebal_resting(r, 8, 10 * s, 60000));
    assert_false(srv__rebal_resting(r, 7, 10 * s + s, 0)); /* cooldown 0: never resting */
    srv__rebal_note_moved(r, 7, 20 * s); /* moved again: from then */
    assert_true(srv__rebal_resting(r, 7, 75 * s, 60000));
    for (uint64_t id = 100; id < 100 + SRV_REBAL_RECENT_MAX; id++)
        srv__rebal_note_moved(r, id, 30 * s + (int64_t)id);
    assert_int_equal(r->n_recent, SRV_REBAL_RECENT_MAX);
    assert_false(srv__rebal_resting(r, 7, 31 * s, 60000)); /* the oldest went */
    assert_true(srv__rebal_resting(r, 100 + SRV_REBAL_RECENT_MAX - 1, 31 * s, 60000));
    srv__rebal_destroy(r);
    free(r);
}

/* ---- seeded random clusters played to the end ------------------------------------------------ */

static uint64_t rng_state;
static uint64_t rng(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static srv__rebal_range *range_of(cluster *c, uint64_t id) {
    for (size_t i = 0; i < c->n_ranges; i++)
        if (c->ranges[i].range_id == id) return &c->ranges[i];
    return NULL;
}

static bool voter_of(const srv__rebal_range *r, uint64_t id) {
    for (size_t i = 0; i < r->n_voters; i++)
        if (r->voters[i] == id) return true;
    return false;
}

static const srv__rebal_node *node_of(const cluster *c, uint64_t id) {
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].node_id == id) return &c->nodes[i];
    return NULL;
}

static void one_seed(uint64_t seed) {
    rng_state = seed;
    cluster c = {0};
    size_t old = 3 + rng() % 3, added = 1 + rng() % 3; /* 3..5 old nodes, 1..3 new */
    for (uint64_t id = 1; id <= old + added; id++) add_node(&c, id, "live");
    size_t n_ranges = 4 + rng() % (RANGES_MAX - 4);
    for (size_t k = 0; k < n_ranges; k++) { /* three distinct old nodes */
        uint64_t v[3];
        for (size_t i = 0; i < 3; i++) {
            bool dup;
            do {
                v[i] = 1 + rng() % old;
                dup = false;
                for (size_t j = 0; j < i; j++) dup |= v[j] == v[i];
            } while (dup);
        }
        add_ranges(&c, 1, 100 + k, v[0], v[1], v[2], v[rng() % 3]);
        c.ranges[c.n_ranges - 1].size_bytes = (int64_t)(rng() % 100000);
    }
    srv__rebal_move m[8];
    size_t rounds = 0, moves = 0;
    for (; rounds < 500; rounds++) {
        srv__rebal_stats st;
        size_t n = plan(&c, m, 8, &st);
        if (n == 0) break;
        for (size_t i = 0; i < n; i++) {
            srv__rebal_range *r = range_of(&c, m[i].range_id);
            assert_non_null(r);
            assert_true(r->settled && !r->resting);
            assert_true(voter_of(r, m[i].from));
            assert_true(node_of(&c, m[i].to) != NULL && node_of(&c, m[i].to)->usable);
            for (size_t j = 0; j < i; j++) assert_true(m[j].range_id != m[i].range_id);
            if (m[i].kind == SRV_REBAL_LEASE) {
                assert_true(r->lease_holder == m[i].from && voter_of(r, m[i].to));
                r->lease_holder = m[i].to;
            } else {
                assert_false(voter_of(r, m[i].to));
                for (size_t v = 0; v < r->n_voters; v++)
                    if (r->voters[v] == m[i].from) r->voters[v] = m[i].to;
                if (r->lease_holder == m[i].from) r->lease_holder = r->voters[0];
            }
            moves++;
        }
    }
    assert_true(rounds < 500); /* it converges */
    /* the spread reached */
    uint32_t count[NODES_MAX + 1] = {0}, leases[NODES_MAX + 1] = {0};
    for (size_t k = 0; k < c.n_ranges; k++) {
        for (size_t v = 0; v < c.ranges[k].n_voters; v++) count[c.ranges[k].voters[v]]++;
        leases[c.ranges[k].lease_holder]++;
    }
    /* within the band the rule keeps: [min(mean * 0.9, mean - 1), max(mean * 1.1, mean + 1)] */
    double mean = 3.0 * (double)c.n_ranges / (double)c.n_nodes;
    double lmean = (double)c.n_ranges / (double)c.n_nodes;
    double lo = floor(fmin(mean * 0.9, mean - 1)), hi = ceil(fmax(mean * 1.1, mean + 1));
    double llo = floor(fmin(lmean * 0.9, lmean - 1)), lhi = ceil(fmax(lmean * 1.1, lmean + 1));
    for (uint64_t id = 1; id <= c.n_nodes; id++) {
        if (count[id] < lo || count[id] > hi || leases[id] < llo || leases[id] > lhi)
            printf("seed %llu: node %llu holds %u replicas (mean %.1f), %u leases (mean %.1f)\n",
                   (unsigned long long)seed, (unsigned long long)id, count[id], mean, leases[id],
                   lmean);
        if (leases[id] > lhi || leases[id] < llo) { /* what a failure looks like */
            for (uint64_t j = 1; j <= c.n_nodes; j++)
                printf(" n%llu: %u replicas, %u leases\n", (unsigned long long)j, count[j],
                       leases[j]);
            for (size_t k = 0; k < c.n_ranges; k++)
                if (c.ranges[k].lease_holder == id)
                    printf(" r%llu {%llu,%llu,%llu}\n", (unsigned long long)c.ranges[k].range_id,
                           (unsigned long long)c.ranges[k].voters[0],
                           (unsigned long long)c.ranges[k].voters[1],
                           (unsigned long long)c.ranges[k].voters[2]);
        }
        assert_true(count[id] >= lo && count[id] <= hi);
        assert_true(leases[id] >= llo && leases[id] <= lhi);
    }
    (void)moves;
}

static void test_random_clusters_converge(void **state) {
    (void)state;
    const char *env = getenv("MERIDIAN_SEED");
    if (env != NULL) {
        uint64_t seed = strtoull(env, NULL, 10);
        printf("MERIDIAN_SEED=%llu\n", (unsigned long long)seed);
        one_seed(seed);
        return;
    }
    uint64_t base = 0x5EB41A;
    for (uint64_t s = 0; s < RANDOM_SEEDS; s++) {
        one_seed(base + s);
    }
    printf("%d random clusters balanced (seeds %llu..%llu; MERIDIAN_SEED=N replays one)\n",
           RANDOM_SEEDS, (unsigned long long)base, (unsigned long long)(base + RANDOM_SEEDS - 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_nodes_fill_up),
        cmocka_unit_test(test_prefers_lease_elsewhere),
        cmocka_unit_test(test_leases_spread),
        cmocka_unit_test(test_repair_first),
        cmocka_unit_test(test_snapshot_limit_and_targets),
        cmocka_unit_test(test_draining_stays),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_lease_codec_and_election),
        cmocka_unit_test(test_cooldown_table),
        cmocka_unit_test(test_random_clusters_converge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
