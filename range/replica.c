/*
** range/replica.c: a Raft-replicated range replica and the node-level
** driver (range_node) that ticks every replica and routes Raft messages
** over an rpc_transport. Design: docs/range.md.
**
** Critical invariants:
**   - THE UPDATE CONTRACT of raft/raft.h, wired in replica_process: for every
**     update, first the log store writes the hard state and entries (one
**     atomic storage batch, synced when the node is configured with sync);
**     only then are messages and messages_after_persist sent, committed
**     entries applied, and RAFT_EVENT_PERSISTED stepped. A failed log write
**     poisons the replica (it never sends or applies again; RANGE_ERR_IO).
**   - APPLY WITH THE APPLIED INDEX: each committed entry is applied in ONE
**     storage batch holding its MVCC writes, its idempotence record
**     ('c' txn seq -> index) and the new applied index ('a'). So storage
**     always holds exactly the effects of entries [1, applied], and a
**     restart (raft config.applied = stored 'a') replays exactly the rest.
**   - applied only grows, by one per committed entry, in log order.
**   - a command whose (txn_id, seq) already has an idempotence record of an
**     EARLIER index (lineage seq, see MERGES) changes nothing but the
**     applied index: re-proposals
**     apply once. A record at its own index or above is ignored: this range
**     wrote it on another node and a snapshot of another range brought it
**     here (snapshots carry all of the sender's records). So the decision
**     is a function of the range's applied prefix: every replica decides
**     the same.
**   - a proposal waiter resolves exactly once: OK when a command with its
**     key applies, DROPPED when another entry applies at its index or when
**     a read barrier of a later term completes (see below), AMBIGUOUS at
**     its deadline (none for replica__propose without one) or at shutdown;
**     or it is removed without a call by replica__cancel_proposals.
**   - a read barrier completes OK only from a raft read state with status
**     OK (lease or ReadIndex) and only once applied >= its index.
**   - SETTLED BY A LATER TERM: a read state OK of term T is produced only
**     once an entry of term T is committed at or below its index, and it is
**     served only once applied >= that index. An entry of an older term not
**     applied by then can never commit (a committed log has non-decreasing
**     terms), so serving it first resolves every waiter proposed in a term
**     < T as DROPPED. So a leader's barrier makes the idempotence records
**     ('c') definitive for every proposal of an earlier term.
**   - the idempotence record holds the index and the commit timestamp of the
**     command that applied the key first (duplicates leave it unchanged).
**   - the range descriptor ('d') is written when the replica is first
**     created on this store (with the store's hosted-range list), rewritten
**     by a split's apply, by a configuration entry's apply (with the
**     membership 'm', generation + 1, in the batch of its applied index)
**     and by a snapshot's install, and read back at every restart. A
**     configuration entry that is a transaction's commit trigger (docs/
**     decisions/010, item 8; replica_int.h, "replica changes with a
**     transaction") writes that record COMMITTED in the same batch: it is
**     proposed only with every earlier entry applied and the record
**     PENDING, so every replica applying it finds it PENDING (a
**     configuration cannot be refused at apply: the core took it when it
**     was appended).
**   - SNAPSHOTS, ON DEMAND, REMOVAL: see the section of that name below
**     (docs/range.md, "Replica changes and snapshots").
**   - SPLITS (docs/range.md, "Splits and addressing"): a split trigger
**     applies only when the replica's descriptor still has the trigger's
**     generation and holds its key strictly inside; then ONE batch holds
**     the left's new descriptor, the right's descriptor, floor and applied
**     index (the split's index: its log starts there, so a lineage's
**     indexes only grow), the hosted-range list and the applied index, and
**     only after it is written is the right-hand replica opened on this node
**     (node_open_locked: the node mutex is already held by apply; an
**     uninitialized replica of the right made here on demand becomes it).
**     Otherwise the entry changes nothing but the applied index. Both
**     decisions read only the replica's own state: every replica decides
**     alike. A split that is a transaction's commit trigger (docs/decisions/
**     010-atomic-meta.md) also needs that transaction's record, stored in
**     the left, to be PENDING: the split's batch writes it COMMITTED; a
**     refusal writes it ABORTED (from PENDING only), so a split and its
**     meta transaction commit or abort together.
**   - MERGES (docs/range.md, "Merges"; replica_int.h, "merges"): FREEZE,
**     MERGE, FENCE and UNFREEZE apply by the rules there, each in ONE batch
**     with the applied index, deciding from the replica's own applied state
**     (R's for FREEZE/UNFREEZE, L's for MERGE/FENCE). UNFREEZE keeps R's
**     descriptor (meta names it: decision 010 item 10) and fences its merge
**     id in R, so a late FREEZE of that merge is refused, as is a FREEZE
**     of an id in R's merged list (a reused id). A frozen replica
**     refuses every new command at apply (no effect, no record, DROPPED)
**     and every split. A voter of L applies MERGE only next to its local R
**     frozen by that merge with applied >= the freeze index; otherwise it
**     STALLS its apply rather than diverge: nothing is written, the entry
**     and those after it stay in the core's log (handed out once; the core
**     compacts only at this replica's own applies and snapshots) and every
**     tick resumes from raft_node_entry_at(applied + 1) (apply_stalled;
**     a snapshot installed ends it; a leader stalled for good hands its
**     leadership on: STALLED LEADER). MERGE's batch is synced before R's
**     log is dropped (at the reap: R is closed like a removed replica but
**     keeps its span). Idempotence records hold the lineage seq LS = index
**     + 'o' (the lineage offset: inherited by a split's right side, raised
**     by MERGE above R's LS at its freeze), and "already applied?" compares
**     LS. A snapshot carries 'o', the frozen state and the fences, and
**     subsumes older local replicas of ranges whose start key its span
**     holds (merged away). A MERGE that is a transaction's commit trigger
**     (docs/decisions/010) decides, at its final decision only (never at a
**     stall), with that transaction's record in L too, as a split does:
**     applied, its batch writes the record COMMITTED; refused, ABORTED.
**   - A command with a write outside the replica's descriptor (evaluated
**     against the shape before a split, ordered after it) is refused at
**     apply: no writes, no record, its waiter DROPPED. Deterministic too.
**   - IDEMPOTENCE RECORDS ARE KEYED BY (txn_id, seq) ALONE (range id
**     REPLICA_RECORDS_RANGE): a range sees only records written by itself
**     or by its ancestors before the split that created it (applied on
**     every node before the right-hand replica existed there), and a key is
**     only proposed within the lineage of the range holding its writes,
**     whose indexes only grow (a right-hand range's log starts at its
**     split's index, above every record its ancestors wrote before it);
**     records of entries not applied here yet (from snapshots) do not count
**     (above), so "already applied?" is still a function of the range's
**     applied prefix.
**   - IDEMPOTENCE GC (docs/txn.md 6.1; replica_int.h, "idempotence GC"): a
**     GC entry raises the range's threshold 'g' (with the applied index;
**     inherited by a split's right side, max of both at MERGE, carried by
**     snapshots); a command with a nonzero commit timestamp below it and no
**     RESOLVE write is refused at apply before its record is read (no
**     writes, no record, DROPPED), on every replica alike. The same batch
**     deletes the store's 'c' records below min('g' of every range hosted
**     here) - RANGE_IDEMPOTENCE_GC_MARGIN_MS: the only apply effect that
**     differs between nodes, and one no range's decision depends on (a
**     later entry with a deleted record's key is below its range's 'g').
**   - VERSION GC (docs/txn.md 6.1, "Version GC"; replica_int.h, "version
**     GC"): an entry raises the range's MVCC GC threshold 'v' (travels as
**     'g' does) and drops, for each key it lists inside the descriptor with
**     no intent, every version older than the newest at or below it (that
**     one too when a tombstone): decided from the state at its index, the
**     same on every replica. Reads at or below 'v' are refused (server.c).
**   - SHARED LOG WITH SYNC (range_node_config.log, sync): a save only writes
**     to the OS and returns a log seq; the update's messages_after_persist
**     (encoded) and its persist_seq wait in the replica's pending ring,
**     oldest first, until the node's syncer has synced a log seq >= theirs
**     (one raft_log_sync for every replica of the node): only then are they
**     sent and PERSISTED stepped. A record never overtakes an older one: a
**     later update's after-persist messages wait behind every pending write,
**     even when that update wrote nothing. U.messages go at once (the
**     contract allows it). Committed entries come only from the core, which
**     hands out only entries reported durable, so nothing unsynced applies.
**   - LOG TRUNCATION: a leader proposes "truncate to X" with X <= its applied
**     index and X <= the match index of every other member (all of them
**     store [1, X] durably, so none needs a snapshot), or X = its applied
**     index once the log is long (a member that far behind gets a
**     snapshot). A new range's log starts compacted at
**     REPLICA_INITIAL_INDEX. A replica applying
**     it writes that apply batch synced (every earlier apply becomes durable
**     with it: the state machine covers [1, X] on disk) with X in 't', and
**     only then compacts the core and the log store up to X; a restart that
**     finds 't' above the log's compaction point compacts again.
**   - COALESCING (docs/range.md, "Coalesced heartbeats"): during a pass
**     over many replicas under the node mutex (range_node_tick, a received
**     message or batch, a log sync round) every message the pass sends goes
**     into the outbox of its destination node instead, in order; the pass
**     ends (before the mutex is released) by sending each outbox as ONE
**     rpc message (a batch, or the lone message as itself). Only the moment
**     of sending moves, later, within the pass: messages_after_persist
**     still enter an outbox only where they were sent before (durable), and
**     stashed ones only when the syncer releases them. Per destination the
**     order of messages is kept (a message that does not fit flushes the
**     outbox first and then goes out itself). Outside a pass (propose,
**     read, ...) messages go out at once, as before.
**   - APPLY BUDGET (docs/range.md, "Apply under the node mutex"): one hold
**     of the node mutex applies committed entries only while fewer than
**     REPLICA_APPLY_PASS_BYTES_MAX entry bytes were applied in it (per pass,
**     or per event outside a pass); the rest are DEFERRED: they stay in the
**     core's log exactly like a stalled MERGE's (handed out once, compacted
**     only at this replica's applies), and replica_apply_backlog goes on
**     from raft_node_entry_at(applied + 1) at the replica's next pass (a
**     message, a sync round) with budget left, and at every tick at least
**     one entry; never inside a propose or read call. Every entry
**     still applies in one batch with its applied index, in log order, each
**     once: only the moment moves, and between two entries the mutex may be
**     released (what the other ranges wait for).
** Limits: RANGE_PROPOSALS_PENDING_MAX, RANGE_READS_PENDING_MAX per replica,
** RANGE_NODE_REPLICAS_MAX per node, REPLICA_UPDATE_ROUNDS_MAX update rounds
** per event, REPLICA_PERSIST_PENDING_MAX pending saves per replica (then
** merged into the newest one), REPLICA_OUTBOX_PEERS_MAX destinations
** coalesced per pass (more go out one message at a time), RANGE_BATCH_*
** per batch.
*/
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "range/eval_int.h"
#include "range/intent_int.h"
#include "range/replica_int.h"

#define REPLICA_UPDATE_ROUNDS_MAX 8
#define REPLICA_DEFAULT_PROPOSAL_TIMEOUT_TICKS 50
#define REPLICA_PERSIST_PENDING_MAX 8 /* saves awaiting the syncer, per replica (then merged) */
#define REPLICA_PURGE_TICKS 50         /* ticks between shared-log purges */
#define REPLICA_MSG_FRAME 12           /* to u64 | len u32, before each stashed message */
#define REPLICA_OUTBOX_PEERS_MAX 32    /* destinations coalesced in one pass */
#ifndef REPLICA_APPLY_PASS_BYTES_MAX /* tests of the deferral build with a tiny one */
#define REPLICA_APPLY_PASS_BYTES_MAX (512 * 1024) /* APPLY BUDGET, per hold */
#endif

/* COALESCING: the messages of the current pass to one node. */
typedef struct replica_outbox {
    uint64_t to;
    base_buf batch;   /* range_raft_batch_start'ed; owner: the node (memory kept) */
    size_t first_off; /* offset of the first message's bytes (a lone one goes
                         out as itself) */
} replica_outbox;

/* A save waiting for the log syncer. */
typedef struct replica_persist {
    uint64_t core_seq; /* raft persist_seq to step PERSISTED with (0: none) */
    uint64_t log_seq;  /* durable once the log is synced to it */
    base_buf msgs;     /* messages_after_persist: {to u64 | len u32 | payload}* */
} replica_persist;

typedef struct replica_waiter {
    uint64_t txn_id, seq;
    uint64_t index;
    uint64_t term;          /* the term it was proposed in */
    uint64_t deadline_tick; /* UINT64_MAX: none */
    range_propose_fn cb;
    void *ctx;
} replica_waiter;

typedef struct replica_read {
    uint64_t read_id;
    uint64_t index;
    bool ready; /* raft answered OK; serve once applied >= index */
    uint64_t term; /* the leader's term when issued: raft aborts a read when
                      leadership ends, so an OK read was confirmed in it */
    uint64_t deadline_tick;
    range_read_fn cb;
    void *ctx;
} replica_read;

struct range_replica {
    range_node *node;
    range_replica_config config;
    uint64_t id; /* raft id == node id */
    raft_node *raft;
    replica_log *log;
    uint64_t applied;
    uint64_t tick;
    bool failed; /* a log or apply write failed: stopped */
    replica_waiter *waiters;
    size_t n_waiters;
    replica_read *reads;
    size_t n_reads;
    uint64_t next_read_id;
    storage_batch *batch;
    range_descriptor desc; /* owned: the range's descriptor as stored ('d') */
    replica_persist pending[REPLICA_PERSIST_PENDING_MAX]; /* ring, oldest first */
    size_t pending_head, n_pending;
    uint64_t truncate_to;       /* an applied truncation: compact up to it next */
    uint64_t truncate_proposed; /* leader: index of its newest truncation proposal */
    hlc_timestamp split_floor;  /* a range made by a split: its left's floor ('w') */
    bool campaign_next_tick;    /* made by a split on the left's leader: campaign */
    uint64_t leaderless_ticks;  /* ticks since the core last knew a leader (DRAINING) */
    /* Replica changes and snapshots (see REMOVAL, ON DEMAND, SNAPSHOTS). */
    bool initialized;           /* false: made on demand, waits for its snapshot
                                   (no descriptor, no state) */
    bool retired;               /* removed: in node->retired, no core, no log */
    uint64_t remove_generation; /* != 0: removed at that generation; retire at
                                   the next reap (the core is in use until then) */
    raft_membership membership; /* the configuration at the applied index ('m') */
    uint64_t snapshot_retry_tick; /* no new snapshot before this tick (a refusal) */
    uint64_t quiet_ticks;       /* uninitialized: ticks without a message */
    uint64_t removal_check_tick;/* not a member of its own latest configuration:
                                   next tick to ask the others */
    bool snapshot_wanted;       /* the core asked for a snapshot (replica_process) */
    bool discard;               /* uninitialized and quiet: retire at the next reap */
    uint64_t trunc_base;        /* X of the newest truncation entry applied here
                                   (0 after a snapshot: unknown); the leader
                                   measures the log the members keep from it */
    bool hold_sends;            /* reopened over an uninitialized replica with
                                   writes not yet durable: every message waits
                                   behind them (replica_reopen_locked) */
    /* MERGES */
    replica_merge_state merge;  /* 'o', 'y', 'x' at the applied index */
    bool merged;                /* merged into another range (its MERGE applied
                                   here, or a snapshot subsumed it): retire at
                                   the next reap WITHOUT deleting its span */
    bool apply_stalled;         /* a MERGE waits for the local right replica:
                                   the entries after applied wait in the core */
    uint64_t stall_right_id;    /* the right that MERGE waits for */
    uint64_t stall_handoff_tick; /* STALLED LEADER: tick of its last hand-off */
    uint64_t stall_handoffs;    /* STALLED LEADER: hand-offs tried (the target) */
    bool apply_deferred;        /* APPLY BUDGET: the hold's budget ran out, the
                                   entries after applied wait in the core */
    /* VERSION GC: the threshold the server's reads check without node->mu
    ** (replica__mvcc_gc_threshold), a seqlock written only under node->mu
    ** (replica_mvcc_gc_publish): odd seq = a write in progress */
    atomic_uint mvcc_gc_seq;
    _Atomic int64_t mvcc_gc_wall_ns;
    _Atomic int32_t mvcc_gc_logical;
};

struct range_node {
    pthread_mutex_t mu;
    /* A leaf lock (nothing is locked while holding it) over every replica's
    ** split_floor, which a merge raises: read by the server under its own
    ** lock, which the node's callbacks take under mu. */
    pthread_mutex_t floor_mu;
    range_node_config config;
    uint64_t id;
    range_replica **replicas;
    size_t n_replicas;
    base_buf send_buf;
    /* The shared log's syncer (config.log && config.sync), all under mu. */
    pthread_cond_t sync_cv;  /* sync_want moved, or syncer_stop */
    pthread_t syncer;
    bool syncer_started;
    bool syncer_stop;
    uint64_t sync_want;      /* newest log seq a pending save waits for */
    uint64_t sync_done;      /* newest log seq known durable */
    bool log_failed;         /* a sync failed: the log is poisoned */
    bool purge_wanted;       /* a compaction since the last raft_log_purge */
    bool purging;
    uint64_t ticks;
    int64_t last_tick_ns;      /* config.clock() when the last tick began; under mu */
    uint64_t purge_tick;
    /* The store's hosted-range list ("range/hosted"), loaded on first use. */
    uint64_t *hosted; /* owned */
    size_t n_hosted;
    bool hosted_loaded;
    /* Removed replicas (owned): kept until range_node_free because a server
    ** may still hold them; a replica made here again reuses its object. */
    range_replica **retired;
    size_t n_retired;
    /* Tuning for replicas made on demand: the last range_node_add_replica
    ** or range_node_open_stored call's (range_id, peers, descriptor unused). */
    range_replica_config defaults;
    base_buf snap_buf; /* a snapshot being made (node mutex) */
    /* COALESCING (under mu): pass_depth > 0 while a pass runs; outbox[0 ..
    ** n_outbox) belong to this pass, all empty once it ends. */
    unsigned pass_depth;
    size_t pass_apply_bytes; /* APPLY BUDGET: entry bytes applied in this pass */
    replica_outbox outbox[REPLICA_OUTBOX_PEERS_MAX];
    size_t n_outbox;
    bool draining; /* DRAINING: range_node_set_draining (under mu) */
    /* IDEMPOTENCE GC (under mu; in memory: a restart sweeps once more).
    ** Every 'c' record below idem_gc_swept was deleted here. A pass over the
    ** records spans GC entries (REPLICA_IDEM_GC_SCAN_MAX keys each): it goes
    ** on from the cursor (len 0: no pass), with the lowest cutoff it used. */
    hlc_timestamp idem_gc_swept;
    uint8_t idem_gc_cursor[REPLICA_KEY_SIZE_MAX + 1];
    size_t idem_gc_cursor_len;
    hlc_timestamp idem_gc_pass_cutoff;
};

/* VERSION GC: publish t as the threshold reads check (the seqlock of struct
** range_replica). Under node->mu, the only writer. */
static void replica_mvcc_gc_publish(range_replica *r, hlc_timestamp t)
{
    unsigned seq = atomic_load_explicit(&r->mvcc_gc_seq, memory_order_relaxed);
    atomic_store_explicit(&r->mvcc_gc_seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* odd before the fields */
    atomic_store_explicit(&r->mvcc_gc_wall_ns, t.wall_ns, memory_order_relaxed);
    atomic_store_explicit(&r->mvcc_gc_logical, t.logical, memory_order_relaxed);
    atomic_store_explicit(&r->mvcc_gc_seq, seq + 2, memory_order_release);
}

/* What r's reads check now: its threshold, HLC_ZERO when it holds no state.
** Under node->mu, after each change of merge, initialized or retired. */
static void replica_mvcc_gc_sync(range_replica *r)
{
    replica_mvcc_gc_publish(r, r->initialized && !r->retired ? r->merge.mvcc_gc : HLC_ZERO);
}

/* Raise what reads check to t BEFORE a batch that may drop versions below it
** is written (see replica__mvcc_gc_threshold); never lowers it. */
static void replica_mvcc_gc_raise(range_replica *r, hlc_timestamp t)
{
    hlc_timestamp cur = {
        atomic_load_explicit(&r->mvcc_gc_wall_ns, memory_order_relaxed),
        atomic_load_explicit(&r->mvcc_gc_logical, memory_order_relaxed)}; /* sole writer */
    if (hlc_compare(t, cur) > 0)
        replica_mvcc_gc_publish(r, t);
}

static int node_open_locked(range_node *n, const range_replica_config *config,
                            range_replica **out);

static int map_storage(int rc)
{
    if (rc == STORAGE_ERR_NOMEM)
        return RANGE_ERR_NOMEM;
    if (rc == STORAGE_ERR_CORRUPT)
        return RANGE_ERR_CORRUPT;
    return RANGE_ERR_IO;
}

/* ---- sending ---------------------------------------------------------------- */

/* Send what o holds (a lone message as itself) and empty it. */
static void outbox_flush(range_node *n, replica_outbox *o)
{
    size_t count = range_raft_batch_count(&o->batch);
    if (count == 0)
        return;
    if (n->config.transport != NULL) {
        size_t off = count == 1 ? o->first_off : 0;
        int rc = rpc_send(n->config.transport, o->to, RANGE_RPC_METHOD_RAFT,
                          o->batch.data + off, o->batch.len - off);
        if (rc != RPC_OK)
            BASE_DEBUG("range", "n%llu: send of %zu message(s) to n%llu: %s",
                       (unsigned long long)n->id, count, (unsigned long long)o->to,
                       rpc_strerror(rc));
    }
    /* the memory is kept, so this cannot fail; if it did, the outbox would
    ** refuse messages and they would go out one by one */
    (void)range_raft_batch_start(&o->batch);
}

/* The outbox of `to` in this pass, or NULL (every slot taken, or memory). */
static replica_outbox *outbox_for(range_node *n, uint64_t to)
{
    for (size_t i = 0; i < n->n_outbox; i++)
        if (n->outbox[i].to == to)
            return &n->outbox[i];
    if (n->n_outbox == REPLICA_OUTBOX_PEERS_MAX)
        return NULL;
    replica_outbox *o = &n->outbox[n->n_outbox];
    if (range_raft_batch_start(&o->batch) != RANGE_OK)
        return NULL;
    o->to = to;
    o->first_off = 0;
    n->n_outbox++;
    return o;
}

static void node_pass_begin(range_node *n)
{
    if (n->pass_depth++ == 0)
        n->pass_apply_bytes = 0; /* a new hold of the mutex: a new budget */
}

/* End of a pass: every outbox goes out (node mutex still held). */
static void node_pass_end(range_node *n)
{
    assert(n->pass_depth > 0);
    if (--n->pass_depth > 0)
        return;
    for (size_t i = 0; i < n->n_outbox; i++)
        outbox_flush(n, &n->outbox[i]);
    n->n_outbox = 0;
}

/* Send one encoded message (bytes borrowed for the call): into the
** destination's outbox during a pass, else at once. */
static void node_emit(range_node *n, uint64_t to, const uint8_t *p, size_t len)
{
    if (n->config.transport == NULL)
        return; /* range_node_forget_transport */
    replica_outbox *o = n->pass_depth > 0 ? outbox_for(n, to) : NULL;
    if (o != NULL) {
        int rc = range_raft_batch_add(&o->batch, p, len);
        if (rc == RANGE_ERR_TOO_LARGE) {
            outbox_flush(n, o);
            rc = range_raft_batch_add(&o->batch, p, len);
        }
        if (rc == RANGE_OK) {
            if (range_raft_batch_count(&o->batch) == 1)
                o->first_off = o->batch.len - len;
            return;
        }
        outbox_flush(n, o); /* what waits goes first: the order is kept */
    }
    int rc = rpc_send(n->config.transport, to, RANGE_RPC_METHOD_RAFT, p, len);
    if (rc != RPC_OK)
        BASE_DEBUG("range", "n%llu: send to n%llu: %s", (unsigned long long)n->id,
                   (unsigned long long)to, rpc_strerror(rc));
}

static void node_send(range_node *n, uint64_t range_id, const raft_message *m)
{
    if (n->config.transport == NULL)
        return; /* range_node_forget_transport */
    base_buf_reset(&n->send_buf);
    int rc = range_raft_msg_encode(range_id, m, &n->send_buf);
    if (rc != RANGE_OK) {
        BASE_WARN("range", "r%llu: cannot encode %s to n%llu: %d", (unsigned long long)range_id,
                  raft_message_type_name(m->type), (unsigned long long)m->to, rc);
        return;
    }
    node_emit(n, m->to, n->send_buf.data, n->send_buf.len);
}

/* Send a stashed record's messages (see replica_persist.msgs). */
static void node_send_stashed(range_node *n, const base_buf *msgs)
{
    size_t off = 0;
    while (n->config.transport != NULL && off + REPLICA_MSG_FRAME <= msgs->len) {
        uint64_t to = replica__get_u64(msgs->data + off);
        uint32_t len = (uint32_t)msgs->data[off + 8] << 24 | (uint32_t)msgs->data[off + 9] << 16 |
                       (uint32_t)msgs->data[off + 10] << 8 | msgs->data[off + 11];
        off += REPLICA_MSG_FRAME;
        assert(len <= msgs->len - off); /* written by stash_messages */
        node_emit(n, to, msgs->data + off, len);
        off += len;
    }
}

/* Append the encoded messages to out. A message that cannot be kept is
** dropped with a warning, like a message lost on the network. */
static void stash_messages(range_node *n, uint64_t range_id, const raft_message *ms, size_t count,
                           base_buf *out)
{
    for (size_t i = 0; i < count; i++) {
        uint8_t hdr[REPLICA_MSG_FRAME];
        base_buf_reset(&n->send_buf);
        int rc = range_raft_msg_encode(range_id, &ms[i], &n->send_buf);
        if (rc == RANGE_OK && n->send_buf.len > UINT32_MAX)
            rc = RANGE_ERR_TOO_LARGE;
        if (rc == RANGE_OK) {
            replica__put_u64(hdr, ms[i].to);
            uint32_t len = (uint32_t)n->send_buf.len;
            hdr[8] = (uint8_t)(len >> 24);
            hdr[9] = (uint8_t)(len >> 16);
            hdr[10] = (uint8_t)(len >> 8);
            hdr[11] = (uint8_t)len;
            size_t before = out->len;
            if (base_buf_append(out, hdr, sizeof(hdr)) != 0 ||
                base_buf_append(out, n->send_buf.data, n->send_buf.len) != 0) {
                out->len = before;
                rc = RANGE_ERR_NOMEM;
            }
        }
        if (rc != RANGE_OK)
            BASE_WARN("range", "r%llu: %s to n%llu dropped: %d", (unsigned long long)range_id,
                      raft_message_type_name(ms[i].type), (unsigned long long)ms[i].to, rc);
    }
}

/* ---- apply ------------------------------------------------------------------ */

/* Resolve waiters after the entry at `index` applied; key_ok: it was a
** command with key (txn_id, seq). */
static void resolve_waiters(range_replica *r, uint64_t index, bool key_ok, uint64_t txn_id,
                            uint64_t seq)
{
    size_t i = 0;
    while (i < r->n_waiters) {
        replica_waiter w = r->waiters[i];
        int rc;
        if (key_ok && w.txn_id == txn_id && w.seq == seq)
            rc = RANGE_OK;
        else if (w.index <= index)
            rc = RANGE_ERR_DROPPED; /* its slot holds another entry */
        else {
            i++;
            continue;
        }
        r->waiters[i] = r->waiters[--r->n_waiters];
        w.cb(w.ctx, rc);
    }
}

/* A barrier of term `term` is being served: every waiter of an older term
** that has not resolved yet can never apply (SETTLED BY A LATER TERM). */
static void settle_stale_waiters(range_replica *r, uint64_t term)
{
    size_t i = 0;
    while (i < r->n_waiters) {
        if (r->waiters[i].term >= term) {
            i++;
            continue;
        }
        replica_waiter w = r->waiters[i];
        r->waiters[i] = r->waiters[--r->n_waiters];
        w.cb(w.ctx, RANGE_ERR_DROPPED);
    }
}

static void serve_reads(range_replica *r)
{
    size_t i = 0;
    while (i < r->n_reads) {
        replica_read rd = r->reads[i];
        if (!rd.ready || rd.index > r->applied) {
            i++;
            continue;
        }
        r->reads[i] = r->reads[--r->n_reads];
        settle_stale_waiters(r, rd.term);
        rd.cb(rd.ctx, RANGE_OK);
    }
}

/* ---- splits (replica_int.h, "splits") ------------------------------------------ */

/* A split trigger being applied. */
typedef struct replica_split {
    bool ok;               /* it splits this range (validated, batch filled) */
    bool host_right;       /* this store takes the right-hand replica */
    uint64_t new_range_id;
    hlc_timestamp floor;
    range_descriptor left, right; /* owned */
} replica_split;

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Replace a descriptor key (owned bytes) with a copy of key. */
static int desc_set_key(uint8_t **at, size_t *at_len, const uint8_t *key, size_t key_len)
{
    uint8_t *copy = base_malloc(key_len); /* owner: the descriptor */
    if (copy == NULL)
        return RANGE_ERR_NOMEM;
    memcpy(copy, key, key_len);
    base_free(*at);
    *at = copy;
    *at_len = key_len;
    return RANGE_OK;
}

/* ---- merge state (replica_int.h, "merges"; see MERGES below) ------------------- */

/* Put r's merge state m ('o', 'y', 'x' of range_id; absent when zero) into b. */
static int put_merge_state(storage_batch *b, uint64_t range_id, const replica_merge_state *m)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX], v[2 * (4 + REPLICA_FENCES_MAX * 8)];
    size_t klen = replica__key(key, range_id, 'o', 0, 0, 0);
    int rc;
    replica__put_u64(v, m->lineage_offset);
    rc = m->lineage_offset != 0 ? storage_batch_put_raw(b, key, klen, v, 8)
                                : storage_batch_delete_raw(b, key, klen);
    klen = replica__key(key, range_id, 'y', 0, 0, 0);
    replica__put_u64(v, m->frozen_merge_id);
    replica__put_u64(v + 8, m->frozen_left_id);
    replica__put_u64(v + 16, m->frozen_index);
    if (rc == STORAGE_OK)
        rc = m->frozen_merge_id != 0 ? storage_batch_put_raw(b, key, klen, v, 24)
                                     : storage_batch_delete_raw(b, key, klen);
    klen = replica__key(key, range_id, 'x', 0, 0, 0);
    size_t len = 0;
    for (int list = 0; list < 2; list++) {
        uint32_t count = list == 0 ? m->n_fences : m->n_merged; /* <= REPLICA_FENCES_MAX */
        const uint64_t *ids = list == 0 ? m->fences : m->merged;
        v[len] = 0, v[len + 1] = 0, v[len + 2] = 0, v[len + 3] = (uint8_t)count;
        for (uint32_t i = 0; i < count; i++)
            replica__put_u64(v + len + 4 + (size_t)i * 8, ids[i]);
        len += 4 + (size_t)count * 8;
    }
    if (rc == STORAGE_OK)
        rc = m->n_fences + m->n_merged != 0 ? storage_batch_put_raw(b, key, klen, v, len)
                                            : storage_batch_delete_raw(b, key, klen);
    klen = replica__key(key, range_id, 'g', 0, 0, 0);
    hlc_encode(m->idem_gc, v);
    if (rc == STORAGE_OK)
        rc = !hlc_is_zero(m->idem_gc) ? storage_batch_put_raw(b, key, klen, v, HLC_ENCODED_SIZE)
                                      : storage_batch_delete_raw(b, key, klen);
    klen = replica__key(key, range_id, 'v', 0, 0, 0);
    hlc_encode(m->mvcc_gc, v);
    if (rc == STORAGE_OK)
        rc = !hlc_is_zero(m->mvcc_gc) ? storage_batch_put_raw(b, key, klen, v, HLC_ENCODED_SIZE)
                                      : storage_batch_delete_raw(b, key, klen);
    return rc == STORAGE_OK ? RANGE_OK : RANGE_ERR_NOMEM;
}

