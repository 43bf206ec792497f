/*
** range/replica_int.h: internals of the replicated range replica (replica*.c).
** No other folder includes this file.
**
** Raw-keyspace layout of one range (all integers big-endian u64):
**   "range/r/" range_id 'h'                 -> hard state: term, vote, commit
**   "range/r/" range_id 'l'                 -> last stored log index
**   "range/r/" range_id 'f'                 -> compaction point: index, term
**                                              (absent: nothing compacted)
**   "range/r/" range_id 'e' index           -> entry: term, type (1 byte), data
**   "range/r/" range_id 'a'                 -> applied index
**   "range/r/" range_id 't'                 -> newest applied log truncation
**                                              point (absent: none)
**   "range/r/" range_id 'c' txn_id seq      -> index that applied the command,
**                                              then its commit timestamp
**                                              (hlc_encode, 12 bytes)
**   "range/r/" range_id 'd'                 -> the range descriptor
**                                              (range_descriptor_encode)
**   "range/r/" range_id 'm'                 -> the Raft membership at the
**                                              applied index
**                                              (raft_membership_encode;
**                                              absent: the descriptor's
**                                              replicas, all voters)
**   "range/r/" range_id 's'                 -> the newest installed snapshot
**                                              point: index, term (the log
**                                              store is cut to it; a restart
**                                              redoes a cut a crash lost)
**   "range/r/" range_id 'o'                 -> lineage offset (u64; absent: 0)
**   "range/r/" range_id 'y'                 -> FROZEN for a merge: merge_id,
**                                              left range id, freeze index
**                                              (absent: not frozen)
**   "range/r/" range_id 'x'                 -> FENCES and MERGED: u32 count |
**                                              count x merge_id, twice (the
**                                              fenced ids, then the merge ids
**                                              applied; absent: none)
**   "range/r/" range_id 'g'                 -> idempotence GC threshold
**                                              (hlc_encode; absent: none)
**   "range/r/" range_id 'z'                 -> TOMBSTONE: the generation of
**                                              the descriptor that removed
**                                              this store's replica (no
**                                              replica of the range is
**                                              created here again from
**                                              anything not newer)
** ('h', 'l', 'f', 'e' belong to the raw log store behind replica_log, used
** when the node has no shared log: with one, the range's log and hard state
** are group range_id of that log instead and 'h', 'l', 'f', 'e' never exist.
** 'a', 'c' and 't' belong to the state machine and are written in the same
** batch as the MVCC writes of the command (or truncation) they record; 'd' is written when the
** replica is first created on the store, by a split and by a configuration
** change ('m' with it); a snapshot's install writes 'a', 'd', 'm', 'w',
** 's' and the records in one batch with the span's MVCC data.)
*/
#ifndef MERIDIAN_RANGE_REPLICA_INT_H
#define MERIDIAN_RANGE_REPLICA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"

#define REPLICA_KEY_SIZE_MAX 40
#define REPLICA_KEY_PREFIX "range/r/"
#define REPLICA_KEY_PREFIX_LEN 8
#define REPLICA_RECORD_SIZE (8 + HLC_ENCODED_SIZE) /* value of a 'c' record */

/* Build the raw key of `kind` for range_id with up to two u64 suffixes
** (n_args 0..2). Returns its length (<= REPLICA_KEY_SIZE_MAX). */
size_t replica__key(uint8_t out[REPLICA_KEY_SIZE_MAX], uint64_t range_id, char kind,
                    uint64_t a, uint64_t b, int n_args);
void replica__put_u64(uint8_t *p, uint64_t v);
uint64_t replica__get_u64(const uint8_t *p);

