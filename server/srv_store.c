/*
** server/srv_store.c: the node's own state in the store's raw keyspace.
**
**   "srv/ident"       u8 version | u64 cluster id | u64 node id | u64 init token
**   "srv/peers"       u8 version | peer table (srv__peers_encode)
**   "srv/ranges"      u8 version | descriptors + hosted flags (srv__descs_encode)
**   "srv/join-token"  u8 version | u64 token of an uninitialized store
**
** Invariants:
**   - a store is initialized iff "srv/ident" exists; it is written in ONE
**     synced batch with the peers, the ranges and (bootstrap) the initial KV
**     data, so a crash leaves either none of them or all of them;
**   - the identity is never rewritten with another cluster or node id.
*/
#include "server/srv_int.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

#define KEY_IDENT "srv/ident"
#define KEY_PEERS "srv/peers"
#define KEY_RANGES "srv/ranges"
#define KEY_JOIN_TOKEN "srv/join-token"

static int from_storage(int rc) {
    switch (rc) {
    case STORAGE_OK: return SRV_OK;
    case STORAGE_ERR_NOMEM: return SRV_ERR_NOMEM;
    case STORAGE_ERR_CORRUPT: return SRV_ERR_CORRUPT;
    case STORAGE_ERR_INVALID: return SRV_ERR_INVALID;
    default: return SRV_ERR_IO;
    }
}

uint64_t srv__random_u64(void) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v && v != 0) return v;
    /* No entropy source: mix the clocks and an address (ids are not secrets). */
    static int anchor;
    v = (uint64_t)base_realtime_ns() ^ ((uint64_t)base_monotonic_ns() << 17) ^
        (uint64_t)(uintptr_t)&anchor;
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return v ? v : 1;
}

void srv__state_free(srv__state *s) {
    base_free(s->peers);
    srv__descs_free(s->descs, s->n_descs);
    base_free(s->hosted);
    memset(s, 0, sizeof *s);
}

/* Get a raw key: 1 found (bytes in *out), 0 absent, <0 error. */
static int get_raw(storage_engine *e, const char *key, base_buf *out) {
    base_buf_reset(out);
    int rc = storage_get_raw(e, (const uint8_t *)key, strlen(key), out);
    if (rc == STORAGE_NOT_FOUND) return 0;
    if (rc != STORAGE_OK) return from_storage(rc);
    return 1;
}

int srv__store_load(storage_engine *e, srv__state *s) {
    memset(s, 0, sizeof *s);
    base_buf b = {0};
    int rc = get_raw(e, KEY_IDENT, &b);
    if (rc <= 0) goto done;
    srv__reader r = {b.data, b.len, false};
    if (srv__get_u8(&r) != SRV_WIRE_VERSION) r.bad = true;
    s->cluster_id = srv__get_u64(&r);
    s->node_id = srv__get_u64(&r);
    s->init_token = srv__get_u64(&r);
    if (r.bad || r.left != 0 || s->cluster_id == 0 || s->node_id == 0 ||
        (s->node_id & SRV_NODE_ID_PROVISIONAL_BIT)) {
        rc = SRV_ERR_CORRUPT;
        goto done;
    }
    s->initialized = true;

    if ((rc = get_raw(e, KEY_PEERS, &b)) < 0) goto done;
    if (rc == 1) {
        r = (srv__reader){b.data, b.len, false};
        if (srv__get_u8(&r) != SRV_WIRE_VERSION) r.bad = true;
        rc = r.bad ? SRV_ERR_CORRUPT : srv__peers_decode(&r, &s->peers, &s->n_peers);
        if (rc == SRV_OK && r.left != 0) rc = SRV_ERR_CORRUPT;
        if (rc != SRV_OK) goto done;
    }
    if ((rc = get_raw(e, KEY_RANGES, &b)) < 0) goto done;
    if (rc == 1) {
        r = (srv__reader){b.data, b.len, false};
        if (srv__get_u8(&r) != SRV_WIRE_VERSION) r.bad = true;
        rc = r.bad ? SRV_ERR_CORRUPT
                   : srv__descs_decode(&r, &s->descs, &s->hosted, &s->n_descs);
        if (rc == SRV_OK && r.left != 0) rc = SRV_ERR_CORRUPT;
        if (rc != SRV_OK) goto done;
    }
    rc = SRV_OK;
done:
    base_buf_free(&b);
    if (rc > 0) rc = SRV_OK; /* absent identity: uninitialized */
    if (rc != SRV_OK) srv__state_free(s);
    return rc;
}

