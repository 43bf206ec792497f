/*
** server/srv_rebalance.c: the allocator and rebalancer (srv_rebalance.h;
** docs/cluster.md "Allocator and rebalancer").
**
** Its thread, every round (SRV_REBAL_ROUND_MS):
**   1. election: in one KV transaction, read SYS "rebalancer/lease"; take
**      or renew it (self, now + SRV_REBAL_LEASE_TTL_MS) when it is absent,
**      expired or ours; a node that drains or is decommissioning, or runs
**      with rebalance_enabled = false, gives up a lease it holds instead;
**   2. the holder reads the cluster (srv__admin_cluster: the newest
**      descriptor, leaseholder, size and hosts of every range; every node's
**      liveness, draining flag and membership), asks srv__rebal_plan for
**      moves and makes them one at a time through the router
**      (range_router_change_replicas: learner, snapshot, promotion, then
**      removal; range_router_transfer_lease, only with the cluster setting
**      rebalance_leases on), each recorded in the range event log with the
**      plan's reason.
**
** Critical invariants:
**   - at most one rebalancer acts at a time, as far as the lease goes: it is
**     taken in a serializable read-modify-write and acted on only within
**     its ttl minus one round of the taker's wall clock (clocks agree within
**     the offset bound, far below a round);
**   - repair first: a range with a change under way, a voter missing, on a
**     node that is not live or is leaving, or fewer voters than wanted is
**     never touched here (the replicate queue's, srv_replicate.c);
**   - never two replicas of a range on a node, never below quorum: a target
**     holds no replica of the range, and the move adds before it removes;
**   - anti-thrash: a range moved (or whose move failed) within
**     rebalance_cooldown is left alone; the planner moves a replica only
**     from a node above max(mean*(1+t), mean+1) to one below the mean (or
**     symmetric), with a difference of two at least, so a move never
**     reverses the previous one;
**   - limits: the moves of one round are made one after another (one in
**     flight cluster-wide from the rebalancer), at most
**     SRV_REBAL_REPLICA_MOVES_MAX replica moves or SRV_REBAL_LEASE_MOVES_MAX
**     lease transfers a round, SRV_REBAL_SNAPSHOTS_PER_NODE snapshots
**     toward a node (learners counted); every call bounded by the router's
**     deadline;
**   - the thread ends within the router's shutdown grace of a stop: every
**     wait is on its condition variable, every KV call ends with the router.
*/
#define _GNU_SOURCE
#include "server/srv_rebalance.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MOD "srv"
#define LEASE_KEY SRV_SYS_PREFIX "rebalancer/lease"
#define LEASE_KEY_LEN (SRV_SYS_PREFIX_LEN + 16)
#define LEASE_SIZE 17 /* u8 version | u64 node | i64 expiry */
#define PLAN_MOVES_MAX (SRV_REBAL_REPLICA_MOVES_MAX + SRV_REBAL_LEASE_MOVES_MAX)

/* ---- the election (pure) ------------------------------------------------------------ */

size_t srv__rebal_lease_key(uint8_t *out) {
    memcpy(out, LEASE_KEY, LEASE_KEY_LEN);
    return LEASE_KEY_LEN;
}

int srv__rebal_lease_encode(const srv__rebal_lease *l, base_buf *out) {
    int rc = srv__put_u8(out, SRV_REBAL_LEASE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, l->node_id);
    if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)l->expiry_wall_ns);
    return rc;
}

int srv__rebal_lease_decode(const uint8_t *p, size_t len, srv__rebal_lease *out) {
    srv__reader r = {p, len, false};
    memset(out, 0, sizeof *out);
    if (len != LEASE_SIZE || srv__get_u8(&r) != SRV_REBAL_LEASE_VERSION) return SRV_ERR_CORRUPT;
    out->node_id = srv__get_u64(&r);
    out->expiry_wall_ns = (int64_t)srv__get_u64(&r);
    if (r.bad || out->node_id == 0) return SRV_ERR_CORRUPT;
    return SRV_OK;
}

bool srv__rebal_may_take(const srv__rebal_lease *cur, uint64_t self, int64_t now_wall_ns) {
    return cur == NULL || cur->node_id == self || now_wall_ns >= cur->expiry_wall_ns;
}

/* ---- the planner (pure) ----------------------------------------------------------------- */

