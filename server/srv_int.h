/*
** server/srv_int.h: internals of server/, shared by its files and its unit
** tests (tests/server). Nothing else includes it.
**
** Pieces:
**   - the wire codec of the node methods (srv_wire.c), pure;
**   - system keys and records in the KV space, pure (srv_wire.c);
**   - bootstrap planning, liveness state, status formatting (srv_plan.c),
**     pure;
**   - the raw-keyspace persistence of identity, peers and ranges
**     (srv_store.c);
**   - a blocking "call by address" helper over rpc_uv (srv_call.c);
**   - the replicate queue: a pure plan per range and its driver
**     (srv_replicate.c);
**   - the thread of a background queue (srv_worker.c).
**
** Codec conventions: integers big-endian fixed width; a string is u16 length
** + bytes (< SRV_HOST_SIZE_MAX, no NUL inside); a blob is u32 length +
** bytes; every message starts with SRV_WIRE_VERSION. Decoders check every
** length and count against the bytes left and a named maximum, reject
** unknown versions and trailing bytes with SRV_ERR_CORRUPT, and never
** allocate by an unchecked count.
*/
#ifndef MERIDIAN_SRV_INT_H
#define MERIDIAN_SRV_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range/range.h"
#include "rpc/rpc.h"
#include "server/server.h"
#include "txn/txn.h"

#define SRV_WIRE_VERSION 1
#define SRV_NODE_ID_PROVISIONAL_BIT (1ULL << 63) /* ids with it are provisional */

/* rpc methods of this module (requests). Distinct from range/'s. */
#define SRV_METHOD_PROBE 0x5052u     /* 'PR' */
#define SRV_METHOD_INIT 0x494Eu      /* 'IN' */
#define SRV_METHOD_BOOTSTRAP 0x4253u /* 'BS' */
#define SRV_METHOD_JOIN 0x4A4Eu      /* 'JN' */
#define SRV_METHOD_STATUS 0x5354u    /* 'ST' */
#define SRV_METHOD_CLOCK 0x434Bu     /* 'CK': clock-offset ping (docs/clocks.md) */
#define SRV_METHOD_DRAIN 0x4452u     /* 'DR': drain this node (docs/operations.md) */
#define SRV_METHOD_DECOMMISSION 0x4443u /* 'DC': (re)commission a node */
#define SRV_METHOD_FAULT 0x4649u     /* 'FI': test-only faults (srv_fault.c) */

/* ---- byte writer / reader ------------------------------------------------- */
typedef struct srv__reader {
    const uint8_t *p;
    size_t left;
    bool bad; /* sticky: a read past the end or a bad field */
} srv__reader;

int srv__put_u8(base_buf *b, uint8_t v);
int srv__put_u32(base_buf *b, uint32_t v);
int srv__put_u64(base_buf *b, uint64_t v);
int srv__put_str(base_buf *b, const char *s);
int srv__put_blob(base_buf *b, const void *p, size_t len);
int srv__put_addr(base_buf *b, const srv_addr *a);
uint8_t srv__get_u8(srv__reader *r);
uint32_t srv__get_u32(srv__reader *r);
uint64_t srv__get_u64(srv__reader *r);
void srv__get_str(srv__reader *r, char *out, size_t out_size); /* out_size <= SRV_HOST_SIZE_MAX */
const uint8_t *srv__get_blob(srv__reader *r, size_t max, size_t *len); /* points into input */
void srv__get_addr(srv__reader *r, srv_addr *out);

bool srv__addr_equal(const srv_addr *a, const srv_addr *b);
/* "host:port" ("[v6]:port") into buf; returns buf. */
char *srv__addr_format(const srv_addr *a, char *buf, size_t size);

