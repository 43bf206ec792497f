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
/* Writes + tombstones generated from delete spans in one commit of the local
** store (range_commit): one large storage batch (a little under
** STORAGE_BATCH_LARGE_OPS_MAX, leaving room for bookkeeping), so a local
** commit is bounded by the transaction's write set (TXN_WRITE_SET_BYTES_MAX),
** not by the batch bound of Raft entries and snapshots
** (STORAGE_BATCH_OPS_MAX; docs/decisions/011). */
#define RANGE_COMMIT_OPS_MAX (STORAGE_BATCH_LARGE_OPS_MAX - 16)

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

/* A transaction's OBSERVED TIMESTAMPS (docs/txn.md 4.1): per node, that
** node's HLC reading at the txn's first read there (the first one kept;
** nodes beyond RANGE_OBSERVED_MAX get no entry: their reads keep the full
** limit). Plain data owned by the transaction (zero-initialize); the router
** reads the entry of each read's target node and adds the readings the
** leaseholders answer. */
#define RANGE_OBSERVED_MAX 16
typedef struct range_observed {
    uint64_t node_id[RANGE_OBSERVED_MAX];
    hlc_timestamp ts[RANGE_OBSERVED_MAX];
    size_t n;
} range_observed;
/* The entry of node_id, or HLC_ZERO. */
hlc_timestamp range_observed_get(const range_observed *o, uint64_t node_id);
/* Keep ts for node_id unless it has an entry (the first reading bounds the
** most) or the table is full; ignores node_id 0 and HLC_ZERO. */
void range_observed_add(range_observed *o, uint64_t node_id, hlc_timestamp ts);

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
    /* stale reads (docs/txn.md section 8; a router's, zero for a store) */
    uint64_t stale_reads;     /* stale GETs and scan pages asked */
    uint64_t stale_local;     /* of which answered by this node's replica */
    uint64_t stale_fallbacks; /* refused there (not closed yet): leaseholder */
    uint64_t follower_reads;  /* reads this node's server served as a follower */
} range_stats;
void range_store_stats(range_store *s, range_stats *out);


/* ==== Raft-replicated range replica (issue 4, first step) ====================
** Added by the replica work; everything above is unchanged. Design and
** invariants: docs/range.md. A range_node is a node-level driver: it owns the
** replicas hosted on this node, ticks them all from one timer
** (range_node_tick) and carries their Raft traffic over an rpc_transport
** (one-way messages, method RANGE_RPC_METHOD_RAFT). A range_replica is one
** member of a range's Raft group: it proposes commands (already-evaluated
** write batches) and applies committed ones to the MVCC store atomically
** with the range's applied index.
**
** Identity: today a replica's Raft id IS its node id (one replica of a range
** per node), so a leader hint is directly a node id.
**
** Thread-safety: every range_node_* / range_replica_* call takes the node's
** mutex. Callbacks (range_propose_fn, range_read_fn, range_apply_observer_fn)
** run with that mutex held, on the thread that made the call that produced
** them (tick, an rpc handler, propose, read) or on the node's log syncer
** thread (range_node_config.log): they must not call back into the node or
** its replicas; record and act later.
*/
#include "raft/raft.h"
#include "rpc/rpc.h"

enum {
    RANGE_ERR_NOT_LEADER = -5007, /* *leader_hint names the leader's node, or 0 */
    RANGE_ERR_DROPPED = -5008,    /* the proposal can no longer apply: its log slot
                                     went to another entry, or a read barrier of a
                                     later term was served while it was unresolved
                                     (a new leader's barrier covers every entry that
                                     can still commit); retry with the same
                                     (txn_id, seq) */
    RANGE_ERR_AMBIGUOUS = -5009,  /* gave up waiting (bound, shutdown): the command
                                     may or may not apply; retry with the same key */
    RANGE_ERR_BUSY = -5010,       /* a bounded queue is full; retry later */
    RANGE_ERR_CORRUPT = -5011,    /* bad bytes (peer message, stored state) */
};

#define RANGE_RPC_METHOD_RAFT 0x5241u    /* one-way rpc method of Raft traffic: one
                                            message, or a batch of them per node
                                            pair (RANGE_CODEC_BATCH_VERSION) */
#define RANGE_REPLICAS_MAX 16            /* voters of one range */
#define RANGE_NODE_REPLICAS_MAX 1024     /* replicas hosted by one range_node */
#define RANGE_PROPOSALS_PENDING_MAX 4096 /* proposals awaiting apply, per replica */
#define RANGE_READS_PENDING_MAX 4096     /* read barriers awaiting, per replica */
#define RANGE_COMMAND_WRITES_MAX 65536   /* writes in one command */
#define RANGE_LOG_TRUNCATE_ENTRIES 4096  /* default range_replica_config.log_truncate_entries */

/* A command: an already-evaluated write batch at one commit timestamp, with
** an idempotence key. Applying it writes every write at commit_ts, unless a
** command with the same (txn_id, seq) was already applied on this range (or
** on the range it was split from, before the split), in which case it
** changes nothing but the applied index; or unless a write lies outside the
** range's descriptor (refused: nothing but the applied index, the proposal
** DROPPED). The records are keyed by (txn_id, seq) alone, so a key must be
** unique across the ranges of a node (the router's nonce is random per
** commit call; docs/range.md, "Splits and addressing"). Memory borrowed.
** writes need not be sorted; value ignored for tombstones. */
/* A write of the raw keyspace in a command (two-phase commit: intents and
** transaction records, docs/txn.md). Only keys of this range's intents and
** records (range/intent_int.h) are allowed; a command with any other raw key,
** or one outside the descriptor, is refused at apply like an MVCC write
** outside it. Bytes borrowed.
**   PUT: key -> value.  DELETE: key removed (value ignored).
**   RECORD / RECORD_IF_HEARTBEAT: value is a record; written only when the
**     stored one allows the transition (range__record_transition_ok), else
**     skipped (the rest of the command still applies).
**   RESOLVE: key is an intent key, value the holder's txn id (8 bytes BE)
**     and a status byte (COMMITTED, ABORTED); when the stored intent has
**     that holder it is removed and, COMMITTED, its value (or tombstone)
**     written at the command's commit_ts, in the same batch; else nothing. */
typedef enum range_raw_kind {
    RANGE_RAW_PUT = 0,
    RANGE_RAW_DELETE = 1,
    RANGE_RAW_RECORD = 2,
    RANGE_RAW_RECORD_IF_HEARTBEAT = 3,
    RANGE_RAW_RESOLVE = 4,
} range_raw_kind;
#define RANGE_RAW_RESOLVE_SIZE 9
#define RANGE_COMMAND_VERSION_RAW 2 /* command codec version of a command with raw writes */
typedef struct range_raw_write {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    uint8_t kind; /* range_raw_kind */
} range_raw_write;

typedef struct range_command {
    uint64_t txn_id;
    uint64_t seq;
    hlc_timestamp commit_ts;
    const range_write *writes;
    size_t write_count;
    /* two-phase commit: raw writes, applied in the same batch after writes
    ** (at most RANGE_COMMAND_WRITES_MAX; encoded only when present, with
    ** command codec version 2) */
    const range_raw_write *raw_writes;
    size_t raw_write_count;
} range_command;

typedef struct range_node range_node;       /* opaque */
typedef struct range_replica range_replica; /* opaque */

/* Observer of every applied command on a replica (tests, metrics): index,
** key, and duplicate = true when the key had already applied (no writes). */
typedef void (*range_apply_observer_fn)(void *ctx, uint64_t range_id, uint64_t node_id,
                                        uint64_t index, uint64_t txn_id, uint64_t seq,
                                        bool duplicate);

