/*
** range/kv_int.h: the wire form of KV requests between a range_router and a
** range_server (rpc method RANGE_RPC_METHOD_KV, or in-process through
** range_server_call). Internal to range/.
**
** One request addresses one range and carries one operation. The rpc
** response status is the range return code (RANGE_OK, RANGE_NOT_FOUND, or a
** RANGE_ERR_*); the payload is the encoded range_kv_response.
**
** Invariants:
**   - decoding never trusts a length or count: each is checked against the
**     bytes left and a named maximum; unknown versions/ops/flags and
**     trailing bytes are RANGE_ERR_CORRUPT.
**   - decoded byte fields point INTO the decoded buffer (borrowed: valid
**     while it is); arrays are owned by the decoded struct (…_free).
*/
#ifndef MERIDIAN_RANGE_KV_INT_H
#define MERIDIAN_RANGE_KV_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"

#define RANGE_KV_VERSION 1
#define RANGE_KV_SCAN_ROWS_MAX 100000        /* rows in one scan response */
#define RANGE_KV_SCAN_BYTES_DEFAULT (1u << 20) /* page size the router asks for */
#define RANGE_KV_SPANS_MAX (1u << 20)        /* read/delete spans in one commit */

typedef enum range_kv_op {
    RANGE_KV_GET = 1,
    RANGE_KV_SCAN = 2,
    RANGE_KV_COMMIT = 3,
    RANGE_KV_DESCRIBE = 4, /* answer with the replica's descriptor and lease state;
                              with a key, a node without the range answers
                              KEY_MISMATCH naming its range holding the key */
    RANGE_KV_VALIDATE = 5, /* a cross-range commit's reads in this range, checked and
                              recorded at its commit timestamp (docs/range.md) */
    RANGE_KV_ADMIN_SPLIT = 6, /* split the range at key into [start, key) and a new
                                 range new_range_id = [key, end) (docs/range.md,
                                 "Splits and addressing") */
    RANGE_KV_TRANSFER_LEASE = 7, /* hand the range's lease (Raft leadership) to
                                    target_node_id (docs/range.md, "Lease transfer") */
    RANGE_KV_CHANGE_REPLICAS = 8, /* add_node_id becomes a voter, then remove_node_id
                                     leaves (either may be 0): answer the range's
                                     descriptor (docs/range.md, "Replica changes") */
    /* Two-phase commit (docs/txn.md): */
    RANGE_KV_PREPARE = 9,    /* lay the intents of one range's part of a txn (and,
                                create_record, its PENDING record): answer the
                                prepare timestamp in commit_ts */
    RANGE_KV_END_TXN = 10,   /* at the anchor's range: conditional record transition
                                to txn_status (range.h, end_txn); answer the record */
    RANGE_KV_RESOLVE = 11,   /* intents of txn_id in spans -> values at commit_ts
                                (COMMITTED) or gone (ABORTED) */
    RANGE_KV_PUSH = 12,      /* at the pushee's anchor: abort it when its record is
                                expired (or absent and the intent or lock old), a
                                deadlock's victim or of lower priority, else wait
                                (bounded) while PENDING; answer the record. The
                                pusher itself a deadlock's victim:
                                RANGE_ERR_ABORTED with the cycle */
    RANGE_KV_HEARTBEAT = 13, /* create or refresh a PENDING record; answer it
                                (an ABORTED one: RANGE_ERR_ABORTED, with the
                                cycle when a deadlock chose it) */
    /* Statement-time locks (docs/txn.md section 5, docs/locking.md): */
    RANGE_KV_LOCK = 14,      /* take an UNREPLICATED exclusive lock on each of
                                lock_keys, in order, at the leaseholder; answer
                                newest_ts, or RANGE_ERR_INTENT naming a holder
                                still in the way after the push delay */
    RANGE_KV_QUERY_TXN = 15, /* at a txn's record range: its record and the
                                edges of who waits on it there (deps) */
    /* Merges (docs/range.md, "Merges"): */
    RANGE_KV_SUBSUME = 16,      /* at R's leaseholder: freeze R for merge_id into
                                   left_range_id at R's generation; answer the
                                   freeze index and lineage, the floor and R's
                                   descriptor (again for the same merge_id) */
    RANGE_KV_WAIT_APPLIED = 17, /* at ANY replica's node: wait (bounded) until its
                                   replica applied applied_index, sync the store */
    RANGE_KV_ADMIN_MERGE = 18,  /* at L's leaseholder: subsume the frozen right
                                   range; answer L's new descriptor */
    RANGE_KV_MERGE_FENCE = 19,  /* at the range below R's start: fence merge_id
                                   (it can never apply there any more); answer
                                   that range's descriptor */
    RANGE_KV_UNFREEZE = 20,     /* at R's leaseholder: R frozen with merge_id
                                   serves again; answer R's descriptor */
    /* Garbage collection (docs/txn.md, "Garbage collection"): */
    RANGE_KV_GC_TXN = 21,       /* at the anchor's range: delete txn_id's record when
                                   it is final (the coordinator resolved every
                                   intent); answer the record seen (none: has_txn
                                   false). A PENDING record stays */
} range_kv_op;

