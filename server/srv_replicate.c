/*
** server/srv_replicate.c: the replicate queue (docs/cluster.md, "Replicate
** queue"). The leaseholder of a range is the only node that changes it:
** every scan_ms the periodic thread looks at the ranges this node leads,
** compares each one's voters with the liveness records and, when a voter
** sits on a dead node or the range has fewer voters than wanted, starts one
** change: add a live node (learner, snapshot, promote), then remove the dead
** one, one Raft configuration step at a time. Once SQL is open (env->db)
** each phase (the add, then the remove) is txn_db_change_replicas, whose
** steps each commit meta(range) with them (docs/decisions/010 item 8), run
** by the queue's worker thread; before (no db), the local leader's replica
** is stepped (range_replica_change_replicas) and meta follows by the
** repair. The periodic thread only hands phases over and polls them; it
** never waits on them.
** Issue 6: a voter on a decommissioning node is moved off the same way
** (reason "decommission"), and a node that drains or is decommissioning
** hands its leases away (shed_leases; its replicas do not campaign either:
** range_node_set_draining), each hand-off posted once to the range event
** log (env->on_lease_shed). Balance across healthy nodes is the
** rebalancer's (srv_rebalance.c), which leaves every range this queue
** repairs alone.
**
** Critical invariants:
**   - a change is started and stepped only by the range's leader holding a
**     valid lease, while this node's clock-offset bound is available; a
**     lost lease abandons it (the new leaseholder plans again from the
**     range's applied configuration, so a half-done change is resumed or
**     undone there, never duplicated);
**   - at most one change per range (a range whose latest configuration is
**     not its applied one is left alone), SRV_REPL_INFLIGHT_MAX per node;
**   - never two replicas of a range on one node: a target holds no replica
**     of the range (a learner of it is the same replica, promoted);
**   - never a change that leaves the live voters short of a majority, after
**     any of its steps (srv__repl_plan_range's quorum guard), and never
**     without a live target unless the range keeps `replication` voters;
**   - a slot is reused only after the callback of its last proposed step
**     ran, or the worker finished its phase (the slot is their context);
**     the queue lives in the srv_node, which outlives range_node_free
**     (where a pending step's callback runs with RANGE_ERR_AMBIGUOUS) and
**     stops the worker before the db closes;
**   - the remove of a change runs only after its add finished with the
**     target a voter (the txn path re-reads the range before each step:
**     an add that did not happen never turns into a bare removal);
**   - every failure backs the range off (SRV_REPL_BACKOFF_MIN_MS doubling
**     to SRV_REPL_BACKOFF_MAX_MS); every change has a deadline;
**   - a node that drains or is decommissioning is never a target, and
**     hands every lease it leads to a usable voter every SRV_REPL_SHED_MS
**     (a leader is never its own victim, so a decommissioning node's
**     replicas move once its leases went); a decommissioning node's voters
**     are moved off like a dead node's, a draining node's stay.
*/
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/srv_int.h"

#define MOD "srv"

#define SRV_REPL_POLL_MS 50              /* a change in flight is stepped this often */
#define SRV_REPL_CHANGE_TIMEOUT_MS 60000 /* a change not done by then is abandoned */
#define SRV_REPL_BACKOFF_MIN_MS 2000
#define SRV_REPL_BACKOFF_MAX_MS 60000
#define SRV_REPL_RECENT_TTL_NS (120LL * 1000000000) /* a recent add older than this is ignored */

enum { CB_NONE = 0, CB_PENDING = 1, CB_DONE = 2 };

/* ---- the plan (pure) ------------------------------------------------------------- */

static const srv__repl_node *find_node(const srv__repl_node *nodes, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++)
        if (nodes[i].node_id == id) return &nodes[i];
    return NULL;
}

static bool node_is(const srv__repl_node *nodes, size_t n, uint64_t id, srv_liveness l) {
    const srv__repl_node *x = find_node(nodes, n, id);
    return x != NULL && x->liveness == l;
}

/* May take a replica or a lease: live, not draining, not leaving. */
static bool usable(const srv__repl_node *x) {
    return x->liveness == SRV_LIVENESS_LIVE && !x->draining && !x->decommissioning;
}

