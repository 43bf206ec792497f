/*
** server/srv_ranges.h: internals of server/ for the operator's view of
** ranges (srv_ranges.c; docs/operations.md): the RANGES rpc method (what a
** node hosts: descriptors, Raft leadership and lease, approximate sizes),
** the cluster-wide overview merged from every node's answer and meta, the
** relocations behind ALTER RANGE, and the queue of range events the
** replicate queue posts. Shared by server/'s files and tests/server;
** nothing else includes it.
*/
#ifndef MERIDIAN_SRV_RANGES_H
#define MERIDIAN_SRV_RANGES_H

#include <pthread.h>

#include "server/srv_int.h"
#include "sql/sql.h"
#include "txn/txn.h"

#define SRV_METHOD_RANGES 0x5247u         /* 'RG': the ranges a node hosts */
#define SRV_RANGES_CALL_TIMEOUT_MS 3000   /* one node's RANGES answer */
#define SRV_RANGES_FANOUT_MAX 16          /* RANGES calls in flight at once (side
                                             connections: RPC_ADDR_CONNS_MAX) */
#define SRV_RANGES_SCAN_ROWS_MAX 100000   /* meta entries and node records read */
#define SRV_RANGE_EVENTS_PENDING_MAX 64   /* events posted, not yet written */

/* One replica as its node reports it. */
typedef struct srv__range_report {
    range_descriptor desc; /* keys owned (srv__range_reports_free) */
    bool leader;           /* Raft leader */
    bool lease_valid;      /* ... holding a valid lease: the leaseholder */
    uint64_t term;
    int64_t size_bytes;    /* approximate bytes of the span in its store; -1 unknown */
    bool has_load;         /* its range_server evaluated requests of it: */
    double reads_per_second, writes_per_second; /* (range_server_get_load) */
} srv__range_report;
void srv__range_reports_free(srv__range_report *r, size_t n);

/* RANGES request: u8 version. Answer: u8 version | u32 n | n x {u8 flags
** (1 leader, 2 lease valid, 4 load) | u64 term | u64 size + 1 (0: unknown) |
** [flag 4: u64 reads | u64 writes, per second x 1000 (issue 6)] |
** blob descriptor (range_descriptor_encode)}, at most
** RANGE_NODE_REPLICAS_MAX. Decode: *out owned by the caller
** (srv__range_reports_free); SRV_ERR_CORRUPT on bad bytes. */
int srv__ranges_req_encode(base_buf *out);
int srv__ranges_req_decode(const uint8_t *p, size_t len);
int srv__ranges_encode(const srv__range_report *r, size_t n, base_buf *out);
int srv__ranges_decode(const uint8_t *p, size_t len, srv__range_report **out, size_t *n);
/* What this node hosts now (local state only: no KV, no rpc); the load of
** each as rserver (may be NULL: none) has it. *out owned by the caller
** (srv__range_reports_free). */
int srv__ranges_local(range_node *rnode, storage_engine *engine, range_server *rserver,
                      srv__range_report **out, size_t *n);

#define SRV_RANGE_HOSTS_MAX (2 * RANGE_REPLICAS_MAX) /* hosts remembered per range */

/* One range of the overview. */
typedef struct srv__range_view {
    range_descriptor desc; /* owned keys: the newest generation anyone reported */
    uint64_t lease_holder; /* 0: no replica reported a valid lease */
    int64_t size_bytes;    /* the leaseholder's figure, else the largest reported; -1 */
    size_t n_reports;      /* replicas that answered for it (0: known from meta only) */
    bool has_load;         /* the leaseholder's load figures (else none known) */
    double reads_per_second, writes_per_second;
    uint64_t hosts[SRV_RANGE_HOSTS_MAX]; /* the nodes that answered for it, any
                                            generation (learners and replicas being
                                            removed included), first seen first */
    size_t n_hosts;
} srv__range_view;
void srv__range_views_free(srv__range_view *v, size_t n);
/* Merge (pure): reports[i] came from node from[i]; meta entries count as
** reports without lease or size. Per range id: the descriptor of the
** highest generation (a report before meta on a tie); the leaseholder is
** the reporter with a valid lease and the highest term, and its load
** figures are the range's; sorted by range id. *out owned by the caller
** (srv__range_views_free). */
int srv__ranges_merge(const srv__range_report *reports, const uint64_t *from, size_t n,
                      const range_descriptor *meta, size_t n_meta, srv__range_view **out,
                      size_t *n_out);

