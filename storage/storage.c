/*
** storage/storage.c: the common front of both engines.
**
** Everything that defines MVCC semantics lives here, once, written against
** the engine cursor of storage_int.h (entries ordered by key ascending, then
** timestamp descending):
**   - get(k, t)      = first entry at or after (k, t) if its key is k.
**   - get_latest(k)  = first entry at or after (k, HLC_MAX) if its key is k.
**   - AT_TS forward  = for each key: its newest version <= t (tombstones
**                      skipped), then past k; both by a few next() steps
**                      and a seek when those do not suffice.
**   - AT_TS reverse  = seek before the current key, then seek (k', t).
**   - ALL_VERSIONS   = plain forward walk.
**   - GC             = forward walk collecting REMOVE_VERSION ops, written in
**                      batches of at most STORAGE__GC_BATCH_OPS.
** Invariants:
**   - every batch op was validated when added (sizes within limits, keys
**     non-empty), so engines never see bad input;
**   - a batch never holds more than STORAGE_BATCH_OPS_MAX ops or
**     STORAGE_BATCH_BYTES_MAX bytes (a large one, storage_batch_new_large:
**     the LARGE bounds).
*/
#include <assert.h>
#include <string.h>

#include "storage/storage_int.h"

#define STORAGE__GC_BATCH_OPS 1024
#define STORAGE__STEPS_BEFORE_SEEK 4 /* next() calls before a seek skips a key */
#define STORAGE__BATCH_INITIAL_CAP 8

/* ---- helpers --------------------------------------------------------------- */
int storage__key_compare(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
    size_t n = BASE_MIN(a_len, b_len);
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    if (a_len < b_len) return -1;
    if (a_len > b_len) return 1;
    return 0;
}

static bool key_ok(const uint8_t *key, size_t key_len) {
    return key != NULL && key_len > 0 && key_len <= STORAGE_KEY_SIZE_MAX;
}

/* ---- open / close -------------------------------------------------------- */
int storage_open(const storage_options *opts, storage_engine **out) {
    if (opts == NULL || out == NULL) return STORAGE_ERR_INVALID;
    *out = NULL;
    if (opts->dir == NULL) return storage__memory_open(opts, out);
    return storage__rocksdb_open(opts, out);
}

void storage_close(storage_engine *e) {
    if (e == NULL) return;
    e->vt->close(e);
}

/* ---- batches ----------------------------------------------------------------- */
static storage_batch *batch_new(size_t ops_max, size_t bytes_max) {
    storage_batch *b = base_calloc(1, sizeof(storage_batch));
    if (b == NULL) return NULL;
    b->ops_max = ops_max;
    b->bytes_max = bytes_max;
    return b;
}

storage_batch *storage_batch_new(void) {
    return batch_new(STORAGE_BATCH_OPS_MAX, STORAGE_BATCH_BYTES_MAX);
}

storage_batch *storage_batch_new_large(void) {
    return batch_new(STORAGE_BATCH_LARGE_OPS_MAX, STORAGE_BATCH_LARGE_BYTES_MAX);
}

void storage_batch_clear(storage_batch *b) {
    if (b == NULL) return;
    for (size_t i = 0; i < b->count; i++) base_free(b->ops[i].key);
    b->count = 0;
    b->bytes = 0;
}

void storage_batch_free(storage_batch *b) {
    if (b == NULL) return;
    storage_batch_clear(b);
    base_free(b->ops);
    base_free(b);
}

size_t storage_batch_count(const storage_batch *b) {
    return b == NULL ? 0 : b->count;
}