static bool in_list(const uint64_t *ids, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

static size_t majority(size_t voters) { return voters / 2 + 1; }

/* The best target: a usable node that is no voter; a learner of the range
** first (it is the same replica, already fed), then the fewest replicas,
** then the lowest id. 0: none. */
static uint64_t pick_target(const raft_membership *m, const srv__repl_node *nodes, size_t n) {
    const srv__repl_node *best = NULL;
    bool best_learner = false;
    for (size_t i = 0; i < n; i++) {
        const srv__repl_node *x = &nodes[i];
        if (x->node_id == 0 || !usable(x) || in_list(m->voters, m->n_voters, x->node_id))
            continue;
        bool learner = in_list(m->learners, m->n_learners, x->node_id);
        bool better = best == NULL || (learner && !best_learner) ||
                      (learner == best_learner &&
                       (x->replicas < best->replicas ||
                        (x->replicas == best->replicas && x->node_id < best->node_id)));
        if (better) {
            best = x;
            best_learner = learner;
        }
    }
    return best != NULL ? best->node_id : 0;
}

void srv__repl_plan_range(const raft_membership *m, uint64_t leader, const srv__repl_node *nodes,
                          size_t n_nodes, int replication, srv__repl_plan *out) {
    *out = (srv__repl_plan){.reason = SRV_REPL_NOTHING, .n_voters = m->n_voters};
    size_t n_usable = 0;
    for (size_t i = 0; i < n_nodes; i++) n_usable += usable(&nodes[i]);
    size_t factor = replication > 0 ? (size_t)replication : 1;
    out->want = BASE_MIN(factor, n_usable);
    if (out->want < 1) out->want = 1;

    /* 1. a learner on a dead node: it counts for no quorum, drop it */
    uint64_t dead_learner = 0;
    for (size_t i = 0; i < m->n_learners; i++) {
        uint64_t id = m->learners[i];
        if (node_is(nodes, n_nodes, id, SRV_LIVENESS_DEAD) &&
            (dead_learner == 0 || id < dead_learner))
            dead_learner = id;
    }
    if (dead_learner != 0) {
        out->reason = SRV_REPL_REMOVE_LEARNER;
        out->remove = dead_learner;
        return;
    }

    /* 2. a voter to move off: dead first, then one on a decommissioning node
    ** (live or suspect: it is leaving either way); never the leader */
    size_t live = 0;
    uint64_t dead = 0, leaving = 0;
    for (size_t i = 0; i < m->n_voters; i++) {
        uint64_t id = m->voters[i];
        const srv__repl_node *x = find_node(nodes, n_nodes, id);
        if (x == NULL) continue; /* no liveness record yet: neither live nor dead */
        if (x->liveness == SRV_LIVENESS_LIVE) live++;
        if (id == leader) continue;
        if (x->liveness == SRV_LIVENESS_DEAD) {
            if (dead == 0 || id < dead) dead = id;
        } else if (x->decommissioning && (leaving == 0 || id < leaving)) {
            leaving = id;
        }
    }
    uint64_t victim = dead != 0 ? dead : leaving;
    const srv__repl_node *vx = find_node(nodes, n_nodes, victim);
    /* a dead node being decommissioned is logged as the decommission it is */
    bool decommission = vx != NULL && vx->decommissioning;
    size_t victim_live = vx != NULL && vx->liveness == SRV_LIVENESS_LIVE ? 1 : 0;
    size_t nv = m->n_voters;
    if (victim != 0) {
        out->remove = victim;
        if (nv - 1 >= factor) { /* the range can spare it */
            if (live - victim_live < majority(nv - 1)) out->reason = SRV_REPL_NO_QUORUM;
            else out->reason = decommission ? SRV_REPL_DECOMMISSION : SRV_REPL_REMOVE_DEAD;
            return; /* a remove only: add stays 0 */
        }
        uint64_t target = pick_target(m, nodes, n_nodes);
        if (target == 0) {
            out->reason = SRV_REPL_NO_TARGET;
            return;
        }
        /* after the promotion nv + 1 voters, live + 1 of them; after the
        ** removal nv voters, live + 1 - victim_live of them */
        if (live + 1 < majority(nv + 1) || live + 1 - victim_live < majority(nv)) {
            out->reason = SRV_REPL_NO_QUORUM;
            return;
        }
        out->reason = decommission ? SRV_REPL_DECOMMISSION : SRV_REPL_REPLACE_DEAD;
        out->add = target;
        return;
    }

    /* 3. up-replication */
    if (nv < out->want) {
        uint64_t target = pick_target(m, nodes, n_nodes);
        if (target == 0) {
            out->reason = SRV_REPL_NO_TARGET;
            return;
        }
        if (live + 1 < majority(nv + 1)) {
            out->reason = SRV_REPL_NO_QUORUM;
            return;
        }
        out->reason = SRV_REPL_UP_REPLICATE;
        out->add = target;
    }
}

void srv__repl_plan_describe(const srv__repl_plan *p, uint64_t range_id, char *buf, size_t size) {
    switch (p->reason) {
    case SRV_REPL_REPLACE_DEAD:
        snprintf(buf, size, "replace dead node %" PRIu64 " by node %" PRIu64 " in range %" PRIu64,
                 p->remove, p->add, range_id);
        break;
    case SRV_REPL_DECOMMISSION:
        if (p->add != 0)
            snprintf(buf, size, "decommission node %" PRIu64 ": replace it by node %" PRIu64
                     " in range %" PRIu64, p->remove, p->add, range_id);
        else
            snprintf(buf, size, "decommission node %" PRIu64 ": remove it from range %" PRIu64
                     " (%zu voters, %zu wanted)", p->remove, range_id, p->n_voters, p->want);
        break;
    case SRV_REPL_REMOVE_DEAD:
        snprintf(buf, size, "remove dead node %" PRIu64 " from range %" PRIu64
                 " (%zu voters, %zu wanted)", p->remove, range_id, p->n_voters, p->want);
        break;
    case SRV_REPL_REMOVE_LEARNER:
        snprintf(buf, size, "remove the learner on dead node %" PRIu64 " from range %" PRIu64,
                 p->remove, range_id);
        break;
    case SRV_REPL_UP_REPLICATE:
        snprintf(buf, size, "add node %" PRIu64 " to range %" PRIu64 " (%zu voters, %zu wanted)",
                 p->add, range_id, p->n_voters, p->want);
        break;
    case SRV_REPL_NO_TARGET:
        if (p->remove != 0)
            snprintf(buf, size, "range %" PRIu64 " has a voter on dead or leaving node %" PRIu64
                     " but no live node without a replica of it", range_id, p->remove);
        else
            snprintf(buf, size, "range %" PRIu64 " has %zu voters of %zu wanted but no live "
                     "node without a replica of it", range_id, p->n_voters, p->want);
        break;
    case SRV_REPL_NO_QUORUM:
        if (p->remove != 0)
            snprintf(buf, size, "range %" PRIu64 ": moving its replica off node %" PRIu64
                     " would leave its live voters without a majority", range_id, p->remove);
        else
            snprintf(buf, size, "range %" PRIu64 ": adding a voter would leave its live voters "
                     "without a majority", range_id);
        break;
    default:
        snprintf(buf, size, "range %" PRIu64 ": nothing to do", range_id);
        break;
    }
}

uint64_t srv__repl_lease_target(const raft_membership *m, uint64_t self,
                                const srv__repl_node *nodes, size_t n_nodes) {
    const srv__repl_node *best = NULL;
    for (size_t i = 0; i < m->n_voters; i++) {
        const srv__repl_node *x = find_node(nodes, n_nodes, m->voters[i]);
        if (x == NULL || x->node_id == self || !usable(x)) continue;
        if (best == NULL || x->leases < best->leases ||
            (x->leases == best->leases && x->node_id < best->node_id))
            best = x;
    }
    return best != NULL ? best->node_id : 0;
}

int srv__decommission_check(const srv_status_row *rows, size_t n_rows, uint64_t target,
                            int replication, char *why, size_t why_size) {
    size_t left = 0;
    for (size_t i = 0; i < n_rows; i++) {
        const srv_status_row *w = &rows[i];
        if (w->node_id != target && w->liveness == SRV_LIVENESS_LIVE &&
            w->membership == SRV_MEMBERSHIP_ACTIVE && !w->draining)
            left++;
    }
    size_t factor = replication > 0 ? (size_t)replication : 1;
    if (left >= factor) return SRV_OK;
    snprintf(why, why_size, "decommissioning node %" PRIu64 " would leave %zu live, active and "
             "not draining node%s, fewer than the replication factor %zu: its replicas would have "
             "nowhere to go (add a node first)", target, left, left == 1 ? "" : "s", factor);
    return SRV_ERR_REFUSED;
}

/* ---- the queue (periodic thread) --------------------------------------------------- */

void srv__replq_init(srv__replq *q, uint64_t self, int replication) {
    memset(q, 0, sizeof *q);
    q->self = self;
    q->replication = replication;
    srv__worker_init(&q->worker);
    for (size_t i = 0; i < SRV_REPL_SLOTS; i++) {
        atomic_store(&q->slots[i].cb_state, CB_NONE);
        atomic_store(&q->slots[i].cb_rc, 0);
    }
}

void srv__replq_free(srv__replq *q) {
    srv__replq_stop(q); /* normally done already */
    base_free(q->rows);
    q->rows = NULL;
    q->n_rows = 0;
    for (size_t i = 0; i < SRV_REPL_SLOTS; i++) {
        range_descriptor_free(&q->slots[i].job_desc);
        range_descriptor_free(&q->slots[i].start_desc);
    }
    srv__worker_destroy(&q->worker);
}

void srv__replq_stop(srv__replq *q) { srv__worker_stop(&q->worker); }

/* The worker: runs the queued phases one at a time (txn_db_change_replicas
** blocks for the whole phase: DESCRIBE, PREPARE, the step, END_TXN, per
** step). A phase in flight at a stop ends with the router's shutdown. */
static void *replq_worker_main(void *arg) {
    srv__replq *q = arg;
    srv__worker *w = &q->worker;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        srv__repl_change *c = NULL;
        for (size_t i = 0; i < SRV_REPL_SLOTS && c == NULL; i++)
            if (q->slots[i].job_queued) c = &q->slots[i];
        if (c == NULL) {
            pthread_cond_wait(&w->cond, &w->mu);
            continue;
        }
        c->job_queued = false;
        range_descriptor d = c->job_desc; /* owner: here now */
        memset(&c->job_desc, 0, sizeof c->job_desc);
        uint64_t add = c->job_add, remove = c->job_remove;
        pthread_mutex_unlock(&w->mu);
        txn_error err = {{0}, {0}};
        BASE_DEBUG(MOD, "replicate queue: r%" PRIu64 " +%" PRIu64 " -%" PRIu64
                   ": each step with its meta transaction", d.range_id, add, remove);
        int rc = txn_db_change_replicas(q->db, &d, add, remove, NULL, &err);
        if (rc != TXN_OK)
            BASE_INFO(MOD, "replicate queue: r%" PRIu64 " +%" PRIu64 " -%" PRIu64
                      ": error %d: %s", d.range_id, add, remove, rc, err.message);
        range_descriptor_free(&d);
        atomic_store(&c->cb_rc, rc);
        atomic_store(&c->cb_state, CB_DONE);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Hand c's phase to the worker (c->cb_state goes CB_PENDING; the worker
** makes it CB_DONE). The add phase is asked from the range as it is here;
** the remove phase of a replacement from the range as the add found it,
** with the add again (a voter by then: nothing to do), so the remove is
** refused if it would leave fewer voters than that (txn_db_change_replicas:
** the add did not happen as planned). SRV_OK or SRV_ERR_NOMEM. */
static int job_queue(srv__replq *q, srv__repl_change *c, range_replica *r) {
    range_descriptor d;
    uint64_t add = c->phase == 0 ? c->plan.add : 0, remove = 0;
    if (c->phase == 0 || c->plan.add == 0 || c->start_desc.range_id == 0) {
        if (range_replica_descriptor(r, &d) != RANGE_OK) return SRV_ERR_NOMEM;
    } else if (range_descriptor_copy(&d, &c->start_desc) != RANGE_OK) {
        return SRV_ERR_NOMEM;
    }
    if (c->phase == 0) {
        range_descriptor_free(&c->start_desc);
        if (range_descriptor_copy(&c->start_desc, &d) != RANGE_OK) {
            range_descriptor_free(&d);
            return SRV_ERR_NOMEM;
        }
    } else {
        add = c->plan.add;
        remove = c->plan.remove;
    }
    pthread_mutex_lock(&q->worker.mu);
    range_descriptor_free(&c->job_desc);
    c->job_desc = d;
    c->job_add = add;
    c->job_remove = remove;
    c->job_queued = true;
    atomic_store(&c->cb_state, CB_PENDING);
    pthread_cond_broadcast(&q->worker.cond);
    pthread_mutex_unlock(&q->worker.mu);
    return SRV_OK;
}

int srv__replq_note_liveness(srv__replq *q, const srv_status_row *rows, size_t n,
                             int64_t now_wall_ns, int64_t now_ns) {
    srv_status_row *copy = base_calloc(n ? n : 1, sizeof *copy); /* owner: q */
    if (copy == NULL) return SRV_ERR_NOMEM;
    if (n > 0) memcpy(copy, rows, n * sizeof *copy);
    base_free(q->rows);
    q->rows = copy;
    q->n_rows = n;
    q->rows_wall_ns = now_wall_ns;
    q->rows_at_ns = now_ns;
    return SRV_OK;
}

bool srv__replq_take_meta_due(srv__replq *q) {
    bool due = q->meta_due;
    q->meta_due = false;
    return due;
}

/* The callback of a proposed step (any thread, under the range node's mutex). */
static void on_step_applied(void *ctx, int rc) {
    srv__repl_change *c = ctx;
    atomic_store(&c->cb_rc, rc);
    atomic_store(&c->cb_state, CB_DONE);
}

static srv__repl_backoff *backoff_find(srv__replq *q, uint64_t range_id) {
    for (size_t i = 0; i < q->n_backoff; i++)
        if (q->backoff[i].range_id == range_id) return &q->backoff[i];
    return NULL;
}

static void backoff_clear(srv__replq *q, uint64_t range_id) {
    srv__repl_backoff *b = backoff_find(q, range_id);
    if (b != NULL) *b = q->backoff[--q->n_backoff];
}

/* Back the range off: the first failure SRV_REPL_BACKOFF_MIN_MS, then
** doubling. A full table forgets the entry that expires first. */
static int64_t backoff_add(srv__replq *q, uint64_t range_id, int64_t now_ns) {
    srv__repl_backoff *b = backoff_find(q, range_id);
    if (b == NULL) {
        if (q->n_backoff == SRV_REPL_BACKOFF_MAX) {
            size_t oldest = 0;
            for (size_t i = 1; i < q->n_backoff; i++)
                if (q->backoff[i].until_ns < q->backoff[oldest].until_ns) oldest = i;
            q->backoff[oldest] = q->backoff[--q->n_backoff];
        }
        b = &q->backoff[q->n_backoff++];
        *b = (srv__repl_backoff){.range_id = range_id, .delay_ms = SRV_REPL_BACKOFF_MIN_MS / 2};
    }
    b->delay_ms = BASE_MIN(b->delay_ms * 2, (int64_t)SRV_REPL_BACKOFF_MAX_MS);
    b->until_ns = now_ns + b->delay_ms * 1000000;
    return b->delay_ms;
}

static size_t active_count(const srv__replq *q) {
    size_t k = 0;
    for (size_t i = 0; i < SRV_REPL_SLOTS; i++) k += q->slots[i].active;
    return k;
}

/* Free the slots given up whose callback has run since. */
static void reap_slots(srv__replq *q) {
    for (size_t i = 0; i < SRV_REPL_SLOTS; i++) {
        srv__repl_change *c = &q->slots[i];
        if (c->used && !c->active && atomic_load(&c->cb_state) != CB_PENDING) {
            c->used = false;
            atomic_store(&c->cb_state, CB_NONE);
        }
    }
}

/* Give a change up: logged, the range backed off; the slot stays taken
** until a pending step's callback ran. */
static void change_fail(srv__replq *q, srv__repl_change *c, const char *why, int rc,
                        int64_t now_ns) {
    int64_t delay_ms = backoff_add(q, c->range_id, now_ns);
    char code[32] = "";
    if (rc != 0) snprintf(code, sizeof code, ", error %d", rc);
    BASE_WARN(MOD, "replicate queue: %s: gave up (%s%s) after %" PRId64 " ms; range %" PRIu64
              " retried in %" PRId64 " s at the earliest", c->what, why, code,
              (now_ns - c->started_ns) / 1000000, c->range_id, delay_ms / 1000);
    c->active = false;
    q->failed++;
}

static void change_done(srv__replq *q, const srv__replq_env *env, srv__repl_change *c,
                        range_replica *r, int64_t now_ns) {
    range_descriptor d;
    char list[RANGE_REPLICAS_MAX * 21 + 1] = "";
    uint64_t generation = 0;
    if (range_replica_descriptor(r, &d) == RANGE_OK) {
        size_t pos = 0;
        for (size_t i = 0; i < d.n_replicas && pos < sizeof list; i++)
            pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%" PRIu64, i ? "," : "",
                                    d.replicas[i]);
        generation = d.generation;
        /* this node's router routes by the new replicas at once; meta follows */
        (void)range_router_update_descriptor(env->router, &d);
        if (env->on_change != NULL) env->on_change(env->change_ctx, c->range_id, &c->plan, &d);
        range_descriptor_free(&d);
    } else if (env->on_change != NULL) { /* the range event log: posted, written later */
        env->on_change(env->change_ctx, c->range_id, &c->plan, NULL);
    }
    BASE_INFO(MOD, "replicate queue: %s: done in %" PRId64 " ms; replicas now %s (generation %"
              PRIu64 ")", c->what, (now_ns - c->started_ns) / 1000000, list, generation);
    if (c->plan.add != 0 && env->clock != NULL) {
        q->recent[q->recent_next] = (srv__repl_recent){
            .node_id = c->plan.add, .done_wall_ns = hlc_physical_now_ns(env->clock)};
        q->recent_next = (q->recent_next + 1) % SRV_REPL_RECENT_MAX;
    }
    backoff_clear(q, c->range_id);
    c->active = false;
    q->meta_due = true;
    q->done++;
}