/* ---- the Raft log store ------------------------------------------------------
** Two implementations: the raw keyspace of the node's storage engine
** (replica_log.c: range_node_config.log == NULL) and one group of the
** node's shared segmented log (replica_log_shared.c, raft/log.c). */
typedef struct replica_log replica_log;
typedef struct replica_log_state {
    raft_hard_state hard_state;
    bool has_hard_state;   /* false for a fresh range */
    uint64_t compact_index;/* entries <= it were dropped (0: none) */
    uint64_t compact_term; /* term of the entry at compact_index */
    raft_entry *entries;   /* consecutive from compact_index + 1; owner: the
                              state (replica__log_state_free) */
    size_t n_entries;
    void (*entries_free)(raft_entry *entries, size_t n); /* set by load */
} replica_log_state;
typedef struct replica_log_ops {
    /* Read the durable state into *out (zeroed first). RANGE_OK,
    ** RANGE_ERR_CORRUPT, RANGE_ERR_IO, RANGE_ERR_NOMEM. */
    int (*load)(replica_log *log, replica_log_state *out);
    /* Write the hard state (NULL: unchanged) and entries; entries first
    ** delete every stored entry with index >= entries[0].index. One atomic
    ** write. *sync_seq = 0: already durable (as far as the node's sync flag
    ** asks); else durable only once raft_log_sync(node log, *sync_seq) has
    ** returned 0. */
    int (*save)(replica_log *log, const raft_hard_state *hard_state, const raft_entry *entries,
                size_t n_entries, uint64_t *sync_seq);
    /* Drop every entry <= up_to_index (term: its term). Need not be durable
    ** at once: a lost compaction only keeps more log. */
    int (*compact)(replica_log *log, uint64_t up_to_index, uint64_t term);
    /* Drop every stored entry (the hard state stays); the log continues
    ** after (index, term) when index is above the compaction point (a
    ** snapshot installed without the log, a new range's initial point, a
    ** removed replica's log). Need not be durable at once: the caller keeps
    ** a record that redoes it ('s'). */
    int (*reset)(replica_log *log, uint64_t index, uint64_t term);
    void (*free)(replica_log *log);
} replica_log_ops;
struct replica_log {
    const replica_log_ops *ops;
};

/* The raw-keyspace log store. owner of *out: caller, (*out)->ops->free. */
int replica__log_raw_open(storage_engine *engine, uint64_t range_id, bool sync,
                          replica_log **out);
/* *exists: the raw keyspace holds a Raft log or hard state of range_id (a
** store written with log == NULL, the layout before the shared log). */
int replica__log_raw_exists(storage_engine *engine, uint64_t range_id, bool *exists);
/* Group range_id of the shared log `log` (borrowed). sync false: saves
** report *sync_seq 0 (nothing is ever fsynced). owner of *out: caller. */
int replica__log_shared_open(raft_log *log, uint64_t range_id, bool sync, replica_log **out);
void replica__entries_free(raft_entry *entries, size_t n_entries);
void replica__log_state_free(replica_log_state *state); /* entries freed, zeroed */
int replica__map_log_error(int raft_log_rc); /* RAFT_LOG_ERR_* -> RANGE_ERR_* */

/* ---- log truncation command ----------------------------------------------------
** A Raft entry of type NORMAL whose data is
**   REPLICA_TRUNCATE_TAG (1 byte) | up_to_index (u64 BE) | its term (u64 BE)
** proposed by a leader: every replica that applies it drops its log up to
** up_to_index (docs/range.md, "Log truncation"). The tag is not a command
** codec version, so a replica that does not know it skips the entry as an
** undecodable command (deterministic, harmless). */
#define REPLICA_TRUNCATE_TAG 0xF1u
#define REPLICA_TRUNCATE_SIZE 17

/* ---- for the leaseholder evaluator (server.c) ------------------------------
** Each takes the node mutex (replica__command_record and replica__engine
** excepted): never call one while holding a lock a node callback takes. */

/* range_replica_propose, with: expected_term != 0: RANGE_ERR_DROPPED (cb
** never runs) unless the replica leads in exactly that term (the term the
** command was evaluated in); deadline false: the waiter has no deadline, so
** it resolves only OK / DROPPED (apply, or a later term's barrier) or at
** shutdown / replica__cancel_proposals. */
int replica__propose(range_replica *r, const range_command *cmd, uint64_t expected_term,
                     bool deadline, range_propose_fn cb, void *ctx, uint64_t *leader_hint);