/* ---- peer tables and descriptor lists -------------------------------------- */
/* Append: u32 n | n x {u64 id | addr rpc | addr sql}. */
int srv__peers_encode(const srv_peer *peers, size_t n, base_buf *out);
/* *peers owned by caller (base_free); sorted by id on success; duplicates,
** id 0 and provisional ids refused. */
int srv__peers_decode(srv__reader *r, srv_peer **peers, size_t *n);
/* Add or replace by id, keeping the table sorted. SRV_OK, SRV_ERR_NOMEM,
** SRV_ERR_INVALID (SRV_PEERS_MAX). *changed: whether anything differed. */
int srv__peers_upsert(srv_peer **peers, size_t *n, const srv_peer *p, bool *changed);
const srv_peer *srv__peers_find(const srv_peer *peers, size_t n, uint64_t id);

/* Append: u32 n | n x {u8 hosted | blob descriptor}. */
int srv__descs_encode(const range_descriptor *d, const bool *hosted, size_t n, base_buf *out);
/* *descs (range_descriptor_free each, then base_free) and *hosted (base_free,
** may be NULL to ignore the flags) owned by caller. */
int srv__descs_decode(srv__reader *r, range_descriptor **descs, bool **hosted, size_t *n);
void srv__descs_free(range_descriptor *descs, size_t n);

/* ---- messages -------------------------------------------------------------- */
typedef struct srv__probe_resp {
    bool initialized;
    uint64_t cluster_id;
    uint64_t node_id;
    srv_addr rpc;
    srv_addr sql;
} srv__probe_resp;
int srv__probe_resp_encode(const srv__probe_resp *m, base_buf *out);
int srv__probe_resp_decode(const uint8_t *p, size_t len, srv__probe_resp *out);

/* INIT request: u8 version | u64 token. Answer: cluster id + peers. */
int srv__init_req_encode(uint64_t token, base_buf *out);
int srv__init_req_decode(const uint8_t *p, size_t len, uint64_t *token);
int srv__init_resp_encode(uint64_t cluster_id, const srv_peer *peers, size_t n, base_buf *out);
int srv__init_resp_decode(const uint8_t *p, size_t len, uint64_t *cluster_id, srv_peer **peers,
                          size_t *n);

typedef struct srv__bootstrap {
    uint64_t cluster_id;
    uint64_t node_id;      /* the receiver's */
    uint64_t init_token;
    hlc_timestamp init_ts; /* timestamp of the initial KV data */
    srv_peer *peers;       /* owned (decode) / borrowed (encode) */
    size_t n_peers;
    range_descriptor *descs; /* owned (decode) / borrowed (encode) */
    size_t n_descs;
} srv__bootstrap;
int srv__bootstrap_encode(const srv__bootstrap *m, base_buf *out);
int srv__bootstrap_decode(const uint8_t *p, size_t len, srv__bootstrap *out);
void srv__bootstrap_free(srv__bootstrap *m);

typedef struct srv__join_req {
    uint64_t token; /* the joining store's join token (idempotent retries) */
    srv_addr rpc;
    srv_addr sql;
} srv__join_req;
int srv__join_req_encode(const srv__join_req *m, base_buf *out);
int srv__join_req_decode(const uint8_t *p, size_t len, srv__join_req *out);

typedef struct srv__join_resp {
    uint64_t cluster_id;
    uint64_t node_id;
    srv_peer *peers;         /* owned by the decoded struct */
    size_t n_peers;
    range_descriptor *descs; /* owned by the decoded struct */
    size_t n_descs;
} srv__join_resp;
int srv__join_resp_encode(const srv__join_resp *m, base_buf *out);
int srv__join_resp_decode(const uint8_t *p, size_t len, srv__join_resp *out);
void srv__join_resp_free(srv__join_resp *m);

