/*
** tests/raft/rsim.h: a deterministic cluster of raft/ cores in one process.
**
** Each simulated node has the pure core, a "disk" (a durable hard state and
** log, plus a queue of unsynced writes that a crash loses, or keeps only a
** prefix of) and a replicated key-value map fed by its committed entries.
** The network holds deep-copied messages with a delivery time; it delays,
** drops, duplicates, reorders (random delays) and partitions (a blocked[from]
** [to] matrix: symmetric and one-way). Everything random comes from one
** seeded PRNG, so a seed replays a run exactly.
**
** The contract of raft/raft.h is followed to the letter: entries and hard
** state of an update are queued as unsynced writes; messages_after_persist
** wait in `held` until the next sync; a sync makes every queued write
** durable, releases the held messages and steps RAFT_EVENT_PERSISTED.
**
** Checked after every step (rsim_fail on violation): at most one leader per
** term; log matching (every (index, term) ever written has one payload and
** one previous term); committed entries never change (state machine safety);
** each node's applied sequence is a prefix of the committed history; a new
** leader holds every committed entry (leader completeness); reads are never
** stale (a read's index is >= the highest commit index anywhere when the
** read was asked); persist before send (when a message leaves a node, its
** durable term is >= the message's, a granted vote is durable, an acked
** index is on its durable log). At every crash: each committed entry is
** durable on a majority (committed entries are never lost).
**
** Client histories (random mode): every write and read a client asks of
** the map is recorded (rsim_op) and, at the end of the run, checked per key
** for linearizability by the register checker of tests/chaos/
** (rsim_check_history; docs/raft.md, "How it is tested").
**
** Membership and snapshots: nodes 1..n_boot form the bootstrap voters;
** the others are spares that know the bootstrap configuration and join when
** the leader adds them (rsim_conf). rsim_compact makes a node snapshot its
** key-value map at its applied index (durable at once, as an application
** would write and fsync the file before telling the core) and compacts.
** The disk keeps the latest snapshot and the log after it; an installed
** snapshot is checked against the committed history replayed to its index.
** Committed entries must stay durable (in a log or under a snapshot) on a
** majority of the smallest configuration ever seen.
**
** Two modes: random (rsim_run_seed: the fault profiles) and manual (the
** data-driven tests: FIFO delivery under explicit commands, syncs at once,
** a trace of what happened written to `trace`).
**
** Real log store (rsim_use_real_log; rsim_run_seed_real; the slower mode):
** each node also persists through its own raft_log (raft/log.c, group 1) in
** a directory of its own, beside the in-memory disk, which stays the
** reference. What is simulated and how:
**   - a write reaches the real log when the node syncs (raft_log_append of
**     hard state, snapshot point, entries; then one raft_log_sync), so a
**     crash loses exactly the unsynced writes, as in the in-memory disk;
**   - a crash that keeps a prefix of unsynced writes writes (and syncs)
**     that prefix, then closes the log;
**   - a torn write: at a crash, the first lost write's first entry (when it
**     is a plain append) is appended unsynced, the log closed, and the last
**     segment cut at a random byte inside that record;
**   - a snapshot is kept by the application (in memory: the "file" beside
**     the log); the log gets the matching raft_log_compact, and a purge
**     follows every compaction (small segments, so roll-over and segment
**     deletion happen);
**   - restart = raft_log_open (recovery, torn tail cut) + raft_node_restore
**     from the hard state and entries that the log returns, after checking
**     them against the in-memory disk (same entries, terms, payloads, term
**     and vote, compaction point).
** Not simulated: loss of data that raft_log_sync reported durable (media
** or kernel bugs), reordered page write-back after a power loss (only a
** torn tail, never a hole), failing writes or fsyncs (EIO), a full disk.
** The real-log decisions draw from a PRNG of their own, so a seed runs the
** same schedule in both modes.
*/
#ifndef MERIDIAN_RSIM_H
#define MERIDIAN_RSIM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "raft/raft.h"

#define RSIM_MAX_NODES 5
#define RSIM_KEYS 8
#define RSIM_MAX_READS 16384  /* read ids per run; beyond: RAFT_ERR_BUSY */
#define RSIM_MAX_NET 100000   /* messages in flight; beyond: dropped */
#define RSIM_MAX_OPS 65536    /* client ops recorded per run; beyond: the run's
                              ** history is not checked (its keys count unknown) */

/* One client operation on the replicated map (random mode), for the
** linearizability check. Times are simulated time units (RSIM_TICK_UNITS
** per tick). A write is acknowledged when the node it was proposed at
** applies it (ok), or learns that another entry took its index (fail); a
** crash of that node or the end of the run leaves it info (it may still
** commit). A read is answered when the node's applied index reaches the
** read state's index; aborted or unanswered reads are dropped. */
typedef enum rsim_op_state {
    RSIM_OP_PENDING = 0,
    RSIM_OP_OK = 1,
    RSIM_OP_INFO = 2,
    RSIM_OP_DROPPED = 3, /* fail: never took effect / returned nothing */
} rsim_op_state;