/* A node's state in the last liveness read; this node is live (it runs). */
static srv_liveness row_liveness(const srv__replq *q, uint64_t id) {
    if (id == q->self) return SRV_LIVENESS_LIVE;
    for (size_t i = 0; i < q->n_rows; i++)
        if (q->rows[i].node_id == id) return (srv_liveness)q->rows[i].liveness;
    return SRV_LIVENESS_UNKNOWN;
}

/* Before each step, with the latest liveness: the target is still live (and
** neither drains nor is decommissioning), and
** the removal leaves the live voters a majority (the plan checked it when
** the change started; a node may have died since). NULL: go on. */
static const char *step_refused(const srv__replq *q, const srv__repl_change *c, range_replica *r) {
    if (c->phase == 0 && row_liveness(q, c->plan.add) != SRV_LIVENESS_LIVE)
        return "the target is not live any more";
    for (size_t i = 0; c->phase == 0 && i < q->n_rows; i++)
        if (q->rows[i].node_id == c->plan.add &&
            (q->rows[i].draining || q->rows[i].membership != SRV_MEMBERSHIP_ACTIVE))
            return "the target drains or is decommissioning now";
    if (c->phase != 1) return NULL;
    raft_membership latest;
    if (range_replica_membership(r, NULL, &latest) != RANGE_OK) return "the replica is gone";
    size_t voters = 0, live = 0;
    for (size_t i = 0; i < latest.n_voters; i++) {
        if (latest.voters[i] == c->plan.remove) continue;
        voters++;
        live += row_liveness(q, latest.voters[i]) == SRV_LIVENESS_LIVE;
    }
    if (voters == 0 || live < voters / 2 + 1)
        return "the removal would leave the live voters without a majority";
    return NULL;
}