/* The merge state of range_id as stored (zero when absent). */
static int load_merge_state(storage_engine *e, uint64_t range_id, replica_merge_state *m)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf buf = {0}; /* owner: this function */
    memset(m, 0, sizeof(*m));
    int rc = storage_get_raw(e, key, replica__key(key, range_id, 'o', 0, 0, 0), &buf);
    if (rc == STORAGE_OK && buf.len == 8)
        m->lineage_offset = replica__get_u64(buf.data);
    else if (rc == STORAGE_OK)
        rc = STORAGE_ERR_CORRUPT;
    if (rc == STORAGE_OK || rc == STORAGE_NOT_FOUND)
        rc = storage_get_raw(e, key, replica__key(key, range_id, 'y', 0, 0, 0), &buf);
    if (rc == STORAGE_OK && buf.len == 24) {
        m->frozen_merge_id = replica__get_u64(buf.data);
        m->frozen_left_id = replica__get_u64(buf.data + 8);
        m->frozen_index = replica__get_u64(buf.data + 16);
    } else if (rc == STORAGE_OK) {
        rc = STORAGE_ERR_CORRUPT;
    }
    if (rc == STORAGE_OK || rc == STORAGE_NOT_FOUND)
        rc = storage_get_raw(e, key, replica__key(key, range_id, 'x', 0, 0, 0), &buf);
    size_t off = 0;
    for (int list = 0; list < 2 && rc == STORAGE_OK; list++) {
        uint32_t count = buf.len - off >= 4 ? get_u32(buf.data + off) : UINT32_MAX;
        if (count > REPLICA_FENCES_MAX || buf.len - off - 4 < (size_t)count * 8) {
            rc = STORAGE_ERR_CORRUPT;
            break;
        }
        uint64_t *ids = list == 0 ? m->fences : m->merged;
        for (uint32_t i = 0; i < count; i++)
            ids[i] = replica__get_u64(buf.data + off + 4 + (size_t)i * 8);
        *(list == 0 ? &m->n_fences : &m->n_merged) = count;
        off += 4 + (size_t)count * 8;
    }
    if (rc == STORAGE_OK && off != buf.len)
        rc = STORAGE_ERR_CORRUPT;
    if (rc == STORAGE_OK || rc == STORAGE_NOT_FOUND)
        rc = storage_get_raw(e, key, replica__key(key, range_id, 'g', 0, 0, 0), &buf);
    if (rc == STORAGE_OK && buf.len == HLC_ENCODED_SIZE)
        m->idem_gc = hlc_decode(buf.data);
    else if (rc == STORAGE_OK)
        rc = STORAGE_ERR_CORRUPT;
    if (rc == STORAGE_OK || rc == STORAGE_NOT_FOUND)
        rc = storage_get_raw(e, key, replica__key(key, range_id, 'v', 0, 0, 0), &buf);
    if (rc == STORAGE_OK && buf.len == HLC_ENCODED_SIZE)
        m->mvcc_gc = hlc_decode(buf.data);
    else if (rc == STORAGE_OK)
        rc = STORAGE_ERR_CORRUPT;
    base_buf_free(&buf);
    if (rc == STORAGE_OK || rc == STORAGE_NOT_FOUND)
        return RANGE_OK;
    return map_storage(rc);
}

/* Load the store's hosted-range list once (node mutex held). A store
** written before the list existed has none: its ranges are opened by the
** owner from its own records (server/'s srv/ranges). */
static int hosted_load_locked(range_node *n)
{
    base_buf buf = {0}; /* owner: this function */
    if (n->hosted_loaded)
        return RANGE_OK;
    int rc = storage_get_raw(n->config.engine, (const uint8_t *)REPLICA_HOSTED_KEY,
                             REPLICA_HOSTED_KEY_LEN, &buf);
    if (rc == STORAGE_NOT_FOUND) {
        rc = RANGE_OK;
    } else if (rc != STORAGE_OK) {
        rc = map_storage(rc);
    } else {
        uint32_t count = buf.len >= 4 ? get_u32(buf.data) : 0;
        if (buf.len < 4 || count > RANGE_NODE_REPLICAS_MAX || buf.len != 4 + (size_t)count * 8) {
            rc = RANGE_ERR_CORRUPT;
        } else {
            n->hosted = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof(*n->hosted));
            rc = n->hosted == NULL ? RANGE_ERR_NOMEM : RANGE_OK;
            for (uint32_t i = 0; rc == RANGE_OK && i < count; i++)
                n->hosted[i] = replica__get_u64(buf.data + 4 + (size_t)i * 8);
            if (rc == RANGE_OK)
                n->n_hosted = count;
        }
    }
    if (rc == RANGE_OK)
        n->hosted_loaded = true;
    base_buf_free(&buf);
    return rc;
}

static bool hosted_has(const range_node *n, uint64_t range_id)
{
    for (size_t i = 0; i < n->n_hosted; i++)
        if (n->hosted[i] == range_id)
            return true;
    return false;
}

/* Put the hosted list with range_id added into batch b (node mutex held;
** the caller calls hosted_added once b is written). RANGE_ERR_BUSY: full. */
static int hosted_put(range_node *n, storage_batch *b, uint64_t range_id)
{
    uint8_t buf[4 + RANGE_NODE_REPLICAS_MAX * 8];
    int rc = hosted_load_locked(n);
    if (rc != RANGE_OK || hosted_has(n, range_id))
        return rc;
    if (n->n_hosted >= RANGE_NODE_REPLICAS_MAX)
        return RANGE_ERR_BUSY;
    size_t count = n->n_hosted + 1;
    buf[0] = (uint8_t)(count >> 24);
    buf[1] = (uint8_t)(count >> 16);
    buf[2] = (uint8_t)(count >> 8);
    buf[3] = (uint8_t)count;
    for (size_t i = 0; i < n->n_hosted; i++)
        replica__put_u64(buf + 4 + i * 8, n->hosted[i]);
    replica__put_u64(buf + 4 + n->n_hosted * 8, range_id);
    rc = storage_batch_put_raw(b, (const uint8_t *)REPLICA_HOSTED_KEY, REPLICA_HOSTED_KEY_LEN,
                               buf, 4 + count * 8);
    return rc == STORAGE_OK ? RANGE_OK : map_storage(rc);
}

static void hosted_added(range_node *n, uint64_t range_id)
{
    if (n->hosted == NULL)
        n->hosted = base_calloc(RANGE_NODE_REPLICAS_MAX, sizeof(*n->hosted));
    if (n->hosted != NULL && !hosted_has(n, range_id) && n->n_hosted < RANGE_NODE_REPLICAS_MAX)
        n->hosted[n->n_hosted++] = range_id;
}

/* Put the hosted list with `add` (0: none) added and remove[0..n_remove)
** taken out into b (hosted_changed once b is written). */
static int hosted_put_change(range_node *n, storage_batch *b, uint64_t add,
                             const uint64_t *remove, size_t n_remove)
{
    uint8_t buf[4 + RANGE_NODE_REPLICAS_MAX * 8];
    size_t count = 0;
    int rc = hosted_load_locked(n);
    if (rc != RANGE_OK)
        return rc;
    for (size_t i = 0; i < n->n_hosted; i++) {
        bool gone = false;
        for (size_t k = 0; k < n_remove; k++)
            gone = gone || n->hosted[i] == remove[k];
        if (!gone && n->hosted[i] != add)
            replica__put_u64(buf + 4 + 8 * count++, n->hosted[i]);
    }
    if (add != 0 && count < RANGE_NODE_REPLICAS_MAX)
        replica__put_u64(buf + 4 + 8 * count++, add);
    buf[0] = (uint8_t)(count >> 24);
    buf[1] = (uint8_t)(count >> 16);
    buf[2] = (uint8_t)(count >> 8);
    buf[3] = (uint8_t)count;
    rc = storage_batch_put_raw(b, (const uint8_t *)REPLICA_HOSTED_KEY, REPLICA_HOSTED_KEY_LEN,
                               buf, 4 + count * 8);
    return rc == STORAGE_OK ? RANGE_OK : map_storage(rc);
}

static void hosted_removed(range_node *n, uint64_t range_id);

static void hosted_changed(range_node *n, uint64_t add, const uint64_t *remove, size_t n_remove)
{
    for (size_t k = 0; k < n_remove; k++)
        hosted_removed(n, remove[k]);
    if (add != 0)
        hosted_added(n, add);
}

static int load_tombstone(storage_engine *e, uint64_t range_id, uint64_t *generation);
static int delete_span_uncovered(range_replica *r, const uint8_t *s, size_t s_len,
                                 const uint8_t *e, size_t e_len, int depth);

/* Does this store make the right-hand replica of a split of r (see
** split_prepare)? An uninitialized replica of it here (made on demand by
** the right's Raft traffic) does not stop it: it becomes that replica
** (node_open_locked), keeping its term and vote. */
static int split_hosts_right(range_replica *r, uint64_t right_id, bool *host)
{
    range_node *n = r->node;
    uint64_t tomb = 0;
    *host = false;
    for (size_t i = 0; i < r->desc.n_replicas; i++)
        *host = *host || r->desc.replicas[i] == r->id;
    for (size_t i = 0; i < n->n_replicas && *host; i++) {
        const range_replica *o = n->replicas[i];
        if (o->config.range_id == right_id)
            *host = !o->initialized && !o->failed && o->remove_generation == 0;
    }
    int rc = *host ? load_tombstone(n->config.engine, right_id, &tomb) : RANGE_OK;
    if (rc == RANGE_OK && tomb != 0)
        *host = false;
    return rc;
}

/* The transaction part of a split trigger (replica_int.h, "splits"). */
typedef struct replica_split_txn {
    bool present;
    uint64_t txn_id;
    hlc_timestamp commit_ts;
    const uint8_t *anchor; /* borrowed from the entry */
    size_t anchor_len;
    base_buf key;          /* owned: the record's raw key */
    bool have;             /* a decodable record is stored there */
    range__record rec;
} replica_split_txn;

/* The transaction part of e after its key (at offset at), if any. RANGE_OK
** or RANGE_ERR_CORRUPT (malformed). */
static int split_txn_parse(const raft_entry *e, size_t at, replica_split_txn *tx)
{
    memset(tx, 0, sizeof(*tx));
    if (e->len == at)
        return RANGE_OK;
    if (e->len < at + REPLICA_SPLIT_TXN_HEADER)
        return RANGE_ERR_CORRUPT;
    const uint8_t *p = e->data + at;
    uint32_t alen = get_u32(p + 8 + HLC_ENCODED_SIZE);
    if (alen == 0 || alen > STORAGE_KEY_SIZE_MAX ||
        e->len != at + REPLICA_SPLIT_TXN_HEADER + (size_t)alen)
        return RANGE_ERR_CORRUPT;
    tx->txn_id = replica__get_u64(p);
    if (tx->txn_id == 0)
        return RANGE_ERR_CORRUPT;
    tx->present = true;
    tx->commit_ts = hlc_decode(p + 8);
    tx->anchor = p + REPLICA_SPLIT_TXN_HEADER;
    tx->anchor_len = alen;
    return RANGE_OK;
}

/* Read the split transaction's record as this replica stores it (a function
** of its applied prefix): tx->have, tx->rec. RANGE_OK, or an error that
** stops the replica. */
static int split_txn_record(range_replica *r, replica_split_txn *tx)
{
    base_buf val = {0}; /* owner: this function */
    int rc = range__record_key(tx->anchor, tx->anchor_len, tx->txn_id, &tx->key);
    if (rc != RANGE_OK)
        return rc == RANGE_ERR_INVALID ? RANGE_OK : rc; /* no such key: no record */
    int s = storage_get_raw(r->node->config.engine, tx->key.data, tx->key.len, &val);
    if (s == STORAGE_OK) {
        tx->have = range__record_decode(val.data, val.len, &tx->rec) == RANGE_OK;
        tx->rec.spans = NULL; /* they pointed into val (a PENDING record has none) */
        tx->rec.spans_len = 0;
    } else if (s != STORAGE_NOT_FOUND)
        rc = map_storage(s);
    base_buf_free(&val);
    return rc;
}

/* Put the split transaction's record, PENDING as read, at `status` into
** r->batch (COMMITTED: at its commit timestamp). */
static int split_txn_record_put(range_replica *r, const replica_split_txn *tx, int status)
{
    range__record next = tx->rec;
    uint8_t val[RANGE__RECORD_SIZE];
    next.status = (range_txn_status)status;
    next.commit_ts = status == RANGE_TXN_COMMITTED ? tx->commit_ts : HLC_ZERO;
    assert(tx->have && range__record_transition_ok(&tx->rec, &next, false));
    if (range__record_encode(&next, val) != RANGE_OK)
        return RANGE_OK; /* id 0 cannot be stored: nothing to change */
    if (storage_batch_put_raw(r->batch, tx->key.data, tx->key.len, val, sizeof(val)) != STORAGE_OK)
        return RANGE_ERR_NOMEM;
    return RANGE_OK;
}