/* Append one op, copying key and value into one allocation. */
static int batch_add(storage_batch *b, storage__op_kind kind, const uint8_t *key, size_t key_len,
                     hlc_timestamp ts, const uint8_t *value, size_t value_len,
                     bool end_unbounded) {
    if (b == NULL) return STORAGE_ERR_INVALID;
    if (b->count >= b->ops_max) return STORAGE_ERR_INVALID;
    if (key_len + value_len > b->bytes_max - b->bytes) return STORAGE_ERR_INVALID;
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : STORAGE__BATCH_INITIAL_CAP;
        storage__op *ops = base_realloc(b->ops, cap * sizeof(*ops));
        if (ops == NULL) return STORAGE_ERR_NOMEM;
        b->ops = ops;
        b->cap = cap;
    }
    /* +1 so that an empty key/value still gets a non-NULL allocation */
    uint8_t *mem = base_malloc(key_len + value_len + 1);
    if (mem == NULL) return STORAGE_ERR_NOMEM;
    if (key_len) memcpy(mem, key, key_len);
    if (value_len) memcpy(mem + key_len, value, value_len);
    storage__op *op = &b->ops[b->count++];
    op->kind = kind;
    op->ts = ts;
    op->key = mem;
    op->key_len = key_len;
    op->value = mem + key_len;
    op->value_len = value_len;
    op->end_unbounded = end_unbounded;
    b->bytes += key_len + value_len;
    return STORAGE_OK;
}

int storage_batch_put(storage_batch *b, const uint8_t *key, size_t key_len, hlc_timestamp ts,
                      const uint8_t *value, size_t value_len) {
    if (!key_ok(key, key_len)) return STORAGE_ERR_INVALID;
    if (value_len > STORAGE_VALUE_SIZE_MAX || (value == NULL && value_len > 0))
        return STORAGE_ERR_INVALID;
    return batch_add(b, STORAGE__OP_PUT, key, key_len, ts, value, value_len, false);
}

int storage_batch_delete(storage_batch *b, const uint8_t *key, size_t key_len, hlc_timestamp ts) {
    if (!key_ok(key, key_len)) return STORAGE_ERR_INVALID;
    return batch_add(b, STORAGE__OP_DELETE, key, key_len, ts, NULL, 0, false);
}

int storage_batch_remove_version(storage_batch *b, const uint8_t *key, size_t key_len,
                                 hlc_timestamp ts) {
    if (!key_ok(key, key_len)) return STORAGE_ERR_INVALID;
    return batch_add(b, STORAGE__OP_REMOVE_VERSION, key, key_len, ts, NULL, 0, false);
}

int storage_batch_delete_range(storage_batch *b, const uint8_t *start, size_t start_len,
                               const uint8_t *end, size_t end_len) {
    if (start == NULL) start_len = 0;
    if (start_len > STORAGE_KEY_SIZE_MAX || (end != NULL && end_len > STORAGE_KEY_SIZE_MAX))
        return STORAGE_ERR_INVALID;
    if (end == NULL) end_len = 0;
    return batch_add(b, STORAGE__OP_DELETE_RANGE, start, start_len, HLC_ZERO, end, end_len,
                     end == NULL);
}

int storage_batch_put_raw(storage_batch *b, const uint8_t *key, size_t key_len,
                          const uint8_t *value, size_t value_len) {
    if (!key_ok(key, key_len)) return STORAGE_ERR_INVALID;
    if (value_len > STORAGE_VALUE_SIZE_MAX || (value == NULL && value_len > 0))
        return STORAGE_ERR_INVALID;
    return batch_add(b, STORAGE__OP_PUT_RAW, key, key_len, HLC_ZERO, value, value_len, false);
}

int storage_batch_delete_raw(storage_batch *b, const uint8_t *key, size_t key_len) {
    if (!key_ok(key, key_len)) return STORAGE_ERR_INVALID;
    return batch_add(b, STORAGE__OP_DELETE_RAW, key, key_len, HLC_ZERO, NULL, 0, false);
}

int storage_write(storage_engine *e, storage_batch *b, bool sync) {
    if (e == NULL || b == NULL) return STORAGE_ERR_INVALID;
    if (b->count == 0) return STORAGE_OK;
    return e->vt->write(e, b, sync);
}

/* ---- snapshots ------------------------------------------------------------- */
int storage_snapshot_new(storage_engine *e, storage_snapshot **out) {
    if (e == NULL || out == NULL) return STORAGE_ERR_INVALID;
    *out = NULL;
    return e->vt->snapshot_new(e, out);
}

