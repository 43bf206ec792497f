/*
** raft/: a pure Raft core (no clock, socket, file or global random source).
**
** The caller drives one raft_node per replica of a Raft group through a
** single entry point, raft_step(node, &event, &update), in the style of
** cowsql's raft_step and etcd-io/raft's RawNode. An event is one of: a
** message from a peer, a tick of the abstract clock, a proposal, "updates up
** to sequence number S are durable", a read request, a leadership transfer
** request, or a request to campaign now. The update says what must happen
** next; it is owned by the node and valid until the next raft_step or
** raft_node_free on that node.
**
** THE CONTRACT (docs/raft.md, "API contract"). For every update U, in order:
**   1. If U.persist_seq != 0: durably write U.hard_state (if
**      U.hard_state_changed), then U.snapshot (if set: see its field),
**      then U.entries. Writing entries first deletes
**      every stored entry with index >= U.entries[0].index (a new leader may
**      overwrite an unsynced or uncommitted suffix).
**   2. U.messages may be sent at once, even before step 1 completes (they
**      never depend on anything unsynced: the leader's own appends, the
**      heartbeats and pre-votes of an already durable term).
**   3. U.messages_after_persist may be sent only after everything written
**      by U and by every earlier update is durable (fsync returned).
**   4. Once the writes of U (and all earlier ones) are durable, step the
**      event RAFT_EVENT_PERSISTED with persist_seq = U.persist_seq (a later
**      sequence number covers every earlier one; skipping some is fine).
**   5. Install U.snapshot if set, then apply U.committed in order before any
**      later update's committed entries (they are only ever entries that
**      are committed AND durable locally). Serve U.reads once the applied
**      index reaches their index.
**   6. Step RAFT_EVENT_COMPACT only once the snapshot at compact_index is
**      durable, with its configuration (raft_node_membership_at); then the
**      stored log may drop entries <= compact_index (all of them, if the
**      stored entry at compact_index has another term than the snapshot's:
**      possible while an installed snapshot's write is not yet durable).
**   7. With raft_config.lazy_snapshots, if U.snapshot_wanted: a follower
**      needs a snapshot and the node holds none to stream; step
**      RAFT_EVENT_SNAPSHOT with one (taken at an index in [snapshot index,
**      applied]) when it can, now or later (the flag comes back while a
**      follower still waits).
** Messages and entries in U point into node memory: copy what must outlive
** the next raft_step (raft_message_clone).
**
** Time is a tick (RAFT_EVENT_TICK); the caller ticks every node at the same
** nominal rate. Randomized election timeouts come from a PRNG seeded by
** raft_config.random_seed and owned by the node.
**
** Implemented: pre-vote, check-quorum with leader stickiness, randomized
** election timeouts, log replication with a bounded in-flight window per
** follower, proposal batching, fast back-off with conflict hints, commit
** only of the leader's own term by majority (Raft paper, Figure 8),
** ReadIndex reads, leader lease reads, leadership transfer (TimeoutNow),
** "not leader" answers with a leader hint.
** Membership changes one server at a time (RAFT_EVENT_CONF_CHANGE: add a
** learner, promote it, add or remove a voter or learner), with the known
** safety fix: a leader proposes a change only once an entry of its own term
** is committed and no other change is uncommitted. A configuration is a
** RAFT_ENTRY_CONFIG entry (data: raft_membership_encode) and takes effect
** on each node as soon as it is appended, and is rolled back if that entry
** is truncated. A leader removed from the group keeps leading (without
** counting itself) until the entry removing it commits, then steps down.
** Learners replicate but never vote nor count toward quorum or lease.
** Snapshots: RAFT_EVENT_COMPACT drops the log up to an applied index and
** keeps the caller's snapshot of that index; a follower behind the leader's
** first index gets it streamed in chunks (RAFT_MSG_SNAPSHOT, one chunk in
** flight per follower, resent on timeout) and receives it in
** update.snapshot. Restart from a snapshot: raft_node_restore. Lazy
** snapshots (raft_config.lazy_snapshots): COMPACT need not carry bytes;
** the core asks (update.snapshot_wanted) when a follower needs one, the
** caller answers with RAFT_EVENT_SNAPSHOT, and the core drops the bytes
** once no follower streams them.
**
** Critical invariants (kept by raft.c, checked by the simulator):
**   - at most one leader per term; a node's term and vote are durable before
**     any message of that term or that vote leaves it;
**   - log matching: two logs with an entry of the same index and term agree
**     on every entry up to it;
**   - the commit index only grows, only by a majority, and a leader commits
**     by counting only for an entry of its own term;
**   - a lease read is served only while no other leader can exist.
** Thread safety: none; one node is used by one thread at a time.
*/
#ifndef MERIDIAN_RAFT_H
#define MERIDIAN_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_NONE 0ULL           /* "no node": ids are non-zero */
#define RAFT_MAX_VOTERS 16       /* voters + learners in one group */

