/*
** range/replica_log.c: the Raft log and hard state of one range stored in
** the storage engine's raw keyspace (layout: replica_int.h), one atomic
** storage batch per save, synced when the store was opened with sync. The
** store of a node without a shared log (range_node_config.log == NULL).
**
** Invariants: stored entries are exactly (first - 1 = compact, last] with no
** gap ('f' holds the compaction point, absent = 0; 'l' holds last, absent =
** the compaction point); a save that writes entries [f, g] deletes every
** stored entry in (g, last] in the same batch, so the store never holds a
** stale suffix; a compaction deletes (old compact, new compact] and moves
** 'f' in one batch.
*/
#include <assert.h>
#include <string.h>

#include "range/replica_int.h"

#define REPLICA_LOG_ENTRY_HEADER 9 /* term u64 + type u8 */

void replica__put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t replica__get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

size_t replica__key(uint8_t out[REPLICA_KEY_SIZE_MAX], uint64_t range_id, char kind,
                    uint64_t a, uint64_t b, int n_args)
{
    size_t n = 0;
    memcpy(out, REPLICA_KEY_PREFIX, REPLICA_KEY_PREFIX_LEN);
    n += REPLICA_KEY_PREFIX_LEN;
    replica__put_u64(out + n, range_id);
    n += 8;
    out[n++] = (uint8_t)kind;
    if (n_args >= 1) {
        replica__put_u64(out + n, a);
        n += 8;
    }
    if (n_args >= 2) {
        replica__put_u64(out + n, b);
        n += 8;
    }
    return n;
}

typedef struct raw_log {
    replica_log base; /* first */
    storage_engine *engine;
    uint64_t range_id;
    bool sync;
    uint64_t last;    /* last stored index */
    uint64_t compact; /* entries <= it are gone ('f') */
    storage_batch *batch;
} raw_log;

void replica__entries_free(raft_entry *entries, size_t n_entries)
{
    if (entries == NULL)
        return;
    for (size_t i = 0; i < n_entries; i++)
        base_free(entries[i].data);
    base_free(entries);
}

void replica__log_state_free(replica_log_state *state)
{
    if (state->entries_free != NULL)
        state->entries_free(state->entries, state->n_entries);
    memset(state, 0, sizeof(*state));
}

static int map_storage(int rc)
{
    if (rc == STORAGE_ERR_NOMEM)
        return RANGE_ERR_NOMEM;
    if (rc == STORAGE_ERR_CORRUPT)
        return RANGE_ERR_CORRUPT;
    return RANGE_ERR_IO;
}

static int get_u64s(storage_engine *e, uint64_t range_id, char kind, uint64_t *out, size_t n,
                    bool *found)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf buf = {0}; /* owner: this function */
    int rc = storage_get_raw(e, key, replica__key(key, range_id, kind, 0, 0, 0), &buf);
    *found = false;
    if (rc == STORAGE_OK) {
        if (buf.len != 8 * n) {
            rc = RANGE_ERR_CORRUPT;
        } else {
            for (size_t i = 0; i < n; i++)
                out[i] = replica__get_u64(buf.data + 8 * i);
            *found = true;
            rc = RANGE_OK;
        }
    } else if (rc == STORAGE_NOT_FOUND) {
        rc = RANGE_OK;
    } else {
        rc = map_storage(rc);
    }
    base_buf_free(&buf);
    return rc;
}

int replica__log_raw_exists(storage_engine *engine, uint64_t range_id, bool *exists)
{
    uint64_t v[3];
    bool found_h = false, found_l = false;
    int rc = get_u64s(engine, range_id, 'h', v, 3, &found_h);
    if (rc == RANGE_OK)
        rc = get_u64s(engine, range_id, 'l', v, 1, &found_l);
    *exists = found_h || found_l;
    return rc;
}

