/*
** server/srv_wire.c: the wire codec of the node methods and the system
** records of the KV space. Pure: bytes in, structs out.
**
** Invariants: every decoder checks each length and count against the bytes
** left and a named maximum before using it, rejects an unknown version and
** trailing bytes (SRV_ERR_CORRUPT), and leaves its out-struct owning
** nothing on error. Encoders append to the caller's buffer; on NOMEM the
** buffer may hold a partial message (callers discard it).
*/
#include "server/srv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- primitives ------------------------------------------------------------- */

int srv__put_u8(base_buf *b, uint8_t v) {
    return base_buf_append_byte(b, v) == 0 ? SRV_OK : SRV_ERR_NOMEM;
}

int srv__put_u32(base_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return base_buf_append(b, x, sizeof x) == 0 ? SRV_OK : SRV_ERR_NOMEM;
}

int srv__put_u64(base_buf *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (56 - 8 * i));
    return base_buf_append(b, x, sizeof x) == 0 ? SRV_OK : SRV_ERR_NOMEM;
}

int srv__put_str(base_buf *b, const char *s) {
    size_t len = strlen(s);
    if (len >= SRV_HOST_SIZE_MAX) return SRV_ERR_INVALID;
    uint8_t x[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    if (base_buf_append(b, x, 2) != 0 || base_buf_append(b, s, len) != 0) return SRV_ERR_NOMEM;
    return SRV_OK;
}

int srv__put_blob(base_buf *b, const void *p, size_t len) {
    if (len > UINT32_MAX) return SRV_ERR_INVALID;
    int rc = srv__put_u32(b, (uint32_t)len);
    if (rc != SRV_OK) return rc;
    return base_buf_append(b, p, len) == 0 ? SRV_OK : SRV_ERR_NOMEM;
}

int srv__put_addr(base_buf *b, const srv_addr *a) {
    if (a->port < 0 || a->port > 65535) return SRV_ERR_INVALID;
    int rc = srv__put_str(b, a->host);
    if (rc != SRV_OK) return rc;
    return srv__put_u32(b, (uint32_t)a->port);
}

static bool need(srv__reader *r, size_t n) {
    if (r->bad || r->left < n) {
        r->bad = true;
        return false;
    }
    return true;
}

uint8_t srv__get_u8(srv__reader *r) {
    if (!need(r, 1)) return 0;
    uint8_t v = r->p[0];
    r->p++;
    r->left--;
    return v;
}

uint32_t srv__get_u32(srv__reader *r) {
    if (!need(r, 4)) return 0;
    uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
                 r->p[3];
    r->p += 4;
    r->left -= 4;
    return v;
}

uint64_t srv__get_u64(srv__reader *r) {
    if (!need(r, 8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | r->p[i];
    r->p += 8;
    r->left -= 8;
    return v;
}

void srv__get_str(srv__reader *r, char *out, size_t out_size) {
    out[0] = '\0';
    if (!need(r, 2)) return;
    size_t len = (size_t)r->p[0] << 8 | r->p[1];
    r->p += 2;
    r->left -= 2;
    if (len >= out_size || !need(r, len) || memchr(r->p, 0, len) != NULL) {
        r->bad = true;
        return;
    }
    memcpy(out, r->p, len);
    out[len] = '\0';
    r->p += len;
    r->left -= len;
}

const uint8_t *srv__get_blob(srv__reader *r, size_t max, size_t *len) {
    *len = 0;
    size_t n = srv__get_u32(r);
    if (r->bad || n > max || !need(r, n)) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    *len = n;
    return p;
}

void srv__get_addr(srv__reader *r, srv_addr *out) {
    srv__get_str(r, out->host, sizeof out->host);
    uint32_t port = srv__get_u32(r);
    if (port > 65535) r->bad = true;
    out->port = (int)port;
}

bool srv__addr_equal(const srv_addr *a, const srv_addr *b) {
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

char *srv__addr_format(const srv_addr *a, char *buf, size_t size) {
    if (a->host[0] == '\0') snprintf(buf, size, "-");
    else if (strchr(a->host, ':') != NULL) snprintf(buf, size, "[%s]:%d", a->host, a->port);
    else snprintf(buf, size, "%s:%d", a->host, a->port);
    return buf;
}

static srv__reader reader_start(const uint8_t *p, size_t len) {
    srv__reader r = {p, len, false};
    if (srv__get_u8(&r) != SRV_WIRE_VERSION) r.bad = true;
    return r;
}

static int reader_end(const srv__reader *r) {
    return (r->bad || r->left != 0) ? SRV_ERR_CORRUPT : SRV_OK;
}

/* ---- peers and descriptors ------------------------------------------------------ */

int srv__peers_encode(const srv_peer *peers, size_t n, base_buf *out) {
    if (n > SRV_PEERS_MAX) return SRV_ERR_INVALID;
    int rc = srv__put_u32(out, (uint32_t)n);
    for (size_t i = 0; rc == SRV_OK && i < n; i++) {
        rc = srv__put_u64(out, peers[i].node_id);
        if (rc == SRV_OK) rc = srv__put_addr(out, &peers[i].rpc);
        if (rc == SRV_OK) rc = srv__put_addr(out, &peers[i].sql);
    }
    return rc;
}

static int peer_cmp(const void *a, const void *b) {
    uint64_t x = ((const srv_peer *)a)->node_id, y = ((const srv_peer *)b)->node_id;
    return x < y ? -1 : x > y ? 1 : 0;
}

int srv__peers_decode(srv__reader *r, srv_peer **peers, size_t *n) {
    *peers = NULL;
    *n = 0;
    uint32_t count = srv__get_u32(r);
    /* Each peer takes at least 8 + 2 * (2 + 4) bytes: bound the allocation
    ** by the bytes left as well as by the named maximum. */
    if (r->bad || count > SRV_PEERS_MAX || (size_t)count * 20 > r->left) return SRV_ERR_CORRUPT;
    srv_peer *p = base_calloc(count ? count : 1, sizeof *p); /* owner: *peers (caller) */
    if (p == NULL) return SRV_ERR_NOMEM;
    for (uint32_t i = 0; i < count; i++) {
        p[i].node_id = srv__get_u64(r);
        srv__get_addr(r, &p[i].rpc);
        srv__get_addr(r, &p[i].sql);
        if (p[i].node_id == 0 || (p[i].node_id & SRV_NODE_ID_PROVISIONAL_BIT)) r->bad = true;
    }
    if (r->bad) {
        base_free(p);
        return SRV_ERR_CORRUPT;
    }
    qsort(p, count, sizeof *p, peer_cmp);
    for (uint32_t i = 1; i < count; i++) {
        if (p[i].node_id == p[i - 1].node_id) {
            base_free(p);
            return SRV_ERR_CORRUPT;
        }
    }
    *peers = p;
    *n = count;
    return SRV_OK;
}

const srv_peer *srv__peers_find(const srv_peer *peers, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++) {
        if (peers[i].node_id == id) return &peers[i];
    }
    return NULL;
}

int srv__peers_upsert(srv_peer **peers, size_t *n, const srv_peer *p, bool *changed) {
    *changed = false;
    for (size_t i = 0; i < *n; i++) {
        srv_peer *q = &(*peers)[i];
        if (q->node_id != p->node_id) continue;
        if (!srv__addr_equal(&q->rpc, &p->rpc) || !srv__addr_equal(&q->sql, &p->sql)) {
            *q = *p;
            *changed = true;
        }
        return SRV_OK;
    }
    if (*n >= SRV_PEERS_MAX) return SRV_ERR_INVALID;
    srv_peer *grown = base_realloc(*peers, (*n + 1) * sizeof *grown); /* owner: *peers */
    if (grown == NULL) return SRV_ERR_NOMEM;
    size_t at = *n;
    while (at > 0 && grown[at - 1].node_id > p->node_id) {
        grown[at] = grown[at - 1];
        at--;
    }
    grown[at] = *p;
    *peers = grown;
    (*n)++;
    *changed = true;
    return SRV_OK;
}

int srv__descs_encode(const range_descriptor *d, const bool *hosted, size_t n, base_buf *out) {
    if (n > SRV_RANGES_MAX) return SRV_ERR_INVALID;
    base_buf one = {0};
    int rc = srv__put_u32(out, (uint32_t)n);
    for (size_t i = 0; rc == SRV_OK && i < n; i++) {
        base_buf_reset(&one);
        rc = srv__put_u8(out, hosted != NULL && hosted[i] ? 1 : 0);
        if (rc == SRV_OK && range_descriptor_encode(&d[i], &one) != RANGE_OK) rc = SRV_ERR_INVALID;
        if (rc == SRV_OK) rc = srv__put_blob(out, one.data, one.len);
    }
    base_buf_free(&one);
    return rc;
}

void srv__descs_free(range_descriptor *descs, size_t n) {
    if (descs == NULL) return;
    for (size_t i = 0; i < n; i++) range_descriptor_free(&descs[i]);
    base_free(descs);
}

int srv__descs_decode(srv__reader *r, range_descriptor **descs, bool **hosted, size_t *n) {
    *descs = NULL;
    if (hosted != NULL) *hosted = NULL;
    *n = 0;
    uint32_t count = srv__get_u32(r);
    if (r->bad || count > SRV_RANGES_MAX || (size_t)count * 5 > r->left) return SRV_ERR_CORRUPT;
    range_descriptor *d = base_calloc(count ? count : 1, sizeof *d); /* owner: *descs */
    bool *h = base_calloc(count ? count : 1, sizeof *h);             /* owner: *hosted */
    size_t done = 0;
    int rc = SRV_ERR_NOMEM;
    if (d == NULL || h == NULL) goto fail;
    rc = SRV_ERR_CORRUPT;
    for (; done < count; done++) {
        uint8_t flag = srv__get_u8(r);
        size_t len;
        const uint8_t *p = srv__get_blob(r, (size_t)RANGE_DESC_KEY_MAX * 2 + 1024, &len);
        if (r->bad || flag > 1) goto fail;
        int drc = range_descriptor_decode(p, len, &d[done]);
        if (drc == RANGE_ERR_NOMEM) {
            rc = SRV_ERR_NOMEM;
            goto fail;
        }
        if (drc != RANGE_OK) goto fail;
        h[done] = flag == 1;
    }
    *descs = d;
    if (hosted != NULL) *hosted = h;
    else base_free(h);
    *n = count;
    return SRV_OK;
fail:
    srv__descs_free(d, done);
    base_free(h);
    return rc;
}

/* ---- messages ---------------------------------------------------------------------- */

int srv__probe_resp_encode(const srv__probe_resp *m, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u8(out, m->initialized ? 1 : 0);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->cluster_id);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->node_id);
    if (rc == SRV_OK) rc = srv__put_addr(out, &m->rpc);
    if (rc == SRV_OK) rc = srv__put_addr(out, &m->sql);
    return rc;
}

int srv__probe_resp_decode(const uint8_t *p, size_t len, srv__probe_resp *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = reader_start(p, len);
    uint8_t init = srv__get_u8(&r);
    if (init > 1) r.bad = true;
    out->initialized = init == 1;
    out->cluster_id = srv__get_u64(&r);
    out->node_id = srv__get_u64(&r);
    srv__get_addr(&r, &out->rpc);
    srv__get_addr(&r, &out->sql);
    return reader_end(&r);
}

int srv__init_req_encode(uint64_t token, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, token);
    return rc;
}