void storage_snapshot_release(storage_engine *e, storage_snapshot *s) {
    if (e == NULL || s == NULL) return;
    e->vt->snapshot_release(e, s);
}

/* ---- point reads ----------------------------------------------------------- */
void storage_value_free(storage_value *v) {
    if (v == NULL) return;
    base_buf_free(&v->bytes);
}

static int point_read(storage_engine *e, const storage_snapshot *snap, const uint8_t *key,
                      size_t key_len, hlc_timestamp read_ts, storage_value *out) {
    if (e == NULL || out == NULL) return STORAGE_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if (!key_ok(key, key_len)) return STORAGE_ERR_INVALID;
    storage__bounds bounds = {.point = true};
    storage__cursor *c = NULL;
    int rc = e->vt->cursor_open(e, snap, &bounds, &c);
    if (rc < 0) return rc;
    storage__entry en;
    rc = e->vt->cursor_seek_ge(c, key, key_len, read_ts, &en);
    if (rc < 0) goto cleanup;
    if (rc == 0 || storage__key_compare(en.key, en.key_len, key, key_len) != 0) {
        rc = STORAGE_NOT_FOUND;
        goto cleanup;
    }
    out->ts = en.ts;
    out->tombstone = en.tombstone;
    if (!en.tombstone && base_buf_append(&out->bytes, en.value, en.value_len) != 0) {
        rc = STORAGE_ERR_NOMEM;
        goto cleanup;
    }
    rc = STORAGE_OK;
cleanup:
    e->vt->cursor_close(c);
    if (rc != STORAGE_OK) storage_value_free(out);
    return rc;
}

int storage_get(storage_engine *e, const storage_snapshot *snap, const uint8_t *key,
                size_t key_len, hlc_timestamp read_ts, storage_value *out) {
    return point_read(e, snap, key, key_len, read_ts, out);
}

int storage_get_latest(storage_engine *e, const storage_snapshot *snap, const uint8_t *key,
                       size_t key_len, storage_value *out) {
    return point_read(e, snap, key, key_len, HLC_MAX, out);
}

int storage_get_raw(storage_engine *e, const uint8_t *key, size_t key_len, base_buf *out) {
    if (e == NULL || out == NULL || !key_ok(key, key_len)) return STORAGE_ERR_INVALID;
    return e->vt->get_raw(e, key, key_len, out);
}

int storage_seek_raw(storage_engine *e, const uint8_t *start, size_t start_len,
                     const uint8_t *end, size_t end_len, base_buf *key_out, base_buf *value_out) {
    if (e == NULL || key_out == NULL || (start == NULL && start_len > 0) ||
        start_len > STORAGE_KEY_SIZE_MAX || end_len > STORAGE_KEY_SIZE_MAX)
        return STORAGE_ERR_INVALID;
    return e->vt->seek_raw(e, start, start_len, end, end_len, key_out, value_out);
}

/* ---- iterators ----------------------------------------------------------------- */
struct storage_iter {
    storage_engine *e;
    storage__cursor *cursor;
    storage_iter_mode mode;
    bool reverse;
    hlc_timestamp ts;
    uint8_t *start; /* owner: the iterator; NULL = unbounded */
    size_t start_len;
    uint8_t *end; /* owner: the iterator; NULL = unbounded */
    size_t end_len;
    bool started;
    bool done;
    int error; /* sticky: returned again by every later next */
    base_buf key; /* the last key returned (AT_TS) */
    base_buf scratch;
};

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
    uint8_t *d = base_malloc(n + 1);
    if (d != NULL && n) memcpy(d, p, n);
    return d;
}

