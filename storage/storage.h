/*
** storage/: MVCC versioned values on disk (RocksDB) or in memory (the twin
** that tests and the simulator use). Both implement this one interface.
**
** Data model: (key, timestamp) -> value | tombstone, for MVCC data; plus a
** separate non-versioned keyspace ("raw": applied indexes, node identity,
** Raft hard state later) that never mixes with MVCC keys.
**
** Critical invariants:
**   - storage_write applies a batch atomically: after a crash, all of it or
**     none of it is visible.
**   - with sync = true, storage_write returns only after the batch is on
**     stable storage (fsync). With sync = false it survives kill -9 of the
**     process (the write-ahead log is in the OS) but not power loss.
**   - a read at timestamp t sees, for each key, the newest version with
**     timestamp <= t; a tombstone there means "no value".
**   - readers never block writers; an open snapshot sees one instant.
** Thread-safety: an engine may be used from many threads at once; a batch,
** iterator or snapshot belongs to one thread at a time.
*/
#ifndef MERIDIAN_STORAGE_H
#define MERIDIAN_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "timestamp/timestamp.h"

enum {
    STORAGE_OK = 0,
    STORAGE_NOT_FOUND = 1, /* not an error: no visible value */
    STORAGE_ERR_NOMEM = -3001,
    STORAGE_ERR_IO = -3002,      /* engine I/O error (message logged) */
    STORAGE_ERR_CORRUPT = -3003, /* bad on-disk data */
    STORAGE_ERR_INVALID = -3004, /* bad argument (empty key, too large) */
};

#define STORAGE_KEY_SIZE_MAX (64 * 1024)
#define STORAGE_VALUE_SIZE_MAX (32 * 1024 * 1024)
/* A batch holds at most this many operations and this many key+value bytes;
** past either, the batch_* call returns STORAGE_ERR_INVALID and the batch is
** unchanged. */
#define STORAGE_BATCH_OPS_MAX (1024 * 1024)
#define STORAGE_BATCH_BYTES_MAX (256 * 1024 * 1024)
/* The bounds of a large batch (storage_batch_new_large): one local commit of
** a large transaction on the single-node store (docs/decisions/011). Raft
** entries, snapshots and everything else keep the bounds above. RocksDB
** counts a batch's operations in 32 bits and holds it in one string. */
#define STORAGE_BATCH_LARGE_OPS_MAX (64 * 1024 * 1024)
#define STORAGE_BATCH_LARGE_BYTES_MAX ((size_t)2 * 1024 * 1024 * 1024)
/* Key ranges everywhere ([start, end) in delete_range, iterators, gc,
** approximate_size): start NULL or empty = from the first key; end NULL = to
** the last key (an empty non-NULL end is an empty range). */

typedef struct storage_engine storage_engine; /* opaque */
typedef struct storage_batch storage_batch;   /* opaque */
typedef struct storage_snapshot storage_snapshot;
typedef struct storage_iter storage_iter;

typedef struct storage_options {
    const char *dir;           /* NULL: in-memory twin */
    size_t block_cache_bytes;  /* 0: default (64 MiB) */
    bool create_if_missing;
} storage_options;

/* owner of *out: caller, storage_close. */
int storage_open(const storage_options *opts, storage_engine **out);
void storage_close(storage_engine *e);

/* ---- writes ---------------------------------------------------------------- */
/* owner: caller, storage_batch_free. */
storage_batch *storage_batch_new(void);
/* A batch bounded by STORAGE_BATCH_LARGE_OPS_MAX and _BYTES_MAX instead.
** owner: caller, storage_batch_free. */
storage_batch *storage_batch_new_large(void);
void storage_batch_free(storage_batch *b);
void storage_batch_clear(storage_batch *b);
size_t storage_batch_count(const storage_batch *b);
/* A version of key at ts. Bytes are copied. */
int storage_batch_put(storage_batch *b, const uint8_t *key, size_t key_len, hlc_timestamp ts,
                      const uint8_t *value, size_t value_len);
/* A tombstone version of key at ts. */
int storage_batch_delete(storage_batch *b, const uint8_t *key, size_t key_len, hlc_timestamp ts);
/* Physically drop the one version (key, ts), if there is one (no tombstone
** left): MVCC garbage collection decided by the caller (range/'s replicated
** version GC, which must drop versions in the batch of its Raft entry). */
int storage_batch_remove_version(storage_batch *b, const uint8_t *key, size_t key_len,
                                 hlc_timestamp ts);
/* Remove every version of every key in [start, end) (no MVCC history kept:
** for dropped tables after their drop committed, and for range removal). */
int storage_batch_delete_range(storage_batch *b, const uint8_t *start, size_t start_len,
                               const uint8_t *end, size_t end_len);
/* Non-versioned keyspace. */
int storage_batch_put_raw(storage_batch *b, const uint8_t *key, size_t key_len,
                          const uint8_t *value, size_t value_len);