/* CLOCK: request u8 version | u64 sender's physical clock at send (ns).
** Answer: u8 version | u64 that send time echoed | u64 the responder's
** physical clock (ns) | u8 flags (bit 0: its epsilon is bounded, so it
** serves; bit 1: its good peers and itself are a majority) | u64 its
** epsilon (ns). Clock values are in [0, HLC_WALL_LIMIT_NS). */
typedef struct srv__clock_resp {
    int64_t sent_ns;
    int64_t remote_ns;
    bool bounded;
    bool majority;
    int64_t epsilon_ns;
} srv__clock_resp;
int srv__clock_req_encode(int64_t sent_ns, base_buf *out);
int srv__clock_req_decode(const uint8_t *p, size_t len, int64_t *sent_ns);
int srv__clock_resp_encode(const srv__clock_resp *m, base_buf *out);
int srv__clock_resp_decode(const uint8_t *p, size_t len, srv__clock_resp *out);

/* STATUS answer, version 2 (rows with membership and draining); version 1
** (without) is still decoded. */
#define SRV_STATUS_VERSION 2
int srv__status_encode(const srv_status *s, base_buf *out);
int srv__status_decode(const uint8_t *p, size_t len, srv_status *out);

/* DRAIN: request u8 version. Answer: u8 version | u64 node id | u32 leases |
** u32 replicas | u8 flags (bit 0: its liveness record says draining). */
int srv__drain_req_encode(base_buf *out);
int srv__drain_req_decode(const uint8_t *p, size_t len);
int srv__drain_resp_encode(const srv_drain_status *s, base_buf *out);
int srv__drain_resp_decode(const uint8_t *p, size_t len, srv_drain_status *out);

/* DECOMMISSION: request u8 version | u8 action (srv_decommission_action) |
** u8 flags (bit 0: finish: mark it decommissioned once no replica is left)
** | u64 node id (!= 0, not provisional). Answer: u8 version | u64 node id |
** u8 membership | u8 liveness | u32 replicas left. */
typedef struct srv__decommission_req {
    srv_decommission_action action;
    bool finish;
    uint64_t node_id;
} srv__decommission_req;
int srv__decommission_req_encode(const srv__decommission_req *m, base_buf *out);
int srv__decommission_req_decode(const uint8_t *p, size_t len, srv__decommission_req *out);
int srv__decommission_resp_encode(const srv_decommission_status *s, base_buf *out);
int srv__decommission_resp_decode(const uint8_t *p, size_t len, srv_decommission_status *out);

/* ---- system keys and records in the KV space --------------------------------
** Every system key starts with SRV_SYS_PREFIX: table id 0, index id 0 in
** encoding/'s prefix form (8 zero bytes; SQL tables start at id 1) then 's'.
**   SYS "counter/node-id"        u64 next node id to hand out
**   SYS "node/" u64 id           node record (srv__node_record)
**   SYS "liveness/" u64 id       liveness record (srv__liveness_record)
*/
#define SRV_SYS_PREFIX "\0\0\0\0\0\0\0\0s"
#define SRV_SYS_PREFIX_LEN 9
#define SRV_KEY_SIZE_MAX 64

/* Each writes the key into out (SRV_KEY_SIZE_MAX) and returns its length. */
size_t srv__key_counter(uint8_t *out);
size_t srv__key_node(uint8_t *out, uint64_t id);
size_t srv__key_liveness(uint8_t *out, uint64_t id);
/* [start, end) of all node records / all liveness records. */
size_t srv__key_node_span(uint8_t *start, uint8_t *end, size_t *end_len);
size_t srv__key_liveness_span(uint8_t *start, uint8_t *end, size_t *end_len);
/* The node id at the end of a node/liveness key; 0 if not one. */
uint64_t srv__key_node_id(const uint8_t *key, size_t len, bool liveness);

typedef struct srv__node_record {
    srv_addr rpc;
    srv_addr sql;
    uint64_t join_token; /* 0 for nodes made by bootstrap */
} srv__node_record;
int srv__node_record_encode(const srv__node_record *r, base_buf *out);
int srv__node_record_decode(const uint8_t *p, size_t len, srv__node_record *out);