/* One step of a change: look at its last step's callback, then propose the
** next step (or move to the next phase). Never waits. */
static void change_step(srv__replq *q, const srv__replq_env *env, srv__repl_change *c,
                        bool clock_ok, int64_t now_ns) {
    int state = atomic_load(&c->cb_state);
    if (state == CB_PENDING) {
        if (now_ns >= c->deadline_ns) change_fail(q, c, "a step did not apply in time", 0, now_ns);
        return;
    }
    range_replica *r = range_node_replica(env->rnode, c->range_id);
    if (r == NULL) {
        change_fail(q, c, "the replica is gone", 0, now_ns);
        return;
    }
    if (state == CB_DONE) {
        int rc = atomic_load(&c->cb_rc);
        atomic_store(&c->cb_state, CB_NONE);
        if (c->via_txn && rc != TXN_OK) {
            change_fail(q, c, "a phase failed", rc, now_ns);
            return;
        }
        if (c->via_txn) {
            c->phase++; /* TXN_OK: the add's target is a voter, or the remove done */
        } else if (rc != RANGE_OK && rc != RANGE_ERR_DROPPED) { /* AMBIGUOUS: shutting down */
            change_fail(q, c, "a step failed", rc, now_ns);
            return;
        }
        /* applied: the next call says what is next; dropped: it proposes again */
    }
    if (now_ns >= c->deadline_ns) {
        change_fail(q, c, "not done in time (the learner may not catch up)", 0, now_ns);
        return;
    }
    if (!clock_ok) return; /* the lease is being handed away: wait or lose it */
    range_replica_status s;
    range_replica_get_status(r, &s);
    if (!s.leader) {
        change_fail(q, c, "this node is no longer the leader", 0, now_ns);
        return;
    }
    /* A new voter may not have answered a heartbeat yet: the leader lease
    ** can lapse for a moment after a promotion. Wait for it (bounded by the
    ** deadline) rather than start over. */
    if (!s.lease_valid) return;
    while (c->phase < 2) {
        uint64_t node = c->phase == 0 ? c->plan.add : c->plan.remove;
        if (node == 0) {
            c->phase++;
            continue;
        }
        range_replica_change_type type = c->phase == 0 ? RANGE_REPLICA_ADD : RANGE_REPLICA_REMOVE;
        const char *refused = step_refused(q, c, r);
        if (refused != NULL) {
            change_fail(q, c, refused, 0, now_ns);
            return;
        }
        if (c->via_txn) { /* the phase runs on the worker: polled from here */
            int rc = job_queue(q, c, r);
            if (rc != SRV_OK) change_fail(q, c, "the range's descriptor is not readable", rc,
                                          now_ns);
            return;
        }
        bool done = false;
        uint64_t hint = 0;
        atomic_store(&c->cb_state, CB_PENDING); /* before: the callback may run inside */
        int rc = range_replica_change_replicas(r, type, node, on_step_applied, c, &hint, &done);
        if (rc != RANGE_OK || done) /* the callback will not run */
            atomic_store(&c->cb_state, CB_NONE);
        if (rc == RANGE_OK && done) {
            c->phase++;
            continue;
        }
        if (rc == RANGE_OK || rc == RANGE_ERR_BUSY) return; /* proposed; or not now */
        if (rc == RANGE_ERR_NOT_LEADER)
            change_fail(q, c, "this node is no longer the leader", 0, now_ns);
        else
            change_fail(q, c, "refused", rc, now_ns);
        return;
    }
    change_done(q, env, c, r, now_ns);
}