/* The operator side of a node. The stack pointers are set once (before
** the SQL gateway starts) and borrowed until srv_node_stop; the pending
** events are under mu (posted by the periodic thread, written by it). */
typedef struct srv__admin {
    uint64_t self;
    range_node *rnode;
    range_router *router;
    txn_db *db;
    storage_engine *engine;
    hlc_clock *clock;
    rpc_uv *uv;             /* the node's transport: RANGES calls to the others */
    range_server *rserver;  /* this node's server (load figures); may be NULL */
    int64_t dead_after_ms;
    pthread_mutex_t mu;
    txn_range_event pending[SRV_RANGE_EVENTS_PENDING_MAX];
    size_t n_pending;
    uint64_t dropped;       /* events lost to a full queue (logged) */
} srv__admin;
void srv__admin_init(srv__admin *a);
void srv__admin_destroy(srv__admin *a);
/* The SQL engine's callbacks (sqlv_engine_set_admin), ctx a. */
void srv__admin_sql(srv__admin *a, sqlv_admin *out /* OUT */);
/* The cluster-wide overview SHOW RANGES shows (meta and every node's
** RANGES answer merged: each range's newest descriptor, leaseholder, size),
** sorted by range id; blocks for the fan-out (bounded). *out owned by the
** caller (srv__range_views_free). SRV_OK, or SRV_ERR_UNAVAILABLE with msg
** set (the cluster's state could not be read; out of memory). */
int srv__admin_overview(srv__admin *a, srv__range_view **out, size_t *n, char *msg,
                        size_t size);
/* A node as the liveness records say (srv__admin_cluster). */
typedef struct srv__node_state {
    uint64_t node_id;
    srv_liveness liveness;
    bool draining;
    srv_membership membership;
} srv__node_state;
/* srv__admin_overview and every node with a node record and its liveness
** (the rebalancer, srv_rebalance.c). *nodes (base_free) and *ranges
** (srv__range_views_free) owned by the caller. SRV_OK, or
** SRV_ERR_UNAVAILABLE / SRV_ERR_NOMEM with msg set. */
int srv__admin_cluster(srv__admin *a, srv__node_state **nodes, size_t *n_nodes,
                       srv__range_view **ranges, size_t *n_ranges, char *msg, size_t size);
/* Queue an event for srv__admin_flush_events; never blocks beyond mu. A
** full queue drops the oldest (counted, logged). */
void srv__admin_post_event(srv__admin *a, const txn_range_event *e);
/* Write the queued events, one transaction (periodic thread). Failed
** writes are logged and dropped: the log is best effort. */
void srv__admin_flush_events(srv__admin *a);
/* srv__replq_env.on_change (ctx: the srv__admin): a replicate-queue change
** completed; after (NULL: unknown) is the range's new descriptor. Posts its
** add and remove events with the plan's reason. */
void srv__admin_on_repl_change(void *ctx, uint64_t range_id, const srv__repl_plan *plan,
                               const range_descriptor *after);
/* srv__replq_env.on_lease_shed (ctx: the srv__admin): a leaving node
** started handing range_id's lease to target; posts a lease transfer event
** with the range's voters and the reason. */
void srv__admin_on_lease_shed(void *ctx, uint64_t range_id, uint64_t target,
                              const uint64_t *voters, size_t n_voters, const char *reason);

#endif