int storage_iter_open(storage_engine *e, const storage_snapshot *snap,
                      const storage_iter_options *opts, storage_iter **out) {
    if (e == NULL || opts == NULL || out == NULL) return STORAGE_ERR_INVALID;
    *out = NULL;
    if (opts->mode != STORAGE_ITER_AT_TS && opts->mode != STORAGE_ITER_ALL_VERSIONS)
        return STORAGE_ERR_INVALID;
    if (opts->mode == STORAGE_ITER_ALL_VERSIONS && opts->reverse) return STORAGE_ERR_INVALID;
    if ((opts->start && opts->start_len > STORAGE_KEY_SIZE_MAX) ||
        (opts->end && opts->end_len > STORAGE_KEY_SIZE_MAX))
        return STORAGE_ERR_INVALID;
    int rc = STORAGE_ERR_NOMEM;
    storage_iter *it = base_calloc(1, sizeof(*it));
    if (it == NULL) return STORAGE_ERR_NOMEM;
    it->e = e;
    it->mode = opts->mode;
    it->reverse = opts->reverse;
    it->ts = opts->ts;
    if (opts->start != NULL && opts->start_len > 0) {
        it->start = dup_bytes(opts->start, opts->start_len);
        if (it->start == NULL) goto fail;
        it->start_len = opts->start_len;
    }
    if (opts->end != NULL) {
        it->end = dup_bytes(opts->end, opts->end_len);
        if (it->end == NULL) goto fail;
        it->end_len = opts->end_len;
    }
    storage__bounds bounds = {it->start, it->start_len, it->end, it->end_len, false};
    rc = e->vt->cursor_open(e, snap, &bounds, &it->cursor);
    if (rc < 0) goto fail;
    *out = it;
    return STORAGE_OK;
fail:
    storage_iter_close(it);
    return rc;
}

void storage_iter_close(storage_iter *it) {
    if (it == NULL) return;
    if (it->cursor != NULL) it->e->vt->cursor_close(it->cursor);
    base_free(it->start);
    base_free(it->end);
    base_buf_free(&it->key);
    base_buf_free(&it->scratch);
    base_free(it);
}

static bool past_end(const storage_iter *it, const storage__entry *en) {
    return it->end != NULL && storage__key_compare(en->key, en->key_len, it->end, it->end_len) >= 0;
}

static bool before_start(const storage_iter *it, const storage__entry *en) {
    return it->start != NULL &&
           storage__key_compare(en->key, en->key_len, it->start, it->start_len) < 0;
}

static int iter_next_all_versions(storage_iter *it, storage__entry *en) {
    const storage__vtable *vt = it->e->vt;
    int rc = it->started ? vt->cursor_next(it->cursor, en)
                         : vt->cursor_seek_ge(it->cursor, it->start, it->start_len, HLC_MAX, en);
    it->started = true;
    if (rc <= 0) return rc;
    return past_end(it, en) ? 0 : 1;
}

/* Move to the first entry of a key other than key (which must not point
** into the cursor): a few next() steps first, since keys usually have few
** versions, then one seek. */
static int skip_key(storage_iter *it, const uint8_t *key, size_t key_len, storage__entry *en) {
    const storage__vtable *vt = it->e->vt;
    for (int i = 0; i < STORAGE__STEPS_BEFORE_SEEK; i++) {
        int rc = vt->cursor_next(it->cursor, en);
        if (rc <= 0) return rc;
        if (storage__key_compare(en->key, en->key_len, key, key_len) != 0) return 1;
    }
    return vt->cursor_seek_after_key(it->cursor, key, key_len, en);
}

/* From a version of key above the read timestamp: move to the newest
** version <= it->ts, or past the key when it has none. */
static int find_version(storage_iter *it, const uint8_t *key, size_t key_len, storage__entry *en) {
    const storage__vtable *vt = it->e->vt;
    for (int i = 0; i < STORAGE__STEPS_BEFORE_SEEK; i++) {
        int rc = vt->cursor_next(it->cursor, en);
        if (rc <= 0) return rc;
        if (storage__key_compare(en->key, en->key_len, key, key_len) != 0) return 1;
        if (hlc_compare(en->ts, it->ts) <= 0) return 1;
    }
    return vt->cursor_seek_ge(it->cursor, key, key_len, it->ts, en);
}