/* Check the split trigger e against r's descriptor; when it applies, put
** its writes into r->batch (sp->ok). RANGE_OK, or an error that stops the
** replica (memory, storage). */
static int split_prepare(range_replica *r, const raft_entry *e, replica_split *sp)
{
    range_node *n = r->node;
    const range_descriptor *d = &r->desc;
    uint8_t key[REPLICA_KEY_SIZE_MAX], fl[HLC_ENCODED_SIZE], at[8];
    base_buf enc = {0}; /* owner: this function */
    const uint8_t *p = e->data;
    uint64_t id = replica__get_u64(p + 1), generation = replica__get_u64(p + 9);
    uint32_t klen = get_u32(p + 17 + HLC_ENCODED_SIZE);
    const uint8_t *k = p + REPLICA_SPLIT_HEADER;
    int rc;

    memset(sp, 0, sizeof(*sp));
    replica_split_txn tx;
    if (klen == 0 || klen > RANGE_DESC_KEY_MAX || e->len < REPLICA_SPLIT_HEADER + (size_t)klen ||
        split_txn_parse(e, REPLICA_SPLIT_HEADER + (size_t)klen, &tx) != RANGE_OK) {
        BASE_ERROR("range", "r%llu: malformed split trigger at index %llu skipped",
                   (unsigned long long)r->config.range_id, (unsigned long long)e->index);
        return RANGE_OK;
    }
    /* the split's transaction: its record lies in the left-hand side */
    bool txn_ok = true;
    if (tx.present) {
        txn_ok = range__key_cmp(tx.anchor, tx.anchor_len, d->start_key, d->start_len) >= 0 &&
                 range__key_cmp(tx.anchor, tx.anchor_len, k, klen) < 0;
        rc = txn_ok ? split_txn_record(r, &tx) : RANGE_OK;
        if (rc != RANGE_OK) {
            base_buf_free(&tx.key);
            goto fail;
        }
        txn_ok = txn_ok && tx.have && tx.rec.status == RANGE_TXN_PENDING;
    }
    /* a frozen range keeps its shape until its merge or unfreeze (MERGES) */
    if (id == 0 || id == d->range_id || generation != d->generation ||
        r->merge.frozen_merge_id != 0 || !txn_ok ||
        range__key_cmp(k, klen, d->start_key, d->start_len) <= 0 ||
        !range_descriptor_contains(d, k, klen)) {
        BASE_INFO("range", "r%llu n%llu: split into r%llu at index %llu refused (generation "
                  "%llu, the range is at %llu; txn %016llx %s)", (unsigned long long)d->range_id,
                  (unsigned long long)r->id, (unsigned long long)id,
                  (unsigned long long)e->index, (unsigned long long)generation,
                  (unsigned long long)d->generation, (unsigned long long)tx.txn_id,
                  !tx.present ? "none" : txn_ok ? "pending" : "not pending");
        /* its transaction cannot commit any more: ABORTED, as a pusher would
        ** (not in a frozen range: it writes nothing after its freeze) */
        rc = RANGE_OK;
        if (tx.present && tx.have && tx.rec.status == RANGE_TXN_PENDING &&
            r->merge.frozen_merge_id == 0)
            rc = split_txn_record_put(r, &tx, RANGE_TXN_ABORTED);
        base_buf_free(&tx.key);
        return rc;
    }
    /* the same batch commits the split's transaction */
    rc = tx.present ? split_txn_record_put(r, &tx, RANGE_TXN_COMMITTED) : RANGE_OK;
    base_buf_free(&tx.key);
    if (rc != RANGE_OK)
        goto fail;
    sp->new_range_id = id;
    sp->floor = hlc_decode(p + 17);
    rc = range_descriptor_copy(&sp->left, d);
    if (rc == RANGE_OK)
        rc = range_descriptor_copy(&sp->right, d);
    if (rc == RANGE_OK)
        rc = desc_set_key(&sp->left.end_key, &sp->left.end_len, k, klen);
    if (rc == RANGE_OK)
        rc = desc_set_key(&sp->right.start_key, &sp->right.start_len, k, klen);
    if (rc != RANGE_OK)
        goto fail;
    sp->left.generation = sp->right.generation = d->generation + 1;
    sp->right.range_id = id;
    rc = range_descriptor_encode(&sp->left, &enc);
    if (rc == RANGE_OK &&
        storage_batch_put_raw(r->batch, key, replica__key(key, d->range_id, 'd', 0, 0, 0),
                              enc.data, enc.len) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    base_buf_reset(&enc);
    /* The right-hand replica is made here only on a voter of the left (a
    ** learner is no member of the right), never over a replica of it that
    ** is already here (made from a snapshot of the right, maybe newer) nor
    ** over its tombstone. */
    if (rc == RANGE_OK)
        rc = split_hosts_right(r, id, &sp->host_right);
    /* No right-hand replica made here: the right span's data (a learner's,
    ** or left over) belongs to no replica of this store but one that is
    ** open here already (it keeps what it covers), so it goes with the
    ** split (found by test_range_sim_multi, seed 2). The left writes
    ** nothing into an initialized right's span (since NO OVERLAP, see
    ** replica_snapshot_check, there is none while the left is unsplit but
    ** on a store written before it). */
    if (rc == RANGE_OK && !sp->host_right)
        rc = delete_span_uncovered(r, k, klen, d->end_key, d->end_len, 0);
    if (rc == RANGE_OK && !sp->host_right) {
        sp->ok = true;
        base_buf_free(&enc);
        return RANGE_OK;
    }
    if (rc == RANGE_OK)
        rc = range_descriptor_encode(&sp->right, &enc);
    if (rc == RANGE_OK &&
        storage_batch_put_raw(r->batch, key, replica__key(key, id, 'd', 0, 0, 0), enc.data,
                              enc.len) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    hlc_encode(sp->floor, fl);
    if (rc == RANGE_OK &&
        storage_batch_put_raw(r->batch, key, replica__key(key, id, 'w', 0, 0, 0), fl,
                              sizeof(fl)) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    /* The right's state machine is the left's at this index, and its log
    ** starts there (open_fix_log): a lineage's indexes only grow, so a
    ** record the left wrote before the split is below every entry of the
    ** right (apply's "already applied?" test; found by test_range_sim_multi,
    ** seed 2: the right's log restarted at REPLICA_INITIAL_INDEX and a
    ** re-proposal applied again there). */
    replica__put_u64(at, e->index);
    if (rc == RANGE_OK &&
        storage_batch_put_raw(r->batch, key, replica__key(key, id, 'a', 0, 0, 0), at, 8) !=
            STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    /* and its lineage offset (its lineage seqs continue the left's) and the
    ** merges applied in the lineage (MERGES) */
    replica_merge_state rm;
    memset(&rm, 0, sizeof(rm));
    rm.lineage_offset = r->merge.lineage_offset;
    rm.n_merged = r->merge.n_merged;
    memcpy(rm.merged, r->merge.merged, sizeof(rm.merged));
    rm.idem_gc = r->merge.idem_gc; /* IDEMPOTENCE GC: the lineage's threshold */
    rm.mvcc_gc = r->merge.mvcc_gc; /* VERSION GC: the right's versions were GCed by it */
    if (rc == RANGE_OK)
        rc = put_merge_state(r->batch, id, &rm);
    if (rc == RANGE_OK) {
        rc = hosted_put(n, r->batch, id);
        if (rc == RANGE_ERR_BUSY) {
            /* the split applies (as on every replica); only this store cannot
            ** list the right side for its restarts */
            BASE_ERROR("range", "n%llu: more than %d ranges hosted: r%llu not recorded",
                       (unsigned long long)n->id, RANGE_NODE_REPLICAS_MAX,
                       (unsigned long long)id);
            rc = RANGE_OK;
        }
    }
    if (rc != RANGE_OK)
        goto fail;
    sp->ok = true;
    base_buf_free(&enc);
    return RANGE_OK;
fail:
    base_buf_free(&enc);
    range_descriptor_free(&sp->left);
    range_descriptor_free(&sp->right);
    memset(sp, 0, sizeof(*sp));
    return rc;
}

/* The split's batch is written: the left takes its new shape, and the
** right-hand replica opens on this node (node mutex held). A failure to
** open it is logged: the split stands, this node serves the right side
** after a restart (range_node_open_stored). */
static void split_finish(range_replica *r, replica_split *sp)
{
    range_node *n = r->node;
    range_descriptor_free(&r->desc);
    r->desc = sp->left;
    memset(&sp->left, 0, sizeof(sp->left));
    if (!sp->host_right) {
        BASE_INFO("range", "r%llu n%llu: split at index %llu: r%llu not made here",
                  (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                  (unsigned long long)r->applied, (unsigned long long)sp->new_range_id);
        return;
    }
    hosted_added(n, sp->new_range_id);
    BASE_INFO("range", "r%llu n%llu: split at index %llu: r%llu (generation %llu) and r%llu",
              (unsigned long long)r->config.range_id, (unsigned long long)r->id,
              (unsigned long long)r->applied, (unsigned long long)r->config.range_id,
              (unsigned long long)r->desc.generation, (unsigned long long)sp->new_range_id);
    for (size_t i = 0; i < n->n_replicas; i++) {
        if (n->replicas[i]->config.range_id == sp->new_range_id &&
            n->replicas[i]->initialized) {
            BASE_ERROR("range", "n%llu: r%llu made by a split is already open here",
                       (unsigned long long)n->id, (unsigned long long)sp->new_range_id);
            return;
        }
    }
    range_replica_config cfg = r->config;
    cfg.range_id = sp->new_range_id;
    for (size_t i = 0; i < sp->right.n_replicas; i++)
        cfg.peers[i] = sp->right.replicas[i];
    cfg.n_peers = sp->right.n_replicas;
    cfg.random_seed = r->config.random_seed ^ (sp->new_range_id * 0xbf58476d1ce4e5b9ULL);
    cfg.descriptor = &sp->right;
    range_replica *right = NULL;
    int rc = node_open_locked(n, &cfg, &right);
    if (rc != RANGE_OK) {
        BASE_ERROR("range", "n%llu: the replica of r%llu made by a split cannot open (%d); it "
                   "opens at the next restart", (unsigned long long)n->id,
                   (unsigned long long)sp->new_range_id, rc);
        return;
    }
    raft_status st;
    raft_node_status(r->raft, &st);
    /* the left's leader asks first: the right side leads sooner */
    right->campaign_next_tick = st.role == RAFT_LEADER;
}

/* The raw writes of a command (two-phase commit; range.h, range_raw_write).
** *refused when one is not an intent or record key of this range (nothing
** added then). Else into r->batch: PUT and DELETE as they are; a RECORD kind
** only when range__record_transition_ok allows it over the stored record;
** a RESOLVE only when the stored intent has that holder (COMMITTED: its value
** or tombstone at cmd->commit_ts; either way the intent goes). Undecodable
** values are skipped. Reads only this replica's storage, a function of its
** applied prefix, so every replica decides alike. */
static int apply_raw_writes(range_replica *r, const range_command *cmd, bool *refused)
{
    storage_engine *eng = r->node->config.engine;
    base_buf old = {0}; /* owner: this function */
    int rc = RANGE_OK;
    *refused = false;
    for (size_t i = 0; i < cmd->raw_write_count && !*refused; i++) {
        bool inside = false;
        rc = range__raw_key_inside(&r->desc, cmd->raw_writes[i].key, cmd->raw_writes[i].key_len,
                                   &inside);
        if (rc != RANGE_OK)
            goto cleanup;
        *refused = !inside;
    }
    for (size_t i = 0; i < cmd->raw_write_count && !*refused && rc == RANGE_OK; i++) {
        const range_raw_write *w = &cmd->raw_writes[i];
        int s = STORAGE_OK;
        if (w->kind == RANGE_RAW_PUT) {
            s = storage_batch_put_raw(r->batch, w->key, w->key_len, w->value, w->value_len);
        } else if (w->kind == RANGE_RAW_DELETE) {
            s = storage_batch_delete_raw(r->batch, w->key, w->key_len);
        } else if (w->kind == RANGE_RAW_RECORD || w->kind == RANGE_RAW_RECORD_IF_HEARTBEAT) {
            range__record next, prev;
            if (range__record_decode(w->value, w->value_len, &next) != RANGE_OK)
                continue;
            s = storage_get_raw(eng, w->key, w->key_len, &old);
            if (s < 0) {
                rc = map_storage(s);
                break;
            }
            bool have = s == STORAGE_OK;
            if (have && range__record_decode(old.data, old.len, &prev) != RANGE_OK)
                continue; /* a bad stored record is left alone (readers report it) */
            s = STORAGE_OK;
            if (range__record_transition_ok(have ? &prev : NULL, &next,
                                            w->kind == RANGE_RAW_RECORD_IF_HEARTBEAT))
                s = storage_batch_put_raw(r->batch, w->key, w->key_len, w->value, w->value_len);
        } else if (w->kind == RANGE_RAW_RESOLVE && w->value_len == RANGE_RAW_RESOLVE_SIZE) {
            range__intent in;
            const uint8_t *key;
            size_t key_len;
            s = storage_get_raw(eng, w->key, w->key_len, &old);
            if (s < 0) {
                rc = map_storage(s);
                break;
            }
            if (s == STORAGE_NOT_FOUND || range__intent_decode(old.data, old.len, &in) != RANGE_OK ||
                in.txn_id != replica__get_u64(w->value) ||
                !range__intent_key_user(w->key, w->key_len, &key, &key_len))
                continue; /* not (any more) an intent of that holder: no-op */
            s = STORAGE_OK;
            if (w->value[8] == RANGE_TXN_COMMITTED && in.tombstone)
                s = storage_batch_delete(r->batch, key, key_len, cmd->commit_ts);
            else if (w->value[8] == RANGE_TXN_COMMITTED)
                s = storage_batch_put(r->batch, key, key_len, cmd->commit_ts, in.value,
                                      in.value_len);
            if (s == STORAGE_OK)
                s = storage_batch_delete_raw(r->batch, w->key, w->key_len);
        }
        if (s < 0)
            rc = map_storage(s);
    }
    if (*refused)
        BASE_INFO("range", "r%llu n%llu: command %llu/%llu has a raw write outside the range "
                  "(generation %llu): refused",
                  (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                  (unsigned long long)cmd->txn_id, (unsigned long long)cmd->seq,
                  (unsigned long long)r->desc.generation);
cleanup:
    base_buf_free(&old);
    return rc;
}

/* ---- configuration changes (replica_int.h, "replica changes") ----------------- */

static bool membership_has(const raft_membership *m, uint64_t id)
{
    return raft_membership_is_voter(m, id) || raft_membership_is_learner(m, id);
}

/* A range that never changed its configuration: its replicas, all voters. */
static void membership_of_desc(const range_descriptor *d, raft_membership *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < d->n_replicas && i < RAFT_MAX_VOTERS; i++)
        out->voters[out->n_voters++] = d->replicas[i];
}

static int put_membership(storage_batch *b, uint64_t range_id, const raft_membership *m)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX], buf[RAFT_MEMBERSHIP_MAX_BYTES];
    size_t len = raft_membership_encode(m, buf);
    int rc = storage_batch_put_raw(b, key, replica__key(key, range_id, 'm', 0, 0, 0), buf, len);
    return rc == STORAGE_OK ? RANGE_OK : map_storage(rc);
}

/* 'm' into *m; *found false when absent. */
static int load_membership(storage_engine *e, uint64_t range_id, raft_membership *m, bool *found)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf buf = {0}; /* owner: this function */
    int rc = storage_get_raw(e, key, replica__key(key, range_id, 'm', 0, 0, 0), &buf);
    *found = false;
    if (rc == STORAGE_OK) {
        rc = raft_membership_decode(buf.data, buf.len, m) == (int)buf.len ? RANGE_OK
                                                                           : RANGE_ERR_CORRUPT;
        *found = rc == RANGE_OK;
    } else {
        rc = rc == STORAGE_NOT_FOUND ? RANGE_OK : map_storage(rc);
    }
    base_buf_free(&buf);
    return rc;
}

/* A configuration entry being applied: the descriptor changes with it. */
typedef struct replica_conf {
    bool ok;
    raft_membership membership;
    range_descriptor desc; /* owned: generation + 1, replicas = the voters */
} replica_conf;

/* The transaction a configuration entry carries after its membership
** (replica_int.h, "replica changes"), when any: its record, PENDING as the
** proposal checked it (nothing before the entry in the log was unapplied
** then, and every record write after it finds the record final), becomes
** COMMITTED in the configuration's batch. The configuration applies
** whatever the record says (the core switched to it when it was appended):
** a record found otherwise (a log written otherwise) is logged and left,
** and server/'s meta repair covers it. */
static int conf_txn_commit(range_replica *r, const raft_entry *e, size_t at)
{
    replica_split_txn tx;
    if (split_txn_parse(e, at, &tx) != RANGE_OK) {
        BASE_ERROR("range", "r%llu: malformed transaction of the configuration at index %llu "
                   "ignored", (unsigned long long)r->config.range_id,
                   (unsigned long long)e->index);
        return RANGE_OK;
    }
    if (!tx.present)
        return RANGE_OK;
    int rc = RANGE_OK;
    bool inside = range_descriptor_contains(&r->desc, tx.anchor, tx.anchor_len);
    if (inside && r->merge.frozen_merge_id == 0)
        rc = split_txn_record(r, &tx);
    if (rc == RANGE_OK && inside && r->merge.frozen_merge_id == 0 && tx.have &&
        tx.rec.status == RANGE_TXN_PENDING) {
        rc = split_txn_record_put(r, &tx, RANGE_TXN_COMMITTED);
    } else if (rc == RANGE_OK) {
        BASE_WARN("range", "r%llu n%llu: configuration at index %llu applies, but its "
                  "transaction %016llx is not pending here (%s): meta waits for its repair",
                  (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                  (unsigned long long)e->index, (unsigned long long)tx.txn_id,
                  !inside ? "anchor outside" : !tx.have ? "no record" : "final");
    }
    base_buf_free(&tx.key);
    return rc;
}

/* Put the new descriptor and membership of configuration entry e into
** r->batch (c->ok), and its transaction's record COMMITTED (conf_txn_commit).
** An entry that does not decode (never written by a core) changes
** nothing, alike everywhere. */
static int conf_prepare(range_replica *r, const raft_entry *e, replica_conf *c)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf enc = {0}; /* owner: this function */
    memset(c, 0, sizeof(*c));
    int used = raft_membership_decode(e->data, e->len, &c->membership);
    if (used < 0 || c->membership.n_voters > RANGE_REPLICAS_MAX) {
        BASE_ERROR("range", "r%llu: undecodable configuration at index %llu skipped",
                   (unsigned long long)r->config.range_id, (unsigned long long)e->index);
        return RANGE_OK;
    }
    int rc = conf_txn_commit(r, e, (size_t)used);
    if (rc != RANGE_OK)
        return rc;
    rc = range_descriptor_copy(&c->desc, &r->desc);
    if (rc != RANGE_OK)
        return rc;
    c->desc.generation = r->desc.generation + 1;
    c->desc.n_replicas = c->membership.n_voters;
    for (size_t i = 0; i < c->membership.n_voters; i++)
        c->desc.replicas[i] = c->membership.voters[i];
    rc = range_descriptor_encode(&c->desc, &enc);
    if (rc == RANGE_OK &&
        storage_batch_put_raw(r->batch, key, replica__key(key, r->config.range_id, 'd', 0, 0, 0),
                              enc.data, enc.len) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    if (rc == RANGE_OK)
        rc = put_membership(r->batch, r->config.range_id, &c->membership);
    base_buf_free(&enc);
    if (rc != RANGE_OK) {
        range_descriptor_free(&c->desc);
        memset(c, 0, sizeof(*c));
        return rc;
    }
    c->ok = true;
    return RANGE_OK;
}

static void send_removed(range_node *n, uint64_t range_id, uint64_t to, uint64_t generation);

/* The configuration's batch is written: r takes its new shape. Removed
** from it: retire at the next reap (see REMOVAL). Every replica tells the
** nodes it removed (they never learn the commit otherwise). */
static void conf_finish(range_replica *r, replica_conf *c)
{
    raft_membership old = r->membership;
    range_descriptor_free(&r->desc);
    r->desc = c->desc;
    memset(&c->desc, 0, sizeof(c->desc));
    r->membership = c->membership;
    BASE_INFO("range", "r%llu n%llu: configuration at index %llu: %zu voters, %zu learners "
              "(generation %llu)", (unsigned long long)r->config.range_id,
              (unsigned long long)r->id, (unsigned long long)r->applied,
              r->membership.n_voters, r->membership.n_learners,
              (unsigned long long)r->desc.generation);
    for (size_t i = 0; i < old.n_voters + old.n_learners; i++) {
        uint64_t id = i < old.n_voters ? old.voters[i] : old.learners[i - old.n_voters];
        if (id != r->id && !membership_has(&r->membership, id))
            send_removed(r->node, r->config.range_id, id, r->desc.generation);
    }
    /* Removed, unless its log already holds a later configuration that has
    ** it again (appended, maybe acknowledged: it may count for that
    ** configuration's quorums, so it must keep its log and state). Should
    ** that entry be truncated, the replica asks the members (see REMOVAL). */
    raft_membership latest;
    raft_node_membership(r->raft, &latest);
    r->remove_generation = membership_has(&r->membership, r->id) || membership_has(&latest, r->id)
                               ? 0
                               : r->desc.generation;
}

/* ---- merges (replica_int.h, "merges"; MERGES above) ---------------------------- */

#define REPLICA_FREEZE_SIZE 25
#define REPLICA_FENCE_SIZE 17
#define REPLICA_UNFREEZE_SIZE 9
#define REPLICA_MERGE_HEADER (1 + 6 * 8 + HLC_ENCODED_SIZE + 4)
#define REPLICA_MERGED_TOMBSTONE UINT64_MAX /* no replica of a merged range ever again */
#define REPLICA_APPLY_STALLED 1             /* apply_entry: not applied, retry later */

static bool is_merge_tag(uint8_t tag)
{
    return tag == REPLICA_FREEZE_TAG || tag == REPLICA_MERGE_TAG || tag == REPLICA_FENCE_TAG ||
           tag == REPLICA_UNFREEZE_TAG;
}

static uint64_t merge_txn_id(uint8_t tag)
{
    return tag == REPLICA_FREEZE_TAG  ? REPLICA_FREEZE_TXN_ID
           : tag == REPLICA_MERGE_TAG ? REPLICA_MERGE_TXN_ID
           : tag == REPLICA_FENCE_TAG ? REPLICA_FENCE_TXN_ID
                                      : REPLICA_UNFREEZE_TXN_ID;
}

/* One of the four merge entries being applied. */
typedef struct replica_merge_apply {
    uint8_t tag;               /* REPLICA_*_TAG; 0: not a merge entry */
    uint64_t merge_id;
    bool ok;                   /* it applies (r->batch filled) */
    bool stall;                /* MERGE: the local right replica is not ready */
    bool desc_changed;
    range_descriptor desc;     /* owned: the new descriptor (desc_changed) */
    replica_merge_state next;  /* the merge state after it */
    hlc_timestamp floor;       /* MERGE: the new 'w' */
    uint64_t right_id;         /* MERGE: the range merged in */
    range_replica *right;      /* MERGE: its replica here (retired), or NULL */
} replica_merge_apply;

/* Delete the per-range raw state of range_id ('a', 'd', 'm', 'w', 's', 't',
** 'z', 'o', 'y', 'x', 'g', 'v') into b. */
static int delete_state_keys(storage_batch *b, uint64_t range_id)
{
    static const char kinds[] = {'a', 'd', 'm', 'w', 's', 't', 'z', 'o', 'y', 'x', 'g', 'v'};
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    int rc = STORAGE_OK;
    for (size_t i = 0; i < sizeof(kinds) && rc == STORAGE_OK; i++)
        rc = storage_batch_delete_raw(b, key, replica__key(key, range_id, kinds[i], 0, 0, 0));
    return rc == STORAGE_OK ? RANGE_OK : map_storage(rc);
}

/* The replicas of a and b are the same set. */
static bool same_replicas(const range_descriptor *a, const range_descriptor *b)
{
    if (a->n_replicas != b->n_replicas)
        return false;
    for (size_t i = 0; i < a->n_replicas; i++) {
        bool found = false;
        for (size_t k = 0; k < b->n_replicas; k++)
            found = found || a->replicas[i] == b->replicas[k];
        if (!found)
            return false;
    }
    return true;
}

/* Put the writes of range_id's drop (merged into another range: state keys,
** tombstone, hosted list; NOT its span) into b. */
static int merged_drop_put(range_node *n, storage_batch *b, uint64_t range_id)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX], val[8];
    int rc = delete_state_keys(b, range_id);
    replica__put_u64(val, REPLICA_MERGED_TOMBSTONE);
    if (rc == RANGE_OK &&
        storage_batch_put_raw(b, key, replica__key(key, range_id, 'z', 0, 0, 0), val, 8) !=
            STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    return rc;
}

/* The written drop of o (merged away): it stops now and is retired at the
** next reap, its span kept (replica_retire). */
static void merged_mark(range_replica *o)
{
    o->merged = true;
    o->remove_generation = REPLICA_MERGED_TOMBSTONE;
}

/* o is frozen for a merge whose left has a replica here that has not
** applied it yet (except `but`, the replica asking): that MERGE drops o
** here, and needs it (MERGES). A left not initialized yet counts: the
** snapshot it waits for may be from before the MERGE, which then needs o
** (sim seed 21510: o dropped on a merged tombstone, the left stalled for
** ever); one from after it is the left's own, `but`, and subsumes o. */
static bool merge_left_pending(const range_node *n, const range_replica *o,
                               const range_replica *but)
{
    if (o->merge.frozen_merge_id == 0)
        return false;
    for (size_t i = 0; i < n->n_replicas; i++) {
        const range_replica *l = n->replicas[i];
        if (l == but || l->config.range_id != o->merge.frozen_left_id || l->failed ||
            l->retired || l->remove_generation != 0)
            continue;
        /* past that MERGE already (by a snapshot of the left made after
        ** it, found by test_range_sim_multi seed 1389): not pending */
        for (uint32_t k = 0; k < l->merge.n_merged; k++)
            if (l->merge.merged[k] == o->merge.frozen_merge_id)
                return false;
        return true;
    }
    return false;
}

/* Whether id is in m's merged list (a merge applied in the lineage). */
static bool merged_has(const replica_merge_state *m, uint64_t id)
{
    for (uint32_t i = 0; i < m->n_merged; i++)
        if (m->merged[i] == id)
            return true;
    return false;
}

/* Add id to m's merged list (kept once; the oldest goes when full). */
static void merged_add(replica_merge_state *m, uint64_t id)
{
    for (uint32_t i = 0; i < m->n_merged; i++)
        if (m->merged[i] == id)
            return;
    if (m->n_merged == REPLICA_FENCES_MAX) {
        memmove(m->merged, m->merged + 1, (REPLICA_FENCES_MAX - 1) * sizeof(m->merged[0]));
        m->n_merged--;
    }
    m->merged[m->n_merged++] = id;
}

/* MERGE (decided on L's state alone; see MERGES). */
static int merge_prepare_merge(range_replica *r, const raft_entry *e, replica_merge_apply *mg)
{
    range_node *n = r->node;
    const range_descriptor *ld = &r->desc;
    const uint8_t *p = e->data;
    uint8_t key[REPLICA_KEY_SIZE_MAX], fl[HLC_ENCODED_SIZE];
    range_descriptor rd; /* owned: the right's descriptor from the entry */
    uint64_t lgen = replica__get_u64(p + 9), rid = replica__get_u64(p + 17);
    uint64_t rgen = replica__get_u64(p + 25), fidx = replica__get_u64(p + 33);
    uint64_t rls = replica__get_u64(p + 41);
    hlc_timestamp floor = hlc_decode(p + 49);
    uint32_t dlen = get_u32(p + 49 + HLC_ENCODED_SIZE);
    int rc;

    /* after the descriptor: R's merged list (u32 count | ids), then the
    ** merge's transaction part, if any (as a split's) */
    size_t tail = REPLICA_MERGE_HEADER + (size_t)dlen;
    uint32_t n_rm = e->len >= tail + 4 ? get_u32(p + tail) : UINT32_MAX;
    replica_split_txn tx;
    memset(&tx, 0, sizeof(tx));
    memset(&rd, 0, sizeof(rd));
    if (e->len < tail + 4 || n_rm > REPLICA_FENCES_MAX || e->len < tail + 4 + (size_t)n_rm * 8 ||
        split_txn_parse(e, tail + 4 + (size_t)n_rm * 8, &tx) != RANGE_OK)
        rc = RANGE_ERR_CORRUPT;
    else
        rc = range_descriptor_decode(p + REPLICA_MERGE_HEADER, dlen, &rd);
    if (rc == RANGE_ERR_NOMEM)
        return rc;
    if (rc != RANGE_OK) {
        BASE_ERROR("range", "r%llu: malformed merge at index %llu skipped",
                   (unsigned long long)r->config.range_id, (unsigned long long)e->index);
        return RANGE_OK;
    }
    bool fenced = false;
    for (uint32_t i = 0; i < r->merge.n_fences; i++)
        fenced = fenced || r->merge.fences[i] == mg->merge_id;
    bool ok = mg->merge_id != 0 && !fenced && r->merge.frozen_merge_id == 0 &&
              lgen == ld->generation && rid != ld->range_id && rd.range_id == rid &&
              rd.generation == rgen && fidx != 0 && rls >= fidx && ld->end_len > 0 &&
              range__key_cmp(ld->end_key, ld->end_len, rd.start_key, rd.start_len) == 0 &&
              same_replicas(ld, &rd) && r->membership.n_learners == 0;
    /* the merge's transaction (docs/decisions/010): its record lies in L
    ** and is PENDING (L's applied state: unchanged while this stalls) */
    bool txn_ok = true;
    if (tx.present) {
        txn_ok = range_descriptor_contains(ld, tx.anchor, tx.anchor_len);
        rc = txn_ok ? split_txn_record(r, &tx) : RANGE_OK;
        if (rc != RANGE_OK) {
            base_buf_free(&tx.key);
            range_descriptor_free(&rd);
            return rc;
        }
        txn_ok = txn_ok && tx.have && tx.rec.status == RANGE_TXN_PENDING;
    }
    if (!ok || !txn_ok) {
        BASE_INFO("range", "r%llu n%llu: merge %llu of r%llu at index %llu refused (generation "
                  "%llu, the range is at %llu; fenced %d, frozen %d; txn %016llx %s)",
                  (unsigned long long)ld->range_id, (unsigned long long)r->id,
                  (unsigned long long)mg->merge_id, (unsigned long long)rid,
                  (unsigned long long)e->index, (unsigned long long)lgen,
                  (unsigned long long)ld->generation, fenced, r->merge.frozen_merge_id != 0,
                  (unsigned long long)tx.txn_id,
                  !tx.present ? "none" : txn_ok ? "pending" : "not pending");
        /* a final refusal: its transaction cannot commit any more (a
        ** frozen L writes nothing: its left's MERGE takes it as frozen) */
        rc = RANGE_OK;
        if (tx.present && tx.have && tx.rec.status == RANGE_TXN_PENDING &&
            r->merge.frozen_merge_id == 0)
            rc = split_txn_record_put(r, &tx, RANGE_TXN_ABORTED);
        base_buf_free(&tx.key);
        range_descriptor_free(&rd);
        return rc;
    }
    /* It applies. A voter here serves the merged span: its replica of the
    ** right must hold everything the right applied up to the freeze. */
    range_replica *right = NULL;
    for (size_t i = 0; i < n->n_replicas; i++)
        if (n->replicas[i]->config.range_id == rid && !n->replicas[i]->retired)
            right = n->replicas[i];
    bool ready = right != NULL && right->initialized && !right->failed &&
                 right->remove_generation == 0 && right->merge.frozen_merge_id == mg->merge_id &&
                 right->applied >= fidx;
    if (!ready && raft_membership_is_voter(&r->membership, r->id)) {
        if (!r->apply_stalled)
            BASE_ERROR("range", "r%llu n%llu: merge %llu at index %llu waits: the replica of "
                       "r%llu here is not frozen at index %llu yet (apply stalled)",
                       (unsigned long long)ld->range_id, (unsigned long long)r->id,
                       (unsigned long long)mg->merge_id, (unsigned long long)e->index,
                       (unsigned long long)rid, (unsigned long long)fidx);
        mg->stall = true;
        r->stall_right_id = rid; /* STALLED LEADER */
        base_buf_free(&tx.key);
        range_descriptor_free(&rd);
        return RANGE_OK;
    }
    /* the same batch commits the merge's transaction */
    rc = tx.present ? split_txn_record_put(r, &tx, RANGE_TXN_COMMITTED) : RANGE_OK;
    base_buf_free(&tx.key);
    if (rc != RANGE_OK) {
        range_descriptor_free(&rd);
        return rc;
    }
    mg->right_id = rid;
    mg->right = right;
    /* IDEMPOTENCE GC: the merged lineage refuses below both thresholds (R's
    ** is fixed from its freeze on: a frozen range refuses GC entries) */
    if (right != NULL && ready && hlc_compare(right->merge.idem_gc, mg->next.idem_gc) > 0)
        mg->next.idem_gc = right->merge.idem_gc;
    /* VERSION GC: reads of the merged span refused below both (R's fixed
    ** since its freeze, as above) */
    if (right != NULL && ready && hlc_compare(right->merge.mvcc_gc, mg->next.mvcc_gc) > 0)
        mg->next.mvcc_gc = right->merge.mvcc_gc;
    if (right != NULL && ready)
        replica_mvcc_gc_raise(r, mg->next.mvcc_gc); /* before R's versions are ours */
    rc = range_descriptor_copy(&mg->desc, ld);
    if (rc == RANGE_OK && rd.end_len == 0) {
        base_free(mg->desc.end_key);
        mg->desc.end_key = NULL;
        mg->desc.end_len = 0;
    } else if (rc == RANGE_OK) {
        rc = desc_set_key(&mg->desc.end_key, &mg->desc.end_len, rd.end_key, rd.end_len);
    }
    mg->desc.generation = (lgen > rgen ? lgen : rgen) + 1;
    mg->desc_changed = true;
    /* lineage: every entry of L from here on is above every record R wrote */
    if (rls + 1 > e->index && rls + 1 - e->index > mg->next.lineage_offset)
        mg->next.lineage_offset = rls + 1 - e->index;
    /* the merges of both lineages and this one (the newest kept) */
    for (uint32_t i = 0; i <= n_rm; i++)
        merged_add(&mg->next, i < n_rm ? replica__get_u64(p + tail + 4 + (size_t)i * 8)
                                       : mg->merge_id);
    mg->floor = hlc_compare(floor, r->split_floor) > 0 ? floor : r->split_floor;
    hlc_encode(mg->floor, fl);
    if (rc == RANGE_OK && !hlc_is_zero(mg->floor) &&
        storage_batch_put_raw(r->batch, key, replica__key(key, ld->range_id, 'w', 0, 0, 0), fl,
                              sizeof(fl)) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    if (rc == RANGE_OK)
        rc = merged_drop_put(n, r->batch, rid);
    if (rc == RANGE_OK)
        rc = hosted_put_change(n, r->batch, 0, &rid, 1);
    range_descriptor_free(&rd);
    if (rc == RANGE_OK)
        mg->ok = true;
    return rc;
}

/* merge_id joins m's fences (newest REPLICA_FENCES_MAX kept, FIFO). */
static void fence_add(replica_merge_state *m, uint64_t merge_id)
{
    for (uint32_t i = 0; i < m->n_fences; i++)
        if (m->fences[i] == merge_id)
            return;
    if (m->n_fences == REPLICA_FENCES_MAX) {
        memmove(m->fences, m->fences + 1, (REPLICA_FENCES_MAX - 1) * sizeof(m->fences[0]));
        m->n_fences--;
    }
    m->fences[m->n_fences++] = merge_id;
}

/* Check merge entry e against r's state; when it applies, put its writes
** into r->batch (mg->ok). RANGE_OK, or an error that stops the replica. */
static int merge_prepare(range_replica *r, const raft_entry *e, replica_merge_apply *mg)
{
    const uint8_t *p = e->data;
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf enc = {0}; /* owner: this function */
    int rc = RANGE_OK;
    memset(mg, 0, sizeof(*mg));
    mg->tag = p[0];
    mg->next = r->merge;
    size_t want = mg->tag == REPLICA_FREEZE_TAG  ? REPLICA_FREEZE_SIZE
                  : mg->tag == REPLICA_FENCE_TAG ? REPLICA_FENCE_SIZE
                  : mg->tag == REPLICA_UNFREEZE_TAG ? REPLICA_UNFREEZE_SIZE
                                                    : 0;
    if ((want != 0 && e->len != want) || (want == 0 && e->len < REPLICA_MERGE_HEADER)) {
        BASE_ERROR("range", "r%llu: malformed merge entry %#x at index %llu skipped",
                   (unsigned long long)r->config.range_id, mg->tag, (unsigned long long)e->index);
        return RANGE_OK;
    }
    mg->merge_id = replica__get_u64(p + 1);
    bool fenced = false; /* here, or unfrozen here (UNFREEZE fences its id) */
    for (uint32_t i = 0; i < r->merge.n_fences; i++)
        fenced = fenced || r->merge.fences[i] == mg->merge_id;
    if (mg->tag == REPLICA_FREEZE_TAG) {
        /* not an id R's lineage merged already (a reused id): the abandon's
        ** FENCE would read it "merged" and R stay frozen (sim seed 31270) */
        uint64_t left = replica__get_u64(p + 9), generation = replica__get_u64(p + 17);
        if (mg->merge_id != 0 && r->merge.frozen_merge_id == mg->merge_id) {
            mg->ok = true; /* frozen by this merge already */
        } else if (mg->merge_id != 0 && r->merge.frozen_merge_id == 0 && !fenced &&
                   !merged_has(&r->merge, mg->merge_id) && generation == r->desc.generation &&
                   left != r->config.range_id) {
            mg->next.frozen_merge_id = mg->merge_id;
            mg->next.frozen_left_id = left;
            mg->next.frozen_index = e->index;
            mg->ok = true;
        }
    } else if (mg->tag == REPLICA_FENCE_TAG) {
        fence_add(&mg->next, mg->merge_id);
        mg->ok = true;
    } else if (mg->tag == REPLICA_UNFREEZE_TAG) {
        /* The descriptor stays, its generation too: meta names it and an
        ** UNFREEZE carries no meta transaction (decision 010 item 10). What
        ** generation + 1 guarded, a stale SUBSUME freezing R again for the
        ** same merge, the fence guards: FREEZE refuses a fenced id. */
        if (mg->merge_id != 0 && r->merge.frozen_merge_id == mg->merge_id) {
            mg->next.frozen_merge_id = mg->next.frozen_left_id = mg->next.frozen_index = 0;
            fence_add(&mg->next, mg->merge_id);
            mg->ok = true;
        }
    } else {
        rc = merge_prepare_merge(r, e, mg);
    }
    if (rc == RANGE_OK && mg->ok)
        rc = put_merge_state(r->batch, r->config.range_id, &mg->next);
    if (rc == RANGE_OK && mg->ok && mg->desc_changed)
        rc = range_descriptor_encode(&mg->desc, &enc);
    if (rc == RANGE_OK && mg->ok && mg->desc_changed &&
        storage_batch_put_raw(r->batch, key, replica__key(key, r->config.range_id, 'd', 0, 0, 0),
                              enc.data, enc.len) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    base_buf_free(&enc);
    if (!mg->ok && !mg->stall && mg->tag != REPLICA_MERGE_TAG)
        BASE_INFO("range", "r%llu n%llu: merge entry %#x of merge %llu at index %llu refused "
                  "(generation %llu, frozen by %llu)", (unsigned long long)r->config.range_id,
                  (unsigned long long)r->id, mg->tag, (unsigned long long)mg->merge_id,
                  (unsigned long long)e->index, (unsigned long long)r->desc.generation,
                  (unsigned long long)r->merge.frozen_merge_id);
    return rc;
}

/* The merge entry's batch is written: r takes its new state; a MERGE
** retires the right's replica here (at the next reap: its span stays). */
static void merge_finish(range_replica *r, replica_merge_apply *mg)
{
    range_node *n = r->node;
    if (!mg->ok) {
        replica_mvcc_gc_sync(r); /* undo a raise */
        return;
    }
    r->merge = mg->next;
    replica_mvcc_gc_sync(r);
    if (mg->desc_changed) {
        range_descriptor_free(&r->desc);
        r->desc = mg->desc;
        memset(&mg->desc, 0, sizeof(mg->desc));
    }
    if (mg->tag != REPLICA_MERGE_TAG) {
        BASE_INFO("range", "r%llu n%llu: merge entry %#x of merge %llu applied at index %llu "
                  "(generation %llu)", (unsigned long long)r->config.range_id,
                  (unsigned long long)r->id, mg->tag, (unsigned long long)mg->merge_id,
                  (unsigned long long)r->applied, (unsigned long long)r->desc.generation);
        return;
    }
    pthread_mutex_lock(&n->floor_mu);
    r->split_floor = mg->floor;
    pthread_mutex_unlock(&n->floor_mu);
    hosted_changed(n, 0, &mg->right_id, 1);
    if (mg->right != NULL)
        merged_mark(mg->right);
    BASE_INFO("range", "r%llu n%llu: merged r%llu at index %llu (generation %llu, lineage "
              "offset %llu)", (unsigned long long)r->config.range_id, (unsigned long long)r->id,
              (unsigned long long)mg->right_id, (unsigned long long)r->applied,
              (unsigned long long)r->desc.generation,
              (unsigned long long)r->merge.lineage_offset);
}

/* ---- idempotence GC (replica_int.h, "idempotence GC"; IDEMPOTENCE GC above) --- */

/* An idempotence GC entry being applied. */
typedef struct replica_idem_gc {
    bool seen;                /* the entry is one (malformed ones too) */
    bool ok;                  /* it applies (r->batch filled) */
    hlc_timestamp threshold;  /* from the entry */
    replica_merge_state next; /* the merge state after it ('g' raised) */
    hlc_timestamp cutoff;     /* 'c' records below it were deleted ... */
    bool swept;               /* ... from the cursor on (else none looked at) */
    bool complete;            /* ... to the end (else a limit was hit: cursor) */
    uint8_t cursor[REPLICA_KEY_SIZE_MAX + 1];
    size_t cursor_len;
    size_t deleted;
} replica_idem_gc;

/* Does the refusal below 'g' concern cmd? Only a command whose key may be
** proposed again (a COMMIT or PREPARE: its timestamp is fresh, above the
** closed timestamp, when first evaluated). The leaseholder's own record
** writes and resolutions take a fresh key per proposal and may carry a
** zero or an old timestamp (a late resolution of an old commit). */
static bool idem_gc_applies_to(const range_command *cmd)
{
    if (hlc_is_zero(cmd->commit_ts))
        return false;
    for (size_t i = 0; i < cmd->raw_write_count; i++)
        if (cmd->raw_writes[i].kind == RANGE_RAW_RESOLVE)
            return false;
    return true;
}

/* The lowest 'g' of the ranges hosted on this store, with r at its next
** one (HLC_ZERO when any hosted range has none or is not open here: then
** nothing is deleted). Node mutex held. */
static hlc_timestamp idem_gc_store_min(range_node *n, const range_replica *r, hlc_timestamp mine)
{
    hlc_timestamp low = mine;
    if (hosted_load_locked(n) != RANGE_OK || n->n_hosted == 0)
        return HLC_ZERO;
    for (size_t i = 0; i < n->n_hosted; i++) {
        const range_replica *o = NULL;
        for (size_t k = 0; k < n->n_replicas && o == NULL; k++)
            if (n->replicas[k]->config.range_id == n->hosted[i] && !n->replicas[k]->retired)
                o = n->replicas[k];
        if (o == r)
            continue;
        if (o == NULL || !o->initialized || o->merged)
            return HLC_ZERO; /* its records may be needed: keep everything */
        if (hlc_compare(o->merge.idem_gc, low) < 0)
            low = o->merge.idem_gc;
    }
    /* a replica open here but not listed (the list was full) counts too */
    for (size_t k = 0; k < n->n_replicas; k++) {
        const range_replica *o = n->replicas[k];
        if (o != r && !o->retired && o->initialized && !o->merged &&
            !hosted_has(n, o->config.range_id) && hlc_compare(o->merge.idem_gc, low) < 0)
            low = o->merge.idem_gc;
    }
    return low;
}

/* Put into r->batch the deletion of the store's 'c' records whose commit
** timestamp is below gc->cutoff, from the node's cursor on (at most
** REPLICA_IDEM_GC_SCAN_MAX looked at, REPLICA_IDEM_GC_DELETES_MAX deleted:
** then gc->cursor is where the next entry goes on). */
static int idem_gc_delete(range_replica *r, replica_idem_gc *gc)
{
    range_node *n = r->node;
    storage_engine *e = n->config.engine;
    uint8_t *lo = gc->cursor, hi[REPLICA_KEY_SIZE_MAX];
    size_t lo_len = replica__key(lo, REPLICA_RECORDS_RANGE, 'c', 0, 0, 0);
    const size_t prefix_len = lo_len;
    size_t hi_len = replica__key(hi, REPLICA_RECORDS_RANGE, 'c' + 1, 0, 0, 0);
    base_buf key = {0}, val = {0}; /* owner: this function */
    int rc = RANGE_OK;
    if (n->idem_gc_cursor_len > 0) {
        memcpy(lo, n->idem_gc_cursor, n->idem_gc_cursor_len);
        lo_len = n->idem_gc_cursor_len;
    }
    gc->swept = true;
    gc->complete = true;
    for (size_t looked = 0;; looked++) {
        if (looked == REPLICA_IDEM_GC_SCAN_MAX) {
            gc->complete = false;
            break;
        }
        int src = storage_seek_raw(e, lo, lo_len, hi, hi_len, &key, &val);
        if (src == STORAGE_NOT_FOUND)
            break;
        if (src != STORAGE_OK) {
            rc = map_storage(src);
            break;
        }
        if (key.len != prefix_len + 16 || key.len + 1 > sizeof(gc->cursor)) {
            rc = RANGE_ERR_CORRUPT;
            break;
        }
        /* a record of another length is left alone (undecidable) */
        if (val.len == REPLICA_RECORD_SIZE &&
            hlc_compare(hlc_decode(val.data + 8), gc->cutoff) < 0) {
            if (gc->deleted == REPLICA_IDEM_GC_DELETES_MAX) {
                gc->complete = false; /* the rest at a later entry */
                break;
            }
            if (storage_batch_delete_raw(r->batch, key.data, key.len) != STORAGE_OK) {
                rc = RANGE_ERR_NOMEM;
                break;
            }
            gc->deleted++;
        }
        memcpy(lo, key.data, key.len); /* next: the smallest key above it */
        lo[key.len] = 0;
        lo_len = key.len + 1;
    }
    gc->cursor_len = gc->complete ? 0 : lo_len;
    base_buf_free(&key);
    base_buf_free(&val);
    return rc;
}

/* Check the GC entry e against r's state; when it applies, put its writes
** into r->batch (gc->ok). RANGE_OK, or an error that stops the replica. */
static int idem_gc_prepare(range_replica *r, const raft_entry *e, replica_idem_gc *gc)
{
    range_node *n = r->node;
    memset(gc, 0, sizeof(*gc));
    gc->seen = true;
    if (e->len != REPLICA_IDEM_GC_SIZE) {
        BASE_ERROR("range", "r%llu: malformed idempotence GC entry at index %llu skipped",
                   (unsigned long long)r->config.range_id, (unsigned long long)e->index);
        return RANGE_OK;
    }
    gc->threshold = hlc_decode(e->data + 1);
    /* frozen: R's threshold stays what MERGE reads (MERGES) */
    if (r->merge.frozen_merge_id != 0 || gc->threshold.wall_ns < 0)
        return RANGE_OK;
    gc->next = r->merge;
    if (hlc_compare(gc->threshold, gc->next.idem_gc) > 0)
        gc->next.idem_gc = gc->threshold;
    int rc = put_merge_state(r->batch, r->config.range_id, &gc->next);
    if (rc != RANGE_OK)
        return rc;
    gc->ok = true;
    /* Local deletion (the one thing here that differs between nodes): a
    ** record goes only when every range of the store refuses, by its own
    ** applied 'g', every command that could still need it (a re-proposal's
    ** timestamp is within the margin of its first one). */
    hlc_timestamp low = idem_gc_store_min(n, r, gc->next.idem_gc);
    if (low.wall_ns <= (int64_t)RANGE_IDEMPOTENCE_GC_MARGIN_MS * 1000000)
        return RANGE_OK;
    gc->cutoff = (hlc_timestamp){low.wall_ns - (int64_t)RANGE_IDEMPOTENCE_GC_MARGIN_MS * 1000000,
                                 0};
    if (n->idem_gc_cursor_len == 0 && hlc_compare(gc->cutoff, n->idem_gc_swept) <= 0)
        return RANGE_OK; /* swept up to there already */
    return idem_gc_delete(r, gc);
}

/* The GC entry's batch is written: r takes its threshold. */
static void idem_gc_finish(range_replica *r, replica_idem_gc *gc)
{
    if (!gc->ok) {
        BASE_INFO("range", "r%llu n%llu: idempotence GC entry at index %llu refused (frozen, "
                  "or malformed)",
                  (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                  (unsigned long long)r->applied);
        return;
    }
    range_node *n = r->node;
    r->merge = gc->next;
    replica_mvcc_gc_sync(r);
    if (gc->swept) {
        /* the pass's lowest cutoff holds for every key it went over */
        if (n->idem_gc_cursor_len == 0 || hlc_compare(gc->cutoff, n->idem_gc_pass_cutoff) < 0)
            n->idem_gc_pass_cutoff = gc->cutoff;
        memcpy(n->idem_gc_cursor, gc->cursor, gc->cursor_len);
        n->idem_gc_cursor_len = gc->cursor_len;
        if (gc->complete)
            n->idem_gc_swept = n->idem_gc_pass_cutoff;
    }
    if (gc->deleted > 0)
        BASE_INFO("range", "r%llu n%llu: idempotence GC at index %llu: threshold %lld, %zu "
                  "records deleted", (unsigned long long)r->config.range_id,
                  (unsigned long long)r->id, (unsigned long long)r->applied,
                  (long long)r->merge.idem_gc.wall_ns, gc->deleted);
}

/* ---- version GC (replica_int.h, "version GC"; VERSION GC above) -------------- */

/* A version GC entry being applied. */
typedef struct replica_mvcc_gc {
    bool seen;                /* the entry is one (malformed ones too) */
    bool ok;                  /* it applies (r->batch filled) */
    hlc_timestamp threshold;  /* from the entry */
    replica_merge_state next; /* the merge state after it ('v' raised) */
    size_t keys;              /* keys whose garbage went */
    size_t removed;           /* versions dropped */
} replica_mvcc_gc;

/* Put into r->batch the garbage of key at t: every version older than the
** newest at or below t, and that one too when it is a tombstone (at most
** *budget versions and *bytes_left key bytes; both count down). */
static int mvcc_gc_key(range_replica *r, const uint8_t *key, size_t key_len, hlc_timestamp t,
                       size_t *budget, size_t *bytes_left, size_t *removed)
{
    storage_engine *e = r->node->config.engine;
    base_buf end = {0}; /* owner: this function; key + 0x00 */
    storage_iter *it = NULL;
    int rc = base_buf_append(&end, key, key_len) == 0 && base_buf_append_byte(&end, 0) == 0
                 ? RANGE_OK : RANGE_ERR_NOMEM;
    storage_iter_options o = {.start = key, .start_len = key_len, .end = end.data,
                              .end_len = end.len, .mode = STORAGE_ITER_ALL_VERSIONS};
    if (rc == RANGE_OK && storage_iter_open(e, NULL, &o, &it) != STORAGE_OK)
        rc = RANGE_ERR_IO;
    bool kept = false; /* the newest version <= t seen */
    while (rc == RANGE_OK && *budget > 0 && *bytes_left >= key_len) {
        hlc_timestamp ts;
        bool tomb = false;
        int got = storage_iter_next(it, NULL, NULL, &ts, NULL, NULL, &tomb);
        if (got < 0)
            rc = map_storage(got);
        if (got <= 0)
            break;
        if (hlc_compare(ts, t) > 0)
            continue;
        bool drop = kept || tomb;
        kept = true;
        if (!drop)
            continue;
        if (storage_batch_remove_version(r->batch, key, key_len, ts) != STORAGE_OK) {
            rc = RANGE_ERR_NOMEM;
            break;
        }
        (*budget)--;
        *bytes_left -= key_len;
        (*removed)++;
    }
    storage_iter_close(it);
    base_buf_free(&end);
    return rc;
}

/* Check the version GC entry e against r's state; when it applies, put its
** writes into r->batch (gc->ok). RANGE_OK, or an error that stops the
** replica. */
static int mvcc_gc_prepare(range_replica *r, const raft_entry *e, replica_mvcc_gc *gc)
{
    base_buf ikey = {0}, ival = {0}; /* owner: this function */
    uint32_t n_keys = 0;
    memset(gc, 0, sizeof(*gc));
    gc->seen = true;
    if (replica__mvcc_gc_decode(e->data, e->len, &gc->threshold, &n_keys) != RANGE_OK) {
        BASE_ERROR("range", "r%llu: malformed version GC entry at index %llu skipped",
                   (unsigned long long)r->config.range_id, (unsigned long long)e->index);
        return RANGE_OK; /* same bytes everywhere: skipped everywhere */
    }
    /* frozen: R's threshold stays what MERGE reads (MERGES) */
    if (r->merge.frozen_merge_id != 0)
        return RANGE_OK;
    gc->next = r->merge;
    if (hlc_compare(gc->threshold, gc->next.mvcc_gc) > 0)
        gc->next.mvcc_gc = gc->threshold;
    /* raised before the batch that drops the versions (VERSION GC reads) */
    replica_mvcc_gc_raise(r, gc->next.mvcc_gc);
    int rc = put_merge_state(r->batch, r->config.range_id, &gc->next);
    size_t at = REPLICA_MVCC_GC_HEADER, budget = REPLICA_MVCC_GC_VERSIONS_MAX;
    size_t bytes_left = REPLICA_MVCC_GC_BATCH_BYTES_MAX;
    for (uint32_t i = 0; i < n_keys && rc == RANGE_OK && budget > 0; i++) {
        const uint8_t *key;
        size_t key_len;
        replica__mvcc_gc_key(e->data, &at, &key, &key_len);
        /* outside (a split since the proposal): not this range's to touch */
        if (!range_descriptor_contains(&r->desc, key, key_len))
            continue;
        /* an intent: its txn may abort, and keeping every version of the key
        ** is the simple rule (docs/txn.md 6.1) */
        rc = range__intent_key(key, key_len, &ikey);
        if (rc != RANGE_OK)
            break;
        int g = storage_get_raw(r->node->config.engine, ikey.data, ikey.len, &ival);
        if (g == STORAGE_OK)
            continue;
        if (g != STORAGE_NOT_FOUND) {
            rc = map_storage(g);
            break;
        }
        size_t before = gc->removed;
        rc = mvcc_gc_key(r, key, key_len, gc->threshold, &budget, &bytes_left, &gc->removed);
        gc->keys += gc->removed > before;
    }
    base_buf_free(&ikey);
    base_buf_free(&ival);
    if (rc == RANGE_OK)
        gc->ok = true;
    return rc;
}

/* The version GC entry's batch is written: r takes its threshold. */
static void mvcc_gc_finish(range_replica *r, replica_mvcc_gc *gc)
{
    if (!gc->ok) {
        BASE_INFO("range", "r%llu n%llu: version GC entry at index %llu refused (frozen, or "
                  "malformed)", (unsigned long long)r->config.range_id,
                  (unsigned long long)r->id, (unsigned long long)r->applied);
        replica_mvcc_gc_sync(r); /* undo a raise: nothing was dropped */
        return;
    }
    r->merge = gc->next;
    replica_mvcc_gc_sync(r);
    BASE_DEBUG("range", "r%llu n%llu: version GC at index %llu: threshold %lld, %zu versions "
               "of %zu keys dropped", (unsigned long long)r->config.range_id,
               (unsigned long long)r->id, (unsigned long long)r->applied,
               (long long)r->merge.mvcc_gc.wall_ns, gc->removed, gc->keys);
}

static int apply_entry(range_replica *r, const raft_entry *e)
{
    range_node *n = r->node;
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    uint8_t val[REPLICA_RECORD_SIZE];
    range_command cmd;
    range_write *writes = NULL;
    base_buf existing = {0};
    bool is_cmd = false, duplicate = false, sync = false;
    uint64_t truncate_to = 0;
    replica_split split;
    replica_conf conf;
    replica_merge_apply mg;
    replica_idem_gc gc;
    replica_mvcc_gc vgc;
    int rc = 0;

    memset(&gc, 0, sizeof(gc));
    memset(&vgc, 0, sizeof(vgc));
    memset(&split, 0, sizeof(split));
    memset(&conf, 0, sizeof(conf));
    memset(&mg, 0, sizeof(mg));
    assert(e->index == r->applied + 1);
    storage_batch_clear(r->batch);
    if (e->type == RAFT_ENTRY_NORMAL && e->len == REPLICA_TRUNCATE_SIZE &&
        e->data[0] == REPLICA_TRUNCATE_TAG) {
        /* Log truncation: nothing in the state machine changes. A replica
        ** already compacted past X, or whose entry X has another term (not
        ** possible for a committed X), keeps its log: compaction is local. */
        uint64_t x = replica__get_u64(e->data + 1), term = 0;
        raft_status st;
        raft_node_status(r->raft, &st);
        if (x < e->index && x > r->trunc_base)
            r->trunc_base = x; /* what the members do with their logs */
        if (x < e->index && x > st.snapshot_index && x > r->truncate_to &&
            raft_node_term_at(r->raft, x, &term) == RAFT_OK &&
            term == replica__get_u64(e->data + 9)) {
            truncate_to = x;
            sync = n->config.sync; /* the state machine through X durable first */
        }
    } else if (e->type == RAFT_ENTRY_NORMAL && e->len >= REPLICA_SPLIT_HEADER &&
               e->data[0] == REPLICA_SPLIT_TAG) {
        rc = split_prepare(r, e, &split);
        if (rc != RANGE_OK)
            goto cleanup;
    } else if (e->type == RAFT_ENTRY_NORMAL && e->len > 0 && is_merge_tag(e->data[0])) {
        rc = merge_prepare(r, e, &mg);
        if (rc != RANGE_OK)
            goto cleanup;
        if (mg.stall) {
            rc = REPLICA_APPLY_STALLED; /* nothing written: retried later */
            goto cleanup;
        }
        /* the right's log goes once this is written: durable first */
        sync = mg.ok && mg.tag == REPLICA_MERGE_TAG && n->config.sync;
    } else if (e->type == RAFT_ENTRY_NORMAL && e->len > 0 && e->data[0] == REPLICA_IDEM_GC_TAG) {
        rc = idem_gc_prepare(r, e, &gc);
        if (rc != RANGE_OK)
            goto cleanup;
    } else if (e->type == RAFT_ENTRY_NORMAL && e->len > 0 && e->data[0] == REPLICA_MVCC_GC_TAG) {
        rc = mvcc_gc_prepare(r, e, &vgc);
        if (rc != RANGE_OK)
            goto cleanup;
    } else if (e->type == RAFT_ENTRY_CONFIG) {
        rc = conf_prepare(r, e, &conf);
        if (rc != RANGE_OK)
            goto cleanup;
    } else if (e->type == RAFT_ENTRY_NORMAL && e->len > 0) {
        rc = range_command_decode(e->data, e->len, &cmd, &writes);
        if (rc == RANGE_ERR_NOMEM)
            goto cleanup;
        if (rc != RANGE_OK) {
            /* Same bytes on every replica: skipping is deterministic. */
            BASE_ERROR("range", "r%llu: undecodable command at index %llu skipped",
                       (unsigned long long)r->config.range_id, (unsigned long long)e->index);
            rc = 0;
        } else {
            is_cmd = true;
            size_t klen = replica__key(key, REPLICA_RECORDS_RANGE, 'c', cmd.txn_id, cmd.seq, 2);
            bool below_gc = idem_gc_applies_to(&cmd) &&
                            hlc_compare(cmd.commit_ts, r->merge.idem_gc) < 0;
            rc = below_gc ? STORAGE_NOT_FOUND : storage_get_raw(n->config.engine, key, klen,
                                                                &existing);
            if (below_gc) {
                /* IDEMPOTENCE GC: its record may be gone on some replica
                ** and not on another; refused alike on every one */
                BASE_INFO("range", "r%llu n%llu: command %llu/%llu at index %llu refused: its "
                          "timestamp %lld is below the idempotence GC threshold %lld",
                          (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                          (unsigned long long)cmd.txn_id, (unsigned long long)cmd.seq,
                          (unsigned long long)e->index, (long long)cmd.commit_ts.wall_ns,
                          (long long)r->merge.idem_gc.wall_ns);
                is_cmd = false;
            } else if (rc == STORAGE_OK) {
                /* only a record of an EARLIER entry makes this a re-proposal:
                ** one at this index or above was written by this range on a
                ** node further on and came here with a snapshot of another
                ** range (records are shared by the node's ranges); skipping
                ** on it would lose this entry's writes here alone */
                duplicate = existing.len < 8 ||
                            replica__get_u64(existing.data) < e->index + r->merge.lineage_offset;
            } else if (rc != STORAGE_NOT_FOUND) {
                rc = map_storage(rc);
                goto cleanup;
            }
            rc = 0;
            if (!duplicate && is_cmd && r->merge.frozen_merge_id != 0) {
                /* frozen for a merge: no effect, no record (MERGES) */
                BASE_INFO("range", "r%llu n%llu: command %llu/%llu at index %llu refused: the "
                          "range is frozen for merge %llu", (unsigned long long)r->config.range_id,
                          (unsigned long long)r->id, (unsigned long long)cmd.txn_id,
                          (unsigned long long)cmd.seq, (unsigned long long)e->index,
                          (unsigned long long)r->merge.frozen_merge_id);
                is_cmd = false;
            }
            for (size_t i = 0; i < cmd.write_count && !duplicate && is_cmd; i++) {
                if (range_descriptor_contains(&r->desc, cmd.writes[i].key, cmd.writes[i].key_len))
                    continue;
                /* evaluated against the shape before a split: refused */
                BASE_INFO("range", "r%llu n%llu: command %llu/%llu at index %llu writes outside "
                          "the range (generation %llu): refused",
                          (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                          (unsigned long long)cmd.txn_id, (unsigned long long)cmd.seq,
                          (unsigned long long)e->index, (unsigned long long)r->desc.generation);
                is_cmd = false;
            }
            if (!duplicate && is_cmd && cmd.raw_write_count > 0) {
                bool refused = false;
                rc = apply_raw_writes(r, &cmd, &refused);
                if (rc != 0)
                    goto cleanup;
                is_cmd = !refused;
            }
            if (!duplicate && is_cmd) {
                for (size_t i = 0; i < cmd.write_count && rc == 0; i++) {
                    const range_write *w = &cmd.writes[i];
                    if (w->tombstone)
                        rc = storage_batch_delete(r->batch, w->key, w->key_len, cmd.commit_ts);
                    else
                        rc = storage_batch_put(r->batch, w->key, w->key_len, cmd.commit_ts,
                                               w->value, w->value_len);
                }
                replica__put_u64(val, e->index + r->merge.lineage_offset); /* lineage seq */
                hlc_encode(cmd.commit_ts, val + 8);
                if (rc == 0)
                    rc = storage_batch_put_raw(r->batch, key, klen, val, REPLICA_RECORD_SIZE);
                if (rc != 0) {
                    rc = map_storage(rc);
                    goto cleanup;
                }
            }
        }
    }
    replica__put_u64(val, e->index);
    rc = storage_batch_put_raw(r->batch, key, replica__key(key, r->config.range_id, 'a', 0, 0, 0),
                               val, 8);
    if (rc == 0 && truncate_to != 0) {
        /* 't': the log may go up to here; a restart redoes a compaction that
        ** a crash cut short */
        replica__put_u64(val, truncate_to);
        rc = storage_batch_put_raw(r->batch, key,
                                   replica__key(key, r->config.range_id, 't', 0, 0, 0), val, 8);
    }
    /* Not synced: the entry is durable in the Raft log on a majority, and a
    ** lost apply is replayed from the log at restart (applied moves with it).
    ** A truncation's apply is synced: the log before it is about to go. */
    if (rc == 0)
        rc = storage_write(n->config.engine, r->batch, sync);
    if (rc != 0) {
        rc = map_storage(rc);
        goto cleanup;
    }
    r->applied = e->index;
    if (truncate_to != 0)
        r->truncate_to = truncate_to;
    if (split.ok) {
        split_finish(r, &split);
        resolve_waiters(r, e->index, true, REPLICA_SPLIT_TXN_ID, split.new_range_id);
    } else if (conf.ok) {
        conf_finish(r, &conf);
        resolve_waiters(r, e->index, true, REPLICA_CONF_TXN_ID, e->index);
    } else if (mg.tag != 0) {
        merge_finish(r, &mg);
        resolve_waiters(r, e->index, mg.ok, merge_txn_id(mg.tag), mg.merge_id);
    } else if (gc.seen) {
        idem_gc_finish(r, &gc);
        resolve_waiters(r, e->index, gc.ok, REPLICA_IDEM_GC_TXN_ID,
                        (uint64_t)gc.threshold.wall_ns);
    } else if (vgc.seen) {
        mvcc_gc_finish(r, &vgc);
        resolve_waiters(r, e->index, vgc.ok, REPLICA_MVCC_GC_TXN_ID,
                        (uint64_t)vgc.threshold.wall_ns);
    } else {
        if (n->config.observer != NULL && is_cmd)
            n->config.observer(n->config.observer_ctx, r->config.range_id, r->id, e->index,
                               cmd.txn_id, cmd.seq, duplicate);
        resolve_waiters(r, e->index, is_cmd, is_cmd ? cmd.txn_id : 0, is_cmd ? cmd.seq : 0);
    }
cleanup:
    storage_batch_clear(r->batch);
    base_buf_free(&existing);
    base_free(writes);
    range_descriptor_free(&split.left);
    range_descriptor_free(&split.right);
    range_descriptor_free(&conf.desc);
    range_descriptor_free(&mg.desc);
    return rc;
}

/* ---- the update loop -------------------------------------------------------- */

/* Keep what update u (with log seq log_seq, 0: durable already) may do
** only once its write and every earlier one are durable; with `all`, its
** messages to send now as well (hold_sends), ahead of the others. */
static void stash_persist(range_replica *r, const raft_update *u, uint64_t log_seq, bool all)
{
    range_node *n = r->node;
    replica_persist *rec;
    if (r->n_pending > 0) {
        rec = &r->pending[(r->pending_head + r->n_pending - 1) % REPLICA_PERSIST_PENDING_MAX];
        if (log_seq < rec->log_seq)
            log_seq = rec->log_seq; /* never overtake an older write */
    }
    if (r->n_pending > 0 && (u->persist_seq == 0 || r->n_pending == REPLICA_PERSIST_PENDING_MAX)) {
        /* ride on the newest record (full ring: merged; a later persist_seq
        ** covers the earlier one) */
        if (u->persist_seq != 0)
            rec->core_seq = u->persist_seq;
        rec->log_seq = log_seq;
    } else {
        rec = &r->pending[(r->pending_head + r->n_pending) % REPLICA_PERSIST_PENDING_MAX];
        r->n_pending++;
        rec->core_seq = u->persist_seq;
        rec->log_seq = log_seq;
        base_buf_reset(&rec->msgs);
    }
    if (all)
        stash_messages(n, r->config.range_id, u->messages, u->n_messages, &rec->msgs);
    stash_messages(n, r->config.range_id, u->messages_after_persist, u->n_messages_after_persist,
                   &rec->msgs);
    if (log_seq > n->sync_want) {
        n->sync_want = log_seq;
        pthread_cond_signal(&n->sync_cv);
    }
}

/* The truncation recorded by apply: compact the core, then the log store
** (the state machine through truncate_to is durable: its apply was synced).
** ev/u: the COMPACT step's update, to carry out next. */
static int replica_truncate(range_replica *r, raft_update *u)
{
    uint64_t x = r->truncate_to, term = 0;
    r->truncate_to = 0;
    raft_event ev = {.type = RAFT_EVENT_COMPACT, .compact_index = x};
    int rrc = raft_step(r->raft, &ev, u);
    if (rrc != RAFT_OK) {
        BASE_WARN("range", "r%llu n%llu: log truncation to %llu refused by raft: %s",
                  (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                  (unsigned long long)x, raft_strerror(rrc));
        return RANGE_OK; /* the log just stays longer */
    }
    if (raft_node_term_at(r->raft, x, &term) != RAFT_OK)
        return RANGE_OK;
    int rc = r->log->ops->compact(r->log, x, term);
    if (rc == RANGE_OK)
        r->node->purge_wanted = true;
    return rc;
}

static int replica_install(range_replica *r, const raft_snapshot *sn);
static bool replica_make_snapshot(range_replica *r, raft_update *u);

/* The budget counter of this hold (APPLY BUDGET): the pass's, else *local
** (one event outside a pass). */
static size_t *apply_budget(range_node *n, size_t *local)
{
    return n->pass_depth > 0 ? &n->pass_apply_bytes : local;
}

/* MERGES and APPLY BUDGET: a stalled or deferred apply goes on from the
** entries the core handed out already (they stay in its log: only this
** replica's applies and snapshots compact it), while *used is below the
** budget; with `progress`, at least one entry (a tick: every deferred
** replica moves). Node mutex held, outside any update of r. */
static void replica_apply_backlog(range_replica *r, size_t *used, bool progress)
{
    raft_status st;
    if ((!r->apply_stalled && !r->apply_deferred) || r->failed || r->raft == NULL)
        return;
    raft_node_status(r->raft, &st);
    uint64_t applied0 = r->applied;
    while (r->applied < st.applied) {
        if (*used >= REPLICA_APPLY_PASS_BYTES_MAX && !progress)
            goto still; /* deferred: the next event or tick */
        const raft_entry *e = raft_node_entry_at(r->raft, r->applied + 1);
        int rc = e == NULL ? RANGE_ERR_CORRUPT : apply_entry(r, e);
        if (rc == REPLICA_APPLY_STALLED) {
            r->apply_stalled = true; /* still, or again (logged once) */
            goto still;
        }
        if (rc != 0) {
            BASE_ERROR("range", "r%llu n%llu: apply of index %llu failed (%d); replica stopped",
                       (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                       (unsigned long long)(r->applied + 1), rc);
            r->failed = true;
            return;
        }
        *used += e->len;
        progress = false;
        if (r->apply_stalled) {
            r->apply_stalled = false;
            r->apply_deferred = true; /* until the backlog is empty */
            BASE_INFO("range", "r%llu n%llu: stalled apply resumed, applied %llu",
                      (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                      (unsigned long long)r->applied);
        }
    }
    r->apply_stalled = false;
    r->apply_deferred = false;
    serve_reads(r);
    return;
still:
    if (r->applied != applied0)
        serve_reads(r); /* barriers at or below the new applied index */
}

/* DRAINING: a pre-vote of a draining node's replica is not sent while
** another voter may still win an election (range_node_set_draining). */
static bool campaign_held(const range_replica *r, const raft_message *m)
{
    int election = r->config.election_ticks > 0 ? r->config.election_ticks : 10;
    return r->node->draining && m->type == RAFT_MSG_PRE_VOTE &&
           r->leaderless_ticks < (uint64_t)election * RANGE_DRAIN_CAMPAIGN_ELECTIONS;
}

/* Carry out update u (and the PERSISTED, COMPACT and SNAPSHOT steps it
** leads to). */
static void replica_process(range_replica *r, raft_update *u)
{
    range_node *n = r->node;
    size_t local_bytes = 0, *used = apply_budget(n, &local_bytes);
    for (int round = 0; round < REPLICA_UPDATE_ROUNDS_MAX; round++) {
        if (r->failed)
            return;
        uint64_t seq = u->persist_seq, log_seq = 0;
        if (u->snapshot_wanted)
            r->snapshot_wanted = true;
        if (seq != 0 && u->snapshot != NULL) {
            /* THE CONTRACT: hard state, then the snapshot, then entries */
            uint64_t entries_seq = 0;
            int rc = r->log->ops->save(r->log, u->hard_state_changed ? &u->hard_state : NULL,
                                       NULL, 0, &log_seq);
            if (rc == RANGE_OK)
                rc = replica_install(r, u->snapshot);
            if (rc == RANGE_OK && u->n_entries > 0)
                rc = r->log->ops->save(r->log, NULL, u->entries, u->n_entries, &entries_seq);
            if (entries_seq > log_seq)
                log_seq = entries_seq;
            if (rc != RANGE_OK) {
                BASE_ERROR("range", "r%llu n%llu: snapshot install at %llu failed (%d); replica "
                           "stopped", (unsigned long long)r->config.range_id,
                           (unsigned long long)r->id, (unsigned long long)u->snapshot->index, rc);
                r->failed = true;
                return;
            }
        } else if (seq != 0) {
            int rc = r->log->ops->save(r->log, u->hard_state_changed ? &u->hard_state : NULL,
                                       u->entries, u->n_entries, &log_seq);
            if (rc != RANGE_OK) {
                BASE_ERROR("range", "r%llu n%llu: raft log write failed (%d); replica stopped",
                           (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                           rc);
                r->failed = true;
                return;
            }
        }
        /* hold: writes of the core this one replaced are not durable yet,
        ** and this core takes them for durable (replica_reopen_locked) */
        bool hold = r->hold_sends && r->n_pending > 0;
        r->hold_sends = hold;
        for (size_t i = 0; i < u->n_messages && !hold; i++)
            if (!campaign_held(r, &u->messages[i]))
                node_send(n, r->config.range_id, &u->messages[i]);
        bool durable = log_seq == 0 && r->n_pending == 0;
        if (durable) {
            for (size_t i = 0; i < u->n_messages_after_persist; i++)
                node_send(n, r->config.range_id, &u->messages_after_persist[i]);
        } else if (seq != 0 || u->n_messages_after_persist > 0 || (hold && u->n_messages > 0)) {
            stash_persist(r, u, log_seq, hold);
        }
        /* stalled (MERGES) or deferred (APPLY BUDGET): older entries wait
        ** in the core and go first; these wait behind them. Only in a pass:
        ** a propose must not apply an older entry with its key, which would
        ** run the new waiter's callback inside the propose call */
        if (r->apply_deferred && !r->apply_stalled && n->pass_depth > 0)
            replica_apply_backlog(r, used, false);
        for (size_t i = 0; i < u->n_committed && !r->apply_stalled && !r->apply_deferred; i++) {
            if (u->committed[i].index <= r->applied)
                continue; /* the backlog just applied it (the core counts it handed out) */
            if (*used >= REPLICA_APPLY_PASS_BYTES_MAX) {
                r->apply_deferred = true; /* replica_apply_backlog goes on */
                break;
            }
            int rc = apply_entry(r, &u->committed[i]);
            *used += u->committed[i].len;
            if (rc == REPLICA_APPLY_STALLED) {
                r->apply_stalled = true;
                break;
            }
            if (rc != 0) {
                BASE_ERROR("range", "r%llu n%llu: apply of index %llu failed (%d); replica "
                           "stopped", (unsigned long long)r->config.range_id,
                           (unsigned long long)r->id,
                           (unsigned long long)u->committed[i].index, rc);
                r->failed = true;
                return;
            }
        }
        for (size_t i = 0; i < u->n_reads; i++) {
            const raft_read_state *rs = &u->reads[i];
            for (size_t j = 0; j < r->n_reads; j++) {
                if (r->reads[j].read_id != rs->read_id)
                    continue;
                if (rs->status == RAFT_READ_OK) {
                    r->reads[j].ready = true;
                    r->reads[j].index = rs->index;
                } else {
                    replica_read rd = r->reads[j];
                    r->reads[j] = r->reads[--r->n_reads];
                    rd.cb(rd.ctx, RANGE_ERR_NOT_LEADER);
                }
                break;
            }
        }
        serve_reads(r);
        if (seq != 0 && durable) {
            raft_event ev = {.type = RAFT_EVENT_PERSISTED, .persist_seq = seq};
            (void)raft_step(r->raft, &ev, u);
        } else if (r->truncate_to != 0) {
            int rc = replica_truncate(r, u);
            if (rc != RANGE_OK) {
                BASE_ERROR("range", "r%llu n%llu: raft log compaction failed (%d); replica "
                           "stopped", (unsigned long long)r->config.range_id,
                           (unsigned long long)r->id, rc);
                r->failed = true;
                return;
            }
        } else if (r->snapshot_wanted) {
            r->snapshot_wanted = false;
            if (!replica_make_snapshot(r, u))
                return; /* the core asks again while a follower waits */
        } else {
            return;
        }
    }
    /* The core produces no new persist work from PERSISTED alone, so this
    ** is a bug; the next event carries on safely anyway. */
    BASE_WARN("range", "r%llu: update rounds exhausted", (unsigned long long)r->config.range_id);
}

/* The log is durable up to log seq `durable`: send what waited for it and
** step PERSISTED with the newest covered persist_seq. Node mutex held. */
static void replica_log_durable(range_replica *r, uint64_t durable)
{
    uint64_t core_seq = 0;
    raft_update u;
    while (r->n_pending > 0 && !r->failed) {
        replica_persist *rec = &r->pending[r->pending_head];
        if (rec->log_seq > durable)
            break;
        node_send_stashed(r->node, &rec->msgs);
        if (rec->core_seq != 0)
            core_seq = rec->core_seq;
        base_buf_reset(&rec->msgs);
        r->pending_head = (r->pending_head + 1) % REPLICA_PERSIST_PENDING_MAX;
        r->n_pending--;
    }
    if (r->n_pending == 0)
        r->hold_sends = false;
    if (core_seq == 0 || r->failed)
        return;
    raft_event ev = {.type = RAFT_EVENT_PERSISTED, .persist_seq = core_seq};
    (void)raft_step(r->raft, &ev, &u);
    replica_process(r, &u);
}

static int replica_step(range_replica *r, const raft_event *ev, raft_update *u)
{
    int rc = raft_step(r->raft, ev, u);
    replica_process(r, u);
    return rc;
}

/* ---- replicas ---------------------------------------------------------------- */

static void replica_release(range_replica *r, int waiter_rc, int read_rc);

static void replica_free(range_replica *r)
{
    if (r == NULL)
        return;
    replica_release(r, RANGE_ERR_AMBIGUOUS, RANGE_ERR_UNAVAILABLE);
    base_free(r);
}

/* A fixed-size raw value `kind` of a range into out[0..size); *found false
** (out untouched) when absent; RANGE_ERR_CORRUPT when its size differs. */
static int load_fixed(storage_engine *e, uint64_t range_id, char kind, uint8_t *out, size_t size,
                      bool *found)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf buf = {0};
    int rc = storage_get_raw(e, key, replica__key(key, range_id, kind, 0, 0, 0), &buf);
    *found = false;
    if (rc == STORAGE_OK) {
        if (buf.len == size) {
            memcpy(out, buf.data, size);
            *found = true;
        } else {
            rc = RANGE_ERR_CORRUPT;
        }
    } else if (rc == STORAGE_NOT_FOUND) {
        rc = RANGE_OK;
    } else {
        rc = map_storage(rc);
    }
    base_buf_free(&buf);
    return rc;
}

/* A u64 of the state machine ('a': applied index, 't': truncation point);
** 0 when absent. */
static int load_applied(storage_engine *e, uint64_t range_id, char kind, uint64_t *applied)
{
    uint8_t v[8];
    bool found;
    int rc = load_fixed(e, range_id, kind, v, sizeof(v), &found);
    *applied = rc == RANGE_OK && found ? replica__get_u64(v) : 0;
    return rc;
}

/* The replica's descriptor into *out (zeroed first; owned by *out on
** RANGE_OK): the stored one, or, for a range new on this store, the one
** from the config (or [empty, +inf) over the peers), which is stored now. */
static int load_descriptor(range_node *n, const range_replica_config *config,
                           range_descriptor *out)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    size_t klen = replica__key(key, config->range_id, 'd', 0, 0, 0);
    base_buf buf = {0};       /* owner: this function */
    storage_batch *b = NULL;  /* owner: this function */
    int rc;

    memset(out, 0, sizeof(*out));
    rc = storage_get_raw(n->config.engine, key, klen, &buf);
    if (rc == STORAGE_OK) {
        rc = range_descriptor_decode(buf.data, buf.len, out);
        if (rc == RANGE_OK && out->range_id != config->range_id) {
            range_descriptor_free(out);
            rc = RANGE_ERR_CORRUPT;
        } else if (rc != RANGE_OK && rc != RANGE_ERR_NOMEM) {
            rc = RANGE_ERR_CORRUPT;
        }
        goto cleanup;
    }
    if (rc != STORAGE_NOT_FOUND) {
        rc = map_storage(rc);
        goto cleanup;
    }
    if (config->descriptor != NULL) {
        if (config->descriptor->range_id != config->range_id) {
            rc = RANGE_ERR_INVALID;
            goto cleanup;
        }
        rc = range_descriptor_copy(out, config->descriptor);
        if (rc != RANGE_OK)
            goto cleanup;
    } else {
        out->range_id = config->range_id;
        out->generation = 1;
        for (size_t i = 0; i < config->n_peers; i++)
            out->replicas[i] = config->peers[i];
        out->n_replicas = config->n_peers;
    }
    rc = range_descriptor_encode(out, &buf);
    if (rc != RANGE_OK)
        goto fail;
    rc = RANGE_ERR_NOMEM;
    b = storage_batch_new();
    if (b == NULL)
        goto fail;
    rc = storage_batch_put_raw(b, key, klen, buf.data, buf.len);
    if (rc != STORAGE_OK) {
        rc = map_storage(rc);
        goto fail;
    }
    /* the store's list of its ranges, in the same batch */
    rc = hosted_put(n, b, config->range_id);
    if (rc != RANGE_OK)
        goto fail;
    rc = storage_write(n->config.engine, b, n->config.sync);
    if (rc != STORAGE_OK) {
        rc = map_storage(rc);
        goto fail;
    }
    hosted_added(n, config->range_id);
    rc = RANGE_OK;
    goto cleanup;
fail:
    range_descriptor_free(out);
    memset(out, 0, sizeof(*out));
cleanup:
    storage_batch_free(b);
    base_buf_free(&buf);
    return rc;
}

/* The right-hand floor of a range made by a split ('w'; HLC_ZERO if none). */
static int load_floor(storage_engine *e, uint64_t range_id, hlc_timestamp *floor)
{
    uint8_t v[HLC_ENCODED_SIZE];
    bool found;
    int rc = load_fixed(e, range_id, 'w', v, sizeof(v), &found);
    *floor = rc == RANGE_OK && found ? hlc_decode(v) : HLC_ZERO;
    return rc;
}

/* ---- snapshots, removal, replicas made on demand ---------------------------------
** docs/range.md, "Replica changes and snapshots".
**   SNAPSHOTS: the core runs with lazy_snapshots. When a follower is behind
**     the leader's first index, the update says snapshot_wanted and the
**     leader encodes its state at its applied index (replica_make_snapshot,
**     node mutex held: no apply runs meanwhile), but only once it has applied
**     the latest configuration entry, so the snapshot's descriptor and
**     membership are those the receiver is a member of. A receiver checks
**     the whole snapshot before the core takes it (replica_snapshot_check:
**     CRC, lengths, range id, index, generation never backwards, and NO
**     OVERLAP: its span meets no other initialized replica here but one it
**     subsumes, so no two live replicas of a node ever share a key and a
**     left that missed a split never applies old writes over its right
**     side's newer state), then
**     installs it with the update's persist (replica_install): the hard state
**     first, then ONE storage batch holding the span's MVCC data (deleted,
**     then every version), the idempotence records, the descriptor, the
**     membership, the floor, the applied index and the snapshot point 's';
**     then the log store is cut to the snapshot ('s' redoes a lost cut).
**   ON DEMAND: a node without a replica of a range makes one (uninitialized:
**     no state, a core that knows no configuration, its hard state loaded)
**     from a (pre-)vote request, an APPEND or a heartbeat of a range that
**     has no tombstone here (as CockroachDB does: a voter that skipped the
**     split that made the range, or whose left replica went first, is
**     otherwise never made, and two such voters of four leave the range
**     without a leader for ever: test_range_sim_multi, seed 67), or from
**     the first chunk of a snapshot whose membership holds this node and
**     whose descriptor is newer than the range's tombstone here. It votes
**     with its persisted term and vote (the answer after the persist, as
**     any vote; an empty log acknowledges no entry, so it is in no commit
**     quorum), answers heartbeats (it is sticky like any follower), and
**     rejects APPENDs: every range's log starts at an initial point
**     (REPLICA_INITIAL_INDEX, or a split's index), so an empty log is always
**     behind and the leader sends a snapshot; or the split it missed
**     applies here and it becomes that replica (replica_reopen_locked).
**     Other messages for a range not hosted (a tombstone: APPENDs and
**     heartbeats) are answered as an empty log would (a rejection; a
**     heartbeat answer that proves nothing for leases or ReadIndex).
**   REMOVAL: a replica that applies a configuration without itself, or is
**     told so by a member of the range at a newer generation
**     (REPLICA_MSG_REMOVED), stops serving and, at the next reap (outside
**     the core's update), deletes its span's data (what other replicas here
**     do not cover), its per-range state and its log entries (the hard
**     state stays: its term and vote never go back), writes the tombstone
**     'z' = that generation and leaves the hosted list, in one synced batch.
**     The object stays (node->retired) until range_node_free: a server may
**     hold it; a replica of the range made here again reuses it. A leader
**     tells the nodes a configuration removed; a replica answers messages
**     from non-members of both its applied and its latest configuration
**     with that notice; a replica missing from its own latest configuration
**     (or a learner without a leader) asks every REPLICA_REMOVAL_CHECK_TICKS.
*/

#define REPLICA_SNAPSHOT_RETRY_TICKS 20    /* after a snapshot could not be made */
#define REPLICA_SNAPSHOT_EARLY_TICKS 5     /* between snapshots below the latest
                                              configuration entry */
#define REPLICA_REMOVAL_CHECK_TICKS 50     /* between "am I removed?" questions */
#define REPLICA_UNINIT_QUIET_TICKS 300     /* an uninitialized replica nobody talks to goes */
#define REPLICA_STALL_HANDOFF_TICKS 50     /* a leader stalled for good leads at most this long */

static int load_tombstone(storage_engine *e, uint64_t range_id, uint64_t *generation)
{
    uint8_t v[8];
    bool found;
    int rc = load_fixed(e, range_id, 'z', v, sizeof(v), &found);
    *generation = rc == RANGE_OK && found ? replica__get_u64(v) : 0;
    return rc;
}

/* 's': the newest installed snapshot point; index 0 when none. */
static int load_snapshot_point(storage_engine *e, uint64_t range_id, uint64_t *index,
                               uint64_t *term)
{
    uint8_t v[16];
    bool found;
    int rc = load_fixed(e, range_id, 's', v, sizeof(v), &found);
    *index = rc == RANGE_OK && found ? replica__get_u64(v) : 0;
    *term = rc == RANGE_OK && found ? replica__get_u64(v + 8) : 0;
    return rc;
}

/* Put the hosted list without range_id into b (hosted_removed once written). */
static int hosted_remove_put(range_node *n, storage_batch *b, uint64_t range_id)
{
    uint8_t buf[4 + RANGE_NODE_REPLICAS_MAX * 8];
    size_t count = 0;
    int rc = hosted_load_locked(n);
    if (rc != RANGE_OK || !hosted_has(n, range_id))
        return rc;
    for (size_t i = 0; i < n->n_hosted; i++)
        if (n->hosted[i] != range_id)
            replica__put_u64(buf + 4 + 8 * count++, n->hosted[i]);
    buf[0] = (uint8_t)(count >> 24);
    buf[1] = (uint8_t)(count >> 16);
    buf[2] = (uint8_t)(count >> 8);
    buf[3] = (uint8_t)count;
    rc = storage_batch_put_raw(b, (const uint8_t *)REPLICA_HOSTED_KEY, REPLICA_HOSTED_KEY_LEN,
                               buf, 4 + count * 8);
    return rc == STORAGE_OK ? RANGE_OK : map_storage(rc);
}

static void hosted_removed(range_node *n, uint64_t range_id)
{
    for (size_t i = 0; i < n->n_hosted; i++) {
        if (n->hosted[i] == range_id) {
            n->hosted[i] = n->hosted[--n->n_hosted];
            return;
        }
    }
}

/* raft_config.snapshot_check: the whole snapshot is well formed, of this
** range, at the index the core got, and not older than what r holds. */
static bool replica_snapshot_check(void *ctx, uint64_t index, const uint8_t *data, size_t len)
{
    range_replica *r = ctx;
    replica_snapshot_view v;
    int rc = replica__snapshot_decode(data, len, &v);
    bool ok = rc == RANGE_OK && v.range_id == r->config.range_id && v.index == index &&
              (!r->initialized || v.desc.generation >= r->desc.generation);
    /* NO OVERLAP (CockroachDB's rule): the span must not overlap another
    ** initialized replica here, of any generation, but one the install
    ** subsumes (merged away: replica_install). A newer one (the right side
    ** of a split, made by its own snapshot) would get this older data over
    ** its own (test_range_sim_multi, seed 999). An older one (the left,
    ** which missed the split) still applies its entries from before the
    ** split, whose writes and intents (by user key) in this span would
    ** clobber the snapshot's newer ones: an acknowledged write lost here
    ** (test_txn_sim, seed 412; test_range_server test_split_snapshot_stale_left).
    ** Refused: the leader sends again later, once the left applied the
    ** split (which makes this replica itself) or went. */
    uint64_t over = 0;
    for (size_t i = 0; ok && i < r->node->n_replicas; i++) {
        const range_replica *o = r->node->replicas[i];
        const range_descriptor *d = &o->desc;
        if (o == r || !o->initialized || o->merged || o->config.range_id == v.range_id)
            continue;
        bool before = d->end_len > 0 && range__key_cmp(d->end_key, d->end_len, v.desc.start_key,
                                                       v.desc.start_len) <= 0;
        bool after = v.desc.end_len > 0 && range__key_cmp(v.desc.end_key, v.desc.end_len,
                                                          d->start_key, d->start_len) <= 0;
        if (before || after)
            continue;
        /* the install's subsumption test, exactly */
        ok = !o->failed && o->remove_generation == 0 && d->generation < v.desc.generation &&
             range_descriptor_contains(&v.desc, d->start_key, d->start_len) &&
             !merge_left_pending(r->node, o, r);
        over = ok ? 0 : o->config.range_id;
    }
    if (!ok)
        BASE_WARN("range", "r%llu n%llu: snapshot at %llu (%zu bytes) refused (%d; overlaps "
                  "r%llu here)", (unsigned long long)r->config.range_id,
                  (unsigned long long)r->id, (unsigned long long)index, len, rc,
                  (unsigned long long)over);
    if (rc == RANGE_OK)
        replica__snapshot_view_free(&v);
    return ok;
}

/* The core's configuration for r: the bootstrap voters are config.peers
** (they count only for a log never compacted; an uninitialized replica has
** none: it learns them from its snapshot). */
static void replica_raft_config(const range_replica *r, raft_config *c)
{
    raft_config_default(c);
    c->id = r->id;
    for (size_t i = 0; i < r->config.n_peers; i++)
        c->voters[i] = r->config.peers[i];
    c->n_voters = r->config.n_peers;
    if (r->config.election_ticks > 0)
        c->election_ticks = r->config.election_ticks;
    if (r->config.heartbeat_ticks > 0)
        c->heartbeat_ticks = r->config.heartbeat_ticks;
    c->applied = r->applied;
    c->random_seed = r->config.random_seed ^ (r->id * 0x9e3779b97f4a7c15ULL);
    c->lazy_snapshots = true;
    c->snapshot_check = replica_snapshot_check;
    c->snapshot_check_ctx = (void *)r;
    c->snapshot_chunk_bytes = REPLICA_SNAPSHOT_CHUNK_BYTES;
}

/* Free what r owns but the struct itself (callbacks run: waiters
** `waiter_rc`, reads `read_rc`). */
static void replica_release(range_replica *r, int waiter_rc, int read_rc)
{
    while (r->n_waiters > 0) {
        replica_waiter w = r->waiters[--r->n_waiters];
        w.cb(w.ctx, waiter_rc);
    }
    while (r->n_reads > 0) {
        replica_read rd = r->reads[--r->n_reads];
        rd.cb(rd.ctx, read_rc);
    }
    raft_node_free(r->raft);
    r->raft = NULL;
    if (r->log != NULL)
        r->log->ops->free(r->log);
    r->log = NULL;
    for (size_t i = 0; i < REPLICA_PERSIST_PENDING_MAX; i++)
        base_buf_free(&r->pending[i].msgs); /* unsent: as if lost with a crash */
    r->n_pending = 0;
    storage_batch_free(r->batch);
    r->batch = NULL;
    range_descriptor_free(&r->desc);
    base_free(r->waiters);
    r->waiters = NULL;
    base_free(r->reads);
    r->reads = NULL;
}

/* Delete the MVCC versions of [s, e) (e_len 0: +inf) that no other
** initialized replica of the node covers (a replica that missed a split may
** be wider than what is its). Depth: the replicas overlapping the span. */
static int delete_span_uncovered(range_replica *r, const uint8_t *s, size_t s_len,
                                 const uint8_t *e, size_t e_len, int depth)
{
    range_node *n = r->node;
    if (e_len > 0 && range__key_cmp(s, s_len, e, e_len) >= 0)
        return RANGE_OK; /* empty */
    for (size_t i = 0; i < n->n_replicas && depth < RANGE_NODE_REPLICAS_MAX; i++) {
        const range_replica *o = n->replicas[i];
        const range_descriptor *d = &o->desc;
        if (o == r || !o->initialized)
            continue;
        bool before_end = e_len == 0 || range__key_cmp(d->start_key, d->start_len, e, e_len) < 0;
        bool after_start = d->end_len == 0 || range__key_cmp(s, s_len, d->end_key, d->end_len) < 0;
        if (!before_end || !after_start)
            continue;
        /* o covers [max(s, d.start), min(e, d.end)): delete around it */
        int rc = RANGE_OK;
        if (range__key_cmp(s, s_len, d->start_key, d->start_len) < 0)
            rc = delete_span_uncovered(r, s, s_len, d->start_key, d->start_len, depth + 1);
        if (rc == RANGE_OK && d->end_len > 0 &&
            (e_len == 0 || range__key_cmp(d->end_key, d->end_len, e, e_len) < 0))
            rc = delete_span_uncovered(r, d->end_key, d->end_len, e, e_len, depth + 1);
        return rc;
    }
    int rc = storage_batch_delete_range(r->batch, s, s_len, e_len > 0 ? e : NULL, e_len);
    if (rc != STORAGE_OK)
        return map_storage(rc);
    /* and the span's intents and transaction records (raw keys by user key) */
    return replica__raw_span_delete(r->node->config.engine, s, s_len, e, e_len, r->batch);
}

/* Delete the per-range raw state a replica keeps into r->batch. */
static int delete_range_state(range_replica *r)
{
    return delete_state_keys(r->batch, r->config.range_id);
}

/* REMOVAL: delete r's data and state, write the tombstone (generation != 0;
** 0: an uninitialized replica that never held anything goes quietly), move
** r to node->retired. Node mutex held, outside any update of r. */
static void replica_retire(range_replica *r, uint64_t generation)
{
    range_node *n = r->node;
    uint8_t key[REPLICA_KEY_SIZE_MAX], val[8];
    int rc = RANGE_OK;
    if (r->merged && !r->failed) {
        /* MERGES: its state went in the (synced) batch that merged it; its
        ** span is the merged range's now */
        if (r->log->ops->reset(r->log, 0, 0) != RANGE_OK)
            BASE_WARN("range", "r%llu n%llu: the merged replica's log entries stay",
                      (unsigned long long)r->config.range_id, (unsigned long long)r->id);
        n->purge_wanted = true;
        BASE_INFO("range", "r%llu n%llu: replica closed: merged into another range",
                  (unsigned long long)r->config.range_id, (unsigned long long)r->id);
    } else if (generation != 0 && !r->failed) {
        storage_batch_clear(r->batch);
        if (r->initialized)
            rc = delete_span_uncovered(r, r->desc.start_key, r->desc.start_len, r->desc.end_key,
                                       r->desc.end_len, 0);
        if (rc == RANGE_OK)
            rc = delete_range_state(r);
        replica__put_u64(val, generation);
        if (rc == RANGE_OK &&
            storage_batch_put_raw(r->batch, key,
                                  replica__key(key, r->config.range_id, 'z', 0, 0, 0), val,
                                  8) != STORAGE_OK)
            rc = RANGE_ERR_NOMEM;
        if (rc == RANGE_OK)
            rc = hosted_remove_put(n, r->batch, r->config.range_id);
        if (rc == RANGE_OK) {
            int src = storage_write(n->config.engine, r->batch, n->config.sync);
            rc = src == STORAGE_OK ? RANGE_OK : map_storage(src);
        }
        storage_batch_clear(r->batch);
        if (rc != RANGE_OK) {
            BASE_ERROR("range", "r%llu n%llu: removal could not delete the replica (%d); it "
                       "stays stopped", (unsigned long long)r->config.range_id,
                       (unsigned long long)r->id, rc);
            r->failed = true;
            return;
        }
        hosted_removed(n, r->config.range_id);
        /* the entries go; the hard state stays (term and vote never go back) */
        if (r->log->ops->reset(r->log, 0, 0) != RANGE_OK)
            BASE_WARN("range", "r%llu n%llu: the removed replica's log entries stay",
                      (unsigned long long)r->config.range_id, (unsigned long long)r->id);
        n->purge_wanted = true;
        BASE_INFO("range", "r%llu n%llu: replica removed at generation %llu: data deleted",
                  (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                  (unsigned long long)generation);
    }
    range_replica **grown = base_realloc(n->retired, (n->n_retired + 1) * sizeof(*n->retired));
    if (grown == NULL) {
        r->failed = true; /* stays in the list, stopped; freed with the node */
        return;
    }
    n->retired = grown;
    /* a merged range's waiters never apply (it refused everything since its
    ** freeze): their proposers go to the merged range */
    replica_release(r, r->merged ? RANGE_ERR_DROPPED : RANGE_ERR_AMBIGUOUS, RANGE_ERR_NOT_LEADER);
    r->retired = true;
    r->merged = false;
    r->initialized = false;
    replica_mvcc_gc_sync(r);
    r->remove_generation = 0;
    n->retired[n->n_retired++] = r;
    for (size_t i = 0; i < n->n_replicas; i++) {
        if (n->replicas[i] == r) {
            n->replicas[i] = n->replicas[--n->n_replicas];
            break;
        }
    }
}

/* Retire every replica whose removal is pending (node mutex held). */
static void node_reap_locked(range_node *n)
{
    size_t i = 0;
    while (i < n->n_replicas) {
        range_replica *r = n->replicas[i];
        if ((r->remove_generation == 0 && !r->discard) || r->failed) {
            i++;
            continue;
        }
        replica_retire(r, r->remove_generation); /* moves it out of replicas[] */
        if (i < n->n_replicas && n->replicas[i] == r)
            i++; /* could not move (memory): stopped */
    }
}

static void send_removed(range_node *n, uint64_t range_id, uint64_t to, uint64_t generation)
{
    raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = (raft_message_type)REPLICA_MSG_REMOVED;
    m.from = n->id;
    m.to = to;
    m.index = generation; /* 0: a question */
    node_send(n, range_id, &m);
}

/* Waiters of entries at or below a snapshot's index: theirs applied or not
** in the state the snapshot brought; the records say which for commands
** (OK or DROPPED), other entries are DROPPED (their proposers look again). */
static void settle_waiters_below(range_replica *r, uint64_t index)
{
    size_t i = 0;
    while (i < r->n_waiters) {
        replica_waiter w = r->waiters[i];
        if (w.index > index) {
            i++;
            continue;
        }
        bool found = false;
        hlc_timestamp ts;
        if (w.txn_id == REPLICA_FREEZE_TXN_ID) {
            found = r->merge.frozen_merge_id == w.seq; /* the state says it */
        } else if (w.txn_id == REPLICA_FENCE_TXN_ID) {
            for (uint32_t k = 0; k < r->merge.n_fences; k++)
                found = found || r->merge.fences[k] == w.seq;
        } else if (w.txn_id >= REPLICA_MVCC_GC_TXN_ID) {
            found = false; /* split, conf, merge, unfreeze, GC: the proposer looks again */
        } else if (replica__command_record(r, w.txn_id, w.seq, &found, &ts) != RANGE_OK) {
            found = false;
        }
        r->waiters[i] = r->waiters[--r->n_waiters];
        w.cb(w.ctx, found ? RANGE_OK : RANGE_ERR_DROPPED);
    }
}

/* SNAPSHOTS: install sn (part of its update's persist; the hard state is
** written before). RANGE_OK or an error that stops the replica. */
static int replica_install(range_replica *r, const raft_snapshot *sn)
{
    range_node *n = r->node;
    replica_snapshot_view v;
    uint8_t key[REPLICA_KEY_SIZE_MAX], val[16], fl[HLC_ENCODED_SIZE];
    base_buf enc = {0}; /* owner: this function */
    uint64_t gone[RANGE_NODE_REPLICAS_MAX];
    range_replica *gone_r[RANGE_NODE_REPLICAS_MAX];
    size_t n_gone = 0;
    int rc = replica__snapshot_decode(sn->data, sn->len, &v);
    if (rc != RANGE_OK)
        return rc; /* checked before the core took it: memory, or a bug */
    storage_batch_clear(r->batch);
    rc = replica__snapshot_install_batch(n->config.engine, &v, r->batch);
    /* The span this replica had and the snapshot's has not (splits it
    ** missed) is no one's here but another replica's: it goes (found by
    ** test_range_sim_multi, seed 12). */
    const range_descriptor *o = &r->desc;
    if (rc == RANGE_OK && r->initialized && v.desc.start_len > 0 &&
        range__key_cmp(o->start_key, o->start_len, v.desc.start_key, v.desc.start_len) < 0)
        rc = delete_span_uncovered(r, o->start_key, o->start_len, v.desc.start_key,
                                   v.desc.start_len, 0);
    if (rc == RANGE_OK && r->initialized && v.desc.end_len > 0 &&
        (o->end_len == 0 ||
         range__key_cmp(v.desc.end_key, v.desc.end_len, o->end_key, o->end_len) < 0))
        rc = delete_span_uncovered(r, v.desc.end_key, v.desc.end_len, o->end_key, o->end_len, 0);
    if (rc == RANGE_OK)
        rc = delete_range_state(r);
    if (rc == RANGE_OK)
        rc = put_merge_state(r->batch, v.range_id, &v.merge);
    /* MERGES: an older replica of another range whose start key the
    ** snapshot's span holds was merged away (a range's start key is its own
    ** for its whole life, and every range holding it later has a higher
    ** generation): it goes as a MERGE would drop it, its span being the
    ** snapshot's now */
    for (size_t i = 0; rc == RANGE_OK && i < n->n_replicas; i++) {
        range_replica *o = n->replicas[i];
        if (o == r || !o->initialized || o->retired || o->failed || o->remove_generation != 0 ||
            o->config.range_id == v.range_id || o->desc.generation >= v.desc.generation ||
            !range_descriptor_contains(&v.desc, o->desc.start_key, o->desc.start_len))
            continue;
        /* its left's replica here still has to apply the MERGE, which needs
        ** it (found by test_range_sim_multi: the snapshot of a range split
        ** off the merged one came first, and the left stalled for ever;
        ** replica_snapshot_check now refuses such a snapshot: a guard) */
        if (merge_left_pending(n, o, r))
            continue;
        rc = merged_drop_put(n, r->batch, o->config.range_id);
        gone_r[n_gone] = o;
        gone[n_gone++] = o->config.range_id;
    }
    replica__put_u64(val, v.index);
    if (rc == RANGE_OK &&
        storage_batch_put_raw(r->batch, key, replica__key(key, v.range_id, 'a', 0, 0, 0), val,
                              8) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    replica__put_u64(val + 8, sn->term);
    if (rc == RANGE_OK &&
        storage_batch_put_raw(r->batch, key, replica__key(key, v.range_id, 's', 0, 0, 0), val,
                              16) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    if (rc == RANGE_OK)
        rc = range_descriptor_encode(&v.desc, &enc);
    if (rc == RANGE_OK &&
        storage_batch_put_raw(r->batch, key, replica__key(key, v.range_id, 'd', 0, 0, 0),
                              enc.data, enc.len) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    if (rc == RANGE_OK)
        rc = put_membership(r->batch, v.range_id, &sn->membership);
    hlc_encode(v.floor, fl);
    if (rc == RANGE_OK && !hlc_is_zero(v.floor) &&
        storage_batch_put_raw(r->batch, key, replica__key(key, v.range_id, 'w', 0, 0, 0), fl,
                              sizeof(fl)) != STORAGE_OK)
        rc = RANGE_ERR_NOMEM;
    if (rc == RANGE_OK)
        rc = hosted_put_change(n, r->batch, v.range_id, gone, n_gone);
    if (rc == RANGE_OK) {
        /* the snapshot's state lacks what its threshold dropped: raised first */
        if (r->initialized && !r->retired)
            replica_mvcc_gc_raise(r, v.merge.mvcc_gc);
        int src = storage_write(n->config.engine, r->batch, n->config.sync);
        rc = src == STORAGE_OK ? RANGE_OK : map_storage(src);
    }
    storage_batch_clear(r->batch);
    base_buf_free(&enc);
    if (rc != RANGE_OK) {
        replica_mvcc_gc_sync(r);
        replica__snapshot_view_free(&v);
        return rc;
    }
    hosted_changed(n, v.range_id, gone, n_gone);
    for (size_t i = 0; i < n_gone; i++) {
        BASE_INFO("range", "r%llu n%llu: the snapshot of r%llu at generation %llu subsumes "
                  "it (merged)", (unsigned long long)gone[i], (unsigned long long)r->id,
                  (unsigned long long)v.range_id, (unsigned long long)v.desc.generation);
        merged_mark(gone_r[i]);
    }
    r->merge = v.merge;
    r->apply_stalled = false; /* the state is the snapshot's: what stalled is in it */
    r->apply_deferred = false;
    range_descriptor_free(&r->desc);
    r->desc = v.desc;
    memset(&v.desc, 0, sizeof(v.desc));
    r->membership = sn->membership;
    pthread_mutex_lock(&n->floor_mu);
    r->split_floor = v.floor;
    pthread_mutex_unlock(&n->floor_mu);
    r->applied = v.index;
    r->truncate_to = 0;
    r->trunc_base = 0; /* the members' logs may start anywhere below */
    r->initialized = true;
    replica_mvcc_gc_sync(r);
    r->quiet_ticks = 0;
    replica__snapshot_view_free(&v);
    /* the log store follows the core: its suffix after the snapshot, or none */
    rc = sn->keep_log ? r->log->ops->compact(r->log, sn->index, sn->term)
                      : r->log->ops->reset(r->log, sn->index, sn->term);
    if (rc != RANGE_OK)
        return rc;
    n->purge_wanted = true;
    BASE_INFO("range", "r%llu n%llu: snapshot installed at index %llu (%zu bytes, generation "
              "%llu)", (unsigned long long)r->config.range_id, (unsigned long long)r->id,
              (unsigned long long)sn->index, sn->len, (unsigned long long)r->desc.generation);
    settle_waiters_below(r, sn->index);
    if (!membership_has(&r->membership, r->id))
        r->remove_generation = r->desc.generation; /* a snapshot of a range without us */
    return RANGE_OK;
}

/* SNAPSHOTS: the core wants a snapshot for a follower (update u): encode the
** state at the applied index and step RAFT_EVENT_SNAPSHOT into *u. false:
** nothing stepped (a snapshot made or refused not long ago). While the
** latest configuration is not applied here, one is made only every
** REPLICA_SNAPSHOT_EARLY_TICKS: it names a member being added only once
** that entry applied (the core asks until one does), but a voter of both
** configurations may need it for the entry to commit at all. */
static bool replica_make_snapshot(range_replica *r, raft_update *u)
{
    range_node *n = r->node;
    raft_status st;
    raft_node_status(r->raft, &st);
    if (!r->initialized || r->remove_generation != 0 || r->tick < r->snapshot_retry_tick)
        return false;
    if (r->applied < st.conf_index)
        r->snapshot_retry_tick = r->tick + REPLICA_SNAPSHOT_EARLY_TICKS;
    base_buf_reset(&n->snap_buf);
    int rc = replica__snapshot_encode(n->config.engine, &r->desc, r->applied, r->split_floor,
                                      &r->merge, &n->snap_buf);
    if (rc != RANGE_OK) {
        if (rc == RANGE_ERR_TOO_LARGE)
            BASE_ERROR("range", "r%llu n%llu: the range's state at index %llu is above the "
                       "snapshot limit (%zu bytes or %llu versions): no snapshot can be sent; "
                       "split the range", (unsigned long long)r->config.range_id,
                       (unsigned long long)r->id, (unsigned long long)r->applied,
                       (size_t)REPLICA_SNAPSHOT_BYTES_MAX,
                       (unsigned long long)REPLICA_SNAPSHOT_OPS_MAX);
        else
            BASE_WARN("range", "r%llu n%llu: snapshot at %llu failed (%d)",
                      (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                      (unsigned long long)r->applied, rc);
        r->snapshot_retry_tick = r->tick + REPLICA_SNAPSHOT_RETRY_TICKS;
        return false;
    }
    raft_event ev = {.type = RAFT_EVENT_SNAPSHOT, .snapshot_index = r->applied,
                     .snapshot_data = n->snap_buf.data, .snapshot_len = n->snap_buf.len};
    int rrc = raft_step(r->raft, &ev, u); /* copied by the core */
    BASE_DEBUG("range", "r%llu n%llu: snapshot at %llu, %zu bytes: %s",
               (unsigned long long)r->config.range_id, (unsigned long long)r->id,
               (unsigned long long)r->applied, n->snap_buf.len, raft_strerror(rrc));
    if (rrc != RAFT_OK)
        r->snapshot_retry_tick = r->tick + REPLICA_SNAPSHOT_RETRY_TICKS;
    if (n->snap_buf.len > REPLICA_SNAPSHOT_CHUNK_BYTES)
        base_buf_free(&n->snap_buf); /* keep no big buffer around */
    return true;
}

/* Initialize the struct r (new, or a retired one being reused) for range
** config->range_id on n; everything else is opened by the caller. */
static int replica_init_struct(range_replica *r, range_node *n,
                               const range_replica_config *config)
{
    memset(r, 0, sizeof(*r));
    r->node = n;
    r->config = *config;
    r->config.descriptor = NULL; /* borrowed for the open call only; r->desc keeps it */
    if (r->config.proposal_timeout_ticks <= 0)
        r->config.proposal_timeout_ticks = REPLICA_DEFAULT_PROPOSAL_TIMEOUT_TICKS;
    if (r->config.log_truncate_entries == 0)
        r->config.log_truncate_entries = RANGE_LOG_TRUNCATE_ENTRIES;
    r->id = n->id;
    r->batch = storage_batch_new();
    return r->batch == NULL ? RANGE_ERR_NOMEM : RANGE_OK;
}

/* The struct for range_id: a retired one of it (taken out of the list:
** *reused), or a new one. NULL: no memory. */
static range_replica *replica_struct_for(range_node *n, uint64_t range_id, bool *reused)
{
    *reused = false;
    for (size_t i = 0; i < n->n_retired; i++) {
        if (n->retired[i]->config.range_id == range_id) {
            range_replica *r = n->retired[i];
            n->retired[i] = n->retired[--n->n_retired];
            *reused = true;
            return r;
        }
    }
    return base_calloc(1, sizeof(range_replica));
}

/* Put r back where replica_struct_for found it (an open that failed). */
static void replica_struct_back(range_node *n, range_replica *r, bool reused)
{
    if (r == NULL)
        return;
    replica_release(r, RANGE_ERR_AMBIGUOUS, RANGE_ERR_UNAVAILABLE);
    if (!reused) {
        base_free(r);
        return;
    }
    r->initialized = false;
    r->retired = true;
    replica_mvcc_gc_sync(r);
    n->retired[n->n_retired++] = r; /* its slot is still allocated */
}

/* The log store of r (shared or raw, by the node's layout). */
static int replica_open_log(range_replica *r)
{
    range_node *n = r->node;
    bool raw_exists = false;
    if (n->config.log == NULL)
        return replica__log_raw_open(n->config.engine, r->config.range_id, n->config.sync,
                                     &r->log);
    /* A store keeps the layout it was created with (range.h). */
    int rc = replica__log_raw_exists(n->config.engine, r->config.range_id, &raw_exists);
    if (rc != RANGE_OK)
        return rc;
    if (raw_exists) {
        BASE_ERROR("range", "r%llu n%llu: this store keeps the range's Raft log in the "
                   "storage engine (the layout before the shared Raft log); it cannot be "
                   "opened over a shared log: use the version that created it, or a new "
                   "store", (unsigned long long)r->config.range_id, (unsigned long long)n->id);
        return RANGE_ERR_CORRUPT;
    }
    return replica__log_shared_open(n->config.log, r->config.range_id, n->config.sync, &r->log);
}

/* ON DEMAND: an uninitialized replica of range_id (node mutex held). */
static int node_create_uninit_locked(range_node *n, uint64_t range_id, range_replica **out)
{
    replica_log_state ls = {0}; /* owner: this function */
    range_replica *r = NULL;    /* owner: this function until listed */
    raft_config rcfg;
    bool reused = false;
    int rc = RANGE_ERR_BUSY;
    *out = NULL;
    if (n->n_replicas >= RANGE_NODE_REPLICAS_MAX)
        return rc;
    range_replica **grown = base_realloc(n->replicas, (n->n_replicas + 1) * sizeof(*n->replicas));
    if (grown == NULL)
        return RANGE_ERR_NOMEM;
    n->replicas = grown;
    r = replica_struct_for(n, range_id, &reused);
    if (r == NULL)
        return RANGE_ERR_NOMEM;
    range_replica_config cfg = n->defaults;
    cfg.range_id = range_id;
    cfg.n_peers = 0;
    cfg.descriptor = NULL;
    cfg.random_seed = n->defaults.random_seed ^ (range_id * 0xbf58476d1ce4e5b9ULL);
    rc = replica_init_struct(r, n, &cfg);
    if (rc == RANGE_OK)
        rc = replica_open_log(r);
    if (rc == RANGE_OK)
        rc = r->log->ops->load(r->log, &ls);
    if (rc == RANGE_OK && ls.n_entries > 0)
        rc = r->log->ops->reset(r->log, 0, 0); /* nothing of an older life is used */
    if (rc != RANGE_OK)
        goto fail;
    r->desc.range_id = range_id; /* generation 0: any snapshot is newer */
    replica_raft_config(r, &rcfg);
    int rrc = raft_node_restore(&rcfg, ls.has_hard_state ? &ls.hard_state : NULL, NULL, NULL, 0,
                                &r->raft);
    if (rrc != RAFT_OK) {
        rc = rrc == RAFT_ERR_NOMEM ? RANGE_ERR_NOMEM : RANGE_ERR_CORRUPT;
        goto fail;
    }
    n->replicas[n->n_replicas++] = r;
    BASE_INFO("range", "r%llu n%llu: replica made on demand (its state comes by snapshot)",
              (unsigned long long)range_id, (unsigned long long)n->id);
    replica__log_state_free(&ls);
    *out = r;
    return RANGE_OK;
fail:
    replica__log_state_free(&ls);
    replica_struct_back(n, r, reused);
    return rc;
}

/* ON DEMAND: the replica a message for an unhosted range makes, or NULL
** (dropped, see the rules above). */
static range_replica *node_replica_on_demand_locked(range_node *n, const range_raft_msg *dm)
{
    const raft_message *m = &dm->msg;
    raft_membership conf;
    range_descriptor d;
    uint64_t rid = 0, index = 0, tomb = 0;
    range_replica *r = NULL;
    if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE || m->type == RAFT_MSG_APPEND ||
        m->type == RAFT_MSG_HEARTBEAT) {
        /* a range never removed from this store: its voters may be here
        ** only this way (they skipped the split that made it) */
        if (load_tombstone(n->config.engine, dm->range_id, &tomb) != RANGE_OK || tomb != 0)
            return NULL;
        int rc = node_create_uninit_locked(n, dm->range_id, &r);
        if (rc != RANGE_OK)
            BASE_WARN("range", "n%llu: no replica of r%llu made on demand (%d)",
                      (unsigned long long)n->id, (unsigned long long)dm->range_id, rc);
        return r;
    }
    if (m->type != RAFT_MSG_SNAPSHOT || m->seq != 0 || m->len == 0)
        return NULL;
    int hdr = raft_membership_decode(m->data, m->len, &conf);
    if (hdr < 0 || !membership_has(&conf, n->id))
        return NULL;
    if (replica__snapshot_peek(m->data + hdr, m->len - (size_t)hdr, &rid, &index, &d) !=
        RANGE_OK)
        return NULL;
    uint64_t generation = d.generation;
    range_descriptor_free(&d);
    if (rid != dm->range_id || index != m->index ||
        load_tombstone(n->config.engine, rid, &tomb) != RANGE_OK)
        return NULL;
    if (tomb >= generation) {
        BASE_INFO("range", "n%llu: snapshot of r%llu at generation %llu ignored: removed here "
                  "at generation %llu", (unsigned long long)n->id, (unsigned long long)rid,
                  (unsigned long long)generation, (unsigned long long)tomb);
        return NULL;
    }
    int rc = node_create_uninit_locked(n, rid, &r);
    if (rc == RANGE_OK)
        r->desc.generation = generation; /* made from it: no older notice removes it */
    if (rc != RANGE_OK)
        BASE_WARN("range", "n%llu: no replica of r%llu made on demand (%d)",
                  (unsigned long long)n->id, (unsigned long long)rid, rc);
    return r;
}

/* ON DEMAND: answer a leader's APPEND or heartbeat for a range not hosted
** here as an empty log would: the leader then sends a snapshot; and a
** snapshot chunk past the first (a replica made on demand lost meanwhile,
** e.g. by a restart) with "start over". */
static void answer_unhosted(range_node *n, const range_raft_msg *dm)
{
    const raft_message *m = &dm->msg;
    raft_message a;
    uint64_t tomb = 0;
    /* MERGES: the range merged away here, so everywhere: a replica of it
    ** still talking (a member removed before the merge that never learned
    ** it, whose peers are all gone) is told so (handle_removed_msg) */
    if (m->type != RAFT_MSG_SNAPSHOT_RESP && m->type != RAFT_MSG_APPEND_RESP &&
        load_tombstone(n->config.engine, dm->range_id, &tomb) == RANGE_OK &&
        tomb == REPLICA_MERGED_TOMBSTONE) {
        send_removed(n, dm->range_id, m->from, REPLICA_MERGED_TOMBSTONE);
        return;
    }
    if (m->type != RAFT_MSG_APPEND && m->type != RAFT_MSG_HEARTBEAT &&
        !(m->type == RAFT_MSG_SNAPSHOT && m->seq > 0))
        return;
    memset(&a, 0, sizeof(a));
    a.from = n->id;
    a.to = m->from;
    a.term = m->term;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        a.type = RAFT_MSG_SNAPSHOT_RESP;
        a.index = m->index;
        a.log_term = m->log_term; /* hint_index 0: from the first byte */
    } else if (m->type == RAFT_MSG_APPEND) {
        a.type = RAFT_MSG_APPEND_RESP;
        a.reject = true;
        a.index = m->index; /* hint 0, term 0: nothing here */
    } else {
        a.type = RAFT_MSG_HEARTBEAT_RESP; /* seq 0: no lease, no ReadIndex round */
    }
    node_send(n, dm->range_id, &a);
}

/* REMOVAL: r's log holds, not applied yet, a configuration that has r and
** is newer than `generation` (its generation estimated from above: the
** applied one plus every configuration entry and split trigger up to it),
** so r was added again since and may count for its quorums: not removed. */
static bool config_pending_with_self(range_replica *r, uint64_t generation)
{
    raft_membership latest;
    raft_status st;
    raft_node_membership(r->raft, &latest);
    raft_node_status(r->raft, &st);
    if (!membership_has(&latest, r->id) || st.conf_index <= r->applied)
        return false;
    uint64_t estimate = r->desc.generation;
    for (uint64_t i = r->applied + 1; i <= st.conf_index; i++) {
        const raft_entry *e = raft_node_entry_at(r->raft, i);
        if (e != NULL && (e->type == RAFT_ENTRY_CONFIG ||
                          (e->type == RAFT_ENTRY_NORMAL && e->len >= REPLICA_SPLIT_HEADER &&
                           (e->data[0] == REPLICA_SPLIT_TAG || e->data[0] == REPLICA_MERGE_TAG)) ||
                          (e->type == RAFT_ENTRY_NORMAL && e->len > 0 &&
                           e->data[0] == REPLICA_UNFREEZE_TAG)))
            estimate++;
    }
    return estimate > generation;
}

/* REMOVAL: a REPLICA_MSG_REMOVED for range_id from `from`. */
static void handle_removed_msg(range_node *n, uint64_t range_id, uint64_t from,
                               uint64_t generation)
{
    range_replica *r = NULL;
    for (size_t i = 0; i < n->n_replicas && r == NULL; i++)
        if (n->replicas[i]->config.range_id == range_id)
            r = n->replicas[i];
    if (r == NULL || r->failed || r->remove_generation != 0)
        return;
    if (generation == 0) { /* a question: is `from` still a member? */
        raft_membership latest;
        if (!r->initialized)
            return;
        raft_node_membership(r->raft, &latest);
        if (!membership_has(&r->membership, from) && !membership_has(&latest, from))
            send_removed(n, range_id, from, r->desc.generation);
        return;
    }
    if (r->desc.generation >= generation)
        return; /* we know a newer configuration (or were made from one): stale news */
    /* merged away elsewhere: a frozen replica goes with its left's MERGE
    ** (or a snapshot of it) here, unless no replica of the left is here */
    if (generation == REPLICA_MERGED_TOMBSTONE && merge_left_pending(n, r, NULL))
        return;
    if (r->initialized && config_pending_with_self(r, generation))
        return; /* added again since: a configuration with us is on its way */
    BASE_INFO("range", "r%llu n%llu: n%llu says this replica was removed at generation %llu",
              (unsigned long long)range_id, (unsigned long long)n->id, (unsigned long long)from,
              (unsigned long long)generation);
    r->remove_generation = generation;
}

/* REMOVAL: r (initialized) got a Raft message from a node that is a member
** of neither its applied nor its latest configuration: tell it. */
static void maybe_tell_removed(range_replica *r, uint64_t from)
{
    raft_membership latest;
    if (!r->initialized || r->remove_generation != 0 || membership_has(&r->membership, from))
        return;
    raft_node_membership(r->raft, &latest);
    if (!membership_has(&latest, from))
        send_removed(r->node, r->config.range_id, from, r->desc.generation);
}

/* REMOVAL: not a member of its own latest configuration, or a learner:
** ask the members now and then. */
static void maybe_ask_removed(range_replica *r)
{
    raft_membership latest;
    if (!r->initialized || r->remove_generation != 0 || r->tick < r->removal_check_tick)
        return;
    r->removal_check_tick = r->tick + REPLICA_REMOVAL_CHECK_TICKS;
    raft_node_membership(r->raft, &latest);
    bool member = membership_has(&latest, r->id);
    /* A learner asks even while it knows a leader: one removed in that
    ** leader's term keeps believing in it, and neither campaigns nor hears
    ** anything again (found by test_range_sim_multi, seed 2860). */
    if (member && !raft_membership_is_learner(&latest, r->id))
        return;
    for (size_t i = 0; i < latest.n_voters + latest.n_learners; i++) {
        uint64_t id = i < latest.n_voters ? latest.voters[i] : latest.learners[i - latest.n_voters];
        if (id != r->id)
            send_removed(r->node, r->config.range_id, id, 0);
    }
}

/* A range removed from this store opened by its owner (server/ opens its
** bootstrap ranges by id): RANGE_OK with a retired replica that answers
** "not leader" to everything; nothing is made again. */
static int replica_open_retired(range_node *n, const range_replica_config *config,
                                uint64_t generation, range_replica **out)
{
    bool reused = false;
    range_replica *r = NULL;
    for (size_t i = 0; i < n->n_retired && r == NULL; i++)
        if (n->retired[i]->config.range_id == config->range_id)
            r = n->retired[i];
    if (r == NULL) {
        range_replica **grown =
            base_realloc(n->retired, (n->n_retired + 1) * sizeof(*n->retired));
        if (grown == NULL)
            return RANGE_ERR_NOMEM;
        n->retired = grown;
        r = replica_struct_for(n, config->range_id, &reused);
        if (r == NULL)
            return RANGE_ERR_NOMEM;
        int rc = replica_init_struct(r, n, config);
        replica_release(r, RANGE_ERR_AMBIGUOUS, RANGE_ERR_UNAVAILABLE); /* nothing held */
        if (rc != RANGE_OK) {
            base_free(r);
            return rc;
        }
        r->retired = true;
        replica_mvcc_gc_sync(r);
        r->desc.range_id = config->range_id;
        n->retired[n->n_retired++] = r;
    }
    BASE_WARN("range", "r%llu n%llu: removed from this store at generation %llu: not opened",
              (unsigned long long)config->range_id, (unsigned long long)n->id,
              (unsigned long long)generation);
    if (out != NULL)
        *out = r;
    return RANGE_OK;
}

/* Bring a range's stored log in line with its state machine before the core
** is made from it (node_open_locked): a new range's initial point (written
** log first: a crash between is seen and finished here), and the cut of an
** installed snapshot ('s') a crash lost, with a hard state at least of the
** snapshot's term. The initial point is REPLICA_INITIAL_INDEX for a range
** created on this store, or the applied index a split wrote with the
** range ('a': the split's index); a hard state already there (the term and
** vote of an uninitialized replica of the range, made here on demand) is
** kept, its term raised to REPLICA_INITIAL_TERM. *unled: the log was set at
** its initial point over no hard state at all, so this replica never
** acknowledged a leader of the range (raft_config.initial_term). *ls is
** reloaded when anything changed. */
static int open_fix_log(range_replica *r, replica_log_state *ls, uint64_t snap_index,
                        uint64_t snap_term, bool *unled)
{
    storage_engine *e = r->node->config.engine;
    uint8_t key[REPLICA_KEY_SIZE_MAX], val[8];
    uint64_t seq = 0;
    bool changed = false, fresh = ls->n_entries == 0 && ls->compact_index == 0;
    int rc = RANGE_OK;
    *unled = false;
    if (fresh && snap_index == 0) {
        uint64_t initial = r->applied != 0 ? r->applied : REPLICA_INITIAL_INDEX;
        raft_hard_state hs = {.term = REPLICA_INITIAL_TERM, .commit = initial};
        if (ls->has_hard_state && ls->hard_state.term >= REPLICA_INITIAL_TERM) {
            hs.term = ls->hard_state.term; /* term and vote never go back */
            hs.vote = ls->hard_state.vote;
        }
        *unled = !ls->has_hard_state;
        rc = r->log->ops->save(r->log, &hs, NULL, 0, &seq);
        if (rc == RANGE_OK)
            rc = r->log->ops->reset(r->log, initial, REPLICA_INITIAL_TERM);
        changed = true;
    } else if (snap_index > ls->compact_index) {
        const raft_entry *at = snap_index <= ls->compact_index + ls->n_entries
                                   ? &ls->entries[snap_index - ls->compact_index - 1]
                                   : NULL;
        rc = at != NULL && at->term == snap_term
                 ? r->log->ops->compact(r->log, snap_index, snap_term)
                 : r->log->ops->reset(r->log, snap_index, snap_term);
        changed = true;
    }
    if (rc == RANGE_OK && snap_index > 0 &&
        (!ls->has_hard_state || ls->hard_state.term < snap_term)) {
        /* the snapshot was durable before its hard state: a term no lower */
        raft_hard_state hs = {.term = snap_term, .commit = snap_index};
        rc = r->log->ops->save(r->log, &hs, NULL, 0, &seq);
        changed = true;
    }
    if (rc == RANGE_OK && r->applied == 0 && snap_index == 0 &&
        (fresh || (ls->compact_index == REPLICA_INITIAL_INDEX && ls->n_entries == 0))) {
        /* the initial state is the state at the initial point */
        storage_batch_clear(r->batch);
        replica__put_u64(val, REPLICA_INITIAL_INDEX);
        int src = storage_batch_put_raw(r->batch, key,
                                        replica__key(key, r->config.range_id, 'a', 0, 0, 0),
                                        val, 8);
        if (src == STORAGE_OK)
            src = storage_write(e, r->batch, r->node->config.sync);
        storage_batch_clear(r->batch);
        rc = src == STORAGE_OK ? RANGE_OK : map_storage(src);
        if (rc == RANGE_OK)
            r->applied = REPLICA_INITIAL_INDEX;
    }
    if (rc == RANGE_OK && changed) {
        replica__log_state_free(ls);
        rc = r->log->ops->load(r->log, ls);
    }
    return rc;
}

static bool config_ok(const range_node *n, const range_replica_config *config)
{
    bool self_in = false;
    if (config == NULL || config->range_id == 0 || config->n_peers == 0 ||
        config->n_peers > RANGE_REPLICAS_MAX || config->n_peers > RAFT_MAX_VOTERS)
        return false;
    for (size_t i = 0; i < config->n_peers; i++)
        if (config->peers[i] == n->id)
            self_in = true;
    return self_in;
}

/* ON DEMAND: replicas made on demand take the tuning of the owner's last
** open call. */
static void node_remember_defaults(range_node *n, const range_replica_config *config)
{
    n->defaults = *config;
    n->defaults.descriptor = NULL;
    n->defaults.n_peers = 0;
}

int range_node_add_replica(range_node *n, const range_replica_config *config,
                           range_replica **out)
{
    if (n == NULL || !config_ok(n, config))
        return RANGE_ERR_INVALID;
    pthread_mutex_lock(&n->mu);
    node_remember_defaults(n, config);
    int rc = node_open_locked(n, config, out);
    pthread_mutex_unlock(&n->mu);
    return rc;
}

/* Open r's log, state and core for config (r set up by replica_init_struct).
** On error r holds whatever was opened so far: the caller releases it. */
static int replica_open_state(range_replica *r, const range_replica_config *config)
{
    range_node *n = r->node;
    replica_log_state ls = {0}; /* owner: this function */
    uint64_t truncated_to = 0, snap_index = 0, snap_term = 0;
    bool found_m = false, unled = false;
    raft_config rc_cfg;
    int rc = replica_open_log(r);
    if (rc == RANGE_OK)
        rc = r->log->ops->load(r->log, &ls);
    if (rc == RANGE_OK)
        rc = load_applied(n->config.engine, config->range_id, 'a', &r->applied);
    if (rc == RANGE_OK)
        rc = load_applied(n->config.engine, config->range_id, 't', &truncated_to);
    if (rc == RANGE_OK)
        rc = load_descriptor(n, config, &r->desc);
    if (rc == RANGE_OK)
        rc = load_floor(n->config.engine, config->range_id, &r->split_floor);
    if (rc == RANGE_OK)
        rc = load_merge_state(n->config.engine, config->range_id, &r->merge);
    if (rc == RANGE_OK)
        rc = load_membership(n->config.engine, config->range_id, &r->membership, &found_m);
    if (rc == RANGE_OK)
        rc = load_snapshot_point(n->config.engine, config->range_id, &snap_index, &snap_term);
    if (rc != RANGE_OK)
        goto cleanup;
    if (!found_m)
        membership_of_desc(&r->desc, &r->membership);
    rc = open_fix_log(r, &ls, snap_index, snap_term, &unled);
    if (rc != RANGE_OK)
        goto cleanup;
    if (r->applied > ls.compact_index + ls.n_entries || r->applied < ls.compact_index ||
        (ls.compact_index > 0 && !ls.has_hard_state)) {
        /* applied beyond the log, or the log truncated past what the state
        ** machine holds (its truncation apply was synced first: lost data) */
        BASE_ERROR("range", "r%llu n%llu: applied index %llu outside the stored log (%llu, "
                   "%llu]", (unsigned long long)config->range_id, (unsigned long long)n->id,
                   (unsigned long long)r->applied, (unsigned long long)ls.compact_index,
                   (unsigned long long)(ls.compact_index + ls.n_entries));
        rc = RANGE_ERR_CORRUPT;
        goto cleanup;
    }
    r->initialized = true;
    replica_mvcc_gc_sync(r);
    replica_raft_config(r, &rc_cfg);
    /* A range starts at its initial point with no leader: a replica that
    ** never held a term above it is in nobody's lease and votes at once, so
    ** a range made by a split elects its first leader without waiting out
    ** leader stickiness (it used to take an election timeout or two). Only
    ** for a log set up just now over no hard state: a replica at that term
    ** after a restart may be of a range of an older version (log from index
    ** 1), whose leaders had lower terms. */
    if (unled)
        rc_cfg.initial_term = REPLICA_INITIAL_TERM;
    /* the membership at the compaction point: the applied one serves (a
    ** configuration entry between them is in the log and wins; it is
    ** committed, so no truncation ever falls back to this one) */
    raft_snapshot snap = {.index = ls.compact_index, .term = ls.compact_term,
                          .membership = r->membership};
    int rrc = raft_node_restore(&rc_cfg, ls.has_hard_state ? &ls.hard_state : NULL,
                                ls.compact_index > 0 ? &snap : NULL, ls.entries, ls.n_entries,
                                &r->raft);
    if (rrc != RAFT_OK) {
        BASE_ERROR("range", "r%llu n%llu: raft_node_new: %s",
                   (unsigned long long)config->range_id, (unsigned long long)n->id,
                   raft_strerror(rrc));
        rc = rrc == RAFT_ERR_NOMEM ? RANGE_ERR_NOMEM : RANGE_ERR_CORRUPT;
        goto cleanup;
    }
    if (truncated_to > ls.compact_index && truncated_to <= r->applied)
        r->truncate_to = truncated_to; /* applied, not carried out: at the next event */
    /* what the members keep: from the newest truncation, or, before any
    ** and without a snapshot, from the initial point every member started
    ** at (else a range made at a split index far above 0 would look like a
    ** long log and be truncated at once, sending snapshots to members
    ** still applying the split) */
    r->trunc_base = truncated_to != 0 || snap_index != 0 ? truncated_to : ls.compact_index;
    rc = RANGE_OK;
cleanup:
    replica__log_state_free(&ls);
    return rc;
}

/* ON DEMAND: r, an uninitialized replica, becomes the range's replica from
** its stored state for config (a split applied here, or the owner opens the
** range), in place: its slot in n->replicas and its object stay, and so do
** the term and vote its core persisted (loaded with the log). Its core's
** writes that are not durable yet stay queued ahead of the new core's, and
** nothing the new core says leaves before them (hold_sends): it takes what
** it loads for durable. On error r stays listed, stopped (failed, no core):
** the range opens at the next restart. Node mutex held. */
static int replica_reopen_locked(range_replica *r, const range_replica_config *config)
{
    range_node *n = r->node;
    replica_persist ring[REPLICA_PERSIST_PENDING_MAX];
    size_t head = r->pending_head, count = r->n_pending;
    memcpy(ring, r->pending, sizeof(ring)); /* the message buffers move with it */
    memset(r->pending, 0, sizeof(r->pending));
    r->n_pending = 0;
    replica_release(r, RANGE_ERR_AMBIGUOUS, RANGE_ERR_UNAVAILABLE); /* it served nothing */
    int rc = replica_init_struct(r, n, config);
    memcpy(r->pending, ring, sizeof(ring));
    r->pending_head = head;
    r->n_pending = count;
    for (size_t i = 0; i < REPLICA_PERSIST_PENDING_MAX; i++)
        r->pending[i].core_seq = 0; /* the old core's sequence numbers */
    r->hold_sends = count > 0;
    if (rc == RANGE_OK)
        rc = replica_open_state(r, config);
    if (rc != RANGE_OK) {
        BASE_ERROR("range", "r%llu n%llu: the replica made on demand cannot become the "
                   "range's (%d); it opens at the next restart",
                   (unsigned long long)config->range_id, (unsigned long long)n->id, rc);
        replica_release(r, RANGE_ERR_AMBIGUOUS, RANGE_ERR_UNAVAILABLE);
        r->initialized = false;
        replica_mvcc_gc_sync(r);
        r->failed = true;
        return rc;
    }
    BASE_INFO("range", "r%llu n%llu: the replica made on demand opens at index %llu",
              (unsigned long long)config->range_id, (unsigned long long)n->id,
              (unsigned long long)r->applied);
    return RANGE_OK;
}

/* range_node_add_replica with the node mutex held (also from a split's
** apply, which runs under it): config checked by the caller. An
** uninitialized replica of the range here becomes it (replica_reopen_locked). */
static int node_open_locked(range_node *n, const range_replica_config *config,
                            range_replica **out)
{
    range_replica *r = NULL, *uninit = NULL;
    uint64_t tomb = 0;
    bool reused = false;
    base_buf probe = {0}; /* owner: this function */
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    int rc;

    rc = RANGE_ERR_INVALID;
    for (size_t i = 0; i < n->n_replicas; i++) {
        range_replica *o = n->replicas[i];
        if (o->config.range_id != config->range_id)
            continue;
        if (o->initialized || o->failed || o->remove_generation != 0)
            goto cleanup;
        uninit = o;
    }
    if (uninit == NULL && n->n_replicas >= RANGE_NODE_REPLICAS_MAX) {
        rc = RANGE_ERR_BUSY;
        goto cleanup;
    }
    /* REMOVAL: a range removed from this store (tombstone, no descriptor) is
    ** not made again from a config: its replica stays retired */
    rc = load_tombstone(n->config.engine, config->range_id, &tomb);
    if (rc == RANGE_OK && tomb != 0) {
        int g = storage_get_raw(n->config.engine, key,
                                replica__key(key, config->range_id, 'd', 0, 0, 0), &probe);
        if (g == STORAGE_NOT_FOUND) {
            rc = replica_open_retired(n, config, tomb, out);
            goto cleanup;
        }
        rc = g == STORAGE_OK ? RANGE_OK : map_storage(g);
    }
    if (rc != RANGE_OK)
        goto cleanup;
    if (uninit != NULL) {
        rc = replica_reopen_locked(uninit, config);
        if (rc == RANGE_OK && out != NULL)
            *out = uninit;
        goto cleanup;
    }
    range_replica **grown =
        base_realloc(n->replicas, (n->n_replicas + 1) * sizeof(*n->replicas));
    if (grown == NULL) {
        rc = RANGE_ERR_NOMEM;
        goto cleanup;
    }
    n->replicas = grown;
    rc = RANGE_ERR_NOMEM;
    r = replica_struct_for(n, config->range_id, &reused);
    if (r == NULL)
        goto cleanup;
    rc = replica_init_struct(r, n, config);
    if (rc == RANGE_OK)
        rc = replica_open_state(r, config);
    if (rc != RANGE_OK)
        goto cleanup;
    n->replicas[n->n_replicas++] = r;
    if (out != NULL)
        *out = r;
    r = NULL;
    rc = RANGE_OK;
cleanup:
    replica_struct_back(n, r, reused);
    base_buf_free(&probe);
    return rc;
}

int range_node_open_stored(range_node *n, const range_replica_config *defaults, size_t *opened)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf buf = {0}; /* owner: this function */
    int first_rc = RANGE_OK;
    if (opened != NULL)
        *opened = 0;
    if (n == NULL || defaults == NULL)
        return RANGE_ERR_INVALID;
    pthread_mutex_lock(&n->mu);
    node_remember_defaults(n, defaults);
    int rc = hosted_load_locked(n);
    for (size_t i = 0; rc == RANGE_OK && i < n->n_hosted; i++) {
        uint64_t id = n->hosted[i];
        bool open = false;
        for (size_t k = 0; k < n->n_replicas; k++) /* an uninitialized one becomes it */
            open = open || (n->replicas[k]->config.range_id == id &&
                            n->replicas[k]->initialized);
        if (open)
            continue;
        range_descriptor d;
        int orc = storage_get_raw(n->config.engine, key, replica__key(key, id, 'd', 0, 0, 0),
                                  &buf);
        if (orc != STORAGE_OK) {
            orc = orc == STORAGE_NOT_FOUND ? RANGE_ERR_CORRUPT : map_storage(orc);
        } else {
            orc = range_descriptor_decode(buf.data, buf.len, &d);
            if (orc == RANGE_OK) {
                range_replica_config cfg = *defaults;
                cfg.range_id = id;
                for (size_t k = 0; k < d.n_replicas; k++)
                    cfg.peers[k] = d.replicas[k];
                cfg.n_peers = d.n_replicas;
                cfg.random_seed = defaults->random_seed ^ (id * 0xbf58476d1ce4e5b9ULL);
                cfg.descriptor = NULL; /* the stored one */
                /* a learner is no voter of its descriptor: its configuration
                ** comes from 'm' */
                orc = d.range_id != id || cfg.n_peers > RAFT_MAX_VOTERS
                          ? RANGE_ERR_CORRUPT
                          : node_open_locked(n, &cfg, NULL);
                range_descriptor_free(&d);
            } else if (orc != RANGE_ERR_NOMEM) {
                orc = RANGE_ERR_CORRUPT;
            }
        }
        if (orc == RANGE_OK) {
            if (opened != NULL)
                (*opened)++;
        } else {
            BASE_ERROR("range", "n%llu: hosted range r%llu cannot open (%d)",
                       (unsigned long long)n->id, (unsigned long long)id, orc);
            if (first_rc == RANGE_OK)
                first_rc = orc;
        }
    }
    pthread_mutex_unlock(&n->mu);
    base_buf_free(&buf);
    return rc != RANGE_OK ? rc : first_rc;
}

size_t range_node_replica_ids(range_node *n, uint64_t *ids, size_t max)
{
    size_t count = 0;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_replicas; i++) {
        if (!n->replicas[i]->initialized)
            continue; /* made on demand, no state yet */
        if (count < max)
            ids[count] = n->replicas[i]->config.range_id;
        count++;
    }
    pthread_mutex_unlock(&n->mu);
    return count;
}

range_replica *replica__node_find(range_node *n, const uint8_t *key, size_t key_len,
                                  bool ending_at)
{
    range_replica *found = NULL;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_replicas && found == NULL; i++) {
        const range_descriptor *d = &n->replicas[i]->desc;
        if (!n->replicas[i]->initialized)
            continue;
        if (ending_at ? d->end_len > 0 && range__key_cmp(d->end_key, d->end_len, key, key_len) == 0
                      : range_descriptor_contains(d, key, key_len))
            found = n->replicas[i];
    }
    pthread_mutex_unlock(&n->mu);
    return found;
}

hlc_timestamp replica__split_floor(range_replica *r)
{
    pthread_mutex_lock(&r->node->floor_mu);
    hlc_timestamp floor = r->split_floor; /* raised by a merge's apply */
    pthread_mutex_unlock(&r->node->floor_mu);
    return floor;
}

range_replica *range_node_replica(range_node *n, uint64_t range_id)
{
    range_replica *found = NULL;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_replicas; i++)
        if (n->replicas[i]->config.range_id == range_id && n->replicas[i]->initialized)
            found = n->replicas[i];
    pthread_mutex_unlock(&n->mu);
    return found;
}

/* Caller holds the node mutex. RANGE_OK when r may take proposals and
** reads: not failed, and the Raft leader; else the error, with the leader
** hint filled when another node leads. */
static int replica_serving_check(range_replica *r, uint64_t *leader_hint)
{
    if (r->failed)
        return RANGE_ERR_IO;
    if (r->retired || !r->initialized || r->remove_generation != 0) {
        if (leader_hint != NULL)
            *leader_hint = 0; /* removed, or not made yet: nobody to name */
        return RANGE_ERR_NOT_LEADER;
    }
    raft_status st;
    raft_node_status(r->raft, &st);
    if (st.role != RAFT_LEADER) {
        if (leader_hint != NULL)
            *leader_hint = st.leader;
        return RANGE_ERR_NOT_LEADER;
    }
    return RANGE_OK;
}

/* Encodes a proposal's entry bytes into out (called under the node mutex,
** after the serving, term and queue checks). */
typedef int (*replica_encode_fn)(const void *arg, base_buf *out);

/* The one proposal path: checks, encode, RAFT_EVENT_PROPOSE, and a waiter
** keyed (txn_id, seq) resolved when that key applies (or dropped / at the
** deadline when `deadline`). expected_term != 0: refuse with DROPPED unless
** the replica still leads in that term. */
static int replica_propose_entry(range_replica *r, replica_encode_fn encode, const void *arg,
                                 uint64_t txn_id, uint64_t seq, uint64_t expected_term,
                                 bool deadline, range_propose_fn cb, void *ctx,
                                 uint64_t *leader_hint)
{
    range_node *n = r->node;
    base_buf data = {0}; /* owner: this function (the core copies the entry) */
    raft_update u;
    int rc;
    pthread_mutex_lock(&n->mu);
    rc = replica_serving_check(r, leader_hint);
    if (rc != RANGE_OK)
        goto cleanup;
    if (expected_term != 0) {
        raft_status st;
        raft_node_status(r->raft, &st);
        if (st.term != expected_term) {
            rc = RANGE_ERR_DROPPED; /* evaluated in another term: evaluate again */
            goto cleanup;
        }
    }
    if (r->n_waiters >= RANGE_PROPOSALS_PENDING_MAX) {
        rc = RANGE_ERR_BUSY;
        goto cleanup;
    }
    rc = encode(arg, &data);
    if (rc != RANGE_OK)
        goto cleanup;
    if (r->waiters == NULL) {
        r->waiters = base_calloc(RANGE_PROPOSALS_PENDING_MAX, sizeof(*r->waiters));
        if (r->waiters == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
    }
    raft_proposal p = {data.data, data.len};
    raft_event ev = {.type = RAFT_EVENT_PROPOSE, .proposals = &p, .n_proposals = 1};
    int rrc = raft_step(r->raft, &ev, &u);
    if (rrc == RAFT_OK) {
        replica_waiter *w = &r->waiters[r->n_waiters++];
        w->txn_id = txn_id;
        w->seq = seq;
        w->index = u.proposed_index;
        w->term = u.proposed_term;
        w->deadline_tick =
            deadline ? r->tick + (uint64_t)r->config.proposal_timeout_ticks : UINT64_MAX;
        w->cb = cb;
        w->ctx = ctx;
        rc = RANGE_OK;
    } else if (rrc == RAFT_ERR_NOT_LEADER || rrc == RAFT_ERR_TRANSFERRING) {
        if (leader_hint != NULL)
            *leader_hint = u.leader_hint;
        rc = RANGE_ERR_NOT_LEADER;
    } else if (rrc == RAFT_ERR_TOO_LARGE) {
        rc = RANGE_ERR_TOO_LARGE;
    } else if (rrc == RAFT_ERR_BUSY) {
        rc = RANGE_ERR_BUSY;
    } else if (rrc == RAFT_ERR_NOMEM) {
        rc = RANGE_ERR_NOMEM;
    } else {
        rc = RANGE_ERR_INVALID;
    }
    replica_process(r, &u); /* always: the update may carry work either way */
cleanup:
    pthread_mutex_unlock(&n->mu);
    base_buf_free(&data);
    return rc;
}

static int replica_encode_command(const void *arg, base_buf *out)
{
    return range_command_encode(arg, out);
}

int replica__propose(range_replica *r, const range_command *cmd, uint64_t expected_term,
                     bool deadline, range_propose_fn cb, void *ctx, uint64_t *leader_hint)
{
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || cmd == NULL || cb == NULL)
        return RANGE_ERR_INVALID;
    return replica_propose_entry(r, replica_encode_command, cmd, cmd->txn_id, cmd->seq,
                                 expected_term, deadline, cb, ctx, leader_hint);
}

int range_replica_propose(range_replica *r, const range_command *cmd, range_propose_fn cb,
                          void *ctx, uint64_t *leader_hint)
{
    return replica__propose(r, cmd, 0, true, cb, ctx, leader_hint);
}

typedef struct replica_split_entry {
    const uint8_t *key;
    size_t key_len;
    uint64_t new_range_id;
    uint64_t generation;
    hlc_timestamp floor;
    const range_split_txn *txn; /* NULL: a plain split */
} replica_split_entry;

static int replica_encode_split(const void *arg, base_buf *out)
{
    const replica_split_entry *e = arg;
    uint8_t head[REPLICA_SPLIT_HEADER];
    head[0] = REPLICA_SPLIT_TAG;
    replica__put_u64(head + 1, e->new_range_id);
    replica__put_u64(head + 9, e->generation);
    hlc_encode(e->floor, head + 17);
    head[17 + HLC_ENCODED_SIZE] = (uint8_t)(e->key_len >> 24);
    head[18 + HLC_ENCODED_SIZE] = (uint8_t)(e->key_len >> 16);
    head[19 + HLC_ENCODED_SIZE] = (uint8_t)(e->key_len >> 8);
    head[20 + HLC_ENCODED_SIZE] = (uint8_t)e->key_len;
    if (base_buf_append(out, head, sizeof(head)) != 0 ||
        base_buf_append(out, e->key, e->key_len) != 0)
        return RANGE_ERR_NOMEM;
    if (e->txn == NULL)
        return RANGE_OK;
    uint8_t tail[REPLICA_SPLIT_TXN_HEADER];
    replica__put_u64(tail, e->txn->txn_id);
    hlc_encode(e->txn->commit_ts, tail + 8);
    tail[8 + HLC_ENCODED_SIZE] = (uint8_t)(e->txn->anchor_len >> 24);
    tail[9 + HLC_ENCODED_SIZE] = (uint8_t)(e->txn->anchor_len >> 16);
    tail[10 + HLC_ENCODED_SIZE] = (uint8_t)(e->txn->anchor_len >> 8);
    tail[11 + HLC_ENCODED_SIZE] = (uint8_t)e->txn->anchor_len;
    if (base_buf_append(out, tail, sizeof(tail)) != 0 ||
        base_buf_append(out, e->txn->anchor, e->txn->anchor_len) != 0)
        return RANGE_ERR_NOMEM;
    return RANGE_OK;
}

int replica__propose_split(range_replica *r, const uint8_t *key, size_t key_len,
                           uint64_t new_range_id, uint64_t generation, hlc_timestamp floor,
                           uint64_t expected_term, range_propose_fn cb, void *ctx,
                           uint64_t *leader_hint)
{
    return replica__propose_split_txn(r, key, key_len, new_range_id, generation, floor, NULL,
                                      expected_term, cb, ctx, leader_hint);
}

int replica__propose_split_txn(range_replica *r, const uint8_t *key, size_t key_len,
                               uint64_t new_range_id, uint64_t generation, hlc_timestamp floor,
                               const range_split_txn *txn, uint64_t expected_term,
                               range_propose_fn cb, void *ctx, uint64_t *leader_hint)
{
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || key == NULL || key_len == 0 || key_len > RANGE_DESC_KEY_MAX ||
        new_range_id == 0 || cb == NULL)
        return RANGE_ERR_INVALID;
    if (txn != NULL && (txn->txn_id == 0 || txn->anchor == NULL || txn->anchor_len == 0 ||
                        txn->anchor_len > STORAGE_KEY_SIZE_MAX))
        return RANGE_ERR_INVALID;
    replica_split_entry e = {key, key_len, new_range_id, generation, floor, txn};
    /* no deadline: a split resolves when it applies or is dropped */
    return replica_propose_entry(r, replica_encode_split, &e, REPLICA_SPLIT_TXN_ID,
                                 new_range_id, expected_term, false, cb, ctx, leader_hint);
}

/* ---- merges: proposals and state (replica_int.h, "merges") ---------------------- */

typedef struct replica_merge_entry {
    uint8_t tag;
    uint64_t merge_id;
    uint64_t a, b;                 /* FREEZE: left id, generation; FENCE: right id */
    uint64_t left_generation;      /* MERGE */
    const range_descriptor *right; /* MERGE */
    uint64_t freeze_index, freeze_lineage;
    hlc_timestamp floor;
    replica_merge_state right_state; /* MERGE: R's merged list (n_merged, merged) */
    const range_merge_txn *txn;      /* MERGE: its transaction, or NULL */
} replica_merge_entry;

static int replica_encode_merge(const void *arg, base_buf *out)
{
    const replica_merge_entry *m = arg;
    uint8_t head[REPLICA_MERGE_HEADER];
    base_buf desc = {0}; /* owner: this function */
    size_t len;
    int rc = RANGE_OK;
    head[0] = m->tag;
    replica__put_u64(head + 1, m->merge_id);
    if (m->tag == REPLICA_FREEZE_TAG) {
        replica__put_u64(head + 9, m->a);
        replica__put_u64(head + 17, m->b);
        len = REPLICA_FREEZE_SIZE;
    } else if (m->tag == REPLICA_FENCE_TAG) {
        replica__put_u64(head + 9, m->a);
        len = REPLICA_FENCE_SIZE;
    } else if (m->tag == REPLICA_UNFREEZE_TAG) {
        len = REPLICA_UNFREEZE_SIZE;
    } else {
        rc = range_descriptor_encode(m->right, &desc);
        if (rc == RANGE_OK && desc.len > UINT32_MAX)
            rc = RANGE_ERR_TOO_LARGE;
        replica__put_u64(head + 9, m->left_generation);
        replica__put_u64(head + 17, m->right->range_id);
        replica__put_u64(head + 25, m->right->generation);
        replica__put_u64(head + 33, m->freeze_index);
        replica__put_u64(head + 41, m->freeze_lineage);
        hlc_encode(m->floor, head + 49);
        uint8_t *q = head + 49 + HLC_ENCODED_SIZE;
        q[0] = (uint8_t)(desc.len >> 24);
        q[1] = (uint8_t)(desc.len >> 16);
        q[2] = (uint8_t)(desc.len >> 8);
        q[3] = (uint8_t)desc.len;
        len = REPLICA_MERGE_HEADER;
    }
    if (rc == RANGE_OK && (base_buf_append(out, head, len) != 0 ||
                           (desc.len > 0 && base_buf_append(out, desc.data, desc.len) != 0)))
        rc = RANGE_ERR_NOMEM;
    if (rc == RANGE_OK && m->tag == REPLICA_MERGE_TAG) {
        uint8_t list[4 + REPLICA_FENCES_MAX * 8];
        uint32_t count = m->right_state.n_merged;
        list[0] = 0, list[1] = 0, list[2] = 0, list[3] = (uint8_t)count;
        for (uint32_t i = 0; i < count; i++)
            replica__put_u64(list + 4 + (size_t)i * 8, m->right_state.merged[i]);
        if (base_buf_append(out, list, 4 + (size_t)count * 8) != 0)
            rc = RANGE_ERR_NOMEM;
    }
    if (rc == RANGE_OK && m->tag == REPLICA_MERGE_TAG && m->txn != NULL) {
        /* the transaction part, as a split's (replica_int.h, "merges") */
        uint8_t tail[REPLICA_SPLIT_TXN_HEADER];
        replica__put_u64(tail, m->txn->txn_id);
        hlc_encode(m->txn->commit_ts, tail + 8);
        tail[8 + HLC_ENCODED_SIZE] = (uint8_t)(m->txn->anchor_len >> 24);
        tail[9 + HLC_ENCODED_SIZE] = (uint8_t)(m->txn->anchor_len >> 16);
        tail[10 + HLC_ENCODED_SIZE] = (uint8_t)(m->txn->anchor_len >> 8);
        tail[11 + HLC_ENCODED_SIZE] = (uint8_t)m->txn->anchor_len;
        if (base_buf_append(out, tail, sizeof(tail)) != 0 ||
            base_buf_append(out, m->txn->anchor, m->txn->anchor_len) != 0)
            rc = RANGE_ERR_NOMEM;
    }
    base_buf_free(&desc);
    return rc;
}

int replica__propose_freeze(range_replica *r, uint64_t merge_id, uint64_t left_range_id,
                            uint64_t generation, uint64_t expected_term, range_propose_fn cb,
                            void *ctx, uint64_t *leader_hint)
{
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || merge_id == 0 || left_range_id == 0 || cb == NULL)
        return RANGE_ERR_INVALID;
    replica_merge_entry m = {.tag = REPLICA_FREEZE_TAG, .merge_id = merge_id,
                             .a = left_range_id, .b = generation};
    return replica_propose_entry(r, replica_encode_merge, &m, REPLICA_FREEZE_TXN_ID, merge_id,
                                 expected_term, false, cb, ctx, leader_hint);
}

int replica__propose_merge(range_replica *left, uint64_t merge_id, uint64_t left_generation,
                           const range_descriptor *right, uint64_t right_freeze_index,
                           uint64_t right_freeze_lineage, hlc_timestamp floor,
                           uint64_t expected_term, range_propose_fn cb, void *ctx,
                           uint64_t *leader_hint)
{
    return replica__propose_merge_txn(left, merge_id, left_generation, right, right_freeze_index,
                                      right_freeze_lineage, floor, NULL, expected_term, cb, ctx,
                                      leader_hint);
}

int replica__propose_merge_txn(range_replica *left, uint64_t merge_id, uint64_t left_generation,
                               const range_descriptor *right, uint64_t right_freeze_index,
                               uint64_t right_freeze_lineage, hlc_timestamp floor,
                               const range_merge_txn *txn, uint64_t expected_term,
                               range_propose_fn cb, void *ctx, uint64_t *leader_hint)
{
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (left == NULL || merge_id == 0 || right == NULL || right->range_id == 0 ||
        right_freeze_index == 0 || cb == NULL)
        return RANGE_ERR_INVALID;
    if (txn != NULL && (txn->txn_id == 0 || txn->anchor == NULL || txn->anchor_len == 0 ||
                        txn->anchor_len > STORAGE_KEY_SIZE_MAX))
        return RANGE_ERR_INVALID;
    replica_merge_entry m = {.tag = REPLICA_MERGE_TAG, .merge_id = merge_id,
                             .left_generation = left_generation, .right = right,
                             .freeze_index = right_freeze_index,
                             .freeze_lineage = right_freeze_lineage, .floor = floor, .txn = txn};
    /* R's merged list travels with the entry (L's replicas decide from the
    ** entry, never from their own replica of R): from R's replica here,
    ** frozen, so its list no longer changes */
    range_node *n = left->node;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_replicas; i++) {
        const range_replica *o = n->replicas[i];
        if (o->config.range_id == right->range_id && o->initialized && !o->retired) {
            m.right_state.n_merged = o->merge.n_merged;
            memcpy(m.right_state.merged, o->merge.merged, sizeof(m.right_state.merged));
        }
    }
    pthread_mutex_unlock(&n->mu);
    return replica_propose_entry(left, replica_encode_merge, &m, REPLICA_MERGE_TXN_ID, merge_id,
                                 expected_term, false, cb, ctx, leader_hint);
}

int replica__propose_fence(range_replica *r, uint64_t merge_id, uint64_t right_range_id,
                           uint64_t expected_term, range_propose_fn cb, void *ctx,
                           uint64_t *leader_hint)
{
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || merge_id == 0 || cb == NULL)
        return RANGE_ERR_INVALID;
    replica_merge_entry m = {.tag = REPLICA_FENCE_TAG, .merge_id = merge_id,
                             .a = right_range_id};
    return replica_propose_entry(r, replica_encode_merge, &m, REPLICA_FENCE_TXN_ID, merge_id,
                                 expected_term, false, cb, ctx, leader_hint);
}

int replica__propose_unfreeze(range_replica *right, uint64_t merge_id, uint64_t expected_term,
                              range_propose_fn cb, void *ctx, uint64_t *leader_hint)
{
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (right == NULL || merge_id == 0 || cb == NULL)
        return RANGE_ERR_INVALID;
    replica_merge_entry m = {.tag = REPLICA_UNFREEZE_TAG, .merge_id = merge_id};
    return replica_propose_entry(right, replica_encode_merge, &m, REPLICA_UNFREEZE_TXN_ID,
                                 merge_id, expected_term, false, cb, ctx, leader_hint);
}

/* ---- idempotence GC: proposal and state (replica_int.h, "idempotence GC") --- */

static int replica_encode_idem_gc(const void *arg, base_buf *out)
{
    uint8_t buf[REPLICA_IDEM_GC_SIZE];
    buf[0] = REPLICA_IDEM_GC_TAG;
    hlc_encode(*(const hlc_timestamp *)arg, buf + 1);
    return base_buf_append(out, buf, sizeof(buf)) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
}

int replica__propose_idem_gc(range_replica *r, hlc_timestamp threshold, uint64_t expected_term,
                             range_propose_fn cb, void *ctx, uint64_t *leader_hint)
{
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || cb == NULL || threshold.wall_ns <= 0)
        return RANGE_ERR_INVALID;
    return replica_propose_entry(r, replica_encode_idem_gc, &threshold, REPLICA_IDEM_GC_TXN_ID,
                                 (uint64_t)threshold.wall_ns, expected_term, false, cb, ctx,
                                 leader_hint);
}

/* ---- version GC: proposal and state (replica_int.h, "version GC") ---------- */

typedef struct replica_mvcc_gc_arg {
    hlc_timestamp threshold;
    const uint8_t *key_bytes;
    const size_t *offsets;
    size_t n_keys;
} replica_mvcc_gc_arg;

static int replica_encode_mvcc_gc(const void *arg, base_buf *out)
{
    const replica_mvcc_gc_arg *a = arg;
    return replica__mvcc_gc_encode(a->threshold, a->key_bytes, a->offsets, a->n_keys, out);
}

int replica__propose_mvcc_gc(range_replica *r, hlc_timestamp threshold, const uint8_t *key_bytes,
                             const size_t *offsets, size_t n_keys, uint64_t expected_term,
                             range_propose_fn cb, void *ctx, uint64_t *leader_hint)
{
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || cb == NULL || threshold.wall_ns <= 0 || n_keys > REPLICA_MVCC_GC_KEYS_MAX ||
        (n_keys > 0 && (key_bytes == NULL || offsets == NULL)))
        return RANGE_ERR_INVALID;
    replica_mvcc_gc_arg a = {threshold, key_bytes, offsets, n_keys};
    return replica_propose_entry(r, replica_encode_mvcc_gc, &a, REPLICA_MVCC_GC_TXN_ID,
                                 (uint64_t)threshold.wall_ns, expected_term, false, cb, ctx,
                                 leader_hint);
}

/* Lock-free (the seqlock of struct range_replica). WHY A READ CHECKED AFTER
** IT READ MISSES NOTHING: every batch that can take versions away from r's
** state (a version GC entry, a snapshot, a merge bringing R's state) is
** written only after replica_mvcc_gc_raise published its threshold, both
** under node->mu. A read that saw a state without some version therefore
** read storage after that batch was written (the engine orders them), so
** after the raise: this load, done after the read, returns that threshold or
** a later one, and the read at or below it is refused. A raise whose batch
** then fails is undone (replica_mvcc_gc_sync): meanwhile it only refused
** reads that would have been fine. */
hlc_timestamp replica__mvcc_gc_threshold(range_replica *r)
{
    if (r == NULL)
        return HLC_ZERO;
    for (;;) {
        unsigned seq = atomic_load_explicit(&r->mvcc_gc_seq, memory_order_acquire);
        hlc_timestamp t = {atomic_load_explicit(&r->mvcc_gc_wall_ns, memory_order_relaxed),
                           atomic_load_explicit(&r->mvcc_gc_logical, memory_order_relaxed)};
        atomic_thread_fence(memory_order_acquire); /* the fields before the re-check */
        if ((seq & 1u) == 0 &&
            atomic_load_explicit(&r->mvcc_gc_seq, memory_order_relaxed) == seq)
            return t;
    }
}

hlc_timestamp replica__idem_gc_threshold(range_replica *r)
{
    if (r == NULL)
        return HLC_ZERO;
    pthread_mutex_lock(&r->node->mu);
    hlc_timestamp t = r->initialized && !r->retired ? r->merge.idem_gc : HLC_ZERO;
    pthread_mutex_unlock(&r->node->mu);
    return t;
}

int replica__frozen(range_replica *r, uint64_t *merge_id, uint64_t *left_range_id,
                    uint64_t *freeze_index, uint64_t *freeze_lineage)
{
    *merge_id = 0, *left_range_id = 0, *freeze_index = 0, *freeze_lineage = 0;
    if (r == NULL)
        return RANGE_ERR_INVALID;
    pthread_mutex_lock(&r->node->mu);
    int rc = r->initialized && !r->retired ? RANGE_OK : RANGE_ERR_UNAVAILABLE;
    if (rc == RANGE_OK && r->merge.frozen_merge_id != 0) {
        *merge_id = r->merge.frozen_merge_id;
        *left_range_id = r->merge.frozen_left_id;
        *freeze_index = r->merge.frozen_index;
        *freeze_lineage = r->merge.frozen_index + r->merge.lineage_offset;
    }
    pthread_mutex_unlock(&r->node->mu);
    return rc;
}

int replica__merge_applied(range_replica *r, uint64_t merge_id, bool *applied)
{
    *applied = false;
    if (r == NULL)
        return RANGE_ERR_INVALID;
    pthread_mutex_lock(&r->node->mu);
    int rc = r->initialized && !r->retired ? RANGE_OK : RANGE_ERR_UNAVAILABLE;
    for (uint32_t i = 0; rc == RANGE_OK && i < r->merge.n_merged; i++)
        *applied = *applied || r->merge.merged[i] == merge_id;
    pthread_mutex_unlock(&r->node->mu);
    return rc;
}

int replica__merge_readiness(range_replica *r, uint64_t *applied, bool *conf_busy,
                             bool *has_learners)
{
    *applied = 0, *conf_busy = false, *has_learners = false;
    if (r == NULL)
        return RANGE_ERR_INVALID;
    pthread_mutex_lock(&r->node->mu);
    int rc = r->initialized && !r->retired && r->raft != NULL ? RANGE_OK : RANGE_ERR_UNAVAILABLE;
    if (rc == RANGE_OK) {
        raft_status st;
        raft_membership latest;
        raft_node_status(r->raft, &st);
        raft_node_membership(r->raft, &latest);
        *applied = r->applied;
        *conf_busy = r->applied < st.last_index || st.conf_index > r->applied || r->apply_stalled;
        *has_learners = latest.n_learners > 0 || r->membership.n_learners > 0;
    }
    pthread_mutex_unlock(&r->node->mu);
    return rc;
}

void replica__cancel_proposals(range_node *n, range_propose_fn cb)
{
    pthread_mutex_lock(&n->mu);
    for (size_t k = 0; k < n->n_replicas; k++) {
        range_replica *r = n->replicas[k];
        size_t i = 0;
        while (i < r->n_waiters) {
            if (r->waiters[i].cb == cb)
                r->waiters[i] = r->waiters[--r->n_waiters];
            else
                i++;
        }
    }
    pthread_mutex_unlock(&n->mu);
}

void replica__cancel_read(range_replica *r, range_read_fn cb, void *ctx)
{
    pthread_mutex_lock(&r->node->mu);
    for (size_t i = 0; i < r->n_reads; i++) {
        if (r->reads[i].cb == cb && r->reads[i].ctx == ctx) {
            r->reads[i] = r->reads[--r->n_reads];
            break; /* the raft read state, if it comes, finds no read: ignored */
        }
    }
    pthread_mutex_unlock(&r->node->mu);
}

int replica__command_record(range_replica *r, uint64_t txn_id, uint64_t seq, bool *found,
                            hlc_timestamp *commit_ts)
{
    uint8_t key[REPLICA_KEY_SIZE_MAX];
    base_buf buf = {0}; /* owner: this function */
    *found = false;
    *commit_ts = HLC_ZERO;
    int rc = storage_get_raw(r->node->config.engine, key,
                             replica__key(key, REPLICA_RECORDS_RANGE, 'c', txn_id, seq, 2), &buf);
    if (rc == STORAGE_NOT_FOUND) {
        rc = RANGE_OK;
    } else if (rc != STORAGE_OK) {
        rc = map_storage(rc);
    } else if (buf.len == REPLICA_RECORD_SIZE) {
        *found = true;
        *commit_ts = hlc_decode(buf.data + 8);
        rc = RANGE_OK;
    } else {
        rc = RANGE_ERR_CORRUPT; /* 8-byte records predate the timestamp: none exist */
    }
    base_buf_free(&buf);
    return rc;
}

storage_engine *replica__engine(range_replica *r)
{
    return r->node->config.engine;
}

int range_replica_read(range_replica *r, bool allow_lease, range_read_fn cb, void *ctx,
                       uint64_t *leader_hint)
{
    range_node *n;
    raft_update u;
    int rc;
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || cb == NULL)
        return RANGE_ERR_INVALID;
    n = r->node;
    pthread_mutex_lock(&n->mu);
    rc = replica_serving_check(r, leader_hint);
    if (rc != RANGE_OK)
        goto cleanup;
    if (r->n_reads >= RANGE_READS_PENDING_MAX) {
        rc = RANGE_ERR_BUSY;
        goto cleanup;
    }
    if (r->reads == NULL) {
        r->reads = base_calloc(RANGE_READS_PENDING_MAX, sizeof(*r->reads));
        if (r->reads == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
    }
    uint64_t id = ++r->next_read_id;
    raft_status st;
    raft_node_status(r->raft, &st);
    replica_read *rd = &r->reads[r->n_reads++];
    memset(rd, 0, sizeof(*rd));
    rd->read_id = id;
    rd->term = st.term;
    rd->deadline_tick = r->tick + (uint64_t)r->config.proposal_timeout_ticks;
    rd->cb = cb;
    rd->ctx = ctx;
    if (allow_lease && n->config.clock != NULL &&
        n->config.clock(n->config.clock_ctx) - n->last_tick_ns > n->config.tick_ns / 4 * 5)
        allow_lease = false; /* ticks behind real time: the lease may have run out */
    raft_event ev = {.type = RAFT_EVENT_READ, .read_id = id, .allow_lease = allow_lease};
    int rrc = raft_step(r->raft, &ev, &u);
    if (rrc != RAFT_OK) {
        /* not queued in the core: take it back, cb never runs */
        for (size_t j = 0; j < r->n_reads; j++)
            if (r->reads[j].read_id == id) {
                r->reads[j] = r->reads[--r->n_reads];
                break;
            }
        if (rrc == RAFT_ERR_NOT_LEADER || rrc == RAFT_ERR_TRANSFERRING) {
            if (leader_hint != NULL)
                *leader_hint = u.leader_hint;
            rc = RANGE_ERR_NOT_LEADER;
        } else {
            rc = rrc == RAFT_ERR_NOMEM ? RANGE_ERR_NOMEM : RANGE_ERR_BUSY;
        }
    } else {
        rc = RANGE_OK;
    }
    replica_process(r, &u);
cleanup:
    pthread_mutex_unlock(&n->mu);
    return rc;
}

int range_replica_get(range_replica *r, const uint8_t *key, size_t key_len,
                      hlc_timestamp read_ts, base_buf *out)
{
    storage_value v = {0};
    if (r == NULL || key == NULL || key_len == 0 || out == NULL)
        return RANGE_ERR_INVALID;
    int rc = storage_get(r->node->config.engine, NULL, key, key_len, read_ts, &v);
    if (rc == STORAGE_OK && !v.tombstone) {
        base_buf_reset(out);
        rc = base_buf_append(out, v.bytes.data, v.bytes.len) == 0 ? RANGE_OK : RANGE_ERR_NOMEM;
    } else if (rc == STORAGE_OK || rc == STORAGE_NOT_FOUND) {
        rc = RANGE_NOT_FOUND;
    } else {
        rc = map_storage(rc);
    }
    storage_value_free(&v);
    return rc;
}

void range_replica_get_status(range_replica *r, range_replica_status *out)
{
    raft_status st;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&r->node->mu);
    if (r->raft == NULL) { /* removed */
        out->range_id = r->config.range_id;
        out->node_id = r->id;
        pthread_mutex_unlock(&r->node->mu);
        return;
    }
    raft_node_status(r->raft, &st);
    out->range_id = r->config.range_id;
    out->node_id = r->id;
    out->leader = st.role == RAFT_LEADER;
    out->leader_id = st.leader;
    out->term = st.term;
    out->commit = st.commit;
    out->applied = r->applied;
    out->last_index = st.last_index;
    out->first_index = st.first_index;
    out->lease_valid = st.lease_valid;
    pthread_mutex_unlock(&r->node->mu);
}

int range_replica_descriptor(range_replica *r, range_descriptor *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&r->node->mu);
    /* removed, or made on demand and not initialized: it has none */
    int rc = r->initialized && !r->retired ? range_descriptor_copy(out, &r->desc)
                                           : RANGE_ERR_UNAVAILABLE;
    pthread_mutex_unlock(&r->node->mu);
    return rc;
}

