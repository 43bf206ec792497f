/*
** raft/raft_int.h: internals of the Raft core. Only the .c files of raft/ include it.
**
** The log lives in memory: log[i] holds the entry of index first_index + i;
** first_index == snap_index + 1 (snap_index 0: no snapshot). The entry at
** snap_index is known only by its term (snap_term). stable_index is the highest
** index the caller has reported durable through RAFT_EVENT_PERSISTED (and
** whose entry has not been overwritten since). Entries in
** [unpersisted_from, last] have not yet been handed to the caller in an
** update (unpersisted_from == 0: none).
**
** Persistence bookkeeping: every update that asks for a write gets a
** sequence number and a record of what the node state was (last index/term,
** term, vote). A PERSISTED event for seq S pops every record <= S and makes
** the newest popped one the durable state. The ring is bounded; when full,
** the newest record is overwritten by the next one (conservative: the older
** sequence number then never proves anything, the newer one proves both).
*/
#ifndef MERIDIAN_RAFT_INT_H
#define MERIDIAN_RAFT_INT_H

#include "raft/raft.h"

#define RAFT__MAX_INFLIGHT 256          /* hard cap on max_inflight_msgs */
#define RAFT__MAX_PENDING_READS 1024    /* ReadIndex requests waiting */
#define RAFT__HEARTBEAT_RING 64         /* seq -> send tick, for the lease */
#define RAFT__PERSIST_RING 64           /* updates not yet reported durable */
#define RAFT__MAX_PROPOSALS_PER_EVENT 4096
#define RAFT__MAX_UNCOMMITTED_ENTRIES 65536 /* leader refuses more (BUSY) */
#define RAFT__MAX_ELECTION_TICKS 100000
#define RAFT__MAX_SNAPSHOT_BYTES ((size_t)1 << 31) /* a bigger stream is refused */
#define RAFT__DEFAULT_CHUNK_BYTES ((size_t)64 << 10)
#define RAFT__MAX_PRS (RAFT_MAX_VOTERS + 1) /* members, plus self when removed */
#define RAFT__SNAPSHOT_STARTS_MAX 3 /* lazy: starts of one stream to one follower */

typedef enum raft__progress_state {
    RAFT__PROBE = 0,     /* one append at a time until the match is known */
    RAFT__REPLICATE = 1, /* optimistic pipelining within the window */
    RAFT__SNAPSHOT = 2,  /* streaming the snapshot, one chunk in flight */
} raft__progress_state;

/* Leader's view of one voter (the paper's nextIndex/matchIndex, plus flow
** control and lease bookkeeping). Also holds the election tally. */
typedef struct raft__progress {
    uint64_t id;
    bool voter;           /* counts toward quorum, votes and lease */
    bool learner;         /* replicated to, never counted */
    uint64_t match;
    uint64_t next;
    raft__progress_state state;
    bool paused;          /* PROBE: an append is outstanding */
    bool recent_active;   /* heard from in this check-quorum window */
    bool vote_responded;
    bool vote_granted;
    /* last index of each append in flight, oldest first (ring) */
    uint64_t inflight[RAFT__MAX_INFLIGHT];
    int inflight_start;
    int inflight_count;
    int64_t ack_sent_tick; /* send tick of newest acked heartbeat, -1: none */
    uint64_t acked_seq;    /* newest heartbeat round acked */
    /* Loss detection: appends up to hb_mark_index were sent before heartbeat
    ** round hb_mark_seq (0: no mark); if an answer to that round or a later
    ** one comes back, match is still below and has not moved since, they
    ** were lost (or are very late): probe again from match + 1. */
    uint64_t hb_mark_seq;
    uint64_t hb_mark_index;
    uint64_t hb_mark_match;
    /* RAFT__SNAPSHOT: streaming snapshot snap_index (0: waiting for the
    ** caller's stream, lazy_snapshots); snap_offset = next byte to send;
    ** snap_wait = ticks since the chunk in flight left (-1: none). */
    uint64_t snap_index;
    size_t snap_offset;
    int snap_wait;
    /* lazy snapshots: the stream (n->stream_seq) being sent, how often it
    ** started from its first byte, and the one given up on (never sent to
    ** this follower again: after RAFT__SNAPSHOT_STARTS_MAX starts it asks
    ** for a new one, e.g. when the follower keeps refusing it) */
    uint64_t snap_seq;
    int snap_starts;
    uint64_t snap_bad_seq;
} raft__progress;

