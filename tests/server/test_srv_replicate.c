/*
** tests/server/test_srv_replicate.c: the replicate queue's plan
** (srv__repl_plan_range, pure), the lease target of a leaving node
** (srv__repl_lease_target) and the decommission refusal
** (srv__decommission_check): the data-driven cases of
** testdata/replicate.txt (MERIDIAN_REWRITE=1 rewrites them), and seeded
** random memberships and liveness states checked against the rules: a
** target is live, neither draining nor decommissioning and holds no replica
** of the range, and has
** the fewest replicas of such nodes (a learner of the range first); the
** leader is never a victim; a remove without a target only when the range
** keeps `replication` voters; live voters a majority after every step;
** NO_TARGET only when no node could take it; a decommissioning voter is
** never left alone (NOTHING), a draining one is never moved; a lease target
** is a usable voter other than the leader, with the fewest leases; the
** same answer twice.
** MERIDIAN_SEED=N replays one seed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "server/srv_int.h"
#include "tests/lib/datadriven.h"

#define RANDOM_ROUNDS 20000
#define NODES_MAX 8

static uint64_t rng_state;
static uint64_t rng(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static const char *reason_name(srv__repl_reason r) {
    switch (r) {
    case SRV_REPL_NOTHING: return "nothing";
    case SRV_REPL_REPLACE_DEAD: return "replace-dead";
    case SRV_REPL_DECOMMISSION: return "decommission";
    case SRV_REPL_REMOVE_DEAD: return "remove-dead";
    case SRV_REPL_REMOVE_LEARNER: return "remove-learner";
    case SRV_REPL_UP_REPLICATE: return "up-replicate";
    case SRV_REPL_NO_TARGET: return "no-target";
    case SRV_REPL_NO_QUORUM: return "no-quorum";
    }
    return "?";
}

/* ---- data-driven ------------------------------------------------------------------- */

static int parse_ids(const dd_case *c, const char *key, uint64_t *ids, size_t *n) {
    const dd_arg *a = dd_arg_find(c, key);
    *n = 0;
    if (a == NULL) return 0;
    for (int i = 0; i < a->n_vals; i++) {
        if (a->vals[i][0] == '\0') continue; /* key=() */
        ids[(*n)++] = strtoull(a->vals[i], NULL, 10);
    }
    return 0;
}

static int parse_state(const char *state, srv_liveness *out) {
    if (strcmp(state, "live") == 0) *out = SRV_LIVENESS_LIVE;
    else if (strcmp(state, "suspect") == 0) *out = SRV_LIVENESS_SUSPECT;
    else if (strcmp(state, "dead") == 0) *out = SRV_LIVENESS_DEAD;
    else if (strcmp(state, "unknown") == 0) *out = SRV_LIVENESS_UNKNOWN;
    else return -1;
    return 0;
}

/* id:state:replicas[:flag...], flags: draining, decommissioning, lN (N leases). */
static int parse_node(const char *tok, srv__repl_node *out) {
    char buf[DD_TOKEN_SIZE];
    snprintf(buf, sizeof buf, "%s", tok);
    char *save = NULL;
    char *id = strtok_r(buf, ":", &save), *state = strtok_r(NULL, ":", &save);
    char *replicas = strtok_r(NULL, ":", &save);
    if (id == NULL || state == NULL || replicas == NULL) return -1;
    *out = (srv__repl_node){.node_id = strtoull(id, NULL, 10),
                            .replicas = (uint32_t)strtoul(replicas, NULL, 10)};
    if (parse_state(state, &out->liveness) != 0) return -1;
    for (char *flag = strtok_r(NULL, ":", &save); flag != NULL; flag = strtok_r(NULL, ":", &save)) {
        if (strcmp(flag, "draining") == 0) out->draining = true;
        else if (strcmp(flag, "decommissioning") == 0) out->decommissioning = true;
        else if (flag[0] == 'l') out->leases = (uint32_t)strtoul(flag + 1, NULL, 10);
        else return -1;
    }
    return 0;
}