int range_replica_campaign(range_replica *r)
{
    raft_update u;
    pthread_mutex_lock(&r->node->mu);
    raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
    int rrc = r->failed || r->raft == NULL || r->remove_generation != 0 ? RAFT_ERR_BUSY
                                                                       : replica_step(r, &ev, &u);
    pthread_mutex_unlock(&r->node->mu);
    return rrc == RAFT_OK ? RANGE_OK : RANGE_ERR_BUSY;
}

/* The core refuses a non-member, a learner and this node itself with
** RAFT_ERR_INVALID, a follower with RAFT_ERR_NOT_LEADER (hint: the leader)
** and a second target while one transfer runs with RAFT_ERR_TRANSFERRING.
** From the accepted step on, lease reads and proposals stop here: the core's
** lease_valid is false while transfer_to is set or TIMEOUT_NOW was sent, and
** proposals get RAFT_ERR_TRANSFERRING. */
int range_replica_transfer_lease(range_replica *r, uint64_t target_node_id,
                                 uint64_t *leader_hint)
{
    raft_update u;
    int rc;
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (r == NULL || target_node_id == 0)
        return RANGE_ERR_INVALID;
    pthread_mutex_lock(&r->node->mu);
    rc = replica_serving_check(r, leader_hint);
    if (rc != RANGE_OK)
        goto cleanup;
    raft_event ev = {.type = RAFT_EVENT_TRANSFER, .transfer_to = target_node_id};
    int rrc = replica_step(r, &ev, &u);
    switch (rrc) {
    case RAFT_OK:
        rc = RANGE_OK;
        break;
    case RAFT_ERR_NOT_LEADER:
        if (leader_hint != NULL)
            *leader_hint = u.leader_hint;
        rc = RANGE_ERR_NOT_LEADER;
        break;
    case RAFT_ERR_TRANSFERRING:
        rc = RANGE_ERR_BUSY; /* another target's transfer is running */
        break;
    case RAFT_ERR_NOMEM:
        rc = RANGE_ERR_NOMEM;
        break;
    default:
        rc = RANGE_ERR_INVALID;
        break;
    }
cleanup:
    pthread_mutex_unlock(&r->node->mu);
    return rc;
}