/* Remove, without calling them, every proposal waiter of the node whose
** callback is cb (the one server of a node, at shutdown). After it returns
** no such callback runs or is running. */
void replica__cancel_proposals(range_node *n, range_propose_fn cb);
/* Remove the proposal waiter (cb, ctx) if still waiting (a server giving up
** on a configuration change). After it returns the callback has either run
** completely or never will. */
void replica__cancel_waiter(range_replica *r, range_propose_fn cb, void *ctx);
/* Remove the read barrier (cb, ctx) if still waiting. After it returns the
** callback has either run completely or never will. */
void replica__cancel_read(range_replica *r, range_read_fn cb, void *ctx);
/* The idempotence record of (txn_id, seq): *found and the commit timestamp
** it applied at. Reads storage (no node mutex); definitive only after a
** barrier (see replica.c, "SETTLED BY A LATER TERM"). RANGE_OK,
** RANGE_ERR_CORRUPT, RANGE_ERR_IO, RANGE_ERR_NOMEM. */
int replica__command_record(range_replica *r, uint64_t txn_id, uint64_t seq, bool *found,
                            hlc_timestamp *commit_ts);
/* The engine holding the replica's MVCC data (borrowed from the node). */
storage_engine *replica__engine(range_replica *r);

/* ---- splits (docs/range.md, "Splits and addressing") ---------------------------
** A split trigger is a Raft entry of type NORMAL of the range being split:
**   REPLICA_SPLIT_TAG (1 byte) | new_range_id (u64 BE) | expected generation
**   (u64 BE) | the right-hand floor (hlc_encode, 12 bytes) | key_len (u32 BE)
**   | key
** Every replica applies it only when its descriptor still has that
** generation and holds key strictly inside (then: left = [start, key),
** right = new_range_id = [key, end), both at generation + 1, the same
** replicas; one storage batch, then the right-hand replica is opened on this
** node); otherwise it changes nothing but the applied index. Its proposal
** waiter's key is (REPLICA_SPLIT_TXN_ID, new_range_id): OK when it applied
** as a split, DROPPED otherwise.
** A split that is a transaction's commit trigger (docs/decisions/010)
** appends: txn_id (u64 BE, != 0) | commit_ts (hlc_encode) | anchor_len (u32
** BE, >= 1) | anchor. It applies only when, besides the above, the anchor
** lies in the left-hand side and the record (anchor, txn_id) stored here is
** PENDING; the same batch then writes the record COMMITTED at commit_ts.
** Refused, it writes the record ABORTED when it is PENDING and the range
** is not frozen (a frozen range writes nothing: MERGES) (so the
** coordinator's END_TXN and every pusher see the split's fate); an absent
** or final record stays as it is.
** Idempotence records ('c') are kept under range id REPLICA_RECORDS_RANGE
** (0, never a range's id): keyed by (txn_id, seq) alone, so a right-hand
** range finds what its left applied before the split.
** Raw keys of the node: "range/hosted" -> u32 count | count x u64 range id
** (the ranges whose replica this store holds; written in the batch that
** creates one). Per range: 'w' -> the right-hand floor of a range made by a
** split (hlc_encode). */
#define REPLICA_SPLIT_TAG 0xF2u
#define REPLICA_SPLIT_HEADER (1 + 8 + 8 + HLC_ENCODED_SIZE + 4)
#define REPLICA_SPLIT_TXN_HEADER (8 + HLC_ENCODED_SIZE + 4) /* after the key */
#define REPLICA_SPLIT_TXN_ID UINT64_MAX
#define REPLICA_RECORDS_RANGE 0
#define REPLICA_HOSTED_KEY "range/hosted"
#define REPLICA_HOSTED_KEY_LEN 12

/* Propose a split of r at key (see above) as replica__propose does a
** command (expected_term, no deadline); cb's key is (REPLICA_SPLIT_TXN_ID,
** new_range_id). Node mutex. */
int replica__propose_split(range_replica *r, const uint8_t *key, size_t key_len,
                           uint64_t new_range_id, uint64_t generation, hlc_timestamp floor,
                           uint64_t expected_term, range_propose_fn cb, void *ctx,
                           uint64_t *leader_hint);
/* The same with txn (NULL: a plain split) as its transaction (see above;
** txn->generation unused: `generation` is the one checked). */
int replica__propose_split_txn(range_replica *r, const uint8_t *key, size_t key_len,
                               uint64_t new_range_id, uint64_t generation, hlc_timestamp floor,
                               const range_split_txn *txn, uint64_t expected_term,
                               range_propose_fn cb, void *ctx, uint64_t *leader_hint);