static int iter_next_forward(storage_iter *it, storage__entry *en) {
    const storage__vtable *vt = it->e->vt;
    /* when started, the cursor still sits on the entry returned last */
    int rc = it->started ? skip_key(it, it->key.data, it->key.len, en)
                         : vt->cursor_seek_ge(it->cursor, it->start, it->start_len, it->ts, en);
    it->started = true;
    /* Each pass moves to a strictly later entry, so this ends. */
    for (;;) {
        if (rc <= 0) return rc;
        if (past_end(it, en)) return 0;
        if (hlc_compare(en->ts, it->ts) > 0 || en->tombstone) {
            bool above = hlc_compare(en->ts, it->ts) > 0;
            base_buf_reset(&it->scratch);
            if (base_buf_append(&it->scratch, en->key, en->key_len) != 0) return STORAGE_ERR_NOMEM;
            rc = above ? find_version(it, it->scratch.data, it->scratch.len, en)
                       : skip_key(it, it->scratch.data, it->scratch.len, en);
            continue;
        }
        base_buf_reset(&it->key);
        if (base_buf_append(&it->key, en->key, en->key_len) != 0) return STORAGE_ERR_NOMEM;
        return 1;
    }
}

static int iter_next_reverse(storage_iter *it, storage__entry *en) {
    const storage__vtable *vt = it->e->vt;
    int rc = it->started ? vt->cursor_seek_before_key(it->cursor, it->key.data, it->key.len, en)
                         : vt->cursor_seek_before_key(it->cursor, it->end, it->end_len, en);
    it->started = true;
    /* Each pass moves to a strictly smaller key, so this ends. */
    for (;;) {
        if (rc <= 0) return rc;
        if (before_start(it, en)) return 0;
        base_buf_reset(&it->scratch);
        if (base_buf_append(&it->scratch, en->key, en->key_len) != 0) return STORAGE_ERR_NOMEM;
        rc = vt->cursor_seek_ge(it->cursor, it->scratch.data, it->scratch.len, it->ts, en);
        if (rc < 0) return rc;
        if (rc == 1 && !en->tombstone &&
            storage__key_compare(en->key, en->key_len, it->scratch.data, it->scratch.len) == 0) {
            base_buf_reset(&it->key);
            if (base_buf_append(&it->key, en->key, en->key_len) != 0) return STORAGE_ERR_NOMEM;
            return 1;
        }
        rc = vt->cursor_seek_before_key(it->cursor, it->scratch.data, it->scratch.len, en);
    }
}

int storage_iter_next(storage_iter *it, const uint8_t **key, size_t *key_len,
                      hlc_timestamp *ts, const uint8_t **value, size_t *value_len,
                      bool *tombstone) {
    if (it == NULL) return STORAGE_ERR_INVALID;
    if (it->done) return it->error;
    storage__entry en;
    int rc;
    if (it->mode == STORAGE_ITER_ALL_VERSIONS)
        rc = iter_next_all_versions(it, &en);
    else if (it->reverse)
        rc = iter_next_reverse(it, &en);
    else
        rc = iter_next_forward(it, &en);
    if (rc <= 0) {
        it->done = true;
        it->error = rc;
        return rc;
    }
    if (key) *key = en.key;
    if (key_len) *key_len = en.key_len;
    if (ts) *ts = en.ts;
    if (value) *value = en.tombstone ? NULL : en.value;
    if (value_len) *value_len = en.tombstone ? 0 : en.value_len;
    if (tombstone) *tombstone = en.tombstone;
    return 1;
}

