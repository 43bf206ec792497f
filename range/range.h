/*
** range/: the replica side of the key space. A range evaluates the requests
** of transaction coordinators (txn/): MVCC reads at a timestamp, conflict
** checks, and applying a commit's writes at one commit timestamp.
**
** Today there is ONE local replica (a range_store) covering the whole key
** space of this node. Later a router splits a coordinator's request by key
** span across many ranges, each a Raft group; the request types below are
** already per-span so that split needs no change in txn/.
**
** Concurrency control (see docs/decisions/004-local-transactions.md):
** optimistic, backward validation. range_commit, under the store's commit
** mutex, checks the request's writes and read spans against every version
** committed after the request's read timestamp (in storage, or validated but
** not yet applied: the "pending" commits), assigns the commit timestamp from
** the HLC and registers the commit as pending; the storage write (and its
** fsync, group-committed by the engine) happens outside the mutex.
**
** Critical invariants:
**   - every commit timestamp is taken from the store's HLC under the commit
**     mutex, after the request's read timestamp was taken from the same HLC,
**     so commit_ts > read_ts and every version in storage is < any later
**     commit_ts.
**   - a commit is registered as pending in the same critical section that
**     assigns its timestamp; it leaves the pending set only after its batch
**     is in storage (or failed). range_wait_visible(read_ts) returns only
**     when no pending commit has ts <= read_ts, so a snapshot at read_ts
**     never changes after that call (repeatable reads, no lost writes).
**   - range_commit never blocks on another commit's I/O while holding the
**     commit mutex.
** Thread-safety: a range_store is shared by all threads; an iterator
** belongs to one thread at a time.
*/
#ifndef MERIDIAN_RANGE_H
#define MERIDIAN_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "storage/storage.h"
#include "timestamp/timestamp.h"

enum {
    RANGE_OK = 0,
    RANGE_NOT_FOUND = 1, /* range_get: no visible value (not an error) */
    RANGE_ERR_NOMEM = -5001,
    RANGE_ERR_IO = -5002,          /* storage failed */
    RANGE_ERR_CONFLICT = -5003,    /* range_commit: serialization conflict, see range_conflict */
    RANGE_ERR_INVALID = -5004,     /* bad request (unsorted writes, empty key, ...) */
    RANGE_ERR_UNAVAILABLE = -5005, /* a bounded wait ran out */
    RANGE_ERR_TOO_LARGE = -5006,   /* the commit would exceed RANGE_COMMIT_OPS_MAX */
};

/* Bounds. */
#define RANGE_PENDING_MAX 1024 /* commits validated but not yet applied */
#define RANGE_WAIT_VISIBLE_MAX_MS 30000 /* range_wait_visible gives up after this */
/* Writes + tombstones generated from delete spans in one commit: one storage
** batch (a little under STORAGE_BATCH_OPS_MAX, leaving room for bookkeeping). */
#define RANGE_COMMIT_OPS_MAX (STORAGE_BATCH_OPS_MAX - 16)

typedef struct range_store range_store; /* opaque */

/* owner of *out: caller, range_store_close (after every call returned).
** engine and clock are borrowed and must outlive the store. sync: pass
** sync = true to storage_write for every commit. */
int range_store_open(storage_engine *engine, hlc_clock *clock, bool sync, range_store **out);
void range_store_close(range_store *s);

/* Wait (bounded by RANGE_WAIT_VISIBLE_MAX_MS) until every commit with a
** timestamp <= read_ts is in storage. Call once with a read timestamp before
** reading at it (a coordinator does it at begin). RANGE_OK or
** RANGE_ERR_UNAVAILABLE. */
int range_wait_visible(range_store *s, hlc_timestamp read_ts);

/* ---- reads ------------------------------------------------------------------
** Reads at read_ts see, per key, the newest committed version <= read_ts.
** The caller must have called range_wait_visible(read_ts) first. */

/* RANGE_OK with the value appended to out after a reset (owner: caller's
** buffer), RANGE_NOT_FOUND (absent or deleted), or an error. */
int range_get(range_store *s, const uint8_t *key, size_t key_len, hlc_timestamp read_ts,
              base_buf *out);

/* Live rows of [start, end) at read_ts (tombstones skipped), ascending or
** descending. end NULL/0 = to the end of the key space.
** owner of *out: caller, range_iter_close. */
typedef struct range_iter range_iter;
int range_iter_open(range_store *s, const uint8_t *start, size_t start_len, const uint8_t *end,
                    size_t end_len, hlc_timestamp read_ts, bool reverse, range_iter **out);
/* 1 = row, 0 = end, <0 error. Pointers valid until the next call or close. */
int range_iter_next(range_iter *it, const uint8_t **key, size_t *key_len,
                    const uint8_t **value, size_t *value_len);
void range_iter_close(range_iter *it);

/* ---- commit ---------------------------------------------------------------- */

/* A key span. point: just the key `start` (end ignored); else [start, end),
** start empty = from the beginning,
** end NULL/0 = to the end of the key space. Bytes borrowed. */
typedef struct range_span {
    const uint8_t *start;
    size_t start_len;
    const uint8_t *end;
    size_t end_len;
    bool point;
} range_span;

/* One write of a commit: a value, or a tombstone. Bytes borrowed. */
typedef struct range_write {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    bool tombstone;
} range_write;

/* Everything a commit needs. All memory borrowed for the duration of
** range_commit. writes: sorted by key (memcmp, shorter first on a tie),
** no duplicates. delete_spans: every key visible in the span at commit time
** (and not in writes) gets a tombstone; the spans count as written for
** conflicts. read_spans: what the transaction read (point reads and scans);
** any version written in them after read_ts is a conflict. */
typedef struct range_commit_request {
    uint64_t txn_id;
    hlc_timestamp read_ts;
    const range_write *writes;
    size_t write_count;
    const range_span *delete_spans;
    size_t delete_span_count;
    const range_span *read_spans;
    size_t read_span_count;
} range_commit_request;

typedef enum range_conflict_kind {
    RANGE_CONFLICT_NONE = 0,
    RANGE_CONFLICT_WRITE_WRITE = 1, /* a key we write was written after read_ts */
    RANGE_CONFLICT_READ_WRITE = 2,  /* a key we read was written after read_ts */
    RANGE_CONFLICT_PHANTOM = 3,     /* a key appeared in a span we scanned */
} range_conflict_kind;

/* Why a commit failed: kind, the key (copied), and the timestamp of the
** conflicting version (or of the pending commit). owner: the caller's
** struct; release with range_conflict_free. Zero-initialize before use. */
typedef struct range_conflict {
    range_conflict_kind kind;
    base_buf key;
    hlc_timestamp conflict_ts;
    bool pending; /* the other commit was validated but not yet applied */
} range_conflict;
void range_conflict_free(range_conflict *c);

/* Validate and apply. RANGE_OK with *commit_ts set (the writes are durable
** per the store's sync flag and visible at commit_ts); RANGE_ERR_CONFLICT
** with *conflict filled (nothing written); or an error (nothing written).
** A request with no writes and no delete spans commits at read_ts without
** validation. */
int range_commit(range_store *s, const range_commit_request *req, hlc_timestamp *commit_ts,
                 range_conflict *conflict);

/* Counters for tests and metrics. */
typedef struct range_stats {
    uint64_t commits;
    uint64_t conflicts;
    uint64_t visible_waits; /* range_wait_visible calls that had to wait */
} range_stats;
void range_store_stats(range_store *s, range_stats *out);

#endif
