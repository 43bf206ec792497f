/*
** server/srv_plan.c: the pure decisions of server/: who gets which node id
** and which replicas at bootstrap, the initial KV data of a cluster, the
** liveness state of a record, and the `meridian node status` table.
**
** Invariants:
**   - a bootstrap plan never holds two peers with one transport id (a node
**     listed twice in --join), never holds the INIT node twice, and never
**     places two replicas of a range on one node;
**   - the initial KV data is a pure function of the peer table and the
**     initial descriptors, so every replica of the first range writes the
**     same bytes at the same timestamp (the replicas start identical, as
**     after a snapshot);
**   - the initial ranges tile the key space: range 1 = [empty, /table/100)
**     (system keys, meta, catalog, counters), range 2 = [/table/100, +inf)
**     (user tables, each split off at its CREATE TABLE), on the same nodes;
**   - liveness: live while now < expiration; dead once no heartbeat for
**     dead_after; suspect in between (and never live after expiration).
*/
#include "server/srv_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "encoding/encoding.h"

int srv__plan_bootstrap(const srv_addr *self_rpc, const srv_addr *self_sql,
                        uint64_t self_transport_id, const srv__probe_answer *answers,
                        size_t n_answers, int replication, srv__plan *out) {
    memset(out, 0, sizeof *out);
    if (replication < 1 || n_answers > SRV_JOIN_ADDRS_MAX) return SRV_ERR_INVALID;
    for (size_t i = 0; i < n_answers; i++) {
        if (answers[i].answered && answers[i].initialized &&
            answers[i].transport_id != self_transport_id)
            return SRV_ERR_INITIALIZED;
    }
    size_t cap = n_answers + 1;
    int rc = SRV_ERR_NOMEM;
    out->peers = base_calloc(cap, sizeof *out->peers);         /* owner: out (plan_free) */
    out->answer_index = base_calloc(cap, sizeof *out->answer_index); /* owner: out */
    out->descs = base_calloc(SRV_INITIAL_RANGES, sizeof *out->descs); /* owner: out */
    if (out->peers == NULL || out->answer_index == NULL || out->descs == NULL) goto fail;

    out->peers[0] = (srv_peer){.node_id = 1, .rpc = *self_rpc, .sql = *self_sql};
    out->answer_index[0] = -1;
    out->n_peers = 1;
    for (size_t i = 0; i < n_answers; i++) {
        const srv__probe_answer *a = &answers[i];
        if (!a->answered || a->initialized || a->transport_id == self_transport_id) continue;
        bool seen = false;
        for (size_t j = 1; j < out->n_peers; j++) {
            if (answers[out->answer_index[j]].transport_id == a->transport_id) seen = true;
        }
        if (seen) continue; /* the same node under two addresses */
        out->peers[out->n_peers] =
            (srv_peer){.node_id = (uint64_t)out->n_peers + 1, .rpc = a->addr, .sql = a->sql};
        out->answer_index[out->n_peers] = (int)i;
        out->n_peers++;
    }

    /* range 1: system keys, meta, catalog and counters; range 2: the user
    ** tables (docs/range.md, "Splits and addressing") */
    base_buf boundary = {0}; /* owner: this function */
    if (enc_key_prefix(&boundary, SRV_FIRST_TABLE_ID, 0) != ENC_OK) goto fail;
    size_t k = BASE_MIN((size_t)replication, out->n_peers);
    if (k > RANGE_REPLICAS_MAX) k = RANGE_REPLICAS_MAX;
    for (size_t r = 0; r < SRV_INITIAL_RANGES; r++) {
        range_descriptor *d = &out->descs[r];
        d->range_id = r + 1;
        d->generation = 1;
        uint8_t **bound = r == 0 ? &d->end_key : &d->start_key;
        *bound = base_malloc(boundary.len); /* owner: the descriptor */
        if (*bound == NULL) {
            base_buf_free(&boundary);
            goto fail;
        }
        memcpy(*bound, boundary.data, boundary.len);
        if (r == 0) d->end_len = boundary.len;
        else d->start_len = boundary.len;
        for (size_t i = 0; i < k; i++) d->replicas[i] = out->peers[i].node_id;
        d->n_replicas = k;
        out->n_descs = r + 1;
    }
    base_buf_free(&boundary);
    return SRV_OK;
fail:
    srv__plan_free(out);
    return rc;
}