/* The floor a range made by a split starts its timestamp cache above
** (HLC_ZERO for other ranges), raised by a merge to the merge's floor.
** Takes only a leaf lock of the node (not its mutex): callable under any
** lock. */
hlc_timestamp replica__split_floor(range_replica *r);
/* The replica of n whose range holds key (ending_at: whose range ends
** exactly at key), or NULL. Node mutex. */
range_replica *replica__node_find(range_node *n, const uint8_t *key, size_t key_len,
                                  bool ending_at);

/* ---- merges (docs/range.md, "Merges") -----------------------------------------
** Raft entries of type NORMAL (big-endian):
**   FREEZE   REPLICA_FREEZE_TAG | merge_id u64 | left_range_id u64 | expected
**            R generation u64                                    (R's log)
**   MERGE    REPLICA_MERGE_TAG | merge_id | expected L gen | R id | expected
**            R gen | R freeze index | R lineage seq at freeze | floor
**            (hlc_encode) | R descriptor (u32 len | range_descriptor_encode)
**            | R's merged list (u32 count | ids) | [the transaction part of
**            a split trigger: txn_id | commit_ts | anchor_len | anchor]
**                                                                (L's log)
**   FENCE    REPLICA_FENCE_TAG | merge_id | right_range_id (the range below b)
**   UNFREEZE REPLICA_UNFREEZE_TAG | merge_id                     (R's log)
** Waiter keys (REPLICA_*_TXN_ID, merge_id). Apply rules: replica.c, "MERGES".
** A MERGE with the transaction part (docs/decisions/010) is that
** transaction's commit trigger: at its final decision (a stall decides
** nothing) it applies only when, besides the rules, the anchor lies in L
** and the record (anchor, txn_id) stored there is PENDING; the same batch
** writes the record COMMITTED at commit_ts. Refused, it writes the record
** ABORTED when it is PENDING and L is not frozen. FENCE does not touch it (the coordinator's
** END_TXN or a pusher aborts it; MERGE then refuses). */
#define REPLICA_FREEZE_TAG 0xF3u
#define REPLICA_MERGE_TAG 0xF4u
#define REPLICA_FENCE_TAG 0xF5u
#define REPLICA_UNFREEZE_TAG 0xF6u
#define REPLICA_FREEZE_TXN_ID (UINT64_MAX - 2)
#define REPLICA_MERGE_TXN_ID (UINT64_MAX - 3)
#define REPLICA_FENCE_TXN_ID (UINT64_MAX - 4)
#define REPLICA_UNFREEZE_TXN_ID (UINT64_MAX - 5)

/* Each proposes like replica__propose_split (expected_term, no deadline);
** waiter keys as above; node mutex. */
int replica__propose_freeze(range_replica *r, uint64_t merge_id, uint64_t left_range_id,
                            uint64_t generation, uint64_t expected_term, range_propose_fn cb,
                            void *ctx, uint64_t *leader_hint);
int replica__propose_merge(range_replica *left, uint64_t merge_id, uint64_t left_generation,
                           const range_descriptor *right, uint64_t right_freeze_index,
                           uint64_t right_freeze_lineage, hlc_timestamp floor,
                           uint64_t expected_term, range_propose_fn cb, void *ctx,
                           uint64_t *leader_hint);
/* The same with txn (NULL: a plain merge) as its transaction (see above;
** txn's generations unused: left_generation and right's are the ones
** checked). */
int replica__propose_merge_txn(range_replica *left, uint64_t merge_id, uint64_t left_generation,
                               const range_descriptor *right, uint64_t right_freeze_index,
                               uint64_t right_freeze_lineage, hlc_timestamp floor,
                               const range_merge_txn *txn, uint64_t expected_term,
                               range_propose_fn cb, void *ctx, uint64_t *leader_hint);
int replica__propose_fence(range_replica *r, uint64_t merge_id, uint64_t right_range_id,
                           uint64_t expected_term, range_propose_fn cb, void *ctx,
                           uint64_t *leader_hint);
int replica__propose_unfreeze(range_replica *right, uint64_t merge_id, uint64_t expected_term,
                              range_propose_fn cb, void *ctx, uint64_t *leader_hint);
/* Frozen state of r as applied: *merge_id 0 when not frozen; freeze_lineage
** = freeze index + r's lineage offset (MERGE's "R lineage seq at freeze").
** RANGE_OK, RANGE_ERR_UNAVAILABLE (no state here: removed, merged away,
** made on demand). Node mutex. */
int replica__frozen(range_replica *r, uint64_t *merge_id, uint64_t *left_range_id,
                    uint64_t *freeze_index, uint64_t *freeze_lineage);