/* ---- garbage collection ------------------------------------------------------ */
int storage_gc(storage_engine *e, const uint8_t *start, size_t start_len, const uint8_t *end,
               size_t end_len, hlc_timestamp gc_ts, uint64_t *versions_removed) {
    if (versions_removed) *versions_removed = 0;
    if (e == NULL) return STORAGE_ERR_INVALID;
    storage_iter_options o = {.start = start, .start_len = start ? start_len : 0, .end = end,
                              .end_len = end_len, .mode = STORAGE_ITER_ALL_VERSIONS};
    storage_iter *it = NULL;
    storage_batch *b = NULL;
    base_buf cur = {0};
    uint64_t removed = 0;
    int rc = storage_iter_open(e, NULL, &o, &it);
    if (rc < 0) goto cleanup;
    b = storage_batch_new();
    if (b == NULL) {
        rc = STORAGE_ERR_NOMEM;
        goto cleanup;
    }
    bool have_key = false;
    bool kept = false; /* the newest version <= gc_ts of cur has been seen */
    for (;;) {
        const uint8_t *k;
        size_t kl;
        hlc_timestamp ts;
        bool tomb;
        rc = storage_iter_next(it, &k, &kl, &ts, NULL, NULL, &tomb);
        if (rc <= 0) break;
        if (!have_key || storage__key_compare(k, kl, cur.data, cur.len) != 0) {
            base_buf_reset(&cur);
            if (base_buf_append(&cur, k, kl) != 0) {
                rc = STORAGE_ERR_NOMEM;
                goto cleanup;
            }
            have_key = true;
            kept = false;
        }
        if (hlc_compare(ts, gc_ts) > 0) continue;
        bool remove = kept || tomb;
        kept = true;
        if (!remove) continue;
        rc = batch_add(b, STORAGE__OP_REMOVE_VERSION, k, kl, ts, NULL, 0, false);
        if (rc < 0) goto cleanup;
        if (b->count >= STORAGE__GC_BATCH_OPS) {
            rc = storage_write(e, b, false);
            if (rc < 0) goto cleanup;
            removed += b->count;
            storage_batch_clear(b);
        }
    }
    if (rc < 0) goto cleanup;
    rc = storage_write(e, b, false);
    if (rc < 0) goto cleanup;
    removed += b->count;
    rc = STORAGE_OK;
cleanup:
    if (versions_removed) *versions_removed = removed;
    storage_iter_close(it);
    storage_batch_free(b);
    base_buf_free(&cur);
    return rc;
}

int storage_approximate_size(storage_engine *e, const uint8_t *start, size_t start_len,
                             const uint8_t *end, size_t end_len, uint64_t *size_bytes) {
    if (e == NULL || size_bytes == NULL) return STORAGE_ERR_INVALID;
    *size_bytes = 0;
    if (start == NULL) start_len = 0;
    if (start_len > STORAGE_KEY_SIZE_MAX || (end && end_len > STORAGE_KEY_SIZE_MAX))
        return STORAGE_ERR_INVALID;
    return e->vt->approximate_size(e, start, start_len, end, end_len, size_bytes);
}

/* One pass of storage_middle_key over snap: with half == 0 count the span
** (bytes, keys) up to max (0: none); else stop at the first key start whose
** bytes before it reach half and choose it or the key start before it,
** whichever is nearer to half (never the first key). */
static int middle_pass(storage_engine *e, const storage_snapshot *snap,
                       const storage_iter_options *o, uint64_t max, uint64_t half,
                       storage_middle_info *seen, base_buf *key_out) {
    storage_iter *it = NULL;
    base_buf cur = {0};        /* the current user key */
    base_buf prev_start = {0}; /* pass 2: the last key start before half */
    uint64_t bytes = 0, prev_before = 0;
    bool have_key = false, have_prev = false, found = false;
    int rc = storage_iter_open(e, snap, o, &it);
    if (rc < 0) goto cleanup;
    for (;;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        bool tomb;
        rc = storage_iter_next(it, &k, &kl, NULL, &v, &vl, &tomb);
        if (rc <= 0) break;
        if (!have_key || storage__key_compare(k, kl, cur.data, cur.len) != 0) {
            if (half == 0 && max > 0 && bytes >= max) {
                seen->truncated = true;
                break;
            }
            if (half > 0 && have_key) { /* a key start after the first one */
                if (bytes >= half) {
                    /* the nearer of this start and the one before it */
                    bool take_prev = have_prev && half - prev_before < bytes - half;
                    base_buf_reset(key_out);
                    if (base_buf_append(key_out, take_prev ? prev_start.data : k,
                                        take_prev ? prev_start.len : kl) != 0) {
                        rc = STORAGE_ERR_NOMEM;
                        goto cleanup;
                    }
                    seen->left_bytes = take_prev ? prev_before : bytes;
                    found = true;
                    break;
                }
                base_buf_reset(&prev_start);
                if (base_buf_append(&prev_start, k, kl) != 0) {
                    rc = STORAGE_ERR_NOMEM;
                    goto cleanup;
                }
                prev_before = bytes;
                have_prev = true;
            }
            base_buf_reset(&cur);
            if (base_buf_append(&cur, k, kl) != 0) {
                rc = STORAGE_ERR_NOMEM;
                goto cleanup;
            }
            have_key = true;
            if (half == 0) seen->keys++;
        }
        bytes += kl + HLC_ENCODED_SIZE + (tomb ? 0 : vl);
    }
    if (rc < 0) goto cleanup;
    if (half == 0) {
        seen->total_bytes = bytes;
        rc = STORAGE_OK;
    } else if (!found && have_prev) { /* the last key start is the nearest */
        base_buf_reset(key_out);
        rc = base_buf_append(key_out, prev_start.data, prev_start.len) == 0 ? STORAGE_OK
                                                                           : STORAGE_ERR_NOMEM;
        seen->left_bytes = prev_before;
    } else {
        rc = found ? STORAGE_OK : STORAGE_NOT_FOUND;
    }
cleanup:
    storage_iter_close(it);
    base_buf_free(&cur);
    base_buf_free(&prev_start);
    return rc;
}