void srv__plan_free(srv__plan *p) {
    base_free(p->peers);
    base_free(p->answer_index);
    srv__descs_free(p->descs, p->n_descs);
    memset(p, 0, sizeof *p);
}

void srv__kvs_free(srv__kv *kvs, size_t n) {
    if (kvs == NULL) return;
    for (size_t i = 0; i < n; i++) {
        base_free(kvs[i].key);
        base_free(kvs[i].value);
    }
    base_free(kvs);
}

/* Copy key and value bytes into kv. */
static int kv_set(srv__kv *kv, const uint8_t *key, size_t key_len, const base_buf *value) {
    kv->key = base_malloc(key_len);              /* owner: the kv list */
    kv->value = base_malloc(value->len ? value->len : 1); /* owner: the kv list */
    if (kv->key == NULL || kv->value == NULL) return SRV_ERR_NOMEM;
    memcpy(kv->key, key, key_len);
    kv->key_len = key_len;
    memcpy(kv->value, value->data, value->len);
    kv->value_len = value->len;
    return SRV_OK;
}

int srv__initial_kv(const srv_peer *peers, size_t n, const range_descriptor *descs,
                    size_t n_descs, srv__kv **kvs, size_t *n_kvs) {
    *kvs = NULL;
    *n_kvs = 0;
    if (n == 0 || n > SRV_PEERS_MAX || n_descs > SRV_RANGES_MAX) return SRV_ERR_INVALID;
    /* node-id counter, node records, range-id counter, meta entries */
    srv__kv *list = base_calloc(n + 2 + n_descs, sizeof *list); /* owner: *kvs (caller) */
    base_buf v = {0};
    uint8_t key[SRV_KEY_SIZE_MAX];
    int rc = SRV_ERR_NOMEM;
    size_t used = 0;
    if (list == NULL) goto fail;
    uint64_t max_id = 0;
    for (size_t i = 0; i < n; i++) max_id = BASE_MAX(max_id, peers[i].node_id);
    if ((rc = srv__counter_encode(max_id + 1, &v)) != SRV_OK) goto fail;
    used = 1;
    if ((rc = kv_set(&list[0], key, srv__key_counter(key), &v)) != SRV_OK) goto fail;
    for (size_t i = 0; i < n; i++) {
        base_buf_reset(&v);
        srv__node_record rec = {.rpc = peers[i].rpc, .sql = peers[i].sql, .join_token = 0};
        if ((rc = srv__node_record_encode(&rec, &v)) != SRV_OK) goto fail;
        used++;
        if ((rc = kv_set(&list[i + 1], key, srv__key_node(key, peers[i].node_id), &v)) != SRV_OK)
            goto fail;
    }
    if (n_descs > 0) {
        /* the range-id counter above the initial ranges, and their meta
        ** entries (range/meta.c) */
        uint64_t max_range = 0;
        uint8_t enc[RANGE_ID_COUNTER_SIZE];
        for (size_t i = 0; i < n_descs; i++) max_range = BASE_MAX(max_range, descs[i].range_id);
        range_id_counter_encode(max_range + 1, enc);
        base_buf_reset(&v);
        if (base_buf_append(&v, enc, sizeof enc) != 0) {
            rc = SRV_ERR_NOMEM;
            goto fail;
        }
        used++;
        if ((rc = kv_set(&list[n + 1], (const uint8_t *)RANGE_ID_COUNTER_KEY,
                         RANGE_ID_COUNTER_KEY_LEN, &v)) != SRV_OK)
            goto fail;
        base_buf mk = {0}; /* owner: this block */
        for (size_t i = 0; i < n_descs; i++) {
            base_buf_reset(&v);
            int r = range_meta_key(&descs[i], &mk);
            if (r == RANGE_OK) r = range_descriptor_encode(&descs[i], &v);
            if (r != RANGE_OK) {
                base_buf_free(&mk);
                rc = r == RANGE_ERR_NOMEM ? SRV_ERR_NOMEM : SRV_ERR_INVALID;
                goto fail;
            }
            used++;
            if ((rc = kv_set(&list[n + 2 + i], mk.data, mk.len, &v)) != SRV_OK) {
                base_buf_free(&mk);
                goto fail;
            }
        }
        base_buf_free(&mk);
    }
    base_buf_free(&v);
    *kvs = list;
    *n_kvs = n_descs > 0 ? n + 2 + n_descs : n + 1;
    return SRV_OK;
fail:
    base_buf_free(&v);
    srv__kvs_free(list, used);
    return rc;
}