typedef enum raft_error {
    RAFT_OK = 0,
    RAFT_ERR_NOMEM = -1,        /* allocation failed; the event was dropped */
    RAFT_ERR_NOT_LEADER = -2,   /* update.leader_hint names the leader, or RAFT_NONE */
    RAFT_ERR_TRANSFERRING = -3, /* leadership transfer in progress; retry later */
    RAFT_ERR_INVALID = -4,      /* bad argument or malformed peer message (ignored) */
    RAFT_ERR_BUSY = -5,         /* a bounded queue is full; retry later */
    RAFT_ERR_UNSUPPORTED = -6,  /* reserved feature (config entries, snapshots) */
    RAFT_ERR_TOO_LARGE = -7,    /* proposal above raft_config.max_entry_bytes */
    RAFT_ERR_CONF_PENDING = -8, /* conf change: one is uncommitted, or no entry
                                 * of the leader's term is committed yet: retry */
    RAFT_ERR_NOT_CAUGHT_UP = -9,/* promote: the learner's log is behind commit */
} raft_error;

const char *raft_strerror(int code); /* static string */

typedef enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
} raft_role;
const char *raft_role_name(raft_role role);

typedef enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* application command; data may be empty */
    RAFT_ENTRY_EMPTY = 1,  /* appended by every new leader in its term */
    RAFT_ENTRY_CONFIG = 2, /* membership: data is raft_membership_encode(), then the
                            * conf change's context (raft_event.conf_context) */
} raft_entry_type;

typedef struct raft_entry {
    uint64_t term;
    uint64_t index;
    raft_entry_type type;
    uint8_t *data;  /* owner: whoever owns the entry array (see each use) */
    size_t len;
} raft_entry;

/* Raft paper Figure 2, "persistent state on all servers", plus commit (a
** hint that lets a restarted node apply sooner; never above the last
** durable index). */
typedef struct raft_hard_state {
    uint64_t term;
    uint64_t vote;   /* RAFT_NONE or the node voted for in `term` */
    uint64_t commit;
} raft_hard_state;

typedef enum raft_message_type {
    RAFT_MSG_APPEND = 1,        /* AppendEntries (paper Figure 2) */
    RAFT_MSG_APPEND_RESP = 2,
    RAFT_MSG_VOTE = 3,          /* RequestVote */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PRE_VOTE = 5,      /* thesis 9.6: would you vote for me at term+1? */
    RAFT_MSG_PRE_VOTE_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7,     /* leader liveness, commit, lease and ReadIndex rounds */
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_TIMEOUT_NOW = 9,   /* leadership transfer: campaign now (thesis 3.10) */
    RAFT_MSG_SNAPSHOT = 10,     /* InstallSnapshot, one chunk (thesis 5.1) */
    RAFT_MSG_SNAPSHOT_RESP = 11,/* chunk received: hint_index = next offset wanted */
} raft_message_type;
const char *raft_message_type_name(raft_message_type type);