/* The planner's view of the nodes: the liveness rows, each node's load
** raised by the adds under way toward it and by the adds done here since
** its last heartbeat. owner of the result: caller, base_free. */
static srv__repl_node *plan_nodes(const srv__replq *q) {
    srv__repl_node *nodes = base_calloc(q->n_rows ? q->n_rows : 1, sizeof *nodes);
    if (nodes == NULL) return NULL;
    for (size_t i = 0; i < q->n_rows; i++) {
        const srv_status_row *row = &q->rows[i];
        srv__repl_node *x = &nodes[i];
        *x = (srv__repl_node){.node_id = row->node_id, .liveness = row_liveness(q, row->node_id),
                              .draining = row->draining || (row->node_id == q->self && q->draining),
                              .decommissioning = row->membership != SRV_MEMBERSHIP_ACTIVE,
                              .replicas = row->replicas, .leases = row->leases};
        for (size_t k = 0; k < SRV_REPL_SLOTS; k++) {
            const srv__repl_change *c = &q->slots[k];
            if (c->active && c->plan.add == row->node_id) x->replicas++;
        }
        int64_t heartbeat_wall_ns = row->since_heartbeat_ms >= 0
                                        ? q->rows_wall_ns - row->since_heartbeat_ms * 1000000
                                        : 0;
        for (size_t k = 0; k < SRV_REPL_RECENT_MAX; k++) {
            const srv__repl_recent *a = &q->recent[k];
            if (a->node_id == row->node_id && a->done_wall_ns > heartbeat_wall_ns &&
                q->rows_wall_ns - a->done_wall_ns < SRV_REPL_RECENT_TTL_NS)
                x->replicas++;
        }
    }
    return nodes;
}

