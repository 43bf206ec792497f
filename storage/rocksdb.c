/*
** storage/rocksdb.c: the RocksDB engine (opts->dir != NULL), over Debian's
** librocksdb C API (rocksdb/c.h). See docs/decisions/001-storage-rocksdb.md.
**
** ON-DISK FORMAT (version 1; change only with a migration):
**   Column family "default" holds MVCC versions:
**     key   = escape(user_key) 0x00 0x01 NOT(ts12)
**       escape: every 0x00 byte of the user key becomes 0x00 0xFF; the
**       terminator 0x00 0x01 then sorts below any continuation, so plain
**       bytewise order of storage keys == user key order (a key before its
**       extensions), and the encoding is prefix-free.
**       ts12: wall_ns (8 bytes) then logical (4 bytes), big-endian, sign bits
**       flipped (hlc_encode);
**       NOT(...) is the bitwise complement, so within one user key the
**       NEWEST version sorts FIRST. No custom comparator.
**     value = 0x00 <bytes>   a value
**           | 0x01           a tombstone (exactly one byte)
**           anything else is reported as STORAGE_ERR_CORRUPT.
**   Column family "raw" holds the non-versioned keyspace: key and value as
**   given. Both families share one WAL, so one WriteBatch is atomic across
**   them (applied index + data in one batch).
**
** Choices:
**   - Prefix extractor = "storage key minus its 12 timestamp bytes", i.e.
**     escape(user_key) 0x00 0x01, with a prefix bloom filter (10 bits/key,
**     no whole-key filtering: whole storage keys include the timestamp, so
**     a whole-key bloom never matches a seek target). Point reads
**     (get/get_latest) seek with prefix_same_as_start and skip SST files
**     without the user key; range iterators and GC use total_order_seek.
**   - WAL always on; recovery mode point-in-time (a torn tail after power
**     loss recovers a consistent prefix). sync=true sets WriteOptions.sync;
**     RocksDB's write group leader fsyncs once for every writer queued
**     behind it (group commit).
**   - Shared LRU block cache (opts->block_cache_bytes, default 64 MiB).
**   - delete_range uses DeleteRange tombstones; an unbounded end uses a
**     sentinel of STORAGE_KEY_SIZE_MAX+1 bytes 0xFF, above every storage key
**     (an escaped user key has at most STORAGE_KEY_SIZE_MAX 0xFF bytes in a
**     row before its 0x00 terminator).
**   - approximate_size = the table files' estimate plus the memtables'
**     entries in the span, counted by a memtable-only iterator (the C API
**     of this RocksDB has no include_memtables flag).
**   - GC (storage.c) iterates and issues point deletes; a compaction filter
**     that drops versions under a GC threshold is the later optimization.
**   - A failed sync (a sync = true write or storage_sync that RocksDB
**     reports failed, or the injected fault of storage_inject_fault) fails
**     the store for good and calls on_failure once (storage.h); so does any
**     failed write (RocksDB's background flush/compaction errors surface
**     there: the store refuses writes from then on).
**   - storage_compact_raw: a manual CompactRange of the raw family, not
**     exclusive (automatic compactions go on), bottommost files too (where
**     a resolved intent's tombstone may sit). In the background: one worker
**     thread, started on the first request, one pending span (requests
**     widen it), one compaction at a time, STORAGE_COMPACT_INTERVAL_MS
**     apart; close stops it (a running compaction finishes first).
** Invariants:
**   - every rocksdb call that takes errptr is checked; an error is logged
**     and returned as STORAGE_ERR_IO (STORAGE_ERR_CORRUPT for "Corruption"),
**     and the process never crashes on what the disk holds;
**   - once a sync failed, no write or sync succeeds again on this engine
**     (a failed fsync is never retried), and on_failure has run once;
**   - a cursor's bound buffers outlive its RocksDB iterator.
*/
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rocksdb/c.h>

#include "storage/storage_int.h"

#define RDB_DEFAULT_CACHE_BYTES ((size_t)64 * 1024 * 1024)
#define RDB_BLOOM_BITS_PER_KEY 10
#define RDB_BACKGROUND_JOBS 2
#define RDB_TERM_SIZE 2 /* 0x00 0x01 */
#define RDB_TAG_VALUE 0x00
#define RDB_TAG_TOMBSTONE 0x01
#define RDB_SENTINEL_SIZE (STORAGE_KEY_SIZE_MAX + 1)
#define RDB_WAL_RECOVERY_POINT_IN_TIME 2
#define RDB_READ_TIER_MEMTABLE 3 /* rocksdb::kMemtableTier: memtable-only iterators */
#define RDB_STALL_SLICE_NS (20 * 1000000) /* a stalled sync re-reads the fault this often */
#define RDB_BOTTOMMOST_FORCE_OPTIMIZED 3 /* rocksdb::BottommostLevelCompaction::kForceOptimized */

