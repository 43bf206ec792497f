/*
** server/srv_rebalance.h: internals of server/ for the allocator and
** rebalancer (srv_rebalance.c; docs/cluster.md "Allocator and rebalancer",
** docs/operations.md "Rebalancing"). Shared by server/'s files and
** tests/server; nothing else includes it.
**
** One node at a time rebalances: the holder of the rebalancer lease, a
** system key (SYS "rebalancer/lease": u8 version | u64 node id | i64
** expiry, wall ns) taken in a KV transaction when it is absent, expired or
** the taker's own. The holder, every round, reads the cluster (the
** overview SHOW RANGES shows, the liveness records), asks the pure planner
** (srv__rebal_plan) for moves and makes them through the router.
*/
#ifndef MERIDIAN_SRV_REBALANCE_H
#define MERIDIAN_SRV_REBALANCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/srv_int.h"
#include "server/srv_ranges.h"
#include "server/srv_splitq.h"

#define SRV_REBAL_ROUND_MS 3000            /* the holder plans this often */
#define SRV_REBAL_LEASE_TTL_MS (3 * SRV_REBAL_ROUND_MS) /* the election lease */
#define SRV_REBAL_THRESHOLD_PCT 10         /* tolerated spread around the mean */
#define SRV_REBAL_REPLICA_MOVES_MAX 4      /* replica moves one round makes at most */
#define SRV_REBAL_LEASE_MOVES_MAX 4        /* lease transfers one round makes at most */
#define SRV_REBAL_SNAPSHOTS_PER_NODE 2     /* snapshots toward one node at once */
#define SRV_REBAL_RECENT_MAX 1024          /* ranges remembered as moved recently */
#define SRV_REBAL_RANGES_MAX 100000        /* ranges one round looks at */
#define SRV_REBAL_LEASE_VERSION 1

/* ---- the election ------------------------------------------------------------- */
typedef struct srv__rebal_lease {
    uint64_t node_id;
    int64_t expiry_wall_ns; /* the holder's wall clock when it renewed + the ttl */
} srv__rebal_lease;
/* The lease's key into out (SRV_KEY_SIZE_MAX); its length. */
size_t srv__rebal_lease_key(uint8_t *out);
int srv__rebal_lease_encode(const srv__rebal_lease *l, base_buf *out);
/* SRV_OK or SRV_ERR_CORRUPT (a bad version, length, node id 0). */
int srv__rebal_lease_decode(const uint8_t *p, size_t len, srv__rebal_lease *out /* OUT */);
/* Whether self may take (or renew) the lease cur (NULL: none stored) at
** now_wall_ns: none, expired, or its own. Pure. */
bool srv__rebal_may_take(const srv__rebal_lease *cur, uint64_t self, int64_t now_wall_ns);

/* ---- the planner (pure) -------------------------------------------------------------- */
typedef struct srv__rebal_node {
    uint64_t node_id;
    bool live;           /* liveness live */
    bool usable;         /* live, active and not draining: may give or take */
    bool draining;       /* live, active and draining: keeps its replicas, neither
                            gives nor takes */
    uint32_t snapshots;  /* replicas of it outside their range's voters (learners:
                            snapshots under way toward it) */
} srv__rebal_node;

typedef struct srv__rebal_range {
    uint64_t range_id;
    uint64_t voters[RANGE_REPLICAS_MAX]; /* the newest descriptor's */
    size_t n_voters;
    bool settled;        /* every voter reported its replica and no other node
                            did: no change under way */
    uint64_t lease_holder; /* 0: none known */
    int64_t size_bytes;  /* -1: unknown */
    bool resting;        /* moved within the cooldown: left alone */
} srv__rebal_range;

typedef enum srv__rebal_kind {
    SRV_REBAL_REPLICA = 1, /* add `to` (learner, snapshot, promote), then remove `from` */
    SRV_REBAL_LEASE = 2,   /* transfer the lease from `from` to `to` */
} srv__rebal_kind;

typedef struct srv__rebal_move {
    srv__rebal_kind kind;
    uint64_t range_id;
    uint64_t from, to;
    char reason[96];     /* "rebalance: node 4 has 3 replicas, mean 9.0" */
} srv__rebal_move;

