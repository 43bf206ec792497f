/*
** server/srv_ranges.c: the operator's view of ranges (docs/operations.md).
**
** SHOW RANGES asks every node that is not dead what it hosts (the RANGES
** rpc method: each replica's descriptor, whether it leads and holds the
** lease, its term, and storage_approximate_size of its span in that
** node's store: table files and memtables, so data written a moment ago
** counts), adds what meta lists, and merges per range id: the
** newest descriptor anyone reported, the leaseholder (a valid lease, the
** highest term), the size and the load (reads and writes per second its
** range_server evaluated, range_server_get_load) at the leaseholder. Only
** a replica knows whether
** it holds the lease, so asking the replicas is the one way to name
** leaseholders that this node's router never talked to.
**
** ALTER RANGE ... RELOCATE checks the request against that overview and
** the liveness records (a range that exists, a node that exists, is a
** voter or is not, and is live), installs the range's descriptor in this
** node's router, then calls range_router_transfer_lease or
** range_router_change_replicas, and records the event (its own
** transaction, after the operation; a failure to record is logged only).
**
** The replicate queue's changes, and the leases a draining or
** decommissioning node hands away, are posted here
** (srv__admin_on_repl_change, srv__admin_on_lease_shed: periodic thread,
** never blocking) and written by the periodic thread's next
** srv__admin_flush_events.
**
** Invariants:
**   - nothing here holds a transaction open across an rpc wait or a
**     router call: the cluster's state is read in one read-only transaction
**     that ends before the fan-out;
**   - every wait is bounded (SRV_RANGES_CALL_TIMEOUT_MS per call,
**     SRV_RANGES_FANOUT_MAX calls in flight at once; the router's own
**     deadlines) and every list has a maximum (SRV_PEERS_MAX nodes,
**     SRV_RANGES_SCAN_ROWS_MAX meta entries, RANGE_NODE_REPLICAS_MAX
**     reports per node, SRV_RANGE_EVENTS_PENDING_MAX events queued);
**   - a refusal changes nothing: every check runs before the router call.
*/
#include "server/srv_ranges.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "srv"
#define RANGES_WIRE_VERSION 1
#define RANGES_RATE_MILLI_MAX (1ULL << 50) /* a load figure on the wire, thousandths */
#define REASON_MANUAL "manual relocate"

/* ---- codec ------------------------------------------------------------------------------ */

void srv__range_reports_free(srv__range_report *r, size_t n) {
    if (r == NULL) return;
    for (size_t i = 0; i < n; i++) range_descriptor_free(&r[i].desc);
    base_free(r);
}

int srv__ranges_req_encode(base_buf *out) { return srv__put_u8(out, RANGES_WIRE_VERSION); }

int srv__ranges_req_decode(const uint8_t *p, size_t len) {
    return len == 1 && p[0] == RANGES_WIRE_VERSION ? SRV_OK : SRV_ERR_CORRUPT;
}

/* A rate on the wire: thousandths, clamped to [0, RANGES_RATE_MILLI_MAX]. */
static uint64_t rate_milli(double per_second) {
    if (!(per_second > 0.0)) return 0; /* NaN too */
    double m = per_second * 1000.0 + 0.5;
    return m >= (double)RANGES_RATE_MILLI_MAX ? RANGES_RATE_MILLI_MAX : (uint64_t)m;
}

