/*
** server/srv_mergeq.c: the merge queue (srv_mergeq.h; docs/range.md
** "Merge queue", docs/operations.md "Splits and merges by hand").
**
** The queue's thread, every SRV_MERGEQ_SCAN_MS (SRV_MERGEQ_AGAIN_MS after
** a merge), when merge_enabled and this node holds the lease of a range
** whose size in its store is below range_min_bytes:
**   1. the cluster overview (srv__admin_overview: every range's newest
**      descriptor, leaseholder and size, asked of every live node);
**   2. for each range L led here (rotating the first) and the range R
**      starting where L ends: srv__mergeq_decide (both under
**      range_min_bytes, together under range_max_bytes, both cold when
**      their load is known, R's start neither a table's first key nor in
**      the system span), then R's start must not be a manual split point
**      (sql.h, read in a transaction of its own);
**   3. the first pair that passes: R's voters are moved to L's nodes
**      (range_router_change_replicas, one add and one remove at a time,
**      R's lease moved first when the voter to remove holds it), R's lease
**      is brought here, then txn_db_merge_at(R.start), then the events
**      (ADD/REMOVE_REPLICA and LEASE_TRANSFER of the co-location, MERGE
**      with the reason "size 12 KiB + 3 KiB < 16 MiB, cold").
**
** Critical invariants:
**   - only L's leaseholder merges L with its right-hand neighbour, and
**     only once R's lease is here too: two nodes never drive one pair, nor
**     two overlapping pairs (L, R) and (R, R') at once, which would freeze
**     R for one merge while it subsumes for the other (a lease moves only
**     between such attempts, and the protocol undoes the one it breaks);
**   - a boundary merged away is never a manual split point (checked after
**     the overview, before co-locating; SPLIT AT writes the point before it
**     splits; a point written while the merge ran, whose split found the
**     boundary still there, is seen again after the merge, which then
**     splits there again), a table's first key or in the system span;
**   - one merge at a time per node, at most one per round; a failed
**     co-location or merge rests both ranges SRV_MERGEQ_BACKOFF_MS, a range
**     that just subsumed its neighbour SRV_MERGEQ_MERGED_REST_MS;
**   - bounded: SRV_MERGEQ_MOVES_MAX replica changes per co-location, each
**     bounded by the router's deadline; SRV_MERGEQ_RECENT_MAX ranges
**     remembered; the overview is bounded by srv_ranges.c;
**   - recording never fails a merge and never runs inside it;
**   - the thread ends within the router's shutdown grace of a stop: every
**     wait is on its condition variable, every KV call ends with the router.
*/
#define _GNU_SOURCE
#include "server/srv_mergeq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoding/encoding.h"
#include "sql/sql.h"

#define MOD "srv"

/* ---- the rules (pure) ---------------------------------------------------------------- */

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    size_t n = BASE_MIN(al, bl);
    int c = n > 0 ? memcmp(a, b, n) : 0; /* an empty key may be NULL */
    if (c != 0) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

bool srv__mergeq_boundary_ok(const uint8_t *key, size_t len) {
    base_buf floor_key = {0};
    bool ok = false;
    if (len == 0 || enc_key_prefix(&floor_key, SRV_FIRST_TABLE_ID, 0) != ENC_OK) goto done;
    if (key_cmp(key, len, floor_key.data, floor_key.len) < 0) goto done; /* system span */
    uint32_t table = 0, index = 0;
    size_t used = 0;
    if (enc_key_decode_prefix(key, len, &table, &index, &used) != ENC_OK) goto done;
    if (table < SRV_FIRST_TABLE_ID) goto done;
    ok = !(index == 0 && used == len); /* /table/<id>: where a table's ranges begin */
done:
    base_buf_free(&floor_key);
    return ok;
}

