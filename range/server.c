/*
** range/server.c: the range_server, which evaluates KV requests (kv_int.h)
** at the leaseholder of a range, on this node's Raft replica of it
** (range/range.h, "range_server"; docs/range.md, "Leaseholder evaluation").
**
** Requests come from the transport's handler (range_server_handle_rpc: a
** bounded queue, SERVER_QUEUE_MAX, served by config.workers threads) or
** from range_server_call on the caller's thread. Evaluation blocks (Raft
** barriers, proposals), which is why it never runs on a transport thread.
**
** Per range the server keeps a server_range: the term it last saw this
** replica lead in, the TIMESTAMP CACHE of that term (tscache_int.h: the
** highest timestamp each key was read at, above the low-water mark set when
** the term was first seen), the READS IN FLIGHT (each with the span it may
** read and its timestamp), and the PENDING commits: proposed, not yet
** resolved, each with its write set (keys only) and commit timestamp.
**
** Critical invariants:
**   - BARRIER FIRST. Every read and commit starts with a barrier
**     (range_replica_read, lease or ReadIndex) completed in one term T in
**     which this replica leads (the term is read before and after it). The
**     local store then holds every acknowledged write, and every entry of a
**     term < T that will ever apply has applied (replica.c, "SETTLED BY A
**     LATER TERM"), so the idempotence records are definitive for them.
**   - LOW WATER. The first time a barrier shows this replica leading in a
**     term newer than the last one seen, the range's timestamp cache is
**     emptied with low-water hlc_now + max_offset (under s->mu), before any
**     commit of that term is evaluated. The HLC is NOT pushed to it (its
**     frames would then run up to max_offset ahead of every peer:
**     REMOTE_AHEAD on each failover); instead COMMIT WAIT: a commit is
**     answered only once the physical clock is past its timestamp (bounded
**     by SERVER_COMMIT_WAIT_MAX_OFFSETS max_offsets), so a client starting
**     after the answer with a clock like ours reads above it (real-time
**     order; across clocks that differ by epsilon this is issue 5's commit
**     wait).
**   - NO WRITE UNDER A READ. A commit's timestamp is > its read_ts and >
**     its FLOOR: what the cache answers for its written keys and delete
**     spans (the low-water included) and the timestamp of every read in
**     flight over them. Server-picked: max(hlc_now, next(floor)); fixed by
**     the request: accepted only when above the floor, else RANGE_ERR_PUSHED
**     with next(floor). The floor, the timestamp, the recording of the
**     commit's read spans in the cache at that timestamp and the
**     registration as pending are ONE s->mu critical section.
**   - READS NEVER MISS A COMMIT AT OR BELOW THEIR TIMESTAMP. A read links
**     itself into its range's reads in flight, then (same s->mu section)
**     waits until no pending commit with ts <= read_ts writes inside its
**     span (one that writes elsewhere cannot change what it reads), reads,
**     and (under s->mu) records the span it covered in the cache and
**     unlinks. A commit
**     not registered when the read looked computes its floor later: the
**     read is in flight (floor >= read_ts) or in the cache (likewise), so
**     the commit lands above read_ts. hlc_update(read_ts) is kept (it costs
**     nothing: every rpc frame does as much) but nothing relies on it.
**   - VALIDATE records first, then looks: its read spans go into the cache
**     at its commit_ts, then (same s->mu section) pending commits at or
**     below commit_ts that touch them are conflicts, then storage is
**     checked for versions in (read_ts, commit_ts]. A commit registered
**     later lands above commit_ts; one registered earlier is pending at
**     the look or, having left the list, in storage (it left by applying)
**     or will never apply from that proposal (DROPPED; a re-evaluation is
**     a later registration).
**   - A PENDING RECORD LEAVES ONLY WHEN ITS PROPOSAL RESOLVES (callback OK:
**     applied; DROPPED: can never apply from this proposal). Proposals have
**     no deadline (replica__propose), so a record never leaves while its
**     entry may still apply; a worker that stops waiting (timeout) answers
**     RANGE_ERR_AMBIGUOUS and leaves the record to the callback.
**   - COMMIT EVALUATION IS SERIAL PER RANGE (server_range.eval_mu) from the
**     pending-by-key and idempotence checks through validation to the
**     registration of the record and the proposal; the wait for apply is
**     outside it, so commits pipeline. Validation checks the pending
**     records before storage: a record can only leave the pending set by
**     reaching storage, and none can join while eval_mu is held.
**   - A RETRY IS NEVER APPLIED TWICE AND ALWAYS ANSWERS THE APPLIED
**     TIMESTAMP: (txn_id, nonce) pending -> wait for that proposal; applied
**     (record) -> the stored commit timestamp; DROPPED -> a fresh barrier
**     then the record decides. Apply itself is idempotent too (replica.c).
**   - A SPLIT WITH A TRANSACTION (docs/decisions/010-atomic-meta.md) is
**     its commit trigger: inside the gate, a range no longer at the
**     request's generation, an anchor outside [start, key) or a record not
**     PENDING answers RANGE_ERR_ABORTED unproposed; apply decides again
**     from the record (replica.c), since a pusher may abort it meanwhile.
**     A MERGE WITH A TRANSACTION likewise: ADMIN_MERGE with L not at the
**     request's generation, an anchor outside L or a record not PENDING
**     answers RANGE_ERR_ABORTED unproposed (the router then fences and
**     unfreezes R); a refused MERGE makes the retry find it not PENDING.
**   - THE SPLIT GATE (docs/range.md, "Splits and addressing"). Reads,
**     VALIDATEs and commit evaluations pass the range's gate after their
**     barrier and check the descriptor only inside it; a commit leaves it
**     once proposed. A split closes the gate (new entrants wait), waits
**     until every op inside has left, proposes the split with the floor of
**     the right-hand side (the cache's maximum over [split key, end): every
**     timestamp this leaseholder recorded there), waits for it to apply
**     here, then opens the gate. So no read of the right-hand span is
**     served here after the split was proposed (entrants then see the new
**     descriptor: KEY_MISMATCH), every commit evaluated here against the
**     old shape is in the log before the split (applied before the right
**     range exists on any node), and the right range's first leaseholder
**     starts its cache above everything recorded here (its low-water is at
**     least that floor). Replicas also refuse, at apply, a command with a
**     write outside their descriptor (replica.c).
**   - THE MERGE GATE (docs/range.md, "Merges"). SUBSUME closes R's gate as
**     a split does, waits until it is empty, takes the FLOOR (the cache's
**     maximum over R, low-water included, and hlc_now), proposes FREEZE and
**     waits for its apply before opening the gate again. Entrants check the
**     frozen state (as applied) INSIDE the gate and leave with
**     RANGE_ERR_MERGING, and every other request on a frozen replica is
**     answered so before evaluation (but SUBSUME, DESCRIBE, WAIT_APPLIED,
**     UNFREEZE, MERGE_FENCE): nothing is served from R after the floor. A
**     new leaseholder sees the freeze after its barrier. The closer never
**     closes a frozen range (L may write over R's span above the floor).
**     ADMIN_MERGE closes L's gate, proposes MERGE only when its own R is
**     frozen for that merge and applied the freeze, and adds R's span at the
**     floor to L's cache before opening the gate. A request for a range this
**     node no longer hosts (merged away) is answered KEY_MISMATCH with the
**     local range holding its key, when there is one; for MERGE_FENCE and
**     ADMIN_MERGE, which go to the range BELOW R's start, the local range
**     holding the greatest key below it (a router whose cache still names a
**     left merged away since must learn its successor, or a fence retries
**     a dead range until its deadline and R stays frozen); so for a
**     DESCRIBE with a key (below it, with key_below). MERGE_FENCE answers
**     OK only from a range holding the key below R's start once the fence
**     applied (else KEY_MISMATCH naming that range, when here), with
**     `merged` = that range holds R's start OR replica__merge_applied (L
**     may have split again at R's start since the merge).
**   - INTENTS (two-phase commit, docs/txn.md; raw keys in intent_int.h).
**     A PREPARE is evaluated as a COMMIT (idempotence, validation, floor,
**     timestamp, read spans cached, registered as pending with its write
**     set) but proposes intents instead of values. Readers look for
**     intents before reading values (a resolution swaps one for the other
**     in one batch, so this order never misses both): GET/SCAN meet those
**     at <= read_ts (<= their uncertainty limit when they carry one, and
**     then a committed version in (read_ts, limit] of what they answer for
**     is RANGE_ERR_UNCERTAIN naming it: "UNCERTAINTY"), VALIDATE those at <= commit_ts, COMMIT/PREPARE every
**     one on keys they write and those in their read spans (at <= a fixed
**     commit_ts, else all), except their own: RANGE_ERR_INTENT naming it.
**     Intents are laid only by PREPAREs serialized under eval_mu, and one
**     proposed but unapplied is still a pending commit, so a check under
**     eval_mu plus the pending list misses none.
**   - RECORDS change only through conditional raw writes decided at apply
**     (range__record_transition_ok: a final record never changes), so
**     END_TXN, PUSH and HEARTBEAT racing each other, or proposals of two
**     leaseholders, cannot move a record back; each answers the record as
**     stored after its own write applied. RESOLVE's raw writes recheck the
**     intent's holder at apply, so a duplicate resolution is a no-op.
**   - A FINAL RECORD LEAVES only by GC_TXN (the coordinator resolved every
**     intent, or THE SWEEP OF COMMITTED RECORDS did): a DELETE proposed
**     under eval_mu after reading it final (it cannot change in between).
**     END_TXN(COMMITTED) never creates a record from absent (a late
**     duplicate after the GC answers ABORTED), so a
**     collected txn is never committed again (docs/txn.md, "Garbage
**     collection").
**   - THE AGE SWEEP (docs/txn.md 6.1). No record is created (HEARTBEAT,
**     PREPARE create_record: both answer ABORTED) for a txn whose read_ts is
**     older than now - RANGE_TXN_RECORD_GC_AGE_MS; a record remembers when
**     it became final (final_wall_ns, the leaseholder's clock). So an
**     ABORTED record final for longer than that age plus
**     SERVER_RECORD_SWEEP_MARGIN_MS (clock offsets) belongs to a txn that
**     can never make a record again: the GC round collects it through the
**     GC_TXN path (gc_decide, under eval_mu). COMMITTED records never go by
**     age (their intents may be unresolved; a missing record reads as
**     "abort"), only by:
**   - THE SWEEP OF COMMITTED RECORDS (docs/txn.md 6.1). A COMMITTED record
**     written by END_TXN with the txn's participant spans (version 3) and
**     final for SERVER_COMMITTED_SWEEP_AGE_MS has its spans RESOLVEd
**     (committed, at its ts) through the server's resolver (a range_kv set
**     by range_server_set_resolver; none: nothing happens); only when all
**     answered OK is it deleted through the GC_TXN path
**     (committed_sweep_decide, under eval_mu). Every intent of the txn
**     lies in those spans and none is laid after END_TXN(COMMITTED), so no
**     intent outlives its record. Bounded per range and round (count, time).
**   - IDEMPOTENCE GC (replica_int.h): the GC round proposes, for each range
**     it leads, a threshold now - RANGE_IDEMPOTENCE_GC_AGE_MS (only above
**     the range's current one); the replicas refuse and collect by it.
**   - VERSION GC (docs/txn.md 6.1, "Version GC"). The GC round (its own
**     thread) takes T = now - gc_ttl_seconds, and under s->mu, in the term
**     of its barrier, lowers it below every registered commit and raises the
**     cache's low-water to it: T is closed (no commit registered from then
**     on, nor any later leaseholder's, takes a timestamp <= T). Only above
**     the range's current threshold it proposes the keys with garbage at T
**     (replica_int.h, "version GC"); every replica drops the same versions.
**     A GET or SCAN (leaseholder or follower) whose read_ts is <= the
**     replica's threshold AFTER its read is refused RANGE_ERR_GC_THRESHOLD
**     (the replica publishes the raised threshold, lock-free, BEFORE the
**     batch dropping the versions is written, so a read that sees it below
**     read_ts afterwards missed nothing: replica__mvcc_gc_threshold), and
**     so is a COMMIT, PREPARE or VALIDATE whose read_ts is <=
**     it after its validation, before any proposal (the validation could
**     miss a dropped tombstone above read_ts).
**   - LOCKS (docs/locking.md, "Wiring"). Each range has a lock table and a
**     txnwait queue (pure structures, called under s->mu; their events are
**     routed at once to the waiting workers, server_lock_wait and
**     server_push_wait, or to parked requests). They hold only what this
**     lease saw: a barrier that finds a newer term, one that finds this
**     replica not leading, and a lease transfer clear both (waiters are told
**     ABANDONED and answer UNAVAILABLE: retry). LOCK acquires under
**     eval_mu, and COMMIT/PREPARE check other txns' UNREPLICATED locks on
**     what they write under eval_mu too, so a commit is either refused by
**     a granted lock or pending when the lock is granted (LOCK then waits
**     for it, so newest_ts counts it). Locks never block reads. A LOCK
**     waits at most the push delay in all (the workers are few); a lock
**     request that times out behind an unreplicated lock stays queued,
**     PARKED, for SERVER_LOCK_PARK_MS, and its txn's next LOCK of the key
**     resumes it (FIFO across the client's push). Likewise a txn's PUSH
**     that waited its bound stays queued for SERVER_PUSH_PARK_MS (or until
**     its next push here), so QUERY_TXN keeps reporting its edge between
**     the client's pushes and deadlock detection sees every waiter. A
**     txn's locks go with its 1PC COMMIT (all, this range), its RESOLVE
**     (its spans, both kinds) and an ABORTED record written here (all
**     ranges of this server). The FINISHED memo (per server, bounded) tells pushers about
**     txns that ended without a record to read, and a deadlock's victim
**     its cycle (its push, heartbeat, QUERY_TXN and LOCK answer
**     RANGE_ERR_ABORTED; its heartbeat writes its record ABORTED).
**   - CLOSED TIMESTAMPS (docs/txn.md section 8). Every closed_period_ms the
**     closer thread, for each range this replica leads with a valid lease,
**     proves it with a barrier (the lease when its ticks are fresh, else a
**     quorum round: a paused process's stale ticks prove nothing; the
**     barrier also starts the term's LOW WATER on an idle range), then
**     under s->mu takes c = hlc_now - closed_lag_ms, raises the cache's
**     low-water to c (so every commit registered afterwards lands above c:
**     NO WRITE UNDER A READ's floor) and closes
**     closed = min(c, prev(lowest pending commit ts)). Only after leaving
**     s->mu it reads L = the replica's last index, still leading in the same
**     term with a valid lease: every entry that will ever apply with a write
**     at <= closed is at an index <= L (the registered ones are pending or
**     resolved; earlier terms' are in this leader's log). (closed, L, term)
**     goes to every other replica's node (RANGE_RPC_METHOD_CLOSED) and into
**     this server's own table, only if the proof is younger than half the
**     lag: a later leaseholder's lease starts after the proof and its
**     low-water (now + max_offset) is above c, so none of its writes lands
**     at <= closed. A RESOLVE may write at <= closed later, but
**     only a value whose intent (at <= its ts) a reader at >= it meets and
**     pushes: the usual intent path.
**   - FOLLOWER READS. A stale-ok GET/SCAN at a replica that does not lead
**     is served from its store, with no barrier and nothing recorded in any
**     cache, only when read_ts <= the range's closed timestamp it holds
**     (the newest term's highest: each pair is true on its own, so keeping
**     one suffices; an older term's is ignored) and its applied index >=
**     that pair's L;
**     intents are checked as at the leaseholder; the descriptor is read
**     before and after (a split or removal in between: NOT_LEADER). Else
**     RANGE_ERR_NOT_LEADER with the leader hint.
**   - Lock order: eval_mu -> node mutex -> s->mu. Node callbacks (barrier,
**     proposal) run under the node mutex and take only s->mu; nothing calls
**     into the node while holding s->mu.
**   - LOAD (docs/range.md, "Load"; loadsplit_int.h). Every GET, SCAN page,
**     COMMIT and PREPARE evaluated here (answered, or refused by a
**     conflict, a push or an intent) is recorded in its range's load under
**     the range's load_mu, a leaf lock taken under nothing else; a split
**     here starts the range's load over. Time is the clock config's
**     physical time, the finder's randomness a per-range PRNG seeded from
**     getrandom.
** Limits: SERVER_QUEUE_MAX queued requests, SERVER_WORKERS_MAX threads,
** the timestamp cache's RANGE_TSCACHE_ENTRIES_MAX / _KEY_BYTES_MAX per range,
** reads in flight by the threads evaluating (one each),
** SERVER_COMMIT_ATTEMPTS_MAX evaluations per commit, SERVER_BARRIER_
** ATTEMPTS_MAX barriers per request, RANGE_NODE_REPLICAS_MAX ranges,
** pending records bounded by the replica's RANGE_PROPOSALS_PENDING_MAX,
** scan pages by RANGE_KV_SCAN_ROWS_MAX rows and SERVER_SCAN_BYTES_MAX,
** intents examined per check by RANGE__INTENT_SCAN_MAX, a PUSH's wait by
** SERVER_PUSH_WAIT_MS, a RESOLVE by SERVER_RESOLVE_ROUNDS_MAX commands,
** a LOCK's waits by the push delay, SERVER_PARKED_MAX parked requests,
** SERVER_PUSH_PARKED_MAX parked pushes
** SERVER_LOCK_TXNS_MAX holders' anchors per range, SERVER_FINISHED_MAX
** remembered endings per server, SERVER_CLOSED_MAX closed timestamps held,
** one side-transport message per node per closed_period_ms, and the lock
** table's and txnwait's own bounds (locktable_int.h, txnwait_int.h).
*/
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "range/eval_int.h"
#include "range/kv_int.h"
#include "range/loadsplit_int.h"
#include "range/locktable_int.h"
#include "range/replica_int.h"
#include "range/tscache_int.h"
#include "range/txnwait_int.h"

#define SERVER_QUEUE_MAX 4096           /* rpc requests waiting for a worker */
#define SERVER_WORKERS_MAX 256
#define SERVER_DEFAULT_WORKERS 32
#define SERVER_DEFAULT_WAIT_MS 5000
#define SERVER_COMMIT_ATTEMPTS_MAX 8    /* evaluations of one commit (DROPPED, new term) */
#define SERVER_BARRIER_ATTEMPTS_MAX 4   /* barriers whose term moved under them */
#define SERVER_SCAN_BYTES_MAX (RPC_FRAME_PAYLOAD_MAX / 2) /* a page fits a frame */
#define SERVER_TOMBSTONE_SKIP_MAX 1000000 /* guard: AT_TS iteration skips them itself */
#define SERVER_COMMIT_WAIT_MAX_OFFSETS 2 /* commit wait bound, in max_offsets */
#define SERVER_COUNTERS 5
#define SERVER_TRANSFER_POLL_MS 5       /* leadership changes signal nothing here: recheck */
#define SERVER_PUSH_WAIT_MS 500         /* a PUSH of a live PENDING txn waits this long at most */
#define SERVER_PUSH_POLL_MS 20          /* and rereads the record at least this often */
#define SERVER_RESOLVE_ROUNDS_MAX 64    /* commands of one RESOLVE (each up to
                                           RANGE_COMMAND_WRITES_MAX intents and
                                           SERVER_RESOLVE_BYTES_MAX bytes) */
#define SERVER_RESOLVE_BYTES_MAX (512u << 10) /* raw keys of one RESOLVE command: its
                                           Raft entry stays well under the 1 MiB
                                           raft_config.max_entry_bytes */
#define SERVER_RESOLVE_REQUEST_MS 1000  /* no new round of a RESOLVE after this long
                                           (answer: resolved up to a key, the caller
                                           asks again from there) */
#define SERVER_INTENT_POINTS_MAX 16     /* point keys of a COMMIT/PREPARE looked up one by
                                           one for intents, without the bounding seek */
#define SERVER_RESOLVE_COMPACT_MIN 1000 /* intents one RESOLVE request resolved from which
                                           it asks the engine to compact their deleted
                                           keys (in the background, storage.h) */
#define SERVER_PREPARE_HOLDERS_MAX 1024  /* written keys of a PREPARE made lock holders
                                           (a larger one leaves them to storage) */
#define SERVER_LOCK_PARK_MS 600         /* a timed-out lock request keeps its place this
                                           long (a push is SERVER_PUSH_WAIT_MS) */
#define SERVER_PARKED_MAX 256           /* parked lock requests per range */
#define SERVER_PUSH_PARK_MS 1000        /* a txn's push that waited its bound stays queued
                                           this long (its client's next push, after
                                           ROUTER__LOCK_PUSH_AFTER_MS of LOCKs, replaces it) */
#define SERVER_PUSH_PARKED_MAX 64       /* parked pushes per range */
#define SERVER_LOCK_TXNS_MAX 1024       /* holders' anchors kept per range */
#define SERVER_LOCK_ATTEMPTS_MAX 4      /* acquisitions of one key in one LOCK */
#define SERVER_FINISHED_MAX 256         /* ended transactions remembered per server */
#define SERVER_CLOSED_MAX RANGE_NODE_REPLICAS_MAX /* closed timestamps kept (ranges) */

_Static_assert(RANGE_KV_DEPS_MAX == RANGE_TXNWAIT_DEPS_MAX, "deps on the wire = the queue's");
_Static_assert(RANGE_KV_CYCLE_MAX == RANGE_TXNWAIT_CYCLE_MAX, "cycles on the wire = the queue's");

typedef struct server_job {
    rpc_transport *t; /* borrowed: the owner keeps it alive while the server runs */
    rpc_node_id from;
    uint64_t request_id;
    size_t len;
    uint8_t payload[]; /* the request bytes (copied) */
} server_job;

struct server_range;

/* A proposed commit not yet resolved. Owner: the server; freed by whoever
** sees it both resolved (done) and unreferenced (refs 0): the proposal
** callback or the last waiting worker; at shutdown, range_server_free. */
typedef struct server_pending {
    range_server *server;
    struct server_range *range;
    uint64_t txn_id, nonce;
    hlc_timestamp ts;
    range_write *writes;       /* owned; keys only (point into key_bytes), sorted */
    size_t write_count;
    range_span *delete_spans;  /* owned; bytes in key_bytes */
    size_t delete_span_count;
    uint8_t *key_bytes;        /* owned */
    base_buf gen_keys;         /* owned: tombstones generated from delete spans */
    size_t *gen_offsets;       /* owned */
    size_t gen_count;
    bool done; /* resolved: rc set, unlinked */
    int rc;
    int refs;  /* workers waiting on it (incl. the one that proposed it) */
    struct server_pending *prev, *next;
} server_pending;

/* A read in flight (see READS NEVER MISS A COMMIT): lives in the evaluating
** thread's frame, linked into its range's list from read_begin to read_end. */
typedef struct server_read {
    range_span span;   /* what it may read (bytes borrowed from the evaluation) */
    hlc_timestamp ts;
    struct server_read *prev, *next;
} server_read;

/* A worker waiting on its lock request (eval_lock): in its frame, linked
** into its range's lock_waits from QUEUED until it stops waiting. */
typedef struct server_lock_wait {
    uint64_t waiter_id;
    uint64_t txn_id;
    int state;                 /* 0: waiting; else RANGE_LOCK_EV_GRANTED / _ABANDONED */
    range__lock_holder holder; /* the blocker, as last told */
    struct server_lock_wait *next;
} server_lock_wait;

/* A worker waiting in its range's txnwait queue (eval_push); likewise. */
typedef struct server_push_wait {
    uint64_t waiter_id;
    int state; /* 0: waiting; else RANGE_TXNWAIT_EV_FINAL / _ABANDONED */
    struct server_push_wait *next;
} server_push_wait;

/* A transaction's push that waited its bound (PENDING answered) and stays in
** the txnwait queue, so QUERY_TXN still reports the edge while the client
** LOCKs again before its next push: without it, pushers that started
** together queried each other's records exactly when none was queued, and
** a deadlock among them was never found (they waited for their deadlines).
** The same pusher's next push here replaces it; unclaimed, it is cancelled
** after SERVER_PUSH_PARK_MS. */
typedef struct server_push_parked {
    uint64_t waiter_id, pusher_id;
    int64_t expires_mono_ns;
} server_push_parked;

/* A lock request whose worker stopped waiting (the push delay) while its
** transaction pushes the holder: it keeps its place in the key's queue for
** SERVER_LOCK_PARK_MS, and the same transaction's next LOCK of the key takes
** it back (FIFO across the push). Granted meanwhile, the lock is the txn's;
** unclaimed at expiry, it is released (or the request cancelled). */
typedef struct server_parked {
    uint64_t waiter_id, txn_id;
    uint8_t *key; /* owned */
    size_t key_len;
    int64_t expires_mono_ns;
    bool granted;
} server_parked;

/* What the lock table does not keep of a lock holder: its record key (where
** a pusher goes) and its read timestamp. */
typedef struct server_lock_txn {
    uint64_t txn_id;
    uint8_t *anchor; /* owned */
    size_t anchor_len;
    hlc_timestamp read_ts;
} server_lock_txn;

/* A transaction this server saw end. authoritative: a record write, a 1PC
** commit or a resolution said so (pushers may be told); else only the txn
** itself hears it (a pusher chosen as a deadlock's victim: no record was
** written, its coordinator aborts). */
typedef struct server_finished {
    uint64_t txn_id;
    uint8_t status; /* range_txn_status, final */
    bool authoritative;
    hlc_timestamp commit_ts;
    uint64_t cycle[RANGE_KV_CYCLE_MAX]; /* a deadlock victim's cycle */
    size_t cycle_len;
} server_finished;

typedef struct server_range {
    uint64_t range_id;
    range_replica *replica; /* borrowed from the node (lives until range_node_free) */
    pthread_mutex_t eval_mu; /* serializes commit evaluation (see invariants) */
    /* under s->mu: */
    uint64_t lead_term;      /* newest term this replica was seen leading in */
    hlc_timestamp unc_floor; /* UNCERTAINTY: the lease's uncertainty floor (see there) */
    range__tscache *tscache; /* owned; emptied at the low-water when lead_term moves */
    server_read *reads;      /* reads in flight */
    server_pending *pending; /* list of unresolved proposals */
    bool splitting;          /* the split gate is closed (see THE SPLIT GATE) */
    int gated;               /* reads, VALIDATEs and commit evaluations inside it */
    /* LOCKS (see the invariant), under s->mu: */
    range__locktable *locks;     /* owned; this lease's locks */
    range__txnwait *txnwait;     /* owned; pushers of txns whose records live here */
    server_lock_wait *lock_waits;
    server_push_wait *push_waits;
    server_parked *parked;       /* owned array of SERVER_PARKED_MAX */
    size_t n_parked;
    server_lock_txn *lock_txns;  /* owned array of SERVER_LOCK_TXNS_MAX */
    size_t n_lock_txns;
    server_push_parked push_parked[SERVER_PUSH_PARKED_MAX];
    size_t n_push_parked;
    /* LOAD (docs/range.md, "Load"): what this server evaluated of the range,
    ** under load_mu (its own: recording never waits for s->mu) */
    pthread_mutex_t load_mu;
    range__load load;
    uint64_t load_rng; /* the finder's PRNG state */
    base_buf sweep_from; /* THE AGE SWEEP: the raw key its next round starts at
                            (empty: the span's start); under s->mu */
    base_buf mvcc_gc_from; /* VERSION GC: the user key its next scan starts at
                              (empty: the span's start); the GC thread only */
} server_range;

struct range_server {
    range_server_config config;
    pthread_mutex_t mu;
    pthread_cond_t work;    /* queue non-empty or stopping */
    pthread_cond_t changed; /* a barrier or proposal resolved, a counter moved, stopping */
    bool stopping;
    server_job **queue;     /* ring of SERVER_QUEUE_MAX */
    size_t queue_head, queue_len;
    pthread_t *threads;
    int n_threads;
    server_range **ranges;  /* owned */
    size_t n_ranges;
    uint64_t counters[SERVER_COUNTERS];
    uint64_t cmd_seq;       /* under mu: keys of record and resolve commands */
    server_finished *finished; /* owned ring of SERVER_FINISHED_MAX, under mu */
    size_t finished_next;
    /* CLOSED TIMESTAMPS: the newest (highest closed) entry per range this
    ** server was told, by a leaseholder elsewhere or its own closer; an owned
    ** array of SERVER_CLOSED_MAX, under mu. */
    range_closed_entry *closed;
    size_t n_closed;
    pthread_t closer;
    bool closer_started;
    pthread_t gc_thread;    /* the GC rounds (not the closer's: closing never waits
                               for a GC proposal) */
    bool gc_started;
    pthread_cond_t closer_wake; /* stopping (CLOCK_MONOTONIC): closer and GC thread */
    range_server_stats stats;   /* under mu */
    uint64_t load_seed;         /* the ranges' load finders start from it */
    /* THE SWEEP OF COMMITTED RECORDS: the key space its resolutions go
    ** through (borrowed; NULL: none), under mu; resolver_busy while the GC
    ** round uses it (range_server_set_resolver waits on `changed`). */
    range_kv *resolver;
    bool resolver_busy;
};

/* A read barrier in flight; lives in the evaluating thread's frame, which
** cancels it (replica__cancel_read) before leaving if it has not completed. */
typedef struct server_barrier {
    range_server *s;
    bool done;
    int rc;
} server_barrier;

/* Memory of one evaluation that the response points into. Owner: the
** evaluating function. */
typedef struct server_eval {
    range_kv_request req;
    range_kv_response resp;
    range_descriptor desc; /* the replica's, when loaded */
    bool have_desc;
    range_descriptor other; /* KEY_MISMATCH: the local range holding bad_key;
                               ADMIN_SPLIT: the right-hand range */
    bool have_other;
    const uint8_t *bad_key; /* KEY_MISMATCH: a key of the request outside desc
                               (borrowed from the request or desc) */
    size_t bad_key_len;
    server_range *gate;     /* the range whose split gate this evaluation is in */
    base_buf value;        /* GET */
    base_buf row_bytes;    /* SCAN */
    base_buf load_key;     /* DESCRIBE: the load-split finder's key */
    range_kv_row *rows;
    range_conflict conflict;
    range__intent_hit hit; /* RANGE_ERR_INTENT: the intent (or lock) met */
    hlc_timestamp limit;   /* GET, SCAN: the local uncertainty limit (HLC_ZERO: none) */
    range_kv_edge deps[RANGE_KV_DEPS_MAX];  /* QUERY_TXN's answer */
    uint64_t cycle[RANGE_KV_CYCLE_MAX];     /* a deadlock victim's answer */
    bool abort_record; /* HEARTBEAT of a txn known aborted: write ABORTED */
    const uint8_t *record_spans; /* END_TXN(COMMITTED): the record's participant
                                    spans section (borrowed from eval_record) */
    size_t record_spans_len;
} server_eval;

/* ---- small helpers ---------------------------------------------------------- */