typedef struct rdb_engine {
    storage_engine base;
    rocksdb_t *db;
    rocksdb_options_t *opts; /* db options and the "default" (MVCC) family */
    rocksdb_options_t *raw_opts;
    rocksdb_block_based_table_options_t *table;
    rocksdb_cache_t *cache;
    rocksdb_column_family_handle_t *cf_mvcc;
    rocksdb_column_family_handle_t *cf_raw;
    rocksdb_writeoptions_t *wo_sync;
    rocksdb_writeoptions_t *wo_nosync;
    rocksdb_readoptions_t *ro_raw;
    uint8_t *sentinel; /* RDB_SENTINEL_SIZE bytes of 0xFF */
    /* A failed sync (storage_set_on_failure) and the injected fault
    ** (storage_inject_fault, tests): atomics, read by writers without a lock. */
    atomic_bool failed;
    void (*on_failure)(void *ctx, const char *what);
    void *on_failure_ctx;
    atomic_bool fault_fail_next;
    _Atomic int64_t fault_stall_until_ns; /* monotonic; 0: none */
    /* Background compaction of the raw family (storage_compact_raw), all
    ** under cmp_mu: one pending span [cmp_lo, cmp_hi) (cmp_hi_open: no
    ** end), one worker. cmp_cv (CLOCK_MONOTONIC): a request, a compaction
    ** done, stop. */
    pthread_mutex_t cmp_mu;
    pthread_cond_t cmp_cv;
    bool cmp_init; /* cmp_mu and cmp_cv initialized */
    pthread_t cmp_thread;
    bool cmp_started, cmp_stop, cmp_pending, cmp_running;
    base_buf cmp_lo, cmp_hi;
    bool cmp_hi_open;
    int64_t cmp_next_ns; /* monotonic: no compaction starts before */
} rdb_engine;

struct storage__cursor {
    rdb_engine *r;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
    base_buf lower; /* must outlive it */
    base_buf upper;
    base_buf target; /* seek targets */
    base_buf key;    /* decoded user key of the current entry */
};

/* ---- errors ------------------------------------------------------------------- */
static int rdb_error(const char *what, char *err) {
    int rc = strncmp(err, "Corruption", 10) == 0 ? STORAGE_ERR_CORRUPT : STORAGE_ERR_IO;
    BASE_ERROR(STORAGE__MODULE, "rocksdb %s: %s", what, err);
    rocksdb_free(err);
    return rc;
}

/* ---- a failed sync ---------------------------------------------------------------
** The store fails for good; the owner hears it once (a node exits there). */
static void rdb_fail(rdb_engine *r, const char *what) {
    if (atomic_exchange(&r->failed, true)) return;
    BASE_ERROR(STORAGE__MODULE, "rocksdb: %s: the store failed; no write or sync succeeds "
               "again (a failed fsync is never retried)", what);
    if (r->on_failure != NULL) r->on_failure(r->on_failure_ctx, what);
}

/* Before a sync: the injected stall (re-read each slice, so that clearing
** it ends the wait; bounded by STORAGE_FAULT_STALL_MS_MAX), then whether
** the injected failure takes this sync. */
static bool rdb_fault_before_sync(rdb_engine *r) {
    for (;;) {
        int64_t left = atomic_load(&r->fault_stall_until_ns) - base_monotonic_ns();
        if (left <= 0) break;
        if (left > RDB_STALL_SLICE_NS) left = RDB_STALL_SLICE_NS;
        struct timespec ts = {0, left};
        nanosleep(&ts, NULL);
    }
    if (!atomic_exchange(&r->fault_fail_next, false)) return false;
    BASE_WARN(STORAGE__MODULE, "test fault: this sync of the store fails (EIO)");
    return true;
}

/* ---- key encoding -------------------------------------------------------------- */
static int append_escaped(base_buf *b, const uint8_t *key, size_t key_len) {
    if (base_buf_reserve(b, 2 * key_len + RDB_TERM_SIZE + HLC_ENCODED_SIZE) != 0)
        return STORAGE_ERR_NOMEM;
    for (size_t i = 0; i < key_len; i++) {
        b->data[b->len++] = key[i];
        if (key[i] == 0x00) b->data[b->len++] = 0xFF;
    }
    b->data[b->len++] = 0x00;
    b->data[b->len++] = 0x01;
    return STORAGE_OK;
}

/* escape(key) 0x00 0x01 NOT(ts) into b (reset first). */
static int encode_versioned(base_buf *b, const uint8_t *key, size_t key_len, hlc_timestamp ts) {
    base_buf_reset(b);
    int rc = append_escaped(b, key, key_len);
    if (rc < 0) return rc;
    uint8_t t[HLC_ENCODED_SIZE];
    hlc_encode(ts, t);
    for (int i = 0; i < HLC_ENCODED_SIZE; i++) b->data[b->len++] = (uint8_t)~t[i];
    return STORAGE_OK;
}

/* escape(key) 0x00 0x01: sorts before every version of key and after every
** version of every smaller key. */
static int encode_key_start(base_buf *b, const uint8_t *key, size_t key_len) {
    base_buf_reset(b);
    return append_escaped(b, key, key_len);
}

/* Decode a storage key into out (user key) and *ts. */
static int decode_key(const uint8_t *k, size_t len, base_buf *out, hlc_timestamp *ts) {
    if (len < RDB_TERM_SIZE + HLC_ENCODED_SIZE) goto corrupt;
    size_t plen = len - HLC_ENCODED_SIZE;
    base_buf_reset(out);
    if (base_buf_reserve(out, plen) != 0) return STORAGE_ERR_NOMEM;
    size_t i = 0;
    for (;;) {
        if (i >= plen) goto corrupt;
        if (k[i] != 0x00) {
            out->data[out->len++] = k[i++];
            continue;
        }
        if (i + 1 >= plen) goto corrupt;
        if (k[i + 1] == 0xFF) {
            out->data[out->len++] = 0x00;
            i += 2;
        } else if (k[i + 1] == 0x01 && i + 2 == plen) {
            break;
        } else {
            goto corrupt;
        }
    }
    uint8_t t[HLC_ENCODED_SIZE];
    for (int j = 0; j < HLC_ENCODED_SIZE; j++) t[j] = (uint8_t)~k[plen + (size_t)j];
    *ts = hlc_decode(t);
    return STORAGE_OK;
corrupt:
    BASE_ERROR(STORAGE__MODULE, "rocksdb: malformed MVCC key (%zu bytes)", len);
    return STORAGE_ERR_CORRUPT;
}