/* ---- replica changes (docs/range.md, "Replica changes and snapshots") ------- */

/* The transaction part of a configuration entry (replica_int.h, "replica
** changes"): split_txn_parse's format. Returns its length. */
static size_t conf_txn_encode(const range_split_txn *txn, uint8_t *out)
{
    replica__put_u64(out, txn->txn_id);
    hlc_encode(txn->commit_ts, out + 8);
    out[8 + HLC_ENCODED_SIZE] = (uint8_t)(txn->anchor_len >> 24);
    out[9 + HLC_ENCODED_SIZE] = (uint8_t)(txn->anchor_len >> 16);
    out[10 + HLC_ENCODED_SIZE] = (uint8_t)(txn->anchor_len >> 8);
    out[11 + HLC_ENCODED_SIZE] = (uint8_t)txn->anchor_len;
    memcpy(out + REPLICA_SPLIT_TXN_HEADER, txn->anchor, txn->anchor_len);
    return REPLICA_SPLIT_TXN_HEADER + txn->anchor_len;
}

/* With a transaction (replica__change_replicas_txn), under the node mutex
** with every entry of the log applied: RANGE_OK when r is at
** txn->generation, holds the anchor and stores txn's record PENDING; else
** RANGE_ERR_ABORTED (or a storage error). */
static int conf_txn_check(range_replica *r, const range_split_txn *txn)
{
    replica_split_txn tx;
    memset(&tx, 0, sizeof(tx));
    tx.txn_id = txn->txn_id;
    tx.anchor = txn->anchor;
    tx.anchor_len = txn->anchor_len;
    if (r->desc.generation != txn->generation ||
        !range_descriptor_contains(&r->desc, txn->anchor, txn->anchor_len))
        return RANGE_ERR_ABORTED;
    int rc = split_txn_record(r, &tx);
    if (rc == RANGE_OK && (!tx.have || tx.rec.status != RANGE_TXN_PENDING))
        rc = RANGE_ERR_ABORTED;
    base_buf_free(&tx.key);
    return rc;
}