static struct timespec deadline_after_ns(int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec += (long)(ns % 1000000000LL);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static struct timespec deadline_after_ms(int64_t ms)
{
    return deadline_after_ns(ms * 1000000LL);
}

static bool ts_valid(hlc_timestamp ts)
{
    return ts.wall_ns >= 0 && ts.logical >= 0 && ts.wall_ns < HLC_WALL_LIMIT_NS;
}

static hlc_timestamp ts_max(hlc_timestamp a, hlc_timestamp b)
{
    return hlc_compare(a, b) >= 0 ? a : b;
}

/* Is span sp inside d? Open ends (length 0) only where d's end is open. */
static bool span_within(const range_descriptor *d, const range_span *sp);

/* A key outside e->desc: remember it for the answer's other descriptor. */
static int key_mismatch(server_eval *e, const uint8_t *key, size_t key_len)
{
    e->bad_key = key;
    e->bad_key_len = key_len;
    return RANGE_ERR_KEY_MISMATCH;
}

/* span_within, and on a miss the key of sp that lies outside (its start,
** or the first key past the range). */
static int span_check(server_eval *e, const range_span *sp)
{
    if (span_within(&e->desc, sp))
        return RANGE_OK;
    if (!range_descriptor_contains(&e->desc, sp->start, sp->start_len) || e->desc.end_len == 0)
        return key_mismatch(e, sp->start, sp->start_len);
    return key_mismatch(e, e->desc.end_key, e->desc.end_len);
}

static bool span_within(const range_descriptor *d, const range_span *sp)
{
    if (sp->point)
        return range_descriptor_contains(d, sp->start, sp->start_len);
    if (sp->start_len == 0) {
        if (d->start_len != 0)
            return false;
    } else if (!range_descriptor_contains(d, sp->start, sp->start_len)) {
        return false;
    }
    if (sp->end_len == 0)
        return d->end_len == 0;
    return d->end_len == 0 || range__key_cmp(sp->end, sp->end_len, d->end_key, d->end_len) <= 0;
}

static void counter_add(range_server *s, range__server_counter which, int64_t delta)
{
    s->counters[which] += (uint64_t)delta; /* under s->mu */
    pthread_cond_broadcast(&s->changed);
}

/* ---- pending records -------------------------------------------------------- */

static void pending_free(server_pending *p)
{
    if (p == NULL)
        return;
    base_free(p->writes);
    base_free(p->delete_spans);
    base_free(p->key_bytes);
    base_buf_free(&p->gen_keys);
    base_free(p->gen_offsets);
    base_free(p);
}

static void pending_unlink(server_range *sr, server_pending *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        sr->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* Copy the keys the record must keep (write keys, delete spans) and take
** over the generated tombstones. owner of *out: caller until registered. */
static int pending_new(range_server *s, server_range *sr, const range_kv_request *req,
                       base_buf *gen_keys, size_t **gen_offsets, size_t gen_count,
                       server_pending **out)
{
    size_t bytes = 0;
    for (size_t i = 0; i < req->write_count; i++)
        bytes += req->writes[i].key_len;
    for (size_t i = 0; i < req->delete_span_count; i++)
        bytes += req->delete_spans[i].start_len + req->delete_spans[i].end_len;
    server_pending *p = base_calloc(1, sizeof(*p));
    if (p == NULL)
        return RANGE_ERR_NOMEM;
    p->server = s;
    p->range = sr;
    p->txn_id = req->txn_id;
    p->nonce = req->nonce;
    if ((req->write_count > 0 &&
         (p->writes = base_calloc(req->write_count, sizeof(*p->writes))) == NULL) ||
        (req->delete_span_count > 0 &&
         (p->delete_spans = base_calloc(req->delete_span_count, sizeof(*p->delete_spans))) ==
             NULL) ||
        (bytes > 0 && (p->key_bytes = base_malloc(bytes)) == NULL)) {
        pending_free(p);
        return RANGE_ERR_NOMEM;
    }
    uint8_t *at = p->key_bytes;
    for (size_t i = 0; i < req->write_count; i++) {
        const range_write *w = &req->writes[i];
        memcpy(at, w->key, w->key_len);
        p->writes[i].key = at;
        p->writes[i].key_len = w->key_len;
        p->writes[i].tombstone = w->tombstone;
        at += w->key_len;
    }
    for (size_t i = 0; i < req->delete_span_count; i++) {
        const range_span *sp = &req->delete_spans[i];
        range_span *dst = &p->delete_spans[i];
        if (sp->start_len > 0)
            memcpy(at, sp->start, sp->start_len);
        dst->start = at;
        dst->start_len = sp->start_len;
        at += sp->start_len;
        if (sp->end_len > 0)
            memcpy(at, sp->end, sp->end_len);
        dst->end = sp->end_len > 0 ? at : NULL;
        dst->end_len = sp->end_len;
        at += sp->end_len;
    }
    p->write_count = req->write_count;
    p->delete_span_count = req->delete_span_count;
    p->gen_keys = *gen_keys;
    memset(gen_keys, 0, sizeof(*gen_keys));
    p->gen_offsets = *gen_offsets;
    *gen_offsets = NULL;
    p->gen_count = gen_count;
    *out = p;
    return RANGE_OK;
}

/* The proposal callback: under the node mutex; takes only s->mu. */
static void server_propose_cb(void *ctx, int rc)
{
    server_pending *p = ctx;
    range_server *s = p->server;
    pthread_mutex_lock(&s->mu);
    p->done = true;
    p->rc = rc;
    pending_unlink(p->range, p);
    counter_add(s, RANGE__SERVER_PENDING, -1);
    if (p->refs == 0)
        pending_free(p);
    pthread_mutex_unlock(&s->mu);
}

/* Wait (bounded) for a record the caller holds a reference on; drop the
** reference. Returns its resolution, or RANGE_ERR_AMBIGUOUS (timeout,
** shutdown: the record stays for its callback). */
static int pending_wait(range_server *s, server_pending *p)
{
    struct timespec deadline = deadline_after_ms(s->config.wait_timeout_ms);
    int rc = RANGE_ERR_AMBIGUOUS;
    pthread_mutex_lock(&s->mu);
    while (!p->done && !s->stopping) {
        if (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT)
            break;
    }
    if (p->done)
        rc = p->rc;
    assert(p->refs > 0);
    p->refs--;
    if (p->done && p->refs == 0)
        pending_free(p);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- ranges ----------------------------------------------------------------- */

static void server_range_free(server_range *sr)
{
    if (sr == NULL)
        return;
    range__locktable_free(sr->locks);
    range__txnwait_free(sr->txnwait);
    for (size_t i = 0; sr->parked != NULL && i < sr->n_parked; i++)
        base_free(sr->parked[i].key);
    for (size_t i = 0; sr->lock_txns != NULL && i < sr->n_lock_txns; i++)
        base_free(sr->lock_txns[i].anchor);
    base_free(sr->parked);
    base_free(sr->lock_txns);
    range__tscache_free(sr->tscache);
    range__load_free(&sr->load);
    base_buf_free(&sr->sweep_from);
    base_buf_free(&sr->mvcc_gc_from);
    pthread_mutex_destroy(&sr->load_mu);
    pthread_mutex_destroy(&sr->eval_mu);
    base_free(sr);
}

/* The server's state for range_id (created on first use). RANGE_OK,
** RANGE_ERR_NOT_LEADER (no replica of it here), RANGE_ERR_NOMEM,
** RANGE_ERR_BUSY (table full). */
static int server_range_get(range_server *s, uint64_t range_id, server_range **out)
{
    server_range *found = NULL;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_ranges && found == NULL; i++)
        if (s->ranges[i]->range_id == range_id)
            found = s->ranges[i];
    pthread_mutex_unlock(&s->mu);
    if (found != NULL) {
        *out = found;
        return RANGE_OK;
    }
    range_replica *r = range_node_replica(s->config.node, range_id); /* node mutex */
    if (r == NULL)
        return RANGE_ERR_NOT_LEADER;
    server_range *sr = base_calloc(1, sizeof(*sr)); /* owner: s->ranges once added */
    if (sr == NULL)
        return RANGE_ERR_NOMEM;
    /* empty at HLC_MAX until the first barrier of a term sets the low-water:
    ** nothing can commit before it */
    if (range__tscache_new(0, 0, HLC_MAX, range_id, &sr->tscache) != RANGE_OK) {
        base_free(sr);
        return RANGE_ERR_NOMEM;
    }
    if (pthread_mutex_init(&sr->eval_mu, NULL) != 0) {
        range__tscache_free(sr->tscache);
        base_free(sr);
        return RANGE_ERR_NOMEM;
    }
    if (pthread_mutex_init(&sr->load_mu, NULL) != 0) {
        pthread_mutex_destroy(&sr->eval_mu);
        range__tscache_free(sr->tscache);
        base_free(sr);
        return RANGE_ERR_NOMEM;
    }
    range__load_init(&sr->load, hlc_physical_now_ns(s->config.clock));
    sr->load_rng = (s->load_seed ^ (range_id * 0x9e3779b97f4a7c15ULL)) | 1;
    sr->parked = base_calloc(SERVER_PARKED_MAX, sizeof(*sr->parked));
    sr->lock_txns = base_calloc(SERVER_LOCK_TXNS_MAX, sizeof(*sr->lock_txns));
    if (sr->parked == NULL || sr->lock_txns == NULL ||
        range__locktable_new(NULL, &sr->locks) != RANGE_OK ||
        range__txnwait_new(NULL, &sr->txnwait) != RANGE_OK) {
        server_range_free(sr);
        return RANGE_ERR_NOMEM;
    }
    sr->range_id = range_id;
    sr->replica = r;
    int rc = RANGE_OK;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_ranges && found == NULL; i++)
        if (s->ranges[i]->range_id == range_id)
            found = s->ranges[i]; /* another thread added it meanwhile */
    if (found == NULL) {
        if (s->n_ranges >= RANGE_NODE_REPLICAS_MAX) {
            rc = RANGE_ERR_BUSY;
        } else {
            server_range **grown =
                base_realloc(s->ranges, (s->n_ranges + 1) * sizeof(*s->ranges));
            if (grown == NULL) {
                rc = RANGE_ERR_NOMEM;
            } else {
                s->ranges = grown;
                s->ranges[s->n_ranges++] = sr;
                found = sr;
                sr = NULL;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    server_range_free(sr);
    *out = found;
    return found != NULL ? RANGE_OK : rc;
}

/* ---- the lock table and the wait queue: bookkeeping under s->mu --------------- */

/* Lock and wait-queue times: the leaseholder's HLC wall time, so a lock's
** since and a record's heartbeat compare with the pusher's clock. */
static int64_t lock_now_ns(range_server *s) { return hlc_now(s->config.clock).wall_ns; }

static void parked_remove_locked(server_range *sr, size_t i)
{
    base_free(sr->parked[i].key);
    sr->parked[i] = sr->parked[sr->n_parked - 1];
    memset(&sr->parked[sr->n_parked - 1], 0, sizeof(sr->parked[0]));
    sr->n_parked--;
}

/* Route the lock table's events to the waiting workers and the parked
** requests, then wake the workers. */
static void locks_drain_locked(range_server *s, server_range *sr)
{
    range__locktable_event ev;
    bool any = false;
    while (range__locktable_next_event(sr->locks, &ev)) {
        any = true;
        server_lock_wait *w = sr->lock_waits;
        while (w != NULL && w->waiter_id != ev.waiter_id)
            w = w->next;
        if (w != NULL) {
            if (ev.kind == RANGE_LOCK_EV_NEW_HOLDER)
                w->holder = ev.holder;
            else
                w->state = (int)ev.kind; /* GRANTED or ABANDONED: LOCK never reads */
            continue;
        }
        for (size_t i = 0; i < sr->n_parked; i++) {
            if (sr->parked[i].waiter_id != ev.waiter_id)
                continue;
            if (ev.kind == RANGE_LOCK_EV_GRANTED)
                sr->parked[i].granted = true;
            else if (ev.kind != RANGE_LOCK_EV_NEW_HOLDER)
                parked_remove_locked(sr, i);
            break;
        }
    }
    if (any)
        pthread_cond_broadcast(&s->changed);
}

static void txnwait_drain_locked(range_server *s, server_range *sr)
{
    range__txnwait_event ev;
    bool any = false;
    while (range__txnwait_next_event(sr->txnwait, &ev)) {
        any = true;
        bool waiting = false;
        for (server_push_wait *w = sr->push_waits; w != NULL && !waiting; w = w->next)
            if (w->waiter_id == ev.waiter_id) {
                w->state = (int)ev.kind;
                waiting = true;
            }
        for (size_t i = 0; !waiting && i < sr->n_push_parked; i++)
            if (sr->push_parked[i].waiter_id == ev.waiter_id) {
                /* ended (FINAL, ABANDONED): the queue forgot it */
                sr->push_parked[i] = sr->push_parked[--sr->n_push_parked];
                break;
            }
    }
    if (any)
        pthread_cond_broadcast(&s->changed);
}

/* Parked pushes (server_push_parked) of pusher_id (0: any) or past their
** time leave the queue. */
static void push_parked_sweep_locked(server_range *sr, uint64_t pusher_id)
{
    int64_t now_mono = base_monotonic_ns();
    for (size_t i = 0; i < sr->n_push_parked;) {
        server_push_parked *p = &sr->push_parked[i];
        if (p->expires_mono_ns > now_mono && (pusher_id == 0 || p->pusher_id != pusher_id)) {
            i++;
            continue;
        }
        (void)range__txnwait_cancel(sr->txnwait, p->waiter_id); /* gone already: NOT_FOUND */
        *p = sr->push_parked[--sr->n_push_parked];
    }
}

/* Parked requests past their time: a granted one's lock goes, a waiting one
** leaves the queue. */
static void parked_sweep_locked(range_server *s, server_range *sr)
{
    int64_t now_mono = base_monotonic_ns();
    for (size_t i = 0; i < sr->n_parked;) {
        server_parked *p = &sr->parked[i];
        if (p->expires_mono_ns > now_mono) {
            i++;
            continue;
        }
        if (p->granted)
            (void)range__locktable_release(sr->locks, p->txn_id, p->key, p->key_len,
                                           lock_now_ns(s));
        else
            (void)range__locktable_cancel(sr->locks, p->waiter_id);
        parked_remove_locked(sr, i);
        locks_drain_locked(s, sr); /* may grant (or drop) other parked requests */
        i = 0;
    }
}

static int64_t parked_next_expiry_locked(const server_range *sr)
{
    int64_t t = INT64_MAX;
    for (size_t i = 0; i < sr->n_parked; i++)
        if (sr->parked[i].expires_mono_ns < t)
            t = sr->parked[i].expires_mono_ns;
    return t;
}

/* txn_id is done with these keys (sp NULL: all): its parked requests go
** (waiting ones leave the queue; granted ones are released by the caller). */
static void parked_forget_txn_locked(range_server *s, server_range *sr, uint64_t txn_id,
                                     const range_span *sp)
{
    for (size_t i = 0; i < sr->n_parked;) {
        server_parked *p = &sr->parked[i];
        if (p->txn_id != txn_id ||
            (sp != NULL && !range__span_contains(sp, p->key, p->key_len))) {
            i++;
            continue;
        }
        if (!p->granted)
            (void)range__locktable_cancel(sr->locks, p->waiter_id);
        parked_remove_locked(sr, i);
    }
    locks_drain_locked(s, sr);
}

static server_lock_txn *lock_txn_find_locked(server_range *sr, uint64_t txn_id)
{
    for (size_t i = 0; i < sr->n_lock_txns; i++)
        if (sr->lock_txns[i].txn_id == txn_id)
            return &sr->lock_txns[i];
    return NULL;
}

/* Does anything of txn_id still live in sr's table (keys, parked or waiting
** requests)? */
static bool lock_txn_in_use_locked(const server_range *sr, uint64_t txn_id)
{
    if (range__locktable_txn_keys(sr->locks, txn_id) > 0)
        return true;
    for (size_t i = 0; i < sr->n_parked; i++)
        if (sr->parked[i].txn_id == txn_id)
            return true;
    for (const server_lock_wait *w = sr->lock_waits; w != NULL; w = w->next)
        if (w->txn_id == txn_id)
            return true;
    return false;
}

/* Remember the anchor and read_ts of a LOCK's txn (the latest LOCK's win).
** Full: entries nothing refers to any more go first. RANGE_OK,
** RANGE_ERR_BUSY, RANGE_ERR_NOMEM. */
static int lock_txn_note_locked(server_range *sr, const range_kv_request *q)
{
    server_lock_txn *t = lock_txn_find_locked(sr, q->txn_id);
    if (t == NULL && sr->n_lock_txns == SERVER_LOCK_TXNS_MAX) {
        for (size_t i = 0; i < sr->n_lock_txns;) {
            if (lock_txn_in_use_locked(sr, sr->lock_txns[i].txn_id)) {
                i++;
                continue;
            }
            base_free(sr->lock_txns[i].anchor);
            sr->lock_txns[i] = sr->lock_txns[--sr->n_lock_txns];
        }
        if (sr->n_lock_txns == SERVER_LOCK_TXNS_MAX)
            return RANGE_ERR_BUSY;
    }
    uint8_t *anchor = base_malloc(q->anchor_len); /* owner: the entry */
    if (anchor == NULL)
        return RANGE_ERR_NOMEM;
    memcpy(anchor, q->anchor, q->anchor_len);
    if (t == NULL)
        t = &sr->lock_txns[sr->n_lock_txns++];
    else
        base_free(t->anchor);
    t->txn_id = q->txn_id;
    t->anchor = anchor;
    t->anchor_len = q->anchor_len;
    t->read_ts = q->read_ts;
    return RANGE_OK;
}

/* txn_id let go of everything here: its anchor is no longer needed. */
static void lock_txn_forget_locked(server_range *sr, uint64_t txn_id)
{
    server_lock_txn *t = lock_txn_find_locked(sr, txn_id);
    if (t == NULL || lock_txn_in_use_locked(sr, txn_id))
        return;
    base_free(t->anchor);
    *t = sr->lock_txns[--sr->n_lock_txns];
    memset(&sr->lock_txns[sr->n_lock_txns], 0, sizeof(sr->lock_txns[0]));
}

/* The answer for an UNREPLICATED holder h of key: RANGE_ERR_INTENT with
** *hit (anchor and read_ts as its LOCK said; unknown: the key itself, so a
** push lands somewhere and goes by since), or RANGE_ERR_NOMEM. */
static int unrepl_hit_locked(server_range *sr, const uint8_t *key, size_t key_len,
                             const range__lock_holder *h, range__intent_hit *hit)
{
    const server_lock_txn *t = lock_txn_find_locked(sr, h->txn.id);
    base_buf_reset(&hit->key);
    base_buf_reset(&hit->anchor);
    if (base_buf_append(&hit->key, key, key_len) != 0 ||
        (t != NULL ? base_buf_append(&hit->anchor, t->anchor, t->anchor_len)
                   : base_buf_append(&hit->anchor, key, key_len)) != 0)
        return RANGE_ERR_NOMEM;
    hit->txn_id = h->txn.id;
    hit->ts = t != NULL ? t->read_ts : HLC_ZERO;
    hit->unreplicated = true;
    hit->since_ns = h->since_ns;
    return RANGE_ERR_INTENT;
}

/* An intent found in storage becomes (or stays) the key's holder; a stale
** replicated holder of another txn in the table makes way for it. */
static void discover_locked(range_server *s, server_range *sr, const range__intent_hit *hit)
{
    /* The caller saw the intent before taking s->mu; a RESOLVE may have
    ** applied since and its resolve_done (which runs under s->mu, after the
    ** storage write) granted the key to a waiter. Re-adding the stale
    ** intent would evict that grantee (two transactions then believe they
    ** hold the key). Look again under s->mu: present now means its
    ** resolve_done is still to come and will release what we add. */
    range__intent_hit again;
    memset(&again, 0, sizeof(again));
    range_span pt = {hit->key.data, hit->key.len, NULL, 0, true};
    int frc = range__find_intent(replica__engine(sr->replica), &pt, 0, HLC_MAX, &again);
    bool still = frc == RANGE_ERR_INTENT && again.txn_id == hit->txn_id;
    range__intent_hit_free(&again);
    if (!still && frc != RANGE_ERR_NOMEM && frc != RANGE_ERR_IO)
        return;
    range__lock_txn txn = {hit->txn_id, 0, 0};
    int64_t now = lock_now_ns(s);
    int rc = range__locktable_add_discovered(sr->locks, &txn, hit->key.data, hit->key.len,
                                             hit->ts, now, NULL);
    range__lock_holder h;
    if (rc == RANGE_ERR_CONFLICT &&
        range__locktable_holder(sr->locks, hit->key.data, hit->key.len, &h)) {
        (void)range__locktable_release(sr->locks, h.txn.id, hit->key.data, hit->key.len, now);
        locks_drain_locked(s, sr);
        (void)range__locktable_add_discovered(sr->locks, &txn, hit->key.data, hit->key.len,
                                              hit->ts, now, NULL);
    }
    locks_drain_locked(s, sr); /* BUSY / NOMEM: the request still sees the intent */
}

/* Forget every lock and wait of sr (the lease moved, or a new term began):
** waiters are told ABANDONED and evaluate again. */
static void locks_clear_locked(range_server *s, server_range *sr)
{
    range__locktable_clear(sr->locks);
    locks_drain_locked(s, sr);
    while (sr->n_parked > 0)
        parked_remove_locked(sr, sr->n_parked - 1);
    for (size_t i = 0; i < sr->n_lock_txns; i++)
        base_free(sr->lock_txns[i].anchor);
    memset(sr->lock_txns, 0, sr->n_lock_txns * sizeof(sr->lock_txns[0]));
    sr->n_lock_txns = 0;
    range__txnwait_clear(sr->txnwait);
    txnwait_drain_locked(s, sr);
}

static void lease_lost(range_server *s, server_range *sr)
{
    pthread_mutex_lock(&s->mu);
    locks_clear_locked(s, sr);
    pthread_mutex_unlock(&s->mu);
}

static server_finished *finished_find_locked(range_server *s, uint64_t txn_id)
{
    for (size_t i = 0; i < SERVER_FINISHED_MAX; i++)
        if (s->finished[i].txn_id == txn_id)
            return &s->finished[i];
    return NULL;
}

/* Remember that txn_id ended (a cycle given: it was a deadlock's victim). */
static void finished_add_locked(range_server *s, uint64_t txn_id, range_txn_status status,
                                bool authoritative, hlc_timestamp commit_ts,
                                const uint64_t *cycle, size_t cycle_len)
{
    server_finished *f = finished_find_locked(s, txn_id);
    if (f == NULL) {
        f = &s->finished[s->finished_next];
        s->finished_next = (s->finished_next + 1) % SERVER_FINISHED_MAX;
        memset(f, 0, sizeof(*f));
    }
    f->txn_id = txn_id;
    f->status = (uint8_t)status;
    f->authoritative = f->authoritative || authoritative;
    if (status == RANGE_TXN_COMMITTED)
        f->commit_ts = commit_ts;
    if (cycle_len > 0) {
        if (cycle_len > RANGE_KV_CYCLE_MAX)
            cycle_len = RANGE_KV_CYCLE_MAX;
        memcpy(f->cycle, cycle, cycle_len * sizeof(*cycle));
        f->cycle_len = cycle_len;
    }
    pthread_cond_broadcast(&s->changed);
}

/* Every lock of txn_id in every range of this server goes (it was
** aborted; its waiters go on). */
static void txn_release_everywhere_locked(range_server *s, uint64_t txn_id)
{
    for (size_t i = 0; i < s->n_ranges; i++) {
        server_range *sr = s->ranges[i];
        parked_forget_txn_locked(s, sr, txn_id, NULL);
        (void)range__locktable_release_all(sr->locks, txn_id, lock_now_ns(s));
        locks_drain_locked(s, sr);
        lock_txn_forget_locked(sr, txn_id);
    }
}

/* txn_id ended (its record is final, a 1PC commit, a resolution): pushers of
** it waiting here in any range end (they look again); release_locks takes
** its locks in every range of this server (an abort: its waiters go on). */
static void txn_final_locked(range_server *s, uint64_t txn_id, range_txn_status status,
                             hlc_timestamp commit_ts, bool authoritative, bool release_locks)
{
    range__txnwait_record rec = {txn_id, 0, status, 0};
    finished_add_locked(s, txn_id, status, authoritative, commit_ts, NULL, 0);
    for (size_t i = 0; i < s->n_ranges; i++) {
        server_range *sr = s->ranges[i];
        range__txnwait_update_record(sr->txnwait, &rec);
        txnwait_drain_locked(s, sr);
    }
    if (release_locks)
        txn_release_everywhere_locked(s, txn_id);
}

size_t range__server_lock_keys(range_server *s, uint64_t range_id)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_ranges; i++)
        if (s->ranges[i]->range_id == range_id) {
            range__locktable_stats st;
            range__locktable_get_stats(s->ranges[i]->locks, &st);
            n = st.keys;
        }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- the split gate ---------------------------------------------------------- */

static bool replica_is_frozen(range_replica *r, uint64_t *merge_id);
static void gate_leave(range_server *s, server_eval *e);

/* Enter sr's gate (see THE SPLIT GATE), waiting (bounded) while a split
** or a merge step holds it closed. RANGE_OK (e->gate set: gate_leave
** later), RANGE_ERR_UNAVAILABLE (bound, shutdown: the router retries) or
** RANGE_ERR_MERGING (frozen by a merge: THE MERGE GATE). */
static int gate_enter(range_server *s, server_range *sr, server_eval *e)
{
    struct timespec deadline = deadline_after_ms(s->config.wait_timeout_ms);
    int rc = RANGE_OK;
    assert(e->gate == NULL);
    pthread_mutex_lock(&s->mu);
    while (sr->splitting) {
        if (s->stopping ||
            (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT &&
             sr->splitting)) {
            rc = RANGE_ERR_UNAVAILABLE;
            break;
        }
    }
    if (rc == RANGE_OK) {
        sr->gated++;
        e->gate = sr;
    }
    pthread_mutex_unlock(&s->mu);
    /* inside: a SUBSUME closing the gate now waits for us (our commit is in
    ** the log before its freeze), or froze the range already (THE MERGE
    ** GATE) */
    if (rc == RANGE_OK && replica_is_frozen(sr->replica, NULL)) {
        gate_leave(s, e);
        rc = RANGE_ERR_MERGING;
    }
    return rc;
}

static void gate_leave(range_server *s, server_eval *e)
{
    if (e->gate == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    assert(e->gate->gated > 0);
    e->gate->gated--;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    e->gate = NULL;
}

/* A split closes sr's gate: one split at a time, then every op inside has
** left. RANGE_OK (split_gate_open later) or RANGE_ERR_UNAVAILABLE (the gate
** was opened again). */
static int split_gate_close(range_server *s, server_range *sr)
{
    struct timespec deadline = deadline_after_ms(s->config.wait_timeout_ms);
    int rc = RANGE_OK;
    pthread_mutex_lock(&s->mu);
    while (sr->splitting && rc == RANGE_OK) {
        if (s->stopping ||
            (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT &&
             sr->splitting))
            rc = RANGE_ERR_UNAVAILABLE;
    }
    if (rc == RANGE_OK) {
        sr->splitting = true;
        while (sr->gated > 0) {
            if (s->stopping ||
                (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT &&
                 sr->gated > 0)) {
                sr->splitting = false;
                pthread_cond_broadcast(&s->changed);
                rc = RANGE_ERR_UNAVAILABLE;
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void split_gate_open(range_server *s, server_range *sr)
{
    pthread_mutex_lock(&s->mu);
    sr->splitting = false;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the barrier ------------------------------------------------------------ */

static void server_barrier_cb(void *ctx, int rc)
{
    server_barrier *b = ctx;
    pthread_mutex_lock(&b->s->mu);
    b->done = true;
    b->rc = rc;
    pthread_cond_broadcast(&b->s->changed);
    pthread_mutex_unlock(&b->s->mu);
}

/* The first sight of this replica leading in term (see LOW WATER): a new
** lease. Under s->mu (the split floor is set once, read without a lock). */
static void lease_start_locked(range_server *s, server_range *sr, uint64_t term)
{
    if (term <= sr->lead_term)
        return;
    /* a new lease: what earlier leaseholders recorded is covered by
    ** the low-water (docs/range.md, "Critical invariants"); a range
    ** made by a split also starts above what its left-hand range's
    ** leaseholder recorded over it (THE SPLIT GATE) */
    sr->lead_term = term;
    hlc_timestamp low = hlc_add_ns(hlc_now(s->config.clock), hlc_max_offset_ns(s->config.clock));
    range__tscache_reset(sr->tscache, ts_max(low, replica__split_floor(sr->replica)));
    /* the lease's start for observed timestamps (UNCERTAINTY) */
    sr->unc_floor = ts_max(low, replica__split_floor(sr->replica));
    /* locks and waits of an earlier lease may have been overtaken
    ** by another leaseholder's: start over */
    locks_clear_locked(s, sr);
    counter_add(s, RANGE__SERVER_TERMS, 1);
}

static void uncertainty_prepare(range_server *s, server_range *sr, server_eval *e);

/* One barrier in the term this replica leads in (see BARRIER FIRST), then
** the low-water mark of a newly seen term. RANGE_OK with *term;
** RANGE_ERR_NOT_LEADER with *hint; RANGE_ERR_UNAVAILABLE (bound, shutdown),
** RANGE_ERR_BUSY, RANGE_ERR_NOMEM, RANGE_ERR_IO. */
static int server_barrier_wait(range_server *s, server_range *sr, uint64_t *term,
                               uint64_t *hint)
{
    range_replica *r = sr->replica;
    *hint = 0;
    for (int attempt = 0; attempt < SERVER_BARRIER_ATTEMPTS_MAX; attempt++) {
        range_replica_status before, after;
        range_replica_get_status(r, &before);
        if (!before.leader) {
            lease_lost(s, sr); /* this lease's locks are gone (docs/locking.md) */
            *hint = before.leader_id;
            return RANGE_ERR_NOT_LEADER;
        }
        server_barrier b = {s, false, 0};
        int rc = range_replica_read(r, true, server_barrier_cb, &b, hint);
        if (rc != RANGE_OK)
            return rc;
        struct timespec deadline = deadline_after_ms(s->config.wait_timeout_ms);
        pthread_mutex_lock(&s->mu);
        while (!b.done && !s->stopping) {
            if (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT)
                break;
        }
        bool done = b.done;
        pthread_mutex_unlock(&s->mu);
        if (!done) {
            replica__cancel_read(r, server_barrier_cb, &b);
            pthread_mutex_lock(&s->mu); /* it may have completed just before */
            done = b.done;
            pthread_mutex_unlock(&s->mu);
            if (!done)
                return RANGE_ERR_UNAVAILABLE;
        }
        range_replica_get_status(r, &after);
        if (b.rc == RANGE_ERR_NOT_LEADER || !after.leader) {
            lease_lost(s, sr);
            *hint = after.leader ? 0 : after.leader_id;
            return RANGE_ERR_NOT_LEADER;
        }
        if (b.rc != RANGE_OK)
            return b.rc;
        if (after.term != before.term)
            continue; /* not one term throughout: the barrier proves nothing */
        pthread_mutex_lock(&s->mu);
        lease_start_locked(s, sr, after.term);
        pthread_mutex_unlock(&s->mu);
        *term = after.term;
        return RANGE_OK;
    }
    return RANGE_ERR_UNAVAILABLE;
}

/* ---- reads ------------------------------------------------------------------ */

/* A pending commit at or below ts writes inside sp. Commits that write
** only elsewhere cannot change what a read of sp sees, so a read never
** waits for them (an unrelated commit in flight would otherwise stall
** every read of the range for a whole replication round). */
static bool pending_at_or_below(const server_range *sr, hlc_timestamp ts, const range_span *sp)
{
    for (const server_pending *p = sr->pending; p != NULL; p = p->next) {
        if (hlc_compare(p->ts, ts) > 0)
            continue;
        range__write_set ws = {p->writes, p->write_count, p->gen_keys.data, p->gen_offsets,
                               p->gen_count, p->delete_spans, p->delete_span_count};
        const uint8_t *k;
        size_t klen;
        if (range__write_set_touches(&ws, sp, &k, &klen))
            return true;
    }
    return false;
}

static void read_unlink_locked(server_range *sr, server_read *rd)
{
    if (rd->prev != NULL)
        rd->prev->next = rd->next;
    else
        sr->reads = rd->next;
    if (rd->next != NULL)
        rd->next->prev = rd->prev;
    rd->prev = rd->next = NULL;
}

/* Link rd (span and ts set) into the reads in flight, then wait until no
** pending commit at or below rd->ts writes inside rd->span (see READS
** NEVER MISS A COMMIT).
** RANGE_OK: the caller reads, then calls read_end. Else rd is unlinked. */
static int read_begin(range_server *s, server_range *sr, server_read *rd)
{
    hlc_timestamp read_ts = rd->ts;
    (void)hlc_update(s->config.clock, read_ts); /* costs nothing; not relied upon */
    int rc = RANGE_OK;
    pthread_mutex_lock(&s->mu);
    rd->prev = NULL;
    rd->next = sr->reads;
    if (sr->reads != NULL)
        sr->reads->prev = rd;
    sr->reads = rd;
    if (pending_at_or_below(sr, read_ts, &rd->span)) {
        counter_add(s, RANGE__SERVER_READ_WAITS, 1);
        struct timespec deadline = deadline_after_ms(s->config.wait_timeout_ms);
        while (pending_at_or_below(sr, read_ts, &rd->span)) {
            if (s->stopping) {
                rc = RANGE_ERR_UNAVAILABLE;
                break;
            }
            if (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT &&
                pending_at_or_below(sr, read_ts, &rd->span)) {
                rc = RANGE_ERR_UNAVAILABLE;
                break;
            }
        }
    }
    if (rc != RANGE_OK)
        read_unlink_locked(sr, rd);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* The read is over: record what it covered (NULL: it answered nothing, so
** nothing to protect) in the cache at its timestamp, and unlink it. */
static void read_end(range_server *s, server_range *sr, server_read *rd, const range_span *covered)
{
    pthread_mutex_lock(&s->mu);
    if (covered != NULL)
        range__tscache_add(sr->tscache, covered, rd->ts);
    read_unlink_locked(sr, rd);
    pthread_mutex_unlock(&s->mu);
}

/* The replica's current descriptor into e->desc (replacing one loaded
** before). */
static int load_desc(server_range *sr, server_eval *e)
{
    if (e->have_desc) {
        range_descriptor_free(&e->desc);
        e->have_desc = false;
    }
    int rc = range_replica_descriptor(sr->replica, &e->desc);
    if (rc == RANGE_OK)
        e->have_desc = true;
    return rc;
}

/* ---- follower reads (see FOLLOWER READS) --------------------------------------- */

/* The closed entry of range_id this server holds, or NULL. Under s->mu. */
static range_closed_entry *closed_find_locked(range_server *s, uint64_t range_id)
{
    for (size_t i = 0; i < s->n_closed; i++)
        if (s->closed[i].range_id == range_id)
            return &s->closed[i];
    return NULL;
}

/* Keep e when it closes more than what is held for its range (each pair is
** true on its own; the highest closed covers every lower read), or comes
** from a newer term; an older term's is ignored (a deposed leaseholder's
** late word is not needed, and refusing it costs only a fallback). Under
** s->mu. A full table drops the entry (its range's followers then send
** their stale reads to the leaseholder). */
static void closed_note_locked(range_server *s, const range_closed_entry *e)
{
    range_closed_entry *have = closed_find_locked(s, e->range_id);
    if (have != NULL) {
        if (e->term > have->term ||
            (e->term == have->term && hlc_compare(e->closed, have->closed) > 0))
            *have = *e;
        return;
    }
    if (s->n_closed < SERVER_CLOSED_MAX)
        s->closed[s->n_closed++] = *e;
}

/* May this replica serve the stale read of e (spans sp) as a follower?
** *follower false: it leads; the caller takes the leaseholder's path.
** RANGE_OK with *follower: serve it here (e->desc loaded, the spans inside
** it); RANGE_ERR_NOT_LEADER (hint: the leader) when its closed timestamp
** or its applied index do not cover the read; KEY_MISMATCH; an error. */
static int follower_check(range_server *s, server_range *sr, server_eval *e, const range_span *sp,
                          size_t n_spans, bool *follower)
{
    range_replica_status st;
    range_replica_get_status(sr->replica, &st);
    *follower = !st.leader;
    if (st.leader)
        return RANGE_OK;
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    const range_closed_entry *c = closed_find_locked(s, sr->range_id);
    ok = s->config.closed_lag_ms >= 0 && c != NULL &&
         hlc_compare(e->req.read_ts, c->closed) <= 0 && st.applied >= c->last_index;
    if (!ok)
        s->stats.follower_refusals++;
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        e->resp.leader_hint = st.leader_id;
        return RANGE_ERR_NOT_LEADER;
    }
    int rc = load_desc(sr, e);
    if (rc != RANGE_OK) {
        e->resp.leader_hint = st.leader_id; /* removed here: ask the leaseholder */
        return RANGE_ERR_NOT_LEADER;
    }
    for (size_t i = 0; i < n_spans && rc == RANGE_OK; i++)
        rc = span_check(e, &sp[i]);
    return rc;
}

/* A follower read is over: the descriptor it checked still holds (a split
** or a removal while it read: the leaseholder answers instead). */
static int follower_done(range_server *s, server_range *sr, server_eval *e, int rc)
{
    if (rc != RANGE_OK && rc != RANGE_NOT_FOUND)
        return rc;
    range_descriptor now;
    bool same = range_replica_descriptor(sr->replica, &now) == RANGE_OK;
    if (same) {
        same = now.generation == e->desc.generation && now.range_id == e->desc.range_id;
        range_descriptor_free(&now);
    }
    if (!same) {
        e->resp.value = NULL; /* nothing of what was read is answered */
        e->resp.value_len = 0;
        e->resp.rows = NULL;
        e->resp.n_rows = 0;
        e->resp.more = false;
        return RANGE_ERR_NOT_LEADER;
    }
    pthread_mutex_lock(&s->mu);
    s->stats.follower_reads++;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Barrier, the split gate (left in server_evaluate), then the descriptor
** check of the spans (e->desc loaded). The caller then brackets its read
** with read_begin / read_end. */
static int read_prepare(range_server *s, server_range *sr, server_eval *e, const range_span *sp,
                        size_t n_spans)
{
    uint64_t term, hint;
    int rc = server_barrier_wait(s, sr, &term, &hint);
    if (rc != RANGE_OK) {
        e->resp.leader_hint = hint;
        return rc;
    }
    rc = gate_enter(s, sr, e);
    if (rc == RANGE_OK)
        rc = load_desc(sr, e);
    for (size_t i = 0; i < n_spans && rc == RANGE_OK; i++)
        rc = span_check(e, &sp[i]);
    if (rc == RANGE_OK)
        uncertainty_prepare(s, sr, e);
    return rc;
}

/* UNCERTAINTY (docs/txn.md section 4): a read carrying its transaction's
** uncertainty limit meets intents up to the limit (pushed like those at or
** below read_ts), and a committed version in (read_ts, limit] of span sp
** (read at read_ts) is RANGE_ERR_UNCERTAIN naming it in e->conflict: the
** coordinator moves above it, as the writer may have committed before the
** reader began in real time. Versions come from storage only (tombstones
** too); a txn's own writes never reach storage before it ends, so none is
** its own. No limit: the read's upper bound is read_ts, nothing to check.
**
** OBSERVED TIMESTAMPS (docs/txn.md 4.1). The answer to a read with a limit
** carries this node's id and an HLC reading taken after its barrier: the
** txn's observed timestamp O of this node once it is its first. A read
** carrying O for this node uses e->limit = min(limit, max(O, unc_floor))
** (at or below read_ts: no uncertainty). Safe because every version or
** intent in this range's storage was either
**   - registered by this lease before O was read, at a timestamp <= the
**     clock then (<= O: the HLC only grows) or above it and then raised
**     into unc_floor in the same s->mu section (floor-pushed commits,
**     fixed timestamps, resolutions at a commit_ts), or
**   - written under an earlier lease (any node): at or below this lease's
**     low-water, which starts unc_floor, as the timestamp cache's LOW WATER
**     already assumes of everything an earlier lease used, or
**   - registered after O was read, so after the reading txn began: it
**     need not be seen (it cannot have been acknowledged before).
** A merge brings versions of another range's leases: unc_floor goes to
** HLC_MAX for the rest of the lease (no observed timestamp applies). */
static hlc_timestamp read_upper(const server_eval *e)
{
    return hlc_is_zero(e->limit) ? e->req.read_ts : e->limit;
}

/* After the barrier: e->limit and the observation of the answer. */
static void uncertainty_prepare(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    e->limit = q->uncertainty_limit;
    if (hlc_is_zero(q->uncertainty_limit))
        return;
    range_replica_status st;
    range_replica_get_status(sr->replica, &st);
    e->resp.observed_node_id = st.node_id;
    e->resp.observed_ts = hlc_now(s->config.clock);
    if (q->observed_node_id == 0 || q->observed_node_id != st.node_id)
        return;
    pthread_mutex_lock(&s->mu);
    hlc_timestamp local = ts_max(q->observed_ts, sr->unc_floor);
    pthread_mutex_unlock(&s->mu);
    if (hlc_compare(local, e->limit) < 0)
        e->limit = hlc_compare(local, q->read_ts) > 0 ? local : HLC_ZERO;
}

/* A write registered at t while the clock read now (under s->mu): above
** the clock, a later observation of this node does not bound it. */
static void uncertainty_raise_locked(server_range *sr, hlc_timestamp t, hlc_timestamp now)
{
    if (hlc_compare(t, now) > 0 && hlc_compare(t, HLC_MAX) < 0)
        sr->unc_floor = ts_max(sr->unc_floor, t);
}

static int uncertainty_check(server_range *sr, server_eval *e, const range_span *sp)
{
    const range_kv_request *q = &e->req;
    if (hlc_is_zero(e->limit))
        return RANGE_OK;
    int rc = range__check_read_span_between(replica__engine(sr->replica), sp, q->read_ts,
                                            e->limit, &e->conflict);
    return rc == RANGE_ERR_CONFLICT ? RANGE_ERR_UNCERTAIN : rc;
}

/* VERSION GC: a read at read_ts, or a validation from read_ts, that is at
** or below the replica's MVCC GC threshold may have missed versions a GC
** entry dropped: RANGE_ERR_GC_THRESHOLD. Asked AFTER reading, without the
** node mutex: the replica raises what this reads before it writes the drops
** (replica__mvcc_gc_threshold says why that order makes it exact). */
static int gc_threshold_check(server_range *sr, hlc_timestamp read_ts)
{
    hlc_timestamp g = replica__mvcc_gc_threshold(sr->replica);
    if (hlc_is_zero(g) || hlc_compare(read_ts, g) > 0)
        return RANGE_OK;
    BASE_DEBUG("range", "r%llu: timestamp %lld.%09lld,%d must be after the GC threshold "
               "%lld.%09lld,%d", (unsigned long long)sr->range_id,
               (long long)(read_ts.wall_ns / 1000000000), (long long)(read_ts.wall_ns % 1000000000),
               (int)read_ts.logical, (long long)(g.wall_ns / 1000000000),
               (long long)(g.wall_ns % 1000000000), (int)g.logical);
    return RANGE_ERR_GC_THRESHOLD;
}

static int eval_get(range_server *s, server_range *sr, server_eval *e)
{
    range_span sp = {e->req.key, e->req.key_len, NULL, 0, true};
    if (e->req.key_len == 0)
        return RANGE_ERR_INVALID;
    bool follower = false;
    int rc = e->req.stale_ok ? follower_check(s, sr, e, &sp, 1, &follower) : RANGE_OK;
    if (rc == RANGE_OK && follower) {
        /* below the closed timestamp: nothing can land here any more, so
        ** no barrier, no pending commits to wait for, nothing to record */
        rc = range__find_intent(replica__engine(sr->replica), &sp, 0, e->req.read_ts, &e->hit);
        if (rc == RANGE_OK)
            rc = range_replica_get(sr->replica, e->req.key, e->req.key_len, e->req.read_ts,
                                   &e->value);
        if (rc == RANGE_OK) {
            e->resp.value = e->value.data;
            e->resp.value_len = e->value.len;
        }
        return follower_done(s, sr, e, rc);
    }
    if (rc == RANGE_OK)
        rc = read_prepare(s, sr, e, &sp, 1);
    if (rc != RANGE_OK)
        return rc;
    server_read rd = {sp, e->req.read_ts, NULL, NULL};
    rc = read_begin(s, sr, &rd);
    if (rc != RANGE_OK)
        return rc;
    /* intents first: a resolution removes the intent and writes the value in
    ** one batch, so looking in this order never misses both */
    rc = range__find_intent(replica__engine(sr->replica), &sp, 0, read_upper(e), &e->hit);
    if (rc != RANGE_OK) {
        read_end(s, sr, &rd, NULL);
        return rc;
    }
    rc = range_replica_get(sr->replica, e->req.key, e->req.key_len, e->req.read_ts, &e->value);
    if (rc == RANGE_OK || rc == RANGE_NOT_FOUND) {
        int urc = uncertainty_check(sr, e, &sp);
        rc = urc == RANGE_OK ? rc : urc;
    }
    if (rc == RANGE_OK) {
        e->resp.value = e->value.data;
        e->resp.value_len = e->value.len;
    }
    /* absent is an answer too: a later write of the key must land above */
    read_end(s, sr, &rd, rc == RANGE_OK || rc == RANGE_NOT_FOUND ? &sp : NULL);
    return rc;
}

typedef struct scan_row_at {
    size_t key_off, key_len, value_off, value_len;
} scan_row_at;

/* read_end of a scan page: it covered its whole span, or, when more rows
** are left, up to and including its last row (last_key). answered false:
** nothing to record. */
static void scan_read_end(range_server *s, server_range *sr, server_read *rd, bool answered,
                          bool more, bool reverse, const uint8_t *last_key, size_t last_len)
{
    base_buf end = {0}; /* owner: this function; last key + 0x00 */
    range_span covered = rd->span;
    if (answered && more && last_key != NULL) {
        if (!reverse) {
            /* [start, last] = [start, last\0); on NOMEM the whole span */
            if (base_buf_append(&end, last_key, last_len) == 0 &&
                base_buf_append_byte(&end, 0) == 0) {
                covered.end = end.data;
                covered.end_len = end.len;
            }
        } else {
            covered.start = last_key; /* [last, end) */
            covered.start_len = last_len;
        }
    }
    read_end(s, sr, rd, answered ? &covered : NULL);
    base_buf_free(&end);
}

/* The extent of the page a scan with o and these limits would answer now:
** *more when rows lie beyond it, and then *bound = where it ends (forward:
** its last key + 0x00, the page's exclusive end; reverse: its last key, the
** page's inclusive start). The page's intent check covers only that much:
** over the whole requested span it met intents far past the page (a large
** transaction resolved from the other end) and, after a large resolution,
** sought over every deleted intent key to the span's end, page after page
** (docs/txn.md 3.3). RANGE_OK or an error. */
static int scan_extent(storage_engine *eng, const storage_iter_options *o, size_t max_rows,
                       size_t max_bytes, base_buf *bound, bool *more)
{
    storage_iter *it = NULL;
    *more = false;
    int rc = storage_iter_open(eng, NULL, o, &it);
    if (rc != STORAGE_OK)
        return range__storage_rc(rc);
    size_t n = 0, bytes = 0;
    int skipped = 0;
    rc = RANGE_OK;
    for (;;) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        hlc_timestamp ts;
        bool tomb = false;
        int got = storage_iter_next(it, &k, &klen, &ts, &v, &vlen, &tomb);
        if (got < 0) {
            rc = range__storage_rc(got);
            break;
        }
        if (got == 0)
            break;
        if (tomb) {
            if (++skipped >= SERVER_TOMBSTONE_SKIP_MAX) {
                rc = RANGE_ERR_IO;
                break;
            }
            continue;
        }
        skipped = 0;
        if (n >= max_rows || (n > 0 && bytes >= max_bytes)) {
            *more = true;
            break;
        }
        base_buf_reset(bound);
        if (base_buf_append(bound, k, klen) != 0 ||
            (!o->reverse && base_buf_append_byte(bound, 0) != 0)) {
            rc = RANGE_ERR_NOMEM;
            break;
        }
        bytes += klen + vlen;
        n++;
    }
    storage_iter_close(it);
    return rc;
}

static int eval_scan(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    scan_row_at *at = NULL; /* owner: this function */
    size_t n = 0, cap = 0;
    storage_iter *it = NULL;
    /* Explicit bounds must lie in the range; open ones mean "the range's". */
    range_span bounds[2];
    size_t n_bounds = 0;
    if (q->start_len > 0)
        bounds[n_bounds++] = (range_span){q->start, q->start_len, NULL, 0, true};
    bool follower = false; /* a follower read: no read_begin / read_end */
    int rc = q->stale_ok ? follower_check(s, sr, e, bounds, n_bounds, &follower) : RANGE_OK;
    if (rc == RANGE_OK && !follower)
        rc = read_prepare(s, sr, e, bounds, n_bounds);
    if (rc != RANGE_OK)
        return rc;
    const range_descriptor *d = &e->desc;
    if (q->end_len > 0 && d->end_len > 0 &&
        range__key_cmp(q->end, q->end_len, d->end_key, d->end_len) > 0)
        return key_mismatch(e, d->end_key, d->end_len);
    if (q->end_len > 0 && d->start_len > 0 &&
        range__key_cmp(q->end, q->end_len, d->start_key, d->start_len) <= 0)
        return key_mismatch(e, q->start_len > 0 ? q->start : (const uint8_t *)"", q->start_len);
    storage_iter_options o;
    memset(&o, 0, sizeof(o));
    o.start = q->start_len > 0 ? q->start : d->start_key;
    o.start_len = q->start_len > 0 ? q->start_len : d->start_len;
    o.end = q->end_len > 0 ? q->end : d->end_key;
    o.end_len = q->end_len > 0 ? q->end_len : d->end_len;
    if (o.start_len == 0)
        o.start = NULL;
    if (o.end_len == 0)
        o.end = NULL;
    o.ts = q->read_ts;
    o.mode = STORAGE_ITER_AT_TS;
    o.reverse = q->reverse;
    /* An open bound we filled from the descriptor: the router sees which. */
    e->resp.has_descriptor = (q->start_len == 0 && d->start_len > 0) ||
                             (q->end_len == 0 && d->end_len > 0);
    size_t max_rows = q->max_rows == 0 || q->max_rows > RANGE_KV_SCAN_ROWS_MAX
                          ? RANGE_KV_SCAN_ROWS_MAX : q->max_rows;
    size_t max_bytes = q->max_bytes == 0 ? RANGE_KV_SCAN_BYTES_DEFAULT : q->max_bytes;
    if (max_bytes > SERVER_SCAN_BYTES_MAX)
        max_bytes = SERVER_SCAN_BYTES_MAX;
    server_read rd = {{o.start, o.start_len, o.end, o.end_len, false}, q->read_ts, NULL, NULL};
    rc = follower ? RANGE_OK : read_begin(s, sr, &rd);
    if (rc != RANGE_OK)
        return rc;
    /* intents first (as eval_get), over the span of the page (scan_extent:
    ** the rows it would answer; the values are read after, within it); an
    ** inconsistent read (a meta lookup) reads the committed versions under
    ** them instead: it never waits on nor pushes a holder (docs/range.md
    ** "Routing never depends on meta") */
    base_buf extent = {0}; /* owner: this function; the page's bound */
    bool extent_more = false;
    if (!q->skip_intents) {
        range_span check = rd.span;
        rc = scan_extent(replica__engine(sr->replica), &o, max_rows, max_bytes, &extent,
                         &extent_more);
        if (rc == RANGE_OK && extent_more && !q->reverse) {
            check.end = o.end = extent.data;
            check.end_len = o.end_len = extent.len;
        } else if (rc == RANGE_OK && extent_more) {
            check.start = o.start = extent.data;
            check.start_len = o.start_len = extent.len;
        }
        if (rc == RANGE_OK)
            rc = range__find_intent(replica__engine(sr->replica), &check, 0, read_upper(e),
                                    &e->hit);
    }
    if (rc != RANGE_OK) {
        if (!follower)
            read_end(s, sr, &rd, NULL);
        base_buf_free(&extent);
        return rc;
    }
    rc = storage_iter_open(replica__engine(sr->replica), NULL, &o, &it);
    if (rc != STORAGE_OK) {
        if (!follower)
            read_end(s, sr, &rd, NULL);
        base_buf_free(&extent);
        return range__storage_rc(rc);
    }
    int skipped = 0;
    for (;;) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        hlc_timestamp ts;
        bool tomb = false;
        int got = storage_iter_next(it, &k, &klen, &ts, &v, &vlen, &tomb);
        if (got < 0) {
            rc = range__storage_rc(got);
            goto cleanup;
        }
        if (got == 0) {
            /* the end of the page's extent: rows lie beyond it */
            e->resp.more = extent_more;
            break;
        }
        if (tomb) {
            if (++skipped >= SERVER_TOMBSTONE_SKIP_MAX) {
                rc = RANGE_ERR_IO;
                goto cleanup;
            }
            continue;
        }
        skipped = 0;
        if (n >= max_rows || (n > 0 && e->row_bytes.len >= max_bytes)) {
            e->resp.more = true; /* a further row exists */
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            scan_row_at *g = base_realloc(at, ncap * sizeof(*at));
            if (g == NULL) {
                rc = RANGE_ERR_NOMEM;
                goto cleanup;
            }
            at = g;
            cap = ncap;
        }
        at[n].key_off = e->row_bytes.len;
        at[n].key_len = klen;
        at[n].value_off = e->row_bytes.len + klen;
        at[n].value_len = vlen;
        if (base_buf_append(&e->row_bytes, k, klen) != 0 ||
            (vlen > 0 && base_buf_append(&e->row_bytes, v, vlen) != 0)) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
        n++;
    }
    if (e->resp.more && n == 0) {
        /* the extent's rows went between the passes (cannot at read_ts:
        ** writes below it wait for this read); no page to go on from */
        rc = RANGE_ERR_BUSY;
        e->resp.more = false;
        goto cleanup;
    }
    if (!hlc_is_zero(e->limit)) {
        /* over the part of the span this page answers for (as scan_read_end) */
        range_span covered = rd.span;
        base_buf end = {0}; /* owner: this block; last key + 0x00 */
        if (e->resp.more && n > 0) {
            const uint8_t *last = e->row_bytes.data + at[n - 1].key_off;
            if (!q->reverse) {
                if (base_buf_append(&end, last, at[n - 1].key_len) != 0 ||
                    base_buf_append_byte(&end, 0) != 0) {
                    base_buf_free(&end);
                    rc = RANGE_ERR_NOMEM;
                    goto cleanup;
                }
                covered.end = end.data;
                covered.end_len = end.len;
            } else {
                covered.start = last;
                covered.start_len = at[n - 1].key_len;
            }
        }
        rc = uncertainty_check(sr, e, &covered);
        base_buf_free(&end);
        if (rc != RANGE_OK) {
            e->resp.more = false;
            goto cleanup;
        }
    }
    if (n > 0) {
        e->rows = base_calloc(n, sizeof(*e->rows));
        if (e->rows == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
            e->rows[i].key = e->row_bytes.data + at[i].key_off;
            e->rows[i].key_len = at[i].key_len;
            e->rows[i].value = at[i].value_len > 0 ? e->row_bytes.data + at[i].value_off : NULL;
            e->rows[i].value_len = at[i].value_len;
        }
    }
    e->resp.rows = e->rows;
    e->resp.n_rows = n;
    rc = RANGE_OK;
cleanup:
    storage_iter_close(it);
    if (follower)
        rc = follower_done(s, sr, e, rc);
    else
        scan_read_end(s, sr, &rd, rc == RANGE_OK, e->resp.more, q->reverse,
                      n > 0 ? e->row_bytes.data + at[n - 1].key_off : NULL,
                      n > 0 ? at[n - 1].key_len : 0);
    base_free(at);
    base_buf_free(&extent);
    return rc;
}

/* ---- commits ---------------------------------------------------------------- */

/* Does any pending commit write what req writes or reads? Under s->mu. The
** order is range_commit's: written keys, delete spans, read spans. On a hit
** the key is copied into *c and *is_read tells the caller to classify it. */
static int check_pending_locked(const server_range *sr, const range_commit_request *req,
                                range_conflict *c, bool *is_read)
{
    size_t n_items = req->write_count + req->delete_span_count + req->read_span_count;
    for (size_t i = 0; i < n_items; i++) {
        range_span point;
        const range_span *sp;
        if (i < req->write_count) {
            point = (range_span){req->writes[i].key, req->writes[i].key_len, NULL, 0, true};
            sp = &point;
        } else if (i < req->write_count + req->delete_span_count) {
            sp = &req->delete_spans[i - req->write_count];
        } else {
            sp = &req->read_spans[i - req->write_count - req->delete_span_count];
        }
        for (const server_pending *p = sr->pending; p != NULL; p = p->next) {
            range__write_set ws = {p->writes, p->write_count, p->gen_keys.data, p->gen_offsets,
                                   p->gen_count, p->delete_spans, p->delete_span_count};
            const uint8_t *k;
            size_t klen;
            if (range__write_set_touches(&ws, sp, &k, &klen)) {
                *is_read = i >= req->write_count + req->delete_span_count;
                return range__conflict_set(c, RANGE_CONFLICT_WRITE_WRITE, k, klen, p->ts, true);
            }
        }
    }
    return RANGE_OK;
}

static int check_intents(server_range *sr, server_eval *e, const range_commit_request *creq);

/* Validation of req at the leaseholder (eval_mu held): pending commits
** first, then intents, then storage values (see COMMIT EVALUATION IS
** SERIAL). Intents before values: a resolution applies without eval_mu and
** swaps an intent for its value in one batch, so only this order never
** misses both (values first could see neither). */
static int validate_commit(range_server *s, server_range *sr, server_eval *e,
                           const range_commit_request *req, range_conflict *c)
{
    storage_engine *eng = replica__engine(sr->replica);
    hlc_timestamp r = req->read_ts;
    bool is_read = false;
    pthread_mutex_lock(&s->mu);
    int rc = check_pending_locked(sr, req, c, &is_read);
    pthread_mutex_unlock(&s->mu);
    if (rc == RANGE_ERR_CONFLICT && is_read) {
        /* phantom if the key had no live value at read_ts (as range_commit) */
        storage_value v;
        memset(&v, 0, sizeof(v));
        int g = storage_get(eng, NULL, c->key.data, c->key.len, r, &v);
        bool live = g == STORAGE_OK && !v.tombstone;
        storage_value_free(&v);
        if (g < 0)
            return range__storage_rc(g);
        c->kind = live ? RANGE_CONFLICT_READ_WRITE : RANGE_CONFLICT_PHANTOM;
    }
    if (rc != RANGE_OK)
        return rc;
    rc = check_intents(sr, e, req);
    if (rc != RANGE_OK)
        return rc;
    for (size_t i = 0; i < req->write_count; i++) {
        rc = range__check_key_storage(eng, req->writes[i].key, req->writes[i].key_len, r,
                                      RANGE_CONFLICT_WRITE_WRITE, c);
        if (rc != RANGE_OK)
            return rc;
    }
    for (size_t i = 0; i < req->delete_span_count; i++) {
        rc = range__check_span_storage(eng, &req->delete_spans[i], r, true, c);
        if (rc != RANGE_OK)
            return rc;
    }
    for (size_t i = 0; i < req->read_span_count; i++) {
        const range_span *sp = &req->read_spans[i];
        if (sp->point)
            rc = range__check_key_storage(eng, sp->start, sp->start_len, r,
                                          RANGE_CONFLICT_READ_WRITE, c);
        else
            rc = range__check_span_storage(eng, sp, r, false, c);
        if (rc != RANGE_OK)
            return rc;
    }
    /* VERSION GC: a tombstone in (read_ts, ...] may have been dropped */
    return gc_threshold_check(sr, r);
}

/* The commit's FLOOR (see NO WRITE UNDER A READ): its timestamp must be
** above this. Under s->mu. */
static hlc_timestamp commit_floor_locked(const server_range *sr, const range_kv_request *q)
{
    hlc_timestamp floor = q->read_ts;
    for (size_t i = 0; i < q->write_count; i++) {
        range_span pt = {q->writes[i].key, q->writes[i].key_len, NULL, 0, true};
        floor = ts_max(floor, range__tscache_max(sr->tscache, &pt));
    }
    for (size_t i = 0; i < q->delete_span_count; i++)
        floor = ts_max(floor, range__tscache_max(sr->tscache, &q->delete_spans[i]));
    /* generated tombstones lie inside the delete spans: no need for them */
    range__write_set ws = {q->writes, q->write_count, NULL, NULL, 0, q->delete_spans,
                           q->delete_span_count};
    for (const server_read *rd = sr->reads; rd != NULL; rd = rd->next) {
        const uint8_t *k;
        size_t klen;
        if (hlc_compare(rd->ts, floor) > 0 && range__write_set_touches(&ws, &rd->span, &k, &klen))
            floor = rd->ts;
    }
    return floor;
}

static server_pending *pending_find_locked(server_range *sr, uint64_t txn_id, uint64_t nonce)
{
    for (server_pending *p = sr->pending; p != NULL; p = p->next)
        if (p->txn_id == txn_id && p->nonce == nonce)
            return p;
    return NULL;
}

/* The stored outcome of (txn_id, nonce): RANGE_OK with *ts when applied,
** RANGE_NOT_FOUND when not, or an error. */
static int applied_ts(server_range *sr, uint64_t txn_id, uint64_t seq, hlc_timestamp *ts)
{
    bool found = false;
    int rc = replica__command_record(sr->replica, txn_id, seq, &found, ts);
    if (rc != RANGE_OK)
        return rc;
    return found ? RANGE_OK : RANGE_NOT_FOUND;
}

/* ---- two-phase commit helpers (docs/txn.md; range/intent_int.h) ------------- */

/* The Raft command key of a COMMIT or PREPARE. A PREPARE's mixes in the
** range id: the records are keyed by (txn_id, seq) alone on a node, and one
** transaction prepares in several ranges, perhaps with one nonce. */
static uint64_t command_seq(const server_range *sr, const range_kv_request *q)
{
    if (q->op != RANGE_KV_PREPARE)
        return q->nonce;
    uint64_t z = q->nonce ^ (sr->range_id * 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    return z ^ (z >> 31);
}

/* The transaction record of (anchor, txn_id) as this replica stores it:
** RANGE_OK with *found (and *rec when found), or an error (a record that
** does not decode is RANGE_ERR_CORRUPT). */
/* THE AGE SWEEP: is a txn that began at read_ts (zero: unknown, allowed)
** too old to get a record at `now`? */
static bool record_too_old(hlc_timestamp now, hlc_timestamp read_ts)
{
    return !hlc_is_zero(read_ts) &&
           read_ts.wall_ns < now.wall_ns - (int64_t)RANGE_TXN_RECORD_GC_AGE_MS * 1000000;
}

static int record_read(server_range *sr, const uint8_t *anchor, size_t anchor_len,
                       uint64_t txn_id, range__record *rec, bool *found)
{
    base_buf key = {0}, val = {0}; /* owner: this function */
    *found = false;
    int rc = range__record_key(anchor, anchor_len, txn_id, &key);
    if (rc == RANGE_OK) {
        int g = storage_get_raw(replica__engine(sr->replica), key.data, key.len, &val);
        if (g == STORAGE_OK) {
            rc = range__record_decode(val.data, val.len, rec);
            *found = rc == RANGE_OK;
            rec->spans = NULL; /* they pointed into val; the sweep reads its own */
            rec->spans_len = 0;
        } else if (g != STORAGE_NOT_FOUND) {
            rc = range__storage_rc(g);
        }
    }
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

/* The record into the answer (END_TXN, PUSH, HEARTBEAT, PREPARE's ABORTED). */
static void record_answer(server_eval *e, const range__record *rec)
{
    e->resp.has_txn = true;
    e->resp.txn_status = (uint8_t)rec->status;
    if (rec->status == RANGE_TXN_COMMITTED)
        e->resp.commit_ts = rec->commit_ts;
}

/* Other transactions' intents where a COMMIT or PREPARE writes (any ts) or
** reads (ts <= its fixed commit_ts, else any: the timestamp is not chosen
** yet). RANGE_ERR_INTENT with e->hit. No intent within the bounding span of
** the request's keys and spans costs one seek; a request of a few point
** keys, one lookup each. Under eval_mu: intents are laid only by PREPAREs
** evaluated under it (the pending ones are checked as pending commits). */
static int check_intents(server_range *sr, server_eval *e, const range_commit_request *creq)
{
    const range_kv_request *q = &e->req;
    storage_engine *eng = replica__engine(sr->replica);
    /* few point keys: a lookup each beats any seek, which skips every
    ** deleted intent key on its way (a large transaction's, once resolved,
    ** until the engine compacts them: RESOLVE asks it to) */
    bool points = creq->delete_span_count == 0 &&
                  creq->write_count + creq->read_span_count <= SERVER_INTENT_POINTS_MAX;
    for (size_t i = 0; i < creq->read_span_count && points; i++)
        points = creq->read_spans[i].point;
    bool has = true;
    /* else one seek over the request's bounding span, not the range's: the
    ** checks below look nowhere else */
    int rc = points ? RANGE_OK : range__request_has_intents(eng, &e->desc, creq, &has);
    if (rc != RANGE_OK || !has)
        return rc;
    hlc_timestamp upper = hlc_is_zero(q->commit_ts) ? HLC_MAX : q->commit_ts;
    for (size_t i = 0; i < creq->write_count && rc == RANGE_OK; i++) {
        range_span pt = {creq->writes[i].key, creq->writes[i].key_len, NULL, 0, true};
        rc = range__find_intent(eng, &pt, q->txn_id, HLC_MAX, &e->hit);
    }
    for (size_t i = 0; i < creq->delete_span_count && rc == RANGE_OK; i++)
        rc = range__find_intent(eng, &creq->delete_spans[i], q->txn_id, HLC_MAX, &e->hit);
    for (size_t i = 0; i < creq->read_span_count && rc == RANGE_OK; i++)
        rc = range__find_intent(eng, &creq->read_spans[i], q->txn_id, upper, &e->hit);
    return rc;
}

/* Other transactions' UNREPLICATED locks where a COMMIT or PREPARE writes
** (its keys and delete spans): RANGE_ERR_INTENT naming the holder (its reads
** go through locks: docs/locking.md). Under eval_mu, like LOCK's
** acquisitions, so a lock granted after this check sees the commit pending. */
static int check_locks(range_server *s, server_range *sr, server_eval *e,
                       const range_commit_request *creq)
{
    int rc = RANGE_OK;
    const uint8_t *k;
    size_t klen;
    range__lock_holder h;
    pthread_mutex_lock(&s->mu);
    parked_sweep_locked(s, sr);
    for (size_t i = 0; i < creq->write_count + creq->delete_span_count && rc == RANGE_OK; i++) {
        range_span pt = {NULL, 0, NULL, 0, true};
        const range_span *sp = &pt;
        if (i < creq->write_count) {
            pt.start = creq->writes[i].key;
            pt.start_len = creq->writes[i].key_len;
        } else {
            sp = &creq->delete_spans[i - creq->write_count];
        }
        if (range__locktable_find_unreplicated(sr->locks, creq->txn_id, sp, &k, &klen, &h))
            rc = unrepl_hit_locked(sr, k, klen, &h, &e->hit);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* After a COMMIT or PREPARE applied at ts (or was found applied): a 1PC
** commit's transaction is done here: its locks go, pushers of it end; a
** PREPARE's intents become replicated holders (its written keys, at most
** SERVER_PREPARE_HOLDERS_MAX; tombstones from delete spans and a large
** chunk's keys are found in storage when met). A read-only COMMIT
** (ts = its read_ts) ends its locks too. */
static void commit_done(range_server *s, server_range *sr, const range_kv_request *q,
                        hlc_timestamp ts)
{
    if (q->txn_id == 0)
        return;
    pthread_mutex_lock(&s->mu);
    int64_t now = lock_now_ns(s);
    if (q->op == RANGE_KV_PREPARE) {
        /* a large transaction's chunk would fill the table (every LOCK in
        ** the range BUSY until its resolution): its intents are found in
        ** storage when a LOCK meets them, like a delete span's tombstones */
        range__lock_txn txn = {q->txn_id, 0, q->priority};
        for (size_t i = 0; i < q->write_count && q->write_count <= SERVER_PREPARE_HOLDERS_MAX;
             i++)
            (void)range__locktable_add_discovered(sr->locks, &txn, q->writes[i].key,
                                                  q->writes[i].key_len, ts, now, NULL);
        locks_drain_locked(s, sr);
    } else if (range__locktable_txn_keys(sr->locks, q->txn_id) > 0 ||
               lock_txn_find_locked(sr, q->txn_id) != NULL) {
        parked_forget_txn_locked(s, sr, q->txn_id, NULL);
        (void)range__locktable_release_all(sr->locks, q->txn_id, now);
        locks_drain_locked(s, sr);
        lock_txn_forget_locked(sr, q->txn_id);
        txn_final_locked(s, q->txn_id, RANGE_TXN_COMMITTED, ts, true, false);
    }
    pthread_mutex_unlock(&s->mu);
}

/* The raw writes of a PREPARE at t: an intent for each of ws (its writes
** and the tombstones of its delete spans) and, create_record, the PENDING
** record (heartbeat now). Bytes in *bytes. owner of *out: caller
** (base_free); of *bytes: caller (base_buf_free). */
static int prepare_raw_writes(const range_kv_request *q, const range_write *ws, size_t n,
                              hlc_timestamp t, hlc_timestamp now, base_buf *bytes,
                              range_raw_write **out, size_t *n_out)
{
    size_t n_raw = n + (q->create_record ? 1 : 0);
    range_raw_write *raw = NULL;     /* owner: *out once returned */
    size_t *at = NULL;               /* owner: this function; key/value offsets */
    base_buf key = {0};              /* owner: this function */
    int rc = RANGE_ERR_NOMEM;
    *out = NULL;
    *n_out = 0;
    if (n_raw == 0)
        return RANGE_OK;
    raw = base_calloc(n_raw, sizeof(*raw));
    at = base_calloc(2 * n_raw + 1, sizeof(*at));
    if (raw == NULL || at == NULL)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        range__intent in = {q->txn_id, q->nonce, t, q->anchor, q->anchor_len,
                            ws[i].tombstone, ws[i].value, ws[i].value_len};
        rc = range__intent_key(ws[i].key, ws[i].key_len, &key);
        if (rc != RANGE_OK)
            goto cleanup;
        at[2 * i] = bytes->len;
        rc = RANGE_ERR_NOMEM;
        if (base_buf_append(bytes, key.data, key.len) != 0)
            goto cleanup;
        at[2 * i + 1] = bytes->len;
        rc = range__intent_encode(&in, bytes);
        if (rc != RANGE_OK)
            goto cleanup;
        raw[i].kind = RANGE_RAW_PUT;
    }
    if (q->create_record) {
        range__record rec = {RANGE_TXN_PENDING, q->txn_id, q->priority, HLC_ZERO, now, 0,
                             NULL, 0};
        uint8_t val[RANGE__RECORD_SIZE];
        rc = range__record_key(q->anchor, q->anchor_len, q->txn_id, &key);
        if (rc == RANGE_OK)
            rc = range__record_encode(&rec, val);
        if (rc != RANGE_OK)
            goto cleanup;
        at[2 * n] = bytes->len;
        rc = RANGE_ERR_NOMEM;
        if (base_buf_append(bytes, key.data, key.len) != 0)
            goto cleanup;
        at[2 * n + 1] = bytes->len;
        if (base_buf_append(bytes, val, sizeof(val)) != 0)
            goto cleanup;
        raw[n].kind = RANGE_RAW_RECORD;
    }
    at[2 * n_raw] = bytes->len;
    for (size_t i = 0; i < n_raw; i++) { /* pointers only now: appends move the bytes */
        raw[i].key = bytes->data + at[2 * i];
        raw[i].key_len = at[2 * i + 1] - at[2 * i];
        raw[i].value = bytes->data + at[2 * i + 1];
        raw[i].value_len = at[2 * i + 2] - at[2 * i + 1];
    }
    *out = raw;
    *n_out = n_raw;
    raw = NULL;
    rc = RANGE_OK;
cleanup:
    base_free(raw);
    base_free(at);
    base_buf_free(&key);
    return rc;
}

/* After a PREPARE that creates its record applied: a pusher may have written
** ABORTED first (then the PENDING write was skipped at apply and the intents
** are laid for nothing: the next reader resolves them). */
static int prepare_record_after(server_range *sr, server_eval *e)
{
    range__record rec;
    bool found = false;
    int rc = record_read(sr, e->req.anchor, e->req.anchor_len, e->req.txn_id, &rec, &found);
    if (rc != RANGE_OK || !found || rec.status != RANGE_TXN_ABORTED)
        return rc;
    record_answer(e, &rec);
    return RANGE_ERR_ABORTED;
}

/* One evaluation under eval_mu, after a barrier in `term`. Returns RANGE_OK
** with *wait_on (a referenced record to wait for: ours or a retry's
** original) or *ts (already applied); RANGE_ERR_DROPPED to evaluate again;
** RANGE_ERR_PUSHED (a fixed commit_ts at or below the floor: e->resp.commit_ts
** is the lowest it would accept; decided after the idempotence check, so the
** commit surely did not apply and no earlier proposal of it can); or the
** answer's error. */
static int commit_evaluate_locked(range_server *s, server_range *sr, server_eval *e,
                                  uint64_t term, server_pending **wait_on, hlc_timestamp *ts)
{
    const range_kv_request *q = &e->req;
    range_commit_request creq = {q->txn_id, q->read_ts, q->writes, q->write_count,
                                 q->delete_spans, q->delete_span_count, q->read_spans,
                                 q->read_span_count};
    base_buf gen_keys = {0};    /* owner: this function until the record takes it */
    size_t *gen_offsets = NULL; /* owner: likewise */
    size_t gen_count = 0;
    range_write *cmd_writes = NULL; /* owner: this function */
    server_pending *p = NULL;       /* owner: this function until registered */
    base_buf raw_bytes = {0};       /* owner: this function (PREPARE's intents) */
    range_raw_write *raw = NULL;    /* owner: this function */
    size_t n_raw = 0;
    bool prepare = q->op == RANGE_KV_PREPARE;
    uint64_t seq = command_seq(sr, q);
    uint64_t hint = 0;
    int rc;

    *wait_on = NULL;
    pthread_mutex_lock(&s->mu);
    server_pending *orig = pending_find_locked(sr, q->txn_id, seq);
    if (orig != NULL)
        orig->refs++; /* a retry while the first proposal is in flight */
    pthread_mutex_unlock(&s->mu);
    if (orig != NULL) {
        *wait_on = orig;
        return RANGE_OK;
    }
    rc = applied_ts(sr, q->txn_id, seq, ts);
    if (rc != RANGE_NOT_FOUND)
        return rc; /* applied (RANGE_OK with *ts), or an error */
    pthread_mutex_lock(&s->mu);
    const server_finished *fin = q->txn_id != 0 ? finished_find_locked(s, q->txn_id) : NULL;
    bool victim = fin != NULL && fin->status == RANGE_TXN_ABORTED && fin->cycle_len > 0;
    pthread_mutex_unlock(&s->mu);
    if (victim)
        return RANGE_ERR_ABORTED; /* a deadlock's victim commits nothing new */
    if (prepare && q->create_record) {
        /* a final record: ABORTED refuses; COMMITTED (a stale retry) lays nothing */
        range__record rec;
        bool found = false;
        rc = record_read(sr, q->anchor, q->anchor_len, q->txn_id, &rec, &found);
        if (rc != RANGE_OK)
            return rc;
        if (found && rec.status != RANGE_TXN_PENDING) {
            record_answer(e, &rec);
            *ts = rec.commit_ts;
            return rec.status == RANGE_TXN_ABORTED ? RANGE_ERR_ABORTED : RANGE_OK;
        }
        if (!found && record_too_old(hlc_now(s->config.clock), q->read_ts)) {
            /* its record may have been swept as ABORTED (THE AGE SWEEP) */
            e->resp.has_txn = true;
            e->resp.txn_status = RANGE_TXN_ABORTED;
            return RANGE_ERR_ABORTED;
        }
    }
    rc = validate_commit(s, sr, e, &creq, &e->conflict);
    if (rc == RANGE_OK)
        rc = check_locks(s, sr, e, &creq);
    if (rc != RANGE_OK)
        goto cleanup;
    /* a PREPARE's command also carries its record */
    rc = range__collect_tombstones(replica__engine(sr->replica), &creq,
                                   RANGE_COMMAND_WRITES_MAX - (prepare ? 1 : 0), &gen_keys,
                                   &gen_offsets, &gen_count);
    if (rc != RANGE_OK)
        goto cleanup;
    size_t n_cmd = q->write_count + gen_count;
    rc = RANGE_ERR_NOMEM;
    if (n_cmd > 0 && (cmd_writes = base_calloc(n_cmd, sizeof(*cmd_writes))) == NULL)
        goto cleanup;
    for (size_t i = 0; i < q->write_count; i++)
        cmd_writes[i] = q->writes[i];
    for (size_t i = 0; i < gen_count; i++) {
        range_write *w = &cmd_writes[q->write_count + i];
        w->key = gen_keys.data + gen_offsets[i];
        w->key_len = gen_offsets[i + 1] - gen_offsets[i];
        w->tombstone = true;
    }
    /* The record takes gen_keys; cmd_writes keeps pointing at its bytes. */
    rc = pending_new(s, sr, q, &gen_keys, &gen_offsets, gen_count, &p);
    if (rc != RANGE_OK)
        goto cleanup;
    p->nonce = seq;

    /* Floor, timestamp, the read spans into the cache and the registration
    ** in one critical section (see NO WRITE UNDER A READ). */
    pthread_mutex_lock(&s->mu);
    hlc_timestamp floor = commit_floor_locked(sr, q);
    hlc_timestamp now = hlc_now(s->config.clock);
    hlc_timestamp t;
    if (!hlc_is_zero(q->commit_ts)) {
        if (hlc_compare(q->commit_ts, floor) <= 0) {
            pthread_mutex_unlock(&s->mu);
            e->resp.commit_ts = hlc_next(floor);
            rc = RANGE_ERR_PUSHED;
            goto cleanup;
        }
        t = q->commit_ts;
    } else {
        t = now;
        if (hlc_compare(t, floor) <= 0)
            t = hlc_next(floor);
    }
    uncertainty_raise_locked(sr, t, now);
    /* our reads must hold up to t: no later commit may write under them */
    for (size_t i = 0; i < q->read_span_count; i++)
        range__tscache_add(sr->tscache, &q->read_spans[i], t);
    p->ts = t;
    p->refs = 1;
    p->next = sr->pending;
    if (sr->pending != NULL)
        sr->pending->prev = p;
    sr->pending = p;
    counter_add(s, RANGE__SERVER_PENDING, 1);
    pthread_mutex_unlock(&s->mu);

    range_command cmd = {.txn_id = q->txn_id, .seq = seq, .commit_ts = t,
                         .writes = cmd_writes, .write_count = n_cmd};
    rc = RANGE_OK;
    if (prepare) {
        /* intents instead of values: nothing becomes visible yet */
        rc = prepare_raw_writes(q, cmd_writes, n_cmd, t, hlc_now(s->config.clock), &raw_bytes,
                                &raw, &n_raw);
        cmd.writes = NULL;
        cmd.write_count = 0;
        cmd.raw_writes = raw;
        cmd.raw_write_count = n_raw;
    }
    if (rc == RANGE_OK)
        rc = replica__propose(sr->replica, &cmd, term, false, server_propose_cb, p, &hint);
    if (rc != RANGE_OK) {
        /* not proposed: the callback never runs, the record goes now */
        pthread_mutex_lock(&s->mu);
        pending_unlink(sr, p);
        counter_add(s, RANGE__SERVER_PENDING, -1);
        pthread_mutex_unlock(&s->mu);
        pending_free(p);
        p = NULL;
        e->resp.leader_hint = hint;
        goto cleanup;
    }
    pthread_mutex_lock(&s->mu);
    counter_add(s, RANGE__SERVER_PROPOSED, 1);
    pthread_mutex_unlock(&s->mu);
    BASE_DEBUG("range", "r%llu: txn %llu/%llu proposed in term %llu",
               (unsigned long long)sr->range_id, (unsigned long long)q->txn_id,
               (unsigned long long)q->nonce, (unsigned long long)term);
    *wait_on = p;
    p = NULL;
cleanup:
    pending_free(p);
    base_free(cmd_writes);
    base_buf_free(&gen_keys);
    base_free(gen_offsets);
    base_free(raw);
    base_buf_free(&raw_bytes);
    return rc;
}

/* COMMIT WAIT (see invariants): return once the physical clock is past ts,
** or after the bound, or at shutdown. */
static void commit_wait(range_server *s, hlc_timestamp ts)
{
    hlc_clock *c = s->config.clock;
    int64_t left_ns = ts.wall_ns - hlc_physical_now_ns(c) + 1;
    if (left_ns <= 0)
        return;
    int64_t max_ns = SERVER_COMMIT_WAIT_MAX_OFFSETS * hlc_max_offset_ns(c);
    struct timespec deadline = deadline_after_ns(left_ns < max_ns ? left_ns : max_ns);
    pthread_mutex_lock(&s->mu);
    counter_add(s, RANGE__SERVER_COMMIT_WAITS, 1);
    while (!s->stopping && hlc_physical_now_ns(c) <= ts.wall_ns) {
        if (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&s->mu);
}

static int eval_commit(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    if (q->op == RANGE_KV_COMMIT && q->write_count == 0 && q->delete_span_count == 0) {
        /* read-only: its snapshot is consistent by construction (range_commit) */
        e->resp.commit_ts = q->read_ts;
        commit_done(s, sr, q, q->read_ts);
        return RANGE_OK;
    }
    range_commit_request creq = {q->txn_id, q->read_ts, q->writes, q->write_count,
                                 q->delete_spans, q->delete_span_count, q->read_spans,
                                 q->read_span_count};
    int rc = range__validate_request(&creq);
    if (rc != RANGE_OK)
        return rc;
    if (q->write_count > RANGE_COMMAND_WRITES_MAX)
        return RANGE_ERR_TOO_LARGE;
    for (int attempt = 0; attempt < SERVER_COMMIT_ATTEMPTS_MAX; attempt++) {
        uint64_t term = 0, hint = 0;
        rc = server_barrier_wait(s, sr, &term, &hint);
        if (rc != RANGE_OK) {
            e->resp.leader_hint = hint;
            return rc;
        }
        /* the descriptor is checked inside the split gate, and the gate is
        ** left once the commit is proposed (THE SPLIT GATE) */
        rc = gate_enter(s, sr, e);
        if (rc == RANGE_OK)
            rc = load_desc(sr, e);
        if (rc != RANGE_OK)
            return rc;
        for (size_t i = 0; i < q->write_count; i++)
            if (!range_descriptor_contains(&e->desc, q->writes[i].key, q->writes[i].key_len))
                return key_mismatch(e, q->writes[i].key, q->writes[i].key_len);
        for (size_t i = 0; i < q->delete_span_count; i++)
            if ((rc = span_check(e, &q->delete_spans[i])) != RANGE_OK)
                return rc;
        for (size_t i = 0; i < q->read_span_count; i++)
            if ((rc = span_check(e, &q->read_spans[i])) != RANGE_OK)
                return rc;
        if (q->op == RANGE_KV_PREPARE && q->create_record &&
            !range_descriptor_contains(&e->desc, q->anchor, q->anchor_len))
            return key_mismatch(e, q->anchor, q->anchor_len);

        server_pending *wait_on = NULL;
        hlc_timestamp ts = HLC_ZERO;
        pthread_mutex_lock(&sr->eval_mu);
        rc = commit_evaluate_locked(s, sr, e, term, &wait_on, &ts);
        pthread_mutex_unlock(&sr->eval_mu);
        gate_leave(s, e);
        if (rc == RANGE_ERR_DROPPED)
            continue; /* the term moved between barrier and proposal */
        if (rc != RANGE_OK)
            return rc;
        if (wait_on == NULL) {
            if (q->op == RANGE_KV_COMMIT) /* (a PREPARE registered at its apply) */
                commit_done(s, sr, q, ts);
            commit_wait(s, ts);
            e->resp.commit_ts = ts; /* applied before: the stored timestamp */
            return RANGE_OK;
        }
        rc = pending_wait(s, wait_on);
        if (rc == RANGE_OK) {
            /* applied: answer what the record says (a retry may have applied
            ** at the first proposal's timestamp, not this one) */
            rc = applied_ts(sr, q->txn_id, command_seq(sr, q), &ts);
            if (rc == RANGE_OK && q->op == RANGE_KV_PREPARE && q->create_record)
                rc = prepare_record_after(sr, e);
            if (rc == RANGE_OK) {
                commit_done(s, sr, q, ts);
                commit_wait(s, ts);
                e->resp.commit_ts = ts;
                return RANGE_OK;
            }
            if (rc == RANGE_ERR_ABORTED)
                return rc;
            BASE_ERROR("range", "r%llu: txn %llu/%llu applied without its record (%d)",
                       (unsigned long long)sr->range_id, (unsigned long long)q->txn_id,
                       (unsigned long long)q->nonce, rc);
            return RANGE_ERR_AMBIGUOUS;
        }
        if (rc != RANGE_ERR_DROPPED)
            return rc; /* AMBIGUOUS: timeout or shutdown */
        BASE_DEBUG("range", "r%llu: txn %llu/%llu dropped; evaluating again",
                   (unsigned long long)sr->range_id, (unsigned long long)q->txn_id,
                   (unsigned long long)q->nonce);
        /* dropped: it will not apply from that proposal; a fresh barrier
        ** and the idempotence record decide on the next attempt */
    }
    return RANGE_ERR_AMBIGUOUS; /* attempts used up: it may still be in a log */
}

/* ---- validate ------------------------------------------------------------------ */

/* Does a pending commit at or below upper write in one of the spans? Under
** s->mu. The key is copied into *c (kind set by the caller). */
static int check_pending_upto_locked(const server_range *sr, const range_span *spans, size_t n,
                                     hlc_timestamp upper, range_conflict *c)
{
    for (const server_pending *p = sr->pending; p != NULL; p = p->next) {
        if (hlc_compare(p->ts, upper) > 0)
            continue; /* after the commit being validated */
        range__write_set ws = {p->writes, p->write_count, p->gen_keys.data, p->gen_offsets,
                               p->gen_count, p->delete_spans, p->delete_span_count};
        for (size_t i = 0; i < n; i++) {
            const uint8_t *k;
            size_t klen;
            if (range__write_set_touches(&ws, &spans[i], &k, &klen))
                return range__conflict_set(c, RANGE_CONFLICT_READ_WRITE, k, klen, p->ts, true);
        }
    }
    return RANGE_OK;
}

/* VALIDATE (see its invariant): the reads of a commit that writes in another
** range, checked and recorded at its commit timestamp. */
static int eval_validate(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    range_commit_request creq;
    memset(&creq, 0, sizeof(creq));
    creq.read_ts = q->read_ts;
    creq.read_spans = q->read_spans;
    creq.read_span_count = q->read_span_count;
    if (hlc_compare(q->commit_ts, q->read_ts) <= 0)
        return RANGE_ERR_INVALID;
    int rc = range__validate_request(&creq);
    if (rc != RANGE_OK)
        return rc;
    uint64_t term = 0, hint = 0;
    rc = server_barrier_wait(s, sr, &term, &hint);
    if (rc != RANGE_OK) {
        e->resp.leader_hint = hint;
        return rc;
    }
    rc = gate_enter(s, sr, e); /* left in server_evaluate */
    if (rc == RANGE_OK)
        rc = load_desc(sr, e);
    if (rc != RANGE_OK)
        return rc;
    for (size_t i = 0; i < q->read_span_count; i++)
        if ((rc = span_check(e, &q->read_spans[i])) != RANGE_OK)
            return rc;

    /* record first, then look */
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < q->read_span_count; i++)
        range__tscache_add(sr->tscache, &q->read_spans[i], q->commit_ts);
    rc = check_pending_upto_locked(sr, q->read_spans, q->read_span_count, q->commit_ts,
                                   &e->conflict);
    pthread_mutex_unlock(&s->mu);
    storage_engine *eng = replica__engine(sr->replica);
    if (rc == RANGE_ERR_CONFLICT) {
        /* phantom if the key had no live value at read_ts (as range_commit) */
        storage_value v;
        memset(&v, 0, sizeof(v));
        int g = storage_get(eng, NULL, e->conflict.key.data, e->conflict.key.len, q->read_ts, &v);
        bool live = g == STORAGE_OK && !v.tombstone;
        storage_value_free(&v);
        if (g < 0)
            return range__storage_rc(g);
        e->conflict.kind = live ? RANGE_CONFLICT_READ_WRITE : RANGE_CONFLICT_PHANTOM;
        return rc;
    }
    if (rc != RANGE_OK)
        return rc;
    /* another transaction's intent at or below commit_ts may commit there */
    for (size_t i = 0; i < q->read_span_count && rc == RANGE_OK; i++)
        rc = range__find_intent(eng, &q->read_spans[i], q->txn_id, q->commit_ts, &e->hit);
    if (rc != RANGE_OK)
        return rc;
    for (size_t i = 0; i < q->read_span_count; i++) {
        rc = range__check_read_span_between(eng, &q->read_spans[i], q->read_ts, q->commit_ts,
                                            &e->conflict);
        if (rc != RANGE_OK)
            return rc;
    }
    rc = gc_threshold_check(sr, q->read_ts); /* VERSION GC */
    if (rc != RANGE_OK)
        return rc;
    e->resp.commit_ts = q->commit_ts;
    return RANGE_OK;
}

/* ---- transaction records, pushes, resolution (docs/txn.md) -------------------- */

/* A fresh key for a record or resolve command: those are conditional by
** content, so a duplicate does no harm, but their (txn_id, seq) must not
** collide with a PREPARE's or another server's. Random base, then a count. */
static uint64_t next_cmd_seq(range_server *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t v = ++s->cmd_seq;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* Propose cmd (evaluated in `term`, eval_mu held) with a pending record that
** writes nothing reads or commits look at (records and resolutions are
** ordered by the intents, not by the pending list), handed back referenced
** in *wait_on. RANGE_OK, or the proposal's error (leader hint set). */
static int propose_bare(range_server *s, server_range *sr, server_eval *e, uint64_t term,
                        const range_command *cmd, server_pending **wait_on)
{
    uint64_t hint = 0;
    server_pending *p = base_calloc(1, sizeof(*p)); /* owner: the pending list once linked */
    if (p == NULL)
        return RANGE_ERR_NOMEM;
    p->server = s;
    p->range = sr;
    p->txn_id = cmd->txn_id;
    p->nonce = cmd->seq;
    p->ts = cmd->commit_ts;
    p->refs = 1;
    pthread_mutex_lock(&s->mu);
    /* a resolution writes values at the txn's commit_ts (UNCERTAINTY) */
    uncertainty_raise_locked(sr, cmd->commit_ts, hlc_now(s->config.clock));
    p->next = sr->pending;
    if (sr->pending != NULL)
        sr->pending->prev = p;
    sr->pending = p;
    counter_add(s, RANGE__SERVER_PENDING, 1);
    pthread_mutex_unlock(&s->mu);
    int rc = replica__propose(sr->replica, cmd, term, false, server_propose_cb, p, &hint);
    if (rc != RANGE_OK) {
        pthread_mutex_lock(&s->mu);
        pending_unlink(sr, p);
        counter_add(s, RANGE__SERVER_PENDING, -1);
        pthread_mutex_unlock(&s->mu);
        pending_free(p);
        e->resp.leader_hint = hint;
        return rc;
    }
    *wait_on = p;
    return RANGE_OK;
}

/* What a record update wants over cur (NULL: no record): false = nothing
** to write (the answer is cur); else *next and the raw write's *kind. */
typedef bool (*record_decide_fn)(range_server *s, const server_eval *e, const range__record *cur,
                                 range__record *next, uint8_t *kind);

/* Barrier, the anchor's range (split gate, descriptor), then under eval_mu
** the record of (anchor, txn_id) is read and, when decide says so, a
** conditional write of it proposed and waited for (again on DROPPED: the
** apply refuses a record outside the range, which drops it too). RANGE_OK
** with *rec / *found as stored afterwards, or an error. */
static int record_update(range_server *s, server_range *sr, server_eval *e,
                         const uint8_t *anchor, size_t anchor_len, uint64_t txn_id,
                         record_decide_fn decide, range__record *rec, bool *found)
{
    base_buf key = {0}, val = {0}; /* owner: this function */
    int rc = RANGE_ERR_AMBIGUOUS;
    for (int attempt = 0; attempt < SERVER_COMMIT_ATTEMPTS_MAX; attempt++) {
        uint64_t term = 0, hint = 0;
        rc = server_barrier_wait(s, sr, &term, &hint);
        if (rc != RANGE_OK) {
            e->resp.leader_hint = hint;
            break;
        }
        rc = gate_enter(s, sr, e);
        if (rc == RANGE_OK)
            rc = load_desc(sr, e);
        if (rc == RANGE_OK && !range_descriptor_contains(&e->desc, anchor, anchor_len))
            rc = key_mismatch(e, anchor, anchor_len);
        if (rc != RANGE_OK)
            break;
        range__record next;
        uint8_t kind = RANGE_RAW_RECORD;
        bool write = false;
        server_pending *wait_on = NULL;
        pthread_mutex_lock(&sr->eval_mu);
        rc = record_read(sr, anchor, anchor_len, txn_id, rec, found);
        if (rc == RANGE_OK)
            write = decide(s, e, *found ? rec : NULL, &next, &kind);
        if (write) {
            base_buf_reset(&val);
            rc = range__record_key(anchor, anchor_len, txn_id, &key);
            if (rc == RANGE_OK)
                rc = range__record_encode_buf(&next, &val);
            range_raw_write w = {key.data, key.len, val.data, val.len, kind};
            range_command cmd = {.txn_id = txn_id, .seq = next_cmd_seq(s),
                                 .raw_writes = &w, .raw_write_count = 1};
            if (rc == RANGE_OK)
                rc = propose_bare(s, sr, e, term, &cmd, &wait_on);
        }
        pthread_mutex_unlock(&sr->eval_mu);
        gate_leave(s, e);
        if (rc != RANGE_OK || !write)
            break;
        rc = pending_wait(s, wait_on);
        if (rc == RANGE_ERR_DROPPED)
            continue;
        if (rc == RANGE_OK)
            rc = record_read(sr, anchor, anchor_len, txn_id, rec, found);
        break;
    }
    base_buf_free(&key);
    base_buf_free(&val);
    /* every attempt dropped: none can apply any more, the caller may retry */
    return rc == RANGE_ERR_DROPPED ? RANGE_ERR_UNAVAILABLE : rc;
}

/* END_TXN and HEARTBEAT: a final record stays; else END_TXN writes its
** status (keeping the heartbeat) and HEARTBEAT a PENDING one beating now. */
static bool end_txn_decide(range_server *s, const server_eval *e, const range__record *cur,
                           range__record *next, uint8_t *kind)
{
    const range_kv_request *q = &e->req;
    if (cur != NULL && cur->status != RANGE_TXN_PENDING)
        return false;
    /* Every commit finds the PENDING record its anchor's PREPARE made; none
    ** means a late duplicate after the record was collected (docs/txn.md,
    ** "Garbage collection"): it must not commit what was resolved since */
    if (cur == NULL && q->op == RANGE_KV_END_TXN && q->txn_status == RANGE_TXN_COMMITTED)
        return false;
    hlc_timestamp now = hlc_now(s->config.clock);
    /* no record is made for a txn older than the age sweep (THE AGE SWEEP) */
    if (cur == NULL && q->op == RANGE_KV_HEARTBEAT && record_too_old(now, q->read_ts))
        return false;
    memset(next, 0, sizeof(*next));
    next->txn_id = q->txn_id;
    next->priority = q->priority;
    *kind = RANGE_RAW_RECORD;
    if (q->op == RANGE_KV_HEARTBEAT) {
        /* a deadlock chose it (its push was told): the record says so now */
        next->status = e->abort_record ? RANGE_TXN_ABORTED : RANGE_TXN_PENDING;
        next->heartbeat = now;
        next->final_wall_ns = e->abort_record ? now.wall_ns : 0;
        return true;
    }
    next->status = (range_txn_status)q->txn_status;
    next->final_wall_ns = now.wall_ns;
    next->heartbeat = cur != NULL ? cur->heartbeat : now;
    if (next->status == RANGE_TXN_COMMITTED) {
        next->commit_ts = q->commit_ts;
        next->spans = e->record_spans; /* THE SWEEP OF COMMITTED RECORDS */
        next->spans_len = e->record_spans_len;
    }
    return true;
}

/* END_TXN and HEARTBEAT (range.h, end_txn; kv_int.h). */
static int eval_record_spans(range_server *s, server_range *sr, server_eval *e);

static int eval_record(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    /* the participant spans the COMMITTED record keeps (merged again: the
    ** bound is the server's to keep); none when they do not fit */
    base_buf spans = {0}; /* owner: this function; e->record_spans point into it */
    if (q->op == RANGE_KV_END_TXN && q->txn_status == RANGE_TXN_COMMITTED &&
        q->span_count > 0 &&
        range__record_spans_build(q->spans, q->span_count, &spans) == RANGE_OK) {
        e->record_spans = spans.data;
        e->record_spans_len = spans.len;
    }
    int rc = eval_record_spans(s, sr, e);
    e->record_spans = NULL;
    e->record_spans_len = 0;
    base_buf_free(&spans);
    return rc;
}

/* eval_record with e->record_spans built. */
static int eval_record_spans(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    range__record rec;
    bool found = false;
    if (q->op == RANGE_KV_END_TXN && q->txn_status == RANGE_TXN_COMMITTED &&
        hlc_is_zero(q->commit_ts))
        return RANGE_ERR_INVALID;
    if (q->op == RANGE_KV_HEARTBEAT) {
        pthread_mutex_lock(&s->mu);
        const server_finished *f = finished_find_locked(s, q->txn_id);
        e->abort_record = f != NULL && f->status == RANGE_TXN_ABORTED && f->cycle_len > 0;
        pthread_mutex_unlock(&s->mu);
    }
    int rc = record_update(s, sr, e, q->anchor, q->anchor_len, q->txn_id, end_txn_decide, &rec,
                           &found);
    if (rc != RANGE_OK)
        return rc;
    if (!found && q->op == RANGE_KV_END_TXN && q->txn_status == RANGE_TXN_COMMITTED) {
        /* no record to commit (end_txn_decide): collected, so final long ago */
        e->resp.has_txn = true;
        e->resp.txn_status = RANGE_TXN_ABORTED;
        return RANGE_ERR_ABORTED;
    }
    if (!found && q->op == RANGE_KV_HEARTBEAT &&
        record_too_old(hlc_now(s->config.clock), q->read_ts)) {
        /* refused (end_txn_decide): its record may have been swept */
        e->resp.has_txn = true;
        e->resp.txn_status = RANGE_TXN_ABORTED;
        return RANGE_ERR_ABORTED;
    }
    if (!found)
        return RANGE_ERR_AMBIGUOUS; /* written, yet gone: a GC_TXN raced it (rare) */
    record_answer(e, &rec);
    pthread_mutex_lock(&s->mu);
    if (rec.status != RANGE_TXN_PENDING) {
        /* pushers waiting on it end; an aborted one's locks here go */
        txn_final_locked(s, q->txn_id, rec.status, rec.commit_ts, true,
                         rec.status == RANGE_TXN_ABORTED);
    } else {
        range__txnwait_record tr = {q->txn_id, rec.priority, RANGE_TXN_PENDING,
                                    rec.heartbeat.wall_ns};
        range__txnwait_update_record(sr->txnwait, &tr); /* a fresh heartbeat */
        txnwait_drain_locked(s, sr);
    }
    const server_finished *f = finished_find_locked(s, q->txn_id);
    if (q->op == RANGE_KV_HEARTBEAT && rec.status == RANGE_TXN_ABORTED && f != NULL &&
        f->cycle_len > 0) {
        memcpy(e->cycle, f->cycle, f->cycle_len * sizeof(e->cycle[0]));
        e->resp.cycle = e->cycle;
        e->resp.cycle_len = f->cycle_len;
    }
    pthread_mutex_unlock(&s->mu);
    if (rec.status == RANGE_TXN_ABORTED &&
        (q->op == RANGE_KV_HEARTBEAT || q->txn_status == RANGE_TXN_COMMITTED))
        return RANGE_ERR_ABORTED;
    return RANGE_OK;
}

/* GC_TXN: a final record goes (docs/txn.md, "Garbage collection"). The
** caller vouches that none of the txn's intents is left (its coordinator's
** RESOLVEs all succeeded): a pusher meeting a leftover intent of a
** COMMITTED txn without its record would abort it. A final record never
** changes, so the DELETE proposed under eval_mu after reading it final
** removes exactly that record on every replica. A PENDING one stays. */
static bool gc_decide(range_server *s, const server_eval *e, const range__record *cur,
                      range__record *next, uint8_t *kind)
{
    (void)s;
    (void)e;
    if (cur == NULL || cur->status == RANGE_TXN_PENDING)
        return false;
    *next = *cur; /* encoded, unused by the DELETE */
    *kind = RANGE_RAW_DELETE;
    return true;
}

/* GC_TXN (kv_int.h): answer the record left (none: has_txn false). */
static int eval_gc_txn(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    range__record rec;
    bool found = false;
    int rc = record_update(s, sr, e, q->anchor, q->anchor_len, q->txn_id, gc_decide, &rec,
                           &found);
    if (rc == RANGE_OK && found)
        record_answer(e, &rec);
    return rc;
}

/* PUSH: abort the pushee when its record is PENDING with a heartbeat older
** than RANGE_TXN_RECORD_EXPIRY_MS, or absent while the intent met is that
** old; conditional at apply on nobody having heartbeat (or created the
** record) since. */
static bool push_decide(range_server *s, const server_eval *e, const range__record *cur,
                        range__record *next, uint8_t *kind)
{
    const range_kv_request *q = &e->req;
    int64_t now_ns = hlc_now(s->config.clock).wall_ns;
    int64_t expiry_ns = (int64_t)RANGE_TXN_RECORD_EXPIRY_MS * 1000000;
    hlc_timestamp seen = cur != NULL ? cur->heartbeat : q->intent_ts;
    if (cur == NULL && q->since_wall_ns > 0) /* a lock holder: alive from its lock on */
        seen = (hlc_timestamp){q->since_wall_ns, 0};
    if ((cur != NULL && cur->status != RANGE_TXN_PENDING) || seen.wall_ns > now_ns - expiry_ns)
        return false;
    if (cur == NULL && hlc_is_zero(q->intent_ts) && q->since_wall_ns <= 0)
        return false; /* the intent's age unknown: never presumed dead */
    memset(next, 0, sizeof(*next));
    next->status = RANGE_TXN_ABORTED;
    next->txn_id = q->pushee_txn_id;
    next->priority = cur != NULL ? cur->priority : 0;
    next->heartbeat = cur != NULL ? cur->heartbeat : HLC_ZERO; /* the condition */
    next->final_wall_ns = now_ns;
    *kind = RANGE_RAW_RECORD_IF_HEARTBEAT;
    return true;
}

/* Abort the pushee (a deadlock or a priority push decided it), conditional
** like an expiry's on nobody having heartbeat since the pusher looked. */
static bool abort_decide(range_server *s, const server_eval *e, const range__record *cur,
                         range__record *next, uint8_t *kind)
{
    if (cur != NULL && cur->status != RANGE_TXN_PENDING)
        return false;
    memset(next, 0, sizeof(*next));
    next->status = RANGE_TXN_ABORTED;
    next->txn_id = e->req.pushee_txn_id;
    next->priority = cur != NULL ? cur->priority : 0;
    next->heartbeat = cur != NULL ? cur->heartbeat : HLC_ZERO; /* the condition */
    next->final_wall_ns = hlc_now(s->config.clock).wall_ns;
    *kind = RANGE_RAW_RECORD_IF_HEARTBEAT;
    return true;
}

/* The pusher itself is known aborted here (a deadlock chose it, or its
** record was aborted): true, with its cycle in the answer. Under s->mu. */
static bool pusher_aborted_locked(range_server *s, server_eval *e)
{
    if (e->req.txn_id == 0)
        return false;
    const server_finished *f = finished_find_locked(s, e->req.txn_id);
    if (f == NULL || f->status != RANGE_TXN_ABORTED || (!f->authoritative && f->cycle_len == 0))
        return false; /* (a resolution's word alone does not abort a live txn) */
    memcpy(e->cycle, f->cycle, f->cycle_len * sizeof(e->cycle[0]));
    e->resp.cycle = f->cycle_len > 0 ? e->cycle : NULL;
    e->resp.cycle_len = f->cycle_len;
    return true;
}

/* The pushee ended as this server saw it: a COMMITTED one (1PC commit,
** resolution: no intents are left to decide); an ABORTED one only without a
** record (a lock holder: nothing but locks, which the answer's resolution
** releases). Under s->mu. */
static bool pushee_finished_locked(range_server *s, server_eval *e, bool has_record)
{
    const server_finished *f = finished_find_locked(s, e->req.pushee_txn_id);
    if (f == NULL || (f->status == RANGE_TXN_COMMITTED ? !f->authoritative : has_record))
        return false;
    e->resp.has_txn = true;
    e->resp.txn_status = f->status;
    if (f->status == RANGE_TXN_COMMITTED)
        e->resp.commit_ts = f->commit_ts;
    return true;
}

/* A final record of the pushee: the answer, and whoever waits on it here. */
static void push_final(range_server *s, server_eval *e, const range__record *rec)
{
    record_answer(e, rec);
    pthread_mutex_lock(&s->mu);
    txn_final_locked(s, rec->txn_id, rec->status, rec->commit_ts, true,
                     rec->status == RANGE_TXN_ABORTED);
    pthread_mutex_unlock(&s->mu);
}

/* PUSH at the pushee's anchor (kv_int.h; docs/locking.md): its record's
** status, after aborting it when expired (push_decide), or when the
** txnwait queue says so (a higher priority, or a deadlock whose victim it
** is: the cycle is remembered for its own push and heartbeat); a pusher that
** is a deadlock's victim answers RANGE_ERR_ABORTED with the cycle. Else it
** waits in the queue (bounded by SERVER_PUSH_WAIT_MS, rereading the record
** at least every SERVER_PUSH_POLL_MS) while the pushee is alive, and
** answers PENDING. */
static int eval_push(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    int64_t wait_ms = SERVER_PUSH_WAIT_MS < s->config.wait_timeout_ms ? SERVER_PUSH_WAIT_MS
                                                                      : s->config.wait_timeout_ms;
    int64_t deadline_mono = base_monotonic_ns() + wait_ms * 1000000;
    range__txnwait_edge deps[RANGE_KV_DEPS_MAX];
    for (size_t i = 0; i < q->dep_count; i++)
        deps[i] = (range__txnwait_edge){q->deps[i].waiter, q->deps[i].waiter_priority,
                                        q->deps[i].holder, q->deps[i].holder_priority};
    range__txnwait_pusher pusher = {q->txn_id, q->priority,
                                    q->txn_id != 0 ? RANGE_TXNWAIT_PUSH_ABORT
                                                   : RANGE_TXNWAIT_PUSH_WAIT,
                                    deps, q->dep_count};
    server_push_wait pw = {0, 0, NULL}; /* linked into sr->push_waits while queued */
    bool linked = false;
    range__record rec;
    int rc = RANGE_OK;
    if (q->txn_id != 0 && q->txn_id == q->pushee_txn_id)
        return RANGE_ERR_INVALID;
    for (int round = 0;; round++) {
        bool found = false, ended = false, abort = false;
        range__txnwait_result res;
        memset(&res, 0, sizeof(res));
        if (round > 0) {
            if (base_monotonic_ns() >= deadline_mono) {
                e->resp.has_txn = true; /* still pending (or no record, young) */
                e->resp.txn_status = RANGE_TXN_PENDING;
                rc = RANGE_OK;
                break;
            }
            int64_t wake = base_monotonic_ns() + (int64_t)SERVER_PUSH_POLL_MS * 1000000;
            if (wake > deadline_mono)
                wake = deadline_mono;
            struct timespec slice = {(time_t)(wake / 1000000000LL), (long)(wake % 1000000000LL)};
            pthread_mutex_lock(&s->mu);
            /* woken by any proposal resolving here, a record write included,
            ** and by the queue's events */
            if (!s->stopping && (!linked || pw.state == 0))
                (void)pthread_cond_timedwait(&s->changed, &s->mu, &slice);
            bool stopping = s->stopping;
            pthread_mutex_unlock(&s->mu);
            if (stopping) {
                rc = RANGE_ERR_UNAVAILABLE;
                break;
            }
        }
        pthread_mutex_lock(&s->mu);
        bool victim = pusher_aborted_locked(s, e);
        pthread_mutex_unlock(&s->mu);
        if (victim) {
            rc = RANGE_ERR_ABORTED;
            break;
        }
        rc = record_update(s, sr, e, q->anchor, q->anchor_len, q->pushee_txn_id, push_decide,
                           &rec, &found);
        if (rc != RANGE_OK)
            break;
        if (found && rec.status != RANGE_TXN_PENDING) {
            push_final(s, e, &rec);
            break;
        }
        pthread_mutex_lock(&s->mu);
        ended = pushee_finished_locked(s, e, found);
        if (!ended && (!linked || pw.state != 0)) {
            /* (again after FINAL or ABANDONED: the record decides above) */
            if (linked) {
                server_push_wait **pp = &sr->push_waits;
                while (*pp != &pw)
                    pp = &(*pp)->next;
                *pp = pw.next;
                linked = false;
            }
            int64_t now = lock_now_ns(s);
            int64_t age_ns = q->since_wall_ns > 0        ? q->since_wall_ns
                             : !hlc_is_zero(q->intent_ts) ? q->intent_ts.wall_ns
                                                          : now; /* unknown: young */
            range__txnwait_record tr = {q->pushee_txn_id, found ? rec.priority : 0,
                                        RANGE_TXN_PENDING, found ? rec.heartbeat.wall_ns : age_ns};
            /* this pusher's parked push (if any) is replaced by this one, in
            ** the same hold of s->mu: its edge never drops out between */
            push_parked_sweep_locked(sr, q->txn_id);
            rc = range__txnwait_push(sr->txnwait, &pusher, &tr, now, &res);
            txnwait_drain_locked(s, sr);
            if (rc == RANGE_OK && res.outcome == RANGE_TXNWAIT_QUEUED) {
                pw = (server_push_wait){res.waiter_id, 0, sr->push_waits};
                sr->push_waits = &pw;
                linked = true;
            } else if (rc == RANGE_OK && res.outcome == RANGE_TXNWAIT_DEADLOCK) {
                /* the pusher is the victim: its coordinator aborts it; its
                ** locks here go now, so the cycle breaks at once */
                finished_add_locked(s, q->txn_id, RANGE_TXN_ABORTED, false, HLC_ZERO, res.cycle,
                                    res.cycle_len);
                txn_release_everywhere_locked(s, q->txn_id);
                (void)pusher_aborted_locked(s, e);
                rc = RANGE_ERR_ABORTED;
            } else if (rc == RANGE_OK && res.outcome == RANGE_TXNWAIT_ABORT_PUSHEE) {
                abort = true;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (ended || rc != RANGE_OK)
            break;
        if (!abort)
            continue;
        rc = record_update(s, sr, e, q->anchor, q->anchor_len, q->pushee_txn_id, abort_decide,
                           &rec, &found);
        if (rc != RANGE_OK)
            break;
        if (found && rec.status != RANGE_TXN_PENDING) {
            if (rec.status == RANGE_TXN_ABORTED && res.cycle_len > 0) {
                pthread_mutex_lock(&s->mu); /* the victim's own push and heartbeat say why */
                finished_add_locked(s, q->pushee_txn_id, RANGE_TXN_ABORTED, true, HLC_ZERO,
                                    res.cycle, res.cycle_len);
                pthread_mutex_unlock(&s->mu);
            }
            push_final(s, e, &rec);
            break;
        }
        /* it heartbeat meanwhile: look again */
    }
    pthread_mutex_lock(&s->mu);
    if (linked) {
        server_push_wait **pp = &sr->push_waits;
        while (*pp != &pw)
            pp = &(*pp)->next;
        *pp = pw.next;
        /* a txn's push that waited its bound stays queued for a while (see
        ** server_push_parked); anything else leaves the queue */
        bool park = pw.state == 0 && rc == RANGE_OK && q->txn_id != 0 && e->resp.has_txn &&
                    e->resp.txn_status == RANGE_TXN_PENDING &&
                    sr->n_push_parked < SERVER_PUSH_PARKED_MAX;
        if (park)
            sr->push_parked[sr->n_push_parked++] = (server_push_parked){
                pw.waiter_id, q->txn_id,
                base_monotonic_ns() + (int64_t)SERVER_PUSH_PARK_MS * 1000000};
        else if (pw.state == 0)
            (void)range__txnwait_cancel(sr->txnwait, pw.waiter_id);
        txnwait_drain_locked(s, sr);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* After a RESOLVE of txn_id's spans: its locks there go (both kinds: the
** intents are resolved, the unreplicated locks released), and pushers of it
** look again (a COMMITTED resolution is authoritative; an ABORTED one is
** believed only for a txn without record, see pushee_finished_locked). */
static void resolve_done(range_server *s, server_range *sr, const range_kv_request *q)
{
    pthread_mutex_lock(&s->mu);
    int64_t now = lock_now_ns(s);
    for (size_t i = 0; i < q->span_count; i++) {
        parked_forget_txn_locked(s, sr, q->txn_id, &q->spans[i]);
        (void)range__locktable_release_span(sr->locks, q->txn_id, &q->spans[i], now);
        locks_drain_locked(s, sr);
    }
    lock_txn_forget_locked(sr, q->txn_id);
    txn_final_locked(s, q->txn_id, (range_txn_status)q->txn_status, q->commit_ts,
                     q->txn_status == RANGE_TXN_COMMITTED, false);
    pthread_mutex_unlock(&s->mu);
}

typedef struct resolve_collect {
    uint64_t txn_id;
    base_buf *keys;   /* raw intent keys, back to back */
    size_t **offsets; /* n + 1 entries */
    size_t n, cap;
    size_t bytes;     /* of the command's raw writes, about */
    base_buf *last;   /* the user key of the last intent collected */
    size_t bytes_max; /* one command's worth */
} resolve_collect;

static int resolve_collect_fn(void *ctx, const uint8_t *raw, size_t raw_len, const uint8_t *key,
                              size_t key_len, const range__intent *in)
{
    resolve_collect *c = ctx;
    if (in->txn_id != c->txn_id)
        return 0;
    if (c->n + 2 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        size_t *g = base_realloc(*c->offsets, cap * sizeof(*g));
        if (g == NULL)
            return RANGE_ERR_NOMEM;
        *c->offsets = g;
        c->cap = cap;
    }
    (*c->offsets)[c->n] = c->keys->len;
    if (base_buf_append(c->keys, raw, raw_len) != 0)
        return RANGE_ERR_NOMEM;
    c->n++;
    (*c->offsets)[c->n] = c->keys->len;
    c->bytes += raw_len + RANGE_RAW_RESOLVE_SIZE + 8; /* + kind and lengths */
    base_buf_reset(c->last);
    if (base_buf_append(c->last, key, key_len) != 0)
        return RANGE_ERR_NOMEM;
    /* one command's worth */
    return c->n >= RANGE_COMMAND_WRITES_MAX || c->bytes >= c->bytes_max ? 1 : 0;
}

static int resolve_span_cmp(const void *a, const void *b)
{
    const range_span *x = a, *y = b;
    return range__key_cmp(x->start, x->start_len, y->start, y->start_len);
}

/* The part of sp at or after pos (empty pos: all of it) into *out; false
** when none is. out borrows from sp and pos. */
static bool resolve_span_from(const range_span *sp, const base_buf *pos, range_span *out)
{
    *out = *sp;
    if (pos->len == 0)
        return true;
    if (range__key_cmp(sp->start, sp->start_len, pos->data, pos->len) >= 0)
        return true;
    if (sp->point || (sp->end_len > 0 && range__key_cmp(sp->end, sp->end_len, pos->data,
                                                          pos->len) <= 0))
        return false;
    out->start = pos->data;
    out->start_len = pos->len;
    return true;
}

/* RESOLVE: every intent of txn_id in the spans becomes its value (or
** tombstone) at commit_ts, or goes; one command per RANGE_COMMAND_WRITES_MAX
** intents or SERVER_RESOLVE_BYTES_MAX bytes of them (so memory is bounded
** per round, whatever the transaction's size). The spans are walked in key
** order (a sorted copy) from a position that only moves forward: a round
** starts just past the last intent the previous round resolved (resolved
** intents are deleted raw keys, which a walk from the spans' start would
** skip again every round: quadratic in a large transaction). No new round
** after SERVER_RESOLVE_REQUEST_MS (or SERVER_RESOLVE_ROUNDS_MAX rounds):
** the answer is then RANGE_OK with `more` and the position in `value`
** (every intent of the txn in the spans below it is resolved; the caller
** asks again from there, docs/txn.md 3.3), so progress is never reported
** as a failure. Each RANGE_RAW_RESOLVE rechecks the holder at apply, so a
** resolution racing another (or a retry) does nothing twice. After at least
** SERVER_RESOLVE_COMPACT_MIN intents, the engine is asked to compact the raw
** span they lay in, in the background: their deleted keys would slow every
** seek over them (check_intents, scans) until a compaction took them. */
static int eval_resolve(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    base_buf keys = {0};   /* owner: this function */
    size_t *offsets = NULL; /* owner: this function */
    range_raw_write *raw = NULL; /* owner: this function */
    range_span *spans = NULL;    /* owner: this function; q's spans sorted */
    range_span *done = NULL;     /* owner: this function; a partial answer's spans */
    base_buf pos = {0};          /* owner: this function; resolved below it */
    base_buf last = {0};         /* owner: this function; the round's last intent */
    base_buf cmp_lo = {0}, cmp_hi = {0}; /* owner: this function; raw span resolved */
    size_t resolved = 0;                 /* intents of the applied rounds */
    uint8_t val[RANGE_RAW_RESOLVE_SIZE];
    range_commit_request creq;
    memset(&creq, 0, sizeof(creq));
    creq.read_spans = q->spans;
    creq.read_span_count = q->span_count;
    bool committed = q->txn_status == RANGE_TXN_COMMITTED;
    int rc = range__validate_request(&creq);
    if (rc == RANGE_OK && committed && hlc_is_zero(q->commit_ts))
        rc = RANGE_ERR_INVALID;
    if (rc != RANGE_OK)
        return rc;
    spans = base_calloc(q->span_count, sizeof(*spans));
    if (spans == NULL)
        return RANGE_ERR_NOMEM;
    memcpy(spans, q->spans, q->span_count * sizeof(*spans));
    qsort(spans, q->span_count, sizeof(*spans), resolve_span_cmp);
    for (int i = 7; i >= 0; i--)
        val[7 - i] = (uint8_t)(q->txn_id >> (8 * i));
    val[8] = q->txn_status;
    bool more = true; /* rounds (or time) used up with intents left */
    size_t bytes_max = s->config.resolve_bytes_max > 0 ? s->config.resolve_bytes_max
                                                       : SERVER_RESOLVE_BYTES_MAX;
    int rounds_max = s->config.resolve_rounds_max > 0 ? s->config.resolve_rounds_max
                                                      : SERVER_RESOLVE_ROUNDS_MAX;
    int64_t until_ns = base_monotonic_ns() + SERVER_RESOLVE_REQUEST_MS * 1000000;
    for (int round = 0; round < rounds_max; round++) {
        if (round > 0 && base_monotonic_ns() > until_ns)
            break; /* answer within the router's attempt timeout */
        uint64_t term = 0, hint = 0;
        int r = server_barrier_wait(s, sr, &term, &hint);
        if (r != RANGE_OK) {
            e->resp.leader_hint = hint;
            rc = r;
            break;
        }
        r = gate_enter(s, sr, e);
        if (r == RANGE_OK)
            r = load_desc(sr, e);
        for (size_t i = 0; i < q->span_count && r == RANGE_OK; i++)
            r = span_check(e, &q->spans[i]);
        if (r != RANGE_OK) {
            rc = r;
            break;
        }
        resolve_collect c = {q->txn_id, &keys, &offsets, 0, 0, 0, &last, bytes_max};
        server_pending *wait_on = NULL;
        base_buf_reset(&keys);
        pthread_mutex_lock(&sr->eval_mu);
        for (size_t i = 0; i < q->span_count && r == RANGE_OK; i++) {
            range_span from;
            if (resolve_span_from(&spans[i], &pos, &from))
                r = range__intent_each(replica__engine(sr->replica), &from,
                                       resolve_collect_fn, &c);
        }
        bool full = r == 1;
        if (r == 1)
            r = RANGE_OK;
        if (r == RANGE_OK && c.n > 0) {
            base_free(raw);
            raw = base_calloc(c.n, sizeof(*raw));
            if (raw == NULL)
                r = RANGE_ERR_NOMEM;
            for (size_t i = 0; i < c.n && raw != NULL; i++)
                raw[i] = (range_raw_write){keys.data + offsets[i], offsets[i + 1] - offsets[i],
                                           val, sizeof(val), RANGE_RAW_RESOLVE};
            range_command cmd = {.txn_id = q->txn_id, .seq = next_cmd_seq(s),
                                 .commit_ts = committed ? q->commit_ts : HLC_ZERO,
                                 .raw_writes = raw, .raw_write_count = c.n};
            if (r == RANGE_OK)
                r = propose_bare(s, sr, e, term, &cmd, &wait_on);
        }
        pthread_mutex_unlock(&sr->eval_mu);
        gate_leave(s, e);
        if (r != RANGE_OK || c.n == 0) {
            rc = r;
            more = false;
            break;
        }
        r = pending_wait(s, wait_on);
        if (r == RANGE_ERR_DROPPED)
            continue; /* evaluate again from pos: the apply rechecks every holder */
        if (r == RANGE_OK) {
            /* rounds go up in key order: the first key of the first, past the last */
            resolved += c.n;
            if (cmp_lo.len == 0 && base_buf_append(&cmp_lo, keys.data, offsets[1]) != 0)
                resolved = 0; /* no compaction: an optimization only */
            base_buf_reset(&cmp_hi);
            if (base_buf_append(&cmp_hi, keys.data + offsets[c.n - 1],
                                offsets[c.n] - offsets[c.n - 1]) != 0 ||
                base_buf_append_byte(&cmp_hi, 0) != 0)
                resolved = 0;
        }
        if (r != RANGE_OK || !full) {
            rc = r;
            more = false;
            break;
        }
        /* applied: the next round starts just past its last intent */
        base_buf_reset(&pos);
        if (base_buf_append(&pos, last.data, last.len) != 0 || base_buf_append_byte(&pos, 0) != 0) {
            rc = RANGE_ERR_NOMEM;
            more = false;
            break;
        }
        rc = RANGE_OK;
    }
    if (rc == RANGE_OK && more && pos.len == 0)
        rc = RANGE_ERR_BUSY; /* no round applied (cannot happen: round 0 always runs) */
    if (rc == RANGE_OK && more) {
        /* partial: what lies below pos is resolved; its locks go */
        done = base_calloc(q->span_count, sizeof(*done));
        size_t n_done = 0;
        for (size_t i = 0; i < q->span_count && done != NULL; i++) {
            const range_span *sp = &spans[i];
            if (range__key_cmp(sp->start, sp->start_len, pos.data, pos.len) >= 0)
                continue;
            done[n_done] = *sp;
            if (!sp->point && (sp->end_len == 0 || range__key_cmp(sp->end, sp->end_len,
                                                                   pos.data, pos.len) > 0)) {
                done[n_done].end = pos.data;
                done[n_done].end_len = pos.len;
            }
            n_done++;
        }
        range_kv_request part = *q;
        part.spans = done;
        part.span_count = done != NULL ? n_done : 0;
        resolve_done(s, sr, &part);
        base_buf_reset(&e->value);
        if (base_buf_append(&e->value, pos.data, pos.len) != 0) {
            rc = RANGE_ERR_BUSY; /* the caller asks again from the start */
        } else {
            e->resp.value = e->value.data;
            e->resp.value_len = e->value.len;
            e->resp.more = true;
        }
    } else if (rc == RANGE_OK) {
        resolve_done(s, sr, q);
    }
    if (resolved >= SERVER_RESOLVE_COMPACT_MIN && cmp_lo.len > 0 && cmp_hi.len > 0) {
        /* queued, not done here: the answer does not wait for it */
        int g = storage_compact_raw(replica__engine(sr->replica), cmp_lo.data, cmp_lo.len,
                                    cmp_hi.data, cmp_hi.len, true);
        if (g != STORAGE_OK)
            BASE_WARN("range", "r%llu: compaction after a resolution not queued: %d",
                      (unsigned long long)sr->range_id, g);
    }
    base_buf_free(&cmp_lo);
    base_buf_free(&cmp_hi);
    base_buf_free(&keys);
    base_buf_free(&pos);
    base_buf_free(&last);
    base_free(offsets);
    base_free(raw);
    base_free(spans);
    base_free(done);
    return rc;
}

/* ---- statement-time locks (docs/locking.md, "Wiring") ------------------------- */

/* QUERY_TXN at a txn's record range: its record, and who waits on it in
** this range's queue (transitively, as last reported): the pusher's
** dependents for deadlock detection. A txn a deadlock chose as victim
** answers RANGE_ERR_ABORTED with the cycle. */
static int eval_query_txn(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    uint64_t term = 0, hint = 0;
    int rc = server_barrier_wait(s, sr, &term, &hint);
    if (rc != RANGE_OK) {
        e->resp.leader_hint = hint;
        return rc;
    }
    rc = gate_enter(s, sr, e);
    if (rc == RANGE_OK)
        rc = load_desc(sr, e);
    if (rc == RANGE_OK && !range_descriptor_contains(&e->desc, q->anchor, q->anchor_len))
        rc = key_mismatch(e, q->anchor, q->anchor_len);
    gate_leave(s, e);
    if (rc != RANGE_OK)
        return rc;
    range__record rec;
    bool found = false;
    rc = record_read(sr, q->anchor, q->anchor_len, q->txn_id, &rec, &found);
    if (rc != RANGE_OK)
        return rc;
    if (found)
        record_answer(e, &rec);
    range__txnwait_edge edges[RANGE_KV_DEPS_MAX];
    pthread_mutex_lock(&s->mu);
    push_parked_sweep_locked(sr, 0); /* expired parked pushes are no edges */
    size_t n = range__txnwait_dependents(sr->txnwait, q->txn_id, edges, RANGE_KV_DEPS_MAX, NULL);
    const server_finished *f = finished_find_locked(s, q->txn_id);
    bool victim = f != NULL && f->status == RANGE_TXN_ABORTED && f->cycle_len > 0;
    if (victim)
        (void)pusher_aborted_locked(s, e);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        e->deps[i] = (range_kv_edge){edges[i].waiter, edges[i].waiter_priority, edges[i].holder,
                                     edges[i].holder_priority};
    e->resp.deps = n > 0 ? e->deps : NULL;
    e->resp.dep_count = n;
    if (victim) {
        e->resp.has_txn = true;
        e->resp.txn_status = RANGE_TXN_ABORTED;
        return RANGE_ERR_ABORTED;
    }
    return RANGE_OK;
}

/* Take the txn's lock on one key of a LOCK (eval_lock): RANGE_OK when held;
** RANGE_ERR_INTENT (e->hit) when another txn still holds it at
** deadline_mono: the request then stays parked in the queue when it can
** (parked_*), so the txn's next LOCK of the key keeps its place; else an
** error (RANGE_ERR_UNAVAILABLE: the table was cleared, ask again). */
static int lock_key(range_server *s, server_range *sr, server_eval *e, const range_kv_key *k,
                    int64_t deadline_mono)
{
    const range_kv_request *q = &e->req;
    range__lock_txn txn = {q->txn_id, 0, q->priority};
    storage_engine *eng = replica__engine(sr->replica);
    range_span pt = {k->key, k->key_len, NULL, 0, true};
    int rc = RANGE_ERR_BUSY;
    for (int attempt = 0; attempt < SERVER_LOCK_ATTEMPTS_MAX; attempt++) {
        server_lock_wait lw = {0, q->txn_id, 0, {{0, 0, 0}, 0, {0, 0}, 0}, NULL};
        range__locktable_result res;
        memset(&res, 0, sizeof(res));
        /* under eval_mu: no commit is between its lock check and its
        ** registration as pending (check_locks) */
        pthread_mutex_lock(&sr->eval_mu);
        rc = range__find_intent(eng, &pt, q->txn_id, HLC_MAX, &e->hit);
        pthread_mutex_lock(&s->mu);
        pthread_mutex_unlock(&sr->eval_mu);
        parked_sweep_locked(s, sr);
        if (rc == RANGE_ERR_INTENT)
            discover_locked(s, sr, &e->hit); /* the intent holds the key: queue behind it */
        rc = rc == RANGE_ERR_INTENT ? RANGE_OK : rc;
        if (rc == RANGE_OK)
            rc = lock_txn_note_locked(sr, q);
        size_t p = 0;
        while (p < sr->n_parked &&
               (sr->parked[p].txn_id != q->txn_id ||
                range__key_cmp(sr->parked[p].key, sr->parked[p].key_len, k->key, k->key_len)))
            p++;
        if (rc == RANGE_OK && p < sr->n_parked) {
            /* our request from before the push: its place in the queue */
            res.outcome = sr->parked[p].granted ? RANGE_LOCK_GRANTED : RANGE_LOCK_QUEUED;
            res.waiter_id = sr->parked[p].waiter_id;
            (void)range__locktable_holder(sr->locks, k->key, k->key_len, &res.holder);
            parked_remove_locked(sr, p);
        } else if (rc == RANGE_OK) {
            rc = range__locktable_acquire(sr->locks, &txn, k->key, k->key_len,
                                          RANGE_LOCK_UNREPLICATED, HLC_ZERO, RANGE_LOCK_WAIT_BLOCK,
                                          lock_now_ns(s), &res);
            locks_drain_locked(s, sr);
        }
        if (rc == RANGE_OK && res.outcome == RANGE_LOCK_QUEUED) {
            lw.waiter_id = res.waiter_id;
            lw.holder = res.holder;
            lw.next = sr->lock_waits;
            sr->lock_waits = &lw;
            while (lw.state == 0 && !s->stopping && base_monotonic_ns() < deadline_mono) {
                int64_t wake = parked_next_expiry_locked(sr);
                if (wake > deadline_mono)
                    wake = deadline_mono;
                struct timespec ts = {(time_t)(wake / 1000000000LL), (long)(wake % 1000000000LL)};
                (void)pthread_cond_timedwait(&s->changed, &s->mu, &ts);
                parked_sweep_locked(s, sr); /* an expired one may be in our way */
            }
            server_lock_wait **pp = &sr->lock_waits;
            while (*pp != &lw)
                pp = &(*pp)->next;
            *pp = lw.next;
            if (lw.state == RANGE_LOCK_EV_GRANTED) {
                res.outcome = RANGE_LOCK_GRANTED;
            } else if (lw.state == RANGE_LOCK_EV_ABANDONED || s->stopping) {
                rc = RANGE_ERR_UNAVAILABLE; /* cleared (lease change) or stopping */
            } else if (lw.holder.durability == RANGE_LOCK_UNREPLICATED) {
                /* the push delay passed: the caller pushes the holder and comes back */
                if (sr->n_parked < SERVER_PARKED_MAX && k->key_len > 0 &&
                    (sr->parked[sr->n_parked].key = base_malloc(k->key_len)) != NULL) {
                    server_parked *pk = &sr->parked[sr->n_parked++];
                    memcpy(pk->key, k->key, k->key_len);
                    pk->key_len = k->key_len;
                    pk->waiter_id = lw.waiter_id;
                    pk->txn_id = q->txn_id;
                    pk->expires_mono_ns = base_monotonic_ns() +
                                          (int64_t)SERVER_LOCK_PARK_MS * 1000000;
                    pk->granted = false;
                } else {
                    (void)range__locktable_cancel(sr->locks, lw.waiter_id);
                }
                rc = unrepl_hit_locked(sr, k->key, k->key_len, &lw.holder, &e->hit);
            } else {
                (void)range__locktable_cancel(sr->locks, lw.waiter_id); /* (below) */
                rc = RANGE_ERR_INTENT;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (rc == RANGE_ERR_INTENT && !e->hit.unreplicated) {
            /* behind an intent: name it as storage has it; none there any
            ** more (resolved without the table hearing): drop the stale
            ** holder and try again */
            int f = range__find_intent(eng, &pt, q->txn_id, HLC_MAX, &e->hit);
            if (f != RANGE_OK)
                return f;
            pthread_mutex_lock(&s->mu);
            (void)range__locktable_release(sr->locks, lw.holder.txn.id, k->key, k->key_len,
                                           lock_now_ns(s));
            locks_drain_locked(s, sr);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (rc != RANGE_OK || res.outcome == RANGE_LOCK_GRANTED)
            return rc == RANGE_OK ? RANGE_OK : rc;
        return RANGE_ERR_BUSY; /* CONFLICT without an error: not with WAIT_BLOCK */
    }
    return rc;
}

/* Does a pending commit (any ts) write one of the keys? Under s->mu. */
static bool pending_on_keys_locked(const server_range *sr, const range_kv_key *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        range_span pt = {keys[i].key, keys[i].key_len, NULL, 0, true};
        if (pending_at_or_below(sr, HLC_MAX, &pt))
            return true;
    }
    return false;
}

/* LOCK (kv_int.h): an UNREPLICATED lock on each key in order, waiting at
** most the push delay in all (the server's workers are few), then the
** newest committed version among the keys. Keys locked before a refusal
** stay locked (ordered acquisition: a retry takes them again at once). */
static int eval_lock(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    uint64_t term = 0, hint = 0;
    for (size_t i = 0; i < q->lock_key_count; i++)
        if (q->lock_keys[i].key_len == 0)
            return RANGE_ERR_INVALID;
    int rc = server_barrier_wait(s, sr, &term, &hint);
    if (rc != RANGE_OK) {
        e->resp.leader_hint = hint;
        return rc;
    }
    /* the descriptor inside the gate; locks are advisory, so a split after
    ** it costs at most a lock the right-hand range does not know */
    rc = gate_enter(s, sr, e);
    if (rc == RANGE_OK)
        rc = load_desc(sr, e);
    for (size_t i = 0; i < q->lock_key_count && rc == RANGE_OK; i++)
        if (!range_descriptor_contains(&e->desc, q->lock_keys[i].key, q->lock_keys[i].key_len))
            rc = key_mismatch(e, q->lock_keys[i].key, q->lock_keys[i].key_len);
    gate_leave(s, e);
    if (rc != RANGE_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    bool victim = pusher_aborted_locked(s, e); /* no new locks for a txn known aborted */
    pthread_mutex_unlock(&s->mu);
    if (victim)
        return RANGE_ERR_ABORTED;
    int64_t deadline_mono = base_monotonic_ns() + RANGE_LOCKTABLE_PUSH_DELAY_NS;
    for (size_t i = 0; i < q->lock_key_count; i++) {
        rc = lock_key(s, sr, e, &q->lock_keys[i], deadline_mono);
        if (rc != RANGE_OK)
            return rc;
    }
    /* commits proposed before the locks were granted: their versions count */
    struct timespec deadline = deadline_after_ms(s->config.wait_timeout_ms);
    pthread_mutex_lock(&s->mu);
    while (rc == RANGE_OK && pending_on_keys_locked(sr, q->lock_keys, q->lock_key_count)) {
        if (s->stopping ||
            (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT &&
             pending_on_keys_locked(sr, q->lock_keys, q->lock_key_count)))
            rc = RANGE_ERR_UNAVAILABLE;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != RANGE_OK)
        return rc;
    /* an intent laid meanwhile (a PREPARE that was pending) is in the way */
    storage_engine *eng = replica__engine(sr->replica);
    hlc_timestamp newest = HLC_ZERO;
    for (size_t i = 0; i < q->lock_key_count && rc == RANGE_OK; i++) {
        const range_kv_key *k = &q->lock_keys[i];
        range_span pt = {k->key, k->key_len, NULL, 0, true};
        rc = range__find_intent(eng, &pt, q->txn_id, HLC_MAX, &e->hit);
        if (rc == RANGE_ERR_INTENT) {
            pthread_mutex_lock(&s->mu);
            discover_locked(s, sr, &e->hit);
            pthread_mutex_unlock(&s->mu);
            break;
        }
        storage_value v;
        memset(&v, 0, sizeof(v));
        int g = storage_get(eng, NULL, k->key, k->key_len, HLC_MAX, &v);
        if (g == STORAGE_OK)
            newest = ts_max(newest, v.ts);
        else if (g != STORAGE_NOT_FOUND)
            rc = range__storage_rc(g);
        storage_value_free(&v);
    }
    if (rc == RANGE_OK)
        e->resp.newest_ts = newest;
    return rc;
}

/* ---- split -------------------------------------------------------------------- */

/* A split at the range's own start key: already a boundary. The range that
** starts there is the right (moved from e->desc to e->other); the left is
** the replica here that ends there, when hosted (a split keeps both halves
** on the same nodes). */
static int split_noop(range_server *s, server_eval *e)
{
    e->other = e->desc;
    e->have_other = true;
    memset(&e->desc, 0, sizeof(e->desc));
    e->have_desc = false;
    range_replica *left = replica__node_find(s->config.node, e->req.key, e->req.key_len, true);
    if (left != NULL) {
        int rc = range_replica_descriptor(left, &e->desc);
        if (rc != RANGE_OK)
            return rc;
        e->have_desc = true;
    }
    e->resp.has_descriptor = e->have_desc;
    e->resp.has_other = true;
    return RANGE_OK;
}

/* One evaluation of ADMIN_SPLIT with the gate closed, after a barrier in
** `term`. RANGE_OK (the split applied here, or the key is a boundary
** already), RANGE_ERR_DROPPED (evaluate again), or the answer's error. */
/* Register the proposal of a split or a merge entry (FREEZE, MERGE, FENCE,
** UNFREEZE) under its waiter key (txn_id, nonce): at HLC_MAX with no
** writes, so no read waits for it and no commit conflicts with it, while
** the callback and shutdown treat it as any proposal. *out holds one
** reference. */
static int marker_register(range_server *s, server_range *sr, uint64_t txn_id, uint64_t nonce,
                           server_pending **out)
{
    range_kv_request marker;
    memset(&marker, 0, sizeof(marker));
    marker.txn_id = txn_id;
    marker.nonce = nonce;
    base_buf no_keys = {0};
    size_t *no_offsets = NULL;
    server_pending *p = NULL;
    int rc = pending_new(s, sr, &marker, &no_keys, &no_offsets, 0, &p);
    if (rc != RANGE_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    p->ts = HLC_MAX;
    p->refs = 1;
    p->next = sr->pending;
    if (sr->pending != NULL)
        sr->pending->prev = p;
    sr->pending = p;
    counter_add(s, RANGE__SERVER_PENDING, 1);
    pthread_mutex_unlock(&s->mu);
    *out = p;
    return RANGE_OK;
}

/* The proposal of a registered marker was refused: its callback never runs. */
static void marker_unregister(range_server *s, server_range *sr, server_pending *p)
{
    pthread_mutex_lock(&s->mu);
    pending_unlink(sr, p);
    counter_add(s, RANGE__SERVER_PENDING, -1);
    pthread_mutex_unlock(&s->mu);
    pending_free(p);
}

static int split_once(range_server *s, server_range *sr, server_eval *e, uint64_t term)
{
    const range_kv_request *q = &e->req;
    uint64_t hint = 0;
    /* frozen by a merge while we waited for the gate: its span is promised
    ** whole to the merge (THE MERGE GATE) */
    if (replica_is_frozen(sr->replica, NULL))
        return RANGE_ERR_MERGING;
    int rc = load_desc(sr, e);
    if (rc != RANGE_OK)
        return rc;
    const range_descriptor *d = &e->desc;
    if (range__key_cmp(q->key, q->key_len, d->start_key, d->start_len) == 0)
        return split_noop(s, e);
    if (!range_descriptor_contains(d, q->key, q->key_len))
        return key_mismatch(e, q->key, q->key_len);
    if (range_node_replica(s->config.node, q->new_range_id) != NULL) {
        BASE_WARN("range", "r%llu: split at a new range id r%llu already hosted here refused",
                  (unsigned long long)sr->range_id, (unsigned long long)q->new_range_id);
        return RANGE_ERR_INVALID;
    }
    /* the commit trigger of a transaction (docs/decisions/010): the shape
    ** its meta writes assume, its record in the left and still PENDING (a
    ** refusal here proposes nothing; apply decides again) */
    range_split_txn txn = {q->txn_id, q->anchor, q->anchor_len, q->commit_ts, q->generation};
    if (q->txn_id != 0) {
        /* another shape than the one its meta writes assume: the caller
        ** aborts the txn and describes again */
        if (q->generation != d->generation ||
            range__key_cmp(q->anchor, q->anchor_len, d->start_key, d->start_len) < 0 ||
            range__key_cmp(q->anchor, q->anchor_len, q->key, q->key_len) >= 0)
            return RANGE_ERR_ABORTED;
        range__record rec;
        bool found = false;
        rc = record_read(sr, q->anchor, q->anchor_len, q->txn_id, &rec, &found);
        if (rc != RANGE_OK)
            return rc;
        if (!found || rec.status != RANGE_TXN_PENDING)
            return RANGE_ERR_ABORTED;
    }
    /* the right side's floor: everything recorded here over it (the gate is
    ** closed and empty: nothing more gets recorded there before the split) */
    range_span rhs = {q->key, q->key_len, d->end_key, d->end_len, false};
    server_pending *p = NULL;
    rc = marker_register(s, sr, REPLICA_SPLIT_TXN_ID, q->new_range_id, &p);
    if (rc != RANGE_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    hlc_timestamp floor = range__tscache_max(sr->tscache, &rhs);
    pthread_mutex_unlock(&s->mu);
    rc = replica__propose_split_txn(sr->replica, q->key, q->key_len, q->new_range_id,
                                    d->generation, floor, q->txn_id != 0 ? &txn : NULL, term,
                                    server_propose_cb, p, &hint);
    if (rc != RANGE_OK) {
        marker_unregister(s, sr, p);
        e->resp.leader_hint = hint;
        return rc;
    }
    BASE_INFO("range", "r%llu: split at generation %llu proposed (new range r%llu)",
              (unsigned long long)sr->range_id, (unsigned long long)d->generation,
              (unsigned long long)q->new_range_id);
    rc = pending_wait(s, p);
    if (rc != RANGE_OK)
        return rc; /* DROPPED (refused at apply, or lost): again; AMBIGUOUS */
    rc = load_desc(sr, e);
    if (rc != RANGE_OK)
        return rc;
    range_replica *right = range_node_replica(s->config.node, q->new_range_id);
    if (right == NULL) {
        BASE_ERROR("range", "r%llu: split applied but r%llu is not hosted here",
                   (unsigned long long)sr->range_id, (unsigned long long)q->new_range_id);
        return RANGE_ERR_UNAVAILABLE;
    }
    rc = range_replica_descriptor(right, &e->other);
    if (rc != RANGE_OK)
        return rc;
    e->have_other = true;
    e->resp.has_descriptor = true;
    e->resp.has_other = true;
    return RANGE_OK;
}

static void load_restart(range_server *s, server_range *sr);

/* ADMIN_SPLIT (see THE SPLIT GATE): split the range at req.key into
** [start, key) and new_range_id = [key, end); answer both descriptors. */
static int eval_split(range_server *s, server_range *sr, server_eval *e)
{
    int rc = RANGE_ERR_AMBIGUOUS;
    for (int attempt = 0; attempt < SERVER_COMMIT_ATTEMPTS_MAX; attempt++) {
        uint64_t term = 0, hint = 0;
        rc = server_barrier_wait(s, sr, &term, &hint);
        if (rc != RANGE_OK) {
            e->resp.leader_hint = hint;
            return rc;
        }
        rc = split_gate_close(s, sr);
        if (rc != RANGE_OK)
            return rc;
        rc = split_once(s, sr, e, term);
        split_gate_open(s, sr);
        if (rc == RANGE_OK)
            load_restart(s, sr);
        if (rc != RANGE_ERR_DROPPED)
            return rc;
        BASE_DEBUG("range", "r%llu: split at r%llu dropped; evaluating again",
                   (unsigned long long)sr->range_id, (unsigned long long)e->req.new_range_id);
    }
    return RANGE_ERR_AMBIGUOUS; /* it may still apply: the caller asks again */
}

/* ---- merges (see THE MERGE GATE; docs/range.md, "Merges") ----------------------- */

#define SERVER_MERGE_POLL_MS 5 /* WAIT_APPLIED looks at the applied index this often */

/* Whether r is frozen by a merge, as applied (*merge_id, may be NULL, gets
** its id). A removed replica is not frozen. Node mutex: never under s->mu. */
static bool replica_is_frozen(range_replica *r, uint64_t *merge_id)
{
    uint64_t id = 0, left = 0, index = 0, lineage = 0;
    if (replica__frozen(r, &id, &left, &index, &lineage) != RANGE_OK)
        id = 0;
    if (merge_id != NULL)
        *merge_id = id;
    return id != 0;
}

/* The floor of a range being frozen: every timestamp its leaseholder
** recorded over its span (the low-water included) and its clock now. */
static hlc_timestamp merge_floor(range_server *s, server_range *sr, const range_descriptor *d)
{
    range_span all = {d->start_key, d->start_len, d->end_key, d->end_len, false};
    pthread_mutex_lock(&s->mu);
    hlc_timestamp floor = ts_max(range__tscache_max(sr->tscache, &all), hlc_now(s->config.clock));
    pthread_mutex_unlock(&s->mu);
    return floor;
}

/* SUBSUME's answer for a range frozen with the request's merge id. */
static int subsume_answer(range_server *s, server_range *sr, server_eval *e)
{
    uint64_t id = 0, left = 0, index = 0, lineage = 0;
    int rc = replica__frozen(sr->replica, &id, &left, &index, &lineage);
    if (rc == RANGE_OK)
        rc = load_desc(sr, e);
    if (rc != RANGE_OK)
        return rc;
    if (id != e->req.merge_id)
        return RANGE_ERR_MERGING; /* unfrozen meanwhile, or another merge's */
    e->resp.freeze_index = index;
    e->resp.freeze_lineage = lineage;
    e->resp.merge_floor = merge_floor(s, sr, &e->desc);
    e->resp.has_descriptor = true;
    return RANGE_OK;
}

/* One SUBSUME with the gate closed, after a barrier in `term`. */
static int subsume_once(range_server *s, server_range *sr, server_eval *e, uint64_t term)
{
    const range_kv_request *q = &e->req;
    uint64_t applied = 0, hint = 0;
    bool conf_busy = false, learners = false;
    int rc = load_desc(sr, e);
    if (rc != RANGE_OK)
        return rc;
    if (e->desc.generation != q->generation) {
        e->resp.has_descriptor = true; /* the router refreshes and asks again */
        return RANGE_ERR_KEY_MISMATCH;
    }
    rc = replica__merge_readiness(sr->replica, &applied, &conf_busy, &learners);
    if (rc != RANGE_OK)
        return rc;
    if (learners) {
        BASE_INFO("range", "r%llu: merge refused: the range has learners",
                  (unsigned long long)sr->range_id);
        return RANGE_ERR_INVALID;
    }
    if (conf_busy)
        return RANGE_ERR_BUSY; /* a configuration change in flight: later */
    /* A merge id R's or L's lineage applied already (a reused id: seed
    ** 31270, a router's random stream replayed) would make the abandon's
    ** fence read "merged" and leave R frozen for good: refused before the
    ** freeze, BUSY (the router asks again until its deadline; the next
    ** admin merge draws a new id). L's here is a co-located voter's,
    ** possibly behind: FREEZE refuses R's at apply too. */
    bool reused = false, in_left = false;
    rc = replica__merge_applied(sr->replica, q->merge_id, &reused);
    if (rc != RANGE_OK)
        return rc;
    range_replica *left = range_node_replica(s->config.node, q->left_range_id);
    if (left != NULL && replica__merge_applied(left, q->merge_id, &in_left) == RANGE_OK)
        reused = reused || in_left;
    if (reused) {
        BASE_WARN("range", "r%llu: merge %016llx into r%llu refused: that merge id was applied "
                  "in the ranges' lineage already", (unsigned long long)sr->range_id,
                  (unsigned long long)q->merge_id, (unsigned long long)q->left_range_id);
        return RANGE_ERR_BUSY;
    }
    /* the gate is closed and empty: nothing more is recorded over the range
    ** before the freeze, and nothing is served after it */
    server_pending *p = NULL;
    rc = marker_register(s, sr, REPLICA_FREEZE_TXN_ID, q->merge_id, &p);
    if (rc != RANGE_OK)
        return rc;
    rc = replica__propose_freeze(sr->replica, q->merge_id, q->left_range_id, e->desc.generation,
                                 term, server_propose_cb, p, &hint);
    if (rc != RANGE_OK) {
        marker_unregister(s, sr, p);
        e->resp.leader_hint = hint;
        return rc;
    }
    BASE_INFO("range", "r%llu: freeze for merge %016llx into r%llu proposed",
              (unsigned long long)sr->range_id, (unsigned long long)q->merge_id,
              (unsigned long long)q->left_range_id);
    rc = pending_wait(s, p);
    if (rc != RANGE_OK)
        return rc; /* DROPPED: again; AMBIGUOUS */
    return subsume_answer(s, sr, e);
}

/* SUBSUME (THE MERGE GATE): freeze the range for req.merge_id; answer the
** freeze index and lineage, the floor and the descriptor. Idempotent. */
static int eval_subsume(range_server *s, server_range *sr, server_eval *e)
{
    for (int attempt = 0; attempt < SERVER_COMMIT_ATTEMPTS_MAX; attempt++) {
        uint64_t term = 0, hint = 0, frozen_by = 0;
        int rc = server_barrier_wait(s, sr, &term, &hint);
        if (rc != RANGE_OK) {
            e->resp.leader_hint = hint;
            return rc;
        }
        if (replica_is_frozen(sr->replica, &frozen_by))
            return frozen_by == e->req.merge_id ? subsume_answer(s, sr, e) : RANGE_ERR_MERGING;
        rc = split_gate_close(s, sr);
        if (rc != RANGE_OK)
            return rc;
        rc = subsume_once(s, sr, e, term);
        /* open again: entrants now find the range frozen (gate_enter) */
        split_gate_open(s, sr);
        if (rc != RANGE_ERR_DROPPED)
            return rc;
    }
    return RANGE_ERR_AMBIGUOUS;
}

/* WAIT_APPLIED: at any replica, wait (bounded) until this replica applied
** req.applied_index, then make the store durable (a crash must not lose the
** applied freeze a merge relies on). */
static int eval_wait_applied(range_server *s, server_range *sr, server_eval *e)
{
    struct timespec deadline = deadline_after_ms(s->config.wait_timeout_ms);
    bool reached = false;
    for (;;) {
        range_replica_status st;
        range_replica_get_status(sr->replica, &st);
        if (st.applied >= e->req.applied_index) {
            reached = true;
            break;
        }
        pthread_mutex_lock(&s->mu);
        struct timespec slice = deadline_after_ms(SERVER_MERGE_POLL_MS);
        if (!s->stopping)
            (void)pthread_cond_timedwait(&s->changed, &s->mu, &slice);
        bool stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (stopping || now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
            break;
    }
    if (!reached)
        return RANGE_ERR_UNAVAILABLE;
    if (storage_sync(replica__engine(sr->replica)) != STORAGE_OK)
        return RANGE_ERR_IO;
    return RANGE_OK;
}

/* Equal voter sets (replicas are distinct node ids). */
static bool same_voters(const range_descriptor *a, const range_descriptor *b)
{
    if (a->n_replicas != b->n_replicas)
        return false;
    for (size_t i = 0; i < a->n_replicas; i++) {
        bool found = false;
        for (size_t j = 0; j < b->n_replicas && !found; j++)
            found = a->replicas[i] == b->replicas[j];
        if (!found)
            return false;
    }
    return true;
}

/* L now covers what the merge's right-hand range covered: merged already. */
static bool merged_into(const range_descriptor *left, const range_descriptor *right)
{
    return range_descriptor_contains(left, right->start_key, right->start_len) &&
           left->end_len == right->end_len &&
           (left->end_len == 0 ||
            range__key_cmp(left->end_key, left->end_len, right->end_key, right->end_len) == 0);
}

/* One ADMIN_MERGE with L's gate closed, after a barrier in `term`. */
static int merge_once(range_server *s, server_range *sr, server_eval *e, uint64_t term)
{
    const range_kv_request *q = &e->req;
    const range_descriptor *rd = &q->right;
    uint64_t applied = 0, hint = 0, frozen_by = 0;
    bool conf_busy = false, learners = false;
    int rc = load_desc(sr, e);
    if (rc != RANGE_OK)
        return rc;
    const range_descriptor *d = &e->desc;
    e->resp.has_descriptor = true;
    if (merged_into(d, rd))
        return RANGE_OK; /* a retry after the merge applied */
    if (replica_is_frozen(sr->replica, NULL))
        return RANGE_ERR_MERGING; /* L itself is being merged into its left */
    /* the commit trigger of a transaction (docs/decisions/010): L at the
    ** generation its meta writes assume, its record in L and still PENDING
    ** (a refusal here proposes nothing; apply decides again) */
    range_merge_txn txn = {q->txn_id, q->anchor, q->anchor_len, q->commit_ts, q->generation,
                           rd->generation};
    if (q->txn_id != 0) {
        if (d->generation != q->generation ||
            !range_descriptor_contains(d, q->anchor, q->anchor_len))
            return RANGE_ERR_ABORTED;
        range__record rec;
        bool found = false;
        rc = record_read(sr, q->anchor, q->anchor_len, q->txn_id, &rec, &found);
        if (rc != RANGE_OK)
            return rc;
        if (!found || rec.status != RANGE_TXN_PENDING)
            return RANGE_ERR_ABORTED;
    }
    if (d->generation != q->generation)
        return RANGE_ERR_KEY_MISMATCH; /* the router refreshes and asks again */
    if (d->end_len == 0 || range__key_cmp(d->end_key, d->end_len, rd->start_key,
                                          rd->start_len) != 0) {
        BASE_INFO("range", "r%llu: merge with r%llu refused: not adjacent",
                  (unsigned long long)sr->range_id, (unsigned long long)rd->range_id);
        return RANGE_ERR_INVALID;
    }
    rc = replica__merge_readiness(sr->replica, &applied, &conf_busy, &learners);
    if (rc != RANGE_OK)
        return rc;
    if (!same_voters(d, rd) || learners) {
        BASE_INFO("range", "r%llu: merge with r%llu refused: replicas not co-located",
                  (unsigned long long)sr->range_id, (unsigned long long)rd->range_id);
        return RANGE_ERR_INVALID;
    }
    if (conf_busy)
        return RANGE_ERR_BUSY;
    /* every replica of L must apply MERGE next to a frozen R that applied
    ** the freeze (WAIT_APPLIED made sure); here at least, check it */
    range_replica *right = range_node_replica(s->config.node, rd->range_id);
    if (right == NULL || !replica_is_frozen(right, &frozen_by) || frozen_by != q->merge_id) {
        BASE_INFO("range", "r%llu: merge %016llx refused: r%llu is not frozen for it here",
                  (unsigned long long)sr->range_id, (unsigned long long)q->merge_id,
                  (unsigned long long)rd->range_id);
        return RANGE_ERR_INVALID;
    }
    range_replica_status rst;
    range_replica_get_status(right, &rst);
    if (rst.applied < q->applied_index)
        return RANGE_ERR_UNAVAILABLE; /* not caught up here yet: ask again */
    server_pending *p = NULL;
    rc = marker_register(s, sr, REPLICA_MERGE_TXN_ID, q->merge_id, &p);
    if (rc != RANGE_OK)
        return rc;
    rc = replica__propose_merge_txn(sr->replica, q->merge_id, d->generation, rd,
                                    q->applied_index, q->freeze_lineage, q->merge_floor,
                                    q->txn_id != 0 ? &txn : NULL, term, server_propose_cb, p,
                                    &hint);
    if (rc != RANGE_OK) {
        marker_unregister(s, sr, p);
        e->resp.leader_hint = hint;
        return rc;
    }
    BASE_INFO("range", "r%llu: merge %016llx of r%llu proposed", (unsigned long long)sr->range_id,
              (unsigned long long)q->merge_id, (unsigned long long)rd->range_id);
    rc = pending_wait(s, p);
    if (rc != RANGE_OK)
        return rc;
    /* what R's leaseholder recorded over its span is below the floor: L
    ** serves it from now on above it (the gate is still closed) */
    range_span rspan = {rd->start_key, rd->start_len, rd->end_key, rd->end_len, false};
    pthread_mutex_lock(&s->mu);
    range__tscache_add(sr->tscache, &rspan, q->merge_floor);
    sr->unc_floor = HLC_MAX; /* R's versions: no observed timestamp bounds them */
    pthread_mutex_unlock(&s->mu);
    return load_desc(sr, e);
}

/* ADMIN_MERGE (THE MERGE GATE): at L's leaseholder, subsume the frozen
** right-hand range req.right; answer L's new descriptor. */
static int eval_admin_merge(range_server *s, server_range *sr, server_eval *e)
{
    for (int attempt = 0; attempt < SERVER_COMMIT_ATTEMPTS_MAX; attempt++) {
        uint64_t term = 0, hint = 0;
        int rc = server_barrier_wait(s, sr, &term, &hint);
        if (rc != RANGE_OK) {
            e->resp.leader_hint = hint;
            return rc;
        }
        rc = split_gate_close(s, sr);
        if (rc != RANGE_OK)
            return rc;
        rc = merge_once(s, sr, e, term);
        split_gate_open(s, sr);
        if (rc != RANGE_ERR_DROPPED)
            return rc;
    }
    return RANGE_ERR_AMBIGUOUS; /* refused at apply (fenced) or lost: the caller fences */
}

/* d holds the greatest key below bound: it ends at bound, or holds bound
** past its start (it took in the range starting there). */
static bool holds_below(const range_descriptor *d, const uint8_t *bound, size_t len)
{
    if (d->end_len > 0 && range__key_cmp(d->end_key, d->end_len, bound, len) == 0)
        return true;
    return range_descriptor_contains(d, bound, len) &&
           range__key_cmp(d->start_key, d->start_len, bound, len) < 0;
}

/* The descriptor (*out, owner: caller) of the range here holding the
** greatest key below bound. RANGE_OK, RANGE_NOT_FOUND (none here), NOMEM. */
static int below_desc(range_server *s, const uint8_t *bound, size_t len, range_descriptor *out)
{
    range_replica *h = replica__node_find(s->config.node, bound, len, true);
    if (h == NULL)
        h = replica__node_find(s->config.node, bound, len, false);
    if (h == NULL || range_replica_descriptor(h, out) != RANGE_OK)
        return RANGE_NOT_FOUND;
    if (holds_below(out, bound, len))
        return RANGE_OK;
    range_descriptor_free(out); /* the range starting at bound */
    return RANGE_NOT_FOUND;
}

/* e->desc does not hold the key below req.key: KEY_MISMATCH naming (other)
** the range here that does, if any, for the router to fence there. */
static int fence_misplaced(range_server *s, server_range *sr, server_eval *e)
{
    e->resp.has_descriptor = true;
    if (!e->have_other && below_desc(s, e->req.key, e->req.key_len, &e->other) == RANGE_OK) {
        e->have_other = true;
        e->resp.has_other = e->other.range_id != sr->range_id;
    }
    BASE_INFO("range", "r%llu: fence of merge %016llx refused: not the range below r%llu",
              (unsigned long long)sr->range_id, (unsigned long long)e->req.merge_id,
              (unsigned long long)e->req.right_range_id);
    return RANGE_ERR_KEY_MISMATCH;
}

/* MERGE_FENCE: at the range holding the key just below R's start (req.key;
** empty: not checked), make merge req.merge_id unable to apply here; answer
** the descriptor and `merged`: the merge happened first. */
static int eval_merge_fence(range_server *s, server_range *sr, server_eval *e)
{
    const uint8_t *bound = e->req.key;
    size_t bound_len = e->req.key_len;
    for (int attempt = 0; attempt < SERVER_COMMIT_ATTEMPTS_MAX; attempt++) {
        uint64_t term = 0, hint = 0;
        int rc = server_barrier_wait(s, sr, &term, &hint);
        if (rc != RANGE_OK) {
            e->resp.leader_hint = hint;
            return rc;
        }
        /* a cache that named a range which shrank or went elsewhere */
        rc = load_desc(sr, e);
        if (rc != RANGE_OK)
            return rc;
        if (bound_len > 0 && !holds_below(&e->desc, bound, bound_len))
            return fence_misplaced(s, sr, e);
        server_pending *p = NULL;
        rc = marker_register(s, sr, REPLICA_FENCE_TXN_ID, e->req.merge_id, &p);
        if (rc != RANGE_OK)
            return rc;
        rc = replica__propose_fence(sr->replica, e->req.merge_id, e->req.right_range_id, term,
                                    server_propose_cb, p, &hint);
        if (rc != RANGE_OK) {
            marker_unregister(s, sr, p);
            e->resp.leader_hint = hint;
            return rc;
        }
        rc = pending_wait(s, p);
        if (rc == RANGE_ERR_DROPPED)
            continue;
        if (rc != RANGE_OK)
            return rc;
        rc = load_desc(sr, e);
        if (rc != RANGE_OK)
            return rc;
        /* the fence counts only where the key below R's start is now (a
        ** split applied meanwhile moved it: fence there too) */
        if (bound_len > 0 && !holds_below(&e->desc, bound, bound_len))
            return fence_misplaced(s, sr, e);
        /* the span alone misses a merge followed by a split at R's start */
        bool applied = false;
        rc = replica__merge_applied(sr->replica, e->req.merge_id, &applied);
        if (rc != RANGE_OK)
            return rc;
        bool holds_start =
            bound_len > 0 && range_descriptor_contains(&e->desc, bound, bound_len);
        e->resp.merged = applied || holds_start;
        e->resp.has_descriptor = true;
        return RANGE_OK;
    }
    return RANGE_ERR_AMBIGUOUS;
}

/* UNFREEZE: R frozen with req.merge_id serves again (the caller fenced the
** merge first). Not frozen: OK (a retry). Answers the descriptor. */
static int eval_unfreeze(range_server *s, server_range *sr, server_eval *e)
{
    for (int attempt = 0; attempt < SERVER_COMMIT_ATTEMPTS_MAX; attempt++) {
        uint64_t term = 0, hint = 0, frozen_by = 0;
        int rc = server_barrier_wait(s, sr, &term, &hint);
        if (rc != RANGE_OK) {
            e->resp.leader_hint = hint;
            return rc;
        }
        if (replica_is_frozen(sr->replica, &frozen_by) && frozen_by != e->req.merge_id)
            return RANGE_ERR_INVALID; /* another merge's freeze */
        if (frozen_by == 0) {
            rc = load_desc(sr, e);
            if (rc == RANGE_OK)
                e->resp.has_descriptor = true;
            return rc;
        }
        server_pending *p = NULL;
        rc = marker_register(s, sr, REPLICA_UNFREEZE_TXN_ID, e->req.merge_id, &p);
        if (rc != RANGE_OK)
            return rc;
        rc = replica__propose_unfreeze(sr->replica, e->req.merge_id, term, server_propose_cb, p,
                                       &hint);
        if (rc != RANGE_OK) {
            marker_unregister(s, sr, p);
            e->resp.leader_hint = hint;
            return rc;
        }
        BASE_INFO("range", "r%llu: unfreeze of merge %016llx proposed",
                  (unsigned long long)sr->range_id, (unsigned long long)e->req.merge_id);
        rc = pending_wait(s, p);
        if (rc != RANGE_OK && rc != RANGE_ERR_DROPPED)
            return rc;
        /* DROPPED: look again (unfrozen by another proposal, or not yet) */
    }
    return RANGE_ERR_AMBIGUOUS;
}

int range_server_frozen(range_server *s, uint64_t range_id, uint64_t *merge_id, bool *leads)
{
    *merge_id = 0;
    if (leads != NULL)
        *leads = false;
    range_replica *r = range_node_replica(s->config.node, range_id);
    if (r == NULL)
        return RANGE_ERR_NOT_LEADER;
    (void)replica_is_frozen(r, merge_id);
    if (leads != NULL) {
        range_replica_status st;
        range_replica_get_status(r, &st);
        *leads = st.leader;
    }
    return RANGE_OK;
}

/* ---- lease transfer ---------------------------------------------------------- */

/* TRANSFER_LEASE (docs/range.md, "Lease transfer"): start the Raft
** leadership transfer here, then wait (bounded by wait_timeout_ms, rechecked
** every SERVER_TRANSFER_POLL_MS) until this replica sees the target lead.
** The target serves only after its own barrier, which raises its low-water
** above everything served here. A request to the leaseholder naming itself
** answers OK (a retry after the transfer). */
static int eval_transfer_lease(range_server *s, server_range *sr, server_eval *e)
{
    uint64_t target = e->req.target_node_id, hint = 0;
    range_replica_status st;
    range_replica_get_status(sr->replica, &st);
    if (target == st.node_id && st.leader) {
        e->resp.leader_id = target;
        return RANGE_OK;
    }
    int rc = range_replica_transfer_lease(sr->replica, target, &hint);
    if (rc != RANGE_OK) {
        e->resp.leader_hint = hint;
        return rc;
    }
    BASE_INFO("range", "r%llu: lease transfer to n%llu started", (unsigned long long)sr->range_id,
              (unsigned long long)target);
    int64_t polls = s->config.wait_timeout_ms / SERVER_TRANSFER_POLL_MS + 1;
    rc = RANGE_ERR_UNAVAILABLE;
    pthread_mutex_lock(&s->mu);
    for (int64_t i = 0; i <= polls && !s->stopping; i++) {
        pthread_mutex_unlock(&s->mu); /* status takes the node mutex */
        range_replica_get_status(sr->replica, &st);
        pthread_mutex_lock(&s->mu);
        if (!st.leader && st.leader_id == target) {
            rc = RANGE_OK;
            break;
        }
        if (i < polls) {
            struct timespec slice = deadline_after_ms(SERVER_TRANSFER_POLL_MS);
            (void)pthread_cond_timedwait(&s->changed, &s->mu, &slice);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (rc == RANGE_OK) {
        lease_lost(s, sr); /* the locks of this lease go with it */
        e->resp.leader_id = target;
        e->resp.leader_hint = target;
    }
    return rc;
}

/* ---- replica changes ----------------------------------------------------------- */

#define SERVER_CHANGE_STEPS_MAX 100000 /* steps and polls of one CHANGE_REPLICAS */

/* A configuration change step waited for (lives in the evaluating frame,
** which cancels it, replica__cancel_waiter, before leaving). */
typedef struct server_change_wait {
    range_server *s;
    bool done;
    int rc;
} server_change_wait;

static void server_change_cb(void *ctx, int rc)
{
    server_change_wait *w = ctx;
    pthread_mutex_lock(&w->s->mu);
    w->done = true;
    w->rc = rc;
    pthread_cond_broadcast(&w->s->changed);
    pthread_mutex_unlock(&w->s->mu);
}

/* CHANGE_REPLICAS (docs/range.md, "Replica changes and snapshots"): at the
** leaseholder, one Raft configuration change at a time
** (range_replica_change_replicas) until add_node_id is a voter and
** remove_node_id no member, each step applied here before the next; a
** learner still catching up (BUSY) is looked at again every
** SERVER_TRANSFER_POLL_MS. Bounded by wait_timeout_ms (then UNAVAILABLE: a
** retry goes on from where the range is). Answers the descriptor. */
static int eval_change_replicas_txn(range_server *s, server_range *sr, server_eval *e);

static int eval_change_replicas(range_server *s, server_range *sr, server_eval *e)
{
    struct timespec deadline = deadline_after_ms(s->config.wait_timeout_ms);
    if (e->req.txn_id != 0)
        return eval_change_replicas_txn(s, sr, e);
    for (int phase = 0; phase < 2; phase++) {
        uint64_t node = phase == 0 ? e->req.add_node_id : e->req.remove_node_id;
        range_replica_change_type type = phase == 0 ? RANGE_REPLICA_ADD : RANGE_REPLICA_REMOVE;
        bool done = node == 0;
        for (int step = 0; !done; step++) {
            server_change_wait w = {s, false, 0};
            uint64_t hint = 0;
            if (step >= SERVER_CHANGE_STEPS_MAX)
                return RANGE_ERR_UNAVAILABLE;
            int rc = range_replica_change_replicas(sr->replica, type, node, server_change_cb, &w,
                                                   &hint, &done);
            if (rc == RANGE_ERR_NOT_LEADER)
                e->resp.leader_hint = hint;
            if (rc != RANGE_OK && rc != RANGE_ERR_BUSY)
                return rc;
            pthread_mutex_lock(&s->mu);
            bool timed_out = false;
            if (rc == RANGE_ERR_BUSY) { /* not now: look again shortly */
                struct timespec slice = deadline_after_ms(SERVER_TRANSFER_POLL_MS);
                (void)pthread_cond_timedwait(&s->changed, &s->mu, &slice);
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                timed_out = now.tv_sec > deadline.tv_sec ||
                            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
            } else {
                while (!done && !w.done && !s->stopping && !timed_out)
                    timed_out = pthread_cond_timedwait(&s->changed, &s->mu, &deadline) ==
                                ETIMEDOUT;
            }
            bool stopping = s->stopping;
            pthread_mutex_unlock(&s->mu);
            if (rc == RANGE_OK && !done && !w.done) {
                replica__cancel_waiter(sr->replica, server_change_cb, &w);
                pthread_mutex_lock(&s->mu); /* it may have run just before */
                bool ran = w.done;
                pthread_mutex_unlock(&s->mu);
                if (!ran)
                    return RANGE_ERR_UNAVAILABLE;
            }
            if (rc == RANGE_OK && !done && w.rc != RANGE_OK && w.rc != RANGE_ERR_DROPPED)
                return RANGE_ERR_UNAVAILABLE; /* shutdown: the change may go on */
            if (!done && (timed_out || stopping))
                return RANGE_ERR_UNAVAILABLE;
        }
    }
    int rc = range_replica_descriptor(sr->replica, &e->desc);
    if (rc == RANGE_OK) {
        e->have_desc = true;
        e->resp.has_descriptor = true;
    }
    return rc == RANGE_ERR_UNAVAILABLE ? RANGE_ERR_NOT_LEADER : rc; /* removed meanwhile */
}

/* CHANGE_REPLICAS with a transaction (docs/decisions/010, item 8): ONE
** step (req.conf_step) as the commit trigger of the transaction, inside
** the closed split gate like a split (no record write of this range is
** being evaluated meanwhile); replica__change_replicas_txn checks the
** generation and the record where the proposal is made. A learner still
** catching up (BUSY) is looked at again every SERVER_TRANSFER_POLL_MS,
** with the gate open in between. Answers the descriptor after the step
** (the same generation when it had nothing to do), RANGE_ERR_ABORTED
** (refused unproposed) or UNAVAILABLE (still catching up at the deadline,
** or the step's fate unknown: the record tells). */
static int eval_change_replicas_txn(range_server *s, server_range *sr, server_eval *e)
{
    const range_kv_request *q = &e->req;
    struct timespec deadline = deadline_after_ms(s->config.wait_timeout_ms);
    range_split_txn txn = {q->txn_id, q->anchor, q->anchor_len, q->commit_ts, q->generation};
    uint64_t node = q->conf_step == RANGE_CONF_STEP_REMOVE ? q->remove_node_id : q->add_node_id;
    int rc = RANGE_ERR_BUSY;
    for (int step = 0; rc == RANGE_ERR_BUSY; step++) {
        server_change_wait w = {s, false, 0};
        uint64_t hint = 0;
        bool done = false, timed_out = false;
        if (step >= SERVER_CHANGE_STEPS_MAX)
            return RANGE_ERR_UNAVAILABLE;
        rc = split_gate_close(s, sr);
        if (rc != RANGE_OK)
            return rc;
        rc = replica_is_frozen(sr->replica, NULL)
                 ? RANGE_ERR_MERGING
                 : replica__change_replicas_txn(sr->replica, q->conf_step, node, &txn,
                                                server_change_cb, &w, &hint, &done);
        if (rc == RANGE_ERR_NOT_LEADER)
            e->resp.leader_hint = hint;
        if (rc == RANGE_OK && !done) {
            pthread_mutex_lock(&s->mu);
            while (!w.done && !s->stopping && !timed_out)
                timed_out = pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT;
            pthread_mutex_unlock(&s->mu);
            if (!w.done) {
                replica__cancel_waiter(sr->replica, server_change_cb, &w);
                pthread_mutex_lock(&s->mu); /* it may have run just before */
                bool ran = w.done;
                pthread_mutex_unlock(&s->mu);
                if (!ran)
                    rc = RANGE_ERR_UNAVAILABLE;
            }
            if (rc == RANGE_OK && w.rc != RANGE_OK)
                rc = RANGE_ERR_UNAVAILABLE; /* dropped or shutdown: the record tells */
        }
        split_gate_open(s, sr);
        if (rc != RANGE_ERR_BUSY)
            break;
        pthread_mutex_lock(&s->mu); /* not now: look again shortly */
        struct timespec slice = deadline_after_ms(SERVER_TRANSFER_POLL_MS);
        (void)pthread_cond_timedwait(&s->changed, &s->mu, &slice);
        bool stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (stopping || now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
            return RANGE_ERR_UNAVAILABLE; /* calling again goes on from here */
    }
    if (rc != RANGE_OK)
        return rc;
    rc = range_replica_descriptor(sr->replica, &e->desc);
    if (rc == RANGE_OK) {
        e->have_desc = true;
        e->resp.has_descriptor = true;
    }
    return rc == RANGE_ERR_UNAVAILABLE ? RANGE_ERR_NOT_LEADER : rc; /* removed meanwhile */
}

/* ---- closed timestamps (see CLOSED TIMESTAMPS) -------------------------------- */

/* One entry to send: to node `to`. */
typedef struct server_closed_out {
    uint64_t to;
    range_closed_entry e;
} server_closed_out;

static int closed_out_order(const void *a, const void *b)
{
    const server_closed_out *x = a, *y = b;
    return x->to < y->to ? -1 : (x->to > y->to ? 1 : 0);
}

/* Close range_id if this replica leads it with a valid lease: RANGE_OK with
** *e and the descriptor's replicas in d (owner: caller, range_descriptor_free
** when *did_close); *did_close false: nothing closed. */
static int close_range(range_server *s, uint64_t range_id, range_closed_entry *e,
                       range_descriptor *d, bool *did_close)
{
    *did_close = false;
    range_replica *r = range_node_replica(s->config.node, range_id); /* node mutex */
    if (r == NULL)
        return RANGE_OK;
    /* a frozen range is closed no more: L may write over its span above the
    ** merge floor, which a later closed timestamp could pass (THE MERGE GATE) */
    if (replica_is_frozen(r, NULL))
        return RANGE_OK;
    range_replica_status before, after;
    range_replica_get_status(r, &before);
    if (!before.leader || !before.lease_valid)
        return RANGE_OK; /* a deposed leader must not publish */
    server_range *sr = NULL;
    int rc = server_range_get(s, range_id, &sr);
    if (rc != RANGE_OK)
        return rc == RANGE_ERR_NOT_LEADER ? RANGE_OK : rc;
    /* The status's lease counts ticks; a node whose ticks stopped (a paused
    ** process) still sees it valid. A barrier proves leadership now: the
    ** lease when ticks are fresh, else a quorum round (and it starts the
    ** term's low-water on an idle range). No later leader's lease starts
    ** before `proof_ns`, and its low-water is above its now + max_offset. */
    int64_t proof_ns = base_monotonic_ns();
    uint64_t term = 0, hint = 0;
    if (server_barrier_wait(s, sr, &term, &hint) != RANGE_OK || term != before.term)
        return RANGE_OK;
    hlc_timestamp closed = HLC_ZERO;
    pthread_mutex_lock(&s->mu);
    lease_start_locked(s, sr, before.term);
    bool same_term = sr->lead_term == before.term;
    hlc_timestamp c = hlc_add_ns(hlc_now(s->config.clock), -s->config.closed_lag_ms * 1000000);
    if (same_term) {
        /* no commit registered from now on takes a timestamp <= c */
        range__tscache_raise_low_water(sr->tscache, c);
        closed = c;
        /* registered, maybe not proposed yet: the closed ts stays below */
        for (const server_pending *p = sr->pending; p != NULL; p = p->next)
            if (hlc_compare(p->ts, closed) <= 0)
                closed = hlc_prev(p->ts);
    }
    pthread_mutex_unlock(&s->mu);
    if (!same_term)
        return RANGE_OK;
    /* closed is lag behind now: published only while the proof is younger
    ** than half the lag, so every later leaseholder's low-water (its now at
    ** lease start, after proof_ns, plus max_offset) lies above it */
    if (base_monotonic_ns() - proof_ns > s->config.closed_lag_ms * 1000000 / 2)
        return RANGE_OK;
    /* L after s->mu: every entry with a write at <= closed is in the log now */
    range_replica_get_status(r, &after);
    if (!after.leader || !after.lease_valid || after.term != before.term)
        return RANGE_OK;
    rc = range_replica_descriptor(r, d);
    if (rc != RANGE_OK)
        return rc == RANGE_ERR_UNAVAILABLE ? RANGE_OK : rc;
    *e = (range_closed_entry){range_id, before.term, closed, after.last_index};
    *did_close = true;
    return RANGE_OK;
}

/* One round of the closer: close every range this node leads, keep each
** entry here, send each other replica's node its entries in one message.
** Returns how many ranges were closed. */
static size_t server_close_round(range_server *s)
{
    uint64_t *ids = NULL;            /* owner: this function */
    server_closed_out *outs = NULL;  /* owner: this function */
    range_closed_entry *batch = NULL; /* owner: this function */
    base_buf buf = {0};              /* owner: this function */
    size_t n_outs = 0, closed_n = 0;
    if (s->config.closed_lag_ms < 0)
        return 0;
    if (s->config.may_serve != NULL && !s->config.may_serve(s->config.may_serve_ctx))
        return 0; /* an unbounded clock closes nothing (docs/clocks.md) */
    ids = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof(*ids));
    outs = base_calloc((size_t)RANGE_NODE_REPLICAS_MAX * RANGE_REPLICAS_MAX, sizeof(*outs));
    batch = base_calloc(RANGE_CLOSED_ENTRIES_MAX, sizeof(*batch));
    if (ids == NULL || outs == NULL || batch == NULL)
        goto cleanup;
    size_t n_ids = range_node_replica_ids(s->config.node, ids, RANGE_NODE_REPLICAS_MAX);
    for (size_t i = 0; i < n_ids && i < RANGE_NODE_REPLICAS_MAX; i++) {
        range_closed_entry e;
        range_descriptor d;
        bool closed = false;
        memset(&d, 0, sizeof(d));
        if (close_range(s, ids[i], &e, &d, &closed) != RANGE_OK || !closed)
            continue;
        closed_n++;
        pthread_mutex_lock(&s->mu);
        closed_note_locked(s, &e); /* still true here after a lease change */
        pthread_mutex_unlock(&s->mu);
        uint64_t self = 0;
        range_replica_status st;
        range_replica *r = range_node_replica(s->config.node, ids[i]);
        if (r != NULL) {
            range_replica_get_status(r, &st);
            self = st.node_id;
        }
        for (size_t k = 0; k < d.n_replicas && k < RANGE_REPLICAS_MAX; k++)
            if (d.replicas[k] != self && d.replicas[k] != 0)
                outs[n_outs++] = (server_closed_out){d.replicas[k], e};
        range_descriptor_free(&d);
    }
    if (s->config.transport == NULL || n_outs == 0)
        goto cleanup;
    qsort(outs, n_outs, sizeof(*outs), closed_out_order);
    for (size_t i = 0; i < n_outs;) {
        size_t n = 0;
        uint64_t to = outs[i].to;
        for (; i < n_outs && outs[i].to == to && n < RANGE_CLOSED_ENTRIES_MAX; i++)
            batch[n++] = outs[i].e;
        base_buf_reset(&buf);
        if (range_closed_encode(batch, n, &buf) != RANGE_OK)
            continue;
        int rc = rpc_send(s->config.transport, (rpc_node_id)to, RANGE_RPC_METHOD_CLOSED, buf.data,
                          buf.len);
        if (rc != RPC_OK) {
            BASE_DEBUG("range", "closed timestamps to n%llu not sent: %s",
                       (unsigned long long)to, rpc_strerror(rc));
            continue;
        }
        pthread_mutex_lock(&s->mu);
        s->stats.closed_sent++;
        pthread_mutex_unlock(&s->mu);
    }
cleanup:
    base_free(ids);
    base_free(outs);
    base_free(batch);
    base_buf_free(&buf);
    return closed_n;
}

/* ---- garbage collection (IDEMPOTENCE GC, THE AGE SWEEP, VERSION GC) ------------- */

#define SERVER_RECORD_SWEEP_MAX 256 /* ABORTED records collected per range per round */
#define SERVER_RECORD_SWEEP_SCAN_MAX 10000 /* records looked at per range per round (the
                                              next round goes on from there) */
#define SERVER_RECORD_SWEEP_MARGIN_MS (60 * 1000) /* > the clock offsets between the
                                                     txn's read_ts, the record's
                                                     final_wall and the sweep */

#define SERVER_COMMITTED_SWEEP_AGE_MS (5 * 60 * 1000) /* a live coordinator resolves and
                                            collects its record within seconds (its
                                            resolver gives up within a few minutes at
                                            most); final this long, it is taken for
                                            dead. Only to spare double work: the
                                            sweep is safe at any age */
#define SERVER_COMMITTED_SWEEP_MAX 16 /* COMMITTED records resolved per range per round */
#define SERVER_COMMITTED_SWEEP_MS (10 * 1000) /* no new resolution after this long in a
                                                 round (the next round goes on) */

static void eval_free(server_eval *e);

/* THE SWEEP OF COMMITTED RECORDS, under eval_mu: the record is still the
** COMMITTED one whose spans were resolved (e->req.commit_ts); it goes by the
** GC_TXN path. Final records never change, so this is the same record. */
static bool committed_sweep_decide(range_server *s, const server_eval *e,
                                   const range__record *cur, range__record *next, uint8_t *kind)
{
    if (cur == NULL || cur->status != RANGE_TXN_COMMITTED ||
        hlc_compare(cur->commit_ts, e->req.commit_ts) != 0)
        return false;
    return gc_decide(s, e, cur, next, kind);
}

void range_server_set_resolver(range_server *s, range_kv *kv)
{
    pthread_mutex_lock(&s->mu);
    while (s->resolver_busy)
        pthread_cond_wait(&s->changed, &s->mu);
    s->resolver = kv;
    pthread_mutex_unlock(&s->mu);
}

/* The resolver for one use (NULL: none); resolver_put after it. */
static range_kv *resolver_take(range_server *s)
{
    pthread_mutex_lock(&s->mu);
    range_kv *kv = s->stopping || s->resolver_busy ? NULL : s->resolver;
    if (kv != NULL)
        s->resolver_busy = true;
    pthread_mutex_unlock(&s->mu);
    return kv;
}

static void resolver_put(range_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->resolver_busy = false;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
}

/* THE SWEEP OF COMMITTED RECORDS (docs/txn.md 6.1) of the record at raw key
** `raw`: its participant spans RESOLVEd (COMMITTED, at its commit ts) through
** the resolver, then, all answered OK, the record collected through the
** GC_TXN path. true when it went. */
static bool sweep_committed_one(range_server *s, server_range *sr, range_kv *kv,
                                const uint8_t *raw, size_t raw_len)
{
    base_buf val = {0}, anchor = {0}; /* owner: this function */
    range_span *spans = NULL;          /* owner: this function; borrowed from val */
    server_eval *e = NULL;             /* owner: this function */
    range__record rec;
    uint64_t txn_id = 0;
    size_t n = 0;
    bool gone = false;
    if (range__record_key_decode(raw, raw_len, &anchor, &txn_id) != RANGE_OK ||
        storage_get_raw(replica__engine(sr->replica), raw, raw_len, &val) != STORAGE_OK ||
        range__record_decode(val.data, val.len, &rec) != RANGE_OK ||
        rec.status != RANGE_TXN_COMMITTED || rec.spans_len == 0)
        goto done;
    spans = base_calloc(RANGE_TXN_RECORD_SPANS_MAX, sizeof(*spans));
    if (spans == NULL || range__record_spans_decode(rec.spans, rec.spans_len, spans, &n) !=
                             RANGE_OK)
        goto done;
    /* idempotent: a live coordinator (or a reader) resolving too is harmless */
    int rc = kv->ops->resolve(kv, txn_id, spans, n, RANGE_TXN_COMMITTED, rec.commit_ts);
    if (rc != RANGE_OK) {
        BASE_DEBUG("range", "r%llu: resolution of COMMITTED txn %016llx failed (%d): "
                   "its record stays, the next round tries again",
                   (unsigned long long)sr->range_id, (unsigned long long)txn_id, rc);
        goto done;
    }
    e = base_calloc(1, sizeof(*e));
    if (e == NULL)
        goto done;
    e->req.commit_ts = rec.commit_ts;
    bool found = true;
    range__record left;
    rc = record_update(s, sr, e, anchor.data, anchor.len, txn_id, committed_sweep_decide,
                       &left, &found);
    gone = rc == RANGE_OK && !found;
done:
    if (e != NULL)
        eval_free(e);
    base_free(e);
    base_free(spans);
    base_buf_free(&val);
    base_buf_free(&anchor);
    return gone;
}

/* THE AGE SWEEP's test, again under eval_mu: an ABORTED record final for
** long enough goes by the GC_TXN path (gc_decide). */
static bool sweep_decide(range_server *s, const server_eval *e, const range__record *cur,
                         range__record *next, uint8_t *kind)
{
    int64_t now_ns = hlc_now(s->config.clock).wall_ns;
    int64_t age_ns = ((int64_t)RANGE_TXN_RECORD_GC_AGE_MS + SERVER_RECORD_SWEEP_MARGIN_MS) *
                     1000000;
    if (cur == NULL || cur->status != RANGE_TXN_ABORTED || cur->final_wall_ns <= 0 ||
        cur->final_wall_ns >= now_ns - age_ns)
        return false;
    return gc_decide(s, e, cur, next, kind);
}

/* Collect the ABORTED records of sr's span final for longer than the age
** (at most SERVER_RECORD_SWEEP_MAX, looking at SERVER_RECORD_SWEEP_SCAN_MAX
** from sr->sweep_from on). Returns how many went. */
static size_t gc_sweep_range(range_server *s, server_range *sr)
{
    range_descriptor d;
    base_buf lo = {0}, hi = {0}, key = {0}, val = {0}, anchor = {0}; /* owner: this function */
    base_buf found_keys = {0};   /* owner: this function; the records to collect */
    base_buf committed_keys = {0}; /* owner: this function; COMMITTED ones to resolve */
    size_t offsets[SERVER_RECORD_SWEEP_MAX + 1], n = 0, swept = 0;
    size_t c_offsets[SERVER_COMMITTED_SWEEP_MAX + 1], n_committed = 0, swept_committed = 0;
    pthread_mutex_lock(&s->mu);
    bool resolver = s->resolver != NULL; /* else COMMITTED records stay */
    pthread_mutex_unlock(&s->mu);
    static const uint8_t records_end[] = "range/t0"; /* past every record key */
    server_eval *e = NULL;       /* owner: this function */
    int rc = range_replica_descriptor(sr->replica, &d);
    if (rc != RANGE_OK)
        return 0;
    int64_t now_ns = hlc_now(s->config.clock).wall_ns;
    int64_t age_ns = ((int64_t)RANGE_TXN_RECORD_GC_AGE_MS + SERVER_RECORD_SWEEP_MARGIN_MS) *
                     1000000;
    /* the records of [start, end): (anchor, id 0) is an anchor's least key */
    if (d.start_len > 0)
        rc = range__record_key(d.start_key, d.start_len, 0, &lo);
    else if (base_buf_append(&lo, RANGE_TXN_RECORD_PREFIX, RANGE_TXN_RECORD_PREFIX_LEN) != 0)
        rc = RANGE_ERR_NOMEM;
    if (rc == RANGE_OK && d.end_len > 0)
        rc = range__record_key(d.end_key, d.end_len, 0, &hi);
    else if (rc == RANGE_OK && base_buf_append(&hi, records_end, sizeof(records_end) - 1) != 0)
        rc = RANGE_ERR_NOMEM;
    /* go on where the last round stopped, when that is still in the span */
    pthread_mutex_lock(&s->mu);
    if (rc == RANGE_OK && sr->sweep_from.len > 0 &&
        range__key_cmp(sr->sweep_from.data, sr->sweep_from.len, lo.data, lo.len) > 0 &&
        range__key_cmp(sr->sweep_from.data, sr->sweep_from.len, hi.data, hi.len) < 0) {
        base_buf_reset(&lo);
        if (base_buf_append(&lo, sr->sweep_from.data, sr->sweep_from.len) != 0)
            rc = RANGE_ERR_NOMEM;
    }
    pthread_mutex_unlock(&s->mu);
    offsets[0] = 0;
    c_offsets[0] = 0;
    int64_t c_age_ns = (int64_t)SERVER_COMMITTED_SWEEP_AGE_MS * 1000000;
    bool at_end = false;
    for (size_t looked = 0; rc == RANGE_OK && n < SERVER_RECORD_SWEEP_MAX &&
                            n_committed < SERVER_COMMITTED_SWEEP_MAX &&
                            looked < SERVER_RECORD_SWEEP_SCAN_MAX; looked++) {
        int g = storage_seek_raw(replica__engine(sr->replica), lo.data, lo.len, hi.data, hi.len,
                                 &key, &val);
        at_end = g == STORAGE_NOT_FOUND;
        if (g != STORAGE_OK)
            break; /* the end, or an error: the next round tries again */
        range__record rec;
        if (range__record_decode(val.data, val.len, &rec) == RANGE_OK &&
            rec.status == RANGE_TXN_ABORTED && rec.final_wall_ns > 0 &&
            rec.final_wall_ns < now_ns - age_ns) {
            if (base_buf_append(&found_keys, key.data, key.len) != 0)
                break;
            offsets[++n] = found_keys.len;
        } else if (resolver && rec.status == RANGE_TXN_COMMITTED && rec.spans_len > 0 &&
                   rec.final_wall_ns > 0 && rec.final_wall_ns < now_ns - c_age_ns) {
            /* THE SWEEP OF COMMITTED RECORDS: a dead coordinator's */
            if (base_buf_append(&committed_keys, key.data, key.len) != 0)
                break;
            c_offsets[++n_committed] = committed_keys.len;
        }
        base_buf_reset(&lo); /* next: the smallest key above this one */
        if (base_buf_append(&lo, key.data, key.len) != 0 || base_buf_append_byte(&lo, 0) != 0)
            rc = RANGE_ERR_NOMEM;
    }
    /* the next round: from the start again, or from here (the records to
    ** collect below lo are collected now) */
    pthread_mutex_lock(&s->mu);
    base_buf_reset(&sr->sweep_from);
    if (rc == RANGE_OK && !at_end && base_buf_append(&sr->sweep_from, lo.data, lo.len) != 0)
        base_buf_reset(&sr->sweep_from);
    pthread_mutex_unlock(&s->mu);
    if (n > 0)
        e = base_calloc(1, sizeof(*e));
    for (size_t i = 0; i < n && e != NULL; i++) {
        uint64_t txn_id = 0;
        if (range__record_key_decode(found_keys.data + offsets[i], offsets[i + 1] - offsets[i],
                                     &anchor, &txn_id) != RANGE_OK)
            continue;
        range__record rec;
        bool found = true;
        eval_free(e);
        memset(e, 0, sizeof(*e));
        rc = record_update(s, sr, e, anchor.data, anchor.len, txn_id, sweep_decide, &rec, &found);
        if (rc == RANGE_OK && !found)
            swept++;
        else if (rc != RANGE_OK)
            break; /* leadership moved, shutdown: the next round */
    }
    if (e != NULL)
        eval_free(e);
    base_free(e);
    if (swept > 0)
        BASE_INFO("range", "r%llu: %zu ABORTED transaction records older than %d s collected",
                  (unsigned long long)sr->range_id, swept,
                  (int)(RANGE_TXN_RECORD_GC_AGE_MS / 1000));
    /* THE SWEEP OF COMMITTED RECORDS: bounded by count and time per round */
    range_kv *kv = n_committed > 0 ? resolver_take(s) : NULL;
    int64_t c_start_ns = base_monotonic_ns();
    for (size_t i = 0; i < n_committed && kv != NULL; i++) {
        if (base_monotonic_ns() - c_start_ns > (int64_t)SERVER_COMMITTED_SWEEP_MS * 1000000)
            break;
        pthread_mutex_lock(&s->mu);
        bool stopping = s->stopping; /* a stop waits for at most one resolution */
        pthread_mutex_unlock(&s->mu);
        if (stopping)
            break;
        if (sweep_committed_one(s, sr, kv, committed_keys.data + c_offsets[i],
                                c_offsets[i + 1] - c_offsets[i]))
            swept_committed++;
    }
    if (kv != NULL)
        resolver_put(s);
    if (swept_committed > 0)
        BASE_INFO("range", "r%llu: %zu COMMITTED transaction records of dead coordinators "
                  "resolved and collected", (unsigned long long)sr->range_id, swept_committed);
    swept += swept_committed;
    range_descriptor_free(&d);
    base_buf_free(&lo);
    base_buf_free(&hi);
    base_buf_free(&key);
    base_buf_free(&val);
    base_buf_free(&anchor);
    base_buf_free(&found_keys);
    base_buf_free(&committed_keys);
    return swept;
}

/* Propose sr's idempotence GC entry (led in `term`) at now - the age, when
** above its threshold, and wait for it. true when it applied. */
static bool gc_idempotence_range(range_server *s, server_range *sr, uint64_t term)
{
    hlc_timestamp t = {hlc_now(s->config.clock).wall_ns -
                           (int64_t)RANGE_IDEMPOTENCE_GC_AGE_MS * 1000000, 0};
    if (t.wall_ns <= 0 || hlc_compare(t, replica__idem_gc_threshold(sr->replica)) <= 0)
        return false;
    server_pending *p = NULL;
    uint64_t hint = 0;
    if (marker_register(s, sr, REPLICA_IDEM_GC_TXN_ID, (uint64_t)t.wall_ns, &p) != RANGE_OK)
        return false;
    if (replica__propose_idem_gc(sr->replica, t, term, server_propose_cb, p, &hint) !=
        RANGE_OK) {
        marker_unregister(s, sr, p);
        return false;
    }
    return pending_wait(s, p) == RANGE_OK;
}

#define SERVER_MVCC_GC_SCAN_MAX 200000 /* versions looked at per range per entry (the
                                         next entry or round goes on from there) */
#define SERVER_MVCC_GC_ENTRIES_MAX 4   /* version GC entries per range per round */

/* VERSION GC: the threshold of sr's next entries, led in `term`: now -
** the TTL, lowered below every registered commit, with the cache's
** low-water raised to it in the same s->mu section, so no commit registered
** from now on takes a timestamp <= it (as the closer closes). HLC_ZERO: none
** (no TTL, another term, not above the range's threshold). */
static hlc_timestamp gc_versions_threshold(range_server *s, server_range *sr, uint64_t term)
{
    int64_t ttl_s = s->config.gc_ttl_seconds != NULL
                        ? s->config.gc_ttl_seconds(s->config.gc_ttl_ctx)
                        : RANGE_GC_TTL_SECONDS_DEFAULT;
    if (ttl_s <= 0 || ttl_s > INT64_MAX / 2000000000)
        return HLC_ZERO;
    hlc_timestamp t = {hlc_now(s->config.clock).wall_ns - ttl_s * 1000000000, 0};
    if (t.wall_ns <= 0)
        return HLC_ZERO;
    pthread_mutex_lock(&s->mu);
    lease_start_locked(s, sr, term);
    bool same_term = sr->lead_term == term;
    if (same_term) {
        range__tscache_raise_low_water(sr->tscache, t);
        for (const server_pending *p = sr->pending; p != NULL; p = p->next)
            if (hlc_compare(p->ts, t) <= 0)
                t = hlc_prev(p->ts);
    }
    pthread_mutex_unlock(&s->mu);
    if (!same_term || t.wall_ns <= 0 ||
        hlc_compare(t, replica__mvcc_gc_threshold(sr->replica)) <= 0)
        return HLC_ZERO;
    return t;
}

/* The keys of [*from, end) (end_len 0: to the end) with garbage at t (a
** version older than the newest at or below t, or that newest one a
** tombstone), in order, into keys/offsets (offsets[0] = 0; *n keys), at
** most REPLICA_MVCC_GC_KEYS_MAX keys, REPLICA_MVCC_GC_BYTES_MAX entry bytes
** and SERVER_MVCC_GC_SCAN_MAX versions looked at. *from becomes where the
** next scan starts (empty: the end was reached). */
static int gc_versions_collect(storage_engine *eng, base_buf *from, const uint8_t *end,
                               size_t end_len, hlc_timestamp t, base_buf *keys, size_t *offsets,
                               size_t *n)
{
    base_buf cur = {0}; /* owner: this function; the key being looked at */
    storage_iter *it = NULL;
    storage_iter_options o = {.start = from->len > 0 ? from->data : NULL,
                              .start_len = from->len, .end = end_len > 0 ? end : NULL,
                              .end_len = end_len, .mode = STORAGE_ITER_ALL_VERSIONS};
    size_t bytes = REPLICA_MVCC_GC_HEADER, at_or_below = 0, looked = 0;
    bool have = false, newest_tomb = false, at_end = false, full = false;
    *n = 0;
    offsets[0] = 0;
    int rc = storage_iter_open(eng, NULL, &o, &it) == STORAGE_OK ? RANGE_OK : RANGE_ERR_IO;
    while (rc == RANGE_OK) {
        const uint8_t *k = NULL;
        size_t klen = 0;
        hlc_timestamp ts = HLC_ZERO;
        bool tomb = false;
        int got = looked < SERVER_MVCC_GC_SCAN_MAX
                      ? storage_iter_next(it, &k, &klen, &ts, NULL, NULL, &tomb) : 0;
        if (got < 0) {
            rc = range__storage_rc(got);
            break;
        }
        at_end = got == 0 && looked < SERVER_MVCC_GC_SCAN_MAX;
        bool next_key = got == 0 || !have || range__key_cmp(k, klen, cur.data, cur.len) != 0;
        if (have && next_key && got > 0 && (at_or_below >= 2 || newest_tomb)) {
            /* cur is garbage: listed when it fits, else the next entry's */
            if (*n == REPLICA_MVCC_GC_KEYS_MAX ||
                bytes + 4 + cur.len > REPLICA_MVCC_GC_BYTES_MAX) {
                full = true;
                break; /* cur starts the next scan */
            }
            if (base_buf_append(keys, cur.data, cur.len) != 0) {
                rc = RANGE_ERR_NOMEM;
                break;
            }
            bytes += 4 + cur.len;
            offsets[++*n] = keys->len;
        }
        if (got == 0)
            break; /* the end, or the scan bound: cur starts the next scan */
        looked++;
        if (next_key) {
            base_buf_reset(&cur);
            if (base_buf_append(&cur, k, klen) != 0) {
                rc = RANGE_ERR_NOMEM;
                break;
            }
            have = true;
            at_or_below = 0;
            newest_tomb = false;
        }
        if (hlc_compare(ts, t) <= 0 && at_or_below++ == 0)
            newest_tomb = tomb;
    }
    storage_iter_close(it);
    base_buf_reset(from);
    if (rc == RANGE_OK && !full && have && (at_or_below >= 2 || newest_tomb)) {
        /* the span's last key, or the one the scan bound cut (what it saw of
        ** it is garbage already: a key with more versions than the bound
        ** must not stop every scan): listed when it fits */
        if (*n < REPLICA_MVCC_GC_KEYS_MAX && bytes + 4 + cur.len <= REPLICA_MVCC_GC_BYTES_MAX) {
            if (base_buf_append(keys, cur.data, cur.len) != 0)
                rc = RANGE_ERR_NOMEM;
            else
                offsets[++*n] = keys->len;
        } else {
            at_end = false; /* the next scan's */
        }
    }
    if (rc == RANGE_OK && !at_end && have && base_buf_append(from, cur.data, cur.len) != 0)
        rc = RANGE_ERR_NOMEM;
    base_buf_free(&cur);
    return rc;
}

/* VERSION GC of sr (led in `term`): up to SERVER_MVCC_GC_ENTRIES_MAX entries
** at one threshold, each waited for. Returns how many applied. */
static size_t gc_versions_range(range_server *s, server_range *sr, uint64_t term)
{
    range_descriptor d;
    base_buf from = {0}, keys = {0}; /* owner: this function */
    size_t *offsets = NULL;          /* owner: this function */
    size_t applied = 0;
    hlc_timestamp t = gc_versions_threshold(s, sr, term);
    if (hlc_is_zero(t) || range_replica_descriptor(sr->replica, &d) != RANGE_OK)
        return 0;
    offsets = base_calloc(REPLICA_MVCC_GC_KEYS_MAX + 1, sizeof(*offsets));
    int rc = offsets != NULL ? RANGE_OK : RANGE_ERR_NOMEM;
    /* from where the last scan stopped, when that is still in the span */
    if (rc == RANGE_OK && sr->mvcc_gc_from.len > 0 &&
        range__key_cmp(sr->mvcc_gc_from.data, sr->mvcc_gc_from.len, d.start_key, d.start_len) >
            0 &&
        (d.end_len == 0 ||
         range__key_cmp(sr->mvcc_gc_from.data, sr->mvcc_gc_from.len, d.end_key, d.end_len) < 0))
        rc = base_buf_append(&from, sr->mvcc_gc_from.data, sr->mvcc_gc_from.len) == 0
                 ? RANGE_OK : RANGE_ERR_NOMEM;
    else if (rc == RANGE_OK && d.start_len > 0)
        rc = base_buf_append(&from, d.start_key, d.start_len) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
    for (int i = 0; rc == RANGE_OK && i < SERVER_MVCC_GC_ENTRIES_MAX; i++) {
        size_t n = 0;
        base_buf_reset(&keys);
        rc = gc_versions_collect(replica__engine(sr->replica), &from, d.end_key, d.end_len, t,
                                 &keys, offsets, &n);
        if (rc != RANGE_OK || n == 0)
            break; /* no garbage (to the end, or to the scan bound: the next round) */
        /* the threshold rises only with versions dropped: an idle range costs
        ** no entry, and reads below nothing dropped are still served */
        server_pending *p = NULL;
        uint64_t hint = 0;
        if (marker_register(s, sr, REPLICA_MVCC_GC_TXN_ID, (uint64_t)t.wall_ns, &p) != RANGE_OK)
            break;
        if (replica__propose_mvcc_gc(sr->replica, t, keys.data, offsets, n, term,
                                     server_propose_cb, p, &hint) != RANGE_OK) {
            marker_unregister(s, sr, p);
            break;
        }
        if (pending_wait(s, p) != RANGE_OK)
            break; /* leadership moved, frozen, shutdown: the next round */
        applied++;
        if (from.len == 0)
            break; /* the span's end */
    }
    /* the next round goes on from here (from the start once the end was reached) */
    base_buf_reset(&sr->mvcc_gc_from);
    if (rc == RANGE_OK && from.len > 0 &&
        base_buf_append(&sr->mvcc_gc_from, from.data, from.len) != 0)
        base_buf_reset(&sr->mvcc_gc_from);
    if (applied > 0)
        BASE_DEBUG("range", "r%llu: %zu version GC entries at threshold %lld",
                   (unsigned long long)sr->range_id, applied, (long long)t.wall_ns);
    range_descriptor_free(&d);
    base_free(offsets);
    base_buf_free(&from);
    base_buf_free(&keys);
    return applied;
}

void range__server_gc_round(range_server *s, size_t *proposed, size_t *swept)
{
    uint64_t *ids = NULL; /* owner: this function */
    size_t n_proposed = 0, n_swept = 0;
    ids = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof(*ids));
    size_t n_ids = ids != NULL ? range_node_replica_ids(s->config.node, ids,
                                                        RANGE_NODE_REPLICAS_MAX)
                               : 0;
    for (size_t i = 0; i < n_ids && i < RANGE_NODE_REPLICAS_MAX; i++) {
        range_replica *r = range_node_replica(s->config.node, ids[i]); /* node mutex */
        range_replica_status st;
        server_range *sr = NULL;
        uint64_t term = 0, hint = 0;
        if (r == NULL || replica_is_frozen(r, NULL))
            continue; /* a frozen range refuses GC entries (MERGES) */
        range_replica_get_status(r, &st);
        if (!st.leader || !st.lease_valid || server_range_get(s, ids[i], &sr) != RANGE_OK ||
            server_barrier_wait(s, sr, &term, &hint) != RANGE_OK)
            continue;
        if (gc_idempotence_range(s, sr, term))
            n_proposed++;
        n_swept += gc_sweep_range(s, sr);
        (void)gc_versions_range(s, sr, term);
    }
    base_free(ids);
    if (proposed != NULL)
        *proposed = n_proposed;
    if (swept != NULL)
        *swept = n_swept;
}

/* The GC thread: a GC round every RANGE_IDEMPOTENCE_GC_PERIOD_MS (the first
** a period after the start) until stopping. Its own thread: a round waits
** for barriers and proposals, which must not hold back closed timestamps. */
static void *server_gc_main(void *arg)
{
    range_server *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec deadline = deadline_after_ms(RANGE_IDEMPOTENCE_GC_PERIOD_MS);
        while (!s->stopping &&
               pthread_cond_timedwait(&s->closer_wake, &s->mu, &deadline) != ETIMEDOUT) {
        }
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        range__server_gc_round(s, NULL, NULL);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The closer thread: a round every closed_period_ms until stopping. */
static void *server_closer_main(void *arg)
{
    range_server *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        pthread_mutex_unlock(&s->mu);
        (void)server_close_round(s);
        pthread_mutex_lock(&s->mu);
        struct timespec deadline = deadline_after_ms(s->config.closed_period_ms);
        while (!s->stopping &&
               pthread_cond_timedwait(&s->closer_wake, &s->mu, &deadline) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* A RANGE_RPC_METHOD_CLOSED message (a transport thread: no node call). */
static void closed_receive(range_server *s, const rpc_message *msg)
{
    range_closed_entry *entries = NULL; /* owner: this function */
    size_t n = 0;
    int rc = range_closed_decode(msg->payload, msg->payload_len, &entries, &n);
    pthread_mutex_lock(&s->mu);
    if (rc == RANGE_OK) {
        for (size_t i = 0; i < n; i++)
            closed_note_locked(s, &entries[i]);
        s->stats.closed_received++;
    } else {
        s->stats.closed_dropped++;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc == RANGE_ERR_CORRUPT)
        BASE_WARN("range", "malformed closed timestamps from n%llu dropped (%zu bytes)",
                  (unsigned long long)msg->from, msg->payload_len);
    base_free(entries);
}

void range_server_get_stats(range_server *s, range_server_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

size_t range__server_close_now(range_server *s)
{
    return server_close_round(s);
}

bool range__server_closed(range_server *s, uint64_t range_id, range_closed_entry *out)
{
    pthread_mutex_lock(&s->mu);
    const range_closed_entry *e = closed_find_locked(s, range_id);
    if (e != NULL)
        *out = *e;
    pthread_mutex_unlock(&s->mu);
    return e != NULL;
}

/* ---- load (docs/range.md, "Load") ---------------------------------------------- */

/* Record a GET or SCAN page (a read) or a COMMIT or PREPARE (a write) that
** was evaluated here, over the span it touched: a GET's key, a scan's
** bounds, a commit's first written key to just past its last (a single
** write: that point) or, with delete spans, their hull too. */
static void load_note(range_server *s, server_range *sr, const range_kv_request *req)
{
    uint8_t past[RANGE_LOADSPLIT_KEY_BYTES_MAX + 1];
    range_span sp = {NULL, 0, NULL, 0, false};
    bool write = false;
    switch (req->op) {
    case RANGE_KV_GET:
        sp = (range_span){req->key, req->key_len, NULL, 0, true};
        break;
    case RANGE_KV_SCAN:
        sp = (range_span){req->start, req->start_len, req->end, req->end_len, false};
        break;
    case RANGE_KV_COMMIT:
    case RANGE_KV_PREPARE: {
        write = true;
        if (req->write_count == 0 && req->delete_span_count == 0)
            return;
        const range_write *last = req->write_count ? &req->writes[req->write_count - 1] : NULL;
        if (last != NULL && req->write_count == 1 && req->delete_span_count == 0) {
            sp = (range_span){last->key, last->key_len, NULL, 0, true};
            break;
        }
        if (req->write_count > 0) {
            sp.start = req->writes[0].key;
            sp.start_len = req->writes[0].key_len;
            if (last->key_len < sizeof(past)) { /* last key + 0x00: the last write inside */
                memcpy(past, last->key, last->key_len);
                past[last->key_len] = 0;
                sp.end = past;
                sp.end_len = last->key_len + 1;
            } else {
                sp.end = last->key;
                sp.end_len = last->key_len;
            }
        }
        bool open_end = false;
        for (size_t i = 0; i < req->delete_span_count; i++) {
            const range_span *d = &req->delete_spans[i];
            if (sp.start == NULL || range__key_cmp(d->start, d->start_len, sp.start,
                                                   sp.start_len) < 0) {
                sp.start = d->start;
                sp.start_len = d->start_len;
            }
            if (d->point)
                continue; /* inside [first, end) or its own start */
            if (d->end_len == 0)
                open_end = true;
            else if (sp.end == NULL ||
                     range__key_cmp(d->end, d->end_len, sp.end, sp.end_len) > 0) {
                sp.end = d->end;
                sp.end_len = d->end_len;
            }
        }
        if (open_end) {
            sp.end = NULL;
            sp.end_len = 0;
        }
        break;
    }
    default:
        return;
    }
    int64_t now_ns = hlc_physical_now_ns(s->config.clock);
    pthread_mutex_lock(&sr->load_mu);
    range__load_record(&sr->load, write, &sp, now_ns, &sr->load_rng);
    pthread_mutex_unlock(&sr->load_mu);
}

/* DESCRIBE: the range's load as range_server_get_load has it. */
static void load_describe(range_server *s, server_range *sr, server_eval *e)
{
    int64_t now_ns = hlc_physical_now_ns(s->config.clock);
    pthread_mutex_lock(&sr->load_mu);
    range__load_rates(&sr->load, now_ns, &e->resp.reads_per_second, &e->resp.writes_per_second);
    int krc = range__load_split_key(&sr->load, now_ns, &e->load_key);
    pthread_mutex_unlock(&sr->load_mu);
    e->resp.has_load = true;
    if (e->resp.reads_per_second > RANGE_KV_RATE_MAX)
        e->resp.reads_per_second = RANGE_KV_RATE_MAX;
    if (e->resp.writes_per_second > RANGE_KV_RATE_MAX)
        e->resp.writes_per_second = RANGE_KV_RATE_MAX;
    if (krc == RANGE_OK && e->load_key.len > 0 && e->load_key.len <= STORAGE_KEY_SIZE_MAX) {
        e->resp.load_split_key = e->load_key.data;
        e->resp.load_split_key_len = e->load_key.len;
    }
}

/* A split changed the range: its load starts over (the right side's is
** new), so a rate or a key never outlives the shape it was measured on. */
static void load_restart(range_server *s, server_range *sr)
{
    int64_t now_ns = hlc_physical_now_ns(s->config.clock);
    pthread_mutex_lock(&sr->load_mu);
    range__load_reset(&sr->load, now_ns);
    pthread_mutex_unlock(&sr->load_mu);
}

int range_server_get_load(range_server *s, uint64_t range_id, double *reads_per_second,
                          double *writes_per_second, base_buf *split_key)
{
    server_range *sr = NULL;
    *reads_per_second = *writes_per_second = 0.0;
    if (split_key != NULL)
        base_buf_reset(split_key);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_ranges && sr == NULL; i++)
        if (s->ranges[i]->range_id == range_id)
            sr = s->ranges[i]; /* freed only by range_server_free */
    pthread_mutex_unlock(&s->mu);
    if (sr == NULL)
        return RANGE_NOT_FOUND;
    int64_t now_ns = hlc_physical_now_ns(s->config.clock);
    int rc = RANGE_OK;
    pthread_mutex_lock(&sr->load_mu);
    range__load_rates(&sr->load, now_ns, reads_per_second, writes_per_second);
    if (split_key != NULL) {
        rc = range__load_split_key(&sr->load, now_ns, split_key);
        if (rc == RANGE_NOT_FOUND)
            rc = RANGE_OK; /* no suggestion: an empty key */
    }
    pthread_mutex_unlock(&sr->load_mu);
    return rc;
}

/* ---- dispatch --------------------------------------------------------------- */

static void eval_free(server_eval *e)
{
    range_kv_request_free(&e->req);
    if (e->have_desc)
        range_descriptor_free(&e->desc);
    if (e->have_other)
        range_descriptor_free(&e->other);
    base_buf_free(&e->value);
    base_buf_free(&e->row_bytes);
    base_buf_free(&e->load_key);
    base_free(e->rows);
    range_conflict_free(&e->conflict);
    range__intent_hit_free(&e->hit);
}

/* A key the request addresses (NULL: none): where a node without the
** range looks for the one holding it now. */
static const uint8_t *request_key(const range_kv_request *q, size_t *len)
{
    const uint8_t *k = NULL;
    *len = 0;
    if (q->op == RANGE_KV_END_TXN && q->anchor_len > 0) {
        /* its record's range, not its participant spans' (it carries both) */
        k = q->anchor;
        *len = q->anchor_len;
    } else if (q->key_len > 0) {
        k = q->key;
        *len = q->key_len;
    } else if (q->op == RANGE_KV_SCAN && q->start != NULL) {
        k = q->start;
        *len = q->start_len;
    } else if (q->write_count > 0) {
        k = q->writes[0].key;
        *len = q->writes[0].key_len;
    } else if (q->delete_span_count > 0) {
        k = q->delete_spans[0].start;
        *len = q->delete_spans[0].start_len;
    } else if (q->read_span_count > 0) {
        k = q->read_spans[0].start;
        *len = q->read_spans[0].start_len;
    } else if (q->span_count > 0) {
        k = q->spans[0].start;
        *len = q->spans[0].start_len;
    } else if (q->lock_key_count > 0) {
        k = q->lock_keys[0].key;
        *len = q->lock_keys[0].key_len;
    } else if (q->anchor_len > 0) {
        k = q->anchor;
        *len = q->anchor_len;
    }
    return k;
}

/* Decode, evaluate and encode (into *out after a reset). Returns the status. */
static int32_t server_evaluate(range_server *s, const uint8_t *data, size_t len, base_buf *out)
{
    server_eval e;
    server_range *sr = NULL;
    int rc;
    memset(&e, 0, sizeof(e));
    base_buf_reset(out);
    rc = range_kv_request_decode(data, len, &e.req);
    if (rc != RANGE_OK) {
        rc = rc == RANGE_ERR_NOMEM ? RANGE_ERR_NOMEM : RANGE_ERR_CORRUPT;
        goto answer;
    }
    pthread_mutex_lock(&s->mu);
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (stopping) {
        rc = RANGE_ERR_UNAVAILABLE;
        goto answer;
    }
    if (e.req.op != RANGE_KV_DESCRIBE &&
        (!ts_valid(e.req.read_ts) || !ts_valid(e.req.commit_ts) ||
         !ts_valid(e.req.intent_ts))) {
        rc = RANGE_ERR_INVALID;
        goto answer;
    }
    rc = server_range_get(s, e.req.range_id, &sr);
    uint64_t frozen_by = 0;
    if (rc == RANGE_OK) {
        uint64_t left = 0, index = 0, lineage = 0;
        if (replica__frozen(sr->replica, &frozen_by, &left, &index, &lineage) != RANGE_OK)
            rc = RANGE_ERR_NOT_LEADER; /* removed or merged away since */
    }
    if (rc == RANGE_ERR_NOT_LEADER) {
        /* no replica of it here (NOT_LEADER, hint 0); a range merged away
        ** is gone everywhere, so name the local range holding the key, if
        ** any: the router installs it and routes there. A fence or a merge
        ** goes to the range below R's start (THE MERGE GATE). */
        const uint8_t *bound = NULL;
        size_t blen = 0;
        if (e.req.op == RANGE_KV_MERGE_FENCE ||
            (e.req.op == RANGE_KV_DESCRIBE && e.req.key_below)) {
            bound = e.req.key;
            blen = e.req.key_len;
        } else if (e.req.op == RANGE_KV_ADMIN_MERGE && e.req.has_right) {
            bound = e.req.right.start_key;
            blen = e.req.right.start_len;
        }
        size_t klen = 0;
        const uint8_t *k = bound == NULL ? request_key(&e.req, &klen) : NULL;
        range_replica *holder =
            k != NULL ? replica__node_find(s->config.node, k, klen, false) : NULL;
        if (blen > 0 && below_desc(s, bound, blen, &e.desc) == RANGE_OK) {
            e.have_desc = true;
            rc = RANGE_ERR_KEY_MISMATCH;
        } else if (holder != NULL && range_replica_descriptor(holder, &e.desc) == RANGE_OK) {
            e.have_desc = true;
            rc = RANGE_ERR_KEY_MISMATCH;
        }
    }
    if (rc != RANGE_OK)
        goto answer; /* NOT_LEADER with hint 0: no replica of it here */
    if (e.req.op != RANGE_KV_DESCRIBE && e.req.op != RANGE_KV_SUBSUME &&
        e.req.op != RANGE_KV_WAIT_APPLIED && e.req.op != RANGE_KV_UNFREEZE &&
        e.req.op != RANGE_KV_MERGE_FENCE && frozen_by != 0) {
        rc = RANGE_ERR_MERGING; /* THE MERGE GATE: the router asks again later */
        goto answer;
    }
    if (s->config.may_serve != NULL && e.req.op != RANGE_KV_DESCRIBE &&
        e.req.op != RANGE_KV_TRANSFER_LEASE && !s->config.may_serve(s->config.may_serve_ctx)) {
        /* the owner (server/) logs why; a follower still says NOT_LEADER */
        range_replica_status st;
        range_replica_get_status(sr->replica, &st);
        if (st.leader) {
            rc = RANGE_ERR_UNAVAILABLE;
            goto answer;
        }
    }
    switch (e.req.op) {
    case RANGE_KV_GET:
    case RANGE_KV_SCAN:
        rc = e.req.op == RANGE_KV_GET ? eval_get(s, sr, &e) : eval_scan(s, sr, &e);
        if ((rc == RANGE_OK || rc == RANGE_NOT_FOUND) &&
            gc_threshold_check(sr, e.req.read_ts) != RANGE_OK) {
            rc = RANGE_ERR_GC_THRESHOLD; /* VERSION GC: nothing read is answered */
            e.resp.value = NULL;
            e.resp.value_len = 0;
            e.resp.rows = NULL;
            e.resp.n_rows = 0;
            e.resp.more = false;
        }
        break;
    case RANGE_KV_COMMIT:
    case RANGE_KV_PREPARE:
        rc = eval_commit(s, sr, &e);
        break;
    case RANGE_KV_END_TXN:
    case RANGE_KV_HEARTBEAT:
        rc = eval_record(s, sr, &e);
        break;
    case RANGE_KV_PUSH:
        rc = eval_push(s, sr, &e);
        break;
    case RANGE_KV_RESOLVE:
        rc = eval_resolve(s, sr, &e);
        break;
    case RANGE_KV_LOCK:
        rc = eval_lock(s, sr, &e);
        break;
    case RANGE_KV_QUERY_TXN:
        rc = eval_query_txn(s, sr, &e);
        break;
    case RANGE_KV_GC_TXN:
        rc = eval_gc_txn(s, sr, &e);
        break;
    case RANGE_KV_VALIDATE:
        rc = eval_validate(s, sr, &e);
        break;
    case RANGE_KV_ADMIN_SPLIT:
        rc = eval_split(s, sr, &e);
        break;
    case RANGE_KV_TRANSFER_LEASE:
        rc = eval_transfer_lease(s, sr, &e);
        break;
    case RANGE_KV_CHANGE_REPLICAS:
        rc = eval_change_replicas(s, sr, &e);
        break;
    case RANGE_KV_SUBSUME:
        rc = eval_subsume(s, sr, &e);
        break;
    case RANGE_KV_WAIT_APPLIED:
        rc = eval_wait_applied(s, sr, &e);
        break;
    case RANGE_KV_ADMIN_MERGE:
        rc = eval_admin_merge(s, sr, &e);
        break;
    case RANGE_KV_MERGE_FENCE:
        rc = eval_merge_fence(s, sr, &e);
        break;
    case RANGE_KV_UNFREEZE:
        rc = eval_unfreeze(s, sr, &e);
        break;
    case RANGE_KV_DESCRIBE: {
        range_replica_status st;
        range_replica_get_status(sr->replica, &st);
        rc = range_replica_descriptor(sr->replica, &e.desc);
        if (rc == RANGE_OK) {
            e.have_desc = true;
            e.resp.has_descriptor = true;
            e.resp.lease_valid = st.lease_valid;
            e.resp.leader_id = st.leader_id;
            load_describe(s, sr, &e);
        }
        break;
    }
    default:
        rc = RANGE_ERR_CORRUPT; /* the decoder refuses unknown ops */
        break;
    }
    if (rc == RANGE_OK || rc == RANGE_ERR_CONFLICT || rc == RANGE_ERR_PUSHED ||
        rc == RANGE_ERR_INTENT || rc == RANGE_ERR_UNCERTAIN) /* evaluated here: load */
        load_note(s, sr, &e.req);
answer:
    gate_leave(s, &e);
    if (rc == RANGE_ERR_KEY_MISMATCH) {
        e.resp.has_descriptor = e.have_desc;
        /* the range here that holds the key, if any (a split's right side) */
        range_replica *holder =
            e.bad_key != NULL
                ? replica__node_find(s->config.node, e.bad_key, e.bad_key_len, false)
                : NULL;
        if (holder != NULL && !e.have_other && range_replica_descriptor(holder, &e.other) ==
                                                   RANGE_OK) {
            e.have_other = true;
            e.resp.has_other = e.other.range_id != e.req.range_id;
        }
    }
    if (e.resp.has_descriptor)
        e.resp.descriptor = e.desc;
    if (e.resp.has_other)
        e.resp.other = e.other;
    if (rc == RANGE_ERR_CONFLICT || rc == RANGE_ERR_UNCERTAIN) {
        e.resp.conflict_kind = (uint8_t)e.conflict.kind;
        e.resp.conflict_key = e.conflict.key.data;
        e.resp.conflict_key_len = e.conflict.key.len;
        e.resp.conflict_ts = e.conflict.conflict_ts;
        e.resp.conflict_pending = e.conflict.pending;
    }
    if (rc == RANGE_ERR_INTENT) {
        e.resp.intent_key = e.hit.key.data;
        e.resp.intent_key_len = e.hit.key.len;
        e.resp.intent_txn_id = e.hit.txn_id;
        e.resp.intent_anchor = e.hit.anchor.data;
        e.resp.intent_anchor_len = e.hit.anchor.len;
        e.resp.intent_ts = e.hit.ts;
        e.resp.intent_unreplicated = e.hit.unreplicated;
        e.resp.intent_since_wall_ns = e.hit.since_ns;
    }
    if (rc != RANGE_ERR_ABORTED) {
        e.resp.cycle = NULL; /* only a victim's answer names its cycle */
        e.resp.cycle_len = 0;
    }
    if (rc != RANGE_OK && rc != RANGE_ERR_NOT_LEADER)
        e.resp.leader_hint = 0;
    e.resp.status = rc;
    if (range_kv_response_encode(&e.resp, out) != RANGE_OK) {
        BASE_WARN("range", "cannot encode a KV response (status %d)", rc);
        base_buf_reset(out);
    }
    eval_free(&e);
    return rc;
}

static void respond(rpc_transport *t, rpc_node_id to, uint64_t request_id, int32_t status,
                    const base_buf *payload)
{
    int rc = rpc_respond(t, to, request_id, status, payload->data, payload->len);
    if (rc == RPC_ERR_TOO_LARGE) {
        /* a page over the frame limit (one huge value): say so, small */
        base_buf small = {0}; /* owner: this function */
        range_kv_response r;
        memset(&r, 0, sizeof(r));
        r.status = RANGE_ERR_TOO_LARGE;
        if (range_kv_response_encode(&r, &small) == RANGE_OK)
            rc = rpc_respond(t, to, request_id, RANGE_ERR_TOO_LARGE, small.data, small.len);
        base_buf_free(&small);
    }
    if (rc != RPC_OK)
        BASE_DEBUG("range", "KV answer to n%llu lost: %s", (unsigned long long)to,
                   rpc_strerror(rc));
}

static void respond_status(rpc_transport *t, rpc_node_id to, uint64_t request_id,
                           int32_t status)
{
    base_buf buf = {0}; /* owner: this function */
    range_kv_response r;
    memset(&r, 0, sizeof(r));
    r.status = status;
    if (range_kv_response_encode(&r, &buf) != RANGE_OK)
        base_buf_reset(&buf);
    respond(t, to, request_id, status, &buf);
    base_buf_free(&buf);
}

static void *server_worker(void *arg)
{
    range_server *s = arg;
    base_buf out = {0}; /* owner: this thread */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && s->queue_len == 0)
            pthread_cond_wait(&s->work, &s->mu);
        if (s->stopping)
            break;
        server_job *job = s->queue[s->queue_head];
        s->queue_head = (s->queue_head + 1) % SERVER_QUEUE_MAX;
        s->queue_len--;
        pthread_mutex_unlock(&s->mu);
        int32_t status = server_evaluate(s, job->payload, job->len, &out);
        respond(job->t, job->from, job->request_id, status, &out);
        base_free(job);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    base_buf_free(&out);
    return NULL;
}

/* ---- the public functions --------------------------------------------------- */

int range_server_new(const range_server_config *config, range_server **out)
{
    range_server *s = NULL;
    pthread_condattr_t attr;
    int rc = RANGE_ERR_INVALID;
    if (config == NULL || out == NULL || config->node == NULL || config->clock == NULL ||
        config->workers < 0 || config->workers > SERVER_WORKERS_MAX ||
        config->wait_timeout_ms < 0)
        return RANGE_ERR_INVALID;
    *out = NULL;
    s = base_calloc(1, sizeof(*s));
    if (s == NULL)
        return RANGE_ERR_NOMEM;
    s->config = *config;
    /* record and resolve commands: random base (see next_cmd_seq) */
    if (getrandom(&s->cmd_seq, sizeof(s->cmd_seq), 0) != (ssize_t)sizeof(s->cmd_seq))
        s->cmd_seq = (uint64_t)base_realtime_ns() * 0x9e3779b97f4a7c15ULL;
    s->load_seed = s->cmd_seq ^ 0x5851f42d4c957f2dULL;
    if (s->config.workers == 0)
        s->config.workers = SERVER_DEFAULT_WORKERS;
    if (s->config.wait_timeout_ms == 0)
        s->config.wait_timeout_ms = SERVER_DEFAULT_WAIT_MS;
    if (s->config.closed_lag_ms == 0)
        s->config.closed_lag_ms = RANGE_CLOSED_LAG_MS_DEFAULT;
    if (s->config.closed_period_ms <= 0)
        s->config.closed_period_ms = RANGE_CLOSED_PERIOD_MS_DEFAULT;
    rc = RANGE_ERR_NOMEM;
    if (pthread_condattr_init(&attr) != 0)
        goto err_free;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&s->changed, &attr) != 0)
        goto err_attr;
    if (pthread_cond_init(&s->closer_wake, &attr) != 0) {
        pthread_cond_destroy(&s->changed);
        goto err_attr;
    }
    if (pthread_cond_init(&s->work, NULL) != 0)
        goto err_changed;
    if (pthread_mutex_init(&s->mu, NULL) != 0)
        goto err_work;
    s->queue = base_calloc(SERVER_QUEUE_MAX, sizeof(*s->queue));
    s->threads = base_calloc((size_t)s->config.workers, sizeof(*s->threads));
    s->finished = base_calloc(SERVER_FINISHED_MAX, sizeof(*s->finished));
    s->closed = base_calloc(SERVER_CLOSED_MAX, sizeof(*s->closed));
    if (s->queue == NULL || s->threads == NULL || s->finished == NULL || s->closed == NULL)
        goto err_mu;
    for (int i = 0; i < s->config.workers; i++) {
        if (pthread_create(&s->threads[i], NULL, server_worker, s) != 0)
            goto err_threads;
        s->n_threads++;
    }
    /* the closer only publishes: without a transport nobody listens; the
    ** GC thread runs along with it (as the GC rounds ran on the closer) */
    if (s->config.transport != NULL && s->config.closed_lag_ms >= 0) {
        if (pthread_create(&s->closer, NULL, server_closer_main, s) != 0)
            goto err_threads;
        s->closer_started = true;
        if (pthread_create(&s->gc_thread, NULL, server_gc_main, s) != 0)
            goto err_threads;
        s->gc_started = true;
    }
    pthread_condattr_destroy(&attr);
    *out = s;
    return RANGE_OK;
err_threads:
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    pthread_cond_broadcast(&s->closer_wake);
    if (s->closer_started)
        pthread_join(s->closer, NULL);
err_mu:
    base_free(s->queue);
    base_free(s->threads);
    base_free(s->finished);
    base_free(s->closed);
    pthread_mutex_destroy(&s->mu);
err_work:
    pthread_cond_destroy(&s->work);
err_changed:
    pthread_cond_destroy(&s->changed);
    pthread_cond_destroy(&s->closer_wake);
err_attr:
    pthread_condattr_destroy(&attr);
err_free:
    base_free(s);
    return rc;
}

void range_server_shutdown(range_server *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->work);
    pthread_cond_broadcast(&s->changed);
    pthread_cond_broadcast(&s->closer_wake);
    pthread_mutex_unlock(&s->mu);
}

void range_server_free(range_server *s)
{
    if (s == NULL)
        return;
    range_server_shutdown(s);
    for (int i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    if (s->closer_started)
        pthread_join(s->closer, NULL); /* a round ends within its node calls */
    if (s->gc_started)
        pthread_join(s->gc_thread, NULL); /* its waits end at stopping */
    /* No worker left: answer what is still queued. */
    while (s->queue_len > 0) {
        server_job *job = s->queue[s->queue_head];
        s->queue_head = (s->queue_head + 1) % SERVER_QUEUE_MAX;
        s->queue_len--;
        respond_status(job->t, job->from, job->request_id, RANGE_ERR_UNAVAILABLE);
        base_free(job);
    }
    /* No proposal callback may run on freed records from here on. */
    replica__cancel_proposals(s->config.node, server_propose_cb);
    for (size_t i = 0; i < s->n_ranges; i++) {
        server_range *sr = s->ranges[i];
        while (sr->pending != NULL) {
            server_pending *p = sr->pending;
            pending_unlink(sr, p);
            pending_free(p);
        }
        server_range_free(sr);
    }
    base_free(s->ranges);
    base_free(s->queue);
    base_free(s->threads);
    base_free(s->finished);
    base_free(s->closed);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->changed);
    pthread_cond_destroy(&s->closer_wake);
    base_free(s);
}

void range_server_handle_rpc(range_server *s, rpc_transport *t, const rpc_message *msg)
{
    if (msg->method == RANGE_RPC_METHOD_CLOSED) {
        if (msg->request_id == 0)
            closed_receive(s, msg);
        else
            respond_status(t, msg->from, msg->request_id, RANGE_ERR_INVALID);
        return;
    }
    if (msg->request_id == 0) {
        BASE_DEBUG("range", "one-way KV message from n%llu dropped",
                   (unsigned long long)msg->from);
        return;
    }
    server_job *job = base_malloc(sizeof(*job) + msg->payload_len); /* owner: the queue */
    if (job == NULL) {
        respond_status(t, msg->from, msg->request_id, RANGE_ERR_NOMEM);
        return;
    }
    job->t = t;
    job->from = msg->from;
    job->request_id = msg->request_id;
    job->len = msg->payload_len;
    if (msg->payload_len > 0)
        memcpy(job->payload, msg->payload, msg->payload_len);
    int32_t refuse = RANGE_OK;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        refuse = RANGE_ERR_UNAVAILABLE;
    } else if (s->queue_len >= SERVER_QUEUE_MAX) {
        refuse = RANGE_ERR_BUSY;
    } else {
        s->queue[(s->queue_head + s->queue_len) % SERVER_QUEUE_MAX] = job;
        s->queue_len++;
        pthread_cond_signal(&s->work);
    }
    pthread_mutex_unlock(&s->mu);
    if (refuse != RANGE_OK) {
        base_free(job);
        respond_status(t, msg->from, msg->request_id, refuse);
    }
}

int32_t range_server_call(range_server *s, const uint8_t *req, size_t req_len, base_buf *resp)
{
    return server_evaluate(s, req, req_len, resp);
}

uint64_t range__server_counter_get(range_server *s, range__server_counter which)
{
    assert((int)which >= 0 && which < SERVER_COUNTERS);
    pthread_mutex_lock(&s->mu);
    uint64_t v = s->counters[which];
    pthread_mutex_unlock(&s->mu);
    return v;
}

bool range__server_wait_counter(range_server *s, range__server_counter which, uint64_t value,
                                bool at_most, int64_t timeout_ms)
{
    assert((int)which >= 0 && which < SERVER_COUNTERS);
    struct timespec deadline = deadline_after_ms(timeout_ms);
    bool ok;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        uint64_t v = s->counters[which];
        ok = at_most ? v <= value : v >= value;
        if (ok || pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT)
            break;
    }
    ok = at_most ? s->counters[which] <= value : s->counters[which] >= value;
    pthread_mutex_unlock(&s->mu);
    return ok;
}