int srv__init_req_decode(const uint8_t *p, size_t len, uint64_t *token) {
    srv__reader r = reader_start(p, len);
    *token = srv__get_u64(&r);
    return reader_end(&r);
}

static int64_t get_clock_ns(srv__reader *r) {
    uint64_t v = srv__get_u64(r);
    if (v >= (uint64_t)HLC_WALL_LIMIT_NS) r->bad = true;
    return r->bad ? 0 : (int64_t)v;
}

int srv__clock_req_encode(int64_t sent_ns, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)sent_ns);
    return rc;
}

int srv__clock_req_decode(const uint8_t *p, size_t len, int64_t *sent_ns) {
    srv__reader r = reader_start(p, len);
    *sent_ns = get_clock_ns(&r);
    return reader_end(&r);
}

int srv__clock_resp_encode(const srv__clock_resp *m, base_buf *out) {
    uint8_t flags = (uint8_t)((m->bounded ? 1 : 0) | (m->majority ? 2 : 0));
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)m->sent_ns);
    if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)m->remote_ns);
    if (rc == SRV_OK) rc = srv__put_u8(out, flags);
    if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)m->epsilon_ns);
    return rc;
}

int srv__clock_resp_decode(const uint8_t *p, size_t len, srv__clock_resp *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = reader_start(p, len);
    out->sent_ns = get_clock_ns(&r);
    out->remote_ns = get_clock_ns(&r);
    uint8_t flags = srv__get_u8(&r);
    if (flags > 3) r.bad = true;
    out->bounded = (flags & 1) != 0;
    out->majority = (flags & 2) != 0;
    out->epsilon_ns = get_clock_ns(&r);
    return reader_end(&r);
}