typedef struct range_node_config {
    rpc_transport *transport; /* borrowed; must outlive the node. The node
                                 installs itself as the transport's handler
                                 and clears it in range_node_free */
    storage_engine *engine;   /* borrowed; holds every replica's state */
    bool sync;                /* sync Raft log writes (true in production) */
    /* The node's shared segmented Raft log (raft/log.c): borrowed, opened by
    ** the owner and closed only after range_node_free; each replica is the
    ** log group of its range id. NULL: each range's log and hard state live
    ** in the engine's raw keyspace (tests; one synced storage write per Raft
    ** update). A store must keep the layout it was created with: with a log,
    ** a range whose log is in the raw keyspace is refused (RANGE_ERR_CORRUPT,
    ** logged). With sync, a node thread (the log syncer) makes appends
    ** durable, one fdatasync for every replica's appends since the last. */
    raft_log *log;
    bool log_sync_manual;     /* tests: no syncer thread; the owner calls
                                 range_node_sync_log (deterministic runs) */
    range_apply_observer_fn observer; /* may be NULL */
    void *observer_ctx;
    bool no_handler;          /* do not install a transport handler: the owner
                                 forwards Raft messages to range_node_handle_rpc */
    /* Lease reads take the Raft core's ticks as elapsed time, so a node whose
    ** ticks fell behind real time (a SIGSTOPped process, a starved ticker) would
    ** serve from a lease that already ran out. With clock set, range_node_tick
    ** records clock() as it starts, and range_replica_read answers from the
    ** lease only while that is at most 5/4 tick_ns old; otherwise it asks a
    ** quorum (ReadIndex). The driver must also deliver the ticks it missed,
    ** all in one range_node_tick_n call. NULL: ticks are the only time
    ** (simulations drive both). */
    int64_t (*clock)(void *ctx); /* monotonic nanoseconds */
    void *clock_ctx;
    int64_t tick_ns;             /* > 0 when clock is set */
} range_node_config;

/* owner of *out: caller, range_node_free. RANGE_ERR_INVALID / NOMEM. */
int range_node_new(const range_node_config *config, range_node **out);
/* Frees every replica (pending proposals fail with RANGE_ERR_AMBIGUOUS and
** pending reads with RANGE_ERR_UNAVAILABLE, callbacks run inside), clears
** the transport handler. Storage is untouched: a new node over the same
** engine restarts every replica from it. */
void range_node_free(range_node *n);
/* With rpc_uv a handler may still be running on the loop thread after
** rpc_set_handler(NULL) returns (the rpc interface gives no such barrier),
** and the log syncer (config.log with sync) sends from its own thread, so
** the order there is: range_node_forget_transport (no send by the node after
** it returns; handlers still running are harmless), rpc_uv_free (joins the
** loop: no handler runs any more), then range_node_free (which leaves the
** freed transport alone). Calling forget after rpc_uv_free is fine only for
** a node without a syncer. rpc_sim (single-threaded) needs none of this:
** range_node_free alone is a crash of the node. */
void range_node_forget_transport(range_node *n);
/* The node drains or is decommissioning (server/): its replicas send no
** pre-vote of their own (an election they start gets no votes) until they
** have known no leader for RANGE_DRAIN_CAMPAIGN_ELECTIONS election timeouts,
** so another voter takes leadership and a draining node does not take
** leases back; past that (no other voter could win: it is behind, or
** down) they campaign as usual, so a range never stays without a leader
** for it. Transfers to it (TIMEOUT_NOW) still go through. Any thread. */
#define RANGE_DRAIN_CAMPAIGN_ELECTIONS 3
void range_node_set_draining(range_node *n, bool draining);
/* One tick of the abstract Raft clock for every replica (call it from one
** timer at a fixed rate, e.g. every 100 ms; election timeouts are in ticks).
** With a shared log, also deletes dead log segments now and then (after a
** log truncation; may fsync, outside the node mutex). */
void range_node_tick(range_node *n);
/* `count` ticks at once (at most RANGE_NODE_TICKS_AT_ONCE_MAX; below 1:
** none), all under one hold of the node mutex, with config.clock read once
** as they begin: how a driver delivers the ticks it missed (a paused
** process, a starved ticker thread). Never deliver missed ticks by calling
** range_node_tick in a loop: between two calls the tick is fresh while the
** cores' lease clocks still lag real time, so a lease read there could be
** served from a lease that ran out while another node holds one. */
#define RANGE_NODE_TICKS_AT_ONCE_MAX 100
void range_node_tick_n(range_node *n, int count);
/* With a shared log, sync and log_sync_manual: make every append so far
** durable (one raft_log_sync, outside the node mutex), then send what waited
** for it and step the replicas on. Callbacks may run inside. RANGE_OK,
** RANGE_ERR_IO (the log failed: every replica stops). Without a manual
** syncer it does nothing. */
int range_node_sync_log(range_node *n);

typedef struct range_replica_config {
    uint64_t range_id;                    /* != 0 */
    uint64_t peers[RANGE_REPLICAS_MAX];   /* node ids of the voters, incl. this node */
    size_t n_peers;
    int election_ticks;                   /* 0: default (10) */
    int heartbeat_ticks;                  /* 0: default (1) */
    uint64_t random_seed;                 /* election timeout jitter */
    int proposal_timeout_ticks;           /* 0: default (50); then RANGE_ERR_AMBIGUOUS */
    /* Log truncation (docs/range.md): the leader proposes one once this many
    ** entries are kept and at least half of them can go. 0: default
    ** (RANGE_LOG_TRUNCATE_ENTRIES); < 0: never. */
    int64_t log_truncate_entries;
    /* The range's descriptor when the range has none stored yet (bootstrap:
    ** stored with the replica's initial state); ignored on restart, where the
    ** stored one wins. NULL: [empty, +inf) with peers as replicas. Borrowed. */
    const struct range_descriptor *descriptor;
} range_replica_config;

/* Create (or restart from storage) this node's replica of a range. *out is
** owned by the node (freed by range_node_free); may be NULL.
** RANGE_ERR_INVALID (bad config, range already hosted), RANGE_ERR_CORRUPT
** (stored state unreadable), RANGE_ERR_IO, RANGE_ERR_NOMEM. A range removed
** from this store (its tombstone, no descriptor: "replica changes" below)
** is not made again: RANGE_OK with a replica that serves nothing (not
** listed by range_node_replica / _ids), logged. */
int range_node_add_replica(range_node *n, const range_replica_config *config,
                           range_replica **out);
/* NULL if absent (or made on demand and still waiting for its snapshot). */
range_replica *range_node_replica(range_node *n, uint64_t range_id);
/* Open every range this store hosts that is not open yet, from its stored
** descriptor (ranges created by splits, docs/range.md "Splits and
** addressing"), each with defaults' tuning (election_ticks, heartbeat_ticks,
** proposal_timeout_ticks, log_truncate_entries; random_seed mixed with the
** range id; range_id, peers and descriptor ignored). *opened (may be NULL):
** how many. RANGE_OK, or the first error (the rest are still tried). */
int range_node_open_stored(range_node *n, const range_replica_config *defaults, size_t *opened);
/* The ids of the replicas n hosts now (at most max into ids; ids may be
** NULL when max is 0); returns how many it hosts (replicas made on demand
** that wait for their snapshot are not counted). */
size_t range_node_replica_ids(range_node *n, uint64_t *ids, size_t max);

/* Proposal result: rc RANGE_OK once the command is applied on this replica
** (durable on a majority: an acknowledged write), or RANGE_ERR_DROPPED /
** RANGE_ERR_AMBIGUOUS. Runs exactly once per accepted proposal. */
typedef void (*range_propose_fn)(void *ctx, int rc);
/* Propose at the leader. RANGE_OK: cb runs later exactly once.
** RANGE_ERR_NOT_LEADER with *leader_hint (may be NULL) set to the leader's
** node id or 0; RANGE_ERR_INVALID, RANGE_ERR_TOO_LARGE, RANGE_ERR_BUSY,
** RANGE_ERR_NOMEM, RANGE_ERR_IO: cb never runs. */
int range_replica_propose(range_replica *r, const range_command *cmd, range_propose_fn cb,
                          void *ctx, uint64_t *leader_hint);

/* Linearizable read barrier at the leader: cb(ctx, RANGE_OK) once local
** reads on this replica (range_replica_get) reflect every write
** acknowledged before this call: served from the leader lease when it
** holds one and allow_lease, else after a ReadIndex round. cb gets
** RANGE_ERR_NOT_LEADER if leadership is lost first. Returns RANGE_OK (cb runs
** exactly once, possibly inside this call), RANGE_ERR_NOT_LEADER with
** *leader_hint, RANGE_ERR_BUSY, RANGE_ERR_NOMEM (cb never runs). */
typedef void (*range_read_fn)(void *ctx, int rc);
int range_replica_read(range_replica *r, bool allow_lease, range_read_fn cb, void *ctx,
                       uint64_t *leader_hint);
/* Local MVCC read of this replica's store at read_ts (value appended to out
** after a reset). RANGE_OK, RANGE_NOT_FOUND (absent or tombstone), error.
** Linearizable only after a range_replica_read barrier. */
int range_replica_get(range_replica *r, const uint8_t *key, size_t key_len,
                      hlc_timestamp read_ts, base_buf *out);