/* One message. Fields not listed for a type are zero.
**   APPEND:        index = prev log index, log_term = prev log term,
**                  entries, commit.
**   APPEND_RESP:   reject = 0: index = last index the follower now matches.
**                  reject = 1: index = the rejected prev index; hint_index,
**                  log_term = the follower's largest index <= index whose
**                  term is <= the leader's prev term, and that term (fast
**                  back-off).
**   (PRE_)VOTE:    index, log_term = candidate's last log index and term;
**                  force = 1 for a campaign started by TIMEOUT_NOW (voters
**                  then ignore leader stickiness).
**   (PRE_)VOTE_RESP: reject.
**   HEARTBEAT:     commit (<= the follower's match), seq (round number).
**   HEARTBEAT_RESP: seq echoed.
**   TIMEOUT_NOW:   nothing.
**   SNAPSHOT:      index, log_term = the snapshot's last included index and
**                  term; seq = byte offset of this chunk in the snapshot
**                  stream; data/len = the chunk; force = 1 on the last chunk
**                  (done). The stream is raft_membership_encode(config at
**                  index) followed by the application's snapshot bytes.
**   SNAPSHOT_RESP: index, log_term echoed; hint_index = next offset the
**                  follower wants (0: start over). The last chunk is
**                  answered by an APPEND_RESP with index = snapshot index
**                  (after the install is durable).
** owner of entries: in an update, the node (valid until the next raft_step);
** after raft_message_clone, the clone (raft_message_release). */
typedef struct raft_message {
    raft_message_type type;
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t log_term;
    uint64_t index;
    uint64_t commit;
    uint64_t hint_index;
    uint64_t seq;
    bool reject;
    bool force;
    raft_entry *entries;
    size_t n_entries;
    uint8_t *data;  /* SNAPSHOT chunk; owner as for entries */
    size_t len;
} raft_message;

/* Deep copy: *out owns copies of every entry and its data. Returns 0 or
** RAFT_ERR_NOMEM (then *out owns nothing). owner of *out: caller, release
** with raft_message_release. */
int raft_message_clone(const raft_message *m, raft_message *out);
void raft_message_release(raft_message *m); /* frees entries and data; *m zeroed */

/* ---- membership ---------------------------------------------------------- */

/* A configuration: voters and learners (disjoint, non-zero ids). */
typedef struct raft_membership {
    uint64_t voters[RAFT_MAX_VOTERS];
    size_t n_voters;
    uint64_t learners[RAFT_MAX_VOTERS];
    size_t n_learners;
} raft_membership;

#define RAFT_MEMBERSHIP_MAX_BYTES (4 + 8 * 2 * RAFT_MAX_VOTERS)
/* Encode m into buf (RAFT_MEMBERSHIP_MAX_BYTES is always enough): 'M', 1,
** n_voters, n_learners, then each id as 8 bytes little-endian. Returns the
** length. */
size_t raft_membership_encode(const raft_membership *m, uint8_t *buf);
/* Decode; returns the bytes consumed or RAFT_ERR_INVALID (bad format,
** duplicate or zero ids, more than RAFT_MAX_VOTERS members). */
int raft_membership_decode(const uint8_t *data, size_t len, raft_membership *out);
bool raft_membership_is_voter(const raft_membership *m, uint64_t id);
bool raft_membership_is_learner(const raft_membership *m, uint64_t id);

#define RAFT_CONF_CONTEXT_MAX 8192 /* bytes of a conf change's context */

typedef enum raft_conf_change_type {
    RAFT_CONF_ADD_LEARNER = 1, /* a new non-voting member: it catches up first */
    RAFT_CONF_PROMOTE = 2,     /* learner -> voter (RAFT_ERR_NOT_CAUGHT_UP if behind) */
    RAFT_CONF_ADD_VOTER = 3,   /* a new voter at once (prefer learner + promote) */
    RAFT_CONF_REMOVE = 4,      /* remove a voter (the leader itself too) or a learner */
} raft_conf_change_type;

/* A snapshot: the state machine after applying every entry <= index. */
typedef struct raft_snapshot {
    uint64_t index;             /* last included index */
    uint64_t term;              /* its term */
    raft_membership membership; /* configuration in effect at index */
    const uint8_t *data;        /* the application's bytes (borrowed) */
    size_t len;
    bool keep_log;              /* update.snapshot only: see THE CONTRACT */
} raft_snapshot;