/* Bounds of the lock and deadlock fields. */
#define RANGE_KV_LOCK_KEYS_MAX 1024 /* keys in one LOCK request */
#define RANGE_KV_DEPS_MAX 64        /* waits-for edges in a PUSH or QUERY_TXN answer
                                       (= RANGE_TXNWAIT_DEPS_MAX) */
#define RANGE_KV_CYCLE_MAX 65       /* txn ids in a deadlock cycle (deps + 1) */

/* A key of a LOCK request. Bytes borrowed (decode: into the buffer). */
typedef struct range_kv_key {
    const uint8_t *key;
    size_t key_len;
} range_kv_key;

/* A waits-for edge: `waiter` waits for `holder` (txn ids, != 0). QUERY_TXN
** answers them; the pusher hands them unchanged to its PUSH. */
typedef struct range_kv_edge {
    uint64_t waiter;
    int64_t waiter_priority;
    uint64_t holder;
    int64_t holder_priority;
} range_kv_edge;

typedef struct range_kv_request {
    uint8_t op;         /* range_kv_op */
    uint64_t range_id;
    hlc_timestamp read_ts;
    /* GET; ADMIN_SPLIT: the split key; DESCRIBE: a key of the range (may be
    ** empty), where a node no longer hosting it looks for its successor */
    const uint8_t *key;
    size_t key_len;
    /* ADMIN_SPLIT: the id of the right-hand range (!= 0, allocated by the
    ** caller from the replicated counter). A split that is a transaction's
    ** commit trigger (range_split_txn) also carries txn_id (!= 0), anchor
    ** (non-empty), commit_ts and generation (the range's it expects). */
    uint64_t new_range_id;
    /* TRANSFER_LEASE: the voter to take the lease (!= 0) */
    uint64_t target_node_id;
    /* CHANGE_REPLICAS: the node to add as a voter and the one to remove (0:
    ** none; not both 0, not equal). With a transaction (docs/decisions/010,
    ** item 8: txn_id != 0, anchor, commit_ts, generation): ONE step,
    ** conf_step (range_conf_step: ADD_LEARNER or PROMOTE of add_node_id,
    ** REMOVE of remove_node_id; the other node 0). */
    uint64_t add_node_id;
    uint64_t remove_node_id;
    uint8_t conf_step;
    /* SCAN: [start, end) (end_len 0: to the end of the range), one page:
    ** at most max_rows rows and about max_bytes bytes (at least one row). */
    const uint8_t *start;
    size_t start_len;
    const uint8_t *end;
    size_t end_len;
    bool reverse;
    uint32_t max_rows;
    uint32_t max_bytes;
    /* COMMIT: the commit timestamp the server must use, or RANGE_ERR_PUSHED
    ** (HLC_ZERO: the server picks it). VALIDATE: the timestamp the reads in
    ** read_spans must still hold at (> read_ts). */
    hlc_timestamp commit_ts;
    /* COMMIT: (txn_id, nonce) is the idempotence key, the same on every retry
    ** of this commit. writes sorted, no duplicates (as range_commit).
    ** VALIDATE: txn_id (0: none) is the validating transaction, whose own
    ** intents in the spans are not conflicts. PREPARE: (txn_id, nonce) as
    ** COMMIT's; the server mixes the range id into the Raft command's key,
    ** so one nonce may serve every range of a transaction. */
    uint64_t txn_id;
    uint64_t nonce;
    const range_write *writes;   /* encode: borrowed; decode: owned array */
    size_t write_count;
    const range_span *delete_spans;
    size_t delete_span_count;
    const range_span *read_spans; /* COMMIT, VALIDATE and PREPARE */
    size_t read_span_count;
    /* ---- two-phase commit (docs/txn.md) ----
    ** PREPARE: read_ts, commit_ts (as COMMIT's: HLC_ZERO = the server picks),
    **   txn_id (!= 0), nonce, priority, anchor (non-empty), create_record,
    **   writes, delete_spans, read_spans (all inside the range).
    ** END_TXN: txn_id, nonce, priority, anchor, txn_status (COMMITTED or
    **   ABORTED), commit_ts (COMMITTED: the record's timestamp, not zero),
    **   spans (COMMITTED only, 0..RANGE_TXN_RECORD_SPANS_MAX: the
    **   participant spans its record keeps, docs/txn.md 6.1).
    ** RESOLVE: txn_id, nonce (unused by the server: a resolution is
    **   idempotent by content), txn_status, commit_ts (COMMITTED), spans
    **   (inside the range, 1..RANGE_KV_SPANS_MAX).
    ** PUSH: txn_id and priority of the pusher (0: not a transaction),
    **   pushee_txn_id (!= 0), anchor = the pushee's (from its intent),
    **   intent_ts (the intent's timestamp).
    ** HEARTBEAT: txn_id, priority, anchor.
    ** LOCK: read_ts, txn_id (!= 0), priority, anchor (non-empty: the txn's
    **   record key), lock_keys (1..RANGE_KV_LOCK_KEYS_MAX, strictly
    **   ascending by range__key_cmp order, all inside the range).
    ** QUERY_TXN: txn_id (!= 0), anchor (non-empty).
    ** PUSH also: since_wall_ns (the pushee's lock's, from an unreplicated
    **   holder's RANGE_ERR_INTENT; 0: unknown) and deps (what QUERY_TXN
    **   answered for the pusher at its own record range; 0..RANGE_KV_DEPS_MAX). */
    int64_t priority;
    const uint8_t *anchor;
    size_t anchor_len;
    bool create_record;
    uint8_t txn_status;          /* range_txn_status */
    uint64_t pushee_txn_id;
    hlc_timestamp intent_ts;
    const range_span *spans;     /* RESOLVE, END_TXN; encode: borrowed; decode: owned array */
    size_t span_count;
    const range_kv_key *lock_keys; /* LOCK; encode: borrowed; decode: owned array */
    size_t lock_key_count;
    int64_t since_wall_ns;         /* PUSH */
    const range_kv_edge *deps;     /* PUSH; encode: borrowed; decode: owned array */
    size_t dep_count;
    /* GET, SCAN: a stale read (docs/txn.md section 8): a replica that is not
    ** the leaseholder may serve it from its own store when read_ts is at or
    ** below the range's closed timestamp it was told and it has applied up
    ** to the index that came with it; else RANGE_ERR_NOT_LEADER. The
    ** leaseholder serves it as any read. */
    bool stale_ok;
    /* SCAN: an inconsistent read (meta lookups, docs/range.md "Routing
    ** never depends on meta"): an intent is neither waited on nor pushed;
    ** the row reads as the newest committed version at or below read_ts
    ** under it (none: no row). */
    bool skip_intents;
    /* GET, SCAN: the reading transaction's uncertainty limit (HLC_ZERO:
    ** none; else > read_ts): another transaction's intent at or below it
    ** is met as one at or below read_ts, and a committed version in
    ** (read_ts, limit] answers RANGE_ERR_UNCERTAIN naming it in the
    ** CONFLICT section (docs/txn.md section 4). Stale reads carry none. */
    hlc_timestamp uncertainty_limit;
    /* GET, SCAN with an uncertainty limit: the reading transaction's
    ** OBSERVED TIMESTAMP of node observed_node_id (0: none; then ts is
    ** HLC_ZERO), its clock reading at the txn's first read there (docs/txn.md
    ** 4.1). A leaseholder on that node lowers the limit to
    ** max(observed_ts, the lease's uncertainty floor); another ignores it. */
    uint64_t observed_node_id;
    hlc_timestamp observed_ts;
    /* DESCRIBE with a key: the range addressed holds the greatest key below
    ** it rather than the key (a left-hand range, routed by R's start) */
    bool key_below;
    /* ---- merges (docs/range.md, "Merges") ----
    ** SUBSUME: merge_id (!= 0), left_range_id (!= 0), generation (R's).
    ** WAIT_APPLIED: applied_index (!= 0).
    ** ADMIN_MERGE: merge_id, generation (L's), applied_index (R's freeze
    **   index), freeze_lineage, merge_floor, right (R's descriptor). A merge
    **   that is a transaction's commit trigger (range_merge_txn) also
    **   carries txn_id (!= 0), anchor (non-empty) and commit_ts; generation
    **   is then the one the transaction assumed (a mismatch is ABORTED).
    ** MERGE_FENCE: merge_id, right_range_id (!= 0), key (R's start, may be
    **   empty): a node without the range names its range below that key.
    ** UNFREEZE: merge_id. */
    uint64_t merge_id;
    uint64_t left_range_id;
    uint64_t right_range_id;
    uint64_t generation;
    uint64_t applied_index;
    uint64_t freeze_lineage;
    hlc_timestamp merge_floor;
    bool has_right;
    range_descriptor right; /* encode: borrowed; decode: owned keys */
} range_kv_request;