typedef struct range_replica_status {
    uint64_t range_id;
    uint64_t node_id;
    bool leader;
    uint64_t leader_id;  /* 0 when unknown */
    uint64_t term;
    uint64_t commit;
    uint64_t applied;    /* applied index (stored atomically with its writes) */
    uint64_t last_index;
    uint64_t first_index; /* first entry still in the log (after truncation) */
    bool lease_valid;
} range_replica_status;
void range_replica_get_status(range_replica *r, range_replica_status *out);
/* Copy of the replica's current descriptor into *out (caller frees with
** range_descriptor_free). RANGE_ERR_UNAVAILABLE for a removed replica (it
** has none any more). */
int range_replica_descriptor(range_replica *r, struct range_descriptor *out);
/* Campaign now (tests, operator): RANGE_OK or RANGE_ERR_BUSY. */
int range_replica_campaign(range_replica *r);
/* Lease transfer (docs/range.md, "Lease transfer"): at the leader, start a
** Raft leadership transfer to target_node_id, a voter other than this node.
** RANGE_OK (started, or already running to that target; it completes or is
** abandoned after an election timeout), RANGE_ERR_NOT_LEADER with
** *leader_hint (may be NULL), RANGE_ERR_INVALID (not a voter, self),
** RANGE_ERR_BUSY (a transfer to another target is running), RANGE_ERR_IO,
** RANGE_ERR_NOMEM. Lease reads and proposals stop here once it started. */
int range_replica_transfer_lease(range_replica *r, uint64_t target_node_id,
                                 uint64_t *leader_hint);

/* ---- replica changes (docs/range.md, "Replica changes and snapshots") ------
** A range's replicas move one Raft configuration change at a time; each
** change's entry, when it applies, also writes the range's descriptor
** (replicas = the voters, generation + 1) in the same batch. A node that
** becomes a member gets the range's state as a snapshot (made by the
** leader when needed; an uninitialized replica is created on demand by the
** range's Raft traffic, and votes with its persisted term and vote, so a
** voter that skipped the split that made a range still counts); a node
** removed deletes its replica's data and keeps a tombstone (the generation
** that removed it), so no message of the old configuration makes it again
** (only a newer snapshot does). A replica's Raft id is its node id: at most
** one replica per node. */
typedef enum range_replica_change_type {
    RANGE_REPLICA_ADD = 1,    /* node_id becomes a voter: learner, snapshot, promote */
    RANGE_REPLICA_REMOVE = 2, /* node_id leaves (a voter or a learner) */
} range_replica_change_type;
/* At the leader: the NEXT step toward the change, from the latest
** configuration: ADD proposes "add learner" or, once the learner has caught
** up, "promote"; REMOVE proposes "remove". RANGE_OK with *done: already
** true, nothing proposed (cb never runs); RANGE_OK, !*done: one step
** proposed, cb(ctx, RANGE_OK) when its entry applies here (DROPPED if it
** cannot; AMBIGUOUS at shutdown), then call again. RANGE_ERR_BUSY: not now
** (another change uncommitted, the learner still catching up): call again
** later. RANGE_ERR_NOT_LEADER with *leader_hint (REMOVE of this node itself:
** the lease is being handed to another voter, which does it).
** RANGE_ERR_INVALID: the last voter, RAFT_MAX_VOTERS members, a log that
** starts at index 1 (a range made before initial log points). cb runs
** under the node mutex (range_propose_fn). */
int range_replica_change_replicas(range_replica *r, range_replica_change_type type,
                                  uint64_t node_id, range_propose_fn cb, void *ctx,
                                  uint64_t *leader_hint, bool *done);
/* The configuration at the replica's applied index (the descriptor's, with
** learners) and the latest one in its log (committed or not). Either may be
** NULL. RANGE_OK, RANGE_ERR_UNAVAILABLE (removed, or made on demand and
** waiting for its snapshot). */
int range_replica_membership(range_replica *r, raft_membership *applied,
                             raft_membership *latest);

/* ---- the Raft message codec (pure; exposed for tests and tools) -----------
** Payload of RANGE_RPC_METHOD_RAFT (docs/range.md, "Wire format"). */
#define RANGE_CODEC_VERSION 1
#define RANGE_CODEC_ENTRIES_MAX 4096
#define RANGE_CODEC_CHUNK_MAX (4u << 20) /* bytes of one snapshot chunk */

/* A decoded Raft message of a range. msg.entries is owned by the struct;
** each entry's data points INTO the decoded payload (borrowed: valid while
** the payload is). Release with range_raft_msg_free. */
typedef struct range_raft_msg {
    uint64_t range_id;
    raft_message msg;
} range_raft_msg;
/* Append the encoding of msg (a message of range range_id) to *out (the
** caller's buffer). RANGE_OK, RANGE_ERR_INVALID (type this codec does not
** carry, too many entries), RANGE_ERR_NOMEM. */
int range_raft_msg_encode(uint64_t range_id, const raft_message *msg, base_buf *out);
/* RANGE_OK, RANGE_ERR_CORRUPT (truncation, trailing bytes, bad version,
** type, count or length), RANGE_ERR_NOMEM. On error *out owns nothing. */
int range_raft_msg_decode(const uint8_t *data, size_t len, range_raft_msg *out);
void range_raft_msg_free(range_raft_msg *m);

/* ---- batches: Raft messages coalesced per node pair ------------------------
** Also a payload of RANGE_RPC_METHOD_RAFT (same method, so every dispatcher
** that routes Raft traffic carries batches too), told apart by its first
** byte, RANGE_CODEC_BATCH_VERSION where a single message has
** RANGE_CODEC_VERSION (docs/range.md, "Wire format"):
**   version (1 byte, 2) | count (u16 BE, 1..RANGE_BATCH_MSGS_MAX) |
**   count x { len (varint, >= 1) | len bytes: one message as
**             range_raft_msg_encode writes it }
** at most RANGE_BATCH_BYTES_MAX bytes in all. range_node sends one per
** destination node at the end of a tick, of a received message or batch, and
** of a log sync round (range/replica.c, "COALESCING"); a lone message goes
** out as itself. */
#define RANGE_CODEC_BATCH_VERSION 2
#define RANGE_BATCH_HEADER_SIZE 3
#define RANGE_BATCH_MSGS_MAX 4096
#define RANGE_BATCH_BYTES_MAX ((size_t)256 << 10)
/* Start an empty batch in *out (reset first; the caller's buffer).
** RANGE_OK, RANGE_ERR_NOMEM. */
int range_raft_batch_start(base_buf *out);
/* Append one encoded message (msg[0..len), copied) to a started batch.
** RANGE_OK; RANGE_ERR_TOO_LARGE: the batch would pass RANGE_BATCH_MSGS_MAX
** messages or RANGE_BATCH_BYTES_MAX bytes (unchanged: send it, start
** another); RANGE_ERR_INVALID (len 0, *batch not a batch); RANGE_ERR_NOMEM
** (unchanged). The bytes are not checked: the receiver decodes each. */
int range_raft_batch_add(base_buf *batch, const uint8_t *msg, size_t len);
/* Messages in a started batch. */
size_t range_raft_batch_count(const base_buf *batch);
/* A decoded batch: msgs[0..n), each as range_raft_msg_decode gives it (entry
** data and chunks point INTO the payload). Release with range_raft_batch_free. */
typedef struct range_raft_batch {
    range_raft_msg *msgs; /* owned */
    size_t n;
} range_raft_batch;
/* All or nothing: RANGE_OK, or RANGE_ERR_CORRUPT when the framing or any one
** message is malformed (a peer's bug: the whole batch is dropped),
** RANGE_ERR_NOMEM. On error *out owns nothing. */
int range_raft_batch_decode(const uint8_t *data, size_t len, range_raft_batch *out);
void range_raft_batch_free(range_raft_batch *b);

/* Command codec: the bytes of a Raft entry. */
int range_command_encode(const range_command *cmd, base_buf *out); /* appends */
/* Decode; writes' bytes point into data; *writes owned by caller (base_free).
** RANGE_ERR_CORRUPT, RANGE_ERR_NOMEM. cmd->raw_writes (when present) lives
** in the same allocation as *writes (after the writes): one base_free. */
int range_command_decode(const uint8_t *data, size_t len, range_command *cmd,
                         range_write **writes);


