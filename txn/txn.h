/*
** txn/: the transaction coordinator, and the only door sql/ uses to the key
** space. Today it runs against one local store; the distributed version
** (Raft ranges, two-phase commit) replaces the inside, not this interface.
**
** Semantics: SERIALIZABLE. A transaction reads the snapshot at its read
** timestamp (taken from the HLC at txn_begin) plus its own writes; its writes
** are buffered and made visible atomically at one commit timestamp. A
** conflict that would break serializability makes txn_commit (or an earlier
** call) fail with TXN_ERR_RETRY and SQLSTATE 40001, with a message naming the
** key and the reason.
**
** In a cluster (txn_db_options.kv a range_router) two more outcomes exist:
** TXN_ERR_UNAVAILABLE (57P03: no replica of a range answered in time; a
** transaction that was being committed is rolled back) and
** TXN_ERR_AMBIGUOUS (40003: the commit's fate is unknown); their messages
** name the range(s). A transaction whose writes lie in several ranges
** commits by two-phase commit (docs/txn.md): its intents are resolved after
** txn_commit returns, by a background thread of the txn_db; a conflict with
** another transaction there is 40001 naming the key, the other transaction
** or the reason.
**
** With statement-time locks (txn_set_locking) a conflicting writer waits
** for the lock holder instead of failing at commit (docs/txn.md section 5).
**
** Thread-safety: a txn_db is shared by all sessions; one txn belongs to one
** thread at a time.
*/
#ifndef MERIDIAN_TXN_H
#define MERIDIAN_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "storage/storage.h"
#include "timestamp/timestamp.h"

enum {
    TXN_OK = 0,
    TXN_NOT_FOUND = 1,         /* txn_get: no visible value (not an error) */
    TXN_ERR_NOMEM = -4001,
    TXN_ERR_IO = -4002,        /* storage failed; the txn is aborted */
    TXN_ERR_RETRY = -4003,     /* serialization failure (40001); aborted */
    TXN_ERR_READ_ONLY = -4004, /* write in a read-only txn (25006) */
    TXN_ERR_DONE = -4005,      /* use after commit/rollback/abort (25P01-ish) */
    TXN_ERR_INVALID = -4006,   /* bad argument: empty/oversized key or value */
    TXN_ERR_UNAVAILABLE = -4007, /* cannot serve now (clock bound lost, ...) */
    TXN_ERR_LIMIT = -4008,     /* a per-txn limit was hit (54000); the txn stays usable
                                  (except from txn_commit, which always frees it) */
    TXN_ERR_AMBIGUOUS = -4009, /* txn_commit: the outcome is unknown, the commit may or
                                  may not have applied (40003) */
    TXN_ERR_UNSUPPORTED = -4010, /* needs what this key space lacks: txn_db_split_at
                                    on a single node; txn_commit over several ranges
                                    of a range_kv without prepare (0A000) */
    TXN_ERR_FUTURE = -4011,    /* txn_begin: an as_of timestamp above the clock's
                                  now (22008) */
    TXN_ERR_GC_THRESHOLD = -4012, /* a read (or a commit's validation) at a timestamp
                                     at or below a range's MVCC GC threshold: versions
                                     that old were collected (72000, snapshot too old;
                                     docs/txn.md 6.1, "Version GC"); aborted */
};

/* Per-transaction limits (hitting one returns TXN_ERR_LIMIT, SQLSTATE 54000,
** and leaves the transaction as it was before the call). Key and value sizes
** are storage's (STORAGE_KEY_SIZE_MAX, STORAGE_VALUE_SIZE_MAX): beyond them
** TXN_ERR_INVALID with SQLSTATE 54000. */
/* Buffered keys + values + TXN__NODE_OVERHEAD_BYTES (48) per row: 256 MiB
** holds `pgbench -i -s 10`'s COPY (1,000,110 rows, about 100 MB) with room
** to scale 25; the gateway's memory is about 4x the buffer at commit
** (docs/decisions/011-large-transactions.md). */
#define TXN_WRITE_SET_BYTES_MAX (256u * 1024 * 1024)
/* Read set: past either bound reads still work, but a txn that also writes
** fails at txn_commit with TXN_ERR_LIMIT (54000): it cannot be validated.
** Read-only txns record no reads. */
#define TXN_READ_SPANS_MAX (1u << 20)               /* recorded point reads + scans */
#define TXN_READ_SET_BYTES_MAX (64u * 1024 * 1024)  /* key bytes of the read spans */
#define TXN_DELETE_SPANS_MAX 1024u                  /* txn_delete_range calls */
#define TXN_SAVEPOINTS_MAX 65536u                   /* nested savepoints alive */