/* ---- prefix extractor: the storage key without its timestamp ---------------------- */
static void prefix_destroy(void *state) {
    (void)state;
}

static char *prefix_transform(void *state, const char *key, size_t len, size_t *dst_len) {
    (void)state;
    *dst_len = len - HLC_ENCODED_SIZE; /* in_domain guarantees len >= 14 */
    return (char *)key;
}

static unsigned char prefix_in_domain(void *state, const char *key, size_t len) {
    (void)state;
    (void)key;
    return len >= RDB_TERM_SIZE + HLC_ENCODED_SIZE;
}

static unsigned char prefix_in_range(void *state, const char *key, size_t len) {
    (void)state;
    (void)key;
    (void)len;
    return 0;
}

static const char *prefix_name(void *state) {
    (void)state;
    return "meridian.mvcc.userkey.v1";
}

/* ---- writes ---------------------------------------------------------------------- */
static int rdb_write(storage_engine *e, const storage_batch *b, bool sync) {
    rdb_engine *r = (rdb_engine *)e;
    int rc = STORAGE_OK;
    base_buf k = {0}, k2 = {0};
    if (atomic_load(&r->failed)) return STORAGE_ERR_IO;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (size_t i = 0; i < b->count; i++) {
        const storage__op *op = &b->ops[i];
        switch (op->kind) {
        case STORAGE__OP_PUT:
        case STORAGE__OP_DELETE: {
            rc = encode_versioned(&k, op->key, op->key_len, op->ts);
            if (rc < 0) goto cleanup;
            static const char tag_value = RDB_TAG_VALUE, tag_tomb = RDB_TAG_TOMBSTONE;
            const char *keys[1] = {(const char *)k.data};
            size_t key_sizes[1] = {k.len};
            const char *vals[2] = {op->kind == STORAGE__OP_PUT ? &tag_value : &tag_tomb,
                                   (const char *)op->value};
            size_t val_sizes[2] = {1, op->kind == STORAGE__OP_PUT ? op->value_len : 0};
            rocksdb_writebatch_putv_cf(wb, r->cf_mvcc, 1, keys, key_sizes,
                                       op->kind == STORAGE__OP_PUT ? 2 : 1, vals, val_sizes);
            break;
        }
        case STORAGE__OP_REMOVE_VERSION:
            rc = encode_versioned(&k, op->key, op->key_len, op->ts);
            if (rc < 0) goto cleanup;
            rocksdb_writebatch_delete_cf(wb, r->cf_mvcc, (const char *)k.data, k.len);
            break;
        case STORAGE__OP_DELETE_RANGE: {
            rc = encode_key_start(&k, op->key, op->key_len);
            if (rc < 0) goto cleanup;
            const char *end = (const char *)r->sentinel;
            size_t end_len = RDB_SENTINEL_SIZE;
            if (!op->end_unbounded) {
                rc = encode_key_start(&k2, op->value, op->value_len);
                if (rc < 0) goto cleanup;
                end = (const char *)k2.data;
                end_len = k2.len;
            }
            /* RocksDB rejects start > end at write time: skip empty ranges */
            if (storage__key_compare(k.data, k.len, (const uint8_t *)end, end_len) < 0)
                rocksdb_writebatch_delete_range_cf(wb, r->cf_mvcc, (const char *)k.data, k.len,
                                                   end, end_len);
            break;
        }
        case STORAGE__OP_PUT_RAW:
            rocksdb_writebatch_put_cf(wb, r->cf_raw, (const char *)op->key, op->key_len,
                                      (const char *)op->value, op->value_len);
            break;
        case STORAGE__OP_DELETE_RAW:
            rocksdb_writebatch_delete_cf(wb, r->cf_raw, (const char *)op->key, op->key_len);
            break;
        }
    }
    char *err = NULL;
    if (sync && rdb_fault_before_sync(r)) {
        /* as a real failed fsync leaves it: in the OS, maybe durable, maybe not */
        rocksdb_write(r->db, r->wo_nosync, wb, &err);
        if (err != NULL) rocksdb_free(err);
        rdb_fail(r, "a synced write failed (injected fsync failure)");
        rc = STORAGE_ERR_IO;
        goto cleanup;
    }
    rocksdb_write(r->db, sync ? r->wo_sync : r->wo_nosync, wb, &err);
    if (err != NULL) {
        rc = rdb_error("write", err);
        /* unsynced too: RocksDB refuses writes after a failed background
        ** flush or compaction sync, and a replica cannot skip an entry */
        rdb_fail(r, sync ? "a synced write failed" : "a write failed");
    }
cleanup:
    rocksdb_writebatch_destroy(wb);
    base_buf_free(&k);
    base_buf_free(&k2);
    return rc;
}