/* ==== The KV interface of coordinators, and the cluster (issue 4) ===========
** txn/ talks to the key space through a range_kv: either the local
** range_store above (single node, tests) or a range_router (cluster: sends
** each request over rpc to the leaseholder of the range holding the keys,
** where a range_server evaluates it against its Raft replica).
** The semantics are exactly those of the range_store functions above;
** range_kv adds the errors a cluster can produce:
**   RANGE_ERR_UNAVAILABLE  no leaseholder answered within the router's
**                          deadline (reads; commits that surely did not apply)
**   RANGE_ERR_AMBIGUOUS    a commit whose outcome is unknown (SQLSTATE 40003)
**   RANGE_ERR_CROSS_RANGE  the commit's writes and delete spans span more
**                          than one range: commit sends nothing; the
**                          coordinator uses prepare/end_txn/resolve
**                          (two-phase commit). Its reads may span any
**                          number of ranges.
**   RANGE_ERR_INTENT       (router) another transaction's intent stayed in
**                          the way until the deadline (SQLSTATE 40001)
**   RANGE_ERR_PUSHED       a commit whose reads span several ranges could not
**                          find a timestamp every range accepts within the
**                          router's attempts (SQLSTATE 40001: retry)
*/
enum {
    RANGE_ERR_CROSS_RANGE = -5012,
    RANGE_ERR_KEY_MISMATCH = -5013, /* (server) key outside the replica's range;
                                       the router refreshes its descriptors */
    RANGE_ERR_PUSHED = -5014,       /* (server) a commit at a fixed timestamp the
                                       range cannot accept: reads recorded in its
                                       timestamp cache (or its lease-start
                                       low-water) are at or above it; the answer
                                       names the lowest acceptable one */
};

typedef struct range_kv range_kv;
struct range_txn_meta;       /* "Distributed transactions" below */
struct range_prepare_result;
struct range_txn_outcome;
struct range_split_txn;
struct range_merge_txn;
typedef struct range_kv_iter range_kv_iter; /* owner: caller, ops->iter_close */
typedef struct range_kv_ops {
    int (*wait_visible)(range_kv *kv, hlc_timestamp read_ts);
    int (*get)(range_kv *kv, const uint8_t *key, size_t key_len, hlc_timestamp read_ts,
               base_buf *out);
    int (*iter_open)(range_kv *kv, const uint8_t *start, size_t start_len, const uint8_t *end,
                     size_t end_len, hlc_timestamp read_ts, bool reverse, range_kv_iter **out);
    int (*iter_next)(range_kv_iter *it, const uint8_t **key, size_t *key_len,
                     const uint8_t **value, size_t *value_len);
    void (*iter_close)(range_kv_iter *it);
    int (*commit)(range_kv *kv, const range_commit_request *req, hlc_timestamp *commit_ts,
                  range_conflict *conflict);
    void (*stats)(range_kv *kv, range_stats *out);
    /* May be NULL. After a call of this thread on kv returned an error, a
    ** short description for users (which range or ranges, why) into buf
    ** (NUL-terminated); false when there is none. */
    bool (*last_error)(range_kv *kv, char *buf, size_t buf_size);
    /* May be NULL (a local store: one piece, no splits). Split the range
    ** holding key at key: [start, key) keeps its id, new_range_id (allocated
    ** by the caller, never used before) becomes [key, end) on the same
    ** replicas. A key that is already a range's start: no change, *right is
    ** that range and *left the one ending there (range_id 0 when unknown).
    ** RANGE_OK with both copied (owner: caller, range_descriptor_free);
    ** else the router's errors (RANGE_ERR_AMBIGUOUS: retrying with the
    ** same id is safe). docs/range.md, "Splits and addressing". */
    int (*admin_split)(range_kv *kv, const uint8_t *key, size_t key_len, uint64_t new_range_id,
                       struct range_descriptor *left, struct range_descriptor *right);
    /* Two-phase commit (docs/txn.md section 3). NULL for a local store (one
    ** piece: every commit is single-range). See "Distributed transactions"
    ** below for the types and the exact semantics. */
    int (*prepare)(range_kv *kv, const struct range_txn_meta *txn,
                   const range_commit_request *req, struct range_prepare_result *out,
                   range_conflict *conflict);
    int (*end_txn)(range_kv *kv, const struct range_txn_meta *txn, int status,
                   hlc_timestamp commit_ts, struct range_txn_outcome *out);
    int (*resolve)(range_kv *kv, uint64_t txn_id, const range_span *spans, size_t n_spans,
                   int status, hlc_timestamp commit_ts);
    /* Statement-time locks and read refresh (docs/txn.md section 5). NULL
    ** for a local store (no locks: commit validation alone). See
    ** "Statement-time locks" below for the exact semantics. */
    int (*lock)(range_kv *kv, const struct range_txn_meta *txn, const range_span *keys,
                size_t n_keys, hlc_timestamp *newest_ts);
    int (*heartbeat)(range_kv *kv, const struct range_txn_meta *txn, int *status);
    int (*refresh)(range_kv *kv, const struct range_txn_meta *txn, const range_span *spans,
                   size_t n_spans, hlc_timestamp new_ts, range_conflict *conflict);
    /* Stale reads (docs/txn.md section 8): as get and iter_open (iter_next,
    ** iter_close as usual), for a read timestamp in the past that no commit
    ** can land at or below any more; a replica that is not the leaseholder
    ** may serve them when the range's closed timestamp covers read_ts.
    ** NULL: a key space without followers (a local store): use get and
    ** iter_open. */
    int (*get_stale)(range_kv *kv, const uint8_t *key, size_t key_len, hlc_timestamp read_ts,
                     base_buf *out);
    int (*iter_open_stale)(range_kv *kv, const uint8_t *start, size_t start_len,
                           const uint8_t *end, size_t end_len, hlc_timestamp read_ts,
                           bool reverse, range_kv_iter **out);
    /* May be NULL (a local store: one piece, no merges). Merge the range
    ** starting at key (R) into the one ending there (L): docs/range.md,
    ** "Merges" (range_router_admin_merge). RANGE_OK with *left = L's new
    ** descriptor and *right = R's last one (owner: caller,
    ** range_descriptor_free); RANGE_NOT_FOUND: key is no range boundary
    ** (nothing copied); RANGE_ERR_INVALID with the detail "replicas not
    ** co-located" (different voters, learners); else the router's errors
    ** (RANGE_ERR_AMBIGUOUS: retrying is safe; RANGE_ERR_MERGING: a merge
    ** of these ranges did not finish in time, both serve again or will). */
    int (*admin_merge)(range_kv *kv, const uint8_t *key, size_t key_len,
                       struct range_descriptor *left, struct range_descriptor *right);
    /* May be NULL (a local store keeps no records). Delete txn's record at
    ** its anchor's range when it is final; only once every intent of txn
    ** is resolved (docs/txn.md, "Garbage collection"). RANGE_OK (also when
    ** there was none; a PENDING record stays), else the router's errors
    ** (retrying is safe; giving up only leaves the record). */
    int (*gc_txn)(range_kv *kv, const struct range_txn_meta *txn);
    /* May be NULL (a local store). The descriptor of the range holding key
    ** as a replica of it answers now (owner: caller, range_descriptor_free);
    ** else the router's errors. The atomic split (txn_db_split_at) reads
    ** the shape it will write into meta here. */
    int (*describe)(range_kv *kv, const uint8_t *key, size_t key_len,
                    struct range_descriptor *out);
    /* May be NULL (a local store). admin_split as the COMMIT TRIGGER of
    ** transaction txn (docs/decisions/010-atomic-meta.md): the range
    ** holding key must hold txn->anchor left of key and be at
    ** txn->generation; the split entry applies, on every replica, only
    ** while txn's record (at the anchor, in the left) is PENDING, and the
    ** same storage batch sets it COMMITTED at txn->commit_ts; refused, it
    ** sets it ABORTED (from PENDING). Results as admin_split, plus
    ** RANGE_ERR_ABORTED (refused: the record is not PENDING, the range is
    ** not at txn->generation any more). Whatever the answer, the caller
    ** learns the outcome from the record (END_TXN(ABORTED) answers
    ** COMMITTED when the split applied). */
    int (*admin_split_txn)(range_kv *kv, const uint8_t *key, size_t key_len,
                           uint64_t new_range_id, const struct range_split_txn *txn,
                           struct range_descriptor *left, struct range_descriptor *right);
    /* May be NULL (a local store). As describe, for the range holding the
    ** greatest key below key (a merge's left-hand side: key is R's start). */
    int (*describe_below)(range_kv *kv, const uint8_t *key, size_t key_len,
                          struct range_descriptor *out);
    /* May be NULL (a local store). admin_merge as the COMMIT TRIGGER of
    ** transaction txn (docs/decisions/010-atomic-meta.md): L (holding
    ** txn->anchor) and R must be at txn->left_generation and
    ** txn->right_generation; the MERGE entry applies, on every voter of L,
    ** only while txn's record (in L) is PENDING, and the same storage batch
    ** sets it COMMITTED at txn->commit_ts; refused at its final decision, it
    ** sets it ABORTED (from PENDING). Results as admin_merge, plus
    ** RANGE_ERR_ABORTED (refused: the record is not PENDING, or a range
    ** moved from the generation txn assumed; R unfrozen). Whatever the
    ** answer, the caller learns the outcome from the record. */
    int (*admin_merge_txn)(range_kv *kv, const uint8_t *key, size_t key_len,
                           const struct range_merge_txn *txn, struct range_descriptor *left,
                           struct range_descriptor *right);
    /* May be NULL (a local store: one clock, nothing is uncertain). As get
    ** and iter_open for a transaction whose clock uncertainty window is
    ** (read_ts, limit] (limit > read_ts; docs/txn.md section 4): another
    ** transaction's intent at or below limit is met as one at or below
    ** read_ts (pushed, waited for); a committed version (tombstones too) in
    ** the window is RANGE_ERR_UNCERTAIN with *uncertain filled (its key and,
    ** in conflict_ts, its timestamp; owner: caller, range_conflict_free).
    ** The iterator's iter_next answers RANGE_ERR_UNCERTAIN the same way:
    ** *uncertain must live until iter_close. observed (may be NULL; in/out,
    ** like *uncertain it must live until iter_close): the transaction's
    ** observed timestamps, sent with each request to its node's entry and
    ** added to from the answers (docs/txn.md 4.1). */
    int (*get_uncertain)(range_kv *kv, const uint8_t *key, size_t key_len,
                         hlc_timestamp read_ts, hlc_timestamp limit, range_observed *observed,
                         base_buf *out, range_conflict *uncertain);
    int (*iter_open_uncertain)(range_kv *kv, const uint8_t *start, size_t start_len,
                               const uint8_t *end, size_t end_len, hlc_timestamp read_ts,
                               hlc_timestamp limit, range_observed *observed, bool reverse,
                               range_conflict *uncertain, range_kv_iter **out);
    /* May be NULL (a local store). ONE replica change step of range_id
    ** (step: range_conf_step, of node_id) as the COMMIT TRIGGER of
    ** transaction txn (docs/decisions/010-atomic-meta.md, item 8): at the
    ** leaseholder, with every entry of its log applied, the range must be
    ** at txn->generation, hold txn->anchor and have txn's record PENDING;
    ** then the configuration entry carries txn and its apply writes the
    ** record COMMITTED at txn->commit_ts in the descriptor's batch.
    ** RANGE_OK with *out (owner: caller, range_descriptor_free): the range's
    ** descriptor after the step, or at the same generation when the step
    ** had nothing to do (ADD_LEARNER of a learner or voter, PROMOTE of a
    ** voter, REMOVE of a non-member: nothing proposed); RANGE_ERR_ABORTED
    ** (refused, nothing proposed: another generation, the record not
    ** PENDING, PROMOTE of a non-member); else as range_router_change_replicas
    ** (RANGE_ERR_UNAVAILABLE: the learner still catches up, or not known).
    ** Whatever the answer, the caller learns the outcome from the record. */
    int (*change_replicas_txn)(range_kv *kv, uint64_t range_id, int step, uint64_t node_id,
                               const struct range_split_txn *txn, struct range_descriptor *out);
} range_kv_ops;