int srv__init_resp_encode(uint64_t cluster_id, const srv_peer *peers, size_t n, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, cluster_id);
    if (rc == SRV_OK) rc = srv__peers_encode(peers, n, out);
    return rc;
}

int srv__init_resp_decode(const uint8_t *p, size_t len, uint64_t *cluster_id, srv_peer **peers,
                          size_t *n) {
    srv__reader r = reader_start(p, len);
    *cluster_id = srv__get_u64(&r);
    *peers = NULL;
    *n = 0;
    if (r.bad) return SRV_ERR_CORRUPT;
    int rc = srv__peers_decode(&r, peers, n);
    if (rc != SRV_OK) return rc;
    if (reader_end(&r) != SRV_OK) {
        base_free(*peers);
        *peers = NULL;
        *n = 0;
        return SRV_ERR_CORRUPT;
    }
    return SRV_OK;
}

int srv__bootstrap_encode(const srv__bootstrap *m, base_buf *out) {
    uint8_t ts[HLC_ENCODED_SIZE];
    hlc_encode(m->init_ts, ts);
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->cluster_id);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->node_id);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->init_token);
    if (rc == SRV_OK) rc = base_buf_append(out, ts, sizeof ts) == 0 ? SRV_OK : SRV_ERR_NOMEM;
    if (rc == SRV_OK) rc = srv__peers_encode(m->peers, m->n_peers, out);
    if (rc == SRV_OK) rc = srv__descs_encode(m->descs, NULL, m->n_descs, out);
    return rc;
}