int srv__ranges_encode(const srv__range_report *r, size_t n, base_buf *out) {
    base_buf d = {0}; /* owner: this function */
    if (n > RANGE_NODE_REPLICAS_MAX) return SRV_ERR_INVALID;
    int rc = srv__put_u8(out, RANGES_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u32(out, (uint32_t)n);
    for (size_t i = 0; rc == SRV_OK && i < n; i++) {
        uint8_t flags = (uint8_t)((r[i].leader ? 1 : 0) | (r[i].lease_valid ? 2 : 0) |
                                  (r[i].has_load ? 4 : 0));
        rc = srv__put_u8(out, flags);
        if (rc == SRV_OK) rc = srv__put_u64(out, r[i].term);
        if (rc == SRV_OK)
            rc = srv__put_u64(out, r[i].size_bytes < 0 ? 0 : (uint64_t)r[i].size_bytes + 1);
        if (rc == SRV_OK && r[i].has_load)
            rc = srv__put_u64(out, rate_milli(r[i].reads_per_second));
        if (rc == SRV_OK && r[i].has_load)
            rc = srv__put_u64(out, rate_milli(r[i].writes_per_second));
        base_buf_reset(&d);
        if (rc == SRV_OK && range_descriptor_encode(&r[i].desc, &d) != RANGE_OK) rc = SRV_ERR_NOMEM;
        if (rc == SRV_OK) rc = srv__put_blob(out, d.data, d.len);
    }
    base_buf_free(&d);
    return rc;
}

int srv__ranges_decode(const uint8_t *p, size_t len, srv__range_report **out, size_t *n) {
    srv__reader r = {p, len, false};
    *out = NULL;
    *n = 0;
    if (srv__get_u8(&r) != RANGES_WIRE_VERSION) return SRV_ERR_CORRUPT;
    uint32_t count = srv__get_u32(&r);
    /* each entry takes at least 1 + 8 + 8 + 4 bytes: no allocation by a forged count */
    if (r.bad || count > RANGE_NODE_REPLICAS_MAX || count > r.left / 21) return SRV_ERR_CORRUPT;
    srv__range_report *v = base_calloc(count ? count : 1, sizeof *v); /* owner: caller */
    if (v == NULL) return SRV_ERR_NOMEM;
    size_t k = 0;
    int rc = SRV_OK;
    for (; k < count; k++) {
        uint8_t flags = srv__get_u8(&r);
        v[k].term = srv__get_u64(&r);
        uint64_t size = srv__get_u64(&r);
        if ((flags & 4) != 0) {
            uint64_t reads = srv__get_u64(&r), writes = srv__get_u64(&r);
            if (reads > RANGES_RATE_MILLI_MAX || writes > RANGES_RATE_MILLI_MAX) r.bad = true;
            v[k].has_load = true;
            v[k].reads_per_second = (double)reads / 1000.0;
            v[k].writes_per_second = (double)writes / 1000.0;
        }
        size_t dl = 0;
        const uint8_t *d = srv__get_blob(&r, RANGE_DESC_KEY_MAX * 2 + 1024, &dl);
        if (r.bad || (flags & ~7u) != 0 || size > (uint64_t)INT64_MAX ||
            range_descriptor_decode(d, dl, &v[k].desc) != RANGE_OK) {
            rc = SRV_ERR_CORRUPT;
            break;
        }
        v[k].leader = (flags & 1) != 0;
        v[k].lease_valid = (flags & 2) != 0;
        v[k].size_bytes = size == 0 ? -1 : (int64_t)(size - 1);
    }
    if (rc == SRV_OK && r.left != 0) rc = SRV_ERR_CORRUPT;
    if (rc != SRV_OK) {
        srv__range_reports_free(v, k);
        return rc;
    }
    *out = v;
    *n = count;
    return SRV_OK;
}

int srv__ranges_local(range_node *rnode, storage_engine *engine, range_server *rserver,
                      srv__range_report **out, size_t *n) {
    uint64_t *ids = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof *ids); /* owner: here */
    srv__range_report *v = NULL;
    size_t k = 0;
    *out = NULL;
    *n = 0;
    if (ids == NULL) return SRV_ERR_NOMEM;
    size_t n_ids = BASE_MIN(range_node_replica_ids(rnode, ids, RANGE_NODE_REPLICAS_MAX),
                            (size_t)RANGE_NODE_REPLICAS_MAX);
    v = base_calloc(n_ids ? n_ids : 1, sizeof *v); /* owner: caller */
    if (v == NULL) {
        base_free(ids);
        return SRV_ERR_NOMEM;
    }
    for (size_t i = 0; i < n_ids; i++) {
        range_replica *rep = range_node_replica(rnode, ids[i]);
        if (rep == NULL || range_replica_descriptor(rep, &v[k].desc) != RANGE_OK) continue;
        range_replica_status st;
        range_replica_get_status(rep, &st);
        v[k].leader = st.leader;
        v[k].lease_valid = st.leader && st.lease_valid;
        v[k].term = st.term;
        uint64_t size = 0;
        const range_descriptor *d = &v[k].desc;
        /* an end of +infinity is NULL for storage (an empty non-NULL end is an empty span) */
        v[k].size_bytes = storage_approximate_size(engine, d->start_key, d->start_len,
                                                   d->end_len ? d->end_key : NULL, d->end_len,
                                                   &size) == STORAGE_OK && size <= INT64_MAX
                              ? (int64_t)size
                              : -1;
        v[k].has_load = rserver != NULL &&
                        range_server_get_load(rserver, d->range_id, &v[k].reads_per_second,
                                              &v[k].writes_per_second, NULL) == RANGE_OK;
        k++;
    }
    base_free(ids);
    *out = v;
    *n = k;
    return SRV_OK;
}

/* ---- merge (pure) ---------------------------------------------------------------------- */

void srv__range_views_free(srv__range_view *v, size_t n) {
    if (v == NULL) return;
    for (size_t i = 0; i < n; i++) range_descriptor_free(&v[i].desc);
    base_free(v);
}

typedef struct merge_item {
    const range_descriptor *desc;
    const srv__range_report *report; /* NULL: from meta */
    uint64_t from;
} merge_item;

static int item_cmp(const void *x, const void *y) {
    const merge_item *a = x, *b = y;
    if (a->desc->range_id != b->desc->range_id)
        return a->desc->range_id < b->desc->range_id ? -1 : 1;
    if (a->desc->generation != b->desc->generation) /* newest first */
        return a->desc->generation > b->desc->generation ? -1 : 1;
    if ((a->report != NULL) != (b->report != NULL)) return a->report != NULL ? -1 : 1;
    return a->from < b->from ? -1 : a->from > b->from ? 1 : 0;
}