/* The replica change steps (the Raft configuration changes of raft.h that a
** range takes; each applies at generation + 1, the descriptor's replicas
** being the voters). */
typedef enum range_conf_step {
    RANGE_CONF_STEP_ADD_LEARNER = 1, /* voters unchanged */
    RANGE_CONF_STEP_PROMOTE = 2,     /* node appended to the voters */
    RANGE_CONF_STEP_REMOVE = 4,      /* node out of the voters (or learners) */
} range_conf_step;
/* Implementations embed this as their first member. */
struct range_kv {
    const range_kv_ops *ops;
};

/* The range_kv view of a local store; lives as long as s. */
range_kv *range_store_kv(range_store *s);

/* ---- Distributed transactions (docs/txn.md) ---------------------------------
** Raw-keyspace layout on every replica (range-local by key, so a split or a
** snapshot of [a, b) carries exactly the raw spans [PREFIX a, PREFIX b)):
**   RANGE_INTENT_PREFIX key                -> intent (range/intent.c codec)
**   RANGE_TXN_RECORD_PREFIX esc(anchor) id -> record; esc() is an order-
**     preserving, prefix-free escaping of the anchor key (0x00 -> 0x00 0xFF,
**     terminator 0x00 0x01) and id the txn id, 8 bytes big-endian.
*/
#define RANGE_INTENT_PREFIX "range/i/"
#define RANGE_INTENT_PREFIX_LEN 8
#define RANGE_TXN_RECORD_PREFIX "range/t/"
#define RANGE_TXN_RECORD_PREFIX_LEN 8
#define RANGE_TXN_RECORD_EXPIRY_MS 5000 /* a PENDING record (or an intent without one)
                                           older than this may be aborted by a pusher */
#define RANGE_TXN_HEARTBEAT_MS 1000     /* coordinators heartbeat their records */

enum {
    RANGE_ERR_INTENT = -5015,  /* (server) the request met another transaction's
                                  intent it cannot ignore; the answer names it
                                  (the router pushes and resolves, docs/txn.md) */
    RANGE_ERR_ABORTED = -5016, /* the transaction's record is ABORTED (a pusher
                                  aborted it, or it was rolled back): 40001 */
    RANGE_ERR_MERGING = -5017, /* (server) the range is frozen by a merge
                                  (docs/range.md, "Merges"); retryable: the
                                  router backs off, refreshes its descriptors
                                  and asks again within its deadline (40001
                                  when the merge outlasts it) */
    RANGE_ERR_UNCERTAIN = -5018, /* (server) a read with an uncertainty limit
                                    met a committed version in (read_ts,
                                    limit]: the answer names its key and ts
                                    (docs/txn.md section 4, "Uncertainty") */
    RANGE_ERR_GC_THRESHOLD = -5019, /* (server) a read (or a commit's read
                                       timestamp) at or below the range's MVCC
                                       GC threshold: the versions it would see
                                       may be gone (docs/txn.md 6.1, "Version
                                       GC"); not retryable at that timestamp */
};

typedef enum range_txn_status {
    RANGE_TXN_PENDING = 0,
    RANGE_TXN_COMMITTED = 1,
    RANGE_TXN_ABORTED = 2,
} range_txn_status;

/* Who a transaction is, as participants and pushers see it. Bytes borrowed. */
typedef struct range_txn_meta {
    uint64_t txn_id;         /* != 0, unique in the cluster (random 64 bits) */
    uint64_t nonce;          /* idempotence of this commit attempt's requests */
    int64_t priority;        /* higher wins a deadlock; 0: normal */
    const uint8_t *anchor;   /* the record's key: the txn's first write key */
    size_t anchor_len;
    hlc_timestamp read_ts;
    /* end_txn(COMMITTED) only (may be empty): where the txn may hold intents
    ** (range_prepare_result.spans). The COMMITTED record keeps them, merged
    ** into at most RANGE_TXN_RECORD_SPANS_MAX covering spans, so the
    ** leaseholder's GC round can resolve a dead coordinator's intents and
    ** collect the record (docs/txn.md 6.1). */
    const range_span *record_spans;
    size_t n_record_spans;
} range_txn_meta;
#define RANGE_TXN_RECORD_SPANS_MAX 64 /* participant spans a COMMITTED record keeps */

/* prepare: every range holding writes or delete spans of req got a PREPARE
** (intents laid, replicated; reads in it validated up to its prepare ts), the
** anchor's range also created the PENDING record, and every read span of
** req was validated at commit_ts (VALIDATE where a range prepared lower or
** only read). RANGE_OK: commit_ts is the timestamp END_TXN must use.
** Errors: RANGE_ERR_CONFLICT (conflict filled: 40001), RANGE_ERR_ABORTED
** (the record was aborted under us), RANGE_ERR_PUSHED (no common timestamp
** within the attempts), RANGE_ERR_UNAVAILABLE, RANGE_ERR_AMBIGUOUS (some
** PREPARE's fate unknown). On any error the caller aborts: END_TXN(ABORTED)
** then resolve(ABORTED) over `spans` (every range where intents may exist). */
typedef struct range_prepare_result {
    hlc_timestamp commit_ts;
    range_span *spans;  /* owned: range_prepare_result_free; the participant
                           ranges' spans clipped to the txn's writes */
    size_t n_spans;
    base_buf span_bytes; /* owns the spans' key bytes */
} range_prepare_result;
void range_prepare_result_free(range_prepare_result *r);