/* ---- snapshots ----------------------------------------------------------------- */
static int rdb_snapshot_new(storage_engine *e, storage_snapshot **out) {
    rdb_engine *r = (rdb_engine *)e;
    storage_snapshot *s = base_calloc(1, sizeof(*s));
    if (s == NULL) return STORAGE_ERR_NOMEM;
    s->handle = rocksdb_create_snapshot(r->db);
    if (s->handle == NULL) {
        base_free(s);
        return STORAGE_ERR_IO;
    }
    *out = s;
    return STORAGE_OK;
}

static void rdb_snapshot_release(storage_engine *e, storage_snapshot *s) {
    rdb_engine *r = (rdb_engine *)e;
    rocksdb_release_snapshot(r->db, (const rocksdb_snapshot_t *)s->handle);
    base_free(s);
}

/* ---- cursors ------------------------------------------------------------------------ */
static void rdb_cursor_close(storage__cursor *c) {
    if (c == NULL) return;
    if (c->it) rocksdb_iter_destroy(c->it);
    if (c->ro) rocksdb_readoptions_destroy(c->ro);
    base_buf_free(&c->lower);
    base_buf_free(&c->upper);
    base_buf_free(&c->target);
    base_buf_free(&c->key);
    base_free(c);
}

static int rdb_cursor_open(storage_engine *e, const storage_snapshot *snap,
                           const storage__bounds *bounds, storage__cursor **out) {
    rdb_engine *r = (rdb_engine *)e;
    int rc = STORAGE_ERR_NOMEM;
    storage__cursor *c = base_calloc(1, sizeof(*c));
    if (c == NULL) return STORAGE_ERR_NOMEM;
    c->r = r;
    c->ro = rocksdb_readoptions_create();
    if (snap) rocksdb_readoptions_set_snapshot(c->ro, (const rocksdb_snapshot_t *)snap->handle);
    if (bounds->point) {
        rocksdb_readoptions_set_prefix_same_as_start(c->ro, 1);
    } else {
        rocksdb_readoptions_set_total_order_seek(c->ro, 1);
        if (bounds->start != NULL && bounds->start_len > 0) {
            if (encode_key_start(&c->lower, bounds->start, bounds->start_len) < 0) goto fail;
            rocksdb_readoptions_set_iterate_lower_bound(c->ro, (const char *)c->lower.data,
                                                        c->lower.len);
        }
        if (bounds->end != NULL) {
            if (encode_key_start(&c->upper, bounds->end, bounds->end_len) < 0) goto fail;
            rocksdb_readoptions_set_iterate_upper_bound(c->ro, (const char *)c->upper.data,
                                                        c->upper.len);
        }
    }
    c->it = rocksdb_create_iterator_cf(r->db, c->ro, r->cf_mvcc);
    *out = c;
    return STORAGE_OK;
fail:
    rdb_cursor_close(c);
    return rc;
}

/* After any positioning call: 1 and *out, 0 at the end, or an error. */
static int current(storage__cursor *c, storage__entry *out) {
    if (!rocksdb_iter_valid(c->it)) {
        char *err = NULL;
        rocksdb_iter_get_error(c->it, &err);
        return err ? rdb_error("iterator", err) : 0;
    }
    size_t klen, vlen;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(c->it, &klen);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(c->it, &vlen);
    int rc = decode_key(k, klen, &c->key, &out->ts);
    if (rc < 0) return rc;
    out->key = c->key.data;
    out->key_len = c->key.len;
    if (vlen >= 1 && v[0] == RDB_TAG_VALUE) {
        out->tombstone = false;
        out->value = v + 1;
        out->value_len = vlen - 1;
    } else if (vlen == 1 && v[0] == RDB_TAG_TOMBSTONE) {
        out->tombstone = true;
        out->value = NULL;
        out->value_len = 0;
    } else {
        BASE_ERROR(STORAGE__MODULE, "rocksdb: malformed MVCC value (%zu bytes)", vlen);
        return STORAGE_ERR_CORRUPT;
    }
    return 1;
}

static int rdb_seek_ge(storage__cursor *c, const uint8_t *key, size_t key_len, hlc_timestamp ts,
                       storage__entry *out) {
    if (key == NULL) {
        rocksdb_iter_seek_to_first(c->it);
        return current(c, out);
    }
    int rc = encode_versioned(&c->target, key, key_len, ts);
    if (rc < 0) return rc;
    rocksdb_iter_seek(c->it, (const char *)c->target.data, c->target.len);
    return current(c, out);
}

static int rdb_seek_after_key(storage__cursor *c, const uint8_t *key, size_t key_len,
                              storage__entry *out) {
    int rc = encode_key_start(&c->target, key, key_len);
    if (rc < 0) return rc;
    c->target.data[c->target.len - 1] = 0x02; /* escape(key) 0x00 0x02: past every version */
    rocksdb_iter_seek(c->it, (const char *)c->target.data, c->target.len);
    return current(c, out);
}

static int rdb_seek_before_key(storage__cursor *c, const uint8_t *key, size_t key_len,
                               storage__entry *out) {
    if (key == NULL) {
        rocksdb_iter_seek_to_last(c->it);
        return current(c, out);
    }
    int rc = encode_key_start(&c->target, key, key_len);
    if (rc < 0) return rc;
    /* no storage key equals escape(key) 0x00 0x01, so this is "last < key" */
    rocksdb_iter_seek_for_prev(c->it, (const char *)c->target.data, c->target.len);
    return current(c, out);
}