int srv__ranges_merge(const srv__range_report *reports, const uint64_t *from, size_t n,
                      const range_descriptor *meta, size_t n_meta, srv__range_view **out,
                      size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    merge_item *items = base_calloc(n + n_meta + 1, sizeof *items); /* owner: here */
    srv__range_view *views = base_calloc(n + n_meta + 1, sizeof *views); /* owner: caller */
    if (items == NULL || views == NULL) {
        base_free(items);
        base_free(views);
        return SRV_ERR_NOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        items[m++] = (merge_item){&reports[i].desc, &reports[i], from[i]};
    for (size_t i = 0; i < n_meta; i++) items[m++] = (merge_item){&meta[i], NULL, 0};
    if (m > 0) qsort(items, m, sizeof *items, item_cmp);
    size_t nv = 0;
    int rc = SRV_OK;
    for (size_t i = 0; i < m && rc == SRV_OK;) {
        size_t j = i;
        while (j < m && items[j].desc->range_id == items[i].desc->range_id) j++;
        srv__range_view *v = &views[nv];
        if (range_descriptor_copy(&v->desc, items[i].desc) != RANGE_OK) {
            rc = SRV_ERR_NOMEM;
            break;
        }
        nv++;
        v->size_bytes = -1;
        uint64_t best_term = 0;
        for (size_t k = i; k < j; k++) {
            const srv__range_report *r = items[k].report;
            if (r == NULL) continue;
            v->n_reports++;
            bool known = false; /* the nodes hosting a replica, at any generation */
            for (size_t h = 0; h < v->n_hosts && !known; h++) known = v->hosts[h] == items[k].from;
            if (!known && v->n_hosts < SRV_RANGE_HOSTS_MAX) v->hosts[v->n_hosts++] = items[k].from;
            if (r->lease_valid && (v->lease_holder == 0 || r->term > best_term)) {
                v->lease_holder = items[k].from;
                best_term = r->term;
                if (r->size_bytes >= 0) v->size_bytes = r->size_bytes;
                v->has_load = r->has_load; /* what its leaseholder evaluated */
                v->reads_per_second = r->reads_per_second;
                v->writes_per_second = r->writes_per_second;
            }
        }
        for (size_t k = i; v->lease_holder == 0 && k < j; k++) { /* no leaseholder: the largest */
            const srv__range_report *r = items[k].report;
            if (r != NULL && r->size_bytes > v->size_bytes) v->size_bytes = r->size_bytes;
        }
        if (v->lease_holder != 0 && v->size_bytes < 0) {
            for (size_t k = i; k < j; k++) {
                const srv__range_report *r = items[k].report;
                if (r != NULL && r->size_bytes > v->size_bytes) v->size_bytes = r->size_bytes;
            }
        }
        i = j;
    }
    base_free(items);
    if (rc != SRV_OK) {
        srv__range_views_free(views, nv);
        return rc;
    }
    *out = views;
    *n_out = nv;
    return SRV_OK;
}

/* ---- the cluster as this node reads it --------------------------------------------------- */

typedef struct node_view {
    uint64_t id;
    srv_addr rpc;
    srv_liveness liveness;
    bool draining;      /* its liveness record says so */
    uint8_t membership; /* srv_membership, from its liveness record */
} node_view;

typedef struct cluster_view {
    node_view *nodes; /* owned, by id as found */
    size_t n_nodes;
    range_descriptor *meta; /* owned */
    size_t n_meta;
    srv__range_view *ranges; /* owned: the merged overview */
    size_t n_ranges;
} cluster_view;

static void view_free(cluster_view *v) {
    base_free(v->nodes);
    srv__descs_free(v->meta, v->n_meta);
    srv__range_views_free(v->ranges, v->n_ranges);
    memset(v, 0, sizeof *v);
}

static node_view *view_node(cluster_view *v, uint64_t id, bool add) {
    for (size_t i = 0; i < v->n_nodes; i++)
        if (v->nodes[i].id == id) return &v->nodes[i];
    if (!add || v->n_nodes >= SRV_PEERS_MAX) return NULL;
    node_view *grown = base_realloc(v->nodes, (v->n_nodes + 1) * sizeof *grown); /* owner: v */
    if (grown == NULL) return NULL;
    v->nodes = grown;
    node_view *x = &v->nodes[v->n_nodes++];
    *x = (node_view){.id = id, .liveness = SRV_LIVENESS_UNKNOWN};
    return x;
}

/* Every row of [start, end) to fn (bounded by SRV_RANGES_SCAN_ROWS_MAX). */
static int scan_rows(txn *t, const uint8_t *start, size_t start_len, const uint8_t *end,
                     size_t end_len, int (*fn)(cluster_view *, const uint8_t *, size_t,
                                               const uint8_t *, size_t, int64_t, int64_t),
                     cluster_view *v, int64_t now_ns, int64_t dead_after_ns, txn_error *err) {
    txn_iter *it = NULL;
    int rc = txn_scan(t, start, start_len, end, end_len, false, &it, err);
    if (rc != TXN_OK) return rc;
    for (size_t rows = 0; rows < SRV_RANGES_SCAN_ROWS_MAX; rows++) {
        const uint8_t *k, *val;
        size_t kl, vl;
        int nr = txn_iter_next(it, &k, &kl, &val, &vl, err);
        if (nr <= 0) {
            rc = nr;
            break;
        }
        if ((rc = fn(v, k, kl, val, vl, now_ns, dead_after_ns)) != TXN_OK) break;
    }
    txn_iter_close(it);
    return rc;
}

static int take_node(cluster_view *v, const uint8_t *k, size_t kl, const uint8_t *val, size_t vl,
                     int64_t now_ns, int64_t dead_after_ns) {
    (void)now_ns;
    (void)dead_after_ns;
    srv__node_record rec;
    uint64_t id = srv__key_node_id(k, kl, false);
    if (id == 0 || srv__node_record_decode(val, vl, &rec) != SRV_OK) return TXN_OK; /* skipped */
    node_view *x = view_node(v, id, true);
    if (x == NULL) return TXN_ERR_NOMEM;
    x->rpc = rec.rpc;
    return TXN_OK;
}

static int take_liveness(cluster_view *v, const uint8_t *k, size_t kl, const uint8_t *val,
                         size_t vl, int64_t now_ns, int64_t dead_after_ns) {
    srv__liveness_record rec;
    uint64_t id = srv__key_node_id(k, kl, true);
    if (id == 0 || srv__liveness_record_decode(val, vl, &rec) != SRV_OK) return TXN_OK;
    node_view *x = view_node(v, id, false); /* a node without a node record: ignored */
    if (x != NULL) {
        x->liveness = srv__liveness_state(now_ns, rec.heartbeat_ns, rec.expiration_ns,
                                          dead_after_ns);
        x->draining = rec.draining;
        x->membership = rec.membership;
    }
    return TXN_OK;
}

static int take_meta(cluster_view *v, const uint8_t *k, size_t kl, const uint8_t *val, size_t vl,
                     int64_t now_ns, int64_t dead_after_ns) {
    (void)k;
    (void)kl;
    (void)now_ns;
    (void)dead_after_ns;
    range_descriptor d;
    if (range_descriptor_decode(val, vl, &d) != RANGE_OK) return TXN_OK;
    range_descriptor *grown = base_realloc(v->meta, (v->n_meta + 1) * sizeof *grown); /* owner: v */
    if (grown == NULL) {
        range_descriptor_free(&d);
        return TXN_ERR_NOMEM;
    }
    v->meta = grown;
    v->meta[v->n_meta++] = d;
    return TXN_OK;
}

/* Node records, liveness and meta, in one read-only transaction that ends
** before anything else happens. */
static int read_state(srv__admin *a, cluster_view *v, txn_error *err) {
    txn *t = NULL;
    txn_options ro = {.read_only = true};
    int rc = txn_begin(a->db, &ro, &t);
    if (rc != TXN_OK) {
        txn_error_set(err, rc);
        return rc;
    }
    int64_t now_ns = hlc_physical_now_ns(a->clock), dead_ns = a->dead_after_ms * 1000000;
    uint8_t s[SRV_KEY_SIZE_MAX], e[SRV_KEY_SIZE_MAX];
    size_t el, sl = srv__key_node_span(s, e, &el);
    rc = scan_rows(t, s, sl, e, el, take_node, v, now_ns, dead_ns, err);
    if (rc == TXN_OK) {
        sl = srv__key_liveness_span(s, e, &el);
        rc = scan_rows(t, s, sl, e, el, take_liveness, v, now_ns, dead_ns, err);
    }
    if (rc == TXN_OK) {
        uint8_t ms[RANGE_META_PREFIX_LEN + 1], me[RANGE_META_PREFIX_LEN + 1];
        memcpy(ms, RANGE_META_PREFIX, RANGE_META_PREFIX_LEN);
        memcpy(me, RANGE_META_PREFIX, RANGE_META_PREFIX_LEN);
        me[RANGE_META_PREFIX_LEN] = 0x03; /* past 0x01 (end keys) and 0x02 (+infinity) */
        rc = scan_rows(t, ms, RANGE_META_PREFIX_LEN, me, RANGE_META_PREFIX_LEN + 1, take_meta, v,
                       now_ns, dead_ns, err);
    }
    if (rc == TXN_OK) rc = txn_commit(t, NULL, err);
    else txn_rollback(t);
    if (rc != TXN_OK) txn_error_set(err, rc);
    return rc;
}

/* The reports gathered so far (owned), and their nodes. */
typedef struct report_set {
    srv__range_report *v;
    uint64_t *from;
    size_t n, cap;
} report_set;

/* Move got[0..n) (from node) into rs; got's array is freed. */
static int reports_take(report_set *rs, srv__range_report *got, size_t n, uint64_t node) {
    if (rs->n + n > rs->cap) {
        size_t cap = BASE_MAX(rs->cap * 2, rs->n + n + 16);
        srv__range_report *v = base_realloc(rs->v, cap * sizeof *v); /* owner: rs */
        if (v == NULL) {
            srv__range_reports_free(got, n);
            return SRV_ERR_NOMEM;
        }
        rs->v = v;
        uint64_t *f = base_realloc(rs->from, cap * sizeof *f); /* owner: rs */
        if (f == NULL) {
            srv__range_reports_free(got, n);
            return SRV_ERR_NOMEM;
        }
        rs->from = f;
        rs->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        rs->v[rs->n] = got[i]; /* the descriptor's keys move with it */
        rs->from[rs->n++] = node;
    }
    base_free(got);
    return SRV_OK;
}

/* Ask every node that is not dead for its reports (SRV_RANGES_FANOUT_MAX
** at a time, each call bounded), this one directly, and merge with meta
** into v->ranges. A node that does not answer is left out. */
static int collect(srv__admin *a, cluster_view *v) {
    report_set rs = {NULL, NULL, 0, 0}; /* owner: here */
    srv__call calls[SRV_RANGES_FANOUT_MAX];
    uint64_t asked[SRV_RANGES_FANOUT_MAX];
    base_buf req = {0};
    srv__range_report *got = NULL;
    size_t n_got = 0;
    int rc = srv__ranges_req_encode(&req);
    if (rc == SRV_OK) rc = srv__ranges_local(a->rnode, a->engine, a->rserver, &got, &n_got);
    if (rc == SRV_OK) rc = reports_take(&rs, got, n_got, a->self);
    for (size_t next = 0; rc == SRV_OK && next < v->n_nodes;) {
        size_t n_calls = 0;
        for (; next < v->n_nodes && n_calls < SRV_RANGES_FANOUT_MAX; next++) {
            const node_view *x = &v->nodes[next];
            if (x->id == a->self || x->liveness == SRV_LIVENESS_DEAD || x->rpc.port == 0)
                continue;
            srv__call *c = &calls[n_calls];
            srv__call_init(c);
            if (srv__call_start(c, a->uv, &x->rpc, SRV_METHOD_RANGES, req.data, req.len,
                                SRV_RANGES_CALL_TIMEOUT_MS) != SRV_OK) {
                BASE_DEBUG(MOD, "ranges: node %" PRIu64 " not asked (rpc %d)", x->id, c->rc);
                srv__call_free(c);
                continue;
            }
            asked[n_calls++] = x->id;
        }
        for (size_t i = 0; i < n_calls; i++) { /* every started call is waited for */
            srv__call *c = &calls[i];
            srv__call_wait(c);
            if (rc == SRV_OK && c->rc == RPC_OK && c->status == SRV_OK &&
                srv__ranges_decode(c->payload.data, c->payload.len, &got, &n_got) == SRV_OK)
                rc = reports_take(&rs, got, n_got, asked[i]);
            else if (rc == SRV_OK)
                BASE_DEBUG(MOD, "ranges: node %" PRIu64 " did not answer (rpc %d, status %d)",
                           asked[i], c->rc, (int)c->status);
            srv__call_free(c);
        }
    }
    if (rc == SRV_OK)
        rc = srv__ranges_merge(rs.v, rs.from, rs.n, v->meta, v->n_meta, &v->ranges, &v->n_ranges);
    srv__range_reports_free(rs.v, rs.n);
    base_free(rs.from);
    base_buf_free(&req);
    return rc;
}

/* read_state + collect; on failure sqlstate/message set. 0 or 1. */
static int overview(srv__admin *a, cluster_view *v, char sqlstate[6], char *msg, size_t size) {
    txn_error err = {{0}, {0}};
    memset(v, 0, sizeof *v);
    int rc = read_state(a, v, &err);
    if (rc != TXN_OK) {
        base_strlcpy(sqlstate, err.sqlstate[0] ? err.sqlstate : "57P03", 6);
        snprintf(msg, size, "cannot read the cluster's nodes and ranges now: %s", err.message);
        view_free(v);
        return 1;
    }
    if (collect(a, v) != SRV_OK) {
        base_strlcpy(sqlstate, "53200", 6);
        snprintf(msg, size, "out of memory");
        view_free(v);
        return 1;
    }
    return 0;
}

int srv__admin_overview(srv__admin *a, srv__range_view **out, size_t *n, char *msg,
                        size_t size) {
    cluster_view v;
    char state[6];
    *out = NULL;
    *n = 0;
    if (overview(a, &v, state, msg, size) != 0) return SRV_ERR_UNAVAILABLE;
    *out = v.ranges; /* moved to the caller */
    *n = v.n_ranges;
    v.ranges = NULL;
    v.n_ranges = 0;
    view_free(&v);
    return SRV_OK;
}

int srv__admin_cluster(srv__admin *a, srv__node_state **nodes, size_t *n_nodes,
                       srv__range_view **ranges, size_t *n_ranges, char *msg, size_t size) {
    cluster_view v;
    char state[6];
    *nodes = NULL;
    *n_nodes = 0;
    *ranges = NULL;
    *n_ranges = 0;
    if (overview(a, &v, state, msg, size) != 0) return SRV_ERR_UNAVAILABLE;
    srv__node_state *out = base_calloc(v.n_nodes ? v.n_nodes : 1, sizeof *out); /* owner: caller */
    if (out == NULL) {
        view_free(&v);
        snprintf(msg, size, "out of memory");
        return SRV_ERR_NOMEM;
    }
    for (size_t i = 0; i < v.n_nodes; i++)
        out[i] = (srv__node_state){.node_id = v.nodes[i].id, .liveness = v.nodes[i].liveness,
                                   .draining = v.nodes[i].draining,
                                   .membership = (srv_membership)v.nodes[i].membership};
    *nodes = out;
    *n_nodes = v.n_nodes;
    *ranges = v.ranges; /* moved to the caller */
    *n_ranges = v.n_ranges;
    v.ranges = NULL;
    v.n_ranges = 0;
    view_free(&v);
    return SRV_OK;
}

/* ---- SHOW RANGES ------------------------------------------------------------------------ */

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    int c = al > 0 && bl > 0 ? memcmp(a, b, BASE_MIN(al, bl)) : 0; /* a key may be NULL */
    if (c != 0) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* Does [s, e) (e empty: +inf) overlap [qs, qe) (qe empty: +inf)? */
static bool overlaps(const range_descriptor *d, const uint8_t *qs, size_t qsl, const uint8_t *qe,
                     size_t qel) {
    bool starts_before_qe = qel == 0 || key_cmp(d->start_key, d->start_len, qe, qel) < 0;
    bool ends_after_qs = d->end_len == 0 || key_cmp(qs, qsl, d->end_key, d->end_len) < 0;
    return starts_before_qe && ends_after_qs;
}

static uint8_t *dup_key(const uint8_t *k, size_t len, bool *nomem) {
    if (len == 0) return NULL;
    uint8_t *p = base_malloc(len); /* owner: the info */
    if (p == NULL) *nomem = true;
    else memcpy(p, k, len);
    return p;
}

static int admin_ranges(void *ctx, const uint8_t *start, size_t start_len, const uint8_t *end,
                        size_t end_len, sqlv_range_info **out, size_t *n, char sqlstate[6],
                        char *msg, size_t size) {
    srv__admin *a = ctx;
    cluster_view v;
    *out = NULL;
    *n = 0;
    if (overview(a, &v, sqlstate, msg, size) != 0) return 1;
    sqlv_range_info *infos = base_calloc(v.n_ranges ? v.n_ranges : 1, sizeof *infos);
    size_t k = 0;
    bool nomem = infos == NULL;
    for (size_t i = 0; !nomem && i < v.n_ranges; i++) {
        const srv__range_view *r = &v.ranges[i];
        if (!overlaps(&r->desc, start, start_len, end, end_len)) continue;
        sqlv_range_info *x = &infos[k++];
        x->range_id = r->desc.range_id;
        x->generation = r->desc.generation;
        x->start_key = dup_key(r->desc.start_key, r->desc.start_len, &nomem);
        x->start_len = x->start_key ? r->desc.start_len : 0;
        x->end_key = dup_key(r->desc.end_key, r->desc.end_len, &nomem);
        x->end_len = x->end_key ? r->desc.end_len : 0;
        x->n_replicas = BASE_MIN(r->desc.n_replicas, (size_t)SQLV_RANGE_REPLICAS_MAX);
        memcpy(x->replicas, r->desc.replicas, x->n_replicas * sizeof x->replicas[0]);
        x->lease_holder = r->lease_holder;
        x->size_bytes = r->size_bytes;
        x->load_known = r->has_load;
        x->reads_per_second = r->reads_per_second;
        x->writes_per_second = r->writes_per_second;
    }
    view_free(&v);
    if (nomem) {
        sqlv_range_infos_free(infos, k);
        base_strlcpy(sqlstate, "53200", 6);
        snprintf(msg, size, "out of memory");
        return 1;
    }
    *out = infos;
    *n = k;
    return 0;
}

/* ---- relocations ------------------------------------------------------------------------ */

static bool has_voter(const range_descriptor *d, uint64_t node) {
    for (size_t i = 0; i < d->n_replicas; i++)
        if (d->replicas[i] == node) return true;
    return false;
}

static void voters_text(const range_descriptor *d, char *out, size_t size) {
    size_t o = 0;
    out[0] = '\0';
    o += (size_t)snprintf(out + o, size - o, "{");
    for (size_t i = 0; i < d->n_replicas && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%s%" PRIu64, i ? "," : "", d->replicas[i]);
    if (o < size) snprintf(out + o, size - o, "}");
}

static const srv__range_view *find_range(const cluster_view *v, uint64_t id) {
    for (size_t i = 0; i < v->n_ranges; i++)
        if (v->ranges[i].desc.range_id == id) return &v->ranges[i];
    return NULL;
}

/* A node id no node record has: named as such rather than as "not a
** voter". 0, or 1 with sqlstate/msg set. */
static int check_exists(cluster_view *v, uint64_t node, char sqlstate[6], char *msg,
                        size_t size) {
    if (view_node(v, node, false) != NULL) return 0;
    base_strlcpy(sqlstate, "42704", 6);
    snprintf(msg, size, "node %" PRIu64 " does not exist (meridian node status lists the nodes)",
             node);
    return 1;
}

/* The checks every relocation makes of the range and of a node it moves
** something to. 0, or 1 with sqlstate/msg set. */
static int check_range(const cluster_view *v, uint64_t range_id, const srv__range_view **out,
                       char sqlstate[6], char *msg, size_t size) {
    *out = find_range(v, range_id);
    if (*out != NULL) return 0;
    base_strlcpy(sqlstate, "42704", 6);
    snprintf(msg, size, "range %" PRIu64 " does not exist (SHOW RANGES lists the ranges)",
             range_id);
    return 1;
}

static int check_target(cluster_view *v, uint64_t node, const char *what, char sqlstate[6],
                        char *msg, size_t size) {
    const node_view *x = view_node(v, node, false);
    if (x == NULL) {
        base_strlcpy(sqlstate, "42704", 6);
        snprintf(msg, size, "node %" PRIu64 " does not exist (meridian node status lists the "
                 "nodes)", node);
        return 1;
    }
    if (x->liveness != SRV_LIVENESS_LIVE) {
        base_strlcpy(sqlstate, "55000", 6);
        snprintf(msg, size, "node %" PRIu64 " is %s: %s moves only to a live node", node,
                 srv_liveness_name(x->liveness), what);
        return 1;
    }
    /* a leaving node hands its leases and (decommissioning) replicas away:
    ** one moved to it would only move again */
    if (x->membership != SRV_MEMBERSHIP_ACTIVE || x->draining) {
        base_strlcpy(sqlstate, "55000", 6);
        snprintf(msg, size, "node %" PRIu64 " is %s: %s moves only to an active node that is "
                 "not draining", node, x->membership != SRV_MEMBERSHIP_ACTIVE
                                          ? srv_membership_name((srv_membership)x->membership)
                                          : "draining", what);
        return 1;
    }
    return 0;
}

/* The router's answer to a relocation as sqlstate and message. */
static void router_failed(srv__admin *a, int rc, const char *what, char sqlstate[6], char *msg,
                          size_t size) {
    char detail[256] = "";
    range_kv *kv = range_router_kv(a->router);
    if (kv->ops->last_error == NULL || !kv->ops->last_error(kv, detail, sizeof detail))
        snprintf(detail, sizeof detail, "error %d", rc);
    const char *state = rc == RANGE_NOT_FOUND         ? "42704"
                        : rc == RANGE_ERR_INVALID     ? "22023"
                        : rc == RANGE_ERR_UNAVAILABLE ? "57P03"
                        : rc == RANGE_ERR_NOMEM       ? "53200"
                                                      : "XX000";
    base_strlcpy(sqlstate, state, 6);
    snprintf(msg, size, "%s failed: %s%s", what, detail,
             rc == RANGE_ERR_UNAVAILABLE ? " (running the statement again goes on from where "
                                           "the range is)"
                                         : "");
}

static void set_replicas(txn_range_event *e, const range_descriptor *d, uint64_t plus,
                         uint64_t minus) {
    e->n_replicas = 0;
    for (size_t i = 0; d != NULL && i < d->n_replicas; i++)
        if (d->replicas[i] != minus && e->n_replicas < TXN_RANGE_EVENT_REPLICAS_MAX)
            e->replicas[e->n_replicas++] = d->replicas[i];
    if (plus != 0 && (d == NULL || !has_voter(d, plus)) &&
        e->n_replicas < TXN_RANGE_EVENT_REPLICAS_MAX && d != NULL)
        e->replicas[e->n_replicas++] = plus;
}

/* Events of a manual operation, written now (best effort). */
static void log_now(srv__admin *a, const txn_range_event *ev, size_t n) {
    txn_error err = {{0}, {0}};
    if (txn_db_log_range_events(a->db, ev, n, &err) != TXN_OK)
        BASE_WARN(MOD, "range event log: %s of r%" PRIu64 " not recorded (%s)",
                  txn_range_event_kind_name(ev[0].kind), ev[0].range_id, err.message);
}

static int admin_relocate_lease(void *ctx, uint64_t range_id, uint64_t target, char sqlstate[6],
                                char *msg, size_t size) {
    srv__admin *a = ctx;
    cluster_view v;
    const srv__range_view *r = NULL;
    char voters[RANGE_REPLICAS_MAX * 21 + 3];
    int result = 1;
    if (overview(a, &v, sqlstate, msg, size) != 0) return 1;
    if (check_range(&v, range_id, &r, sqlstate, msg, size) != 0) goto done;
    if (check_exists(&v, target, sqlstate, msg, size) != 0) goto done;
    if (!has_voter(&r->desc, target)) {
        voters_text(&r->desc, voters, sizeof voters);
        base_strlcpy(sqlstate, "22023", 6);
        snprintf(msg, size, "node %" PRIu64 " is not a voter of range %" PRIu64 " (voters %s)",
                 target, range_id, voters);
        goto done;
    }
    if (check_target(&v, target, "a lease", sqlstate, msg, size) != 0) goto done;
    if (r->lease_holder == target) { /* already there: nothing to do, nothing to record */
        result = 0;
        goto done;
    }
    (void)range_router_update_descriptor(a->router, &r->desc);
    int rc = range_router_transfer_lease(a->router, range_id, target);
    if (rc != RANGE_OK) {
        char what[96];
        snprintf(what, sizeof what, "range %" PRIu64 ": the lease transfer to node %" PRIu64,
                 range_id, target);
        router_failed(a, rc, what, sqlstate, msg, size);
        goto done;
    }
    BASE_INFO(MOD, "range %" PRIu64 ": lease moved to node %" PRIu64 " (manual relocate)",
              range_id, target);
    txn_range_event ev;
    memset(&ev, 0, sizeof ev);
    ev.wall_ns = hlc_physical_now_ns(a->clock);
    ev.range_id = range_id;
    ev.kind = TXN_RANGE_EVENT_LEASE_TRANSFER;
    ev.node_id = target;
    ev.recorded_by = a->self;
    set_replicas(&ev, &r->desc, 0, 0);
    base_strlcpy(ev.reason, REASON_MANUAL, sizeof ev.reason);
    log_now(a, &ev, 1);
    result = 0;
done:
    view_free(&v);
    return result;
}

static int admin_relocate_voter(void *ctx, uint64_t range_id, uint64_t from, uint64_t to,
                                char sqlstate[6], char *msg, size_t size) {
    srv__admin *a = ctx;
    cluster_view v;
    const srv__range_view *r = NULL;
    range_descriptor after;
    char voters[RANGE_REPLICAS_MAX * 21 + 3];
    int result = 1;
    memset(&after, 0, sizeof after);
    if (overview(a, &v, sqlstate, msg, size) != 0) return 1;
    if (check_range(&v, range_id, &r, sqlstate, msg, size) != 0) goto done;
    voters_text(&r->desc, voters, sizeof voters);
    if (check_exists(&v, from, sqlstate, msg, size) != 0) goto done;
    if (!has_voter(&r->desc, from)) {
        base_strlcpy(sqlstate, "22023", 6);
        snprintf(msg, size, "node %" PRIu64 " is not a voter of range %" PRIu64 " (voters %s)",
                 from, range_id, voters);
        goto done;
    }
    if (has_voter(&r->desc, to)) {
        base_strlcpy(sqlstate, "22023", 6);
        snprintf(msg, size, "node %" PRIu64 " already holds a voter of range %" PRIu64
                 " (voters %s)", to, range_id, voters);
        goto done;
    }
    if (check_target(&v, to, "a replica", sqlstate, msg, size) != 0) goto done;
    (void)range_router_update_descriptor(a->router, &r->desc);
    /* each step commits meta(range) with it (docs/decisions/010, item 8) */
    txn_error terr = {{0}, {0}};
    int rc = a->db != NULL ? txn_db_change_replicas(a->db, &r->desc, to, from, &after, &terr)
                           : range_router_change_replicas(a->router, range_id, to, from, &after);
    if (rc != RANGE_OK && a->db != NULL) {
        base_strlcpy(sqlstate, terr.sqlstate[0] != '\0' ? terr.sqlstate : "XX000", 6);
        snprintf(msg, size, "range %" PRIu64 ": moving its voter from node %" PRIu64
                 " to node %" PRIu64 " failed: %s%s", range_id, from, to, terr.message,
                 rc == TXN_ERR_UNAVAILABLE ? " (running the statement again goes on from "
                                             "where the range is)"
                                           : "");
        goto done;
    }
    if (rc != RANGE_OK) {
        char what[128];
        snprintf(what, sizeof what, "range %" PRIu64 ": moving its voter from node %" PRIu64
                 " to node %" PRIu64, range_id, from, to);
        router_failed(a, rc, what, sqlstate, msg, size);
        goto done;
    }
    voters_text(&after, voters, sizeof voters);
    BASE_INFO(MOD, "range %" PRIu64 ": voter moved from node %" PRIu64 " to node %" PRIu64
              " (manual relocate); voters now %s", range_id, from, to, voters);
    txn_range_event ev[2];
    memset(ev, 0, sizeof ev);
    ev[0].wall_ns = hlc_physical_now_ns(a->clock);
    ev[0].range_id = range_id;
    ev[0].kind = TXN_RANGE_EVENT_ADD_REPLICA;
    ev[0].node_id = to;
    ev[0].recorded_by = a->self;
    set_replicas(&ev[0], &r->desc, to, 0);
    base_strlcpy(ev[0].reason, REASON_MANUAL, sizeof ev[0].reason);
    ev[1] = ev[0];
    ev[1].wall_ns += 1000; /* after the add, also at the microseconds SQL shows */
    ev[1].kind = TXN_RANGE_EVENT_REMOVE_REPLICA;
    ev[1].node_id = from;
    set_replicas(&ev[1], &after, 0, 0);
    log_now(a, ev, 2);
    result = 0;
done:
    range_descriptor_free(&after);
    view_free(&v);
    return result;
}

/* ---- the node's side ------------------------------------------------------------------------ */

void srv__admin_init(srv__admin *a) {
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
}

void srv__admin_destroy(srv__admin *a) { pthread_mutex_destroy(&a->mu); }

void srv__admin_sql(srv__admin *a, sqlv_admin *out) {
    *out = (sqlv_admin){.ctx = a, .node_id = a->self, .ranges = admin_ranges,
                        .relocate_lease = admin_relocate_lease,
                        .relocate_voter = admin_relocate_voter};
}

void srv__admin_post_event(srv__admin *a, const txn_range_event *e) {
    pthread_mutex_lock(&a->mu);
    if (a->n_pending == SRV_RANGE_EVENTS_PENDING_MAX) { /* the oldest goes */
        memmove(&a->pending[0], &a->pending[1], (a->n_pending - 1) * sizeof a->pending[0]);
        a->n_pending--;
        if (a->dropped++ == 0)
            BASE_WARN(MOD, "range event log: queue full, oldest events dropped");
    }
    a->pending[a->n_pending++] = *e;
    pthread_mutex_unlock(&a->mu);
}

void srv__admin_flush_events(srv__admin *a) {
    txn_range_event *batch = NULL; /* owner: here */
    size_t n = 0;
    pthread_mutex_lock(&a->mu);
    if (a->n_pending > 0) {
        batch = base_malloc(a->n_pending * sizeof *batch);
        if (batch != NULL) {
            n = a->n_pending;
            memcpy(batch, a->pending, n * sizeof *batch);
            a->n_pending = 0;
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (n == 0 || a->db == NULL) {
        base_free(batch);
        return;
    }
    txn_error err = {{0}, {0}};
    if (txn_db_log_range_events(a->db, batch, n, &err) != TXN_OK)
        BASE_WARN(MOD, "range event log: %zu replicate queue event(s) not recorded (%s)", n,
                  err.message);
    base_free(batch);
}

void srv__admin_on_lease_shed(void *ctx, uint64_t range_id, uint64_t target,
                              const uint64_t *voters, size_t n_voters, const char *reason) {
    srv__admin *a = ctx;
    txn_range_event e;
    memset(&e, 0, sizeof e);
    e.wall_ns = a->clock != NULL ? hlc_physical_now_ns(a->clock) : 0;
    e.range_id = range_id;
    e.kind = TXN_RANGE_EVENT_LEASE_TRANSFER;
    e.node_id = target;
    e.recorded_by = a->self;
    for (size_t i = 0; i < n_voters && e.n_replicas < TXN_RANGE_EVENT_REPLICAS_MAX; i++)
        e.replicas[e.n_replicas++] = voters[i];
    base_strlcpy(e.reason, reason, sizeof e.reason);
    srv__admin_post_event(a, &e);
}

void srv__admin_on_repl_change(void *ctx, uint64_t range_id, const srv__repl_plan *plan,
                               const range_descriptor *after) {
    srv__admin *a = ctx;
    txn_range_event e;
    memset(&e, 0, sizeof e);
    e.wall_ns = a->clock != NULL ? hlc_physical_now_ns(a->clock) : 0;
    e.range_id = range_id;
    e.recorded_by = a->self;
    switch (plan->reason) {
    case SRV_REPL_REPLACE_DEAD:
        snprintf(e.reason, sizeof e.reason, "replace dead node %" PRIu64, plan->remove);
        break;
    case SRV_REPL_DECOMMISSION:
        snprintf(e.reason, sizeof e.reason, "decommission node %" PRIu64, plan->remove);
        break;
    case SRV_REPL_REMOVE_DEAD:
        snprintf(e.reason, sizeof e.reason, "remove dead node %" PRIu64 " (%zu voters, %zu wanted)",
                 plan->remove, plan->n_voters, plan->want);
        break;
    case SRV_REPL_REMOVE_LEARNER:
        snprintf(e.reason, sizeof e.reason, "remove the learner on dead node %" PRIu64,
                 plan->remove);
        break;
    case SRV_REPL_UP_REPLICATE:
        snprintf(e.reason, sizeof e.reason, "up-replicate (%zu voters, %zu wanted)",
                 plan->n_voters, plan->want);
        break;
    default: snprintf(e.reason, sizeof e.reason, "replicate queue"); break;
    }
    if (plan->add != 0) {
        e.kind = TXN_RANGE_EVENT_ADD_REPLICA;
        e.node_id = plan->add;
        set_replicas(&e, after, plan->remove, 0); /* before the removal */
        srv__admin_post_event(a, &e);
        e.wall_ns += 1000;
    }
    if (plan->remove != 0) {
        e.kind = TXN_RANGE_EVENT_REMOVE_REPLICA;
        e.node_id = plan->remove;
        set_replicas(&e, after, 0, 0);
        srv__admin_post_event(a, &e);
    }
}