int storage_batch_delete_raw(storage_batch *b, const uint8_t *key, size_t key_len);

/* Apply atomically; see the sync invariant above. Concurrent callers with
** sync = true share fsyncs (group commit). The batch is not consumed. */
int storage_write(storage_engine *e, storage_batch *b, bool sync);

/* ---- reads ----------------------------------------------------------------- */
/* owner: caller, storage_snapshot_release. */
int storage_snapshot_new(storage_engine *e, storage_snapshot **out);
void storage_snapshot_release(storage_engine *e, storage_snapshot *s);

/* A value read; bytes owned by the struct, released by storage_value_free.
** storage_get/get_latest overwrite *out without freeing what it held (free it
** first when reusing one); on NOT_FOUND or an error it is left empty, so
** storage_value_free is always safe after a call. */
typedef struct storage_value {
    hlc_timestamp ts; /* version timestamp */
    bool tombstone;
    base_buf bytes;
} storage_value;
void storage_value_free(storage_value *v);

/* Newest version with ts <= read_ts. Returns STORAGE_OK (value or
** tombstone: check out->tombstone), STORAGE_NOT_FOUND, or an error.
** snap may be NULL (latest state). */
int storage_get(storage_engine *e, const storage_snapshot *snap, const uint8_t *key,
                size_t key_len, hlc_timestamp read_ts, storage_value *out);

/* Newest version of key at any timestamp (for conflict checks). */
int storage_get_latest(storage_engine *e, const storage_snapshot *snap, const uint8_t *key,
                       size_t key_len, storage_value *out);

typedef enum storage_iter_mode {
    STORAGE_ITER_AT_TS = 0,        /* one entry per key: newest <= ts, tombstones skipped */
    STORAGE_ITER_ALL_VERSIONS = 1, /* every version, newest first within a key */
} storage_iter_mode;

typedef struct storage_iter_options {
    const uint8_t *start; /* inclusive; NULL = from the beginning */
    size_t start_len;
    const uint8_t *end; /* exclusive; NULL = to the end */
    size_t end_len;
    hlc_timestamp ts;   /* AT_TS: read timestamp; ALL_VERSIONS: ignored */
    storage_iter_mode mode;
    bool reverse;       /* AT_TS only: keys in descending order */
} storage_iter_options;

/* owner: caller, storage_iter_close. */
int storage_iter_open(storage_engine *e, const storage_snapshot *snap,
                      const storage_iter_options *opts, storage_iter **out);
/* Advance to the next entry: 1 = entry available, 0 = end, <0 error.
** The pointers returned stay valid until the next call or close. End and
** errors are sticky (later calls return the same). Any out-pointer may be
** NULL; for a tombstone *value is NULL and *value_len 0. */
int storage_iter_next(storage_iter *it, const uint8_t **key, size_t *key_len,
                      hlc_timestamp *ts, const uint8_t **value, size_t *value_len,
                      bool *tombstone);
void storage_iter_close(storage_iter *it);

/* Raw keyspace reads. */
int storage_get_raw(storage_engine *e, const uint8_t *key, size_t key_len, base_buf *out);
/* The first raw key k with start <= k < end (end NULL: no upper bound; the
** latest state), into key_out and value_out (each reset first; value_out
** may be NULL). STORAGE_OK, STORAGE_NOT_FOUND or an error. One seek: for
** range-local raw spans (range/: intents and transaction records). */
int storage_seek_raw(storage_engine *e, const uint8_t *start, size_t start_len,
                     const uint8_t *end, size_t end_len, base_buf *key_out, base_buf *value_out);

/* ---- garbage collection ---------------------------------------------------
** Drop, in [start, end), every version older than the newest version <= gc_ts
** (that one stays so reads at any ts >= gc_ts are unchanged), and a tombstone
** that is the newest version <= gc_ts together with everything under it.
** *versions_removed counts what went (may be NULL). */
int storage_gc(storage_engine *e, const uint8_t *start, size_t start_len, const uint8_t *end,
               size_t end_len, hlc_timestamp gc_ts, uint64_t *versions_removed);

/* Approximate bytes of data in [start, end) (for split decisions and SHOW
** RANGES): every version counts. RocksDB: the table files' estimate
** (compressed) plus the memtables' entries, so data written a moment ago
** counts; memory: the live versions' key + timestamp + value bytes. */
int storage_approximate_size(storage_engine *e, const uint8_t *start, size_t start_len,
                             const uint8_t *end, size_t end_len, uint64_t *size_bytes);