/* The transaction whose commit trigger a split is (admin_split_txn). Bytes
** borrowed. */
typedef struct range_split_txn {
    uint64_t txn_id;          /* != 0 */
    const uint8_t *anchor;    /* its record's key: inside the left-hand side */
    size_t anchor_len;        /* 1..STORAGE_KEY_SIZE_MAX */
    hlc_timestamp commit_ts;  /* what the prepare answered: the record's */
    uint64_t generation;      /* the range's generation the meta writes assume */
} range_split_txn;

/* The transaction whose commit trigger a merge is (admin_merge_txn). Bytes
** borrowed. */
typedef struct range_merge_txn {
    uint64_t txn_id;           /* != 0 */
    const uint8_t *anchor;     /* its record's key: inside the left-hand side */
    size_t anchor_len;         /* 1..STORAGE_KEY_SIZE_MAX */
    hlc_timestamp commit_ts;   /* what the prepare answered: the record's */
    uint64_t left_generation;  /* L's and R's generations the meta writes assume */
    uint64_t right_generation;
} range_merge_txn;

/* end_txn at the anchor's range: status COMMITTED (at commit_ts) or ABORTED.
** Conditional: a PENDING record (or an absent one, to ABORTED) moves to
** status (COMMITTED over an absent record: RANGE_ERR_ABORTED, nothing
** written: it was collected, docs/txn.md "Garbage collection"); the same final
** status answers RANGE_OK again (idempotent); the other final status answers
** RANGE_ERR_ABORTED (wanted COMMITTED, found ABORTED) or RANGE_OK with
** out->status COMMITTED (wanted ABORTED, found COMMITTED: the caller must then
** treat the txn as committed). RANGE_ERR_AMBIGUOUS when no replica answered. */
typedef struct range_txn_outcome {
    int status;              /* range_txn_status found/written */
    hlc_timestamp commit_ts; /* COMMITTED: the record's */
} range_txn_outcome;

/* resolve: every intent of txn_id in spans becomes a committed value at
** commit_ts (status COMMITTED) or disappears (ABORTED); keys without one are
** untouched. Idempotent. Spans are split by range by the router. */

/* ---- Statement-time locks (docs/txn.md section 5, docs/locking.md) ----------
** lock: an UNREPLICATED exclusive lock on each of keys (point spans, sorted
**   ascending, no duplicates, in any number of ranges) for txn (txn_id,
**   priority, anchor = its record key: the first key it locked or wrote;
**   read_ts). The router splits the keys by range and sends each range its
**   share in key order; a holder in the way is waited for (the leaseholder
**   queues the request for its push delay, then the router pushes the
**   holder at its record with this txn's dependents, for deadlock
**   detection) until granted or the deadline. RANGE_OK: every key is locked
**   and *newest_ts is the newest committed version's timestamp among them
**   (HLC_ZERO: none); above txn->read_ts the caller must refresh before
**   reading them. Locks live in the leaseholders' memory: a lease change
**   loses them (commit validation stays the arbiter). Errors:
**   RANGE_ERR_ABORTED (txn was aborted: a deadlock chose it as victim, the
**   detail names the cycle; or a pusher found it expired), RANGE_ERR_INTENT
**   (a holder stayed in the way until the deadline), RANGE_ERR_UNAVAILABLE...
**   After any error some keys may be locked: the caller releases them
**   (resolve over the keys) like after success.
** heartbeat: create or refresh txn's PENDING record at its anchor's range.
**   RANGE_OK with *status PENDING (or COMMITTED as found);
**   RANGE_ERR_ABORTED with *status ABORTED (the detail names a deadlock
**   cycle when one chose it); or an error (try again later).
** refresh: the reads in spans (made at txn->read_ts) still hold at new_ts:
**   every span is VALIDATEd on (txn->read_ts, new_ts] (and recorded in the
**   timestamp caches at new_ts). RANGE_OK: the txn may read at new_ts from
**   now on. RANGE_ERR_CONFLICT with *conflict filled (a version in a span
**   in that interval), RANGE_ERR_INTENT (an intent at or below new_ts
**   stayed), or an error.
** resolve (above) also releases txn_id's unreplicated locks in its spans,
** whatever the status; a 1PC commit releases the committer's locks in its
** range (the commit's txn_id is the lock holder's). */

/* ---- range descriptors ------------------------------------------------------
** A range covers [start_key, end_key) (end_len 0 = to the end of the key
** space). generation grows by one at every split/merge/replica change of
** the range. replicas: node ids of the voters (a replica's Raft id is its
** node id). The source of truth is the copy the range keeps in its own
** Raft-replicated state; routers cache copies and refresh them from a
** RANGE_ERR_KEY_MISMATCH answer (which carries the replica's current
** descriptor). Keys are owned by the struct: range_descriptor_free. */
#define RANGE_DESC_KEY_MAX 4096
typedef struct range_descriptor {
    uint64_t range_id;
    uint64_t generation;
    uint8_t *start_key; /* owned; NULL when start_len == 0 */
    size_t start_len;
    uint8_t *end_key;   /* owned; NULL when end_len == 0 (= +infinity) */
    size_t end_len;
    uint64_t replicas[RANGE_REPLICAS_MAX];
    size_t n_replicas;
} range_descriptor;
void range_descriptor_free(range_descriptor *d);
/* Deep copy into *dst (dst's previous contents are not freed). */
int range_descriptor_copy(range_descriptor *dst, const range_descriptor *src);
bool range_descriptor_contains(const range_descriptor *d, const uint8_t *key, size_t key_len);
/* Codec (appends / decodes a whole buffer; keys copied into *out). */
int range_descriptor_encode(const range_descriptor *d, base_buf *out);
int range_descriptor_decode(const uint8_t *data, size_t len, range_descriptor *out);

/* ---- range_server: evaluates KV requests at the leaseholder -----------------
** Lives beside a range_node. Requests arrive as rpc requests of method
** RANGE_RPC_METHOD_KV (or in-process through range_server_call when the
** router finds the leaseholder is this node) and are evaluated by a pool of
** worker threads (evaluation blocks on Raft barriers and proposals):
**   - reads (get, scan): lease/ReadIndex barrier on the replica, then wait
**     until no proposed-but-unapplied commit has a timestamp <= read_ts,
**     then read the replica's MVCC store, and record the key (or the span
**     the scan page covered) at read_ts in the range's TIMESTAMP CACHE
**     (while it runs, the read counts as recorded over its whole span).
**   - commit: barrier; idempotence check ((txn_id, nonce) already applied:
**     answer with the commit timestamp it applied at; already proposed:
**     wait for that proposal); optimistic validation against the replica's
**     store and the proposed-but-unapplied commits (as range_commit does);
**     then a timestamp above its floor: read_ts, and what the cache says of
**     the keys and delete spans it writes. The request's commit_ts, when
**     set, is used exactly or refused RANGE_ERR_PUSHED (with the lowest
**     acceptable one); else max(hlc_now, floor + 1). Its read spans are
**     recorded in the cache at that timestamp; propose; answer when applied.
**   - validate (the reads of a commit that writes in another range): record
**     the spans at commit_ts in the cache, then RANGE_ERR_CONFLICT if a
**     version in (read_ts, commit_ts] lies in them (stored, or proposed and
**     unapplied).
**   - a key outside the replica's descriptor: RANGE_ERR_KEY_MISMATCH with the
**     descriptor; not the leader: RANGE_ERR_NOT_LEADER with a hint.
**   - stale reads (stale_ok GET/SCAN, docs/txn.md section 8): the leaseholder
**     serves them as reads; another replica serves them from its own store
**     when the range's closed timestamp it was sent covers read_ts and it
**     applied the log index that came with it, else NOT_LEADER. A closer
**     thread closes the ranges this node leads (config.closed_*) and sends
**     their closed timestamps to the followers (RANGE_RPC_METHOD_CLOSED).
** Lease start: when this replica becomes leader its timestamp cache starts
** empty with the low-water hlc_now + max_offset; no commit it evaluates gets
** a timestamp at or below it, so what the previous leaseholder recorded (at
** timestamps some clock had reached, within max_offset of ours) is never
** invalidated. docs/range.md has the argument.
*/
#define RANGE_RPC_METHOD_KV 0x4B56u /* rpc request method of KV traffic */
#define RANGE_RPC_METHOD_CLOSED 0x4354u /* 'CT': one-way closed timestamps of the
                                           ranges a node leads (docs/txn.md
                                           section 8; kv_int.h has the codec) */
