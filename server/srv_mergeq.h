/*
** server/srv_mergeq.h: internals of server/ for the merge queue
** (srv_mergeq.c; docs/range.md "Merge queue", docs/operations.md "Splits
** and merges by hand"). Shared by server/'s files and tests/server;
** nothing else includes it.
*/
#ifndef MERIDIAN_SRV_MERGEQ_H
#define MERIDIAN_SRV_MERGEQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/srv_int.h"
#include "server/srv_ranges.h"
#include "server/srv_splitq.h"
#include "txn/txn.h"

#define SRV_MERGEQ_SCAN_MS 5000         /* a round: the overview, at most one merge */
#define SRV_MERGEQ_AGAIN_MS 1000        /* the next round after a merge (the next pair) */
#define SRV_MERGEQ_MERGED_REST_MS 1000  /* a range that just subsumed its neighbour rests */
#define SRV_MERGEQ_BACKOFF_MS 10000     /* a range whose merge or co-location failed */
#define SRV_MERGEQ_RECENT_MAX 256       /* ranges remembered with a backoff */
#define SRV_MERGEQ_MOVES_MAX (2 * RANGE_REPLICAS_MAX) /* replica changes of one co-location */
#define SRV_MERGEQ_REASON_MAX 128

/* What the rules need of the two ranges. qps < 0: load not known. */
typedef struct srv__mergeq_side {
    const range_descriptor *desc;
    int64_t size_bytes;  /* -1: unknown (never merged then) */
    double qps;          /* reads + writes per second at the leaseholder; < 0 unknown */
} srv__mergeq_side;

typedef struct srv__mergeq_limits {
    int64_t min_bytes;     /* range_min_bytes: both sides below it */
    int64_t max_bytes;     /* range_max_bytes: the merged range stays below it */
    int64_t qps_threshold; /* split_qps_threshold: both sides below half of it */
} srv__mergeq_limits;

/* Whether key may be where a merge removes a boundary: inside the user
** tables (at or above /table/SRV_FIRST_TABLE_ID: the system ranges and
** the system/user boundary stay) and not a table's first key /table/<id>
** (each table keeps its own ranges, as in CockroachDB). Pure. */
bool srv__mergeq_boundary_ok(const uint8_t *key, size_t len);

/* The rules (pure): may l and r (r starting where l ends) merge? SRV_OK
** with the range event's reason in why ("size 12 KiB + 3 KiB < 16 MiB,
** cold"), or SRV_ERR_REFUSED with why saying why not (not adjacent, a
** boundary that stays, r.start a manual split point, a size unknown or
** too large, hot). */
int srv__mergeq_decide(const srv__mergeq_side *l, const srv__mergeq_side *r,
                       bool r_start_is_split_point, const srv__mergeq_limits *limits, char *why,
                       size_t why_size);

/* One replica change that brings r's voters toward l's (pure): *add a
** voter of l that r lacks (0: none), *remove a voter of r that l lacks (0:
** none), never r's leaseholder while another one is left; both 0 when the
** voter sets are equal. *transfer_to non-zero: move r's lease there
** first (the only voter left to remove holds it; the target is a voter of
** both: prefer when it is one). */
void srv__mergeq_next_move(const range_descriptor *l, const range_descriptor *r,
                           uint64_t r_leaseholder, uint64_t prefer, uint64_t *add,
                           uint64_t *remove, uint64_t *transfer_to);

/* ---- the queue ------------------------------------------------------------------
** One thread per node. Every SRV_MERGEQ_SCAN_MS, when merge_enabled, it
** takes the cluster overview, and for the ranges whose lease this node
** holds (L, rotating the first) and their right-hand neighbours R decides
** with srv__mergeq_decide; the first pair that may merge is co-located
** (R's voters moved to L's, range_router_change_replicas) and merged
** (txn_db_merge_at), then recorded (range event MERGE). One merge at a
** time; a failure rests both ranges SRV_MERGEQ_BACKOFF_MS. */
typedef struct srv__mergeq_env {
    uint64_t self;
    range_node *rnode;
    storage_engine *engine;    /* sizes of the ranges led here; NULL: not measured */
    range_router *router;
    txn_db *db;
    hlc_clock *clock;          /* event times; NULL: the writer's timestamp */
    srv_settings *settings;    /* read only (the split queue refreshes them) */
    /* The cluster's ranges (srv__admin_overview's contract); ctx. */
    int (*overview)(void *ctx, srv__range_view **out, size_t *n, char *msg, size_t size);
    void *overview_ctx;
    int64_t scan_ms;           /* 0: SRV_MERGEQ_SCAN_MS */
} srv__mergeq_env;

typedef struct srv__mergeq {
    srv__worker worker;   /* its thread (srv_worker.c) */
    srv__mergeq_env env;
    /* the thread's */
    srv__splitq_recent recent[SRV_MERGEQ_RECENT_MAX];
    size_t n_recent;
    size_t scan_offset;
    bool disabled_logged;
    uint64_t merges, failures; /* counters */
} srv__mergeq;

/* srv__mergeq_env.overview over a node's srv__admin (ctx). */
int srv__mergeq_admin_overview(void *ctx, srv__range_view **out, size_t *n, char *msg,
                               size_t size);
void srv__mergeq_init(srv__mergeq *q);
/* Start the thread over env (copied). SRV_OK, SRV_ERR_NOMEM. */
int srv__mergeq_start(srv__mergeq *q, const srv__mergeq_env *env);
/* Stop and join the thread (a merge in flight ends with the router's
** shutdown); a no-op when it never started. Then destroy. */
void srv__mergeq_stop(srv__mergeq *q);
void srv__mergeq_destroy(srv__mergeq *q);
/* Rest range_id until now_ns + ms; a full table forgets the entry that
** expires first. */
void srv__mergeq_remember(srv__mergeq *q, uint64_t range_id, int64_t now_ns, int64_t ms);
bool srv__mergeq_resting(const srv__mergeq *q, uint64_t range_id, int64_t now_ns);
/* One round (the thread's body; tests): 1 when it merged, else 0. */
int srv__mergeq_round(srv__mergeq *q, int64_t now_ns);

#endif