bool srv__rebal_unbalanced(double mean, int threshold_pct, uint32_t hi, uint32_t lo) {
    double t = (threshold_pct > 0 ? threshold_pct : SRV_REBAL_THRESHOLD_PCT) / 100.0;
    double over = BASE_MAX(mean * (1 + t), mean + 1), under = BASE_MIN(mean * (1 - t), mean - 1);
    if (hi < lo + 2) return false; /* a move would only swap them */
    return (hi > over && lo < mean) || (lo < under && hi > mean);
}

/* floor and ceil of counts' means (no libm) */
static double floor_of(double x) {
    double f = (double)(int64_t)x;
    return f > x ? f - 1 : f;
}
static double ceil_of(double x) {
    double f = floor_of(x);
    return f < x ? f + 1 : f;
}

/* The fallback when no node below the mean can take from S (or give to T):
** a move that brings the two closer and leaves the taker at most at the
** band's rounded edge (so a chain of moves reaches a node that shares no
** range with S). Each such move lowers the sum of squared counts: plans
** end, and never undo one another. */
static bool relieves(double mean, int threshold_pct, uint32_t hi, uint32_t lo) {
    double t = (threshold_pct > 0 ? threshold_pct : SRV_REBAL_THRESHOLD_PCT) / 100.0;
    double over = BASE_MAX(mean * (1 + t), mean + 1), under = BASE_MIN(mean * (1 - t), mean - 1);
    if (hi < lo + 2) return false;
    return (hi > over && lo + 1 <= ceil_of(over)) || (lo < under && hi - 1 >= floor_of(under));
}

static bool may_move(int pass, double mean, int threshold_pct, uint32_t hi, uint32_t lo) {
    return pass == 0 ? srv__rebal_unbalanced(mean, threshold_pct, hi, lo)
                     : relieves(mean, threshold_pct, hi, lo);
}

typedef struct plan_node {
    const srv__rebal_node *n;
    uint32_t replicas, leases, snapshots;
    int64_t bytes;
} plan_node;

static plan_node *pn_find(plan_node *pn, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++)
        if (pn[i].n->node_id == id) return &pn[i];
    return NULL;
}