int srv__mergeq_decide(const srv__mergeq_side *l, const srv__mergeq_side *r,
                       bool r_start_is_split_point, const srv__mergeq_limits *limits, char *why,
                       size_t why_size) {
    const range_descriptor *ld = l->desc, *rd = r->desc;
    char a[32], b[32], m[32];
    if (ld->end_len == 0 || key_cmp(ld->end_key, ld->end_len, rd->start_key, rd->start_len) != 0) {
        snprintf(why, why_size, "r%" PRIu64 " does not start where r%" PRIu64 " ends",
                 rd->range_id, ld->range_id);
        return SRV_ERR_REFUSED;
    }
    if (!srv__mergeq_boundary_ok(rd->start_key, rd->start_len)) {
        snprintf(why, why_size, "r%" PRIu64 " starts a table or lies in the system span",
                 rd->range_id);
        return SRV_ERR_REFUSED;
    }
    if (r_start_is_split_point) {
        snprintf(why, why_size, "r%" PRIu64 " starts at a manual split point", rd->range_id);
        return SRV_ERR_REFUSED;
    }
    if (l->size_bytes < 0 || r->size_bytes < 0) {
        snprintf(why, why_size, "the size of r%" PRIu64 " is not known",
                 l->size_bytes < 0 ? ld->range_id : rd->range_id);
        return SRV_ERR_REFUSED;
    }
    sqlv_bytes_human((uint64_t)l->size_bytes, a, sizeof a);
    sqlv_bytes_human((uint64_t)r->size_bytes, b, sizeof b);
    sqlv_bytes_human(limits->min_bytes > 0 ? (uint64_t)limits->min_bytes : 0, m, sizeof m);
    if (l->size_bytes >= limits->min_bytes || r->size_bytes >= limits->min_bytes) {
        snprintf(why, why_size, "size %s + %s: not both < %s", a, b, m);
        return SRV_ERR_REFUSED;
    }
    /* the merged range must not split again at once */
    if (l->size_bytes + r->size_bytes >= limits->max_bytes) {
        char x[32];
        sqlv_bytes_human(limits->max_bytes > 0 ? (uint64_t)limits->max_bytes : 0, x, sizeof x);
        snprintf(why, why_size, "size %s + %s >= range_max_bytes %s", a, b, x);
        return SRV_ERR_REFUSED;
    }
    bool load_known = l->qps >= 0 && r->qps >= 0;
    double cold_below = (double)limits->qps_threshold / 2;
    if (load_known && (l->qps >= cold_below || r->qps >= cold_below)) {
        snprintf(why, why_size, "load %.0f + %.0f qps: not both < %.0f", l->qps, r->qps,
                 cold_below);
        return SRV_ERR_REFUSED;
    }
    snprintf(why, why_size, "size %s + %s < %s%s", a, b, m, load_known ? ", cold" : "");
    return SRV_OK;
}

static bool has_voter(const range_descriptor *d, uint64_t node) {
    for (size_t i = 0; i < d->n_replicas; i++)
        if (d->replicas[i] == node) return true;
    return false;
}

void srv__mergeq_next_move(const range_descriptor *l, const range_descriptor *r,
                           uint64_t r_leaseholder, uint64_t prefer, uint64_t *add,
                           uint64_t *remove, uint64_t *transfer_to) {
    *add = *remove = *transfer_to = 0;
    for (size_t i = 0; i < l->n_replicas && *add == 0; i++)
        if (!has_voter(r, l->replicas[i])) *add = l->replicas[i];
    bool leaseholder_extra = false;
    for (size_t i = 0; i < r->n_replicas && *remove == 0; i++) {
        uint64_t v = r->replicas[i];
        if (has_voter(l, v)) continue;
        if (v == r_leaseholder) leaseholder_extra = true;
        else *remove = v;
    }
    if (*remove != 0 || !leaseholder_extra) return;
    /* only the leaseholder is left to go: its lease first, to a voter that
    ** stays (once the add is done, when there is one to do) */
    if (*add != 0) return;
    if (has_voter(l, prefer) && has_voter(r, prefer)) *transfer_to = prefer;
    for (size_t i = 0; i < r->n_replicas && *transfer_to == 0; i++)
        if (has_voter(l, r->replicas[i])) *transfer_to = r->replicas[i];
    if (*transfer_to == 0) *remove = r_leaseholder; /* no voter stays: nothing better */
}