/* The user key near the middle of [start, end) by bytes (for size-based
** splits). Bytes are every version's key + timestamp + value (tombstones:
** key + timestamp), counted by scanning: a first pass counts the span up
** to scan_bytes_max (0: no bound), a second walks to half of that count.
** The key chosen is the start of a user key (all versions of a key stay on
** one side) whose bytes before it are closest to half; never the span's
** first key, so it lies strictly after start and is never a cut through
** one key's history. STORAGE_OK with the key in key_out (reset first),
** STORAGE_NOT_FOUND when the span has fewer than two keys. *info (may be
** NULL) gets what was seen. */
typedef struct storage_middle_info {
    uint64_t total_bytes;  /* bytes counted by the first pass */
    uint64_t left_bytes;   /* of which before the key chosen */
    uint64_t keys;         /* user keys counted by the first pass */
    bool truncated;        /* the first pass stopped at scan_bytes_max */
} storage_middle_info;
int storage_middle_key(storage_engine *e, const uint8_t *start, size_t start_len,
                       const uint8_t *end, size_t end_len, uint64_t scan_bytes_max,
                       base_buf *key_out, storage_middle_info *info /* OUT, may be NULL */);

/* ---- diagnostics (added by storage) -----------------------------------------
** Engine statistics as text, appended to *out (owner: the caller's buffer).
** RocksDB: the "rocksdb.stats" property (compaction, stalls, and the
** "Cumulative WAL: N writes, M syncs" line that shows group commit);
** memory: version and key counts. */
int storage_stats(storage_engine *e, base_buf *out);

/* Write memtables to table files and wait (RocksDB; a no-op in memory).
** Durability never needs it (the WAL covers that); for tests, tools and
** before measuring approximate sizes. */
int storage_flush(storage_engine *e);

/* Every write applied so far (sync or not) on stable storage: the log
** synced, as a sync = true write does (RocksDB; a no-op in memory). A merge
** makes sure its frozen right-hand range's applied state survives a crash
** (docs/range.md, "Merges"). */
int storage_sync(storage_engine *e);

/* ---- compaction of the raw keyspace -----------------------------------------
** RocksDB keeps a deleted raw key as a tombstone until a compaction reaches
** it, and every seek over it skips it until then (range/'s resolved intents:
** docs/txn.md 3.3). This compacts raw [start, end) so they go; what reads
** see is unchanged. background false: now, on the caller's thread, returning
** when done. background true: returns at once; one engine worker (started
** on the first such call, joined by storage_close) compacts later. At most
** one compaction is pending (a new request widens it to cover both) and one
** runs, and one starts at most every STORAGE_COMPACT_INTERVAL_MS, so what
** callers ask never piles up; a request still pending at close is dropped.
** The in-memory twin keeps no deleted key: a no-op there. STORAGE_OK,
** STORAGE_ERR_INVALID, STORAGE_ERR_NOMEM, STORAGE_ERR_IO (now only; the
** worker logs its errors). */
#define STORAGE_COMPACT_INTERVAL_MS 1000
int storage_compact_raw(storage_engine *e, const uint8_t *start, size_t start_len,
                        const uint8_t *end, size_t end_len, bool background);
/* Wait, at most timeout_ms, until no background compaction is pending or
** running: true when none is (tests and benchmarks; the twin: true). */
bool storage_compact_wait(storage_engine *e, int64_t timeout_ms);

/* ---- a failed fsync (RocksDB; docs/chaos.md "disk") -------------------------
** A write (synced or not: RocksDB refuses every write after a failed
** background flush or compaction sync) or a storage_sync that RocksDB
** reports failed FAILS the store: from then on every write and sync returns STORAGE_ERR_IO
** (never retried: after a failed fsync the kernel may have dropped the dirty
** pages and marked them clean, so a retry could "succeed" over lost data),
** and on_failure, when set, runs once, on the failing thread (a node exits
** there: server/). Set it right after storage_open, before any write. The
** in-memory twin never fails: it ignores on_failure. */
void storage_set_on_failure(storage_engine *e, void (*on_failure)(void *ctx, const char *what),
                            void *ctx);

/* Test-only fault injection (the chaos harness's `disk` nemesis; server/
** allows it only with --enable-test-faults). Replaces the injected fault:
** fail_next makes the next synced write or storage_sync fail as if its
** fsync had failed (the batch is written without sync first, as a real
** failure leaves it in the OS, then the store fails as above); stall_ms > 0
** makes every synced write or sync that starts in the next stall_ms wait
** until then first (a disk that stopped answering). fail_next false and
** stall_ms 0 clear it. 0; STORAGE_ERR_INVALID for the in-memory twin or a
** stall_ms outside [0, STORAGE_FAULT_STALL_MS_MAX]. */
#define STORAGE_FAULT_STALL_MS_MAX 600000
int storage_inject_fault(storage_engine *e, bool fail_next, int64_t stall_ms);
/* The injected fault now (all false/0 for the in-memory twin): a failure
** armed and not consumed yet, the stall's ms left, and whether the store
** failed (a real or injected failed sync). */
void storage_fault_state(storage_engine *e, bool *fail_armed /* OUT */,
                         int64_t *stall_left_ms /* OUT */, bool *failed /* OUT */);

#endif