static int rdb_next(storage__cursor *c, storage__entry *out) {
    assert(rocksdb_iter_valid(c->it));
    rocksdb_iter_next(c->it);
    return current(c, out);
}

/* ---- raw, size -------------------------------------------------------------------- */
static int rdb_get_raw(storage_engine *e, const uint8_t *key, size_t key_len, base_buf *out) {
    rdb_engine *r = (rdb_engine *)e;
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(r->db, r->ro_raw, r->cf_raw, (const char *)key, key_len, &vlen, &err);
    if (err != NULL) return rdb_error("get raw", err);
    if (v == NULL) return STORAGE_NOT_FOUND;
    base_buf_reset(out);
    int rc = base_buf_append(out, v, vlen) == 0 ? STORAGE_OK : STORAGE_ERR_NOMEM;
    rocksdb_free(v);
    return rc;
}

static int rdb_seek_raw(storage_engine *e, const uint8_t *start, size_t start_len,
                        const uint8_t *end, size_t end_len, base_buf *key_out,
                        base_buf *value_out) {
    rdb_engine *r = (rdb_engine *)e;
    /* bounded by end: else the seek skips every deleted key after the span
    ** (resolved intents, until compaction) up to the next live one */
    rocksdb_readoptions_t *ro = r->ro_raw;
    if (end != NULL) {
        ro = rocksdb_readoptions_create();
        rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)end, end_len);
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->db, ro, r->cf_raw);
    if (start_len > 0)
        rocksdb_iter_seek(it, (const char *)start, start_len);
    else
        rocksdb_iter_seek_to_first(it);
    int rc = STORAGE_NOT_FOUND;
    if (rocksdb_iter_valid(it)) {
        size_t klen = 0, vlen = 0;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (end == NULL || storage__key_compare(k, klen, end, end_len) < 0) {
            base_buf_reset(key_out);
            rc = base_buf_append(key_out, k, klen) == 0 ? STORAGE_OK : STORAGE_ERR_NOMEM;
            if (rc == STORAGE_OK && value_out != NULL) {
                const char *v = rocksdb_iter_value(it, &vlen);
                base_buf_reset(value_out);
                if (base_buf_append(value_out, v, vlen) != 0) rc = STORAGE_ERR_NOMEM;
            }
        }
    } else {
        char *err = NULL;
        rocksdb_iter_get_error(it, &err);
        if (err != NULL) rc = rdb_error("seek raw", err);
    }
    rocksdb_iter_destroy(it);
    if (ro != r->ro_raw) rocksdb_readoptions_destroy(ro);
    return rc;
}

/* Bytes (storage key + value) of the memtables' entries in [lo, hi), both
** encoded bounds. This RocksDB's C API has no GetApproximateSizes with
** include_memtables (rocksdb_approximate_sizes_cf_with_flags came later), so
** a memtable-only iterator (read tier kMemtableTier: the mutable and the
** immutable memtables, never a table file) walks the span. Bounded by the
** memtables' size (write_buffer_size x max_write_buffer_number); entries
** hidden by a tombstone in the memtables are not counted. */
static int rdb_memtable_bytes(rdb_engine *r, const base_buf *lo, const base_buf *hi,
                              uint64_t *out) {
    int rc = STORAGE_OK;
    uint64_t total = 0;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_read_tier(ro, RDB_READ_TIER_MEMTABLE);
    rocksdb_readoptions_set_total_order_seek(ro, 1);
    rocksdb_readoptions_set_fill_cache(ro, 0);
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi->data, hi->len);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->db, ro, r->cf_mvcc);
    for (rocksdb_iter_seek(it, (const char *)lo->data, lo->len); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl = 0, vl = 0;
        (void)rocksdb_iter_key(it, &kl);
        (void)rocksdb_iter_value(it, &vl);
        total += kl + vl;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err != NULL) rc = rdb_error("memtable size", err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    *out = total;
    return rc;
}

/* Table files (rocksdb_approximate_sizes_cf: flushed data only) plus the
** memtables (rdb_memtable_bytes), so a range written a moment ago counts. */
static int rdb_approximate_size(storage_engine *e, const uint8_t *start, size_t start_len,
                                const uint8_t *end, size_t end_len, uint64_t *size_bytes) {
    rdb_engine *r = (rdb_engine *)e;
    base_buf lo = {0}, hi = {0};
    int rc = encode_key_start(&lo, start, start_len);
    if (rc < 0) goto cleanup;
    if (end != NULL) {
        rc = encode_key_start(&hi, end, end_len);
    } else {
        base_buf_reset(&hi);
        rc = base_buf_append(&hi, r->sentinel, RDB_SENTINEL_SIZE) == 0 ? STORAGE_OK
                                                                       : STORAGE_ERR_NOMEM;
    }
    if (rc < 0) goto cleanup;
    if (storage__key_compare(lo.data, lo.len, hi.data, hi.len) >= 0) goto cleanup; /* empty */
    const char *starts[1] = {(const char *)lo.data}, *limits[1] = {(const char *)hi.data};
    size_t start_lens[1] = {lo.len}, limit_lens[1] = {hi.len};
    uint64_t sizes[1] = {0};
    char *err = NULL;
    rocksdb_approximate_sizes_cf(r->db, r->cf_mvcc, 1, starts, start_lens, limits, limit_lens,
                                 sizes, &err);
    if (err != NULL) {
        rc = rdb_error("approximate sizes", err);
        goto cleanup;
    }
    uint64_t mem = 0;
    if ((rc = rdb_memtable_bytes(r, &lo, &hi, &mem)) < 0) goto cleanup;
    *size_bytes = sizes[0] + mem;
cleanup:
    base_buf_free(&lo);
    base_buf_free(&hi);
    return rc;
}