/* ---- resting ------------------------------------------------------------------------ */

void srv__mergeq_remember(srv__mergeq *q, uint64_t range_id, int64_t now_ns, int64_t ms) {
    srv__splitq_recent_remember(q->recent, &q->n_recent, SRV_MERGEQ_RECENT_MAX, range_id, now_ns,
                                ms);
}

bool srv__mergeq_resting(const srv__mergeq *q, uint64_t range_id, int64_t now_ns) {
    return srv__splitq_recent_resting(q->recent, q->n_recent, range_id, now_ns);
}

/* ---- the queue ------------------------------------------------------------------------ */

int srv__mergeq_admin_overview(void *ctx, srv__range_view **out, size_t *n, char *msg,
                               size_t size) {
    return srv__admin_overview(ctx, out, n, msg, size);
}

void srv__mergeq_init(srv__mergeq *q) {
    memset(q, 0, sizeof *q);
    srv__worker_init(&q->worker);
}

void srv__mergeq_destroy(srv__mergeq *q) { srv__worker_destroy(&q->worker); }

static bool stopping(srv__mergeq *q) { return srv__worker_stopping(&q->worker); }

static void log_events(const srv__mergeq_env *env, const txn_range_event *ev, size_t n) {
    txn_error err = {{0}, {0}};
    if (txn_db_log_range_events(env->db, ev, n, &err) != TXN_OK)
        BASE_WARN(MOD, "range event log: %s of r%" PRIu64 " not recorded (%s)",
                  txn_range_event_kind_name(ev[0].kind), ev[0].range_id, err.message);
}

static void event_init(const srv__mergeq_env *env, txn_range_event *ev, uint8_t kind,
                       uint64_t range_id, const range_descriptor *after, const char *reason) {
    memset(ev, 0, sizeof *ev);
    ev->wall_ns = env->clock != NULL ? hlc_physical_now_ns(env->clock) : 0;
    ev->kind = kind;
    ev->range_id = range_id;
    ev->recorded_by = env->self;
    for (size_t i = 0; after != NULL && i < after->n_replicas &&
                       ev->n_replicas < TXN_RANGE_EVENT_REPLICAS_MAX; i++)
        ev->replicas[ev->n_replicas++] = after->replicas[i];
    base_strlcpy(ev->reason, reason, sizeof ev->reason);
}