/* Version 2 adds u8 membership | u8 flags (bit 0: draining) at the end;
** version 1 records decode as active, not draining. */
#define SRV_LIVENESS_VERSION 2
typedef struct srv__liveness_record {
    uint64_t epoch;
    int64_t heartbeat_ns;  /* wall clock of the heartbeat */
    int64_t expiration_ns; /* heartbeat_ns + ttl */
    srv_addr rpc;
    srv_addr sql;
    uint32_t replicas;
    uint32_t leases;
    uint8_t membership;    /* srv_membership: written by (re)commission, kept by heartbeats */
    bool draining;         /* written by the node's own heartbeats */
} srv__liveness_record;
int srv__liveness_record_encode(const srv__liveness_record *r, base_buf *out);
int srv__liveness_record_decode(const uint8_t *p, size_t len, srv__liveness_record *out);

int srv__counter_encode(uint64_t next, base_buf *out);
int srv__counter_decode(const uint8_t *p, size_t len, uint64_t *next);

/* ---- pure logic (srv_plan.c) ------------------------------------------------ */

/* One --join address as the INIT node's probe found it. */
typedef struct srv__probe_answer {
    srv_addr addr;          /* the --join address probed */
    bool answered;
    bool initialized;
    uint64_t transport_id;  /* the id it answered with */
    srv_addr sql;           /* its SQL address as it reported it */
} srv__probe_answer;

typedef struct srv__plan {
    srv_peer *peers;          /* owned: node 1 = self, then join order */
    size_t n_peers;
    range_descriptor *descs;  /* owned: the initial ranges */
    size_t n_descs;
    /* Index into answers of each peer (-1 for self). owned. */
    int *answer_index;
} srv__plan;
/* Node ids 1 (self), 2, 3, ... in --join order over the answers that came
** from distinct uninitialized nodes other than self (self_transport_id);
** the SRV_INITIAL_RANGES initial ranges on the first min(replication, k) nodes.
** SRV_ERR_INITIALIZED if an answer says its node is initialized;
** SRV_ERR_INVALID for replication < 1. */
int srv__plan_bootstrap(const srv_addr *self_rpc, const srv_addr *self_sql,
                        uint64_t self_transport_id, const srv__probe_answer *answers,
                        size_t n_answers, int replication, srv__plan *out);
void srv__plan_free(srv__plan *p);

/* The initial ranges of a cluster: range 1 = [empty, /table/SRV_FIRST_TABLE_ID)
** and range 2 = [/table/SRV_FIRST_TABLE_ID, +inf). SRV_FIRST_TABLE_ID is sql/'s
** first user table id (SQLV__FIRST_USER_TABLE_ID): ids below it are the
** catalog's and the counters' (docs/cluster.md, "System keys"). */
#define SRV_INITIAL_RANGES 2
#define SRV_FIRST_TABLE_ID 100u

/* A key/value of the initial KV data (bytes owned by the list). */
typedef struct srv__kv {
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
} srv__kv;
/* The initial KV data of a new cluster: the node-id counter (n + 1), a
** node record per peer, and with descriptors the range-id counter (their
** highest id + 1) and their meta entries (range/meta.c). Deterministic:
** every replica writes the same bytes. owner of *kvs: caller, srv__kvs_free. */
int srv__initial_kv(const srv_peer *peers, size_t n, const range_descriptor *descs,
                    size_t n_descs, srv__kv **kvs, size_t *n_kvs);
void srv__kvs_free(srv__kv *kvs, size_t n);

srv_liveness srv__liveness_state(int64_t now_ns, int64_t heartbeat_ns, int64_t expiration_ns,
                                 int64_t dead_after_ns);