/* id:state[:flag...] as a liveness row, flags: draining, decommissioning,
** decommissioned. */
static int parse_row(const char *tok, srv_status_row *out) {
    char buf[DD_TOKEN_SIZE];
    snprintf(buf, sizeof buf, "%s", tok);
    char *save = NULL;
    char *id = strtok_r(buf, ":", &save), *state = strtok_r(NULL, ":", &save);
    if (id == NULL || state == NULL) return -1;
    *out = (srv_status_row){.node_id = strtoull(id, NULL, 10)};
    srv_liveness l;
    if (parse_state(state, &l) != 0) return -1;
    out->liveness = (uint8_t)l;
    for (char *flag = strtok_r(NULL, ":", &save); flag != NULL; flag = strtok_r(NULL, ":", &save)) {
        if (strcmp(flag, "draining") == 0) out->draining = true;
        else if (strcmp(flag, "decommissioning") == 0)
            out->membership = SRV_MEMBERSHIP_DECOMMISSIONING;
        else if (strcmp(flag, "decommissioned") == 0)
            out->membership = SRV_MEMBERSHIP_DECOMMISSIONED;
        else return -1;
    }
    return 0;
}

static int run_check(const dd_case *c, base_buf *out) {
    srv_status_row rows[DD_MAX_VALS];
    size_t n = 0;
    const dd_arg *a = dd_arg_find(c, "rows");
    for (int i = 0; a != NULL && i < a->n_vals; i++) {
        if (parse_row(a->vals[i], &rows[n]) != 0) {
            fprintf(stderr, "%s:%d: bad row %s\n", c->path, c->line, a->vals[i]);
            return -1;
        }
        n++;
    }
    char why[512] = "";
    int rc = srv__decommission_check(rows, n, (uint64_t)dd_arg_int(c, "target", 0),
                                     (int)dd_arg_int(c, "replication", 3), why, sizeof why);
    if (rc == SRV_OK) base_buf_printf(out, "ok\n");
    else base_buf_printf(out, "refused (%d): %s\n", rc, why);
    return 0;
}

static int run_case(void *ctx, const dd_case *c, base_buf *out) {
    (void)ctx;
    if (strcmp(c->cmd, "check") == 0) return run_check(c, out);
    if (strcmp(c->cmd, "plan") != 0 && strcmp(c->cmd, "lease") != 0) {
        fprintf(stderr, "%s:%d: unknown command %s\n", c->path, c->line, c->cmd);
        return -1;
    }
    raft_membership m = {0};
    srv__repl_node nodes[DD_MAX_VALS];
    size_t n_nodes = 0;
    parse_ids(c, "voters", m.voters, &m.n_voters);
    parse_ids(c, "learners", m.learners, &m.n_learners);
    const dd_arg *a = dd_arg_find(c, "nodes");
    for (int i = 0; a != NULL && i < a->n_vals; i++) {
        if (parse_node(a->vals[i], &nodes[n_nodes]) != 0) {
            fprintf(stderr, "%s:%d: bad node %s\n", c->path, c->line, a->vals[i]);
            return -1;
        }
        n_nodes++;
    }
    uint64_t leader = (uint64_t)dd_arg_int(c, "leader", 1);
    if (strcmp(c->cmd, "lease") == 0) {
        base_buf_printf(out, "target=%llu\n",
                        (unsigned long long)srv__repl_lease_target(&m, leader, nodes, n_nodes));
        return 0;
    }
    int replication = (int)dd_arg_int(c, "replication", 3);
    srv__repl_plan p;
    srv__repl_plan_range(&m, leader, nodes, n_nodes, replication, &p);
    char line[256];
    snprintf(line, sizeof line, "%s add=%llu remove=%llu\n", reason_name(p.reason),
             (unsigned long long)p.add, (unsigned long long)p.remove);
    base_buf_append(out, line, strlen(line));
    srv__repl_plan_describe(&p, 1, line, sizeof line);
    base_buf_append(out, line, strlen(line));
    base_buf_append_byte(out, '\n');
    return 0;
}

static void test_plan_files(void **state) {
    (void)state;
    char path[2048];
    snprintf(path, sizeof path, "%s/replicate.txt", SRV_TESTDATA_DIR);
    assert_int_equal(dd_run_file(path, run_case, NULL), 0);
}

/* ---- seeded random cases ----------------------------------------------------------- */

static bool in_ids(const uint64_t *ids, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

static const srv__repl_node *node_of(const srv__repl_node *nodes, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++)
        if (nodes[i].node_id == id) return &nodes[i];
    return NULL;
}

static bool is_state(const srv__repl_node *nodes, size_t n, uint64_t id, srv_liveness l) {
    const srv__repl_node *x = node_of(nodes, n, id);
    return x != NULL && x->liveness == l;
}

static bool usable(const srv__repl_node *x) {
    return x->liveness == SRV_LIVENESS_LIVE && !x->draining && !x->decommissioning;
}

static bool can_take(const srv__repl_node *x, const raft_membership *m) {
    return usable(x) && !in_ids(m->voters, m->n_voters, x->node_id);
}