srv_liveness srv__liveness_state(int64_t now_ns, int64_t heartbeat_ns, int64_t expiration_ns,
                                 int64_t dead_after_ns) {
    if (heartbeat_ns <= 0 && expiration_ns <= 0) return SRV_LIVENESS_UNKNOWN;
    if (now_ns < expiration_ns) return SRV_LIVENESS_LIVE;
    if (now_ns - heartbeat_ns >= dead_after_ns) return SRV_LIVENESS_DEAD;
    return SRV_LIVENESS_SUSPECT;
}

const char *srv_liveness_name(srv_liveness l) {
    switch (l) {
    case SRV_LIVENESS_LIVE: return "live";
    case SRV_LIVENESS_SUSPECT: return "suspect";
    case SRV_LIVENESS_DEAD: return "dead";
    default: return "unknown";
    }
}

const char *srv_membership_name(srv_membership m) {
    switch (m) {
    case SRV_MEMBERSHIP_ACTIVE: return "active";
    case SRV_MEMBERSHIP_DECOMMISSIONING: return "decommissioning";
    case SRV_MEMBERSHIP_DECOMMISSIONED: return "decommissioned";
    default: return "unknown";
    }
}

int srv_status_format(const srv_status *s, base_buf *out) {
    static const char *const head[] = {"id", "rpc address", "sql address", "liveness",
                                       "membership", "draining", "replicas", "leases"};
    enum { COLS = 8, CELL = 300 };
    size_t width[COLS];
    for (int c = 0; c < COLS; c++) width[c] = strlen(head[c]);
    /* Two passes: widths, then text. Cells are rebuilt in the second pass
    ** rather than stored, so the only memory is the output buffer. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (int c = 0; c < COLS; c++) {
                if (base_buf_printf(out, "%s%-*s", c ? "  " : "", (int)width[c], head[c]) != 0)
                    return SRV_ERR_NOMEM;
            }
            if (base_buf_printf(out, "\n") != 0) return SRV_ERR_NOMEM;
            for (int c = 0; c < COLS; c++) {
                if (base_buf_printf(out, "%s", c ? "  " : "") != 0) return SRV_ERR_NOMEM;
                for (size_t i = 0; i < width[c]; i++) {
                    if (base_buf_append_byte(out, '-') != 0) return SRV_ERR_NOMEM;
                }
            }
            if (base_buf_printf(out, "\n") != 0) return SRV_ERR_NOMEM;
        }
        for (size_t r = 0; r < s->n_rows; r++) {
            const srv_status_row *w = &s->rows[r];
            char cell[COLS][CELL];
            snprintf(cell[0], CELL, "%" PRIu64, w->node_id);
            srv__addr_format(&w->rpc, cell[1], CELL);
            srv__addr_format(&w->sql, cell[2], CELL);
            if (w->since_heartbeat_ms < 0)
                snprintf(cell[3], CELL, "%s", srv_liveness_name((srv_liveness)w->liveness));
            else
                snprintf(cell[3], CELL, "%s (%" PRId64 ".%" PRId64 "s ago)",
                         srv_liveness_name((srv_liveness)w->liveness),
                         w->since_heartbeat_ms / 1000, (w->since_heartbeat_ms % 1000) / 100);
            snprintf(cell[4], CELL, "%s", srv_membership_name((srv_membership)w->membership));
            snprintf(cell[5], CELL, "%s", w->draining ? "yes" : "no");
            snprintf(cell[6], CELL, "%" PRIu32, w->replicas);
            snprintf(cell[7], CELL, "%" PRIu32, w->leases);
            for (int c = 0; c < COLS; c++) {
                if (pass == 0) {
                    width[c] = BASE_MAX(width[c], strlen(cell[c]));
                    continue;
                }
                bool right = c == 0 || c >= 6;
                int wd = (int)width[c];
                if (base_buf_printf(out, right ? "%s%*s" : "%s%-*s", c ? "  " : "", wd, cell[c]) != 0)
                    return SRV_ERR_NOMEM;
            }
            if (pass == 1 && base_buf_printf(out, "\n") != 0) return SRV_ERR_NOMEM;
        }
    }
    if (base_buf_printf(out, "(%zu node%s; cluster %016" PRIx64 ", answered by node %" PRIu64 ")\n",
                        s->n_rows, s->n_rows == 1 ? "" : "s", s->cluster_id, s->answered_by) != 0)
        return SRV_ERR_NOMEM;
    return SRV_OK;
}