/* Move r's voters (r_desc, updated) onto l's nodes. SRV_OK once they are
** equal; else the router's failure, logged. */
static int colocate(srv__mergeq *q, const range_descriptor *l, range_descriptor *r_desc,
                    uint64_t r_leaseholder) {
    const srv__mergeq_env *env = &q->env;
    char reason[TXN_RANGE_EVENT_REASON_MAX];
    snprintf(reason, sizeof reason, "merge: co-locate r%" PRIu64 " with r%" PRIu64,
             r_desc->range_id, l->range_id);
    for (int moves = 0; moves < SRV_MERGEQ_MOVES_MAX && !stopping(q); moves++) {
        uint64_t add, remove, transfer_to;
        srv__mergeq_next_move(l, r_desc, r_leaseholder, env->self, &add, &remove, &transfer_to);
        if (add == 0 && remove == 0 && transfer_to == 0) return SRV_OK;
        (void)range_router_update_descriptor(env->router, r_desc);
        if (transfer_to != 0) {
            int rc = range_router_transfer_lease(env->router, r_desc->range_id, transfer_to);
            if (rc != RANGE_OK) {
                BASE_INFO(MOD, "merge queue: r%" PRIu64 ": moving its lease to node %" PRIu64
                          " failed (error %d)", r_desc->range_id, transfer_to, rc);
                return SRV_ERR_UNAVAILABLE;
            }
            txn_range_event ev;
            event_init(env, &ev, TXN_RANGE_EVENT_LEASE_TRANSFER, r_desc->range_id, r_desc,
                       reason);
            ev.node_id = transfer_to;
            log_events(env, &ev, 1);
            r_leaseholder = transfer_to;
            continue;
        }
        range_descriptor after;
        memset(&after, 0, sizeof after);
        /* each step commits meta(range) with it (docs/decisions/010, item 8) */
        txn_error terr = {{0}, {0}};
        int rc = txn_db_change_replicas(env->db, r_desc, add, remove, &after, &terr);
        if (rc != TXN_OK) {
            BASE_INFO(MOD, "merge queue: r%" PRIu64 ": replica change (+%" PRIu64 " -%" PRIu64
                      ") to co-locate with r%" PRIu64 " failed (error %d%s%s)", r_desc->range_id,
                      add, remove, l->range_id, rc, terr.message[0] ? ": " : "", terr.message);
            range_descriptor_free(&after);
            return SRV_ERR_UNAVAILABLE;
        }
        BASE_INFO(MOD, "merge queue: r%" PRIu64 ": replica change +%" PRIu64 " -%" PRIu64
                  " (co-locating with r%" PRIu64 ")", r_desc->range_id, add, remove,
                  l->range_id);
        txn_range_event ev[2];
        size_t n_ev = 0;
        if (add != 0) {
            event_init(env, &ev[n_ev], TXN_RANGE_EVENT_ADD_REPLICA, r_desc->range_id, &after,
                       reason);
            ev[n_ev++].node_id = add;
        }
        if (remove != 0) {
            event_init(env, &ev[n_ev], TXN_RANGE_EVENT_REMOVE_REPLICA, r_desc->range_id, &after,
                       reason);
            if (n_ev > 0) ev[n_ev].wall_ns += 1000; /* after the add, also in microseconds */
            ev[n_ev++].node_id = remove;
        }
        log_events(env, ev, n_ev);
        range_descriptor_free(r_desc);
        *r_desc = after; /* its keys move */
    }
    return stopping(q) ? SRV_ERR_UNAVAILABLE : SRV_ERR_REFUSED;
}

/* Whether this node's replica of range_id leads it with a valid lease. */
static bool leads_here(const srv__mergeq_env *env, uint64_t range_id) {
    range_replica *r = range_node_replica(env->rnode, range_id);
    if (r == NULL) return false;
    range_replica_status st;
    range_replica_get_status(r, &st);
    return st.leader && st.lease_valid;
}

/* Whether range_id, led here, may be small enough to merge: its span's
** size in this store below min_bytes (true when it cannot be measured:
** the overview decides). Saves the overview's fan-out when nothing led
** here is small. */
static bool small_here(const srv__mergeq_env *env, uint64_t range_id, int64_t min_bytes) {
    if (min_bytes <= 0) return false;
    range_replica *r = env->engine != NULL ? range_node_replica(env->rnode, range_id) : NULL;
    range_descriptor d;
    if (r == NULL || range_replica_descriptor(r, &d) != RANGE_OK) return true;
    uint64_t size = 0;
    bool small = false;
    /* the first range (its end is the system/user boundary) and the last
    ** one (it ends at +infinity) are never a left side that may merge */
    if (d.start_len > 0 && d.end_len > 0)
        small = storage_approximate_size(env->engine, d.start_key, d.start_len, d.end_key,
                                         d.end_len, &size) != STORAGE_OK ||
                size < (uint64_t)min_bytes;
    range_descriptor_free(&d);
    return small;
}