/* ---- persistence in the raw keyspace (srv_store.c) -------------------------
**   "srv/ident"       u8 v | u64 cluster id | u64 node id | u64 init token
**   "srv/peers"       u8 v | peers
**   "srv/ranges"      u8 v | descriptors with hosted flags
**   "srv/join-token"  u64 (an uninitialized store's join token)
*/
typedef struct srv__state {
    bool initialized;
    uint64_t cluster_id;
    uint64_t node_id;
    uint64_t init_token; /* the INIT that made the cluster (on its node), else 0 */
    srv_peer *peers;     /* owned */
    size_t n_peers;
    range_descriptor *descs; /* owned */
    bool *hosted;        /* owned, n_descs flags */
    size_t n_descs;
} srv__state;
void srv__state_free(srv__state *s);
/* SRV_OK (s->initialized false when there is none), SRV_ERR_CORRUPT, IO, NOMEM. */
int srv__store_load(storage_engine *e, srv__state *s /* OUT */);
/* One atomic synced batch: identity, peers, ranges, and the initial KV data
** (may be NULL/0) at init_ts. */
int srv__store_save(storage_engine *e, const srv__state *s, const srv__kv *kvs, size_t n_kvs,
                    hlc_timestamp init_ts);
int srv__store_save_peers(storage_engine *e, const srv_peer *peers, size_t n);
/* The store's join token, created (random) and persisted on first use. */
int srv__store_join_token(storage_engine *e, uint64_t *token);

/* ---- a blocking call by address (srv_call.c) -------------------------------- */
typedef struct srv__call {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool started; /* rpc accepted it: the callback will run exactly once */
    bool done;
    int rc;           /* transport result */
    int32_t status;   /* responder's status (rc == RPC_OK) */
    uint64_t from;    /* responder's node id */
    base_buf payload; /* owned: response payload */
} srv__call;
void srv__call_init(srv__call *c);
void srv__call_free(srv__call *c); /* after srv__call_wait */
/* Send; SRV_OK when started (then srv__call_wait must be called). */
int srv__call_start(srv__call *c, rpc_uv *uv, const srv_addr *addr, uint32_t method,
                    const void *payload, size_t len, int64_t timeout_ms);
/* Wait for the callback (bounded by the rpc deadline that was given). */
void srv__call_wait(srv__call *c);
/* The error text of a failed answer (status < 0, payload = message) or of a
** transport failure, into buf. */
void srv__call_error(const srv__call *c, const srv_addr *addr, char *buf, size_t size);

/* Random u64 from getrandom (falls back to time and address bits). */
uint64_t srv__random_u64(void);

/* ---- the replicate queue (srv_replicate.c; docs/cluster.md "Replicate queue") ----
** The leaseholder of a range moves its replicas off dead nodes and
** up-replicates it, one change at a time. The plan is pure; the queue drives
** the changes from the periodic thread without blocking it. */

/* A node as the planner sees it (from the liveness records). */
typedef struct srv__repl_node {
    uint64_t node_id;
    srv_liveness liveness;
    bool draining;        /* `node drain`: never a target (replica or lease);
                             its replicas stay */
    bool decommissioning; /* decommissioning or decommissioned: never a target,
                             every replica moved off */
    uint32_t replicas;    /* its load: replicas hosted (+ adds toward it under way) */
    uint32_t leases;      /* leases held (its last heartbeat) */
} srv__repl_node;

typedef enum srv__repl_reason {
    SRV_REPL_NOTHING = 0,        /* enough voters, all on live nodes */
    SRV_REPL_REPLACE_DEAD,       /* add `add`, then remove the dead voter `remove` */
    SRV_REPL_DECOMMISSION,       /* move a voter off a decommissioning node: add
                                    `add` then remove it, or remove only */
    SRV_REPL_REMOVE_DEAD,        /* remove a dead voter the range can spare */
    SRV_REPL_REMOVE_LEARNER,     /* a learner on a dead node (no quorum effect) */
    SRV_REPL_UP_REPLICATE,       /* add: fewer voters than wanted */
    SRV_REPL_NO_TARGET,          /* a change is due, but no live node can take it */
    SRV_REPL_NO_QUORUM,          /* it would leave the live voters without a majority */
} srv__repl_reason;