#define RANGE_CLOSED_LAG_MS_DEFAULT 3000  /* closed timestamp = now - this */
#define RANGE_CLOSED_PERIOD_MS_DEFAULT 200 /* closing and publishing period */
typedef struct range_server range_server;
typedef struct range_server_config {
    range_node *node;         /* borrowed; must outlive the server */
    hlc_clock *clock;         /* borrowed */
    int workers;              /* evaluation threads; 0: default 32 */
    int64_t wait_timeout_ms;  /* bound of one barrier/proposal wait; 0: 5000 */
    /* May be NULL. Asked before a read, commit, validate or split is
    ** evaluated: false refuses it with RANGE_ERR_UNAVAILABLE (server/: this
    ** node's clock-offset bound is unavailable, docs/clocks.md). Any thread;
    ** must not block. DESCRIBE and TRANSFER_LEASE are always served. */
    bool (*may_serve)(void *ctx);
    void *may_serve_ctx;
    /* Closed timestamps (docs/txn.md section 8). transport (borrowed, may be
    ** NULL: nothing published) carries RANGE_RPC_METHOD_CLOSED messages to
    ** the followers of the ranges this node leads; a timer thread of the
    ** server closes and publishes every closed_period_ms (0: default), at
    ** hlc_now - closed_lag_ms (0: default; < 0: never closes, and follower
    ** reads are never served here either). */
    rpc_transport *transport;
    int64_t closed_lag_ms;
    int64_t closed_period_ms;
    /* RESOLVE bounds (docs/txn.md 3.3; 0: the defaults, 512 KiB and 64):
    ** the raw bytes of one round's command and the rounds of one request
    ** (then it answers how far it got). Tests make them tiny. */
    size_t resolve_bytes_max;
    int resolve_rounds_max;
    /* Version GC (docs/txn.md 6.1, "Version GC"): the GC TTL in seconds (the
    ** cluster setting gc_ttl_seconds), asked at each GC round (the server's
    ** GC thread; must not block). NULL: RANGE_GC_TTL_SECONDS_DEFAULT; a
    ** value <= 0: no version GC. */
    int64_t (*gc_ttl_seconds)(void *ctx);
    void *gc_ttl_ctx;
} range_server_config;
#define RANGE_GC_TTL_SECONDS_DEFAULT 14400 /* 4 h, as CockroachDB's gc.ttlseconds */
/* owner of *out: caller, range_server_free. */
int range_server_new(const range_server_config *config, range_server **out);
/* The node stops: every wait of an evaluation ends now (its request answers
** as at shutdown: RANGE_ERR_UNAVAILABLE, RANGE_ERR_AMBIGUOUS for a proposal
** in flight), new requests and range_server_call answer
** RANGE_ERR_UNAVAILABLE, the workers stop taking jobs. Idempotent, never
** blocks; range_server_free must still follow. */
void range_server_shutdown(range_server *s);
/* Stops the workers (queued requests answered RANGE_ERR_UNAVAILABLE). */
void range_server_free(range_server *s);
/* The key space (a router: range_router_kv; borrowed) through which the GC
** round resolves the intents of COMMITTED records whose coordinator never
** collected them (docs/txn.md 6.1); NULL (the default): such records stay.
** Setting NULL waits for a resolution in progress to end, so the caller may
** free the old key space afterwards. Any thread but the server's own. */
void range_server_set_resolver(range_server *s, range_kv *kv);
/* Hand an rpc request of method RANGE_RPC_METHOD_KV to the server (from the
** transport's handler; copies what it keeps; answers later with rpc_respond
** on transport t). A one-way message of method RANGE_RPC_METHOD_CLOSED is
** taken in at once (never blocks on the node; malformed: dropped, logged). */
void range_server_handle_rpc(range_server *s, rpc_transport *t, const rpc_message *msg);
/* Counters since range_server_new (tests, metrics, SHOW follower_reads). */
typedef struct range_server_stats {
    uint64_t follower_reads;    /* stale reads served here as a follower */
    uint64_t follower_refusals; /* stale reads refused here (not closed, behind) */
    uint64_t closed_sent;       /* side-transport messages sent */
    uint64_t closed_received;   /* side-transport messages taken in */
    uint64_t closed_dropped;    /* malformed ones dropped */
} range_server_stats;
void range_server_get_stats(range_server *s, range_server_stats *out);
/* A range's load at this server (docs/range.md, "Load"): the GETs and SCAN
** pages (reads) and COMMITs and PREPAREs (writes) it evaluated, as rates
** decayed with a 10 s half-life at the clock's physical time now, and the
** load-split finder's suggested key (split_key may be NULL; reset, then
** the key, empty when none: caller-owned buffer). A split here starts the
** range's load over. RANGE_OK, RANGE_NOT_FOUND (nothing of range_id
** evaluated here), RANGE_ERR_NOMEM. */
int range_server_get_load(range_server *s, uint64_t range_id, double *reads_per_second,
                          double *writes_per_second, base_buf *split_key);
/* In-process call: request bytes in, response status and bytes out (owner:
** caller's buffer), evaluated on the calling thread. */
int32_t range_server_call(range_server *s, const uint8_t *req, size_t req_len, base_buf *resp);
/* Whether this server's replica of range_id is frozen by a merge (as
** applied; docs/range.md, "Merges"): *merge_id != 0 then. RANGE_OK,
** RANGE_ERR_NOT_LEADER (no replica here). *leads (may be NULL): this replica
** leads the range now. server/'s merge watchdog. */
int range_server_frozen(range_server *s, uint64_t range_id, uint64_t *merge_id, bool *leads);

/* range_node: when config.transport's handler must be shared (server/
** dispatches rpc methods itself), set no_handler and forward Raft messages
** here. Returns true when the message was a Raft message it consumed. */
bool range_node_handle_rpc(range_node *n, rpc_transport *t, const rpc_message *msg);

/* ---- range_router: the cluster's range_kv -----------------------------------
** Finds the range of a key from its descriptor cache, sends the request to
** the cached leaseholder (in-process when it is this node), and on
** RANGE_ERR_NOT_LEADER (hint), RANGE_ERR_KEY_MISMATCH (new descriptor),
** timeouts and disconnections retries elsewhere with backoff, within a
** deadline. Scans crossing range boundaries continue in the next range;
** long scans are paged. A commit whose writes and delete spans lie in one
** range W is sent there; its reads in other ranges are first VALIDATEd
** there at a timestamp W must then commit at exactly (pushed: validate
** again at the new one, a bounded number of times, then RANGE_ERR_PUSHED).
** Writes in several ranges: RANGE_ERR_CROSS_RANGE from commit; prepare,
** end_txn and resolve run two-phase commit (docs/txn.md). A commit that may
** have been proposed is retried with the same (txn_id, nonce), so its
** outcome is decided by the server's idempotence check; only when no
** replica can answer before the deadline is it RANGE_ERR_AMBIGUOUS.
** Thread-safe: one router serves every session of a node.
*/
typedef struct range_router range_router;
typedef struct range_router_config {
    rpc_transport *transport;  /* borrowed */
    hlc_clock *clock;          /* borrowed */
    range_server *local;       /* borrowed, may be NULL: this node's server */
    uint64_t local_node_id;
    int64_t deadline_ms;       /* per operation (a commit call is one); 0: 10000 */
    int64_t rpc_timeout_ms;    /* per attempt; 0: default 2000 */
    uint64_t random_seed;      /* nonces and backoff jitter; 0: from getrandom */
    /* Every node this one knows of (peer table, liveness), asked for its
    ** view of the first range when none of the cached replicas of it
    ** answers for it any more (they moved; docs/range.md "Routing never
    ** depends on meta"). May be NULL: the nodes the cache names are asked.
    ** Writes at most cap ids into out and returns how many; called on
    ** session threads without router locks held; must not block long. */
    size_t (*known_nodes)(void *ctx, uint64_t *out, size_t cap);
    void *known_nodes_ctx;     /* borrowed */
} range_router_config;
/* owner of *out: caller, range_router_free (after every call returned). */
int range_router_new(const range_router_config *config, range_router **out);
/* The node stops: every operation in progress, and every one started later,
** ends within grace_ms from now (its deadline shortened; the usual errors
** of a deadline: RANGE_ERR_UNAVAILABLE, RANGE_ERR_AMBIGUOUS for a commit of
** unknown fate, RANGE_ERR_INTENT...), plus at most one attempt in flight
** (rpc_timeout_ms). Irreversible; a later call only moves the end earlier.
** Any thread; never blocks. */
void range_router_shutdown(range_router *r, int64_t grace_ms);
void range_router_free(range_router *r);
/* The range_kv view; lives as long as r. */
range_kv *range_router_kv(range_router *r);
/* Add or replace (by range id, when the generation is >= the cached one)
** a descriptor in the cache (bootstrap, meta lookups). Copied. */
int range_router_update_descriptor(range_router *r, const range_descriptor *d);
/* Copy of the cached descriptors (sorted by start key) with the cached
** leaseholder of each (0 unknown). owner: caller, base_free(*descs) after
** range_descriptor_free on each. */
int range_router_snapshot(range_router *r, range_descriptor **descs, uint64_t **leaseholders,
                          size_t *n);