/* Error details for the user: a PostgreSQL SQLSTATE and a message. */
typedef struct txn_error {
    char sqlstate[6]; /* "40001", NUL-terminated */
    char message[512];
} txn_error;

typedef struct txn_db txn_db; /* opaque */
typedef struct txn txn;       /* opaque */

/* Forward declaration (range/range.h): the coordinator's door to the key
** space, either a local store's view or a cluster router. */
typedef struct range_kv range_kv;

typedef struct txn_db_options {
    storage_engine *engine; /* borrowed: must outlive the txn_db. Unused when kv is set */
    hlc_clock *clock;       /* borrowed: must outlive the txn_db */
    range_kv *kv;           /* borrowed, may be NULL: the key space to use (a
                               range_router's view in a cluster); must outlive
                               the txn_db. NULL: open a local range_store over
                               engine (single node) */
    bool sync_commits;      /* fsync each commit (group-committed). Set it to true
                               for durability: a zero-initialized struct gives
                               false (acknowledged commits then survive kill -9
                               of the process, not an OS crash or power loss).
                               `meridian start` sets true. */
    /* Cluster nodes: while the clock's epsilon is UNBOUNDED, txn_begin fails
    ** with TXN_ERR_UNAVAILABLE (57P03): a node that cannot bound its clock
    ** against the others must not order transactions (docs/clocks.md,
    ** section 5); a commit wait then waits out max_offset. false (a single
    ** node, "alone"; tests): never refuse, and an UNBOUNDED clock -- one
    ** nobody configured -- skips the commit wait. */
    bool require_clock_bound;
} txn_db_options;

/* owner of *out: caller, txn_db_close (after every txn is finished; before
** the kv it was given is freed: close stops the resolver thread, after the
** resolution in flight, and leaves what is queued to readers). */
int txn_db_open(const txn_db_options *opts, txn_db **out);
void txn_db_close(txn_db *db);

typedef struct txn_options {
    bool read_only;
    /* AS OF SYSTEM TIME (docs/txn.md section 8): HLC_ZERO, or the past
    ** timestamp to read at. Implies read_only: no locks, no refresh, no
    ** commit wait, nothing sent at commit; writes fail TXN_ERR_READ_ONLY
    ** (25006). Its reads are stale reads (range_kv get_stale/iter_open_stale
    ** when the key space has them): any replica whose closed timestamp
    ** covers it may serve them, and they record nothing that could delay a
    ** writer. Above the clock's now: txn_begin fails TXN_ERR_FUTURE. */
    hlc_timestamp as_of;
} txn_options;

/* owner of *out: caller; ends with txn_commit or txn_rollback, which free it.
** opts may be NULL. */
int txn_begin(txn_db *db, const txn_options *opts, txn **out);
/* The clock's now (hlc_now of the db's clock): what relative AS OF SYSTEM
** TIME expressions count from. */
hlc_timestamp txn_db_now(txn_db *db);
/* The txn reads at a fixed past timestamp (txn_options.as_of). */
bool txn_is_stale(const txn *t);
hlc_timestamp txn_read_timestamp(const txn *t);
uint64_t txn_id(const txn *t);

/* Read one key: TXN_OK with the value in *out (bytes appended after reset;
** owner: caller's buffer), or TXN_NOT_FOUND. */
int txn_get(txn *t, const uint8_t *key, size_t key_len, base_buf *out, txn_error *err);

/* Buffer a write; visible to this txn's later reads at once. */
int txn_put(txn *t, const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len,
            txn_error *err);
int txn_delete(txn *t, const uint8_t *key, size_t key_len, txn_error *err);
/* Delete every key in [start, end) as one logical write (DROP TABLE). */
int txn_delete_range(txn *t, const uint8_t *start, size_t start_len, const uint8_t *end,
                     size_t end_len, txn_error *err);