int srv__store_save(storage_engine *e, const srv__state *s, const srv__kv *kvs, size_t n_kvs,
                    hlc_timestamp init_ts) {
    base_buf b = {0};
    storage_batch *batch = storage_batch_new(); /* owner: this function */
    int rc = SRV_ERR_NOMEM;
    if (batch == NULL) goto done;
    /* Initial KV data first: identity last in the batch changes nothing
    ** (the batch is atomic) but reads in the order a reader would trust. */
    for (size_t i = 0; i < n_kvs; i++) {
        if ((rc = from_storage(storage_batch_put(batch, kvs[i].key, kvs[i].key_len, init_ts,
                                                 kvs[i].value, kvs[i].value_len))) != SRV_OK)
            goto done;
    }
    base_buf_reset(&b);
    if ((rc = srv__put_u8(&b, SRV_WIRE_VERSION)) != SRV_OK ||
        (rc = srv__peers_encode(s->peers, s->n_peers, &b)) != SRV_OK)
        goto done;
    if ((rc = from_storage(storage_batch_put_raw(batch, (const uint8_t *)KEY_PEERS,
                                                 strlen(KEY_PEERS), b.data, b.len))) != SRV_OK)
        goto done;
    base_buf_reset(&b);
    if ((rc = srv__put_u8(&b, SRV_WIRE_VERSION)) != SRV_OK ||
        (rc = srv__descs_encode(s->descs, s->hosted, s->n_descs, &b)) != SRV_OK)
        goto done;
    if ((rc = from_storage(storage_batch_put_raw(batch, (const uint8_t *)KEY_RANGES,
                                                 strlen(KEY_RANGES), b.data, b.len))) != SRV_OK)
        goto done;
    base_buf_reset(&b);
    if ((rc = srv__put_u8(&b, SRV_WIRE_VERSION)) != SRV_OK ||
        (rc = srv__put_u64(&b, s->cluster_id)) != SRV_OK ||
        (rc = srv__put_u64(&b, s->node_id)) != SRV_OK ||
        (rc = srv__put_u64(&b, s->init_token)) != SRV_OK)
        goto done;
    if ((rc = from_storage(storage_batch_put_raw(batch, (const uint8_t *)KEY_IDENT,
                                                 strlen(KEY_IDENT), b.data, b.len))) != SRV_OK)
        goto done;
    rc = from_storage(storage_write(e, batch, true));
done:
    if (batch != NULL) storage_batch_free(batch);
    base_buf_free(&b);
    return rc;
}

int srv__store_save_peers(storage_engine *e, const srv_peer *peers, size_t n) {
    base_buf b = {0};
    storage_batch *batch = storage_batch_new(); /* owner: this function */
    int rc = SRV_ERR_NOMEM;
    if (batch == NULL) goto done;
    if ((rc = srv__put_u8(&b, SRV_WIRE_VERSION)) != SRV_OK ||
        (rc = srv__peers_encode(peers, n, &b)) != SRV_OK)
        goto done;
    if ((rc = from_storage(storage_batch_put_raw(batch, (const uint8_t *)KEY_PEERS,
                                                 strlen(KEY_PEERS), b.data, b.len))) != SRV_OK)
        goto done;
    rc = from_storage(storage_write(e, batch, true));
done:
    if (batch != NULL) storage_batch_free(batch);
    base_buf_free(&b);
    return rc;
}

int srv__store_join_token(storage_engine *e, uint64_t *token) {
    base_buf b = {0};
    storage_batch *batch = NULL;
    int rc = get_raw(e, KEY_JOIN_TOKEN, &b);
    if (rc < 0) goto done;
    if (rc == 1) {
        srv__reader r = {b.data, b.len, false};
        if (srv__get_u8(&r) != SRV_WIRE_VERSION) r.bad = true;
        *token = srv__get_u64(&r);
        rc = (r.bad || r.left != 0 || *token == 0) ? SRV_ERR_CORRUPT : SRV_OK;
        goto done;
    }
    uint64_t t = srv__random_u64();
    base_buf_reset(&b);
    batch = storage_batch_new(); /* owner: this function */
    rc = SRV_ERR_NOMEM;
    if (batch == NULL) goto done;
    if ((rc = srv__put_u8(&b, SRV_WIRE_VERSION)) != SRV_OK || (rc = srv__put_u64(&b, t)) != SRV_OK)
        goto done;
    if ((rc = from_storage(storage_batch_put_raw(batch, (const uint8_t *)KEY_JOIN_TOKEN,
                                                 strlen(KEY_JOIN_TOKEN), b.data, b.len))) != SRV_OK)
        goto done;
    if ((rc = from_storage(storage_write(e, batch, true))) != SRV_OK) goto done;
    *token = t;
done:
    if (batch != NULL) storage_batch_free(batch);
    base_buf_free(&b);
    return rc;
}

int srv_store_identity(storage_engine *engine, srv_identity *out) {
    memset(out, 0, sizeof *out);
    srv__state s;
    int rc = srv__store_load(engine, &s);
    if (rc != SRV_OK) return rc;
    out->initialized = s.initialized;
    out->cluster_id = s.cluster_id;
    out->node_id = s.node_id;
    srv__state_free(&s);
    return SRV_OK;
}

int srv_store_has_data(storage_engine *engine, bool *out) {
    *out = false;
    storage_iter *it = NULL;
    storage_iter_options o = {.mode = STORAGE_ITER_ALL_VERSIONS};
    int rc = storage_iter_open(engine, NULL, &o, &it);
    if (rc != STORAGE_OK) return from_storage(rc);
    rc = storage_iter_next(it, NULL, NULL, NULL, NULL, NULL, NULL);
    storage_iter_close(it);
    if (rc < 0) return from_storage(rc);
    *out = rc == 1;
    return SRV_OK;
}
