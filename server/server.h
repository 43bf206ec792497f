/*
** server/: a Meridian node in a cluster. Identity (cluster id, node id),
** bootstrap (`meridian init`), join, the peer address table, node liveness
** and node status; and the wiring of the cluster stack:
**
**   storage -> range_node (Raft) -> range_server (leaseholder evaluation)
**           -> range_router (range_kv) -> txn_db -> sqlv_engine -> gateway
**
** over one rpc_uv transport whose handler is here: it dispatches Raft
** messages to range_node_handle_rpc, KV requests to range_server_handle_rpc
** and this module's own methods (PROBE, INIT, BOOTSTRAP, JOIN, STATUS,
** DRAIN, DECOMMISSION) to itself. Without --sql-addr the SQL protocol shares the RPC port (the
** transport hands PostgreSQL connections to gw_adopt_connection).
**
** A node started without --join on a new store is a one-node cluster
** (srv_config.single_node, replication 1; cli/ sends it INIT). A store that
** holds single-node data from before keeps the local single-node wiring of
** cli/ (nothing here runs). Design,
** system key layout and critical invariants: docs/cluster.md and
** docs/decisions/006-cluster-bootstrap.md.
**
** Threads of a running srv_node: the transport's loop thread (handler: never
** blocks, long work goes to the control thread's bounded job queue), the
** control thread (INIT, BOOTSTRAP, JOIN, STATUS, join attempts), the
** periodic thread (clock-offset pings, liveness heartbeat, peer refresh,
** the replicate queue, opening SQL) and the ticker (range_node_tick every tick_interval_ms).
** While the clock-offset bound is unavailable the node serves nothing
** (docs/clocks.md, section 3.1; docs/cluster.md, "Clock offset").
*/
#ifndef MERIDIAN_SERVER_H
#define MERIDIAN_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "security/security.h"
#include "storage/storage.h"
#include "timestamp/timestamp.h"

enum {
    SRV_OK = 0,
    SRV_ERR_NOMEM = -7001,
    SRV_ERR_INVALID = -7002,       /* bad argument or configuration */
    SRV_ERR_IO = -7003,            /* storage or socket failure */
    SRV_ERR_CORRUPT = -7004,       /* bad bytes from a peer or the disk */
    SRV_ERR_UNAVAILABLE = -7005,   /* peer unreachable, or the key space did
                                      not answer in time */
    SRV_ERR_INITIALIZED = -7006,   /* INIT on an initialized node */
    SRV_ERR_UNINITIALIZED = -7007, /* the node has no cluster identity yet */
    SRV_ERR_REFUSED = -7008,       /* the peer refused (message says why) */
    SRV_ERR_BUSY = -7009,          /* a bounded queue is full; retry */
};

/* Limits. */
#define SRV_HOST_SIZE_MAX 256  /* a host name or literal, NUL included */
#define SRV_JOIN_ADDRS_MAX 64  /* --join addresses */
#define SRV_PEERS_MAX 1024     /* nodes in a peer table / status */
#define SRV_RANGES_MAX 1024    /* descriptors a node persists */
#define SRV_MESSAGE_SIZE_MAX 512 /* error text carried in an answer */

/* Defaults (milliseconds). */
#define SRV_DEFAULT_TICK_MS 100
#define SRV_DEFAULT_HEARTBEAT_MS 1500
#define SRV_DEFAULT_LIVENESS_TTL_MS 4500
#define SRV_DEFAULT_DEAD_AFTER_MS 45000
#define SRV_DEFAULT_PEER_REFRESH_MS 2000
#define SRV_DEFAULT_REPLICATION 3

typedef struct srv_addr {
    char host[SRV_HOST_SIZE_MAX]; /* "" = unknown */
    int port;
} srv_addr;

/* One node of the cluster as peers know it. */
typedef struct srv_peer {
    uint64_t node_id;
    srv_addr rpc;
    srv_addr sql;
} srv_peer;

/* ---- the store's identity ------------------------------------------------ */

typedef struct srv_identity {
    bool initialized;
    uint64_t cluster_id;
    uint64_t node_id;
} srv_identity;

/* Read the identity persisted in the store's raw keyspace. SRV_OK (and
** out->initialized false for a store that has none), SRV_ERR_CORRUPT,
** SRV_ERR_IO. */
int srv_store_identity(storage_engine *engine, srv_identity *out /* OUT */);
/* True when the store holds any MVCC data (a single node's store). For the
** refusal to turn a single-node store into a cluster node. */
int srv_store_has_data(storage_engine *engine, bool *out /* OUT */);