/* The next Raft configuration change toward "node_id is a voter" (ADD) or
** "node_id is no member" (REMOVE) from the latest configuration (committed
** or not: the core allows one uncommitted change at a time). want (0: any)
** and txn: replica__change_replicas_txn. */
static int replica_change(range_replica *r, range_replica_change_type type, uint64_t node_id,
                          int want, const range_split_txn *txn, range_propose_fn cb, void *ctx,
                          uint64_t *leader_hint, bool *done)
{
    range_node *n;
    raft_membership m;
    raft_status st;
    raft_update u;
    raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE, .conf_node = node_id};
    uint8_t context[REPLICA_SPLIT_TXN_HEADER + RANGE_DESC_KEY_MAX];
    int rc;
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (done != NULL)
        *done = false;
    if (r == NULL || node_id == 0 || cb == NULL || done == NULL ||
        (type != RANGE_REPLICA_ADD && type != RANGE_REPLICA_REMOVE))
        return RANGE_ERR_INVALID;
    if (txn != NULL && (txn->txn_id == 0 || txn->anchor == NULL || txn->anchor_len == 0 ||
                        txn->anchor_len > RANGE_DESC_KEY_MAX))
        return RANGE_ERR_INVALID;
    n = r->node;
    pthread_mutex_lock(&n->mu);
    rc = replica_serving_check(r, leader_hint);
    if (rc != RANGE_OK)
        goto cleanup;
    raft_node_membership(r->raft, &m);
    raft_node_status(r->raft, &st);
    if (st.first_index <= 1) {
        /* a log from index 1 (a range of the version before the initial
        ** point) would catch a new replica up from entries alone, without
        ** the range's initial data */
        BASE_WARN("range", "r%llu: replica change refused: its Raft log starts at index 1; "
                  "it can change once its log has been truncated",
                  (unsigned long long)r->config.range_id);
        rc = RANGE_ERR_INVALID;
        goto cleanup;
    }
    if (type == RANGE_REPLICA_ADD) {
        if (raft_membership_is_voter(&m, node_id)) {
            *done = true; /* one replica per node: already there */
            goto cleanup;
        }
        ev.conf_change = raft_membership_is_learner(&m, node_id) ? RAFT_CONF_PROMOTE
                                                                 : RAFT_CONF_ADD_LEARNER;
        if (want == RAFT_CONF_ADD_LEARNER && ev.conf_change == RAFT_CONF_PROMOTE) {
            *done = true; /* that step is behind us: a learner already */
            goto cleanup;
        }
        if (want == RAFT_CONF_PROMOTE && ev.conf_change == RAFT_CONF_ADD_LEARNER) {
            rc = RANGE_ERR_ABORTED; /* no learner to promote (any more) */
            goto cleanup;
        }
    } else {
        if (!membership_has(&m, node_id)) {
            *done = true;
            goto cleanup;
        }
        if (node_id == r->id) {
            /* the leader does not remove itself: it hands the lease to
            ** another voter, which then removes it */
            uint64_t target = 0;
            for (size_t i = 0; i < m.n_voters && target == 0; i++)
                if (m.voters[i] != r->id)
                    target = m.voters[i];
            if (target == 0) {
                rc = RANGE_ERR_INVALID; /* the last voter */
                goto cleanup;
            }
            raft_event tev = {.type = RAFT_EVENT_TRANSFER, .transfer_to = target};
            int trc = replica_step(r, &tev, &u);
            if (trc == RAFT_OK || trc == RAFT_ERR_TRANSFERRING) {
                if (leader_hint != NULL)
                    *leader_hint = st.transfer_to != 0 ? st.transfer_to : target;
                rc = RANGE_ERR_NOT_LEADER;
            } else {
                rc = trc == RAFT_ERR_NOMEM ? RANGE_ERR_NOMEM : RANGE_ERR_BUSY;
            }
            goto cleanup;
        }
        ev.conf_change = RAFT_CONF_REMOVE;
    }
    /* MERGES: no configuration change once a FREEZE may be in the log ahead
    ** of it (frozen, or entries not applied yet that may hold one) */
    if (r->n_waiters >= RANGE_PROPOSALS_PENDING_MAX || r->merge.frozen_merge_id != 0 ||
        r->applied != st.last_index || r->apply_stalled) {
        rc = RANGE_ERR_BUSY;
        goto cleanup;
    }
    if (r->waiters == NULL) {
        r->waiters = base_calloc(RANGE_PROPOSALS_PENDING_MAX, sizeof(*r->waiters));
        if (r->waiters == NULL) {
            rc = RANGE_ERR_NOMEM;
            goto cleanup;
        }
    }
    if (txn != NULL) {
        /* REPLICA CHANGES WITH A TRANSACTION: every entry is applied and
        ** the configuration's entry comes next, so its apply reads the
        ** record as it is now (replica_int.h, "replica changes") */
        rc = conf_txn_check(r, txn);
        if (rc != RANGE_OK)
            goto cleanup;
        ev.conf_context = context;
        ev.conf_context_len = conf_txn_encode(txn, context);
    }
    int rrc = raft_step(r->raft, &ev, &u);
    switch (rrc) {
    case RAFT_OK: {
        replica_waiter *w = &r->waiters[r->n_waiters++];
        w->txn_id = REPLICA_CONF_TXN_ID;
        w->seq = u.proposed_index;
        w->index = u.proposed_index;
        w->term = u.proposed_term;
        w->deadline_tick = UINT64_MAX; /* resolves at apply, or dropped */
        w->cb = cb;
        w->ctx = ctx;
        BASE_INFO("range", "r%llu n%llu: %s n%llu proposed at index %llu",
                  (unsigned long long)r->config.range_id, (unsigned long long)r->id,
                  ev.conf_change == RAFT_CONF_ADD_LEARNER ? "add learner"
                  : ev.conf_change == RAFT_CONF_PROMOTE   ? "promote"
                                                          : "remove",
                  (unsigned long long)node_id, (unsigned long long)u.proposed_index);
        rc = RANGE_OK;
        break;
    }
    case RAFT_ERR_NOT_LEADER:
    case RAFT_ERR_TRANSFERRING:
        if (leader_hint != NULL)
            *leader_hint = u.leader_hint;
        rc = RANGE_ERR_NOT_LEADER;
        break;
    case RAFT_ERR_CONF_PENDING:  /* a change not committed yet */
    case RAFT_ERR_NOT_CAUGHT_UP: /* the learner is still catching up */
    case RAFT_ERR_BUSY:
        rc = RANGE_ERR_BUSY;
        break;
    case RAFT_ERR_NOMEM:
        rc = RANGE_ERR_NOMEM;
        break;
    default:
        rc = RANGE_ERR_INVALID; /* a group at RAFT_MAX_VOTERS, the last voter */
        break;
    }
    replica_process(r, &u);