typedef struct raft_config {
    uint64_t id;                         /* this node, != RAFT_NONE */
    uint64_t voters[RAFT_MAX_VOTERS];    /* must include id */
    size_t n_voters;
    /* The bootstrap configuration (the one in effect before any
    ** RAFT_ENTRY_CONFIG entry). `id` may be a voter, a learner or neither (a
    ** node joining an existing group: it learns the configuration from the
    ** leader's log or snapshot). n_voters = 0 is allowed only for a joining
    ** node. Ignored by raft_node_restore when a snapshot is given. */
    uint64_t learners[RAFT_MAX_VOTERS];
    size_t n_learners;
    int election_ticks;      /* >= 2 * heartbeat_ticks; timeouts drawn from [e, 2e) */
    int heartbeat_ticks;     /* >= 1 */
    int lease_drift_ticks;   /* >= 1, < election_ticks: clock-rate allowance */
    int max_inflight_msgs;   /* appends in flight per follower, >= 1 */
    size_t max_msg_entries;  /* entries per APPEND, >= 1 */
    size_t max_msg_bytes;    /* payload bytes per APPEND (one entry always fits) */
    size_t max_entry_bytes;  /* largest proposal payload */
    size_t max_apply_entries;/* committed entries per update, >= 1 */
    uint64_t applied;        /* index already applied by the caller (restart) */
    uint64_t random_seed;    /* seeds the node's own PRNG */
    /* Snapshot streaming: bytes per RAFT_MSG_SNAPSHOT chunk (0: 64 KiB) and
    ** ticks before an unanswered chunk is resent (0: election_ticks). */
    size_t snapshot_chunk_bytes;
    int snapshot_resend_ticks;
    /* Lazy snapshots: the core keeps no snapshot bytes of its own accord.
    ** COMPACT and raft_node_restore without bytes (len 0) keep none; when a
    ** follower is behind first_index the update says snapshot_wanted and
    ** the caller steps RAFT_EVENT_SNAPSHOT with its state machine at some
    ** index >= the snapshot index (typically applied); the core streams that
    ** and frees it once no follower streams it. A stream whose configuration
    ** does not name the follower is not sent to it (one is asked for anew):
    ** a member added since must find itself in what it installs, so add new
    ** members as learners (a voter added at once that needs a snapshot
    ** before its addition commits could wait forever). The caller never has
    ** to produce a snapshot at every compaction. */
    bool lazy_snapshots;
    /* May be NULL. Called (pure: no I/O expected) on the application bytes of
    ** a received snapshot before it is installed; false refuses it as a
    ** malformed message (nothing installed, the leader streams it again). */
    bool (*snapshot_check)(void *ctx, uint64_t index, const uint8_t *data, size_t len);
    void *snapshot_check_ctx;
    /* The term the group started at (0 by default). No leader ever existed
    ** at or below it, so a node whose term is still at most this has
    ** acknowledged none and belongs to no lease: it ignores leader
    ** stickiness (votes, campaigns at once), as a node at term 0 does. Set
    ** it only when every member of the group started at that term with no
    ** leader (a new group's initial point, e.g. a range made by a split),
    ** and only for a node whose durable state was never above it. */
    uint64_t initial_term;
} raft_config;

/* Sensible defaults for everything but id, voters and random_seed. */
void raft_config_default(raft_config *config);

typedef struct raft_node raft_node; /* opaque */

/* Create a node from its durable state: `hard_state` (NULL for a fresh
** node) and its stored log `entries[0..n_entries)` (consecutive from index
** 1; copied). Returns 0, RAFT_ERR_INVALID (bad config or log) or
** RAFT_ERR_NOMEM. owner of *out: caller, free with raft_node_free. */
int raft_node_new(const raft_config *config, const raft_hard_state *hard_state,
                  const raft_entry *entries, size_t n_entries, raft_node **out);