/* r's applied index and whether a configuration change is in flight
** (applied < last log index or a pending conf entry, or a stalled apply),
** and whether it has learners (applied or latest configuration). RANGE_OK,
** RANGE_ERR_UNAVAILABLE (as above). Node mutex. */
int replica__merge_readiness(range_replica *r, uint64_t *applied, bool *conf_busy,
                             bool *has_learners);
/* *applied: MERGE(merge_id) applied in r's lineage (r, or the range r split
** from, or a range merged into r; the newest REPLICA_FENCES_MAX kept). An
** abandoning orchestrator reads it with the descriptor once its FENCE
** applied: the merge happened iff the span holds b OR this says so (L may
** have split again at b since). RANGE_OK, RANGE_ERR_UNAVAILABLE. Node
** mutex. */
int replica__merge_applied(range_replica *r, uint64_t merge_id, bool *applied);

/* ---- idempotence GC (docs/txn.md 6.1; replica.c, "IDEMPOTENCE GC") ------------
** A Raft entry of type NORMAL proposed by the leaseholder:
**   REPLICA_IDEM_GC_TAG (1 byte) | threshold (hlc_encode, 12 bytes)
** Every replica applying it (not frozen) raises the range's 'g' to the
** threshold in the batch of its applied index; from then on a command with
** a nonzero commit timestamp below 'g' and no RESOLVE write is REFUSED at
** apply (no writes, no record, DROPPED) before its record is looked up. The
** same batch deletes the store's 'c' records whose commit timestamp is below
** min('g' of every range hosted here) - RANGE_IDEMPOTENCE_GC_MARGIN_MS (at
** most REPLICA_IDEM_GC_DELETES_MAX deleted and REPLICA_IDEM_GC_SCAN_MAX
** looked at; the rest at the next GC entries, from a cursor). Waiter
** key (REPLICA_IDEM_GC_TXN_ID, the threshold's wall_ns). */
#define REPLICA_IDEM_GC_TAG 0xF7u
#define REPLICA_IDEM_GC_SIZE (1 + HLC_ENCODED_SIZE)
#define REPLICA_IDEM_GC_TXN_ID (UINT64_MAX - 6)
#define REPLICA_IDEM_GC_DELETES_MAX 10000 /* 'c' deletions per apply batch */
#define REPLICA_IDEM_GC_SCAN_MAX 20000    /* 'c' records looked at per apply */
#define RANGE_IDEMPOTENCE_GC_AGE_MS (10 * 60 * 1000)  /* threshold = now - it */
#define RANGE_IDEMPOTENCE_GC_MARGIN_MS (5 * 60 * 1000) /* > any commit call's life */
#define RANGE_IDEMPOTENCE_GC_PERIOD_MS (60 * 1000)     /* the GC thread's round */
/* Transaction records (docs/txn.md 6.1, "the age sweep"): no record is
** created for a txn whose timestamp is older than now - it, and ABORTED
** records final for longer are collected by the leaseholder. */
#define RANGE_TXN_RECORD_GC_AGE_MS (60 * 60 * 1000)

/* Propose an idempotence GC entry (above) as replica__propose_split does
** (expected_term, no deadline). Node mutex. */
int replica__propose_idem_gc(range_replica *r, hlc_timestamp threshold, uint64_t expected_term,
                             range_propose_fn cb, void *ctx, uint64_t *leader_hint);
/* r's applied idempotence GC threshold (HLC_ZERO: none). Node mutex. */
hlc_timestamp replica__idem_gc_threshold(range_replica *r);