cleanup:
    pthread_mutex_unlock(&n->mu);
    return rc;
}

int range_replica_change_replicas(range_replica *r, range_replica_change_type type,
                                  uint64_t node_id, range_propose_fn cb, void *ctx,
                                  uint64_t *leader_hint, bool *done)
{
    return replica_change(r, type, node_id, 0, NULL, cb, ctx, leader_hint, done);
}

int replica__change_replicas_txn(range_replica *r, int step, uint64_t node_id,
                                 const range_split_txn *txn, range_propose_fn cb, void *ctx,
                                 uint64_t *leader_hint, bool *done)
{
    if (leader_hint != NULL)
        *leader_hint = 0;
    if (done != NULL)
        *done = false;
    if (txn == NULL || (step != RANGE_CONF_STEP_ADD_LEARNER && step != RANGE_CONF_STEP_PROMOTE &&
                        step != RANGE_CONF_STEP_REMOVE))
        return RANGE_ERR_INVALID;
    range_replica_change_type type = step == RANGE_CONF_STEP_REMOVE ? RANGE_REPLICA_REMOVE
                                                                    : RANGE_REPLICA_ADD;
    int want = step == RANGE_CONF_STEP_ADD_LEARNER ? RAFT_CONF_ADD_LEARNER
               : step == RANGE_CONF_STEP_PROMOTE   ? RAFT_CONF_PROMOTE
                                                   : RAFT_CONF_REMOVE;
    return replica_change(r, type, node_id, want, txn, cb, ctx, leader_hint, done);
}