/* Restart from a durable snapshot (NULL: same as raft_node_new) and the
** log suffix after it: entries[0].index == snapshot->index + 1. The
** snapshot (data included) is copied: the node streams it to followers that
** are behind its first index. config->applied below snapshot->index is
** raised to it (the caller restored its state machine from the snapshot). */
int raft_node_restore(const raft_config *config, const raft_hard_state *hard_state,
                      const raft_snapshot *snapshot, const raft_entry *entries,
                      size_t n_entries, raft_node **out);
void raft_node_free(raft_node *node);

typedef enum raft_event_type {
    RAFT_EVENT_TICK = 1,
    RAFT_EVENT_MESSAGE = 2,   /* message: borrowed for the call */
    RAFT_EVENT_PROPOSE = 3,   /* propose: data borrowed for the call (copied) */
    RAFT_EVENT_PERSISTED = 4, /* persist_seq: writes of updates <= seq are durable */
    RAFT_EVENT_READ = 5,      /* read: a linearizable read request */
    RAFT_EVENT_TRANSFER = 6,  /* transfer_to: hand leadership to this voter */
    RAFT_EVENT_CAMPAIGN = 7,  /* start a pre-vote now; RAFT_ERR_BUSY while the
                               * node heard from a leader within election_ticks */
    RAFT_EVENT_CONF_CHANGE = 8, /* leader: conf_change / conf_node (one at a time) */
    RAFT_EVENT_COMPACT = 9,   /* snapshot: the state machine at compact_index
                               * (<= applied) is durable in snapshot_data; drop
                               * the log up to it. Any role. */
    RAFT_EVENT_SNAPSHOT = 10, /* lazy_snapshots: the state machine at
                               * snapshot_index (snapshot index <= it <=
                               * applied) in snapshot_data, to stream to the
                               * followers that need one; no compaction, no
                               * durability asked. RAFT_ERR_INVALID without
                               * lazy_snapshots or out of that range. */
} raft_event_type;

typedef struct raft_proposal {
    const uint8_t *data;
    size_t len;
} raft_proposal;

typedef struct raft_event {
    raft_event_type type;
    const raft_message *message;
    /* PROPOSE: a batch appended as consecutive entries, all or nothing. */
    const raft_proposal *proposals;
    size_t n_proposals;
    uint64_t persist_seq;
    /* READ: read_id is echoed in the read state; allow_lease lets the
    ** leader answer from its lease without a round trip. */
    uint64_t read_id;
    bool allow_lease;
    uint64_t transfer_to;
    /* CONF_CHANGE: accepted -> update.proposed_index is the config entry.
    ** conf_context (0..RAFT_CONF_CONTEXT_MAX bytes, borrowed for the call)
    ** is appended to the entry after the membership: the core ignores it
    ** (raft_membership_decode returns the bytes it consumed), the
    ** application reads it at apply (as etcd's ConfChange.Context). */
    raft_conf_change_type conf_change;
    uint64_t conf_node;
    const uint8_t *conf_context;
    size_t conf_context_len;
    /* COMPACT: data borrowed for the call (copied: it is what followers
    ** behind the new first index receive). SNAPSHOT: the same, of
    ** snapshot_index. */
    uint64_t compact_index;
    uint64_t snapshot_index;
    const uint8_t *snapshot_data;
    size_t snapshot_len;
} raft_event;

typedef enum raft_read_status {
    RAFT_READ_OK = 0,      /* serve at index once applied >= index */
    RAFT_READ_ABORTED = 1, /* leadership lost before confirmation: retry */
} raft_read_status;

typedef struct raft_read_state {
    uint64_t read_id;
    uint64_t index;
    raft_read_status status;
    bool by_lease; /* answered from the lease, no round trip */
} raft_read_state;