/* Counters since range_router_new (tests, metrics, node status). */
typedef struct range_router_stats {
    uint64_t commits;         /* commits acknowledged by a leaseholder */
    uint64_t conflicts;       /* commits refused RANGE_ERR_CONFLICT */
    uint64_t attempts;        /* requests sent (rpc or in-process) */
    uint64_t local_calls;     /* of which in-process (range_server_call) */
    uint64_t retries;         /* attempts after the first of an operation */
    uint64_t redirects;       /* RANGE_ERR_NOT_LEADER hints followed */
    uint64_t failovers;       /* moves to the next replica (timeout, disconnect, busy...) */
    uint64_t descriptor_refreshes; /* RANGE_ERR_KEY_MISMATCH answers installed */
    uint64_t cross_range;     /* commits refused RANGE_ERR_CROSS_RANGE */
    uint64_t ambiguous;       /* commits ended RANGE_ERR_AMBIGUOUS */
    uint64_t unavailable;     /* operations ended RANGE_ERR_UNAVAILABLE */
    uint64_t scan_pages;      /* scan pages fetched */
    uint64_t meta_lookups;    /* cache misses looked up in meta */
    uint64_t first_rescues;   /* every known node asked for a range whose cached
                                 replicas all refused it (the first range, or any) */
    /* stale reads (docs/txn.md section 8): GETs and scan pages asked, those
    ** answered by this node's own replica, and those it refused (sent on to
    ** the leaseholder) */
    uint64_t stale_reads;
    uint64_t stale_local;
    uint64_t stale_fallbacks;
} range_router_stats;
void range_router_get_stats(range_router *r, range_router_stats *out);
/* Hand range_id's lease to node target (a voter of it; docs/range.md,
** "Lease transfer"), at the cached leaseholder, following redirects.
** RANGE_OK once the old leaseholder saw target take over (the cache then
** names target); RANGE_ERR_INVALID (target not a voter), RANGE_NOT_FOUND
** (range not in the cache), RANGE_ERR_UNAVAILABLE (no transfer completed
** by the deadline), RANGE_ERR_MERGING (frozen by a merge: at once),
** RANGE_ERR_NOMEM... with the thread's error detail. */
int range_router_transfer_lease(range_router *r, uint64_t range_id, uint64_t target);
/* Move range_id's replicas (docs/range.md, "Replica changes and snapshots"):
** node `add` becomes a voter (it gets the range by a snapshot), then node
** `remove` leaves (its replica deletes its data); either may be 0, not both.
** Sent to the cached leaseholder (by the range's start key), following
** redirects; the leaseholder does it one Raft configuration change at a
** time. RANGE_OK with the new descriptor installed in the cache and copied
** into *out (may be NULL; owner: caller, range_descriptor_free);
** RANGE_NOT_FOUND (range not cached), RANGE_ERR_INVALID (add == remove, the
** last voter, a range whose log starts at 1), RANGE_ERR_UNAVAILABLE (not
** done by the deadline: calling again goes on from where the range is),
** RANGE_ERR_MERGING (frozen by a merge: at once), RANGE_ERR_NOMEM... with
** the thread's error detail. Meta is not written
** here (the plain path, for tests and tools): txn_db_change_replicas makes
** each step the commit trigger of a transaction writing meta(range)
** (docs/decisions/010-atomic-meta.md, item 8) through
** range_kv_ops.change_replicas_txn; server/ still rewrites stale entries
** of the ranges its node leads (within its repair period). */
int range_router_change_replicas(range_router *r, uint64_t range_id, uint64_t add,
                                 uint64_t remove, range_descriptor *out);
/* Merges (docs/range.md, "Merges"): merge the range R starting at key into
** the range L ending there: both must have the same voters and no learners.
** SUBSUME at R's leaseholder (R frozen), WAIT_APPLIED at every voter of R,
** ADMIN_MERGE at L's leaseholder; a failure after SUBSUME fences the merge
** in the range below key and unfreezes R (range_router_abandon_merge). The
** new L is installed in the cache (R dropped). Results and errors as
** range_kv_ops.admin_merge; the thread's error detail is set. */
int range_router_admin_merge(range_router *r, const uint8_t *key, size_t key_len,
                             range_descriptor *left, range_descriptor *right);
/* Abandon a merge of right_range_id (whose start key is start) frozen with
** merge_id: FENCE it in the range holding the key just below start; when
** that range does not hold start after the fence, UNFREEZE right_range_id.
** RANGE_OK (R serves again, or the merge had happened: *merged true); else
** the router's errors. */
int range_router_abandon_merge(range_router *r, uint64_t right_range_id,
                               const uint8_t *start, size_t start_len, uint64_t merge_id,
                               bool *merged);


/* ---- splits and meta addressing (docs/range.md, "Splits and addressing") ---
** Descriptors of every range live in meta keys, system keys of range 1
** (docs/cluster.md "System keys"; range/meta.c has the layout):
**   RANGE_META_PREFIX 0x01 end_key -> descriptor of the range ending there
**   RANGE_META_PREFIX 0x02         -> descriptor of the range ending at +inf
** New range ids come from the replicated counter RANGE_ID_COUNTER_KEY
** (value: RANGE_ID_COUNTER_SIZE bytes, range_id_counter_encode), written by
** bootstrap and advanced by every split (txn_db_split_at). */
#define RANGE_META_PREFIX "\0\0\0\0\0\0\0\0smeta/"
#define RANGE_META_PREFIX_LEN 14
#define RANGE_ID_COUNTER_KEY "\0\0\0\0\0\0\0\0scounter/range-id"
#define RANGE_ID_COUNTER_KEY_LEN 25
#define RANGE_ID_COUNTER_SIZE 9 /* version byte, u64 next id (big-endian, != 0) */

/* The meta key of d (by its end key) into out (reset first). RANGE_OK,
** RANGE_ERR_INVALID, RANGE_ERR_NOMEM. */
int range_meta_key(const range_descriptor *d, base_buf *out);
typedef enum range_meta_lookup {
    RANGE_META_HOLDING = 0, /* the range holding key */
    RANGE_META_BEFORE = 1,  /* the range holding the greatest key < key (key non-empty) */
    RANGE_META_LAST = 2,    /* the range ending at +infinity (key ignored) */
} range_meta_lookup;
/* The meta span whose FIRST row (forward scan of [start, end)) is the
** answer, into start and end (reset first). RANGE_OK, RANGE_ERR_INVALID,
** RANGE_ERR_NOMEM. */
int range_meta_lookup_span(const uint8_t *key, size_t key_len, range_meta_lookup mode,
                           base_buf *start, base_buf *end);
bool range_meta_is_key(const uint8_t *key, size_t key_len);
/* Should a meta entry holding *stored (NULL: none) be overwritten with
** *ours (same meta key)? Yes when it is missing, an older generation of the
** same range, another range that still covers ours' start (the range we
** were split from), or another range whose start lies inside ours at a
** lower generation (a range ours subsumed by a merge: a merged range's
** generation is above both sides', a split's right side is above its
** parent's). Never moves meta backwards. */
bool range_meta_replaces(const range_descriptor *stored, const range_descriptor *ours);
void range_id_counter_encode(uint64_t next, uint8_t out[RANGE_ID_COUNTER_SIZE]);
/* RANGE_OK, RANGE_ERR_CORRUPT. */
int range_id_counter_decode(const uint8_t *p, size_t len, uint64_t *next);

#endif