static int rdb_stats(storage_engine *e, base_buf *out) {
    rdb_engine *r = (rdb_engine *)e;
    char *text = rocksdb_property_value(r->db, "rocksdb.stats");
    if (text == NULL) return STORAGE_ERR_IO;
    int rc = base_buf_append(out, text, strlen(text)) == 0 ? STORAGE_OK : STORAGE_ERR_NOMEM;
    rocksdb_free(text);
    return rc;
}

static int rdb_flush(storage_engine *e) {
    rdb_engine *r = (rdb_engine *)e;
    int rc = STORAGE_OK;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_column_family_handle_t *cfs[2] = {r->cf_mvcc, r->cf_raw};
    for (int i = 0; i < 2 && rc == STORAGE_OK; i++) {
        char *err = NULL;
        rocksdb_flush_cf(r->db, fo, cfs[i], &err);
        if (err != NULL) rc = rdb_error("flush", err);
    }
    rocksdb_flushoptions_destroy(fo);
    return rc;
}

static int rdb_sync(storage_engine *e) {
    rdb_engine *r = (rdb_engine *)e;
    char *err = NULL;
    if (atomic_load(&r->failed)) return STORAGE_ERR_IO;
    if (rdb_fault_before_sync(r)) {
        rdb_fail(r, "a sync of the WAL failed (injected fsync failure)");
        return STORAGE_ERR_IO;
    }
    rocksdb_flush_wal(r->db, 1 /* sync */, &err);
    if (err == NULL) return STORAGE_OK;
    int rc = rdb_error("sync", err);
    rdb_fail(r, "a sync of the WAL failed");
    return rc;
}

/* ---- compaction of the raw family (storage_compact_raw) ------------------------- */
/* start_len 0: from the first key; end NULL: to the last. */
static void rdb_compact_now(rdb_engine *r, const uint8_t *start, size_t start_len,
                            const uint8_t *end, size_t end_len) {
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_exclusive_manual_compaction(co, 0);
    rocksdb_compactoptions_set_bottommost_level_compaction(co, RDB_BOTTOMMOST_FORCE_OPTIMIZED);
    /* this C API reports no error: a failed compaction only leaves the
    ** tombstones, which RocksDB logs and later compactions take */
    rocksdb_compact_range_cf_opt(r->db, r->cf_raw, co, start_len > 0 ? (const char *)start : NULL,
                                 start_len, (const char *)end, end_len);
    rocksdb_compactoptions_destroy(co);
}

static struct timespec rdb_abs_monotonic(int64_t at_ns) {
    struct timespec ts = {(time_t)(at_ns / 1000000000LL), (long)(at_ns % 1000000000LL)};
    return ts;
}

/* The worker: takes the pending span, compacts it without the lock, waits
** STORAGE_COMPACT_INTERVAL_MS before the next. Ends on cmp_stop. */
static void *rdb_compact_main(void *arg) {
    rdb_engine *r = arg;
    base_buf lo = {0}, hi = {0}; /* owner: this thread; the span taken */
    pthread_mutex_lock(&r->cmp_mu);
    while (!r->cmp_stop) {
        int64_t now = base_monotonic_ns();
        if (!r->cmp_pending) {
            pthread_cond_wait(&r->cmp_cv, &r->cmp_mu);
            continue;
        }
        if (now < r->cmp_next_ns) {
            struct timespec at = rdb_abs_monotonic(r->cmp_next_ns);
            (void)pthread_cond_timedwait(&r->cmp_cv, &r->cmp_mu, &at);
            continue;
        }
        base_buf_reset(&lo);
        base_buf_reset(&hi);
        bool open = r->cmp_hi_open;
        if (base_buf_append(&lo, r->cmp_lo.data, r->cmp_lo.len) != 0 ||
            base_buf_append(&hi, r->cmp_hi.data, r->cmp_hi.len) != 0) {
            BASE_WARN(STORAGE__MODULE, "background compaction dropped: out of memory");
            r->cmp_pending = false;
            continue;
        }
        r->cmp_pending = false;
        r->cmp_running = true;
        pthread_mutex_unlock(&r->cmp_mu);
        if (!atomic_load(&r->failed))
            rdb_compact_now(r, lo.data, lo.len, open ? NULL : hi.data, open ? 0 : hi.len);
        pthread_mutex_lock(&r->cmp_mu);
        r->cmp_running = false;
        r->cmp_next_ns = base_monotonic_ns() + (int64_t)STORAGE_COMPACT_INTERVAL_MS * 1000000;
        pthread_cond_broadcast(&r->cmp_cv);
    }
    pthread_mutex_unlock(&r->cmp_mu);
    base_buf_free(&lo);
    base_buf_free(&hi);
    return NULL;
}