static bool membership_equal(const raft_membership *a, const raft_membership *b) {
    if (a->n_voters != b->n_voters || a->n_learners != b->n_learners) return false;
    for (size_t i = 0; i < a->n_voters; i++)
        if (!in_list(b->voters, b->n_voters, a->voters[i])) return false;
    for (size_t i = 0; i < a->n_learners; i++)
        if (!in_list(b->learners, b->n_learners, a->learners[i])) return false;
    return true;
}

static srv__repl_change *slot_for(srv__replq *q, uint64_t range_id) {
    for (size_t i = 0; i < SRV_REPL_SLOTS; i++)
        if (q->slots[i].active && q->slots[i].range_id == range_id) return &q->slots[i];
    return NULL;
}

static srv__repl_change *free_slot(srv__replq *q) {
    for (size_t i = 0; i < SRV_REPL_SLOTS; i++)
        if (!q->slots[i].used) return &q->slots[i];
    return NULL;
}

/* Look at the ranges led here and start changes (up to the bound). */
static void scan(srv__replq *q, const srv__replq_env *env, int64_t now_ns) {
    uint64_t *ids = NULL; /* owner: this function */
    srv__repl_node *nodes = NULL;
    size_t blocked = 0;
    char first_blocked[160] = "";
    if (q->rows_at_ns == 0 || now_ns - q->rows_at_ns > env->stale_ms * 1000000) return;
    if (active_count(q) >= SRV_REPL_INFLIGHT_MAX) return;
    ids = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof *ids);
    nodes = plan_nodes(q);
    if (ids == NULL || nodes == NULL) goto done;
    size_t n_ids = range_node_replica_ids(env->rnode, ids, RANGE_NODE_REPLICAS_MAX);
    if (n_ids > RANGE_NODE_REPLICAS_MAX) n_ids = RANGE_NODE_REPLICAS_MAX;
    q->scan_offset = n_ids > 0 ? (q->scan_offset + 1) % n_ids : 0;
    for (size_t k = 0; k < n_ids; k++) {
        uint64_t range_id = ids[(k + q->scan_offset) % n_ids];
        if (slot_for(q, range_id) != NULL) continue; /* one change per range */
        srv__repl_backoff *b = backoff_find(q, range_id);
        if (b != NULL && now_ns < b->until_ns) continue;
        range_replica *r = range_node_replica(env->rnode, range_id);
        if (r == NULL) continue;
        range_replica_status s;
        range_replica_get_status(r, &s);
        if (!s.leader || !s.lease_valid) continue; /* only the leaseholder changes a range */
        raft_membership applied, latest;
        if (range_replica_membership(r, &applied, &latest) != RANGE_OK) continue;
        if (!membership_equal(&applied, &latest)) continue; /* a change under way */
        srv__repl_plan p;
        srv__repl_plan_range(&applied, q->self, nodes, q->n_rows, q->replication, &p);
        if (p.reason == SRV_REPL_NOTHING) continue;
        if (p.reason == SRV_REPL_NO_TARGET || p.reason == SRV_REPL_NO_QUORUM) {
            if (blocked++ == 0)
                srv__repl_plan_describe(&p, range_id, first_blocked, sizeof first_blocked);
            continue;
        }
        if (active_count(q) >= SRV_REPL_INFLIGHT_MAX) continue; /* counted as due next scan */
        srv__repl_change *c = free_slot(q);
        if (c == NULL) continue;
        c->used = true;
        c->active = true;
        c->range_id = range_id;
        c->plan = p;
        c->phase = 0;
        c->via_txn = q->db != NULL && q->worker.started;
        range_descriptor_free(&c->start_desc);
        atomic_store(&c->cb_state, CB_NONE);
        c->started_ns = now_ns;
        c->deadline_ns = now_ns + (int64_t)SRV_REPL_CHANGE_TIMEOUT_MS * 1000000;
        srv__repl_plan_describe(&p, range_id, c->what, sizeof c->what);
        BASE_INFO(MOD, "replicate queue: %s", c->what);
        /* its load counts for the next range's choice */
        for (size_t i = 0; i < q->n_rows; i++)
            if (nodes[i].node_id == p.add) nodes[i].replicas++;
    }
    if (blocked != q->blocked_logged) {
        if (blocked > 0)
            BASE_WARN(MOD, "replicate queue: %zu range(s) led here need a change that cannot be "
                      "made now (%s%s)", blocked, first_blocked, blocked > 1 ? ", ..." : "");
        else
            BASE_INFO(MOD, "replicate queue: no range led here waits for a live node any more");
        q->blocked_logged = blocked;
    }