static bool has(const uint64_t *ids, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

static bool planned(const srv__rebal_move *out, size_t n, uint64_t range_id) {
    for (size_t i = 0; i < n; i++)
        if (out[i].range_id == range_id) return true;
    return false;
}

/* Rule 1: may the rebalancer touch this range at all? */
static bool eligible(const srv__rebal_range *r, plan_node *pn, size_t n_pn, size_t want) {
    if (!r->settled || r->n_voters < want || r->n_voters == 0) return false;
    for (size_t i = 0; i < r->n_voters; i++) {
        const plan_node *x = pn_find(pn, n_pn, r->voters[i]);
        if (x == NULL || !x->n->live) return false;
        /* not usable and live: draining (stays) or leaving (the queue's) */
        if (!x->n->usable && !x->n->draining) return false;
    }
    return true;
}

static size_t live_voters(const srv__rebal_range *r, plan_node *pn, size_t n_pn) {
    size_t live = 0;
    for (size_t i = 0; i < r->n_voters; i++) {
        const plan_node *x = pn_find(pn, n_pn, r->voters[i]);
        live += x != NULL && x->n->live;
    }
    return live;
}

/* Order of node indexes by count: descending (desc) or ascending, ties by id. */
static void order_by(plan_node *pn, size_t *idx, size_t n, bool leases, bool desc) {
    for (size_t i = 1; i < n; i++) { /* insertion sort: n is small */
        size_t v = idx[i], j = i;
        while (j > 0) {
            const plan_node *a = &pn[idx[j - 1]], *b = &pn[v];
            uint32_t ca = leases ? a->leases : a->replicas, cb = leases ? b->leases : b->replicas;
            bool after = desc ? ca < cb : ca > cb;
            if (!after && ca == cb) after = a->n->node_id > b->n->node_id;
            if (!after) break;
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

/* Rule 2's range for S -> T, or NULL. */
static const srv__rebal_range *pick_replica(const srv__rebal_range *ranges, size_t n_ranges,
                                            plan_node *pn, size_t n_pn, size_t want,
                                            const plan_node *s, const plan_node *t,
                                            const srv__rebal_move *out, size_t n_out) {
    const srv__rebal_range *best = NULL;
    bool best_lease_off = false;
    bool bigger = s->bytes > t->bytes;
    for (size_t i = 0; i < n_ranges; i++) {
        const srv__rebal_range *r = &ranges[i];
        if (r->resting || !has(r->voters, r->n_voters, s->n->node_id) ||
            has(r->voters, r->n_voters, t->n->node_id) || planned(out, n_out, r->range_id) ||
            !eligible(r, pn, n_pn, want))
            continue;
        size_t nv = r->n_voters, live = live_voters(r, pn, n_pn);
        /* add: nv + 1 voters, live + 1 of them; remove: nv, live of them */
        if (live + 1 < (nv + 1) / 2 + 1 || live < nv / 2 + 1) continue;
        bool lease_off = r->lease_holder != s->n->node_id;
        bool better = best == NULL;
        if (!better && lease_off != best_lease_off) better = lease_off;
        else if (!better && r->size_bytes != best->size_bytes)
            better = bigger ? r->size_bytes > best->size_bytes : r->size_bytes < best->size_bytes;
        else if (!better) better = r->range_id < best->range_id;
        if (better) {
            best = r;
            best_lease_off = lease_off;
        }
    }
    return best;
}

static void reason_text(char *buf, size_t size, const plan_node *s, bool leases, double mean) {
    if (leases)
        snprintf(buf, size, "rebalance: node %" PRIu64 " holds %" PRIu32 " leases, mean %.1f",
                 s->n->node_id, s->leases, mean);
    else
        snprintf(buf, size, "rebalance: node %" PRIu64 " has %" PRIu32 " replicas, mean %.1f",
                 s->n->node_id, s->replicas, mean);
}

static size_t plan_replicas(plan_node *pn, size_t n_pn, size_t *idx_hi, size_t *idx_lo,
                            size_t n_idx, const srv__rebal_range *ranges, size_t n_ranges,
                            size_t want, const srv__rebal_params *p, double mean,
                            srv__rebal_move *out, size_t n_out, size_t out_max) {
    uint32_t snap_max = p->snapshots_per_node > 0 ? p->snapshots_per_node
                                                  : SRV_REBAL_SNAPSHOTS_PER_NODE;
    size_t made = 0;
    while (made < p->replica_moves_max && n_out < out_max) {
        order_by(pn, idx_hi, n_idx, false, true);
        order_by(pn, idx_lo, n_idx, false, false);
        const srv__rebal_range *r = NULL;
        plan_node *s = NULL, *t = NULL;
        for (int pass = 0; pass < 2 && r == NULL; pass++) {
            for (size_t i = 0; i < n_idx && r == NULL; i++) {
                s = &pn[idx_hi[i]];
                for (size_t j = 0; j < n_idx && r == NULL; j++) {
                    t = &pn[idx_lo[j]];
                    /* ascending: a fuller T never qualifies where this one did not */
                    if (!may_move(pass, mean, p->threshold_pct, s->replicas, t->replicas)) break;
                    if (t == s || t->snapshots >= snap_max) continue;
                    r = pick_replica(ranges, n_ranges, pn, n_pn, want, s, t, out, n_out);
                }
            }
        }
        if (r == NULL) break;
        srv__rebal_move *m = &out[n_out++];
        *m = (srv__rebal_move){.kind = SRV_REBAL_REPLICA, .range_id = r->range_id,
                               .from = s->n->node_id, .to = t->n->node_id};
        reason_text(m->reason, sizeof m->reason, s, false, mean);
        s->replicas--;
        t->replicas++;
        t->snapshots++;
        if (r->size_bytes > 0) {
            s->bytes -= r->size_bytes;
            t->bytes += r->size_bytes;
        }
        if (r->lease_holder == s->n->node_id) s->leases--; /* it moves with the removal */
        made++;
    }
    return made;
}

/* Rule 3's range led by S, and its target *t_out, or NULL. */
static const srv__rebal_range *pick_lease(const srv__rebal_range *ranges, size_t n_ranges,
                                          plan_node *pn, size_t n_pn, size_t want, int pass,
                                          const srv__rebal_params *p, double mean,
                                          const plan_node *s, const srv__rebal_move *out,
                                          size_t n_out, plan_node **t_out) {
    const srv__rebal_range *r = NULL;
    plan_node *t = NULL;
    for (size_t k = 0; k < n_ranges; k++) {
        const srv__rebal_range *c = &ranges[k];
        if (c->lease_holder != s->n->node_id || c->resting || planned(out, n_out, c->range_id) ||
            !eligible(c, pn, n_pn, want))
            continue;
        plan_node *ct = NULL; /* the usable voter with the fewest leases */
        for (size_t v = 0; v < c->n_voters; v++) {
            plan_node *x = pn_find(pn, n_pn, c->voters[v]);
            if (x == NULL || x == s || !x->n->usable) continue;
            if (ct == NULL || x->leases < ct->leases ||
                (x->leases == ct->leases && x->n->node_id < ct->n->node_id))
                ct = x;
        }
        if (ct == NULL || !may_move(pass, mean, p->threshold_pct, s->leases, ct->leases)) continue;
        if (r == NULL || ct->leases < t->leases ||
            (ct->leases == t->leases && c->range_id < r->range_id)) {
            r = c;
            t = ct;
        }
    }
    *t_out = t;
    return r;
}

static size_t plan_leases(plan_node *pn, size_t n_pn, size_t *idx_hi, size_t n_idx,
                          const srv__rebal_range *ranges, size_t n_ranges, size_t want,
                          const srv__rebal_params *p, double mean, srv__rebal_move *out,
                          size_t n_out, size_t out_max) {
    size_t made = 0;
    while (made < p->lease_moves_max && n_out < out_max) {
        order_by(pn, idx_hi, n_idx, true, true);
        const srv__rebal_range *r = NULL;
        plan_node *s = NULL, *t = NULL;
        for (int pass = 0; pass < 2 && r == NULL; pass++) {
            for (size_t i = 0; i < n_idx && r == NULL; i++) {
                s = &pn[idx_hi[i]];
                r = pick_lease(ranges, n_ranges, pn, n_pn, want, pass, p, mean, s, out, n_out, &t);
            }
        }
        if (r == NULL) break;
        srv__rebal_move *m = &out[n_out++];
        *m = (srv__rebal_move){.kind = SRV_REBAL_LEASE, .range_id = r->range_id,
                               .from = s->n->node_id, .to = t->n->node_id};
        reason_text(m->reason, sizeof m->reason, s, true, mean);
        s->leases--;
        t->leases++;
        made++;
    }
    return made;
}

size_t srv__rebal_plan(const srv__rebal_node *nodes, size_t n_nodes,
                       const srv__rebal_range *ranges, size_t n_ranges,
                       const srv__rebal_params *params, srv__rebal_move *out, size_t out_max,
                       srv__rebal_stats *st) {
    plan_node pn[SRV_PEERS_MAX];
    size_t idx_hi[SRV_PEERS_MAX], idx_lo[SRV_PEERS_MAX];
    srv__rebal_stats stats;
    memset(&stats, 0, sizeof stats);
    size_t n_pn = BASE_MIN(n_nodes, (size_t)SRV_PEERS_MAX), n_idx = 0, n_out = 0;
    for (size_t i = 0; i < n_pn; i++) {
        pn[i] = (plan_node){.n = &nodes[i], .snapshots = nodes[i].snapshots};
        if (nodes[i].usable) {
            idx_hi[n_idx] = i;
            idx_lo[n_idx++] = i;
        }
    }
    stats.usable = n_idx;
    size_t factor = params->replication > 0 ? (size_t)params->replication : 1;
    size_t want = BASE_MAX(BASE_MIN(factor, n_idx), (size_t)1);
    for (size_t k = 0; k < n_ranges; k++) {
        const srv__rebal_range *r = &ranges[k];
        for (size_t v = 0; v < r->n_voters; v++) {
            plan_node *x = pn_find(pn, n_pn, r->voters[v]);
            if (x == NULL) continue;
            x->replicas++;
            if (r->size_bytes > 0) x->bytes += r->size_bytes;
        }
        plan_node *l = r->lease_holder != 0 ? pn_find(pn, n_pn, r->lease_holder) : NULL;
        if (l != NULL) l->leases++;
        if (!eligible(r, pn, n_pn, want)) stats.unsettled++;
    }
    uint64_t sum_replicas = 0, sum_leases = 0;
    for (size_t i = 0; i < n_idx; i++) {
        const plan_node *x = &pn[idx_hi[i]];
        sum_replicas += x->replicas;
        sum_leases += x->leases;
        if (i == 0 || x->replicas < stats.replicas_min) stats.replicas_min = x->replicas;
        if (i == 0 || x->replicas > stats.replicas_max) stats.replicas_max = x->replicas;
        if (i == 0 || x->leases < stats.leases_min) stats.leases_min = x->leases;
        if (i == 0 || x->leases > stats.leases_max) stats.leases_max = x->leases;
    }
    if (n_idx >= 2) {
        stats.replica_mean = (double)sum_replicas / (double)n_idx;
        stats.lease_mean = (double)sum_leases / (double)n_idx;
        size_t made = plan_replicas(pn, n_pn, idx_hi, idx_lo, n_idx, ranges, n_ranges, want,
                                    params, stats.replica_mean, out, n_out, out_max);
        n_out += made;
        if (made == 0)
            n_out += plan_leases(pn, n_pn, idx_hi, n_idx, ranges, n_ranges, want, params,
                                 stats.lease_mean, out, n_out, out_max);
    } else if (n_idx == 1) {
        stats.replica_mean = pn[idx_hi[0]].replicas;
        stats.lease_mean = pn[idx_hi[0]].leases;
    }
    if (st != NULL) *st = stats;
    return n_out;
}

/* ---- the thread ---------------------------------------------------------------------------- */

void srv__rebal_init(srv__rebal *r) {
    memset(r, 0, sizeof *r);
    srv__worker_init(&r->worker);
    atomic_store(&r->leaving, false);
}

void srv__rebal_destroy(srv__rebal *r) { srv__worker_destroy(&r->worker); }

void srv__rebal_note_moved(srv__rebal *r, uint64_t range_id, int64_t now_ns) {
    for (size_t i = 0; i < r->n_recent; i++) {
        if (r->recent[i].range_id == range_id) {
            r->recent[i].at_ns = now_ns;
            return;
        }
    }
    if (r->n_recent == SRV_REBAL_RECENT_MAX) { /* the oldest goes */
        size_t oldest = 0;
        for (size_t i = 1; i < r->n_recent; i++)
            if (r->recent[i].at_ns < r->recent[oldest].at_ns) oldest = i;
        r->recent[oldest] = r->recent[--r->n_recent];
    }
    r->recent[r->n_recent++] = (srv__rebal_recent){.range_id = range_id, .at_ns = now_ns};
}

bool srv__rebal_resting(const srv__rebal *r, uint64_t range_id, int64_t now_ns,
                        int64_t cooldown_ms) {
    for (size_t i = 0; i < r->n_recent; i++)
        if (r->recent[i].range_id == range_id)
            return now_ns - r->recent[i].at_ns < cooldown_ms * 1000000;
    return false;
}

static bool stopping(srv__rebal *r) { return srv__worker_stopping(&r->worker); }

static int64_t round_ms(const srv__rebal *r) {
    return r->env.round_ms > 0 ? r->env.round_ms : SRV_REBAL_ROUND_MS;
}

/* Take or renew the lease (want), or give up one held here (!want), in one
** transaction. True: this node holds it until *until_ns (monotonic). */
static bool elect(srv__rebal *r, bool want, int64_t *until_ns) {
    const srv__rebal_env *env = &r->env;
    uint8_t key[SRV_KEY_SIZE_MAX];
    size_t kl = srv__rebal_lease_key(key);
    base_buf v = {0}; /* owner: here */
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    bool held = false;
    int64_t began_ns = base_monotonic_ns();
    int64_t ttl_ms = 3 * round_ms(r);
    int rc = txn_begin(env->db, NULL, &t);
    if (rc != TXN_OK) goto done;
    srv__rebal_lease cur;
    bool found = false;
    rc = txn_get(t, key, kl, &v, &err);
    if (rc == TXN_OK) {
        found = srv__rebal_lease_decode(v.data, v.len, &cur) == SRV_OK;
        if (!found) BASE_WARN(MOD, "rebalancer: the stored lease is malformed; taking it over");
    } else if (rc != TXN_NOT_FOUND) {
        txn_rollback(t);
        goto done;
    }
    int64_t now_wall = hlc_physical_now_ns(env->clock);
    if (!want) { /* give it up: the next node takes it at once */
        if (found && cur.node_id == env->self && txn_delete(t, key, kl, &err) == TXN_OK)
            rc = txn_commit(t, NULL, &err);
        else
            txn_rollback(t);
        goto done;
    }
    if (!srv__rebal_may_take(found ? &cur : NULL, env->self, now_wall)) {
        txn_rollback(t);
        goto done;
    }
    srv__rebal_lease mine = {.node_id = env->self, .expiry_wall_ns = now_wall + ttl_ms * 1000000};
    base_buf_reset(&v);
    if (srv__rebal_lease_encode(&mine, &v) != SRV_OK ||
        txn_put(t, key, kl, v.data, v.len, &err) != TXN_OK) {
        txn_rollback(t);
        goto done;
    }
    rc = txn_commit(t, NULL, &err);
    /* acted on for one round less than the ttl: a successor waits it all */
    if (rc == TXN_OK) {
        held = true;
        *until_ns = began_ns + (ttl_ms - round_ms(r)) * 1000000;
    }
done:
    if (held != r->holder)
        BASE_INFO(MOD, "rebalancer: %s", held ? "this node rebalances (it holds the lease)"
                                              : "this node no longer rebalances");
    r->holder = held;
    base_buf_free(&v);
    return held;
}

static bool in_ids(const uint64_t *ids, size_t n, uint64_t id) { return has(ids, n, id); }

/* The planner's input from the cluster's overview. owner of *nodes_out and
** *ranges_out: caller (base_free). */
static int build_input(srv__rebal *r, const srv__node_state *ns, size_t n_ns,
                       const srv__range_view *views, size_t n_views, int64_t now_ns,
                       int64_t cooldown_ms, srv__rebal_node **nodes_out,
                       srv__rebal_range **ranges_out) {
    srv__rebal_node *nodes = base_calloc(n_ns ? n_ns : 1, sizeof *nodes); /* owner: caller */
    srv__rebal_range *ranges = base_calloc(n_views ? n_views : 1, sizeof *ranges); /* caller */
    if (nodes == NULL || ranges == NULL) {
        base_free(nodes);
        base_free(ranges);
        return SRV_ERR_NOMEM;
    }
    for (size_t i = 0; i < n_ns; i++) {
        bool live = ns[i].liveness == SRV_LIVENESS_LIVE;
        bool active = ns[i].membership == SRV_MEMBERSHIP_ACTIVE;
        nodes[i] = (srv__rebal_node){.node_id = ns[i].node_id, .live = live,
                                     .usable = live && active && !ns[i].draining,
                                     .draining = live && active && ns[i].draining};
    }
    for (size_t k = 0; k < n_views; k++) {
        const srv__range_view *v = &views[k];
        srv__rebal_range *x = &ranges[k];
        x->range_id = v->desc.range_id;
        x->n_voters = BASE_MIN(v->desc.n_replicas, (size_t)RANGE_REPLICAS_MAX);
        memcpy(x->voters, v->desc.replicas, x->n_voters * sizeof x->voters[0]);
        x->lease_holder = v->lease_holder;
        x->size_bytes = v->size_bytes;
        x->resting = srv__rebal_resting(r, x->range_id, now_ns, cooldown_ms);
        x->settled = v->n_reports > 0 && v->n_hosts < SRV_RANGE_HOSTS_MAX;
        for (size_t i = 0; i < x->n_voters; i++)
            if (!in_ids(v->hosts, v->n_hosts, x->voters[i])) x->settled = false;
        for (size_t h = 0; h < v->n_hosts; h++) {
            if (in_ids(x->voters, x->n_voters, v->hosts[h])) continue;
            x->settled = false; /* a learner, or a replica being removed */
            for (size_t i = 0; i < n_ns; i++)
                if (nodes[i].node_id == v->hosts[h]) nodes[i].snapshots++;
        }
    }
    *nodes_out = nodes;
    *ranges_out = ranges;
    return SRV_OK;
}

static const srv__range_view *find_view(const srv__range_view *v, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++)
        if (v[i].desc.range_id == id) return &v[i];
    return NULL;
}

/* The range event log: best effort, its own transaction after the move. */
static void record(srv__rebal *r, const srv__rebal_move *m, const range_descriptor *before,
                   const range_descriptor *after) {
    txn_range_event ev[2];
    size_t n = 0;
    memset(ev, 0, sizeof ev);
    int64_t wall = hlc_physical_now_ns(r->env.clock);
    for (size_t i = 0; i < 2; i++) {
        ev[i].wall_ns = wall + (int64_t)i * 1000; /* the remove after the add, in microseconds */
        ev[i].range_id = m->range_id;
        ev[i].recorded_by = r->env.self;
        base_strlcpy(ev[i].reason, m->reason, sizeof ev[i].reason);
    }
    const range_descriptor *d = after != NULL ? after : before;
    if (m->kind == SRV_REBAL_LEASE) {
        ev[0].kind = TXN_RANGE_EVENT_LEASE_TRANSFER;
        ev[0].node_id = m->to;
        for (size_t i = 0; i < d->n_replicas && i < TXN_RANGE_EVENT_REPLICAS_MAX; i++)
            ev[0].replicas[ev[0].n_replicas++] = d->replicas[i];
        n = 1;
    } else {
        ev[0].kind = TXN_RANGE_EVENT_ADD_REPLICA;
        ev[0].node_id = m->to;
        for (size_t i = 0; i < before->n_replicas && i < TXN_RANGE_EVENT_REPLICAS_MAX - 1; i++)
            ev[0].replicas[ev[0].n_replicas++] = before->replicas[i];
        ev[0].replicas[ev[0].n_replicas++] = m->to;
        ev[1].kind = TXN_RANGE_EVENT_REMOVE_REPLICA;
        ev[1].node_id = m->from;
        for (size_t i = 0; i < d->n_replicas && i < TXN_RANGE_EVENT_REPLICAS_MAX; i++)
            ev[1].replicas[ev[1].n_replicas++] = d->replicas[i];
        n = 2;
    }
    txn_error err = {{0}, {0}};
    if (txn_db_log_range_events(r->env.db, ev, n, &err) != TXN_OK)
        BASE_WARN(MOD, "range event log: rebalance of r%" PRIu64 " not recorded (%s)", m->range_id,
                  err.message);
}

/* Make one move (blocks up to the router's deadline). */
static void make_move(srv__rebal *r, const srv__rebal_move *m, const srv__range_view *v) {
    range_router *router = r->env.router;
    range_descriptor after;
    memset(&after, 0, sizeof after);
    int64_t t0 = base_monotonic_ns();
    (void)range_router_update_descriptor(router, &v->desc);
    /* a replica move commits meta(range) with each step (docs/decisions/010, item 8) */
    txn_error terr = {{0}, {0}};
    int rc = m->kind == SRV_REBAL_LEASE
                 ? range_router_transfer_lease(router, m->range_id, m->to)
                 : txn_db_change_replicas(r->env.db, &v->desc, m->to, m->from, &after, &terr);
    int64_t took_ms = (base_monotonic_ns() - t0) / 1000000;
    srv__rebal_note_moved(r, m->range_id, base_monotonic_ns()); /* done or not: it rests */
    if (rc != RANGE_OK) {
        char detail[256] = "";
        range_kv *kv = range_router_kv(router);
        if (m->kind != SRV_REBAL_LEASE)
            base_strlcpy(detail, terr.message[0] ? terr.message : "error", sizeof detail);
        else if (kv->ops->last_error == NULL || !kv->ops->last_error(kv, detail, sizeof detail))
            snprintf(detail, sizeof detail, "error %d", rc);
        r->failures++;
        BASE_WARN(MOD, "rebalancer: %s of range %" PRIu64 " from node %" PRIu64 " to node %"
                  PRIu64 " failed after %" PRId64 " ms: %s (%s)",
                  m->kind == SRV_REBAL_LEASE ? "lease transfer" : "replica move", m->range_id,
                  m->from, m->to, took_ms, detail, m->reason);
        range_descriptor_free(&after);
        return;
    }
    if (m->kind == SRV_REBAL_LEASE) r->lease_moves++;
    else r->replica_moves++;
    BASE_INFO(MOD, "rebalancer: range %" PRIu64 ": %s moved from node %" PRIu64 " to node %"
              PRIu64 " in %" PRId64 " ms (%s)", m->range_id,
              m->kind == SRV_REBAL_LEASE ? "lease" : "replica", m->from, m->to, took_ms,
              m->reason);
    record(r, m, &v->desc, m->kind == SRV_REBAL_REPLICA ? &after : NULL);
    range_descriptor_free(&after);
}

/* One round: the election, then (holder) the plan and its moves. */
static void rebal_round(srv__rebal *r) {
    const srv__rebal_env *env = &r->env;
    srv__node_state *ns = NULL;
    srv__range_view *views = NULL;
    srv__rebal_node *nodes = NULL;
    srv__rebal_range *ranges = NULL;
    size_t n_ns = 0, n_views = 0;
    char msg[256] = "";
    bool enabled = srv_setting_get_bool(env->settings, SQLV_SETTING_REBALANCE_ENABLED);
    if (enabled == r->disabled_logged)
        BASE_INFO(MOD, "rebalancer: %s", enabled ? "on (rebalance_enabled = true)"
                                                 : "off (rebalance_enabled = false)");
    r->disabled_logged = !enabled;
    int64_t until_ns = 0;
    bool want = enabled && !atomic_load(&r->leaving);
    if (!want && !r->holder) return; /* nothing to give up: no transaction (a
                                        decommissioned node's would wait out the
                                        router's deadline) */
    if (!elect(r, want, &until_ns)) return;
    if (srv__admin_cluster(env->admin, &ns, &n_ns, &views, &n_views, msg, sizeof msg) != SRV_OK) {
        BASE_DEBUG(MOD, "rebalancer: cannot read the cluster now: %s", msg);
        goto done;
    }
    if (n_views > SRV_REBAL_RANGES_MAX) n_views = SRV_REBAL_RANGES_MAX;
    int64_t now = base_monotonic_ns();
    int64_t cooldown_ms = srv_setting_get_int(env->settings, SQLV_SETTING_REBALANCE_COOLDOWN);
    if (build_input(r, ns, n_ns, views, n_views, now, cooldown_ms, &nodes, &ranges) != SRV_OK)
        goto done;
    srv__rebal_params p = {.replication = env->replication,
                           .threshold_pct = SRV_REBAL_THRESHOLD_PCT,
                           .replica_moves_max = SRV_REBAL_REPLICA_MOVES_MAX,
                           .lease_moves_max =
                               srv_setting_get_bool(env->settings, SQLV_SETTING_REBALANCE_LEASES)
                                   ? SRV_REBAL_LEASE_MOVES_MAX
                                   : 0,
                           .snapshots_per_node = SRV_REBAL_SNAPSHOTS_PER_NODE};
    srv__rebal_move moves[PLAN_MOVES_MAX];
    srv__rebal_stats st;
    size_t n_moves = srv__rebal_plan(nodes, n_ns, ranges, n_views, &p, moves, PLAN_MOVES_MAX, &st);
    if (n_moves > 0)
        BASE_INFO(MOD, "rebalancer: %zu usable node(s), replicas %" PRIu32 "..%" PRIu32
                  " (mean %.1f), leases %" PRIu32 "..%" PRIu32 " (mean %.1f), %zu range(s) "
                  "left to the replicate queue; %zu move(s) now", st.usable, st.replicas_min,
                  st.replicas_max, st.replica_mean, st.leases_min, st.leases_max, st.lease_mean,
                  st.unsettled, n_moves);
    for (size_t i = 0; i < n_moves; i++) {
        /* the lease may not outlive a round spent moving: renewed next round */
        if (stopping(r) || base_monotonic_ns() >= until_ns) break;
        const srv__range_view *v = find_view(views, n_views, moves[i].range_id);
        if (v != NULL) make_move(r, &moves[i], v);
    }
done:
    base_free(nodes);
    base_free(ranges);
    base_free(ns);
    srv__range_views_free(views, n_views);
}

static void *rebal_main(void *arg) {
    srv__rebal *r = arg;
    int64_t next = base_monotonic_ns() + round_ms(r) * 1000000;
    while (!stopping(r)) {
        if (base_monotonic_ns() >= next) {
            rebal_round(r);
            next = base_monotonic_ns() + round_ms(r) * 1000000;
            continue;
        }
        srv__worker_wait(&r->worker, next);
    }
    return NULL;
}

int srv__rebal_start(srv__rebal *r, const srv__rebal_env *env) {
    if (r->worker.started) return SRV_OK;
    r->env = *env;
    return srv__worker_start(&r->worker, rebal_main, r);
}

void srv__rebal_stop(srv__rebal *r) { srv__worker_stop(&r->worker); }