void srv__bootstrap_free(srv__bootstrap *m) {
    base_free(m->peers);
    srv__descs_free(m->descs, m->n_descs);
    memset(m, 0, sizeof *m);
}

int srv__bootstrap_decode(const uint8_t *p, size_t len, srv__bootstrap *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = reader_start(p, len);
    out->cluster_id = srv__get_u64(&r);
    out->node_id = srv__get_u64(&r);
    out->init_token = srv__get_u64(&r);
    if (!r.bad && r.left >= HLC_ENCODED_SIZE) {
        out->init_ts = hlc_decode(r.p);
        r.p += HLC_ENCODED_SIZE;
        r.left -= HLC_ENCODED_SIZE;
    } else {
        r.bad = true;
    }
    if (r.bad || out->cluster_id == 0 || out->node_id == 0 ||
        (out->node_id & SRV_NODE_ID_PROVISIONAL_BIT) || out->init_ts.wall_ns < 0 ||
        out->init_ts.logical < 0)
        return SRV_ERR_CORRUPT;
    int rc = srv__peers_decode(&r, &out->peers, &out->n_peers);
    if (rc == SRV_OK) rc = srv__descs_decode(&r, &out->descs, NULL, &out->n_descs);
    if (rc == SRV_OK) rc = reader_end(&r);
    if (rc == SRV_OK && srv__peers_find(out->peers, out->n_peers, out->node_id) == NULL)
        rc = SRV_ERR_CORRUPT;
    if (rc != SRV_OK) srv__bootstrap_free(out);
    return rc;
}

int srv__join_req_encode(const srv__join_req *m, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->token);
    if (rc == SRV_OK) rc = srv__put_addr(out, &m->rpc);
    if (rc == SRV_OK) rc = srv__put_addr(out, &m->sql);
    return rc;
}

int srv__join_req_decode(const uint8_t *p, size_t len, srv__join_req *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = reader_start(p, len);
    out->token = srv__get_u64(&r);
    srv__get_addr(&r, &out->rpc);
    srv__get_addr(&r, &out->sql);
    if (!r.bad && (out->token == 0 || out->rpc.host[0] == '\0' || out->rpc.port == 0))
        r.bad = true;
    return reader_end(&r);
}

int srv__join_resp_encode(const srv__join_resp *m, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->cluster_id);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->node_id);
    if (rc == SRV_OK) rc = srv__peers_encode(m->peers, m->n_peers, out);
    if (rc == SRV_OK) rc = srv__descs_encode(m->descs, NULL, m->n_descs, out);
    return rc;
}