done:
    base_free(ids);
    base_free(nodes);
}

/* This node drains or is decommissioning (its own liveness row). */
static bool leaving(const srv__replq *q) {
    if (q->draining) return true;
    for (size_t i = 0; i < q->n_rows; i++)
        if (q->rows[i].node_id == q->self) return q->rows[i].membership != SRV_MEMBERSHIP_ACTIVE;
    return false;
}

/* A hand-off of range_id's lease to target for the event log, once: the
** transfer is started again every round while it runs. */
static void shed_post(srv__replq *q, const srv__replq_env *env, uint64_t range_id,
                      uint64_t target, const raft_membership *m) {
    if (env->on_lease_shed == NULL) return;
    for (size_t i = 0; i < q->n_shed_posted; i++)
        if (q->shed_posted[i][0] == range_id && q->shed_posted[i][1] == target) return;
    if (q->n_shed_posted == SRV_REPL_SHED_POSTED_MAX) { /* the oldest goes */
        memmove(&q->shed_posted[0], &q->shed_posted[1],
                (SRV_REPL_SHED_POSTED_MAX - 1) * sizeof q->shed_posted[0]);
        q->n_shed_posted--;
    }
    q->shed_posted[q->n_shed_posted][0] = range_id;
    q->shed_posted[q->n_shed_posted][1] = target;
    q->n_shed_posted++;
    bool decommissioning = false; /* the stronger reason when it also drains */
    for (size_t i = 0; i < q->n_rows; i++)
        if (q->rows[i].node_id == q->self)
            decommissioning = q->rows[i].membership != SRV_MEMBERSHIP_ACTIVE;
    char reason[64];
    snprintf(reason, sizeof reason, "%s node %" PRIu64,
             decommissioning ? "decommission" : "drain", q->self);
    env->on_lease_shed(env->change_ctx, range_id, target, m->voters, m->n_voters, reason);
}