/* Widen the pending span to cover [start, end) (under cmp_mu). */
static int rdb_compact_widen_locked(rdb_engine *r, const uint8_t *start, size_t start_len,
                                    const uint8_t *end, size_t end_len) {
    if (!r->cmp_pending || storage__key_compare(start, start_len, r->cmp_lo.data,
                                                r->cmp_lo.len) < 0) {
        base_buf_reset(&r->cmp_lo);
        if (start_len > 0 && base_buf_append(&r->cmp_lo, start, start_len) != 0)
            return STORAGE_ERR_NOMEM;
    }
    if (!r->cmp_pending) {
        r->cmp_hi_open = end == NULL;
        base_buf_reset(&r->cmp_hi);
        if (end != NULL && base_buf_append(&r->cmp_hi, end, end_len) != 0)
            return STORAGE_ERR_NOMEM;
    } else if (!r->cmp_hi_open) {
        if (end == NULL) {
            r->cmp_hi_open = true;
        } else if (storage__key_compare(end, end_len, r->cmp_hi.data, r->cmp_hi.len) > 0) {
            base_buf_reset(&r->cmp_hi);
            if (base_buf_append(&r->cmp_hi, end, end_len) != 0)
                return STORAGE_ERR_NOMEM;
        }
    }
    r->cmp_pending = true;
    return STORAGE_OK;
}

static int rdb_compact_raw(storage_engine *e, const uint8_t *start, size_t start_len,
                           const uint8_t *end, size_t end_len, bool background) {
    rdb_engine *r = (rdb_engine *)e;
    if (atomic_load(&r->failed)) return STORAGE_ERR_IO;
    if (!background) {
        rdb_compact_now(r, start, start_len, end, end_len);
        return STORAGE_OK;
    }
    pthread_mutex_lock(&r->cmp_mu);
    int rc = STORAGE_OK;
    if (!r->cmp_started) {
        if (pthread_create(&r->cmp_thread, NULL, rdb_compact_main, r) != 0)
            rc = STORAGE_ERR_NOMEM;
        else
            r->cmp_started = true;
    }
    if (rc == STORAGE_OK && !r->cmp_stop) {
        /* a failure to widen leaves no pending span: the worker takes none */
        rc = rdb_compact_widen_locked(r, start, start_len, end, end_len);
        if (rc != STORAGE_OK) r->cmp_pending = false;
        pthread_cond_broadcast(&r->cmp_cv);
    }
    pthread_mutex_unlock(&r->cmp_mu);
    return rc;
}

static bool rdb_compact_wait(storage_engine *e, int64_t timeout_ms) {
    rdb_engine *r = (rdb_engine *)e;
    int64_t until = base_monotonic_ns() + timeout_ms * 1000000;
    struct timespec at = rdb_abs_monotonic(until);
    pthread_mutex_lock(&r->cmp_mu);
    while ((r->cmp_pending || r->cmp_running) && r->cmp_started && !r->cmp_stop) {
        if (pthread_cond_timedwait(&r->cmp_cv, &r->cmp_mu, &at) == ETIMEDOUT) break;
    }
    bool idle = !r->cmp_running && (!r->cmp_pending || !r->cmp_started || r->cmp_stop);
    pthread_mutex_unlock(&r->cmp_mu);
    return idle;
}

/* ---- open / close ------------------------------------------------------------------ */
static void rdb_close(storage_engine *e) {
    rdb_engine *r = (rdb_engine *)e;
    if (r->cmp_init) {
        pthread_mutex_lock(&r->cmp_mu);
        r->cmp_stop = true;
        pthread_cond_broadcast(&r->cmp_cv);
        bool started = r->cmp_started;
        pthread_mutex_unlock(&r->cmp_mu);
        if (started) pthread_join(r->cmp_thread, NULL);
        pthread_cond_destroy(&r->cmp_cv);
        pthread_mutex_destroy(&r->cmp_mu);
        base_buf_free(&r->cmp_lo);
        base_buf_free(&r->cmp_hi);
    }
    if (r->cf_mvcc) rocksdb_column_family_handle_destroy(r->cf_mvcc);
    if (r->cf_raw) rocksdb_column_family_handle_destroy(r->cf_raw);
    if (r->db) rocksdb_close(r->db);
    if (r->wo_sync) rocksdb_writeoptions_destroy(r->wo_sync);
    if (r->wo_nosync) rocksdb_writeoptions_destroy(r->wo_nosync);
    if (r->ro_raw) rocksdb_readoptions_destroy(r->ro_raw);
    if (r->opts) rocksdb_options_destroy(r->opts);
    if (r->raw_opts) rocksdb_options_destroy(r->raw_opts);
    if (r->table) rocksdb_block_based_options_destroy(r->table);
    if (r->cache) rocksdb_cache_destroy(r->cache);
    base_free(r->sentinel);
    base_free(r);
}

static const storage__vtable rdb_vtable = {
    .close = rdb_close,
    .write = rdb_write,
    .snapshot_new = rdb_snapshot_new,
    .snapshot_release = rdb_snapshot_release,
    .cursor_open = rdb_cursor_open,
    .cursor_seek_ge = rdb_seek_ge,
    .cursor_seek_after_key = rdb_seek_after_key,
    .cursor_seek_before_key = rdb_seek_before_key,
    .cursor_next = rdb_next,
    .cursor_close = rdb_cursor_close,
    .get_raw = rdb_get_raw,
    .seek_raw = rdb_seek_raw,
    .approximate_size = rdb_approximate_size,
    .stats = rdb_stats,
    .flush = rdb_flush,
    .sync = rdb_sync,
    .compact_raw = rdb_compact_raw,
    .compact_wait = rdb_compact_wait,
};