/* ---- a running node ------------------------------------------------------- */

typedef struct srv_node srv_node; /* opaque */

typedef struct srv_config {
    storage_engine *engine; /* borrowed; must outlive the node */
    hlc_clock *clock;       /* borrowed; must outlive the node */
    srv_addr listen;        /* RPC (and, unless sql_separate, SQL) address */
    bool sql_separate;      /* true: the gateway listens on `sql` itself */
    srv_addr sql;           /* used when sql_separate */
    srv_addr join[SRV_JOIN_ADDRS_MAX];
    size_t n_join;
    /* `meridian start` without --join on a new store (issue 8): a one-node
    ** cluster; an uninitialized node may then have no --join (its owner
    ** sends it INIT itself). */
    bool single_node;
    sec_tls_ctx *tls;       /* borrowed, may be NULL: SQL over TLS */
    /* Node-to-node TLS (docs/rpc.md "TLS"): borrowed, both or neither; they
    ** become rpc_uv_config.tls_server/tls_client of every transport the
    ** node starts. NULL: plaintext RPC (--insecure). */
    sec_tls_ctx *rpc_tls_server;
    sec_tls_ctx *rpc_tls_client;
    bool sync;              /* fsync Raft log writes (true in production) */
    /* Directory of the node's shared Raft log (`meridian start`: <store>/raft),
    ** opened by srv_node_start and closed by srv_node_stop; borrowed for
    ** srv_node_start. NULL: every range's Raft log lives in the engine's raw
    ** keyspace (tests). A store keeps the layout it was created with. */
    const char *raft_log_dir;
    int64_t tick_ms;        /* 0: SRV_DEFAULT_TICK_MS */
    int64_t heartbeat_ms;   /* 0: SRV_DEFAULT_HEARTBEAT_MS */
    int64_t liveness_ttl_ms;/* 0: SRV_DEFAULT_LIVENESS_TTL_MS */
    int64_t dead_after_ms;  /* 0: SRV_DEFAULT_DEAD_AFTER_MS; a node silent this
                               long is dead and its replicas move (docs/cluster.md,
                               "Replicate queue") */
    int64_t peer_refresh_ms;/* 0: SRV_DEFAULT_PEER_REFRESH_MS */
    int replication;        /* replication factor: replicas of the initial ranges
                               and what the replicate queue keeps; 0: 3 */
    uint64_t random_seed;   /* 0: from getrandom */
    /* Called (from a node thread) once SQL is served, with the port; may be
    ** NULL. Called at most once. */
    void (*on_sql_ready)(void *ctx, const char *host, int port);
    /* Called (from a node thread) when the node cannot go on (its stack
    ** failed to build); the owner should stop it. May be NULL. */
    void (*on_fatal)(void *ctx, const char *message);
    void *callback_ctx;
    /* Test-only (`meridian start --enable-test-faults`, docs/chaos.md): the
    ** node obeys srv_client_fault. false: it refuses every such request. */
    bool enable_test_faults;
    /* The gateway's gw_options.max_connections and
    ** max_connections_per_user (`meridian start --max-sql-connections`,
    ** `--max-sql-connections-per-user`); 0: its defaults. */
    int sql_max_connections;
    int sql_max_connections_per_user;
} srv_config;

/* The exit status of a node whose shared Raft log failed a write or an
** fdatasync: it exits at once (no clean stop: a failed fsync is never
** retried, PostgreSQL's lesson) and recovers from the disk at its restart.
** EX_IOERR of sysexits.h. */
#define SRV_EXIT_LOG_FAILED 74

/* Start the node: read the identity, start the transport (a provisional
** node id when uninitialized), and when initialized build the stack and
** reopen every hosted replica. Returns once the RPC port listens.
** owner of *out: caller, srv_node_stop. SRV_ERR_INVALID, SRV_ERR_IO (bind),
** SRV_ERR_CORRUPT (stored identity), SRV_ERR_NOMEM. */
int srv_node_start(const srv_config *config, srv_node **out);
/* Stop every thread, the gateway, the transport and the stack, in the
** order docs/cluster.md gives. The store is left for a restart. */
void srv_node_stop(srv_node *n);

