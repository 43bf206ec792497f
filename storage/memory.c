/*
** storage/memory.c: the in-memory twin of the RocksDB engine (dir == NULL),
** for tests and the simulator. Correctness over speed.
**
** Format:
**   - MVCC: one sorted array of entry pointers, ordered by (key ascending,
**     ts descending, created_seq descending). Each entry carries
**     created_seq and deleted_seq; it is visible at sequence s when
**     created_seq <= s < deleted_seq. A write batch takes the next sequence
**     number and applies every op with it, under the write lock: a put marks
**     the live entry at the same (key, ts) deleted and inserts a new one; a
**     delete_range / GC removal marks entries deleted. Nothing is unlinked
**     while an open snapshot or cursor could still see it.
**   - raw: a second sorted array of (key, value), no versions.
** Invariants:
**   - at most one entry per (key, ts) has deleted_seq == LIVE;
**   - every open snapshot and cursor is in the registry with its sequence;
**     purge unlinks only entries with deleted_seq <= the smallest registered
**     sequence (or <= the current sequence when none), so an entry a cursor
**     points at stays allocated while the cursor is open;
**   - a write allocates everything it needs before changing anything, so an
**     out-of-memory error leaves the store unchanged (batch atomicity).
** Locking: one rwlock (writers exclusive, readers shared, writers
** preferred), never held across API calls; the registry has
** its own mutex and is only changed under the rwlock held shared or
** exclusive, so purge (exclusive) never races a registration.
*/
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include <assert.h>
#include <pthread.h>
#include <string.h>

#include "storage/storage_int.h"

#define MEM_LIVE UINT64_MAX
#define MEM_PURGE_MIN_DEAD 64 /* purge once this many dead entries ... */
#define MEM_PURGE_DEAD_FRACTION 4 /* ... and more than 1/4 of all entries */

typedef struct mem_entry {
    uint64_t created_seq;
    uint64_t deleted_seq;
    hlc_timestamp ts;
    bool tombstone;
    size_t key_len;
    size_t value_len;
    uint8_t *value; /* points after key inside this allocation */
    uint8_t key[];
} mem_entry;

typedef struct mem_raw {
    size_t key_len;
    size_t value_len;
    uint8_t *value;
    uint8_t key[];
} mem_raw;

typedef struct mem_engine {
    storage_engine base;
    pthread_rwlock_t lock;
    uint64_t seq; /* last applied batch; changed under the write lock */
    mem_entry **v; /* owner: the engine */
    size_t n;
    size_t cap;
    size_t dead; /* entries with deleted_seq != LIVE */
    mem_raw **raw;
    size_t raw_n;
    size_t raw_cap;
    pthread_mutex_t reg_lock;
    uint64_t *reg; /* sequences of open snapshots and cursors (a multiset) */
    size_t reg_n;
    size_t reg_cap;
} mem_engine;

struct storage__cursor {
    mem_engine *m;
    uint64_t seq;
    mem_entry *cur; /* NULL: not positioned */
};

/* ---- ordering ---------------------------------------------------------------- */
/* Entry order: key asc, ts desc, created_seq desc. */
static int cmp_entry(const mem_entry *e, const uint8_t *key, size_t key_len, hlc_timestamp ts,
                     uint64_t seq) {
    int c = storage__key_compare(e->key, e->key_len, key, key_len);
    if (c) return c;
    c = hlc_compare(e->ts, ts);
    if (c) return -c;
    if (e->created_seq != seq) return e->created_seq > seq ? -1 : 1;
    return 0;
}

/* First index whose entry is >= (key, ts, seq). */
static size_t lower_bound(const mem_engine *m, const uint8_t *key, size_t key_len,
                          hlc_timestamp ts, uint64_t seq) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_entry(m->v[mid], key, key_len, ts, seq) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First index whose key is >= key (after_key: > key). */