/* Scan [start, end) at the read timestamp merged with this txn's own
** writes, in key order (or reverse). The scanned span is recorded for
** conflict detection: only the part actually returned (from start up to the
** last row returned, or all of [start, end) once txn_iter_next returned 0),
** so stopping early (LIMIT) does not over-claim. start empty = from the
** beginning, end NULL/empty = to the end of the key space. The txn's own
** writes made between txn_iter_next calls show up if they lie beyond the
** last row returned. An iterator still open at txn_commit/txn_rollback is
** detached: its span counts as read so far, later txn_iter_next calls return
** TXN_ERR_DONE, and it must still be closed with txn_iter_close. */
typedef struct txn_iter txn_iter; /* owner: caller, txn_iter_close */
int txn_scan(txn *t, const uint8_t *start, size_t start_len, const uint8_t *end,
             size_t end_len, bool reverse, txn_iter **out, txn_error *err);
/* 1 = row, 0 = end, <0 error. Pointers valid until the next call/close. */
int txn_iter_next(txn_iter *it, const uint8_t **key, size_t *key_len, const uint8_t **value,
                  size_t *value_len, txn_error *err);
void txn_iter_close(txn_iter *it);

/* ---- statement-time locks (docs/txn.md section 5) --------------------------
** In locking mode (UPDATE, DELETE, SELECT ... FOR UPDATE / FOR SHARE: sql/
** turns it on for their reads) txn_get and txn_scan take an exclusive lock
** on every key they return before reading it, at the key's leaseholder,
** waiting (bounded by the key space's deadline) while another transaction
** holds it. A point read locks the key, then reads; a scan reads a batch of
** rows ahead, locks their keys, and returns them. When a lock finds a
** committed version newer than the read timestamp, the transaction
** REFRESHES: every read it made so far is validated on (read_ts, new_ts]
** and, if nothing changed, its read timestamp moves to new_ts, so this and
** every later read sees the newest values (open scans continue at new_ts
** after their last row); if something changed, 40001 naming the key.
** A lock-holding transaction gets a cluster-unique id, and a record at its
** first locked key that the txn_db's heartbeat thread creates after
** RANGE_TXN_HEARTBEAT_MS and refreshes while it lives (others push it;
** a deadlock or an expired record aborts it: 40001 naming the cycle).
** txn_commit and txn_rollback release its locks (the key space's resolve,
** through the background resolver); the commit releases the written keys'
** locks itself. A transaction that never locks pays nothing extra.
** The mode is ignored by a read-only txn and by a key space without locks
** (a local store: optimistic validation alone). An open iterator keeps the
** mode it was opened with. */
void txn_set_locking(txn *t, bool on);
bool txn_is_locking(const txn *t);
/* Keys one transaction locks at most (and their bytes); past either bound
** it stops locking (its reads still work; commit validation decides). */
#define TXN_LOCKED_KEYS_MAX (1u << 20)
#define TXN_LOCKED_BYTES_MAX (64u * 1024 * 1024)

/* Savepoints for statement atomicity and user SAVEPOINT: a savepoint marks
** the write buffer; rolling back to it undoes later writes. Ids nest.
** txn_rollback_to(id) keeps savepoint id (like SQL ROLLBACK TO) and drops
** the ones created after it; txn_release(id) drops id and every later one.
** Unknown id: TXN_ERR_INVALID. Reads are not undone: what was read stays in
** the read set (it was observed). */
int txn_savepoint(txn *t, uint32_t *id);
int txn_rollback_to(txn *t, uint32_t id);
int txn_release(txn *t, uint32_t id);

/* Commit: validate, assign the commit timestamp, make writes durable and
** visible. Frees t in every case. On TXN_ERR_RETRY err says why (40001). */
int txn_commit(txn *t, hlc_timestamp *commit_ts /* OUT, may be NULL */, txn_error *err);