typedef struct srv__repl_plan {
    srv__repl_reason reason;
    uint64_t add;      /* node to add as a voter (learner, snapshot, promote); 0 none */
    uint64_t remove;   /* node to remove afterwards; 0 none (for NO_TARGET and
                          NO_QUORUM: the node the change was for) */
    size_t n_voters;   /* voters now */
    size_t want;       /* voters wanted: min(replication, usable live nodes) */
} srv__repl_plan;

/* The next change for a range with membership m (its applied configuration)
** whose leader is node `leader` (never chosen as a victim), given every
** node's liveness and load. Pure and deterministic (ties: lowest node id).
** Rules, in order: a learner on a dead node is removed; a dead voter (then
** one on a decommissioning node that is not dead) is removed alone when the
** range keeps `replication` voters
** without it, else replaced by the live node without a replica of the range
** that has the fewest replicas (a learner of the range first), never a node
** that holds one; a range with fewer voters than min(replication, usable
** nodes) gets one on such a node. Usable: live, not draining, not
** decommissioning. No change that would leave the live voters (after each
** step: add, promote, remove) short of a majority. */
void srv__repl_plan_range(const raft_membership *m, uint64_t leader, const srv__repl_node *nodes,
                          size_t n_nodes, int replication, srv__repl_plan *out /* OUT */);
/* One line for logs and tests ("replace dead node 3 by node 4 in range 5"). */
void srv__repl_plan_describe(const srv__repl_plan *p, uint64_t range_id, char *buf, size_t size);
/* The voter of m (not self) to hand self's lease to when self drains or is
** decommissioning: usable, the fewest leases, then the lowest id. 0: none
** (the lease stays). Pure. */
uint64_t srv__repl_lease_target(const raft_membership *m, uint64_t self,
                                const srv__repl_node *nodes, size_t n_nodes);
/* May node `target` be decommissioned: at least `replication` other nodes
** are live, active and not draining (so every range finds a target).
** SRV_OK, or SRV_ERR_REFUSED with the reason for users in why. Pure. */
int srv__decommission_check(const srv_status_row *rows, size_t n_rows, uint64_t target,
                            int replication, char *why, size_t why_size);

/* ---- the thread of a background queue (srv_worker.c) ----------------------
** The split, merge and rebalance queues each run one; the queue keeps its
** own rules and loop, and asks srv__worker_stopping between steps. */
typedef struct srv__worker {
    pthread_mutex_t mu;
    pthread_cond_t cond;  /* CLOCK_MONOTONIC: stop */
    bool stop;            /* mu */
    bool started;         /* the thread runs (the starter's and the stopper's) */
    bool start_failed;    /* its thread could not be made: not tried again */
    pthread_t thread;
} srv__worker;

#define SRV_REPL_SLOTS 8            /* change slots (active + abandoned awaiting their callback) */
#define SRV_REPL_INFLIGHT_MAX 2     /* changes driven at once per node */
#define SRV_REPL_BACKOFF_MAX 256    /* ranges remembered with a backoff */
#define SRV_REPL_RECENT_MAX 32      /* adds remembered until the target's heartbeat counts them */
#define SRV_REPL_SHED_MS 250        /* a draining node hands its leases away this often */
#define SRV_REPL_SHED_POSTED_MAX 64 /* lease hand-offs remembered, so each is logged once */