/* Live voters of a voter set (a list of ids). */
static size_t live_of(const uint64_t *ids, size_t n, const srv__repl_node *nodes, size_t n_nodes) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += is_state(nodes, n_nodes, ids[i], SRV_LIVENESS_LIVE);
    return k;
}

static void check_plan(const raft_membership *m, uint64_t leader, const srv__repl_node *nodes,
                       size_t n_nodes, int replication, const srv__repl_plan *p) {
    size_t nv = m->n_voters;
    size_t factor = (size_t)replication;
    switch (p->reason) {
    case SRV_REPL_NOTHING: {
        assert_int_equal(p->add, 0);
        assert_int_equal(p->remove, 0);
        for (size_t i = 0; i < m->n_learners; i++)
            assert_false(is_state(nodes, n_nodes, m->learners[i], SRV_LIVENESS_DEAD));
        for (size_t i = 0; i < nv; i++) {
            const srv__repl_node *x = node_of(nodes, n_nodes, m->voters[i]);
            if (m->voters[i] == leader || x == NULL) continue;
            assert_false(x->liveness == SRV_LIVENESS_DEAD);
            assert_false(x->decommissioning); /* a draining voter stays */
        }
        assert_true(nv >= p->want);
        break;
    }
    case SRV_REPL_REMOVE_LEARNER:
        assert_int_equal(p->add, 0);
        assert_true(in_ids(m->learners, m->n_learners, p->remove));
        assert_true(is_state(nodes, n_nodes, p->remove, SRV_LIVENESS_DEAD));
        break;
    case SRV_REPL_REMOVE_DEAD:
    case SRV_REPL_REPLACE_DEAD:
    case SRV_REPL_DECOMMISSION:
    case SRV_REPL_UP_REPLICATE: {
        uint64_t after[RAFT_MAX_VOTERS + 1];
        size_t n_after = 0;
        if (p->reason == SRV_REPL_UP_REPLICATE) assert_int_equal(p->remove, 0);
        else assert_int_not_equal(p->remove, 0);
        if (p->remove != 0) {
            assert_true(in_ids(m->voters, nv, p->remove));
            assert_int_not_equal(p->remove, leader);
        }
        if (p->reason == SRV_REPL_REMOVE_DEAD || p->reason == SRV_REPL_REPLACE_DEAD)
            assert_true(is_state(nodes, n_nodes, p->remove, SRV_LIVENESS_DEAD));
        if (p->remove != 0) { /* the reason says whether it leaves */
            const srv__repl_node *v = node_of(nodes, n_nodes, p->remove);
            assert_non_null(v);
            assert_true(v->decommissioning == (p->reason == SRV_REPL_DECOMMISSION));
            assert_false(v->draining && !v->decommissioning && v->liveness != SRV_LIVENESS_DEAD);
        }
        for (size_t i = 0; i < nv; i++) after[n_after++] = m->voters[i];
        if (p->add == 0) {
            /* a remove without a target: the range keeps `replication` voters */
            assert_true(p->reason != SRV_REPL_UP_REPLICATE && p->reason != SRV_REPL_REPLACE_DEAD);
            assert_true(nv - 1 >= factor);
        } else {
            const srv__repl_node *t = node_of(nodes, n_nodes, p->add);
            assert_non_null(t);
            assert_true(can_take(t, m)); /* never two replicas on one node */
            bool learner = in_ids(m->learners, m->n_learners, p->add);
            for (size_t i = 0; i < n_nodes; i++) { /* the least loaded (a learner first) */
                const srv__repl_node *x = &nodes[i];
                if (!can_take(x, m) || x->node_id == t->node_id) continue;
                bool x_learner = in_ids(m->learners, m->n_learners, x->node_id);
                if (learner && !x_learner) continue;
                assert_false(x_learner && !learner);
                assert_true(t->replicas < x->replicas ||
                            (t->replicas == x->replicas && t->node_id < x->node_id));
            }
            after[n_after++] = p->add; /* promoted */
            assert_true(live_of(after, n_after, nodes, n_nodes) >= n_after / 2 + 1);
        }
        if (p->remove != 0) {
            size_t k = 0;
            for (size_t i = 0; i < n_after; i++)
                if (after[i] != p->remove) after[k++] = after[i];
            n_after = k;
            assert_true(n_after >= 1);
            assert_true(live_of(after, n_after, nodes, n_nodes) >= n_after / 2 + 1);
        }
        break;
    }
    case SRV_REPL_NO_TARGET:
        assert_int_equal(p->add, 0);
        for (size_t i = 0; i < n_nodes; i++) assert_false(can_take(&nodes[i], m));
        break;
    case SRV_REPL_NO_QUORUM:
        assert_int_equal(p->add, 0);
        break;
    }
}