/* ---- version GC (docs/txn.md 6.1, "Version GC"; replica.c, "VERSION GC") -------
** A Raft entry of type NORMAL proposed by the leaseholder's GC round:
**   REPLICA_MVCC_GC_TAG (1 byte) | threshold T (hlc_encode, 12 bytes) |
**   n_keys (u32 BE, <= REPLICA_MVCC_GC_KEYS_MAX) | n_keys x { key_len (u32 BE,
**   1 .. STORAGE_KEY_SIZE_MAX) | key }   (keys strictly ascending; at most
**   REPLICA_MVCC_GC_BYTES_MAX bytes in all; replica_codec.c)
** Every replica applying it (not frozen: R's threshold stays what MERGE
** reads) raises the range's MVCC GC threshold 'v' to T and, in the same
** batch, for each listed key inside its descriptor and with no intent:
** drops every version older than the newest version at or below T, and that
** newest one too when it is a tombstone. Decided from the state at the
** entry's index alone, so every replica drops the same versions; at most
** REPLICA_MVCC_GC_VERSIONS_MAX versions and REPLICA_MVCC_GC_BATCH_BYTES_MAX
** of their key bytes per entry (the rest stay garbage for a later entry).
** Reads at or below 'v' are refused by the replica that reads
** (RANGE_ERR_GC_THRESHOLD, server.c). Waiter key (REPLICA_MVCC_GC_TXN_ID,
** T's wall_ns). */
#define REPLICA_MVCC_GC_TAG 0xF8u
#define REPLICA_MVCC_GC_HEADER (1 + HLC_ENCODED_SIZE + 4)
#define REPLICA_MVCC_GC_TXN_ID (UINT64_MAX - 7)
#define REPLICA_MVCC_GC_KEYS_MAX 10000        /* keys per entry */
#define REPLICA_MVCC_GC_BYTES_MAX (4u << 20)  /* encoded bytes per entry */
#define REPLICA_MVCC_GC_VERSIONS_MAX 100000   /* versions dropped per entry */
#define REPLICA_MVCC_GC_BATCH_BYTES_MAX (64u << 20) /* their key bytes per entry (the
                                                       apply batch's bound is far above) */

/* The entry's bytes: *out appended (owner: the caller). keys: n_keys keys
** back to back in key_bytes, key i at offsets[i] .. offsets[i + 1].
** RANGE_OK, RANGE_ERR_INVALID (a bound above, unsorted or empty keys),
** RANGE_ERR_NOMEM. */
int replica__mvcc_gc_encode(hlc_timestamp threshold, const uint8_t *key_bytes,
                            const size_t *offsets, size_t n_keys, base_buf *out);
/* Check the entry's bytes (every bound above) and give its threshold and
** key count; the keys are then walked with replica__mvcc_gc_key. RANGE_OK,
** RANGE_ERR_CORRUPT. */
int replica__mvcc_gc_decode(const uint8_t *data, size_t len, hlc_timestamp *threshold,
                            uint32_t *n_keys);
/* The key at *at (start: REPLICA_MVCC_GC_HEADER) of an entry that decoded:
** *key points into data; *at moves past it. */
void replica__mvcc_gc_key(const uint8_t *data, size_t *at, const uint8_t **key, size_t *key_len);
/* Propose a version GC entry (above; its bytes from replica__mvcc_gc_encode)
** as replica__propose_split does (expected_term, no deadline). Node mutex. */
int replica__propose_mvcc_gc(range_replica *r, hlc_timestamp threshold, const uint8_t *key_bytes,
                             const size_t *offsets, size_t n_keys, uint64_t expected_term,
                             range_propose_fn cb, void *ctx, uint64_t *leader_hint);
/* r's MVCC GC threshold (HLC_ZERO: none), for reads: lock-free, raised before
** the versions it covers are dropped (see replica.c). */
hlc_timestamp replica__mvcc_gc_threshold(range_replica *r);

