/*
** storage/storage_int.h: internals shared by the storage front (storage.c)
** and its two engines (memory.c, rocksdb.c). No other folder includes this.
**
** Layering inside storage/:
**   storage.c   argument checks, batches, and every MVCC rule (reads at a
**               timestamp, iterators, GC) written ONCE over a cursor.
**   memory.c    the in-memory twin: sorted arrays + sequence numbers.
**   rocksdb.c   RocksDB: escaped keys + inverted timestamps.
** An engine only has to provide an ordered cursor over MVCC entries and an
** atomic batch apply; both then behave identically by construction.
**
** Entry order (the one order every cursor follows):
**   user key ascending (bytewise, shorter prefix first), then timestamp
**   DESCENDING (newest version of a key first).
*/
#ifndef MERIDIAN_STORAGE_INT_H
#define MERIDIAN_STORAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

#define STORAGE__MODULE "storage"

/* ---- batches ------------------------------------------------------------- */
typedef enum storage__op_kind {
    STORAGE__OP_PUT = 1,
    STORAGE__OP_DELETE = 2,         /* tombstone version */
    STORAGE__OP_DELETE_RANGE = 3,   /* key = start, value = end */
    STORAGE__OP_PUT_RAW = 4,
    STORAGE__OP_DELETE_RAW = 5,
    STORAGE__OP_REMOVE_VERSION = 6, /* physically drop (key, ts): GC only */
} storage__op_kind;

typedef struct storage__op {
    storage__op_kind kind;
    hlc_timestamp ts;
    uint8_t *key; /* owner: the batch (one allocation with value) */
    size_t key_len;
    uint8_t *value; /* points inside the key allocation; NULL if none */
    size_t value_len;
    bool end_unbounded; /* DELETE_RANGE: end == NULL */
} storage__op;

struct storage_batch {
    storage__op *ops; /* owner: the batch */
    size_t count;
    size_t cap;
    size_t bytes; /* sum of key and value bytes, bounded by bytes_max */
    size_t ops_max, bytes_max; /* STORAGE_BATCH_*_MAX, or the LARGE ones */
};

/* ---- snapshots -------------------------------------------------------------
** One struct for both engines: memory uses seq, RocksDB uses handle. */
struct storage_snapshot {
    uint64_t seq;       /* memory: sequence number seen */
    const void *handle; /* rocksdb: const rocksdb_snapshot_t * */
};

/* ---- cursors ---------------------------------------------------------------
** One MVCC entry. Pointers stay valid until the next call on the cursor. */
typedef struct storage__entry {
    const uint8_t *key;
    size_t key_len;
    hlc_timestamp ts;
    bool tombstone;
    const uint8_t *value;
    size_t value_len;
} storage__entry;

typedef struct storage__cursor storage__cursor; /* engine-specific */

/* Bounds a cursor MAY use to save work (callers re-check them). */
typedef struct storage__bounds {
    const uint8_t *start; /* NULL: none */
    size_t start_len;
    const uint8_t *end; /* NULL: none */
    size_t end_len;
    bool point; /* only seeks to one key will follow (enables bloom) */
} storage__bounds;

/* Every cursor function returns 1 (entry in *out), 0 (no entry) or <0. */
typedef struct storage__vtable {
    void (*close)(storage_engine *e);
    int (*write)(storage_engine *e, const storage_batch *b, bool sync);
    int (*snapshot_new)(storage_engine *e, storage_snapshot **out);
    void (*snapshot_release)(storage_engine *e, storage_snapshot *s);
    /* owner of *out: caller, cursor_close. */
    int (*cursor_open)(storage_engine *e, const storage_snapshot *snap,
                       const storage__bounds *bounds, storage__cursor **out);
    /* First entry at or after (key, ts) in entry order: same key with a
    ** version <= ts, or a later key. key NULL: the first entry. */
    int (*cursor_seek_ge)(storage__cursor *c, const uint8_t *key, size_t key_len,
                          hlc_timestamp ts, storage__entry *out);
    /* First entry whose key is > key. */
    int (*cursor_seek_after_key)(storage__cursor *c, const uint8_t *key, size_t key_len,
                                 storage__entry *out);
    /* Last entry whose key is < key (key NULL: the last entry). */
    int (*cursor_seek_before_key)(storage__cursor *c, const uint8_t *key, size_t key_len,
                                  storage__entry *out);
    /* The entry after the current one (only after a call that returned 1). */
    int (*cursor_next)(storage__cursor *c, storage__entry *out);
    void (*cursor_close)(storage__cursor *c);
    int (*get_raw)(storage_engine *e, const uint8_t *key, size_t key_len, base_buf *out);
    /* First raw key in [start, end) (end NULL: none); value_out may be NULL. */
    int (*seek_raw)(storage_engine *e, const uint8_t *start, size_t start_len,
                    const uint8_t *end, size_t end_len, base_buf *key_out, base_buf *value_out);
    int (*approximate_size)(storage_engine *e, const uint8_t *start, size_t start_len,
                            const uint8_t *end, size_t end_len, uint64_t *size_bytes);
    int (*stats)(storage_engine *e, base_buf *out);
    int (*flush)(storage_engine *e);
    /* Make every write so far durable (fsync the log); NULL: nothing to do
    ** (an engine without durability). */
    int (*sync)(storage_engine *e);
    /* storage_compact_raw, arguments checked (end NULL: unbounded); NULL:
    ** nothing to compact (an engine that keeps no deleted key). */
    int (*compact_raw)(storage_engine *e, const uint8_t *start, size_t start_len,
                       const uint8_t *end, size_t end_len, bool background);
    /* storage_compact_wait; NULL: always idle. */
    bool (*compact_wait)(storage_engine *e, int64_t timeout_ms);
} storage__vtable;

/* Every engine struct starts with this. */
struct storage_engine {
    const storage__vtable *vt;
};

int storage__memory_open(const storage_options *opts, storage_engine **out);
int storage__rocksdb_open(const storage_options *opts, storage_engine **out);

/* memcmp order with the shorter key first on a common prefix. */
int storage__key_compare(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len);

/* The on-disk timestamp form is hlc_encode's (12 bytes, memcmp order ==
** timestamp order); tests/timestamp pins its exact bytes, so the format
** cannot change unnoticed. */

#endif