/* Everything a step asks of the caller (see THE CONTRACT above). */
typedef struct raft_update {
    /* Volatile state, always filled. */
    raft_role role;
    uint64_t term;
    uint64_t leader;       /* RAFT_NONE when unknown */
    uint64_t leader_hint;  /* with RAFT_ERR_NOT_LEADER / TRANSFERRING */
    /* PROPOSE accepted: index and term of the first new entry. */
    uint64_t proposed_index;
    uint64_t proposed_term;

    uint64_t persist_seq;  /* 0: nothing to persist in this update */
    bool hard_state_changed;
    raft_hard_state hard_state;
    const raft_entry *entries; /* to append, after deleting index >= entries[0].index */
    size_t n_entries;

    const raft_message *messages; /* send now */
    size_t n_messages;
    const raft_message *messages_after_persist; /* send once durable */
    size_t n_messages_after_persist;

    const raft_entry *committed; /* apply in order */
    size_t n_committed;

    const raft_read_state *reads;
    size_t n_reads;

    /* A snapshot received from the leader (NULL: none). Part of the persist
    ** of this update, BEFORE its entries: store it durably, replace the
    ** state machine with it, then delete every stored entry with index <=
    ** snapshot->index, and every stored entry at all if !keep_log. Apply
    ** it before this update's committed entries (they follow it). */
    const raft_snapshot *snapshot;

    /* lazy_snapshots: a follower needs a snapshot and none is held (THE
    ** CONTRACT, step 7). */
    bool snapshot_wanted;
} raft_update;

/* Feed one event; fill *update (always, even on error). Returns 0 or a
** raft_error; errors never leave the node inconsistent (at worst the event
** had no effect, like a lost message). */
int raft_step(raft_node *node, const raft_event *event, raft_update *update);

/* ---- introspection (tests, simulator, status pages) ---------------------- */
typedef struct raft_status {
    uint64_t id;
    raft_role role;
    uint64_t term;
    uint64_t vote;
    uint64_t leader;
    uint64_t commit;
    uint64_t applied;      /* last index handed out in update.committed */
    uint64_t last_index;
    uint64_t last_term;
    uint64_t stable_index; /* entries known durable (PERSISTED events) */
    uint64_t transfer_to;  /* RAFT_NONE unless a transfer is in progress */
    bool lease_valid;      /* leader only: a lease read would be served now */
    uint64_t tick;         /* ticks since the node was created */
    uint64_t first_index;  /* first entry in memory (snapshot_index + 1) */
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    uint64_t conf_index;   /* config entry in effect; snapshot index (0: bootstrap)
                            * when the config comes from the snapshot */
    bool voter;            /* this node is a voter of the config in effect */
} raft_status;
void raft_node_status(const raft_node *node, raft_status *out);

/* Term of the entry at index (0 for index 0); RAFT_ERR_INVALID if absent. */
int raft_node_term_at(const raft_node *node, uint64_t index, uint64_t *term);
/* Borrow the entry at index, valid until the next raft_step; NULL if absent. */
const raft_entry *raft_node_entry_at(const raft_node *node, uint64_t index);
/* The configuration in effect (the latest one in the log, committed or not). */
void raft_node_membership(const raft_node *node, raft_membership *out);
/* The configuration in effect at index (snapshot index <= index <= last
** index): what a snapshot taken at that index must record. Returns 0 or
** RAFT_ERR_INVALID (index out of that range). */
int raft_node_membership_at(const raft_node *node, uint64_t index, raft_membership *out);
/* The node's latest snapshot (index 0 if none); data borrowed until the
** next raft_step (NULL, len 0 when the node holds no bytes of it: lazy
** snapshots). */
void raft_node_snapshot(const raft_node *node, raft_snapshot *out);
/* Leader only: the smallest match index (entries the leader knows are
** durable there) over every other member of the configuration in effect,
** voters and learners; the leader's own stable index when it is the only
** member. Compacting the log only up to it (and up to applied) leaves every
** member able to catch up from the log without a snapshot. RAFT_OK, or
** RAFT_ERR_NOT_LEADER (then *out = 0). */
int raft_node_min_match(const raft_node *node, uint64_t *out);