/* Whether key is a manual split point; false with *known false when the
** read failed (the pair is not merged then). */
static bool split_point(const srv__mergeq_env *env, const uint8_t *key, size_t len, bool *known) {
    txn *t = NULL;
    txn_error err = {{0}, {0}};
    txn_options ro = {.read_only = true};
    bool is = false;
    *known = false;
    int rc = txn_begin(env->db, &ro, &t);
    if (rc != TXN_OK) return false;
    rc = sqlv_split_point_get(t, key, len, &is, &err);
    if (rc == TXN_OK) rc = txn_commit(t, NULL, &err);
    else txn_rollback(t);
    *known = rc == TXN_OK;
    return *known && is;
}

/* Co-locate and merge l with r (they passed the rules). Returns whether
** they merged. */
static bool merge_pair(srv__mergeq *q, const srv__range_view *l, const srv__range_view *r,
                       const char *reason, int64_t now_ns) {
    const srv__mergeq_env *env = &q->env;
    range_descriptor r_desc;
    bool merged = false;
    if (range_descriptor_copy(&r_desc, &r->desc) != RANGE_OK) return false;
    int64_t t0 = base_monotonic_ns();
    int rc = colocate(q, &l->desc, &r_desc, r->lease_holder);
    if (rc != SRV_OK) {
        q->failures++;
        BASE_INFO(MOD, "merge queue: r%" PRIu64 " and r%" PRIu64 " not co-located; again in "
                  "%d s", l->desc.range_id, r->desc.range_id, SRV_MERGEQ_BACKOFF_MS / 1000);
        goto rest;
    }
    if (!leads_here(env, r_desc.range_id)) {
        /* both leases here: a chain of merges is then driven by one node */
        (void)range_router_update_descriptor(env->router, &r_desc);
        rc = range_router_transfer_lease(env->router, r_desc.range_id, env->self);
        if (rc != RANGE_OK) {
            q->failures++;
            BASE_INFO(MOD, "merge queue: r%" PRIu64 ": taking its lease to merge it into r%" PRIu64
                      " failed (error %d); again in %d s", r_desc.range_id, l->desc.range_id, rc,
                      SRV_MERGEQ_BACKOFF_MS / 1000);
            goto rest;
        }
        char why[TXN_RANGE_EVENT_REASON_MAX];
        snprintf(why, sizeof why, "merge: into r%" PRIu64 " led here", l->desc.range_id);
        txn_range_event ev;
        event_init(env, &ev, TXN_RANGE_EVENT_LEASE_TRANSFER, r_desc.range_id, &r_desc, why);
        ev.node_id = env->self;
        log_events(env, &ev, 1);
    }
    if (!leads_here(env, l->desc.range_id)) { /* moved away meanwhile: its holder's to do */
        BASE_INFO(MOD, "merge queue: r%" PRIu64 "'s lease left this node; r%" PRIu64
                  " not merged into it", l->desc.range_id, r_desc.range_id);
        goto done;
    }
    txn_merge_result res;
    txn_error err = {{0}, {0}};
    memset(&res, 0, sizeof res);
    rc = txn_db_merge_at(env->db, r_desc.start_key, r_desc.start_len, &res, &err);
    int64_t took_ms = (base_monotonic_ns() - t0) / 1000000;
    if (rc != TXN_OK || !res.merged) {
        q->failures++;
        if (rc != TXN_OK)
            BASE_INFO(MOD, "merge queue: merging r%" PRIu64 " into r%" PRIu64 " failed (error "
                      "%d: %s); again in %d s", r->desc.range_id, l->desc.range_id, rc,
                      err.message, SRV_MERGEQ_BACKOFF_MS / 1000);
        else
            BASE_INFO(MOD, "merge queue: r%" PRIu64 " no longer starts where r%" PRIu64
                      " ends; again in %d s", r->desc.range_id, l->desc.range_id,
                      SRV_MERGEQ_BACKOFF_MS / 1000);
        goto rest;
    }
    merged = true;
    q->merges++;
    uint64_t left = res.left_range_id != 0 ? res.left_range_id : l->desc.range_id;
    uint64_t right = res.right_range_id != 0 ? res.right_range_id : r->desc.range_id;
    BASE_INFO(MOD, "merge queue: r%" PRIu64 " subsumed r%" PRIu64 " (%s) in %" PRId64 " ms", left,
              right, reason, took_ms);
    txn_range_event ev;
    event_init(env, &ev, TXN_RANGE_EVENT_MERGE, left, &l->desc, reason);
    ev.other_range_id = right;
    log_events(env, &ev, 1);
    srv__mergeq_remember(q, left, now_ns, SRV_MERGEQ_MERGED_REST_MS);
    /* a SPLIT AT of this key that raced the merge (its point written after
    ** the check, its split a no-op on the boundary still there): split again */
    bool known = false;
    if (split_point(env, r_desc.start_key, r_desc.start_len, &known)) {
        txn_split_result sres;
        memset(&err, 0, sizeof err);
        rc = txn_db_split_at(env->db, r_desc.start_key, r_desc.start_len, &sres, &err);
        BASE_WARN(MOD, "merge queue: r%" PRIu64 "'s start became a manual split point during "
                  "the merge: split again (%s)", right, rc == TXN_OK ? "done" : err.message);
    }
    goto done;
rest:
    srv__mergeq_remember(q, l->desc.range_id, now_ns, SRV_MERGEQ_BACKOFF_MS);
    srv__mergeq_remember(q, r->desc.range_id, now_ns, SRV_MERGEQ_BACKOFF_MS);
done:
    range_descriptor_free(&r_desc);
    return merged;
}