void srv__join_resp_free(srv__join_resp *m) {
    base_free(m->peers);
    srv__descs_free(m->descs, m->n_descs);
    memset(m, 0, sizeof *m);
}

int srv__join_resp_decode(const uint8_t *p, size_t len, srv__join_resp *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = reader_start(p, len);
    out->cluster_id = srv__get_u64(&r);
    out->node_id = srv__get_u64(&r);
    if (r.bad || out->cluster_id == 0 || out->node_id == 0 ||
        (out->node_id & SRV_NODE_ID_PROVISIONAL_BIT))
        return SRV_ERR_CORRUPT;
    int rc = srv__peers_decode(&r, &out->peers, &out->n_peers);
    if (rc == SRV_OK) rc = srv__descs_decode(&r, &out->descs, NULL, &out->n_descs);
    if (rc == SRV_OK) rc = reader_end(&r);
    if (rc != SRV_OK) srv__join_resp_free(out);
    return rc;
}

int srv__status_encode(const srv_status *s, base_buf *out) {
    if (s->n_rows > SRV_PEERS_MAX) return SRV_ERR_INVALID;
    int rc = srv__put_u8(out, SRV_STATUS_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, s->cluster_id);
    if (rc == SRV_OK) rc = srv__put_u64(out, s->answered_by);
    if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)s->now_ns);
    if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)s->dead_after_ms);
    if (rc == SRV_OK) rc = srv__put_u32(out, (uint32_t)s->n_rows);
    for (size_t i = 0; rc == SRV_OK && i < s->n_rows; i++) {
        const srv_status_row *w = &s->rows[i];
        rc = srv__put_u64(out, w->node_id);
        if (rc == SRV_OK) rc = srv__put_addr(out, &w->rpc);
        if (rc == SRV_OK) rc = srv__put_addr(out, &w->sql);
        if (rc == SRV_OK) rc = srv__put_u8(out, w->liveness);
        if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)w->since_heartbeat_ms);
        if (rc == SRV_OK) rc = srv__put_u64(out, w->epoch);
        if (rc == SRV_OK) rc = srv__put_u32(out, w->replicas);
        if (rc == SRV_OK) rc = srv__put_u32(out, w->leases);
        if (rc == SRV_OK) rc = srv__put_u8(out, w->membership);
        if (rc == SRV_OK) rc = srv__put_u8(out, w->draining ? 1 : 0);
    }
    return rc;
}

void srv_status_free(srv_status *s) {
    if (s == NULL) return;
    base_free(s->rows);
    memset(s, 0, sizeof *s);
}

int srv__status_decode(const uint8_t *p, size_t len, srv_status *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = {p, len, false};
    uint8_t version = srv__get_u8(&r);
    if (version != 1 && version != SRV_STATUS_VERSION) r.bad = true;
    out->cluster_id = srv__get_u64(&r);
    out->answered_by = srv__get_u64(&r);
    out->now_ns = (int64_t)srv__get_u64(&r);
    out->dead_after_ms = (int64_t)srv__get_u64(&r);
    uint32_t count = srv__get_u32(&r);
    size_t row_min = version == 1 ? 45 : 47;
    if (r.bad || count > SRV_PEERS_MAX || (size_t)count * row_min > r.left) return SRV_ERR_CORRUPT;
    out->rows = base_calloc(count ? count : 1, sizeof *out->rows); /* owner: out (srv_status_free) */
    if (out->rows == NULL) return SRV_ERR_NOMEM;
    for (uint32_t i = 0; i < count; i++) {
        srv_status_row *w = &out->rows[i];
        w->node_id = srv__get_u64(&r);
        srv__get_addr(&r, &w->rpc);
        srv__get_addr(&r, &w->sql);
        w->liveness = srv__get_u8(&r);
        w->since_heartbeat_ms = (int64_t)srv__get_u64(&r);
        w->epoch = srv__get_u64(&r);
        w->replicas = srv__get_u32(&r);
        w->leases = srv__get_u32(&r);
        if (version >= 2) {
            w->membership = srv__get_u8(&r);
            uint8_t draining = srv__get_u8(&r);
            if (w->membership > SRV_MEMBERSHIP_DECOMMISSIONED || draining > 1) r.bad = true;
            w->draining = draining == 1;
        }
        if (w->liveness > SRV_LIVENESS_DEAD) r.bad = true;
    }
    out->n_rows = count;
    if (reader_end(&r) != SRV_OK) {
        srv_status_free(out);
        return SRV_ERR_CORRUPT;
    }
    return SRV_OK;
}