typedef struct raft__pending_read {
    uint64_t read_id;
    uint64_t index; /* commit index when confirmed-able; 0: waiting for a commit in term */
    uint64_t seq;   /* heartbeat round that confirms it */
} raft__pending_read;

typedef struct raft__persist_record {
    uint64_t seq;
    uint64_t last_index;
    uint64_t last_term;
    uint64_t term;
    uint64_t vote;
} raft__persist_record;

typedef struct raft__out {
    raft_message m;        /* entries resolved at the end of the step */
    uint64_t first_entry;  /* index of m.entries[0] when n_entries > 0 */
    bool after_persist;    /* acknowledges local durable state */
    size_t snap_offset;    /* SNAPSHOT: m.data = snapshot stream + this */
    uint64_t stream_seq;   /* SNAPSHOT: of that stream */
} raft__out;

struct raft_node {
    raft_config cfg;
    size_t quorum;

    /* Figure 2 state. */
    raft_role role;
    uint64_t term;
    uint64_t vote;
    uint64_t leader;
    uint64_t commit;
    uint64_t applied;

    /* The log. */
    raft_entry *log;
    size_t log_len;
    size_t log_cap;
    uint64_t first_index;
    uint64_t stable_index;
    uint64_t unpersisted_from;

    /* The latest snapshot (the compaction point of the log in memory). */
    uint64_t snap_index;
    uint64_t snap_term;
    raft_membership snap_conf;
    /* The stream sent to followers behind first_index (owned, NULL: none):
    ** raft_membership_encode(config at stream_index) + application bytes.
    ** Without lazy_snapshots it is always the snapshot's (stream_index ==
    ** snap_index). With them it is set by RAFT_EVENT_SNAPSHOT at any
    ** stream_index >= snap_index (or by COMPACT/restore given bytes, or by
    ** an install), is useless once a compaction passes it, and is freed at
    ** the start of a step when no follower streams it. */
    uint8_t *snap_stream;
    size_t snap_stream_len;
    size_t snap_conf_len;  /* bytes of the membership header in the stream */
    uint64_t stream_index;
    uint64_t stream_term;
    raft_membership stream_conf; /* the configuration in the stream's header */
    uint64_t stream_seq;         /* one more for every new stream (0: none yet) */
    bool want_snapshot;    /* lazy: a follower waits for a stream (this step) */

    /* Membership in effect: the latest config entry in the log (conf_index)
    ** or, when none is above snap_index, snap_conf (conf_index =
    ** snap_index; 0 before any snapshot: the bootstrap config). */
    raft_membership conf;
    uint64_t conf_index;

    /* Follower: the snapshot being received (recv_len bytes so far). */
    uint64_t recv_index;
    uint64_t recv_term;
    uint8_t *recv_buf;
    size_t recv_len, recv_cap;
    /* Output: a snapshot installed in this step (update.snapshot). */
    bool snap_out;
    raft_snapshot snap_out_meta;

    /* Persistence tracking. */
    uint64_t next_persist_seq;
    raft__persist_record records[RAFT__PERSIST_RING];
    int records_start;
    int records_count;
    uint64_t durable_term;
    uint64_t durable_vote;
    raft_hard_state emitted_hs; /* last hard state handed out */

    /* Timers, in ticks. */
    int64_t tick;
    int election_elapsed;
    int randomized_timeout;
    int leader_contact_elapsed; /* stickiness: since the leader was last heard */
    int heartbeat_elapsed;
    int check_quorum_elapsed;
    int transfer_elapsed;
    uint64_t rng;

    /* Peers (voters, self included). */
    raft__progress prs[RAFT__MAX_PRS];
    size_t n_prs;
    raft__progress prs_scratch[RAFT__MAX_PRS]; /* apply_conf's copy of prs */

    /* Leader state. */
    uint64_t transfer_to;
    bool timeout_now_sent; /* in this term: the lease is gone for good */
    uint64_t heartbeat_seq;
    struct {
        uint64_t seq;
        int64_t tick;
    } heartbeat_ring[RAFT__HEARTBEAT_RING];
    raft__pending_read *reads; /* ring of RAFT__MAX_PENDING_READS */
    int reads_start;
    int reads_count;

    /* Output of the current step. */
    raft__out *out;
    size_t n_out;
    size_t cap_out;
    raft_message *send_now;
    size_t cap_send_now;
    raft_message *send_after;
    size_t cap_send_after;
    raft_read_state *read_out;
    size_t n_read_out;
    size_t cap_read_out;
    bool nomem; /* an output was dropped for lack of memory in this step */
};

#endif