/* COMMIT WAIT. A read-write txn_commit returns success only once the
** commit timestamp is in the past on every live node's clock: it waits
** until physical_now - epsilon > commit_ts (hlc_commit_wait_ns; epsilon is
** max_offset while UNBOUNDED, see require_clock_bound), at most
** TXN_COMMIT_WAIT_MAX_OFFSETS times
** max_offset (a timestamp further ahead means a clock beyond its bound
** pushed the HLC: counted as capped). docs/clocks.md, section 5. */
#define TXN_COMMIT_WAIT_MAX_OFFSETS 2
typedef struct txn_commit_info {
    hlc_timestamp commit_ts; /* read_ts for a commit that wrote nothing */
    bool wrote;              /* read-write: the only kind that waits */
    int64_t wait_ns;         /* time spent in commit wait */
    int64_t epsilon_ns;      /* the bound waited out (at the start of the wait) */
    bool epsilon_unbounded;  /* epsilon was UNBOUNDED: max_offset was used */
    bool wait_capped;        /* stopped at the cap, not at the condition */
} txn_commit_info;
/* txn_commit that also reports its commit wait. info may be NULL; filled on
** success (zeroed otherwise). Frees t in every case. */
int txn_commit_with_info(txn *t, txn_commit_info *info /* OUT */, txn_error *err);
/* Discard. Frees t. */
void txn_rollback(txn *t);

/* Counters since txn_db_open (for tests and metrics). */
typedef struct txn_db_stats {
    uint64_t commits;       /* read-write commits applied */
    /* Commit wait at the coordinator (docs/clocks.md, section 5). */
    uint64_t commit_waits;          /* read-write commits acknowledged here */
    uint64_t commit_wait_ns_total;  /* time they spent in commit wait */
    uint64_t commit_wait_ns_max;
    uint64_t commit_waits_capped;   /* cut at TXN_COMMIT_WAIT_MAX_OFFSETS (a clock
                                       beyond its bound pushed the timestamp) */
    int64_t commit_epsilon_ns_last; /* epsilon the last commit waited out */
    uint64_t clock_refusals;        /* txn_begin refused: epsilon unbounded */
    uint64_t conflicts;     /* commits refused with 40001 */
    uint64_t visible_waits; /* txn_begin calls that waited for a pending commit */
    /* two-phase commit (cluster) */
    uint64_t distributed_commits; /* commits over several ranges (END_TXN applied) */
    uint64_t resolves;            /* RESOLVE calls that went through */
    uint64_t resolve_retries;     /* RESOLVE calls retried by the resolver */
    uint64_t resolves_abandoned;  /* resolutions given up: left to readers (who
                                     push and resolve the intents they meet) */
    /* statement-time locks (docs/txn.md section 5) */
    uint64_t lock_calls;        /* lock requests to the key space */
    uint64_t keys_locked;       /* keys they locked */
    uint64_t refreshes;         /* read timestamps moved by a refresh */
    uint64_t refresh_failures;  /* refreshes that found a change: 40001 */
    uint64_t heartbeats;        /* record heartbeats sent */
    uint64_t heartbeat_aborts;  /* heartbeats that found the record ABORTED */
    uint64_t uncertainty_restarts; /* reads that met a version in their clock
                                      uncertainty window and moved above it
                                      (docs/txn.md section 4) */
    /* stale reads (AS OF SYSTEM TIME, docs/txn.md section 8) */
    uint64_t stale_txns;            /* transactions begun with as_of */
    uint64_t stale_reads;           /* their GETs and scan pages sent (cluster) */
    uint64_t stale_reads_local;     /* of which answered by this node's replica */
    uint64_t stale_reads_fallback;  /* refused there: sent to the leaseholder */
    uint64_t follower_reads_served; /* reads this node served as a follower */
} txn_db_stats;
void txn_db_get_stats(txn_db *db, txn_db_stats *out);
/* The bound of the db's clock now (hlc_epsilon_explain; metrics,
** meridian_internal.node_metrics). Thread-safe. */
void txn_db_clock_explain(txn_db *db, hlc_epsilon_report *out /* OUT */);

/* Wait, at most timeout_ms, until the background resolver has nothing
** queued or in flight (tests; a txn_db over a key space without two-phase
** commit has none). TXN_OK, or TXN_ERR_UNAVAILABLE when time ran out. */
int txn_db_wait_resolved(txn_db *db, int64_t timeout_ms);

/* Fill err from a return code (sqlstate + generic message) if err is not
** already set. */
void txn_error_set(txn_error *err, int rc);