/* ---- drain and decommission ---------------------------------------------------------- */

int srv__drain_req_encode(base_buf *out) { return srv__put_u8(out, SRV_WIRE_VERSION); }

int srv__drain_req_decode(const uint8_t *p, size_t len) {
    srv__reader r = reader_start(p, len);
    return reader_end(&r);
}

int srv__drain_resp_encode(const srv_drain_status *s, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, s->node_id);
    if (rc == SRV_OK) rc = srv__put_u32(out, s->leases);
    if (rc == SRV_OK) rc = srv__put_u32(out, s->replicas);
    if (rc == SRV_OK) rc = srv__put_u8(out, s->recorded ? 1 : 0);
    return rc;
}

int srv__drain_resp_decode(const uint8_t *p, size_t len, srv_drain_status *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = reader_start(p, len);
    out->node_id = srv__get_u64(&r);
    out->leases = srv__get_u32(&r);
    out->replicas = srv__get_u32(&r);
    uint8_t flags = srv__get_u8(&r);
    if (flags > 1) r.bad = true;
    out->recorded = flags == 1;
    return reader_end(&r);
}

static bool real_node_id(uint64_t id) {
    return id != 0 && (id & SRV_NODE_ID_PROVISIONAL_BIT) == 0;
}

int srv__decommission_req_encode(const srv__decommission_req *m, base_buf *out) {
    if (m->action != SRV_DECOMMISSION && m->action != SRV_RECOMMISSION) return SRV_ERR_INVALID;
    if (!real_node_id(m->node_id)) return SRV_ERR_INVALID;
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u8(out, (uint8_t)m->action);
    if (rc == SRV_OK) rc = srv__put_u8(out, m->finish ? 1 : 0);
    if (rc == SRV_OK) rc = srv__put_u64(out, m->node_id);
    return rc;
}

int srv__decommission_req_decode(const uint8_t *p, size_t len, srv__decommission_req *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = reader_start(p, len);
    uint8_t action = srv__get_u8(&r), flags = srv__get_u8(&r);
    out->node_id = srv__get_u64(&r);
    if (action != SRV_DECOMMISSION && action != SRV_RECOMMISSION) r.bad = true;
    if (flags > 1 || !real_node_id(out->node_id)) r.bad = true;
    out->action = (srv_decommission_action)action;
    out->finish = flags == 1;
    return reader_end(&r);
}

int srv__decommission_resp_encode(const srv_decommission_status *s, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, s->node_id);
    if (rc == SRV_OK) rc = srv__put_u8(out, s->membership);
    if (rc == SRV_OK) rc = srv__put_u8(out, s->liveness);
    if (rc == SRV_OK) rc = srv__put_u32(out, s->replicas);
    return rc;
}

int srv__decommission_resp_decode(const uint8_t *p, size_t len, srv_decommission_status *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = reader_start(p, len);
    out->node_id = srv__get_u64(&r);
    out->membership = srv__get_u8(&r);
    out->liveness = srv__get_u8(&r);
    out->replicas = srv__get_u32(&r);
    if (out->membership > SRV_MEMBERSHIP_DECOMMISSIONED || out->liveness > SRV_LIVENESS_DEAD)
        r.bad = true;
    return reader_end(&r);
}

/* ---- system keys and records ------------------------------------------------------ */

static size_t key_with(uint8_t *out, const char *name) {
    size_t n = strlen(name);
    memcpy(out, SRV_SYS_PREFIX, SRV_SYS_PREFIX_LEN);
    memcpy(out + SRV_SYS_PREFIX_LEN, name, n);
    return SRV_SYS_PREFIX_LEN + n;
}

static size_t key_with_id(uint8_t *out, const char *name, uint64_t id) {
    size_t n = key_with(out, name);
    for (int i = 0; i < 8; i++) out[n + (size_t)i] = (uint8_t)(id >> (56 - 8 * i));
    return n + 8;
}

size_t srv__key_counter(uint8_t *out) { return key_with(out, "counter/node-id"); }
size_t srv__key_node(uint8_t *out, uint64_t id) { return key_with_id(out, "node/", id); }
size_t srv__key_liveness(uint8_t *out, uint64_t id) { return key_with_id(out, "liveness/", id); }