/* ---- the segmented log store (raft/log.c) ---- */
/*
** One write-ahead log per node, shared by every Raft group on it (the shape
** of TiKV's raft-engine): records of all groups go to one sequence of
** segment files, and one fdatasync makes many groups' appends durable
** (group commit). docs/raft.md, "The log on disk", gives the format.
**
** Durability: raft_log_append (and truncate/compact) write to the OS at
** once and return a sequence number; the write is durable only once
** raft_log_sync(log, seq) has returned 0 (or raft_log_synced_seq >= seq).
** Callers report RAFT_EVENT_PERSISTED only after that.
**
** Reads see every append at once (synced or not), like the core's own log.
** Thread safety: every function may be called from any thread at the same
** time, except raft_log_close (no call may be running or follow it).
** Errors: a failed write or fsync poisons the log (every later call that
** writes returns RAFT_LOG_ERR_IO): the node must restart and recover, as a
** failed fsync cannot be retried safely.
*/
typedef enum raft_log_error {
    RAFT_LOG_OK = 0,
    RAFT_LOG_ERR_NOMEM = -101,
    RAFT_LOG_ERR_IO = -102,        /* an OS call failed (or the log is poisoned) */
    RAFT_LOG_ERR_CORRUPT = -103,   /* a record or segment in the middle is bad: the
                                    * message names the file and offset */
    RAFT_LOG_ERR_INVALID = -104,   /* bad argument (gap in indexes, seq not issued...) */
    RAFT_LOG_ERR_TOO_LARGE = -105, /* a record above record_bytes_max */
    RAFT_LOG_ERR_LIMIT = -106,     /* groups_max or segments_max reached: compact + purge */
    RAFT_LOG_ERR_COMPACTED = -107, /* a read below the group's first index */
    RAFT_LOG_ERR_UNAVAILABLE = -108,/* a read above the group's last index */
    RAFT_LOG_ERR_BUSY = -109,      /* another process holds the directory */
} raft_log_error;
const char *raft_log_strerror(int code); /* static string */

typedef struct raft_log raft_log; /* opaque */

typedef struct raft_log_options {
    const char *dir;           /* created if missing (one level) */
    size_t segment_bytes_max;  /* roll over above this; 0: 64 MiB */
    size_t record_bytes_max;   /* largest entry payload + header; 0: 16 MiB */
    size_t groups_max;         /* 0: 65536 */
    size_t segments_max;       /* live segment files (open fds); 0: 1024 */
    /* Called once, when the first write or fdatasync fails (the log is then
    ** poisoned), on the failing thread with the log's mutex held: it must
    ** not call into the log. A node exits here: a failed fsync is never
    ** retried (docs/chaos.md, "disk"). NULL: nothing is called. */
    void (*on_failure)(void *ctx, const char *what);
    void *on_failure_ctx;
} raft_log_options;

/* Open (recover) the log in options->dir. A torn or corrupt TAIL of the last
** segment is truncated away (logged at WARN); anything else that does not
** parse is RAFT_LOG_ERR_CORRUPT and, if errmsg != NULL, a message naming the
** file and byte offset is written to errmsg[0..errmsg_len). Returns 0 or a
** raft_log_error. owner of *out: caller, free with raft_log_close. */
int raft_log_open(const raft_log_options *options, raft_log **out, char *errmsg,
                  size_t errmsg_len);
/* Close the files; appends not yet synced may or may not survive. */
void raft_log_close(raft_log *log);

/* Append to `group`: first the hard state (if hard_state != NULL), then
** entries[0..n) (consecutive indexes). Entries replace every stored entry of
** the group with index >= entries[0].index, which must lie in
** [first_index, last_index + 1]. Everything is borrowed for the call.
** *seq (may be NULL) receives the sequence number to pass to
** raft_log_sync. Returns 0 or a raft_log_error (then nothing of the call is
** visible, unless the log is poisoned). */
int raft_log_append(raft_log *log, uint64_t group, const raft_hard_state *hard_state,
                    const raft_entry *entries, size_t n_entries, uint64_t *seq);
/* Delete the group's entries with index >= from_index (> compact index). */
int raft_log_truncate_suffix(raft_log *log, uint64_t group, uint64_t from_index,
                             uint64_t *seq);