/* One change in flight. cb_state/cb_rc are written by the replica's
** callback (any thread, under the range node's mutex) or, on the txn path,
** by the queue's worker; job_* are handed to the worker under its mu; the
** rest is the periodic thread's. */
typedef struct srv__repl_change {
    bool used;           /* taken: driven, or abandoned with its callback still due */
    bool active;         /* driven by the queue */
    uint64_t range_id;
    srv__repl_plan plan;
    int phase;           /* 0: add, 1: remove, 2: done */
    bool via_txn;        /* its phases run on the worker (txn_db_change_replicas) */
    _Atomic int cb_state; /* 0 none, 1 a step proposed, 2 its callback ran */
    _Atomic int cb_rc;
    int64_t started_ns;  /* monotonic */
    int64_t deadline_ns;
    char what[96];       /* srv__repl_plan_describe, for the logs */
    bool job_queued;     /* worker.mu: a phase for the worker to run */
    uint64_t job_add, job_remove;
    range_descriptor job_desc; /* owned: the slot's while queued (worker.mu), then
                                  the worker's while it runs the phase */
    range_descriptor start_desc; /* owned (periodic): the range when the add phase
                                    was queued; the remove phase is asked from it */
} srv__repl_change;

typedef struct srv__repl_backoff {
    uint64_t range_id;
    int64_t until_ns;    /* monotonic: no new change for the range before */
    int64_t delay_ms;    /* the next failure's delay is twice this */
} srv__repl_backoff;

typedef struct srv__repl_recent {
    uint64_t node_id;
    int64_t done_wall_ns; /* counted in the load until the node heartbeats after it */
} srv__repl_recent;

/* The queue of one node; lives in the srv_node (its slots are the
** callbacks' contexts, so it must outlive range_node_free). Periodic thread
** only, but for the callbacks' fields. */
typedef struct srv__replq {
    uint64_t self;
    int replication;
    srv_status_row *rows;  /* owned: the last liveness read (node id, state, replicas) */
    size_t n_rows;
    int64_t rows_wall_ns;  /* the reading node's wall clock at that read */
    int64_t rows_at_ns;    /* monotonic time of that read; 0: none yet */
    srv__repl_change slots[SRV_REPL_SLOTS];
    srv__repl_backoff backoff[SRV_REPL_BACKOFF_MAX];
    size_t n_backoff;
    srv__repl_recent recent[SRV_REPL_RECENT_MAX];
    size_t recent_next;
    int64_t next_scan_ns;
    size_t scan_offset;    /* rotates the first range looked at */
    size_t blocked_logged; /* ranges needing a change nobody can take, as last logged */
    bool clock_logged;     /* "not acting: no clock bound" said */
    bool meta_due;         /* a change completed: rewrite meta now */
    uint64_t done, failed; /* counters */
    bool draining;         /* set by the node: this process drains */
    int64_t next_shed_ns;  /* leases handed away next (while draining or leaving) */
    size_t shed_logged;    /* leases left to hand away, as last logged */
    /* hand-offs already posted to the event log (range id, target): a
    ** transfer still running is started again each round; emptied once no
    ** lease is held here */
    uint64_t shed_posted[SRV_REPL_SHED_POSTED_MAX][2];
    size_t n_shed_posted;
    /* The txn path (srv_replicate.c): each phase runs txn_db_change_replicas
    ** on this thread, so the periodic thread never blocks on it. */
    srv__worker worker;
    txn_db *db;            /* borrowed, set when the worker starts; it is stopped
                              (srv__replq_stop) before the db closes */
} srv__replq;

/* Environment of a run (borrowed; the node's stack). */
typedef struct srv__replq_env {
    range_node *rnode;
    range_router *router;
    hlc_clock *clock;
    int64_t scan_ms;       /* ranges looked at this often */
    int64_t stale_ms;      /* liveness older than this is not acted on */
    /* May be NULL: told of every completed change (the range event log,
    ** srv_ranges.h), on the periodic thread; after is the range's new
    ** descriptor (NULL: unknown). Must not block. */
    void (*on_change)(void *ctx, uint64_t range_id, const srv__repl_plan *plan,
                      const range_descriptor *after);
    void *change_ctx;
    /* May be NULL: told of every lease this leaving node starts handing
    ** away (once per range and target), with the range's voters and the
    ** reason ("drain node 3", "decommission node 3"), on the periodic
    ** thread, ctx change_ctx. Must not block. */
    void (*on_lease_shed)(void *ctx, uint64_t range_id, uint64_t target, const uint64_t *voters,
                          size_t n_voters, const char *reason);
    /* May be NULL (SQL not open yet): the steps are the replica's plain ones
    ** and meta follows by the repair. Otherwise every step commits meta(range)
    ** with it (txn_db_change_replicas, docs/decisions/010 item 8). */
    txn_db *db;
} srv__replq_env;