int storage_middle_key(storage_engine *e, const uint8_t *start, size_t start_len,
                       const uint8_t *end, size_t end_len, uint64_t scan_bytes_max,
                       base_buf *key_out, storage_middle_info *info) {
    if (e == NULL || key_out == NULL) return STORAGE_ERR_INVALID;
    storage_middle_info seen = {0};
    storage_snapshot *snap = NULL; /* both passes see one instant */
    if (info != NULL) *info = seen;
    int rc = storage_snapshot_new(e, &snap);
    if (rc < 0) return rc;
    storage_iter_options o = {.start = start, .start_len = start == NULL ? 0 : start_len,
                              .end = end, .end_len = end_len,
                              .mode = STORAGE_ITER_ALL_VERSIONS};
    rc = middle_pass(e, snap, &o, scan_bytes_max, 0, &seen, key_out);
    if (rc == STORAGE_OK && seen.keys < 2) rc = STORAGE_NOT_FOUND;
    if (rc == STORAGE_OK) rc = middle_pass(e, snap, &o, 0, BASE_MAX(seen.total_bytes / 2, 1),
                                           &seen, key_out);
    storage_snapshot_release(e, snap);
    if (info != NULL) *info = seen;
    return rc;
}

int storage_stats(storage_engine *e, base_buf *out) {
    if (e == NULL || out == NULL) return STORAGE_ERR_INVALID;
    return e->vt->stats(e, out);
}

int storage_flush(storage_engine *e) {
    if (e == NULL) return STORAGE_ERR_INVALID;
    return e->vt->flush(e);
}

int storage_sync(storage_engine *e) {
    if (e == NULL) return STORAGE_ERR_INVALID;
    return e->vt->sync != NULL ? e->vt->sync(e) : STORAGE_OK;
}

int storage_compact_raw(storage_engine *e, const uint8_t *start, size_t start_len,
                        const uint8_t *end, size_t end_len, bool background) {
    if (e == NULL || (start == NULL && start_len > 0) || (end == NULL && end_len > 0))
        return STORAGE_ERR_INVALID;
    /* an empty non-NULL end, or end <= start: an empty range */
    if (end != NULL && (end_len == 0 || storage__key_compare(end, end_len, start, start_len) <= 0))
        return STORAGE_OK;
    if (e->vt->compact_raw == NULL) return STORAGE_OK;
    return e->vt->compact_raw(e, start, start_len, end, end_len, background);
}

bool storage_compact_wait(storage_engine *e, int64_t timeout_ms) {
    if (e == NULL || e->vt->compact_wait == NULL) return true;
    return e->vt->compact_wait(e, timeout_ms < 0 ? 0 : timeout_ms);
}