typedef struct srv_node_info {
    bool initialized;
    uint64_t cluster_id;
    uint64_t node_id;      /* 0 when uninitialized */
    uint64_t provisional_id; /* the transport's id while uninitialized */
    int rpc_port;          /* bound RPC port */
    bool sql_serving;
    int sql_port;          /* valid when sql_serving */
} srv_node_info;
void srv_node_get_info(srv_node *n, srv_node_info *out /* OUT */);

/* ---- client calls (the `meridian` tool) ------------------------------------
** Each starts a private transport with a provisional node id and no
** listener, sends one request by address and waits (bounded by timeout_ms).
** err receives a message for users on failure. */

/* TLS for the calls below: a client context with the node certificate
** (sec_tls_client_ctx_new, cert_name "node"), borrowed until the last call
** returns; NULL (the default): plaintext, which a TLS node refuses. Set
** once, before any call (process-wide: the tool makes one call per run). */
void srv_client_set_tls(sec_tls_ctx *client_ctx);

/* INIT: make a cluster of the node at addr and the uninitialized nodes of
** its --join list. SRV_OK with the cluster id and the node table (owner:
** caller, base_free(*peers)); SRV_ERR_INITIALIZED ("cluster already
** initialized"); SRV_ERR_UNAVAILABLE; SRV_ERR_REFUSED. */
int srv_client_init(const srv_addr *addr, int64_t timeout_ms, uint64_t *cluster_id,
                    srv_peer **peers, size_t *n_peers, char *err, size_t err_size);

typedef enum srv_liveness {
    SRV_LIVENESS_UNKNOWN = 0, /* no liveness record yet */
    SRV_LIVENESS_LIVE = 1,    /* record not expired */
    SRV_LIVENESS_SUSPECT = 2, /* expired */
    SRV_LIVENESS_DEAD = 3,    /* no heartbeat for dead_after */
} srv_liveness;

/* A node's membership of the cluster (docs/operations.md, "Decommission"):
** kept in its liveness record, set by `meridian node decommission` /
** `recommission` and carried over by the node's own heartbeats. */
typedef enum srv_membership {
    SRV_MEMBERSHIP_ACTIVE = 0,
    SRV_MEMBERSHIP_DECOMMISSIONING = 1, /* its replicas are moved off; never a target */
    SRV_MEMBERSHIP_DECOMMISSIONED = 2,  /* holds nothing; the others refuse its rpc */
} srv_membership;

typedef struct srv_status_row {
    uint64_t node_id;
    srv_addr rpc;
    srv_addr sql;
    uint8_t liveness;          /* srv_liveness */
    int64_t since_heartbeat_ms; /* -1 when unknown */
    uint64_t epoch;            /* heartbeat epoch (process starts) */
    uint32_t replicas;         /* replicas hosted */
    uint32_t leases;           /* leases held */
    uint8_t membership;        /* srv_membership */
    bool draining;             /* `meridian node drain` ran on this process */
} srv_status_row;

typedef struct srv_status {
    uint64_t cluster_id;
    uint64_t answered_by;      /* node id of the node that answered */
    int64_t now_ns;            /* its wall clock */
    int64_t dead_after_ms;
    srv_status_row *rows;      /* owned, sorted by node id */
    size_t n_rows;
} srv_status;
void srv_status_free(srv_status *s);

/* STATUS: the node table with liveness, as the node at addr sees it.
** SRV_OK (owner of out->rows: caller, srv_status_free), or an error. */
int srv_client_status(const srv_addr *addr, int64_t timeout_ms, srv_status *out /* OUT */,
                      char *err, size_t err_size);
/* The table `meridian node status` prints, appended to out. */
int srv_status_format(const srv_status *s, base_buf *out);

/* PROBE: is a node there, and is it initialized. */
typedef struct srv_probe_info {
    bool initialized;
    uint64_t cluster_id;
    uint64_t node_id;          /* real id, 0 when uninitialized */
    uint64_t transport_id;     /* the id it answered with (provisional or real) */
    srv_addr rpc;
    srv_addr sql;              /* port 0: --sql-addr :0 and SQL not started yet */
} srv_probe_info;
int srv_client_probe(const srv_addr *addr, int64_t timeout_ms, srv_probe_info *out /* OUT */,
                     char *err, size_t err_size);

/* Name of a liveness state ("live", "suspect", "dead", "unknown"). */
const char *srv_liveness_name(srv_liveness l);
/* "active", "decommissioning", "decommissioned". */
const char *srv_membership_name(srv_membership m);