static int view_start_cmp(const void *x, const void *y) {
    const srv__range_view *a = *(const srv__range_view *const *)x;
    const srv__range_view *b = *(const srv__range_view *const *)y;
    return key_cmp(a->desc.start_key, a->desc.start_len, b->desc.start_key, b->desc.start_len);
}

/* The view starting at key in by_start[0..n) (sorted by start key), or NULL. */
static const srv__range_view *view_starting(srv__range_view *const *by_start, size_t n,
                                            const uint8_t *key, size_t len) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(by_start[mid]->desc.start_key, by_start[mid]->desc.start_len, key, len);
        if (c == 0) return by_start[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Reads + writes per second at the leaseholder; -1 when not known. */
static double view_qps(const srv__range_view *v) {
    return v->has_load ? v->reads_per_second + v->writes_per_second : -1;
}

static const srv__range_view *view_by_id(const srv__range_view *v, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++)
        if (v[i].desc.range_id == id) return &v[i];
    return NULL;
}

int srv__mergeq_round(srv__mergeq *q, int64_t now_ns) {
    const srv__mergeq_env *env = &q->env;
    int merged = 0;
    size_t n_led = 0, n_views = 0;
    srv__range_view *views = NULL;    /* owner: here */
    srv__range_view **by_start = NULL; /* owner: here; points into views */
    uint64_t *led = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof *led); /* owner: here */
    if (led == NULL) goto done;
    if (!srv_setting_get_bool(env->settings, SQLV_SETTING_MERGE_ENABLED)) {
        if (!q->disabled_logged) BASE_INFO(MOD, "merge queue: off (merge_enabled = false)");
        q->disabled_logged = true;
        goto done;
    }
    if (q->disabled_logged) BASE_INFO(MOD, "merge queue: on again (merge_enabled = true)");
    q->disabled_logged = false;
    /* the ranges whose lease is here (no overview when there are none) */
    size_t n_ids = BASE_MIN(range_node_replica_ids(env->rnode, led, RANGE_NODE_REPLICAS_MAX),
                            (size_t)RANGE_NODE_REPLICAS_MAX);
    int64_t min_bytes = srv_setting_get_int(env->settings, SQLV_SETTING_RANGE_MIN_BYTES);
    for (size_t i = 0; i < n_ids; i++)
        if (leads_here(env, led[i]) && small_here(env, led[i], min_bytes)) led[n_led++] = led[i];
    if (n_led == 0) goto done; /* nothing led here may merge: no overview */
    char msg[256] = "";
    if (env->overview(env->overview_ctx, &views, &n_views, msg, sizeof msg) != SRV_OK) {
        BASE_DEBUG(MOD, "merge queue: no overview of the ranges now (%s)", msg);
        views = NULL;
        n_views = 0;
        goto done;
    }
    by_start = base_calloc(n_views ? n_views : 1, sizeof *by_start);
    if (by_start == NULL) goto done;
    for (size_t i = 0; i < n_views; i++) by_start[i] = &views[i];
    if (n_views > 1) qsort(by_start, n_views, sizeof *by_start, view_start_cmp);
    srv__mergeq_limits limits = {
        .min_bytes = min_bytes,
        .max_bytes = srv_setting_get_int(env->settings, SQLV_SETTING_RANGE_MAX_BYTES),
        .qps_threshold = srv_setting_get_int(env->settings, SQLV_SETTING_SPLIT_QPS_THRESHOLD),
    };
    q->scan_offset = (q->scan_offset + 1) % n_led;
    for (size_t k = 0; k < n_led && merged == 0 && !stopping(q); k++) {
        uint64_t id = led[(k + q->scan_offset) % n_led];
        const srv__range_view *l = view_by_id(views, n_views, id);
        if (l == NULL || l->desc.end_len == 0 || srv__mergeq_resting(q, id, now_ns)) continue;
        const srv__range_view *r =
            view_starting(by_start, n_views, l->desc.end_key, l->desc.end_len);
        if (r == NULL || srv__mergeq_resting(q, r->desc.range_id, now_ns)) continue;
        srv__mergeq_side ls = {&l->desc, l->size_bytes, view_qps(l)},
                         rs = {&r->desc, r->size_bytes, view_qps(r)};
        char why[SRV_MERGEQ_REASON_MAX];
        if (srv__mergeq_decide(&ls, &rs, false, &limits, why, sizeof why) != SRV_OK) {
            BASE_DEBUG(MOD, "merge queue: r%" PRIu64 " + r%" PRIu64 ": no (%s)", l->desc.range_id,
                       r->desc.range_id, why);
            continue;
        }
        bool known = false;
        if (split_point(env, r->desc.start_key, r->desc.start_len, &known) || !known) {
            BASE_DEBUG(MOD, "merge queue: r%" PRIu64 " + r%" PRIu64 ": no (%s)", l->desc.range_id,
                       r->desc.range_id, known ? "a manual split point" : "split point unknown");
            continue;
        }
        if (merge_pair(q, l, r, why, now_ns)) merged = 1;
        break; /* one attempt per round */
    }
done:
    base_free(by_start);
    srv__range_views_free(views, n_views);
    base_free(led);
    return merged;
}

static void *mergeq_main(void *arg) {
    srv__mergeq *q = arg;
    int64_t scan_ns = (q->env.scan_ms > 0 ? q->env.scan_ms : SRV_MERGEQ_SCAN_MS) * 1000000;
    int64_t next_round = base_monotonic_ns() + scan_ns;
    while (!stopping(q)) {
        int64_t now = base_monotonic_ns();
        if (now >= next_round) {
            int merged = srv__mergeq_round(q, now);
            next_round = base_monotonic_ns() +
                         (merged ? (int64_t)SRV_MERGEQ_AGAIN_MS * 1000000 : scan_ns);
        }
        srv__worker_wait(&q->worker, next_round);
    }
    return NULL;
}

int srv__mergeq_start(srv__mergeq *q, const srv__mergeq_env *env) {
    if (q->worker.started) return SRV_OK;
    q->env = *env;
    return srv__worker_start(&q->worker, mergeq_main, q);
}

void srv__mergeq_stop(srv__mergeq *q) { srv__worker_stop(&q->worker); }