/* Drop the group's entries with index <= up_to_index (a snapshot of it is
** durable elsewhere). If up_to_index > last_index, the log becomes empty and
** its next entry is up_to_index + 1 with previous term `term`; otherwise
** `term` must equal the stored term at up_to_index (or be 0). Segments are
** deleted only by raft_log_purge. */
int raft_log_compact(raft_log *log, uint64_t group, uint64_t up_to_index, uint64_t term,
                     uint64_t *seq);
/* Block until every write with sequence number <= seq is durable (fdatasync
** returned). Concurrent callers share one fdatasync: the first waiter syncs
** everything written so far for everyone, the others wait on a condition
** variable. Returns 0, RAFT_LOG_ERR_INVALID (seq never issued) or
** RAFT_LOG_ERR_IO. */
int raft_log_sync(raft_log *log, uint64_t seq);
uint64_t raft_log_synced_seq(raft_log *log); /* newest durable seq */

/* Delete every segment (but the current one) that holds no live entry of
** any group; hard states and compaction points stored in them are first
** rewritten into the current segment and synced. *n_deleted may be NULL. */
int raft_log_purge(raft_log *log, size_t *n_deleted);

typedef struct raft_log_group_info {
    bool exists;               /* false: nothing stored for this group */
    bool has_hard_state;
    raft_hard_state hard_state;/* commit clamped to last_index on recovery */
    uint64_t first_index;      /* compact_index + 1 */
    uint64_t last_index;       /* compact_index when empty */
    uint64_t last_term;
    uint64_t compact_index;
    uint64_t compact_term;
} raft_log_group_info;
void raft_log_group(raft_log *log, uint64_t group, raft_log_group_info *out);

/* Group ids stored (any order): up to cap into ids, *n = how many exist. */
void raft_log_groups(raft_log *log, uint64_t *ids, size_t cap, size_t *n);

/* Term of entry `index` (compact_index's term too). RAFT_LOG_ERR_COMPACTED,
** RAFT_LOG_ERR_UNAVAILABLE. */
int raft_log_term(raft_log *log, uint64_t group, uint64_t index, uint64_t *term);

/* Read entries [lo, hi) of group, stopping after max_bytes of payload (at
** least one entry; 0: no limit). Each entry is read back from its segment
** and its CRC checked (RAFT_LOG_ERR_CORRUPT). owner of *out: caller, free
** with raft_log_entries_free(*out, *n). */
int raft_log_entries(raft_log *log, uint64_t group, uint64_t lo, uint64_t hi,
                     size_t max_bytes, raft_entry **out, size_t *n);
void raft_log_entries_free(raft_entry *entries, size_t n);

typedef struct raft_log_stats {
    uint64_t appends;        /* calls that wrote records */
    uint64_t records;
    uint64_t bytes_written;
    uint64_t fsyncs;         /* fdatasync calls on segments (group commits) */
    uint64_t segments;       /* live segment files */
    uint64_t segments_deleted;
} raft_log_stats;
void raft_log_get_stats(raft_log *log, raft_log_stats *out);

/* Test-only fault injection (the chaos harness's `disk` nemesis,
** docs/chaos.md; server/ allows it only with --enable-test-faults). Replaces
** the log's injected fault: fail_next makes the next fdatasync of a group
** commit (raft_log_sync) or of a roll-over fail as with EIO, without calling
** it (the log is then poisoned as by a real failure); stall_ms > 0 makes
** every such fdatasync that starts in the next stall_ms wait until then
** first (a disk that stopped answering: appends go on, syncs wait).
** fail_next false and stall_ms 0 clear it. 0, or RAFT_LOG_ERR_INVALID
** (stall_ms outside [0, RAFT_LOG_FAULT_STALL_MS_MAX]). */
#define RAFT_LOG_FAULT_STALL_MS_MAX 600000
int raft_log_inject_fault(raft_log *log, bool fail_next, int64_t stall_ms);
/* The injected fault now: a failure armed and not consumed yet, the stall's
** ms left (0: none), and whether the log is poisoned. */
void raft_log_fault_state(raft_log *log, bool *fail_armed /* OUT */,
                          int64_t *stall_left_ms /* OUT */, bool *poisoned /* OUT */);

#endif