typedef struct rsim_op {
    bool is_read;
    uint8_t state; /* rsim_op_state */
    uint8_t key;
    int node;      /* node the client asked */
    int64_t value; /* written, or read (valid when ok) */
    int64_t invoke, complete;
    uint64_t index, term; /* write: proposed entry (index 0: not yet known);
                          ** read: index to reach once answered (0: not yet) */
    uint64_t read_id;     /* read: the id given to the core */
} rsim_op;

/* What a random run measured (added to, never reset). */
typedef struct rsim_run_stats {
    uint64_t lin_ops;          /* ops in the checked histories */
    uint64_t lin_keys;         /* keys checked */
    uint64_t lin_unknown_keys; /* verdict unknown: search budget exhausted */
} rsim_run_stats;

/* Test-only knobs of a random run. */
typedef struct rsim_run_opts {
    /* Broken on purpose: a read asked at a node that is not the leader is
    ** answered at once from its applied state, without ReadIndex or lease.
    ** The linearizability check must catch it (proves it is wired). */
    bool stale_follower_reads;
} rsim_run_opts;

typedef struct rsim_write {
    raft_hard_state hs;
    bool has_hs;
    bool has_snap; /* install snap/snap_data first */
    raft_snapshot snap;
    uint8_t *snap_data; /* owner: the write */
    raft_entry *entries; /* owner: the write (deep copy) */
    size_t n_entries;
} rsim_write;

typedef struct rsim_node {
    uint64_t id;
    bool up;
    raft_node *raft;
    /* durable disk */
    raft_hard_state dhs;
    raft_entry *dlog; /* owner: node, deep copies; dlog[k].index = dsnap.index + 1 + k */
    size_t dlen, dcap;
    raft_snapshot dsnap; /* durable snapshot (index 0: none); data: dsnap_data */
    uint8_t *dsnap_data; /* owner: node */
    /* unsynced writes and the messages waiting for them */
    rsim_write *pending;
    size_t n_pending, cap_pending;
    uint64_t pending_seq;
    raft_message *held; /* clones */
    size_t n_held, cap_held;
    int64_t sync_at; /* -1: no sync scheduled */
    /* state machine */
    uint64_t applied;
    uint64_t kv[RSIM_KEYS];
    /* checker bookkeeping */
    uint64_t commit_checked;
    uint64_t conf_checked_last, conf_checked_term, conf_checked_snap; /* log shape last checked */
    raft_role role;
    uint64_t term;
    int64_t down_until;
    /* real log store mode (rsim_use_real_log): NULL while crashed */
    raft_log *rlog;
    char rdir[512];
    uint64_t rlog_seq; /* newest raft_log seq written */
    /* random mode: the node's clock rate (permille of nominal) and phase */
    int tick_rate;
    int tick_acc;
    /* lazy snapshots: the core asked for one (update.snapshot_wanted) */
    bool snap_wanted;
} rsim_node;

typedef struct rsim_msg {
    raft_message m; /* clone */
    int64_t deliver_at;
} rsim_msg;

typedef struct rsim_committed {
    uint64_t term;
    uint64_t hash;
    bool put;      /* a put on the key-value map: key, value */
    uint8_t key;
    uint64_t value;
} rsim_committed;

typedef struct rsim_reg_slot {
    uint64_t index, term; /* term 0: empty slot */
    uint64_t prev_term, hash;
} rsim_reg_slot;