/* ---- range splits (cluster) -------------------------------------------------
** The key space is cut into ranges only in a cluster (txn_db_options.kv a
** range_router); a local store is one piece. docs/range.md, "Splits and
** addressing". */

/* Whether the key space is cut into ranges (splits are possible). */
bool txn_db_has_ranges(txn_db *db);

typedef struct txn_split_result {
    uint64_t left_range_id;  /* 0 when not known (a boundary already, whose left-
                                hand range the answering node does not host) */
    uint64_t right_range_id; /* the range that starts at the key */
    bool created;            /* false: the key was a range boundary already */
} txn_split_result;

/* Make key the start of a range: allocate the new range's id from the
** replicated counter (a transaction on the system key counter/range-id),
** then split the range holding key there as the commit trigger of a
** transaction that writes both new descriptors into meta
** (docs/decisions/010-atomic-meta.md): meta changes exactly when the
** split applies. A key space without range_kv describe/admin_split_txn,
** or a key that is a boundary already, takes the plain path: admin_split,
** then meta in a best-effort transaction (server/ repairs stale entries).
** Not undone. A key that is a boundary already: TXN_OK, created false.
** TXN_ERR_UNSUPPORTED (0A000) without ranges; TXN_ERR_RETRY (40001: the
** range kept changing under the split), TXN_ERR_UNAVAILABLE,
** TXN_ERR_AMBIGUOUS (the split may or may not have happened: retrying is
** safe), TXN_ERR_INVALID, TXN_ERR_NOMEM, with err set. */
int txn_db_split_at(txn_db *db, const uint8_t *key, size_t key_len, txn_split_result *out,
                    txn_error *err);

typedef struct txn_merge_result {
    uint64_t left_range_id;  /* the range that ended at the key (it grows) */
    uint64_t right_range_id; /* the range that started at the key (it is gone) */
    bool merged;             /* false: the key was not a range boundary */
} txn_merge_result;

/* Merge the range starting at key into the one ending there (range_kv
** admin_merge: freeze the right-hand range, wait until every replica of it
** applied the freeze, have the left-hand range subsume it; docs/range.md,
** "Merges") as the commit trigger of a transaction writing meta (the new
** left's entry, the old one deleted: docs/decisions/010-atomic-meta.md), so
** meta is current when it returns; TXN_ERR_RETRY (40001) when it raced
** with other changes of the ranges 4 times. A key that is not a range boundary:
** TXN_OK, merged false. Both ranges must have the same voters and no
** learners, else TXN_ERR_INVALID ("replicas not co-located"). Not undone;
** a failed merge leaves both ranges serving. TXN_ERR_UNSUPPORTED (0A000)
** without ranges; TXN_ERR_UNAVAILABLE, TXN_ERR_AMBIGUOUS (the merge may or
** may not have happened: retrying is safe), TXN_ERR_RETRY (the ranges were
** busy: retry later), TXN_ERR_INVALID, TXN_ERR_NOMEM, with err set. */
int txn_db_merge_at(txn_db *db, const uint8_t *key, size_t key_len, txn_merge_result *out,
                    txn_error *err);

/* Move a range's replicas (range_router_change_replicas' change: node add
** becomes a voter, then node remove leaves; either may be 0, not both, not
** equal) one Raft configuration change at a time -- add learner, promote,
** remove -- each the commit trigger of a transaction writing meta(range)
** at the descriptor the step produces (docs/decisions/010-atomic-meta.md,
** item 8), so meta equals the replicas' descriptor after every step. Each
** step DESCRIBEs the range at range->start_key (it must still be
** range->range_id there), prepares its transaction and asks the
** leaseholder (range_kv_ops.change_replicas_txn); a race (the range moved,
** a pusher) starts the step over, at most 4 times (then TXN_ERR_RETRY,
** 40001). TXN_OK with the final descriptor in *out (may be NULL; owner:
** caller, range_descriptor_free). TXN_ERR_UNSUPPORTED (0A000) without
** ranges; TXN_ERR_INVALID (bad arguments, the range no longer starts
** there, the last voter, a move whose remove would leave fewer voters
** than range->replicas because add was a voter already -- a stale
** descriptor --, 55000/22023); TXN_ERR_UNAVAILABLE (not done by
** the leaseholder's deadline, e.g. a learner still catching up: calling
** again goes on from where the range is), TXN_ERR_AMBIGUOUS, TXN_ERR_NOMEM,
** with err set. */
struct range_descriptor;
int txn_db_change_replicas(txn_db *db, const struct range_descriptor *range, uint64_t add,
                           uint64_t remove, struct range_descriptor *out, txn_error *err);