typedef struct range_kv_row {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
} range_kv_row;

typedef struct range_kv_response {
    int32_t status;        /* RANGE_OK, RANGE_NOT_FOUND, RANGE_ERR_* */
    uint64_t leader_hint;  /* RANGE_ERR_NOT_LEADER: node id or 0 */
    /* GET (status RANGE_OK) */
    const uint8_t *value;
    size_t value_len;
    /* SCAN: the page, in scan order; more = the range holds further rows in
    ** the requested span after (before, for reverse) the last one returned.
    ** RESOLVE (RANGE_OK): more = it stopped early (time or rounds), value =
    ** the position K: every intent of the txn in the spans below K is
    ** resolved, none above it touched; ask again from K (docs/txn.md 3.3). */
    const range_kv_row *rows; /* encode: borrowed; decode: owned array */
    size_t n_rows;
    bool more;
    /* COMMIT: RANGE_OK: commit_ts. RANGE_ERR_PUSHED: in commit_ts, the lowest
    ** timestamp the range would accept now. RANGE_ERR_CONFLICT (COMMIT and
    ** VALIDATE): the conflict. */
    hlc_timestamp commit_ts;
    uint8_t conflict_kind;    /* range_conflict_kind */
    const uint8_t *conflict_key;
    size_t conflict_key_len;
    hlc_timestamp conflict_ts;
    bool conflict_pending;
    /* RANGE_ERR_KEY_MISMATCH and DESCRIBE: the replica's descriptor.
    ** ADMIN_SPLIT (RANGE_OK): the left-hand range's. */
    bool has_descriptor;
    range_descriptor descriptor; /* decode: owned keys (range_kv_response_free) */
    /* RANGE_ERR_KEY_MISMATCH: the descriptor of another replica on the
    ** answering node that holds the key (after a split every replica of the
    ** left also hosts the right), so routing works while meta is stale.
    ** ADMIN_SPLIT (RANGE_OK): the right-hand range's. */
    bool has_other;
    range_descriptor other; /* decode: owned keys (range_kv_response_free) */
    /* DESCRIBE: lease state */
    bool lease_valid;
    uint64_t leader_id;
    /* END_TXN, PUSH, HEARTBEAT (and PREPARE's RANGE_ERR_ABORTED): the record
    ** as found or written; COMMITTED: its timestamp in commit_ts.
    ** has_txn false: no record (HEARTBEAT/PUSH never answer that). */
    bool has_txn;
    uint8_t txn_status; /* range_txn_status */
    /* RANGE_ERR_INTENT (GET, SCAN, COMMIT, VALIDATE, PREPARE): the intent met:
    ** its key, holder (!= 0), the holder's anchor and the intent's ts. */
    const uint8_t *intent_key;
    size_t intent_key_len;
    uint64_t intent_txn_id;
    const uint8_t *intent_anchor;
    size_t intent_anchor_len;
    hlc_timestamp intent_ts;
    /* RANGE_ERR_INTENT: the holder's lock is UNREPLICATED (a statement-time
    ** lock, not an intent: no value, intent_ts is its read_ts), taken at
    ** since_wall_ns on the leaseholder's clock (0: unknown); push with it. */
    bool intent_unreplicated;
    int64_t intent_since_wall_ns;
    /* LOCK (RANGE_OK): the newest committed version's timestamp among the
    ** keys (HLC_ZERO: none); above read_ts, the coordinator refreshes. */
    hlc_timestamp newest_ts;
    /* QUERY_TXN (RANGE_OK; has_txn/txn_status: its record, has_txn false =
    ** none): who waits on the txn in this range's wait queue, transitively
    ** as last reported (owned array on decode). */
    const range_kv_edge *deps;
    size_t dep_count;
    /* RANGE_ERR_ABORTED from PUSH or HEARTBEAT when a deadlock chose the
    ** asking txn as victim: the cycle, victim first, each member waiting
    ** for the next (owned array on decode). */
    const uint64_t *cycle;
    size_t cycle_len;
    /* SUBSUME (RANGE_OK): the FREEZE entry's index in R's log, R's lineage
    ** sequence there, and the floor (R's timestamp cache maximum and the
    ** leaseholder's clock at the freeze); R's descriptor in descriptor. */
    uint64_t freeze_index;
    uint64_t freeze_lineage;
    hlc_timestamp merge_floor;
    /* DESCRIBE: the range's load at the answering server (docs/range.md,
    ** "Load"; has_load false: it evaluated nothing of the range): decayed
    ** requests per second (finite, 0 .. RANGE_KV_RATE_MAX; on the wire in
    ** thousandths) and the load-split finder's suggested key (length 0:
    ** none; decode: points into the buffer). */
    bool has_load;
    double reads_per_second;
    double writes_per_second;
    const uint8_t *load_split_key;
    size_t load_split_key_len;
    /* MERGE_FENCE (RANGE_OK): the merge happened before the fence: the
    ** fenced range's span holds R's start OR the merge id is among those
    ** applied in its lineage (L may have split again exactly at R's start
    ** since). The caller must not UNFREEZE then. */
    bool merged;
    /* GET, SCAN carrying an uncertainty limit, evaluated at the leaseholder:
    ** its node id (0: none) and its HLC reading taken before the read, an
    ** observed timestamp for the reading transaction (docs/txn.md 4.1) */
    uint64_t observed_node_id;
    hlc_timestamp observed_ts;
} range_kv_response;