/* The lease target: a usable voter other than the leader with the fewest
** leases (ties: the lowest id), or 0 when there is none. */
static void check_lease_target(const raft_membership *m, uint64_t leader,
                               const srv__repl_node *nodes, size_t n_nodes) {
    uint64_t t = srv__repl_lease_target(m, leader, nodes, n_nodes);
    const srv__repl_node *tx = t != 0 ? node_of(nodes, n_nodes, t) : NULL;
    if (t != 0) {
        assert_non_null(tx);
        assert_int_not_equal(t, leader);
        assert_true(in_ids(m->voters, m->n_voters, t));
        assert_true(usable(tx));
    }
    for (size_t i = 0; i < m->n_voters; i++) {
        const srv__repl_node *x = node_of(nodes, n_nodes, m->voters[i]);
        if (x == NULL || x->node_id == leader || !usable(x) || x == tx) continue;
        assert_non_null(tx); /* there was one */
        assert_true(tx->leases < x->leases ||
                    (tx->leases == x->leases && tx->node_id < x->node_id));
    }
}

static void test_plan_random(void **state) {
    (void)state;
    size_t counts[SRV_REPL_NO_QUORUM + 1] = {0};
    for (int round = 0; round < RANDOM_ROUNDS; round++) {
        srv__repl_node nodes[NODES_MAX];
        size_t n_nodes = 0;
        uint64_t universe = 2 + rng() % (NODES_MAX - 1); /* node ids 1..universe */
        for (uint64_t id = 1; id <= universe; id++) {
            if (rng() % 8 == 0) continue; /* no liveness record */
            static const srv_liveness states[] = {SRV_LIVENESS_LIVE, SRV_LIVENESS_LIVE,
                                                  SRV_LIVENESS_LIVE, SRV_LIVENESS_SUSPECT,
                                                  SRV_LIVENESS_DEAD};
            nodes[n_nodes++] = (srv__repl_node){.node_id = id, .liveness = states[rng() % 5],
                                                .draining = rng() % 10 == 0,
                                                .decommissioning = rng() % 8 == 0,
                                                .replicas = (uint32_t)(rng() % 4),
                                                .leases = (uint32_t)(rng() % 4)};
        }
        for (size_t i = n_nodes; i > 1; i--) { /* the order of the rows must not matter */
            size_t j = rng() % i;
            srv__repl_node t = nodes[i - 1];
            nodes[i - 1] = nodes[j];
            nodes[j] = t;
        }
        raft_membership m = {0};
        for (uint64_t id = 1; id <= universe; id++) {
            uint64_t r = rng() % 3;
            if (r == 0 && m.n_voters < 6) m.voters[m.n_voters++] = id;
            else if (r == 1 && rng() % 6 == 0) m.learners[m.n_learners++] = id;
        }
        if (m.n_voters == 0) m.voters[m.n_voters++] = 1 + rng() % universe;
        for (size_t i = 0; i < m.n_learners; i++) { /* a node is a voter or a learner */
            if (in_ids(m.voters, m.n_voters, m.learners[i]))
                m.learners[i--] = m.learners[--m.n_learners];
        }
        uint64_t leader = m.voters[rng() % m.n_voters];
        int replication = 1 + (int)(rng() % 5);
        srv__repl_plan p, again;
        srv__repl_plan_range(&m, leader, nodes, n_nodes, replication, &p);
        srv__repl_plan_range(&m, leader, nodes, n_nodes, replication, &again);
        assert_memory_equal(&p, &again, sizeof p);
        check_plan(&m, leader, nodes, n_nodes, replication, &p);
        counts[p.reason]++;
        check_lease_target(&m, leader, nodes, n_nodes);
    }
    for (int r = 0; r <= SRV_REPL_NO_QUORUM; r++)
        printf("  %-16s %zu\n", reason_name((srv__repl_reason)r), counts[r]);
    /* the generator reaches every answer */
    for (int r = 0; r <= SRV_REPL_NO_QUORUM; r++) assert_true(counts[r] > 0);
}

int main(void) {
    const char *seed = getenv("MERIDIAN_SEED");
    rng_state = seed != NULL ? strtoull(seed, NULL, 10) : (uint64_t)base_realtime_ns();
    printf("test_srv_replicate: seed %llu (MERIDIAN_SEED=%llu replays it)\n",
           (unsigned long long)rng_state, (unsigned long long)rng_state);
    base_log_set_level(BASE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_files),
        cmocka_unit_test(test_plan_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