/* ---- the range event log (txn_admin.c; docs/operations.md "Range events") --
** Splits, lease transfers and replica changes, made by hand (SQL) or by the
** replicate queue, are recorded best effort in system keys of range 1
** (docs/cluster.md "System keys"):
**   TXN_RANGE_EVENT_PREFIX | u64 wall_ns | u64 writer txn id | u32 index
**     -> txn_range_event_encode (big-endian: a scan returns the oldest first)
** SQL reads them as meridian_internal.range_events. A write is a
** transaction of its own, never part of the operation it records: whoever
** calls it logs a failure and goes on. */
#define TXN_RANGE_EVENT_PREFIX "\0\0\0\0\0\0\0\0srangelog/"
#define TXN_RANGE_EVENT_PREFIX_LEN 18
#define TXN_RANGE_EVENT_REASON_MAX 256   /* bytes of a reason, NUL included */
#define TXN_RANGE_EVENT_REPLICAS_MAX 16  /* = RANGE_REPLICAS_MAX */
#define TXN_RANGE_EVENTS_BATCH_MAX 64    /* events one txn_db_log_range_events writes */

typedef enum txn_range_event_kind {
    TXN_RANGE_EVENT_SPLIT = 1,          /* range_id split; other_range_id is the new right side */
    TXN_RANGE_EVENT_LEASE_TRANSFER = 2, /* node_id is the new leaseholder */
    TXN_RANGE_EVENT_ADD_REPLICA = 3,    /* node_id became a voter */
    TXN_RANGE_EVENT_REMOVE_REPLICA = 4, /* node_id's replica (voter or learner) left */
    TXN_RANGE_EVENT_MERGE = 5,          /* range_id subsumed other_range_id (right side) */
} txn_range_event_kind;

typedef struct txn_range_event {
    int64_t wall_ns;         /* when, ns since the Unix epoch; 0: the writer's read timestamp */
    uint64_t range_id;
    uint8_t kind;            /* txn_range_event_kind */
    uint64_t other_range_id; /* SPLIT: the right-hand range; else 0 */
    uint64_t node_id;        /* the node the event is about; 0: none */
    uint64_t recorded_by;    /* the node that recorded it; 0: unknown */
    uint64_t replicas[TXN_RANGE_EVENT_REPLICAS_MAX]; /* voters after the event */
    size_t n_replicas;       /* 0: not known */
    char reason[TXN_RANGE_EVENT_REASON_MAX]; /* NUL-terminated: "manual relocate" */
} txn_range_event;

/* "split", "lease_transfer", "add_replica", "remove_replica", "merge"; "unknown". */
const char *txn_range_event_kind_name(int kind);
/* Value codec: u8 version | u64 wall_ns | u64 range_id | u8 kind |
** u64 other_range_id | u64 node_id | u64 recorded_by | u8 n | n x u64 |
** u16 reason length | reason. Encode appends (TXN_OK, TXN_ERR_INVALID for
** a bad kind or count, TXN_ERR_NOMEM); decode refuses truncation, trailing
** bytes, an unknown version or kind with TXN_ERR_INVALID. */
int txn_range_event_encode(const txn_range_event *e, base_buf *out);
int txn_range_event_decode(const uint8_t *p, size_t len, txn_range_event *out /* OUT */);
/* [start, end) of every event key, into start and end (reset first). */
int txn_range_event_span(base_buf *start, base_buf *end);
/* Write events[0..n) (n <= TXN_RANGE_EVENTS_BATCH_MAX) in one transaction
** of their own, retried a few times on 40001. TXN_OK, or the transaction's
** error with err set (nothing written). */
int txn_db_log_range_events(txn_db *db, const txn_range_event *events, size_t n,
                            txn_error *err);

#endif