void srv__replq_init(srv__replq *q, uint64_t self, int replication);
/* Frees the liveness copy. Only after range_node_free: a callback may be due. */
void srv__replq_free(srv__replq *q);
/* Stop the worker (a phase in flight ends with the router's shutdown);
** before the db closes. Idempotent. */
void srv__replq_stop(srv__replq *q);
/* Keep the liveness rows just read (copied; now_wall_ns: this node's wall
** clock at the read, now_ns monotonic). SRV_OK, SRV_ERR_NOMEM (kept the old). */
int srv__replq_note_liveness(srv__replq *q, const srv_status_row *rows, size_t n,
                             int64_t now_wall_ns, int64_t now_ns);
/* Periodic thread: drive the changes in flight one step each, and every
** scan_ms start new ones for the ranges this node leads; while this node
** drains (q->draining) or is decommissioning (its liveness row), every
** SRV_REPL_SHED_MS hand each lease it holds to srv__repl_lease_target.
** Never blocks beyond the range node's mutex. Returns when to call again
** (monotonic ns). */
int64_t srv__replq_run(srv__replq *q, const srv__replq_env *env, int64_t now_ns);
/* True once after a change completed (its range's meta entry is behind). */
bool srv__replq_take_meta_due(srv__replq *q);


void srv__worker_init(srv__worker *w);
/* After srv__worker_stop (or when never started). */
void srv__worker_destroy(srv__worker *w);
/* Run main_fn(arg) on a new thread; SRV_OK (also when it runs already), or
** SRV_ERR_NOMEM with start_failed set. */
int srv__worker_start(srv__worker *w, void *(*main_fn)(void *), void *arg);
/* Tell the thread to stop, wake it and join it; a no-op when not started. */
void srv__worker_stop(srv__worker *w);
/* Whether the thread was told to stop (any thread). */
bool srv__worker_stopping(srv__worker *w);
/* The worker thread sleeps until until_ns (base_monotonic_ns) or a stop. */
void srv__worker_wait(srv__worker *w, int64_t until_ns);

/* ---- test-only faults (srv_fault.c; docs/chaos.md) -------------------------
** FAULT request: u8 version | u8 kind | u8 flags (bit 0 clear_all, bit 1
** fail_next) | u64 peer | u32 delay_ms | u32 jitter_ms | u32
** loss_per_million | u32 stall_ms. Answer (SRV_OK): the node's faults as
** text; errors carry a message. */
int srv__fault_req_encode(const srv_fault_request *m, base_buf *out);
int srv__fault_req_decode(const uint8_t *p, size_t len, srv_fault_request *out /* OUT */);
/* Answer a FAULT request (loop thread; never blocks). enabled: the node's
** enable_test_faults; uv, log, engine: its transport, shared Raft log and
** store (borrowed for the call, may be NULL). */
void srv__fault_answer(rpc_transport *t, const rpc_message *msg, bool enabled, rpc_uv *uv,
                       raft_log *log, storage_engine *engine);
/* raft_log_options.on_failure of a node: logs the FATAL line and exits the
** process with SRV_EXIT_LOG_FAILED at once (never returns). */
void srv__log_failure_exit(void *ctx, const char *what);
/* storage_set_on_failure of a node's store: the same for a failed sync of
** the RocksDB store (never returns). */
void srv__store_failure_exit(void *ctx, const char *what);

#endif