/* ---- snapshots and replica changes (snapshot.c, replica.c) ---------------------
** docs/range.md, "Replica changes and snapshots". A range's state at an
** applied index travels as the application bytes of a Raft snapshot
** (format in snapshot.c), made lazily by the leader when a follower needs
** one (raft_config.lazy_snapshots), installed in one storage batch. */
#define REPLICA_SNAPSHOT_BYTES_MAX (((size_t)256 << 20) - ((size_t)1 << 20))
#define REPLICA_SNAPSHOT_OPS_MAX ((uint64_t)STORAGE_BATCH_OPS_MAX - 64)
/* A range created on a store by this version starts its Raft log compacted
** at (REPLICA_INITIAL_INDEX, REPLICA_INITIAL_TERM) with the state machine
** at that index (its initial data or what a split gave it), as
** CockroachDB does: a replica with an empty log can then never be caught
** up from entries alone, it must get a snapshot. */
#define REPLICA_INITIAL_INDEX 10
#define REPLICA_INITIAL_TERM 5
/* The Raft snapshot stream: the membership header, then the bytes above. */
#define REPLICA_SNAPSHOT_STREAM_MAX ((uint64_t)REPLICA_SNAPSHOT_BYTES_MAX + RAFT_MEMBERSHIP_MAX_BYTES)
#define REPLICA_SNAPSHOT_CHUNK_BYTES ((size_t)1 << 20) /* per RAFT_MSG_SNAPSHOT */
/* A range-level message on the Raft channel (the codec carries it; the core
** never sees it): from a replica whose applied configuration no longer has
** `to`, at generation `index`; `to` deletes its replica (replica.c,
** "REMOVAL"). */
#define REPLICA_MSG_REMOVED 0x40
/* The proposal waiter of a configuration change: (REPLICA_CONF_TXN_ID, the
** index of its entry); OK when that entry applies as a configuration. */
#define REPLICA_CONF_TXN_ID (UINT64_MAX - 1)
/* Replica changes with a transaction (docs/decisions/010, item 8). A
** configuration entry (RAFT_ENTRY_CONFIG) may carry, after its membership
** (raft_event.conf_context), a transaction T in the split's format:
** txn_id (u64 BE, != 0) | commit_ts (hlc_encode) | anchor_len (u32 BE,
** >= 1) | anchor. The core switches to a configuration when it appends it,
** so its apply cannot be refused: the check is made at the proposal
** instead, where it is exact. The leader proposes it only under the node
** mutex with every entry of its log applied (the rule every change
** follows), the range at T's generation, the anchor inside and T's record
** PENDING; the entry goes right after that applied prefix, so every
** replica that applies it (a committed entry has that prefix before it)
** reads the record PENDING there and writes it COMMITTED in the
** configuration's batch; any later record write (a pusher's abort) finds
** it final. An entry that is truncated never applies and T stays PENDING
** (its coordinator or a pusher aborts it).
** replica__change_replicas_txn: step (range_conf_step) of node_id as T's
** commit trigger, at the leader: RANGE_OK with *done (the step has
** nothing to do: ADD_LEARNER of a learner or voter, PROMOTE of a voter,
** REMOVE of a non-member) or proposed (cb as range_replica_change_replicas);
** RANGE_ERR_ABORTED (another generation, the anchor outside, the record
** not PENDING, PROMOTE of a non-member: nothing proposed); else as
** range_replica_change_replicas. Takes the node mutex. */
int replica__change_replicas_txn(range_replica *r, int step, uint64_t node_id,
                                 const range_split_txn *txn, range_propose_fn cb, void *ctx,
                                 uint64_t *leader_hint, bool *done);

/* The merge state of a range (replica.c, "MERGES"): persisted per range
** ('o', 'y', 'x'), carried by snapshots (version 3). */
#define REPLICA_FENCES_MAX 16 /* newest fences kept per range (FIFO) */
typedef struct replica_merge_state {
    uint64_t lineage_offset;  /* 'o': lineage seq = index + it */
    uint64_t frozen_merge_id; /* 'y': 0 when not frozen */
    uint64_t frozen_left_id;
    uint64_t frozen_index;    /* index of the FREEZE entry */
    uint64_t fences[REPLICA_FENCES_MAX]; /* 'x': merge ids fenced (FENCE, or the
                                            UNFREEZE of a merge of this range:
                                            FREEZE refuses them), oldest first */
    uint32_t n_fences;
    uint64_t merged[REPLICA_FENCES_MAX]; /* 'x': merge ids applied in this
                                            lineage (inherited by a split's
                                            right side), oldest first */
    uint32_t n_merged;
    hlc_timestamp idem_gc;    /* 'g': the idempotence GC threshold (IDEMPOTENCE
                                 GC below; HLC_ZERO: none), inherited by a
                                 split's right side, max of both at a merge */
    hlc_timestamp mvcc_gc;    /* 'v': the MVCC GC threshold (VERSION GC above;
                                 HLC_ZERO: none), travels as idem_gc does
                                 (snapshot version 5) */
} replica_merge_state;