typedef struct rsim {
    int n;
    int n_boot; /* bootstrap voters 1..n_boot; the rest are spares */
    size_t min_voters; /* smallest voter count of any config seen */
    rsim_node nodes[RSIM_MAX_NODES];
    raft_config base;
    uint64_t seed;
    uint64_t rng;
    int64_t now;
    bool manual;
    bool manual_sync; /* manual mode: writes wait for rsim_sync (else at once) */
    /* network */
    rsim_msg *net;
    size_t n_net, cap_net;
    bool blocked[RSIM_MAX_NODES][RSIM_MAX_NODES];
    int drop_pct, dup_pct, delay_min, delay_max, sync_delay_max;
    int crash_keep_pct; /* chance a crash keeps a prefix of unsynced writes */
    /* checks */
    uint64_t *leader_of_term;
    size_t cap_terms;
    rsim_committed *committed; /* committed[i-1] for index i */
    size_t n_committed, cap_committed;
    rsim_reg_slot *reg;
    size_t reg_cap, reg_len;
    uint64_t read_floor[RSIM_MAX_READS];
    uint64_t next_read_id;
    uint64_t next_client_id;
    /* client history (random mode): ops[]; pending_ops: indices of the
    ** ops still pending */
    bool lin_record;
    bool lin_stale_follower_reads;
    bool lin_overflow; /* RSIM_MAX_OPS hit: history not checked (counted unknown) */
    rsim_op *ops;
    size_t n_ops, cap_ops;
    uint32_t *pending_ops;
    size_t n_pending_ops, cap_pending_ops;
    /* results */
    bool failed;
    char fail_msg[512];
    base_buf *trace; /* manual mode: what happened (not owned) */
    /* Out-of-memory injection: during the oom_step-th raft_step call, the
    ** allocation after oom_after successful ones fails (and all later ones
    ** in that call). 0: off. Only the core's allocations are hit. */
    uint64_t steps;
    uint64_t oom_step;
    long oom_after;
    uint64_t oom_errors; /* steps that returned RAFT_ERR_NOMEM */
    uint64_t stat_reads_ok, stat_lease_reads, stat_elections, stat_crashes;
    uint64_t stat_conf_changes, stat_compactions, stat_installs;
    uint64_t stat_lazy_snapshots; /* RAFT_EVENT_SNAPSHOT answers (lazy_snapshots) */
    /* real log store mode */
    bool real_log;
    uint64_t rng_disk; /* its own PRNG: the schedule is the same in both modes */
    uint64_t stat_torn, stat_log_restarts, stat_purged;
} rsim;

/* n nodes with ids 1..n; config tweaks applied to raft_config_default.
** tweak->n_voters in [1, n) makes only 1..n_voters bootstrap voters (the
** rest spares); otherwise all n are voters. */
int rsim_init(rsim *s, int n, uint64_t seed, bool manual, const raft_config *tweak);
void rsim_free(rsim *s);

void rsim_fail(rsim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Step one event on node id (1-based); handles the update. Returns raft rc. */
int rsim_step(rsim *s, int id, const raft_event *ev, raft_update *out_copy);
int rsim_tick(rsim *s, int id);
int rsim_propose(rsim *s, int id, uint8_t key, uint64_t value);
int rsim_read(rsim *s, int id, bool allow_lease);
void rsim_sync(rsim *s, int id);
void rsim_crash(rsim *s, int id, bool keep_prefix);
int rsim_restart(rsim *s, int id);
void rsim_heal(rsim *s);
/* Membership change at node id (the leader): RAFT_EVENT_CONF_CHANGE. */
int rsim_conf(rsim *s, int id, raft_conf_change_type type, int node);
/* Snapshot node id's map at its applied index and compact its log (with
** base.lazy_snapshots the core gets no bytes: the disk keeps them). */
int rsim_compact(rsim *s, int id);
/* Lazy snapshots: answer node id's snapshot_wanted with its map at its
** applied index (RAFT_EVENT_SNAPSHOT). */
int rsim_serve_snapshot(rsim *s, int id);
/* Node id is a member (voter or learner) of the config in effect at the
** leader `leader`. */
bool rsim_is_member(rsim *s, int leader, int id);

/* Manual mode: deliver queued messages (from/to 0 = any) FIFO until none is
** left or max_rounds passes over the queue; messages on blocked links are
** dropped. Returns the number delivered. */
int rsim_deliver(rsim *s, int from, int to, int max_rounds);
/* Manual mode: drop queued messages matching from/to (0 = any). */
int rsim_drop(rsim *s, int from, int to);

/* Random mode: one whole run with a fault profile picked by the seed.
** Returns 0 if every check passed; else fills s->fail_msg. */
int rsim_run_seed(uint64_t seed, char *fail_msg, size_t fail_msg_size);
/* The same run with every node also persisting through a real raft_log in
** dir/node<id> (dir must exist and hold no such folders; they are left
** there for the caller to remove). */
int rsim_run_seed_real(uint64_t seed, const char *dir, char *fail_msg, size_t fail_msg_size);
/* Either of the above (dir NULL: in memory) with test knobs (opts may be
** NULL) and measurements added to *stats (may be NULL). At the end of the
** run every key's client history is checked for linearizability
** (tests/chaos/ register checker); "invalid" fails the run with the
** checker's report (also printed to stderr); "unknown" is counted only. */
int rsim_run_seed_ex(uint64_t seed, const char *dir, const rsim_run_opts *opts,
                     rsim_run_stats *stats, char *fail_msg, size_t fail_msg_size);
/* Check the client history recorded in s (random mode) for
** linearizability, per key; 0, or -1 after rsim_fail. Adds to stats. */
int rsim_check_history(rsim *s, rsim_run_stats *stats);
/* Switch s (just after rsim_init, before any step) to the real log store:
** opens dir/node<id> for each node. Returns 0 or a raft_log_error. */
int rsim_use_real_log(rsim *s, const char *dir);

void rsim_format_message(const raft_message *m, base_buf *b);

#endif