#define RANGE_KV_RATE_MAX 1e12 /* requests per second a LOAD section may carry */

/* ---- closed timestamps: the side transport (docs/txn.md section 8) ---------
** One one-way rpc message of method RANGE_RPC_METHOD_CLOSED per follower node
** per period, from a node to each node holding a replica of a range it
** leads with a valid lease, carrying every such range:
**   version (1 byte, RANGE_CLOSED_VERSION) | count (varint,
**   1..RANGE_CLOSED_ENTRIES_MAX) | count x entry
**   entry = range_id (varint, != 0) | term (varint) | ts closed (hlc_encode)
**           | last_index (varint)
** An entry says: every write at a timestamp <= closed that will ever apply
** in range_id is in its log at an index <= last_index (as the leaseholder
** in `term` saw it). Decoders refuse a bad version, count, zero range id,
** an invalid timestamp and trailing bytes (RANGE_ERR_CORRUPT). */
#define RANGE_CLOSED_VERSION 1
#define RANGE_CLOSED_ENTRIES_MAX RANGE_NODE_REPLICAS_MAX
typedef struct range_closed_entry {
    uint64_t range_id;
    uint64_t term;
    hlc_timestamp closed;
    uint64_t last_index;
} range_closed_entry;
/* Append the encoding of entries[0..n) to *out. RANGE_OK, RANGE_ERR_INVALID
** (n out of bounds, a zero range id, an invalid timestamp; *out unchanged),
** RANGE_ERR_NOMEM. */
int range_closed_encode(const range_closed_entry *entries, size_t n, base_buf *out);
/* RANGE_OK with *entries (owner: caller, base_free) and *n; RANGE_ERR_CORRUPT,
** RANGE_ERR_NOMEM (then *entries is NULL). */
int range_closed_decode(const uint8_t *data, size_t len, range_closed_entry **entries,
                        size_t *n);

/* server.c test hooks: one closing round now (as the closer thread does;
** also without a transport: nothing is sent then), returning how many ranges
** it closed; and the closed entry the server holds for range_id (its own or
** one it was sent): false when none. */
size_t range__server_close_now(range_server *s);
bool range__server_closed(range_server *s, uint64_t range_id, range_closed_entry *out);

/* Append the encoding to *out. RANGE_OK, RANGE_ERR_INVALID, RANGE_ERR_NOMEM. */
int range_kv_request_encode(const range_kv_request *req, base_buf *out);
/* RANGE_OK, RANGE_ERR_CORRUPT, RANGE_ERR_NOMEM. On error *out owns nothing.
** Release with range_kv_request_free. */
int range_kv_request_decode(const uint8_t *data, size_t len, range_kv_request *out);
void range_kv_request_free(range_kv_request *req);

int range_kv_response_encode(const range_kv_response *resp, base_buf *out);
int range_kv_response_decode(const uint8_t *data, size_t len, range_kv_response *out);
void range_kv_response_free(range_kv_response *resp);

#endif