typedef struct replica_snapshot_view {
    uint64_t range_id;
    uint64_t index;
    range_descriptor desc;   /* owned (replica__snapshot_view_free) */
    hlc_timestamp floor;
    const uint8_t *records;  /* into the decoded bytes */
    uint64_t n_records;
    const uint8_t *versions; /* into the decoded bytes */
    size_t versions_len;
    uint64_t n_versions;
    const uint8_t *raws;     /* intents and txn records of the span (version 2) */
    uint64_t n_raws;
    replica_merge_state merge; /* version 3 (zero before) */
} replica_snapshot_view;

/* Append the state of the range described by desc at `index` (its applied
** index: the caller excludes apply, i.e. holds the node mutex) to *out.
** RANGE_OK, RANGE_ERR_TOO_LARGE (above REPLICA_SNAPSHOT_BYTES_MAX bytes or
** REPLICA_SNAPSHOT_OPS_MAX versions and records; *out as it was),
** RANGE_ERR_NOMEM, RANGE_ERR_IO, RANGE_ERR_CORRUPT. */
int replica__snapshot_encode(storage_engine *e, const range_descriptor *desc, uint64_t index,
                             hlc_timestamp floor, const replica_merge_state *merge,
                             base_buf *out); /* merge NULL: none (all zero) */
/* Check every byte (CRC, counts, lengths, keys in the span) and point *out
** into data (borrowed: valid while data is). RANGE_OK, RANGE_ERR_CORRUPT,
** RANGE_ERR_NOMEM; on error *out owns nothing. */
int replica__snapshot_decode(const uint8_t *data, size_t len, replica_snapshot_view *out);
void replica__snapshot_view_free(replica_snapshot_view *v);
/* The range id, index and descriptor of a snapshot from a prefix of it (the
** first chunk; nothing checked beyond them). *desc owned on RANGE_OK. */
int replica__snapshot_peek(const uint8_t *data, size_t len, uint64_t *range_id, uint64_t *index,
                           range_descriptor *desc);
/* Put the snapshot's MVCC span (deleted first, then every version), its
** intents and transaction records (the span's deleted first, then the
** snapshot's) and its idempotence records into b, reading e for what to
** delete. The caller adds the raw per-range state. RANGE_OK,
** RANGE_ERR_NOMEM, RANGE_ERR_TOO_LARGE (a batch limit), RANGE_ERR_IO. */
int replica__snapshot_install_batch(storage_engine *e, const replica_snapshot_view *v,
                                    storage_batch *b);
/* Delete, into b, the intents and transaction records (docs/txn.md: raw
** keys by user key / anchor) of the user-key span [s, e) (e_len 0: to the
** end), as found in engine e. RANGE_OK, RANGE_ERR_NOMEM, RANGE_ERR_IO,
** RANGE_ERR_TOO_LARGE. */
int replica__raw_span_delete(storage_engine *e, const uint8_t *s, size_t s_len,
                             const uint8_t *end, size_t e_len, storage_batch *b);

/* ---- server.c test hooks ------------------------------------------------------ */
typedef enum range__server_counter {
    RANGE__SERVER_PENDING = 0,    /* gauge: proposed commits not yet resolved */
    RANGE__SERVER_READ_WAITS = 1, /* reads that waited for a pending commit */
    RANGE__SERVER_PROPOSED = 2,   /* commits proposed */
    RANGE__SERVER_TERMS = 3,      /* leadership terms seen (low-water marks set) */
    RANGE__SERVER_COMMIT_WAITS = 4, /* answers that waited for the clock to pass */
} range__server_counter;
/* Current value of a counter (all ranges). */
uint64_t range__server_counter_get(range_server *s, range__server_counter which);
/* Wait (bounded by timeout_ms, on the server's condition variable) until
** the counter is >= at_least (or <= at_least when at_most). true if so. */
bool range__server_wait_counter(range_server *s, range__server_counter which, uint64_t value,
                                bool at_most, int64_t timeout_ms);
/* One GC round now, as the server's GC thread runs it every
** RANGE_IDEMPOTENCE_GC_PERIOD_MS: for each range this node leads, propose
** an idempotence GC entry, collect ABORTED records final for longer than
** RANGE_TXN_RECORD_GC_AGE_MS, then propose version GC entries at now - the
** GC TTL (docs/txn.md 6.1). *proposed: idempotence GC entries applied;
** *swept: records collected (either may be NULL). */
void range__server_gc_round(range_server *s, size_t *proposed, size_t *swept);

#endif