/* ---- failure and injected faults (storage.h) ------------------------------------- */
void storage_set_on_failure(storage_engine *e, void (*on_failure)(void *ctx, const char *what),
                            void *ctx) {
    if (e == NULL || e->vt != &rdb_vtable) return; /* the twin never fails */
    rdb_engine *r = (rdb_engine *)e;
    r->on_failure = on_failure;
    r->on_failure_ctx = ctx;
}

int storage_inject_fault(storage_engine *e, bool fail_next, int64_t stall_ms) {
    if (e == NULL || e->vt != &rdb_vtable || stall_ms < 0 || stall_ms > STORAGE_FAULT_STALL_MS_MAX)
        return STORAGE_ERR_INVALID;
    rdb_engine *r = (rdb_engine *)e;
    atomic_store(&r->fault_stall_until_ns,
                 stall_ms > 0 ? base_monotonic_ns() + stall_ms * 1000000 : 0);
    atomic_store(&r->fault_fail_next, fail_next);
    if (fail_next || stall_ms > 0)
        BASE_WARN(STORAGE__MODULE, "test fault injected: the next sync of the store fails: %s; "
                  "syncs stall for the next %" PRId64 " ms", fail_next ? "yes" : "no", stall_ms);
    return STORAGE_OK;
}

void storage_fault_state(storage_engine *e, bool *fail_armed, int64_t *stall_left_ms,
                         bool *failed) {
    *fail_armed = false;
    *stall_left_ms = 0;
    *failed = false;
    if (e == NULL || e->vt != &rdb_vtable) return;
    rdb_engine *r = (rdb_engine *)e;
    *fail_armed = atomic_load(&r->fault_fail_next);
    int64_t left = atomic_load(&r->fault_stall_until_ns) - base_monotonic_ns();
    *stall_left_ms = left > 0 ? (left + 999999) / 1000000 : 0;
    *failed = atomic_load(&r->failed);
}

static void common_options(rocksdb_options_t *o, const rdb_engine *r, bool create) {
    rocksdb_options_set_create_if_missing(o, create);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_paranoid_checks(o, 1);
    rocksdb_options_set_wal_recovery_mode(o, RDB_WAL_RECOVERY_POINT_IN_TIME);
    rocksdb_options_set_max_background_jobs(o, RDB_BACKGROUND_JOBS);
    rocksdb_options_set_keep_log_file_num(o, 4);
    rocksdb_options_set_block_based_table_factory(o, r->table);
}

int storage__rocksdb_open(const storage_options *opts, storage_engine **out) {
    int rc = STORAGE_ERR_NOMEM;
    rdb_engine *r = base_calloc(1, sizeof(*r));
    if (r == NULL) return STORAGE_ERR_NOMEM;
    r->base.vt = &rdb_vtable;
    atomic_init(&r->failed, false);
    atomic_init(&r->fault_fail_next, false);
    atomic_init(&r->fault_stall_until_ns, 0);
    pthread_condattr_t cattr;
    if (pthread_condattr_init(&cattr) != 0) goto fail;
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&r->cmp_mu, NULL) != 0) {
        pthread_condattr_destroy(&cattr);
        goto fail;
    }
    if (pthread_cond_init(&r->cmp_cv, &cattr) != 0) {
        pthread_mutex_destroy(&r->cmp_mu);
        pthread_condattr_destroy(&cattr);
        goto fail;
    }
    pthread_condattr_destroy(&cattr);
    r->cmp_init = true;
    r->sentinel = base_malloc(RDB_SENTINEL_SIZE);
    if (r->sentinel == NULL) goto fail;
    memset(r->sentinel, 0xFF, RDB_SENTINEL_SIZE);

    r->cache = rocksdb_cache_create_lru(opts->block_cache_bytes ? opts->block_cache_bytes
                                                                : RDB_DEFAULT_CACHE_BYTES);
    r->table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(r->table, r->cache);
    /* owned by the table options from here */
    rocksdb_block_based_options_set_filter_policy(
        r->table, rocksdb_filterpolicy_create_bloom_full(RDB_BLOOM_BITS_PER_KEY));
    rocksdb_block_based_options_set_whole_key_filtering(r->table, 0);

    r->opts = rocksdb_options_create();
    common_options(r->opts, r, opts->create_if_missing);
    /* owned by r->opts from here; set on this one options object only */
    rocksdb_options_set_prefix_extractor(
        r->opts, rocksdb_slicetransform_create(NULL, prefix_destroy, prefix_transform,
                                               prefix_in_domain, prefix_in_range, prefix_name));
    r->raw_opts = rocksdb_options_create();
    common_options(r->raw_opts, r, opts->create_if_missing);

    const char *names[2] = {"default", "raw"};
    const rocksdb_options_t *cf_opts[2] = {r->opts, r->raw_opts};
    rocksdb_column_family_handle_t *handles[2] = {NULL, NULL};
    char *err = NULL;
    r->db = rocksdb_open_column_families(r->opts, opts->dir, 2, names, cf_opts, handles, &err);
    if (err != NULL) {
        rc = rdb_error("open", err);
        r->db = NULL;
        goto fail;
    }
    r->cf_mvcc = handles[0];
    r->cf_raw = handles[1];
    r->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(r->wo_sync, 1);
    r->wo_nosync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(r->wo_nosync, 0);
    r->ro_raw = rocksdb_readoptions_create();
    BASE_INFO(STORAGE__MODULE, "rocksdb store open at %s", opts->dir);
    *out = &r->base;
    return STORAGE_OK;
fail:
    rdb_close(&r->base);
    return rc;
}