int range_replica_membership(range_replica *r, raft_membership *applied,
                             raft_membership *latest)
{
    int rc = RANGE_OK;
    pthread_mutex_lock(&r->node->mu);
    if (!r->initialized || r->raft == NULL) {
        rc = RANGE_ERR_UNAVAILABLE;
        if (applied != NULL)
            memset(applied, 0, sizeof(*applied));
        if (latest != NULL)
            memset(latest, 0, sizeof(*latest));
    } else {
        if (applied != NULL)
            *applied = r->membership;
        if (latest != NULL)
            raft_node_membership(r->raft, latest);
    }
    pthread_mutex_unlock(&r->node->mu);
    return rc;
}

void replica__cancel_waiter(range_replica *r, range_propose_fn cb, void *ctx)
{
    pthread_mutex_lock(&r->node->mu);
    for (size_t i = 0; i < r->n_waiters; i++) {
        if (r->waiters[i].cb == cb && r->waiters[i].ctx == ctx) {
            r->waiters[i] = r->waiters[--r->n_waiters];
            break;
        }
    }
    pthread_mutex_unlock(&r->node->mu);
}

/* ---- the node driver -------------------------------------------------------- */

/* Leader: propose a log truncation when the log holds log_truncate_entries
** and at least half of them are applied here and stored on every member
** (docs/range.md, "Log truncation"). One proposal at a time: the next only
** once this replica has applied past the previous one's index. */
#define REPLICA_TRUNCATE_LAGGARD_FACTOR 4 /* log entries (x log_truncate_entries) kept
                                            for a member that is behind */

static void replica_maybe_truncate(range_replica *r)
{
    uint64_t keep = (uint64_t)r->config.log_truncate_entries, min_match = 0, term = 0;
    uint8_t data[REPLICA_TRUNCATE_SIZE];
    raft_status st;
    raft_update u;
    if (r->config.log_truncate_entries <= 0 || r->failed || r->truncate_proposed > r->applied)
        return;
    raft_node_status(r->raft, &st);
    /* the members keep their logs from the last truncation entry (or
    ** further back: this leader's own log may be shorter after a snapshot) */
    uint64_t base = BASE_MIN(r->trunc_base, st.snapshot_index);
    if (st.role != RAFT_LEADER || st.last_index - base < keep)
        return;
    if (raft_node_min_match(r->raft, &min_match) != RAFT_OK)
        return;
    uint64_t x = min_match < r->applied ? min_match : r->applied;
    if (st.last_index - base >= REPLICA_TRUNCATE_LAGGARD_FACTOR * keep)
        x = r->applied; /* a member that far behind catches up by a snapshot */
    if (x < st.snapshot_index || x <= base || x - base < keep / 2 ||
        raft_node_term_at(r->raft, x, &term) != RAFT_OK)
        return;
    data[0] = REPLICA_TRUNCATE_TAG;
    replica__put_u64(data + 1, x);
    replica__put_u64(data + 9, term);
    raft_proposal p = {data, sizeof(data)};
    raft_event ev = {.type = RAFT_EVENT_PROPOSE, .proposals = &p, .n_proposals = 1};
    if (raft_step(r->raft, &ev, &u) == RAFT_OK)
        r->truncate_proposed = u.proposed_index;
    replica_process(r, &u);
}

/* STALLED LEADER (MERGES, the second defence): a leader whose apply
** stalls at a MERGE that can never apply here -- the right was merged away
** on this node (the merged tombstone: no replica of it is ever made here
** again) -- would keep the lease, and the range, unavailable for ever. It
** hands leadership to another voter once it led stalled so for
** REPLICA_STALL_HANDOFF_TICKS, each voter in turn. Safe: a plain Raft
** transfer; its log stays (it still acknowledges entries, counts in
** quorums), and its apply waits for a snapshot as before. A right that may
** still come (absent without that tombstone, or not frozen yet) is waited
** for. Node mutex held. */
static void replica_stall_handoff(range_replica *r)
{
    raft_status st;
    raft_update u;
    uint64_t tomb = 0;
    /* counted from when it became a stalled leader (or last handed on) */
    if (!r->apply_stalled || r->stall_right_id == 0 || r->raft == NULL) {
        r->stall_handoff_tick = r->tick;
        return;
    }
    raft_node_status(r->raft, &st);
    if (st.role != RAFT_LEADER || st.transfer_to != RAFT_NONE) {
        r->stall_handoff_tick = r->tick;
        return;
    }
    if (r->tick - r->stall_handoff_tick < REPLICA_STALL_HANDOFF_TICKS)
        return;
    r->stall_handoff_tick = r->tick; /* looked at (the store too) once a period */
    range_node *n = r->node;
    for (size_t i = 0; i < n->n_replicas; i++) {
        const range_replica *o = n->replicas[i];
        if (o->config.range_id == r->stall_right_id && !o->retired && o->remove_generation == 0)
            return; /* it may still freeze and catch up */
    }
    if (load_tombstone(n->config.engine, r->stall_right_id, &tomb) != RANGE_OK ||
        tomb != REPLICA_MERGED_TOMBSTONE)
        return;
    size_t others = 0;
    for (size_t i = 0; i < r->membership.n_voters; i++)
        others += r->membership.voters[i] != r->id;
    if (others == 0)
        return; /* the only voter: nobody to hand it to */
    size_t pick = (size_t)(r->stall_handoffs++ % others);
    uint64_t target = 0;
    for (size_t i = 0; i < r->membership.n_voters && target == 0; i++)
        if (r->membership.voters[i] != r->id && pick-- == 0)
            target = r->membership.voters[i];
    raft_event ev = {.type = RAFT_EVENT_TRANSFER, .transfer_to = target};
    int rc = replica_step(r, &ev, &u);
    BASE_WARN("range", "r%llu n%llu: apply stalled at index %llu for good (r%llu merged away "
              "here): leadership handed to n%llu (%d)", (unsigned long long)r->config.range_id,
              (unsigned long long)r->id, (unsigned long long)(r->applied + 1),
              (unsigned long long)r->stall_right_id, (unsigned long long)target, rc);
}

static void replica_tick(range_replica *r)
{
    raft_update u;
    if (r->failed || r->remove_generation != 0 || r->discard)
        return;
    r->tick++;
    if (!r->initialized && ++r->quiet_ticks > REPLICA_UNINIT_QUIET_TICKS) {
        BASE_INFO("range", "r%llu n%llu: no snapshot came for the replica made on demand: "
                  "dropped", (unsigned long long)r->config.range_id, (unsigned long long)r->id);
        r->discard = true;
        return;
    }
    maybe_ask_removed(r);
    replica_apply_backlog(r, &r->node->pass_apply_bytes, true); /* ticks run in a pass */
    if (r->failed)
        return;
    replica_stall_handoff(r);
    if (r->campaign_next_tick) {
        r->campaign_next_tick = false;
        raft_event cev = {.type = RAFT_EVENT_CAMPAIGN};
        (void)replica_step(r, &cev, &u);
    }
    raft_event ev = {.type = RAFT_EVENT_TICK};
    (void)replica_step(r, &ev, &u);
    raft_status rs;
    raft_node_status(r->raft, &rs);
    r->leaderless_ticks = rs.leader != RAFT_NONE ? 0 : r->leaderless_ticks + 1;
    replica_maybe_truncate(r);
    size_t i = 0;
    while (i < r->n_waiters) {
        if (r->waiters[i].deadline_tick > r->tick) { /* UINT64_MAX: never */
            i++;
            continue;
        }
        replica_waiter w = r->waiters[i];
        r->waiters[i] = r->waiters[--r->n_waiters];
        w.cb(w.ctx, RANGE_ERR_AMBIGUOUS);
    }
    i = 0;
    while (i < r->n_reads) {
        if (r->reads[i].deadline_tick > r->tick) {
            i++;
            continue;
        }
        replica_read rd = r->reads[i];
        r->reads[i] = r->reads[--r->n_reads];
        rd.cb(rd.ctx, RANGE_ERR_UNAVAILABLE);
    }
}

void range_node_tick(range_node *n)
{
    range_node_tick_n(n, 1);
}

/* The ticks of one call go in under one hold of the node mutex: between
** them no read can find the tick fresh (last_tick_ns) while the cores'
** lease clocks still lag real time (found by test_range_sim_multi, seed 4:
** a woken node got its missed ticks one call at a time and could serve a
** lease read between two of them while another node held the lease). */
void range_node_tick_n(range_node *n, int count)
{
    bool purge = false;
    if (count < 1)
        return;
    if (count > RANGE_NODE_TICKS_AT_ONCE_MAX)
        count = RANGE_NODE_TICKS_AT_ONCE_MAX;
    pthread_mutex_lock(&n->mu);
    if (n->config.clock != NULL)
        n->last_tick_ns = n->config.clock(n->config.clock_ctx);
    node_pass_begin(n); /* COALESCING: heartbeats go out one batch per node */
    for (int k = 0; k < count; k++) {
        n->ticks++;
        for (size_t i = 0; i < n->n_replicas; i++)
            replica_tick(n->replicas[i]);
        node_reap_locked(n);
    }
    node_pass_end(n);
    if (n->config.log != NULL && n->purge_wanted && !n->purging && !n->log_failed &&
        n->ticks - n->purge_tick >= REPLICA_PURGE_TICKS) {
        n->purge_wanted = false;
        n->purging = true;
        n->purge_tick = n->ticks;
        purge = true;
    }
    pthread_mutex_unlock(&n->mu);
    if (!purge)
        return;
    /* Outside the node mutex: it may rewrite hard states and fsync. */
    size_t deleted = 0;
    int rc = raft_log_purge(n->config.log, &deleted);
    if (rc != RAFT_LOG_OK)
        BASE_WARN("range", "n%llu: raft log purge: %s", (unsigned long long)n->id,
                  raft_log_strerror(rc));
    else if (deleted > 0)
        BASE_DEBUG("range", "n%llu: %zu raft log segment(s) deleted", (unsigned long long)n->id,
                   deleted);
    pthread_mutex_lock(&n->mu);
    n->purging = false;
    pthread_mutex_unlock(&n->mu);
}

/* One round of the log syncer: sync the shared log up to the newest seq a
** replica waits for (without the node mutex: appends go on meanwhile, and
** the next round covers them), then hand every replica what became
** durable. */
static int node_sync_round(range_node *n)
{
    pthread_mutex_lock(&n->mu);
    uint64_t target = n->sync_want;
    bool failed = n->log_failed;
    pthread_mutex_unlock(&n->mu);
    if (failed)
        return RANGE_ERR_IO;
    if (target == 0)
        return RANGE_OK;
    int rc = raft_log_sync(n->config.log, target);
    pthread_mutex_lock(&n->mu);
    if (rc != RAFT_LOG_OK) {
        if (!n->log_failed)
            BASE_ERROR("range", "n%llu: raft log sync failed: %s; every replica stopped",
                       (unsigned long long)n->id, raft_log_strerror(rc));
        n->log_failed = true;
        for (size_t i = 0; i < n->n_replicas; i++)
            n->replicas[i]->failed = true; /* the core is ahead of the disk */
    } else {
        uint64_t synced = raft_log_synced_seq(n->config.log);
        if (synced < target)
            synced = target;
        if (synced > n->sync_done)
            n->sync_done = synced;
        node_pass_begin(n);
        for (size_t i = 0; i < n->n_replicas; i++)
            replica_log_durable(n->replicas[i], n->sync_done);
        node_pass_end(n);
    }
    pthread_mutex_unlock(&n->mu);
    return rc == RAFT_LOG_OK ? RANGE_OK : RANGE_ERR_IO;
}

static void *node_syncer_main(void *arg)
{
    range_node *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!n->syncer_stop) {
        if (n->log_failed || n->sync_want <= n->sync_done) {
            pthread_cond_wait(&n->sync_cv, &n->mu);
            continue;
        }
        pthread_mutex_unlock(&n->mu);
        (void)node_sync_round(n);
        pthread_mutex_lock(&n->mu);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

int range_node_sync_log(range_node *n)
{
    if (n == NULL || n->config.log == NULL || !n->config.sync || !n->config.log_sync_manual)
        return RANGE_OK;
    pthread_mutex_lock(&n->mu);
    bool idle = n->sync_want <= n->sync_done && !n->log_failed;
    pthread_mutex_unlock(&n->mu);
    return idle ? RANGE_OK : node_sync_round(n);
}

/* The replica of range_id, or NULL. The search starts at *hint and leaves
** it after the match: a batch lists ranges in its sender's order, which is
** mostly ours, so a batch costs O(messages), not O(messages x replicas). */
static range_replica *node_find_locked(range_node *n, uint64_t range_id, size_t *hint)
{
    for (size_t k = 0; k < n->n_replicas; k++) {
        size_t i = (*hint + k) % n->n_replicas;
        if (n->replicas[i]->config.range_id == range_id) {
            *hint = i + 1;
            return n->replicas[i];
        }
    }
    return NULL;
}

/* Step one received message (from rpc sender `sender`). Node mutex held,
** inside a pass. */
static void node_deliver_locked(range_node *n, range_raft_msg *dm, uint64_t sender, size_t *hint)
{
    raft_update u;
    if (dm->msg.to != n->id || dm->msg.from != sender) {
        BASE_WARN("range", "n%llu: raft message for n%llu from n%llu (sender n%llu) dropped",
                  (unsigned long long)n->id, (unsigned long long)dm->msg.to,
                  (unsigned long long)dm->msg.from, (unsigned long long)sender);
        return;
    }
    if ((int)dm->msg.type == REPLICA_MSG_REMOVED) {
        handle_removed_msg(n, dm->range_id, dm->msg.from, dm->msg.index);
        node_reap_locked(n);
        return;
    }
    range_replica *r = node_find_locked(n, dm->range_id, hint);
    if (r == NULL)
        r = node_replica_on_demand_locked(n, dm);
    if (r == NULL) {
        BASE_DEBUG("range", "n%llu: %s for unknown range r%llu answered as an empty log",
                   (unsigned long long)n->id, raft_message_type_name(dm->msg.type),
                   (unsigned long long)dm->range_id);
        answer_unhosted(n, dm);
    } else if (!r->failed && r->remove_generation == 0 && !r->discard) {
        r->quiet_ticks = 0;
        maybe_tell_removed(r, dm->msg.from);
        raft_event ev = {.type = RAFT_EVENT_MESSAGE, .message = &dm->msg};
        int rrc = replica_step(r, &ev, &u);
        if (rrc == RAFT_ERR_INVALID)
            BASE_WARN("range", "r%llu n%llu: malformed %s from n%llu ignored",
                      (unsigned long long)dm->range_id, (unsigned long long)n->id,
                      raft_message_type_name(dm->msg.type), (unsigned long long)sender);
        if (r->remove_generation != 0 || r->discard)
            node_reap_locked(n); /* as after a lone message: the next one finds it gone */
    }
}

bool range_node_handle_rpc(range_node *n, rpc_transport *t, const rpc_message *msg)
{
    range_raft_batch batch;
    range_raft_msg one;
    if (msg->method != RANGE_RPC_METHOD_RAFT)
        return false;
    if (msg->request_id != 0) {
        /* Raft traffic is one-way: a request of this method is a peer's bug */
        BASE_DEBUG("range", "n%llu: raft request from n%llu refused", (unsigned long long)n->id,
                   (unsigned long long)msg->from);
        (void)rpc_respond(t, msg->from, msg->request_id, RPC_ERR_NO_HANDLER, NULL, 0);
        return true;
    }
    int rc;
    bool is_batch = msg->payload_len > 0 && msg->payload[0] == RANGE_CODEC_BATCH_VERSION;
    if (is_batch) {
        rc = range_raft_batch_decode(msg->payload, msg->payload_len, &batch);
    } else {
        rc = range_raft_msg_decode(msg->payload, msg->payload_len, &one);
        batch.msgs = &one;
        batch.n = 1;
    }
    if (rc != RANGE_OK) {
        BASE_WARN("range", "n%llu: bad raft %s (%zu bytes) from n%llu dropped: %d",
                  (unsigned long long)n->id, is_batch ? "batch" : "message", msg->payload_len,
                  (unsigned long long)msg->from, rc);
        return true;
    }
    pthread_mutex_lock(&n->mu);
    node_pass_begin(n); /* COALESCING: the answers go back in one batch */
    size_t hint = 0;
    for (size_t i = 0; i < batch.n; i++)
        node_deliver_locked(n, &batch.msgs[i], msg->from, &hint);
    node_reap_locked(n);
    node_pass_end(n);
    pthread_mutex_unlock(&n->mu);
    if (is_batch)
        range_raft_batch_free(&batch);
    else
        range_raft_msg_free(&one);
    return true;
}

static void node_handler(void *ctx, rpc_transport *t, const rpc_message *msg)
{
    range_node *n = ctx;
    if (range_node_handle_rpc(n, t, msg))
        return;
    BASE_DEBUG("range", "n%llu: unexpected method %u from n%llu dropped",
               (unsigned long long)n->id, msg->method, (unsigned long long)msg->from);
    if (msg->request_id != 0)
        (void)rpc_respond(t, msg->from, msg->request_id, RPC_ERR_NO_HANDLER, NULL, 0);
}

int range_node_new(const range_node_config *config, range_node **out)
{
    if (config == NULL || config->transport == NULL || config->engine == NULL || out == NULL ||
        (config->clock != NULL && config->tick_ns <= 0))
        return RANGE_ERR_INVALID;
    uint64_t id = rpc_node(config->transport);
    if (id == 0)
        return RANGE_ERR_INVALID;
    range_node *n = base_calloc(1, sizeof(*n)); /* owner: caller, range_node_free */
    if (n == NULL)
        return RANGE_ERR_NOMEM;
    if (pthread_mutex_init(&n->mu, NULL) != 0) {
        base_free(n);
        return RANGE_ERR_NOMEM;
    }
    if (pthread_cond_init(&n->sync_cv, NULL) != 0) {
        pthread_mutex_destroy(&n->mu);
        base_free(n);
        return RANGE_ERR_NOMEM;
    }
    if (pthread_mutex_init(&n->floor_mu, NULL) != 0) {
        pthread_cond_destroy(&n->sync_cv);
        pthread_mutex_destroy(&n->mu);
        base_free(n);
        return RANGE_ERR_NOMEM;
    }
    n->config = *config;
    n->id = id;
    if (config->log != NULL && config->sync && !config->log_sync_manual) {
        if (pthread_create(&n->syncer, NULL, node_syncer_main, n) != 0) {
            pthread_mutex_destroy(&n->floor_mu);
            pthread_cond_destroy(&n->sync_cv);
            pthread_mutex_destroy(&n->mu);
            base_free(n);
            return RANGE_ERR_NOMEM;
        }
        n->syncer_started = true;
    }
    if (!config->no_handler)
        rpc_set_handler(config->transport, node_handler, n);
    *out = n;
    return RANGE_OK;
}

void range_node_set_draining(range_node *n, bool draining)
{
    pthread_mutex_lock(&n->mu);
    n->draining = draining;
    pthread_mutex_unlock(&n->mu);
}

void range_node_forget_transport(range_node *n)
{
    pthread_mutex_lock(&n->mu);
    n->config.transport = NULL; /* node_send drops from now on */
    pthread_mutex_unlock(&n->mu);
}

void range_node_free(range_node *n)
{
    if (n == NULL)
        return;
    if (n->config.transport != NULL && !n->config.no_handler)
        rpc_set_handler(n->config.transport, NULL, NULL);
    if (n->syncer_started) {
        /* Writes not yet synced stay unacknowledged: as after a crash. */
        pthread_mutex_lock(&n->mu);
        n->syncer_stop = true;
        pthread_cond_broadcast(&n->sync_cv);
        pthread_mutex_unlock(&n->mu);
        pthread_join(n->syncer, NULL);
    }
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_replicas; i++)
        replica_free(n->replicas[i]);
    for (size_t i = 0; i < n->n_retired; i++)
        replica_free(n->retired[i]);
    base_free(n->replicas);
    base_free(n->retired);
    base_free(n->hosted);
    base_buf_free(&n->send_buf);
    base_buf_free(&n->snap_buf);
    for (size_t i = 0; i < REPLICA_OUTBOX_PEERS_MAX; i++)
        base_buf_free(&n->outbox[i].batch);
    pthread_mutex_unlock(&n->mu);
    pthread_mutex_destroy(&n->floor_mu);
    pthread_cond_destroy(&n->sync_cv);
    pthread_mutex_destroy(&n->mu);
    base_free(n);
}
