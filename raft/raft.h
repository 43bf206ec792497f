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
**      U.hard_state_changed) and U.entries. Writing entries first deletes
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
**   5. Apply U.committed in order before any later update's committed
**      entries (they are only ever entries that are committed AND durable
**      locally). Serve U.reads once the applied index reaches their index.
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
** Not yet (types reserved): membership changes (learners, joint
** consensus: RAFT_ENTRY_CONFIG), snapshots and log compaction
** (raft_node.first_index stays 1). See docs/raft.md, "What is left".
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
    RAFT_ENTRY_CONFIG = 2, /* reserved: membership change (next session) */
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
} raft_message;

/* Deep copy: *out owns copies of every entry and its data. Returns 0 or
** RAFT_ERR_NOMEM (then *out owns nothing). owner of *out: caller, release
** with raft_message_release. */
int raft_message_clone(const raft_message *m, raft_message *out);
void raft_message_release(raft_message *m); /* frees entries; *m zeroed */

typedef struct raft_config {
    uint64_t id;                         /* this node, != RAFT_NONE */
    uint64_t voters[RAFT_MAX_VOTERS];    /* must include id */
    size_t n_voters;
    /* Reserved for membership changes (next session); must be 0 today. */
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
} raft_status;
void raft_node_status(const raft_node *node, raft_status *out);

/* Term of the entry at index (0 for index 0); RAFT_ERR_INVALID if absent. */
int raft_node_term_at(const raft_node *node, uint64_t index, uint64_t *term);
/* Borrow the entry at index, valid until the next raft_step; NULL if absent. */
const raft_entry *raft_node_entry_at(const raft_node *node, uint64_t index);

#endif