typedef struct srv__rebal_params {
    int replication;           /* the replication factor */
    int threshold_pct;         /* 0: SRV_REBAL_THRESHOLD_PCT */
    size_t replica_moves_max;  /* per plan */
    size_t lease_moves_max;    /* per plan, made only when no replica move is
                                  (0: leases are not balanced) */
    uint32_t snapshots_per_node; /* 0: SRV_REBAL_SNAPSHOTS_PER_NODE */
} srv__rebal_params;

/* What a plan saw (logs, tests). */
typedef struct srv__rebal_stats {
    size_t usable;             /* nodes that may give or take */
    double replica_mean, lease_mean;
    uint32_t replicas_min, replicas_max; /* over usable nodes */
    uint32_t leases_min, leases_max;
    size_t unsettled;          /* ranges left alone: a change under way, a voter
                                  missing, dead, leaving or too few voters */
} srv__rebal_stats;

/* The moves to make now, at most out_max, in order. Rules (docs/cluster.md
** "Allocator and rebalancer"):
**   1. a range that is not settled, has a voter on a node that is not live
**      or is leaving (not usable and not draining), or has fewer voters than
**      min(replication, usable nodes), is the replicate queue's: untouched;
**   2. replicas: node S gives one to node T while S holds more than
**      max(mean * (1 + threshold), mean + 1) and T less than the mean (or T
**      less than min(mean * (1 - threshold), mean - 1) and S more than the
**      mean), S - T >= 2; the range: settled, not resting, S a voter, T
**      none, T receiving fewer than snapshots_per_node snapshots, the
**      quorum kept after the add and after the removal; preferring a range
**      whose lease is not on S, then (bytes) a larger range when S holds
**      more bytes than T, else a smaller one, then the lowest id; each range
**      once per plan;
**   3. leases, only when rule 2 moves nothing: the same rule over lease
**      counts, from S to a usable voter T of the range.
** Means are over usable nodes. Deterministic (ties: lowest id). Returns the
** count; st (may be NULL) says what it saw. */
size_t srv__rebal_plan(const srv__rebal_node *nodes, size_t n_nodes,
                       const srv__rebal_range *ranges, size_t n_ranges,
                       const srv__rebal_params *params, srv__rebal_move *out, size_t out_max,
                       srv__rebal_stats *st /* OUT, may be NULL */);
/* Whether counts hi and lo around mean call for a move (rule 2). Pure. */
bool srv__rebal_unbalanced(double mean, int threshold_pct, uint32_t hi, uint32_t lo);

/* ---- the rebalancer's thread ------------------------------------------------------------- */
typedef struct srv__rebal_recent {
    uint64_t range_id;
    int64_t at_ns;       /* monotonic: when it was moved (or a move of it failed) */
} srv__rebal_recent;

/* The node's stack (borrowed: lives until srv__rebal_stop returned). */
typedef struct srv__rebal_env {
    uint64_t self;
    txn_db *db;
    range_router *router;
    hlc_clock *clock;
    srv_settings *settings; /* refreshed by the split queue's thread */
    srv__admin *admin;      /* the cluster's overview */
    int replication;
    int64_t round_ms;       /* 0: SRV_REBAL_ROUND_MS */
} srv__rebal_env;

typedef struct srv__rebal {
    srv__worker worker;    /* its thread (srv_worker.c) */
    srv__rebal_env env;
    _Atomic bool leaving;  /* set by the node: it drains or is decommissioning */
    /* the thread's */
    bool holder;           /* held the lease at the last round */
    srv__rebal_recent recent[SRV_REBAL_RECENT_MAX];
    size_t n_recent;
    bool disabled_logged;
    uint64_t replica_moves, lease_moves, failures; /* counters */
} srv__rebal;

void srv__rebal_init(srv__rebal *r);
/* Start the thread over env (copied). SRV_OK, SRV_ERR_NOMEM. */
int srv__rebal_start(srv__rebal *r, const srv__rebal_env *env);
/* Stop and join the thread (a move in flight ends with the router's
** shutdown); a no-op when it never started. */
void srv__rebal_stop(srv__rebal *r);
void srv__rebal_destroy(srv__rebal *r);
/* Remember range_id as moved at now_ns (a full table forgets the oldest). */
void srv__rebal_note_moved(srv__rebal *r, uint64_t range_id, int64_t now_ns);
/* Whether range_id was moved within cooldown_ms of now_ns. */
bool srv__rebal_resting(const srv__rebal *r, uint64_t range_id, int64_t now_ns,
                        int64_t cooldown_ms);

#endif