/* Hand every lease held here to another voter (srv__repl_lease_target).
** range_replica_transfer_lease only starts a transfer (RANGE_OK again while
** it runs to the same target), so this never waits; a lease taken back by
** an election is handed away at the next round. Needs no clock bound: it
** gives serving away. Each hand-off is posted to the event log once. */
static void shed_leases(srv__replq *q, const srv__replq_env *env) {
    uint64_t *ids = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof *ids); /* owner: here */
    srv__repl_node *nodes = plan_nodes(q);
    size_t held = 0, started = 0, stuck = 0;
    uint64_t first_stuck = 0;
    if (ids == NULL || nodes == NULL) goto done;
    size_t n_ids = range_node_replica_ids(env->rnode, ids, RANGE_NODE_REPLICAS_MAX);
    if (n_ids > RANGE_NODE_REPLICAS_MAX) n_ids = RANGE_NODE_REPLICAS_MAX;
    for (size_t k = 0; k < n_ids; k++) {
        range_replica *r = range_node_replica(env->rnode, ids[k]);
        if (r == NULL) continue;
        range_replica_status s;
        range_replica_get_status(r, &s);
        if (!s.leader) continue;
        held++;
        raft_membership applied, latest;
        if (range_replica_membership(r, &applied, &latest) != RANGE_OK) continue;
        uint64_t target = srv__repl_lease_target(&applied, q->self, nodes, q->n_rows);
        if (target != 0 && !in_list(latest.voters, latest.n_voters, target)) target = 0;
        if (target == 0 || range_replica_transfer_lease(r, target, NULL) != RANGE_OK) {
            if (stuck++ == 0) first_stuck = ids[k];
            continue;
        }
        started++;
        shed_post(q, env, ids[k], target, &latest);
        for (size_t i = 0; i < q->n_rows; i++) /* spread the next ones */
            if (nodes[i].node_id == target) nodes[i].leases++;
    }
    if (held == 0) q->n_shed_posted = 0; /* a lease coming back is handed off anew */
    if (held != q->shed_logged) {
        if (held > 0)
            BASE_INFO(MOD, "leaving: handing %zu lease(s) to other voters (%zu transfer(s) "
                      "running%s)", held, started, stuck > 0 ? "; some have no live target" : "");
        else
            BASE_INFO(MOD, "leaving: no lease held here any more");
        if (stuck > 0)
            BASE_WARN(MOD, "leaving: range %" PRIu64 " has no live, active, not draining voter "
                      "to take its lease (%zu such range(s)); it stays here", first_stuck, stuck);
        q->shed_logged = held;
    }
done:
    base_free(ids);
    base_free(nodes);
}

int64_t srv__replq_run(srv__replq *q, const srv__replq_env *env, int64_t now_ns) {
    bool clock_ok = hlc_epsilon(env->clock, NULL) == HLC_EPSILON_OK;
    /* the txn path once SQL is open; the worker is started once (a failed
    ** start keeps the plain path) */
    if (env->db != NULL && q->db == NULL) q->db = env->db;
    if (q->db != NULL && !q->worker.started && !q->worker.start_failed &&
        srv__worker_start(&q->worker, replq_worker_main, q) != SRV_OK)
        BASE_WARN(MOD, "replicate queue: no worker thread; its steps leave meta to the repair");
    reap_slots(q);
    for (size_t i = 0; i < SRV_REPL_SLOTS; i++)
        if (q->slots[i].active) change_step(q, env, &q->slots[i], clock_ok, now_ns);
    bool shedding = leaving(q);
    if (shedding && now_ns >= q->next_shed_ns) {
        q->next_shed_ns = now_ns + (int64_t)SRV_REPL_SHED_MS * 1000000;
        shed_leases(q, env);
    }
    if (now_ns >= q->next_scan_ns) {
        q->next_scan_ns = now_ns + env->scan_ms * 1000000;
        if (!clock_ok && !q->clock_logged)
            BASE_INFO(MOD, "replicate queue: not acting while the clock offset bound is "
                      "unavailable");
        q->clock_logged = !clock_ok;
        /* a leaving node hands its leases away: a change it started would
        ** be given up when the lease goes; the next leaseholder plans it */
        if (clock_ok && !shedding) scan(q, env, now_ns);
    }
    int64_t next = q->next_scan_ns;
    if (active_count(q) > 0 || q->meta_due)
        next = BASE_MIN(next, now_ns + (int64_t)SRV_REPL_POLL_MS * 1000000);
    if (shedding) next = BASE_MIN(next, q->next_shed_ns);
    return next;
}