/* DRAIN (docs/operations.md, "Drain"): the node at addr marks itself
** draining (its liveness record says so: no replica or lease is placed on
** it, new SQL connections on its RPC port are refused), hands every lease
** it holds to another live voter and keeps handing away any it gets. One
** call asks once; srv_client_drain repeats it until no lease is left. */
typedef struct srv_drain_status {
    uint64_t node_id;
    uint32_t leases;   /* ranges it leads now */
    uint32_t replicas; /* replicas it hosts (they stay) */
    bool recorded;     /* its liveness record says draining */
} srv_drain_status;
/* progress (may be NULL) runs after every answer, on the calling thread.
** SRV_OK once leases == 0 and recorded; SRV_ERR_UNAVAILABLE when timeout_ms
** passed first (*out: the last answer); other errors with err. */
int srv_client_drain(const srv_addr *addr, int64_t timeout_ms,
                     void (*progress)(void *ctx, const srv_drain_status *s), void *ctx,
                     srv_drain_status *out /* OUT */, char *err, size_t err_size);

typedef enum srv_decommission_action {
    SRV_DECOMMISSION = 1,   /* active -> decommissioning (refused when the nodes
                               left live and active would be fewer than the
                               replication factor) */
    SRV_RECOMMISSION = 2,   /* decommissioning -> active; refused once decommissioned */
} srv_decommission_action;

typedef struct srv_decommission_status {
    uint64_t node_id;
    uint8_t membership; /* srv_membership after the call */
    uint8_t liveness;   /* srv_liveness */
    uint32_t replicas;  /* replicas left on it (range descriptors in meta) */
} srv_decommission_status;
/* DECOMMISSION through the node at addr (any node). With wait and
** SRV_DECOMMISSION: asks again until no replica is left on the node, then
** marks it decommissioned (progress after every answer; SRV_ERR_UNAVAILABLE
** when timeout_ms passed first). Without wait: one call. SRV_ERR_REFUSED
** (message in err) for a refusal, SRV_ERR_INVALID for a node that does not
** exist. */
/* ---- test-only faults (the chaos harness, docs/chaos.md) ---------------------
** A node started with enable_test_faults applies these on request; any
** other node refuses them (SRV_ERR_REFUSED). They are not persisted: a
** restart starts without faults. */
typedef enum srv_fault_kind {
    SRV_FAULT_SHOW = 0, /* change nothing, describe the faults */
    SRV_FAULT_NET = 1,  /* rpc_uv_set_fault on the node's transport */
    SRV_FAULT_DISK = 2, /* raft_log_inject_fault on its shared Raft log */
    SRV_FAULT_STORE = 3, /* storage_inject_fault on its RocksDB store */
} srv_fault_kind;

typedef struct srv_fault_request {
    uint8_t kind;              /* srv_fault_kind */
    /* NET: frames the node receives from `peer` (0: every peer) are delayed
    ** by delay_ms + [0, jitter_ms] and lost with loss_per_million / 10^6
    ** (all three 0: that fault removed); clear_all: every NET fault removed
    ** first. */
    uint64_t peer;
    uint32_t delay_ms, jitter_ms, loss_per_million;
    bool clear_all;
    /* DISK: the next fdatasync of the Raft log fails (the node then exits
    ** with SRV_EXIT_LOG_FAILED), and/or every one in the next stall_ms
    ** waits until then. Both unset: cleared. STORE: the same for the
    ** RocksDB store's synced writes and WAL syncs (the node exits with
    ** SRV_EXIT_LOG_FAILED too). */
    bool fail_next;
    uint32_t stall_ms;
} srv_fault_request;

/* FAULT through the node at addr: it applies req and answers with its
** faults now, one line of text into answer (NUL-terminated). SRV_OK;
** SRV_ERR_REFUSED (started without --enable-test-faults; message in err),
** SRV_ERR_INVALID (a value out of range, no Raft log), SRV_ERR_UNAVAILABLE. */
int srv_client_fault(const srv_addr *addr, const srv_fault_request *req, int64_t timeout_ms,
                     char *answer, size_t answer_size, char *err, size_t err_size);

int srv_client_decommission(const srv_addr *addr, uint64_t node_id,
                            srv_decommission_action action, bool wait, int64_t timeout_ms,
                            void (*progress)(void *ctx, const srv_decommission_status *s),
                            void *ctx, srv_decommission_status *out /* OUT */, char *err,
                            size_t err_size);

#endif