static size_t key_bound(const mem_engine *m, const uint8_t *key, size_t key_len, bool after_key) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = storage__key_compare(m->v[mid]->key, m->v[mid]->key_len, key, key_len);
        if (c < 0 || (after_key && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool visible(const mem_entry *e, uint64_t seq) {
    return e->created_seq <= seq && seq < e->deleted_seq;
}

static size_t raw_bound(const mem_engine *m, const uint8_t *key, size_t key_len) {
    size_t lo = 0, hi = m->raw_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (storage__key_compare(m->raw[mid]->key, m->raw[mid]->key_len, key, key_len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- registry -------------------------------------------------------------------
** Called with m->lock held (shared or exclusive). */
static int reg_add(mem_engine *m, uint64_t seq) {
    int rc = STORAGE_OK;
    pthread_mutex_lock(&m->reg_lock);
    if (m->reg_n == m->reg_cap) {
        size_t cap = m->reg_cap ? m->reg_cap * 2 : 8;
        uint64_t *r = base_realloc(m->reg, cap * sizeof(*r));
        if (r == NULL) {
            rc = STORAGE_ERR_NOMEM;
            goto cleanup;
        }
        m->reg = r;
        m->reg_cap = cap;
    }
    m->reg[m->reg_n++] = seq;
cleanup:
    pthread_mutex_unlock(&m->reg_lock);
    return rc;
}

static void reg_remove(mem_engine *m, uint64_t seq) {
    pthread_mutex_lock(&m->reg_lock);
    size_t i;
    for (i = 0; i < m->reg_n; i++)
        if (m->reg[i] == seq) break;
    assert(i < m->reg_n && "snapshot released twice or never registered");
    if (i < m->reg_n) m->reg[i] = m->reg[--m->reg_n];
    pthread_mutex_unlock(&m->reg_lock);
}

/* Unlink entries no reader can see any more. Write lock held. */
static void purge(mem_engine *m) {
    if (m->dead < MEM_PURGE_MIN_DEAD || m->dead * MEM_PURGE_DEAD_FRACTION < m->n) return;
    pthread_mutex_lock(&m->reg_lock);
    uint64_t horizon = m->seq;
    for (size_t i = 0; i < m->reg_n; i++) horizon = BASE_MIN(horizon, m->reg[i]);
    pthread_mutex_unlock(&m->reg_lock);
    size_t w = 0;
    for (size_t i = 0; i < m->n; i++) {
        mem_entry *e = m->v[i];
        if (e->deleted_seq != MEM_LIVE && e->deleted_seq <= horizon) {
            base_free(e);
            m->dead--;
        } else {
            m->v[w++] = e;
        }
    }
    m->n = w;
}

/* ---- writes ------------------------------------------------------------------------ */
static mem_entry *entry_new(const storage__op *op, uint64_t seq) {
    size_t vlen = op->kind == STORAGE__OP_PUT ? op->value_len : 0;
    mem_entry *e = base_malloc(sizeof(*e) + op->key_len + vlen + 1);
    if (e == NULL) return NULL;
    e->created_seq = seq;
    e->deleted_seq = MEM_LIVE;
    e->ts = op->ts;
    e->tombstone = op->kind == STORAGE__OP_DELETE;
    e->key_len = op->key_len;
    e->value_len = vlen;
    memcpy(e->key, op->key, op->key_len);
    e->value = e->key + op->key_len;
    if (vlen) memcpy(e->value, op->value, vlen);
    return e;
}

static mem_raw *raw_new(const storage__op *op) {
    mem_raw *r = base_malloc(sizeof(*r) + op->key_len + op->value_len + 1);
    if (r == NULL) return NULL;
    r->key_len = op->key_len;
    r->value_len = op->value_len;
    memcpy(r->key, op->key, op->key_len);
    r->value = r->key + op->key_len;
    if (op->value_len) memcpy(r->value, op->value, op->value_len);
    return r;
}

/* Mark the live entry at (key, ts) deleted, if any. */
static void kill_version(mem_engine *m, const uint8_t *key, size_t key_len, hlc_timestamp ts,
                         uint64_t seq) {
    size_t i = lower_bound(m, key, key_len, ts, UINT64_MAX);
    for (; i < m->n && cmp_entry(m->v[i], key, key_len, ts, 0) <= 0; i++) {
        if (m->v[i]->deleted_seq == MEM_LIVE) {
            m->v[i]->deleted_seq = seq;
            m->dead++;
            return; /* at most one live entry per (key, ts) */
        }
    }
}

static void apply_op(mem_engine *m, const storage__op *op, uint64_t seq, void *prepared) {
    switch (op->kind) {
    case STORAGE__OP_PUT:
    case STORAGE__OP_DELETE: {
        kill_version(m, op->key, op->key_len, op->ts, seq);
        size_t i = lower_bound(m, op->key, op->key_len, op->ts, seq);
        assert(m->n < m->cap);
        memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(m->v[0]));
        m->v[i] = prepared;
        m->n++;
        break;
    }
    case STORAGE__OP_REMOVE_VERSION:
        kill_version(m, op->key, op->key_len, op->ts, seq);
        break;
    case STORAGE__OP_DELETE_RANGE: {
        size_t i = key_bound(m, op->key, op->key_len, false);
        for (; i < m->n; i++) {
            mem_entry *e = m->v[i];
            if (!op->end_unbounded &&
                storage__key_compare(e->key, e->key_len, op->value, op->value_len) >= 0)
                break;
            if (e->deleted_seq == MEM_LIVE) {
                e->deleted_seq = seq;
                m->dead++;
            }
        }
        break;
    }
    case STORAGE__OP_PUT_RAW:
    case STORAGE__OP_DELETE_RAW: {
        size_t i = raw_bound(m, op->key, op->key_len);
        bool found = i < m->raw_n && storage__key_compare(m->raw[i]->key, m->raw[i]->key_len,
                                                          op->key, op->key_len) == 0;
        if (op->kind == STORAGE__OP_PUT_RAW) {
            if (found) {
                base_free(m->raw[i]);
                m->raw[i] = prepared;
            } else {
                assert(m->raw_n < m->raw_cap);
                memmove(&m->raw[i + 1], &m->raw[i], (m->raw_n - i) * sizeof(m->raw[0]));
                m->raw[i] = prepared;
                m->raw_n++;
            }
        } else if (found) {
            base_free(m->raw[i]);
            memmove(&m->raw[i], &m->raw[i + 1], (m->raw_n - i - 1) * sizeof(m->raw[0]));
            m->raw_n--;
        }
        break;
    }
    }
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return STORAGE_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *p = base_realloc(*arr, c * elem);
    if (p == NULL) return STORAGE_ERR_NOMEM;
    *arr = p;
    *cap = c;
    return STORAGE_OK;
}

static int mem_write(storage_engine *e, const storage_batch *b, bool sync) {
    mem_engine *m = (mem_engine *)e;
    (void)sync; /* memory has no durability */
    int rc = STORAGE_OK;
    void **prepared = base_calloc(b->count, sizeof(void *));
    if (prepared == NULL) return STORAGE_ERR_NOMEM;
    pthread_rwlock_wrlock(&m->lock);
    uint64_t seq = m->seq + 1;
    size_t puts = 0, raw_puts = 0;
    for (size_t i = 0; i < b->count; i++) {
        const storage__op *op = &b->ops[i];
        if (op->kind == STORAGE__OP_PUT || op->kind == STORAGE__OP_DELETE) {
            prepared[i] = entry_new(op, seq);
            puts++;
        } else if (op->kind == STORAGE__OP_PUT_RAW) {
            prepared[i] = raw_new(op);
            raw_puts++;
        } else {
            continue;
        }
        if (prepared[i] == NULL) {
            rc = STORAGE_ERR_NOMEM;
            goto cleanup;
        }
    }
    rc = grow((void **)&m->v, &m->cap, m->n + puts, sizeof(m->v[0]));
    if (rc < 0) goto cleanup;
    rc = grow((void **)&m->raw, &m->raw_cap, m->raw_n + raw_puts, sizeof(m->raw[0]));
    if (rc < 0) goto cleanup;
    /* From here on nothing can fail. */
    for (size_t i = 0; i < b->count; i++) {
        apply_op(m, &b->ops[i], seq, prepared[i]);
        prepared[i] = NULL;
    }
    m->seq = seq;
    purge(m);
cleanup:
    pthread_rwlock_unlock(&m->lock);
    for (size_t i = 0; i < b->count; i++) base_free(prepared[i]);
    base_free(prepared);
    return rc;
}

/* ---- snapshots ------------------------------------------------------------------- */
static int mem_snapshot_new(storage_engine *e, storage_snapshot **out) {
    mem_engine *m = (mem_engine *)e;
    storage_snapshot *s = base_calloc(1, sizeof(*s));
    if (s == NULL) return STORAGE_ERR_NOMEM;
    pthread_rwlock_rdlock(&m->lock);
    s->seq = m->seq;
    int rc = reg_add(m, s->seq);
    pthread_rwlock_unlock(&m->lock);
    if (rc < 0) {
        base_free(s);
        return rc;
    }
    *out = s;
    return STORAGE_OK;
}

static void mem_snapshot_release(storage_engine *e, storage_snapshot *s) {
    mem_engine *m = (mem_engine *)e;
    pthread_rwlock_rdlock(&m->lock);
    reg_remove(m, s->seq);
    pthread_rwlock_unlock(&m->lock);
    base_free(s);
}

/* ---- cursors --------------------------------------------------------------------- */
static int mem_cursor_open(storage_engine *e, const storage_snapshot *snap,
                           const storage__bounds *bounds, storage__cursor **out) {
    mem_engine *m = (mem_engine *)e;
    (void)bounds;
    storage__cursor *c = base_calloc(1, sizeof(*c));
    if (c == NULL) return STORAGE_ERR_NOMEM;
    c->m = m;
    pthread_rwlock_rdlock(&m->lock);
    c->seq = snap ? snap->seq : m->seq;
    int rc = reg_add(m, c->seq);
    pthread_rwlock_unlock(&m->lock);
    if (rc < 0) {
        base_free(c);
        return rc;
    }
    *out = c;
    return STORAGE_OK;
}

static void mem_cursor_close(storage__cursor *c) {
    if (c == NULL) return;
    pthread_rwlock_rdlock(&c->m->lock);
    reg_remove(c->m, c->seq);
    pthread_rwlock_unlock(&c->m->lock);
    base_free(c);
}

static int position(storage__cursor *c, mem_entry *e, storage__entry *out) {
    c->cur = e;
    if (e == NULL) return 0;
    out->key = e->key;
    out->key_len = e->key_len;
    out->ts = e->ts;
    out->tombstone = e->tombstone;
    out->value = e->value;
    out->value_len = e->value_len;
    return 1;
}

/* First visible entry at index >= i. Lock held. */
static mem_entry *visible_from(const storage__cursor *c, size_t i) {
    for (; i < c->m->n; i++)
        if (visible(c->m->v[i], c->seq)) return c->m->v[i];
    return NULL;
}

static int mem_seek_ge(storage__cursor *c, const uint8_t *key, size_t key_len, hlc_timestamp ts,
                       storage__entry *out) {
    pthread_rwlock_rdlock(&c->m->lock);
    size_t i = key ? lower_bound(c->m, key, key_len, ts, UINT64_MAX) : 0;
    int rc = position(c, visible_from(c, i), out);
    pthread_rwlock_unlock(&c->m->lock);
    return rc;
}

static int mem_seek_after_key(storage__cursor *c, const uint8_t *key, size_t key_len,
                              storage__entry *out) {
    pthread_rwlock_rdlock(&c->m->lock);
    int rc = position(c, visible_from(c, key_bound(c->m, key, key_len, true)), out);
    pthread_rwlock_unlock(&c->m->lock);
    return rc;
}

static int mem_seek_before_key(storage__cursor *c, const uint8_t *key, size_t key_len,
                               storage__entry *out) {
    pthread_rwlock_rdlock(&c->m->lock);
    size_t i = key ? key_bound(c->m, key, key_len, false) : c->m->n;
    mem_entry *found = NULL;
    while (i > 0) {
        i--;
        if (visible(c->m->v[i], c->seq)) {
            found = c->m->v[i];
            break;
        }
    }
    int rc = position(c, found, out);
    pthread_rwlock_unlock(&c->m->lock);
    return rc;
}

static int mem_next(storage__cursor *c, storage__entry *out) {
    assert(c->cur != NULL && "cursor_next without a position");
    if (c->cur == NULL) return 0;
    pthread_rwlock_rdlock(&c->m->lock);
    mem_entry *e = c->cur;
    /* e is still in the array: it is visible at c->seq, so never purged */
    size_t i = lower_bound(c->m, e->key, e->key_len, e->ts, e->created_seq);
    while (i < c->m->n && c->m->v[i] != e) i++; /* equal triples: few */
    assert(i < c->m->n);
    int rc = position(c, visible_from(c, i + 1), out);
    pthread_rwlock_unlock(&c->m->lock);
    return rc;
}

/* ---- raw, size, close --------------------------------------------------------------- */
static int mem_get_raw(storage_engine *e, const uint8_t *key, size_t key_len, base_buf *out) {
    mem_engine *m = (mem_engine *)e;
    int rc = STORAGE_NOT_FOUND;
    pthread_rwlock_rdlock(&m->lock);
    size_t i = raw_bound(m, key, key_len);
    if (i < m->raw_n &&
        storage__key_compare(m->raw[i]->key, m->raw[i]->key_len, key, key_len) == 0) {
        base_buf_reset(out);
        rc = base_buf_append(out, m->raw[i]->value, m->raw[i]->value_len) == 0
                 ? STORAGE_OK
                 : STORAGE_ERR_NOMEM;
    }
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

static int mem_seek_raw(storage_engine *e, const uint8_t *start, size_t start_len,
                        const uint8_t *end, size_t end_len, base_buf *key_out,
                        base_buf *value_out) {
    mem_engine *m = (mem_engine *)e;
    int rc = STORAGE_NOT_FOUND;
    pthread_rwlock_rdlock(&m->lock);
    size_t i = raw_bound(m, start, start_len);
    if (i < m->raw_n &&
        (end == NULL ||
         storage__key_compare(m->raw[i]->key, m->raw[i]->key_len, end, end_len) < 0)) {
        base_buf_reset(key_out);
        rc = base_buf_append(key_out, m->raw[i]->key, m->raw[i]->key_len) == 0 ? STORAGE_OK
                                                                               : STORAGE_ERR_NOMEM;
        if (rc == STORAGE_OK && value_out != NULL) {
            base_buf_reset(value_out);
            if (base_buf_append(value_out, m->raw[i]->value, m->raw[i]->value_len) != 0)
                rc = STORAGE_ERR_NOMEM;
        }
    }
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

static int mem_approximate_size(storage_engine *e, const uint8_t *start, size_t start_len,
                                const uint8_t *end, size_t end_len, uint64_t *size_bytes) {
    mem_engine *m = (mem_engine *)e;
    uint64_t total = 0;
    pthread_rwlock_rdlock(&m->lock);
    for (size_t i = key_bound(m, start, start_len, false); i < m->n; i++) {
        const mem_entry *en = m->v[i];
        if (end && storage__key_compare(en->key, en->key_len, end, end_len) >= 0) break;
        if (en->deleted_seq == MEM_LIVE) total += en->key_len + HLC_ENCODED_SIZE + en->value_len;
    }
    pthread_rwlock_unlock(&m->lock);
    *size_bytes = total;
    return STORAGE_OK;
}

static int mem_stats(storage_engine *e, base_buf *out) {
    mem_engine *m = (mem_engine *)e;
    pthread_rwlock_rdlock(&m->lock);
    int rc = base_buf_printf(out, "memory: seq %llu, %zu entries (%zu dead), %zu raw keys\n",
                             (unsigned long long)m->seq, m->n, m->dead, m->raw_n);
    pthread_rwlock_unlock(&m->lock);
    return rc == 0 ? STORAGE_OK : STORAGE_ERR_NOMEM;
}

static int mem_flush(storage_engine *e) {
    (void)e;
    return STORAGE_OK;
}

static void mem_close(storage_engine *e) {
    mem_engine *m = (mem_engine *)e;
    assert(m->reg_n == 0 && "storage_close with open snapshots or iterators");
    for (size_t i = 0; i < m->n; i++) base_free(m->v[i]);
    for (size_t i = 0; i < m->raw_n; i++) base_free(m->raw[i]);
    base_free(m->v);
    base_free(m->raw);
    base_free(m->reg);
    pthread_rwlock_destroy(&m->lock);
    pthread_mutex_destroy(&m->reg_lock);
    base_free(m);
}

static const storage__vtable mem_vtable = {
    .close = mem_close,
    .write = mem_write,
    .snapshot_new = mem_snapshot_new,
    .snapshot_release = mem_snapshot_release,
    .cursor_open = mem_cursor_open,
    .cursor_seek_ge = mem_seek_ge,
    .cursor_seek_after_key = mem_seek_after_key,
    .cursor_seek_before_key = mem_seek_before_key,
    .cursor_next = mem_next,
    .cursor_close = mem_cursor_close,
    .get_raw = mem_get_raw,
    .seek_raw = mem_seek_raw,
    .approximate_size = mem_approximate_size,
    .stats = mem_stats,
    .flush = mem_flush,
};

int storage__memory_open(const storage_options *opts, storage_engine **out) {
    (void)opts;
    mem_engine *m = base_calloc(1, sizeof(*m));
    if (m == NULL) return STORAGE_ERR_NOMEM;
    m->base.vt = &mem_vtable;
    /* Writer preference: a stream of readers must not starve the applier.
    ** Safe because no thread ever takes the read lock twice. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int init_rc = pthread_rwlock_init(&m->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (init_rc != 0) {
        base_free(m);
        return STORAGE_ERR_NOMEM;
    }
    if (pthread_mutex_init(&m->reg_lock, NULL) != 0) {
        pthread_rwlock_destroy(&m->lock);
        base_free(m);
        return STORAGE_ERR_NOMEM;
    }
    *out = &m->base;
    return STORAGE_OK;
}