/* [name, name with its last byte + 1): every key under the name. */
static size_t span_of(const char *name, uint8_t *start, uint8_t *end, size_t *end_len) {
    size_t n = key_with(start, name);
    memcpy(end, start, n);
    end[n - 1]++;
    *end_len = n;
    return n;
}

size_t srv__key_node_span(uint8_t *start, uint8_t *end, size_t *end_len) {
    return span_of("node/", start, end, end_len);
}

size_t srv__key_liveness_span(uint8_t *start, uint8_t *end, size_t *end_len) {
    return span_of("liveness/", start, end, end_len);
}

uint64_t srv__key_node_id(const uint8_t *key, size_t len, bool liveness) {
    uint8_t prefix[SRV_KEY_SIZE_MAX];
    size_t n = key_with(prefix, liveness ? "liveness/" : "node/");
    if (len != n + 8 || memcmp(key, prefix, n) != 0) return 0;
    uint64_t id = 0;
    for (size_t i = 0; i < 8; i++) id = id << 8 | key[n + i];
    return id;
}

int srv__node_record_encode(const srv__node_record *r, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_addr(out, &r->rpc);
    if (rc == SRV_OK) rc = srv__put_addr(out, &r->sql);
    if (rc == SRV_OK) rc = srv__put_u64(out, r->join_token);
    return rc;
}

int srv__node_record_decode(const uint8_t *p, size_t len, srv__node_record *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = reader_start(p, len);
    srv__get_addr(&r, &out->rpc);
    srv__get_addr(&r, &out->sql);
    out->join_token = srv__get_u64(&r);
    return reader_end(&r);
}

int srv__liveness_record_encode(const srv__liveness_record *r, base_buf *out) {
    if (r->membership > SRV_MEMBERSHIP_DECOMMISSIONED) return SRV_ERR_INVALID;
    int rc = srv__put_u8(out, SRV_LIVENESS_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, r->epoch);
    if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)r->heartbeat_ns);
    if (rc == SRV_OK) rc = srv__put_u64(out, (uint64_t)r->expiration_ns);
    if (rc == SRV_OK) rc = srv__put_addr(out, &r->rpc);
    if (rc == SRV_OK) rc = srv__put_addr(out, &r->sql);
    if (rc == SRV_OK) rc = srv__put_u32(out, r->replicas);
    if (rc == SRV_OK) rc = srv__put_u32(out, r->leases);
    if (rc == SRV_OK) rc = srv__put_u8(out, r->membership);
    if (rc == SRV_OK) rc = srv__put_u8(out, r->draining ? 1 : 0);
    return rc;
}

/* Version 1 (before issue 6's membership) and 2: a cluster keeps reading
** the records its nodes wrote before an upgrade. */
int srv__liveness_record_decode(const uint8_t *p, size_t len, srv__liveness_record *out) {
    memset(out, 0, sizeof *out);
    srv__reader r = {p, len, false};
    uint8_t version = srv__get_u8(&r);
    if (version != 1 && version != SRV_LIVENESS_VERSION) r.bad = true;
    out->epoch = srv__get_u64(&r);
    out->heartbeat_ns = (int64_t)srv__get_u64(&r);
    out->expiration_ns = (int64_t)srv__get_u64(&r);
    srv__get_addr(&r, &out->rpc);
    srv__get_addr(&r, &out->sql);
    out->replicas = srv__get_u32(&r);
    out->leases = srv__get_u32(&r);
    if (version >= 2) {
        out->membership = srv__get_u8(&r);
        uint8_t flags = srv__get_u8(&r);
        if (out->membership > SRV_MEMBERSHIP_DECOMMISSIONED || flags > 1) r.bad = true;
        out->draining = (flags & 1) != 0;
    }
    return reader_end(&r);
}

int srv__counter_encode(uint64_t next, base_buf *out) {
    int rc = srv__put_u8(out, SRV_WIRE_VERSION);
    if (rc == SRV_OK) rc = srv__put_u64(out, next);
    return rc;
}

int srv__counter_decode(const uint8_t *p, size_t len, uint64_t *next) {
    srv__reader r = reader_start(p, len);
    *next = srv__get_u64(&r);
    if (!r.bad && (*next == 0 || (*next & SRV_NODE_ID_PROVISIONAL_BIT))) r.bad = true;
    return reader_end(&r);
}