static int raw_load(replica_log *base_log, replica_log_state *out)
{
    raw_log *l = (raw_log *)base_log;
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf buf = {0};      /* owner: this function */
    raft_entry *entries = NULL; /* owner: this function until moved to *out */
    uint64_t hs[3], last = 0, compact[2] = {0, 0}, n = 0, i = 0;
    bool found = false;
    int rc;
    memset(out, 0, sizeof(*out));

    if ((rc = get_u64s(l->engine, l->range_id, 'h', hs, 3, &found)) != RANGE_OK)
        goto cleanup;
    if (found) {
        out->hard_state = (raft_hard_state){.term = hs[0], .vote = hs[1], .commit = hs[2]};
        out->has_hard_state = true;
    }
    if ((rc = get_u64s(l->engine, l->range_id, 'f', compact, 2, &found)) != RANGE_OK)
        goto cleanup;
    if ((rc = get_u64s(l->engine, l->range_id, 'l', &last, 1, &found)) != RANGE_OK)
        goto cleanup;
    if (!found)
        last = compact[0];
    if (last < compact[0] || (compact[0] > 0) != (compact[1] > 0) ||
        last - compact[0] > SIZE_MAX / sizeof(raft_entry)) {
        rc = RANGE_ERR_CORRUPT;
        goto cleanup;
    }
    n = last - compact[0];
    if (n > 0) {
        entries = base_calloc((size_t)n, sizeof(*entries));
        if (entries == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
    }
    for (i = 0; i < n; i++) {
        raft_entry *e = &entries[i];
        uint64_t index = compact[0] + 1 + i;
        base_buf_reset(&buf);
        rc = storage_get_raw(l->engine, key, replica__key(key, l->range_id, 'e', index, 0, 1),
                             &buf);
        if (rc == STORAGE_NOT_FOUND || (rc == STORAGE_OK && buf.len < REPLICA_LOG_ENTRY_HEADER)) {
            rc = RANGE_ERR_CORRUPT; /* a gap in (compact, last] */
            goto cleanup;
        }
        if (rc != STORAGE_OK) {
            rc = map_storage(rc);
            goto cleanup;
        }
        e->index = index;
        e->term = replica__get_u64(buf.data);
        if (buf.data[8] > RAFT_ENTRY_CONFIG) {
            rc = RANGE_ERR_CORRUPT;
            goto cleanup;
        }
        e->type = (raft_entry_type)buf.data[8];
        e->len = buf.len - REPLICA_LOG_ENTRY_HEADER;
        if (e->len > 0) {
            e->data = base_malloc(e->len);
            if (e->data == NULL) {
                rc = RANGE_ERR_NOMEM;
                goto cleanup;
            }
            memcpy(e->data, buf.data + REPLICA_LOG_ENTRY_HEADER, e->len);
        }
    }
    l->last = last;
    l->compact = compact[0];
    out->compact_index = compact[0];
    out->compact_term = compact[1];
    out->entries = entries;
    out->n_entries = (size_t)n;
    out->entries_free = replica__entries_free;
    entries = NULL;
    rc = RANGE_OK;
cleanup:
    if (entries != NULL)
        replica__entries_free(entries, (size_t)n);
    base_buf_free(&buf);
    return rc;
}

static int raw_save(replica_log *base_log, const raft_hard_state *hs, const raft_entry *entries,
                    size_t n_entries, uint64_t *sync_seq)
{
    raw_log *l = (raw_log *)base_log;
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    uint8_t val[24];
    base_buf ev = {0};
    uint64_t new_last = l->last;
    int rc = 0;
    *sync_seq = 0; /* storage_write below is synced per l->sync */
    storage_batch_clear(l->batch);
    if (hs != NULL) {
        replica__put_u64(val, hs->term);
        replica__put_u64(val + 8, hs->vote);
        replica__put_u64(val + 16, hs->commit);
        rc = storage_batch_put_raw(l->batch, key, replica__key(key, l->range_id, 'h', 0, 0, 0),
                                   val, 24);
        if (rc != 0)
            goto cleanup;
    }
    if (n_entries > 0) {
        uint64_t first = entries[0].index;
        /* the core never leaves a gap nor rewrites a compacted (applied) entry */
        assert(first > l->compact && first <= l->last + 1);
        new_last = entries[n_entries - 1].index;
        for (size_t i = 0; i < n_entries; i++) {
            const raft_entry *e = &entries[i];
            assert(e->index == first + i);
            base_buf_reset(&ev);
            if (base_buf_reserve(&ev, REPLICA_LOG_ENTRY_HEADER + e->len) != 0) {
                rc = STORAGE_ERR_NOMEM;
                goto cleanup;
            }
            replica__put_u64(ev.data, e->term);
            ev.data[8] = (uint8_t)e->type;
            if (e->len > 0)
                memcpy(ev.data + REPLICA_LOG_ENTRY_HEADER, e->data, e->len);
            ev.len = REPLICA_LOG_ENTRY_HEADER + e->len;
            rc = storage_batch_put_raw(l->batch, key,
                                       replica__key(key, l->range_id, 'e', e->index, 0, 1),
                                       ev.data, ev.len);
            if (rc != 0)
                goto cleanup;
        }
        for (uint64_t i = new_last + 1; i <= l->last; i++) {
            rc = storage_batch_delete_raw(l->batch, key,
                                          replica__key(key, l->range_id, 'e', i, 0, 1));
            if (rc != 0)
                goto cleanup;
        }
        replica__put_u64(val, new_last);
        rc = storage_batch_put_raw(l->batch, key, replica__key(key, l->range_id, 'l', 0, 0, 0),
                                   val, 8);
        if (rc != 0)
            goto cleanup;
    }
    if (storage_batch_count(l->batch) == 0)
        goto cleanup;
    rc = storage_write(l->engine, l->batch, l->sync);
    if (rc == 0)
        l->last = new_last;
cleanup:
    base_buf_free(&ev);
    storage_batch_clear(l->batch);
    return rc == 0 ? RANGE_OK : map_storage(rc);
}

static int raw_compact(replica_log *base_log, uint64_t up_to, uint64_t term)
{
    raw_log *l = (raw_log *)base_log;
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    uint8_t val[16];
    int rc = 0;
    if (up_to <= l->compact)
        return RANGE_OK;
    assert(up_to <= l->last); /* only applied entries are compacted */
    storage_batch_clear(l->batch);
    for (uint64_t i = l->compact + 1; i <= up_to && rc == 0; i++)
        rc = storage_batch_delete_raw(l->batch, key, replica__key(key, l->range_id, 'e', i, 0, 1));
    replica__put_u64(val, up_to);
    replica__put_u64(val + 8, term);
    if (rc == 0)
        rc = storage_batch_put_raw(l->batch, key, replica__key(key, l->range_id, 'f', 0, 0, 0),
                                   val, 16);
    /* Not synced: a lost compaction only keeps entries that are still valid. */
    if (rc == 0)
        rc = storage_write(l->engine, l->batch, false);
    storage_batch_clear(l->batch);
    if (rc != 0)
        return map_storage(rc);
    l->compact = up_to;
    return RANGE_OK;
}

static int raw_reset(replica_log *base_log, uint64_t index, uint64_t term)
{
    raw_log *l = (raw_log *)base_log;
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    uint8_t val[16];
    uint64_t point = index > l->compact ? index : l->compact;
    int rc = 0;
    storage_batch_clear(l->batch);
    for (uint64_t i = l->compact + 1; i <= l->last && rc == 0; i++)
        rc = storage_batch_delete_raw(l->batch, key, replica__key(key, l->range_id, 'e', i, 0, 1));
    if (rc == 0 && index > l->compact) {
        replica__put_u64(val, index);
        replica__put_u64(val + 8, term);
        rc = storage_batch_put_raw(l->batch, key, replica__key(key, l->range_id, 'f', 0, 0, 0),
                                   val, 16);
    }
    replica__put_u64(val, point);
    if (rc == 0)
        rc = storage_batch_put_raw(l->batch, key, replica__key(key, l->range_id, 'l', 0, 0, 0),
                                   val, 8);
    if (rc == 0)
        rc = storage_write(l->engine, l->batch, false); /* redone from 's' if lost */
    storage_batch_clear(l->batch);
    if (rc != 0)
        return map_storage(rc);
    l->compact = point;
    l->last = point;
    return RANGE_OK;
}

static void raw_free(replica_log *base_log)
{
    raw_log *l = (raw_log *)base_log;
    if (l == NULL)
        return;
    storage_batch_free(l->batch);
    base_free(l);
}

static const replica_log_ops raw_ops = {raw_load, raw_save, raw_compact, raw_reset, raw_free};

int replica__log_raw_open(storage_engine *engine, uint64_t range_id, bool sync,
                          replica_log **out)
{
    raw_log *l = base_calloc(1, sizeof(*l));
    if (l == NULL)
        return RANGE_ERR_NOMEM;
    l->batch = storage_batch_new();
    if (l->batch == NULL) {
        base_free(l);
        return RANGE_ERR_NOMEM;
    }
    l->base.ops = &raw_ops;
    l->engine = engine;
    l->range_id = range_id;
    l->sync = sync;
    *out = &l->base;
    return RANGE_OK;
}
